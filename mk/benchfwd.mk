# bench-fwd: cpn-fwd's Mpps on one lcore replaying a pcap of cpn
# requests (net_pcap infinite_rx -> net_null), next to dpdk-testpmd 5tswap
# and io on the same ports in the same run. tools/bench-fwd.sh does the work;
# this builds its pcap writer and adds it to `make bench`.
#
#   $(BUILD)/bench-fwd-pcap    writes the input capture (pkt_build frames)
BENCHFWD_PCAP := $(BUILD)/bench-fwd-pcap

$(BENCHFWD_PCAP): tools/bench-fwd-pcap.c $(BPFT_LIB) $(BPFT_HDRS) $(HDRS) $(SKELS) $(LIBCPN) \
		$(LIBCPN_H) mk/benchfwd.mk
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iselftests/bpf $(CFLAGS) $< $(BPFT_LIB) $(LIBCPN) -o $@ $(LIBBPF) -lm

EXTRA_BINS  += $(BENCHFWD_PCAP)
EXTRA_TESTS += $(BENCHFWD_PCAP)

.PHONY: bench-fwd
bench-fwd: $(BENCHFWD_PCAP) $(BUILD)/cpn-fwd
	tools/bench-fwd.sh
