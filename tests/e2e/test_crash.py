"""Crash safety and orderly shutdown.

kill -9 in the middle of a load of concurrent smtplib clients: every
message that got "250 ... queued as ID" is in queue/ byte for byte after a
restart on the same spool, nothing half-received survives in incoming/, and
no message file is left without its envelope.  SIGTERM answers idle and
mid-transaction clients with 421 4.3.2 and hatod exits 0.
"""
import os
import pwd
import re
import signal
import smtplib
import threading
import time

import pytest

from conftest import (RawSMTP, crc32c, lf, read_queued, restart_hatod, strip_received,
                      wait_ready)

QUEUED_RE = re.compile(rb"2\.0\.0 OK queued as ([0-9A-F]{20})")
THREADS = 4
PER_THREAD = 50
KILL_AFTER = 60


def spool_files(h):
    q = sorted(os.listdir(os.path.join(h.state_dir, "queue")))
    return q, sorted(h.incoming())


@pytest.mark.parametrize("commit_sync", ["fsync", "syncfs"])
def test_kill9_under_load_loses_nothing_acknowledged(make_hatod, commit_sync):
    h = make_hatod(server={"commit_sync": commit_sync})
    acked = {}  # queue id -> body
    sent = set()  # every body we tried to send
    lock = threading.Lock()
    enough = threading.Event()

    def worker(t):
        s = None
        try:
            s = smtplib.SMTP(h.host, h.port, timeout=10)
            s.ehlo("crash%d.example" % t)
            for i in range(PER_THREAD):
                body = (b"Subject: crash %d/%d\r\nMessage-Id: <%d.%d@crash>\r\n\r\n"
                        % (t, i, t, i) + (b"thread %d message %d\r\n" % (t, i)) * (1 + i % 7))
                with lock:
                    sent.add(body)
                code, _ = s.mail("t%d@localhost" % t)
                assert code == 250
                code, _ = s.rcpt("r%d@localhost" % i)
                assert code == 250
                code, text = s.data(body)
                if code != 250:
                    return
                m = QUEUED_RE.fullmatch(text)
                assert m, text
                with lock:
                    acked[m.group(1).decode()] = (t, i, body)
                    if len(acked) >= KILL_AFTER:
                        enough.set()
        except (smtplib.SMTPException, OSError):
            return  # the server went away: whatever had no 250 is not ours to check
        finally:
            if s is not None:
                s.close()

    # one more client stays in the middle of DATA: its file is in incoming/
    half = RawSMTP(h.host, h.port)
    half.cmd("EHLO half.example")
    half.cmd("MAIL FROM:<half@localhost>")
    half.cmd("RCPT TO:<half@localhost>")
    assert half.cmd("DATA").startswith("354 ")
    # more than any write buffer, so that it is really on disk at the crash
    half.send(b"Subject: never finished\r\n\r\n" + (b"h" * 78 + b"\r\n") * 2000)
    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
    for th in threads:
        th.start()
    assert enough.wait(30), "hatod did not acknowledge %d messages in 30 s" % KILL_AFTER
    assert h.kill9() == -signal.SIGKILL
    for th in threads:
        th.join(15)
        assert not th.is_alive()
    half.close()

    with lock:
        acked = dict(acked)
    assert KILL_AFTER <= len(acked) < THREADS * PER_THREAD, \
        "the kill did not land in the middle (%d acknowledged)" % len(acked)
    # what a crash can leave besides: a removal cut between the message file
    # and its rewritten envelope, an envelope rewrite and a report's commit
    # cut before their renames, a commit cut before its rename into queue/,
    # and an orderly exit's marker cut before its rename
    orphan = "00000000000001ABCDEF"
    for name in (orphan + ".env", orphan + ".env.tmp", orphan + ".msg.tmp"):
        with open(os.path.join(h.state_dir, "queue", name), "wb") as f:
            f.write(b"hato-envelope: 1\n")
    with open(os.path.join(h.state_dir, "shutdown.clean.tmp"), "wb"):
        pass
    with open(os.path.join(h.state_dir, "incoming", "00000000000002ABCDEF.msg"), "wb") as f:
        f.write(b"partial\n")
    # and commits written straight into queue/ that a crash cut short: one
    # without its trailer yet, one whose trailer reached the disk before the
    # rest of the file (its checksum does not match)
    cut = "00000000000003ABCDEF"
    with open(os.path.join(h.state_dir, "queue", cut + ".msg"), "wb") as f:
        f.write(b"Received: partial\r\n")
    torn = "00000000000004ABCDEF"
    body = b"Received: x\r\n\r\nbody\r\n"
    env = b"hato-envelope: 1\nid: %s\n" % torn.encode()
    with open(os.path.join(h.state_dir, "queue", torn + ".msg"), "wb") as f:
        f.write(b"\0" * len(body) + env + b"hato-queue: 1 message=%d envelope=%d crc32c=%08x\n"
                % (len(body), len(env), crc32c(body + env)))
    assert not os.path.exists(os.path.join(h.state_dir, "shutdown.clean"))

    h2 = restart_hatod(h)
    try:
        h2.start()
        wait_ready(h2)  # the spool is recovered before the first greeting
        queue, incoming = spool_files(h2)
        assert incoming == []
        msgs = {n[:-4] for n in queue if n.endswith(".msg")}
        envs = {n[:-4] for n in queue if n.endswith(".env")}
        assert envs <= msgs, envs - msgs
        assert orphan not in envs
        assert cut not in msgs and torn not in msgs
        for qid in (cut, torn):  # (the kill may have cut one of its own too)
            assert ("queue_id=%s action=removed reason=\"incomplete: its commit was cut short"
                    % qid) in h2.logs()
        assert re.search(r"event=recovery checked=all removed=([2-9]|\d\d+) ", h2.logs())
        assert all(n.endswith((".msg", ".env")) for n in queue), queue
        # every acknowledged message is there, intact
        missing = set(acked) - msgs
        assert not missing, "acknowledged but lost: %s" % sorted(missing)
        stored = {env["id"]: (env, msg) for env, msg in h2.queued()}
        for qid, (t, i, body) in acked.items():
            env, msg = stored[qid]
            assert env["sender"] == "<t%d@localhost>" % t
            assert env["rcpt"] == ["<r%d@localhost>" % i]
            assert env["size"] == str(len(body))
            assert strip_received(msg) == body
        # queue IDs sort by time: each thread's messages in the order sent
        for t in range(THREADS):
            mine = sorted((i, qid) for qid, (tt, i, _) in acked.items() if tt == t)
            assert [q for _, q in mine] == sorted(q for _, q in mine)
        # spool files belong to the daemon user, private
        hato_uid = pwd.getpwnam("hato").pw_uid
        for name in queue:
            st = os.stat(os.path.join(h2.state_dir, "queue", name))
            assert (st.st_uid, st.st_mode & 0o777) == (hato_uid, 0o600), name
        # what was committed without a 250 reaching the client is whole too
        for qid, (env, msg) in stored.items():
            assert strip_received(msg) in sent, qid
        # and the restarted server works on the recovered spool
        with smtplib.SMTP(h2.host, h2.port, timeout=10) as s:
            assert s.sendmail("after@localhost", ["x@localhost"], b"\r\nafter\r\n") == {}
        assert len(h2.queue_ids()) == len(stored) + 1
        assert "queued=%d " % len(stored) in h2.logs()
        # the marker's leftover is gone: the next orderly exit leaves one
        assert not os.path.exists(os.path.join(h2.state_dir, "shutdown.clean.tmp"))
        assert h2.stop() == 0
        assert os.path.exists(os.path.join(h2.state_dir, "shutdown.clean"))
    finally:
        h2.kill9()


def test_sigterm_idle_client_gets_421_and_exit_0(make_hatod):
    h = make_hatod()
    idle = RawSMTP(h.host, h.port)
    busy = RawSMTP(h.host, h.port)
    try:
        assert idle.cmd("EHLO idle.example").startswith("250-")
        assert busy.cmd("EHLO busy.example").startswith("250-")
        assert busy.cmd("MAIL FROM:<a@localhost>") == "250 2.1.0 Sender OK"
        assert busy.cmd("RCPT TO:<b@localhost>") == "250 2.1.5 Recipient OK"
        assert busy.cmd("DATA").startswith("354 ")
        busy.send(b"Subject: cut\r\n\r\npart")
        time.sleep(0.1)
        h.proc.send_signal(signal.SIGTERM)
        assert idle.reply() == "421 4.3.2 Service shutting down, closing connection"
        assert idle.eof()
        assert busy.reply() == "421 4.3.2 Service shutting down, closing connection"
        assert busy.eof()
        assert h.proc.wait(10) == 0
    finally:
        idle.close()
        busy.close()
    assert h.queue_ids() == []
    assert h.incoming() == []
    # an orderly exit leaves its mark, so the next start skips the checksums
    marker = os.path.join(h.state_dir, "shutdown.clean")
    assert os.path.exists(marker)
    checked = h.logs().count("event=recovery checked=all")  # the first start's, with no mark
    h2 = restart_hatod(h)
    h2.start()
    try:
        wait_ready(h2)
        assert not os.path.exists(marker)  # taken at start: a crash now leaves none
        assert h2.logs().count("event=recovery checked=all") == checked
    finally:
        assert h2.stop() == 0


NOT_ORDERLY = "the last shutdown was not orderly"


def test_new_spool_says_it_is_new_not_that_it_recovered(make_hatod):
    """A fresh state directory holds no spool: the first start says the spool
    is new and recovers nothing; after kill -9 the next start does recover
    (every checksum), and after an orderly exit neither."""
    h = make_hatod()
    wait_ready(h)
    first = h.logs()
    assert "event=spool_new dir=%s" % os.path.join(h.state_dir, "queue") in first, first
    assert NOT_ORDERLY not in first and "event=recovery" not in first, first
    h.kill9()
    h2 = restart_hatod(h)
    h2.start()
    try:
        wait_ready(h2)
        again = h2.logs()[h2.log_start:]
        assert NOT_ORDERLY in again and "event=spool_new" not in again, again
    finally:
        assert h2.stop() == 0
    h3 = restart_hatod(h)
    h3.start()
    try:
        wait_ready(h3)
        third = h3.logs()[h3.log_start:]
        assert NOT_ORDERLY not in third and "event=spool_new" not in third, third
    finally:
        assert h3.stop() == 0


def test_sigterm_lets_a_finished_message_commit(make_hatod):
    # the client sent its final dot just before SIGTERM: it still gets 250,
    # then 421, and the message is in the queue
    h = make_hatod()
    with RawSMTP(h.host, h.port) as c:
        c.cmd("EHLO last.example")
        c.send(b"MAIL FROM:<a@localhost>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n")
        assert c.replies(3)[2].startswith("354 ")
        c.send(b"Subject: last\r\n\r\nlast one\r\n.\r\n")
        h.proc.send_signal(signal.SIGTERM)
        r = c.reply()
        if r.startswith("250 "):
            m = QUEUED_RE.fullmatch(r[4:].encode())
            assert m, r
            assert c.reply() == "421 4.3.2 Service shutting down, closing connection"
            [(env, msg)] = h.queued()
            assert env["id"] == m.group(1).decode()
            assert strip_received(msg) == b"Subject: last\r\n\r\nlast one\r\n"
        else:  # the signal won the race: refused, and nothing kept
            assert r == "421 4.3.2 Service shutting down, closing connection"
        assert c.eof()
    assert h.proc.wait(10) == 0
    assert h.incoming() == []


def test_no_new_connections_after_sigterm(make_hatod):
    h = make_hatod()
    idle = RawSMTP(h.host, h.port)
    try:
        idle.cmd("EHLO a.example")
        h.proc.send_signal(signal.SIGTERM)
        assert idle.reply().startswith("421 4.3.2 ")
        assert h.proc.wait(10) == 0
    finally:
        idle.close()
    try:
        RawSMTP(h.host, h.port, timeout=2)
        connected = True
    except OSError:
        connected = False
    assert not connected


def test_sighup_is_harmless(hatod):
    with RawSMTP(hatod.host, hatod.port) as c:
        c.cmd("EHLO hup.example")
        hatod.proc.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        assert hatod.proc.poll() is None
        assert c.cmd("NOOP") == "250 2.0.0 OK"
    hatod.wait_log("signal=HUP")


def test_message_files_from_before_the_trailer_are_upgraded(make_hatod):
    """A spool written before the one-file format (ID.msg holding only the
    message, ID.env beside it) is rewritten at start, nothing lost: same
    bytes, same envelope, and the messages are delivered."""
    h = make_hatod()
    bodies = [b"Subject: old %d\r\n\r\n.dot line\r\nbody %d\r\n" % (i, i) for i in range(2)]
    with smtplib.SMTP(h.host, h.port, timeout=10) as s:
        for i, body in enumerate(bodies):
            s.sendmail("a@localhost", ["old%d@localhost" % i], body)
    assert h.stop() == 0
    before = {}
    qdir = os.path.join(h.state_dir, "queue")
    for qid in h.queue_ids():
        env, msg = read_queued(h.state_dir, qid)
        before[qid] = (env, msg)
        with open(os.path.join(qdir, qid + ".msg"), "wb") as f:
            f.write(msg)  # the old layout: the message alone ...
        with open(os.path.join(qdir, qid + ".env"), "w") as f:
            f.write(env)  # ... and its envelope beside it
    assert len(before) == 2

    h2 = restart_hatod(h)
    h2.start()
    try:
        wait_ready(h2)
        h2.wait_log("event=recovery upgraded=2")
        assert sorted(h2.queue_ids()) == sorted(before)
        for qid, (env, msg) in before.items():
            with open(os.path.join(qdir, qid + ".msg"), "rb") as f:
                data = f.read()
            assert data.endswith(b"hato-queue: 1 message=%d envelope=%d\n"
                                 % (len(msg), len(env.encode())))
            assert read_queued(h2.state_dir, qid) == (env, msg)
    finally:
        assert h2.stop() == 0

    h3 = restart_hatod(h, delivery={"hold": "no"})
    h3.start()
    try:
        for i, body in enumerate(bodies):
            user = "old%d" % i
            deadline = time.monotonic() + 10
            while not h3.maildir(user) and time.monotonic() < deadline:
                time.sleep(0.05)
            [path] = h3.maildir(user)
            with open(path, "rb") as f:
                # after Return-Path and Delivered-To, with LF lines
                assert strip_received(f.read().split(b"\n", 2)[2]) == lf(body)
        # ID.msg goes first and its ID.env just after: wait for both
        deadline = time.monotonic() + 10
        while os.listdir(qdir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.listdir(qdir) == []
    finally:
        assert h3.stop() == 0


def test_files_damaged_on_disk_are_set_aside_with_their_envelope(make_hatod):
    """After an unclean shutdown, a tried message (ID.env beside it) whose
    checksum fails, or whose trailer is damaged, is put aside with its
    envelope, byte for byte, not delivered and not taken for a file from
    before the trailer (which would deliver its envelope as message text)."""
    h = make_hatod()
    with smtplib.SMTP(h.host, h.port, timeout=10) as s:
        for i in range(3):
            s.sendmail("a@localhost", ["d%d@localhost" % i], b"Subject: d%d\r\n\r\nbody\r\n" % i)
    assert h.stop() == 0
    qdir = os.path.join(h.state_dir, "queue")
    rotted, cut_trailer, fine = h.queue_ids()
    damaged = {}
    for qid in (rotted, cut_trailer, fine):
        env, _ = read_queued(h.state_dir, qid)
        with open(os.path.join(qdir, qid + ".env"), "w") as f:
            f.write(env)  # tried once: its envelope stands beside it
        with open(os.path.join(qdir, qid + ".msg"), "rb") as f:
            data = f.read()
        if qid == rotted:
            data = data.replace(b"body", b"bodY", 1)  # one octet changed
        elif qid == cut_trailer:
            data = data.replace(b"hato-queue: 1 message=", b"hato-queue: 1 messa\0e=")
        damaged[qid] = (data, env.encode())
        with open(os.path.join(qdir, qid + ".msg"), "wb") as f:
            f.write(data)
    os.unlink(os.path.join(h.state_dir, "shutdown.clean"))  # as after a crash

    h2 = restart_hatod(h, delivery={"hold": "no"})
    h2.start()
    try:
        wait_ready(h2)
        h2.wait_log("event=recovery checked=all")
        for qid, why in ((rotted, "checksum does not match"), (cut_trailer, "trailer damaged")):
            assert ("queue_id=%s action=set_aside file=%s.msg.corrupt reason=\"%s"
                    % (qid, qid, why)) in h2.logs()
            data, env = damaged[qid]
            with open(os.path.join(qdir, qid + ".msg.corrupt"), "rb") as f:
                assert f.read() == data
            with open(os.path.join(qdir, qid + ".env.corrupt"), "rb") as f:
                assert f.read() == env
        assert "upgraded" not in h2.logs()
        # the undamaged one is delivered (its ID.msg and ID.env go), the
        # others are not
        aside = sorted(qid + ext for qid in (rotted, cut_trailer)
                       for ext in (".msg.corrupt", ".env.corrupt"))
        deadline = time.monotonic() + 10
        while sorted(os.listdir(qdir)) != aside and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(os.listdir(qdir)) == aside
        assert len(h2.maildir("d0")) + len(h2.maildir("d1")) + len(h2.maildir("d2")) == 1
    finally:
        assert h2.stop() == 0
