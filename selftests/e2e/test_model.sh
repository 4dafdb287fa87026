#!/usr/bin/env bash
# e2e: a real model behind cpn. ResNet-18 from Debian's python3-torch and
# python3-torchvision (random initialisation, nothing downloaded) served by
# examples/resnet_worker.py, a Python node on the worker library, batched up
# to 16; examples/resnet_client.py sends 1000 images through the XDP router
# of the testbed and checks every answer against the same model run in the
# client (equal to float32 rounding, same top class). Images are 64 x 64
# here, so that the test takes seconds (ResNet-18 takes any size); each one
# is a 48 KiB large message, each answer 4000 bytes: both go as fragments.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
TB=tools/testbed
ROOT=$(pwd)
PY=/usr/bin/python3

need_root
need_file "$BUILD/cpnctl" "$BUILD/libcpn.so.0"
for m in torch torchvision; do
	[ -e /usr/lib/python3/dist-packages/$m/__init__.py ] ||
		fail_all "missing the Python module $m (Debian package python3-$m): run make deps"
done
need_cmd ip bpftool nsenter ethtool timeout
[ -x "$PY" ] || fail_all "missing /usr/bin/python3 (Debian package python3): run make deps"

NAME=md$(($$ % 100000))
TMP=$(mktemp -d /tmp/cpn-model.XXXXXX)
trap '$TB down --name $NAME >/dev/null 2>&1; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
VIP=10.90.100.1:7470

N=4
echo "1..$N"
# The node program the testbed starts in place of cpn-worker.
cat >"$TMP/node" <<SH
#!/bin/sh
export PYTHONPATH="$ROOT/python" CPN_LIBRARY="$ROOT/$BUILD/libcpn.so.0"
exec $PY "$ROOT/examples/resnet_worker.py" "\$@"
SH
chmod +x "$TMP/node"
if ! TESTBED_WORKER="$TMP/node" TESTBED_WAIT_S=60 timeout 120 $TB up --name "$NAME" \
	--worker "--max-batch 16 --max-delay-us 20000 --size 64 --threads 1 --metrics 10.90.11.2:9470" >"$TMP/up.log" 2>&1; then
	not_ok "the_resnet_node_comes_up_behind_the_router" "$TMP/up.log" /run/cpn-testbed/"$NAME"/w1.log
	bail_rest "$N" "skipped: no node"
	exit 1
fi
ok "the_resnet_node_comes_up_behind_the_router"

timeout 300 $TB exec --name "$NAME" client -- env PYTHONPATH="$ROOT/python" \
	CPN_LIBRARY="$ROOT/$BUILD/libcpn.so.0" OMP_NUM_THREADS=1 "$PY" "$ROOT/examples/resnet_client.py" \
	"$VIP" --requests 1000 --size 64 --window 48 --json "$TMP/fig.json" >"$TMP/client.log" 2>&1
cat "$TMP/client.log" | sed 's/^/# /'
check "1000_requests_through_the_router_every_answer_equal_to_the_local_model" "$TMP/client.log" \
	"$PY" -c 'import json,sys; f=json.load(open(sys.argv[1])); sys.exit(not (f["answered"] == 1000 and f["equal"] == 1000 and f["errors"] == 0))' "$TMP/fig.json"

# They were batched: the node's batch-size histogram, mean above 8.
timeout 20 $TB exec --name "$NAME" w1 -- curl -sf http://10.90.11.2:9470/metrics >"$TMP/w1.prom" 2>&1
check "the_node_ran_them_in_batches_of_more_than_8_on_average" "$TMP/w1.prom" \
	"$PY" -c '
import re, sys
t = open(sys.argv[1]).read()
s = float(re.search(r"^cpn_worker_batch_size_sum\S* (\S+)", t, re.M).group(1))
n = float(re.search(r"^cpn_worker_batch_size_count\S* (\S+)", t, re.M).group(1))
print("# %d requests in %d batches" % (s, n))
sys.exit(not (s >= 1000 and s / n > 8))' "$TMP/w1.prom"
timeout 30 $TB cpnctl --name "$NAME" status >"$TMP/status.txt" 2>&1
check "the_router_steered_them_and_took_the_replies_back" "$TMP/status.txt" \
	"$PY" -c '
import json, subprocess, sys
s = json.loads(subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=30).stdout)
n = [x for x in s["nodes"] if x["id"] == 1][0]
print(n)
sys.exit(not (n.get("requests", 0) >= 1000 and n.get("replies", 0) >= 1000))' \
	$TB cpnctl --name "$NAME" status -j
