#!/usr/bin/env bash
# Smoke test of bench-sim (bench/bench-sim.sh over cpn-sim) and of cpn-mmk:
# the plumbing works end to end (the simulator runs every policy, mode and
# router count, validates itself against M/M/k and M/M/1, writes a complete
# JSON, the plots are drawn; the many-routers part has every policy, rho,
# router load and side table, with its message counts; the late-binding part
# every point), is deterministic for a seed, and refuses bad arguments. Not
# the figures themselves, but for what holds by construction (p2c-probe's
# four messages, jiq's tokens riding on replies; late binding's bound on
# what a router sends a node, its queue's limit, and with n = 1 and one
# router, the M/M/k of one central queue).
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
SIM=$BUILD/cpn-sim
MMK=$BUILD/cpn-mmk
TMP=$(mktemp -d /tmp/cpn-sim-smoke.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1))
	echo "not ok $n - $1"
	[ -f "$TMP/log" ] && sed 's/^/# /' "$TMP/log"
}
check() { # name, command...
	local name=$1
	shift
	if "$@" >"$TMP/log" 2>&1; then ok "$name"; else not_ok "$name"; fi
}

echo "1..9"
if [ ! -x "$SIM" ] || [ ! -x "$MMK" ]; then
	for i in 1 2 3 4 5 6 7 8 9; do
		echo "not ok $i - $SIM or $MMK not built (make $SIM $MMK)"
	done
	exit 1
fi

check bench_sim_smoke_runs_and_validation_passes \
	timeout 60 bench/bench-sim.sh --smoke --json-out "$TMP/sim.json" --plot-dir "$TMP/plot"

check bench_sim_json_has_every_field_and_point python3 - "$TMP/sim.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("command", "machine", "params", "theory", "results", "validation", "wall_s", "units"):
    assert k in d, k
assert "cpn-sim" in d["command"] and "--json-out" in d["command"], d["command"]
assert d["machine"]["uname"] and d["machine"]["nproc"] >= 1 and d["machine"]["cpu"], d["machine"]
for t in ("mm1", "mmk_group", "mmk_all"):
    assert d["theory"][t]["p99"] > 0, t
rows = {(r["policy"], r["mode"], r["routers"]): r for r in d["results"]}
pols = ["p2c", "least", "maglev", "random", "round-robin"]
for p in pols:
    for m in ("reports", "outstanding", "router"):
        for R in (1, 4):
            r = rows[(p, m, R)]
            for f in ("mean", "p50", "p99", "p999"):
                assert r[f + "_min"] <= r[f] <= r[f + "_max"], (p, m, R, f)
                assert r["baseline_random"][f] > 0 and r["baseline_central"][f] > 0
            assert r["p50"] < r["p99"] < r["p999"], r
            assert r["requests"] == 2 * d["params"]["requests"], r["requests"]
assert ("central", "none", 1) in rows
v = d["validation"]
assert v["pass"] is True and v["k"] == 8 and v["tolerance"] == 0.05, v
got = {(c["model"], c["figure"]) for c in v["checks"]}
want = {(m, f) for m in ("central", "late1", "random") for f in ("mean", "p50", "p99")}
assert got == want, got
assert all(0 <= c["rel_err"] <= 0.05 for c in v["checks"]), v["checks"]
PY

check bench_sim_many_routers_has_every_point_and_message_count python3 - "$TMP/sim.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["many_routers"]
for k in ("params", "commands", "table", "node_rule", "hetero", "delays", "targets", "plots",
          "wall_s", "units", "skewed"):
    assert k in m, k
assert all("cpn-sim" in c and "--modes router" in c for c in m["commands"]), m["commands"]
t = {(p["policy"], p["routers"], p["rho"], p["load"]): p for p in m["table"]}
for rho in (0.8, 0.9):
    for load in ("uniform", "skewed"):
        assert ("central", None, rho, load) in t, (rho, load)
        for pol in ("jiq", "jiq-rand", "p2c", "p2c-probe"):
            for R in (1, 10):
                p = t[(pol, R, rho, load)]
                for f in ("p50", "p99", "p999"):
                    assert p[f + "_min"] <= p[f] <= p[f + "_max"], (pol, R, f)
                assert p["p50"] < p["p99"] < p["p999"], p
                assert p["stale_views"] == 0, p  # liveness held throughout
                assert p["msgs_per_req"] >= 0 and p["requests"] > 0, p
            # jiq's tokens ride on replies; jiq-rand's, with one router, too
            assert t[("jiq", 10, rho, load)]["token_msgs_per_req"] == 0
            assert t[("jiq", 10, rho, load)]["by_token"] > 0.5
            assert t[("jiq-rand", 1, rho, load)]["token_msgs_per_req"] == 0
            assert t[("jiq-rand", 10, rho, load)]["token_msgs_per_req"] > 0.1
            # two probes and two answers per request, whatever else
            assert abs(t[("p2c-probe", 10, rho, load)]["probes_per_req"] - 4) < 1e-9
            # p2c's LOADs: every node to every router every 50 ms
            assert t[("p2c", 10, rho, load)]["heartbeats_per_req"] > \
                5 * t[("p2c", 1, rho, load)]["heartbeats_per_req"]
rules = {(p["rule"], p["rho"]) for p in m["node_rule"]}
assert rules == {(r, rho) for r in ("idle", "adapt") for rho in (0.8, 0.9)}, rules
assert {(p["policy"], p["routers"]) for p in m["hetero"]} >= \
    {(pol, R) for pol in ("jiq", "p2c", "p2c-probe") for R in (1, 10)}
assert all(p["speeds"] == [1, 2, 3, 4] for p in m["hetero"])
assert {(p["reply_us"], p["token_us"]) for p in m["delays"]} == {(200, 0), (1000, 0), (0, 1000)}
assert len(m["targets"]) == 4 and all("measured" in x and "met" in x for x in m["targets"])
assert m["plots"] == ["sim_many.png"], m["plots"]
PY

check bench_sim_late_binding_has_every_point_and_keeps_its_bounds python3 - "$TMP/sim.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m = d["late_binding"]
for k in ("params", "commands", "table", "mmk", "wall_s", "units"):
    assert k in m, k
assert len(m["commands"]) == 6 and all("cpn-sim" in c for c in m["commands"]), m["commands"]
assert m["params"]["late_queue"] == 1024, m["params"]
t = {(p["part"], p["policy"], p["routers"], p["mode"], p["rho"], p["report_ms"], p["path_us"]): p
     for p in m["table"]}
mmk = {x["rho"]: x for x in m["mmk"]}
POL = ("late1", "late2", "least", "p2c")
for rho in (0.8, 0.9):
    assert ("k8", "central", None, "none", rho, 0, 0) in t, rho
    for mode in ("reports", "router"):
        for pol in POL:
            p = t[("k8", pol, 1, mode, rho, 0, 0)]
            assert p["p50"] < p["p99"] < p["p999"], p
        l1, l2 = t[("k8", "late1", 1, mode, rho, 0, 0)], t[("k8", "late2", 1, mode, rho, 0, 0)]
        assert l1["late_bound"] == 1 and l2["late_bound"] == 2
        # JBSQ(n), one router, capacity 1: at most n at a node, the rest held
        assert l1["max_queue"] == 1 and l1["held"] > 0.3, l1
        assert l2["held"] > 0 and l2["max_held"] > 0 and l2["refused"] == 0, l2
        if mode == "reports":  # no liveness in play: the bound is exact
            assert l2["max_queue"] == 2, l2
        # late1 is the central queue (the same requests, the same times)
        c = t[("k8", "central", None, "none", rho, 0, 0)]
        for f in ("mean", "p50", "p99", "p999"):
            assert abs(l1[f] / c[f] - 1) < 0.01, (f, l1[f], c[f])
        assert mmk[rho]["k"] == 8 and mmk[rho]["p99"] > 0, mmk
        assert l1["p99"] < t[("k8", "p2c", 1, mode, rho, 0, 0)]["p99"], l1
for rms in (0, 50):
    for R in (1, 10):
        for pol in POL:
            assert ("routers", pol, R, "router", 0.8, rms, 0) in t, (pol, R, rms)
        for pol, n in (("late1", 1), ("late2", 2)):
            p = t[("routers", pol, R, "router", 0.8, rms, 0)]
            # each router binds at most n per node: n x routers in all
            assert 1 <= p["max_queue"] <= n * R, p
for pu in (1000, 4000):
    for pol in POL:
        assert ("path", pol, 1, "router", 0.8, 0, pu) in t, (pol, pu)
# round trips of a mean service time: JBSQ(1) serves k / (1 + rtt) and
# overflows its queue (refused at the limit), JBSQ(2) hides them
l1, l2 = t[("path", "late1", 1, "router", 0.8, 0, 4000)], t[("path", "late2", 1, "router", 0.8, 0, 4000)]
assert l1["max_held"] == 1024 and l1["refused"] > 0.01, l1
assert l2["refused"] == 0 and l2["p99"] < l1["p99"] / 5, (l1, l2)
PY

late_mmk() {
	local f=$TMP/late.json
	timeout 30 "$SIM" --nodes 8 --routers 1 --report-ms 0 --modes reports,router --rho 0.8 \
		--policies central,late --requests 400000 --seed 3 --json-out "$f" 2>/dev/null ||
		return 1
	timeout 30 "$SIM" --nodes 8 --routers 1 --report-ms 0 --modes reports --rho 0.9 \
		--policies late --late-bound 3 --requests 20000 --json-out "$TMP/late3.json" \
		2>/dev/null || return 1
	python3 - "$f" "$TMP/late3.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = d["theory"]["mmk_group"]
assert want["k"] == 8, want
rows = {(r["policy"], r["mode"]): r for r in d["results"]}
c = rows[("central", "none")]
for mode in ("reports", "router"):
    r = rows[("late1", mode)]
    for f in ("mean", "p50", "p99"):
        assert abs(r[f] / want[f] - 1) < 0.05, (mode, f, r[f], want[f])
        assert abs(r[f] / c[f] - 1) < 0.05, (mode, f, r[f], c[f])
    assert r["max_queue"] == 1 and r["refused"] == 0 and r["early"] == 0, r
    assert 0.4 < r["held"] < 0.5, r  # Erlang C: 0.458 wait
r = json.load(open(sys.argv[2]))["results"][0]
assert r["policy"] == "late3" and r["late_bound"] == 3 and r["max_queue"] == 3, r
PY
}
check cpn_sim_late1_with_one_router_is_mmk late_mmk

check bench_sim_plots_are_pngs sh -c \
	"for f in sim_p99.png sim_many.png; do [ -s '$TMP/plot/'\$f ] &&
		head -c 8 '$TMP/plot/'\$f | od -An -tx1 | grep -q '89 50 4e 47' || exit 1; done"

same_seed() {
	local a=$TMP/a.json b=$TMP/b.json c=$TMP/c.json d=$TMP/d.json
	for f in "$a" "$b"; do
		timeout 30 "$SIM" --nodes 64 --routers 1,3 --policies p2c,least --requests 5000 \
			--path-us 500 --seed 7 --json-out "$f" 2>/dev/null || return 1
	done
	for f in "$c" "$d"; do
		timeout 30 "$SIM" --nodes 100 --routers 1,10 --modes router \
			--policies jiq,jiq-rand,p2c-probe --requests 5000 --hot 0.1:0.5 --speeds 1,3 \
			--reply-us 100 --token-us 50 --liveness-ms 20 --seed 7 --json-out "$f" \
			2>/dev/null || return 1
	done
	for f in "$TMP/e.json" "$TMP/f.json"; do
		timeout 30 "$SIM" --nodes 100 --routers 1,10 --modes reports,router \
			--policies late1,late2 --requests 5000 --rho 0.9 --path-us 2000 \
			--reply-us 100 --speeds 1,3 --seed 7 --json-out "$f" 2>/dev/null || return 1
	done
	python3 - "$a" "$b" "$c" "$d" "$TMP/e.json" "$TMP/f.json" <<'PY'
import json, sys
a, b, c, d, e, f = (json.load(open(x))["results"] for x in sys.argv[1:7])
for r in a + b + c + d + e + f:
    r.pop("wall_s")
assert a == b and len(a) == 12, (len(a), len(b))
assert c == d and len(c) == 6, (len(c), len(d))
assert e == f and len(e) == 8, (len(e), len(f))
assert any(r["held"] > 0 for r in e), e
PY
}
check cpn_sim_is_deterministic_for_a_seed same_seed

bad_args() {
	local rc
	for args in "--rho 1.5" "--policies nope" "--routers 0" "--nodes x" "stray" "--hot 0.1" \
		"--hot 1:0.5" "--speeds 0" "--token-rule below:0" "--token-rule x" \
		"--nodes 1024 --policies jiq" "--liveness-ms 0" "--late-bound 0" "--late-bound 65" \
		"--late-bound x" "--policies late0" "--policies late65" "--policies late1x" \
		"--policies late,late1" "--late-bound 2 --policies late2,late" \
		"--nodes 1024 --policies late2"; do
		# shellcheck disable=SC2086
		"$SIM" $args --validate-only >/dev/null 2>&1
		rc=$?
		[ $rc -eq 2 ] || { echo "cpn-sim $args: rc $rc"; return 1; }
	done
	for args in "--k 0 --rho 0.5 --mean 1" "--k 2 --rho 1 --mean 1" "--k 2 --rho 0.5" \
		"--k 2 --rho 0.5 --mean 1 --q 1.5"; do
		# shellcheck disable=SC2086
		"$MMK" $args >/dev/null 2>&1
		rc=$?
		[ $rc -eq 2 ] || { echo "cpn-mmk $args: rc $rc"; return 1; }
	done
}
check cpn_sim_and_cpn_mmk_refuse_bad_arguments bad_args

mmk_json() {
	"$MMK" --k 8 --rho 0.8 --mean 2000 --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert abs(d["erlang_c"] - 0.457645) < 1e-5, d
q = {x["q"]: x for x in d["quantiles"]}
assert abs(q[0.99]["mm1"] - 2000 * 5 * 4.605170) < 0.01, q
assert q[0.5]["mmk"] < q[0.99]["mmk"] < q[0.999]["mmk"] < q[0.999]["mm1"], q
'
}
check cpn_mmk_prints_erlang_c_and_quantiles mmk_json
