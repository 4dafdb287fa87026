# cpn-fwd (dpdk/): the DPDK data plane (libdpdk-dev, which make deps installs).
# It links cpnctl's config parser and cfg -> map value conversion (config.c,
# cfgmap.c), its /metrics server (metrics.c) and libcpn.
#
#   $(BUILD)/cpn-fwd                      the program (make all)
#   $(BUILD)/selftests/e2e/fwd_pcap       the e2e test's pcap writer and reader
DPDK_CFLAGS := $(shell pkg-config --cflags libdpdk 2>/dev/null)
DPDK_LIBS   := $(shell pkg-config --libs libdpdk 2>/dev/null)
FWD_SRCS := dpdk/cpn_fwd.c dpdk/fwd_env.c dpdk/fwd_loop.c dpdk/fwd_xsk.c userspace/cpnctl/config.c userspace/cpnctl/cfgmap.c \
	userspace/cpnctl/metrics.c userspace/http/cpn_http.c
FWD_DEPS := $(FWD_SRCS) dpdk/fwd.h dpdk/fwd_env.h dpdk/fwd_xsk.h userspace/cpnctl/cpnctl.h userspace/cpnctl/cfgmap.h \
	$(HDRS) $(LIBCPN) $(LIBCPN_H) mk/fwd.mk
FWD_PCAP := $(BUILD)/selftests/e2e/fwd_pcap

EXTRA_BINS  += $(BUILD)/cpn-fwd
EXTRA_TESTS += $(FWD_PCAP)

ifeq ($(strip $(DPDK_LIBS)),)
$(BUILD)/cpn-fwd:
	@echo "cpn-fwd needs DPDK: pkg-config finds no libdpdk (Debian package libdpdk-dev; make deps)" >&2
	@exit 1
else
# DPDK's flags (-include rte_config.h, -march) from pkg-config; its headers
# build clean under -Wall -Wextra -Werror, no -Wno- needed.
$(BUILD)/cpn-fwd: $(FWD_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iuserspace/cpnctl -Idpdk $(CFLAGS) $(DPDK_CFLAGS) $(FWD_SRCS) $(LIBCPN) \
		-o $@ $(DPDK_LIBS) $(LIBBPF) -lyaml -lmicrohttpd -lpthread -lm
endif

$(FWD_PCAP): selftests/e2e/fwd_pcap.c $(BPFT_LIB) $(BPFT_HDRS) $(HDRS) $(SKELS) $(LIBCPN) $(LIBCPN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iselftests/bpf $(CFLAGS) $< $(BPFT_LIB) $(LIBCPN) -o $@ $(LIBBPF) -lm
