// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Batch slots: take (worker_queue), run (the handler), reply (worker_tx).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "worker_batch.h"
#include "cpn_util.h"

static void batch_hist_add(struct wk_batcher *b, int n)
{
	int k = 0;

	while (k < b->n_bounds && n > b->bounds[k])
		k++;
	WK_ADD(b->st, batch_hist[k], 1);
	WK_ADD(b->st, batch_count, 1);
	WK_ADD(b->st, batch_sum, (uint64_t)n);
}

/* Whether this slot's last reply carries an idle token (worker_batch.h). */
static int token_due(const struct wk_batcher *b)
{
	uint32_t held = WK_LOAD(&b->q->queued) + WK_LOAD(&b->q->inflight);
	int t = b->token_rule;

	if (t == WK_TOKEN_OFF)
		return 0;
	if (t == WK_TOKEN_ADAPT)
		t = WK_LOAD(&b->q->waited) > WK_TOKEN_ADAPT_WAITED ? 2 : 1;
	return held < (uint32_t)b->q->capacity + (uint32_t)t - 1;
}

/* A REPLY per request, sent together; then the requests are freed. The
 * slot is free again: the last reply may carry an idle token (CPN_F_TOKEN),
 * which asks the router it goes through for the next request (policy jiq).
 * A reply larger than a datagram goes to the large replies' sender (a
 * copy), or, where the node has no memory for it, is answered BUSY.
 */
static const uint8_t *pkey_of(const struct wk_batcher *b, uint32_t tenant)
{
	for (int i = 0; i < b->n_pkeys; i++)
		if (b->pkeys[i].tenant == tenant)
			return b->pkeys[i].key;
	return NULL;
}

/* Seal the reply payload of place i for the reply m: 0 (rep points at the
 * sealed bytes), or -1.
 */
static int seal_reply(struct wk_batcher *b, struct wk_slot *s, int i, const uint8_t *key,
		      struct cpn_msg *m, struct wk_reply *rep)
{
	uint32_t need = rep->len + CPN_SEAL_OVERHEAD;
	uint8_t ad[CPN_SEAL_AD_LEN];
	struct cpn_hdr h;
	struct cpn_msg am;

	if (rep->len > CPN_FRAG_MAX_TOTAL - CPN_SEAL_OVERHEAD || (rep->len && !rep->payload))
		return -1;
	if (s->seal_cap[i] < need) {
		uint8_t *p = realloc(s->seal_buf[i], need);

		if (!p)
			return -1;
		s->seal_buf[i] = p;
		s->seal_cap[i] = need;
	}
	m->flags |= CPN_F_SEALED;
	/* The header as it leaves: what wk_tx_seal() adds, too. */
	am = *m;
	am.magic = CPN_MAGIC;
	am.version = CPN_VERSION;
	am.flags |= CPN_F_FRESH | (b->tx->have_key ? CPN_F_AUTH : 0);
	cpn_hdr_encode(&am, &h);
	cpn_seal_ad(&h, ad);
	if (cpn_seal(key, ad, rep->payload, rep->len, s->seal_buf[i]))
		return -1;
	rep->payload = s->seal_buf[i];
	rep->len = need;
	return 0;
}

static void reply_batch(struct wk_batcher *b, struct wk_slot *s, int n)
{
	uint64_t now = cpn_now_ns();
	int token = token_due(b), k = 0;

	for (int i = 0; i < n; i++) {
		struct wk_req *r = s->batch[i];
		struct wk_reply *rep = &s->rep[i];
		uint64_t us = (now - r->t_rx) / 1000;
		struct cpn_msg m;
		uint8_t st = rep->status < WK_ST_N ? rep->status : CPN_ST_KERNEL_ERROR;
		const uint8_t *key;

		wk_msg_answer(&m, &r->m, CPN_T_REPLY);
		/* A sealed request's reply is sealed under the same key (a request
		 * that did not open is answered BAD_REQUEST, in clear, with nothing).
		 */
		if ((r->m.flags & CPN_F_SEALED) && st != CPN_ST_BAD_REQUEST &&
		    (key = pkey_of(b, r->m.tenant_id))) {
			if (st != CPN_ST_OK)
				rep->len = 0;
			if (seal_reply(b, s, i, key, &m, rep)) {
				st = CPN_ST_KERNEL_ERROR;
				rep->len = 0;
				m.flags &= (uint16_t)~CPN_F_SEALED;
			}
		}
		m.status = st;
		if (token && i == n - 1)
			m.flags |= CPN_F_TOKEN;
		m.worker_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
		/* A reply larger than a fragment goes as fragments to a client
		 * that takes them (FRAG or FRAG_OK on its request): one datagram
		 * above the path MTU would be cut into IP fragments, which no
		 * router rewrites. To any other, one datagram as before, up to
		 * the largest there is.
		 */
		if (st == CPN_ST_OK &&
		    (rep->len > CPN_WORKER_MAX_DATAGRAM_PAYLOAD ||
		     (rep->len > WK_FRAG_DATA && (r->m.flags & (CPN_F_FRAG | CPN_F_FRAG_OK))))) {
			if (!rep->payload || !b->fragtx ||
			    wk_fragtx_put(b->fragtx, r, &m, rep->payload, rep->len))
				wk_queue_busy(b->q, r, CPN_BUSY_OVERLOAD, &s->out[k++]);
			continue;
		}
		wk_load_fill(b->q, &m);
		wk_tx_seal(b->tx, &m, &s->out[k], &r->src);
		if ((st == CPN_ST_OK || (m.flags & CPN_F_SEALED)) && rep->len) {
			s->out[k].pl = rep->payload;
			s->out[k].plen = rep->payload ? rep->len : 0;
		}
		k++;
		WK_ADD(b->st, replies[st], 1);
		wk_lat_add(b->st, m.worker_us);
	}
	wk_tx_send(b->tx, s->out, k);
	for (int i = 0; i < n; i++) {
		wk_req_free(b->st, s->batch[i]);
		s->batch[i] = NULL;
	}
}

/* Open the batch's sealed requests in place; those that do not open (no
 * key for the tenant, another key, altered) go to the end of the batch.
 * Returns how many are good (the first ones).
 */
static int open_sealed(struct wk_batcher *b, struct wk_slot *s, int n)
{
	int good = n;

	for (int i = 0; i < good;) {
		struct wk_req *r = s->batch[i];
		uint8_t ad[CPN_SEAL_AD_LEN];
		struct cpn_hdr h;
		const uint8_t *key;

		if (!(r->m.flags & CPN_F_SEALED)) {
			i++;
			continue;
		}
		cpn_hdr_encode(&r->m, &h);
		cpn_seal_ad(&h, ad);
		key = pkey_of(b, r->m.tenant_id);
		if (key && !cpn_open_inplace(key, ad, r->payload, r->len)) {
			WK_ADD(b->st, sealed_opened, 1);
			i++;
			continue;
		}
		WK_ADD(b->st, sealed_refused, 1);
		/* Refused: its place at the end, and its flag off (its reply
		 * goes in clear).
		 */
		r->m.flags &= (uint16_t)~CPN_F_SEALED;
		s->batch[i] = s->batch[--good];
		s->batch[good] = r;
	}
	return good;
}

static void *slot_main(void *arg)
{
	struct wk_slot *s = arg;
	struct wk_batcher *b = s->b;
	int n;

	/* The synthetic kernel's sleeps and the batcher's deadlines are µs. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	while ((n = wk_queue_take(b->q, s->idx, s->batch)) > 0) {
		int good = open_sealed(b, s, n);

		for (int i = 0; i < n; i++) {
			const struct wk_req *r = s->batch[i];
			int sealed = r->m.flags & CPN_F_SEALED;

			s->reqv[i] = (struct cpn_worker_request){
			    .payload = sealed ? r->payload + CPN_SEAL_NONCE_LEN : r->payload,
			    .len = sealed ? r->len - CPN_SEAL_OVERHEAD : r->len,
			    .service = r->m.service_id,
			    .tenant = r->m.tenant_id,
			    .session = r->m.session_key,
			    .request_id = r->m.request_id,
			};
			s->rep[i] = (struct wk_reply){.status = i < good ? CPN_ST_KERNEL_ERROR
									 : CPN_ST_BAD_REQUEST};
		}
		/* The handler sees the requests that opened, in clear. */
		if (good)
			b->h->run(s->inst, s->reqv, good, s->rep);
		wk_queue_done(b->q, s->idx, n);
		batch_hist_add(b, n);
		reply_batch(b, s, n);
	}
	__atomic_fetch_sub(&b->running, 1, __ATOMIC_ACQ_REL);
	return NULL;
}

/* Every slot runs a batch of one zero request, twice (the first call of a
 * GPU backend sets it up); the last time, per request, seeds the mean
 * service time reported until real batches replace it.
 */
static int warm_up(struct wk_batcher *b, struct wk_slot *s, uint64_t *ns, char *err, size_t errlen)
{
	for (int rep = 0; rep < 2; rep++) {
		uint64_t t0 = cpn_now_ns();

		if (b->h->warm(s->inst)) {
			snprintf(err, errlen, "slot %d: the %s backend failed a warm-up batch",
				 s->idx, b->h->backend);
			return -EIO;
		}
		*ns = cpn_now_ns() - t0;
	}
	return 0;
}

int wk_batcher_init(struct wk_batcher *b, struct wk_queue *q, struct wk_tx *tx, struct wk_stats *st,
		    const struct wk_handler *h, int n_slots, int max_batch, char *err,
		    size_t errlen)
{
	size_t B = (size_t)max_batch;
	uint64_t svc = h->svc_hint_ns;

	memset(b, 0, sizeof(*b));
	b->q = q;
	b->tx = tx;
	b->st = st;
	b->h = h;
	b->n_slots = n_slots;
	b->max_batch = max_batch;
	/* Batch size buckets: powers of two, then max_batch - 1 and max_batch,
	 * so that the last bucket counts exactly the full batches.
	 */
	for (int k = 1; k < max_batch && b->n_bounds < WK_BATCH_BUCKETS - 2; k *= 2)
		b->bounds[b->n_bounds++] = k;
	if (max_batch > 2 && b->bounds[b->n_bounds - 1] < max_batch - 1)
		b->bounds[b->n_bounds++] = max_batch - 1;
	b->bounds[b->n_bounds++] = max_batch;

	b->slots = calloc((size_t)n_slots, sizeof(*b->slots));
	if (!b->slots)
		goto nomem;
	for (int i = 0; i < n_slots; i++) {
		struct wk_slot *s = &b->slots[i];

		s->b = b;
		s->idx = i;
		s->batch = calloc(B, sizeof(*s->batch));
		s->reqv = calloc(B, sizeof(*s->reqv));
		s->rep = calloc(B, sizeof(*s->rep));
		s->out = calloc(B, sizeof(*s->out));
		s->seal_buf = calloc(B, sizeof(*s->seal_buf));
		s->seal_cap = calloc(B, sizeof(*s->seal_cap));
		if (!s->batch || !s->reqv || !s->rep || !s->out || !s->seal_buf || !s->seal_cap)
			goto nomem;
		*err = 0;
		s->inst = h->slot_open(h->ctx, i, max_batch, err, errlen);
		if (!s->inst) {
			if (!*err)
				snprintf(err, errlen, "slot %d did not open", i);
			return -EIO;
		}
		if (h->warm && warm_up(b, s, &svc, err, errlen))
			return -EIO;
	}
	wk_queue_seed_svc(q, svc);
	return 0;
nomem:
	snprintf(err, errlen, "out of memory for %d slots of batches of %d", n_slots, max_batch);
	return -ENOMEM;
}

int wk_batcher_start(struct wk_batcher *b, char *err, size_t errlen)
{
	for (int i = 0; i < b->n_slots; i++) {
		struct wk_slot *s = &b->slots[i];
		int e;

		__atomic_fetch_add(&b->running, 1, __ATOMIC_ACQ_REL);
		e = pthread_create(&s->th, NULL, slot_main, s);
		if (e) {
			__atomic_fetch_sub(&b->running, 1, __ATOMIC_ACQ_REL);
			snprintf(err, errlen, "slot thread: %s", strerror(e));
			return -e;
		}
		s->started = 1;
	}
	return 0;
}

int wk_batcher_running(struct wk_batcher *b)
{
	return __atomic_load_n(&b->running, __ATOMIC_ACQUIRE);
}

void wk_batcher_join(struct wk_batcher *b)
{
	for (int i = 0; b->slots && i < b->n_slots; i++) {
		if (!b->slots[i].started)
			continue;
		pthread_join(b->slots[i].th, NULL);
		b->slots[i].started = 0;
	}
}

void wk_batcher_fini(struct wk_batcher *b)
{
	for (int i = 0; b->slots && i < b->n_slots; i++) {
		struct wk_slot *s = &b->slots[i];

		if (s->inst && b->h->slot_close)
			b->h->slot_close(s->inst);
		free(s->batch);
		free(s->reqv);
		free(s->rep);
		free(s->out);
		for (int k = 0; s->seal_buf && k < b->max_batch; k++)
			free(s->seal_buf[k]);
		free(s->seal_buf);
		free(s->seal_cap);
	}
	free(b->slots);
	b->slots = NULL;
}
