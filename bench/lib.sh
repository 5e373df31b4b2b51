# bench/lib.sh - helpers the benchmark scripts share; sourced, not run.
#
# The sourcing script defines say, die, alive, stop_pid, is_root, TMPBASE
# and PY before it calls these.

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
