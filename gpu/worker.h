/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpn-worker: a compute node behind cpn routers.
 *
 *   worker.c          options, model and backend, lifecycle (signals, drain)
 *   worker_net.c      the UDP socket: recvmmsg, sendmmsg, held replies
 *                     (--delay-us), LOAD heartbeats, PROBE_ACK, signing
 *   worker_batch.c    request queue, dynamic batcher, batch slots, kernels
 *   worker_metrics.c  Prometheus /metrics (libmicrohttpd)
 *
 * Threads: one receiver, one timer (heartbeats and held datagrams), one per
 * batch slot (--capacity), libmicrohttpd's own, and main, which only waits
 * for signals. Requests go receiver -> queue -> slot; a slot sends its
 * batch's replies itself.
 *
 * Load report (every REPLY, LOAD, PROBE_ACK and BUSY):
 *   queue_depth  requests waiting in the queue, not yet in a batch
 *   inflight     requests in batches that are executing
 *   capacity     the number of batch slots (--capacity), NOT slots x
 *                --max-batch: worker_us of LOAD/PROBE_ACK is the mean
 *                service time per request (batch time / batch size), so one
 *                slot drains 1/svc requests per µs and the node C/svc; the
 *                router's est_us = depth x svc / capacity is right only with
 *                capacity = C (see wk_report_capacity()).
 *   util         busy fraction of the slots over the last heartbeat interval
 *   worker_us    REPLY: receive to send inside the node (queue, batching and
 *                execution), without --delay-us; LOAD/PROBE_ACK: EWMA (1/8)
 *                of batch execution time / batch size
 */
#ifndef CPN_WORKER_H
#define CPN_WORKER_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cpn/proto.h"
#include "cpn_kernels.h"
#include "cpn_util.h"

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

enum wk_kernel {
	WK_K_MLP,
	WK_K_VSEARCH,
	WK_K_ECHO,
	WK_K_SYNTH,
};

enum wk_dist {
	WK_D_FIXED,
	WK_D_EXP,
	WK_D_BIMODAL,
};

/* Reply status counters, indexed by enum cpn_reply_status (0..2). */
#define WK_ST_N 3

struct cpn_http;

struct wk_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct wk_opts {
	struct wk_addr listen;
	struct wk_addr routers[WK_MAX_ROUTERS];
	int n_routers;
	uint16_t node_id;
	enum wk_kernel kernel;
	const char *backend; /* auto, cuda, cpu */
	int max_batch;
	unsigned max_delay_us;
	int capacity; /* batch slots */
	int queue_len;
	const char *metrics;
	unsigned load_interval_ms;
	int have_key;
	__u64 key[2];
	unsigned delay_us;
	const char *mlp_model;
	int mlp_dims[CPN_MLP_MAX_LAYERS + 1];
	int mlp_layers;
	uint64_t seed;
	const char *vs_table;
	int vs_rows, vs_dim;
	enum wk_dist dist;
	double svc_us[2]; /* fixed/exp: [0]; bimodal: both */
	double svc_p;	  /* bimodal: probability of svc_us[1] */
};

/* A queued request: its header, where it came from, its payload. */
struct wk_req {
	struct wk_req *next;
	uint64_t t_rx; /* CLOCK_MONOTONIC ns at receipt */
	struct wk_addr src;
	struct cpn_msg m;
	uint32_t len; /* payload bytes */
	uint8_t payload[];
};

/* One datagram to send: header (and tag) plus a payload gathered from
 * elsewhere (the request, a kernel's output).
 */
struct wk_tx {
	const struct wk_addr *dst;
	uint8_t hdr[WK_HDR_MAX];
	uint32_t hlen;
	const void *pl;
	uint32_t plen;
};

/* A datagram held back by --delay-us until `due`. */
struct wk_held {
	struct wk_held *next;
	uint64_t due;
	struct wk_addr dst;
	uint32_t len;
	uint8_t data[];
};

struct wk_slot {
	struct worker *w;
	int idx;
	pthread_t th;
	int started;
	struct cpn_backend *be;
	float *in, *out, *scores;
	uint32_t *ids;
	uint8_t *pl; /* vsearch replies: max_batch x CPN_VS_MAX_K x 8 bytes */
	int *k;	     /* vsearch: each request's k */
	uint8_t *st; /* each request's reply status */
	struct wk_req **batch;
	struct wk_tx *tx;
	uint64_t rng;
	uint64_t busy_since; /* ns, 0 while idle; under w->lock */
	uint64_t busy_ns;    /* finished batches' execution time; under w->lock */
};

/* Counters: updated with relaxed atomics, read by /metrics. */
struct wk_stats {
	uint64_t requests;
	uint64_t replies[WK_ST_N];
	uint64_t busy_overload, busy_draining;
	uint64_t probes;
	uint64_t loads;
	uint64_t ignored_malformed, ignored_type;
	uint64_t send_errors;
	uint64_t batch_hist[WK_BATCH_BUCKETS + 1]; /* the last: +Inf (never used) */
	uint64_t batch_count, batch_sum;
	uint64_t lat_hist[WK_LAT_BUCKETS + 1];
	uint64_t lat_count, lat_sum_us;
};

struct worker {
	struct wk_opts o;
	int fd;

	/* model and backend */
	struct cpn_mlp mlp;
	struct cpn_vtable vt;
	int have_mlp, have_vt;
	const struct cpn_backend_ops *ops; /* NULL for echo and synthetic */
	const char *backend_name;
	char device[160];
	uint32_t req_len; /* mlp, vsearch: the payload a request must have */
	uint16_t report_capacity;

	/* queue and batcher; lock also guards the slots' busy time */
	pthread_mutex_t lock;
	pthread_cond_t work; /* CLOCK_MONOTONIC */
	struct wk_req *head, *tail;
	uint32_t queued;   /* written under lock, read atomically */
	uint32_t inflight; /* likewise */
	int slots_running;
	struct wk_slot *slots;
	uint64_t svc_ewma_ns; /* under lock */
	uint32_t svc_us;      /* the mean reported, read atomically */
	uint8_t util;	      /* 0..255, written by the timer thread */

	/* held datagrams (--delay-us) and heartbeats */
	pthread_mutex_t hold_lock;
	pthread_cond_t hold_cond;
	struct wk_held *hold_head, *hold_tail;
	pthread_t rx_th, timer_th;
	int rx_started, timer_started;

	int draining; /* set under lock; read atomically */
	int abandon;  /* a second signal: stop after the current batches */
	int stop_rx, stop_timer;
	int fatal; /* a thread failed: fatal_msg says why */
	char fatal_msg[256];

	int batch_bounds[WK_BATCH_BUCKETS];
	int n_batch_bounds;
	struct wk_stats st;
	struct cpn_http *http; /* /metrics */
};

#define WK_ADD(w, field, n) __atomic_fetch_add(&(w)->st.field, (n), __ATOMIC_RELAXED)
#define WK_LOAD(p)	    __atomic_load_n((p), __ATOMIC_RELAXED)
#define WK_STORE(p, v)	    __atomic_store_n((p), (v), __ATOMIC_RELAXED)

extern const uint32_t wk_lat_bounds_us[WK_LAT_BUCKETS];

void wk_fatal(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *wk_kernel_name(enum wk_kernel k);

/* worker_net.c */
int wk_addr_parse(const char *s, struct wk_addr *a);
void wk_addr_str(const struct wk_addr *a, char *buf, size_t len);
int wk_addr_reachable(const struct wk_addr *listen, const struct wk_addr *r);
int wk_net_open(struct worker *w, char *err, size_t errlen);
void wk_net_close(struct worker *w);
/* Fill m's load report (queue, inflight, capacity, util, DRAINING). */
void wk_load_fill(struct worker *w, struct cpn_msg *m);
/* Encode m into t->hdr, signed when --key is set (AUTH and the node tag). */
void wk_seal(struct worker *w, struct cpn_msg *m, struct wk_tx *t);
/* Send now, or hold each for --delay-us. */
void wk_send(struct worker *w, struct wk_tx *t, int n);
void wk_send_load(struct worker *w);
int wk_net_start(struct worker *w, char *err, size_t errlen);
void wk_rx_stop(struct worker *w);
void wk_timer_stop(struct worker *w); /* sends what is held, then returns */

/* worker_batch.c */
int wk_batch_init(struct worker *w, char *err, size_t errlen);
int wk_batch_start(struct worker *w, char *err, size_t errlen);
/* Can the kernel take a request payload of len bytes? */
int wk_payload_ok(const struct worker *w, uint32_t len);
/* Queue the receiver's accepted requests; those that do not fit (queue full,
 * or draining) come back in *refused, the BUSY reason in each one's
 * m.status (CPN_BUSY_OVERLOAD or CPN_BUSY_DRAINING).
 */
void wk_enqueue(struct worker *w, struct wk_req *list, struct wk_req **refused);
void wk_drain_begin(struct worker *w);
void wk_abandon(struct worker *w);
int wk_slots_running(struct worker *w);
void wk_batch_join(struct worker *w);
/* Requests still queued after the slots stopped: answered BUSY/DRAINING. */
void wk_batch_refuse_rest(struct worker *w);
void wk_batch_free(struct worker *w);
/* Total slot busy time up to now, ns (running batches included). */
uint64_t wk_busy_ns(struct worker *w, uint64_t now);
uint16_t wk_report_capacity(const struct wk_opts *o);
void wk_busy_msg(struct worker *w, const struct wk_req *r, uint8_t reason, struct wk_tx *t);

/* worker_metrics.c */
int wk_metrics_start(struct worker *w, char *err, size_t errlen);
void wk_metrics_stop(struct worker *w);
int wk_metrics_render(struct worker *w, FILE *out);

#endif /* CPN_WORKER_H */
