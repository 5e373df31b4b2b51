"""SMTP AUTH through a real Dovecot ([auth] backend = dovecot): hatod asks
Dovecot's auth server over its auth-client socket, as Postfix does with
smtpd_sasl_type = dovecot, so one password serves IMAP and SMTP.

Each test starts its own Dovecot master (`dovecot -c CONF -F`, Debian's
dovecot-core) with a passwd-file passdb whose hashes `doveadm pw` made,
everything inside the test directory; hatod has no users of its own, so
every answer is Dovecot's.  Dovecot missing or not starting fails the
test.  Dovecot delays a client address's further attempts after a failure
(its anvil penalty), so tests that compare failures connect from different
127/8 addresses.
"""
import base64
import os
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from dovecot import DOVEADM, DovecotProcess, run_as
from test_auth import (AUTH_FAILED, AUTH_OK, closed, make_auth_hatod, plain, raw_tls,  # noqa: F401
                       smtp_client, timed)

PASSWORDS = {"alice": "Al1ce-Dove-Q7xz", "bob@test.example": "B0b-Dove-Kw93"}
WRONG = "Wr0ng-Dove-Zz11"
TEMPFAIL = "454 4.7.0 Temporary authentication failure"

CONF = """\
instance_name = hato-auth-{tag}
base_dir = {root}/run
state_dir = {root}/state
protocols =
ssl = no
log_path = {root}/dovecot.log
auth_mechanisms = plain login
auth_verbose = yes
auth_debug = yes
auth_failure_delay = 0
{run_as}
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service auth {{
  unix_listener auth-hato {{
    mode = 0666
  }}
}}
"""


class DovecotAuth(DovecotProcess):
    """One private Dovecot master whose auth server listens on root/run/auth-hato."""

    greeting = b"VERSION\t1\t"

    def __init__(self, root):
        super().__init__(root, "auth-hato")
        uid, gid, run_as_lines = run_as()
        with open(os.path.join(root, "passwd"), "w") as f:
            for user, pw in PASSWORDS.items():
                r = subprocess.run([DOVEADM, "pw", "-s", "SHA512-CRYPT", "-p", pw],
                                   capture_output=True, text=True, timeout=30)
                assert r.returncode == 0, r.stderr
                f.write("%s:%s\n" % (user, r.stdout.strip()))
        with open(self.conf, "w") as f:
            f.write(CONF.format(root=root, tag="%d-%d" % (os.getpid(), id(self)),
                                run_as=run_as_lines, uid=uid, gid=gid))


@pytest.fixture
def dovecot(testdir):
    root = os.path.join(testdir, "dovecot")
    os.mkdir(root)
    os.chmod(root, 0o755)
    d = DovecotAuth(root)
    yield d
    d.stop()


def dovecot_hatod(make_auth_hatod, socket_path, limits=None, timeout="10s"):
    """A hatod with no users of its own whose AUTH goes to socket_path."""
    conf = "[auth]\nbackend = dovecot\ndovecot_socket = %s\ndovecot_timeout = %s\n" % (
        socket_path, timeout)
    return make_auth_hatod(users={}, limits=limits, extra_conf=conf)


MSG = b"From: alice@localhost\r\nTo: carol@remote.example\r\nSubject: dovecot\r\n\r\nbody\r\n"


@pytest.mark.parametrize("listener", ["sub", "subs"])
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_good_password_accepted(make_auth_hatod, dovecot, listener, mech):
    dovecot.start()
    h = dovecot_hatod(make_auth_hatod, dovecot.socket)
    with smtp_client(h, listener) as s:
        assert "PLAIN" in s.esmtp_features["auth"] and "LOGIN" in s.esmtp_features["auth"]
        s.user, s.password = "alice", PASSWORDS["alice"]
        code, _ = s.auth(mech, s.auth_plain if mech == "PLAIN" else s.auth_login)
        assert code == 235
        assert s.sendmail("alice@localhost", ["carol@remote.example"], MSG) == {}
    h.wait_log('event=auth session=')
    assert 'result=ok user="alice"' in h.logs()
    [(_, msg)] = h.queued()
    assert b"(Authenticated sender: alice)" in msg
    # Dovecot checked it, and was told the client's address and our session
    sid = h.logs().split("event=auth session=", 1)[1].split()[0]
    log = dovecot.logs()
    assert "passwd-file(alice,127.0.0.1," in log and sid in log, log


def test_swaks_login_and_dovecot_name(make_auth_hatod, dovecot):
    """A login that is an address, with LOGIN over STARTTLS by swaks; the
    name Dovecot answers with is the session's user."""
    dovecot.start()
    h = dovecot_hatod(make_auth_hatod, dovecot.socket)
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1:%d" % h.ports["sub"], "--tls", "--auth", "LOGIN",
         "--auth-user", "bob@test.example", "--auth-password", PASSWORDS["bob@test.example"],
         "--from", "bob@test.example", "--to", "carol@remote.example", "--silent", "2"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    h.wait_log('result=ok user="bob@test.example"')
    [(_, msg)] = h.queued()
    assert b"(Authenticated sender: bob@test.example)" in msg


def test_bad_password_refused(make_auth_hatod, dovecot):
    dovecot.start()
    h = dovecot_hatod(make_auth_hatod, dovecot.socket)
    c = raw_tls(h)
    assert c.cmd("AUTH PLAIN " + plain("alice", WRONG)) == AUTH_FAILED
    assert c.cmd("MAIL FROM:<alice@localhost>") == "530 5.7.0 Authentication required"
    c.close()
    h.wait_log('result=failed user="alice" failures=1')
    assert "Password mismatch" in dovecot.logs()
    assert h.queued() == []


def test_unknown_user_same_reply_and_delay_as_wrong_password(make_auth_hatod, dovecot):
    """Same reply, same log line, the same delay policy (auth_delay_ms before
    the 535, whatever Dovecot said) for an unknown user as for a wrong
    password; each from its own address, so Dovecot's per-address penalty
    does not tell them apart either."""
    dovecot.start()
    delay_ms = 400
    h = dovecot_hatod(make_auth_hatod, dovecot.socket, limits={"auth_delay_ms": delay_ms})
    results = {}
    for user, source in (("alice", "127.0.0.2"), ("mallory", "127.0.0.3")):
        c = raw_tls(h, source=source)
        results[user] = timed(c, "AUTH PLAIN " + plain(user, WRONG))
        c.close()
    (r1, t1), (r2, t2) = results["alice"], results["mallory"]
    assert r1 == r2 == AUTH_FAILED
    for t in (t1, t2):
        assert delay_ms / 1000 <= t < delay_ms / 1000 + 5, results
    log = h.logs()
    for user, source in (("alice", "127.0.0.2"), ("mallory", "127.0.0.3")):
        assert 'client=%s result=failed user="%s" failures=1\n' % (source, user) in log, log
    dlog = dovecot.logs()
    assert "passwd-file(alice,127.0.0.2," in dlog and "Password mismatch" in dlog
    assert "passwd-file(mallory,127.0.0.3," in dlog and "unknown user" in dlog


def test_failures_max_and_doubling_delay_stay(make_auth_hatod, dovecot):
    """hato's brute-force rules are the backend's too: the delay doubles per
    failure and auth_failures_max ends the session with 421."""
    dovecot.start()
    h = dovecot_hatod(make_auth_hatod, dovecot.socket,
                      limits={"auth_delay_ms": 200, "auth_failures_max": 2})
    c = raw_tls(h)
    r, t1 = timed(c, "AUTH PLAIN " + plain("alice", WRONG))
    assert r == AUTH_FAILED and t1 >= 0.2
    r, t2 = timed(c, "AUTH PLAIN " + plain("alice", WRONG + "2"))
    assert r == AUTH_FAILED and t2 >= 0.4
    assert c.reply().startswith("421 4.7.0")
    assert closed(c)
    h.wait_log("event=auth_too_many session=")


def test_dovecot_down_454(make_auth_hatod, dovecot, testdir):
    """Dovecot stopped (its socket gone): 454 4.7.0, a tempfail in the log,
    and no failed attempt counted against the client."""
    dovecot.start()
    h = dovecot_hatod(make_auth_hatod, dovecot.socket, limits={"auth_failures_max": 1})
    c = raw_tls(h)
    assert c.cmd("AUTH PLAIN " + plain("alice", PASSWORDS["alice"])) == AUTH_OK
    c.close()
    dovecot.stop()
    for _ in range(3):  # never counted: auth_failures_max 1 would close
        c = raw_tls(h)
        assert c.cmd("AUTH PLAIN " + plain("alice", PASSWORDS["alice"])) == TEMPFAIL
        assert c.cmd("AUTH LOGIN " + base64.b64encode(b"alice").decode()) == \
            "334 UGFzc3dvcmQ6"
        assert c.cmd(base64.b64encode(PASSWORDS["alice"].encode()).decode()) == TEMPFAIL
        assert c.cmd("NOOP").startswith("250")
        c.close()
    h.wait_log("result=tempfail")
    log = h.logs()
    assert 'result=tempfail user="alice" backend=dovecot reason="cannot connect to' in log
    assert "result=failed" not in log


def test_socket_that_never_answers_times_out_454_without_blocking(make_auth_hatod, testdir):
    """A socket that accepts and never answers (a hung auth server): 454
    after dovecot_timeout; meanwhile other sessions are served at once."""
    path = os.path.join(testdir, "silent.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    os.chmod(path, 0o666)
    srv.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except socket.timeout:
                pass

    t = threading.Thread(target=accept)
    t.start()
    try:
        h = dovecot_hatod(make_auth_hatod, path, timeout="2s")
        c = raw_tls(h)
        c.send("AUTH PLAIN " + plain("alice", PASSWORDS["alice"]) + "\r\n")
        start = time.monotonic()
        other = raw_tls(h, "subs")  # the loop still serves others
        assert other.cmd("NOOP").startswith("250")
        assert time.monotonic() - start < 1.5
        other.close()
        assert c.reply() == TEMPFAIL
        assert 1.8 <= time.monotonic() - start < 6
        c.close()
        h.wait_log('reason="Dovecot did not answer within dovecot_timeout"')
    finally:
        stop.set()
        t.join()
        for s in held:
            s.close()
        srv.close()


@pytest.mark.parametrize("reply", [
    b"garbage\n",
    b"VERSION\t2\t0\nDONE\n",
    b"VERSION\t1\t2\nMECH\tLOGIN\nDONE\n",
    b"VERSION\t1\t2\nMECH\tPLAIN\nDONE\nOK\t99\tuser=alice\n",
    b"VERSION\t1\t2\nMECH\tPLAIN\nDONE\nCONT\t1\t\n",
    b"VERSION\t1\t2\nMECH\tPLAIN\nDONE\nFAIL\t1\ttemp\n",
    b"VERSION\t1\t2\nMECH\tPLAIN\nDONE\nOK\t1\tuser=a\x01xb\n",
    b"VERSION\t1\t2\n" + b"x" * 20000 + b"\n",
    b"VERSION\t1\t2\nMECH\tPLAIN\n",  # then closes
])
def test_bad_auth_server_replies_454(make_auth_hatod, testdir, reply):
    """What a broken or hostile auth server says never authenticates: 454."""
    path = os.path.join(testdir, "odd.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    os.chmod(path, 0o666)
    srv.listen(1)

    def serve():
        srv.settimeout(15)
        try:
            conn = srv.accept()[0]
        except socket.timeout:
            return
        conn.settimeout(2)
        try:
            conn.recv(4096)
            conn.sendall(reply)
            time.sleep(0.3)
        except OSError:
            pass
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    try:
        h = dovecot_hatod(make_auth_hatod, path, timeout="5s")
        c = raw_tls(h)
        assert c.cmd("AUTH PLAIN " + plain("alice", PASSWORDS["alice"])) == TEMPFAIL
        assert c.cmd("MAIL FROM:<alice@localhost>") == "530 5.7.0 Authentication required"
        c.close()
    finally:
        t.join()
        srv.close()



def test_smtplib_wrong_password_exception(make_auth_hatod, dovecot):
    dovecot.start()
    h = dovecot_hatod(make_auth_hatod, dovecot.socket)
    with smtp_client(h, "subs") as s:
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login("alice", WRONG)
        assert e.value.smtp_code == 535
