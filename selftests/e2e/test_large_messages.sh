#!/usr/bin/env bash
# e2e: large messages through the XDP router (tools/testbed, two cpn-worker
# --kernel echo nodes taking up to 2 MiB), with the client library's
# Python binding, in both reply modes (DNAT, replies straight to the
# client; full NAT, replies back through the router):
#   - 1 MiB requests and their 1 MiB replies round-trip, byte for byte,
#     with small requests in flight beside them; the router counted one
#     steered request per message and the later fragments as req_frag;
#   - a fragment dropped on purpose (an nftables rule in the client's
#     namespace drops the one datagram of its length) fails only that
#     request, with a timeout; the others of the same burst are answered,
#     and the node frees what it held after --frag-timeout-ms.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
TB=tools/testbed
ROOT=$(pwd)
PY=/usr/bin/python3

need_root
need_file "$BUILD/cpnctl" "$BUILD/cpn-worker" "$BUILD/libcpn.so.0"
need_cmd ip bpftool nsenter ethtool timeout nft curl
[ -x "$PY" ] || fail_all "missing /usr/bin/python3 (Debian package python3): run make deps"

NAME=lm$(($$ % 100000))
TMP=$(mktemp -d /tmp/cpn-large.XXXXXX)
trap '$TB down --name $NAME >/dev/null 2>&1; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
VIP=10.90.100.1:7470
# The victim's last fragment carries 1000 bytes: a UDP datagram of
# 8 + 48 + 8 + 1000 bytes, a length no other datagram of the test has
# (1 MiB ends with 1024 bytes, small requests are 100, acks none).
VICTIM=$((200 * 1408 + 1000))
DROPLEN=$((8 + 48 + 8 + 1000))

N=6
echo "1..$N"

inc() { # the client namespace: COMMAND...
	timeout 120 $TB exec --name "$NAME" client -- env PYTHONPATH="$ROOT/python" \
		CPN_LIBRARY="$ROOT/$BUILD/libcpn.so.0" "$@"
}
stat_of() { # counter name: the router's
	$TB cpnctl --name "$NAME" stats 2>/dev/null | awk -v k="$1" '$1 == k {print $2}'
}

run_mode() { # reply mode
	local mode=$1
	local wargs="--kernel echo --max-message 2M --frag-timeout-ms 500 --metrics"
	if ! timeout 90 $TB up --name "$NAME" --reply "$mode" \
		--worker "$wargs 10.90.11.2:9470" --worker "$wargs 10.90.12.2:9470" >"$TMP/up.log" 2>&1; then
		not_ok "$mode: testbed up" "$TMP/up.log"
		not_ok "$mode: a dropped fragment (skipped: no testbed)"
		not_ok "$mode: the node frees it (skipped: no testbed)"
		return
	fi

	# 1. 1 MiB both ways, with small requests in flight beside them.
	inc "$PY" - "$VIP" >"$TMP/big.out" 2>&1 <<'PYEOF'
import os, sys
import cpn
with cpn.Client(sys.argv[1], service=1, tenant=42) as c:
    big = [os.urandom(1 << 20) for _ in range(4)]
    small = [os.urandom(100) for _ in range(40)]
    pay = big[:2] + small[:20] + big[2:] + small[20:]
    res = c.call_many(pay, timeout=5.0, window=64)
    bad = [i for i, r in enumerate(res) if r.error is not None or r.reply != pay[i]]
    nodes = sorted({r.node for r in res[:2] + res[22:24]})
    print("%d requests (4 of 1 MiB), %d bad, 1 MiB ones on nodes %s, stats %s"
          % (len(pay), len(bad), nodes, c.stats()))
    sys.exit(1 if bad else 0)
PYEOF
	steered=$(stat_of req_steered) frag=$(stat_of req_frag)
	echo "router: req_steered ${steered:-?}, req_frag ${frag:-?}" >>"$TMP/big.out"
	# 4 x 745 fragments: 4 steered first ones, 4 x 744 later ones; the
	# client's acks of the replies are later fragments too.
	if grep -q '^44 requests (4 of 1 MiB), 0 bad' "$TMP/big.out" && [ "${steered:-0}" -eq 44 ] &&
		[ "${frag:-0}" -ge $((4 * 744)) ]; then
		ok "$mode: 1 MiB requests and replies round-trip through the router, one steering each"
	else
		not_ok "$mode: 1 MiB requests and replies round-trip through the router, one steering each" \
			"$TMP/big.out"
	fi
	sed 's/^/# /' "$TMP/big.out"

	# 2. One fragment of one request dropped on the way: only that one fails.
	inc nft -f - <<NFT
table inet cpntest {
	chain out {
		type filter hook output priority 0; policy accept;
		udp length $DROPLEN counter drop
	}
}
NFT
	inc "$PY" - "$VIP" "$VICTIM" >"$TMP/drop.out" 2>&1 <<'PYEOF'
import os, sys
import cpn
n = int(sys.argv[2])
with cpn.Client(sys.argv[1], service=1, tenant=42) as c:
    pay = [os.urandom(1 << 20), os.urandom(n)] + [os.urandom(100) for _ in range(30)] + \
          [os.urandom(1 << 20)]
    res = c.call_many(pay, timeout=2.0, window=64)
    failed = [i for i, r in enumerate(res) if r.error is not None]
    wrong = [i for i, r in enumerate(res) if r.error is None and r.reply != pay[i]]
    print("%d requests, failed %s (%s), wrong %s" % (len(pay), failed,
          [type(res[i].error).__name__ for i in failed], wrong))
    sys.exit(0 if failed == [1] and isinstance(res[1].error, cpn.Timeout) and not wrong else 1)
PYEOF
	rc=$?
	inc nft list table inet cpntest >>"$TMP/drop.out" 2>&1
	inc nft delete table inet cpntest >/dev/null 2>&1
	# (A datagram refused locally may be tried twice: sendmmsg reports the
	# error of a batch's datagram on the next call.)
	if [ $rc -eq 0 ] && grep -Eq "counter packets [12] " "$TMP/drop.out"; then
		ok "$mode: a dropped fragment fails only its request (a timeout), the others answered"
	else
		not_ok "$mode: a dropped fragment fails only its request (a timeout), the others answered" \
			"$TMP/drop.out"
	fi
	sed 's/^/# /' "$TMP/drop.out"

	# 3. The node that held the incomplete message let it go.
	: >"$TMP/held.out"
	held=x
	for _ in $(seq 30); do
		held=0
		for k in 1 2; do
			h=$(timeout 5 $TB exec --name "$NAME" "w$k" -- curl -sf "http://10.90.1$k.2:9470/metrics" |
				tee -a "$TMP/held.out" | awk '/^cpn_worker_frag_held_bytes/ {s += $2} END {print s + 0}')
			held=$((held + ${h:-1}))
		done
		[ "$held" -eq 0 ] && break
		sleep 0.1
	done
	tmo=0
	for k in 1 2; do
		t=$(timeout 5 $TB exec --name "$NAME" "w$k" -- curl -sf "http://10.90.1$k.2:9470/metrics" |
			awk '/^cpn_worker_frag_timeouts_total.*direction="request"/ {s += $2} END {print s + 0}')
		tmo=$((tmo + ${t:-0}))
	done
	if [ "$held" = 0 ] && [ "${tmo:-0}" -ge 1 ]; then
		ok "$mode: the node freed the incomplete message after its timeout (timeouts $tmo)"
	else
		not_ok "$mode: the node freed the incomplete message after its timeout" \
			"held $held bytes, timeouts ${tmo:-?}" "$TMP/held.out"
	fi
	$TB down --name "$NAME" >/dev/null 2>&1
}

run_mode direct
run_mode router
