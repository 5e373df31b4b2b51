"""Relay control and address handling of the smtp listener: mail for
non-local domains is refused unless the client is in trusted_networks;
unusual but legal local parts are local and stored verbatim; <postmaster>
and the listener's own address literal are local; RFC 5321 length limits;
the null path only as a sender.
"""
import re

import pytest

from conftest import RawSMTP, strip_received

QUEUED_RE = re.compile(r"^250 2\.0\.0 OK queued as ([0-9A-F]{20})$")
RELAY_DENIED = "554 5.7.1 Relay access denied"
RCPT_OK = "250 2.1.5 Recipient OK"
SENDER_OK = "250 2.1.0 Sender OK"


@pytest.fixture
def fast(make_hatod):
    """A hatod that does not slow a client down after errors."""
    return make_hatod(limits={"error_delay_ms": "0", "errors_hard": "100"})


def session(h):
    c = RawSMTP(h.host, h.port)
    assert c.cmd("EHLO relay.example").startswith("250-")
    return c


def send_body(c, body=b"Subject: t\r\n\r\nt\r\n"):
    assert c.cmd("DATA").startswith("354 ")
    c.send(body + b".\r\n")
    r = c.reply()
    assert QUEUED_RE.match(r), r
    return body


@pytest.mark.parametrize("rcpt", ["user@other.org", "user@example.com",
                                  "user@sub.localhost", "user@localhost.other.org",
                                  "postmaster@other.org", "user@test.example.org"])
def test_non_local_domain_is_relay_denied(fast, rcpt):
    with session(fast) as c:
        assert c.cmd("MAIL FROM:<a@localhost>") == SENDER_OK
        assert c.cmd("RCPT TO:<%s>" % rcpt) == RELAY_DENIED
        # a refused recipient leaves nothing to send
        assert c.cmd("DATA") == "554 5.5.1 No valid recipients"
    assert fast.queue_ids() == []


def test_relay_denied_does_not_spoil_the_transaction(fast):
    with session(fast) as c:
        assert c.cmd("MAIL FROM:<a@other.org>") == SENDER_OK  # any sender is fine
        assert c.cmd("RCPT TO:<x@other.org>") == RELAY_DENIED
        assert c.cmd("RCPT TO:<b@localhost>") == RCPT_OK
        body = send_body(c)
    [(env, msg)] = fast.queued()
    assert env["sender"] == "<a@other.org>"
    assert env["rcpt"] == ["<b@localhost>"]
    assert strip_received(msg) == body


def test_local_domains_compare_without_case(fast):
    with session(fast) as c:
        c.cmd("MAIL FROM:<a@localhost>")
        assert c.cmd("RCPT TO:<Bob@LocalHost>") == RCPT_OK
        assert c.cmd("RCPT TO:<c@TEST.Example>") == RCPT_OK
        send_body(c)
    [(env, _)] = fast.queued()
    assert env["rcpt"] == ["<bob@localhost>", "<c@test.example>"]
    assert env["orig"] == ["<Bob@LocalHost>", "<c@TEST.Example>"]


def test_trusted_network_may_relay(make_hatod):
    h = make_hatod(server={"trusted_networks": "127.0.0.0/8"})
    with session(h) as c:
        assert c.cmd("MAIL FROM:<a@localhost>") == SENDER_OK
        assert c.cmd("RCPT TO:<user@other.org>") == RCPT_OK
        assert c.cmd("RCPT TO:<x@[192.0.2.1]>") == RCPT_OK
        assert c.cmd("RCPT TO:<b@localhost>") == RCPT_OK
        body = send_body(c)
    [(env, msg)] = h.queued()
    assert env["rcpt"] == ["<user@other.org>", "<x@[192.0.2.1]>", "<b@localhost>"]
    assert strip_received(msg) == body


def test_trusted_network_that_does_not_match_is_not_trusted(make_hatod):
    h = make_hatod(server={"trusted_networks": "192.0.2.0/24, 10.0.0.1, ::1/128"})
    with session(h) as c:
        c.cmd("MAIL FROM:<a@localhost>")
        assert c.cmd("RCPT TO:<user@other.org>") == RELAY_DENIED


@pytest.mark.parametrize("rcpt", [
    '"user@other.org"@localhost',
    'user%other.org@localhost',
    'other.org!user@localhost',
    '"john doe"@localhost',
    '"a\\"b"@test.example',
    'a.b+tag=x@localhost',
])
def test_tricky_local_parts_are_local_and_verbatim(fast, rcpt):
    """Never routed elsewhere: a local mailbox (the RCPT kept verbatim as the
    original recipient) or, when no mailbox can have that name, 550 5.1.1."""
    with session(fast) as c:
        assert c.cmd("MAIL FROM:<a@localhost>") == SENDER_OK
        reply = c.cmd("RCPT TO:<%s>" % rcpt)
        if reply == "550 5.1.1 Recipient address rejected: user unknown":
            assert '"user@other.org"' in rcpt  # a mailbox name cannot hold an @
            return
        assert reply == RCPT_OK
        body = send_body(c)
    [(env, msg)] = fast.queued()
    assert env["orig"] == ["<%s>" % rcpt]
    domain = rcpt.rsplit("@", 1)[1]
    assert env["rcpt"][0].endswith("@%s>" % domain)
    assert strip_received(msg) == body


@pytest.mark.parametrize("rcpt", ["postmaster", "Postmaster", "POSTMASTER"])
def test_bare_postmaster_is_accepted(fast, rcpt):
    with session(fast) as c:
        c.cmd("MAIL FROM:<a@localhost>")
        assert c.cmd("RCPT TO:<%s>" % rcpt) == RCPT_OK
        send_body(c)
    [(env, _)] = fast.queued()
    assert env["rcpt"] == ["<postmaster@localhost>"]
    assert env["orig"] == ["<%s>" % rcpt]


def test_bare_postmaster_only_as_recipient(fast):
    with session(fast) as c:
        assert c.cmd("MAIL FROM:<postmaster>") == "501 5.1.7 Bad sender address syntax"
        assert c.cmd("RCPT TO:<bob>") == "503 5.5.1 Bad sequence of commands"
        assert c.cmd("MAIL FROM:<a@localhost>") == SENDER_OK
        assert c.cmd("RCPT TO:<bob>") == "501 5.1.3 Bad recipient address syntax"


def test_address_literal_of_the_listener_is_local(fast):
    with session(fast) as c:
        c.cmd("MAIL FROM:<a@localhost>")
        assert c.cmd("RCPT TO:<user@[127.0.0.1]>") == RCPT_OK
        assert c.cmd("RCPT TO:<user@[127.0.0.2]>") == RELAY_DENIED
        assert c.cmd("RCPT TO:<user@[192.0.2.1]>") == RELAY_DENIED
        assert c.cmd("RCPT TO:<user@[IPv6:::1]>") == RELAY_DENIED
        assert c.cmd("RCPT TO:<user@[127.0.0.10]>") == RELAY_DENIED
        assert c.cmd("RCPT TO:<user@[127.0.0.1.5]>") == "501 5.1.3 Bad recipient address syntax"
        body = send_body(c)
    [(env, msg)] = fast.queued()
    assert env["rcpt"] == ["<user@localhost>"]
    assert env["orig"] == ["<user@[127.0.0.1]>"]
    assert strip_received(msg) == body


def test_source_route_is_stripped(fast):
    with session(fast) as c:
        c.cmd("MAIL FROM:<@a.example,@b.example:a@localhost>")
        assert c.cmd("RCPT TO:<@relay.example:b@localhost>") == RCPT_OK
        send_body(c)
    [(env, _)] = fast.queued()
    assert env["sender"] == "<a@localhost>"
    assert env["rcpt"] == ["<b@localhost>"]


def test_local_part_length_limit(fast):
    with session(fast) as c:
        assert c.cmd("MAIL FROM:<%s@localhost>" % ("s" * 65)) == \
            "553 5.1.7 Sender address too long"
        assert c.cmd("MAIL FROM:<%s@localhost>" % ("s" * 64)) == SENDER_OK
        assert c.cmd("RCPT TO:<%s@localhost>" % ("r" * 65)) == \
            "553 5.1.3 Recipient address too long"
        assert c.cmd("RCPT TO:<%s@localhost>" % ("r" * 64)) == RCPT_OK
        send_body(c)
    [(env, _)] = fast.queued()
    assert env["sender"] == "<%s@localhost>" % ("s" * 64)
    assert env["rcpt"] == ["<%s@localhost>" % ("r" * 64)]


def long_domain(n):
    """A syntactically valid domain of exactly n octets (labels <= 63)."""
    labels, left = [], n
    while left > 0:
        take = min(63, left)
        if left - take == 1:  # never leave a lone dot
            take -= 2
        labels.append("d" * take)
        left -= take + 1
    d = ".".join(labels)
    assert len(d) == n, (len(d), n)
    return d


def test_domain_length_limit(make_hatod):
    h = make_hatod(server={"trusted_networks": "127.0.0.1"},
                   limits={"error_delay_ms": "0"})
    with session(h) as c:
        assert c.cmd("MAIL FROM:<a@%s>" % long_domain(256)) == \
            "553 5.1.7 Sender address too long"
        assert c.cmd("MAIL FROM:<a@localhost>") == SENDER_OK
        assert c.cmd("RCPT TO:<a@%s>" % long_domain(256)) == \
            "553 5.1.3 Recipient address too long"
        assert c.cmd("RCPT TO:<a@%s>" % long_domain(300)) == \
            "553 5.1.3 Recipient address too long"
        # path = 256 octets with the brackets: the longest there is
        d189 = long_domain(189)
        assert c.cmd("RCPT TO:<%s@%s>" % ("l" * 64, d189)) == RCPT_OK
        assert c.cmd("RCPT TO:<%s@%s>" % ("l" * 64, long_domain(190))) == \
            "553 5.1.3 Recipient address too long"
        send_body(c)
    [(env, _)] = h.queued()
    assert env["rcpt"] == ["<%s@%s>" % ("l" * 64, d189)]


def test_label_longer_than_63_is_a_syntax_error(make_hatod):
    h = make_hatod(server={"trusted_networks": "127.0.0.1"})
    with session(h) as c:
        c.cmd("MAIL FROM:<a@localhost>")
        assert c.cmd("RCPT TO:<a@%s.example>" % ("x" * 64)) == \
            "501 5.1.3 Bad recipient address syntax"
        assert c.cmd("RCPT TO:<a@%s.example>" % ("x" * 63)) == RCPT_OK


def test_null_path_only_for_mail(fast):
    with session(fast) as c:
        assert c.cmd("MAIL FROM:<>") == SENDER_OK
        assert c.cmd("RCPT TO:<>") == "501 5.1.3 Bad recipient address syntax"
        assert c.cmd("RCPT TO:<b@localhost>") == RCPT_OK
        body = send_body(c)
    [(env, msg)] = fast.queued()
    assert env["sender"] == "<>"
    assert env["rcpt"] == ["<b@localhost>"]
    assert strip_received(msg) == body


@pytest.mark.parametrize("line,reply", [
    ("RCPT TO:b@localhost", "501 5.1.3 Bad recipient address syntax"),
    ("RCPT TO:<b@localhost", "501 5.1.3 Bad recipient address syntax"),
    ("RCPT TO:<b@localhost.>", "501 5.1.3 Bad recipient address syntax"),
    ("RCPT TO:<b..c@localhost>", "501 5.1.3 Bad recipient address syntax"),
    ("RCPT TO:<@localhost>", "501 5.1.3 Bad recipient address syntax"),
    ("RCPT TO:<b@-localhost>", "501 5.1.3 Bad recipient address syntax"),
    ("RCPT TO:<b@localhost>x", "501 5.1.3 Bad recipient address syntax"),
    ("RCPT TO:<b@localhost> FOO=BAR", "555 5.5.4 Unsupported parameter"),
    ("RCPT TO:<b@localhost> NOTIFY=NEVER", RCPT_OK),
    ("RCPT TO:<b@localhost> NOTIFY=NEVER,DELAY", "501 5.5.4 Invalid NOTIFY parameter value"),
    ("RCPT <b@localhost>", "501 5.5.2 Syntax: RCPT TO:<address>"),
    ("RCPT TO: <b@localhost>", RCPT_OK),
    ("rcpt to:<b@localhost>", RCPT_OK),
])
def test_rcpt_syntax(fast, line, reply):
    with session(fast) as c:
        assert c.cmd("MAIL FROM:<a@localhost>") == SENDER_OK
        assert c.cmd(line) == reply


@pytest.mark.parametrize("configured,sent", [
    ("bücher.example", "xn--bcher-kva.example"),
    ("xn--bcher-kva.example", "bücher.example"),
])
def test_idn_local_domain_in_both_forms(make_hatod, configured, sent):
    h = make_hatod(server={"local_domains": "localhost, " + configured})
    with session(h) as c:
        assert c.cmd("MAIL FROM:<a@localhost> SMTPUTF8") == SENDER_OK
        assert c.cmd("RCPT TO:<a@%s>" % configured) == RCPT_OK
        assert c.cmd("RCPT TO:<b@%s>" % sent) == RCPT_OK


def test_idn_local_domain_as_configured(make_hatod):
    h = make_hatod(server={"local_domains": "localhost, bücher.example"})
    with session(h) as c:
        assert c.cmd("MAIL FROM:<a@localhost> SMTPUTF8") == SENDER_OK
        assert c.cmd("RCPT TO:<jürgen@bücher.example>") == RCPT_OK
        body = send_body(c)
    [qid] = h.queue_ids()
    assert "addr=<jürgen@bücher.example>\n" in h.envelope_text(qid)
    [(_, msg)] = h.queued()
    assert strip_received(msg) == body
