#!/usr/bin/env bash
# e2e: bench/bench-fwd.sh's plumbing, not its numbers: one 1-second round
# of cpn-fwd, testpmd 5tswap and testpmd io on net_pcap (infinite_rx) ->
# net_null; each must run, exit cleanly and forward packets, cpn-fwd's all
# steered requests (the script checks its final counters), and --json must
# parse.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
export BUILD

need_root
need_file "$BUILD/cpn-fwd" "$BUILD/bench-fwd-pcap"
[ -n "${TESTPMD:-}" ] || need_cmd dpdk-testpmd
TESTPMD=${TESTPMD:-$(command -v dpdk-testpmd)}
export TESTPMD
need_cmd python3 timeout

TMP=$(mktemp -d /tmp/cpn-bench-fwd-smoke.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

echo "1..3"
timeout 120 bench/bench-fwd.sh --seconds 1 --warmup 0.5 --runs 1 --json >"$TMP/out.json" 2>"$TMP/err"
rc=$?
if [ "$rc" -eq 0 ]; then
	echo "ok 1 - bench-fwd runs cpn-fwd, testpmd 5tswap and io, all exit cleanly"
else
	echo "not ok 1 - bench-fwd exited $rc"
	sed 's/^/# /' "$TMP/err"
fi
if python3 - "$TMP/out.json" >"$TMP/check" 2>&1 <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
r = {x["prog"]: x for x in d["results"]}
assert set(r) == {"cpn-fwd", "testpmd-5tswap", "testpmd-io"}, r.keys()
for p, x in r.items():
    assert x["mpps_median"] > 0 and x["mpps_runs"][0] > 0, (p, x)
    assert "--vdev net_null0,no-rx=1" in x["command"], x["command"]
assert d["ratio_vs_5tswap"] > 0 and d["ratio_vs_io"] > 0, d
PY
	echo "ok 2 - --json parses; every program forwarded > 0 packets"
else
	echo "not ok 2 - --json summary"
	sed 's/^/# /' "$TMP/check" "$TMP/out.json"
fi
if grep -q '"target_0_7_x_5tswap_met":\(true\|false\)' "$TMP/out.json"; then
	echo "ok 3 - the summary states whether the 0.7 x testpmd 5tswap target is met"
else
	echo "not ok 3 - no target verdict in the summary"
fi
