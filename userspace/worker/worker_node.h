/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A cpn node assembled from its stages (worker_base.h has the line), around
 * a handler that computes the answers.
 *
 * Threads: one receiver, one per batch slot (capacity), one for heartbeats
 * (LOAD to every router each load_interval_ms, and util measured), one that
 * sends large replies, one that holds answers back where delay_us asks,
 * libmicrohttpd's own for /metrics.
 *
 * Lifecycle: open, start; drain when asked (DRAINING on everything sent
 * from then on, new requests BUSY/DRAINING, the queue served) until done;
 * or abandon (the running batches finish, the queue is answered
 * BUSY/DRAINING); then stop and close.
 */
#ifndef CPN_WORKER_NODE_H
#define CPN_WORKER_NODE_H

#include <pthread.h>

#include "worker_rx.h"

struct cpn_http;

struct wk_node_cfg {
	struct wk_addr listen;
	struct wk_addr routers[WK_MAX_ROUTERS];
	int n_routers;
	uint16_t node_id;
	int have_key;
	__u64 key[2];
	int have_join_key; /* LOADs carry the join tag (then key is the join key) */
	int have_hop_key;  /* only requests with a valid hop tag are answered */
	__u64 hop_key[2];
	unsigned freshness_ms;		    /* stamps and the replay cache's window */
	struct wk_pkey pkeys[WK_MAX_PKEYS]; /* payload keys by tenant (sealed payloads) */
	int n_pkeys;
	int max_batch;
	unsigned max_delay_us;
	int capacity;		/* batch slots */
	int advertise_capacity; /* the capacity reported to routers (0: capacity) */
	int queue_len;
	unsigned load_interval_ms;
	unsigned delay_us;
	int token_rule;	      /* WK_TOKEN_ADAPT, WK_TOKEN_OFF, or T: below:T */
	unsigned liveness_ms; /* LOAD a router only when nothing went to it this long (0: always) */
	const char *metrics;  /* ADDR:PORT of /metrics, or NULL */
	struct wk_frag_cfg frag; /* large messages */
};

struct wk_node {
	struct wk_node_cfg c;
	const struct wk_handler *h;
	int fd;
	struct wk_stats st;
	struct wk_fatal fatal;
	struct wk_tx tx;
	struct wk_queue q;
	struct wk_batcher b;
	struct wk_reasm ra;
	struct wk_fragtx fragtx;
	struct wk_rx rx;
	struct wk_guard guard;
	struct cpn_http *http;
	/* With a join key: this node's address as each router sees it (16
	 * bytes, IPv4 as ::ffff:a.b.c.d) and port, for the join tag
	 */
	__u8 join_addr[WK_MAX_ROUTERS][16];
	__be16 join_port;

	/* heartbeats */
	pthread_mutex_t hb_lock;
	pthread_cond_t hb_cond; /* CLOCK_MONOTONIC */
	pthread_t hb_th;
	int hb_started, hb_stop;
	int opened; /* how far wk_node_open got, for wk_node_close */
};

/* Socket, queue, slots (each handler instance opened and warmed up), and
 * /metrics. On failure err says why; wk_node_close() undoes what was done.
 */
int wk_node_open(struct wk_node *n, const struct wk_node_cfg *c, const struct wk_handler *h,
		 char *err, size_t errlen);
int wk_node_start(struct wk_node *n, char *err, size_t errlen);
void wk_node_drain(struct wk_node *n);
void wk_node_abandon(struct wk_node *n);
int wk_node_draining(struct wk_node *n);
int wk_node_abandoned(struct wk_node *n);
/* Draining, and every slot has ended. */
int wk_node_done(struct wk_node *n);
/* A thread's failure, or NULL. */
const char *wk_node_failed(struct wk_node *n);
/* In this order: the slots end, the large replies are sent (or fail), the
 * receiver stops, what is still queued is answered BUSY/DRAINING,
 * heartbeats stop, held answers go out; then, with last_load, a final LOAD
 * with DRAINING to every router.
 */
void wk_node_stop(struct wk_node *n, int last_load);
void wk_node_close(struct wk_node *n);

#endif /* CPN_WORKER_NODE_H */
