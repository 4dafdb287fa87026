// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* One request to a cpn service, its reply printed: client VIP:PORT TEXT [KEY]. */
#include <stdio.h>
#include <string.h>
#include <cpn/client.h>

int main(int argc, char **argv)
{
	char reply[65536];
	size_t len;
	int err = 0;

	if (argc != 3 && argc != 4)
		return fprintf(stderr, "usage: client VIP:PORT TEXT [KEY]\n"), 2;
	struct cpn_client *cl = cpn_client_open(argv[1], 1, 42, &err); /* service 1, tenant 42 */
	if (!cl)
		return fprintf(stderr, "client: %s: %s\n", argv[1], cpn_strerror(err)), 2;
	if (argc == 4 && (err = cpn_client_set_key(cl, argv[3])) == 0)
		cpn_client_setopt(cl, CPN_OPT_TIMEOUT_MS, 300);
	if (!err)
		err = cpn_client_call(cl, argv[2], strlen(argv[2]), reply, sizeof(reply), &len, 0);
	if (!err)
		printf("%.*s\n", (int)len, reply);
	else
		fprintf(stderr, "client: %s\n", cpn_strerror(err));
	cpn_client_close(cl);
	return err ? 1 : 0;
}
