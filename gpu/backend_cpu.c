// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The CPU backend: OpenBLAS.
 *
 * mlp:     per layer, the output rows are preset to the bias and one
 *          cblas_sgemm over the whole batch adds x W (beta = 1); ReLU after
 *          every layer but the last. Activations ping-pong between two
 *          per-instance scratch buffers; the last layer writes into out.
 * vsearch: scores = queries x table^T by cblas_sgemm, the table taken in
 *          chunks of rows so that the scratch stays small (max_batch x chunk
 *          floats, a few MiB) whatever the table's size; after each chunk
 *          every query's running top-k (a sorted array of k <= 64 entries:
 *          score descending, id ascending) takes the rows that beat its
 *          current k-th, so most rows cost one comparison.
 *
 * Threads: cpn-worker runs `capacity` batch slots in threads of its own, one
 * backend instance each, so OpenBLAS must not start threads of its own inside
 * a call (they would oversubscribe the cores, and OpenBLAS's pthread server
 * serialises callers). Every open() and every call sets OpenBLAS to one thread
 * (openblas_set_num_threads(1), a process-wide setting): a call then runs in
 * the calling thread alone. Instances are independent; one instance must not
 * be used by two threads at once.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>

#include "cpn_kernels.h"

/* Declared by OpenBLAS's cblas.h; repeated here so that a cblas.h from another
 * BLAS (Debian's alternatives) still compiles against -lopenblas. */
void openblas_set_num_threads(int num_threads);
char *openblas_get_corename(void);

/* Scratch for vsearch scores: about this many floats per instance. */
#define CPU_SCORE_ELEMS (1 << 20)

struct topk_ent {
	float s;
	uint32_t id;
};

struct cpn_backend {
	const struct cpn_mlp *mlp;
	const struct cpn_vtable *vt;
	int max_batch;
	float *act[2];	      /* max_batch x widest hidden layer */
	float *sc;	      /* max_batch x chunk */
	int chunk;	      /* table rows per GEMM */
	struct topk_ent *top; /* max_batch x CPN_VS_MAX_K */
	char dev[96];
};

static void cpu_close(struct cpn_backend *b)
{
	if (!b)
		return;
	free(b->act[0]);
	free(b->act[1]);
	free(b->sc);
	free(b->top);
	free(b);
}

static struct cpn_backend *cpu_open(const struct cpn_mlp *mlp, const struct cpn_vtable *vt,
				    int max_batch, char *err, size_t errlen)
{
	struct cpn_backend *b;
	const char *core;

	if (max_batch < 1 || (!mlp && !vt)) {
		if (err && errlen)
			snprintf(err, errlen, "cpu backend: %s",
				 max_batch < 1 ? "max_batch must be at least 1" : "no model");
		return NULL;
	}
	if ((mlp && (mlp->n_layers < 1 || mlp->n_layers > CPN_MLP_MAX_LAYERS)) ||
	    (vt && (vt->rows < 1 || vt->dim < 1 || !vt->v))) {
		if (err && errlen)
			snprintf(err, errlen, "cpu backend: invalid model");
		return NULL;
	}
	openblas_set_num_threads(1);
	b = calloc(1, sizeof(*b));
	if (!b)
		goto nomem;
	b->mlp = mlp;
	b->vt = vt;
	b->max_batch = max_batch;
	if (mlp && mlp->n_layers > 1) {
		int maxh = 0;

		for (int l = 1; l < mlp->n_layers; l++)
			if (mlp->dims[l] > maxh)
				maxh = mlp->dims[l];
		for (int i = 0; i < 2; i++) {
			b->act[i] = malloc((size_t)max_batch * (size_t)maxh * sizeof(float));
			if (!b->act[i])
				goto nomem;
		}
	}
	if (vt) {
		int chunk = CPU_SCORE_ELEMS / max_batch;

		if (chunk < 256)
			chunk = 256;
		if (chunk > vt->rows)
			chunk = vt->rows;
		b->chunk = chunk;
		b->sc = malloc((size_t)max_batch * (size_t)chunk * sizeof(float));
		b->top = malloc((size_t)max_batch * CPN_VS_MAX_K * sizeof(*b->top));
		if (!b->sc || !b->top)
			goto nomem;
	}
	core = openblas_get_corename();
	snprintf(b->dev, sizeof(b->dev), "cpu (openblas%s%s)", core && *core ? ", " : "",
		 core ? core : "");
	return b;
nomem:
	cpu_close(b);
	if (err && errlen)
		snprintf(err, errlen, "cpu backend: out of memory");
	return NULL;
}

static int cpu_mlp(struct cpn_backend *b, const float *in, int batch, float *out)
{
	const struct cpn_mlp *m = b->mlp;
	const float *x = in;

	if (!m || batch < 0 || batch > b->max_batch) {
		errno = EINVAL;
		return -1;
	}
	if (batch == 0)
		return 0;
	openblas_set_num_threads(1);
	for (int l = 0; l < m->n_layers; l++) {
		int din = m->dims[l], dn = m->dims[l + 1];
		int last = l == m->n_layers - 1;
		float *y = last ? out : b->act[l & 1];
		size_t n = (size_t)batch * (size_t)dn;

		for (int r = 0; r < batch; r++)
			memcpy(y + (size_t)r * (size_t)dn, m->b[l], (size_t)dn * sizeof(float));
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, dn, din, 1.0f, x, din,
			    m->w[l], dn, 1.0f, y, dn);
		if (!last)
			for (size_t i = 0; i < n; i++)
				y[i] = y[i] > 0.0f ? y[i] : 0.0f;
		x = y;
	}
	return 0;
}

/* (s, id) comes before e: higher score, or the same score and a lower id. */
static inline int topk_before(float s, uint32_t id, const struct topk_ent *e)
{
	return s > e->s || (s == e->s && id < e->id);
}

static int cpu_vsearch(struct cpn_backend *b, const float *q, int batch, int k, uint32_t *ids,
		       float *scores)
{
	const struct cpn_vtable *t = b->vt;

	if (!t || batch < 0 || batch > b->max_batch) {
		errno = EINVAL;
		return -1;
	}
	if (batch == 0)
		return 0;
	k = k < 1 ? 1 : k > CPN_VS_MAX_K ? CPN_VS_MAX_K : k;
	openblas_set_num_threads(1);
	for (int i = 0; i < batch * k; i++)
		b->top[i] = (struct topk_ent){-INFINITY, UINT32_MAX};

	for (int r0 = 0; r0 < t->rows; r0 += b->chunk) {
		int n = t->rows - r0 < b->chunk ? t->rows - r0 : b->chunk;

		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, n, t->dim, 1.0f, q,
			    t->dim, t->v + (size_t)r0 * (size_t)t->dim, t->dim, 0.0f, b->sc, n);
		for (int qi = 0; qi < batch; qi++) {
			struct topk_ent *top = b->top + (size_t)qi * (size_t)k;
			const float *s = b->sc + (size_t)qi * (size_t)n;
			float worst = top[k - 1].s;

			for (int j = 0; j < n; j++) {
				uint32_t id = (uint32_t)(r0 + j);
				int pos = k - 1;

				/* fast path; NaN never gets in */
				if (!(s[j] >= worst) || !topk_before(s[j], id, &top[k - 1]))
					continue;
				while (pos > 0 && topk_before(s[j], id, &top[pos - 1])) {
					top[pos] = top[pos - 1];
					pos--;
				}
				top[pos] = (struct topk_ent){s[j], id};
				worst = top[k - 1].s;
			}
		}
	}
	for (int i = 0; i < batch * k; i++) {
		ids[i] = b->top[i].id;
		scores[i] = b->top[i].s;
	}
	return 0;
}

static const char *cpu_device(struct cpn_backend *b)
{
	return b ? b->dev : "cpu (openblas)";
}

const struct cpn_backend_ops cpn_backend_cpu = {
    .name = "cpu",
    .open = cpu_open,
    .mlp = cpu_mlp,
    .vsearch = cpu_vsearch,
    .device = cpu_device,
    .close = cpu_close,
};
