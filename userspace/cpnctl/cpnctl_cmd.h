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

/* ---- daemon.c ----------------------------------------------------------- */
struct cpnctl_daemon_opts {
	const char *pin_dir, *state_dir;
	const char *config;  /* reloaded on SIGHUP; NULL: keep the desired state */
	const char *metrics; /* ADDR:PORT; NULL: the config's */
	__u32 probe_ms;	     /* probe a node whose path went unmeasured this long */
};
int cpnctl_daemon(const struct cpnctl_daemon_opts *o);

#endif /* CPNCTL_CMD_H */
