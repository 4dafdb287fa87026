// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The CUDA backend, built by nvcc into libcpn_cuda.so and loaded at run time
 * by cpn_backend_pick(); its one exported symbol is CPN_CUDA_ENTRY.
 *
 * Per backend instance (one per cpn-worker batch slot): a CUDA stream, a
 * cuBLAS handle bound to it, pinned host buffers (cudaHostAlloc) for inputs
 * and outputs, and device scratch for max_batch. The model's device copy is
 * uploaded once, at the first open() of a model, and shared by every instance
 * opened on that model (reference counted; freed by the last close()).
 *
 * mlp:     per layer cublasSgemm (row-major by the usual transpose trick:
 *          Y^T = W^T X^T in cuBLAS's column-major view), then bias_act, a
 *          kernel that adds the bias and applies ReLU (not after the last layer).
 *          cuBLAS runs in CUBLAS_DEFAULT_MATH (full FP32, no TF32), so results
 *          match the CPU backend to 1e-4 relative.
 * vsearch: scores = queries x table^T by cublasSgemm, in chunks of table rows
 *          so that the score scratch stays bounded, then topk_tile: each block
 *          of 256 threads selects the k best of a tile of 4096 candidates
 *          (16 per thread, kept in registers) by k rounds of a block-wide
 *          arg-max over the candidates that come after the last one taken in
 *          the order (score descending, id ascending; one 64-bit key each),
 *          which is total, so ties go to the lower id everywhere. Tiles of
 *          candidates are reduced the same way, pass after pass, until one
 *          tile per query is left.
 *
 * Thread use: one instance must not be used by two threads at once;
 * instances on one model may run in parallel threads.
 */
#include <climits>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pthread.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "cpn_kernels.h"
}

#ifndef TOPK_THREADS /* a multiple of 32, up to 1024 */
#define TOPK_THREADS 256
#endif
#define TOPK_PER_THREAD 16
#define TOPK_TILE	(TOPK_THREADS * TOPK_PER_THREAD)
/* each pass must shrink the candidates: a tile holds at least 2k of them */
static_assert(TOPK_THREADS % 32 == 0 && TOPK_THREADS <= 1024 && TOPK_TILE >= 2 * CPN_VS_MAX_K,
	      "topk_tile's shape");
#define BIAS_THREADS 256
/* Floats of vsearch score scratch per instance (64 MiB). */
#ifndef SCORE_ELEMS
#define SCORE_ELEMS (1LL << 24)
#endif
/* A kernel launch on a stream. selftests/gpu/emu compiles this file with a
 * host C++ compiler, CPU threads standing in for the GPU's, and defines its own. */
#ifndef CPN_LAUNCH
#define CPN_LAUNCH(kernel, grid, block, stream, ...) kernel<<<grid, block, 0, stream>>>(__VA_ARGS__)
#endif

/* ---- kernels ---------------------------------------------------------- */

/* y[r][c] += b[c], then ReLU if relu; y is rows x n, row-major. */
__global__ void bias_act(float *__restrict__ y, const float *__restrict__ b, long long total, int n,
			 int relu)
{
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
	     i += (long long)gridDim.x * blockDim.x) {
		float v = y[i] + b[i % n];

		y[i] = relu ? fmaxf(v, 0.0f) : v;
	}
}

/*
 * A candidate as one 64-bit key that orders as the results do: the score's
 * bits, made monotonic, in the high half and the id, inverted, in the low
 * half, so that the larger key is the better candidate (higher score, then
 * lower id) and the keys of one query are all distinct. -0 counts as +0, as
 * float comparison does. Real keys are above 2^55; 0 stands for none.
 */
__device__ __forceinline__ unsigned long long make_key(float s, int id)
{
	unsigned u = __float_as_uint(s + 0.0f); /* -0 + 0 = +0 */

	u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
	return ((unsigned long long)u << 32) | (unsigned)~(unsigned)id;
}

__device__ __forceinline__ float key_score(unsigned long long key)
{
	unsigned u = (unsigned)(key >> 32);

	return __uint_as_float((u & 0x80000000u) ? (u & 0x7fffffffu) : ~u);
}

__device__ __forceinline__ int key_id(unsigned long long key)
{
	return (int)~(unsigned)key;
}

/*
 * The k best of each tile of TOPK_TILE candidates: grid (tiles, queries).
 * Candidate j of query q is in_s[q * ld_in + j], j < n, with id in_i[...]
 * (IDS) or id_base + j. A NaN score, or an id < 0 (a padding slot of an
 * earlier pass), is never taken. The result of tile x goes to
 * out_[(q * out_tiles + tile_base + x) * k + 0..k-1], best first, padded with
 * (-inf, -1) when the tile has fewer than k candidates.
 *
 * Round r takes the largest key below the one taken in round r-1: each thread
 * over its TOPK_PER_THREAD keys (registers), then a butterfly over the warp,
 * then every thread over the warps' results in shared memory (two buffers,
 * alternating, so one barrier a round is enough).
 */
template <bool IDS>
__global__ void __launch_bounds__(TOPK_THREADS)
    topk_tile(const float *__restrict__ in_s, const int *__restrict__ in_i, int n, long long ld_in,
	      int id_base, int k, float *__restrict__ out_s, int *__restrict__ out_i, int out_tiles,
	      int tile_base)
{
	constexpr int NW = TOPK_THREADS / 32;
	__shared__ unsigned long long warp_best[2][NW];
	const int t = threadIdx.x;
	const long long row = (long long)blockIdx.y * ld_in;
	const long long base = (long long)blockIdx.x * TOPK_TILE;
	const long long out = ((long long)blockIdx.y * out_tiles + tile_base + blockIdx.x) * k;
	unsigned long long key[TOPK_PER_THREAD], last = ~0ULL;

#pragma unroll
	for (int e = 0; e < TOPK_PER_THREAD; e++) {
		long long j = base + (long long)e * TOPK_THREADS + t;

		key[e] = 0;
		if (j < n) {
			float v = in_s[row + j];
			int i = IDS ? in_i[row + j] : id_base + (int)j;

			if (v == v && i >= 0)
				key[e] = make_key(v, i);
		}
	}
	for (int r = 0; r < k; r++) {
		unsigned long long best = 0;

#pragma unroll
		for (int e = 0; e < TOPK_PER_THREAD; e++)
			if (key[e] < last && key[e] > best)
				best = key[e];
#pragma unroll
		for (int off = 16; off; off >>= 1) {
			unsigned long long o = __shfl_xor_sync(0xffffffffu, best, off);

			best = o > best ? o : best;
		}
		if ((t & 31) == 0)
			warp_best[r & 1][t >> 5] = best;
		__syncthreads();
		best = 0;
#pragma unroll
		for (int w = 0; w < NW; w++)
			best = warp_best[r & 1][w] > best ? warp_best[r & 1][w] : best;
		if (!best) { /* the tile is exhausted (the same in every thread): pad */
			for (int j = r + t; j < k; j += TOPK_THREADS) {
				out_s[out + j] = -INFINITY;
				out_i[out + j] = -1;
			}
			break;
		}
		if (t == 0) {
			out_s[out + r] = key_score(best);
			out_i[out + r] = key_id(best);
		}
		last = best;
	}
}

/* ---- models on the device, shared between instances ------------------- */

struct dev_model {
	const void *host; /* the cpn_mlp or cpn_vtable it copies */
	int device;
	int refs;
	float *w[CPN_MLP_MAX_LAYERS], *b[CPN_MLP_MAX_LAYERS];
	float *v;
	struct dev_model *next;
};

static pthread_mutex_t models_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dev_model *models;

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void dev_model_free(struct dev_model *d)
{
	for (int l = 0; l < CPN_MLP_MAX_LAYERS; l++) {
		cudaFree(d->w[l]);
		cudaFree(d->b[l]);
	}
	cudaFree(d->v);
	free(d);
}

static cudaError_t upload(float **dst, const float *src, size_t n)
{
	cudaError_t e = cudaMalloc((void **)dst, n * sizeof(float));

	if (e == cudaSuccess)
		e = cudaMemcpy(*dst, src, n * sizeof(float), cudaMemcpyHostToDevice);
	return e;
}

/* The device copy of mlp or vt (exactly one non-NULL), uploaded on first use. */
static struct dev_model *model_get(const struct cpn_mlp *mlp, const struct cpn_vtable *vt,
				   int device, char *err, size_t errlen)
{
	const void *host = mlp ? (const void *)mlp : (const void *)vt;
	struct dev_model *d;
	cudaError_t e = cudaSuccess;

	pthread_mutex_lock(&models_lock);
	for (d = models; d; d = d->next)
		if (d->host == host && d->device == device) {
			d->refs++;
			goto out;
		}
	d = (struct dev_model *)calloc(1, sizeof(*d));
	if (!d) {
		seterr(err, errlen, "cuda backend: out of memory");
		goto out;
	}
	d->host = host;
	d->device = device;
	d->refs = 1;
	if (mlp)
		for (int l = 0; l < mlp->n_layers && e == cudaSuccess; l++) {
			e = upload(&d->w[l], mlp->w[l], (size_t)mlp->dims[l] * mlp->dims[l + 1]);
			if (e == cudaSuccess)
				e = upload(&d->b[l], mlp->b[l], (size_t)mlp->dims[l + 1]);
		}
	else
		e = upload(&d->v, vt->v, (size_t)vt->rows * vt->dim);
	/* A copy from pageable memory may return before its DMA is done, and
	 * the instances read the model from streams of their own (non-blocking:
	 * not ordered after the legacy stream the copies went to): wait here.
	 */
	if (e == cudaSuccess)
		e = cudaDeviceSynchronize();
	if (e != cudaSuccess) {
		seterr(err, errlen, "cuda backend: uploading the %s: %s", mlp ? "mlp" : "table",
		       cudaGetErrorString(e));
		dev_model_free(d);
		d = NULL;
		goto out;
	}
	d->next = models;
	models = d;
out:
	pthread_mutex_unlock(&models_lock);
	return d;
}

static void model_put(struct dev_model *d)
{
	struct dev_model **pp;

	if (!d)
		return;
	pthread_mutex_lock(&models_lock);
	if (--d->refs == 0) {
		for (pp = &models; *pp; pp = &(*pp)->next)
			if (*pp == d) {
				*pp = d->next;
				break;
			}
		dev_model_free(d);
	}
	pthread_mutex_unlock(&models_lock);
}

/* ---- instances -------------------------------------------------------- */

struct cpn_backend {
	int device;
	cudaStream_t st;
	cublasHandle_t h;
	const struct cpn_mlp *mlp;
	const struct cpn_vtable *vt;
	struct dev_model *dm, *dv;
	int max_batch;
	float *d_in;	 /* max_batch x max(mlp in, table dim) */
	float *d_act[2]; /* max_batch x widest mlp layer after the input */
	float *h_in;	 /* pinned, as d_in */
	float *h_out;	 /* pinned, max_batch x max(mlp out, CPN_VS_MAX_K) */
	int *h_ids;	 /* pinned, max_batch x CPN_VS_MAX_K */
	float *d_sc;	 /* max_batch x chunk scores */
	int chunk;	 /* table rows per GEMM, a multiple of TOPK_TILE or all rows */
	int tiles1;	 /* tiles of the first top-k pass per query */
	float *d_cs[2];	 /* candidates: scores */
	int *d_ci[2];	 /* candidates: ids */
	char name[300];
};

#define CU(call, what)                                                                             \
	do {                                                                                       \
		cudaError_t e_ = (call);                                                           \
		if (e_ != cudaSuccess) {                                                           \
			seterr(err, errlen, "cuda backend: %s: %s", what, cudaGetErrorString(e_)); \
			goto fail;                                                                 \
		}                                                                                  \
	} while (0)

static void cuda_close(struct cpn_backend *b)
{
	if (!b)
		return;
	cudaSetDevice(b->device);
	if (b->st)
		cudaStreamSynchronize(b->st);
	if (b->h)
		cublasDestroy(b->h);
	if (b->st)
		cudaStreamDestroy(b->st);
	cudaFree(b->d_in);
	cudaFree(b->d_act[0]);
	cudaFree(b->d_act[1]);
	cudaFree(b->d_sc);
	for (int i = 0; i < 2; i++) {
		cudaFree(b->d_cs[i]);
		cudaFree(b->d_ci[i]);
	}
	cudaFreeHost(b->h_in);
	cudaFreeHost(b->h_out);
	cudaFreeHost(b->h_ids);
	model_put(b->dm);
	model_put(b->dv);
	free(b);
}

static struct cpn_backend *cuda_open(const struct cpn_mlp *mlp, const struct cpn_vtable *vt,
				     int max_batch, char *err, size_t errlen)
{
	struct cpn_backend *b = NULL;
	struct cudaDeviceProp prop;
	size_t in_dim = 0, out_dim = CPN_VS_MAX_K, act = 0;
	cublasStatus_t cs;

	if (max_batch < 1 || max_batch > 65535 || (!mlp && !vt)) {
		seterr(err, errlen, "cuda backend: %s",
		       !mlp && !vt ? "no model" : "max_batch must be 1..65535");
		return NULL;
	}
	if ((mlp && (mlp->n_layers < 1 || mlp->n_layers > CPN_MLP_MAX_LAYERS)) ||
	    (vt && (vt->rows < 1 || vt->rows >= INT_MAX / 2 || vt->dim < 1 || !vt->v))) {
		seterr(err, errlen, "cuda backend: invalid model");
		return NULL;
	}
	b = (struct cpn_backend *)calloc(1, sizeof(*b));
	if (!b) {
		seterr(err, errlen, "cuda backend: out of memory");
		return NULL;
	}
	b->mlp = mlp;
	b->vt = vt;
	b->max_batch = max_batch;
	CU(cudaGetDevice(&b->device), "cudaGetDevice");
	CU(cudaGetDeviceProperties(&prop, b->device), "cudaGetDeviceProperties");
	snprintf(b->name, sizeof(b->name), "%s", prop.name);
	CU(cudaStreamCreateWithFlags(&b->st, cudaStreamNonBlocking), "cudaStreamCreate");
	cs = cublasCreate(&b->h);
	if (cs != CUBLAS_STATUS_SUCCESS) {
		b->h = NULL;
		seterr(err, errlen, "cuda backend: cublasCreate: %s", cublasGetStatusString(cs));
		goto fail;
	}
	if (cublasSetStream(b->h, b->st) != CUBLAS_STATUS_SUCCESS ||
	    cublasSetMathMode(b->h, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS) {
		seterr(err, errlen, "cuda backend: cannot set up the cuBLAS handle");
		goto fail;
	}

	if (mlp) {
		b->dm = model_get(mlp, NULL, b->device, err, errlen);
		if (!b->dm)
			goto fail;
		in_dim = (size_t)mlp->dims[0];
		for (int l = 1; l <= mlp->n_layers; l++)
			if ((size_t)mlp->dims[l] > act)
				act = (size_t)mlp->dims[l];
		if (act > out_dim)
			out_dim = act;
		for (int i = 0; i < 2; i++)
			CU(cudaMalloc((void **)&b->d_act[i],
				      (size_t)max_batch * act * sizeof(float)),
			   "cudaMalloc");
	}
	if (vt) {
		long long chunk = SCORE_ELEMS / max_batch / TOPK_TILE * TOPK_TILE;
		size_t n0, n1;

		b->dv = model_get(NULL, vt, b->device, err, errlen);
		if (!b->dv)
			goto fail;
		if ((size_t)vt->dim > in_dim)
			in_dim = (size_t)vt->dim;
		if (chunk < TOPK_TILE)
			chunk = TOPK_TILE;
		if (chunk >= vt->rows)
			chunk = vt->rows;
		b->chunk = (int)chunk;
		b->tiles1 = (vt->rows + TOPK_TILE - 1) / TOPK_TILE;
		/* the first pass writes tiles1 x k candidates a query; the second,
		 * the largest of the later ones, ceil(tiles1 x k / TOPK_TILE) x k */
		n0 = (size_t)b->tiles1 * CPN_VS_MAX_K;
		n1 = 1;
		for (size_t k = 1; b->tiles1 > 1 && k <= CPN_VS_MAX_K; k++) {
			size_t n2 = ((size_t)b->tiles1 * k + TOPK_TILE - 1) / TOPK_TILE * k;

			n1 = n2 > n1 ? n2 : n1;
		}
		n0 *= (size_t)max_batch;
		n1 *= (size_t)max_batch;
		CU(cudaMalloc((void **)&b->d_sc, (size_t)max_batch * b->chunk * sizeof(float)),
		   "cudaMalloc");
		CU(cudaMalloc((void **)&b->d_cs[0], n0 * sizeof(float)), "cudaMalloc");
		CU(cudaMalloc((void **)&b->d_ci[0], n0 * sizeof(int)), "cudaMalloc");
		CU(cudaMalloc((void **)&b->d_cs[1], n1 * sizeof(float)), "cudaMalloc");
		CU(cudaMalloc((void **)&b->d_ci[1], n1 * sizeof(int)), "cudaMalloc");
		CU(cudaHostAlloc((void **)&b->h_ids, (size_t)max_batch * CPN_VS_MAX_K * sizeof(int),
				 cudaHostAllocDefault),
		   "cudaHostAlloc");
	}
	CU(cudaMalloc((void **)&b->d_in, (size_t)max_batch * in_dim * sizeof(float)), "cudaMalloc");
	CU(cudaHostAlloc((void **)&b->h_in, (size_t)max_batch * in_dim * sizeof(float),
			 cudaHostAllocDefault),
	   "cudaHostAlloc");
	CU(cudaHostAlloc((void **)&b->h_out, (size_t)max_batch * out_dim * sizeof(float),
			 cudaHostAllocDefault),
	   "cudaHostAlloc");
	return b;
fail:
	cuda_close(b);
	return NULL;
}

/* Runtime failures: the ops have no error string, so say it once here. */
static int failed(const char *what, const char *why)
{
	fprintf(stderr, "cpn cuda backend: %s: %s\n", what, why);
	return -1;
}

#define CK(call, what)                                                                             \
	do {                                                                                       \
		cudaError_t e_ = (call);                                                           \
		if (e_ != cudaSuccess)                                                             \
			return failed(what, cudaGetErrorString(e_));                               \
	} while (0)
#define CB(call, what)                                                                             \
	do {                                                                                       \
		cublasStatus_t s_ = (call);                                                        \
		if (s_ != CUBLAS_STATUS_SUCCESS)                                                   \
			return failed(what, cublasGetStatusString(s_));                            \
	} while (0)

static int cuda_mlp(struct cpn_backend *b, const float *in, int batch, float *out)
{
	const struct cpn_mlp *m = b->mlp;
	const float one = 1.0f, zero = 0.0f;
	const float *x = b->d_in;
	float *y = NULL;
	int din = 0, dn = 0;

	if (!m || batch < 0 || batch > b->max_batch)
		return -1;
	if (batch == 0)
		return 0;
	CK(cudaSetDevice(b->device), "cudaSetDevice");
	memcpy(b->h_in, in, (size_t)batch * m->dims[0] * sizeof(float));
	CK(cudaMemcpyAsync(b->d_in, b->h_in, (size_t)batch * m->dims[0] * sizeof(float),
			   cudaMemcpyHostToDevice, b->st),
	   "copy in");
	for (int l = 0; l < m->n_layers; l++) {
		long long total;
		int blocks;

		din = m->dims[l];
		dn = m->dims[l + 1];
		y = b->d_act[l & 1];
		total = (long long)batch * dn;
		blocks = (int)((total + BIAS_THREADS - 1) / BIAS_THREADS);
		if (blocks > 8192)
			blocks = 8192;
		/* row-major Y = X W  <=>  column-major Y^T = W^T X^T */
		CB(cublasSgemm(b->h, CUBLAS_OP_N, CUBLAS_OP_N, dn, batch, din, &one, b->dm->w[l],
			       dn, x, din, &zero, y, dn),
		   "cublasSgemm");
		CPN_LAUNCH(bias_act, blocks, BIAS_THREADS, b->st, y, b->dm->b[l], total, dn,
			   l < m->n_layers - 1);
		CK(cudaGetLastError(), "bias_act");
		x = y;
	}
	CK(cudaMemcpyAsync(b->h_out, y, (size_t)batch * dn * sizeof(float), cudaMemcpyDeviceToHost,
			   b->st),
	   "copy out");
	CK(cudaStreamSynchronize(b->st), "mlp");
	memcpy(out, b->h_out, (size_t)batch * dn * sizeof(float));
	return 0;
}

static int cuda_vsearch(struct cpn_backend *b, const float *q, int batch, int k, uint32_t *ids,
			float *scores)
{
	const struct cpn_vtable *t = b->vt;
	const float one = 1.0f, zero = 0.0f;
	int tiles, cur = 0;

	if (!t || batch < 0 || batch > b->max_batch)
		return -1;
	if (batch == 0)
		return 0;
	k = k < 1 ? 1 : k > CPN_VS_MAX_K ? CPN_VS_MAX_K : k;
	CK(cudaSetDevice(b->device), "cudaSetDevice");
	memcpy(b->h_in, q, (size_t)batch * t->dim * sizeof(float));
	CK(cudaMemcpyAsync(b->d_in, b->h_in, (size_t)batch * t->dim * sizeof(float),
			   cudaMemcpyHostToDevice, b->st),
	   "copy in");
	for (int r0 = 0; r0 < t->rows; r0 += b->chunk) {
		int n = t->rows - r0 < b->chunk ? t->rows - r0 : b->chunk;
		dim3 grid((unsigned)((n + TOPK_TILE - 1) / TOPK_TILE), (unsigned)batch);

		/* row-major S = Q T^T (batch x n)  <=>  column-major S^T = T Q^T */
		CB(cublasSgemm(b->h, CUBLAS_OP_T, CUBLAS_OP_N, n, batch, t->dim, &one,
			       b->dv->v + (size_t)r0 * t->dim, t->dim, b->d_in, t->dim, &zero,
			       b->d_sc, n),
		   "cublasSgemm");
		CPN_LAUNCH(topk_tile<false>, grid, TOPK_THREADS, b->st, b->d_sc, NULL, n, n, r0, k,
			   b->d_cs[0], b->d_ci[0], b->tiles1, r0 / TOPK_TILE);
		CK(cudaGetLastError(), "topk_tile");
	}
	for (tiles = b->tiles1; tiles > 1;) {
		int n = tiles * k, next = (n + TOPK_TILE - 1) / TOPK_TILE;
		dim3 grid((unsigned)next, (unsigned)batch);

		CPN_LAUNCH(topk_tile<true>, grid, TOPK_THREADS, b->st, b->d_cs[cur], b->d_ci[cur],
			   n, n, 0, k, b->d_cs[cur ^ 1], b->d_ci[cur ^ 1], next, 0);
		CK(cudaGetLastError(), "topk_tile");
		tiles = next;
		cur ^= 1;
	}
	CK(cudaMemcpyAsync(b->h_out, b->d_cs[cur], (size_t)batch * k * sizeof(float),
			   cudaMemcpyDeviceToHost, b->st),
	   "copy out");
	CK(cudaMemcpyAsync(b->h_ids, b->d_ci[cur], (size_t)batch * k * sizeof(int),
			   cudaMemcpyDeviceToHost, b->st),
	   "copy out");
	CK(cudaStreamSynchronize(b->st), "vsearch");
	memcpy(scores, b->h_out, (size_t)batch * k * sizeof(float));
	for (int i = 0; i < batch * k; i++) /* padding: -1 -> UINT32_MAX, as on the CPU */
		ids[i] = (uint32_t)b->h_ids[i];
	return 0;
}

static const char *cuda_device(struct cpn_backend *b)
{
	return b ? b->name : "cuda";
}

static const struct cpn_backend_ops cuda_ops = {
    "cuda", cuda_open, cuda_mlp, cuda_vsearch, cuda_device, cuda_close,
};

extern "C" __attribute__((visibility("default"))) const struct cpn_backend_ops *
cpn_cuda_backend(char *err, size_t errlen)
{
	struct cudaFuncAttributes fa;
	int n = 0, dev = 0;
	cudaError_t e;

	e = cudaGetDeviceCount(&n);
	if (e == cudaErrorInsufficientDriver) {
		seterr(err, errlen,
		       "no usable CUDA driver: none installed, or one older than the "
		       "CUDA runtime (%d.%d) this library was built with",
		       CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
		cudaGetLastError();
		return NULL;
	}
	if (e != cudaSuccess || n == 0) {
		seterr(err, errlen, "no CUDA device (%s)",
		       e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found none");
		cudaGetLastError();
		return NULL;
	}
	/* A device this library has no code for (built for sm_80, sm_90 and
	 * compute_90 PTX) is no usable GPU either. */
	e = cudaGetDevice(&dev);
	if (e == cudaSuccess)
		e = cudaFuncGetAttributes(&fa, topk_tile<false>);
	if (e != cudaSuccess) {
		struct cudaDeviceProp p;

		if (cudaGetDeviceProperties(&p, dev) == cudaSuccess)
			seterr(err, errlen, "GPU %d (%s, sm_%d%d) cannot run libcpn_cuda.so: %s",
			       dev, p.name, p.major, p.minor, cudaGetErrorString(e));
		else
			seterr(err, errlen, "GPU %d cannot run libcpn_cuda.so: %s", dev,
			       cudaGetErrorString(e));
		cudaGetLastError();
		return NULL;
	}
	return &cuda_ops;
}
