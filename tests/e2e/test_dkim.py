"""hato dkim: keygen writes a key only hatod's user can read and prints the
[dkim] section and the TXT record; check compares the published record
(served by a private dnsmasq) with the key; verify checks messages that
dkimpy (Debian's python3-dkim, the reference) signed, with both
algorithms, and refuses them once a signed header field is altered."""
import base64
import os
import pwd
import re
import stat
import subprocess

import pytest

from conftest import HATO, Zone

dkim = pytest.importorskip("dkim", reason="python3-dkim (dkimpy) is needed: scripts/setup.sh")
nacl_signing = pytest.importorskip("nacl.signing", reason="python3-nacl is needed")

MSG = (b"From: Ann Example <ann@example.test>\r\n"
       b"To: bob@elsewhere.test\r\n"
       b"Subject: a signed message\r\n"
       b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
       b"Message-ID: <1@example.test>\r\n"
       b"\r\n"
       b"Hello,\r\n\r\nthis is signed.\r\n")


def hato(h_conf, *args, data=None):
    return subprocess.run([HATO, "-c", h_conf, *args], input=data, capture_output=True,
                          timeout=30)


def conf(testdir, dns=None, extra=""):
    path = os.path.join(testdir, "hato.conf")
    text = ("[server]\nstate_dir = %s\n[listener smtp]\naddress = 127.0.0.1:1\n"
            % os.path.join(testdir, "state"))
    if dns is not None:
        text += "[dns]\nservers = %s\ntimeout = 500ms\ntries = 1\n" % dns.address
    with open(path, "w") as f:
        f.write(text + extra)
    return path


def keygen(c, *args):
    r = hato(c, "dkim", "keygen", *args)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    key = re.search(r"^key = (.*)$", out, re.M).group(1)
    txt = "".join(re.findall(r'"([^"]*)"', out.split("IN TXT", 1)[1]))
    section = out[out.index("[dkim "):out.index("\n\n")]
    return out, key, txt, section


def test_keygen_ed25519(testdir):
    c = conf(testdir)
    out, key, txt, section = keygen(c, "example.test", "sel1")
    assert "[dkim sel1.example.test]" in out
    assert "domain = example.test\nselector = sel1\n" in section
    assert "algorithm = ed25519-sha256" in section
    assert key == os.path.join(testdir, "state", "dkim", "example.test.sel1.key")
    assert out.count("sel1._domainkey.example.test. IN TXT") == 1
    assert re.fullmatch(r"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=", txt), txt
    st = os.stat(key)
    assert stat.S_IMODE(st.st_mode) == 0o600
    if os.geteuid() == 0:  # given to hatod's user
        assert st.st_uid == pwd.getpwnam("hato").pw_uid
    with open(key) as f:
        assert f.read().startswith("-----BEGIN PRIVATE KEY-----")
    # never over an existing key
    r = hato(c, "dkim", "keygen", "example.test", "sel1")
    assert r.returncode != 0 and b"File exists" in r.stderr


def test_keygen_rsa(testdir):
    c = conf(testdir)
    out, key, txt, section = keygen(c, "example.test", "rsa1", "--algorithm", "rsa")
    assert "algorithm = rsa-sha256" in section
    assert txt.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")  # 2048 bits by default
    # more than one DNS string: each at most 255 octets
    strings = re.findall(r'"([^"]*)"', out.split("IN TXT", 1)[1])
    assert len(strings) == 2 and all(len(s) <= 255 for s in strings)
    r = subprocess.run(["openssl", "pkey", "-in", key, "-noout", "-text"],
                       capture_output=True)
    assert b"2048 bit" in r.stdout
    _, key, _, _ = keygen(c, "example.test", "rsa2", "--algorithm", "rsa", "--bits", "1024",
                          "--key", os.path.join(testdir, "k.pem"))
    assert key == os.path.join(testdir, "k.pem")
    for bits in ("512", "1023"):
        r = hato(c, "dkim", "keygen", "example.test", "weak", "--algorithm", "rsa",
                 "--bits", bits)
        assert r.returncode == 64 and b"1024" in r.stderr
    assert not os.path.exists(os.path.join(testdir, "state", "dkim", "example.test.weak.key"))
    for bad in (["example.test"], ["bad domain", "s"], ["example.test", "bad/sel"],
                ["example.test", "s", "--algorithm", "dsa"]):
        assert hato(c, "dkim", "keygen", *bad).returncode == 64


def test_check(testdir, make_dns_server):
    c0 = conf(testdir)
    _, _, txt, section = keygen(c0, "example.test", "good")
    _, _, other, _ = keygen(c0, "example.test", "other")
    zone = (Zone().txt("good._domainkey.example.test", txt)
            .txt("wrong._domainkey.example.test", other)
            .txt("junk._domainkey.example.test", "v=DKIM1; p=@@@"))
    dns = make_dns_server(zone)
    c = conf(testdir, dns, section + "\n" + section.replace("[dkim good.", "[dkim wrong.")
             .replace("selector = good", "selector = wrong")
             + "\n" + section.replace("[dkim good.", "[dkim junk.")
             .replace("selector = good", "selector = junk")
             + "\n" + section.replace("[dkim good.", "[dkim none.")
             .replace("selector = good", "selector = none") + "\n")
    r = hato(c, "dkim", "check", "example.test", "good")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(b"match: good._domainkey.example.test publishes this key")
    r = hato(c, "dkim", "check", "example.test", "wrong")
    assert r.returncode == 1 and r.stdout.startswith(b"mismatch: ")
    assert ("publish: %s" % txt).encode() in r.stdout
    r = hato(c, "dkim", "check", "example.test", "junk")
    assert r.returncode == 1 and b"unusable" in r.stdout
    r = hato(c, "dkim", "check", "example.test", "none")
    assert r.returncode == 69 and r.stdout.startswith(b"no record: ")
    r = hato(c, "dkim", "check", "example.test", "unknown")
    assert r.returncode == 78 and b"no [dkim] section" in r.stderr


def test_check_dns_failure(testdir, make_dns_server):
    """A DNS failure is exit 75, not a verdict on the key."""
    c0 = conf(testdir)
    _, key, _, section = keygen(c0, "broken.test", "s")
    dns = make_dns_server(Zone().broken("broken.test"))
    c = conf(testdir, dns, section + "\n")
    r = hato(c, "dkim", "check", "broken.test", "s")
    assert r.returncode == 75 and r.stdout.startswith(b"dns failure: "), r.stdout


def ed25519_pair():
    """dkimpy's Ed25519 private key (base64 seed) and the record's p=."""
    sk = nacl_signing.SigningKey.generate()
    return (base64.b64encode(bytes(sk)),
            base64.b64encode(bytes(sk.verify_key)).decode())


def test_verify_dkimpy_signed(testdir, make_dns_server):
    c0 = conf(testdir)
    _, rsa_key, rsa_txt, _ = keygen(c0, "example.test", "rsa", "--algorithm", "rsa")
    ed_priv, ed_pub = ed25519_pair()
    zone = (Zone().txt("rsa._domainkey.example.test", rsa_txt)
            .txt("ed._domainkey.example.test", "v=DKIM1; k=ed25519; p=" + ed_pub))
    dns = make_dns_server(zone)
    c = conf(testdir, dns)
    with open(rsa_key, "rb") as f:
        rsa_pem = f.read()
    for canon in ((b"relaxed", b"relaxed"), (b"simple", b"simple"), (b"relaxed", b"simple")):
        sig_rsa = dkim.sign(MSG, b"rsa", b"example.test", rsa_pem, canonicalize=canon)
        sig_ed = dkim.sign(MSG, b"ed", b"example.test", ed_priv, canonicalize=canon,
                           signature_algorithm=b"ed25519-sha256")
        signed = sig_ed + sig_rsa + MSG
        r = hato(c, "dkim", "verify", data=signed)
        assert r.returncode == 0, (canon, r.stdout, r.stderr)
        lines = r.stdout.decode().splitlines()
        assert lines[0].startswith("pass d=example.test s=ed a=ed25519-sha256 header.b=")
        assert lines[1].startswith("pass d=example.test s=rsa a=rsa-sha256 header.b=")
        # a signed header field altered: both fail
        altered = signed.replace(b"Subject: a signed", b"Subject: a forged")
        r = hato(c, "dkim", "verify", data=altered)
        assert r.returncode == 1
        assert [ln.split()[0] for ln in r.stdout.decode().splitlines()] == ["fail", "fail"]
        # the body altered
        r = hato(c, "dkim", "verify", data=signed.replace(b"is signed", b"is changed"))
        assert r.returncode == 1 and b"body hash did not verify" in r.stdout
    # no signature
    r = hato(c, "dkim", "verify", data=MSG)
    assert r.returncode == 1 and r.stdout == b"none: no DKIM signature\n"


# --- hatod signs at intake; dkimpy, asking the private dnsmasq, verifies ---

def dnsfunc_for(dns_server):
    """dkimpy's key lookup, asking our dnsmasq (dnspython, as dkimpy does)."""
    import dns.resolver

    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = dns_server.port

    def lookup(name, timeout=5):
        ans = res.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
        return b"".join(b"".join(r.strings) for r in ans)
    return lookup


SIGNED_MESSAGES = {
    "plain": b"From: Ann <ann@example.test>\r\nTo: bob@test.example\r\nSubject: hi\r\n"
             b"Message-ID: <a@example.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
             b"\r\nhello\r\n",
    "folded": b"From: \"Ann, A.\"\r\n <ann@sub.example.test>\r\nTo: bob@test.example,\r\n"
              b"\tcarol@test.example\r\nSubject: a subject\r\n  folded over\r\n\tthree lines\r\n"
              b"\r\nbody  with   spaces \t\r\n",
    "8bit": b"From: ann@example.test\r\nTo: bob@test.example\r\nSubject: 8bit\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
            b"\xc3\xa9t\xc3\xa9\r\n",
    "empty-lines": b"From: ann@example.test\r\nTo: bob@test.example\r\nSubject: e\r\n"
                   b"\r\n\r\n\r\n\r\n",
    "no-body": b"From: ann@example.test\r\nTo: bob@test.example\r\nSubject: nothing\r\n",
}


@pytest.fixture
def signing(testdir, make_dns_server):
    """Keys for example.test (Ed25519 and RSA: dual signing) published in a
    private dnsmasq; returns (sections for hato.conf, dkimpy's dnsfunc)."""
    c0 = conf(testdir)
    _, _, ed_txt, ed_sec = keygen(c0, "example.test", "ed")
    _, _, rsa_txt, rsa_sec = keygen(c0, "example.test", "rsa", "--algorithm", "rsa")
    dns = make_dns_server(Zone().txt("ed._domainkey.example.test", ed_txt)
                          .txt("rsa._domainkey.example.test", rsa_txt))
    return ed_sec + "\n" + rsa_sec + "\n", dnsfunc_for(dns)


def dkimpy_results(msg, dnsfunc):
    """dkimpy's verdict on each DKIM-Signature of msg, and the d= and a= of each."""
    d = dkim.DKIM(msg)
    n = msg.count(b"\nDKIM-Signature:") + msg.startswith(b"DKIM-Signature:")
    out = []
    for i in range(n):
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
        out.append((ok, d.domain, d.signature_fields.get(b"a")))
    return out


def send(h, msg, sender="ann@example.test", rcpts=("bob@test.example",)):
    import smtplib
    with smtplib.SMTP(h.host, h.port, timeout=10) as s:
        s.sendmail(sender, list(rcpts), msg)


def test_hatod_signs_trusted_mail(make_hatod, signing):
    sections, dnsfunc = signing
    h = make_hatod(server={"trusted_networks": "127.0.0.1/32"},
                   extra="[domain test.example]\nmailboxes = *\n" + sections)
    for name, msg in SIGNED_MESSAGES.items():
        send(h, msg)
    queued = h.queued()
    assert len(queued) == len(SIGNED_MESSAGES)
    for env, msg in queued:
        # our Received: first, then the two signatures, once each
        assert msg.startswith(b"Received: ")
        assert msg.count(b"DKIM-Signature:") == 2
        res = dkimpy_results(msg, dnsfunc)
        assert [(ok, d) for ok, d, _ in res] == [(True, b"example.test")] * 2, msg
        assert sorted(a for _, _, a in res) == [b"ed25519-sha256", b"rsa-sha256"]
        # relaxed/relaxed, no l=, a t=, From over-signed
        assert b"c=relaxed/relaxed" in msg and b" l=" not in msg and b"; t=" in msg
        assert b"h=from:from:" in msg
        # a header field added later breaks both signatures
        tampered = msg.replace(b"\r\n\r\n", b"\r\nSubject: added\r\n\r\n", 1) \
            if b"\r\n\r\n" in msg else msg + b"Subject: added\r\n"
        assert [ok for ok, _, _ in dkimpy_results(tampered, dnsfunc)] == [False, False]
    assert h.logs().count("event=dkim_signed") == len(SIGNED_MESSAGES)


def test_hatod_never_signs_relayed_mail(make_hatod, signing):
    """Mail from the internet (an untrusted client, no AUTH), even From: a
    domain with keys, and mail From: a domain without keys, goes unsigned."""
    sections, _ = signing
    h = make_hatod(extra="[domain test.example]\nmailboxes = *\n" + sections)
    send(h, SIGNED_MESSAGES["plain"])
    h2 = make_hatod(server={"trusted_networks": "127.0.0.1/32"},
                    extra="[domain test.example]\nmailboxes = *\n" + sections)
    send(h2, b"From: x@other.test\r\nSubject: s\r\n\r\nbody\r\n")
    for hh in (h, h2):
        [(env, msg)] = hh.queued()
        assert b"DKIM-Signature" not in msg
    assert "event=dkim_not_signed" in h2.logs() and "no key for the From: domain" in h2.logs()


def test_pickup_mail_is_signed(make_hatod, signing):
    sections, dnsfunc = signing
    h = make_hatod(extra="[domain test.example]\nmailboxes = *\n" + sections)
    r = subprocess.run([HATO, "-c", h.conf_path, "send", "-t", "-f", "ann@example.test"],
                       input=b"From: ann@example.test\nTo: bob@test.example\nSubject: cron\n\n"
                             b"done\n", capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    h.wait_log("event=dkim_signed")
    import time
    deadline = time.monotonic() + 10
    while not h.committed_ids():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    [(env, msg)] = h.queued()
    assert [ok for ok, _, _ in dkimpy_results(msg, dnsfunc)] == [True, True]
