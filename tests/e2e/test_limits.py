"""Every configurable limit of hatod, hit on purpose by a real client:
message size (declared and actual), recipients per transaction, command
and text line length (and a line that never ends, with bounded memory),
Received: loop detection, error counting with delay and hang-up, the
command/data/total timeouts, the session limit, and HTTP clients.
"""
import re
import shlex
import socket
import time

import pytest

from conftest import RawSMTP, strip_received

QUEUED_RE = re.compile(r"^250 2\.0\.0 OK queued as ([0-9A-F]{20})$")
TOO_BIG = "552 5.3.4 Message size exceeds fixed limit"


def begin(h, rcpts=("b@localhost",), mail="MAIL FROM:<a@localhost>"):
    c = RawSMTP(h.host, h.port)
    assert c.cmd("EHLO limits.example").startswith("250-")
    assert c.cmd(mail) == "250 2.1.0 Sender OK"
    for r in rcpts:
        assert c.cmd("RCPT TO:<%s>" % r) == "250 2.1.5 Recipient OK"
    return c


def data(c, body):
    assert c.cmd("DATA") == "354 End data with <CR><LF>.<CR><LF>"
    c.send(body + b".\r\n")
    return c.reply()


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ---------------------------------------------------------------- size

def test_size_parameter_over_limit_refused_at_mail(make_hatod):
    h = make_hatod(limits={"message_size_max": "10k"})
    with RawSMTP(h.host, h.port) as c:
        assert re.search(r"^250[- ]SIZE 10240$", c.cmd("EHLO s.example"), re.M)
        assert c.cmd("MAIL FROM:<a@localhost> SIZE=10241") == TOO_BIG
        assert c.cmd("MAIL FROM:<a@localhost> SIZE=99999999999999999") == TOO_BIG
        # the refused MAIL opened no transaction
        assert c.cmd("RCPT TO:<b@localhost>") == "503 5.5.1 Bad sequence of commands"
        assert c.cmd("MAIL FROM:<a@localhost> SIZE=10240") == "250 2.1.0 Sender OK"
        assert c.cmd("RCPT TO:<b@localhost>") == "250 2.1.5 Recipient OK"
        assert QUEUED_RE.match(data(c, b"\r\nsmall\r\n"))
    assert len(h.queue_ids()) == 1


def test_oversized_body_refused_after_dot_session_goes_on(make_hatod):
    h = make_hatod(limits={"message_size_max": "10k"})
    big = (b"x" * 98 + b"\r\n") * 200  # 20000 octets, in legal lines
    good = b"Subject: fits\r\n\r\n" + b"y" * 100 + b"\r\n"
    c = begin(h)
    with c:
        assert data(c, big) == TOO_BIG
        assert h.queue_ids() == [] and h.incoming() == []
        # the next transaction on the same session works
        assert c.cmd("MAIL FROM:<a@localhost>") == "250 2.1.0 Sender OK"
        assert c.cmd("RCPT TO:<c@localhost>") == "250 2.1.5 Recipient OK"
        m = QUEUED_RE.match(data(c, good))
        assert m
        assert c.cmd("NOOP") == "250 2.0.0 OK"
    [(env, msg)] = h.queued()
    assert env["id"] == m.group(1)
    assert env["rcpt"] == ["<c@localhost>"]
    assert strip_received(msg) == good
    assert h.incoming() == []


def test_size_limit_boundary_counts_message_octets(make_hatod):
    # message_size_max counts the message as sent (unstuffed), our header aside
    h = make_hatod(limits={"message_size_max": "1k"})
    exact = b"\r\n" + (b"z" * 100 + b"\r\n") * 9 + b"z" * 102 + b"\r\n"
    assert len(exact) == 1024
    with begin(h) as c:
        assert QUEUED_RE.match(data(c, exact))
        c.cmd("MAIL FROM:<a@localhost>")
        c.cmd("RCPT TO:<b@localhost>")
        assert data(c, b"z" + exact) == TOO_BIG
    [(_, msg)] = h.queued()
    assert strip_received(msg) == exact


def test_oversized_bdat_refused(make_hatod):
    h = make_hatod(limits={"message_size_max": "1k"})
    with begin(h) as c:
        c.send(b"BDAT 1000\r\n" + b"a" * 1000)
        assert c.reply() == "250 2.0.0 1000 octets received"
        c.send(b"BDAT 100 LAST\r\n" + b"b" * 100)
        assert c.reply() == TOO_BIG
        assert c.cmd("NOOP") == "250 2.0.0 OK"
    assert h.queue_ids() == [] and h.incoming() == []


# ---------------------------------------------------------------- recipients

def test_too_many_recipients(make_hatod):
    h = make_hatod(limits={"recipients_max": "3"})
    with begin(h, rcpts=("r1@localhost", "r2@localhost", "r3@localhost")) as c:
        assert c.cmd("RCPT TO:<r4@localhost>") == "452 4.5.3 Too many recipients"
        assert c.cmd("RCPT TO:<r5@localhost>") == "452 4.5.3 Too many recipients"
        body = b"Subject: three\r\n\r\nonly three\r\n"
        assert QUEUED_RE.match(data(c, body))
        # a new transaction has room again
        c.cmd("MAIL FROM:<a@localhost>")
        assert c.cmd("RCPT TO:<r4@localhost>") == "250 2.1.5 Recipient OK"
        c.cmd("RSET")
    [(env, msg)] = h.queued()
    assert env["rcpt"] == ["<r1@localhost>", "<r2@localhost>", "<r3@localhost>"]
    assert strip_received(msg) == body


# ---------------------------------------------------------------- lines

def test_command_line_max(make_hatod):
    h = make_hatod(limits={"command_line_max": "512"})
    with RawSMTP(h.host, h.port) as c:
        exact = b"NOOP " + b"x" * (512 - 7)  # 512 octets with CRLF
        assert c.cmd(exact) == "250 2.0.0 OK"
        assert c.cmd(exact + b"x") == "500 5.5.2 Line too long"
        assert c.cmd(b"NOOP " + b"y" * 5000) == "500 5.5.2 Line too long"
        assert c.cmd("EHLO still.example").startswith("250-")
        # an over-long MAIL is not half-executed
        assert c.cmd(b"MAIL FROM:<a@localhost> " + b"X" * 600) == "500 5.5.2 Line too long"
        assert c.cmd("RCPT TO:<b@localhost>") == "503 5.5.1 Bad sequence of commands"


def test_line_that_never_ends_memory_bounded(make_hatod):
    h = make_hatod(limits={"error_delay_ms": "0"})
    pid = h.proc.pid
    before = vmrss_kb(pid)
    peak = before
    with RawSMTP(h.host, h.port) as c:
        chunk = b"A" * 65536
        for i in range(128):  # 8 MiB without a LF
            c.send(chunk)
            if i % 8 == 0:
                peak = max(peak, vmrss_kb(pid))
        time.sleep(0.2)
        peak = max(peak, vmrss_kb(pid))
        c.send(b"\r\nNOOP\r\n")
        assert c.reply() == "500 5.5.2 Line too long"
        assert c.reply() == "250 2.0.0 OK"
        peak = max(peak, vmrss_kb(pid))
        assert c.cmd("QUIT") == "221 2.0.0 Bye"
    assert peak < 64 * 1024, (before, peak)
    assert peak - before < 16 * 1024, (before, peak)


def test_long_line_in_data_memory_bounded(make_hatod):
    h = make_hatod()
    pid = h.proc.pid
    peak = 0
    with begin(h) as c:
        assert c.cmd("DATA").startswith("354 ")
        c.send(b"Subject: long\r\n\r\n")
        for i in range(64):  # one 4 MiB line
            c.send(b"B" * 65536)
            if i % 8 == 0:
                peak = max(peak, vmrss_kb(pid))
        c.send(b"\r\n.\r\n")
        assert c.reply() == "500 5.5.2 Message line too long"
        peak = max(peak, vmrss_kb(pid))
        assert c.cmd("NOOP") == "250 2.0.0 OK"
    assert peak < 64 * 1024, peak
    assert h.queue_ids() == [] and h.incoming() == []


def test_text_line_max_in_data(make_hatod):
    h = make_hatod()
    ok_line = b"o" * 998 + b"\r\n"  # 1000 octets with CRLF: the RFC limit
    with begin(h) as c:
        assert QUEUED_RE.match(data(c, b"Subject: ok\r\n\r\n" + ok_line))
        c.cmd("MAIL FROM:<a@localhost>")
        c.cmd("RCPT TO:<b@localhost>")
        assert data(c, b"Subject: long\r\n\r\n" + b"l" * 999 + b"\r\nmore\r\n") == \
            "500 5.5.2 Message line too long"
        assert c.cmd("NOOP") == "250 2.0.0 OK"
    [(_, msg)] = h.queued()
    assert strip_received(msg) == b"Subject: ok\r\n\r\n" + ok_line
    assert h.incoming() == []


def test_text_line_max_configured(make_hatod):
    h = make_hatod(limits={"text_line_max": "2000"})
    line = b"w" * 1998 + b"\r\n"
    with begin(h) as c:
        assert QUEUED_RE.match(data(c, b"\r\n" + line))
        c.cmd("MAIL FROM:<a@localhost>")
        c.cmd("RCPT TO:<b@localhost>")
        assert data(c, b"\r\nw" + line) == "500 5.5.2 Message line too long"
    [(_, msg)] = h.queued()
    assert strip_received(msg) == b"\r\n" + line


# ---------------------------------------------------------------- loops

def received(n):
    return b"".join(b"Received: from hop%d.example by hop%d.example; "
                    b"Mon, 1 Jan 2024 00:00:00 +0000\r\n" % (i, i + 1) for i in range(n))


def test_received_max(make_hatod):
    h = make_hatod(limits={"received_max": "3"})
    ok = received(3) + b"Subject: 3 hops\r\n\r\nReceived: in the body does not count\r\n"
    with begin(h) as c:
        assert QUEUED_RE.match(data(c, ok))
        c.cmd("MAIL FROM:<a@localhost>")
        c.cmd("RCPT TO:<b@localhost>")
        assert data(c, received(4) + b"Subject: loop\r\n\r\nloop\r\n") == \
            "554 5.4.6 Too many Received headers, mail loop suspected"
        assert c.cmd("NOOP") == "250 2.0.0 OK"
    [(_, msg)] = h.queued()
    assert strip_received(msg) == ok
    assert h.incoming() == []


def test_received_max_default_is_100(hatod):
    with begin(hatod) as c:
        assert QUEUED_RE.match(data(c, received(100) + b"\r\nok\r\n"))
        c.cmd("MAIL FROM:<a@localhost>")
        c.cmd("RCPT TO:<b@localhost>")
        assert data(c, received(101) + b"\r\nloop\r\n") == \
            "554 5.4.6 Too many Received headers, mail loop suspected"
    assert len(hatod.queue_ids()) == 1


# ---------------------------------------------------------------- errors

def test_error_limits_delay_then_hang_up(make_hatod):
    h = make_hatod(limits={"errors_soft": "1", "errors_hard": "3", "error_delay_ms": "600"})
    with RawSMTP(h.host, h.port) as c:
        t0 = time.monotonic()
        assert c.cmd("BOGUS 1") == "500 5.5.1 Command unrecognized"
        t1 = time.monotonic()
        assert c.cmd("BOGUS 2") == "500 5.5.1 Command unrecognized"
        t2 = time.monotonic()
        # over errors_soft: the next command is read only after the delay
        assert c.cmd("BOGUS 3") == "500 5.5.1 Command unrecognized"
        t3 = time.monotonic()
        assert c.reply() == "421 4.7.0 Too many errors, closing connection"
        assert c.eof()
    # errors 1 and 2 answered at once; over errors_soft the delay applies
    assert t2 - t1 < 0.5, (t1 - t0, t2 - t1)
    assert t3 - t2 >= 0.59, t3 - t2


def test_good_commands_do_not_count_as_errors(make_hatod):
    h = make_hatod(limits={"errors_soft": "0", "errors_hard": "2", "error_delay_ms": "0"})
    with RawSMTP(h.host, h.port) as c:
        assert c.cmd("BOGUS") == "500 5.5.1 Command unrecognized"
        for _ in range(5):
            assert c.cmd("NOOP") == "250 2.0.0 OK"
        assert c.cmd("MAIL FROM:<a@localhost>") == "503 5.5.1 Bad sequence of commands"
        assert c.reply() == "421 4.7.0 Too many errors, closing connection"
        assert c.eof()


# ---------------------------------------------------------------- timeouts

def test_command_timeout(make_hatod):
    h = make_hatod(limits={"timeout_command": "1"})
    with RawSMTP(h.host, h.port) as c:
        assert c.cmd("EHLO t.example").startswith("250-")
        t0 = time.monotonic()
        assert c.reply() == "421 4.4.2 Timeout, closing connection"
        waited = time.monotonic() - t0
        assert c.eof()
    assert 0.5 <= waited < 3.0, waited  # its timer started before our t0


def test_command_timeout_in_transaction_discards_it(make_hatod):
    h = make_hatod(limits={"timeout_command": "1"})
    with begin(h) as c:
        assert c.reply() == "421 4.4.2 Timeout, closing connection"
        assert c.eof()
    assert h.queue_ids() == [] and h.incoming() == []


def test_data_timeout(make_hatod):
    h = make_hatod(limits={"timeout_data": "1"})
    with begin(h) as c:
        assert c.cmd("DATA").startswith("354 ")
        c.send(b"Subject: half\r\n\r\nhalf a message")
        t0 = time.monotonic()
        assert c.reply() == "421 4.4.2 Timeout, closing connection"
        waited = time.monotonic() - t0
        assert c.eof()
    assert 0.5 <= waited < 3.0, waited
    assert h.queue_ids() == [] and h.incoming() == []


def test_data_total_timeout(make_hatod):
    # octets keep coming (no per-block timeout), but the DATA phase as a
    # whole is over after timeout_data_total
    h = make_hatod(limits={"timeout_data": "5", "timeout_data_total": "2"})
    with begin(h) as c:
        assert c.cmd("DATA").startswith("354 ")
        t0 = time.monotonic()
        c.sock.settimeout(0.3)
        got = None
        while time.monotonic() - t0 < 6:
            try:
                c.send(b"trickle\r\n")
            except OSError:
                break
            try:
                got = c.reply()
                break
            except socket.timeout:
                continue
        waited = time.monotonic() - t0
        assert got == "421 4.4.2 Timeout, closing connection"
    assert 1.5 <= waited < 4.0, waited
    assert h.queue_ids() == [] and h.incoming() == []


def test_bdat_timeout(make_hatod):
    h = make_hatod(limits={"timeout_data": "1"})
    with begin(h) as c:
        c.send(b"BDAT 100 LAST\r\nonly a part")
        assert c.reply() == "421 4.4.2 Timeout, closing connection"
        assert c.eof()
    assert h.queue_ids() == [] and h.incoming() == []


# ---------------------------------------------------------------- sessions

def test_sessions_max(make_hatod):
    h = make_hatod(limits={"sessions_max": "2"})
    a = RawSMTP(h.host, h.port)
    b = RawSMTP(h.host, h.port)
    try:
        assert a.greeting == "220 mx.test.example ESMTP hato"
        assert b.greeting == "220 mx.test.example ESMTP hato"
        with RawSMTP(h.host, h.port) as c:
            assert c.greeting == "421 4.7.0 Too many connections, try again later"
            assert c.eof()
        assert a.cmd("QUIT") == "221 2.0.0 Bye"
        assert a.eof()
        time.sleep(0.1)
        with RawSMTP(h.host, h.port) as d:
            assert d.greeting == "220 mx.test.example ESMTP hato"
        assert b.cmd("NOOP") == "250 2.0.0 OK"
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("line", [b"GET / HTTP/1.1", b"POST /submit HTTP/1.0",
                                  b"CONNECT mx.example:25 HTTP/1.1", b"get / HTTP/1.1"])
def test_http_request_closes_without_reply(hatod, line):
    with RawSMTP(hatod.host, hatod.port) as c:
        assert c.greeting == "220 mx.test.example ESMTP hato"
        c.send(line + b"\r\nHost: localhost\r\n\r\n")
        assert c.eof(timeout=3)


def test_http_request_mid_transaction_closes(hatod):
    with begin(hatod) as c:
        c.send(b"GET / HTTP/1.1\r\n")
        assert c.eof(timeout=3)
    assert hatod.queue_ids() == [] and hatod.incoming() == []


@pytest.mark.parametrize("how", ["data", "bdat"])
def test_http_request_pipelined_after_a_message(make_hatod, how):
    """GET in the same packet as the message's end: the message is queued
    and answered, then the connection closes, and the session is freed
    once (it was freed under commit_done, which then went on using it)."""
    h = make_hatod()
    body = b"Subject: t\r\n\r\nx\r\n"
    if how == "data":
        message = b"DATA\r\n" + body + b".\r\n"
    else:
        message = b"BDAT %d LAST\r\n" % len(body) + body
    with RawSMTP(h.host, h.port) as c:
        c.send(b"EHLO x\r\nMAIL FROM:<a@localhost>\r\nRCPT TO:<postmaster>\r\n" + message +
               b"GET / HTTP/1.0\r\n\r\n")
        data, deadline = c.buf, time.monotonic() + 10
        c.sock.settimeout(10)
        while time.monotonic() < deadline:
            try:
                chunk = c.sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break  # closed: what came before it is all there is
            data += chunk
    last = data.decode().split("\r\n")[-2]
    assert re.fullmatch(r"250 2\.0\.0 OK queued as [0-9A-F]{20}", last), data
    assert len(h.queue_ids()) == 1
    with RawSMTP(h.host, h.port) as c:  # and hatod goes on
        assert c.cmd("NOOP") == "250 2.0.0 OK"


def test_addresses_cannot_forge_log_fields(make_hatod):
    """A quoted local part may hold spaces, quotes and key=value text: in
    the log it stays one value (escaped), never extra fields."""
    h = make_hatod()
    forged = '"y x=1 event=queued"'
    with begin(h, rcpts=()) as c:
        assert c.cmd("RCPT TO:<%s@localhost>" % forged).startswith("250 ")
        assert c.cmd("RCPT TO:<%s@remote.example>" % forged).startswith("554 ")
    with RawSMTP(h.host, h.port) as c:
        c.cmd("EHLO x")
        assert c.cmd("MAIL FROM:<%s@localhost>" % forged).startswith("250 ")
        assert c.cmd("RCPT TO:<b@localhost>").startswith("250 ")
        assert c.cmd("DATA").startswith("354 ")
        assert c.cmd("Subject: x\r\n\r\nx\r\n.").startswith("250 ")
    h.wait_log("event=queued")
    log = h.logs()
    for line in log.splitlines():  # quoted values may hold spaces; no field is forged
        assert not any(w.startswith("x=1") for w in shlex.split(line)), line
    assert 'from=<\\x22y\\x20x=1\\x20event=queued\\x22@localhost> size=' in log


def test_received_max_with_bdat(make_hatod):
    h = make_hatod(limits={"received_max": "2"})
    msg = received(3) + b"\r\nloop\r\n"
    with begin(h) as c:
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        assert c.reply() == "554 5.4.6 Too many Received headers, mail loop suspected"
        assert c.cmd("NOOP") == "250 2.0.0 OK"
    assert h.queue_ids() == [] and h.incoming() == []


def test_client_that_never_reads_replies_memory_bounded(make_hatod):
    h = make_hatod(limits={"timeout_command": "5"})
    pid = h.proc.pid
    before = vmrss_kb(pid)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # we never read anyway
    s.settimeout(5)
    s.connect((h.host, h.port))
    chunk = b"NOOP\r\n" * 10000
    sent = 0
    s.settimeout(1.5)
    t0 = time.monotonic()
    try:
        while sent < 24 * 1000 * 1000 and time.monotonic() - t0 < 6:
            s.sendall(chunk)
            sent += len(chunk)
    except socket.timeout:
        pass  # hatod stopped reading: what we want
    finally:
        time.sleep(0.3)
        after = vmrss_kb(pid)
        s.close()
    assert after - before < 32 * 1024, (before, after, sent)
