#!/usr/bin/env bash
# e2e: three routers behind ECMP, one fleet of workers.
#
# tools/testbed up --routers 3 --policy jiq: the client reaches the VIP over
# a multipath route hashed on L4, each router runs cpn_xdp and its own
# daemon, the service replies through the router that steered each request
# (full NAT). Checked:
#   - every router takes a share of the flows, every request is answered,
#     and each router forwards exactly the replies of the requests it
#     steered (they came back through it), none unknown;
#   - idle tokens: every router receives tokens with replies and gives
#     requests to them;
#   - a router killed under load, its ECMP path withdrawn first as BGP
#     would: no request is lost beyond those in flight through it at the
#     moment it died (the numbers are printed); restored, it takes flows
#     again.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
TB=tools/testbed
NAME=flt

need_root
need_file "$BUILD/cpnctl" "$BUILD/cpn-worker" "$BUILD/cpn-load"
need_cmd python3 ip nsenter ethtool bpftool timeout

TMP=$(mktemp -d /tmp/cpn-fleet-routers.XXXXXX)
cleanup() {
	$TB down --name $NAME >/dev/null 2>&1
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

T=6
echo "1..$T"
W="--kernel synthetic --svc exp:2000 --max-batch 1"
if ! timeout 120 $TB up --name $NAME --routers 3 --policy jiq --worker "$W" --worker "$W" \
	--worker "$W" --worker "$W" >"$TMP/up.log" 2>&1; then
	not_ok "testbed_up_with_3_routers" "$TMP/up.log"
	bail_rest "$T" "testbed (not reached)"
	exit 1
fi
eval "$($TB info --name $NAME)"

stats() { # router: its counters as name=value lines
	$TB cpnctl --name $NAME --router "$1" stats -j |
		python3 -c 'import json,sys; [print(f"{k}={v}") for k, v in json.load(sys.stdin).items()]'
}
stat() { stats "$1" | sed -n "s/^$2=//p"; }
load() { # seconds out.json [rate]
	$TB exec --name $NAME client -- "$BUILD/cpn-load" --to "$VIP:$PORT" --service 1 \
		--tenant "$TENANT" --rate "${3:-1400}" --duration "$1" --timeout 1000 --sockets 64 \
		--json >"$2" 2>"$2.err"
}
field() { python3 -c "import json; print(json.load(open('$1'))['$2'])"; }

# 1-2. Traffic over ECMP: shares, answers, replies back through their router.
load 3 "$TMP/l.json"
sent=$(field "$TMP/l.json" sent) replied=$(field "$TMP/l.json" replied)
{
	echo "sent $sent replied $replied"
	for i in 1 2 3; do
		echo "r$i: req_steered=$(stat $i req_steered) req_fullnat=$(stat $i req_fullnat)" \
			"reply_fwd=$(stat $i reply_fwd) drop_no_flow=$(stat $i drop_no_flow)" \
			"token_in=$(stat $i token_in) req_token=$(stat $i req_token)"
	done
} >"$TMP/share.txt"
shares_ok() {
	[ "$sent" -gt 0 ] && [ "$replied" -eq "$sent" ] || return 1
	for i in 1 2 3; do
		s=$(stat $i req_steered)
		[ "$s" -gt 0 ] && [ "$(stat $i req_fullnat)" -eq "$s" ] &&
			[ "$(stat $i reply_fwd)" -eq "$s" ] && [ "$(stat $i drop_no_flow)" -eq 0 ] ||
			return 1
	done
}
check "every_router_steers_and_gets_back_the_replies_of_its_requests" "$TMP/share.txt" shares_ok
tokens_ok() {
	for i in 1 2 3; do
		[ "$(stat $i token_in)" -gt 0 ] && [ "$(stat $i req_token)" -gt 0 ] || return 1
	done
}
check "every_router_gets_idle_tokens_and_uses_them" "$TMP/share.txt" tokens_ok

# 3-4. Router 2 dies under load: its path is withdrawn, then its links go.
load 5 "$TMP/k.json" &
lp=$!
sleep 1.5
s_before=$(stat 2 req_steered)
$TB withdraw --name $NAME 2
sleep 0.05
s_at=$(stat 2 req_steered) r_at=$(stat 2 reply_fwd)
$TB exec --name $NAME r2 -- ip link set r-c down
$TB exec --name $NAME r2 -- ip link set r-f down
wait "$lp"
sent=$(field "$TMP/k.json" sent) replied=$(field "$TMP/k.json" replied) lost=$(field "$TMP/k.json" lost)
inflight=$((s_at - r_at))
{
	echo "killed under load: sent $sent replied $replied lost $lost;"
	echo "router 2 at its death: steered $s_at (of which $((s_at - s_before)) after the withdrawal began)," \
		"replies forwarded $r_at, in flight through it $inflight"
} >"$TMP/kill.txt"
cat "$TMP/kill.txt" | sed 's/^/# /'
check "a_router_killed_under_load_loses_at_most_what_was_in_flight_through_it" "$TMP/kill.txt" \
	test "$sent" -gt 0 -a "$lost" -le "$inflight" -a $((replied + lost)) -eq "$sent"
check "the_others_answered_everything_after_the_withdrawal" "$TMP/kill.txt" \
	test "$((sent - replied))" -le "$inflight"

# 5-6. Restored: router 2 takes flows again.
$TB exec --name $NAME r2 -- ip link set r-c up
$TB exec --name $NAME r2 -- ip link set r-f up
$TB restore --name $NAME 2
s0=$(stat 2 req_steered)
sleep 0.5
load 2 "$TMP/r.json"
s1=$(stat 2 req_steered)
echo "after restore: router 2 steered +$((s1 - s0)); sent $(field "$TMP/r.json" sent) replied $(field "$TMP/r.json" replied)" >"$TMP/restore.txt"
check "a_restored_router_takes_flows_again" "$TMP/restore.txt" test $((s1 - s0)) -gt 0
check "and_every_request_is_answered" "$TMP/restore.txt" \
	test "$(field "$TMP/r.json" replied)" -eq "$(field "$TMP/r.json" sent)"
