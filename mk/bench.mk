# The benchmarks (bench/): `make bench` runs them all (bench/bench-all.sh);
# each has a target of its own. Two are C programs:
#
#   $(BUILD)/bench-xdp        the router's cost per packet under
#                             BPF_PROG_TEST_RUN (with the tests' router harness)
#   $(BUILD)/bench-insns      the BPF instructions and helper calls of one
#                             packet per path (bench/bpf_interp.c, checked
#                             against the kernel's run)
#   $(BUILD)/bench-fwd-pcap   writes cpn-fwd's input capture
$(OBJ)/bench/%.o $(SOBJ)/bench/%.o: CPPFLAGS += -Iselftests/bpf

$(BUILD)/bench-xdp: LIBS := $(LIBBPF) -lm
$(BUILD)/bench-xdp: $(call obj,bench/bench-xdp.c bench/xdp_paths.c selftests/bpf/cpn_test.c) \
		$(LIBCPN_A)
	$(LINK)

$(BUILD)/bench-insns: LIBS := $(LIBBPF) -lm
$(BUILD)/bench-insns: $(call obj,bench/bench-insns.c bench/bpf_interp.c bench/xdp_paths.c \
		selftests/bpf/cpn_test.c) $(LIBCPN_A)
	$(LINK)

# The same, sanitised (ASan, UBSan): what test_bench_insns runs.
$(BUILD)/selftests/e2e/bench-insns-asan: LIBS := $(LIBBPF) -lm
$(BUILD)/selftests/e2e/bench-insns-asan: $(call sobj,bench/bench-insns.c bench/bpf_interp.c \
		bench/xdp_paths.c selftests/bpf/cpn_test.c) $(LIBCPN_SAN_A)
	$(LINK_SAN)
TEST_PROGS += $(BUILD)/selftests/e2e/bench-insns-asan

$(BUILD)/bench-fwd-pcap: LIBS := -lm
$(BUILD)/bench-fwd-pcap: $(call obj,bench/bench-fwd-pcap.c) $(LIBCPN_A)
	$(LINK)

BENCH_PROGS += $(BUILD)/bench-xdp $(BUILD)/bench-insns $(BUILD)/bench-fwd-pcap

.PHONY: bench-insns bench-fwd bench-fwd-ir bench-fwdrate bench-latency bench-sched bench-sim bench-worker
bench-insns: $(BUILD)/bench-insns
	$(BUILD)/bench-insns

bench-fwd: $(BUILD)/bench-fwd-pcap $(BUILD)/cpn-fwd
	bench/bench-fwd.sh --ir

# cpn-fwd's instructions per request alone (callgrind; deterministic).
bench-fwd-ir: $(BUILD)/bench-fwd-pcap $(BUILD)/cpn-fwd
	bench/bench-fwd.sh --ir-only

bench-fwdrate: $(BUILD)/cpn-pktgen $(BUILD)/cpnctl bpf/cpn_router.bpf.o tools/cpn-pktgen/cpn_sink.bpf.o
	bench/bench-fwdrate.sh --json-out docs/bench/fwdrate.json --plot-dir docs/bench

bench-latency: $(BUILD)/cpnctl $(BUILD)/cpn-worker $(BUILD)/cpn-load bpf/cpn_router.bpf.o \
		bpf/cpn_pass.bpf.o
	bench/bench-latency.sh --json-out docs/bench/latency.json

bench-sched: $(BUILD)/cpnctl $(BUILD)/cpn-worker $(BUILD)/cpn-load $(BUILD)/cpn-mmk \
		$(BUILD)/cpn-sim bpf/cpn_pass.bpf.o
	bench/bench-sched.sh --json-out docs/bench/sched.json --plot-dir docs/bench

bench-sim: $(BUILD)/cpn-sim $(BUILD)/cpn-mmk
	bench/bench-sim.sh --plot-dir docs/bench

bench-worker: $(BUILD)/cpn-worker $(BUILD)/cpn-load
	bench/bench-worker.sh --json-out docs/bench/worker.json --plot-dir docs/bench
