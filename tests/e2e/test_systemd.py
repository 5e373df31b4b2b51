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

    def __init__(self, testdir, abstract=False, name="notify.sock"):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "hato-test-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = os.path.join(testdir, name)
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


# --- the unit file ---------------------------------------------------------

def install(testdir):
    """`make install` into a staging tree; returns its root."""
    dest = os.path.join(testdir, "dest")
    build = os.path.dirname(HATOD)
    r = subprocess.run(["make", "-s", "-C", REPO, "BUILD=" + build, "DESTDIR=" + dest,
                        "PREFIX=/usr/local", "install"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return dest


def unit_settings(path=UNIT):
    """[Service] settings of the unit: {name: [values]}."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", "[")):
                k, _, v = line.partition("=")
                out.setdefault(k, []).append(v)
    return out


def test_install_puts_unit_and_man_pages_in_place(testdir):
    dest = install(testdir)
    usr = os.path.join(dest, "usr/local")
    for f in ["lib/systemd/system/hatod.service", "share/man/man8/hatod.8",
              "share/man/man5/hato.conf.5", "share/man/man1/hato.1"]:
        assert os.path.isfile(os.path.join(usr, f)), f
    for face in ["sendmail", "mailq"]:
        assert os.readlink(os.path.join(usr, "share/man/man1/%s.1" % face)) == "hato.1"
    unit = unit_settings(os.path.join(usr, "lib/systemd/system/hatod.service"))
    assert unit["ExecStart"] == ["/usr/local/sbin/hatod -f -c /etc/hato/hato.conf"]


def test_systemd_analyze_verify(testdir):
    """systemd's own check of the unit as `make install` installs it: every
    setting known and valid, the programs it runs there, and the man pages
    its Documentation= names found (man(1) on the installed tree).  Only the
    binaries' directory is moved to the staging tree."""
    dest = install(testdir)
    usr = os.path.join(dest, "usr/local")
    with open(os.path.join(usr, "lib/systemd/system/hatod.service")) as f:
        text = f.read().replace("/usr/local/sbin/", usr + "/sbin/")
    os.makedirs(os.path.join(testdir, "v"))
    unit = os.path.join(testdir, "v", "hatod.service")
    with open(unit, "w") as f:
        f.write(text)
    env = dict(os.environ, MANPATH=os.path.join(usr, "share/man"))
    r = subprocess.run(["systemd-analyze", "verify", unit], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    # and its judgement of the sandbox: at most 3.0 of 10 ("OK")
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=30",
                        unit], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr


def test_unit_hardening_as_the_issue_lists_it():
    u = unit_settings()
    assert u["Type"] == ["notify"]
    assert u["ProtectSystem"] == ["strict"]
    assert u["ReadWritePaths"] == ["/var/lib/hato"]
    assert u["Environment"] == ["HATO_STATE=/var/lib/hato"]
    for k in ["PrivateTmp", "ProtectHome", "NoNewPrivileges"]:
        assert u[k] == ["yes"], k
    assert u["SystemCallFilter"] == ["@system-service"]
    assert u["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]


class NetNS:
    """A network namespace of our own (root only): its loopback is ours, so
    hatod may take port 25 there without meeting anything else."""

    def __init__(self):
        self.holder = subprocess.Popen(["unshare", "--net", "sleep", "600"])
        deadline = time.monotonic() + 10
        while os.readlink("/proc/%d/ns/net" % self.holder.pid) == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        subprocess.run(self.cmd(["ip", "link", "set", "lo", "up"]), check=True, timeout=10)

    def cmd(self, argv):
        return ["nsenter", "-t", str(self.holder.pid), "-n", "--"] + argv

    def close(self):
        self.holder.kill()
        self.holder.wait()


def root_netns():
    if os.geteuid() != 0:
        pytest.skip("needs root: the unit starts hatod as root")
    try:
        return NetNS()
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.fail("cannot make a network namespace: %s" % e)


def run_capped(testdir, ns, caps, tag):
    """Start hatod as root, inside ns, confined as the unit confines it
    (its CapabilityBoundingSet, NoNewPrivileges), on 127.0.0.1:25; a mail
    is delivered into a Maildir and a reload done.  None when that all
    worked, else what went wrong."""
    m = Manager(testdir, name="notify-%s.sock" % tag)
    try:
        root = os.path.join(testdir, "capped")
        os.makedirs(root, exist_ok=True)
        os.chmod(root, 0o755)
        conf = os.path.join(root, "hato.conf")
        with open(conf, "w") as f:
            f.write("[server]\nstate_dir = %s/state\nreverse_dns = no\n"
                    "[domain localhost]\nmailboxes = *\n"
                    "[listener smtp]\naddress = 127.0.0.1:25\n" % root)
        log = open(os.path.join(root, "hatod-%s.log" % tag), "w+")
        bounding = ",".join(["-all"] + ["+" + c.lower()[4:] for c in caps])
        env = dict(os.environ, NOTIFY_SOCKET=m.address)
        p = subprocess.Popen(ns.cmd(["setpriv", "--bounding-set", bounding, "--inh-caps=-all",
                                     "--no-new-privs", HATOD, "-f", "-c", conf]),
                             env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            msg, deadline = None, time.monotonic() + 15
            while msg is None and p.poll() is None and time.monotonic() < deadline:
                msg = m.recv(timeout=0.1)
            if msg != {"READY": "1"}:
                log.seek(0)
                return "no READY: " + log.read()[-1000:]
            r = subprocess.run(ns.cmd(["swaks", "-s", "127.0.0.1:25", "-f", "a@localhost",
                                       "-t", "cap-%s@localhost" % tag]),
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                return "swaks: " + r.stdout[-1000:]
            maildir = os.path.join(root, "state/mail/localhost/cap-%s/new" % tag)
            deadline = time.monotonic() + 15
            while not (os.path.isdir(maildir) and os.listdir(maildir)):
                if time.monotonic() > deadline:
                    return "not delivered"
                time.sleep(0.05)
            p.send_signal(signal.SIGHUP)
            if m.recv().get("RELOADING") != "1" or m.recv() != {"READY": "1"}:
                return "no reload"
            p.send_signal(signal.SIGTERM)
            if p.wait(15) != 0:
                return "exit %d" % p.returncode
            return None
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()
    finally:
        m.close()


def test_unit_capabilities_are_enough_and_each_is_needed(testdir):
    """With exactly the unit's capabilities hatod binds port 25, drops to
    its user, delivers and reloads, on a new state directory and again on
    the one it left; without any one of them it cannot."""
    caps = unit_settings()["CapabilityBoundingSet"][0].split()
    ns = root_netns()
    try:
        assert run_capped(testdir, ns, caps, "first") is None
        assert run_capped(testdir, ns, caps, "again") is None
        for cap in caps:
            fewer = [c for c in caps if c != cap]
            state = os.path.join(testdir, "capped", "state")
            subprocess.run(["rm", "-rf", state], check=True)
            first = run_capped(testdir, ns, fewer, "no-" + cap.lower())
            again = run_capped(testdir, ns, fewer, "no-" + cap.lower() + "-again")
            assert first is not None or again is not None, "%s is not needed" % cap
    finally:
        ns.close()


def syscall_groups():
    """systemd's system call groups, nested groups expanded."""
    r = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True,
                       timeout=60, check=True)
    groups, cur = {}, None
    for line in r.stdout.splitlines():
        if line.startswith("@"):
            cur = groups.setdefault(line.split()[0], [])
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.append(line.split()[0])

    def expand(g):
        out = set()
        for m in groups.get(g, []):
            out |= expand(m) if m.startswith("@") else {m}
        return out
    return expand


def test_system_calls_are_within_the_units_filter(testdir):
    """Every system call hatod makes, as root through start, privilege drop,
    a received and delivered message, a reload and a shutdown (strace -f),
    is in the unit's SystemCallFilter=@system-service, and every socket it
    opens is of a family RestrictAddressFamilies= allows."""
    u = unit_settings()
    allowed = syscall_groups()(u["SystemCallFilter"][0])
    assert "read" in allowed and "setresuid" in allowed
    families = set(u["RestrictAddressFamilies"][0].split())
    m = Manager(testdir)
    h = Hatod(os.path.join(testdir, "traced"))
    os.makedirs(h.root)
    os.chmod(h.root, 0o755)
    h.delivery = {}
    h.write_config()
    trace = os.path.join(testdir, "trace")
    env = dict(os.environ, NOTIFY_SOCKET=m.address)
    # LeakSanitizer cannot run under ptrace (make asan): its leak check at
    # exit would fail the run; the rest of the suite checks for leaks
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
    with open(h.log_path, "w") as log:
        p = subprocess.Popen(["strace", "-f", "-qq", "-o", trace, HATOD, "-f", "-c", h.conf_path],
                             env=env, stdout=log, stderr=subprocess.STDOUT)
        pid = None
        try:
            assert m.recv() == {"READY": "1"}, h.logs()
            # signals go to hatod, strace's child, not to strace
            with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                pid = int(f.read().split()[0])
            import smtplib
            with smtplib.SMTP(h.host, h.port) as s:
                s.sendmail("a@localhost", ["traced@localhost"], b"Subject: t\r\n\r\nt\r\n")
            h.wait_log("event=delivery")
            os.kill(pid, signal.SIGHUP)
            assert m.recv().get("RELOADING") == "1" and m.recv() == {"READY": "1"}
            os.kill(pid, signal.SIGTERM)
            assert p.wait(30) == 0, h.logs()[-2000:]
        finally:
            if p.poll() is None:
                if pid is not None:  # a killed strace would leave hatod running
                    os.kill(pid, signal.SIGKILL)
                p.kill()
                p.wait()
            m.close()
    used, socks = set(), set()
    with open(trace) as f:
        for line in f:
            parts = line.split(None, 1)
            if len(parts) < 2 or "(" not in parts[1]:
                continue
            name = parts[1].split("(", 1)[0]
            if name.isidentifier():
                used.add(name)
            if name == "socket":
                socks.add(parts[1].split("(", 1)[1].split(",", 1)[0])
    assert len(used) > 30
    assert sorted(used - allowed - {"execve"}) == []
    assert socks and socks <= families, socks
