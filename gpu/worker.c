// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-worker: answers cpn REQUESTs with a compute kernel run in dynamic
 * batches, and reports its load to the routers: a node (worker_node.h) around
 * the built-in kernels (worker_kernels.h).
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
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker_kernels.h"
#include "worker_node.h"
#include "cpn_util.h"

#define PROG "cpn-worker"

static const char usage_text[] =
    "usage: " PROG " --listen IP:PORT --node-id N --router IP:PORT[,IP:PORT...]\n"
    "                  --kernel mlp|vsearch|echo|synthetic [options]\n"
    "\n"
    "  --listen IP:PORT       where requests arrive ([IPV6]:PORT for IPv6); every reply,\n"
    "                         PROBE_ACK and LOAD leaves from here too\n"
    "  --node-id N            this node's id (1..65535), as the routers know it\n"
    "  --router LIST          routers' control ports: LOAD heartbeats go to each\n"
    "  --kernel K             mlp, vsearch, echo (payload back), synthetic (sleeps)\n"
    "  --backend B            auto (default), cuda or cpu: mlp and vsearch\n"
    "  --max-batch B          largest batch (default 8, at most 4096)\n"
    "  --max-delay-us D       a batch closes when its oldest request waited D us\n"
    "                         (default 500), or at B requests\n"
    "  --capacity C           batch slots executing at once, each with its own backend\n"
    "                         (default 1); reported to routers as capacity C\n"
    "  --queue N              requests waiting at most (default 4096); beyond: BUSY\n"
    "  --metrics ADDR:PORT    serve Prometheus /metrics there\n"
    "  --load-interval-ms MS  LOAD heartbeat period (default 50)\n"
    "  --key HEX32            sign REPLY, BUSY, LOAD and PROBE_ACK with this node key\n"
    "  --tokens RULE          when a reply carries an idle token for its router\n"
    "                         (policy jiq): adapt (default), idle (a slot is free),\n"
    "                         below:T (at most T-1 wait beyond the slots), off\n"
    "  --liveness-ms MS       LOAD a router only when nothing went to it for MS (its\n"
    "                         services' stale_ms must be longer; default 0: every\n"
    "                         --load-interval-ms)\n"
    "  --delay-us D           hold every answer D us before sending it: emulated path\n"
    "                         delay, not counted in worker_us (default 0)\n"
    "  --seed S               seed of --mlp-dims, --vs-rows and synthetic draws (default 1)\n"
    "  mlp:        --mlp-model FILE | --mlp-dims IN,H1,...,OUT (default 256,512,256,16)\n"
    "  vsearch:    --vs-table FILE | --vs-rows R --vs-dim D (default 10000 x 128)\n"
    "  synthetic:  --svc fixed:US | exp:MEAN_US | bimodal:US1,US2,P (P: share of US2;\n"
    "              default fixed:1000); a batch sleeps the sum of its requests' draws,\n"
    "              replies echo the payload\n";

/* What the command line sets: the node, and the kernel it runs. */
struct wk_opts {
	struct wk_node_cfg node;
	struct wk_kernel_cfg k;
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

static int parse_svc(const char *s, struct wk_opts *o)
{
	char *end;
	const char *p;

	errno = 0;
	if (!strncmp(s, "fixed:", 6) || !strncmp(s, "exp:", 4)) {
		o->k.dist = s[0] == 'f' ? WK_D_FIXED : WK_D_EXP;
		p = strchr(s, ':') + 1;
		o->k.svc_us[0] = strtod(p, &end);
		if (errno || end == p || *end || !(o->k.svc_us[0] >= 0 && o->k.svc_us[0] <= 1e9))
			goto bad;
		return 0;
	}
	if (!strncmp(s, "bimodal:", 8)) {
		o->k.dist = WK_D_BIMODAL;
		p = s + 8;
		for (int i = 0; i < 3; i++) {
			double v = strtod(p, &end);

			if (errno || end == p || *end != (i < 2 ? ',' : 0))
				goto bad;
			if (i < 2) {
				if (!(v >= 0 && v <= 1e9))
					goto bad;
				o->k.svc_us[i] = v;
			} else {
				if (!(v >= 0 && v <= 1))
					goto bad;
				o->k.svc_p = v;
			}
			p = end + 1;
		}
		return 0;
	}
bad:
	return usage_error("--svc wants fixed:US, exp:MEAN_US or bimodal:US1,US2,P "
			   "(0 <= US <= 1e9, 0 <= P <= 1); not '%s'",
			   s);
}

enum {
	O_LISTEN = 256,
	O_NODE,
	O_ROUTER,
	O_KERNEL,
	O_BACKEND,
	O_MAX_BATCH,
	O_MAX_DELAY,
	O_CAPACITY,
	O_QUEUE,
	O_METRICS,
	O_LOAD_INT,
	O_KEY,
	O_DELAY,
	O_TOKENS,
	O_LIVENESS,
	O_MLP_MODEL,
	O_MLP_DIMS,
	O_SEED,
	O_VS_TABLE,
	O_VS_ROWS,
	O_VS_DIM,
	O_SVC,
	O_HELP,
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, O_LISTEN},
    {"node-id", required_argument, NULL, O_NODE},
    {"router", required_argument, NULL, O_ROUTER},
    {"kernel", required_argument, NULL, O_KERNEL},
    {"backend", required_argument, NULL, O_BACKEND},
    {"max-batch", required_argument, NULL, O_MAX_BATCH},
    {"max-delay-us", required_argument, NULL, O_MAX_DELAY},
    {"capacity", required_argument, NULL, O_CAPACITY},
    {"queue", required_argument, NULL, O_QUEUE},
    {"metrics", required_argument, NULL, O_METRICS},
    {"load-interval-ms", required_argument, NULL, O_LOAD_INT},
    {"key", required_argument, NULL, O_KEY},
    {"delay-us", required_argument, NULL, O_DELAY},
    {"tokens", required_argument, NULL, O_TOKENS},
    {"liveness-ms", required_argument, NULL, O_LIVENESS},
    {"mlp-model", required_argument, NULL, O_MLP_MODEL},
    {"mlp-dims", required_argument, NULL, O_MLP_DIMS},
    {"seed", required_argument, NULL, O_SEED},
    {"vs-table", required_argument, NULL, O_VS_TABLE},
    {"vs-rows", required_argument, NULL, O_VS_ROWS},
    {"vs-dim", required_argument, NULL, O_VS_DIM},
    {"svc", required_argument, NULL, O_SVC},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static int parse_routers(const char *s, struct wk_opts *o)
{
	char *copy = strdup(s), *save = NULL, *tok;
	int rc = 0;

	if (!copy)
		return usage_error("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->node.n_routers >= WK_MAX_ROUTERS) {
			rc = usage_error("at most %d routers", WK_MAX_ROUTERS);
			break;
		}
		if (wk_addr_parse(tok, &o->node.routers[o->node.n_routers++])) {
			rc =
			    usage_error("--router: bad address '%s' (IP:PORT or [IPV6]:PORT)", tok);
			break;
		}
	}
	free(copy);
	return rc;
}

/* 0: run; 1: --help done; -1: usage error (printed). */
static int parse_args(int argc, char **argv, struct wk_opts *o)
{
	int have_listen = 0, have_node = 0, have_kernel = 0, have_dims = 0, have_vs = 0;
	int have_seed = 0, have_svc = 0, v, c;
	uint64_t u;
	const char *dims = "256,512,256,16";

	memset(o, 0, sizeof(*o));
	o->k.backend = "auto";
	o->node.max_batch = 8;
	o->node.max_delay_us = 500;
	o->node.capacity = 1;
	o->node.queue_len = 4096;
	o->node.load_interval_ms = 50;
	o->node.token_rule = WK_TOKEN_ADAPT;
	o->k.seed = 1;
	o->k.vs_rows = 10000;
	o->k.vs_dim = 128;
	o->k.dist = WK_D_FIXED;
	o->k.svc_us[0] = 1000;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN:
			if (wk_addr_parse(optarg, &o->node.listen))
				return usage_error("--listen: bad address '%s'", optarg);
			have_listen = 1;
			break;
		case O_NODE:
			if (parse_int("--node-id", optarg, 1, 65535, &v))
				return -1;
			o->node.node_id = (uint16_t)v;
			have_node = 1;
			break;
		case O_ROUTER:
			if (parse_routers(optarg, o))
				return -1;
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
			else
				return usage_error("unknown kernel '%s'", optarg);
			have_kernel = 1;
			break;
		case O_BACKEND:
			if (strcmp(optarg, "auto") && strcmp(optarg, "cuda") &&
			    strcmp(optarg, "cpu"))
				return usage_error("--backend is auto, cuda or cpu, not '%s'",
						   optarg);
			o->k.backend = optarg;
			break;
		case O_MAX_BATCH:
			if (parse_int("--max-batch", optarg, 1, WK_MAX_BATCH, &o->node.max_batch))
				return -1;
			break;
		case O_MAX_DELAY:
			if (parse_int("--max-delay-us", optarg, 0, WK_MAX_DELAY_US, &v))
				return -1;
			o->node.max_delay_us = (unsigned)v;
			break;
		case O_CAPACITY:
			if (parse_int("--capacity", optarg, 1, WK_MAX_SLOTS, &o->node.capacity))
				return -1;
			break;
		case O_QUEUE:
			if (parse_int("--queue", optarg, 1, 65535, &o->node.queue_len))
				return -1;
			break;
		case O_METRICS:
			o->node.metrics = optarg;
			break;
		case O_LOAD_INT:
			if (parse_int("--load-interval-ms", optarg, 1, 60000, &v))
				return -1;
			o->node.load_interval_ms = (unsigned)v;
			break;
		case O_KEY:
			if (cpn_key_parse(optarg, o->node.key))
				return usage_error("--key wants 32 hex digits");
			o->node.have_key = 1;
			break;
		case O_TOKENS:
			if (!strcmp(optarg, "adapt"))
				o->node.token_rule = WK_TOKEN_ADAPT;
			else if (!strcmp(optarg, "idle"))
				o->node.token_rule = 1;
			else if (!strcmp(optarg, "off"))
				o->node.token_rule = WK_TOKEN_OFF;
			else if (!strncmp(optarg, "below:", 6) &&
				 !cpn_parse_u64(optarg + 6, 1, 65535, &u))
				o->node.token_rule = (int)u;
			else
				return usage_error("--tokens is adapt, idle, below:T (1..65535) or "
						   "off, not '%s'",
						   optarg);
			break;
		case O_LIVENESS:
			if (parse_int("--liveness-ms", optarg, 0, 600000, &v))
				return -1;
			o->node.liveness_ms = (unsigned)v;
			break;
		case O_DELAY:
			if (parse_int("--delay-us", optarg, 0, WK_MAX_DELAY_US, &v))
				return -1;
			o->node.delay_us = (unsigned)v;
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
	if (!have_listen || !have_node || !o->node.n_routers || !have_kernel)
		return usage_error("--listen, --node-id, --router and --kernel are required");
	for (int i = 0; i < o->node.n_routers; i++)
		if (!wk_addr_reachable(&o->node.listen, &o->node.routers[i]))
			return usage_error("--router: an IPv%c router needs an IPv%c --listen%s",
					   o->node.listen.ss.ss_family == AF_INET ? '6' : '4',
					   o->node.listen.ss.ss_family == AF_INET ? '6' : '4',
					   o->node.listen.ss.ss_family == AF_INET ? ""
										  : " (or [::])");
	if (o->k.kernel != WK_K_MLP && (o->k.mlp_model || have_dims))
		return usage_error("--mlp-model and --mlp-dims are for --kernel mlp");
	if (o->k.kernel != WK_K_VSEARCH && (o->k.vs_table || have_vs))
		return usage_error("--vs-table, --vs-rows and --vs-dim are for --kernel vsearch");
	if (o->k.kernel != WK_K_SYNTH && have_svc)
		return usage_error("--svc is for --kernel synthetic");
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
		if ((size_t)o->k.mlp_dims[0] * 4 + WK_HDR_MAX > WK_MAX_UDP ||
		    (size_t)o->k.mlp_dims[o->k.mlp_layers] * 4 + WK_HDR_MAX > WK_MAX_UDP)
			return usage_error("--mlp-dims: input and output must fit a datagram "
					   "(at most %d floats)",
					   (WK_MAX_UDP - WK_HDR_MAX) / 4);
	}
	if (o->k.kernel == WK_K_VSEARCH && !o->k.vs_table &&
	    (size_t)o->k.vs_dim * 4 + 4 + WK_HDR_MAX > WK_MAX_UDP)
		return usage_error("--vs-dim: a query must fit a datagram");
	return 0;
}

/* ---- lifecycle --------------------------------------------------------- */

static void describe(const struct wk_opts *o, const struct wk_handler *h)
{
	char l[INET6_ADDRSTRLEN + 8];

	wk_addr_str(&o->node.listen, l, sizeof(l));
	fprintf(stderr,
		PROG ": node %u on %s: kernel %s, backend %s (%s), %d slot(s) x batch %d "
		     "(max delay %u us), queue %d, %d router(s)%s%s\n",
		o->node.node_id, l, h->kernel, h->backend, h->device, o->node.capacity,
		o->node.max_batch, o->node.max_delay_us, o->node.queue_len, o->node.n_routers,
		o->node.have_key ? ", signed" : "", o->node.delay_us ? ", replies held back" : "");
}

/* Wait for signals; returns the exit status once drained or failed. A
 * repeat of the signal within WK_SIGNAL_REPEAT_NS of the first is the same
 * request (a wrapper such as timeout(1), or a terminal's Ctrl-C, may deliver
 * it to the process and to its group); a later one stops without finishing.
 */
#define WK_SIGNAL_REPEAT_NS 1000000000ull

/* SIGTERM and SIGINT are caught by a handler, not blocked and waited for:
 * libraries start threads of their own before main (OpenBLAS does), with
 * the signals unblocked, and a process-directed signal may land on any of
 * them. The handler only writes the signal's number to a pipe.
 */
static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	int e = errno;
	unsigned char b = (unsigned char)sig;

	if (write(sig_pipe[1], &b, 1) < 0) {
		/* full pipe: signals enough are pending already */
	}
	errno = e;
}

static int signals_catch(void)
{
	struct sigaction sa;

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK))
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL))
		return -1;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void signals_release(void)
{
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	for (int i = 0; i < 2; i++)
		if (sig_pipe[i] >= 0)
			close(sig_pipe[i]);
}

static int run(struct wk_node *n)
{
	struct pollfd p = {.fd = sig_pipe[0], .events = POLLIN};
	uint64_t first = 0;
	const char *why;
	int rc = 0;

	for (;;) {
		unsigned char sigs[16];
		ssize_t got = 0;

		/* Bounded wait: a thread's failure and the end of the drain
		 * are looked at every 100 ms.
		 */
		if (poll(&p, 1, 100) > 0)
			got = read(sig_pipe[0], sigs, sizeof(sigs));
		for (ssize_t k = 0; k < got; k++) {
			if (!first) {
				first = cpn_now_ns();
				fprintf(stderr, PROG ": %s: draining\n", strsignal(sigs[k]));
				wk_node_drain(n);
			} else if (!wk_node_abandoned(n) &&
				   cpn_now_ns() - first >= WK_SIGNAL_REPEAT_NS) {
				fprintf(stderr,
					PROG ": %s again: stopping without finishing the "
					     "queue\n",
					strsignal(sigs[k]));
				wk_node_abandon(n);
				rc = 1;
			}
		}
		why = wk_node_failed(n);
		if (why && !wk_node_abandoned(n)) {
			fprintf(stderr, PROG ": %s\n", why);
			wk_node_abandon(n);
			rc = 1;
		}
		if (wk_node_done(n))
			return rc;
	}
}

int main(int argc, char **argv)
{
	struct wk_opts o;
	struct wk_kernels *k = NULL;
	struct wk_node *n = NULL;
	char err[512] = "";
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc)
		return rc > 0 ? 0 : 2;
	rc = 1;
	k = calloc(1, sizeof(*k));
	n = calloc(1, sizeof(*n));
	if (!k || !n) {
		snprintf(err, sizeof(err), "out of memory");
		goto out_free;
	}
	if (signals_catch()) {
		snprintf(err, sizeof(err), "cannot catch signals: %s", strerror(errno));
		goto out_free;
	}
	if (wk_kernels_open(k, &o.k, err, sizeof(err)) ||
	    wk_node_open(n, &o.node, &k->h, err, sizeof(err)))
		goto out;
	describe(&o, &k->h);
	if (wk_node_start(n, err, sizeof(err)))
		goto out;
	rc = run(n);
out:
	wk_node_stop(n, !*err);
	wk_node_close(n);
	wk_kernels_close(k);
out_free:
	signals_release();
	if (*err)
		fprintf(stderr, PROG ": %s\n", err);
	else if (!rc)
		fprintf(stderr, PROG ": drained, exiting\n");
	free(n);
	free(k);
	return rc;
}
