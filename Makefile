# cpn — top-level build. `make help` lists the targets.
#
# Every C source is compiled once per flavour into an object under
# $(BUILD)/obj (programs) or $(BUILD)/obj-san (the test flavour, under ASan
# and UBSan); programs link objects and libcpn. Header dependencies are
# tracked by the compiler (-MMD). The BPF objects are built next to their
# source (bpf/cpn_router.bpf.o) so that `bpftool prog loadall
# bpf/cpn_router.bpf.o …` works from the tree root. Each component has a
# fragment in mk/ (mk/README).

BUILD     ?= build
OBJ       := $(BUILD)/obj
SOBJ      := $(BUILD)/obj-san
CC        ?= gcc
CLANG     ?= clang
BPFTOOL   ?= bpftool
ARCH      := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

CPPFLAGS  += -Iinclude -Iuserspace/lib -I$(BUILD)
CFLAGS    ?= -O2 -g
CFLAGS    += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE
DEPFLAGS  := -MMD -MP
SANITIZE  ?= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LIBBPF    := $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf -lelf -lz)
LIBXDP    := $(shell pkg-config --libs libxdp 2>/dev/null)
CMOCKA    := -lcmocka

BPF_CFLAGS := -target bpf -O2 -g -std=gnu11 -Wall -Wextra -Werror -Wno-unused-function -Wno-unused-parameter \
	-D__TARGET_ARCH_$(ARCH) -mcpu=v3 -Iinclude -I/usr/include/$(MULTIARCH)

# What the fragments add to: programs that are installed, benchmark
# programs (built by `all`, not installed), test programs (`make tests`).
PROGS       :=
BENCH_PROGS :=
TEST_PROGS  :=

.DELETE_ON_ERROR:
.SUFFIXES:
.PHONY: all tests deps test test-unit test-bpf bench bench-xdp demo demo-fleet install clean help format \
	check-format

all:

# ---- compiling ----------------------------------------------------------
# One rule per flavour. Directories add their include paths and flags as
# pattern-specific variables in their fragments. Objects wait for the BPF
# skeletons (order only): some include them.
$(OBJ)/%.o: %.c | skels
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(SOBJ)/%.o: %.c | skels
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SANITIZE) $(DEPFLAGS) -c $< -o $@

# obj(FILES...), sobj(FILES...): the objects of sources in each flavour.
obj  = $(patsubst %.c,$(OBJ)/%.o,$(1))
sobj = $(patsubst %.c,$(SOBJ)/%.o,$(1))

# Link: objects and archives in $^ (headers filtered out), then LIBS.
define LINK
@mkdir -p $(dir $@)
$(CC) $(CFLAGS) $(LDFLAGS) $(filter %.o,$^) $(filter %.a,$^) -o $@ $(LIBS)
endef
define LINK_SAN
@mkdir -p $(dir $@)
$(CC) $(CFLAGS) $(SANITIZE) $(LDFLAGS) $(filter %.o,$^) $(filter %.a,$^) -o $@ $(LIBS)
endef

# In this order: each may use what the ones before it define.
include mk/bpf.mk mk/lib.mk mk/cpnctl.mk mk/fwd.mk mk/worker.mk mk/tools.mk mk/bench.mk \
	mk/tests.mk mk/fuzz.mk $(wildcard mk/install.mk)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

all: $(PROGS) $(BENCH_PROGS)
tests: $(TEST_PROGS)

help:
	@echo "make deps        install the Debian packages cpn needs, then check them"
	@echo "make all         programs, libcpn, BPF objects, benchmark programs"
	@echo "make tests       the test programs (make test builds them too)"
	@echo "make test        build and run every test suite"
	@echo "make fuzz        build the fuzz targets, run each FUZZ_SECONDS (600) (mk/fuzz.mk)"
	@echo "make bench       every benchmark and docs/BENCHMARKS.md (BENCH_QUICK=1: <= 5 min)"
	@echo "                 one of them: make bench-xdp, bench-fwd, bench-sim, ..."
	@echo "make demo        netns testbed demo (see README)"
	@echo "make demo-fleet  the same with three routers behind ECMP"
	@echo "make install     DESTDIR=... PREFIX=/usr/local (see mk/install.mk)"
	@echo "make deb         the Debian package, in .. (dpkg-buildpackage -us -uc -b)"
	@echo "make format      clang-format every C source and header"

deps:
	@tools/deps.sh

# deps first, then a make of its own: the build reads pkg-config when the
# Makefile is parsed, which must happen after the packages are there.
test: deps
	@$(MAKE) --no-print-directory all tests
	@selftests/run.sh

test-unit: tests
	@selftests/run.sh unit

test-bpf: tests
	@selftests/run.sh bpf

# Every benchmark, the report docs/BENCHMARKS.md, docs/bench/*.png and
# bench/results.json (bench/bench-all.sh; BENCH_QUICK=1 for the short run).
bench: deps
	@$(MAKE) --no-print-directory all
	bench/bench-all.sh

bench-xdp: deps
	@$(MAKE) --no-print-directory $(BUILD)/bench-xdp
	$(BUILD)/bench-xdp

demo: deps
	@$(MAKE) --no-print-directory all
	@tools/demo.sh

demo-fleet: deps
	@$(MAKE) --no-print-directory all
	@tools/demo.sh --fleet

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BPF_OBJS)
