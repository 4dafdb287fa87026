#!/usr/bin/env bash
# e2e: cpn-fwd, the DPDK data plane, on net_pcap virtual ports (no NIC, no
# hugepages: --no-huge, a file prefix of its own, no shared config).
#
# What is proved: a pcap of LOADs, requests (IPv4 and IPv6), a reply,
# malformed and non-cpn frames goes through a --config router and comes out
# as it should: requests DNATed to the configured nodes with valid
# checksums, hops and TTL, and the next hop's MAC; the reply reverse-NATed to
# the VIP; LOADs consumed; malformed frames counted and dropped; non-cpn
# frames sent unchanged out of --default-port, or dropped and counted
# without it; the same --seed gives the same choices; the telemetry socket
# answers /cpn/stats, /cpn/nodes, /cpn/lcores; SIGHUP re-reads the config;
# a second instance with the same --file-prefix gets DPDK's error, not a
# crash; bad EAL and cpn-fwd arguments exit 2.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
FWD=$(pwd)/$BUILD/cpn-fwd
PCAP=$(pwd)/$BUILD/selftests/e2e/fwd_pcap

need_root
need_file "$FWD" "$PCAP"
need_cmd python3 timeout

TMP=$(mktemp -d /tmp/cpn-fwd.XXXXXX)
PFX=cpnfwd$$
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -INT "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "/var/run/dpdk/$PFX"*
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

cat >"$TMP/cfg.yaml" <<'YAML'
control_port: 7471
services:
  - {name: v4, id: 1, vip: 10.0.0.100, port: 7470, policy: p2c, nodes: [1, 2]}
  - {name: v6, id: 2, vip: "fd00::100", port: 7470, policy: p2c, nodes: [3]}
nodes:
  - {id: 1, addr: "10.1.0.1:7470"}
  - {id: 2, addr: "10.1.0.2:7470"}
  - {id: 3, addr: "[fd01::3]:7470"}
tenants:
  - {id: 42, services: [v4, v6]}
YAML
"$PCAP" gen "$TMP/in.pcap" || fail_all "fwd_pcap cannot write the input pcap"

NEIGH=(--neigh 10.1.0.1=02:00:00:00:01:01 --neigh 10.1.0.2=02:00:00:00:01:02
	--neigh fd01::3=02:00:00:00:01:03@0 --neigh 10.0.0.1=02:00:00:00:00:01)

# run NAME [cpn-fwd args...]: forward in.pcap into NAME.pcap, stop after 2 s.
run() {
	local name=$1 pid rc
	shift
	"$FWD" --no-huge --no-shconf --no-pci --file-prefix "${PFX}_$name" -l 0-1 \
		--vdev "net_pcap0,rx_pcap=${IN:-$TMP/in.pcap},tx_pcap=$TMP/$name.pcap" -- \
		--config "$TMP/cfg.yaml" "$@" >"$TMP/$name.log" 2>&1 &
	pid=$!
	sleep 2
	kill -INT "$pid"
	wait "$pid"
	rc=$?
	"$PCAP" dump "$TMP/$name.pcap" >"$TMP/$name.out" 2>&1
	echo "rc=$rc" >>"$TMP/$name.log"
	return $rc
}
stat_is() { # log, name, value
	grep -qE "^  $2 +$3\$" "$1"
}

echo "1..19"

# ---- forwarding -----------------------------------------------------------
run fwd --seed 7 "${NEIGH[@]}" --default-port 0
check "runs on net_pcap and exits 0 on SIGINT with final counters" "$TMP/fwd.log" \
	grep -q "rc=0" "$TMP/fwd.log"
check "every frame seen: rx 13" "$TMP/fwd.log" stat_is "$TMP/fwd.log" rx 13

# Requests: to node N's address and port, node_id N, hops 1, TTL 63,
# checksums valid, the node's MAC.
req_ok() {
	local bad
	bad=$(awk '$2 ~ /^(10\.0\.0\.1|fd00::1)$/ && $5 == 7470 && / type=1 / {
		split($7, nd, "="); id = nd[2]
		want = ($1 == "ip4") ? "10.1.0." id : "fd01::" id
		mac = sprintf("dmac=02:00:00:00:01:%02x", id)
		if ($4 != want || $8 != "hops=1" || $9 != "ttl=63" || $10 != "csum=ok" || $12 != mac)
			print
		n++ }
		END { if (n != 5) print "requests: " n }' "$TMP/fwd.out")
	[ -z "$bad" ]
}
check "requests DNATed to their nodes, tagged, checksums valid" "$TMP/fwd.out" req_ok
check "IPv6 request steered to node 3" "$TMP/fwd.out" \
	grep -q "^ip6 fd00::1 40100 fd01::3 7470 type=1 node=3 hops=1 ttl=63 csum=ok" "$TMP/fwd.out"
check "reply reverse-NATed to the VIP, to the client's MAC" "$TMP/fwd.out" \
	grep -q "^ip4 10.0.0.100 7470 10.0.0.1 40000 type=2 node=1 .* csum=ok len=90 dmac=02:00:00:00:00:01" \
	"$TMP/fwd.out"
check "LOADs consumed (learned, none sent)" "$TMP/fwd.log" \
	sh -c "grep -qE '^  load_learned +3\$' '$TMP/fwd.log' && ! grep -q ' type=3 ' '$TMP/fwd.out'"
check "malformed frames counted and dropped" "$TMP/fwd.log" \
	sh -c "grep -qE '^  drop_bad_magic +1\$' '$TMP/fwd.log' &&
	       grep -qE '^  drop_bad_udp_len +1\$' '$TMP/fwd.log' &&
	       ! grep -q ' 10.0.0.100 7470 type=' '$TMP/fwd.out'"
check "non-cpn frames out of --default-port unchanged" "$TMP/fwd.out" \
	sh -c "grep -q '^ip4 10.0.0.1 40000 10.0.0.53 53 type=0 node=0 hops=0 ttl=64 csum=ok len=56' '$TMP/fwd.out' &&
	       grep -q '^other len=60' '$TMP/fwd.out' && [ \$(wc -l <'$TMP/fwd.out') -eq 8 ]"

run again --seed 7 "${NEIGH[@]}" --default-port 0
nodes() { awk '/ type=1 /{print $7}' "$1"; }
check "the same --seed makes the same choices" "$TMP/again.out" \
	diff <(nodes "$TMP/fwd.out") <(nodes "$TMP/again.out")

run nodefault --seed 7 "${NEIGH[@]}"
check "without --default-port non-cpn frames are dropped and counted" "$TMP/nodefault.log" \
	sh -c "grep -q 'pass_drop 2 ' '$TMP/nodefault.log' && [ \$(wc -l <'$TMP/nodefault.out') -eq 6 ]"

run noneigh --seed 7
check "unknown neighbour: counted (tx_kernel, neigh_miss) and dropped" "$TMP/noneigh.log" \
	sh -c "grep -qE '^  tx_kernel +6\$' '$TMP/noneigh.log' && grep -q 'neigh_miss 6 ' '$TMP/noneigh.log'"

# Neighbours learned from what the port sees: an ARP reply for 10.1.0.1 and
# a neighbour advertisement for fd01::3 come first, then LOADs and requests;
# only 10.1.0.2 is configured.
"$PCAP" mk "$TMP/learn_in.pcap" arp:10.1.0.1=02:00:00:00:aa:01 na:fd01::3=02:00:00:00:aa:03 \
	load:1:0 load:2:0 load6:3 req:20 req6:4 >"$TMP/learn_mk.log" 2>&1
IN=$TMP/learn_in.pcap run learn --seed 3 --neigh 10.1.0.2=02:00:00:00:01:02
learned() {
	local bad
	bad=$(awk '/ type=1 /{
		if ($4 == "10.1.0.1" && $12 != "dmac=02:00:00:00:aa:01") print
		if ($4 == "10.1.0.2" && $12 != "dmac=02:00:00:00:01:02") print
		if ($4 == "fd01::3") { if ($12 != "dmac=02:00:00:00:aa:03") print; n6++ }
		if ($4 == "10.1.0.1") n1++
		n++ }
		END { if (n != 24 || n1 < 1 || n6 != 4) print "requests " n ", to node 1 " n1 ", v6 " n6 }' \
		"$TMP/learn.out")
	[ -z "$bad" ] && grep -q 'neigh_learn 2' "$TMP/learn.log"
}
check "ARP replies and neighbour advertisements fill the neighbour table" "$TMP/learn.log" learned

# ---- telemetry, SIGHUP, a second instance ----------------------------------
# Liveness in /cpn/nodes follows each service's stale_ms: v4 keeps its
# nodes live for a minute here, v6 the default 500 ms.
sed 's/policy: p2c, nodes: \[1, 2\]/policy: p2c, stale_ms: 60000, nodes: [1, 2]/' "$TMP/cfg.yaml" \
	>"$TMP/cfg_tel.yaml"
"$FWD" --no-huge --no-pci --file-prefix "${PFX}_tel" -l 0-1 \
	--vdev "net_pcap0,rx_pcap=$TMP/in.pcap,tx_pcap=$TMP/tel.pcap" -- \
	--config "$TMP/cfg_tel.yaml" "${NEIGH[@]}" >"$TMP/tel.log" 2>&1 &
tel_pid=$!
pids+=("$tel_pid")
sock=/var/run/dpdk/${PFX}_tel/dpdk_telemetry.v2
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
sleep 0.5
python3 - "$sock" >"$TMP/tel.json" 2>&1 <<'PY'
import json, socket, sys
def ask(cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    s.recv(4096)
    s.send(cmd.encode())
    r = json.loads(s.recv(1 << 20))
    s.close()
    return r
st = ask("/cpn/stats")["/cpn/stats"]
nd = ask("/cpn/nodes")["/cpn/nodes"]
lc = ask("/cpn/lcores")["/cpn/lcores"]
print(json.dumps([st, nd, lc]))
assert st["rx"] == 13 and st["req_steered"] == 5, st
assert nd["1"]["addr"] == "10.1.0.1" and nd["1"]["reports"] == 1 and nd["3"]["addr"] == "fd01::3", nd
assert lc["1"]["rx"] == 13, lc
PY
check "telemetry answers /cpn/stats, /cpn/nodes, /cpn/lcores" "$TMP/tel.json" [ $? -eq 0 ]
sleep 0.8 # node 1's LOAD is now older than the default 500 ms
python3 - "$sock" >"$TMP/tel_live.json" 2>&1 <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.recv(4096)
s.send(b"/cpn/nodes")
nd = json.loads(s.recv(1 << 20))["/cpn/nodes"]
print(json.dumps(nd))
assert nd["1"]["reports"] == 1 and nd["1"]["live"] == 1, nd["1"]
PY
check "telemetry judges a node live by its service's stale_ms, not a fixed 500 ms" \
	"$TMP/tel_live.json" [ $? -eq 0 ]

# Two forwarding lcores (lcores 1 and 2 share CPU 1 here): each gets a queue
# of its own on the port (net_null: one RX and one TX queue per lcore) and
# forwards on it; both show in /cpn/lcores; SIGINT stops both.
"$FWD" --no-huge --no-pci --file-prefix "${PFX}_mlc" -m 256 --lcores "0@0,1@1,2@1" \
	--vdev net_null0,copy=1 -- --config "$TMP/cfg.yaml" >"$TMP/mlc.log" 2>&1 &
mlc_pid=$!
pids+=("$mlc_pid")
msock=/var/run/dpdk/${PFX}_mlc/dpdk_telemetry.v2
for _ in $(seq 50); do [ -S "$msock" ] && break; sleep 0.1; done
sleep 1
python3 - "$msock" >"$TMP/mlc.json" 2>&1 <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.recv(4096)
s.send(b"/cpn/lcores")
lc = json.loads(s.recv(1 << 20))["/cpn/lcores"]
print(json.dumps(lc))
assert sorted(lc) == ["1", "2"], lc
assert sorted(v["queue"] for v in lc.values()) == [0, 1], lc
assert all(v["rx"] > 0 for v in lc.values()), lc
PY
tel_rc=$?
kill -INT "$mlc_pid"
wait "$mlc_pid"
mrc=$?
cat "$TMP/mlc.log" >>"$TMP/mlc.json"
check "two forwarding lcores, a queue each, both forwarding; SIGINT stops both" "$TMP/mlc.json" \
	sh -c "[ $tel_rc -eq 0 ] && [ $mrc -eq 0 ] && grep -q '2 forwarding lcores' '$TMP/mlc.log'"

"$FWD" --no-huge --no-pci --file-prefix "${PFX}_tel" -l 0-1 --vdev net_null0 -- \
	--config "$TMP/cfg.yaml" >"$TMP/second.log" 2>&1
rc=$?
check "a second instance with the same --file-prefix fails cleanly (exit 1)" "$TMP/second.log" \
	sh -c "[ $rc -eq 1 ] && grep -qi 'another primary process' '$TMP/second.log'"

sed -i 's/nodes: \[1, 2\]/nodes: [2]/' "$TMP/cfg.yaml"
kill -HUP "$tel_pid"
sleep 0.5
check "SIGHUP re-reads --config" "$TMP/tel.log" grep -q "configuration 2 in use" "$TMP/tel.log"
kill -INT "$tel_pid"
wait "$tel_pid"
check "stops on SIGINT after SIGHUP" "$TMP/tel.log" [ $? -eq 0 ]
pids=()

# ---- arguments -------------------------------------------------------------
"$FWD" --no-huge --no-shconf --no-pci --file-prefix "${PFX}_a" -l 0-1 --vdev net_null0 -- \
	--burst 0 --config "$TMP/cfg.yaml" >"$TMP/args.log" 2>&1
rc1=$?
"$FWD" --no-huge --no-shconf --no-pci --file-prefix "${PFX}_b" -l 0-1 --vdev net_null0 -- \
	>>"$TMP/args.log" 2>&1
rc2=$?
"$FWD" --no-huge --in-memory --no-pci --file-prefix "${PFX}_c" -l 0-1 -- --config "$TMP/cfg.yaml" \
	>>"$TMP/args.log" 2>&1
rc3=$?
check "bad cpn-fwd and EAL arguments exit 2" "$TMP/args.log" \
	[ "$rc1" -eq 2 ] && [ "$rc2" -eq 2 ] && [ "$rc3" -eq 2 ]
