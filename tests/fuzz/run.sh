#!/usr/bin/env bash
#
# tests/fuzz/run.sh - build the libFuzzer targets and run each one briefly.
#
# Every tests/fuzz/fuzz_NAME.c is compiled with clang and
# -fsanitize=fuzzer,address,undefined together with the src files it tests
# (table below) into build-fuzz/fuzz_NAME.  Each target then runs for
# FUZZ_SECONDS (default 20) on a working corpus in build-fuzz/corpus/NAME,
# seeded from the checked-in tests/fuzz/corpus/NAME/ and, when present, from
# the SMTP dialogues in tests/dialog/*.dlg.  Any crash, leak, sanitizer report
# or failed invariant fails the run; the input is kept in build-fuzz/artifacts/.
#
#   tests/fuzz/run.sh                 build and run every target
#   tests/fuzz/run.sh addr envelope   only these targets
#   FUZZ_SECONDS=300 tests/fuzz/run.sh
#   FUZZ_BUILD_ONLY=1 tests/fuzz/run.sh
#
# Reproduce a crash: build-fuzz/fuzz_NAME build-fuzz/artifacts/NAME-crash-...
set -euo pipefail

cd "$(dirname "$0")/../.."

FUZZ_SECONDS=${FUZZ_SECONDS:-20}
CLANG=${CLANG:-clang}
OUT=${FUZZ_OUT:-build-fuzz}

# Same include flags as the Makefile (its SRCDIRS line).
read -r -a srcdirs <<<"$(sed -n 's/^SRCDIRS *:= *//p' Makefile)"
[ ${#srcdirs[@]} -gt 0 ] || srcdirs=(src/lib src/common src/conf src/queue src/smtp)
INCS=("${srcdirs[@]/#/-I}")
# shellcheck disable=SC2054 # the commas belong to -fsanitize=
CFLAGS=(-std=c17 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes
	"${INCS[@]}")

# SRCS[name]: the src files a target needs; PKGS[name]: pkg-config packages it
# links (a target that includes src/conf/conf.c needs PKGS[name]=inih).
declare -A SRCS=(
	[addr]="src/common/addr.c src/lib/util.c"
	[cmdline]="src/common/cmdline.c src/common/dsn.c src/common/addr.c src/lib/util.c"
	[data_reader]="src/common/data_reader.c"
	[envelope]="src/common/envelope.c src/common/dsn.c src/common/addr.c src/common/outcome.c src/lib/util.c src/lib/strbuf.c"
	[header_fix]="src/intake/header_fix.c src/lib/strbuf.c src/lib/util.c"
	[header_fields]="src/intake/header_fields.c"
	[http_request]="src/metrics/http_request.c"
	[milter_reply]="src/milter/milter_proto.c src/lib/strbuf.c src/lib/util.c"
	[smtp_reply]="src/smtpc/smtp_conn.c src/lib/base64.c src/lib/util.c"
	[smtpc]="src/smtpc/smtpc.c src/smtpc/smtp_conn.c src/lib/base64.c src/lib/strbuf.c src/lib/util.c"
	[dkim_tags]="src/dkim/dkim_tags.c"
	[dkim_verify]="src/dkim/dkim_verify.c src/dkim/dkim_tags.c src/dkim/dkim_canon.c src/dkim/dkim_header.c src/dkim/dkim_key.c src/lib/base64.c src/lib/strbuf.c src/lib/util.c"
	[queue_msg]="src/queue/queue_msg.c src/lib/crc32c.c src/lib/durable.c src/lib/strbuf.c src/lib/util.c"
	[dns_answer]="src/lookup/dns_answer.c src/lib/util.c"
	[spf]="src/spf/spf.c src/spf/spf_macro.c src/lookup/dns_answer.c src/lib/util.c"
	[proxy]="src/smtp/proxy.c"
	[dovecot_proto]="src/lookup/dovecot_proto.c src/lib/base64.c src/lib/util.c"
	[log_json]="src/lib/log_json.c"
	[dmarc]="src/dmarc/dmarc.c src/dmarc/psl.c src/lookup/dns_answer.c src/lib/util.c"
)
declare -A PKGS=([addr]=libidn2 [cmdline]=libidn2 [envelope]=libidn2 [smtp_reply]=openssl [smtpc]=openssl
	[dns_answer]=libcares [spf]=libcares [dkim_verify]=openssl
	[dmarc]="libcares libidn2")

# Longest input per target: envelopes and DATA streams need room.
declare -A MAXLEN=([addr]=512 [cmdline]=2048 [data_reader]=8192 [envelope]=4096
	[header_fix]=8192 [header_fields]=8192 [milter_reply]=8192 [smtp_reply]=8192 [smtpc]=8192 [queue_msg]=4096
	[dns_answer]=4096 [spf]=2048 [proxy]=1024 [dovecot_proto]=32768
	[log_json]=4096 [dkim_tags]=4096 [dkim_verify]=16384 [dmarc]=2048)
MAXLEN[http_request]=4096

die() {
	echo "fuzz: $*" >&2
	exit 1
}

command -v "$CLANG" >/dev/null || die "$CLANG not found (apt-get install clang libclang-rt-14-dev)"

if [ $# -gt 0 ]; then
	TARGETS=("$@")
else
	TARGETS=()
	for f in tests/fuzz/fuzz_*.c; do
		n=${f#tests/fuzz/fuzz_}
		TARGETS+=("${n%.c}")
	done
fi

mkdir -p "$OUT/corpus" "$OUT/artifacts"

# Build one target.
build() {
	local name=$1 pkgflags=()

	[ -n "${SRCS[$name]+x}" ] || die "no source list for target '$name' in $0"
	if [ -n "${PKGS[$name]:-}" ]; then
		# shellcheck disable=SC2207,SC2086 # several packages, several flags
		pkgflags=($(pkg-config --cflags --libs ${PKGS[$name]})) ||
			die "pkg-config ${PKGS[$name]} failed"
	fi
	echo "== build fuzz_$name"
	# shellcheck disable=SC2086
	"$CLANG" "${CFLAGS[@]}" -o "$OUT/fuzz_$name" "tests/fuzz/fuzz_$name.c" ${SRCS[$name]} \
		"${pkgflags[@]}"
}

# The bytes a dialogue line makes the client send.
client_bytes() {
	case $1 in
	"C: "*) printf '%s\r\n' "${1#C: }" ;;
	"C~ "*) printf '%b' "${1#C\~ }" ;;
	esac
}

# Seeds from the SMTP dialogues (tests/dialog/*.dlg): "C: LINE" is a client
# line sent with CRLF, "C~ TEXT" raw client bytes with \r \n \xNN escapes.
# cmdline gets every client line, addr every <path> in them, data_reader what
# the client sent after its first DATA (behind the 5 control bytes).
seed_from_dialogs() {
	local name=$1 dir=$2 i=0 dlg line out

	[ "$name" != envelope ] || return 0
	compgen -G "tests/dialog/*.dlg" >/dev/null || return 0
	for dlg in tests/dialog/*.dlg; do
		out="$dir/dlg-$(basename "$dlg" .dlg)"
		local in_data=""
		[ "$name" != data_reader ] || printf '\000\001\002\003\004' >"$out"
		while IFS= read -r line || [ -n "$line" ]; do
			case $line in
			"C: "* | "C~ "*) ;;
			*) continue ;;
			esac
			case $name in
			data_reader)
				if [ -n "$in_data" ]; then
					client_bytes "$line" >>"$out"
				elif [[ ${line^^} == "C: DATA" ]]; then
					in_data=1
				fi
				;;
			cmdline)
				local cl
				while IFS= read -r cl || [ -n "$cl" ]; do
					printf '%s' "${cl%$'\r'}" >"$out-$i"
					i=$((i + 1))
				done < <(client_bytes "$line")
				;;
			addr)
				if [[ $line =~ (\<[^\>]*\>) ]]; then
					printf '%s' "${BASH_REMATCH[1]}" >"$out-$i"
					i=$((i + 1))
				fi
				;;
			esac
		done <"$dlg"
	done
	return 0
}

# Run one target on its corpus for FUZZ_SECONDS.
run() {
	local name=$1
	local work="$OUT/corpus/$name" seeds="tests/fuzz/corpus/$name"

	mkdir -p "$work"
	seed_from_dialogs "$name" "$work"
	[ -d "$seeds" ] || seeds=""
	echo "== run fuzz_$name for ${FUZZ_SECONDS}s"
	# New inputs go to the first (scratch) directory; the seeds stay untouched.
	"$OUT/fuzz_$name" -max_total_time="$FUZZ_SECONDS" -max_len="${MAXLEN[$name]:-4096}" \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$OUT/artifacts/$name-" "$work" ${seeds:+"$seeds"}
}

failed=()
for t in "${TARGETS[@]}"; do
	[ -f "tests/fuzz/fuzz_$t.c" ] || die "no tests/fuzz/fuzz_$t.c"
	build "$t" || die "build of fuzz_$t failed"
done
if [ -n "${FUZZ_BUILD_ONLY:-}" ]; then
	exit 0
fi
for t in "${TARGETS[@]}"; do
	if ! run "$t"; then
		failed+=("$t")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]} (inputs in $OUT/artifacts/)" >&2
	exit 1
fi
echo "fuzz: all ${#TARGETS[@]} targets ran ${FUZZ_SECONDS}s without a crash"
