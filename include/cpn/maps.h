/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Keys and values of the router's maps, shared by the XDP program, cpnctl,
 * cpn-fwd and the tests. One definition: nothing here is copied elsewhere.
 *
 * The maps themselves are listed once, in CPN_MAPS below: their pinned
 * names, types, keys and values. bpf/cpn_router.bpf.c defines them (a test
 * checks that the object holds exactly these), and libcpn's list of fds,
 * the names it opens by pin or by object, and the tests' list of what
 * `bpftool prog loadall` must pin all come from CPN_MAPS.
 *
 * Keys are __u32 where the table says an id. Services and Maglev tables are
 * hash maps so that an update replaces a value whole: no packet sees a
 * half-written service. A node's address (cpn_nodes) is an array entry that
 * the controller rewrites only while no service names the node.
 */
#ifndef CPN_MAPS_H
#define CPN_MAPS_H

/* X(field, pinned name, type, key, value): every map of cpn_router.bpf.o. */
#define CPN_MAPS(X)                                                                                \
	X(config, "cpn_config", ARRAY[1], __u32, struct cpn_config)                                \
	X(vips, "cpn_vips", HASH, struct cpn_vip_key, struct cpn_service)                          \
	X(services, "cpn_services", HASH, service_id, struct cpn_service)                          \
	X(maglev, "cpn_maglev", HASH, service_id, struct cpn_maglev)                               \
	X(nodes, "cpn_nodes", ARRAY, node_id, struct cpn_node_cfg)                                 \
	X(node_state, "cpn_node_state", ARRAY MMAPABLE, node_id, struct cpn_node)                  \
	X(tenants, "cpn_tenants", HASH, tenant_id, struct cpn_tenant)                              \
	X(affinity, "cpn_affinity", HASH_OF_MAPS, tenant_id, LRU_HASH cpn_aff_key->cpn_aff)        \
	X(stats, "cpn_stats", PERCPU_ARRAY[1], __u32, struct cpn_cpu)                              \
	X(node_stats, "cpn_node_stats", PERCPU_ARRAY, node_id, struct cpn_node_stats)              \
	X(svc_stats, "cpn_svc_stats", PERCPU_ARRAY, service_id, struct cpn_svc_stats)              \
	X(tx_ports, "cpn_tx_ports", DEVMAP_HASH, ifindex, struct bpf_devmap_val)                   \
	X(nh_cache, "cpn_nh_cache", PERCPU_ARRAY, node_id, struct cpn_nexthop)                     \
	X(xsks, "xsks_map", XSKMAP, slot, AF_XDP socket of cpn - fwd)                              \
	X(xsk_slots, "cpn_xsk_slots", HASH, struct cpn_xsk_key, __u32 slot of xsks_map)            \
	X(chain, "cpn_chain", PROG_ARRAY, slot, the XDP program cpn passes to)                     \
	X(chain_slots, "cpn_chain_slots", HASH, ifindex, __u32 slot of cpn_chain)                  \
	X(tokens, "cpn_tokens", ARRAY, service_id, struct cpn_tokens)                              \
	X(flows, "cpn_flows", LRU_HASH, struct cpn_flow_key, struct cpn_flow)                      \
	X(seen, "cpn_seen", LRU_HASH, struct cpn_seen_key, __u32 stamp)

#include <linux/types.h>
#include <linux/bpf.h>
#include "cpn/compiler.h"

/* Compile-time limits (override with -D). */
#ifndef CPN_MAX_NODES
#define CPN_MAX_NODES 1024 /* node ids 1 .. CPN_MAX_NODES-1; 0 = none */
#endif
#ifndef CPN_MAX_SERVICES
#define CPN_MAX_SERVICES 256 /* service ids 0 .. CPN_MAX_SERVICES-1 */
#endif
#ifndef CPN_MAX_TENANTS
#define CPN_MAX_TENANTS 4096
#endif
#ifndef CPN_MAX_SESSIONS
#define CPN_MAX_SESSIONS 65536
#endif
#define CPN_MAX_SVC_NODES 1024 /* candidates per service (node ids 1 .. CPN_MAX_NODES-1) */
/* Candidates a scanning policy looks at: `least` and `round-robin` services
 * have at most this many nodes, and every loop over a service's candidates
 * (liveness scans, fallbacks) stops after this many.
 */
#define CPN_SVC_SCAN_MAX 64
#define CPN_MAGLEV_M	 65537 /* Maglev table size: prime, >> CPN_MAX_SVC_NODES (the paper's) */
#define CPN_HIST_BUCKETS 24    /* log2 µs: [0,2) [2,4) .. [2^23, inf) */
#define CPN_MAX_PORTS	 64
/* AF_XDP sockets of cpn-fwd that the router can hand requests to: xsks_map
 * slots, CPN_XSK_QUEUES per cpn-fwd port.
 */
#define CPN_XSK_QUEUES 64
#define CPN_XSK_SLOTS  (32 * CPN_XSK_QUEUES)

/* Sharing an interface with another XDP program (docs/ARCHITECTURE.md,
 * "Other XDP programs"). In libxdp's multi-program dispatcher cpn_xdp runs
 * at CPN_XDP_RUN_PRIO (lower runs first; libxdp's default is 50, xdp-filter
 * asks for 10), chaining on to the next program on XDP_PASS. Where the
 * dispatcher cannot be used, cpnctl chains the program that was attached
 * before cpn itself: cpn_xdp_chain (cpn_xdp's body) takes its place and
 * tail-calls it (cpn_chain, slot by ingress ifindex in cpn_chain_slots) with
 * every packet it passes.
 */
#define CPN_XDP_RUN_PRIO 30
#define CPN_CHAIN_SLOTS	 64

/* Defaults: the configuration's (cpnctl, cpn-fwd) and the data planes' own
 * where a value is 0. One place: nothing else spells these numbers.
 */
#define CPN_DEFAULT_CONTROL_PORT 7471		  /* LOAD and PROBE_ACK arrive here */
#define CPN_DEFAULT_MAX_HOPS	 4		  /* steering hops before a drop */
#define CPN_DEFAULT_WEIGHT	 100		  /* percent of a node's nominal capacity */
#define CPN_DEFAULT_STALE_MS	 500		  /* a node silent this long is not live */
#define CPN_DEFAULT_RETIRE_MS	 5000		  /* a joined node silent this long leaves */
#define CPN_DEFAULT_MAX_SESSIONS 4096		  /* affinity entries of a tenant */
#define CPN_DEFAULT_METRICS	 "127.0.0.1:9470" /* cpnctl daemon's /metrics */
#define CPN_DEFAULT_PIN_DIR	 "/sys/fs/bpf/cpn"

CPN_STATIC_ASSERT((CPN_MAX_NODES & (CPN_MAX_NODES - 1)) == 0, "CPN_MAX_NODES power of two");
CPN_STATIC_ASSERT((CPN_MAX_SERVICES & (CPN_MAX_SERVICES - 1)) == 0,
		  "CPN_MAX_SERVICES power of two");

enum cpn_family {
	CPN_AF_INET = 4,
	CPN_AF_INET6 = 6,
};

/* An IPv4 address lives in addr[0], the other words zero. */
struct cpn_vip_key {
	__be32 addr[4];
	__be16 port;
	__u8 family;
	__u8 pad;
};

enum cpn_policy {
	CPN_POL_P2C = 0,
	CPN_POL_LEAST = 1,
	CPN_POL_MAGLEV = 2,
	CPN_POL_RANDOM = 3,
	CPN_POL_RR = 4,
	CPN_POL_JIQ = 5, /* idle tokens from the nodes, else p2c on the router's own view */
	CPN_POL_MAX = CPN_POL_JIQ,
};

enum cpn_service_flags {
	CPN_SVC_ACTIVE = 0x1,
	CPN_SVC_DPDK = 0x2, /* dataplane: dpdk — hand off to cpn-fwd's AF_XDP socket */
	/* reply: router — the router puts its own address as the request's
	 * source (full NAT), so the reply comes back through it: to learn from
	 * (load, idle tokens), and so that a router's failure loses only what
	 * was in flight through it. The client is remembered in cpn_flows.
	 */
	CPN_SVC_FULLNAT = 0x4,
	/* reply_check: a DNAT service keeps a flow per steered request too,
	 * and a REPLY or BUSY is learned from and relayed only if it takes
	 * the flow of a request that went to the node it comes from.
	 */
	CPN_SVC_REPLY_CHECK = 0x8,
	/* liveness: reports — the router does not see this service's
	 * answers (DNAT without reply_check, an asymmetric path): its requests
	 * count as load but not as unanswered (docs/ARCHITECTURE.md,
	 * "Liveness from the traffic").
	 */
	CPN_SVC_LIVENESS_REPORTS = 0x10,
	/* dispatch: late — cpn-fwd holds the service's requests and binds
	 * each when a node has a free slot (include/cpn/late.h); the XDP
	 * plane binds early, by `policy`, as for any service.
	 */
	CPN_SVC_LATE = 0x20,
	/* Open to every tenant (cpn_cfg_service_open: only `any` names it,
	 * with no key and no rate limit): the tenant's ACL, signature and
	 * rate would admit any request as `any`, so they are not looked up.
	 */
	CPN_SVC_OPEN = 0x40,
};

/* dispatch: late (include/cpn/late.h): n of JBSQ(n) where the service
 * sets none, its upper bound, and the requests a service may hold where its
 * max_queue is 0, and at most.
 */
#define CPN_LATE_BOUND_DEFAULT 1
#define CPN_LATE_BOUND_MAX     64
#define CPN_LATE_QUEUE_DEFAULT 1024
#define CPN_LATE_QUEUE_MAX     65536

/* A service. The canonical copy is cpn_services[id]; cpn_vips holds the
 * same value under its VIP so that a request finds it in one lookup.
 */
struct cpn_service {
	__u16 flags;
	__u16 id;
	__u8 policy;
	__u8 family;
	__be16 port; /* VIP port: source of replies after reverse NAT */
	__be32 vip[4];
	__u32 max_wait_us; /* 0 = no limit */
	__u32 max_queue; /* 0 = no limit; dispatch: late, requests held (0 = CPN_LATE_QUEUE_DEFAULT)
			  */
	__u32 stale_ms;
	__u32 n_nodes;
	__u32 rr;	  /* round-robin cursor, advanced atomically by the data plane */
	__u16 late_bound; /* dispatch: late — n of JBSQ(n), 0 = CPN_LATE_BOUND_DEFAULT */
	__u16 pad2;
	__u16 nodes[CPN_MAX_SVC_NODES];
	__u64 member[CPN_MAX_NODES / 64]; /* bit per node id: is it a candidate */
};

/* Idle tokens (policy jiq): a node marks a REPLY with CPN_F_TOKEN when it
 * has a free batch slot after the completion, or, while many of the
 * requests it receives have to wait, when nothing waits; the router that
 * sees the reply keeps the token, per service, and gives its next request
 * of that service to a token's node: of the CPN_TOKEN_TRIES newest, the
 * first whose node has a free slot in the router's view, else the one of
 * least est_us. A token is trusted for CPN_TOKEN_TTL_SVC of the node's mean
 * service times (at least CPN_TOKEN_TTL_MIN_US): older, the node has likely
 * been sent work by other routers since. Measured with cpn-sim (100 routers,
 * 1000 nodes): a token kept too briefly loses an idle node that nobody
 * else knows of, which costs more than a stale one; a store too small for
 * one router per 1000 nodes overwrites idle nodes' tokens.
 * The store is a ring used as a stack (newest first): `top` counts pushes
 * less pops; slots are overwritten after CPN_TOKENS pushes, and a slot is
 * zeroed when popped, so a stale or reused slot reads as empty.
 */
#define CPN_TOKENS	     256 /* a power of two */
#define CPN_TOKEN_TRIES	     8	 /* a power of two */
#define CPN_TOKEN_TTL_SVC    16
#define CPN_TOKEN_TTL_MIN_US 50

struct cpn_token {
	__u16 node;
	__u16 pad;
	__u32 t_us; /* the router's clock, µs (mod 2^32), when the token came */
};

struct cpn_tokens {
	__u32 top;
	__u32 pad;
	struct cpn_token slot[CPN_TOKENS];
};

struct cpn_maglev {
	__u16 entry[CPN_MAGLEV_M]; /* node ids; 0 = empty table */
};

enum cpn_node_cfg_flags {
	CPN_NODE_CFG_VALID = 0x1,
	CPN_NODE_CFG_KEY = 0x2, /* reports must carry AUTH with the node key */
	/* Removed from the configuration: in no service, never chosen, but its
	 * replies still in flight are recognised and reverse-NATed until the
	 * controller deletes the entry.
	 */
	CPN_NODE_CFG_RETIRED = 0x4,
	CPN_NODE_CFG_KEY_NEXT = 0x8, /* key_next is accepted as well (rotation) */
	CPN_NODE_CFG_FRESH = 0x10,   /* signed reports must carry FRESH */
};

/* Where a node is: written by the controller only. `src` is this router's
 * own address toward the node (the kernel's choice of source for that
 * route, looked up when the node is written): the source of full-NAT
 * requests; all zero where there is none.
 */
struct cpn_node_cfg {
	__be32 addr[4];
	__be16 port;
	__u8 family;
	__u8 flags;
	__u32 pad;
	__u64 key[2];
	__be32 src[4];
	__u64 key_next[2];
};

/* A request in flight: found again by what its REPLY or BUSY echoes
 * (request id, tenant, service, node) and its destination port, which is
 * the client's port, kept. Wire byte order, as in the packet. Full NAT
 * keeps one for every request (the reply's way back to the client); a
 * DNAT service with reply_check one too, so that a reply is relayed only
 * from the node its request went to, and only to that request's client.
 */
#define CPN_FLOWS 131072

struct cpn_flow_key {
	__be64 request_id;
	__be32 tenant_id;
	__be16 service_id;
	__be16 node_id;
	__be16 cport;
	__u16 pad[3];
};

struct cpn_flow {
	__be32 client[4];
	__u8 family;
	__u8 pad[7];
};

/* Signed messages with FRESH seen within the freshness window, by kind,
 * sender (tenant or node id) and tag (docs/PROTOCOL.md, "Freshness, hop
 * tags and cookies"): one that comes again is a replay. An LRU: a replay is
 * caught as long as fewer than CPN_SEEN signed messages arrived since the
 * first copy (at 100k signed messages/s, 2.6 s: more than the default
 * window of 2 s).
 */
#define CPN_SEEN 262144

enum cpn_seen_kind {
	CPN_SEEN_REQUEST = 1, /* sender: the tenant id */
	CPN_SEEN_NODE = 2,    /* REPLY, BUSY, LOAD, PROBE_ACK; sender: the node id */
};

struct cpn_seen_key {
	__u32 kind;
	__u32 sender;
	__u64 tag;
};

enum cpn_admin {
	CPN_ADMIN_UP = 0x1,
	CPN_ADMIN_DRAIN = 0x2,
};

enum cpn_report_flags {
	CPN_REP_DRAINING = 0x1,	  /* the node said DRAINING in its last report */
	CPN_REP_PATH_VALID = 0x2, /* path_us holds at least one sample */
	CPN_REP_SVC_VALID = 0x4,  /* svc_us holds at least one sample */
	/* The last report found the node idle (nothing queued or in flight,
	 * not draining) and nothing sent or unanswered here since the one
	 * before: cpn_learn_report.
	 */
	CPN_REP_IDLE = 0x8,
};

/* What the router knows of a node: the policy's whole input. admin and
 * weight are the controller's; the rest is learned from reports and from
 * the traffic itself (docs/ARCHITECTURE.md, "Liveness from the traffic").
 * 64 bytes, one cache line, in the BPF_F_MMAPABLE array cpn_node_state.
 */
struct cpn_node {
	__u32 admin;
	__u16 weight;	/* percent of nominal capacity, 1..1000 */
	__u16 capacity; /* as reported: 16 bits on the wire */
	__u16 queue_depth;
	__u16 inflight;
	/* How long the unanswered may wait for an answer before the node is
	 * suspect, µs: set when the first of them is steered, from what the
	 * node's state then predicts (cpn_node_steered), or by an answer that
	 * leaves some waiting (cpn_node_answered).
	 */
	__u32 deadline_us;
	/* What one more request waiting here adds to its answer time, in
	 * 1/256 µs: svc_us / (capacity x weight / 100), scaled by overclaim,
	 * kept by whoever changes one of those (cpn_node_cost), so that
	 * est_us takes no divide. 0: not known, est_us divides.
	 */
	__u32 slot_cost;
	__u8 util;
	__u8 pad;
	/* How far the node's answers fall short of the capacity it reports:
	 * EWMA of (time its answers took) / (time its reported load predicts),
	 * x CPN_OVERCLAIM_ONE, sampled while it has requests waiting. Above
	 * CPN_OVERCLAIM_OK the reported capacity is scaled down by it.
	 */
	__u16 overclaim;
	__u32 svc_us;  /* EWMA of the node's mean service time */
	__u32 path_us; /* EWMA of reply time minus worker_us */
	__u64 last_report_ns;
	__u32 outstanding; /* steered here since the last report */
	__u32 report_flags;
	__u32 unanswered;  /* steered here, not known answered (cpn_node_answered) */
	__u32 reported_us; /* the mean service time of its last report, as sent */
	__u64 since_ns;	   /* the clock of those: the first steered, or the last answer */
};
CPN_STATIC_ASSERT(sizeof(struct cpn_node) == 64, "cpn_node is one cache line");

/* The tenant entry that stands for every tenant id (`id: any` in the
 * configuration): a request whose own tenant is unknown, or not allowed the
 * service, is judged by it. Its rate limit is one budget shared by all the
 * tenants it admits, its key one key they all sign with.
 */
#define CPN_TENANT_ANY 0xFFFFFFFFu

enum cpn_tenant_flags {
	CPN_TENANT_KEY = 0x1,	   /* requests must carry AUTH with the tenant key */
	CPN_TENANT_KEY_NEXT = 0x2, /* key_next is accepted as well (rotation) */
	CPN_TENANT_FRESH = 0x4,	   /* signed requests must carry FRESH */
};

struct cpn_tenant {
	struct bpf_spin_lock lock; /* guards tat */
	__u32 flags;
	__u64 interval_ns; /* 1e9 / rate; 0 = no rate limit */
	__u64 burst_ns;	   /* burst x interval_ns */
	__u64 tat;	   /* GCRA theoretical arrival time */
	__u64 key[2];
	__u64 services[CPN_MAX_SERVICES / 64]; /* bitmap of allowed service ids */
	__u64 key_next[2];
	/* Entries of the tenant's own affinity map (cpn_affinity[id], an LRU
	 * that cpn_maps_set_tenant() creates): one tenant's sessions evict
	 * only its own. 0 = CPN_DEFAULT_MAX_SESSIONS.
	 */
	__u32 max_sessions;
	__u32 pad2;
};

/* cpn_xsk_slots: (ingress interface, RX queue) -> xsks_map slot of the
 * cpn-fwd socket bound there. cpn-fwd writes it; an entry whose socket is
 * gone (cpn-fwd stopped) finds an empty slot, and XDP steers itself.
 */
struct cpn_xsk_key {
	__u32 ifindex;
	__u32 queue;
};

/* Session affinity, per tenant entry: cpn_affinity maps the id of the
 * tenant entry that admitted the request (its own, or CPN_TENANT_ANY) to an
 * LRU hash of max_sessions entries of these.
 */
struct cpn_aff_key {
	__u32 tenant_id;
	__u32 session_key;
	__u16 service_id;
	__u16 pad;
};

struct cpn_aff {
	__u16 node_id;
	__u16 pad;
	__u32 pad2;
	__u64 last_ns;
};

enum cpn_config_flags {
	CPN_CFG_NO_NH_CACHE = 0x1, /* FIB lookup for every packet */
	CPN_CFG_FLEET_KEY = 0x2,   /* hop_key is the fleet's (configured), not drawn here */
};

#define CPN_DEFAULT_NH_TTL_MS 100

/* The hop key (docs/PROTOCOL.md, "Freshness, hop tags and cookies"): the
 * fleet's, or one cpnctl draws at random for a lone router; the data plane
 * tags steered requests and checks tagged ones and PROBE_ACK cookies with
 * it. fresh_ms: the window of stamps, 0 = CPN_FRESH_WINDOW_MS.
 */
struct cpn_config {
	__be16 control_port;
	__u16 max_hops;
	__u32 router_id;
	__u32 flags;
	__u32 nh_ttl_ms; /* life of a cached FIB result; 0 = CPN_DEFAULT_NH_TTL_MS */
	__u32 fresh_ms;
	__u32 pad;
	__u64 hop_key[2];
};

/* A FIB result for the path to a node, cached per CPU for nh_ttl_ms. */
struct cpn_nexthop {
	__u64 expires_ns;
	__u32 ifindex;	  /* egress port */
	__u32 in_ifindex; /* the ingress port it was looked up for */
	__u8 smac[6];
	__u8 dmac[6];
	__u32 pad;
};

struct cpn_node_stats {
	__u64 requests;			  /* steered to the node */
	__u64 replies;			  /* replies forwarded from it */
	__u64 busy;			  /* BUSY from it forwarded */
	__u64 reports;			  /* LOAD and PROBE_ACK learned */
	__u64 lat_hist[CPN_HIST_BUCKETS]; /* path latency samples, log2 µs */
};

/* Why a request of a known service was dropped: the index into
 * cpn_svc_stats.refused, and the label values of cpn_service_refused_total.
 */
#define CPN_REFUSALS(X)                                                                            \
	X(ACL, "acl")	    /* tenant unknown, or not allowed the service */                       \
	X(AUTH, "auth")	    /* tenant's tag missing or wrong */                                    \
	X(RATE, "rate")	    /* tenant over its rate */                                             \
	X(HOPS, "hops")	    /* too many steering hops */                                           \
	X(FAMILY, "family") /* the chosen node's address family is not the VIP's */

enum cpn_refusal {
#define CPN_REFUSAL_ENUM(name, str) CPN_REFUSE_##name,
	CPN_REFUSALS(CPN_REFUSAL_ENUM)
#undef CPN_REFUSAL_ENUM
	    CPN_REFUSE_MAX,
};

/* BUSY a router sends, by reason: cpn_svc_stats.busy[reason - 1] for the
 * reasons CPN_BUSY_WAIT (1) .. CPN_BUSY_NO_NODE (3) of proto.h.
 */
#define CPN_SVC_BUSY_REASONS 3

/* Per-service counters: every field a __u64, so that they sum word by word. */
struct cpn_svc_stats {
	__u64 requests;			  /* steered to a node */
	__u64 replies;			  /* replies forwarded to clients */
	__u64 node_busy;		  /* BUSY from a node forwarded */
	__u64 busy[CPN_SVC_BUSY_REASONS]; /* refused by this router: BUSY sent, by reason */
	__u64 refused[CPN_REFUSE_MAX];	  /* dropped after the service was known, by reason */
};

/* Every action and every drop reason of the data plane: the index into
 * struct cpn_cpu's stat[] (the per-CPU array cpn_stats). CPN_STATS(X) keeps
 * the enum and the names (Prometheus label values) in one list.
 */
#define CPN_STATS(X)                                                                               \
	X(RX, "rx")				/* packets seen */                                 \
	X(PASS_NOT_CPN, "pass_not_cpn")		/* not ours: passed untouched */                   \
	X(PASS_SHORT_L2, "pass_short_l2")	/* truncated Ethernet/VLAN: passed */              \
	X(PASS_SHORT_L3, "pass_short_l3")	/* truncated IP header: passed */                  \
	X(PASS_SHORT_L4, "pass_short_l4")	/* truncated UDP header: passed */                 \
	X(PASS_IP_OPTIONS, "pass_ip_options")	/* IPv4 with options: passed */                    \
	X(PASS_FRAGMENT, "pass_fragment")	/* IP fragment: passed */                          \
	X(REQ_STEERED, "req_steered")		/* request chosen and rewritten */                 \
	X(REQ_TAG_HONOURED, "req_tag_honoured") /* live tag kept */                                \
	X(REQ_RESTEERED, "req_resteered")	/* tag of a dead node replaced */                  \
	X(REQ_AFFINITY, "req_affinity")		/* session affinity kept */                        \
	X(REQ_FALLBACK, "req_fallback")		/* no live node: maglev over up nodes */           \
	X(REQ_DPDK, "req_dpdk")			/* handed to cpn-fwd */                            \
	X(TX_REDIRECT, "tx_redirect")		/* sent through the devmap */                      \
	X(TX_BOUNCE, "tx_bounce")		/* sent back out of the ingress port */            \
	X(TX_KERNEL, "tx_kernel")		/* rewritten, kernel forwards (neighbour) */       \
	X(BUSY_SENT, "busy_sent")		/* admission refused: BUSY to client */            \
	X(REPLY_FWD, "reply_fwd")		/* reply reverse-NATed to client */                \
	X(BUSY_FWD, "busy_fwd")			/* node's BUSY reverse-NATed to client */          \
	X(LOAD_LEARNED, "load_learned")		/* LOAD consumed */                                \
	X(PROBE_ACK_LEARNED, "probe_ack_learned")                                                  \
	X(LOAD_UNKNOWN, "load_unknown") /* LOAD from unknown node: passed up */                    \
	X(DROP_SHORT, "drop_short")	/* payload shorter than the header */                      \
	X(DROP_BAD_MAGIC, "drop_bad_magic")                                                        \
	X(DROP_BAD_VERSION, "drop_bad_version")                                                    \
	X(DROP_BAD_TYPE, "drop_bad_type")                                                          \
	X(DROP_BAD_SERVICE, "drop_bad_service") /* service_id is not the VIP's */                  \
	X(DROP_BAD_UDP_LEN, "drop_bad_udp_len")                                                    \
	X(DROP_BAD_IP_LEN, "drop_bad_ip_len")                                                      \
	X(DROP_ACL, "drop_acl")		    /* unknown tenant or service not allowed */            \
	X(DROP_RATE, "drop_rate")	    /* tenant over its rate */                             \
	X(DROP_AUTH, "drop_auth")	    /* request tag missing or wrong */                     \
	X(DROP_NODE_AUTH, "drop_node_auth") /* report tag missing or wrong: spoofed */             \
	X(DROP_FAMILY, "drop_family")	    /* node family differs from the VIP's */               \
	X(DROP_HOPS, "drop_hops")	    /* too many steering hops */                           \
	X(DROP_TX, "drop_tx")		    /* could not transmit (FIB error) */                   \
	X(TOKEN_IN, "token_in")		    /* idle token kept from a REPLY (jiq) */               \
	X(REQ_TOKEN, "req_token")	    /* request given to an idle token's node (jiq) */      \
	X(REQ_FULLNAT, "req_fullnat")	    /* request sent from the router's own address */       \
	X(DROP_NO_FLOW,                                                                            \
	  "drop_no_flow")	    /* reply whose request is unknown (full NAT, reply_check) */   \
	X(REQ_FRAG, "req_frag")	    /* request fragment forwarded to its node */                   \
	X(REPLY_FRAG, "reply_frag") /* reply fragment (or ack) forwarded to its client */          \
	X(DROP_FRAG_NODE, "drop_frag_node") /* request fragment for a node not in the service */   \
	X(DROP_BAD_CSUM, "drop_bad_csum")   /* report with a wrong IPv4 or UDP checksum */         \
	X(REQ_TAG_FORGED,                                                                          \
	  "req_tag_forged")		/* TAGGED request without a valid hop tag: chosen anew */  \
	X(DROP_HOP_TAG, "drop_hop_tag") /* request fragment without a valid hop tag */             \
	X(DROP_PROBE_COOKIE, "drop_probe_cookie") /* PROBE_ACK not of our PROBE, or too old */     \
	X(DROP_STALE, "drop_stale")   /* signed without FRESH, or stamp out of window */           \
	X(DROP_REPLAY, "drop_replay") /* signed message seen within the window */                  \
	X(REQ_HELD, "req_held")	      /* dispatch: late, held by cpn-fwd for a free slot */        \
	X(REPLY_DPDK, "reply_dpdk")   /* dispatch: late, an answer handed to cpn-fwd */

enum cpn_stat {
#define CPN_STAT_ENUM(name, str) CPN_STAT_##name,
	CPN_STATS(CPN_STAT_ENUM)
#undef CPN_STAT_ENUM
	    CPN_STAT_MAX,
};

/* The data plane's record of one CPU, the single entry of the per-CPU
 * array cpn_stats: every counter of CPN_STATS, the state of the generator
 * the policies draw from (xorshift64*, seeded from the kernel's PRNG when
 * 0), and the XDP program's scratch for one packet's FIB request (struct
 * bpf_fib_lookup), kept off its stack. One lookup a packet brings them.
 */
struct cpn_cpu {
	__u64 stat[CPN_STAT_MAX];
	__u64 rng;
	__u64 scratch[8];
};

#ifndef __bpf__
/* A service's candidates: nodes[], n_nodes and the membership bitmap, which
 * the data planes read for "is this node one of them" (ids >= CPN_MAX_NODES
 * and entries past CPN_MAX_SVC_NODES are ignored).
 */
static inline void cpn_svc_set_nodes(struct cpn_service *s, const __u16 *ids, __u32 n)
{
	__builtin_memset(s->member, 0, sizeof(s->member));
	if (n > CPN_MAX_SVC_NODES)
		n = CPN_MAX_SVC_NODES;
	for (__u32 i = 0; i < n; i++) {
		s->nodes[i] = ids[i];
		if (ids[i] < CPN_MAX_NODES)
			s->member[ids[i] / 64] |= 1ULL << (ids[i] % 64);
	}
	s->n_nodes = n;
}

static const char *const cpn_stat_names[CPN_STAT_MAX] = {
#define CPN_STAT_NAME(name, str) [CPN_STAT_##name] = str,
    CPN_STATS(CPN_STAT_NAME)
#undef CPN_STAT_NAME
};

static const char *const cpn_refusal_names[CPN_REFUSE_MAX] = {
#define CPN_REFUSAL_NAME(name, str) [CPN_REFUSE_##name] = str,
    CPN_REFUSALS(CPN_REFUSAL_NAME)
#undef CPN_REFUSAL_NAME
};

/* Label values of cpn_svc_stats.busy[]: the BUSY reasons of proto.h. */
static const char *const cpn_svc_busy_names[CPN_SVC_BUSY_REASONS] = {"wait", "queue", "no_node"};

/* out += in, counter by counter. */
static inline void cpn_svc_stats_add(struct cpn_svc_stats *out, const struct cpn_svc_stats *in)
{
	__u64 *o = (__u64 *)out;
	const __u64 *x = (const __u64 *)in;

	for (unsigned int i = 0; i < sizeof(*out) / sizeof(__u64); i++)
		o[i] += x[i];
}

static inline __u64 cpn_svc_busy_total(const struct cpn_svc_stats *s)
{
	__u64 t = 0;

	for (int i = 0; i < CPN_SVC_BUSY_REASONS; i++)
		t += s->busy[i];
	return t;
}

static inline __u64 cpn_svc_refused_total(const struct cpn_svc_stats *s)
{
	__u64 t = 0;

	for (int i = 0; i < CPN_REFUSE_MAX; i++)
		t += s->refused[i];
	return t;
}

static const char *const cpn_policy_names[CPN_POL_MAX + 1] = {
    [CPN_POL_P2C] = "p2c",	 [CPN_POL_LEAST] = "least",    [CPN_POL_MAGLEV] = "maglev",
    [CPN_POL_RANDOM] = "random", [CPN_POL_RR] = "round-robin", [CPN_POL_JIQ] = "jiq",
};
#endif

/* Token bucket (GCRA) parameters of a tenant from rate/s and burst. */
static __always_inline void cpn_tenant_set_rate(struct cpn_tenant *t, __u64 rate, __u64 burst)
{
	t->interval_ns = rate ? 1000000000ULL / rate : 0;
	if (rate && !t->interval_ns)
		t->interval_ns = 1;
	t->burst_ns = (burst ? burst : 1) * t->interval_ns;
	t->tat = 0;
}

static __always_inline int cpn_tenant_allows(const struct cpn_tenant *t, __u16 service_id)
{
	__u32 s = service_id & (CPN_MAX_SERVICES - 1);

	if (service_id >= CPN_MAX_SERVICES)
		return 0;
	return (t->services[s / 64] >> (s % 64)) & 1;
}

/* GCRA: may one more request pass at `now`? Updates *tat when it does. */
static __always_inline int cpn_gcra(__u64 *tat, __u64 now, __u64 interval_ns, __u64 burst_ns)
{
	__u64 t = *tat > now ? *tat : now;

	if (!interval_ns)
		return 1;
	if (t + interval_ns - now > burst_ns)
		return 0;
	*tat = t + interval_ns;
	return 1;
}

#endif /* CPN_MAPS_H */
