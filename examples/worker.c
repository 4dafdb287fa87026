// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A cpn node: each request answered with the sum of its bytes (4 bytes, host order). */
#include <stdio.h>
#include <stdlib.h>
#include <cpn/worker.h>
static void *slot_open(void *user, int slot, int max_batch, char *err, size_t errlen)
{
	(void)user, (void)slot, (void)err, (void)errlen;
	return calloc((size_t)max_batch, 4); /* the replies, kept until the next batch */
}
static void run(void *slot, const struct cpn_worker_request *req, int n,
		struct cpn_worker_reply *rep)
{
	for (int i = 0; i < n; i++) {
		uint32_t *sum = (uint32_t *)slot + i;
		for (uint32_t k = *sum = 0; k < req[i].len; k++)
			*sum += ((const uint8_t *)req[i].payload)[k];
		rep[i] = (struct cpn_worker_reply){.status = 0, .payload = sum, .len = 4};
	}
}
int main(int argc, char **argv) /* worker LISTEN ROUTER NODE_ID; SIGTERM drains it */
{
	struct cpn_worker_handler h = {
	    .kernel = "sum", .slot_open = slot_open, .run = run, .slot_close = free};
	struct cpn_worker_config *c = cpn_worker_config_new();
	struct cpn_worker *w = NULL;
	char err[256] = "usage: worker LISTEN ROUTER NODE_ID";
	int rc = 2;
	if (argc == 4 && !cpn_worker_config_set(c, "listen", argv[1]) &&
	    !cpn_worker_config_set(c, "router", argv[2]) &&
	    !cpn_worker_config_set(c, "node-id", argv[3]) &&
	    !cpn_worker_open(&w, c, &h, err, sizeof(err)))
		rc = cpn_worker_run(w, "worker");
	else
		fprintf(stderr, "worker: %s %s\n", err, cpn_worker_config_error(c));
	cpn_worker_close(w);
	cpn_worker_config_free(c);
	return rc;
}
