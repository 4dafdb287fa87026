// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit tests of cpn-load's latency histogram (tools/cpn-load/hist.c): bucket
 * layout, and percentiles of known distributions within the bucket
 * precision (exact below 1024, at most 1/512 high above, never above max).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hist.h"
#include "cpn_util.h"

static struct load_hist *new_hist(void)
{
	struct load_hist *h = malloc(sizeof(*h));

	assert_non_null(h);
	load_hist_init(h);
	return h;
}

/* splitmix64: seeded, the same numbers on every run */
static uint64_t sm_state = 0x243f6a8885a308d3ULL;

static uint64_t rng(void)
{
	return cpn_splitmix64(&sm_state);
}

static double unit(void)
{
	return (double)(rng() >> 11) * 0x1.0p-53;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The true percentile: the ceil(p/100 * n)-th smallest value (1-based). */
static uint64_t true_pct(const uint64_t *sorted, size_t n, double p)
{
	double x = p / 100.0 * (double)n;
	size_t rank = (size_t)ceil(x - x * 1e-12);

	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

/* The histogram's answer is the top of the true value's bucket: not below
 * the truth, at most 1/512 above it (exact below 1024), never above max.
 */
static void assert_pct_close(const struct load_hist *h, const uint64_t *sorted, size_t n, double p)
{
	uint64_t want = true_pct(sorted, n, p), got = load_hist_percentile(h, p);

	assert_true(got >= want);
	assert_true(got <= sorted[n - 1]);
	if (want < LOAD_HIST_SUB)
		assert_int_equal(got, want);
	else
		assert_true((double)(got - want) <= (double)want / LOAD_HIST_HALF);
}

static void check_distribution(uint64_t *v, size_t n)
{
	static const double ps[] = {0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};
	struct load_hist *h = new_hist();
	double sum = 0;

	for (size_t i = 0; i < n; i++) {
		load_hist_record(h, v[i]);
		sum += (double)v[i];
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	assert_int_equal(h->count, n);
	assert_int_equal(h->min, v[0]);
	assert_int_equal(h->max, v[n - 1]);
	assert_true(fabs(load_hist_mean(h) - sum / (double)n) <= 1e-6 * (sum / (double)n) + 1e-9);
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
		assert_pct_close(h, v, n, ps[i]);
	/* Ordered, as a report needs them. */
	assert_true(load_hist_percentile(h, 50) <= load_hist_percentile(h, 90));
	assert_true(load_hist_percentile(h, 90) <= load_hist_percentile(h, 99));
	assert_true(load_hist_percentile(h, 99) <= load_hist_percentile(h, 99.9));
	assert_true(load_hist_percentile(h, 99.9) <= h->max);
	free(h);
}

/* ---- tests ------------------------------------------------------------ */

static void test_buckets_tile_the_value_range(void **state)
{
	(void)state;
	/* Exact below 2^SUB_BITS, then contiguous buckets no wider than 1/512. */
	for (uint32_t i = 0; i < LOAD_HIST_BUCKETS - 1; i++) {
		uint64_t lo = load_hist_lowest(i), hi = load_hist_highest(i);

		assert_true(lo <= hi);
		assert_int_equal(load_hist_index(lo), i);
		assert_int_equal(load_hist_index(hi), i);
		assert_int_equal(load_hist_lowest(i + 1), hi + 1);
		if (lo < LOAD_HIST_SUB)
			assert_int_equal(lo, hi);
		else
			assert_true((double)(hi - lo + 1) <= (double)lo / LOAD_HIST_HALF);
	}
	assert_int_equal(load_hist_index(0), 0);
	assert_int_equal(load_hist_index(1023), 1023);
	assert_int_equal(load_hist_index(1024), 1024);
	assert_int_equal(load_hist_index(1025), 1024);
	assert_int_equal(load_hist_index(1026), 1025);
	/* Beyond the range: the last bucket. */
	assert_int_equal(load_hist_index(1ULL << LOAD_HIST_MAX_BITS), LOAD_HIST_BUCKETS - 1);
	assert_int_equal(load_hist_index(UINT64_MAX), LOAD_HIST_BUCKETS - 1);
}

static void test_empty_histogram_reports_zero(void **state)
{
	struct load_hist *h = new_hist();

	(void)state;
	assert_int_equal(h->count, 0);
	assert_int_equal(load_hist_percentile(h, 50), 0);
	assert_int_equal(load_hist_percentile(h, 100), 0);
	assert_true(load_hist_mean(h) == 0.0);
	assert_true(load_hist_stddev(h) == 0.0);
	free(h);
}

static void test_constant_value_is_every_percentile(void **state)
{
	struct load_hist *h = new_hist();

	(void)state;
	load_hist_record_n(h, 123457, 1000);
	assert_int_equal(h->count, 1000);
	/* 123457 is inside a wider bucket: clamped to [min, max], so exact. */
	assert_int_equal(load_hist_percentile(h, 0), 123457);
	assert_int_equal(load_hist_percentile(h, 50), 123457);
	assert_int_equal(load_hist_percentile(h, 99.9), 123457);
	assert_int_equal(load_hist_percentile(h, 100), 123457);
	assert_true(fabs(load_hist_mean(h) - 123457.0) < 1e-6);
	assert_true(load_hist_stddev(h) < 1e-3);
	free(h);
}

static void test_small_values_are_exact(void **state)
{
	struct load_hist *h = new_hist();

	(void)state;
	/* 1..1000 once each: percentile p is exactly ceil(10 p). */
	for (uint64_t v = 1; v <= 1000; v++)
		load_hist_record(h, v);
	assert_int_equal(load_hist_percentile(h, 50), 500);
	assert_int_equal(load_hist_percentile(h, 90), 900);
	assert_int_equal(load_hist_percentile(h, 99), 990);
	assert_int_equal(load_hist_percentile(h, 99.9), 999);
	assert_int_equal(load_hist_percentile(h, 100), 1000);
	assert_int_equal(load_hist_percentile(h, 0), 1);
	assert_true(fabs(load_hist_mean(h) - 500.5) < 1e-9);
	/* Population stddev of 1..n: sqrt((n^2 - 1) / 12). */
	assert_true(fabs(load_hist_stddev(h) - sqrt((1000.0 * 1000.0 - 1) / 12)) < 1e-6);
	free(h);
}

static void test_uniform_percentiles_within_precision(void **state)
{
	size_t n = 200000;
	uint64_t *v = malloc(n * sizeof(*v));

	(void)state;
	assert_non_null(v);
	for (size_t i = 0; i < n; i++)
		v[i] = 1 + rng() % 1000000; /* 1 µs .. 1 s */
	check_distribution(v, n);
	free(v);
}

static void test_exponential_percentiles_within_precision(void **state)
{
	size_t n = 200000;
	uint64_t *v = malloc(n * sizeof(*v));
	struct load_hist *h = new_hist();

	(void)state;
	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		v[i] = (uint64_t)(-log1p(-unit()) * 5000.0); /* mean 5 ms */
		load_hist_record(h, v[i]);
	}
	/* Against the distribution too: p50 = ln 2 x mean, p99 = ln 100 x mean. */
	assert_true(fabs((double)load_hist_percentile(h, 50) - 5000.0 * log(2.0)) < 100);
	assert_true(fabs((double)load_hist_percentile(h, 99) - 5000.0 * log(100.0)) < 700);
	assert_true(fabs(load_hist_mean(h) - 5000.0) < 100);
	assert_true(fabs(load_hist_stddev(h) - 5000.0) < 150);
	free(h);
	check_distribution(v, n);
	free(v);
}

static void test_bimodal_tail_is_found(void **state)
{
	size_t n = 100000;
	uint64_t *v = malloc(n * sizeof(*v));

	(void)state;
	assert_non_null(v);
	/* 99 % fast (about 50 µs), 1 % slow (about 20 ms): p99.9 is in the slow mode. */
	for (size_t i = 0; i < n; i++)
		v[i] = i % 100 == 99 ? 20000 + rng() % 1000 : 40 + rng() % 20;
	check_distribution(v, n);

	struct load_hist *h = new_hist();

	for (size_t i = 0; i < n; i++)
		load_hist_record(h, v[i]);
	assert_true(load_hist_percentile(h, 50) < 60);
	assert_true(load_hist_percentile(h, 98.9) < 60);
	assert_true(load_hist_percentile(h, 99.1) >= 20000);
	assert_true(load_hist_percentile(h, 99.9) >= 20000);
	free(h);
	free(v);
}

static void test_huge_values_share_the_last_bucket(void **state)
{
	struct load_hist *h = new_hist();
	uint64_t big = (1ULL << LOAD_HIST_MAX_BITS) + 12345;

	(void)state;
	load_hist_record(h, 10);
	load_hist_record(h, big);
	assert_int_equal(h->max, big);
	assert_int_equal(load_hist_percentile(h, 50), 10);
	assert_int_equal(load_hist_percentile(h, 100), big);
	free(h);
}

static void test_merge_equals_recording_everything(void **state)
{
	struct load_hist *a = new_hist(), *b = new_hist(), *all = new_hist();

	(void)state;
	for (int i = 0; i < 50000; i++) {
		uint64_t v = rng() % 300000;

		load_hist_record(i % 3 ? a : b, v);
		load_hist_record(all, v);
	}
	load_hist_merge(a, b);
	assert_int_equal(a->count, all->count);
	assert_int_equal(a->min, all->min);
	assert_int_equal(a->max, all->max);
	assert_memory_equal(a->buckets, all->buckets, sizeof(a->buckets));
	for (double p = 0; p <= 100; p += 0.5)
		assert_int_equal(load_hist_percentile(a, p), load_hist_percentile(all, p));
	free(a);
	free(b);
	free(all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buckets_tile_the_value_range),
	    cmocka_unit_test(test_empty_histogram_reports_zero),
	    cmocka_unit_test(test_constant_value_is_every_percentile),
	    cmocka_unit_test(test_small_values_are_exact),
	    cmocka_unit_test(test_uniform_percentiles_within_precision),
	    cmocka_unit_test(test_exponential_percentiles_within_precision),
	    cmocka_unit_test(test_bimodal_tail_is_found),
	    cmocka_unit_test(test_huge_values_share_the_last_bucket),
	    cmocka_unit_test(test_merge_equals_recording_everything),
	};

	return cmocka_run_group_tests_name("load_hist", tests, NULL, NULL);
}
