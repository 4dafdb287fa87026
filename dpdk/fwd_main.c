// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-fwd: the DPDK data plane. The packet path is include/cpn/router.h,
 * the same as the XDP program's; fwd_loop.c runs it on the forwarding
 * lcores and carries out verdicts, fwd_env.c builds configuration
 * snapshots. This file: start-up, the control loop on the main lcore
 * (snapshot reloads, SIGHUP, stats) and the exit; fwd_ctl.h lists the rest.
 *
 * Exit status: 0 after SIGINT/SIGTERM, 1 when it cannot start, 2 on bad
 * EAL or cpn-fwd arguments.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "fwd_ctl.h"
#include "cpn_cfg.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct fwd_ctl ctl = {.ctl_lock = PTHREAD_MUTEX_INITIALIZER, .router_fd = -1, .lock_fd = -1};
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

static struct fwd_snap *build_snap(const struct fwd_snap *old, char *err, size_t errlen)
{
	struct fwd_snap *s;

	if (ctl.pin_dir)
		return fwd_snap_from_maps(&ctl.maps, old, ++ctl.gen, err, errlen);
	{
		struct cpn_cfg cfg;
		struct cpn_err e;

		if (cpn_cfg_load(ctl.config_path, &cfg, &e)) {
			snprintf(err, errlen, "%s", e.msg);
			return NULL;
		}
		s = fwd_snap_from_cfg(&cfg, ctl.state, old, ++ctl.gen, err, errlen);
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
	fwd_late_prepare(s);
	pthread_mutex_lock(&ctl.ctl_lock);
	atomic_store_explicit(&fwd.snap, s, memory_order_release);
	rte_rcu_qsbr_synchronize(fwd.qsv, RTE_QSBR_THRID_INVALID);
	fwd_snap_free(old);
	pthread_mutex_unlock(&ctl.ctl_lock);
	return 0;
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
			fwd_usage(prog);
			return EXIT_USAGE;
		}
		fprintf(stderr, "cpn-fwd: cannot initialise DPDK: %s\n", rte_strerror(rte_errno));
		return EXIT_FAIL;
	}
	argc -= rc;
	argv += rc;
	argv[0] = (char *)prog;
	if (fwd_parse_args(argc, argv)) {
		fwd_usage(prog);
		rte_eal_cleanup();
		return EXIT_USAGE;
	}
	fwd.neigh = fwd_neigh_table();
	if (!fwd.neigh) {
		fprintf(stderr, "cpn-fwd: cannot create the neighbour table: %s\n",
			rte_strerror(rte_errno));
		goto out;
	}
	if (fwd_add_neighbours(argc, argv)) {
		fwd_usage(prog);
		ret = EXIT_USAGE;
		goto out;
	}
	ctl.nb_queues = (__u16)rte_lcore_count() - 1;
	if (!ctl.nb_queues) {
		fprintf(stderr,
			"cpn-fwd: no worker lcore to forward on (-l: main plus at least one)\n");
		fwd_usage(prog);
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
		fwd_usage(prog);
		ret = EXIT_USAGE;
		goto out;
	}

	/* Node state: the XDP routers' mmaped array, or our own. */
	if (ctl.pin_dir) {
		rc = cpn_maps_open_pinned(&ctl.maps, ctl.pin_dir);
		if (rc == -EPROTO) {
			fprintf(stderr,
				"cpn-fwd: the router pinned at %s: " CPN_MAPS_LAYOUT_HINT "\n",
				ctl.pin_dir);
			goto out;
		}
		if (rc) {
			fprintf(stderr, "cpn-fwd: no cpn router pinned at %s: %s\n", ctl.pin_dir,
				strerror(-rc));
			goto out;
		}
		ctl.maps_open = true;
		ctl.state = ctl.maps.state;
		/* The router program, for the hand-off on net_af_xdp ports; none
		 * pinned: cpn-fwd follows the maps only.
		 */
		ctl.router_fd = cpn_pinned_prog_fd(ctl.pin_dir);
	} else {
		ctl.state = aligned_alloc(64, sizeof(struct cpn_node) * CPN_MAX_NODES);
		if (!ctl.state)
			goto oom;
		memset(ctl.state, 0, sizeof(struct cpn_node) * CPN_MAX_NODES);
	}
	ctl.seen = calloc(FWD_SEEN_SIZE, sizeof(*ctl.seen));
	ctl.tokens = calloc(CPN_MAX_SERVICES, sizeof(*ctl.tokens));
	fwd.late = fwd_late_new();
	if (!ctl.seen || !ctl.tokens || !fwd.late)
		goto oom;
	fwd.snap = build_snap(NULL, err, sizeof(err));
	if (!fwd.snap) {
		fprintf(stderr, "cpn-fwd: %s\n", err);
		goto out;
	}
	fwd_late_prepare(fwd.snap);

	qsz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
	fwd.qsv = aligned_alloc(RTE_CACHE_LINE_SIZE, RTE_ALIGN(qsz, RTE_CACHE_LINE_SIZE));
	if (!fwd.qsv || rte_rcu_qsbr_init(fwd.qsv, RTE_MAX_LCORE))
		goto oom;

	if (fwd_ports_setup())
		goto out;

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
		lc->env.state = ctl.state;
		lc->env.seen = ctl.seen;
		lc->env.tokens = ctl.tokens;
		lc->env.cnt = lc->cnt;
		lc->env.snap = fwd.snap;
		lc->env.rng = ctl.have_seed
				  ? fwd_rng_seed(ctl.seed, k)
				  : fwd_rng_seed(cpn_now_ns() ^ ((__u64)getpid() << 32), k);
		ctl.lc[ctl.n_lc++] = lc;
		k++;
	}

	fwd.state_private = !ctl.pin_dir && ctl.n_lc == 1;
	fwd_telemetry_register();
	if (fwd_metrics_start(err, sizeof(err))) {
		fprintf(stderr, "cpn-fwd: --metrics %s: %s\n", ctl.metrics, err);
		goto out;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	printf("cpn-fwd: %u ports, %u forwarding lcores, burst %u, %s %s\n", fwd.nb_ports, ctl.n_lc,
	       fwd.burst, ctl.pin_dir ? "pin-dir" : "config",
	       ctl.pin_dir ? ctl.pin_dir : ctl.config_path);
	fflush(stdout);
	for (unsigned int i = 0; i < ctl.n_lc; i++)
		rte_eal_remote_launch(fwd_lcore_main, ctl.lc[i], ctl.lc[i]->lcore_id);

	next_reload = cpn_now_ns() + 1000000000ULL;
	next_stats = cpn_now_ns() + (__u64)ctl.stats_interval * 1000000000ULL;
	while (!fwd_stop) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		__u64 t;

		nanosleep(&ts, NULL);
		t = cpn_now_ns();
		if (reload_flag || (ctl.pin_dir && t >= next_reload)) {
			if (reload_flag && !ctl.pin_dir)
				printf("cpn-fwd: SIGHUP: re-reading %s\n", ctl.config_path);
			reload_flag = 0;
			if (!reload() && !ctl.pin_dir)
				printf("cpn-fwd: configuration %" PRIu64 " in use\n",
				       (uint64_t)ctl.gen);
			fflush(stdout);
			next_reload = t + 1000000000ULL;
		} else if (t >= next_reload) {
			/* A late ring resized once its requests are gone. */
			fwd_late_prepare(atomic_load(&fwd.snap));
			next_reload = t + 1000000000ULL;
		}
		if (ctl.stats_interval && t >= next_stats) {
			fwd_print_counters(stdout, "counters");
			next_stats = t + (__u64)ctl.stats_interval * 1000000000ULL;
		}
	}
	rte_eal_mp_wait_lcore();
	fwd_print_counters(stdout, "final counters");
	ret = EXIT_OK;
	goto out;
oom:
	fprintf(stderr, "cpn-fwd: out of memory\n");
out:
	fwd_metrics_stop();
	fwd_ports_close();
	if (ctl.router_fd >= 0)
		close(ctl.router_fd);
	if (ctl.lock_fd >= 0)
		close(ctl.lock_fd); /* and with it the lock */
	fwd_snap_free(atomic_load(&fwd.snap));
	for (unsigned int i = 0; i < ctl.n_lc; i++) {
		rte_free(ctl.lc[i]->cnt);
		rte_free(ctl.lc[i]);
	}
	rte_hash_free(fwd.neigh);
	free(fwd.qsv);
	free(ctl.seen);
	free(ctl.tokens);
	fwd_late_free(fwd.late);
	if (ctl.maps_open)
		cpn_maps_close(&ctl.maps);
	else
		free(ctl.state);
	rte_eal_cleanup();
	return ret;
}
