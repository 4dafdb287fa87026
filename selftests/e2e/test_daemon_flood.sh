#!/usr/bin/env bash
# e2e: the cpnctl daemon stays responsive under a flood of its control port.
#
#   router ns (cpnctl up, cpnctl daemon --config)      nodes ns
#   r-n 10.203.2.1 [cpn_xdp] ─────────────────── n-r 10.203.2.2     flood source
#                                                    10.203.2.50    node 50 (keeps reporting)
#                                                    10.203.2.51    node 51 (stops)
#                                                    10.203.2.100+  100 join sources
#
# Everything is inside the auto_join prefix 10.203.2.0/24, which has a join
# key. Nodes 50 and 51 are selftests/e2e/cpn_sec.py nodes that join. Then
# ctl_flood sends 40 000 datagrams a second to the control port for
# FLOOD_S seconds: heartbeats of node 50 (valid, signed, fresh), joins of
# new nodes (valid, 300 a second from 100 addresses: a join storm),
# garbage (random bytes, wrong version, short, not a LOAD, over 2 KiB) and
# signed LOADs with bad tags. During it, each against a bound:
#   - the flood is sustained: 40 000 a second reached, no 250 ms window
#     below 90 % of it, and the daemon reads it (its datagrams counter);
#   - node 51 is stopped and retired within retire_ms + 1 s of its last
#     LOAD, and node 50, reporting, is not retired;
#   - SIGHUP (a changed --config) is in effect within 1 s, while joins are
#     being admitted;
#   - the daemon's log stays rate-limited: a few lines a second per kind;
#   - SIGTERM stops it within 1 s.
# Pins, state, namespaces and processes are this run's own; all removed on
# exit.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
CPNCTL=$(pwd)/$BUILD/cpnctl
FLOOD=$(pwd)/$BUILD/selftests/e2e/ctl_flood
PASS_OBJ=bpf/cpn_pass.bpf.o
SEC=$(pwd)/selftests/e2e/cpn_sec.py

need_root
need_cmd ip bpftool python3 timeout nsenter ethtool mountpoint
need_file "$CPNCTL" "$FLOOD" "$PASS_OBJ"

PIN=/sys/fs/bpf/cpn-dfl-$$
PASS_PIN=/sys/fs/bpf/cpn-dfl-pass-$$
NS_R=cpn-dfl-r-$$
NS_N=cpn-dfl-n-$$
RTR=10.203.2.1
CTL=7471
MPORT=9471
KEY=6b6b6b6b00112233445566778899aabb
RETIRE_MS=1500
FLOOD_RATE=${FLOOD_RATE:-40000}
JOIN_RATE=${JOIN_RATE:-300}
FLOOD_S=7
TMP=$(mktemp -d /tmp/cpn-dfl.XXXXXX)
STATE=$TMP/state
CFG=$TMP/cpn.yaml
DLOG=$TMP/daemon.log
declare -A pid=()

cleanup() {
	local p n k
	for p in "${pid[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for _ in $(seq 20); do
		k=0
		for p in "${pid[@]}"; do
			kill -0 "$p" 2>/dev/null && k=1
		done
		[ "$k" = 0 ] && break
		sleep 0.1
	done
	for n in "$NS_R" "$NS_N"; do
		for p in $(ip netns pids "$n" 2>/dev/null); do
			kill -9 "$p" 2>/dev/null
		done
	done
	for p in "${pid[@]}"; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for n in "$NS_R" "$NS_N"; do
		ip netns del "$n" 2>/dev/null
	done
	rm -rf "$PIN" "$PASS_PIN" "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T=20
in_ns() { # ns, command...: keeps /sys/fs/bpf visible
	local ns=$1
	shift
	timeout "$T" nsenter --net="/run/netns/$ns" "$@"
}
ctl() { in_ns "$NS_R" "$CPNCTL" --pin-dir "$PIN" --state-dir "$STATE" "$@"; }
bg_ns() { # ns, seconds, command...: only with '&'; $! is the timeout, which passes signals on
	local ns=$1 secs=$2
	shift 2
	exec timeout --foreground "$secs" nsenter --net="/run/netns/$ns" "$@"
}

N=6
echo "1..$N"
bail() {
	bail_rest "$N" "skipped after an earlier failure: $1"
	exit 1
}
log=$TMP/log
run() { "$@" >>"$log" 2>&1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
until_ms() { # bound in ms, command...: 0 as soon as the command holds (polled every 5 ms)
	local end=$(($(now_ms) + $1))
	shift
	while :; do
		"$@" && return 0
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.005
	done
}
logged() { grep -qF -- "$1" "$DLOG"; }
gone() { # pid: exited (or a zombie)
	[ ! -e "/proc/$1" ] || [ "$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" = Z ]
}
dlog() { # the daemon's log, repeated lines counted once, for a failure report
	uniq -c "$DLOG" | sed 's/^ *1 //' | tail -60 >"$TMP/daemon.log.short"
	echo "$TMP/daemon.log.short"
}
# status -j judged by a Python expression; N(id) the node (or None), S(name)
# the service.
st() {
	ctl status -j 2>>"$log" | python3 -c "
import json, sys
d = json.load(sys.stdin)
N = lambda i: next((n for n in d['nodes'] if n['id'] == i), None)
S = lambda s: next((x for x in d['services'] if x['name'] == s), None)
print($1)" 2>>"$log"
}
st_true() { [ "$(st "bool($1)")" = True ]; }
# The router namespace's UDP counter (InDatagrams, RcvbufErrors, ...).
udp() {
	in_ns "$NS_R" cat /proc/net/snmp 2>>"$log" | awk -v f="$1" '
		$1 == "Udp:" && !h { for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next }
		$1 == "Udp:" { print $c[f] }'
}
# A counter of the daemon's /metrics (a name with its labels), -1 when unread.
metric() {
	in_ns "$NS_R" python3 -c "
import urllib.request
t = urllib.request.urlopen('http://127.0.0.1:$MPORT/metrics', timeout=3).read().decode()
for l in t.splitlines():
    if l.startswith('cpn_daemon_$1 '):
        print(int(float(l.split()[-1]))); break
else:
    print(-1)" 2>>"$log" || echo -1
}

# ---- topology ---------------------------------------------------------------
: >"$log"
mountpoint -q /sys/fs/bpf || run mount -t bpf bpf /sys/fs/bpf
setup() {
	local n a
	for n in "$NS_R" "$NS_N"; do
		run ip netns add "$n" && run ip -n "$n" link set lo up || return 1
	done
	run ip -n "$NS_R" link add r-n type veth peer name n-r netns "$NS_N" &&
		run ip -n "$NS_R" addr add "$RTR/24" dev r-n &&
		run ip -n "$NS_N" addr add 10.203.2.2/24 dev n-r || return 1
	for a in 50 51 $(seq 100 199); do
		echo "addr add 10.203.2.$a/24 dev n-r"
	done >"$TMP/addrs"
	run ip -n "$NS_N" -batch "$TMP/addrs" &&
		run ip -n "$NS_R" link set r-n up && run ip -n "$NS_N" link set n-r up &&
		run in_ns "$NS_N" ethtool -K n-r tx off || return 1
	# The peer of a router port takes native redirects: XDP on it.
	run timeout "$T" bpftool prog load "$PASS_OBJ" "$PASS_PIN" &&
		run in_ns "$NS_N" bpftool net attach xdp pinned "$PASS_PIN" dev n-r
}
write_cfg() { # stale_ms
	cat >"$CFG" <<EOF
interfaces: [r-n]
control_port: $CTL
metrics: 127.0.0.1:$MPORT
services:
  - {name: svc, id: 1, vip: 10.203.9.100, port: 7470, policy: p2c, stale_ms: $1, nodes: []}
nodes: []
tenants:
  - {id: 42, services: [svc]}
auto_join: {prefixes: [10.203.2.0/24], services: [svc], retire_ms: $RETIRE_MS, key: $KEY}
EOF
}
node() { # id: a node that joins and reports every 50 ms
	bg_ns "$NS_N" 60 python3 "$SEC" node --listen "10.203.2.$1:7470" --node-id "$1" \
		--router "$RTR:$CTL" --join-key "$KEY" --duration 55 >"$TMP/node.$1" 2>&1 &
	pid[n$1]=$!
}

setup || {
	not_ok "netns_topology" "$log"
	bail "topology"
}
write_cfg 500
run ctl up --config "$CFG" || {
	not_ok "cpnctl_up" "$log"
	bail "cpnctl up"
}
bg_ns "$NS_R" 90 "$CPNCTL" --pin-dir "$PIN" --state-dir "$STATE" daemon --config "$CFG" \
	--probe-ms 200 >"$DLOG" 2>&1 &
pid[daemon]=$!
until_ms 5000 logged "watching $PIN" || {
	not_ok "daemon_starts" "$(dlog)" "$log"
	bail "daemon"
}
# The daemon itself: the child of its timeout (nsenter execs it).
dpid=$(awk '{print $1}' "/proc/${pid[daemon]}/task/${pid[daemon]}/children" 2>/dev/null)
[ -n "$dpid" ] || dpid=${pid[daemon]}

# 1. Nodes 50 and 51 join and are live.
node 50
node 51
both() { st_true "all(N(i) and N(i)['joined'] and N(i)['live'] for i in (50, 51))"; }
if until_ms 5000 both; then
	ok "nodes_50_51_joined_and_live"
else
	not_ok "nodes_50_51_joined_and_live" "$(st 'd')" "$(dlog)" "$log"
	bail "joins"
fi

# The flood, and what happens during it.
d0=$(metric datagrams_total)
k0=$(udp RcvbufErrors)
j0=$(metric joins_total)
lines0=$(wc -l <"$DLOG")
t_f0=$(now_ms)
bg_ns "$NS_N" $((FLOOD_S + 10)) "$FLOOD" --to "$RTR:$CTL" --rate "$FLOOD_RATE" \
	--duration "$FLOOD_S" --key "$KEY" --node "50@10.203.2.50:7470" \
	--join-from 10.203.2.100 --join-addrs 100 --join-rate "$JOIN_RATE" --join-id0 100 \
	>"$TMP/flood.out" 2>&1 &
pid[flood]=$!
sleep 0.5

# Node 51 stops; its last LOAD was at most 50 ms (its interval) before.
# Retired: gone from the desired state (polled every 5 ms), then out of
# the service in the data plane.
kill -TERM "${pid[n51]}"
t_stop=$(now_ms)
gone51() { ! grep -qs "{id: 51, addr" "$STATE"/*.yaml; }
retired51() { st_true "51 not in S('svc')['nodes'] and (N(51) is None or N(51)['admin'] == 'retired')"; }
fails=()
if until_ms $((RETIRE_MS + 2000)) gone51; then
	retire_ms=$(($(now_ms) - t_stop + 50))
	[ "$retire_ms" -le $((RETIRE_MS + 1000)) ] ||
		fails+=("node 51 retired $retire_ms ms after its last LOAD (retire_ms $RETIRE_MS)")
	[ "$retire_ms" -ge $((RETIRE_MS - 100)) ] ||
		fails+=("node 51 retired after $retire_ms ms, before retire_ms $RETIRE_MS")
	until_ms 1000 retired51 || fails+=("node 51 still in the data plane's service: $(st "S('svc')")")
else
	retire_ms=""
	fails+=("node 51 not retired within $((RETIRE_MS + 2000)) ms of its stop")
fi
alive50() { st_true "50 in S('svc')['nodes'] and N(50)['joined'] and N(50)['live']"; }
alive50 || fails+=("node 50, reporting, was retired or is not live")

# SIGHUP with a changed config (stale_ms 500 -> 700): acted on (logged),
# in effect (committed to the desired state, polled every 5 ms), both within
# 1 s; then the data plane has it too.
j1=$(metric joins_total)
t_j1=$(now_ms)
write_cfg 700
h0=$(grep -c "SIGHUP: applying" "$DLOG")
th=$(now_ms)
kill -HUP "$dpid"
hup_logged() { [ "$(grep -c "SIGHUP: applying" "$DLOG")" -gt "$h0" ]; }
committed() { grep -qs "stale_ms: 700" "$STATE"/*.yaml; }
hup_log_ms=""
hup_ms=""
if until_ms 1500 hup_logged; then
	hup_log_ms=$(($(now_ms) - th))
	until_ms 1500 committed && hup_ms=$(($(now_ms) - th))
fi
applied() { st_true "S('svc')['stale_ms'] == 700"; }
hup_dp=0
until_ms 1000 applied && hup_dp=1
j2=$(metric joins_total)
t_j2=$(now_ms)
flood_on=1
gone "${pid[flood]}" && flood_on=0

# SIGTERM, while the flood goes on.
d1=$(metric datagrams_total)
k1=$(udp RcvbufErrors)
lines1=$(wc -l <"$DLOG")
t_f1=$(now_ms)
tt=$(now_ms)
kill -TERM "$dpid"
if until_ms 3000 gone "$dpid"; then
	term_ms=$(($(now_ms) - tt))
else
	term_ms=""
fi
wait "${pid[flood]}" 2>/dev/null
unset "pid[flood]"
flood=$(cat "$TMP/flood.out")
echo "# flood: $flood"

# 2. The flood was sustained, and the daemon read it.
val() { sed -n "s/.*\<$1=\([0-9.]*\).*/\1/p" <<<"$flood" | cut -d. -f1; }
rate=$(val rate)
min_rate=$(val min_rate)
read_n=$((d1 - d0))
read_s=$(((t_f1 - t_f0) > 0 ? t_f1 - t_f0 : 1))
echo "# the daemon read $read_n datagrams in $read_s ms ($((read_n * 1000 / read_s)) a second);" \
	"its socket's buffer overflowed $((k1 - k0)) times"
f2=()
[ "${rate:-0}" -ge $((FLOOD_RATE * 95 / 100)) ] || f2+=("rate ${rate:-?}, not $FLOOD_RATE")
[ "${min_rate:-0}" -ge $((FLOOD_RATE * 90 / 100)) ] ||
	f2+=("a 250 ms window at ${min_rate:-?} a second, below 90 % of $FLOOD_RATE")
[ "$flood_on" = 1 ] || f2+=("the flood ended before the SIGTERM")
# Garbage, bad tags and joins pass XDP up to the daemon (heartbeats of
# node 50 do not): 2/3 of the flood. It reads at least 3/5 of that (one
# join transaction a datagram, as it was, read less than half).
[ "$d0" -ge 0 ] && [ "$read_n" -ge $((FLOOD_RATE * read_s * 2 / 5000)) ] ||
	f2+=("the daemon read $read_n datagrams in $read_s ms of the flood," \
		"under 2/5 of the $FLOOD_RATE a second sent")
if [ ${#f2[@]} -eq 0 ]; then
	ok "flood_of_${FLOOD_RATE}_a_second_sustained_and_read"
else
	not_ok "flood_of_${FLOOD_RATE}_a_second_sustained_and_read" "${f2[@]}" "$TMP/flood.out"
fi

# 3. Retirement on time.
echo "# node 51 retired ${retire_ms:-?} ms after its last LOAD (retire_ms $RETIRE_MS)"
if [ ${#fails[@]} -eq 0 ]; then
	ok "silent_node_retired_within_retire_ms_plus_1s_under_flood"
else
	not_ok "silent_node_retired_within_retire_ms_plus_1s_under_flood" "${fails[@]}" "$(dlog)"
fi

# 4. SIGHUP during the join storm.
joins_s=$(((j2 - j0) * 1000 / ((t_j2 - t_f0) > 0 ? t_j2 - t_f0 : 1)))
echo "# SIGHUP logged ${hup_log_ms:-?} ms, in effect ${hup_ms:-?} ms after it was sent;" \
	"joins admitted: $((j2 - j0))" \
	"in $((t_j2 - t_f0)) ms ($joins_s a second), $((j2 - j1)) of them in the $((t_j2 - t_j1)) ms around the SIGHUP"
f4=()
[ -n "$hup_ms" ] && [ "$hup_ms" -le 1000 ] ||
	f4+=("SIGHUP logged after ${hup_log_ms:-more than 1500} ms, in effect after ${hup_ms:-more than 1500} ms")
[ "$hup_dp" = 1 ] || f4+=("the data plane does not have stale_ms 700: $(st "S('svc')")")
[ "$j0" -ge 0 ] && [ "$j1" -gt "$j0" ] && [ "$j2" -gt "$j1" ] ||
	f4+=("joins not being admitted: $j0 -> $j1 -> $j2")
if [ ${#f4[@]} -eq 0 ]; then
	ok "sighup_in_effect_within_1s_during_join_storm"
else
	not_ok "sighup_in_effect_within_1s_during_join_storm" "${f4[@]}" "$(dlog)"
fi

# 5. The log during the flood: lines per kind (numbers and addresses made
# alike, the "(and N more ...)" dropped). Refusals are logged once a second
# per reason, joins and retirements 4 a second then counted in one line:
# at most 4 a started second per kind.
sed -n "$((lines0 + 1)),${lines1}p" "$DLOG" >"$TMP/flood.log"
sed -E 's/ \(and [0-9]+ more[^)]*\)//; s/[0-9]+(\.[0-9]+){3}(:[0-9]+)?/A/g; s/-?[0-9]+/N/g' \
	"$TMP/flood.log" | sort | uniq -c | sort -rn >"$TMP/kinds"
secs=$(((t_f1 - t_f0 + 999) / 1000))
lines=$(wc -l <"$TMP/flood.log")
worst=$(awk 'NR == 1 { print $1 } END { if (NR == 0) print 0 }' "$TMP/kinds")
echo "# $lines log lines in $secs s of the flood, $(wc -l <"$TMP/kinds") kinds, at most $worst of a kind:"
sed 's/^/#   /' "$TMP/kinds"
if [ "$worst" -le $((4 * (secs + 1))) ] && [ "$lines" -le $((20 * (secs + 1))) ]; then
	ok "log_rate_limited_under_flood"
else
	not_ok "log_rate_limited_under_flood" "$worst lines of a kind, $lines in all, in $secs s" \
		"$TMP/kinds"
fi

# 6. SIGTERM.
echo "# SIGTERM: the daemon stopped ${term_ms:-?} ms after it"
if [ -n "$term_ms" ] && [ "$term_ms" -le 1000 ] && logged "stopping; the data plane keeps running"; then
	ok "sigterm_stops_daemon_within_1s_under_flood"
else
	not_ok "sigterm_stops_daemon_within_1s_under_flood" "stopped after ${term_ms:-more than 3000} ms" \
		"$(dlog)"
fi
unset "pid[daemon]"
tap_ran "$N"
