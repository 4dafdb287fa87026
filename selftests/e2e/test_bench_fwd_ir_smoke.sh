#!/usr/bin/env bash
# e2e: bench/bench-fwd.sh --ir-only, cpn-fwd's instructions per request
# under callgrind, on 2 copies of the bench's input (2040 requests): the
# run must end with every request steered and sent (the script checks the
# final counters), the figure must be there and plausible (50..20000 Ir per
# request, most of it in the packet path's headers), and a second run must
# give the same figure within 1 % (it is meant to be deterministic).
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
export BUILD

need_root
need_file "$BUILD/cpn-fwd" "$BUILD/bench-fwd-pcap"
need_cmd valgrind callgrind_annotate python3 timeout

TMP=$(mktemp -d /tmp/cpn-bench-fwd-ir.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

echo "1..3"
for i in 1 2; do
	timeout 120 bench/bench-fwd.sh --ir-only --ir-rounds 2 --json >"$TMP/out$i.json" 2>"$TMP/err$i"
	echo $? >"$TMP/rc$i"
done
if [ "$(cat "$TMP/rc1")" -eq 0 ] && [ "$(cat "$TMP/rc2")" -eq 0 ]; then
	echo "ok 1 - bench-fwd --ir-only runs cpn-fwd under callgrind to the end, twice"
else
	echo "not ok 1 - bench-fwd --ir-only exited $(cat "$TMP/rc1"), $(cat "$TMP/rc2")"
	sed 's/^/# /' "$TMP/err1" "$TMP/err2" | tail -n 40
fi
if python3 - "$TMP/out1.json" >"$TMP/check" 2>&1 <<'PY'; then
import json, sys
ir = json.load(open(sys.argv[1]))["ir"]
assert ir["requests"] == 2040, ir
assert 50 <= ir["per_request"] <= 20000, ir
assert abs(ir["ir_total"] / ir["requests"] - ir["per_request"]) < 0.1, ir
f = ir["by_file"]
assert f.get("router.h", 0) > 10 and f.get("fwd_loop.c", 0) > 10, f
assert sum(f.values()) <= ir["per_request"] * 1.01, (sum(f.values()), ir)
assert "--toggle-collect=fwd_burst" in ir["command"], ir["command"]
print("# %.1f Ir per request" % ir["per_request"])
PY
	echo "ok 2 - the figure is there and plausible: 50..20000 Ir per request, router.h and fwd_loop.c in it"
	cat "$TMP/check"
else
	echo "not ok 2 - --ir-only JSON"
	sed 's/^/# /' "$TMP/check" "$TMP/out1.json"
fi
if python3 - "$TMP/out1.json" "$TMP/out2.json" >"$TMP/check2" 2>&1 <<'PY'; then
import json, sys
a, b = (json.load(open(p))["ir"]["per_request"] for p in sys.argv[1:3])
assert abs(a - b) <= 0.01 * a, (a, b)
PY
	echo "ok 3 - two runs give the same Ir per request within 1 %"
else
	echo "not ok 3 - two runs differ"
	sed 's/^/# /' "$TMP/check2"
fi
