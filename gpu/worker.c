// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-worker: answers cpn REQUESTs with a compute kernel run in dynamic
 * batches, and reports its load to the routers: a node of libcpn's worker
 * library (cpn/worker.h) around the built-in kernels (worker_kernels.h) or
 * the HTTP bridge to a local inference server (kernel_http.h).
 *
 * Lifecycle: SIGTERM or SIGINT sets DRAINING (every REPLY, BUSY, PROBE_ACK
 * and LOAD from then on carries it), new requests are answered
 * BUSY/DRAINING, the queue and the running batches are finished and
 * answered, a last LOAD with DRAINING goes to every router, and the worker
 * exits 0. A second signal, a second or more after the first, stops after
 * the running batches: what is still queued is answered BUSY/DRAINING and
 * the exit status is 1.
 * Bad arguments: usage, exit 2. A failure at run time: the reason, exit 1.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpn/worker.h"
#include "worker_kernels.h"
#include "kernel_http.h"
#include "cpn_util.h"

#define PROG "cpn-worker"

static const char usage_text[] =
    "usage: " PROG " --listen IP:PORT --node-id N --router IP:PORT[,IP:PORT...]\n"
    "                  --kernel mlp|vsearch|echo|synthetic|http [options]\n"
    "\n"
    "  --listen IP:PORT       where requests arrive ([IPV6]:PORT for IPv6); every reply,\n"
    "                         PROBE_ACK and LOAD leaves from here too\n"
    "  --node-id N            this node's id (1..65535), as the routers know it\n"
    "  --router LIST          routers' control ports: LOAD heartbeats go to each\n"
    "  --kernel K             mlp, vsearch, echo (payload back), synthetic (sleeps),\n"
    "                         http (the payload POSTed to --upstream)\n"
    "  --backend B            auto (default), cuda or cpu: mlp and vsearch\n"
    "  --max-batch B          largest batch (default 8, at most 4096)\n"
    "  --max-delay-us D       a batch closes when its oldest request waited D us\n"
    "                         (default 500), or at B requests\n"
    "  --capacity C           batch slots executing at once, each with its own backend\n"
    "                         (default 1); reported to routers as capacity C\n"
    "  --advertise-capacity N report capacity N to the routers instead of C (0..65535;\n"
    "                         default 0: C): N > C over-commits the node, which is\n"
    "                         then sent more than its slots serve\n"
    "  --queue N              requests waiting at most (default 4096); beyond: BUSY\n"
    "  --metrics ADDR:PORT    serve Prometheus /metrics there\n"
    "  --load-interval-ms MS  LOAD heartbeat period (default 50)\n"
    "  --key HEX32            sign REPLY, BUSY, LOAD and PROBE_ACK with this node key\n"
    "  --join-key HEX32       the routers' auto_join key: the node key, and the join tag\n"
    "                         over this node's address on every LOAD\n"
    "  --hop-key HEX32        the routers' hop key: answer only requests a router steered\n"
    "                         here (valid hop tag), once each, while fresh\n"
    "  --freshness-ms MS      window of stamps and of the replay cache (default 2000)\n"
    "  --payload-key TENANT:HEX64  open the tenant's sealed requests (end to end,\n"
    "                         XChaCha20-Poly1305) and seal their replies; repeatable\n"
    "  --tokens RULE          when a reply carries an idle token for its router\n"
    "                         (policy jiq): adapt (default), idle (a slot is free),\n"
    "                         below:T (at most T-1 wait beyond the slots), off\n"
    "  --liveness-ms MS       LOAD a router only when nothing went to it for MS (its\n"
    "                         services' stale_ms must be longer; default 0: every\n"
    "                         --load-interval-ms)\n"
    "  --delay-us D           hold every answer D us before sending it: emulated path\n"
    "                         delay, not counted in worker_us (default 0)\n"
    "  --max-message BYTES    largest large message (fragments) taken: beyond, REPLY\n"
    "                         too large (default 4M; K, M, G suffixes)\n"
    "  --frag-timeout-ms MS   a large request without new fragments, or a large reply\n"
    "                         without acks, for MS is dropped (default 2000)\n"
    "  --frag-client-budget BYTES  large requests being reassembled per client\n"
    "                         (address and port; default 8M); beyond: BUSY\n"
    "  --frag-budget BYTES    large messages held at once (default 64M); beyond: BUSY\n"
    "  --seed S               seed of --mlp-dims, --vs-rows and synthetic draws (default 1)\n"
    "  mlp:        --mlp-model FILE | --mlp-dims IN,H1,...,OUT (default 256,512,256,16)\n"
    "  vsearch:    --vs-table FILE | --vs-rows R --vs-dim D (default 10000 x 128)\n"
    "  synthetic:  --svc fixed:US | exp:MEAN_US | bimodal:US1,US2,P (P: share of US2;\n"
    "              default fixed:1000); a batch sleeps the sum of its requests' draws,\n"
    "              replies echo the payload\n"
    "              --svc-phase MS:SPEC  for the first MS ms after start, draw from\n"
    "              SPEC (as --svc) instead: a node that is slow, then recovers\n" KH_USAGE;

/* What the command line sets: the node (the library's configuration), and
 * the kernel it runs.
 */
struct wk_opts {
	struct cpn_worker_config *node;
	struct wk_kernel_cfg k;
	int http; /* --kernel http: the bridge, with these options */
	struct kh_cfg h;
};

/* ---- options ----------------------------------------------------------- */

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", usage_text);
	return -1;
}

static int parse_int(const char *opt, const char *s, long long min, long long max, int *out)
{
	uint64_t v;

	if (min < 0 || cpn_parse_u64(s, (uint64_t)min, (uint64_t)max, &v))
		return usage_error("%s wants an integer in %lld..%lld, not '%s'", opt, min, max, s);
	*out = (int)v;
	return 0;
}

/* "256,512,16": 2..CPN_MLP_MAX_LAYERS+1 sizes; each layer's vector must fit
 * a datagram at the ends.
 */
static int parse_dims(const char *s, struct wk_opts *o)
{
	char *copy = strdup(s), *save = NULL, *tok;
	int n = 0, rc = 0;

	if (!copy)
		return usage_error("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (n > CPN_MLP_MAX_LAYERS || cpn_parse_u64(tok, 1, 1 << 16, &v)) {
			rc = -1;
			break;
		}
		o->k.mlp_dims[n++] = (int)v;
	}
	free(copy);
	if (rc || n < 2)
		return usage_error("--mlp-dims wants 2..%d sizes, 1..65536 each, like "
				   "256,512,16; not '%s'",
				   CPN_MLP_MAX_LAYERS + 1, s);
	o->k.mlp_layers = n - 1;
	return 0;
}

/* fixed:US, exp:MEAN_US or bimodal:US1,US2,P into *d: 0, or -1 (*d may
 * be half written).
 */
static int svc_spec(const char *s, struct wk_svc *d)
{
	char *end;
	const char *p;

	errno = 0;
	if (!strncmp(s, "fixed:", 6) || !strncmp(s, "exp:", 4)) {
		d->dist = s[0] == 'f' ? WK_D_FIXED : WK_D_EXP;
		p = strchr(s, ':') + 1;
		d->us[0] = strtod(p, &end);
		if (errno || end == p || *end || !(d->us[0] >= 0 && d->us[0] <= 1e9))
			return -1;
		return 0;
	}
	if (!strncmp(s, "bimodal:", 8)) {
		d->dist = WK_D_BIMODAL;
		p = s + 8;
		for (int i = 0; i < 3; i++) {
			double v = strtod(p, &end);

			if (errno || end == p || *end != (i < 2 ? ',' : 0))
				return -1;
			if (i < 2) {
				if (!(v >= 0 && v <= 1e9))
					return -1;
				d->us[i] = v;
			} else {
				if (!(v >= 0 && v <= 1))
					return -1;
				d->p = v;
			}
			p = end + 1;
		}
		return 0;
	}
	return -1;
}

#define SVC_SPECS "fixed:US, exp:MEAN_US or bimodal:US1,US2,P (0 <= US <= 1e9, 0 <= P <= 1)"

static int parse_svc(const char *s, struct wk_opts *o)
{
	if (svc_spec(s, &o->k.svc))
		return usage_error("--svc wants " SVC_SPECS "; not '%s'", s);
	return 0;
}

/* MS:SPEC, 1 <= MS <= 86400000 (a day). */
static int parse_svc_phase(const char *s, struct wk_opts *o)
{
	const char *colon = strchr(s, ':');
	char ms[16];
	uint64_t v;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(ms))
		goto bad;
	memcpy(ms, s, (size_t)(colon - s));
	ms[colon - s] = 0;
	if (cpn_parse_u64(ms, 1, 86400000, &v) || svc_spec(colon + 1, &o->k.phase))
		goto bad;
	o->k.phase_ms = (unsigned)v;
	return 0;
bad:
	return usage_error("--svc-phase wants MS:SPEC, 1 <= MS <= 86400000, SPEC one of " SVC_SPECS
			   "; not '%s'",
			   s);
}

enum {
	O_NODE_OPT = 1, /* an option of the node: to the library by its name */
	O_HTTP_OPT,	/* an option of the HTTP bridge, by its name */
	O_KERNEL = 256,
	O_BACKEND,
	O_MLP_MODEL,
	O_MLP_DIMS,
	O_SEED,
	O_VS_TABLE,
	O_VS_ROWS,
	O_VS_DIM,
	O_SVC,
	O_SVC_PHASE,
	O_HELP,
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, O_NODE_OPT},
    {"node-id", required_argument, NULL, O_NODE_OPT},
    {"router", required_argument, NULL, O_NODE_OPT},
    {"max-batch", required_argument, NULL, O_NODE_OPT},
    {"max-delay-us", required_argument, NULL, O_NODE_OPT},
    {"capacity", required_argument, NULL, O_NODE_OPT},
    {"advertise-capacity", required_argument, NULL, O_NODE_OPT},
    {"queue", required_argument, NULL, O_NODE_OPT},
    {"metrics", required_argument, NULL, O_NODE_OPT},
    {"load-interval-ms", required_argument, NULL, O_NODE_OPT},
    {"key", required_argument, NULL, O_NODE_OPT},
    {"join-key", required_argument, NULL, O_NODE_OPT},
    {"hop-key", required_argument, NULL, O_NODE_OPT},
    {"freshness-ms", required_argument, NULL, O_NODE_OPT},
    {"payload-key", required_argument, NULL, O_NODE_OPT},
    {"delay-us", required_argument, NULL, O_NODE_OPT},
    {"tokens", required_argument, NULL, O_NODE_OPT},
    {"liveness-ms", required_argument, NULL, O_NODE_OPT},
    {"max-message", required_argument, NULL, O_NODE_OPT},
    {"frag-timeout-ms", required_argument, NULL, O_NODE_OPT},
    {"frag-client-budget", required_argument, NULL, O_NODE_OPT},
    {"frag-budget", required_argument, NULL, O_NODE_OPT},
    {"upstream", required_argument, NULL, O_HTTP_OPT},
    {"upstream-timeout-ms", required_argument, NULL, O_HTTP_OPT},
    {"upstream-metrics", required_argument, NULL, O_HTTP_OPT},
    {"upstream-gauge", required_argument, NULL, O_HTTP_OPT},
    {"upstream-scrape-ms", required_argument, NULL, O_HTTP_OPT},
    {"upstream-content-type", required_argument, NULL, O_HTTP_OPT},
    {"kernel", required_argument, NULL, O_KERNEL},
    {"backend", required_argument, NULL, O_BACKEND},
    {"mlp-model", required_argument, NULL, O_MLP_MODEL},
    {"mlp-dims", required_argument, NULL, O_MLP_DIMS},
    {"seed", required_argument, NULL, O_SEED},
    {"vs-table", required_argument, NULL, O_VS_TABLE},
    {"vs-rows", required_argument, NULL, O_VS_ROWS},
    {"vs-dim", required_argument, NULL, O_VS_DIM},
    {"svc", required_argument, NULL, O_SVC},
    {"svc-phase", required_argument, NULL, O_SVC_PHASE},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

/* 0: run; 1: --help done; -1: usage error (printed). o->node is set
 * (NULL only when out of memory).
 */
static int parse_args(int argc, char **argv, struct wk_opts *o)
{
	int have_listen = 0, have_node = 0, have_router = 0, have_kernel = 0, have_dims = 0;
	int have_vs = 0, have_seed = 0, have_svc = 0, have_backend = 0, have_http = 0, c, idx;
	char herr[256];
	uint64_t u;
	const char *dims = "256,512,256,16";

	memset(o, 0, sizeof(*o));
	o->node = cpn_worker_config_new();
	if (!o->node || kh_cfg_init(&o->h))
		return usage_error("out of memory");
	o->k.backend = "auto";
	o->k.seed = 1;
	o->k.vs_rows = 10000;
	o->k.vs_dim = 128;
	o->k.svc.dist = WK_D_FIXED;
	o->k.svc.us[0] = 1000;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", long_opts, &idx)) != -1) {
		switch (c) {
		case O_NODE_OPT: {
			const char *name = long_opts[idx].name;

			if (cpn_worker_config_set(o->node, name, optarg))
				return usage_error("--%s", cpn_worker_config_error(o->node));
			have_listen |= !strcmp(name, "listen");
			have_node |= !strcmp(name, "node-id");
			have_router |= !strcmp(name, "router");
			/* The bridge refuses a body the node would not send. */
			if (!strcmp(name, "max-message") &&
			    kh_cfg_set(&o->h, name, optarg, herr, sizeof(herr)))
				return usage_error("--%s", herr);
			break;
		}
		case O_HTTP_OPT:
			if (kh_cfg_set(&o->h, long_opts[idx].name, optarg, herr, sizeof(herr)))
				return usage_error("--%s", herr);
			have_http = 1;
			break;
		case O_KERNEL:
			if (!strcmp(optarg, "mlp"))
				o->k.kernel = WK_K_MLP;
			else if (!strcmp(optarg, "vsearch"))
				o->k.kernel = WK_K_VSEARCH;
			else if (!strcmp(optarg, "echo"))
				o->k.kernel = WK_K_ECHO;
			else if (!strcmp(optarg, "synthetic"))
				o->k.kernel = WK_K_SYNTH;
			else if (strcmp(optarg, "http"))
				return usage_error("unknown kernel '%s'", optarg);
			o->http = !strcmp(optarg, "http");
			have_kernel = 1;
			break;
		case O_BACKEND:
			if (strcmp(optarg, "auto") && strcmp(optarg, "cuda") &&
			    strcmp(optarg, "cpu"))
				return usage_error("--backend is auto, cuda or cpu, not '%s'",
						   optarg);
			o->k.backend = optarg;
			have_backend = 1;
			break;
		case O_MLP_MODEL:
			o->k.mlp_model = optarg;
			break;
		case O_MLP_DIMS:
			dims = optarg;
			have_dims = 1;
			break;
		case O_SEED:
			if (cpn_parse_u64(optarg, 0, UINT64_MAX, &u))
				return usage_error("--seed wants an unsigned integer");
			o->k.seed = u;
			have_seed = 1;
			break;
		case O_VS_TABLE:
			o->k.vs_table = optarg;
			break;
		case O_VS_ROWS:
			if (parse_int("--vs-rows", optarg, 1, 1 << 26, &o->k.vs_rows))
				return -1;
			have_vs = 1;
			break;
		case O_VS_DIM:
			if (parse_int("--vs-dim", optarg, 1, 16000, &o->k.vs_dim))
				return -1;
			have_vs = 1;
			break;
		case O_SVC:
			if (parse_svc(optarg, o))
				return -1;
			have_svc = 1;
			break;
		case O_SVC_PHASE:
			if (parse_svc_phase(optarg, o))
				return -1;
			have_svc = 1;
			break;
		case O_HELP:
			fputs(usage_text, stdout);
			return 1;
		default:
			return usage_error("unknown option or missing value: '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!have_listen || !have_node || !have_router || !have_kernel)
		return usage_error("--listen, --node-id, --router and --kernel are required");
	if (cpn_worker_config_check(o->node))
		return usage_error("--%s", cpn_worker_config_error(o->node));
	if (!o->http && have_http)
		return usage_error("--upstream and --upstream-* are for --kernel http");
	if (o->http) {
		if (have_backend || have_seed || have_dims || o->k.mlp_model || o->k.vs_table ||
		    have_vs || have_svc)
			return usage_error(
			    "--kernel http takes none of --backend, --seed, --mlp-*, "
			    "--vs-*, --svc and --svc-phase");
		if (kh_cfg_check(&o->h, herr, sizeof(herr)))
			return usage_error("%s", herr);
		return 0;
	}
	if (o->k.kernel != WK_K_MLP && (o->k.mlp_model || have_dims))
		return usage_error("--mlp-model and --mlp-dims are for --kernel mlp");
	if (o->k.kernel != WK_K_VSEARCH && (o->k.vs_table || have_vs))
		return usage_error("--vs-table, --vs-rows and --vs-dim are for --kernel vsearch");
	if (o->k.kernel != WK_K_SYNTH && have_svc)
		return usage_error("--svc and --svc-phase are for --kernel synthetic");
	if (have_seed &&
	    ((o->k.kernel == WK_K_MLP && o->k.mlp_model) ||
	     (o->k.kernel == WK_K_VSEARCH && o->k.vs_table) || o->k.kernel == WK_K_ECHO))
		return usage_error("--seed has nothing to seed here");
	if (o->k.mlp_model && have_dims)
		return usage_error("--mlp-model or --mlp-dims, not both");
	if (o->k.vs_table && have_vs)
		return usage_error("--vs-table or --vs-rows/--vs-dim, not both");
	if (o->k.kernel == WK_K_MLP && !o->k.mlp_model) {
		if (parse_dims(dims, o))
			return -1;
		if ((size_t)o->k.mlp_dims[0] * 4 > CPN_WORKER_MAX_DATAGRAM_PAYLOAD ||
		    (size_t)o->k.mlp_dims[o->k.mlp_layers] * 4 > CPN_WORKER_MAX_DATAGRAM_PAYLOAD)
			return usage_error("--mlp-dims: input and output must fit a datagram "
					   "(at most %d floats)",
					   CPN_WORKER_MAX_DATAGRAM_PAYLOAD / 4);
	}
	if (o->k.kernel == WK_K_VSEARCH && !o->k.vs_table &&
	    (size_t)o->k.vs_dim * 4 + 4 > CPN_WORKER_MAX_DATAGRAM_PAYLOAD)
		return usage_error("--vs-dim: a query must fit a datagram");
	return 0;
}

/* ---- lifecycle --------------------------------------------------------- */

/* SIGTERM or SIGINT drains (cpn_worker_run): see the top of this file. */
int main(int argc, char **argv)
{
	struct wk_opts o;
	struct wk_kernels *k = NULL;
	struct kh_bridge *hb = NULL;
	struct cpn_worker *w = NULL;
	char err[512] = "", line[512];
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc) {
		cpn_worker_config_free(o.node);
		kh_cfg_free(&o.h);
		return rc > 0 ? 0 : 2;
	}
	rc = 1;
	if (o.http) {
		if (kh_open(&hb, &o.h, err, sizeof(err)) ||
		    cpn_worker_open(&w, o.node, kh_handler(hb), err, sizeof(err)))
			goto out;
		goto run;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, sizeof(err), "out of memory");
		goto out;
	}
	if (wk_kernels_open(k, &o.k, err, sizeof(err)) ||
	    cpn_worker_open(&w, o.node, &k->h, err, sizeof(err)))
		goto out;
run:
	cpn_worker_describe(w, line, sizeof(line));
	fprintf(stderr, PROG ": %s\n", line);
	rc = cpn_worker_run(w, PROG);
	if (rc < 0) {
		/* said on stderr by cpn_worker_run */
		rc = 1;
	} else if (!rc) {
		fprintf(stderr, PROG ": drained, exiting\n");
	}
out:
	cpn_worker_close(w);
	if (hb && w)
		kh_log_stats(hb, stderr, PROG);
	kh_close(hb);
	if (k)
		wk_kernels_close(k);
	cpn_worker_config_free(o.node);
	kh_cfg_free(&o.h);
	if (*err)
		fprintf(stderr, PROG ": %s\n", err);
	free(k);
	return rc;
}
