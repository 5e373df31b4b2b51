"""`hato send`, the direct submission client, against real servers: hatod's
submission listeners (STARTTLS + AUTH required, implicit TLS + AUTH
required) with a user, Python's aiosmtpd in the clear and with STARTTLS and
AUTH LOGIN only, and small fake servers for the failures a real server
will not produce on demand (silence, garbage, STARTTLS injection).

What is checked: the envelope and the queued message (-t recipients from
To/Cc/Bcc, no Bcc header, Date/Message-ID/From added, LF input sent as CRLF,
dot-stuffing round trip), the exit codes and error lines of each failure
(wrong password 77, unknown recipient 65, refused connection 69,
certificate not trusted 69, timeout 75, garbled reply 76, bad options 64,
unreadable batch directory 66), certificate verification on by default
(hostname and IP checks against a certificate trusted via SSL_CERT_FILE),
the -v transcript with the credentials redacted, and --batch on one
connection.
"""
import base64
import os
import pwd
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import HATO, free_port, strip_received

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError:  # a missing dependency fails, never skips (scripts/setup.sh installs it)
    Controller = None

ALICE_PW = "Al1ce-Send-Q7xz"
WRONG_PW = "Wr0ng-Send-Zz11"

MSG = (b"From: Alice <alice@localhost>\n"
       b"To: Bob <bob@localhost>, \"Carol, the second\" <carol@localhost>\n"
       b"Cc: undisclosed:;,\n"
       b"  dave@localhost\n"
       b"Bcc: eve@localhost\n"
       b"Subject: from hato send\n"
       b"\n"
       b"Hello.\n"
       b".a line that starts with a dot\n"
       b"..and two\n"
       b".\n"
       b"end\n")


# ---------------------------------------------------------------------------
# helpers

def env_without_password(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("HATO_PASSWORD", "HATO_CONFIG", "HATO_STATE", "SSL_CERT_FILE")}
    env.update(extra)
    return env


def send(args, message=MSG, env=None, timeout=60, **kw):
    """Run `hato send ARGS` with message on stdin; the CompletedProcess with
    stdout/stderr as text."""
    r = subprocess.run([HATO, "send", *args], input=message, capture_output=True,
                       timeout=timeout, env=env if env is not None else env_without_password(),
                       **kw)
    r.stdout = r.stdout.decode("utf-8", "replace")
    r.stderr = r.stderr.decode("utf-8", "replace")
    return r


def submission_hatod(make_hatod, extra=None, users=(("alice", ALICE_PW),)):
    """hatod with sub (STARTTLS, AUTH required) and subs (implicit TLS, AUTH
    required) and the given users; extra=None makes every name a mailbox."""
    ports = {"sub": free_port(), "subs": free_port()}
    h = make_hatod(listeners={
        "sub": {"address": "127.0.0.1:%d" % ports["sub"], "tls": "starttls", "auth": "required"},
        "subs": {"address": "127.0.0.1:%d" % ports["subs"], "tls": "implicit",
                 "auth": "required"},
    }, limits={"auth_delay_ms": 50}, extra=extra)
    h.ports = ports
    for name, password in users:
        r = subprocess.run([HATO, "-c", h.conf_path, "user", "add", name, "--stdin"],
                           input=password.encode() + b"\n", capture_output=True, timeout=60,
                           env=env_without_password())
        assert r.returncode == 0, r.stderr
    return h


def password_file(h, password=ALICE_PW):
    path = os.path.join(h.root, "password")
    with open(path, "w") as f:
        f.write(password + "\n")
    return path


def auth_args(h, listener="sub", password=ALICE_PW, insecure=True):
    args = ["--server", "127.0.0.1:%d" % h.ports[listener],
            "--user", "alice", "--password-file", password_file(h, password),
            "-f", "alice@localhost"]
    if listener == "subs":
        args += ["--tls", "implicit"]
    if insecure:
        args.append("--insecure")
    return args


def headers(msg):
    return msg.split(b"\r\n\r\n", 1)[0]


def field_names(msg):
    return [line.split(b":", 1)[0].lower() for line in headers(msg).split(b"\r\n")
            if line and line[:1] not in (b" ", b"\t")]


def make_cert(directory, cn, san):
    """A self-signed certificate for cn with subjectAltName san; (cert, key)."""
    cert = os.path.join(directory, cn + ".crt")
    key = os.path.join(directory, cn + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=" + san, "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    os.chmod(key, 0o644)  # hatod runs as the hato user
    return cert, key


def local_fqdn():
    """What hato send calls this machine: the canonical name of the host name."""
    host = socket.gethostname()
    try:
        canon = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM,
                                   flags=socket.AI_CANONNAME)[0][3]
    except OSError:
        canon = ""
    return canon or host


class FakeServer:
    """A one-connection TCP server that runs script(conn) in a thread and
    records what the client sent."""

    def __init__(self, script):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.pending = b""
        self.script = script
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(30)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            try:
                self.script(self, conn)
            except OSError:
                pass

    def read_line(self, conn):
        """Wait for the client's next line; None when it closed."""
        while b"\n" not in self.pending:
            data = conn.recv(4096)
            if not data:
                return None
            self.received += data
            self.pending += data
        line, _, self.pending = self.pending.partition(b"\n")
        return line

    def close(self):
        self.sock.close()
        self.thread.join(15)


class Recorder:
    """aiosmtpd handler that keeps each transaction."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                              session.host_name))
        return "250 2.0.0 OK"


@pytest.fixture
def aiosmtpd_server():
    """Factory: start an aiosmtpd Controller on a free port with SMTP
    parameters kw; returns (controller, recorder).  Stopped afterwards."""
    assert Controller is not None, \
        "python3-aiosmtpd is missing: run scripts/setup.sh (as root)"
    started = []

    def make(**kw):
        rec = Recorder()
        c = Controller(rec, hostname="127.0.0.1", port=free_port(),
                       server_hostname="aio.test.example", **kw)
        c.start()
        started.append(c)
        return c, rec

    yield make
    for c in started:
        c.stop()


# ---------------------------------------------------------------------------
# hatod: STARTTLS + AUTH, implicit TLS + AUTH

def test_extract_recipients_reach_the_queue(make_hatod):
    h = submission_hatod(make_hatod)
    r = send(auth_args(h) + ["-t"])
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and r.stdout == ""
    [(env, msg)] = h.queued()
    assert env["sender"] == "<alice@localhost>"
    assert sorted(env["rcpt"]) == ["<bob@localhost>", "<carol@localhost>",
                                   "<dave@localhost>", "<eve@localhost>"]
    assert env["auth-user"] == "alice"
    sent = strip_received(msg)
    names = field_names(sent)
    assert b"bcc" not in names
    assert b"eve@localhost" not in sent
    assert names.count(b"date") == 1 and names.count(b"message-id") == 1
    assert names.count(b"from") == 1  # the message had one: none added
    assert b"From: Alice <alice@localhost>\r\n" in sent
    # LF became CRLF, and the dots went through stuffing and back
    assert sent.endswith(b"\r\n\r\nHello.\r\n.a line that starts with a dot\r\n"
                         b"..and two\r\n.\r\nend\r\n")
    assert b"\n" not in sent.replace(b"\r\n", b"")


def test_arguments_and_extracted_recipients_together(make_hatod):
    h = submission_hatod(make_hatod)
    msg = b"To: bob@localhost\r\nSubject: both\r\n\r\nbody\r\n"
    r = send(auth_args(h) + ["-t", "zed@localhost", "Bob <bob@localhost>"], message=msg)
    assert r.returncode == 0, r.stderr
    [(env, sent)] = h.queued()
    assert env["rcpt"] == ["<zed@localhost>", "<bob@localhost>"]  # no duplicate
    assert b"\r\nFrom: alice@localhost\r\n" in strip_received(sent)  # -f gives From:


def test_implicit_tls(make_hatod):
    h = submission_hatod(make_hatod)
    r = send(auth_args(h, "subs") + ["bob@localhost"],
             message=b"Subject: implicit\n\nbody\n")
    assert r.returncode == 0, r.stderr
    [(env, msg)] = h.queued()
    assert env["rcpt"] == ["<bob@localhost>"]
    sent = strip_received(msg)
    assert sent.startswith(b"Subject: implicit\r\nFrom: alice@localhost\r\nDate: ")
    assert b"\r\nMessage-ID: <" in sent
    assert sent.endswith(b"\r\n\r\nbody\r\n")
    head = headers(msg)
    assert b"ESMTPSA" in head and b"TLSv1.3" in head


def test_password_from_environment(make_hatod):
    h = submission_hatod(make_hatod)
    args = ["--server", "127.0.0.1:%d" % h.ports["sub"], "--insecure", "--user", "alice",
            "-f", "alice@localhost", "bob@localhost"]
    r = send(args, env=env_without_password(HATO_PASSWORD=ALICE_PW))
    assert r.returncode == 0, r.stderr
    assert len(h.queued()) == 1


def test_no_password_and_no_terminal(make_hatod):
    h = submission_hatod(make_hatod)
    args = ["--server", "127.0.0.1:%d" % h.ports["sub"], "--insecure", "--user", "alice",
            "bob@localhost"]
    start = len(h.logs())
    r = send(args, start_new_session=True)  # no controlling terminal
    assert r.returncode == 64, r.stderr
    assert "no terminal to ask for the password on" in r.stderr
    assert "event=connect" not in h.logs()[start:]  # refused before connecting


def test_wrong_password(make_hatod):
    h = submission_hatod(make_hatod)
    r = send(auth_args(h, password=WRONG_PW) + ["bob@localhost"])
    assert r.returncode == 77, r.stderr
    assert r.stderr == ("hato: AUTH PLAIN as alice refused: 535 5.7.8 Authentication "
                        "credentials invalid\n")
    assert WRONG_PW not in r.stderr
    assert h.queued() == []


def test_unknown_local_recipient(make_hatod):
    h = submission_hatod(make_hatod, extra="")  # only the users are mailboxes
    r = send(auth_args(h) + ["alice@localhost", "nobody@localhost"])
    assert r.returncode == 65, r.stderr
    assert r.stderr == ("hato: RCPT TO:<nobody@localhost> refused: 550 5.1.1 Recipient "
                        "address rejected: user unknown\n")
    assert h.queued() == []  # all or nothing: alice did not get it either
    h.wait_log("event=disconnect")
    assert "messages=0" in h.logs()


def test_auth_required_without_user(make_hatod):
    h = submission_hatod(make_hatod)
    r = send(["--server", "127.0.0.1:%d" % h.ports["sub"], "--insecure",
              "-f", "alice@localhost", "bob@localhost"])
    assert r.returncode == 77, r.stderr
    assert "MAIL FROM:<alice@localhost> refused: 530 5.7.0 Authentication required" in r.stderr
    assert "--user" in r.stderr


def test_sender_not_owned(make_hatod):
    h = submission_hatod(make_hatod)
    args = auth_args(h)
    args[args.index("-f") + 1] = "mallory@localhost"
    r = send(args + ["bob@localhost"])
    assert r.returncode == 65, r.stderr
    assert r.stderr.startswith("hato: MAIL FROM:<mallory@localhost> refused: 553 5.7.1")


def test_verbose_transcript_redacts_credentials(make_hatod):
    h = submission_hatod(make_hatod)
    r = send(auth_args(h) + ["-v", "bob@localhost"])
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    sent = [line[3:] for line in lines if line.startswith("C: ")]
    assert sent[0].startswith("EHLO ")
    assert sent[1] == "STARTTLS"
    assert sent[2].startswith("EHLO ")
    assert sent[3] == "AUTH PLAIN ********"
    assert sent[4].startswith("MAIL FROM:<alice@localhost>")
    assert sent[5] == "RCPT TO:<bob@localhost>"
    assert sent[6] == "DATA"
    assert sent[-2:] == [".", "QUIT"]
    assert lines[0].startswith("* connecting to 127.0.0.1")
    assert "S: 220 2.0.0 Ready to start TLS" in lines
    assert "S: 235 2.7.0 Authentication successful" in lines or \
        any(x.startswith("S: 235 ") for x in lines)
    assert any(x.startswith("S: 250 2.0.0 OK queued as ") for x in lines)
    assert any(x.startswith("S: 221 ") for x in lines)
    assert any(x.startswith("* TLS TLSv1.3 ") for x in lines)
    plain = base64.b64encode(b"\0alice\0" + ALICE_PW.encode()).decode()
    for secret in (ALICE_PW, plain, base64.b64encode(ALICE_PW.encode()).decode()):
        assert secret not in r.stderr


def test_batch_on_one_connection(make_hatod, testdir):
    h = submission_hatod(make_hatod)
    batch = os.path.join(testdir, "batch")
    os.mkdir(batch)
    for i, name in enumerate(["01-first", "02-second", "03-third"]):
        with open(os.path.join(batch, name), "wb") as f:
            f.write(b"To: rcpt%d@localhost\nBcc: hidden%d@localhost\nSubject: batch %s\n\n"
                    b"message %d\n" % (i, i, name.encode(), i))
    os.mkdir(os.path.join(batch, "a-directory"))  # not a regular file: skipped
    with open(os.path.join(batch, ".hidden"), "wb") as f:  # dot files: skipped
        f.write(b"To: nobody@localhost\n\nno\n")
    start = len(h.logs())
    r = send(auth_args(h) + ["-t", "-v", "--batch", batch], message=b"")
    assert r.returncode == 0, r.stderr
    sent = [line[3:] for line in r.stderr.splitlines() if line.startswith("C: ")]
    assert sent.count("RSET") == 2 and sent.count("DATA") == 3
    assert sent.count("STARTTLS") == 1 and sent.count("AUTH PLAIN ********") == 1
    assert "* 3 messages in %s sent" % batch in r.stderr
    queued = h.queued()
    assert len(queued) == 3
    assert sorted(tuple(env["rcpt"]) for env, _ in queued) == [
        ("<rcpt%d@localhost>" % i, "<hidden%d@localhost>" % i) for i in range(3)]
    for env, msg in queued:
        assert b"Bcc" not in strip_received(msg)
    # the session's disconnect is logged after its 221, maybe after hato exits
    h.wait_log("event=disconnect", count=h.logs()[:start].count("event=disconnect") + 1)
    log = h.logs()[start:]
    assert log.count("event=connect ") == 1, log
    [disconnect] = [line for line in log.splitlines() if "event=disconnect" in line]
    assert "messages=3" in disconnect


def test_batch_goes_on_after_a_bad_file(make_hatod, testdir):
    h = submission_hatod(make_hatod)
    batch = os.path.join(testdir, "batch")
    os.mkdir(batch)
    files = {"a": b"To: one@localhost\n\n1\n", "b": b"Subject: nobody to send to\n\n2\n",
             "c": b"To: John Smith\n\n3\n", "d": b"To: four@localhost\n\n4\n"}
    for name, text in files.items():
        with open(os.path.join(batch, name), "wb") as f:
            f.write(text)
    r = send(auth_args(h) + ["-t", "--batch", batch], message=b"")
    assert r.returncode == 65, r.stderr
    assert "hato: %s/b: no recipients: To, Cc and Bcc name nobody" % batch in r.stderr
    assert "hato: %s/c: message: To: no <address> in \"John Smith\"" % batch in r.stderr
    assert "hato: 2 of 4 messages in %s sent" % batch in r.stderr
    assert sorted(env["rcpt"][0] for env, _ in h.queued()) == ["<four@localhost>",
                                                               "<one@localhost>"]


def test_batch_unreadable_directory(testdir):
    r = send(["--server", "127.0.0.1:1", "--tls", "none", "-t", "--batch",
              os.path.join(testdir, "missing")])
    assert r.returncode == 66, r.stderr
    assert "cannot read the batch directory" in r.stderr


def test_certificate_verified_by_default(make_hatod):
    h = submission_hatod(make_hatod)
    for listener in ("sub", "subs"):
        r = send(auth_args(h, listener, insecure=False) + ["bob@localhost"])
        assert r.returncode == 69, r.stderr
        assert "TLS certificate verification failed for 127.0.0.1: self-signed certificate" \
            in r.stderr, r.stderr
        assert "--insecure" in r.stderr
    assert h.queued() == []


def test_certificate_trusted_and_names_checked(make_hatod, testdir):
    """With the certificate trusted (SSL_CERT_FILE), verification passes for
    the names it carries and fails for any other."""
    cert, key = make_cert(testdir, "localhost", "DNS:localhost,IP:127.0.0.1")
    ports = {"sub": free_port()}
    h = make_hatod(server={"tls_cert": cert, "tls_key": key}, listeners={
        "sub": {"address": "127.0.0.1:%d" % ports["sub"], "tls": "starttls",
                "auth": "required"}})
    h.ports = ports
    subprocess.run([HATO, "-c", h.conf_path, "user", "add", "alice", "--stdin"],
                   input=ALICE_PW.encode() + b"\n", check=True, capture_output=True,
                   env=env_without_password())
    env = env_without_password(SSL_CERT_FILE=cert, HATO_PASSWORD=ALICE_PW)
    for host in ("localhost", "127.0.0.1"):
        r = send(["--server", "%s:%d" % (host, ports["sub"]), "--user", "alice",
                  "-f", "alice@localhost", "-v", "bob@localhost"], env=env)
        assert r.returncode == 0, r.stderr
        assert "certificate verified" in r.stderr
    assert len(h.queued()) == 2
    other, _ = make_cert(testdir, "other.example", "DNS:other.example")
    r = send(["--server", "localhost:%d" % ports["sub"], "--user", "alice",
              "-f", "alice@localhost", "bob@localhost"],
             env=env_without_password(SSL_CERT_FILE=other, HATO_PASSWORD=ALICE_PW))
    assert r.returncode == 69
    assert "TLS certificate verification failed for localhost" in r.stderr


def test_no_auth_over_plaintext():
    r = send(["--server", "127.0.0.1:1", "--tls", "none", "--user", "alice", "x@localhost"])
    assert r.returncode == 64
    assert r.stderr.startswith("hato: refusing to send a password over an unencrypted "
                               "connection (--tls none)")


# ---------------------------------------------------------------------------
# aiosmtpd: a server that is not hatod

def test_aiosmtpd_plaintext(aiosmtpd_server):
    c, rec = aiosmtpd_server()
    msg = b"To: x@remote.example\nBcc: y@remote.example\nSubject: aio\n\n.dot\nbody\n"
    r = send(["--server", "127.0.0.1:%d" % c.port, "--tls", "none", "-t",
              "-f", "sender@client.example", "z@remote.example"], message=msg)
    assert r.returncode == 0, r.stderr
    [(mail_from, rcpts, content, helo)] = rec.messages
    assert mail_from == "sender@client.example"
    assert rcpts == ["z@remote.example", "x@remote.example", "y@remote.example"]
    assert helo == local_fqdn()
    assert content.startswith(b"To: x@remote.example\r\nSubject: aio\r\n"
                              b"From: sender@client.example\r\nDate: ")
    assert content.endswith(b"\r\n\r\n.dot\r\nbody\r\n")
    assert b"y@remote.example" not in content


def test_aiosmtpd_default_sender(aiosmtpd_server):
    c, rec = aiosmtpd_server()
    r = send(["--server", "127.0.0.1:%d" % c.port, "--tls", "none", "to@remote.example"],
             message=b"Subject: who\n\nme\n")
    assert r.returncode == 0, r.stderr
    [(mail_from, rcpts, content, _)] = rec.messages
    me = "%s@%s" % (pwd.getpwuid(os.getuid()).pw_name, local_fqdn())
    assert mail_from == me
    assert b"\r\nFrom: %s\r\n" % me.encode() in content


def test_aiosmtpd_starttls_auth_login(aiosmtpd_server, testdir):
    """A server offering only AUTH LOGIN: the LOGIN exchange, redacted."""
    cert, key = make_cert(testdir, "aio", "DNS:aio.test.example")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((mechanism, auth_data))
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"alice" and \
            auth_data.password == ALICE_PW.encode()
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd says 535

    c, rec = aiosmtpd_server(tls_context=ctx, require_starttls=True, authenticator=authenticator,
                             auth_require_tls=True, auth_exclude_mechanism=["PLAIN"])
    r = send(["--server", "127.0.0.1:%d" % c.port, "--insecure", "--user", "alice", "-v",
              "-f", "alice@client.example", "bob@remote.example"],
             env=env_without_password(HATO_PASSWORD=ALICE_PW))
    assert r.returncode == 0, r.stderr
    assert seen[0][0] == "LOGIN"
    [(mail_from, rcpts, _, _)] = rec.messages
    assert (mail_from, rcpts) == ("alice@client.example", ["bob@remote.example"])
    sent = [line[3:] for line in r.stderr.splitlines() if line.startswith("C: ")]
    i = sent.index("AUTH LOGIN")
    assert sent[i + 1:i + 3] == ["********", "********"]
    for secret in (ALICE_PW, base64.b64encode(ALICE_PW.encode()).decode(),
                   base64.b64encode(b"alice").decode()):
        assert secret not in r.stderr
    # and a wrong password through LOGIN
    r = send(["--server", "127.0.0.1:%d" % c.port, "--insecure", "--user", "alice",
              "bob@remote.example"], env=env_without_password(HATO_PASSWORD=WRONG_PW))
    assert r.returncode == 77, r.stderr
    assert r.stderr.startswith("hato: AUTH LOGIN as alice refused: 535")


def test_aiosmtpd_without_starttls(aiosmtpd_server):
    """The default --tls starttls insists: no STARTTLS offered, no mail."""
    c, rec = aiosmtpd_server()
    r = send(["--server", "127.0.0.1:%d" % c.port, "-f", "a@client.example",
              "b@remote.example"])
    assert r.returncode == 69, r.stderr
    assert "does not offer STARTTLS" in r.stderr
    assert rec.messages == []


# ---------------------------------------------------------------------------
# failures hatod will not produce on demand

def test_connection_refused():
    port = free_port()
    r = send(["--server", "127.0.0.1:%d" % port, "--tls", "none", "-f", "a@b.example",
              "c@d.example"])
    assert r.returncode == 69
    assert r.stderr == ("hato: cannot connect to 127.0.0.1 port %d (127.0.0.1): Connection "
                        "refused\n" % port)


def test_unknown_host():
    r = send(["--server", "no-such-host.invalid", "--tls", "none", "-f", "a@b.example",
              "c@d.example"])
    assert r.returncode in (69, 75)  # 75 only when the resolver itself is unreachable
    assert r.stderr.startswith("hato: cannot resolve no-such-host.invalid: ")


def test_greeting_timeout():
    def silent(server, conn):
        time.sleep(5)

    s = FakeServer(silent)
    t0 = time.monotonic()
    r = send(["--server", "127.0.0.1:%d" % s.port, "--tls", "none", "--timeout", "1",
              "-f", "a@b.example", "c@d.example"])
    assert time.monotonic() - t0 < 4
    s.close()
    assert r.returncode == 75
    assert r.stderr == "hato: timeout after 1 s waiting for the greeting\n"


def test_garbled_reply():
    def garbage(server, conn):
        conn.sendall(b"220 fake ESMTP\r\n")
        server.read_line(conn)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n")
        time.sleep(1)

    s = FakeServer(garbage)
    r = send(["--server", "127.0.0.1:%d" % s.port, "--tls", "none", "-f", "a@b.example",
              "c@d.example"])
    s.close()
    assert r.returncode == 76
    assert r.stderr == ("hato: garbled reply \"HTTP/1.1 400 Bad Request\" during the reply "
                        "to EHLO\n")
    assert s.received.startswith(b"EHLO ")
    assert b"QUIT" not in s.received


def test_421_ends_the_session():
    def closing(server, conn):
        conn.sendall(b"220 fake ESMTP\r\n")
        server.read_line(conn)
        conn.sendall(b"250 fake\r\n")
        server.read_line(conn)
        conn.sendall(b"421 4.3.2 going down\r\n")
        server.read_line(conn)

    s = FakeServer(closing)
    r = send(["--server", "127.0.0.1:%d" % s.port, "--tls", "none", "-f", "a@b.example",
              "c@d.example"])
    s.close()
    assert r.returncode == 75, r.stderr
    assert r.stderr == "hato: MAIL FROM:<a@b.example> refused: 421 4.3.2 going down\n"
    assert b"QUIT" not in s.received  # the server is gone: no QUIT


def test_multiline_tempfail():
    def tempfail(server, conn):
        conn.sendall(b"220 fake ESMTP\r\n")
        server.read_line(conn)
        conn.sendall(b"250-fake\r\n250 SIZE 1000\r\n")
        server.read_line(conn)
        conn.sendall(b"451-4.3.0 try\r\n451 4.3.0 again later\r\n")
        server.read_line(conn)
        conn.sendall(b"221 bye\r\n")

    s = FakeServer(tempfail)
    r = send(["--server", "127.0.0.1:%d" % s.port, "--tls", "none", "-f", "a@b.example",
              "c@d.example"])
    s.close()
    assert r.returncode == 75, r.stderr
    assert r.stderr == ("hato: MAIL FROM:<a@b.example> refused: 451 4.3.0 try 4.3.0 again "
                        "later\n")
    assert b"SIZE=" in s.received and s.received.endswith(b"QUIT\r\n")


def test_multiline_reply_with_another_code_is_garbled():
    def mixed(server, conn):
        conn.sendall(b"220 fake ESMTP\r\n")
        server.read_line(conn)
        conn.sendall(b"250-fake\r\n251 odd\r\n")
        server.read_line(conn)

    s = FakeServer(mixed)
    r = send(["--server", "127.0.0.1:%d" % s.port, "--tls", "none", "-f", "a@b.example",
              "c@d.example"])
    s.close()
    assert r.returncode == 76, r.stderr
    assert "garbled reply \"251 odd\"" in r.stderr


def test_message_bigger_than_size():
    def small(server, conn):
        conn.sendall(b"220 fake ESMTP\r\n")
        server.read_line(conn)
        conn.sendall(b"250-fake\r\n250 SIZE 100\r\n")
        server.read_line(conn)
        conn.sendall(b"221 bye\r\n")

    s = FakeServer(small)
    r = send(["--server", "127.0.0.1:%d" % s.port, "--tls", "none", "-f", "a@b.example",
              "c@d.example"], message=b"Subject: big\n\n" + b"x" * 200 + b"\n")
    s.close()
    assert r.returncode == 65, r.stderr
    assert "more than the 100 that 127.0.0.1 accepts" in r.stderr
    assert b"MAIL" not in s.received


def test_starttls_injection_refused():
    def inject(server, conn):
        conn.sendall(b"220 fake ESMTP\r\n")
        server.read_line(conn)
        conn.sendall(b"250-fake\r\n250 STARTTLS\r\n")
        server.read_line(conn)
        conn.sendall(b"220 go ahead\r\n250 injected\r\n")
        time.sleep(1)

    s = FakeServer(inject)
    r = send(["--server", "127.0.0.1:%d" % s.port, "-f", "a@b.example", "c@d.example"])
    s.close()
    assert r.returncode == 76, r.stderr
    assert "sent data after its reply to STARTTLS" in r.stderr


def test_bad_input_refused_before_connecting():
    port = free_port()
    base = ["--server", "127.0.0.1:%d" % port, "--tls", "none", "-f", "a@b.example"]
    r = send(base + ["c@d.example"], message=b"Subject: x\n\nbare\rCR\n")
    assert r.returncode == 65
    assert r.stderr == "hato: message: line 3: bare CR (a CR must be followed by LF)\n"
    r = send(base + ["-t"], message=b"Subject: no recipients\n\nx\n")
    assert r.returncode == 65
    assert "no recipients" in r.stderr
    r = send(base + ["John Smith"])
    assert r.returncode == 64
    assert "recipient John Smith: no <address>" in r.stderr
    r = send(base)
    assert r.returncode == 64
    assert "no recipients" in r.stderr
    r = send(["--server", "127.0.0.1:%d" % port, "--tls", "sometimes", "c@d.example"])
    assert r.returncode == 64
    r = send(["--server", "127.0.0.1:%d" % port, "--bogus", "c@d.example"])
    assert r.returncode == 64 and "unknown option --bogus" in r.stderr
    r = send(["--server", "127.0.0.1:99999", "c@d.example"])
    assert r.returncode == 64
    # without --server, "hato send" is sendmail mode; a long option asks for the client
    r = send(["--tls", "none", "c@d.example"])
    assert r.returncode == 64 and "--server HOST[:PORT] is required" in r.stderr
