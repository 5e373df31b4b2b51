"""`hato user add/passwd/del/list` against a real users file: the file is
mode 0600 and holds yescrypt hashes (checked with libcrypt itself, never the
password), exit codes follow sysexits, the password prompt runs on a real
pty with echo off, and a bad configuration exits 78 (EX_CONFIG).
"""
import ctypes
import ctypes.util
import os
import pty
import pwd
import select
import stat
import subprocess
import time

import pytest

from conftest import HATO

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_CANTCREAT, EX_CONFIG = 64, 65, 67, 73, 78

_libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
_libcrypt.crypt.restype = ctypes.c_char_p
_libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]


def crypt_matches(password, hash_):
    """Does password match hash_, by libcrypt's crypt(3)?"""
    out = _libcrypt.crypt(password.encode(), hash_.encode())
    return out is not None and out.decode() == hash_


def clean_env():
    return {k: v for k, v in os.environ.items() if k not in ("HATO_CONFIG", "HATO_STATE")}


class Users:
    """A config whose state_dir does not exist yet, and helpers around it."""

    def __init__(self, root):
        self.state = os.path.join(root, "state")
        self.path = os.path.join(self.state, "users")
        self.conf = os.path.join(root, "hato.conf")
        with open(self.conf, "w") as f:
            f.write("[server]\nstate_dir = %s\n[listener smtp]\naddress = 127.0.0.1:2525\n"
                    % self.state)

    def run(self, *args, stdin=None, **kw):
        return subprocess.run([HATO, "-c", self.conf, "user", *args],
                              input=stdin, capture_output=True, timeout=30, env=clean_env(), **kw)

    def add(self, name, password):
        r = self.run("add", name, "--stdin", stdin=password.encode() + b"\n")
        assert r.returncode == 0, r.stderr
        return r

    def hashes(self):
        with open(self.path) as f:
            return dict(line.split(":", 1) for line in f.read().splitlines())

    def names(self):
        r = self.run("list")
        assert r.returncode == 0, r.stderr
        return r.stdout.decode().splitlines()


@pytest.fixture
def users(testdir):
    return Users(testdir)


def one_line_error(r, code, text):
    """r failed with code and one 'hato: ...' line containing text."""
    err = r.stderr.decode()
    assert r.returncode == code, (r.returncode, err)
    assert err.startswith("hato: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert text in err, err


def test_add_then_list_file_is_0600_with_yescrypt(users):
    r = users.add("alice", "s3cret-Alice!")
    assert r.stdout == b"" and r.stderr == b""
    assert users.names() == ["alice"]
    st = os.stat(users.path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(users.state).st_mode) == 0o700  # created for us
    with open(users.path) as f:
        text = f.read()
    assert "s3cret" not in text
    h = users.hashes()["alice"]
    assert h.startswith("$y$j9T$")
    assert crypt_matches("s3cret-Alice!", h)
    assert not crypt_matches("s3cret-Alice", h)


def daemon_user():
    """The daemon user's passwd entry; the test is skipped unless it runs
    as root (CI does), since only root can give files to that user."""
    if os.geteuid() != 0:
        pytest.skip("only root can give files to the daemon user")
    try:
        return pwd.getpwnam("hato")
    except KeyError:
        pytest.fail("user hato is missing: scripts/setup.sh creates it")


def test_created_file_belongs_to_daemon_user_when_root(users):
    daemon = daemon_user()
    users.add("alice", "pw-one")
    assert os.stat(users.path).st_uid == daemon.pw_uid
    assert os.stat(users.state).st_uid == daemon.pw_uid


def test_every_file_hato_makes_belongs_to_daemon_user_when_root(users):
    """add, passwd, add again and del, run as root: the users file and its
    edit lock (users.lock), like the state directory, belong to the daemon
    user and group, and nothing in the state directory is root's."""
    daemon = daemon_user()
    users.add("alice", "pw-one")
    assert users.run("passwd", "alice", "--stdin", stdin=b"pw-two\n").returncode == 0
    users.add("bob", "pw-three")
    assert users.run("del", "bob").returncode == 0
    names = sorted(os.listdir(users.state))
    assert names == ["users", "users.lock"], names
    for p in [users.state] + [os.path.join(users.state, n) for n in names]:
        st = os.lstat(p)
        assert (st.st_uid, st.st_gid) == (daemon.pw_uid, daemon.pw_gid), (p, st)


def test_missing_daemon_user_is_said_when_root(users):
    """As root with a [server] user that does not exist, hato says why the
    files it makes cannot be given to hatod's user, and fails (67)."""
    daemon_user()
    with open(users.conf, "a") as f:
        f.write("[server]\nuser = no-such-hato-user\n")
    r = users.run("add", "alice", "--stdin", stdin=b"pw-one\n")
    err = r.stderr.decode()
    assert r.returncode == EX_NOUSER, (r.returncode, err)
    assert "stays owned by root: there is no user no-such-hato-user" in err, err


def test_stdin_takes_one_line_newline_stripped(users):
    r = users.run("add", "bob@example.org", "--stdin", stdin=b"with space \n")
    assert r.returncode == 0, r.stderr
    h = users.hashes()["bob@example.org"]
    assert crypt_matches("with space ", h)
    assert not crypt_matches("with space \n", h)


def test_add_twice_fails(users):
    users.add("alice", "first")
    before = users.hashes()
    r = users.run("add", "alice", "--stdin", stdin=b"second\n")
    one_line_error(r, EX_CANTCREAT, "alice exists already")
    assert users.hashes() == before


def test_passwd_changes_the_hash(users):
    users.add("alice", "old-password")
    users.add("bob", "bobs-password")
    old = users.hashes()
    r = users.run("passwd", "alice", "--stdin", stdin=b"new-password\n")
    assert r.returncode == 0, r.stderr
    new = users.hashes()
    assert new["alice"] != old["alice"]
    assert crypt_matches("new-password", new["alice"])
    assert not crypt_matches("old-password", new["alice"])
    assert new["bob"] == old["bob"]


def test_passwd_of_missing_user_fails_67(users):
    users.add("alice", "pw")
    r = users.run("passwd", "carol", "--stdin", stdin=b"pw\n")
    one_line_error(r, EX_NOUSER, "no such user carol")


def test_del_removes_and_missing_user_is_67(users):
    users.add("alice", "pw-a")
    users.add("bob", "pw-b")
    r = users.run("del", "alice")
    assert r.returncode == 0, r.stderr
    assert users.names() == ["bob"]
    r = users.run("del", "alice")
    one_line_error(r, EX_NOUSER, "no such user alice")
    assert stat.S_IMODE(os.stat(users.path).st_mode) == 0o600


def test_del_without_a_file_is_67(users):
    r = users.run("del", "alice")
    one_line_error(r, EX_NOUSER, "no such user alice")
    assert not os.path.exists(users.path)


def test_list_is_sorted_and_empty_without_file(users):
    assert users.names() == []
    for name in ("zoe", "Bob", "alice@example.org", "alice", "0day"):
        users.add(name, "pw-" + name)
    assert users.names() == ["0day", "Bob", "alice", "alice@example.org", "zoe"]


def test_usage_errors_are_64(users):
    for args in (["add"], ["add", "a", "b"], ["frobnicate", "x"], [], ["list", "x"],
                 ["del", "alice", "--stdin"], ["add", "alice", "--bogus"]):
        r = users.run(*args)
        one_line_error(r, EX_USAGE, "usage")
    r = users.run("add", "a:b", "--stdin", stdin=b"pw\n")
    one_line_error(r, EX_USAGE, "bad user name")
    r = users.run("add", "x" * 65, "--stdin", stdin=b"pw\n")
    one_line_error(r, EX_USAGE, "bad user name")
    assert not os.path.exists(users.path)


def test_empty_password_is_refused(users):
    for data in (b"", b"\n"):
        r = users.run("add", "alice", "--stdin", stdin=data)
        one_line_error(r, EX_DATAERR, "empty password")
    assert not os.path.exists(users.path)


def test_malformed_users_file_is_named_with_its_line(users):
    users.add("alice", "pw")
    with open(users.path, "a") as f:
        f.write("bob has no colon\n")
    for args, stdin in ((["list"], None), (["add", "carol", "--stdin"], b"pw\n")):
        r = users.run(*args, stdin=stdin)
        one_line_error(r, EX_DATAERR, "%s:2: " % users.path)


def test_no_terminal_without_stdin_flag(users):
    # a new session has no controlling terminal: /dev/tty cannot be opened
    r = users.run("add", "alice", stdin=b"pw\n", start_new_session=True)
    one_line_error(r, EX_USAGE, "--stdin")
    assert not os.path.exists(users.path)


def test_wrong_config_exits_78(users, testdir):
    r = subprocess.run([HATO, "-c", os.path.join(testdir, "missing.conf"), "user", "list"],
                       capture_output=True, timeout=30, env=clean_env())
    one_line_error(r, EX_CONFIG, "missing.conf")
    bad = os.path.join(testdir, "bad.conf")
    with open(bad, "w") as f:
        f.write("[server]\nno_such_key = 1\n")
    env = dict(clean_env(), HATO_CONFIG=bad)
    r = subprocess.run([HATO, "user", "add", "alice", "--stdin"], input=b"pw\n",
                       capture_output=True, timeout=30, env=env)
    one_line_error(r, EX_CONFIG, "no_such_key")


def pty_run(users, args, answers, timeout=30):
    """Run hato user ARGS on a new pty (its controlling terminal), answer
    each (prompt, text) in turn once the prompt shows, and return
    (exit code, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is its controlling terminal
        try:
            os.execve(HATO, [HATO, "-c", users.conf, "user", *args], clean_env())
        finally:
            os._exit(127)
    seen = b""
    deadline = time.monotonic() + timeout

    def read_more():
        nonlocal seen
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            raise AssertionError("hato said nothing more; terminal so far: %r" % seen)
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child is gone
            chunk = b""
        seen += chunk
        return chunk

    try:
        for prompt, text in answers:
            while prompt not in seen:
                if not read_more():
                    raise AssertionError("no prompt %r; terminal: %r" % (prompt, seen))
            # the prompt shows only after echo is off: type now
            os.write(fd, text + b"\n")
        while read_more():
            pass
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), seen


def test_password_prompt_on_a_pty_without_echo(users):
    secret = b"Pty-Secret-42"
    code, shown = pty_run(users, ["add", "bob"],
                          [(b"Password for bob: ", secret), (b"Retype the password: ", secret)])
    assert code == 0, shown
    assert secret not in shown  # echo was off for both answers
    assert users.names() == ["bob"]
    assert crypt_matches(secret.decode(), users.hashes()["bob"])

    code, shown = pty_run(users, ["passwd", "bob"],
                          [(b"Password for bob: ", b"Second-Secret"),
                           (b"Retype the password: ", b"Second-Secret")])
    assert code == 0, shown
    assert b"Second-Secret" not in shown
    assert crypt_matches("Second-Secret", users.hashes()["bob"])


def test_password_prompt_mismatch_adds_nobody(users):
    code, shown = pty_run(users, ["add", "bob"],
                          [(b"Password for bob: ", b"one-Secret"),
                           (b"Retype the password: ", b"two-Secret")])
    assert code == EX_DATAERR, shown
    assert b"do not match" in shown
    assert b"one-Secret" not in shown and b"two-Secret" not in shown
    assert not os.path.exists(users.path)
