// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit tests of cpn-worker's kernels (gpu/cpn_kernels.h): seeded models, the
 * model files, the CPU backend against the reference implementations, and
 * backend choice. The CUDA backend is tested against the CPU backend by
 * selftests/gpu/test_cuda.c where a GPU exists.
 *
 * "Within 1e-4 relative" is measured against the largest magnitude of the
 * reference row (an output vector, or a query's scores): float32 GEMM error
 * scales with the row, not with an element that happens to be near zero.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "cpn_kernels.h"
#include "cpn_util.h"

#ifndef CPN_BUILD_DIR
#define CPN_BUILD_DIR "build"
#endif
#ifndef CPN_EMU_DIR /* libcpn_cuda.so on the CPU emulation of CUDA */
#define CPN_EMU_DIR CPN_BUILD_DIR "/selftests/gpu/emu"
#endif

/* ---- helpers ---------------------------------------------------------- */

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint64_t rng(void)
{
	return cpn_splitmix64(&rng_state);
}

/* uniform in [-1, 1) */
static float frand(void)
{
	return (float)((double)(rng() >> 40) / (double)(1 << 23) - 1.0);
}

static float *rand_floats(size_t n)
{
	float *p = malloc(n * sizeof(float));

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = frand();
	return p;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ULL

static uint64_t mlp_hash(const struct cpn_mlp *m)
{
	uint64_t h = FNV_INIT;

	for (int l = 0; l < m->n_layers; l++) {
		h = fnv1a(h, m->w[l], (size_t)m->dims[l] * m->dims[l + 1] * sizeof(float));
		h = fnv1a(h, m->b[l], (size_t)m->dims[l + 1] * sizeof(float));
	}
	return h;
}

static uint64_t file_hash(const char *path, long *size)
{
	unsigned char buf[4096];
	uint64_t h = FNV_INIT;
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	*size = 0;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		h = fnv1a(h, buf, n);
		*size += (long)n;
	}
	fclose(f);
	return h;
}

static char tmpdir[] = "/tmp/cpn-kernels.XXXXXX";

static const char *tmp_path(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static int setup_tmp(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void *read_file(const char *path, size_t *len)
{
	struct stat st;
	FILE *f = fopen(path, "rb");
	void *p;

	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	*len = (size_t)st.st_size;
	p = malloc(*len + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, *len, f), *len);
	fclose(f);
	return p;
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* got within 1e-4 of ref, relative to the largest |ref| of the row. */
static void assert_rows_close(const float *got, const float *ref, int rows, int n, const char *what)
{
	for (int r = 0; r < rows; r++) {
		double scale = 0;

		for (int j = 0; j < n; j++)
			scale = fmax(scale, fabs(ref[(size_t)r * n + j]));
		for (int j = 0; j < n; j++) {
			size_t i = (size_t)r * n + j;
			double d = fabs((double)got[i] - ref[i]);

			if (!(d <= 1e-4 * scale + 1e-30))
				fail_msg(
				    "%s: row %d col %d: got %.9g, reference %.9g (row scale %.3g)",
				    what, r, j, got[i], ref[i], scale);
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

/*
 * ids equal to the reference's and scores within 1e-4 relative; an id may
 * differ only where float rounding can reorder a near tie: the exact score of
 * the id returned is then that of the reference's id at that place (1e-5).
 */
static int assert_vsearch_close(const struct cpn_vtable *t, const float *q, int batch, int k,
				const uint32_t *ids, const float *sc, const uint32_t *rids,
				const float *rsc, const char *what)
{
	int swaps = 0;

	for (int b = 0; b < batch; b++) {
		const float *qq = q + (size_t)b * t->dim;
		double scale = 0;

		for (int j = 0; j < k; j++)
			if (isfinite(rsc[b * k + j]))
				scale = fmax(scale, fabs(rsc[b * k + j]));
		for (int j = 0; j < k; j++) {
			int i = b * k + j;

			if (ids[i] != rids[i]) {
				if (ids[i] == UINT32_MAX || rids[i] == UINT32_MAX ||
				    ids[i] >= (uint32_t)t->rows ||
				    fabs(dot_exact(t, qq, ids[i]) - rsc[i]) >
					1e-5 * (scale + 1e-30))
					fail_msg("%s: query %d place %d: id %u (score %.9g), "
						 "reference %u (%.9g)",
						 what, b, j, ids[i], sc[i], rids[i], rsc[i]);
				swaps++;
			}
			if (rids[i] == UINT32_MAX) {
				if (!(isinf(sc[i]) && sc[i] < 0))
					fail_msg("%s: query %d place %d: padding score %g", what, b,
						 j, sc[i]);
			} else if (!(fabs((double)sc[i] - rsc[i]) <= 1e-4 * scale + 1e-30)) {
				fail_msg("%s: query %d place %d: score %.9g, reference %.9g", what,
					 b, j, sc[i], rsc[i]);
			}
		}
	}
	return swaps;
}

/* ---- seeded models ---------------------------------------------------- */

static void test_mlp_seeded_deterministic(void **state)
{
	int dims[] = {16, 32, 8};
	struct cpn_mlp a, b, c;

	(void)state;
	assert_int_equal(cpn_mlp_seeded(&a, dims, 2, 42), 0);
	assert_int_equal(cpn_mlp_seeded(&b, dims, 2, 42), 0);
	assert_int_equal(cpn_mlp_seeded(&c, dims, 2, 43), 0);
	assert_int_equal(a.n_layers, 2);
	assert_memory_equal(a.dims, dims, sizeof(dims));
	for (int l = 0; l < 2; l++) {
		double s = 1.0 / sqrt(dims[l]);

		assert_memory_equal(a.w[l], b.w[l], (size_t)dims[l] * dims[l + 1] * sizeof(float));
		assert_memory_equal(a.b[l], b.b[l], (size_t)dims[l + 1] * sizeof(float));
		for (int i = 0; i < dims[l] * dims[l + 1]; i++)
			assert_true(a.w[l][i] >= -s && a.w[l][i] <= s);
		for (int i = 0; i < dims[l + 1]; i++)
			assert_true(a.b[l][i] >= -0.01f && a.b[l][i] <= 0.01f);
	}
	assert_true(mlp_hash(&a) == mlp_hash(&b));
	assert_true(mlp_hash(&a) != mlp_hash(&c));
	cpn_mlp_free(&a);
	cpn_mlp_free(&b);
	cpn_mlp_free(&c);
}

/* The generator is the documented one: splitmix64 from the seed, the draw's
 * top 53 bits mapped onto [-s, s), weights of layer 0 first. */
static void test_mlp_seeded_is_splitmix64(void **state)
{
	int dims[] = {4, 3};
	struct cpn_mlp m;
	uint64_t st = 0;
	float want[15];

	(void)state;
	for (int i = 0; i < 15; i++) {
		uint64_t z = cpn_splitmix64(&st);
		double s = i < 12 ? 0.5 : 0.01;

		if (i == 0) /* splitmix64's published first output for seed 0 */
			assert_true(z == 0xe220a8397b1dcdafULL);
		want[i] = (float)(s * ((double)((int64_t)(z >> 11) - (1LL << 52)) * 0x1p-52));
	}
	assert_int_equal(cpn_mlp_seeded(&m, dims, 1, 0), 0);
	assert_memory_equal(m.w[0], want, 12 * sizeof(float));
	assert_memory_equal(m.b[0], want + 12, 3 * sizeof(float));
	cpn_mlp_free(&m);
}

/* Pinned: a change in the generator (or in the file format) changes these. */
static void test_seeded_pinned_checksums(void **state)
{
	int dims[] = {64, 128, 32, 10};
	struct cpn_mlp m;
	struct cpn_vtable t;
	long size;
	uint64_t h;

	(void)state;
	assert_int_equal(cpn_mlp_seeded(&m, dims, 3, 42), 0);
	h = mlp_hash(&m);
	if (h != 0xddbdc90617698934ULL)
		fail_msg("mlp seed 42 weights: fnv1a %#018llx", (unsigned long long)h);
	assert_int_equal(cpn_mlp_save(tmp_path("pin.mlp"), &m), 0);
	h = file_hash(tmp_path("pin.mlp"), &size);
	assert_int_equal(size, 8 + 4 + 4 * 4 + 4 * (64 * 128 + 128 + 128 * 32 + 32 + 32 * 10 + 10));
	if (h != 0xc39cc53bc639f324ULL)
		fail_msg("mlp seed 42 file: fnv1a %#018llx", (unsigned long long)h);
	cpn_mlp_free(&m);

	assert_int_equal(cpn_vtable_seeded(&t, 1000, 64, 7), 0);
	h = fnv1a(FNV_INIT, t.v, (size_t)1000 * 64 * sizeof(float));
	if (h != 0x86c684d61a1bf424ULL)
		fail_msg("vtable seed 7 rows: fnv1a %#018llx", (unsigned long long)h);
	assert_int_equal(cpn_vtable_save(tmp_path("pin.vec"), &t), 0);
	h = file_hash(tmp_path("pin.vec"), &size);
	assert_int_equal(size, 8 + 8 + 4 * 1000 * 64);
	if (h != 0x7c76ca9649c903d5ULL)
		fail_msg("vtable seed 7 file: fnv1a %#018llx", (unsigned long long)h);
	cpn_vtable_free(&t);
}

static void test_vtable_seeded(void **state)
{
	struct cpn_vtable a, b, c;

	(void)state;
	assert_int_equal(cpn_vtable_seeded(&a, 300, 33, 9), 0);
	assert_int_equal(cpn_vtable_seeded(&b, 300, 33, 9), 0);
	assert_int_equal(cpn_vtable_seeded(&c, 300, 33, 10), 0);
	assert_int_equal(a.rows, 300);
	assert_int_equal(a.dim, 33);
	assert_memory_equal(a.v, b.v, 300 * 33 * sizeof(float));
	assert_true(memcmp(a.v, c.v, 300 * 33 * sizeof(float)) != 0);
	for (int r = 0; r < 300; r++) {
		double ss = 0;

		for (int i = 0; i < 33; i++)
			ss += (double)a.v[r * 33 + i] * a.v[r * 33 + i];
		assert_true(fabs(sqrt(ss) - 1.0) < 1e-6);
	}
	cpn_vtable_free(&a);
	cpn_vtable_free(&b);
	cpn_vtable_free(&c);
}

static void test_seeded_rejects_bad_dims(void **state)
{
	int ok[] = {4, 4, 4, 4, 4, 4, 4, 4, 4, 4};
	int zero[] = {4, 0, 4};
	int big[] = {4, 1 << 20, 4};
	int huge[] = {1 << 16, 1 << 16}; /* 2^32 weights */
	struct cpn_mlp m;
	struct cpn_vtable t;

	(void)state;
	errno = 0;
	assert_int_equal(cpn_mlp_seeded(&m, ok, 0, 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cpn_mlp_seeded(&m, ok, CPN_MLP_MAX_LAYERS + 1, 1), -1);
	assert_int_equal(cpn_mlp_seeded(&m, zero, 2, 1), -1);
	assert_int_equal(cpn_mlp_seeded(&m, big, 2, 1), -1);
	assert_int_equal(cpn_mlp_seeded(&m, huge, 1, 1), -1);
	assert_null(m.w[0]);
	cpn_mlp_free(&m); /* safe after a failure */
	assert_int_equal(cpn_mlp_seeded(&m, ok, CPN_MLP_MAX_LAYERS, 1), 0);
	cpn_mlp_free(&m);
	cpn_mlp_free(&m); /* and twice */

	assert_int_equal(cpn_vtable_seeded(&t, 0, 4, 1), -1);
	assert_int_equal(cpn_vtable_seeded(&t, 4, 0, 1), -1);
	assert_int_equal(cpn_vtable_seeded(&t, 1 << 25, 4, 1), -1);
	assert_int_equal(cpn_vtable_seeded(&t, 1 << 20, 1 << 10, 1), -1);
	assert_null(t.v);
	cpn_vtable_free(&t);
}

/* ---- files ------------------------------------------------------------ */

static void test_mlp_save_load_roundtrip(void **state)
{
	int dims[] = {7, 5, 3};
	struct cpn_mlp a, b;
	unsigned char *p;
	size_t len;

	(void)state;
	assert_int_equal(cpn_mlp_seeded(&a, dims, 2, 5), 0);
	assert_int_equal(cpn_mlp_save(tmp_path("a.mlp"), &a), 0);
	assert_int_equal(cpn_mlp_load(tmp_path("a.mlp"), &b), 0);
	assert_int_equal(b.n_layers, 2);
	assert_memory_equal(b.dims, dims, sizeof(dims));
	assert_true(mlp_hash(&a) == mlp_hash(&b));

	/* the bytes are the documented layout */
	p = read_file(tmp_path("a.mlp"), &len);
	assert_int_equal(len, 8 + 4 + 12 + 4 * (35 + 5 + 15 + 3));
	assert_memory_equal(p, "CPNMLP1\n", 8);
	assert_memory_equal(p + 8, "\x02\0\0\0\x07\0\0\0\x05\0\0\0\x03\0\0\0", 16);
	assert_memory_equal(p + 24, a.w[0], 35 * 4);
	assert_memory_equal(p + 24 + 35 * 4, a.b[0], 5 * 4);
	assert_memory_equal(p + 24 + 40 * 4, a.w[1], 15 * 4);
	assert_memory_equal(p + 24 + 55 * 4, a.b[1], 3 * 4);
	free(p);
	cpn_mlp_free(&a);
	cpn_mlp_free(&b);
}

static void test_vtable_save_load_roundtrip(void **state)
{
	struct cpn_vtable a, b;
	unsigned char *p;
	size_t len;

	(void)state;
	assert_int_equal(cpn_vtable_seeded(&a, 17, 6, 11), 0);
	assert_int_equal(cpn_vtable_save(tmp_path("a.vec"), &a), 0);
	assert_int_equal(cpn_vtable_load(tmp_path("a.vec"), &b), 0);
	assert_int_equal(b.rows, 17);
	assert_int_equal(b.dim, 6);
	assert_memory_equal(a.v, b.v, 17 * 6 * sizeof(float));
	p = read_file(tmp_path("a.vec"), &len);
	assert_int_equal(len, 16 + 17 * 6 * 4);
	assert_memory_equal(p, "CPNVEC1\n\x11\0\0\0\x06\0\0\0", 16);
	free(p);
	cpn_vtable_free(&a);
	cpn_vtable_free(&b);
}

static void expect_mlp_rejected(const void *p, size_t len, const char *what)
{
	struct cpn_mlp m;

	write_file(tmp_path("bad.mlp"), p, len);
	memset(&m, 0x5a, sizeof(m));
	errno = 0;
	if (cpn_mlp_load(tmp_path("bad.mlp"), &m) != -1)
		fail_msg("mlp file accepted: %s", what);
	if (errno != EINVAL)
		fail_msg("mlp file %s: errno %d, want EINVAL", what, errno);
	assert_int_equal(m.n_layers, 0);
	assert_null(m.w[0]);
	cpn_mlp_free(&m);
}

static void expect_vtable_rejected(const void *p, size_t len, const char *what)
{
	struct cpn_vtable t;

	write_file(tmp_path("bad.vec"), p, len);
	memset(&t, 0x5a, sizeof(t));
	errno = 0;
	if (cpn_vtable_load(tmp_path("bad.vec"), &t) != -1)
		fail_msg("vector file accepted: %s", what);
	if (errno != EINVAL)
		fail_msg("vector file %s: errno %d, want EINVAL", what, errno);
	assert_null(t.v);
	cpn_vtable_free(&t);
}

static void test_mlp_bad_files(void **state)
{
	int dims[] = {7, 5, 3};
	struct cpn_mlp a;
	unsigned char *p, hdr[64];
	size_t len;

	(void)state;
	assert_int_equal(cpn_mlp_seeded(&a, dims, 2, 5), 0);
	assert_int_equal(cpn_mlp_save(tmp_path("a.mlp"), &a), 0);
	cpn_mlp_free(&a);
	p = read_file(tmp_path("a.mlp"), &len);

	/* truncated anywhere: in the magic, the header, the weights, the last bias */
	for (size_t cut = 0; cut < len; cut += (cut < 32 ? 1 : 37))
		expect_mlp_rejected(p, cut, "truncated");
	expect_mlp_rejected(p, len - 1, "one byte short");
	p[len] = 0;
	expect_mlp_rejected(p, len + 1, "a trailing byte");

	p[3] = 'X';
	expect_mlp_rejected(p, len, "bad magic");
	memcpy(p, "CPNMLP2\n", 8);
	expect_mlp_rejected(p, len, "another version");
	memcpy(p, "CPNVEC1\n", 8);
	expect_mlp_rejected(p, len, "a vector file's magic");
	free(p);

	/* absurd headers, each followed by plenty of bytes */
	memcpy(hdr, "CPNMLP1\n", 8);
	memset(hdr + 8, 0, sizeof(hdr) - 8);
	put32(hdr + 8, 0);
	expect_mlp_rejected(hdr, sizeof(hdr), "0 layers");
	put32(hdr + 8, CPN_MLP_MAX_LAYERS + 1);
	expect_mlp_rejected(hdr, sizeof(hdr), "too many layers");
	put32(hdr + 8, 0xffffffffu);
	expect_mlp_rejected(hdr, sizeof(hdr), "2^32-1 layers");
	put32(hdr + 8, 1);
	put32(hdr + 12, 4);
	put32(hdr + 16, 0);
	expect_mlp_rejected(hdr, sizeof(hdr), "a zero dimension");
	put32(hdr + 16, 0x80000000u);
	expect_mlp_rejected(hdr, sizeof(hdr), "a dimension of 2^31");
	put32(hdr + 12, 1u << 16);
	put32(hdr + 16, 1u << 16);
	expect_mlp_rejected(hdr, sizeof(hdr), "a 2^32-weight layer");
	put32(hdr + 12, 4);
	put32(hdr + 16, 4);
	expect_mlp_rejected(hdr, sizeof(hdr), "fewer bytes than the dimensions say");
}

static void test_vtable_bad_files(void **state)
{
	struct cpn_vtable t;
	unsigned char *p, hdr[64];
	size_t len;

	(void)state;
	assert_int_equal(cpn_vtable_seeded(&t, 9, 4, 5), 0);
	assert_int_equal(cpn_vtable_save(tmp_path("a.vec"), &t), 0);
	cpn_vtable_free(&t);
	p = read_file(tmp_path("a.vec"), &len);
	for (size_t cut = 0; cut < len; cut += (cut < 20 ? 1 : 13))
		expect_vtable_rejected(p, cut, "truncated");
	expect_vtable_rejected(p, len - 1, "one byte short");
	p[len] = 0;
	expect_vtable_rejected(p, len + 1, "a trailing byte");
	p[0] = 'c';
	expect_vtable_rejected(p, len, "bad magic");
	memcpy(p, "CPNMLP1\n", 8);
	expect_vtable_rejected(p, len, "an mlp file's magic");
	free(p);

	memcpy(hdr, "CPNVEC1\n", 8);
	memset(hdr + 8, 0, sizeof(hdr) - 8);
	put32(hdr + 8, 0);
	put32(hdr + 12, 4);
	expect_vtable_rejected(hdr, sizeof(hdr), "0 rows");
	put32(hdr + 8, 2);
	put32(hdr + 12, 0);
	expect_vtable_rejected(hdr, sizeof(hdr), "0 dimensions");
	put32(hdr + 8, 0xffffffffu);
	put32(hdr + 12, 0xffffffffu);
	expect_vtable_rejected(hdr, sizeof(hdr), "2^32-1 x 2^32-1");
	put32(hdr + 8, 1u << 24);
	put32(hdr + 12, 1u << 16);
	expect_vtable_rejected(hdr, sizeof(hdr), "a 2^40-float table");
	put32(hdr + 8, 100);
	put32(hdr + 12, 100);
	expect_vtable_rejected(hdr, sizeof(hdr), "fewer bytes than the dimensions say");
}

static void test_load_errors_from_the_system(void **state)
{
	struct cpn_mlp m;
	struct cpn_vtable t;
	int dims[] = {2, 2};

	(void)state;
	errno = 0;
	assert_int_equal(cpn_mlp_load(tmp_path("missing.mlp"), &m), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(cpn_vtable_load(tmp_path("missing.vec"), &t), -1);
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_int_equal(cpn_mlp_load(tmpdir, &m), -1); /* a directory */
	assert_int_not_equal(errno, 0);
	assert_int_equal(cpn_mlp_seeded(&m, dims, 1, 1), 0);
	assert_int_equal(cpn_mlp_save(tmp_path("no/such/dir.mlp"), &m), -1);
	cpn_mlp_free(&m);
}

/* ---- CPU backend against the reference -------------------------------- */

static void check_mlp_shape(const int *dims, int n_layers, int max_batch, const int *batches,
			    int nb)
{
	const struct cpn_backend_ops *ops = &cpn_backend_cpu;
	struct cpn_backend *b;
	struct cpn_mlp m;
	char err[256] = "", what[128];
	int din = dims[0], dout = dims[n_layers];
	float *in, *out, *ref;

	assert_int_equal(cpn_mlp_seeded(&m, dims, n_layers, 1234), 0);
	b = ops->open(&m, NULL, max_batch, err, sizeof(err));
	if (!b)
		fail_msg("open: %s", err);
	in = rand_floats((size_t)max_batch * din);
	out = malloc((size_t)(max_batch + 1) * dout * sizeof(float));
	ref = malloc((size_t)max_batch * dout * sizeof(float));
	assert_non_null(out);
	assert_non_null(ref);
	cpn_mlp_ref(&m, in, max_batch, ref); /* rows are independent */
	for (int i = 0; i < nb; i++) {
		int batch = batches[i];

		for (int j = 0; j < (max_batch + 1) * dout; j++)
			out[j] = 12345.0f;
		assert_int_equal(ops->mlp(b, in, batch, out), 0);
		snprintf(what, sizeof(what), "mlp %d layers %d->%d batch %d", n_layers, din, dout,
			 batch);
		assert_rows_close(out, ref, batch, dout, what);
		for (int j = batch * dout; j < (max_batch + 1) * dout; j++)
			assert_true(out[j] == 12345.0f); /* nothing written beyond the batch */
	}
	ops->close(b);
	free(in);
	free(out);
	free(ref);
	cpn_mlp_free(&m);
}

static void test_cpu_mlp_matches_reference(void **state)
{
	int all[64], some[] = {1, 2, 3, 7, 16, 31, 33, 64};
	int d1[] = {8, 4};
	int d2[] = {64, 128, 32, 10};
	int d3[] = {300, 257, 17};
	int d4[] = {5, 9, 1, 13, 6, 3, 11, 2, 4};
	int d5[] = {1, 1};

	(void)state;
	for (int i = 0; i < 64; i++)
		all[i] = i + 1;
	check_mlp_shape(d1, 1, 64, all, 64);
	check_mlp_shape(d2, 3, 64, all, 64);
	check_mlp_shape(d3, 2, 64, some, 8);
	check_mlp_shape(d4, 8, 64, some, 8);
	check_mlp_shape(d5, 1, 64, some, 8);
	check_mlp_shape(d2, 3, 1, all, 1);
}

/* ReLU between layers, not after the last: a hand-computed network. */
static void test_cpu_mlp_by_hand(void **state)
{
	float w0[] = {1, -1, 2, 1}; /* 2x2 */
	float b0[] = {0.5f, -10};
	float w1[] = {1, -2}; /* 2x1 */
	float b1[] = {-1};
	struct cpn_mlp m = {.n_layers = 2, .dims = {2, 2, 1}, .w = {w0, w1}, .b = {b0, b1}};
	float in[] = {1, 2, 3, -4}, out[2], ref[2];
	struct cpn_backend *b;

	(void)state;
	/* x = (1,2):  h = relu(1+4+.5, -1+2-10) = (5.5, 0);  y = 5.5 - 1 = 4.5
	 * x = (3,-4): h = relu(3-8+.5, -3-4-10) = (0, 0);    y = -1 (no ReLU) */
	b = cpn_backend_cpu.open(&m, NULL, 2, NULL, 0);
	assert_non_null(b);
	assert_int_equal(cpn_backend_cpu.mlp(b, in, 2, out), 0);
	cpn_mlp_ref(&m, in, 2, ref);
	assert_true(out[0] == 4.5f && out[1] == -1.0f);
	assert_true(ref[0] == 4.5f && ref[1] == -1.0f);
	cpn_backend_cpu.close(b);
}

static void check_vsearch_shape(int rows, int dim, int max_batch, const int *batches, int nb,
				const int *ks, int nk)
{
	const struct cpn_backend_ops *ops = &cpn_backend_cpu;
	struct cpn_backend *b;
	struct cpn_vtable t;
	char err[256] = "", what[128];
	float *q, *sc, *rsc;
	uint32_t *ids, *rids;
	int swaps = 0, nref = 0;

	assert_int_equal(cpn_vtable_seeded(&t, rows, dim, 99), 0);
	b = ops->open(NULL, &t, max_batch, err, sizeof(err));
	if (!b)
		fail_msg("open: %s", err);
	q = rand_floats((size_t)max_batch * dim);
	sc = malloc((size_t)max_batch * CPN_VS_MAX_K * sizeof(float));
	rsc = malloc((size_t)max_batch * CPN_VS_MAX_K * sizeof(float));
	ids = malloc((size_t)max_batch * CPN_VS_MAX_K * sizeof(uint32_t));
	rids = malloc((size_t)max_batch * CPN_VS_MAX_K * sizeof(uint32_t));
	assert_true(sc && rsc && ids && rids);
	for (int i = 0; i < nb; i++)
		nref = batches[i] > nref ? batches[i] : nref;
	for (int ki = 0; ki < nk; ki++) {
		int k = ks[ki];

		cpn_vsearch_ref(&t, q, nref, k, rids, rsc); /* queries are independent */
		for (int i = 0; i < nb; i++) {
			int batch = batches[i];

			assert_int_equal(ops->vsearch(b, q, batch, k, ids, sc), 0);
			snprintf(what, sizeof(what), "vsearch %dx%d batch %d k %d", rows, dim,
				 batch, k);
			swaps += assert_vsearch_close(&t, q, batch, k, ids, sc, rids, rsc, what);
		}
	}
	if (swaps)
		print_message("# vsearch %dx%d: %d near-tie swaps\n", rows, dim, swaps);
	ops->close(b);
	free(q);
	free(sc);
	free(rsc);
	free(ids);
	free(rids);
	cpn_vtable_free(&t);
}

static void test_cpu_vsearch_matches_reference(void **state)
{
	int all[64], some[] = {1, 2, 5, 17, 64};
	int ks[] = {1, 5, 10, 64};

	(void)state;
	for (int i = 0; i < 64; i++)
		all[i] = i + 1;
	check_vsearch_shape(1000, 64, 64, all, 64, (int[]){10}, 1);
	check_vsearch_shape(1000, 64, 64, some, 5, ks, 4);
	check_vsearch_shape(5000, 128, 64, some, 5, ks, 4);
	check_vsearch_shape(3, 4, 8, some, 2, ks, 4); /* k beyond the rows: padding */
	check_vsearch_shape(1, 1, 4, some, 2, ks, 2);
	check_vsearch_shape(777, 7, 16, some, 3, ks, 4);
	/* a max_batch large enough that the table is taken in many chunks */
	check_vsearch_shape(5000, 16, 4096, (int[]){1, 100}, 2, ks, 4);
}

/* Equal scores (exact: small integers) come out in id order. */
static void test_vsearch_ties_to_lower_id(void **state)
{
	float v[10 * 4] = {0};
	struct cpn_vtable t = {.rows = 10, .dim = 4, .v = v};
	float q[2 * 4] = {1, 1, 0, 0, /* second query: every score 0 */ 0, 0, 0, 0};
	uint32_t ids[2 * 8], rids[2 * 8];
	float sc[2 * 8], rsc[2 * 8];
	const uint32_t want[8] = {2, 5, 7, 0, 3, 1, 4, 8};
	const float want_sc[8] = {2, 2, 2, 1, 1, 0, 0, 0};
	struct cpn_backend *b;

	(void)state;
	for (int r = 0; r < 10; r++) {
		float *x = v + r * 4;

		if (r == 2 || r == 5 || r == 7)
			x[0] = x[1] = 1; /* score 2 */
		else if (r == 0 || r == 3)
			x[0] = 1; /* score 1 */
		else if (r == 6 || r == 9)
			x[0] = -1, x[3] = 1; /* score -1 */
		else
			x[3] = 1; /* score 0: 1, 4, 8 */
	}
	b = cpn_backend_cpu.open(NULL, &t, 2, NULL, 0);
	assert_non_null(b);
	assert_int_equal(cpn_backend_cpu.vsearch(b, q, 2, 8, ids, sc), 0);
	cpn_vsearch_ref(&t, q, 2, 8, rids, rsc);
	assert_memory_equal(ids, want, sizeof(want));
	assert_memory_equal(rids, want, sizeof(want));
	assert_memory_equal(sc, want_sc, sizeof(want_sc));
	assert_memory_equal(rsc, want_sc, sizeof(want_sc));
	for (uint32_t j = 0; j < 8; j++) { /* all zero: ids 0..7 */
		assert_int_equal(ids[8 + j], j);
		assert_int_equal(rids[8 + j], j);
	}
	cpn_backend_cpu.close(b);
}

/* k is clamped to 1..CPN_VS_MAX_K; slots beyond the table are padding. */
static void test_vsearch_k_clamping(void **state)
{
	struct cpn_vtable t;
	struct cpn_backend *b;
	float q[2 * 8], sc[2 * CPN_VS_MAX_K + 8], rsc[2 * CPN_VS_MAX_K + 8];
	uint32_t ids[2 * CPN_VS_MAX_K + 8], rids[2 * CPN_VS_MAX_K + 8];
	const int ks[] = {0, -5, 1, CPN_VS_MAX_K, CPN_VS_MAX_K + 1, 1000};
	const int want[] = {1, 1, 1, CPN_VS_MAX_K, CPN_VS_MAX_K, CPN_VS_MAX_K};

	(void)state;
	for (int i = 0; i < 16; i++)
		q[i] = frand();
	assert_int_equal(cpn_vtable_seeded(&t, 200, 8, 3), 0);
	b = cpn_backend_cpu.open(NULL, &t, 2, NULL, 0);
	assert_non_null(b);
	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		int n = 2 * want[i];

		for (int j = 0; j < 2 * CPN_VS_MAX_K + 8; j++) {
			ids[j] = rids[j] = 0xdeadbeef;
			sc[j] = rsc[j] = 777.0f;
		}
		assert_int_equal(cpn_backend_cpu.vsearch(b, q, 2, ks[i], ids, sc), 0);
		cpn_vsearch_ref(&t, q, 2, ks[i], rids, rsc);
		for (int j = 0; j < n; j++) {
			assert_true(ids[j] < 200);
			assert_true(rids[j] < 200);
		}
		for (int j = n; j < 2 * CPN_VS_MAX_K + 8; j++) { /* nothing beyond */
			assert_true(ids[j] == 0xdeadbeef && sc[j] == 777.0f);
			assert_true(rids[j] == 0xdeadbeef && rsc[j] == 777.0f);
		}
		assert_vsearch_close(&t, q, 2, want[i], ids, sc, rids, rsc, "k clamping");
		/* best first */
		for (int j = 1; j < want[i]; j++)
			assert_true(sc[j - 1] >= sc[j]);
	}
	cpn_backend_cpu.close(b);
	cpn_vtable_free(&t);

	/* a table of 3 rows asked for 5: 3 results, then (UINT32_MAX, -inf) */
	assert_int_equal(cpn_vtable_seeded(&t, 3, 8, 3), 0);
	b = cpn_backend_cpu.open(NULL, &t, 1, NULL, 0);
	assert_non_null(b);
	assert_int_equal(cpn_backend_cpu.vsearch(b, q, 1, 5, ids, sc), 0);
	cpn_vsearch_ref(&t, q, 1, 5, rids, rsc);
	for (int j = 0; j < 5; j++) {
		assert_true(j < 3 ? ids[j] < 3 : ids[j] == UINT32_MAX);
		assert_true(j < 3 ? isfinite(sc[j]) : isinf(sc[j]) && sc[j] < 0);
		assert_int_equal(ids[j], rids[j]);
	}
	cpn_backend_cpu.close(b);
	cpn_vtable_free(&t);
}

static void test_cpu_backend_bounds(void **state)
{
	int dims[] = {4, 3};
	struct cpn_mlp m;
	struct cpn_vtable t;
	struct cpn_backend *b;
	char err[128];
	float in[4 * 5] = {0}, out[3 * 5], sc[5];
	uint32_t ids[5];

	(void)state;
	assert_int_equal(cpn_mlp_seeded(&m, dims, 1, 1), 0);
	assert_int_equal(cpn_vtable_seeded(&t, 10, 4, 1), 0);

	err[0] = 0;
	assert_null(cpn_backend_cpu.open(&m, NULL, 0, err, sizeof(err)));
	assert_true(err[0] != 0);
	err[0] = 0;
	assert_null(cpn_backend_cpu.open(NULL, NULL, 4, err, sizeof(err)));
	assert_true(err[0] != 0);

	b = cpn_backend_cpu.open(&m, NULL, 4, err, sizeof(err));
	assert_non_null(b);
	assert_string_equal(cpn_backend_cpu.name, "cpu");
	assert_true(strncmp(cpn_backend_cpu.device(b), "cpu (openblas", 13) == 0);
	assert_int_equal(cpn_backend_cpu.mlp(b, in, 5, out), -1); /* beyond max_batch */
	assert_int_equal(cpn_backend_cpu.mlp(b, in, -1, out), -1);
	assert_int_equal(cpn_backend_cpu.mlp(b, in, 0, out), 0);
	assert_int_equal(cpn_backend_cpu.vsearch(b, in, 1, 1, ids, sc), -1); /* no table */
	cpn_backend_cpu.close(b);

	b = cpn_backend_cpu.open(NULL, &t, 4, err, sizeof(err));
	assert_non_null(b);
	assert_int_equal(cpn_backend_cpu.mlp(b, in, 1, out), -1); /* no mlp */
	assert_int_equal(cpn_backend_cpu.vsearch(b, in, 5, 1, ids, sc), -1);
	assert_int_equal(cpn_backend_cpu.vsearch(b, in, 0, 1, ids, sc), 0);
	cpn_backend_cpu.close(b);

	b = cpn_backend_cpu.open(&m, &t, 4, err, sizeof(err)); /* both */
	assert_non_null(b);
	assert_int_equal(cpn_backend_cpu.mlp(b, in, 4, out), 0);
	assert_int_equal(cpn_backend_cpu.vsearch(b, in, 4, 1, ids, sc), 0);
	cpn_backend_cpu.close(b);
	cpn_backend_cpu.close(NULL);
	cpn_mlp_free(&m);
	cpn_vtable_free(&t);
}

/* Instances used from parallel threads (cpn-worker's batch slots). */
struct par_arg {
	const struct cpn_mlp *m;
	const struct cpn_vtable *t;
	const float *in, *q;
	float *out, *sc;
	uint32_t *ids;
	int rc;
};

static void *par_run(void *p)
{
	struct par_arg *a = p;
	struct cpn_backend *b = cpn_backend_cpu.open(a->m, a->t, 32, NULL, 0);

	a->rc = -1;
	if (!b)
		return NULL;
	a->rc = 0;
	for (int it = 0; it < 20 && !a->rc; it++)
		a->rc = cpn_backend_cpu.mlp(b, a->in, 32, a->out) ||
			cpn_backend_cpu.vsearch(b, a->q, 32, 10, a->ids, a->sc);
	cpn_backend_cpu.close(b);
	return NULL;
}

static void test_cpu_instances_in_parallel(void **state)
{
	int dims[] = {96, 200, 40};
	struct cpn_mlp m;
	struct cpn_vtable t;
	pthread_t th[4];
	struct par_arg a[4];
	float *in, *q, *ref, *rsc;
	uint32_t *rids;

	(void)state;
	assert_int_equal(cpn_mlp_seeded(&m, dims, 2, 8), 0);
	assert_int_equal(cpn_vtable_seeded(&t, 3000, 48, 8), 0);
	in = rand_floats(32 * 96);
	q = rand_floats(32 * 48);
	ref = malloc(32 * 40 * sizeof(float));
	rsc = malloc(32 * 10 * sizeof(float));
	rids = malloc(32 * 10 * sizeof(uint32_t));
	assert_true(ref && rsc && rids);
	cpn_mlp_ref(&m, in, 32, ref);
	cpn_vsearch_ref(&t, q, 32, 10, rids, rsc);
	for (int i = 0; i < 4; i++) {
		a[i] = (struct par_arg){&m,
					&t,
					in,
					q,
					malloc(32 * 40 * sizeof(float)),
					malloc(32 * 10 * sizeof(float)),
					malloc(32 * 10 * sizeof(uint32_t)),
					-1};
		assert_true(a[i].out && a[i].sc && a[i].ids);
		assert_int_equal(pthread_create(&th[i], NULL, par_run, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(a[i].rc, 0);
		assert_rows_close(a[i].out, ref, 32, 40, "parallel mlp");
		assert_vsearch_close(&t, q, 32, 10, a[i].ids, a[i].sc, rids, rsc,
				     "parallel vsearch");
		free(a[i].out);
		free(a[i].sc);
		free(a[i].ids);
	}
	free(in);
	free(q);
	free(ref);
	free(rsc);
	free(rids);
	cpn_mlp_free(&m);
	cpn_vtable_free(&t);
}

/* ---- backend choice --------------------------------------------------- */

static void test_pick_cpu_and_unknown(void **state)
{
	char err[256];

	(void)state;
	strcpy(err, "stale");
	assert_ptr_equal(cpn_backend_pick("cpu", NULL, err, sizeof(err)), &cpn_backend_cpu);
	assert_string_equal(err, "");
	assert_null(cpn_backend_pick("tpu", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "tpu"));
	assert_ptr_equal(cpn_backend_pick("cpu", NULL, NULL, 0), &cpn_backend_cpu);
}

/* No libcpn_cuda.so where it is looked for: auto is the CPU, cuda says why. */
static void test_pick_without_the_library(void **state)
{
	const char *dirs[] = {tmpdir, NULL /* next to this test: build/selftests/unit */};
	char err[512];

	(void)state;
	for (int i = 0; i < 2; i++) {
		err[0] = 0;
		assert_ptr_equal(cpn_backend_pick("auto", dirs[i], err, sizeof(err)),
				 &cpn_backend_cpu);
		assert_non_null(strstr(err, "libcpn_cuda.so")); /* why, for a log line */
		assert_ptr_equal(cpn_backend_pick(NULL, dirs[i], NULL, 0), &cpn_backend_cpu);
		err[0] = 0;
		assert_null(cpn_backend_pick("cuda", dirs[i], err, sizeof(err)));
		assert_non_null(strstr(err, "libcpn_cuda.so"));
		assert_non_null(strstr(err, "cuda"));
	}
	/* a file of that name that is no shared object */
	write_file(tmp_path("libcpn_cuda.so"), "not an ELF file", 15);
	err[0] = 0;
	assert_ptr_equal(cpn_backend_pick("auto", tmpdir, err, sizeof(err)), &cpn_backend_cpu);
	assert_true(err[0] != 0);
	err[0] = 0;
	assert_null(cpn_backend_pick("cuda", tmpdir, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot load"));
	unlink(tmp_path("libcpn_cuda.so"));
}

/* The library built here ($(BUILD)/libcpn_cuda.so, where nvcc is): "auto" is
 * CUDA exactly when "cuda" can be had; on a machine without a GPU, "cuda"
 * fails with a reason and "auto" is the CPU. */
static void test_pick_with_the_built_library(void **state)
{
	const struct cpn_backend_ops *cuda, *aut;
	char path[512], err[512] = "", err2[512] = "";

	(void)state;
	snprintf(path, sizeof(path), "%s/libcpn_cuda.so", CPN_BUILD_DIR);
	if (access(path, F_OK)) {
		skip(); /* nvcc absent: nothing built to load */
		return;
	}
	cuda = cpn_backend_pick("cuda", CPN_BUILD_DIR, err, sizeof(err));
	aut = cpn_backend_pick("auto", CPN_BUILD_DIR, err2, sizeof(err2));
	if (cuda) {
		assert_string_equal(cuda->name, "cuda");
		assert_ptr_equal(aut, cuda);
		assert_string_equal(err, "");
		print_message("# GPU found: the CUDA backend loads\n");
	} else {
		print_message("# cuda: %s\n", err);
		assert_true(err[0] != 0);
		assert_non_null(strstr(err, "cuda backend: "));
		assert_ptr_equal(aut, &cpn_backend_cpu);
		assert_true(err2[0] != 0);
	}
}

/* The CUDA backend on its CPU emulation (selftests/gpu/emu): where a GPU is,
 * "auto" and "cuda" load it; where none is (CPN_EMU_NO_DEVICE=1), "auto" is
 * the CPU and "cuda" fails, saying that there is no device. */
static void test_pick_emulated_cuda(void **state)
{
	char path[512], err[512];
	const struct cpn_backend_ops *ops;

	(void)state;
	snprintf(path, sizeof(path), "%s/libcpn_cuda.so", CPN_EMU_DIR);
	if (access(path, F_OK))
		fail_msg("%s is missing (make all)", path);
	assert_int_equal(setenv("CPN_EMU_NO_DEVICE", "1", 1), 0);
	err[0] = 0;
	assert_ptr_equal(cpn_backend_pick("auto", CPN_EMU_DIR, err, sizeof(err)), &cpn_backend_cpu);
	assert_non_null(strstr(err, "no CUDA device"));
	err[0] = 0;
	assert_null(cpn_backend_pick("cuda", CPN_EMU_DIR, err, sizeof(err)));
	assert_non_null(strstr(err, "cuda backend: no CUDA device"));

	assert_int_equal(unsetenv("CPN_EMU_NO_DEVICE"), 0);
	strcpy(err, "stale");
	ops = cpn_backend_pick("auto", CPN_EMU_DIR, err, sizeof(err));
	assert_non_null(ops);
	assert_string_equal(ops->name, "cuda");
	assert_string_equal(err, "");
	assert_ptr_equal(cpn_backend_pick("cuda", CPN_EMU_DIR, err, sizeof(err)), ops);
	assert_string_equal(err, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mlp_seeded_deterministic),
	    cmocka_unit_test(test_mlp_seeded_is_splitmix64),
	    cmocka_unit_test(test_seeded_pinned_checksums),
	    cmocka_unit_test(test_vtable_seeded),
	    cmocka_unit_test(test_seeded_rejects_bad_dims),
	    cmocka_unit_test(test_mlp_save_load_roundtrip),
	    cmocka_unit_test(test_vtable_save_load_roundtrip),
	    cmocka_unit_test(test_mlp_bad_files),
	    cmocka_unit_test(test_vtable_bad_files),
	    cmocka_unit_test(test_load_errors_from_the_system),
	    cmocka_unit_test(test_cpu_mlp_matches_reference),
	    cmocka_unit_test(test_cpu_mlp_by_hand),
	    cmocka_unit_test(test_cpu_vsearch_matches_reference),
	    cmocka_unit_test(test_vsearch_ties_to_lower_id),
	    cmocka_unit_test(test_vsearch_k_clamping),
	    cmocka_unit_test(test_cpu_backend_bounds),
	    cmocka_unit_test(test_cpu_instances_in_parallel),
	    cmocka_unit_test(test_pick_cpu_and_unknown),
	    cmocka_unit_test(test_pick_without_the_library),
	    cmocka_unit_test(test_pick_with_the_built_library),
	    cmocka_unit_test(test_pick_emulated_cuda),
	};

	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
