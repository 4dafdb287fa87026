#!/usr/bin/env bash
# e2e: dispatch: late on cpn-fwd (include/cpn/late.h, dpdk/fwd_late.c).
#
# tools/testbed up --plane dpdk --dispatch late: cpn-fwd steers svc and
# holds its requests until a node has a free slot (JBSQ(n)). Three workers
# of fixed 5 ms, capacity 1, one request executing, and a queue of one
# (cpn-worker --queue 1: a second waiting request is answered BUSY by the
# worker itself). So a node sent more than two at once says so, and one
# sent more than its slots shows in the router's counters. Checked:
#   - JBSQ(1) under 12 concurrent requests: all answered, none refused by
#     a worker, requests held at the router and bound as slots freed;
#   - the same load bound early (least) overflows the workers' queues
#     (the control: the workers' limit catches what late binding avoids);
#   - JBSQ(2): still no worker refuses (one executing, one waiting);
#   - the queue bound (max_queue): BUSY with reason queue, nothing lost;
#   - max_wait_us: BUSY with reason wait at once, nothing lost;
#   - a node that stops (SIGSTOP): its slot times out, the others serve,
#     at most its bound lost;
#   - reconfiguration with requests held: dispatch early lets them go at
#     once (bound early), the service removed answers them BUSY; none lost;
#   - SIGTERM with requests held: bound early before cpn-fwd exits;
#   - the hand-off plane (--plane handoff: cpn_xdp on the ports, cpn-fwd
#     behind AF_XDP): the late service's answers are handed to cpn-fwd as
#     its requests are, so its slots free: JBSQ(1) there too.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
TB=tools/testbed
NAME=lat

need_root
need_file "$BUILD/cpn-fwd" "$BUILD/cpn-load" "$BUILD/cpn-worker" "$BUILD/cpnctl"
need_cmd python3 ip nsenter curl timeout

TMP=$(mktemp -d /tmp/cpn-late.XXXXXX)
cleanup() {
	$TB down --name $NAME >/dev/null 2>&1
	$TB down --name lah >/dev/null 2>&1
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

T=13
echo "1..$T"
bail() {
	bail_rest "$T" "$1 (not reached)"
	exit 1
}

W="--kernel synthetic --svc fixed:5000 --capacity 1 --max-batch 1 --queue 1"
if ! timeout 120 $TB up --name $NAME --plane dpdk --policy least --dispatch late \
	--late-bound 1 --worker "$W" --worker "$W" --worker "$W" >"$TMP/up.log" 2>&1; then
	not_ok "testbed_up_late" "$TMP/up.log"
	bail "testbed"
fi
ok "testbed_up_late"
eval "$($TB info --name $NAME)"
FWD_LOG=$STATE/fwd.log

metric() { # name{labels} prefix: cpn-fwd's value (0 when absent)
	$TB exec --name $NAME router -- curl -s "http://$FWD_METRICS/metrics" |
		awk -v m="$1" 'index($0, m) == 1 { v = $NF } END { print v + 0 }'
}
field() { python3 -c "import json,sys; print(json.load(open('$1'))['$2'])"; }
# load conc count out.json: closed loop, `conc` outstanding, `count` requests.
load() {
	$TB exec --name $NAME client -- "$BUILD/cpn-load" --to "$VIP:$PORT" --service 1 \
		--tenant "$TENANT" --concurrency "$1" --count "$2" --timeout 1500 \
		--kernel synthetic --json >"$3" 2>"$3.err"
}
# svc FIELDS: apply the testbed's config with svc's fields replaced (the
# policy, dispatch, bounds). Waits until cpn-fwd has read it (it re-reads
# the pinned maps every second).
svc() {
	python3 - "$STATE/cpn.yaml" "$TMP/cfg.yaml" "$1" <<'EOF'
import re, sys
src, dst, fields = sys.argv[1], sys.argv[2], sys.argv[3]
out, skip = [], False
for line in open(src):
    if line.startswith("  - {name: svc,"):
        skip = not line.rstrip().endswith("}")
        if fields:
            out.append("  - {name: svc, id: 1, vip: 10.90.100.1, port: 7470, stale_ms: 500, "
                       + fields + ", nodes: [1, 2, 3]}\n")
        continue
    if skip:
        skip = not line.rstrip().endswith("}")
        continue
    out.append(line)
open(dst, "w").write("".join(out))
EOF
	$TB cpnctl --name $NAME apply --config "$TMP/cfg.yaml" >"$TMP/apply.log" 2>&1 || return 1
	sleep 1.3
}
node_busy() { metric 'cpn_service_node_busy_total{service_id="1"'; }
svc_busy() { metric "cpn_service_busy_total{service_id=\"1\",reason=\"$1\""; }
# max_slots PID OUT: the most slots cpn-fwd had taken at one node, sampled
# from /metrics (cpn_late_slots) while PID runs (at most 10 s).
max_slots() {
	local m=0 v
	for _ in $(seq 200); do
		kill -0 "$1" 2>/dev/null || break
		v=$($TB exec --name $NAME router -- curl -s "http://$FWD_METRICS/metrics" |
			awk '/^cpn_late_slots\{/ { if ($NF + 0 > m) m = $NF + 0 } END { print m + 0 }')
		[ "${v:-0}" -gt "$m" ] && m=$v
		sleep 0.05
	done
	echo "$m" >"$2"
}
# load_bg out.json timeout_ms: 24 outstanding, 1500 requests (2.5 s at
# 600/s: longer than cpn-fwd takes to read a change), in the background.
load_bg() {
	$TB exec --name $NAME client -- "$BUILD/cpn-load" --to "$VIP:$PORT" --service 1 \
		--tenant "$TENANT" --concurrency 24 --count 1500 --timeout "$2" --kernel synthetic \
		--json >"$1" 2>"$1.err" &
}
summary() { # out.json: sent replied busy lost
	python3 -c "import json; d=json.load(open('$1')); print(d['sent'], d['replied'], d['busy'], d['lost'])"
}

# 2. cpnctl status says how the service dispatches.
$TB cpnctl --name $NAME status -j >"$TMP/status.json" 2>&1
$TB cpnctl --name $NAME status >"$TMP/status.txt" 2>&1
check "status_shows_dispatch_late" "$TMP/status.json" python3 -c "
import json, sys
s = json.load(open('$TMP/status.json'))['services'][0]
sys.exit(0 if s['dispatch'] == 'late' and s['late_bound'] == 1 and
         'least/late1' in open('$TMP/status.txt').read() else 1)"

# 3. JBSQ(1): nothing waits at a worker, so no worker refuses.
nb0=$(node_busy) h0=$(metric 'cpn_packets_total{action="req_held"') b0=$(metric 'cpn_late_bound_total{service_id="1"')
e0=$(metric cpn_late_slots_expired_total)
load 12 600 "$TMP/l1.json" &
lp=$!
max_slots $lp "$TMP/l1.slots"
wait $lp
read -r sent replied busy lost < <(summary "$TMP/l1.json")
bs1=$(python3 -c "import json; print(json.load(open('$TMP/l1.json'))['busy_status'])")
nb1=$(node_busy) h1=$(metric 'cpn_packets_total{action="req_held"') b1=$(metric 'cpn_late_bound_total{service_id="1"')
ms=$(cat "$TMP/l1.slots")
echo "late n=1: sent $sent replied $replied busy $busy $bs1 lost $lost; slots expired +$(($(metric cpn_late_slots_expired_total) - e0)); node BUSY +$((nb1 - nb0)); held +$((h1 - h0)) bound later +$((b1 - b0)); most slots at a node $ms" >"$TMP/l1.txt"
check "late_bound_1_no_request_waits_at_a_worker" "$TMP/l1.txt" \
	test "$sent" -eq 600 -a "$replied" -eq 600 -a $((nb1 - nb0)) -eq 0 \
	-a $((h1 - h0)) -gt 100 -a $((b1 - b0)) -eq $((h1 - h0)) -a "$ms" -eq 1

# 4. Control: bound early, the same load overflows the workers' queues.
svc "policy: least, max_queue: 0" || bail "apply"
nb0=$(node_busy)
load 12 300 "$TMP/early.json"
read -r sent replied busy lost < <(summary "$TMP/early.json")
nb1=$(node_busy)
echo "early least: sent $sent replied $replied busy $busy lost $lost; node BUSY +$((nb1 - nb0))" >"$TMP/early.txt"
check "control_early_binding_overflows_the_workers" "$TMP/early.txt" \
	test $((nb1 - nb0)) -gt 0 -a "$busy" -gt 0

# 5. JBSQ(2): two slots at each node, never more. (The workers' queue of
# one may refuse one now and then: a worker sends its reply before it takes
# the next waiting request, and the router's next may come in between.)
svc "policy: least, dispatch: late, late_bound: 2" || bail "apply"
load 12 600 "$TMP/l2.json" &
lp=$!
max_slots $lp "$TMP/l2.slots"
wait $lp
read -r sent replied busy lost < <(summary "$TMP/l2.json")
ms=$(cat "$TMP/l2.slots")
echo "late n=2: sent $sent replied $replied busy $busy lost $lost; most slots at a node $ms" >"$TMP/l2.txt"
check "late_bound_2_two_slots_per_node" "$TMP/l2.txt" \
	test "$sent" -eq 600 -a "$lost" -eq 0 -a $((replied + busy)) -eq 600 -a "$ms" -eq 2

# 6. The queue bound: 24 outstanding, 3 bound, at most 4 held.
svc "policy: least, dispatch: late, max_queue: 4" || bail "apply"
q0=$(svc_busy queue)
load 24 600 "$TMP/q.json"
read -r sent replied busy lost < <(summary "$TMP/q.json")
q1=$(svc_busy queue)
bq=$(python3 -c "import json; print(json.load(open('$TMP/q.json'))['busy_status'].get('2', 0))")
echo "max_queue 4: sent $sent replied $replied busy $busy (queue: $bq) lost $lost; router BUSY queue +$((q1 - q0))" >"$TMP/q.txt"
check "late_queue_bound_refuses_with_busy_queue" "$TMP/q.txt" \
	test "$sent" -eq 600 -a "$lost" -eq 0 -a $((replied + busy)) -eq 600 \
	-a "$bq" -gt 0 -a $((q1 - q0)) -eq "$bq" -a "$replied" -gt 0

# 7. max_wait_us: 3 slots of 5 ms free one every 1.7 ms; a request with
# four or more before it would be answered after more than 12 ms.
svc "policy: least, dispatch: late, max_wait_us: 12000" || bail "apply"
w0=$(svc_busy wait) t0=$(metric 'cpn_late_timed_out_total{service_id="1"')
load 24 600 "$TMP/w.json"
read -r sent replied busy lost < <(summary "$TMP/w.json")
w1=$(svc_busy wait) t1=$(metric 'cpn_late_timed_out_total{service_id="1"')
python3 -c "import json; l=json.load(open('$TMP/w.json'))['latency_us']; print('answered p99', l['p99'], 'us')" >"$TMP/w.lat" 2>&1
echo "max_wait_us 12000: sent $sent replied $replied busy $busy lost $lost; BUSY wait +$((w1 - w0)) (timed out at the queue +$((t1 - t0))); $(cat "$TMP/w.lat")" >"$TMP/w.txt"
check "late_max_wait_refuses_with_busy_wait_at_once" "$TMP/w.txt" \
	test "$sent" -eq 600 -a "$lost" -eq 0 -a $((replied + busy)) -eq 600 \
	-a $((w1 - w0)) -gt 0 -a "$replied" -gt 0

# 8. A node that stops: its slot times out, the others take the queue.
svc "policy: least, dispatch: late" || bail "apply"
e0=$(metric cpn_late_slots_expired_total)
wpid=$(cat "$STATE/w1.pid")
kill -STOP "$wpid"
load 6 300 "$TMP/dead.json"
read -r sent replied busy lost < <(summary "$TMP/dead.json")
e1=$(metric cpn_late_slots_expired_total)
kill -CONT "$wpid"
echo "worker 1 stopped (pid $wpid): sent $sent replied $replied busy $busy lost $lost; slots expired +$((e1 - e0))" >"$TMP/dead.txt"
check "stopped_node_slot_times_out_and_others_serve" "$TMP/dead.txt" \
	test "$sent" -eq 300 -a "$lost" -le 1 -a $((replied + busy + lost)) -eq 300 \
	-a $((e1 - e0)) -ge 1 -a "$replied" -ge 290
sleep 0.6 # worker 1 answers and reports again

# 9. Reconfiguration with requests held: 24 outstanding, 3 bound, 21 held
# (1500 requests: 2.5 s at 600/s, longer than cpn-fwd takes to read the
# change); dispatch early lets the held ones go at once (least: to the
# workers, whose queues of one refuse most: BUSY, not lost).
svc "policy: least, dispatch: late" || bail "apply"
early0=$(metric 'cpn_late_early_total{service_id="1"')
load_bg "$TMP/rc.json" 1500
lp=$!
sleep 0.3
svc "policy: least" >/dev/null
held_then=$(metric 'cpn_late_held{service_id="1"')
wait $lp
read -r sent replied busy lost < <(summary "$TMP/rc.json")
early1=$(metric 'cpn_late_early_total{service_id="1"')
echo "switched to early while held: sent $sent replied $replied busy $busy lost $lost; held ones bound early +$((early1 - early0)), held after the switch $held_then" >"$TMP/rc.txt"
check "reconfigured_to_early_held_requests_are_bound_not_lost" "$TMP/rc.txt" \
	test "$sent" -eq 1500 -a "$lost" -eq 0 -a $((replied + busy)) -eq 1500 \
	-a $((early1 - early0)) -gt 0 -a "$held_then" -eq 0

# 10. The service removed while requests are held: they are answered BUSY
# (no node); what the client sends after is no longer a service's (lost).
svc "policy: least, dispatch: late" || bail "apply"
load_bg "$TMP/gone.json" 300
lp=$!
sleep 0.3
grep -v "name: svc\|max_wait_us:.*nodes:" "$STATE/cpn.yaml" |
	sed -e 's/^services:$/services: []/' -e 's/services: \[svc\]/services: []/' >"$TMP/none.yaml"
$TB cpnctl --name $NAME apply --config "$TMP/none.yaml" >"$TMP/apply3.log" 2>&1
wait $lp
read -r sent replied busy lost < <(summary "$TMP/gone.json")
no_node=$(python3 -c "import json; print(json.load(open('$TMP/gone.json'))['busy_status'].get('3', 0))")
echo "service removed while held: sent $sent replied $replied busy $busy (no node: $no_node) lost $lost" >"$TMP/gone.txt"
# Served before the removal (slots left by the switch to early and back
# are not lost), and at most the 21 held answered BUSY no node after it.
check "removed_service_held_requests_answered_busy" "$TMP/gone.txt" \
	test "$replied" -gt 50 -a "$no_node" -gt 0 -a "$no_node" -le 21

# 11. SIGTERM with requests held: bound early before cpn-fwd exits; the
# final counters say how many (and that the service removed above had its
# held requests answered: gone).
svc "policy: least, dispatch: late" || bail "apply"
load_bg "$TMP/term.json" 300
lp=$!
sleep 0.3
pid=$(cat "$STATE/fwd.pid")
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
rm -f "$STATE/fwd.pid"
wait $lp
line=$(sed -n '/final counters/,$p' "$FWD_LOG" | grep '^  late service 1:' | tail -1)
echo "SIGTERM with requests held: '$line'" >"$TMP/term.txt"
tail -25 "$FWD_LOG" >>"$TMP/term.txt"
term_ok() {
	local held early gone
	held=$(echo "$line" | sed -n 's/.* held \([0-9]*\) .*/\1/p')
	early=$(echo "$line" | sed -n 's/.* early \([0-9]*\) .*/\1/p')
	gone=$(echo "$line" | sed -n 's/.* gone \([0-9]*\)$/\1/p')
	[ "${held:-x}" = 0 ] && [ "${early:-0}" -gt 0 ] && [ "${gone:-0}" -gt 0 ]
}
check "sigterm_binds_held_requests_early_before_exit" "$TMP/term.txt" term_ok

# 12-13. The hand-off plane: requests and answers of the late service go
# through cpn_xdp to cpn-fwd (reply_dpdk), which frees the slots.
$TB down --name $NAME >/dev/null 2>&1
if ! timeout 120 $TB up --name lah --plane handoff --policy least --dispatch late \
	--worker "$W" --worker "$W" >"$TMP/uph.log" 2>&1; then
	not_ok "testbed_up_handoff_late" "$TMP/uph.log"
	bail_rest "$T" "handoff (not reached)"
	exit 1
fi
ok "testbed_up_handoff_late"
NAME=lah
eval "$($TB info --name $NAME)"
xdp_stat() { $TB cpnctl --name $NAME stats -j | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
r0=$(xdp_stat reply_dpdk) q0=$(xdp_stat req_dpdk) nb0=$(node_busy) b0=$(metric 'cpn_late_bound_total{service_id="1"')
load 8 400 "$TMP/h.json"
read -r sent replied busy lost < <(summary "$TMP/h.json")
r1=$(xdp_stat reply_dpdk) q1=$(xdp_stat req_dpdk) nb1=$(node_busy) b1=$(metric 'cpn_late_bound_total{service_id="1"')
echo "handoff late n=1: sent $sent replied $replied busy $busy lost $lost; XDP handed off requests +$((q1 - q0)) answers +$((r1 - r0)); cpn-fwd node BUSY +$((nb1 - nb0)) bound later +$((b1 - b0))" >"$TMP/h.txt"
check "handoff_late_answers_go_to_cpn_fwd_and_free_slots" "$TMP/h.txt" \
	test "$sent" -eq 400 -a "$replied" -eq 400 -a $((q1 - q0)) -eq 400 \
	-a $((r1 - r0)) -eq 400 -a $((nb1 - nb0)) -eq 0 -a $((b1 - b0)) -gt 0
