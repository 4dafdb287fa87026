/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpn's worker library: a program becomes a cpn node by giving it a
 * handler, the code that computes answers for batches of requests. The
 * library does everything else a node does (docs/PROTOCOL.md): it receives
 * REQUESTs on one UDP socket, batches them dynamically (a batch closes at
 * max-batch requests or when its oldest waited max-delay-us), runs the
 * handler on capacity batch slots (one thread each), sends one REPLY per
 * request with the node's load report, answers PROBEs, sends LOAD
 * heartbeats to the routers, answers BUSY when the queue is full or the
 * node is draining, signs every report with the node key, marks replies
 * with idle tokens (policy jiq), reassembles large requests and sends large
 * replies as fragments ("Large messages"), and serves Prometheus /metrics.
 *
 *   struct cpn_worker_config *c = cpn_worker_config_new();
 *   cpn_worker_config_set(c, "listen", "10.0.0.1:7471");
 *   cpn_worker_config_set(c, "router", "10.0.0.254:7471");
 *   cpn_worker_config_set(c, "node-id", "1");
 *   struct cpn_worker *w;
 *   if (cpn_worker_open(&w, c, &handler, err, sizeof(err)) == 0) {
 *           cpn_worker_run(w, "my-node");   // until SIGTERM/SIGINT, drained
 *           cpn_worker_close(w);
 *   }
 *   cpn_worker_config_free(c);
 *
 * Link with `pkg-config --libs libcpn` (libcpn.so.0). cpn_worker(3) has
 * every function; docs/APPLICATIONS.md, "Worker library", a walk-through.
 * Return codes: 0 on success, or a negative errno value (-EINVAL for a bad
 * value, -ENOMEM, -EADDRINUSE and other socket errors, -EIO when the
 * handler failed), with a message where the function takes an err buffer.
 */
#ifndef CPN_WORKER_H
#define CPN_WORKER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The largest payload that travels in one datagram (IPv4 UDP, header and
 * tag): a larger request or reply is a large message of fragments.
 */
#define CPN_WORKER_MAX_DATAGRAM_PAYLOAD (65507 - 56)

/* ---- configuration -------------------------------------------------------- */

struct cpn_worker_config;

/* A configuration with every default set; NULL when out of memory. */
struct cpn_worker_config *cpn_worker_config_new(void);
void cpn_worker_config_free(struct cpn_worker_config *c);

/* Set one option from its text, as cpn-worker(8) takes it on its command
 * line (name without the dashes; '_' may stand for '-'):
 *
 *   listen              IP:PORT or [IPV6]:PORT: requests arrive, and every
 *                       answer leaves, here (required)
 *   router              a router's control address, or a comma list; each
 *                       call adds (required, at most 16)
 *   node-id             1..65535, as the routers know this node (required)
 *   key                 the node key, 32 hex digits: every REPLY, BUSY, LOAD
 *                       and PROBE_ACK is signed (each carries FRESH and the
 *                       node's CLOCK_TAI in ms, signed, with or without one)
 *   join-key            the auto_join key of the routers, 32 hex digits: the
 *                       node's key too, and every LOAD carries the join tag
 *                       over the node's address and port (docs/PROTOCOL.md,
 *                       "Joins")
 *   hop-key             the routers' hop key, 32 hex digits: only requests a
 *                       router steered to this node (a valid hop tag) are
 *                       answered, each once, while fresh; others are dropped
 *                       and counted (cpn_worker_ignored_total, reasons
 *                       unrouted, stale, replay)
 *   freshness-ms        the window of stamps and of the replay cache (2000)
 *   payload-key         TENANT:HEX64, repeatable: the tenant's sealed requests
 *                       are opened before the handler (which sees the
 *                       plaintext) and their replies sealed (docs/PROTOCOL.md,
 *                       "Sealed payloads"); one that does not open, or of a
 *                       tenant without a key: REPLY BAD_REQUEST
 *   max-batch           largest batch, 1..4096 (8)
 *   max-delay-us        a batch closes when its oldest request waited this
 *                       long (500)
 *   capacity            batch slots, 1..256 (1)
 *   advertise-capacity  the capacity reported to routers instead of capacity,
 *                       0..65535 (0: capacity); more than the slots
 *                       over-commits the node
 *   queue               requests waiting at most, 1..65535 (4096)
 *   load-interval-ms    LOAD heartbeat period (50)
 *   tokens              adapt, idle, below:T or off (adapt)
 *   liveness-ms         LOAD a router only when nothing went to it that long (0)
 *   delay-us            hold every answer back (emulated path delay) (0)
 *   metrics             ADDR:PORT of Prometheus /metrics (none)
 *   max-message         largest large message taken, bytes (4M); K, M, G
 *                       suffixes (powers of 1024) on the sizes
 *   frag-timeout-ms     an incomplete message is dropped after this long
 *                       without new bytes; a large reply fails after this
 *                       long without an ack (2000)
 *   frag-client-budget  bytes of messages being reassembled per client
 *                       (source address and port) (8M)
 *   frag-budget         bytes of large messages the node holds at once (64M)
 *
 * 0, or -EINVAL with cpn_worker_config_error() saying why (the option's
 * name first); nothing is changed then. -ENOENT for an unknown name.
 */
int cpn_worker_config_set(struct cpn_worker_config *c, const char *name, const char *value);
/* Whether the options fit together (listen, node-id and a router set, each
 * router reachable from the listen address): 0 or -EINVAL with the reason.
 */
int cpn_worker_config_check(struct cpn_worker_config *c);
/* Why the last call on c failed ("" if none). */
const char *cpn_worker_config_error(const struct cpn_worker_config *c);

/* ---- the handler ---------------------------------------------------------- */

/* One request of a batch: its payload (the whole message, reassembled when
 * large) and identity. Valid during the run call only.
 */
struct cpn_worker_request {
	const void *payload;
	uint32_t len;
	uint16_t service;
	uint32_t tenant;
	uint32_t session;
	uint64_t request_id;
};

/* A request's answer, filled by run(): status (CPN_ST_*, include/cpn/proto.h;
 * 0 ok) and the reply payload, which must stay valid until the slot's next
 * batch. run() starts with every reply set to CPN_ST_KERNEL_ERROR and no
 * payload. A payload larger than one datagram is sent as fragments.
 */
struct cpn_worker_reply {
	uint8_t status;
	const void *payload;
	uint32_t len;
};

struct cpn_worker_handler {
	const char *kernel;  /* names for logs and metric labels ("app" if NULL) */
	const char *backend; /* "none" if NULL */
	const char *device;  /* "none" if NULL; read again by /metrics */
	void *user;	     /* passed to slot_open, payload_ok, queue_extra */
	/* One slot's instance, for batches of up to max_batch; slots 0..capacity-1
	 * are opened one after another by cpn_worker_open(). NULL: failed, err
	 * says why. Required.
	 */
	void *(*slot_open)(void *user, int slot, int max_batch, char *err, size_t errlen);
	/* Answer n requests: rep[i] for req[i]. Called on the slot's own thread.
	 * Required.
	 */
	void (*run)(void *slot, const struct cpn_worker_request *req, int n,
		    struct cpn_worker_reply *rep);
	/* Optional: close a slot's instance (cpn_worker_close). */
	void (*slot_close)(void *slot);
	/* Optional: may a request carry len bytes? 0: REPLY BAD_REQUEST at once. */
	int (*payload_ok)(void *user, uint32_t len);
	/* Optional: run one zero request, 0 or failure; timed (twice) at open to
	 * seed the mean service time reported before the first batch.
	 */
	int (*warm)(void *slot);
	/* Optional: requests waiting elsewhere (e.g. behind the handler), added
	 * to queue_depth of every load report the node sends.
	 */
	uint32_t (*queue_extra)(void *user);
	/* The mean service time per request to report before the first batch,
	 * where there is no warm(): ns (0: 1 us).
	 */
	uint64_t svc_hint_ns;
};

/* ---- the node ------------------------------------------------------------- */

struct cpn_worker;

/* Checks c (cpn_worker_config_check), binds the socket, opens every slot
 * (slot_open, warm) and /metrics. c and h are copied (h's strings are
 * not: they must outlive the worker). 0 and *w, or a negative errno with
 * err saying why and nothing left open.
 */
int cpn_worker_open(struct cpn_worker **w, struct cpn_worker_config *c,
		    const struct cpn_worker_handler *h, char *err, size_t errlen);
/* Start the threads (receiver, slots, heartbeats, the reply sender): the
 * node answers from now on. 0 or a negative errno with err.
 */
int cpn_worker_start(struct cpn_worker *w, char *err, size_t errlen);
/* Drain: DRAINING on everything sent from now on, new requests answered
 * BUSY/DRAINING, what is queued still served. Thread-safe, not
 * async-signal-safe.
 */
void cpn_worker_drain(struct cpn_worker *w);
/* Stop after the running batches: what is queued is answered BUSY/DRAINING. */
void cpn_worker_abandon(struct cpn_worker *w);
/* Wait at most timeout_ms (-1: no bound) for the end of a drain: 1 drained
 * (every slot ended), 0 not yet, -EIO when a thread of the node failed
 * (cpn_worker_error() says why).
 */
int cpn_worker_wait(struct cpn_worker *w, int timeout_ms);
/* A thread's failure, or NULL. */
const char *cpn_worker_error(struct cpn_worker *w);
/* Stop every thread (abandoning the queue if not drained: BUSY/DRAINING),
 * send what is held, and a last LOAD with DRAINING to every router.
 * Idempotent.
 */
void cpn_worker_stop(struct cpn_worker *w);
/* Stop if not stopped, close the slots (slot_close), free w. NULL is fine. */
void cpn_worker_close(struct cpn_worker *w);

/* The node's life in one call, what cpn-worker does: start (if not
 * started), then on SIGTERM or SIGINT drain; a second signal a second or
 * more after the first abandons the queue. Returns once drained or
 * abandoned, stopped (a last LOAD with DRAINING sent): 0 drained, 1
 * abandoned or a thread failed, a negative errno if it could not start.
 * What happens is said on stderr, each line after "prog: " (NULL:
 * "cpn-worker"). The signals' previous handling is restored on return.
 */
int cpn_worker_run(struct cpn_worker *w, const char *prog);

/* One line about the node, as cpn-worker logs it at start: "node N on
 * ADDR: kernel K, backend B (DEVICE), C slot(s) x batch B (max delay D us),
 * queue Q, R router(s)[, signed][, replies held back]". Returns what
 * snprintf returns.
 */
int cpn_worker_describe(struct cpn_worker *w, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* CPN_WORKER_H */
