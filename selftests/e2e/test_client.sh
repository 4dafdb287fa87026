#!/usr/bin/env bash
# e2e: applications of the client library through the XDP router (tools/testbed:
# a router run by cpnctl, two cpn-worker --kernel echo nodes):
#   - examples/client.c (built against libcpn.so.0) and examples/client.py
#     (the Python binding) send one request each through the VIP and print
#     the echo;
#   - 5000 asynchronous requests from one client (call_many, 1024 in flight)
#     are all answered, by both nodes;
#   - a tenant with a key on the router: requests signed with it are
#     answered; signed with another key, or unsigned, they get no answer
#     (a timeout);
#   - every node drained: the router answers BUSY, returned as CPN_E_BUSY
#     (the C example's message) and cpn.Busy.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
TB=tools/testbed
ROOT=$(pwd)
EX=$ROOT/$BUILD/examples/client
PY=/usr/bin/python3

need_root
need_file "$BUILD/cpnctl" "$BUILD/cpn-worker" "$EX" "$BUILD/libcpn.so.0"
need_cmd ip bpftool nsenter ethtool timeout
[ -x "$PY" ] || fail_all "missing /usr/bin/python3 (Debian package python3): run make deps"

NAME=cl$(($$ % 100000))
TMP=$(mktemp -d /tmp/cpn-client.XXXXXX)
trap '$TB down --name $NAME >/dev/null 2>&1; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
VIP=10.90.100.1:7470
KEY=00112233445566778899aabbccddeeff

N=8
echo "1..$N"
timeout 90 $TB up --name "$NAME" --worker "--kernel echo" --worker "--kernel echo" \
	>"$TMP/up.log" 2>&1 || {
	bail_rest "$N" "testbed up failed"
	sed 's/^/# /' "$TMP/up.log"
	exit 1
}
inc() { # the client namespace: COMMAND...
	timeout 60 $TB exec --name "$NAME" client -- env PYTHONPATH="$ROOT/python" \
		CPN_LIBRARY="$ROOT/$BUILD/libcpn.so.0" "$@"
}

# 1, 2. The examples.
check_log "c_example_gets_its_echo_through_the_router" "$TMP/c.log" \
	bash -c "[ \"\$(timeout 60 $TB exec --name $NAME client -- $EX $VIP hello-from-c)\" = hello-from-c ]"
inc "$PY" "$ROOT/examples/client.py" "$VIP" hello-from-python >"$TMP/py.out" 2>&1
if [ "$(cat "$TMP/py.out")" = hello-from-python ]; then
	ok "python_example_gets_its_echo_through_the_router"
else
	not_ok "python_example_gets_its_echo_through_the_router" "$TMP/py.out"
fi

# 3. Many asynchronous requests from one client, all answered, by both nodes.
inc "$PY" - "$VIP" >"$TMP/many.out" 2>&1 <<'PYEOF'
import collections, sys, time
import cpn
with cpn.Client(sys.argv[1], service=1, tenant=42) as c:
    pay = [b"req-%06d" % i for i in range(5000)]
    t = time.time()
    res = c.call_many(pay, timeout=3.0, window=1024)
    dt = time.time() - t
    bad = [r for r in res if r.error is not None or r.reply != pay[r.user]]
    nodes = collections.Counter(r.node for r in res)
    print("5000 in %.3f s, %d bad, nodes %s, stats %s" % (dt, len(bad), dict(nodes), c.stats()))
    assert not bad, bad[:3]
    assert len(nodes) == 2 and 0 not in nodes, nodes
PYEOF
check "5000_async_requests_all_answered_by_both_nodes" "$TMP/many.out" \
	grep -q '^5000 in .* 0 bad' "$TMP/many.out"

# 4-6. AUTH: tenant 42 gets a key on the router.
{ timeout 30 $TB cpnctl --name "$NAME" tenant del 42 &&
	timeout 30 $TB cpnctl --name "$NAME" tenant add 42 --services svc --key "$KEY"; } >"$TMP/key.log" 2>&1 ||
	echo "tenant 42's key was not set" >>"$TMP/key.log"
sleep 0.3
check_log "signed_with_the_tenant_key_answered" "$TMP/auth_ok.log" \
	bash -c "[ \"\$(timeout 60 $TB exec --name $NAME client -- $EX $VIP signed $KEY)\" = signed ]"
timeout 60 $TB exec --name "$NAME" client -- "$EX" "$VIP" wrongkey ffffffffffffffffffffffffffffffff \
	>"$TMP/auth_bad.out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q 'timed out' "$TMP/auth_bad.out"; then
	ok "signed_with_another_key_gets_no_answer"
else
	not_ok "signed_with_another_key_gets_no_answer" "rc=$rc" "$TMP/auth_bad.out" "$TMP/key.log"
fi
inc "$PY" - "$VIP" "$KEY" >"$TMP/auth_py.out" 2>&1 <<'PYEOF'
import sys
import cpn
with cpn.Client(sys.argv[1], service=1, tenant=42, key=bytes.fromhex(sys.argv[2])) as c:
    assert c.call(b"k", timeout=1.0) == b"k"
with cpn.Client(sys.argv[1], service=1, tenant=42) as c:
    try:
        c.call(b"unsigned", timeout=0.3)
        raise SystemExit("an unsigned request was answered")
    except cpn.Timeout:
        print("unsigned: timeout")
PYEOF
check "python_key_bytes_answered_unsigned_times_out" "$TMP/auth_py.out" \
	grep -q '^unsigned: timeout' "$TMP/auth_py.out"
timeout 30 $TB cpnctl --name "$NAME" tenant del 42 >>"$TMP/key.log" 2>&1
timeout 30 $TB cpnctl --name "$NAME" tenant add 42 --services svc >>"$TMP/key.log" 2>&1

# 7, 8. BUSY: every node drained.
timeout 30 $TB cpnctl --name "$NAME" node drain 1 >"$TMP/drain.log" 2>&1
timeout 30 $TB cpnctl --name "$NAME" node drain 2 >>"$TMP/drain.log" 2>&1
sleep 0.3
timeout 60 $TB exec --name "$NAME" client -- "$EX" "$VIP" nobody >"$TMP/busy.out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q 'busy' "$TMP/busy.out"; then
	ok "no_node_up_is_busy_in_c"
else
	not_ok "no_node_up_is_busy_in_c" "rc=$rc" "$TMP/busy.out" "$TMP/drain.log"
fi
inc "$PY" - "$VIP" >"$TMP/busy_py.out" 2>&1 <<'PYEOF'
import sys
import cpn
with cpn.Client(sys.argv[1], service=1, tenant=42) as c:
    try:
        c.call(b"x", timeout=1.0)
    except cpn.Busy as e:
        print("busy reason", e.remote)
    with cpn.Client(sys.argv[1], service=1, tenant=42, busy_retry=1) as r:
        try:
            r.call(b"x", timeout=0.5)
        except cpn.Busy as e:
            print("retried busy", r.stats()["retries_busy"])
PYEOF
check "no_node_up_is_cpn_busy_in_python_also_after_retries" "$TMP/busy_py.out" \
	bash -c "grep -q '^busy reason [1-5]' $TMP/busy_py.out && grep -q '^retried busy 2' $TMP/busy_py.out"
