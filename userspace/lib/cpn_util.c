// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Numbers, keys, the clock: see cpn_util.h. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpn/compiler.h"
#include "cpn_util.h"

int cpn_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	unsigned long long v;
	int base = 10;
	char *end;

	if (!s || !*s)
		return -1;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	/* strtoull takes a sign and leading space: neither is a number here. */
	if (!*s || !strchr("0123456789abcdefABCDEF", *s) || (base == 10 && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int cpn_parse_size(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char num[32];
	size_t n = s ? strlen(s) : 0;
	uint64_t mul = 1, x;

	if (!n || n >= sizeof(num))
		return -1;
	switch (s[n - 1]) {
	case 'K':
	case 'k':
		mul = 1ull << 10;
		break;
	case 'M':
	case 'm':
		mul = 1ull << 20;
		break;
	case 'G':
	case 'g':
		mul = 1ull << 30;
		break;
	}
	memcpy(num, s, n + 1);
	if (mul > 1)
		num[n - 1] = 0;
	if (cpn_parse_u64(num, 0, UINT64_MAX / mul, &x) || x * mul < lo || x * mul > hi)
		return -1;
	*out = x * mul;
	return 0;
}

int cpn_parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint64_t v;

	if (cpn_parse_u64(s, lo, hi, &v))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int cpn_parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	if (!s || !*s || *s == ' ' || *s == '\t')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cpn_key_parse(const char *hex, __u64 key[2])
{
	uint8_t b[16];

	if (!hex || strlen(hex) != 32)
		return -1;
	for (int i = 0; i < 16; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(key, b, 16);
	key[0] = cpn_le64(key[0]);
	key[1] = cpn_le64(key[1]);
	return 0;
}
