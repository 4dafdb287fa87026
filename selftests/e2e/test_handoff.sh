#!/usr/bin/env bash
# e2e: the XDP -> cpn-fwd hand-off on one set of interfaces.
#
# tools/testbed up --plane handoff: the router namespace runs cpn_xdp on every
# port (cpnctl) and cpn-fwd on one net_af_xdp port per interface
# (xdp_prog=bpf/cpn_xsk.bpf.o, --pin-dir). Service svc (VIP .100.1) has
# `dataplane: dpdk`, svc2 (VIP .100.2) stays on XDP. Checked:
#   - cpn-fwd adopted every port: its AF_XDP sockets are in the pinned
#     xsks_map (cpn_xsk_slots names them) and the pinned cpn_xdp is back on
#     every interface;
#   - svc's requests are handed off by XDP (req_dpdk) and steered by cpn-fwd
#     (plane="dpdk" counters), all answered; svc2's are steered by XDP on the
#     same interfaces and never reach cpn-fwd;
#   - SIGTERM: cpn-fwd exits 0 with its final counters, cpn_xdp is attached
#     to every interface again, the slots are gone, and svc's requests are
#     then steered by XDP itself (no hand-off counted), all answered;
#   - a restart of cpn-fwd under load loses at most the requests of the short
#     time the PMD holds the interfaces (reported, bounded).
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
TB=tools/testbed
NAME=hof

need_root
need_file "$BUILD/cpn-fwd" bpf/cpn_xsk.bpf.o
need_cmd python3 ip nsenter ethtool curl timeout

TMP=$(mktemp -d /tmp/cpn-handoff.XXXXXX)
cleanup() {
	$TB down --name $NAME >/dev/null 2>&1
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

T=9
echo "1..$T"
bail() {
	bail_rest "$T" "$1 (not reached)"
	exit 1
}

if ! timeout 120 $TB up --name $NAME --plane handoff --worker "--kernel echo" \
	--worker "--kernel echo" >"$TMP/up.log" 2>&1; then
	not_ok "testbed_up_with_handoff" "$TMP/up.log"
	bail "testbed"
fi
eval "$($TB info --name $NAME)"
FWD_LOG=$STATE/fwd.log

stat() { # name: the XDP router's counter
	$TB cpnctl --name $NAME stats -j | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}
fwd_svc() { # service id: cpn-fwd's requests steered for it
	$TB exec --name $NAME router -- curl -s "http://$FWD_METRICS/metrics" |
		sed -n "s/^cpn_service_requests_total{service_id=\"$1\",plane=\"dpdk\"} //p" | head -1
}
load() { # vip service rate seconds out.json
	$TB exec --name $NAME client -- "$BUILD/cpn-load" --to "$1:$PORT" --service "$2" \
		--tenant "$TENANT" --rate "$3" --duration "$4" --timeout 500 --json >"$5" 2>"$5.err"
}
field() { python3 -c "import json,sys; print(json.load(open('$1'))['$2'])"; }
router_prog_id() {
	$TB exec --name $NAME router -- bpftool prog show pinned "$PIN/progs/cpn_xdp" |
		sed -n '1s/:.*//p'
}
attached_all() { # every router interface carries the pinned cpn_xdp
	local id i cur
	id=$(router_prog_id)
	[ -n "$id" ] || return 1
	for i in r-c r-w1 r-w2; do
		cur=$($TB exec --name $NAME router -- ip -o link show "$i" |
			sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p')
		[ "$cur" = "$id" ] || return 1
	done
}
slots() { # entries of cpn_xsk_slots
	$TB exec --name $NAME router -- bpftool map dump pinned "$PIN/cpn_xsk_slots" -j |
		python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

# 1. Every port adopted; the router is on every interface again.
adopted() {
	[ "$(grep -c '^cpn-fwd: port [0-9]: hand-off from cpn_xdp' "$FWD_LOG")" -eq 3 ] &&
		attached_all && [ "$(slots)" -eq 3 ]
}
check "fwd_adopts_every_port_and_cpn_xdp_is_back_on_each" "$FWD_LOG" adopted

# 2. svc (dataplane: dpdk): handed off by XDP, steered by cpn-fwd, answered.
d0=$(stat req_dpdk) s0=$(stat req_steered) f0=$(fwd_svc 1)
load "$VIP" 1 400 2 "$TMP/svc.json"
sent=$(field "$TMP/svc.json" sent) replied=$(field "$TMP/svc.json" replied)
d1=$(stat req_dpdk) s1=$(stat req_steered) f1=$(fwd_svc 1)
{
	echo "svc: sent $sent replied $replied; XDP req_dpdk +$((d1 - d0)) req_steered +$((s1 - s0));"
	echo "cpn-fwd steered +$((${f1:-0} - ${f0:-0}))"
} >"$TMP/svc.txt"
check "dpdk_service_is_handed_off_and_steered_by_cpn_fwd" "$TMP/svc.txt" \
	test "$sent" -gt 0 -a "$replied" -eq "$sent" -a $((d1 - d0)) -eq "$sent" \
	-a $((s1 - s0)) -eq 0 -a $((${f1:-0} - ${f0:-0})) -eq "$sent"

# 3. svc2 (XDP) on the same interfaces: steered by XDP, never reaches cpn-fwd.
d0=$(stat req_dpdk) s0=$(stat req_steered) f0=$(fwd_svc 2)
load "$VIP2" 2 400 2 "$TMP/svc2.json"
sent=$(field "$TMP/svc2.json" sent) replied=$(field "$TMP/svc2.json" replied)
d1=$(stat req_dpdk) s1=$(stat req_steered) f1=$(fwd_svc 2)
echo "svc2: sent $sent replied $replied; XDP req_dpdk +$((d1 - d0)) req_steered +$((s1 - s0)); cpn-fwd '${f0}' -> '${f1}'" >"$TMP/svc2.txt"
check "xdp_service_on_the_same_interfaces_stays_on_xdp" "$TMP/svc2.txt" \
	test "$sent" -gt 0 -a "$replied" -eq "$sent" -a $((s1 - s0)) -eq "$sent" \
	-a $((d1 - d0)) -eq 0 -a "${f1:-0}" = "${f0:-0}"

# 4. SIGTERM: clean exit with final counters.
pid=$(cat "$STATE/fwd.pid")
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
rm -f "$STATE/fwd.pid"
check "fwd_stops_on_sigterm_with_final_counters" "$FWD_LOG" \
	bash -c "! kill -0 $pid 2>/dev/null && grep -q 'final counters' '$FWD_LOG'"

# 5. The router is back on every interface, the slots are gone.
released() { attached_all && [ "$(slots)" -eq 0 ]; }
check "after_stop_cpn_xdp_is_on_every_interface_and_slots_are_empty" "$FWD_LOG" released

# 6. Without cpn-fwd, XDP steers svc itself.
d0=$(stat req_dpdk) s0=$(stat req_steered)
load "$VIP" 1 400 2 "$TMP/alone.json"
sent=$(field "$TMP/alone.json" sent) replied=$(field "$TMP/alone.json" replied)
d1=$(stat req_dpdk) s1=$(stat req_steered)
echo "svc without cpn-fwd: sent $sent replied $replied; req_dpdk +$((d1 - d0)) req_steered +$((s1 - s0))" >"$TMP/alone.txt"
check "without_cpn_fwd_xdp_steers_the_dpdk_service_itself" "$TMP/alone.txt" \
	test "$sent" -gt 0 -a "$replied" -eq "$sent" -a $((d1 - d0)) -eq 0 -a $((s1 - s0)) -eq "$sent"

# 7. Start it again under load: it adopts the ports again; the requests lost
# are those of the time the PMD holds an interface (cpn_xsk passes them to
# the host stack, which has no route to the VIP).
load "$VIP" 1 1000 4 "$TMP/restart.json" &
lp=$!
sleep 1
$TB restart-fwd --name $NAME >"$TMP/restart.log" 2>&1
rrc=$?
wait $lp
sent=$(field "$TMP/restart.json" sent) lost=$(field "$TMP/restart.json" lost)
gaps=$(sed -n 's/.*off the interface \([0-9.]*\) ms).*/\1/p' "$FWD_LOG" | tail -3 | tr '\n' ' ')
echo "# restart under load: sent $sent lost $lost; cpn_xdp off each interface: $gaps ms"
{
	cat "$TMP/restart.log"
	echo "sent $sent lost $lost"
} >"$TMP/restart.txt"
check "restart_under_load_adopts_again_and_loses_little" "$TMP/restart.txt" \
	test "$rrc" -eq 0 -a "$sent" -gt 0 -a "$lost" -le $((sent / 5))

# 8. After the restart the hand-off works again.
f0=$(fwd_svc 1)
load "$VIP" 1 400 1 "$TMP/again.json"
sent=$(field "$TMP/again.json" sent) replied=$(field "$TMP/again.json" replied)
f1=$(fwd_svc 1)
echo "after restart: sent $sent replied $replied cpn-fwd '${f0}' -> '${f1}'" >"$TMP/again.txt"
check "after_restart_the_dpdk_service_is_handed_off_again" "$TMP/again.txt" \
	test "$sent" -gt 0 -a "$replied" -eq "$sent" -a $((${f1:-0} - ${f0:-0})) -eq "$sent"

# 9. A second cpn-fwd on the same interfaces is refused with a message, and
# the running one keeps its ports.
$TB exec --name $NAME router -- "$BUILD/cpn-fwd" --no-huge --no-shconf --no-pci \
	--file-prefix "cpn-tb-${NAME}2" -m 256 -l 0-1 \
	--vdev "net_af_xdp0,iface=r-c,xdp_prog=$(pwd)/bpf/cpn_xsk.bpf.o" -- \
	--pin-dir "$PIN" >"$TMP/second.log" 2>&1
src=$?
rm -rf "/var/run/dpdk/cpn-tb-${NAME}2"
second_ok() {
	[ $src -ne 0 ] && [ $src -lt 128 ] &&
		grep -q "cpn-fwd: port 0: .*another cpn-fwd takes this router's hand-offs" "$TMP/second.log" &&
		attached_all && [ "$(slots)" -eq 3 ]
}
check "second_instance_is_refused_and_the_first_keeps_its_ports" "$TMP/second.log" second_ok
