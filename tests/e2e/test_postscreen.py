"""The defences a client meets before its first command, against the real
hatod: DNS blocklists and allowlists served by a private dnsmasq, the
greeting delay and its test for clients that talk first, and the limits
per client address (sessions at once, connections, messages and
recipients per minute), each with its own reply and log line.

Loopback has many addresses: a client bound to 127.0.0.2 is another client
than one on 127.0.0.1, with its own counters and its own DNSBL entries.
"""
import smtplib
import socket
import time

from conftest import RawSMTP, Zone, free_port

LISTED = "127.0.0.1"  # 1.0.0.127.bl.test -> 127.0.0.2
ALLOWED = "127.0.0.3"  # on the blocklist and the allowlist: the allowlist wins
CLEAN = "127.0.0.2"


def dnsbl_zone():
    z = Zone()
    z.host("1.0.0.127.bl.test", "127.0.0.2")
    z.host("3.0.0.127.bl.test", "127.0.0.2")
    z.host("3.0.0.127.wl.test", "127.0.1.1")
    # a list that refuses to answer this resolver, Spamhaus' way
    z.host("2.0.0.127.errors.test", "127.255.255.254")
    return z


def extra_sections(dns, zones, threshold=1):
    return ("[domain localhost]\nmailboxes = *\n[domain test.example]\nmailboxes = *\n"
            "[dns]\nservers = %s\ntimeout = 500ms\ntries = 1\n"
            "[dnsbl]\nzones = %s\nthreshold = %d\n" % (dns.address, zones, threshold))


def send_one(h, source):
    """A whole transaction from source; the reply to the data."""
    s = smtplib.SMTP(timeout=20, source_address=(source, 0))
    try:
        s.connect(h.host, h.port)
        s.ehlo("client.example")
        s.mail("a@example.org")
        s.rcpt("u@localhost")
        code, _ = s.data(b"Subject: hi\r\n\r\nhello\r\n")
        s.quit()
        return code
    finally:
        s.close()


def test_dnsbl_listed_refused_unlisted_served(make_hatod, make_dns_server):
    dns = make_dns_server(dnsbl_zone())
    h = make_hatod(extra=extra_sections(dns, "bl.test*2 wl.test*-5 errors.test*5",
                                        threshold=2))
    with RawSMTP(h.host, h.port, source=LISTED) as c:
        assert c.greeting.startswith("554 5.7.1 "), h.logs()
        assert "bl.test" in c.greeting and "[127.0.0.1]" in c.greeting
        assert c.eof()
    h.wait_log("event=dnsbl_refused")
    assert "zone=bl.test" in h.logs()
    # an unlisted client, and one a 127.255.255.x error would otherwise
    # count against: served
    assert send_one(h, CLEAN) == 250
    assert "code=127.255.255.254" in h.logs()
    # the allowlist outweighs the blocklist
    assert send_one(h, ALLOWED) == 250
    assert len(h.queue_ids()) == 2
    # the verdict is kept: asked again, dnsmasq is not needed
    dns.stop()
    with RawSMTP(h.host, h.port, source=LISTED) as c:
        assert c.greeting.startswith("554 5.7.1 "), c.greeting


def test_dnsbl_unanswered_is_not_listed(make_hatod, make_dns_server):
    dns = make_dns_server(Zone().broken("slow.test"))
    h = make_hatod(extra=extra_sections(dns, "slow.test*5"))
    with RawSMTP(h.host, h.port, source=LISTED) as c:
        assert c.greeting.startswith("220 "), c.greeting
    h.wait_log("event=dnsbl_error")


def test_dnsbl_ipv6_client(make_hatod, make_dns_server):
    """An IPv6 client is asked for by its 32 nibbles, reversed."""
    nibbles = ".".join(reversed("%032x" % 1))  # ::1
    dns = make_dns_server(Zone().host(nibbles + ".bl.test", "127.0.0.2"))
    port = free_port()
    h = make_hatod(listeners={"smtp": "[::1]:%d" % port},
                   extra=extra_sections(dns, "bl.test"))
    with RawSMTP("::1", port) as c:
        assert c.greeting.startswith("554 5.7.1 "), c.greeting
        assert "[::1]" in c.greeting
    h.wait_log("event=dnsbl_listed")


def test_talking_before_the_greeting_is_refused(make_hatod):
    port = free_port()
    h = make_hatod(listeners={"smtp": {"address": "127.0.0.1:%d" % port,
                                       "greeting_delay": "1500ms"}})
    h.port = port
    with RawSMTP(h.host, h.port, greet=False) as c:
        c.send("EHLO early.example\r\n")
        assert c.reply().startswith("554 5.5.1 ")
        assert c.eof()
    h.wait_log("event=pregreet")
    assert 'text="EHLO early.example\\x0d\\x0a"' in h.logs()
    assert h.queue_ids() == []
    # a patient client is greeted after the delay and served
    assert send_one(h, CLEAN) == 250
    # and, having passed, is not held back again: what it sends at once
    # is read after the greeting, not refused
    with RawSMTP(h.host, h.port, greet=False, source=CLEAN) as c:
        c.send("EHLO again.example\r\n")
        assert c.reply().startswith("220 ")
        assert c.reply().startswith("250")
    # the client that talked first still waits, and is still watched
    with RawSMTP(h.host, h.port, greet=False) as c:
        c.send("NOOP\r\n")
        assert c.reply().startswith("554 5.5.1 ")


def test_client_session_limit(make_hatod):
    h = make_hatod(limits={"client_sessions_max": "3"})
    held = [RawSMTP(h.host, h.port) for _ in range(3)]
    try:
        for c in held:
            assert c.greeting.startswith("220 ")
        with RawSMTP(h.host, h.port) as c:
            assert c.greeting.startswith("421 4.7.0 "), c.greeting
            assert "sessions" in c.greeting
            assert c.eof()
        h.wait_log("event=client_session_limit")
        assert "limit=3" in h.logs()
        # another address is another client
        with RawSMTP(h.host, h.port, source=CLEAN) as c:
            assert c.greeting.startswith("220 ")
        # one ends: there is room again
        held.pop().cmd("QUIT")
        h.wait_log("event=disconnect", count=2)
        with RawSMTP(h.host, h.port) as c:
            assert c.greeting.startswith("220 "), c.greeting
    finally:
        for c in held:
            c.close()


def test_client_limits_hold_under_many_connections(make_hatod):
    """300 connections from one address at once: exactly the limit gets a
    greeting, the others 421 4.7.0, and another address is still served."""
    h = make_hatod(limits={"client_sessions_max": "20"})
    socks, greeted, refused = [], 0, 0
    try:
        for _ in range(300):
            s = socket.create_connection((h.host, h.port), timeout=20)
            socks.append(s)
        for s in socks:
            line = b""
            while not line.endswith(b"\n"):
                chunk = s.recv(512)
                if not chunk:
                    break
                line += chunk
            if line.startswith(b"220 "):
                greeted += 1
            elif line.startswith(b"421 4.7.0 "):
                refused += 1
        assert (greeted, refused) == (20, 280)
        assert send_one(h, CLEAN) == 250
    finally:
        for s in socks:
            s.close()


def test_trusted_clients_are_exempt(make_hatod):
    h = make_hatod(server={"trusted_networks": "127.0.0.0/8"},
                   limits={"client_sessions_max": "1", "client_messages_per_minute": "1"})
    with RawSMTP(h.host, h.port) as a, RawSMTP(h.host, h.port) as b:
        assert a.greeting.startswith("220 ") and b.greeting.startswith("220 ")
    assert send_one(h, LISTED) == 250
    assert send_one(h, LISTED) == 250


def test_client_connection_rate(make_hatod):
    h = make_hatod(limits={"client_connections_per_minute": "2"})
    for _ in range(2):
        with RawSMTP(h.host, h.port) as c:
            assert c.greeting.startswith("220 ")
    with RawSMTP(h.host, h.port) as c:
        assert c.greeting.startswith("421 4.7.0 "), c.greeting
        assert "per minute" in c.greeting
    h.wait_log("event=client_connection_rate_limit")
    with RawSMTP(h.host, h.port, source=CLEAN) as c:
        assert c.greeting.startswith("220 ")


def test_client_message_and_recipient_rates(make_hatod):
    h = make_hatod(limits={"client_messages_per_minute": "2",
                           "client_recipients_per_minute": "3"})
    with RawSMTP(h.host, h.port) as c:
        assert c.cmd("EHLO client.example").startswith("250")
        assert c.cmd("MAIL FROM:<a@example.org>").startswith("250 ")
        for i in range(3):
            assert c.cmd("RCPT TO:<u%d@localhost>" % i).startswith("250 ")
        r = c.cmd("RCPT TO:<u9@localhost>")
        assert r.startswith("452 4.5.3 ") and "per minute" in r, r
        assert c.cmd("RSET").startswith("250 ")
        assert c.cmd("MAIL FROM:<a@example.org>").startswith("250 ")
        assert c.cmd("RSET").startswith("250 ")
        r = c.cmd("MAIL FROM:<a@example.org>")
        assert r.startswith("451 4.7.1 "), r
    h.wait_log("event=client_recipient_rate_limit")
    h.wait_log("event=client_message_rate_limit")
    # another client has its own budget
    assert send_one(h, CLEAN) == 250


GREYLIST = ("[domain localhost]\nmailboxes = *\n[domain test.example]\nmailboxes = *\n"
            "[greylist]\nenabled = yes\ndelay = 1s\n")


def rcpt_reply(h, source, rcpt="u@localhost", sender="a@example.org"):
    with RawSMTP(h.host, h.port, source=source) as c:
        assert c.cmd("EHLO client.example").startswith("250")
        assert c.cmd("MAIL FROM:<%s>" % sender).startswith("250 ")
        return c.cmd("RCPT TO:<%s>" % rcpt)


def test_greylisting_survives_a_restart(make_hatod):
    from conftest import restart_hatod
    h = make_hatod(extra=GREYLIST)
    r = rcpt_reply(h, CLEAN)
    assert r.startswith("450 4.7.1 "), r
    h.wait_log("event=greylisted")
    # too soon is still too soon; a retry after the delay passes
    assert rcpt_reply(h, CLEAN).startswith("450 4.7.1 ")
    time.sleep(1.5)
    assert send_one(h, CLEAN) == 250
    # another triplet waits, and is still waiting after a restart
    assert rcpt_reply(h, CLEAN, rcpt="v@localhost").startswith("450 4.7.1 ")
    assert h.stop() == 0
    h2 = restart_hatod(h, extra=GREYLIST)
    h2.start()
    try:
        assert send_one(h2, CLEAN) == 250  # passed before the restart: passes at once
        time.sleep(1.5)
        assert rcpt_reply(h2, CLEAN, rcpt="v@localhost").startswith("250 ")
    finally:
        h2.stop()


def test_greylisting_spares_trusted_clients(make_hatod):
    h = make_hatod(server={"trusted_networks": "127.0.0.1/32"}, extra=GREYLIST)
    assert rcpt_reply(h, LISTED).startswith("250 ")
    assert rcpt_reply(h, CLEAN).startswith("450 4.7.1 ")


def checks_zone():
    z = Zone()
    z.lines.append("ptr-record=2.0.0.127.in-addr.arpa,good.test")
    z.host("good.test", "127.0.0.2")
    z.lines.append("ptr-record=3.0.0.127.in-addr.arpa,liar.test")
    z.host("liar.test", "10.1.1.1")
    return z  # 127.0.0.4 has no PTR name at all


def checks_hatod(make_hatod, dns, fcrdns="off", helo="off"):
    return make_hatod(server={"reverse_dns": "yes"},
                      extra="[domain localhost]\nmailboxes = *\n"
                            "[dns]\nservers = %s\ntimeout = 500ms\ntries = 1\n"
                            "[client_checks]\nfcrdns = %s\nhelo = %s\n"
                            % (dns.address, fcrdns, helo))


def test_fcrdns_refuse(make_hatod, make_dns_server):
    h = checks_hatod(make_hatod, make_dns_server(checks_zone()), fcrdns="refuse")
    assert send_one(h, "127.0.0.2") == 250
    for liar in ("127.0.0.3", "127.0.0.4"):
        with RawSMTP(h.host, h.port, source=liar) as c:
            assert c.greeting.startswith("554 5.7.25 "), c.greeting
            assert c.eof()
    h.wait_log("event=fcrdns_refused", count=2)
    assert "name=liar.test result=fail" in h.logs()
    assert "name=good.test result=pass" in h.logs()


def test_fcrdns_and_helo_mark(make_hatod, make_dns_server):
    h = checks_hatod(make_hatod, make_dns_server(checks_zone()), fcrdns="mark", helo="mark")
    with RawSMTP(h.host, h.port, source="127.0.0.3") as c:
        assert c.greeting.startswith("220 ")
        assert c.cmd("EHLO 192.0.2.9").startswith("250")
        assert c.cmd("MAIL FROM:<a@example.org>").startswith("250 ")
        assert c.cmd("RCPT TO:<u@localhost>").startswith("250 ")
        assert c.cmd("DATA").startswith("354")
        assert c.cmd("Subject: marked\r\n\r\nhi\r\n.").startswith("250 ")
    assert send_one(h, "127.0.0.2") == 250
    msgs = sorted(h.queued(), key=lambda em: b"marked" not in em[1])
    assert b"\r\nX-Hato-Client-Check: fcrdns=fail; helo=bare-ip\r\n" in msgs[0][1]
    assert b"X-Hato-Client-Check" not in msgs[1][1]


def test_helo_refuse(make_hatod, make_dns_server):
    h = checks_hatod(make_hatod, make_dns_server(checks_zone()), helo="refuse")
    with RawSMTP(h.host, h.port, source="127.0.0.2") as c:
        for name in ("192.0.2.9", "2001:db8::9", "mx.test.example", "MX.Test.Example."):
            r = c.cmd("EHLO %s" % name)
            assert r.startswith("550 5.7.1 "), (name, r)
        assert c.cmd("MAIL FROM:<a@example.org>").startswith("503 ")
        assert c.cmd("EHLO [192.0.2.9]").startswith("250")
        assert c.cmd("MAIL FROM:<a@example.org>").startswith("250 ")
    h.wait_log("event=helo_check", count=4)


def test_limits_count_the_client_a_proxy_header_names(make_hatod):
    """Behind a balancer every connection comes from it: the per-client
    limits count the client its PROXY header names."""
    port = free_port()
    h = make_hatod(limits={"client_sessions_max": "1"},
                   listeners={"smtp": {"address": "127.0.0.1:%d" % port,
                                       "proxy_protocol": "yes",
                                       "proxy_networks": "127.0.0.1/32"}})
    h.port = port

    def via_proxy(client):
        c = RawSMTP(h.host, port, greet=False)
        c.send("PROXY TCP4 %s 127.0.0.1 4000 25\r\n" % client)
        c.greeting = c.reply()
        return c

    with via_proxy("192.0.2.9") as a:
        assert a.greeting.startswith("220 "), a.greeting
        with via_proxy("192.0.2.9") as b:
            assert b.greeting.startswith("421 4.7.0 "), b.greeting
        with via_proxy("192.0.2.10") as c:
            assert c.greeting.startswith("220 "), c.greeting
    h.wait_log("event=client_session_limit")
    assert "client=192.0.2.9 limit=1" in h.logs()
