#!/usr/bin/python3
"""bench/tls_load.py - an SMTP load generator with TLS, for bench/tls.sh.

Postfix's smtp-source has no TLS, so this does the same job with asyncio and
ssl from the standard library: SESSIONS concurrent sessions send MESSAGES
messages in total, each of SIZE octets, over plain SMTP, STARTTLS (RFC 3207)
or implicit TLS (RFC 8314).

  --per-connection 1   one message per connection, like smtp-source:
                       connect, [TLS], EHLO, MAIL, RCPT, DATA, QUIT.
                       With TLS this measures full handshakes (no session
                       resumption: every connection is a new handshake).
  --per-connection N   up to N messages on one connection, RSET between
                       them, then QUIT: the cost of TLS on the data path.

Commands are not pipelined: the client waits for each reply, as smtp-source
does.  Every reply code is checked (220 greeting, 250 EHLO/MAIL/RCPT/RSET,
354 DATA, 250 after the dot, 221 QUIT; 220 STARTTLS); a message counts only
when its final-dot reply is 250.  Anything else is a failure: the connection
is dropped, the messages it had claimed count as failed, and the exit status
is 1.  The whole run is bounded by --timeout (exit status 2 when it hits).

The client does not verify the server's certificate (hatod's is self-signed)
and accepts TLS 1.2 and later.  The last line of output is

  RESULT mode=M sessions=S messages=N seconds=T msg_per_s=R per_connection=P
         failures=F connections=C client_cpu_s=U tls=VERSION cipher=NAME

(on one line), where messages is the number accepted with 250 and
client_cpu_s the CPU time this process used (when it is close to seconds,
the client, not the server, set the pace).
"""

import argparse
import asyncio
import os
import ssl
import sys
import time


class SmtpError(Exception):
    pass


def build_message(size, sender, recipient):
    """A message of exactly `size` octets (headers included): CRLF lines of
    at most 78 characters, none starting with a dot, ending in CRLF."""
    head = (
        f"From: <{sender}>\r\n"
        f"To: <{recipient}>\r\n"
        "Subject: hato TLS benchmark\r\n"
        "Message-ID: <tls-load@localhost>\r\n"
        "\r\n"
    ).encode()
    if size < len(head) + 2:
        raise SystemExit(f"tls_load: --size must be at least {len(head) + 2}")
    body = bytearray()
    left = size - len(head)
    pattern = b"La De Da Di Do The quick brown fox jumps over the lazy dog 0123456789"
    while left > 0:
        n = min(left, 78)  # including CRLF
        if n <= 2:
            # Too little room for another line: lengthen the previous one.
            body[-2:-2] = b"x" * n
            break
        body += pattern[: n - 2].ljust(n - 2, b"x") + b"\r\n"
        left -= n
    msg = head + bytes(body)
    assert len(msg) == size and msg.endswith(b"\r\n"), len(msg)
    return msg


class Stats:
    def __init__(self, total):
        self.remaining = total  # messages not yet claimed by a connection
        self.ok = 0
        self.failed = 0
        self.connections = 0
        self.errors = []  # the first few, for the report
        self.tls = None  # (version, cipher) of the first TLS connection

    def claim(self, n):
        n = min(n, self.remaining)
        self.remaining -= n
        return n

    def error(self, text):
        if len(self.errors) < 10:
            self.errors.append(text)


async def reply(reader, what):
    """Read one (possibly multi-line) reply; return (code, text)."""
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise SmtpError(f"{what}: connection closed by the server")
        if not line.endswith(b"\n"):
            raise SmtpError(f"{what}: reply line without LF: {line[:80]!r}")
        lines.append(line)
        if len(line) < 4 or not line[:3].isdigit():
            raise SmtpError(f"{what}: malformed reply: {line[:80]!r}")
        if line[3:4] != b"-":
            break
        if len(lines) > 100:
            raise SmtpError(f"{what}: reply of more than 100 lines")
    return int(lines[-1][:3]), b"".join(lines).decode("latin-1").rstrip()


async def command(reader, writer, line, expect, what=None):
    if line is not None:
        writer.write(line)
    code, text = await reply(reader, what or line.split(b" ")[0].decode().strip())
    if code != expect:
        raise SmtpError(f"{what or line.decode().strip()}: expected {expect}, got: {text}")
    return text


async def one_connection(args, ctx, stats, count, payload):
    """Open a connection, send `count` messages, QUIT.  Returns the number
    accepted; raises on the first failure."""
    host, port = args.host, args.port
    writer = None
    sent = 0
    try:
        if args.mode == "implicit":
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ctx, server_hostname=args.helo,
                ssl_handshake_timeout=args.timeout)
        else:
            reader, writer = await asyncio.open_connection(host, port)
        stats.connections += 1
        await command(reader, writer, None, 220, "greeting")
        ehlo = b"EHLO " + args.helo.encode() + b"\r\n"
        text = await command(reader, writer, ehlo, 250)
        if args.mode == "starttls":
            if "STARTTLS" not in text.upper():
                raise SmtpError(f"EHLO: STARTTLS not offered: {text}")
            await command(reader, writer, b"STARTTLS\r\n", 220)
            await writer.start_tls(ctx, server_hostname=args.helo,
                                   ssl_handshake_timeout=args.timeout)
            text = await command(reader, writer, ehlo, 250)
            if "STARTTLS" in text.upper():
                raise SmtpError("EHLO after TLS still offers STARTTLS")
        if args.mode != "plain" and stats.tls is None:
            sslobj = writer.get_extra_info("ssl_object")
            if sslobj is None:
                raise SmtpError("no TLS on the connection after the handshake")
            stats.tls = (sslobj.version(), sslobj.cipher()[0])
        mail = b"MAIL FROM:<" + args.sender.encode() + b">\r\n"
        rcpt = b"RCPT TO:<" + args.recipient.encode() + b">\r\n"
        for i in range(count):
            if i > 0:
                await command(reader, writer, b"RSET\r\n", 250)
            await command(reader, writer, mail, 250, "MAIL")
            await command(reader, writer, rcpt, 250, "RCPT")
            await command(reader, writer, b"DATA\r\n", 354)
            await command(reader, writer, payload, 250, "final dot")
            sent += 1
            stats.ok += 1
        await command(reader, writer, b"QUIT\r\n", 221)
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass  # the server may close first; the message was already accepted
        writer = None
    except (SmtpError, OSError, ssl.SSLError, asyncio.IncompleteReadError) as e:
        stats.failed += count - sent
        stats.error(f"{type(e).__name__}: {e}")
    finally:
        if writer is not None:
            writer.transport.abort()


async def session(args, ctx, stats, payload):
    while True:
        n = stats.claim(args.per_connection)
        if n == 0:
            return
        await one_connection(args, ctx, stats, n, payload)


async def run(args):
    ctx = None
    if args.mode != "plain":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # hatod's certificate is self-signed
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if args.tls_max:
            ctx.maximum_version = {"1.2": ssl.TLSVersion.TLSv1_2,
                                   "1.3": ssl.TLSVersion.TLSv1_3}[args.tls_max]
    payload = build_message(args.size, args.sender, args.recipient) + b".\r\n"
    stats = Stats(args.messages)
    cpu0 = time.process_time()
    t0 = time.monotonic()
    tasks = [asyncio.create_task(session(args, ctx, stats, payload))
             for _ in range(args.sessions)]
    done, pending = await asyncio.wait(tasks, timeout=args.timeout)
    timed_out = bool(pending)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending)
    seconds = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    if timed_out:
        stats.error(f"timeout: the run did not finish within {args.timeout}s")
    # Claimed-but-cancelled and never-claimed messages are failures too.
    stats.failed = args.messages - stats.ok
    return stats, seconds, cpu, timed_out


def positive(s):
    n = int(s)
    if n < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return n


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=positive, required=True)
    p.add_argument("--mode", choices=("plain", "starttls", "implicit"), required=True)
    p.add_argument("--sessions", type=positive, default=20, help="concurrent sessions (20)")
    p.add_argument("--messages", type=positive, default=5000, help="messages in total (5000)")
    p.add_argument("--per-connection", type=positive, default=1,
                   help="messages per connection, RSET between them (1)")
    p.add_argument("--size", type=positive, default=2048, help="octets per message (2048)")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds allowed for the whole run (600)")
    p.add_argument("--helo", default="localhost")
    p.add_argument("--sender", default="bench@localhost")
    p.add_argument("--recipient", default="bench@localhost")
    p.add_argument("--tls-max", choices=("1.2", "1.3"), help="highest TLS version offered")
    args = p.parse_args()

    busy = -(-args.messages // args.per_connection)  # connections in all
    if busy < args.sessions:
        print(f"tls_load: warning: {args.messages} messages at {args.per_connection} per "
              f"connection keep only {busy} of {args.sessions} sessions busy", file=sys.stderr)
    stats, seconds, cpu, timed_out = asyncio.run(run(args))
    for e in stats.errors:
        print(f"tls_load: {e}", file=sys.stderr)
    if stats.failed:
        print(f"tls_load: {stats.failed} of {args.messages} messages failed", file=sys.stderr)
    rate = stats.ok / seconds if seconds > 0 else 0.0
    tls, cipher = stats.tls or ("none", "none")
    print(f"RESULT mode={args.mode} sessions={args.sessions} messages={stats.ok} "
          f"seconds={seconds:.3f} msg_per_s={rate:.1f} per_connection={args.per_connection} "
          f"failures={stats.failed} connections={stats.connections} "
          f"client_cpu_s={cpu:.2f} tls={tls} cipher={cipher}", flush=True)
    if timed_out:
        return 2
    return 1 if stats.failed else 0


if __name__ == "__main__":
    sys.exit(main())
