/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * M/M/k and M/M/1 reference math for the scheduling benchmarks: the
 * response-time distribution that cpn-sim is checked against and that the
 * load benchmarks quote as the ideal.
 *
 * Notation: k servers, each serving at rate mu = 1 / mean_svc, Poisson
 * arrivals at rate lambda, utilisation rho = lambda / (k mu) in (0, 1).
 * Times come out in the unit of mean_svc.
 *
 * M/M/k FCFS (one central queue feeding k servers):
 *   Erlang B by recursion, a = k rho offered Erlangs:
 *       B(0) = 1,  B(j) = a B(j-1) / (j + a B(j-1))
 *   Erlang C, the probability that a request waits:
 *       C(k, rho) = B(k) / (1 - rho (1 - B(k)))
 *   Wait W: P(W > t) = C exp(-theta t), theta = k mu - lambda = k mu (1 - rho).
 *   Response T = W + S, S ~ Exp(mu) independent of W:
 *       P(T > t) = (1 - C) e^(-mu t) + C P(Exp(theta) + Exp(mu) > t)
 *       P(Exp(theta) + Exp(mu) > t) = e^(-mu t) (1 + mu g(t)),
 *       g(t) = (1 - e^(-(theta - mu) t)) / (theta - mu), and g(t) = t when theta = mu
 *   which is the usual (theta e^(-mu t) - mu e^(-theta t)) / (theta - mu) written
 *   without its cancellation near theta = mu.
 *   E[T] = C / theta + 1 / mu.
 *
 * M/M/1 at the same rho: what random assignment to k queues gives (each
 * queue sees Poisson arrivals at lambda / k): T ~ Exp(mu (1 - rho)).
 *
 * Every function returns NAN for arguments out of range (k < 1, rho outside
 * (0, 1), mean_svc <= 0, q outside (0, 1)).
 */
#ifndef CPN_TOOLS_MMK_H
#define CPN_TOOLS_MMK_H

#include <math.h>

static inline int mmk_args_ok(int k, double rho, double mean_svc)
{
	return k >= 1 && rho > 0.0 && rho < 1.0 && mean_svc > 0.0 && isfinite(mean_svc);
}

/* Erlang B: probability that an arrival finds all k servers busy in
 * M/M/k/k with offered load a = k rho Erlangs.
 */
static inline double mmk_erlang_b(int k, double a)
{
	double b = 1.0;

	if (k < 0 || !(a >= 0.0))
		return NAN;
	for (int j = 1; j <= k; j++)
		b = a * b / ((double)j + a * b);
	return b;
}

/* Erlang C: probability of waiting in M/M/k, rho = lambda / (k mu). */
static inline double mmk_erlang_c(int k, double rho)
{
	double b;

	if (!mmk_args_ok(k, rho, 1.0))
		return NAN;
	b = mmk_erlang_b(k, (double)k * rho);
	return b / (1.0 - rho * (1.0 - b));
}

/* P(W > t) for the wait in queue. */
static inline double mmk_wait_ccdf(int k, double rho, double mean_svc, double t)
{
	double theta;

	if (!mmk_args_ok(k, rho, mean_svc))
		return NAN;
	if (t < 0.0)
		return 1.0;
	theta = (double)k * (1.0 - rho) / mean_svc;
	return mmk_erlang_c(k, rho) * exp(-theta * t);
}

/* P(T > t) for the response time T = W + S. */
static inline double mmk_resp_ccdf(int k, double rho, double mean_svc, double t)
{
	double mu, theta, d, c, g;

	if (!mmk_args_ok(k, rho, mean_svc))
		return NAN;
	if (t <= 0.0)
		return 1.0;
	mu = 1.0 / mean_svc;
	theta = (double)k * mu * (1.0 - rho);
	d = theta - mu;
	c = mmk_erlang_c(k, rho);
	/* g = (1 - e^(-d t)) / d, its limit t at d = 0; stable for either sign. */
	g = d == 0.0 ? t : -expm1(-d * t) / d;
	return exp(-mu * t) * ((1.0 - c) + c * (1.0 + mu * g));
}

/* E[T] for M/M/k. */
static inline double mmk_resp_mean(int k, double rho, double mean_svc)
{
	double theta;

	if (!mmk_args_ok(k, rho, mean_svc))
		return NAN;
	theta = (double)k * (1.0 - rho) / mean_svc;
	return mmk_erlang_c(k, rho) / theta + mean_svc;
}

/* The q-quantile of T for M/M/k: the t with P(T > t) = 1 - q, by bisection
 * (the ccdf falls strictly from 1 at t = 0).
 */
static inline double mmk_resp_quantile(int k, double rho, double mean_svc, double q)
{
	double lo = 0.0, hi = mean_svc, target = 1.0 - q;

	if (!mmk_args_ok(k, rho, mean_svc) || !(q > 0.0 && q < 1.0))
		return NAN;
	for (int i = 0; i < 2000 && mmk_resp_ccdf(k, rho, mean_svc, hi) > target; i++) {
		lo = hi;
		hi *= 2.0;
	}
	for (int i = 0; i < 200 && hi - lo > 1e-13 * hi; i++) {
		double mid = 0.5 * (lo + hi);

		if (mmk_resp_ccdf(k, rho, mean_svc, mid) > target)
			lo = mid;
		else
			hi = mid;
	}
	return 0.5 * (lo + hi);
}

/* ---- M/M/1 (random assignment to k queues at the same rho) ------------- */

static inline double mm1_resp_ccdf(double rho, double mean_svc, double t)
{
	if (!mmk_args_ok(1, rho, mean_svc))
		return NAN;
	if (t <= 0.0)
		return 1.0;
	return exp(-t * (1.0 - rho) / mean_svc);
}

static inline double mm1_resp_mean(double rho, double mean_svc)
{
	if (!mmk_args_ok(1, rho, mean_svc))
		return NAN;
	return mean_svc / (1.0 - rho);
}

static inline double mm1_resp_quantile(double rho, double mean_svc, double q)
{
	if (!mmk_args_ok(1, rho, mean_svc) || !(q > 0.0 && q < 1.0))
		return NAN;
	return -log1p(-q) * mean_svc / (1.0 - rho);
}

#endif /* CPN_TOOLS_MMK_H */
