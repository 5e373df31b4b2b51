"""Lookup tables from SQL ([sql]): which domains are local, which mailboxes
exist, what an alias expands to and who may send as an address, answered
by a real PostgreSQL (a private cluster made with initdb and started by the
test) and by SQLite, with the schema and queries shipped in docs/sql/.

Every test runs against both backends.  hatod has no local domain of its
own but "localhost" here: everything else comes from the database.
"""
import os
import re
import signal
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import HATOD, RawSMTP, parse_envelope
from sqldb import add_alias, add_domain, add_mailbox, make_db, sql_section
from test_auth import make_auth_hatod, smtp_client  # noqa: F401 (a fixture, and its client)

ALICE = "alice@sql.example"
ALICE_PW = "Al1ce-Sql-Pass-9q"


@pytest.fixture(params=["sqlite", "pgsql"])
def db(request, testdir):
    d = make_db(request.param, os.path.join(testdir, "db"))
    add_domain(d, "sql.example")
    add_mailbox(d, "alice@sql.example")
    yield d
    d.stop()


def start(make_hatod, db, delivery=None, **sql):
    return make_hatod(server={"local_domains": "localhost"}, extra=sql_section(db, **sql),
                      delivery=delivery)


def envelope_rcpts(h):
    """[(addr, local by table?)] of the only queued message."""
    (qid,) = h.queue_ids()
    text = h.envelope_text(qid)
    out = []
    for line in text.splitlines():
        if line.startswith("rcpt: "):
            out.append([line.split("addr=", 1)[1], False])
        elif line == "rcpt-local: yes":
            out[-1][1] = True
    return [tuple(r) for r in out]


def session(h):
    c = RawSMTP(h.host, h.port)
    assert c.cmd("EHLO client.example").startswith("250")
    assert c.cmd("MAIL FROM:<sender@remote.example>").startswith("250")
    return c


def test_local_user_delivered_to_its_maildir(make_hatod, db):
    h = start(make_hatod, db, delivery={"hold": "no"})
    with session(h) as c:
        assert c.cmd("RCPT TO:<alice@sql.example>").startswith("250 2.1.5")
        assert c.cmd("RCPT TO:<Alice+tag@SQL.example>").startswith("250 2.1.5")
        assert c.cmd("RCPT TO:<nobody@sql.example>").startswith("550 5.1.1")
        # a domain the table does not have is remote: no relaying for strangers
        assert c.cmd("RCPT TO:<alice@other.example>").startswith("554 5.7.1")
        assert c.cmd("DATA").startswith("354")
        c.send("Subject: from sql\r\n\r\nhello alice\r\n.\r\n")
        assert c.reply().startswith("250 2.0.0")
    deadline = time.monotonic() + 15
    while not h.maildir("alice", "sql.example") and time.monotonic() < deadline:
        time.sleep(0.05)
    (path,) = h.maildir("alice", "sql.example")
    with open(path, "rb") as f:
        assert b"hello alice" in f.read()
    assert "event=sql_failed" not in h.logs()


def test_recipient_marked_local_in_envelope(make_hatod, db):
    h = start(make_hatod, db)
    with smtplib.SMTP(h.host, h.port, timeout=15) as s:
        s.sendmail("sender@remote.example", ["alice@sql.example"], b"Subject: x\r\n\r\nx\r\n")
    assert envelope_rcpts(h) == [("<alice@sql.example>", True)]


def test_alias_to_remote_address(make_hatod, db):
    add_alias(db, "info@sql.example", "someone@remote.example, alice@sql.example")
    # postfixadmin's own shape: a mailbox's alias names itself, plus a forward
    add_alias(db, "alice@sql.example", "alice@sql.example,copy@remote.example")
    h = start(make_hatod, db)
    with smtplib.SMTP(h.host, h.port, timeout=15) as s:
        s.sendmail("sender@remote.example", ["info@sql.example"], b"Subject: x\r\n\r\nx\r\n")
    assert sorted(envelope_rcpts(h)) == [("<alice@sql.example>", True),
                                         ("<copy@remote.example>", False),
                                         ("<someone@remote.example>", False)]
    env = parse_envelope(h.envelope_text(h.queue_ids()[0]))
    assert set(env["orig"]) == {"<info@sql.example>"}


def test_alias_loop_and_unknown_target_refused(make_hatod, db):
    add_alias(db, "a@sql.example", "b@sql.example")
    add_alias(db, "b@sql.example", "a@sql.example")
    add_alias(db, "lost@sql.example", "nobody@sql.example")
    h = start(make_hatod, db)
    with session(h) as c:
        assert c.cmd("RCPT TO:<a@sql.example>").startswith("451 4.3.5")
        assert c.cmd("RCPT TO:<lost@sql.example>").startswith("550 5.1.1")


def test_domain_added_while_running(make_hatod, db):
    h = start(make_hatod, db)
    pid = h.proc.pid
    with session(h) as c:
        assert c.cmd("RCPT TO:<bob@new.example>").startswith("554 5.7.1")
    add_domain(db, "new.example")
    add_mailbox(db, "bob@new.example")
    # the "no" above is cached for cache_ttl (1s) at most; no reload, no signal
    deadline = time.monotonic() + 10
    while True:
        with session(h) as c:
            reply = c.cmd("RCPT TO:<bob@new.example>")
        if reply.startswith("250") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert reply.startswith("250 2.1.5"), reply
    assert h.proc.pid == pid and h.proc.poll() is None
    assert "signal=HUP" not in h.logs()


def test_database_stopped_mid_session(make_hatod, db):
    add_mailbox(db, "carol@sql.example")
    h = start(make_hatod, db, cache_ttl="0")
    with session(h) as c:
        assert c.cmd("RCPT TO:<alice@sql.example>").startswith("250 2.1.5")
        db.down()
        try:
            # nothing is accepted for want of an answer, nor refused for good
            for rcpt in ("carol@sql.example", "nobody@sql.example", "x@unknown.example"):
                assert c.cmd("RCPT TO:<%s>" % rcpt).startswith("451 4.3.0"), rcpt
            assert c.cmd("DATA").startswith("354")
            c.send("Subject: x\r\n\r\nx\r\n.\r\n")
            assert c.reply().startswith("250 2.0.0")
        finally:
            db.up()
        # the database is back: the same hatod uses it again
        assert c.cmd("MAIL FROM:<sender@remote.example>").startswith("250")
        assert c.cmd("RCPT TO:<carol@sql.example>").startswith("250 2.1.5")
        assert c.cmd("RCPT TO:<nobody@sql.example>").startswith("550 5.1.1")
    assert envelope_rcpts(h) == [("<alice@sql.example>", True)]
    assert "event=sql_failed backend=%s" % db.backend in h.logs()
    assert "event=rcpt_tempfail" in h.logs()


def test_pipelined_replies_wait_in_order(make_hatod, db):
    add_mailbox(db, "carol@sql.example")
    h = start(make_hatod, db, cache_ttl="0")
    with RawSMTP(h.host, h.port) as c:
        c.send("EHLO client.example\r\nMAIL FROM:<s@remote.example>\r\n"
               "RCPT TO:<alice@sql.example>\r\nRCPT TO:<nobody@sql.example>\r\n"
               "RCPT TO:<carol@sql.example>\r\nDATA\r\n")
        replies = c.replies(6)
        assert [r[:3] for r in replies] == ["250", "250", "250", "550", "250", "354"], replies
        c.send("Subject: x\r\n\r\nx\r\n.\r\nQUIT\r\n")
        assert c.reply().startswith("250 2.0.0")
        assert c.reply().startswith("221")
    assert sorted(envelope_rcpts(h)) == [("<alice@sql.example>", True),
                                         ("<carol@sql.example>", True)]


def test_client_gone_while_lookup_runs(make_hatod, db):
    """A client that leaves while its RCPT is being looked up: the session
    ends cleanly once the lookup is back (a clean exit checks for leaks)."""
    h = start(make_hatod, db, cache_ttl="0")
    for _ in range(20):
        with socket.create_connection((h.host, h.port), timeout=10) as s:
            s.sendall(b"EHLO c\r\nMAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@sql.example>\r\n")
    with session(h) as c:
        assert c.cmd("RCPT TO:<alice@sql.example>").startswith("250")


def test_bad_query_refused_at_start(testdir, db):
    conf = os.path.join(testdir, "bad.conf")
    with open(conf, "w") as f:
        f.write("[server]\nstate_dir = %s/state\n[listener smtp]\naddress = 127.0.0.1:1\n"
                % testdir)
        f.write(sql_section(db, mailbox_query="SELECT 1 FROM mailbox WHERE username = '%s'"))
    r = subprocess.run([HATOD, "-f", "-c", conf], capture_output=True, timeout=30)
    assert r.returncode != 0
    assert b"mailbox_query" in r.stderr and b"inside quotes" in r.stderr, r.stderr


def test_sender_owned_through_the_table(make_auth_hatod, db):
    """An authenticated user may send as the addresses the sender table
    gives its login (here: the aliases that deliver to it), besides its own;
    not as anyone else's; and a table that cannot answer is 451, not 553."""
    add_alias(db, "sales@sql.example", "bob@sql.example,alice@sql.example")
    add_alias(db, "boss@sql.example", "boss-mailbox@sql.example")
    h = make_auth_hatod(server={"local_domains": "localhost"}, users={ALICE: ALICE_PW},
                        extra_conf=sql_section(db, cache_ttl="0"))
    s = smtp_client(h, "sub")
    try:
        assert s.login(ALICE, ALICE_PW)[0] == 235
        assert s.mail("sales@sql.example")[0] == 250
        assert s.rset()[0] == 250
        assert s.mail("Sales+news@sql.example")[0] == 250
        assert s.rset()[0] == 250
        assert s.mail(ALICE)[0] == 250
        assert s.rset()[0] == 250
        code, msg = s.mail("boss@sql.example")
        assert (code, msg[:5]) == (553, b"5.7.1"), msg
        db.down()
        try:
            code, msg = s.mail("sales@sql.example")
            assert (code, msg[:5]) == (451, b"4.3.0"), msg
        finally:
            db.up()
        assert s.mail("sales@sql.example")[0] == 250
    finally:
        s.close()
    assert "event=sender_tempfail" in h.logs()


def test_reload_keeps_the_tables_and_names_their_keys(make_hatod, db):
    """[sql] is set up once: a reload that changes it keeps the running
    tables, says they need a restart, and lookups go on."""
    h = start(make_hatod, db)
    h.extra = sql_section(db, cache_ttl="5s")
    h.write_config()
    h.proc.send_signal(signal.SIGHUP)
    h.wait_log("event=reload result=ok")
    assert re.search(r'event=reload_restart_needed keys="[^"]*\[sql\] cache_ttl', h.logs())
    with session(h) as c:
        assert c.cmd("RCPT TO:<alice@sql.example>").startswith("250 2.1.5")
        assert c.cmd("RCPT TO:<nobody@sql.example>").startswith("550 5.1.1")
