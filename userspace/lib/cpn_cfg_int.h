/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside libcpn's configuration (cpn_cfg*.c): the limits the parser and the
 * checks both enforce, the lines the parser records for the checks to point
 * at, and the helpers they share. Not installed.
 */
#ifndef CPN_USER_CFG_INT_H
#define CPN_USER_CFG_INT_H

#include "cpn_cfg.h"
#include "cpn_addr.h"
#include "cpn_util.h"

#define CPN_CFG_WEIGHT_MAX   1000
#define CPN_CFG_HOPS_MAX     255
#define CPN_CFG_NH_TTL_MAX   60000	   /* ms: a minute-old FIB result is stale enough */
#define CPN_CFG_RATE_MAX     1000000000ULL /* requests/s: 1 ns between requests */
#define CPN_CFG_BURST_MAX    1000000000ULL /* keeps burst x interval_ns in 64 bits */
#define CPN_CFG_FRESH_MAX    600000	   /* ms: a window of ten minutes is no freshness */
#define CPN_CFG_SESSIONS_MAX CPN_MAX_SESSIONS

/* Lines of the values that validation points at, parallel to the arrays of
 * a config being parsed (before it is sorted).
 */
struct svc_lines {
	int id, name, vip;
	int nodes[CPN_MAX_SVC_NODES];
};

struct node_lines {
	int id, addr;
};

struct lines {
	struct svc_lines *svc;
	struct node_lines *node;
	int *tenant; /* line of each tenant's id */
};

/* "NAME:LINE: reason" (or "NAME: reason" for line 0) into err; returns -1. */
int cpn_cfg__errat(struct cpn_err *err, const char *name, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool cpn_cfg__name_ok(const char *s);
bool cpn_cfg__iface_ok(const char *s);
bool cpn_cfg__addr_port_ok(const char *s, __be32 addr[4], __be16 *port, __u8 *family);
/* The prefix with its host bits cleared; true if none was set. */
bool cpn_cfg__prefix_mask(const struct cfg_prefix *p, __be32 out[4]);
/* The cross-checks, with the parser's lines (lx) or the items' own (NULL). */
int cpn_cfg__check(const struct cpn_cfg *cfg, const char *name, const struct lines *lx,
		   struct cpn_err *err);

#endif /* CPN_USER_CFG_INT_H */
