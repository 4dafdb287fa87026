#!/usr/bin/env bash
# e2e: attacks from the network, each shown stopped (with the counters that
# prove it) and, where it means something, shown working with the protection
# off, so that the test proves it tests something (docs/SECURITY.md, "The
# attacks and what stops them"). tools/testbed --attacker: the attacker's
# namespace (10.90.9.2) is on a router port of its own and sends with forged
# source addresses where the attack needs them (cpn_sec.py raw). Two nodes:
# node 1 with a node key and --hop-key, node 2 with neither (the protection
# off). Joins are test_joins.sh's.
#
#   - unrouted requests sent straight to a node with --hop-key: 0 answered,
#     counted unrouted by the node; to the node without it: answered;
#   - a forged overload LOAD from node 1's address (unsigned, or signed with
#     another key): dropped (drop_node_auth), node 1's reports unchanged; the
#     same for node 2 (no key): learned;
#   - PROBEs with a chosen router_ts sent to a node in the router's name:
#     their PROBE_ACKs are not learned (drop_probe_cookie), nor with a valid
#     cookie 8 s old; with a valid fresh cookie they are;
#   - a signed LOAD sent again: learned once, then drop_replay; 5 s old:
#     drop_stale;
#   - a signed REQUEST replayed 50 times from the attacker's address: served
#     once, drop_replay for the rest;
#   - a forged REPLY from a node's address to any destination: not relayed
#     (drop_no_flow); with reply_check: false, relayed;
#   - a TAGGED request naming node 2 with a made-up hop tag: not honoured
#     (req_tag_forged), steered and answered like any; with the hop key's
#     tag, honoured;
#   - a report with a bad UDP checksum: not learned (drop_bad_csum);
#   - another node's answer to a request steered to node 1 (forged from
#     node 2's address): not relayed (drop_no_flow); relayed with
#     reply_check: false;
#   - a signed REPLY sent five times: relayed at most once; a signed
#     PROBE_ACK with a valid cookie sent ten times: learned once.
# The testbed (namespaces, pins, processes) is removed on exit.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
TB=tools/testbed
SEC=$(pwd)/selftests/e2e/cpn_sec.py

need_root
need_file "$BUILD/cpnctl" "$BUILD/cpn-worker"
need_cmd ip bpftool python3 nsenter ethtool timeout sed

NAME=a$(($$ % 100000))
TMP=$(mktemp -d /tmp/cpn-attacks.XXXXXX)
trap '$TB down --name $NAME; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
K1=1f2e3d4c5b6a79880011223344556677
TK=9a8b7c6d5e4f30211203f4e5d6c7b8a9
HOP=0f1e2d3c4b5a69788796a5b4c3d2e1f0
BADKEY=0123456789abcdef0123456789abcdef
STATE=/run/cpn-testbed/$NAME
CTL=10.90.9.1:7471

N=10
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
atk() { tb exec atk -- timeout 30 python3 "$SEC" "$@"; }
counter() { # a data plane counter
	tb cpnctl stats -j 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}
node_field() { # id, field of status -j
	tb cpnctl status -j 2>/dev/null | python3 -c "import json,sys
print(next(n for n in json.load(sys.stdin)['nodes'] if n['id'] == $1)['$2'])"
}
wmetric() { # worker, family, label: a node's own counter from its /metrics
	tb exec "$1" -- timeout 5 python3 -c "
import urllib.request
t = urllib.request.urlopen('http://127.0.0.1:9480/metrics', timeout=3).read().decode()
print(int(sum(float(l.split()[-1]) for l in t.splitlines()
              if l.startswith('$2{') and '$3' in l)))"
}

timeout 90 $TB up --name "$NAME" --attacker \
	--worker "--kernel echo --key $K1 --hop-key $HOP --metrics 127.0.0.1:9480" \
	--worker "--kernel echo --metrics 127.0.0.1:9480" >"$TMP/up.log" 2>&1 || {
	not_ok "testbed_up" "$TMP/up.log"
	bail "testbed"
}
# Node 1's key, tenant 42's and the hop key into the router's configuration.
sed -e "s/addr: \"10.90.11.2:7470\"}/addr: \"10.90.11.2:7470\", key: \"$K1\"}/" \
	-e "s/{id: 42, services: \[svc\]}/{id: 42, services: [svc], key: \"$TK\"}/" \
	"$STATE/cpn.yaml" >"$TMP/keyed.yaml"
echo "fleet: {hop_key: \"$HOP\"}" >>"$TMP/keyed.yaml"
sed "s/nodes: \[1, 2\]}/nodes: [1, 2], reply_check: false}/" "$TMP/keyed.yaml" >"$TMP/nocheck.yaml"
tb cpnctl apply --config "$TMP/keyed.yaml" >"$TMP/apply.log" 2>&1 &&
	grep -q "$K1" "$TMP/keyed.yaml" && grep -q "key: \"$TK\"" "$TMP/keyed.yaml" &&
	grep -q "reply_check: false" "$TMP/nocheck.yaml" || {
	not_ok "node_key_applied" "$TMP/apply.log" "$TMP/keyed.yaml"
	bail "config"
}

# 1. (f) Requests sent straight to the nodes, skipping the router. Node 2
# (no hop key) answers them; the router, on the way back, relays none of
# those replies (no flow: reply_check), a second line.
fails=()
u0=$(wmetric w1 cpn_worker_ignored_total 'reason="unrouted"')
a0=$(wmetric w1 cpn_worker_replies_total '')
b0=$(wmetric w2 cpn_worker_replies_total '')
f0=$(counter drop_no_flow)
out1=$(atk request --to 10.90.11.2:7470 --bind 10.90.9.2 --service 1 --tenant 42 --count 100)
out2=$(atk request --to 10.90.12.2:7470 --bind 10.90.9.2 --service 1 --tenant 42 --count 100)
u1=$(wmetric w1 cpn_worker_ignored_total 'reason="unrouted"')
a1=$(wmetric w1 cpn_worker_replies_total '')
b1=$(wmetric w2 cpn_worker_replies_total '')
f1=$(counter drop_no_flow)
[ "$out1" = "sent=100 answered=0" ] || fails+=("node 1 (--hop-key): $out1")
[ "$a1" = "$a0" ] || fails+=("node 1 sent $((a1 - a0)) replies")
[ "$((u1 - u0))" -ge 100 ] || fails+=("node 1 counted $((u1 - u0)) unrouted, not 100")
[ "$((b1 - b0))" -ge 100 ] || fails+=("node 2 (no hop key, the protection off) sent $((b1 - b0)) replies, not 100")
[ "$((f1 - f0))" -ge 100 ] || fails+=("drop_no_flow $f0 -> $f1: node 2's replies not stopped at the router")
if [ ${#fails[@]} -eq 0 ]; then
	ok "unrouted_requests_to_worker_with_hop_key_not_answered"
	echo "# node 1 (--hop-key): $out1, replies $a0 -> $a1, unrouted $u0 -> $u1;" \
		"node 2 (none): replies $b0 -> $b1, $out2 (drop_no_flow $f0 -> $f1)"
else
	not_ok "unrouted_requests_to_worker_with_hop_key_not_answered" "${fails[@]}"
fi

# 2. (i) A forged overload LOAD from a node's own address, on the node's
# link to the router (as an attacker on that segment).
fails=()
a0=$(counter drop_node_auth)
r1=$(node_field 1 reports)
atk raw --src 10.90.11.2:7470 --to 10.90.11.1:7471 --load-for 1 --queue 5000 --count 200 >/dev/null
atk raw --src 10.90.11.2:7470 --to 10.90.11.1:7471 --load-for 1 --key "$BADKEY" --queue 5000 \
	--count 200 >/dev/null
a1=$(counter drop_node_auth)
r1b=$(node_field 1 reports)
r2=$(node_field 2 reports)
atk raw --src 10.90.12.2:7470 --to 10.90.12.1:7471 --load-for 2 --queue 5000 --count 400 >/dev/null
r2b=$(node_field 2 reports)
[ "$((a1 - a0))" -ge 400 ] || fails+=("drop_node_auth $a0 -> $a1, not +400")
# Node 1's own LOADs go on (20 a second): far fewer than the 400 forged.
[ "$((r1b - r1))" -lt 200 ] || fails+=("node 1's reports $r1 -> $r1b: forged LOADs learned")
[ "$((r2b - r2))" -ge 400 ] || fails+=("node 2 (no key, the protection off): reports $r2 -> $r2b, not +400")
if [ ${#fails[@]} -eq 0 ]; then
	ok "forged_overload_load_dropped_for_keyed_node_learned_without_key"
	echo "# keyed node 1: drop_node_auth $a0 -> $a1, reports $r1 -> $r1b;" \
		"node 2 without a key: reports $r2 -> $r2b"
else
	not_ok "forged_overload_load_dropped_for_keyed_node_learned_without_key" "${fails[@]}"
fi

# 3. (b) PROBEs from the attacker's control port (10.90.9.2:7471) with a
# chosen router_ts: node 1's genuinely signed PROBE_ACKs cross the router to
# a control port, which learns nothing without the router's cookie.
fails=()
c0=$(counter drop_probe_cookie)
l0=$(counter probe_ack_learned)
atk raw --kind probe --src 10.90.9.2:7471 --to 10.90.11.2:7470 --load-for 1 \
	--router-ts-ago-us 8000000 --count 20 >/dev/null
atk raw --kind probe --src 10.90.9.2:7471 --to 10.90.11.2:7470 --load-for 1 \
	--router-ts-ago-us 8000000 --cookie-key "$HOP" --count 20 >/dev/null
sleep 0.3
c1=$(counter drop_probe_cookie)
l1=$(counter probe_ack_learned)
path1=$(node_field 1 path_us)
atk raw --kind probe --src 10.90.9.2:7471 --to 10.90.11.2:7470 --load-for 1 \
	--cookie-key "$HOP" --count 20 >/dev/null
sleep 0.3
l2=$(counter probe_ack_learned)
[ "$((c1 - c0))" -ge 40 ] || fails+=("drop_probe_cookie $c0 -> $c1, not +40")
[ "$path1" -lt 1000000 ] || fails+=("node 1's path_us $path1")
[ "$((l2 - l1))" -ge 20 ] || fails+=("PROBEs with a fresh valid cookie: probe_ack_learned $l1 -> $l2, not +20")
if [ ${#fails[@]} -eq 0 ]; then
	ok "probe_acks_elicited_by_attacker_not_learned"
	echo "# drop_probe_cookie $c0 -> $c1 (probe_ack_learned $l0 -> $l1, the daemon's own probes)," \
		"node 1 path_us $path1; fresh valid cookies: learned $l1 -> $l2"
else
	not_ok "probe_acks_elicited_by_attacker_not_learned" "${fails[@]}"
fi

# 4. (a) A signed LOAD of node 1 sent again, and one 5 s old.
fails=()
p0=$(counter drop_replay)
s0=$(counter drop_stale)
atk raw --src 10.90.11.2:7470 --to 10.90.11.1:7471 --load-for 1 --key "$K1" --queue 3 \
	--count 10 >/dev/null
atk raw --src 10.90.11.2:7470 --to 10.90.11.1:7471 --load-for 1 --key "$K1" --queue 3 \
	--stamp-offset-ms -5000 --count 10 >/dev/null
p1=$(counter drop_replay)
s1=$(counter drop_stale)
[ "$((p1 - p0))" -ge 9 ] || fails+=("drop_replay $p0 -> $p1, not +9")
[ "$((s1 - s0))" -ge 10 ] || fails+=("drop_stale $s0 -> $s1, not +10")
if [ ${#fails[@]} -eq 0 ]; then
	ok "replayed_and_stale_signed_loads_refused"
	echo "# drop_replay $p0 -> $p1, drop_stale $s0 -> $s1"
else
	not_ok "replayed_and_stale_signed_loads_refused" "${fails[@]}"
fi

# 5. (a) A signed REQUEST replayed 50 times from the attacker's address.
p0=$(counter drop_replay)
out=$(atk request --to 10.90.100.1:7470 --bind 10.90.9.2 --service 1 --tenant 42 \
	--tenant-key "$TK" --replay --count 50)
p1=$(counter drop_replay)
if [ "$out" = "sent=50 answered=1" ] && [ "$((p1 - p0))" -ge 49 ]; then
	ok "replayed_signed_request_served_once"
	echo "# $out; drop_replay $p0 -> $p1"
else
	not_ok "replayed_signed_request_served_once" "$out; drop_replay $p0 -> $p1"
fi

# 6. (c) A forged REPLY from node 2's address to a destination of the
# attacker's choice; with reply_check off it is relayed from the VIP.
fails=()
f0=$(counter drop_no_flow)
r0=$(counter reply_fwd)
atk raw --kind reply --src 10.90.12.2:7470 --to 10.90.0.2:40000 --load-for 2 --count 30 >/dev/null
f1=$(counter drop_no_flow)
r1=$(counter reply_fwd)
tb cpnctl apply --config "$TMP/nocheck.yaml" >>"$TMP/apply.log" 2>&1 || fails+=("reply_check: false not applied")
atk raw --kind reply --src 10.90.12.2:7470 --to 10.90.0.2:40000 --load-for 2 --count 30 >/dev/null
r2=$(counter reply_fwd)
tb cpnctl apply --config "$TMP/keyed.yaml" >>"$TMP/apply.log" 2>&1 || fails+=("keyed.yaml not applied again")
[ "$((f1 - f0))" -ge 30 ] || fails+=("drop_no_flow $f0 -> $f1, not +30")
[ "$r1" = "$r0" ] || fails+=("reply_fwd $r0 -> $r1: forged replies relayed")
[ "$((r2 - r1))" -ge 30 ] || fails+=("reply_check: false: reply_fwd $r1 -> $r2, not +30")
if [ ${#fails[@]} -eq 0 ]; then
	ok "forged_reply_to_any_destination_not_relayed"
	echo "# drop_no_flow $f0 -> $f1, reply_fwd $r0 -> $r1; with reply_check: false reply_fwd -> $r2"
else
	not_ok "forged_reply_to_any_destination_not_relayed" "${fails[@]}" "$TMP/apply.log"
fi

# 9. (c) Another node's answer: node 2 drained, so the client's requests
# (from the client's namespace) go to node 1; the attacker meanwhile sends
# REPLYs forged from node 2's address for the same request ids to the
# client. None is relayed (no flow of node 2; drop_no_flow); node 1's
# answers all are. With reply_check: false, the forged ones come through.
race() { # rid0, forge args...: the client's outcome while the attacker forges
	local rid0=$1 fpid
	shift
	tb exec atk -- timeout 30 python3 "$SEC" race-forge --to 10.90.0.2:45000 --service 1 \
		--tenant 42 --rid0 "$rid0" --count 40 --duration 1.5 "$@" >/dev/null 2>&1 &
	fpid=$!
	tb exec client -- timeout 30 python3 "$SEC" race-client --to 10.90.100.1:7470 \
		--bind 10.90.0.2:45000 --service 1 --tenant 42 --tenant-key "$TK" --rid0 "$rid0" \
		--count 40 --timeout 2
	wait "$fpid"
}
fails=()
tb cpnctl node drain 2 >>"$TMP/apply.log" 2>&1 || fails+=("node 2 not drained")
f0=$(counter drop_no_flow)
out1=$(race 1000000 --src 10.90.12.2:7470 --node 2 --copies 10)
f1=$(counter drop_no_flow)
tb cpnctl apply --config "$TMP/nocheck.yaml" >>"$TMP/apply.log" 2>&1 || fails+=("nocheck not applied")
tb cpnctl node drain 2 >>"$TMP/apply.log" 2>&1
out2=$(race 2000000 --src 10.90.12.2:7470 --node 2 --copies 10)
tb cpnctl apply --config "$TMP/keyed.yaml" >>"$TMP/apply.log" 2>&1 || fails+=("keyed.yaml not applied again")
tb cpnctl node drain 2 >>"$TMP/apply.log" 2>&1
[ "$out1" = "sent=40 genuine=40 forged=0" ] || fails+=("reply_check on: $out1")
[ "$((f1 - f0))" -ge 400 ] || fails+=("drop_no_flow $f0 -> $f1, not +400")
case "$out2" in *" forged=0" | "") fails+=("reply_check off: '$out2': the attack did not work") ;; esac
if [ ${#fails[@]} -eq 0 ]; then
	ok "another_nodes_answer_not_forwarded"
	echo "# reply_check on: $out1, drop_no_flow $f0 -> $f1; off: $out2"
else
	not_ok "another_nodes_answer_not_forwarded" "${fails[@]}"
fi

# 10. (a) Replays of signed REPLYs and PROBE_ACKs: REPLYs signed with node
# 1's key for the client's requests (which go to node 1), each the same
# datagram sent ten times: at most one per request relayed, the copies
# refused (drop_replay, or drop_no_flow once the flow is taken); a
# PROBE_ACK of node 1 with a fresh valid cookie sent ten times: drop_replay
# for nine.
fails=()
p0=$(counter drop_replay)
n0=$(counter drop_no_flow)
out=$(race 3000000 --src 10.90.11.2:7470 --node 1 --key "$K1" --copies 10)
p1=$(counter drop_replay)
n1=$(counter drop_no_flow)
atk probe-ack --key "$K1" --cookie-key "$HOP" --src 10.90.11.2:7470 --to 10.90.11.1:7471 \
	--node-id 1 --count 10 >/dev/null
sleep 0.2
p2=$(counter drop_replay)
tb cpnctl node undrain 2 >>"$TMP/apply.log" 2>&1
forged=${out##*forged=}
[ -n "$out" ] && [ "${forged:-99}" -le 40 ] || fails+=("a replayed REPLY relayed more than once per request: $out")
[ "$((p1 - p0 + n1 - n0))" -ge 360 ] ||
	fails+=("REPLY copies: drop_replay $p0 -> $p1, drop_no_flow $n0 -> $n1: not +360 of 400")
[ "$((p2 - p1))" -ge 9 ] || fails+=("PROBE_ACK copies: drop_replay $p1 -> $p2, not +9")
if [ ${#fails[@]} -eq 0 ]; then
	ok "replayed_signed_replies_and_probe_acks_refused"
	echo "# REPLY x10 per request: $out, drop_replay $p0 -> $p1, drop_no_flow $n0 -> $n1;" \
		"PROBE_ACK x10: drop_replay $p1 -> $p2"
else
	not_ok "replayed_signed_replies_and_probe_acks_refused" "${fails[@]}"
fi

# 7. (d) A client that names its node: without the hop key's tag it is not
# honoured, and the request is steered and admitted like any.
fails=()
g0=$(counter req_tag_forged)
h0=$(counter req_tag_honoured)
out1=$(atk request --to 10.90.100.1:7470 --bind 10.90.9.2 --service 1 --tenant 42 \
	--tenant-key "$TK" --tagged-node 2 --count 20)
g1=$(counter req_tag_forged)
h1=$(counter req_tag_honoured)
out2=$(atk request --to 10.90.100.1:7470 --bind 10.90.9.2 --service 1 --tenant 42 \
	--tenant-key "$TK" --tagged-node 2 --hop-key "$HOP" --count 20)
h2=$(counter req_tag_honoured)
[ "$((g1 - g0))" -ge 20 ] || fails+=("req_tag_forged $g0 -> $g1, not +20")
[ "$h1" = "$h0" ] || fails+=("req_tag_honoured $h0 -> $h1 for made-up tags")
[ "$out1" = "sent=20 answered=20" ] || fails+=("made-up tags: $out1 (steered anew, all answered)")
[ "$((h2 - h1))" -ge 20 ] || fails+=("the hop key's tags: req_tag_honoured $h1 -> $h2, not +20")
if [ ${#fails[@]} -eq 0 ]; then
	ok "client_chosen_tags_without_hop_key_not_honoured"
	echo "# made-up tags: $out1, req_tag_forged $g0 -> $g1; the hop key's: $out2, honoured $h1 -> $h2"
else
	not_ok "client_chosen_tags_without_hop_key_not_honoured" "${fails[@]}"
fi

# 8. (h) Reports with a bad UDP checksum.
b0=$(counter drop_bad_csum)
r0=$(node_field 2 reports)
atk raw --src 10.90.12.2:7470 --to 10.90.12.1:7471 --load-for 2 --queue 5000 --count 200 \
	--bad-udp-csum >/dev/null
b1=$(counter drop_bad_csum)
r1=$(node_field 2 reports)
if [ "$((b1 - b0))" -ge 200 ] && [ "$((r1 - r0))" -lt 100 ]; then
	ok "reports_with_bad_checksum_not_learned"
	echo "# drop_bad_csum $b0 -> $b1, node 2's reports $r0 -> $r1"
else
	not_ok "reports_with_bad_checksum_not_learned" "drop_bad_csum $b0 -> $b1, reports $r0 -> $r1"
fi
tap_ran "$N"
