"""The checks of received mail (SPF, DMARC, Authentication-Results:) against
the real hatod, with DNS served by a private dnsmasq (dnsserver.py) and
mail sent by Python's smtplib.

Each test asserts the reply at the final dot, the bytes of the header that
lands in the Maildir (or the Junk folder; Maildir files have LF line ends),
and the log line that says why.
"""
import glob
import os
import smtplib
import time

import pytest

from dnsserver import Zone

TIMEOUT = 15.0
HOST = "mx.test.example"  # the [server] hostname: our authserv-id


def zone():
    z = Zone()
    z.txt("good.test", "v=spf1 ip4:127.0.0.1 -all")
    z.txt("_dmarc.good.test", "v=DMARC1; p=reject")
    z.txt("bank.test", "v=spf1 -all")
    z.txt("_dmarc.bank.test", "v=DMARC1; p=reject; rua=mailto:d@bank.test")
    z.txt("other.test", "v=spf1 ip4:127.0.0.1 -all")
    z.txt("quar.test", "v=spf1 -all")
    z.txt("_dmarc.quar.test", "v=DMARC1; p=quarantine")
    z.txt("corp.test", "v=spf1 -all")
    z.txt("_dmarc.corp.test", "v=DMARC1; p=none; sp=reject")
    z.broken("broken.test")
    return z


@pytest.fixture
def checked(make_hatod, make_dns_server):
    dns = make_dns_server(zone())
    extra = ("[domain test.example]\nmailboxes = *\n"
             "[dns]\nservers = %s\ntimeout = 300ms\ntries = 1\n" % dns.address)
    return make_hatod(extra=extra, checks={"enable": "yes"}, delivery={"hold": "no"})


def message(from_hdr, extra=b""):
    return (b"From: " + from_hdr.encode() + b"\r\nTo: user@test.example\r\n"
            b"Subject: checks\r\n" + extra + b"\r\nhello\r\n")


def send(h, mail_from, from_hdr, extra=b"", helo="client.example"):
    """Send one message; None when taken, else (code, reply text)."""
    with smtplib.SMTP(h.host, h.port, local_hostname=helo, timeout=TIMEOUT) as s:
        try:
            s.sendmail(mail_from, ["user@test.example"], message(from_hdr, extra))
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error.decode()
    return None


def delivered(h, folder=""):
    """Wait for the one delivered file in new/ (of folder); its bytes."""
    pattern = os.path.join(h.state_dir, "mail", "test.example", "user", folder, "new", "*")
    deadline = time.monotonic() + TIMEOUT
    while not glob.glob(pattern):
        assert time.monotonic() < deadline, "nothing delivered to %s" % pattern
        time.sleep(0.05)
    files = glob.glob(pattern)
    assert len(files) == 1
    with open(files[0], "rb") as f:
        return f.read()


def test_spf_pass_and_dmarc_pass_get_one_header(checked):
    assert send(checked, "a@good.test", "Alice <a@good.test>") is None
    msg = delivered(checked)
    assert (b"Delivered-To: user@test.example\n"
            b"Authentication-Results: mx.test.example;\n"
            b"\tspf=pass smtp.mailfrom=a@good.test;\n"
            b"\tdkim=none;\n"
            b"\tdmarc=pass (p=reject dis=none) header.from=good.test\n"
            b"Received: from client.example") in msg
    assert msg.count(b"Authentication-Results:") == 1
    checked.wait_log("event=checks")
    log = checked.logs()
    assert "spf=pass spf_domain=good.test dkim=none dmarc=pass from_domain=good.test" in log
    assert "action=accept" in log


def test_dmarc_reject_refuses_at_the_final_dot(checked):
    # SPF passes, but for other.test: not aligned with bank.test
    got = send(checked, "x@other.test", "Bank <alerts@bank.test>")
    assert got is not None and got[0] == 550
    assert got[1].startswith("5.7.1 ") and "bank.test" in got[1]
    checked.wait_log('action=reject reason="dmarc policy reject"')
    assert "dmarc=fail from_domain=bank.test policy=reject" in checked.logs()
    assert checked.queue_ids() == []
    assert not glob.glob(os.path.join(checked.state_dir, "mail", "test.example", "user",
                                      "new", "*"))


def test_dmarc_quarantine_goes_to_junk(checked):
    assert send(checked, "b@quar.test", "a@quar.test") is None
    msg = delivered(checked, ".Junk")
    assert (b"Authentication-Results: mx.test.example;\n"
            b"\tspf=fail smtp.mailfrom=b@quar.test;\n"
            b"\tdkim=none;\n"
            b"\tdmarc=fail (p=quarantine dis=quarantine) header.from=quar.test\n") in msg
    assert not glob.glob(os.path.join(checked.state_dir, "mail", "test.example", "user",
                                      "new", "*"))
    checked.wait_log('action=junk reason="dmarc policy quarantine"')


def test_subdomain_policy_sp(checked):
    # sub.corp.test has no record: corp.test's sp=reject applies
    got = send(checked, "x@other.test", "a@sub.corp.test")
    assert got is not None and got[0] == 550 and got[1].startswith("5.7.1")
    # corp.test itself: p=none, delivered with the failure in the header
    assert send(checked, "x@other.test", "a@corp.test") is None
    msg = delivered(checked)
    assert b"\tdmarc=fail (p=none dis=none) header.from=corp.test\n" in msg


def test_dns_failure_is_a_temporary_refusal(checked):
    got = send(checked, "a@x.broken.test", "a@x.broken.test")
    assert got is not None and got[0] == 451
    assert got[1].startswith("4.7.24 ")
    checked.wait_log('action=tempfail reason="spf temperror"')
    assert checked.queue_ids() == []


def test_forged_results_removed_others_kept(checked):
    extra = (b"Authentication-Results: MX.test.example; spf=pass smtp.mailfrom=evil\r\n"
             b"Authentication-Results: (c) mx.test.example;\r\n dmarc=pass\r\n"
             b"Authentication-Results: relay.example; dkim=pass header.d=good.test\r\n")
    assert send(checked, "a@good.test", "a@good.test", extra) is None
    msg = delivered(checked)
    assert msg.count(b"Authentication-Results:") == 2
    assert b"smtp.mailfrom=evil" not in msg and b"(c) mx.test.example" not in msg
    assert b"Authentication-Results: relay.example; dkim=pass header.d=good.test\n" in msg
    checked.wait_log("forged_ar_removed=2")


def test_null_sender_checks_the_helo_name(checked):
    assert send(checked, "", "a@good.test", helo="good.test") is None
    msg = delivered(checked)
    assert (b"\tspf=pass smtp.helo=good.test;\n"
            b"\tdkim=none;\n"
            b"\tdmarc=pass (p=reject dis=none) header.from=good.test\n") in msg


def test_trusted_clients_are_not_checked(make_hatod, make_dns_server):
    """A client in trusted_networks relays as our own: no checks, no header,
    even for mail that DMARC would refuse."""
    dns = make_dns_server(zone())
    extra = ("[domain test.example]\nmailboxes = *\n[dns]\nservers = %s\n" % dns.address)
    h = make_hatod(extra=extra, checks={"enable": "yes"}, delivery={"hold": "no"},
                   server={"trusted_networks": "127.0.0.1"})
    assert send(h, "x@other.test", "Bank <alerts@bank.test>") is None
    msg = delivered(h)
    assert b"Authentication-Results:" not in msg
    assert "event=checks" not in h.logs()


def test_checks_off(make_hatod, make_dns_server):
    """[checks] enable = no: mail DMARC would refuse is taken, unmarked."""
    dns = make_dns_server(zone())
    extra = ("[domain test.example]\nmailboxes = *\n[dns]\nservers = %s\n" % dns.address)
    h = make_hatod(extra=extra, delivery={"hold": "no"})
    assert send(h, "x@other.test", "Bank <alerts@bank.test>") is None
    assert b"Authentication-Results:" not in delivered(h)


def test_dmarc_reject_may_be_junk_instead(make_hatod, make_dns_server):
    """[checks] dmarc_reject = junk: the p=reject failure goes to Junk."""
    dns = make_dns_server(zone())
    extra = ("[domain test.example]\nmailboxes = *\n[dns]\nservers = %s\n" % dns.address)
    h = make_hatod(extra=extra, checks={"enable": "yes", "dmarc_reject": "junk"},
                   delivery={"hold": "no"})
    assert send(h, "x@other.test", "Bank <alerts@bank.test>") is None
    assert b"\tdmarc=fail (p=reject dis=reject) header.from=bank.test\n" in delivered(h, ".Junk")
    h.wait_log('action=junk reason="dmarc policy reject"')


def dkim_zone(testdir):
    """zone() plus an RSA-2048 key for sel._domainkey.signed.test (made with
    openssl), DMARC p=reject there; the private key's PEM."""
    import base64
    import subprocess
    key = os.path.join(testdir, "dkim.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", key], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    z = zone()
    parts = [record[i:i + 250] for i in range(0, len(record), 250)]
    z.lines.append("txt-record=sel._domainkey.signed.test,%s"
                   % ",".join('"%s"' % p for p in parts))
    z.txt("_dmarc.signed.test", "v=DMARC1; p=reject")
    with open(key, "rb") as f:
        return z, f.read()


def test_aligned_dkim_pass_passes_dmarc(make_hatod, make_dns_server, testdir):
    """dkimpy signs for signed.test; SPF passes only for other.test: DMARC
    passes through the aligned DKIM signature.  Once a signed header is
    altered, DKIM fails and p=reject refuses the message."""
    import dkim
    z, key = dkim_zone(testdir)
    dns = make_dns_server(z)
    extra = ("[domain test.example]\nmailboxes = *\n"
             "[dns]\nservers = %s\ntimeout = 300ms\ntries = 1\n" % dns.address)
    h = make_hatod(extra=extra, checks={"enable": "yes"}, delivery={"hold": "no"})
    msg = message("a@signed.test")
    sig = dkim.sign(msg, b"sel", b"signed.test", key, include_headers=[b"From", b"To", b"Subject"])
    with smtplib.SMTP(h.host, h.port, local_hostname="client.example", timeout=TIMEOUT) as s:
        s.sendmail("x@other.test", ["user@test.example"], sig + msg)
    got = delivered(h)
    assert b"\n\tdkim=pass header.d=signed.test header.s=sel header.b=" in got
    assert b"\n\tdmarc=pass (p=reject dis=none) header.from=signed.test\n" in got
    h.wait_log("spf=pass spf_domain=other.test dkim=pass/signed.test dmarc=pass")
    altered = sig + msg.replace(b"Subject: checks", b"Subject: altered")
    with smtplib.SMTP(h.host, h.port, local_hostname="client.example", timeout=TIMEOUT) as s:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("x@other.test", ["user@test.example"], altered)
    assert e.value.smtp_code == 550
    h.wait_log('action=reject reason="dmarc policy reject"')
    assert "dkim=fail/signed.test dmarc=fail from_domain=signed.test" in h.logs()
