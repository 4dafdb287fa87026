// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpnctl's read commands: status, stats, service/node/tenant list. Names
 * come from the desired state, numbers from the maps. Tables for people,
 * -j for programs (one JSON object on one line).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpn/sched.h"
#include "cpnctl_cmd.h"
#include "cpn_etcd.h"
#include "ops.h"
#include "xdp_attach.h"

/* ---- security warnings --------------------------------------------------- */

/* Whether the configuration names a hop key that the routers share. */
static bool explicit_hop_key(const struct cpn_cfg *cfg)
{
	return cfg->has_hop_key;
}

static int say(void (*fn)(void *arg, const char *msg), void *arg, const char *msg)
{
	if (fn)
		fn(arg, msg);
	return 1;
}

int cpnctl_security_warnings(const struct cpn_cfg *cfg, int routers,
			     void (*fn)(void *arg, const char *msg), void *arg)
{
	char msg[640];
	int n = 0;

	for (int i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];
		char ids[400] = "";
		int k = 0;

		for (int j = 0; j < s->n_nodes; j++) {
			const struct cfg_node *nd = cpn_cfg_node(cfg, s->nodes[j]);
			size_t l = strlen(ids);

			if (!nd || nd->has_key)
				continue;
			if (l < sizeof(ids) - 8)
				snprintf(ids + l, sizeof(ids) - l, "%s%u", k ? "," : "", nd->id);
			k++;
		}
		if (!k)
			continue;
		snprintf(msg, sizeof(msg),
			 "service %s: node%s %s ha%s no key: anyone on the path can forge %s "
			 "replies and load reports (give every node a key)",
			 s->name, k == 1 ? "" : "s", ids, k == 1 ? "s" : "ve",
			 k == 1 ? "its" : "their");
		n += say(fn, arg, msg);
	}
	if (cfg->has_auto_join && !cfg->auto_join.has_key) {
		n += say(fn, arg,
			 "auto_join has no key: any host in its prefixes can join as a node "
			 "(give auto_join a key, and the nodes --join-key)");
	}
	if (routers > 1 && !explicit_hop_key(cfg)) {
		n +=
		    say(fn, arg,
			"routers of a cluster without fleet.hop_key: each router draws its own hop "
			"key and the others refuse the hop tags it writes (set fleet: {hop_key: "
			"HEX32} in the cluster's configuration)");
	}
	return n;
}

static void warn_stderr(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "cpnctl: warning: %s\n", msg);
}

void cpnctl_warn_security(const struct cpn_cfg *cfg, int routers)
{
	cpnctl_security_warnings(cfg, routers, warn_stderr, NULL);
}

/* ---- JSON ---------------------------------------------------------------- */

static void jstr(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void jkey(const char *k, bool *first)
{
	if (!*first)
		putchar(',');
	*first = false;
	jstr(k);
	putchar(':');
}

static void jkv_s(const char *k, const char *v, bool *first)
{
	jkey(k, first);
	jstr(v);
}

static void jkv_u(const char *k, unsigned long long v, bool *first)
{
	jkey(k, first);
	printf("%llu", v);
}

static void jkv_f(const char *k, double v, bool *first)
{
	jkey(k, first);
	printf("%.6g", v);
}

static void jkv_b(const char *k, bool v, bool *first)
{
	jkey(k, first);
	fputs(v ? "true" : "false", stdout);
}

/* ---- what a node looks like now ----------------------------------------- */

struct node_view {
	__u16 id;
	const struct cfg_node *cfg; /* may be NULL: in the maps only */
	struct cpn_node st;
	struct cpn_node_stats ns;
	bool live;
	bool retired; /* out of the configuration, replies still forwarded */
	__u32 stale_ms;
};

static const char *admin_str(__u32 admin)
{
	if (!(admin & CPN_ADMIN_UP))
		return "down";
	return (admin & CPN_ADMIN_DRAIN) ? "drain" : "up";
}

static void node_addr(const struct node_view *v, struct cpn_maps *m, char *buf, size_t len)
{
	struct cpn_node_cfg nc;
	char a[64];

	if (cpn_maps_get_node(m, v->id, &nc)) {
		snprintf(buf, len, "-");
		return;
	}
	cpn_addr_str(nc.addr, nc.family, a, sizeof(a));
	snprintf(buf, len, nc.family == CPN_AF_INET6 ? "[%s]:%u" : "%s:%u", a, ntohs(nc.port));
}

/* Every node the config names or the maps know. */
static int collect_nodes(struct cpn_maps *m, const struct cpn_cfg *cfg, struct node_view **out)
{
	struct node_view *v = NULL;
	struct cpn_node_cfg nc;
	__u64 now = cpn_now_ns();
	int n = 0;

	for (__u16 id = 1; id < CPN_MAX_NODES; id++) {
		const struct cfg_node *c = cpn_cfg_node(cfg, id);
		struct node_view *nv;

		if (!c && cpn_maps_get_node(m, id, &nc))
			continue;
		nv = realloc(v, (size_t)(n + 1) * sizeof(*v));
		if (!nv) {
			free(v);
			return -1;
		}
		v = nv;
		memset(&v[n], 0, sizeof(v[n]));
		v[n].id = id;
		v[n].cfg = c;
		v[n].st = m->state[id];
		cpn_maps_node_stats(m, id, &v[n].ns);
		v[n].stale_ms = cpn_cfg_node_stale_ms(cfg, id);
		v[n].live = cpn_node_live(&v[n].st, now, v[n].stale_ms);
		v[n].retired = !cpn_maps_get_node(m, id, &nc) && (nc.flags & CPN_NODE_CFG_RETIRED);
		n++;
	}
	*out = v;
	return n;
}

/* ---- the views --------------------------------------------------------- */

static void service_vip(const struct cfg_service *s, char *buf, size_t len)
{
	char a[64];

	cpn_addr_str(s->vip, s->family, a, sizeof(a));
	snprintf(buf, len, s->family == CPN_AF_INET6 ? "[%s]:%u" : "%s:%u", a, ntohs(s->port));
}

static int live_nodes(const struct cfg_service *s, const struct node_view *nv, int nn)
{
	int live = 0;
	__u64 now = cpn_now_ns();

	for (int k = 0; k < s->n_nodes; k++)
		for (int i = 0; i < nn; i++)
			if (nv[i].id == s->nodes[k] && cpn_node_live(&nv[i].st, now, s->stale_ms))
				live++;
	return live;
}

/* "refused  acl 12, rate 3" under a service: the reasons that counted. */
static void by_reason_text(const char *what, const __u64 *c, int n, const char *const *names)
{
	bool any = false;

	for (int i = 0; i < n; i++) {
		if (!c[i])
			continue;
		if (!any)
			printf("%16s %s", "", what);
		printf("%s %s %llu", any ? "," : "", names[i], (unsigned long long)c[i]);
		any = true;
	}
	if (any)
		printf("\n");
}

static void by_reason_json(const __u64 *c, int n, const char *const *names)
{
	bool f = true;

	printf("{");
	for (int i = 0; i < n; i++)
		jkv_u(names[i], c[i], &f);
	printf("}");
}

/* Open to every tenant, as the router's map says (CPN_SVC_OPEN). */
static bool svc_open(struct cpn_maps *m, __u16 id)
{
	struct cpn_service s;

	return !cpn_maps_get_service(m, id, &s) && (s.flags & CPN_SVC_OPEN);
}

static void show_services(struct cpn_maps *m, const struct cpn_cfg *cfg, const struct node_view *nv,
			  int nn, bool json)
{
	char vip[80], list[512];

	if (json) {
		printf("[");
		for (int i = 0; i < cfg->n_services; i++) {
			const struct cfg_service *s = &cfg->services[i];
			struct cpn_svc_stats ss;
			bool f = true;

			cpn_maps_svc_stats(m, s->id, &ss);
			service_vip(s, vip, sizeof(vip));
			printf("%s{", i ? "," : "");
			jkv_s("name", s->name, &f);
			jkv_u("id", s->id, &f);
			jkv_s("vip", vip, &f);
			jkv_s("policy", cpn_policy_names[s->policy], &f);
			jkv_s("dataplane", s->dpdk ? "dpdk" : "xdp", &f);
			jkv_s("dispatch", s->late ? "late" : "early", &f);
			if (s->late)
				jkv_u("late_bound",
				      s->late_bound ? s->late_bound : CPN_LATE_BOUND_DEFAULT, &f);
			jkv_u("max_wait_us", s->max_wait_us, &f);
			jkv_u("max_queue", s->max_queue, &f);
			jkv_u("stale_ms", s->stale_ms, &f);
			jkey("nodes", &f);
			printf("[");
			for (int k = 0; k < s->n_nodes; k++)
				printf("%s%u", k ? "," : "", s->nodes[k]);
			printf("]");
			jkv_u("live_nodes", (unsigned)live_nodes(s, nv, nn), &f);
			jkv_b("tenants_allowed", cpn_cfg_service_usable(cfg, s->id), &f);
			jkv_b("open", svc_open(m, s->id), &f);
			jkv_u("requests", ss.requests, &f);
			jkv_u("busy", cpn_svc_busy_total(&ss), &f);
			jkey("busy_by_reason", &f);
			by_reason_json(ss.busy, CPN_SVC_BUSY_REASONS, cpn_svc_busy_names);
			jkv_u("refused", cpn_svc_refused_total(&ss), &f);
			jkey("refused_by_reason", &f);
			by_reason_json(ss.refused, CPN_REFUSE_MAX, cpn_refusal_names);
			jkv_u("replies", ss.replies, &f);
			jkv_u("node_busy", ss.node_busy, &f);
			printf("}");
		}
		printf("]");
		return;
	}
	printf("%-16s %5s %-24s %-12s %-5s %-11s %10s %8s %8s %10s\n", "SERVICE", "ID", "VIP",
	       "POLICY", "PLANE", "LIVE/NODES", "REQUESTS", "BUSY", "REFUSED", "REPLIES");
	for (int i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];
		struct cpn_svc_stats ss;
		char ln[32], pol[32];

		cpn_maps_svc_stats(m, s->id, &ss);
		service_vip(s, vip, sizeof(vip));
		snprintf(ln, sizeof(ln), "%d/%d", live_nodes(s, nv, nn), s->n_nodes);
		/* dispatch: late shows as the policy it falls back to, /lateN. */
		if (s->late)
			snprintf(pol, sizeof(pol), "%s/late%u", cpn_policy_names[s->policy],
				 s->late_bound ? s->late_bound : CPN_LATE_BOUND_DEFAULT);
		else
			snprintf(pol, sizeof(pol), "%s", cpn_policy_names[s->policy]);
		printf("%-16s %5u %-24s %-12s %-5s %-11s %10llu %8llu %8llu %10llu\n", s->name,
		       s->id, vip, pol, s->dpdk ? "dpdk" : "xdp", ln,
		       (unsigned long long)ss.requests, (unsigned long long)cpn_svc_busy_total(&ss),
		       (unsigned long long)cpn_svc_refused_total(&ss),
		       (unsigned long long)ss.replies);
		list[0] = 0;
		for (int k = 0; k < s->n_nodes; k++) {
			size_t l = strlen(list);

			snprintf(list + l, sizeof(list) - l, "%s%u", k ? "," : "", s->nodes[k]);
		}
		if (s->n_nodes)
			printf("%16s nodes %s\n", "", list);
		by_reason_text("busy", ss.busy, CPN_SVC_BUSY_REASONS, cpn_svc_busy_names);
		by_reason_text("refused", ss.refused, CPN_REFUSE_MAX, cpn_refusal_names);
		if (svc_open(m, s->id))
			printf("%16s open to every tenant (no tenant looked up)\n", "");
		if (!cpn_cfg_service_usable(cfg, s->id))
			printf("%16s warning: no tenant may use this service: every request is "
			       "refused (acl)\n",
			       "");
	}
}

static void show_nodes(struct cpn_maps *m, const struct node_view *nv, int nn, bool json)
{
	__u64 total = 0, now = cpn_now_ns();
	char addr[80];

	for (int i = 0; i < nn; i++)
		total += nv[i].ns.requests;
	if (json) {
		printf("[");
		for (int i = 0; i < nn; i++) {
			const struct node_view *v = &nv[i];
			bool f = true;

			node_addr(v, m, addr, sizeof(addr));
			printf("%s{", i ? "," : "");
			jkv_u("id", v->id, &f);
			jkv_s("addr", addr, &f);
			jkv_s("admin", v->retired ? "retired" : admin_str(v->st.admin), &f);
			jkv_u("weight", v->st.weight, &f);
			jkv_b("joined", v->cfg && v->cfg->joined, &f);
			jkv_b("live", v->live, &f);
			jkv_b("draining", v->st.report_flags & CPN_REP_DRAINING, &f);
			jkv_u("queue_depth", v->st.queue_depth, &f);
			jkv_u("inflight", v->st.inflight, &f);
			jkv_u("capacity", v->st.capacity, &f);
			jkv_u("outstanding", v->st.outstanding, &f);
			jkv_f("util", v->st.util / 255.0, &f);
			jkv_u("svc_us", v->st.svc_us, &f);
			jkv_u("path_us", v->st.path_us, &f);
			jkv_b("path_measured", v->st.report_flags & CPN_REP_PATH_VALID, &f);
			jkv_u("est_us", cpn_est_us(&v->st), &f);
			jkey("report_age_ms", &f);
			if (v->st.last_report_ns && now >= v->st.last_report_ns)
				printf("%.3f", (double)(now - v->st.last_report_ns) / 1e6);
			else
				printf("null");
			jkv_u("reports", v->ns.reports, &f);
			jkv_u("unanswered", v->st.unanswered, &f);
			/* How long their clock has run (from the first of them
			 * steered, or the last answer that left some waiting),
			 * and the deadline it runs to (cpn_node_suspect).
			 */
			jkey("unanswered_ms", &f);
			if (v->st.unanswered && now >= v->st.since_ns)
				printf("%.3f", (double)(now - v->st.since_ns) / 1e6);
			else
				printf("null");
			jkey("deadline_ms", &f);
			if (v->st.unanswered)
				printf("%.3f", v->st.deadline_us / 1e3);
			else
				printf("null");
			jkv_b("suspect", cpn_node_suspect(&v->st, now), &f);
			jkv_f("overclaim",
			      (v->st.overclaim ? v->st.overclaim : CPN_OVERCLAIM_ONE) /
				  (double)CPN_OVERCLAIM_ONE,
			      &f);
			jkv_u("requests", v->ns.requests, &f);
			jkv_u("replies", v->ns.replies, &f);
			jkv_u("busy", v->ns.busy, &f);
			jkv_f("share", total ? (double)v->ns.requests / (double)total : 0.0, &f);
			printf("}");
		}
		printf("]");
		return;
	}
	printf("%5s %-24s %-5s %-4s %6s %6s %6s %5s %9s %9s %9s %10s %6s\n", "NODE", "ADDR",
	       "ADMIN", "LIVE", "QUEUE", "INFLT", "CAP", "UTIL", "SVC_US", "PATH_US", "EST_US",
	       "REQUESTS", "SHARE");
	for (int i = 0; i < nn; i++) {
		const struct node_view *v = &nv[i];

		node_addr(v, m, addr, sizeof(addr));
		printf("%5u %-24s %-5s %-4s %6u %6u %6u %4.0f%% %9u %9u %9llu %10llu %5.1f%%%s\n",
		       v->id, addr, v->retired ? "rtrd" : admin_str(v->st.admin),
		       v->live			       ? "yes"
		       : cpn_node_suspect(&v->st, now) ? "susp"
						       : "no",
		       v->st.queue_depth, v->st.inflight, v->st.capacity, v->st.util * 100.0 / 255,
		       v->st.svc_us, v->st.path_us, (unsigned long long)cpn_est_us(&v->st),
		       (unsigned long long)v->ns.requests,
		       total ? 100.0 * (double)v->ns.requests / (double)total : 0.0,
		       v->cfg && v->cfg->joined ? "  (joined)" : "");
	}
}

static void show_tenants(const struct cpn_cfg *cfg, bool json)
{
	if (json)
		printf("[");
	else
		printf("%10s %-32s %10s %10s %-4s\n", "TENANT", "SERVICES", "RATE", "BURST", "KEY");
	for (int i = 0; i < cfg->n_tenants; i++) {
		const struct cfg_tenant *t = &cfg->tenants[i];
		char list[512] = "";
		bool f = true;

		for (int k = 0; k < t->n_services; k++) {
			const struct cfg_service *s = cpn_cfg_service(cfg, t->services[k]);
			size_t l = strlen(list);

			snprintf(list + l, sizeof(list) - l, "%s%s", k ? "," : "",
				 s ? s->name : "?");
		}
		if (!json) {
			char id[16];

			if (t->id == CPN_TENANT_ANY)
				snprintf(id, sizeof(id), "any");
			else
				snprintf(id, sizeof(id), "%u", t->id);
			printf("%10s %-32s %10llu %10llu %-4s\n", id, list,
			       (unsigned long long)t->rate, (unsigned long long)t->burst,
			       t->has_key ? "yes" : "no");
			continue;
		}
		printf("%s{", i ? "," : "");
		if (t->id == CPN_TENANT_ANY)
			jkv_s("id", "any", &f);
		else
			jkv_u("id", t->id, &f);
		jkey("services", &f);
		printf("[");
		for (int k = 0; k < t->n_services; k++) {
			const struct cfg_service *s = cpn_cfg_service(cfg, t->services[k]);

			if (k)
				putchar(',');
			jstr(s ? s->name : "?");
		}
		printf("]");
		jkv_u("rate", t->rate, &f);
		jkv_u("burst", t->burst, &f);
		jkv_b("key", t->has_key, &f);
		printf("}");
	}
	if (json)
		printf("]");
}

static void show_stats(struct cpn_maps *m, bool json)
{
	__u64 c[CPN_STAT_MAX];
	bool f = true;

	if (cpn_maps_stats(m, c)) {
		cpnctl_fail("cannot read cpn_stats");
		return;
	}
	if (json)
		printf("{");
	for (int i = 0; i < CPN_STAT_MAX; i++) {
		if (json)
			jkv_u(cpn_stat_names[i], c[i], &f);
		else
			printf("%-22s %llu\n", cpn_stat_names[i], (unsigned long long)c[i]);
	}
	if (json)
		printf("}");
}

/* How cpn_xdp sits on each interface of the config (xdp_attach.h). */
static void show_ifaces(struct cpn_ctl *ctl, const struct cpn_cfg *cfg, bool json)
{
	struct cpn_xdp_target t = {.pin_dir = ctl->pin_dir, .maps = &ctl->maps};
	bool first = true;
	char how[160];

	t.prog_fd = cpn_pinned_prog_fd(ctl->pin_dir);
	t.chain_fd = cpn_pinned_chain_fd(ctl->pin_dir);
	if (json)
		printf("[");
	else
		printf("%-16s %s (xdp_attach: %s)\n", "INTERFACE", "CPN_XDP",
		       cpn_xdp_attach_name(cfg->xdp_attach));
	for (int i = 0; i < cfg->n_ifaces; i++) {
		how[0] = 0;
		if (t.prog_fd >= 0)
			cpn_xdp_describe(&t, cfg->ifaces[i], how, sizeof(how));
		if (json) {
			bool f = true;

			printf("%s{", first ? "" : ",");
			first = false;
			jkv_s("name", cfg->ifaces[i], &f);
			jkv_s("xdp", how, &f);
			printf("}");
		} else {
			printf("%-16s %s\n", cfg->ifaces[i], how[0] ? how : "not attached");
		}
	}
	if (json)
		printf("]");
	if (t.prog_fd >= 0)
		close(t.prog_fd);
	if (t.chain_fd >= 0)
		close(t.chain_fd);
}

/* newline: end JSON with one (not when it is inside another object). */
static void warn_text(void *arg, const char *msg)
{
	(void)arg;
	printf("warning: %s\n", msg);
}

static void warn_json(void *arg, const char *msg)
{
	int *n = arg;

	printf("%s", (*n)++ ? "," : "");
	jstr(msg);
}

/* routers: how many routers serve the cluster (status --etcd), else 1. */
static int show_impl(const char *pin_dir, const char *state_dir, enum cpnctl_show what, bool json,
		     bool newline, int routers)
{
	struct node_view *nv = NULL;
	struct cpn_ctl ctl;
	struct cpn_cfg cfg;
	struct cpn_err err;
	int nn;

	if (cpn_ctl_open(&ctl, pin_dir ? pin_dir : CPN_DEFAULT_PIN_DIR,
			 state_dir ? state_dir : CPN_DEFAULT_STATE_DIR, &err))
		return cpnctl_fail("%s", err.msg);
	/* Readers take the lock too: they never see a state file half-written. */
	if (cpn_ctl_lock(&ctl, &err) || cpn_ctl_load(&ctl, &cfg, &err)) {
		cpn_ctl_close(&ctl);
		return cpnctl_fail("%s", err.msg);
	}
	cpn_ctl_unlock(&ctl);
	nn = collect_nodes(&ctl.maps, &cfg, &nv);
	if (nn < 0) {
		cpn_cfg_free(&cfg);
		cpn_ctl_close(&ctl);
		return cpnctl_fail("out of memory");
	}
	switch (what) {
	case CPNCTL_SHOW_STATUS:
		if (json) {
			printf("{\"pin_dir\":");
			jstr(ctl.pin_dir);
			printf(",\"services\":");
			show_services(&ctl.maps, &cfg, nv, nn, true);
			printf(",\"nodes\":");
			show_nodes(&ctl.maps, nv, nn, true);
			printf(",\"interfaces\":");
			show_ifaces(&ctl, &cfg, true);
			{
				int k = 0;

				printf(",\"warnings\":[");
				cpnctl_security_warnings(&cfg, routers, warn_json, &k);
				printf("]");
			}
			printf(newline ? "}\n" : "}");
		} else {
			show_services(&ctl.maps, &cfg, nv, nn, false);
			printf("\n");
			show_nodes(&ctl.maps, nv, nn, false);
			if (cfg.n_ifaces) {
				printf("\n");
				show_ifaces(&ctl, &cfg, false);
			}
			if (cpnctl_security_warnings(&cfg, routers, NULL, NULL) > 0) {
				printf("\n");
				cpnctl_security_warnings(&cfg, routers, warn_text, NULL);
			}
		}
		break;
	case CPNCTL_SHOW_STATS:
		show_stats(&ctl.maps, json);
		if (json)
			printf("\n");
		break;
	case CPNCTL_SHOW_SERVICES:
		show_services(&ctl.maps, &cfg, nv, nn, json);
		if (json)
			printf("\n");
		break;
	case CPNCTL_SHOW_NODES:
		show_nodes(&ctl.maps, nv, nn, json);
		if (json)
			printf("\n");
		break;
	case CPNCTL_SHOW_TENANTS:
		show_tenants(&cfg, json);
		if (json)
			printf("\n");
		break;
	}
	free(nv);
	cpn_cfg_free(&cfg);
	cpn_ctl_close(&ctl);
	return CPN_EXIT_OK;
}

int cpnctl_show(const char *pin_dir, const char *state_dir, enum cpnctl_show what, bool json)
{
	return show_impl(pin_dir, state_dir, what, json, true, 1);
}

/* ---- status --etcd: the revision every router runs ------------------------ */

struct fleet_view {
	int64_t config_rev;
	char layout[32];
	struct cpn_fleet_router *r; /* what routers/NAME say */
	int n;
	int unreadable;
};

static int fleet_read(struct cpn_etcd *e, const char *prefix, struct fleet_view *v, char *msg,
		      size_t len)
{
	struct cpn_etcd_kvs kvs;
	size_t plen = strlen(prefix);
	int rc = cpn_etcd_get(e, prefix, true, &kvs, msg, len);

	if (rc)
		return rc;
	for (size_t i = 0; i < kvs.n; i++) {
		const struct cpn_etcd_kv *kv = &kvs.kv[i];
		const char *k = kv->key + plen;
		struct cpn_fleet_router *r;
		char why[128];

		if (kv->key_len != strlen(kv->key) || strncmp(kv->key, prefix, plen))
			continue;
		if (!strcmp(k, "config")) {
			v->config_rev = kv->mod_revision;
		} else if (!strcmp(k, "layout")) {
			snprintf(v->layout, sizeof(v->layout), "%.31s", kv->value);
			for (char *c = v->layout; *c; c++)
				if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
					*c = '?';
		} else if (!strncmp(k, "routers/", 8)) {
			if (!cpn_fleet_name_ok(k + 8)) {
				v->unreadable++;
				continue;
			}
			r = realloc(v->r, (size_t)(v->n + 1) * sizeof(*r));
			if (!r) {
				cpn_etcd_kvs_free(&kvs);
				snprintf(msg, len, "out of memory");
				return CPN_ETCD_ENOMEM;
			}
			v->r = r;
			if (cpn_fleet_router_parse(kv->value, kv->value_len, &v->r[v->n], why,
						   sizeof(why))) {
				v->unreadable++;
				continue;
			}
			snprintf(v->r[v->n].name, sizeof(v->r[v->n].name), "%s", k + 8);
			v->n++;
		}
	}
	cpn_etcd_kvs_free(&kvs);
	return 0;
}

static const char *fleet_state(const struct fleet_view *v, const struct cpn_fleet_router *r)
{
	if (r->refused_revision)
		return "refused";
	if (!r->revision)
		return "none yet";
	if (r->revision == v->config_rev)
		return "current";
	return r->revision < v->config_rev ? "behind" : "ahead";
}

int cpnctl_show_fleet(const char *etcd, const char *cluster, const char *pin_dir,
		      const char *state_dir, bool json)
{
	struct fleet_view v = {0};
	struct cpn_ctl_fleet local;
	struct cpn_etcd *e;
	struct cpn_ctl ctl;
	struct cpn_err err;
	char prefix[128], msg[512], ep[256];
	bool router, have_local = false;
	int64_t now = 0;
	int rc;

	e = cpn_etcd_open(etcd, CPN_FLEET_ETCD_TIMEOUT_MS, msg, sizeof(msg));
	if (!e) {
		fprintf(stderr, "cpnctl: --etcd: %s\n", msg);
		return CPN_EXIT_USAGE;
	}
	cpn_fleet_prefix(prefix, sizeof(prefix), cluster);
	rc = fleet_read(e, prefix, &v, msg, sizeof(msg));
	snprintf(ep, sizeof(ep), "%s", cpn_etcd_endpoint(e));
	cpn_etcd_close(e);
	if (rc) {
		free(v.r);
		return cpnctl_fail("%s", msg);
	}
	router = !cpn_ctl_open(&ctl, pin_dir ? pin_dir : CPN_DEFAULT_PIN_DIR,
			       state_dir ? state_dir : CPN_DEFAULT_STATE_DIR, &err);
	if (router) {
		have_local = !cpn_ctl_fleet_load(&ctl, &local);
		cpn_ctl_close(&ctl);
	}
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	if (json) {
		bool f = true;

		printf("{\"etcd\":{");
		jkv_s("endpoint", ep, &f);
		jkv_s("cluster", cluster, &f);
		jkv_u("config_revision", (unsigned long long)v.config_rev, &f);
		jkv_s("layout", v.layout, &f);
		jkey("routers", &f);
		printf("[");
		for (int i = 0; i < v.n; i++) {
			const struct cpn_fleet_router *r = &v.r[i];
			bool g = true;

			printf("%s{", i ? "," : "");
			jkv_s("name", r->name, &g);
			jkv_u("revision", (unsigned long long)r->revision, &g);
			jkv_u("time_ms", (unsigned long long)r->time_ms, &g);
			jkey("age_ms", &g);
			printf("%lld", (long long)(now - r->time_ms));
			jkv_s("state", fleet_state(&v, r), &g);
			jkv_b("current", r->revision == v.config_rev && !r->refused_revision, &g);
			jkv_u("refused_revision", (unsigned long long)r->refused_revision, &g);
			jkv_s("error", r->error, &g);
			jkey("joined", &g);
			printf("[");
			for (int k = 0; k < r->n_joined; k++)
				printf("%s%u", k ? "," : "", r->joined[k]);
			printf("]}");
		}
		printf("]");
		jkv_u("unreadable", (unsigned)v.unreadable, &f);
		jkey("local", &f);
		if (have_local) {
			bool g = true;

			printf("{");
			jkv_s("router", local.router, &g);
			jkv_u("revision", (unsigned long long)local.revision, &g);
			jkv_u("time_ms", (unsigned long long)local.time_ms, &g);
			jkv_b("current", local.revision == v.config_rev, &g);
			printf("}");
		} else {
			printf("null");
		}
		printf("},\"status\":");
		fflush(stdout);
		if (router)
			rc = show_impl(pin_dir, state_dir, CPNCTL_SHOW_STATUS, true, false, v.n);
		else
			printf("null");
		printf("}\n");
		free(v.r);
		return rc;
	}
	printf("cluster %s at etcd %s: configuration revision %lld", cluster, ep,
	       (long long)v.config_rev);
	if (!v.config_rev)
		printf(" (none published: cpnctl apply --etcd URL --config FILE)");
	else
		printf(" (layout %s)", v.layout[0] ? v.layout : "none");
	printf("\n%-24s %9s %9s  %s\n", "ROUTER", "REVISION", "AGE", "STATE");
	for (int i = 0; i < v.n; i++) {
		const struct cpn_fleet_router *r = &v.r[i];

		printf("%-24s %9lld %7.1f s  %s", r->name, (long long)r->revision,
		       (double)(now - r->time_ms) / 1000.0, fleet_state(&v, r));
		if (r->refused_revision)
			printf(" %lld: %s", (long long)r->refused_revision, r->error);
		if (r->n_joined)
			printf(" (%d joined node%s)", r->n_joined, r->n_joined == 1 ? "" : "s");
		printf("\n");
	}
	if (!v.n)
		printf("(no router follows this cluster: cpnctl daemon --etcd URL)\n");
	if (v.unreadable)
		printf("(%d entries under %srouters/ unreadable)\n", v.unreadable, prefix);
	if (have_local)
		printf("local router %s (%s): revision %lld, %s, applied %.1f s ago\n",
		       local.router, pin_dir ? pin_dir : CPN_DEFAULT_PIN_DIR, local.revision,
		       local.revision == v.config_rev ? "current" : "not current",
		       (double)(now - local.time_ms) / 1000.0);
	else if (router)
		printf("local router (%s): no configuration from etcd applied here\n",
		       pin_dir ? pin_dir : CPN_DEFAULT_PIN_DIR);
	else
		printf("no local router at %s\n", pin_dir ? pin_dir : CPN_DEFAULT_PIN_DIR);
	free(v.r);
	if (!router)
		return CPN_EXIT_OK;
	printf("\n");
	fflush(stdout);
	return show_impl(pin_dir, state_dir, CPNCTL_SHOW_STATUS, false, true, v.n);
}
