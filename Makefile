# libsmtpx - hand-written, non-recursive Makefile.
#
#   make            build the library (shared + static) and the programs
#   make demo       install what is missing, then run the end-to-end demo
#   make check      install what is missing, then run the whole test suite
#   make bench      benchmarks against real peers (prints ratios)
#   make bench-msg  only the message layer's (GMime 3, Python's email)
#   make bench-dedupe  what --dedupe and --ack cost smtpx-recv's durable
#                   intake (msg/s, and syncs per message), against
#                   smtp-sink and a private Postfix
#   make bench-ack  the loop closed end to end (smtpx-relay --await-ack
#                   into smtpx-recv --dedupe --ack) against the same path
#                   without it and Postfix into smtpx-recv; syncs per
#                   message on each side
#   make bench-scale  the scale benchmarks (throughput, durable receive,
#                   idle sessions, connection storms, the engine, TLS)
#   make install    PREFIX=/usr/local DESTDIR= (headers, libraries, man
#                   pages, programs, libsmtpx.pc)
#   make SANITIZE=1 ...  the same with AddressSanitizer and UBSan, built
#                   in build/san so both builds can live side by side
#   make LOOP=poll ...   the event loop on poll() instead of epoll (in
#                   build/poll, or build/san/poll)
#   make WERROR=1 ...    warnings are errors (CI)
#   make fuzz-run SECONDS=N   every libFuzzer target for N seconds
#   make check-valgrind  unit and interop tests under valgrind memcheck
#   make coverage   line and branch coverage of lib/ per module (gcovr)
#
# configure is optional: it writes config.mk.  Without it the values below
# apply, the version numbers come from configure.ac and the dependencies are
# found with pkg-config.

-include config.mk

cfgval = $(shell sed -n 's/^m4_define(\[smtpx_$(1)\], *\[\([0-9]*\)\]).*/\1/p' configure.ac)
VERSION_MAJOR ?= $(call cfgval,version_major)
VERSION_MINOR ?= $(call cfgval,version_minor)
VERSION_PATCH ?= $(call cfgval,version_patch)
LT_CURRENT ?= $(call cfgval,lt_current)
LT_REVISION ?= $(call cfgval,lt_revision)
LT_AGE ?= $(call cfgval,lt_age)
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
# libtool-style: libsmtpx.so.(C-A).A.R with soname libsmtpx.so.(C-A)
SOMAJOR := $(shell echo $$(($(LT_CURRENT) - $(LT_AGE))))
SOVERSION := $(SOMAJOR).$(LT_AGE).$(LT_REVISION)

CC ?= cc
PKG_CONFIG ?= pkg-config
CFLAGS ?= -O2 -g
PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MBEDTLS_LIBS ?= -lmbedtls -lmbedx509 -lmbedcrypto
# c-ares (libc-ares-dev) is optional: the resolver uses it when found,
# otherwise a thread over the C library's resolver.  CARES=no turns it off.
ifneq ($(CARES),no)
CARES_LIBS ?= $(shell $(PKG_CONFIG) --libs libcares 2>/dev/null)
CARES_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags libcares 2>/dev/null)
endif
ifneq ($(strip $(CARES_LIBS)),)
CARES_CFLAGS += -DSMTPX_HAVE_CARES
endif
CHECK_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS ?= $(shell $(PKG_CONFIG) --libs check 2>/dev/null || echo -lcheck)

WARN := -Wall -Wextra -Wshadow -Wconversion -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wundef -Wvla \
	-Wwrite-strings -Wold-style-definition -Wimplicit-fallthrough \
	-Wcast-align -Wnull-dereference
ifeq ($(WERROR),1)
WARN += -Werror
endif

B := build
ifeq ($(SANITIZE),1)
B := build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
CFLAGS := -O1 -g
endif
# LOOP=poll builds the event loop on poll() even where epoll exists, in a
# tree of its own (make check runs the loop tests against both).
ifeq ($(LOOP),poll)
B := $(B)/poll
CPPFLAGS += -DSMTPX_LOOP_POLL
endif

BASE_CFLAGS := -std=c99 -D_POSIX_C_SOURCE=200809L -Iinclude $(WARN) \
	$(SANFLAGS) $(CFLAGS) $(CPPFLAGS)
LIB_CFLAGS := $(BASE_CFLAGS) -fPIC -fvisibility=hidden -DSMTPX_BUILDING \
	-Ilib $(MBEDTLS_CFLAGS) $(CARES_CFLAGS)

LIB_SRC := $(sort $(wildcard lib/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
STATIC := $(B)/libsmtpx.a
SHARED := $(B)/libsmtpx.so.$(SOVERSION)
SHARED_SONAME := libsmtpx.so.$(SOMAJOR)
# -pthread: the loop takes a mutex for smtpx_loop_post().
LIB_LIBS := $(MBEDTLS_LIBS) $(CARES_LIBS) -lresolv -pthread

# Receivers on other event libraries, built where the library is installed
# (scripts/deps.sh check installs both); examples, not installed.
UV_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags libuv 2>/dev/null)
UV_LIBS ?= $(shell $(PKG_CONFIG) --libs libuv 2>/dev/null)
EVENT_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags libevent 2>/dev/null)
EVENT_LIBS ?= $(shell $(PKG_CONFIG) --libs libevent 2>/dev/null)
ADAPTERS := smtpx-uv-recv smtpx-event-recv
ADAPTER_BIN := $(if $(UV_LIBS),$(B)/examples/smtpx-uv-recv) \
	$(if $(EVENT_LIBS),$(B)/examples/smtpx-event-recv)

PROGS := $(filter-out $(ADAPTERS),$(patsubst examples/%.c,%,$(wildcard examples/*.c)))
PROG_BIN := $(PROGS:%=$(B)/examples/%)

TEST_SRC := $(sort $(filter-out tests/fuzz/% tests/preload/% tests/perf/%,\
	$(wildcard tests/*.c tests/*/*.c)))
TEST_OBJ := $(TEST_SRC:%.c=$(B)/%.o)
TEST_BIN := $(B)/tests/check_smtpx

GEN_HDR := include/libsmtpx/version.h
PC := $(B)/libsmtpx.pc
MANPAGES := $(sort $(wildcard man/*.[1-8]))

.PHONY: all lib progs adapters check check-san check-unit check-interop \
	check-install check-poll check-symbols check-man check-layering demo \
	bench bench-msg bench-dedupe bench-ack bench-scale install uninstall clean format format-check \
	deps-check deps-demo deps-bench deps-scale check-valgrind check-tlsfail \
	deps-valgrind coverage deps-coverage
.DELETE_ON_ERROR:

all: lib progs adapters $(PC)
lib: $(STATIC) $(SHARED)
progs: $(PROG_BIN)
adapters: $(ADAPTER_BIN)

$(GEN_HDR): include/libsmtpx/version.h.in configure.ac
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@VERSION_MAJOR@/$(VERSION_MAJOR)/' \
	    -e 's/@VERSION_MINOR@/$(VERSION_MINOR)/' \
	    -e 's/@VERSION_PATCH@/$(VERSION_PATCH)/' $< > $@

$(B)/lib/%.o: lib/%.c $(GEN_HDR)
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -MMD -MP -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJ) lib/libsmtpx.map
	$(CC) -shared $(SANFLAGS) $(LDFLAGS) -Wl,-soname,$(SHARED_SONAME) \
	    -Wl,--version-script=lib/libsmtpx.map -Wl,--no-undefined \
	    -o $@ $(LIB_OBJ) $(LIB_LIBS)
	ln -sf $(@F) $(B)/$(SHARED_SONAME)
	ln -sf $(@F) $(B)/libsmtpx.so

# Programs link the static library: they run from the build tree.
$(B)/examples/%.o: examples/%.c $(GEN_HDR)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -MMD -MP -c $< -o $@

$(B)/examples/%: $(B)/examples/%.o $(STATIC)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LIB_LIBS)

$(B)/examples/smtpx-uv-recv.o: BASE_CFLAGS += $(UV_CFLAGS)
$(B)/examples/smtpx-uv-recv: $(B)/examples/smtpx-uv-recv.o $(STATIC)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LIB_LIBS) $(UV_LIBS)

$(B)/examples/smtpx-event-recv.o: BASE_CFLAGS += $(EVENT_CFLAGS)
$(B)/examples/smtpx-event-recv: $(B)/examples/smtpx-event-recv.o $(STATIC)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LIB_LIBS) $(EVENT_LIBS)

# Tests link the static library so they can reach internal functions.
$(B)/tests/%.o: tests/%.c $(GEN_HDR)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -Ilib -Itests $(CHECK_CFLAGS) -Wno-conversion -MMD -MP \
	    -c $< -o $@

$(TEST_BIN): $(TEST_OBJ) $(STATIC)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $(TEST_OBJ) $(STATIC) $(LIB_LIBS) \
	    $(CHECK_LIBS)

# The .pc names the install directories, so it is written again by
# "make install" for the PREFIX given then (a plain "make" before it does
# not know where the library will go).
PC_SED = sed -e 's|@prefix@|$(PREFIX)|' -e 's|@libdir@|$(LIBDIR)|' \
	    -e 's|@includedir@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@MBEDTLS_LIBS@|$(MBEDTLS_LIBS) $(CARES_LIBS) -lresolv -lpthread|' \
	    pkgconfig/libsmtpx.pc.in

$(PC): pkgconfig/libsmtpx.pc.in configure.ac
	@mkdir -p $(@D)
	$(PC_SED) > $@

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(PROG_BIN:=.d) $(ADAPTER_BIN:=.d)

# ---- dependencies (Debian packages; installed when run as root) ----------
# NO_INSTALL=1: only say what is missing, install nothing.
deps-check:
	@NO_INSTALL=$(NO_INSTALL) scripts/deps.sh check
deps-demo:
	@NO_INSTALL=$(NO_INSTALL) scripts/deps.sh demo
deps-bench:
	@NO_INSTALL=$(NO_INSTALL) scripts/deps.sh bench

deps-scale:
	@NO_INSTALL=$(NO_INSTALL) scripts/deps.sh scale

# ---- tests ---------------------------------------------------------------
# check: unit suites, interop with real clients, the installed library,
# exported symbols and man pages.
check: deps-check
	$(MAKE) all $(TEST_BIN) $(REPLAY_BIN)
	$(MAKE) check-unit check-poll check-replay check-tlsfail check-interop \
	    check-install check-symbols check-man check-layering

# check-san: what CI runs again under SANITIZE=1 (the installed-library and
# man page checks do not depend on the build flags).
check-san: deps-check
	$(MAKE) all $(TEST_BIN) $(REPLAY_BIN)
	SMTPX_INTEROP_FACTOR=3 $(MAKE) check-unit check-poll check-replay \
	    check-interop

check-unit: $(TEST_BIN)
	$(TEST_BIN)

# The loop, socket and PROXY suites again, on the poll() backend.
check-poll:
	$(MAKE) LOOP=poll $(B)/poll/tests/check_smtpx
	CK_RUN_SUITE=loop $(B)/poll/tests/check_smtpx
	CK_RUN_SUITE=posix $(B)/poll/tests/check_smtpx
	CK_RUN_SUITE=proxy $(B)/poll/tests/check_smtpx

# check-tlsfail: mbedTLS allocates with the C library's calloc, outside
# smtpx_mem; a preloaded calloc that fails on purpose sweeps a TLS session
# through the mbedTLS adapter (tests/preload/).  Not with SANITIZE=1: the
# sanitizers own the allocator and must come first in the process.
PRELOAD_LIB := $(B)/tests/preload/libfailcalloc.so
TLSFAIL := $(B)/tests/preload/tlsfail
PRELOAD_CFLAGS := -std=c99 -D_GNU_SOURCE -Iinclude $(WARN) -O2 -g

$(PRELOAD_LIB): tests/preload/failcalloc.c
	@mkdir -p $(@D)
	$(CC) $(PRELOAD_CFLAGS) -fPIC -shared -o $@ $<

$(TLSFAIL): tests/preload/tlsfail.c $(STATIC) $(GEN_HDR)
	@mkdir -p $(@D)
	$(CC) $(PRELOAD_CFLAGS) -o $@ $< $(STATIC) $(LIB_LIBS)

ifeq ($(SANITIZE),1)
check-tlsfail:
	@echo "check-tlsfail: not with SANITIZE=1"
else
check-tlsfail: $(PRELOAD_LIB) $(TLSFAIL)
	LD_PRELOAD=$(CURDIR)/$(PRELOAD_LIB) $(TLSFAIL)
endif

check-interop: all
	tests/interop/run.sh $(B)

check-install: all
	tests/install-test.sh $(B)

check-symbols: lib
	tests/symbols-test.sh $(SHARED)

# check-man: every page is valid mdoc and every public function has one;
# the C examples of the EXAMPLES sections compile with the library's
# warnings and -Werror, against include/ alone, and those with main() link
# against the static library (tests/man-examples-test.py says which blocks
# are C); the checker is shown to fail on faults planted in a page of its
# own.
MAN_EXAMPLES = tests/man-examples-test.py --cc '$(CC)' --lib $(STATIC) \
	--libs '$(LIB_LIBS)' --ldflags '$(SANFLAGS) $(LDFLAGS)'

check-man: $(STATIC)
	tests/man-test.sh $(MANPAGES)
	$(MAN_EXAMPLES) $(MANPAGES)
	$(MAN_EXAMPLES) --self-test

# The layers point down (tests/layering-test.py), and the check itself
# catches a violation planted in a copy of the tree.
check-layering:
	tests/layering-test.py .
	tests/layering-test.py --self-test .

# check-valgrind: the unit suite in one process (CK_FORK=no) and the
# interop tests with every example (the libuv and libevent receivers too)
# started under valgrind's memcheck (the tests run wrapper scripts from
# $(B)/vg/examples); any error or leak (definite, indirect or possible)
# fails.  tests/valgrind.supp holds the few suppressions, for Debian's
# libraries only, each explained.
VALGRIND := valgrind --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect,possible \
	--show-leak-kinds=definite,indirect,possible --num-callers=30 \
	--suppressions=$(CURDIR)/tests/valgrind.supp
VG := $(B)/vg

check-valgrind: deps-check deps-valgrind
	$(MAKE) all $(TEST_BIN)
	CK_FORK=no $(VALGRIND) -q $(TEST_BIN)
	rm -rf $(VG) && mkdir -p $(VG)/examples $(VG)/logs
	for p in $(PROGS) $(notdir $(ADAPTER_BIN)); do \
	    printf '#!/bin/sh\nexec %s --log-file=%s/%%p.log %s "$$@"\n' \
	        "$(VALGRIND)" "$(CURDIR)/$(VG)/logs" \
	        "$(CURDIR)/$(B)/examples/$$p" >$(VG)/examples/$$p; \
	    chmod +x $(VG)/examples/$$p; \
	done
	SMTPX_INTEROP_SLOW=1 tests/interop/run.sh $(VG)
	@bad=$$(grep -L 'ERROR SUMMARY: 0 errors' $(VG)/logs/*.log | \
	    xargs -r grep -l 'ERROR SUMMARY'); \
	if [ -n "$$bad" ]; then cat $$bad; \
	    echo "check-valgrind: errors in $$bad"; exit 1; fi; \
	echo "check-valgrind: $$(ls $(VG)/logs | wc -l) program runs," \
	    "$$(grep -l 'ERROR SUMMARY: 0 errors' $(VG)/logs/*.log | wc -l)" \
	    "ended with 0 errors and 0 leaks (the others were killed)"

deps-valgrind:
	@scripts/deps.sh valgrind

# coverage: the unit suite, the fuzz replays and the interop tests on a
# build with gcov (in build/cov), then line and branch coverage of lib/
# per file and per module (gcovr).  The counters are updated atomically:
# code run on several threads at once (the queue's group commit, the
# relay's loops) would otherwise leave counts that gcovr cannot read.
COV := build/cov
COV_VARS := B=$(COV) \
	CFLAGS='-O0 -g --coverage -fprofile-update=atomic -DSMTPX_COVERAGE' \
	LDFLAGS=--coverage
coverage: deps-check deps-coverage
	find $(COV) -name '*.gcda' -delete 2>/dev/null || true
	$(MAKE) $(COV_VARS) all $(COV)/tests/check_smtpx \
	    $(FUZZ_TARGETS:%=$(COV)/tests/fuzz/replay_%)
	SMTPX_INTEROP_FACTOR=3 $(MAKE) $(COV_VARS) check-unit check-replay \
	    check-interop
	gcovr -r . -f lib/ --object-directory $(COV) -s --txt \
	    $(COV)/coverage-lines.txt --json-summary $(COV)/coverage.json
	gcovr -r . -f lib/ --object-directory $(COV) --branches --txt \
	    $(COV)/coverage-branches.txt
	@cat $(COV)/coverage-lines.txt $(COV)/coverage-branches.txt
	@scripts/coverage-summary.py $(COV)/coverage.json

deps-coverage:
	@scripts/deps.sh coverage

# ---- demo and benchmarks -------------------------------------------------
demo: deps-demo
	$(MAKE) all
	scripts/demo.sh $(B)

$(B)/bench/heap: bench/heap.c $(STATIC) $(GEN_HDR)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -o $@ $< $(STATIC) $(LIB_LIBS)

$(B)/bench/sendbench: bench/sendbench.c $(STATIC) $(GEN_HDR)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -o $@ $< $(STATIC) $(LIB_LIBS)

$(B)/bench/tlsbench: bench/tlsbench.c $(STATIC) $(GEN_HDR)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -pthread -o $@ $< $(STATIC) $(LIB_LIBS)

$(B)/bench/msgbench: bench/msgbench.c $(STATIC) $(GEN_HDR)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -o $@ $< $(STATIC) $(LIB_LIBS)

# GMime 3 is needed only here, to compare with.
$(B)/bench/gmimebench: bench/gmimebench.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Wall -Wextra $$($(PKG_CONFIG) --cflags gmime-3.0) \
	    -o $@ $< $$($(PKG_CONFIG) --libs gmime-3.0)

$(B)/bench/libesmtp: bench/libesmtp.c
	@mkdir -p $(@D)
	$(CC) -O2 -o $@ $< $$($(PKG_CONFIG) --cflags --libs libesmtp-1.0)

$(B)/bench/nfq-delay: bench/nfq-delay.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -D_DEFAULT_SOURCE -o $@ $< -lnetfilter_queue

bench: deps-bench
	$(MAKE) all $(B)/bench/heap $(B)/bench/sendbench $(B)/bench/tlsbench \
	    $(B)/bench/nfq-delay $(B)/bench/libesmtp $(B)/bench/msgbench $(B)/bench/gmimebench
	bench/run.sh $(B)
	bench/msg.sh $(B)

# bench-msg: the message layer alone (parser against GMime 3 and Python's
# email package, memory, build and send).
bench-msg: deps-bench
	$(MAKE) all $(B)/bench/msgbench $(B)/bench/gmimebench
	bench/msg.sh $(B)

# bench-dedupe: receiving once and acknowledging (bench/dedupe.sh): a
# Maildir alone, with --dedupe, with --dedupe --ack, under smtp-source in
# the same run as smtp-sink and a private Postfix; syncs counted by strace.
bench-dedupe: deps-bench
	$(MAKE) all
	bench/dedupe.sh $(B)

bench-ack: deps-bench
	$(MAKE) all
	/usr/bin/python3 bench/ack.py $(B)

# The scale benchmarks (bench/scale.sh): heavier, each load bounded.
$(B)/bench/hold: bench/hold.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -o $@ $<

$(B)/bench/engine: bench/engine.c $(STATIC) $(GEN_HDR)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -o $@ $< $(STATIC) $(LIB_LIBS)

# dotscan measures an internal function: it alone may include lib/.
$(B)/bench/dotscan: tests/perf/dotscan.c $(STATIC) $(GEN_HDR)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -Ilib -o $@ $< $(STATIC) $(LIB_LIBS)

bench-scale: deps-scale
	$(MAKE) all $(B)/bench/hold $(B)/bench/engine $(B)/bench/dotscan \
	    $(B)/bench/tlsbench
	nice bench/scale.sh $(B)

# ---- install -------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/libsmtpx \
	    $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
	    $(DESTDIR)$(MANDIR)/man7
	install -m 644 include/libsmtpx/*.h $(DESTDIR)$(INCLUDEDIR)/libsmtpx/
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SHARED)) $(DESTDIR)$(LIBDIR)/$(SHARED_SONAME)
	ln -sf $(notdir $(SHARED)) $(DESTDIR)$(LIBDIR)/libsmtpx.so
	$(PC_SED) > $(DESTDIR)$(PKGCONFIGDIR)/libsmtpx.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/libsmtpx.pc
	$(if $(PROG_BIN),install -m 755 $(PROG_BIN) $(DESTDIR)$(BINDIR)/)
	for m in $(filter %.1,$(MANPAGES)); do \
	    install -m 644 $$m $(DESTDIR)$(MANDIR)/man1/ || exit 1; done
	for m in $(filter %.7,$(MANPAGES)); do \
	    install -m 644 $$m $(DESTDIR)$(MANDIR)/man7/ || exit 1; done
	for m in $(filter %.3,$(MANPAGES)); do \
	    install -m 644 $$m $(DESTDIR)$(MANDIR)/man3/ || exit 1; \
	    for n in $$(sed -n 's/^\.Nm \([a-z0-9_]*\).*/\1/p' $$m | sort -u); do \
	        [ "$$n.3" = "$${m##*/}" ] || \
	        echo ".so man3/$${m##*/}" >$(DESTDIR)$(MANDIR)/man3/$$n.3 || exit 1; \
	    done; \
	done

uninstall:
	rm -rf $(DESTDIR)$(INCLUDEDIR)/libsmtpx
	rm -f $(DESTDIR)$(LIBDIR)/libsmtpx.a $(DESTDIR)$(LIBDIR)/libsmtpx.so* \
	    $(DESTDIR)$(PKGCONFIGDIR)/libsmtpx.pc
	rm -f $(PROGS:%=$(DESTDIR)$(BINDIR)/%)
	rm -f $(patsubst man/%,$(DESTDIR)$(MANDIR)/man1/%,$(filter %.1,$(MANPAGES)))
	rm -f $(patsubst man/%,$(DESTDIR)$(MANDIR)/man3/%,$(filter %.3,$(MANPAGES)))
	rm -f $(patsubst man/%,$(DESTDIR)$(MANDIR)/man7/%,$(filter %.7,$(MANPAGES)))
	for n in $$(sed -n 's/^\.Nm \(smtpx_[a-z0-9_]*\).*/\1/p' $(filter %.3,$(MANPAGES))); do \
	    rm -f $(DESTDIR)$(MANDIR)/man3/$$n.3; done

# ---- housekeeping --------------------------------------------------------
clean:
	rm -rf build $(GEN_HDR)

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)
	tests/man-examples-test.py --format $(MANPAGES)

# ---- fuzzing (clang's libFuzzer) ----------------------------------------
# Every tests/fuzz/fuzz_*.c is a libFuzzer target.  make check replays each
# target's seeds (tests/fuzz/seeds/TARGET/) and the inputs that once made
# it fail (tests/fuzz/regress/TARGET/) through a small driver built with
# the ordinary compiler, so no clang is needed for that.
#
#   make fuzz-run SECONDS=N   build every target with clang
#                             (-fsanitize=fuzzer,address,undefined) and run
#                             each for N seconds (default 60), niced; new
#                             corpus entries go to build/fuzz/corpus/TARGET,
#                             a failing input to build/fuzz/crash-TARGET-*
#   make fuzz-build           only build them
FUZZ_TARGETS := $(sort $(patsubst tests/fuzz/%.c,%,\
	$(wildcard tests/fuzz/fuzz_*.c)))
REPLAY_BIN := $(FUZZ_TARGETS:%=$(B)/tests/fuzz/replay_%)
REPLAY_OBJ := $(FUZZ_TARGETS:%=$(B)/tests/fuzz/%.o) $(B)/tests/fuzz/replay.o
.SECONDARY: $(REPLAY_OBJ)

$(B)/tests/fuzz/replay_%: $(B)/tests/fuzz/%.o $(B)/tests/fuzz/replay.o \
	    $(STATIC)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $^ $(LIB_LIBS)

-include $(REPLAY_OBJ:.o=.d)

check-replay: $(REPLAY_BIN)
	@for t in $(FUZZ_TARGETS); do \
	    $(B)/tests/fuzz/replay_$$t tests/fuzz/seeds/$$t \
	        tests/fuzz/regress/$$t || exit 1; \
	done

FUZZ_SECONDS ?= 60
SECONDS ?= $(FUZZ_SECONDS)
FZ := build/fuzz
FUZZ_CC ?= clang
FUZZ_CFLAGS := -std=c99 -D_POSIX_C_SOURCE=200809L -Iinclude -Ilib -Itests \
	-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all $(CARES_CFLAGS)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FZ)/%.o)
FUZZ_BIN := $(FUZZ_TARGETS:%=$(FZ)/%)

$(FZ)/lib/%.o: lib/%.c $(GEN_HDR)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -DSMTPX_BUILDING \
	    -MMD -MP -c $< -o $@

$(FUZZ_BIN): $(FZ)/%: tests/fuzz/%.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) \
	    $(LIB_LIBS)

-include $(FUZZ_LIB_OBJ:.o=.d)

.PHONY: fuzz fuzz-build fuzz-run deps-fuzz check-replay
deps-fuzz:
	@scripts/deps.sh fuzz

fuzz-build: deps-fuzz
	$(MAKE) $(FUZZ_BIN)

# The dictionaries: reply.dict for what a client reads, sasl.dict for the
# SASL engines, smtp.dict for the rest.
fuzz-run: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FZ)/corpus/$$t; \
	    case $$t in \
	    fuzz_client|fuzz_reply|fuzz_ext) dict=tests/fuzz/reply.dict ;; \
	    fuzz_sasl_*) dict=tests/fuzz/sasl.dict ;; \
	    *) dict=tests/fuzz/smtp.dict ;; \
	    esac; \
	    regress=; \
	    [ -d tests/fuzz/regress/$$t ] && regress=tests/fuzz/regress/$$t; \
	    nice -n 10 $(FZ)/$$t -max_total_time=$(SECONDS) -timeout=10 \
	        -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
	        -dict=$$dict -artifact_prefix=$(FZ)/crash-$$t- \
	        $(FZ)/corpus/$$t tests/fuzz/seeds/$$t $$regress \
	        >$(FZ)/$$t.log 2>&1; \
	    rc=$$?; \
	    runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' \
	        $(FZ)/$$t.log); \
	    echo "fuzz-run: $$t: $${runs:-?} runs in $(SECONDS) s"; \
	    if [ $$rc != 0 ]; then \
	        tail -n 60 $(FZ)/$$t.log; \
	        echo "fuzz-run: $$t failed; the input is in $(FZ)/crash-$$t-*"; \
	        exit 1; \
	    fi; \
	done

fuzz: fuzz-run
