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

#define CPN_CFG_MAX_IFACES    16
#define CPN_CFG_MAX_PREFIXES  32
#define CPN_NAME_MAX	      32
#define CPN_DEFAULT_STATE_DIR "/run/cpn"
#define CPN_DEFAULT_METRICS   "127.0.0.1:9470"

/* Exit codes of every command. */
enum { CPN_EXIT_OK = 0, CPN_EXIT_FAIL = 1, CPN_EXIT_USAGE = 2 };

/* An error with where it comes from: "FILE:LINE: reason". */
struct cpn_err {
	char msg[512];
};

struct cfg_node {
	__u16 id;
	__be32 addr[4];
	__be16 port;  /* network order */
	__u8 family;  /* CPN_AF_INET / CPN_AF_INET6 */
	__u32 weight; /* 1..1000, default 100 */
	bool has_key;
	__u64 key[2];
	bool drain;  /* administratively draining (cpnctl node drain) */
	bool joined; /* admitted by the daemon through auto_join */
	int line;    /* where it was defined, 0 if not from a file */
};

struct cfg_service {
	char name[CPN_NAME_MAX];
	__u16 id;
	__be32 vip[4];
	__be16 port;
	__u8 family;
	__u8 policy; /* enum cpn_policy */
	bool dpdk;   /* dataplane: dpdk */
	__u32 max_wait_us;
	__u32 max_queue;
	__u32 stale_ms; /* default 500 */
	__u16 nodes[CPN_MAX_SVC_NODES];
	int n_nodes;
	int line;
};

struct cfg_tenant {
	__u32 id;
	__u16 services[CPN_MAX_SERVICES]; /* service ids, resolved from names */
	int n_services;
	__u64 rate;  /* requests/s, 0 = unlimited */
	__u64 burst; /* default: rate (one second), at least 1 */
	bool has_key;
	__u64 key[2];
	int line;
};

struct cfg_prefix {
	__be32 addr[4];
	__u8 family;
	__u8 len;
};

struct cfg_auto_join {
	struct cfg_prefix prefixes[CPN_CFG_MAX_PREFIXES];
	int n_prefixes;
	__u16 services[CPN_MAX_SERVICES]; /* service ids */
	int n_services;
	__u32 weight;	 /* of joined nodes, default 100 */
	__u32 retire_ms; /* a joined node silent this long is retired, default 5000 */
	bool has_key;	 /* joined nodes must sign their reports with this key */
	__u64 key[2];
	int line;
};

struct cpn_cfg {
	char ifaces[CPN_CFG_MAX_IFACES][IF_NAMESIZE];
	int n_ifaces;
	__u16 control_port;	      /* host order, default 7471 */
	char metrics[64];	      /* ADDR:PORT, default 127.0.0.1:9470 */
	__u16 max_hops;		      /* default 4 */
	__u32 nh_ttl_ms;	      /* next-hop cache, default 100 */
	struct cfg_service *services; /* sorted by id */
	int n_services;
	struct cfg_node *nodes; /* sorted by id */
	int n_nodes;
	struct cfg_tenant *tenants; /* sorted by id */
	int n_tenants;
	bool has_auto_join;
	struct cfg_auto_join auto_join;
};

/* ---- config.c -------------------------------------------------------- */

/* A config with defaults and nothing else. */
void cpn_cfg_init(struct cpn_cfg *cfg);
void cpn_cfg_free(struct cpn_cfg *cfg);
/* Read and validate a YAML file. On any error returns -1 and err says
 * "FILE:LINE: what is wrong" (the whole file is refused); cfg is then empty.
 */
int cpn_cfg_load(const char *path, struct cpn_cfg *cfg, struct cpn_err *err);
/* The same from a string (name is used in messages). */
int cpn_cfg_parse(const char *name, const char *yaml, size_t len, struct cpn_cfg *cfg,
		  struct cpn_err *err);
/* Check the cross-references and limits of a config built in memory (what
 * cpn_cfg_load() does after parsing): 0 or -1 with err.
 */
int cpn_cfg_validate(const struct cpn_cfg *cfg, struct cpn_err *err);
/* Write cfg as YAML that cpn_cfg_load() reads back to an equal config. */
int cpn_cfg_write(FILE *f, const struct cpn_cfg *cfg);
/* Deep copy. */
int cpn_cfg_copy(struct cpn_cfg *dst, const struct cpn_cfg *src);

const struct cfg_service *cpn_cfg_service(const struct cpn_cfg *cfg, __u16 id);
const struct cfg_service *cpn_cfg_service_by_name(const struct cpn_cfg *cfg, const char *name);
const struct cfg_node *cpn_cfg_node(const struct cpn_cfg *cfg, __u16 id);
const struct cfg_tenant *cpn_cfg_tenant(const struct cpn_cfg *cfg, __u32 id);
/* May any tenant (the `any` entry included) use service ID? Requests of a
 * service that none may use are all refused (drop_acl): default deny.
 */
bool cpn_cfg_service_usable(const struct cpn_cfg *cfg, __u16 id);
/* One warning line on F for each service that no tenant may use. */
void cpn_cfg_warn_unusable(const struct cpn_cfg *cfg, FILE *f);

/* Policy name <-> enum cpn_policy; -1 if unknown. */
int cpn_policy_parse(const char *s);

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

/* ---- metrics.c ------------------------------------------------------- */

/* Write the Prometheus text exposition (format 0.0.4) of the router's state
 * and counters: `cfg` gives names (may be NULL: ids only). 0 or -errno.
 */
int cpn_metrics_render(struct cpn_maps *m, const struct cpn_cfg *cfg, FILE *out);
/* Serve GET /metrics on "ADDR:PORT" (IPv4 or [IPv6]) with libmicrohttpd,
 * calling render(arg, out) for every scrape (from the server's own thread;
 * render must be thread-safe against the caller: the server holds no locks).
 */
struct cpn_metrics_srv;
struct cpn_metrics_srv *cpn_metrics_start(const char *addr_port,
					  int (*render)(void *arg, FILE *out), void *arg,
					  struct cpn_err *err);
void cpn_metrics_stop(struct cpn_metrics_srv *srv);

#endif /* CPNCTL_H */
