/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* cpnctl's commands: what main.c, show.c, cfgedit.c and daemon.c share. */
#ifndef CPNCTL_CMD_H
#define CPNCTL_CMD_H

#include "cpnctl.h"
#include "cpn_util.h"

/* Messages: usage errors exit 2, failures 1, help 0. */
int cpnctl_usage(const char *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cpnctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cpnctl_help(const char *text);
extern const char *const cpnctl_usage_daemon;

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
/* status --etcd: the revision every router runs, the local one, then the
 * local router's status when one is pinned at pin_dir.
 */
int cpnctl_show_fleet(const char *etcd, const char *cluster, const char *pin_dir,
		      const char *state_dir, bool json);

/* The security gaps of a configuration (docs/SECURITY.md), one sentence
 * each, to fn: a service whose nodes have no key, auto_join without a key,
 * and, with `routers` above 1 (a cluster in etcd), no explicit shared
 * fleet.hop_key. Returns how many.
 */
int cpnctl_security_warnings(const struct cpn_cfg *cfg, int routers,
			     void (*fn)(void *arg, const char *msg), void *arg);
/* Each of them on stderr as "cpnctl: warning: ...". */
void cpnctl_warn_security(const struct cpn_cfg *cfg, int routers);

/* ---- daemon.c ----------------------------------------------------------- */
struct cpnctl_daemon_opts {
	const char *pin_dir, *state_dir;
	const char *config;  /* reloaded on SIGHUP; NULL: keep the desired state */
	const char *metrics; /* ADDR:PORT; NULL: the config's */
	__u32 probe_ms;	     /* probe a node whose path went unmeasured this long */
	/* Many routers (docs/OPERATIONS.md): follow the configuration in etcd
	 * and share auto_join's nodes there. etcd NULL: none of it.
	 */
	const char *etcd;	 /* endpoints, comma-separated */
	const char *cluster;	 /* /cpn/<cluster>/ */
	const char *router_name; /* routers/<name>; NULL: the host name */
	__u32 lease_ttl_s;	 /* of its nodes/ and routers/ keys */
};
int cpnctl_daemon(const struct cpnctl_daemon_opts *o);

#endif /* CPNCTL_CMD_H */
