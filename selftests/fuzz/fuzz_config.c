// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Fuzz target: the YAML configuration (userspace/lib/cpn_cfg_parse.c and
 * cpn_cfg_check.c through cpn_cfg_parse()). Any bytes are either a config
 * or refused with an error message; a refused config is left empty. An
 * accepted one is validated again, written out and parsed back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cpn_cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpn_cfg cfg, back;
	struct cpn_err err;
	char *buf = NULL;
	size_t blen = 0;
	FILE *f;

	if (size > 1 << 16)
		return 0;
	memset(&err, 0, sizeof(err));
	cpn_cfg_init(&cfg);
	if (cpn_cfg_parse("fuzz.yaml", (const char *)data, size, &cfg, &err)) {
		if (!err.msg[0])
			abort(); /* refused without a word */
		cpn_cfg_free(&cfg);
		return 0;
	}
	if (cpn_cfg_validate(&cfg, &err))
		abort(); /* parse accepted what validation refuses */
	f = open_memstream(&buf, &blen);
	if (!f)
		abort();
	if (cpn_cfg_write(f, &cfg))
		abort();
	fclose(f);
	cpn_cfg_init(&back);
	if (cpn_cfg_parse("fuzz-out.yaml", buf, blen, &back, &err)) {
		fprintf(stderr, "written config not read back: %s\n%s", err.msg, buf);
		abort();
	}
	cpn_cfg_free(&back);
	cpn_cfg_free(&cfg);
	free(buf);
	return 0;
}
