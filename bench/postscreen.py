#!/usr/bin/python3
"""bench/postscreen.py - does a crowd of idle or slowloris connections from
one address slow a well-behaved client from another address?  And does the
per-client session limit hold while they try?

One hatod on a free 127.0.0.1 port, default limits (client_sessions_max =
50), no greeting delay (so the attackers are admitted as soon as the limit
allows: the harder case), and no SPF/DKIM/DMARC checks ([checks] enable =
no: their DNS lookups would set the client's pace, not the connections).  The well-behaved client is Python's smtplib
bound to 127.0.0.2: it sends MESSAGES messages of SIZE octets one after the
other, one connection each (connect, EHLO, MAIL, RCPT, DATA, QUIT), and
its rate is measured:

  baseline   nothing else connects;
  idle       ATTACKERS connections from 127.0.0.1, opened before the client
             starts, that read the greeting and then say nothing;
  slowloris  the same, but every admitted connection sends one more octet
             of a command line that never ends, once a second.

The attackers run in a separate process (this script with --attack), so
they share no interpreter lock with the client.  The three runs alternate
ROUNDS times, side by side, and each attacked rate is compared with the
baseline rate of its round.  Then the same again with the per-client limit
lifted (client_sessions_max = 0), so that all ATTACKERS connections are
sessions of hatod at once: what the event loop itself makes of them.

For each attacked run the attackers report how many of their connections
were greeted (220) and how many refused (421 4.7.0); with the limit the
greeted count must be exactly client_sessions_max, or the script fails.
Before the client starts, hatod's own CPU time is read over QUIET seconds
of the attack alone: what the attack costs hatod, whatever else the
machine is doing (the client's rate, on a shared machine, is noisier).
The last lines are

  RESULT limit=50 mode=idle ratio=R baseline_msg_per_s=B attacked_msg_per_s=A
         greeted=G refused=F hatod_cpu_ms_per_s=C
  ...

(each on one line) where ratio is the median attacked rate over the
median baseline rate (1.0: no slowdown; the goal is >= 0.9).
A benchmark, not a test: the numbers depend on the machine and its load.
Every loop is bounded; only processes this script started are stopped,
by their PID.

  /usr/bin/python3 bench/postscreen.py            (or: make bench-postscreen)
  BENCH_MESSAGES=200 BENCH_ROUNDS=1 /usr/bin/python3 bench/postscreen.py

Environment: BENCH_HATOD (build/hatod), BENCH_MESSAGES (300), BENCH_SIZE
(2048), BENCH_ATTACKERS (2000), BENCH_ROUNDS (5), BENCH_TMPDIR (/tmp),
BENCH_KEEP=1 (keep the state dir and hatod's log).
"""

import os
import resource
import select
import selectors
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HATOD = os.environ.get("BENCH_HATOD", os.path.join(os.path.dirname(HERE),
                                                   os.environ.get("BUILD", "build"), "hatod"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "300"))
SIZE = int(os.environ.get("BENCH_SIZE", "2048"))
ATTACKERS = int(os.environ.get("BENCH_ATTACKERS", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
TMPBASE = os.environ.get("BENCH_TMPDIR", os.environ.get("TMPDIR", "/tmp"))
KEEP = os.environ.get("BENCH_KEEP") == "1"

ATTACK_FROM = "127.0.0.1"
CLIENT_FROM = "127.0.0.2"
GREETING_WAIT = 20.0  # seconds the attackers wait for all their first lines
ATTACK_MAX = 600.0    # seconds an attacker process lives at most
SLOW_INTERVAL = 1.0   # seconds between two octets of a slowloris line
QUIET = 5.0           # seconds hatod's CPU is watched under the attack alone


def say(*a):
    print("bench:", *a, flush=True)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, ATTACKERS + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the attackers (a process of their own) ---------------------------------

def first_lines(socks):
    """The first line each socket receives (b"" when it closes first)."""
    lines = {s: b"" for s in socks}
    sel = selectors.DefaultSelector()  # epoll: more than FD_SETSIZE sockets
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    pending = len(socks)
    deadline = time.monotonic() + GREETING_WAIT
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            s = key.fileobj
            try:
                data = s.recv(512)
            except OSError:
                data = b""
            lines[s] += data
            if not data or b"\n" in lines[s]:
                sel.unregister(s)
                pending -= 1
    sel.close()
    return lines


def attack(port, n, mode):
    """Open n connections, report greeted/refused, then idle or drip."""
    raise_fd_limit()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((ATTACK_FROM, 0))
        s.settimeout(10)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
    lines = first_lines(socks)
    greeted = [s for s in socks if lines[s].startswith(b"220 ")]
    refused = sum(1 for s in socks if lines[s].startswith(b"421 4.7.0 "))
    print("READY opened=%d greeted=%d refused=%d" % (len(socks), len(greeted), refused),
          flush=True)
    for s in greeted:
        s.setblocking(False)
    line = b"EHLO " + b"x" * 4000
    deadline = time.monotonic() + ATTACK_MAX
    i = 0
    while time.monotonic() < deadline:
        if mode == "slowloris":
            octet = line[i % len(line):i % len(line) + 1]
            for s in greeted:
                try:
                    s.send(octet)
                except OSError:
                    pass
            i += 1
        time.sleep(SLOW_INTERVAL)


# --- the well-behaved client ------------------------------------------------

def client_run(port):
    """MESSAGES transactions from CLIENT_FROM; messages per second."""
    body = b"Subject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * max(1, SIZE // 78)
    t0 = time.monotonic()
    for _ in range(MESSAGES):
        s = smtplib.SMTP(timeout=60, source_address=(CLIENT_FROM, 0))
        try:
            s.connect("127.0.0.1", port)
            s.ehlo("client.example")
            s.sendmail("bench@example.org", ["bench@localhost"], body)
            s.quit()
        finally:
            s.close()
    return MESSAGES / (time.monotonic() - t0)


# --- hatod -----------------------------------------------------------------

def start_hatod(work, limit):
    d = tempfile.mkdtemp(dir=work)
    os.chmod(d, 0o755)
    port = free_port()
    conf = os.path.join(d, "hato.conf")
    with open(conf, "w") as f:
        f.write("[server]\nstate_dir = %s/state\nhostname = localhost\n"
                "local_domains = localhost\nreverse_dns = no\n"
                "[limits]\nclient_sessions_max = %d\n"
                "[delivery]\nhold = yes\n[domain localhost]\nmailboxes = *\n"
                # what is measured is the connection path, not DNS waits
                "[checks]\nenable = no\n"
                "[listener smtp]\naddress = 127.0.0.1:%d\ngreeting_delay = 0\n"
                % (d, limit, port))
    log = open(os.path.join(d, "hatod.log"), "ab")
    proc = subprocess.Popen([HATOD, "-f", "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        with open(os.path.join(d, "hatod.log"), "rb") as f:
            if b"event=started" in f.read():
                break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("hatod did not start; see %s/hatod.log" % d)
        time.sleep(0.05)
    return proc, port, log


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid):
    """User and system CPU time of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def attacked_run(port, mode, hatod_pid):
    """Start the attackers, measure hatod's CPU under the attack alone, then
    the client; stop them; (rate, report)."""
    att = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--attack", str(port),
                            str(ATTACKERS), mode], stdout=subprocess.PIPE)
    try:
        ready, _, _ = select.select([att.stdout], [], [], GREETING_WAIT + 60)
        line = att.stdout.readline().decode() if ready else ""
        if not line.startswith("READY"):
            raise SystemExit("the attackers did not get ready: %r" % line)
        report = dict(kv.split("=") for kv in line.split()[1:])
        c0 = cpu_seconds(hatod_pid)
        time.sleep(QUIET)
        report["hatod_cpu_ms_per_s"] = "%.1f" % ((cpu_seconds(hatod_pid) - c0) * 1000 / QUIET)
        return client_run(port), report
    finally:
        stop(att)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--attack":
        attack(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return 0
    raise_fd_limit()
    # stopped by a signal: the finally clauses still stop hatod and the attackers
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    if not os.access(HATOD, os.X_OK):
        raise SystemExit("no hatod at %s (make all)" % HATOD)
    work = tempfile.mkdtemp(prefix="hato-bench-postscreen-", dir=TMPBASE)
    os.chmod(work, 0o755)
    results, failed = [], False
    try:
        for limit in (50, 0):
            proc, port, log = start_hatod(work, limit)
            say("hatod pid %d on 127.0.0.1:%d, client_sessions_max=%d" % (proc.pid, port, limit))
            try:
                client_run(port)  # warm up: the spool's first files, the client's pass
                runs = {"baseline": [], "idle": [], "slowloris": []}
                reports = {"idle": [], "slowloris": []}
                for r in range(ROUNDS):
                    base = client_run(port)
                    runs["baseline"].append(base)
                    say("limit=%d round %d baseline: %.0f msg/s" % (limit, r + 1, base))
                    for mode in ("idle", "slowloris"):
                        rate, rep = attacked_run(port, mode, proc.pid)
                        runs[mode].append(rate)
                        reports[mode].append(rep)
                        say("limit=%d round %d %s: %.0f msg/s (attackers: %s)"
                            % (limit, r + 1, mode, rate,
                               " ".join("%s=%s" % kv for kv in rep.items())))
                        want = min(limit, ATTACKERS) if limit else ATTACKERS
                        if int(rep["greeted"]) != want:
                            say("FAIL: %s greeted, want %d" % (rep["greeted"], want))
                            failed = True
                b = statistics.median(runs["baseline"])
                for mode in ("idle", "slowloris"):
                    a = statistics.median(runs[mode])
                    rep = reports[mode][-1]
                    results.append("RESULT limit=%d mode=%s ratio=%.2f baseline_msg_per_s=%.0f "
                                   "attacked_msg_per_s=%.0f greeted=%s refused=%s "
                                   "hatod_cpu_ms_per_s=%s"
                                   % (limit, mode, a / b, b, a, rep["greeted"], rep["refused"],
                                      rep["hatod_cpu_ms_per_s"]))
            finally:
                stop(proc)
                log.close()
    finally:
        if KEEP:
            say("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    for line in results:
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
