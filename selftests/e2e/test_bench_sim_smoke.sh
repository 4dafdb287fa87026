#!/usr/bin/env bash
# Smoke test of bench-sim (bench/bench-sim.sh over cpn-sim) and of cpn-mmk:
# the plumbing works end to end (the simulator runs every policy, mode and
# router count, validates itself against M/M/k and M/M/1, writes a complete
# JSON, the plot is drawn), is deterministic for a seed, and refuses bad
# arguments. Not the figures themselves.
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

echo "1..6"
if [ ! -x "$SIM" ] || [ ! -x "$MMK" ]; then
	for i in 1 2 3 4 5 6; do
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
want = {(m, f) for m in ("central", "random") for f in ("mean", "p50", "p99")}
assert got == want, got
assert all(0 <= c["rel_err"] <= 0.05 for c in v["checks"]), v["checks"]
PY

check bench_sim_plot_is_a_png sh -c \
	"[ -s '$TMP/plot/sim_p99.png' ] && head -c 8 '$TMP/plot/sim_p99.png' | od -An -tx1 | grep -q '89 50 4e 47'"

same_seed() {
	local a=$TMP/a.json b=$TMP/b.json
	for f in "$a" "$b"; do
		timeout 30 "$SIM" --nodes 64 --routers 1,3 --policies p2c,least --requests 5000 \
			--path-us 500 --seed 7 --json-out "$f" 2>/dev/null || return 1
	done
	python3 - "$a" "$b" <<'PY'
import json, sys
a, b = (json.load(open(f))["results"] for f in sys.argv[1:3])
for r in a + b:
    r.pop("wall_s")
assert a == b and len(a) == 12, (len(a), len(b))
PY
}
check cpn_sim_is_deterministic_for_a_seed same_seed

bad_args() {
	local rc
	for args in "--rho 1.5" "--policies nope" "--routers 0" "--nodes x" "stray"; do
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
