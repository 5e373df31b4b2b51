"""Milters: hatod as the MTA side of the milter protocol (version 6).

Real filters, really started:
  - a test filter written with Debian's python3-milter (libmilter's Python
    binding), tests/e2e/milters/action_milter.py, which carries out the
    action a message asks for (its Subject, sender or recipient) and logs
    what it was told, macros included;
  - a real rspamd (Debian's rspamd package), its proxy worker in milter
    mode on a private port with a private configuration: no redis, and the
    modules that would reach outside (remote maps, RBLs, fuzzy servers)
    switched off, DNS pointed at a closed loopback port;
  - filters that misbehave (hang, close, send garbage or a huge packet),
    small socket servers written here: on_failure decides.
Every test asserts SMTP replies and what lands in the queue (deliveries are
held), and hatod's clean exit (the make_hatod fixture), so no leak.
Missing python3-milter or rspamd is a failure, never a skip:
scripts/setup.sh installs them.
"""
import json
import os
import re
import shutil
import smtplib
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from conftest import free_port, wait_port
from test_local_delivery import hato, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
ACTION_MILTER = os.path.join(HERE, "milters", "action_milter.py")
RSPAMD = shutil.which("rspamd") or "/usr/bin/rspamd"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
DOMAINS = "[domain localhost]\nmailboxes = *\n[domain test.example]\nmailboxes = *\n"


class ActionMilter:
    """action_milter.py on 127.0.0.1:port, its log in root/milter.log."""

    def __init__(self, root):
        self.port = free_port()
        self.log = os.path.join(root, "milter.log")
        self.out = open(os.path.join(root, "milter.out"), "wb")
        self.proc = subprocess.Popen(["/usr/bin/python3", ACTION_MILTER, str(self.port), self.log],
                                     stdout=self.out, stderr=subprocess.STDOUT)
        wait_port("127.0.0.1", self.port, timeout=20, proc=self.proc)

    def seen(self):
        """What it logged: one dict per message (or abort)."""
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()


@pytest.fixture
def action_milter(testdir):
    m = ActionMilter(testdir)
    yield m
    m.stop()


def milter_section(name, port, **keys):
    lines = ["[milter %s]" % name, "address = 127.0.0.1:%d" % port]
    lines += ["%s = %s" % kv for kv in keys.items()]
    return "\n".join(lines) + "\n"


def start(make_hatod, *sections, **kw):
    return make_hatod(extra=DOMAINS + "".join(sections), **kw)


def send(h, subject, body="A line of body.\r\n", sender="alice@test.example",
         rcpts=("bob@localhost",), extra_headers=""):
    """Send one message; (code, text) of the reply to the end of data, or of
    the first refusal; the recipients refused."""
    msg = "From: %s\r\nTo: bob@localhost\r\nSubject: %s\r\n%s\r\n%s" % (
        sender, subject, extra_headers, body)
    with smtplib.SMTP(h.host, h.port, timeout=30) as s:
        s.ehlo("client.example")
        try:
            refused = s.sendmail(sender, list(rcpts), msg.encode())
        except smtplib.SMTPRecipientsRefused as e:
            return (None, None), e.recipients
        except smtplib.SMTPSenderRefused as e:
            return (e.smtp_code, e.smtp_error.decode()), {}
        except smtplib.SMTPDataError as e:
            return (e.smtp_code, e.smtp_error.decode()), {}
        return (250, ""), refused


def only_queued(h):
    """The one committed message: (envelope dict, message bytes)."""
    q = h.queued()
    assert len(q) == 1, q
    return q[0]


def test_mail_and_rcpt_refusals(make_hatod, action_milter):
    """Refusals at MAIL (reject, tempfail, the filter's own reply) and at
    RCPT (only that recipient goes; the others are taken)."""
    h = start(make_hatod, milter_section("test", action_milter.port))
    assert send(h, "x", sender="reject-mail@test.example")[0] == (550, "5.7.1 Message content rejected")
    code, text = send(h, "x", sender="tempfail-mail@test.example")[0]
    assert code == 451 and text.startswith("4.7.1")
    assert send(h, "x", sender="reply-mail@test.example")[0] == (
        550, "5.7.1 Sender refused by the test filter")
    reply, refused = send(h, "continue", rcpts=("reject-rcpt@localhost", "bob@localhost",
                                               "reply-rcpt@localhost"))
    assert reply == (250, "")
    assert refused["reject-rcpt@localhost"] == (550, b"5.7.1 Message content rejected")
    assert refused["reply-rcpt@localhost"] == (451, b"4.7.1 Recipient not now, says the test filter")
    env, _ = only_queued(h)
    assert env["rcpt"] == ["<bob@localhost>"]
    h.wait_log("event=milter_action session=")
    assert "filter=test action=reject step=mail" in h.logs()
    assert "filter=test action=replycode step=rcpt" in h.logs()


def test_end_of_message_verdicts(make_hatod, action_milter):
    """reject, tempfail, a two-line reply of its own, discard (250, nothing
    kept), accept (kept as sent)."""
    h = start(make_hatod, milter_section("test", action_milter.port))
    assert send(h, "reject")[0] == (550, "5.7.1 Message content rejected")
    code, text = send(h, "tempfail")[0]
    assert (code, text[:5]) == (451, "4.7.1")
    code, text = send(h, "replycode")[0]
    assert code == 554
    assert text == "5.7.1 Spam detected\n5.7.1 by the test filter"
    assert h.queued() == [] and h.incoming() == []
    assert send(h, "discard")[0] == (250, "")
    assert h.queued() == []
    h.wait_log("event=discarded session=")
    assert send(h, "accept it")[0] == (250, "")
    _, msg = only_queued(h)
    assert b"\r\nSubject: accept it\r\n\r\nA line of body.\r\n" in msg


def test_header_actions(make_hatod, action_milter):
    """addheader, insheader (before everything, our Received: too),
    chgheader, and a field deleted (chgheader with an empty value)."""
    h = start(make_hatod, milter_section("test", action_milter.port))
    for subject in ("addheader", "insheader", "chgheader", "delheader"):
        assert send(h, subject, extra_headers="X-Remove: this one\r\n")[0] == (250, "")
    msgs = {}
    for env, msg in h.queued():
        for s in ("addheader", "insheader", "chgheader", "delheader"):
            if ("Subject: " + s).encode() in msg:
                msgs[s] = msg
    msgs["chgheader"] = next(m for _, m in h.queued() if b"Subject: changed" in m)
    assert b"\r\nX-Test-Milter: added by the test filter\r\n\r\nA line" in msgs["addheader"]
    assert msgs["insheader"].startswith(b"X-Inserted: first of all\r\nReceived: from client.example")
    assert b"\r\nSubject: changed by the test filter\r\nX-Remove: this one\r\n" in msgs["chgheader"]
    assert b"X-Remove" not in msgs["delheader"]
    assert b"\r\nSubject: delheader\r\n\r\nA line of body.\r\n" in msgs["delheader"]
    for action in ("addheader", "insheader", "chgheader", "delheader"):
        assert "filter=test action=%s" % action in h.logs()


def test_body_replaced(make_hatod, action_milter):
    """replbody: the filter's body, its LF line ends made CRLF; a large body
    (streamed to incoming/) too."""
    h = start(make_hatod, milter_section("test", action_milter.port))
    assert send(h, "replbody")[0] == (250, "")
    assert send(h, "replbody big", body="y" * 998 + "\r\n" * 1 + ("z" * 70 + "\r\n") * 2000)[0] == (250, "")
    for env, msg in h.queued():
        head, _, body = msg.partition(b"\r\n\r\n")
        assert body == b"The body the test filter wrote.\r\nSecond line.\r\n"
        assert int(env["size"]) == len(msg) - msg.index(b"From: ")
    assert h.incoming() == []
    # the filter saw the big body whole, in chunks of at most 64 KiB
    big = [m for m in action_milter.seen() if m.get("action") == "replbody" and len(m["body"]) > 1000]
    assert len(big) == 1 and len(big[0]["body"]) == 998 + 2 + 72 * 2000


def test_recipient_and_sender_actions(make_hatod, action_milter):
    """addrcpt, delrcpt and chgfrom change the committed envelope."""
    h = start(make_hatod, milter_section("test", action_milter.port))
    assert send(h, "addrcpt")[0] == (250, "")
    env, _ = only_queued(h)
    assert env["rcpt"] == ["<bob@localhost>", "<carol@localhost>"]
    os.remove(os.path.join(h.state_dir, "queue", env["id"] + ".msg"))
    assert send(h, "delrcpt", rcpts=("bob@localhost", "dave@localhost"))[0] == (250, "")
    env, _ = only_queued(h)
    assert env["rcpt"] == ["<dave@localhost>"]
    os.remove(os.path.join(h.state_dir, "queue", env["id"] + ".msg"))
    assert send(h, "chgfrom")[0] == (250, "")
    env, _ = only_queued(h)
    assert env["sender"] == "<changed@test.example>"
    # all recipients deleted: nothing is left to deliver, nothing is kept
    os.remove(os.path.join(h.state_dir, "queue", env["id"] + ".msg"))
    assert send(h, "delrcpt")[0] == (250, "")
    assert h.queued() == []
    for action in ("addrcpt", "delrcpt", "chgfrom"):
        assert "filter=test action=%s" % action in h.logs()


def test_quarantine_then_release(make_hatod, action_milter):
    """quarantine: the message is committed on hold with the filter's reason,
    shown held by `hato queue`, not delivered; `hato queue release` lets it
    go to the mailbox."""
    h = start(make_hatod, milter_section("test", action_milter.port), delivery={"hold": "no"})
    assert send(h, "quarantine")[0] == (250, "")
    [qid] = h.committed_ids()
    h.wait_log("event=quarantined session=")
    assert 'stage=milter reason="held by the test filter"' in h.logs()
    text = h.envelope_text(qid)
    assert re.search(r"^hold: since=\d+ reason=quarantined by milter: held by the test filter$",
                     text, re.M), text
    assert re.search(r"^  HELD ", hato(h, "queue").stdout, re.M)
    time.sleep(1.0)
    assert h.maildir("bob") == []
    r = hato(h, "queue", "release", qid)
    assert r.returncode == 0 and r.stdout == "OK released %s\n" % qid, (r.stdout, r.stderr)
    wait_for(lambda: h.maildir("bob"), what="bob's delivery after the release")
    with open(h.maildir("bob")[0], "rb") as f:
        assert b"\nSubject: quarantine\n\nA line of body.\n" in f.read()  # Maildir: LF


def test_progress_keeps_the_wait(make_hatod, action_milter):
    """A filter that takes 3 s but says progress each second is waited for
    (timeout_reply = 2s)."""
    h = start(make_hatod, milter_section("test", action_milter.port, timeout_reply="2s"))
    t = time.monotonic()
    assert send(h, "progress")[0] == (250, "")
    assert time.monotonic() - t >= 3
    assert h.logs().count("filter=test action=progress") >= 3


@pytest.mark.parametrize("on_failure,expect", [("tempfail", 451), ("accept", 250)])
def test_hanging_filter(make_hatod, action_milter, on_failure, expect):
    """A filter that does not answer in time gets on_failure; the session
    goes on (the next message is filtered again)."""
    h = start(make_hatod, milter_section("test", action_milter.port, timeout_reply="1s",
                                         on_failure=on_failure))
    t = time.monotonic()
    assert send(h, "hang")[0][0] == expect
    assert time.monotonic() - t < 5
    h.wait_log('filter=test address=127.0.0.1:%d reason="reply timeout"' % action_milter.port)
    time.sleep(6)  # the filter's thread finishes its sleep
    assert send(h, "reject")[0][0] == 550


def test_macros_and_what_the_filter_sees(make_hatod, action_milter):
    """The macros Postfix sends, the client, HELO, ESMTP parameters, our
    Received: first among the header fields, the body as stored; RSET tells
    the filter abort; TLS shows in {tls_version}."""
    h = start(make_hatod, milter_section("test", action_milter.port))
    with smtplib.SMTP(h.host, h.port, timeout=30) as s:
        s.ehlo("client.example")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo("client.example")
        s.mail("first@test.example")
        s.rcpt("bob@localhost")
        s.rset()
        s.sendmail("alice@test.example", ["bob@localhost"],
                   b"Subject: seen\r\n\r\nbody\r\n.dot\r\n", mail_options=["BODY=8BITMIME"])
    env, _ = only_queued(h)
    seen = action_milter.seen()
    assert {"abort": "<first@test.example>"} in seen
    m = [x for x in seen if x.get("action") == "seen"][0]
    assert m["client_hostname"] == "[127.0.0.1]" and m["client_addr"] == "127.0.0.1"
    assert m["helo"] == "client.example"
    assert m["from"] == "<alice@test.example>" and m["rcpts"] == ["<bob@localhost>"]
    assert "BODY=8BITMIME" in m["mail_params"]
    assert m["headers"][0][0] == "Received" and "by mx.test.example (hato)" in m["headers"][0][1]
    assert m["headers"][1] == ["Subject", "seen"]
    assert m["body"] == "body\r\n.dot\r\n"
    mac = m["macros"]
    assert mac["connect"]["j"] == "mx.test.example"
    assert mac["connect"]["{daemon_name}"] == "smtp"
    assert mac["connect"]["{client_addr}"] == "127.0.0.1"
    assert mac["connect"]["{client_name}"] == "unknown"
    assert mac["mail"]["{mail_addr}"] == "alice@test.example"
    assert mac["mail"]["{tls_version}"].startswith("TLSv1.")
    assert mac["rcpt"]["{rcpt_addr}"] == "bob@localhost"
    assert mac["eom"]["i"] == env["id"]


class BadFilter:
    """A filter that misbehaves after the option negotiation: it sends
    garbage, closes, or announces a packet far over packet_max."""

    def __init__(self, mode):
        self.mode = mode
        self.port = free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(4096)  # the option negotiation
                    conn.sendall(struct.pack("!IcIII", 13, b"O", 6, 0x1ff, 0))
                    conn.recv(4096)  # macros, connect
                    if self.mode == "garbage":
                        conn.sendall(struct.pack("!Ic", 1, b"Z"))
                    elif self.mode == "huge":
                        conn.sendall(struct.pack("!I", 0x7fffffff) + b"c" * 100)
                    elif self.mode == "shortopt":
                        conn.sendall(struct.pack("!Ic", 3, b"h") + b"\0")
                    conn.recv(4096)
                except OSError:
                    pass

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


@pytest.mark.parametrize("mode", ["garbage", "close", "huge", "shortopt"])
def test_misbehaving_filter(make_hatod, mode):
    """Garbage, a closed connection, a packet over packet_max, a header reply
    whose strings are cut short: 451 4.7.1 under on_failure = tempfail, and
    hatod goes on."""
    f = BadFilter(mode)
    try:
        h = start(make_hatod, milter_section("bad", f.port, timeout_reply="3s"))
        code, text = send(h, "x")[0]
        assert (code, text[:5]) == (451, "4.7.1")
        h.wait_log("event=milter_failed session=")
        assert "filter=bad" in h.logs()
    finally:
        f.stop()


def test_filter_not_there(make_hatod):
    """Nothing listens: on_failure = tempfail says 451; accept takes the mail."""
    port = free_port()
    h = start(make_hatod, milter_section("gone", port), milter_section("gone2", port, on_failure="accept"))
    code, _ = send(h, "x")[0]
    assert code == 451
    h2 = start(make_hatod, milter_section("gone", port, on_failure="accept"))
    assert send(h2, "x")[0] == (250, "")


def test_filters_in_order_and_per_listener(make_hatod, action_milter, testdir):
    """Two filters run in the order written (the first's header is there when
    the second adds its own); listeners limits a filter to some listeners."""
    other = free_port()
    h = start(make_hatod,
              milter_section("first", action_milter.port),
              milter_section("second", action_milter.port),
              milter_section("sub", other, listeners="submission"),
              listeners={"smtp": "127.0.0.1:%d" % free_port(),
                         "submission": {"address": "127.0.0.1:%d" % other, "auth": "none"}})
    h.port = int(h.listeners["smtp"].rsplit(":", 1)[1])
    assert send(h, "addheader")[0] == (250, "")
    _, msg = only_queued(h)
    assert msg.count(b"X-Test-Milter: added by the test filter\r\n") == 2
    logs = h.logs()
    assert logs.index("filter=first action=addheader") < logs.index("filter=second action=addheader")
    assert "filter=sub" not in logs


# --- rspamd ---------------------------------------------------------------

RSPAMD_CONF = """\
.include "$CONFDIR/common.conf"
options {{
    pidfile = "{root}/rspamd.pid";
    .include "$CONFDIR/options.inc"
    disable_hyperscan = true;
    dns {{
        nameserver = ["127.0.0.1:{dns_port}"];
        timeout = 0.2s;
        retransmits = 1;
    }}
}}
logging {{
    type = "file";
    filename = "{root}/rspamd.log";
    level = "info";
}}
worker "rspamd_proxy" {{
    bind_socket = "127.0.0.1:{port}";
    milter = yes;
    timeout = 120s;
    count = 1;
    upstream "local" {{
        default = yes;
        self_scan = yes;
    }}
    spam_header = "X-Spam";
    reject_message = "Spam message rejected";
}}
"""

# modules that would reach outside loopback (remote maps, RBLs, fuzzy
# servers, updates): off
RSPAMD_OFF = ("rbl", "whitelist", "phishing", "multimap", "mime_types", "rspamd_update",
              "fuzzy_check", "asn", "hfilter", "emails")

MILTER_HEADERS = """\
use = ["x-spamd-result", "x-spam-level", "x-spam-status", "x-rspamd-server"];
skip_local = false;
skip_authenticated = false;
"""


class Rspamd:
    """A private rspamd: its proxy worker in milter mode on 127.0.0.1:port."""

    def __init__(self, root):
        self.root = os.path.join(root, "rspamd")
        os.makedirs(os.path.join(self.root, "local", "override.d"))
        os.makedirs(os.path.join(self.root, "local", "local.d"))
        os.makedirs(os.path.join(self.root, "db"))
        for d in ("", "db"):
            os.chmod(os.path.join(self.root, d), 0o777)
        self.port = free_port()
        with open(os.path.join(self.root, "rspamd.conf"), "w") as f:
            f.write(RSPAMD_CONF.format(root=self.root, port=self.port, dns_port=free_port()))
        for m in RSPAMD_OFF:
            with open(os.path.join(self.root, "local", "override.d", m + ".conf"), "w") as f:
                f.write("enabled = false;\n")
        with open(os.path.join(self.root, "local", "local.d", "milter_headers.conf"), "w") as f:
            f.write(MILTER_HEADERS)
        self.out = open(os.path.join(self.root, "out.log"), "wb")
        self.proc = subprocess.Popen(
            [RSPAMD, "-f", "-c", os.path.join(self.root, "rspamd.conf"), "-u", "_rspamd",
             "-g", "_rspamd", "--var", "LOCAL_CONFDIR=" + os.path.join(self.root, "local"),
             "--var", "DBDIR=" + os.path.join(self.root, "db"), "--var", "RUNDIR=" + self.root],
            stdout=self.out, stderr=subprocess.STDOUT)
        wait_port("127.0.0.1", self.port, timeout=180, proc=self.proc)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


@pytest.fixture
def rspamd(testdir):
    assert os.path.exists(RSPAMD), "rspamd missing: scripts/setup.sh installs it"
    r = Rspamd(testdir)
    yield r
    r.stop()


def test_rspamd(make_hatod, rspamd):
    """A real rspamd: GTUBE is refused with rspamd's reply; a clean message
    is queued with rspamd's X-Spam-* headers; with rspamd stopped the
    message gets 451 (on_failure = tempfail)."""
    h = start(make_hatod, milter_section("rspamd", rspamd.port, timeout_reply="60s"))
    headers = "Message-ID: <clean@test.example>\r\nDate: Mon, 07 Dec 2026 13:00:00 +0000\r\n"
    assert send(h, "gtube", body=GTUBE + "\r\n", extra_headers=headers)[0] == (554, "5.7.1 Gtube pattern")
    assert h.queued() == []
    assert send(h, "A clean message", body="Hello Bob, see you tomorrow.\r\n",
                extra_headers=headers)[0] == (250, "")
    _, msg = only_queued(h)
    head = msg.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nX-Spamd-Result: default: False [" in head
    assert b"\r\nX-Spam-Status: No, score=" in head
    assert b"\r\nX-Spam-Level: " in head or b"X-Spam-Level" not in head
    assert "filter=rspamd action=replycode step=message" in h.logs()
    rspamd.stop()
    code, text = send(h, "after", extra_headers=headers)[0]
    assert (code, text[:5]) == (451, "4.7.1")
