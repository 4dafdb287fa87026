#!/usr/bin/env bash
# e2e: bench/bench-fwdrate.sh's plumbing, not its numbers. One round of
# 0.5-s windows (--smoke): every path (kernel, cpn XDP, ceiling) on 1 and 2
# cores must get frames to the sink, the XDP path's all steered by the
# router (the script checks the sink's counters); the JSON must carry the
# command, the machine and every figure with its baseline; the bar chart
# must be a PNG; and neither a finished nor an interrupted run may leave a
# namespace or a pin behind.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
export BUILD

need_root
need_file "$BUILD/cpn-pktgen" "$BUILD/cpnctl" bpf/cpn_router.bpf.o tools/cpn-pktgen/cpn_sink.bpf.o
need_cmd python3 gnuplot bpftool ethtool ip nsenter pgrep timeout
[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs (the benchmark pins the generator and the router apart)"

TMP=$(mktemp -d /tmp/cpn-bench-fwdrate-smoke.XXXXXX)
BG=
cleanup() {
	[ -n "$BG" ] && kill -TERM "$BG" 2>/dev/null && wait "$BG" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

leftovers() { # namespaces and pins of runs of the benchmark (fr-PID...)
	{
		ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^fr-[0-9]+-[grs]$'
		ls -d /sys/fs/bpf/fr-[0-9]* 2>/dev/null
	} | sort
}
before=$(leftovers)

echo "1..5"
timeout 60 bench/bench-fwdrate.sh --smoke --json-out "$TMP/out.json" --plot-dir "$TMP/plots" \
	>"$TMP/out" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then
	echo "ok 1 - bench_fwdrate_runs_every_path_on_1_and_2_cores"
else
	echo "not ok 1 - bench_fwdrate_runs_every_path_on_1_and_2_cores (rc $rc)"
	sed 's/^/# /' "$TMP/out"
fi
if python3 - "$TMP/out.json" >"$TMP/check" 2>&1 <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
assert d["command"].startswith("bench/bench-fwdrate.sh") and "--smoke" in d["command"], d["command"]
assert "cpn-pktgen" in d["generator_command"], d["generator_command"]
m = d["machine"]
assert m["uname"] and m["nproc"] >= 2 and "cpu_model" in m, m
assert [e["cores"] for e in d["results"]] == [1, 2], d["results"]
for e in d["results"]:
    for p in ("kernel", "xdp", "ceiling"):
        for f in ("rx_mpps", "sent_mpps", "drop_pct"):
            assert {"median", "min", "max", "runs"} <= set(e[p][f]), (e["cores"], p, f)
        assert e[p]["rx_mpps"]["median"] > 0 and e[p]["received"] > 0, (e["cores"], p)
    assert e["xdp"]["steered"] >= 0.99 * e["xdp"]["received"], e["xdp"]
    assert e["kernel"]["steered"] == 0, e["kernel"]
    assert e["ratio_xdp_over_kernel"] > 0, e
    assert "router_ns_per_pkt" in e, e
assert d["problems"] == [], d["problems"]
assert d["router_counters"].get("req_steered", 0) > 0, d["router_counters"]
PY
	echo "ok 2 - bench_fwdrate_json_has_command_machine_and_every_figure_with_baseline"
else
	echo "not ok 2 - bench_fwdrate_json_has_command_machine_and_every_figure_with_baseline"
	sed 's/^/# /' "$TMP/check"
fi
if [ "$(head -c 8 "$TMP/plots/fwdrate.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
	echo "ok 3 - bench_fwdrate_plots_a_png_bar_chart"
else
	echo "not ok 3 - bench_fwdrate_plots_a_png_bar_chart"
fi
if [ "$(leftovers)" = "$before" ]; then
	echo "ok 4 - bench_fwdrate_leaves_no_namespace_or_pin"
else
	echo "not ok 4 - bench_fwdrate_leaves_no_namespace_or_pin"
	leftovers | sed 's/^/# /'
fi
# Stopped (SIGTERM) while a generator runs: the trap must remove everything.
bench/bench-fwdrate.sh --rounds 1 --seconds 20 --warmup 0 >"$TMP/int.out" 2>&1 &
BG=$!
for _ in $(seq 100); do
	ip netns list 2>/dev/null | grep -q "^fr-$BG-g" && pgrep -f "cpn-pktgen --dev g0" >/dev/null && break
	sleep 0.1
done
sleep 0.5
kill -TERM "$BG" 2>/dev/null
for _ in $(seq 100); do
	kill -0 "$BG" 2>/dev/null || break
	sleep 0.1
done
wait "$BG" 2>/dev/null
rc=$?
BG=
if [ "$rc" -ne 0 ] && [ "$(leftovers)" = "$before" ]; then
	echo "ok 5 - bench_fwdrate_interrupted_leaves_no_namespace_or_pin"
else
	echo "not ok 5 - bench_fwdrate_interrupted_leaves_no_namespace_or_pin (rc $rc)"
	leftovers | sed 's/^/# /'
	sed 's/^/# /' "$TMP/int.out"
fi
