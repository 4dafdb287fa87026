# cpn — top-level build. `make help` lists the targets.
#
# BPF objects are built next to their source (bpf/cpn_router.bpf.o) so that
# `bpftool prog loadall bpf/cpn_router.bpf.o …` works from the tree root.
# Everything else goes under build/.

BUILD     ?= build
CC        ?= gcc
CLANG     ?= clang
BPFTOOL   ?= bpftool
ARCH      := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

CPPFLAGS  += -Iinclude -Iuserspace/lib -Iuserspace/http -I$(BUILD)
CFLAGS    ?= -O2 -g
CFLAGS    += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE
SANITIZE  ?= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LIBBPF    := $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf -lelf -lz)
CMOCKA    := -lcmocka

BPF_CFLAGS := -target bpf -O2 -g -std=gnu11 -Wall -Wextra -Werror -Wno-unused-function -Wno-unused-parameter \
	-D__TARGET_ARCH_$(ARCH) -mcpu=v3 -Iinclude -I/usr/include/$(MULTIARCH)

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(BPF_SRCS:.bpf.c=.bpf.o)
SKELS    := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
HDRS     := $(wildcard include/cpn/*.h)

UNIT_SRCS := $(wildcard selftests/unit/test_*.c)
UNIT_BINS := $(patsubst %.c,$(BUILD)/%,$(UNIT_SRCS))
BPFT_SRCS := $(wildcard selftests/bpf/test_*.c)
BPFT_BINS := $(patsubst %.c,$(BUILD)/%,$(BPFT_SRCS))
BPFT_LIB  := $(filter-out $(BPFT_SRCS),$(wildcard selftests/bpf/*.c))
BPFT_HDRS := $(wildcard selftests/bpf/*.h)
LIBCPN    := $(wildcard userspace/lib/*.c)
LIBCPN_H  := $(wildcard userspace/lib/*.h)
CPNCTL_SRCS := $(wildcard userspace/cpnctl/*.c) userspace/http/cpn_http.c
CPNCTL_HDRS := $(wildcard userspace/cpnctl/*.h)
TOOL_BINS := $(BUILD)/bench-xdp $(BUILD)/cpnctl

.PHONY: all deps test test-unit test-bpf bench bench-xdp demo clean help format check-format

all: $(BPF_OBJS) $(SKELS) $(UNIT_BINS) $(BPFT_BINS) $(TOOL_BINS)

help:
	@echo "make deps      install the Debian packages cpn needs (idempotent)"
	@echo "make all       build the XDP object, skeletons, tools and tests"
	@echo "make test      build and run every test suite"
	@echo "make bench     every benchmark and the report docs/BENCHMARKS.md (BENCH_QUICK=1: <= 5 min)"
	@echo "               one of them: make bench-xdp, bench-fwd, bench-sim"
	@echo "make demo      netns testbed demo (see README)"
	@echo "make format    clang-format every C source and header"

deps:
	@tools/deps.sh

# ---- BPF ----------------------------------------------------------------
bpf/%.bpf.o: bpf/%.bpf.c $(HDRS) $(wildcard bpf/*.h)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: bpf/%.bpf.o
	@mkdir -p $(dir $@)
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@.tmp && mv $@.tmp $@

# ---- tests --------------------------------------------------------------
# test_config also needs the config parser, libcpn, libyaml and libbpf.
$(BUILD)/selftests/unit/test_config: selftests/unit/test_config.c userspace/cpnctl/config.c \
		userspace/cpnctl/cpnctl.h $(HDRS) $(LIBCPN) $(LIBCPN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iuserspace/cpnctl $(CFLAGS) $(SANITIZE) $< userspace/cpnctl/config.c \
		userspace/lib/cpn_maps.c userspace/lib/cpn_addr.c -o $@ $(CMOCKA) -lyaml $(LIBBPF) -lm

$(BUILD)/selftests/unit/%: selftests/unit/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SANITIZE) $< -o $@ $(CMOCKA) -lm

$(BUILD)/selftests/bpf/%: selftests/bpf/%.c $(BPFT_LIB) $(BPFT_HDRS) $(HDRS) $(SKELS) $(BPF_OBJS) $(LIBCPN) $(LIBCPN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iselftests/bpf $(CFLAGS) $(SANITIZE) $< $(BPFT_LIB) $(LIBCPN) -o $@ $(CMOCKA) $(LIBBPF) -lm

# test_metrics also takes cpnctl's metrics.c and libmicrohttpd (an explicit
# rule: it wins over the pattern above).
$(BUILD)/selftests/bpf/test_metrics: selftests/bpf/test_metrics.c userspace/cpnctl/metrics.c userspace/http/cpn_http.c userspace/cpnctl/cpnctl.h $(BPFT_LIB) $(BPFT_HDRS) $(HDRS) $(SKELS) $(BPF_OBJS) $(LIBCPN) $(LIBCPN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iselftests/bpf -Iuserspace/cpnctl $(CFLAGS) $(SANITIZE) $< userspace/cpnctl/metrics.c userspace/http/cpn_http.c $(BPFT_LIB) $(LIBCPN) -o $@ $(CMOCKA) $(LIBBPF) -lmicrohttpd -lm

# ---- programs -----------------------------------------------------------
$(BUILD)/cpnctl: $(CPNCTL_SRCS) $(CPNCTL_HDRS) $(HDRS) $(LIBCPN) $(LIBCPN_H) $(SKELS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iuserspace/cpnctl $(CFLAGS) $(CPNCTL_SRCS) $(LIBCPN) -o $@ $(LIBBPF) -lyaml -lmicrohttpd -lpthread

# ---- tools --------------------------------------------------------------
$(BUILD)/bench-xdp: tools/bench-xdp.c $(HDRS) $(SKELS) $(BPF_OBJS) $(BPFT_LIB) $(BPFT_HDRS) $(LIBCPN) $(LIBCPN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iselftests/bpf $(CFLAGS) $< $(BPFT_LIB) $(LIBCPN) -o $@ $(LIBBPF) -lm

# ---- run ----------------------------------------------------------------
# deps first, then a make of its own: the build reads pkg-config when the
# Makefile is parsed, which must happen after the packages are there.
test: deps
	@$(MAKE) --no-print-directory all
	@selftests/run.sh

test-unit: $(UNIT_BINS)
	@selftests/run.sh unit

test-bpf: $(BPF_OBJS) $(BPFT_BINS) $(TOOL_BINS)
	@selftests/run.sh bpf

# Every benchmark, the report docs/BENCHMARKS.md, docs/bench/*.png and
# bench/results.json (tools/bench-all.sh; BENCH_QUICK=1 for the short run).
bench: deps
	@$(MAKE) --no-print-directory all
	tools/bench-all.sh

bench-xdp: deps
	@$(MAKE) --no-print-directory $(BUILD)/bench-xdp
	$(BUILD)/bench-xdp

demo: deps
	@$(MAKE) --no-print-directory all
	@tools/demo.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) bpf/*.bpf.o

# ---- components with rules of their own (worker, load generator, ...) ---
# Each mk/*.mk adds its programs to EXTRA_BINS (built by `all`) and may add
# test programs to EXTRA_TESTS (built before `make test` runs the suites).
EXTRA_BINS  :=
EXTRA_TESTS :=
include $(sort $(wildcard mk/*.mk))
all: $(EXTRA_BINS) $(EXTRA_TESTS)
