/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The first stage of a node: datagrams in. One thread reads the socket
 * with recvmmsg; each REQUEST goes to the queue, and what needs no queue
 * is answered at once through tx: PROBE_ACK, a REPLY with BAD_REQUEST for a
 * payload the handler cannot take, BUSY for what the queue refuses.
 * Fragments of large requests are reassembled here (wk_reasm) and acked;
 * clients' acks of large replies go to the replies' sender (wk_fragtx).
 * Anything else is counted and ignored.
 */
#ifndef CPN_WORKER_RX_H
#define CPN_WORKER_RX_H

#include <pthread.h>

#include "worker_batch.h"
#include "worker_guard.h"

struct wk_rx {
	int fd;
	struct wk_queue *q;
	struct wk_tx *tx;
	struct wk_stats *st;
	const struct wk_handler *h;
	struct wk_reasm *ra;	  /* owned by this thread while it runs */
	struct wk_fragtx *fragtx; /* large replies' acks */
	struct wk_guard *guard;	  /* hop tags, freshness, replays (this thread's) */
	struct wk_fatal *fatal;
	pthread_t th;
	int started, stop;
};

int wk_rx_start(struct wk_rx *rx, char *err, size_t errlen);
/* Stops taking datagrams (within 50 ms) and joins the thread. */
void wk_rx_stop(struct wk_rx *rx);

#endif /* CPN_WORKER_RX_H */
