// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The HTTP bridge (kernel_http.h): each batch slot POSTs its requests'
 * payloads to the upstream through a curl multi handle, all of a batch at
 * once; a thread scrapes the upstream's Prometheus gauge for the load
 * reports.
 */
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel_http.h"
#include "cpn/proto.h"
#include "cpn_util.h"

#define PROG "cpn-worker"

#define KH_LOAD(p)	 __atomic_load_n((p), __ATOMIC_RELAXED)
#define KH_ADD(p, v)	 __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define KH_STORE(p, v)	 __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define KH_ACQUIRE(p)	 __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define KH_SCRAPE_MAX	 (16u << 20) /* bytes of a metrics page read at most */
#define KH_SCRAPE_KEEP	 3	     /* periods a value outlives its scrape */
#define KH_LOG_EVERY_NS	 (10ull * 1000000000ull)
#define KH_SVC_HINT_NS	 (10ull * 1000000ull)
#define KH_TIMEOUT_MAX	 3600000u
#define KH_SCRAPE_MS_MIN 10u
#define KH_SCRAPE_MS_MAX 600000u

/* What is said on stderr at most once per KH_LOG_EVERY_NS each. */
enum kh_log {
	KH_LOG_HTTP,
	KH_LOG_CONN,
	KH_LOG_TIMEOUT,
	KH_LOG_LARGE,
	KH_LOG_OTHER,
	KH_LOG_SCRAPE,
	KH_LOG_N,
};

struct kh_bridge {
	struct kh_cfg c;
	struct cpn_worker_handler h;
	struct curl_slist *headers;
	char device[256]; /* the upstream's scheme://host:port, for logs and metrics */
	char mdev[512];	  /* the metrics URL without user or query, for logs */
	int curl_up;

	/* counters (atomics) */
	uint64_t requests, ok, http_errors, conn_errors, timeouts, too_large, other_errors;
	uint64_t inflight, inflight_peak;
	uint64_t scrapes, scrape_errors;
	uint64_t log_at[KH_LOG_N];

	/* The gauge: its value, good until gauge_until (cpn_now_ns). */
	uint32_t gauge;
	uint64_t gauge_until;
	int scrape_failing; /* the scrape thread's own */

	pthread_t thr;
	int have_thr, stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* One request's transfer in a slot. */
struct kh_call {
	CURL *e;
	char *buf;
	size_t len, cap, max;
	int too_large, oom, added, done;
	CURLcode res;
	char errbuf[CURL_ERROR_SIZE];
};

struct kh_slot {
	struct kh_bridge *b;
	CURLM *m;
	int n;
	struct kh_call *calls;
};

static int errf(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* ---- options ------------------------------------------------------------- */

int kh_cfg_init(struct kh_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->timeout_ms = KH_DEFAULT_TIMEOUT_MS;
	c->scrape_ms = KH_DEFAULT_SCRAPE_MS;
	c->max_message = KH_DEFAULT_MAX_MESSAGE;
	c->gauge = strdup(KH_DEFAULT_GAUGE);
	c->content_type = strdup(KH_DEFAULT_CONTENT_TYPE);
	if (!c->gauge || !c->content_type) {
		kh_cfg_free(c);
		return -ENOMEM;
	}
	return 0;
}

void kh_cfg_free(struct kh_cfg *c)
{
	if (!c)
		return;
	free(c->upstream);
	free(c->metrics_url);
	free(c->gauge);
	free(c->content_type);
	memset(c, 0, sizeof(*c));
}

static const char *const kh_names[] = {
    "upstream",	      "upstream-timeout-ms", "upstream-metrics",
    "upstream-gauge", "upstream-scrape-ms",  "upstream-content-type",
};

int kh_cfg_known(const char *name)
{
	for (size_t i = 0; i < sizeof(kh_names) / sizeof(kh_names[0]); i++)
		if (!strcmp(name, kh_names[i]))
			return 1;
	return 0;
}

/* An http:// or https:// URL with a host, as libcurl reads it; its
 * "scheme://host[:port]" in dev when asked, and the path too with
 * with_path: never a user, password or query, which may hold secrets.
 */
static int url_check(const char *v, char *why, size_t whylen, char *dev, size_t devlen,
		     int with_path)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	CURLUcode uc;
	CURLU *u;
	int rc = -EINVAL;

	if (strncasecmp(v, "http://", 7) && strncasecmp(v, "https://", 8))
		return errf(why, whylen, -EINVAL, "not an http:// or https:// URL");
	if (strstr(v, ":///"))
		return errf(why, whylen, -EINVAL, "no host");
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return errf(why, whylen, -EINVAL, "a space or control character");
	if (!(u = curl_url()))
		return errf(why, whylen, -ENOMEM, "out of memory");
	uc = curl_url_set(u, CURLUPART_URL, v, 0);
	if (uc) {
		errf(why, whylen, -EINVAL, "%s", curl_url_strerror(uc));
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) || !host[0]) {
		errf(why, whylen, -EINVAL, "no host");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, 0))
		port = NULL;
	if (!with_path || curl_url_get(u, CURLUPART_PATH, &path, 0))
		path = NULL;
	if (dev && devlen)
		snprintf(dev, devlen, "%s://%s%s%s%s", scheme, host, port ? ":" : "",
			 port ? port : "", path ? path : "");
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return rc;
}

static int tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A media type: type/subtype, then parameters of visible characters. */
static int ctype_ok(const char *v)
{
	const char *p = v;

	while (tchar((unsigned char)*p))
		p++;
	if (p == v || *p++ != '/')
		return 0;
	v = p;
	while (tchar((unsigned char)*p))
		p++;
	if (p == v)
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p && *p != ';')
		return 0;
	for (; *p; p++)
		if (((unsigned char)*p < ' ' && *p != '\t') || *p == 0x7f)
			return 0;
	return 1;
}

int kh_prom_name_ok(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == ':'))
			return 0;
	return 1;
}

/* Replace *slot by a copy of v. */
static int set_str(char **slot, const char *v, char *err, size_t errlen)
{
	char *s = strdup(v);

	if (!s)
		return errf(err, errlen, -ENOMEM, "out of memory");
	free(*slot);
	*slot = s;
	return 0;
}

int kh_cfg_set(struct kh_cfg *c, const char *name, const char *value, char *err, size_t errlen)
{
	char why[128];
	uint64_t u;
	int rc;

	if (errlen)
		*err = 0;
	if (!c || !name || !value)
		return errf(err, errlen, -EINVAL, "a name and a value, please");
	if (!strcmp(name, "upstream") || !strcmp(name, "upstream-metrics")) {
		rc = url_check(value, why, sizeof(why), NULL, 0, 0);
		if (rc)
			return errf(err, errlen, rc,
				    "%s: '%s': %s (http://HOST[:PORT]/PATH or https://...)", name,
				    value, why);
		return set_str(!strcmp(name, "upstream") ? &c->upstream : &c->metrics_url, value,
			       err, errlen);
	}
	if (!strcmp(name, "upstream-timeout-ms")) {
		if (cpn_parse_u64(value, 1, KH_TIMEOUT_MAX, &u))
			return errf(err, errlen, -EINVAL, "%s wants ms in 1..%u, not '%s'", name,
				    KH_TIMEOUT_MAX, value);
		c->timeout_ms = (unsigned)u;
		return 0;
	}
	if (!strcmp(name, "upstream-scrape-ms")) {
		if (cpn_parse_u64(value, KH_SCRAPE_MS_MIN, KH_SCRAPE_MS_MAX, &u))
			return errf(err, errlen, -EINVAL, "%s wants ms in %u..%u, not '%s'", name,
				    KH_SCRAPE_MS_MIN, KH_SCRAPE_MS_MAX, value);
		c->scrape_ms = (unsigned)u;
		return 0;
	}
	if (!strcmp(name, "upstream-gauge")) {
		if (!kh_prom_name_ok(value))
			return errf(err, errlen, -EINVAL,
				    "%s wants a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), "
				    "not '%s'",
				    name, value);
		return set_str(&c->gauge, value, err, errlen);
	}
	if (!strcmp(name, "upstream-content-type")) {
		if (!ctype_ok(value))
			return errf(err, errlen, -EINVAL,
				    "%s wants a media type (type/subtype[; parameters]), not '%s'",
				    name, value);
		return set_str(&c->content_type, value, err, errlen);
	}
	if (!strcmp(name, "max-message")) {
		if (cpn_parse_size(value, 1, CPN_FRAG_MAX_TOTAL, &u))
			return errf(err, errlen, -EINVAL,
				    "%s wants bytes in 1..%u (K, M, G: powers of 1024), not '%s'",
				    name, CPN_FRAG_MAX_TOTAL, value);
		c->max_message = (uint32_t)u;
		return 0;
	}
	return errf(err, errlen, -ENOENT, "no option '%s'", name);
}

int kh_cfg_check(const struct kh_cfg *c, char *err, size_t errlen)
{
	if (!c || !c->upstream)
		return errf(err, errlen, -EINVAL, "--kernel http needs --upstream URL");
	return 0;
}

/* ---- Prometheus text ---------------------------------------------------- */

static int name_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static int name_char(int c)
{
	return name_start(c) || (c >= '0' && c <= '9');
}

static const char *skip_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* A quoted string at p ('"'): past its closing quote, or NULL. Its text,
 * unescaped (\\, \", \n), in out when it fits (*fits), NUL-terminated.
 */
static const char *quoted(const char *p, const char *e, char *out, size_t outlen, int *fits)
{
	size_t k = 0;

	*fits = 1;
	for (p++; p < e && *p != '"'; p++) {
		char ch = *p;

		if (ch == '\\') {
			if (++p == e)
				return NULL;
			ch = *p == 'n' ? '\n' : *p;
		}
		if (k + 1 < outlen)
			out[k++] = ch;
		else
			*fits = 0;
	}
	if (outlen)
		out[k] = 0;
	return p < e ? p + 1 : NULL;
}

/* One line [p, e): 1 when it is a series of `name` (its value in *v), 0
 * when another series, a comment or blank, -1 when it cannot be read.
 */
static int prom_line(const char *p, const char *e, const char *name, size_t nlen, double *v)
{
	int have_name = 0, match = 0, fits;
	char buf[256], num[64];
	const char *q;

	p = skip_ws(p, e);
	if (p == e || *p == '#')
		return 0;
	if (name_start((unsigned char)*p)) {
		for (q = p; q < e && name_char((unsigned char)*q); q++)
			;
		have_name = 1;
		match = (size_t)(q - p) == nlen && !memcmp(p, name, nlen);
		p = skip_ws(q, e);
	} else if (*p != '{') {
		return -1;
	}
	if (p < e && *p == '{') {
		for (p++;;) {
			p = skip_ws(p, e);
			if (p == e)
				return -1;
			if (*p == '}')
				break;
			if (*p == '"') {
				/* A quoted name: the metric's (no '=' after it) or a
				 * label's.
				 */
				if (!(p = quoted(p, e, buf, sizeof(buf), &fits)))
					return -1;
				p = skip_ws(p, e);
				if (p == e)
					return -1;
				if (*p != '=') {
					if (have_name)
						return -1;
					have_name = 1;
					match = fits && !strcmp(buf, name);
					goto next;
				}
			} else if (name_start((unsigned char)*p)) {
				while (p < e && name_char((unsigned char)*p))
					p++;
				p = skip_ws(p, e);
				if (p == e || *p != '=')
					return -1;
			} else {
				return -1;
			}
			p = skip_ws(p + 1, e);
			if (p == e || *p != '"' || !(p = quoted(p, e, buf, 0, &fits)))
				return -1;
		next:
			p = skip_ws(p, e);
			if (p < e && *p == ',')
				p++;
			else if (p == e || *p != '}')
				return -1;
		}
		p++;
	}
	if (!have_name)
		return -1;
	/* The value, then perhaps a timestamp (or an OpenMetrics exemplar),
	 * which the sum does not need.
	 */
	p = skip_ws(p, e);
	for (q = p; q < e && *q != ' ' && *q != '\t'; q++)
		;
	if (q == p || (size_t)(q - p) >= sizeof(num))
		return -1;
	memcpy(num, p, (size_t)(q - p));
	num[q - p] = 0;
	{
		char *end;

		*v = strtod(num, &end);
		if (*end)
			return -1;
	}
	return match;
}

int kh_prom_sum(const char *text, size_t len, const char *name, double *sum)
{
	const char *p = text, *e = text + len;
	size_t nlen = strlen(name);
	int found = 0;

	*sum = 0;
	while (p < e) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *le = nl ? nl : e;
		double v;

		if (le > p && le[-1] == '\r')
			le--;
		if (prom_line(p, le, name, nlen, &v) == 1) {
			found++;
			if (!isnan(v))
				*sum += v;
		}
		p = nl ? nl + 1 : e;
	}
	return found;
}

/* ---- logging ---------------------------------------------------------------- */

/* At most once per KH_LOG_EVERY_NS for each kind. */
static void kh_warn(struct kh_bridge *b, enum kh_log k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void kh_warn(struct kh_bridge *b, enum kh_log k, const char *fmt, ...)
{
	uint64_t now = cpn_now_ns(), last = KH_LOAD(&b->log_at[k]);
	va_list ap;
	char line[512];

	if (last && now - last < KH_LOG_EVERY_NS)
		return;
	if (!__atomic_compare_exchange_n(&b->log_at[k], &last, now, 0, __ATOMIC_RELAXED,
					 __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, PROG ": %s\n", line);
}

/* ---- the handler --------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct kh_call *c = arg;
	size_t n = size * nmemb;

	if (n > c->max - c->len) {
		c->too_large = 1;
		return 0;
	}
	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		char *nb;

		while (cap < c->len + n)
			cap = cap > c->max / 2 ? c->max : cap * 2;
		if (!(nb = realloc(c->buf, cap))) {
			c->oom = 1;
			return 0;
		}
		c->buf = nb;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, data, n);
	c->len += n;
	return n;
}

static void slot_close(void *arg)
{
	struct kh_slot *s = arg;

	if (!s)
		return;
	for (int i = 0; s->calls && i < s->n; i++) {
		if (s->calls[i].e)
			curl_easy_cleanup(s->calls[i].e);
		free(s->calls[i].buf);
	}
	free(s->calls);
	if (s->m)
		curl_multi_cleanup(s->m);
	free(s);
}

static void *slot_open(void *user, int slot, int max_batch, char *err, size_t errlen)
{
	struct kh_bridge *b = user;
	struct kh_slot *s = calloc(1, sizeof(*s));
	int bad = 0;

	(void)slot;
	if (!s || max_batch < 1 || !(s->calls = calloc((size_t)max_batch, sizeof(*s->calls))) ||
	    !(s->m = curl_multi_init())) {
		errf(err, errlen, -ENOMEM, "http: out of memory");
		slot_close(s);
		return NULL;
	}
	s->b = b;
	s->n = max_batch;
	/* Keep a connection for every request of a batch between batches. */
	bad |= curl_multi_setopt(s->m, CURLMOPT_MAXCONNECTS, (long)max_batch) != CURLM_OK;
	for (int i = 0; i < max_batch; i++) {
		struct kh_call *c = &s->calls[i];
		CURL *e = curl_easy_init();

		if (!e) {
			slot_close(s);
			errf(err, errlen, -ENOMEM, "http: cannot make a curl handle");
			return NULL;
		}
		c->e = e;
		c->max = b->c.max_message;
		bad |= curl_easy_setopt(e, CURLOPT_URL, b->c.upstream) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, b->headers) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "cpn-worker") != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, c) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, c) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)b->c.timeout_ms) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
		bad |=
		    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
		/* The upstream is near: no proxy from the environment. */
		bad |= curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK;
	}
	if (bad) {
		slot_close(s);
		errf(err, errlen, -EINVAL, "http: libcurl refuses an option");
		return NULL;
	}
	return s;
}

/* The reply of one finished call, and what it counts. */
static void finish(struct kh_bridge *b, struct kh_call *c, struct cpn_worker_reply *rep)
{
	long code = 0;

	if (!c->done) {
		KH_ADD(&b->other_errors, 1);
		kh_warn(b, KH_LOG_OTHER, "upstream %s: the transfer did not finish (libcurl multi)",
			b->device);
		return;
	}
	if (c->too_large || c->res == CURLE_FILESIZE_EXCEEDED) {
		KH_ADD(&b->too_large, 1);
		kh_warn(b, KH_LOG_LARGE, "upstream %s: a body larger than --max-message (%u bytes)",
			b->device, (unsigned)c->max);
		return;
	}
	switch (c->res) {
	case CURLE_OK:
		curl_easy_getinfo(c->e, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200 && code <= 299) {
			KH_ADD(&b->ok, 1);
			*rep = (struct cpn_worker_reply){CPN_ST_OK, c->len ? c->buf : NULL,
							 (uint32_t)c->len};
			return;
		}
		KH_ADD(&b->http_errors, 1);
		kh_warn(b, KH_LOG_HTTP, "upstream %s: HTTP %ld", b->device, code);
		return;
	case CURLE_OPERATION_TIMEDOUT:
		KH_ADD(&b->timeouts, 1);
		kh_warn(b, KH_LOG_TIMEOUT, "upstream %s: no answer within %u ms", b->device,
			b->c.timeout_ms);
		return;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
		KH_ADD(&b->conn_errors, 1);
		kh_warn(b, KH_LOG_CONN, "upstream %s: %s", b->device,
			c->errbuf[0] ? c->errbuf : curl_easy_strerror(c->res));
		return;
	default:
		KH_ADD(&b->other_errors, 1);
		kh_warn(b, KH_LOG_OTHER, "upstream %s: %s", b->device,
			c->oom	       ? "out of memory"
			: c->errbuf[0] ? c->errbuf
				       : curl_easy_strerror(c->res));
		return;
	}
}

static void run(void *arg, const struct cpn_worker_request *req, int n,
		struct cpn_worker_reply *rep)
{
	struct kh_slot *s = arg;
	struct kh_bridge *b = s->b;
	uint64_t now, peak;
	CURLMcode mc = CURLM_OK;
	CURLMsg *msg;
	int running = 0, left, added = 0;

	if (n > s->n)
		n = s->n; /* the library never asks more than max_batch */
	for (int i = 0; i < n; i++) {
		struct kh_call *c = &s->calls[i];

		c->len = 0;
		c->too_large = c->oom = c->added = c->done = 0;
		c->res = CURLE_OK;
		c->errbuf[0] = 0;
		/* The payload is valid during run(): the transfer ends within it. */
		curl_easy_setopt(c->e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req[i].len);
		curl_easy_setopt(c->e, CURLOPT_POSTFIELDS, req[i].len ? req[i].payload : "");
		if (curl_multi_add_handle(s->m, c->e) == CURLM_OK) {
			c->added = 1;
			added++;
		}
	}
	KH_ADD(&b->requests, (uint64_t)added);
	now = KH_ADD(&b->inflight, (uint64_t)added) + (uint64_t)added;
	peak = KH_LOAD(&b->inflight_peak);
	while (now > peak && !__atomic_compare_exchange_n(&b->inflight_peak, &peak, now, 0,
							  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	for (;;) {
		mc = curl_multi_perform(s->m, &running);
		if (mc != CURLM_OK || !running)
			break;
		mc = curl_multi_poll(s->m, NULL, 0, 1000, NULL);
		if (mc != CURLM_OK)
			break;
	}
	while ((msg = curl_multi_info_read(s->m, &left))) {
		struct kh_call *c = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
		if (c) {
			c->done = 1;
			c->res = msg->data.result;
		}
	}
	if (mc != CURLM_OK)
		kh_warn(b, KH_LOG_OTHER, "upstream %s: %s", b->device, curl_multi_strerror(mc));
	for (int i = 0; i < n; i++) {
		struct kh_call *c = &s->calls[i];

		if (!c->added) {
			KH_ADD(&b->other_errors, 1);
			continue;
		}
		curl_multi_remove_handle(s->m, c->e);
		finish(b, c, &rep[i]);
	}
	KH_ADD(&b->inflight, -(uint64_t)added);
}

static uint32_t queue_extra(void *user)
{
	struct kh_bridge *b = user;
	uint64_t until = KH_ACQUIRE(&b->gauge_until);

	return until && cpn_now_ns() <= until ? KH_LOAD(&b->gauge) : 0;
}

/* ---- the scrape thread ---------------------------------------------------------- */

struct kh_page {
	char *buf;
	size_t len, cap;
	int too_large;
};

static size_t on_page(char *data, size_t size, size_t nmemb, void *arg)
{
	struct kh_page *pg = arg;
	size_t n = size * nmemb;

	if (n > KH_SCRAPE_MAX - pg->len) {
		pg->too_large = 1;
		return 0;
	}
	if (pg->len + n > pg->cap) {
		size_t cap = pg->cap ? pg->cap * 2 : 65536;
		char *nb;

		while (cap < pg->len + n)
			cap *= 2;
		if (!(nb = realloc(pg->buf, cap)))
			return 0;
		pg->buf = nb;
		pg->cap = cap;
	}
	memcpy(pg->buf + pg->len, data, n);
	pg->len += n;
	return n;
}

static uint32_t gauge_value(double sum)
{
	if (!(sum > 0))
		return 0;
	if (sum >= 4294967295.0)
		return UINT32_MAX;
	return (uint32_t)llround(sum);
}

/* One scrape: 0 and the value, or -1 with why. */
static int scrape_once(struct kh_bridge *b, CURL *e, struct kh_page *pg, uint32_t *val, char *why,
		       size_t whylen)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	long code = 0;
	double sum;
	CURLcode res;

	pg->len = 0;
	pg->too_large = 0;
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	res = curl_easy_perform(e);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
	if (res != CURLE_OK)
		return errf(why, whylen, -1, "%s",
			    pg->too_large ? "the page is larger than 16 MiB"
			    : errbuf[0]	  ? errbuf
					  : curl_easy_strerror(res));
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299)
		return errf(why, whylen, -1, "HTTP %ld", code);
	if (kh_prom_sum(pg->buf ? pg->buf : "", pg->len, b->c.gauge, &sum) < 1)
		return errf(why, whylen, -1, "no series of %s", b->c.gauge);
	*val = gauge_value(sum);
	return 0;
}

static void *scrape_main(void *arg)
{
	struct kh_bridge *b = arg;
	struct kh_page pg = {0};
	uint64_t period = (uint64_t)b->c.scrape_ms * 1000000ull;
	long tmo = b->c.scrape_ms > 1000 ? (long)b->c.scrape_ms : 1000;
	CURL *e = curl_easy_init();

	if (e) {
		curl_easy_setopt(e, CURLOPT_URL, b->c.metrics_url);
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(e, CURLOPT_USERAGENT, "cpn-worker");
		curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_page);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &pg);
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, tmo);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(e, CURLOPT_PROXY, "");
	} else {
		fprintf(stderr, PROG ": upstream metrics: cannot make a curl handle\n");
	}
	pthread_mutex_lock(&b->mu);
	while (!b->stop) {
		uint64_t t0 = cpn_now_ns();
		struct timespec ts;
		char why[CURL_ERROR_SIZE + 64];
		uint32_t val = 0;

		pthread_mutex_unlock(&b->mu);
		if (e && !scrape_once(b, e, &pg, &val, why, sizeof(why))) {
			KH_STORE(&b->gauge, val);
			KH_STORE(&b->gauge_until, cpn_now_ns() + KH_SCRAPE_KEEP * period);
			KH_ADD(&b->scrapes, 1);
			if (b->scrape_failing)
				fprintf(stderr, PROG ": upstream metrics %s: read again\n",
					b->mdev);
			b->scrape_failing = 0;
		} else {
			KH_ADD(&b->scrape_errors, 1);
			if (e && !b->scrape_failing)
				fprintf(stderr,
					PROG ": upstream metrics %s: %s (the last value is kept "
					     "for %d periods)\n",
					b->mdev, why, KH_SCRAPE_KEEP);
			b->scrape_failing = 1;
		}
		pthread_mutex_lock(&b->mu);
		ts = cpn_ns_timespec(t0 + period);
		while (!b->stop && cpn_now_ns() < t0 + period)
			pthread_cond_timedwait(&b->cv, &b->mu, &ts);
	}
	pthread_mutex_unlock(&b->mu);
	if (e)
		curl_easy_cleanup(e);
	free(pg.buf);
	return NULL;
}

/* ---- the bridge ------------------------------------------------------------------ */

static int cfg_copy(struct kh_cfg *d, const struct kh_cfg *s)
{
	*d = *s;
	d->upstream = strdup(s->upstream);
	d->metrics_url = s->metrics_url ? strdup(s->metrics_url) : NULL;
	d->gauge = strdup(s->gauge ? s->gauge : KH_DEFAULT_GAUGE);
	d->content_type = strdup(s->content_type ? s->content_type : KH_DEFAULT_CONTENT_TYPE);
	if (!d->upstream || (s->metrics_url && !d->metrics_url) || !d->gauge || !d->content_type)
		return -ENOMEM;
	return 0;
}

int kh_open(struct kh_bridge **out, const struct kh_cfg *c, char *err, size_t errlen)
{
	struct kh_bridge *b;
	pthread_condattr_t ca;
	char hdr[512], why[128];
	struct curl_slist *l;
	int rc;

	*out = NULL;
	if ((rc = kh_cfg_check(c, err, errlen)))
		return rc;
	if (!(b = calloc(1, sizeof(*b))))
		return errf(err, errlen, -ENOMEM, "out of memory");
	pthread_mutex_init(&b->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		rc = errf(err, errlen, -EIO, "http: libcurl does not start");
		goto fail;
	}
	b->curl_up = 1;
	if ((rc = cfg_copy(&b->c, c))) {
		errf(err, errlen, rc, "out of memory");
		goto fail;
	}
	if (!b->c.max_message)
		b->c.max_message = KH_DEFAULT_MAX_MESSAGE;
	if ((rc = url_check(b->c.upstream, why, sizeof(why), b->device, sizeof(b->device), 0)) ||
	    (b->c.metrics_url &&
	     (rc = url_check(b->c.metrics_url, why, sizeof(why), b->mdev, sizeof(b->mdev), 1)))) {
		errf(err, errlen, rc, "upstream: %s", why);
		goto fail;
	}
	/* No "Expect: 100-continue": the upstream is near, one round trip less. */
	snprintf(hdr, sizeof(hdr), "Content-Type: %s", b->c.content_type);
	if (!(l = curl_slist_append(NULL, hdr)) || !(b->headers = l) ||
	    !(l = curl_slist_append(b->headers, "Expect:"))) {
		rc = errf(err, errlen, -ENOMEM, "out of memory");
		goto fail;
	}
	b->headers = l;
	b->h = (struct cpn_worker_handler){
	    .kernel = "http",
	    .backend = "libcurl",
	    .device = b->device,
	    .user = b,
	    .slot_open = slot_open,
	    .run = run,
	    .slot_close = slot_close,
	    .queue_extra = b->c.metrics_url ? queue_extra : NULL,
	    /* Until the first batch: a guess for an HTTP model server. */
	    .svc_hint_ns = KH_SVC_HINT_NS,
	};
	if (b->c.metrics_url) {
		rc = -pthread_create(&b->thr, NULL, scrape_main, b);
		if (rc) {
			errf(err, errlen, rc, "http: cannot start the scrape thread: %s",
			     strerror(-rc));
			goto fail;
		}
		b->have_thr = 1;
	}
	*out = b;
	return 0;
fail:
	kh_close(b);
	return rc;
}

void kh_close(struct kh_bridge *b)
{
	if (!b)
		return;
	if (b->have_thr) {
		pthread_mutex_lock(&b->mu);
		b->stop = 1;
		pthread_cond_broadcast(&b->cv);
		pthread_mutex_unlock(&b->mu);
		pthread_join(b->thr, NULL);
	}
	curl_slist_free_all(b->headers);
	kh_cfg_free(&b->c);
	if (b->curl_up)
		curl_global_cleanup();
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

const struct cpn_worker_handler *kh_handler(struct kh_bridge *b)
{
	return &b->h;
}

void kh_stats(struct kh_bridge *b, struct kh_stats *st)
{
	*st = (struct kh_stats){
	    .requests = KH_LOAD(&b->requests),
	    .ok = KH_LOAD(&b->ok),
	    .http_errors = KH_LOAD(&b->http_errors),
	    .conn_errors = KH_LOAD(&b->conn_errors),
	    .timeouts = KH_LOAD(&b->timeouts),
	    .too_large = KH_LOAD(&b->too_large),
	    .other_errors = KH_LOAD(&b->other_errors),
	    .inflight_peak = KH_LOAD(&b->inflight_peak),
	    .scrapes = KH_LOAD(&b->scrapes),
	    .scrape_errors = KH_LOAD(&b->scrape_errors),
	    .upstream_queue = b->c.metrics_url ? queue_extra(b) : 0,
	};
}

void kh_log_stats(struct kh_bridge *b, FILE *f, const char *prog)
{
	struct kh_stats s;

	kh_stats(b, &s);
	fprintf(f,
		"%s: http bridge to %s: %llu requests: %llu ok, %llu HTTP errors, %llu connection "
		"errors, %llu timeouts, %llu too large, %llu other errors; at most %llu at once",
		prog ? prog : PROG, b->device, (unsigned long long)s.requests,
		(unsigned long long)s.ok, (unsigned long long)s.http_errors,
		(unsigned long long)s.conn_errors, (unsigned long long)s.timeouts,
		(unsigned long long)s.too_large, (unsigned long long)s.other_errors,
		(unsigned long long)s.inflight_peak);
	if (b->c.metrics_url)
		fprintf(f, "; upstream metrics: %llu scrapes, %llu failed",
			(unsigned long long)s.scrapes, (unsigned long long)s.scrape_errors);
	fputc('\n', f);
}
