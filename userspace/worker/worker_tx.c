// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Sending: sealing, sendmmsg in batches, and the hold line of --delay-us.
 *
 * --delay-us D emulates extra path delay where there is no netem (a worker
 * on the router's own host): every datagram that answers one received —
 * REPLY, BUSY, PROBE_ACK — is held D µs before it is sent, by the hold
 * thread. worker_us is stamped when the datagram is built, before the hold,
 * so the router counts those D µs as path latency, as it would a longer
 * wire. LOAD heartbeats are not held: they carry no timestamp.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "cpn/siphash.h"
#include "worker_tx.h"
#include "worker_guard.h"
#include "cpn_util.h"

/* A datagram held back until `due`. */
struct wk_held {
	struct wk_held *next;
	uint64_t due;
	struct wk_addr dst;
	uint32_t len;
	uint8_t data[];
};

int wk_tx_init(struct wk_tx *tx, int fd, uint16_t node_id, const __u64 *key, unsigned delay_us,
	       struct wk_stats *st)
{
	memset(tx, 0, sizeof(*tx));
	tx->fd = fd;
	tx->node_id = node_id;
	tx->delay_us = delay_us;
	tx->st = st;
	if (key) {
		tx->have_key = 1;
		tx->key[0] = key[0];
		tx->key[1] = key[1];
	}
	if (wk_sync_init(&tx->lock, &tx->cond))
		return -1;
	tx->sync_ok = 1;
	return 0;
}

void wk_msg_answer(struct cpn_msg *out, const struct cpn_msg *in, __u8 type)
{
	cpn_msg_init(out, type);
	out->service_id = in->service_id;
	out->tenant_id = in->tenant_id;
	out->session_key = in->session_key;
	out->request_id = in->request_id;
	out->hops = in->hops;
	out->class = in->class;
	out->router_ts = in->router_ts;
}

void wk_tx_seal(struct wk_tx *tx, struct cpn_msg *m, struct wk_out *o, const struct wk_addr *dst)
{
	struct cpn_hdr *h = (struct cpn_hdr *)o->hdr;

	m->magic = CPN_MAGIC;
	m->version = CPN_VERSION;
	m->node_id = tx->node_id;
	/* Every report is fresh: the node's clock under its tag. */
	m->flags |= CPN_F_FRESH;
	m->stamp = cpn_tai_ms();
	if (tx->have_key)
		m->flags |= CPN_F_AUTH;
	else
		m->flags &= ~CPN_F_AUTH;
	cpn_hdr_encode(m, h);
	o->hlen = CPN_HDR_LEN;
	if (tx->have_key) {
		__u64 tag = cpn_tag_node(tx->key, h);

		memcpy(o->hdr + CPN_HDR_LEN, &tag, CPN_TAG_LEN);
		o->hlen += CPN_TAG_LEN;
	}
	o->dst = dst;
	o->pl = NULL;
	o->plen = 0;
}

void wk_out_frag(struct wk_out *o, uint32_t total, uint32_t offset)
{
	struct cpn_frag f = {.total = htonl(total), .offset = htonl(offset)};

	memcpy(o->hdr + o->hlen, &f, sizeof(f));
	o->hlen += CPN_FRAG_LEN;
}

void wk_tx_track_routers(struct wk_tx *tx, const struct wk_addr *routers, int n)
{
	tx->routers = routers;
	tx->n_routers = n < WK_MAX_ROUTERS ? n : WK_MAX_ROUTERS;
	tx->track = 1;
}

static int same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		       &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
}

/* Something went to dst: if it is one of the routers, note when. */
static void note_sent(struct wk_tx *tx, const struct sockaddr_storage *dst, uint64_t now)
{
	for (int i = 0; i < tx->n_routers; i++)
		if (same_host(dst, &tx->routers[i].ss)) {
			WK_STORE(&tx->last_ns[i], now);
			return;
		}
}

/* sendmmsg until every datagram went or failed; a failure skips one. */
static void send_mm(struct wk_tx *tx, struct mmsghdr *mm, int n)
{
	int sent = 0;

	while (sent < n) {
		int r = sendmmsg(tx->fd, mm + sent, (unsigned)(n - sent), 0);

		if (r > 0) {
			sent += r;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else {
			WK_ADD(tx->st, send_errors, 1);
			sent++;
		}
	}
}

void wk_tx_send_now(struct wk_tx *tx, struct wk_out *o, int n)
{
	struct mmsghdr mm[WK_TX_BATCH];
	struct iovec iov[WK_TX_BATCH][2];

	for (int base = 0; base < n; base += WK_TX_BATCH) {
		int k = n - base < WK_TX_BATCH ? n - base : WK_TX_BATCH;

		memset(mm, 0, sizeof(mm[0]) * (size_t)k);
		for (int i = 0; i < k; i++) {
			struct wk_out *x = &o[base + i];

			iov[i][0].iov_base = x->hdr;
			iov[i][0].iov_len = x->hlen;
			iov[i][1].iov_base = (void *)x->pl;
			iov[i][1].iov_len = x->plen;
			mm[i].msg_hdr.msg_name = (void *)&x->dst->ss;
			mm[i].msg_hdr.msg_namelen = x->dst->len;
			mm[i].msg_hdr.msg_iov = iov[i];
			mm[i].msg_hdr.msg_iovlen = x->plen ? 2 : 1;
			if (tx->track)
				note_sent(tx, &x->dst->ss, cpn_now_ns());
		}
		send_mm(tx, mm, k);
	}
}

/* Copy each datagram and hand it to the hold thread, due in delay_us. */
static void send_held(struct wk_tx *tx, struct wk_out *o, int n)
{
	struct wk_held *first = NULL, **pp = &first, *last = NULL;
	uint64_t due;

	for (int i = 0; i < n; i++) {
		struct wk_held *h = malloc(sizeof(*h) + o[i].hlen + o[i].plen);

		if (!h) {
			WK_ADD(tx->st, send_errors, 1);
			continue;
		}
		h->next = NULL;
		h->dst = *o[i].dst;
		h->len = o[i].hlen + o[i].plen;
		memcpy(h->data, o[i].hdr, o[i].hlen);
		if (o[i].plen)
			memcpy(h->data + o[i].hlen, o[i].pl, o[i].plen);
		*pp = last = h;
		pp = &h->next;
	}
	if (!first)
		return;
	pthread_mutex_lock(&tx->lock);
	/* Stamped under the lock: with one delay for all, the list stays in
	 * due order, and the hold thread only ever looks at its head.
	 */
	due = cpn_now_ns() + (uint64_t)tx->delay_us * 1000;
	for (struct wk_held *h = first; h; h = h->next)
		h->due = due;
	if (tx->tail)
		tx->tail->next = first;
	else
		tx->head = first;
	tx->tail = last;
	pthread_cond_signal(&tx->cond);
	pthread_mutex_unlock(&tx->lock);
}

void wk_tx_send(struct wk_tx *tx, struct wk_out *o, int n)
{
	if (n <= 0)
		return;
	if (tx->delay_us)
		send_held(tx, o, n);
	else
		wk_tx_send_now(tx, o, n);
}

/* Send the held datagrams that are due (at most one sendmmsg's worth);
 * called and returns with tx->lock held. Returns how many it sent.
 */
static int flush_due(struct wk_tx *tx, uint64_t now)
{
	struct wk_held *h[WK_TX_BATCH];
	struct mmsghdr mm[WK_TX_BATCH];
	struct iovec iov[WK_TX_BATCH];
	int n = 0;

	while (n < WK_TX_BATCH && tx->head && tx->head->due <= now) {
		h[n++] = tx->head;
		tx->head = tx->head->next;
	}
	if (!tx->head)
		tx->tail = NULL;
	if (!n)
		return 0;
	pthread_mutex_unlock(&tx->lock);
	memset(mm, 0, sizeof(mm[0]) * (size_t)n);
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = h[i]->data;
		iov[i].iov_len = h[i]->len;
		mm[i].msg_hdr.msg_name = &h[i]->dst.ss;
		mm[i].msg_hdr.msg_namelen = h[i]->dst.len;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		if (tx->track)
			note_sent(tx, &h[i]->dst.ss, now);
	}
	send_mm(tx, mm, n);
	for (int i = 0; i < n; i++)
		free(h[i]);
	pthread_mutex_lock(&tx->lock);
	return n;
}

static void *hold_main(void *arg)
{
	struct wk_tx *tx = arg;

	/* Held datagrams are due to the µs: no 50 µs default timer slack. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	pthread_mutex_lock(&tx->lock);
	for (;;) {
		uint64_t now = cpn_now_ns(), wake;
		struct timespec ts;

		if (flush_due(tx, now))
			continue;
		if (tx->stop && !tx->head)
			break;
		/* At most 100 ms asleep, whatever is due: stop is seen. */
		wake = now + 100000000u;
		if (tx->head && tx->head->due < wake)
			wake = tx->head->due;
		ts = cpn_ns_timespec(wake);
		pthread_cond_timedwait(&tx->cond, &tx->lock, &ts);
	}
	pthread_mutex_unlock(&tx->lock);
	return NULL;
}

int wk_tx_start(struct wk_tx *tx, char *err, size_t errlen)
{
	if (!tx->delay_us)
		return 0;
	return wk_thread_start(&tx->th, &tx->started, hold_main, tx, "hold thread", err, errlen);
}

void wk_tx_stop(struct wk_tx *tx)
{
	wk_thread_stop(&tx->th, &tx->started, &tx->stop, &tx->lock, &tx->cond);
}

void wk_tx_fini(struct wk_tx *tx)
{
	struct wk_held *h, *n;

	for (h = tx->head; h; h = n) {
		n = h->next;
		free(h);
	}
	tx->head = tx->tail = NULL;
	if (tx->sync_ok)
		wk_sync_fini(&tx->lock, &tx->cond);
	tx->sync_ok = 0;
}
