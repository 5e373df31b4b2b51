"""Real clients against the real hatod: smtplib (one and many recipients,
dot-leading lines, 8BITMIME, SMTPUTF8), a hand-pipelined transaction, BDAT
(CHUNKING) over a raw socket, swaks and curl, and `hato queue` listing what
they left in the spool.

Every test checks the exact reply (code and enhanced code) and/or the exact
bytes hatod committed to queue/ (its own Received: header aside).
"""
import os
import re
import shutil
import smtplib
import subprocess
import time

import pytest

from conftest import HATO, RawSMTP, strip_received, wait_ready

QUEUED_RE = re.compile(r"^250 2\.0\.0 OK queued as ([0-9A-F]{20})$")


def ehlo_keywords(reply):
    """The extension keywords of a multi-line EHLO reply (first line aside)."""
    return [line[4:].split(" ")[0] for line in reply.split("\n")[1:]]


def read_env_raw(h, qid):
    """The envelope as bytes (so non-ASCII addresses are compared raw)."""
    return h.envelope_text(qid).encode()


def test_smtplib_many_recipients(hatod):
    body = b"Subject: many\r\nTo: a@localhost, b@localhost\r\n\r\nhello all\r\n"
    rcpts = ["a@localhost", "b@test.example", "C@LOCALHOST", "postmaster@localhost"]
    with smtplib.SMTP(hatod.host, hatod.port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.sendmail("sender@localhost", rcpts, body) == {}
    [(env, msg)] = hatod.queued()
    assert env["sender"] == "<sender@localhost>"
    # where mail goes (the mailbox, lower case), and the RCPT as written
    assert env["rcpt"] == ["<a@localhost>", "<b@test.example>", "<c@localhost>",
                           "<postmaster@localhost>"]
    assert env["orig"] == ["<a@localhost>", "<b@test.example>", "<C@LOCALHOST>",
                           "<postmaster@localhost>"]
    assert env["body"] == "unspecified"
    assert env["smtputf8"] == "no"
    assert env["size"] == str(len(body))
    assert strip_received(msg) == body
    # several recipients: no "for <addr>" clause in our trace header
    assert b"\tfor <" not in msg[:len(msg) - len(body)]


def test_smtplib_one_recipient_reply_and_envelope(hatod):
    body = b"Subject: one\r\n\r\nx\r\n"
    with smtplib.SMTP(hatod.host, hatod.port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.mail("a@localhost") == (250, b"2.1.0 Sender OK")
        assert s.rcpt("b@localhost") == (250, b"2.1.5 Recipient OK")
        code, text = s.data(body)
    assert code == 250
    m = re.fullmatch(rb"2\.0\.0 OK queued as ([0-9A-F]{20})", text)
    assert m, text
    qid = m.group(1).decode()
    assert hatod.queue_ids() == [qid]
    [(env, msg)] = hatod.queued()
    assert env["id"] == qid
    assert env["rcpt"] == ["<b@localhost>"]
    assert env["helo"] == "client.example"
    assert env["client"] == "127.0.0.1"
    assert msg.startswith(b"Received: from client.example (unknown [127.0.0.1])\r\n"
                          b"\tby mx.test.example (hato) with ESMTP id " + qid.encode() +
                          b"\r\n\tfor <b@localhost>;\r\n\t")
    assert strip_received(msg) == body


def test_smtplib_duplicate_recipient_stored_once(hatod):
    with smtplib.SMTP(hatod.host, hatod.port, timeout=10) as s:
        assert s.sendmail("a@localhost", ["b@localhost", "b@localhost"], b"\r\nx\r\n") == {}
    [(env, _)] = hatod.queued()
    assert env["rcpt"] == ["<b@localhost>"]


def test_smtplib_dot_leading_lines_stored_unstuffed(hatod):
    # smtplib doubles every leading dot on the wire; hatod removes one again.
    body = (b"Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\n...\r\n"
            b"middle . dot\r\n. space\r\nend\r\n")
    with smtplib.SMTP(hatod.host, hatod.port, timeout=10) as s:
        assert s.sendmail("a@localhost", ["b@localhost"], body) == {}
    [(env, msg)] = hatod.queued()
    assert strip_received(msg) == body
    assert env["size"] == str(len(body))


def test_raw_dot_stuffing_on_the_wire(hatod):
    # The same thing without smtplib: what we stuff by hand comes back unstuffed.
    with RawSMTP(hatod.host, hatod.port) as c:
        assert c.cmd("EHLO c.example").startswith("250-mx.test.example Hello c.example")
        assert c.cmd("MAIL FROM:<a@localhost>") == "250 2.1.0 Sender OK"
        assert c.cmd("RCPT TO:<b@localhost>") == "250 2.1.5 Recipient OK"
        assert c.cmd("DATA") == "354 End data with <CR><LF>.<CR><LF>"
        c.send(b"..\r\n..x\r\n...y\r\nz\r\n.\r\n")
        assert QUEUED_RE.match(c.reply())
    [(_, msg)] = hatod.queued()
    assert strip_received(msg) == b".\r\n.x\r\n..y\r\nz\r\n"


def test_smtplib_8bitmime_body(hatod):
    body = ("Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            "Grüße aus Köln — ½ € 日本語\r\n").encode("utf-8") + b"\xff\xfe raw\r\n"
    with smtplib.SMTP(hatod.host, hatod.port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.has_extn("8bitmime")
        assert s.sendmail("a@localhost", ["b@localhost"], body,
                          mail_options=["BODY=8BITMIME"]) == {}
    [(env, msg)] = hatod.queued()
    assert env["body"] == "8bitmime"
    assert strip_received(msg) == body


def test_body_7bit_parameter_recorded(hatod):
    with smtplib.SMTP(hatod.host, hatod.port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.sendmail("a@localhost", ["b@localhost"], b"\r\nplain\r\n",
                          mail_options=["BODY=7BIT"]) == {}
    [(env, _)] = hatod.queued()
    assert env["body"] == "7bit"


def test_smtplib_smtputf8_addresses(hatod):
    body = "Subject: utf8\r\nFrom: jöran@localhost\r\n\r\nhej 用户\r\n".encode("utf-8")
    with smtplib.SMTP(hatod.host, hatod.port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.has_extn("smtputf8")
        assert s.sendmail("jöran@localhost", ["用户@test.example", "ö@localhost"], body,
                          mail_options=["SMTPUTF8", "BODY=8BITMIME"]) == {}
    [qid] = hatod.queue_ids()
    env = read_env_raw(hatod, qid)
    assert "sender: <jöran@localhost>\n".encode() in env
    assert "addr=<用户@test.example>\n".encode() in env
    assert "addr=<ö@localhost>\n".encode() in env
    assert b"smtputf8: yes\n" in env
    [(_, msg)] = hatod.queued()
    assert strip_received(msg) == body
    assert b" with UTF8SMTP id " + qid.encode() in msg


def test_non_ascii_address_without_smtputf8_is_553(make_hatod):
    h = make_hatod(limits={"error_delay_ms": "0"})
    with RawSMTP(h.host, h.port) as c:
        c.cmd("EHLO c.example")
        assert c.cmd("MAIL FROM:<jöran@localhost>") == \
            "553 5.6.7 Non-ASCII address requires SMTPUTF8"
        assert c.cmd("MAIL FROM:<a@localhost>") == "250 2.1.0 Sender OK"
        assert c.cmd("RCPT TO:<用户@test.example>") == \
            "553 5.6.7 Non-ASCII address requires SMTPUTF8"
        assert c.cmd("RCPT TO:<a@bücher.example>") == \
            "553 5.6.7 Non-ASCII address requires SMTPUTF8"
        # the transaction goes on with an ASCII recipient
        assert c.cmd("RCPT TO:<b@localhost>") == "250 2.1.5 Recipient OK"
        assert c.cmd("DATA").startswith("354 ")
        c.send(b"\r\nx\r\n.\r\n")
        assert QUEUED_RE.match(c.reply())
    [(env, _)] = h.queued()
    assert env["rcpt"] == ["<b@localhost>"]


def test_pipelined_transaction(hatod):
    body = b"Subject: pipe\r\n\r\npipelined body\r\n"
    with RawSMTP(hatod.host, hatod.port) as c:
        ehlo = c.cmd("EHLO pipe.example")
        assert "PIPELINING" in ehlo_keywords(ehlo)
        c.send(b"MAIL FROM:<p@localhost>\r\nRCPT TO:<r1@localhost>\r\n"
               b"RCPT TO:<r2@test.example>\r\nDATA\r\n")
        assert c.replies(4) == ["250 2.1.0 Sender OK", "250 2.1.5 Recipient OK",
                                "250 2.1.5 Recipient OK",
                                "354 End data with <CR><LF>.<CR><LF>"]
        c.send(body + b".\r\n")
        m = QUEUED_RE.match(c.reply())
        assert m
        assert c.cmd("QUIT") == "221 2.0.0 Bye"
        assert c.eof()
    [(env, msg)] = hatod.queued()
    assert env["id"] == m.group(1)
    assert env["sender"] == "<p@localhost>"
    assert env["rcpt"] == ["<r1@localhost>", "<r2@test.example>"]
    assert strip_received(msg) == body


def test_pipelined_whole_session_in_one_send(hatod):
    # Everything, body and QUIT included, in one write: replies in order.
    with RawSMTP(hatod.host, hatod.port) as c:
        c.send(b"EHLO p.example\r\nMAIL FROM:<p@localhost>\r\n"
               b"RCPT TO:<nobody@other.org>\r\nRCPT TO:<r@localhost>\r\nDATA\r\n"
               b"Subject: x\r\n\r\nbody\r\n.\r\n"
               b"MAIL FROM:<q@localhost>\r\nRCPT TO:<s@localhost>\r\nDATA\r\n"
               b"\r\nsecond\r\n.\r\nQUIT\r\n")
        r = c.replies(10)
        assert r[0].startswith("250-mx.test.example Hello p.example [127.0.0.1]\n")
        assert r[1:5] == ["250 2.1.0 Sender OK", "554 5.7.1 Relay access denied",
                          "250 2.1.5 Recipient OK", "354 End data with <CR><LF>.<CR><LF>"]
        assert QUEUED_RE.match(r[5])
        assert r[6:8] == ["250 2.1.0 Sender OK", "250 2.1.5 Recipient OK"]
        assert r[8].startswith("354 ")
        assert QUEUED_RE.match(r[9])
        assert c.reply() == "221 2.0.0 Bye"
        assert c.eof()
    q = hatod.queued()
    assert [(e["sender"], e["rcpt"]) for e, _ in q] == [
        ("<p@localhost>", ["<r@localhost>"]), ("<q@localhost>", ["<s@localhost>"])]
    assert [strip_received(m) for _, m in q] == [b"Subject: x\r\n\r\nbody\r\n",
                                                  b"\r\nsecond\r\n"]


def test_bdat_chunks(hatod):
    chunks = [b"Subject: chunky\r\n\r\n", b".leading dot is not stuffed in BDAT\r\n",
              b"line\r\n.\r\nafter a lone dot\r\n", (b"x" * 998 + b"\r\n") * 71]
    with RawSMTP(hatod.host, hatod.port) as c:
        assert "CHUNKING" in ehlo_keywords(c.cmd("EHLO b.example"))
        assert c.cmd("MAIL FROM:<a@localhost>") == "250 2.1.0 Sender OK"
        assert c.cmd("RCPT TO:<b@localhost>") == "250 2.1.5 Recipient OK"
        total = 0
        for ch in chunks:
            c.send(b"BDAT %d\r\n" % len(ch) + ch)
            total += len(ch)
            assert c.reply() == "250 2.0.0 %d octets received" % total
        c.send(b"BDAT 0 LAST\r\n")
        m = QUEUED_RE.match(c.reply())
        assert m
        assert c.cmd("NOOP") == "250 2.0.0 OK"
    [(env, msg)] = hatod.queued()
    assert env["id"] == m.group(1)
    assert strip_received(msg) == b"".join(chunks)
    assert env["size"] == str(total)
    assert hatod.incoming() == []


def test_bdat_pipelined_with_last(hatod):
    # Chunks and commands in one write, the last chunk carrying data and LAST.
    with RawSMTP(hatod.host, hatod.port) as c:
        c.cmd("EHLO b.example")
        c.send(b"MAIL FROM:<a@localhost>\r\nRCPT TO:<b@localhost>\r\n"
               b"BDAT 5\r\nab\r\nc" b"BDAT 5 LAST\r\nd\r\n\r\n" b"NOOP\r\n")
        r = c.replies(5)
        assert r[:3] == ["250 2.1.0 Sender OK", "250 2.1.5 Recipient OK",
                         "250 2.0.0 5 octets received"]
        assert QUEUED_RE.match(r[3])
        assert r[4] == "250 2.0.0 OK"
    [(_, msg)] = hatod.queued()
    assert strip_received(msg) == b"ab\r\ncd\r\n\r\n"


def test_bdat_without_transaction_is_refused_and_octets_skipped(hatod):
    with RawSMTP(hatod.host, hatod.port) as c:
        c.cmd("EHLO b.example")
        # no MAIL: 503, and the 10 octets (which look like a command) are eaten
        c.send(b"BDAT 10\r\nQUIT\r\nXX\r\n")
        assert c.reply() == "503 5.5.1 Bad sequence of commands"
        assert c.cmd("MAIL FROM:<a@localhost>") == "250 2.1.0 Sender OK"
        # no RCPT: 554 5.5.1, octets eaten as well
        c.send(b"BDAT 6 LAST\r\nNOOP\r\n")
        assert c.reply() == "554 5.5.1 No valid recipients"
        assert c.cmd("NOOP") == "250 2.0.0 OK"
    assert hatod.queue_ids() == []
    assert hatod.incoming() == []


def test_data_after_bdat_is_bad_sequence(hatod):
    with RawSMTP(hatod.host, hatod.port) as c:
        c.cmd("EHLO b.example")
        c.cmd("MAIL FROM:<a@localhost>")
        c.cmd("RCPT TO:<b@localhost>")
        c.send(b"BDAT 3\r\nabc")
        assert c.reply() == "250 2.0.0 3 octets received"
        assert c.cmd("DATA") == "503 5.5.1 Bad sequence of commands"
        assert c.cmd("RSET") == "250 2.0.0 Reset OK"
        assert c.cmd("NOOP") == "250 2.0.0 OK"
    assert hatod.queue_ids() == []
    assert hatod.incoming() == []


def _split_message(msg):
    head, sep, body = strip_received(msg).partition(b"\r\n\r\n")
    assert sep
    return head, body


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
def test_swaks_body(hatod):
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1:%d" % hatod.port, "--to", "x@localhost",
         "--from", "y@localhost", "--helo", "swaks.example",
         "--header", "Subject: swaks e2e", "--body", "line one\n.dot line\nline3"],
        capture_output=True, timeout=30)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out + r.stderr.decode()
    m = re.search(r"<-  250 2\.0\.0 OK queued as ([0-9A-F]{20})", out)
    assert m, out
    assert "<-  221 2.0.0 Bye" in out
    [(env, msg)] = hatod.queued()
    assert env["id"] == m.group(1)
    assert env["sender"] == "<y@localhost>"
    assert env["rcpt"] == ["<x@localhost>"]
    assert env["helo"] == "swaks.example"
    head, body = _split_message(msg)
    assert b"\r\nSubject: swaks e2e\r\n" in b"\r\n" + head + b"\r\n"
    assert b"\r\nTo: x@localhost\r\n" in b"\r\n" + head + b"\r\n"
    # swaks stuffs ".dot line" as "..dot line"; stored with one dot again.
    # (swaks ends its body with blank lines of its own.)
    assert body.rstrip(b"\r\n") == b"line one\r\n.dot line\r\nline3"


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
def test_swaks_data_exact_bytes(hatod, testdir):
    message = (b"From: y@localhost\r\nTo: x@localhost\r\nSubject: exact\r\n\r\n"
               b"first\r\n.\r\n..two dots\r\nlast\r\n")
    path = os.path.join(testdir, "swaks.eml")
    with open(path, "wb") as f:
        # swaks ends DATA with CRLF "." CRLF after the file's last line
        f.write(message[:-2])
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1:%d" % hatod.port, "--to", "x@localhost",
         "--from", "y@localhost", "--data", path],
        capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    [(_, msg)] = hatod.queued()
    assert strip_received(msg) == message


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_upload(hatod, testdir):
    message = (b"From: c@localhost\r\nTo: d@localhost\r\nSubject: curl e2e\r\n\r\n"
               b"body line\r\n.leading dot\r\n.\r\nend\r\n")
    path = os.path.join(testdir, "curl.eml")
    with open(path, "wb") as f:
        f.write(message)
    r = subprocess.run(
        ["curl", "-sS", "-v", "--max-time", "20", "smtp://127.0.0.1:%d/curl.example" % hatod.port,
         "--mail-from", "c@localhost", "--mail-rcpt", "d@localhost",
         "--mail-rcpt", "e@test.example", "--upload-file", path],
        capture_output=True, timeout=30)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, err
    assert "< 250 2.1.0 Sender OK" in err
    m = re.search(r"< 250 2\.0\.0 OK queued as ([0-9A-F]{20})", err)
    assert m, err
    [(env, msg)] = hatod.queued()
    assert env["id"] == m.group(1)
    assert env["sender"] == "<c@localhost>"
    assert env["rcpt"] == ["<d@localhost>", "<e@test.example>"]
    assert env["helo"] == "curl.example"
    assert strip_received(msg) == message


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_relay_denied(hatod, testdir):
    path = os.path.join(testdir, "curl.eml")
    with open(path, "wb") as f:
        f.write(b"Subject: no\r\n\r\nno\r\n")
    r = subprocess.run(
        ["curl", "-sS", "-v", "--max-time", "20", "smtp://127.0.0.1:%d" % hatod.port,
         "--mail-from", "c@localhost", "--mail-rcpt", "someone@other.org",
         "--upload-file", path],
        capture_output=True, timeout=30)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode != 0
    assert "< 554 5.7.1 Relay access denied" in err
    assert hatod.queue_ids() == []


def test_hato_queue_lists_messages(hatod):
    with smtplib.SMTP(hatod.host, hatod.port, timeout=10) as s:
        s.sendmail("alice@localhost", ["bob@localhost", "carol@test.example"],
                   b"Subject: 1\r\n\r\none\r\n")
        s.sendmail("<>", ["postmaster"], b"Subject: 2\r\n\r\ntwo\r\n")
    ids = hatod.queue_ids()
    assert len(ids) == 2
    sizes = [len(msg) for _, msg in hatod.queued()]
    r = subprocess.run([HATO, "-c", hatod.conf_path, "queue"], capture_output=True,
                       timeout=10)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["ID", "AGE", "SIZE", "SENDER", "/", "RECIPIENTS"]
    assert lines[1].split() == ["STATE", "TRIES", "NEXT", "RECIPIENT"]
    assert re.fullmatch(r"%s +\d+s +%d <alice@localhost>" % (ids[0], sizes[0]), lines[2])
    # held (conftest): every recipient pending, never tried, due now
    assert lines[3].split() == ["pending", "0", "now", "<bob@localhost>"]
    assert lines[4].split() == ["pending", "0", "now", "<carol@test.example>"]
    assert re.fullmatch(r"%s +\d+s +%d <>" % (ids[1], sizes[1]), lines[5])
    assert lines[6].split() == ["pending", "0", "now", "<postmaster@localhost>"]
    assert lines[7].split() == ["orig:", "<postmaster>"]
    assert lines[8] == "-- 2 messages in %s/queue" % hatod.state_dir
    assert len(lines) == 9


def test_hato_queue_empty(hatod):
    wait_ready(hatod)
    r = subprocess.run([HATO, "-c", hatod.conf_path, "queue"], capture_output=True,
                       timeout=10)
    assert r.returncode == 0
    assert r.stdout.decode().splitlines()[-1] == "-- 0 messages in %s/queue" % hatod.state_dir


def _half_close_session(h, script):
    """Send the whole script, shut our write side down (as `nc -N` or a
    script piping into a socket does), and read every reply until EOF."""
    import socket
    s = socket.create_connection((h.host, h.port), timeout=10)
    try:
        s.sendall(script)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            data = s.recv(65536)
            if not data:
                return out.decode()
            out += data
    finally:
        s.close()


def test_half_closed_client_without_message_gets_every_reply(hatod):
    out = _half_close_session(hatod, b"EHLO half.example\r\nNOOP\r\nQUIT\r\n")
    assert re.search(r"\r\n250 [A-Z0-9 ]+\r\n250 2\.0\.0 OK\r\n221 2\.0\.0 Bye\r\n\Z", out), out


def test_half_closed_client_gets_queued_reply_and_bye(hatod):
    # (hatod used to drop such a client while the commit was in flight: the
    # message was queued but the client never saw 250 and sent it again)
    out = _half_close_session(
        hatod, b"EHLO half.example\r\nMAIL FROM:<a@localhost>\r\nRCPT TO:<b@localhost>\r\n"
               b"DATA\r\nSubject: half\r\n\r\nhalf-closed\r\n.\r\nQUIT\r\n")
    [qid] = hatod.queue_ids()  # the message itself is kept either way
    assert out.endswith("354 End data with <CR><LF>.<CR><LF>\r\n"
                        "250 2.0.0 OK queued as %s\r\n221 2.0.0 Bye\r\n" % qid), out


def test_message_trickled_byte_by_byte(hatod):
    # every split point of "\r\n.\r\n" and of stuffed dots across TCP segments
    import socket
    body = b"Subject: slow\r\n\r\n.a\r\n..\r\nb.\r\n.\r\nc\r\n"
    wire = b"Subject: slow\r\n\r\n..a\r\n...\r\nb.\r\n..\r\nc\r\n.\r\n"
    with RawSMTP(hatod.host, hatod.port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.cmd("EHLO slow.example")
        c.cmd("MAIL FROM:<a@localhost>")
        c.cmd("RCPT TO:<b@localhost>")
        assert c.cmd("DATA").startswith("354 ")
        for i in range(len(wire)):
            c.send(wire[i:i + 1])
            if i % 8 == 0:
                time.sleep(0.002)
        assert QUEUED_RE.match(c.reply())
    [(_, msg)] = hatod.queued()
    assert strip_received(msg) == body


def test_ehlo_resets_the_transaction(hatod):
    with RawSMTP(hatod.host, hatod.port) as c:
        c.cmd("EHLO one.example")
        assert c.cmd("MAIL FROM:<a@localhost>") == "250 2.1.0 Sender OK"
        assert c.cmd("RCPT TO:<b@localhost>") == "250 2.1.5 Recipient OK"
        assert c.cmd("EHLO two.example").startswith("250-mx.test.example Hello two.example ")
        assert c.cmd("RCPT TO:<b@localhost>") == "503 5.5.1 Bad sequence of commands"
        assert c.cmd("DATA") == "503 5.5.1 Bad sequence of commands"
        assert c.cmd("MAIL FROM:<c@localhost>") == "250 2.1.0 Sender OK"
        assert c.cmd("RCPT TO:<d@localhost>") == "250 2.1.5 Recipient OK"
        assert c.cmd("DATA").startswith("354 ")
        c.send(b"\r\nafter\r\n.\r\n")
        assert QUEUED_RE.match(c.reply())
    [(env, _)] = hatod.queued()
    assert (env["sender"], env["rcpt"], env["helo"]) == \
        ("<c@localhost>", ["<d@localhost>"], "two.example")


def test_big_message_streamed_with_bounded_memory(hatod):
    # 24 MiB by DATA and 24 MiB by BDAT: stored exactly, hatod stays small
    import hashlib
    pid = hatod.proc.pid

    def rss():
        with open("/proc/%d/status" % pid) as f:
            return int([l for l in f if l.startswith("VmRSS:")][0].split()[1])

    line = b"0123456789" * 9 + b"abcdef\r\n"  # 98 octets
    block = line * 668  # ~64 KiB
    n = 384
    expected = b"Subject: big\r\n\r\n" + block * n
    peak = 0
    with RawSMTP(hatod.host, hatod.port, timeout=30) as c:
        c.cmd("EHLO big.example")
        c.cmd("MAIL FROM:<a@localhost> SIZE=%d" % len(expected))
        c.cmd("RCPT TO:<b@localhost>")
        assert c.cmd("DATA").startswith("354 ")
        c.send(b"Subject: big\r\n\r\n")
        for i in range(n):
            c.send(block)
            if i % 32 == 0:
                peak = max(peak, rss())
        c.send(b".\r\n")
        assert QUEUED_RE.match(c.reply())
        c.cmd("MAIL FROM:<a@localhost>")
        c.cmd("RCPT TO:<b@localhost>")
        c.send(b"BDAT %d\r\nSubject: big\r\n\r\n" % len(b"Subject: big\r\n\r\n"))
        c.reply()
        for i in range(n):
            c.send(b"BDAT %d%s\r\n" % (len(block), b" LAST" if i == n - 1 else b"") + block)
            if i % 32 == 0:
                peak = max(peak, rss())
        replies = c.replies(n)
        assert all(r.startswith("250 2.0.0 ") for r in replies[:-1])
        assert QUEUED_RE.match(replies[-1])
    assert peak < 64 * 1024, peak
    q = hatod.queued()
    assert len(q) == 2
    want = hashlib.sha256(expected).hexdigest()
    for env, msg in q:
        assert env["size"] == str(len(expected))
        assert hashlib.sha256(strip_received(msg)).hexdigest() == want


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
def test_swaks_pipeline(hatod):
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1:%d" % hatod.port, "--pipeline",
         "--to", "x@localhost,y@test.example", "--from", "z@localhost",
         "--header", "Subject: swaks pipelined", "--body", "pipelined body"],
        capture_output=True, timeout=30)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out + r.stderr.decode()
    m = re.search(r"<\*\* ?250 2\.0\.0 OK queued as ([0-9A-F]{20})|"
                  r"<-  250 2\.0\.0 OK queued as ([0-9A-F]{20})", out)
    assert m, out
    [(env, msg)] = hatod.queued()
    assert env["id"] in (m.group(1), m.group(2))
    assert env["rcpt"] == ["<x@localhost>", "<y@test.example>"]
    _, body = _split_message(msg)
    assert body.rstrip(b"\r\n") == b"pipelined body"


def test_smtplib_send_message_bcc(hatod):
    from email.message import EmailMessage
    m = EmailMessage()
    m["From"] = "a@localhost"
    m["To"] = "b@localhost"
    m["Cc"] = "c@test.example"
    m["Bcc"] = "hidden@localhost"
    m["Subject"] = "bcc"
    m.set_content("the body\n")
    with smtplib.SMTP(hatod.host, hatod.port, timeout=10) as s:
        assert s.send_message(m) == {}
    [(env, msg)] = hatod.queued()
    assert sorted(env["rcpt"]) == ["<b@localhost>", "<c@test.example>", "<hidden@localhost>"]
    stored = strip_received(msg)
    assert b"hidden" not in stored
    assert stored.endswith(b"\r\n\r\nthe body\r\n")


def test_smtplib_helo_plain_smtp(hatod):
    body = b"Subject: helo\r\n\r\nplain SMTP\r\n"
    with smtplib.SMTP(hatod.host, hatod.port, timeout=10) as s:
        code, text = s.helo("old.example")
        assert (code, text) == (250, b"mx.test.example Hello old.example [127.0.0.1]")
        assert not s.does_esmtp
        assert s.sendmail("a@localhost", ["b@localhost"], body) == {}
    [(env, msg)] = hatod.queued()
    assert env["helo"] == "old.example"
    assert b" (hato) with SMTP id " in msg
    assert strip_received(msg) == body
    with RawSMTP(hatod.host, hatod.port) as c:
        c.cmd("HELO old.example")
        assert c.cmd("MAIL FROM:<a@localhost> BODY=8BITMIME") == \
            "555 5.5.4 Parameters need EHLO"
        assert c.cmd("MAIL FROM:<a@localhost>") == "250 2.1.0 Sender OK"


def test_half_closed_client_without_quit_gets_queued_reply(hatod):
    out = _half_close_session(
        hatod, b"EHLO half.example\r\nMAIL FROM:<a@localhost>\r\nRCPT TO:<b@localhost>\r\n"
               b"DATA\r\nSubject: half\r\n\r\nno quit\r\n.\r\nNOOP\r\n")
    [qid] = hatod.queue_ids()
    assert out.endswith("354 End data with <CR><LF>.<CR><LF>\r\n"
                        "250 2.0.0 OK queued as %s\r\n250 2.0.0 OK\r\n" % qid), out
    [(_, msg)] = hatod.queued()
    assert strip_received(msg) == b"Subject: half\r\n\r\nno quit\r\n"


def test_half_closed_client_bdat_gets_queued_reply(hatod):
    out = _half_close_session(
        hatod, b"EHLO half.example\r\nMAIL FROM:<a@localhost>\r\nRCPT TO:<b@localhost>\r\n"
               b"BDAT 4 LAST\r\nab\r\n")
    [qid] = hatod.queue_ids()
    assert out.endswith("250 2.1.5 Recipient OK\r\n250 2.0.0 OK queued as %s\r\n" % qid), out
