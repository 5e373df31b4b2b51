"""README's tour, run as written: every command of its ```sh blocks, taken
from README.md itself so that the two cannot drift apart, against a hatod
started as `make run` starts it (build/hatod -f on built-in defaults, in
the directory holding build/ and var/hato).

It runs in a network namespace of its own, so the README's fixed ports
(2525, 2587, 2465) are free and nothing leaves the machine.  What a person
would type differently is replaced, and only that: the password a prompt
asks for is typed on a terminal (script(1)), PASSWORD and `...` stand for
it, ID for a queued message's ID, and `sudo make install` installs into a
staging directory.  `make run`/`make test` themselves, the `hato route`
examples and `hato dkim check` (they assume DNS records and a configuration
the tour does not set up; tests/e2e/test_route*.py and test_dkim.py cover
them) are not run."""
import os
import pty
import re
import select
import shlex
import subprocess
import time

import pytest

from conftest import HATOD, REPO
from test_systemd import Manager, NetNS

PASSWORD = "tour-Secret-1"


def scan(line, quote):
    """The line without its `# comment`, and the quote still open at its
    end ("" for none), given the quote open at its start."""
    out = []
    for k, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1] in " \t"):
            return "".join(out).rstrip(), quote
        out.append(ch)
    return "".join(out), quote


def tour_commands():
    """The shell commands of README's tour, one string each, comments
    removed (backslash continuations, pipes, quotes over several lines and
    here-documents kept whole)."""
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    tour = text[text.index("## A short tour"):text.index("## Where things are")]
    cmds = []
    for block in re.findall(r"```sh\n(.*?)```", tour, re.S):
        cur, heredoc, quote = [], None, ""
        for line in block.splitlines():
            if heredoc is not None:
                cur.append(line)
                if line.strip() == heredoc:
                    heredoc = None
            else:
                if not cur and not line.strip():
                    continue
                code, quote = scan(line, quote)
                cur.append(code)
                m = re.search(r"<<'?(\w+)'?\s*\\?$", code) if not quote else None
                if m:
                    heredoc = m.group(1)
            if heredoc is not None or quote or cur[-1].endswith(("\\", "|")):
                continue
            cmds.append("\n".join(cur))
            cur = []
        assert not cur, cur
    return cmds


@pytest.fixture
def tour(testdir):
    if os.geteuid() != 0:
        pytest.skip("needs root for its own network namespace")
    ns = NetNS()
    os.symlink(os.path.dirname(HATOD), os.path.join(testdir, "build"))
    m = Manager(testdir)
    env = {k: v for k, v in os.environ.items() if k not in ("HATO_CONFIG", "HATO_STATE")}
    env["NOTIFY_SOCKET"] = m.address
    log = open(os.path.join(testdir, "hatod.log"), "w+")
    p = subprocess.Popen(ns.cmd(["build/hatod", "-f"]), cwd=testdir, env=env,
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        assert m.recv() == {"READY": "1"}, open(log.name).read()
        env.pop("NOTIFY_SOCKET")
        yield ns, testdir, env, log
        p.terminate()
        assert p.wait(15) == 0, open(log.name).read()[-3000:]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()
        m.close()
        ns.close()


def run(ns, cwd, env, cmd):
    """Run one command with bash in the namespace."""
    return subprocess.run(ns.cmd(["bash", "-c", cmd]), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)


def run_typed(ns, cwd, env, cmd, answer, timeout=60):
    """Run one command on a terminal of its own (a pty), typing answer
    each time it asks for a password, as a person would.  (returncode,
    what the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.chdir(cwd)
            argv = ns.cmd(["bash", "-c", cmd])
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    shown, asked, deadline = b"", 0, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the other end closed
                    break
                if not chunk:
                    break
                shown += chunk
            prompts = len(re.findall(rb"[Pp]assword[^\n]*: ?$|[Pp]assword[^\n]*: ?\r?\n?$",
                                     shown, re.M))
            if prompts > asked:
                asked = prompts
                os.write(fd, answer.encode() + b"\n")
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode("utf-8", "replace")


def pending_ids(ns, cwd, env):
    """IDs of queued messages as `hato queue` lists them."""
    r = run(ns, cwd, env, "build/hato queue")
    return re.findall(r"^([0-9A-F]{20})\b", r.stdout, re.M)


def test_readme_tour_commands_work(tour):
    ns, cwd, env, log = tour
    cmds = tour_commands()
    assert len(cmds) >= 15, cmds
    ids = []
    for raw in cmds:
        cmd = raw
        cmd = cmd.replace("me:PASSWORD", "me:" + PASSWORD)
        cmd = cmd.replace("HATO_PASSWORD=...", "HATO_PASSWORD=" + PASSWORD)
        if cmd.startswith("sudo make install"):
            cmd = "make -s -C %s BUILD=%s DESTDIR=%s/dest install" % (
                shlex.quote(REPO), shlex.quote(os.path.dirname(HATOD)), shlex.quote(cwd))
        if re.search(r"\bID\b", cmd):
            if not ids:
                # messages for a remote domain wait in the queue (no DNS here)
                for _ in range(3):
                    r = run(ns, cwd, env, "printf 'Subject: q\\n\\nq\\n' | "
                            "build/hato send -f me@localhost far@example.org")
                    assert r.returncode == 0, r.stderr
                deadline = time.monotonic() + 15
                while len(pending_ids(ns, cwd, env)) < 3:
                    assert time.monotonic() < deadline, run(ns, cwd, env, "build/hato queue").stdout
                    time.sleep(0.1)
                ids = pending_ids(ns, cwd, env)
            # bounce and delete end a message: each gets one of its own
            qid = ids[0] if not re.search(r"\b(bounce|delete)\b", cmd) else ids.pop()
            cmd = re.sub(r"\bID\b", qid, cmd)
        if cmd.startswith("ls var/hato/mail/localhost/you/new/"):
            # "delivered at once": the three messages sent above, in a moment
            deadline = time.monotonic() + 10
            d = os.path.join(cwd, "var/hato/mail/localhost/you/new")
            while not (os.path.isdir(d) and len(os.listdir(d)) >= 3):
                assert time.monotonic() < deadline, open(log.name).read()[-3000:]
                time.sleep(0.05)
        if cmd.startswith(("build/hato route", "build/hato dkim check")):
            continue
        if "user add" in cmd or "--auth-user" in cmd:
            rc, out = run_typed(ns, cwd, env, cmd, PASSWORD)
        else:
            r = run(ns, cwd, env, cmd)
            rc, out = r.returncode, r.stdout + r.stderr
        assert rc == 0, "README command failed (%d): %s\n%s" % (rc, raw, out[-3000:])
        assert "Relay access denied" not in out
    # what the tour sent to you@localhost arrived, from each client
    d = os.path.join(cwd, "var/hato/mail/localhost/you/new")
    deadline = time.monotonic() + 10
    while len(os.listdir(d)) < 5:
        assert time.monotonic() < deadline, os.listdir(d)
        time.sleep(0.05)
    bodies = []
    for name in os.listdir(d):
        with open(os.path.join(d, name), "rb") as f:
            bodies.append(f.read())
    for text in [b"It works.", b"from Python", b"hello", b"done"]:
        assert any(text in b for b in bodies), text
    assert os.path.isfile(os.path.join(cwd, "dest/usr/local/share/man/man8/hatod.8"))
