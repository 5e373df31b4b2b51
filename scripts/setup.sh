#!/usr/bin/env bash
# setup.sh - install what hato's build and tests need (Debian packages) and
# create the unprivileged system user/group `hato` that hatod drops to when
# started as root.
#
# Idempotent and non-interactive.  When everything is present it only asks
# dpkg and getent, so it is a fast no-op (make test/run/bench call it every
# time).  Run as root, it installs what is missing; run as anyone else, it
# names what is missing, prints the command to install it and exits 1.
set -euo pipefail

# Every Debian package the build and the tests need, and why.
PACKAGES=(
	build-essential    # cc, make, libc headers
	pkg-config         # the Makefile asks it for compiler/linker flags
	clang              # make asan, make fuzz (libFuzzer)
	clang-format       # make format-check (CI)
	libclang-rt-14-dev # ASan/UBSan/libFuzzer runtimes for clang 14
	libevent-dev       # event loop, bufferevents, libevent_openssl/pthreads
	libssl-dev         # TLS (OpenSSL 3)
	openssl            # dev certificates, `openssl s_client` in e2e tests
	libc-ares-dev      # asynchronous DNS
	libinih-dev        # config file parser
	libcrypt-dev       # crypt(3) password hashes
	libcmocka-dev      # unit tests
	python3            # e2e tests (smtplib)
	python3-pytest     # e2e test runner (/usr/bin/python3 -m pytest)
	swaks              # e2e SMTP client
	curl               # e2e SMTP client
	ca-certificates    # TLS clients in the tests verify against the system store
	mount              # e2e disk-full test mounts a small tmpfs as the spool
	libidn2-dev        # internationalized domain names: A-label <-> U-label
	libio-socket-ssl-perl # swaks --tls / --tlsc in the TLS tests
	libnet-ssleay-perl    # (the same)
	msmtp              # e2e SMTP client
	python3-aiosmtpd   # e2e: a third-party SMTP server for hato send
	python3-prometheus-client # e2e metrics: the reference parser of the exposition format
	dovecot-core       # e2e LMTP tests: a private Dovecot instance (dovecot, doveadm)
	dovecot-lmtpd      # (its lmtp service)
	dnsmasq-base       # e2e MX tests: a private DNS server (the binary, no system service)
	publicsuffix       # hatod: the Public Suffix List for DMARC ([checks] public_suffix_list)
	python3-spf        # bench/checks.sh: pyspf, the reference SPF evaluator (and the RFC 7208 suite's YAML)
	mandoc             # e2e: lints the man pages (mandoc -Tlint), the reference mdoc parser
	systemd            # e2e: systemd-analyze verify/security/syscall-filter on hatod.service
	strace             # e2e: the system calls hatod makes, against the unit's filter
	iproute2           # e2e: `ip link` in the tests' own network namespaces
	util-linux         # e2e: unshare, nsenter, setpriv (the unit's capability bounding set)
	man-db             # e2e: man(1), which systemd-analyze verify uses for Documentation=
	haproxy            # e2e PROXY protocol tests: a private balancer started by each test
	python3-dkim       # e2e DKIM tests: dkimpy, the reference that judges hato's signatures
	python3-nacl       # (dkimpy's Ed25519)
	rspamd             # e2e milter tests: a private rspamd, its proxy worker in milter mode
	python3-milter     # e2e milter tests: test filters written with libmilter's Python binding
	libpq-dev          # [sql] backend = pgsql: libpq
	libsqlite3-dev     # [sql] backend = sqlite: libsqlite3
	postgresql         # e2e [sql] tests: a private cluster (initdb, pg_ctl) per test
	dovecot-pgsql      # e2e two-node test: Dovecot's users from the same PostgreSQL
)

HATO_USER=hato

say() { printf 'setup: %s\n' "$*"; }

# Is package $1 installed (any architecture)?
is_installed() {
	dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null | grep -qx installed
}

missing=()
for p in "${PACKAGES[@]}"; do
	is_installed "$p" || missing+=("$p")
done

is_root=false
[[ $(id -u) -eq 0 ]] && is_root=true

if ((${#missing[@]} == 0)); then
	say "all ${#PACKAGES[@]} packages present"
elif $is_root; then
	say "missing packages: ${missing[*]}"
	# apt's own output goes to a log, shown only when a step fails.
	log=$(mktemp /tmp/hato-setup.XXXXXX)
	# Packages such as dovecot-core would start system services; the tests
	# start their own instances, so keep the system's from starting.
	policy_made=false
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		policy_made=true
	fi
	trap 'rm -f "$log"; $policy_made && rm -f /usr/sbin/policy-rc.d' EXIT
	say "running apt-get update"
	if ! apt-get update -q >"$log" 2>&1; then
		cat "$log" >&2
		say "ERROR: apt-get update failed" >&2
		exit 1
	fi
	say "installing: ${missing[*]}"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-o DPkg::Lock::Timeout=300 "${missing[@]}" >"$log" 2>&1; then
		cat "$log" >&2
		say "ERROR: apt-get install failed" >&2
		exit 1
	fi
	still=()
	for p in "${missing[@]}"; do
		is_installed "$p" || still+=("$p")
	done
	if ((${#still[@]} > 0)); then
		say "ERROR: still missing after apt-get install: ${still[*]}" >&2
		exit 1
	fi
	say "installed ${#missing[@]} packages"
else
	say "ERROR: missing packages: ${missing[*]}" >&2
	say "install them as root with:" >&2
	printf '  sudo sh -c "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends %s"\n' \
		"${missing[*]}" >&2
	exit 1
fi

# The user hatod drops to when started as root (server.user, default hato).
if getent passwd "$HATO_USER" >/dev/null; then
	say "user $HATO_USER present"
elif $is_root; then
	if getent group "$HATO_USER" >/dev/null; then
		group_opt=(--gid "$HATO_USER")
	else
		group_opt=(--user-group)
	fi
	useradd --system "${group_opt[@]}" --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin "$HATO_USER"
	say "created system user and group $HATO_USER"
else
	say "note: no user $HATO_USER; only needed when hatod is started as root" \
		"(as root: useradd --system --user-group --no-create-home" \
		"--home-dir /nonexistent --shell /usr/sbin/nologin $HATO_USER)"
fi
