"""Configuration handling of the real binaries: `hatod -n` checks a file and
names file, line and key for every mistake; `hatod -V`; the built-in
defaults are valid; `hato` refuses a bad file too; an IPv6 listener serves
smtplib over ::1 (and IPv4 and IPv6 listeners side by side).
"""
import os
import re
import smtplib
import socket
import subprocess

import pytest

from conftest import HATO, HATOD, RawSMTP, free_port, strip_received


def run(args, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if k not in ("HATO_CONFIG", "HATO_STATE")}
    env.update(env_extra or {})
    return subprocess.run(args, capture_output=True, timeout=10, env=env, cwd=cwd)


def write_conf(testdir, text, name="hato.conf"):
    path = os.path.join(testdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


GOOD = """\
# a comment
[server]
hostname = mx.test.example
state_dir = {state}
local_domains = localhost, test.example
trusted_networks = 192.0.2.0/24 2001:db8::/32 10.1.2.3
reverse_dns = no
commit_threads = 2

[limits]
message_size_max = 10m
min_free_space = 0
timeout_command = 60

[listener smtp]
address = 127.0.0.1:2525

[listener smtp6]
address = [::1]:2525
"""


def test_check_good_file(testdir):
    path = write_conf(testdir, GOOD.format(state=os.path.join(testdir, "state")))
    r = run([HATOD, "-n", "-c", path])
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == "hatod: configuration %s is valid\n" % path
    assert r.stderr == b""
    # -n only checks: nothing was created
    assert not os.path.exists(os.path.join(testdir, "state"))


def test_check_without_config_uses_defaults(testdir):
    r = run([HATOD, "-n"], cwd=testdir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == "hatod: configuration (built-in defaults) is valid\n"


def test_hato_config_env_is_used(testdir):
    path = write_conf(testdir, "[server]\nbogus = 1\n[listener a]\naddress = 127.0.0.1:1\n")
    r = run([HATOD, "-n"], env_extra={"HATO_CONFIG": path})
    assert r.returncode == 1
    assert r.stderr.decode() == 'hatod: %s:2: unknown key "bogus" in [server]\n' % path


def test_version():
    r = run([HATOD, "-V"])
    assert r.returncode == 0
    assert re.fullmatch(r"hatod \d+\.\d+\.\d+\n", r.stdout.decode()), r.stdout
    r2 = run([HATO, "-V"])
    assert r2.returncode == 0
    assert r2.stdout.decode() == r.stdout.decode().replace("hatod", "hato")


def test_bad_option_is_usage_error():
    r = run([HATOD, "-x"])
    assert r.returncode == 2
    assert b"usage: hatod" in r.stderr
    r = run([HATOD, "-n", "extra-argument"])
    assert r.returncode == 2


@pytest.mark.parametrize("text,line,message", [
    ("[server]\nhostname = a\nfrobnicate = yes\n", 3,
     'unknown key "frobnicate" in [server]'),
    ("[server]\n\n[limits]\n# c\nmessage_size = 10m\n", 5,
     'unknown key "message_size" in [limits]'),
    ("[listener smtp]\naddress = 127.0.0.1:25\nport = 25\n", 3,
     'unknown key "port" in [listener smtp]'),
    ("[server]\nhostname = a\n[bogus]\ncert = x\n", 3, "unknown section [bogus]"),
    ("[limits]\nrecipients_max = 0\n", 2,
     'key "recipients_max" in [limits]: bad value "0"'),
    ("[limits]\nrecipients_max = many\n", 2,
     'key "recipients_max" in [limits]: bad value "many"'),
    ("[limits]\ncommand_line_max = 511\n", 2,
     'key "command_line_max" in [limits]: bad value "511"'),
    ("[limits]\ntext_line_max = 999\n", 2,
     'key "text_line_max" in [limits]: bad value "999"'),
    ("[limits]\nmessage_size_max = 10q\n", 2,
     'key "message_size_max" in [limits]: bad value "10q"'),
    ("[limits]\ntimeout_command = 0\n", 2,
     'key "timeout_command" in [limits]: bad value "0"'),
    ("[server]\nreverse_dns = maybe\n", 2,
     'key "reverse_dns" in [server]: bad value "maybe"'),
    ("[server]\ncommit_threads = 65\n", 2,
     'key "commit_threads" in [server]: bad value "65"'),
    ("[server]\ntrusted_networks = 127.0.0.0/33\n", 2,
     'key "trusted_networks" in [server]: bad value "127.0.0.0/33"'),
    ("[server]\ntrusted_networks = 10.0.0.0/8, nonsense\n", 2,
     'key "trusted_networks" in [server]: bad value "10.0.0.0/8, nonsense"'),
    ("[auth]\nbackend = ldap\n", 2, 'key "backend" in [auth]: bad value "ldap"'),
    ("[auth]\ndovecot_timeout = 0\n", 2, 'key "dovecot_timeout" in [auth]: bad value "0"'),
    ("[limits]\nproxy_header_max = 231\n", 2,
     'key "proxy_header_max" in [limits]: bad value "231"'),
    ("[listener a]\nproxy_networks = 10.0.0.0/33\n", 2,
     'key "proxy_networks" in [listener a]: bad value "10.0.0.0/33"'),
])
def test_check_names_file_line_and_key(testdir, text, line, message):
    path = write_conf(testdir, text)
    r = run([HATOD, "-n", "-c", path])
    assert r.returncode != 0
    assert r.stdout == b""
    assert r.stderr.decode() == "hatod: %s:%d: %s\n" % (path, line, message)


@pytest.mark.parametrize("text,message", [
    ("[server]\nhostname = a\n",
     "no [listener NAME] section: hatod would listen nowhere"),
    ("[listener smtp]\naddress = localhost:25\n",
     '[listener smtp]: key "address": bad value "localhost:25" (want IP:PORT or [IPv6]:PORT)'),
    ("[listener smtp]\naddress = 127.0.0.1:65536\n",
     '[listener smtp]: key "address": bad value "127.0.0.1:65536" (want IP:PORT or [IPv6]:PORT)'),
    ("[limits]\nerrors_soft = 5\nerrors_hard = 4\n[listener a]\naddress = 127.0.0.1:1\n",
     "[limits]: errors_soft is larger than errors_hard"),
    ("[auth]\nbackend = dovecot\n[listener a]\naddress = 127.0.0.1:1\n",
     "[auth]: backend = dovecot and dovecot_socket go together"),
    ("[listener a]\naddress = 127.0.0.1:1\nproxy_protocol = yes\n",
     "[listener a]: proxy_protocol = yes and proxy_networks go together"),
    ("[listener a]\naddress = 127.0.0.1:1\nproxy_networks = 10.0.0.1\n",
     "[listener a]: proxy_protocol = yes and proxy_networks go together"),
])
def test_check_whole_file_errors(testdir, text, message):
    path = write_conf(testdir, text)
    r = run([HATOD, "-n", "-c", path])
    assert r.returncode != 0
    assert r.stderr.decode() == "hatod: %s: %s\n" % (path, message)


def test_unbracketed_ipv6_listener_is_refused(testdir):
    # '::1:25' is itself a complete IPv6 address: IPv6 needs [addr]:port
    path = write_conf(testdir, "[listener smtp]\naddress = ::1:25\n")
    r = run([HATOD, "-n", "-c", path])
    assert r.returncode != 0
    assert r.stderr.decode() == ('hatod: %s: [listener smtp]: key "address": bad value '
                                 '"::1:25" (want IP:PORT or [IPv6]:PORT)\n' % path)


def test_missing_file(testdir):
    path = os.path.join(testdir, "nope.conf")
    r = run([HATOD, "-n", "-c", path])
    assert r.returncode != 0
    assert r.stderr.decode() == "hatod: %s: cannot open: No such file or directory\n" % path


def test_bad_config_does_not_start_daemon(testdir):
    path = write_conf(testdir, "[server]\nstate_dir = %s/s\nbad_key = 1\n"
                      "[listener smtp]\naddress = 127.0.0.1:1\n" % testdir)
    r = run([HATOD, "-f", "-c", path])
    assert r.returncode != 0
    assert ('%s:3: unknown key "bad_key" in [server]' % path) in r.stderr.decode()
    assert not os.path.exists(os.path.join(testdir, "s"))


def test_hato_refuses_bad_config(testdir):
    path = write_conf(testdir, "[limits]\nrecipients_max = -1\n")
    r = run([HATO, "-c", path, "queue"])
    assert r.returncode == 78
    assert r.stderr.decode() == \
        'hato: %s:2: key "recipients_max" in [limits]: bad value "-1"\n' % path


def free_port6():
    return free_port("::1")


def have_ipv6():
    try:
        free_port6()
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not have_ipv6(), reason="no IPv6 loopback here")


@needs_ipv6
def test_ipv6_listener_smtplib(make_hatod):
    port = free_port6()
    h = make_hatod(listeners={"smtp6": "[::1]:%d" % port})
    body = b"Subject: v6\r\n\r\nover IPv6\r\n"
    with smtplib.SMTP("::1", port, timeout=10) as s:
        code, text = s.ehlo("v6.example")
        assert code == 250
        assert text.startswith(b"mx.test.example Hello v6.example [::1]\n")
        assert s.sendmail("a@localhost", ["b@localhost", "c@[IPv6:::1]"], body) == {}
    [(env, msg)] = h.queued()
    assert env["client"] == "::1"
    assert env["rcpt"] == ["<b@localhost>", "<c@localhost>"]
    assert env["orig"] == ["<b@localhost>", "<c@[IPv6:::1]>"]
    assert msg.startswith(b"Received: from v6.example (unknown [IPv6:::1])\r\n")
    assert strip_received(msg) == body
    # an IPv6 listener is IPv6-only
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@needs_ipv6
def test_ipv4_and_ipv6_listeners_side_by_side(make_hatod):
    p4, p6 = free_port6(), free_port6()
    h = make_hatod(listeners={"smtp": "127.0.0.1:%d" % p4, "smtp6": "[::1]:%d" % p6})
    for host, port in (("127.0.0.1", p4), ("::1", p6)):
        with smtplib.SMTP(host, port, timeout=10) as s:
            assert s.sendmail("a@localhost", ["b@localhost"],
                              b"\r\nvia %s\r\n" % host.encode()) == {}
    assert sorted(strip_received(m) for _, m in h.queued()) == \
        [b"\r\nvia 127.0.0.1\r\n", b"\r\nvia ::1\r\n"]
    assert sorted(e["client"] for e, _ in h.queued()) == ["127.0.0.1", "::1"]


@needs_ipv6
def test_ipv6_literal_of_other_address_is_relay(make_hatod):
    port = free_port6()
    make_hatod(listeners={"smtp6": "[::1]:%d" % port})
    with RawSMTP("::1", port) as c:
        c.cmd("EHLO v6.example")
        c.cmd("MAIL FROM:<a@localhost>")
        assert c.cmd("RCPT TO:<c@[IPv6:::2]>") == "554 5.7.1 Relay access denied"
        assert c.cmd("RCPT TO:<c@[127.0.0.1]>") == "554 5.7.1 Relay access denied"
        assert c.cmd("RCPT TO:<c@[IPv6:::1]>") == "250 2.1.5 Recipient OK"


@needs_ipv6
def test_ipv6_literal_other_spelling_is_local(make_hatod):
    # the literal is compared as an address, not as text
    port = free_port6()
    make_hatod(listeners={"smtp6": "[::1]:%d" % port})
    with RawSMTP("::1", port) as c:
        c.cmd("EHLO v6.example")
        c.cmd("MAIL FROM:<a@localhost>")
        assert c.cmd("RCPT TO:<c@[IPv6:0:0:0:0:0:0:0:1]>") == "250 2.1.5 Recipient OK"
        assert c.cmd("RCPT TO:<c@[IPv6:0::1]>") == "250 2.1.5 Recipient OK"


@needs_ipv6
def test_ipv6_trusted_network(make_hatod):
    port, port4 = free_port6(), free_port()
    make_hatod(server={"trusted_networks": "::1/128"},
                   listeners={"smtp6": "[::1]:%d" % port, "smtp": "127.0.0.1:%d" % port4})
    with RawSMTP("::1", port) as c:
        c.cmd("EHLO v6.example")
        c.cmd("MAIL FROM:<a@localhost>")
        assert c.cmd("RCPT TO:<x@other.org>") == "250 2.1.5 Recipient OK"
    with RawSMTP("127.0.0.1", port4) as c:  # 127.0.0.1 is not ::1
        c.cmd("EHLO v4.example")
        c.cmd("MAIL FROM:<a@localhost>")
        assert c.cmd("RCPT TO:<x@other.org>") == "554 5.7.1 Relay access denied"
