"""Where mail for a domain goes (src/lookup/mx.c), seen through `hato route`
against a private dnsmasq (dnsserver.py): MX preference order, equal
preferences shuffled, the implicit MX, null MX, NXDOMAIN, temporary DNS
failures, IDN domains, address literals, MX hosts that are addresses or
CNAMEs, hosts without addresses, the bounds on hosts and addresses, large
answers over TCP; and the [dns] keys in `hatod -n`.
"""
import os
import socket
import subprocess

import pytest

from conftest import HATO, HATOD, DnsServer, Zone, free_port

EX_USAGE, EX_UNAVAILABLE, EX_TEMPFAIL, EX_CONFIG = 64, 69, 75, 78

# Short waits: a query nobody answers fails after 300 + 600 ms.
DNS_TIMEOUT = "300ms"

# Runs of an equal-preference domain until both orders have been seen;
# each order has a 1/2 chance per run, so missing one is a 2^-39 event.
SHUFFLE_RUNS = 40


def mx_zone():
    z = Zone()
    z.mx("multi.test", 10, "mx1.multi.test")
    z.mx("multi.test", 20, "mx2.multi.test")
    z.mx("multi.test", 30, "mx3.multi.test")
    z.host("mx1.multi.test", "127.0.0.11", "2001:db8::11")
    z.host("mx2.multi.test", "127.0.0.12")
    z.host("mx3.multi.test", "127.0.0.13", "127.0.0.14")
    # equal preferences: a and b in either order, c always after them
    z.mx("eq.test", 10, "a.eq.test")
    z.mx("eq.test", 10, "b.eq.test")
    z.mx("eq.test", 20, "c.eq.test")
    z.host("a.eq.test", "127.0.0.21")
    z.host("b.eq.test", "127.0.0.22")
    z.host("c.eq.test", "127.0.0.23")
    # no MX: the domain's own addresses
    z.host("implicit.test", "127.0.0.30", "2001:db8::30")
    z.cname("alias.test", "implicit.test")
    z.txt("noaddr.test", "neither MX nor address")
    z.null_mx("nullmx.test")
    # MX hosts that do not resolve, or only later
    z.mx("partial.test", 10, "gone.partial.test")
    z.mx("partial.test", 20, "mx2.multi.test")
    z.mx("deadmx.test", 10, "gone.deadmx.test")
    z.mx("deadmx.test", 20, "nothing.deadmx.test")
    z.txt("nothing.deadmx.test", "no address")
    z.mx("tempmx.test", 10, "mx.broken.test")
    z.mx("tempmx.test", 20, "gone.tempmx.test")
    z.broken("broken.test")
    # tolerated: an MX that is an IP address or a CNAME
    z.mx("lit.test", 10, "127.0.0.40")
    z.mx("cn.test", 10, "mxalias.cn.test")
    z.cname("mxalias.cn.test", "mx1.multi.test")
    # IDN: bücher.test
    z.mx("xn--bcher-kva.test", 5, "mx1.multi.test")
    # more than MX_HOSTS_MAX hosts: too big for UDP, so asked again over TCP
    for i in range(1, 21):
        z.mx("lots.test", 100 - i, "127.0.1.%d" % i)
    # more than MX_ADDRS_MAX addresses, in both families
    z.mx("manyaddr.test", 10, "big.manyaddr.test")
    z.host("big.manyaddr.test", *["127.0.2.%d" % i for i in range(1, 7)])
    z.host("big.manyaddr.test", *["2001:db8::2:%d" % i for i in range(1, 7)])
    z.mx("v6only.test", 10, "v6.v6only.test")
    z.host("v6.v6only.test", *["2001:db8::6:%d" % i for i in range(1, 11)])
    return z


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("dns"))
    os.chmod(root, 0o755)
    server = DnsServer(root, mx_zone()).start()
    yield server
    server.stop()


def write_conf(directory, servers, timeout=DNS_TIMEOUT, tries=2):
    path = os.path.join(directory, "hato.conf")
    with open(path, "w") as f:
        f.write("[server]\nstate_dir = %s/state\n"
                "[dns]\nservers = %s\ntimeout = %s\ntries = %d\n"
                "[listener smtp]\naddress = 127.0.0.1:2525\n"
                % (directory, servers, timeout, tries))
    return path


@pytest.fixture(scope="module")
def conf(dns, tmp_path_factory):
    return write_conf(str(tmp_path_factory.mktemp("conf")), dns.address)


def run(args, env_extra=None, timeout=30):
    env = {k: v for k, v in os.environ.items() if k not in ("HATO_CONFIG", "HATO_STATE")}
    env.update(env_extra or {})
    r = subprocess.run(args, capture_output=True, timeout=timeout, env=env)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def route(conf, *args):
    """hato -c conf route ARGS: (exit code, stdout lines, stderr)."""
    rc, out, err = run([HATO, "-c", conf, "route", *args])
    return rc, out.splitlines(), err


def unordered(lines):
    """Route lines with each host's addresses of one family sorted: the
    server may give them in any order, and they are kept as it gives them."""
    out = []
    for line in lines:
        words = line.split()
        n = 3 if words[0] in ("mx",) else 2
        addrs = words[n:]
        v6 = sorted(a for a in addrs if ":" in a)
        out.append(" ".join(words[:n] + v6 + sorted(a for a in addrs if ":" not in a)))
        assert addrs[:len(v6)] == [a for a in addrs if ":" in a], line  # IPv6 first
    return out


def test_mx_in_preference_order(conf):
    rc, lines, err = route(conf, "multi.test")
    assert (rc, err) == (0, "")
    assert unordered(lines) == [
        "mx 10 mx1.multi.test 2001:db8::11 127.0.0.11",
        "mx 20 mx2.multi.test 127.0.0.12",
        "mx 30 mx3.multi.test 127.0.0.13 127.0.0.14",
    ]


def test_case_and_final_dot_do_not_matter(conf):
    for name in ("MULTI.Test", "multi.test."):
        rc, lines, err = route(conf, name)
        assert (rc, err) == (0, "")
        assert [line.split()[:3] for line in lines] == [
            ["mx", "10", "mx1.multi.test"], ["mx", "20", "mx2.multi.test"],
            ["mx", "30", "mx3.multi.test"]]


def test_equal_preferences_are_shuffled(conf):
    seen = set()
    for _ in range(SHUFFLE_RUNS):
        rc, lines, err = route(conf, "eq.test")
        assert rc == 0, err
        names = [line.split()[2] for line in lines]
        assert sorted(names[:2]) == ["a.eq.test", "b.eq.test"], lines
        assert names[2] == "c.eq.test", lines
        assert [line.split()[1] for line in lines] == ["10", "10", "20"]
        seen.add(tuple(names[:2]))
        if len(seen) == 2:
            break
    assert seen == {("a.eq.test", "b.eq.test"), ("b.eq.test", "a.eq.test")}


def test_no_mx_means_the_domains_own_addresses(conf):
    assert route(conf, "implicit.test") == (
        0, ["implicit implicit.test 2001:db8::30 127.0.0.30"], "")


def test_domain_that_is_a_cname_without_mx(conf):
    assert route(conf, "alias.test") == (
        0, ["implicit alias.test 2001:db8::30 127.0.0.30"], "")


def test_no_mx_and_no_address_is_permanent(conf):
    rc, lines, err = route(conf, "noaddr.test")
    assert (rc, lines) == (EX_UNAVAILABLE, [])
    assert err == "hato: 5.1.2 noaddr.test: no MX and no address records\n"


def test_null_mx(conf):
    rc, lines, err = route(conf, "nullmx.test")
    assert (rc, lines) == (EX_UNAVAILABLE, [])
    assert err == "hato: 5.1.10 nullmx.test: domain accepts no mail (null MX)\n"


def test_nxdomain(conf):
    rc, lines, err = route(conf, "nosuch.test")
    assert (rc, lines) == (EX_UNAVAILABLE, [])
    assert err == "hato: 5.1.2 nosuch.test: no such domain\n"


def test_unanswered_query_is_temporary(conf):
    rc, lines, err = route(conf, "broken.test")
    assert (rc, lines) == (EX_TEMPFAIL, [])
    assert err == ("hato: 4.4.3 broken.test: MX lookup failed: "
                   "timeout (no answer from the DNS servers)\n")


def test_refused_query_is_temporary(conf):
    # dnsmasq answers REFUSED outside its zone (it has no upstream)
    rc, lines, err = route(conf, "elsewhere.example")
    assert (rc, lines) == (EX_TEMPFAIL, [])
    assert err.startswith("hato: 4.4.3 elsewhere.example: MX lookup failed: "
                          "no usable answer from the DNS servers"), err


def test_unreachable_server_is_temporary(testdir):
    conf = write_conf(testdir, "127.0.0.1:%d" % free_port())
    rc, lines, err = route(conf, "multi.test")
    assert (rc, lines) == (EX_TEMPFAIL, [])
    assert err.startswith("hato: 4.4.3 multi.test: MX lookup failed: "), err


def test_second_server_answers_when_the_first_does_not(dns, testdir):
    conf = write_conf(testdir, "127.0.0.1:%d, %s" % (free_port(), dns.address))
    assert route(conf, "multi.test")[0] == 0


def test_mx_host_without_address_is_skipped(conf):
    rc, lines, err = route(conf, "partial.test")
    assert (rc, lines) == (0, ["mx 20 mx2.multi.test 127.0.0.12"])
    assert err == ("hato: note: partial.test: 1 MX host, 1 skipped "
                   "(gone.partial.test: no such name)\n")


def test_no_mx_host_with_an_address_is_permanent(conf):
    rc, lines, err = route(conf, "deadmx.test")
    assert (rc, lines) == (EX_UNAVAILABLE, [])
    assert err == ("hato: 5.4.4 deadmx.test: no MX host has an address "
                   "(gone.deadmx.test: no such name)\n")


def test_mx_host_lookup_failing_for_now_is_temporary(conf):
    # one host cannot be looked up now, the other does not exist: try later
    rc, lines, err = route(conf, "tempmx.test")
    assert (rc, lines) == (EX_TEMPFAIL, [])
    assert err == ("hato: 4.4.3 tempmx.test: no MX host could be looked up "
                   "(mx.broken.test: timeout (no answer from the DNS servers))\n")


def test_mx_host_that_is_an_address(conf):
    assert route(conf, "lit.test") == (0, ["mx 10 127.0.0.40 127.0.0.40"], "")


def test_mx_host_that_is_a_cname(conf):
    assert route(conf, "cn.test") == (
        0, ["mx 10 mxalias.cn.test 2001:db8::11 127.0.0.11"], "")


def test_idn_domain(conf):
    want = (0, ["mx 5 mx1.multi.test 2001:db8::11 127.0.0.11"], "")
    assert route(conf, "bücher.test") == want
    assert route(conf, "BÜCHER.test") == want
    assert route(conf, "xn--bcher-kva.test") == want


@pytest.mark.parametrize("literal,line", [
    ("[127.0.0.1]", "implicit [127.0.0.1] 127.0.0.1"),
    ("[IPv6:::1]", "implicit [IPv6:::1] ::1"),
    ("[ipv6:2001:DB8::1]", "implicit [ipv6:2001:DB8::1] 2001:db8::1"),
])
def test_address_literal_needs_no_lookup(testdir, literal, line):
    # no server at all: nothing is asked
    conf = write_conf(testdir, "127.0.0.1:%d" % free_port())
    assert route(conf, literal) == (0, [line], "")


@pytest.mark.parametrize("literal", [
    "[300.1.1.1]", "[127.0.0.1", "[IPv6:127.0.0.1]", "[::1]", "[]", "[tag:x]"])
def test_bad_address_literal(conf, literal):
    rc, lines, err = route(conf, literal)
    assert (rc, lines) == (EX_UNAVAILABLE, [])
    assert err == "hato: 5.1.2 %s: bad address literal\n" % literal


@pytest.mark.parametrize("name", [
    "bad..test", ".test", "a b.test", "x" * 64 + ".test", ("a" * 62 + ".") * 4 + "test",
    "bad\x01.test"])
def test_invalid_domain(conf, name):
    rc, lines, err = route(conf, name)
    assert (rc, lines) == (EX_UNAVAILABLE, [])
    assert err.startswith("hato: 5.1.2 ") and err.endswith(": invalid domain name\n"), err
    assert "\x01" not in err


def test_at_most_16_hosts_in_order_over_tcp(dns, conf):
    rc, lines, err = route(conf, "lots.test")
    assert rc == 0, err
    # preferences 80..99 for 127.0.1.20..1: the 16 lowest, in order
    assert lines == ["mx %d 127.0.1.%d 127.0.1.%d" % (100 - i, i, i)
                     for i in range(20, 4, -1)]
    # the answer did not fit in UDP: c-ares asked again over TCP
    assert dns.logs().count("query[MX] lots.test") >= 2


def test_at_most_8_addresses_both_families_kept(conf):
    rc, lines, err = route(conf, "manyaddr.test")
    assert rc == 0, err
    [line] = lines
    addrs = line.split()[3:]
    assert len(addrs) == 8
    v6 = [a for a in addrs if ":" in a]
    assert len(v6) == 4 and addrs[:4] == v6  # IPv6 first, four places each
    assert set(v6) <= {"2001:db8::2:%d" % i for i in range(1, 7)}
    assert set(addrs[4:]) <= {"127.0.2.%d" % i for i in range(1, 7)}


def test_at_most_8_addresses_one_family(conf):
    rc, lines, err = route(conf, "v6only.test")
    assert rc == 0, err
    [line] = lines
    assert len(line.split()[3:]) == 8


def test_route_host(dns, conf):
    assert route(conf, "--host", "mx1.multi.test") == (
        0, ["host mx1.multi.test 2001:db8::11 127.0.0.11"], "")
    assert route(conf, "--host", "127.0.0.9") == (0, ["host 127.0.0.9 127.0.0.9"], "")
    assert route(conf, "--host", "[IPv6:::1]") == (0, ["host [IPv6:::1] ::1"], "")
    rc, lines, err = route(conf, "--host", "nosuch.test")
    assert (rc, lines, err) == (EX_UNAVAILABLE, [], "hato: 5.4.4 nosuch.test: no such host\n")
    rc, lines, err = route(conf, "--host", "mx.broken.test")
    assert (rc, lines) == (EX_TEMPFAIL, [])
    assert err.startswith("hato: 4.4.3 mx.broken.test: address lookup failed: timeout"), err


def test_route_host_reads_etc_hosts(conf):
    with open("/etc/hosts") as f:
        names = {w for line in f if not line.lstrip().startswith("#")
                 for w in line.split()[1:] if line.split()[0] == "127.0.0.1"}
    if "localhost" not in names:
        pytest.skip("no 127.0.0.1 localhost in /etc/hosts")
    rc, lines, err = route(conf, "--host", "localhost")
    assert rc == 0, err
    assert lines[0].startswith("host localhost ") and "127.0.0.1" in lines[0].split()


def test_route_usage(conf):
    for args in ([], ["a.test", "b.test"], ["--host"], ["-x"], [""]):
        rc, lines, err = route(conf, *args)
        assert rc == EX_USAGE, args
        assert err == "hato: usage: hato [-c FILE] route DOMAIN | route --host HOST\n"


def test_route_reads_config_from_environment(conf):
    rc, out, err = run([HATO, "route", "multi.test"], env_extra={"HATO_CONFIG": conf})
    assert rc == 0, err
    assert out.startswith("mx 10 mx1.multi.test ")


def test_route_refuses_bad_config(testdir):
    path = os.path.join(testdir, "bad.conf")
    with open(path, "w") as f:
        f.write("[dns]\nservers = ns1.example:53\n")
    rc, lines, err = route(path, "multi.test")
    assert rc == EX_CONFIG
    assert err == 'hato: %s:2: key "servers" in [dns]: bad value "ns1.example:53"\n' % path


# ---------------------------------------------------------------------------
# The [dns] keys in hatod -n.

def hatod_check(testdir, text):
    path = os.path.join(testdir, "check.conf")
    with open(path, "w") as f:
        f.write(text + "[listener smtp]\naddress = 127.0.0.1:2525\n")
    rc, out, err = run([HATOD, "-n", "-c", path], timeout=10)
    return rc, out, err, path


@pytest.mark.parametrize("text", [
    "[dns]\nservers = 127.0.0.1:5353, [::1]:53 192.0.2.53 2001:db8::53\n"
    "timeout = 750ms\ntries = 3\n",
    "[dns]\nservers =\ntimeout = 5s\ntries = 1\n",
    "[dns]\ntimeout = 1m\ntries = 5\n",
    "[dns]\n",
])
def test_hatod_accepts_dns_keys(testdir, text):
    rc, out, err, path = hatod_check(testdir, text)
    assert (rc, err) == (0, "")
    assert out == "hatod: configuration %s is valid\n" % path


@pytest.mark.parametrize("text,line,message", [
    ("[dns]\nservers = localhost\n", 2, 'key "servers" in [dns]: bad value "localhost"'),
    ("[dns]\nservers = 127.0.0.1:0\n", 2, 'key "servers" in [dns]: bad value "127.0.0.1:0"'),
    ("[dns]\nservers = ::1:53:x\n", 2, 'key "servers" in [dns]: bad value "::1:53:x"'),
    ("[dns]\nservers = [::1]:53, 1.2.3.4:70000\n", 2,
     'key "servers" in [dns]: bad value "[::1]:53, 1.2.3.4:70000"'),
    ("[dns]\nservers = " + " ".join("127.0.0.%d" % i for i in range(1, 10)) + "\n", 2,
     'key "servers" in [dns]: bad value "' +
     " ".join("127.0.0.%d" % i for i in range(1, 10)) + '"'),
    ("[dns]\ntimeout = 0\n", 2, 'key "timeout" in [dns]: bad value "0"'),
    ("[dns]\ntimeout = 5ms\n", 2, 'key "timeout" in [dns]: bad value "5ms"'),
    ("[dns]\ntimeout = 2h\n", 2, 'key "timeout" in [dns]: bad value "2h"'),
    ("[dns]\ntimeout = soon\n", 2, 'key "timeout" in [dns]: bad value "soon"'),
    ("[dns]\ntries = 0\n", 2, 'key "tries" in [dns]: bad value "0"'),
    ("[dns]\ntries = 6\n", 2, 'key "tries" in [dns]: bad value "6"'),
    ("[dns]\n\nresolver = 127.0.0.1\n", 3, 'unknown key "resolver" in [dns]'),
    ("[server]\nhostname = a\n[dns]\ntries = 2\n[dnssec]\n", 5, "unknown section [dnssec]"),
])
def test_hatod_refuses_bad_dns_keys(testdir, text, line, message):
    rc, out, err, path = hatod_check(testdir, text)
    assert rc != 0 and out == ""
    assert err == "hatod: %s:%d: %s\n" % (path, line, message)


# ---------------------------------------------------------------------------
# A zone of the test's own, from the make_dns_server fixture.

def test_null_mx_next_to_a_real_mx_is_ignored(make_dns_server, testdir):
    # RFC 7505 forbids publishing both; the root is never a host to try
    z = Zone().null_mx("mixed.test").mx("mixed.test", 10, "127.0.0.50")
    dns = make_dns_server(z)
    conf = write_conf(testdir, dns.address)
    assert route(conf, "mixed.test") == (0, ["mx 10 127.0.0.50 127.0.0.50"], "")


def test_null_mx_with_another_preference(make_dns_server, testdir):
    dns = make_dns_server(Zone().rr("nullish.test", 15, "000a00"))
    conf = write_conf(testdir, dns.address)
    rc, lines, err = route(conf, "nullish.test")
    assert (rc, lines) == (EX_UNAVAILABLE, [])
    assert err == "hato: 5.1.10 nullish.test: domain accepts no mail (null MX)\n"


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not have_ipv6(), reason="no IPv6 loopback here")
def test_server_over_ipv6(make_dns_server, testdir):
    dns = make_dns_server(Zone().mx("six.test", 10, "127.0.0.60"), ipv6=True)
    conf = write_conf(testdir, dns.address6)
    assert route(conf, "six.test") == (0, ["mx 10 127.0.0.60 127.0.0.60"], "")
    assert "query[MX] six.test from ::1" in dns.logs()
