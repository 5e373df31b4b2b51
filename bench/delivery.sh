#!/usr/bin/env bash
# bench/delivery.sh - end-to-end local delivery throughput, side by side:
# hatod against a private Postfix instance, both delivering into Maildirs.
#
# Postfix's smtp-source sends BENCH_MESSAGES messages of BENCH_SIZE octets
# (default 10000 x 2048), one connection per message, with BENCH_SESSIONS
# parallel sessions (20), all to one local recipient, over 127.0.0.1.  The
# clock starts just before the first connection and stops when the last
# message is a file in the recipient's Maildir new/ directory AND the queue
# is empty (polled every 50 ms once smtp-source is done, so the figure is
# good to about 0.05 s).  The script then checks that the Maildir holds
# exactly as many files as messages were sent, for both targets.
#
#   hatod:   [domain localhost] mailboxes = *; Maildir state/mail/localhost/bench
#            (hatod's default mailbox_path); the queue is state/queue/.
#   postfix: a private instance (its own config_directory, queue_directory,
#            data_directory and log file in the temp dir; never the system's
#            /etc/postfix or /var/spool/postfix) delivering with virtual(8)
#            to vmail/bench/ as user nobody; the queue is its spool's
#            incoming/active/deferred/hold/maildrop.  Defaults otherwise
#            (fsync on, default concurrency, no chroot).
#
#   bench/delivery.sh
#   BENCH_MESSAGES=2000 bench/delivery.sh     a quick run
#
# Environment:
#   BENCH_MESSAGES  messages per target (10000)
#   BENCH_SIZE      payload octets per message (2048)
#   BENCH_SESSIONS  parallel smtp-source sessions (20)
#   BENCH_TARGETS   what to measure, in order ("hatod postfix")
#   BENCH_HATOD     the hatod binary ($BUILD/hatod, so build/hatod)
#   BENCH_TIMEOUT   seconds allowed per target, sending and delivering (900)
#   BENCH_TMPDIR    where spools and Maildirs go (${TMPDIR:-/tmp}; a real disk, not tmpfs)
#   BENCH_KEEP=1    keep the temp dir (configs, logs, Maildirs) instead of removing it
#   BENCH_COMMIT_SYNC  hatod's commit_sync: fsync (default) or syncfs
#
# Needs root for the Postfix target (Postfix starts as root and drops to its
# mail_owner).  Installs the postfix package unconfigured, as bench/run.sh
# does, when its tools are missing.  Listens on 127.0.0.1 only, and stops
# only the processes it started (hatod, the private Postfix master), by PID,
# in an EXIT trap.  A benchmark, not a test: it fails only when something is
# broken (a target does not start, smtp-source gets an error, a message does
# not reach the Maildir in time, or the counts differ).
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/.."

MESSAGES=${BENCH_MESSAGES:-10000}
SIZE=${BENCH_SIZE:-2048}
SESSIONS=${BENCH_SESSIONS:-20}
TARGETS=${BENCH_TARGETS:-hatod postfix}
HATOD=${BENCH_HATOD:-${BUILD:-build}/hatod}
RUN_TIMEOUT=${BENCH_TIMEOUT:-900}
TMPBASE=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
KEEP=${BENCH_KEEP:-0}
COMMIT_SYNC=${BENCH_COMMIT_SYNC:-fsync}

SMTP_SOURCE=/usr/sbin/smtp-source
POSTFIX=/usr/sbin/postfix
POSTCONF=/usr/sbin/postconf
SENDER=bench@localhost
RCPT_USER=bench
RECIPIENT=$RCPT_USER@localhost
POLL=0.05 # seconds between Maildir/queue checks

say() { printf 'bench: %s\n' "$*"; }
die() {
	printf 'bench: ERROR: %s\n' "$*" >&2
	exit 1
}

for v in MESSAGES SIZE SESSIONS RUN_TIMEOUT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$v must be a positive integer, not '${!v}'"
done
for t in $TARGETS; do
	[[ $t == hatod || $t == postfix ]] || die "unknown target '$t' (hatod, postfix)"
done
is_root=false
[[ $(id -u) -eq 0 ]] && is_root=true

# --- processes we started, and cleanup ------------------------------------

PIDS=()
WORK=""

PF_SPOOL="" # the private Postfix instance's spool while one may run

cleanup() {
	local i
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do # the client before the servers
		stop_pid "${PIDS[i]}"
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

now() { date +%s.%N; }

RESULTS=()
FAILED=0

# run TARGET PORT PID MAILDIR QUEUE_DIR... : send, then wait until MAILDIR/new
# holds MESSAGES files and the queue dirs hold none; record the result.
run() {
	local target=$1 port=$2 pid=$3 maildir=$4
	shift 4
	local queue_dirs=("$@") log=$WORK/source-$target.log t0 t1 deadline
	local sent_secs delivered queued left secs rate spid
	say "$target: $MESSAGES messages of $SIZE octets, $SESSIONS sessions, to $RECIPIENT"
	t0=$(now)
	deadline=$(awk -v a="$t0" -v b="$RUN_TIMEOUT" 'BEGIN { printf "%d", a + b }')
	# In the background, so that a signal to this script is handled at once.
	timeout "$RUN_TIMEOUT" "$SMTP_SOURCE" -s "$SESSIONS" -l "$SIZE" -m "$MESSAGES" \
		-f "$SENDER" -t "$RECIPIENT" "127.0.0.1:$port" >"$log" 2>&1 &
	spid=$!
	PIDS+=("$spid")
	if ! wait "$spid"; then
		forget "$spid"
		say "$target: smtp-source failed or timed out (${RUN_TIMEOUT}s); its output:"
		tail -n 20 "$log" | sed 's/^/  | /'
		FAILED=1
		return 1
	fi
	forget "$spid"
	sent_secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
	say "$target: smtp-source done after ${sent_secs}s; waiting for delivery"
	while :; do
		delivered=$(count_tree "$maildir/new")
		queued=$(count_tree "${queue_dirs[@]}")
		if [[ $delivered -ge $MESSAGES && $queued -eq 0 ]]; then
			t1=$(now)
			break
		fi
		if ! alive "$pid"; then
			say "$target: pid $pid died while delivering ($delivered delivered, $queued queue files)"
			FAILED=1
			return 1
		fi
		if (($(date +%s) >= deadline)); then
			say "$target: TIMEOUT after ${RUN_TIMEOUT}s: $delivered of $MESSAGES in $maildir/new, $queued queue files left"
			FAILED=1
			return 1
		fi
		sleep "$POLL"
	done
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	rate=$(awk -v n="$MESSAGES" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
	say "$target: $MESSAGES delivered in ${secs}s = $rate msg/s (smtp-source alone took ${sent_secs}s)"
	# Let anything still running settle, then count again: nothing more may
	# appear (duplicates), nothing may linger in tmp/ or cur/.
	sleep 0.5
	delivered=$(count_tree "$maildir/new")
	left=$(count_tree "$maildir/tmp" "$maildir/cur")
	if [[ $delivered -ne $MESSAGES || $left -ne 0 ]]; then
		say "$target: MISMATCH: $delivered files in new/, $left in tmp/+cur/, $MESSAGES messages sent"
		FAILED=1
	else
		say "$target: $maildir/new holds $delivered files = messages sent; queue empty"
	fi
	RESULTS+=("$target $MESSAGES $secs $rate")
}

# --- hatod ----------------------------------------------------------------

bench_hatod() {
	local dir=$WORK/hatod port pid conf log warns
	port=$(free_port)
	mkdir -p "$dir"
	chmod 0755 "$WORK" "$dir" # user hato must reach the state dir when we are root
	conf=$dir/hato.conf
	log=$dir/hatod.log
	cat >"$conf" <<-EOF
		[server]
		state_dir = $dir/state
		local_domains = localhost
		commit_sync = $COMMIT_SYNC
		[limits]
		sessions_max = 1000
		# every session comes from 127.0.0.1: no per-client limit
		client_sessions_max = 0
		[listener smtp]
		address = 127.0.0.1:$port
		# no postscreen-style greeting delay: Postfix runs without postscreen
		greeting_delay = 0
		[domain localhost]
		mailboxes = *
	EOF
	"$HATOD" -n -c "$conf" >"$log" 2>&1 || {
		sed 's/^/  | /' "$log" >&2
		die "hatod -n rejects $conf"
	}
	"$HATOD" -f -c "$conf" >"$log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	if ! wait_port "$pid" "$port"; then
		tail -n 20 "$log" | sed 's/^/  | /' >&2
		die "hatod did not start on 127.0.0.1:$port (log above)"
	fi
	say "hatod pid $pid on 127.0.0.1:$port, state $dir/state"
	run hatod "$port" "$pid" "$dir/state/mail/localhost/$RCPT_USER" \
		"$dir/state/queue" "$dir/state/incoming" || true
	stop_ours "$pid"
	warns=$(grep -cE 'level=(warning|error|fatal|panic)' "$log" || true)
	if [[ $warns -gt 0 ]]; then
		say "hatod: $warns warning/error lines in its log; the last ones:"
		grep -E 'level=(warning|error|fatal|panic)' "$log" | tail -n 10 | sed 's/^/  | /'
	fi
}

# --- Postfix --------------------------------------------------------------

bench_postfix() {
	local dir=$WORK/postfix port pid conf log vuid vgid
	vuid=$(id -u nobody)
	vgid=$(id -g nobody)
	port=$(free_port)
	conf=$dir/conf
	log=$dir/postfix.log
	postfix_prepare "$dir"
	mkdir -p "$dir/vmail"
	chown "$vuid:$vgid" "$dir/vmail"
	chmod 0700 "$dir/vmail"
	# Every name at localhost is the one Maildir vmail/bench/ (trailing "/":
	# Maildir), as user nobody.  mydestination is empty so that localhost is
	# a virtual mailbox domain only.
	{
		postfix_main_cf "$dir" "$log"
		cat <<-EOF
			virtual_mailbox_domains = localhost
			virtual_mailbox_base = $dir/vmail
			virtual_mailbox_maps = static:$RCPT_USER/
			virtual_uid_maps = static:$vuid
			virtual_gid_maps = static:$vgid
		EOF
	} >"$conf/main.cf"
	# the services SMTP needs, and virtual(8) and lmtp(8) as Debian has them
	postfix_master_cf "$port" \
		"virtual   unix  -       n       n       -       -       virtual" \
		"lmtp      unix  -       -       n       -       -       lmtp" >"$conf/master.cf"
	postfix_start "$conf" "$log" "$dir/spool" "$port"
	pid=$PF_PID
	PIDS+=("$pid")
	run postfix "$port" "$pid" "$dir/vmail/$RCPT_USER" \
		"$dir/spool/maildrop" "$dir/spool/incoming" "$dir/spool/active" \
		"$dir/spool/deferred" "$dir/spool/hold" || true
	postfix_stop_report "$log" 'warning:|error:|fatal:|panic:|status=(deferred|bounced)' \
		warning/error/deferral
}

# --- main -----------------------------------------------------------------

install_postfix "$SMTP_SOURCE" "$POSTFIX" "$POSTCONF"
if [[ " $TARGETS " == *" hatod "* ]]; then
	[[ -x $HATOD ]] || die "$HATOD not found: build it first (make), or set BENCH_HATOD"
	if $is_root && ! getent passwd hato >/dev/null; then
		die "no user hato for hatod to drop to: run scripts/setup.sh"
	fi
fi
[[ -d $TMPBASE ]] || die "BENCH_TMPDIR $TMPBASE is not a directory"
WORK=$(mktemp -d "$TMPBASE/hato-dbench.XXXXXX")
chmod 0755 "$WORK"
fstype=$(df --output=fstype "$WORK" | tail -n 1)
say "$(nproc) cores, $(uname -sr), temp dir $WORK on $fstype, $("$POSTCONF" -d -h mail_version 2>/dev/null | sed 's/^/postfix /')"
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
fs_notes "$WORK"

for t in $TARGETS; do
	case $t in
	hatod) bench_hatod ;;
	postfix) bench_postfix ;;
	esac
done

say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-8s %8s %10s %10s\n' target msgs seconds msg/s
for r in "${RESULTS[@]}"; do
	# shellcheck disable=SC2086
	printf '%-8s %8s %10s %10s\n' $r
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
