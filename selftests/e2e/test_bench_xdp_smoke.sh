#!/usr/bin/env bash
# Smoke test of `make bench-xdp`: the benchmark's plumbing works (every path
# runs, returns what it must and rewrites what it must), not its numbers.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BENCH=${BUILD:-build}/bench-xdp
need_root
need_cmd python3 timeout
need_file "$BENCH"
echo "1..2"
out=$(timeout 60 "$BENCH" --calls 3000 --rounds 3 --json 2>&1)
rc=$?
if [ $rc -eq 0 ]; then
	echo "ok 1 - bench_xdp_runs_every_path_with_checked_results"
else
	echo "not ok 1 - bench_xdp_runs_every_path_with_checked_results (rc=$rc)"
	echo "$out" | sed 's/^/# /'
fi
if echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
names = [p["path"] for p in d["paths"]]
assert names == ["trivial", "floor", "pass-through", "request", "reply", "load", "request-jiq",
                 "request-fnat", "reply-fnat", "request-chk", "reply-chk", "request-open"], names
for p in d["paths"]:
    assert p["ns_per_pkt_median"] > 0 and p["ratio_to_trivial"] > 0, p
' 2>/dev/null; then
	echo "ok 2 - bench_xdp_json_reports_all_paths_with_ratios"
else
	echo "not ok 2 - bench_xdp_json_reports_all_paths_with_ratios"
	echo "$out" | sed 's/^/# /'
fi
