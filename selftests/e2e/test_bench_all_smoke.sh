#!/usr/bin/env bash
# Smoke test of `make bench` as a whole (bench/bench-all.sh --smoke): the
# benchmarks that need nothing outside this repository run in their smoke
# size, and the report is written: bench/results.json's shape, one section per
# benchmark in docs/BENCHMARKS.md with its command, plots as PNG, and the
# figures measured on a GPU machine (bench/gpu/) carried into both, naming the
# GPU. Into a temporary directory: the committed report is left alone. Not the
# numbers.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
need_root
need_cmd python3 gnuplot timeout
echo "1..5"
TMP=$(mktemp -d /tmp/cpn-bench-all.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
timeout 120 bench/bench-all.sh --smoke --only xdp,sim --results "$TMP/results.json" \
	--plots "$TMP/plots" --doc "$TMP/BENCHMARKS.md" >"$TMP/out" 2>&1
rc=$?
if [ $rc -eq 0 ]; then echo "ok 1 - bench_all_smoke_runs"; else
	echo "not ok 1 - bench_all_smoke_runs (rc=$rc)"
	sed 's/^/# /' "$TMP/out"
fi
if python3 - "$TMP/results.json" <<'PY' 2>"$TMP/err"; then
import json, sys
d = json.load(open(sys.argv[1]))
assert d["mode"] == "smoke" and d["machine"]["nproc"] >= 1 and d["machine"]["cpu"], d["machine"]
for b in ("xdp", "sim"):
    e = d["benchmarks"][b]
    assert e["status"] == "ok" and e["command"] and e["seconds"] >= 0, e
    assert "result" in e, b
assert d["benchmarks"]["xdp"]["summary"]["request_x_trivial"] > 0
PY
	echo "ok 2 - results_json_has_machine_and_each_benchmark_with_command"
else
	echo "not ok 2 - results_json_has_machine_and_each_benchmark_with_command"
	sed 's/^/# /' "$TMP/err"
fi
if grep -q '^## Router cost per packet' "$TMP/BENCHMARKS.md" &&
	grep -q '^## Scale, by simulation' "$TMP/BENCHMARKS.md" &&
	grep -q '^## Many routers, by simulation' "$TMP/BENCHMARKS.md" &&
	grep -q '^`build/bench-xdp ' "$TMP/BENCHMARKS.md" && grep -q '^Machine: ' "$TMP/BENCHMARKS.md"; then
	echo "ok 3 - report_has_a_section_per_benchmark_with_command_and_machine"
else
	echo "not ok 3 - report_has_a_section_per_benchmark_with_command_and_machine"
	sed 's/^/# /' "$TMP/BENCHMARKS.md" | head -40
fi
png_ok=1
for f in xdp_cost.png sim_p99.png sim_many.png; do
	head -c 8 "$TMP/plots/$f" 2>/dev/null | od -An -tx1 | grep -q '89 50 4e 47' || png_ok=0
done
if [ $png_ok -eq 1 ]; then echo "ok 4 - plots_are_png"; else
	echo "not ok 4 - plots_are_png"
	ls -la "$TMP/plots" | sed 's/^/# /'
fi
if python3 - "$TMP/results.json" "$TMP/BENCHMARKS.md" <<'PY' 2>"$TMP/err"; then
import json, sys
d = json.load(open(sys.argv[1]))
g = d["benchmarks"]["worker_gpu"]
assert g["imported"] == "bench/gpu/" and "h200-worker-default" in g["result"], g.keys()
assert any(v > 1 for k, v in g["summary"].items() if "large" in k), g["summary"]
doc = open(sys.argv[2]).read()
assert "## Worker throughput on a GPU (CUDA next to CPU)" in doc
assert "NVIDIA H200" in doc and "| kernel | B | CPU req/s | CUDA req/s |" in doc
PY
	echo "ok 5 - gpu_figures_from_bench_gpu_are_carried_into_the_report_naming_the_gpu"
else
	echo "not ok 5 - gpu_figures_from_bench_gpu_are_carried_into_the_report_naming_the_gpu"
	sed 's/^/# /' "$TMP/err"
fi
