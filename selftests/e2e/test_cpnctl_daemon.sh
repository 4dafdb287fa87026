#!/usr/bin/env bash
# e2e: what the cpnctl daemon adds to a running router.
#
#   client ns                 router ns (cpnctl up, cpnctl daemon)            nodes ns
#   c-r 10.202.1.2 ─── r-c 10.202.1.1 [cpn_xdp]   [cpn_xdp] r-n 10.202.2.1 ─── n-r 10.202.2.11 node 1 (resnet)
#   [cpn_pass]                         route 10.202.3.0/24 dev r-n              10.202.2.12 node 2 (idle)
#                                                                               10.202.2.2x joiners
#                                                                               10.202.3.31 outsider
#                                                                               [cpn_pass]
#
# Workers are cpn_udp.py serve: they answer REQUEST with REPLY and PROBE with
# PROBE_ACK and send LOAD heartbeats to the router's control port, signed
# with --auth-key when given. What is proved, each against a bound:
#   - probes: an idle configured node gets its path latency measured by the
#     daemon's PROBEs alone (--probe-ms 200), and the worker counted them;
#   - staleness: a stopped configured worker is logged "went stale" within
#     stale_ms and a margin;
#   - elastic join: a worker at an auto_join address sending LOAD is admitted
#     within ~2 s and then takes a share of the VIP's traffic, with no
#     config change;
#   - a LOAD from outside the auto_join prefixes is not admitted;
#   - retire: a joined worker that stops leaves the service after retire_ms
#     and the node list after 10 s of quiet;
#   - SIGHUP re-applies --config; a broken file is refused, the daemon lives
#     on and the running state is unchanged;
#   - an auto_join key: unsigned and wrongly signed LOADs are refused (and
#     logged why), a fresh signed join with its join tag is admitted, and the
#     joined node's reports must stay signed: unsigned ones do not keep it
#     live.
# Pins, state and namespaces are this run's own; all removed on exit.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
CPNCTL=$(pwd)/$BUILD/cpnctl
PASS_OBJ=bpf/cpn_pass.bpf.o
UDP=$(pwd)/selftests/e2e/cpn_udp.py
SEC=$(pwd)/selftests/e2e/cpn_sec.py

need_root
need_cmd ip bpftool python3 timeout nsenter ethtool mountpoint
need_file "$CPNCTL" "$PASS_OBJ"

PIN=/sys/fs/bpf/cpn-dmn-$$
PASS_PIN=/sys/fs/bpf/cpn-dmn-pass-$$
NS_C=cpn-dmn-c-$$
NS_R=cpn-dmn-r-$$
NS_N=cpn-dmn-n-$$
VIP=10.202.9.100
IDLE_VIP=10.202.9.101
PORT=7470
CTL=7471
MPORT=9470
RTR=10.202.2.1
STALE_MS=500
RETIRE_MS=1000
KEY=00112233445566778899aabbccddeeff
BADKEY=ffeeddccbbaa99887766554433221100
TMP=$(mktemp -d /tmp/cpn-dmn.XXXXXX)
STATE=$TMP/state
CFG=$TMP/cpn.yaml
DLOG=$TMP/daemon.log
declare -A wpid=()
daemon_pid=""

cleanup() {
	local p n k
	# TERM first (timeout passes it on), then whatever is left in our
	# namespaces goes with SIGKILL, by pid; nothing waits unbounded.
	for p in "${wpid[@]}" $daemon_pid; do
		kill -TERM "$p" 2>/dev/null
	done
	for _ in $(seq 20); do
		k=0
		for p in "${wpid[@]}" $daemon_pid; do
			kill -0 "$p" 2>/dev/null && k=1
		done
		[ "$k" = 0 ] && break
		sleep 0.1
	done
	for n in "$NS_C" "$NS_R" "$NS_N"; do
		for p in $(ip netns pids "$n" 2>/dev/null); do
			kill -9 "$p" 2>/dev/null
		done
	done
	for p in "${wpid[@]}" $daemon_pid; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for n in "$NS_C" "$NS_R" "$NS_N"; do
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
bg_ns() { # ns, seconds, command...: a long-running process, bounded by its own limit.
	# Only ever run with '&': the exec makes $! the timeout itself, which passes
	# TERM and HUP on to the command (a plain function call would leave $! a
	# subshell whose death leaves the command running). --foreground: without
	# it timeout passes on only the first of the signals it is sent.
	local ns=$1 secs=$2
	shift 2
	exec timeout --foreground "$secs" nsenter --net="/run/netns/$ns" "$@"
}

N=7
echo "1..$N"
bail() {
	bail_rest "$N" "skipped after an earlier failure: $1"
	exit 1
}
log=$TMP/log
run() { "$@" >>"$log" 2>&1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# status -j, judged by a Python expression; N(id) is the node (or None),
# S(name) the service.
st() {
	ctl status -j 2>>"$log" | python3 -c "
import json, sys
d = json.load(sys.stdin)
N = lambda i: next((n for n in d['nodes'] if n['id'] == i), None)
S = lambda s: next((x for x in d['services'] if x['name'] == s), None)
print($1)" 2>>"$log"
}
st_true() { [ "$(st "bool($1)")" = True ]; }
counter() { # name: a data plane counter from stats -j
	ctl stats -j 2>>"$log" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}
until_ms() { # bound in ms, command...: 0 as soon as the command holds, 1 at the bound
	local end=$(($(now_ms) + $1))
	shift
	while :; do
		"$@" && return 0
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.05
	done
}
logged() { grep -qF -- "$1" "$DLOG"; }
dlog() { # the daemon's log, repeated lines counted once, for a failure report
	uniq -c "$DLOG" | sed 's/^ *1 //' >"$TMP/daemon.log.short"
	echo "$TMP/daemon.log.short"
}

# ---- topology ---------------------------------------------------------------
: >"$log"
mountpoint -q /sys/fs/bpf || run mount -t bpf bpf /sys/fs/bpf
setup() {
	local n a
	for n in "$NS_C" "$NS_R" "$NS_N"; do
		run ip netns add "$n" && run ip -n "$n" link set lo up || return 1
	done
	run ip -n "$NS_R" link add r-c type veth peer name c-r netns "$NS_C" &&
		run ip -n "$NS_R" link add r-n type veth peer name n-r netns "$NS_N" &&
		run ip -n "$NS_C" addr add 10.202.1.2/24 dev c-r &&
		run ip -n "$NS_R" addr add 10.202.1.1/24 dev r-c &&
		run ip -n "$NS_R" addr add "$RTR/24" dev r-n || return 1
	for a in 11 12 13 21 22 23; do
		run ip -n "$NS_N" addr add "10.202.2.$a/24" dev n-r || return 1
	done
	run ip -n "$NS_N" addr add 10.202.3.31/24 dev n-r || return 1
	for l in "$NS_C c-r" "$NS_R r-c" "$NS_R r-n" "$NS_N n-r"; do
		# shellcheck disable=SC2086
		set -- $l
		run ip -n "$1" link set "$2" up || return 1
	done
	# Local senders on veth: whole checksums (docs/ARCHITECTURE.md).
	run in_ns "$NS_C" ethtool -K c-r tx off && run in_ns "$NS_N" ethtool -K n-r tx off &&
		run in_ns "$NS_R" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.forwarding=1 &&
		run ip -n "$NS_C" route add "$VIP/32" via 10.202.1.1 &&
		run ip -n "$NS_N" route add default via "$RTR" || return 1
	# The outsider: another prefix on the same wire, routed by the router.
	run ip -n "$NS_R" route add 10.202.3.0/24 dev r-n || return 1
	# The peers of the router's ports take native redirects: XDP on them.
	run timeout "$T" bpftool prog load "$PASS_OBJ" "$PASS_PIN" &&
		run in_ns "$NS_C" bpftool net attach xdp pinned "$PASS_PIN" dev c-r &&
		run in_ns "$NS_N" bpftool net attach xdp pinned "$PASS_PIN" dev n-r
}

# policy of resnet, its configured nodes, node ids defined, auto_join extra
write_cfg() {
	local f=$1 policy=$2 svc_nodes=$3 defined=$4 aj_extra=${5:-} id
	{
		echo "interfaces: [r-c, r-n]"
		echo "control_port: $CTL"
		echo "metrics: 127.0.0.1:$MPORT"
		echo "services:"
		echo "  - {name: resnet, id: 1, vip: $VIP, port: $PORT, policy: $policy,"
		echo "     stale_ms: $STALE_MS, nodes: [$svc_nodes]}"
		echo "  - {name: idle, id: 2, vip: $IDLE_VIP, port: $PORT, policy: p2c,"
		echo "     stale_ms: $STALE_MS, nodes: [2]}"
		echo "nodes:"
		for id in $defined; do
			echo "  - {id: $id, addr: \"10.202.2.1$id:$PORT\", weight: 100}"
		done
		echo "tenants:"
		echo "  - {id: 42, services: [resnet, idle]}"
		echo "auto_join: {prefixes: [10.202.2.0/24], services: [resnet],"
		echo "            retire_ms: $RETIRE_MS$aj_extra}"
	} >"$f"
}

worker() { # name, node id, address, serve options...: a worker in the nodes ns
	local name=$1 id=$2 addr=$3
	shift 3
	bg_ns "$NS_N" 60 python3 "$UDP" serve --listen "$addr:$PORT" --node-id "$id" \
		--load-to "$RTR:$CTL" --capacity 8 --svc-us 200 --duration 55 \
		--stats "$TMP/stats.$name" "$@" >"$TMP/worker.$name" 2>&1 &
	wpid[$name]=$!
}
stop_worker() { # name: SIGTERM (the worker writes its --stats), bounded wait
	local p=${wpid[$1]}
	kill -TERM "$p" 2>/dev/null
	for _ in $(seq 30); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	unset "wpid[$1]"
}

t_start=$(now_ms)
setup || {
	not_ok "netns_topology" "$log"
	bail "topology"
}
write_cfg "$CFG" round-robin "1" "1 2"
run ctl up --config "$CFG" || {
	not_ok "cpnctl_up" "$log"
	bail "cpnctl up"
}
worker n1 1 10.202.2.11
worker n2 2 10.202.2.12
bg_ns "$NS_R" 90 "$CPNCTL" --pin-dir "$PIN" --state-dir "$STATE" daemon --config "$CFG" \
	--probe-ms 200 >"$DLOG" 2>&1 &
daemon_pid=$!
until_ms 5000 logged "watching $PIN" || {
	not_ok "daemon_starts" "$(dlog)" "$log"
	bail "daemon"
}
t_daemon=$(now_ms)

# 1. probes: node 2 serves no VIP that gets traffic; only the daemon's
# PROBEs can measure its path.
probed() {
	st_true "N(2) and N(2)['path_measured'] and N(2)['path_us'] > 0 and
	         N(2)['requests'] == 0 and N(2)['replies'] == 0"
}
if until_ms 2000 probed; then
	took=$(($(now_ms) - t_daemon))
	st_probe=$(st "N(2)")
	t_stop2=$(now_ms)
	stop_worker n2
	probes=$(sed -n 's/^probes=//p' "$TMP/stats.n2" 2>/dev/null)
	if [ "${probes:-0}" -gt 0 ]; then
		ok "probes_measure_path_latency_of_idle_node"
		echo "# node 2 path measured ${took} ms after the daemon started; worker answered $probes probes"
		echo "# node 2: $st_probe"
	else
		not_ok "probes_measure_path_latency_of_idle_node" "worker counted no probe" \
			"$TMP/stats.n2" "$TMP/worker.n2"
	fi
else
	not_ok "probes_measure_path_latency_of_idle_node" \
		"node 2 not measured within 2 s: $(st 'N(2)')" "$(dlog)"
	t_stop2=$(now_ms)
	stop_worker n2
fi

# 2. staleness: node 2 stopped above: logged within stale_ms + 1 s.
if until_ms $((STALE_MS + 1000)) logged "node 2 went stale"; then
	took=$(($(now_ms) - t_stop2))
	if [ "$took" -ge $((STALE_MS - 200)) ]; then
		ok "stopped_worker_is_logged_went_stale_within_stale_ms"
		echo "# $(grep -F 'node 2 went stale' "$DLOG" | head -1) (seen $took ms after the stop)"
	else
		not_ok "stopped_worker_is_logged_went_stale_within_stale_ms" \
			"logged $took ms after the stop, before stale_ms $STALE_MS" "$(dlog)"
	fi
else
	not_ok "stopped_worker_is_logged_went_stale_within_stale_ms" \
		"no 'node 2 went stale' within $((STALE_MS + 1000)) ms of the stop" "$(dlog)"
fi

# 3. elastic join: node 21 is in no file, its address is in auto_join.
cp "$CFG" "$TMP/cfg.before"
t0=$(now_ms)
worker n21 21 10.202.2.21
worker n31 31 10.202.3.31 # the outsider of test 4, heartbeating meanwhile
joined21() { st_true "N(21) and N(21)['joined'] and N(21)['live'] and 21 in S('resnet')['nodes']"; }
if until_ms 2500 joined21; then
	took=$(($(now_ms) - t0))
	in_ns "$NS_C" timeout 30 python3 "$UDP" stream --to "$VIP:$PORT" --service 1 --tenant 42 \
		--count 200 --rate 400 --timeout 3 --json "$TMP/stream.join" >"$TMP/stream.join.out" 2>&1
	src=$?
	share=$(python3 -c "import json; print(json.load(open('$TMP/stream.join'))['share'].get('21', 0))" \
		2>/dev/null)
	if [ "$src" -eq 0 ] && [ "${share:-0}" -gt 0 ] && cmp -s "$CFG" "$TMP/cfg.before"; then
		ok "elastic_join_admits_load_from_auto_join_prefix_and_steers_to_it"
		echo "# node 21 joined and live $took ms after its worker started;" \
			"$(cat "$TMP/stream.join.out")"
	else
		not_ok "elastic_join_admits_load_from_auto_join_prefix_and_steers_to_it" \
			"stream rc $src, node 21 answered ${share:-?}" "$TMP/stream.join.out" "$(st d)"
	fi
else
	not_ok "elastic_join_admits_load_from_auto_join_prefix_and_steers_to_it" \
		"node 21 not joined and live within 2.5 s" "$(st d)" "$(dlog)"
fi

# 4. node 31 heartbeats from 10.202.3.31, outside 10.202.2.0/24.
if until_ms 2000 logged "LOAD from unknown node 31 at 10.202.3.31: address not in an auto_join prefix" &&
	st_true "N(31) is None and 31 not in S('resnet')['nodes']" &&
	[ "$(counter load_unknown)" -gt 0 ]; then
	ok "load_from_outside_auto_join_prefixes_is_not_admitted"
else
	not_ok "load_from_outside_auto_join_prefixes_is_not_admitted" "$(st d)" "$(dlog)"
fi
stop_worker n31

# 5. retire: node 21 stops; out of the service after retire_ms, out of the
# node list after 10 s of quiet.
t0=$(now_ms)
stop_worker n21
out_of_service() {
	st_true "21 not in S('resnet')['nodes'] and (N(21) is None or N(21)['admin'] == 'retired')"
}
gone() { st_true "N(21) is None"; }
if until_ms $((RETIRE_MS + 2000)) out_of_service; then
	t_ret=$(($(now_ms) - t0))
	if [ "$t_ret" -lt $((RETIRE_MS - 150)) ]; then
		not_ok "joined_node_silent_for_retire_ms_is_retired_then_deleted" \
			"retired $t_ret ms after the stop, before retire_ms $RETIRE_MS" "$(dlog)"
	elif until_ms 14000 gone && logged "joined node 21 silent for $RETIRE_MS ms: retired" &&
		logged "retired node 21 quiet for 10 s: deleted"; then
		t_del=$(($(now_ms) - t0))
		ok "joined_node_silent_for_retire_ms_is_retired_then_deleted"
		echo "# node 21 left the service $t_ret ms and the node list $t_del ms after its worker stopped"
	else
		not_ok "joined_node_silent_for_retire_ms_is_retired_then_deleted" \
			"node 21 still listed 14 s after it retired" "$(st 'N(21)')" "$(dlog)"
	fi
else
	not_ok "joined_node_silent_for_retire_ms_is_retired_then_deleted" \
		"node 21 still in the service $((RETIRE_MS + 2000)) ms after its worker stopped" \
		"$(st d)" "$(dlog)"
fi

# 6. SIGHUP: A -> B (policy least, node 3 added, an auto_join key) -> a
# broken C, refused with the running state unchanged.
write_cfg "$CFG.new" least "1, 3" "1 2 3" ", key: \"$KEY\""
mv "$CFG.new" "$CFG"
view() { # what a config decides, without the counters
	st "[(s['name'], s['policy'], s['nodes'], s['stale_ms']) for s in d['services']],
	    [(n['id'], n['addr'], n['admin'], n['weight'], n['joined']) for n in d['nodes']]"
}
t0=$(now_ms)
kill -HUP "$daemon_pid"
is_b() { st_true "S('resnet')['policy'] == 'least' and S('resnet')['nodes'] == [1, 3] and
                  N(3) and N(3)['addr'] == '10.202.2.13:$PORT'"; }
if until_ms 2000 is_b; then
	t_b=$(($(now_ms) - t0))
	before=$(view)
	sed 's/policy: least/policy: fastest/' "$CFG" >"$CFG.new" && mv "$CFG.new" "$CFG"
	kill -HUP "$daemon_pid"
	if until_ms 3000 logged "SIGHUP: $CFG refused, the running state is unchanged" &&
		sleep 0.3 && kill -0 "$daemon_pid" 2>/dev/null && [ "$(view)" = "$before" ] &&
		grep -q "fastest" "$DLOG"; then
		ok "sighup_reapplies_config_and_refuses_a_broken_one"
		echo "# B in effect $t_b ms after SIGHUP; C refused: $(grep -i fastest "$DLOG" | head -1)"
	else
		not_ok "sighup_reapplies_config_and_refuses_a_broken_one" \
			"after C: daemon $(kill -0 "$daemon_pid" 2>/dev/null && echo alive || echo dead)" \
			"before: $before" "after:  $(view)" "$(dlog)"
	fi
else
	not_ok "sighup_reapplies_config_and_refuses_a_broken_one" \
		"B not in effect within 2 s of SIGHUP" "$(st d)" "$(dlog)"
fi

# 7. auto_join with a key (from B): unsigned and wrongly signed LOADs are
# refused; a signed one is admitted; afterwards the node must sign.
fails=()
worker n22u 22 10.202.2.22
worker n23w 23 10.202.2.23 --auth-key "$BADKEY"
until_ms 2000 logged "LOAD from unknown node 22 at 10.202.2.22: not signed with the auto_join key" ||
	fails+=("no 'not signed' refusal of node 22 logged")
until_ms 2000 logged "LOAD from unknown node 23 at 10.202.2.23: wrong tag for the auto_join key" ||
	fails+=("no 'wrong tag' refusal of node 23 logged")
st_true "N(22) is None and N(23) is None" || fails+=("an unsigned or wrongly signed node was admitted: $(st d)")
stop_worker n22u
stop_worker n23w
t0=$(now_ms)
# A join: FRESH, signed with the join key, the join tag for its address.
bg_ns "$NS_N" 60 python3 "$SEC" node --listen 10.202.2.22:$PORT --node-id 22 \
	--router "$RTR:$CTL" --join-key "$KEY" --duration 55 >"$TMP/worker.n22s" 2>&1 &
wpid[n22s]=$!
joined22() { st_true "N(22) and N(22)['joined'] and N(22)['live'] and 22 in S('resnet')['nodes']"; }
if until_ms 2500 joined22; then
	t_j=$(($(now_ms) - t0))
	# Signed reports keep it live well past stale_ms and retire_ms.
	sleep $(((RETIRE_MS + 500) / 1000)).$(((RETIRE_MS + 500) % 1000 / 100))
	st_true "N(22)['live'] and N(22)['joined'] and N(22)['report_age_ms'] < $STALE_MS" ||
		fails+=("signed node 22 did not stay live: $(st 'N(22)')")
	drops=$(counter drop_node_auth)
	stop_worker n22s
	t1=$(now_ms)
	worker n22u2 22 10.202.2.22 # same node, same address, no longer signing
	stale22() { st_true "N(22) is None or not N(22)['live']"; }
	if until_ms $((STALE_MS + 1000)) stale22; then
		t_s=$(($(now_ms) - t1))
		sleep 0.3
		d2=$(counter drop_node_auth)
		[ "$d2" -gt "$drops" ] || fails+=("unsigned LOADs of node 22 were not dropped ($drops -> $d2)")
		st_true "N(22) is None or (not N(22)['live'] and (N(22)['report_age_ms'] or 0) > $STALE_MS)" ||
			fails+=("unsigned LOADs refreshed node 22: $(st 'N(22)')")
	else
		fails+=("node 22 stayed live on unsigned LOADs: $(st 'N(22)')")
	fi
	stop_worker n22u2
else
	fails+=("signed node 22 not joined and live within 2.5 s: $(st d)")
fi
if [ "${#fails[@]}" -eq 0 ]; then
	ok "auto_join_key_refuses_unsigned_and_wrong_tags_admits_signed_and_keeps_requiring_it"
	echo "# signed node 22 joined in $t_j ms; unsigned LOADs afterwards: not live after $t_s ms," \
		"drop_node_auth $drops -> $d2"
else
	not_ok "auto_join_key_refuses_unsigned_and_wrong_tags_admits_signed_and_keeps_requiring_it" \
		"${fails[@]}" "$(dlog)"
fi

kill -0 "$daemon_pid" 2>/dev/null || echo "# the daemon is no longer running"
echo "# total $((($(now_ms) - t_start) / 1000)) s"
tap_ran "$N"
