"""A scripted SMTP server for the remote delivery tests: it plays the next
hop, answering each command as the test tells it and recording every
transaction it received.  Plain sockets and threads from the standard
library; no TLS (the tests that need TLS use a second real hatod).
"""
import socket
import socketserver
import threading


class Transaction:
    def __init__(self):
        self.mail = None      # the MAIL FROM line as received
        self.rcpts = []       # the RCPT TO lines as received (accepted or not)
        self.accepted = []    # the addresses accepted
        self.data = None      # the message, dot-unstuffed, CRLF lines


class ScriptedSMTP:
    """Listens on 127.0.0.1:port.  Knobs (change them any time):
    ehlo: the extension lines after the first 250 line
    ehlo_reply: None (250 + ehlo) or a refusal like "502 5.5.1 no"
    greeting: the 220 line
    rcpt: function(address) -> reply line for RCPT TO
    data_end: list of reply lines for the final dot, used in turn; the
              last one repeats
    """

    def __init__(self, ehlo=("PIPELINING", "8BITMIME", "SIZE 10485760", "ENHANCEDSTATUSCODES")):
        self.ehlo = list(ehlo)
        self.ehlo_reply = None
        self.greeting = "220 next.hop.test ESMTP scripted"
        self.rcpt = lambda addr: "250 2.1.5 ok"
        self.data_end = ["250 2.0.0 queued"]
        self.data_reply = None  # what answers DATA instead of 354 (no data read then)
        self.starttls_reply = None  # the octets answering STARTTLS (no TLS follows)
        self.transactions = []
        self.connections = 0
        self.commands = []
        self.lock = threading.Lock()
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                with server.lock:
                    server.connections += 1
                server._session(self.rfile, self.wfile)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()

    def _session(self, rfile, wfile):
        def say(line):
            wfile.write(line.encode() + b"\r\n")
            wfile.flush()

        say(self.greeting)
        t = None
        while True:
            line = rfile.readline(4096)
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            with self.lock:
                self.commands.append(cmd)
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                if self.ehlo_reply:
                    say(self.ehlo_reply)
                    continue
                lines = ["next.hop.test"] + self.ehlo
                for i, l in enumerate(lines):
                    say(("250 " if i == len(lines) - 1 else "250-") + l)
            elif verb == "HELO":
                say("250 next.hop.test")
            elif verb == "MAIL":
                t = Transaction()
                t.mail = cmd
                say("250 2.1.0 ok")
            elif verb == "RCPT":
                t.rcpts.append(cmd)
                addr = cmd.split(":", 1)[1].split(" ")[0].strip("<>")
                reply = self.rcpt(addr)
                if reply.startswith("2"):
                    t.accepted.append(addr)
                say(reply)
            elif verb == "DATA":
                if t is None or not t.accepted:
                    say("554 5.5.1 no valid recipients")
                    continue
                if self.data_reply:
                    say(self.data_reply)
                    continue
                say("354 go ahead")
                data = b""
                while True:
                    l = rfile.readline(65536)
                    if not l or l == b".\r\n":
                        break
                    data += l[1:] if l.startswith(b".") else l
                t.data = data
                with self.lock:
                    reply = self.data_end[0] if len(self.data_end) == 1 else self.data_end.pop(0)
                    if reply.startswith("2"):
                        self.transactions.append(t)
                say(reply)
            elif verb == "STARTTLS" and self.starttls_reply:
                wfile.write(self.starttls_reply)
                wfile.flush()
            elif verb == "RSET":
                t = None
                say("250 2.0.0 ok")
            elif verb == "NOOP":
                say("250 2.0.0 ok")
            elif verb == "QUIT":
                say("221 2.0.0 bye")
                return
            else:
                say("502 5.5.1 not here")
