/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Batch slots. Each of the node's --capacity slots is a thread with its own
 * handler instance (a backend, a model's buffers): it takes a batch from the
 * queue, runs the handler over it, seals and sends one REPLY per request,
 * and frees them.
 *
 * The handler is what the node computes. cpn-worker's built-in kernels
 * (worker_kernels.c) are one; an application's model is another.
 */
#ifndef CPN_WORKER_BATCH_H
#define CPN_WORKER_BATCH_H

#include <pthread.h>

#include "cpn/worker.h"
#include "cpn_seal.h"
#include "worker_frag.h"

/* A request's answer, filled by the handler: its status (enum
 * cpn_reply_status) and the reply payload, which must stay valid until the
 * slot's next batch (it is sent, or copied when held or large, before
 * that). The public struct cpn_worker_reply (cpn/worker.h).
 */
#define wk_reply cpn_worker_reply

/* What the node computes: cpn/worker.h's struct cpn_worker_handler, copied
 * by cpn_worker_open() (kernel, backend and device defaulted).
 */
struct wk_handler {
	const char *kernel;  /* names for logs and metric labels */
	const char *backend; /* "none" where there is none */
	const char *device;  /* may change when the first slot opens */
	void *ctx;
	/* Can a request carry a payload of len bytes? Else BAD_REQUEST. */
	int (*payload_ok)(void *ctx, uint32_t len);
	/* One slot's instance, for batches of up to max_batch. NULL: err. */
	void *(*slot_open)(void *ctx, int slot, int max_batch, char *err, size_t errlen);
	/* Optional: run one zero request, to set up and time the instance. */
	int (*warm)(void *inst);
	/* Answer n requests: rep[i] for req[i]. */
	void (*run)(void *inst, const struct cpn_worker_request *req, int n, struct wk_reply *rep);
	void (*slot_close)(void *inst);
	/* Optional: requests waiting elsewhere, added to every load report's
	 * queue_depth (wk_load_fill).
	 */
	uint32_t (*queue_extra)(void *ctx);
	/* The mean service time per request reported before the first batch,
	 * where there is no warm(): ns.
	 */
	uint64_t svc_hint_ns;
};

/* When a reply carries an idle token (policy jiq, docs/ARCHITECTURE.md):
 * after a slot's batch, the node holds h = queued + inflight requests; a
 * token when h < capacity + T - 1 (T = 1: a slot is free for the next
 * request; T = 2: and one more may wait). Adaptive: T = 2 while more than a
 * tenth of the recent arrivals found no free slot (the routers that sent
 * them had no token: tokens are too few), else T = 1.
 */
enum {
	WK_TOKEN_OFF = -1,
	WK_TOKEN_ADAPT = 0,
};
#define WK_TOKEN_ADAPT_WAITED (65536 / 10) /* Q16 */

struct wk_batcher;

struct wk_slot {
	struct wk_batcher *b;
	int idx;
	pthread_t th;
	int started;
	void *inst;
	struct wk_req **batch;
	struct cpn_worker_request *reqv; /* the batch as the handler sees it */
	struct wk_reply *rep;
	struct wk_out *out;
	/* sealed replies (one buffer per place in the batch, kept) */
	uint8_t **seal_buf;
	uint32_t *seal_cap;
};

/* A tenant's payload key (sealed payloads, cpn_seal.h). */
struct wk_pkey {
	uint32_t tenant;
	uint8_t key[CPN_SEAL_KEY_LEN];
};

#define WK_MAX_PKEYS 64

struct wk_batcher {
	struct wk_queue *q;
	struct wk_tx *tx;
	struct wk_stats *st;
	const struct wk_handler *h;
	struct wk_fragtx *fragtx;    /* large replies (NULL: answered BUSY) */
	const struct wk_pkey *pkeys; /* payload keys by tenant */
	int n_pkeys;
	int n_slots, max_batch;
	int token_rule; /* WK_TOKEN_*, or T > 0: below:T */
	struct wk_slot *slots;
	int running; /* slot threads not yet ended; atomic */
	/* batch size histogram buckets: powers of two, max_batch - 1, max_batch */
	int bounds[WK_BATCH_BUCKETS];
	int n_bounds;
};

/* Opens every slot's handler instance, warms each up and seeds the queue's
 * service time.
 */
int wk_batcher_init(struct wk_batcher *b, struct wk_queue *q, struct wk_tx *tx, struct wk_stats *st,
		    const struct wk_handler *h, int n_slots, int max_batch, char *err,
		    size_t errlen);
int wk_batcher_start(struct wk_batcher *b, char *err, size_t errlen);
/* Slot threads still running (they end when the queue drains or abandons). */
int wk_batcher_running(struct wk_batcher *b);
void wk_batcher_join(struct wk_batcher *b);
void wk_batcher_fini(struct wk_batcher *b);

#endif /* CPN_WORKER_BATCH_H */
