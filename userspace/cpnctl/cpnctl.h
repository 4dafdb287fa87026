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

/* Why the daemon did not admit a LOAD that came up to its control port
 * (docs/PROTOCOL.md, "Joins"; docs/SECURITY.md).
 */
enum cpn_join_refusal {
	CPN_JR_MALFORMED,    /* not a LOAD header, node id 0, truncated */
	CPN_JR_PREFIX,	     /* address outside every auto_join prefix */
	CPN_JR_RATE_SOURCE,  /* over the joins a second of its source address */
	CPN_JR_RATE_TOTAL,   /* over the joins a second of the daemon */
	CPN_JR_UNSIGNED,     /* no AUTH tag while auto_join has a key */
	CPN_JR_BAD_TAG,	     /* the node tag does not verify under the join key */
	CPN_JR_NOT_FRESH,    /* no FRESH stamp */
	CPN_JR_NO_JOIN_TAG,  /* no 8-byte join tag after the node tag */
	CPN_JR_BAD_JOIN_TAG, /* the join tag is not for its source address and port */
	CPN_JR_STALE,	     /* stamp outside the freshness window */
	CPN_JR_REPLAY,	     /* a join tag seen before */
	CPN_JR_SEEN_FULL,    /* too many joins within the window to remember */
	CPN_JR_ID_TAKEN,     /* the node id is another node's */
	CPN_JR_FULL,	     /* no auto_join service has room for it */
	CPN_JR_MAX,
};
extern const char *const cpn_join_refusal_names[CPN_JR_MAX];

/* The daemon's own counters (cpnctl daemon's /metrics). */
struct cpn_daemon_counters {
	__u64 datagrams; /* read on the control port */
	__u64 joins;	 /* nodes admitted through auto_join */
	__u64 refused[CPN_JR_MAX];
	__u64 log_suppressed; /* log lines not written: over one a second per kind */
};

/* Append the daemon's families to a rendering (read with relaxed atomics). */
void cpn_metrics_render_daemon(const struct cpn_daemon_counters *c, FILE *out);

#endif /* CPNCTL_H */
