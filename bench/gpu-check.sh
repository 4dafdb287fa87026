#!/usr/bin/env bash
# gpu-check: what only a machine with a GPU can check, in one run.
#
#   1. the GPU and its driver (nvidia-smi);
#   2. libcpn_cuda.so built again with this machine's nvcc, where make and
#      nvcc are there (else the one in $BUILD is used as it is);
#   3. the CUDA suite: selftests/e2e/test_cuda.sh (the CUDA backend against
#      the CPU backend on every shape) and test_kernels (backend choice:
#      "auto" is CUDA exactly when "cuda" can be had), TAP;
#   4. bench/bench-worker.sh, CPU and CUDA backends in the same run:
#      worker-default.json  the default models, B 1, 8, 64, 256;
#      worker-large.json    large models (mlp 1024,4096,4096,1024; vsearch
#                           250000 x 128), B 1, 8, 64, 256;
#      worker-saturation.json  the large models on the GPU alone, B 256 ..
#                           2048: where its throughput stops growing.
#
# Every step's output goes to OUT (logs, TAP, JSON); the last line says how
# many steps failed. A machine without a GPU fails step 1 and stops.
#
# OpenBLAS picks its kernels from the CPU's name: on a virtual CPU it does
# not know it falls back to its oldest (Prescott), whatever the CPU can do,
# and the CPU columns then say little. --openblas-coretype NAME (SkylakeX,
# Haswell, ...) sets them for the CPU backend.
#
# usage: bench/gpu-check.sh --out DIR [--quick] [--openblas-coretype NAME]
#                           [--steps build,tests,default,large,saturation]
#   --quick: one short run of each benchmark (a rehearsal)
#   --steps: the steps after the GPU check (default: all)
#   env: BUILD (build), NVCC (nvcc on PATH, else /usr/local/cuda/bin/nvcc)
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
OUT='' QUICK=0 CORE=() STEPS=build,tests,default,large,saturation
while [ $# -gt 0 ]; do
	case "$1" in
	--out) OUT=${2:-}; shift 2 || exit 2 ;;
	--quick) QUICK=1; shift ;;
	--openblas-coretype) CORE=(--openblas-coretype "${2:-}"); shift 2 || exit 2 ;;
	--steps) STEPS=${2:-}; shift 2 || exit 2 ;;
	*) sed -n '/^# usage:/,/^#   env:/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
[ -n "$OUT" ] || { sed -n '/^# usage:/,/^#   env:/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
mkdir -p "$OUT" || exit 1
failed=0
want() { [[ ",$STEPS," == *,$1,* ]]; }
step() { # name, command...: output to OUT/name.log, status on stdout
	local name=$1 t0=$SECONDS rc
	shift
	"$@" >"$OUT/$name.log" 2>&1
	rc=$?
	echo "gpu-check: $name: exit $rc ($((SECONDS - t0)) s)"
	[ $rc -eq 0 ] || failed=$((failed + 1))
	return $rc
}

# 1. The GPU.
gpu() {
	nvidia-smi -L && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
		--format=csv && nvidia-smi -L | grep -q '^GPU '
}
step gpu gpu || { echo "gpu-check: no GPU: nothing to check"; exit 1; }
cat "$OUT/gpu.log"

# 2. libcpn_cuda.so from this machine's nvcc.
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
if ! want build; then
	:
elif command -v make >/dev/null && [ -x "$NVCC" ]; then
	[ -e "$BUILD/libcpn_cuda.so" ] && mv "$BUILD/libcpn_cuda.so" "$BUILD/libcpn_cuda.so.before"
	if ! step build-cuda make --no-print-directory -B BUILD="$BUILD" NVCC="$NVCC" \
		"$BUILD/libcpn_cuda.so" && [ -e "$BUILD/libcpn_cuda.so.before" ]; then
		echo "gpu-check: the build failed: $BUILD/libcpn_cuda.so as it was" | tee -a "$OUT/build-cuda.log"
		mv "$BUILD/libcpn_cuda.so.before" "$BUILD/libcpn_cuda.so"
	fi
	rm -f "$BUILD/libcpn_cuda.so.before"
else
	echo "gpu-check: no make or nvcc here: $BUILD/libcpn_cuda.so as it is" | tee "$OUT/build-cuda.log"
fi

# 3. The CUDA suite.
if want tests; then
	step test_cuda env BUILD="$BUILD" selftests/e2e/test_cuda.sh
	grep -E '^(not )?ok|^# ' "$OUT/test_cuda.log"
fi
if want tests && [ -x "$BUILD/selftests/unit/test_kernels" ]; then
	step test_kernels env CMOCKA_MESSAGE_OUTPUT=TAP "$BUILD/selftests/unit/test_kernels"
	grep -E '^(not )?ok|GPU found|^# cuda' "$OUT/test_kernels.log"
fi

# 4. Throughput against batch size, CPU and CUDA.
if [ "$QUICK" = 1 ]; then
	runs=1 dur=0.5 warm=0.2
else
	runs=2 dur=1.5 warm=0.5
fi
bench() { # name, bench-worker arguments...
	local name=$1
	shift
	step "$name" env BUILD="$BUILD" bench/bench-worker.sh --json-out "$OUT/$name.json" \
		--duration "$dur" --warmup "$warm" "$@"
	sed -n '/^kernel /,/^wall /p' "$OUT/$name.log"
}
LARGE=(--mlp-dims 1024,4096,4096,1024 --vs-rows 250000 --vs-dim 128)
want default && bench worker-default --runs "$runs" --batches 1,8,64,256 "${CORE[@]}"
want large && bench worker-large --runs 1 --batches 1,8,64,256 "${LARGE[@]}" "${CORE[@]}"
want saturation && bench worker-saturation --runs 1 --backends cuda --batches 256,512,1024,2048 \
	"${LARGE[@]}" --timeout-ms 5000

echo "gpu-check: $failed step(s) failed"
[ "$failed" -eq 0 ]
