/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Latency histogram of cpn-load: log-linear buckets in the manner of
 * HdrHistogram, integer values (cpn-load records microseconds).
 *
 * Values below 2^LOAD_HIST_SUB_BITS (1024) have a bucket each: exact. Above,
 * every power of two [2^k, 2^(k+1)) is cut into 2^(LOAD_HIST_SUB_BITS-1)
 * equal buckets, so a bucket is never wider than 1/512 of the values it
 * holds: a percentile read from the histogram is the highest value of its
 * bucket, at most 0.2 % above the true one (and never above the largest
 * value recorded, which is kept exactly, as are the count, min, sum and sum
 * of squares). Values of 2^LOAD_HIST_MAX_BITS and above share the last
 * bucket. Recording is O(1) and allocation-free.
 */
#ifndef CPN_LOAD_HIST_H
#define CPN_LOAD_HIST_H

#include <stdint.h>

#define LOAD_HIST_SUB_BITS 10
#define LOAD_HIST_MAX_BITS 40 /* 2^40 µs: 12.7 days */
#define LOAD_HIST_SUB	   (1u << LOAD_HIST_SUB_BITS)
#define LOAD_HIST_HALF	   (LOAD_HIST_SUB / 2)
#define LOAD_HIST_BUCKETS                                                                          \
	(LOAD_HIST_SUB + (LOAD_HIST_MAX_BITS - LOAD_HIST_SUB_BITS) * LOAD_HIST_HALF)

struct load_hist {
	uint64_t count;
	uint64_t min, max; /* exact; min is UINT64_MAX while empty */
	double sum, sumsq; /* exact up to double rounding */
	uint64_t buckets[LOAD_HIST_BUCKETS];
};

void load_hist_init(struct load_hist *h);
void load_hist_record_n(struct load_hist *h, uint64_t v, uint64_t n);
static inline void load_hist_record(struct load_hist *h, uint64_t v)
{
	load_hist_record_n(h, v, 1);
}
/* Add every value of src to dst. */
void load_hist_merge(struct load_hist *dst, const struct load_hist *src);

/* The bucket of a value and the range of values [lowest, highest] it holds. */
uint32_t load_hist_index(uint64_t v);
uint64_t load_hist_lowest(uint32_t idx);
uint64_t load_hist_highest(uint32_t idx);

/* The value at percentile p (0..100): the highest value of the bucket that
 * holds the ceil(p/100 * count)-th smallest value (at least the first),
 * clamped to [min, max]. 0 when empty.
 */
uint64_t load_hist_percentile(const struct load_hist *h, double p);
double load_hist_mean(const struct load_hist *h);
double load_hist_stddev(const struct load_hist *h); /* population */

#endif /* CPN_LOAD_HIST_H */
