#!/usr/bin/env bash
# e2e: the router as an operator sets it up without cpnctl, on real (veth)
# interfaces, and one request's round trip through it.
#
#   client ns                 router ns                          node ns
#   c-r 10.200.1.2 ─── r-c 10.200.1.1 [cpn_xdp]   [cpn_xdp] r-n 10.200.2.1 ─── n-r 10.200.2.2
#   [cpn_pass]                                                             [cpn_pass]
#
# `bpftool prog loadall` pins the object's maps under a pin dir of this
# test's own, /sys/fs/bpf/cpn-rt-$$ (not the spec's /sys/fs/bpf/cpn, so that
# the test never touches a real router's pins nor collides with another run),
# `bpftool net attach` attaches cpn_xdp in native mode to both router ports,
# and `cpnctl apply` adopts what bpftool pinned and configures it. The client sends a REQUEST
# to the VIP 10.200.9.100:7470; the node must get it DNATed to
# 10.200.2.2:7470, tagged for node 1, with a valid UDP checksum, and its
# REPLY must reach the client from the VIP. cpn_pass sits on the client's
# and the node's ends because a native XDP redirect into a veth needs an XDP
# program on the peer. A second round trip with the router's neighbours
# flushed takes the kernel-forwarding path (XDP_PASS of the rewritten packet).
# Commands that need the pins inside a namespace run under `nsenter --net`:
# `ip netns exec` remounts /sys and hides /sys/fs/bpf. Every wait is bounded;
# everything made is removed on exit, pass or fail. Takes about 2 s.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
CPNCTL=$BUILD/cpnctl
ROUTER_OBJ=bpf/cpn_router.bpf.o
PASS_OBJ=bpf/cpn_pass.bpf.o
UDP=selftests/e2e/cpn_udp.py

need_root
need_cmd ip bpftool python3 timeout nsenter ethtool mount ping
need_file "$ROUTER_OBJ" "$PASS_OBJ" "$CPNCTL"

PIN=/sys/fs/bpf/cpn-rt-$$
NS_C=cpn-rt-c-$$
NS_R=cpn-rt-r-$$
NS_N=cpn-rt-n-$$
VIP=10.200.9.100
PORT=7470
CTL_PORT=7471
NODE_ADDR=10.200.2.2
TMP=$(mktemp -d /tmp/cpn-rt.XXXXXX)
made_pin=0
bg_pids=()

cleanup() {
	local p
	for p in "${bg_pids[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	# Deleting a namespace deletes its veths and detaches their programs.
	for n in "$NS_C" "$NS_R" "$NS_N"; do
		ip netns del "$n" 2>/dev/null
	done
	[ "$made_pin" -eq 1 ] && rm -rf "$PIN"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T=10 # seconds any one command may take
in_ns() { # ns, command...: keeps /sys/fs/bpf (ip netns exec remounts /sys)
	local ns=$1
	shift
	timeout "$T" nsenter --net="/run/netns/$ns" "$@"
}

N=9
echo "1..$N"
bail() { # the rest cannot run: fail it all
	bail_rest "$N" "skipped after an earlier failure: $1"
	exit 1
}
log=$TMP/log
run() { # command...: output to $log, the exit status kept
	"$@" >>"$log" 2>&1
}

# 1. the object loads with its maps pinned, as docs/ARCHITECTURE.md says it must.
: >"$log"
if ! mountpoint -q /sys/fs/bpf; then
	run timeout "$T" mount -t bpf bpf /sys/fs/bpf
fi
if mountpoint -q /sys/fs/bpf && [ ! -e "$PIN" ] && mkdir -p "$PIN" && made_pin=1 &&
	run timeout "$T" bpftool prog loadall "$ROUTER_OBJ" "$PIN/progs" pinmaps "$PIN" &&
	run timeout "$T" bpftool prog load "$PASS_OBJ" "$PIN/pass" &&
	[ -e "$PIN/progs/cpn_xdp" ] && [ -e "$PIN/cpn_node_state" ]; then
	ok "bpftool_loadall_pins_program_and_maps"
else
	not_ok "bpftool_loadall_pins_program_and_maps" "$log"
	bail "load"
fi

# 2. bpftool lists the pinned maps by name (ours: looked up by the id of each pin).
all_maps=$(timeout "$T" bpftool map show 2>&1)
missing=""
# The maps: the pinned names of CPN_MAPS in include/cpn/maps.h.
maps=$(sed -n 's/^\s*X([a-z_]*, "\([a-z_]*\)",.*/\1/p' include/cpn/maps.h)
[ "$(echo "$maps" | wc -w)" -ge 15 ] || missing="(CPN_MAPS not found in include/cpn/maps.h)"
for m in $maps; do
	id=$(timeout "$T" bpftool map show pinned "$PIN/$m" 2>/dev/null | sed -n '1s/:.*//p')
	# bpftool prints at most 15 characters of a name.
	if [ -z "$id" ] || ! echo "$all_maps" | grep -qE "^$id: .* name ${m:0:15}( |$)"; then
		missing="$missing $m"
	fi
done
if [ -z "$missing" ]; then
	ok "bpftool_map_show_lists_pinned_maps_by_name"
else
	not_ok "bpftool_map_show_lists_pinned_maps_by_name" "missing:$missing"
fi

# 3. three namespaces, two veth pairs, routes; cpn_xdp on both router ports.
: >"$log"
setup() {
	local n
	for n in "$NS_C" "$NS_R" "$NS_N"; do
		run ip netns add "$n" || return 1
		run ip -n "$n" link set lo up || return 1
	done
	run ip -n "$NS_R" link add r-c type veth peer name c-r netns "$NS_C" &&
		run ip -n "$NS_R" link add r-n type veth peer name n-r netns "$NS_N" &&
		run ip -n "$NS_C" addr add 10.200.1.2/24 dev c-r &&
		run ip -n "$NS_R" addr add 10.200.1.1/24 dev r-c &&
		run ip -n "$NS_R" addr add 10.200.2.1/24 dev r-n &&
		run ip -n "$NS_N" addr add "$NODE_ADDR/24" dev n-r || return 1
	run ip -n "$NS_C" link set c-r up && run ip -n "$NS_R" link set r-c up &&
		run ip -n "$NS_R" link set r-n up && run ip -n "$NS_N" link set n-r up || return 1
	# A datagram sent by a local socket leaves a veth with its UDP checksum
	# only started (CHECKSUM_PARTIAL, to be finished by "hardware"). XDP
	# sees no such flag: it would update the partial sum as if it were a
	# whole one, and the frame it redirects reaches the peer as CHECKSUM_NONE
	# and is dropped for its checksum. Frames from a real NIC carry whole
	# checksums; so must the test's senders, the client and the node.
	run in_ns "$NS_C" ethtool -K c-r tx off && run in_ns "$NS_N" ethtool -K n-r tx off || return 1
	run in_ns "$NS_R" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.forwarding=1 &&
		run ip -n "$NS_C" route add "$VIP/32" via 10.200.1.1 &&
		run ip -n "$NS_N" route add default via 10.200.2.1 || return 1
	run in_ns "$NS_R" bpftool net attach xdp pinned "$PIN/progs/cpn_xdp" dev r-c &&
		run in_ns "$NS_R" bpftool net attach xdp pinned "$PIN/progs/cpn_xdp" dev r-n &&
		run in_ns "$NS_C" bpftool net attach xdp pinned "$PIN/pass" dev c-r &&
		run in_ns "$NS_N" bpftool net attach xdp pinned "$PIN/pass" dev n-r || return 1
	# Native (driver) mode, not generic, on both router ports.
	in_ns "$NS_R" bpftool net show >>"$log" 2>&1
	[ "$(in_ns "$NS_R" bpftool net show | grep -cE '^r-[cn]\([0-9]+\) driver id')" -eq 2 ]
}
if setup; then
	ok "netns_topology_with_cpn_xdp_native_on_router_ports"
else
	not_ok "netns_topology_with_cpn_xdp_native_on_router_ports" "$log"
	bail "topology"
fi

# 4. cpnctl adopts the pinned router and configures it from YAML.
: >"$log"
cat >"$TMP/cpn.yaml" <<EOF
interfaces: [r-c, r-n]
control_port: $CTL_PORT
services:
  - {name: echo, id: 1, vip: $VIP, port: $PORT, policy: p2c, stale_ms: 5000, nodes: [1]}
nodes:
  - {id: 1, addr: "$NODE_ADDR:$PORT", weight: 100}
tenants:
  - {id: 42, services: [echo]}
EOF
ctl() { in_ns "$NS_R" "$CPNCTL" --pin-dir "$PIN" --state-dir "$TMP/state" "$@"; }
if run ctl apply --config "$TMP/cpn.yaml" && run ctl status; then
	ok "cpnctl_apply_adopts_bpftool_pins_and_configures_them"
else
	not_ok "cpnctl_apply_adopts_bpftool_pins_and_configures_them" "$log"
	bail "apply"
fi

stats=$TMP/stats
stat() { awk -v n="$1" '$1 == n { print $2 }' "$stats"; }
snap_stats() { ctl stats >"$stats" 2>&1; }
nonzero() { awk '$2 != 0' "$stats"; } # the counters worth showing

# One request from the client to the VIP and its reply, both ends checking
# what they get (cpn_udp.py). Sets node_rc, client_rc, node_out, client_out.
round_trip() { # tag
	local ready=$TMP/node.ready.$1 node_pid
	node_out=$TMP/node.$1
	client_out=$TMP/client.$1
	# The node announces its load first (a LOAD to the control port): live.
	in_ns "$NS_N" python3 "$UDP" node --listen "$NODE_ADDR:$PORT" --node-id 1 --iface n-r \
		--load-to "10.200.2.1:$CTL_PORT" \
		--ready "$ready" --timeout 3 >"$node_out" 2>&1 &
	node_pid=$!
	bg_pids+=("$node_pid")
	for _ in $(seq 30); do
		[ -e "$ready" ] && break
		sleep 0.1
	done
	in_ns "$NS_C" python3 "$UDP" client --to "$VIP:$PORT" --service 1 --tenant 42 \
		--expect-node 1 --iface c-r --timeout 3 >"$client_out" 2>&1
	client_rc=$?
	wait "$node_pid"
	node_rc=$?
	snap_stats
}

# Neighbours resolved first, so that both directions take the redirect
# path; test 8 takes the kernel's path.
in_ns "$NS_C" ping -c1 -W1 10.200.1.1 >/dev/null 2>&1
in_ns "$NS_N" ping -c1 -W1 10.200.2.1 >/dev/null 2>&1
round_trip redirect

# 5. the request reaches the node, DNATed and tagged, checksums right.
if [ "$node_rc" -eq 0 ]; then
	ok "request_arrives_dnat_to_node_tagged_node1_hops1_checksum_ok"
else
	not_ok "request_arrives_dnat_to_node_tagged_node1_hops1_checksum_ok (rc=$node_rc)" \
		"$node_out" "$(nonzero)"
fi
sed 's/^/# /' "$node_out"
# 6. the reply comes back from the VIP.
if [ "$client_rc" -eq 0 ]; then
	ok "reply_reaches_client_from_vip_reverse_nat"
else
	not_ok "reply_reaches_client_from_vip_reverse_nat (rc=$client_rc)" "$client_out" "$(nonzero)"
fi
sed 's/^/# /' "$client_out"

# 7. the counters say so, the live path was taken, the reply's load was learned.
steered=$(stat req_steered)
replies=$(stat reply_fwd)
fallback=$(stat req_fallback)
redirects=$(stat tx_redirect)
echo "# path: tx_redirect=$redirects tx_kernel=$(stat tx_kernel) tx_bounce=$(stat tx_bounce)" \
	"req_fallback=$fallback"
state=$(timeout "$T" bpftool -j map lookup pinned "$PIN/cpn_node_state" key 1 0 0 0 2>&1)
learned=$(echo "$state" | python3 -c '
import json, sys
d = json.load(sys.stdin)
v = d.get("formatted", d)["value"]  # with BTF, bpftool -j adds the typed view
print(int(v["queue_depth"] == 2 and v["inflight"] == 1 and v["capacity"] == 6 and v["util"] == 64))
' 2>/dev/null)
if [ "${steered:-0}" -ge 1 ] && [ "${replies:-0}" -ge 1 ] && [ "${fallback:-1}" -eq 0 ] &&
	[ "$learned" = 1 ]; then
	ok "stats_req_steered_reply_fwd_live_path_and_load_learned"
else
	not_ok "stats_req_steered_reply_fwd_live_path_and_load_learned" \
		"req_steered=$steered reply_fwd=$replies req_fallback=$fallback (want >=1 >=1 0)" \
		"node 1 state: $state" "$(nonzero)"
fi

# 8. with the router's neighbours forgotten, XDP hands the rewritten packets
# to the kernel, which resolves and forwards them: the round trip holds.
kernel_before=$(stat tx_kernel)
in_ns "$NS_R" ip neigh flush all >/dev/null 2>&1
sleep 0.3 # past the next-hop cache's life (CPN_DEFAULT_NH_TTL_MS)
round_trip kernel
kernel_after=$(stat tx_kernel)
if [ "$node_rc" -eq 0 ] && [ "$client_rc" -eq 0 ] &&
	[ "${kernel_after:-0}" -gt "${kernel_before:-0}" ]; then
	ok "round_trip_through_kernel_forwarding_when_neighbour_unresolved"
else
	not_ok "round_trip_through_kernel_forwarding_when_neighbour_unresolved" \
		"node rc=$node_rc client rc=$client_rc tx_kernel $kernel_before -> $kernel_after" \
		"$node_out" "$client_out" "$(nonzero)"
fi
echo "# path: tx_redirect=$(stat tx_redirect) tx_kernel=$kernel_after"

# 9. cpnctl status -j shows the load and path latency the reply carried.
st=$(ctl status -j 2>&1)
if echo "$st" | python3 -c '
import json, sys
n = [n for n in json.load(sys.stdin)["nodes"] if n["id"] == 1][0]
assert n["queue_depth"] == 2 and n["capacity"] == 6 and n["path_measured"] and n["replies"] >= 2, n
' 2>>"$log"; then
	ok "cpnctl_status_json_shows_load_and_path_latency_from_the_reply"
else
	not_ok "cpnctl_status_json_shows_load_and_path_latency_from_the_reply" "$st" "$log"
fi
tap_ran "$N"
