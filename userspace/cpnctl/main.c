// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpnctl — the cpn routing controller.
 *
 *   cpnctl up [--config FILE]          load or adopt, attach, apply FILE
 *   cpnctl apply --config FILE         reconcile to FILE with no traffic dropped
 *   cpnctl down                        detach, unpin
 *   cpnctl service|node|tenant add|del|list ...   (node also: drain, undrain)
 *   cpnctl status [-j]                 services, nodes: liveness, load, latency, share
 *   cpnctl stats [-j]                  counters
 *   cpnctl daemon [--metrics ADDR:PORT] [--config FILE]
 *   cpnctl apply --etcd URL [--cluster NAME] --config FILE   publish FILE to etcd
 *   cpnctl daemon --etcd URL [--cluster NAME] [--router-name NAME]   follow etcd
 *   cpnctl status --etcd URL [--cluster NAME]   the revision every router runs
 *
 * Every command takes --pin-dir DIR (default /sys/fs/bpf/cpn) and
 * --state-dir DIR (default /run/cpn). Exit codes: 0 ok, 1 runtime failure,
 * 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "cpn/sched.h"
#include "cpnctl.h"
#include "cpnctl_cmd.h"
#include "ops.h"

/* ---- usage ------------------------------------------------------------ */

static const char *const usage_main =
    "usage: cpnctl [--pin-dir DIR] [--state-dir DIR] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  up [--config FILE] [--skb-mode]   load or adopt the router, attach XDP, apply FILE\n"
    "  apply --config FILE                reconcile the router to FILE, dropping no traffic\n"
    "  down                               detach and unpin what cpn owns\n"
    "  service add|del|list ...           services (a VIP:port, a policy, nodes)\n"
    "  node add|del|drain|undrain|list    worker nodes\n"
    "  tenant add|del|list ...            tenants (ACL, rate, key)\n"
    "  status [-j]                        services and nodes: liveness, load, latency, share\n"
    "  stats [-j]                         data plane counters\n"
    "  daemon [--metrics ADDR:PORT] [--config FILE]\n"
    "                                     staleness, probes, joins, SIGHUP reload, /metrics\n"
    "\n"
    "many routers, one configuration in etcd:\n"
    "  apply --etcd URL [--cluster NAME] --config FILE   validate FILE, publish it\n"
    "  daemon --etcd URL [--cluster NAME] [--router-name NAME]   follow it\n"
    "  status --etcd URL [--cluster NAME]   the revision every router runs\n"
    "\n"
    "options of every command:\n"
    "  --pin-dir DIR    where the router's maps are pinned (default " CPN_DEFAULT_PIN_DIR ")\n"
    "  --state-dir DIR  where cpnctl keeps the desired state (default " CPN_DEFAULT_STATE_DIR ")\n"
    "  -j, --json       JSON output (read commands)\n"
    "  -h, --help       this help, or the command's\n"
    "\n"
    "exit codes: 0 ok, 1 runtime failure, 2 usage error\n";

static const char *const usage_up =
    "usage: cpnctl up [--config FILE] [--skb-mode] [--object FILE] [--pin-dir DIR]\n"
    "                 [--state-dir DIR]\n"
    "  Load the router (cpn_router.bpf.o built into cpnctl, or --object FILE, the\n"
    "  installed one for instance) and pin it under DIR, or adopt\n"
    "  what `bpftool prog loadall ... pinmaps DIR` pinned there; attach cpn_xdp to\n"
    "  the config's interfaces in driver (native) mode, falling back to generic mode\n"
    "  with a warning (--skb-mode asks for generic); apply FILE. Running it again\n"
    "  changes nothing that is already so.\n";
static const char *const usage_apply =
    "usage: cpnctl apply --config FILE [--pin-dir DIR] [--state-dir DIR]\n"
    "       cpnctl apply --etcd URL[,URL...] [--cluster NAME] --config FILE\n"
    "  Validate FILE whole (any error: exit 2 with FILE:LINE, nothing changes), then\n"
    "  change only what differs, in an order no packet sees half-done.\n"
    "  With --etcd: validate FILE the same way, then publish it as the cluster's\n"
    "  configuration (/cpn/NAME/config, NAME default \"" CPN_FLEET_CLUSTER "\") in one etcd\n"
    "  transaction and print its revision; every router whose daemon follows the\n"
    "  cluster reconciles to it. Nothing changes on this machine.\n";
static const char *const usage_down =
    "usage: cpnctl down [--pin-dir DIR] [--state-dir DIR]\n"
    "  Detach cpn_xdp from the interfaces where it is attached, unpin the maps and\n"
    "  the program, forget the desired state. Leaves everything else alone.\n";
static const char *const usage_service =
    "usage: cpnctl service add NAME --id N --vip ADDR --port P [--policy P]\n"
    "                          [--nodes 1,2,3] [--max-wait-us N] [--max-queue N]\n"
    "                          [--stale-ms N] [--dataplane xdp|dpdk]\n"
    "       cpnctl service del NAME|ID\n"
    "       cpnctl service list [-j]\n"
    "  policies: p2c (default), least, maglev, random, round-robin\n";
static const char *const usage_node =
    "usage: cpnctl node add ID ADDR:PORT [--weight W] [--key HEX32] [--service NAME]...\n"
    "       cpnctl node del ID\n"
    "       cpnctl node drain ID | node undrain ID\n"
    "       cpnctl node list [-j]\n"
    "  `add --service NAME` also puts the node in that service's candidates; `del`\n"
    "  takes the node out of every service first.\n";
static const char *const usage_tenant = "usage: cpnctl tenant add ID|any --services NAME[,NAME...] "
					"[--rate R] [--burst B] [--key HEX32]\n"
					"       cpnctl tenant del ID|any\n"
					"       cpnctl tenant list [-j]\n";
static const char *const usage_status =
    "usage: cpnctl status [-j] [--pin-dir DIR] [--state-dir DIR]\n"
    "       cpnctl status --etcd URL[,URL...] [--cluster NAME] [-j] [--pin-dir DIR]\n"
    "                     [--state-dir DIR]\n"
    "  Services, nodes and interfaces: liveness, load, latency, share. Service names\n"
    "  come from the desired state: give the --state-dir that 'up' used.\n"
    "  With --etcd: first the cluster's configuration revision, the revision each\n"
    "  router runs (routers/NAME in etcd) and the one this router runs, then the\n"
    "  status of the router pinned at --pin-dir, if one is.\n";
static const char *const usage_stats = "usage: cpnctl stats [-j] [--pin-dir DIR]\n";
const char *const cpnctl_usage_daemon =
    "usage: cpnctl daemon [--metrics ADDR:PORT] [--config FILE] [--probe-ms N]\n"
    "                     [--pin-dir DIR] [--state-dir DIR]\n"
    "       cpnctl daemon --etcd URL[,URL...] [--cluster NAME] [--router-name NAME]\n"
    "                     [--lease-ttl S] [--metrics ADDR:PORT] [--probe-ms N] ...\n"
    "  Watch node liveness, probe idle nodes, admit nodes that announce themselves\n"
    "  from an auto_join prefix and retire them when silent, reload FILE on SIGHUP,\n"
    "  serve Prometheus /metrics (default from the config, else " CPN_DEFAULT_METRICS ").\n"
    "  With --etcd (instead of --config): follow the cluster's configuration in\n"
    "  etcd (/cpn/NAME/, NAME default \"" CPN_FLEET_CLUSTER "\"), reconciling the router to\n"
    "  every change; put the nodes auto_join admits under nodes/ and this router's\n"
    "  status under routers/NAME (default: the host name), with a lease of S seconds\n"
    "  (default 10) kept alive; take the nodes other routers admitted. When etcd\n"
    "  is away the router keeps what it runs and the daemon retries.\n";

int cpnctl_usage(const char *text, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fprintf(stderr, "cpnctl: ");
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fprintf(stderr, "\n");
	}
	fputs(text, stderr);
	return CPN_EXIT_USAGE;
}

int cpnctl_help(const char *text)
{
	fputs(text, stdout);
	return CPN_EXIT_OK;
}

int cpnctl_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cpnctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return CPN_EXIT_FAIL;
}

/* ---- options ---------------------------------------------------------- */

enum {
	OPT_PIN_DIR = 256,
	OPT_STATE_DIR,
	OPT_SKB,
	OPT_ID,
	OPT_VIP,
	OPT_PORT,
	OPT_POLICY,
	OPT_NODES,
	OPT_MAX_WAIT,
	OPT_MAX_QUEUE,
	OPT_STALE,
	OPT_DATAPLANE,
	OPT_WEIGHT,
	OPT_KEY,
	OPT_SERVICE,
	OPT_SERVICES,
	OPT_RATE,
	OPT_BURST,
	OPT_METRICS,
	OPT_PROBE_MS,
	OPT_OBJECT,
	OPT_ETCD,
	OPT_CLUSTER,
	OPT_ROUTER_NAME,
	OPT_LEASE_TTL,
};

static const struct option long_opts[] = {
    {"pin-dir", required_argument, 0, OPT_PIN_DIR},
    {"state-dir", required_argument, 0, OPT_STATE_DIR},
    {"config", required_argument, 0, 'c'},
    {"json", no_argument, 0, 'j'},
    {"help", no_argument, 0, 'h'},
    {"skb-mode", no_argument, 0, OPT_SKB},
    {"id", required_argument, 0, OPT_ID},
    {"vip", required_argument, 0, OPT_VIP},
    {"port", required_argument, 0, OPT_PORT},
    {"policy", required_argument, 0, OPT_POLICY},
    {"nodes", required_argument, 0, OPT_NODES},
    {"max-wait-us", required_argument, 0, OPT_MAX_WAIT},
    {"max-queue", required_argument, 0, OPT_MAX_QUEUE},
    {"stale-ms", required_argument, 0, OPT_STALE},
    {"dataplane", required_argument, 0, OPT_DATAPLANE},
    {"weight", required_argument, 0, OPT_WEIGHT},
    {"key", required_argument, 0, OPT_KEY},
    {"service", required_argument, 0, OPT_SERVICE},
    {"services", required_argument, 0, OPT_SERVICES},
    {"rate", required_argument, 0, OPT_RATE},
    {"burst", required_argument, 0, OPT_BURST},
    {"metrics", required_argument, 0, OPT_METRICS},
    {"probe-ms", required_argument, 0, OPT_PROBE_MS},
    {"object", required_argument, 0, OPT_OBJECT},
    {"etcd", required_argument, 0, OPT_ETCD},
    {"cluster", required_argument, 0, OPT_CLUSTER},
    {"router-name", required_argument, 0, OPT_ROUTER_NAME},
    {"lease-ttl", required_argument, 0, OPT_LEASE_TTL},
    {0, 0, 0, 0},
};

/* Every option a command may get; which ones it accepts is its own check. */
struct opts {
	const char *pin_dir, *state_dir, *config, *metrics;
	bool json, help, skb;
	const char *id, *vip, *port, *policy, *nodes, *max_wait, *max_queue, *stale, *dataplane;
	const char *weight, *key, *services, *rate, *burst, *probe_ms, *object;
	const char *etcd, *cluster, *router_name, *lease_ttl;
	const char *service[CPN_MAX_SERVICES];
	int n_service;
	unsigned seen; /* bit per OPT_* - 256 beyond the common ones */
	char **args;   /* positional arguments after the command words */
	int n_args;
};

/* Parse options into `o`. `global`: stop at the first word (the command);
 * otherwise options may stand anywhere among the command's words.
 */
static int parse_opts(int argc, char **argv, struct opts *o, const char *usage, bool global)
{
	int c;

	optind = 0; /* glibc: start afresh on a new argv */
	opterr = 0;
	while ((c = getopt_long(argc, argv, global ? "+c:jh" : "c:jh", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_PIN_DIR:
			o->pin_dir = optarg;
			break;
		case OPT_STATE_DIR:
			o->state_dir = optarg;
			break;
		case 'c':
			o->config = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			o->help = true;
			break;
		case OPT_SKB:
			o->skb = true;
			break;
		case OPT_ID:
			o->id = optarg;
			break;
		case OPT_VIP:
			o->vip = optarg;
			break;
		case OPT_PORT:
			o->port = optarg;
			break;
		case OPT_POLICY:
			o->policy = optarg;
			break;
		case OPT_NODES:
			o->nodes = optarg;
			break;
		case OPT_MAX_WAIT:
			o->max_wait = optarg;
			break;
		case OPT_MAX_QUEUE:
			o->max_queue = optarg;
			break;
		case OPT_STALE:
			o->stale = optarg;
			break;
		case OPT_DATAPLANE:
			o->dataplane = optarg;
			break;
		case OPT_WEIGHT:
			o->weight = optarg;
			break;
		case OPT_KEY:
			o->key = optarg;
			break;
		case OPT_SERVICE:
			if (o->n_service >= CPN_MAX_SERVICES)
				return cpnctl_usage(usage, "too many --service");
			o->service[o->n_service++] = optarg;
			break;
		case OPT_SERVICES:
			o->services = optarg;
			break;
		case OPT_RATE:
			o->rate = optarg;
			break;
		case OPT_BURST:
			o->burst = optarg;
			break;
		case OPT_METRICS:
			o->metrics = optarg;
			break;
		case OPT_PROBE_MS:
			o->probe_ms = optarg;
			break;
		case OPT_OBJECT:
			o->object = optarg;
			break;
		case OPT_ETCD:
			o->etcd = optarg;
			break;
		case OPT_CLUSTER:
			o->cluster = optarg;
			break;
		case OPT_ROUTER_NAME:
			o->router_name = optarg;
			break;
		case OPT_LEASE_TTL:
			o->lease_ttl = optarg;
			break;
		case '?':
		default:
			if (optopt)
				return cpnctl_usage(
				    usage, "option '-%c' is unknown or lacks its value", optopt);
			return cpnctl_usage(usage, "option '%s' is unknown or lacks its value",
					    argv[optind - 1]);
		}
		if (c >= OPT_PIN_DIR)
			o->seen |= 1u << (c - OPT_PIN_DIR);
	}
	o->args = argv + optind;
	o->n_args = argc - optind;
	return 0;
}

/* Options beyond --pin-dir/--state-dir/-j/-h/-c that a command allows. */
static int only(const struct opts *o, unsigned allowed, const char *usage)
{
	unsigned extra =
	    o->seen & ~allowed &
	    ~((1u << (OPT_PIN_DIR - OPT_PIN_DIR)) | (1u << (OPT_STATE_DIR - OPT_PIN_DIR)));

	if (extra) {
		for (const struct option *lo = long_opts; lo->name; lo++)
			if (lo->val >= OPT_PIN_DIR && (extra & (1u << (lo->val - OPT_PIN_DIR))))
				return cpnctl_usage(usage, "option --%s does not apply here",
						    lo->name);
	}
	return 0;
}
#define ALLOW(x) (1u << ((x)-OPT_PIN_DIR))

/* ---- the commands ---------------------------------------------------- */

/* An operation's outcome as the command line says it. */
static int outcome(int rc, const struct cpn_err *err)
{
	if (rc)
		fprintf(stderr, "cpnctl: %s\n", err->msg);
	return rc;
}

/* The security gaps of a configuration file that was just taken. */
static void warn_file(const char *path, int routers)
{
	struct cpn_cfg cfg;
	struct cpn_err err;

	if (!path || cpn_cfg_load(path, &cfg, &err))
		return;
	cpnctl_warn_security(&cfg, routers);
	cpn_cfg_free(&cfg);
}

static int run_up(const struct opts *o, const struct cpn_dirs *d)
{
	struct cpn_err err;
	bool loaded;
	int rc = cpn_op_up(d, o->config, o->object, o->skb, &loaded, &err);

	if (!rc)
		printf("cpn router %s at %s\n", loaded ? "loaded and pinned" : "adopted",
		       cpn_dirs_pin(d));
	if (!rc)
		warn_file(o->config, 1);
	return outcome(rc, &err);
}

/* --cluster and the options of etcd only with --etcd; a cluster name. */
static int etcd_opts(const struct opts *o, const char *usage)
{
	if (!o->etcd) {
		if (o->cluster || o->router_name || o->lease_ttl)
			return cpnctl_usage(usage, "--%s goes with --etcd URL",
					    o->cluster	     ? "cluster"
					    : o->router_name ? "router-name"
							     : "lease-ttl");
		return 0;
	}
	if (o->cluster && !cpn_fleet_name_ok(o->cluster))
		return cpnctl_usage(usage,
				    "--cluster '%s': 1..%d of letters, digits, '.', '_', '-' "
				    "(not starting with '.')",
				    o->cluster, CPN_FLEET_NAME_MAX - 1);
	return 0;
}

static int run_apply(const struct opts *o, const struct cpn_dirs *d)
{
	struct cpn_err err;
	int64_t rev = 0;
	int rc;

	if (!o->config)
		return cpnctl_usage(usage_apply, "apply needs --config FILE");
	if ((rc = etcd_opts(o, usage_apply)))
		return rc;
	if (!o->etcd) {
		rc = cpn_op_apply_file(d, o->config, &err);
		if (!rc)
			warn_file(o->config, 1);
		return outcome(rc, &err);
	}
	rc = cpn_op_publish(o->etcd, o->cluster, o->config, &rev, &err);
	if (!rc)
		printf("%s published to /cpn/%s/config: revision %lld\n", o->config,
		       o->cluster ? o->cluster : CPN_FLEET_CLUSTER, (long long)rev);
	if (!rc)
		warn_file(o->config, 2); /* a cluster: its routers must share a hop key */
	return outcome(rc, &err);
}

static int run_down(const struct opts *o, const struct cpn_dirs *d)
{
	struct cpn_err err;
	int rc = cpn_op_down(d, &err);

	(void)o;
	if (!rc)
		printf("cpn router at %s is down\n", cpn_dirs_pin(d));
	return outcome(rc, &err);
}

static int split_ids(const char *list, __u16 *out, int max, unsigned long maxval)
{
	char buf[1024], *save = NULL, *tok;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		__u32 v;

		if (n >= max || cpn_parse_u32(tok, 0, (__u32)maxval, &v))
			return -1;
		out[n++] = (__u16)v;
	}
	return n;
}

static int run_service_add(const struct opts *o, const struct cpn_dirs *d)
{
	struct cfg_service s = {0};
	struct cpn_err err;
	__u32 v;

	if (strlen(o->args[0]) >= sizeof(s.name) || !*o->args[0])
		return cpnctl_usage(usage_service, "service name '%s' must be 1..%zu characters",
				    o->args[0], sizeof(s.name) - 1);
	snprintf(s.name, sizeof(s.name), "%s", o->args[0]);
	if (!o->id || cpn_parse_u32(o->id, 0, CPN_MAX_SERVICES - 1, &v))
		return cpnctl_usage(usage_service, "--id must be 0..%d", CPN_MAX_SERVICES - 1);
	s.id = (__u16)v;
	if (!o->vip || cpn_addr_parse(o->vip, s.vip, &s.family))
		return cpnctl_usage(usage_service, "--vip must be an IPv4 or IPv6 address");
	if (!o->port || cpn_parse_u32(o->port, 1, 65535, &v))
		return cpnctl_usage(usage_service, "--port must be 1..65535");
	s.port = htons((__u16)v);
	s.policy = CPN_POL_P2C;
	if (o->policy) {
		int p = cpn_policy_parse(o->policy);

		if (p < 0)
			return cpnctl_usage(usage_service, "unknown policy '%s'", o->policy);
		s.policy = (__u8)p;
	}
	if (o->nodes) {
		s.n_nodes = split_ids(o->nodes, s.nodes, CPN_MAX_SVC_NODES, CPN_MAX_NODES - 1);
		if (s.n_nodes < 0)
			return cpnctl_usage(usage_service,
					    "--nodes is a list of at most %d node ids",
					    CPN_MAX_SVC_NODES);
	}
	s.stale_ms = CPN_DEFAULT_STALE_MS;
	if (o->max_wait && cpn_parse_u32(o->max_wait, 0, UINT32_MAX, &s.max_wait_us))
		return cpnctl_usage(usage_service, "--max-wait-us must be a number");
	if (o->max_queue && cpn_parse_u32(o->max_queue, 0, UINT32_MAX, &s.max_queue))
		return cpnctl_usage(usage_service, "--max-queue must be a number");
	if (o->stale && cpn_parse_u32(o->stale, 1, UINT32_MAX, &s.stale_ms))
		return cpnctl_usage(usage_service, "--stale-ms must be at least 1");
	if (o->dataplane) {
		if (strcmp(o->dataplane, "xdp") && strcmp(o->dataplane, "dpdk"))
			return cpnctl_usage(usage_service, "--dataplane is xdp or dpdk");
		s.dpdk = !strcmp(o->dataplane, "dpdk");
	}
	return outcome(cpn_op_service_add(d, &s, &err), &err);
}

static int run_service_del(const struct opts *o, const struct cpn_dirs *d)
{
	struct cpn_err err;

	return outcome(cpn_op_service_del(d, o->args[0], &err), &err);
}

static int node_id_arg(const char *s, __u16 *id)
{
	__u32 v;

	if (cpn_parse_u32(s, 1, CPN_MAX_NODES - 1, &v))
		return cpnctl_usage(usage_node, "node ID must be 1..%d", CPN_MAX_NODES - 1);
	*id = (__u16)v;
	return 0;
}

static int run_node_add(const struct opts *o, const struct cpn_dirs *d)
{
	struct cfg_node n = {0};
	struct cpn_err err;
	__u32 w = CPN_DEFAULT_WEIGHT;
	int rc;

	if ((rc = node_id_arg(o->args[0], &n.id)))
		return rc;
	if (cpn_addr_port_parse(o->args[1], n.addr, &n.port, &n.family))
		return cpnctl_usage(usage_node,
				    "'%s' is not ADDR:PORT (e.g. 10.1.0.2:7470, [fd01::2]:7470)",
				    o->args[1]);
	if (o->weight && cpn_parse_u32(o->weight, 1, 1000, &w))
		return cpnctl_usage(usage_node, "--weight must be 1..1000");
	n.weight = w;
	if (o->key) {
		if (cpn_key_parse(o->key, n.key))
			return cpnctl_usage(usage_node, "--key must be 32 hex digits");
		n.has_key = true;
	}
	rc = cpn_op_node_add(d, &n, o->service, o->n_service, &err);
	if (rc == CPN_EXIT_USAGE) /* a service named that does not exist */
		return cpnctl_usage(usage_node, "%s", err.msg);
	return outcome(rc, &err);
}

static int run_node_change(const struct opts *o, const struct cpn_dirs *d, int what)
{
	struct cpn_err err;
	__u16 id = 0;
	int rc;

	if ((rc = node_id_arg(o->args[0], &id)))
		return rc;
	rc = what ? cpn_op_node_drain(d, id, what == 1, &err) : cpn_op_node_del(d, id, &err);
	return outcome(rc, &err);
}

static int run_node_del(const struct opts *o, const struct cpn_dirs *d)
{
	return run_node_change(o, d, 0);
}

static int run_node_drain(const struct opts *o, const struct cpn_dirs *d)
{
	return run_node_change(o, d, 1);
}

static int run_node_undrain(const struct opts *o, const struct cpn_dirs *d)
{
	return run_node_change(o, d, 2);
}

static int tenant_id_arg(const char *s, __u32 *id)
{
	if (!strcmp(s, "any")) {
		*id = CPN_TENANT_ANY;
		return 0;
	}
	if (cpn_parse_u32(s, 0, CPN_TENANT_ANY - 1, id))
		return cpnctl_usage(usage_tenant, "tenant ID must be a number or 'any'");
	return 0;
}

static int run_tenant_add(const struct opts *o, const struct cpn_dirs *d)
{
	struct cfg_tenant t = {0};
	struct cpn_err err;
	uint64_t u64;
	int rc;

	if ((rc = tenant_id_arg(o->args[0], &t.id)))
		return rc;
	if (!o->services)
		return cpnctl_usage(usage_tenant, "tenant add needs --services NAME[,NAME]");
	if (o->rate && cpn_parse_u64(o->rate, 0, UINT64_MAX, &u64))
		return cpnctl_usage(usage_tenant, "--rate must be a number (requests/s)");
	t.rate = o->rate ? u64 : 0;
	t.burst = t.rate ? t.rate : 1;
	if (o->burst && cpn_parse_u64(o->burst, 1, UINT64_MAX, &u64))
		return cpnctl_usage(usage_tenant, "--burst must be at least 1");
	if (o->burst)
		t.burst = u64;
	if (o->key) {
		if (cpn_key_parse(o->key, t.key))
			return cpnctl_usage(usage_tenant, "--key must be 32 hex digits");
		t.has_key = true;
	}
	rc = cpn_op_tenant_add(d, &t, o->services, &err);
	if (rc == CPN_EXIT_USAGE) /* a service named that does not exist */
		return cpnctl_usage(usage_tenant, "%s", err.msg);
	return outcome(rc, &err);
}

static int run_tenant_del(const struct opts *o, const struct cpn_dirs *d)
{
	struct cpn_err err;
	__u32 id = 0;
	int rc;

	if ((rc = tenant_id_arg(o->args[0], &id)))
		return rc;
	return outcome(cpn_op_tenant_del(d, id, &err), &err);
}

static int show(const struct opts *o, const struct cpn_dirs *d, enum cpnctl_show what)
{
	return cpnctl_show(d->pin_dir, d->state_dir, what, o->json);
}

static int run_status(const struct opts *o, const struct cpn_dirs *d)
{
	int rc = etcd_opts(o, usage_status);

	if (rc)
		return rc;
	if (o->etcd)
		return cpnctl_show_fleet(o->etcd, o->cluster ? o->cluster : CPN_FLEET_CLUSTER,
					 d->pin_dir, d->state_dir, o->json);
	return show(o, d, CPNCTL_SHOW_STATUS);
}

static int run_stats(const struct opts *o, const struct cpn_dirs *d)
{
	return show(o, d, CPNCTL_SHOW_STATS);
}

static int run_service_list(const struct opts *o, const struct cpn_dirs *d)
{
	return show(o, d, CPNCTL_SHOW_SERVICES);
}

static int run_node_list(const struct opts *o, const struct cpn_dirs *d)
{
	return show(o, d, CPNCTL_SHOW_NODES);
}

static int run_tenant_list(const struct opts *o, const struct cpn_dirs *d)
{
	return show(o, d, CPNCTL_SHOW_TENANTS);
}

static int run_daemon(const struct opts *o, const struct cpn_dirs *d)
{
	struct cpnctl_daemon_opts dd = {0};
	__u32 v;
	int rc;

	dd.pin_dir = cpn_dirs_pin(d);
	dd.state_dir = cpn_dirs_state(d);
	dd.config = o->config;
	dd.metrics = o->metrics;
	dd.probe_ms = 200;
	if (o->probe_ms) {
		if (cpn_parse_u32(o->probe_ms, 1, 3600000, &v))
			return cpnctl_usage(cpnctl_usage_daemon, "--probe-ms must be 1..3600000");
		dd.probe_ms = v;
	}
	if ((rc = etcd_opts(o, cpnctl_usage_daemon)))
		return rc;
	if (o->etcd && o->config)
		return cpnctl_usage(
		    cpnctl_usage_daemon,
		    "--etcd and --config: the configuration comes from one of them "
		    "(publish a file with 'cpnctl apply --etcd URL --config FILE')");
	dd.etcd = o->etcd;
	dd.cluster = o->cluster ? o->cluster : CPN_FLEET_CLUSTER;
	dd.router_name = o->router_name;
	if (o->router_name && !cpn_fleet_name_ok(o->router_name))
		return cpnctl_usage(cpnctl_usage_daemon,
				    "--router-name '%s': 1..%d of letters, digits, '.', '_', '-' "
				    "(not starting with '.')",
				    o->router_name, CPN_FLEET_NAME_MAX - 1);
	dd.lease_ttl_s = CPN_FLEET_LEASE_TTL_S;
	if (o->lease_ttl) {
		if (cpn_parse_u32(o->lease_ttl, 2, 3600, &v))
			return cpnctl_usage(cpnctl_usage_daemon, "--lease-ttl must be 2..3600 (s)");
		dd.lease_ttl_s = v;
	}
	return cpnctl_daemon(&dd);
}

/* Every command: its words, usage, the options it takes beyond the common
 * ones, how many arguments follow the words (and what they are, for the
 * message when some are missing), and what runs it.
 */
static const struct cmd {
	const char *name, *verb; /* verb NULL: the command has none */
	const char *usage;
	unsigned allow;
	int min_args, max_args;
	const char *args;
	int (*run)(const struct opts *o, const struct cpn_dirs *d);
} cmds[] = {
    {"up", NULL, usage_up, ALLOW(OPT_SKB) | ALLOW(OPT_OBJECT), 0, 0, "", run_up},
    {"apply", NULL, usage_apply, ALLOW(OPT_ETCD) | ALLOW(OPT_CLUSTER), 0, 0, "", run_apply},
    {"down", NULL, usage_down, 0, 0, 0, "", run_down},
    {"service", "add", usage_service,
     ALLOW(OPT_ID) | ALLOW(OPT_VIP) | ALLOW(OPT_PORT) | ALLOW(OPT_POLICY) | ALLOW(OPT_NODES) |
	 ALLOW(OPT_MAX_WAIT) | ALLOW(OPT_MAX_QUEUE) | ALLOW(OPT_STALE) | ALLOW(OPT_DATAPLANE),
     1, 1, "exactly one NAME", run_service_add},
    {"service", "del", usage_service, 0, 1, 1, "one NAME or ID", run_service_del},
    {"service", "list", usage_service, 0, 0, 0, "", run_service_list},
    {"node", "add", usage_node, ALLOW(OPT_WEIGHT) | ALLOW(OPT_KEY) | ALLOW(OPT_SERVICE), 2, 2,
     "ID and ADDR:PORT", run_node_add},
    {"node", "del", usage_node, 0, 1, 1, "an ID", run_node_del},
    {"node", "drain", usage_node, 0, 1, 1, "an ID", run_node_drain},
    {"node", "undrain", usage_node, 0, 1, 1, "an ID", run_node_undrain},
    {"node", "list", usage_node, 0, 0, 0, "", run_node_list},
    {"tenant", "add", usage_tenant,
     ALLOW(OPT_SERVICES) | ALLOW(OPT_RATE) | ALLOW(OPT_BURST) | ALLOW(OPT_KEY), 1, 1,
     "an ID or 'any'", run_tenant_add},
    {"tenant", "del", usage_tenant, 0, 1, 1, "an ID or 'any'", run_tenant_del},
    {"tenant", "list", usage_tenant, 0, 0, 0, "", run_tenant_list},
    {"status", NULL, usage_status, ALLOW(OPT_ETCD) | ALLOW(OPT_CLUSTER), 0, 0, "", run_status},
    {"stats", NULL, usage_stats, 0, 0, 0, "", run_stats},
    {"daemon", NULL, cpnctl_usage_daemon,
     ALLOW(OPT_METRICS) | ALLOW(OPT_PROBE_MS) | ALLOW(OPT_ETCD) | ALLOW(OPT_CLUSTER) |
	 ALLOW(OPT_ROUTER_NAME) | ALLOW(OPT_LEASE_TTL),
     0, 0, "", run_daemon},
};
#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

/* "add, del or list": the verbs of a command, for its messages. */
static void verbs_of(const char *name, char *buf, size_t len)
{
	int n = 0, k = 0;

	for (size_t i = 0; i < N_CMDS; i++)
		n += !strcmp(cmds[i].name, name);
	buf[0] = 0;
	for (size_t i = 0; i < N_CMDS; i++) {
		size_t l = strlen(buf);

		if (strcmp(cmds[i].name, name))
			continue;
		k++;
		snprintf(buf + l, len - l, "%s%s",
			 k == 1	  ? ""
			 : k == n ? " or "
				  : ", ",
			 cmds[i].verb);
	}
}

/* Find the command (and verb) in o's words and run it. */
static int dispatch(const char *name, struct opts *o)
{
	const struct cmd *c = NULL;
	struct cpn_dirs d = {o->pin_dir, o->state_dir};
	char verbs[128];
	int rc;

	for (size_t i = 0; i < N_CMDS && !c; i++)
		if (!strcmp(cmds[i].name, name))
			c = &cmds[i];
	if (!c)
		return cpnctl_usage(usage_main, "unknown command '%s'", name);
	if (c->verb) { /* a command of verbs: the first word picks one */
		const char *verb = o->n_args ? o->args[0] : NULL;
		const struct cmd *v = NULL;

		verbs_of(name, verbs, sizeof(verbs));
		if (!verb)
			return o->help ? cpnctl_help(c->usage)
				       : cpnctl_usage(c->usage, "%s needs %s", name, verbs);
		for (size_t i = 0; i < N_CMDS && !v; i++)
			if (!strcmp(cmds[i].name, name) && !strcmp(cmds[i].verb, verb))
				v = &cmds[i];
		if (!v)
			return cpnctl_usage(c->usage, "unknown %s command '%s'", name, verb);
		c = v;
		o->args++;
		o->n_args--;
	}
	if (o->help)
		return cpnctl_help(c->usage);
	if ((rc = only(o, c->allow, c->usage)))
		return rc;
	if (o->n_args < c->min_args)
		return cpnctl_usage(c->usage, "%s%s%s needs %s", name, c->verb ? " " : "",
				    c->verb ? c->verb : "", c->args);
	if (o->n_args > c->max_args)
		return cpnctl_usage(c->usage, "unexpected argument '%s'", o->args[c->max_args]);
	return c->run(o, &d);
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	int first, rc;

	/* Global options may come before the command. */
	if ((rc = parse_opts(argc, argv, &o, usage_main, true)))
		return rc;
	first = argc - o.n_args;
	if (o.n_args == 0) {
		if (o.help)
			return fputs(usage_main, stdout), CPN_EXIT_OK;
		return cpnctl_usage(usage_main, "a command is needed");
	}
	/* The command's own words and options; globals already seen stay. */
	rc = parse_opts(argc - first, argv + first, &o, usage_main, false);
	if (rc)
		return rc;
	return dispatch(argv[first], &o);
}
