// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The queue and the dynamic batcher's rule. A request that finds the queue
 * full is answered BUSY/OVERLOAD by the receiver at once. A free slot
 * closes a batch when --max-batch requests are waiting, or when the oldest
 * has waited --max-delay-us, or at once while draining (nothing more will
 * come); it takes up to --max-batch from the head. While every slot is busy
 * requests accumulate, so the next free slot finds a full batch: batches
 * grow with load, and a lone request waits at most --max-delay-us.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker_queue.h"
#include "cpn_util.h"

int wk_queue_init(struct wk_queue *q, uint32_t limit, uint32_t max_batch, unsigned max_delay_us,
		  int capacity, struct wk_tx *tx, struct wk_stats *st, char *err, size_t errlen)
{
	memset(q, 0, sizeof(*q));
	q->limit = limit;
	q->max_batch = max_batch;
	q->max_delay_us = max_delay_us;
	q->capacity = (uint16_t)capacity;
	q->advertised = q->capacity;
	q->tx = tx;
	q->st = st;
	q->svc_us = 1;
	q->since = calloc((size_t)capacity, sizeof(*q->since));
	if (!q->since) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (wk_sync_init(&q->lock, &q->work)) {
		snprintf(err, errlen, "cannot initialise the queue's locks");
		return -EINVAL;
	}
	q->sync_ok = 1;
	return 0;
}

void wk_req_free(struct wk_stats *st, struct wk_req *r)
{
	if (r && r->held)
		WK_ADD(st, frag_held, -(uint64_t)r->held);
	free(r);
}

void wk_queue_fini(struct wk_queue *q)
{
	struct wk_req *r, *n;

	for (r = q->head; r; r = n) {
		n = r->next;
		wk_req_free(q->st, r);
	}
	q->head = q->tail = NULL;
	free(q->since);
	q->since = NULL;
	if (q->sync_ok)
		wk_sync_fini(&q->lock, &q->work);
	q->sync_ok = 0;
}

void wk_queue_put(struct wk_queue *q, struct wk_req *list, struct wk_req **refused)
{
	struct wk_req **rp = refused, *r, *next;

	*refused = NULL;
	pthread_mutex_lock(&q->lock);
	for (r = list; r; r = next) {
		next = r->next;
		r->next = NULL;
		if (q->draining || q->abandon || q->queued >= q->limit) {
			r->m.status =
			    q->draining || q->abandon ? CPN_BUSY_DRAINING : CPN_BUSY_OVERLOAD;
			*rp = r;
			rp = &r->next;
			continue;
		}
		/* Did it wait? Others queued, or every slot busy. */
		{
			uint32_t w = q->waited;

			w -= w >> 6;
			if (q->queued || q->inflight >= q->capacity)
				w += 65536 >> 6;
			WK_STORE(&q->waited, w);
		}
		if (q->tail)
			q->tail->next = r;
		else
			q->head = r;
		q->tail = r;
		WK_STORE(&q->queued, q->queued + 1);
	}
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->lock);
}

/* Under q->lock: wait until a batch closes. 0: the slot is done. */
static int batch_closed(struct wk_queue *q)
{
	for (;;) {
		uint64_t deadline;
		struct timespec ts;

		if (q->abandon)
			return 0;
		if (!q->queued) {
			if (q->draining)
				return 0;
			pthread_cond_wait(&q->work, &q->lock);
			continue;
		}
		if (q->queued >= q->max_batch || q->draining)
			return 1;
		deadline = q->head->t_rx + (uint64_t)q->max_delay_us * 1000;
		if (cpn_now_ns() >= deadline)
			return 1;
		ts = cpn_ns_timespec(deadline);
		pthread_cond_timedwait(&q->work, &q->lock, &ts);
	}
}

int wk_queue_take(struct wk_queue *q, int slot, struct wk_req **batch)
{
	uint64_t now;
	int n = 0;

	pthread_mutex_lock(&q->lock);
	if (batch_closed(q)) {
		n = q->queued < q->max_batch ? (int)q->queued : (int)q->max_batch;
		for (int i = 0; i < n; i++) {
			batch[i] = q->head;
			q->head = q->head->next;
		}
		if (!q->head)
			q->tail = NULL;
		WK_STORE(&q->queued, q->queued - (uint32_t)n);
		WK_STORE(&q->inflight, q->inflight + (uint32_t)n);
		now = cpn_now_ns();
		q->since[slot] = now ? now : 1;
	}
	pthread_mutex_unlock(&q->lock);
	return n;
}

/* First sample as is, then weight 1/8 (the router's EWMA); under lock. */
static void svc_update(struct wk_queue *q, uint64_t sample_ns)
{
	uint64_t e = q->svc_ewma_ns;

	e = e ? e - (e >> WK_EWMA_SHIFT) + (sample_ns >> WK_EWMA_SHIFT) : sample_ns;
	q->svc_ewma_ns = e;
	WK_STORE(&q->svc_us, (uint32_t)((e + 500) / 1000 ? (e + 500) / 1000 : 1));
}

void wk_queue_done(struct wk_queue *q, int slot, int n)
{
	uint64_t done = cpn_now_ns(), took;

	pthread_mutex_lock(&q->lock);
	took = done - q->since[slot];
	WK_STORE(&q->inflight, q->inflight - (uint32_t)n);
	q->busy_ns += took;
	svc_update(q, took / (uint64_t)n);
	q->since[slot] = 0;
	pthread_mutex_unlock(&q->lock);
}

void wk_queue_seed_svc(struct wk_queue *q, uint64_t ns)
{
	pthread_mutex_lock(&q->lock);
	q->svc_ewma_ns = ns;
	WK_STORE(&q->svc_us, (uint32_t)((ns + 500) / 1000 ?: 1));
	pthread_mutex_unlock(&q->lock);
}

void wk_queue_drain(struct wk_queue *q)
{
	pthread_mutex_lock(&q->lock);
	WK_STORE(&q->draining, 1);
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->lock);
}

void wk_queue_abandon(struct wk_queue *q)
{
	pthread_mutex_lock(&q->lock);
	WK_STORE(&q->draining, 1);
	WK_STORE(&q->abandon, 1);
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->lock);
}

uint64_t wk_queue_busy_ns(struct wk_queue *q, uint64_t now)
{
	uint64_t t;

	pthread_mutex_lock(&q->lock);
	t = q->busy_ns;
	for (int i = 0; i < q->capacity; i++)
		if (q->since[i] && now > q->since[i])
			t += now - q->since[i];
	pthread_mutex_unlock(&q->lock);
	return t;
}

void wk_queue_set_util(struct wk_queue *q, uint8_t util)
{
	WK_STORE(&q->util, util);
}

void wk_load_fill(struct wk_queue *q, struct cpn_msg *m)
{
	uint32_t d = WK_LOAD(&q->queued), f = WK_LOAD(&q->inflight);

	if (q->extra) {
		uint32_t e = q->extra(q->extra_ctx);

		d = d + e < d ? UINT32_MAX : d + e;
	}

	m->queue_depth = d > 0xffff ? 0xffff : (uint16_t)d;
	m->inflight = f > 0xffff ? 0xffff : (uint16_t)f;
	m->capacity = q->advertised;
	m->util = WK_LOAD(&q->util);
	if (WK_LOAD(&q->draining))
		m->flags |= CPN_F_DRAINING;
}

void wk_queue_busy(struct wk_queue *q, const struct wk_req *r, uint8_t reason, struct wk_out *o)
{
	struct cpn_msg m;

	wk_msg_answer(&m, &r->m, CPN_T_BUSY);
	m.status = reason;
	wk_load_fill(q, &m);
	m.worker_us = (uint32_t)((cpn_now_ns() - r->t_rx) / 1000);
	wk_tx_seal(q->tx, &m, o, &r->src);
	if (reason == CPN_BUSY_DRAINING)
		WK_ADD(q->st, busy_draining, 1);
	else
		WK_ADD(q->st, busy_overload, 1);
}

void wk_queue_refuse_rest(struct wk_queue *q)
{
	struct wk_out o[WK_TX_BATCH];
	struct wk_req *list, *r;
	int n;

	pthread_mutex_lock(&q->lock);
	list = q->head;
	q->head = q->tail = NULL;
	WK_STORE(&q->queued, 0);
	pthread_mutex_unlock(&q->lock);
	while (list) {
		struct wk_req *batch = list;

		for (n = 0; list && n < WK_TX_BATCH; n++, list = list->next)
			wk_queue_busy(q, list, CPN_BUSY_DRAINING, &o[n]);
		wk_tx_send(q->tx, o, n);
		while (batch != list) {
			r = batch->next;
			wk_req_free(q->st, batch);
			batch = r;
		}
	}
}
