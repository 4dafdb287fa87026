/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Sealed payloads (docs/PROTOCOL.md, "Sealed payloads"), for the client and
 * the worker library: XChaCha20-Poly1305 (IETF) of libsodium under a
 * tenant's 32-byte payload key. A sealed payload is a random 24-byte nonce,
 * then the ciphertext and its 16-byte authenticator.
 *
 * The additional data is the header's bytes 0..23 with the flags that
 * change between the datagrams of one message, or on the way, zeroed:
 * TAGGED (the steering hop's), FRAG and CONT (which fragment), TOKEN and
 * DRAINING (the node's state when each datagram leaves). What stays bound:
 * magic, version, type, the other flags, service, tenant, session and
 * request id: a sealed payload opens only in the message it was sealed for,
 * and a request's never as a reply.
 */
#ifndef CPN_SEAL_H
#define CPN_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "cpn/proto.h"

#define CPN_SEAL_AD_LEN	 24
#define CPN_SEAL_AD_ZERO (CPN_F_TAGGED | CPN_F_FRAG | CPN_F_CONT | CPN_F_TOKEN | CPN_F_DRAINING)

/* libsodium's sodium_init(), once: 0, or -1 when it cannot start. */
int cpn_seal_init(void);

/* The additional data of a sealed payload in the message of header h. */
void cpn_seal_ad(const struct cpn_hdr *h, uint8_t ad[CPN_SEAL_AD_LEN]);

/* Seal len bytes of pt into out (len + CPN_SEAL_OVERHEAD bytes; out and pt
 * must not overlap). 0, or -1.
 */
int cpn_seal(const uint8_t key[CPN_SEAL_KEY_LEN], const uint8_t ad[CPN_SEAL_AD_LEN], const void *pt,
	     size_t len, uint8_t *out);

/* Open a sealed payload of len bytes in place: its plaintext, len -
 * CPN_SEAL_OVERHEAD bytes, is left at buf + CPN_SEAL_NONCE_LEN. 0, or -1
 * when it does not open (too short, another key, altered).
 */
int cpn_open_inplace(const uint8_t key[CPN_SEAL_KEY_LEN], const uint8_t ad[CPN_SEAL_AD_LEN],
		     uint8_t *buf, size_t len);

/* 64 hex digits into 32 bytes: 0, or -1. */
int cpn_seal_key_parse(const char *hex, uint8_t key[CPN_SEAL_KEY_LEN]);

#endif /* CPN_SEAL_H */
