#!/usr/bin/env bash
# bench/relay.sh - end-to-end relay throughput, side by side: hatod against a
# private Postfix instance, both taking mail in over SMTP and passing it on
# over SMTP to Postfix's smtp-sink.
#
#   smtp-source --(20 sessions)--> MTA on 127.0.0.1 --(SMTP)--> smtp-sink
#
# Postfix's smtp-source sends BENCH_MESSAGES messages of BENCH_SIZE octets
# (default 10000 x 2048), one connection per message, with BENCH_SESSIONS
# parallel sessions (20), from sender@example.org to bench@example.net: a
# domain that is not local, so the MTA relays it (the client, 127.0.0.1, is
# trusted) to its relay host, an smtp-sink on another 127.0.0.1 port.  Each
# target gets a fresh sink.  The clock starts just before smtp-source's first
# connection and stops when the sink's message counter (smtp-sink -c) reaches
# BENCH_MESSAGES (polled every 50 ms, so the figure is good to about 0.05 s).
# The script then waits for the MTA's queue to empty, and checks that the
# sink received exactly as many messages as were sent (no duplicates).
#
#   hatod:   trusted_networks = 127.0.0.1/32, [delivery] hold = no,
#            concurrency and concurrency_per_destination = BENCH_CONCURRENCY,
#            [remote] relayhost = [127.0.0.1]:SINKPORT, relayhost_tls and
#            tls = none; defaults otherwise (fsync, reuse_time);
#            the queue is state/queue/ and state/incoming/.
#   postfix: a private instance (its own config_directory, queue_directory,
#            data_directory and log file in the temp dir; never the system's
#            /etc/postfix or /var/spool/postfix): mydestination empty,
#            mynetworks 127.0.0.0/8, relayhost [127.0.0.1]:SINKPORT, no TLS,
#            default_destination_concurrency_limit = BENCH_CONCURRENCY, no
#            chroot; Postfix's defaults otherwise (fsync, connection cache,
#            slow start, in_flow_delay).
#   sink:    (only when asked for) smtp-source straight into the sink: the
#            ceiling of this client and sink on this machine.
#
#   bench/relay.sh                                (or: make bench-relay)
#   BENCH_MESSAGES=2000 bench/relay.sh            a quick run
#   BENCH_TARGETS="sink postfix" bench/relay.sh
#
# Environment:
#   BENCH_MESSAGES  messages per target (10000)
#   BENCH_SIZE      payload octets per message (2048)
#   BENCH_SESSIONS  parallel smtp-source sessions (20)
#   BENCH_CONCURRENCY  parallel deliveries to the sink, for both MTAs (20)
#   BENCH_TARGETS   what to measure, in order ("hatod postfix"; also "sink")
#   BENCH_HATOD     the hatod binary ($BUILD/hatod, so build/hatod)
#   BENCH_TIMEOUT   seconds allowed per target, sending and relaying (900)
#   BENCH_TMPDIR    where the spools go (${TMPDIR:-/tmp}; a real disk, not tmpfs)
#   BENCH_KEEP=1    keep the temp dir (configs, logs) instead of removing it
#   BENCH_COMMIT_SYNC  hatod's commit_sync: fsync (default) or syncfs
#
# Needs root for the Postfix target (Postfix starts as root and drops to its
# mail_owner).  Installs the postfix package unconfigured, as bench/run.sh
# does, when its tools are missing.  Listens on and connects to 127.0.0.1
# only.  Stops only the processes it started, by PID, in an EXIT trap; a
# watchdog process (setsid, so a signal to the whole process group does not
# take it too) stops them as well if this script dies without running its
# trap (SIGKILL), and exits with it.  A benchmark, not a test: it fails only
# when something is broken (a target does not start, smtp-source gets an
# error, the sink does not get every message in time, or the counts differ).
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/.."

MESSAGES=${BENCH_MESSAGES:-10000}
SIZE=${BENCH_SIZE:-2048}
SESSIONS=${BENCH_SESSIONS:-20}
CONCURRENCY=${BENCH_CONCURRENCY:-20}
TARGETS=${BENCH_TARGETS:-hatod postfix}
HATOD=${BENCH_HATOD:-${BUILD:-build}/hatod}
RUN_TIMEOUT=${BENCH_TIMEOUT:-900}
TMPBASE=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
KEEP=${BENCH_KEEP:-0}
COMMIT_SYNC=${BENCH_COMMIT_SYNC:-fsync}

SMTP_SOURCE=/usr/sbin/smtp-source
SMTP_SINK=/usr/sbin/smtp-sink
POSTFIX=/usr/sbin/postfix
POSTCONF=/usr/sbin/postconf
SENDER=sender@example.org
RECIPIENT=bench@example.net
POLL=0.05   # seconds between looks at the sink's counter
DRAIN=60    # seconds allowed for the queue to empty once the sink has all
WORK_PREFIX="hato-relay"

say() { printf 'bench: %s\n' "$*"; }
die() {
	printf 'bench: ERROR: %s\n' "$*" >&2
	exit 1
}

for v in MESSAGES SIZE SESSIONS CONCURRENCY RUN_TIMEOUT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$v must be a positive integer, not '${!v}'"
done
for t in $TARGETS; do
	[[ $t == hatod || $t == postfix || $t == sink ]] || die "unknown target '$t' (hatod, postfix, sink)"
done
is_root=false
[[ $(id -u) -eq 0 ]] && is_root=true

# --- processes we started, and cleanup ------------------------------------

PIDS=()
WORK=""
WATCHDOG=""

# The start time of pid $1 (field 22 of /proc/PID/stat): with the pid, it
# names one process even after the pid is reused.
start_time() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) } # the command name may hold spaces and parentheses
	# shellcheck disable=SC2086
	set -- $s
	echo "${20}"
}

# Record a process we started, for the EXIT trap and for the watchdog.
track() {
	local pid=$1 st
	PIDS+=("$pid")
	st=$(start_time "$pid") || return 0
	echo "$pid $st" >>"$WORK/pids"
}

PF_SPOOL=""

cleanup() {
	local i
	# Stop everything even if a step fails or stdout is a closed pipe.
	set +e
	trap '' PIPE
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do # the client before the servers
		stop_pid "${PIDS[i]}"
	done
	PIDS=()
	stop_postfix "$PF_SPOOL"
	PF_SPOOL=""
	if [[ -n $WATCHDOG ]]; then
		kill -TERM "$WATCHDOG" 2>/dev/null || true
		wait "$WATCHDOG" 2>/dev/null || true
	fi
	remove_work
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# The watchdog: a separate session that waits, polling once a second, for
# this script to be gone.  If the script went without its EXIT trap (KILL),
# it stops what the script recorded in WORK/pids (those with the same start
# time only) and the Postfix instance in WORK/postfix/spool, then removes WORK
# (unless BENCH_KEEP=1).  After a normal exit WORK is gone and it does
# nothing.  The cleanup above ends it by its pid.
start_watchdog() {
	local me st
	me=$$
	st=$(start_time "$me")
	# shellcheck disable=SC2016
	setsid bash -c '
		me=$1 st=$2 work=$3 keep=$4
		start_time() {
			local s
			s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
			s=${s##*) }
			set -- $s
			echo "${20}"
		}
		while [[ $(start_time "$me") == "$st" ]]; do sleep 1; done
		[[ -d $work ]] || exit 0
		if [[ -f $work/pids ]]; then
			while read -r pid pst; do
				[[ $(start_time "$pid") == "$pst" ]] && kill -TERM "$pid" 2>/dev/null
			done <"$work/pids"
		fi
		spool=$work/postfix/spool
		pid=$(tr -d " \n" <"$spool/pid/master.pid" 2>/dev/null)
		if [[ $pid =~ ^[0-9]+$ && $(readlink "/proc/$pid/exe") == */postfix/*master &&
			$(readlink "/proc/$pid/cwd") == "$(realpath "$spool")" ]]; then
			kill -TERM "$pid"
		fi
		# master(8) stops its daemons; TERM any that are still in the spool.
		sleep 3
		[[ -d $spool ]] && find /proc -mindepth 2 -maxdepth 2 -name cwd \
			-lname "$(realpath "$spool")" 2>/dev/null | cut -d/ -f3 | xargs -r kill -TERM 2>/dev/null
		[[ $keep == 1 ]] || rm -rf "$work"
	' relay-watchdog "$me" "$st" "$WORK" "$KEEP" </dev/null >/dev/null 2>&1 &
	WATCHDOG=$!
}

# --- helpers --------------------------------------------------------------

PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

# The time in seconds, with microseconds, without a fork.
now() { NOW=${EPOCHREALTIME/,/.}; }

# A FIFO nobody writes to: reading it with a timeout is a sleep without a
# fork (opened read-write, so the open does not wait for a writer).
TICK_FD=""
open_tick() {
	mkfifo "$WORK/tick"
	exec {TICK_FD}<>"$WORK/tick"
}

# --- the sink ---------------------------------------------------------------

SINK_PID=""
SINK_PORT=""
SINK_COUNTS=""
SINK_FD=""
SINK_GOT=0
SINK_CARRY=""

# A fresh smtp-sink on a free port.  -c writes "sess=N quit=N mesg=N\r" to
# stdout each time a session ends, a QUIT is executed or a "." is received;
# mesg is the number of messages received.  -m 1000 and backlog 1000: room
# for any number of the relaying MTA's connections at once.
start_sink() {
	local name=$1 user_opt=()
	SINK_PORT=$(free_port)
	SINK_COUNTS=$WORK/sink-$name.counts
	$is_root && user_opt=(-u nobody)
	"$SMTP_SINK" "${user_opt[@]}" -c -m 1000 "127.0.0.1:$SINK_PORT" 1000 \
		>"$SINK_COUNTS" 2>"$WORK/sink-$name.err" &
	SINK_PID=$!
	track "$SINK_PID"
	if ! wait_port "$SINK_PID" "$SINK_PORT"; then
		sed 's/^/  | /' "$WORK/sink-$name.err" >&2
		die "smtp-sink did not start on 127.0.0.1:$SINK_PORT"
	fi
	say "smtp-sink pid $SINK_PID on 127.0.0.1:$SINK_PORT"
	exec {SINK_FD}<"$SINK_COUNTS"
	SINK_GOT=0
	SINK_CARRY=""
}

# SINK_GOT = the messages the sink has received so far: the mesg= of the
# last complete record in its output.  Reads on from where the last call
# stopped, with builtins only; a record still being written is kept in
# SINK_CARRY for the next call.
sink_poll() {
	local rec
	while IFS= read -r -d $'\r' -u "$SINK_FD" rec; do
		rec=$SINK_CARRY$rec
		SINK_CARRY=""
		[[ $rec =~ mesg=([0-9]+) ]] && SINK_GOT=${BASH_REMATCH[1]}
	done
	SINK_CARRY+=$rec
}

stop_sink() {
	[[ -n $SINK_PID ]] || return 0
	stop_ours "$SINK_PID"
	SINK_PID=""
	exec {SINK_FD}<&-
	SINK_FD=""
}

# --- one run ----------------------------------------------------------------

RESULTS=()
FAILED=0

# run TARGET PORT PID QUEUE_DIR... : smtp-source into 127.0.0.1:PORT (the
# MTA, pid PID) until the sink has MESSAGES; then wait for the queue dirs to
# empty and check the sink's count; record the result.
run() {
	local target=$1 port=$2 pid=$3
	shift 3
	local queue_dirs=("$@") log=$WORK/source-$target.log t0 t1="" t_src="" deadline
	local spid src_rc=0 queued=0 secs rate sent_secs drained i NOW
	say "load average before $target: $(cut -d' ' -f1-3 /proc/loadavg)"
	say "$target: $MESSAGES messages of $SIZE octets, $SESSIONS sessions, $SENDER -> $RECIPIENT"
	now
	t0=$NOW
	deadline=$((EPOCHSECONDS + RUN_TIMEOUT))
	timeout "$RUN_TIMEOUT" "$SMTP_SOURCE" -s "$SESSIONS" -l "$SIZE" -m "$MESSAGES" \
		-f "$SENDER" -t "$RECIPIENT" "127.0.0.1:$port" >"$log" 2>&1 &
	spid=$!
	track "$spid"
	while :; do
		if [[ -z $t_src ]] && ! alive "$spid"; then
			now
			t_src=$NOW
			wait "$spid" || src_rc=$?
			forget "$spid"
			if [[ $src_rc -ne 0 ]]; then
				say "$target: smtp-source failed (status $src_rc; 124: timed out after ${RUN_TIMEOUT}s); its output:"
				tail -n 20 "$log" | sed 's/^/  | /'
				FAILED=1
				return 1
			fi
		fi
		if [[ -z $t1 ]]; then
			sink_poll
			if ((SINK_GOT >= MESSAGES)); then
				now
				t1=$NOW
			fi
		fi
		[[ -n $t1 && -n $t_src ]] && break
		if ! alive "$pid"; then
			say "$target: pid $pid died during the run ($SINK_GOT of $MESSAGES at the sink)"
			FAILED=1
			return 1
		fi
		if ! alive "$SINK_PID"; then
			say "$target: smtp-sink died during the run"
			FAILED=1
			return 1
		fi
		if ((EPOCHSECONDS >= deadline)); then
			say "$target: TIMEOUT after ${RUN_TIMEOUT}s: $SINK_GOT of $MESSAGES at the sink," \
				"$(count_tree "${queue_dirs[@]}") queue files"
			FAILED=1
			return 1
		fi
		read -r -t "$POLL" -u "$TICK_FD" _ || true # sleep without a fork
	done
	sent_secs=$(awk -v a="$t0" -v b="$t_src" 'BEGIN { printf "%.3f", b - a }')
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	rate=$(awk -v n="$MESSAGES" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
	say "$target: $MESSAGES at the sink after ${secs}s = $rate msg/s (smtp-source done after ${sent_secs}s)"
	# The MTA removes a message once the sink has said 250 to it: wait for the
	# queue to empty, then give late duplicates a moment to show.
	drained=false
	for ((i = 0; i < DRAIN * 10; i++)); do
		queued=$(count_tree "${queue_dirs[@]}")
		if [[ $queued -eq 0 ]]; then
			drained=true
			break
		fi
		sleep 0.1
	done
	if ! $drained; then
		say "$target: $queued queue files left ${DRAIN}s after the sink had every message"
		FAILED=1
	fi
	sleep 1
	sink_poll
	if [[ $SINK_GOT -ne $MESSAGES ]]; then
		say "$target: MISMATCH: the sink received $SINK_GOT messages, $MESSAGES were sent"
		FAILED=1
	else
		say "$target: the sink received $SINK_GOT messages = messages sent${queue_dirs:+; queue empty}"
	fi
	RESULTS+=("$target $MESSAGES $secs $rate $sent_secs")
}

# --- the targets ------------------------------------------------------------

bench_sink() {
	start_sink sink
	run sink "$SINK_PORT" "$SINK_PID" || true
	stop_sink
}

bench_hatod() {
	local dir=$WORK/hatod port pid conf log warns out sent
	start_sink hatod
	port=$(free_port)
	mkdir -p "$dir"
	chmod 0755 "$WORK" "$dir" # user hato must reach the state dir when we are root
	conf=$dir/hato.conf
	log=$dir/hatod.log
	cat >"$conf" <<-EOF
		[server]
		state_dir = $dir/state
		local_domains = localhost
		trusted_networks = 127.0.0.1/32
		commit_sync = $COMMIT_SYNC
		[limits]
		sessions_max = 1000
		[listener smtp]
		address = 127.0.0.1:$port
		# no postscreen-style greeting delay: Postfix runs without postscreen
		greeting_delay = 0
		[delivery]
		hold = no
		concurrency = $CONCURRENCY
		concurrency_per_destination = $CONCURRENCY
		[remote]
		relayhost = [127.0.0.1]:$SINK_PORT
		relayhost_tls = none
		tls = none
	EOF
	if ! out=$("$HATOD" -n -c "$conf" 2>&1); then
		printf '%s\n' "$out" | sed 's/^/  | /'
		grep -qi remote <<<"$out" && say "hatod: $HATOD does not know [remote]: a build without remote delivery?"
		say "hatod: hatod -n rejects $conf: skipped"
		FAILED=1
		stop_sink
		return 0
	fi
	"$HATOD" -f -c "$conf" >"$log" 2>&1 &
	pid=$!
	track "$pid"
	if ! wait_port "$pid" "$port"; then
		tail -n 20 "$log" | sed 's/^/  | /' >&2
		die "hatod did not start on 127.0.0.1:$port (log above)"
	fi
	say "hatod pid $pid on 127.0.0.1:$port, state $dir/state"
	run hatod "$port" "$pid" "$dir/state/queue" "$dir/state/incoming" || true
	stop_ours "$pid"
	stop_sink
	sent=$(grep -c 'event=delivery .*status=delivered' "$log" || true)
	say "hatod: its log has $sent event=delivery status=delivered lines"
	warns=$(grep -cE 'level=(warning|error|fatal|panic)|event=delivery .*status=(deferred|failed)' "$log" || true)
	if [[ $warns -gt 0 ]]; then
		say "hatod: $warns warning/error/deferral lines in its log; the last ones:"
		grep -E 'level=(warning|error|fatal|panic)|event=delivery .*status=(deferred|failed)' "$log" |
			tail -n 10 | sed 's/^/  | /'
	fi
}

bench_postfix() {
	local dir=$WORK/postfix port pid conf log sent
	start_sink postfix
	port=$(free_port)
	conf=$dir/conf
	log=$dir/postfix.log
	postfix_prepare "$dir"
	# No local delivery at all (mydestination and local_recipient_maps empty):
	# every recipient is remote, and clients in mynetworks may relay to the
	# relayhost, the sink.
	{
		postfix_main_cf "$dir" "$log"
		cat <<-EOF
			local_recipient_maps =
			relayhost = [127.0.0.1]:$SINK_PORT
			smtp_tls_security_level = none
			smtpd_tls_security_level = none
			default_destination_concurrency_limit = $CONCURRENCY
		EOF
	} >"$conf/main.cf"
	postfix_master_cf "$port" >"$conf/master.cf"
	# From here on the EXIT trap (and the watchdog) stop whatever master
	# works in this spool, even one whose pid we have not read yet.
	postfix_start "$conf" "$log" "$dir/spool" "$port"
	pid=$PF_PID
	track "$pid"
	run postfix "$port" "$pid" \
		"$dir/spool/maildrop" "$dir/spool/incoming" "$dir/spool/active" \
		"$dir/spool/deferred" "$dir/spool/hold" || true
	postfix_stop_report "$log" 'warning:|error:|fatal:|panic:|status=(deferred|bounced)' \
		warning/error/deferral
	stop_sink
	sent=$(grep -c 'status=sent' "$log" || true)
	say "postfix: its log has $sent status=sent lines"
}

# --- main -----------------------------------------------------------------

install_postfix "$SMTP_SOURCE" "$SMTP_SINK" "$POSTFIX" "$POSTCONF"
if [[ " $TARGETS " == *" hatod "* ]]; then
	[[ -x $HATOD ]] || die "$HATOD not found: build it first (make), or set BENCH_HATOD"
	if $is_root && ! getent passwd hato >/dev/null; then
		die "no user hato for hatod to drop to: run scripts/setup.sh"
	fi
fi
[[ -d $TMPBASE ]] || die "BENCH_TMPDIR $TMPBASE is not a directory"
WORK=$(mktemp -d "$TMPBASE/$WORK_PREFIX.XXXXXX")
chmod 0755 "$WORK"
: >"$WORK/pids"
start_watchdog
open_tick
fstype=$(df --output=fstype "$WORK" | tail -n 1)
say "$(nproc) cores, $(uname -sr), temp dir $WORK on $fstype, $("$POSTCONF" -d -h mail_version 2>/dev/null | sed 's/^/postfix /')"
fs_notes "$WORK"

for t in $TARGETS; do
	case $t in
	sink) bench_sink ;;
	hatod) bench_hatod ;;
	postfix) bench_postfix ;;
	esac
done

say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-8s %8s %10s %10s %12s\n' target msgs seconds msg/s source-secs
for r in "${RESULTS[@]}"; do
	# shellcheck disable=SC2086
	printf '%-8s %8s %10s %10s %12s\n' $r
done
# Same message count for both: the ratio of rates is the inverse ratio of times.
hato=$(printf '%s\n' "${RESULTS[@]}" | awk '$1 == "hatod" { print $3 }')
pfx=$(printf '%s\n' "${RESULTS[@]}" | awk '$1 == "postfix" { print $3 }')
if [[ -n $hato && -n $pfx ]]; then
	echo
	awk -v a="$hato" -v b="$pfx" 'BEGIN { printf "ratio hatod/postfix: %.2f\n", (a > 0 ? b / a : 0) }'
fi
if [[ $FAILED -ne 0 ]]; then
	say "FAILED: see the messages above"
	exit 1
fi
