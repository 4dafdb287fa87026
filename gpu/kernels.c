// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Models for cpn-worker's kernels: load, save and seeded generation of the MLP
 * and of the vector table, and the reference implementations (plain loops,
 * double accumulation) that every backend is tested against.
 *
 * Every function returns 0 or -1 with errno set: EINVAL for arguments or a
 * file that is not a valid model (bad magic, dimensions out of range, a size
 * that does not match the header), ENOMEM, or the errno of the failing I/O.
 * On failure the model is left zeroed, so cpn_*_free() is always safe.
 *
 * Seeded generation gives the same bytes on every machine: splitmix64 draws
 * are turned into floats with exact integer arithmetic and one rounding, and
 * the table's row norms use only operations that IEEE 754 rounds correctly
 * (x * x of a float is exact in double, so a fused multiply-add gives the same
 * sum as a separate multiply and add).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpn_kernels.h"
#include "cpn_util.h"

/* Limits that a file or a seeded model must respect (an "absurd" header is
 * refused before anything is allocated). */
#define CPN_DIM_MAX   (1 << 16)	  /* any layer width or vector dimension */
#define CPN_ROWS_MAX  (1 << 24)	  /* vector table rows */
#define CPN_ELEMS_MAX (1LL << 28) /* floats in one weight matrix or table (1 GiB) */
#define CPN_MLP_MAGIC "CPNMLP1\n"
#define CPN_VEC_MAGIC "CPNVEC1\n"
#define CPN_MAGIC_LEN 8

/* ---- splitmix64 ------------------------------------------------------- */

/* Uniform in [-s, s): the top 53 bits as an integer in [-2^52, 2^52) (exact in
 * double), times 2^-52 (exact), times s (one rounding), to float (one more). */
static float uniform(uint64_t *state, double s)
{
	int64_t r = (int64_t)(cpn_splitmix64(state) >> 11) - (1LL << 52);

	return (float)(s * ((double)r * 0x1p-52));
}

/* ---- little-endian I/O ------------------------------------------------ */

static uint32_t bswap32_if_be(uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return __builtin_bswap32(v);
#else
	return v;
#endif
}

/* Convert n 32-bit words between file (little-endian) and host order. */
static void le32_words(void *p, size_t n)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	uint32_t *w = p;

	for (size_t i = 0; i < n; i++)
		w[i] = __builtin_bswap32(w[i]);
#else
	(void)p;
	(void)n;
#endif
}

static int read_exact(FILE *f, void *p, size_t len)
{
	if (len && fread(p, 1, len, f) != len) {
		errno = ferror(f) ? EIO : EINVAL; /* short: truncated file */
		return -1;
	}
	return 0;
}

static int read_floats(FILE *f, float *p, size_t n)
{
	if (read_exact(f, p, n * sizeof(float)))
		return -1;
	le32_words(p, n);
	return 0;
}

static int write_floats(FILE *f, const float *p, size_t n)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	for (size_t i = 0; i < n; i++) {
		uint32_t w;

		memcpy(&w, &p[i], 4);
		w = __builtin_bswap32(w);
		if (fwrite(&w, 4, 1, f) != 1)
			return -1;
	}
	return 0;
#else
	return n && fwrite(p, sizeof(float), n, f) != n ? -1 : 0;
#endif
}

static int write_u32(FILE *f, uint32_t v)
{
	v = bswap32_if_be(v);
	return fwrite(&v, 4, 1, f) == 1 ? 0 : -1;
}

/* Open for reading, check the magic and return the file's size. */
static FILE *open_model(const char *path, const char *magic, long long *size)
{
	char buf[CPN_MAGIC_LEN];
	struct stat st;
	FILE *f;

	f = fopen(path, "rb");
	if (!f)
		return NULL;
	if (fstat(fileno(f), &st))
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	*size = st.st_size;
	if (read_exact(f, buf, sizeof(buf)))
		goto fail;
	if (memcmp(buf, magic, CPN_MAGIC_LEN)) {
		errno = EINVAL;
		goto fail;
	}
	return f;
fail:;
	int e = errno;

	fclose(f);
	errno = e;
	return NULL;
}

static int close_written(FILE *f, const char *path, int failed)
{
	int e = failed ? (errno ? errno : EIO) : 0;

	if (fclose(f) && !e)
		e = errno ? errno : EIO;
	if (e) {
		unlink(path);
		errno = e;
		return -1;
	}
	return 0;
}

/* ---- MLP -------------------------------------------------------------- */

static int mlp_dims_ok(const int *dims, int n_layers)
{
	if (n_layers < 1 || n_layers > CPN_MLP_MAX_LAYERS)
		return 0;
	for (int l = 0; l <= n_layers; l++)
		if (dims[l] < 1 || dims[l] > CPN_DIM_MAX)
			return 0;
	for (int l = 0; l < n_layers; l++)
		if ((long long)dims[l] * dims[l + 1] > CPN_ELEMS_MAX)
			return 0;
	return 1;
}

static int mlp_alloc(struct cpn_mlp *m, const int *dims, int n_layers)
{
	memset(m, 0, sizeof(*m));
	m->n_layers = n_layers;
	memcpy(m->dims, dims, (size_t)(n_layers + 1) * sizeof(int));
	for (int l = 0; l < n_layers; l++) {
		m->w[l] = malloc((size_t)dims[l] * (size_t)dims[l + 1] * sizeof(float));
		m->b[l] = malloc((size_t)dims[l + 1] * sizeof(float));
		if (!m->w[l] || !m->b[l]) {
			cpn_mlp_free(m);
			errno = ENOMEM;
			return -1;
		}
	}
	return 0;
}

void cpn_mlp_free(struct cpn_mlp *m)
{
	if (!m)
		return;
	for (int l = 0; l < CPN_MLP_MAX_LAYERS; l++) {
		free(m->w[l]);
		free(m->b[l]);
	}
	memset(m, 0, sizeof(*m));
}

int cpn_mlp_seeded(struct cpn_mlp *m, const int *dims, int n_layers, uint64_t seed)
{
	uint64_t st = seed;

	if (!m || !dims || !mlp_dims_ok(dims, n_layers)) {
		if (m)
			memset(m, 0, sizeof(*m));
		errno = EINVAL;
		return -1;
	}
	if (mlp_alloc(m, dims, n_layers))
		return -1;
	for (int l = 0; l < n_layers; l++) {
		size_t nw = (size_t)dims[l] * (size_t)dims[l + 1];
		double s = 1.0 / sqrt((double)dims[l]);

		for (size_t i = 0; i < nw; i++)
			m->w[l][i] = uniform(&st, s);
		for (int i = 0; i < dims[l + 1]; i++)
			m->b[l][i] = uniform(&st, 0.01);
	}
	return 0;
}

int cpn_mlp_load(const char *path, struct cpn_mlp *m)
{
	uint32_t hdr[CPN_MLP_MAX_LAYERS + 2];
	int dims[CPN_MLP_MAX_LAYERS + 1];
	long long size, want;
	uint32_t n;
	FILE *f;

	memset(m, 0, sizeof(*m));
	f = open_model(path, CPN_MLP_MAGIC, &size);
	if (!f)
		return -1;
	if (read_exact(f, &n, 4))
		goto fail;
	n = bswap32_if_be(n);
	if (n < 1 || n > CPN_MLP_MAX_LAYERS) {
		errno = EINVAL;
		goto fail;
	}
	if (read_exact(f, hdr, (n + 1) * 4))
		goto fail;
	le32_words(hdr, n + 1);
	for (uint32_t l = 0; l <= n; l++) {
		if (hdr[l] < 1 || hdr[l] > CPN_DIM_MAX) {
			errno = EINVAL;
			goto fail;
		}
		dims[l] = (int)hdr[l];
	}
	if (!mlp_dims_ok(dims, (int)n)) {
		errno = EINVAL;
		goto fail;
	}
	want = CPN_MAGIC_LEN + 4 + 4LL * (n + 1);
	for (uint32_t l = 0; l < n; l++)
		want += 4LL * ((long long)dims[l] * dims[l + 1] + dims[l + 1]);
	if (size != want) { /* truncated, or trailing bytes */
		errno = EINVAL;
		goto fail;
	}
	if (mlp_alloc(m, dims, (int)n))
		goto fail;
	for (uint32_t l = 0; l < n; l++) {
		if (read_floats(f, m->w[l], (size_t)dims[l] * (size_t)dims[l + 1]) ||
		    read_floats(f, m->b[l], (size_t)dims[l + 1]))
			goto fail;
	}
	fclose(f);
	return 0;
fail:;
	int e = errno;

	cpn_mlp_free(m);
	fclose(f);
	errno = e;
	return -1;
}

int cpn_mlp_save(const char *path, const struct cpn_mlp *m)
{
	int bad = 0;
	FILE *f;

	if (!m || !mlp_dims_ok(m->dims, m->n_layers)) {
		errno = EINVAL;
		return -1;
	}
	for (int l = 0; l < m->n_layers; l++)
		if (!m->w[l] || !m->b[l]) {
			errno = EINVAL;
			return -1;
		}
	f = fopen(path, "wb");
	if (!f)
		return -1;
	errno = 0;
	bad |= fwrite(CPN_MLP_MAGIC, 1, CPN_MAGIC_LEN, f) != CPN_MAGIC_LEN;
	bad |= write_u32(f, (uint32_t)m->n_layers);
	for (int l = 0; l <= m->n_layers && !bad; l++)
		bad |= write_u32(f, (uint32_t)m->dims[l]);
	for (int l = 0; l < m->n_layers && !bad; l++) {
		bad |= write_floats(f, m->w[l], (size_t)m->dims[l] * (size_t)m->dims[l + 1]);
		bad |= write_floats(f, m->b[l], (size_t)m->dims[l + 1]);
	}
	return close_written(f, path, bad);
}

/* ---- vector table ----------------------------------------------------- */

static int vt_dims_ok(long long rows, long long dim)
{
	return rows >= 1 && rows <= CPN_ROWS_MAX && dim >= 1 && dim <= CPN_DIM_MAX &&
	       rows * dim <= CPN_ELEMS_MAX;
}

void cpn_vtable_free(struct cpn_vtable *t)
{
	if (!t)
		return;
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static int vt_alloc(struct cpn_vtable *t, int rows, int dim)
{
	t->rows = rows;
	t->dim = dim;
	t->v = malloc((size_t)rows * (size_t)dim * sizeof(float));
	if (!t->v) {
		memset(t, 0, sizeof(*t));
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int cpn_vtable_seeded(struct cpn_vtable *t, int rows, int dim, uint64_t seed)
{
	uint64_t st = seed;

	if (t)
		memset(t, 0, sizeof(*t));
	if (!t || !vt_dims_ok(rows, dim)) {
		errno = EINVAL;
		return -1;
	}
	if (vt_alloc(t, rows, dim))
		return -1;
	for (int r = 0; r < rows; r++) {
		float *v = t->v + (size_t)r * (size_t)dim;
		double ss = 0.0, norm;

		for (int i = 0; i < dim; i++) {
			v[i] = uniform(&st, 1.0);
			ss += (double)v[i] * (double)v[i]; /* the product is exact */
		}
		if (ss == 0.0) { /* cannot happen in practice; keep it a unit vector */
			v[0] = 1.0f;
			continue;
		}
		norm = sqrt(ss);
		for (int i = 0; i < dim; i++)
			v[i] = (float)((double)v[i] / norm);
	}
	return 0;
}

int cpn_vtable_load(const char *path, struct cpn_vtable *t)
{
	uint32_t hdr[2];
	long long size;
	FILE *f;

	memset(t, 0, sizeof(*t));
	f = open_model(path, CPN_VEC_MAGIC, &size);
	if (!f)
		return -1;
	if (read_exact(f, hdr, sizeof(hdr)))
		goto fail;
	le32_words(hdr, 2);
	if (!vt_dims_ok(hdr[0], hdr[1]) ||
	    size != CPN_MAGIC_LEN + 8 + 4LL * (long long)hdr[0] * (long long)hdr[1]) {
		errno = EINVAL;
		goto fail;
	}
	if (vt_alloc(t, (int)hdr[0], (int)hdr[1]))
		goto fail;
	if (read_floats(f, t->v, (size_t)hdr[0] * hdr[1]))
		goto fail;
	fclose(f);
	return 0;
fail:;
	int e = errno;

	cpn_vtable_free(t);
	fclose(f);
	errno = e;
	return -1;
}

int cpn_vtable_save(const char *path, const struct cpn_vtable *t)
{
	int bad = 0;
	FILE *f;

	if (!t || !t->v || !vt_dims_ok(t->rows, t->dim)) {
		errno = EINVAL;
		return -1;
	}
	f = fopen(path, "wb");
	if (!f)
		return -1;
	errno = 0;
	bad |= fwrite(CPN_VEC_MAGIC, 1, CPN_MAGIC_LEN, f) != CPN_MAGIC_LEN;
	bad |= write_u32(f, (uint32_t)t->rows);
	bad |= write_u32(f, (uint32_t)t->dim);
	if (!bad)
		bad |= write_floats(f, t->v, (size_t)t->rows * (size_t)t->dim);
	return close_written(f, path, bad);
}

/* ---- references ------------------------------------------------------- */

void cpn_mlp_ref(const struct cpn_mlp *m, const float *in, int batch, float *out)
{
	int maxd = 0, dout = m->dims[m->n_layers];
	double *x, *y;

	for (int l = 0; l <= m->n_layers; l++)
		if (m->dims[l] > maxd)
			maxd = m->dims[l];
	x = malloc((size_t)maxd * sizeof(double));
	y = malloc((size_t)maxd * sizeof(double));
	if (!x || !y) { /* no error return: make the result unmistakably wrong */
		for (size_t i = 0; i < (size_t)batch * (size_t)dout; i++)
			out[i] = NAN;
		goto done;
	}
	for (int r = 0; r < batch; r++) {
		for (int i = 0; i < m->dims[0]; i++)
			x[i] = in[(size_t)r * (size_t)m->dims[0] + (size_t)i];
		for (int l = 0; l < m->n_layers; l++) {
			int din = m->dims[l], dn = m->dims[l + 1];
			double *tmp;

			for (int j = 0; j < dn; j++)
				y[j] = m->b[l][j];
			for (int i = 0; i < din; i++) {
				const float *w = m->w[l] + (size_t)i * (size_t)dn;

				for (int j = 0; j < dn; j++)
					y[j] += x[i] * w[j];
			}
			if (l < m->n_layers - 1)
				for (int j = 0; j < dn; j++)
					y[j] = y[j] > 0.0 ? y[j] : 0.0;
			tmp = x, x = y, y = tmp;
		}
		for (int j = 0; j < dout; j++)
			out[(size_t)r * (size_t)dout + (size_t)j] = (float)x[j];
	}
done:
	free(x);
	free(y);
}

/*
 * For each query, k rounds of "the best row not yet taken": score descending,
 * id ascending among equal scores. k is clamped to 1..CPN_VS_MAX_K; when the
 * table has fewer rows than k, the slots beyond are (UINT32_MAX, -INFINITY).
 */
void cpn_vsearch_ref(const struct cpn_vtable *t, const float *q, int batch, int k, uint32_t *ids,
		     float *scores)
{
	double *s = malloc((size_t)t->rows * sizeof(double));

	k = k < 1 ? 1 : k > CPN_VS_MAX_K ? CPN_VS_MAX_K : k;
	for (int b = 0; b < batch; b++) {
		const float *qq = q + (size_t)b * (size_t)t->dim;
		double last_s = INFINITY;
		long last_id = -1;

		if (s)
			for (int r = 0; r < t->rows; r++) {
				const float *v = t->v + (size_t)r * (size_t)t->dim;
				double acc = 0.0;

				for (int i = 0; i < t->dim; i++)
					acc += (double)qq[i] * v[i];
				s[r] = acc;
			}
		for (int j = 0; j < k; j++) {
			long best = -1;

			for (int r = 0; s && r < t->rows; r++) {
				/* strictly after (last_s, last_id) in the order */
				if (!(s[r] < last_s || (s[r] == last_s && r > last_id)))
					continue;
				if (best < 0 || s[r] > s[best])
					best = r;
			}
			ids[(size_t)b * k + j] = best < 0 ? UINT32_MAX : (uint32_t)best;
			scores[(size_t)b * k + j] = best < 0 ? -INFINITY : (float)s[best];
			if (best >= 0)
				last_s = s[best], last_id = best;
		}
	}
	free(s);
}
