/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpn-worker's built-in handlers: mlp and vsearch (cpn_kernels.h, on a CPU
 * or CUDA backend), echo (the payload back) and synthetic (sleeps a drawn
 * service time: a node of a queueing model).
 */
#ifndef CPN_WORKER_KERNELS_H
#define CPN_WORKER_KERNELS_H

#include "cpn/proto.h"
#include "cpn/worker.h"
#include "cpn_kernels.h"

enum wk_kernel {
	WK_K_MLP,
	WK_K_VSEARCH,
	WK_K_ECHO,
	WK_K_SYNTH,
};

enum wk_dist {
	WK_D_FIXED,
	WK_D_EXP,
	WK_D_BIMODAL,
};

/* A synthetic service time's distribution. */
struct wk_svc {
	enum wk_dist dist;
	double us[2]; /* fixed/exp: [0]; bimodal: both */
	double p;     /* bimodal: probability of us[1] */
};

struct wk_kernel_cfg {
	enum wk_kernel kernel;
	const char *backend; /* auto, cuda, cpu */
	const char *mlp_model;
	int mlp_dims[CPN_MLP_MAX_LAYERS + 1];
	int mlp_layers;
	uint64_t seed;
	const char *vs_table;
	int vs_rows, vs_dim;
	struct wk_svc svc;
	/* synthetic: for the first phase_ms after wk_kernels_open, service
	 * times are drawn from phase instead of svc (0: never)
	 */
	unsigned phase_ms;
	struct wk_svc phase;
};

struct wk_kernels {
	struct wk_kernel_cfg c;
	struct cpn_mlp mlp;
	struct cpn_vtable vt;
	int have_mlp, have_vt;
	const struct cpn_backend_ops *ops; /* NULL for echo and synthetic */
	char device[160];
	uint32_t req_len;      /* mlp, vsearch: the payload a request must have */
	uint64_t phase_end_ns; /* synthetic: CLOCK_MONOTONIC end of the phase */
	struct cpn_worker_handler h;
};

const char *wk_kernel_name(enum wk_kernel k);
/* The model (loaded or seeded) and the backend; k->h is the handler. */
int wk_kernels_open(struct wk_kernels *k, const struct wk_kernel_cfg *c, char *err, size_t errlen);
void wk_kernels_close(struct wk_kernels *k);

#endif /* CPN_WORKER_KERNELS_H */
