"""`hato route ADDRESS` and `hato route DOMAIN` print the routing decision
that delivery makes (src/route/), read from the configuration file: a local
Maildir (after aliases and subaddresses, where hatod really delivers), an
LMTP server ([domain NAME] lmtp), the relayhost with its TLS settings,
[transport] entries, and the MX hosts of the test DNS server, each with
the TLS policy that applies.  test_mx.py covers the MX answers themselves.
"""
import os
import smtplib
import subprocess
import time

import pytest

from conftest import HATO, Zone

EX_USAGE, EX_UNAVAILABLE, EX_TEMPFAIL = 64, 69, 75

LISTENER = "[listener smtp]\naddress = 127.0.0.1:2525\n"


def write_conf(directory, text):
    path = os.path.join(directory, "hato.conf")
    with open(path, "w") as f:
        f.write("[server]\nhostname = mx.example.org\nstate_dir = %s/state\n"
                "local_domains = example.org, lmtp.example, b\u00fccher.example\n"
                "[delivery]\nmailbox_path = %s/mail/%%d/%%u\n%s%s"
                % (directory, directory, text, LISTENER))
    return path


def route(conf, *args):
    """hato -c conf route ARGS: (exit code, stdout lines, stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HATO_CONFIG", "HATO_STATE")}
    r = subprocess.run([HATO, "-c", conf, "route", *args], capture_output=True, timeout=30,
                       env=env)
    return r.returncode, r.stdout.decode().splitlines(), r.stderr.decode()


LOCAL = ("[domain example.org]\nmailboxes = alice, bob\n"
         "[domain lmtp.example]\nmailboxes = *\nlmtp = unix:/run/dovecot/lmtp\n"
         "[domain b\u00fccher.example]\nmailboxes = *\n")


def test_local_mailbox(testdir):
    conf = write_conf(testdir, LOCAL)
    want = "maildir alice@example.org %s/mail/example.org/alice" % testdir
    assert route(conf, "alice@example.org") == (0, [want], "")
    # subaddress and case: the same mailbox
    assert route(conf, "Alice+news@EXAMPLE.org") == (0, [want], "")
    # the domain alone: the mailbox_path template
    assert route(conf, "example.org") == (
        0, ["maildir example.org %s/mail/%%d/%%u" % testdir], "")


def test_local_idn_domain_in_both_forms(testdir):
    conf = write_conf(testdir, LOCAL)
    for addr in ("u@b\u00fccher.example", "u@xn--bcher-kva.example"):
        rc, lines, err = route(conf, addr)
        assert (rc, err) == (0, ""), addr
        [line] = lines
        assert line.startswith("maildir u@b\u00fccher.example "), line


def test_unknown_local_user_fails_as_rcpt_would(testdir):
    conf = write_conf(testdir, LOCAL)
    assert route(conf, "nobody@example.org") == (
        EX_UNAVAILABLE, [], "hato: 5.1.1 no such user nobody@example.org\n")


def test_aliases_give_each_targets_route(testdir):
    aliases = os.path.join(testdir, "aliases")
    with open(aliases, "w") as f:
        f.write("team: alice, carol@lmtp.example, friend@partner.test\n")
    conf = write_conf(testdir, "aliases_file = %s\n" % aliases + LOCAL +
                      "[transport]\npartner.test = [127.0.0.1]:2526\n")
    assert route(conf, "team@example.org") == (0, [
        "maildir alice@example.org %s/mail/example.org/alice" % testdir,
        "lmtp carol@lmtp.example unix:/run/dovecot/lmtp",
        "transport friend@partner.test [127.0.0.1]:2526 entry=partner.test tls=may",
    ], "")


def test_lmtp(testdir):
    conf = write_conf(testdir, LOCAL)
    assert route(conf, "carol@lmtp.example") == (
        0, ["lmtp carol@lmtp.example unix:/run/dovecot/lmtp"], "")
    assert route(conf, "LMTP.example") == (
        0, ["lmtp LMTP.example unix:/run/dovecot/lmtp"], "")


def test_relayhost(testdir):
    auth = os.path.join(testdir, "relay-auth")
    with open(auth, "w") as f:
        f.write("user:secret\n")
    os.chmod(auth, 0o600)
    conf = write_conf(testdir, LOCAL +
                      "[remote]\nrelayhost = [127.0.0.1]:4650\nrelayhost_tls = encrypt\n"
                      "relayhost_implicit_tls = yes\nrelayhost_auth_file = %s\n"
                      "[transport]\nremote.test = [other.example]\n"
                      "[tls_policy]\nremote.test = none\n" % auth)
    assert route(conf, "someone@remote.test") == (0, [
        "relayhost someone@remote.test [127.0.0.1]:4650 tls=encrypt implicit_tls=yes auth=yes",
    ], "")
    assert route(conf, "remote.test") == (0, [
        "relayhost remote.test [127.0.0.1]:4650 tls=encrypt implicit_tls=yes auth=yes"], "")
    # local domains stay local
    assert route(conf, "bob@example.org")[1] == [
        "maildir bob@example.org %s/mail/example.org/bob" % testdir]
    # the password is never shown
    assert "secret" not in "".join(route(conf, "x@remote.test")[1])


def test_relayhost_defaults(testdir):
    conf = write_conf(testdir, "[remote]\nrelayhost = smtp.example.net:587\n")
    assert route(conf, "a@remote.test") == (0, [
        "relayhost a@remote.test smtp.example.net:587 tls=may implicit_tls=no auth=no"], "")


def test_transport_entries(testdir):
    conf = write_conf(testdir, "[remote]\ntls = encrypt\n"
                      "[transport]\n* = [fallback.example]\n"
                      ".hub.test = [127.0.0.1]:2600\nhub.test = hub-mx.example\n"
                      "[tls_policy]\n.hub.test = verify\n")
    assert route(conf, "a@hub.test") == (
        0, ["transport a@hub.test hub-mx.example entry=hub.test tls=encrypt"], "")
    assert route(conf, "a@deep.sub.hub.test") == (0, [
        "transport a@deep.sub.hub.test [127.0.0.1]:2600 entry=.hub.test tls=verify "
        "tls_policy=.hub.test"], "")
    assert route(conf, "elsewhere.test") == (
        0, ["transport elsewhere.test [fallback.example] entry=* tls=encrypt"], "")


@pytest.fixture
def dns(make_dns_server):
    z = Zone()
    z.mx("mail.test", 10, "mx1.mail.test")
    z.host("mx1.mail.test", "127.0.0.11")
    z.mx("secure.test", 5, "mx.secure.test")
    z.host("mx.secure.test", "127.0.0.12")
    return make_dns_server(z)


def test_mx_with_tls_policy(testdir, dns):
    conf = write_conf(testdir, "[dns]\nservers = %s\ntimeout = 300ms\n"
                      "[tls_policy]\nsecure.test = verify\n" % dns.address)
    # the default policy: the MX lines exactly as they always were
    assert route(conf, "mail.test") == (0, ["mx 10 mx1.mail.test 127.0.0.11"], "")
    assert route(conf, "x@mail.test") == (0, ["mx 10 mx1.mail.test 127.0.0.11"], "")
    # a [tls_policy] entry: named after the hosts
    assert route(conf, "x@secure.test") == (
        0, ["mx 5 mx.secure.test 127.0.0.12", "tls verify tls_policy=secure.test"], "")
    rc, lines, err = route(conf, "x@nosuch.test")
    assert (rc, lines, err) == (EX_UNAVAILABLE, [], "hato: 5.1.2 nosuch.test: no such domain\n")


def test_mx_with_remote_tls(testdir, dns):
    conf = write_conf(testdir, "[dns]\nservers = %s\n[remote]\ntls = none\n" % dns.address)
    assert route(conf, "mail.test") == (0, ["mx 10 mx1.mail.test 127.0.0.11", "tls none"], "")


def test_bad_address(testdir):
    conf = write_conf(testdir, "")
    for arg in ("a@", "a b@example.org", "@example.org"):
        rc, lines, err = route(conf, arg)
        assert (rc, lines) == (EX_USAGE, []), arg
        assert err == "hato: route: not an address (want LOCAL@DOMAIN)\n"


def test_maildir_shown_is_where_hatod_delivers(make_hatod):
    h = make_hatod(delivery={"hold": "no"})
    rc, lines, err = route(h.conf_path, "someone+tag@test.example")
    assert (rc, err) == (0, "")
    [line] = lines
    kind, who, path = line.split(" ")
    # mailboxes = *: "someone+tag" is a mailbox of its own name
    assert (kind, who) == ("maildir", "someone+tag@test.example")
    with smtplib.SMTP(h.host, h.port, timeout=10) as s:
        s.sendmail("a@example.com", ["someone+tag@test.example"],
                   b"Subject: routed\r\n\r\nhello\r\n")
    new = os.path.join(path, "new")
    deadline = time.monotonic() + 10
    while not (os.path.isdir(new) and os.listdir(new)):
        assert time.monotonic() < deadline, "nothing delivered into " + new
        time.sleep(0.02)
