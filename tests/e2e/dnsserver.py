"""A private DNS server for the tests: Debian's dnsmasq (package
dnsmasq-base, installed by scripts/setup.sh) in the foreground on 127.0.0.1
and a free port, UDP and TCP, serving records the test describes.

    zone = Zone()
    zone.mx("example.test", 10, "mx1.example.test")
    zone.host("mx1.example.test", "127.0.0.11", "2001:db8::11")
    dns = make_dns_server(zone)          # the conftest fixture, or:
    dns = DnsServer(directory, zone).start()  ... dns.stop()
    "[dns]\\nservers = %s\\n" % dns.address  # 127.0.0.1:PORT

Names under the zone's local domains (`test` unless Zone(local=...) says
otherwise) that it does not define get NXDOMAIN; a defined name asked for a
type it lacks gets an empty answer (NODATA); names anywhere else get
REFUSED, as no upstream server is ever asked.  zone.broken(domain) sends the
queries for a domain to a socket that never answers, so they time out.
"""
import os
import signal
import socket
import struct
import subprocess
import time

from ports import free_port

DNSMASQ = "/usr/sbin/dnsmasq"

# How long start() waits for the first answer, and how often it tries a
# new port when the chosen one was taken meanwhile.
START_TIMEOUT = 10.0
START_ATTEMPTS = 5


class Zone:
    """The records one dnsmasq serves, as lines of its configuration."""

    def __init__(self, local=("test",)):
        self.local = list(local)
        self.lines = []
        self.broken_domains = []

    def mx(self, domain, pref, host):
        """An MX record; repeat for more.  host may be an IP address."""
        self.lines.append("mx-host=%s,%s,%d" % (domain, host, pref))
        return self

    def host(self, name, *addrs):
        """A and AAAA records for name (any number of either)."""
        for a in addrs:
            self.lines.append("host-record=%s,%s" % (name, a))
        return self

    def cname(self, alias, target):
        self.lines.append("cname=%s,%s" % (alias, target))
        return self

    def txt(self, name, text):
        """A TXT record: the name exists, with no MX and no address.  Text
        longer than a DNS string (255 octets) goes in several strings, as
        an RSA DKIM key needs."""
        parts = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
        self.lines.append("txt-record=%s,%s" % (name, ",".join('"%s"' % p for p in parts)))
        return self

    def null_mx(self, domain):
        """RFC 7505: MX 0 with the root as its host."""
        return self.rr(domain, 15, "0000" + "00")

    def rr(self, name, rrtype, hexdata):
        """Any record, its RDATA in hex (dnsmasq --dns-rr)."""
        self.lines.append("dns-rr=%s,%d,%s" % (name, rrtype, hexdata))
        return self

    def broken(self, domain):
        """Queries for domain and below are never answered."""
        self.broken_domains.append(domain)
        return self


def query(port, name, qtype, timeout=1.0, host="127.0.0.1"):
    """Ask one UDP question; returns (rcode, number of answers)."""
    qid = int.from_bytes(os.urandom(2), "big")
    msg = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        raw = label.encode()
        msg += bytes([len(raw)]) + raw
    msg += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(msg, (host, port))
        while True:
            reply, _ = s.recvfrom(65535)
            if reply[:2] == msg[:2]:
                break
    flags, _, ancount = struct.unpack(">HHH", reply[2:8])
    return flags & 0xF, ancount


class DnsServer:
    """One dnsmasq process with its config, log and PID file in root; with
    ipv6=True it listens on [::1] too (same port: address6)."""

    def __init__(self, root, zone, ipv6=False):
        self.root = root
        self.zone = zone
        self.ipv6 = ipv6
        self.port = None
        self.proc = None
        self.blackhole = None
        self.conf_path = os.path.join(root, "dnsmasq.conf")
        self.log_path = os.path.join(root, "dnsmasq.log")
        self.pid_path = os.path.join(root, "dnsmasq.pid")

    @property
    def address(self):
        """For [dns] servers."""
        return "127.0.0.1:%d" % self.port

    @property
    def address6(self):
        return "[::1]:%d" % self.port

    def write_config(self):
        listen = "127.0.0.1,::1" if self.ipv6 else "127.0.0.1"
        lines = ["no-resolv", "no-hosts", "bind-interfaces", "listen-address=" + listen,
                 "cache-size=0", "log-queries", "log-facility=-"]
        lines += ["local=/%s/" % d for d in self.zone.local]
        for d in self.zone.broken_domains:
            lines.append("server=/%s/127.0.0.1#%d" % (d, self.blackhole.getsockname()[1]))
        lines += self.zone.lines
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        # Forwarded queries go here and are never read, so never answered.
        self.blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.blackhole.bind(("127.0.0.1", 0))
        self.write_config()
        for _ in range(START_ATTEMPTS):
            self.port = free_port(udp=True)
            if self._start_on_port():
                return self
        raise RuntimeError("dnsmasq did not start:\n" + self.logs())

    def _start_on_port(self):
        """Start dnsmasq on self.port and wait for an answer; False when it
        exited (its port was taken meanwhile)."""
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [DNSMASQ, "--keep-in-foreground", "--conf-file=" + self.conf_path,
                 "--port=%d" % self.port, "--pid-file=" + self.pid_path],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                query(self.port, "ready.%s" % self.zone.local[0], 1, timeout=0.2)
                return True
            except OSError:  # no answer yet, or nothing listens yet
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("dnsmasq did not answer within %.0f s:\n%s"
                           % (START_TIMEOUT, self.logs()))

    def stop(self, timeout=10):
        """SIGTERM by PID, SIGKILL if it lingers; returns the exit code."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
            rc = self.proc.returncode
        if self.blackhole is not None:
            self.blackhole.close()
            self.blackhole = None
        return rc

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
