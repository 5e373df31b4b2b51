"""The include rules of docs/architecture.md hold in src/.

The page names, for each folder of src/, the folders it may include (a
fenced block marked `layers`).  Every #include "x.h" of a source file that
names a header of another folder must be allowed there, and every folder
must have its line: a new folder, or a new dependency, is a decision that
goes on that page in the same commit.
"""
import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SRC = os.path.join(ROOT, "src")
DOC = os.path.join(ROOT, "docs", "architecture.md")

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def allowed_includes():
    """{folder: set of folders it may include}, from the page."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"```layers\n(.*?)```", text, re.S)
    assert m, "docs/architecture.md has no ```layers block"
    rules = {}
    for line in m.group(1).splitlines():
        if not line.strip():
            continue
        folder, _, deps = line.strip().partition(":")
        assert folder not in rules, "%s is named twice in the layers block" % folder
        rules[folder] = set(deps.split())
    return rules


def headers_by_folder():
    """{header file name: folder of src/ that holds it}."""
    owner = {}
    for folder in sorted(os.listdir(SRC)):
        for name in os.listdir(os.path.join(SRC, folder)):
            if name.endswith(".h"):
                assert name not in owner, "%s is in both %s and %s" % (name, owner[name], folder)
                owner[name] = folder
    return owner


def test_every_folder_has_its_rule():
    rules = allowed_includes()
    folders = {d for d in os.listdir(SRC) if os.path.isdir(os.path.join(SRC, d))}
    missing = sorted(folders - set(rules))
    stale = sorted(set(rules) - folders)
    assert not missing, "src/ folders without a line in docs/architecture.md's layers: %s" % missing
    assert not stale, "docs/architecture.md's layers name folders src/ does not have: %s" % stale
    for folder, deps in rules.items():
        unknown = sorted(deps - folders)
        assert not unknown, "%s may include %s, which are not folders of src/" % (folder, unknown)


def test_includes_follow_the_layers():
    rules = allowed_includes()
    owner = headers_by_folder()
    wrong = []
    for folder in sorted(rules):
        path = os.path.join(SRC, folder)
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            if not name.endswith((".c", ".h")):
                continue
            with open(os.path.join(path, name), encoding="utf-8", errors="replace") as f:
                for header in INCLUDE.findall(f.read()):
                    dep = owner.get(os.path.basename(header))
                    if dep is not None and dep != folder and dep not in rules[folder]:
                        wrong.append("src/%s/%s includes %s (src/%s/)" % (folder, name, header, dep))
    assert not wrong, ("includes that docs/architecture.md does not allow "
                       "(change the code, or the page with a reason):\n  " + "\n  ".join(wrong))


def test_the_rules_have_no_cycle():
    """A folder never reaches itself through what it may include."""
    rules = allowed_includes()

    def reach(folder, seen):
        for dep in rules.get(folder, ()):
            assert dep != start, "docs/architecture.md's layers have a cycle through %s" % start
            if dep not in seen:
                seen.add(dep)
                reach(dep, seen)

    for start in rules:
        reach(start, set())


def test_delivery_never_includes_the_server_nor_the_cli():
    rules = allowed_includes()
    for folder in ("scheduler", "relay", "mda", "smtpc", "queue", "intake", "route"):
        assert "smtp" not in rules[folder], folder
        assert "client" not in rules[folder], folder
