"""Delivery from the queue: the scheduler picks up each committed message at
once, writes local Maildirs (tmp -> fsync -> new) with Return-Path and
Delivered-To, retries temporary failures on the schedule, fails recipients
at the end of the queue lifetime, and never loses a message."""
import os
import signal
import smtplib
import subprocess
import time

import pytest

from conftest import HATO, Hatod, lf, strip_received

BODY = b"Subject: delivery\r\n\r\nto the mailbox\r\n"


def send(h, rcpts, body=BODY, sender="alice@localhost"):
    with smtplib.SMTP(h.host, h.port, timeout=10) as s:
        assert s.sendmail(sender, rcpts, body) == {}


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def block_mailbox(h, user, domain="localhost"):
    """A regular file where user's Maildir should be: deliveries fail
    temporarily until it goes.  Owned by hatod's user, like the rest."""
    parent = os.path.join(h.state_dir, "mail", domain)
    os.makedirs(parent, exist_ok=True)
    blocker = os.path.join(parent, user)
    with open(blocker, "w") as f:
        f.write("not a directory\n")
    if os.geteuid() == 0:
        st = os.stat(h.state_dir)
        for p in (os.path.join(h.state_dir, "mail"), parent, blocker):
            os.chown(p, st.st_uid, st.st_gid)
    return blocker


def read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture
def hatod(make_hatod):
    """A hatod that delivers (the harness holds deliveries by default)."""
    return make_hatod(delivery={"hold": "no"})


def test_hold_keeps_mail_in_the_queue(make_hatod):
    h = make_hatod()  # hold = yes
    send(h, ["bob@localhost"])
    time.sleep(0.5)
    assert len(h.queue_ids()) == 1 and h.maildir("bob") == []


def test_local_delivery_bytes(hatod):
    send(hatod, ["bob@localhost", "carol@test.example", "dave@localhost"])
    for user, domain in (("bob", "localhost"), ("carol", "test.example"), ("dave", "localhost")):
        wait_for(lambda: len(hatod.maildir(user, domain)) == 1)
        [path] = hatod.maildir(user, domain)
        data = read(path)
        head = b"Return-Path: <alice@localhost>\nDelivered-To: %s@%s\n" % (
            user.encode(), domain.encode())
        assert data.startswith(head)
        assert strip_received(data[len(head):]) == lf(BODY)  # LF lines, as Maildirs have
        assert b"\r" not in data
        assert path.endswith(",S=%d" % len(data))
        assert os.stat(path).st_mode & 0o777 == 0o600
    # every recipient delivered: the message left the queue
    wait_for(lambda: hatod.queue_ids() == [])
    hatod.wait_log("event=removed")


def test_picked_up_within_milliseconds(hatod):
    start = time.monotonic()
    send(hatod, ["bob@localhost"])
    wait_for(lambda: hatod.maildir("bob") != [], timeout=5)
    assert time.monotonic() - start < 3.0


def test_null_sender_and_one_copy_per_recipient(hatod):
    send(hatod, ["bob@localhost", "bob@localhost", "erin@localhost"], sender="")
    wait_for(lambda: hatod.queue_ids() == [])
    assert len(hatod.maildir("bob")) == 1
    assert read(hatod.maildir("erin")[0]).startswith(b"Return-Path: <>\n")


def test_unwritable_mailbox_is_retried_then_delivered(make_hatod):
    h = make_hatod(delivery={"hold": "no", "retry_schedule": "1s"})
    blocker = block_mailbox(h, "frank")
    send(h, ["frank@localhost"])
    h.wait_log("status=deferred esc=4.2.0")
    [qid] = h.queue_ids()
    wait_for(lambda: "state=pending attempts=1" in h.envelope_text(qid))
    assert "rcpt-error: 4.2.0 maildir" in h.envelope_text(qid)
    out = subprocess.run([HATO, "-c", h.conf_path, "queue"], capture_output=True, text=True,
                         timeout=10).stdout
    assert qid in out and "<frank@localhost>" in out
    os.unlink(blocker)
    wait_for(lambda: h.maildir("frank") != [], timeout=10)
    wait_for(lambda: h.queue_ids() == [])
    delivered = [l for l in h.logs().splitlines() if "status=delivered" in l]
    assert len(delivered) == 1 and "attempts=" in delivered[0]
    assert int(delivered[0].split("attempts=")[1].split()[0]) >= 2


def test_queue_lifetime_fails_the_recipient(make_hatod):
    h = make_hatod(delivery={"hold": "no", "retry_schedule": "1s", "queue_lifetime": "2s"})
    block_mailbox(h, "gina")
    send(h, ["gina@localhost", "hank@localhost"])
    h.wait_log("status=failed esc=5.4.7", timeout=15)
    wait_for(lambda: h.queue_ids() == [])
    assert len(h.maildir("hank")) == 1


def test_full_mailbox_disk_is_temporary(make_hatod, testdir):
    mnt = os.path.join(testdir, "fullmail")
    os.makedirs(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        os.chmod(mnt, 0o777)
        h = make_hatod(delivery={"hold": "no", "retry_schedule": "1s", "mailbox_path": mnt + "/%d/%u"})
        filler = os.path.join(mnt, "filler")
        subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=4k", "count=64"],
                       capture_output=True)
        send(h, ["ivan@localhost"], body=BODY + (b"x" * 70 + b"\r\n") * 300)
        h.wait_log("status=deferred esc=4.3.1")
        assert h.queue_ids() != []
        new = os.path.join(mnt, "localhost", "ivan", "new")
        tmp = os.path.join(mnt, "localhost", "ivan", "tmp")
        assert not os.path.isdir(new) or os.listdir(new) == []
        assert not os.path.isdir(tmp) or os.listdir(tmp) == []
        os.unlink(filler)
        wait_for(lambda: os.path.isdir(new) and len(os.listdir(new)) == 1, timeout=10)
        wait_for(lambda: h.queue_ids() == [])
        h.stop()
    finally:
        subprocess.run(["umount", mnt])


def test_pending_mail_is_delivered_after_restart(make_hatod):
    h = make_hatod(delivery={"hold": "no", "retry_schedule": "1h"})
    blocker = block_mailbox(h, "judy")
    send(h, ["judy@localhost"])
    h.wait_log("status=deferred")
    [qid] = h.queue_ids()
    wait_for(lambda: "state=pending attempts=1" in h.envelope_text(qid))
    assert h.kill9() == -signal.SIGKILL
    os.unlink(blocker)
    h2 = Hatod(h.root)
    h2.port = h.port
    h2.listeners = h.listeners
    h2.delivery = {"hold": "no", "retry_schedule": "1h"}
    h2.start()
    try:
        # next attempt is an hour away: flush asks for it now
        r = subprocess.run([HATO, "-c", h2.conf_path, "queue", "flush"], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: h2.maildir("judy") != [])
        wait_for(lambda: h2.queue_ids() == [])
    finally:
        assert h2.stop() == 0


def test_queue_delete(make_hatod):
    h = make_hatod(delivery={"hold": "no", "retry_schedule": "1h"})
    block_mailbox(h, "kim")
    send(h, ["kim@localhost"])
    h.wait_log("status=deferred")
    [qid] = h.queue_ids()

    def delete():
        return subprocess.run([HATO, "-c", h.conf_path, "queue", "delete", qid],
                              capture_output=True, text=True, timeout=10)
    # the attempt may still be finishing: hatod says "try again" then
    deadline = time.monotonic() + 10
    while True:
        r = delete()
        if r.returncode == 0 or "try again" not in r.stdout + r.stderr:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK deleted " + qid in r.stdout
    assert h.queue_ids() == []
    r = delete()
    assert r.returncode == 1 and "no message" in r.stdout + r.stderr


def test_cli_says_when_hatod_is_not_running(make_hatod):
    h = make_hatod()
    assert h.stop() == 0
    r = subprocess.run([HATO, "-c", h.conf_path, "queue", "flush"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 69
    assert "not running" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="hatod must drop to user hato for queue/ to refuse it")
def test_failed_removal_is_retried_later_not_at_once(make_hatod):
    """Delivered at the second attempt, but queue/ now refuses the removal:
    logged once, and the message waits for a later try instead of being
    run again and again."""
    h = make_hatod(delivery={"hold": "no", "retry_schedule": "1s"})
    blocker = block_mailbox(h, "bob")
    send(h, ["bob@localhost"])
    [qid] = h.queue_ids()
    wait_for(lambda: "state=pending attempts=1" in h.envelope_text(qid))
    qdir = os.path.join(h.state_dir, "queue")
    os.chmod(qdir, 0o500)  # hato may read it, not remove from it
    try:
        os.unlink(blocker)
        h.wait_log("event=queue_remove_failed")
        time.sleep(1.5)
        assert h.logs().count("event=queue_remove_failed") == 1
        assert h.logs().count("status=delivered") == 1
        assert len(h.maildir("bob")) == 1 and h.queue_ids() == [qid]
    finally:
        os.chmod(qdir, 0o700)


@pytest.mark.skipif(os.geteuid() != 0, reason="hatod must drop to user hato for queue/ to refuse it")
def test_no_more_deliveries_while_the_envelope_cannot_be_written(make_hatod):
    """After a delivery whose envelope update fails, the other recipients
    wait until the envelope is on disk: otherwise every one of them would
    be delivered with nothing recorded, and again after a crash."""
    users = ["bob", "carol", "dave"]
    h = make_hatod(delivery={"hold": "no", "retry_schedule": "1s"})
    blockers = [block_mailbox(h, u) for u in users]
    send(h, [u + "@localhost" for u in users])
    [qid] = h.queue_ids()
    wait_for(lambda: h.envelope_text(qid).count("state=pending attempts=1") == 3)
    qdir = os.path.join(h.state_dir, "queue")
    os.chmod(qdir, 0o500)  # hato may read it, not write the envelope
    try:
        for b in blockers:
            os.unlink(b)
        h.wait_log("event=envelope_write_failed")
        time.sleep(2)
        assert h.logs().count("event=envelope_write_failed") == 1
        assert h.logs().count("status=delivered") == 1
        assert sum(len(h.maildir(u)) for u in users) == 1
    finally:
        os.chmod(qdir, 0o700)
