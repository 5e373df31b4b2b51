"""Shared harness for the end-to-end tests: start the real build/hatod on
free loopback ports with a config written for the test, and look at what it
put in its spool.

Tests run as root in CI, so hatod drops to the `hato` user: every test
directory is made world-traversable for that reason.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from dnsserver import DnsServer, Zone  # noqa: F401 (for the tests, with the fixture below)
from ports import free_port  # noqa: F401 (for the tests)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("HATO_BUILD", os.path.join(REPO, "build"))
HATOD = os.path.join(BUILD, "hatod")
HATO = os.path.join(BUILD, "hato")


def wait_port(host, port, timeout=10.0, proc=None):
    """Wait until host:port accepts connections."""
    deadline = time.monotonic() + timeout
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("hatod exited with %d" % proc.returncode)
        try:
            with socket.socket(family) as s:
                s.settimeout(0.5)
                s.connect((host, port))
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listens on %s:%d" % (host, port))


def stop_process(proc, timeout=15):
    """SIGTERM to a process the test started (by its PID), SIGKILL if it
    lingers past timeout; returns its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Hatod:
    """One hatod process with its own config, spool and ports."""

    def __init__(self, root, server=None, limits=None, listeners=None, extra=None,
                 delivery=None, args=(), checks=None):
        self.root = root
        self.args = tuple(args)  # more hatod options, after -f -c CONF
        self.state_dir = os.path.join(root, "state")
        self.port = free_port()
        self.host = "127.0.0.1"
        self.server = {
            "state_dir": self.state_dir,
            "hostname": "mx.test.example",
            "local_domains": "localhost, test.example",
            "reverse_dns": "no",
        }
        self.server.update(server or {})
        self.limits = dict(limits or {})
        self.listeners = listeners or {"smtp": "127.0.0.1:%d" % self.port}
        # [delivery] keys, and raw sections ([domain ...], [senders] ...)
        # Deliveries are held unless a test asks for them: most tests look
        # at what was received, in the queue.
        self.delivery = {"hold": "yes"}
        self.delivery.update(delivery or {})
        # [checks] keys: off unless a test asks, as the tests' senders have
        # no DNS to check (test_checks.py serves theirs from dnsmasq)
        self.checks = {"enable": "no"}
        self.checks.update(checks or {})
        # None: every local domain gets "mailboxes = *" (any name exists)
        self.extra = extra
        self.conf_path = os.path.join(root, "hato.conf")
        self.log_path = os.path.join(root, "hatod.log")
        self.proc = None

    def write_config(self):
        lines = ["[server]"]
        lines += ["%s = %s" % kv for kv in self.server.items()]
        if self.limits:
            lines.append("[limits]")
            lines += ["%s = %s" % kv for kv in self.limits.items()]
        if self.delivery:
            lines.append("[delivery]")
            lines += ["%s = %s" % kv for kv in self.delivery.items()]
        if self.checks:
            lines.append("[checks]")
            lines += ["%s = %s" % kv for kv in self.checks.items()]
        if self.extra is None:
            for d in self.server["local_domains"].replace(",", " ").split():
                lines += ["[domain %s]" % d, "mailboxes = *"]
        elif self.extra:
            lines.append(self.extra)
        for name, spec in self.listeners.items():
            lines.append("[listener %s]" % name)
            if isinstance(spec, str):
                spec = {"address": spec}
            # no greeting delay unless a test asks for one: the suite stays fast
            spec = {"greeting_delay": "0", **spec}
            lines += ["%s = %s" % kv for kv in spec.items()]
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, extra_args=()):
        self.write_config()
        # a restart appends to the same log: only what comes after counts
        self.log_start = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [HATOD, "-f", "-c", self.conf_path, *self.args, *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT)
        # Ports are bound before privileges drop and the spool opens: ready
        # means the "event=started" line.  No probe connections: their
        # sessions would still be in the log, and counted, as a test starts.
        deadline = time.monotonic() + 15
        while not re.search(r'event=started|"event":"started"', self.logs()[self.log_start:]):
            if self.proc.poll() is not None:
                raise RuntimeError("hatod exited with %d:\n%s" % (self.proc.returncode, self.logs()))
            if time.monotonic() > deadline:
                raise RuntimeError("hatod did not start:\n" + self.logs())
            time.sleep(0.01)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signal hatod and wait; returns its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.close()

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def maildir(self, user, domain="localhost"):
        """The files in new/ of user@domain's Maildir (default mailbox_path)."""
        d = os.path.join(self.state_dir, "mail", domain, user, "new")
        if not os.path.isdir(d):
            return []
        return sorted(os.path.join(d, n) for n in os.listdir(d))

    def wait_log(self, text, timeout=10.0, count=1):
        """Wait until text appears count times in the log."""
        deadline = time.monotonic() + timeout
        while self.logs().count(text) < count:
            if time.monotonic() > deadline:
                raise AssertionError("no %r in the log:\n%s" % (text, self.logs()[-3000:]))
            time.sleep(0.02)

    def queue_ids(self):
        qdir = os.path.join(self.state_dir, "queue")
        return sorted(n[:-4] for n in os.listdir(qdir) if n.endswith(".msg"))

    def committed_ids(self):
        """The IDs of queue files that are whole: a small message is written
        straight into queue/, so a file seen there may still be growing
        until its commit ends (a message from pickup is listed before any
        reply says it is queued)."""
        return [qid for qid in self.queue_ids() if queue_file_whole(self.state_dir, qid)]

    def queued(self):
        """[(envelope dict, message bytes)] for every committed message."""
        return [
            (parse_envelope(env), msg)
            for env, msg in (read_queued(self.state_dir, qid) for qid in self.queue_ids())
        ]

    def envelope_text(self, qid):
        """The envelope of queued message qid, as text."""
        return read_queued(self.state_dir, qid)[0]

    def incoming(self):
        return os.listdir(os.path.join(self.state_dir, "incoming"))


TRAILER = re.compile(rb"hato-queue: 1 message=(0|[1-9][0-9]*) envelope=(0|[1-9][0-9]*)"
                     rb"(?: crc32c=([0-9a-f]{8}))?\n\Z")


def crc32c(data):
    """CRC-32C (Castagnoli), bit by bit: the checksum of queue file trailers."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def read_queued(state_dir, qid):
    """(envelope text, message bytes) of queue/ID.msg: the message, then the
    envelope, then the trailer line whose lengths must add up to the file
    (and whose checksum, when there is one, must match);
    queue/ID.env, once a delivery rewrote the envelope, stands for it."""
    qdir = os.path.join(state_dir, "queue")
    with open(os.path.join(qdir, qid + ".msg"), "rb") as f:
        data = f.read()
    start = data.rfind(b"\n", 0, len(data) - 1) + 1
    m = TRAILER.match(data, start)
    assert m, "no valid trailer in %s.msg: %r" % (qid, data[-100:])
    msglen, envlen = int(m.group(1)), int(m.group(2))
    assert msglen + envlen == start, (qid, msglen, envlen, start)
    if m.group(3) is not None:
        assert int(m.group(3), 16) == crc32c(data[:start]), "%s.msg: checksum" % qid
    env = data[msglen:start].decode()
    try:
        with open(os.path.join(qdir, qid + ".env")) as f:
            env = f.read()
    except FileNotFoundError:
        pass
    return env, data[:msglen]


def queue_file_whole(state_dir, qid):
    """Does queue/ID.msg end with a trailer whose lengths add up to it?"""
    try:
        with open(os.path.join(state_dir, "queue", qid + ".msg"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return False
    start = data.rfind(b"\n", 0, len(data) - 1) + 1
    m = TRAILER.match(data, start)
    return m is not None and int(m.group(1)) + int(m.group(2)) == start


def parse_envelope(text):
    """Envelope file -> dict; 'rcpt' is the list of addresses where mail
    goes, 'orig' the RCPT TO each came from (as the client wrote it)."""
    env = {"rcpt": [], "orig": []}
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        if key == "rcpt":
            env["rcpt"].append(value.split("addr=", 1)[1])
            env["orig"].append(env["rcpt"][-1])
        elif key == "rcpt-orig":
            env["orig"][-1] = value
        else:
            env[key] = value
    return env


def strip_received(msg):
    """The message as the client sent it: our Received: header (its first
    line and those that continue it; CRLF or LF lines) removed."""
    m = re.match(rb"Received: [^\n]*\n(?:[ \t][^\n]*\n)*", msg)
    assert m, msg[:80]
    return msg[m.end():]


def wait_for(fn, timeout=15.0, what="the condition"):
    """Poll fn until it returns something true, and return that; fail
    after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def lf(data):
    """data with each CRLF as LF: how a Maildir stores what came as CRLF."""
    return data.replace(b"\r\n", b"\n")


@pytest.fixture
def testdir():
    d = tempfile.mkdtemp(prefix="hato-test-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_hatod(testdir):
    """Factory: make_hatod(server={...}, limits={...}) -> started Hatod."""
    started = []

    def make(**kw):
        sub = tempfile.mkdtemp(dir=testdir)
        os.chmod(sub, 0o755)
        h = Hatod(sub, **kw).start()
        started.append(h)
        return h

    yield make
    # A clean SIGTERM exit is part of every test: under ASan/LSan a leak or
    # memory error makes the exit code non-zero.
    bad = []
    for h in started:
        if h.proc.poll() is None:
            try:
                rc = h.stop(signal.SIGTERM)
            except subprocess.TimeoutExpired:
                h.proc.kill()
                h.proc.wait()
                rc = "no exit within 15 s of SIGTERM"

            if rc != 0:
                bad.append("hatod in %s exited %r:\n%s" % (h.root, rc, h.logs()[-3000:]))
    assert not bad, "\n".join(bad)


@pytest.fixture
def make_dns_server(testdir):
    """Factory: make_dns_server(zone, ipv6=False) -> a started DnsServer
    (dnsserver.py: dnsmasq serving zone on 127.0.0.1:PORT, and [::1]:PORT
    with ipv6; .address and .address6 for [dns] servers), stopped by its
    PID when the test ends."""
    started = []

    def make(zone, ipv6=False):
        sub = tempfile.mkdtemp(dir=testdir)
        os.chmod(sub, 0o755)
        d = DnsServer(sub, zone, ipv6=ipv6)
        started.append(d)
        return d.start()

    yield make
    for d in started:
        d.stop()


@pytest.fixture
def hatod(make_hatod):
    """A hatod on built-in limits, local domains localhost and test.example."""
    return make_hatod()


# ---------------------------------------------------------------------------
# Helpers added for the client, relay, limits, crash, disk and config tests.

class RawSMTP:
    """A bare-socket SMTP client: sends exactly the bytes it is given and
    reads whole replies, so tests can check codes and pipelining precisely.
    Every read is bounded by the socket timeout."""

    def __init__(self, host, port, timeout=10.0, greet=True, source=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source is not None:  # another loopback address: another client
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.greeting = self.reply() if greet else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; unread: %r" % self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """One complete reply, its lines joined by "\\n" without CRLF."""
        lines = [self._line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self._line())
        return "\n".join(lines)

    def cmd(self, line):
        """Send one command line (CRLF added) and return its reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply()

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def eof(self, timeout=5.0):
        """True when the server closes the connection (b"" from recv)
        within timeout with nothing more sent; raises if it sends bytes."""
        if self.buf:
            raise AssertionError("unexpected bytes: %r" % self.buf)
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        if data:
            raise AssertionError("unexpected bytes before close: %r" % data)
        return True


def restart_hatod(old, **kw):
    """A new (not yet started) Hatod on the same root, so on the same
    state_dir, with a fresh port.  The caller starts and stops it."""
    return Hatod(old.root, **kw)


def wait_ready(h, timeout=10.0):
    """Wait until hatod greets: its listeners are bound before the spool is
    opened and recovered, so a bound port alone does not mean ready."""
    with RawSMTP(h.host, h.port, timeout=timeout) as c:
        assert c.greeting.startswith("220 "), c.greeting
        assert c.cmd("QUIT").startswith("221 ")


# Under ASan/UBSan (make asan sets HATO_SANITIZED=1) a process's RSS is the
# sanitizer's shadow memory and quarantine, not hatod's: the tests that
# bound hatod's memory (named *memory_bounded* / *bounded_memory*) measure
# the plain build only.  Everything else runs in both.
SANITIZED = os.environ.get("HATO_SANITIZED") == "1"


def pytest_collection_modifyitems(config, items):
    if not SANITIZED:
        return
    skip = pytest.mark.skip(reason="RSS is meaningless under ASan; bounded in the plain run")
    for item in items:
        if "memory_bounded" in item.name or "bounded_memory" in item.name:
            item.add_marker(skip)
