# spanring build.
#
#   make                 build everything into $(B) (default build/gcc)
#   make CC=clang        same with clang (into build/clang)
#   make SAN=asan        AddressSanitizer + UBSan build (build/<cc>-asan)
#   make SAN=tsan        ThreadSanitizer build (build/<cc>-tsan)
#   make test            set up dependencies, then the whole test suite
#                        (gcc, clang, ASan+UBSan, TSan): tests/run-all.sh
#   make check           unit + integration tests of this one build
#   make demo            the end-to-end example (README's first command)
#   make bench           benchmarks; writes docs/BENCHMARKS.md
#   make install         PREFIX=/usr/local DESTDIR= (bin, lib, include,
#                        pkg-config, systemd unit, example config, man pages)
#
# Sources are found by wildcard: lib/*.c form libspanring, lib/common/*.c
# libspanring-common (code more than one program uses; the producer library
# takes only the few objects of LIB_COMMON_SRC), agent/*.c and
# agent/export/*.c the agent (agent/main.c holds main), tools/<name>.c one
# program each, tests/unit/test_*.c one cmocka program each.
# CFLAGS given on the command line are appended (override CFLAGS +=).

CC ?= cc
ifeq ($(origin CC),default)
CC := gcc
endif
CCNAME := $(notdir $(firstword $(CC)))
SAN ?=
B ?= build/$(CCNAME)$(if $(SAN),-$(SAN))
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
DOCDIR ?= $(DATADIR)/doc/spanring
# systemd looks for units of /usr in /usr/lib/systemd/system and of
# /usr/local in /usr/local/lib/systemd/system; /usr's configuration is in /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
PROTOC_C ?= protoc-c

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-unused-parameter -Wformat=2 -Wvla
BASE := -std=gnu11 -g -O2 -fPIC -fvisibility=hidden -D_GNU_SOURCE -DSPANRING_BUILD \
	-Iinclude -Ilib -Ilib/common -Itests/common -I$(B)/gen -MMD -MP
ifeq ($(SAN),asan)
BASE += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDSAN := -fsanitize=address,undefined
else ifeq ($(SAN),tsan)
BASE += -O1 -fsanitize=thread -fno-omit-frame-pointer
LDSAN := -fsanitize=thread
endif
override CFLAGS := $(BASE) $(WARN) $(CFLAGS)
LIBS := -lck -lprotobuf-c -lpthread
# the OTLP exporters' libraries: only where used (not in libspanring.so)
LIBS += -Wl,--as-needed -lnghttp2 -lhttp_parser -lz -lssl -lcrypto -Wl,--no-as-needed
override LDFLAGS := $(LDSAN) $(LDFLAGS)
# Shared objects must resolve every symbol (-z defs), except under TSan:
# clang links its TSan runtime into executables only.
comma := ,
ZDEFS := $(if $(filter tsan,$(SAN)),,-Wl$(comma)-z$(comma)defs)

PROTOS := $(wildcard proto/*.proto)
GEN_C := $(patsubst proto/%.proto,$(B)/gen/%.pb-c.c,$(PROTOS))
GEN_H := $(GEN_C:.c=.h)
GEN_O := $(GEN_C:.c=.o)

# The common library: what the agent, the tools and the tests share. The
# producer library encodes protobuf itself: the protoc-c code (and
# libprotobuf-c) are in the common library only, and libspanring compiles
# in just the common sources listed in LIB_COMMON_SRC (no new dependency).
COMMON_SRC := $(wildcard lib/common/*.c)
COMMON_O := $(patsubst %.c,$(B)/%.o,$(COMMON_SRC)) $(GEN_O)
LIB_COMMON_SRC := lib/common/fdpass.c lib/common/hex.c lib/common/ring.c lib/common/sockpath.c
LIB_SRC := $(wildcard lib/*.c) $(LIB_COMMON_SRC)
LIB_O := $(patsubst %.c,$(B)/%.o,$(LIB_SRC))
AGENT_SRC := $(wildcard agent/*.c agent/export/*.c)
AGENT_LIB_O := $(patsubst %.c,$(B)/%.o,$(filter-out agent/main.c,$(AGENT_SRC)))
TOOL_SRC := $(wildcard tools/*.c)
TOOLS := $(patsubst tools/%.c,$(B)/bin/%,$(TOOL_SRC))
# the demo program (spanring-example) is built, not installed
INSTALL_TOOLS := $(filter-out $(B)/bin/spanring-example,$(TOOLS))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNITS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
TESTHELP_SRC := $(wildcard tests/common/*.c)
TESTHELP_O := $(patsubst %.c,$(B)/%.o,$(TESTHELP_SRC))
BENCH_SRC := $(wildcard tests/bench/*.c)
BENCHES := $(patsubst tests/bench/%.c,$(B)/bench/%,$(BENCH_SRC))

STATIC := $(B)/libspanring.a
SHARED := $(B)/libspanring.so
COMMON := $(B)/libspanring-common.a
AGENTLIB := $(B)/libspanring-agent.a
AGENT := $(if $(wildcard agent/main.c),$(B)/bin/spanring-agent)

.PHONY: all lib check test demo bench install clean setup units
.SECONDARY:
all: $(STATIC) $(SHARED) $(AGENT) $(TOOLS) $(UNITS) $(BENCHES)
lib: $(STATIC) $(SHARED)
units: $(UNITS)

# protoc-c output goes to $(B)/gen; generated code is never committed.
$(B)/gen/%.pb-c.c $(B)/gen/%.pb-c.h: proto/%.proto $(PROTOS)
	@mkdir -p $(B)/gen
	$(PROTOC_C) --c_out=$(B)/gen -Iproto $<

# Generated code is compiled without our extra warnings.
$(B)/gen/%.pb-c.o: $(B)/gen/%.pb-c.c $(GEN_H)
	$(CC) $(BASE) -c $< -o $@

$(B)/%.o: %.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# Include paths by who may use what: the agent's core (agent/) and its
# exporters (agent/export/) name each other's headers without a path, as
# do the tests; the tools' and test programs' headers are for the tests.
$(B)/agent/%.o: override CFLAGS += -Iagent -Iagent/export
$(B)/tests/%.o: override CFLAGS += -Iagent -Iagent/export -Itools -Itests/progs

$(STATIC): $(LIB_O)
	@rm -f $@
	ar rcs $@ $^

$(SHARED): $(LIB_O) lib/libspanring.map
	$(CC) -shared $(ZDEFS) -Wl,--version-script=lib/libspanring.map \
		-Wl,-soname,libspanring.so.0 $(LDFLAGS) -o $@ $(LIB_O) -Wl,--as-needed $(LIBS)

$(COMMON): $(COMMON_O)
	@rm -f $@
	ar rcs $@ $^

$(AGENTLIB): $(AGENT_LIB_O)
	@rm -f $@
	ar rcs $@ $^

$(B)/bin/spanring-agent: $(B)/agent/main.o $(AGENTLIB) $(COMMON) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -Wl,--start-group $(AGENTLIB) $(COMMON) $(STATIC) -Wl,--end-group \
		$(LIBS)

# The tools use the common and the producer library, never the agent's.
$(B)/bin/%: $(B)/tools/%.o $(COMMON) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -Wl,--start-group $(COMMON) $(STATIC) -Wl,--end-group $(LIBS) -lm

# test_agent_nomem fails the agent's allocations on demand.
$(B)/tests/test_agent_nomem: override LDFLAGS += -Wl,--wrap=calloc
$(B)/tests/%: $(B)/tests/unit/%.o $(TESTHELP_O) $(AGENTLIB) $(COMMON) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(TESTHELP_O) -Wl,--start-group $(AGENTLIB) $(COMMON) $(STATIC) \
		-Wl,--end-group -lcmocka $(LIBS) -lm

$(B)/bench/%: $(B)/tests/bench/%.o $(TESTHELP_O) $(AGENTLIB) $(COMMON) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(TESTHELP_O) -Wl,--start-group $(AGENTLIB) $(COMMON) $(STATIC) \
		-Wl,--end-group $(LIBS) -lm

# Unit and integration tests of this build ($(B)).
check: all
	B=$(B) tests/run-checks.sh

# The README's test command: dependencies, then every build and test run.
test:
	tests/run-all.sh

setup:
	tools/setup-deps.sh

demo:
	tools/setup-deps.sh
	$(MAKE) all
	B=$(B) tools/demo.sh

bench:
	tools/setup-deps.sh
	$(MAKE) all
	B=$(B) tests/bench/run.sh

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR)/spanring $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/spanring/*.h $(DESTDIR)$(INCDIR)/spanring/
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/libspanring.so.0
	ln -sf libspanring.so.0 $(DESTDIR)$(LIBDIR)/libspanring.so
	$(if $(AGENT)$(INSTALL_TOOLS),install -m 755 $(AGENT) $(INSTALL_TOOLS) $(DESTDIR)$(BINDIR)/)
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/spanring \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man8
	sed -e 's|@BINDIR@|$(BINDIR)|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g; s|@DOCDIR@|$(DOCDIR)|g' \
		agent/spanring-agent.service > $(DESTDIR)$(UNITDIR)/spanring-agent.service
	chmod 644 $(DESTDIR)$(UNITDIR)/spanring-agent.service
	install -m 644 agent/agent.conf.example $(DESTDIR)$(DOCDIR)/agent.conf.example
	install -m 644 docs/*.md $(DESTDIR)$(DOCDIR)/
	test -e $(DESTDIR)$(SYSCONFDIR)/spanring/agent.conf || \
		install -m 644 agent/agent.conf.example $(DESTDIR)$(SYSCONFDIR)/spanring/agent.conf
	install -m 644 man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/*.3 $(DESTDIR)$(MANDIR)/man3/
	install -m 644 man/*.8 $(DESTDIR)$(MANDIR)/man8/
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|' \
		-e 's|@VERSION@|0.1.0|' lib/spanring.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/spanring.pc

clean:
	rm -rf build

# ---- LD_PRELOAD shim and API stub (lib/preload; README "Tracing unmodified
# programs (LD_PRELOAD)"). The shim is lib/preload/*.c plus the library
# compiled a second time with lib/preload/lib_rename.h (the shim defines a
# few API functions itself); its version script exports only the functions
# it interposes and spanring_*. The --wrap options route the library's own
# descriptor-creating calls and its thread start through lib/preload/pl_fd.c,
# inside the shim only; --as-needed keeps the agent's libraries out of
# every traced process. libspanring-api.so.0 is the no-op API stub that
# programs link against to be traced only when the shim is preloaded.
PRELOAD_SRC := $(wildcard lib/preload/*.c)
PRELOAD_O := $(patsubst %.c,$(B)/%.o,$(PRELOAD_SRC))
PRELOAD_LIB_O := $(patsubst lib/%.c,$(B)/preload/lib/%.o,$(LIB_SRC))
PRELOAD := $(B)/libspanring-preload.so
PRELOAD_WRAP := -Wl,--wrap=memfd_create,--wrap=socket,--wrap=eventfd,--wrap=recvmsg \
	-Wl,--wrap=pthread_create
APISTUB_O := $(patsubst %.c,$(B)/%.o,$(wildcard lib/preload/api/*.c)) $(B)/lib/w3c.o \
	$(B)/lib/common/hex.o
APISTUB := $(B)/libspanring-api.so.0

.PHONY: install-preload
all: $(PRELOAD) $(APISTUB)
install: install-preload

$(B)/preload/lib/%.o: lib/%.c lib/preload/lib_rename.h $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -include lib/preload/lib_rename.h -c $< -o $@

$(PRELOAD): $(PRELOAD_O) $(PRELOAD_LIB_O) lib/preload/preload.map
	$(CC) -shared $(ZDEFS) -Wl,--version-script=lib/preload/preload.map $(PRELOAD_WRAP) \
		$(LDFLAGS) -o $@ $(PRELOAD_O) $(PRELOAD_LIB_O) -Wl,--as-needed $(LIBS)

$(APISTUB): $(APISTUB_O) lib/libspanring.map
	$(CC) -shared $(ZDEFS) -Wl,--version-script=lib/libspanring.map \
		-Wl,-soname,libspanring-api.so.0 $(LDFLAGS) -o $@ $(APISTUB_O)

install-preload: all
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 755 $(PRELOAD) $(DESTDIR)$(LIBDIR)/libspanring-preload.so
	install -m 755 $(APISTUB) $(DESTDIR)$(LIBDIR)/libspanring-api.so.0
	ln -sf libspanring-api.so.0 $(DESTDIR)$(LIBDIR)/libspanring-api.so
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|' \
		-e 's|@VERSION@|0.1.0|' lib/preload/api/spanring-api.pc.in \
		> $(DESTDIR)$(LIBDIR)/pkgconfig/spanring-api.pc

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# Helper programs of the agent's integration tests (tests/progs/*.c, one
# program each, linked like the tools, with the test helpers).
PROG_SRC := $(wildcard tests/progs/*.c)
PROGS := $(patsubst tests/progs/%.c,$(B)/tests/progs/%,$(PROG_SRC))
all: $(PROGS)
$(B)/tests/progs/%: $(B)/tests/progs/%.o $(TESTHELP_O) $(COMMON) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(TESTHELP_O) -Wl,--start-group $(COMMON) $(STATIC) -Wl,--end-group \
		$(LIBS) -lm

# spanring-dump: tools/spanring-dump.c plus its modules in tools/dump/
# (tools/dump/*.c are not programs of their own). Its unit tests
# (tests/unit/test_dump_*.c) link the same modules.
DUMP_SRC := $(wildcard tools/dump/*.c)
DUMP_O := $(patsubst %.c,$(B)/%.o,$(DUMP_SRC))
$(B)/bin/spanring-dump: $(B)/tools/spanring-dump.o $(DUMP_O) $(COMMON) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(DUMP_O) -Wl,--start-group $(COMMON) $(STATIC) -Wl,--end-group \
		$(LIBS) -lm
$(B)/tests/test_dump_%: $(B)/tests/unit/test_dump_%.o $(DUMP_O) $(TESTHELP_O) $(COMMON) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(DUMP_O) $(TESTHELP_O) -Wl,--start-group $(COMMON) $(STATIC) \
		-Wl,--end-group -lcmocka $(LIBS) -lm

# ---- fuzzing (tests/fuzz, docs/SECURITY.md) ---------------------------------
# libFuzzer targets, one program per tests/fuzz/fuzz_*.c, built with clang,
# ASan+UBSan and coverage instrumentation into $(FUZZ_B):
#   make fuzz                          every target FUZZ_SECONDS (300) each
#   make fuzz FUZZ_SECONDS=60 FUZZ_TARGETS="ring config"
# The test command (tests/run-all.sh) runs each briefly and replays the
# committed crash inputs of tests/fuzz/regressions/ (tests/fuzz/run.sh).
FUZZ_B ?= build/fuzz
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?=
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRC))
.PHONY: fuzz fuzz-build fuzzers
fuzzers: $(FUZZERS)
$(B)/fuzz/%: $(B)/tests/fuzz/%.o $(DUMP_O) $(AGENTLIB) $(COMMON) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(DUMP_O) -Wl,--start-group $(AGENTLIB) \
		$(COMMON) $(STATIC) -Wl,--end-group $(LIBS) -lm
fuzz-build:
	$(MAKE) B=$(FUZZ_B) CC=clang SAN=asan CFLAGS=-fsanitize=fuzzer-no-link fuzzers
fuzz: fuzz-build
	B=$(FUZZ_B) tests/fuzz/run.sh --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# A fork-unsafe malloc for the fork tests (tests/malloc/spinmalloc.c,
# preloaded; not with a sanitizer, which brings its own allocator).
ifeq ($(SAN),)
SPINMALLOC := $(B)/tests/libspinmalloc.so
all: $(SPINMALLOC)
$(SPINMALLOC): tests/malloc/spinmalloc.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(WARN) -Wno-missing-prototypes -fvisibility=default -shared -o $@ $<
endif
