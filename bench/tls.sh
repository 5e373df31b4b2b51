#!/usr/bin/env bash
# bench/tls.sh - what TLS costs hatod: the same SMTP load over plaintext,
# STARTTLS and implicit TLS, against one hatod.
#
# Starts one hatod with three listeners on free 127.0.0.1 ports (tls = none,
# starttls, implicit; hatod's self-signed certificate, generated into
# state/tls on start) and [delivery] hold = yes, so only reception is
# measured.  bench/tls_load.py (Python asyncio + ssl; smtp-source has no TLS)
# then sends BENCH_MESSAGES messages of BENCH_SIZE octets (5000 x 2048) with
# BENCH_SESSIONS parallel sessions (20) to each listener, in two ways:
#
#   per-connection 1    connect, [TLS], EHLO, MAIL, RCPT, DATA, QUIT for
#                       every message: the cost of a full TLS handshake
#                       (the client resumes no sessions);
#   per-connection 50   50 messages per connection, RSET between them: the
#                       cost of encrypting the data itself.
#
# For reference it also runs Postfix's smtp-source against the plaintext
# listener (same sessions, count and size; one message per connection, then
# -d: every message of a session on one connection), when
# /usr/sbin/smtp-source exists: if it is much faster than tls_load.py's
# plaintext run, the Python client, not hatod, sets the pace, and the TLS
# ratios understate what TLS costs hatod.  The table also gives hatod's own
# CPU time per message (from /proc/PID/stat), which does not depend on the
# client's speed nor much on other load on the machine.
#
# Before measuring, BENCH_WARMUP messages (3000) go to the plaintext listener
# and 100 to each TLS listener, untimed: the first few thousand files in a
# fresh spool cost hatod several times more CPU than later ones (on ext4 the
# kernel's inode allocator skips inodes freed in the last ~30 s, and a busy
# machine, or the previous benchmark's clean-up, frees thousands), so
# without it whichever run comes first looks slow.  It also fails early when
# a listener does not work.
#
# After each run the script checks that hatod's queue grew by exactly the
# number of messages accepted, and at the end it reports warning and error
# lines in hatod's log.  A benchmark, not a test: it fails only when
# something is broken (hatod does not start or dies, a message is refused
# or missing, a run times out).
#
#   bench/tls.sh
#   BENCH_MESSAGES=1000 bench/tls.sh     a quick run
#
# Environment:
#   BENCH_MESSAGES        messages per run (5000)
#   BENCH_SIZE            octets per message (2048)
#   BENCH_SESSIONS        parallel sessions (20)
#   BENCH_PER_CONNECTION  messages per connection settings ("1 50")
#   BENCH_MODES           listeners to load ("plain starttls implicit")
#   BENCH_WARMUP          untimed messages to the plaintext listener first (3000; 0: none)
#   BENCH_HATOD           the hatod binary ($BUILD/hatod, so build/hatod)
#   BENCH_TIMEOUT         seconds allowed per run (600)
#   BENCH_TMPDIR          where the queue and logs go (${TMPDIR:-/tmp})
#   BENCH_KEEP=1          keep the temp dir (config, hatod log, queue)
#   BENCH_COMMIT_SYNC     hatod's commit_sync: fsync (default) or syncfs
#
# Listens on 127.0.0.1 only; stops only the hatod it started, by PID, in an
# EXIT trap; installs nothing.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/.."

MESSAGES=${BENCH_MESSAGES:-5000}
SIZE=${BENCH_SIZE:-2048}
SESSIONS=${BENCH_SESSIONS:-20}
PER_CONNECTION=${BENCH_PER_CONNECTION:-1 50}
MODES=${BENCH_MODES:-plain starttls implicit}
HATOD=${BENCH_HATOD:-${BUILD:-build}/hatod}
RUN_TIMEOUT=${BENCH_TIMEOUT:-600}
WARMUP=${BENCH_WARMUP:-3000}
TMPBASE=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
KEEP=${BENCH_KEEP:-0}
COMMIT_SYNC=${BENCH_COMMIT_SYNC:-fsync}

SMTP_SOURCE=/usr/sbin/smtp-source
LOAD=bench/tls_load.py
PY=/usr/bin/python3
SENDER=bench@localhost
RECIPIENT=bench@localhost

say() { printf 'tls-bench: %s\n' "$*"; }
die() {
	printf 'tls-bench: ERROR: %s\n' "$*" >&2
	exit 1
}

for v in MESSAGES SIZE SESSIONS RUN_TIMEOUT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$v must be a positive integer, not '${!v}'"
done
for p in $PER_CONNECTION; do
	[[ $p =~ ^[1-9][0-9]*$ ]] || die "BENCH_PER_CONNECTION must be positive integers, not '$p'"
done
for m in $MODES; do
	[[ $m == plain || $m == starttls || $m == implicit ]] ||
		die "unknown mode '$m' (plain, starttls, implicit)"
done
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number, not '$WARMUP'"
[[ -x $PY ]] || die "$PY not found"
[[ -x $HATOD ]] || die "$HATOD not found: build it first (make), or set BENCH_HATOD"
if [[ $(id -u) -eq 0 ]] && ! getent passwd hato >/dev/null; then
	die "no user hato for hatod to drop to: run scripts/setup.sh"
fi
[[ -d $TMPBASE ]] || die "BENCH_TMPDIR $TMPBASE is not a directory"

# --- the hatod we started, and cleanup ------------------------------------

HATOD_PID=""
WORK=""

cleanup() {
	[[ -z $HATOD_PID ]] || stop_pid "$HATOD_PID"
	HATOD_PID=""
	remove_work
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers --------------------------------------------------------------

# Wait up to 10 s for hatod to log that listener $1 listens on 127.0.0.1:$2.
wait_listening() {
	local name=$1 port=$2 i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$HATOD_PID" 2>/dev/null || return 1
		grep -q "event=listening listener=$name address=127.0.0.1:$port\b" "$LOG" && return 0
		sleep 0.1
	done
	return 1
}

CLK_TCK=$(getconf CLK_TCK)

# CPU time hatod (all its threads) has used so far, in clock ticks.
hatod_ticks() {
	# Fields 14 and 15 (utime, stime); the command name (field 2) may hold
	# spaces, so count from after its closing parenthesis.
	local stat rest
	stat=$(<"/proc/$HATOD_PID/stat")
	rest=${stat##*) }
	# shellcheck disable=SC2086
	set -- $rest
	echo $((${12} + ${13}))
}

queued() {
	find "$STATE/queue" -maxdepth 1 -name '*.msg' 2>/dev/null | wc -l
}

# Results, one line each: client mode per_connection msgs seconds rate cpu% us/msg
RESULTS=()
FAILED=0

# Run one load: $1 client (tls_load or smtp-source), $2 mode, $3 per-connection
# ("all" for smtp-source -d).  The command follows.
measure() {
	local client=$1 mode=$2 pc=$3 log q0 q1 k0 k1 t0 t1 secs ok rate cpu usmsg result
	shift 3
	log=$WORK/$client-$mode-$pc.log
	say "$client $mode, per-connection $pc: $MESSAGES messages of $SIZE octets, $SESSIONS sessions"
	q0=$(queued)
	k0=$(hatod_ticks)
	t0=$(date +%s.%N)
	if ! timeout "$((RUN_TIMEOUT + 30))" "$@" >"$log" 2>&1; then
		say "$client $mode per-connection $pc: FAILED or timed out (${RUN_TIMEOUT}s); its output:"
		tail -n 20 "$log" | sed 's/^/  | /'
		FAILED=1
		return 0
	fi
	t1=$(date +%s.%N)
	k1=$(hatod_ticks)
	q1=$(queued)
	if [[ $client == tls_load ]]; then
		result=$(grep '^RESULT ' "$log" | tail -n 1)
		[[ -n $result ]] || {
			say "tls_load printed no RESULT line"
			FAILED=1
			return 0
		}
		ok=$(sed -n 's/.* messages=\([0-9]*\).*/\1/p' <<<"$result")
		secs=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$result")
		cpu=$(sed -n 's/.* client_cpu_s=\([0-9.]*\).*/\1/p' <<<"$result")
		cpu=$(awk -v c="$cpu" -v s="$secs" 'BEGIN { printf "%.0f%%", (s > 0 ? 100 * c / s : 0) }')
		say "  ${result#RESULT }"
	else
		# smtp-source exits 0 only when every message was accepted.
		ok=$MESSAGES
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
		cpu=-
	fi
	rate=$(awk -v n="$ok" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
	usmsg=$(awk -v k="$((k1 - k0))" -v t="$CLK_TCK" -v n="$ok" \
		'BEGIN { printf "%.0f", (n > 0 ? k * 1e6 / t / n : 0) }')
	say "  $ok msgs in ${secs}s = $rate msg/s; hatod CPU $usmsg us/msg; queue +$((q1 - q0))"
	if [[ $((q1 - q0)) -ne $ok || $ok -ne $MESSAGES ]]; then
		say "  MISMATCH: $MESSAGES sent, $ok accepted, queue grew by $((q1 - q0))"
		FAILED=1
	fi
	RESULTS+=("$client $mode $pc $ok $secs $rate $cpu $usmsg")
}

# --- main -----------------------------------------------------------------

WORK=$(mktemp -d "$TMPBASE/hato-tlsbench.XXXXXX")
chmod 0755 "$WORK" # user hato must reach the state dir when we are root
STATE=$WORK/state
fstype=$(df --output=fstype "$WORK" | tail -n 1)
say "$(nproc) cores, $(uname -sr), $($PY -c 'import ssl; print(ssl.OPENSSL_VERSION)'), temp dir $WORK on $fstype"
say "load at start: $(uptime)"

declare -A PORT
for m in plain starttls implicit; do
	PORT[$m]=$(free_port)
done
conf=$WORK/hato.conf
LOG=$WORK/hatod.log
cat >"$conf" <<EOF
[server]
state_dir = $STATE
hostname = localhost
local_domains = localhost
commit_sync = $COMMIT_SYNC
[limits]
sessions_max = 1000
# every session comes from 127.0.0.1: no per-client limit
client_sessions_max = 0
[listener plain]
address = 127.0.0.1:${PORT[plain]}
tls = none
greeting_delay = 0
[listener starttls]
address = 127.0.0.1:${PORT[starttls]}
tls = starttls
greeting_delay = 0
[listener implicit]
address = 127.0.0.1:${PORT[implicit]}
tls = implicit
[delivery]
hold = yes
[domain localhost]
mailboxes = *
EOF
"$HATOD" -f -c "$conf" >"$LOG" 2>&1 &
HATOD_PID=$!
# Wait for hatod to log all three listeners (rather than probing the ports:
# an empty connection to the implicit listener is logged as a failed TLS
# handshake).
for m in plain starttls implicit; do
	if ! wait_listening "$m" "${PORT[$m]}"; then
		tail -n 20 "$LOG" | sed 's/^/  | /' >&2
		die "hatod did not start listening on 127.0.0.1:${PORT[$m]} (log above)"
	fi
done
say "hatod pid $HATOD_PID: plain ${PORT[plain]}, starttls ${PORT[starttls]}, implicit ${PORT[implicit]}; state $STATE"

# Untimed: $1 messages, one per connection, to listener $2.
warmup() {
	local n=$1 m=$2 log=$WORK/warmup-$2.log
	[[ $n -gt 0 ]] || return 0
	if ! timeout "$((RUN_TIMEOUT + 30))" "$PY" "$LOAD" --port "${PORT[$m]}" --mode "$m" \
		--sessions "$SESSIONS" --messages "$n" --size "$SIZE" --timeout "$RUN_TIMEOUT" \
		--sender "$SENDER" --recipient "$RECIPIENT" >"$log" 2>&1; then
		tail -n 20 "$log" | sed 's/^/  | /' >&2
		die "warm-up on the $m listener failed (output above)"
	fi
}
if [[ $WARMUP -gt 0 ]]; then
	say "warm-up (untimed): $WARMUP messages plaintext, 100 each STARTTLS and implicit TLS"
	warmup "$WARMUP" plain
	warmup 100 starttls
	warmup 100 implicit
fi

have_source=false
if [[ -x $SMTP_SOURCE ]]; then
	have_source=true
else
	say "no $SMTP_SOURCE: skipping the smtp-source reference (package postfix)"
fi

for pc in $PER_CONNECTION; do
	if $have_source; then
		if [[ $pc -eq 1 ]]; then
			measure smtp-source plain 1 "$SMTP_SOURCE" -s "$SESSIONS" -l "$SIZE" -m "$MESSAGES" \
				-f "$SENDER" -t "$RECIPIENT" "127.0.0.1:${PORT[plain]}"
		else
			# -d: every message of a session on one connection (no per-connection
			# count in smtp-source); the nearest it has to connection reuse.
			measure smtp-source plain all "$SMTP_SOURCE" -d -s "$SESSIONS" -l "$SIZE" -m "$MESSAGES" \
				-f "$SENDER" -t "$RECIPIENT" "127.0.0.1:${PORT[plain]}"
		fi
	fi
	for m in $MODES; do
		measure tls_load "$m" "$pc" "$PY" "$LOAD" --port "${PORT[$m]}" --mode "$m" \
			--sessions "$SESSIONS" --messages "$MESSAGES" --per-connection "$pc" \
			--size "$SIZE" --timeout "$RUN_TIMEOUT" --sender "$SENDER" --recipient "$RECIPIENT"
	done
	if ! kill -0 "$HATOD_PID" 2>/dev/null; then
		say "hatod pid $HATOD_PID died during the runs"
		FAILED=1
		break
	fi
done
say "load at end: $(uptime)"

echo
printf '%-11s %-9s %8s %9s %8s %10s %10s %12s\n' \
	client mode per-conn msg/s seconds "vs plain" client-cpu "hatod us/msg"
for r in "${RESULTS[@]}"; do
	read -r client mode pc ok secs rate cpu usmsg <<<"$r"
	# The ratio is against tls_load.py's plaintext run with the same
	# per-connection setting (smtp-source -d counts as 50, or whatever the
	# second setting is).
	ref_pc=$pc
	[[ $pc == all ]] && ref_pc=$(awk '{ print $NF }' <<<"$PER_CONNECTION")
	base=$(printf '%s\n' "${RESULTS[@]}" |
		awk -v p="$ref_pc" '$1 == "tls_load" && $2 == "plain" && $3 == p { print $6 }')
	ratio=$(awk -v a="$rate" -v b="${base:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
	printf '%-11s %-9s %8s %9s %8s %10s %10s %12s\n' \
		"$client" "$mode" "$pc" "$rate" "$secs" "$ratio" "$cpu" "$usmsg"
done
echo

tls=$(grep -m1 -o 'event=tls_established.*' "$LOG" | grep -oE '(version|tls|protocol|cipher)=[^ ]+' | tr '\n' ' ' || true)
[[ -n $tls ]] && say "TLS as hatod logged it: $tls"
warns=$(grep -cE 'level=(warning|error|fatal|panic)' "$LOG" || true)
say "hatod log: $warns warning/error lines"
if [[ $warns -gt 0 ]]; then
	grep -E 'level=(warning|error|fatal|panic)' "$LOG" | grep -oE 'level=[a-z]+|event=[^ ]+' |
		paste -d' ' - - | sort | uniq -c | sort -rn | head -n 10 | sed 's/^/  | /'
	grep -E 'level=(warning|error|fatal|panic)' "$LOG" | tail -n 5 | sed 's/^/  | /'
fi
if [[ $FAILED -ne 0 ]]; then
	say "FAILED: see the messages above"
	exit 1
fi
