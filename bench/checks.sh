#!/usr/bin/env bash
# bench/checks.sh - the CPU cost per message of the checks of received mail
# (SPF, DMARC, the Authentication-Results: header), without the network,
# next to pyspf (Debian's python3-spf, the reference SPF evaluator that the
# RFC 7208 test suite comes with) evaluating the same record over the same
# answers.  A benchmark, not a test.
#
#   bench/checks.sh              (BENCH_CHECKS=N messages, default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_CHECKS:-100000}
BUILD=${BUILD:-build}
make -s BUILD="$BUILD" "$BUILD/libhato.a"
mkdir -p "$BUILD/bench"
# shellcheck disable=SC2046 # the Makefile's include flags, one word each
cc -std=c17 -D_GNU_SOURCE -O2 -g $(sed -n 's/^SRCDIRS *:= *//p' Makefile | sed 's/src/-Isrc/g') \
	-o "$BUILD/bench/checks_cost" bench/checks_cost.c "$BUILD/libhato.a" \
	$(pkg-config --libs libevent_core libevent_pthreads libevent_openssl openssl libcares inih \
		libcrypt libidn2) -pthread
"$BUILD/bench/checks_cost" "$N"

if /usr/bin/python3 -c 'import spf' 2>/dev/null; then
	/usr/bin/python3 - "$((N / 10))" <<'PY'
import sys, time, socket
import spf

n = int(sys.argv[1])
zone = {
    ("example.com", "TXT"): [(b"v=spf1 include:_spf.example.net ip4:198.51.100.0/24 mx a -all",)],
    ("_spf.example.net", "TXT"): [(b"v=spf1 ip4:203.0.113.0/24 ip6:2001:db8::/32 ~all",)],
    ("example.com", "MX"): [(10, "mx1.example.com")],
    ("mx1.example.com", "A"): ["198.51.100.10"],
    ("example.com", "A"): ["198.51.100.11"],
}

def lookup(name, qtype, strict=True, timeout=None, level=0):
    for v in zone.get((name.lower(), qtype), []):
        yield ((name, qtype), v)

spf.DNSLookup = lookup
t0 = time.process_time()
for _ in range(n):
    res = spf.query(i="198.51.100.10", s="alice@example.com", h="mail.example.com").check()
t1 = time.process_time()
print("pyspf: %d messages, %.2f us CPU per message (SPF only), result %s"
      % (n, (t1 - t0) * 1e6 / n, res[0]))
PY
else
	echo "pyspf: not installed (apt-get install python3-spf): no reference run"
fi
