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
 *
 * Every command takes --pin-dir DIR (default /sys/fs/bpf/cpn) and
 * --state-dir DIR (default /run/cpn). Exit codes: 0 ok, 1 runtime failure,
 * 2 usage error.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_link.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cpn/sched.h"
#include "cpn_router.skel.h"
#include "cpnctl.h"
#include "cpnctl_cmd.h"

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
    "options of every command:\n"
    "  --pin-dir DIR    where the router's maps are pinned (default " CPN_DEFAULT_PIN_DIR ")\n"
    "  --state-dir DIR  where cpnctl keeps the desired state (default " CPN_DEFAULT_STATE_DIR ")\n"
    "  -j, --json       JSON output (read commands)\n"
    "  -h, --help       this help, or the command's\n"
    "\n"
    "exit codes: 0 ok, 1 runtime failure, 2 usage error\n";

static const char *const usage_up =
    "usage: cpnctl up [--config FILE] [--skb-mode] [--pin-dir DIR] [--state-dir DIR]\n"
    "  Load bpf/cpn_router.bpf.o (built into cpnctl) and pin it under DIR, or adopt\n"
    "  what `bpftool prog loadall ... pinmaps DIR` pinned there; attach cpn_xdp to\n"
    "  the config's interfaces in driver (native) mode, falling back to generic mode\n"
    "  with a warning (--skb-mode asks for generic); apply FILE. Running it again\n"
    "  changes nothing that is already so.\n";
static const char *const usage_apply =
    "usage: cpnctl apply --config FILE [--pin-dir DIR] [--state-dir DIR]\n"
    "  Validate FILE whole (any error: exit 2 with FILE:LINE, nothing changes), then\n"
    "  change only what differs, in an order no packet sees half-done.\n";
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
static const char *const usage_status = "usage: cpnctl status [-j] [--pin-dir DIR]\n";
static const char *const usage_stats = "usage: cpnctl stats [-j] [--pin-dir DIR]\n";
const char *const cpnctl_usage_daemon =
    "usage: cpnctl daemon [--metrics ADDR:PORT] [--config FILE] [--probe-ms N]\n"
    "                     [--pin-dir DIR] [--state-dir DIR]\n"
    "  Watch node liveness, probe idle nodes, admit nodes that announce themselves\n"
    "  from an auto_join prefix and retire them when silent, reload FILE on SIGHUP,\n"
    "  serve Prometheus /metrics (default from the config, else " CPN_DEFAULT_METRICS ").\n";

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
    {0, 0, 0, 0},
};

/* Every option a command may get; which ones it accepts is its own check. */
struct opts {
	const char *pin_dir, *state_dir, *config, *metrics;
	bool json, help, skb;
	const char *id, *vip, *port, *policy, *nodes, *max_wait, *max_queue, *stale, *dataplane;
	const char *weight, *key, *services, *rate, *burst, *probe_ms;
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

/* ---- the controller's hold -------------------------------------------- */

static const char *cpnctl_pin_dir(const struct opts *o)
{
	return o->pin_dir ? o->pin_dir : CPN_DEFAULT_PIN_DIR;
}

static const char *cpnctl_state_dir(const struct opts *o)
{
	return o->state_dir ? o->state_dir : CPN_DEFAULT_STATE_DIR;
}

/* Open, lock and load: the start of every change. */
static int begin(const struct opts *o, struct cpn_ctl *ctl, struct cpn_cfg *cfg)
{
	struct cpn_err err;

	if (cpn_ctl_open(ctl, cpnctl_pin_dir(o), cpnctl_state_dir(o), &err))
		return cpnctl_fail("%s", err.msg);
	if (cpn_ctl_lock(ctl, &err) || cpn_ctl_load(ctl, cfg, &err)) {
		cpn_ctl_close(ctl);
		return cpnctl_fail("%s", err.msg);
	}
	return 0;
}

/* Commit and close: the end of every change. A config that does not
 * validate is the user's error (2), anything else a failure (1).
 */
static int finish(struct cpn_ctl *ctl, struct cpn_cfg *cfg)
{
	struct cpn_err err;
	int rc = CPN_EXIT_OK;

	if (cpn_cfg_validate(cfg, &err))
		rc = cpnctl_usage("", "%s", err.msg);
	else if (cpn_ctl_commit(ctl, cfg, &err))
		rc = cpnctl_fail("%s", err.msg);
	cpn_ctl_unlock(ctl);
	cpn_ctl_close(ctl);
	cpn_cfg_free(cfg);
	return rc;
}

static void abandon(struct cpn_ctl *ctl, struct cpn_cfg *cfg)
{
	cpn_ctl_unlock(ctl);
	cpn_ctl_close(ctl);
	cpn_cfg_free(cfg);
}

/* ---- XDP attachment --------------------------------------------------- */

/* Attach the router to one interface: driver mode, generic as a fallback
 * with a warning. Already attached: nothing to do. Another program: refuse.
 */
static int attach(int prog_fd, const char *ifname, bool skb)
{
	int ifindex = (int)if_nametoindex(ifname);
	__u32 cur = 0, mine = cpn_prog_id(prog_fd);
	int err;

	if (!ifindex)
		return cpnctl_fail("interface %s: no such device", ifname);
	if (!bpf_xdp_query_id(ifindex, 0, &cur) && cur) {
		if (cur == mine)
			return 0;
		return cpnctl_fail("interface %s already has XDP program id %u that is not cpn's; "
				   "detach it (ip link set dev %s xdp off) and run again",
				   ifname, cur, ifname);
	}
	if (!skb) {
		err = bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_DRV_MODE, NULL);
		if (!err)
			return 0;
		fprintf(stderr,
			"cpnctl: warning: %s: native XDP refused (%s); attaching in generic mode, "
			"which is much slower\n",
			ifname, strerror(-err));
	}
	err = bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_SKB_MODE, NULL);
	if (err)
		return cpnctl_fail("cannot attach XDP to %s: %s", ifname, strerror(-err));
	return 0;
}

/* Detach the router from an interface if, and only if, it is ours. */
static void detach(__u32 mine, const char *ifname)
{
	int ifindex = (int)if_nametoindex(ifname);
	__u32 cur = 0;
	LIBBPF_OPTS(bpf_xdp_attach_opts, xo);

	if (!ifindex || bpf_xdp_query_id(ifindex, 0, &cur) || cur != mine || !mine)
		return;
	/* Both modes: whichever it is attached in. */
	bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, &xo);
	bpf_xdp_detach(ifindex, XDP_FLAGS_SKB_MODE, &xo);
}

/* Bring the attachments and the devmap to cfg's interfaces; `old` are the
 * interfaces of the previous desired state (detached if no longer listed).
 */
static int sync_ifaces(struct cpn_ctl *ctl, const struct cpn_cfg *old, const struct cpn_cfg *cfg,
		       bool skb)
{
	int fd = cpn_pinned_prog_fd(ctl->pin_dir);
	__u32 mine;
	int rc = 0;

	if (fd < 0)
		return cpnctl_fail("no cpn_xdp program pinned at %s/progs: run 'cpnctl up'",
				   ctl->pin_dir);
	mine = cpn_prog_id(fd);
	for (int i = 0; i < cfg->n_ifaces && !rc; i++) {
		rc = attach(fd, cfg->ifaces[i], skb);
		if (!rc && cpn_maps_add_port(&ctl->maps, (int)if_nametoindex(cfg->ifaces[i])))
			rc = cpnctl_fail("cannot add %s to cpn_tx_ports: %s", cfg->ifaces[i],
					 strerror(errno));
	}
	for (int i = 0; old && i < old->n_ifaces && !rc; i++) {
		bool kept = false;

		for (int k = 0; k < cfg->n_ifaces; k++)
			kept |= !strcmp(old->ifaces[i], cfg->ifaces[k]);
		if (kept)
			continue;
		detach(mine, old->ifaces[i]);
		if (if_nametoindex(old->ifaces[i]))
			cpn_maps_del_port(&ctl->maps, (int)if_nametoindex(old->ifaces[i]));
	}
	close(fd);
	return rc;
}

/* ---- up, apply, down ---------------------------------------------------- */

/* Nodes the daemon admitted stay when a file is applied, as long as the
 * file's auto_join still covers them and does not define the id itself.
 */
static int keep_joined(struct cpn_cfg *want, const struct cpn_cfg *cur)
{
	if (!want->has_auto_join)
		return 0;
	for (int i = 0; i < cur->n_nodes; i++) {
		const struct cfg_node *n = &cur->nodes[i];

		if (!n->joined || cpn_cfg_node(want, n->id) || !cpn_cfg_join_allowed(want, n))
			continue;
		if (cpn_cfg_add_joined(want, n))
			return -1;
	}
	return 0;
}

static int load_or_adopt(const char *pin_dir, bool *loaded)
{
	char progs[512], note[512];
	struct cpn_router *skel;
	struct cpn_maps m;
	int err;

	*loaded = false;
	if (!cpn_maps_open_pinned(&m, pin_dir)) {
		cpn_maps_close(&m);
		int fd = cpn_pinned_prog_fd(pin_dir);

		if (fd < 0)
			return cpnctl_fail("maps are pinned at %s but not the program "
					   "(%s/progs/cpn_xdp): run 'cpnctl down' and 'cpnctl up'",
					   pin_dir, pin_dir);
		close(fd);
		return 0; /* adopted */
	}
	if (cpn_bpffs_prepare(pin_dir, note, sizeof(note)))
		return cpnctl_fail("cannot pin under %s: %s", pin_dir, note);
	if (note[0])
		fprintf(stderr, "cpnctl: %s\n", note);
	if (mkdir(pin_dir, 0755) && errno != EEXIST)
		return cpnctl_fail("cannot create %s: %s", pin_dir, strerror(errno));
	skel = cpn_router__open_and_load();
	if (!skel)
		return cpnctl_fail("cannot load the XDP program: %s (see the verifier log above)",
				   strerror(errno));
	err = bpf_object__pin_maps(skel->obj, pin_dir);
	snprintf(progs, sizeof(progs), "%s/progs", pin_dir);
	if (!err && mkdir(progs, 0755) && errno != EEXIST)
		err = -errno;
	snprintf(progs, sizeof(progs), "%s/progs/cpn_xdp", pin_dir);
	if (!err)
		err = bpf_program__pin(skel->progs.cpn_xdp, progs);
	if (err) {
		bpf_object__unpin_maps(skel->obj, pin_dir);
		cpn_router__destroy(skel);
		return cpnctl_fail("cannot pin under %s: %s", pin_dir, strerror(-err));
	}
	cpn_router__destroy(skel); /* the pins keep it alive */
	*loaded = true;
	return 0;
}

static int cmd_up(struct opts *o)
{
	struct cpn_cfg cur, want;
	struct cpn_ctl ctl;
	struct cpn_err err;
	bool loaded;
	int rc;

	if (o->help)
		return cpnctl_help(usage_up);
	if ((rc = only(o, ALLOW(OPT_SKB), usage_up)))
		return rc;
	if (o->n_args)
		return cpnctl_usage(usage_up, "unexpected argument '%s'", o->args[0]);
	if (o->config && cpn_cfg_load(o->config, &want, &err))
		return cpnctl_usage("", "%s", err.msg);
	if (o->config)
		cpn_cfg_warn_unusable(&want, stderr);
	else
		cpn_cfg_init(&want);
	if ((rc = load_or_adopt(cpnctl_pin_dir(o), &loaded))) {
		cpn_cfg_free(&want);
		return rc;
	}
	if ((rc = begin(o, &ctl, &cur))) {
		cpn_cfg_free(&want);
		return rc;
	}
	if (!o->config) { /* up alone: keep what is desired now */
		cpn_cfg_free(&want);
		if (cpn_cfg_copy(&want, &cur)) {
			abandon(&ctl, &cur);
			return cpnctl_fail("out of memory");
		}
	} else if (keep_joined(&want, &cur)) {
		abandon(&ctl, &cur);
		cpn_cfg_free(&want);
		return cpnctl_fail("out of memory");
	}
	rc = sync_ifaces(&ctl, &cur, &want, o->skb);
	cpn_cfg_free(&cur);
	if (rc) {
		abandon(&ctl, &want);
		return rc;
	}
	rc = finish(&ctl, &want);
	if (!rc)
		printf("cpn router %s at %s\n", loaded ? "loaded and pinned" : "adopted",
		       cpnctl_pin_dir(o));
	return rc;
}

int cpnctl_apply_file(const char *pin_dir, const char *state_dir, const char *path)
{
	struct opts o = {.pin_dir = pin_dir, .state_dir = state_dir};
	struct cpn_cfg cur, want;
	struct cpn_ctl ctl;
	struct cpn_err err;
	int rc;

	if (cpn_cfg_load(path, &want, &err))
		return cpnctl_usage("", "%s", err.msg);
	cpn_cfg_warn_unusable(&want, stderr);
	if ((rc = begin(&o, &ctl, &cur))) {
		cpn_cfg_free(&want);
		return rc;
	}
	if (keep_joined(&want, &cur)) {
		cpn_cfg_free(&cur);
		abandon(&ctl, &want);
		return cpnctl_fail("out of memory");
	}
	rc = sync_ifaces(&ctl, &cur, &want, false);
	cpn_cfg_free(&cur);
	if (rc) {
		abandon(&ctl, &want);
		return rc;
	}
	return finish(&ctl, &want);
}

static int cmd_apply(struct opts *o)
{
	int rc;

	if (o->help)
		return cpnctl_help(usage_apply);
	if ((rc = only(o, 0, usage_apply)))
		return rc;
	if (!o->config)
		return cpnctl_usage(usage_apply, "apply needs --config FILE");
	if (o->n_args)
		return cpnctl_usage(usage_apply, "unexpected argument '%s'", o->args[0]);
	return cpnctl_apply_file(cpnctl_pin_dir(o), cpnctl_state_dir(o), o->config);
}

static int cmd_down(struct opts *o)
{
	const char *pin_dir = cpnctl_pin_dir(o);
	struct cpn_ctl ctl;
	struct cpn_cfg cur;
	struct cpn_err err;
	char path[1024];
	__u32 mine = 0;
	int fd, rc;

	if (o->help)
		return cpnctl_help(usage_down);
	if ((rc = only(o, 0, usage_down)))
		return rc;
	if (o->n_args)
		return cpnctl_usage(usage_down, "unexpected argument '%s'", o->args[0]);
	fd = cpn_pinned_prog_fd(pin_dir);
	if (fd >= 0) {
		mine = cpn_prog_id(fd);
		close(fd);
	}
	if (!cpn_ctl_open(&ctl, pin_dir, cpnctl_state_dir(o), &err)) {
		cpn_ctl_lock(&ctl, &err);
		if (!cpn_ctl_load(&ctl, &cur, &err)) {
			for (int i = 0; i < cur.n_ifaces; i++)
				detach(mine, cur.ifaces[i]);
			cpn_cfg_free(&cur);
		}
		unlink(ctl.state_path);
		cpn_ctl_unlock(&ctl);
		cpn_ctl_close(&ctl);
	}
	/* Any other interface the pinned program is attached to is ours too. */
	if (mine) {
		struct if_nameindex *ifs = if_nameindex();

		for (struct if_nameindex *i = ifs; i && i->if_index; i++)
			detach(mine, i->if_name);
		if (ifs)
			if_freenameindex(ifs);
	}
	/* The pin directory is cpn's own: every pin in it and in progs/ goes. */
	for (int pass = 0; pass < 2; pass++) {
		char dir[512];
		DIR *dp;
		struct dirent *de;

		snprintf(dir, sizeof(dir), pass ? "%s" : "%s/progs", pin_dir);
		dp = opendir(dir);
		while (dp && (de = readdir(dp))) {
			if (de->d_type != DT_REG)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
		if (dp)
			closedir(dp);
		if (!pass)
			rmdir(dir);
	}
	if (rmdir(pin_dir) && errno != ENOENT)
		fprintf(stderr, "cpnctl: %s is not empty: left in place\n", pin_dir);
	printf("cpn router at %s is down\n", pin_dir);
	return CPN_EXIT_OK;
}

/* ---- service, node, tenant -------------------------------------------- */

static int split_ids(const char *list, __u16 *out, int max, unsigned long maxval)
{
	char buf[1024], *save = NULL, *tok;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		__u32 v;

		if (n >= max || cpn_parse_u32(tok, 0, maxval, &v))
			return -1;
		out[n++] = (__u16)v;
	}
	return n;
}

static int cmd_service(struct opts *o)
{
	const char *verb = o->n_args ? o->args[0] : NULL;
	struct cpn_cfg cfg;
	struct cpn_ctl ctl;
	int rc;

	if (o->help || !verb)
		return o->help ? cpnctl_help(usage_service)
			       : cpnctl_usage(usage_service, "service needs add, del or list");
	if (!strcmp(verb, "list")) {
		if ((rc = only(o, 0, usage_service)))
			return rc;
		if (o->n_args != 1)
			return cpnctl_usage(usage_service, "unexpected argument '%s'", o->args[1]);
		return cpnctl_show(o->pin_dir, o->state_dir, CPNCTL_SHOW_SERVICES, o->json);
	}
	if (!strcmp(verb, "add")) {
		struct cfg_service s = {0};
		__u32 v;

		rc = only(o,
			  ALLOW(OPT_ID) | ALLOW(OPT_VIP) | ALLOW(OPT_PORT) | ALLOW(OPT_POLICY) |
			      ALLOW(OPT_NODES) | ALLOW(OPT_MAX_WAIT) | ALLOW(OPT_MAX_QUEUE) |
			      ALLOW(OPT_STALE) | ALLOW(OPT_DATAPLANE),
			  usage_service);
		if (rc)
			return rc;
		if (o->n_args != 2)
			return cpnctl_usage(usage_service, "service add needs exactly one NAME");
		if (strlen(o->args[1]) >= sizeof(s.name) || !*o->args[1])
			return cpnctl_usage(usage_service,
					    "service name '%s' must be 1..%zu characters",
					    o->args[1], sizeof(s.name) - 1);
		snprintf(s.name, sizeof(s.name), "%s", o->args[1]);
		if (!o->id || cpn_parse_u32(o->id, 0, CPN_MAX_SERVICES - 1, &v))
			return cpnctl_usage(usage_service, "--id must be 0..%d",
					    CPN_MAX_SERVICES - 1);
		s.id = (__u16)v;
		if (!o->vip || cpn_addr_parse(o->vip, s.vip, &s.family))
			return cpnctl_usage(usage_service, "--vip must be an IPv4 or IPv6 address");
		if (!o->port || cpn_parse_u32(o->port, 0, 65535, &v) || !v)
			return cpnctl_usage(usage_service, "--port must be 1..65535");
		s.port = htons((__u16)v);
		s.policy = CPN_POL_P2C;
		if (o->policy) {
			int p = cpn_policy_parse(o->policy);

			if (p < 0)
				return cpnctl_usage(usage_service, "unknown policy '%s'",
						    o->policy);
			s.policy = (__u8)p;
		}
		if (o->nodes) {
			s.n_nodes =
			    split_ids(o->nodes, s.nodes, CPN_MAX_SVC_NODES, CPN_MAX_NODES - 1);
			if (s.n_nodes < 0)
				return cpnctl_usage(usage_service,
						    "--nodes is a list of at most %d node ids",
						    CPN_MAX_SVC_NODES);
		}
		s.stale_ms = CPN_DEFAULT_STALE_MS;
		if (o->max_wait && cpn_parse_u32(o->max_wait, 0, 0xffffffffUL, &s.max_wait_us))
			return cpnctl_usage(usage_service, "--max-wait-us must be a number");
		if (o->max_queue && cpn_parse_u32(o->max_queue, 0, 0xffffffffUL, &s.max_queue))
			return cpnctl_usage(usage_service, "--max-queue must be a number");
		if (o->stale &&
		    (cpn_parse_u32(o->stale, 0, 0xffffffffUL, &s.stale_ms) || !s.stale_ms))
			return cpnctl_usage(usage_service, "--stale-ms must be at least 1");
		if (o->dataplane) {
			if (strcmp(o->dataplane, "xdp") && strcmp(o->dataplane, "dpdk"))
				return cpnctl_usage(usage_service, "--dataplane is xdp or dpdk");
			s.dpdk = !strcmp(o->dataplane, "dpdk");
		}
		if ((rc = begin(o, &ctl, &cfg)))
			return rc;
		if (cpn_cfg_service(&cfg, s.id) || cpn_cfg_service_by_name(&cfg, s.name)) {
			abandon(&ctl, &cfg);
			return cpnctl_fail(
			    "service %s or id %u exists: 'cpnctl service del' it first", s.name,
			    s.id);
		}
		if (cpn_cfg_put_service(&cfg, &s)) {
			abandon(&ctl, &cfg);
			return cpnctl_fail("out of memory");
		}
		return finish(&ctl, &cfg);
	}
	if (!strcmp(verb, "del")) {
		const struct cfg_service *s;

		if ((rc = only(o, 0, usage_service)))
			return rc;
		if (o->n_args != 2)
			return cpnctl_usage(usage_service, "service del needs one NAME or ID");
		if ((rc = begin(o, &ctl, &cfg)))
			return rc;
		s = cpn_cfg_service_by_name(&cfg, o->args[1]);
		if (!s) {
			__u32 v;

			if (!cpn_parse_u32(o->args[1], 0, CPN_MAX_SERVICES - 1, &v))
				s = cpn_cfg_service(&cfg, (__u16)v);
		}
		if (!s) {
			abandon(&ctl, &cfg);
			return cpnctl_fail("no service '%s' (see 'cpnctl service list')",
					   o->args[1]);
		}
		cpn_cfg_del_service(&cfg, s->id);
		return finish(&ctl, &cfg);
	}
	return cpnctl_usage(usage_service, "unknown service command '%s'", verb);
}

static int node_id_arg(const struct opts *o, __u16 *id)
{
	__u32 v;

	if (o->n_args < 2 || cpn_parse_u32(o->args[1], 0, CPN_MAX_NODES - 1, &v) || !v)
		return cpnctl_usage(usage_node, "node ID must be 1..%d", CPN_MAX_NODES - 1);
	*id = (__u16)v;
	return 0;
}

static int cmd_node(struct opts *o)
{
	const char *verb = o->n_args ? o->args[0] : NULL;
	struct cpn_cfg cfg;
	struct cpn_ctl ctl;
	__u16 id;
	int rc;

	if (o->help || !verb)
		return o->help ? (cpnctl_help(usage_node))
			       : cpnctl_usage(usage_node,
					      "node needs add, del, drain, undrain or list");
	if (!strcmp(verb, "list")) {
		if ((rc = only(o, 0, usage_node)))
			return rc;
		if (o->n_args != 1)
			return cpnctl_usage(usage_node, "unexpected argument '%s'", o->args[1]);
		return cpnctl_show(o->pin_dir, o->state_dir, CPNCTL_SHOW_NODES, o->json);
	}
	if (!strcmp(verb, "add")) {
		struct cfg_node n = {0};
		__u32 w = CPN_DEFAULT_WEIGHT;

		if ((rc = only(o, ALLOW(OPT_WEIGHT) | ALLOW(OPT_KEY) | ALLOW(OPT_SERVICE),
			       usage_node)))
			return rc;
		if ((rc = node_id_arg(o, &id)))
			return rc;
		if (o->n_args != 3)
			return cpnctl_usage(usage_node, "node add needs ID and ADDR:PORT");
		n.id = id;
		if (cpn_addr_port_parse(o->args[2], n.addr, &n.port, &n.family))
			return cpnctl_usage(
			    usage_node,
			    "'%s' is not ADDR:PORT (e.g. 10.1.0.2:7470, [fd01::2]:7470)",
			    o->args[2]);
		if (o->weight && (cpn_parse_u32(o->weight, 0, 1000, &w) || !w))
			return cpnctl_usage(usage_node, "--weight must be 1..1000");
		n.weight = w;
		if (o->key) {
			if (cpn_key_parse(o->key, n.key))
				return cpnctl_usage(usage_node, "--key must be 32 hex digits");
			n.has_key = true;
		}
		if ((rc = begin(o, &ctl, &cfg)))
			return rc;
		if (cpn_cfg_node(&cfg, id)) {
			abandon(&ctl, &cfg);
			return cpnctl_fail("node %u exists: 'cpnctl node del %u' it first", id, id);
		}
		if (cpn_cfg_put_node(&cfg, &n)) {
			abandon(&ctl, &cfg);
			return cpnctl_fail("out of memory");
		}
		for (int i = 0; i < o->n_service; i++) {
			const struct cfg_service *s = cpn_cfg_service_by_name(&cfg, o->service[i]);

			if (!s) {
				abandon(&ctl, &cfg);
				return cpnctl_usage(usage_node, "no service '%s'", o->service[i]);
			}
			if (cpn_cfg_service_add_node((struct cfg_service *)s, id)) {
				abandon(&ctl, &cfg);
				return cpnctl_fail("service %s has %d nodes already", s->name,
						   CPN_MAX_SVC_NODES);
			}
		}
		return finish(&ctl, &cfg);
	}
	if (!strcmp(verb, "del") || !strcmp(verb, "drain") || !strcmp(verb, "undrain")) {
		struct cfg_node *n;

		if ((rc = only(o, 0, usage_node)))
			return rc;
		if ((rc = node_id_arg(o, &id)))
			return rc;
		if (o->n_args != 2)
			return cpnctl_usage(usage_node, "unexpected argument '%s'", o->args[2]);
		if ((rc = begin(o, &ctl, &cfg)))
			return rc;
		n = (struct cfg_node *)cpn_cfg_node(&cfg, id);
		if (!n) {
			abandon(&ctl, &cfg);
			return cpnctl_fail("no node %u (see 'cpnctl node list')", id);
		}
		if (!strcmp(verb, "del"))
			cpn_cfg_del_node(&cfg, id);
		else
			n->drain = !strcmp(verb, "drain");
		return finish(&ctl, &cfg);
	}
	return cpnctl_usage(usage_node, "unknown node command '%s'", verb);
}

static int cmd_tenant(struct opts *o)
{
	const char *verb = o->n_args ? o->args[0] : NULL;
	struct cpn_cfg cfg;
	struct cpn_ctl ctl;
	__u32 id;
	int rc;

	if (o->help || !verb)
		return o->help ? (cpnctl_help(usage_tenant))
			       : cpnctl_usage(usage_tenant, "tenant needs add, del or list");
	if (!strcmp(verb, "list")) {
		if ((rc = only(o, 0, usage_tenant)))
			return rc;
		if (o->n_args != 1)
			return cpnctl_usage(usage_tenant, "unexpected argument '%s'", o->args[1]);
		return cpnctl_show(o->pin_dir, o->state_dir, CPNCTL_SHOW_TENANTS, o->json);
	}
	if (o->n_args >= 2 && !strcmp(o->args[1], "any"))
		id = CPN_TENANT_ANY;
	else if (o->n_args < 2 || cpn_parse_u32(o->args[1], 0, CPN_TENANT_ANY - 1, &id))
		return cpnctl_usage(usage_tenant, "tenant ID must be a number or 'any'");
	if (!strcmp(verb, "add")) {
		struct cfg_tenant t = {0};
		char buf[2048], *save = NULL, *tok;
		uint64_t u64;

		rc = only(o,
			  ALLOW(OPT_SERVICES) | ALLOW(OPT_RATE) | ALLOW(OPT_BURST) | ALLOW(OPT_KEY),
			  usage_tenant);
		if (rc)
			return rc;
		if (o->n_args != 2)
			return cpnctl_usage(usage_tenant, "unexpected argument '%s'", o->args[2]);
		if (!o->services)
			return cpnctl_usage(usage_tenant,
					    "tenant add needs --services NAME[,NAME]");
		t.id = id;
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
		if ((rc = begin(o, &ctl, &cfg)))
			return rc;
		snprintf(buf, sizeof(buf), "%s", o->services);
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			const struct cfg_service *s = cpn_cfg_service_by_name(&cfg, tok);

			if (!s) {
				abandon(&ctl, &cfg);
				return cpnctl_usage(usage_tenant, "no service '%s'", tok);
			}
			t.services[t.n_services++] = s->id;
		}
		if (cpn_cfg_tenant(&cfg, id)) {
			abandon(&ctl, &cfg);
			return cpnctl_fail("tenant %u exists: 'cpnctl tenant del %u' it first", id,
					   id);
		}
		if (cpn_cfg_put_tenant(&cfg, &t)) {
			abandon(&ctl, &cfg);
			return cpnctl_fail("out of memory");
		}
		return finish(&ctl, &cfg);
	}
	if (!strcmp(verb, "del")) {
		if ((rc = only(o, 0, usage_tenant)))
			return rc;
		if (o->n_args != 2)
			return cpnctl_usage(usage_tenant, "unexpected argument '%s'", o->args[2]);
		if ((rc = begin(o, &ctl, &cfg)))
			return rc;
		if (!cpn_cfg_tenant(&cfg, id)) {
			abandon(&ctl, &cfg);
			return cpnctl_fail("no tenant %u (see 'cpnctl tenant list')", id);
		}
		cpn_cfg_del_tenant(&cfg, id);
		return finish(&ctl, &cfg);
	}
	return cpnctl_usage(usage_tenant, "unknown tenant command '%s'", verb);
}

static int cmd_status(struct opts *o)
{
	int rc;

	if (o->help)
		return cpnctl_help(usage_status);
	if ((rc = only(o, 0, usage_status)))
		return rc;
	if (o->n_args)
		return cpnctl_usage(usage_status, "unexpected argument '%s'", o->args[0]);
	return cpnctl_show(o->pin_dir, o->state_dir, CPNCTL_SHOW_STATUS, o->json);
}

static int cmd_stats(struct opts *o)
{
	int rc;

	if (o->help)
		return cpnctl_help(usage_stats);
	if ((rc = only(o, 0, usage_stats)))
		return rc;
	if (o->n_args)
		return cpnctl_usage(usage_stats, "unexpected argument '%s'", o->args[0]);
	return cpnctl_show(o->pin_dir, o->state_dir, CPNCTL_SHOW_STATS, o->json);
}

static int cmd_daemon_opts(struct opts *o)
{
	struct cpnctl_daemon_opts d = {0};
	__u32 v;
	int rc;

	if (o->help)
		return cpnctl_help(cpnctl_usage_daemon);
	if ((rc = only(o, ALLOW(OPT_METRICS) | ALLOW(OPT_PROBE_MS), cpnctl_usage_daemon)))
		return rc;
	if (o->n_args)
		return cpnctl_usage(cpnctl_usage_daemon, "unexpected argument '%s'", o->args[0]);
	d.pin_dir = cpnctl_pin_dir(o);
	d.state_dir = cpnctl_state_dir(o);
	d.config = o->config;
	d.metrics = o->metrics;
	d.probe_ms = 200;
	if (o->probe_ms) {
		if (cpn_parse_u32(o->probe_ms, 0, 3600000, &v) || !v)
			return cpnctl_usage(cpnctl_usage_daemon, "--probe-ms must be 1..3600000");
		d.probe_ms = v;
	}
	return cpnctl_daemon(&d);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct opts *);
	} cmds[] = {
	    {"up", cmd_up},	      {"apply", cmd_apply}, {"down", cmd_down},
	    {"service", cmd_service}, {"node", cmd_node},   {"tenant", cmd_tenant},
	    {"status", cmd_status},   {"stats", cmd_stats}, {"daemon", cmd_daemon_opts},
	};
	struct opts o = {0};
	const char *cmd = NULL;
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
	cmd = argv[first];
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmd, cmds[i].name))
			continue;
		/* The command's own words and options; globals already seen stay. */
		rc = parse_opts(argc - first, argv + first, &o, usage_main, false);
		if (rc)
			return rc;
		return cmds[i].fn(&o);
	}
	return cpnctl_usage(usage_main, "unknown command '%s'", cmd);
}
