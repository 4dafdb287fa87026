#!/usr/bin/env bash
# e2e: bench/bench-seal.sh's plumbing, not its numbers: a --smoke run (256 B
# and 64 KiB, clear and sealed, one 0.3 s round each, ports 7751-7752 on
# 127.0.0.1) must exit 0 and write a JSON with, per size, req/s of both
# modes (every request answered, every sealed reply opened) and their
# ratio; it leaves no worker behind; a bad argument exits 2 with the usage.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
export BUILD

need_cmd python3 timeout pgrep
need_file "$BUILD/cpn-worker" "$BUILD/cpn-load"

TMP=$(mktemp -d /tmp/cpn-bench-seal-smoke.XXXXXX)
bpid=
cleanup() {
	[ -n "$bpid" ] && kill -TERM "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "1..3"

timeout 120 bench/bench-seal.sh --smoke --port-base 7750 --json-out "$TMP/s.json" \
	>"$TMP/stdout" 2>"$TMP/stderr" &
bpid=$!
wait "$bpid"
rc=$?
bpid=
check_log "bench-seal --smoke: every request answered, every sealed reply opened, both modes per size" \
	"$TMP/check.log" python3 - "$TMP/s.json" "$rc" <<'PY'
import json, sys
assert sys.argv[2] == "0", "exit " + sys.argv[2]
d = json.load(open(sys.argv[1]))
assert d["ok"] and not d["failures"], d["failures"]
assert [r["payload_bytes"] for r in d["results"]] == [256, 65536], d["results"]
for r in d["results"]:
    for m in ("clear", "sealed"):
        assert r[m]["req_s"]["median"] > 0 and r[m]["p50_us"] > 0, r
    assert 0 < r["sealed_over_clear"] < 5, r
print("ok", [(r["payload_bytes"], round(r["sealed_over_clear"], 3)) for r in d["results"]])
PY
[ -s "$TMP/check.log" ] || cat "$TMP/stderr" >"$TMP/check.log"

if ! pgrep -f -- "--listen 127.0.0.1:7751" >/dev/null; then
	ok "no worker left behind"
else
	not_ok "no worker left behind"
fi

timeout 10 bench/bench-seal.sh --nope >"$TMP/bad.out" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q 'usage:' "$TMP/bad.out"; then
	ok "a bad argument exits 2 with the usage"
else
	not_ok "a bad argument exits 2 with the usage" "$TMP/bad.out"
fi
