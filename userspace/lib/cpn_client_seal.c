// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Sealed payloads on libsodium (cpn_seal.h).
 */
#include <pthread.h>
#include <string.h>
#include <sodium.h>

#include "cpn_seal.h"

_Static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == CPN_SEAL_NONCE_LEN, "nonce");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == CPN_SEAL_MAC_LEN, "tag");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == CPN_SEAL_KEY_LEN, "key");

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_rc = -1;

static void init_once(void)
{
	init_rc = sodium_init() < 0 ? -1 : 0;
}

int cpn_seal_init(void)
{
	pthread_once(&once, init_once);
	return init_rc;
}

void cpn_seal_ad(const struct cpn_hdr *h, uint8_t ad[CPN_SEAL_AD_LEN])
{
	__be16 flags = h->flags & ~cpn_htons(CPN_SEAL_AD_ZERO);

	memcpy(ad, h, CPN_SEAL_AD_LEN);
	memcpy(ad + __builtin_offsetof(struct cpn_hdr, flags), &flags, sizeof(flags));
}

int cpn_seal(const uint8_t key[CPN_SEAL_KEY_LEN], const uint8_t ad[CPN_SEAL_AD_LEN], const void *pt,
	     size_t len, uint8_t *out)
{
	if (cpn_seal_init())
		return -1;
	randombytes_buf(out, CPN_SEAL_NONCE_LEN);
	return crypto_aead_xchacha20poly1305_ietf_encrypt(out + CPN_SEAL_NONCE_LEN, NULL, pt, len,
							  ad, CPN_SEAL_AD_LEN, NULL, out, key)
		   ? -1
		   : 0;
}

int cpn_open_inplace(const uint8_t key[CPN_SEAL_KEY_LEN], const uint8_t ad[CPN_SEAL_AD_LEN],
		     uint8_t *buf, size_t len)
{
	uint8_t nonce[CPN_SEAL_NONCE_LEN];
	uint8_t *c = buf + CPN_SEAL_NONCE_LEN;

	if (len < CPN_SEAL_OVERHEAD || cpn_seal_init())
		return -1;
	memcpy(nonce, buf, sizeof(nonce));
	/* libsodium decrypts in place when m == c. */
	return crypto_aead_xchacha20poly1305_ietf_decrypt(
		   c, NULL, NULL, c, len - CPN_SEAL_NONCE_LEN, ad, CPN_SEAL_AD_LEN, nonce, key)
		   ? -1
		   : 0;
}

int cpn_seal_key_parse(const char *hex, uint8_t key[CPN_SEAL_KEY_LEN])
{
	size_t n = 0;

	if (!hex || strlen(hex) != 2 * CPN_SEAL_KEY_LEN ||
	    sodium_hex2bin(key, CPN_SEAL_KEY_LEN, hex, 2 * CPN_SEAL_KEY_LEN, NULL, &n, NULL) ||
	    n != CPN_SEAL_KEY_LEN)
		return -1;
	return 0;
}
