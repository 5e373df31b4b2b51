"""The Prometheus endpoint ([metrics] listen): traffic that moves each
metric - a message delivered to a Maildir, refused recipients, a message
refused at its end, STARTTLS that works and one that fails, a failed and a
good AUTH, a remote delivery deferred, a message held - then a scrape with
curl, parsed by the reference parser of Debian's python3-prometheus-client,
and the values compared with what was sent.  Also the HTTP rules of the
endpoint (404, 405, HEAD, 400, 431, the silent client) and the
configuration's refusal of a non-loopback address without allow_remote.
"""
import os
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import HATOD, Hatod, RawSMTP, free_port
from test_local_delivery import hato
from test_tls import client_ctx

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # a missing checker fails, it never skips
    text_string_to_metric_families = None

ALICE_PW = "Al1ce-Metrics-Q7xz"
WRONG_PW = "Wr0ng-Guess-Zz11"
MSG = (b"From: alice@test.example\r\nTo: bob@test.example\r\nSubject: metrics\r\n"
       b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <m@client.example>\r\n"
       b"\r\nbody\r\n")


class MetricsHatod(Hatod):
    """A hatod with an mx (STARTTLS, no AUTH) and a sub (STARTTLS, AUTH
    required) listener, mailboxes at test.example, example.net routed to a
    port where nothing listens, and [metrics] on its own port."""

    def __init__(self, root, metrics_extra=""):
        self.ports = {"mx": free_port(), "sub": free_port(), "metrics": free_port()}
        self.dead_port = free_port()
        listeners = {
            "mx": {"address": "127.0.0.1:%d" % self.ports["mx"], "tls": "starttls"},
            "sub": {"address": "127.0.0.1:%d" % self.ports["sub"], "tls": "starttls",
                    "auth": "required"},
        }
        extra = ("[domain test.example]\nmailboxes = bob\n"
                 "[transport]\nexample.net = [127.0.0.1]:%d\n"
                 "[metrics]\nlisten = 127.0.0.1:%d\n%s"
                 % (self.dead_port, self.ports["metrics"], metrics_extra))
        super().__init__(root, server={"local_domains": "test.example"},
                         limits={"auth_delay_ms": 10, "error_delay_ms": 0},
                         listeners=listeners, extra=extra,
                         delivery={"hold": "no", "retry_schedule": "1h"})
        self.url = "http://127.0.0.1:%d/metrics" % self.ports["metrics"]


@pytest.fixture
def mh(testdir):
    sub = os.path.join(testdir, "m")
    os.mkdir(sub)
    os.chmod(sub, 0o755)
    h = MetricsHatod(sub)
    h.write_config()
    r = hato(h, "user", "add", "alice", "--stdin", stdin=ALICE_PW + "\n")
    assert r.returncode == 0, r.stderr
    h.start()
    yield h
    assert h.stop() == 0, h.logs()[-3000:]


def curl(*args):
    """curl ARGS: (exit code, stdout)."""
    r = subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True,
                       timeout=20)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def scrape(h):
    """{(sample name, ((label, value), ...)): value}, from curl's scrape
    parsed by prometheus_client's parser; and the families' types."""
    assert text_string_to_metric_families is not None, \
        "python3-prometheus-client is missing (scripts/setup.sh installs it)"
    rc, text = curl("-f", h.url)
    assert rc == 0, text
    samples, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, "series %r twice" % (key,)
            samples[key] = s.value
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_value(h, name, want, timeout=15.0, **labels):
    """Scrape until name{labels} is want; the last samples."""
    deadline = time.monotonic() + timeout
    while True:
        samples, _ = scrape(h)
        if value(samples, name, **labels) == want:
            return samples
        assert time.monotonic() < deadline, "%s%r is %r, not %r" % (
            name, labels, value(samples, name, **labels), want)
        time.sleep(0.1)


def mx_send(h, rcpts, msg=MSG, tls=False):
    """smtplib on mx: MAIL, each RCPT, DATA; the refused recipients."""
    with smtplib.SMTP("127.0.0.1", h.ports["mx"], timeout=15) as s:
        s.ehlo("client.example")
        if tls:
            code, _ = s.starttls(context=client_ctx())
            assert code == 220
            s.ehlo("client.example")
        try:
            return s.sendmail("alice@client.example", rcpts, msg)
        except smtplib.SMTPRecipientsRefused as e:
            return e.recipients


def test_traffic_moves_every_metric(mh):
    h = mh
    samples, types = scrape(h)
    # every family is there, typed, at zero before any traffic
    for name, typ in [("hato_sessions_open", "gauge"), ("hato_sessions", "counter"),
                      ("hato_smtp_refused", "counter"),
                      ("hato_messages_accepted", "counter"),
                      ("hato_messages_refused", "counter"),
                      ("hato_queue_messages", "gauge"), ("hato_deliveries", "counter"),
                      ("hato_delivery_duration_seconds", "histogram"),
                      ("hato_delivery_delay_seconds", "histogram"),
                      ("hato_commit_batch_messages", "histogram"),
                      ("hato_commit_duration_seconds", "histogram"),
                      ("hato_tls_handshakes", "counter"),
                      ("hato_tls_handshake_failures", "counter"),
                      ("hato_auth_successes", "counter"), ("hato_auth_failures", "counter")]:
        assert types.get(name) == typ, (name, types.get(name))
    assert value(samples, "hato_sessions_total", listener="mx") == 0
    assert value(samples, "hato_sessions_open", listener="sub") == 0
    assert value(samples, "hato_deliveries_total", transport="maildir", outcome="delivered") == 0

    # 1. a good message over STARTTLS, delivered into bob's Maildir; two
    #    recipients refused: unknown user, relay denied
    refused = mx_send(h, ["bob@test.example", "nobody@test.example", "eve@elsewhere.example"],
                      tls=True)
    assert set(refused) == {"nobody@test.example", "eve@elsewhere.example"}, refused
    assert refused["nobody@test.example"][0] == 550
    assert refused["eve@elsewhere.example"][0] == 554
    deadline = time.monotonic() + 15
    while not h.maildir("bob", "test.example"):
        assert time.monotonic() < deadline, "no delivery:\n" + h.logs()[-2000:]
        time.sleep(0.05)

    # 2. a message refused at its end: a NUL in the text (554 5.6.0)
    with RawSMTP("127.0.0.1", h.ports["mx"]) as c:
        assert c.cmd("EHLO client.example").startswith("250")
        assert c.cmd("MAIL FROM:<alice@client.example>").startswith("250")
        assert c.cmd("RCPT TO:<bob@test.example>").startswith("250")
        assert c.cmd("DATA").startswith("354")
        c.send(b"Subject: nul\r\n\r\nbad\x00byte\r\n.\r\n")
        assert c.reply().startswith("554 5.6.0")
        c.cmd("QUIT")

    # 3. a STARTTLS whose handshake fails: plaintext where a ClientHello belongs
    with RawSMTP("127.0.0.1", h.ports["mx"]) as c:
        assert c.cmd("EHLO client.example").startswith("250")
        assert c.cmd("STARTTLS").startswith("220")
        c.send(b"this is no TLS ClientHello\r\n" * 4)
        try:
            c.sock.recv(65536)  # an alert, or nothing: then the close
        except ConnectionResetError:
            pass
        h.wait_log("event=tls_failed")

    # 4. on sub: a wrong password (535), then the right one, and a message
    #    for example.net, whose next hop does not answer: deferred
    with smtplib.SMTP("127.0.0.1", h.ports["sub"], timeout=15) as s:
        s.ehlo("client.example")
        assert s.starttls(context=client_ctx())[0] == 220
        s.ehlo("client.example")
        s.user, s.password = "alice", WRONG_PW  # one AUTH PLAIN, not login()'s round
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.auth("PLAIN", s.auth_plain)
        assert e.value.smtp_code == 535
        s.password = ALICE_PW
        assert s.auth("PLAIN", s.auth_plain)[0] == 235
        assert s.sendmail("alice@test.example", ["carol@example.net"], MSG) == {}
    h.wait_log("rcpt=<carol@example.net> status=deferred")

    wait_value(h, "hato_sessions_open", 0, listener="sub")
    wait_value(h, "hato_sessions_open", 0, listener="mx")
    # the attempt's result reaches the queue once its job has ended
    samples = wait_value(h, "hato_queue_messages", 1, state="deferred")
    v = lambda name, **kw: value(samples, name, **kw)  # noqa: E731
    assert v("hato_sessions_total", listener="mx") == 3
    assert v("hato_sessions_total", listener="sub") == 1
    assert v("hato_smtp_refused_total", command="rcpt", reason="user_unknown") == 1
    assert v("hato_smtp_refused_total", command="rcpt", reason="relay_denied") == 1
    assert v("hato_messages_accepted_total", source="smtp") == 2
    assert v("hato_messages_refused_total", source="smtp", reason="bad_content") == 1
    assert v("hato_tls_handshakes_total", listener="mx") == 1
    assert v("hato_tls_handshakes_total", listener="sub") == 1
    assert v("hato_tls_handshake_failures_total", listener="mx") == 1
    assert v("hato_tls_handshake_failures_total", listener="sub") == 0
    assert v("hato_auth_failures_total", listener="sub") == 1
    assert v("hato_auth_successes_total", listener="sub") == 1
    assert v("hato_deliveries_total", transport="maildir", outcome="delivered") == 1
    assert v("hato_deliveries_total", transport="smtp", outcome="tempfail") == 1
    assert v("hato_deliveries_total", transport="smtp", outcome="delivered") == 0
    assert v("hato_deliveries_total", transport="lmtp", outcome="permfail") == 0
    assert v("hato_queue_messages", state="deferred") == 1
    assert v("hato_queue_messages", state="pending") == 0
    assert v("hato_queue_messages", state="held") == 0
    # histograms: one Maildir file, one SMTP attempt; two commits of one message
    for t in ("maildir", "smtp"):
        assert v("hato_delivery_duration_seconds_count", transport=t) == 1
        assert v("hato_delivery_duration_seconds_bucket", transport=t, le="+Inf") == 1
        assert 0 < v("hato_delivery_duration_seconds_sum", transport=t) < 60
    assert v("hato_delivery_delay_seconds_count", transport="maildir") == 1
    assert v("hato_delivery_delay_seconds_count", transport="smtp") == 0
    assert v("hato_commit_batch_messages_count") == 2
    assert v("hato_commit_batch_messages_sum") == 2
    assert [val for k, val in samples.items() if k[0] == "hato_commit_batch_messages_bucket"
            and float(dict(k[1])["le"]) == 1] == [2]
    assert v("hato_commit_duration_seconds_count") == 2
    # buckets never decrease
    for t in ("maildir", "lmtp", "smtp"):
        buckets = sorted(((float(dict(k[1])["le"]), val) for k, val in samples.items()
                          if k[0] == "hato_delivery_duration_seconds_bucket"
                          and dict(k[1])["transport"] == t))
        counts = [c for _, c in buckets]
        assert counts == sorted(counts), (t, buckets)

    # 5. the deferred message held: the queue gauge moves with it
    [qid] = h.queue_ids()
    r = hato(h, "queue", "hold", qid, "metrics test")
    assert r.returncode == 0, r.stderr
    samples = wait_value(h, "hato_queue_messages", 1, state="held")
    assert value(samples, "hato_queue_messages", state="deferred") == 0


def test_http_rules(mh):
    h = mh
    base = "http://127.0.0.1:%d" % h.ports["metrics"]
    # the content type of the text format, and HEAD without a body
    rc, out = curl("-i", h.url)
    assert rc == 0 and out.startswith("HTTP/1.1 200 OK\r\n"), out[:200]
    assert "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n" in out
    rc, out = curl("-I", h.url)
    assert rc == 0 and out.startswith("HTTP/1.1 200 OK"), out
    assert "# HELP" not in out
    # a query string is no other path; every other path is 404, other methods 405
    assert curl("-o", "/dev/null", "-w", "%{http_code}", h.url + "?x=1")[1] == "200"
    assert curl("-o", "/dev/null", "-w", "%{http_code}", base + "/")[1] == "404"
    assert curl("-o", "/dev/null", "-w", "%{http_code}", base + "/metrics/x")[1] == "404"
    rc, out = curl("-i", "-X", "POST", "--data", "x=1", h.url)
    assert out.startswith("HTTP/1.1 405") and "Allow: GET, HEAD\r\n" in out, out
    # HTTP/1.0 is answered too
    assert curl("-0", "-o", "/dev/null", "-w", "%{http_code}", h.url)[1] == "200"

    def raw(data, wait=10):
        with socket.create_connection(("127.0.0.1", h.ports["metrics"]), timeout=wait) as s:
            s.sendall(data)
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                out += chunk
            return out

    # malformed heads: 400 and closed
    for bad in (b"GET /metrics\r\n\r\n", b"GET /metrics HTTP/2.0\r\n\r\n",
                b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
                b"GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n",
                b"GET\x00 /metrics HTTP/1.1\r\n\r\n",
                b"GET /metrics HTTP/1.1\r\nX: a\x01b\r\n\r\n"):
        assert raw(bad).startswith(b"HTTP/1.1 400 Bad Request\r\n"), bad
    # a head larger than request_max (8192): 431, never buffered whole
    big = b"GET /metrics HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 20000 + b"\r\n\r\n"
    assert raw(big).startswith(b"HTTP/1.1 431 "), "no 431"
    # the endpoint still answers
    assert curl("-o", "/dev/null", "-w", "%{http_code}", h.url)[1] == "200"


def test_silent_client_is_dropped(testdir):
    sub = os.path.join(testdir, "s")
    os.mkdir(sub)
    os.chmod(sub, 0o755)
    h = MetricsHatod(sub, metrics_extra="timeout = 1s\nclients_max = 2\n")
    h.start()
    try:
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", h.ports["metrics"]), timeout=10) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the empty line
            assert s.recv(100) == b""  # closed by hatod
        assert time.monotonic() - t0 < 5
        # beyond clients_max, a new connection is closed at once; the
        # others are served
        a = socket.create_connection(("127.0.0.1", h.ports["metrics"]), timeout=10)
        b = socket.create_connection(("127.0.0.1", h.ports["metrics"]), timeout=10)
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", h.ports["metrics"]), timeout=10) as c:
            try:
                assert c.recv(100) == b""
            except ConnectionResetError:
                pass
        a.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        assert a.recv(100).startswith(b"HTTP/1.1 200 OK")
        a.close()
        b.close()
        h.wait_log("event=metrics_client_limit")
    finally:
        assert h.stop() == 0


def check_config(testdir, text):
    path = os.path.join(testdir, "m.conf")
    with open(path, "w") as f:
        f.write("[server]\nstate_dir = %s\n[listener smtp]\naddress = 127.0.0.1:2525\n"
                "%s" % (os.path.join(testdir, "state"), text))
    return subprocess.run([HATOD, "-n", "-c", path], capture_output=True, text=True, timeout=10)


@pytest.mark.parametrize("addr", ["0.0.0.0:9025", "192.0.2.1:9025", "[::]:9025",
                                  "[2001:db8::1]:9025"])
def test_non_loopback_needs_allow_remote(testdir, addr):
    r = check_config(testdir, "[metrics]\nlisten = %s\n" % addr)
    assert r.returncode == 1
    assert "not a loopback address" in r.stderr and "allow_remote = yes" in r.stderr, r.stderr
    r = check_config(testdir, "[metrics]\nlisten = %s\nallow_remote = yes\n" % addr)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("addr", ["127.0.0.1:9025", "127.1.2.3:9025", "[::1]:9025"])
def test_loopback_is_allowed(testdir, addr):
    r = check_config(testdir, "[metrics]\nlisten = %s\n" % addr)
    assert r.returncode == 0, r.stderr


def test_bad_listen_value(testdir):
    r = check_config(testdir, "[metrics]\nlisten = localhost\n")
    assert r.returncode == 1 and 'key "listen"' in r.stderr, r.stderr
