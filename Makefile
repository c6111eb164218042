# libsmtpx - hand-written, non-recursive Makefile.
#
#   make            build the library (shared + static) and the programs
#   make demo       install what is missing, then run the end-to-end demo
#   make check      install what is missing, then run the whole test suite
#   make bench      benchmarks against real peers (prints ratios)
#   make bench-scale  the scale benchmarks (throughput, durable receive,
#                   idle sessions, connection storms, the engine, TLS)
#   make install    PREFIX=/usr/local DESTDIR= (headers, libraries, man
#                   pages, programs, libsmtpx.pc)
#   make SANITIZE=1 ...  the same with AddressSanitizer and UBSan, built
#                   in build/san so both builds can live side by side
#   make LOOP=poll ...   the event loop on poll() instead of epoll (in
#                   build/poll, or build/san/poll)
#   make WERROR=1 ...    warnings are errors (CI)
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
	-Ilib $(MBEDTLS_CFLAGS)

LIB_SRC := $(sort $(wildcard lib/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
STATIC := $(B)/libsmtpx.a
SHARED := $(B)/libsmtpx.so.$(SOVERSION)
SHARED_SONAME := libsmtpx.so.$(SOMAJOR)
# -pthread: the loop takes a mutex for smtpx_loop_post().
LIB_LIBS := $(MBEDTLS_LIBS) -pthread

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

TEST_SRC := $(sort $(filter-out tests/fuzz/% tests/perf/%,$(wildcard tests/*.c tests/*/*.c)))
TEST_OBJ := $(TEST_SRC:%.c=$(B)/%.o)
TEST_BIN := $(B)/tests/check_smtpx

GEN_HDR := include/libsmtpx/version.h
PC := $(B)/libsmtpx.pc
MANPAGES := $(sort $(wildcard man/*.[1-8]))

.PHONY: all lib progs adapters check check-san check-unit check-interop check-install \
	check-poll \
	check-symbols check-man check-layering demo bench bench-scale install uninstall clean format \
	format-check deps-check deps-demo deps-bench deps-scale
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

$(PC): pkgconfig/libsmtpx.pc.in configure.ac
	@mkdir -p $(@D)
	sed -e 's|@prefix@|$(PREFIX)|' -e 's|@libdir@|$(LIBDIR)|' \
	    -e 's|@includedir@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@MBEDTLS_LIBS@|$(MBEDTLS_LIBS)|' $< > $@

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(PROG_BIN:=.d) $(ADAPTER_BIN:=.d)

# ---- dependencies (Debian packages; installed when run as root) ----------
deps-check:
	@scripts/deps.sh check
deps-demo:
	@scripts/deps.sh demo
deps-bench:
	@scripts/deps.sh bench

deps-scale:
	@scripts/deps.sh scale

# ---- tests ---------------------------------------------------------------
# check: unit suites, interop with real clients, the installed library,
# exported symbols and man pages.
check: deps-check
	$(MAKE) all $(TEST_BIN)
	$(MAKE) check-unit check-poll check-interop check-install check-symbols \
	    check-man check-layering

# check-san: what CI runs again under SANITIZE=1 (the installed-library and
# man page checks do not depend on the build flags).
check-san: deps-check
	$(MAKE) all $(TEST_BIN)
	$(MAKE) check-unit check-poll check-interop

check-unit: $(TEST_BIN)
	$(TEST_BIN)

# The loop, socket and PROXY suites again, on the poll() backend.
check-poll:
	$(MAKE) LOOP=poll $(B)/poll/tests/check_smtpx
	CK_RUN_SUITE=loop $(B)/poll/tests/check_smtpx
	CK_RUN_SUITE=posix $(B)/poll/tests/check_smtpx
	CK_RUN_SUITE=proxy $(B)/poll/tests/check_smtpx

check-interop: all
	tests/interop/run.sh $(B)

check-install: all
	tests/install-test.sh $(B)

check-symbols: lib
	tests/symbols-test.sh $(SHARED)

check-man:
	tests/man-test.sh $(MANPAGES)

# The layers point down (tests/layering-test.py), and the check itself
# catches a violation planted in a copy of the tree.
check-layering:
	tests/layering-test.py .
	tests/layering-test.py --self-test .

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

$(B)/bench/nfq-delay: bench/nfq-delay.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -D_DEFAULT_SOURCE -o $@ $< -lnetfilter_queue

bench: deps-bench
	$(MAKE) all $(B)/bench/heap $(B)/bench/sendbench $(B)/bench/tlsbench \
	    $(B)/bench/nfq-delay
	bench/run.sh $(B)

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
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	install -m 644 include/libsmtpx/*.h $(DESTDIR)$(INCLUDEDIR)/libsmtpx/
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SHARED)) $(DESTDIR)$(LIBDIR)/$(SHARED_SONAME)
	ln -sf $(notdir $(SHARED)) $(DESTDIR)$(LIBDIR)/libsmtpx.so
	install -m 644 $(PC) $(DESTDIR)$(PKGCONFIGDIR)/
	$(if $(PROG_BIN),install -m 755 $(PROG_BIN) $(DESTDIR)$(BINDIR)/)
	for m in $(filter %.1,$(MANPAGES)); do \
	    install -m 644 $$m $(DESTDIR)$(MANDIR)/man1/ || exit 1; done
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

# ---- fuzzing (clang's libFuzzer; not part of check) ---------------------
# make fuzz FUZZ_SECONDS=60 runs each target for that long.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := fuzz_server fuzz_data fuzz_client fuzz_proxy
FUZZ_CFLAGS := -std=c99 -D_POSIX_C_SOURCE=200809L -Iinclude -Ilib -g -O1 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
.PHONY: fuzz
fuzz: $(GEN_HDR)
	@mkdir -p build/fuzz
	for t in $(FUZZ_TARGETS); do \
	    clang $(FUZZ_CFLAGS) -DSMTPX_BUILDING -o build/fuzz/$$t \
	        tests/fuzz/$$t.c $(LIB_SRC) $(LIB_LIBS) || exit 1; \
	    mkdir -p build/fuzz/$$t.corpus; \
	    build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	        build/fuzz/$$t.corpus tests/fuzz/seeds || exit 1; \
	done
