#!/usr/bin/env bash
# The deploy/ directory: the systemd units, the example config, the Prometheus
# scrape config and rules, and the Grafana dashboard.
#
#   - promtool accepts prometheus.yml (and the rule file it names) and the
#     rules, and the rules' unit tests pass;
#   - the dashboard is a Grafana dashboard of the expected shape, and every
#     cpn_ metric it (or a rule) names is one that cpnctl exports: the family
#     names are taken from the one list of families (CPN_METRICS in
#     userspace/lib/cpn_prom.h), histograms as their _bucket/_sum/_count
#     series;
#   - the example config passes cpnctl's parser and validation (apply with no
#     router exits 1, "no cpn router pinned"; a config refused exits 2);
#   - as root: `cpnctl up` applies the example config (interfaces emptied) to a
#     real router in a private network namespace, `cpnctl daemon` serves it on
#     the config's metrics address, and a real Prometheus run with
#     prometheus.yml scrapes it there: every family the dashboard and the rules
#     name is in the exposition with the labels they use, every dashboard
#     expression evaluates, every rule is healthy;
#   - systemd-analyze verify accepts the unit.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
CPNCTL=${BUILD:-build}/cpnctl
DEPLOY=deploy
PROM_CFG=$DEPLOY/prometheus/prometheus.yml
RULES=$DEPLOY/prometheus/cpn.rules.yml
RULES_TEST=$DEPLOY/prometheus/cpn.rules.test.yml
DASH=$DEPLOY/grafana/cpn-dashboard.json
CONFIG=$DEPLOY/cpn.yaml
SERVICE=$DEPLOY/systemd/cpnctl.service
METRICS_SRC=userspace/lib/cpn_prom.h
T=${TIMEOUT:-60}

need_cmd python3 promtool prometheus unshare ip timeout systemd-analyze

TMP=$(mktemp -d /tmp/cpn-deploy.XXXXXX)
PIN=/sys/fs/bpf/cpn-deploy-$$
cleanup() {
	if [ -d "$PIN" ]; then
		timeout 20 "$CPNCTL" --pin-dir "$PIN" --state-dir "$TMP/state" down >/dev/null 2>&1
		rm -rf "$PIN" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

echo "1..15"

# ---- 1-3: promtool --------------------------------------------------------
# check config checks the rule files it names too: it must find one.
if promtool check config "$PROM_CFG" >"$TMP/cc" 2>&1 &&
	grep -q "SUCCESS: 1 rule files found" "$TMP/cc"; then
	ok "promtool_check_config_accepts_prometheus_yml_and_its_rule_file"
else
	not_ok "promtool_check_config_accepts_prometheus_yml_and_its_rule_file" "$TMP/cc"
fi
check_log "promtool_check_rules_accepts_cpn_rules" "$TMP/cr" promtool check rules "$RULES"
check_log "promtool_test_rules_unit_tests_of_the_rules_pass" "$TMP/tr" \
	promtool test rules "$RULES_TEST"

# ---- what cpnctl exports, from the list of families (cpn_prom.h) -----------
# Families: the rows X(ID, "name", "type", help) of CPN_METRICS; the
# histograms are the rows of type "histogram".
python3 - "$METRICS_SRC" >"$TMP/exported" 2>"$TMP/exported.err" <<'EOF'
import re, sys
# The one list of families: X(ID, "name", "type", help) in CPN_METRICS. The
# daemon exports the router's, not cpn-worker's (cpn_worker_*) nor
# cpn-fwd's own (cpn_fwd_*, cpn_late_*).
src = open(sys.argv[1]).read()
rows = re.findall(r'\bX\(\s*\w+\s*,\s*"(cpn_[a-z0-9_]+)"\s*,\s*"(\w+)"', src)
fams = {n for n, t in rows if not n.startswith(("cpn_worker_", "cpn_fwd_", "cpn_late_"))}
hist = {n for n, t in rows if t == "histogram" and n in fams}
if not fams or not hist:
    sys.exit("no families (%d) or no histogram (%d) found in %s" % (len(fams), len(hist), sys.argv[1]))
# A histogram's own name is no series: only its suffixed ones are.
names = fams - hist
for h in hist:
    names |= {h + "_bucket", h + "_sum", h + "_count"}
for x in sorted(names):
    print(x)
EOF
exported_rc=$?

# Metric names of PromQL expressions: identifiers starting with cpn_ that are
# not part of a longer name (a recording rule's level:cpn_x:op, say).
cat >"$TMP/names.py" <<'EOF'
import re
NAME = re.compile(r'(?<![A-Za-z0-9_:])cpn_[A-Za-z0-9_]*(?![A-Za-z0-9_:])')
def names(expr):
    # Leave out string literals ("...", '...'): label values are not names.
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    return set(NAME.findall(expr))
EOF

# ---- 4: the rules name only exported metrics -------------------------------
if [ $exported_rc -ne 0 ]; then
	not_ok "rules_use_only_metrics_that_cpnctl_exports" "$TMP/exported.err"
elif python3 - "$RULES" "$TMP/exported" "$TMP" >"$TMP/rn" 2>&1 <<'EOF'; then
import re, sys
sys.path.insert(0, sys.argv[3])
from names import names
exported = set(open(sys.argv[2]).read().split())
text = open(sys.argv[1]).read()
# Every expr: value, one line or a block (|) up to the next key.
exprs = re.findall(r'^\s*expr:\s*(\|[^\n]*\n(?:(?:[ \t]+[^\n]*)?\n)*?(?=^\s*(?:-\s|\w+:))|[^\n]+)', text, re.M)
assert exprs, "no expr found"
used = set().union(*(names(e) for e in exprs))
assert used, "no cpn_ metric in the rules"
unknown = sorted(used - exported)
assert not unknown, "not exported by cpnctl: %s" % unknown
print("%d exprs, metrics: %s" % (len(exprs), sorted(used)))
EOF
	ok "rules_use_only_metrics_that_cpnctl_exports"
else
	not_ok "rules_use_only_metrics_that_cpnctl_exports" "$TMP/rn"
fi

# ---- 5: the dashboard's shape ----------------------------------------------
# Writes the panels' expressions (variables as PromQL can read them) to
# $TMP/exprs.json for the checks below.
if python3 - "$DASH" "$TMP/exprs.json" >"$TMP/ds" 2>&1 <<'EOF'; then
import json, re, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d, dict), "not a JSON object"
for k in ("title", "uid", "panels", "templating", "schemaVersion"):
    assert k in d, "no %s" % k
assert isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36, d["schemaVersion"]
assert d.get("id") is None, "id must be null for import/provisioning"

# Templating: a Prometheus datasource variable, service and node from label_values.
tv = {v["name"]: v for v in d["templating"]["list"]}
ds_var = [v for v in tv.values() if v.get("type") == "datasource" and v.get("query") == "prometheus"]
assert ds_var, "no datasource variable of type prometheus"
ds_names = {"${%s}" % v["name"] for v in ds_var} | {"$%s" % v["name"] for v in ds_var} | {"${DS_PROMETHEUS}"}
def q(v):
    x = v.get("query")
    return x.get("query", "") if isinstance(x, dict) else (x or "")
for name in ("service", "node"):
    assert name in tv, "no %s variable" % name
    assert tv[name]["type"] == "query", tv[name]
    assert re.match(r'label_values\(\s*cpn_\w+.*,\s*%s\s*\)$' % name, q(tv[name])), q(tv[name])
    assert tv[name]["datasource"]["uid"] in ds_names, tv[name]["datasource"]

# Panels: unique ids, inside 24 columns, no two overlapping.
flat = []
for p in d["panels"]:
    flat.append(p)
    flat.extend(p.get("panels", []))
ids = [p["id"] for p in flat]
assert len(ids) == len(set(ids)), "duplicate panel ids"
cells = {}
for p in flat:
    g = p["gridPos"]
    assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, (p["title"], g)
    for x in range(g["x"], g["x"] + g["w"]):
        for y in range(g["y"], g["y"] + g["h"]):
            assert (x, y) not in cells, "%s overlaps %s" % (p["title"], cells[(x, y)])
            cells[(x, y)] = p["title"]

exprs = []
graphs = [p for p in flat if p["type"] != "row"]
assert len(graphs) >= 12, "only %d panels" % len(graphs)
for p in graphs:
    assert p["title"] and p.get("targets"), p.get("title")
    assert p["datasource"]["type"] == "prometheus" and p["datasource"]["uid"] in ds_names, (p["title"], p["datasource"])
    for t in p["targets"]:
        assert t.get("expr"), (p["title"], t)
        assert t["datasource"]["uid"] in ds_names, (p["title"], t["datasource"])
        exprs.append({"panel": p["title"], "type": p["type"], "expr": t["expr"]})

# The expressions, for the checks below (written before the next asserts:
# they stand on their own). Variables as Prometheus can read them.
def plain(e):
    e = e.replace("$__rate_interval", "10s").replace("$__interval", "10s").replace("$__range", "1m")
    return re.sub(r'\$\{?\w+\}?', ".*", e)
for e in exprs:
    e["promql"] = plain(e["expr"])
for name, v in tv.items():
    if v.get("type") == "query":
        exprs.append({"panel": "variable " + name, "type": "variable", "expr": q(v), "promql": None})
json.dump(exprs, open(sys.argv[2], "w"), indent=1)

# The panels cpn needs, by the metrics and functions they use.
def uses(pat):
    return [e for e in exprs if re.search(pat, e["expr"])]
need = {
    "requests/s per service": r'rate\(cpn_service_requests_total\b',
    "BUSY ratio": r'cpn_service_busy_total\b.*/',
    "refused ratio": r'cpn_service_refused_total\b.*/',
    "replies/s": r'rate\(cpn_service_replies_total\b',
    "per-node share": r'rate\(cpn_node_requests_total\b.*/',
    "live nodes per service": r'cpn_service_live_nodes\b',
    "queue depth": r'cpn_node_queue_depth\b',
    "inflight": r'cpn_node_inflight\b',
    "utilization": r'cpn_node_utilization_ratio\b',
    "estimated wait": r'cpn_node_estimated_wait_seconds\b',
    "path latency EWMA": r'cpn_node_path_latency_ewma_seconds\b',
    "p50": r'histogram_quantile\(\s*0\.5\s*,.*rate\(cpn_node_path_latency_seconds_bucket\b',
    "p99": r'histogram_quantile\(\s*0\.99\s*,.*rate\(cpn_node_path_latency_seconds_bucket\b',
    "drops by reason": r'by \(reason\)\s*\(rate\(cpn_dropped_packets_total\b',
    "packets by action": r'by \(action\)\s*\(rate\(cpn_packets_total\b',
}
missing = [k for k, pat in need.items() if not uses(pat)]
assert not missing, "no panel for: %s" % missing
heat = [p for p in graphs if p["type"] == "heatmap"]
assert heat and any("cpn_node_path_latency_seconds_bucket" in t["expr"] and t.get("format") == "heatmap"
                    for p in heat for t in p["targets"]), "no path latency heatmap"

print("%d panels, %d expressions" % (len(graphs), len(exprs)))
EOF
	ok "dashboard_is_a_grafana_dashboard_with_every_panel_and_variable"
else
	not_ok "dashboard_is_a_grafana_dashboard_with_every_panel_and_variable" "$TMP/ds"
fi

# ---- 6: the dashboard names only exported metrics --------------------------
if [ $exported_rc -ne 0 ] || [ ! -s "$TMP/exprs.json" ]; then
	not_ok "dashboard_uses_only_metrics_that_cpnctl_exports" "$TMP/exported.err" \
		"no expressions: see the dashboard check"
elif python3 - "$TMP/exprs.json" "$TMP/exported" "$TMP" >"$TMP/dn" 2>&1 <<'EOF'; then
import json, sys
sys.path.insert(0, sys.argv[3])
from names import names
exported = set(open(sys.argv[2]).read().split())
bad = []
used = set()
for e in json.load(open(sys.argv[1])):
    u = names(e["expr"])
    if not u:
        bad.append("%s: no cpn_ metric in %r" % (e["panel"], e["expr"]))
    used |= u
    for x in sorted(u - exported):
        bad.append("%s: %s is not exported by cpnctl" % (e["panel"], x))
assert not bad, "\n".join(bad)
print("metrics used:", " ".join(sorted(used)))
EOF
	ok "dashboard_uses_only_metrics_that_cpnctl_exports"
else
	not_ok "dashboard_uses_only_metrics_that_cpnctl_exports" "$TMP/dn"
fi

# ---- 7: the dashboard's expressions are PromQL ------------------------------
if [ ! -s "$TMP/exprs.json" ]; then
	not_ok "dashboard_expressions_parse_as_promql" "no expressions: see the dashboard check"
elif python3 - "$TMP/exprs.json" "$TMP/dash.rules.yml" 2>"$TMP/dp" <<'EOF' &&
import json, sys
rules = [e["promql"] for e in json.load(open(sys.argv[1])) if e["promql"]]
with open(sys.argv[2], "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, r in enumerate(rules):
        f.write("      - record: dashboard:expr_%d\n        expr: %s\n" % (i, json.dumps(r)))
EOF
	promtool check rules "$TMP/dash.rules.yml" >>"$TMP/dp" 2>&1; then
	ok "dashboard_expressions_parse_as_promql"
else
	not_ok "dashboard_expressions_parse_as_promql" "$TMP/dp"
fi

# ---- 8-9: the example config passes cpnctl's parser -------------------------
# cpnctl_apply_file() loads and validates the file before it opens the pins:
# a refused config exits 2 before the missing router can make it exit 1.
"$CPNCTL" apply --config "$CONFIG" --pin-dir /nonexistent --state-dir "$TMP/nostate" \
	>"$TMP/apply" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "no cpn router pinned at /nonexistent" "$TMP/apply"; then
	ok "example_config_passes_cpnctl_parser_and_validation"
else
	not_ok "example_config_passes_cpnctl_parser_and_validation" "rc=$rc (want 1)" "$TMP/apply"
fi
# The same check tells a refused config apart: one unknown key, exit 2.
sed 's/^max_hops:/max_hopz:/' "$CONFIG" >"$TMP/bad.yaml"
"$CPNCTL" apply --config "$TMP/bad.yaml" --pin-dir /nonexistent --state-dir "$TMP/nostate" \
	>"$TMP/apply.bad" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q "bad.yaml:[0-9]*: unknown key 'max_hopz'" "$TMP/apply.bad"; then
	ok "a_refused_config_exits_2_where_the_example_exits_1"
else
	not_ok "a_refused_config_exits_2_where_the_example_exits_1" "rc=$rc (want 2)" \
		"$TMP/apply.bad"
fi

# ---- 10-13: a real router, daemon and Prometheus ---------------------------
# In a private network namespace (unshare -n keeps /sys, so bpffs is the
# host's): `cpnctl up` with the example config minus its interfaces, the
# daemon on the config's own metrics and control ports, and Prometheus with
# prometheus.yml as it is, so its target is the daemon's real endpoint.
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
sed 's/^interfaces:.*/interfaces: []/' "$CONFIG" >"$TMP/live.yaml"
cp "$DEPLOY"/prometheus/*.yml "$TMP"/ # rule_files are relative to the config
target=$(sed -n 's/.*targets: *\["\([^"]*\)"\].*/\1/p' "$PROM_CFG" | head -1)
cat >"$TMP/live.sh" <<EOF
set -u
dpid= ppid=
trap 'kill \$ppid \$dpid 2>/dev/null' EXIT
ip link set lo up || exit 10
"$CPNCTL" --pin-dir "$PIN" --state-dir "$TMP/state" up --config "$TMP/live.yaml" \
>"$TMP/up.log" 2>&1 || exit 11
"$CPNCTL" --pin-dir "$PIN" --state-dir "$TMP/state" daemon --config "$TMP/live.yaml" \
>"$TMP/daemon.log" 2>&1 &
dpid=\$!
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
--web.listen-address=127.0.0.1:9090 >"$TMP/prometheus.log" 2>&1 &
ppid=\$!
python3 "$TMP/live.py" "$target" "$TMP" >"$TMP/live.out" 2>&1
rc=\$?
kill \$ppid \$dpid 2>/dev/null
wait \$ppid \$dpid 2>/dev/null
exit \$rc
EOF
cat >"$TMP/live.py" <<'EOF'
# Scrape the daemon; wait for Prometheus to have scraped it and evaluated
# every rule; evaluate every dashboard expression. Writes the results under
# TMP for the checks, exits 0 when all could be gathered.
import json, sys, time, urllib.parse, urllib.request
target, tmp = sys.argv[1], sys.argv[2]
PROM = "http://127.0.0.1:9090"

def get(url, timeout=5):
    return urllib.request.urlopen(url, timeout=timeout).read().decode()

def api(path, **params):
    url = PROM + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        return json.loads(get(url))
    except urllib.error.HTTPError as e:  # 400/422 carry the error as JSON
        return json.loads(e.read().decode())

deadline = time.time() + 40
text = None
while time.time() < deadline:
    try:
        text = get("http://%s/metrics" % target)
        break
    except Exception:
        time.sleep(0.2)
if text is None:
    sys.exit("the daemon does not answer on %s" % target)
open(tmp + "/exposition.txt", "w").write(text)

# Prometheus: the target up, then every rule evaluated at least once more.
while time.time() < deadline:
    try:
        t = api("/api/v1/targets")
        active = t["data"]["activeTargets"]
        if active and all(a["health"] == "up" for a in active):
            break
    except Exception:
        pass
    time.sleep(0.5)
else:
    sys.exit("Prometheus never scraped %s: %s" % (target, locals().get("t")))
json.dump(t, open(tmp + "/targets.json", "w"), indent=1)
time.sleep(6)  # two more scrapes at 2 s, so rate() over 10s has two points
while time.time() < deadline:
    r = api("/api/v1/rules")
    rules = [x for g in r["data"]["groups"] for x in g["rules"]]
    if rules and all(not x.get("lastEvaluation", "0001").startswith("0001") and x["health"] != "unknown"
                     for x in rules):
        break
    time.sleep(0.5)
json.dump(r, open(tmp + "/rules.json", "w"), indent=1)

try:
    exprs = json.load(open(tmp + "/exprs.json"))
except FileNotFoundError:
    sys.exit("no dashboard expressions to evaluate: see the dashboard check")
for e in exprs:
    if e["promql"]:
        e["result"] = api("/api/v1/query", query=e["promql"])
json.dump(exprs, open(tmp + "/results.json", "w"), indent=1)
EOF
timeout "$T" unshare -n bash "$TMP/live.sh"
live_rc=$?
grep -E "level=(warn|error)" "$TMP/prometheus.log" >"$TMP/prometheus.err" 2>/dev/null

# 10: cpnctl up applied the example config; the daemon served it.
if [ $live_rc -eq 0 ] && [ -s "$TMP/exposition.txt" ]; then
	ok "cpnctl_up_applies_the_example_config_and_the_daemon_serves_it_on_$target"
else
	not_ok "cpnctl_up_applies_the_example_config_and_the_daemon_serves_it_on_$target" \
		"rc=$live_rc" "$TMP/up.log" "$TMP/daemon.log" "$TMP/live.out"
fi

# 11: every family named by the dashboard and the rules is in the real
# exposition, with the labels their selectors and by() clauses use.
if [ -s "$TMP/exposition.txt" ] && [ -s "$TMP/exprs.json" ] &&
	python3 - "$TMP" "$RULES" >"$TMP/ln" 2>&1 <<'EOF'; then
import json, re, sys
tmp, rules_file = sys.argv[1], sys.argv[2]
sys.path.insert(0, tmp)
from names import names
types, labels = {}, {}
for line in open(tmp + "/exposition.txt"):
    m = re.match(r'# TYPE (\S+) (\S+)', line)
    if m:
        types[m.group(1)] = m.group(2)
        continue
    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ', line)
    if m:
        labels.setdefault(m.group(1), set()).update(re.findall(r'(\w+)="', m.group(2) or ""))
series = set()
for f, t in types.items():
    series |= {f + s for s in ("_bucket", "_sum", "_count")} if t == "histogram" else {f}
exported = set(open(tmp + "/exported").read().split())
assert series == exported, "exposition and the list of families differ: only in the exposition %s, only in the source %s" % (
    sorted(series - exported), sorted(exported - series))
# Prometheus adds job and instance (and the scrape config's own labels).
extra = {"job", "instance", "router"}
exprs = [e["expr"] for e in json.load(open(tmp + "/exprs.json"))]
text = open(rules_file).read()
exprs += re.findall(r'^\s*expr:\s*(\|[^\n]*\n(?:(?:[ \t]+[^\n]*)?\n)*?(?=^\s*(?:-\s|\w+:))|[^\n]+)', text, re.M)
bad, unseen = [], set()
for e in exprs:
    used = names(e)
    for x in sorted(used - series):
        bad.append("%s is not in the exposition (in %r)" % (x, e))
    known = set().union(*(labels.get(x, set()) for x in used)) | extra if used else extra
    for metric, sel in re.findall(r'(cpn_[a-z0-9_]+)\s*\{([^}]*)\}', e):
        for l in re.findall(r'(\w+)\s*(?:=~|!~|!=|=)', sel):
            if metric in labels and l not in labels[metric] | extra:
                bad.append("%s has no label %s (it has %s)" % (metric, l, sorted(labels[metric])))
    if any(x not in labels for x in used):
        unseen.add(e)  # a family with no series yet (report age): labels unknown
        continue
    for clause in re.findall(r'\b(?:by|on|ignoring|without)\s*\(([^)]*)\)', e):
        for l in [x.strip() for x in clause.split(",") if x.strip()]:
            if l not in known:
                bad.append("label %s of %r is on none of %s" % (l, e, sorted(used)))
    m = re.match(r'label_values\((cpn_\w+)[^,]*,\s*(\w+)\)', e.strip())
    if m and m.group(2) not in labels.get(m.group(1), set()) | extra:
        bad.append("variable: %s has no label %s" % m.groups())
assert not bad, "\n".join(sorted(set(bad)))
assert len(unseen) <= 1, "families with no series: %s" % sorted(unseen)
print("%d families, %d expressions checked (by() of %d unchecked: no series)" % (
    len(types), len(exprs), len(unseen)))
EOF
	ok "every_metric_and_label_of_dashboard_and_rules_is_in_the_real_exposition"
else
	not_ok "every_metric_and_label_of_dashboard_and_rules_is_in_the_real_exposition" \
		"$TMP/ln" "$TMP/live.out"
fi

# 12: every dashboard expression evaluates on Prometheus to a non-empty
# result (report age is absent until a node reports: empty allowed).
if [ -s "$TMP/results.json" ] && python3 - "$TMP/results.json" >"$TMP/ev" 2>&1 <<'EOF'; then
import json, sys
bad = []
for e in json.load(open(sys.argv[1])):
    if "result" not in e:
        continue
    r = e["result"]
    if r.get("status") != "success":
        bad.append("%s: %s: %s" % (e["panel"], e["promql"], r.get("error")))
    elif not r["data"]["result"] and "cpn_node_report_age_seconds" not in e["promql"]:
        bad.append("%s: empty: %s" % (e["panel"], e["promql"]))
assert not bad, "\n".join(bad)
EOF
	ok "every_dashboard_expression_evaluates_on_prometheus_scraping_the_daemon"
else
	not_ok "every_dashboard_expression_evaluates_on_prometheus_scraping_the_daemon" \
		"$TMP/ev" "$TMP/live.out" "$TMP/prometheus.err"
fi

# 13: every recording and alerting rule evaluated without error.
if [ -s "$TMP/rules.json" ] && python3 - "$TMP/rules.json" >"$TMP/rh" 2>&1 <<'EOF'; then
import json, sys
r = json.load(open(sys.argv[1]))
rules = [x for g in r["data"]["groups"] for x in g["rules"]]
assert len(rules) >= 10, "only %d rules loaded" % len(rules)
bad = ["%s: %s %s" % (x["name"], x["health"], x.get("lastError", "")) for x in rules if x["health"] != "ok"]
assert not bad, "\n".join(bad)
# No traffic and no node has reported: only the liveness alerts may be
# pending (or, on a slow machine, firing); the daemon is up.
firing = [x["name"] for x in rules if x.get("type") == "alerting" and x.get("state") != "inactive"
          and x["name"] not in ("CpnNodeNotLive", "CpnServiceNoLiveNode")]
assert not firing, "active: %s" % firing
assert any(x["name"] == "CpnNodeNotLive" and x.get("state") == "pending" for x in rules) or \
    any(x["name"] == "CpnNodeNotLive" and x.get("state") == "firing" for x in rules), \
    "CpnNodeNotLive is not pending for nodes that never reported"
EOF
	ok "prometheus_loads_every_rule_and_evaluates_it_healthy"
else
	not_ok "prometheus_loads_every_rule_and_evaluates_it_healthy" "$TMP/rh" \
		"$TMP/prometheus.err"
fi

# ---- 14: systemd-analyze verify ---------------------------------------------
# verify checks that every Exec binary exists: /usr/local/sbin/cpnctl stands
# for the built one.
mkdir -p "$TMP/sd"
sed "s#/usr/local/sbin/cpnctl#$(realpath "$CPNCTL")#g" "$SERVICE" >"$TMP/sd/cpnctl.service"
if systemd-analyze verify "$TMP/sd/cpnctl.service" >"$TMP/sd/svc" 2>&1 && [ ! -s "$TMP/sd/svc" ]; then
	ok "systemd_analyze_verify_accepts_cpnctl_service"
else
	not_ok "systemd_analyze_verify_accepts_cpnctl_service" "$TMP/sd/svc"
fi

# ---- 15: what cpnctl.service must (not) say --------------------------------
if python3 - "$SERVICE" >"$TMP/su" 2>&1 <<'EOF'; then
import re, sys
text = open(sys.argv[1]).read()
kv = {}
for line in text.splitlines():
    m = re.match(r'^(\w+)=(.*)$', line)
    if m:
        kv.setdefault(m.group(1), []).append(m.group(2))
def one(k):
    assert k in kv and len(kv[k]) == 1, "%s: %s" % (k, kv.get(k))
    return kv[k][0]
B = "/usr/local/sbin/cpnctl"
assert one("ExecStart") == B + " daemon --config /etc/cpn/cpn.yaml", one("ExecStart")
assert one("ExecStartPre") == B + " up --config /etc/cpn/cpn.yaml", one("ExecStartPre")
assert re.fullmatch(r"(/usr)?/bin/kill -HUP \$MAINPID", one("ExecReload")), one("ExecReload")
assert one("Restart") == "on-failure"
assert one("RuntimeDirectory") == "cpn"
assert "ExecStop" not in kv and "ExecStopPost" not in kv, "the data plane must outlive the daemon"
assert not re.search(r"^[^#]*\bdown\b", text, re.M), "cpnctl down outside comments"
assert re.search(r"^#.*data plane keeps running", text, re.M | re.I), "no comment on the data plane"
assert "PrivateNetwork" not in kv and "RestrictNetworkInterfaces" not in kv
assert one("AssertPathIsMountPoint") == "/sys/fs/bpf", "bpffs must be the host's"
caps = set(one("CapabilityBoundingSet").split())
assert {"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_BPF", "CAP_PERFMON"} <= caps, caps
fams = set(one("RestrictAddressFamilies").split())
assert {"AF_NETLINK", "AF_INET", "AF_INET6"} <= fams, fams
assert "ProtectKernelTunables" not in kv, "would make /sys/fs/bpf read-only"
EOF
	ok "cpnctl_service_runs_up_then_daemon_reloads_on_hup_and_never_runs_down"
else
	not_ok "cpnctl_service_runs_up_then_daemon_reloads_on_hup_and_never_runs_down" "$TMP/su"
fi
