"""SIGHUP: the whole configuration is read again and swapped in.

Each test starts the real hatod, changes its configuration file, sends
SIGHUP and shows the change with real clients: a limit (message_size_max),
a new local domain, a mailbox added to [domain] mailboxes, an aliases file,
a users file, a TLS certificate (openssl s_client sees the new one),
[transport], [tls_policy] and relayhost (mail relayed to a second and a
third real hatod), DKIM keys (dkimpy verifies the new signature), a
milter (a python3-milter filter), the checks switched on.  What needs a restart (a listener's address) is named
in the log and keeps running as it was; a file that does not parse is
named with its line and key, and the running configuration stays.  A
session opened before the reload finishes under the configuration it
started with, while a new one gets the new one.  log_format switches too.
"""
import json
import os
import re
import signal
import smtplib
import ssl
import subprocess

import pytest

from conftest import HATO, REPO, RawSMTP, Zone, free_port

PASSWORD = "Reload-Pw-4821"
QUEUED = "250 2.0.0 OK queued as "


def reload(h):
    """Rewrite h's configuration from its dicts, SIGHUP, and wait for the
    reload's result; returns that log line."""
    h.write_config()
    before = h.logs().count("event=reload result=")
    h.proc.send_signal(signal.SIGHUP)
    h.wait_log("event=reload result=", count=before + 1)
    return [line for line in h.logs().splitlines() if "event=reload result=" in line][-1]


def reload_ok(h):
    line = reload(h)
    assert "result=ok" in line, h.logs()[-3000:]
    return line


def ehlo_size(c):
    """The SIZE an EHLO reply announces."""
    for line in c.cmd("EHLO reload.example").split("\n"):
        if line[4:].startswith("SIZE "):
            return int(line[9:])
    raise AssertionError("no SIZE")


def send_message(c, size, rcpt="someone@localhost"):
    """One transaction of a message of about size octets; the final reply."""
    assert c.cmd("MAIL FROM:<a@localhost>").startswith("250 ")
    assert c.cmd("RCPT TO:<%s>" % rcpt).startswith("250 ")
    assert c.cmd("DATA").startswith("354 ")
    c.send(b"Subject: size\r\n\r\n" + (b"x" * 78 + b"\r\n") * (size // 80) + b".\r\n")
    return c.reply()


def rcpt_reply(h, rcpt):
    with RawSMTP(h.host, h.port) as c:
        c.cmd("EHLO reload.example")
        assert c.cmd("MAIL FROM:<a@localhost>").startswith("250 ")
        return c.cmd("RCPT TO:<%s>" % rcpt)


def hato(h, *args, stdin=None):
    """`hato -c CONF ARGS`, the environment kept from pointing elsewhere."""
    env = {k: v for k, v in os.environ.items() if k not in ("HATO_CONFIG", "HATO_STATE")}
    r = subprocess.run([HATO, "-c", h.conf_path, *args], input=stdin, capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def test_limit_new_sessions_get_it_old_ones_keep_theirs(make_hatod):
    h = make_hatod(limits={"message_size_max": "100k"})
    old = RawSMTP(h.host, h.port)
    assert ehlo_size(old) == 100 * 1024
    h.limits["message_size_max"] = "2k"
    reload_ok(h)
    with RawSMTP(h.host, h.port) as new:
        assert ehlo_size(new) == 2048
        assert send_message(new, 8000).startswith("552 5.3.4 ")
    # the session from before the reload: its limit, in EHLO and in DATA
    assert ehlo_size(old) == 100 * 1024
    assert send_message(old, 8000).startswith(QUEUED)
    old.close()
    assert len(h.queue_ids()) == 1


def test_new_local_domain(make_hatod):
    h = make_hatod()
    assert rcpt_reply(h, "bob@new.example").startswith("554 5.7.1 ")
    h.server["local_domains"] = "localhost, test.example, new.example"
    reload_ok(h)
    assert rcpt_reply(h, "bob@new.example") == "250 2.1.5 Recipient OK"


def test_mailbox_added_to_domain(make_hatod):
    h = make_hatod(extra="[domain localhost]\nmailboxes = alice\n", delivery={"hold": "no"})
    assert rcpt_reply(h, "bob@localhost").startswith("550 5.1.1 ")
    h.extra = "[domain localhost]\nmailboxes = alice, bob\n"
    reload_ok(h)
    with smtplib.SMTP(h.host, h.port, timeout=10) as s:
        s.sendmail("a@localhost", ["bob@localhost"], b"Subject: hello bob\r\n\r\nhi\r\n")
    h.wait_log("status=delivered")
    [path] = h.maildir("bob")
    with open(path, "rb") as f:
        assert b"Subject: hello bob" in f.read()


def test_aliases_file_added(make_hatod, testdir):
    h = make_hatod(extra="[domain localhost]\nmailboxes = alice\n")
    assert rcpt_reply(h, "support@localhost").startswith("550 5.1.1 ")
    aliases = os.path.join(testdir, "aliases")
    with open(aliases, "w") as f:
        f.write("support: alice\n")
    os.chmod(aliases, 0o644)
    h.delivery["aliases_file"] = aliases
    assert "aliases=1" in reload_ok(h)
    with RawSMTP(h.host, h.port) as c:
        c.cmd("EHLO reload.example")
        c.cmd("MAIL FROM:<a@localhost>")
        assert c.cmd("RCPT TO:<support@localhost>") == "250 2.1.5 Recipient OK"
        assert c.cmd("DATA").startswith("354 ")
        c.send(b"Subject: alias\r\n\r\nhi\r\n.\r\n")
        assert c.reply().startswith(QUEUED)
    [(env, _)] = h.queued()
    assert env["rcpt"] == ["<alice@localhost>"]


def test_users_file_changed(make_hatod, testdir):
    """A new users_file: its users are mailboxes and may AUTH, from the reload on."""
    sub = free_port()
    h = make_hatod(extra="[domain localhost]\n",
                   listeners={"smtp": "127.0.0.1:%d" % free_port(),
                              "submission": {"address": "127.0.0.1:%d" % sub,
                                             "auth": "required"}})
    h.port = int(h.listeners["smtp"].rsplit(":", 1)[1])
    assert rcpt_reply(h, "carol@localhost").startswith("550 5.1.1 ")
    h.server["users_file"] = os.path.join(testdir, "other-users")
    h.write_config()  # `hato user add` writes the file the new configuration names
    hato(h, "user", "add", "carol", "--stdin", stdin=PASSWORD + "\n")
    assert "users=1" in reload_ok(h)
    assert rcpt_reply(h, "carol@localhost") == "250 2.1.5 Recipient OK"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", sub, timeout=15) as s:
        s.starttls(context=ctx)
        assert s.login("carol", PASSWORD)[0] == 235


def make_cert(directory, name, cn):
    """A self-signed certificate for cn: (cert, key), readable by hatod's user."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=DNS:" + cn, "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    os.chmod(key, 0o644)
    return cert, key


def served_subject(port):
    """The subject of the certificate openssl s_client is shown on STARTTLS."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-starttls", "smtp", "-brief"], input="QUIT\r\n",
                       capture_output=True, text=True, timeout=30)
    for line in (r.stdout + r.stderr).splitlines():
        if line.startswith("Peer certificate:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no peer certificate:\n" + r.stdout + r.stderr)


def test_tls_certificate_swapped(make_hatod, testdir):
    one = make_cert(testdir, "one", "one.reload.example")
    two = make_cert(testdir, "two", "two.reload.example")
    h = make_hatod(server={"tls_cert": one[0], "tls_key": one[1]})
    assert "CN = one.reload.example" == served_subject(h.port)
    h.server.update({"tls_cert": two[0], "tls_key": two[1]})
    reload_ok(h)
    assert "CN = two.reload.example" == served_subject(h.port)


def next_hop(make_hatod, name, tls="none"):
    """A real hatod taking mail for example.net on a plaintext listener."""
    port = free_port()
    b = make_hatod(server={"hostname": name, "local_domains": "example.net"},
                   delivery={"hold": "no"},
                   listeners={"smtp": {"address": "127.0.0.1:%d" % port, "tls": tls}})
    b.port = port
    return b


def relaying_hatod(make_hatod, remote):
    """hatod A: takes mail for any domain from loopback and delivers it."""
    return make_hatod(server={"hostname": "a.test", "trusted_networks": "127.0.0.0/8"},
                      delivery={"hold": "no", "retry_schedule": "1h"},
                      extra="[domain localhost]\nmailboxes = *\n" + remote)


def relay_one(a, subject):
    with smtplib.SMTP(a.host, a.port, timeout=10) as s:
        s.sendmail("alice@localhost", ["bob@example.net"],
                   b"Subject: " + subject.encode() + b"\r\n\r\nrelayed\r\n")


def arrived(b, subject):
    """Has b delivered a message with this subject to bob@example.net?"""
    for path in b.maildir("bob", "example.net"):
        with open(path, "rb") as f:
            if ("Subject: " + subject).encode() in f.read():
                return True
    return False


def wait_arrived(b, subject):
    b.wait_log("event=delivery")
    b.wait_log("status=delivered")
    assert arrived(b, subject)


def test_transport_and_tls_policy(make_hatod):
    b1 = next_hop(make_hatod, "b1.test")
    b2 = next_hop(make_hatod, "b2.test")
    a = relaying_hatod(make_hatod, "[transport]\nexample.net = [127.0.0.1]:%d\n" % b1.port)
    relay_one(a, "first")
    wait_arrived(b1, "first")
    # [transport] now names b2
    a.extra = "[domain localhost]\nmailboxes = *\n[transport]\nexample.net = [127.0.0.1]:%d\n" % (
        b2.port)
    reload_ok(a)
    relay_one(a, "second")
    wait_arrived(b2, "second")
    assert not arrived(b1, "second")
    # [tls_policy] encrypt: b2 offers no STARTTLS, so the mail waits
    a.extra += "[tls_policy]\nexample.net = encrypt\n"
    reload_ok(a)
    relay_one(a, "third")
    a.wait_log("status=deferred")
    assert "does not offer STARTTLS" in a.logs()
    assert not arrived(b2, "third")


def test_relayhost_changed(make_hatod):
    b1 = next_hop(make_hatod, "b1.test")
    b2 = next_hop(make_hatod, "b2.test")
    a = relaying_hatod(make_hatod, "[remote]\nrelayhost = [127.0.0.1]:%d\nrelayhost_tls = none\n"
                       % b1.port)
    relay_one(a, "via b1")
    wait_arrived(b1, "via b1")
    a.extra = ("[domain localhost]\nmailboxes = *\n[remote]\nrelayhost = [127.0.0.1]:%d\n"
               "relayhost_tls = none\n" % b2.port)
    reload_ok(a)
    relay_one(a, "via b2")
    wait_arrived(b2, "via b2")
    # the route hato route shows is the one the file names
    r = hato(a, "route", "bob@example.net")
    assert str(b2.port) in r.stdout


def test_listener_address_needs_restart(make_hatod):
    h = make_hatod()
    old_port, new_port = h.port, free_port()
    h.listeners = {"smtp": "127.0.0.1:%d" % new_port}
    h.limits["recipients_max"] = "7"
    line = reload_ok(h)
    logs = h.logs()
    assert 'event=reload_restart_needed keys="[listener smtp] address"' in logs, logs[-2000:]
    assert "result=ok" in line
    # the running listener goes on; the new address is not bound
    with RawSMTP(h.host, old_port) as c:
        assert c.greeting.startswith("220 ")
    with pytest.raises(OSError):
        RawSMTP(h.host, new_port, timeout=2)
    # and what could change did
    with RawSMTP(h.host, old_port) as c:
        c.cmd("EHLO reload.example")
        c.cmd("MAIL FROM:<a@localhost>")
        for i in range(7):
            assert c.cmd("RCPT TO:<r%d@localhost>" % i).startswith("250 ")
        assert c.cmd("RCPT TO:<r7@localhost>").startswith("452 4.5.3 ")


def test_state_dir_and_user_need_restart(make_hatod, testdir):
    h = make_hatod()
    h.server["state_dir"] = os.path.join(testdir, "elsewhere")
    h.server["user"] = "nobody"
    reload_ok(h)
    logs = h.logs()
    assert 'keys="[server] state_dir, [server] user"' in logs, logs[-2000:]
    assert not os.path.exists(os.path.join(testdir, "elsewhere"))
    with smtplib.SMTP(h.host, h.port, timeout=10) as s:
        s.sendmail("a@localhost", ["b@localhost"], b"Subject: still here\r\n\r\nx\r\n")
    assert len(h.queue_ids()) == 1  # in the state_dir it started with


def test_broken_file_keeps_running_configuration(make_hatod):
    h = make_hatod(limits={"message_size_max": "100k"})
    h.limits["message_size_max"] = "2k"
    h.limits["recipients_max"] = "lots"
    line = reload(h)
    assert "result=failed step=config" in line
    # file, line and key: [limits] is the second section, after [server]'s four keys
    lineno = 1 + len(h.server) + 1 + list(h.limits).index("recipients_max") + 1
    # (quotes are escaped in a log value: \x22)
    assert r'%s:%d: key \x22recipients_max\x22 in [limits]' % (h.conf_path, lineno) in line, line
    with RawSMTP(h.host, h.port) as c:
        assert ehlo_size(c) == 100 * 1024  # not 2k: nothing of the broken file runs
    # mended, the next reload takes it
    del h.limits["recipients_max"]
    reload_ok(h)
    with RawSMTP(h.host, h.port) as c:
        assert ehlo_size(c) == 2048


def restart_keys_in_code():
    """{(section, key)} of conf.c's restart_keys list."""
    with open(os.path.join(REPO, "src/conf/conf.c")) as f:
        text = f.read()
    table = text[text.index("} restart_keys[] = {"):]
    table = table[:table.index("};")]
    heads = {"SEC_SERVER": "[server]", "SEC_LISTENER": "[listener NAME]", "SEC_DNS": "[dns]",
             "SEC_METRICS": "[metrics]", "SEC_CHECKS": "[checks]", "SEC_LIMITS": "[limits]",
             "SEC_GREYLIST": "[greylist]", "SEC_SQL": "[sql]"}
    return {(heads[s], k) for s, k in re.findall(r'\{(SEC_\w+), "(\w+)"\}', table)}


def test_restart_keys_are_the_documented_ones():
    """docs/configuration.md's table and hato.conf(5)'s list of the keys that
    need a restart are conf.c's list, no more, no less."""
    code = restart_keys_in_code()
    assert ("[server]", "state_dir") in code and ("[listener NAME]", "address") in code
    with open(os.path.join(REPO, "docs/configuration.md")) as f:
        doc = f.read()
    part = doc[doc.index("| section | keys that need a restart |"):]
    part = part[:part.index("\n\n")]
    documented = set()
    for sec, keys in re.findall(r"^\| `(\[[^]]+\])` \| ([^|]*) \|", part, re.M):
        keys = re.split(r", and | \(", keys)[0]  # rows that go on in words
        documented |= {(sec, k) for k in re.findall(r"`(\w+)`", keys)}
    assert documented == code
    with open(os.path.join(REPO, "man/hato.conf.5")) as f:
        man = f.read()
    part = man[man.index(".Sh RELOADING"):man.index(".Sh FILES")]
    part = part[part.index(".Bl -tag"):]
    in_man = set()
    for sec, body in re.findall(r"^\.It Ic (\[[^]]+\])\n(.*?)(?=^\.It |^\.El)", part, re.M | re.S):
        words = re.findall(r"^\.Cm (.*)$", body, re.M)
        for line in words:
            in_man |= {(sec, k) for k in re.findall(r"(\w+)", line)}
    assert in_man == code


def test_idle_connection_is_not_reused_under_a_new_policy(make_hatod):
    """A connection left idle for reuse was opened under the old
    configuration: after a reload that asks the same relayhost for TLS, the
    next message does not go over it in plaintext."""
    b = next_hop(make_hatod, "b.test")
    remote = "[remote]\nrelayhost = [127.0.0.1]:%d\nreuse_time = 1m\nrelayhost_tls = %s\n"
    a = relaying_hatod(make_hatod, remote % (b.port, "none"))
    relay_one(a, "plaintext")
    wait_arrived(b, "plaintext")
    a.extra = "[domain localhost]\nmailboxes = *\n" + remote % (b.port, "encrypt")
    reload_ok(a)
    relay_one(a, "must be encrypted")
    a.wait_log("status=deferred")
    assert "does not offer STARTTLS" in a.logs()
    assert not arrived(b, "must be encrypted")


def test_log_format_switches_to_json(make_hatod):
    """log_format is read again too: the lines after the reload are JSON."""
    h = make_hatod()
    h.server["log_format"] = "json"
    h.write_config()
    start = len(h.logs())
    h.proc.send_signal(signal.SIGHUP)
    h.wait_log('"event":"reload","result":"ok"')
    with RawSMTP(h.host, h.port) as c:
        assert c.cmd("QUIT").startswith("221 ")
    h.wait_log('"event":"disconnect"')
    after = h.logs()[start:].splitlines()
    # from the reload's own result on, every line is one JSON object
    first = next(i for i, line in enumerate(after) if '"event":"reload"' in line)
    objs = [json.loads(line) for line in after[first:]]
    assert any(o.get("event") == "connect" for o in objs)


def test_dkim_keys_added(make_hatod, testdir, make_dns_server):
    """A [dkim NAME] section added by a reload signs the next message, and
    dkimpy (the reference) verifies the signature against the published key."""
    from test_dkim import conf, dkimpy_results, dnsfunc_for, keygen

    _, _, txt, section = keygen(conf(testdir), "example.test", "ed")
    dns = make_dns_server(Zone().txt("ed._domainkey.example.test", txt))
    h = make_hatod(server={"trusted_networks": "127.0.0.1/32"})
    msg = b"From: ann@example.test\r\nTo: bob@test.example\r\nSubject: signed?\r\n\r\nhi\r\n"
    with smtplib.SMTP(h.host, h.port, timeout=10) as s:
        s.sendmail("ann@example.test", ["bob@test.example"], msg)
    h.extra = "[domain test.example]\nmailboxes = *\n[domain localhost]\nmailboxes = *\n" + section
    reload_ok(h)
    with smtplib.SMTP(h.host, h.port, timeout=10) as s:
        s.sendmail("ann@example.test", ["bob@test.example"], msg)
    signed = [m for _, m in h.queued() if b"DKIM-Signature:" in m]
    assert len(h.queued()) == 2 and len(signed) == 1
    assert dkimpy_results(signed[0], dnsfunc_for(dns)) == [(True, b"example.test",
                                                           b"ed25519-sha256")]


def test_metrics_endpoint_needs_restart(make_hatod):
    """[metrics] listen is bound once: a reload names it and the endpoint
    goes on where it was (curl scrapes it)."""
    old_port, new_port = free_port(), free_port()
    h = make_hatod(extra="[domain localhost]\nmailboxes = *\n[metrics]\nlisten = 127.0.0.1:%d\n"
                   % old_port)
    h.extra = h.extra.replace(str(old_port), str(new_port))
    reload_ok(h)
    assert 'keys="[metrics] listen"' in h.logs(), h.logs()[-2000:]
    r = subprocess.run(["curl", "-sS", "--max-time", "10",
                        "http://127.0.0.1:%d/metrics" % old_port],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "# TYPE" in r.stdout, r.stderr


def test_checks_switched_on(make_hatod, make_dns_server):
    """[checks] enable = yes by a reload: the next message received gets
    its Authentication-Results: header (SPF and DMARC asked of dnsmasq)."""
    dns = make_dns_server(Zone().txt("sender.test", "v=spf1 ip4:127.0.0.1 -all"))
    h = make_hatod(extra="[domain localhost]\nmailboxes = *\n[dns]\nservers = %s\n"
                   "timeout = 300ms\ntries = 1\n" % dns.address)
    msg = b"From: ann@sender.test\r\nSubject: checked?\r\n\r\nhi\r\n"
    with smtplib.SMTP(h.host, h.port, timeout=10) as s:
        s.sendmail("ann@sender.test", ["bob@localhost"], msg)
    h.checks["enable"] = "yes"
    reload_ok(h)
    with smtplib.SMTP(h.host, h.port, timeout=10) as s:
        s.sendmail("ann@sender.test", ["bob@localhost"], msg)
    results = sorted(m.count(b"Authentication-Results: mx.test.example") for _, m in h.queued())
    assert results == [0, 1]


def test_milter_added(make_hatod, testdir):
    """A [milter NAME] section added by a reload filters the next session
    (the python3-milter test filter refuses what it is asked to)."""
    from test_milter import DOMAINS, ActionMilter, milter_section, send

    m = ActionMilter(testdir)
    try:
        h = make_hatod(extra=DOMAINS)
        assert send(h, "reject")[0] == (250, "")  # no filter yet
        h.extra = DOMAINS + milter_section("test", m.port)
        reload_ok(h)
        assert send(h, "reject")[0] == (550, "5.7.1 Message content rejected")
        assert len(h.queued()) == 1
    finally:
        m.stop()


def test_greylisting_switched_on_and_off(make_hatod):
    """[greylist] enabled = yes by a reload opens the store and greylists
    the next new triplet; enabled = no by the next reload lets it pass."""
    domains = "[domain localhost]\nmailboxes = *\n"
    h = make_hatod(extra=domains)
    assert rcpt_reply(h, "u@localhost") == "250 2.1.5 Recipient OK"
    h.extra = domains + "[greylist]\nenabled = yes\ndelay = 1h\n"
    reload_ok(h)
    assert rcpt_reply(h, "v@localhost").startswith("450 4.7.1 ")
    h.wait_log("event=greylist_open")
    h.extra = domains + "[greylist]\nenabled = no\n"
    reload_ok(h)
    assert rcpt_reply(h, "v@localhost") == "250 2.1.5 Recipient OK"
