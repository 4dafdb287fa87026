#!/usr/bin/env bash
# e2e: bench/bench-model.sh's plumbing, not its numbers. --smoke (64 x 64
# images, 32 requests): both nodes (batch 1 and batch 16) answer every
# request through the router; the JSON carries the command and both rows;
# bench-report renders the section; the testbed is gone afterwards.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
export BUILD

need_root
need_file "$BUILD/cpnctl" "$BUILD/libcpn.so.0"
need_cmd python3 ip bpftool nsenter ethtool timeout
for m in torch torchvision; do
	[ -e /usr/lib/python3/dist-packages/$m/__init__.py ] ||
		fail_all "missing the Python module $m (Debian package python3-$m): run make deps"
done
TMP=$(mktemp -d /tmp/cpn-bench-model-smoke.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

echo "1..3"
check_log "bench_model_smoke_runs_batch_1_and_batch_16" "$TMP/out" \
	timeout 240 bench/bench-model.sh --smoke --json-out "$TMP/model.json"
check_log "its_json_has_both_rows_every_request_answered" "$TMP/check" python3 - "$TMP/model.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["command"].startswith("bench/bench-model.sh") and "--smoke" in d["command"], d["command"]
rows = {r["max_batch"]: r for r in d["rows"]}
assert set(rows) == {1, 16} and {r["size"] for r in d["rows"]} == {64}, d["rows"]
for r in rows.values():
    assert r["answered"] == d["requests"] * d["repeats"] and r["errors"] == 0, r
    assert r["req_per_s"]["median"] > 0 and r["p99_ms"]["median"] >= r["p50_ms"]["median"] > 0, r
assert d["speedup_16_over_1"]["64"] > 0
print("ok", d["speedup_16_over_1"])
PY
check "the_testbed_is_gone" "$TMP/out" bash -c '! ip netns list | grep -q "^bmd-"'
