"""The daemon as a process: privilege drop, built-in defaults, many
concurrent sessions on one process."""
import os
import pwd
import resource
import selectors
import socket
import subprocess
import time

import pytest

from conftest import HATOD, free_port, wait_port


def proc_uids(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError("no Uid line")


@pytest.mark.skipif(os.geteuid() != 0, reason="privilege drop needs root")
def test_root_drops_to_hato_user(hatod):
    hato = pwd.getpwnam("hato")
    assert proc_uids(hatod.proc.pid) == [hato.pw_uid] * 4
    # the spool belongs to that user, and so does what it writes
    st = os.stat(hatod.state_dir)
    assert (st.st_uid, st.st_mode & 0o777) == (hato.pw_uid, 0o700)
    import smtplib
    with smtplib.SMTP(hatod.host, hatod.port) as s:
        s.sendmail("a@localhost", ["b@localhost"], b"Subject: x\r\n\r\nx\r\n")
    qdir = os.path.join(hatod.state_dir, "queue")
    for name in os.listdir(qdir):
        assert os.stat(os.path.join(qdir, name)).st_uid == hato.pw_uid


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to name another user")
def test_missing_user_is_a_clear_error(testdir):
    conf = os.path.join(testdir, "hato.conf")
    port = free_port()
    with open(conf, "w") as f:
        f.write("[server]\nstate_dir = %s/state\nuser = no-such-user-hato\n"
                "[listener smtp]\naddress = 127.0.0.1:%d\n" % (testdir, port))
    r = subprocess.run([HATOD, "-f", "-c", conf], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "user no-such-user-hato does not exist" in r.stderr
    assert "useradd" in r.stderr


def test_builtin_defaults_listen_on_2525(testdir):
    """No config file: 127.0.0.1:2525, state in $HATO_STATE, says where."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 2525)) == 0:
            pytest.skip("something already listens on 2525")
    # missing parents are made, as for the README's ./var/hato
    env = dict(os.environ, HATO_STATE=os.path.join(testdir, "var", "state"))
    env.pop("HATO_CONFIG", None)
    p = subprocess.Popen([HATOD, "-f"], env=env, cwd=testdir,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_port("127.0.0.1", 2525, proc=p)
        with socket.create_connection(("127.0.0.1", 2525), timeout=5) as s:
            assert s.recv(512).startswith(b"220 ")
    finally:
        p.terminate()
        out = p.communicate(timeout=10)[0].decode()
    assert p.returncode == 0
    assert "listening on 127.0.0.1:2525" in out
    assert os.path.join(testdir, "var", "state") in out


def test_two_thousand_concurrent_sessions(make_hatod):
    """One process holds 2,000 open sessions and greets every one."""
    n = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < n + 100:
        pytest.skip("descriptor limit too low for this test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n + 100), hard))
    # all from 127.0.0.1: no per-client session limit
    h = make_hatod(limits={"sessions_max": n + 10, "client_sessions_max": 0})
    sel = selectors.DefaultSelector()
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((h.host, h.port))
            socks.append(s)
            sel.register(s, selectors.EVENT_READ)
        greeted = set()
        deadline = time.monotonic() + 60
        while len(greeted) < n and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                data = key.fileobj.recv(512)
                assert data.startswith(b"220 "), data
                greeted.add(key.fileobj)
                sel.unregister(key.fileobj)
        assert len(greeted) == n
        # every one of them still works
        for s in socks[:: n // 20]:
            s.setblocking(True)
            s.settimeout(10)
            s.sendall(b"NOOP\r\n")
            assert s.recv(512).startswith(b"250 2.0.0")
    finally:
        for s in socks:
            s.close()
