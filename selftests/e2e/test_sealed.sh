#!/usr/bin/env bash
# e2e: sealed payloads through the XDP router (tools/testbed: a router run by
# cpnctl, two cpn-worker --kernel echo nodes with the tenant's payload key).
# Packet sockets (selftests/e2e/seal_sniff.py) capture every frame in the
# router's, both workers' and the client's namespaces while the Python client
# sends requests that repeat a plaintext marker (the router's own capture
# sees little: XDP forwards past packet sockets; the frames it forwards are
# seen where they arrive, in the workers' and the client's namespaces):
#   1. sealed (cpn.Client(payload_key=...)): every reply is the echo, small
#      and large (100 KB, fragments), and both nodes answered: steering by
#      load still works on the clear headers;
#   2. ... and the marker is in no frame captured, while cpn datagrams were
#      captured; the same capture of a clear run sees the marker (the
#      capture would have seen it);
#   3. a client with another payload key gets BAD_REQUEST (the node cannot
#      open its requests), and no reply opens without the key.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
TB=tools/testbed
ROOT=$(pwd)
PY=/usr/bin/python3
SNIFF=$ROOT/selftests/e2e/seal_sniff.py

need_root
need_file "$BUILD/cpnctl" "$BUILD/cpn-worker" "$BUILD/libcpn.so.0"
need_cmd ip bpftool nsenter ethtool timeout
[ -x "$PY" ] || fail_all "missing /usr/bin/python3 (Debian package python3): run make deps"

NAME=sl$(($$ % 100000))
TMP=$(mktemp -d /tmp/cpn-sealed.XXXXXX)
SPIDS=()
cleanup() {
	local p
	for p in "${SPIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	$TB down --name "$NAME" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
VIP=10.90.100.1:7470
PKEY=5ea1ed00112233445566778899aabbccddeeff00112233445566778899aabbcc
MARK=cpn-plaintext-marker-7f3a

N=3
echo "1..$N"
timeout 90 $TB up --name "$NAME" --worker "--kernel echo --payload-key 42:$PKEY" \
	--worker "--kernel echo --payload-key 42:$PKEY" >"$TMP/up.log" 2>&1 || {
	bail_rest "$N" "testbed up failed"
	sed 's/^/# /' "$TMP/up.log"
	exit 1
}
inc() { # the client namespace: COMMAND...
	timeout 60 $TB exec --name "$NAME" client -- env PYTHONPATH="$ROOT/python" \
		CPN_LIBRARY="$ROOT/$BUILD/libcpn.so.0" "$@"
}

# sniff TAG: capture in the router's, the workers' and the client's namespaces
# for 6 s; returns once every capture is open.
sniff() {
	local tag=$1 ns
	SPIDS=()
	for ns in router w1 w2 client; do
		rm -f "$TMP/$tag.$ns.ready"
		timeout 30 $TB exec --name "$NAME" "$ns" -- "$PY" "$SNIFF" --marker "$MARK" \
			--seconds 6 --out "$TMP/$tag.$ns.json" --ready "$TMP/$tag.$ns.ready" \
			>"$TMP/$tag.$ns.log" 2>&1 &
		SPIDS+=($!)
	done
	for _ in $(seq 100); do
		[ -e "$TMP/$tag.router.ready" ] && [ -e "$TMP/$tag.w1.ready" ] &&
			[ -e "$TMP/$tag.w2.ready" ] && [ -e "$TMP/$tag.client.ready" ] && return 0
		sleep 0.1
	done
	return 1
}
sniffed() { # TAG: wait for the captures, print their sums
	local p
	for p in "${SPIDS[@]}"; do wait "$p"; done
	SPIDS=()
	"$PY" - "$TMP" "$1" <<'PYEOF'
import json, sys
tot = {"frames": 0, "cpn": 0, "marked": 0}
for ns in ("router", "w1", "w2", "client"):
    d = json.load(open(f"{sys.argv[1]}/{sys.argv[2]}.{ns}.json"))
    print(ns, d)
    for k in tot:
        tot[k] += d[k]
print("total frames=%d cpn=%d marked=%d" % (tot["frames"], tot["cpn"], tot["marked"]))
PYEOF
}

run_client() { # sealed|clear
	inc "$PY" - "$VIP" "$PKEY" "$MARK" "$1" <<'PYEOF'
import collections, sys
import cpn
vip, pkey, mark, mode = sys.argv[1:5]
kw = {"payload_key": pkey} if mode == "sealed" else {}
with cpn.Client(vip, service=1, tenant=42, **kw) as c:
    pay = [(mark + "-%05d-" % i).encode() * 4 for i in range(400)]
    pay += [(mark * 4000).encode()[:100000] + b"%d" % i for i in range(4)]
    res = c.call_many(pay, timeout=5.0, window=64)
    bad = [r for r in res if r.error is not None or r.reply != pay[r.user]]
    nodes = collections.Counter(r.node for r in res)
    print("%s: %d requests, %d bad, nodes %s, unseal_failed %d"
          % (mode, len(res), len(bad), dict(nodes), c.stats()["unseal_failed"]))
    for r in bad[:3]:
        print("bad", r.user, r.error, len(r.reply))
PYEOF
}

# The clear control run first: the capture sees the marker.
sniff clear >"$TMP/sniff.log" 2>&1 || echo "the clear captures did not open" >>"$TMP/sniff.log"
run_client clear >"$TMP/clear.out" 2>&1
sniffed clear >"$TMP/clear.sniff" 2>&1

sniff sealed >>"$TMP/sniff.log" 2>&1 || echo "the sealed captures did not open" >>"$TMP/sniff.log"
run_client sealed >"$TMP/sealed.out" 2>&1
sniffed sealed >"$TMP/sealed.sniff" 2>&1

# Steering by load on a shared machine may favour one node for a whole run:
# then a second sealed run must reach the other.
both='nodes \{(1|2): [0-9]+, (1|2): [0-9]+\}'
if ! grep -qE "$both" "$TMP/sealed.out"; then
	run_client sealed >>"$TMP/sealed.out" 2>&1
fi
sed "s/^/# /" "$TMP/clear.out" "$TMP/sealed.out"
# 1.
if grep -qE '^sealed: 404 requests, 0 bad, nodes .*, unseal_failed 0' "$TMP/sealed.out" &&
	! grep -qvE '^sealed: 404 requests, 0 bad, nodes .*, unseal_failed 0' "$TMP/sealed.out" &&
	{ grep -qE "$both" "$TMP/sealed.out" ||
		{ grep -q 'nodes {1: ' "$TMP/sealed.out" && grep -q 'nodes {2: ' "$TMP/sealed.out"; }; }; then
	ok "sealed_requests_answered_small_and_large_by_both_nodes"
else
	not_ok "sealed_requests_answered_small_and_large_by_both_nodes" "$TMP/sealed.out"
fi

# 2.
if grep -qE '^clear: 404 requests, 0 bad' "$TMP/clear.out" &&
	grep -qE '^total frames=[0-9]+ cpn=[1-9][0-9]* marked=[1-9]' "$TMP/clear.sniff" &&
	grep -qE '^total frames=[0-9]+ cpn=[1-9][0-9]{2,} marked=0$' "$TMP/sealed.sniff"; then
	ok "the_plaintext_marker_is_in_no_frame_of_a_sealed_run_and_in_a_clear_one"
else
	not_ok "the_plaintext_marker_is_in_no_frame_of_a_sealed_run_and_in_a_clear_one" \
		"$TMP/clear.out" "$TMP/clear.sniff" "$TMP/sealed.sniff" "$TMP/sniff.log"
fi

sed 's/^/# clear run: /' "$TMP/clear.sniff"
sed 's/^/# sealed run: /' "$TMP/sealed.sniff"

# 3.
inc "$PY" - "$VIP" "$PKEY" >"$TMP/wrong.out" 2>&1 <<'PYEOF'
import sys
import cpn
with cpn.Client(sys.argv[1], service=1, tenant=42, payload_key="00" * 32) as c:
    try:
        c.call(b"x", timeout=2.0)
        raise SystemExit("sealed under another key and answered")
    except cpn.RemoteError as e:
        print("another key: status", e.remote)
PYEOF
check_log "another_payload_key_is_bad_request" "$TMP/wrong.check" \
	grep -q '^another key: status 1$' "$TMP/wrong.out"
[ -s "$TMP/wrong.check" ] || cat "$TMP/wrong.out" >"$TMP/wrong.check"
