#!/usr/bin/python3
"""dlg.py - the one parser of the SMTP dialogue files (tests/dialog/*.dlg).

The format is described in README.md next to this file.  Used by
tests/e2e/test_dialog.py (which plays each file against the real hatod) and
usable from the fuzz harness:

    /usr/bin/python3 tests/dialog/dlg.py --client FILE.dlg > seed

writes the bytes the client sends in FILE.dlg (every C: and C~ line, decoded
and concatenated) - one fuzzer seed per dialogue.  A file that does not parse
raises DialogError naming the file and line.
"""
import re
import sys

# Directives: "# NAME: VALUE" comment lines with one of these names.
DIRECTIVES = ("limits", "server", "expect-queue", "xfail")

CLOSED = "<closed>"

_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}


class DialogError(Exception):
    """A dialogue file that does not follow the format."""


class Step:
    """One line of the dialogue.

    kind is "send" (data: bytes), "reply" (data: str, the expected prefix of
    the next reply's first line, or CLOSED) or "line" (data: str, the
    expected prefix of some line of the last reply, code stripped).
    """

    def __init__(self, kind, data, lineno, source):
        self.kind = kind
        self.data = data
        self.lineno = lineno
        self.source = source  # the line as written, for messages

    def __repr__(self):
        return "Step(%s, %r, line %d)" % (self.kind, self.data, self.lineno)


class Dialog:
    """A parsed .dlg file."""

    def __init__(self, path):
        self.path = path
        self.description = None
        self.limits = {}
        self.server = {}
        self.expect_queue = None  # None: the queue is not checked
        self.xfail = None  # reason, or None
        self.steps = []

    def client_bytes(self):
        """Everything the client sends, in order."""
        return b"".join(s.data for s in self.steps if s.kind == "send")


def unescape(text, where):
    """Decode the escapes of a C~ line: \\r \\n \\t \\0 \\\\ \\xNN (a subset of
    printf %b, so a shell can decode them the same way)."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        nxt = text[i + 1:i + 2]
        if nxt == "0" and text[i + 2:i + 3].isdigit():
            # printf %b (tests/fuzz/run.sh) would read \0NNN as octal
            raise DialogError("%s: \\0 followed by a digit: write \\x00" % where)
        if nxt in _ESCAPES:
            out += _ESCAPES[nxt]
            i += 2
        elif nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        else:
            raise DialogError("%s: bad escape %r" % (where, text[i:i + 4]))
    return bytes(out)


def _key_value(value, where):
    key, sep, val = value.partition("=")
    key, val = key.strip(), val.strip()
    if not sep or not re.fullmatch(r"[a-z_]+", key) or not val:
        raise DialogError("%s: want 'key = value', got %r" % (where, value))
    return key, val


def parse(path):
    """Read and check one dialogue file; returns a Dialog."""
    d = Dialog(path)
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        where = "%s:%d" % (path, lineno)
        if line.endswith("\r"):
            raise DialogError("%s: CR in the file (write \\r in a C~ line)" % where)
        if line.strip() == "":
            continue
        if line.startswith("#"):
            text = line[1:].strip()
            m = re.fullmatch(r"([a-z-]+):\s*(.*)", text)
            if m and m.group(1) in DIRECTIVES:
                name, value = m.groups()
                if d.description is None:
                    raise DialogError("%s: the first comment line must describe "
                                      "the dialogue, not be a directive" % where)
                if name == "limits":
                    k, v = _key_value(value, where)
                    d.limits[k] = v
                elif name == "server":
                    k, v = _key_value(value, where)
                    d.server[k] = v
                elif name == "expect-queue":
                    if not value.isdigit():
                        raise DialogError("%s: expect-queue wants a number" % where)
                    d.expect_queue = int(value)
                elif name == "xfail":
                    if not value:
                        raise DialogError("%s: xfail wants a reason" % where)
                    d.xfail = value
            elif d.description is None:
                d.description = text
            continue
        if line.startswith("C: ") or line == "C:":
            d.steps.append(Step("send", line[3:].encode("utf-8") + b"\r\n", lineno, line))
        elif line.startswith("C~ "):
            data = unescape(line[3:], where)
            if not data:
                raise DialogError("%s: empty C~ line" % where)
            d.steps.append(Step("send", data, lineno, line))
        elif line.startswith("S: "):
            expect = line[3:].strip()
            if expect != CLOSED and not re.match(r"[2-5]\d\d( |$)|[2-5]\d?$", expect):
                raise DialogError("%s: S: wants a reply code or %s, got %r"
                                  % (where, CLOSED, expect))
            d.steps.append(Step("reply", expect, lineno, line))
        elif line.startswith("S*: "):
            if not d.steps or d.steps[-1].kind not in ("reply", "line") \
                    or d.steps[-1].data == CLOSED:
                raise DialogError("%s: S*: must follow an S: reply" % where)
            d.steps.append(Step("line", line[4:].strip(), lineno, line))
        else:
            raise DialogError("%s: not a comment, C:, C~, S: or S*: line: %r"
                              % (where, line))
    if d.description is None:
        raise DialogError("%s: no description (the first comment line)" % path)
    if not d.steps or d.steps[-1].kind != "reply" or d.steps[-1].data != CLOSED:
        raise DialogError("%s: the last line must be 'S: %s' (end with QUIT or an "
                          "error close, so a stray reply cannot go unnoticed)"
                          % (path, CLOSED))
    return d


def main(argv):
    if len(argv) != 3 or argv[1] != "--client":
        sys.stderr.write("usage: dlg.py --client FILE.dlg\n")
        return 2
    try:
        d = parse(argv[2])
    except (OSError, DialogError) as e:
        sys.stderr.write("dlg.py: %s\n" % e)
        return 1
    sys.stdout.buffer.write(d.client_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
