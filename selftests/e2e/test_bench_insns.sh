#!/usr/bin/env bash
# bench-insns (make bench-insns): the router's instructions and helper calls
# per packet, interpreted from the loaded program (bench/bpf_interp.c). Run
# twice, sanitised: every path's action and output frame equal the kernel's
# run of the same packet from the same state, its counts are positive, the
# same for each packet of a run, and the same in both runs; --profile
# accounts for every instruction of a path.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BENCH=${BUILD:-build}/selftests/e2e/bench-insns-asan
need_root
need_cmd python3 timeout
need_file "$BENCH"
echo "1..6"
TMP=$(mktemp -d /tmp/cpn-bench-insns.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

rc1=0 rc2=0
timeout 60 "$BENCH" --json >"$TMP/a.json" 2>"$TMP/a.err" || rc1=$?
timeout 60 "$BENCH" --json --packets 2 >"$TMP/b.json" 2>"$TMP/b.err" || rc2=$?
if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]; then
	ok "bench_insns_runs_every_path_twice"
else
	not_ok "bench_insns_runs_every_path_twice (rc=$rc1, $rc2)" "$TMP/a.err" "$TMP/b.err"
fi

check_json() { # name, python body over d (run 1) and e (run 2)
	local name=$1
	if python3 - "$TMP/a.json" "$TMP/b.json" >"$TMP/py.err" 2>&1 <<PY; then
import json, sys
d = json.load(open(sys.argv[1]))
e = json.load(open(sys.argv[2]))
$2
PY
		ok "$name"
	else
		not_ok "$name" "$TMP/py.err" "$TMP/a.json"
	fi
}

check_json every_path_agrees_with_the_kernel '
names = [p["path"] for p in d["paths"]]
assert names == ["trivial", "floor", "pass-through", "request", "reply", "load", "request-jiq",
                 "request-fnat", "reply-fnat", "request-chk", "reply-chk", "request-open"], names
for p in d["paths"] + e["paths"]:
    assert p["kernel_match"] is True and p["stable"] is True, p
assert d["summary"]["all_match_kernel"] is True'

check_json counts_are_positive_and_follow_the_path '
by = {p["path"]: p for p in d["paths"]}
for p in d["paths"]:
    assert p["insns"] > 0, p
for n, p in by.items():
    if n in ("trivial", "floor"):
        continue
    assert p["map_lookups"] > 0 and p["helper_calls"] >= p["map_lookups"], p
    assert p["insns"] > by["floor"]["insns"], p
for n in ("request", "reply", "request-jiq", "request-fnat", "reply-fnat", "request-chk", "reply-chk",
          "request-open"):
    assert by[n]["retval"] == 4 and by[n]["helpers"].get("redirect_map") == 1, by[n]
    assert by[n]["helpers"].get("ktime_get_ns", 0) >= 1, by[n]
assert by["request-fnat"]["map_updates"] >= 1 and by["reply-fnat"]["map_deletes"] >= 1
assert by["trivial"]["insns"] == 2 and by["trivial"]["helper_calls"] == 0
for q in d["programs"]:
    assert q["insns"] > 0 and q["xlated_insns"] > 0, q'

check_json counts_are_the_same_in_both_runs '
key = ("insns", "helper_calls", "map_lookups", "map_updates", "map_deletes", "subprog_calls", "helpers")
a = [[p[k] for k in key] for p in d["paths"]]
b = [[p[k] for k in key] for p in e["paths"]]
assert a == b, (a, b)'

out=$("$BENCH" --packets 0 2>&1)
rc=$?
if [ $rc -eq 2 ] && echo "$out" | grep -q "usage: bench-insns"; then
	ok "bad_option_is_refused_with_usage"
else
	not_ok "bad_option_is_refused_with_usage (rc=$rc)" "$out"
fi

# --profile request: the per-instruction counts add up to the table's figure
# for the path, and only instructions of the program are named.
rc=0
timeout 60 "$BENCH" --profile request >"$TMP/prof.txt" 2>"$TMP/prof.err" || rc=$?
if [ $rc -eq 0 ] && python3 - "$TMP/prof.txt" >"$TMP/py.err" 2>&1 <<'PY'; then
import sys
want, total, pcs, calls = None, 0, set(), 0
for line in open(sys.argv[1]):
    f = line.split()
    if f and f[0] == "request":
        want = int(f[1])
    elif f and f[0] == "profile":
        assert f[1] == "request", f
        pc, n = int(f[2]), int(f[3])
        assert n > 0 and pc not in pcs, f
        pcs.add(pc)
        total += n
    elif f and f[0] == "profile-call":
        calls += 1
assert want and total == want, (want, total)
assert len(pcs) > 100 and calls > 0, (len(pcs), calls)
PY
	ok "profile_accounts_for_every_instruction"
else
	not_ok "profile_accounts_for_every_instruction (rc=$rc)" "$TMP/prof.err" "$TMP/py.err"
fi
