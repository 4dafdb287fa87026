#!/usr/bin/env bash
# e2e: the router run by cpnctl, under continuous traffic.
#
#   client ns                 router ns (cpnctl, daemon, prometheus)          nodes ns
#   c-r 10.201.1.2 ─── r-c 10.201.1.1 [cpn_xdp]   [cpn_xdp] r-n 10.201.2.1 ─── n-r 10.201.2.11 node 1
#   [cpn_pass]                                                                 10.201.2.12 node 2
#                                                                              10.201.2.13 node 3
#                                                                              [cpn_pass]
#
# Workers (cpn_udp.py serve) answer every REQUEST with a REPLY carrying
# their load, answer PROBEs, and send LOAD heartbeats to the router's
# control port. The client sends counted streams (cpn_udp.py stream) in
# which every request must get exactly one REPLY from the VIP. What is
# proved: `cpnctl up` loads, pins and attaches natively, and again changes
# nothing; `status -j` shows load and path latency learned from real
# replies; `apply` adding a node, changing the policy and removing a node
# under traffic loses no request; `kill -9` of the daemon and a restart lose
# none; a drained node gets no new request; a real Prometheus scrapes the
# daemon and its API returns the right cpn_ series; promtool is content; a
# config under which no tenant may use the service is applied with a warning
# naming it, its requests are refused and `status` says why, and a tenant
# `any` opens it to every tenant;
# `apply`, `status` and the daemon's log warn of nodes without keys and of
# auto_join without a key, and say nothing when every key is there;
# usage errors exit 2; `down` leaves nothing behind.
# Pins, state and namespaces are this run's own; all removed on exit.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
CPNCTL=$(pwd)/$BUILD/cpnctl
PASS_OBJ=bpf/cpn_pass.bpf.o
UDP=$(pwd)/selftests/e2e/cpn_udp.py

need_root
need_cmd ip bpftool python3 timeout nsenter ethtool mountpoint promtool prometheus
need_file "$CPNCTL" "$PASS_OBJ"

PIN=/sys/fs/bpf/cpn-ctl-$$
PASS_PIN=/sys/fs/bpf/cpn-ctl-pass-$$
NS_C=cpn-ctl-c-$$
NS_R=cpn-ctl-r-$$
NS_N=cpn-ctl-n-$$
VIP=10.201.9.100
PORT=7470
CTL=7471
MPORT=9470
PPORT=9090
TMP=$(mktemp -d /tmp/cpn-ctl.XXXXXX)
STATE=$TMP/state
bg_pids=()
daemon_pid=""

cleanup() {
	local p
	for p in "${bg_pids[@]}" $daemon_pid; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	# Whatever still runs in the namespaces (a worker under `timeout` outlives
	# the kill of its parent) goes too, before the namespaces themselves.
	for n in "$NS_C" "$NS_R" "$NS_N"; do
		for p in $(ip netns pids "$n" 2>/dev/null); do
			kill -9 "$p" 2>/dev/null
		done
		ip netns del "$n" 2>/dev/null
	done
	rm -rf "$PIN" "$PASS_PIN" "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T=20
in_ns() { # ns, command...: keeps /sys/fs/bpf visible (ip netns exec would remount /sys)
	local ns=$1
	shift
	timeout "$T" nsenter --net="/run/netns/$ns" "$@"
}
ctl() { in_ns "$NS_R" "$CPNCTL" --pin-dir "$PIN" --state-dir "$STATE" "$@"; }
bg_ns() { # ns, seconds, command...: a long-running process, bounded by its own limit
	local ns=$1 secs=$2
	shift 2
	timeout "$secs" nsenter --net="/run/netns/$ns" "$@"
}

N=13
echo "1..$N"
bail() {
	bail_rest "$N" "skipped after an earlier failure: $1"
	exit 1
}
log=$TMP/log
run() { "$@" >>"$log" 2>&1; }
jq_py() { # python expression over the JSON on stdin, bound to d
	python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}

# ---- topology ---------------------------------------------------------------
: >"$log"
mountpoint -q /sys/fs/bpf || run mount -t bpf bpf /sys/fs/bpf
setup() {
	local n
	for n in "$NS_C" "$NS_R" "$NS_N"; do
		run ip netns add "$n" && run ip -n "$n" link set lo up || return 1
	done
	run ip -n "$NS_R" link add r-c type veth peer name c-r netns "$NS_C" &&
		run ip -n "$NS_R" link add r-n type veth peer name n-r netns "$NS_N" &&
		run ip -n "$NS_C" addr add 10.201.1.2/24 dev c-r &&
		run ip -n "$NS_R" addr add 10.201.1.1/24 dev r-c &&
		run ip -n "$NS_R" addr add 10.201.2.1/24 dev r-n &&
		run ip -n "$NS_N" addr add 10.201.2.11/24 dev n-r &&
		run ip -n "$NS_N" addr add 10.201.2.12/24 dev n-r &&
		run ip -n "$NS_N" addr add 10.201.2.13/24 dev n-r || return 1
	for l in "$NS_C c-r" "$NS_R r-c" "$NS_R r-n" "$NS_N n-r"; do
		# shellcheck disable=SC2086
		set -- $l
		run ip -n "$1" link set "$2" up || return 1
	done
	# Local senders on veth: whole checksums (docs/ARCHITECTURE.md).
	run in_ns "$NS_C" ethtool -K c-r tx off && run in_ns "$NS_N" ethtool -K n-r tx off &&
		run in_ns "$NS_R" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.forwarding=1 &&
		run ip -n "$NS_C" route add "$VIP/32" via 10.201.1.1 &&
		run ip -n "$NS_N" route add default via 10.201.2.1 || return 1
	# The peers of the router's ports take native redirects: XDP on them.
	run timeout "$T" bpftool prog load "$PASS_OBJ" "$PASS_PIN" &&
		run in_ns "$NS_C" bpftool net attach xdp pinned "$PASS_PIN" dev c-r &&
		run in_ns "$NS_N" bpftool net attach xdp pinned "$PASS_PIN" dev n-r
}
setup || {
	not_ok "netns_topology" "$log"
	bail "topology"
}

write_cfg() { # file, policy, nodes of the service (e.g. "1, 2"), node ids defined, tenants
	local f=$1 policy=$2 svc_nodes=$3 defined=$4 tenants=${5-"  - {id: 42, services: [resnet]}"} id
	{
		echo "interfaces: [r-c, r-n]"
		echo "control_port: $CTL"
		echo "metrics: 127.0.0.1:$MPORT"
		echo "services:"
		echo "  - {name: resnet, id: 1, vip: $VIP, port: $PORT, policy: $policy,"
		echo "     stale_ms: 1000, nodes: [$svc_nodes]}"
		echo "nodes:"
		for id in $defined; do
			echo "  - {id: $id, addr: \"10.201.2.1$id:$PORT\", weight: 100}"
		done
		echo "tenants:${tenants:+$'\n'$tenants}"
	} >"$f"
}
write_cfg "$TMP/c1.yaml" p2c "1, 2" "1 2"
write_cfg "$TMP/c2.yaml" p2c "1, 2, 3" "1 2 3"
write_cfg "$TMP/c3.yaml" least "1, 2, 3" "1 2 3"
write_cfg "$TMP/c4.yaml" least "2, 3" "2 3"
write_cfg "$TMP/c5.yaml" least "2, 3" "2 3" ""
write_cfg "$TMP/c6.yaml" least "2, 3" "2 3" "  - {id: any, services: [resnet]}"
K1=00112233445566778899aabbccddeeff
K2=ffeeddccbbaa99887766554433221100
# keys: c7 every node and auto_join, c8 node 2 only and auto_join without one.
write_cfg "$TMP/c7.yaml" least "2, 3" "2 3"
sed -i -e "s/weight: 100}/weight: 100, key: \"$K1\"}/" "$TMP/c7.yaml"
echo "auto_join: {prefixes: [10.201.3.0/24], services: [resnet], key: \"$K2\"}" >>"$TMP/c7.yaml"
write_cfg "$TMP/c8.yaml" least "2, 3" "2 3"
sed -i -e "/id: 2,/s/weight: 100}/weight: 100, key: \"$K1\"}/" "$TMP/c8.yaml"
echo "auto_join: {prefixes: [10.201.3.0/24], services: [resnet]}" >>"$TMP/c8.yaml"

# 1. up: load through the skeleton, pin, attach natively, apply.
: >"$log"
if run ctl up --config "$TMP/c1.yaml" && grep -q "loaded and pinned" "$log" &&
	[ -e "$PIN/progs/cpn_xdp" ] && [ -e "$PIN/cpn_node_state" ] &&
	[ "$(in_ns "$NS_R" bpftool net show | grep -cE '^r-[cn]\([0-9]+\) driver id')" -eq 2 ]; then
	ok "cpnctl_up_loads_pins_and_attaches_native_xdp"
else
	in_ns "$NS_R" bpftool net show >>"$log" 2>&1
	not_ok "cpnctl_up_loads_pins_and_attaches_native_xdp" "$log"
	bail "up"
fi
prog_id=$(in_ns "$NS_R" bpftool net show | sed -n 's/^r-c([0-9]*) driver id \([0-9]*\).*/\1/p')

# 2. up again: adopted, nothing changed.
: >"$log"
before=$(ctl status -j)
if run ctl up --config "$TMP/c1.yaml" && grep -q adopted "$log" &&
	[ "$(in_ns "$NS_R" bpftool net show | sed -n 's/^r-c([0-9]*) driver id \([0-9]*\).*/\1/p')" = "$prog_id" ] &&
	[ "$(ctl status -j)" = "$before" ]; then
	ok "cpnctl_up_again_adopts_and_changes_nothing"
else
	not_ok "cpnctl_up_again_adopts_and_changes_nothing" "$log"
fi

# Workers: heartbeats make them live; node 3 is not configured yet.
for id in 1 2 3; do
	bg_ns "$NS_N" 120 python3 "$UDP" serve --listen "10.201.2.1$id:$PORT" --node-id "$id" \
		--load-to "10.201.2.1:$CTL" --capacity 8 --svc-us 200 --duration 110 \
		--stats "$TMP/served.$id" >"$TMP/worker.$id" 2>&1 &
	bg_pids+=($!)
done
live_ok=0
for _ in $(seq 50); do
	if [ "$(ctl status -j | jq_py 'sum(1 for n in d["nodes"] if n["live"])' 2>/dev/null)" = 2 ]; then
		live_ok=1
		break
	fi
	sleep 0.1
done
[ "$live_ok" = 1 ] || {
	ctl status >>"$log" 2>&1
	not_ok "workers_become_live" "$log"
	bail "workers"
}

stream() { # name, count, rate [tenant]: sets stream_rc; JSON in $TMP/stream.name
	in_ns "$NS_C" timeout 60 python3 "$UDP" stream --to "$VIP:$PORT" --service 1 --tenant "${4:-42}" \
		--count "$2" --rate "$3" --timeout 3 --json "$TMP/stream.$1" >"$TMP/stream.$1.out" 2>&1
	stream_rc=$?
}
share_of() { # stream name, node: requests it answered
	jq_py "d['share'].get('$2', 0)" <"$TMP/stream.$1"
}

# 3. status -j: load and path latency learned from the replies themselves; the
# mean learned from the LOADs (200 us), decayed (to a quarter at most) while a
# node idles with nothing re-measured.
stream warm 200 400
st=$(ctl status -j)
if [ "$stream_rc" -eq 0 ] && echo "$st" | jq_py '
all(n["capacity"] == 8 and n["path_measured"] and n["replies"] > 0 and n["requests"] > 0
    and n["live"] and 50 <= n["svc_us"] <= 200 and not n["suspect"] and n["unanswered"] == 0
    for n in d["nodes"] if n["id"] in (1, 2))
and d["services"][0]["requests"] == 200 and d["services"][0]["replies"] == 200' | grep -q True; then
	ok "status_json_shows_load_and_path_latency_learned_from_replies"
else
	not_ok "status_json_shows_load_and_path_latency_learned_from_replies" \
		"$TMP/stream.warm.out" "$st"
fi
echo "# status after 200 requests:"
ctl status | sed 's/^/#   /'

# 4. apply under traffic: add node 3, change the policy, remove node 1.
: >"$log"
stream apply 3000 500 &
spid=$!
sleep 1
run ctl apply --config "$TMP/c2.yaml"
a2=$?
sleep 1
run ctl apply --config "$TMP/c3.yaml"
a3=$?
sleep 1
run ctl apply --config "$TMP/c4.yaml"
a4=$?
wait "$spid"
wait_rc=$?
s3=$(share_of apply 3)
if [ "$a2$a3$a4" = 000 ] && [ "$wait_rc" -eq 0 ] && [ "${s3:-0}" -gt 0 ]; then
	ok "apply_add_node_change_policy_remove_node_under_traffic_loses_no_request"
else
	not_ok "apply_add_node_change_policy_remove_node_under_traffic_loses_no_request" \
		"apply rc: $a2 $a3 $a4, stream rc $wait_rc, node 3 answered $s3" \
		"$TMP/stream.apply.out" "$log"
fi
sed 's/^/# apply stream: /' "$TMP/stream.apply.out"

# 5. the removed node is retired: never chosen again.
stream after 300 500
st=$(ctl status -j)
if [ "$stream_rc" -eq 0 ] && [ "$(share_of after 1)" = 0 ] &&
	echo "$st" | jq_py '[n["admin"] for n in d["nodes"] if n["id"] == 1] == ["retired"]' |
	grep -q True; then
	ok "removed_node_is_retired_and_gets_no_request"
else
	not_ok "removed_node_is_retired_and_gets_no_request" "$TMP/stream.after.out" "$st"
fi

# 6. kill -9 the daemon mid-stream and start another: no request lost.
start_daemon() { # nsenter execs the daemon: $! is the daemon itself (killed on exit)
	nsenter --net="/run/netns/$NS_R" "$CPNCTL" --pin-dir "$PIN" --state-dir "$STATE" daemon \
		--metrics "127.0.0.1:$MPORT" >>"$TMP/daemon.log" 2>&1 &
	daemon_pid=$!
}
start_daemon
sleep 0.5
# A second daemon for the same router refuses to start.
ctl daemon --metrics "127.0.0.1:$((MPORT + 1))" >"$TMP/second" 2>&1
second_rc=$?
stream kill 2500 500 &
spid=$!
sleep 1.5
first=$daemon_pid
kill -9 "$first"
wait "$first" 2>/dev/null
sleep 0.5
start_daemon
wait "$spid"
wait_rc=$?
sleep 0.3
if [ "$wait_rc" -eq 0 ] && ! kill -0 "$first" 2>/dev/null && kill -0 "$daemon_pid" 2>/dev/null &&
	[ "$second_rc" -eq 1 ] && grep -q "another cpnctl daemon" "$TMP/second"; then
	ok "daemon_kill_9_and_restart_under_traffic_loses_no_request"
else
	not_ok "daemon_kill_9_and_restart_under_traffic_loses_no_request" "$TMP/stream.kill.out" \
		"second daemon: rc $second_rc" "$TMP/second" "$TMP/daemon.log"
fi

# 7. a drained node gets no new request; undrained, it can take them all
# again (node 3 drained in turn, so the policy has no other choice).
: >"$log"
run ctl node drain 2
stream drain 300 500
d_rc=$stream_rc
run ctl node undrain 2
run ctl node drain 3
stream undrain 300 500
run ctl node undrain 3
if [ "$d_rc" -eq 0 ] && [ "$(share_of drain 2)" = 0 ] && [ "$stream_rc" -eq 0 ] &&
	[ "$(share_of undrain 2)" = 300 ]; then
	ok "drained_node_gets_no_new_request_and_undrain_restores_it"
else
	not_ok "drained_node_gets_no_new_request_and_undrain_restores_it" "$log" \
		"$TMP/stream.drain.out" "$TMP/stream.undrain.out"
fi

# 8. No tenant may use the service: apply warns naming it, every request is
# refused by the ACL and `status` says so, by reason; a tenant `any` opens it.
: >"$log"
ctl apply --config "$TMP/c5.yaml" >"$TMP/apply5" 2>&1
a5=$?
refused0=$(ctl status -j | jq_py 'd["services"][0]["refused_by_reason"]["acl"]')
stream refused 40 400
r_rc=$stream_rc
st_text=$(ctl status)
st=$(ctl status -j)
ctl apply --config "$TMP/c6.yaml" >"$TMP/apply6" 2>&1
a6=$?
stream anyone 200 400 4242
any_rc=$stream_rc
run ctl apply --config "$TMP/c4.yaml"
if [ "$a5" -eq 0 ] && grep -q "warning: no tenant may use service 'resnet' (id 1)" "$TMP/apply5" &&
	[ "$r_rc" -ne 0 ] && [ "$(jq_py 'd["replied"]' <"$TMP/stream.refused")" = 0 ] &&
	echo "$st" | jq_py "d['services'][0]['refused_by_reason']['acl'] - $refused0 == 40 and
not d['services'][0]['tenants_allowed']" | grep -q True &&
	echo "$st_text" | grep -q "refused acl [0-9]" &&
	echo "$st_text" | grep -q "warning: no tenant may use this service" &&
	[ "$a6" -eq 0 ] && ! grep -q "warning: no tenant" "$TMP/apply6" && [ "$any_rc" -eq 0 ] &&
	[ "$(jq_py 'd["replied"]' <"$TMP/stream.anyone")" = 200 ]; then
	ok "no_tenant_for_a_service_warns_and_status_shows_refusals_by_reason_any_opens_it"
else
	not_ok "no_tenant_for_a_service_warns_and_status_shows_refusals_by_reason_any_opens_it" \
		"apply rc $a5, $a6; streams rc $r_rc, $any_rc" "$TMP/apply5" "$TMP/apply6" \
		"$st_text" "$TMP/stream.anyone.out" "$log"
fi
echo "# status with no tenant for the service:"
echo "$st_text" | sed 's/^/#   /'

# 9. promtool on the raw exposition.
metrics=$TMP/metrics.txt
in_ns "$NS_R" python3 -c "
import urllib.request
print(urllib.request.urlopen('http://127.0.0.1:$MPORT/metrics', timeout=5).read().decode(), end='')
" >"$metrics" 2>>"$log"
if [ -s "$metrics" ] && out=$(promtool check metrics <"$metrics" 2>&1) && [ -z "$out" ]; then
	ok "promtool_check_metrics_is_silent"
else
	not_ok "promtool_check_metrics_is_silent" "${out:-empty exposition}" "$TMP/daemon.log"
fi

# 10. a real Prometheus scrapes the daemon every second; its API agrees.
if true; then
	cat >"$TMP/prom.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: cpn
    static_configs: [{targets: ["127.0.0.1:$MPORT"]}]
EOF
	bg_ns "$NS_R" 60 prometheus --config.file="$TMP/prom.yml" \
		--storage.tsdb.path="$TMP/prom" --web.listen-address="127.0.0.1:$PPORT" \
		>"$TMP/prom.log" 2>&1 &
	bg_pids+=($!)
	want=$(ctl status -j | jq_py 'd["services"][0]["requests"]')
	got=""
	for _ in $(seq 40); do
		got=$(in_ns "$NS_R" python3 -c "
import json, urllib.parse, urllib.request
def q(e):
    u = 'http://127.0.0.1:$PPORT/api/v1/query?query=' + urllib.parse.quote(e)
    r = json.load(urllib.request.urlopen(u, timeout=2))['data']['result']
    return r[0]['value'][1] if r else ''
print(q('cpn_service_requests_total{service=\"resnet\"}'), q('cpn_node_live{node=\"2\"}'),
      q('cpn_service_nodes{service=\"resnet\"}'), q('cpn_build_info'))
" 2>"$TMP/prom.query")
		echo "$got" >>"$TMP/prom.got"
		[ "$got" = "$want 1 2 1" ] && break
		sleep 0.5
	done
	if [ "$got" = "$want 1 2 1" ]; then
		ok "prometheus_scrapes_daemon_and_returns_cpn_series"
	else
		not_ok "prometheus_scrapes_daemon_and_returns_cpn_series" \
			"query gave '$got', wanted '$want 1 2 1'" "$TMP/prom.got" "$TMP/prom.query" "$TMP/prom.log"
	fi
fi

# 11. usage errors: exit 2 with usage.
bad=0
for args in "" "frob" "status --bogus" "node add" "node add 0 10.0.0.1:1" "node add 5 nowhere" \
	"service add x --id 1" "service add x --id 1 --vip 1.2.3.4 --port 7 --policy nope" \
	"tenant add 7" "apply" "up extra" "node drain abc"; do
	# shellcheck disable=SC2086
	ctl $args >"$TMP/usage" 2>&1
	rc=$?
	if [ "$rc" -ne 2 ] || ! grep -qi "usage" "$TMP/usage"; then
		bad=1
		echo "# cpnctl $args: exit $rc, expected 2 with usage"
	fi
done
[ "$bad" -eq 0 ] && ok "usage_errors_exit_2_with_usage" || not_ok "usage_errors_exit_2_with_usage"

# 12. security warnings: a node without a key, auto_join without one, on
# apply's stderr, in status (text and -j) and in the daemon's log; none with
# every key set.
fails=()
W_NODE="warning: service resnet: node 3 has no key"
W_JOIN="warning: auto_join has no key"
ctl apply --config "$TMP/c7.yaml" >"$TMP/apply7" 2>&1 || fails+=("apply c7 failed: $(cat "$TMP/apply7")")
grep -q "warning" "$TMP/apply7" && fails+=("apply with every key warned: $(cat "$TMP/apply7")")
[ "$(ctl status -j | jq_py 'd["warnings"]')" = "[]" ] || fails+=("status -j warns with every key set")
ctl apply --config "$TMP/c8.yaml" >"$TMP/apply8" 2>&1 || fails+=("apply c8 failed: $(cat "$TMP/apply8")")
grep -qF "cpnctl: $W_NODE" "$TMP/apply8" || fails+=("apply did not warn of node 3: $(cat "$TMP/apply8")")
grep -qF "cpnctl: $W_JOIN" "$TMP/apply8" || fails+=("apply did not warn of auto_join: $(cat "$TMP/apply8")")
st_text=$(ctl status)
echo "$st_text" | grep -qF "$W_NODE" && echo "$st_text" | grep -qF "$W_JOIN" ||
	fails+=("status does not show the warnings")
[ "$(ctl status -j | jq_py 'len(d["warnings"])')" = 2 ] || fails+=("status -j: not 2 warnings")
for _ in $(seq 40); do
	grep -qF "cpnctl daemon: $W_NODE" "$TMP/daemon.log" &&
		grep -qF "cpnctl daemon: $W_JOIN" "$TMP/daemon.log" && break
	sleep 0.05
done
grep -qF "cpnctl daemon: $W_NODE" "$TMP/daemon.log" && grep -qF "cpnctl daemon: $W_JOIN" "$TMP/daemon.log" ||
	fails+=("the daemon did not log the warnings within 2 s")
run ctl apply --config "$TMP/c4.yaml"
if [ ${#fails[@]} -eq 0 ]; then
	ok "keyless_nodes_and_auto_join_without_key_warned_on_apply_status_and_daemon_log"
	echo "# $(grep -F "$W_NODE" "$TMP/apply8")"
	echo "# $(grep -F "$W_JOIN" "$TMP/apply8")"
else
	not_ok "keyless_nodes_and_auto_join_without_key_warned_on_apply_status_and_daemon_log" \
		"${fails[@]}" "$TMP/daemon.log"
fi

# 13. down: detached, unpinned, state forgotten; the daemon may stay.
kill "$daemon_pid" 2>/dev/null
wait "$daemon_pid" 2>/dev/null
daemon_pid=""
: >"$log"
if run ctl down && [ ! -e "$PIN" ] && ! in_ns "$NS_R" bpftool net show | grep -qE '^r-[cn]' &&
	[ -z "$(ls "$STATE"/*.yaml 2>/dev/null)" ]; then
	ok "cpnctl_down_detaches_unpins_and_forgets"
else
	in_ns "$NS_R" bpftool net show >>"$log" 2>&1
	not_ok "cpnctl_down_detaches_unpins_and_forgets" "$log"
fi
tap_ran "$N"
