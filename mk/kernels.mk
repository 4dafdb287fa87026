# cpn-worker's compute kernels (gpu/cpn_kernels.h): models, reference code,
# the CPU backend (OpenBLAS) and backend choice, built into every program that
# runs kernels; the CUDA backend, $(BUILD)/libcpn_cuda.so, only where nvcc is.
#
# For the fragments of programs that run kernels (cpn-worker):
#   KERNEL_SRCS  the C sources to compile in (they include "cpn_kernels.h")
#   KERNEL_HDRS  their header, for prerequisites
#   KERNEL_LIBS  what to link with
# cpn_backend_pick() looks for libcpn_cuda.so next to the executable, so a
# program in $(BUILD)/ finds $(BUILD)/libcpn_cuda.so.
KERNEL_SRCS := gpu/kernels.c gpu/backend_cpu.c gpu/backend_pick.c
KERNEL_HDRS := gpu/cpn_kernels.h
KERNEL_LIBS := -lopenblas -ldl -lm

# ---- CUDA backend (optional) ------------------------------------------------
# NVCC=... picks another compiler; CUDA_HOME defaults to the one above its bin/.
NVCC       ?= /usr/local/cuda/bin/nvcc
NVCC_PATH  := $(shell command -v $(NVCC) 2>/dev/null)
CUDA_HOME  ?= $(patsubst %/bin/,%,$(dir $(NVCC_PATH)))
CUDA_LIBDIR ?= $(CUDA_HOME)/lib64
NVCC_FLAGS ?= -O2 -std=c++17
# SASS for Ampere (sm_80; also runs on sm_86/89) and Hopper (sm_90, H100/H200),
# and compute_90 PTX that the driver compiles for newer GPUs.
NVCC_ARCH  := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
	-gencode arch=compute_90,code=compute_90
CUDA_SO    := $(BUILD)/libcpn_cuda.so

ifneq ($(NVCC_PATH),)
EXTRA_BINS += $(CUDA_SO)
else ifneq ($(filter all test,$(or $(MAKECMDGOALS),all)),)
$(info kernels: no nvcc at $(NVCC): $(CUDA_SO) is not built, the CUDA backend and its test are skipped)
endif

# Only the entry point (CPN_CUDA_ENTRY) is exported; cuBLAS and the CUDA runtime
# are found through the rpath, also where CUDA is not in ld.so's search path.
$(CUDA_SO): gpu/cuda/backend_cuda.cu $(KERNEL_HDRS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) $(NVCC_ARCH) -Igpu --Werror all-warnings \
		-Xcompiler -fPIC,-fvisibility=hidden,-Wall,-Wextra,-Werror \
		-shared -cudart shared $< -o $@ \
		-L$(CUDA_LIBDIR) -lcublas -lcudart -Xlinker -rpath,$(CUDA_LIBDIR)

# ---- tests -------------------------------------------------------------------
# test_kernels: cmocka, sanitizers; it loads $(BUILD)/libcpn_cuda.so when there.
$(BUILD)/selftests/unit/test_kernels: selftests/unit/test_kernels.c $(KERNEL_SRCS) $(KERNEL_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Igpu $(CFLAGS) $(SANITIZE) -DCPN_BUILD_DIR='"$(abspath $(BUILD))"' \
		-DCPN_EMU_DIR='"$(abspath $(CUDA_EMU_DIR))"' $< $(KERNEL_SRCS) -o $@ $(CMOCKA) $(KERNEL_LIBS)

# test_cuda: CUDA against CPU, run by selftests/e2e/test_cuda.sh. No sanitizers:
# ASan's shadow memory and the CUDA driver do not mix.
$(BUILD)/selftests/gpu/test_cuda: selftests/gpu/test_cuda.c $(KERNEL_SRCS) $(KERNEL_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Igpu $(CFLAGS) -DCPN_BUILD_DIR='"$(abspath $(BUILD))"' $< $(KERNEL_SRCS) \
		-o $@ $(KERNEL_LIBS) -lpthread

# The CUDA backend on the CPU: backend_cuda.cu compiled by the host C++ compiler
# against selftests/gpu/emu (CUDA runtime and cuBLAS stand-ins, CPU threads for
# GPU threads; blocks of 64 threads and 8192-float score chunks so that small
# tables take every path), and test_cuda.c on smaller shapes against it. Every
# machine runs it in the unit suite, under the sanitizers.
CUDA_EMU_DIR  := $(BUILD)/selftests/gpu/emu
CUDA_EMU_SO   := $(CUDA_EMU_DIR)/libcpn_cuda.so
CUDA_EMU_HDRS := $(wildcard selftests/gpu/emu/*.h)
CXX_EMU_FLAGS ?= -O2 -g
$(CUDA_EMU_SO): gpu/cuda/backend_cuda.cu $(KERNEL_HDRS) $(CUDA_EMU_HDRS)
	@mkdir -p $(dir $@)
	$(CXX) -x c++ -std=gnu++17 $(CXX_EMU_FLAGS) -Wall -Wextra -Werror -Wno-unknown-pragmas \
		-D_GNU_SOURCE -DTOPK_THREADS=64 -DSCORE_ELEMS=8192 -Iselftests/gpu/emu -Igpu \
		$(SANITIZE) -fPIC -shared $< -o $@ -lopenblas -lpthread

$(BUILD)/selftests/unit/test_cuda_emu: selftests/gpu/test_cuda.c $(KERNEL_SRCS) $(KERNEL_HDRS) \
		| $(CUDA_EMU_SO)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Igpu $(CFLAGS) $(SANITIZE) -DCPN_CUDA_EMU \
		-DCPN_BUILD_DIR='"$(abspath $(CUDA_EMU_DIR))"' $< $(KERNEL_SRCS) -o $@ $(KERNEL_LIBS) -lpthread

# test_kernels also picks the emulated backend (a GPU found, and none).
$(BUILD)/selftests/unit/test_kernels: | $(CUDA_EMU_SO)

EXTRA_TESTS += $(BUILD)/selftests/unit/test_kernels $(BUILD)/selftests/gpu/test_cuda \
	$(CUDA_EMU_SO) $(BUILD)/selftests/unit/test_cuda_emu
