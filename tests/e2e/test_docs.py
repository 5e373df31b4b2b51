"""The docs are part of the product: every configuration key the code knows
is documented in docs/configuration.md and shown in etc/hato.conf.example,
and the example itself is a valid configuration."""
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
