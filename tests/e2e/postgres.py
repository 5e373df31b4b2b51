"""A private PostgreSQL cluster for the end-to-end tests: Debian's
postgresql (initdb, pg_ctl, postgres, psql from /usr/lib/postgresql/N/bin),
made with initdb in a directory of the test and started by the test on a
Unix socket of its own (no TCP), with trust authentication.  PostgreSQL
refuses to run as root, so when the tests run as root the cluster belongs
to Debian's `postgres` user (runuser).  No system cluster is used or
touched; PostgreSQL missing or not starting is a test failure, never a
skip: scripts/setup.sh installs it.
"""
import glob
import os
import pwd
import subprocess

import pytest


def pg_bindir():
    """The newest /usr/lib/postgresql/N/bin with initdb in it."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                  key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not dirs:
        pytest.fail("PostgreSQL not found: install postgresql (scripts/setup.sh)")
    return os.path.dirname(dirs[-1])


class Postgres:
    """One cluster: root/data, its socket in root/run, port as the socket's
    name (.s.PGSQL.PORT).  conninfo is what hato's [sql] database takes."""

    def __init__(self, root, port):
        self.root = root
        self.data = os.path.join(root, "data")
        self.sockdir = os.path.join(root, "run")
        self.port = port
        self.log_path = os.path.join(root, "postgres.log")
        self.bindir = pg_bindir()
        self.as_user = []
        os.makedirs(self.sockdir, exist_ok=True)
        os.chmod(root, 0o755)
        os.chmod(self.sockdir, 0o755)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for d in (root, self.sockdir):
                os.chown(d, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.conninfo = "host=%s port=%d dbname=mail user=postgres" % (self.sockdir, port)

    def _run(self, *argv, check=True):
        return subprocess.run(self.as_user + [os.path.join(self.bindir, argv[0]), *argv[1:]],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=check,
                              timeout=120)

    def init(self):
        r = self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--no-sync", check=False)
        if r.returncode != 0:
            pytest.fail("initdb failed:\n%s" % r.stdout.decode(errors="replace"))
        return self

    def start(self):
        opts = "-k %s -p %d -c listen_addresses='' -c fsync=off" % (self.sockdir, self.port)
        r = self._run("pg_ctl", "-D", self.data, "-l", self.log_path, "-o", opts, "-w",
                      "-t", "60", "start", check=False)
        if r.returncode != 0:
            pytest.fail("pg_ctl start failed:\n%s\n%s" % (r.stdout.decode(errors="replace"),
                                                          self.logs()))
        return self

    def stop(self, mode="fast"):
        """pg_ctl stop: it signals the postmaster this cluster's pid file names,
        the one this test started."""
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop",
                      check=False)

    def psql(self, sql, db="mail"):
        """Run SQL (statements separated by ;) and return psql's output."""
        r = subprocess.run([os.path.join(self.bindir, "psql"), "-h", self.sockdir, "-p",
                            str(self.port), "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1",
                            "-qAt", "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if r.returncode != 0:
            raise AssertionError("psql failed: %s" % r.stdout.decode(errors="replace"))
        return r.stdout.decode()

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""
