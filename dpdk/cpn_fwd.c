// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-fwd: the DPDK data plane. The packet path is include/cpn/router.h,
 * the same as the XDP program's; fwd_loop.c runs it on the forwarding
 * lcores and carries out verdicts, fwd_env.c builds configuration
 * snapshots. This file: options, ports and queues, the control thread
 * (snapshot reloads, SIGHUP, stats), counters, telemetry and /metrics.
 *
 *   cpn-fwd [EAL args] -- (--config FILE | --pin-dir DIR) [--burst 32] [--seed S]
 *           [--neigh IP=MAC[@PORT]]... [--default-port P] [--metrics ADDR:PORT]
 *           [--stats-interval S]
 *
 * Exit status: 0 after SIGINT/SIGTERM, 1 when it cannot start, 2 on bad
 * EAL or cpn-fwd arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>

#include <rte_common.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_jhash.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_telemetry.h>

#include "fwd.h"
#include "fwd_xsk.h"
#include "cpn/sched.h"
#include "cpn_addr.h"
#include "cpn_maps.h"
#include "cpn_cfg.h"
#include "cpn_http.h"
#include "cpn_prom.h"

#define FWD_RX_DESC   1024
#define FWD_TX_DESC   1024
#define FWD_NEIGH_MAX 4096

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static struct {
	/* options */
	const char *config_path;
	const char *pin_dir;
	__u64 seed;
	bool have_seed;
	const char *metrics;
	unsigned int stats_interval;
	/* ports */
	__u16 nb_queues;
	struct rte_mempool *pool;
	/* state */
	struct cpn_maps maps;
	bool maps_open;
	struct cpn_node *state;
	struct fwd_aff_ent *aff;
	__u64 gen;
	pthread_mutex_t ctl_lock; /* snapshot swap and free vs telemetry readers */
	struct fwd_lcore *lc[RTE_MAX_LCORE];
	unsigned int n_lc;
	struct cpn_http *msrv;
	/* hand-off: the pinned cpn_xdp, and each net_af_xdp port's state */
	int router_fd;
	int lock_fd; /* the pin directory, flock()ed: one cpn-fwd takes hand-offs */
	struct fwd_xsk xsk[FWD_MAX_PORTS];
} g = {.ctl_lock = PTHREAD_MUTEX_INITIALIZER, .router_fd = -1, .lock_fd = -1};

struct fwd_globals fwd = {.burst = 32, .default_port = -1, .neigh_gen = 1};
volatile sig_atomic_t fwd_stop;
static volatile sig_atomic_t reload_flag;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_flag = 1;
	else
		fwd_stop = 1;
}

static void usage(const char *prog)
{
	fprintf(
	    stderr,
	    "usage: %s [EAL args] -- (--config FILE | --pin-dir DIR) [--burst N] [--seed S]\n"
	    "          [--neigh IP=MAC[@PORT]]... [--default-port P] [--metrics ADDR:PORT]\n"
	    "          [--stats-interval S]\n"
	    "  --config FILE        services, nodes, tenants from cpnctl's YAML (SIGHUP re-reads)\n"
	    "  --pin-dir DIR        follow the router pinned at DIR (maps re-read every second,\n"
	    "                       node state shared with the XDP routers)\n"
	    "  --burst N            RX burst, 1..%d (default 32)\n"
	    "  --seed S             seed of the per-lcore generators (deterministic runs)\n"
	    "  --neigh IP=MAC[@P]   static next hop: IPv4/IPv6 address behind port P (default 0)\n"
	    "  --default-port P     where PASS packets go (default: dropped and counted)\n"
	    "  --metrics ADDR:PORT  serve Prometheus /metrics\n"
	    "  --stats-interval S   print counters every S seconds\n",
	    prog, FWD_MAX_BURST);
}

__u16 fwd_rx_burst(__u16 port, __u16 queue, struct rte_mbuf **pkts, __u16 n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

__u16 fwd_tx_burst(__u16 port, __u16 queue, struct rte_mbuf **pkts, __u16 n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

/* ---- neighbours ------------------------------------------------------ */

/* "IP=MAC[@PORT]" */
static int neigh_opt(const char *s)
{
	char buf[128], *eq, *at;
	struct neigh_key k = {0};
	__u8 m[6];
	long port = 0;

	snprintf(buf, sizeof(buf), "%s", s);
	eq = strchr(buf, '=');
	if (!eq)
		return -1;
	*eq = 0;
	at = strchr(eq + 1, '@');
	if (at) {
		uint32_t v;

		*at = 0;
		if (cpn_parse_u32(at + 1, 0, FWD_MAX_PORTS - 1, &v))
			return -1;
		port = (int)v;
	}
	if (cpn_addr_parse(buf, k.addr, &k.family))
		return -1;
	if (cpn_mac_parse(eq + 1, m))
		return -1;
	return fwd_neigh_set(&k, m, (__u16)port);
}

/* ---- counters -------------------------------------------------------- */

static void sum_stats(__u64 out[CPN_STAT_MAX])
{
	memset(out, 0, sizeof(__u64) * CPN_STAT_MAX);
	for (unsigned int i = 0; i < g.n_lc; i++)
		for (int s = 0; s < CPN_STAT_MAX; s++)
			out[s] += __atomic_load_n(&g.lc[i]->cnt->stat[s], __ATOMIC_RELAXED);
}

static void sum_port(__u16 p, struct fwd_port_stats *o)
{
	memset(o, 0, sizeof(*o));
	for (unsigned int i = 0; i < g.n_lc; i++) {
		const struct fwd_port_stats *s = &g.lc[i]->cnt->port[p];

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
	for (unsigned int i = 0; i < g.n_lc; i++) {
		const struct cpn_node_stats *s = &g.lc[i]->cnt->node[id];

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
	for (unsigned int i = 0; i < g.n_lc; i++) {
		cpn_svc_stats_add(o, &g.lc[i]->cnt->svc[id]);
	}
}

static void print_counters(FILE *f, const char *title)
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
	fflush(f);
}

/* ---- telemetry ------------------------------------------------------- */

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
	pthread_mutex_lock(&g.ctl_lock);
	s = atomic_load(&fwd.snap);
	for (__u16 id = 1; id < CPN_MAX_NODES && n < RTE_TEL_MAX_DICT_ENTRIES; id++) {
		const struct cpn_node *st = &g.state[id];
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
	pthread_mutex_unlock(&g.ctl_lock);
	return 0;
}

static int tel_lcores(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	for (unsigned int i = 0; i < g.n_lc; i++) {
		const struct fwd_lcore *lc = g.lc[i];
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

/* ---- /metrics -------------------------------------------------------- */

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
	pthread_mutex_lock(&g.ctl_lock); /* guards the snapshot and the tables above */
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
	pthread_mutex_unlock(&g.ctl_lock);
	return 0;
}

/* ---- configuration --------------------------------------------------- */

static struct fwd_snap *build_snap(const struct fwd_snap *old, char *err, size_t errlen)
{
	struct fwd_snap *s;

	if (g.pin_dir)
		return fwd_snap_from_maps(&g.maps, old, ++g.gen, err, errlen);
	{
		struct cpn_cfg cfg;
		struct cpn_err e;

		if (cpn_cfg_load(g.config_path, &cfg, &e)) {
			snprintf(err, errlen, "%s", e.msg);
			return NULL;
		}
		s = fwd_snap_from_cfg(&cfg, g.state, old, ++g.gen, err, errlen);
		cpn_cfg_free(&cfg);
	}
	return s;
}

/* Publish a new snapshot; the old one is freed once every forwarding lcore
 * has passed a quiescent point.
 */
static int reload(void)
{
	struct fwd_snap *old = atomic_load(&fwd.snap), *s;
	char err[512];

	s = build_snap(old, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "cpn-fwd: configuration not reloaded: %s\n", err);
		return -1;
	}
	pthread_mutex_lock(&g.ctl_lock);
	atomic_store_explicit(&fwd.snap, s, memory_order_release);
	rte_rcu_qsbr_synchronize(fwd.qsv, RTE_QSBR_THRID_INVALID);
	fwd_snap_free(old);
	pthread_mutex_unlock(&g.ctl_lock);
	return 0;
}

/* ---- setup ----------------------------------------------------------- */

static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"pin-dir", required_argument, NULL, 'p'},
	    {"burst", required_argument, NULL, 'b'},
	    {"seed", required_argument, NULL, 's'},
	    {"neigh", required_argument, NULL, 'n'},
	    {"default-port", required_argument, NULL, 'd'},
	    {"metrics", required_argument, NULL, 'm'},
	    {"stats-interval", required_argument, NULL, 'i'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			g.config_path = optarg;
			break;
		case 'p':
			g.pin_dir = optarg;
			break;
		case 'b':
			if (cpn_parse_u64(optarg, 1, FWD_MAX_BURST, &v)) {
				fprintf(stderr, "cpn-fwd: --burst: 1..%d\n", FWD_MAX_BURST);
				return -1;
			}
			fwd.burst = (unsigned int)v;
			break;
		case 's':
			if (cpn_parse_u64(optarg, 0, UINT64_MAX, &v)) {
				fprintf(stderr, "cpn-fwd: --seed: a number\n");
				return -1;
			}
			g.seed = v;
			g.have_seed = true;
			break;
		case 'n':
			/* checked here, added once the table exists */
			break;
		case 'd':
			if (cpn_parse_u64(optarg, 0, FWD_MAX_PORTS - 1, &v)) {
				fprintf(stderr, "cpn-fwd: --default-port: a port number\n");
				return -1;
			}
			fwd.default_port = (int)v;
			break;
		case 'm':
			g.metrics = optarg;
			break;
		case 'i':
			if (cpn_parse_u64(optarg, 0, 86400, &v)) {
				fprintf(stderr, "cpn-fwd: --stats-interval: seconds\n");
				return -1;
			}
			g.stats_interval = (unsigned int)v;
			break;
		default:
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cpn-fwd: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!g.config_path == !g.pin_dir) {
		fprintf(stderr, "cpn-fwd: one of --config FILE or --pin-dir DIR\n");
		return -1;
	}
	return 0;
}

static int add_neighbours(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = NULL;

		if (!strcmp(argv[i], "--neigh") && i + 1 < argc)
			a = argv[++i];
		else if (!strncmp(argv[i], "--neigh=", 8))
			a = argv[i] + 8;
		if (a && neigh_opt(a)) {
			fprintf(stderr, "cpn-fwd: --neigh %s: want IP=MAC[@PORT]\n", a);
			return -1;
		}
	}
	return 0;
}

/* The device queue of a net_af_xdp port's first RX queue (start_queue=). */
static __u32 af_xdp_start_queue(const struct rte_device *dev)
{
	const struct rte_devargs *da = dev ? rte_dev_devargs(dev) : NULL;
	const char *p = da && da->args ? strstr(da->args, "start_queue=") : NULL;

	if (!p || (p != da->args && p[-1] != ','))
		return 0;
	return (__u32)strtoul(p + strlen("start_queue="), NULL, 0);
}

static int port_setup(__u16 port)
{
	struct rte_eth_conf conf = {0};
	struct rte_eth_dev_info info;
	__u16 nrx = FWD_RX_DESC, ntx = FWD_TX_DESC;
	bool handoff;
	__u32 start_queue = 0;
	char err[256];
	int rc;

	rc = rte_eth_dev_info_get(port, &info);
	if (rc)
		return rc;
	handoff = g.router_fd >= 0 && info.if_index && info.driver_name &&
		  !strcmp(info.driver_name, "net_af_xdp");
	if (handoff)
		g.xsk[port].ifindex = (int)info.if_index; /* for the close, whatever happens */
	if (handoff && g.lock_fd < 0) {
		g.lock_fd = open(g.pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (g.lock_fd < 0 || flock(g.lock_fd, LOCK_EX | LOCK_NB)) {
			rc = -errno;
			fprintf(stderr, "cpn-fwd: port %u: %s: %s\n", port, g.pin_dir,
				rc == -EWOULDBLOCK
				    ? "another cpn-fwd takes this router's hand-offs; stop it first"
				    : strerror(-rc));
			return rc;
		}
	}
	if (handoff) {
		start_queue = af_xdp_start_queue(info.device);
		rc = fwd_xsk_prepare(&g.xsk[port], (int)info.if_index, g.router_fd, err,
				     sizeof(err));
		if (rc) {
			fprintf(stderr, "cpn-fwd: port %u: %s\n", port, err);
			return rc;
		}
	}
	if (info.max_rx_queues < g.nb_queues || info.max_tx_queues < g.nb_queues) {
		fprintf(stderr,
			"cpn-fwd: port %u has %u RX / %u TX queues, %u lcores need one each\n",
			port, info.max_rx_queues, info.max_tx_queues, g.nb_queues);
		return -EINVAL;
	}
	if (g.nb_queues > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
		    (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
		if (!conf.rx_adv_conf.rss_conf.rss_hf)
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
	}
	rc = rte_eth_dev_configure(port, g.nb_queues, g.nb_queues, &conf);
	if (rc)
		return rc;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx);
	if (rc)
		return rc;
	for (__u16 q = 0; q < g.nb_queues; q++) {
		rc = rte_eth_rx_queue_setup(port, q, nrx, (unsigned int)rte_eth_dev_socket_id(port),
					    NULL, g.pool);
		if (rc)
			return rc;
		if (handoff) {
			rc = fwd_xsk_claim(&g.xsk[port], start_queue + q, err, sizeof(err));
			if (rc) {
				fprintf(stderr, "cpn-fwd: port %u: %s\n", port, err);
				return rc;
			}
		}
		rc = rte_eth_tx_queue_setup(port, q, ntx, (unsigned int)rte_eth_dev_socket_id(port),
					    NULL);
		if (rc)
			return rc;
	}
	rc = rte_eth_dev_start(port);
	if (rc)
		return rc;
	if (handoff) {
		rc = fwd_xsk_adopt(&g.xsk[port], port, g.maps.xsks, g.maps.xsk_slots, g.router_fd,
				   err, sizeof(err));
		if (rc < 0) {
			fprintf(stderr, "cpn-fwd: port %u: %s\n", port, err);
			return rc;
		}
		if (rc > 0)
			printf("cpn-fwd: port %u: hand-off from cpn_xdp on ifindex %u, %u AF_XDP "
			       "socket(s) (cpn_xdp off the interface %.1f ms)\n",
			       port, info.if_index, g.xsk[port].n_sock,
			       (double)g.xsk[port].gap_ns / 1e6);
	}
	rte_eth_promiscuous_enable(port); /* not every PMD has it: not an error */
	return rte_eth_macaddr_get(port, &fwd.mac[port]);
}

static struct rte_hash *neigh_table(void)
{
	struct rte_hash_parameters p = {0};

	p.name = "cpn_neigh";
	p.entries = FWD_NEIGH_MAX;
	p.key_len = sizeof(struct neigh_key);
	p.hash_func = rte_jhash;
	p.socket_id = SOCKET_ID_ANY;
	p.extra_flag =
	    RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_MULTI_WRITER_ADD;
	return rte_hash_create(&p);
}

int main(int argc, char **argv)
{
	const char *prog = argv[0];
	unsigned int lcore, k = 0;
	size_t qsz;
	int rc, ret = EXIT_FAIL;
	__u64 next_reload, next_stats;
	char err[512];

	rc = rte_eal_init(argc, argv);
	if (rc < 0) {
		if (rte_errno == EINVAL) {
			usage(prog);
			return EXIT_USAGE;
		}
		fprintf(stderr, "cpn-fwd: cannot initialise DPDK: %s\n", rte_strerror(rte_errno));
		return EXIT_FAIL;
	}
	argc -= rc;
	argv += rc;
	argv[0] = (char *)prog;
	if (parse_args(argc, argv)) {
		usage(prog);
		rte_eal_cleanup();
		return EXIT_USAGE;
	}
	fwd.neigh = neigh_table();
	if (!fwd.neigh) {
		fprintf(stderr, "cpn-fwd: cannot create the neighbour table: %s\n",
			rte_strerror(rte_errno));
		goto out;
	}
	if (add_neighbours(argc, argv)) {
		usage(prog);
		ret = EXIT_USAGE;
		goto out;
	}
	g.nb_queues = (__u16)rte_lcore_count() - 1;
	if (!g.nb_queues) {
		fprintf(stderr,
			"cpn-fwd: no worker lcore to forward on (-l: main plus at least one)\n");
		usage(prog);
		ret = EXIT_USAGE;
		goto out;
	}
	fwd.nb_ports = rte_eth_dev_count_avail();
	if (!fwd.nb_ports || fwd.nb_ports > FWD_MAX_PORTS) {
		fprintf(stderr, "cpn-fwd: %u ports (want 1..%d): give a device or --vdev\n",
			fwd.nb_ports, FWD_MAX_PORTS);
		goto out;
	}
	if (fwd.default_port >= fwd.nb_ports) {
		fprintf(stderr, "cpn-fwd: --default-port %d: there are %u ports\n",
			fwd.default_port, fwd.nb_ports);
		usage(prog);
		ret = EXIT_USAGE;
		goto out;
	}

	/* Node state: the XDP routers' mmaped array, or our own. */
	if (g.pin_dir) {
		rc = cpn_maps_open_pinned(&g.maps, g.pin_dir);
		if (rc) {
			fprintf(stderr, "cpn-fwd: no cpn router pinned at %s: %s\n", g.pin_dir,
				strerror(-rc));
			goto out;
		}
		g.maps_open = true;
		g.state = g.maps.state;
		/* The router program, for the hand-off on net_af_xdp ports; none
		 * pinned: cpn-fwd follows the maps only.
		 */
		g.router_fd = cpn_pinned_prog_fd(g.pin_dir);
	} else {
		g.state = aligned_alloc(64, sizeof(struct cpn_node) * CPN_MAX_NODES);
		if (!g.state)
			goto oom;
		memset(g.state, 0, sizeof(struct cpn_node) * CPN_MAX_NODES);
	}
	g.aff = calloc(FWD_AFF_SIZE, sizeof(*g.aff));
	if (!g.aff)
		goto oom;
	fwd.snap = build_snap(NULL, err, sizeof(err));
	if (!fwd.snap) {
		fprintf(stderr, "cpn-fwd: %s\n", err);
		goto out;
	}

	qsz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
	fwd.qsv = aligned_alloc(RTE_CACHE_LINE_SIZE, RTE_ALIGN(qsz, RTE_CACHE_LINE_SIZE));
	if (!fwd.qsv || rte_rcu_qsbr_init(fwd.qsv, RTE_MAX_LCORE))
		goto oom;

	g.pool = rte_pktmbuf_pool_create(
	    "cpn_mbufs",
	    RTE_MAX(8191U,
		    fwd.nb_ports * g.nb_queues * (FWD_RX_DESC + FWD_TX_DESC + FWD_MAX_BURST) +
			g.nb_queues * 512U),
	    256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!g.pool) {
		fprintf(stderr, "cpn-fwd: cannot create the mbuf pool: %s\n",
			rte_strerror(rte_errno));
		goto out;
	}
	for (__u16 p = 0; p < fwd.nb_ports; p++) {
		rc = port_setup(p);
		if (rc) {
			fprintf(stderr, "cpn-fwd: port %u: %s\n", p, rte_strerror(-rc));
			goto out;
		}
	}

	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		struct fwd_lcore *lc = rte_zmalloc("cpn_lcore", sizeof(*lc), RTE_CACHE_LINE_SIZE);

		if (!lc)
			goto oom;
		lc->cnt = rte_zmalloc("cpn_cnt", sizeof(*lc->cnt), RTE_CACHE_LINE_SIZE);
		if (!lc->cnt)
			goto oom;
		lc->lcore_id = lcore;
		lc->queue = (__u16)k;
		lc->env.state = g.state;
		lc->env.aff = g.aff;
		lc->env.cnt = lc->cnt;
		lc->env.snap = fwd.snap;
		lc->env.rng = g.have_seed ? fwd_rng_seed(g.seed, k)
					  : fwd_rng_seed(cpn_now_ns() ^ ((__u64)getpid() << 32), k);
		g.lc[g.n_lc++] = lc;
		k++;
	}

	fwd.state_private = !g.pin_dir && g.n_lc == 1;
	rte_telemetry_register_cmd("/cpn/stats", tel_stats,
				   "cpn-fwd counters by name (cpn_stat_names), port counters");
	rte_telemetry_register_cmd("/cpn/nodes", tel_nodes,
				   "cpn-fwd nodes: address, state, counters");
	rte_telemetry_register_cmd("/cpn/lcores", tel_lcores, "cpn-fwd forwarding lcores");
	if (g.metrics) {
		char e[256];

		g.msrv = cpn_http_start(g.metrics, render_metrics, NULL, e, sizeof(e));
		if (!g.msrv) {
			fprintf(stderr, "cpn-fwd: --metrics %s: %s\n", g.metrics, e);
			goto out;
		}
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	printf("cpn-fwd: %u ports, %u forwarding lcores, burst %u, %s %s\n", fwd.nb_ports, g.n_lc,
	       fwd.burst, g.pin_dir ? "pin-dir" : "config", g.pin_dir ? g.pin_dir : g.config_path);
	fflush(stdout);
	for (unsigned int i = 0; i < g.n_lc; i++)
		rte_eal_remote_launch(fwd_lcore_main, g.lc[i], g.lc[i]->lcore_id);

	next_reload = cpn_now_ns() + 1000000000ULL;
	next_stats = cpn_now_ns() + (__u64)g.stats_interval * 1000000000ULL;
	while (!fwd_stop) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		__u64 t;

		nanosleep(&ts, NULL);
		t = cpn_now_ns();
		if (reload_flag || (g.pin_dir && t >= next_reload)) {
			if (reload_flag && !g.pin_dir)
				printf("cpn-fwd: SIGHUP: re-reading %s\n", g.config_path);
			reload_flag = 0;
			if (!reload() && !g.pin_dir)
				printf("cpn-fwd: configuration %" PRIu64 " in use\n",
				       (uint64_t)g.gen);
			fflush(stdout);
			next_reload = t + 1000000000ULL;
		}
		if (g.stats_interval && t >= next_stats) {
			print_counters(stdout, "counters");
			next_stats = t + (__u64)g.stats_interval * 1000000000ULL;
		}
	}
	rte_eal_mp_wait_lcore();
	print_counters(stdout, "final counters");
	ret = EXIT_OK;
	goto out;
oom:
	fprintf(stderr, "cpn-fwd: out of memory\n");
out:
	if (g.msrv)
		cpn_http_stop(g.msrv);
	for (__u16 p = 0; p < fwd.nb_ports; p++) {
		rte_eth_dev_stop(p);
		if (g.router_fd >= 0)
			fwd_xsk_before_close(&g.xsk[p], g.router_fd);
		rte_eth_dev_close(p);
		if (g.router_fd >= 0)
			fwd_xsk_restore(&g.xsk[p], g.router_fd);
	}
	if (g.router_fd >= 0)
		close(g.router_fd);
	if (g.lock_fd >= 0)
		close(g.lock_fd); /* and with it the lock */
	fwd_snap_free(atomic_load(&fwd.snap));
	for (unsigned int i = 0; i < g.n_lc; i++) {
		rte_free(g.lc[i]->cnt);
		rte_free(g.lc[i]);
	}
	rte_hash_free(fwd.neigh);
	free(fwd.qsv);
	free(g.aff);
	if (g.maps_open)
		cpn_maps_close(&g.maps);
	else
		free(g.state);
	rte_eal_cleanup();
	return ret;
}
