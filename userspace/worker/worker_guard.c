// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The node's check of routed requests: hop tags, freshness, replays
 * (worker_guard.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cpn/siphash.h"
#include "worker_guard.h"
#include "cpn_util.h"

#define GEN_MIN_SLOTS 4096u

static int gen_alloc(struct wk_guard_gen *g, uint32_t cap)
{
	uint64_t *fp = calloc(cap, sizeof(*fp));

	if (!fp)
		return -ENOMEM;
	free(g->fp);
	g->fp = fp;
	g->cap = cap;
	g->n = 0;
	return 0;
}

int wk_guard_init(struct wk_guard *g, const __u64 *hop_key, uint16_t node_id, unsigned window_ms,
		  struct wk_stats *st)
{
	memset(g, 0, sizeof(*g));
	g->st = st;
	g->node_id = node_id;
	g->window_ms = window_ms;
	if (!hop_key)
		return 0;
	g->on = 1;
	g->hop_key[0] = hop_key[0];
	g->hop_key[1] = hop_key[1];
	if (getrandom(g->fp_key, sizeof(g->fp_key), 0) != sizeof(g->fp_key)) {
		g->fp_key[0] = cpn_now_ns();
		g->fp_key[1] = (__u64)(uintptr_t)g;
	}
	if (gen_alloc(&g->gen[0], GEN_MIN_SLOTS) || gen_alloc(&g->gen[1], GEN_MIN_SLOTS)) {
		wk_guard_fini(g);
		return -ENOMEM;
	}
	g->gen_start_ns = cpn_now_ns();
	return 0;
}

void wk_guard_fini(struct wk_guard *g)
{
	for (int i = 0; i < 2; i++) {
		free(g->gen[i].fp);
		g->gen[i].fp = NULL;
	}
	g->on = 0;
}

static int gen_has(const struct wk_guard_gen *g, uint64_t fp)
{
	for (uint32_t i = (uint32_t)fp & (g->cap - 1);; i = (i + 1) & (g->cap - 1)) {
		if (g->fp[i] == fp)
			return 1;
		if (!g->fp[i])
			return 0;
	}
}

static void gen_put(struct wk_guard_gen *g, uint64_t fp)
{
	uint32_t i = (uint32_t)fp & (g->cap - 1);

	while (g->fp[i])
		i = (i + 1) & (g->cap - 1);
	g->fp[i] = fp;
	g->n++;
}

/* Room for one more in the current generation: grow it (half full at
 * most), or, at its largest, start the next one early.
 */
static void gen_room(struct wk_guard *g, uint64_t now)
{
	struct wk_guard_gen *c = &g->gen[g->cur], n = {0};

	if (c->n + 1 <= c->cap / 2)
		return;
	if (c->cap < WK_GUARD_MAX_SLOTS && !gen_alloc(&n, c->cap * 2)) {
		for (uint32_t i = 0; i < c->cap; i++)
			if (c->fp[i])
				gen_put(&n, c->fp[i]);
		free(c->fp);
		*c = n;
		return;
	}
	g->cur ^= 1;
	memset(g->gen[g->cur].fp, 0, g->gen[g->cur].cap * sizeof(uint64_t));
	g->gen[g->cur].n = 0;
	g->gen_start_ns = now;
}

int wk_guard_request(struct wk_guard *g, const struct cpn_hdr *h, uint64_t now)
{
	uint16_t flags = cpn_ntohs(h->flags);
	__be32 hop;
	__u64 w[2], fp;

	if (!g->on)
		return 1;
	hop = cpn_hop_tag(g->hop_key, h);
	if (!(flags & CPN_F_TAGGED) || cpn_ntohs(h->node_id) != g->node_id ||
	    memcmp(&hop, &h->worker_us, sizeof(hop))) {
		WK_ADD(g->st, dropped_unrouted, 1);
		return 0;
	}
	if (flags & CPN_F_FRESH) {
		if (!cpn_stamp_ok(cpn_ntohl(h->stamp), cpn_tai_ms(), g->window_ms)) {
			WK_ADD(g->st, dropped_stale, 1);
			return 0;
		}
	}
	if ((flags & (CPN_F_FRAG | CPN_F_CONT)) == (CPN_F_FRAG | CPN_F_CONT))
		return 1; /* a later fragment, or an ack: tied to its message */
	/* Generations of one window each: a fingerprint is remembered for one
	 * window at least, two at most.
	 */
	if (now - g->gen_start_ns >= (uint64_t)g->window_ms * 1000000u) {
		g->cur ^= 1;
		memset(g->gen[g->cur].fp, 0, g->gen[g->cur].cap * sizeof(uint64_t));
		g->gen[g->cur].n = 0;
		g->gen_start_ns = now;
	}
	memcpy(&w[0], &h->request_id, 8);
	w[1] = 0;
	memcpy(&w[1], &h->tenant_id, 4);
	memcpy((char *)&w[1] + 4, &h->worker_us, 4);
	fp = cpn_siphash24(g->fp_key, w, 2) | 1; /* never 0, which is empty */
	if (gen_has(&g->gen[0], fp) || gen_has(&g->gen[1], fp)) {
		WK_ADD(g->st, dropped_replay, 1);
		return 0;
	}
	gen_room(g, now);
	gen_put(&g->gen[g->cur], fp);
	return 1;
}
