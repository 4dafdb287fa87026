/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The last stage of a node: datagrams out. A message is sealed (encoded,
 * and signed with the node key when there is one) into a wk_out that
 * gathers its payload from wherever it lies (a request, a kernel's output),
 * then sent with sendmmsg, or held back --delay-us first.
 */
#ifndef CPN_WORKER_TX_H
#define CPN_WORKER_TX_H

#include <pthread.h>

#include "worker_base.h"

/* One datagram to send: header (and tag, and a fragment header) plus a
 * payload from elsewhere.
 */
struct wk_out {
	const struct wk_addr *dst;
	uint8_t hdr[WK_HDR_MAX + CPN_FRAG_LEN];
	uint32_t hlen;
	const void *pl;
	uint32_t plen;
};

struct wk_held;

struct wk_tx {
	int fd;
	uint16_t node_id;
	int have_key;
	__u64 key[2];
	unsigned delay_us;
	struct wk_stats *st;

	/* the routers, and when anything last went to each (by address; only
	 * where liveness-only heartbeats need it): CLOCK_MONOTONIC ns, atomic
	 */
	const struct wk_addr *routers;
	int n_routers;
	int track;
	uint64_t last_ns[WK_MAX_ROUTERS];

	/* --delay-us: datagrams in due order, sent by the hold thread */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	struct wk_held *head, *tail;
	pthread_t th;
	int started, stop, sync_ok;
};

/* key: the node key (two words), or NULL to send unsigned. */
int wk_tx_init(struct wk_tx *tx, int fd, uint16_t node_id, const __u64 *key, unsigned delay_us,
	       struct wk_stats *st);
/* Starts the hold thread where --delay-us asks for one. */
int wk_tx_start(struct wk_tx *tx, char *err, size_t errlen);
/* Sends what is held (each at its time), then stops the hold thread. */
void wk_tx_stop(struct wk_tx *tx);
void wk_tx_fini(struct wk_tx *tx);

/* An answer to `in`: its identity (service, tenant, session, request id,
 * hops, class, router timestamp) echoed, as every answer to a request must.
 */
void wk_msg_answer(struct cpn_msg *out, const struct cpn_msg *in, __u8 type);
/* Encode m into o->hdr for dst, signed when the node has a key; no payload. */
void wk_tx_seal(struct wk_tx *tx, struct cpn_msg *m, struct wk_out *o, const struct wk_addr *dst);
/* Append a fragment header (struct cpn_frag) to a sealed o. */
void wk_out_frag(struct wk_out *o, uint32_t total, uint32_t offset);
/* Send n datagrams: now, or each held --delay-us. */
void wk_tx_send(struct wk_tx *tx, struct wk_out *o, int n);
/* Send now, never held (LOAD heartbeats, which carry no timestamp). */
void wk_tx_send_now(struct wk_tx *tx, struct wk_out *o, int n);
/* Track what goes to each of the routers (wk_tx.last_ns). */
void wk_tx_track_routers(struct wk_tx *tx, const struct wk_addr *routers, int n);

#endif /* CPN_WORKER_TX_H */
