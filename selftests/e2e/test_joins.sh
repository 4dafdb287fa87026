#!/usr/bin/env bash
# e2e: joins with a join key (docs/PROTOCOL.md "Joins", docs/SECURITY.md),
# on tools/testbed --auto-join --join-key --attacker: the attacker's
# namespace (10.90.9.2) and nodes that join (10.90.9.3, .4) share a router
# port of their own, inside the auto_join prefix. Nodes and the attacker are
# selftests/e2e/cpn_sec.py. What is proved, each against a bound:
#   - a fresh join with its join tag is admitted, in a time measured;
#   - a captured join sent again from another address is refused
#     (bad_join_tag), the same datagram from its own address is admitted (so
#     the capture was a valid join), and a join sent twice is refused the
#     second time as a replay;
#   - a join whose stamp is 5 s old, and one without FRESH, are refused;
#   - under a flood of forged joins (40 000 a second from the attacker, for
#     2.5 s) a real join is delayed by less than 100 ms, SIGHUP is acted on
#     within 200 ms and SIGTERM stops the daemon within 500 ms; the refusals
#     are counted on the daemon's /metrics and its log stays bounded.
# The testbed (namespaces, pins, processes) is removed on exit.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
TB=tools/testbed
SEC=$(pwd)/selftests/e2e/cpn_sec.py

need_root
need_file "$BUILD/cpnctl" "$BUILD/cpn-worker"
need_cmd ip bpftool python3 nsenter ethtool timeout

NAME=j$(($$ % 100000))
TMP=$(mktemp -d /tmp/cpn-joins.XXXXXX)
trap '$TB down --name $NAME; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
KEY=5a5a5a5a00112233445566778899aabb
BADKEY=0123456789abcdef0123456789abcdef
CTL=10.90.9.1:7471
STATE=/run/cpn-testbed/$NAME
DLOG=$STATE/daemon.log
FLOOD_RATE=40000
FLOOD_S=2.5

N=4
echo "1..$N"
bail() {
	bail_rest "$N" "skipped after an earlier failure: $1"
	exit 1
}
tb() { # subcommand, args
	local sub=$1
	shift
	timeout 60 $TB "$sub" --name "$NAME" "$@"
}
atk() { tb exec atk -- timeout 30 "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
until_ms() { # bound in ms, command...
	local end=$(($(now_ms) + $1))
	shift
	while :; do
		"$@" && return 0
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.005
	done
}
logged() { grep -qF -- "$1" "$DLOG"; }
gone() { # pid: exited (a zombie not yet reaped by whoever adopted it counts as gone)
	[ ! -e "/proc/$1" ] || [ "$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" = Z ]
}
joined() { logged "node $1 at $2 joined services of auto_join"; }
# The daemon's counter of refusals for a reason, from its /metrics.
refused() {
	tb exec router -- timeout 5 python3 -c "
import urllib.request
t = urllib.request.urlopen('http://127.0.0.1:9470/metrics', timeout=3).read().decode()
for l in t.splitlines():
    if l.startswith('cpn_daemon_$1'):
        print(int(float(l.split()[-1]))); break
else:
    print(-1)"
}
in_status() { # node id: 0 when the router lists it
	[ "$(tb cpnctl status -j 2>/dev/null | python3 -c "import json,sys
print(any(n['id'] == $1 for n in json.load(sys.stdin)['nodes']))")" = True ]
}
# A node that joins, in the attacker's namespace; its first LOAD's wall time
# in $TMP/first.<id>.
node() { # id, address
	tb exec atk -- timeout 60 python3 "$SEC" node --listen "$2:7470" --node-id "$1" \
		--router "$CTL" --join-key "$KEY" --duration 50 --first-load "$TMP/first.$1" \
		>"$TMP/node.$1" 2>&1 &
}
# ms from node id's first LOAD to its join in the daemon's log (polled every 5 ms).
join_ms() { # id, address, bound ms
	until_ms "$3" joined "$1" "$2" || return 1
	local t1 t0
	t1=$(date +%s.%N)
	t0=$(cat "$TMP/first.$1" 2>/dev/null) || return 1
	python3 -c "print(max(0, round(($t1 - $t0) * 1000)))"
}

timeout 90 $TB up --name "$NAME" --auto-join --join-key "$KEY" --attacker --worker "--kernel echo" \
	>"$TMP/up.log" 2>&1 || {
	not_ok "testbed_up" "$TMP/up.log"
	bail "testbed"
}
# The joining nodes' addresses, next to the attacker's.
for a in 3 4; do
	ip -n "$NAME-atk" addr add "10.90.9.$a/24" dev a-r || {
		not_ok "node_addresses" "cannot add 10.90.9.$a"
		bail "addresses"
	}
done

# 1. A real join, no flood: the baseline.
node 50 10.90.9.3
if base=$(join_ms 50 10.90.9.3:7470 3000) && until_ms 2000 in_status 50; then
	ok "fresh_join_with_join_tag_admitted"
	echo "# node 50 joined $base ms after its first LOAD"
else
	not_ok "fresh_join_with_join_tag_admitted" "node 50 not joined within 3 s" "$DLOG"
	base=""
fi

# 2. A captured join (node 60 at 10.90.9.3:7480, never sent): from the
# attacker's address refused; from its own accepted once, then a replay.
fails=()
atk python3 "$SEC" load --to "$CTL" --bind 10.90.9.3:7480 --node-id 60 --key "$KEY" \
	--count 0 --out "$TMP/cap60.hex" || fails+=("cannot build the join")
b0=$(refused 'join_refused_total{reason="bad_join_tag"}')
atk python3 "$SEC" send --to "$CTL" --bind 10.90.9.2:7480 --hex "$TMP/cap60.hex" --count 5
until_ms 2000 eval '[ "$(refused "join_refused_total{reason=\"bad_join_tag\"}")" -ge $((b0 + 5)) ]' ||
	fails+=("bad_join_tag $b0 -> $(refused 'join_refused_total{reason="bad_join_tag"}'), not +5")
sleep 0.2
in_status 60 && fails+=("node 60 admitted from the attacker's address")
atk python3 "$SEC" send --to "$CTL" --bind 10.90.9.3:7480 --hex "$TMP/cap60.hex"
until_ms 2000 in_status 60 || fails+=("the captured join from its own address was not admitted")
# A valid join sent twice, for an id taken (node 1's, from another address,
# which the data plane passes up): the first is refused id_taken after its
# tag is remembered, the second as a replay.
r0=$(refused 'join_refused_total{reason="replay"}')
i0=$(refused 'join_refused_total{reason="id_taken"}')
atk python3 "$SEC" load --to "$CTL" --bind 10.90.9.3:7483 --node-id 1 --key "$KEY" --count 2
until_ms 2000 eval '[ "$(refused "join_refused_total{reason=\"replay\"}")" -ge $((r0 + 1)) ]' ||
	fails+=("the second copy was not refused as a replay ($r0 -> $(refused 'join_refused_total{reason="replay"}'))")
[ "$(refused 'join_refused_total{reason="id_taken"}')" -ge $((i0 + 1)) ] ||
	fails+=("the first copy was not refused id_taken")
if [ ${#fails[@]} -eq 0 ]; then
	ok "join_replayed_from_another_address_refused_and_replay_counted"
	echo "# bad_join_tag $b0 -> $(refused 'join_refused_total{reason="bad_join_tag"}')," \
		"replay $r0 -> $(refused 'join_refused_total{reason="replay"}'); node 60 joined from 10.90.9.3:7480 only"
else
	not_ok "join_replayed_from_another_address_refused_and_replay_counted" "${fails[@]}" "$DLOG"
fi

# 3. Stale and unstamped joins (nodes 61, 62) are refused.
fails=()
s0=$(refused 'join_refused_total{reason="stale"}')
f0=$(refused 'join_refused_total{reason="not_fresh"}')
atk python3 "$SEC" load --to "$CTL" --bind 10.90.9.3:7481 --node-id 61 --key "$KEY" \
	--stamp-offset-ms -5000 --count 3
atk python3 "$SEC" load --to "$CTL" --bind 10.90.9.3:7482 --node-id 62 --key "$KEY" \
	--no-fresh --count 3
until_ms 2000 eval '[ "$(refused "join_refused_total{reason=\"stale\"}")" -ge $((s0 + 3)) ] &&
	[ "$(refused "join_refused_total{reason=\"not_fresh\"}")" -ge $((f0 + 3)) ]' ||
	fails+=("stale $s0 -> $(refused 'join_refused_total{reason="stale"}'), not_fresh $f0 -> $(refused 'join_refused_total{reason="not_fresh"}')")
sleep 0.2
in_status 61 && fails+=("the stale join of node 61 was admitted")
in_status 62 && fails+=("the unstamped join of node 62 was admitted")
logged "LOAD from unknown node 61 at 10.90.9.3: stamp -" || fails+=("no stale refusal logged")
if [ ${#fails[@]} -eq 0 ]; then
	ok "stale_and_unstamped_joins_refused"
else
	not_ok "stale_and_unstamped_joins_refused" "${fails[@]}" "$DLOG"
fi

# 4. A flood of forged joins from the attacker; meanwhile a real join, a
# SIGHUP and at the end a SIGTERM.
fails=()
dpid=$(cat "$STATE/daemon.pid")
t0=$(refused 'join_refused_total{reason="bad_tag"}')
d0=$(refused datagrams_total)
lines0=$(wc -l <"$DLOG")
atk python3 "$SEC" flood --to "$CTL" --bind 10.90.9.2:7490 --key "$BADKEY" \
	--rate "$FLOOD_RATE" --duration "$FLOOD_S" >"$TMP/flood.out" 2>&1 &
fpid=$!
sleep 0.5
node 51 10.90.9.4
if flood_join=$(join_ms 51 10.90.9.4:7470 3000); then
	[ -n "$base" ] && [ "$flood_join" -lt $((base + 100)) ] ||
		fails+=("the join under the flood took $flood_join ms (baseline ${base:-?} ms)")
else
	fails+=("node 51 not joined within 3 s under the flood")
fi
h0=$(grep -c "SIGHUP: reloading" "$DLOG")
th=$(now_ms)
kill -HUP "$dpid"
if until_ms 1000 eval '[ "$(grep -c "SIGHUP: reloading" "$DLOG")" -gt $h0 ]'; then
	hup_ms=$(($(now_ms) - th))
	[ "$hup_ms" -lt 200 ] || fails+=("SIGHUP acted on after $hup_ms ms")
else
	fails+=("SIGHUP not acted on within 1 s under the flood")
fi
kill -0 "$fpid" 2>/dev/null || fails+=("the flood ended before the signals: $(cat "$TMP/flood.out")")
t1=$(refused 'join_refused_total{reason="bad_tag"}')
d1=$(refused datagrams_total)
tt=$(now_ms)
kill -TERM "$dpid"
if until_ms 2000 gone "$dpid"; then
	term_ms=$(($(now_ms) - tt))
	[ "$term_ms" -lt 500 ] || fails+=("SIGTERM took $term_ms ms")
	logged "stopping; the data plane keeps running" || fails+=("no stopping line")
else
	fails+=("the daemon did not stop within 2 s of SIGTERM under the flood")
fi
wait "$fpid"
lines=$(($(wc -l <"$DLOG") - lines0))
[ "$t1" -gt "$t0" ] || fails+=("no forged join counted bad_tag ($t0 -> $t1)")
[ "$lines" -lt 40 ] || fails+=("$lines log lines during a ${FLOOD_S} s flood")
if [ ${#fails[@]} -eq 0 ]; then
	ok "join_flood_delays_real_join_under_100ms_signals_prompt"
else
	not_ok "join_flood_delays_real_join_under_100ms_signals_prompt" "${fails[@]}" "$DLOG" \
		"$TMP/flood.out"
fi
echo "# flood: $(cat "$TMP/flood.out"); daemon read $((d1 - d0)) datagrams, bad_tag $t0 -> $t1" \
	"(until the SIGTERM); $lines log lines"
echo "# join delay: ${base:-?} ms without the flood, ${flood_join:-?} ms under it;" \
	"SIGHUP ${hup_ms:-?} ms, SIGTERM ${term_ms:-?} ms"
tap_ran "$N"
