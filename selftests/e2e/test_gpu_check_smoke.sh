#!/usr/bin/env bash
# bench/gpu-check.sh's plumbing on a machine without a GPU: with no
# nvidia-smi it stops at once, saying there is no GPU; with an nvidia-smi
# stand-in that lists a GPU but no driver behind it, the CUDA suite fails
# (a GPU listed and a backend that cannot load is a failure, never a skip),
# the benchmark still measures the CPU backend and records CUDA as skipped
# with the reason, and the script says how many steps failed. --quick, one
# benchmark: about 15 s.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
export BUILD
need_cmd python3 timeout
need_file "$BUILD/cpn-worker" "$BUILD/cpn-load" "$BUILD/selftests/gpu/test_cuda"

TMP=$(mktemp -d /tmp/cpn-gpu-check.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
echo "1..3"

# 1. No nvidia-smi: no GPU, exit 1, nothing else run.
mkdir -p "$TMP/nobin"
for c in bash sed mkdir cat grep env; do ln -s "$(command -v "$c")" "$TMP/nobin/$c"; done
timeout 30 env PATH="$TMP/nobin" "$(command -v bash)" bench/gpu-check.sh --out "$TMP/none" >"$TMP/none.out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "no GPU: nothing to check" "$TMP/none.out" && [ ! -e "$TMP/none/test_cuda.log" ]; then
	ok "without_nvidia_smi_gpu_check_stops_saying_there_is_no_gpu"
else
	not_ok "without_nvidia_smi_gpu_check_stops_saying_there_is_no_gpu" "rc=$rc" "$TMP/none.out"
fi

# 2, 3. A GPU listed, no driver behind it.
mkdir -p "$TMP/bin"
cat >"$TMP/bin/nvidia-smi" <<'SH'
#!/bin/sh
case "$*" in
*query*) echo "Stand-in GPU, 0.0, 1 MiB, 1 MHz" ;;
*) echo "GPU 0: Stand-in GPU (UUID: GPU-0)" ;;
esac
SH
chmod +x "$TMP/bin/nvidia-smi"
PATH="$TMP/bin:$PATH" timeout 120 bench/gpu-check.sh --out "$TMP/out" --quick --steps tests,default \
	>"$TMP/out.txt" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "gpu-check: test_cuda: exit 1" "$TMP/out.txt" &&
	grep -q "^not ok 1 - cuda_backend_loads_where_a_gpu_is" "$TMP/out/test_cuda.log" &&
	grep -q "gpu-check: 1 step(s) failed" "$TMP/out.txt"; then
	ok "a_gpu_listed_whose_backend_cannot_load_fails_the_cuda_suite"
else
	not_ok "a_gpu_listed_whose_backend_cannot_load_fails_the_cuda_suite" "rc=$rc" "$TMP/out.txt"
fi
if python3 - "$TMP/out/worker-default.json" >"$TMP/json.txt" 2>&1 <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
st = {(r["kernel"], r["backend"]): r for r in d["results"]}
assert st[("mlp", "cpu")]["status"] == "ok" and st[("vsearch", "cpu")]["status"] == "ok", st
for k in ("mlp", "vsearch"):
    r = st[(k, "cuda")]
    assert r["status"] == "skipped" and "cuda backend" in r["reason"], r
assert d["machine"]["gpu"] == ["Stand-in GPU, 0.0, 1 MiB, 1 MHz"], d["machine"]
assert d["batches"] == [1, 8, 64, 256], d["batches"]
PY
	ok "the_benchmark_measures_the_cpu_and_records_cuda_skipped_with_the_reason"
else
	not_ok "the_benchmark_measures_the_cpu_and_records_cuda_skipped_with_the_reason" "$TMP/json.txt"
fi
