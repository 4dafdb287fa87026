#!/usr/bin/env bash
# e2e: bench/bench-sched.sh's plumbing, not its numbers: a --smoke run (3
# workers on testbed sq, rho 0.8, random and least; late1 (cpn-fwd, dispatch:
# late) and nginx least_conn on testbed sqd; the heterogeneous fleet on
# testbed sqh with the same two policies; a few seconds each; late1 and
# nginx repeated twice, --target-reps) must exit 0,
# write a JSON with every field (command, machine, calibration, theory from
# cpn-mmk, per policy and system p50/p99/p99.9 with spread and ratios, the
# router's CPU per request of each, late1 against M/M/k and nginx, targets,
# the heterogeneous shares next to the capacity shares) and both PNG plots,
# and leave no namespace, pin, nginx process or kernel.bpf_stats_enabled
# change behind; a bad option exits 2, an unknown system exits non-zero
# naming it.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
export BUILD

need_root
need_cmd python3 gnuplot timeout nsenter bpftool ip ethtool nginx curl pgrep sysctl
need_file "$BUILD/cpnctl" "$BUILD/cpn-worker" "$BUILD/cpn-load" "$BUILD/cpn-mmk" "$BUILD/cpn-fwd" \
	bpf/cpn_pass.bpf.o /usr/lib/nginx/modules/ngx_stream_module.so

TMP=$(mktemp -d /tmp/cpn-bench-sched-smoke.XXXXXX)
bpid=
cleanup() {
	[ -n "$bpid" ] && kill -TERM "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
	tools/testbed down --name sq 2>/dev/null
	tools/testbed down --name sqd 2>/dev/null
	tools/testbed down --name sqh 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "1..7"

stats0=$(sysctl -n kernel.bpf_stats_enabled)
timeout 120 bench/bench-sched.sh --smoke --rhos 0.8 --target-reps 2 --json-out "$TMP/out/s.json" \
	--plot-dir "$TMP/plots" >"$TMP/stdout" 2>"$TMP/stderr" &
bpid=$!
wait "$bpid"
rc=$?
bpid=
if [ "$rc" -eq 0 ] && grep -q '^0.8 *least ' "$TMP/stdout" && grep -q '^  random ' "$TMP/stdout" &&
	grep -q '^0.8 *late1 ' "$TMP/stdout" && grep -q '^0.8 *nginx ' "$TMP/stdout" &&
	grep -q '^late: rho 0.8 late1 .* x M/M/k p99 .* x nginx least_conn p99' "$TMP/stdout"; then
	ok "bench_sched_smoke_runs_end_to_end_and_prints_its_table"
else
	echo "exit $rc" >>"$TMP/stderr"
	not_ok "bench_sched_smoke_runs_end_to_end_and_prints_its_table" "$TMP/stderr" "$TMP/stdout"
fi

if python3 - "$TMP/out/s.json" >"$TMP/check" 2>&1 <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
assert d["benchmark"] == "sched" and "bench-sched.sh" in d["command"] and "--smoke" in d["command"], d["command"]
# --target-reps 2: late1 and nginx twice, the policies once
assert d["params"]["reps"] == 1 and d["params"]["target_reps"] == 2, d["params"]
for e in d["homogeneous"]:
    want = 2 if e["policy"] in ("late1", "nginx") else 1
    assert e["p99_us"]["n"] == want, (e["policy"], e["p99_us"])
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
assert set(h) == {(0.8, "random"), (0.8, "least"), (0.8, "late1"), (0.8, "nginx")}, set(h)
assert d["params"]["systems"] == ["late1", "nginx"], d["params"]
for p in ("policies", "late1", "nginx"):
    assert d["systems"][p]["router"] and d["systems"][p]["cpu"], d["systems"]
assert d["systems"]["late1"]["late_bound"] == 1 and "least_conn" in d["systems"]["nginx"]["router"]
for e in h.values():
    # The router's CPU per request, measured in the same run: XDP's run
    # time, cpn-fwd's busy seconds, nginx's processes.
    c = e["router_cpu_us_per_request"]
    assert c and 0 < c["median"] < 10000, (e["policy"], c, [r["router_cpu"] for r in e["runs"]])
    m = e["router_cpu_method"]
    assert m == {"random": "bpf_stats run_time_ns", "least": "bpf_stats run_time_ns",
                 "late1": "cpn_fwd_busy_seconds_total", "nginx": "schedstat of nginx's processes"}[e["policy"]], m
    r = e["runs"][0]["router_cpu"]
    assert r["requests"] == e["runs"][0]["sent"] and r["window_s"] > 0, r
    if e["policy"] in ("random", "least"):
        assert r["runs_per_request"] >= 1, r  # the REQUEST and its REPLY at least
    else:
        assert r["proc_us_per_request"] > 0 and r["stat_us_per_request"] >= 0, r
l1 = h[(0.8, "late1")]
# cpn-fwd counted the requests it held (none, when a stalled machine made it
# bind early: the numbers are not this test's).
assert l1["system"] == "cpn-fwd, late binding" and l1["held_share"]["median"] >= 0, l1.get("held_share")
assert l1["runs"][0]["router_cpu"]["proc_cores"] > 0, l1["runs"][0]["router_cpu"]
assert h[(0.8, "nginx")]["system"] == "nginx"
lr = [x for x in d["late_ratios"] if x["system"] == "late1" and x["rho"] == 0.8]
assert len(lr) == 1 and lr[0]["vs_mmk_measured_p99"] > 0 and lr[0]["vs_nginx_p99"] > 0, d["late_ratios"]
assert abs(lr[0]["vs_nginx_p99"] - l1["p99_us"]["median"] / h[(0.8, "nginx")]["p99_us"]["median"]) < 1e-9
# Disturbed runs (a late client, a starved cpn-fwd) are flagged and left out
# of p99_undisturbed.
for e in h.values():
    assert isinstance(e["runs"][0]["disturbed"], bool) and "p99_undisturbed" in e, e["policy"]
    assert e["p99_undisturbed"] is None or e["p99_undisturbed"]["median"] > 0, e["p99_undisturbed"]
assert "vs_nginx_p99_undisturbed" in lr[0] and "vs_mmk_measured_p99_undisturbed" in lr[0], lr[0]
tw = {t["what"]: t for t in d["targets"]}
assert isinstance(tw["late1 p99 <= 1.10 x M/M/k p99 at rho 0.8"]["met"], bool), tw
assert isinstance(tw["late1 p99 <= 0.85 x nginx least_conn p99 at rho 0.8"]["met"], bool), tw
for e in h.values():
    assert len(e["runs"]) == (2 if e["policy"] in ("late1", "nginx") else 1), e["runs"]
    assert all(r["replied"] > 0 for r in e["runs"]), e["runs"]
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

left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^sq[hd]?-' || true)
# nginx ran with its configuration in the bench's own temporary directory.
ngx=$(pgrep -a -f 'nginx.*cpn-bench-sched' || true)
stats1=$(sysctl -n kernel.bpf_stats_enabled)
if [ -z "$left" ] && [ -z "$ngx" ] && [ "$stats1" = "$stats0" ] && ! [ -e /sys/fs/bpf/cpn-tb-sq ] &&
	! [ -e /sys/fs/bpf/cpn-tb-sqd ] && ! [ -e /sys/fs/bpf/cpn-tb-sqh ] && ! [ -e /run/cpn-testbed/sq ] &&
	! [ -e /run/cpn-testbed/sqd ] && ! [ -e /run/cpn-testbed/sqh ]; then
	ok "bench_sched_leaves_no_testbed_nginx_or_bpf_stats_behind"
else
	echo "# left: $left; nginx: $ngx; kernel.bpf_stats_enabled $stats0 -> $stats1" >"$TMP/left"
	not_ok "bench_sched_leaves_no_testbed_nginx_or_bpf_stats_behind" "$TMP/left"
fi

bench/bench-sched.sh --no-such-option >"$TMP/bad" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q "usage:" "$TMP/bad"; then
	ok "bench_sched_bad_option_exits_2_with_usage"
else
	echo "# exit $rc" >>"$TMP/bad"
	not_ok "bench_sched_bad_option_exits_2_with_usage" "$TMP/bad"
fi

bench/bench-sched.sh --smoke --systems late1,haproxy >"$TMP/bad_sys" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q "unknown system 'haproxy'" "$TMP/bad_sys"; then
	ok "bench_sched_unknown_system_is_refused_by_name"
else
	echo "# exit $rc" >>"$TMP/bad_sys"
	not_ok "bench_sched_unknown_system_is_refused_by_name" "$TMP/bad_sys"
fi

# testbed up: --dispatch and --late-bound out of range are refused before
# anything is made.
bad=""
for a in "--dispatch soon" "--dispatch late --late-bound 0" "--dispatch late --late-bound 65" \
	"--late-bound 2"; do
	# shellcheck disable=SC2086 # one option per word
	if tools/testbed up --name sqbad $a --worker "--kernel synthetic" >"$TMP/tb" 2>&1 ||
		! grep -qE -- "--(dispatch|late-bound)" "$TMP/tb" || [ -e /run/cpn-testbed/sqbad ]; then
		bad="$bad [$a: $(tr '\n' ' ' <"$TMP/tb")]"
	fi
done
if [ -z "$bad" ]; then
	ok "testbed_refuses_bad_dispatch_and_late_bound"
else
	echo "# accepted or unclear:$bad" >"$TMP/tbbad"
	not_ok "testbed_refuses_bad_dispatch_and_late_bound" "$TMP/tbbad"
fi
