// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-maps: fill the router's pinned maps by hand, one entry per call.
 *
 * A stop-gap for tests and demos until cpnctl exists: every write goes
 * through libcpn (userspace/lib/cpn_maps.c), so what this tool writes is
 * exactly what cpnctl will write. Bad arguments: usage, exit 2. A failure
 * at run time: the reason on stderr, exit 1.
 *
 *   cpn-maps [--pin-dir DIR] config [--control-port P] [--max-hops H] [--router-id N] ...
 *   cpn-maps [--pin-dir DIR] node ID ADDR:PORT [--weight W]
 *   cpn-maps [--pin-dir DIR] service ID VIP:PORT --nodes 1,2,3 [--policy P] ...
 *   cpn-maps [--pin-dir DIR] tenant ID --services 1,2 [--rate R [--burst B]] [--key HEX32]
 *   cpn-maps [--pin-dir DIR] port IFNAME
 *   cpn-maps [--pin-dir DIR] report ID --queue Q --capacity C --svc-us S
 *   cpn-maps [--pin-dir DIR] stats
 *
 * `port` resolves IFNAME in the caller's network namespace, as the devmap
 * does: run it in the router's namespace (nsenter --net=..., which keeps
 * /sys/fs/bpf visible, unlike `ip netns exec`).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "cpn_maps.h"

static const char *pin_dir = CPN_DEFAULT_PIN_DIR;

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: cpn-maps [--pin-dir DIR] COMMAND ...\n"
	    "  config [--control-port P] [--max-hops H] [--router-id N] [--nh-ttl-ms MS]\n"
	    "  node ID ADDR:PORT [--weight W]                 (W in 1..1000, default 100)\n"
	    "  service ID VIP:PORT --nodes 1,2,3 [--policy p2c|least|maglev|random|round-robin]\n"
	    "          [--stale-ms N] [--max-wait-us N] [--max-queue N]\n"
	    "  tenant ID --services 1,2 [--rate R [--burst B]] [--key HEX32]\n"
	    "  port IFNAME                                    (devmap cpn_tx_ports)\n"
	    "  report ID --queue Q --capacity C --svc-us S    (node state, reported now)\n"
	    "  stats                                          (every counter, name=value)\n"
	    "DIR defaults to %s.\n",
	    CPN_DEFAULT_PIN_DIR);
}

static void __attribute__((noreturn)) bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cpn-maps: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	usage(stderr);
	exit(2);
}

static void __attribute__((noreturn)) fail(int err, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cpn-maps: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err < 0 ? -err : err));
	fprintf(stderr, "\n");
	exit(1);
}

/* A decimal number in [min, max], or bad usage naming `what`. */
static __u64 num(const char *s, __u64 min, __u64 max, const char *what)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (!s || !*s || *s == '-')
		bad_usage("%s: not a number: '%s'", what, s ? s : "");
	v = strtoull(s, &end, 10);
	if (errno || *end)
		bad_usage("%s: not a number: '%s'", what, s);
	if (v < min || v > max)
		bad_usage("%s: %llu is out of range %llu..%llu", what, v, (unsigned long long)min,
			  (unsigned long long)max);
	return v;
}

/* "1,2,3" -> ids in [min, max], no repeats. Returns how many. */
static int id_list(const char *s, __u16 *out, int cap, __u64 min, __u64 max, const char *what)
{
	char *dup = strdup(s), *save = NULL, *tok;
	int n = 0;

	if (!dup)
		fail(ENOMEM, "%s", what);
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		__u16 id = (__u16)num(tok, min, max, what);

		if (n == cap)
			bad_usage("%s: more than %d ids", what, cap);
		for (int i = 0; i < n; i++)
			if (out[i] == id)
				bad_usage("%s: %u given twice", what, id);
		out[n++] = id;
	}
	free(dup);
	if (!n)
		bad_usage("%s: empty list", what);
	return n;
}

static void open_maps(struct cpn_maps *m)
{
	int err = cpn_maps_open_pinned(m, pin_dir);

	if (err)
		fail(err, "cannot open the maps pinned under %s", pin_dir);
}

/* Parse the options of a command, before, between or after its `npos`
 * positional arguments; the callback gets each option's index in `opts` and
 * its argument. Returns the positional arguments.
 */
typedef void (*opt_fn)(void *ctx, int idx, const char *arg);

static char **parse(int argc, char **argv, const struct option *opts, int npos, opt_fn fn,
		    void *ctx)
{
	static char *pos[2];
	int c, idx, n = 0;

	optind = 0; /* reset GNU getopt: a fresh argument vector */
	/* "-": positional arguments come back in order as option 1. */
	while ((c = getopt_long(argc, argv, "-", opts, &idx)) != -1) {
		if (c == 1) {
			if (n >= npos)
				bad_usage("%s: unexpected argument '%s'", argv[0], optarg);
			pos[n++] = optarg;
			continue;
		}
		if (c != 0)
			bad_usage("%s: bad option", argv[0]);
		fn(ctx, idx, optarg);
	}
	if (n != npos)
		bad_usage("%s: expected %d argument%s", argv[0], npos, npos == 1 ? "" : "s");
	return pos;
}

/* ---- config ---------------------------------------------------------- */

struct config_args {
	long long control_port, max_hops, router_id, nh_ttl_ms; /* -1: not given */
};

static void config_opt(void *ctx, int idx, const char *arg)
{
	struct config_args *a = ctx;

	switch (idx) {
	case 0:
		a->control_port = (long long)num(arg, 1, 65535, "--control-port");
		break;
	case 1:
		a->max_hops = (long long)num(arg, 1, 255, "--max-hops");
		break;
	case 2:
		a->router_id = (long long)num(arg, 0, UINT32_MAX, "--router-id");
		break;
	case 3:
		a->nh_ttl_ms = (long long)num(arg, 0, UINT32_MAX, "--nh-ttl-ms");
		break;
	}
}

static int cmd_config(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"control-port", required_argument, 0, 0},
	    {"max-hops", required_argument, 0, 0},
	    {"router-id", required_argument, 0, 0},
	    {"nh-ttl-ms", required_argument, 0, 0},
	    {0},
	};
	struct config_args a = {-1, -1, -1, -1};
	struct cpn_config cfg;
	struct cpn_maps m;
	int err;

	parse(argc, argv, opts, 0, config_opt, &a);
	if (a.control_port < 0 && a.max_hops < 0 && a.router_id < 0 && a.nh_ttl_ms < 0)
		bad_usage("config: nothing to set");
	open_maps(&m);
	/* What is not given stays as it was. */
	err = cpn_maps_get_config(&m, &cfg);
	if (err)
		fail(err, "config: read");
	if (a.control_port >= 0)
		cfg.control_port = htons((__u16)a.control_port);
	if (a.max_hops >= 0)
		cfg.max_hops = (__u16)a.max_hops;
	if (a.router_id >= 0)
		cfg.router_id = (__u32)a.router_id;
	if (a.nh_ttl_ms >= 0)
		cfg.nh_ttl_ms = (__u32)a.nh_ttl_ms;
	err = cpn_maps_set_config(&m, &cfg);
	if (err)
		fail(err, "config: write");
	cpn_maps_close(&m);
	return 0;
}

/* ---- node ------------------------------------------------------------ */

/* Does any service name node `id`? */
static int node_in_service(struct cpn_maps *m, __u16 id, __u32 *svc_id)
{
	struct cpn_service s;
	__u32 k, *prev = NULL;

	while (!bpf_map_get_next_key(m->services, prev, &k)) {
		prev = svc_id;
		*svc_id = k;
		if (bpf_map_lookup_elem(m->services, &k, &s))
			continue;
		for (__u32 i = 0; i < s.n_nodes && i < CPN_MAX_SVC_NODES; i++)
			if (s.nodes[i] == id)
				return 1;
	}
	return 0;
}

static void weight_opt(void *ctx, int idx, const char *arg)
{
	(void)idx;
	*(__u32 *)ctx = (__u32)num(arg, 1, 1000, "--weight");
}

static int cmd_node(int argc, char **argv)
{
	static const struct option opts[] = {{"weight", required_argument, 0, 0}, {0}};
	struct cpn_node_cfg c = {0}, old;
	struct cpn_maps m;
	__u32 weight = 100, svc;
	char **pos;
	__u16 id;
	int err;

	pos = parse(argc, argv, opts, 2, weight_opt, &weight);
	id = (__u16)num(pos[0], 1, CPN_MAX_NODES - 1, "node id");
	if (cpn_addr_port_parse(pos[1], c.addr, &c.port, &c.family))
		bad_usage("node: bad ADDR:PORT '%s'", pos[1]);
	open_maps(&m);
	/* An address is rewritten only while no service names the node:
	 * replies from the old address would no longer be recognised.
	 */
	if (!cpn_maps_get_node(&m, id, &old) &&
	    (memcmp(old.addr, c.addr, sizeof(c.addr)) || old.port != c.port ||
	     old.family != c.family) &&
	    node_in_service(&m, id, &svc))
		fail(0, "node %u: service %u names it; its address cannot change", id, svc);
	err = cpn_maps_set_node(&m, id, &c, weight, CPN_ADMIN_UP);
	if (err)
		fail(err, "node %u", id);
	cpn_maps_close(&m);
	return 0;
}

/* ---- service --------------------------------------------------------- */

struct service_args {
	struct cpn_service s;
	int have_nodes;
};

static void service_opt(void *ctx, int idx, const char *arg)
{
	struct service_args *a = ctx;
	int p;

	switch (idx) {
	case 0:
		for (p = 0; p <= CPN_POL_MAX; p++)
			if (!strcmp(arg, cpn_policy_names[p]))
				break;
		if (p > CPN_POL_MAX)
			bad_usage("--policy: unknown policy '%s'", arg);
		a->s.policy = (__u8)p;
		break;
	case 1:
		a->s.n_nodes = (__u32)id_list(arg, a->s.nodes, CPN_MAX_SVC_NODES, 1,
					      CPN_MAX_NODES - 1, "--nodes");
		a->have_nodes = 1;
		break;
	case 2:
		a->s.stale_ms = (__u32)num(arg, 1, UINT32_MAX, "--stale-ms");
		break;
	case 3:
		a->s.max_wait_us = (__u32)num(arg, 0, UINT32_MAX, "--max-wait-us");
		break;
	case 4:
		a->s.max_queue = (__u32)num(arg, 0, UINT32_MAX, "--max-queue");
		break;
	}
}

static int cmd_service(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"policy", required_argument, 0, 0},    {"nodes", required_argument, 0, 0},
	    {"stale-ms", required_argument, 0, 0},  {"max-wait-us", required_argument, 0, 0},
	    {"max-queue", required_argument, 0, 0}, {0},
	};
	struct service_args a = {
	    .s = {.flags = CPN_SVC_ACTIVE, .policy = CPN_POL_P2C, .stale_ms = 500}};
	struct cpn_node_cfg nc;
	struct cpn_maps m;
	char **pos;
	__u16 id;
	int err;

	pos = parse(argc, argv, opts, 2, service_opt, &a);
	id = (__u16)num(pos[0], 0, CPN_MAX_SERVICES - 1, "service id");
	if (cpn_addr_port_parse(pos[1], a.s.vip, &a.s.port, &a.s.family))
		bad_usage("service: bad VIP:PORT '%s'", pos[1]);
	if (!a.have_nodes)
		bad_usage("service: --nodes is required");
	open_maps(&m);
	/* Nodes first: the Maglev table is built from their weights, and a
	 * node of another family than the VIP would drop every request.
	 */
	for (__u32 i = 0; i < a.s.n_nodes; i++) {
		err = cpn_maps_get_node(&m, a.s.nodes[i], &nc);
		if (err == -ENOENT)
			fail(0, "service %u: node %u is not configured", id, a.s.nodes[i]);
		if (err)
			fail(err, "service %u: node %u", id, a.s.nodes[i]);
		if (nc.family != a.s.family)
			fail(0, "service %u: node %u is not of the VIP's address family", id,
			     a.s.nodes[i]);
	}
	err = cpn_maps_set_service(&m, id, &a.s);
	if (err)
		fail(err, "service %u", id);
	cpn_maps_close(&m);
	return 0;
}

/* ---- tenant ---------------------------------------------------------- */

struct tenant_args {
	__u16 svcs[CPN_MAX_SERVICES];
	int n_svcs;
	long long rate, burst;
	const char *key;
};

static void tenant_opt(void *ctx, int idx, const char *arg)
{
	struct tenant_args *a = ctx;

	switch (idx) {
	case 0:
		a->n_svcs =
		    id_list(arg, a->svcs, CPN_MAX_SERVICES, 0, CPN_MAX_SERVICES - 1, "--services");
		break;
	case 1:
		a->rate = (long long)num(arg, 0, 1000000000, "--rate");
		break;
	case 2:
		a->burst = (long long)num(arg, 1, 1000000000, "--burst");
		break;
	case 3:
		a->key = arg;
		break;
	}
}

static int cmd_tenant(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"services", required_argument, 0, 0},
	    {"rate", required_argument, 0, 0},
	    {"burst", required_argument, 0, 0},
	    {"key", required_argument, 0, 0},
	    {0},
	};
	struct tenant_args a = {.rate = -1, .burst = -1};
	struct cpn_tenant t;
	struct cpn_maps m;
	char **pos;
	__u32 id;
	int err;

	pos = parse(argc, argv, opts, 1, tenant_opt, &a);
	id = (__u32)num(pos[0], 0, UINT32_MAX, "tenant id");
	if (!a.n_svcs)
		bad_usage("tenant: --services is required");
	if (a.burst >= 0 && a.rate <= 0)
		bad_usage("tenant: --burst needs --rate");
	memset(&t, 0, sizeof(t));
	for (int i = 0; i < a.n_svcs; i++)
		t.services[a.svcs[i] / 64] |= 1ULL << (a.svcs[i] % 64);
	/* No --rate: no limit. --rate without --burst: a burst of one second. */
	if (a.rate > 0)
		cpn_tenant_set_rate(&t, (__u64)a.rate, (__u64)(a.burst > 0 ? a.burst : a.rate));
	if (a.key) {
		if (cpn_key_parse(a.key, t.key))
			bad_usage("--key: expected 32 hex digits");
		t.flags |= CPN_TENANT_KEY;
	}
	open_maps(&m);
	err = cpn_maps_set_tenant(&m, id, &t);
	if (err)
		fail(err, "tenant %u", id);
	cpn_maps_close(&m);
	return 0;
}

/* ---- port ------------------------------------------------------------ */

static void no_opt(void *ctx, int idx, const char *arg)
{
	(void)ctx;
	(void)idx;
	(void)arg;
}

static int cmd_port(int argc, char **argv)
{
	static const struct option opts[] = {{0}};
	struct cpn_maps m;
	unsigned int ifindex;
	char **pos;
	int err;

	pos = parse(argc, argv, opts, 1, no_opt, NULL);
	ifindex = if_nametoindex(pos[0]);
	if (!ifindex)
		fail(errno, "port %s", pos[0]);
	open_maps(&m);
	err = cpn_maps_add_port(&m, (int)ifindex);
	if (err)
		fail(err, "port %s (ifindex %u)", pos[0], ifindex);
	cpn_maps_close(&m);
	return 0;
}

/* ---- report ---------------------------------------------------------- */

static void report_opt(void *ctx, int idx, const char *arg)
{
	long long *v = ctx;
	static const char *const names[] = {"--queue", "--capacity", "--svc-us"};
	static const __u64 min[] = {0, 1, 1}, max[] = {65535, 65535, UINT32_MAX};

	v[idx] = (long long)num(arg, min[idx], max[idx], names[idx]);
}

static int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"queue", required_argument, 0, 0},
	    {"capacity", required_argument, 0, 0},
	    {"svc-us", required_argument, 0, 0},
	    {0},
	};
	long long v[3] = {-1, -1, -1};
	struct cpn_node_cfg nc;
	struct cpn_node *n;
	struct cpn_maps m;
	char **pos;
	__u16 id;
	int err;

	pos = parse(argc, argv, opts, 1, report_opt, v);
	id = (__u16)num(pos[0], 1, CPN_MAX_NODES - 1, "node id");
	if (v[0] < 0 || v[1] < 0 || v[2] < 0)
		bad_usage("report: --queue, --capacity and --svc-us are required");
	open_maps(&m);
	err = cpn_maps_get_node(&m, id, &nc);
	if (err == -ENOENT)
		fail(0, "report: node %u is not configured", id);
	if (err)
		fail(err, "report: node %u", id);
	/* As cpn_learn_load() and cpn_learn_svc() would record a LOAD
	 * arriving now; the time last, so that a reader that sees it fresh
	 * sees the rest.
	 */
	n = &m.state[id];
	n->queue_depth = (__u32)v[0];
	n->inflight = 0;
	n->capacity = (__u32)v[1];
	n->svc_us = (__u32)v[2];
	n->outstanding = 0;
	n->report_flags = (n->report_flags | CPN_REP_SVC_VALID) & ~CPN_REP_DRAINING;
	n->reports++;
	__atomic_store_n(&n->last_report_ns, cpn_now_ns(), __ATOMIC_RELEASE);
	cpn_maps_close(&m);
	return 0;
}

/* ---- stats ----------------------------------------------------------- */

static int cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {{0}};
	__u64 c[CPN_STAT_MAX];
	struct cpn_maps m;
	int err;

	parse(argc, argv, opts, 0, no_opt, NULL);
	open_maps(&m);
	err = cpn_maps_stats(&m, c);
	if (err)
		fail(err, "stats");
	for (int i = 0; i < CPN_STAT_MAX; i++)
		printf("%s=%" PRIu64 "\n", cpn_stat_names[i], (uint64_t)c[i]);
	cpn_maps_close(&m);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"pin-dir", required_argument, 0, 'p'},
	    {"help", no_argument, 0, 'h'},
	    {0},
	};
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = {
	    {"config", cmd_config}, {"node", cmd_node}, {"service", cmd_service},
	    {"tenant", cmd_tenant}, {"port", cmd_port}, {"report", cmd_report},
	    {"stats", cmd_stats},
	};
	int c;

	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pin_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc)
		bad_usage("no command");
	argc -= optind;
	argv += optind;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (!strcmp(argv[0], cmds[i].name)) {
			return cmds[i].fn(argc, argv);
		}
	}
	bad_usage("unknown command '%s'", argv[0]);
}
