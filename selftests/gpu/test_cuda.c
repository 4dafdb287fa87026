// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The CUDA backend (libcpn_cuda.so, loaded through cpn_backend_pick) against
 * the CPU backend: mlp outputs and vsearch scores within 1e-4 relative (to
 * the largest magnitude of the row), vsearch ids equal but for float
 * reorderings of near ties, ties to the lower id, k clamping and padding,
 * batch bounds, and instances in parallel threads on one model.
 *
 * TAP on stdout. Run by selftests/e2e/test_cuda.sh, which sets
 * CPN_EXPECT_GPU=1 when nvidia-smi lists a GPU: then a CUDA backend that
 * cannot be had is a failure; otherwise it is one skip that says why.
 *
 * Built with CPN_CUDA_EMU (build/selftests/unit/test_cuda_emu), the same tests
 * run, on smaller shapes, against backend_cuda.cu compiled for the CPU
 * emulation of CUDA in selftests/gpu/emu: every machine tests the backend's
 * host code and kernels, under the sanitizers.
 *
 * usage: test_cuda [--so-dir DIR]   (default: the build directory)
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpn_kernels.h"
#include "cpn_util.h"

#ifndef CPN_BUILD_DIR
#define CPN_BUILD_DIR "build"
#endif

/* Built against the CPU emulation of CUDA (selftests/gpu/emu): smaller shapes
 * that still take every path (chunks, tiles, passes), a fraction of the work. */
#ifdef CPN_CUDA_EMU
static const int quick = 1;
#else
static const int quick = 0;
#endif

static const struct cpn_backend_ops *cuda;
static const struct cpn_backend_ops *cpu = &cpn_backend_cpu;
static int test_failed, notes;

/* One diagnostic line (a TAP comment); the first few of a test only. */
static void failf(const char *fmt, ...)
{
	va_list ap;

	test_failed = 1;
	if (notes++ >= 8)
		return;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			failf(__VA_ARGS__);                                                        \
	} while (0)

static uint64_t rng_state = 0x13198a2e03707344ULL;

static uint64_t rng(void)
{
	return cpn_splitmix64(&rng_state);
}

static float *rand_floats(size_t n)
{
	float *p = malloc(n * sizeof(float));

	if (!p) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		p[i] = (float)((double)(rng() >> 40) / (double)(1 << 23) - 1.0);
	return p;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	return p;
}

static struct cpn_backend *open_or_fail(const struct cpn_backend_ops *ops, const struct cpn_mlp *m,
					const struct cpn_vtable *t, int max_batch)
{
	char err[512] = "";
	struct cpn_backend *b = ops->open(m, t, max_batch, err, sizeof(err));

	if (!b)
		failf("%s open(max_batch %d): %s", ops->name, max_batch, err);
	return b;
}

static void rows_close(const float *got, const float *ref, int rows, int n, const char *what)
{
	for (int r = 0; r < rows; r++) {
		double scale = 0;

		for (int j = 0; j < n; j++)
			scale = fmax(scale, fabs(ref[(size_t)r * n + j]));
		for (int j = 0; j < n; j++) {
			size_t i = (size_t)r * n + j;

			CHECK(fabs((double)got[i] - ref[i]) <= 1e-4 * scale + 1e-30,
			      "%s: row %d col %d: cuda %.9g, cpu %.9g", what, r, j, got[i], ref[i]);
		}
	}
}

static double dot_exact(const struct cpn_vtable *t, const float *q, uint32_t id)
{
	double acc = 0;

	for (int i = 0; i < t->dim; i++)
		acc += (double)q[i] * t->v[(size_t)id * t->dim + i];
	return acc;
}

/* ids as the CPU's, but where rounding can reorder a near tie (the exact
 * score of the id returned is then the CPU's score at that place). */
static void vsearch_close(const struct cpn_vtable *t, const float *q, int batch, int k,
			  const uint32_t *ids, const float *sc, const uint32_t *rids,
			  const float *rsc, const char *what)
{
	for (int b = 0; b < batch; b++) {
		const float *qq = q + (size_t)b * t->dim;
		double scale = 0;

		for (int j = 0; j < k; j++)
			if (isfinite(rsc[b * k + j]))
				scale = fmax(scale, fabs(rsc[b * k + j]));
		for (int j = 0; j < k; j++) {
			int i = b * k + j;

			if (ids[i] != rids[i])
				CHECK(ids[i] != UINT32_MAX && rids[i] != UINT32_MAX &&
					  ids[i] < (uint32_t)t->rows &&
					  fabs(dot_exact(t, qq, ids[i]) - rsc[i]) <=
					      1e-5 * (scale + 1e-30),
				      "%s: query %d place %d: cuda id %u (%.9g), cpu id %u (%.9g)",
				      what, b, j, ids[i], sc[i], rids[i], rsc[i]);
			if (rids[i] == UINT32_MAX)
				CHECK(isinf(sc[i]) && sc[i] < 0,
				      "%s: query %d place %d: padding score %g", what, b, j, sc[i]);
			else
				CHECK(fabs((double)sc[i] - rsc[i]) <= 1e-4 * scale + 1e-30,
				      "%s: query %d place %d: cuda score %.9g, cpu %.9g", what, b,
				      j, sc[i], rsc[i]);
			for (int j2 = 0; j2 < j && ids[i] != UINT32_MAX; j2++)
				CHECK(ids[b * k + j2] != ids[i], "%s: query %d: id %u twice", what,
				      b, ids[i]);
		}
	}
}

/* ---- tests ------------------------------------------------------------ */

static void mlp_shape(const int *dims, int n_layers, int max_batch, const int *batches, int nb)
{
	struct cpn_backend *g, *c;
	struct cpn_mlp m;
	int din = dims[0], dout = dims[n_layers];
	float *in, *out, *ref;
	char what[128];

	if (cpn_mlp_seeded(&m, dims, n_layers, 77)) {
		failf("cpn_mlp_seeded failed");
		return;
	}
	g = open_or_fail(cuda, &m, NULL, max_batch);
	c = open_or_fail(cpu, &m, NULL, max_batch);
	in = rand_floats((size_t)max_batch * din);
	out = xmalloc((size_t)max_batch * dout * sizeof(float));
	ref = xmalloc((size_t)max_batch * dout * sizeof(float));
	for (int i = 0; g && c && i < nb; i++) {
		int batch = batches[i];

		snprintf(what, sizeof(what), "mlp %d layers %d->%d batch %d", n_layers, din, dout,
			 batch);
		CHECK(cuda->mlp(g, in, batch, out) == 0, "%s: cuda mlp failed", what);
		CHECK(cpu->mlp(c, in, batch, ref) == 0, "%s: cpu mlp failed", what);
		rows_close(out, ref, batch, dout, what);
	}
	if (g)
		cuda->close(g);
	if (c)
		cpu->close(c);
	free(in);
	free(out);
	free(ref);
	cpn_mlp_free(&m);
}

static void test_mlp(void)
{
	int all[64], some[] = {1, 2, 3, 7, 16, 31, 33, 64};
	int d1[] = {8, 4}, d2[] = {64, 128, 32, 10}, d3[] = {300, 257, 17};
	int d4[] = {5, 9, 1, 13, 6, 3, 11, 2, 4}, d5[] = {1, 1};
	int d6[] = {1024, 4096, 4096, 1024};

	for (int i = 0; i < 64; i++)
		all[i] = i + 1;
	mlp_shape(d1, 1, 64, all, 64);
	mlp_shape(d2, 3, 64, quick ? some : all, quick ? 8 : 64);
	mlp_shape(d3, 2, 64, some, 8);
	mlp_shape(d4, 8, 64, some, 8);
	mlp_shape(d5, 1, 64, some, 8);
	if (quick)
		return;
	mlp_shape(d6, 3, 64, some, 8);
	mlp_shape(d2, 3, 1024, (int[]){1, 1000, 1024}, 3);
}

static void vs_shape(int rows, int dim, int max_batch, const int *batches, int nb, const int *ks,
		     int nk)
{
	struct cpn_backend *g, *c;
	struct cpn_vtable t;
	float *q, *sc, *rsc;
	uint32_t *ids, *rids;
	char what[128];

	if (cpn_vtable_seeded(&t, rows, dim, 5)) {
		failf("cpn_vtable_seeded failed");
		return;
	}
	g = open_or_fail(cuda, NULL, &t, max_batch);
	c = open_or_fail(cpu, NULL, &t, max_batch);
	q = rand_floats((size_t)max_batch * dim);
	sc = xmalloc((size_t)max_batch * CPN_VS_MAX_K * sizeof(float));
	rsc = xmalloc((size_t)max_batch * CPN_VS_MAX_K * sizeof(float));
	ids = xmalloc((size_t)max_batch * CPN_VS_MAX_K * sizeof(uint32_t));
	rids = xmalloc((size_t)max_batch * CPN_VS_MAX_K * sizeof(uint32_t));
	for (int ki = 0; g && c && ki < nk; ki++)
		for (int i = 0; i < nb; i++) {
			int batch = batches[i], k = ks[ki];
			int kc = k < 1 ? 1 : k > CPN_VS_MAX_K ? CPN_VS_MAX_K : k;

			snprintf(what, sizeof(what), "vsearch %dx%d batch %d k %d", rows, dim,
				 batch, k);
			CHECK(cuda->vsearch(g, q, batch, k, ids, sc) == 0, "%s: cuda failed", what);
			CHECK(cpu->vsearch(c, q, batch, k, rids, rsc) == 0, "%s: cpu failed", what);
			vsearch_close(&t, q, batch, kc, ids, sc, rids, rsc, what);
		}
	if (g)
		cuda->close(g);
	if (c)
		cpu->close(c);
	free(q);
	free(sc);
	free(rsc);
	free(ids);
	free(rids);
	cpn_vtable_free(&t);
}

static void test_vsearch(void)
{
	int all[64], some[] = {1, 2, 5, 17, 64};
	int ks[] = {1, 5, 10, 64};

	for (int i = 0; i < 64; i++)
		all[i] = i + 1;
	if (quick) { /* the emulation's tiles are of 1024 candidates, its chunks of 8192 scores */
		vs_shape(1000, 64, 64, some, 2, ks, 4);
		vs_shape(1024, 32, 8, (int[]){1, 3}, 2, (int[]){1, 64}, 2); /* one tile */
		vs_shape(1025, 32, 8, (int[]){1, 3}, 2, (int[]){1, 64}, 2); /* a second pass */
		vs_shape(5000, 16, 2, (int[]){1, 2}, 2, (int[]){5, 64}, 2); /* two chunks */
		vs_shape(20000, 4, 1, (int[]){1}, 1, (int[]){64}, 1);	    /* three passes */
		vs_shape(3, 4, 8, some, 2, ks, 4);
		vs_shape(1, 1, 4, some, 2, ks, 2);
		return;
	}
	vs_shape(1000, 64, 64, all, 64, (int[]){10}, 1);
	vs_shape(1000, 64, 64, some, 5, ks, 4);
	vs_shape(5000, 128, 64, some, 5, ks, 4);
	vs_shape(4096, 32, 8, some, 3, ks, 4);	   /* exactly one tile */
	vs_shape(4097, 32, 8, some, 3, ks, 4);	   /* one more row: a second pass */
	vs_shape(100000, 96, 64, some, 5, ks, 4);  /* 25 tiles */
	vs_shape(1 << 20, 64, 64, some, 5, ks, 4); /* table in chunks, three passes */
	vs_shape(300000, 16, 4096, (int[]){1, 4096}, 2, ks, 4);
	vs_shape(3, 4, 8, some, 2, ks, 4); /* k beyond the rows: padding */
	vs_shape(1, 1, 4, some, 2, ks, 2);
}

/* Equal scores (exact: small integers) come out in id order, also across
 * tiles and passes; k beyond the table pads with (UINT32_MAX, -inf). */
static void test_ties_and_k(void)
{
	const int rows = 10000, dim = 4;
	struct cpn_vtable t = {.rows = rows, .dim = dim, .v = xmalloc(rows * dim * sizeof(float))};
	float q[2 * 4] = {1, 1, 0, 0, 0, 0, 0, 0}, sc[2 * CPN_VS_MAX_K + 4];
	uint32_t ids[2 * CPN_VS_MAX_K + 4];
	struct cpn_backend *g;
	uint32_t want[CPN_VS_MAX_K];
	int nw = 0;

	/* every 401st row scores 2 (25 rows), every 89th other one 1, the rest
	 * 0: the best 64 are the 25, then the first 39 of the score-1 rows, in
	 * id order, spread over three tiles of 4096 */
	for (int r = 0; r < rows; r++) {
		float *x = t.v + r * dim;

		memset(x, 0, dim * sizeof(float));
		if (r % 401 == 0)
			x[0] = x[1] = 1;
		else if (r % 89 == 0)
			x[0] = 1;
		else
			x[3] = 1;
	}
	for (int pass = 0; pass < 2; pass++)
		for (int r = 0; r < rows && nw < CPN_VS_MAX_K; r++)
			if (pass == 0 ? r % 401 == 0 : r % 401 && r % 89 == 0)
				want[nw++] = (uint32_t)r;
	g = open_or_fail(cuda, NULL, &t, 2);
	if (!g)
		goto out;
	CHECK(cuda->vsearch(g, q, 2, CPN_VS_MAX_K, ids, sc) == 0, "vsearch failed");
	for (int j = 0; j < CPN_VS_MAX_K; j++)
		CHECK(ids[j] == want[j] && sc[j] == (j < 25 ? 2.0f : 1.0f),
		      "ties: place %d: id %u score %g, want id %u", j, ids[j], sc[j], want[j]);
	for (int j = 0; j < CPN_VS_MAX_K; j++) /* all scores 0: ids 0..63 */
		CHECK(ids[CPN_VS_MAX_K + j] == (uint32_t)j && sc[CPN_VS_MAX_K + j] == 0.0f,
		      "all-zero ties: place %d: id %u score %g", j, ids[CPN_VS_MAX_K + j],
		      sc[CPN_VS_MAX_K + j]);

	for (int i = 0; i < 2 * CPN_VS_MAX_K + 4; i++)
		ids[i] = 0xdeadbeef;
	CHECK(cuda->vsearch(g, q, 2, 1000, ids, sc) == 0, "vsearch k=1000 failed");
	CHECK(ids[2 * CPN_VS_MAX_K] == 0xdeadbeef, "k=1000 wrote beyond %d", CPN_VS_MAX_K);
	for (int i = 0; i < 2 * CPN_VS_MAX_K + 4; i++)
		ids[i] = 0xdeadbeef;
	CHECK(cuda->vsearch(g, q, 2, 0, ids, sc) == 0, "vsearch k=0 failed");
	CHECK(ids[0] == 0 && ids[1] == 0 && ids[2] == 0xdeadbeef,
	      "k=0: want one result per query (ids %u %u, then %#x)", ids[0], ids[1], ids[2]);
	cuda->close(g);

	t.rows = 3; /* asked for 5 of 3 rows */
	g = open_or_fail(cuda, NULL, &t, 1);
	if (!g)
		goto out;
	CHECK(cuda->vsearch(g, q, 1, 5, ids, sc) == 0, "vsearch failed");
	for (int j = 0; j < 5; j++)
		CHECK(j < 3 ? ids[j] == (uint32_t)(j == 0   ? 0
						   : j == 1 ? 1
							    : 2) &&
				  isfinite(sc[j])
			    : ids[j] == UINT32_MAX && isinf(sc[j]) && sc[j] < 0,
		      "k beyond rows: place %d: id %u score %g", j, ids[j], sc[j]);
	cuda->close(g);
out:
	free(t.v);
}

static void test_bounds_and_device(void)
{
	int dims[] = {4, 3};
	struct cpn_mlp m;
	struct cpn_vtable t;
	struct cpn_backend *g;
	float in[4 * 5] = {0}, out[3 * 5], sc[5];
	uint32_t ids[5];
	char err[256] = "";

	if (cpn_mlp_seeded(&m, dims, 1, 1) || cpn_vtable_seeded(&t, 10, 4, 1)) {
		failf("seeding failed");
		return;
	}
	CHECK(!cuda->open(&m, NULL, 0, err, sizeof(err)) && err[0], "max_batch 0 accepted");
	err[0] = 0;
	CHECK(!cuda->open(NULL, NULL, 4, err, sizeof(err)) && err[0], "no model accepted");
	g = open_or_fail(cuda, &m, &t, 4);
	if (g) {
		const char *d = cuda->device(g);

		printf("# device: %s\n", d ? d : "(null)");
		CHECK(d && *d && strcmp(d, "cuda"), "device() gives no GPU name");
		CHECK(cuda->mlp(g, in, 5, out) == -1, "batch beyond max_batch accepted");
		CHECK(cuda->mlp(g, in, -1, out) == -1, "batch -1 accepted");
		CHECK(cuda->mlp(g, in, 0, out) == 0, "batch 0 refused");
		CHECK(cuda->vsearch(g, in, 5, 1, ids, sc) == -1, "batch beyond max_batch accepted");
		CHECK(cuda->mlp(g, in, 4, out) == 0, "mlp on a two-model instance failed");
		CHECK(cuda->vsearch(g, in, 4, 1, ids, sc) == 0, "vsearch on it failed");
		cuda->close(g);
	}
	g = open_or_fail(cuda, &m, NULL, 4);
	if (g) {
		CHECK(cuda->vsearch(g, in, 1, 1, ids, sc) == -1,
		      "vsearch without a table accepted");
		cuda->close(g);
	}
	CHECK(strcmp(cuda->name, "cuda") == 0, "name is '%s'", cuda->name);
	cpn_mlp_free(&m);
	cpn_vtable_free(&t);
}

struct par_arg {
	struct cpn_backend *b;
	const float *in, *q;
	float *out, *sc;
	uint32_t *ids;
	int rc;
};

static void *par_run(void *p)
{
	struct par_arg *a = p;

	a->rc = 0;
	for (int it = 0; it < (quick ? 1 : 50) && !a->rc; it++)
		a->rc = cuda->mlp(a->b, a->in, 32, a->out) ||
			cuda->vsearch(a->b, a->q, 32, 10, a->ids, a->sc);
	return NULL;
}

/* cpn-worker's batch slots: instances on one model (one device copy, shared)
 * in parallel threads; closing some leaves the others working. */
static void test_parallel_instances(void)
{
	enum { N = 4 };
	int dims[] = {256, 1024, 64};
	struct cpn_mlp m;
	struct cpn_vtable t;
	struct cpn_backend *c;
	struct par_arg a[N];
	pthread_t th[N];
	float *in, *q, ref[32 * 64], rsc[32 * 10];
	uint32_t rids[32 * 10];

	if (cpn_mlp_seeded(&m, dims, 2, 3) || cpn_vtable_seeded(&t, quick ? 1000 : 50000, 64, 3)) {
		failf("seeding failed");
		return;
	}
	in = rand_floats(32 * 256);
	q = rand_floats(32 * 64);
	c = open_or_fail(cpu, &m, &t, 32);
	if (!c)
		return;
	cpu->mlp(c, in, 32, ref);
	cpu->vsearch(c, q, 32, 10, rids, rsc);
	cpu->close(c);
	for (int i = 0; i < N; i++) {
		a[i] = (struct par_arg){open_or_fail(cuda, &m, &t, 32),
					in,
					q,
					xmalloc(32 * 64 * sizeof(float)),
					xmalloc(32 * 10 * sizeof(float)),
					xmalloc(32 * 10 * sizeof(uint32_t)),
					-1};
		if (!a[i].b)
			return;
	}
	for (int round = 0; round < 2; round++) {
		int n = round == 0 ? N : N / 2; /* then with half of them closed */

		for (int i = 0; i < n; i++)
			pthread_create(&th[i], NULL, par_run, &a[i]);
		for (int i = 0; i < n; i++) {
			pthread_join(th[i], NULL);
			CHECK(a[i].rc == 0, "instance %d failed", i);
			rows_close(a[i].out, ref, 32, 64, "parallel mlp");
			vsearch_close(&t, q, 32, 10, a[i].ids, a[i].sc, rids, rsc,
				      "parallel vsearch");
		}
		for (int i = N / 2; round == 0 && i < N; i++) {
			cuda->close(a[i].b);
			a[i].b = NULL;
		}
	}
	for (int i = 0; i < N; i++) {
		if (a[i].b)
			cuda->close(a[i].b);
		free(a[i].out);
		free(a[i].sc);
		free(a[i].ids);
	}
	free(in);
	free(q);
	cpn_mlp_free(&m);
	cpn_vtable_free(&t);
}

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
    {"cuda_bounds_and_device_name", test_bounds_and_device},
    {"cuda_mlp_matches_cpu", test_mlp},
    {"cuda_vsearch_matches_cpu", test_vsearch},
    {"cuda_vsearch_ties_to_lower_id_and_k_clamping", test_ties_and_k},
    {"cuda_instances_in_parallel_threads", test_parallel_instances},
};

int main(int argc, char **argv)
{
	const char *so_dir = CPN_BUILD_DIR, *expect = getenv("CPN_EXPECT_GPU");
	int n = (int)(sizeof(tests) / sizeof(tests[0])), failed = 0;
	char err[1024] = "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (quick) /* a kernel whose threads part at a barrier hangs the emulation */
		alarm(300);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--so-dir") && i + 1 < argc) {
			so_dir = argv[++i];
		} else {
			fprintf(stderr, "usage: %s [--so-dir DIR]\n", argv[0]);
			return 2;
		}
	}
	cuda = cpn_backend_pick("cuda", so_dir, err, sizeof(err));
	if (!cuda) {
		printf("1..1\n");
		if (expect && !strcmp(expect, "1")) {
			printf("not ok 1 - cuda_backend_loads_where_a_gpu_is # %s\n", err);
			return 1;
		}
		printf("ok 1 # SKIP no GPU on this machine: %s\n", err);
		return 0;
	}
	printf("1..%d\n", n);
	for (int i = 0; i < n; i++) {
		uint64_t t0;

		test_failed = 0;
		notes = 0;
		t0 = cpn_now_ns();
		tests[i].fn();
		printf("# %s: %.2f s\n", tests[i].name, (double)(cpn_now_ns() - t0) * 1e-9);
		if (notes > 8)
			printf("# ... %d more\n", notes - 8);
		printf("%sok %d - %s\n", test_failed ? "not " : "", i + 1, tests[i].name);
		failed |= test_failed;
	}
	return failed;
}
