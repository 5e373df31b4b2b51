#!/usr/bin/env bash
# bench/cpu.sh - the CPU cost of receiving a message, in instructions, for
# one or more hatod binaries side by side.
#
# Each hatod runs under valgrind's callgrind, which counts the instructions
# it executes: unlike msg/s, the count does not depend on what else the
# machine is doing, so two builds compare fairly on a busy machine (the
# time spent waiting for fsync is not in it; bench/run.sh measures that).
# Postfix's smtp-source sends BENCH_MESSAGES messages (default 1000) of
# BENCH_SIZE octets (2048) over BENCH_SESSIONS parallel sessions (4) to a
# hatod that only receives (hold = yes); then hatod is stopped and its
# instruction total, divided by the messages, is printed.  Start-up and
# shutdown are in the total too: compare runs of the same size.
#
#   bench/cpu.sh build/hatod                      one build
#   bench/cpu.sh old/build/hatod build/hatod      a change, before and after
#
# Starts only loopback listeners and stops only the processes it started.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/.."

MESSAGES=${BENCH_MESSAGES:-1000}
SIZE=${BENCH_SIZE:-2048}
SESSIONS=${BENCH_SESSIONS:-4}
TMPBASE=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
KEEP=${BENCH_KEEP:-0}
SMTP_SOURCE=/usr/sbin/smtp-source
PY=/usr/bin/python3
is_root=false
[[ $(id -u) -eq 0 ]] && is_root=true
as_hato=()
$is_root && as_hato=(runuser -u hato --)
PIDS=()

say() { printf 'cpu: %s\n' "$*"; }
die() {
	say "$*" >&2
	exit 1
}

[[ $# -ge 1 ]] || die "usage: bench/cpu.sh HATOD [HATOD...]"
command -v valgrind >/dev/null || die "valgrind is not installed"
[[ -x $SMTP_SOURCE ]] || die "$SMTP_SOURCE not found (Debian package postfix; make bench installs it)"

WORK=$(mktemp -d "$TMPBASE/hato-cpu.XXXXXX")
cleanup() {
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	[[ $KEEP == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT

# The instructions hatod $1 executes to receive MESSAGES messages.
measure() {
	local hatod=$1 n=$2 dir=$WORK/run-$2 port pid i total
	mkdir -p "$dir"
	# as root, hatod runs as user hato from the start (callgrind writes its
	# counts at exit, after a privilege drop could no longer open the file)
	chmod 0755 "$WORK"
	chmod 1777 "$dir"
	port=$(free_port)
	cat >"$dir/hato.conf" <<-EOF
		[server]
		state_dir = $dir/state
		local_domains = localhost
		[delivery]
		hold = yes
		[domain localhost]
		mailboxes = *
		[limits]
		sessions_max = 1000
		[listener smtp]
		address = 127.0.0.1:$port
	EOF
	"${as_hato[@]}" valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
		"$hatod" -f -c "$dir/hato.conf" >"$dir/hatod.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	for ((i = 0; i < 600; i++)); do # callgrind starts slowly: up to 60 s
		grep -q 'event=started' "$dir/hatod.log" 2>/dev/null && break
		alive "$pid" || die "$hatod did not start: $(tail -n 5 "$dir/hatod.log")"
		sleep 0.1
	done
	"$SMTP_SOURCE" -s "$SESSIONS" -l "$SIZE" -m "$MESSAGES" -f bench@localhost \
		-t bench@localhost "127.0.0.1:$port" >"$dir/source.log" 2>&1 ||
		die "smtp-source failed: $(tail -n 5 "$dir/source.log")"
	stop_pid "$pid"
	forget "$pid"
	[[ $(find "$dir/state/queue" -name '*.msg' | wc -l) -eq $MESSAGES ]] ||
		die "$hatod: the queue does not hold the $MESSAGES messages sent"
	total=$(sed -n 's/^summary: *//p' "$dir/callgrind.out")
	[[ -n $total ]] || die "no callgrind summary for $hatod"
	printf '%s %s %s\n' "$hatod" "$total" "$((total / MESSAGES))"
}

say "$MESSAGES messages of $SIZE octets, $SESSIONS sessions, each hatod under callgrind"
printf '%-40s %16s %14s\n' hatod instructions per-message
n=0
for h in "$@"; do
	[[ -x $h ]] || die "$h is not an executable"
	n=$((n + 1))
	read -r name total per < <(measure "$h" "$n")
	printf '%-40s %16s %14s\n' "$name" "$total" "$per"
done
