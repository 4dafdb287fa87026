// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-worker's queue, dynamic batcher and batch slots.
 *
 * The queue is one FIFO bounded by --queue (default 4096); a request that
 * finds it full is answered BUSY/OVERLOAD by the receiver at once. Each of
 * the --capacity slots is a thread with its own backend instance. A free
 * slot closes a batch when --max-batch requests are waiting, or when the
 * oldest has waited --max-delay-us, or at once while draining (nothing
 * more will come); it takes up to --max-batch from the head. While every
 * slot is busy requests accumulate, so the next free slot finds a full
 * batch: batches grow with load, and a lone request waits at most
 * --max-delay-us.
 *
 * The synthetic kernel sleeps (clock_nanosleep, so that many workers share
 * a few cores) for the SUM of its requests' drawn service times, as if the
 * slot served them one after another: a slot is one server, and with
 * --max-batch 1 --capacity k a worker is exactly an M/G/k station. Its
 * reply payload is the request's payload, echoed.
 */
#include <endian.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "worker.h"
#include "cpn_util.h"

const uint32_t wk_lat_bounds_us[WK_LAT_BUCKETS] = {
    50,	   100,	  250,	  500,	  1000,	  2500,	   5000,    10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
};

/* See worker.h: the router divides depth x per-request service time by it. */
uint16_t wk_report_capacity(const struct wk_opts *o)
{
	return (uint16_t)o->capacity;
}

static uint32_t le32_get(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

/* n little-endian 32-bit words (float32, uint32) to host order and back. */
static void words_from_le(void *dst, const uint8_t *src, size_t n)
{
	memcpy(dst, src, n * 4);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	for (size_t i = 0; i < n; i++)
		((uint32_t *)dst)[i] = le32toh(((uint32_t *)dst)[i]);
#endif
}

static void words_to_le(void *p, size_t n)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	for (size_t i = 0; i < n; i++)
		((uint32_t *)p)[i] = htole32(((uint32_t *)p)[i]);
#else
	(void)p;
	(void)n;
#endif
}

int wk_payload_ok(const struct worker *w, uint32_t len)
{
	switch (w->o.kernel) {
	case WK_K_MLP:
	case WK_K_VSEARCH:
		return len == w->req_len;
	default:
		/* Echoed: the reply, perhaps signed, must fit in a datagram. */
		return len + WK_HDR_MAX <= WK_MAX_UDP;
	}
}

static int vs_k(const struct worker *w, const uint8_t *pl)
{
	uint32_t k = le32_get(pl);
	uint32_t max = (uint32_t)(w->vt.rows < CPN_VS_MAX_K ? w->vt.rows : CPN_VS_MAX_K);

	return (int)(k < 1 ? 1 : k > max ? max : k);
}

/* ---- queue ------------------------------------------------------------- */

void wk_enqueue(struct worker *w, struct wk_req *list, struct wk_req **refused)
{
	struct wk_req **rp = refused, *r, *next;

	*refused = NULL;
	pthread_mutex_lock(&w->lock);
	for (r = list; r; r = next) {
		next = r->next;
		r->next = NULL;
		if (w->draining || w->abandon || w->queued >= (uint32_t)w->o.queue_len) {
			r->m.status =
			    w->draining || w->abandon ? CPN_BUSY_DRAINING : CPN_BUSY_OVERLOAD;
			*rp = r;
			rp = &r->next;
			continue;
		}
		if (w->tail)
			w->tail->next = r;
		else
			w->head = r;
		w->tail = r;
		WK_STORE(&w->queued, w->queued + 1);
	}
	pthread_cond_broadcast(&w->work);
	pthread_mutex_unlock(&w->lock);
}

void wk_drain_begin(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	WK_STORE(&w->draining, 1);
	pthread_cond_broadcast(&w->work);
	pthread_mutex_unlock(&w->lock);
}

void wk_abandon(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	WK_STORE(&w->draining, 1);
	WK_STORE(&w->abandon, 1);
	pthread_cond_broadcast(&w->work);
	pthread_mutex_unlock(&w->lock);
}

int wk_slots_running(struct worker *w)
{
	int n;

	pthread_mutex_lock(&w->lock);
	n = w->slots_running;
	pthread_mutex_unlock(&w->lock);
	return n;
}

uint64_t wk_busy_ns(struct worker *w, uint64_t now)
{
	uint64_t t = 0;

	pthread_mutex_lock(&w->lock);
	for (int i = 0; i < w->o.capacity; i++) {
		struct wk_slot *s = &w->slots[i];

		t += s->busy_ns;
		if (s->busy_since && now > s->busy_since)
			t += now - s->busy_since;
	}
	pthread_mutex_unlock(&w->lock);
	return t;
}

static void svc_update(struct worker *w, uint64_t sample_ns)
{
	uint64_t e = w->svc_ewma_ns;

	/* First sample as is, then weight 1/8 (the router's EWMA). */
	e = e ? e - (e >> WK_EWMA_SHIFT) + (sample_ns >> WK_EWMA_SHIFT) : sample_ns;
	w->svc_ewma_ns = e;
	WK_STORE(&w->svc_us, (uint32_t)((e + 500) / 1000 ? (e + 500) / 1000 : 1));
}

/* ---- slots ------------------------------------------------------------- */

/* One synthetic service time, ns. */
static uint64_t synth_draw(const struct wk_opts *o, uint64_t *rng)
{
	double u = (double)(cpn_splitmix64(rng) >> 11) * 0x1.0p-53; /* [0, 1) */
	double us;

	switch (o->dist) {
	case WK_D_EXP:
		us = -o->svc_us[0] * log1p(-u);
		break;
	case WK_D_BIMODAL:
		us = u < o->svc_p ? o->svc_us[1] : o->svc_us[0];
		break;
	default:
		us = o->svc_us[0];
	}
	/* 1000 s bounds the sleep of a pathological draw. */
	return us > 1e9 ? 1000000000000ULL : (uint64_t)(us * 1000);
}

static double synth_mean_us(const struct wk_opts *o)
{
	if (o->dist == WK_D_BIMODAL)
		return (1 - o->svc_p) * o->svc_us[0] + o->svc_p * o->svc_us[1];
	return o->svc_us[0];
}

/* Under w->lock: wait for a batch to close, take it. 0: the slot is done. */
static int take_batch(struct worker *w, struct wk_slot *s)
{
	uint64_t now;
	int n;

	for (;;) {
		if (w->abandon)
			return 0;
		if (!w->queued) {
			if (w->draining)
				return 0;
			pthread_cond_wait(&w->work, &w->lock);
			continue;
		}
		if (w->queued >= (uint32_t)w->o.max_batch || w->draining)
			break;
		uint64_t deadline = w->head->t_rx + (uint64_t)w->o.max_delay_us * 1000;
		struct timespec ts;

		if (cpn_now_ns() >= deadline)
			break;
		ts.tv_sec = (time_t)(deadline / 1000000000u);
		ts.tv_nsec = (long)(deadline % 1000000000u);
		pthread_cond_timedwait(&w->work, &w->lock, &ts);
	}
	n = w->queued < (uint32_t)w->o.max_batch ? (int)w->queued : w->o.max_batch;
	for (int i = 0; i < n; i++) {
		s->batch[i] = w->head;
		w->head = w->head->next;
	}
	if (!w->head)
		w->tail = NULL;
	WK_STORE(&w->queued, w->queued - (uint32_t)n);
	WK_STORE(&w->inflight, w->inflight + (uint32_t)n);
	now = cpn_now_ns();
	s->busy_since = now ? now : 1;
	return n;
}

/* Run the kernel over the batch: s->st[i] each request's status. */
static void run_kernel(struct worker *w, struct wk_slot *s, int n)
{
	const struct wk_opts *o = &w->o;
	int rc = 0;

	switch (o->kernel) {
	case WK_K_ECHO:
		break;
	case WK_K_SYNTH: {
		uint64_t total = 0;
		struct timespec ts;

		for (int i = 0; i < n; i++)
			total += synth_draw(o, &s->rng);
		total += s->busy_since;
		ts.tv_sec = (time_t)(total / 1000000000u);
		ts.tv_nsec = (long)(total % 1000000000u);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		break;
	}
	case WK_K_MLP: {
		size_t in = (size_t)w->mlp.dims[0];

		for (int i = 0; i < n; i++)
			words_from_le(s->in + (size_t)i * in, s->batch[i]->payload, in);
		rc = w->ops->mlp(s->be, s->in, n, s->out);
		if (!rc)
			words_to_le(s->out, (size_t)n * (size_t)w->mlp.dims[w->mlp.n_layers]);
		break;
	}
	case WK_K_VSEARCH: {
		size_t dim = (size_t)w->vt.dim;
		int kmax = 1;

		for (int i = 0; i < n; i++) {
			s->k[i] = vs_k(w, s->batch[i]->payload);
			if (s->k[i] > kmax)
				kmax = s->k[i];
			words_from_le(s->in + (size_t)i * dim, s->batch[i]->payload + 4, dim);
		}
		/* One k for the batch, the largest: a request's own top-k is a
		 * prefix of it (best first, ties to the lower id).
		 */
		rc = w->ops->vsearch(s->be, s->in, n, kmax, s->ids, s->scores);
		if (rc)
			break;
		for (int i = 0; i < n; i++) {
			uint8_t *p = s->pl + (size_t)i * CPN_VS_MAX_K * 8;

			for (int j = 0; j < s->k[i]; j++) {
				uint32_t id = htole32(s->ids[(size_t)i * kmax + j]), sc;

				memcpy(&sc, &s->scores[(size_t)i * kmax + j], 4);
				sc = htole32(sc);
				memcpy(p + j * 8, &id, 4);
				memcpy(p + j * 8 + 4, &sc, 4);
			}
		}
		break;
	}
	}
	for (int i = 0; i < n; i++)
		s->st[i] = rc ? CPN_ST_KERNEL_ERROR : CPN_ST_OK;
}

static void reply_payload(struct worker *w, struct wk_slot *s, int i, struct wk_tx *t)
{
	t->pl = NULL;
	t->plen = 0;
	if (s->st[i] != CPN_ST_OK)
		return;
	switch (w->o.kernel) {
	case WK_K_MLP: {
		size_t out = (size_t)w->mlp.dims[w->mlp.n_layers];

		t->pl = s->out + (size_t)i * out;
		t->plen = (uint32_t)(out * 4);
		break;
	}
	case WK_K_VSEARCH:
		t->pl = s->pl + (size_t)i * CPN_VS_MAX_K * 8;
		t->plen = (uint32_t)s->k[i] * 8;
		break;
	default:
		t->pl = s->batch[i]->payload;
		t->plen = s->batch[i]->len;
	}
}

static void batch_hist_add(struct worker *w, int n)
{
	int b = 0;

	while (b < w->n_batch_bounds && n > w->batch_bounds[b])
		b++;
	WK_ADD(w, batch_hist[b], 1);
	WK_ADD(w, batch_count, 1);
	WK_ADD(w, batch_sum, (uint64_t)n);
}

static void lat_hist_add(struct worker *w, uint32_t us)
{
	int b = 0;

	while (b < WK_LAT_BUCKETS && us > wk_lat_bounds_us[b])
		b++;
	WK_ADD(w, lat_hist[b], 1);
	WK_ADD(w, lat_count, 1);
	WK_ADD(w, lat_sum_us, us);
}

static void finish_batch(struct worker *w, struct wk_slot *s, int n)
{
	uint64_t done = cpn_now_ns(), now;

	pthread_mutex_lock(&w->lock);
	WK_STORE(&w->inflight, w->inflight - (uint32_t)n);
	s->busy_ns += done - s->busy_since;
	svc_update(w, (done - s->busy_since) / (uint64_t)n);
	s->busy_since = 0;
	pthread_mutex_unlock(&w->lock);
	batch_hist_add(w, n);

	now = cpn_now_ns();
	for (int i = 0; i < n; i++) {
		struct wk_req *r = s->batch[i];
		struct cpn_msg m;
		uint64_t us = (now - r->t_rx) / 1000;

		cpn_msg_init(&m, CPN_T_REPLY);
		m.service_id = r->m.service_id;
		m.tenant_id = r->m.tenant_id;
		m.session_key = r->m.session_key;
		m.request_id = r->m.request_id;
		m.hops = r->m.hops;
		m.class = r->m.class;
		m.router_ts = r->m.router_ts;
		m.status = s->st[i];
		m.worker_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
		wk_load_fill(w, &m);
		wk_seal(w, &m, &s->tx[i]);
		s->tx[i].dst = &r->src;
		reply_payload(w, s, i, &s->tx[i]);
		WK_ADD(w, replies[s->st[i]], 1);
		lat_hist_add(w, m.worker_us);
	}
	wk_send(w, s->tx, n);
	for (int i = 0; i < n; i++) {
		free(s->batch[i]);
		s->batch[i] = NULL;
	}
}

static void *slot_main(void *arg)
{
	struct wk_slot *s = arg;
	struct worker *w = s->w;

	/* The synthetic kernel's sleeps and the batcher's deadlines are µs. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	pthread_mutex_lock(&w->lock);
	for (;;) {
		int n = take_batch(w, s);

		if (!n)
			break;
		pthread_mutex_unlock(&w->lock);
		run_kernel(w, s, n);
		finish_batch(w, s, n);
		pthread_mutex_lock(&w->lock);
	}
	w->slots_running--;
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Every slot runs a batch of one zero request, twice (the first call of a
 * GPU backend sets it up); the last time, per request, seeds the mean
 * service time reported until real batches replace it.
 */
static int warm_up(struct worker *w, struct wk_slot *s, char *err, size_t errlen)
{
	for (int rep = 0; rep < 2; rep++) {
		uint64_t t0 = cpn_now_ns();
		int rc;

		if (w->o.kernel == WK_K_MLP) {
			memset(s->in, 0, (size_t)w->mlp.dims[0] * sizeof(float));
			rc = w->ops->mlp(s->be, s->in, 1, s->out);
		} else {
			memset(s->in, 0, (size_t)w->vt.dim * sizeof(float));
			rc = w->ops->vsearch(s->be, s->in, 1, 1, s->ids, s->scores);
		}
		if (rc) {
			snprintf(err, errlen, "slot %d: the %s backend failed a warm-up batch",
				 s->idx, w->ops->name);
			return -EIO;
		}
		w->svc_ewma_ns = cpn_now_ns() - t0;
	}
	return 0;
}

int wk_batch_init(struct worker *w, char *err, size_t errlen)
{
	const struct wk_opts *o = &w->o;
	size_t B = (size_t)o->max_batch;

	w->report_capacity = wk_report_capacity(o);
	/* Batch size buckets: powers of two, then max_batch - 1 and max_batch,
	 * so that the last bucket counts exactly the full batches.
	 */
	w->n_batch_bounds = 0;
	for (int b = 1; b < o->max_batch && w->n_batch_bounds < WK_BATCH_BUCKETS - 2; b *= 2)
		w->batch_bounds[w->n_batch_bounds++] = b;
	if (o->max_batch > 2 && w->batch_bounds[w->n_batch_bounds - 1] < o->max_batch - 1)
		w->batch_bounds[w->n_batch_bounds++] = o->max_batch - 1;
	w->batch_bounds[w->n_batch_bounds++] = o->max_batch;

	w->slots = calloc((size_t)o->capacity, sizeof(*w->slots));
	if (!w->slots)
		goto nomem;
	for (int i = 0; i < o->capacity; i++) {
		struct wk_slot *s = &w->slots[i];
		size_t in = 0, out = 0;

		s->w = w;
		s->idx = i;
		s->rng = o->seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1));
		s->batch = calloc(B, sizeof(*s->batch));
		s->tx = calloc(B, sizeof(*s->tx));
		s->st = calloc(B, 1);
		if (!s->batch || !s->tx || !s->st)
			goto nomem;
		if (o->kernel == WK_K_MLP) {
			in = (size_t)w->mlp.dims[0];
			out = (size_t)w->mlp.dims[w->mlp.n_layers];
		} else if (o->kernel == WK_K_VSEARCH) {
			in = (size_t)w->vt.dim;
			s->ids = calloc(B * CPN_VS_MAX_K, sizeof(*s->ids));
			s->scores = calloc(B * CPN_VS_MAX_K, sizeof(*s->scores));
			s->pl = calloc(B * CPN_VS_MAX_K, 8);
			s->k = calloc(B, sizeof(*s->k));
			if (!s->ids || !s->scores || !s->pl || !s->k)
				goto nomem;
		}
		if (in) {
			s->in = calloc(B * in, sizeof(float));
			if (!s->in)
				goto nomem;
		}
		if (out) {
			s->out = calloc(B * out, sizeof(float));
			if (!s->out)
				goto nomem;
		}
		if (!w->ops)
			continue;
		s->be = w->ops->open(w->have_mlp ? &w->mlp : NULL, w->have_vt ? &w->vt : NULL,
				     o->max_batch, err, errlen);
		if (!s->be) {
			if (!*err)
				snprintf(err, errlen, "the %s backend did not open", w->ops->name);
			return -EIO;
		}
		if (i == 0 && w->ops->device)
			snprintf(w->device, sizeof(w->device), "%s", w->ops->device(s->be));
		if (warm_up(w, s, err, errlen))
			return -EIO;
	}
	if (o->kernel == WK_K_SYNTH)
		w->svc_ewma_ns = (uint64_t)(synth_mean_us(o) * 1000);
	WK_STORE(&w->svc_us, (uint32_t)((w->svc_ewma_ns + 500) / 1000 ?: 1));
	return 0;
nomem:
	snprintf(err, errlen, "out of memory for %d slots of batches of %d", o->capacity,
		 o->max_batch);
	return -ENOMEM;
}

int wk_batch_start(struct worker *w, char *err, size_t errlen)
{
	for (int i = 0; i < w->o.capacity; i++) {
		struct wk_slot *s = &w->slots[i];
		int e;

		pthread_mutex_lock(&w->lock);
		w->slots_running++;
		pthread_mutex_unlock(&w->lock);
		e = pthread_create(&s->th, NULL, slot_main, s);
		if (e) {
			pthread_mutex_lock(&w->lock);
			w->slots_running--;
			pthread_mutex_unlock(&w->lock);
			snprintf(err, errlen, "slot thread: %s", strerror(e));
			return -e;
		}
		s->started = 1;
	}
	return 0;
}

void wk_batch_join(struct worker *w)
{
	for (int i = 0; w->slots && i < w->o.capacity; i++) {
		if (!w->slots[i].started)
			continue;
		pthread_join(w->slots[i].th, NULL);
		w->slots[i].started = 0;
	}
}

void wk_batch_refuse_rest(struct worker *w)
{
	struct wk_tx t[WK_TX_BATCH];
	struct wk_req *list, *r;
	int n = 0;

	pthread_mutex_lock(&w->lock);
	list = w->head;
	w->head = w->tail = NULL;
	WK_STORE(&w->queued, 0);
	pthread_mutex_unlock(&w->lock);
	while (list) {
		struct wk_req *batch = list;

		for (n = 0; list && n < WK_TX_BATCH; n++, list = list->next)
			wk_busy_msg(w, list, CPN_BUSY_DRAINING, &t[n]);
		wk_send(w, t, n);
		while (batch != list) {
			r = batch->next;
			free(batch);
			batch = r;
		}
	}
}

void wk_batch_free(struct worker *w)
{
	struct wk_req *r, *n;

	for (r = w->head; r; r = n) {
		n = r->next;
		free(r);
	}
	w->head = w->tail = NULL;
	for (int i = 0; w->slots && i < w->o.capacity; i++) {
		struct wk_slot *s = &w->slots[i];

		if (s->be)
			w->ops->close(s->be);
		free(s->in);
		free(s->out);
		free(s->scores);
		free(s->ids);
		free(s->pl);
		free(s->k);
		free(s->st);
		free(s->batch);
		free(s->tx);
	}
	free(w->slots);
	w->slots = NULL;
}
