// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libcpn's etcd client: etcd v3's JSON gateway over libcurl, JSON with
 * json-c. See cpn_etcd.h.
 *
 * The gateway (etcd 3.4: /v3/kv/range, kv/put, kv/deleterange, kv/txn,
 * lease/grant, lease/keepalive, lease/revoke, watch) takes a JSON object
 * per call and answers one; bytes fields are base64 strings, 64-bit numbers
 * decimal strings (numbers are accepted too), fields at their zero value are
 * left out. Streaming calls (watch, keepalive) answer one JSON object per
 * line, {"result": {...}} or {"error": ..., "message": ..., "code": N}.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "cpn_etcd.h"

#define CONNECT_MS_MAX 1000
#define JSON_DEPTH     32
#define URL_MAX	       256
#define QUOTE_MAX      200 /* characters of server text quoted in a message */

/* gRPC status codes that etcd answers with */
#define GRPC_NOT_FOUND 5

struct cpn_etcd {
	char *url[CPN_ETCD_MAX_URLS];
	int n_url, cur;
	unsigned timeout_ms, connect_ms;
	CURL *curl;
	struct curl_slist *hdrs;
	char curl_err[CURL_ERROR_SIZE];
	char last[URL_MAX + 96]; /* "etcd URL": the last call, for what its answer lacked */
};

struct buf {
	char *p;
	size_t len, cap;
	bool over; /* the answer went past CPN_ETCD_MAX_ANSWER */
	bool nomem;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int errf(char *err, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int errf(char *err, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

const char *cpn_etcd_strerror(int rc)
{
	switch (rc) {
	case CPN_ETCD_OK:
		return "ok";
	case CPN_ETCD_EUNREACH:
		return "etcd unreachable";
	case CPN_ETCD_ESERVER:
		return "etcd answered an error";
	case CPN_ETCD_EPROTO:
		return "malformed answer from etcd";
	case CPN_ETCD_ENOMEM:
		return "out of memory";
	case CPN_ETCD_ECOMPACTED:
		return "revision compacted";
	case CPN_ETCD_ENOLEASE:
		return "lease not found";
	case CPN_ETCD_EINVAL:
		return "invalid argument";
	}
	return "unknown error";
}

/* Server text as it may go into a message: at most QUOTE_MAX characters,
 * control characters and bytes beyond ASCII as '?'.
 */
static void quote(const char *in, size_t n, char *out, size_t out_len)
{
	size_t k = 0;

	if (!out_len)
		return;
	for (size_t i = 0; i < n && k + 1 < out_len && i < QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)in[i];

		out[k++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	if (n > QUOTE_MAX && k + 4 < out_len) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = 0;
}

/* ---- base64 ------------------------------------------------------------------ */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t cpn_b64_encode(const void *in, size_t len, char *out)
{
	const unsigned char *p = in;
	size_t k = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16;

		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[k++] = b64_chars[(v >> 18) & 63];
		out[k++] = b64_chars[(v >> 12) & 63];
		out[k++] = i + 1 < len ? b64_chars[(v >> 6) & 63] : '=';
		out[k++] = i + 2 < len ? b64_chars[v & 63] : '=';
	}
	out[k] = 0;
	return k;
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int cpn_b64_decode(const char *in, size_t len, void *out, size_t *out_len)
{
	unsigned char *o = out;
	size_t k = 0;

	if (len % 4)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		bool last = i + 4 == len;

		for (int j = 0; j < 4; j++) {
			if (in[i + j] == '=' && last && j >= 2) {
				pad++;
				v[j] = 0;
				continue;
			}
			if (pad) /* a character after '=' */
				return -1;
			v[j] = b64_val(in[i + j]);
			if (v[j] < 0)
				return -1;
		}
		unsigned x = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 |
			     (unsigned)v[3];

		o[k++] = (unsigned char)(x >> 16);
		if (pad < 2)
			o[k++] = (unsigned char)(x >> 8);
		if (pad < 1)
			o[k++] = (unsigned char)x;
	}
	*out_len = k;
	return 0;
}

/* ---- JSON: building requests ----------------------------------------------------- */

static json_object *j_b64(const void *p, size_t n)
{
	char *s;
	json_object *o;

	if (n > CPN_ETCD_MAX_ANSWER)
		return NULL;
	s = malloc(4 * ((n + 2) / 3) + 1);
	if (!s)
		return NULL;
	cpn_b64_encode(p, n, s);
	o = json_object_new_string(s);
	free(s);
	return o;
}

static json_object *j_i64(int64_t v)
{
	char s[32];

	snprintf(s, sizeof(s), "%" PRId64, v);
	return json_object_new_string(s);
}

/* Add a member; false (and the value freed) when out of memory. */
static bool j_add(json_object *o, const char *k, json_object *v)
{
	if (!o || !v) {
		json_object_put(v);
		return false;
	}
	if (json_object_object_add(o, k, v)) {
		json_object_put(v);
		return false;
	}
	return true;
}

/* The end of the range of every key that starts with key. */
static json_object *j_range_end(const char *key)
{
	size_t n = strlen(key);
	unsigned char *end = malloc(n + 1);
	json_object *o;

	if (!end)
		return NULL;
	memcpy(end, key, n);
	while (n && end[n - 1] == 0xff)
		n--;
	if (!n) { /* every key from key on */
		end[0] = 0;
		n = 1;
	} else {
		end[n - 1]++;
	}
	o = j_b64(end, n);
	free(end);
	return o;
}

/* {"key": ..., "range_end": ...} */
static bool j_key(json_object *o, const char *key, bool prefix)
{
	if (!j_add(o, "key", j_b64(key, strlen(key))))
		return false;
	return !prefix || j_add(o, "range_end", j_range_end(key));
}

/* ---- JSON: reading answers --------------------------------------------------------- */

/* One JSON object from p[0..n), nothing but whitespace after it. */
static json_object *parse_object(const char *p, size_t n)
{
	json_tokener *tok;
	json_object *o;
	size_t end;

	if (n > CPN_ETCD_MAX_ANSWER)
		return NULL;
	tok = json_tokener_new_ex(JSON_DEPTH);
	if (!tok)
		return NULL;
	o = json_tokener_parse_ex(tok, p, (int)n);
	if (o && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o)
		return NULL;
	for (; end < n; end++)
		if (!isspace((unsigned char)p[end])) {
			json_object_put(o);
			return NULL;
		}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* A member of an object; NULL when o is no object, or k is absent or null. */
static json_object *member(json_object *o, const char *k)
{
	json_object *v = NULL;

	if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, k, &v))
		return NULL;
	return v;
}

/* A 64-bit number as the gateway writes it (a decimal string, or a number);
 * absent: 0. -1 for anything else.
 */
static int get_i64(json_object *o, const char *k, int64_t *v)
{
	json_object *m = member(o, k);
	const char *s;
	char *end;
	long long x;

	*v = 0;
	if (!m)
		return 0;
	if (json_object_is_type(m, json_type_int)) {
		*v = json_object_get_int64(m);
		return 0;
	}
	if (!json_object_is_type(m, json_type_string))
		return -1;
	s = json_object_get_string(m);
	if ((size_t)json_object_get_string_len(m) != strlen(s) || !*s ||
	    !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
		return -1;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*v = x;
	return 0;
}

static int get_bool(json_object *o, const char *k, bool *v)
{
	json_object *m = member(o, k);

	*v = false;
	if (!m)
		return 0;
	if (!json_object_is_type(m, json_type_boolean))
		return -1;
	*v = json_object_get_boolean(m);
	return 0;
}

/* A base64 member decoded into a NUL-ended copy; absent: "". -1 for a
 * member that is not a base64 string, -2 out of memory.
 */
static int get_b64(json_object *o, const char *k, char **out, size_t *len)
{
	json_object *m = member(o, k);
	const char *s = "";
	size_t n = 0;

	*out = NULL;
	*len = 0;
	if (m) {
		if (!json_object_is_type(m, json_type_string))
			return -1;
		s = json_object_get_string(m);
		n = (size_t)json_object_get_string_len(m);
	}
	*out = malloc(n / 4 * 3 + 1);
	if (!*out)
		return -2;
	if (cpn_b64_decode(s, n, *out, len)) {
		free(*out);
		*out = NULL;
		return -1;
	}
	(*out)[*len] = 0;
	return 0;
}

static void kv_free(struct cpn_etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

static int parse_kv(json_object *o, struct cpn_etcd_kv *kv, char *err, size_t len)
{
	int r;

	memset(kv, 0, sizeof(*kv));
	if (!json_object_is_type(o, json_type_object))
		return errf(err, len, CPN_ETCD_EPROTO, "a key-value that is not an object");
	if ((r = get_b64(o, "key", &kv->key, &kv->key_len)) ||
	    (r = get_b64(o, "value", &kv->value, &kv->value_len))) {
		kv_free(kv);
		if (r == -2)
			return errf(err, len, CPN_ETCD_ENOMEM, "out of memory");
		return errf(err, len, CPN_ETCD_EPROTO, "a key or value that is not base64");
	}
	if (get_i64(o, "create_revision", &kv->create_revision) ||
	    get_i64(o, "mod_revision", &kv->mod_revision) || get_i64(o, "version", &kv->version) ||
	    get_i64(o, "lease", &kv->lease) || kv->create_revision < 0 || kv->mod_revision < 0 ||
	    kv->version < 0) {
		kv_free(kv);
		return errf(err, len, CPN_ETCD_EPROTO,
			    "a key-value with a revision that is no "
			    "number");
	}
	return 0;
}

static int header_revision(json_object *o, int64_t *rev, char *err, size_t len)
{
	json_object *h = member(o, "header");

	if (!h || !json_object_is_type(h, json_type_object))
		return errf(err, len, CPN_ETCD_EPROTO, "an answer without a header");
	if (get_i64(h, "revision", rev) || *rev < 0)
		return errf(err, len, CPN_ETCD_EPROTO, "a header whose revision is no number");
	return 0;
}

void cpn_etcd_kvs_free(struct cpn_etcd_kvs *kvs)
{
	if (!kvs)
		return;
	for (size_t i = 0; i < kvs->n; i++)
		kv_free(&kvs->kv[i]);
	free(kvs->kv);
	memset(kvs, 0, sizeof(*kvs));
}

/* Append the "kvs" of a range answer to out. */
static int parse_kvs(json_object *o, struct cpn_etcd_kvs *out, char *err, size_t len)
{
	json_object *a = member(o, "kvs");
	size_t n;
	struct cpn_etcd_kv *kv;

	if (!a)
		return 0;
	if (!json_object_is_type(a, json_type_array))
		return errf(err, len, CPN_ETCD_EPROTO, "kvs is not an array");
	n = json_object_array_length(a);
	if (!n)
		return 0;
	kv = realloc(out->kv, (out->n + n) * sizeof(*kv));
	if (!kv)
		return errf(err, len, CPN_ETCD_ENOMEM, "out of memory");
	out->kv = kv;
	for (size_t i = 0; i < n; i++) {
		int rc = parse_kv(json_object_array_get_idx(a, i), &out->kv[out->n], err, len);

		if (rc)
			return rc;
		out->n++;
	}
	return 0;
}

/* The error etcd said, if the answer is one: {"error": "...", "message":
 * "...", "code": N}. 0 when it is not.
 */
static int answer_error(json_object *o, const char *what, char *err, size_t len)
{
	json_object *e = member(o, "error"), *m = member(o, "message");
	char q[QUOTE_MAX + 8];
	int64_t code = 0;
	const char *s;

	if (!e || (json_object_is_type(e, json_type_string) && !json_object_get_string_len(e)))
		return 0;
	if (m && json_object_is_type(m, json_type_string))
		e = m;
	if (json_object_is_type(e, json_type_string)) {
		s = json_object_get_string(e);
		quote(s, (size_t)json_object_get_string_len(e), q, sizeof(q));
	} else {
		snprintf(q, sizeof(q), "(an error that is not a string)");
	}
	if (get_i64(o, "code", &code))
		code = 0;
	if (code == GRPC_NOT_FOUND && strstr(q, "lease not found"))
		return errf(err, len, CPN_ETCD_ENOLEASE, "%s: %s", what, q);
	return errf(err, len, CPN_ETCD_ESERVER, "%s: etcd says: %s (code %" PRId64 ")", what, q,
		    code);
}

/* ---- HTTP ------------------------------------------------------------------------------ */

static size_t buf_write(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;

	if (b->len + len + 1 > CPN_ETCD_MAX_ANSWER) {
		b->over = true;
		return 0; /* curl ends the transfer: CURLE_WRITE_ERROR */
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + len + 1)
			cap *= 2;
		if (cap > CPN_ETCD_MAX_ANSWER)
			cap = CPN_ETCD_MAX_ANSWER;
		p = realloc(b->p, cap);
		if (!p) {
			b->nomem = true;
			return 0;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = 0;
	return len;
}

static int parse_urls(struct cpn_etcd *e, const char *urls, char *err, size_t len)
{
	const char *p = urls;

	if (!urls || !*urls)
		return errf(err, len, CPN_ETCD_EINVAL, "no etcd endpoint given");
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *host;

		if (e->n_url == CPN_ETCD_MAX_URLS)
			return errf(err, len, CPN_ETCD_EINVAL, "more than %d etcd endpoints",
				    CPN_ETCD_MAX_URLS);
		while (n && p[n - 1] == '/')
			n--;
		if (n >= 7 && !strncmp(p, "http://", 7))
			host = p + 7;
		else if (n >= 8 && !strncmp(p, "https://", 8))
			host = p + 8;
		else
			return errf(err, len, CPN_ETCD_EINVAL,
				    "etcd endpoint '%.*s' is not http://HOST:PORT or https://...",
				    (int)(n > 64 ? 64 : n), p);
		if (host >= p + n || n >= URL_MAX)
			return errf(err, len, CPN_ETCD_EINVAL, "etcd endpoint '%.*s': no host",
				    (int)(n > 64 ? 64 : n), p);
		for (size_t i = 0; i < n; i++)
			if (isspace((unsigned char)p[i]) || !isprint((unsigned char)p[i]))
				return errf(err, len, CPN_ETCD_EINVAL,
					    "etcd endpoint '%.*s' has a space or a control "
					    "character",
					    (int)(n > 64 ? 64 : n), p);
		e->url[e->n_url] = strndup(p, n);
		if (!e->url[e->n_url])
			return errf(err, len, CPN_ETCD_ENOMEM, "out of memory");
		e->n_url++;
		p += n;
		while (*p == '/')
			p++;
		if (*p == ',')
			p++;
	}
	if (!e->n_url)
		return errf(err, len, CPN_ETCD_EINVAL, "no etcd endpoint given");
	return 0;
}

struct cpn_etcd *cpn_etcd_open(const char *urls, unsigned timeout_ms, char *err, size_t err_len)
{
	struct cpn_etcd *e;

	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		errf(err, err_len, CPN_ETCD_ENOMEM, "libcurl: %s",
		     curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		errf(err, err_len, CPN_ETCD_ENOMEM, "out of memory");
		return NULL;
	}
	e->timeout_ms = timeout_ms ? timeout_ms : CPN_ETCD_TIMEOUT_MS;
	e->connect_ms = e->timeout_ms < CONNECT_MS_MAX ? e->timeout_ms : CONNECT_MS_MAX;
	if (parse_urls(e, urls, err, err_len)) {
		cpn_etcd_close(e);
		return NULL;
	}
	e->curl = curl_easy_init();
	e->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (!e->curl || !e->hdrs) {
		errf(err, err_len, CPN_ETCD_ENOMEM, "out of memory");
		cpn_etcd_close(e);
		return NULL;
	}
	return e;
}

void cpn_etcd_close(struct cpn_etcd *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->n_url; i++)
		free(e->url[i]);
	if (e->curl)
		curl_easy_cleanup(e->curl);
	curl_slist_free_all(e->hdrs);
	free(e);
}

const char *cpn_etcd_endpoint(const struct cpn_etcd *e)
{
	return e->url[e->cur];
}

/* The options every transfer has: a POST of body to url, bounded. */
static void setup(CURL *c, const char *url, const char *body, struct curl_slist *hdrs,
		  unsigned connect_ms, unsigned timeout_ms, char *curl_err, void *wdata)
{
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, wdata);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
}

/* A transfer that failed without a byte reaching the server may go to the
 * next endpoint: the request surely did not happen.
 */
static bool never_sent(CURL *c, CURLcode cc)
{
	curl_off_t connect_us = 0;

	if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
		return true;
	return cc == CURLE_OPERATION_TIMEDOUT &&
	       !curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connect_us) && connect_us == 0;
}

/* POST req to /v3/<path>; *ans: the answer's JSON object (the "result" of a
 * streaming call's first message when stream).
 */
static int call(struct cpn_etcd *e, const char *path, json_object *req, bool stream,
		json_object **ans, char *err, size_t len)
{
	const char *body;
	char url[URL_MAX + 64], what[URL_MAX + 80], q[QUOTE_MAX + 8];
	struct buf b = {0};
	CURLcode cc = CURLE_OK;
	long http = 0;
	json_object *o, *r;
	int rc;

	*ans = NULL;
	if (!req)
		return errf(err, len, CPN_ETCD_ENOMEM, "out of memory");
	body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if (!body)
		return errf(err, len, CPN_ETCD_ENOMEM, "out of memory");
	for (int t = 0; t < e->n_url; t++) {
		int u = (e->cur + t) % e->n_url;

		snprintf(url, sizeof(url), "%s/v3/%s", e->url[u], path);
		free(b.p);
		memset(&b, 0, sizeof(b));
		e->curl_err[0] = 0;
		setup(e->curl, url, body, e->hdrs, e->connect_ms, e->timeout_ms, e->curl_err, &b);
		cc = curl_easy_perform(e->curl);
		if (cc == CURLE_OK || !never_sent(e->curl, cc)) {
			e->cur = u;
			break;
		}
	}
	snprintf(what, sizeof(what), "etcd %s", url);
	snprintf(e->last, sizeof(e->last), "%s", what);
	if (b.over) {
		free(b.p);
		return errf(err, len, CPN_ETCD_EPROTO, "%s: answer larger than %u bytes", what,
			    CPN_ETCD_MAX_ANSWER);
	}
	if (b.nomem) {
		free(b.p);
		return errf(err, len, CPN_ETCD_ENOMEM, "%s: out of memory", what);
	}
	if (cc != CURLE_OK) {
		free(b.p);
		return errf(err, len, CPN_ETCD_EUNREACH, "%s: %s", what,
			    e->curl_err[0] ? e->curl_err : curl_easy_strerror(cc));
	}
	curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &http);
	if (stream && b.p) { /* the first message */
		char *nl = memchr(b.p, '\n', b.len);

		if (nl)
			b.len = (size_t)(nl - b.p);
	}
	o = b.p ? parse_object(b.p, b.len) : NULL;
	if (!o) {
		quote(b.p ? b.p : "", b.len, q, sizeof(q));
		free(b.p);
		if (http != 200)
			return errf(err, len, CPN_ETCD_ESERVER, "%s: HTTP %ld: %s", what, http, q);
		return errf(err, len, CPN_ETCD_EPROTO, "%s: the answer is not a JSON object: '%s'",
			    what, q);
	}
	free(b.p);
	if ((rc = answer_error(o, what, err, len))) {
		json_object_put(o);
		return rc;
	}
	if (http != 200) {
		json_object_put(o);
		return errf(err, len, CPN_ETCD_ESERVER, "%s: HTTP %ld", what, http);
	}
	if (stream) {
		r = member(o, "result");
		if (!r || !json_object_is_type(r, json_type_object)) {
			json_object_put(o);
			return errf(err, len, CPN_ETCD_EPROTO, "%s: a message without a result",
				    what);
		}
		json_object_get(r);
		json_object_put(o);
		o = r;
		if ((rc = answer_error(o, what, err, len))) {
			json_object_put(o);
			return rc;
		}
	}
	*ans = o;
	return 0;
}

/* What a call's answer lacked, said with the endpoint and call it came from. */
static int answered(struct cpn_etcd *e, int rc, char *err, size_t len)
{
	char msg[512];

	if (rc && err && len && strncmp(err, "etcd ", 5)) {
		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, len, "%s: %s", e->last, msg);
	}
	return rc;
}

/* ---- kv ------------------------------------------------------------------------------------ */

static int bad_key(const char *key, char *err, size_t len)
{
	if (!key || !*key)
		return errf(err, len, CPN_ETCD_EINVAL, "an empty etcd key");
	return 0;
}

/* A call whose request names one key, or every key under a prefix. */
static int key_call(struct cpn_etcd *e, const char *path, const char *key, bool prefix,
		    json_object **ans, char *err, size_t err_len)
{
	json_object *req;
	int rc;

	if ((rc = bad_key(key, err, err_len)))
		return rc;
	req = json_object_new_object();
	if (!j_key(req, key, prefix)) {
		json_object_put(req);
		return errf(err, err_len, CPN_ETCD_ENOMEM, "out of memory");
	}
	rc = call(e, path, req, false, ans, err, err_len);
	json_object_put(req);
	return rc;
}

int cpn_etcd_get(struct cpn_etcd *e, const char *key, bool prefix, struct cpn_etcd_kvs *out,
		 char *err, size_t err_len)
{
	json_object *ans;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = key_call(e, "kv/range", key, prefix, &ans, err, err_len)))
		return rc;
	rc = header_revision(ans, &out->revision, err, err_len);
	if (!rc)
		rc = parse_kvs(ans, out, err, err_len);
	json_object_put(ans);
	if (rc)
		cpn_etcd_kvs_free(out);
	return answered(e, rc, err, err_len);
}

static json_object *put_req(const char *key, const void *value, size_t value_len, int64_t lease)
{
	json_object *req = json_object_new_object();

	if (!j_key(req, key, false) || !j_add(req, "value", j_b64(value, value_len)) ||
	    (lease && !j_add(req, "lease", j_i64(lease)))) {
		json_object_put(req);
		return NULL;
	}
	return req;
}

int cpn_etcd_put(struct cpn_etcd *e, const char *key, const void *value, size_t value_len,
		 int64_t lease, int64_t *revision, char *err, size_t err_len)
{
	json_object *req, *ans;
	int64_t rev;
	int rc;

	if ((rc = bad_key(key, err, err_len)))
		return rc;
	req = put_req(key, value, value_len, lease);
	rc = call(e, "kv/put", req, false, &ans, err, err_len);
	json_object_put(req);
	if (rc)
		return rc;
	rc = header_revision(ans, &rev, err, err_len);
	json_object_put(ans);
	if (!rc && revision)
		*revision = rev;
	return answered(e, rc, err, err_len);
}

int cpn_etcd_delete(struct cpn_etcd *e, const char *key, bool prefix, int64_t *deleted,
		    int64_t *revision, char *err, size_t err_len)
{
	json_object *ans;
	int64_t rev, n;
	int rc;

	if ((rc = key_call(e, "kv/deleterange", key, prefix, &ans, err, err_len)))
		return rc;
	rc = header_revision(ans, &rev, err, err_len);
	if (!rc && (get_i64(ans, "deleted", &n) || n < 0))
		rc = errf(err, err_len, CPN_ETCD_EPROTO, "'deleted' is no count");
	json_object_put(ans);
	if (!rc && revision)
		*revision = rev;
	if (!rc && deleted)
		*deleted = n;
	return answered(e, rc, err, err_len);
}

/* ---- txn ------------------------------------------------------------------------------------ */

static json_object *txn_ops(const struct cpn_etcd_op *ops, int n)
{
	json_object *a = json_object_new_array();

	for (int i = 0; a && i < n; i++) {
		const struct cpn_etcd_op *op = &ops[i];
		json_object *r = json_object_new_object(), *w = NULL;
		const char *name = NULL;

		switch (op->type) {
		case CPN_ETCD_OP_PUT:
			w = op->key ? put_req(op->key, op->value, op->value_len, op->lease) : NULL;
			name = "request_put";
			break;
		case CPN_ETCD_OP_DELETE:
		case CPN_ETCD_OP_GET:
			w = json_object_new_object();
			if (!op->key || !j_key(w, op->key, op->prefix)) {
				json_object_put(w);
				w = NULL;
			}
			name =
			    op->type == CPN_ETCD_OP_GET ? "request_range" : "request_delete_range";
			break;
		}
		if (!name || !j_add(r, name, w) || json_object_array_add(a, r)) {
			json_object_put(r);
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

static json_object *txn_cmp(const struct cpn_etcd_cmp *cmp, int n)
{
	static const char *const targets[] = {"CREATE", "MOD", "VERSION", "VALUE"};
	static const char *const fields[] = {"create_revision", "mod_revision", "version", "value"};
	static const char *const results[] = {"EQUAL", "NOT_EQUAL", "LESS", "GREATER"};
	json_object *a = json_object_new_array();

	for (int i = 0; a && i < n; i++) {
		const struct cpn_etcd_cmp *c = &cmp[i];
		json_object *o = json_object_new_object();
		bool ok = c->key && c->target >= 0 && c->target <= CPN_ETCD_CMP_VALUE &&
			  c->result >= 0 && c->result <= CPN_ETCD_GT;

		ok = ok && j_key(o, c->key, false) &&
		     j_add(o, "target", json_object_new_string(targets[c->target])) &&
		     j_add(o, "result", json_object_new_string(results[c->result])) &&
		     j_add(o, fields[c->target],
			   c->target == CPN_ETCD_CMP_VALUE ? j_b64(c->value, c->value_len)
							   : j_i64(c->num));
		if (!ok || json_object_array_add(a, o)) {
			json_object_put(o);
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

void cpn_etcd_txn_res_free(struct cpn_etcd_txn_res *res)
{
	if (res)
		cpn_etcd_kvs_free(&res->got);
}

int cpn_etcd_txn(struct cpn_etcd *e, const struct cpn_etcd_cmp *cmp, int n_cmp,
		 const struct cpn_etcd_op *success, int n_success,
		 const struct cpn_etcd_op *failure, int n_failure, struct cpn_etcd_txn_res *res,
		 char *err, size_t err_len)
{
	json_object *req = json_object_new_object(), *ans, *a;
	int rc;

	memset(res, 0, sizeof(*res));
	if (n_cmp < 0 || n_success < 0 || n_failure < 0) {
		json_object_put(req);
		return errf(err, err_len, CPN_ETCD_EINVAL, "a negative count of txn items");
	}
	if (!j_add(req, "compare", txn_cmp(cmp, n_cmp)) ||
	    !j_add(req, "success", txn_ops(success, n_success)) ||
	    !j_add(req, "failure", txn_ops(failure, n_failure))) {
		json_object_put(req);
		return errf(err, err_len, CPN_ETCD_EINVAL,
			    "a txn item without a key or of an unknown kind (or out of memory)");
	}
	rc = call(e, "kv/txn", req, false, &ans, err, err_len);
	json_object_put(req);
	if (rc)
		return rc;
	rc = header_revision(ans, &res->revision, err, err_len);
	if (!rc && get_bool(ans, "succeeded", &res->succeeded))
		rc = errf(err, err_len, CPN_ETCD_EPROTO, "txn 'succeeded' is no boolean");
	a = member(ans, "responses");
	if (!rc && a && !json_object_is_type(a, json_type_array))
		rc = errf(err, err_len, CPN_ETCD_EPROTO, "txn 'responses' is no array");
	for (size_t i = 0; !rc && a && i < json_object_array_length(a); i++) {
		json_object *r = json_object_array_get_idx(a, i);
		json_object *range = member(r, "response_range");

		if (!r || !json_object_is_type(r, json_type_object))
			rc = errf(err, err_len, CPN_ETCD_EPROTO,
				  "a txn response that is "
				  "no object");
		else if (range)
			rc = parse_kvs(range, &res->got, err, err_len);
	}
	res->got.revision = res->revision;
	json_object_put(ans);
	if (rc)
		cpn_etcd_txn_res_free(res);
	return answered(e, rc, err, err_len);
}

/* ---- leases ------------------------------------------------------------------------------------
 */

int cpn_etcd_lease_grant(struct cpn_etcd *e, int64_t ttl_s, int64_t *id, int64_t *granted,
			 char *err, size_t err_len)
{
	json_object *req, *ans;
	int rc;

	if (ttl_s < 1)
		return errf(err, err_len, CPN_ETCD_EINVAL, "a lease TTL must be at least 1 s");
	req = json_object_new_object();
	if (!j_add(req, "TTL", j_i64(ttl_s))) {
		json_object_put(req);
		return errf(err, err_len, CPN_ETCD_ENOMEM, "out of memory");
	}
	rc = call(e, "lease/grant", req, false, &ans, err, err_len);
	json_object_put(req);
	if (rc)
		return rc;
	if (get_i64(ans, "ID", id) || get_i64(ans, "TTL", granted) || *id == 0 || *granted <= 0)
		rc = errf(err, err_len, CPN_ETCD_EPROTO,
			  "a lease grant without an ID and a "
			  "TTL");
	json_object_put(ans);
	return answered(e, rc, err, err_len);
}

int cpn_etcd_lease_keepalive(struct cpn_etcd *e, int64_t id, int64_t *ttl, char *err,
			     size_t err_len)
{
	json_object *req = json_object_new_object(), *ans;
	int rc;

	if (!j_add(req, "ID", j_i64(id))) {
		json_object_put(req);
		return errf(err, err_len, CPN_ETCD_ENOMEM, "out of memory");
	}
	rc = call(e, "lease/keepalive", req, true, &ans, err, err_len);
	json_object_put(req);
	if (rc)
		return rc;
	if (get_i64(ans, "TTL", ttl))
		rc = errf(err, err_len, CPN_ETCD_EPROTO,
			  "a keep-alive whose TTL is no "
			  "number");
	else if (*ttl <= 0)
		rc = errf(err, err_len, CPN_ETCD_ENOLEASE, "lease %" PRIx64 " is gone",
			  (uint64_t)id);
	json_object_put(ans);
	return answered(e, rc, err, err_len);
}

int cpn_etcd_lease_revoke(struct cpn_etcd *e, int64_t id, char *err, size_t err_len)
{
	json_object *req = json_object_new_object(), *ans;
	int rc;

	if (!j_add(req, "ID", j_i64(id))) {
		json_object_put(req);
		return errf(err, err_len, CPN_ETCD_ENOMEM, "out of memory");
	}
	rc = call(e, "lease/revoke", req, false, &ans, err, err_len);
	json_object_put(req);
	json_object_put(ans);
	return rc;
}

/* ---- watch -------------------------------------------------------------------------------------
 */

struct cpn_etcd_watch {
	CURLM *multi;
	CURL *easy;
	struct curl_slist *hdrs;
	char *body;
	struct buf in; /* received, not yet parsed */
	size_t parsed; /* bytes of `in` already taken */
	bool done;     /* the transfer ended */
	CURLcode cc;
	int ended; /* the watch's end, once said: returned on every later poll */
	char ended_msg[256];
	char url[URL_MAX + 64];
	char curl_err[CURL_ERROR_SIZE];
};

void cpn_etcd_events_free(struct cpn_etcd_events *evs)
{
	if (!evs)
		return;
	for (size_t i = 0; i < evs->n; i++)
		kv_free(&evs->ev[i].kv);
	free(evs->ev);
	evs->ev = NULL;
	evs->n = evs->cap = 0;
}

int cpn_etcd_watch_start(struct cpn_etcd *e, const char *key, bool prefix, int64_t start_revision,
			 struct cpn_etcd_watch **wp, char *err, size_t err_len)
{
	struct cpn_etcd_watch *w;
	json_object *req, *cr;
	const char *body;
	int rc;

	*wp = NULL;
	if ((rc = bad_key(key, err, err_len)))
		return rc;
	if (start_revision < 0)
		return errf(err, err_len, CPN_ETCD_EINVAL, "a negative start revision");
	req = json_object_new_object();
	cr = json_object_new_object();
	if (!j_key(cr, key, prefix) ||
	    (start_revision && !j_add(cr, "start_revision", j_i64(start_revision)))) {
		json_object_put(cr);
		cr = NULL;
	}
	if (!j_add(req, "create_request", cr)) { /* frees cr */
		json_object_put(req);
		return errf(err, err_len, CPN_ETCD_ENOMEM, "out of memory");
	}
	body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	w = calloc(1, sizeof(*w));
	if (!w || !body || !(w->body = strdup(body))) {
		free(w);
		json_object_put(req);
		return errf(err, err_len, CPN_ETCD_ENOMEM, "out of memory");
	}
	json_object_put(req);
	snprintf(w->url, sizeof(w->url), "%s/v3/watch", e->url[e->cur]);
	w->multi = curl_multi_init();
	w->easy = curl_easy_init();
	w->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (!w->multi || !w->easy || !w->hdrs) {
		cpn_etcd_watch_stop(w);
		return errf(err, err_len, CPN_ETCD_ENOMEM, "out of memory");
	}
	/* No bound on the whole transfer: a watch lasts. Its caller bounds
	 * each poll, and learns that etcd went away from a cut connection or
	 * from its other calls.
	 */
	setup(w->easy, w->url, w->body, w->hdrs, e->connect_ms, 0, w->curl_err, &w->in);
	if (curl_multi_add_handle(w->multi, w->easy) != CURLM_OK) {
		cpn_etcd_watch_stop(w);
		return errf(err, err_len, CPN_ETCD_ENOMEM, "libcurl refused the watch");
	}
	*wp = w;
	return 0;
}

void cpn_etcd_watch_stop(struct cpn_etcd_watch *w)
{
	if (!w)
		return;
	if (w->multi && w->easy)
		curl_multi_remove_handle(w->multi, w->easy);
	if (w->easy)
		curl_easy_cleanup(w->easy);
	if (w->multi)
		curl_multi_cleanup(w->multi);
	curl_slist_free_all(w->hdrs);
	free(w->body);
	free(w->in.p);
	free(w);
}

static int watch_end(struct cpn_etcd_watch *w, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int watch_end(struct cpn_etcd_watch *w, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->ended_msg, sizeof(w->ended_msg), fmt, ap);
	va_end(ap);
	w->ended = rc;
	return rc;
}

static int add_event(struct cpn_etcd_events *out, json_object *ev, char *err, size_t len)
{
	json_object *t = member(ev, "type"), *kv = member(ev, "kv");
	struct cpn_etcd_event *e;
	int type = CPN_ETCD_EV_PUT, rc;

	if (!json_object_is_type(ev, json_type_object) || !kv)
		return errf(err, len, CPN_ETCD_EPROTO, "an event without a kv");
	if (t) {
		const char *s =
		    json_object_is_type(t, json_type_string) ? json_object_get_string(t) : "";

		if (!strcmp(s, "DELETE"))
			type = CPN_ETCD_EV_DELETE;
		else if (strcmp(s, "PUT"))
			return errf(err, len, CPN_ETCD_EPROTO, "an event of an unknown type");
	}
	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 16;

		e = realloc(out->ev, cap * sizeof(*e));
		if (!e)
			return errf(err, len, CPN_ETCD_ENOMEM, "out of memory");
		out->ev = e;
		out->cap = cap;
	}
	e = &out->ev[out->n];
	e->type = type;
	if ((rc = parse_kv(kv, &e->kv, err, len)))
		return rc;
	out->n++;
	return 0;
}

/* One message of the stream. */
static int watch_message(struct cpn_etcd_watch *w, const char *p, size_t n,
			 struct cpn_etcd_events *out)
{
	json_object *o = parse_object(p, n), *r, *evs;
	char msg[256], q[QUOTE_MAX + 8];
	bool created = false, canceled = false;
	int64_t rev = 0, compact = 0, max_mod = 0;
	size_t ne = 0;
	int rc;

	if (!o) {
		quote(p, n, q, sizeof(q));
		return watch_end(w, CPN_ETCD_EPROTO,
				 "etcd %s: a message that is no JSON object: '%s'", w->url, q);
	}
	snprintf(q, sizeof(q), "etcd %.190s", w->url);
	if ((rc = answer_error(o, q, msg, sizeof(msg)))) {
		json_object_put(o);
		return watch_end(w, rc, "%s", msg);
	}
	r = member(o, "result");
	if (!r || header_revision(r, &rev, msg, sizeof(msg)) || get_bool(r, "created", &created) ||
	    get_bool(r, "canceled", &canceled) || get_i64(r, "compact_revision", &compact)) {
		json_object_put(o);
		return watch_end(w, CPN_ETCD_EPROTO,
				 "etcd %s: a watch message without a result, a "
				 "header or with fields of the wrong type",
				 w->url);
	}
	if (canceled) {
		json_object *why = member(r, "cancel_reason");

		q[0] = 0;
		if (why && json_object_is_type(why, json_type_string))
			quote(json_object_get_string(why), (size_t)json_object_get_string_len(why),
			      q, sizeof(q));
		json_object_put(o);
		if (compact > 0)
			return watch_end(
			    w, CPN_ETCD_ECOMPACTED,
			    "etcd %s: the watch's start revision is compacted (to %" PRId64 ")",
			    w->url, compact);
		return watch_end(w, CPN_ETCD_ESERVER, "etcd %s: watch canceled: %s", w->url,
				 q[0] ? q : "no reason given");
	}
	evs = member(r, "events");
	if (evs && !json_object_is_type(evs, json_type_array)) {
		json_object_put(o);
		return watch_end(w, CPN_ETCD_EPROTO, "etcd %s: watch events that are no array",
				 w->url);
	}
	ne = evs ? json_object_array_length(evs) : 0;
	for (size_t i = 0; i < ne; i++) {
		if ((rc = add_event(out, json_object_array_get_idx(evs, i), msg, sizeof(msg)))) {
			json_object_put(o);
			return watch_end(w, rc, "etcd %s: %s", w->url, msg);
		}
		if (out->ev[out->n - 1].kv.mod_revision > max_mod)
			max_mod = out->ev[out->n - 1].kv.mod_revision;
	}
	json_object_put(o);
	/* Events, or a progress report, bring the watcher to the header's
	 * revision; the message that says the watch is created does not (the
	 * events since start_revision may still be on their way).
	 */
	if (ne && max_mod > out->revision)
		out->revision = max_mod;
	if ((ne || !created) && rev > out->revision)
		out->revision = rev;
	return 0;
}

/* Parse every whole line received. */
static int watch_lines(struct cpn_etcd_watch *w, struct cpn_etcd_events *out)
{
	int rc = 0;

	while (!rc && w->parsed < w->in.len) {
		char *s = w->in.p + w->parsed;
		char *nl = memchr(s, '\n', w->in.len - w->parsed);
		size_t n;

		if (!nl)
			break;
		n = (size_t)(nl - s);
		w->parsed += n + 1;
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
		if (n)
			rc = watch_message(w, s, n, out);
	}
	/* Keep only the partial line. */
	if (w->parsed) {
		memmove(w->in.p, w->in.p + w->parsed, w->in.len - w->parsed);
		w->in.len -= w->parsed;
		w->parsed = 0;
		if (w->in.p)
			w->in.p[w->in.len] = 0;
	}
	return rc;
}

/* Run the transfer, note its end, take the whole lines it brought. */
static void watch_step(struct cpn_etcd_watch *w, struct cpn_etcd_events *out)
{
	int running = 0, msgs;
	CURLMsg *m;

	curl_multi_perform(w->multi, &running);
	while ((m = curl_multi_info_read(w->multi, &msgs)))
		if (m->msg == CURLMSG_DONE) {
			w->done = true;
			w->cc = m->data.result;
		}
	if (w->in.over)
		watch_end(w, CPN_ETCD_EPROTO, "etcd %s: a watch message larger than %u bytes",
			  w->url, CPN_ETCD_MAX_ANSWER);
	else if (w->in.nomem)
		watch_end(w, CPN_ETCD_ENOMEM, "etcd %s: out of memory", w->url);
	else
		watch_lines(w, out);
}

int cpn_etcd_watch_poll(struct cpn_etcd_watch *w, int timeout_ms, struct cpn_etcd_events *out,
			char *err, size_t err_len)
{
	size_t n0 = out->n;
	int64_t rev0 = out->revision;

	if (w->ended)
		return errf(err, err_len, w->ended, "%s", w->ended_msg);
	watch_step(w, out);
	/* Nothing new yet: wait for the socket, at most timeout_ms. */
	if (!w->ended && !w->done && out->n == n0 && out->revision == rev0) {
		curl_multi_poll(w->multi, NULL, 0, timeout_ms < 0 ? 0 : timeout_ms, NULL);
		watch_step(w, out);
	}
	if (!w->ended && w->done) {
		long http = 0;
		char q[QUOTE_MAX + 8];

		curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &http);
		quote(w->in.p ? w->in.p : "", w->in.len, q, sizeof(q));
		if (w->cc != CURLE_OK)
			watch_end(w, CPN_ETCD_EUNREACH, "etcd %s: %s", w->url,
				  w->curl_err[0] ? w->curl_err : curl_easy_strerror(w->cc));
		else if (http != 200)
			watch_end(w, CPN_ETCD_ESERVER, "etcd %s: HTTP %ld: %s", w->url, http, q);
		else
			watch_end(w, CPN_ETCD_EUNREACH, "etcd %s: the watch stream ended", w->url);
	}
	if (w->ended)
		return errf(err, err_len, w->ended, "%s", w->ended_msg);
	return 0;
}
