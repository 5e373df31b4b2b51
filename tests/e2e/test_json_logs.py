"""log_format = json: every line hatod writes is one JSON object that
Python's json module parses, with the same fields as the key=value line.

One run covers what a day brings: a session whose EHLO name and addresses
are full of quotes, backslashes, control characters and invalid UTF-8 (the
raw bytes, sent with a bare socket), a normal message delivered into a
Maildir, and a message the next hop refuses, so a bounce is made and
delivered.  hatod runs with -v, so every command and reply is logged too.
The same run with the default format gives the key=value lines the JSON
is compared with.
"""
import json
import re

from conftest import RawSMTP
from smtpserver import ScriptedSMTP

# EHLO and addresses as raw bytes: quote, backslash, control characters
# (SOH, ESC, DEL, TAB) and bytes that are no UTF-8 (\xff, \xc3 alone)
EVIL_EHLO = b'EHLO "quo\\te\x01\x1b[31m\x7f\tname\xff\xc3(\xc3\xa9'
EVIL_SENDER = b'"we\\"ird\\\\one"@example.org'
EVIL_RCPTS = [b'"x\x01y"@localhost', b'"\xff\xfe"@localhost', b'"a\\"b"@example.com']
MSG = b"From: alice@localhost\r\nSubject: json logs\r\n\r\nhello\r\n"
# what the next hop says to a refused recipient: quotes and a backslash
REFUSAL = '550 5.1.1 "%s" is \\ unknown'
STAMP = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
KV_PREFIX = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(\w+) ")


def day_of_mail(make_hatod, log_format):
    """Run the scenario on a new hatod; returns it, stopped."""
    hop = ScriptedSMTP()
    hop.rcpt = lambda addr: REFUSAL % addr if addr.startswith(("nobody", '"')) else "250 ok"
    try:
        transport = "".join("%s = [127.0.0.1]:%d\n" % (d, hop.port)
                            for d in ("example.net", "example.com", "example.org"))
        h = make_hatod(
            server={"log_format": log_format, "trusted_networks": "127.0.0.0/8"},
            delivery={"hold": "no", "retry_schedule": "1s"},
            extra="[domain localhost]\nmailboxes = *\n[transport]\n" + transport,
            args=("-v",))
        with RawSMTP(h.host, h.port) as c:
            c.send(EVIL_EHLO + b"\r\n")
            assert c.reply().startswith("250")
            assert c.cmd("EHLO client.test").startswith("250")
            assert c.cmd(b"MAIL FROM:<" + EVIL_SENDER + b">").startswith("250")
            assert [c.cmd(b"RCPT TO:<" + r + b">")[:3] for r in EVIL_RCPTS] == ["501", "501", "250"]
            assert c.cmd("RCPT TO:<bob@localhost>").startswith("250")
            assert c.cmd("DATA").startswith("354")
            assert c.cmd(MSG + b".").startswith("250")
            # refused by the next hop: a bounce to alice
            assert c.cmd("MAIL FROM:<alice@localhost>").startswith("250")
            assert c.cmd("RCPT TO:<nobody@example.net>").startswith("250")
            assert c.cmd("DATA").startswith("354")
            assert c.cmd(MSG + b".").startswith("250")
            assert c.cmd("QUIT").startswith("221")
        # both messages, the bounce to alice and the one to the evil sender
        removed = '"event":"removed"' if log_format == "json" else "event=removed "
        h.wait_log(removed, count=4, timeout=20)
        assert h.maildir("bob") and h.maildir("alice"), h.logs()[-3000:]
        assert h.stop() == 0
        return h
    finally:
        hop.close()


def kv_fields(line):
    r"""A key=value log line's fields as [(key, value)]: a quoted value ends
    at the quote followed by the end or by the next key=; \xHH decoded and
    read as UTF-8 (bytes that are no UTF-8 as U+FFFD)."""
    m = KV_PREFIX.match(line)
    assert m, line
    out = [("level", m.group(1))]
    rest = line[m.end():].rstrip("\n")
    pair = re.compile(r"([A-Za-z0-9_.-]+)=")
    while rest:
        m = pair.match(rest)
        assert m, (line, rest)
        rest = rest[m.end():]
        if rest.startswith('"'):
            end = re.search(r'"(?=$| +[A-Za-z0-9_.-]+=)', rest[1:])
            value, rest = rest[1:end.start() + 1], rest[end.end() + 1:]
        else:
            value, _, rest = rest.partition(" ")
        raw = re.sub(rb"\\x([0-9a-f]{2})", lambda x: bytes([int(x.group(1), 16)]),
                     value.encode("latin-1"))
        out.append((m.group(1), raw.decode("utf-8", "replace")))
        rest = rest.lstrip(" ")
    return out


def json_lines(h):
    """Every line of h's log, parsed: each must be one JSON object."""
    raw = open(h.log_path, "rb").read()
    assert raw.endswith(b"\n")
    objs = []
    for line in raw.split(b"\n")[:-1]:
        obj = json.loads(line)  # bytes: must be valid UTF-8 and valid JSON
        assert isinstance(obj, dict), line
        objs.append(obj)
    return objs


def test_every_line_is_json_with_the_key_value_fields(make_hatod):
    objs = json_lines(day_of_mail(make_hatod, "json"))
    for o in objs:
        assert STAMP.match(o["time"]), o
        assert o["level"] in ("debug", "info", "warning"), o
        assert o["event"], o
        assert all(isinstance(v, str) for v in o.values()), o
    by = {}
    for o in objs:
        by.setdefault(o["event"], []).append(o)

    # the session: every line of it carries its ID
    [conn] = by["connect"]
    sid = conn["session"]
    assert (conn["client"], conn["listener"]) == ("127.0.0.1", "smtp")
    lines = [o["line"] for o in by["command"]]
    assert lines[0] == EVIL_EHLO.decode("utf-8", "replace")
    assert lines[0] == 'EHLO "quo\\te\x01\x1b[31m\x7f\tname\ufffd\ufffd(\u00e9'
    assert lines[2] == "MAIL FROM:<" + EVIL_SENDER.decode() + ">"
    assert lines[3:6] == ["RCPT TO:<%s>" % r.decode("utf-8", "replace") for r in EVIL_RCPTS]
    assert lines[4] == 'RCPT TO:<"\ufffd\ufffd"@localhost>'
    assert all(o["session"] == sid for o in by["command"] + by["reply"] + by["state"])
    assert "Hello " + EVIL_EHLO[5:].decode("utf-8", "replace") in by["reply"][1]["text"]
    [disc] = by["disconnect"]
    assert (disc["session"], disc["messages"], disc["errors"]) == (sid, "2", "2")

    # the messages: queued, delivered, refused, bounced
    q1, q2 = by["queued"]
    assert (q1["session"], q1["from"], q1["size"], q1["rcpts"]) == (
        sid, "<%s>" % EVIL_SENDER.decode(), str(len(MSG)), "2")
    assert q2["from"] == "<alice@localhost>"
    dl = {(o["queue_id"], o["rcpt"]): o for o in by["delivery"]}
    bob = dl[(q1["queue_id"], "<bob@localhost>")]
    assert (bob["status"], bob["esc"]) == ("delivered", "2.0.0")
    assert bob["text"].startswith("delivered to maildir ")
    quoted = dl[(q1["queue_id"], '<"a\\"b"@example.com>')]
    assert (quoted["status"], quoted["esc"]) == ("failed", "5.1.1")
    assert REFUSAL % '"a\\"b"@example.com' in quoted["text"]
    nobody = dl[(q2["queue_id"], "<nobody@example.net>")]
    assert (nobody["status"], nobody["esc"]) == ("failed", "5.1.1")
    assert REFUSAL % "nobody@example.net" in nobody["text"]
    reports = {o["queue_id"]: o for o in by["report"]}
    assert reports[q1["queue_id"]]["to"] == "<%s>" % EVIL_SENDER.decode()
    assert reports[q2["queue_id"]]["to"] == "<alice@localhost>"
    bounce = dl[(reports[q2["queue_id"]]["report_id"], "<alice@localhost>")]
    assert bounce["status"] == "delivered"
    removed = {o["queue_id"] for o in by["removed"]}
    assert removed == {q1["queue_id"], q2["queue_id"]} | {r["report_id"] for r in by["report"]}
    assert "stopping" in by and objs[-1]["event"] == "stopped"


def test_json_fields_are_the_key_value_fields(make_hatod):
    """The same day in both formats: each event has the same keys, and the
    commands and addresses logged have the same values."""
    kv = [kv_fields(l) for l in open(day_of_mail(make_hatod, "keyvalue").log_path,
                                     encoding="latin-1") if not l.startswith("hatod: ")]
    js = json_lines(day_of_mail(make_hatod, "json"))

    def keys(o):
        return (dict(o)["event"], tuple(k for k, _ in o if k != "time"))

    assert {keys(f) for f in kv} == {keys(o.items()) for o in js}

    def values(lines, event, key):
        return [dict(o)[key] for o in lines if dict(o)["event"] == event]

    assert values(kv, "command", "line") == values([o.items() for o in js], "command", "line")
    for event, key in (("queued", "from"), ("report", "to"), ("rcpt_resolved", "rcpt")):
        assert sorted(values(kv, event, key)) == sorted(values([o.items() for o in js],
                                                               event, key))
