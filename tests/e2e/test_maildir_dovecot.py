"""Maildir files as other Maildir readers expect them: LF line endings (as
Postfix's local(8), Courier and Dovecot write them) and a ",S=" that is
the file's size.  The judge is Dovecot (Debian's dovecot-core): `doveadm
fetch` reads the Maildir hatod delivered into, and the message's sizes,
header and body it reports must match what the client sent.

A private Dovecot master (`dovecot -c CONF -F`, serving no protocol: its
auth service answers doveadm's user lookups) runs on a configuration whose
base_dir, state_dir, log and users file are in the test directory and whose
mail_location is hatod's Maildirs, as a Dovecot serving IMAP from the same
Maildirs would be set up; no system Dovecot is used or touched.  Dovecot
missing or not starting is a test failure, never a skip.
"""
import os
import pwd
import re
import shutil
import smtplib
import subprocess
import time

import pytest

from conftest import lf, strip_received, wait_for

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"

CONF = """\
instance_name = hato-maildir-{tag}
base_dir = {root}/run
state_dir = {root}/state
protocols = none
ssl = no
log_path = {root}/dovecot.log
mail_location = maildir:{maildirs}/%d/%n
passdb {{
  driver = passwd-file
  args = {root}/users
}}
userdb {{
  driver = passwd-file
  args = {root}/users
}}
"""

# What the client sends: CRLF lines, as SMTP has them; a dot-stuffed line,
# an empty line inside the body, 8-bit UTF-8, trailing spaces, a long line.
BODY = ("first line\r\n"
        ".a line that starts with a dot\r\n"
        "\r\n"
        "after an empty line: caf\u00e9, \u65e5\u672c\u8a9e  \r\n"
        + "x" * 990 + "\r\n"
        "last line\r\n").encode()
MSG = (b"From: Alice <alice@localhost>\r\n"
       b"To: Bob <bob@localhost>\r\n"
       b"Subject: read by Dovecot\r\n"
       b"Content-Type: text/plain; charset=utf-8\r\n"
       b"Content-Transfer-Encoding: 8bit\r\n"
       b"\r\n" + BODY)


def dovecot_setup(root, maildirs, users):
    """A Dovecot configuration in root for hatod's Maildirs; returns its path."""
    for tool in (DOVECOT, DOVEADM):
        if not os.access(tool, os.X_OK):
            pytest.fail("%s not found: install dovecot-core (scripts/setup.sh)" % tool)
    # Dovecot accesses mail as the user that owns it: hatod's user when
    # the tests run as root (hatod drops to it), else ourselves
    pw = pwd.getpwnam("hato") if os.geteuid() == 0 else pwd.getpwuid(os.getuid())
    with open(os.path.join(root, "users"), "w") as f:
        for u in users:
            f.write("%s@localhost::%d:%d::%s/localhost/%s::\n" % (u, pw.pw_uid, pw.pw_gid,
                                                                 maildirs, u))
    conf = os.path.join(root, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(root=root, maildirs=maildirs, tag=os.getpid()))
    return conf


def dovecot_start(conf, root):
    """Start a Dovecot master on conf; returns its Popen once its auth
    service's userdb socket is there."""
    out = open(os.path.join(root, "dovecot.out"), "ab")
    proc = subprocess.Popen([DOVECOT, "-c", conf, "-F"], stdout=out, stderr=subprocess.STDOUT)
    out.close()
    sock = os.path.join(root, "run", "auth-userdb")
    deadline = time.monotonic() + 15
    while not os.path.exists(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail("dovecot did not start:\n" + open(os.path.join(root, "dovecot.out")).read())
        time.sleep(0.05)
    return proc


def dovecot_stop(proc):
    """SIGTERM to our master (by its PID): it stops its own children."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def doveadm_fetch(conf, user, field):
    """One field of the one message in user@localhost's INBOX (its value
    without doveadm's "field:" label and trailing newline, as bytes)."""
    r = subprocess.run([DOVEADM, "-c", conf, "-f", "pager", "fetch", "-u", user + "@localhost",
                        field, "mailbox", "INBOX", "all"], capture_output=True, timeout=30)
    assert r.returncode == 0, "doveadm fetch %s: %r %r" % (field, r.stdout, r.stderr)
    out = r.stdout
    label = field.encode() + b":"
    assert out.startswith(label), out[:200]
    # the pager formatter, one message: "field: value\n" for one line,
    # "field:\n" and the bytes as they are for text
    value = out[len(label):]
    if value.startswith(b" "):
        assert value.endswith(b"\n") and value.count(b"\n") == 1, out
        return value[1:-1]
    assert value.startswith(b"\n"), out[:200]
    return value[1:]


def test_dovecot_reads_the_maildir_hatod_wrote(make_hatod, testdir):
    h = make_hatod(delivery={"hold": "no"})
    with smtplib.SMTP(h.host, h.port, timeout=10) as s:
        assert s.sendmail("alice@localhost", ["bob@localhost"], MSG) == {}
    [path] = wait_for(lambda: h.maildir("bob"), what="bob's message")
    wait_for(lambda: h.queue_ids() == [], what="the queue to empty")
    data = open(path, "rb").read()

    # LF lines only, and S= is the file's size
    assert b"\r" not in data
    assert int(re.search(r",S=(\d+)$", path).group(1)) == len(data) == os.stat(path).st_size
    head = b"Return-Path: <alice@localhost>\nDelivered-To: bob@localhost\n"
    assert data.startswith(head)
    assert strip_received(data[len(head):]) == lf(MSG)

    dove = os.path.join(testdir, "dovecot")
    os.mkdir(dove)
    conf = dovecot_setup(dove, os.path.join(h.state_dir, "mail"), ["bob"])
    proc = dovecot_start(conf, dove)
    try:
        check_with_doveadm(conf, dove, data, head)
    finally:
        dovecot_stop(proc)


def check_with_doveadm(conf, dove, data, head):
    """What doveadm fetch reports of bob's one message, against the file's data."""

    # the sizes: physical is the file (what S= said), virtual the message
    # with CRLF lines (what IMAP's RFC822.SIZE reports)
    physical = int(doveadm_fetch(conf, "bob", "size.physical"))
    virtual = int(doveadm_fetch(conf, "bob", "size.virtual"))
    assert physical == len(data)
    assert virtual == len(data) + data.count(b"\n")
    assert virtual == len(data.replace(b"\n", b"\r\n"))
    # the body, as the client sent it (dot-unstuffed on the wire by smtplib
    # and back by hatod), its lines as Dovecot stores them
    body = doveadm_fetch(conf, "bob", "body")
    assert body == lf(BODY), body
    hdr = doveadm_fetch(conf, "bob", "hdr")
    assert hdr.startswith(head), hdr[:200]
    assert b"\nSubject: read by Dovecot\n" in hdr
    assert b"\r" not in hdr
    # Dovecot complained of nothing (a wrong S= is logged as a broken size)
    log = os.path.join(dove, "dovecot.log")
    text = open(log).read() if os.path.exists(log) else ""
    assert "rror" not in text and "roken" not in text, text
