#!/usr/bin/python3
"""action_milter.py - a test filter written with Debian's python3-milter
(libmilter's Python binding), for tests/e2e/test_milter.py.

    /usr/bin/python3 action_milter.py PORT LOGFILE

It listens on 127.0.0.1:PORT and writes one JSON line per message to
LOGFILE: the macros it was given at each step, the client, HELO, sender,
recipients, header fields and body it saw.  What it does is chosen by the
message:
  - MAIL FROM reject-mail@ / tempfail-mail@ / reply-mail@: refused at MAIL
    (reply-mail: its own 550 5.7.1 reply);
  - RCPT TO reject-rcpt@ / reply-rcpt@: that recipient refused (reply-rcpt:
    451 4.7.1 of its own);
  - the Subject's first word at the end of message: reject, tempfail,
    replycode (a two-line 554 5.7.1), discard, accept, addheader, insheader,
    chgheader, delheader (X-Remove:), replbody, addrcpt, delrcpt, chgfrom,
    quarantine, progress (answers after 3 s, saying progress each second),
    hang (never answers in time), anything else: continue.
"""
import json
import sys
import threading
import time

import Milter

MACROS = ("j", "{daemon_name}", "{client_addr}", "{client_name}", "{auth_authen}",
          "{tls_version}", "i", "{mail_addr}", "{rcpt_addr}")
LOCK = threading.Lock()


class ActionMilter(Milter.Base):
    """One instance per SMTP session."""

    def __init__(self):
        self.seen = {}

    def macros(self, step):
        got = {}
        for m in MACROS:
            v = self.getsymval(m)
            if v is not None:
                got[m] = v
        self.seen.setdefault("macros", {})[step] = got

    def connect(self, hostname, family, hostaddr):
        self.seen = {"client_hostname": hostname, "client_addr": hostaddr[0]}
        self.macros("connect")
        return Milter.CONTINUE

    def hello(self, heloname):
        self.seen["helo"] = heloname
        self.macros("helo")
        return Milter.CONTINUE

    def envfrom(self, mailfrom, *params):
        self.seen.update({"from": mailfrom, "mail_params": list(params), "rcpts": [],
                          "headers": [], "body": ""})
        self.macros("mail")
        if "reject-mail@" in mailfrom:
            return Milter.REJECT
        if "tempfail-mail@" in mailfrom:
            return Milter.TEMPFAIL
        if "reply-mail@" in mailfrom:
            self.setreply("550", "5.7.1", "Sender refused by the test filter")
            return Milter.REJECT
        return Milter.CONTINUE

    def envrcpt(self, to, *params):
        self.macros("rcpt")
        if "reject-rcpt@" in to:
            return Milter.REJECT
        if "reply-rcpt@" in to:
            self.setreply("451", "4.7.1", "Recipient not now, says the test filter")
            return Milter.TEMPFAIL
        self.seen["rcpts"].append(to)
        return Milter.CONTINUE

    def header(self, name, value):
        self.seen["headers"].append([name, value])
        return Milter.CONTINUE

    def eoh(self):
        self.macros("eoh")
        return Milter.CONTINUE

    def body(self, chunk):
        self.seen["body"] += chunk.decode("utf-8", "replace")
        return Milter.CONTINUE

    def abort(self):
        with LOCK, open(sys.argv[2], "a") as f:
            f.write(json.dumps({"abort": self.seen.get("from")}) + "\n")
        return Milter.CONTINUE

    def eom(self):
        self.macros("eom")
        subject = next((v for n, v in self.seen["headers"] if n.lower() == "subject"), "")
        action = (subject.split() or [""])[0]
        self.seen["action"] = action
        with LOCK, open(sys.argv[2], "a") as f:
            f.write(json.dumps(self.seen) + "\n")
        return self.act(action)

    def act(self, action):
        simple = {"reject": Milter.REJECT, "tempfail": Milter.TEMPFAIL,
                  "discard": Milter.DISCARD, "accept": Milter.ACCEPT}
        if action in simple:
            return simple[action]
        if action == "replycode":
            self.setreply("554", "5.7.1", "Spam detected", "by the test filter")
            return Milter.REJECT
        if action == "addheader":
            self.addheader("X-Test-Milter", "added by the test filter")
        elif action == "insheader":
            self.addheader("X-Inserted", "first of all", idx=0)
        elif action == "chgheader":
            self.chgheader("Subject", 1, "changed by the test filter")
        elif action == "delheader":
            self.chgheader("X-Remove", 1, "")
        elif action == "replbody":
            self.replacebody(b"The body the test filter wrote.\nSecond line.\n")
        elif action == "addrcpt":
            self.addrcpt("<carol@localhost>")
        elif action == "delrcpt":
            self.delrcpt("<bob@localhost>")
        elif action == "chgfrom":
            self.chgfrom("<changed@test.example>")
        elif action == "quarantine":
            self.quarantine("held by the test filter")
        elif action == "progress":
            for _ in range(3):
                time.sleep(1)
                self.progress()
        elif action == "hang":
            time.sleep(6)
        return Milter.CONTINUE


def main():
    Milter.factory = ActionMilter
    Milter.runmilter("hato-test", "inet:%s@127.0.0.1" % sys.argv[1], timeout=30)


if __name__ == "__main__":
    main()
