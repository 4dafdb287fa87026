#!/usr/bin/env bash
# e2e: many routers, one configuration in etcd.
#
#                         etcd ns: etcd on 10.203.0.1:2379 (bridge br0)
#                          │                         │
#   router r1 ns  r-e 10.203.0.11           router r2 ns  r-e 10.203.0.12
#   cpnctl up, cpnctl daemon --etcd          cpnctl up, cpnctl daemon --etcd
#   r-c 10.210.1.1 ── c1 ns (cpn-load)       r-c 10.210.1.1 ── c2 ns
#   r-n 10.210.2.1 ── n1 ns (cpn-worker      r-n 10.210.2.1 ── n2 ns
#                     node 1 at .11,
#                     node 21 at .21: auto_join)
#
# Both routers are real (cpnctl up, cpn_xdp on r-c and r-n of their own
# namespace); each site has the same addresses, so one configuration fits
# both. The test starts its own etcd (a data directory of its own, ports in
# its own namespace) and takes everything down on exit. What is checked,
# each against a bound:
#   1. apply --etcd refuses a bad file whole (FILE:LINE, exit 2) and
#      publishes nothing; an unreachable etcd is exit 1, nothing published;
#   2. a good file is published in one revision (config and layout), and
#      both routers, started before any config, run it;
#   3. a second apply: both routers run it within 1 s (the lag is printed);
#      status --etcd shows the revision of every router and the local one;
#   4. node 21, admitted by r1's auto_join, appears in r2's configuration
#      within 1 s;
#   5. r1's daemon killed: node 21 leaves r2 after the lease (2 s), while r1
#      keeps it; r1's daemon started again registers it again;
#   6. r2 cut off from etcd while two applies happen: it catches up from the
#      revision it knew;
#   7. etcd killed for 10 s under traffic through r1: both routers keep their
#      configuration and maps, no request is lost (cpn-load), and after etcd
#      returns an apply converges on both;
#   8. corrupted values in etcd (YAML that does not validate, binary junk, a
#      layout this cpnctl does not read, a nodes/ entry that is no node) are
#      refused, and a configuration that cannot be applied (an interface the
#      routers lack) is reported: the routers keep their configuration and
#      say why in routers/NAME; a good apply afterwards runs;
#   9. node 21's worker stops: r1 retires it, deletes nodes/21, r2 drops it;
#  10. the daemons stop cleanly, and ran under ASan and UBSan (cpnctl-asan, as
#      every etcd command of the test) without a report.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
CPNCTL=$(pwd)/$BUILD/cpnctl
CTLSAN=$(pwd)/$BUILD/selftests/e2e/cpnctl-asan
WORKER=$(pwd)/$BUILD/cpn-worker
LOAD=$(pwd)/$BUILD/cpn-load
PASS_OBJ=bpf/cpn_pass.bpf.o

need_root
need_cmd ip bpftool timeout nsenter ethtool mountpoint etcd etcdctl python3 sysctl pgrep
need_file "$CPNCTL" "$CTLSAN" "$WORKER" "$LOAD" "$PASS_OBJ"

ID=$$
NS_E=cpn-et-e-$ID
PIN_PASS=/sys/fs/bpf/cpn-et-pass-$ID
TMP=$(mktemp -d /tmp/cpn-etcd.XXXXXX)
ETCD_IP=10.203.0.1
URL=http://$ETCD_IP:2379
VIP=10.210.9.100
PORT=7470
TTL=2
declare -A NS_R NS_C NS_N PIN STATE DLOG dpid
for k in 1 2; do
	NS_R[$k]=cpn-et-r$k-$ID
	NS_C[$k]=cpn-et-c$k-$ID
	NS_N[$k]=cpn-et-n$k-$ID
	PIN[$k]=/sys/fs/bpf/cpn-et-r$k-$ID
	STATE[$k]=$TMP/state$k
	DLOG[$k]=$TMP/daemon$k.log
	dpid[$k]=""
done
etcd_pid=""
declare -A wpid=()
log=$TMP/log
: >"$log"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

cleanup() {
	local p n
	for p in "${wpid[@]}" ${dpid[1]} ${dpid[2]} $etcd_pid; do
		kill -TERM "$p" 2>/dev/null
	done
	for _ in $(seq 30); do
		n=0
		for p in "${wpid[@]}" ${dpid[1]} ${dpid[2]} $etcd_pid; do
			kill -0 "$p" 2>/dev/null && n=1
		done
		[ "$n" = 0 ] && break
		sleep 0.1
	done
	for n in "$NS_E" "${NS_R[@]}" "${NS_C[@]}" "${NS_N[@]}"; do
		for p in $(ip netns pids "$n" 2>/dev/null); do
			kill -9 "$p" 2>/dev/null
		done
	done
	for p in "${wpid[@]}" ${dpid[1]} ${dpid[2]} $etcd_pid; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for k in 1 2; do
		[ -e "${PIN[$k]}" ] && timeout 20 nsenter --net="/run/netns/${NS_R[$k]}" "$CPNCTL" \
			--pin-dir "${PIN[$k]}" --state-dir "${STATE[$k]}" down >/dev/null 2>&1
		rm -rf "${PIN[$k]}"
	done
	for n in "$NS_E" "${NS_R[@]}" "${NS_C[@]}" "${NS_N[@]}"; do
		ip netns del "$n" 2>/dev/null
	done
	rm -rf "$PIN_PASS" "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

N=10
echo "1..$N"
bail() {
	bail_rest "$N" "skipped after an earlier failure: $1"
	exit 1
}
run() { "$@" >>"$log" 2>&1; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
T=20
in_ns() { # ns, command...: keeps /sys/fs/bpf visible (ip netns exec would remount /sys)
	local ns=$1
	shift
	timeout "$T" nsenter --net="/run/netns/$ns" "$@"
}
bg_ns() { # ns, seconds, command...: only with '&' ($! is then timeout itself)
	local ns=$1 secs=$2
	shift 2
	exec timeout --foreground "$secs" nsenter --net="/run/netns/$ns" "$@"
}
ctl() { # router, args: cpnctl on that router
	local k=$1
	shift
	in_ns "${NS_R[$k]}" "$CPNCTL" --pin-dir "${PIN[$k]}" --state-dir "${STATE[$k]}" "$@"
}
sctl() { # router, args: the sanitised cpnctl on that router
	local k=$1
	shift
	in_ns "${NS_R[$k]}" "$CTLSAN" --pin-dir "${PIN[$k]}" --state-dir "${STATE[$k]}" "$@"
}
ectl() { in_ns "$NS_E" env ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:2379" \
	--command-timeout 3s "$@"; }
apply() { # file: published from r1's namespace; prints the revision
	sctl 1 apply --etcd "$URL" --config "$1" 2>>"$log" | tee -a "$log" |
		sed -n 's/.*: revision \([0-9]*\)$/\1/p'
}
until_ms() { # bound in ms, command...: 0 as soon as the command holds, 1 at the bound
	local end=$(($(now_ms) + $1))
	shift
	while :; do
		"$@" && return 0
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.01
	done
}
state_file() { echo "${STATE[$1]}/$(echo "${PIN[$1]}" | tr / _).yaml"; }
local_rev() { # router: the revision its daemon last applied (its .etcd record)
	local k v f
	f="$(state_file "$1").etcd"
	[ -r "$f" ] || { echo 0; return; }
	while read -r k v; do [ "$k" = revision ] && { echo "$v"; return; }; done <"$f"
	echo 0
}
runs() { [ "$(local_rev "$1")" = "$2" ]; }       # router, revision
both_run() { runs 1 "$1" && runs 2 "$1"; }
has_node() { grep -q "{id: $2," "$(state_file "$1")" 2>/dev/null; } # router, id
no_node() { ! has_node "$@"; }
st() { # router, python expression over status -j: N(id) a node, S(name) a service
	ctl "$1" status -j 2>>"$log" | python3 -c "
import json, sys
d = json.load(sys.stdin)
N = lambda i: next((n for n in d['nodes'] if n['id'] == i), None)
S = lambda s: next((x for x in d['services'] if x['name'] == s), None)
print($2)" 2>>"$log"
}
view() { # router: what its configuration decides, without counters
	st "$1" "[(s['name'], s['policy'], s['nodes'], s['max_queue']) for s in d['services']],
	    sorted((n['id'], n['addr'], n['admin'], n['joined']) for n in d['nodes']),
	    [i['name'] for i in d['interfaces']]"
}
etcd_router() { # name, python expression over routers/NAME as r
	ectl get "/cpn/default/routers/$1" --print-value-only 2>>"$log" |
		python3 -c "import json,sys; r=json.loads(sys.stdin.read() or 'null'); print($2)" 2>>"$log"
}
key_rev() { # key under /cpn/default/: its mod_revision
	ectl get "/cpn/default/$1" -w json 2>>"$log" |
		python3 -c "import json,sys; print(json.load(sys.stdin)['kvs'][0]['mod_revision'])"
}
etcd_rev() { # the store's revision
	ectl get / --prefix --keys-only -w json 2>>"$log" |
		python3 -c "import json,sys; print(json.load(sys.stdin)['header']['revision'])"
}
sanitizer_ok() { ! grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$@"; }
dlogs() { # both daemons' logs, for a failure report
	for k in 1 2; do
		uniq "${DLOG[$k]}" | tail -40 | sed "s/^/r$k: /"
	done >"$TMP/dlogs"
	echo "$TMP/dlogs"
}

write_cfg() { # file, policy, max_queue
	cat >"$1" <<EOF
interfaces: [r-c, r-n]
control_port: 7471
metrics: 127.0.0.1:9470
services:
  - {name: resnet, id: 1, vip: $VIP, port: $PORT, policy: $2, stale_ms: 500,
     max_queue: $3, nodes: [1]}
nodes:
  - {id: 1, addr: "10.210.2.11:$PORT"}
tenants:
  - {id: 42, services: [resnet]}
auto_join: {prefixes: [10.210.2.0/24], services: [resnet], retire_ms: 1500}
EOF
}

start_etcd() {
	bg_ns "$NS_E" 300 etcd --name e1 --data-dir "$TMP/etcd" \
		--listen-client-urls "http://$ETCD_IP:2379,http://127.0.0.1:2379" \
		--advertise-client-urls "$URL" --listen-peer-urls http://127.0.0.1:2380 \
		--initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster e1=http://127.0.0.1:2380 >>"$TMP/etcd.log" 2>&1 &
	etcd_pid=$!
	until_ms 10000 ectl endpoint health >/dev/null 2>&1
}
start_daemon() { # router
	local k=$1
	bg_ns "${NS_R[$k]}" 300 "$CTLSAN" --pin-dir "${PIN[$k]}" --state-dir "${STATE[$k]}" daemon \
		--etcd "$URL" --router-name "r$k" --lease-ttl "$TTL" >>"${DLOG[$k]}" 2>&1 &
	dpid[$k]=$!
}
worker() { # name, node id: cpn-worker in n1 at 10.210.2.<id>, heartbeating to r1
	local name=$1 id=$2
	bg_ns "${NS_N[1]}" 120 "$WORKER" --listen "10.210.2.$id:$PORT" --node-id "$id" \
		--router "10.210.2.1:7471" --kernel echo --load-interval-ms 50 \
		>"$TMP/worker.$name" 2>&1 &
	wpid[$name]=$!
}
stop() { # pid: TERM, then KILL after 3 s
	local p=$1
	kill -TERM "$p" 2>/dev/null
	for _ in $(seq 30); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null
}

# ---- topology --------------------------------------------------------------------
mountpoint -q /sys/fs/bpf || run mount -t bpf bpf /sys/fs/bpf
setup() {
	local k
	run ip netns add "$NS_E" && run ip -n "$NS_E" link set lo up &&
		run ip -n "$NS_E" link add br0 type bridge &&
		run ip -n "$NS_E" addr add "$ETCD_IP/24" dev br0 &&
		run ip -n "$NS_E" link set br0 up || return 1
	run timeout "$T" bpftool prog load "$PASS_OBJ" "$PIN_PASS" || return 1
	for k in 1 2; do
		for n in "${NS_R[$k]}" "${NS_C[$k]}" "${NS_N[$k]}"; do
			run ip netns add "$n" && run ip -n "$n" link set lo up || return 1
		done
		run ip -n "${NS_R[$k]}" link add r-e type veth peer name "e-r$k" netns "$NS_E" &&
			run ip -n "$NS_E" link set "e-r$k" master br0 &&
			run ip -n "$NS_E" link set "e-r$k" up &&
			run ip -n "${NS_R[$k]}" addr add "10.203.0.1$k/24" dev r-e &&
			run ip -n "${NS_R[$k]}" link set r-e up || return 1
		run ip -n "${NS_R[$k]}" link add r-c type veth peer name c-r netns "${NS_C[$k]}" &&
			run ip -n "${NS_R[$k]}" link add r-n type veth peer name n-r netns "${NS_N[$k]}" &&
			run ip -n "${NS_C[$k]}" addr add 10.210.1.2/24 dev c-r &&
			run ip -n "${NS_R[$k]}" addr add 10.210.1.1/24 dev r-c &&
			run ip -n "${NS_R[$k]}" addr add 10.210.2.1/24 dev r-n &&
			run ip -n "${NS_N[$k]}" addr add 10.210.2.11/24 dev n-r &&
			run ip -n "${NS_N[$k]}" addr add 10.210.2.21/24 dev n-r || return 1
		for l in "${NS_C[$k]} c-r" "${NS_R[$k]} r-c" "${NS_R[$k]} r-n" "${NS_N[$k]} n-r"; do
			# shellcheck disable=SC2086
			set -- $l
			run ip -n "$1" link set "$2" up || return 1
		done
		# Local senders on veth: whole checksums; the router's peers take
		# native redirects: XDP on them (docs/ARCHITECTURE.md).
		run in_ns "${NS_C[$k]}" ethtool -K c-r tx off &&
			run in_ns "${NS_N[$k]}" ethtool -K n-r tx off &&
			run in_ns "${NS_R[$k]}" sysctl -qw net.ipv4.ip_forward=1 \
				net.ipv4.conf.all.forwarding=1 &&
			run ip -n "${NS_C[$k]}" route add "$VIP/32" via 10.210.1.1 &&
			run ip -n "${NS_N[$k]}" route add default via 10.210.2.1 &&
			run in_ns "${NS_C[$k]}" bpftool net attach xdp pinned "$PIN_PASS" dev c-r &&
			run in_ns "${NS_N[$k]}" bpftool net attach xdp pinned "$PIN_PASS" dev n-r || return 1
		# The router, with no configuration yet: the daemon brings it.
		run ctl "$k" up || return 1
	done
}

t_start=$(now_ms)
setup || {
	not_ok "topology_and_two_routers" "$log"
	bail "topology"
}
start_etcd || {
	not_ok "etcd_starts" "$TMP/etcd.log" "$log"
	bail "etcd"
}
for k in 1 2; do start_daemon "$k"; done
# Both daemons follow the cluster (routers/r1, routers/r2: revision 0).
until_ms 10000 eval '[ "$(etcd_router r1 "r[\"revision\"]")" = 0 ] && [ "$(etcd_router r2 "r[\"revision\"]")" = 0 ]' || {
	not_ok "daemons_follow_the_cluster" "$(dlogs)"
	bail "daemons"
}

# ---- 1. a bad file publishes nothing ---------------------------------------------
write_cfg "$TMP/a.yaml" p2c 0
sed 's/policy: p2c/policy: fastest/' "$TMP/a.yaml" >"$TMP/bad.yaml"
r0=$(etcd_rev)
sctl 1 apply --etcd "$URL" --config "$TMP/bad.yaml" >"$TMP/bad.out" 2>&1
rc_bad=$?
sctl 1 apply --etcd "http://10.203.0.99:2379" --config "$TMP/a.yaml" >"$TMP/unreach.out" 2>&1
rc_unreach=$?
r1=$(etcd_rev)
cfg_keys=$(ectl get /cpn/ --prefix --keys-only 2>>"$log" | grep -vc -e '^$' -e /routers/)
if [ "$rc_bad" -eq 2 ] && grep -q "bad.yaml:5: unknown policy 'fastest'" "$TMP/bad.out" &&
	[ "$rc_unreach" -eq 1 ] && grep -q "nothing published" "$TMP/unreach.out" &&
	[ -n "$r0" ] && [ "$r0" = "$r1" ] && [ "$cfg_keys" -eq 0 ] && sanitizer_ok "$TMP/bad.out" "$TMP/unreach.out"; then
	ok "apply_refuses_a_bad_file_whole_and_publishes_nothing"
	echo "# $(head -1 "$TMP/bad.out") (exit 2); unreachable etcd: exit 1; etcd revision $r0 -> $r1"
else
	not_ok "apply_refuses_a_bad_file_whole_and_publishes_nothing" \
		"bad: exit $rc_bad, unreachable: exit $rc_unreach, revision $r0 -> $r1, keys $cfg_keys" \
		"$TMP/bad.out" "$TMP/unreach.out"
fi

# ---- 2. a good file: one revision, both routers run it ---------------------------
t0=$(now_ms)
rev_a=$(apply "$TMP/a.yaml")
modrevs=$(ectl get /cpn/default/ --prefix -w json 2>>"$log" | python3 -c "
import json, sys, base64
d = json.load(sys.stdin)
print(' '.join('%s=%s' % (base64.b64decode(k['key']).decode().split('/')[-1], k['mod_revision'])
               for k in d.get('kvs', []) if '/routers/' not in base64.b64decode(k['key']).decode()))")
if [ -n "$rev_a" ] && [ "$rev_a" -eq $((r1 + 1)) ] && [ "$modrevs" = "config=$rev_a layout=$rev_a" ] &&
	until_ms 5000 both_run "$rev_a" && [ "$(st 1 "S('resnet')['policy']")" = p2c ] &&
	[ "$(st 2 "[i['name'] for i in d['interfaces']]")" = "['r-c', 'r-n']" ]; then
	ok "apply_publishes_config_and_layout_in_one_revision_and_both_routers_run_it"
	echo "# revision $r1 -> $rev_a ($modrevs); both routers ran it $(($(now_ms) - t0)) ms after apply started"
else
	not_ok "apply_publishes_config_and_layout_in_one_revision_and_both_routers_run_it" \
		"revision before $r1, published '${rev_a:-}', keys: $modrevs," \
		"routers run $(local_rev 1) and $(local_rev 2)" "$log" "$(dlogs)"
	bail "the first configuration"
fi

# ---- 3. an apply reaches both routers within 1 s ----------------------------------
write_cfg "$TMP/b.yaml" least 0
t0=$(now_ms)
rev_b=$(apply "$TMP/b.yaml")
lag=()
for k in 1 2; do
	if until_ms 3000 runs "$k" "$rev_b"; then lag[$k]=$(($(now_ms) - t0)); else lag[$k]=-1; fi
done
status_ok() { # status --etcd -j on r2: every router and the local one at rev_b
	sctl 2 status --etcd "$URL" -j >"$TMP/status.json" 2>>"$log" || return 1
	python3 - "$TMP/status.json" "$rev_b" <<'PY' 2>>"$log"
import json, sys
d = json.load(open(sys.argv[1])); rev = int(sys.argv[2]); e = d["etcd"]
assert e["config_revision"] == rev, e
assert sorted((r["name"], r["revision"], r["current"]) for r in e["routers"]) == \
    [("r1", rev, True), ("r2", rev, True)], e["routers"]
assert e["local"]["router"] == "r2" and e["local"]["revision"] == rev, e["local"]
assert d["status"]["services"][0]["policy"] == "least", d["status"]["services"]
PY
}
if [ "${lag[1]}" -ge 0 ] && [ "${lag[1]}" -le 1000 ] && [ "${lag[2]}" -ge 0 ] && [ "${lag[2]}" -le 1000 ] &&
	[ "$(st 1 "S('resnet')['policy']")" = least ] && [ "$(st 2 "S('resnet')['policy']")" = least ] &&
	until_ms 2000 status_ok; then
	ok "both_routers_run_a_new_revision_within_1s_and_status_shows_every_router"
	echo "# revision $rev_b: r1 ran it ${lag[1]} ms, r2 ${lag[2]} ms after apply started"
	sctl 2 status --etcd "$URL" 2>&1 | head -4 | sed 's/^/#   /'
else
	not_ok "both_routers_run_a_new_revision_within_1s_and_status_shows_every_router" \
		"revision $rev_b: lag r1 ${lag[1]} ms, r2 ${lag[2]} ms (-1: not within 3 s)" \
		"$TMP/status.json" "$(dlogs)"
fi

# ---- 4. a node admitted by r1 appears in r2 within 1 s ----------------------------
worker n1 1
worker n21 21
t_r1=0 t_r2=0
end=$(($(now_ms) + 5000))
while [ "$(now_ms)" -lt "$end" ]; do
	[ "$t_r1" = 0 ] && has_node 1 21 && t_r1=$(now_ms)
	[ "$t_r2" = 0 ] && has_node 2 21 && t_r2=$(now_ms)
	[ "$t_r1" != 0 ] && [ "$t_r2" != 0 ] && break
	sleep 0.005
done
if [ "$t_r1" != 0 ] && [ "$t_r2" != 0 ] && [ $((t_r2 - t_r1)) -le 1000 ] &&
	[ "$(st 2 "bool(N(21) and N(21)['joined'] and N(21)['addr'] == '10.210.2.21:$PORT' and 21 in S('resnet')['nodes'])")" = True ] &&
	[ "$(etcd_router r1 "r['joined']")" = "[21]" ]; then
	ok "node_admitted_by_one_router_appears_in_the_other_within_1s"
	echo "# node 21 joined r1, then r2 $((t_r2 - t_r1)) ms later; nodes/21 = $(ectl get /cpn/default/nodes/21 --print-value-only 2>>"$log")"
else
	not_ok "node_admitted_by_one_router_appears_in_the_other_within_1s" \
		"r1 at $t_r1, r2 at $t_r2" "r2: $(st 2 "N(21)")" "$(dlogs)"
fi

# ---- 5. the daemon holding node 21 is killed: its lease runs out ------------------
kill -9 "$(pgrep -P "${dpid[1]}")" # the daemon itself, not timeout around it
wait "${dpid[1]}" 2>/dev/null
t0=$(now_ms)
if until_ms $((TTL * 1000 + 3000)) no_node 2 21; then
	t_gone=$(($(now_ms) - t0))
	kept=$(st 1 "bool(N(21) and N(21)['joined'] and 21 in S('resnet')['nodes'])")
	start_daemon 1
	t1=$(now_ms)
	# The lease runs out TTL after the last keep-alive, sent every TTL/3.
	if [ "$kept" = True ] && [ "$t_gone" -ge $((TTL * 1000 * 2 / 3 - 300)) ] && until_ms 5000 has_node 2 21; then
		ok "node_leaves_the_other_router_after_the_lease_when_its_daemon_is_killed"
		echo "# r1's daemon killed: node 21 out of r2 after $t_gone ms (lease $TTL s), still on r1;" \
			"r1's daemon again: back in r2 after $(($(now_ms) - t1)) ms"
	else
		not_ok "node_leaves_the_other_router_after_the_lease_when_its_daemon_is_killed" \
			"gone after $t_gone ms; kept on r1: $kept; back on r2: $(has_node 2 21 && echo yes || echo no)" "$(dlogs)"
	fi
else
	not_ok "node_leaves_the_other_router_after_the_lease_when_its_daemon_is_killed" \
		"node 21 still on r2 $((TTL + 3)) s after r1's daemon was killed" "$(dlogs)"
	start_daemon 1
fi
until_ms 5000 grep -q "following /cpn/default/" "${DLOG[1]}"

# ---- 6. r2 cut off from etcd while two applies happen: it catches up --------------
before=$(local_rev 2)
downs() { grep -c "etcd \(unreachable\|still unavailable\)" "${DLOG[$1]}"; } # router: said etcd away
d0=$(downs 2)
run ip -n "$NS_E" link set "e-r2" down
write_cfg "$TMP/c.yaml" round-robin 0
write_cfg "$TMP/d.yaml" round-robin 64
: >"$TMP/mark"
# r2's keep-alive times out: it knows it is cut off (else the old connection
# would carry on when the link returns)
until_ms 6000 eval '[ "$(downs 2)" -gt "$d0" ]'
rev_c=$(apply "$TMP/c.yaml")
rev_d=$(apply "$TMP/d.yaml")
until_ms 2000 runs 1 "$rev_d"
r2_cut=$(local_rev 2)
t0=$(now_ms)
run ip -n "$NS_E" link set "e-r2" up
if [ "$r2_cut" = "$before" ] && until_ms 8000 runs 2 "$rev_d" &&
	[ "$(grep -c "catching up from revision" "${DLOG[2]}")" -gt 0 ] &&
	[ "$(st 2 "(S('resnet')['policy'], S('resnet')['max_queue'])")" = "('round-robin', 64)" ]; then
	ok "a_router_cut_off_from_etcd_catches_up_by_revision"
	echo "# r2 cut off at revision $before while $rev_c and $rev_d were published;" \
		"back on $rev_d $(($(now_ms) - t0)) ms after the link returned:" \
		"$(grep "catching up" "${DLOG[2]}" | tail -1 | sed 's/^cpnctl daemon: //')"
else
	not_ok "a_router_cut_off_from_etcd_catches_up_by_revision" \
		"r2 ran $before, $r2_cut while cut off, $(local_rev 2) after (want $rev_d)" "$(dlogs)"
fi

# ---- 7. etcd killed for 10 s under traffic ----------------------------------------
until_ms 3000 has_node 2 21
v1=$(view 1)
v2=$(view 2)
d1=$(downs 1)
d2=$(downs 2)
bg_ns "${NS_C[1]}" 60 "$LOAD" --to "$VIP:$PORT" --service 1 --tenant 42 --rate 400 \
	--duration 15 --timeout 1000 --json >"$TMP/load.json" 2>"$TMP/load.err" &
load_pid=$!
sleep 2
kill -9 "$(pgrep -P "$etcd_pid")"
wait "$etcd_pid" 2>/dev/null
t_kill=$(now_ms)
sleep 5
mid1=$(view 1)
mid2=$(view 2)
alive=0
for k in 1 2; do kill -0 "${dpid[$k]}" 2>/dev/null && alive=$((alive + 1)); done
sleep $((10 - ($(now_ms) - t_kill) / 1000))
start_etcd
t_back=$(now_ms)
wait "$load_pid"
load_rc=$?
ctl 1 stats -j >"$TMP/stats.r1" 2>&1
ctl 1 status -j >"$TMP/status.r1" 2>&1
lost=$(python3 -c "import json; d=json.load(open('$TMP/load.json')); print(d['lost'])" 2>/dev/null)
sent=$(python3 -c "import json; d=json.load(open('$TMP/load.json')); print(d['sent'])" 2>/dev/null)
write_cfg "$TMP/e.yaml" p2c 128
t0=$(now_ms)
rev_e=$(apply "$TMP/e.yaml")
lag=()
for k in 1 2; do
	if until_ms 8000 runs "$k" "$rev_e"; then lag[$k]=$(($(now_ms) - t0)); else lag[$k]=-1; fi
done
if [ "$mid1" = "$v1" ] && [ "$mid2" = "$v2" ] && [ "$alive" = 2 ] && [ "$load_rc" = 0 ] &&
	[ "${lost:-x}" = 0 ] && [ "${sent:-0}" -gt 4000 ] && [ -n "$rev_e" ] &&
	[ "${lag[1]}" -ge 0 ] && [ "${lag[2]}" -ge 0 ] &&
	[ "$(downs 1)" -gt "$d1" ] && [ "$(downs 2)" -gt "$d2" ]; then
	ok "etcd_down_10s_routers_keep_config_and_lose_no_request_then_an_apply_converges"
	echo "# etcd down $(((t_back - t_kill) / 1000)) s: $sent requests through r1, $lost lost;" \
		"configuration and maps unchanged on both; after: revision $rev_e ran on r1 in ${lag[1]} ms," \
		"r2 in ${lag[2]} ms"
else
	not_ok "etcd_down_10s_routers_keep_config_and_lose_no_request_then_an_apply_converges" \
		"r1 kept: $([ "$mid1" = "$v1" ] && echo yes || echo "no: $v1 -> $mid1")" \
		"r2 kept: $([ "$mid2" = "$v2" ] && echo yes || echo "no: $v2 -> $mid2")" \
		"daemons alive: $alive; cpn-load exit $load_rc, sent ${sent:-?}, lost ${lost:-?}" \
		"after: revision ${rev_e:-none}, lag r1 ${lag[1]} r2 ${lag[2]}" "$TMP/load.err" "$(dlogs)" \
		"$TMP/stats.r1" "$TMP/status.r1"
fi

# ---- 8. corrupted values are refused, the routers keep their configuration --------
good=$(local_rev 1)
v1=$(view 1)
v2=$(view 2)
fails=()
refused_by_both() { # revision
	[ "$(etcd_router r1 "r.get('refused_revision')")" = "$1" ] &&
		[ "$(etcd_router r2 "r.get('refused_revision')")" = "$1" ]
}
corrupt() { # what, the key it puts, then the command that puts it
	local what=$1 key=$2 rev
	shift 2
	"$@" >>"$log" 2>&1
	rev=$(key_rev "$key")
	if ! until_ms 3000 refused_by_both "$rev"; then
		fails+=("$what (revision $rev): not refused by both: r1 $(etcd_router r1 r) r2 $(etcd_router r2 r)")
	elif [ "$(local_rev 1)" != "$good" ] || [ "$(local_rev 2)" != "$good" ] ||
		[ "$(view 1)" != "$v1" ] || [ "$(view 2)" != "$v2" ]; then
		fails+=("$what: a router changed: now $(local_rev 1), $(local_rev 2)")
	else
		echo "# $what refused: $(etcd_router r2 "r.get('error')" | cut -c1-150)"
	fi
}
corrupt "YAML that does not validate" config ectl put /cpn/default/config "services: [{name: x, id: 1, port: 7470"
head -c 300 /dev/urandom >"$TMP/junk"
printf '\0\377\376' >>"$TMP/junk"
corrupt "binary junk" config sh -c "ETCDCTL_API=3 timeout 5 nsenter --net=/run/netns/$NS_E etcdctl --endpoints http://127.0.0.1:2379 put /cpn/default/config <'$TMP/junk'"
sed 's/^interfaces: \[r-c, r-n\]/interfaces: [r-c, r-n, r-x]/' "$TMP/e.yaml" >"$TMP/noif.yaml"
corrupt "an interface the routers lack" config ectl put /cpn/default/config "$(cat "$TMP/noif.yaml")"
ectl put /cpn/default/config "$(cat "$TMP/e.yaml")" >>"$log" 2>&1 # good again, same text
until_ms 3000 both_run "$(key_rev config)" || fails+=("the good text again was not run")
good=$(local_rev 1)
corrupt "layout 2" layout ectl put /cpn/default/layout 2
ectl put /cpn/default/layout 1 >>"$log" 2>&1
ectl put /cpn/default/nodes/33 '{"addr": "not an address", "router": "r9"}' >>"$log" 2>&1
ectl put /cpn/default/nodes/34 'not json at all' >>"$log" 2>&1
ectl put /cpn/default/nodes/x7 '{}' >>"$log" 2>&1
sleep 0.5
if ! grep -q "nodes/33 in etcd (revision [0-9]*) refused: addr 'not an address' is not ADDR:PORT" "${DLOG[2]}" ||
	! grep -q "nodes/34 in etcd (revision [0-9]*) refused: not a JSON object" "${DLOG[2]}" ||
	! grep -q "nodes/x7 in etcd: not a node id" "${DLOG[2]}" || has_node 2 33 || has_node 2 34; then
	fails+=("unreadable nodes/ entries were not refused and logged: $(st 2 "[n['id'] for n in d['nodes']]")")
fi
ectl del /cpn/default/nodes/ --prefix >>"$log" 2>&1 # also 21: r1 puts it back
rev_f=$(apply "$TMP/a.yaml")
until_ms 3000 both_run "$rev_f" || fails+=("a good apply after the corruptions: not run (revision $rev_f)")
[ "$(st 2 "S('resnet')['policy']")" = p2c ] || fails+=("r2 does not run the good apply's policy")
until_ms 3000 has_node 2 21 || fails+=("node 21 did not come back to r2 after nodes/ was emptied")
if [ ${#fails[@]} -eq 0 ]; then
	ok "corrupted_values_in_etcd_are_refused_and_the_routers_keep_their_configuration"
else
	not_ok "corrupted_values_in_etcd_are_refused_and_the_routers_keep_their_configuration" \
		"${fails[@]}" "$(dlogs)"
fi

# ---- 9. node 21 stops: r1 retires it, nodes/21 goes, r2 drops it ------------------
stop "${wpid[n21]}"
unset "wpid[n21]"
t0=$(now_ms)
if until_ms 6000 no_node 2 21 && [ -z "$(ectl get /cpn/default/nodes/21 2>>"$log")" ] &&
	grep -q "joined node 21 silent for 1500 ms: retired" "${DLOG[1]}" &&
	grep -q "node 21 deleted from etcd" "${DLOG[1]}"; then
	ok "a_node_retired_by_its_router_leaves_etcd_and_the_other_router"
	echo "# node 21 stopped: out of r2 after $(($(now_ms) - t0)) ms (retire_ms 1500)"
else
	not_ok "a_node_retired_by_its_router_leaves_etcd_and_the_other_router" "$(st 2 "N(21)")" "$(dlogs)"
fi

# ---- 10. the daemons stop cleanly; the sanitizers found nothing -----------------
for k in 1 2; do
	stop "${dpid[$k]}"
	dpid[$k]=""
done
if sanitizer_ok "${DLOG[1]}" "${DLOG[2]}" && grep -q "stopping; the data plane keeps running" "${DLOG[1]}" &&
	grep -q "stopping; the data plane keeps running" "${DLOG[2]}"; then
	ok "daemons_stop_cleanly_with_no_sanitizer_report"
else
	grep -hE -A30 "ERROR: (Address|Leak)Sanitizer|runtime error:" "${DLOG[1]}" "${DLOG[2]}" |
		head -80 >"$TMP/san"
	not_ok "daemons_stop_cleanly_with_no_sanitizer_report" "$TMP/san" "$(dlogs)"
fi
echo "# total $((($(now_ms) - t_start) / 1000)) s"
tap_ran "$N"
