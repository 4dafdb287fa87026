// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Log-linear latency histogram (load_hist.h).
 *
 * Index of v >= 2^S (S = LOAD_HIST_SUB_BITS): with e = msb(v) - S + 1, the
 * top S bits of v, v >> e, lie in [2^(S-1), 2^S); the bucket is
 * e * 2^(S-1) + (v >> e). For e = 0 (v < 2^S) that is v itself, and each
 * power of two continues where the previous one stopped.
 */
#include <math.h>
#include <string.h>

#include "hist.h"

void load_hist_init(struct load_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

uint32_t load_hist_index(uint64_t v)
{
	if (v < LOAD_HIST_SUB)
		return (uint32_t)v;
	if (v >> LOAD_HIST_MAX_BITS)
		return LOAD_HIST_BUCKETS - 1;
	int msb = 63 - __builtin_clzll(v);
	int e = msb - LOAD_HIST_SUB_BITS + 1;

	return (uint32_t)e * LOAD_HIST_HALF + (uint32_t)(v >> e);
}

static int bucket_exp(uint32_t idx)
{
	if (idx < LOAD_HIST_SUB)
		return 0;
	return (int)((idx - LOAD_HIST_SUB) / LOAD_HIST_HALF) + 1;
}

uint64_t load_hist_lowest(uint32_t idx)
{
	int e = bucket_exp(idx);

	return (uint64_t)(idx - (uint32_t)e * LOAD_HIST_HALF) << e;
}

uint64_t load_hist_highest(uint32_t idx)
{
	if (idx >= LOAD_HIST_BUCKETS - 1)
		return UINT64_MAX;
	return load_hist_lowest(idx) + ((uint64_t)1 << bucket_exp(idx)) - 1;
}

void load_hist_record_n(struct load_hist *h, uint64_t v, uint64_t n)
{
	if (!n)
		return;
	h->buckets[load_hist_index(v)] += n;
	h->count += n;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->sum += (double)v * (double)n;
	h->sumsq += (double)v * (double)v * (double)n;
}

void load_hist_merge(struct load_hist *dst, const struct load_hist *src)
{
	if (!src->count)
		return;
	for (uint32_t i = 0; i < LOAD_HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->sum += src->sum;
	dst->sumsq += src->sumsq;
}

uint64_t load_hist_percentile(const struct load_hist *h, double p)
{
	if (!h->count)
		return 0;
	if (p < 0)
		p = 0;
	if (p > 100)
		p = 100;
	/* The rank, with 99.9 % of 1000 read as 999 and not 999.0000000000001. */
	double x = p / 100.0 * (double)h->count;
	uint64_t rank = (uint64_t)ceil(x - x * 1e-12);

	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;

	uint64_t cum = 0;
	uint32_t lo = load_hist_index(h->min), hi = load_hist_index(h->max);

	for (uint32_t i = lo; i <= hi; i++) {
		cum += h->buckets[i];
		if (cum >= rank) {
			uint64_t v = load_hist_highest(i);

			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

double load_hist_mean(const struct load_hist *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}

double load_hist_stddev(const struct load_hist *h)
{
	if (!h->count)
		return 0.0;
	double m = h->sum / (double)h->count;
	double var = h->sumsq / (double)h->count - m * m;

	return var > 0 ? sqrt(var) : 0.0;
}
