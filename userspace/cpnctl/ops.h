/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpnctl's operations on a router: one module for the command line (main.c)
 * and the daemon (daemon.c). Each takes the router's directories and plain
 * values, never command-line options; says what went wrong in `err`; and
 * returns an exit status: CPN_EXIT_OK, CPN_EXIT_FAIL (a failure at run
 * time) or CPN_EXIT_USAGE (what was asked for is refused: a config that does
 * not validate, a name that does not exist is the caller's to say).
 *
 * Every change is one transaction on the desired state (state.c): lock,
 * load, edit in memory, validate whole, reconcile the maps to it in an
 * order no packet sees half done, save, unlock. Notices an operator should
 * see (a service no tenant may use, a generic-mode attach, a bpffs mount)
 * go to stderr: the terminal, or the daemon's log.
 */
#ifndef CPNCTL_OPS_H
#define CPNCTL_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "cpnctl.h"

/* A router: where its pins and its desired state are (NULL: the defaults). */
struct cpn_dirs {
	const char *pin_dir;
	const char *state_dir;
};

const char *cpn_dirs_pin(const struct cpn_dirs *d);
const char *cpn_dirs_state(const struct cpn_dirs *d);

/* An edit of the desired state: 0, or an exit status with err. */
typedef int (*cpn_edit_fn)(struct cpn_cfg *cfg, void *arg, struct cpn_err *err);

/* One transaction: lock, load, edit, validate, commit, unlock. */
int cpn_op_change(const struct cpn_dirs *d, cpn_edit_fn edit, void *arg, struct cpn_err *err);
/* The same on a router the caller holds open (the daemon). */
int cpn_op_change_ctl(struct cpn_ctl *ctl, cpn_edit_fn edit, void *arg, struct cpn_err *err);

/* Load the router (from `object`, a cpn_router.bpf.o, or the one built into
 * cpnctl when NULL) and pin it, or adopt what is pinned; attach it to the
 * config's interfaces; apply `config` (NULL: keep the desired state).
 * *loaded says which of load or adopt it was.
 */
int cpn_op_up(const struct cpn_dirs *d, const char *config, const char *object, bool skb,
	      bool *loaded, struct cpn_err *err);
/* Reconcile the router to a file; nodes the daemon admitted stay while the
 * file's auto_join still covers them.
 */
int cpn_op_apply_file(const struct cpn_dirs *d, const char *path, struct cpn_err *err);
/* Which joined nodes of the desired state stay when a config is applied
 * (those auto_join still covers and the config does not define): true to
 * keep n.
 */
typedef bool (*cpn_keep_fn)(const struct cfg_node *n, void *arg);
/* Reconcile the router to a config in memory (the daemon's, from etcd), in
 * the transaction of apply; keep NULL keeps every joined node auto_join
 * covers, as apply does.
 */
int cpn_op_apply_cfg_ctl(struct cpn_ctl *ctl, const struct cpn_cfg *cfg, cpn_keep_fn keep,
			 void *arg, struct cpn_err *err);
/* Detach cpn_xdp wherever it is attached, unpin, forget the desired state. */
int cpn_op_down(const struct cpn_dirs *d, struct cpn_err *err);

int cpn_op_service_add(const struct cpn_dirs *d, const struct cfg_service *s, struct cpn_err *err);
/* By name, or by id when no service has that name. */
int cpn_op_service_del(const struct cpn_dirs *d, const char *name_or_id, struct cpn_err *err);
/* A node, and in each named service's candidates. */
int cpn_op_node_add(const struct cpn_dirs *d, const struct cfg_node *n, const char *const *services,
		    int n_services, struct cpn_err *err);
int cpn_op_node_del(const struct cpn_dirs *d, __u16 id, struct cpn_err *err);
int cpn_op_node_drain(const struct cpn_dirs *d, __u16 id, bool drain, struct cpn_err *err);
/* A tenant allowed the services named in the comma-separated list. */
int cpn_op_tenant_add(const struct cpn_dirs *d, const struct cfg_tenant *t, const char *services,
		      struct cpn_err *err);
int cpn_op_tenant_del(const struct cpn_dirs *d, __u32 id, struct cpn_err *err);

/* ---- many routers: the configuration in etcd ------------------------------
 *
 * Under /cpn/<cluster>/ (docs/OPERATIONS.md, "Many routers"):
 *
 *   layout          "1": how the keys below are laid out and written
 *   config          the cluster's configuration, YAML as `apply` reads it;
 *                   its mod_revision is the configuration's revision
 *   nodes/<id>      a node admitted by a router's auto_join, JSON
 *                   {"addr", "router", "time_ms"}, under that router's lease
 *   routers/<name>  a router's status, JSON {"revision", "time_ms",
 *                   "refused_revision", "error", "joined"}, under its lease
 *
 * A reader takes what it knows of a value and ignores members it does not:
 * new members keep the layout; anything an older reader would misread
 * takes a new layout number, which such a reader refuses.
 */
#define CPN_FLEET_LAYOUT	  "1"
#define CPN_FLEET_CLUSTER	  "default"
#define CPN_FLEET_NAME_MAX	  64
#define CPN_FLEET_LEASE_TTL_S	  10
#define CPN_FLEET_ETCD_TIMEOUT_MS 2000

/* Cluster and router names: 1..63 of [A-Za-z0-9._-], not starting with '.'. */
bool cpn_fleet_name_ok(const char *name);
/* "/cpn/<cluster>/" */
void cpn_fleet_prefix(char *buf, size_t len, const char *cluster);

struct cpn_fleet_router {
	char name[CPN_FLEET_NAME_MAX];
	int64_t revision;	  /* of the configuration it runs; 0: none from etcd yet */
	int64_t time_ms;	  /* when it said so (its wall clock) */
	int64_t refused_revision; /* a later configuration it refused; 0: none */
	char error[400];	  /* why */
	__u16 joined[CPN_MAX_NODES];
	int n_joined;
};

/* The JSON of a router's status (malloc'ed), or NULL. */
char *cpn_fleet_router_json(const struct cpn_fleet_router *r);
/* Read one back; -1 with why when it is not such JSON. */
int cpn_fleet_router_parse(const char *json, size_t len, struct cpn_fleet_router *r, char *why,
			   size_t why_len);

struct cpn_fleet_node {
	struct cfg_node n; /* id, address and port */
	char router[CPN_FLEET_NAME_MAX];
	int64_t time_ms;
};

char *cpn_fleet_node_json(const struct cpn_fleet_node *n);
/* id comes from the key; -1 with why when the value is not a node's. */
int cpn_fleet_node_parse(__u16 id, const char *json, size_t len, struct cpn_fleet_node *n,
			 char *why, size_t why_len);

/* Validate a file as apply does (a refusal is CPN_EXIT_USAGE with
 * FILE:LINE, and nothing is published), then put it as the cluster's
 * config, with the layout, in one etcd transaction: *revision is its
 * revision.
 */
int cpn_op_publish(const char *etcd, const char *cluster, const char *path, int64_t *revision,
		   struct cpn_err *err);

#endif /* CPNCTL_OPS_H */
