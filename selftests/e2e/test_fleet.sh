#!/usr/bin/env bash
# e2e: the whole path — cpn-load in a client namespace, the XDP router run by
# cpnctl, cpn-worker in worker namespaces (tools/testbed) — and what a fleet
# operator relies on:
#   - every request gets exactly one REPLY or BUSY;
#   - mlp and vsearch results through the router equal those computed locally;
#   - with unequal workers, least and p2c share work by capacity, round-robin
#     does not;
#   - a worker killed mid-run is avoided within stale_ms, and every request
#     after that succeeds;
#   - a draining worker gets no new request and finishes its queue;
#   - a worker that announces itself from an auto_join prefix gets work with
#     no configuration change.
# CPN_PLANE=dpdk runs the same tests with cpn-fwd as the router's data plane
# (testbed up --plane dpdk; selftests/e2e/test_fleet_dpdk.sh).
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
TB=tools/testbed
LOAD=$(pwd)/$BUILD/cpn-load
KCHECK=$(pwd)/$BUILD/selftests/e2e/worker_kcheck
PLANE=${CPN_PLANE:-xdp}

need_root
need_file "$BUILD/cpnctl" "$BUILD/cpn-worker" "$LOAD" "$KCHECK"
case "$PLANE" in
xdp) ;;
dpdk) need_file "$BUILD/cpn-fwd" ;;
*) fail_all "CPN_PLANE=$PLANE: xdp or dpdk" ;;
esac
need_cmd ip bpftool python3 nsenter ethtool timeout

NAME=f$(($$ % 100000))
TMP=$(mktemp -d /tmp/cpn-fleet.XXXXXX)
trap '$TB down --name $NAME; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
VIP=10.90.100.1:7470

N=6
echo "1..$N"
tb() { # subcommand, args: the testbed's name goes before the args
	local sub=$1
	shift
	timeout 60 $TB "$sub" --name "$NAME" "$@"
}
up() { # policy, worker specs...
	local policy=$1 args=()
	shift
	for w in "$@"; do args+=(--worker "$w"); done
	$TB down --name "$NAME"
	timeout 60 $TB up --name "$NAME" --plane "$PLANE" --policy "$policy" --stale-ms 300 "${args[@]}" \
		>"$TMP/up.log" 2>&1
}
load() { # json file, cpn-load args...
	local out=$1
	shift
	timeout 60 $TB exec --name "$NAME" client -- "$LOAD" --to "$VIP" --service 1 --tenant 42 \
		--json "$@" >"$out" 2>"$out.err"
}
j() { # file, python expression over d
	python3 -c "import json,sys; d=json.load(open('$1')); print($2)"
}
node_requests() { # requests steered to nodes 1, 2, 3 as "a/b/c", by the data plane's counters
	if [ "$PLANE" = dpdk ]; then
		# cpn-fwd counts its own (testbed info: FWD_METRICS).
		tb exec router -- python3 -c '
import re, urllib.request
t = urllib.request.urlopen("http://127.0.0.1:9471/metrics", timeout=5).read().decode()
n = {int(m[0]): int(m[1]) for m in re.findall(r"^cpn_node_requests_total\{node=\"(\d+)\"[^}]*\} (\d+)", t, re.M)}
print("/".join(str(n.get(k, 0)) for k in (1, 2, 3)))'
		return
	fi
	tb cpnctl status -j | python3 -c '
import json, sys
n = {x["id"]: x["requests"] for x in json.load(sys.stdin)["nodes"]}
print("/".join(str(n.get(k, 0)) for k in (1, 2, 3)))'
}
share() { # file, node
	j "$1" "d['share'].get('$2', 0) if isinstance(d['share'], dict) else \
dict((str(x['node']), x['replies']) for x in d['share']).get('$2', 0)"
}

# 1. exactly one answer per request, at a rate the fleet can take.
if up p2c "--kernel echo --capacity 2" "--kernel echo --capacity 2" "--kernel echo --capacity 2" &&
	load "$TMP/one.json" --rate 2000 --count 4000 --kernel echo &&
	[ "$(j "$TMP/one.json" "d['sent'] == d['replied'] + d['busy'] and d['lost'] == 0 and d['duplicates'] == 0 and d['replied'] > 0")" = True ]; then
	ok "every_request_gets_exactly_one_reply_or_busy"
else
	not_ok "every_request_gets_exactly_one_reply_or_busy" "$TMP/up.log" "$TMP/one.json" \
		"$TMP/one.json.err"
fi

# 2. mlp and vsearch through the router equal the reference computed here.
kfail=""
for k in mlp vsearch; do
	model="--mlp-dims 64,128,10"
	[ "$k" = vsearch ] && model="--vs-rows 2000 --vs-dim 32"
	if ! up p2c "--kernel $k --capacity 2 --max-batch 8 --seed 7 $model"; then
		kfail="$kfail $k:up"
		continue
	fi
	timeout 60 $TB exec --name "$NAME" client -- "$KCHECK" kernel --to "$VIP" --kernel "$k" \
		--node-id 1 --capacity 2 --count 200 --seed 7 --mlp-dims 64,128,10 --vs-rows 2000 \
		--vs-dim 32 --service 1 --tenant 42 >"$TMP/k.$k" 2>&1 || kfail="$kfail $k"
done
if [ -z "$kfail" ]; then
	ok "mlp_and_vsearch_results_through_the_router_equal_local_reference"
else
	not_ok "mlp_and_vsearch_results_through_the_router_equal_local_reference" "failed:$kfail" \
		"$TMP/up.log" "$TMP/k.mlp" "$TMP/k.vsearch"
fi

# 3. unequal capacity: 1, 2 and 4 slots of 2 ms each (500, 1000, 2000/s);
# at 2100/s (60 %) least and p2c steer the most to the biggest worker, and
# round-robin about a third to each (the router's own per-node counts).
het=("--kernel synthetic --svc fixed:2000 --max-batch 1 --capacity 1"
	"--kernel synthetic --svc fixed:2000 --max-batch 1 --capacity 2"
	"--kernel synthetic --svc fixed:2000 --max-batch 1 --capacity 4")
hres=""
for pol in least p2c round-robin; do
	if up "$pol" "${het[@]}" && load "$TMP/h.$pol" --rate 2100 --duration 3 --kernel synthetic; then
		hres="$hres $pol:$(node_requests)"
	else
		hres="$hres $pol:0/0/0"
	fi
done
echo "# requests steered to workers of capacity 1/2/4:$hres"
if python3 - "$hres" <<'EOF'
import sys
r = {}
for part in sys.argv[1].split():
    pol, v = part.split(":")
    r[pol] = tuple(int(x) for x in v.split("/"))
for pol in ("least", "p2c"):
    a, b, c = r[pol]
    assert c > b > a and c > 0.4 * (a + b + c), (pol, r[pol])
a, b, c = r["round-robin"]
t = a + b + c
assert t > 0 and all(abs(x / t - 1 / 3) < 0.05 for x in (a, b, c)), r["round-robin"]
EOF
then
	ok "least_and_p2c_share_follows_capacity_round_robin_does_not"
else
	not_ok "least_and_p2c_share_follows_capacity_round_robin_does_not" "$hres"
fi

# 4. a worker killed mid-run: avoided within stale_ms (300), then all succeed.
if up p2c "--kernel echo --capacity 2" "--kernel echo --capacity 2" "--kernel echo --capacity 2"; then
	load "$TMP/kill1" --rate 1000 --duration 3 --kernel echo &
	lp=$!
	sleep 1
	kill -9 "$(cat /run/cpn-testbed/$NAME/w2.pid)"
	wait "$lp"
	sleep 0.5 # past stale_ms
	load "$TMP/kill2" --rate 1000 --count 2000 --kernel echo
	if [ "$(j "$TMP/kill2" "d['lost'] == 0 and d['busy'] == 0 and d['replied'] == 2000")" = True ] &&
		[ "$(share "$TMP/kill2" 2)" = 0 ]; then
		ok "killed_worker_is_avoided_within_stale_ms_and_later_requests_all_succeed"
		echo "# during the kill: $(j "$TMP/kill1" "'lost %d of %d' % (d['lost'], d['sent'])")"
	else
		not_ok "killed_worker_is_avoided_within_stale_ms_and_later_requests_all_succeed" \
			"$TMP/kill1" "$TMP/kill2"
	fi
else
	not_ok "killed_worker_is_avoided_within_stale_ms_and_later_requests_all_succeed" "$TMP/up.log"
fi

# 5. draining: SIGTERM to a worker under load. It finishes what it has, gets
# nothing new, and no request is lost.
if up p2c "--kernel synthetic --svc fixed:1000 --max-batch 1 --capacity 2" \
	"--kernel synthetic --svc fixed:1000 --max-batch 1 --capacity 2"; then
	load "$TMP/drain" --rate 1000 --duration 3 --kernel synthetic &
	lp=$!
	sleep 1
	wpid=$(cat /run/cpn-testbed/$NAME/w1.pid)
	kill -TERM "$wpid"
	for _ in $(seq 50); do kill -0 "$wpid" 2>/dev/null || break; sleep 0.1; done
	alive=0
	kill -0 "$wpid" 2>/dev/null && alive=1
	wait "$lp"
	load "$TMP/drain2" --rate 500 --count 500 --kernel synthetic
	if [ "$alive" = 0 ] && [ "$(j "$TMP/drain" "d['lost'] == 0")" = True ] &&
		[ "$(j "$TMP/drain2" "d['lost'] == 0 and d['replied'] == 500")" = True ] &&
		[ "$(share "$TMP/drain2" 1)" = 0 ]; then
		ok "draining_worker_finishes_its_queue_and_gets_no_new_request"
		echo "# drain run: $(j "$TMP/drain" "'sent %d replied %d busy %d lost %d' % (d['sent'], d['replied'], d['busy'], d['lost'])")"
	else
		not_ok "draining_worker_finishes_its_queue_and_gets_no_new_request" "worker alive: $alive" \
			"$TMP/drain" "$TMP/drain2" "/run/cpn-testbed/$NAME/w1.log"
	fi
else
	not_ok "draining_worker_finishes_its_queue_and_gets_no_new_request" "$TMP/up.log"
fi

# 6. elastic join: a worker not in the config announces itself and gets work.
if $TB down --name "$NAME" && timeout 60 $TB up --name "$NAME" --plane "$PLANE" --policy round-robin --auto-join \
	--worker "--kernel echo --capacity 2" >"$TMP/up.log" 2>&1 &&
	tb join "--kernel echo --capacity 2" >>"$TMP/up.log" 2>&1; then
	joined=0
	for _ in $(seq 50); do
		if tb cpnctl status -j 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if any(n["id"] == 2 and n["joined"] and n["live"] for n in d["nodes"]) else 1)'; then
			joined=1
			break
		fi
		sleep 0.1
	done
	load "$TMP/join" --rate 500 --count 500 --kernel echo
	if [ "$joined" = 1 ] && [ "$(share "$TMP/join" 2)" -gt 0 ] &&
		! grep -q "id: 2" /run/cpn-testbed/$NAME/cpn.yaml; then
		ok "worker_from_auto_join_prefix_gets_work_without_config_change"
	else
		not_ok "worker_from_auto_join_prefix_gets_work_without_config_change" "joined=$joined" \
			"$TMP/join" "$TMP/up.log" "/run/cpn-testbed/$NAME/daemon.log"
	fi
else
	not_ok "worker_from_auto_join_prefix_gets_work_without_config_change" "$TMP/up.log"
fi
