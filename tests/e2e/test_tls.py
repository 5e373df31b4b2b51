"""TLS: STARTTLS (RFC 3207) and implicit TLS (RFC 8314) with real clients —
smtplib, openssl s_client, swaks, curl — and the failure cases: old
protocol versions, plaintext injected after STARTTLS, garbage and vanishing
clients during the handshake, certificate reload by SIGHUP, SNI."""
import hashlib
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import free_port, strip_received

MSG = b"Subject: tls\r\n\r\nencrypted body\r\n"


def tls_hatod(make_hatod, **kw):
    """hatod with one listener of each TLS mode."""
    ports = {m: free_port() for m in ("none", "starttls", "required", "implicit")}
    listeners = {m: {"address": "127.0.0.1:%d" % p, "tls": m} for m, p in ports.items()}
    h = make_hatod(listeners=listeners, **kw)
    h.ports = ports
    return h


def client_ctx(**kw):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def make_cert(directory, name, cn):
    """A throwaway self-signed certificate for cn; returns (cert, key)."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=DNS:" + cn, "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    os.chmod(key, 0o644)  # readable by the hato user, for reloads
    return cert, key


def peer_fingerprint(port, server_name=None):
    """SHA-256 of the certificate an implicit-TLS listener presents."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_ctx().wrap_socket(raw, server_hostname=server_name) as s:
            der = s.getpeercert(binary_form=True)
            s.recv(512)
    return hashlib.sha256(der).hexdigest()


def test_starttls_smtplib_and_headers(make_hatod):
    h = tls_hatod(make_hatod)
    with smtplib.SMTP("127.0.0.1", h.ports["starttls"], timeout=10) as s:
        code, before = s.ehlo("c.example")
        assert b"STARTTLS" in before.split(b"\n")
        assert s.starttls(context=client_ctx())[0] == 220
        code, after = s.ehlo("c.example")
        assert code == 250 and b"STARTTLS" not in after
        assert s.sendmail("a@localhost", ["b@localhost"], MSG) == {}
    [(env, msg)] = h.queued()
    head = msg.split(b"\r\n\r\n", 1)[0]
    assert b"with ESMTPS id" in head
    assert b"(using TLSv1.3 with cipher TLS_" in head
    assert strip_received(msg) == MSG
    assert "event=tls_established" in h.logs()


def test_implicit_tls_smtplib(make_hatod):
    h = tls_hatod(make_hatod)
    with smtplib.SMTP_SSL("127.0.0.1", h.ports["implicit"], context=client_ctx(),
                          timeout=10) as s:
        code, ehlo = s.ehlo("c.example")
        assert code == 250 and b"STARTTLS" not in ehlo
        assert s.sendmail("a@localhost", ["b@localhost"], MSG) == {}
    [(env, msg)] = h.queued()
    assert b"with ESMTPS id" in msg.split(b"\r\n\r\n", 1)[0]


def test_required_refuses_mail_before_tls(make_hatod):
    h = tls_hatod(make_hatod)
    with smtplib.SMTP("127.0.0.1", h.ports["required"], timeout=10) as s:
        s.ehlo("c.example")
        assert s.mail("a@localhost") == (530, b"5.7.0 Must issue a STARTTLS command first")
        s.starttls(context=client_ctx())
        s.ehlo("c.example")
        assert s.mail("a@localhost")[0] == 250


def test_starttls_errors(make_hatod):
    h = tls_hatod(make_hatod)
    with smtplib.SMTP("127.0.0.1", h.ports["starttls"], timeout=10) as s:
        assert s.docmd("STARTTLS")[0] == 503  # before EHLO
        s.ehlo("c.example")
        assert s.docmd("STARTTLS", "now") == (501, b"5.5.4 Syntax: STARTTLS (no parameters)")
        s.mail("a@localhost")
        assert s.docmd("STARTTLS")[0] == 503  # inside a transaction
        s.rset()
        s.starttls(context=client_ctx())
        s.ehlo("c.example")
        assert s.docmd("STARTTLS") == (503, b"5.5.1 TLS already active")
    with smtplib.SMTP("127.0.0.1", h.ports["none"], timeout=10) as s:
        code, ehlo = s.ehlo("c.example")
        assert b"STARTTLS" not in ehlo
        assert s.docmd("STARTTLS")[0] == 502


def test_session_forgets_state_after_starttls(make_hatod):
    h = tls_hatod(make_hatod)
    with smtplib.SMTP("127.0.0.1", h.ports["starttls"], timeout=10) as s:
        s.ehlo("c.example")
        s.starttls(context=client_ctx())
        # no EHLO after the handshake: the session forgot the first one
        assert s.docmd("MAIL FROM:<a@localhost>")[0] == 503


def test_starttls_injection_is_discarded(make_hatod):
    """One write of STARTTLS and NOOP: the NOOP must never be answered."""
    h = tls_hatod(make_hatod)
    with socket.create_connection(("127.0.0.1", h.ports["starttls"]), timeout=10) as raw:
        f = raw.makefile("rb")
        assert f.readline().startswith(b"220 ")
        raw.sendall(b"EHLO c.example\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        raw.sendall(b"STARTTLS\r\nNOOP\r\n")
        assert f.readline() == b"220 2.0.0 Ready to start TLS\r\n"
        with client_ctx().wrap_socket(raw) as s:
            s.sendall(b"EHLO c.example\r\n")
            data = b""
            while not data.endswith(b"\r\n") or b"\r\n250 " not in b"\r\n" + data:
                chunk = s.recv(4096)
                assert chunk, "closed"
                data += chunk
            # the first thing inside TLS is the EHLO reply, not a NOOP reply
            assert data.startswith(b"250-"), data
            assert b"2.0.0 OK" not in data
            s.sendall(b"NOOP\r\n")
            assert s.recv(512) == b"250 2.0.0 OK\r\n"
    assert "event=starttls_plaintext_discarded" in h.logs()
    assert "octets=6" in h.logs()


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_tls_versions_refused(make_hatod, version):
    h = tls_hatod(make_hatod)
    v = getattr(ssl.TLSVersion, version)
    ctx = client_ctx(minimum_version=v, maximum_version=v)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", h.ports["implicit"]), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(raw).recv(100)
    # refused for its version, by hato's policy (not for some other reason)
    h.wait_log("routines::unsupported protocol")
    # and the listener still works
    with smtplib.SMTP_SSL("127.0.0.1", h.ports["implicit"], context=client_ctx(),
                          timeout=10) as s:
        assert s.noop()[0] == 250


def test_openssl_refuses_tls11_too(make_hatod):
    h = tls_hatod(make_hatod)
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % h.ports["implicit"],
                        "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
                       input=b"", capture_output=True, timeout=20)
    assert r.returncode != 0
    assert b"220 " not in r.stdout


def test_garbage_instead_of_client_hello(make_hatod):
    h = tls_hatod(make_hatod)
    base = h.logs().count("event=tls_failed")  # start()'s probe connections make some
    with socket.create_connection(("127.0.0.1", h.ports["implicit"]), timeout=10) as s:
        s.sendall(b"EHLO i.am.not.tls\r\n" + os.urandom(512))
        s.settimeout(10)
        try:
            data = s.recv(4096)
            while data:
                assert b"220 " not in data
                data = s.recv(4096)
        except ConnectionResetError:
            pass
    h.wait_log("event=tls_failed", count=base + 1)
    with smtplib.SMTP_SSL("127.0.0.1", h.ports["implicit"], context=client_ctx(),
                          timeout=10) as s:
        assert s.noop()[0] == 250


def client_hello():
    """The bytes of a real TLS ClientHello."""
    out = ssl.MemoryBIO()
    obj = client_ctx().wrap_bio(ssl.MemoryBIO(), out)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_client_vanishes_mid_handshake(make_hatod):
    h = tls_hatod(make_hatod)
    hello = client_hello()
    base = h.logs().count("event=tls_failed")  # start()'s probe connections make some
    with socket.create_connection(("127.0.0.1", h.ports["implicit"]), timeout=10) as s:
        s.sendall(hello[: len(hello) // 2])
    with socket.create_connection(("127.0.0.1", h.ports["starttls"]), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO x\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        s.sendall(b"STARTTLS\r\n")
        assert f.readline().startswith(b"220 2.0.0")
        s.sendall(hello)  # the whole hello, then gone before the server's answer is read
        f.close()  # else the file keeps the socket open past the with
    deadline = time.monotonic() + 10
    while h.logs().count("event=tls_failed") < base + 2:
        assert time.monotonic() < deadline, h.logs()
        time.sleep(0.05)
    assert "127.0.0.1" in h.logs().split("event=tls_failed")[base + 1].split("\n")[0]
    with smtplib.SMTP_SSL("127.0.0.1", h.ports["implicit"], context=client_ctx(),
                          timeout=10) as s:
        assert s.noop()[0] == 250


def test_handshake_timeout(make_hatod):
    h = tls_hatod(make_hatod, limits={"timeout_tls": 1})
    with socket.create_connection(("127.0.0.1", h.ports["implicit"]), timeout=10) as s:
        start = time.monotonic()
        assert s.recv(100) == b""  # closed by the server, nothing said in clear
        assert time.monotonic() - start < 5
    assert 'reason="handshake timeout"' in h.logs()


def test_openssl_s_client_starttls_and_implicit(make_hatod):
    h = tls_hatod(make_hatod)
    dialogue = (b"EHLO s.example\r\nMAIL FROM:<a@localhost>\r\nRCPT TO:<b@localhost>\r\n"
                b"DATA\r\nSubject: s_client\r\n\r\nvia openssl\r\n.\r\nQUIT\r\n")
    for args in (["-starttls", "smtp", "-connect", "127.0.0.1:%d" % h.ports["starttls"]],
                 ["-connect", "127.0.0.1:%d" % h.ports["implicit"]]):
        r = subprocess.run(["openssl", "s_client", "-quiet", "-crlf", *args],
                           input=dialogue.replace(b"\r\n", b"\n"), capture_output=True,
                           timeout=30)
        assert b"250 2.0.0 OK queued as" in r.stdout, r.stdout + r.stderr
        assert b"221 2.0.0" in r.stdout
    msgs = [strip_received(m) for _, m in h.queued()]
    assert msgs == [b"Subject: s_client\r\n\r\nvia openssl\r\n"] * 2


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks missing")
@pytest.mark.parametrize("mode,flag", [("starttls", "--tls"), ("implicit", "--tlsc")])
def test_swaks_tls(make_hatod, mode, flag):
    h = tls_hatod(make_hatod)
    r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % h.ports[mode], flag,
                        "--from", "a@localhost", "--to", "b@localhost",
                        "--header", "Subject: swaks " + mode, "--body", "tls body"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    [(env, msg)] = h.queued()
    assert b"Subject: swaks " + mode.encode() in msg
    assert b"with ESMTPS id" in msg


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_curl_tls(make_hatod, testdir, mode):
    h = tls_hatod(make_hatod)
    body = os.path.join(testdir, "curl.eml")
    with open(body, "wb") as f:
        f.write(b"Subject: curl " + mode.encode() + b"\r\n\r\nover TLS\r\n")
    url = ("smtp://127.0.0.1:%d" if mode == "starttls" else "smtps://127.0.0.1:%d") % h.ports[mode]
    extra = ["--ssl-reqd"] if mode == "starttls" else []
    r = subprocess.run(["curl", "-sS", "-k", url, *extra, "--mail-from", "a@localhost",
                        "--mail-rcpt", "b@localhost", "--upload-file", body],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    [(env, msg)] = h.queued()
    assert strip_received(msg) == b"Subject: curl " + mode.encode() + b"\r\n\r\nover TLS\r\n"
    assert b"with ESMTPS id" in msg


def test_curl_ssl_reqd_fails_without_starttls(make_hatod):
    h = tls_hatod(make_hatod)
    r = subprocess.run(["curl", "-sS", "-k", "smtp://127.0.0.1:%d" % h.ports["none"],
                        "--ssl-reqd", "--mail-from", "a@localhost", "--mail-rcpt",
                        "b@localhost", "-T", "/dev/null"], capture_output=True, timeout=30)
    assert r.returncode != 0
    assert h.queue_ids() == []


def test_sighup_reloads_certificate(make_hatod, testdir):
    cert, key = make_cert(testdir, "one", "one.test.example")
    h = tls_hatod(make_hatod, server={"tls_cert": cert, "tls_key": key})
    first = peer_fingerprint(h.ports["implicit"])
    # a session that started before the reload keeps working
    old = smtplib.SMTP_SSL("127.0.0.1", h.ports["implicit"], context=client_ctx(), timeout=10)
    old.ehlo("old.example")
    cert2, key2 = make_cert(testdir, "two", "two.test.example")
    shutil.copy(cert2, cert)
    shutil.copy(key2, key)
    h.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "action=reload_tls result=ok" not in h.logs():
        assert time.monotonic() < deadline, h.logs()
        time.sleep(0.05)
    second = peer_fingerprint(h.ports["implicit"])
    assert first != second
    with open(cert2, "rb") as f:
        der = ssl.PEM_cert_to_DER_cert(f.read().decode())
    assert second == hashlib.sha256(der).hexdigest()
    assert old.noop()[0] == 250
    old.quit()


def test_sighup_with_broken_certificate_keeps_the_old_one(make_hatod, testdir):
    cert, key = make_cert(testdir, "one", "one.test.example")
    h = tls_hatod(make_hatod, server={"tls_cert": cert, "tls_key": key})
    first = peer_fingerprint(h.ports["implicit"])
    with open(cert, "w") as f:
        f.write("not a certificate\n")
    h.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "action=reload_tls result=failed" not in h.logs():
        assert time.monotonic() < deadline, h.logs()
        time.sleep(0.05)
    assert peer_fingerprint(h.ports["implicit"]) == first


def test_sni_selects_certificate(make_hatod, testdir):
    cert, key = make_cert(testdir, "other", "other.test.example")
    h = make_hatod(listeners={"smtps": {"address": "127.0.0.1:%d" % free_port(),
                                        "tls": "implicit"}})
    h.stop()
    port = free_port()
    h2 = make_hatod(listeners={"smtps": {"address": "127.0.0.1:%d" % port, "tls": "implicit"}})
    h2.stop()
    # [certificate NAME] sections are not expressible through the harness
    # dict, so write them by hand
    conf = h2.conf_path
    with open(conf, "a") as f:
        f.write("[certificate other]\ncert = %s\nkey = %s\n" % (cert, key))
    log = open(h2.log_path, "ab")
    p = subprocess.Popen([h2.proc.args[0], "-f", "-c", conf], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while "event=started" not in h2.logs().split("event=stopped")[-1]:
            assert p.poll() is None and time.monotonic() < deadline, h2.logs()
            time.sleep(0.05)
        with open(cert, "rb") as f:
            other = hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read().decode())).hexdigest()
        assert peer_fingerprint(port, "other.test.example") == other
        assert peer_fingerprint(port, "unknown.test.example") != other
        assert peer_fingerprint(port) != other
    finally:
        p.terminate()
        assert p.wait(15) == 0
        log.close()


def test_selfsigned_generated_once_and_logged(make_hatod):
    h = tls_hatod(make_hatod)
    crt = os.path.join(h.state_dir, "tls", "selfsigned.crt")
    key = os.path.join(h.state_dir, "tls", "selfsigned.key")
    assert os.stat(key).st_mode & 0o777 == 0o600
    with open(crt, "rb") as f:
        der = ssl.PEM_cert_to_DER_cert(f.read().decode())
    fp = hashlib.sha256(der).hexdigest()
    assert peer_fingerprint(h.ports["implicit"]) == fp
    logged = fp.upper()
    assert ":".join(logged[i:i + 2] for i in range(0, 64, 2)) in h.logs()
    # a restart reuses it
    mtime = os.stat(crt).st_mtime_ns
    h.stop()
    h.start()
    assert os.stat(crt).st_mtime_ns == mtime
    assert peer_fingerprint(h.ports["implicit"]) == fp
