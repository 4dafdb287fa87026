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

#define PLANE		  "xdp"
#define BUILD_VERSION	  "0.1"
#define DEFAULT_STALE_MS  500
#define NO_STALE	  UINT32_MAX /* no service names the node */
#define LABELS_MAX	  512
#define DROP_PREFIX	  "drop_"
#define PASS_PREFIX	  "pass_"
#define CONTENT_TYPE_TEXT "text/plain; version=0.0.4; charset=utf-8"

/* ---- text exposition -------------------------------------------------- */

/* A label set being built: `k="v",k="v"` without the braces. */
struct labels {
	char s[LABELS_MAX];
	size_t n;
};

static void lbl_reset(struct labels *l)
{
	l->n = 0;
	l->s[0] = 0;
}

static void lbl_putc(struct labels *l, char c)
{
	if (l->n + 1 < sizeof(l->s)) {
		l->s[l->n++] = c;
		l->s[l->n] = 0;
	}
}

static void lbl_puts(struct labels *l, const char *s)
{
	while (*s)
		lbl_putc(l, *s++);
}

/* Append k="v", escaping the value as the format wants: \\, \" and \n. */
static void lbl_add(struct labels *l, const char *k, const char *v)
{
	if (l->n)
		lbl_putc(l, ',');
	lbl_puts(l, k);
	lbl_puts(l, "=\"");
	for (; *v; v++) {
		if (*v == '\\' || *v == '"') {
			lbl_putc(l, '\\');
			lbl_putc(l, *v);
		} else if (*v == '\n') {
			lbl_puts(l, "\\n");
		} else {
			lbl_putc(l, *v);
		}
	}
	lbl_putc(l, '"');
}

static void lbl_addu(struct labels *l, const char *k, unsigned long long v)
{
	char b[24];

	snprintf(b, sizeof(b), "%llu", v);
	lbl_add(l, k, b);
}

/* # HELP (escaping \\ and \n) and # TYPE of a family. */
static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s ", name);
	for (; *help; help++) {
		if (*help == '\\')
			fputs("\\\\", f);
		else if (*help == '\n')
			fputs("\\n", f);
		else
			fputc(*help, f);
	}
	fprintf(f, "\n# TYPE %s %s\n", name, type);
}

/* A float as Go's ParseFloat reads it: shortest of %.15g/%.17g that reads
 * back equal, +Inf/-Inf/NaN spelled the Prometheus way.
 */
static void fmt_double(char *b, size_t len, double v)
{
	if (isnan(v)) {
		snprintf(b, len, "NaN");
	} else if (isinf(v)) {
		snprintf(b, len, v > 0 ? "+Inf" : "-Inf");
	} else {
		snprintf(b, len, "%.15g", v);
		if (strtod(b, NULL) != v)
			snprintf(b, len, "%.17g", v);
	}
}

static void series_head(FILE *f, const char *name, const char *suffix, const struct labels *l)
{
	fputs(name, f);
	if (suffix)
		fputs(suffix, f);
	if (l && l->n)
		fprintf(f, "{%s}", l->s);
}

static void series_u64(FILE *f, const char *name, const struct labels *l, __u64 v)
{
	series_head(f, name, NULL, l);
	fprintf(f, " %llu\n", (unsigned long long)v);
}

static void series_f(FILE *f, const char *name, const char *suffix, const struct labels *l,
		     double v)
{
	char b[40];

	fmt_double(b, sizeof(b), v);
	series_head(f, name, suffix, l);
	fprintf(f, " %s\n", b);
}

/* ---- what is rendered ------------------------------------------------- */

struct node_row {
	__u16 id;
	__u32 stale_ms;	 /* smallest of the services naming it */
	struct labels l; /* node, addr */
	struct cpn_node st;
	struct cpn_node_stats ns;
};

struct svc_row {
	const struct cfg_service *cs;
	struct labels l; /* service, service_id */
	struct cpn_svc_stats ss;
	__u32 live;
};

struct snap {
	__u64 now;
	__u64 stats[CPN_STAT_MAX];
	struct cpn_node *state; /* copy of the node table, CPN_MAX_NODES entries */
	struct node_row *nodes;
	int n_nodes;
	struct svc_row *svcs;
	int n_svcs;
};

static void snap_free(struct snap *s)
{
	free(s->state);
	free(s->nodes);
	free(s->svcs);
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
	s->svcs = calloc(n_svc > 0 ? (size_t)n_svc : 1, sizeof(*s->svcs));
	cn = calloc(CPN_MAX_NODES, sizeof(*cn));
	stale = calloc(CPN_MAX_NODES, sizeof(*stale));
	if (!s->state || !s->nodes || !s->svcs || !cn || !stale) {
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
		struct svc_row *r = &s->svcs[s->n_svcs++];

		r->cs = cs;
		lbl_reset(&r->l);
		lbl_add(&r->l, "service", cs->name);
		lbl_addu(&r->l, "service_id", cs->id);
		err = cpn_maps_svc_stats(m, cs->id, &r->ss);
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
		struct node_row *r;
		struct cpn_node_cfg nc;
		char ap[INET6_ADDRSTRLEN + 16];

		if (!s->state[id].admin && !cn[id])
			continue;
		r = &s->nodes[s->n_nodes++];
		r->id = (__u16)id;
		r->st = s->state[id];
		r->stale_ms = stale[id] != NO_STALE ? stale[id] : DEFAULT_STALE_MS;
		lbl_reset(&r->l);
		lbl_addu(&r->l, "node", id);
		/* The address: the config's, else what the maps hold. */
		if (cn[id]) {
			addr_port_str(cn[id]->addr, cn[id]->family, cn[id]->port, ap, sizeof(ap));
			lbl_add(&r->l, "addr", ap);
		} else if (!cpn_maps_get_node(m, (__u16)id, &nc)) {
			addr_port_str(nc.addr, nc.family, nc.port, ap, sizeof(ap));
			lbl_add(&r->l, "addr", ap);
		}
		err = cpn_maps_node_stats(m, (__u16)id, &r->ns);
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

/* Labels of a series: the row's, then extra k="v" pairs (NULL-terminated). */
static void with(struct labels *out, const struct labels *base, ...)
{
	va_list ap;
	const char *k;

	*out = *base;
	va_start(ap, base);
	while ((k = va_arg(ap, const char *)))
		lbl_add(out, k, va_arg(ap, const char *));
	va_end(ap);
}

static void render_packets(FILE *f, const struct snap *s)
{
	static const struct {
		const char *name, *help, *label, *prefix;
	} fams[] = {
	    {"cpn_packets_total",
	     "Packets by what the data plane did with them (action=\"rx\" counts every packet "
	     "seen).",
	     "action", NULL},
	    {"cpn_dropped_packets_total", "Packets dropped by the data plane, by reason.", "reason",
	     DROP_PREFIX},
	    {"cpn_passed_packets_total",
	     "Packets passed to the kernel untouched by the data plane, by reason.", "reason",
	     PASS_PREFIX},
	};
	const struct labels none = {.n = 0};

	for (size_t fi = 0; fi < sizeof(fams) / sizeof(fams[0]); fi++) {
		family(f, fams[fi].name, "counter", fams[fi].help);
		for (int i = 0; i < CPN_STAT_MAX; i++) {
			const char *n = cpn_stat_names[i];
			bool drop = !strncmp(n, DROP_PREFIX, strlen(DROP_PREFIX));
			bool pass = !strncmp(n, PASS_PREFIX, strlen(PASS_PREFIX));
			struct labels l;

			if (fams[fi].prefix ? strncmp(n, fams[fi].prefix, strlen(fams[fi].prefix))
					    : drop || pass)
				continue;
			if (fams[fi].prefix)
				n += strlen(fams[fi].prefix);
			with(&l, &none, fams[fi].label, n, "plane", PLANE, NULL);
			series_u64(f, fams[fi].name, &l, s->stats[i]);
		}
	}
}

#define SVC_COUNTERS(X)                                                                            \
	X(requests, "cpn_service_requests_total", "Requests of the service steered to a node.")    \
	X(replies, "cpn_service_replies_total", "Replies of the service forwarded to clients.")    \
	X(node_busy, "cpn_service_node_busy_total",                                                \
	  "BUSY answers of the service's nodes forwarded to clients.")

/* Counters of a service kept by reason: one series per reason label. */
static void svc_by_reason(FILE *f, const struct snap *s, const char *name, const char *help,
			  size_t off, int n, const char *const *reasons)
{
	struct labels l;

	family(f, name, "counter", help);
	for (int i = 0; i < s->n_svcs; i++)
		for (int r = 0; r < n; r++) {
			with(&l, &s->svcs[i].l, "reason", reasons[r], "plane", PLANE, NULL);
			series_u64(f, name, &l,
				   ((const __u64 *)((const char *)&s->svcs[i].ss + off))[r]);
		}
}

static void render_services(FILE *f, const struct snap *s)
{
	struct labels l;

#define SVC_COUNTER(field, name, help)                                                             \
	family(f, name, "counter", help);                                                          \
	for (int i = 0; i < s->n_svcs; i++) {                                                      \
		with(&l, &s->svcs[i].l, "plane", PLANE, NULL);                                     \
		series_u64(f, name, &l, s->svcs[i].ss.field);                                      \
	}
	SVC_COUNTERS(SVC_COUNTER)
#undef SVC_COUNTER
	svc_by_reason(f, s, "cpn_service_busy_total",
		      "Requests of the service refused by the router with BUSY (admission "
		      "control), by reason.",
		      offsetof(struct cpn_svc_stats, busy), CPN_SVC_BUSY_REASONS,
		      cpn_svc_busy_names);
	svc_by_reason(f, s, "cpn_service_refused_total",
		      "Requests of the service dropped by the router, by reason: tenant ACL, "
		      "authentication, rate limit, hop limit, address family.",
		      offsetof(struct cpn_svc_stats, refused), CPN_REFUSE_MAX, cpn_refusal_names);

	family(f, "cpn_service_nodes", "gauge", "Candidate nodes of the service.");
	for (int i = 0; i < s->n_svcs; i++)
		series_u64(f, "cpn_service_nodes", &s->svcs[i].l,
			   (__u64)(s->svcs[i].cs->n_nodes > 0 ? s->svcs[i].cs->n_nodes : 0));
	family(f, "cpn_service_live_nodes", "gauge",
	       "Candidate nodes of the service that are live: administratively up, not draining, "
	       "reported within the service's stale_ms.");
	for (int i = 0; i < s->n_svcs; i++)
		series_u64(f, "cpn_service_live_nodes", &s->svcs[i].l, s->svcs[i].live);
}

#define NODE_COUNTERS(X)                                                                           \
	X(requests, "cpn_node_requests_total", "Requests steered to the node.")                    \
	X(replies, "cpn_node_replies_total", "Replies from the node forwarded to clients.")        \
	X(busy, "cpn_node_busy_total", "BUSY answers from the node forwarded to clients.")         \
	X(reports, "cpn_node_reports_total", "Load reports (LOAD, PROBE_ACK) of the node learned.")

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
	static const char name[] = "cpn_node_path_latency_seconds";
	struct labels l;
	char le[40];

	family(f, name, "histogram",
	       "Path latency samples of the node: reply time minus time spent inside the node, in "
	       "log2 buckets. The data plane records bucket counts only, so _sum is approximate: "
	       "each sample counts as the middle of its bucket.");
	for (int i = 0; i < s->n_nodes; i++) {
		const struct node_row *r = &s->nodes[i];
		__u64 cum = 0;
		double sum_us = 0;

		for (int k = 0; k < CPN_HIST_BUCKETS; k++) {
			cum += r->ns.lat_hist[k];
			sum_us += (double)r->ns.lat_hist[k] * bucket_mid_us(k);
			if (k == CPN_HIST_BUCKETS - 1)
				break; /* open-ended: only in +Inf */
			fmt_double(le, sizeof(le), bucket_le_us(k) / 1e6);
			with(&l, &r->l, "plane", PLANE, "le", le, NULL);
			series_head(f, name, "_bucket", &l);
			fprintf(f, " %llu\n", (unsigned long long)cum);
		}
		with(&l, &r->l, "plane", PLANE, "le", "+Inf", NULL);
		series_head(f, name, "_bucket", &l);
		fprintf(f, " %llu\n", (unsigned long long)cum);
		with(&l, &r->l, "plane", PLANE, NULL);
		series_f(f, name, "_sum", &l, sum_us / 1e6);
		series_head(f, name, "_count", &l);
		fprintf(f, " %llu\n", (unsigned long long)cum);
	}
}

enum node_gauge {
	NG_UP,
	NG_LIVE,
	NG_QUEUE,
	NG_INFLIGHT,
	NG_CAPACITY,
	NG_OUTSTANDING,
	NG_UTIL,
	NG_SVC,
	NG_PATH,
	NG_EST,
	NG_AGE,
	NG_MAX,
};

static const struct {
	const char *name, *help;
} node_gauges[NG_MAX] = {
    [NG_UP] = {"cpn_node_up", "1 when the node is administratively up and not drained."},
    [NG_LIVE] = {"cpn_node_live",
		 "1 when the node is live: up, not draining, reported within the smallest "
		 "stale_ms of the services that name it (500 ms if none)."},
    [NG_QUEUE] = {"cpn_node_queue_depth", "Queue depth the node last reported."},
    [NG_INFLIGHT] = {"cpn_node_inflight", "Requests in execution the node last reported."},
    [NG_CAPACITY] = {"cpn_node_capacity", "Concurrent capacity the node last reported."},
    [NG_OUTSTANDING] = {"cpn_node_outstanding",
			"Requests steered to the node since its last report."},
    [NG_UTIL] = {"cpn_node_utilization_ratio", "Utilization the node last reported, 0 to 1."},
    [NG_SVC] = {"cpn_node_service_time_seconds", "EWMA of the node's mean service time."},
    [NG_PATH] = {"cpn_node_path_latency_ewma_seconds",
		 "EWMA of the path latency to the node: reply time minus time spent inside "
		 "the node."},
    [NG_EST] = {"cpn_node_estimated_wait_seconds",
		"Estimated completion time of one more request at the node, as the policies "
		"compute it: path latency plus queued work over capacity."},
    [NG_AGE] = {"cpn_node_report_age_seconds",
		"Time since the node's last report; absent while it has never reported."},
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
	struct labels l;

#define NODE_COUNTER(field, name, help)                                                            \
	family(f, name, "counter", help);                                                          \
	for (int i = 0; i < s->n_nodes; i++) {                                                     \
		with(&l, &s->nodes[i].l, "plane", PLANE, NULL);                                    \
		series_u64(f, name, &l, s->nodes[i].ns.field);                                     \
	}
	NODE_COUNTERS(NODE_COUNTER)
#undef NODE_COUNTER

	for (int g = 0; g < NG_MAX; g++) {
		family(f, node_gauges[g].name, "gauge", node_gauges[g].help);
		for (int i = 0; i < s->n_nodes; i++) {
			double v;

			if (node_gauge(s, &s->nodes[i], (enum node_gauge)g, &v))
				series_f(f, node_gauges[g].name, NULL, &s->nodes[i].l, v);
		}
	}
	render_histogram(f, s);
}

int cpn_metrics_render(struct cpn_maps *m, const struct cpn_cfg *cfg, FILE *out)
{
	struct labels l;
	struct snap s;
	int err;

	if (!m || !m->state || !out)
		return -EINVAL;
	err = take_snapshot(m, cfg, &s);
	if (err)
		return err;
	render_packets(out, &s);
	render_services(out, &s);
	render_nodes(out, &s);
	family(out, "cpn_build_info", "gauge", "Build information of cpn; the value is always 1.");
	lbl_reset(&l);
	lbl_add(&l, "version", BUILD_VERSION);
	series_u64(out, "cpn_build_info", &l, 1);
	snap_free(&s);
	if (fflush(out) || ferror(out))
		return -EIO;
	return 0;
}
