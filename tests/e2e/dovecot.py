"""A private Dovecot master for the end-to-end tests: `dovecot -c CONF -F`
(Debian's dovecot-core) with everything - base_dir, state_dir, log, users -
inside the test directory, stopped by its PID.  No system Dovecot is used
or touched; Dovecot missing or not starting is a test failure, never a
skip.  Subclasses write the config and say which socket answers first with
what (LMTP's 220, the auth server's VERSION)."""
import grp
import os
import pwd
import shutil
import socket
import subprocess
import time

import pytest

from conftest import stop_process

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"


def run_as():
    """(uid, gid, config lines): mail and services run as hatod's `hato`
    user when we are root (Dovecot never stores mail as root), else as
    ourselves, with Dovecot's internal users set to us too."""
    if os.geteuid() == 0:
        pw = pwd.getpwnam("hato")
        return pw.pw_uid, pw.pw_gid, ""
    me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    return os.getuid(), os.getgid(), ("default_internal_user = %s\ndefault_internal_group = %s\n"
                                      "default_login_user = %s\n" % (me, group, me))


class DovecotProcess:
    """One Dovecot master; ready once self.socket greets with self.greeting."""

    greeting = b""
    packages = "dovecot-core"

    def __init__(self, root, socket_name):
        self.root = root
        self.conf = os.path.join(root, "dovecot.conf")
        self.socket = os.path.join(root, "run", socket_name)
        self.log_path = os.path.join(root, "dovecot.log")
        self.out_path = os.path.join(root, "dovecot.out")
        self.proc = None

    def start(self, timeout=15.0):
        for tool in (DOVECOT, DOVEADM):
            if not os.access(tool, os.X_OK):
                pytest.fail("%s not found: install %s (scripts/setup.sh)" % (tool, self.packages))
        self.out = open(self.out_path, "ab")
        self.proc = subprocess.Popen([DOVECOT, "-c", self.conf, "-F"],
                                     stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail("dovecot exited with %d:\n%s" % (self.proc.returncode, self.logs()))
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(5)
                    s.connect(self.socket)
                    if s.recv(512).startswith(self.greeting):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("dovecot's socket %s did not answer:\n%s" % (self.socket, self.logs()))
            time.sleep(0.05)

    def stop(self):
        """SIGTERM to our master (by its PID): it stops its own children."""
        if self.proc is None or self.proc.poll() is not None:
            return
        stop_process(self.proc)
        self.out.close()

    def logs(self):
        text = ""
        for p in (self.out_path, self.log_path):
            if os.path.exists(p):
                with open(p, "rb") as f:
                    text += f.read().decode("utf-8", "replace")
        return text
