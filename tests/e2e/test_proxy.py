"""PROXY protocol v1 and v2 on listeners (proxy_protocol = yes): through a
real HAProxy (Debian's haproxy, started by each test with send-proxy and
send-proxy-v2) the original client's address is the session's everywhere -
the Received: header, the logs, trusted_networks - and headers that are
missing, malformed, oversized, late, or from a peer outside proxy_networks
close the connection with a log line (raw sockets straight to hatod).

Clients connect from other 127/8 addresses than the balancer's 127.0.0.1,
so the address hatod reports can only have come from the header.
"""
import os
import re
import shutil
import smtplib
import socket
import struct
import subprocess
import time

import pytest

from conftest import RawSMTP, free_port, stop_process, wait_port
from test_tls import client_ctx

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
MSG = b"From: a@client.example\r\nTo: bob@localhost\r\nSubject: proxied\r\n\r\nhi\r\n"

HAPROXY_CONF = """\
global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
"""

HAPROXY_ROUTE = """\
frontend f_{name}
    bind 127.0.0.1:{front}
    default_backend b_{name}
backend b_{name}
    server hato 127.0.0.1:{back} {option}
"""


class HAProxy:
    """One haproxy process (`haproxy -db -f CONF`), stopped by its PID."""

    def __init__(self, root, routes):
        """routes: {name: (hatod port, "send-proxy" | "send-proxy-v2")};
        self.ports[name] is the front port for each."""
        if not os.access(HAPROXY, os.X_OK):
            pytest.fail("%s not found: install haproxy (scripts/setup.sh)" % HAPROXY)
        self.conf = os.path.join(root, "haproxy.cfg")
        self.out_path = os.path.join(root, "haproxy.out")
        self.ports = {name: free_port() for name in routes}
        text = HAPROXY_CONF
        for name, (back, option) in routes.items():
            text += HAPROXY_ROUTE.format(name=name, front=self.ports[name], back=back,
                                         option=option)
        with open(self.conf, "w") as f:
            f.write(text)
        self.out = open(self.out_path, "ab")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.conf],
                                     stdout=self.out, stderr=subprocess.STDOUT)
        for port in self.ports.values():
            try:
                wait_port("127.0.0.1", port, proc=self.proc)
            except RuntimeError as e:
                pytest.fail("haproxy did not start: %s\n%s" % (e, self.logs()))

    def stop(self):
        stop_process(self.proc)
        self.out.close()

    def logs(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


@pytest.fixture
def make_haproxy(testdir):
    started = []

    def make(routes):
        sub = os.path.join(testdir, "haproxy%d" % len(started))
        os.mkdir(sub)
        p = HAProxy(sub, routes)
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


def proxied_hatod(make_hatod, networks="127.0.0.1/32", limits=None, server=None):
    """hatod with a plain listener ("mx", STARTTLS offered) and an implicit
    TLS one ("smtps"), both expecting the PROXY header from networks, and
    a direct listener without it; h.ports[name]."""
    ports = {"mx": free_port(), "smtps": free_port(), "direct": free_port()}
    listeners = {
        "mx": {"address": "127.0.0.1:%d" % ports["mx"], "proxy_protocol": "yes",
               "proxy_networks": networks},
        "smtps": {"address": "127.0.0.1:%d" % ports["smtps"], "tls": "implicit",
                  "proxy_protocol": "yes", "proxy_networks": networks},
        "direct": {"address": "127.0.0.1:%d" % ports["direct"]},
    }
    lim = {"error_delay_ms": 0}
    lim.update(limits or {})
    h = make_hatod(listeners=listeners, limits=lim, server=server)
    h.ports = ports
    return h


def smtp_from(source, port, implicit=False):
    """smtplib connected from source (a 127/8 address) to 127.0.0.1:port."""
    if implicit:
        return smtplib.SMTP_SSL("127.0.0.1", port, context=client_ctx(), timeout=15,
                                source_address=(source, 0))
    return smtplib.SMTP("127.0.0.1", port, timeout=15, source_address=(source, 0))


def raw_from(source, port):
    """A bare socket from source to hatod's port (no greeting read)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def closed_silently(s, timeout=10.0):
    """True when the server closes s without sending a byte."""
    s.settimeout(timeout)
    try:
        data = s.recv(4096)
    except ConnectionResetError:
        return True
    finally:
        s.close()
    assert data == b"", "unexpected bytes: %r" % data
    return True


def received(msg):
    """Our Received: header, unfolded."""
    m = re.match(rb"Received: (.*?)\r\n(?![\t ])", msg, re.S)
    return m.group(1).replace(b"\r\n\t", b" ").decode()


@pytest.mark.parametrize("option,version", [("send-proxy", 1), ("send-proxy-v2", 2)])
def test_haproxy_client_address_in_received_and_logs(make_hatod, make_haproxy, option,
                                                     version):
    h = proxied_hatod(make_hatod)
    hp = make_haproxy({"mx": (h.ports["mx"], option)})
    with smtp_from("127.0.0.5", hp.ports["mx"]) as s:
        s.starttls(context=client_ctx())  # STARTTLS after the header works too
        s.ehlo("client.example")
        assert s.sendmail("a@client.example", ["bob@localhost"], MSG) == {}
    [(_, msg)] = h.queued()
    rec = received(msg)
    assert "from client.example (unknown [127.0.0.5])" in rec, rec
    assert "127.0.0.1" not in rec
    log = h.logs()
    m = re.search(r"event=proxy session=(\w+) listener=mx peer=127\.0\.0\.1 version=%d "
                  r"client=127\.0\.0\.5 port=\d+ local=127\.0\.0\.1" % version, log)
    assert m, log
    sid = m.group(1)
    assert re.search(r"event=connect session=%s listener=mx client=127\.0\.0\.5 port=\d+ "
                     r"trusted=no proxy=127\.0\.0\.1" % sid, log), log
    assert "event=tls_established session=%s client=127.0.0.5" % sid in log
    h.wait_log("event=disconnect session=%s client=127.0.0.5" % sid)  # logged once 221 is out


@pytest.mark.parametrize("option", ["send-proxy", "send-proxy-v2"])
def test_haproxy_implicit_tls_after_header(make_hatod, make_haproxy, option):
    """On an implicit-TLS listener the header comes first, then the
    ClientHello: hatod reads exactly the header and leaves the rest to TLS."""
    h = proxied_hatod(make_hatod)
    hp = make_haproxy({"smtps": (h.ports["smtps"], option)})
    with smtp_from("127.0.0.6", hp.ports["smtps"], implicit=True) as s:
        assert s.ehlo("client.example")[0] == 250
        assert s.sendmail("a@client.example", ["bob@localhost"], MSG) == {}
    [(_, msg)] = h.queued()
    rec = received(msg)
    assert "[127.0.0.6]" in rec and "(using TLSv1.3" in rec, rec


def test_haproxy_policy_uses_client_address(make_hatod, make_haproxy):
    """trusted_networks judges the client the header names, never the
    balancer: relaying is allowed for 127.0.0.7 and refused for 127.0.0.8,
    though both arrive from 127.0.0.1."""
    h = proxied_hatod(make_hatod, server={"trusted_networks": "127.0.0.7/32"})
    hp = make_haproxy({"v1": (h.ports["mx"], "send-proxy"),
                       "v2": (h.ports["mx"], "send-proxy-v2")})
    for route in ("v1", "v2"):
        with smtp_from("127.0.0.7", hp.ports[route]) as s:
            assert s.sendmail("a@client.example", ["x@remote.example"], MSG) == {}
        with smtp_from("127.0.0.8", hp.ports[route]) as s:
            with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
                s.sendmail("a@client.example", ["x@remote.example"], MSG)
            assert e.value.recipients["x@remote.example"][0] == 554
    assert len(h.queued()) == 2
    log = h.logs()
    assert log.count("client=127.0.0.7 port=") >= 2 and "trusted=yes proxy=127.0.0.1" in log


def test_untrusted_peer_closed(make_hatod):
    """A peer outside proxy_networks may not even send a header."""
    h = proxied_hatod(make_hatod)
    s = raw_from("127.0.0.9", h.ports["mx"])
    s.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 4000 25\r\n")
    assert closed_silently(s)
    h.wait_log('event=proxy_refused session=')
    assert re.search(r'event=proxy_refused session=\w+ listener=mx peer=127\.0\.0\.9 '
                     r'reason="peer not in proxy_networks"', h.logs())
    assert "client=192.0.2.7" not in h.logs()
    # the direct listener is not affected
    with RawSMTP("127.0.0.1", h.ports["direct"]) as c:
        assert c.greeting.startswith("220 ")


@pytest.mark.parametrize("data,reason", [
    (b"EHLO client.example\r\n", "no PROXY header"),
    (b"PROXY TCP4 192.0.2.7 127.0.0.1 99999 25\r\n", "v1: bad address or port"),
    (b"PROXY TCP4 192.0.2.7 127.0.0.1 4000 25\n", "v1: line does not end in CRLF"),
    (b"PROXY TCP4 192.0.2.7 127.0.0.1 4000\r\n", "v1: not four fields"),
    (b"PROXY TCP5 192.0.2.7 127.0.0.1 4000 25\r\n", "v1: protocol not TCP4"),
    (b"PROXY UNKNOWN " + b"x" * 200, "v1: no CRLF within 107 octets"),
    (V2_SIG + b"\x21\x11\xff\xff" + b"\x00" * 64, "v2: header longer than proxy_header_max"),
    (V2_SIG + b"\x21\x12\x00\x0c" + b"\x00" * 12, "v2: family not TCP"),
    (V2_SIG + b"\x31\x11\x00\x0c" + b"\x00" * 12, "v2: version is not 2"),
    (V2_SIG + b"\x21\x11\x00\x04" + b"\x00" * 4, "v2: address block too short"),
    (V2_SIG[:6] + b"XXXXXX\x21\x11\x00\x0c", "no PROXY header"),
])
def test_malformed_headers_closed(make_hatod, data, reason):
    h = proxied_hatod(make_hatod)
    s = raw_from("127.0.0.1", h.ports["mx"])
    s.sendall(data)
    assert closed_silently(s)
    h.wait_log("event=proxy_refused")
    assert re.search(r'event=proxy_refused session=\w+ listener=mx peer=127\.0\.0\.1 '
                     r'reason="%s' % re.escape(reason), h.logs()), h.logs()
    assert "event=connect" not in h.logs()


def test_oversized_header_by_small_limit(make_hatod):
    """proxy_header_max bounds a v2 header with its TLVs."""
    h = proxied_hatod(make_hatod, limits={"proxy_header_max": "300"})
    tlv = b"\x04" + struct.pack(">H", 300) + b"u" * 300  # a NOOP TLV of 300 octets
    body = bytes([127, 0, 0, 5, 127, 0, 0, 1]) + struct.pack(">HH", 4000, 25) + tlv
    s = raw_from("127.0.0.1", h.ports["mx"])
    s.sendall(V2_SIG + b"\x21\x11" + struct.pack(">H", len(body)) + body)
    assert closed_silently(s)
    h.wait_log('reason="v2: header longer than proxy_header_max"')


def test_header_timeout_and_slow_bytes(make_hatod):
    """A header that does not arrive whole within timeout_proxy: closed,
    however the octets trickle in."""
    h = proxied_hatod(make_hatod, limits={"timeout_proxy": "1s"})
    s = raw_from("127.0.0.1", h.ports["mx"])
    start = time.monotonic()
    s.sendall(b"PROXY TCP4 ")
    try:
        for ch in b"192.0.2.7 127.0.0.1":
            s.sendall(bytes([ch]))
            time.sleep(0.1)
    except OSError:
        pass
    assert closed_silently(s)
    assert 0.9 <= time.monotonic() - start < 5
    h.wait_log('reason="no whole header within timeout_proxy"')
    s = raw_from("127.0.0.1", h.ports["mx"])  # nothing at all
    assert closed_silently(s)
    h.wait_log('reason="no whole header within timeout_proxy"', count=2)


def test_raw_headers_split_and_pipelined(make_hatod):
    """A v1 header in pieces, and a v2 header in one packet with the first
    command right behind it: both greet, and the command is answered."""
    h = proxied_hatod(make_hatod)
    s = raw_from("127.0.0.1", h.ports["mx"])
    for part in (b"PRO", b"XY TCP6 2001:db8::7 ", b"2001:db8::1 4000 25\r", b"\n"):
        s.sendall(part)
        time.sleep(0.05)
    c = RawSMTP.__new__(RawSMTP)
    c.sock, c.buf = s, b""
    assert c.reply().startswith("220 ")
    assert c.cmd("MAIL FROM:<a@client.example>").startswith("503")  # no EHLO yet: alive
    c.close()
    h.wait_log("client=2001:db8::7")
    assert re.search(r"event=proxy session=\w+ listener=mx peer=127\.0\.0\.1 version=1 "
                     r"client=2001:db8::7 port=4000 local=2001:db8::1", h.logs())

    body = bytes([192, 0, 2, 9, 127, 0, 0, 1]) + struct.pack(">HH", 4001, 25)
    s = raw_from("127.0.0.1", h.ports["mx"])
    s.sendall(V2_SIG + b"\x21\x11" + struct.pack(">H", len(body)) + body + b"EHLO c.example\r\n")
    c = RawSMTP.__new__(RawSMTP)
    c.sock, c.buf = s, b""
    assert c.reply().startswith("220 ")
    assert c.reply().startswith("250")
    c.close()
    h.wait_log("client=192.0.2.9 port=4001")


def test_local_and_unknown_keep_connection_address(make_hatod):
    """v2 LOCAL and v1 UNKNOWN (a balancer's health check) carry no client:
    the balancer's own address stands."""
    h = proxied_hatod(make_hatod)
    for header in (V2_SIG + b"\x20\x00\x00\x00", b"PROXY UNKNOWN\r\n"):
        s = raw_from("127.0.0.1", h.ports["mx"])
        s.sendall(header)
        c = RawSMTP.__new__(RawSMTP)
        c.sock, c.buf = s, b""
        assert c.reply().startswith("220 ")
        assert c.cmd("QUIT").startswith("221")
        c.close()
    h.wait_log("client=none", count=2)
    assert h.logs().count("listener=mx client=127.0.0.1 port=") == 2


def test_sigterm_while_header_pending(make_hatod):
    """hatod stops promptly with a connection still owing its header."""
    h = proxied_hatod(make_hatod)
    s = raw_from("127.0.0.1", h.ports["mx"])
    s.sendall(b"PROXY TCP4 ")
    time.sleep(0.2)
    start = time.monotonic()
    assert h.stop() == 0
    assert time.monotonic() - start < 5
    assert closed_silently(s)
