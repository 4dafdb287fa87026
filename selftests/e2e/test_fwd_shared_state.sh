#!/usr/bin/env bash
# e2e: the two data planes share one node table.
#
# A router pinned by `cpnctl up` (no interfaces) and cpn-fwd --pin-dir on
# net_pcap ports (no NIC, no hugepages) run over the same cpn_node_state:
#   - LOADs only cpn-fwd sees (node 1 busy, node 2 idle) steer cpn-fwd's
#     requests (policy least) to node 2, and `cpnctl status -j` shows the
#     queue cpn-fwd learned (the XDP program never saw that LOAD);
#   - LOADs fed to the pinned XDP program (bpftool prog run, i.e.
#     BPF_PROG_TEST_RUN) making node 2 busy and node 1 idle steer a later
#     cpn-fwd's requests to node 1.
# Packet and service counters are per plane, not shared: XDP's per-CPU maps
# (cpnctl stats/status) vs cpn-fwd's own per-lcore counters. So the test
# checks that `cpnctl status` shows no XDP requests while cpn-fwd's /metrics
# counts its own with plane="dpdk".
# /metrics of cpn-fwd: `promtool check metrics` says nothing, every series
# carries plane="dpdk", and each family has the name, type and label names
# of the daemon's family (CPN_METRICS, userspace/lib/cpn_prom.h) it matches.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
FWD=$(pwd)/$BUILD/cpn-fwd
PCAP=$(pwd)/$BUILD/selftests/e2e/fwd_pcap
CPNCTL=$(pwd)/$BUILD/cpnctl

need_root
need_file "$FWD" "$PCAP" "$CPNCTL"
need_cmd bpftool python3 promtool mountpoint mount cmp timeout
PROMTOOL=$(command -v promtool)
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || fail_all "cannot mount bpffs at /sys/fs/bpf"

TMP=$(mktemp -d /tmp/cpn-fwd-shared.XXXXXX)
PIN=/sys/fs/bpf/cpn_fwd_shared_$$ # bpffs: no dots in names
STATE=$TMP/state
PFX=cpnfwdsh$$
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -INT "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	"$CPNCTL" --pin-dir "$PIN" --state-dir "$STATE" down >/dev/null 2>&1
	rm -rf "$PIN" "/var/run/dpdk/$PFX"*
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
ctl() { "$CPNCTL" --pin-dir "$PIN" --state-dir "$STATE" "$@"; }

cat >"$TMP/cfg.yaml" <<'YAML'
interfaces: []
control_port: 7471
services:
  - {name: infer, id: 1, vip: 10.0.0.100, port: 7470, policy: least, stale_ms: 60000,
     nodes: [1, 2]}
nodes:
  - {id: 1, addr: "10.1.0.1:7470"}
  - {id: 2, addr: "10.1.0.2:7470"}
tenants:
  - {id: 42, services: [infer]}
YAML
NEIGH=(--neigh 10.1.0.1=02:00:00:00:01:01 --neigh 10.1.0.2=02:00:00:00:01:02)

# fwd NAME IN METRICS_PORT cpn-fwd-args...: forward IN into NAME.pcap; scrape
# /metrics into NAME.prom once the input is through; stop on SIGINT.
fwd() {
	local name=$1 in=$2 mport=$3 pid rc
	shift 3
	"$FWD" --no-huge --no-shconf --no-pci --file-prefix "${PFX}_$name" -l 0-1 -m 512 \
		--vdev "net_pcap0,rx_pcap=$in,tx_pcap=$TMP/$name.pcap" -- \
		--metrics "127.0.0.1:$mport" "$@" >"$TMP/$name.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	python3 - "$mport" "$TMP/$name.prom" <<'PY' >>"$TMP/$name.log" 2>&1
import sys, time, urllib.request
url = "http://127.0.0.1:%s/metrics" % sys.argv[1]
body, deadline = "", time.time() + 8
while time.time() < deadline:
    try:
        body = urllib.request.urlopen(url, timeout=2).read().decode()
        # net_pcap reads the whole file at once: wait until rx stops moving.
        if 'action="rx",plane="dpdk"} 0\n' not in body:
            time.sleep(0.3)
            body = urllib.request.urlopen(url, timeout=2).read().decode()
            break
    except OSError:
        pass
    time.sleep(0.1)
open(sys.argv[2], "w").write(body)
PY
	kill -INT "$pid"
	wait "$pid"
	rc=$?
	pids=()
	"$PCAP" dump "$TMP/$name.pcap" >"$TMP/$name.out" 2>&1
	echo "rc=$rc" >>"$TMP/$name.log"
	return $rc
}
# all_to NAME COUNT NODE: NAME.out holds COUNT requests, all DNATed to NODE.
all_to() {
	[ "$(grep -c ' type=1 ' "$TMP/$1.out")" -eq "$2" ] &&
		[ "$(grep -c " 10.1.0.$3 7470 type=1 node=$3 " "$TMP/$1.out")" -eq "$2" ]
}
jq_py() { # python expression over the JSON on stdin, bound to d
	python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($1) else 1)"
}

echo "1..9"

# ---- 1. the router, pinned, no interfaces ----------------------------------
if ! ctl up --config "$TMP/cfg.yaml" >"$TMP/up.log" 2>&1 || [ ! -e "$PIN/progs/cpn_xdp" ]; then
	not_ok "cpnctl up pins the router (interfaces: [])" "$TMP/up.log"
	exit 1
fi
ok "cpnctl up pins the router (interfaces: [])"

# ---- 2-4. LOADs only cpn-fwd sees -------------------------------------------
"$PCAP" mk "$TMP/in1.pcap" load:1:1000 load:2:0 req:8 &&
	"$PCAP" mk "$TMP/in2.pcap" req:8 &&
	"$PCAP" frame "$TMP/load1.bin" load:1:0 &&
	"$PCAP" frame "$TMP/load2.bin" load:2:1000 ||
	{
		bail_rest 9 "fwd_pcap cannot write the captures and frames"
		exit 1
	}

M1=$(free_port)
fwd a "$TMP/in1.pcap" "$M1" --pin-dir "$PIN" "${NEIGH[@]}"
run_a_ok() {
	grep -q rc=0 "$TMP/a.log" && grep -qE '^  load_learned +2$' "$TMP/a.log" && all_to a 8 2
}
check "cpn-fwd --pin-dir: LOADs it learned (node 1 busy) send all 8 requests to node 2" \
	"$TMP/a.out" run_a_ok

ctl status -j >"$TMP/st1.json" 2>&1
ctl stats -j >"$TMP/stats1.json" 2>&1
check "cpnctl status shows the queue cpn-fwd learned (node 1: 1000, node 2: 8 outstanding)" \
	"$TMP/st1.json" jq_py "{x['id']: x for x in d['nodes']}[1]['queue_depth'] == 1000 and
		{x['id']: x for x in d['nodes']}[2]['queue_depth'] == 0 and
		{x['id']: x for x in d['nodes']}[2]['outstanding'] == 8" <"$TMP/st1.json"
# Counters are per plane: XDP's per-CPU maps saw nothing, cpn-fwd counts its own.
check "service counters are per plane: XDP's 0, cpn-fwd's /metrics 8 with plane=\"dpdk\"" \
	"$TMP/a.prom" sh -c "python3 -c \"import json,sys; d=json.load(open('$TMP/st1.json'));
sys.exit(0 if d['services'][0]['requests'] == 0 else 1)\" &&
	[ \"\$(awk -v s='cpn_service_requests_total{service_id=\"1\",plane=\"dpdk\"}' 'index(\$0, s \" \") == 1 {print \$2}' '$TMP/a.prom')\" = 8 ] &&
	[ \"\$(awk -v s='cpn_node_requests_total{node=\"2\",addr=\"10.1.0.2:7470\",plane=\"dpdk\"}' 'index(\$0, s \" \") == 1 {print \$2}' '$TMP/a.prom')\" = 8 ]"

# ---- 5-6. LOADs only XDP sees ----------------------------------------------
: >"$TMP/xdp.log"
for f in load1 load2; do
	bpftool prog run pinned "$PIN/progs/cpn_xdp" data_in "$TMP/$f.bin" \
		data_out "$TMP/$f.out" >>"$TMP/xdp.log" 2>&1
done
ctl status -j >"$TMP/st2.json" 2>&1
check "LOADs run through the pinned XDP program are learned (node 2: 1000, node 1: 0)" \
	"$TMP/xdp.log" sh -c "[ \$(grep -c 'Return value: 1,' '$TMP/xdp.log') -eq 2 ] &&
	python3 -c \"import json,sys; n={x['id']: x for x in json.load(open('$TMP/st2.json'))['nodes']};
sys.exit(0 if n[1]['queue_depth'] == 0 and n[2]['queue_depth'] == 1000 else 1)\""

M2=$(free_port)
fwd b "$TMP/in2.pcap" "$M2" --pin-dir "$PIN" "${NEIGH[@]}"
run_b_ok() { grep -q rc=0 "$TMP/b.log" && ! grep -q load_learned "$TMP/b.log" && all_to b 8 1; }
check "a new cpn-fwd sends all 8 requests to node 1, by the load XDP learned" "$TMP/b.out" run_b_ok

# ---- 7-9. /metrics: promtool, plane="dpdk", the daemon's names -------------
M3=$(free_port)
fwd c "$TMP/in1.pcap" "$M3" --config "$TMP/cfg.yaml" "${NEIGH[@]}"
"$PROMTOOL" check metrics <"$TMP/c.prom" >"$TMP/promtool.out" 2>&1
prc=$?
check "promtool check metrics: nothing to say about cpn-fwd's /metrics" "$TMP/promtool.out" \
	sh -c "[ $prc -eq 0 ] && [ ! -s '$TMP/promtool.out' ] && [ -s '$TMP/c.prom' ]"
check "every cpn-fwd series carries plane=\"dpdk\"" "$TMP/c.prom" \
	sh -c "! grep -v '^#' '$TMP/c.prom' | grep -v 'plane=\"dpdk\"' | grep -q ."

MD=$(free_port)
# The binary itself in the background (not the ctl function, whose subshell
# would leave the daemon behind when killed): $! is the daemon.
"$CPNCTL" --pin-dir "$PIN" --state-dir "$STATE" daemon --config "$TMP/cfg.yaml" \
	--metrics "127.0.0.1:$MD" >"$TMP/daemon.log" 2>&1 &
dpid=$!
pids+=("$dpid")
python3 - "$MD" "$TMP/daemon.prom" "$TMP/c.prom" "$TMP/a.prom" >"$TMP/cmp.log" 2>&1 <<'PY'
import re, sys, time, urllib.request
body, deadline = "", time.time() + 8
while time.time() < deadline and not body:
    try:
        body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=2).read().decode()
    except OSError:
        time.sleep(0.1)
open(sys.argv[2], "w").write(body)

def families(text):
    """name -> (type, set of label-name tuples, set of plane values)"""
    fam, types = {}, {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            types[m[1]] = m[2]
            continue
        if not line or line[0] == "#":
            continue
        m = re.match(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? \S+$", line)
        assert m, line
        name = m[1]
        for suf in ("_bucket", "_sum", "_count"):
            if name.endswith(suf) and name[: -len(suf)] in types:
                name = name[: -len(suf)]
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m[2] or ""))
        t, keys, planes = fam.setdefault(name, (types.get(name), set(), set()))
        keys.add(tuple(sorted(labels)))
        planes.add(labels.get("plane"))
    return fam

d = families(body)
bad = []
for path, names_known in ((sys.argv[3], True), (sys.argv[4], False)):
    f = families(open(path).read())
    for name, (t, keys, planes) in sorted(f.items()):
        # cpn-fwd's own (its busy time, late binding): no daemon has them.
        if name.startswith(("cpn_fwd_", "cpn_late_")):
            continue
        if name not in d:
            bad.append("%s: %s is not a daemon family" % (path, name))
            continue
        dt, dkeys, dplanes = d[name]
        if t != dt:
            bad.append("%s: %s is a %s, the daemon's a %s" % (path, name, t, dt))
        if dplanes != {"xdp"} or planes != {"dpdk"}:
            bad.append("%s: %s planes %s, daemon's %s" % (path, name, planes, dplanes))
        want = dkeys
        if not names_known:  # --pin-dir: the maps hold no service names
            want = {tuple(k for k in ks if k != "service") for ks in dkeys}
        if keys != want:
            bad.append("%s: %s labels %s, the daemon's %s" % (path, name, keys, dkeys))
for b in bad:
    print(b)
print("compared %d families" % len(families(open(sys.argv[3]).read())))
sys.exit(1 if bad or not d else 0)
PY
crc=$?
kill -TERM "$dpid" 2>/dev/null # a background job ignores SIGINT
wait "$dpid" 2>/dev/null
pids=()
check "cpn-fwd's families have the daemon's names, types and labels, plane=\"dpdk\"" \
	"$TMP/cmp.log" [ "$crc" -eq 0 ]
