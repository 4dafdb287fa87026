/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* cpnctl's commands: what main.c, show.c, cfgedit.c and daemon.c share. */
#ifndef CPNCTL_CMD_H
#define CPNCTL_CMD_H

#include "cpnctl.h"

/* Messages: usage errors exit 2, failures 1, help 0. */
int cpnctl_usage(const char *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cpnctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cpnctl_help(const char *text);
int cpnctl_parse_u32(const char *s, unsigned long max, __u32 *out);
extern const char *const cpnctl_usage_daemon;
/* `cpnctl apply --config path`: an exit code. */
int cpnctl_apply_file(const char *pin_dir, const char *state_dir, const char *path);

/* ---- cfgedit.c: changes to a config in memory (validated at commit) ---- */
int cpnctl_cfg_put_service(struct cpn_cfg *cfg, const struct cfg_service *s);
/* Also drops the service from tenants and auto_join. */
void cpnctl_cfg_del_service(struct cpn_cfg *cfg, __u16 id);
int cpnctl_cfg_put_node(struct cpn_cfg *cfg, const struct cfg_node *n);
/* Also takes the node out of every service. */
void cpnctl_cfg_del_node(struct cpn_cfg *cfg, __u16 id);
int cpnctl_cfg_put_tenant(struct cpn_cfg *cfg, const struct cfg_tenant *t);
void cpnctl_cfg_del_tenant(struct cpn_cfg *cfg, __u32 id);
/* Append a node to a service's candidates (no-op if there); -1 when full. */
int cpnctl_cfg_service_add_node(struct cfg_service *s, __u16 id);
/* The staleness window a node is judged by: the smallest stale_ms of the
 * services that name it, 500 ms when none does.
 */
__u32 cpnctl_node_stale_ms(const struct cpn_cfg *cfg, __u16 id);
/* Whether auto_join admits a node at this address. */
bool cpnctl_join_allowed(const struct cpn_cfg *cfg, const struct cfg_node *n);
/* Add a joined node and list it in every auto_join service. */
int cpnctl_cfg_add_joined(struct cpn_cfg *cfg, const struct cfg_node *n);

/* ---- show.c: read commands ---------------------------------------------- */
enum cpnctl_show {
	CPNCTL_SHOW_STATUS,
	CPNCTL_SHOW_STATS,
	CPNCTL_SHOW_SERVICES,
	CPNCTL_SHOW_NODES,
	CPNCTL_SHOW_TENANTS,
};
/* pin_dir/state_dir NULL: the defaults. */
int cpnctl_show(const char *pin_dir, const char *state_dir, enum cpnctl_show what, bool json);

/* ---- daemon.c ----------------------------------------------------------- */
struct cpnctl_daemon_opts {
	const char *pin_dir, *state_dir;
	const char *config;  /* reloaded on SIGHUP; NULL: keep the desired state */
	const char *metrics; /* ADDR:PORT; NULL: the config's */
	__u32 probe_ms;	     /* probe a node whose path went unmeasured this long */
};
int cpnctl_daemon(const struct cpnctl_daemon_opts *o);

#endif /* CPNCTL_CMD_H */
