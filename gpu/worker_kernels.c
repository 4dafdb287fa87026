// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-worker's built-in handlers.
 *
 * mlp and vsearch run a batch on one backend instance per slot (payloads
 * are little-endian words on the wire). echo answers each request with its
 * payload. The synthetic kernel sleeps (clock_nanosleep, so that many
 * workers share a few cores) for the SUM of its requests' drawn service
 * times, as if the slot served them one after another: a slot is one
 * server, and with --max-batch 1 --capacity k a worker is exactly an M/G/k
 * station. Its reply payload is the request's payload, echoed. With a
 * phase (--svc-phase MS:SPEC), a batch that starts in the first MS ms after
 * the kernels opened draws from SPEC instead: a node that is slow, then
 * recovers.
 */
#include <endian.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker_kernels.h"
#include "cpn_util.h"

/* A slot's instance: its backend and buffers for a batch. */
struct wk_inst {
	struct wk_kernels *k;
	int idx;
	struct cpn_backend *be;
	float *in, *out, *scores;
	uint32_t *ids;
	uint8_t *pl; /* vsearch replies: max_batch x CPN_VS_MAX_K x 8 bytes */
	int *kk;     /* vsearch: each request's k */
	uint64_t rng;
};

const char *wk_kernel_name(enum wk_kernel k)
{
	static const char *const names[] = {"mlp", "vsearch", "echo", "synthetic"};

	return names[k];
}

static uint32_t le32_get(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

/* n little-endian 32-bit words (float32, uint32) to host order and back. */
static void words_from_le(void *dst, const uint8_t *src, size_t n)
{
	memcpy(dst, src, n * 4);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	for (size_t i = 0; i < n; i++)
		((uint32_t *)dst)[i] = le32toh(((uint32_t *)dst)[i]);
#endif
}

static void words_to_le(void *p, size_t n)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	for (size_t i = 0; i < n; i++)
		((uint32_t *)p)[i] = htole32(((uint32_t *)p)[i]);
#else
	(void)p;
	(void)n;
#endif
}

static int payload_ok(void *ctx, uint32_t len)
{
	const struct wk_kernels *k = ctx;

	switch (k->c.kernel) {
	case WK_K_MLP:
	case WK_K_VSEARCH:
		return len == k->req_len;
	default:
		/* Echoed: any message the node takes (a large reply is sent
		 * as fragments).
		 */
		return 1;
	}
}

static int vs_k(const struct wk_kernels *k, const uint8_t *pl)
{
	uint32_t v = le32_get(pl);
	uint32_t max = (uint32_t)(k->vt.rows < CPN_VS_MAX_K ? k->vt.rows : CPN_VS_MAX_K);

	return (int)(v < 1 ? 1 : v > max ? max : v);
}

/* One synthetic service time, ns. */
static uint64_t synth_draw(const struct wk_svc *c, uint64_t *rng)
{
	double u = (double)(cpn_splitmix64(rng) >> 11) * 0x1.0p-53; /* [0, 1) */
	double us;

	switch (c->dist) {
	case WK_D_EXP:
		us = -c->us[0] * log1p(-u);
		break;
	case WK_D_BIMODAL:
		us = u < c->p ? c->us[1] : c->us[0];
		break;
	default:
		us = c->us[0];
	}
	/* 1000 s bounds the sleep of a pathological draw. */
	return us > 1e9 ? 1000000000000ULL : (uint64_t)(us * 1000);
}

static double synth_mean_us(const struct wk_svc *c)
{
	if (c->dist == WK_D_BIMODAL)
		return (1 - c->p) * c->us[0] + c->p * c->us[1];
	return c->us[0];
}

static void run_synth(struct wk_inst *s, const struct cpn_worker_request *req, int n,
		      struct cpn_worker_reply *rep)
{
	uint64_t total = cpn_now_ns();
	/* --svc-phase: a batch that starts within the phase is drawn from it. */
	const struct wk_svc *d = total < s->k->phase_end_ns ? &s->k->c.phase : &s->k->c.svc;
	struct timespec ts;

	for (int i = 0; i < n; i++)
		total += synth_draw(d, &s->rng);
	ts = cpn_ns_timespec(total);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	for (int i = 0; i < n; i++)
		rep[i] = (struct cpn_worker_reply){CPN_ST_OK, req[i].payload, req[i].len};
}

static void run_mlp(struct wk_inst *s, const struct cpn_worker_request *req, int n,
		    struct cpn_worker_reply *rep)
{
	const struct cpn_mlp *m = &s->k->mlp;
	size_t in = (size_t)m->dims[0], out = (size_t)m->dims[m->n_layers];

	for (int i = 0; i < n; i++)
		words_from_le(s->in + (size_t)i * in, req[i].payload, in);
	if (s->k->ops->mlp(s->be, s->in, n, s->out))
		return; /* every rep[i] stays KERNEL_ERROR */
	words_to_le(s->out, (size_t)n * out);
	for (int i = 0; i < n; i++)
		rep[i] = (struct cpn_worker_reply){CPN_ST_OK, s->out + (size_t)i * out,
						   (uint32_t)(out * 4)};
}

static void run_vsearch(struct wk_inst *s, const struct cpn_worker_request *req, int n,
			struct cpn_worker_reply *rep)
{
	size_t dim = (size_t)s->k->vt.dim;
	int kmax = 1;

	for (int i = 0; i < n; i++) {
		s->kk[i] = vs_k(s->k, req[i].payload);
		if (s->kk[i] > kmax)
			kmax = s->kk[i];
		words_from_le(s->in + (size_t)i * dim, (const uint8_t *)req[i].payload + 4, dim);
	}
	/* One k for the batch, the largest: a request's own top-k is a prefix
	 * of it (best first, ties to the lower id).
	 */
	if (s->k->ops->vsearch(s->be, s->in, n, kmax, s->ids, s->scores))
		return;
	for (int i = 0; i < n; i++) {
		uint8_t *p = s->pl + (size_t)i * CPN_VS_MAX_K * 8;

		for (int j = 0; j < s->kk[i]; j++) {
			uint32_t id = htole32(s->ids[(size_t)i * kmax + j]), sc;

			memcpy(&sc, &s->scores[(size_t)i * kmax + j], 4);
			sc = htole32(sc);
			memcpy(p + j * 8, &id, 4);
			memcpy(p + j * 8 + 4, &sc, 4);
		}
		rep[i] = (struct cpn_worker_reply){CPN_ST_OK, p, (uint32_t)s->kk[i] * 8};
	}
}

static void run(void *inst, const struct cpn_worker_request *req, int n,
		struct cpn_worker_reply *rep)
{
	struct wk_inst *s = inst;

	switch (s->k->c.kernel) {
	case WK_K_ECHO:
		for (int i = 0; i < n; i++)
			rep[i] = (struct cpn_worker_reply){CPN_ST_OK, req[i].payload, req[i].len};
		break;
	case WK_K_SYNTH:
		run_synth(s, req, n, rep);
		break;
	case WK_K_MLP:
		run_mlp(s, req, n, rep);
		break;
	case WK_K_VSEARCH:
		run_vsearch(s, req, n, rep);
		break;
	}
}

/* One zero request through the backend. */
static int warm(void *inst)
{
	struct wk_inst *s = inst;
	struct wk_kernels *k = s->k;

	if (k->c.kernel == WK_K_MLP) {
		memset(s->in, 0, (size_t)k->mlp.dims[0] * sizeof(float));
		return k->ops->mlp(s->be, s->in, 1, s->out);
	}
	memset(s->in, 0, (size_t)k->vt.dim * sizeof(float));
	return k->ops->vsearch(s->be, s->in, 1, 1, s->ids, s->scores);
}

static void slot_close(void *inst)
{
	struct wk_inst *s = inst;

	if (s->be)
		s->k->ops->close(s->be);
	free(s->in);
	free(s->out);
	free(s->scores);
	free(s->ids);
	free(s->pl);
	free(s->kk);
	free(s);
}

static void *slot_open(void *ctx, int idx, int max_batch, char *err, size_t errlen)
{
	struct wk_kernels *k = ctx;
	struct wk_inst *s = calloc(1, sizeof(*s));
	size_t B = (size_t)max_batch, in = 0, out = 0;

	if (!s)
		goto nomem;
	s->k = k;
	s->idx = idx;
	s->rng = k->c.seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(idx + 1));
	if (k->c.kernel == WK_K_MLP) {
		in = (size_t)k->mlp.dims[0];
		out = (size_t)k->mlp.dims[k->mlp.n_layers];
	} else if (k->c.kernel == WK_K_VSEARCH) {
		in = (size_t)k->vt.dim;
		s->ids = calloc(B * CPN_VS_MAX_K, sizeof(*s->ids));
		s->scores = calloc(B * CPN_VS_MAX_K, sizeof(*s->scores));
		s->pl = calloc(B * CPN_VS_MAX_K, 8);
		s->kk = calloc(B, sizeof(*s->kk));
		if (!s->ids || !s->scores || !s->pl || !s->kk)
			goto nomem;
	}
	if (in && !(s->in = calloc(B * in, sizeof(float))))
		goto nomem;
	if (out && !(s->out = calloc(B * out, sizeof(float))))
		goto nomem;
	if (!k->ops)
		return s;
	s->be = k->ops->open(k->have_mlp ? &k->mlp : NULL, k->have_vt ? &k->vt : NULL, max_batch,
			     err, errlen);
	if (!s->be) {
		if (!*err)
			snprintf(err, errlen, "the %s backend did not open", k->ops->name);
		slot_close(s);
		return NULL;
	}
	if (idx == 0 && k->ops->device)
		snprintf(k->device, sizeof(k->device), "%s", k->ops->device(s->be));
	return s;
nomem:
	snprintf(err, errlen, "out of memory for a slot of batches of %d", max_batch);
	if (s)
		slot_close(s);
	return NULL;
}

static int model_setup(struct wk_kernels *k, char *err, size_t errlen)
{
	const struct wk_kernel_cfg *c = &k->c;
	int rc;

	if (c->kernel == WK_K_MLP) {
		rc = c->mlp_model ? cpn_mlp_load(c->mlp_model, &k->mlp)
				  : cpn_mlp_seeded(&k->mlp, c->mlp_dims, c->mlp_layers, c->seed);
		if (rc) {
			snprintf(err, errlen, "mlp model %s: %s",
				 c->mlp_model ? c->mlp_model : "(seeded)", strerror(errno));
			return -1;
		}
		k->have_mlp = 1;
		if ((size_t)k->mlp.dims[0] * 4 > CPN_WORKER_MAX_DATAGRAM_PAYLOAD ||
		    (size_t)k->mlp.dims[k->mlp.n_layers] * 4 > CPN_WORKER_MAX_DATAGRAM_PAYLOAD) {
			snprintf(err, errlen, "mlp model: input or output does not fit a datagram");
			return -1;
		}
		k->req_len = (uint32_t)k->mlp.dims[0] * 4;
	} else {
		rc = c->vs_table ? cpn_vtable_load(c->vs_table, &k->vt)
				 : cpn_vtable_seeded(&k->vt, c->vs_rows, c->vs_dim, c->seed);
		if (rc) {
			snprintf(err, errlen, "vsearch table %s: %s",
				 c->vs_table ? c->vs_table : "(seeded)", strerror(errno));
			return -1;
		}
		k->have_vt = 1;
		if (k->vt.rows < 1 || k->vt.dim < 1 ||
		    (size_t)k->vt.dim * 4 + 4 > CPN_WORKER_MAX_DATAGRAM_PAYLOAD) {
			snprintf(err, errlen,
				 "vsearch table: empty, or a query does not fit a "
				 "datagram");
			return -1;
		}
		k->req_len = 4 + (uint32_t)k->vt.dim * 4;
	}
	return 0;
}

int wk_kernels_open(struct wk_kernels *k, const struct wk_kernel_cfg *c, char *err, size_t errlen)
{
	memset(k, 0, sizeof(*k));
	k->c = *c;
	k->h = (struct cpn_worker_handler){
	    .kernel = wk_kernel_name(c->kernel),
	    .backend = "none",
	    .device = k->device,
	    .user = k,
	    .payload_ok = payload_ok,
	    .slot_open = slot_open,
	    .run = run,
	    .slot_close = slot_close,
	};
	snprintf(k->device, sizeof(k->device), "none");
	if (c->kernel == WK_K_SYNTH) {
		/* The first batches are the phase's, when there is one. */
		k->h.svc_hint_ns =
		    (uint64_t)(synth_mean_us(c->phase_ms ? &c->phase : &c->svc) * 1000);
		if (c->phase_ms)
			k->phase_end_ns = cpn_now_ns() + (uint64_t)c->phase_ms * 1000000;
	}
	if (c->kernel != WK_K_MLP && c->kernel != WK_K_VSEARCH)
		return 0;
	if (model_setup(k, err, errlen))
		return -1;
	k->ops = cpn_backend_pick(c->backend, NULL, err, errlen);
	if (!k->ops) {
		if (!*err)
			snprintf(err, errlen, "no %s backend", c->backend);
		return -1;
	}
	/* "auto" that fell back to the CPU says why in err: worth a line. */
	if (*err)
		fprintf(stderr, "cpn-worker: CUDA not used: %s\n", err);
	*err = 0;
	k->h.backend = k->ops->name;
	k->h.warm = warm;
	return 0;
}

void wk_kernels_close(struct wk_kernels *k)
{
	if (k->have_mlp)
		cpn_mlp_free(&k->mlp);
	if (k->have_vt)
		cpn_vtable_free(&k->vt);
	k->have_mlp = k->have_vt = 0;
}
