#!/usr/bin/env bash
# e2e: cpn and a foreign XDP program on one interface.
#
# The testbed's router port toward the client (r-c) gets a program that
# knows nothing of cpn: selftests/e2e/xdp_count.bpf.o counts UDP datagrams
# by destination port and passes everything. Checked:
#   - a program attached on its own (ip link / bpftool): `cpnctl apply` puts
#     cpn_xdp_chain (the router, handing on what it passes) in its place
#     atomically; cpn's requests are all
#     steered and answered and never reach the foreign program, which still
#     counts every datagram cpn passes; `cpnctl status` says so;
#   - taking cpn off the interface (an apply without it, and `cpnctl down`)
#     puts the foreign program back, still counting;
#   - xdp_attach: plain refuses the interface, names the program, and changes
#     nothing;
#   - libxdp's dispatcher: where the kernel can run it (it needs freplace
#     programs), the foreign program loaded by xdp-loader and cpn share the
#     dispatcher, cpn at run priority 30 before it; where it cannot, that is
#     a skip with the reason, and xdp_attach: libxdp falls back to attaching
#     cpn_xdp on its own, saying why.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
TB=tools/testbed
NAME=xco
OBJ=selftests/e2e/xdp_count.bpf.o

need_root
need_file "$OBJ" "$BUILD/cpnctl" "$BUILD/cpn-load"
need_cmd python3 ip nsenter bpftool xdp-loader timeout

TMP=$(mktemp -d /tmp/cpn-coexist.XXXXXX)
FPIN=/sys/fs/bpf/cpn-coexist-$$
# libxdp keeps its dispatchers' pins under /sys/fs/bpf/xdp and makes the
# directory on first use: removed after, if this test made it and left it empty.
LXDIR=/sys/fs/bpf/xdp
[ -d "$LXDIR" ] && lx_had=1 || lx_had=0
cleanup() {
	$TB down --name $NAME >/dev/null 2>&1
	rm -rf "$FPIN" "$FPIN-maps" "$FPIN-lx"
	[ "$lx_had" = 1 ] || rmdir "$LXDIR" 2>/dev/null
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

T=10
echo "1..$T"
if ! timeout 120 $TB up --name $NAME --worker "--kernel echo" >"$TMP/up.log" 2>&1; then
	not_ok "testbed_up" "$TMP/up.log"
	bail_rest "$((T - 1))" "testbed (not reached)"
	exit 1
fi
eval "$($TB info --name $NAME)"
R() { $TB exec --name $NAME router -- "$@"; }
ctl() { $TB cpnctl --name $NAME "$@"; }

sed 's/interfaces: \[r-c, r-w1\]/interfaces: [r-w1]/' "$STATE/cpn.yaml" >"$TMP/noc.yaml"
cp "$STATE/cpn.yaml" "$TMP/all.yaml"
{ cat "$TMP/all.yaml"; echo "xdp_attach: plain"; } >"$TMP/plain.yaml"

on_rc() { R ip -o link show r-c | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p'; }
chain_id() { R bpftool prog show pinned "$PIN/progs/cpn_xdp_chain" | sed -n '1s/:.*//p'; }
count() { # maps dir, port: what the foreign program counted
	R bpftool map lookup pinned "$1/count_ports" key $(($2 & 255)) $(($2 >> 8)) 0 0 -j |
		python3 -c 'import json,sys; print(sum(v["value"] for v in json.load(sys.stdin)["formatted"]["values"]))'
}
other() { # 20 UDP datagrams that are not cpn's, to the router's own address
	$TB exec --name $NAME client -- python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(20):
    s.sendto(b"not cpn", ("10.90.0.1", 9999))'
	sleep 0.3
}
load() { # out.json: cpn requests through r-c
	$TB exec --name $NAME client -- "$BUILD/cpn-load" --to "$VIP:$PORT" --service 1 \
		--tenant "$TENANT" --rate 300 --duration 1 --timeout 500 --json >"$1" 2>"$1.err"
}
field() { python3 -c "import json; print(json.load(open('$1'))['$2'])"; }
stat() { ctl stats -j | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# 1. The foreign program alone on r-c (cpn off it), counting.
ctl apply --config "$TMP/noc.yaml" >"$TMP/noc.log" 2>&1
R bpftool prog load "$OBJ" "$FPIN" type xdp pinmaps "$FPIN-maps" >>"$TMP/noc.log" 2>&1 &&
	R bpftool net attach xdp pinned "$FPIN" dev r-c >>"$TMP/noc.log" 2>&1
FID=$(R bpftool prog show pinned "$FPIN" | sed -n '1s/:.*//p')
other
c1=$(count "$FPIN-maps" 9999)
echo "r-c carries prog ${FID:-?} (on r-c: $(on_rc)); it counted $c1 of 20 datagrams" >>"$TMP/noc.log"
check "a_foreign_program_alone_on_the_interface_counts" "$TMP/noc.log" \
	test -n "$FID" -a "$(on_rc)" = "$FID" -a "$c1" -eq 20

# 2. cpn comes onto r-c: in the foreign program's place, chaining to it.
ctl apply --config "$TMP/all.yaml" >"$TMP/chain.log" 2>&1
rc=$?
ctl status >"$TMP/status.txt" 2>&1
cat "$TMP/status.txt" >>"$TMP/chain.log"
check "apply_puts_cpn_xdp_first_and_chains_the_foreign_program" "$TMP/chain.log" \
	bash -c "[ $rc -eq 0 ] && [ '$(on_rc)' = '$(chain_id)' ] &&
		grep -q 'XDP program $FID (xdp_count) was there' '$TMP/chain.log' &&
		grep -Eq '^r-c +native, then prog $FID \(xdp_count\)' '$TMP/status.txt'"

# 3. cpn's requests are steered and answered; the foreign program sees none
#    of them, and every datagram cpn passes.
s0=$(stat req_steered) p0=$(stat pass_not_cpn) f0=$(count "$FPIN-maps" 7470) c0=$(count "$FPIN-maps" 9999)
load "$TMP/load.json"
other
sent=$(field "$TMP/load.json" sent) replied=$(field "$TMP/load.json" replied)
s1=$(stat req_steered) p1=$(stat pass_not_cpn) f1=$(count "$FPIN-maps" 7470) c1=$(count "$FPIN-maps" 9999)
echo "requests: sent $sent replied $replied steered +$((s1 - s0)); foreign saw $((f1 - f0)) of them;" \
	"other: cpn passed +$((p1 - p0)), foreign counted +$((c1 - c0)) of 20" >"$TMP/both.txt"
check "both_run_cpn_steers_its_requests_the_foreign_program_sees_what_cpn_passes" "$TMP/both.txt" \
	test "$sent" -gt 0 -a "$replied" -eq "$sent" -a $((s1 - s0)) -eq "$sent" -a $((f1 - f0)) -eq 0 \
	-a $((p1 - p0)) -ge 20 -a $((c1 - c0)) -eq 20

# 4. cpn off r-c: the foreign program is back, atomically, and still counts.
ctl apply --config "$TMP/noc.yaml" >"$TMP/back.log" 2>&1
c0=$(count "$FPIN-maps" 9999)
other
c1=$(count "$FPIN-maps" 9999)
slots=$(R bpftool map dump pinned "$PIN/cpn_chain_slots" -j | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "on r-c: $(on_rc) (foreign $FID); counted +$((c1 - c0)) of 20; chain slots left: $slots" >>"$TMP/back.log"
check "leaving_the_interface_puts_the_foreign_program_back" "$TMP/back.log" \
	test "$(on_rc)" = "$FID" -a $((c1 - c0)) -eq 20 -a "$slots" -eq 0

# 5. xdp_attach: plain refuses to share, naming the program; nothing changes.
ctl apply --config "$TMP/plain.yaml" >"$TMP/plain.log" 2>&1
rc=$?
ctl status >>"$TMP/plain.log" 2>&1
check "xdp_attach_plain_refuses_the_interface_and_changes_nothing" "$TMP/plain.log" \
	bash -c "[ $rc -ne 0 ] && grep -q 'already has XDP program id $FID (xdp_count)' '$TMP/plain.log' &&
		[ '$(on_rc)' = '$FID' ] && ! grep -Eq '^r-c ' '$TMP/plain.log'"

# 6. libxdp's dispatcher, where this kernel can run it.
R ip link add lx0 type veth peer name lx1 && R ip link set lx0 up && R ip link set lx1 up
R xdp-loader load -p "$FPIN-lx" lx0 "$OBJ" >"$TMP/probe.log" 2>&1
R xdp-loader status lx0 >>"$TMP/probe.log" 2>&1
if grep -q xdp_dispatcher "$TMP/probe.log"; then
	R xdp-loader unload lx0 --all >/dev/null 2>&1
	R ip link set dev r-c xdp off
	R xdp-loader load -p "$FPIN-lx" r-c "$OBJ" >"$TMP/lx.log" 2>&1
	ctl apply --config "$TMP/all.yaml" >>"$TMP/lx.log" 2>&1
	R xdp-loader status r-c >"$TMP/lxs.txt" 2>&1
	cat "$TMP/lxs.txt" >>"$TMP/lx.log"
	check "cpn_joins_the_libxdp_dispatcher_at_priority_30_before_the_foreign_program" "$TMP/lx.log" \
		bash -c "grep -Eq 'cpn_xdp +[a-z]* *[0-9]+' '$TMP/lxs.txt' &&
			python3 - '$TMP/lxs.txt' <<'PY'
import re, sys
rows = [l.split() for l in open(sys.argv[1]) if re.match(r'\s*=>\s+\d+', l)]
prio = {r[2]: int(r[1]) for r in rows}
sys.exit(0 if prio.get('cpn_xdp') == 30 and prio.get('xdp_count', 0) > 30 else 1)
PY"
	s0=$(stat req_steered) c0=$(count "$FPIN-lx" 9999)
	load "$TMP/lxload.json"
	other
	sent=$(field "$TMP/lxload.json" sent) replied=$(field "$TMP/lxload.json" replied)
	s1=$(stat req_steered) c1=$(count "$FPIN-lx" 9999)
	echo "dispatcher: sent $sent replied $replied steered +$((s1 - s0)); foreign counted +$((c1 - c0)) of 20" >"$TMP/lxboth.txt"
	check "in_the_dispatcher_both_run" "$TMP/lxboth.txt" \
		test "$sent" -gt 0 -a "$replied" -eq "$sent" -a $((s1 - s0)) -eq "$sent" -a $((c1 - c0)) -eq 20
	ctl apply --config "$TMP/noc.yaml" >"$TMP/lxoff.log" 2>&1
	R xdp-loader status r-c >>"$TMP/lxoff.log" 2>&1
	check "leaving_the_dispatcher_keeps_the_foreign_program" "$TMP/lxoff.log" \
		bash -c "grep -q xdp_count '$TMP/lxoff.log' && ! grep -q cpn_xdp '$TMP/lxoff.log'"
	R xdp-loader unload r-c --all >/dev/null 2>&1
	R bpftool net attach xdp pinned "$FPIN" dev r-c
else
	why=$(grep -m1 -iE 'not permitted|not supported|failed' "$TMP/probe.log")
	for t in cpn_joins_the_libxdp_dispatcher in_the_dispatcher_both_run leaving_the_dispatcher; do
		skip_one "$t: this kernel cannot run libxdp's dispatcher (it refuses freplace programs: ${why:-see xdp-loader -v})"
	done
fi

# 7. xdp_attach: libxdp on a free interface: the dispatcher, or cpn on its own
#    with the reason.
R xdp-loader unload lx0 --all >/dev/null 2>&1
R ip link set dev lx0 xdp off 2>/dev/null
sed 's/interfaces: \[r-c, r-w1\]/interfaces: [r-w1, lx0]/' "$TMP/all.yaml" >"$TMP/lx0.yaml"
echo "xdp_attach: libxdp" >>"$TMP/lx0.yaml"
ctl apply --config "$TMP/lx0.yaml" >"$TMP/lx0.log" 2>&1
rc=$?
ctl status >>"$TMP/lx0.log" 2>&1
check "xdp_attach_libxdp_uses_the_dispatcher_or_says_why_not" "$TMP/lx0.log" \
	bash -c "[ $rc -eq 0 ] && grep -Eq '^lx0 +(libxdp native prio 30|native)' '$TMP/lx0.log' &&
		{ grep -Eq '^lx0 +libxdp' '$TMP/lx0.log' ||
		  grep -q \"lx0: libxdp's dispatcher cannot be used here\" '$TMP/lx0.log'; }"

# 8. cpn down with a chained program: the foreign program stays, counting.
ctl apply --config "$TMP/all.yaml" >"$TMP/down.log" 2>&1
ctl down >>"$TMP/down.log" 2>&1
c0=$(count "$FPIN-maps" 9999)
other
c1=$(count "$FPIN-maps" 9999)
echo "after down: on r-c $(on_rc) (foreign $FID), counted +$((c1 - c0)) of 20" >>"$TMP/down.log"
check "cpnctl_down_leaves_the_foreign_program_on_the_interface" "$TMP/down.log" \
	test "$(on_rc)" = "$FID" -a $((c1 - c0)) -eq 20
R ip link del lx0 2>/dev/null
