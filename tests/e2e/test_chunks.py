"""BDAT chunks and DATA streams that arrive in pieces, with pauses between
writes so each piece is its own read on the server."""
import socket
import time

import pytest

from conftest import RawSMTP, strip_received


def test_bdat_chunk_in_slow_pieces(hatod):
    body = b"Subject: slow\r\n\r\nchunk arriving in pieces\r\n"
    with RawSMTP(hatod.host, hatod.port) as c:
        c.cmd("EHLO slow.example")
        assert c.cmd("MAIL FROM:<a@localhost>").startswith("250")
        assert c.cmd("RCPT TO:<b@localhost>").startswith("250")
        c.sock.sendall(b"BDAT %d LAST\r\n" % len(body))
        for i in range(0, len(body), 7):
            time.sleep(0.05)
            c.sock.sendall(body[i:i + 7])
        reply = c.reply()
        assert reply.startswith("250 2.0.0 OK queued as"), reply
        # the server is still responsive: it did not spin on an empty buffer
        assert c.cmd("NOOP") == "250 2.0.0 OK"
    [(env, msg)] = hatod.queued()
    assert strip_received(msg) == body


def test_refused_bdat_in_slow_pieces(hatod):
    """A refused chunk is read and dropped even when it trickles in."""
    with RawSMTP(hatod.host, hatod.port) as c:
        c.cmd("EHLO slow.example")
        c.sock.sendall(b"BDAT 42\r\n")
        for piece in (b"MAIL FROM:<x@", b"localhost>\r\n", b"QUIT\r\n", b"123456789\r\n"):
            time.sleep(0.05)
            c.sock.sendall(piece)
        assert c.reply().startswith("503 5.5.1")
        assert c.cmd("NOOP") == "250 2.0.0 OK"


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


@pytest.mark.parametrize("greeting", ["EHLO", "HELO"])  # accepted / refused chunk
def test_incomplete_chunk_waits_without_spinning(hatod, greeting):
    """Waiting for the rest of a chunk costs no CPU, and SIGTERM still works."""
    with RawSMTP(hatod.host, hatod.port) as c:
        c.cmd(greeting + " slow.example")
        c.cmd("MAIL FROM:<a@localhost>")
        c.cmd("RCPT TO:<b@localhost>")
        c.sock.sendall(b"BDAT 24 LAST\r\nSubject: x\r\n\r\nbody\r\n")  # 4 octets short
        time.sleep(0.2)
        before = cpu_seconds(hatod.proc.pid)
        time.sleep(1.0)
        assert cpu_seconds(hatod.proc.pid) - before < 0.3
        assert hatod.stop() == 0
        assert c.reply() == "421 4.3.2 Service shutting down, closing connection"
    assert hatod.queue_ids() == [] and hatod.incoming() == []
