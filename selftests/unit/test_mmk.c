// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit tests of tools/cpn-sim/mmk.h, the M/M/k and M/M/1 reference math: Erlang C
 * against the textbook sum, the response-time ccdf against its closed forms,
 * quantiles against the ccdf, the mean against the integral of the ccdf.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <math.h>
#include <cmocka.h>

#include "mmk.h"

static void assert_close(double got, double want, double rel)
{
	double err = fabs(got - want) / (fabs(want) > 1e-300 ? fabs(want) : 1.0);

	if (!(err <= rel))
		fail_msg("got %.15g, want %.15g (relative error %.3g > %.3g)", got, want, err, rel);
}

/* Erlang C from its definition: (a^k / k!) / (1 - rho) over
 * sum_{n<k} a^n / n! + (a^k / k!) / (1 - rho).
 */
static double erlang_c_sum(int k, double rho)
{
	double a = k * rho, term = 1.0, sum = 0.0, top;

	for (int n = 0; n < k; n++) {
		sum += term;
		term *= a / (n + 1);
	}
	top = term / (1.0 - rho);
	return top / (sum + top);
}

static void erlang_c_known_values(void **state)
{
	(void)state;
	/* k = 1: the probability of waiting is the utilisation. */
	assert_close(mmk_erlang_c(1, 0.3), 0.3, 1e-12);
	assert_close(mmk_erlang_c(1, 0.8), 0.8, 1e-12);
	/* k = 2, rho = 0.5: a = 1, B = 1/5, C = 1/3. */
	assert_close(mmk_erlang_c(2, 0.5), 1.0 / 3.0, 1e-12);
	/* k = 8, rho = 0.8: a = 6.4 Erlangs, C = 0.457645 (the sum above). */
	assert_close(mmk_erlang_c(8, 0.8), 0.4576449254, 1e-9);
	for (int k = 1; k <= 64; k *= 2)
		for (double rho = 0.05; rho < 1.0; rho += 0.1)
			assert_close(mmk_erlang_c(k, rho), erlang_c_sum(k, rho), 1e-10);
	/* Large k stays finite (no factorials): waiting becomes rare at rho 0.5. */
	assert_true(mmk_erlang_c(1000, 0.5) < 1e-10);
	assert_true(mmk_erlang_c(1000, 0.99) > 0.0 && mmk_erlang_c(1000, 0.99) < 1.0);
}

static void erlang_c_falls_with_k(void **state)
{
	(void)state;
	for (int k = 1; k < 100; k++)
		assert_true(mmk_erlang_c(k + 1, 0.8) < mmk_erlang_c(k, 0.8));
}

static void k1_is_mm1(void **state)
{
	(void)state;
	for (double rho = 0.1; rho < 0.95; rho += 0.1) {
		assert_close(mmk_resp_mean(1, rho, 2.0), mm1_resp_mean(rho, 2.0), 1e-12);
		for (double t = 0.5; t < 50; t *= 2)
			assert_close(mmk_resp_ccdf(1, rho, 2.0, t), mm1_resp_ccdf(rho, 2.0, t),
				     1e-10);
		assert_close(mmk_resp_quantile(1, rho, 2.0, 0.5), mm1_resp_quantile(rho, 2.0, 0.5),
			     1e-9);
		assert_close(mmk_resp_quantile(1, rho, 2.0, 0.99),
			     mm1_resp_quantile(rho, 2.0, 0.99), 1e-9);
	}
	/* M/M/1 rho = 0.8, mean 1: T ~ Exp(0.2), p99 = 5 ln 100. */
	assert_close(mm1_resp_quantile(0.8, 1.0, 0.99), 5.0 * log(100.0), 1e-12);
	assert_close(mm1_resp_mean(0.8, 2000.0), 10000.0, 1e-12);
}

/* The textbook form of the ccdf, valid away from theta = mu. */
static double ccdf_textbook(int k, double rho, double t)
{
	double mu = 1.0, theta = k * (1.0 - rho), c = mmk_erlang_c(k, rho);

	return (1 - c) * exp(-mu * t) +
	       c * (theta * exp(-mu * t) - mu * exp(-theta * t)) / (theta - mu);
}

static void ccdf_closed_forms(void **state)
{
	double c;

	(void)state;
	for (double t = 0.1; t < 40; t *= 1.7) {
		assert_close(mmk_resp_ccdf(8, 0.8, 1.0, t), ccdf_textbook(8, 0.8, t), 1e-9);
		assert_close(mmk_resp_ccdf(4, 0.3, 1.0, t), ccdf_textbook(4, 0.3, t), 1e-9);
		/* theta < mu: k (1 - rho) < 1. */
		assert_close(mmk_resp_ccdf(2, 0.9, 1.0, t), ccdf_textbook(2, 0.9, t), 1e-9);
	}
	/* theta == mu (k = 2, rho = 0.5): Exp(mu) + Exp(mu) is Erlang-2. */
	c = mmk_erlang_c(2, 0.5);
	for (double t = 0.1; t < 40; t *= 1.7) {
		double want = (1 - c) * exp(-t) + c * (1 + t) * exp(-t);

		assert_close(mmk_resp_ccdf(2, 0.5, 1.0, t), want, 1e-12);
		/* ... and the neighbourhood is continuous, no cancellation. */
		assert_close(mmk_resp_ccdf(2, 0.5 + 1e-12, 1.0, t), want, 1e-9);
		assert_close(mmk_resp_ccdf(2, 0.5 - 1e-12, 1.0, t), want, 1e-9);
	}
	assert_close(mmk_resp_ccdf(8, 0.8, 1.0, 0.0), 1.0, 0);
	/* Time scales with mean_svc. */
	assert_close(mmk_resp_ccdf(8, 0.8, 2000.0, 3000.0), mmk_resp_ccdf(8, 0.8, 1.0, 1.5), 1e-12);
	/* Waiting ccdf at 0 is Erlang C. */
	assert_close(mmk_wait_ccdf(8, 0.8, 1.0, 0.0), mmk_erlang_c(8, 0.8), 1e-12);
}

static void quantile_inverts_ccdf(void **state)
{
	static const double qs[] = {0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999};
	static const int ks[] = {1, 2, 8, 64, 1000};

	(void)state;
	for (unsigned i = 0; i < sizeof(ks) / sizeof(ks[0]); i++)
		for (double rho = 0.1; rho < 0.99; rho += 0.2)
			for (unsigned j = 0; j < sizeof(qs) / sizeof(qs[0]); j++) {
				double t = mmk_resp_quantile(ks[i], rho, 2000.0, qs[j]);

				assert_true(t > 0);
				assert_close(mmk_resp_ccdf(ks[i], rho, 2000.0, t), 1.0 - qs[j],
					     1e-7);
			}
}

static void quantile_monotone(void **state)
{
	(void)state;
	for (int k = 1; k <= 16; k *= 2) {
		double prev = 0;

		for (double q = 0.05; q < 0.9995; q += 0.01) {
			double t = mmk_resp_quantile(k, 0.8, 1.0, q);

			assert_true(t > prev);
			prev = t;
		}
		prev = 0;
		for (double rho = 0.05; rho < 0.99; rho += 0.05) {
			double t = mmk_resp_quantile(k, rho, 1.0, 0.99);

			assert_true(t > prev);
			prev = t;
		}
	}
	/* Pooling helps: one queue for 8 servers beats 8 separate queues. */
	assert_true(mmk_resp_quantile(8, 0.8, 1.0, 0.99) < mm1_resp_quantile(0.8, 1.0, 0.99));
	assert_true(mmk_resp_mean(8, 0.8, 1.0) < mm1_resp_mean(0.8, 1.0));
}

/* E[T] = integral of P(T > t) dt (Simpson's rule). */
static void mean_is_integral_of_ccdf(void **state)
{
	(void)state;
	for (int k = 1; k <= 16; k *= 2) {
		double h = 0.001, sum = 0, top = 400;
		int n = (int)(top / h);

		for (int i = 0; i <= n; i++) {
			double w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);

			sum += w * mmk_resp_ccdf(k, 0.8, 1.0, i * h);
		}
		assert_close(sum * h / 3, mmk_resp_mean(k, 0.8, 1.0), 1e-6);
	}
	/* k = 8, rho = 0.8: E[T] = 1 + C / (8 * 0.2). */
	assert_close(mmk_resp_mean(8, 0.8, 1.0), 1.0 + 0.4576449254 / 1.6, 1e-9);
}

static void bad_arguments_are_nan(void **state)
{
	(void)state;
	assert_true(isnan(mmk_erlang_c(0, 0.5)));
	assert_true(isnan(mmk_erlang_c(2, 1.0)));
	assert_true(isnan(mmk_erlang_c(2, 0.0)));
	assert_true(isnan(mmk_erlang_c(2, NAN)));
	assert_true(isnan(mmk_resp_ccdf(2, 0.5, 0.0, 1.0)));
	assert_true(isnan(mmk_resp_quantile(2, 0.5, 1.0, 1.0)));
	assert_true(isnan(mmk_resp_quantile(2, 0.5, 1.0, 0.0)));
	assert_true(isnan(mm1_resp_quantile(1.2, 1.0, 0.5)));
	assert_true(isnan(mm1_resp_mean(0.5, -1.0)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(erlang_c_known_values),
	    cmocka_unit_test(erlang_c_falls_with_k),
	    cmocka_unit_test(k1_is_mm1),
	    cmocka_unit_test(ccdf_closed_forms),
	    cmocka_unit_test(quantile_inverts_ccdf),
	    cmocka_unit_test(quantile_monotone),
	    cmocka_unit_test(mean_is_integral_of_ccdf),
	    cmocka_unit_test(bad_arguments_are_nan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
