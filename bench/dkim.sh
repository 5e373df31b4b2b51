#!/usr/bin/env bash
# bench/dkim.sh - the CPU cost per message of verifying a DKIM signature:
# hato's verifier (bench/dkim_verify.c against build/libhato.a) side by side
# with dkimpy (Debian's python3-dkim, the reference implementation the tests
# use), for Ed25519 and RSA-2048 signatures on a BENCH_SIZE-octet message.
# A benchmark, not a test.  The signing cost is measured on the receive
# path by bench/run.sh (BENCH_TARGETS='hatod hatod-ed25519 hatod-rsa').
#
#   bench/dkim.sh                          (after make)
#   BENCH_VERIFY=5000 BENCH_SIZE=20000 bench/dkim.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
N=${BENCH_VERIFY:-2000}
SIZE=${BENCH_SIZE:-2048}
PKGS="libevent_core libevent_pthreads libevent_openssl openssl libcares inih libcrypt libidn2"

[[ -f $BUILD/libhato.a ]] || { echo "bench: build first (make)" >&2; exit 1; }
incs=()
for d in src/*/; do incs+=("-I${d%/}"); done
# shellcheck disable=SC2046,SC2086
cc -std=c17 -D_GNU_SOURCE -O2 "${incs[@]}" $(pkg-config --cflags $PKGS) \
	-o "$BUILD/bench_dkim_verify" bench/dkim_verify.c "$BUILD/libhato.a" \
	$(pkg-config --libs $PKGS) -pthread
echo "bench: hato: $N verifications of a $SIZE-octet message, CPU time each"
"$BUILD/bench_dkim_verify" "$N" "$SIZE" | awk '{ printf "hato   %-15s %8.1f us/message\n", $1, $2 }'

/usr/bin/python3 - "$((N / 10))" "$SIZE" <<'PY'
import base64, sys, time
import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

n, size = int(sys.argv[1]), int(sys.argv[2])
msg = (b"From: Ann <ann@example.org>\r\nTo: bob@example.net\r\nSubject: a benchmark\r\n"
       b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <bench@example.org>\r\n\r\n")
while len(msg) < size:
    msg += b"The quick brown fox jumps over the lazy dog, again and again.\r\n"
ek = ed25519.Ed25519PrivateKey.generate()
rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
raw = serialization.Encoding.Raw
cases = {
    "ed25519-sha256": (base64.b64encode(ek.private_bytes(raw, serialization.PrivateFormat.Raw,
                                                         serialization.NoEncryption())),
                       b"v=DKIM1; k=ed25519; p=" + base64.b64encode(
                           ek.public_key().public_bytes(raw, serialization.PublicFormat.Raw))),
    "rsa-sha256": (rk.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()),
                   b"v=DKIM1; k=rsa; p=" + base64.b64encode(rk.public_key().public_bytes(
                       serialization.Encoding.DER,
                       serialization.PublicFormat.SubjectPublicKeyInfo))),
}
print("bench: dkimpy: %d verifications, CPU time each" % n)
for alg, (priv, rec) in cases.items():
    signed = dkim.sign(msg, b"bench", b"example.org", priv, canonicalize=(b"relaxed", b"relaxed"),
                       signature_algorithm=alg.encode()) + msg
    t0 = time.process_time()
    for _ in range(n):
        assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: rec)
    print("dkimpy %-15s %8.1f us/message" % (alg, (time.process_time() - t0) / n * 1e6))
PY
