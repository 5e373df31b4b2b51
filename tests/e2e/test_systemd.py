"""hatod under systemd: the sd_notify(3) datagram protocol that
etc/systemd/hatod.service (Type=notify) relies on, spoken to a plain
AF_UNIX datagram socket standing in for the service manager, and the unit
file itself judged by systemd's own systemd-analyze."""
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import HATOD, REPO, Hatod, RawSMTP

UNIT = os.path.join(REPO, "etc/systemd/hatod.service")


class Manager:
    """The service manager's end: a datagram socket hatod is told about in
    $NOTIFY_SOCKET, at a path (made writable for the user hatod drops to)
    or in the abstract namespace ("@name")."""

    def __init__(self, testdir, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "hato-test-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = os.path.join(testdir, "notify.sock")
            self.sock.bind(self.address)
            os.chmod(self.address, 0o777)

    def recv(self, timeout=15.0):
        """The next datagram as {key: value}, or None after timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        return dict(line.split("=", 1) for line in data.decode().split("\n") if line)

    def close(self):
        self.sock.close()


def start(testdir, notify_socket):
    """A hatod with $NOTIFY_SOCKET, started without waiting for anything:
    the notification is what says it is ready."""
    root = os.path.join(testdir, "h")
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o755)
    h = Hatod(root)
    h.write_config()
    h.log_start = 0
    h.log = open(h.log_path, "ab")
    env = dict(os.environ, NOTIFY_SOCKET=notify_socket)
    h.proc = subprocess.Popen([HATOD, "-f", "-c", h.conf_path], env=env,
                              stdout=h.log, stderr=subprocess.STDOUT)
    return h


@pytest.fixture
def manager(testdir):
    m = Manager(testdir)
    yield m
    m.close()


def greets(h):
    """Does hatod answer a new connection with 220 right now?"""
    with RawSMTP(h.host, h.port, timeout=5) as c:
        ok = c.greeting.startswith("220 ")
        c.cmd("QUIT")
    return ok


def stop_clean(h):
    assert h.stop(signal.SIGTERM) == 0, h.logs()[-3000:]


def test_ready_once_listening_and_recovered(testdir, manager):
    """READY=1 is the first thing hatod says, after the spool's recovery
    (event=started) and once its port greets; then nothing until asked."""
    h = start(testdir, manager.address)
    try:
        msg = manager.recv()
        assert msg == {"READY": "1"}, h.logs()
        assert "event=started" in h.logs()
        assert greets(h)
        assert manager.recv(timeout=0.5) is None
    finally:
        stop_clean(h)


def test_stopping_on_sigterm(testdir, manager):
    h = start(testdir, manager.address)
    try:
        assert manager.recv() == {"READY": "1"}
        h.proc.send_signal(signal.SIGTERM)
        assert manager.recv() == {"STOPPING": "1"}
        assert h.proc.wait(15) == 0, h.logs()[-3000:]
        assert "event=stopped" in h.logs()
        assert manager.recv(timeout=0.5) is None
    finally:
        h.stop()
        h.log.close()


def test_reload_is_reloading_then_ready(testdir, manager):
    """SIGHUP: RELOADING=1 with the monotonic clock's time of the reload in
    microseconds (as sd_notify(3) asks), the reload itself, then READY=1;
    the server greets throughout."""
    h = start(testdir, manager.address)
    try:
        assert manager.recv() == {"READY": "1"}
        for _ in range(2):
            before = time.monotonic_ns() // 1000
            h.proc.send_signal(signal.SIGHUP)
            msg = manager.recv()
            after = time.monotonic_ns() // 1000
            assert msg is not None and msg.get("RELOADING") == "1", msg
            assert before <= int(msg["MONOTONIC_USEC"]) <= after
            assert manager.recv() == {"READY": "1"}
            # the reload is over when READY comes: its result is logged
            assert h.logs().count("action=reload_tls result=ok") == _ + 1
            assert greets(h)
    finally:
        stop_clean(h)


def test_abstract_socket(testdir):
    """systemd may name a socket in the abstract namespace: "@name"."""
    m = Manager(testdir, abstract=True)
    h = start(testdir, m.address)
    try:
        assert m.recv() == {"READY": "1"}
        h.proc.send_signal(signal.SIGTERM)
        assert m.recv() == {"STOPPING": "1"}
        assert h.proc.wait(15) == 0
    finally:
        h.stop()
        h.log.close()
        m.close()


def test_unreachable_manager_is_logged_not_fatal(testdir):
    """A NOTIFY_SOCKET nobody listens on is a warning; hatod serves on."""
    h = start(testdir, os.path.join(testdir, "nobody-here.sock"))
    try:
        deadline = time.monotonic() + 15
        while "event=started" not in h.logs():
            assert time.monotonic() < deadline, h.logs()
            assert h.proc.poll() is None, h.logs()
            time.sleep(0.02)
        h.wait_log("event=notify state=READY")
        assert greets(h)
    finally:
        stop_clean(h)
