#!/usr/bin/env bash
# make demo: a router and four workers in network namespaces, ten seconds of
# real load, and what the router made of it.
#
#   w1, w2  fast: synthetic service time, exponential, mean 1 ms, 2 slots each
#   w3      slow: mean 4 ms, 2 slots
#   w4      far:  mean 1 ms, 2 slots, 5 ms of extra path delay (emulated by the worker)
#
# The router steers with p2c on measured load plus measured path latency: the
# slow and the far worker should get visibly less of the work.
#
# make demo-fleet (tools/demo.sh --fleet): three routers behind ECMP, each
# with its own daemon, policy jiq (idle tokens carried by the replies, which
# come back through the router that steered each request), six workers;
# then one router dies under load, its path withdrawn first as BGP would.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
TB=tools/testbed
NAME=demo
RATE=${DEMO_RATE:-1500}
SECS=${DEMO_SECONDS:-10}

[ "$(id -u)" -eq 0 ] || {
	echo "make demo needs root (network namespaces, XDP)" >&2
	exit 1
}
trap '$TB down --name $NAME' EXIT
trap 'exit 130' INT TERM

load() { # seconds: cpn-load's report
	$TB exec --name $NAME client -- "$BUILD/cpn-load" --to 10.90.100.1:7470 --service 1 \
		--tenant 42 --rate "$RATE" --arrivals poisson --duration "$1" --kernel synthetic \
		--sockets 64
}
per_router() {
	printf '%-8s %12s %12s %10s %10s\n' ROUTER STEERED REPLIES TOKENS_IN TO_TOKEN
	for i in 1 2 3; do
		$TB cpnctl --name $NAME --router $i stats -j | python3 -c '
import json, sys
d = json.load(sys.stdin)
print("%-8s %12d %12d %10d %10d" % ("r" + sys.argv[1], d["req_steered"], d["reply_fwd"],
      d["token_in"], d["req_token"]))' $i
	done
}

if [ "${1:-}" = --fleet ]; then
	syn="--kernel synthetic --max-batch 1 --capacity 2"
	echo "== bringing up the fleet: 1 client, 3 routers behind ECMP (each XDP + its own daemon), 6 workers"
	$TB up --name $NAME --routers 3 --policy jiq --stale-ms 500 \
		--worker "$syn --svc exp:1000" --worker "$syn --svc exp:1000" \
		--worker "$syn --svc exp:1000" --worker "$syn --svc exp:1000" \
		--worker "$syn --svc exp:4000" --worker "$syn --svc exp:4000" || exit 1
	echo
	echo "== cpn-load: $RATE requests/s for $SECS s over ECMP (64 source ports)"
	load "$SECS" || exit 1
	echo
	echo "== what each router did (replies come back through the router that steered them)"
	per_router
	echo
	echo "== router 2 dies under load: its path is withdrawn, then its links go down"
	load 6 &
	lp=$!
	sleep 2
	$TB withdraw --name $NAME 2
	$TB exec --name $NAME r2 -- ip link set r-c down
	$TB exec --name $NAME r2 -- ip link set r-f down
	wait "$lp"
	echo
	per_router
	echo
	echo "(w1-w4 fast, w5-w6 slow: 4x the service time; r2 stopped part way through the second run)"
	exit 0
fi

syn="--kernel synthetic --max-batch 1 --capacity 2"
echo "== bringing up the testbed: 1 client, 1 router (XDP + cpnctl daemon), 4 workers"
$TB up --name $NAME --policy p2c --stale-ms 500 \
	--worker "$syn --svc exp:1000" \
	--worker "$syn --svc exp:1000" \
	--worker "$syn --svc exp:4000" \
	--worker "$syn --svc exp:1000 --delay-us 5000" || exit 1
echo
echo "== cpn-load: open loop, Poisson arrivals, $RATE requests/s for $SECS s"
$TB exec --name $NAME client -- "$BUILD/cpn-load" --to 10.90.100.1:7470 --service 1 \
	--tenant 42 --rate "$RATE" --arrivals poisson --duration "$SECS" --kernel synthetic ||
	exit 1
echo
echo "== cpnctl status"
$TB cpnctl --name $NAME status
echo
echo "(w1, w2 fast; w3 slow: 4x the service time; w4 far: +5 ms of path delay)"
