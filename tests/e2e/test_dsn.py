"""The DSN extension's parameters (RFC 3461), end to end: a real client
(Python's smtplib) sends RET, ENVID, NOTIFY and ORCPT, and the envelope in
the queue keeps them exactly as docs/queue.md says, also for the
recipients an alias expands to; sendmail's -N, -R and -V do the same
through the maildrop.  The replies to bad values are the dialogues'
business (tests/dialog/dsn-*.dlg)."""
import os
import smtplib
import subprocess
import time

from conftest import HATO, parse_envelope

TIMEOUT = 10.0
MSG = b"Subject: dsn\r\n\r\nbody\r\n"


def write_aliases(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def test_ehlo_advertises_dsn(hatod):
    with smtplib.SMTP(hatod.host, hatod.port, timeout=TIMEOUT) as s:
        s.ehlo("client.test")
        assert s.has_extn("dsn")


def test_dsn_parameters_stored_in_envelope(hatod):
    with smtplib.SMTP(hatod.host, hatod.port, timeout=TIMEOUT) as s:
        s.ehlo("client.test")
        refused = s.sendmail("alice@localhost", ["bob@localhost"], MSG,
                             mail_options=["RET=HDRS", "ENVID=abc+2Bdef"],
                             rcpt_options=["NOTIFY=SUCCESS,FAILURE",
                                           "ORCPT=rfc822;bob@example.org"])
    assert refused == {}
    [qid] = hatod.queue_ids()
    text = hatod.envelope_text(qid)
    env = parse_envelope(text)
    assert text.splitlines() == [
        "hato-envelope: 1",
        "id: " + qid,
        "arrival: " + env["arrival"],
        "sender: <alice@localhost>",
        "size: %d" % len(MSG),
        "body: unspecified",
        "smtputf8: no",
        "client: 127.0.0.1",
        "client-name: unknown",
        "helo: client.test",
        "ret: hdrs",
        "envid: abc+2Bdef",
        "rcpt: state=pending attempts=0 next=0 notify=success,failure addr=<bob@localhost>",
        "rcpt-orcpt: rfc822;bob@example.org",
    ]
    assert int(env["arrival"]) > 0


def test_without_dsn_parameters_nothing_is_written(hatod):
    with smtplib.SMTP(hatod.host, hatod.port, timeout=TIMEOUT) as s:
        s.ehlo("client.test")
        assert s.sendmail("alice@localhost", ["bob@localhost"], MSG) == {}
    [qid] = hatod.queue_ids()
    text = hatod.envelope_text(qid)
    for key in ("ret:", "envid:", "notify=", "rcpt-orcpt:"):
        assert key not in text, text
    assert "rcpt: state=pending attempts=0 next=0 addr=<bob@localhost>" in text.splitlines()


def test_alias_targets_inherit_notify_and_orcpt(make_hatod, testdir):
    aliases = os.path.join(testdir, "aliases")
    write_aliases(aliases, "team: dave, erin\nops: frank\n")
    h = make_hatod(delivery={"hold": "yes", "aliases_file": aliases})
    with smtplib.SMTP(h.host, h.port, timeout=TIMEOUT) as s:
        s.ehlo("client.test")
        assert s.mail("alice@localhost", ["RET=FULL"])[0] == 250
        assert s.rcpt("team@localhost",
                      ["NOTIFY=DELAY,FAILURE", "ORCPT=RFC822;team@localhost"])[0] == 250
        assert s.rcpt("ops@localhost", ["NOTIFY=NEVER"])[0] == 250
        assert s.rcpt("bob@localhost")[0] == 250
        assert s.data(MSG)[0] == 250
    [qid] = h.queue_ids()
    lines = h.envelope_text(qid).splitlines()
    rcpt_part = lines[lines.index("ret: full") + 1:]
    assert rcpt_part == [
        "rcpt: state=pending attempts=0 next=0 notify=failure,delay addr=<dave@localhost>",
        "rcpt-orig: <team@localhost>",
        "rcpt-orcpt: rfc822;team@localhost",
        "rcpt: state=pending attempts=0 next=0 notify=failure,delay addr=<erin@localhost>",
        "rcpt-orig: <team@localhost>",
        "rcpt-orcpt: rfc822;team@localhost",
        "rcpt: state=pending attempts=0 next=0 notify=never addr=<frank@localhost>",
        "rcpt-orig: <ops@localhost>",
        "rcpt: state=pending attempts=0 next=0 addr=<bob@localhost>",
    ]
    assert "envid:" not in "\n".join(lines)


def test_dsn_fields_survive_a_restart(make_hatod):
    """The envelope is read back at start (recovery) with its DSN fields:
    hatod counts the message and keeps the file as it was."""
    h = make_hatod()
    with smtplib.SMTP(h.host, h.port, timeout=TIMEOUT) as s:
        s.ehlo("client.test")
        assert s.sendmail("alice@localhost", ["bob@localhost"], MSG,
                          mail_options=["ENVID=QQ314159"],
                          rcpt_options=["NOTIFY=NEVER", "ORCPT=utf-8;bob@localhost"]) == {}
    [qid] = h.queue_ids()
    before = h.envelope_text(qid)
    assert h.stop() == 0
    h.start()
    h.wait_log("queued=1")
    assert h.queue_ids() == [qid]
    assert h.envelope_text(qid) == before
    assert "envid: QQ314159\n" in before
    assert "notify=never addr=<bob@localhost>\nrcpt-orcpt: utf-8;bob@localhost\n" in before


def wait_for(pred, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def sendmail(h, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("HATO_CONFIG", "HATO_STATE")}
    return subprocess.run([HATO, "-c", h.conf_path, "send", *args], input=MSG,
                          capture_output=True, timeout=20, env=env)


def test_sendmail_dsn_flags_reach_the_envelope(make_hatod, testdir):
    aliases = os.path.join(testdir, "aliases")
    write_aliases(aliases, "team: dave, erin\n")
    h = make_hatod(delivery={"hold": "yes", "aliases_file": aliases})
    r = sendmail(h, "-N", "success,failure", "-R", "hdrs", "-V", "q+2B1",
                 "-f", "alice@localhost", "bob@localhost", "team@localhost")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: len(h.committed_ids()) == 1)
    lines = h.envelope_text(h.queue_ids()[0]).splitlines()
    assert lines[lines.index("helo: ") + 1:] == [
        "ret: hdrs",
        "envid: q+2B1",
        "rcpt: state=pending attempts=0 next=0 notify=success,failure addr=<bob@localhost>",
        "rcpt: state=pending attempts=0 next=0 notify=success,failure addr=<dave@localhost>",
        "rcpt-orig: <team@localhost>",
        "rcpt: state=pending attempts=0 next=0 notify=success,failure addr=<erin@localhost>",
        "rcpt-orig: <team@localhost>",
    ]


def test_sendmail_bad_dsn_flags_refused(hatod):
    for args in (["-N", "never,success"], ["-R", "both"], ["-V", "+ZZ"]):
        r = sendmail(hatod, *args, "bob@localhost")
        assert r.returncode == 64, (args, r.stderr)  # EX_USAGE
        assert args[0].encode() + b":" in r.stderr
    assert os.listdir(os.path.join(hatod.state_dir, "maildrop")) == []
