/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * libcpn's etcd client: etcd v3 through its JSON gateway (the HTTP front of
 * its gRPC API, under /v3/ from etcd 3.4 on), over libcurl, with json-c for
 * the JSON. Keys and values travel base64-encoded, revisions and lease ids
 * as decimal strings; the client hides both.
 *
 * Every call is bounded: a connect timeout and a whole-call timeout
 * (cpn_etcd_open), the watch by the caller's poll. An endpoint list
 * ("http://a:2379,http://b:2379") is tried in order where one cannot be
 * connected to; the one that answered is kept for the next call. What etcd
 * answers is treated as untrusted: every field is checked for its type and
 * range, answers are capped at CPN_ETCD_MAX_ANSWER bytes, and anything else
 * is a CPN_ETCD_EPROTO error with a message, never a crash. Messages from
 * the server are quoted with control characters replaced.
 *
 * Functions return 0 or a negative enum cpn_etcd_rc and write a message to
 * err (err_len bytes) on failure. A handle is for one thread at a time.
 */
#ifndef CPN_USER_ETCD_H
#define CPN_USER_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cpn_etcd_rc {
	CPN_ETCD_OK = 0,
	CPN_ETCD_EUNREACH = -1,	  /* no answer: refused, timed out, cut off: retry later */
	CPN_ETCD_ESERVER = -2,	  /* etcd answered with an error (err quotes it) */
	CPN_ETCD_EPROTO = -3,	  /* the answer is not what etcd's gateway sends */
	CPN_ETCD_ENOMEM = -4,	  /* out of memory */
	CPN_ETCD_ECOMPACTED = -5, /* watch: its start revision is compacted: list again */
	CPN_ETCD_ENOLEASE = -6,	  /* the lease is gone (expired or revoked) */
	CPN_ETCD_EINVAL = -7,	  /* a bad argument (URL, key, TTL) */
};

#define CPN_ETCD_MAX_URLS   8
#define CPN_ETCD_MAX_ANSWER (64u << 20) /* bytes of one answer, or of one watch message */
#define CPN_ETCD_TIMEOUT_MS 3000	/* a call's default bound */

struct cpn_etcd;

/* urls: one or more http:// or https:// endpoints, comma-separated.
 * timeout_ms: the bound of each call (0: CPN_ETCD_TIMEOUT_MS); connecting
 * is bounded by the smaller of it and 1 s. NULL with err on a bad URL list.
 */
struct cpn_etcd *cpn_etcd_open(const char *urls, unsigned timeout_ms, char *err, size_t err_len);
void cpn_etcd_close(struct cpn_etcd *e);
/* The endpoint the next call goes to first. */
const char *cpn_etcd_endpoint(const struct cpn_etcd *e);

/* A key and its value, as etcd keeps them. key and value are copies with
 * a NUL after their bytes (value "" when empty).
 */
struct cpn_etcd_kv {
	char *key;
	size_t key_len;
	char *value;
	size_t value_len;
	int64_t create_revision, mod_revision, version, lease;
};

struct cpn_etcd_kvs {
	struct cpn_etcd_kv *kv;
	size_t n;
	int64_t revision; /* the store's revision when it answered */
};

void cpn_etcd_kvs_free(struct cpn_etcd_kvs *kvs);

/* One key, or every key under a prefix (sorted by key). */
int cpn_etcd_get(struct cpn_etcd *e, const char *key, bool prefix, struct cpn_etcd_kvs *out,
		 char *err, size_t err_len);
/* lease 0: none. *revision (may be NULL): the revision of the put. */
int cpn_etcd_put(struct cpn_etcd *e, const char *key, const void *value, size_t value_len,
		 int64_t lease, int64_t *revision, char *err, size_t err_len);
/* *deleted (may be NULL): how many keys went. */
int cpn_etcd_delete(struct cpn_etcd *e, const char *key, bool prefix, int64_t *deleted,
		    int64_t *revision, char *err, size_t err_len);

/* ---- transactions: if every compare holds, the success ops, else the
 * failure ops; all in one revision.
 */
enum cpn_etcd_op_type { CPN_ETCD_OP_PUT, CPN_ETCD_OP_DELETE, CPN_ETCD_OP_GET };

struct cpn_etcd_op {
	int type; /* enum cpn_etcd_op_type */
	const char *key;
	bool prefix; /* DELETE, GET: every key under key */
	const void *value;
	size_t value_len;
	int64_t lease; /* PUT */
};

enum cpn_etcd_target {
	CPN_ETCD_CMP_CREATE,  /* create_revision (0: the key does not exist) */
	CPN_ETCD_CMP_MOD,     /* mod_revision */
	CPN_ETCD_CMP_VERSION, /* version */
	CPN_ETCD_CMP_VALUE,   /* value */
};

enum cpn_etcd_result { CPN_ETCD_EQ, CPN_ETCD_NE, CPN_ETCD_LT, CPN_ETCD_GT };

struct cpn_etcd_cmp {
	const char *key;
	int target; /* enum cpn_etcd_target */
	int result; /* enum cpn_etcd_result */
	int64_t num;
	const void *value; /* CPN_ETCD_CMP_VALUE */
	size_t value_len;
};

struct cpn_etcd_txn_res {
	bool succeeded;
	int64_t revision;
	struct cpn_etcd_kvs got; /* what the branch's GET ops found, in order */
};

int cpn_etcd_txn(struct cpn_etcd *e, const struct cpn_etcd_cmp *cmp, int n_cmp,
		 const struct cpn_etcd_op *success, int n_success,
		 const struct cpn_etcd_op *failure, int n_failure, struct cpn_etcd_txn_res *res,
		 char *err, size_t err_len);
void cpn_etcd_txn_res_free(struct cpn_etcd_txn_res *res);

/* ---- leases ---------------------------------------------------------------- */

/* A lease of ttl_s seconds; *granted: the TTL etcd gave (it may raise it). */
int cpn_etcd_lease_grant(struct cpn_etcd *e, int64_t ttl_s, int64_t *id, int64_t *granted,
			 char *err, size_t err_len);
/* One keep-alive; *ttl: what is left. CPN_ETCD_ENOLEASE when it is gone. */
int cpn_etcd_lease_keepalive(struct cpn_etcd *e, int64_t id, int64_t *ttl, char *err,
			     size_t err_len);
/* CPN_ETCD_ENOLEASE when it was gone already. */
int cpn_etcd_lease_revoke(struct cpn_etcd *e, int64_t id, char *err, size_t err_len);

/* ---- watch: a streaming call, polled by its caller ---------------------- */

enum cpn_etcd_ev_type { CPN_ETCD_EV_PUT, CPN_ETCD_EV_DELETE };

struct cpn_etcd_event {
	int type; /* enum cpn_etcd_ev_type */
	struct cpn_etcd_kv kv;
};

struct cpn_etcd_events {
	struct cpn_etcd_event *ev;
	size_t n, cap;
	/* The revision the events bring a watcher to: everything up to it has
	 * been delivered (0 when nothing said so yet). Resume from it + 1.
	 */
	int64_t revision;
};

void cpn_etcd_events_free(struct cpn_etcd_events *evs); /* and empties it for reuse */

struct cpn_etcd_watch;

/* Watch key (or every key under it) from start_revision (0: from now). The
 * call returns at once; the stream is read by cpn_etcd_watch_poll().
 */
int cpn_etcd_watch_start(struct cpn_etcd *e, const char *key, bool prefix, int64_t start_revision,
			 struct cpn_etcd_watch **w, char *err, size_t err_len);
/* Wait at most timeout_ms for the stream; append its events to out. 0 while
 * the watch goes on, or how it ended: CPN_ETCD_EUNREACH (cut off),
 * CPN_ETCD_ECOMPACTED (list again and watch from the list's revision),
 * CPN_ETCD_ESERVER, CPN_ETCD_EPROTO. Events delivered before the end are in
 * out all the same.
 */
int cpn_etcd_watch_poll(struct cpn_etcd_watch *w, int timeout_ms, struct cpn_etcd_events *out,
			char *err, size_t err_len);
void cpn_etcd_watch_stop(struct cpn_etcd_watch *w);

/* ---- the gateway's encoding ------------------------------------------------ */

/* Standard base64 with padding into out (4 * ((len + 2) / 3) + 1 bytes, NUL
 * ended); returns its length.
 */
size_t cpn_b64_encode(const void *in, size_t len, char *out);
/* Strict: padded, no whitespace, nothing after the padding. out holds
 * len / 4 * 3 bytes. 0, or -1 for input that is not base64.
 */
int cpn_b64_decode(const char *in, size_t len, void *out, size_t *out_len);

/* A message for an enum cpn_etcd_rc. */
const char *cpn_etcd_strerror(int rc);

#endif /* CPN_USER_ETCD_H */
