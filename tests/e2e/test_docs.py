"""The docs are part of the product: every configuration key the code knows
is documented in docs/configuration.md and shown in etc/hato.conf.example,
every default in conf.c's key table is the one the docs show, and the
example itself is a valid configuration."""
import os
import re
import subprocess

from conftest import HATOD, REPO


def code_keys():
    with open(os.path.join(REPO, "src/conf/conf.c")) as f:
        text = f.read()
    table = text[text.index("key_table[] = {"):]
    table = table[:table.index("};")]
    return set(re.findall(r'\{SEC_\w+, "(\w+)"', table))


def test_every_key_is_documented():
    keys = code_keys()
    assert len(keys) > 20
    with open(os.path.join(REPO, "docs/configuration.md")) as f:
        doc = f.read()
    with open(os.path.join(REPO, "etc/hato.conf.example")) as f:
        example = f.read()
    assert [k for k in sorted(keys) if "`%s`" % k not in doc] == []
    assert [k for k in sorted(keys) if not re.search(r"^#?%s = " % k, example, re.M)] == []


def test_example_config_is_valid():
    r = subprocess.run([HATOD, "-n", "-c", os.path.join(REPO, "etc/hato.conf.example")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr


# conf.c's sections, as docs/configuration.md heads them
DOC_SECTIONS = {"SEC_SERVER": "[server]", "SEC_LIMITS": "[limits]",
                "SEC_LISTENER": "[listener NAME]", "SEC_DELIVERY": "[delivery]",
                "SEC_REMOTE": "[remote]", "SEC_DNS": "[dns]"}
# defaults the docs describe in words rather than quote
DESCRIBED_DEFAULTS = {("[server]", "tls_ciphers")}


def code_defaults():
    """(section heading, key) -> the default of its key_table row, or None."""
    with open(os.path.join(REPO, "src/conf/conf.c")) as f:
        text = f.read()
    table = text[text.index("key_table[] = {"):]
    table = table[:table.index("\n};")]
    table = re.sub(r"/\*.*?\*/", "", table, flags=re.S)
    table = table.replace("STATE_DIR_PREFIX ", '"state_dir/"')
    out = {}
    for row in re.findall(r"\{(SEC_\w+, .*?)\},?[ \t]*$", table, re.M | re.S):
        sec, name = re.match(r'(SEC_\w+), "(\w+)"', row).groups()
        # the last field: NULL, or string literals that C joins into one
        m = re.search(r',\s*((?:"(?:[^"\\]|\\.)*"\s*)+)$', row.strip())
        value = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))) if m else None
        if sec in DOC_SECTIONS:
            out[(DOC_SECTIONS[sec], name)] = value
    return out


def doc_defaults():
    """(section heading, key) -> the default column of its row in the docs."""
    with open(os.path.join(REPO, "docs/configuration.md")) as f:
        doc = f.read()
    out = {}
    for part in re.split(r"^## ", doc, flags=re.M)[1:]:
        head = re.match(r"`(\[[^]]+\])`", part)
        if not head:
            continue
        for keys, dflt in re.findall(r"^\| (`\w+`(?:, `\w+`)*) \| ([^|]*) \|", part, re.M):
            for k in re.findall(r"`(\w+)`", keys):
                out[(head.group(1), k)] = dflt.strip()
    return out


def test_defaults_are_documented():
    """Every default in the key table is the one docs/configuration.md shows."""
    code, doc = code_defaults(), doc_defaults()
    assert len(code) > 60
    wrong = []
    for where, value in sorted(code.items()):
        shown = doc.get(where)
        if value is None or where in DESCRIBED_DEFAULTS:
            continue
        if shown != "`%s`" % value:
            wrong.append((where, value, shown))
    assert wrong == []
