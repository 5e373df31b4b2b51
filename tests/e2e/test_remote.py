"""Remote delivery: mail for other domains leaves hatod's queue over SMTP.

The next hop is either a second real hatod (its Maildir shows what
arrived) or the scripted server of smtpserver.py (it answers as the test
tells it and records what it got).  hatod A finds the next hop through
[transport], or [remote] relayhost for the smarthost tests.
"""
import os
import re
import smtplib
import subprocess
import time

import pytest

from conftest import HATO, Hatod, Zone, free_port, lf
from smtpserver import ScriptedSMTP

MSG = (b"From: alice@test.example\r\nTo: bob@example.net\r\nSubject: relay\r\n\r\n"
       b"first line\r\n.leading dot\r\nlast line\r\n")


def relay_hatod(make_hatod, transport=None, remote=None, tls_policy=None, server=None,
                delivery=None, extra=""):
    """hatod A: accepts mail from loopback for any domain and delivers it."""
    lines = []
    if transport:
        lines.append("[transport]")
        lines += ["%s = %s" % kv for kv in transport.items()]
    if tls_policy:
        lines.append("[tls_policy]")
        lines += ["%s = %s" % kv for kv in tls_policy.items()]
    lines.append("[remote]")
    lines += ["%s = %s" % kv for kv in (remote or {}).items()]
    srv = {"hostname": "a.test", "trusted_networks": "127.0.0.0/8"}
    srv.update(server or {})
    dlv = {"hold": "no", "retry_schedule": "1s"}
    dlv.update(delivery or {})
    return make_hatod(server=srv, delivery=dlv,
                      extra="[domain localhost]\nmailboxes = *\n" + "\n".join(lines) + "\n" + extra)


def next_hatod(make_hatod, tls=None, extra=None, users=(), domains="example.net"):
    """hatod B: the final destination for example.net; its smtp listener
    with tls (none, starttls, implicit) and auth when users are given."""
    port = free_port()
    listener = {"address": "127.0.0.1:%d" % port}
    if tls:
        listener["tls"] = tls
    if users:
        listener["auth"] = "required"
    kw = {"server": {"hostname": "b.test", "local_domains": domains},
          "delivery": {"hold": "no"}, "listeners": {"smtp": listener}}
    if extra is not None:
        kw["extra"] = extra
    b = make_hatod(**kw)
    b.port = port
    return b


def send(h, rcpts, msg=MSG, sender="alice@test.example", **kw):
    with smtplib.SMTP(h.host, h.port, timeout=10) as s:
        return s.sendmail(sender, rcpts, msg, **kw)


def wait_for(fn, timeout=15.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def headers_of(raw):
    """The header of a message from a Maildir (LF lines)."""
    return raw.split(b"\n\n", 1)[0].decode()


def test_relay_to_second_hatod(make_hatod):
    b = next_hatod(make_hatod, tls="none")
    a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % b.port},
                    remote={"tls": "none"})
    send(a, ["bob@example.net"])
    files = wait_for(lambda: b.maildir("bob", "example.net"), what="the message at B")
    raw = open(files[0], "rb").read()
    # the message arrives intact (LF lines in B's Maildir), under B's and A's
    # trace headers in that order
    assert raw.endswith(lf(MSG))
    received = [l for l in headers_of(raw).split("\n") if l.startswith("Received:")]
    assert len(received) == 2
    assert "by b.test" in headers_of(raw).split("Received:")[1]
    assert "by a.test" in headers_of(raw).split("Received:")[2]
    a.wait_log("event=removed")
    assert a.queue_ids() == []
    log = a.logs()
    assert "status=delivered" in log
    assert "relay=127.0.0.1[127.0.0.1]:%d tls=none" % b.port in log


def test_relay_many_recipients_one_transaction(make_hatod):
    hop = ScriptedSMTP()
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        send(a, ["bob@example.net", "carol@example.net", "dave@example.net"])
        wait_for(lambda: hop.transactions, what="the transaction")
        a.wait_log("event=removed")
        assert len(hop.transactions) == 1
        t = hop.transactions[0]
        assert t.mail.startswith("MAIL FROM:<alice@test.example>")
        assert t.accepted == ["bob@example.net", "carol@example.net", "dave@example.net"]
        assert t.data.endswith(MSG)
        # SIZE= is what goes out, our Received: header included
        assert " SIZE=%d" % len(t.data) in t.mail and len(t.data) > len(MSG), t.mail
    finally:
        hop.close()


def test_relay_without_pipelining_or_esmtp(make_hatod):
    hop = ScriptedSMTP(ehlo=())
    hop.ehlo_reply = "502 5.5.1 EHLO not here"
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        send(a, ["bob@example.net", "carol@example.net"])
        wait_for(lambda: hop.transactions, what="the transaction")
        assert any(c.startswith("HELO a.test") for c in hop.commands)
        t = hop.transactions[0]
        assert t.mail == "MAIL FROM:<alice@test.example>"  # no ESMTP parameters after HELO
        assert t.data.endswith(MSG)
    finally:
        hop.close()


@pytest.mark.parametrize("pipelining", [True, False])
def test_2xx_to_data_is_no_delivery(make_hatod, pipelining):
    """A next hop that answers DATA with 250 instead of 354 has the message
    text still to come: nothing is delivered, the recipients are deferred."""
    hop = ScriptedSMTP(ehlo=("PIPELINING", "8BITMIME") if pipelining else ("8BITMIME",))
    hop.data_reply = "250 2.0.0 thanks"
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port},
                        delivery={"retry_schedule": "1h"})
        send(a, ["bob@example.net", "carol@example.net"])
        a.wait_log("rcpt=<carol@example.net> status=deferred")
        log = a.logs()
        assert "status=delivered" not in log
        assert log.count("esc=4.4.2") == 2 and "answered DATA with 250, not 354" in log
        assert len(a.queue_ids()) == 1 and hop.transactions == []
    finally:
        hop.close()


def test_deferred_then_delivered_on_retry(make_hatod):
    hop = ScriptedSMTP()
    hop.data_end = ["451 4.3.0 try again later", "250 2.0.0 queued"]
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        send(a, ["bob@example.net"])
        a.wait_log("status=deferred")
        assert 'esc=4.3.0 attempts=1' in a.logs()
        assert "said: 451 4.3.0 try again later" in a.logs()
        wait_for(lambda: hop.transactions, timeout=20, what="the retry")
        a.wait_log("status=delivered", timeout=10)
        a.wait_log("event=removed")
    finally:
        hop.close()


def test_rcpt_refused_one_of_two(make_hatod):
    hop = ScriptedSMTP()
    hop.rcpt = lambda addr: "550 5.1.1 no such user" if addr.startswith("nobody") else "250 ok"
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        send(a, ["bob@example.net", "nobody@example.net"])
        wait_for(lambda: hop.transactions, what="the transaction")
        a.wait_log("event=removed")
        assert hop.transactions[0].accepted == ["bob@example.net"]
        log = a.logs()
        assert "rcpt=<nobody@example.net> status=failed esc=5.1.1" in log
        assert "rcpt=<bob@example.net> status=delivered" in log
    finally:
        hop.close()


def test_8bit_message_to_server_without_8bitmime_fails(make_hatod):
    hop = ScriptedSMTP(ehlo=("PIPELINING",))
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        body = "From: a@test.example\r\nSubject: x\r\n\r\ncaf\u00e9\r\n".encode()
        send(a, ["bob@example.net"], msg=body, mail_options=["BODY=8BITMIME"])
        a.wait_log("status=failed")
        assert "esc=5.6.3" in a.logs()
        assert hop.transactions == []
        assert not any(c.startswith("MAIL") for c in hop.commands)
    finally:
        hop.close()


def test_message_larger_than_server_size_fails(make_hatod):
    hop = ScriptedSMTP(ehlo=("SIZE 100",))
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        send(a, ["bob@example.net"])
        a.wait_log("status=failed")
        assert "esc=5.3.4" in a.logs()
        assert not any(c.startswith("MAIL") for c in hop.commands)
    finally:
        hop.close()


def test_connection_reused_for_the_next_message(make_hatod):
    hop = ScriptedSMTP()
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port},
                        remote={"reuse_time": "5s"})
        send(a, ["bob@example.net"])
        wait_for(lambda: len(hop.transactions) == 1, what="the first message")
        send(a, ["carol@example.net"])
        wait_for(lambda: len(hop.transactions) == 2, what="the second message")
        assert hop.connections == 1
        assert "RSET" in hop.commands
        # idle past reuse_time: QUIT
        wait_for(lambda: "QUIT" in hop.commands, timeout=10, what="QUIT")
    finally:
        hop.close()


def test_connection_refused_defers(make_hatod, testdir):
    import socket
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % port},
                    delivery={"retry_schedule": "1h"})
    send(a, ["bob@example.net"])
    a.wait_log("status=deferred")
    assert "esc=4.4.1" in a.logs()
    assert "Connection refused" in a.logs()
    assert len(a.queue_ids()) == 1


def test_mail_back_to_ourselves_is_a_loop(make_hatod):
    # the next hop for example.net is hatod A itself
    a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:1"})
    a.stop()
    a.extra = a.extra.replace("[127.0.0.1]:1", "[127.0.0.1]:%d" % a.port)
    a.start()
    send(a, ["bob@example.net"])
    a.wait_log("status=failed")
    assert "esc=5.4.6" in a.logs()
    assert "loops back to myself" in a.logs()


def test_greeting_with_our_name_is_a_loop(make_hatod):
    hop = ScriptedSMTP()
    hop.greeting = "220 a.test ESMTP"
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        send(a, ["bob@example.net"])
        a.wait_log("status=failed")
        assert "esc=5.4.6" in a.logs()
        assert hop.transactions == []
    finally:
        hop.close()


def test_starttls_opportunistic(make_hatod):
    b = next_hatod(make_hatod, tls="starttls")
    a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % b.port})
    send(a, ["bob@example.net"])
    files = wait_for(lambda: b.maildir("bob", "example.net"), what="the message at B")
    raw = open(files[0], "rb").read()
    assert "with ESMTPS" in headers_of(raw)
    a.wait_log("tls=TLSv1.3")  # A logs after B's 250, which may follow B's delivery


def test_tls_encrypt_towards_plaintext_server_defers(make_hatod):
    b = next_hatod(make_hatod, tls="none")
    a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % b.port},
                    tls_policy={"example.net": "encrypt"}, delivery={"retry_schedule": "1h"})
    send(a, ["bob@example.net"])
    a.wait_log("status=deferred")
    assert "does not offer STARTTLS" in a.logs()
    assert "esc=4.7.5" in a.logs()
    time.sleep(0.5)
    assert b.maildir("bob", "example.net") == []
    assert "event=transaction" not in b.logs()


def test_tls_verify_refuses_untrusted_certificate(make_hatod):
    b = next_hatod(make_hatod, tls="starttls")
    a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % b.port},
                    tls_policy={"example.net": "verify"}, delivery={"retry_schedule": "1h"})
    send(a, ["bob@example.net"])
    a.wait_log("status=deferred")
    assert "certificate verification failed" in a.logs()
    assert b.maildir("bob", "example.net") == []


def smarthost(make_hatod, tls):
    """hatod B as a smarthost: AUTH required on its one listener, user
    relayuser may send as anyone."""
    b = next_hatod(make_hatod, tls=tls, users=True,
                   extra="[domain example.net]\nmailboxes = *\n[senders]\nrelayuser = *\n")
    r = subprocess.run([HATO, "-c", b.conf_path, "user", "add", "relayuser", "--stdin"],
                       input=b"relay-secret-pw\n", capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return b


def auth_file(testdir, mode=0o600, text="relayuser:relay-secret-pw\n"):
    path = os.path.join(testdir, "relay-auth")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def test_smarthost_starttls_and_auth(make_hatod, testdir):
    b = smarthost(make_hatod, "starttls")
    a = relay_hatod(make_hatod, remote={"relayhost": "[127.0.0.1]:%d" % b.port,
                                        "relayhost_tls": "encrypt",
                                        "relayhost_auth_file": auth_file(testdir)})
    send(a, ["bob@example.net"])
    files = wait_for(lambda: b.maildir("bob", "example.net"), what="the message at B")
    raw = open(files[0], "rb").read()
    assert "with ESMTPSA" in headers_of(raw)
    assert raw.endswith(b"\n\nfirst line\n.leading dot\nlast line\n")
    assert "event=auth" in b.logs() and "result=ok user=\"relayuser\"" in b.logs()
    assert "relay-secret-pw" not in a.logs()


def test_smarthost_implicit_tls_and_auth(make_hatod, testdir):
    b = smarthost(make_hatod, "implicit")
    a = relay_hatod(make_hatod, remote={"relayhost": "[127.0.0.1]:%d" % b.port,
                                        "relayhost_implicit_tls": "yes",
                                        "relayhost_auth_file": auth_file(testdir)})
    send(a, ["bob@example.net"])
    files = wait_for(lambda: b.maildir("bob", "example.net"), what="the message at B")
    assert "with ESMTPSA" in headers_of(open(files[0], "rb").read())


def test_smarthost_wrong_password_defers(make_hatod, testdir):
    b = smarthost(make_hatod, "starttls")
    a = relay_hatod(make_hatod, remote={"relayhost": "[127.0.0.1]:%d" % b.port,
                                        "relayhost_auth_file":
                                            auth_file(testdir, text="relayuser:wrong\n")},
                    delivery={"retry_schedule": "1h"})
    send(a, ["bob@example.net"])
    a.wait_log("status=deferred", timeout=20)
    assert "AUTH refused: 535" in a.logs()
    assert b.maildir("bob", "example.net") == []


def test_no_password_over_plaintext(make_hatod, testdir):
    b = smarthost(make_hatod, "none")
    a = relay_hatod(make_hatod, remote={"relayhost": "[127.0.0.1]:%d" % b.port,
                                        "relayhost_auth_file": auth_file(testdir)},
                    delivery={"retry_schedule": "1h"})
    send(a, ["bob@example.net"])
    a.wait_log("status=deferred")
    assert "without TLS" in a.logs()
    assert "event=auth" not in b.logs()


def test_auth_file_readable_by_others_is_refused(testdir):
    h = Hatod(testdir, extra="[remote]\nrelayhost = [127.0.0.1]:25\nrelayhost_auth_file = %s\n"
              % auth_file(testdir, mode=0o644))
    with pytest.raises(RuntimeError):
        h.start()
    h.proc.wait(10)
    assert h.proc.returncode != 0
    assert "must not be readable by group or others" in h.logs()


def mx_setup(make_hatod, make_dns_server):
    """B serves remote.test and implicit.test on 127.0.0.1:PORT; A finds it
    through a real DNS server (dnsmasq): remote.test's best MX,
    down.remote.test (127.0.0.2), refuses connections, the next one is B;
    implicit.test has no MX, only an A record; nullmx.test has a null MX."""
    b = next_hatod(make_hatod, tls="none", domains="remote.test, implicit.test")
    dns = make_dns_server(Zone()
                          .mx("remote.test", 10, "down.remote.test")
                          .host("down.remote.test", "127.0.0.2")
                          .mx("remote.test", 20, "up.remote.test")
                          .host("up.remote.test", "127.0.0.1")
                          .host("implicit.test", "127.0.0.1")
                          .null_mx("nullmx.test"))
    a = relay_hatod(make_hatod, remote={"port": b.port, "tls": "none"},
                    delivery={"retry_schedule": "1h"},
                    extra="[dns]\nservers = %s\ntimeout = 300ms\n" % dns.address)
    return a, b


def test_mx_next_host_when_the_best_refuses(make_hatod, make_dns_server):
    a, b = mx_setup(make_hatod, make_dns_server)
    send(a, ["bob@remote.test"])
    wait_for(lambda: b.maildir("bob", "remote.test"), what="the message at B")
    a.wait_log("relay=up.remote.test[127.0.0.1]:%d" % b.port)  # logged after B's 250
    assert ("event=relay_connect_failed domain=remote.test relay=down.remote.test[127.0.0.2]"
            in a.logs())


def test_mx_implicit_a_record(make_hatod, make_dns_server):
    a, b = mx_setup(make_hatod, make_dns_server)
    send(a, ["carol@implicit.test"])
    wait_for(lambda: b.maildir("carol", "implicit.test"), what="the message at B")
    a.wait_log("relay=implicit.test[127.0.0.1]:%d" % b.port)


def test_null_mx_fails_at_once(make_hatod, make_dns_server):
    a, b = mx_setup(make_hatod, make_dns_server)
    send(a, ["dave@nullmx.test"])
    a.wait_log("status=failed")
    assert "rcpt=<dave@nullmx.test> status=failed esc=5.1.10" in a.logs()


def test_no_such_domain_fails(make_hatod, make_dns_server):
    a, b = mx_setup(make_hatod, make_dns_server)
    send(a, ["erin@nothing.test"])
    a.wait_log("status=failed")
    assert "rcpt=<erin@nothing.test> status=failed esc=5.1.2" in a.logs()


def test_one_message_two_domains(make_hatod, make_dns_server):
    a, b = mx_setup(make_hatod, make_dns_server)
    send(a, ["bob@remote.test", "carol@implicit.test", "dave@nullmx.test"])
    wait_for(lambda: b.maildir("bob", "remote.test") and b.maildir("carol", "implicit.test"),
             what="both messages at B")
    a.wait_log("event=removed")
    assert "rcpt=<dave@nullmx.test> status=failed esc=5.1.10" in a.logs()


# --- delivery status notifications (RFC 3464) --------------------------------

import email
import email.policy


def reports_for(h, user, domain="localhost"):
    """The notifications in user@domain's Maildir, parsed."""
    out = []
    for path in h.maildir(user, domain):
        with open(path, "rb") as f:
            out.append(email.message_from_bytes(f.read(), policy=email.policy.compat32))
    return out


def status_groups(report):
    """The per-recipient field groups of a report's message/delivery-status part."""
    for part in report.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            return [dict(g.items()) for g in payload[1:]], dict(payload[0].items())
    raise AssertionError("no message/delivery-status part")


def test_bounce_for_refused_recipient(make_hatod):
    hop = ScriptedSMTP()
    hop.rcpt = lambda addr: "550 5.1.1 no such user" if addr.startswith("nobody") else "250 ok"
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        send(a, ["bob@example.net", "nobody@example.net"], sender="alice@localhost")
        bounces = wait_for(lambda: reports_for(a, "alice"), what="the bounce")
        a.wait_log("event=removed", count=2)  # the message and the bounce
        assert len(bounces) == 1
        r = bounces[0]
        assert r.get_content_type() == "multipart/report"
        assert r.get_param("report-type") == "delivery-status"
        assert r["Auto-Submitted"] == "auto-replied"
        assert r["From"].endswith("<MAILER-DAEMON@a.test>")
        groups, msgfields = status_groups(r)
        assert msgfields["Reporting-MTA"] == "dns; a.test"
        assert len(groups) == 1
        g = groups[0]
        assert g["Final-Recipient"] == "rfc822; nobody@example.net"
        assert g["Action"] == "failed"
        assert g["Status"] == "5.1.1"
        assert g["Remote-MTA"] == "dns; 127.0.0.1"
        assert g["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user"
        # headers only by default: the original's Subject, not its body
        kinds = [p.get_content_type() for p in r.walk()]
        assert "text/rfc822-headers" in kinds
        raw = open(a.maildir("alice")[0], "rb").read()
        assert b"Subject: relay" in raw and b"leading dot" not in raw
        # the bounce itself came with the null sender
        assert b"Return-Path: <>" in raw
    finally:
        hop.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="hatod must drop to user hato for the file to refuse it")
def test_bounce_without_the_original_when_it_cannot_be_read(make_hatod):
    """The original cannot be read when the bounce is made: the bounce goes
    without its text, instead of the message waiting for it for ever."""
    hop = ScriptedSMTP()
    answers = ["451 4.2.0 busy"]
    hop.rcpt = lambda addr: answers[0]
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port},
                        delivery={"retry_schedule": "1s"})
        send(a, ["nobody@example.net"], sender="alice@localhost")
        a.wait_log("status=deferred")
        [qid] = a.queue_ids()
        os.chmod(os.path.join(a.state_dir, "queue", qid + ".msg"), 0)  # hato cannot read it
        answers[0] = "550 5.1.1 no such user"
        r = wait_for(lambda: reports_for(a, "alice"), timeout=15, what="the bounce")[0]
        groups, _ = status_groups(r)
        assert groups[0]["Action"] == "failed" and groups[0]["Status"] == "5.1.1"
        assert "text/rfc822-headers" not in [p.get_content_type() for p in r.walk()]
        assert "event=report_without_original queue_id=%s" % qid in a.logs()
        a.wait_log("event=removed queue_id=%s" % qid)
    finally:
        hop.close()


def test_bounce_ret_full_returns_the_message(make_hatod):
    hop = ScriptedSMTP()
    hop.rcpt = lambda addr: "550 5.1.1 no such user"
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        send(a, ["nobody@example.net"], sender="alice@localhost",
             mail_options=["RET=FULL", "ENVID=QQ314159"],
             rcpt_options=["ORCPT=rfc822;nobody@example.net"])
        r = wait_for(lambda: reports_for(a, "alice"), what="the bounce")[0]
        groups, msgfields = status_groups(r)
        assert msgfields["Original-Envelope-Id"] == "QQ314159"
        assert groups[0]["Original-Recipient"] == "rfc822; nobody@example.net"
        assert "message/rfc822" in [p.get_content_type() for p in r.walk()]
        assert b".leading dot" in open(a.maildir("alice")[0], "rb").read()
    finally:
        hop.close()


def test_notify_never_gets_no_bounce(make_hatod):
    hop = ScriptedSMTP()
    hop.rcpt = lambda addr: "550 5.1.1 no such user"
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        send(a, ["nobody@example.net"], sender="alice@localhost", rcpt_options=["NOTIFY=NEVER"])
        a.wait_log("event=removed")
        time.sleep(0.3)
        assert a.maildir("alice") == []
        assert "event=report " not in a.logs()
    finally:
        hop.close()


def test_no_bounce_for_the_null_sender(make_hatod):
    hop = ScriptedSMTP()
    hop.rcpt = lambda addr: "550 5.1.1 no such user"
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        send(a, ["nobody@example.net"], sender="")
        a.wait_log("event=removed")
        assert "event=report_suppressed" in a.logs()
        assert "event=report " not in a.logs()
    finally:
        hop.close()


def test_undeliverable_bounce_goes_to_postmaster_once(make_hatod):
    # everything to example.net is refused, and the sender is there too
    hop = ScriptedSMTP()
    hop.rcpt = lambda addr: "550 5.1.1 no such user"
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        send(a, ["nobody@example.net"], sender="ghost@example.net")
        pm = wait_for(lambda: reports_for(a, "postmaster", "a.test"), what="the postmaster copy")
        a.wait_log("event=removed", count=3)  # message, bounce, postmaster's report
        time.sleep(0.3)
        assert len(pm) == 1
        groups, _ = status_groups(pm[0])
        assert groups[0]["Final-Recipient"] == "rfc822; ghost@example.net"
        assert a.logs().count("event=report ") == 2
        assert a.queue_ids() == []
    finally:
        hop.close()


def test_notify_success_relayed_to_a_server_without_dsn(make_hatod):
    hop = ScriptedSMTP()
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        send(a, ["bob@example.net"], sender="alice@localhost",
             rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
        r = wait_for(lambda: reports_for(a, "alice"), what="the report")[0]
        groups, _ = status_groups(r)
        assert groups[0]["Action"] == "relayed"
        assert r["Subject"] == "Successful Mail Delivery Report"
        assert not any("NOTIFY" in c for c in hop.commands)  # the server has no DSN
    finally:
        hop.close()


def test_dsn_parameters_passed_to_a_dsn_server(make_hatod):
    hop = ScriptedSMTP(ehlo=("PIPELINING", "8BITMIME", "DSN"))
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        send(a, ["bob@example.net"], sender="alice@localhost",
             mail_options=["RET=HDRS", "ENVID=abc+2Bdef"],
             rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;bob@example.net"])
        t = wait_for(lambda: hop.transactions, what="the transaction")[0]
        a.wait_log("event=removed")
        assert t.mail.endswith(" RET=HDRS ENVID=abc+2Bdef")
        assert t.rcpts == ["RCPT TO:<bob@example.net> NOTIFY=SUCCESS ORCPT=rfc822;bob@example.net"]
        time.sleep(0.3)
        assert a.maildir("alice") == []  # the next hop reports success itself
    finally:
        hop.close()


def test_notify_success_local_delivery(make_hatod):
    a = relay_hatod(make_hatod)
    send(a, ["carol@localhost"], sender="alice@localhost", rcpt_options=["NOTIFY=SUCCESS"])
    r = wait_for(lambda: reports_for(a, "alice"), what="the report")[0]
    groups, _ = status_groups(r)
    assert groups[0]["Action"] == "delivered"
    assert groups[0]["Final-Recipient"] == "rfc822; carol@localhost"
    assert len(a.maildir("carol")) == 1


def test_delay_warning_once(make_hatod):
    hop = ScriptedSMTP()
    hop.rcpt = lambda addr: "451 4.2.0 busy"
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port},
                        remote={"delay_warning": "1s"})
        send(a, ["bob@example.net"], sender="alice@localhost")
        r = wait_for(lambda: reports_for(a, "alice"), timeout=20, what="the delay notice")[0]
        groups, _ = status_groups(r)
        assert groups[0]["Action"] == "delayed"
        assert groups[0]["Status"] == "4.2.0"
        assert "Will-Retry-Until" in groups[0]
        a.wait_log("status=deferred", count=4, timeout=20)
        assert len(a.maildir("alice")) == 1  # once per message
        env = a.envelope_text(a.queue_ids()[0])
        assert "delay-warned: yes" in env
    finally:
        hop.close()


def test_no_delay_notice_about_a_notification(make_hatod):
    """A bounce that cannot reach its (remote) recipient yet is retried,
    but no delay notice about it goes to the postmaster: one would be a
    notification about a notification, and delayed in turn it would make
    the next one, without end."""
    hop = ScriptedSMTP()
    hop.rcpt = lambda addr: "550 5.1.1 no such user" if addr.startswith("bad@") \
        else "451 4.2.0 busy"
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port},
                        delivery={"retry_schedule": "1s"}, remote={"delay_warning": "1s"})
        send(a, ["bad@example.net"], sender="s@example.net")
        a.wait_log("rcpt=<bad@example.net> status=failed")
        a.wait_log("rcpt=<s@example.net> status=deferred", count=3, timeout=20)
        assert a.maildir("postmaster") == []
        assert len(a.queue_ids()) == 1  # the bounce, still trying
        assert a.logs().count("event=report ") == 1  # the bounce, and nothing about it
    finally:
        hop.close()


def test_undeclared_8bit_message_to_server_without_8bitmime_fails(make_hatod):
    hop = ScriptedSMTP(ehlo=("PIPELINING",))
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        body = "From: a@test.example\r\nSubject: x\r\n\r\ncaf\u00e9\r\n".encode()
        send(a, ["bob@example.net"], msg=body)  # no BODY=8BITMIME
        a.wait_log("status=failed")
        assert "esc=5.6.3" in a.logs()
        assert not any(c.startswith("MAIL") for c in hop.commands)
    finally:
        hop.close()


def test_7bit_message_to_server_without_8bitmime_is_sent(make_hatod):
    hop = ScriptedSMTP(ehlo=())
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port})
        send(a, ["bob@example.net"])
        t = wait_for(lambda: hop.transactions, what="the transaction")[0]
        assert t.mail == "MAIL FROM:<alice@test.example>"
    finally:
        hop.close()


def test_starttls_response_injection_is_refused(make_hatod):
    # a reply to a command never sent, in the same packet as STARTTLS's 220:
    # it must not be taken as coming over TLS
    hop = ScriptedSMTP(ehlo=("PIPELINING", "STARTTLS"))
    hop.starttls_reply = b"220 2.0.0 go ahead\r\n250 2.1.0 injected\r\n"
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port},
                        tls_policy={"example.net": "encrypt"}, delivery={"retry_schedule": "1h"})
        send(a, ["bob@example.net"])
        a.wait_log("status=deferred")
        assert "data after the reply to STARTTLS" in a.logs()
        assert not any(c.startswith("MAIL") for c in hop.commands)
    finally:
        hop.close()


def test_client_states_are_logged_with_v(make_hatod):
    hop = ScriptedSMTP(ehlo=("PIPELINING", "STARTTLS"))
    hop.starttls_reply = b"454 4.7.0 TLS not available\r\n"
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port},
                        remote={"reuse_time": "0"})
        a.stop()
        a.start(["-v"])
        send(a, ["bob@example.net"])
        a.wait_log("event=removed")
        a.wait_log('transition="QUIT -> CLOSED"')
        states = re.findall(r'event=relay_state relay=\S+ transition="(\w+) -> (\w+)"', a.logs())
        # policy may: a refused STARTTLS goes on in plaintext
        assert [s for _, s in states] == ["GREETING", "EHLO", "STARTTLS", "READY", "MAIL",
                                          "RCPT", "DATA", "DOT", "READY", "QUIT", "CLOSED"]
        assert "event=relay_starttls_refused" in a.logs()
        assert "status=delivered" in a.logs() and "tls=none" in a.logs()
    finally:
        hop.close()


def test_smtputf8_message_needs_smtputf8_at_the_next_hop(make_hatod):
    hop = ScriptedSMTP(ehlo=("PIPELINING", "8BITMIME"))
    try:
        a = relay_hatod(make_hatod, transport={"example.net": "[127.0.0.1]:%d" % hop.port},
                        remote={"reuse_time": "0"})  # a new EHLO for the second message
        msg = "From: j\u00f6rg@test.example\r\nSubject: x\r\n\r\nhi\r\n".encode()
        send(a, ["bob@example.net"], msg=msg, sender="j\u00f6rg@test.example",
             mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        a.wait_log("status=failed")
        assert "esc=5.6.7" in a.logs()
        assert not any(c.startswith("MAIL") for c in hop.commands)
        hop.ehlo.append("SMTPUTF8")  # a server that has it gets the message
        send(a, ["carol@example.net"], msg=msg, sender="j\u00f6rg@test.example",
             mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        t = wait_for(lambda: hop.transactions, what="the transaction")[0]
        assert t.mail.startswith("MAIL FROM:<j\u00f6rg@test.example>")
        assert "SMTPUTF8" in t.mail and "BODY=8BITMIME" in t.mail
    finally:
        hop.close()
