"""The docs are part of the product: every configuration key the code knows
is documented in docs/configuration.md and shown in etc/hato.conf.example,
every default in conf.c's key table is the one the docs show, and the
example itself is a valid configuration."""
import os
import re
import subprocess

import pytest

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
                "SEC_REMOTE": "[remote]", "SEC_DNS": "[dns]", "SEC_AUTH": "[auth]",
                "SEC_DKIM": "[dkim NAME]", "SEC_MILTER": "[milter NAME]",
                "SEC_METRICS": "[metrics]", "SEC_DNSBL": "[dnsbl]",
                "SEC_GREYLIST": "[greylist]", "SEC_CLIENT_CHECKS": "[client_checks]",
                "SEC_SQL": "[sql]"}
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


def schema():
    """(section head, key) -> default or None, as `hatod -k` reports the
    key table: what the binary itself knows."""
    r = subprocess.run([HATOD, "-k"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(\[[^]]+\]) (\w+)(?: = (.*))?$", line)
        assert m, "hatod -k printed %r" % line
        out[(m.group(1), m.group(2))] = m.group(3)
    return out


MAN_CONF = os.path.join(REPO, "man/hato.conf.5")


def man_entries():
    """(section head, key) -> the default hato.conf(5) gives (None when it
    gives none or says it in words), for every ".It Cm KEY" under a
    ".Ss [section]"."""
    with open(MAN_CONF) as f:
        text = f.read()
    out, section = {}, None
    items = re.split(r"^(?=\.(?:It|Ss|Sh|El)\b)", text, flags=re.M)
    for item in items:
        if item.startswith((".Ss ", ".Sh ")):
            head = item.split("\n", 1)[0][4:].strip()
            section = head if item.startswith(".Ss ") and head.startswith("[") else None
            continue
        m = re.match(r"\.It Cm (\w+)", item)
        if m and section:
            dflt = re.search(r"^Default:\n\.Ql (.+?) \.$", item, re.M)
            out[(section, m.group(1))] = dflt.group(1) if dflt else None
    return out


def test_every_key_in_the_man_page_and_the_docs_and_no_other():
    """Every key hatod has (hatod -k) is documented in its section of
    hato.conf(5) and of docs/configuration.md, and neither documents a key
    hatod does not have."""
    keys, man, doc = schema(), man_entries(), doc_defaults()
    assert len(keys) > 60
    problems = []
    for sec, key in sorted(keys):
        if (sec, key) not in man:
            problems.append("%s %s: hatod has it, man/hato.conf.5 does not document it "
                            "(want \".It Cm %s\" under \".Ss %s\")" % (sec, key, key, sec))
        if (sec, key) not in doc:
            problems.append("%s %s: hatod has it, docs/configuration.md does not document it "
                            "(want a \"| `%s` |\" row under \"## `%s`\")" % (sec, key, key, sec))
    for sec, key in sorted(set(man) - set(keys)):
        problems.append("%s %s: man/hato.conf.5 documents it, hatod has no such key"
                        % (sec, key))
    for sec, key in sorted(set(doc) - set(keys)):
        problems.append("%s %s: docs/configuration.md documents it, hatod has no such key"
                        % (sec, key))
    assert problems == [], "\n".join(problems)


def test_man_page_defaults_are_hatods():
    """Each default hato.conf(5) quotes is the one hatod -k reports."""
    keys, man = schema(), man_entries()
    wrong = []
    for where, value in sorted(keys.items()):
        if value is None or where in DESCRIBED_DEFAULTS:
            continue
        if man.get(where) != value:
            wrong.append("%s %s: hatod's default is %r, man/hato.conf.5 says %r"
                         % (where[0], where[1], value, man.get(where)))
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("page", ["hatod.8", "hato.1", "hato.conf.5"])
def test_man_pages_are_clean_mdoc(page):
    """mandoc, the reference mdoc parser, finds nothing wrong in the built
    page (warnings and worse; style notes aside), and it renders."""
    built = os.path.join(os.path.dirname(HATOD), "man", page)
    assert os.path.isfile(built), "make all builds %s" % built
    r = subprocess.run(["mandoc", "-Tlint", "-W", "warning", built],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    r = subprocess.run(["mandoc", "-Tutf8", built], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "hato" in r.stdout
    with open(built) as f:
        assert "@VERSION@" not in f.read()
