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
#     same for node 2 (no key): learned.
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
HOP=0f1e2d3c4b5a69788796a5b4c3d2e1f0
BADKEY=0123456789abcdef0123456789abcdef
STATE=/run/cpn-testbed/$NAME
CTL=10.90.9.1:7471

N=2
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
# Node 1's key into the router's configuration.
sed "s/addr: \"10.90.11.2:7470\"}/addr: \"10.90.11.2:7470\", key: \"$K1\"}/" "$STATE/cpn.yaml" \
	>"$TMP/keyed.yaml"
tb cpnctl apply --config "$TMP/keyed.yaml" >"$TMP/apply.log" 2>&1 &&
	grep -q "$K1" "$TMP/keyed.yaml" || {
	not_ok "node_key_applied" "$TMP/apply.log" "$TMP/keyed.yaml"
	bail "config"
}

# 1. (f) Requests sent straight to the nodes, skipping the router.
fails=()
u0=$(wmetric w1 cpn_worker_ignored_total 'reason="unrouted"')
out1=$(atk request --to 10.90.11.2:7470 --bind 10.90.9.2 --service 1 --tenant 42 --count 100)
out2=$(atk request --to 10.90.12.2:7470 --bind 10.90.9.2 --service 1 --tenant 42 --count 100)
u1=$(wmetric w1 cpn_worker_ignored_total 'reason="unrouted"')
[ "$out1" = "sent=100 answered=0" ] || fails+=("node 1 (--hop-key): $out1")
[ "$out2" = "sent=100 answered=100" ] || fails+=("node 2 (no hop key, the protection off): $out2")
[ "$((u1 - u0))" -ge 100 ] || fails+=("node 1 counted $((u1 - u0)) unrouted, not 100")
if [ ${#fails[@]} -eq 0 ]; then
	ok "unrouted_requests_to_worker_with_hop_key_not_answered"
	echo "# node 1 (--hop-key): $out1, unrouted $u0 -> $u1; node 2 (none): $out2"
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
tap_ran "$N"
