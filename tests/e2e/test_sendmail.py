"""sendmail compatibility: `hato send` without --server, and the same binary
called `sendmail`, leave the message in the maildrop directory, durably;
hatod picks it up and delivers it, also when it was not running at the
time."""
import os
import subprocess
import time

import pytest

from conftest import HATO, Hatod, strip_received

MSG = (b"From: alice@localhost\n"
       b"To: a@localhost\n"
       b"Cc: b@localhost\n"
       b"Bcc: c@localhost\n"
       b"Subject: sendmail\n"
       b"\n"
       b"first line\n"
       b"..leading dots stay as written\n")


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def run(args, data, h, env=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.run(args, input=data, capture_output=True, timeout=20, env=e)


@pytest.fixture
def dh(make_hatod):
    """A delivering hatod."""
    return make_hatod(delivery={"hold": "no"})


def read_one(h, user):
    wait_for(lambda: len(h.maildir(user)) == 1)
    with open(h.maildir(user)[0], "rb") as f:
        return f.read()


def test_dash_t_to_cc_bcc(dh):
    r = run([HATO, "-c", dh.conf_path, "send", "-t", "-f", "alice@localhost"], MSG, dh)
    assert r.returncode == 0, r.stderr
    for user in ("a", "b", "c"):
        data = read_one(dh, user)
        # LF lines in the Maildir, whatever the input had
        assert data.startswith(b"Return-Path: <alice@localhost>\n")
        assert b"\nBcc:" not in data and not data.startswith(b"Bcc:")
        assert b"\nDate: " in data and b"\nMessage-ID: <" in data
        assert b"\n..leading dots stay as written\n" in data
        assert b"\r" not in data
    wait_for(lambda: dh.queue_ids() == [])
    assert os.listdir(os.path.join(dh.state_dir, "maildrop")) == []


def test_sendmail_symlink_i_and_lone_dot(dh, testdir):
    link = os.path.join(testdir, "sendmail")
    os.symlink(HATO, link)
    body = b"Subject: dots\n\nbefore\n.\nafter the lone dot\n"
    r = run([link, "-i", "-f", "bounce@localhost", "d@localhost"], body, dh,
            env={"HATO_CONFIG": dh.conf_path})
    assert r.returncode == 0, r.stderr
    data = read_one(dh, "d")
    assert data.startswith(b"Return-Path: <bounce@localhost>\nDelivered-To: d@localhost\n")
    assert b"\nbefore\n.\nafter the lone dot\n" in data
    # -t through the symlink too
    r = run([link, "-t", "-f", "alice@localhost"], MSG, dh, env={"HATO_CONFIG": dh.conf_path})
    assert r.returncode == 0, r.stderr
    for user in ("a", "b", "c"):
        assert b"\nBcc:" not in read_one(dh, user)
    # without -i a lone dot ends the message
    r = run([link, "e@localhost"], body, dh, env={"HATO_CONFIG": dh.conf_path})
    assert r.returncode == 0, r.stderr
    data = read_one(dh, "e")
    assert b"before\n" in data and b"after the lone dot" not in data


def test_hatod_not_running_then_started(make_hatod):
    h = make_hatod(delivery={"hold": "no"})
    assert h.stop() == 0
    r = run([HATO, "-c", h.conf_path, "send", "f@localhost"], b"Subject: later\n\nqueued\n", h)
    assert r.returncode == 0, r.stderr
    drops = [n for n in os.listdir(os.path.join(h.state_dir, "maildrop")) if n.endswith(".drop")]
    assert len(drops) == 1
    h2 = Hatod(h.root, delivery={"hold": "no"})
    h2.port, h2.listeners = h.port, h.listeners
    h2.start()
    try:
        data = read_one(h2, "f")
        assert strip_received(data.split(b"\n", 2)[2]).endswith(b"\n\nqueued\n")
        wait_for(lambda: os.listdir(os.path.join(h2.state_dir, "maildrop")) == [])
        assert "event=pickup" in h2.logs()
    finally:
        assert h2.stop() == 0


def test_unknown_option_and_no_recipients(dh):
    r = run([HATO, "-c", dh.conf_path, "send", "-q"], b"x\n", dh)
    assert r.returncode == 64 and b"-q" in r.stderr
    r = run([HATO, "-c", dh.conf_path, "send"], b"Subject: x\n\nx\n", dh)
    assert r.returncode == 64 and b"recipient" in r.stderr


def test_bad_drop_file_is_set_aside(dh):
    d = os.path.join(dh.state_dir, "maildrop")
    with open(os.path.join(d, ".tmp-x"), "wb") as f:
        f.write(b"not a drop file\n\nbody\r\n")
    os.rename(os.path.join(d, ".tmp-x"), os.path.join(d, "x.drop"))
    dh.wait_log("event=pickup_refused")
    assert os.path.exists(os.path.join(d, ".bad-x.drop"))
    assert dh.queue_ids() == []


def drops(h):
    return sorted(os.listdir(os.path.join(h.state_dir, "maildrop")))


def looped(n):
    hops = b"".join(b"Received: from hop%d.example by hop%d.example; "
                    b"Mon, 1 Jan 2024 00:00:00 +0000\n" % (i, i + 1) for i in range(n))
    return hops + b"Subject: loop\n\nround and round\n"


def test_pickup_mail_loop_is_set_aside(make_hatod):
    # intake counts the Received: headers of a dropped message as of one
    # received over SMTP: at received_max it is delivered, above it is set
    # aside as .bad-NAME and logged, never delivered (docs/queue.md)
    h = make_hatod(delivery={"hold": "no"}, limits={"received_max": "3"})
    r = run([HATO, "-c", h.conf_path, "send", "g@localhost"], looped(3), h)
    assert r.returncode == 0, r.stderr
    data = read_one(h, "g")
    assert data.count(b"\nReceived: ") == 4  # three hops and our own (LF lines in the Maildir)
    r = run([HATO, "-c", h.conf_path, "send", "k@localhost"], looped(4), h)
    assert r.returncode == 0, r.stderr
    h.wait_log("event=pickup_refused")
    refused = [l for l in h.logs().splitlines() if "event=pickup_refused" in l][0]
    assert "mail loop: more than 3 Received: headers" in refused
    assert "action=renamed" in refused
    bad = [n for n in drops(h) if n.startswith(".bad-")]
    assert len(bad) == 1 and bad[0].endswith(".drop")
    assert [n for n in drops(h) if not n.startswith(".")] == []
    assert h.queue_ids() == [] and h.maildir("k") == []


def test_pickup_too_big_is_set_aside(make_hatod):
    # hato send refuses what is over the limit itself: here the limit was
    # lowered while the message waited in the maildrop for hatod
    h = make_hatod(delivery={"hold": "no"})
    assert h.stop() == 0
    r = run([HATO, "-c", h.conf_path, "send", "m@localhost"],
            b"Subject: big\n\n" + (b"x" * 70 + b"\n") * 50, h)
    assert r.returncode == 0, r.stderr
    h2 = Hatod(h.root, delivery={"hold": "no"}, limits={"message_size_max": "2k"})
    h2.port, h2.listeners = h.port, h.listeners
    h2.start()
    try:
        h2.wait_log("event=pickup_refused")
        assert "larger than message_size_max (2048 octets)" in h2.logs()
        assert len([n for n in drops(h2) if n.startswith(".bad-")]) == 1
        assert h2.queue_ids() == [] and h2.maildir("m") == []
    finally:
        assert h2.stop() == 0


def test_pickup_waits_for_free_space(make_hatod):
    # min_free_space larger than the disk: the drop file stays where it is
    # (logged), and is taken once the reserve can be kept - here at the next
    # start with a reserve that fits
    h = make_hatod(delivery={"hold": "no"}, limits={"min_free_space": "1000000g"})
    r = run([HATO, "-c", h.conf_path, "send", "n@localhost"], b"Subject: wait\n\nlater\n", h)
    assert r.returncode == 0, r.stderr
    h.wait_log("event=disk_full file=")
    time.sleep(0.3)
    waiting = [n for n in drops(h) if n.endswith(".drop") and not n.startswith(".")]
    assert len(waiting) == 1
    assert h.queue_ids() == [] and h.maildir("n") == []
    assert "event=pickup " not in h.logs()
    assert h.stop() == 0
    h2 = Hatod(h.root, delivery={"hold": "no"}, limits={"min_free_space": "1m"})
    h2.port, h2.listeners = h.port, h.listeners
    h2.start()
    try:
        data = read_one(h2, "n")
        assert data.endswith(b"\n\nlater\n")
        wait_for(lambda: drops(h2) == [])
    finally:
        assert h2.stop() == 0
