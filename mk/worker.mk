# cpn-worker (gpu/): the compute node, a program of libcpn's worker library
# (cpn/worker.h, userspace/worker/, built by mk/lib.mk) around its built-in
# kernels (gpu/worker_kernels.c) and the HTTP bridge to a local inference
# server (gpu/kernel_http.c, on libcurl). The kernels' compute and backends (CPU
# with OpenBLAS; CUDA as $(BUILD)/libcpn_cuda.so, where nvcc is) are in
# gpu/kernels.c, backend_cpu.c, backend_pick.c and gpu/cuda/.
#
# cpn_backend_pick() looks for libcpn_cuda.so next to the executable, so a
# program in $(BUILD)/ finds $(BUILD)/libcpn_cuda.so.
KERNEL_SRCS := gpu/kernels.c gpu/backend_cpu.c gpu/backend_pick.c
KERNEL_LIBS := -lopenblas -ldl -lm
CURL_LIBS   := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
WORKER_SRCS := $(filter-out $(KERNEL_SRCS),$(wildcard gpu/*.c))

$(OBJ)/gpu/%.o $(SOBJ)/gpu/%.o: CPPFLAGS += -Igpu

$(BUILD)/cpn-worker: LIBS := $(KERNEL_LIBS) $(CURL_LIBS) -lmicrohttpd $(SODIUM_LIBS) -lpthread
$(BUILD)/cpn-worker: $(call obj,$(WORKER_SRCS) $(KERNEL_SRCS)) $(LIBCPN_A)
	$(LINK)

PROGS += $(BUILD)/cpn-worker

# ---- CUDA backend (where nvcc is) -------------------------------------------
# NVCC=... picks another compiler; CUDA_HOME defaults to the one above its bin/.
NVCC        ?= /usr/local/cuda/bin/nvcc
NVCC_PATH   := $(shell command -v $(NVCC) 2>/dev/null)
CUDA_HOME   ?= $(patsubst %/bin/,%,$(dir $(NVCC_PATH)))
CUDA_LIBDIR ?= $(CUDA_HOME)/lib64
NVCC_FLAGS  ?= -O2 -std=c++17
# SASS for Ampere (sm_80; also runs on sm_86/89) and Hopper (sm_90, H100/H200),
# and compute_90 PTX that the driver compiles for newer GPUs.
NVCC_ARCH   := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
	-gencode arch=compute_90,code=compute_90
CUDA_SO     := $(BUILD)/libcpn_cuda.so

ifneq ($(NVCC_PATH),)
PROGS += $(CUDA_SO)
endif

# Only the entry point (CPN_CUDA_ENTRY) is exported; cuBLAS and the CUDA runtime
# are found through the rpath, also where CUDA is not in ld.so's search path.
$(CUDA_SO): gpu/cuda/backend_cuda.cu gpu/cpn_kernels.h
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) $(NVCC_ARCH) -Igpu --Werror all-warnings \
		-Xcompiler -fPIC,-fvisibility=hidden,-Wall,-Wextra,-Werror \
		-shared -cudart shared $< -o $@ \
		-L$(CUDA_LIBDIR) -lcublas -lcudart -Xlinker -rpath,$(CUDA_LIBDIR)

# examples/worker.c: an application of the worker library, built as one
# would be, against the shared library and the installed-style headers
# (the -rpath only so that it runs from the build tree). Built by `all`,
# not installed; selftests/e2e/test_worker_py.sh runs it.
$(BUILD)/examples/worker: examples/worker.c include/cpn/worker.h $(LIBCPN_SO)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iinclude $(LDFLAGS) $< -o $@ -L$(BUILD) -lcpn -Wl,-rpath,$(abspath $(BUILD))

BENCH_PROGS += $(BUILD)/examples/worker
