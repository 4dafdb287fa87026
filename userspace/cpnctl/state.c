// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpnctl's desired state and how the router's maps are brought to it.
 *
 * Every change — apply, service/node/tenant add/del, drain, a node joining —
 * is the same three steps under the state lock: load the desired state,
 * change it, commit it. A commit validates the whole config first (nothing
 * changes when it is wrong), then reconciles the maps to it by comparing
 * with what the maps hold now (not with the state file: the maps are the
 * truth the data plane sees), writing only what differs, in an order that
 * no packet can observe half-done:
 *
 *   1. global config
 *   2. nodes that are new or changed (a node whose address changes is first
 *      taken out of the running services that name it)
 *   3. services that are new or changed (Maglev table, service, VIP)
 *   4. tenants that are new or changed
 *   5. services, tenants that are gone
 *   6. nodes that are gone (no service names them any more) are retired:
 *      never chosen again, but the replies still in flight from them are
 *      forwarded; the daemon deletes them once they have been quiet
 *
 * and finally saves the config as the new desired state (write + rename).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>

#include "cpn/sched.h"
#include "cpnctl.h"

static int errf(struct cpn_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int errf(struct cpn_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int mkdir_p(const char *dir)
{
	char tmp[512];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0755) && errno != EEXIST)
		return -1;
	return 0;
}

int cpn_ctl_open(struct cpn_ctl *ctl, const char *pin_dir, const char *state_dir,
		 struct cpn_err *err)
{
	char name[256], lock[600];
	int rc;

	memset(ctl, 0, sizeof(*ctl));
	ctl->lock_fd = -1;
	snprintf(ctl->pin_dir, sizeof(ctl->pin_dir), "%s", pin_dir);
	/* One state file per router: the pin dir, '/' turned into '_'. */
	snprintf(name, sizeof(name), "%s", pin_dir);
	for (char *p = name; *p; p++)
		if (*p == '/')
			*p = '_';
	snprintf(ctl->state_path, sizeof(ctl->state_path), "%s/%s.yaml", state_dir, name);
	if (mkdir_p(state_dir))
		return errf(err, "cannot create state directory %s: %s", state_dir,
			    strerror(errno));
	snprintf(lock, sizeof(lock), "%s.lock", ctl->state_path);
	ctl->lock_fd = open(lock, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
	if (ctl->lock_fd < 0)
		return errf(err, "cannot open %s: %s", lock, strerror(errno));
	rc = cpn_maps_open_pinned(&ctl->maps, pin_dir);
	if (rc == -EPROTO) {
		close(ctl->lock_fd);
		ctl->lock_fd = -1;
		return errf(err, "the router pinned at %s: " CPN_MAPS_LAYOUT_HINT, pin_dir);
	}
	if (rc) {
		close(ctl->lock_fd);
		ctl->lock_fd = -1;
		return errf(err, "no cpn router pinned at %s (%s)%s: run 'cpnctl up' first",
			    pin_dir, strerror(-rc), cpn_bpffs_hint(pin_dir));
	}
	ctl->maps_open = true;
	return 0;
}

void cpn_ctl_close(struct cpn_ctl *ctl)
{
	if (ctl->maps_open)
		cpn_maps_close(&ctl->maps);
	ctl->maps_open = false;
	if (ctl->lock_fd >= 0)
		close(ctl->lock_fd);
	ctl->lock_fd = -1;
}

int cpn_ctl_lock(struct cpn_ctl *ctl, struct cpn_err *err)
{
	if (flock(ctl->lock_fd, LOCK_EX))
		return errf(err, "cannot lock %s.lock: %s", ctl->state_path, strerror(errno));
	return 0;
}

void cpn_ctl_unlock(struct cpn_ctl *ctl)
{
	flock(ctl->lock_fd, LOCK_UN);
}

int cpn_ctl_load(struct cpn_ctl *ctl, struct cpn_cfg *cfg, struct cpn_err *err)
{
	if (access(ctl->state_path, F_OK)) {
		cpn_cfg_init(cfg);
		return 0;
	}
	return cpn_cfg_load(ctl->state_path, cfg, err);
}

/* ---- reconcile (config -> map values: cfgmap.c) ----------------------- */

static bool same_service(const struct cpn_service *a, const struct cpn_service *b)
{
	struct cpn_service x = *a, y = *b;

	x.rr = y.rr = 0;
	return !memcmp(&x, &y, sizeof(x));
}

static bool same_tenant(const struct cpn_tenant *a, const struct cpn_tenant *b)
{
	return a->flags == b->flags && a->interval_ns == b->interval_ns &&
	       a->burst_ns == b->burst_ns && !memcmp(a->key, b->key, sizeof(a->key)) &&
	       !memcmp(a->key_next, b->key_next, sizeof(a->key_next)) &&
	       a->max_sessions == b->max_sessions &&
	       !memcmp(a->services, b->services, sizeof(a->services));
}

static bool svc_names(const struct cpn_service *s, __u16 node)
{
	for (__u32 i = 0; i < s->n_nodes && i < CPN_MAX_SVC_NODES; i++)
		if (s->nodes[i] == node)
			return true;
	return false;
}

/* Take `node` out of every running service that names it. */
static int unlist_node(struct cpn_maps *m, __u16 node)
{
	__u32 key, next, *prev = NULL;
	struct cpn_service s;

	while (!bpf_map_get_next_key(m->services, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(m->services, &key, &s) || !svc_names(&s, node))
			continue;
		__u16 keep[CPN_MAX_SVC_NODES];
		__u32 n = 0;

		for (__u32 i = 0; i < s.n_nodes && i < CPN_MAX_SVC_NODES; i++)
			if (s.nodes[i] != node)
				keep[n++] = s.nodes[i];
		cpn_svc_set_nodes(&s, keep, n);
		if (cpn_maps_set_service(m, (__u16)key, &s))
			return -1;
	}
	return 0;
}

static int reconcile(struct cpn_maps *m, const struct cpn_cfg *cfg, struct cpn_err *err)
{
	struct cpn_config gc = {0}, old_gc = {0};
	struct cpn_node_cfg nc, old_nc;
	struct cpn_service s, old_s;
	struct cpn_tenant t, old_t;
	bool weight_changed[CPN_MAX_NODES] = {false};
	bool opening[CPN_MAX_SERVICES] = {false};
	__u32 key, next, *prev;
	__u32 admin;
	int rc;

	/* 1. global config */
	cpn_maps_get_config(m, &old_gc);
	gc = old_gc;
	gc.control_port = htons(cfg->control_port);
	gc.max_hops = cfg->max_hops;
	gc.nh_ttl_ms = cfg->nh_ttl_ms;
	gc.fresh_ms = cfg->freshness_ms;
	/* The fleet's hop key; without one, the key this router drew at its
	 * first `up`, kept in the map (a lone router needs no other).
	 */
	if (cfg->has_hop_key) {
		gc.hop_key[0] = cfg->hop_key[0];
		gc.hop_key[1] = cfg->hop_key[1];
	} else if ((!gc.hop_key[0] && !gc.hop_key[1]) || gc.flags & CPN_CFG_FLEET_KEY) {
		if (getrandom(gc.hop_key, sizeof(gc.hop_key), 0) != sizeof(gc.hop_key))
			return errf(err, "cannot draw a hop key: %s", strerror(errno));
	}
	gc.flags = (gc.flags & ~CPN_CFG_FLEET_KEY) | (cfg->has_hop_key ? CPN_CFG_FLEET_KEY : 0);
	if (memcmp(&gc, &old_gc, sizeof(gc)) && (rc = cpn_maps_set_config(m, &gc)))
		return errf(err, "cannot write cpn_config: %s", strerror(-rc));

	/* 2. nodes new or changed */
	for (int i = 0; i < cfg->n_nodes; i++) {
		const struct cfg_node *c = &cfg->nodes[i];
		bool exists = !cpn_maps_get_node(m, c->id, &old_nc);

		cpn_cfg_to_node(c, &nc, &admin);
		if (exists && !memcmp(&nc, &old_nc, sizeof(nc))) {
			/* Same address: only admin state and weight may differ. */
			if (m->state[c->id].weight != c->weight) {
				weight_changed[c->id] = true;
				cpn_node_set_weight(&m->state[c->id], (__u16)c->weight);
			}
			if (m->state[c->id].admin != admin)
				__atomic_store_n(&m->state[c->id].admin, admin, __ATOMIC_RELEASE);
			continue;
		}
		if (exists && unlist_node(m, c->id))
			return errf(err, "cannot take node %u out of its services: %s", c->id,
				    strerror(errno));
		weight_changed[c->id] = true;
		rc = cpn_maps_set_node(m, c->id, &nc, c->weight, admin);
		if (rc)
			return errf(err, "cannot write node %u: %s", c->id, strerror(-rc));
	}

	/* 3. services new or changed (a weight change rebuilds the Maglev table) */
	for (int i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *c = &cfg->services[i];
		bool rebuild = false, exists;

		cpn_cfg_to_service(cfg, c, &s);
		for (int k = 0; k < c->n_nodes; k++)
			rebuild |= weight_changed[c->nodes[k]];
		exists = !cpn_maps_get_service(m, c->id, &old_s);
		/* A service is opened to every tenant (CPN_SVC_OPEN: no tenant
		 * looked up) only once the tenants are as the configuration
		 * says (step 6): should writing them fail, no tenant's key or
		 * rate is left unchecked. Closing it is safe at once.
		 */
		if ((s.flags & CPN_SVC_OPEN) && !(exists && (old_s.flags & CPN_SVC_OPEN))) {
			s.flags &= ~CPN_SVC_OPEN;
			opening[c->id] = true;
		}
		if (!rebuild && exists && same_service(&s, &old_s))
			continue;
		rc = cpn_maps_set_service(m, c->id, &s);
		if (rc)
			return errf(err, "cannot write service %s: %s", c->name, strerror(-rc));
	}

	/* 4. tenants new or changed */
	for (int i = 0; i < cfg->n_tenants; i++) {
		const struct cfg_tenant *c = &cfg->tenants[i];

		cpn_cfg_to_tenant(c, &t);
		key = c->id;
		if (!bpf_map_lookup_elem(m->tenants, &key, &old_t) && same_tenant(&t, &old_t))
			continue;
		rc = cpn_maps_set_tenant(m, c->id, &t);
		if (rc)
			return errf(err, "cannot write tenant %u: %s", c->id, strerror(-rc));
	}

	/* 5. services and tenants that are gone */
	for (prev = NULL; !bpf_map_get_next_key(m->services, prev, &next);) {
		key = next;
		if (!cpn_cfg_service(cfg, (__u16)key)) {
			cpn_maps_del_service(m, (__u16)key);
			continue; /* the iteration restarts from a key that still exists */
		}
		prev = &key;
	}
	for (prev = NULL; !bpf_map_get_next_key(m->tenants, prev, &next);) {
		key = next;
		if (!cpn_cfg_tenant(cfg, key)) {
			cpn_maps_del_tenant(m, key);
			continue;
		}
		prev = &key;
	}

	/* 6. services open to every tenant, now that the tenants are written */
	for (__u16 id = 0; id < CPN_MAX_SERVICES; id++) {
		if (!opening[id])
			continue;
		if (cpn_maps_get_service(m, id, &s))
			continue;
		s.flags |= CPN_SVC_OPEN;
		rc = cpn_maps_set_service(m, id, &s);
		if (rc)
			return errf(err, "cannot open service %u: %s", id, strerror(-rc));
	}

	/* 7. nodes that are gone: retired, deleted later by the daemon */
	for (__u16 id = 1; id < CPN_MAX_NODES; id++) {
		if (cpn_cfg_node(cfg, id) || cpn_maps_get_node(m, id, &old_nc))
			continue;
		rc = cpn_maps_retire_node(m, id);
		if (rc)
			return errf(err, "cannot retire node %u: %s", id, strerror(-rc));
	}
	return 0;
}

static int save(struct cpn_ctl *ctl, const struct cpn_cfg *cfg, struct cpn_err *err)
{
	char tmp[600];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", ctl->state_path);
	f = fopen(tmp, "w");
	if (!f)
		return errf(err, "cannot write %s: %s", tmp, strerror(errno));
	if (cpn_cfg_write(f, cfg) || fflush(f) || fsync(fileno(f))) {
		fclose(f);
		unlink(tmp);
		return errf(err, "cannot write %s: %s", tmp, strerror(errno));
	}
	fclose(f);
	if (rename(tmp, ctl->state_path))
		return errf(err, "cannot rename %s: %s", tmp, strerror(errno));
	return 0;
}

int cpn_ctl_commit(struct cpn_ctl *ctl, const struct cpn_cfg *cfg, struct cpn_err *err)
{
	if (cpn_cfg_validate(cfg, err))
		return -1;
	if (reconcile(&ctl->maps, cfg, err))
		return -1;
	return save(ctl, cfg, err);
}

/* ---- what the daemon applied from etcd ---------------------------------- */

int cpn_ctl_fleet_save(const struct cpn_ctl *ctl, const struct cpn_ctl_fleet *f,
		       struct cpn_err *err)
{
	char path[600], tmp[620];
	FILE *out;

	snprintf(path, sizeof(path), "%s.etcd", ctl->state_path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	out = fopen(tmp, "w");
	if (!out)
		return errf(err, "cannot write %s: %s", tmp, strerror(errno));
	fprintf(out, "etcd %s\ncluster %s\nrouter %s\nrevision %lld\ntime_ms %lld\n", f->etcd,
		f->cluster, f->router, f->revision, f->time_ms);
	if (fflush(out) || ferror(out)) {
		fclose(out);
		unlink(tmp);
		return errf(err, "cannot write %s: %s", tmp, strerror(errno));
	}
	fclose(out);
	if (rename(tmp, path))
		return errf(err, "cannot rename %s: %s", tmp, strerror(errno));
	return 0;
}

int cpn_ctl_fleet_load(const struct cpn_ctl *ctl, struct cpn_ctl_fleet *f)
{
	char path[600], line[512], key[32], val[300];
	int seen = 0;
	FILE *in;

	memset(f, 0, sizeof(*f));
	snprintf(path, sizeof(path), "%s.etcd", ctl->state_path);
	in = fopen(path, "r");
	if (!in)
		return -1;
	while (fgets(line, sizeof(line), in)) {
		val[0] = 0;
		if (sscanf(line, "%31s %299s", key, val) < 1)
			continue;
		if (!strcmp(key, "etcd"))
			snprintf(f->etcd, sizeof(f->etcd), "%s", val);
		else if (!strcmp(key, "cluster"))
			snprintf(f->cluster, sizeof(f->cluster), "%s", val);
		else if (!strcmp(key, "router"))
			snprintf(f->router, sizeof(f->router), "%s", val);
		else if (!strcmp(key, "revision"))
			seen += sscanf(val, "%lld", &f->revision) == 1;
		else if (!strcmp(key, "time_ms"))
			sscanf(val, "%lld", &f->time_ms);
	}
	fclose(in);
	return seen ? 0 : -1;
}
