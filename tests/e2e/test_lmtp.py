"""LMTP delivery to a real Dovecot (Debian's dovecot-lmtpd): hatod hands a
domain's mail to Dovecot's lmtp socket in one transaction per message, and
Dovecot's per-recipient replies decide each recipient's fate.

Each test starts its own Dovecot master (`dovecot -c CONF -F`) with
everything - base_dir, state_dir, log, users file, Maildirs - inside the
test directory; the mail is stored as the `hato` user.  No system Dovecot
is used or touched.  Dovecot missing or not starting is a test failure,
never a skip: scripts/setup.sh installs dovecot-core and dovecot-lmtpd.
"""
import os
import re
import smtplib
import subprocess
import time

import pytest

from conftest import HATO
from dovecot import DOVEADM, DovecotProcess, run_as

USERS = ("bob", "carol")  # what Dovecot knows, all @localhost

CONF = """\
instance_name = hato-test-{tag}
base_dir = {root}/run
state_dir = {root}/state
protocols = lmtp
ssl = no
log_path = {root}/dovecot.log
mail_location = maildir:{root}/mail/%d/%n
{run_as}
passdb {{
  driver = passwd-file
  args = {root}/users
}}
userdb {{
  driver = passwd-file
  args = {root}/users
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
"""


class Dovecot(DovecotProcess):
    """One private Dovecot master serving LMTP on root/run/lmtp."""

    greeting = b"220 "
    packages = "dovecot-core and dovecot-lmtpd"

    def __init__(self, root):
        super().__init__(root, "lmtp")
        self.uid, self.gid, run_as_lines = run_as()
        os.makedirs(os.path.join(root, "mail"))
        os.chown(os.path.join(root, "mail"), self.uid, self.gid)
        with open(os.path.join(root, "users"), "w") as f:
            for u in USERS:
                f.write("%s@localhost::%d:%d::%s/mail/localhost/%s::\n"
                        % (u, self.uid, self.gid, root, u))
        with open(self.conf, "w") as f:
            f.write(CONF.format(root=root, tag="%d-%d" % (os.getpid(), id(self)),
                                run_as=run_as_lines))

    def saved(self):
        """[(user, LMTP session id)] for each "saved mail" line of Dovecot's log."""
        return re.findall(r"lmtp\((\w+)@localhost\)<\d+><([^>:]+)[^>]*>: Info: .*saved mail to",
                          self.logs())

    def fetch(self, user):
        """The messages in user@localhost's INBOX, as doveadm fetch prints them."""
        r = subprocess.run([DOVEADM, "-c", self.conf, "fetch", "-u", user + "@localhost",
                            "text", "mailbox", "INBOX", "all"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, "doveadm fetch: %s%s\n%s" % (r.stdout, r.stderr, self.logs())
        return r.stdout

    def maildir(self, user):
        d = os.path.join(self.root, "mail", "localhost", user, "new")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


@pytest.fixture
def dovecot(testdir):
    root = os.path.join(testdir, "dovecot")
    os.mkdir(root)
    os.chmod(root, 0o755)
    d = Dovecot(root)
    yield d
    d.stop()


def lmtp_hatod(make_hatod, dovecot, mailboxes="bob, carol, dave"):
    """A delivering hatod whose localhost domain goes to dovecot by LMTP.
    dave is a mailbox for hatod (RCPT passes) that Dovecot does not know."""
    extra = "[domain localhost]\nmailboxes = %s\nlmtp = unix:%s\n" % (mailboxes, dovecot.socket)
    return make_hatod(delivery={"hold": "no"}, extra=extra)


def send(h, rcpts, body):
    with smtplib.SMTP(h.host, h.port, timeout=10) as s:
        assert s.sendmail("alice@localhost", rcpts, body) == {}


def read_text(path):
    with open(path) as f:
        return f.read()


def wait_for(pred, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def test_lmtp_delivers_to_dovecot(make_hatod, dovecot):
    dovecot.start()
    h = lmtp_hatod(make_hatod, dovecot)
    body = (b"Subject: by lmtp\r\n\r\nfirst line\r\n.leading dot survives\r\n"
            b"..two dots too\r\nlast line\r\n")
    send(h, ["bob@localhost", "carol@localhost"], body)

    for u in USERS:
        h.wait_log("rcpt=<%s@localhost> status=delivered esc=2.0.0" % u, timeout=15)
    wait_for(lambda: h.queue_ids() == [], "the message to leave the queue")
    log = h.logs()
    assert "lmtp unix:%s said: 250 2.0.0 <bob@localhost>" % dovecot.socket in log
    for u in USERS:
        text = dovecot.fetch(u)
        assert "Subject: by lmtp" in text
        assert "\nfirst line\n.leading dot survives\n..two dots too\nlast line" in text
        assert "with LMTP" in text  # Dovecot's own Received: line
        assert len(dovecot.maildir(u)) == 1
    assert h.maildir("bob") == [] and h.maildir("carol") == []  # not hatod's Maildirs
    # One LMTP transaction for both: Dovecot logs every saved mail with its
    # session id, "<pid><id>" for the first recipient and "<pid><id:R2>" after.
    wait_for(lambda: len(dovecot.saved()) == 2, "Dovecot's log of both saves")
    assert len({sid for _, sid in dovecot.saved()}) == 1, dovecot.logs()


def test_lmtp_unknown_user_fails_permanently(make_hatod, dovecot):
    dovecot.start()
    h = lmtp_hatod(make_hatod, dovecot)
    send(h, ["bob@localhost", "dave@localhost", "carol@localhost"],
         b"Subject: three\r\n\r\nfor three, two of whom exist\r\n")

    h.wait_log("rcpt=<dave@localhost> status=failed esc=5.1.1", timeout=15)
    for u in USERS:
        h.wait_log("rcpt=<%s@localhost> status=delivered" % u, timeout=15)
    wait_for(lambda: h.queue_ids() == [], "the message to leave the queue")
    [line] = [l for l in h.logs().splitlines() if "rcpt=<dave@localhost> status=failed" in l]
    assert ("text=\"lmtp unix:%s said: 550 5.1.1 <dave@localhost> User doesn't exist: "
            "dave@localhost\"" % dovecot.socket) in line
    assert "attempts=1 " in line
    for u in USERS:
        assert "for three, two of whom exist" in dovecot.fetch(u)
    assert not os.path.exists(os.path.join(dovecot.root, "mail", "localhost", "dave"))


def test_lmtp_server_down_defers_then_delivers(make_hatod, dovecot):
    # Dovecot not started yet: nothing listens on the socket.
    h = lmtp_hatod(make_hatod, dovecot)
    send(h, ["bob@localhost"], b"Subject: later\r\n\r\nwhen dovecot is up\r\n")
    h.wait_log("rcpt=<bob@localhost> status=deferred esc=4.4.1", timeout=15)
    [qid] = h.queue_ids()
    why = "4.4.1 lmtp unix:%s: connect: No such file or directory" % dovecot.socket
    wait_for(lambda: why in h.envelope_text(qid), "the envelope to record the deferral")
    assert "attempts=1 " in h.envelope_text(qid)

    dovecot.start()
    r = subprocess.run([HATO, "-c", h.conf_path, "queue", "flush"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    h.wait_log("rcpt=<bob@localhost> status=delivered", timeout=15)
    wait_for(lambda: h.queue_ids() == [], "the message to leave the queue")
    assert "when dovecot is up" in dovecot.fetch("bob")
