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
