"""Per-message queue control: `hato queue show ID` (the timeline of each
recipient's attempts), `hold`, `release`, `retry`, `bounce`, and `hato
queue corrupt` (what recovery set aside), against a real hatod, a second
hatod reached over STARTTLS and a scripted next hop; with hatod running
and stopped, and with unknown and malformed IDs.
"""
import os
import re
import signal
import smtplib
import time

from smtpserver import ScriptedSMTP
from test_local_delivery import (BODY, block_mailbox, hato, log_lines, rcpt_line, respawn,  # noqa: F401
                                 send, wait_for)
from test_remote import next_hatod, relay_hatod

UNKNOWN = "0006A1B2C3D4E5F60001"
MALFORMED = ("not-an-id", "0006A1B2C3D4E5F6000", "0006A1B2C3D4E5F6000G", "../../etc/passwd")
TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}"


def ask(h, *args):
    """hato queue ARGS, again while hatod says the message is being delivered."""
    deadline = time.monotonic() + 15
    while True:
        r = hato(h, "queue", *args)
        if "try again" not in r.stderr or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def deferred_local(make_hatod, user="kim"):
    """hatod with user's mailbox blocked: one message, deferred once, next
    attempt in an hour.  Returns (hatod, queue ID, the blocker file)."""
    h = make_hatod(delivery={"hold": "no", "retry_schedule": "1h"})
    blocker = block_mailbox(h, user)
    assert send(h, ["%s@localhost" % user]) == {}
    h.wait_log("rcpt=<%s@localhost> status=deferred" % user)
    [qid] = h.queue_ids()
    wait_for(lambda: "attempts=1" in h.envelope_text(qid), what="attempts=1 on disk")
    return h, qid, blocker


def attempt_lines(out, rcpt):
    """The attempt lines under recipient rcpt in hato queue show's output."""
    block = out.split("recipient  " + rcpt + "\n", 1)[1].split("\nrecipient  ", 1)[0]
    return [l for l in block.splitlines() if re.match("    " + TIME + "  ", l)]


def test_show_timeline_remote_tls_and_deferred(make_hatod):
    """One message, two next hops: bob's over STARTTLS (delivered: the host
    and the TLS version show), carol's scripted hop greylists twice.  show
    prints both timelines, with hatod running and after it stopped."""
    b = next_hatod(make_hatod, tls="starttls")
    hop = ScriptedSMTP()
    hop.rcpt = lambda addr: "451 4.7.1 greylisted, try again"
    try:
        a = relay_hatod(make_hatod,
                        transport={"example.net": "[127.0.0.1]:%d" % b.port,
                                   "example.org": "[127.0.0.1]:%d" % hop.port},
                        delivery={"retry_schedule": "1s 1h"})
        with smtplib.SMTP(a.host, a.port, timeout=10) as s:
            s.sendmail("alice@test.example", ["bob@example.net", "carol@example.org"],
                       b"Subject: timeline\r\n\r\nbody\r\n")
        wait_for(lambda: a.queue_ids(), what="the message")
        [qid] = a.queue_ids()
        wait_for(lambda: "attempts=2" in rcpt_line(a.envelope_text(qid), "<carol@example.org>"),
                 what="carol's second attempt")
        wait_for(lambda: "state=delivered" in rcpt_line(a.envelope_text(qid), "<bob@example.net>"),
                 what="bob delivered")
        r = hato(a, "queue", "show", qid.lower())  # as typed: case does not matter
        assert r.returncode == 0, (r.stdout, r.stderr)
        out = r.stdout
        assert out.startswith("message    %s\n" % qid), out
        assert re.search(r"^arrival    " + TIME + r" \(\d+s ago\)$", out, re.M), out
        assert "\nsender     <alice@test.example>\n" in out
        assert re.search(r"^client     .*\[127\.0\.0\.1\] helo ", out, re.M), out
        assert "\nstatus     1 of 2 recipients pending\n" in out, out

        [bob] = attempt_lines(out, "<bob@example.net>")
        assert "  delivered  127.0.0.1[127.0.0.1]:%d  TLSv1.3  2." % b.port in bob, bob
        assert "  state    delivered after 1 attempt\n" in out

        carol = attempt_lines(out, "<carol@example.org>")
        assert len(carol) == 2, out
        for line in carol:
            assert "  deferred   127.0.0.1[127.0.0.1]:%d  none  4.7.1 " % hop.port in line, line
            assert "451 4.7.1 greylisted, try again" in line, line
        assert "  state    pending after 2 attempts\n" in out, out
        assert re.search(r"^  next     " + TIME + r" \(in (1h0m|60m|59m)\)$", out, re.M), out
        assert "  result   4.7.1 " in out

        # the same timeline without hatod: it is read from the spool
        assert a.stop() == 0
        r2 = hato(a, "queue", "show", qid)
        assert r2.returncode == 0, r2.stderr
        strip = lambda t: re.sub(r"\((\d+[smhd])+ ago\)|\(in [0-9hm]+\)", "", t)  # noqa: E731
        assert strip(r2.stdout) == strip(out)
    finally:
        hop.close()


def test_hold_survives_restart_then_release_and_retry_deliver(make_hatod, respawn):  # noqa: F811
    h, qid, blocker = deferred_local(make_hatod)
    r = ask(h, "hold", qid, "suspected", "spam run")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout == "OK held %s\n" % qid
    h.wait_log("event=hold queue_id=%s pending=1 reason=\"suspected spam run\"" % qid)
    text = h.envelope_text(qid)
    assert re.search(r"^hold: since=\d+ reason=suspected spam run$", text, re.M), text
    os.unlink(blocker)  # the mailbox works again: still nothing is delivered

    # retry and flush do not deliver a held message
    r = hato(h, "queue", "retry", qid)
    assert r.returncode == 1 and "on hold" in r.stderr and "release" in r.stderr, r.stderr
    assert hato(h, "queue", "flush").returncode == 0
    # holding again is no error, and keeps the first reason
    assert ask(h, "hold", qid).returncode == 0
    assert "reason=suspected spam run" in h.envelope_text(qid)
    listing = hato(h, "queue").stdout
    assert re.search(r"^  HELD      since \d+s: suspected spam run$", listing, re.M), listing
    [kim] = [l for l in listing.splitlines() if l.endswith("<kim@localhost>")]
    assert kim.split()[:3] == ["pending", "1", "held"], kim
    show = hato(h, "queue", "show", qid).stdout
    assert re.search(r"^status     held since " + TIME + r" \(\d+s ago\): suspected spam run$",
                     show, re.M), show
    assert "  next     none while the message is held\n" in show

    # across a restart: still held, nothing delivered
    assert h.stop() == 0
    h2 = respawn(h, {"hold": "no", "retry_schedule": "1h"})
    time.sleep(1.0)
    assert h2.maildir("kim") == [] and h2.queue_ids() == [qid]
    assert "HELD" in hato(h2, "queue").stdout

    # released: back on its schedule (next attempt in an hour) ...
    r = ask(h2, "release", qid)
    assert r.returncode == 0 and r.stdout == "OK released %s\n" % qid, (r.stdout, r.stderr)
    assert "hold:" not in h2.envelope_text(qid)
    r = hato(h2, "queue", "release", qid)
    assert r.returncode == 1 and "is not on hold" in r.stderr, r.stderr
    time.sleep(0.5)
    assert h2.maildir("kim") == []
    # ... and retry sends it now
    r = ask(h2, "retry", qid)
    assert r.returncode == 0 and r.stdout == "OK retrying %s\n" % qid, (r.stdout, r.stderr)
    wait_for(lambda: h2.maildir("kim"), what="kim's delivery after retry")
    wait_for(lambda: h2.queue_ids() == [], what="the queue to empty")
    [line] = log_lines(h2, "rcpt=<kim@localhost> status=delivered")
    assert "attempts=2" in line, line
    h2.wait_log("event=retry queue_id=%s" % qid)
    # the message is gone (its file goes before the job ends): every command says so
    h2.wait_log("event=removed queue_id=%s" % qid)
    for cmd in ("hold", "release", "retry", "bounce"):
        r = hato(h2, "queue", cmd, qid)
        assert r.returncode == 1 and "no message %s in the queue" % qid in r.stderr, (cmd, r.stderr)


def test_bounce_returns_pending_recipients_with_a_report(make_hatod):
    h = make_hatod(delivery={"hold": "no", "retry_schedule": "1h"})
    block_mailbox(h, "kim")
    assert send(h, ["kim@localhost", "lee@localhost"]) == {}
    h.wait_log("rcpt=<kim@localhost> status=deferred")
    [qid] = h.queue_ids()
    wait_for(lambda: "attempts=1" in rcpt_line(h.envelope_text(qid), "<kim@localhost>"),
             what="kim attempts=1")
    assert ask(h, "hold", qid).returncode == 0  # a held message can be bounced too
    r = ask(h, "bounce", qid)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout == "OK bounced %s: 1 recipient returned to the sender\n" % qid
    h.wait_log("event=bounce queue_id=%s failed=1 esc=5.0.0 report=owed" % qid)
    wait_for(lambda: h.maildir("alice"), what="the report to alice")
    wait_for(lambda: h.queue_ids() == [], what="the queue to empty")
    [path] = h.maildir("alice")
    report = open(path, "rb").read().decode()
    assert "Content-Type: multipart/report" in report and "report-type=delivery-status" in report
    assert "Final-Recipient: rfc822; kim@localhost" in report, report
    assert "Subject: local delivery" in report  # the original's headers come back
    assert "Action: failed" in report and "Status: 5.0.0" in report, report
    words = " ".join(report.split())  # the text part and Diagnostic-Code are folded
    assert "said: message returned to the sender by the mail administrator" in words, report
    assert "Diagnostic-Code: X-Hato; message returned to the sender by the mail " \
        "administrator" in words, report
    assert report.count("Final-Recipient:") == 1  # lee, delivered, is not in it
    assert len(h.maildir("lee")) == 1 and h.maildir("kim") == []


def test_commands_without_hatod(make_hatod):
    h, qid, _ = deferred_local(make_hatod)
    assert h.stop() == 0
    for cmd in ("hold", "release", "retry", "bounce"):
        r = hato(h, "queue", cmd, qid)
        assert r.returncode == 69, (cmd, r.returncode, r.stdout, r.stderr)
        assert "hatod is not running" in r.stderr and "queue %s needs it" % cmd in r.stderr, r.stderr
        assert r.stdout == ""
    # nothing changed on disk
    assert "hold:" not in h.envelope_text(qid) and "state=pending attempts=1" in h.envelope_text(qid)
    # show reads the spool: the one Maildir attempt, with its destination and reply
    r = hato(h, "queue", "show", qid)
    assert r.returncode == 0, r.stderr
    [attempt] = attempt_lines(r.stdout, "<kim@localhost>")
    assert re.search(r"  deferred   maildir  -  4\.2\.0 ", attempt), attempt
    r = hato(h, "queue", "show", UNKNOWN)
    assert r.returncode == 1 and "no message %s" % UNKNOWN in r.stderr, (r.returncode, r.stderr)
    for bad in MALFORMED:
        for args in (("show", bad), ("hold", bad), ("bounce", bad)):
            r = hato(h, "queue", *args)
            assert r.returncode == 64 and "bad queue ID" in r.stderr, (args, r.stderr)


def test_unknown_and_malformed_ids_with_hatod(make_hatod):
    h = make_hatod(delivery={"hold": "no"})
    for cmd in ("hold", "release", "retry", "bounce", "show"):
        r = hato(h, "queue", cmd, UNKNOWN)
        assert r.returncode == 1, (cmd, r.returncode, r.stderr)
        assert "no message %s" % UNKNOWN in r.stderr, r.stderr
        for bad in MALFORMED:
            r = hato(h, "queue", cmd, bad)
            assert r.returncode == 64 and "bad queue ID" in r.stderr, (cmd, bad, r.stderr)
    r = hato(h, "queue", "hold", UNKNOWN, "x" * 201)
    assert r.returncode == 64 and "too long" in r.stderr, r.stderr
    r = hato(h, "queue", "hold", UNKNOWN, "two\nlines")
    assert r.returncode == 64 and "printable" in r.stderr, r.stderr
    r = hato(h, "queue", "release")
    assert r.returncode == 64 and "usage" in r.stderr
    assert "request=hold queue_id=%s result=error" % UNKNOWN in h.logs()


def test_corrupt_lists_what_recovery_set_aside(make_hatod, respawn):  # noqa: F811
    h, qid, _ = deferred_local(make_hatod)
    assert h.stop() == 0
    qdir = os.path.join(h.state_dir, "queue")
    r = hato(h, "queue", "corrupt")
    assert r.returncode == 0 and r.stdout.endswith("-- 0 messages set aside by recovery in %s\n"
                                                   % qdir), r.stdout
    with open(os.path.join(qdir, qid + ".msg"), "rb") as f:
        data = f.read()
    with open(os.path.join(qdir, qid + ".msg"), "wb") as f:
        f.write(data.replace(b"several mailboxes", b"several mailboxeS", 1))  # one octet
    os.unlink(os.path.join(h.state_dir, "shutdown.clean"))  # as after a crash
    h2 = respawn(h, {"hold": "no", "retry_schedule": "1h"})
    h2.wait_log("queue_id=%s action=set_aside" % qid)
    assert h2.queue_ids() == []

    r = hato(h2, "queue", "corrupt")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert re.search(r"^%s set aside %s \(\d+s ago\)$" % (qid, TIME), out, re.M), out
    assert "  message  %d octets  %s/%s.msg.corrupt\n" % (len(data), qdir, qid) in out, out
    assert "  envelope %s/%s.env.corrupt\n" % (qdir, qid) in out
    assert "  sender   <alice@localhost>\n" in out and "  pending  <kim@localhost>\n" in out
    assert out.endswith("-- 1 message set aside by recovery in %s\n" % qdir)
    # the listing points at it, show names it, the commands do not find it
    assert "-- 1 message set aside by recovery as damaged: hato queue corrupt" in \
        hato(h2, "queue").stdout
    r = hato(h2, "queue", "show", qid)
    assert r.returncode == 0 and "set aside by recovery as damaged" in r.stdout, r.stdout
    assert hato(h2, "queue", "hold", qid).returncode == 1
    assert h2.stop(signal.SIGTERM) == 0
    r = hato(h2, "queue", "corrupt")  # without hatod too
    assert r.returncode == 0 and qid in r.stdout, r.stderr
