# flowpin: one Makefile for the whole tree. Quiet unless V=1.
#
#   make            build everything (library, BPF objects, skeletons, programs, tests)
#   make test       install deps, build, run every test tier (unit, bpf, lab, fuzz)
#   make test-sanitize  unit and BPF tiers built with ASan + UBSan (build/san), zero reports
#   make fuzz       long fuzzing run of every target (FUZZ_SECONDS each, default 600)
#   make demo       install deps, build, run the lab demo (results in build/lab-results.md)
#   make bench      benchmarks, results in bench/results.md
#                   (test, test-sanitize, fuzz, demo and bench need root: run by another
#                   user, they re-run themselves with sudo)
#   make install    flowpin, flowpin(8), systemd units, example config (PREFIX=/usr/local,
#                   DESTDIR); make uninstall removes them. Never writes /etc.
#   make format     reformat C sources with .clang-format
#   make lint       clang-format check + cppcheck + the Grafana dashboard is valid JSON
#   make clean

.DELETE_ON_ERROR:
# Keep BPF objects and skeletons: they are inputs to several programs.
.SECONDARY:
.SUFFIXES:

V ?= 0
ifeq ($(V),0)
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
else
Q :=
msg =
endif

CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
BUILD   := build

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wno-missing-field-initializers
# Extra flags for every userspace object and link (make test-sanitize sets them).
SANITIZE ?=
CFLAGS   += $(SANITIZE)
CPPFLAGS += -Iinclude -I$(BUILD)/skel -I$(BUILD)/gen -D_GNU_SOURCE
LDLIBS   := -lbpf -lxdp -lyaml -lpcap -lelf -lz -lmicrohttpd -levent -lcurl -ljson-c -lcap -lcrypto -lm

BPF_CFLAGS := -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-Iinclude -I/usr/include/$(shell uname -m)-linux-gnu

HEADERS   := $(wildcard include/flowpin/*.h)
LIB_SRC   := $(wildcard lib/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB       := $(BUILD)/libflowpin.a
BPF_SRC   := $(wildcard bpf/*.bpf.c)
BPF_OBJ   := $(BPF_SRC:bpf/%.bpf.c=$(BUILD)/bpf/%.bpf.o)
SKELS     := $(BPF_SRC:bpf/%.bpf.c=$(BUILD)/skel/%.skel.h)
SRC       := $(wildcard src/*.c)
SRC_OBJ   := $(SRC:%.c=$(BUILD)/%.o)
BIN       := $(BUILD)/flowpin
# The same flowpin again, its XDP program built with another build id: a new build to
# upgrade to, for tests and the lab only (bpf/lb.bpf.c FP_BUILD_ID). Never installed.
REBUILT   := $(if $(wildcard lib/lb.c),$(BUILD)/flowpin-rebuilt)
REBUILT_ID := 2
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
BPFT_SRC  := $(wildcard tests/bpf/test_*.c)
BPFT_BIN  := $(BPFT_SRC:tests/bpf/%.c=$(BUILD)/tests/bpf/%)
LAB_SRC   := $(wildcard lab/*.c)
LAB_BIN   := $(LAB_SRC:lab/%.c=$(BUILD)/lab/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
# Helpers shared by the test programs (packet builders, fixtures), not tests themselves.
TESTLIB_SRC := $(wildcard tests/common/*.c)
TESTLIB_OBJ := $(TESTLIB_SRC:%.c=$(BUILD)/%.o)
TEST_HEADERS := $(wildcard tests/common/*.h tests/bpf/*.h tests/unit/*.h)

.PHONY: all test test-build test-sanitize fuzz fuzz-build demo bench format lint clean deps \
	install uninstall
all: $(BIN) $(REBUILT) $(UNIT_BIN) $(BPFT_BIN) $(LAB_BIN) $(BENCH_BIN)

deps:
	$(Q)bash scripts/deps.sh

$(BUILD)/%.o: %.c $(HEADERS) $(wildcard src/*.h) $(TEST_HEADERS) $(SKELS) | $(BUILD)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# What `lb stats` and the metrics' flowpin_build_info say this build is: git describe
# and the commit, "unknown" outside a git checkout. Rewritten only when it changes.
$(BUILD)/gen/flowpin_version.h: FORCE | $(BUILD)
	$(Q)mkdir -p $(@D)
	$(Q)v=$$(git describe --tags --always --dirty 2>/dev/null || echo unknown); \
	c=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
	printf '#define FP_VERSION "%s"\n#define FP_COMMIT "%s"\n' "$$v" "$$c" >$@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/lib/stats.o: $(BUILD)/gen/flowpin_version.h
.PHONY: FORCE
FORCE:

$(LIB): $(LIB_OBJ)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(HEADERS) $(wildcard bpf/*.h) | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp.o
	$(Q)$(BPFTOOL) gen object $@ $@.tmp.o && rm -f $@.tmp.o

$(BUILD)/skel/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@

$(BIN): $(SRC_OBJ) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/rebuilt/bpf/lb.bpf.o: bpf/lb.bpf.c $(HEADERS) $(wildcard bpf/*.h) | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -DFP_BUILD_ID=$(REBUILT_ID) -c $< -o $@.tmp.o
	$(Q)$(BPFTOOL) gen object $@ $@.tmp.o && rm -f $@.tmp.o

$(BUILD)/rebuilt/skel/lb.skel.h: $(BUILD)/rebuilt/bpf/lb.bpf.o
	$(call msg,SKEL,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) gen skeleton $< name lb > $@

# Its skeleton's directory first: lib/lb.c's "lb.skel.h" is found there.
$(BUILD)/rebuilt/lib/lb.o: lib/lb.c $(HEADERS) $(BUILD)/rebuilt/skel/lb.skel.h $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -I$(BUILD)/rebuilt/skel $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/flowpin-rebuilt: $(SRC_OBJ) $(BUILD)/rebuilt/lib/lb.o $(filter-out $(BUILD)/lib/lb.o,$(LIB_OBJ))
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB) $(TESTLIB_OBJ) $(HEADERS) $(TEST_HEADERS)
	$(call msg,TEST,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $< $(TESTLIB_OBJ) $(LIB) $(LDLIBS) -lcmocka -lm -o $@

$(BUILD)/tests/bpf/%: tests/bpf/%.c $(LIB) $(TESTLIB_OBJ) $(HEADERS) $(TEST_HEADERS) $(SKELS)
	$(call msg,TEST,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $< $(TESTLIB_OBJ) $(LIB) $(LDLIBS) -lcmocka -lm -o $@

# The lab's QUIC server and client: Debian's libngtcp2 (0.12) with its GnuTLS crypto.
$(BUILD)/lab/fpquic: LDLIBS += -lngtcp2 -lngtcp2_crypto_gnutls -lgnutls

$(BUILD)/lab/%: lab/%.c lab/labutil.h $(LIB) $(HEADERS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $< $(LIB) $(LDLIBS) -lm -o $@

$(BUILD)/bench/%: bench/%.c $(LIB) $(TESTLIB_OBJ) $(HEADERS) $(TEST_HEADERS) $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $< $(TESTLIB_OBJ) $(LIB) $(LDLIBS) -lm -o $@

$(BUILD):
	$(Q)mkdir -p $@

# The unit and BPF tiers again, every userspace object (library, flowpin, tests) built
# with AddressSanitizer + UndefinedBehaviorSanitizer in a build directory of its own.
# The first report aborts its process; reports go to files (child processes such as
# the flowpin binary a test runs included) and any report fails the program that made
# it (scripts/run-tests.sh, SANITIZER_REPORTS). Built with clang: GCC 12's UBSan
# ignores log_path and writes to stderr, which a test may swallow.
SAN_BUILD := $(BUILD)/san
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

# Fuzzing (tests/fuzz/README.md): libFuzzer targets built with clang, ASan and UBSan
# over their own objects of the library. `make test` runs a bounded pass (tier fuzz);
# `make fuzz` runs each target FUZZ_SECONDS (run it under the heavy-job lock).
FUZZ_BUILD  := $(BUILD)/fuzz
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN    := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/bin/%)
FUZZ_OBJ    := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o) $(TESTLIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_CFLAGS := -O1 -g -std=gnu11 -Wall -Wextra -Werror -Wno-missing-field-initializers \
	$(SAN_FLAGS)
FUZZ_SECONDS ?= 600

$(FUZZ_BUILD)/obj/%.o: %.c $(HEADERS) $(wildcard src/*.h) $(TEST_HEADERS) $(SKELS)
	$(call msg,FUZZCC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(CPPFLAGS) -Itests $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/bin/%: tests/fuzz/%.c $(FUZZ_OBJ) $(wildcard tests/fuzz/*.h) $(HEADERS) \
		$(TEST_HEADERS) $(SKELS)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(CPPFLAGS) -Itests $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) \
		$(LDLIBS) -lm -o $@

# Without clang's libFuzzer runtime the fuzz tier reports itself skipped. The skeletons
# first, here: a sub-make building them while `all` does would race on the objects.
fuzz-build: $(SKELS)
	$(Q)if scripts/fuzz.sh --available; then \
		$(MAKE) --no-print-directory $(FUZZ_BIN); \
	else echo "  fuzz: no libFuzzer runtime in $(CLANG): fuzz targets not built"; fi

# test, test-sanitize, fuzz, demo and bench load BPF programs and build network
# namespaces: they need root.
# Run by another user they re-run themselves under $(SUDO), passing on the variables
# below (sudo resets the environment); root on a fresh Debian has no sudo and needs none.
SUDO ?= sudo
ROOT_GOALS := test test-sanitize fuzz demo bench
SUDO_VARS := TIERS TEST_FILTER V CI FUZZ_SECONDS
sudo_args = $(foreach v,$(SUDO_VARS),$(if $(filter environment% command%,$(origin $(v))),'$(v)=$($(v))'))
# Under sudo: hand build/ back to the user who ran make, so their next `make` can write it.
give_back = if [ -n "$${SUDO_UID:-}" ]; then chown -R "$$SUDO_UID:$$SUDO_GID" $(BUILD); fi

# Not $(MAKE) in that recipe: `make -n` would run it.
remake := $(MAKE)

ifneq ($(shell id -u),0)
$(ROOT_GOALS):
	$(Q)if command -v $(SUDO) >/dev/null 2>&1; then \
		echo "make $@: needs root, re-running it with $(SUDO)"; \
		exec $(SUDO) $(remake) --no-print-directory $@ $(sudo_args); \
	else \
		echo "make $@: needs root (BPF programs, network namespaces) and '$(SUDO)' is" \
			"not installed: run it as root" >&2; \
		exit 1; \
	fi
else
# Every tier that exists; one summary line at the end; non-zero on any failure.
test: deps
	$(Q)$(MAKE) --no-print-directory all fuzz-build || { $(give_back); exit 1; }
	$(Q)bash scripts/run-tests.sh; rc=$$?; $(give_back); exit $$rc

test-sanitize: deps
	$(Q)$(MAKE) --no-print-directory BUILD=$(SAN_BUILD) SANITIZE="$(SAN_FLAGS)" CC=$(CLANG) \
		$(SAN_BUILD)/flowpin $(REBUILT:$(BUILD)/%=$(SAN_BUILD)/%) \
		$(UNIT_BIN:$(BUILD)/%=$(SAN_BUILD)/%) \
		$(BPFT_BIN:$(BUILD)/%=$(SAN_BUILD)/%) || { $(give_back); exit 1; }
	$(Q)BUILD_DIR=$(SAN_BUILD) TIERS="$${TIERS:-unit bpf}" \
		SANITIZER_REPORTS=$(SAN_BUILD)/reports bash scripts/run-tests.sh; \
		rc=$$?; $(give_back); exit $$rc

fuzz: deps
	$(Q)$(MAKE) --no-print-directory all fuzz-build || { $(give_back); exit 1; }
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh --long; rc=$$?; $(give_back); exit $$rc

demo: deps
	$(Q)$(MAKE) --no-print-directory all || { $(give_back); exit 1; }
	$(Q)bash lab/demo; rc=$$?; $(give_back); exit $$rc

bench: deps
	$(Q)$(MAKE) --no-print-directory all || { $(give_back); exit 1; }
	$(Q)bash bench/run; rc=$$?; $(give_back); exit $$rc
endif


# Installation (docs/operator-lb.md "Installing"). The units name the binary by its
# installed path: they are made from dist/systemd/*.in (@SBINDIR@) for this PREFIX.
PREFIX     ?= /usr/local
DESTDIR    ?=
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/flowpin
UNITDIR    ?= $(PREFIX)/lib/systemd/system
UNIT_IN    := $(wildcard dist/systemd/*.in)
INSTALLED  := $(SBINDIR)/flowpin $(MANDIR)/man8/flowpin.8 $(DOCDIR)/flowpin.yaml.example \
	$(patsubst dist/systemd/%.in,$(UNITDIR)/%,$(UNIT_IN))

# Builds nothing but the binary: the units are made straight into their place, so a
# PREFIX is never taken from an earlier run.
install: $(BIN)
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -D -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/flowpin
	$(Q)install -D -m 0644 docs/flowpin.8 $(DESTDIR)$(MANDIR)/man8/flowpin.8
	$(Q)install -D -m 0644 examples/flowpin.yaml $(DESTDIR)$(DOCDIR)/flowpin.yaml.example
	$(Q)install -d -m 0755 $(DESTDIR)$(UNITDIR)
	$(Q)for u in $(UNIT_IN); do \
		t=$(DESTDIR)$(UNITDIR)/$$(basename $$u .in); \
		sed -e 's|@SBINDIR@|$(SBINDIR)|g' $$u >$$t && chmod 0644 $$t || exit 1; \
	done

uninstall:
	$(call msg,UNINST,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	$(Q)rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

format:
	$(Q)clang-format -i $(C_FILES)

lint:
	$(Q)clang-format --dry-run --Werror $(C_FILES)
	$(Q)cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
		--inline-suppr --suppress=missingIncludeSystem -Iinclude \
		-D__u8=uint8_t $(LIB_SRC) $(SRC)
	$(Q)python3 -m json.tool docs/grafana-flowpin.json >/dev/null

clean:
	$(call msg,CLEAN,$(BUILD))
	$(Q)rm -rf $(BUILD)
