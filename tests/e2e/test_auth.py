"""SMTP AUTH (RFC 4954) for submission: PLAIN (RFC 4616) and LOGIN over
STARTTLS and implicit TLS with real clients (smtplib, swaks, curl, msmtp),
the exact replies of every exchange step, brute-force defences (growing
delays, per-session and per-address limits), sender ownership ([senders]),
relay for authenticated users, the MAIL ... AUTH= parameter, the RFC 6409
submission fix-ups, and users added or removed while hatod runs.

Every hatod here has four listeners:
  mx    tls=starttls auth=none      (port 25 style)
  sub   tls=starttls auth=required  (port 587 style)
  subs  tls=implicit auth=required  (port 465 style)
  opt   tls=starttls auth=optional
and the users alice and bob (added with `hato user add --stdin` before
start, unless a test says otherwise).
"""
import base64
import email.utils
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import HATO, Hatod, RawSMTP, free_port, strip_received
from test_tls import client_ctx

ALICE_PW = "Al1ce-Pass-Q7xz"
BOB_PW = "B0b-Pass-Kw93"
WRONG_PW = "Wr0ng-Guess-Zz11"
USERS = {"alice": ALICE_PW, "bob": BOB_PW}

LISTENERS = {
    "mx": ("starttls", "none"),
    "sub": ("starttls", "required"),
    "subs": ("implicit", "required"),
    "opt": ("starttls", "optional"),
}

# Small delays keep the failure tests fast; error_delay_ms 0 so that the
# many 5xx replies of one raw session are not slowed by the errors_soft
# tarpit (tested elsewhere); a big per-address budget so that only the
# tests about it ever reach it.
BASE_LIMITS = {
    "auth_delay_ms": 50,
    "error_delay_ms": 0,
    "errors_hard": 1000,
    "auth_client_failures": 100000,
}

MSG = b"From: alice@localhost\r\nTo: bob@remote.example\r\nSubject: auth\r\n" \
      b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <m1@client.example>\r\n" \
      b"\r\nauthenticated body\r\n"


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain(user, password, authzid=b""):
    """A PLAIN response, base64: authzid NUL authcid NUL passwd."""
    enc = [x.encode() if isinstance(x, str) else x for x in (authzid, user, password)]
    return b64(enc[0] + b"\0" + enc[1] + b"\0" + enc[2])


class AuthHatod(Hatod):
    """A Hatod whose config file gets extra text (e.g. a [senders] section,
    which the harness's dicts cannot express) appended."""

    def __init__(self, root, extra_conf="", **kw):
        super().__init__(root, **kw)
        self.extra_conf = extra_conf

    def write_config(self):
        super().write_config()
        if self.extra_conf:
            with open(self.conf_path, "a") as f:
                f.write(self.extra_conf)


def hato_user(h, *args, password=None):
    """Run `hato -c CONF user ARGS` (the password, if any, on stdin)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HATO_CONFIG", "HATO_STATE")}
    r = subprocess.run([HATO, "-c", h.conf_path, "user", *args],
                       input=None if password is None else password.encode() + b"\n",
                       capture_output=True, timeout=60, env=env)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


@pytest.fixture
def make_auth_hatod(testdir):
    """Factory: make_auth_hatod(server=, limits=, senders=, users=,
    extra_args=, delivery=, extra_conf=) -> started AuthHatod with
    h.ports[listener name]; extra_conf is appended to the config file.
    limits are merged over BASE_LIMITS; a value None drops the key (the
    built-in default applies).  Cleanup as conftest's make_hatod: a clean
    SIGTERM exit is part of every test."""
    started = []

    def make(server=None, limits=None, senders=None, users=USERS, extra_args=(), delivery=None,
             extra_conf=""):
        sub = tempfile.mkdtemp(dir=testdir)
        os.chmod(sub, 0o755)
        lim = dict(BASE_LIMITS)
        for k, v in (limits or {}).items():
            if v is None:
                lim.pop(k, None)
            else:
                lim[k] = v
        ports = {name: free_port() for name in LISTENERS}
        listeners = {name: {"address": "127.0.0.1:%d" % ports[name], "tls": tls, "auth": auth}
                     for name, (tls, auth) in LISTENERS.items()}
        extra = ""
        if senders:
            extra = "[senders]\n" + "".join("%s = %s\n" % kv for kv in senders.items())
        h = AuthHatod(sub, extra_conf=extra + extra_conf, server=server, limits=lim, listeners=listeners,
                      delivery=delivery)
        h.ports = ports
        h.write_config()
        for name, pw in users.items():
            hato_user(h, "add", name, "--stdin", password=pw)
        started.append(h)
        h.start(extra_args)
        return h

    yield make
    bad = []
    for h in started:
        if h.proc is not None and h.proc.poll() is None:
            try:
                rc = h.stop(signal.SIGTERM)
            except subprocess.TimeoutExpired:
                h.proc.kill()
                h.proc.wait()
                rc = "no exit within 15 s of SIGTERM"
            if rc != 0:
                bad.append("hatod in %s exited %r:\n%s" % (h.root, rc, h.logs()[-3000:]))
    assert not bad, "\n".join(bad)


@pytest.fixture
def ah(make_auth_hatod):
    return make_auth_hatod()


# ---------------------------------------------------------------------------
# Client helpers

def smtp_client(h, name="sub", ehlo=True):
    """smtplib session on listener name, inside TLS, after EHLO."""
    port = h.ports[name]
    if LISTENERS[name][0] == "implicit":
        s = smtplib.SMTP_SSL("127.0.0.1", port, context=client_ctx(), timeout=15)
    else:
        s = smtplib.SMTP("127.0.0.1", port, timeout=15)
        s.ehlo("c.example")
        code, _ = s.starttls(context=client_ctx())
        assert code == 220
    if ehlo:
        assert s.ehlo("c.example")[0] == 250
    return s


def raw_tls(h, name="sub", ehlo=True, timeout=15.0, source=None):
    """A RawSMTP inside TLS on listener name (after EHLO unless ehlo=False).
    source: a local address to connect from (another 127/8 address)."""
    port = h.ports[name]
    implicit = LISTENERS[name][0] == "implicit"
    if source is not None:
        c = RawSMTP.__new__(RawSMTP)
        c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.sock.settimeout(timeout)
        c.sock.bind((source, 0))
        c.sock.connect((h.host, port))
        c.buf = b""
        c.greeting = None if implicit else c.reply()
    else:
        c = RawSMTP(h.host, port, timeout=timeout, greet=not implicit)
    if implicit:
        c.sock = client_ctx().wrap_socket(c.sock)
        c.greeting = c.reply()
    else:
        assert c.greeting.startswith("220 "), c.greeting
        assert c.cmd("EHLO c.example").startswith("250")
        assert c.cmd("STARTTLS") == "220 2.0.0 Ready to start TLS"
        assert c.buf == b""
        c.sock = client_ctx().wrap_socket(c.sock)
    if ehlo:
        r = c.cmd("EHLO c.example")
        assert r.startswith("250"), r
        c.ehlo_reply = r
    return c


def closed(c, timeout=5.0):
    """True when the server ends the (TLS) connection within timeout."""
    assert c.buf == b"", "unexpected bytes: %r" % c.buf
    c.sock.settimeout(timeout)
    try:
        data = c.sock.recv(4096)
    except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return True
    except socket.timeout:
        return False
    assert data == b"", "unexpected bytes before close: %r" % data
    return True


def timed(c, line):
    t = time.monotonic()
    r = c.cmd(line)
    return r, time.monotonic() - t


def auth_ok(c, user="alice", password=ALICE_PW):
    assert c.cmd("AUTH PLAIN " + plain(user, password)) == "235 2.7.0 Authentication successful"


def ehlo_lines(reply):
    return [line[4:] for line in reply.split("\n")]


def header_of(msg):
    """The header block of a queued message, our Received: removed."""
    return strip_received(msg).split(b"\r\n\r\n", 1)[0]


def received_of(msg):
    assert msg.startswith(b"Received: ")
    return msg[:len(msg) - len(strip_received(msg))]


AUTH_FAILED = "535 5.7.8 Authentication credentials invalid"
AUTH_OK = "235 2.7.0 Authentication successful"


# ---------------------------------------------------------------------------
# Real clients

@pytest.mark.parametrize("listener", ["sub", "subs"])
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_smtplib_auth_and_relay(ah, listener, mech):
    with smtp_client(ah, listener) as s:
        assert "auth" in s.esmtp_features
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        s.user, s.password = "alice", ALICE_PW
        if mech == "PLAIN":
            code, text = s.auth("PLAIN", s.auth_plain)
        else:  # LOGIN without initial response: both 334 challenges
            code, text = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert (code, text) == (235, b"2.7.0 Authentication successful")
        assert s.sendmail("alice@localhost", ["bob@remote.example"], MSG) == {}
    [(env, msg)] = ah.queued()
    assert env["sender"] == "<alice@localhost>"
    assert env["rcpt"] == ["<bob@remote.example>"]
    assert env["auth-user"] == "alice"
    assert strip_received(msg) == MSG  # Date and Message-ID given: nothing changed
    rec = received_of(msg)
    assert b"with ESMTPSA id" in rec
    assert b"(Authenticated sender: alice)" in rec
    assert re.search(rb"event=auth session=\S+ client=127\.0\.0\.1 result=ok user=\"alice\"",
                     ah.logs().encode())


@pytest.mark.parametrize("listener,tlsopt", [("sub", "--tls"), ("subs", "--tlsc")])
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks(ah, listener, tlsopt, mech):
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(ah.ports[listener]), tlsopt,
         "--ehlo", "swaks.example", "--auth", mech, "--auth-user", "alice",
         "--auth-password", ALICE_PW, "--from", "alice@localhost",
         "--to", "carol@remote.example", "--header", "Subject: swaks " + mech,
         "--timeout", "20"],
        capture_output=True, timeout=60, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0 Authentication successful" in r.stdout
    if mech == "LOGIN":
        assert "334 VXNlcm5hbWU6" in r.stdout and "334 UGFzc3dvcmQ6" in r.stdout
    [(env, msg)] = ah.queued()
    assert env["sender"] == "<alice@localhost>"
    assert env["rcpt"] == ["<carol@remote.example>"]
    assert env["auth-user"] == "alice"
    assert b"Subject: swaks " + mech.encode() in msg
    assert b"(Authenticated sender: alice)" in received_of(msg)


@pytest.mark.parametrize("scheme,listener,extra", [
    ("smtp", "sub", []),                                   # PLAIN, 334 then the response
    ("smtp", "sub", ["--sasl-ir"]),                        # PLAIN with initial response
    ("smtps", "subs", ["--login-options", "AUTH=LOGIN"]),  # LOGIN
])
def test_curl(ah, scheme, listener, extra):
    body = b"From: alice@localhost\r\nTo: dave@remote.example\r\nSubject: curl\r\n\r\nvia curl\r\n"
    r = subprocess.run(
        ["curl", "-sS", "-k", "--ssl-reqd", "--max-time", "30",
         "--url", "%s://127.0.0.1:%d" % (scheme, ah.ports[listener]),
         "--user", "alice:" + ALICE_PW, *extra,
         "--mail-from", "alice@localhost", "--mail-rcpt", "dave@remote.example",
         "--upload-file", "-"],
        input=body, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    [(env, msg)] = ah.queued()
    assert env["rcpt"] == ["<dave@remote.example>"]
    assert env["auth-user"] == "alice"
    assert b"\r\n\r\nvia curl\r\n" in msg
    # curl sends no Date/Message-ID: the submission fix-ups add both
    head = header_of(msg)
    assert re.search(rb"^Date: ", head, re.M) and re.search(rb"^Message-ID: ", head, re.M)


def test_curl_wrong_password_fails(ah):
    r = subprocess.run(
        ["curl", "-sS", "-k", "--ssl-reqd", "--max-time", "30",
         "--url", "smtp://127.0.0.1:%d" % ah.ports["sub"], "--user", "alice:" + WRONG_PW,
         "--mail-from", "alice@localhost", "--mail-rcpt", "dave@remote.example",
         "--upload-file", "-"],
        input=b"Subject: x\r\n\r\nx\r\n", capture_output=True, timeout=60)
    assert r.returncode == 67, r.stderr  # CURLE_LOGIN_DENIED
    assert ah.queued() == []


# msmtp (GnuTLS) sends its EHLO right behind its TLS Finished: see
# test_ehlo_in_same_flight_as_tls_finished (a hatod bug at 8d172ab: AUTH was
# not listed and msmtp gave up with "the server does not support
# authentication").
@pytest.mark.parametrize("listener,starttls,method", [
    ("sub", "on", "on"),
    ("subs", "off", "login"),
    ("subs", "off", "on"),
    ("sub", "on", "plain"),
])
def test_msmtp(ah, testdir, listener, starttls, method):
    conf = os.path.join(testdir, "msmtprc")
    with open(conf, "w") as f:
        f.write("defaults\n"
                "account default\n"
                "host 127.0.0.1\nport %d\n"
                "domain msmtp.example\n"
                "tls on\ntls_starttls %s\ntls_certcheck off\n"
                "auth %s\nuser alice\npassword %s\n"
                "from alice@test.example\n"
                "timeout 30\n" % (ah.ports[listener], starttls, method, ALICE_PW))
    os.chmod(conf, 0o600)
    msg = b"To: erin@remote.example\r\nSubject: msmtp\r\n\r\nvia msmtp\r\n"
    r = subprocess.run(["msmtp", "-C", conf, "-t"], input=msg, capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    [(env, stored)] = ah.queued()
    assert env["sender"] == "<alice@test.example>"
    assert env["rcpt"] == ["<erin@remote.example>"]
    assert env["auth-user"] == "alice"
    assert b"Subject: msmtp\r\n" in stored and stored.endswith(b"\r\n\r\nvia msmtp\r\n")


def test_msmtp_wrong_password_fails(ah, testdir):
    conf = os.path.join(testdir, "msmtprc")
    with open(conf, "w") as f:
        f.write("account default\nhost 127.0.0.1\nport %d\ntls on\ntls_starttls off\n"
                "tls_certcheck off\nauth plain\nuser alice\npassword %s\n"
                "from alice@localhost\ntimeout 30\n" % (ah.ports["subs"], WRONG_PW))
    os.chmod(conf, 0o600)
    r = subprocess.run(["msmtp", "-C", conf, "erin@remote.example"],
                       input=b"Subject: x\r\n\r\nx\r\n", capture_output=True, timeout=60)
    assert r.returncode != 0
    assert b"535" in r.stderr or b"authentication failed" in r.stderr.lower(), r.stderr
    assert ah.queued() == []


# ---------------------------------------------------------------------------
# Where AUTH is offered

def test_auth_listed_only_after_tls(ah):
    with RawSMTP(ah.host, ah.ports["sub"]) as c:
        before = c.cmd("EHLO c.example")
        assert "STARTTLS" in ehlo_lines(before)
        assert not any(line.startswith("AUTH") for line in ehlo_lines(before))
    c = raw_tls(ah, "sub")
    assert "AUTH PLAIN LOGIN" in ehlo_lines(c.ehlo_reply)
    c.close()
    c = raw_tls(ah, "subs")  # implicit: in the very first EHLO
    assert "AUTH PLAIN LOGIN" in ehlo_lines(c.ehlo_reply)
    c.close()
    c = raw_tls(ah, "opt")
    assert "AUTH PLAIN LOGIN" in ehlo_lines(c.ehlo_reply)
    c.close()


class FlightClient:
    """TLS over MemoryBIOs, so that the client's last handshake flight
    (Finished) and its first command leave in ONE TCP write, as msmtp with
    GnuTLS does.  The first command is given to the constructor."""

    def __init__(self, h, name, first_line):
        self.raw = RawSMTP(h.host, h.ports[name], timeout=15)
        assert self.raw.cmd("EHLO c.example").startswith("250")
        assert self.raw.cmd("STARTTLS") == "220 2.0.0 Ready to start TLS"
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = client_ctx().wrap_bio(self.inc, self.out)
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                if self.out.pending:
                    self.raw.sock.sendall(self.out.read())
                data = self.raw.sock.recv(65536)
                assert data, "closed during the handshake"
                self.inc.write(data)
        # Finished is in self.out, not sent yet: the command joins it
        self.obj.write(first_line.encode() + b"\r\n")
        self.raw.sock.sendall(self.out.read())
        self.buf = b""

    def _line(self):
        while b"\n" not in self.buf:
            try:
                self.buf += self.obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            if self.out.pending:
                self.raw.sock.sendall(self.out.read())
            data = self.raw.sock.recv(65536)
            if not data:
                raise EOFError("closed; unread %r" % self.buf)
            self.inc.write(data)
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode()

    def reply(self):
        lines = [self._line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self._line())
        return "\n".join(lines)

    def cmd(self, line):
        self.obj.write(line.encode() + b"\r\n")
        self.raw.sock.sendall(self.out.read())
        return self.reply()

    def close(self):
        self.raw.close()


def test_ehlo_in_same_flight_as_tls_finished(ah):
    """The EHLO that arrives with the client's TLS Finished is answered
    inside TLS: AUTH listed, STARTTLS not.  (Bug at 8d172ab: the buffered
    EHLO was dispatched before libevent's CONNECTED event set s->tls.)"""
    c = FlightClient(ah, "sub", "EHLO c.example")
    ehlo = c.reply()
    assert ehlo.startswith("250")
    assert "STARTTLS" not in ehlo_lines(ehlo)
    assert "AUTH PLAIN LOGIN" in ehlo_lines(ehlo)
    assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == AUTH_OK
    c.close()


def test_ehlo_after_tls_finished_separately(ah):
    """The control for the test above: the same client code, EHLO sent on
    its own once the handshake has been seen through."""
    c = FlightClient(ah, "sub", "NOOP")
    assert c.reply() == "250 2.0.0 OK"
    ehlo = c.cmd("EHLO c.example")
    assert "AUTH PLAIN LOGIN" in ehlo_lines(ehlo)
    assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == AUTH_OK
    c.close()


@pytest.mark.parametrize("password", [ALICE_PW, WRONG_PW])
def test_auth_before_tls_538_credentials_not_checked(ah, password):
    with RawSMTP(ah.host, ah.ports["sub"]) as c:
        c.cmd("EHLO c.example")
        t = time.monotonic()
        assert c.cmd("AUTH PLAIN " + plain("alice", password)) == \
            "538 5.7.11 Encryption required for requested authentication mechanism"
        assert time.monotonic() - t < 1.0
        assert c.cmd("AUTH LOGIN") == \
            "538 5.7.11 Encryption required for requested authentication mechanism"
        # nothing was authenticated: MAIL still needs AUTH (and TLS)
        assert c.cmd("MAIL FROM:<alice@localhost>") == "530 5.7.0 Authentication required"
        assert c.cmd("QUIT").startswith("221 ")
    logs = ah.logs()
    assert "event=auth " not in logs
    assert password not in logs


def test_auth_none_listener_502(ah):
    c = raw_tls(ah, "mx")
    assert not any(line.startswith("AUTH") for line in ehlo_lines(c.ehlo_reply))
    assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)).startswith("502 5.5.1 ")
    assert c.cmd("AUTH LOGIN").startswith("502 5.5.1 ")
    # not authenticated: a remote recipient is still refused
    assert c.cmd("MAIL FROM:<alice@localhost>").startswith("250 ")
    assert c.cmd("RCPT TO:<x@remote.example>") == "554 5.7.1 Relay access denied"
    c.close()
    with RawSMTP(ah.host, ah.ports["mx"]) as c:  # and before TLS
        c.cmd("EHLO c.example")
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)).startswith("502 5.5.1 ")
    assert "event=auth " not in ah.logs()


@pytest.mark.parametrize("listener", ["sub", "subs"])
def test_mail_before_auth_530(ah, listener):
    c = raw_tls(ah, listener)
    assert c.cmd("MAIL FROM:<alice@localhost>") == "530 5.7.0 Authentication required"
    assert c.cmd("MAIL FROM:<>") == "530 5.7.0 Authentication required"
    auth_ok(c)
    assert c.cmd("MAIL FROM:<alice@localhost>") == "250 2.1.0 Sender OK"
    assert c.cmd("RSET") == "250 2.0.0 Reset OK"  # RSET keeps the authentication
    assert c.cmd("MAIL FROM:<alice@localhost>") == "250 2.1.0 Sender OK"
    c.close()


# ---------------------------------------------------------------------------
# The exchange, step by step

def test_plain_with_initial_response(ah):
    c = raw_tls(ah)
    assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == AUTH_OK
    assert "AUTH PLAIN LOGIN" not in ehlo_lines(c.cmd("EHLO c.example"))
    assert c.cmd("MAIL FROM:<alice@localhost>") == "250 2.1.0 Sender OK"
    c.close()


def test_plain_without_initial_response(ah):
    c = raw_tls(ah, "subs")
    assert c.cmd("AUTH PLAIN") == "334 "
    assert c.cmd(plain("alice", ALICE_PW)) == AUTH_OK
    c.close()


def test_mechanism_name_case_insensitive(ah):
    c = raw_tls(ah)
    assert c.cmd("auth plain " + plain("alice", ALICE_PW)) == AUTH_OK
    c.close()


def test_login_two_challenges(ah):
    c = raw_tls(ah)
    assert c.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    assert c.cmd(b64("alice")) == "334 UGFzc3dvcmQ6"
    assert c.cmd(b64(ALICE_PW)) == AUTH_OK
    c.close()


def test_login_with_initial_response(ah):
    c = raw_tls(ah, "subs")
    assert c.cmd("AUTH LOGIN " + b64("bob")) == "334 UGFzc3dvcmQ6"
    assert c.cmd(b64(BOB_PW)) == AUTH_OK
    assert c.cmd("MAIL FROM:<bob@localhost>") == "250 2.1.0 Sender OK"
    c.close()


def test_login_wrong_password(ah):
    c = raw_tls(ah)
    assert c.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    assert c.cmd(b64("alice")) == "334 UGFzc3dvcmQ6"
    assert c.cmd(b64(BOB_PW)) == AUTH_FAILED
    assert c.cmd("MAIL FROM:<alice@localhost>") == "530 5.7.0 Authentication required"
    c.close()


@pytest.mark.parametrize("steps", [
    ["AUTH PLAIN"],
    ["AUTH LOGIN"],
    ["AUTH LOGIN", b64("alice")],
    ["AUTH LOGIN " + b64("alice")],
])
def test_star_cancels(ah, steps):
    c = raw_tls(ah)
    for line in steps:
        assert c.cmd(line).startswith("334 ")
    assert c.cmd("*") == "501 5.7.0 Authentication cancelled"
    # back to commands; a cancel is not a failure and a new AUTH works
    assert c.cmd("NOOP") == "250 2.0.0 OK"
    auth_ok(c)
    c.close()
    assert "result=failed" not in ah.logs()


@pytest.mark.parametrize("steps", [
    ["AUTH PLAIN !!notbase64!!"],
    ["AUTH PLAIN", "a=b="],
    ["AUTH PLAIN", "Zm9v YmFy"],
    ["AUTH LOGIN", "%%%"],
    ["AUTH LOGIN", b64("alice"), "not base64 at all"],
])
def test_bad_base64_501(ah, steps):
    c = raw_tls(ah)
    for line in steps[:-1]:
        assert c.cmd(line).startswith("334 ")
    assert c.cmd(steps[-1]) == "501 5.5.2 Cannot decode base64 response"
    assert c.cmd("NOOP") == "250 2.0.0 OK"
    auth_ok(c)
    c.close()


@pytest.mark.parametrize("where", ["initial", "response", "login_password"])
def test_overlong_auth_line_500(ah, where):
    c = raw_tls(ah)
    junk = "QUFB" * 1000  # 4000 octets > command_line_max (2048)
    if where == "initial":
        r = c.cmd("AUTH PLAIN " + junk)
    elif where == "response":
        assert c.cmd("AUTH PLAIN") == "334 "
        r = c.cmd(junk)
    else:
        assert c.cmd("AUTH LOGIN " + b64("alice")) == "334 UGFzc3dvcmQ6"
        r = c.cmd(junk)
    assert r == "500 5.5.6 Authentication exchange line is too long"
    # the session goes on, out of the exchange
    assert c.cmd("NOOP") == "250 2.0.0 OK"
    auth_ok(c)
    c.close()


@pytest.mark.parametrize("mech", ["CRAM-MD5", "DIGEST-MD5", "XOAUTH2", "SCRAM-SHA-256",
                                  "PLAINX"])
def test_unknown_mechanism_504(ah, mech):
    c = raw_tls(ah)
    assert c.cmd("AUTH " + mech) == "504 5.5.4 Unrecognized authentication type"
    assert c.cmd("AUTH " + mech + " " + b64("x")) == "504 5.5.4 Unrecognized authentication type"
    auth_ok(c)
    c.close()


def test_auth_without_mechanism_501(ah):
    c = raw_tls(ah)
    assert c.cmd("AUTH").startswith("501 ")
    auth_ok(c)
    c.close()


@pytest.mark.parametrize("user,password", [
    ("alice", WRONG_PW), ("alice", BOB_PW), ("bob", ALICE_PW), ("nosuchuser", ALICE_PW),
    ("Alice", ALICE_PW), ("alice", ALICE_PW + "x"), ("alice", ALICE_PW[:-1]),
])
def test_bad_credentials_535(ah, user, password):
    c = raw_tls(ah)
    assert c.cmd("AUTH PLAIN " + plain(user, password)) == AUTH_FAILED
    assert c.cmd("MAIL FROM:<alice@localhost>") == "530 5.7.0 Authentication required"
    c.close()


def test_unknown_user_takes_as_long_as_wrong_password(make_auth_hatod):
    """yescrypt runs for unknown users too (a dummy hash): the two failures
    cannot be told apart by time.  auth_delay_ms 0 leaves only the check."""
    h = make_auth_hatod(limits={"auth_delay_ms": 0})

    def one(user):
        c = raw_tls(h)
        r, t = timed(c, "AUTH PLAIN " + plain(user, WRONG_PW))
        assert r == AUTH_FAILED
        c.close()
        return t

    known, unknown = [], []
    for _ in range(5):
        known.append(one("alice"))
        unknown.append(one("mallory"))
    k, u = sorted(known)[2], sorted(unknown)[2]
    assert max(k, u) < 3 * min(k, u), (known, unknown)
    # and a correct password costs the same check
    c = raw_tls(h)
    r, t = timed(c, "AUTH PLAIN " + plain("alice", ALICE_PW))
    assert r == AUTH_OK
    assert t > k / 3, (t, known)
    c.close()


def test_auth_again_after_success_503(ah):
    c = raw_tls(ah)
    auth_ok(c)
    assert c.cmd("AUTH PLAIN " + plain("bob", BOB_PW)).startswith("503 5.5.1 ")
    assert c.cmd("AUTH LOGIN").startswith("503 5.5.1 ")
    # still alice
    assert c.cmd("MAIL FROM:<bob@localhost>") == \
        "553 5.7.1 Sender address not owned by authenticated user"
    assert c.cmd("MAIL FROM:<alice@localhost>") == "250 2.1.0 Sender OK"
    c.close()


def test_auth_during_transaction_503(ah):
    c = raw_tls(ah, "opt")
    assert c.cmd("MAIL FROM:<x@localhost>") == "250 2.1.0 Sender OK"
    assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == "503 5.5.1 Bad sequence of commands"
    assert c.cmd("RCPT TO:<y@remote.example>") == "554 5.7.1 Relay access denied"
    assert c.cmd("RSET").startswith("250 ")
    auth_ok(c)
    c.close()
    assert "result=ok" in ah.logs()


@pytest.mark.parametrize("blob,ok", [
    (b"alice\0alice\0" + ALICE_PW.encode(), True),     # authzid = user
    (b"bob\0alice\0" + ALICE_PW.encode(), False),      # acting as someone else
    (b"alicex\0alice\0" + ALICE_PW.encode(), False),
    (b"alic\0alice\0" + ALICE_PW.encode(), False),
    (b"ALICE\0alice\0" + ALICE_PW.encode(), False),    # octet by octet
    (b"alice\0x\0alice\0" + ALICE_PW.encode(), False),  # authzid alice, user x
    (b"\0alice\0" + ALICE_PW.encode() + b"\0junk", False),  # NUL inside the password
    (b"\0alice\0" + ALICE_PW.encode() + b"\0", False),
    (b"\0alice\0\0" + ALICE_PW.encode(), False),
    (b"\0alice\0", False),
    (b"\0\0" + ALICE_PW.encode(), False),
    (b"alice\0" + ALICE_PW.encode(), False),            # one NUL only
    (b"alice" + ALICE_PW.encode(), False),              # none
    (b"", False),
])
def test_plain_authzid_and_nul(ah, blob, ok):
    c = raw_tls(ah)
    r = c.cmd("AUTH PLAIN " + (b64(blob) if blob else "="))
    assert r == (AUTH_OK if ok else AUTH_FAILED)
    want = "250 2.1.0 Sender OK" if ok else "530 5.7.0 Authentication required"
    assert c.cmd("MAIL FROM:<alice@localhost>") == want
    c.close()


def test_malformed_credentials_are_failed_attempts(make_auth_hatod):
    """A NUL in an AUTH LOGIN user name (in the exchange or the initial
    response) or in a password is a failed attempt like a wrong password:
    its 535 waits out the delay (doubling), it is logged as event=auth
    result=failed with the name escaped, and it counts toward
    auth_failures_max and the client's lockout."""
    h = make_auth_hatod(limits={"auth_delay_ms": 300, "auth_failures_max": 3,
                                "auth_client_failures": 3, "auth_client_window": 60,
                                "auth_client_lockout": 60})
    c = raw_tls(h)
    assert c.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    r, t = timed(c, b64(b"alice\0x"))
    assert r == AUTH_FAILED and t >= 0.3, (r, t)
    r, t = timed(c, "AUTH LOGIN " + b64(b"\0alice"))
    assert r == AUTH_FAILED and t >= 0.6, (r, t)
    r, t = timed(c, "AUTH PLAIN " + b64(b"\0alice\0" + ALICE_PW.encode() + b"\0"))
    assert r == AUTH_FAILED and t >= 1.2, (r, t)
    assert c.reply() == "421 4.7.0 Too many failed authentications, closing connection"
    assert closed(c)
    logs = h.logs()
    assert 'result=failed user="alice\\x00x" failures=1' in logs, logs[-3000:]
    assert 'result=failed user="\\x00alice" failures=2' in logs, logs[-3000:]
    assert 'result=failed user="alice" failures=3' in logs, logs[-3000:]
    assert "event=auth_lockout client=127.0.0.1 seconds=60" in logs
    assert ALICE_PW not in logs
    # the three count against the address: the right password is locked out now
    c = raw_tls(h)
    assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)).startswith("454 4.7.0 ")
    c.close()


def test_pipelined_command_after_auth_is_a_command(ah):
    """A command sent right behind AUTH (in the same write) is read after
    the result, as a command, never as a line of the exchange."""
    c = raw_tls(ah)
    c.send("AUTH PLAIN %s\r\nMAIL FROM:<alice@localhost>\r\n" % plain("alice", ALICE_PW))
    assert c.replies(2) == [AUTH_OK, "250 2.1.0 Sender OK"]
    c.close()
    c = raw_tls(ah)
    c.send("AUTH PLAIN %s\r\nMAIL FROM:<alice@localhost>\r\n" % plain("alice", WRONG_PW))
    assert c.replies(2) == [AUTH_FAILED, "530 5.7.0 Authentication required"]
    c.close()


def test_client_gone_during_check_and_delay(make_auth_hatod):
    h = make_auth_hatod(limits={"auth_delay_ms": 2000})
    c = raw_tls(h)
    c.send("AUTH PLAIN %s\r\n" % plain("alice", ALICE_PW))
    c.close()  # during the password check
    c = raw_tls(h)
    c.send("AUTH PLAIN %s\r\n" % plain("alice", WRONG_PW))
    deadline = time.monotonic() + 10
    while "result=failed" not in h.logs():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    c.close()  # during the delayed 535
    c = raw_tls(h)
    auth_ok(c)
    c.close()


def test_timeout_inside_exchange(make_auth_hatod):
    h = make_auth_hatod(limits={"timeout_command": 1})
    c = raw_tls(h)
    assert c.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    t = time.monotonic()
    assert c.reply() == "421 4.4.2 Timeout, closing connection"
    assert time.monotonic() - t < 5
    assert closed(c)


def test_sigterm_during_auth_delay_exits_promptly(make_auth_hatod):
    h = make_auth_hatod(limits={"auth_delay_ms": 30000})
    c = raw_tls(h)
    c.send("AUTH PLAIN %s\r\n" % plain("alice", WRONG_PW))
    deadline = time.monotonic() + 10
    while "result=failed" not in h.logs():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    t = time.monotonic()
    assert h.stop(signal.SIGTERM, timeout=20) == 0
    assert time.monotonic() - t < 12  # the 10 s grace at most, never the 30 s delay
    c.close()


# ---------------------------------------------------------------------------
# Brute force

def test_session_closed_after_auth_failures_max(make_auth_hatod):
    h = make_auth_hatod(limits={"auth_failures_max": 3})
    c = raw_tls(h)
    assert c.cmd("AUTH PLAIN " + plain("alice", WRONG_PW)) == AUTH_FAILED
    assert c.cmd("AUTH LOGIN " + b64("alice")) == "334 UGFzc3dvcmQ6"
    assert c.cmd(b64(WRONG_PW)) == AUTH_FAILED
    assert c.cmd("AUTH PLAIN " + plain("nosuchuser", WRONG_PW)) == AUTH_FAILED
    assert c.reply() == "421 4.7.0 Too many failed authentications, closing connection"
    assert closed(c)
    assert "event=auth_too_many" in h.logs()
    # the right password in a new session still works (address budget not hit)
    c = raw_tls(h)
    auth_ok(c)
    c.close()


def test_failure_delay_doubles(make_auth_hatod):
    """auth_delay_ms 300: the 535s wait 0.3, 0.6, 1.2 s, plus the check and
    the round trip (given up to SLACK s); a success right after is not
    delayed (the next failure would wait 2.4 s)."""
    h = make_auth_hatod(limits={"auth_delay_ms": 300, "auth_failures_max": 4})
    c = raw_tls(h)
    times = []
    for _ in range(3):
        r, t = timed(c, "AUTH PLAIN " + plain("alice", WRONG_PW))
        assert r == AUTH_FAILED
        times.append(t)
    # with these bounds neither a constant nor a linear delay fits
    SLACK = 0.6
    for t, delay in zip(times, (0.3, 0.6, 1.2)):
        assert delay <= t < delay + SLACK, times
    r, t = timed(c, "AUTH PLAIN " + plain("alice", ALICE_PW))
    assert r == AUTH_OK and t < 1.0, t
    c.close()


def test_default_failure_delay_grows(make_auth_hatod):
    """Built-in auth_delay_ms (1000): 1 s, then 2 s."""
    h = make_auth_hatod(limits={"auth_delay_ms": None})
    c = raw_tls(h)
    r1, t1 = timed(c, "AUTH PLAIN " + plain("alice", WRONG_PW))
    r2, t2 = timed(c, "AUTH PLAIN " + plain("alice", WRONG_PW))
    assert r1 == r2 == AUTH_FAILED
    assert 1.0 <= t1 < 2.0, t1
    assert 2.0 <= t2 < 3.5, t2
    c.close()


def test_nothing_read_during_failure_delay(make_auth_hatod):
    """Pipelined attempts do not run during the delay: the second failure
    comes after both delays, and a NOOP waits too."""
    h = make_auth_hatod(limits={"auth_delay_ms": 300, "auth_failures_max": 5})
    c = raw_tls(h)
    t = time.monotonic()
    c.send("AUTH PLAIN %s\r\nAUTH PLAIN %s\r\nNOOP\r\n"
           % (plain("alice", WRONG_PW), plain("alice", BOB_PW)))
    assert c.reply() == AUTH_FAILED
    t1 = time.monotonic() - t
    assert c.reply() == AUTH_FAILED
    t2 = time.monotonic() - t
    assert c.reply() == "250 2.0.0 OK"
    assert t1 >= 0.3 and t2 >= 0.9, (t1, t2)
    c.close()


def test_client_lockout_across_sessions(make_auth_hatod):
    h = make_auth_hatod(limits={"auth_failures_max": 3, "auth_client_failures": 4,
                                "auth_client_window": 60, "auth_client_lockout": 60})
    c = raw_tls(h)
    for _ in range(3):
        assert c.cmd("AUTH PLAIN " + plain("alice", WRONG_PW)) == AUTH_FAILED
    assert c.reply().startswith("421 4.7.0 ")
    assert closed(c)
    # 3 failures so far: the right password still works
    c = raw_tls(h, "subs")
    auth_ok(c)
    c.close()
    # the 4th failure locks the address out
    c = raw_tls(h)
    assert c.cmd("AUTH LOGIN " + b64("bob")) == "334 UGFzc3dvcmQ6"
    assert c.cmd(b64(WRONG_PW)) == AUTH_FAILED
    locked = "454 4.7.0 Too many failed authentications from this address, try again later"
    assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == locked
    c.close()
    for name in ("sub", "subs"):
        c = raw_tls(h, name)
        assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == locked
        assert c.cmd("AUTH LOGIN") == locked
        assert c.cmd("MAIL FROM:<alice@localhost>") == "530 5.7.0 Authentication required"
        c.close()
    assert "event=auth_lockout client=127.0.0.1 seconds=60" in h.logs()
    # another address is not locked out
    c = raw_tls(h, source="127.0.0.2")
    auth_ok(c)
    c.close()
    assert "client=127.0.0.2 result=ok" in h.logs()


def test_lockout_ends(make_auth_hatod):
    """auth_client_lockout counts whole seconds (time(NULL)): 2 s means
    between 1 and 2 s, so the 454 is checked at once and the end after 2.2 s."""
    h = make_auth_hatod(limits={"auth_client_failures": 2, "auth_client_window": 60,
                                "auth_client_lockout": 2})
    c = raw_tls(h)
    assert c.cmd("AUTH PLAIN " + plain("alice", WRONG_PW)) == AUTH_FAILED
    assert c.cmd("AUTH PLAIN " + plain("alice", WRONG_PW)) == AUTH_FAILED
    assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)).startswith("454 4.7.0 ")
    c.close()
    time.sleep(2.2)
    c = raw_tls(h)
    auth_ok(c)
    c.close()


def test_log_names_user_never_password(make_auth_hatod):
    """Even with -v (every command logged), no password or base64 of one."""
    h = make_auth_hatod(extra_args=("-v",), limits={"auth_failures_max": 10})
    c = raw_tls(h)
    assert c.cmd("AUTH PLAIN " + plain("alice", WRONG_PW)) == AUTH_FAILED
    assert c.cmd("AUTH PLAIN " + plain("nosuchuser", BOB_PW)) == AUTH_FAILED
    assert c.cmd("AUTH PLAIN") == "334 "
    assert c.cmd(plain("bob", WRONG_PW)) == AUTH_FAILED
    assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW, authzid="bob")) == AUTH_FAILED
    assert c.cmd("AUTH LOGIN " + b64("bob")) == "334 UGFzc3dvcmQ6"
    assert c.cmd(b64(ALICE_PW)) == AUTH_FAILED
    assert c.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    assert c.cmd(b64("alice")) == "334 UGFzc3dvcmQ6"
    assert c.cmd(b64(ALICE_PW)) == AUTH_OK
    c.close()
    with smtp_client(h, "subs") as s:
        s.login("bob", BOB_PW)
    logs = h.logs()
    assert 'result=failed user="alice"' in logs
    assert 'result=failed user="nosuchuser"' in logs
    assert 'result=failed user="bob"' in logs
    assert 'result=ok user="alice"' in logs
    assert 'result=ok user="bob"' in logs
    assert "AUTH PLAIN" in logs or "AUTH LOGIN" in logs  # -v is on
    for secret in (ALICE_PW, BOB_PW, WRONG_PW):
        assert secret not in logs
        assert b64(secret) not in logs
    for user, pw in (("alice", WRONG_PW), ("nosuchuser", BOB_PW), ("bob", WRONG_PW),
                     ("alice", ALICE_PW), ("bob", BOB_PW)):
        assert plain(user, pw) not in logs
        # a base64 run covering the password, whatever the alignment
        assert plain(user, pw)[8:-4] not in logs


def test_log_escapes_user_name(ah):
    """A LOGIN user name with CR LF cannot forge a log line."""
    c = raw_tls(ah)
    assert c.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    evil = "x\r\n2026-01-01T00:00:00.000Z level=info event=auth result=ok user=\"root\""
    assert c.cmd(b64(evil)) == "334 UGFzc3dvcmQ6"
    assert c.cmd(b64(WRONG_PW)) == AUTH_FAILED
    c.close()
    for line in ah.logs().splitlines():
        assert not line.startswith("2026-01-01T00:00:00.000Z"), line
        assert 'user="root"' not in line or "event=auth session=" in line, line


# ---------------------------------------------------------------------------
# Sender ownership and relay

SENDER_REFUSED = "553 5.7.1 Sender address not owned by authenticated user"


def test_sender_ownership_default(ah):
    c = raw_tls(ah)
    auth_ok(c)
    for sender in ("alice@localhost", "alice@test.example", "alice@LOCALHOST", "<>"):
        arg = sender if sender == "<>" else "<%s>" % sender
        assert c.cmd("MAIL FROM:" + arg) == "250 2.1.0 Sender OK", sender
        assert c.cmd("RSET").startswith("250 ")
    for sender in ("bob@localhost", "alice@remote.example", "alicex@localhost",
                   "xalice@localhost", "postmaster@localhost", "alice@[127.0.0.1]"):
        assert c.cmd("MAIL FROM:<%s>" % sender) == SENDER_REFUSED, sender
    c.close()
    assert 'event=sender_refused session=' in ah.logs()
    assert 'user="alice" from="<bob@localhost>"' in ah.logs()
    with smtp_client(ah, "subs") as s:
        s.login("bob", BOB_PW)
        assert s.sendmail("bob@localhost", ["x@remote.example"], MSG) == {}
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("alice@localhost", ["x@remote.example"], MSG)
        assert e.value.smtp_code == 553
    [(env, _)] = ah.queued()
    assert env["sender"] == "<bob@localhost>" and env["auth-user"] == "bob"


def test_sender_ownership_senders_section(make_auth_hatod):
    h = make_auth_hatod(senders={"alice": "@example.org, sales@example.net",
                                 "bob": "*"})
    c = raw_tls(h)
    auth_ok(c)
    for sender in ("x@example.org", "alice@example.org", "x@EXAMPLE.ORG",
                   "sales@example.net", "<>"):
        arg = sender if sender == "<>" else "<%s>" % sender
        assert c.cmd("MAIL FROM:" + arg) == "250 2.1.0 Sender OK", sender
        assert c.cmd("RSET").startswith("250 ")
    for sender in ("alice@localhost", "alice@test.example", "x@sub.example.org",
                   "info@example.net", "x@example.org.evil"):
        assert c.cmd("MAIL FROM:<%s>" % sender) == SENDER_REFUSED, sender
    c.close()
    c = raw_tls(h, "subs")
    auth_ok(c, "bob", BOB_PW)
    for sender in ("anyone@anywhere.example", "alice@localhost", "bob@localhost"):
        assert c.cmd("MAIL FROM:<%s>" % sender) == "250 2.1.0 Sender OK", sender
        assert c.cmd("RSET").startswith("250 ")
    c.close()


def test_sender_ownership_login_is_address(make_auth_hatod):
    h = make_auth_hatod(users={"carol@example.net": "C4rol-Pass-Jp2"})
    c = raw_tls(h)
    auth_ok(c, "carol@example.net", "C4rol-Pass-Jp2")
    assert c.cmd("MAIL FROM:<carol@example.net>") == "250 2.1.0 Sender OK"
    assert c.cmd("RSET").startswith("250 ")
    for sender in ("carol@localhost", "carol@example.org", "x@example.net"):
        assert c.cmd("MAIL FROM:<%s>" % sender) == SENDER_REFUSED, sender
    c.close()


def sender_replies(h, user, password, senders):
    """{sender: MAIL FROM reply} for each sender (written as it goes on the
    wire, between the angle brackets), in one session logged in as user."""
    c = raw_tls(h)
    auth_ok(c, user, password)
    out = {}
    for sender in senders:
        out[sender] = c.cmd("MAIL FROM:<%s>" % sender)
        c.cmd("RSET")
    c.close()
    return out


def test_sender_ownership_subaddress_and_quoting(make_auth_hatod):
    """A subaddress of an address a user owns (recipient_delimiter) or a
    quoting of it is the user's too - by default, through [senders] and for
    a login that is an address; a longer name, another user's subaddress
    or a quoted different name is not."""
    pw = dict(USERS, **{"carol@example.net": "C4rol-Pass-Jp2"})
    h = make_auth_hatod(senders={"bob": "sales@example.net"}, users=pw)
    ok, no = "250 2.1.0 Sender OK", SENDER_REFUSED
    want = {
        "alice": {"alice+tag@localhost": ok, "Alice+Tag@test.example": ok,
                  '"alice"@localhost': ok, '"alice+tag"@localhost': ok,
                  '"Al\\ice"@localhost': ok, "alice+@localhost": ok,
                  "alice-tag@localhost": no, '"alice x"@localhost': no,
                  "alicex+tag@localhost": no, "+alice@localhost": no,
                  "bob+alice@localhost": no, "alice+tag@remote.example": no},
        "bob": {"sales+q3@example.net": ok, '"sales"@example.net': ok,
                "salesx@example.net": no, "bob+tag@localhost": no},
        "carol@example.net": {"carol+x@example.net": ok, '"carol"@example.net': ok,
                              "carol+x@example.org": no, "carolx@example.net": no},
    }
    for user, cases in want.items():
        got = sender_replies(h, user, pw[user], cases)
        assert got == cases, (user, got)
    # recipient_delimiter is what makes a subaddress
    h2 = make_auth_hatod(delivery={"recipient_delimiter": "-"})
    got = sender_replies(h2, "alice", ALICE_PW, ["alice-tag@localhost", "alice+tag@localhost"])
    assert got == {"alice-tag@localhost": ok, "alice+tag@localhost": no}, got


def test_relay_needs_auth_on_optional_listener(ah):
    c = raw_tls(ah, "opt")
    assert c.cmd("MAIL FROM:<someone@remote.example>") == "250 2.1.0 Sender OK"
    assert c.cmd("RCPT TO:<x@remote.example>") == "554 5.7.1 Relay access denied"
    assert c.cmd("RCPT TO:<x@localhost>") == "250 2.1.5 Recipient OK"
    assert c.cmd("RSET").startswith("250 ")
    auth_ok(c)
    assert c.cmd("MAIL FROM:<alice@localhost>") == "250 2.1.0 Sender OK"
    assert c.cmd("RCPT TO:<x@remote.example>") == "250 2.1.5 Recipient OK"
    assert c.cmd("RCPT TO:<y@localhost>") == "250 2.1.5 Recipient OK"
    assert c.cmd("DATA").startswith("354")
    assert c.cmd(MSG.decode() + ".").startswith("250 2.0.0 OK queued")
    c.close()
    [(env, _)] = ah.queued()
    assert env["rcpt"] == ["<x@remote.example>", "<y@localhost>"]
    assert env["auth-user"] == "alice"
    # unauthenticated mail on the optional listener carries no auth-user
    c = raw_tls(ah, "opt")
    assert c.cmd("MAIL FROM:<someone@remote.example>").startswith("250 ")
    assert c.cmd("RCPT TO:<x@localhost>").startswith("250 ")
    assert c.cmd("DATA").startswith("354")
    assert c.cmd(MSG.decode() + ".").startswith("250 ")
    c.close()
    envs = [e for e, _ in ah.queued() if e["sender"] == "<someone@remote.example>"]
    assert len(envs) == 1 and "auth-user" not in envs[0]


# ---------------------------------------------------------------------------
# MAIL FROM ... AUTH=

def send_one(c, mail_line, rcpt="<x@remote.example>"):
    assert c.cmd(mail_line) == "250 2.1.0 Sender OK"
    assert c.cmd("RCPT TO:%s" % rcpt) == "250 2.1.5 Recipient OK"
    assert c.cmd("DATA").startswith("354")
    assert c.cmd(MSG.decode() + ".").startswith("250 2.0.0 OK queued")


def test_mail_auth_param(ah):
    c = raw_tls(ah)
    auth_ok(c)
    send_one(c, "MAIL FROM:<alice@localhost> AUTH=<>")
    send_one(c, "MAIL FROM:<alice@localhost> AUTH=alice+40localhost", "<y@remote.example>")
    send_one(c, "MAIL FROM:<alice@localhost>", "<z@remote.example>")
    for bad in ("AUTH=+4", "AUTH=+", "AUTH=+4G", "AUTH=a+zz", "AUTH=", "AUTH",
                "AUTH=<> AUTH=<>"):
        assert c.cmd("MAIL FROM:<alice@localhost> " + bad) == "501 5.5.4 Invalid arguments", bad
    c.close()
    envs = {e["rcpt"][0]: e for e, _ in ah.queued()}
    assert envs["<x@remote.example>"]["auth-param"] == "<>"
    assert envs["<y@remote.example>"]["auth-param"] == "alice@localhost"
    assert "auth-param" not in envs["<z@remote.example>"]
    for e in envs.values():
        assert e["auth-user"] == "alice"
    text = ah.envelope_text(envs["<y@remote.example>"]["id"])
    assert "\nauth-user: alice\n" in text and "\nauth-param: alice@localhost\n" in text


def xtext(text):
    return "".join("+%02X" % ord(ch) if ch in "+=" or not 33 <= ord(ch) <= 126 else ch
                   for ch in text)


@pytest.mark.parametrize("listener,tls", [("mx", False), ("mx", True), ("sub", True)])
def test_mail_auth_param_cannot_inject_envelope_lines(ah, listener, tls):
    """AUTH=x+0Arcpt:... must not become an envelope line.  (Bug at 8d172ab:
    the decoded LF went raw into the .env file, so any client, even
    unauthenticated in plaintext on port 25, added a recipient in any
    domain -- an open relay -- that `hato queue` listed.)"""
    if tls:
        c = raw_tls(ah, listener)
    else:
        c = RawSMTP(ah.host, ah.ports[listener])
        assert c.cmd("EHLO c.example").startswith("250")
    if listener == "sub":
        auth_ok(c)
    inject = "x\nrcpt: state=pending attempts=0 next=0 addr=<victim@elsewhere.example>"
    r = c.cmd("MAIL FROM:<alice@localhost> AUTH=" + xtext(inject))
    if r.startswith("250 "):
        assert c.cmd("RCPT TO:<postmaster@localhost>").startswith("250 ")
        assert c.cmd("DATA").startswith("354")
        assert c.cmd(MSG.decode() + ".").startswith("250 ")
    else:
        assert r == "501 5.5.4 Invalid arguments"
    c.close()
    for env, _ in ah.queued():
        assert env["rcpt"] == ["<postmaster@localhost>"], env
        assert "\n" not in env.get("auth-param", "")
    q = subprocess.run([HATO, "-c", ah.conf_path, "queue"], capture_output=True, text=True,
                       timeout=30)
    assert q.returncode == 0 and "victim@elsewhere.example" not in q.stdout, q.stdout


# ---------------------------------------------------------------------------
# Submission fix-ups (RFC 6409 §8)

def data(c, msg):
    assert c.cmd("DATA").startswith("354")
    r = c.cmd(msg.decode() + ".")
    assert r.startswith("250 2.0.0 OK queued"), r


def authed_send(h, msg, rcpts=("<bob@remote.example>",), listener="sub", user="alice",
                password=ALICE_PW):
    c = raw_tls(h, listener)
    auth_ok(c, user, password)
    assert c.cmd("MAIL FROM:<%s@localhost>" % user) == "250 2.1.0 Sender OK"
    for r in rcpts:
        assert c.cmd("RCPT TO:%s" % r) == "250 2.1.5 Recipient OK"
    data(c, msg)
    c.close()


def check_added(lines, now=None):
    """lines: the two added header lines; returns them as a dict."""
    got = {}
    for line in lines:
        name, _, value = line.partition(b": ")
        got[name] = value
    assert set(got) == {b"Date", b"Message-ID"}, lines
    when = email.utils.parsedate_to_datetime(got[b"Date"].decode())
    assert abs(when.timestamp() - time.time()) < 600, got[b"Date"]
    assert re.fullmatch(rb"<[^<>@\s]+@mx\.test\.example>", got[b"Message-ID"]), got
    return got


def test_fixups_add_date_and_message_id(ah):
    orig_head = [b"From: alice@localhost", b"To: bob@remote.example", b"Subject: no date"]
    body = b"line one\r\n\r\nDate: in the body is not a header\r\n"
    msg = b"\r\n".join(orig_head) + b"\r\n\r\n" + body
    authed_send(ah, msg)
    [(env, stored)] = ah.queued()
    head, _, got_body = strip_received(stored).partition(b"\r\n\r\n")
    assert got_body == body
    lines = head.split(b"\r\n")
    assert lines[:3] == orig_head
    check_added(lines[3:])
    assert "added_date=yes added_message_id=yes" in ah.logs()


def test_fixups_keep_own_date_and_message_id(ah):
    authed_send(ah, MSG)
    msg2 = b"DATE: Tue, 02 Jan 2024 10:00:00 +0100\r\nSubject: two\r\n" \
           b"Message-Id:\r\n <folded@client.example>\r\n\r\nbody\r\n"
    authed_send(ah, msg2, rcpts=("<other@remote.example>",))
    stored = {e["rcpt"][0]: m for e, m in ah.queued()}
    assert strip_received(stored["<bob@remote.example>"]) == MSG
    assert strip_received(stored["<other@remote.example>"]) == msg2


def test_fixups_only_one_missing(ah):
    msg = b"Subject: has date\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\nb\r\n"
    authed_send(ah, msg)
    [(env, stored)] = ah.queued()
    head = header_of(stored).split(b"\r\n")
    assert head[:2] == [b"Subject: has date", b"Date: Mon, 01 Jan 2024 00:00:00 +0000"]
    assert len(head) == 3 and re.fullmatch(rb"Message-ID: <[^<>@\s]+@mx\.test\.example>",
                                           head[2]), head


def test_fixups_remove_bcc_keep_recipients(ah):
    msg = (b"From: alice@localhost\r\n"
           b"To: bob@remote.example\r\n"
           b"Bcc: carol@remote.example,\r\n"
           b"\tdave@remote.example,\r\n"
           b"  erin@remote.example\r\n"
           b"Subject: secret copies\r\n"
           b"bcc: frank@remote.example\r\n"
           b"X-Bcc-Note: kept\r\n"
           b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
           b"Message-ID: <bcc@client.example>\r\n"
           b"BCC:\r\n"
           b"\r\n"
           b"body\r\n"
           b"Bcc: body lines are not headers\r\n")
    rcpts = ["<bob@remote.example>", "<carol@remote.example>", "<dave@remote.example>",
             "<erin@remote.example>", "<frank@remote.example>"]
    authed_send(ah, msg, rcpts=rcpts)
    [(env, stored)] = ah.queued()
    assert env["rcpt"] == rcpts
    assert strip_received(stored) == (
        b"From: alice@localhost\r\n"
        b"To: bob@remote.example\r\n"
        b"Subject: secret copies\r\n"
        b"X-Bcc-Note: kept\r\n"
        b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
        b"Message-ID: <bcc@client.example>\r\n"
        b"\r\n"
        b"body\r\n"
        b"Bcc: body lines are not headers\r\n")
    assert "removed_bcc=3" in ah.logs()


def test_fixups_lookalike_headers_do_not_count(ah):
    """Resent-Date / X-Message-ID are not Date / Message-ID; Bcc-like names
    are not Bcc."""
    msg = (b"Resent-Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nX-Message-ID: <x@y>\r\n"
           b"Message-IDs: <z@y>\r\nX-Bcc: kept\r\nBccx: kept\r\nResent-Bcc: kept\r\n"
           b"\r\nbody\r\n")
    authed_send(ah, msg)
    [(env, stored)] = ah.queued()
    head, _, body = strip_received(stored).partition(b"\r\n\r\n")
    assert body == b"body\r\n"
    lines = head.split(b"\r\n")
    assert lines[:6] == msg.split(b"\r\n")[:6]
    check_added(lines[6:])


def test_fixups_long_folded_headers(ah):
    """Long folded headers: a Bcc of 16 kB goes entirely, another of the
    same size stays byte for byte."""
    bcc = b"Bcc: first@remote.example" + b"".join(
        b",\r\n\tbcc%03d@remote.example%s" % (i, b"x" * 50) for i in range(300))
    refs = b"References: <a@b>" + b"".join(
        b"\r\n <ref%03d@client.example%s>" % (i, b"y" * 50) for i in range(300))
    msg = (b"Subject: long\r\n" + bcc + b"\r\n" + refs + b"\r\n"
           b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <long@client.example>\r\n"
           + bcc.replace(b"Bcc:", b"bcc:") + b"\r\n\r\nbody\r\n")
    authed_send(ah, msg)
    [(env, stored)] = ah.queued()
    assert strip_received(stored) == (
        b"Subject: long\r\n" + refs + b"\r\n"
        b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <long@client.example>\r\n"
        b"\r\nbody\r\n")


def test_fixups_with_bdat_chunks_split_in_headers(ah):
    msg = (b"From: alice@localhost\r\nBcc: hidden@remote.example,\r\n\tmore@remote.example\r\n"
           b"Subject: chunks\r\n\r\nchunked body\r\n")
    cuts = [msg.index(b"Bc") + 2, msg.index(b"\tmore") + 1, msg.index(b"\r\n\r\n") + 1]
    pieces = [msg[a:b] for a, b in zip([0] + cuts, cuts + [len(msg)])]
    c = raw_tls(ah)
    auth_ok(c)
    assert c.cmd("MAIL FROM:<alice@localhost>") == "250 2.1.0 Sender OK"
    assert c.cmd("RCPT TO:<hidden@remote.example>").startswith("250 ")
    for i, p in enumerate(pieces):
        last = " LAST" if i == len(pieces) - 1 else ""
        c.send(b"BDAT %d%s\r\n" % (len(p), last.encode()) + p)
        r = c.reply()
        assert r.startswith("250 "), r
    c.close()
    [(env, stored)] = ah.queued()
    head, _, body = strip_received(stored).partition(b"\r\n\r\n")
    assert body == b"chunked body\r\n"
    lines = head.split(b"\r\n")
    assert lines[:2] == [b"From: alice@localhost", b"Subject: chunks"]
    check_added(lines[2:])


def test_fixups_message_without_body_or_header(ah):
    authed_send(ah, b"Subject: header only\r\nBcc: c@remote.example\r\n",
                rcpts=("<a@remote.example>",))
    authed_send(ah, b"\r\nbody only\r\n", rcpts=("<b@remote.example>",))
    stored = {e["rcpt"][0]: strip_received(m) for e, m in ah.queued()}
    m = stored["<a@remote.example>"]
    assert m.startswith(b"Subject: header only\r\n") and m.endswith(b"\r\n")
    lines = m.rstrip(b"\r\n").split(b"\r\n")
    assert lines[0] == b"Subject: header only"
    check_added([x for x in lines[1:] if x])
    m = stored["<b@remote.example>"]
    head, sep, body = m.partition(b"\r\n\r\n")
    assert sep and body == b"body only\r\n"
    check_added(head.split(b"\r\n"))


def test_received_header_authenticated(ah):
    authed_send(ah, MSG)
    [(env, stored)] = ah.queued()
    rec = received_of(stored)
    assert rec.startswith(b"Received: from c.example (unknown [127.0.0.1])\r\n")
    assert b"\t(Authenticated sender: alice)\r\n" in rec
    assert b"with ESMTPSA id " + env["id"].encode() in rec
    # SMTPUTF8 + TLS + AUTH: UTF8SMTPSA (RFC 6531)
    c = raw_tls(ah, "subs")
    auth_ok(c)
    assert c.cmd("MAIL FROM:<alice@localhost> SMTPUTF8") == "250 2.1.0 Sender OK"
    assert c.cmd("RCPT TO:<j\u00fcrgen@remote.example>") == "250 2.1.5 Recipient OK"
    data(c, MSG)
    c.close()
    [stored] = [m for e, m in ah.queued() if e["smtputf8"] == "yes"]
    assert b"with UTF8SMTPSA id " in received_of(stored)


def test_received_hide_client(make_auth_hatod):
    h = make_auth_hatod(server={"received_hide_client": "yes"})
    authed_send(h, MSG, rcpts=("<bob@remote.example>",), listener="subs")
    # unauthenticated mail keeps the client in its Received header
    c = raw_tls(h, "mx")
    assert c.cmd("MAIL FROM:<x@remote.example>").startswith("250 ")
    assert c.cmd("RCPT TO:<y@localhost>").startswith("250 ")
    data(c, MSG)
    c.close()
    stored = {e["rcpt"][0]: m for e, m in h.queued()}
    rec = received_of(stored["<bob@remote.example>"])
    assert b"127.0.0.1" not in rec and b"unknown" not in rec, rec
    assert b"with ESMTPSA" in rec and b"(Authenticated sender: alice)" in rec
    assert b"127.0.0.1" not in header_of(stored["<bob@remote.example>"])
    rec = received_of(stored["<y@localhost>"])
    assert b"[127.0.0.1]" in rec and b"with ESMTPS " in rec and b"Authenticated" not in rec


@pytest.mark.parametrize("listener,tls", [("mx", False), ("mx", True), ("opt", True)])
def test_no_fixups_without_auth(ah, listener, tls):
    msg = b"From: x@remote.example\r\nTo: y@localhost\r\nBcc: z@localhost\r\n" \
          b"Subject: unauthenticated\r\n\r\nbody\r\n"
    if tls:
        c = raw_tls(ah, listener)
    else:
        c = RawSMTP(ah.host, ah.ports[listener])
        assert c.cmd("EHLO c.example").startswith("250")
    assert c.cmd("MAIL FROM:<x@remote.example>").startswith("250 ")
    assert c.cmd("RCPT TO:<y@localhost>").startswith("250 ")
    assert c.cmd("RCPT TO:<z@localhost>").startswith("250 ")
    data(c, msg)
    c.close()
    [(env, stored)] = ah.queued()
    assert strip_received(stored) == msg
    assert "auth-user" not in env
    rec = received_of(stored)
    assert b"ESMTPSA" not in rec and b"Authenticated" not in rec
    assert "event=submission_fixups" not in ah.logs()


# ---------------------------------------------------------------------------
# Users changing while hatod runs

def test_user_added_after_start(make_auth_hatod):
    h = make_auth_hatod(users={})
    c = raw_tls(h)
    assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == AUTH_FAILED
    c.close()
    hato_user(h, "add", "alice", "--stdin", password=ALICE_PW)
    c = raw_tls(h)
    auth_ok(c)
    c.close()
    hato_user(h, "add", "bob", "--stdin", password=BOB_PW)  # second change
    with smtp_client(h, "subs") as s:
        s.login("bob", BOB_PW)
        assert s.sendmail("bob@localhost", ["x@remote.example"], MSG) == {}


def test_user_deleted_and_password_changed(ah):
    c = raw_tls(ah)
    auth_ok(c, "bob", BOB_PW)
    c.close()
    hato_user(ah, "del", "bob")
    c = raw_tls(ah)
    assert c.cmd("AUTH PLAIN " + plain("bob", BOB_PW)) == AUTH_FAILED
    c.close()
    new_pw = "N3w-Alice-Pw-4r"
    hato_user(ah, "passwd", "alice", "--stdin", password=new_pw)
    c = raw_tls(ah)
    assert c.cmd("AUTH PLAIN " + plain("alice", ALICE_PW)) == AUTH_FAILED
    auth_ok(c, "alice", new_pw)
    c.close()


def test_sighup_reloads_users(ah):
    hato_user(ah, "add", "zed", "--stdin", password="Z3d-Pass-Wq1")
    ah.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "action=reload_users result=ok users=3" not in ah.logs():
        assert time.monotonic() < deadline, ah.logs()[-2000:]
        time.sleep(0.02)
    c = raw_tls(ah)
    auth_ok(c, "zed", "Z3d-Pass-Wq1")
    c.close()
    hato_user(ah, "del", "zed")
    ah.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "action=reload_users result=ok users=2" not in ah.logs():
        assert time.monotonic() < deadline, ah.logs()[-2000:]
        time.sleep(0.02)
    c = raw_tls(ah)
    assert c.cmd("AUTH PLAIN " + plain("zed", "Z3d-Pass-Wq1")) == AUTH_FAILED
    c.close()


def test_broken_users_file_keeps_previous_users(ah):
    path = os.path.join(ah.state_dir, "users")
    st = os.stat(path)
    with open(path, "a") as f:
        f.write("this line does not parse\n")
    os.chown(path, st.st_uid, st.st_gid)
    c = raw_tls(ah)
    auth_ok(c)  # the previous users stay
    c.close()
    assert "event=users_reload_failed" in ah.logs()
    assert ALICE_PW not in ah.logs()


def slow_hash(password, cost=11):
    """A yescrypt hash that takes seconds to check (libcrypt's own salt)."""
    import ctypes
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib.crypt(password.encode(), lib.crypt_gensalt(b"$y$", cost, None, 0)).decode()


@pytest.mark.parametrize("listener", ["sub", "subs"])
def test_command_timeout_waits_for_the_password_check_in_flight(make_auth_hatod, listener):
    """A check slower than timeout_command: the client, which waits for
    our answer, gets it (and the session goes on), not a 421 that frees
    the session under the check's callback.  After STARTTLS (sub) and with
    implicit TLS (subs)."""
    h = make_auth_hatod(limits={"timeout_command": 1})
    path = os.path.join(h.state_dir, "users")
    st = os.stat(path)
    with open(path, "a") as f:
        f.write("slow:%s\n" % slow_hash("S1ow-Pass-Qz7"))
    os.chown(path, st.st_uid, st.st_gid)
    c = raw_tls(h, listener)
    r, t = timed(c, "AUTH PLAIN " + plain("slow", "S1ow-Pass-Qz7"))
    assert r == AUTH_OK and t > 1.2, (r, t)
    assert c.cmd("NOOP") == "250 2.0.0 OK"
    c.close()
    assert "event=timeout" not in h.logs()


def test_sigterm_during_a_failing_password_check(make_auth_hatod):
    """SIGTERM while a check runs that then fails: the session gets its
    535, then 421, and nothing more is read (it used to go on taking
    MAIL, RCPT and DATA during the shutdown)."""
    h = make_auth_hatod()
    path = os.path.join(h.state_dir, "users")
    st = os.stat(path)
    with open(path, "a") as f:
        f.write("slow:%s\n" % slow_hash("S1ow-Pass-Qz7"))
    os.chown(path, st.st_uid, st.st_gid)
    c = raw_tls(h)
    c.send(b"AUTH PLAIN " + plain("slow", "wrong-password").encode() + b"\r\n")
    time.sleep(0.5)  # the check is running
    h.proc.send_signal(signal.SIGTERM)
    assert c.reply() == AUTH_FAILED
    c.send(b"MAIL FROM:<alice@localhost>\r\n")
    assert c.reply().startswith("421 ")
    assert c.eof()
    assert h.proc.wait(15) == 0
