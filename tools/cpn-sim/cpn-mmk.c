// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-mmk: response-time quantiles of M/M/k (one central FCFS queue, the
 * ideal a router fleet approaches) and of M/M/1 at the same utilisation
 * (random assignment), from tools/cpn-sim/mmk.h.
 *
 *   cpn-mmk --k 8 --rho 0.8 --mean 2000 [--q 0.5,0.99,0.999] [--json]
 *
 * Times are in the unit of --mean. Bad arguments: usage on stderr, exit 2.
 */
#include <errno.h>
#include <float.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmk.h"
#include "cpn_util.h"

#define MAX_Q 32

static void usage(FILE *f)
{
	fprintf(f, "usage: cpn-mmk --k K --rho RHO --mean MEAN [--q Q1,Q2,...] [--json]\n"
		   "  --k K        servers (>= 1)\n"
		   "  --rho RHO    utilisation lambda / (k mu), 0 < RHO < 1\n"
		   "  --mean MEAN  mean service time (> 0); quantiles come out in its unit\n"
		   "  --q LIST     quantiles, each in (0, 1) (default 0.5,0.99,0.999)\n"
		   "  --json       one JSON object instead of a table\n");
}

static int parse_qs(const char *s, double *qs, int *n)
{
	char buf[512], *save = NULL, *tok;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	*n = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n >= MAX_Q || cpn_parse_double(tok, -DBL_MAX, DBL_MAX, &qs[*n]) ||
		    !(qs[*n] > 0 && qs[*n] < 1))
			return -1;
		(*n)++;
	}
	return *n ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"k", required_argument, 0, 'k'},
	    {"rho", required_argument, 0, 'r'},
	    {"mean", required_argument, 0, 'm'},
	    {"q", required_argument, 0, 'q'},
	    {"json", no_argument, 0, 'j'},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	double qs[MAX_Q] = {0.5, 0.99, 0.999}, rho = -1, mean = -1, kd = -1;
	int nq = 3, json = 0, c, k;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (cpn_parse_double(optarg, -DBL_MAX, DBL_MAX, &kd))
				kd = -1;
			break;
		case 'r':
			if (cpn_parse_double(optarg, -DBL_MAX, DBL_MAX, &rho))
				rho = -1;
			break;
		case 'm':
			if (cpn_parse_double(optarg, -DBL_MAX, DBL_MAX, &mean))
				mean = -1;
			break;
		case 'q':
			if (parse_qs(optarg, qs, &nq)) {
				usage(stderr);
				return 2;
			}
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || kd < 1 || kd > 100000 || kd != floor(kd) || !(rho > 0 && rho < 1) ||
	    !(mean > 0)) {
		usage(stderr);
		return 2;
	}
	k = (int)kd;

	if (json) {
		printf("{\"k\": %d, \"rho\": %.6g, \"mean\": %.9g, \"erlang_c\": %.9g, "
		       "\"mmk_mean\": %.9g, \"mm1_mean\": %.9g, \"quantiles\": [",
		       k, rho, mean, mmk_erlang_c(k, rho), mmk_resp_mean(k, rho, mean),
		       mm1_resp_mean(rho, mean));
		for (int i = 0; i < nq; i++)
			printf("%s{\"q\": %.9g, \"mmk\": %.9g, \"mm1\": %.9g}", i ? ", " : "",
			       qs[i], mmk_resp_quantile(k, rho, mean, qs[i]),
			       mm1_resp_quantile(rho, mean, qs[i]));
		printf("]}\n");
		return 0;
	}
	printf("k=%d rho=%g mean=%g  Erlang C (P wait) = %.6f\n", k, rho, mean,
	       mmk_erlang_c(k, rho));
	printf("%-10s %16s %16s\n", "", "M/M/k", "M/M/1");
	printf("%-10s %16.6g %16.6g\n", "mean", mmk_resp_mean(k, rho, mean),
	       mm1_resp_mean(rho, mean));
	for (int i = 0; i < nq; i++) {
		char name[32];

		snprintf(name, sizeof(name), "p%g", qs[i] * 100);
		printf("%-10s %16.6g %16.6g\n", name, mmk_resp_quantile(k, rho, mean, qs[i]),
		       mm1_resp_quantile(rho, mean, qs[i]));
	}
	return 0;
}
