/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpn-fwd's data: the configuration snapshot, per-lcore counters, the
 * environment router.h runs in (struct cpn_env), the lcores and the
 * program's globals. No packet path here: fwd_env.h adds the env functions
 * and include/cpn/router.h for fwd_loop.c, the one file that must not see
 * glibc's <netinet/ip.h> (rte_ethdev.h pulls it in; router.h uses the
 * kernel's <linux/ip.h>, which clashes with it).
 *
 * Snapshot life cycle: the control thread builds a new struct fwd_snap
 * (from the YAML config or from the pinned maps), publishes it with an
 * atomic pointer store and frees the old one once every forwarding lcore
 * has passed a quiescent point (rte_rcu_qsbr: each lcore reports one
 * between bursts). A forwarding lcore reads the pointer once per burst.
 */
#ifndef CPN_FWD_H
#define CPN_FWD_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "cpn_util.h" /* cpn_now_ns: CLOCK_MONOTONIC through the vDSO, no syscall */

#include <rte_common.h>
#include <rte_ether.h>
#include <rte_hash.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_spinlock.h>

#include "cpn/maps.h"

struct cpn_cfg;
struct cpn_maps;

struct fwd_aff_ent;
struct fwd_late;

/* A tenant's sessions: a direct-mapped table of the power of two at or
 * above its max_sessions, so that one tenant's keys overwrite only its own
 * (XDP keeps an LRU per tenant). Shared by the snapshots that hold the
 * tenant with the same size (refs: the control thread's alone).
 */
struct fwd_aff_table {
	int refs;
	__u32 mask;
	struct fwd_aff_ent *ent;
};

/* A tenant and the lock that guards its GCRA state (t.tat). */
struct fwd_tenant {
	struct cpn_tenant t;
	rte_spinlock_t lock;
	__u32 id;
	struct fwd_aff_table *aff;
};

/* One configuration, immutable once published (but for the counters the
 * data plane keeps inside values, as XDP does: service rr, tenant tat).
 */
struct fwd_snap {
	__u64 gen;
	struct cpn_config config;
	bool has_config;
	struct rte_hash *vips;			      /* cpn_vip_key -> index in vip_svc */
	struct cpn_service vip_svc[CPN_MAX_SERVICES]; /* the cpn_vips values */
	int n_vips;
	struct cpn_service svc[CPN_MAX_SERVICES]; /* cpn_services, by id */
	bool has_svc[CPN_MAX_SERVICES];
	/* Service names for /metrics (CPN_NAME_MAX): from --config; "" with
	 * --pin-dir, whose maps hold no names.
	 */
	char svc_name[CPN_MAX_SERVICES][32];
	struct cpn_maglev *maglev[CPN_MAX_SERVICES]; /* by id, NULL if none */
	struct cpn_node_cfg nodes[CPN_MAX_NODES];    /* cpn_nodes */
	struct rte_hash *tenants;		     /* tenant id -> index in tenant */
	struct fwd_tenant *tenant;
	int n_tenants;
};

/* Session affinity: one direct-mapped table shared by every lcore. Entries
 * are copied out and checked by key, so a racing overwrite costs at worst a
 * lost affinity, never a wrong node (the router re-checks liveness and
 * membership).
 */
struct fwd_aff_ent {
	struct cpn_aff_key key;
	struct cpn_aff aff;
};

/* Signed messages seen (cpn_env_seen), shared by the lcores: direct-mapped,
 * a later key overwrites its slot, so a replay is caught while no other
 * signed message took the slot since; two lcores that race for a slot may
 * both accept (XDP keeps the LRU map cpn_seen of CPN_SEEN entries).
 */
#define FWD_SEEN_SIZE 65536 /* a power of two */

struct fwd_seen_ent {
	struct cpn_seen_key key;
	__u32 stamp;
	__u32 pad;
};

/* Per-port counters of one lcore. */
struct fwd_port_stats {
	__u64 rx;
	__u64 tx;
	__u64 tx_drop;	   /* not taken by rte_eth_tx_burst: freed */
	__u64 pass_drop;   /* PASS with no --default-port: dropped */
	__u64 pass_fwd;	   /* PASS sent out of --default-port */
	__u64 neigh_miss;  /* FWD with no neighbour: treated as PASS */
	__u64 neigh_learn; /* ARP replies / neighbour advertisements learned */
};

#define FWD_MAX_PORTS 32

/* Everything one forwarding lcore writes: summed when read. */
struct fwd_counters {
	__u64 stat[CPN_STAT_MAX];
	struct fwd_port_stats port[FWD_MAX_PORTS];
	__u64 bursts;
	__u64 quiescent;
	__u64 busy_tsc; /* TSC ticks spent on rounds that had work */
	struct cpn_node_stats node[CPN_MAX_NODES];
	struct cpn_svc_stats svc[CPN_MAX_SERVICES];
};

/* Per-lcore, direct-mapped caches in front of the snapshot's hashes: an
 * entry is valid while its gen is the snapshot's (snapshot gens start at 1,
 * so a zeroed entry never is). Only hits are cached.
 */
#define FWD_VIP_CACHE_BITS    6
#define FWD_VIP_CACHE	      (1 << FWD_VIP_CACHE_BITS)
#define FWD_TENANT_CACHE_BITS 6
#define FWD_TENANT_CACHE      (1 << FWD_TENANT_CACHE_BITS)

struct fwd_vip_cache_ent {
	struct cpn_vip_key key;
	__u32 idx; /* in snap->vip_svc */
	__u64 gen;
};

struct fwd_tenant_cache_ent {
	__u32 id;
	__u32 idx; /* in snap->tenant */
	__u64 gen;
};

struct cpn_env {
	struct fwd_snap *snap;
	struct cpn_node *state;	   /* struct cpn_node[CPN_MAX_NODES] */
	struct fwd_seen_ent *seen; /* FWD_SEEN_SIZE entries; NULL: no replay check */
	struct cpn_tokens *tokens; /* by service: the idle tokens of policy jiq */
	struct fwd_counters *cnt;  /* this lcore's */
	__u64 now;		   /* read once per burst */
	__u64 tai;		   /* CLOCK_TAI, read with `now` */
	__u64 rng;		   /* xorshift64* state */
	struct cpn_aff aff_copy;   /* what cpn_env_aff() returned */
	/* dispatch: late (fwd_late.c) */
	__u8 late_early;  /* cpn_env_late: bind early (a held request let go) */
	__u8 late_locked; /* cpn_env_late said hold: the late lock is held */
	__u8 late_cls;	  /* and the request's class */
	__u16 late_svc;	  /* and service */
	struct fwd_vip_cache_ent vip_cache[FWD_VIP_CACHE];
	struct fwd_tenant_cache_ent tenant_cache[FWD_TENANT_CACHE];
};

#define FWD_MAX_BURST 512
/* Requests held by late services, all together: the mbuf pool has room for
 * this many besides its rings; beyond, BUSY queue.
 */
#define FWD_LATE_HELD_MAX 4096

/* A next hop: IPv4 / IPv6 address -> MAC and port. */
struct neigh_key {
	__be32 addr[4];
	__u8 family;
	__u8 pad[3];
};

/* Per-lcore, direct-mapped cache of the neighbour table (as the XDP glue
 * caches its FIB result per node): an entry is valid while its gen is
 * fwd.neigh_gen (which starts at 1 and moves on every fwd_neigh_set).
 * Only hits are cached.
 */
#define FWD_NEIGH_CACHE_BITS 8
#define FWD_NEIGH_CACHE	     (1 << FWD_NEIGH_CACHE_BITS)

struct fwd_neigh_cache_ent {
	struct neigh_key key;
	__u16 port;
	__u8 mac[6];
	__u64 gen;
};

/* A forwarding lcore's clock: CLOCK_MONOTONIC and CLOCK_TAI from one
 * rte_rdtsc() per burst, as ns since an anchor (a clock_gettime pair) that
 * is taken again every FWD_CLOCK_ANCHOR_NS; never behind its last value.
 */
#define FWD_CLOCK_ANCHOR_NS 1000000ULL /* 1 ms: off by 1 ns per ppm of rte_get_tsc_hz() */

struct fwd_clock {
	__u64 tsc0;    /* rte_rdtsc() at the anchor */
	__u64 mono0;   /* CLOCK_MONOTONIC ns at the anchor */
	__u64 tai_off; /* CLOCK_TAI - CLOCK_MONOTONIC at the anchor */
	__u64 mult;    /* ns per TSC tick, << 32 */
	__u64 tsc_end; /* the next anchor is due at this TSC */
	__u64 span;    /* FWD_CLOCK_ANCHOR_NS in TSC ticks */
	__u64 last;    /* the last value handed out */
};

/* One forwarding lcore: its queue on every port and what it writes. */
struct fwd_lcore {
	unsigned int lcore_id;
	__u16 queue;
	struct fwd_clock clock;
	struct cpn_env env;
	struct fwd_counters *cnt;
	__u16 ntx[FWD_MAX_PORTS];
	struct rte_mbuf *txb[FWD_MAX_PORTS][FWD_MAX_BURST];
	struct fwd_neigh_cache_ent neigh_cache[FWD_NEIGH_CACHE];
	__u64 neigh_gen; /* fwd.neigh_gen at the start of the burst */
} __rte_cache_aligned;

/* What the forwarding lcores read (set up before they start). */
struct fwd_globals {
	unsigned int burst;
	int default_port; /* -1: PASS is dropped */
	__u16 nb_ports;
	struct rte_ether_addr mac[FWD_MAX_PORTS];
	struct fwd_snap *_Atomic snap;
	struct rte_rcu_qsbr *qsv;
	struct rte_hash *neigh;
	_Atomic __u64 neigh_gen; /* moves on every neighbour table write */
	/* The node table is one forwarding lcore's alone (--config, one
	 * lcore): no other writer, so `outstanding` needs no locked add.
	 * With --pin-dir the XDP routers write it too; with several lcores,
	 * the lcores.
	 */
	bool state_private;
	struct fwd_late *late; /* dispatch: late: held requests and taken slots */
};

extern struct fwd_globals fwd;
extern volatile sig_atomic_t fwd_stop;

/* ---- building and reading snapshots (fwd_env.c) ---------------------- */

/* From a config: node state (admin, weight) is written into `state`.
 * `old` (may be NULL) lends its rr cursors and GCRA state, and its nodes
 * that the config drops stay as RETIRED (replies in flight still forwarded).
 */
struct fwd_snap *fwd_snap_from_cfg(const struct cpn_cfg *cfg, struct cpn_node *state,
				   const struct fwd_snap *old, __u64 gen, char *err, size_t errlen);
/* From the pinned maps, read whole (the XDP router's own view). */
struct fwd_snap *fwd_snap_from_maps(struct cpn_maps *m, const struct fwd_snap *old, __u64 gen,
				    char *err, size_t errlen);
void fwd_snap_free(struct fwd_snap *s);

/* Starting state of lcore `k`'s generator from --seed. */
__u64 fwd_rng_seed(__u64 seed, unsigned int k);

/* ---- dispatch: late (fwd_late.c) -------------------------------------- */

/* Per service, counted under the lock. */
struct fwd_late_svc_stats {
	__u64 bound;	 /* held, then bound when a slot freed */
	__u64 timed_out; /* held past max_wait_us: BUSY */
	__u64 early;	 /* bound early: no live candidate, no longer late, or cpn-fwd stopping */
	__u64 gone;	 /* held when the service was removed: BUSY */
};

/* A copy for /metrics and the counters printed at exit. */
struct fwd_late_stats {
	struct fwd_late_svc_stats svc[CPN_MAX_SERVICES];
	__u32 held[CPN_MAX_SERVICES]; /* waiting now, by service */
	__u32 slots[CPN_MAX_NODES];   /* taken now, by node */
	__u64 slots_expired;
};

struct fwd_late *fwd_late_new(void);
void fwd_late_free(struct fwd_late *l);
void fwd_late_read(struct fwd_late_stats *out);
/* The control thread, before it publishes `snap` (and every second): a
 * ring for each late service, of its limit; a ring whose limit changed is
 * replaced once it holds nothing.
 */
void fwd_late_prepare(const struct fwd_snap *snap);

/* ---- neighbours (fwd_loop.c) ----------------------------------------- */

int fwd_neigh_set(const struct neigh_key *k, const __u8 mac[6], __u16 port);
int fwd_neigh_get(const struct neigh_key *k, __u8 mac[6], __u16 *port);

/* ---- the forwarding loop (fwd_loop.c) --------------------------------- */

/* rte_eal_remote_launch entry: arg is the struct fwd_lcore. */
int fwd_lcore_main(void *arg);
/* One received burst of `port` to its verdicts (bench-fwd.sh --ir counts
 * the instructions of this function per request).
 */
void fwd_burst(struct fwd_lcore *lc, struct rte_mbuf **pkts, __u16 n, __u16 port);
/* rte_eth_rx_burst / rte_eth_tx_burst, from cpn_fwd.c (rte_ethdev.h). */
__u16 fwd_rx_burst(__u16 port, __u16 queue, struct rte_mbuf **pkts, __u16 n);
__u16 fwd_tx_burst(__u16 port, __u16 queue, struct rte_mbuf **pkts, __u16 n);

#endif /* CPN_FWD_H */
