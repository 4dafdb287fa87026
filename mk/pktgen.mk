# cpn-pktgen (tools/cpn-pktgen.c): cpn's AF_XDP packet generator, and
# bench-fwdrate (tools/bench-fwdrate.sh): Mpps through a router namespace on
# veth, cpn's XDP steering next to the kernel's forwarding in the same run.
# bpf/cpn_sink.bpf.c (the counting sink) is built by the top-level BPF rule;
# its counter slots live in tools/pktgen_sink.h.
#
#   $(BUILD)/cpn-pktgen     the generator (make all; needs libxdp-dev)
#   make bench-fwdrate      the benchmark (BENCH_QUICK=1: the short version)
PKTGEN      := $(BUILD)/cpn-pktgen
PKTGEN_LIBS := $(shell pkg-config --libs libxdp 2>/dev/null)

bpf/cpn_sink.bpf.o: tools/pktgen_sink.h

EXTRA_BINS += $(PKTGEN)

ifeq ($(strip $(PKTGEN_LIBS)),)
$(PKTGEN):
	@echo "cpn-pktgen needs libxdp: pkg-config finds no libxdp (Debian package libxdp-dev; make deps)" >&2
	@exit 1
else

$(PKTGEN): tools/cpn-pktgen.c tools/pktgen_sink.h $(BPFT_LIB) $(BPFT_HDRS) $(HDRS) $(SKELS) \
		$(LIBCPN) $(LIBCPN_H) mk/pktgen.mk
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iselftests/bpf -Itools $(CFLAGS) $< $(BPFT_LIB) $(LIBCPN) -o $@ \
		$(PKTGEN_LIBS) $(LIBBPF) -lpthread -lm
endif

FWDRATE_JSON  ?= docs/bench/fwdrate.json
FWDRATE_PLOTS ?= docs/bench

.PHONY: bench-fwdrate
bench-fwdrate: $(PKTGEN) $(BUILD)/cpnctl bpf/cpn_router.bpf.o bpf/cpn_sink.bpf.o
	tools/bench-fwdrate.sh --json-out $(FWDRATE_JSON) --plot-dir $(FWDRATE_PLOTS)
