# bench/lib.sh - helpers the benchmark scripts share; sourced, not run.
# shellcheck shell=bash disable=SC2034,SC2153,SC2154 # the sourcing script shares its globals
#
# The sourcing script defines say, die, is_root, TMPBASE and PY, and keeps
# PIDS (the processes it started), WORK and KEEP, before it calls these.

# --- processes we started --------------------------------------------------

# True while pid $1 exists and is not a zombie (a daemonized Postfix master
# is not our child: whoever reaps it, we must not wait on its corpse).
# Builtins only: poll loops call it often, and forks would cost CPU that
# the targets need.
alive() {
	local st
	{ IFS= read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
	st=${st##*) } # the command name may hold spaces and parentheses
	[[ ${st:0:1} != Z ]]
}

# Stop one process we started: TERM, up to 10 s, then KILL.
stop_pid() {
	local pid=$1 i
	alive "$pid" || {
		wait "$pid" 2>/dev/null || true
		return 0
	}
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		say "pid $pid did not stop after TERM within 10 s: KILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# Forget a pid that is gone (so a reused pid is never hit).
forget() {
	local pid=$1 keep=() p
	for p in "${PIDS[@]}"; do
		[[ $p == "$pid" ]] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# Stop a process we started and forget it.
stop_ours() {
	stop_pid "$1"
	forget "$1"
}

# Remove the temp dir WORK, or with BENCH_KEEP=1 say where it is.
remove_work() {
	if [[ -n $WORK && -d $WORK ]]; then
		if [[ $KEEP == 1 ]]; then
			say "kept $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
}

# --- Postfix ---------------------------------------------------------------

# Postfix master processes running now, one PID a line.
postfix_masters() {
	local p
	for p in $(pgrep -x master 2>/dev/null || true); do
		[[ $(readlink "/proc/$p/exe" 2>/dev/null) == */postfix/* ]] && echo "$p"
	done
	return 0
}

# Install Debian's postfix when any of the programs given is missing, with
# nothing configured or started; stop a master the install started anyway.
install_postfix() {
	local bin missing=false before policy_made=false log ok=true p
	for bin in "$@"; do
		[[ -x $bin ]] || missing=true
	done
	$missing || return 0
	if ! $is_root; then
		die "Postfix is missing; as root run:
  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix"
	fi
	before=$(postfix_masters)
	say "installing postfix (main_mailer_type 'No configuration': nothing is configured or started)"
	echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
	# Keep invoke-rc.d from starting services during the install.
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		policy_made=true
	fi
	log=$(mktemp "$TMPBASE/hato-bench-apt.XXXXXX")
	{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends -o DPkg::Lock::Timeout=300 postfix; } >"$log" 2>&1 || ok=false
	$policy_made && rm -f /usr/sbin/policy-rc.d
	if ! $ok; then
		cat "$log" >&2
		rm -f "$log"
		die "apt-get install postfix failed"
	fi
	rm -f "$log"
	for bin in "$@"; do
		[[ -x $bin ]] || die "postfix installed but $bin is missing"
	done
	for p in $(postfix_masters); do
		if ! grep -qx "$p" <<<"$before"; then
			say "the postfix install started a master (pid $p): stopping it"
			stop_pid "$p"
		fi
	done
}

# The pid of the Postfix master working in spool $1, from its pid file, if it
# runs (checked by its executable and its working directory, which master(8)
# sets to the queue directory).
postfix_master_of() {
	local spool=$1 pid
	pid=$(tr -d ' \n' <"$spool/pid/master.pid" 2>/dev/null || true)
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */postfix/*master ]] || return 1
	[[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$(realpath "$spool")" ]] || return 1
	echo "$pid"
}

# Pids of the processes whose working directory is spool $1: a Postfix
# instance's daemons all chdir to its queue directory.
postfix_procs_in() {
	local spool
	spool=$(realpath "$1" 2>/dev/null) || return 0
	find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "$spool" 2>/dev/null | cut -d/ -f3
	return 0
}

# Stop the private Postfix instance in spool $1: its master (which stops its
# children), then, after up to 10 s, any of its daemons still there.
stop_postfix() {
	local spool=$1 pid left i
	[[ -n $spool && -d $spool ]] || return 0
	if pid=$(postfix_master_of "$spool"); then
		stop_pid "$pid"
		forget "$pid"
	fi
	for ((i = 0; i < 100; i++)); do
		left=$(postfix_procs_in "$spool")
		[[ -z $left ]] && return 0
		sleep 0.1
	done
	say "postfix processes still in $spool after its master stopped: ${left//$'\n'/ }; TERM"
	for pid in $left; do
		stop_pid "$pid"
	done
}

# Make the directories of a private Postfix instance under $1: conf/,
# spool/, data/ (Postfix's own) and an empty postfix.log; dies unless we are
# root and the package's user and group exist.
postfix_prepare() {
	local dir=$1
	$is_root || die "the postfix target needs root (or leave it out of BENCH_TARGETS)"
	getent passwd postfix >/dev/null || die "no user postfix (is the postfix package installed?)"
	getent group postdrop >/dev/null || die "no group postdrop (is the postfix package installed?)"
	mkdir -p "$dir/conf" "$dir/spool" "$dir/data"
	chmod 0755 "$WORK" "$dir" "$dir/conf" "$dir/spool"
	chown postfix "$dir/data"
	chmod 0700 "$dir/data"
	: >"$dir/postfix.log"
}

# The main.cf settings every private Postfix instance here has: its own
# spool, data directory and log under $1 ($2: the log file), loopback only,
# no local aliases, no local domains.  The caller appends its own.
postfix_main_cf() {
	local dir=$1 log=$2
	cat <<-EOF
		compatibility_level = 3.6
		queue_directory = $dir/spool
		data_directory = $dir/data
		mail_owner = postfix
		setgid_group = postdrop
		myhostname = bench.localdomain
		mydomain = localdomain
		myorigin = \$myhostname
		mydestination =
		relay_domains =
		inet_interfaces = 127.0.0.1
		inet_protocols = ipv4
		mynetworks = 127.0.0.0/8
		alias_maps =
		alias_database =
		biff = no
		maillog_file = $log
		maillog_file_prefixes = $dir
	EOF
}

# The services of Debian's master.cf.proto that SMTP in and SMTP out need,
# none chrooted, smtpd only on 127.0.0.1:$1; then the lines given after it
# (more services).
postfix_master_cf() {
	local port=$1 line
	shift
	cat <<-EOF
		127.0.0.1:$port inet n - n - - smtpd
		pickup    unix  n       -       n       60      1       pickup
		cleanup   unix  n       -       n       -       0       cleanup
		qmgr      unix  n       -       n       300     1       qmgr
		rewrite   unix  -       -       n       -       -       trivial-rewrite
		bounce    unix  -       -       n       -       0       bounce
		defer     unix  -       -       n       -       0       bounce
		trace     unix  -       -       n       -       0       bounce
		verify    unix  -       -       n       -       1       verify
		flush     unix  n       -       n       1000?   0       flush
		proxymap  unix  -       -       n       -       -       proxymap
		proxywrite unix -       -       n       -       1       proxymap
		smtp      unix  -       -       n       -       -       smtp
		relay     unix  -       -       n       -       -       smtp
		showq     unix  n       -       n       -       -       showq
		error     unix  -       -       n       -       -       error
		retry     unix  -       -       n       -       -       error
		discard   unix  -       -       n       -       -       discard
		local     unix  -       n       n       -       -       local
		anvil     unix  -       -       n       -       1       anvil
		scache    unix  -       -       n       -       1       scache
		postlog   unix-dgram n  -       n       -       1       postlogd
	EOF
	for line in "$@"; do
		printf '%s\n' "$line"
	done
}

# Check the instance configured in $1 (postconf, postfix check; $2 its log)
# and start it, setting PF_SPOOL to $3, its spool, first: from then on the
# caller's cleanup can stop whatever master works there.  Sets PF_PID to
# the master's pid once it runs, and returns once it listens on port $4;
# dies on any failure.
postfix_start() {
	local conf=$1 log=$2 spool=$3 port=$4 out i
	if ! out=$("$POSTCONF" -c "$conf" -n 2>&1) || grep -qiE 'warning|fatal|error' <<<"$out"; then
		printf '%s\n' "$out" | sed 's/^/  | /' >&2
		die "postconf -c $conf complains (above)"
	fi
	# postfix(1) reports to maillog_file, and to stderr only when it is a tty.
	if ! out=$("$POSTFIX" -c "$conf" check 2>&1); then
		printf '%s\n' "$out" | sed 's/^/  | /' >&2
		tail -n 20 "$log" | sed 's/^/  | /' >&2
		die "postfix -c $conf check failed (above)"
	fi
	[[ -z $out ]] || printf '%s\n' "$out" | sed 's/^/  postfix check: /'
	PF_SPOOL=$spool
	if ! out=$("$POSTFIX" -c "$conf" start 2>&1); then
		printf '%s\n' "$out" | sed 's/^/  | /' >&2
		tail -n 20 "$log" | sed 's/^/  | /' >&2
		die "postfix -c $conf start failed (above)"
	fi
	for ((i = 0; ; i++)); do
		PF_PID=$(postfix_master_of "$spool") && break
		((i < 100)) || die "no running Postfix master for $spool (pid/master.pid)"
		sleep 0.1
	done
	if ! wait_port "$PF_PID" "$port"; then
		tail -n 20 "$log" | sed 's/^/  | /' >&2
		die "postfix did not start listening on 127.0.0.1:$port (log above)"
	fi
	say "postfix master pid $PF_PID on 127.0.0.1:$port, config $conf"
}

# Stop the instance postfix_start started, then show how many lines of its
# log ($1) match the extended regex $2 ($3 names them), and the last ones.
postfix_stop_report() {
	local log=$1 pattern=$2 what=$3 n
	stop_postfix "$PF_SPOOL" # SIGTERM to master(8): it stops its children and exits
	PF_SPOOL=""
	n=$(grep -cE "$pattern" "$log" || true)
	if [[ $n -gt 0 ]]; then
		say "postfix: $n $what lines in its log; the last ones:"
		grep -E "$pattern" "$log" | tail -n 10 | sed 's/^/  | /'
	fi
}

# --- ports, counts, file systems ------------------------------------------

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Wait up to 10 s until process pid accepts connections on 127.0.0.1:port.
wait_port() {
	local pid=$1 port=$2 i
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || return 1
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# How many files are below the directories given (missing ones count 0).
count_tree() {
	local d n=0 c
	for d in "$@"; do
		[[ -d $d ]] || continue
		c=$(find "$d" -type f -printf . | wc -c)
		n=$((n + c))
	done
	echo "$n"
}

# Warn about what the file system under $1 does to fsync'ed creates: tmpfs
# makes fsync free; ext4 without a journal makes every new file scan the
# inodes freed in the last minutes (ext4's recently_deleted), so a run soon
# after many deletions (an earlier run, the tests) is slower.
fs_notes() {
	local dir=$1 fstype dev
	fstype=$(df --output=fstype "$dir" | tail -n 1)
	if [[ $fstype == tmpfs ]]; then
		say "warning: $dir is on tmpfs: fsync costs nothing there, hatod will look faster than on disk"
	elif [[ $fstype == ext4 ]]; then
		dev=$(basename "$(df --output=source "$dir" | tail -n 1)")
		if [[ $(cat "/sys/fs/ext4/$dev/journal_task" 2>/dev/null) == "<none>" ]]; then
			say "note: $dir is on ext4 without a journal: each new file scans the inodes freed in the last" \
				"minutes, so a run soon after many deletions (an earlier run, the tests) is slower"
		fi
	fi
}
