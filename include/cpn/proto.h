/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpn wire format, version 1.
 *
 * UDP payload = struct cpn_hdr (48 bytes) [+ 8-byte SipHash-2-4 tag when
 * CPN_F_AUTH is set] + application payload. Every multi-byte field is in
 * network byte order on the wire.
 *
 * Plain C: this header compiles with `clang -target bpf` and for userspace.
 */
#ifndef CPN_PROTO_H
#define CPN_PROTO_H

#include <linux/types.h>
#include "cpn/compiler.h"

#define CPN_MAGIC   0x4350
#define CPN_VERSION 1

#define CPN_HDR_LEN 48
#define CPN_TAG_LEN 8

/* Bytes covered by the tag: the tenant signs the request's identity, a node
 * signs its whole header (the load report included).
 */
#define CPN_AUTH_REQ_LEN  24
#define CPN_AUTH_NODE_LEN 48

enum cpn_type {
	CPN_T_REQUEST = 1,
	CPN_T_REPLY = 2,
	CPN_T_LOAD = 3,
	CPN_T_PROBE = 4,
	CPN_T_PROBE_ACK = 5,
	CPN_T_BUSY = 6,
	CPN_T_MAX = CPN_T_BUSY,
};

enum cpn_flags {
	CPN_F_TAGGED = 0x0001,
	CPN_F_AUTH = 0x0002,
	CPN_F_DRAINING = 0x0004,
	CPN_F_STICKY = 0x0008,
	CPN_F_TOKEN = 0x0010,	/* REPLY: the node can take work (idle token, policy jiq) */
	CPN_F_FRAG = 0x0020,	/* one fragment of a larger message: struct cpn_frag follows */
	CPN_F_CONT = 0x0040,	/* with FRAG: not the fragment the router accounts (below) */
	CPN_F_FRAG_OK = 0x0080, /* REQUEST: the client takes a large reply as fragments */
	CPN_F_FRESH = 0x0100,	/* `stamp` holds the sender's clock and is signed (below) */
	CPN_F_SEALED = 0x0200,	/* the payload is encrypted end to end (struct cpn_sealed) */
};

/* Freshness and trusted hops (docs/PROTOCOL.md, "Freshness, hop tags and
 * cookies").
 *
 *   stamp     (offset 44, `reserved` before) with FRESH: the sender's
 *             CLOCK_TAI in milliseconds, mod 2^32. A tenant's tag then also
 *             covers it (cpn_tag_request_fresh); a node's tag covers the
 *             whole header anyway. A receiver that wants freshness refuses
 *             a signed message without FRESH, a stamp further than its
 *             window from its own clock, or a tag it has seen within the
 *             window.
 *   hop tag   a REQUEST's `worker_us` (unused in requests) as the steering
 *             hop leaves it: the low 32 bits of SipHash-2-4 under the hop
 *             key (shared by the routers of a fleet, and the nodes that
 *             check it) of {request_id, tenant_id, service_id, node_id,
 *             router_ts, stamp} (cpn_hop_tag). A TAGGED request is honoured
 *             only with a valid hop tag; a node that knows the hop key
 *             answers only requests that carry one. A node's ack of a large
 *             request's first fragment echoes router_ts and the hop tag (in
 *             worker_us), and the client copies both into the later
 *             fragments.
 *   cookie    a PROBE's request_id: SipHash-2-4 under the hop key of
 *             {node_id, router_ts} (cpn_probe_cookie); a PROBE_ACK is
 *             learned only if it echoes a cookie of that node and time.
 */
#define CPN_HOP_TAG_OFF	     CPN_HDR_WORKER_US_OFF
#define CPN_FRESH_WINDOW_MS  2000    /* default: +-2 s of clock skew and path delay */
#define CPN_PROBE_MAX_AGE_US 1000000 /* a PROBE_ACK older than this is no path sample */

/* A SEALED payload (end-to-end encryption, docs/PROTOCOL.md, "Sealed
 * payloads"): a 24-byte nonce, then the ciphertext and its 16-byte
 * authenticator: XChaCha20-Poly1305 (IETF) under the tenant's payload key,
 * the additional data the header's bytes 0..23 with the hop-owned flags
 * zeroed (what a tenant's tag covers). The router never holds the key.
 */
#define CPN_SEAL_NONCE_LEN 24
#define CPN_SEAL_MAC_LEN   16
#define CPN_SEAL_OVERHEAD  (CPN_SEAL_NONCE_LEN + CPN_SEAL_MAC_LEN)
#define CPN_SEAL_KEY_LEN   32

/* Flags that a steering hop may change after the client signed the request:
 * they are hashed as zero (docs/PROTOCOL.md).
 */
#define CPN_F_HOP_OWNED CPN_F_TAGGED

/* Large messages (docs/PROTOCOL.md, "Large messages"). A request or reply
 * larger than one datagram travels as fragments of one message: each
 * carries FRAG and, after the header (and tag), a struct cpn_frag, then up
 * to the sender's fragment size of the message's bytes.
 *
 *   REQUEST  the first fragment (offset 0) has FRAG alone and is steered
 *            like any request; every other one has FRAG|CONT|TAGGED and the
 *            node_id of the node that acknowledged the first: a router
 *            forwards it to that node without deciding or counting again.
 *   REPLY    every fragment but the one sent last has FRAG|CONT; the last
 *            has FRAG alone and is the reply the router learns from. A node
 *            fragments a reply larger than its fragment size only for a
 *            request that carried FRAG or FRAG_OK (a client that reassembles):
 *            to any other it sends one datagram, as before.
 *   ack      a fragment with no message bytes, from the receiver to the
 *            sender (a REPLY with FRAG|CONT from the node, a REQUEST with
 *            FRAG|CONT|TAGGED from the client): `offset` is how many bytes
 *            of the message it holds. The node acknowledges a request's
 *            first fragment at once, then each CPN_FRAG_ACK_EVERY bytes; a
 *            sender keeps at most CPN_FRAG_WINDOW bytes unacknowledged.
 *
 * A fragment that is lost fails its message: the receiver drops what it
 * holds after its timeout, the client returns a timeout. Nothing is resent.
 */
struct cpn_frag {
	__be32 total;  /* bytes in the whole message, 1..CPN_FRAG_MAX_TOTAL */
	__be32 offset; /* data: where this fragment's bytes go; ack: bytes held */
};

#define CPN_FRAG_LEN	   8
#define CPN_FRAG_MAX_TOTAL (64u << 20) /* what the wire allows; each end sets its own limit */
#define CPN_FRAG_WINDOW	   (256u << 10)
#define CPN_FRAG_ACK_EVERY (64u << 10)
/* Message bytes per fragment by default: one 1500-byte IPv4 frame with the
 * header, tag and fragment header (1500 - 20 - 8 - 48 - 8 - 8).
 */
#define CPN_FRAG_DATA_DEFAULT 1408

CPN_STATIC_ASSERT(sizeof(struct cpn_frag) == CPN_FRAG_LEN, "cpn_frag is 8 bytes");

/* REPLY status: 0 ok, else an error code of the worker. */
enum cpn_reply_status {
	CPN_ST_OK = 0,
	CPN_ST_BAD_REQUEST = 1,
	CPN_ST_KERNEL_ERROR = 2,
	CPN_ST_UNSUPPORTED = 3,
	CPN_ST_TOO_LARGE = 4, /* a message above the node's --max-message */
};

/* BUSY status: why the request was refused. */
enum cpn_busy_reason {
	CPN_BUSY_WAIT = 1,     /* est_us of the best node above max_wait_us */
	CPN_BUSY_QUEUE = 2,    /* every candidate's queue at max_queue */
	CPN_BUSY_NO_NODE = 3,  /* no administratively-up node for the service */
	CPN_BUSY_DRAINING = 4, /* sent by a node that is draining */
	CPN_BUSY_OVERLOAD = 5, /* sent by a node whose own queue is full */
};

struct cpn_hdr {
	__be16 magic;
	__u8 version;
	__u8 type;
	__be16 flags;
	__be16 service_id;
	__be32 tenant_id;
	__be32 session_key;
	__be64 request_id;
	__be16 node_id;
	__u8 hops;
	__u8 class;
	__be32 router_ts;
	__be16 queue_depth;
	__be16 inflight;
	__be16 capacity;
	__u8 util;
	__u8 status;
	__be32 worker_us; /* REQUEST: the hop tag */
	__be32 stamp;	  /* with FRESH: sender's CLOCK_TAI ms mod 2^32; else 0 */
};

#define CPN_HDR_WORKER_US_OFF 40

CPN_STATIC_ASSERT(sizeof(struct cpn_hdr) == CPN_HDR_LEN, "cpn_hdr is 48 bytes");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, magic) == 0, "magic");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, version) == 2, "version");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, type) == 3, "type");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, flags) == 4, "flags");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, service_id) == 6, "service_id");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, tenant_id) == 8, "tenant_id");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, session_key) == 12, "session_key");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, request_id) == 16, "request_id");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, node_id) == 24, "node_id");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, hops) == 26, "hops");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, class) == 27, "class");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, router_ts) == 28, "router_ts");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, queue_depth) == 32, "queue_depth");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, inflight) == 34, "inflight");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, capacity) == 36, "capacity");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, util) == 38, "util");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, status) == 39, "status");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, worker_us) == 40, "worker_us");
CPN_STATIC_ASSERT(__builtin_offsetof(struct cpn_hdr, stamp) == 44, "stamp");

/* The header in host byte order: what userspace programs build and read. */
struct cpn_msg {
	__u16 magic;
	__u8 version;
	__u8 type;
	__u16 flags;
	__u16 service_id;
	__u32 tenant_id;
	__u32 session_key;
	__u64 request_id;
	__u16 node_id;
	__u8 hops;
	__u8 class;
	__u32 router_ts;
	__u16 queue_depth;
	__u16 inflight;
	__u16 capacity;
	__u8 util;
	__u8 status;
	__u32 worker_us;
	__u32 stamp;
};

/* Why a datagram addressed to cpn is not accepted (cpn_hdr_check). */
enum cpn_hdr_err {
	CPN_HDR_OK = 0,
	CPN_HDR_SHORT, /* fewer than 48 bytes, or AUTH without the tag */
	CPN_HDR_BAD_MAGIC,
	CPN_HDR_BAD_VERSION,
	CPN_HDR_BAD_TYPE,
};

static __always_inline void cpn_hdr_decode(const struct cpn_hdr *h, struct cpn_msg *m)
{
	m->magic = cpn_ntohs(h->magic);
	m->version = h->version;
	m->type = h->type;
	m->flags = cpn_ntohs(h->flags);
	m->service_id = cpn_ntohs(h->service_id);
	m->tenant_id = cpn_ntohl(h->tenant_id);
	m->session_key = cpn_ntohl(h->session_key);
	m->request_id = cpn_ntohll(h->request_id);
	m->node_id = cpn_ntohs(h->node_id);
	m->hops = h->hops;
	m->class = h->class;
	m->router_ts = cpn_ntohl(h->router_ts);
	m->queue_depth = cpn_ntohs(h->queue_depth);
	m->inflight = cpn_ntohs(h->inflight);
	m->capacity = cpn_ntohs(h->capacity);
	m->util = h->util;
	m->status = h->status;
	m->worker_us = cpn_ntohl(h->worker_us);
	m->stamp = cpn_ntohl(h->stamp);
}

static __always_inline void cpn_hdr_encode(const struct cpn_msg *m, struct cpn_hdr *h)
{
	h->magic = cpn_htons(m->magic);
	h->version = m->version;
	h->type = m->type;
	h->flags = cpn_htons(m->flags);
	h->service_id = cpn_htons(m->service_id);
	h->tenant_id = cpn_htonl(m->tenant_id);
	h->session_key = cpn_htonl(m->session_key);
	h->request_id = cpn_htonll(m->request_id);
	h->node_id = cpn_htons(m->node_id);
	h->hops = m->hops;
	h->class = m->class;
	h->router_ts = cpn_htonl(m->router_ts);
	h->queue_depth = cpn_htons(m->queue_depth);
	h->inflight = cpn_htons(m->inflight);
	h->capacity = cpn_htons(m->capacity);
	h->util = m->util;
	h->status = m->status;
	h->worker_us = cpn_htonl(m->worker_us);
	h->stamp = cpn_htonl(m->stamp);
}

/* A fresh header of the given type with magic and version set. */
static __always_inline void cpn_msg_init(struct cpn_msg *m, __u8 type)
{
	__builtin_memset(m, 0, sizeof(*m));
	m->magic = CPN_MAGIC;
	m->version = CPN_VERSION;
	m->type = type;
}

/* Validate a header of which `len` payload bytes are present (len >= 48 is
 * checked here, so `h` may point at fewer bytes only if len says so).
 */
static __always_inline int cpn_hdr_check(const struct cpn_hdr *h, __u32 len)
{
	if (len < CPN_HDR_LEN)
		return CPN_HDR_SHORT;
	if (h->magic != cpn_htons(CPN_MAGIC))
		return CPN_HDR_BAD_MAGIC;
	if (h->version != CPN_VERSION)
		return CPN_HDR_BAD_VERSION;
	if (h->type == 0 || h->type > CPN_T_MAX)
		return CPN_HDR_BAD_TYPE;
	if ((h->flags & cpn_htons(CPN_F_AUTH)) && len < CPN_HDR_LEN + CPN_TAG_LEN)
		return CPN_HDR_SHORT;
	return CPN_HDR_OK;
}

/* FRESH: is a stamp (ms mod 2^32) within `window_ms` of `now_ms`, either way? */
static __always_inline int cpn_stamp_ok(__u32 stamp, __u32 now_ms, __u32 window_ms)
{
	__s32 d = (__s32)(stamp - now_ms);

	return d <= (__s32)window_ms && d >= -(__s32)window_ms;
}

/* Length of header plus tag. */
static __always_inline __u32 cpn_hdr_total_len(const struct cpn_hdr *h)
{
	return (h->flags & cpn_htons(CPN_F_AUTH)) ? CPN_HDR_LEN + CPN_TAG_LEN : CPN_HDR_LEN;
}

#endif /* CPN_PROTO_H */
