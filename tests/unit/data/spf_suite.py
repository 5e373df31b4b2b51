#!/usr/bin/python3
"""Rewrite the RFC 7208 SPF test suite (the YAML file that pyspf's test
tooling reads: Debian's python3-spf ships it as
/usr/share/doc/python3-spf/rfc7208-tests.yml.gz) as the line data that
tests/unit/test_spf.c reads:

    scenario<TAB>DESCRIPTION
    zone<TAB>NAME<TAB>TYPE<TAB>VALUE...   (MX: PREF HOST; TXT: its strings)
    zone<TAB>NAME<TAB>TIMEOUT
    test<TAB>ID<TAB>HOST<TAB>MAILFROM<TAB>HELO<TAB>RESULT[,RESULT...][<TAB>EXPLANATION]

Every field is escaped: a backslash, a tab, and any octet outside
0x21-0x7e other than a space are written \\xNN (UTF-8 octets included).
The suite's conventions are applied here: a name with SPF (type 99)
records and no TXT records gets them as TXT records too ("NONE" means
none), and the rest is for the reader (see test_spf.c).

    /usr/bin/python3 tests/unit/data/spf_suite.py > tests/unit/data/rfc7208-tests.txt
"""
import gzip
import sys

import yaml

SUITE = "/usr/share/doc/python3-spf/rfc7208-tests.yml.gz"


def esc(v):
    out = []
    for b in str(v).encode("utf-8"):
        if b == 0x20 or (0x21 <= b <= 0x7e and b != 0x5c):
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def line(*fields):
    print("\t".join(esc(f) for f in fields))


def records(name, rrs):
    """The zone lines of one name, after the suite's conventions."""
    out = []
    has_txt = any(isinstance(r, dict) and "TXT" in r for r in rrs)
    for r in rrs:
        if r == "TIMEOUT":
            out.append((name, "TIMEOUT"))
            continue
        for t, v in r.items():
            if v == "NONE" or v == ["NONE"]:
                continue
            if t in ("TXT", "SPF"):
                v = [v] if isinstance(v, str) else v
                if t == "SPF":
                    if has_txt:
                        continue
                    t = "TXT"
                out.append((name, t) + tuple(v))
            elif t == "MX":
                out.append((name, t, str(v[0]), v[1]))
            elif v == "TIMEOUT":
                out.append((name, "TIMEOUT"))
            else:
                out.append((name, t, v))
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else SUITE
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        docs = list(yaml.safe_load_all(f))
    print("# The RFC 7208 SPF test suite (release 2014.04), rewritten by spf_suite.py")
    for d in docs:
        line("scenario", d["description"])
        for name, rrs in d["zonedata"].items():
            for rec in records(name, rrs):
                line("zone", *rec)
        for tid, t in d["tests"].items():
            res = t["result"]
            res = ",".join(res) if isinstance(res, list) else res
            fields = ["test", tid, t["host"], t["mailfrom"], t["helo"], res]
            if "explanation" in t:
                fields.append(t["explanation"])
            line(*fields)


if __name__ == "__main__":
    main()
