/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpn-worker's compute kernels and the backends that run them.
 *
 * A model is built once (from a file or from a seed) and run by a backend in
 * batches. The CPU backend (OpenBLAS) is always there; the CUDA backend is a
 * shared object (libcpn_cuda.so, built by nvcc when present) that cpn-worker
 * loads at run time when a GPU is found. Both compute the same results (to
 * 1e-4 relative). Payloads on the wire are little-endian float32 / uint32.
 *
 * mlp     request: in_dim float32          reply: out_dim float32
 *         dense layers y = relu(x W + b), no ReLU after the last layer
 * vsearch request: uint32 k, dim float32   reply: k x (uint32 id, float32 score)
 *         top-k inner product over an embedding table, best first,
 *         ties to the lower id; k is clamped to 1..CPN_VS_MAX_K
 */
#ifndef CPN_KERNELS_H
#define CPN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define CPN_MLP_MAX_LAYERS 8
#define CPN_VS_MAX_K	   64

struct cpn_mlp {
	int n_layers;			  /* 1..CPN_MLP_MAX_LAYERS */
	int dims[CPN_MLP_MAX_LAYERS + 1]; /* dims[0] in, dims[n_layers] out */
	float *w[CPN_MLP_MAX_LAYERS];	  /* dims[l] x dims[l+1], row-major */
	float *b[CPN_MLP_MAX_LAYERS];	  /* dims[l+1] */
};

struct cpn_vtable {
	int rows, dim;
	float *v; /* rows x dim, row-major */
};

/* Files: "CPNMLP1\n", uint32 n_layers, uint32 dims[n_layers+1], then per
 * layer W (row-major) and b, float32 little-endian.
 * "CPNVEC1\n", uint32 rows, uint32 dim, then rows x dim float32.
 * Seeded: the same numbers on every machine (splitmix64 -> uniform [-s, s),
 * s = 1/sqrt(fan_in) for weights, 0.01 for biases; table rows unit length).
 */
int cpn_mlp_load(const char *path, struct cpn_mlp *m);
int cpn_mlp_seeded(struct cpn_mlp *m, const int *dims, int n_layers, uint64_t seed);
int cpn_mlp_save(const char *path, const struct cpn_mlp *m);
void cpn_mlp_free(struct cpn_mlp *m);
int cpn_vtable_load(const char *path, struct cpn_vtable *t);
int cpn_vtable_seeded(struct cpn_vtable *t, int rows, int dim, uint64_t seed);
int cpn_vtable_save(const char *path, const struct cpn_vtable *t);
void cpn_vtable_free(struct cpn_vtable *t);

/* A backend: one instance per executing batch slot (cpn-worker's capacity). */
struct cpn_backend;
struct cpn_backend_ops {
	const char *name; /* "cpu", "cuda" */
	/* Prepare for batches of up to max_batch; model pointers stay valid. */
	struct cpn_backend *(*open)(const struct cpn_mlp *mlp, const struct cpn_vtable *vt,
				    int max_batch, char *err, size_t errlen);
	/* in: batch x dims[0]; out: batch x dims[n_layers]. 0 or -1. */
	int (*mlp)(struct cpn_backend *b, const float *in, int batch, float *out);
	/* q: batch x dim; for each query the k best (id, score), best first. */
	int (*vsearch)(struct cpn_backend *b, const float *q, int batch, int k, uint32_t *ids,
		       float *scores);
	/* A description of the device, e.g. "NVIDIA H100 80GB HBM3" or "cpu (openblas)". */
	const char *(*device)(struct cpn_backend *b);
	void (*close)(struct cpn_backend *b);
};

extern const struct cpn_backend_ops cpn_backend_cpu;

/* The CUDA backend's entry point in libcpn_cuda.so: NULL when no usable GPU. */
typedef const struct cpn_backend_ops *(*cpn_cuda_entry_fn)(char *err, size_t errlen);
#define CPN_CUDA_ENTRY "cpn_cuda_backend"

/* Pick a backend: "cpu", "cuda" or "auto" (CUDA when libcpn_cuda.so loads and
 * finds a GPU, else CPU). NULL with err when "cuda" is asked for and cannot be.
 * so_dir: where to look for libcpn_cuda.so (NULL: next to the executable).
 */
const struct cpn_backend_ops *cpn_backend_pick(const char *want, const char *so_dir, char *err,
					       size_t errlen);

/* Reference implementations, plain loops: what the tests compare against. */
void cpn_mlp_ref(const struct cpn_mlp *m, const float *in, int batch, float *out);
void cpn_vsearch_ref(const struct cpn_vtable *t, const float *q, int batch, int k, uint32_t *ids,
		     float *scores);

#endif /* CPN_KERNELS_H */
