#!/usr/bin/env bash
# bench/run.sh - side-by-side SMTP receive benchmark: hatod against Postfix's
# smtp-sink (which accepts mail and throws it away: the protocol ceiling),
# and, when asked, against Postfix itself.
#
# Postfix's smtp-source sends BENCH_MESSAGES messages of BENCH_SIZE octets
# (default 20000 x 2048), one new connection per message, with 1 and then 20
# parallel sessions, to each target on a free 127.0.0.1 port.  hatod fsyncs
# every message before its 250, so the ratio hatod/smtp-sink is the price of
# durability plus hato's own overhead.  For hatod it also checks that every
# message sent is in the queue (STATE/queue/*.msg).  The postfix target is a
# private Postfix instance with its stock fsync'ing queue that puts every
# message on hold (reception only, as hatod's hold = yes here); it is counted
# in its hold queue.  A benchmark, not a test.
#
#   bench/run.sh                      (or: make bench)
#   BENCH_MESSAGES=2000 bench/run.sh  a quick run
#   BENCH_TARGETS='smtp-sink postfix hatod' bench/run.sh   Postfix too (root)
#   BENCH_TARGETS='hatod hatod-milter' bench/run.sh   the cost of one no-op milter
#
# Environment:
#   BENCH_MESSAGES  messages per run (20000)
#   BENCH_SIZE      payload octets per message (2048)
#   BENCH_SESSIONS  parallel session counts ("1 20")
#   BENCH_TARGETS   what to measure ("smtp-sink hatod"; also: postfix, and
#                   hatod-ed25519 / hatod-rsa: hatod DKIM-signing every
#                   message with an Ed25519 / RSA-2048 key, the client in
#                   trusted_networks; their ratios to plain hatod are printed;
#                   hatod-milter: hatod with one no-op milter, bench/noop_milter.py)
#   BENCH_HATOD     the hatod binary ($BUILD/hatod, so build/hatod)
#   BENCH_TIMEOUT   seconds allowed per run (900)
#   BENCH_TMPDIR    where the queue and logs go (${TMPDIR:-/tmp}; a real disk, not tmpfs)
#   BENCH_KEEP=1    keep the temp dir (hatod logs, queue) instead of removing it
#   BENCH_COMMIT_SYNC  hatod's commit_sync: fsync (default) or syncfs
#   BENCH_COMMIT_THREADS  hatod's commit_threads (its default when unset)
#
# Installs Postfix's tools (package postfix, left unconfigured and not started)
# when they are missing.  Starts only loopback listeners, and stops only the
# processes it started, by PID.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/.."

MESSAGES=${BENCH_MESSAGES:-20000}
SIZE=${BENCH_SIZE:-2048}
HATOD=${BENCH_HATOD:-${BUILD:-build}/hatod} # make bench BUILD=dir passes BUILD
TARGETS=${BENCH_TARGETS:-smtp-sink hatod}
SESSIONS=${BENCH_SESSIONS:-1 20}
RUN_TIMEOUT=${BENCH_TIMEOUT:-900}
TMPBASE=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
KEEP=${BENCH_KEEP:-0}
COMMIT_SYNC=${BENCH_COMMIT_SYNC:-fsync}
COMMIT_THREADS=${BENCH_COMMIT_THREADS:-}

SMTP_SOURCE=/usr/sbin/smtp-source
SMTP_SINK=/usr/sbin/smtp-sink
POSTFIX=/usr/sbin/postfix
POSTCONF=/usr/sbin/postconf
SENDER=bench@localhost
RECIPIENT=bench@localhost

say() { printf 'bench: %s\n' "$*"; }
die() {
	printf 'bench: ERROR: %s\n' "$*" >&2
	exit 1
}

for v in MESSAGES SIZE RUN_TIMEOUT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$v must be a positive integer, not '${!v}'"
done
for s in $SESSIONS; do
	[[ $s =~ ^[1-9][0-9]*$ ]] || die "BENCH_SESSIONS must be positive integers, not '$s'"
done
for t in $TARGETS; do
	[[ $t == smtp-sink || $t == hatod || $t == postfix || $t == hatod-ed25519 ||
		$t == hatod-rsa || $t == hatod-milter ]] ||
		die "unknown target '$t' (smtp-sink, hatod, postfix, hatod-ed25519, hatod-rsa, hatod-milter)"
done
is_root=false
[[ $(id -u) -eq 0 ]] && is_root=true

# --- processes we started, and cleanup ------------------------------------

PIDS=()
WORK=""
PF_SPOOL="" # the private Postfix instance's spool while one may run

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	stop_postfix "$PF_SPOOL"
	PF_SPOOL=""
	remove_work
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers --------------------------------------------------------------

PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

# Results, one line each: target sessions msgs seconds rate
RESULTS=()
FAILED=0

# Run smtp-source against 127.0.0.1:$2 with $3 sessions; record as target $1.
load() {
	local target=$1 port=$2 sessions=$3 log=$WORK/source-$1-$3.log t0 t1 secs rate
	say "$target: $MESSAGES messages of $SIZE octets, $sessions session(s)"
	t0=$(date +%s.%N)
	if ! timeout "$RUN_TIMEOUT" "$SMTP_SOURCE" -s "$sessions" -l "$SIZE" -m "$MESSAGES" \
		-f "$SENDER" -t "$RECIPIENT" "127.0.0.1:$port" >"$log" 2>&1; then
		say "$target: smtp-source failed or timed out (${RUN_TIMEOUT}s); its output:"
		tail -n 20 "$log" | sed 's/^/  | /'
		FAILED=1
		return 1
	fi
	t1=$(date +%s.%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	rate=$(awk -v n="$MESSAGES" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
	say "$target: $sessions session(s): $MESSAGES msgs in ${secs}s = $rate msg/s"
	RESULTS+=("$target $sessions $MESSAGES $secs $rate")
}

bench_sink() {
	local sessions=$1 port pid log=$WORK/smtp-sink-$1.log
	port=$(free_port)
	local user_opt=()
	$is_root && user_opt=(-u nobody)
	# backlog 1000; -m: room for every session at once
	"$SMTP_SINK" "${user_opt[@]}" -m 1000 "127.0.0.1:$port" 1000 >"$log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait_port "$pid" "$port" || { tail -n 20 "$log" >&2; die "smtp-sink did not start on 127.0.0.1:$port"; }
	say "smtp-sink pid $pid on 127.0.0.1:$port"
	load smtp-sink "$port" "$sessions" || true
	stop_ours "$pid"
}

# hatod; with $2 (ed25519 or rsa) it DKIM-signs every message (From: the
# sender's domain, localhost), smtp-source's address being trusted; with
# $2 = milter one no-op milter (bench/noop_milter.py) is in front.
bench_hatod() {
	local sessions=$1 alg=${2:-} target=hatod port pid dir conf log queued dkim="" mpid=""
	local milter_conf=""
	[[ -z $alg ]] || target=hatod-$alg
	dir=$WORK/$target-$sessions
	port=$(free_port)
	mkdir -p "$dir"
	if [[ $alg == milter ]]; then
		local mport
		alg=""
		mport=$(free_port)
		"$PY" bench/noop_milter.py "$mport" >"$dir/milter.log" 2>&1 &
		mpid=$!
		PIDS+=("$mpid")
		wait_port "$mpid" "$mport" || die "the no-op milter did not start on 127.0.0.1:$mport"
		say "no-op milter pid $mpid on 127.0.0.1:$mport"
		milter_conf=$(printf '[milter noop]\naddress = 127.0.0.1:%s' "$mport")
	fi
	chmod 0755 "$WORK" "$dir" # user hato must reach the state dir when we are root
	conf=$dir/hato.conf
	log=$dir/hatod.log
	if [[ -n $alg ]]; then
		"${HATOD%hatod}hato" dkim keygen localhost bench --algorithm "$alg" \
			--key "$dir/dkim.key" >"$dir/keygen.out" ||
			die "hato dkim keygen failed"
		chmod 0644 "$dir/dkim.key" # a throwaway key: hatod reads it as root or hato
		dkim="[dkim bench]
domain = localhost
selector = bench
key = $dir/dkim.key
algorithm = $alg-sha256"
	fi
	cat >"$conf" <<-EOF
		[server]
		state_dir = $dir/state
		local_domains = localhost
		commit_sync = $COMMIT_SYNC
		${COMMIT_THREADS:+commit_threads = $COMMIT_THREADS}
		[delivery]
		# reception only: the durable queue, not Maildir delivery (bench/delivery.sh)
		hold = yes
		[domain localhost]
		mailboxes = *
		[limits]
		sessions_max = 1000
		# every session comes from 127.0.0.1: no per-client limit
		client_sessions_max = 0
		[listener smtp]
		address = 127.0.0.1:$port
		# no postscreen-style greeting delay: Postfix runs without postscreen
		greeting_delay = 0
		$milter_conf
	EOF
	[[ -z $dkim ]] || printf '%s\n[server]\ntrusted_networks = 127.0.0.1/32\n' "$dkim" >>"$conf"
	"$HATOD" -f -c "$conf" >"$log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	if ! wait_port "$pid" "$port"; then
		tail -n 20 "$log" | sed 's/^/  | /' >&2
		die "hatod did not start on 127.0.0.1:$port (log above)"
	fi
	say "$target pid $pid on 127.0.0.1:$port, state $dir/state"
	if load "$target" "$port" "$sessions"; then
		queued=$(find "$dir/state/queue" -maxdepth 1 -name '*.msg' 2>/dev/null | wc -l)
		if [[ $queued -eq $MESSAGES ]]; then
			say "hatod: queue holds $queued messages = messages sent"
		else
			say "hatod: MISMATCH: queue holds $queued messages, $MESSAGES messages were sent"
			FAILED=1
		fi
		if [[ -n $alg ]] && [[ $(grep -c 'event=dkim_signed' "$log") -ne $MESSAGES ]]; then
			say "$target: MISMATCH: not every message was signed"
			FAILED=1
		fi
	fi
	if ! kill -0 "$pid" 2>/dev/null; then
		say "hatod: pid $pid died during the run"
		FAILED=1
	fi
	stop_ours "$pid"
	[[ -z $mpid ]] || stop_ours "$mpid"
	local warns
	warns=$(grep -cE 'level=(warning|error|fatal|panic)' "$log" || true)
	if [[ $warns -gt 0 || $FAILED -ne 0 ]]; then
		say "hatod: $warns warning/error lines in its log; the last ones:"
		grep -E 'level=(warning|error|fatal|panic)' "$log" | tail -n 10 | sed 's/^/  | /'
	fi
}

# Postfix with its stock queue (fsync on), every message put on hold by
# check_client_access static:HOLD, so that nothing is delivered: the messages
# stop in its hold queue, durable, as hatod's stop in its queue.
bench_postfix() {
	local sessions=$1 port pid dir=$WORK/postfix-$1 conf log queued
	port=$(free_port)
	conf=$dir/conf
	log=$dir/postfix.log
	postfix_prepare "$dir"
	{
		postfix_main_cf "$dir" "$log"
		cat <<-EOF
			smtpd_client_restrictions = check_client_access static:HOLD
			default_process_limit = 1000
		EOF
	} >"$conf/main.cf"
	postfix_master_cf "$port" >"$conf/master.cf"
	postfix_start "$conf" "$log" "$dir/spool" "$port"
	pid=$PF_PID
	PIDS+=("$pid")
	if load postfix "$port" "$sessions"; then
		queued=$(count_tree "$dir/spool/hold")
		if [[ $queued -eq $MESSAGES ]]; then
			say "postfix: hold queue holds $queued messages = messages sent"
		else
			say "postfix: MISMATCH: hold queue holds $queued messages, $MESSAGES messages were sent"
			FAILED=1
		fi
	fi
	postfix_stop_report "$log" 'warning:|error:|fatal:|panic:' warning/error
}

# --- main -----------------------------------------------------------------

install_postfix "$SMTP_SOURCE" "$SMTP_SINK" "$POSTFIX" "$POSTCONF"
say "smtp-source and smtp-sink ready"
if [[ " $TARGETS " == *" hatod "* ]]; then
	[[ -x $HATOD ]] || die "$HATOD not found: build it first (make), or set BENCH_HATOD"
	if $is_root && ! getent passwd hato >/dev/null; then
		die "no user hato for hatod to drop to: run scripts/setup.sh"
	fi
fi
if [[ " $TARGETS " == *" postfix "* ]] && ! $is_root; then
	die "the postfix target needs root (or leave it out of BENCH_TARGETS)"
fi
[[ -d $TMPBASE ]] || die "BENCH_TMPDIR $TMPBASE is not a directory"
WORK=$(mktemp -d "$TMPBASE/hato-bench.XXXXXX")
fstype=$(df --output=fstype "$WORK" | tail -n 1)
say "$(nproc) cores, $(uname -sr), temp dir $WORK on $fstype"
fs_notes "$WORK"

for s in $SESSIONS; do
	for t in $TARGETS; do
		case $t in
		smtp-sink) bench_sink "$s" ;;
		hatod) bench_hatod "$s" ;;
		hatod-ed25519) bench_hatod "$s" ed25519 ;;
		hatod-rsa) bench_hatod "$s" rsa ;;
		hatod-milter) bench_hatod "$s" milter ;;
		postfix) bench_postfix "$s" ;;
		esac
	done
done

echo
printf '%-14s %8s %8s %10s %10s\n' target sessions msgs seconds msg/s
for r in "${RESULTS[@]}"; do
	# shellcheck disable=SC2086
	printf '%-14s %8s %8s %10s %10s\n' $r
done
echo
for s in $SESSIONS; do
	sink=$(printf '%s\n' "${RESULTS[@]}" | awk -v s="$s" '$1 == "smtp-sink" && $2 == s { print $5 }')
	hato=$(printf '%s\n' "${RESULTS[@]}" | awk -v s="$s" '$1 == "hatod" && $2 == s { print $5 }')
	pfx=$(printf '%s\n' "${RESULTS[@]}" | awk -v s="$s" '$1 == "postfix" && $2 == s { print $5 }')
	if [[ -n $sink && -n $hato ]]; then
		awk -v s="$s" -v a="$hato" -v b="$sink" \
			'BEGIN { printf "ratio hatod/smtp-sink, %s session(s): %.2f\n", s, (b > 0 ? a / b : 0) }'
	fi
	for alg in ed25519 rsa; do
		signed=$(printf '%s\n' "${RESULTS[@]}" | awk -v s="$s" -v t="hatod-$alg" '$1 == t && $2 == s { print $5 }')
		if [[ -n $signed && -n $hato ]]; then
			awk -v s="$s" -v a="$signed" -v b="$hato" -v t="$alg" \
				'BEGIN { printf "ratio hatod-%s/hatod (DKIM signing), %s session(s): %.2f\n", t, s, (b > 0 ? a / b : 0) }'
		fi
	done
	mil=$(printf '%s\n' "${RESULTS[@]}" | awk -v s="$s" '$1 == "hatod-milter" && $2 == s { print $5 }')
	if [[ -n $mil && -n $hato ]]; then
		awk -v s="$s" -v a="$mil" -v b="$hato" \
			'BEGIN { printf "ratio hatod-milter/hatod (one no-op milter), %s session(s): %.2f\n", s, (b > 0 ? a / b : 0) }'
	fi
	if [[ -n $pfx && -n $hato ]]; then
		awk -v s="$s" -v a="$hato" -v b="$pfx" \
			'BEGIN { printf "ratio hatod/postfix, %s session(s): %.2f\n", s, (b > 0 ? a / b : 0) }'
	fi
done
if [[ $FAILED -ne 0 ]]; then
	say "FAILED: see the messages above"
	exit 1
fi
