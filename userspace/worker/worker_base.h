/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every stage of a cpn node shares: limits, addresses, the socket, the
 * counters and the record of a thread's failure. The stages build on it in
 * one line, each including only those before it:
 *
 *   worker_base   this file
 *   worker_tx     sealing (AUTH), sendmmsg, answers held back by --delay-us
 *   worker_queue  the bounded FIFO, the load report, BUSY for what it refuses
 *   worker_batch  batch slots: take a batch, run the handler, send replies
 *   worker_rx     recvmmsg: requests to the queue, PROBE_ACK and errors to tx
 *   worker_node   one node assembled: threads, heartbeats, drain, shutdown
 *
 * A request flows rx -> queue -> batch -> tx; no stage calls one before it.
 */
#ifndef CPN_WORKER_BASE_H
#define CPN_WORKER_BASE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cpn/proto.h"

#define WK_MAX_ROUTERS	 16
#define WK_MAX_UDP	 65507 /* largest UDP payload over IPv4 */
#define WK_HDR_MAX	 (CPN_HDR_LEN + CPN_TAG_LEN)
#define WK_RX_BATCH	 32 /* datagrams per recvmmsg */
#define WK_TX_BATCH	 64 /* datagrams per sendmmsg */
#define WK_MAX_BATCH	 4096
#define WK_MAX_SLOTS	 256
#define WK_MAX_DELAY_US	 10000000u /* --delay-us, --max-delay-us: 10 s */
#define WK_EWMA_SHIFT	 3	   /* service time EWMA weight 1/8, as the router's */
#define WK_BATCH_BUCKETS 16	   /* powers of two, max_batch - 1, max_batch */
#define WK_LAT_BUCKETS	 15

/* Reply status counters, indexed by enum cpn_reply_status (0..4). */
#define WK_ST_N 5

struct wk_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* Counters: updated with relaxed atomics by every stage, read by /metrics. */
struct wk_stats {
	uint64_t requests;
	uint64_t replies[WK_ST_N];
	uint64_t busy_overload, busy_draining;
	uint64_t probes;
	uint64_t loads;
	uint64_t ignored_malformed, ignored_type;
	/* requests dropped by the hop key's checks (worker_guard.h) */
	uint64_t dropped_unrouted, dropped_stale, dropped_replay;
	/* sealed requests: opened, refused (no key for the tenant, or they did
	 * not open: REPLY BAD_REQUEST)
	 */
	uint64_t sealed_opened, sealed_refused;
	uint64_t send_errors;
	uint64_t batch_hist[WK_BATCH_BUCKETS + 1]; /* the last: +Inf (never used) */
	uint64_t batch_count, batch_sum;
	uint64_t lat_hist[WK_LAT_BUCKETS + 1];
	uint64_t lat_count, lat_sum_us;
	/* large messages (worker_frag.h): bytes held (a gauge, added to and
	 * taken from by every stage), messages, timeouts, fragments dropped,
	 * first fragments refused
	 */
	uint64_t frag_held;
	uint64_t frag_msgs_in, frag_msgs_out, frag_timeouts_in, frag_timeouts_out;
	uint64_t frag_dup, frag_malformed, frag_unknown;
	uint64_t frag_too_large, frag_over_client, frag_over_total;
};

#define WK_ADD(st, field, n) __atomic_fetch_add(&(st)->field, (n), __ATOMIC_RELAXED)
#define WK_LOAD(p)	     __atomic_load_n((p), __ATOMIC_RELAXED)
#define WK_STORE(p, v)	     __atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* Upper bounds of the receive-to-send latency histogram, µs. */
extern const uint32_t wk_lat_bounds_us[WK_LAT_BUCKETS];

/* Count a receive-to-send latency, µs. */
void wk_lat_add(struct wk_stats *st, uint32_t us);

/* A thread that cannot go on records why; the first reason is kept. */
struct wk_fatal {
	int set;
	char msg[256];
};

void wk_fatal(struct wk_fatal *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A mutex and a condition variable whose timed waits take CLOCK_MONOTONIC
 * deadlines (cpn_now_ns()). 0, or -1 with nothing to undo.
 */
int wk_sync_init(pthread_mutex_t *m, pthread_cond_t *c);
void wk_sync_fini(pthread_mutex_t *m, pthread_cond_t *c);
/* pthread_create, *started set; 0 or -errno with err "what: why". */
int wk_thread_start(pthread_t *th, int *started, void *(*fn)(void *), void *arg, const char *what,
		    char *err, size_t errlen);
/* Set *stop under m, wake c's waiters, join: a thread that waits on c. */
void wk_thread_stop(pthread_t *th, int *started, int *stop, pthread_mutex_t *m, pthread_cond_t *c);

/* IPv4 "A.B.C.D:PORT" or IPv6 "[ADDR]:PORT"; port 1..65535. */
int wk_addr_parse(const char *s, struct wk_addr *a);
void wk_addr_str(const struct wk_addr *a, char *buf, size_t len);
/* Can a socket bound to `listen` send to `r`? */
int wk_addr_reachable(const struct wk_addr *listen, const struct wk_addr *r);

/* The node's one UDP socket, bound to listen: every datagram the routers
 * see comes from the address they know. Routers of the other family are
 * rewritten as IPv4-mapped addresses (checked by wk_addr_reachable() first).
 * Returns the descriptor, or -errno with err set.
 */
int wk_socket_open(const struct wk_addr *listen, struct wk_addr *routers, int n_routers, char *err,
		   size_t errlen);

#endif /* CPN_WORKER_BASE_H */
