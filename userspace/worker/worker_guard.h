/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A node's check of the requests it is sent (docs/PROTOCOL.md, "Freshness,
 * hop tags and cookies"), on the receive thread, before anything else is
 * done with them. With the hop key (--hop-key) a node answers only what a
 * router of its fleet steered to it:
 *
 *   unrouted  a REQUEST (whole, a fragment, or a client's ack of a large
 *             reply) without TAGGED, addressed to another node_id, or whose
 *             hop tag (worker_us) is not cpn_hop_tag() under the hop key;
 *   stale     one whose FRESH stamp is further than --freshness-ms from
 *             the node's CLOCK_TAI;
 *   replay    a whole request or first fragment whose (request id, tenant,
 *             hop tag) the node saw within --freshness-ms (the later
 *             fragments of a message share its hop tag: reassembly ties them
 *             to it).
 *
 * Each is dropped without an answer and counted (cpn_worker_ignored_total,
 * by reason). The replay cache is two generations of fingerprints, each
 * --freshness-ms long: what was seen is remembered for at least the window.
 */
#ifndef CPN_WORKER_GUARD_H
#define CPN_WORKER_GUARD_H

#include "worker_base.h"

#define WK_GUARD_MAX_SLOTS (1u << 22) /* fingerprints per generation at most */

struct wk_guard_gen {
	uint64_t *fp; /* open addressing; 0: empty */
	uint32_t cap, n;
};

struct wk_guard {
	int on; /* a hop key is set */
	__u64 hop_key[2];
	uint16_t node_id;
	unsigned window_ms;
	__u64 fp_key[2]; /* random: fingerprints nobody can aim at */
	struct wk_guard_gen gen[2];
	int cur;
	uint64_t gen_start_ns; /* CLOCK_MONOTONIC */
	struct wk_stats *st;
};

/* hop_key NULL: the guard lets everything through. 0, or -ENOMEM. */
int wk_guard_init(struct wk_guard *g, const __u64 *hop_key, uint16_t node_id, unsigned window_ms,
		  struct wk_stats *st);
void wk_guard_fini(struct wk_guard *g);
/* Whether the REQUEST h (len bytes) may be taken: 1 yes, 0 dropped and
 * counted.
 */
int wk_guard_request(struct wk_guard *g, const struct cpn_hdr *h, uint64_t now_ns);

#endif /* CPN_WORKER_GUARD_H */
