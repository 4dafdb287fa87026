// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * One node: its stages wired together, its heartbeats, its lifecycle.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cpn/siphash.h"
#include "worker_node.h"
#include "worker_metrics.h"
#include "cpn_util.h"

enum {
	OPEN_SOCKET = 1,
	OPEN_TX,
	OPEN_QUEUE,
	OPEN_FRAG,
	OPEN_SLOTS,
	OPEN_HB,
	OPEN_ALL,
};

/* A LOAD to every router, now (never held); with liveness_ms, only to the
 * routers that nothing went to for that long: replies through a router
 * tell it the node's load already, and a LOAD is then only for liveness.
 */
static void send_load(struct wk_node *n, int all)
{
	struct wk_out o[WK_MAX_ROUTERS];
	uint64_t now = cpn_now_ns(), quiet = (uint64_t)n->c.liveness_ms * 1000000u;
	struct cpn_msg m;
	int k = 0;

	__u64 jtag[WK_MAX_ROUTERS];

	cpn_msg_init(&m, CPN_T_LOAD);
	wk_load_fill(&n->q, &m);
	m.worker_us = WK_LOAD(&n->q.svc_us);
	for (int i = 0; i < n->c.n_routers; i++) {
		struct cpn_msg mi = m;

		if (!all && quiet && now - WK_LOAD(&n->tx.last_ns[i]) < quiet)
			continue;
		wk_tx_seal(&n->tx, &mi, &o[k], &n->c.routers[i]);
		if (n->c.have_join_key) {
			/* The join tag (docs/PROTOCOL.md, "Joins"): on every LOAD,
			 * as a router that does not know the node yet needs it.
			 */
			jtag[i] = cpn_tag_join(n->c.key, (const struct cpn_hdr *)o[k].hdr,
					       n->join_addr[i], n->join_port);
			o[k].pl = &jtag[i];
			o[k].plen = CPN_TAG_LEN;
		}
		k++;
	}
	wk_tx_send_now(&n->tx, o, k);
	WK_ADD(&n->st, loads, (uint64_t)k);
}

/* util over [last, now]: the slots' busy time in that span over its length
 * times the number of slots, 0..255.
 */
static void update_util(struct wk_node *n, uint64_t now, uint64_t *last_t, uint64_t *last_busy)
{
	uint64_t busy = wk_queue_busy_ns(&n->q, now), span = now - *last_t;
	double u = 0;

	if (span > 0)
		u = (double)(busy - *last_busy) / ((double)span * n->c.capacity);
	if (u > 1)
		u = 1;
	if (u < 0)
		u = 0;
	wk_queue_set_util(&n->q, (uint8_t)(u * 255 + 0.5));
	*last_t = now;
	*last_busy = busy;
}

static void *hb_main(void *arg)
{
	struct wk_node *n = arg;
	uint64_t interval = (uint64_t)n->c.load_interval_ms * 1000000u;
	uint64_t now = cpn_now_ns(), next = now, last_t = now;
	uint64_t last_busy = wk_queue_busy_ns(&n->q, now);

	pthread_mutex_lock(&n->hb_lock);
	while (!n->hb_stop) {
		struct timespec ts;

		now = cpn_now_ns();
		if (now >= next) {
			pthread_mutex_unlock(&n->hb_lock);
			update_util(n, now, &last_t, &last_busy);
			send_load(n, 0);
			pthread_mutex_lock(&n->hb_lock);
			next += interval;
			if (next <= now)
				next = now + interval;
			continue;
		}
		ts = cpn_ns_timespec(next);
		pthread_cond_timedwait(&n->hb_cond, &n->hb_lock, &ts);
	}
	pthread_mutex_unlock(&n->hb_lock);
	return NULL;
}

/* The address a router sees this node's datagrams come from: the listen
 * address, or where it is a wildcard, the one the route to the router takes.
 */
static int join_addr(const struct wk_addr *listen, const struct wk_addr *router, __u8 out[16],
		     char *err, size_t errlen)
{
	struct sockaddr_storage ss = listen->ss;
	socklen_t len = sizeof(ss);
	int any;

	if (ss.ss_family == AF_INET)
		any = ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	else
		any = !memcmp(&((struct sockaddr_in6 *)&ss)->sin6_addr, &in6addr_any, 16);
	if (any) {
		int fd = socket(router->ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		if (fd < 0 || connect(fd, (const struct sockaddr *)&router->ss, router->len) ||
		    getsockname(fd, (struct sockaddr *)&ss, &len)) {
			snprintf(err, errlen,
				 "join-key: no route to a router to learn the address");
			if (fd >= 0)
				close(fd);
			return -EINVAL;
		}
		close(fd);
	}
	memset(out, 0, 16);
	if (ss.ss_family == AF_INET) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	} else {
		memcpy(out, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
	}
	return 0;
}

int wk_node_open(struct wk_node *n, const struct wk_node_cfg *c, const struct wk_handler *h,
		 char *err, size_t errlen)
{
	int rc;

	memset(n, 0, sizeof(*n));
	n->c = *c;
	n->h = h;
	if (c->have_join_key) {
		n->join_port = c->listen.ss.ss_family == AF_INET
				   ? ((const struct sockaddr_in *)&c->listen.ss)->sin_port
				   : ((const struct sockaddr_in6 *)&c->listen.ss)->sin6_port;
		for (int i = 0; i < c->n_routers; i++) {
			rc = join_addr(&c->listen, &c->routers[i], n->join_addr[i], err, errlen);
			if (rc)
				return rc;
		}
	}
	n->fd = wk_socket_open(&n->c.listen, n->c.routers, n->c.n_routers, err, errlen);
	if (n->fd < 0)
		return n->fd;
	n->opened = OPEN_SOCKET;
	if (wk_tx_init(&n->tx, n->fd, c->node_id, c->have_key ? c->key : NULL, c->delay_us,
		       &n->st)) {
		snprintf(err, errlen, "cannot initialise the sender's locks");
		return -EINVAL;
	}
	n->opened = OPEN_TX;
	if (c->liveness_ms)
		wk_tx_track_routers(&n->tx, n->c.routers, n->c.n_routers);
	rc = wk_queue_init(&n->q, (uint32_t)c->queue_len, (uint32_t)c->max_batch, c->max_delay_us,
			   c->capacity, &n->tx, &n->st, err, errlen);
	if (rc)
		return rc;
	n->opened = OPEN_QUEUE;
	if (c->advertise_capacity)
		n->q.advertised = (uint16_t)c->advertise_capacity;
	n->q.extra = h->queue_extra;
	n->q.extra_ctx = h->ctx;
	rc = wk_reasm_init(&n->ra, &c->frag, &n->st, err, errlen);
	if (rc)
		return rc;
	if (wk_fragtx_init(&n->fragtx, &n->tx, &n->q, &n->st, &c->frag)) {
		wk_reasm_fini(&n->ra);
		snprintf(err, errlen, "cannot initialise the reply sender's locks");
		return -EINVAL;
	}
	n->opened = OPEN_FRAG;
	rc = wk_batcher_init(&n->b, &n->q, &n->tx, &n->st, h, c->capacity, c->max_batch, err,
			     errlen);
	n->opened = OPEN_SLOTS;
	if (rc)
		return rc;
	n->b.token_rule = c->token_rule;
	n->b.fragtx = &n->fragtx;
	n->b.pkeys = n->c.pkeys;
	n->b.n_pkeys = n->c.n_pkeys;
	if (n->c.n_pkeys && cpn_seal_init()) {
		snprintf(err, errlen, "payload-key: libsodium does not start");
		return -EINVAL;
	}
	if (wk_sync_init(&n->hb_lock, &n->hb_cond)) {
		snprintf(err, errlen, "cannot initialise the heartbeat's locks");
		return -EINVAL;
	}
	n->opened = OPEN_HB;
	if (wk_guard_init(&n->guard, c->have_hop_key ? c->hop_key : NULL, c->node_id,
			  c->freshness_ms, &n->st)) {
		snprintf(err, errlen, "out of memory for the replay cache");
		return -ENOMEM;
	}
	n->rx = (struct wk_rx){.fd = n->fd,
			       .guard = &n->guard,
			       .q = &n->q,
			       .tx = &n->tx,
			       .st = &n->st,
			       .h = h,
			       .ra = &n->ra,
			       .fragtx = &n->fragtx,
			       .fatal = &n->fatal};
	rc = wk_metrics_start(n, err, errlen);
	if (rc)
		return rc;
	n->opened = OPEN_ALL;
	return 0;
}

int wk_node_start(struct wk_node *n, char *err, size_t errlen)
{
	if (wk_batcher_start(&n->b, err, errlen) || wk_tx_start(&n->tx, err, errlen) ||
	    wk_fragtx_start(&n->fragtx, err, errlen) ||
	    wk_thread_start(&n->hb_th, &n->hb_started, hb_main, n, "heartbeat thread", err, errlen))
		return -EINVAL;
	return wk_rx_start(&n->rx, err, errlen);
}

void wk_node_drain(struct wk_node *n)
{
	wk_queue_drain(&n->q);
}

void wk_node_abandon(struct wk_node *n)
{
	wk_queue_abandon(&n->q);
}

int wk_node_draining(struct wk_node *n)
{
	return WK_LOAD(&n->q.draining);
}

int wk_node_abandoned(struct wk_node *n)
{
	return WK_LOAD(&n->q.abandon);
}

int wk_node_done(struct wk_node *n)
{
	return wk_node_draining(n) && !wk_batcher_running(&n->b);
}

const char *wk_node_failed(struct wk_node *n)
{
	return __atomic_load_n(&n->fatal.set, __ATOMIC_ACQUIRE) ? n->fatal.msg : NULL;
}

void wk_node_stop(struct wk_node *n, int last_load)
{
	if (n->opened < OPEN_HB)
		return;
	/* Whatever stopped before the slots did, nothing waits for them. */
	if (!wk_node_draining(n))
		wk_queue_abandon(&n->q);
	wk_batcher_join(&n->b);
	/* The receiver still takes the clients' acks while the large replies
	 * finish (each within its timeout).
	 */
	wk_fragtx_stop(&n->fragtx);
	wk_rx_stop(&n->rx);
	wk_queue_refuse_rest(&n->q);
	wk_thread_stop(&n->hb_th, &n->hb_started, &n->hb_stop, &n->hb_lock, &n->hb_cond);
	wk_tx_stop(&n->tx);
	if (last_load) {
		wk_queue_drain(&n->q);
		send_load(n, 1);
	}
}

void wk_node_close(struct wk_node *n)
{
	if (n->opened >= OPEN_ALL)
		wk_metrics_stop(n);
	if (n->opened >= OPEN_HB) {
		wk_guard_fini(&n->guard);
		wk_sync_fini(&n->hb_lock, &n->hb_cond);
	}
	if (n->opened >= OPEN_SLOTS)
		wk_batcher_fini(&n->b);
	if (n->opened >= OPEN_FRAG) {
		wk_fragtx_fini(&n->fragtx);
		wk_reasm_fini(&n->ra);
	}
	if (n->opened >= OPEN_QUEUE)
		wk_queue_fini(&n->q);
	if (n->opened >= OPEN_TX)
		wk_tx_fini(&n->tx);
	if (n->opened >= OPEN_SOCKET)
		close(n->fd);
	n->fd = -1;
	n->opened = 0;
}
