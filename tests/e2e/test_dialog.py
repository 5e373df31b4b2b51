"""Play every tests/dialog/*.dlg against a real hatod over a raw socket.

One hatod per file (its "# limits:" / "# server:" directives become config
overrides), one connection; each C: / C~ line is written as it stands, each
S: line reads exactly one reply and compares its first line, S*: looks for a
line of that reply, "S: <closed>" wants EOF with nothing more.  After the
dialogue hatod must still be running, "# expect-queue: N" checks that
exactly N messages were committed and nothing is left in incoming/, and
hatod must then stop cleanly (exit 0 on SIGTERM; under ASan: no leaks).
"# xfail: BUG ..." turns the file into a strict xfail (a known hatod bug).
Format: tests/dialog/README.md.
"""
import glob
import os
import socket
import sys
import time

import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "tests", "dialog"))
import dlg  # noqa: E402

DIALOG_DIR = os.path.join(REPO, "tests", "dialog")
READ_TIMEOUT = 5.0  # seconds to wait for one reply or for the close


def dialog_params():
    out = []
    for path in sorted(glob.glob(os.path.join(DIALOG_DIR, "*.dlg"))):
        name = os.path.basename(path)[:-4]
        marks = []
        try:
            d = dlg.parse(path)
            if d.xfail:
                marks.append(pytest.mark.xfail(reason=d.xfail, strict=True))
        except (OSError, dlg.DialogError):
            pass  # reported by the test itself
        out.append(pytest.param(path, id=name, marks=marks))
    return out


class DialogFailure(AssertionError):
    pass


class Peer:
    """The client side of the connection, with a transcript for messages."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=READ_TIMEOUT)
        self.buf = b""
        self.eof = False
        self.transcript = []
        self.last_reply = None

    def close(self):
        self.sock.close()

    def send(self, data):
        self.transcript.append("C: " + show(data))
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            # the server closed first; the next S: line says if that was right
            self.transcript.append("   (send failed: connection closed by hatod)")
            self.eof = True

    def _fill(self):
        """Read more; False on EOF or reset."""
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_line(self):
        """One reply line without CRLF; None on EOF; raises socket.timeout."""
        while b"\n" not in self.buf:
            if not self._fill():
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line  # partial line before EOF: let the caller show it
                return None
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def read_reply(self):
        """All lines of one reply, decoded; None on EOF before any line."""
        lines = []
        while True:
            raw = self.read_line()
            if raw is None:
                if lines:
                    self.transcript.append("S: " + "\n   ".join(lines))
                    raise DialogFailure("connection closed inside a multi-line reply")
                return None
            text = raw.decode("utf-8", "backslashreplace")
            if not raw.endswith(b"\r"):
                lines.append(text)
                self.transcript.append("S: " + "\n   ".join(lines))
                raise DialogFailure("reply line not ended by CRLF: %r" % raw)
            text = text[:-1]
            lines.append(text)
            if len(text) < 3 or not text[:3].isdigit() or text[3:4] not in ("", " ", "-"):
                self.transcript.append("S: " + "\n   ".join(lines))
                raise DialogFailure("not an SMTP reply line: %r" % text)
            if text[3:4] != "-":
                break
            if text[:3] != lines[0][:3]:
                raise DialogFailure("multi-line reply changes code: %r" % lines)
        self.transcript.append("S: " + "\n   ".join(lines))
        self.last_reply = lines
        return lines


def show(data):
    """Client bytes as a C~ line would write them."""
    out = []
    for b in data:
        c = chr(b)
        if c == "\r":
            out.append("\\r")
        elif c == "\n":
            out.append("\\n")
        elif c == "\\":
            out.append("\\\\")
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append("\\x%02x" % b)
    s = "".join(out)
    return s if len(s) <= 200 else s[:200] + "...(%d bytes)" % len(data)


def first_line(reply):
    """'250-mx Hello' -> '250 mx Hello': the first line as S: compares it."""
    line = reply[0]
    return line[:3] + " " + line[4:] if line[3:4] == "-" else line


def play(d, peer):
    """Run the steps of d; raises DialogFailure at the first mismatch."""
    for step in d.steps:
        try:
            if step.kind == "send":
                peer.send(step.data)
            elif step.kind == "reply" and step.data == dlg.CLOSED:
                try:
                    reply = peer.read_reply()
                except socket.timeout:
                    raise step_failure(d, step, "connection still open after %.0f s"
                                       % READ_TIMEOUT)
                if reply is not None:
                    raise step_failure(d, step, "got a reply: %r" % reply)
            elif step.kind == "reply":
                try:
                    reply = peer.read_reply()
                except socket.timeout:
                    raise step_failure(d, step, "no reply within %.0f s" % READ_TIMEOUT)
                if reply is None:
                    raise step_failure(d, step, "connection closed")
                if not first_line(reply).startswith(step.data):
                    raise step_failure(d, step, "got %r" % "\n".join(reply))
            elif step.kind == "line":
                texts = [line[4:] for line in peer.last_reply]
                if not any(t.startswith(step.data) for t in texts):
                    raise step_failure(d, step, "no such line in %r" % peer.last_reply)
        except DialogFailure as e:
            if getattr(e, "located", False):
                raise
            raise step_failure(d, step, str(e))


def step_failure(d, step, what):
    e = DialogFailure("%s:%d: expected %r: %s" % (os.path.relpath(d.path, REPO),
                                                  step.lineno, step.source, what))
    e.located = True
    return e


def wait_empty(path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while os.listdir(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.listdir(path)


@pytest.mark.parametrize("path", dialog_params())
def test_dialog(path, make_hatod):
    d = dlg.parse(path)  # a DialogError fails this file with its line number
    h = make_hatod(server=d.server, limits=d.limits)
    peer = Peer(h.host, h.port)
    failure = None
    try:
        play(d, peer)
    except DialogFailure as e:
        failure = str(e)
    finally:
        peer.close()
    if failure:
        log = h.logs().splitlines()[-15:]
        pytest.fail("%s\n%s\n\ntranscript:\n  %s\n\nhatod log (tail):\n  %s" % (
            d.description, failure, "\n  ".join(peer.transcript), "\n  ".join(log)),
            pytrace=False)
    assert h.proc.poll() is None, "hatod died during %s:\n%s" % (path, h.logs()[-3000:])
    if d.expect_queue is not None:
        queued = h.queue_ids()
        assert len(queued) == d.expect_queue, \
            "%s: expect-queue %d, the queue holds %d: %s" % (
                path, d.expect_queue, len(queued), queued)
        left = wait_empty(os.path.join(h.state_dir, "incoming"))
        assert not left, "%s: files left in incoming/: %s" % (path, left)
    rc = h.stop()  # a clean shutdown too (under ASan: no leak, no late crash)
    assert rc == 0, "hatod exited with %s after %s:\n%s" % (rc, path, h.logs()[-3000:])
