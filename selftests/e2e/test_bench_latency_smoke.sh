#!/usr/bin/env bash
# e2e: bench/bench-latency.sh's plumbing, not its numbers: a --smoke run
# (testbed "blats", 2 rounds of 0.2 + 1 s of each path, 1000 req/s) must exit
# 0 and write a JSON with both paths (router: every request steered by
# cpn_xdp; direct: none), positive p50 and p99 in every round, the added
# latency as the difference of the medians; the testbed is gone afterwards;
# a bad argument exits 2 with the usage and sets nothing up.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
export BUILD

need_root
need_cmd python3 timeout ip bpftool ethtool nsenter taskset
need_file "$BUILD/cpnctl" "$BUILD/cpn-worker" "$BUILD/cpn-load" bpf/cpn_pass.bpf.o

NAME=blats
TMP=$(mktemp -d /tmp/cpn-bench-latency-smoke.XXXXXX)
bpid=
cleanup() {
	[ -n "$bpid" ] && kill -TERM "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
	tools/testbed down --name "$NAME" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "1..4"

timeout 60 bench/bench-latency.sh --smoke --name "$NAME" --json-out "$TMP/l.json" \
	>"$TMP/stdout" 2>"$TMP/stderr" &
bpid=$!
wait "$bpid"
rc=$?
bpid=
if [ "$rc" -eq 0 ]; then
	ok "bench-latency --smoke exits 0"
else
	not_ok "bench-latency --smoke exits 0" "exit $rc" "$TMP/stderr"
fi

check_log "the JSON has both paths, steered by the router or not, with positive percentiles every round" \
	"$TMP/check.log" python3 - "$TMP/l.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["bench"] == "latency" and d["ok"] and not d["problems"], d.get("problems")
assert d["rounds"] == 2 and d["rate"] == 1000 and d["path_delay_us"] == 0, d
for p in ("router", "direct"):
    x = d["paths"][p]
    assert x["rounds"] == 2 and x["replied"] > 0, (p, x)
    for q in ("p50_us", "p99_us", "min_us"):
        assert 0 < x[q]["min"] <= x[q]["median"] <= x[q]["max"], (p, q, x[q])
runs = d["runs"]
assert [(r["round"], r["path"]) for r in runs] == \
    [(1, "router"), (1, "direct"), (2, "router"), (2, "direct")], runs
for r in runs:
    assert r["p50_us"] > 0 and r["p99_us"] >= r["p50_us"], r
    assert r["replied"] > 0.9 * r["sent"] and r["sent"] > 500, r
    if r["path"] == "router":
        assert r["steered"] >= r["sent"], r
    else:
        assert r["steered"] == 0, r
a = d["added_us"]["p50_us"]
m = d["paths"]["router"]["p50_us"]["median"] - d["paths"]["direct"]["p50_us"]["median"]
assert abs(a["diff_of_medians"] - m) < 1e-9 and len(a["pair_diffs"]) == 2, a
assert set(d["added_us"]) == {"p50_us", "p99_us", "min_us"}, d["added_us"].keys()
assert d["goal_met"] == (a["diff_of_medians"] < d["goal_us"]), d["goal_met"]
print("ok: added p50 %+.2f us, p99 %+.2f us" % (a["diff_of_medians"],
                                               d["added_us"]["p99_us"]["diff_of_medians"]))
PY
[ -s "$TMP/check.log" ] || cat "$TMP/stderr" >"$TMP/check.log"

if ! ip netns list 2>/dev/null | grep -qE "^$NAME-" && [ ! -e "/run/cpn-testbed/$NAME" ] &&
	[ ! -e "/sys/fs/bpf/cpn-tb-$NAME" ]; then
	ok "the testbed is gone afterwards"
else
	not_ok "the testbed is gone afterwards" "$(ip netns list | grep "^$NAME-")"
fi

timeout 10 bench/bench-latency.sh --name "$NAME" --rounds 0 >"$TMP/bad.out" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q 'usage:' "$TMP/bad.out" && ! ip netns list | grep -qE "^$NAME-"; then
	ok "a bad argument exits 2 with the usage and sets nothing up"
else
	not_ok "a bad argument exits 2 with the usage and sets nothing up" "exit $rc" "$TMP/bad.out"
fi
