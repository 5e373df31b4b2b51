"""Two machines' worth of hato, shown on one (docs/scaling.md): HAProxy in
front of two hatod instances, each with its own state directory; users and
domains in one shared PostgreSQL, which hatod ([sql]) and Dovecot (its SQL
userdb, Debian's dovecot-pgsql) both ask; the mailboxes in one Dovecot,
reached over LMTP.  Everything is real and started by the test on loopback:
a private PostgreSQL cluster, a private Dovecot, haproxy, two hatods.

The tests show that mail sent through the balancer reaches the mailbox
through either node; that a node killed with kill -9 in the middle of a
bounded load loses no acknowledged message and drains its queue once it
is restarted; and that a user added in PostgreSQL can receive mail on both
nodes without a reload.
"""
import glob
import os
import re
import smtplib
import subprocess
import threading
import time

import pytest

from conftest import free_port, wait_port
from dovecot import DovecotProcess, run_as
from sqldb import add_domain, add_mailbox, make_db, sql_section
from test_proxy import HAPROXY, HAProxy

DOMAIN = "scale.example"

DOVECOT_CONF = """\
instance_name = hato-scale-{tag}
base_dir = {root}/run
state_dir = {root}/state
protocols = lmtp
ssl = no
log_path = {root}/dovecot.log
mail_location = maildir:{root}/mail/%d/%n
{run_as}
passdb {{
  driver = sql
  args = {root}/dovecot-sql.conf.ext
}}
userdb {{
  driver = sql
  args = {root}/dovecot-sql.conf.ext
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
"""

# Dovecot asks the same table hatod does (its own query syntax and quoting)
DOVECOT_SQL = """\
driver = pgsql
connect = {conninfo}
user_query = SELECT {uid} AS uid, {gid} AS gid FROM mailbox WHERE username = '%u' AND active
password_query = SELECT username AS user, password FROM mailbox WHERE username = '%u' AND active
"""

HAPROXY_CONF = """\
global
    maxconn 200
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
frontend mx
    bind 127.0.0.1:{front}
    default_backend hato
backend hato
    balance roundrobin
    option smtpchk EHLO haproxy.scale.example
{servers}
"""

HAPROXY_SERVER = ("    server {name} 127.0.0.1:{port} send-proxy-v2 check check-send-proxy "
                  "inter 300ms fall 1 rise 2\n")


class Dovecot(DovecotProcess):
    """A private Dovecot serving LMTP, its users from the PostgreSQL of db."""

    greeting = b"220 "
    packages = "dovecot-core, dovecot-lmtpd and dovecot-pgsql"

    def __init__(self, root, db):
        super().__init__(root, "lmtp")
        uid, gid, run_as_lines = run_as()
        os.makedirs(os.path.join(root, "mail"))
        os.chown(os.path.join(root, "mail"), uid, gid)
        with open(os.path.join(root, "dovecot-sql.conf.ext"), "w") as f:
            f.write(DOVECOT_SQL.format(conninfo=db.database, uid=uid, gid=gid))
        with open(self.conf, "w") as f:
            f.write(DOVECOT_CONF.format(root=root, tag="%d-%d" % (os.getpid(), id(self)),
                                        run_as=run_as_lines))

    def messages(self, user):
        """The bytes of every message in user@DOMAIN's Maildir."""
        out = []
        for sub in ("new", "cur"):
            for path in glob.glob(os.path.join(self.root, "mail", DOMAIN, user, sub, "*")):
                with open(path, "rb") as f:
                    out.append(f.read())
        return out


class Balancer(HAProxy):
    """haproxy balancing one front port over the nodes (PROXY v2, SMTP
    health checks, a refused connection redispatched to the other node)."""

    def __init__(self, root, nodes):
        if not os.access(HAPROXY, os.X_OK):
            pytest.fail("%s not found: install haproxy (scripts/setup.sh)" % HAPROXY)
        self.conf = os.path.join(root, "haproxy.cfg")
        self.out_path = os.path.join(root, "haproxy.out")
        self.port = free_port()
        servers = "".join(HAPROXY_SERVER.format(name=name, port=h.ports["mx"])
                          for name, h in nodes.items())
        with open(self.conf, "w") as f:
            f.write(HAPROXY_CONF.format(front=self.port, servers=servers))
        self.out = open(self.out_path, "ab")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.conf],
                                     stdout=self.out, stderr=subprocess.STDOUT)
        try:
            wait_port("127.0.0.1", self.port, proc=self.proc)
        except RuntimeError as e:
            pytest.fail("haproxy did not start: %s\n%s" % (e, self.logs()))


class Layout:
    """The whole layout; nodes["n1"], nodes["n2"] are Hatods with
    .ports["mx"] (behind the balancer) and .ports["direct"]."""

    def __init__(self, testdir, make_hatod):
        self.db = make_db("pgsql", os.path.join(testdir, "pg"))
        add_domain(self.db, DOMAIN)
        for user in ("alice", "bob"):
            add_mailbox(self.db, "%s@%s" % (user, DOMAIN))
        root = os.path.join(testdir, "dovecot")
        os.mkdir(root)
        os.chmod(root, 0o755)
        self.dovecot = Dovecot(root, self.db).start()
        self.nodes = {}
        for name in ("n1", "n2"):
            ports = {"mx": free_port(), "direct": free_port()}
            listeners = {
                "mx": {"address": "127.0.0.1:%d" % ports["mx"], "proxy_protocol": "yes",
                       "proxy_networks": "127.0.0.1/32"},
                "direct": {"address": "127.0.0.1:%d" % ports["direct"]},
            }
            h = make_hatod(server={"hostname": "%s.%s" % (name, DOMAIN),
                                   "local_domains": "localhost"},
                           listeners=listeners, limits={"error_delay_ms": 0},
                           delivery={"hold": "no", "lmtp": "unix:%s" % self.dovecot.socket,
                                     "retry_schedule": "1s"},
                           extra=sql_section(self.db, cache_ttl="1s", timeout="2s"))
            h.ports = ports
            self.nodes[name] = h
        bdir = os.path.join(testdir, "haproxy")
        os.mkdir(bdir)
        self.balancer = Balancer(bdir, self.nodes)

    def debug(self):
        """The ends of every log, for a failure's message."""
        out = ""
        for name, h in self.nodes.items():
            # without the balancer's health checks, which are most of it
            lines = [ln for ln in h.logs().splitlines()
                     if not re.search(r"event=(proxy|connect|disconnect) ", ln)]
            out += "\n--- %s:\n%s" % (name, "\n".join(lines)[-4000:])
        out += "\n--- dovecot:\n%s" % self.dovecot.logs()[-3000:]
        out += "\n--- haproxy:\n%s" % self.balancer.logs()[-2000:]
        return out

    def stop(self):
        self.balancer.stop()
        self.dovecot.stop()
        self.db.stop()


@pytest.fixture
def layout(testdir, make_hatod):
    lay = Layout(testdir, make_hatod)
    yield lay
    lay.stop()


def message(tag, to="alice"):
    return ("From: load@client.example\r\nTo: %s@%s\r\nSubject: %s\r\n\r\nbody of %s\r\n"
            % (to, DOMAIN, tag, tag)).encode()


def send(port, tag, to="alice"):
    """One message in its own session; True when it was acknowledged (250)."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=15) as s:
            s.sendmail("load@client.example", ["%s@%s" % (to, DOMAIN)], message(tag, to))
        return True
    except (smtplib.SMTPException, OSError):
        return False


def received_by(msg):
    """The node (n1, n2) whose Received: header took the message in."""
    m = re.search(rb"by (n[12])\." + DOMAIN.encode(), msg)
    return m.group(1).decode() if m else None


def wait_for(pred, what, timeout=60.0, layout=None):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out waiting for %s%s" % (
            what, layout.debug() if layout is not None else "")
        time.sleep(0.1)


def tags_in(dovecot, user="alice"):
    out = []
    for msg in dovecot.messages(user):
        m = re.search(rb"^Subject: (\S+)", msg, re.M)
        if m:
            out.append(m.group(1).decode())
    return out


def test_mail_through_the_balancer_reaches_the_mailbox_through_either_node(layout):
    tags = ["either-%d" % i for i in range(8)]
    for tag in tags:
        assert send(layout.balancer.port, tag)
    wait_for(lambda: sorted(tags_in(layout.dovecot)) == sorted(tags), "all 8 in Dovecot", layout=layout)
    nodes = {received_by(m) for m in layout.dovecot.messages("alice")}
    assert nodes == {"n1", "n2"}, nodes  # round robin: both took mail in
    for name, h in layout.nodes.items():
        # each node's client, as the balancer said, and LMTP to the one Dovecot
        assert "proxy=127.0.0.1" in h.logs()
        assert "status=delivered" in h.logs(), name
        wait_for(lambda: h.queue_ids() == [], "%s's queue to empty" % name)
    assert "event=sql_failed" not in layout.nodes["n1"].logs() + layout.nodes["n2"].logs()


def test_node_killed_mid_load_loses_no_acknowledged_message(layout):
    """Dovecot is stopped first, so that both nodes keep what they accept in
    their queues; n1 is killed with SIGKILL while two clients send through
    the balancer (120 messages, bounded).  Every message a client got a 250
    for must reach the mailbox once Dovecot is back and n1 is restarted
    with the same state directory."""
    n1, n2 = layout.nodes["n1"], layout.nodes["n2"]
    layout.dovecot.stop()
    acked, lock = [], threading.Lock()
    killed = threading.Event()
    at_kill = []
    total, per_client = 120, 60

    def client(k):
        for i in range(per_client):
            tag = "load-%d-%d" % (k, i)
            if send(layout.balancer.port, tag):
                with lock:
                    acked.append(tag)
                    if len(acked) >= total // 3 and not killed.is_set():
                        killed.set()
                        n1.kill9()
                        at_kill.append(len(acked))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads)
    assert killed.is_set()
    assert n1.proc.poll() is not None  # dead, by SIGKILL
    # n1 kept what it acknowledged before dying, in its own queue
    assert n1.queue_ids(), "n1 died with an empty queue: nothing shown"
    assert len(acked) > at_kill[0] + total // 4, (at_kill, len(acked))  # n2 took the rest
    layout.dovecot.start()
    n1.start()
    wait_for(lambda: set(acked) <= set(tags_in(layout.dovecot)),
             "every acknowledged message in the mailbox", timeout=120)
    for name, h in layout.nodes.items():
        wait_for(lambda: h.queue_ids() == [], "%s's queue to drain" % name, timeout=60)
    got = tags_in(layout.dovecot)
    # nothing acknowledged is missing, and nothing came twice: Dovecot was
    # down when n1 died, so no LMTP delivery was cut between its 250 and the
    # queue file's removal
    assert set(acked) <= set(got)
    assert len(got) == len(set(got)), sorted(got)
    log = n1.logs()[n1.log_start:]
    assert "event=started" in log and "status=delivered" in log
    by = {received_by(m) for m in layout.dovecot.messages("alice")}
    assert by == {"n1", "n2"}


def test_user_added_in_postgresql_receives_on_both_nodes_without_reload(layout):
    pids = {name: h.proc.pid for name, h in layout.nodes.items()}
    for name, h in layout.nodes.items():
        with smtplib.SMTP("127.0.0.1", h.ports["direct"], timeout=15) as s:
            s.ehlo("client.example")
            s.mail("new@client.example")
            code, _ = s.rcpt("carol@%s" % DOMAIN)
            assert code == 550, name
    add_mailbox(layout.db, "carol@%s" % DOMAIN)
    for name, h in layout.nodes.items():
        tag = "carol-via-%s" % name

        def accepted(h=h, tag=tag):
            return send(h.ports["direct"], tag, to="carol")
        wait_for(accepted, "%s to accept carol (cache_ttl is 1s)" % name, timeout=15)
    wait_for(lambda: len(layout.dovecot.messages("carol")) == 2, "carol's two messages")
    assert sorted(tags_in(layout.dovecot, "carol")) == ["carol-via-n1", "carol-via-n2"]
    assert {received_by(m) for m in layout.dovecot.messages("carol")} == {"n1", "n2"}
    for name, h in layout.nodes.items():
        assert h.proc.pid == pids[name] and h.proc.poll() is None
        assert "signal=HUP" not in h.logs()
