#!/usr/bin/env bash
# e2e: bench/bench-sched.sh's plumbing, not its numbers: a --smoke run (3
# workers on testbed sq, rho 0.8, random and least; the heterogeneous fleet
# on testbed sqh with the same two policies; a few seconds each) must exit 0,
# write a JSON with every field (command, machine, calibration, theory from
# cpn-mmk, per policy p50/p99/p99.9 with spread and ratios, targets, the
# heterogeneous shares next to the capacity shares) and both PNG plots, and
# leave no namespace or pin of sq or sqh behind; a bad option exits 2.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
export BUILD

need_root
need_cmd python3 gnuplot timeout nsenter bpftool ip ethtool
need_file "$BUILD/cpnctl" "$BUILD/cpn-worker" "$BUILD/cpn-load" "$BUILD/cpn-mmk" bpf/cpn_pass.bpf.o

TMP=$(mktemp -d /tmp/cpn-bench-sched-smoke.XXXXXX)
bpid=
cleanup() {
	[ -n "$bpid" ] && kill -TERM "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
	tools/testbed down --name sq 2>/dev/null
	tools/testbed down --name sqh 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "1..5"

timeout 60 bench/bench-sched.sh --smoke --rhos 0.8 --json-out "$TMP/out/s.json" \
	--plot-dir "$TMP/plots" >"$TMP/stdout" 2>"$TMP/stderr" &
bpid=$!
wait "$bpid"
rc=$?
bpid=
if [ "$rc" -eq 0 ] && grep -q '^0.8 *least ' "$TMP/stdout" && grep -q '^  random ' "$TMP/stdout"; then
	ok "bench_sched_smoke_runs_end_to_end_and_prints_its_table"
else
	echo "exit $rc" >>"$TMP/stderr"
	not_ok "bench_sched_smoke_runs_end_to_end_and_prints_its_table" "$TMP/stderr" "$TMP/stdout"
fi

if python3 - "$TMP/out/s.json" >"$TMP/check" 2>&1 <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
assert d["benchmark"] == "sched" and "bench-sched.sh" in d["command"] and "--smoke" in d["command"], d["command"]
m = d["machine"]
assert m["uname"] and m["nproc"] >= 1 and m["cpu"], m
c = d["calibration"]
for k in ("lone_latency_us", "occupancy_per_request_us", "router_learned_svc_us", "sleep_overshoot_us",
          "reply_handling_us", "effective_svc_us"):
    assert c[k] is not None, k
assert c["occupancy_per_request_us"] > 0 and c["effective_svc_us"]["0.8"] > 0, c
th = d["theory"][0]
assert th["rho"] == 0.8, th
for b in ("nominal", "measured"):
    for m in ("mmk", "mm1"):
        for q in ("p50", "p99", "p99.9"):
            assert th[b] is None or th[b][m][q] > 0, (b, m, q)
assert th["nominal"]["mmk"]["p99"] < th["nominal"]["mm1"]["p99"], th
h = {(e["rho"], e["policy"]): e for e in d["homogeneous"]}
assert set(h) == {(0.8, "random"), (0.8, "least")}, set(h)
for e in h.values():
    assert len(e["runs"]) == 1 and e["runs"][0]["replied"] > 0, e["runs"]
    for q in ("p50", "p99", "p99.9"):
        s = e[q]
        assert s["min"] <= s["median"] <= s["max"] and s["median"] > 0, (q, s)
        assert e[q + "_us"]["median"] > 0
    assert e["vs_mmk_nominal"]["p99"] > 0
    assert "random_over_this" in e
assert any(t["what"].startswith("least p99 <=") for t in d["targets"]), d["targets"]
assert all(isinstance(t["met"], bool) for t in d["targets"])
het = d["heterogeneous"]
assert len(het["workers"]) == 4 and abs(sum(w["capacity_share"] for w in het["workers"]) - 1) < 1e-6
assert [w["delay_us"] for w in het["workers"]] == [0, 0, 0, 2000], het["workers"]
assert [e["policy"] for e in het["policies"]] == ["random", "least"], het["policies"]
for e in het["policies"]:
    assert abs(sum(e["share"].values()) - 1) < 0.01, e["share"]
    assert e["p99_us"]["median"] > 0
assert len(d["plots"]) == 2, d.get("plots")
PY
	ok "bench_sched_json_has_every_field"
else
	not_ok "bench_sched_json_has_every_field" "$TMP/check"
fi

png_ok=1
for p in sched_p99.png sched_hetero.png; do
	f=$TMP/plots/$p
	if ! [ -s "$f" ] || [ "$(head -c 4 "$f" | tail -c 3)" != PNG ]; then
		png_ok=0
		echo "# $p missing or not a PNG" >>"$TMP/png"
	fi
done
if [ "$png_ok" -eq 1 ]; then
	ok "bench_sched_writes_both_png_plots"
else
	not_ok "bench_sched_writes_both_png_plots" "$TMP/png" "$TMP/stderr"
fi

left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^sqh?-' || true)
if [ -z "$left" ] && ! [ -e /sys/fs/bpf/cpn-tb-sq ] && ! [ -e /sys/fs/bpf/cpn-tb-sqh ] &&
	! [ -e /run/cpn-testbed/sq ] && ! [ -e /run/cpn-testbed/sqh ]; then
	ok "bench_sched_leaves_no_testbed_behind"
else
	echo "# left: $left" >"$TMP/left"
	not_ok "bench_sched_leaves_no_testbed_behind" "$TMP/left"
fi

bench/bench-sched.sh --no-such-option >"$TMP/bad" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q "usage:" "$TMP/bad"; then
	ok "bench_sched_bad_option_exits_2_with_usage"
else
	echo "# exit $rc" >>"$TMP/bad"
	not_ok "bench_sched_bad_option_exits_2_with_usage" "$TMP/bad"
fi
