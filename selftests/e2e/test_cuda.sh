#!/usr/bin/env bash
# The CUDA backend against the CPU backend (selftests/gpu/test_cuda.c), where
# libcpn_cuda.so was built (nvcc present) and a GPU is present. Otherwise one
# skip that says why; never a silent pass. When nvidia-smi lists a GPU, a CUDA
# backend that cannot be loaded is a failure, not a skip.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
T=$BUILD/selftests/gpu/test_cuda
SO=$BUILD/libcpn_cuda.so

gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
	gpu=1
fi
if [ ! -f "$SO" ]; then
	echo "1..1"
	if command -v "$NVCC" >/dev/null 2>&1; then
		echo "not ok 1 - cuda_backend_built # nvcc is at $NVCC but $SO is missing: make all"
		exit 1
	fi
	echo "ok 1 # SKIP nvcc absent ($NVCC): $SO not built"
	exit 0
fi
if [ ! -x "$T" ]; then
	echo "1..1"
	echo "not ok 1 - test_cuda_built # $T is missing: make all"
	exit 1
fi
CPN_EXPECT_GPU=$gpu exec timeout 600 "$T" --so-dir "$BUILD"
