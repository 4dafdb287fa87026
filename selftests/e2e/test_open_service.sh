#!/usr/bin/env bash
# e2e: a service open to every tenant (only `any` lists it, with no key and
# no rate) carries CPN_SVC_OPEN in the router's map, and the data plane then
# skips the tenant lookups. The flag must follow the tenants through every
# way they change: `cpnctl up`, `cpnctl tenant add/del` and `cpnctl apply`.
# `cpnctl status -j` shows it from the map (`open`). No interfaces are
# needed: the router is loaded and configured, not attached.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
cpnctl_sandbox open
KEY=000102030405060708090a0b0c0d0e0f

# TENANTS lines go under `tenants:`.
config() {
	cat <<EOF
interfaces: []
control_port: 7471
services:
  - {name: a, id: 1, vip: 10.0.0.100, port: 7470, nodes: [1]}
  - {name: b, id: 2, vip: 10.0.0.101, port: 7470, nodes: [1]}
  - {name: c, id: 3, vip: 10.0.0.102, port: 7470, nodes: [1]}
nodes:
  - {id: 1, addr: "10.1.0.2:7470"}
tenants:
$1
EOF
}

# open_is "a=1 b=0 c=0": the services' `open` in `cpnctl status -j`.
open_is() {
	ctl status -j >"$TMP/st.json" 2>"$TMP/st.err" || return 1
	python3 - "$TMP/st.json" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
got = {s["name"]: int(s["open"]) for s in d["services"]}
want = {k: int(v) for k, v in (x.split("=") for x in sys.argv[2].split())}
assert got == want, (got, want)
PY
}

echo "1..5"

config "  - {id: any, services: [a, b]}
  - {id: 7, services: [b], key: \"$KEY\"}" >"$TMP/cfg.yaml"
if ctl up --config "$TMP/cfg.yaml" >"$TMP/out" 2>&1 && open_is "a=1 b=0 c=0" 2>>"$TMP/out"; then
	ok "only_any_without_key_or_rate_opens_a_service"
else
	not_ok "only_any_without_key_or_rate_opens_a_service" "$TMP/out" "$TMP/st.json"
fi

# A tenant of its own with a rate closes it; taking that tenant away opens it.
if ctl tenant add 9 --services a --rate 5 >"$TMP/out" 2>&1 && open_is "a=0 b=0 c=0" 2>>"$TMP/out" &&
	ctl tenant del 9 >>"$TMP/out" 2>&1 && open_is "a=1 b=0 c=0" 2>>"$TMP/out"; then
	ok "tenant_add_closes_and_tenant_del_reopens"
else
	not_ok "tenant_add_closes_and_tenant_del_reopens" "$TMP/out" "$TMP/st.json"
fi

# `any` taken away closes its services; back with a key, they stay closed.
if ctl tenant del any >"$TMP/out" 2>&1 && open_is "a=0 b=0 c=0" 2>>"$TMP/out" &&
	ctl tenant add any --services a,b --key "$KEY" >>"$TMP/out" 2>&1 &&
	open_is "a=0 b=0 c=0" 2>>"$TMP/out"; then
	ok "any_removed_or_keyed_closes_its_services"
else
	not_ok "any_removed_or_keyed_closes_its_services" "$TMP/out" "$TMP/st.json"
fi

# apply: the keyed tenant 7 gone and `any` open on all three.
config "  - {id: any, services: [a, b, c]}" >"$TMP/cfg2.yaml"
if ctl apply --config "$TMP/cfg2.yaml" >"$TMP/out" 2>&1 && open_is "a=1 b=1 c=1" 2>>"$TMP/out"; then
	ok "apply_opens_what_the_new_tenants_leave_open"
else
	not_ok "apply_opens_what_the_new_tenants_leave_open" "$TMP/out" "$TMP/st.json"
fi

# apply: `any` with a rate, and no tenant for c at all.
config "  - {id: any, services: [a, b], rate: 100}" >"$TMP/cfg3.yaml"
if ctl apply --config "$TMP/cfg3.yaml" >"$TMP/out" 2>&1 && open_is "a=0 b=0 c=0" 2>>"$TMP/out"; then
	ok "apply_closes_on_a_rate_or_when_nobody_admits"
else
	not_ok "apply_closes_on_a_rate_or_when_nobody_admits" "$TMP/out" "$TMP/st.json"
fi
