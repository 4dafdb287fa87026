/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpn-fwd's control side: what the main lcore keeps (options, ports,
 * state, the forwarding lcores), shared by the files that do its jobs:
 *
 *   fwd_main.c   start-up, the control loop (reloads, SIGHUP, stats), exit
 *   fwd_opts.c   usage and options, --neigh
 *   fwd_ports.c  the mbuf pool, ports and queues, the AF_XDP hand-off,
 *                the neighbour table
 *   fwd_stats.c  counters summed over lcores: printed, DPDK telemetry
 *                (/cpn/stats, /cpn/nodes, /cpn/lcores) and /metrics
 *
 * The forwarding lcores see none of it: they read struct fwd_globals (fwd.h).
 */
#ifndef CPN_FWD_CTL_H
#define CPN_FWD_CTL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "fwd.h"
#include "fwd_xsk.h"
#include "cpn_maps.h"

#define FWD_RX_DESC   1024
#define FWD_TX_DESC   1024
#define FWD_NEIGH_MAX 4096

struct cpn_http;
struct rte_mempool;

struct fwd_ctl {
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
	struct fwd_seen_ent *seen;
	struct cpn_tokens *tokens; /* by service: jiq's idle tokens, shared by the lcores */
	__u64 gen;
	pthread_mutex_t ctl_lock; /* snapshot swap and free vs telemetry readers */
	struct fwd_lcore *lc[RTE_MAX_LCORE];
	unsigned int n_lc;
	struct cpn_http *msrv;
	/* hand-off: the pinned cpn_xdp, and each net_af_xdp port's state */
	int router_fd;
	int lock_fd; /* the pin directory, flock()ed: one cpn-fwd takes hand-offs */
	struct fwd_xsk xsk[FWD_MAX_PORTS];
};

extern struct fwd_ctl ctl;

/* fwd_opts.c: 0, or -1 after saying what is wrong. */
void fwd_usage(const char *prog);
int fwd_parse_args(int argc, char **argv);
/* --neigh, once the table exists. */
int fwd_add_neighbours(int argc, char **argv);

/* fwd_ports.c */
struct rte_hash *fwd_neigh_table(void);
/* The mbuf pool and every port, started (and handed off where it can). */
int fwd_ports_setup(void);
/* Stopped and closed; cpn_xdp back where it was handed off. */
void fwd_ports_close(void);

/* fwd_stats.c */
void fwd_print_counters(FILE *f, const char *title);
void fwd_telemetry_register(void);
int fwd_metrics_start(char *err, size_t errlen);
void fwd_metrics_stop(void);

#endif /* CPN_FWD_CTL_H */
