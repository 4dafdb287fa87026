/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpn's client library: how an application sends compute requests to a cpn
 * service and gets the replies (docs/APPLICATIONS.md, cpn_client(3)).
 *
 *   struct cpn_client *cl = cpn_client_open("10.0.0.100:7470", 1, 42, &err);
 *   rc = cpn_client_call(cl, req, req_len, buf, sizeof(buf), &len, 500);
 *   cpn_client_close(cl);
 *
 * A client is one UDP socket and a table of request slots. It sends
 * REQUESTs (docs/PROTOCOL.md) to the service's VIP:port, or spreads them over
 * several router addresses, and matches REPLY and BUSY answers by request id.
 * Requests larger than one datagram travel as fragments ("Large messages").
 *
 * Threads: a client is not locked. One thread at a time may use it (any
 * thread, one after the other); threads that share one serialise their calls
 * themselves, or open a client each. Distinct clients are independent.
 *
 * Errors: functions that can fail return 0 (or a count) on success and a
 * negative enum cpn_err on failure; cpn_strerror() names it.
 */
#ifndef CPN_CLIENT_H
#define CPN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum cpn_err {
	CPN_OK = 0,
	CPN_E_INVAL = -1,     /* a bad argument, option or address: nothing changed */
	CPN_E_NOMEM = -2,     /* out of memory, or over the client's reassembly budget */
	CPN_E_TIMEOUT = -3,   /* no answer before the request's deadline */
	CPN_E_BUSY = -4,      /* BUSY: refused by a router or node; the reason in `remote` */
	CPN_E_REMOTE = -5,    /* a REPLY whose status is not 0: the status in `remote` */
	CPN_E_TOO_LARGE = -6, /* a message over the client's limit, or REPLY status 4 */
	CPN_E_PROTO = -7,     /* the node broke the protocol (a first fragment answered whole) */
	CPN_E_CLOSED = -8,    /* the socket failed for good: close the client */
	CPN_E_FULL = -9,      /* max in flight reached: poll for completions first */
	CPN_E_SYS = -10,      /* a system call failed: errno says why */
	CPN_E_SEAL = -11,     /* a reply to a sealed request that does not open (another
			       * payload key, altered on the way, or not sealed) */
};

/* A static string naming an error code (0 and unknown codes included). */
const char *cpn_strerror(int err);

struct cpn_client;

/* Open a client for service `service` of tenant `tenant`. `to` is
 * "VIP:PORT", "[IPv6]:PORT", or several router addresses separated by
 * commas (requests are spread over them in turn; an address whose request
 * timed out is passed over for a second). Returns NULL and sets *err (may
 * be NULL) on failure.
 */
struct cpn_client *cpn_client_open(const char *to, uint16_t service, uint32_t tenant, int *err);

/* Close the socket and free everything; requests in flight are abandoned.
 * NULL is a no-op.
 */
void cpn_client_close(struct cpn_client *cl);

/* The tenant key: requests then carry CPN_F_AUTH, CPN_F_FRESH with the
 * send time (CLOCK_TAI ms) in `stamp`, and the SipHash-2-4 tag of
 * cpn_tag_request_fresh() (cpn/siphash.h): a router or node that requires
 * freshness refuses a copy sent again later. `hex`: 32 hex digits; `key`:
 * the 16 bytes. NULL clears the key.
 */
int cpn_client_set_key(struct cpn_client *cl, const char *hex);
int cpn_client_set_key_bytes(struct cpn_client *cl, const uint8_t key[16]);

/* The tenant's payload key (docs/PROTOCOL.md, "Sealed payloads"): every
 * request's payload is then sealed end to end (CPN_F_SEALED, XChaCha20-
 * Poly1305 under the key; a large one sealed whole, then fragmented), and
 * every reply opened before the caller sees it: one that does not open
 * completes with CPN_E_SEAL (counted unseal_failed). Routers never see the
 * payload. `hex`: 64 hex digits; `key`: the 32 bytes. NULL clears the key.
 * The payload limit (CPN_OPT_MAX_MESSAGE) is of the plaintext; a sealed one
 * is CPN_SEAL_OVERHEAD (40) bytes larger on the wire.
 */
int cpn_client_set_payload_key(struct cpn_client *cl, const char *hex);
int cpn_client_set_payload_key_bytes(struct cpn_client *cl, const uint8_t key[32]);

enum cpn_client_opt {
	CPN_OPT_TIMEOUT_MS = 1, /* default deadline of a request, ms (1000) */
	CPN_OPT_BUSY_RETRY,	/* 0: BUSY completes with CPN_E_BUSY (default); 1: retried
				 * with jittered exponential backoff within the deadline */
	CPN_OPT_MAX_RETRIES,	/* retries per request, BUSY and lost alike (2) */
	CPN_OPT_RETRY_PERCENT,	/* client-wide budget: retries <= this % of requests (10) */
	CPN_OPT_RETRY_FLOOR,	/* ... plus this many per second (10) */
	CPN_OPT_BACKOFF_US,	/* first BUSY backoff, doubled per retry, jittered (1000) */
	CPN_OPT_BACKOFF_MAX_US, /* backoff cap (100000) */
	CPN_OPT_ATTEMPT_MS,	/* idempotent requests: resent when unanswered this long;
				 * 0: the deadline over (max retries + 1) (0) */
	CPN_OPT_SESSION,	/* default session key, 0 = none (0) */
	CPN_OPT_STICKY,		/* 1: every request with a session key carries STICKY (0) */
	CPN_OPT_CLASS,		/* default priority class, 0 highest (0) */
	CPN_OPT_MAX_INFLIGHT,	/* requests in flight at most (4096); only with none in flight */
	CPN_OPT_MAX_MESSAGE,	/* largest request or reply, bytes (4 MiB; at most 64 MiB) */
	CPN_OPT_FRAG_SIZE,	/* message bytes per fragment (1408; 1388 over IPv6) */
	CPN_OPT_DGRAM_MAX,	/* largest datagram (header, tag and payload) sent whole:
				 * larger requests are fragmented (1472; 1452 over IPv6) */
	CPN_OPT_DISCARD_REPLY,	/* 1: reply payloads are not read (completions have none) */
	CPN_OPT_REASM_BUDGET,	/* reply reassembly bytes held at once, all requests (64 MiB) */
};

/* Set an option; CPN_E_INVAL for an unknown option or a value out of range. */
int cpn_client_setopt(struct cpn_client *cl, enum cpn_client_opt opt, uint64_t value);
int cpn_client_getopt(const struct cpn_client *cl, enum cpn_client_opt opt, uint64_t *value);

/* The socket: readable when answers wait. Poll it, then cpn_client_poll().
 * The client owns it: do not read from or close it.
 */
int cpn_client_fd(const struct cpn_client *cl);

/* ---- requests -------------------------------------------------------- */

enum cpn_req_flags {
	CPN_REQ_IDEMPOTENT = 1, /* may be sent again when unanswered (same request id) */
	CPN_REQ_STICKY = 2,	/* STICKY with the session key: the same node every time */
	CPN_REQ_NOCOPY = 4,	/* the payload is the caller's until the request completes */
	CPN_REQ_NO_RETRY = 8,	/* never retried, whatever CPN_OPT_BUSY_RETRY says */
	CPN_REQ_CLASS = 16,	/* class_ is this request's class (else CPN_OPT_CLASS) */
};

struct cpn_req {
	const void *data;     /* payload; copied at submit unless CPN_REQ_NOCOPY */
	size_t len;	      /* bytes, up to CPN_OPT_MAX_MESSAGE */
	uint32_t timeout_ms;  /* deadline from submit; 0: CPN_OPT_TIMEOUT_MS */
	uint32_t session_key; /* 0: CPN_OPT_SESSION */
	uint32_t flags;	      /* enum cpn_req_flags */
	uint8_t class_;	      /* priority class, 0 highest, with CPN_REQ_CLASS */
	uint64_t user;	      /* the caller's, returned in the completion */
};

struct cpn_completion {
	uint64_t id;	     /* the request id cpn_client_submit() gave */
	uint64_t user;	     /* struct cpn_req's */
	int status;	     /* 0, or a negative enum cpn_err */
	uint8_t remote;	     /* CPN_E_REMOTE: the REPLY status; CPN_E_BUSY: the reason */
	uint16_t node_id;    /* the node that answered (0: none) */
	uint32_t retries;    /* times it was sent again */
	uint64_t latency_ns; /* submit to completion */
	const void *data;    /* reply payload (0 and CPN_E_REMOTE): the client's memory,
			      * valid until the next call into this client */
	size_t len;
};

/* Submit one request; its id in *id (may be NULL): unique per client and
 * unpredictable (a counter through a keyed permutation, the key random per
 * client). It is sent at once. CPN_E_FULL: max in flight.
 */
int cpn_client_submit(struct cpn_client *cl, const struct cpn_req *req, uint64_t *id);

/* Submit n requests in one batch (one sendmmsg for those that fit a
 * datagram). Returns how many were taken (the first ones; fewer when the
 * client is full), or a negative error when none was. ids: n entries or NULL.
 */
int cpn_client_submit_many(struct cpn_client *cl, const struct cpn_req *reqs, int n, uint64_t *ids);

/* Do what is due (read answers in batches, send retries and fragments,
 * expire deadlines) and return up to `max` completions in `out`, waiting
 * up to timeout_ms (0: not at all, -1: until one completes or nothing is in
 * flight) for the first. Returns the number of completions, or a negative
 * error. Completions' data stay valid until the next call into this client.
 */
int cpn_client_poll(struct cpn_client *cl, struct cpn_completion *out, int max, int timeout_ms);

/* Requests submitted and not yet completed. */
unsigned cpn_client_inflight(const struct cpn_client *cl);

/* Milliseconds until the client next has something to do (a deadline, a
 * retry), for a caller that polls the fd itself: -1 when nothing is in flight.
 */
int cpn_client_next_ms(const struct cpn_client *cl);

/* ---- synchronous calls ------------------------------------------------- */

/* Send one request and wait for its answer (no other request of this
 * client may be in flight: CPN_E_INVAL). The reply is copied to
 * reply[0..cap); *reply_len (may be NULL) is its size, also when it is
 * larger than cap (then CPN_E_TOO_LARGE). timeout_ms 0: CPN_OPT_TIMEOUT_MS.
 * Returns 0 or a negative error; cpn_client_last() says more.
 */
int cpn_client_call(struct cpn_client *cl, const void *req, size_t len, void *reply, size_t cap,
		    size_t *reply_len, uint32_t timeout_ms);

/* The same with every request field, the reply in *out: out->data is the
 * client's memory, valid until the next call into this client.
 */
int cpn_client_call_req(struct cpn_client *cl, const struct cpn_req *req,
			struct cpn_completion *out);

/* The same, the reply in a buffer the library allocates (*reply: free it
 * with cpn_free(); NULL when the reply is empty or on error).
 */
int cpn_client_call_alloc(struct cpn_client *cl, const void *req, size_t len, void **reply,
			  size_t *reply_len, uint32_t timeout_ms);
void cpn_free(void *p);

/* The completion of the last synchronous call (status, remote status,
 * node, retries, latency; data NULL).
 */
void cpn_client_last(const struct cpn_client *cl, struct cpn_completion *out);

/* ---- what was counted -------------------------------------------------- */

struct cpn_client_stats {
	uint64_t submitted;		     /* requests taken */
	uint64_t completed;		     /* ... and completed, by status: */
	uint64_t replies;		     /*   REPLY, status 0 */
	uint64_t remote_errors;		     /* REPLY, status not 0 */
	uint64_t busy;			     /*   BUSY returned to the caller */
	uint64_t timeouts;		     /*   CPN_E_TIMEOUT */
	uint64_t failed;		     /*   other errors */
	uint64_t retries_busy, retries_lost; /* sent again after a BUSY, after no answer */
	uint64_t retries_denied;	     /* a retry the budget or deadline did not allow */
	uint64_t tx_datagrams, rx_datagrams;
	uint64_t tx_fragments, rx_fragments; /* data fragments of large messages */
	uint64_t tx_acks, rx_acks;	     /* fragment acks */
	/* Counted and ignored: */
	uint64_t malformed;	/* not a cpn header: short, magic, version, type */
	uint64_t bad_type;	/* a cpn type that answers nothing (REQUEST, LOAD, ...) */
	uint64_t foreign;	/* another service or tenant, or from an unknown address */
	uint64_t unknown;	/* a request id this client never sent */
	uint64_t late;		/* an answer after its request's deadline */
	uint64_t duplicates;	/* a second answer to a request */
	uint64_t frag_bad;	/* a fragment with total or offset out of range */
	uint64_t frag_dup;	/* a fragment already held */
	uint64_t send_refused;	/* ICMP port or host unreachable reported on a send or receive */
	uint64_t send_full;	/* a send found the socket buffer full (it was retried) */
	uint64_t send_dropped;	/* a datagram the host refused to send (a local firewall rule,
				 * no route): lost, as if on the path */
	uint64_t unseal_failed; /* replies to sealed requests that did not open (CPN_E_SEAL) */
};

/* Copy the counters (size: sizeof(struct cpn_client_stats), for growth). */
int cpn_client_stats(const struct cpn_client *cl, struct cpn_client_stats *st, size_t size);

/* Answers that match a request no longer in flight (late, a duplicate)
 * are counted; a program that wants to know which may be told.
 */
enum cpn_stray { CPN_STRAY_LATE = 1, CPN_STRAY_DUPLICATE = 2 };
void cpn_client_on_stray(struct cpn_client *cl, void (*fn)(void *arg, uint64_t id, int kind),
			 void *arg);

#ifdef __cplusplus
}
#endif

#endif /* CPN_CLIENT_H */
