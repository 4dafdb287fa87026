/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpnctl: the routing controller. The configuration model shared by its
 * parts: config.c (YAML in and out, validation), state.c (the desired state
 * on disk and reconciling the maps to it), the commands in main.c, the
 * daemon (daemon.c) and its Prometheus endpoint (metrics.c).
 */
#ifndef CPNCTL_H
#define CPNCTL_H

#include <stdbool.h>
#include <stdio.h>
#include <net/if.h>
#include <linux/types.h>

#include "cpn/maps.h"
#include "cpn_maps.h"
#include "cpn_cfg.h"

#define CPN_DEFAULT_STATE_DIR "/run/cpn"

/* Exit codes of every command. */
enum { CPN_EXIT_OK = 0, CPN_EXIT_FAIL = 1, CPN_EXIT_USAGE = 2 };

/* ---- state.c --------------------------------------------------------- */

/* A controller's hold on a router: its maps and the desired state that was
 * last applied to them, kept as YAML in <state-dir>/<pin-dir with / as _>.yaml
 * and locked while a command changes it.
 */
struct cpn_ctl {
	char pin_dir[256];
	char state_path[512];
	int lock_fd;
	struct cpn_maps maps;
	bool maps_open;
};

int cpn_ctl_open(struct cpn_ctl *ctl, const char *pin_dir, const char *state_dir,
		 struct cpn_err *err);
void cpn_ctl_close(struct cpn_ctl *ctl);
/* Take / release the state lock (flock on the state file). */
int cpn_ctl_lock(struct cpn_ctl *ctl, struct cpn_err *err);
void cpn_ctl_unlock(struct cpn_ctl *ctl);
/* The desired state last committed; an empty config if there is none. */
int cpn_ctl_load(struct cpn_ctl *ctl, struct cpn_cfg *cfg, struct cpn_err *err);
/* Validate cfg, reconcile the maps to it (only what differs, in an order
 * that no packet sees half-written: nodes before the services that name
 * them, services before the nodes they stop naming are deleted), then save
 * it as the desired state. Returns 0, or -1 with err and nothing changed
 * when cfg is invalid.
 */
int cpn_ctl_commit(struct cpn_ctl *ctl, const struct cpn_cfg *cfg, struct cpn_err *err);

/* What the daemon last applied from etcd (docs/OPERATIONS.md, "Many
 * routers"), kept beside the desired state as <state file>.etcd for the
 * read commands.
 */
struct cpn_ctl_fleet {
	char etcd[256];
	char cluster[64];
	char router[64];
	long long revision; /* of the cluster's config */
	long long time_ms;  /* wall clock, when applied */
};

/* Written whole (temporary file, rename). */
int cpn_ctl_fleet_save(const struct cpn_ctl *ctl, const struct cpn_ctl_fleet *f,
		       struct cpn_err *err);
/* 0, or -1 when there is none (or it cannot be read). */
int cpn_ctl_fleet_load(const struct cpn_ctl *ctl, struct cpn_ctl_fleet *f);

/* ---- metrics.c ------------------------------------------------------- */

/* Write the Prometheus text exposition (format 0.0.4) of the router's state
 * and counters: `cfg` gives names (may be NULL: ids only). 0 or -errno.
 */
int cpn_metrics_render(struct cpn_maps *m, const struct cpn_cfg *cfg, FILE *out);

#endif /* CPNCTL_H */
