// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Fuzz target: the wire format (include/cpn/proto.h, siphash.h). Any bytes
 * are checked as a header; a header that passes decodes and encodes back to
 * the same 48 bytes; every tag function runs over it; a FRAG header's
 * struct cpn_frag is judged by the rules of docs/PROTOCOL.md, "Large
 * messages", which must agree with the bounds they imply.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cpn/proto.h>
#include <cpn/siphash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const __u64 key[2] = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpn_hdr h, h2;
	struct cpn_msg m;
	struct cpn_frag f;
	__u32 len = size > UINT32_MAX ? UINT32_MAX : (__u32)size, hl;
	volatile __u64 sink = 0;
	__u8 addr16[16] = {0};

	if (size < sizeof(h)) {
		/* cpn_hdr_check reads only what len says is there. */
		memset(&h, 0, sizeof(h));
		memcpy(&h, data, size);
		if (cpn_hdr_check(&h, len) != CPN_HDR_SHORT)
			abort();
		return 0;
	}
	memcpy(&h, data, sizeof(h));
	if (cpn_hdr_check(&h, len) != CPN_HDR_OK)
		return 0;
	hl = cpn_hdr_total_len(&h);
	if (hl > len || (hl != CPN_HDR_LEN && hl != CPN_HDR_LEN + CPN_TAG_LEN))
		abort();

	/* decode then encode is the identity on every field. */
	cpn_hdr_decode(&h, &m);
	memset(&h2, 0xa5, sizeof(h2));
	cpn_hdr_encode(&m, &h2);
	if (memcmp(&h, &h2, sizeof(h)))
		abort();

	/* The tags: deterministic, and the request tag ignores the hop-owned flag. */
	sink ^= cpn_tag_request(key, &h);
	sink ^= cpn_tag_request_fresh(key, &h);
	sink ^= cpn_tag_request_any(key, &h);
	sink ^= cpn_hop_tag(key, &h);
	sink ^= cpn_probe_cookie(key, h.node_id, h.router_ts);
	sink ^= cpn_tag_node(key, &h);
	memcpy(addr16, data + 2, 14);
	sink ^= cpn_tag_join(key, &h, addr16, h.service_id);
	h2 = h;
	h2.flags ^= cpn_htons(CPN_F_HOP_OWNED);
	if (cpn_tag_request_any(key, &h) != cpn_tag_request_any(key, &h2))
		abort();
	if (cpn_tag_node(key, &h) != cpn_tag_node(key, &h))
		abort();
	(void)sink;

	/* The fragment header after header and tag. */
	if ((m.flags & CPN_F_FRAG) && len >= hl + CPN_FRAG_LEN) {
		__u32 total, off, dlen;
		int ok;

		memcpy(&f, data + hl, sizeof(f));
		total = cpn_ntohl(f.total);
		off = cpn_ntohl(f.offset);
		dlen = len - hl - CPN_FRAG_LEN;
		ok = total && total <= CPN_FRAG_MAX_TOTAL && off <= total && dlen <= total - off;
		if (ok && ((__u64)off + dlen > total || total > CPN_FRAG_MAX_TOTAL))
			abort();
		/* A first fragment (no CONT) starts at 0. */
		if (ok && !(m.flags & CPN_F_CONT) && off != 0)
			ok = 0;
		sink ^= (__u64)ok;
	}
	return 0;
}
