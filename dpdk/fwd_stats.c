// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-fwd's counters, summed over the forwarding lcores when read: printed
 * (--stats-interval, and at exit), DPDK telemetry and Prometheus /metrics.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include <rte_cycles.h>
#include <rte_telemetry.h>

#include "fwd_ctl.h"
#include "cpn/sched.h"
#include "cpn_addr.h"
#include "cpn_http.h"
#include "cpn_prom.h"

static void sum_stats(__u64 out[CPN_STAT_MAX])
{
	memset(out, 0, sizeof(__u64) * CPN_STAT_MAX);
	for (unsigned int i = 0; i < ctl.n_lc; i++)
		for (int s = 0; s < CPN_STAT_MAX; s++)
			out[s] += __atomic_load_n(&ctl.lc[i]->cnt->stat[s], __ATOMIC_RELAXED);
}

static void sum_port(__u16 p, struct fwd_port_stats *o)
{
	memset(o, 0, sizeof(*o));
	for (unsigned int i = 0; i < ctl.n_lc; i++) {
		const struct fwd_port_stats *s = &ctl.lc[i]->cnt->port[p];

		o->rx += s->rx;
		o->tx += s->tx;
		o->tx_drop += s->tx_drop;
		o->pass_drop += s->pass_drop;
		o->pass_fwd += s->pass_fwd;
		o->neigh_miss += s->neigh_miss;
		o->neigh_learn += s->neigh_learn;
	}
}

static void sum_node(__u16 id, struct cpn_node_stats *o)
{
	memset(o, 0, sizeof(*o));
	for (unsigned int i = 0; i < ctl.n_lc; i++) {
		const struct cpn_node_stats *s = &ctl.lc[i]->cnt->node[id];

		o->requests += s->requests;
		o->replies += s->replies;
		o->busy += s->busy;
		o->reports += s->reports;
		for (int b = 0; b < CPN_HIST_BUCKETS; b++)
			o->lat_hist[b] += s->lat_hist[b];
	}
}

static void sum_svc(__u16 id, struct cpn_svc_stats *o)
{
	memset(o, 0, sizeof(*o));
	for (unsigned int i = 0; i < ctl.n_lc; i++) {
		cpn_svc_stats_add(o, &ctl.lc[i]->cnt->svc[id]);
	}
}

/* dispatch: late, for the services that hold or held requests. */
static void print_late(FILE *f)
{
	static struct fwd_late_stats ls;

	fwd_late_read(&ls);
	for (int id = 0; id < CPN_MAX_SERVICES; id++) {
		const struct fwd_late_svc_stats *v = &ls.svc[id];

		if (!ls.held[id] && !v->bound && !v->timed_out && !v->early && !v->gone)
			continue;
		fprintf(f,
			"  late service %d: held %u bound %" PRIu64 " timed_out %" PRIu64
			" early %" PRIu64 " gone %" PRIu64 "\n",
			id, ls.held[id], (uint64_t)v->bound, (uint64_t)v->timed_out,
			(uint64_t)v->early, (uint64_t)v->gone);
	}
	if (ls.slots_expired)
		fprintf(f, "  late slots_expired %" PRIu64 "\n", (uint64_t)ls.slots_expired);
}

void fwd_print_counters(FILE *f, const char *title)
{
	__u64 st[CPN_STAT_MAX];
	struct fwd_port_stats ps;

	sum_stats(st);
	fprintf(f, "cpn-fwd: %s\n", title);
	for (int s = 0; s < CPN_STAT_MAX; s++)
		if (st[s])
			fprintf(f, "  %-20s %" PRIu64 "\n", cpn_stat_names[s], (uint64_t)st[s]);
	for (__u16 p = 0; p < fwd.nb_ports; p++) {
		sum_port(p, &ps);
		fprintf(f,
			"  port %u: rx %" PRIu64 " tx %" PRIu64 " tx_drop %" PRIu64
			" pass_drop %" PRIu64 " pass_fwd %" PRIu64 " neigh_miss %" PRIu64
			" neigh_learn %" PRIu64 "\n",
			p, (uint64_t)ps.rx, (uint64_t)ps.tx, (uint64_t)ps.tx_drop,
			(uint64_t)ps.pass_drop, (uint64_t)ps.pass_fwd, (uint64_t)ps.neigh_miss,
			(uint64_t)ps.neigh_learn);
	}
	print_late(f);
	fflush(f);
}

static int tel_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	__u64 st[CPN_STAT_MAX];
	struct fwd_port_stats ps;
	char name[64];

	(void)cmd;
	(void)params;
	sum_stats(st);
	rte_tel_data_start_dict(d);
	for (int s = 0; s < CPN_STAT_MAX; s++)
		rte_tel_data_add_dict_u64(d, cpn_stat_names[s], st[s]);
	for (__u16 p = 0; p < fwd.nb_ports; p++) {
		sum_port(p, &ps);
#define PORT_STAT(f)                                                                               \
	snprintf(name, sizeof(name), "port%u_" #f, p);                                             \
	rte_tel_data_add_dict_u64(d, name, ps.f)
		PORT_STAT(rx);
		PORT_STAT(tx);
		PORT_STAT(tx_drop);
		PORT_STAT(pass_drop);
		PORT_STAT(pass_fwd);
		PORT_STAT(neigh_miss);
#undef PORT_STAT
	}
	return 0;
}

/* The staleness window a node is judged by outside the packet path: the
 * smallest stale_ms of the services that name it, as cpnctl judges it
 * (cpn_cfg_node_stale_ms), CPN_DEFAULT_STALE_MS when none does.
 */
static __u32 node_stale_ms(const struct fwd_snap *s, __u16 id)
{
	__u32 best = 0;

	for (int i = 0; i < CPN_MAX_SERVICES; i++) {
		if (!s->has_svc[i])
			continue;
		for (__u32 k = 0; k < s->svc[i].n_nodes && k < CPN_MAX_SVC_NODES; k++)
			if (s->svc[i].nodes[k] == id && (!best || s->svc[i].stale_ms < best))
				best = s->svc[i].stale_ms;
	}
	return best ? best : CPN_DEFAULT_STALE_MS;
}

static int tel_nodes(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct fwd_snap *s;
	struct cpn_node_stats ns;
	int n = 0;

	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	pthread_mutex_lock(&ctl.ctl_lock);
	s = atomic_load(&fwd.snap);
	for (__u16 id = 1; id < CPN_MAX_NODES && n < RTE_TEL_MAX_DICT_ENTRIES; id++) {
		const struct cpn_node *st = &ctl.state[id];
		struct rte_tel_data *c;
		char key[16], addr[64];

		if (!(s->nodes[id].flags & CPN_NODE_CFG_VALID))
			continue;
		c = rte_tel_data_alloc();
		if (!c)
			break;
		sum_node(id, &ns);
		rte_tel_data_start_dict(c);
		cpn_addr_str(s->nodes[id].addr, s->nodes[id].family, addr, sizeof(addr));
		rte_tel_data_add_dict_string(c, "addr", addr);
		rte_tel_data_add_dict_u64(c, "port", ntohs(s->nodes[id].port));
		rte_tel_data_add_dict_u64(c, "retired",
					  !!(s->nodes[id].flags & CPN_NODE_CFG_RETIRED));
		rte_tel_data_add_dict_u64(c, "admin", st->admin);
		rte_tel_data_add_dict_u64(c, "weight", st->weight);
		rte_tel_data_add_dict_u64(c, "live",
					  cpn_node_live(st, cpn_now_ns(), node_stale_ms(s, id)));
		rte_tel_data_add_dict_u64(c, "queue_depth", st->queue_depth);
		rte_tel_data_add_dict_u64(c, "inflight", st->inflight);
		rte_tel_data_add_dict_u64(c, "capacity", st->capacity);
		rte_tel_data_add_dict_u64(c, "outstanding", st->outstanding);
		rte_tel_data_add_dict_u64(c, "svc_us", st->svc_us);
		rte_tel_data_add_dict_u64(c, "path_us", st->path_us);
		rte_tel_data_add_dict_u64(c, "last_report_ns", st->last_report_ns);
		rte_tel_data_add_dict_u64(c, "requests", ns.requests);
		rte_tel_data_add_dict_u64(c, "replies", ns.replies);
		rte_tel_data_add_dict_u64(c, "busy", ns.busy);
		rte_tel_data_add_dict_u64(c, "reports", ns.reports);
		snprintf(key, sizeof(key), "%u", id);
		rte_tel_data_add_dict_container(d, key, c, 0);
		n++;
	}
	pthread_mutex_unlock(&ctl.ctl_lock);
	return 0;
}

static int tel_lcores(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	for (unsigned int i = 0; i < ctl.n_lc; i++) {
		const struct fwd_lcore *lc = ctl.lc[i];
		struct rte_tel_data *c = rte_tel_data_alloc();
		__u64 rx = 0, tx = 0;
		char key[16];

		if (!c)
			break;
		for (__u16 p = 0; p < fwd.nb_ports; p++) {
			rx += lc->cnt->port[p].rx;
			tx += lc->cnt->port[p].tx;
		}
		rte_tel_data_start_dict(c);
		rte_tel_data_add_dict_u64(c, "queue", lc->queue);
		rte_tel_data_add_dict_u64(c, "rx", rx);
		rte_tel_data_add_dict_u64(c, "tx", tx);
		rte_tel_data_add_dict_u64(c, "bursts", lc->cnt->bursts);
		rte_tel_data_add_dict_u64(c, "quiescent", lc->cnt->quiescent);
		snprintf(key, sizeof(key), "%u", lc->lcore_id);
		rte_tel_data_add_dict_container(d, key, c, 0);
	}
	return 0;
}

/* cpn-fwd's own families (cpn_fwd_*, cpn_late_*; no daemon has them):
 * the lcores' busy time, and dispatch: late by service (the late ones and
 * those that were) and node (slots taken); plane="dpdk" as every series.
 */
static void render_late(FILE *f, const struct fwd_snap *s)
{
	static struct fwd_late_stats ls;
	struct cpn_prom_labels l;
	__u64 tsc = 0, hz = rte_get_tsc_hz();
	static const enum cpn_metric fam[] = {CPN_M_LATE_HELD, CPN_M_LATE_BOUND,
					      CPN_M_LATE_TIMED_OUT, CPN_M_LATE_EARLY,
					      CPN_M_LATE_GONE};

	for (unsigned int i = 0; i < ctl.n_lc; i++)
		tsc += __atomic_load_n(&ctl.lc[i]->cnt->busy_tsc, __ATOMIC_RELAXED);
	cpn_prom_labels_reset(&l);
	cpn_prom_label(&l, "plane", "dpdk");
	cpn_prom_family(f, CPN_M_F_BUSY);
	cpn_prom_double(f, CPN_M_F_BUSY, NULL, &l, hz ? (double)tsc / (double)hz : 0.0);
	fwd_late_read(&ls);
	for (unsigned int k = 0; k < sizeof(fam) / sizeof(fam[0]); k++) {
		cpn_prom_family(f, fam[k]);
		for (__u16 id = 0; id < CPN_MAX_SERVICES; id++) {
			const struct fwd_late_svc_stats *v = &ls.svc[id];
			__u64 x = fam[k] == CPN_M_LATE_HELD	   ? ls.held[id]
				  : fam[k] == CPN_M_LATE_BOUND	   ? v->bound
				  : fam[k] == CPN_M_LATE_TIMED_OUT ? v->timed_out
				  : fam[k] == CPN_M_LATE_EARLY	   ? v->early
								   : v->gone;

			/* Late services, and those that were (their counters). */
			if (!(s->has_svc[id] && (s->svc[id].flags & CPN_SVC_LATE)) &&
			    !ls.held[id] && !v->bound && !v->timed_out && !v->early && !v->gone)
				continue;
			cpn_prom_labels_reset(&l);
			if (s->svc_name[id][0])
				cpn_prom_label(&l, "service", s->svc_name[id]);
			cpn_prom_labelu(&l, "service_id", id);
			cpn_prom_label(&l, "plane", "dpdk");
			cpn_prom_u64(f, fam[k], NULL, &l, x);
		}
	}
	cpn_prom_family(f, CPN_M_LATE_SLOTS);
	for (__u16 id = 1; id < CPN_MAX_NODES; id++) {
		if (!ls.slots[id])
			continue;
		cpn_prom_labels_reset(&l);
		cpn_prom_labelu(&l, "node", id);
		cpn_prom_label(&l, "plane", "dpdk");
		cpn_prom_u64(f, CPN_M_LATE_SLOTS, NULL, &l, ls.slots[id]);
	}
	cpn_prom_labels_reset(&l);
	cpn_prom_label(&l, "plane", "dpdk");
	cpn_prom_family(f, CPN_M_LATE_SLOTS_EXPIRED);
	cpn_prom_u64(f, CPN_M_LATE_SLOTS_EXPIRED, NULL, &l, ls.slots_expired);
}

/* The families both data planes export (cpn_prom.h), with plane="dpdk":
 * packets, services and nodes, from cpn-fwd's own per-lcore counters. The
 * node table's gauges are the daemon's to export (one table, one source).
 */
static int render_metrics(void *arg, FILE *f)
{
	static struct cpn_prom_node nodes[CPN_MAX_NODES];
	static struct cpn_prom_svc svcs[CPN_MAX_SERVICES];
	__u64 st[CPN_STAT_MAX];
	struct fwd_snap *s;
	int nn = 0, ns = 0;

	(void)arg;
	sum_stats(st);
	pthread_mutex_lock(&ctl.ctl_lock); /* guards the snapshot and the tables above */
	s = atomic_load(&fwd.snap);
	for (__u16 id = 1; id < CPN_MAX_NODES; id++) {
		char a[INET6_ADDRSTRLEN + 8], ap[INET6_ADDRSTRLEN + 16];
		bool v6 = s->nodes[id].family == CPN_AF_INET6;

		if (!(s->nodes[id].flags & CPN_NODE_CFG_VALID))
			continue;
		cpn_addr_str(s->nodes[id].addr, s->nodes[id].family, a, sizeof(a));
		snprintf(ap, sizeof(ap), "%s%s%s:%u", v6 ? "[" : "", a, v6 ? "]" : "",
			 ntohs(s->nodes[id].port));
		cpn_prom_labels_reset(&nodes[nn].l);
		cpn_prom_labelu(&nodes[nn].l, "node", id);
		cpn_prom_label(&nodes[nn].l, "addr", ap);
		sum_node(id, &nodes[nn++].ns);
	}
	for (__u16 id = 0; id < CPN_MAX_SERVICES; id++) {
		if (!s->has_svc[id])
			continue;
		cpn_prom_labels_reset(&svcs[ns].l);
		/* No name with --pin-dir: absent, as an empty value reads. */
		if (s->svc_name[id][0])
			cpn_prom_label(&svcs[ns].l, "service", s->svc_name[id]);
		cpn_prom_labelu(&svcs[ns].l, "service_id", id);
		sum_svc(id, &svcs[ns++].ss);
	}
	cpn_prom_packets(f, "dpdk", st);
	cpn_prom_nodes(f, "dpdk", nodes, nn);
	cpn_prom_services(f, "dpdk", svcs, ns);
	render_late(f, s);
	pthread_mutex_unlock(&ctl.ctl_lock);
	return 0;
}

void fwd_telemetry_register(void)
{
	rte_telemetry_register_cmd("/cpn/stats", tel_stats,
				   "cpn-fwd counters by name (cpn_stat_names), port counters");
	rte_telemetry_register_cmd("/cpn/nodes", tel_nodes,
				   "cpn-fwd nodes: address, state, counters");
	rte_telemetry_register_cmd("/cpn/lcores", tel_lcores, "cpn-fwd forwarding lcores");
}

int fwd_metrics_start(char *err, size_t errlen)
{
	if (!ctl.metrics)
		return 0;
	ctl.msrv = cpn_http_start(ctl.metrics, render_metrics, NULL, err, errlen);
	return ctl.msrv ? 0 : -1;
}

void fwd_metrics_stop(void)
{
	if (ctl.msrv)
		cpn_http_stop(ctl.msrv);
	ctl.msrv = NULL;
}
