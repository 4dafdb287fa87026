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

#endif /* CPNCTL_OPS_H */
