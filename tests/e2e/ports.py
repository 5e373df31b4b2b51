"""Free loopback ports for the servers the tests start.

A port from bind(0) comes from the kernel's ephemeral range, the same range
every client connection's local port is taken from: under load a port
handed to a server could be taken by a client socket before the server
binds it.  These ports come from below that range, never twice in one run.
"""
import random
import socket

_handed_out = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host="127.0.0.1", udp=False):
    """A port nothing listens on at host right now (TCP, and UDP if asked),
    outside the ephemeral range, not handed out before in this run."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    high = min(_ephemeral_low(), 65536) - 1
    low = 10000 if high > 20000 else 1024
    for _ in range(1000):
        port = random.randint(low, high)
        if port in _handed_out:
            continue
        kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp else [])
        try:
            for kind in kinds:
                with socket.socket(family, kind) as s:
                    s.bind((host, port))
        except OSError:
            continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port on %s" % host)
