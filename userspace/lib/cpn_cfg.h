/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * libcpn's configuration model: what cpnctl reads from YAML, keeps as its
 * desired state and reconciles a router to, and what cpn-fwd builds its
 * snapshot from. One model for both; the map values are derived from it in
 * one place (cpn_cfg_to_service() and the others, below).
 *
 *   cpn_cfg.c         life of a config, lookups, changes in memory
 *   cpn_cfg_parse.c   YAML in: the shape of the file, line by line
 *   cpn_cfg_check.c   validation: what one item says about another
 *   cpn_cfg_write.c   YAML out: every field, read back equal
 *   cpn_cfgmap.c      config -> the values of the router's maps
 *
 * Any error refuses the whole file with "FILE:LINE: what is wrong: what to
 * do". cpn_cfg_parse(), cpn_cfg_load() and cpn_cfg_copy() take their output
 * as uninitialised (they do not free what it held) and leave it empty, as
 * cpn_cfg_init() makes it, on failure. cpn_cfg_free() frees and re-inits.
 */
#ifndef CPN_USER_CFG_H
#define CPN_USER_CFG_H

#include <stdbool.h>
#include <stdio.h>
#include <net/if.h>
#include <linux/types.h>

#include "cpn/maps.h"

#define CPN_CFG_MAX_IFACES   16
#define CPN_CFG_MAX_PREFIXES 32
#define CPN_NAME_MAX	     32

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
	bool has_key_next; /* key_next: accepted as well while the key rotates */
	__u64 key_next[2];
	bool fresh_optional; /* fresh: optional (signed reports without FRESH taken) */
	bool drain;	     /* administratively draining (cpnctl node drain) */
	bool joined;	     /* admitted by the daemon through auto_join */
	int line;	     /* where it was defined, 0 if not from a file */
};

struct cfg_service {
	char name[CPN_NAME_MAX];
	__u16 id;
	__be32 vip[4];
	__be16 port;
	__u8 family;
	__u8 policy;  /* enum cpn_policy */
	bool dpdk;    /* dataplane: dpdk */
	bool fullnat; /* reply: router (full NAT), else direct */
	/* reply_check: false. By default (true) a DNAT service's replies are
	 * relayed only from the node their request went to (a flow per
	 * request); full NAT always checks.
	 */
	bool reply_unchecked;
	/* liveness: reports. By default (traffic) a node that leaves the
	 * requests steered to it unanswered is suspect; with reports only its
	 * reports say whether it is live (for a service whose answers do not
	 * pass through this router).
	 */
	bool liveness_reports;
	/* dispatch: late (cpn-fwd holds requests until a node has room, at
	 * most late_bound x capacity unanswered per node; 0 = the default).
	 */
	bool late;
	__u16 late_bound;
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
	bool has_key_next; /* key_next: accepted as well while the key rotates */
	__u64 key_next[2];
	bool fresh_optional; /* fresh: optional (signed requests without FRESH taken) */
	__u32 max_sessions;  /* affinity entries of the tenant; 0 = CPN_DEFAULT_MAX_SESSIONS */
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

/* How cpn_xdp goes onto an interface (docs/OPERATIONS.md, "Other XDP
 * programs"): auto (default) attaches on its own where the interface is free,
 * joins libxdp's dispatcher where there is one and chains a program that was
 * attached without it; libxdp always goes through the dispatcher; plain
 * never shares an interface.
 */
enum cpn_xdp_attach {
	CPN_XDP_ATTACH_AUTO,
	CPN_XDP_ATTACH_LIBXDP,
	CPN_XDP_ATTACH_PLAIN,
};

struct cpn_cfg {
	char ifaces[CPN_CFG_MAX_IFACES][IF_NAMESIZE];
	int n_ifaces;
	__u8 xdp_attach;    /* enum cpn_xdp_attach */
	__u16 control_port; /* host order, default 7471 */
	char metrics[64];   /* ADDR:PORT, default 127.0.0.1:9470 */
	__u16 max_hops;	    /* default 4 */
	__u32 nh_ttl_ms;    /* next-hop cache, default 100 */
	__u32 freshness_ms; /* window of FRESH stamps, default 2000 */
	bool has_hop_key;   /* fleet: {hop_key}; else cpnctl draws one at `up` */
	__u64 hop_key[2];
	struct cfg_service *services; /* sorted by id */
	int n_services;
	struct cfg_node *nodes; /* sorted by id */
	int n_nodes;
	struct cfg_tenant *tenants; /* sorted by id */
	int n_tenants;
	bool has_auto_join;
	struct cfg_auto_join auto_join;
};

/* ---- life, reading, writing ---------------------------------------------- */

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
/* Does tenant T list service ID among its services? */
bool cpn_cfg_tenant_lists(const struct cfg_tenant *t, __u16 id);
/* May any tenant (the `any` entry included) use service ID? Requests of a
 * service that none may use are all refused (drop_acl): default deny.
 */
bool cpn_cfg_service_usable(const struct cpn_cfg *cfg, __u16 id);
/* One warning line on F for each service that no tenant may use. */
void cpn_cfg_warn_unusable(const struct cpn_cfg *cfg, FILE *f);

/* The tenant's affinity entries: max_sessions or its default. */
__u32 cpn_cfg_tenant_max_sessions(const struct cfg_tenant *t);

/* Policy name <-> enum cpn_policy; -1 if unknown. */
int cpn_policy_parse(const char *s);
/* "auto", "libxdp", "plain" <-> enum cpn_xdp_attach; -1 if unknown. */
int cpn_xdp_attach_parse(const char *s);
const char *cpn_xdp_attach_name(int how);

/* ---- changes in memory (validated whole when committed) ----------------- */

int cpn_cfg_put_service(struct cpn_cfg *cfg, const struct cfg_service *s);
/* Also drops the service from tenants and auto_join. */
void cpn_cfg_del_service(struct cpn_cfg *cfg, __u16 id);
int cpn_cfg_put_node(struct cpn_cfg *cfg, const struct cfg_node *n);
/* Also takes the node out of every service. */
void cpn_cfg_del_node(struct cpn_cfg *cfg, __u16 id);
int cpn_cfg_put_tenant(struct cpn_cfg *cfg, const struct cfg_tenant *t);
void cpn_cfg_del_tenant(struct cpn_cfg *cfg, __u32 id);
/* Append a node to a service's candidates (no-op if there); -1 when full. */
int cpn_cfg_service_add_node(struct cfg_service *s, __u16 id);
/* The staleness window a node is judged by: the smallest stale_ms of the
 * services that name it, CPN_DEFAULT_STALE_MS when none does.
 */
__u32 cpn_cfg_node_stale_ms(const struct cpn_cfg *cfg, __u16 id);
/* Whether auto_join admits a node at this address. */
bool cpn_cfg_join_allowed(const struct cpn_cfg *cfg, const struct cfg_node *n);
/* Add a joined node and list it in every auto_join service (of its family)
 * that has room. 0; CPN_CFG_JOIN_FULL, with nothing added, when none has
 * (every one holds CPN_MAX_SVC_NODES nodes, or none is of its family); -1
 * when out of memory.
 */
#define CPN_CFG_JOIN_FULL (-2)
int cpn_cfg_add_joined(struct cpn_cfg *cfg, const struct cfg_node *n);

/* ---- the values of the router's maps ------------------------------------- */

/* The service's entry; its flags depend on the tenants (CPN_SVC_OPEN). */
void cpn_cfg_to_service(const struct cpn_cfg *cfg, const struct cfg_service *c,
			struct cpn_service *s);
bool cpn_cfg_service_open(const struct cpn_cfg *cfg, __u16 id);
/* The node's address entry and its admin flags (cpn_node_state.admin). */
void cpn_cfg_to_node(const struct cfg_node *c, struct cpn_node_cfg *n, __u32 *admin);
void cpn_cfg_to_tenant(const struct cfg_tenant *c, struct cpn_tenant *t);

#endif /* CPN_USER_CFG_H */
