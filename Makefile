# hato - build, run, test.  See README.md.
#
#   make            build build/hatod, build/hato and the man pages (build/man)
#   make run        install what is missing, build, start hatod on defaults
#   make test       install what is missing, build, run every test
#   make asan       the whole test suite again under ASan + UBSan
#   make fuzz       build the libFuzzer targets and run each briefly
#   make bench      side-by-side benchmark against Postfix's smtp-sink
#   make bench-relay  relay throughput, hatod against Postfix, into smtp-sink
#   make bench-postscreen  a client's rate while 2,000 connections from one address idle or drip

BUILD   ?= build
CC      ?= cc
PKGS    := libevent_core libevent_pthreads libevent_openssl openssl libcares inih libcrypt libidn2 libpq sqlite3
SRCDIRS := src/lib src/common src/metrics src/conf src/route src/queue src/lookup src/spf src/dmarc src/tls src/dkim src/intake src/checks src/milter src/smtpc src/scheduler src/mda src/control src/smtp src/client src/relay
INCS    := $(addprefix -I,$(SRCDIRS))
WARN    := -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
# override: `make CFLAGS=...` (make asan) replaces the optimisation flags only
override CFLAGS += -std=c17 -D_GNU_SOURCE $(WARN) $(INCS) -pthread \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread
VERSION := 0.1.0
override CFLAGS += -DHATO_VERSION='"$(VERSION)"'

LIB_SRCS := $(foreach d,$(SRCDIRS),$(wildcard $(d)/*.c))
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
# man pages (mdoc(7)): the sources in man/, the version set at build time
MANS    := $(patsubst man/%,$(BUILD)/man/%,$(wildcard man/*.[158]))

.PHONY: all man run test unit e2e asan fuzz bench bench-relay bench-postscreen setup clean format format-check install

all: $(BUILD)/hatod $(BUILD)/hato $(MANS)

man: $(MANS)

$(BUILD)/man/%: man/%
	@mkdir -p $(dir $@)
	sed 's/@VERSION@/$(VERSION)/g' $< > $@

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libhato.a: $(LIB_OBJS)
	ar rcs $@ $^

$(BUILD)/hatod: $(BUILD)/obj/cmd/hatod.o $(BUILD)/libhato.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/hato: $(BUILD)/obj/cmd/hato.o $(BUILD)/obj/cmd/hato_dkim.o $(BUILD)/libhato.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libhato.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags cmocka) -o $@ $^ $(LDLIBS) \
		$(shell pkg-config --libs cmocka)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

setup:
	@scripts/setup.sh

run: setup all
	$(BUILD)/hatod -f

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

e2e: all
	HATO_BUILD=$(abspath $(BUILD)) HATO_SANITIZED=$(HATO_SANITIZED) /usr/bin/python3 -m pytest -q tests/e2e

test: setup
	$(MAKE) all unit
	$(MAKE) e2e

asan: setup
	$(MAKE) BUILD=build-asan CC=clang \
		CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
		LDFLAGS="-fsanitize=address,undefined" HATO_SANITIZED=1 all unit e2e

fuzz: setup
	@tests/fuzz/run.sh

bench: setup all
	@bench/run.sh

bench-relay: setup all
	@bench/relay.sh

bench-postscreen: all
	@BUILD=$(BUILD) /usr/bin/python3 bench/postscreen.py

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz

# make install [PREFIX=/usr/local] [DESTDIR=...]: hatod into $(PREFIX)/sbin,
# hato into $(PREFIX)/bin, and `sendmail` and `mailq` in $(PREFIX)/sbin as
# symbolic links to hato (relative, so a DESTDIR tree stays right), which
# acts on the name it is called by.  Nothing is set-uid.  Run as root, hato
# is installed set-gid hatodrop, mode 2755 (the group is created with
# `groupadd --system hatodrop` when missing, but never for a DESTDIR
# staging tree: a package creates it when installed): that lets any user's
# sendmail create a file in the maildrop directory, which hatod keeps at
# mode 1730 owned hato:hatodrop - the group may add files but not list or
# read the directory, and the sticky bit stops anyone removing another's
# file.  hato takes the group only to write the drop file and gives it up
# for every other command.  Without root hato is installed plainly (0755):
# only the maildrop directory's owner can then use sendmail.  The man pages
# go into $(MANDIR) (sendmail.1 and mailq.1 link to hato.1), and the systemd
# unit into $(UNITDIR) with ExecStart's path in $(PREFIX).
PREFIX ?= /usr/local
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
DROP_GROUP := hatodrop
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 $(BUILD)/man/hato.1 $(DESTDIR)$(MANDIR)/man1/hato.1
	ln -sfn hato.1 $(DESTDIR)$(MANDIR)/man1/sendmail.1
	ln -sfn hato.1 $(DESTDIR)$(MANDIR)/man1/mailq.1
	install -m 0644 $(BUILD)/man/hato.conf.5 $(DESTDIR)$(MANDIR)/man5/hato.conf.5
	install -m 0644 $(BUILD)/man/hatod.8 $(DESTDIR)$(MANDIR)/man8/hatod.8
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/sbin/hatod|$(PREFIX)/sbin/hatod|g' etc/systemd/hatod.service \
		> $(DESTDIR)$(UNITDIR)/hatod.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/hatod.service
	install -m 0755 $(BUILD)/hatod $(DESTDIR)$(PREFIX)/sbin/hatod
	install -m 0755 $(BUILD)/hato $(DESTDIR)$(PREFIX)/bin/hato
	@if [ "$$(id -u)" = 0 ]; then \
		if [ -z "$(DESTDIR)" ] && ! getent group $(DROP_GROUP) >/dev/null; then \
			echo "groupadd --system $(DROP_GROUP)"; \
			groupadd --system $(DROP_GROUP) || exit 1; \
		fi; \
		if getent group $(DROP_GROUP) >/dev/null; then \
			echo "chgrp $(DROP_GROUP) + chmod 2755 $(DESTDIR)$(PREFIX)/bin/hato"; \
			chgrp $(DROP_GROUP) $(DESTDIR)$(PREFIX)/bin/hato && \
			chmod 2755 $(DESTDIR)$(PREFIX)/bin/hato || exit 1; \
		else \
			echo "note: no group $(DROP_GROUP): hato installed without set-gid"; \
		fi; \
	else \
		echo "note: not root: hato installed without set-gid $(DROP_GROUP)"; \
	fi
	ln -sfn ../bin/hato $(DESTDIR)$(PREFIX)/sbin/sendmail
	ln -sfn ../bin/hato $(DESTDIR)$(PREFIX)/sbin/mailq
