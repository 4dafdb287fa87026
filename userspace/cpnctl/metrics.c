// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpnctl's Prometheus endpoint: the text exposition (format 0.0.4) of the
 * router's counters and learned node state, and a libmicrohttpd server for
 * GET /metrics. See cpnctl.h.
 *
 * Counters kept per CPU by the data plane (packets, services, nodes, the
 * path histogram) carry plane="xdp": cpn-fwd exports the same families with
 * plane="dpdk". Gauges of the node table cpn_node_state, which both planes
 * share, carry no plane.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "cpn/sched.h"
#include "cpnctl.h"
#include "cpn_prom.h"

#define PLANE	 "xdp"
#define NO_STALE UINT32_MAX /* no service names the node */

/* ---- what is rendered ------------------------------------------------- */

/* Row i of nodes[] goes with pnodes[i] (labels node, addr; counters), row
 * i of svcs[] with psvcs[i] (labels service, service_id; counters).
 */
struct node_row {
	__u16 id;
	__u32 stale_ms; /* smallest of the services naming it */
	struct cpn_node st;
};

struct svc_row {
	const struct cfg_service *cs;
	__u32 live;
};

struct snap {
	__u64 now;
	__u64 stats[CPN_STAT_MAX];
	struct cpn_node *state; /* copy of the node table, CPN_MAX_NODES entries */
	struct node_row *nodes;
	struct cpn_prom_node *pnodes;
	int n_nodes;
	struct svc_row *svcs;
	struct cpn_prom_svc *psvcs;
	int n_svcs;
};

static void snap_free(struct snap *s)
{
	free(s->state);
	free(s->nodes);
	free(s->pnodes);
	free(s->svcs);
	free(s->psvcs);
}

static void addr_port_str(const __be32 addr[4], __u8 family, __be16 port, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	cpn_addr_str(addr, family, a, sizeof(a));
	if (family == CPN_AF_INET6)
		snprintf(buf, len, "[%s]:%u", a, ntohs(port));
	else
		snprintf(buf, len, "%s:%u", a, ntohs(port));
}

static int take_snapshot(struct cpn_maps *m, const struct cpn_cfg *cfg, struct snap *s)
{
	const size_t tbl = (size_t)CPN_MAX_NODES * sizeof(struct cpn_node);
	const struct cfg_node **cn = NULL;
	__u32 *stale = NULL;
	int err, n_svc = cfg && cfg->services ? cfg->n_services : 0;
	int n_cfg_nodes = cfg && cfg->nodes ? cfg->n_nodes : 0;

	memset(s, 0, sizeof(*s));
	s->state = malloc(tbl);
	s->nodes = calloc(CPN_MAX_NODES, sizeof(*s->nodes));
	s->pnodes = calloc(CPN_MAX_NODES, sizeof(*s->pnodes));
	s->svcs = calloc(n_svc > 0 ? (size_t)n_svc : 1, sizeof(*s->svcs));
	s->psvcs = calloc(n_svc > 0 ? (size_t)n_svc : 1, sizeof(*s->psvcs));
	cn = calloc(CPN_MAX_NODES, sizeof(*cn));
	stale = calloc(CPN_MAX_NODES, sizeof(*stale));
	if (!s->state || !s->nodes || !s->pnodes || !s->svcs || !s->psvcs || !cn || !stale) {
		err = -ENOMEM;
		goto out;
	}
	/* One copy of the table, read once: every figure below agrees with it. */
	memcpy(s->state, m->state, tbl);
	for (int i = 0; i < CPN_MAX_NODES; i++)
		stale[i] = NO_STALE;
	s->now = cpn_now_ns();
	err = cpn_maps_stats(m, s->stats);
	if (err)
		goto out;

	for (int i = 0; i < n_cfg_nodes; i++)
		if (cfg->nodes[i].id && cfg->nodes[i].id < CPN_MAX_NODES)
			cn[cfg->nodes[i].id] = &cfg->nodes[i];
	for (int i = 0; i < n_svc; i++) {
		const struct cfg_service *cs = &cfg->services[i];
		struct cpn_prom_svc *p = &s->psvcs[s->n_svcs];
		struct svc_row *r = &s->svcs[s->n_svcs++];

		r->cs = cs;
		cpn_prom_labels_reset(&p->l);
		cpn_prom_label(&p->l, "service", cs->name);
		cpn_prom_labelu(&p->l, "service_id", cs->id);
		err = cpn_maps_svc_stats(m, cs->id, &p->ss);
		if (err)
			goto out;
		for (int j = 0; j < cs->n_nodes && j < CPN_MAX_SVC_NODES; j++) {
			__u16 id = cs->nodes[j];

			if (!id || id >= CPN_MAX_NODES)
				continue;
			if (cs->stale_ms < stale[id])
				stale[id] = cs->stale_ms;
			if (cpn_node_live(&s->state[id], s->now, cs->stale_ms))
				r->live++;
		}
	}

	for (__u32 id = 1; id < CPN_MAX_NODES; id++) {
		struct cpn_prom_node *p;
		struct node_row *r;
		struct cpn_node_cfg nc;
		char ap[INET6_ADDRSTRLEN + 16];

		if (!s->state[id].admin && !cn[id])
			continue;
		p = &s->pnodes[s->n_nodes];
		r = &s->nodes[s->n_nodes++];
		r->id = (__u16)id;
		r->st = s->state[id];
		r->stale_ms = stale[id] != NO_STALE ? stale[id] : CPN_DEFAULT_STALE_MS;
		cpn_prom_labels_reset(&p->l);
		cpn_prom_labelu(&p->l, "node", id);
		/* The address: the config's, else what the maps hold. */
		if (cn[id]) {
			addr_port_str(cn[id]->addr, cn[id]->family, cn[id]->port, ap, sizeof(ap));
			cpn_prom_label(&p->l, "addr", ap);
		} else if (!cpn_maps_get_node(m, (__u16)id, &nc)) {
			addr_port_str(nc.addr, nc.family, nc.port, ap, sizeof(ap));
			cpn_prom_label(&p->l, "addr", ap);
		}
		err = cpn_maps_node_stats(m, (__u16)id, &p->ns);
		if (err)
			goto out;
	}
out:
	free(cn);
	free(stale);
	if (err)
		snap_free(s);
	return err;
}

static void render_services(FILE *f, const struct snap *s)
{
	cpn_prom_services(f, PLANE, s->psvcs, s->n_svcs);
	cpn_prom_family(f, CPN_M_SVC_NODES);
	for (int i = 0; i < s->n_svcs; i++)
		cpn_prom_u64(f, CPN_M_SVC_NODES, NULL, &s->psvcs[i].l,
			     (__u64)(s->svcs[i].cs->n_nodes > 0 ? s->svcs[i].cs->n_nodes : 0));
	cpn_prom_family(f, CPN_M_SVC_LIVE_NODES);
	for (int i = 0; i < s->n_svcs; i++)
		cpn_prom_u64(f, CPN_M_SVC_LIVE_NODES, NULL, &s->psvcs[i].l, s->svcs[i].live);
}

/* Upper bound of histogram bucket k in µs: 2^(k+1). */
static double bucket_le_us(int k)
{
	return ldexp(1.0, k + 1);
}

/* The value a sample of bucket k stands for in _sum, in µs: the middle of
 * [2^k, 2^(k+1)) ([0, 2) for k = 0); the open last bucket ends where the
 * data plane discards samples, CPN_PATH_MAX_US.
 */
static double bucket_mid_us(int k)
{
	double lo = k ? ldexp(1.0, k) : 0.0;
	double hi = bucket_le_us(k);

	if (k == CPN_HIST_BUCKETS - 1)
		hi = lo < CPN_PATH_MAX_US ? (double)CPN_PATH_MAX_US : lo;
	return (lo + hi) / 2;
}

static void render_histogram(FILE *f, const struct snap *s)
{
	struct cpn_prom_labels l;
	char le[40];

	cpn_prom_family(f, CPN_M_NODE_PATH_HIST);
	for (int i = 0; i < s->n_nodes; i++) {
		const struct cpn_prom_node *r = &s->pnodes[i];
		__u64 cum = 0;
		double sum_us = 0;

		for (int k = 0; k < CPN_HIST_BUCKETS; k++) {
			cum += r->ns.lat_hist[k];
			sum_us += (double)r->ns.lat_hist[k] * bucket_mid_us(k);
			if (k == CPN_HIST_BUCKETS - 1)
				break; /* open-ended: only in +Inf */
			cpn_prom_fmt_double(le, sizeof(le), bucket_le_us(k) / 1e6);
			cpn_prom_with(&l, &r->l, "plane", PLANE, "le", le, NULL);
			cpn_prom_u64(f, CPN_M_NODE_PATH_HIST, "_bucket", &l, cum);
		}
		cpn_prom_with(&l, &r->l, "plane", PLANE, "le", "+Inf", NULL);
		cpn_prom_u64(f, CPN_M_NODE_PATH_HIST, "_bucket", &l, cum);
		cpn_prom_with(&l, &r->l, "plane", PLANE, NULL);
		cpn_prom_double(f, CPN_M_NODE_PATH_HIST, "_sum", &l, sum_us / 1e6);
		cpn_prom_u64(f, CPN_M_NODE_PATH_HIST, "_count", &l, cum);
	}
}

/* The node table's gauges, in the order of the list. */
enum node_gauge {
	NG_UP,
	NG_LIVE,
	NG_QUEUE,
	NG_INFLIGHT,
	NG_CAPACITY,
	NG_OUTSTANDING,
	NG_UNANSWERED,
	NG_SUSPECT,
	NG_OVERCLAIM,
	NG_UTIL,
	NG_SVC,
	NG_PATH,
	NG_EST,
	NG_AGE,
	NG_MAX,
};

static const enum cpn_metric node_gauges[NG_MAX] = {
    [NG_UP] = CPN_M_NODE_UP,
    [NG_LIVE] = CPN_M_NODE_LIVE,
    [NG_QUEUE] = CPN_M_NODE_QUEUE,
    [NG_INFLIGHT] = CPN_M_NODE_INFLIGHT,
    [NG_CAPACITY] = CPN_M_NODE_CAPACITY,
    [NG_OUTSTANDING] = CPN_M_NODE_OUTSTANDING,
    [NG_UNANSWERED] = CPN_M_NODE_UNANSWERED,
    [NG_SUSPECT] = CPN_M_NODE_SUSPECT,
    [NG_OVERCLAIM] = CPN_M_NODE_OVERCLAIM,
    [NG_UTIL] = CPN_M_NODE_UTIL,
    [NG_SVC] = CPN_M_NODE_SVC,
    [NG_PATH] = CPN_M_NODE_PATH,
    [NG_EST] = CPN_M_NODE_EST,
    [NG_AGE] = CPN_M_NODE_AGE,
};

/* Value of gauge g for a node; false when the series is absent. */
static bool node_gauge(const struct snap *s, const struct node_row *r, enum node_gauge g, double *v)
{
	const struct cpn_node *n = &r->st;

	switch (g) {
	case NG_UP:
		*v = cpn_node_up(n);
		return true;
	case NG_LIVE:
		*v = cpn_node_live(n, s->now, r->stale_ms);
		return true;
	case NG_QUEUE:
		*v = n->queue_depth;
		return true;
	case NG_INFLIGHT:
		*v = n->inflight;
		return true;
	case NG_CAPACITY:
		*v = n->capacity;
		return true;
	case NG_OUTSTANDING:
		*v = n->outstanding;
		return true;
	case NG_UNANSWERED:
		*v = n->unanswered;
		return true;
	case NG_SUSPECT:
		*v = cpn_node_suspect(n, s->now);
		return true;
	case NG_OVERCLAIM:
		*v = (n->overclaim ? n->overclaim : CPN_OVERCLAIM_ONE) / (double)CPN_OVERCLAIM_ONE;
		return true;
	case NG_UTIL:
		*v = n->util / 255.0;
		return true;
	case NG_SVC:
		*v = n->svc_us / 1e6;
		return true;
	case NG_PATH:
		*v = n->path_us / 1e6;
		return true;
	case NG_EST:
		*v = (double)cpn_est_us(n) / 1e6;
		return true;
	case NG_AGE:
		if (!n->last_report_ns)
			return false;
		*v = n->last_report_ns >= s->now ? 0.0 : (double)(s->now - n->last_report_ns) / 1e9;
		return true;
	case NG_MAX:
		break;
	}
	return false;
}

static void render_nodes(FILE *f, const struct snap *s)
{
	cpn_prom_nodes(f, PLANE, s->pnodes, s->n_nodes);
	for (int g = 0; g < NG_MAX; g++) {
		cpn_prom_family(f, node_gauges[g]);
		for (int i = 0; i < s->n_nodes; i++) {
			double v;

			if (node_gauge(s, &s->nodes[i], (enum node_gauge)g, &v))
				cpn_prom_double(f, node_gauges[g], NULL, &s->pnodes[i].l, v);
		}
	}
	render_histogram(f, s);
}

int cpn_metrics_render(struct cpn_maps *m, const struct cpn_cfg *cfg, FILE *out)
{
	struct cpn_prom_labels l;
	struct snap s;
	int err;

	if (!m || !m->state || !out)
		return -EINVAL;
	err = take_snapshot(m, cfg, &s);
	if (err)
		return err;
	cpn_prom_packets(out, PLANE, s.stats);
	render_services(out, &s);
	render_nodes(out, &s);
	cpn_prom_family(out, CPN_M_BUILD_INFO);
	cpn_prom_with(&l, NULL, "version", CPN_BUILD_VERSION, NULL);
	cpn_prom_u64(out, CPN_M_BUILD_INFO, NULL, &l, 1);
	snap_free(&s);
	if (fflush(out) || ferror(out))
		return -EIO;
	return 0;
}

/* ---- the daemon's own counters ----------------------------------------- */

const char *const cpn_join_refusal_names[CPN_JR_MAX] = {
    [CPN_JR_MALFORMED] = "malformed",
    [CPN_JR_PREFIX] = "prefix",
    [CPN_JR_RATE_SOURCE] = "rate_source",
    [CPN_JR_RATE_TOTAL] = "rate_total",
    [CPN_JR_UNSIGNED] = "unsigned",
    [CPN_JR_BAD_TAG] = "bad_tag",
    [CPN_JR_NOT_FRESH] = "not_fresh",
    [CPN_JR_NO_JOIN_TAG] = "no_join_tag",
    [CPN_JR_BAD_JOIN_TAG] = "bad_join_tag",
    [CPN_JR_STALE] = "stale",
    [CPN_JR_REPLAY] = "replay",
    [CPN_JR_SEEN_FULL] = "seen_full",
    [CPN_JR_ID_TAKEN] = "id_taken",
    [CPN_JR_FULL] = "services_full",
};

static __u64 ld(const __u64 *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void cpn_metrics_render_daemon(const struct cpn_daemon_counters *c, FILE *out)
{
	struct cpn_prom_labels l;

	cpn_prom_family(out, CPN_M_D_DATAGRAMS);
	cpn_prom_u64(out, CPN_M_D_DATAGRAMS, NULL, NULL, ld(&c->datagrams));
	cpn_prom_family(out, CPN_M_D_JOINS);
	cpn_prom_u64(out, CPN_M_D_JOINS, NULL, NULL, ld(&c->joins));
	cpn_prom_family(out, CPN_M_D_JOIN_REFUSED);
	for (int r = 0; r < CPN_JR_MAX; r++) {
		cpn_prom_labels_reset(&l);
		cpn_prom_label(&l, "reason", cpn_join_refusal_names[r]);
		cpn_prom_u64(out, CPN_M_D_JOIN_REFUSED, NULL, &l, ld(&c->refused[r]));
	}
	cpn_prom_family(out, CPN_M_D_LOG_SUPPRESSED);
	cpn_prom_u64(out, CPN_M_D_LOG_SUPPRESSED, NULL, NULL, ld(&c->log_suppressed));
	fflush(out);
}
