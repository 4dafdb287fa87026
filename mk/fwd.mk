# cpn-fwd (dpdk/): the DPDK data plane. DPDK's flags (-include rte_config.h,
# -march) come from pkg-config; its headers build clean under -Wall -Wextra
# -Werror.
DPDK_CFLAGS := $(shell pkg-config --cflags libdpdk 2>/dev/null)
DPDK_LIBS   := $(shell pkg-config --libs libdpdk 2>/dev/null)
FWD_SRCS    := $(wildcard dpdk/*.c)

$(OBJ)/dpdk/%.o: CPPFLAGS += -Idpdk
$(OBJ)/dpdk/%.o: CFLAGS += $(DPDK_CFLAGS)
# The packet path (fwd_loop.c, router.h inlined into it) is a long chain of
# checks: GCC's guessed branch probabilities left the request path below its
# hot threshold, compiled for size (a divide for a division by a constant,
# for one). Compiled for speed throughout instead: +15-20 % Mpps
# (docs/BENCHMARKS.md, "DPDK forwarder").
$(OBJ)/dpdk/fwd_loop.o: CFLAGS += -fno-guess-branch-probability --param hot-bb-frequency-fraction=100000

# pkg-config names every DPDK library; link only those cpn-fwd uses.
$(BUILD)/cpn-fwd: LDFLAGS += -Wl,--as-needed
$(BUILD)/cpn-fwd: LIBS := $(DPDK_LIBS) $(LIBBPF) -lyaml -lmicrohttpd -lpthread -lm
ifeq ($(strip $(DPDK_LIBS)),)
$(BUILD)/cpn-fwd:
	@echo "cpn-fwd needs DPDK: pkg-config finds no libdpdk (Debian package libdpdk-dev; make deps)" >&2
	@exit 1
else
$(BUILD)/cpn-fwd: $(call obj,$(FWD_SRCS)) $(LIBCPN_A)
	$(LINK)
endif

PROGS += $(BUILD)/cpn-fwd
