# The test programs (selftests/): `make tests`, and `make test` builds them
# before it runs selftests/run.sh. Sanitised (ASan, UBSan) but for the CUDA
# test on a real GPU, whose driver and ASan's shadow memory do not mix.
#
#   selftests/unit/   policy core, wire format, config, kernels, histograms, M/M/k,
#                     the client library
#   selftests/bpf/    the real cpn_router.bpf.o under BPF_PROG_TEST_RUN
#   selftests/gpu/    the CUDA backend against the CPU backend (a GPU, or its
#                     CPU emulation in selftests/gpu/emu)
#   selftests/e2e/    helpers of the namespace tests (their scripts need no build)
#   selftests/dpdk/   the planes-agree fixture
T := $(BUILD)/selftests
CUDA_EMU_DIR  := $(T)/gpu/emu
CUDA_EMU_SO   := $(CUDA_EMU_DIR)/libcpn_cuda.so

$(SOBJ)/selftests/bpf/%.o $(OBJ)/selftests/bpf/%.o: CPPFLAGS += -Iselftests/bpf
$(SOBJ)/selftests/unit/%.o: CPPFLAGS += -Igpu -Itools/cpn-load -Itools/cpn-sim -Iuserspace/cpnctl
$(SOBJ)/selftests/gpu/%.o $(OBJ)/selftests/gpu/%.o: CPPFLAGS += -Igpu
$(SOBJ)/selftests/e2e/%.o $(OBJ)/selftests/e2e/%.o: CPPFLAGS += -Igpu
$(SOBJ)/selftests/dpdk/%.o: CPPFLAGS += -Iselftests/bpf

# ---- unit --------------------------------------------------------------------
UNIT_PLAIN := test_proto test_sched test_mmk test_late
$(addprefix $(T)/unit/,$(UNIT_PLAIN)): LIBS := $(CMOCKA) -lm
$(T)/unit/%: $(SOBJ)/selftests/unit/%.o $(LIBCPN_SAN_A)
	$(LINK_SAN)

$(T)/unit/test_config: LIBS := $(CMOCKA) -lyaml $(LIBBPF) -lm
$(T)/unit/test_worker_lib: LIBS := $(CMOCKA) -lmicrohttpd $(SODIUM_LIBS) -lpthread -lm
# test_client: the client library against a fake node thread on 127.0.0.1.
$(T)/unit/test_client: LIBS := $(CMOCKA) $(SODIUM_LIBS) -lpthread -lm
$(T)/unit/test_load_hist: LIBS := $(CMOCKA) -lm
$(T)/unit/test_load_hist: $(call sobj,selftests/unit/test_load_hist.c tools/cpn-load/hist.c)
	$(LINK_SAN)

# test_kernels: the kernels and backend choice; it loads $(BUILD)/libcpn_cuda.so
# where nvcc built one, and the emulated one.
$(SOBJ)/selftests/unit/test_kernels.o: CPPFLAGS += -DCPN_BUILD_DIR='"$(abspath $(BUILD))"' \
	-DCPN_EMU_DIR='"$(abspath $(CUDA_EMU_DIR))"'
$(T)/unit/test_kernels: LIBS := $(CMOCKA) $(KERNEL_LIBS)
$(T)/unit/test_kernels: $(call sobj,selftests/unit/test_kernels.c $(KERNEL_SRCS)) $(LIBCPN_SAN_A) \
		| $(CUDA_EMU_SO)
	$(LINK_SAN)

# test_kernel_http: the HTTP bridge against an upstream of libmicrohttpd.
$(T)/unit/test_kernel_http: LIBS := $(CMOCKA) $(CURL_LIBS) -lmicrohttpd -lpthread -lm
$(T)/unit/test_kernel_http: $(call sobj,selftests/unit/test_kernel_http.c gpu/kernel_http.c) \
		$(LIBCPN_SAN_A)
	$(LINK_SAN)

UNIT_TESTS := $(patsubst selftests/unit/%.c,$(T)/unit/%,$(wildcard selftests/unit/test_*.c))

# ---- CUDA: on a GPU, and on its CPU emulation --------------------------------
# test_cuda: CUDA against CPU, run by selftests/e2e/test_cuda.sh where a GPU is.
$(OBJ)/selftests/gpu/test_cuda.o: CPPFLAGS += -DCPN_BUILD_DIR='"$(abspath $(BUILD))"'
$(T)/gpu/test_cuda: LIBS := $(KERNEL_LIBS) -lpthread
$(T)/gpu/test_cuda: $(call obj,selftests/gpu/test_cuda.c $(KERNEL_SRCS)) $(LIBCPN_A)
	$(LINK)

# The CUDA backend on the CPU: backend_cuda.cu compiled by the host C++ compiler
# against selftests/gpu/emu (CUDA runtime and cuBLAS stand-ins, CPU threads for
# GPU threads; blocks of 64 threads and 8192-float score chunks so that small
# tables take every path), and test_cuda.c on smaller shapes against it. Every
# machine runs it in the unit suite, under the sanitizers.
CXX_EMU_FLAGS ?= -O2 -g
$(CUDA_EMU_SO): gpu/cuda/backend_cuda.cu gpu/cpn_kernels.h $(wildcard selftests/gpu/emu/*.h)
	@mkdir -p $(dir $@)
	$(CXX) -x c++ -std=gnu++17 $(CXX_EMU_FLAGS) -Wall -Wextra -Werror -Wno-unknown-pragmas \
		-D_GNU_SOURCE -DTOPK_THREADS=64 -DSCORE_ELEMS=8192 -Iselftests/gpu/emu -Igpu \
		$(SANITIZE) -fPIC -shared $< -o $@ -lopenblas -lpthread

$(SOBJ)/selftests/gpu/test_cuda-emu.o: selftests/gpu/test_cuda.c | skels
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SANITIZE) $(DEPFLAGS) -DCPN_CUDA_EMU \
		-DCPN_BUILD_DIR='"$(abspath $(CUDA_EMU_DIR))"' -c $< -o $@
$(T)/unit/test_cuda_emu: LIBS := $(KERNEL_LIBS) -lpthread
$(T)/unit/test_cuda_emu: $(SOBJ)/selftests/gpu/test_cuda-emu.o $(call sobj,$(KERNEL_SRCS)) \
		$(LIBCPN_SAN_A) | $(CUDA_EMU_SO)
	$(LINK_SAN)

# ---- bpf ----------------------------------------------------------------------
BPFT_LIB := $(SOBJ)/selftests/bpf/cpn_test.o
BPF_TESTS := $(patsubst selftests/bpf/%.c,$(T)/bpf/%,$(wildcard selftests/bpf/test_*.c))
$(BPF_TESTS): LIBS := $(CMOCKA) $(LIBBPF) -lm
$(T)/bpf/%: $(SOBJ)/selftests/bpf/%.o $(BPFT_LIB) $(LIBCPN_SAN_A)
	$(LINK_SAN)
# test_metrics renders cpnctl's exposition: its metrics.c and libmicrohttpd.
$(T)/bpf/test_metrics: LIBS := $(CMOCKA) $(LIBBPF) -lyaml -lmicrohttpd -lm
$(T)/bpf/test_metrics: $(SOBJ)/userspace/cpnctl/metrics.o
$(SOBJ)/selftests/bpf/test_metrics.o: CPPFLAGS += -Iuserspace/cpnctl

# ---- e2e helpers ------------------------------------------------------------------
# fwd_pcap: the cpn-fwd tests' pcap writer and reader; worker_kcheck: the worker
# test's client (references and tags); cpn-worker-asan: the worker, sanitised;
# ctl_flood: test_daemon_flood's flood of a control port; open_loop:
# test_faults' requests at a fixed rate, one record each.
$(T)/e2e/fwd_pcap: LIBS := -lm
$(T)/e2e/fwd_pcap: $(call sobj,selftests/e2e/fwd_pcap.c) $(LIBCPN_SAN_A)
	$(LINK_SAN)
$(T)/e2e/ctl_flood: $(call sobj,selftests/e2e/ctl_flood.c) $(LIBCPN_SAN_A)
	$(LINK_SAN)
$(T)/e2e/open_loop: LIBS := $(SODIUM_LIBS) -lpthread
$(T)/e2e/open_loop: $(call sobj,selftests/e2e/open_loop.c) $(LIBCPN_SAN_A)
	$(LINK_SAN)
$(T)/e2e/worker_kcheck: LIBS := $(KERNEL_LIBS)
$(T)/e2e/worker_kcheck: $(call sobj,selftests/e2e/worker_kcheck.c $(KERNEL_SRCS)) $(LIBCPN_SAN_A)
	$(LINK_SAN)
$(T)/e2e/cpn-worker-asan: LIBS := $(KERNEL_LIBS) $(CURL_LIBS) -lmicrohttpd $(SODIUM_LIBS) -lpthread
$(T)/e2e/cpn-worker-asan: $(call sobj,$(WORKER_SRCS) $(KERNEL_SRCS)) $(LIBCPN_SAN_A)
	$(LINK_SAN)

# ---- dpdk: the planes-agree fixture -------------------------------------------
# fixture_gen builds the input capture and runs it through the real XDP
# object under BPF_PROG_TEST_RUN to write what cpn-fwd must transmit for it.
$(T)/dpdk/fixture_gen: LIBS := $(LIBBPF) -lyaml -lm
$(T)/dpdk/fixture_gen: $(call sobj,selftests/dpdk/fixture_gen.c) $(BPFT_LIB) $(LIBCPN_SAN_A)
	$(LINK_SAN)

# xdp_count.bpf.o: a foreign XDP program for the coexistence test.
selftests/e2e/xdp_count.bpf.o: | $(BUILD)/bpfdeps

TEST_PROGS += $(UNIT_TESTS) $(T)/unit/test_cuda_emu $(T)/gpu/test_cuda $(CUDA_EMU_SO) $(BPF_TESTS) \
	$(T)/e2e/fwd_pcap $(T)/e2e/ctl_flood $(T)/e2e/open_loop $(T)/e2e/worker_kcheck $(T)/e2e/cpn-worker-asan $(T)/dpdk/fixture_gen \
	selftests/e2e/xdp_count.bpf.o
