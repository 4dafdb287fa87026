// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* cpnctl's operations on a router: see ops.h. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_link.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "cpn_router.skel.h"
#include "cpn_etcd.h"
#include "cpn_util.h"
#include "ops.h"
#include "xdp_attach.h"

static int errf(struct cpn_err *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int errf(struct cpn_err *err, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return rc;
}

const char *cpn_dirs_pin(const struct cpn_dirs *d)
{
	return d && d->pin_dir ? d->pin_dir : CPN_DEFAULT_PIN_DIR;
}

const char *cpn_dirs_state(const struct cpn_dirs *d)
{
	return d && d->state_dir ? d->state_dir : CPN_DEFAULT_STATE_DIR;
}

/* ---- transactions ------------------------------------------------------ */

/* Validate and commit cfg; a config that does not validate is refused. */
static int commit(struct cpn_ctl *ctl, const struct cpn_cfg *cfg, struct cpn_err *err)
{
	if (cpn_cfg_validate(cfg, err))
		return CPN_EXIT_USAGE;
	if (cpn_ctl_commit(ctl, cfg, err))
		return CPN_EXIT_FAIL;
	return CPN_EXIT_OK;
}

int cpn_op_change_ctl(struct cpn_ctl *ctl, cpn_edit_fn edit, void *arg, struct cpn_err *err)
{
	struct cpn_cfg cfg;
	int rc;

	if (cpn_ctl_lock(ctl, err))
		return CPN_EXIT_FAIL;
	if (cpn_ctl_load(ctl, &cfg, err)) {
		cpn_ctl_unlock(ctl);
		return CPN_EXIT_FAIL;
	}
	rc = edit(&cfg, arg, err);
	if (!rc)
		rc = commit(ctl, &cfg, err);
	cpn_cfg_free(&cfg);
	cpn_ctl_unlock(ctl);
	return rc;
}

int cpn_op_change(const struct cpn_dirs *d, cpn_edit_fn edit, void *arg, struct cpn_err *err)
{
	struct cpn_ctl ctl;
	int rc;

	if (cpn_ctl_open(&ctl, cpn_dirs_pin(d), cpn_dirs_state(d), err))
		return CPN_EXIT_FAIL;
	rc = cpn_op_change_ctl(&ctl, edit, arg, err);
	cpn_ctl_close(&ctl);
	return rc;
}

/* ---- up, apply, down ---------------------------------------------------- */

/* Nodes the daemon admitted stay when a file is applied, as long as the
 * file's auto_join still covers them and does not define the id itself (and
 * `keep`, when there is one, says so).
 */
static int keep_joined(struct cpn_cfg *want, const struct cpn_cfg *cur, cpn_keep_fn keep, void *arg)
{
	if (!want->has_auto_join)
		return 0;
	for (int i = 0; i < cur->n_nodes; i++) {
		const struct cfg_node *n = &cur->nodes[i];

		if (!n->joined || cpn_cfg_node(want, n->id) || !cpn_cfg_join_allowed(want, n))
			continue;
		if (keep && !keep(n, arg))
			continue;
		/* A node with no service left to list it in stays out. */
		if (cpn_cfg_add_joined(want, n) == -1)
			return -1;
	}
	return 0;
}

/* Pin a loaded object's maps under pin_dir and its programs at
 * pin_dir/progs/cpn_xdp and cpn_xdp_chain; on failure nothing stays pinned.
 */
static int pin_object(struct bpf_object *obj, const char *pin_dir, struct cpn_err *err)
{
	static const char *const names[] = {"cpn_xdp", "cpn_xdp_chain"};
	char progs[512];
	int e = bpf_object__pin_maps(obj, pin_dir);

	snprintf(progs, sizeof(progs), "%s/progs", pin_dir);
	if (!e && mkdir(progs, 0755) && errno != EEXIST)
		e = -errno;
	for (int i = 0; i < 2 && !e; i++) {
		struct bpf_program *prog = bpf_object__find_program_by_name(obj, names[i]);

		snprintf(progs, sizeof(progs), "%s/progs/%s", pin_dir, names[i]);
		e = prog ? bpf_program__pin(prog, progs) : -ENOENT;
	}
	if (e) {
		for (int i = 0; i < 2; i++) {
			snprintf(progs, sizeof(progs), "%s/progs/%s", pin_dir, names[i]);
			unlink(progs);
		}
		bpf_object__unpin_maps(obj, pin_dir);
		return errf(err, CPN_EXIT_FAIL, "cannot pin under %s: %s", pin_dir, strerror(-e));
	}
	return 0;
}

/* The router from a file (bpftool's way, for an installed object). */
static int load_file(const char *object, const char *pin_dir, struct cpn_err *err)
{
	struct bpf_object *obj = bpf_object__open_file(object, NULL);
	struct bpf_program *prog;
	int rc;

	if (!obj)
		return errf(err, CPN_EXIT_FAIL, "cannot open %s: %s", object, strerror(errno));
	prog = bpf_object__find_program_by_name(obj, "cpn_xdp");
	if (!prog || !bpf_object__find_program_by_name(obj, "cpn_xdp_chain")) {
		bpf_object__close(obj);
		return errf(err, CPN_EXIT_FAIL,
			    "%s has no programs cpn_xdp and cpn_xdp_chain: not cpn's router",
			    object);
	}
	if (bpf_object__load(obj)) {
		rc = errno;
		bpf_object__close(obj);
		return errf(err, CPN_EXIT_FAIL, "cannot load %s: %s (see the verifier log above)",
			    object, strerror(rc));
	}
	rc = pin_object(obj, pin_dir, err);
	bpf_object__close(obj); /* the pins keep it alive */
	return rc;
}

static int load_or_adopt(const char *pin_dir, const char *object, bool *loaded, struct cpn_err *err)
{
	char note[512];
	struct cpn_router *skel;
	struct cpn_maps m;
	int rc;

	*loaded = false;
	rc = cpn_maps_open_pinned(&m, pin_dir);
	if (rc == -EPROTO)
		return errf(err, CPN_EXIT_FAIL, "the router pinned at %s: " CPN_MAPS_LAYOUT_HINT,
			    pin_dir);
	if (!rc) {
		cpn_maps_close(&m);
		int fd = cpn_pinned_prog_fd(pin_dir);

		if (fd < 0)
			return errf(err, CPN_EXIT_FAIL,
				    "maps are pinned at %s but not the program "
				    "(%s/progs/cpn_xdp): run 'cpnctl down' and 'cpnctl up'",
				    pin_dir, pin_dir);
		close(fd);
		return 0; /* adopted */
	}
	if (cpn_bpffs_prepare(pin_dir, note, sizeof(note)))
		return errf(err, CPN_EXIT_FAIL, "cannot pin under %s: %s", pin_dir, note);
	if (note[0])
		fprintf(stderr, "cpnctl: %s\n", note);
	if (mkdir(pin_dir, 0755) && errno != EEXIST)
		return errf(err, CPN_EXIT_FAIL, "cannot create %s: %s", pin_dir, strerror(errno));
	if (object) {
		rc = load_file(object, pin_dir, err);
	} else {
		skel = cpn_router__open_and_load();
		if (!skel)
			return errf(err, CPN_EXIT_FAIL,
				    "cannot load the XDP program: %s (see the verifier log above)",
				    strerror(errno));
		rc = pin_object(skel->obj, pin_dir, err);
		cpn_router__destroy(skel); /* the pins keep it alive */
	}
	if (!rc)
		*loaded = true;
	return rc;
}

/* Bring the attachments and the devmap to cfg's interfaces; `old` are the
 * interfaces of the previous desired state (detached if no longer listed).
 * object: the router object `up` loaded (NULL: cpnctl's own), which libxdp
 * loads again as a dispatcher's component.
 */
static int sync_ifaces(struct cpn_ctl *ctl, const struct cpn_cfg *old, const struct cpn_cfg *cfg,
		       bool skb, const char *object, struct cpn_err *err)
{
	struct cpn_xdp_target t = {.pin_dir = ctl->pin_dir,
				   .maps = &ctl->maps,
				   .object = object,
				   .skb = skb,
				   .how = cfg->xdp_attach};
	int rc = 0;

	t.prog_fd = cpn_pinned_prog_fd(ctl->pin_dir);
	if (t.prog_fd < 0)
		return errf(err, CPN_EXIT_FAIL,
			    "no cpn_xdp program pinned at %s/progs: run 'cpnctl up'", ctl->pin_dir);
	t.chain_fd = cpn_pinned_chain_fd(ctl->pin_dir);
	for (int i = 0; i < cfg->n_ifaces && !rc; i++) {
		rc = cpn_xdp_attach(&t, cfg->ifaces[i], err);
		if (!rc && cpn_maps_add_port(&ctl->maps, (int)if_nametoindex(cfg->ifaces[i])))
			rc = errf(err, CPN_EXIT_FAIL, "cannot add %s to cpn_tx_ports: %s",
				  cfg->ifaces[i], strerror(errno));
	}
	for (int i = 0; old && i < old->n_ifaces && !rc; i++) {
		bool kept = false;

		for (int k = 0; k < cfg->n_ifaces; k++)
			kept |= !strcmp(old->ifaces[i], cfg->ifaces[k]);
		if (kept)
			continue;
		cpn_xdp_detach(&t, old->ifaces[i]);
		if (if_nametoindex(old->ifaces[i]))
			cpn_maps_del_port(&ctl->maps, (int)if_nametoindex(old->ifaces[i]));
	}
	close(t.prog_fd);
	if (t.chain_fd >= 0)
		close(t.chain_fd);
	return rc;
}

/* Sync the interfaces to `want` and commit it, in one locked transaction. */
static int sync_and_commit(struct cpn_ctl *ctl, struct cpn_cfg *want, bool keep_current, bool skb,
			   const char *object, cpn_keep_fn keep, void *arg, struct cpn_err *err)
{
	struct cpn_cfg cur;
	int rc;

	if (cpn_ctl_lock(ctl, err))
		return CPN_EXIT_FAIL;
	if (cpn_ctl_load(ctl, &cur, err)) {
		cpn_ctl_unlock(ctl);
		return CPN_EXIT_FAIL;
	}
	if (keep_current) { /* up alone: keep what is desired now */
		cpn_cfg_free(want);
		rc = cpn_cfg_copy(want, &cur) ? errf(err, CPN_EXIT_FAIL, "out of memory") : 0;
	} else {
		rc = keep_joined(want, &cur, keep, arg) ? errf(err, CPN_EXIT_FAIL, "out of memory")
							: 0;
	}
	if (!rc)
		rc = sync_ifaces(ctl, &cur, want, skb, object, err);
	if (!rc)
		rc = commit(ctl, want, err);
	cpn_cfg_free(&cur);
	cpn_ctl_unlock(ctl);
	return rc;
}

int cpn_op_up(const struct cpn_dirs *d, const char *config, const char *object, bool skb,
	      bool *loaded, struct cpn_err *err)
{
	struct cpn_cfg want;
	struct cpn_ctl ctl;
	int rc;

	if (config && cpn_cfg_load(config, &want, err))
		return CPN_EXIT_USAGE;
	if (config)
		cpn_cfg_warn_unusable(&want, stderr);
	else
		cpn_cfg_init(&want);
	rc = load_or_adopt(cpn_dirs_pin(d), object, loaded, err);
	if (!rc && cpn_ctl_open(&ctl, cpn_dirs_pin(d), cpn_dirs_state(d), err))
		rc = CPN_EXIT_FAIL;
	else if (!rc) {
		rc = sync_and_commit(&ctl, &want, !config, skb, object, NULL, NULL, err);
		cpn_ctl_close(&ctl);
	}
	cpn_cfg_free(&want);
	return rc;
}

int cpn_op_apply_file(const struct cpn_dirs *d, const char *path, struct cpn_err *err)
{
	struct cpn_cfg want;
	struct cpn_ctl ctl;
	int rc;

	if (cpn_cfg_load(path, &want, err))
		return CPN_EXIT_USAGE;
	cpn_cfg_warn_unusable(&want, stderr);
	if (cpn_ctl_open(&ctl, cpn_dirs_pin(d), cpn_dirs_state(d), err)) {
		cpn_cfg_free(&want);
		return CPN_EXIT_FAIL;
	}
	rc = sync_and_commit(&ctl, &want, false, false, NULL, NULL, NULL, err);
	cpn_ctl_close(&ctl);
	cpn_cfg_free(&want);
	return rc;
}

int cpn_op_apply_cfg_ctl(struct cpn_ctl *ctl, const struct cpn_cfg *cfg, cpn_keep_fn keep,
			 void *arg, struct cpn_err *err)
{
	struct cpn_cfg want;
	int rc;

	if (cpn_cfg_copy(&want, cfg))
		return errf(err, CPN_EXIT_FAIL, "out of memory");
	rc = sync_and_commit(ctl, &want, false, false, NULL, keep, arg, err);
	cpn_cfg_free(&want);
	return rc;
}

/* Remove every pin in a directory and in its progs/, then the directories. */
static void unpin_all(const char *pin_dir)
{
	char dir[512], path[1024];

	for (int pass = 0; pass < 2; pass++) {
		struct dirent *de;
		DIR *dp;

		snprintf(dir, sizeof(dir), pass ? "%s" : "%s/progs", pin_dir);
		dp = opendir(dir);
		while (dp && (de = readdir(dp))) {
			if (de->d_type != DT_REG)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
		if (dp)
			closedir(dp);
		if (!pass)
			rmdir(dir);
	}
	if (rmdir(pin_dir) && errno != ENOENT)
		fprintf(stderr, "cpnctl: %s is not empty: left in place\n", pin_dir);
}

int cpn_op_down(const struct cpn_dirs *d, struct cpn_err *err)
{
	const char *pin_dir = cpn_dirs_pin(d);
	struct cpn_xdp_target t = {.pin_dir = pin_dir};
	struct cpn_ctl ctl;
	struct cpn_cfg cur;
	bool open = !cpn_ctl_open(&ctl, pin_dir, cpn_dirs_state(d), err);

	t.prog_fd = cpn_pinned_prog_fd(pin_dir);
	t.chain_fd = cpn_pinned_chain_fd(pin_dir);
	t.maps = open ? &ctl.maps : NULL;
	if (open) {
		cpn_ctl_lock(&ctl, err);
		if (t.prog_fd >= 0 && ctl.maps_open && !cpn_ctl_load(&ctl, &cur, err)) {
			for (int i = 0; i < cur.n_ifaces; i++)
				cpn_xdp_detach(&t, cur.ifaces[i]);
			cpn_cfg_free(&cur);
		}
		/* Any other interface the router is on is ours too. */
		if (t.prog_fd >= 0 && ctl.maps_open) {
			struct if_nameindex *ifs = if_nameindex();

			for (struct if_nameindex *i = ifs; i && i->if_index; i++)
				cpn_xdp_detach(&t, i->if_name);
			if (ifs)
				if_freenameindex(ifs);
		}
		unlink(ctl.state_path);
		{
			char fleet[600];

			snprintf(fleet, sizeof(fleet), "%s.etcd", ctl.state_path);
			unlink(fleet);
		}
		cpn_ctl_unlock(&ctl);
		cpn_ctl_close(&ctl);
	} else if (t.prog_fd >= 0) {
		/* No maps to read: the pinned program comes off wherever it is. */
		struct if_nameindex *ifs = if_nameindex();

		for (struct if_nameindex *i = ifs; i && i->if_index; i++)
			cpn_xdp_detach(&t, i->if_name);
		if (ifs)
			if_freenameindex(ifs);
	}
	if (t.prog_fd >= 0)
		close(t.prog_fd);
	if (t.chain_fd >= 0)
		close(t.chain_fd);
	/* The pin directory is cpn's own: every pin in it and in progs/ goes. */
	unpin_all(pin_dir);
	return CPN_EXIT_OK;
}

/* ---- services, nodes, tenants ------------------------------------------- */

static int edit_service_add(struct cpn_cfg *cfg, void *arg, struct cpn_err *err)
{
	const struct cfg_service *s = arg;

	if (cpn_cfg_service(cfg, s->id) || cpn_cfg_service_by_name(cfg, s->name))
		return errf(err, CPN_EXIT_FAIL,
			    "service %s or id %u exists: 'cpnctl service del' it first", s->name,
			    s->id);
	return cpn_cfg_put_service(cfg, s) ? errf(err, CPN_EXIT_FAIL, "out of memory") : 0;
}

int cpn_op_service_add(const struct cpn_dirs *d, const struct cfg_service *s, struct cpn_err *err)
{
	return cpn_op_change(d, edit_service_add, (void *)s, err);
}

static int edit_service_del(struct cpn_cfg *cfg, void *arg, struct cpn_err *err)
{
	const char *name = arg;
	const struct cfg_service *s = cpn_cfg_service_by_name(cfg, name);
	__u32 v;

	if (!s && !cpn_parse_u32(name, 0, CPN_MAX_SERVICES - 1, &v))
		s = cpn_cfg_service(cfg, (__u16)v);
	if (!s)
		return errf(err, CPN_EXIT_FAIL, "no service '%s' (see 'cpnctl service list')",
			    name);
	cpn_cfg_del_service(cfg, s->id);
	return 0;
}

int cpn_op_service_del(const struct cpn_dirs *d, const char *name_or_id, struct cpn_err *err)
{
	return cpn_op_change(d, edit_service_del, (void *)name_or_id, err);
}

struct node_add {
	const struct cfg_node *n;
	const char *const *services;
	int n_services;
};

static int edit_node_add(struct cpn_cfg *cfg, void *arg, struct cpn_err *err)
{
	const struct node_add *a = arg;

	if (cpn_cfg_node(cfg, a->n->id))
		return errf(err, CPN_EXIT_FAIL, "node %u exists: 'cpnctl node del %u' it first",
			    a->n->id, a->n->id);
	if (cpn_cfg_put_node(cfg, a->n))
		return errf(err, CPN_EXIT_FAIL, "out of memory");
	for (int i = 0; i < a->n_services; i++) {
		const struct cfg_service *s = cpn_cfg_service_by_name(cfg, a->services[i]);

		if (!s)
			return errf(err, CPN_EXIT_USAGE, "no service '%s'", a->services[i]);
		if (cpn_cfg_service_add_node((struct cfg_service *)s, a->n->id))
			return errf(err, CPN_EXIT_FAIL, "service %s has %d nodes already", s->name,
				    CPN_MAX_SVC_NODES);
	}
	return 0;
}

int cpn_op_node_add(const struct cpn_dirs *d, const struct cfg_node *n, const char *const *services,
		    int n_services, struct cpn_err *err)
{
	struct node_add a = {n, services, n_services};

	return cpn_op_change(d, edit_node_add, &a, err);
}

struct node_change {
	__u16 id;
	int what; /* 0 delete, 1 drain, 2 undrain */
};

static int edit_node(struct cpn_cfg *cfg, void *arg, struct cpn_err *err)
{
	const struct node_change *c = arg;
	struct cfg_node *n = (struct cfg_node *)cpn_cfg_node(cfg, c->id);

	if (!n)
		return errf(err, CPN_EXIT_FAIL, "no node %u (see 'cpnctl node list')", c->id);
	if (c->what == 0)
		cpn_cfg_del_node(cfg, c->id);
	else
		n->drain = c->what == 1;
	return 0;
}

int cpn_op_node_del(const struct cpn_dirs *d, __u16 id, struct cpn_err *err)
{
	struct node_change c = {id, 0};

	return cpn_op_change(d, edit_node, &c, err);
}

int cpn_op_node_drain(const struct cpn_dirs *d, __u16 id, bool drain, struct cpn_err *err)
{
	struct node_change c = {id, drain ? 1 : 2};

	return cpn_op_change(d, edit_node, &c, err);
}

struct tenant_add {
	const struct cfg_tenant *t;
	const char *services;
};

static int edit_tenant_add(struct cpn_cfg *cfg, void *arg, struct cpn_err *err)
{
	const struct tenant_add *a = arg;
	struct cfg_tenant t = *a->t;
	char buf[2048], *save = NULL, *tok;

	t.n_services = 0;
	snprintf(buf, sizeof(buf), "%s", a->services);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		const struct cfg_service *s = cpn_cfg_service_by_name(cfg, tok);

		if (!s)
			return errf(err, CPN_EXIT_USAGE, "no service '%s'", tok);
		if (t.n_services == CPN_MAX_SERVICES)
			return errf(err, CPN_EXIT_USAGE, "too many services");
		t.services[t.n_services++] = s->id;
	}
	if (cpn_cfg_tenant(cfg, t.id)) {
		if (t.id == CPN_TENANT_ANY)
			return errf(err, CPN_EXIT_FAIL,
				    "tenant any exists: 'cpnctl tenant del any' it first");
		return errf(err, CPN_EXIT_FAIL, "tenant %u exists: 'cpnctl tenant del %u' it first",
			    t.id, t.id);
	}
	return cpn_cfg_put_tenant(cfg, &t) ? errf(err, CPN_EXIT_FAIL, "out of memory") : 0;
}

int cpn_op_tenant_add(const struct cpn_dirs *d, const struct cfg_tenant *t, const char *services,
		      struct cpn_err *err)
{
	struct tenant_add a = {t, services};

	return cpn_op_change(d, edit_tenant_add, &a, err);
}

static int edit_tenant_del(struct cpn_cfg *cfg, void *arg, struct cpn_err *err)
{
	__u32 id = *(const __u32 *)arg;

	if (!cpn_cfg_tenant(cfg, id))
		return errf(err, CPN_EXIT_FAIL, "no tenant %u (see 'cpnctl tenant list')", id);
	cpn_cfg_del_tenant(cfg, id);
	return 0;
}

int cpn_op_tenant_del(const struct cpn_dirs *d, __u32 id, struct cpn_err *err)
{
	return cpn_op_change(d, edit_tenant_del, &id, err);
}

/* ---- many routers: the configuration in etcd ----------------------------- */

bool cpn_fleet_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (!n || n >= CPN_FLEET_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
			return false;
	return true;
}

void cpn_fleet_prefix(char *buf, size_t len, const char *cluster)
{
	snprintf(buf, len, "/cpn/%s/", cluster ? cluster : CPN_FLEET_CLUSTER);
}

/* json-c helpers for the layout's values: a member of the wanted type, or
 * absent (false); a member of another type makes the value unreadable.
 */
static int j_member(json_object *o, const char *k, json_type t, json_object **v)
{
	*v = NULL;
	if (!json_object_object_get_ex(o, k, v) || !*v)
		return 0;
	return json_object_is_type(*v, t) ? 1 : -1;
}

static int j_i64(json_object *o, const char *k, int64_t *v)
{
	json_object *m;
	int r = j_member(o, k, json_type_int, &m);

	*v = r > 0 ? json_object_get_int64(m) : 0;
	return r < 0 || *v < 0 ? -1 : 0;
}

static int j_str(json_object *o, const char *k, char *buf, size_t len)
{
	json_object *m;
	int r = j_member(o, k, json_type_string, &m);

	buf[0] = 0;
	if (r < 0)
		return -1;
	if (r > 0) {
		const char *s = json_object_get_string(m);
		size_t k2 = 0;

		/* Text from etcd goes into logs and tables: printable only. */
		for (; *s && k2 + 1 < len; s++)
			buf[k2++] =
			    ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f) ? '?' : *s;
		buf[k2] = 0;
	}
	return 0;
}

static json_object *j_parse(const char *json, size_t len)
{
	json_tokener *tok;
	json_object *o;

	if (len > CPN_ETCD_MAX_ANSWER)
		return NULL;
	tok = json_tokener_new_ex(16);
	if (!tok)
		return NULL;
	o = json_tokener_parse_ex(tok, json, (int)len);
	if (o &&
	    (json_tokener_get_error(tok) != json_tokener_success ||
	     json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static char *j_out(json_object *o)
{
	const char *s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
	char *r = s ? strdup(s) : NULL;

	json_object_put(o);
	return r;
}

char *cpn_fleet_router_json(const struct cpn_fleet_router *r)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();

	if (!o || !a) {
		json_object_put(o);
		json_object_put(a);
		return NULL;
	}
	json_object_object_add(o, "revision", json_object_new_int64(r->revision));
	json_object_object_add(o, "time_ms", json_object_new_int64(r->time_ms));
	if (r->refused_revision) {
		json_object_object_add(o, "refused_revision",
				       json_object_new_int64(r->refused_revision));
		json_object_object_add(o, "error", json_object_new_string(r->error));
	}
	for (int i = 0; i < r->n_joined; i++)
		json_object_array_add(a, json_object_new_int(r->joined[i]));
	json_object_object_add(o, "joined", a);
	return j_out(o);
}

int cpn_fleet_router_parse(const char *json, size_t len, struct cpn_fleet_router *r, char *why,
			   size_t why_len)
{
	json_object *o = j_parse(json, len), *a;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	if (!o) {
		snprintf(why, why_len, "not a JSON object");
		return -1;
	}
	if (j_i64(o, "revision", &r->revision) || j_i64(o, "time_ms", &r->time_ms) ||
	    j_i64(o, "refused_revision", &r->refused_revision) ||
	    j_str(o, "error", r->error, sizeof(r->error)) ||
	    j_member(o, "joined", json_type_array, &a) < 0) {
		snprintf(why, why_len, "a member of the wrong type");
		rc = -1;
	}
	for (size_t i = 0; !rc && a && i < json_object_array_length(a); i++) {
		json_object *v = json_object_array_get_idx(a, i);
		int64_t id =
		    v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;

		if (id < 1 || id >= CPN_MAX_NODES || r->n_joined == CPN_MAX_NODES) {
			snprintf(why, why_len, "'joined' holds something that is no node id");
			rc = -1;
			break;
		}
		r->joined[r->n_joined++] = (__u16)id;
	}
	json_object_put(o);
	return rc;
}

char *cpn_fleet_node_json(const struct cpn_fleet_node *n)
{
	json_object *o = json_object_new_object();
	char a[64], ap[80];

	if (!o)
		return NULL;
	cpn_addr_str(n->n.addr, n->n.family, a, sizeof(a));
	snprintf(ap, sizeof(ap), n->n.family == CPN_AF_INET6 ? "[%s]:%u" : "%s:%u", a,
		 ntohs(n->n.port));
	json_object_object_add(o, "addr", json_object_new_string(ap));
	json_object_object_add(o, "router", json_object_new_string(n->router));
	json_object_object_add(o, "time_ms", json_object_new_int64(n->time_ms));
	return j_out(o);
}

int cpn_fleet_node_parse(__u16 id, const char *json, size_t len, struct cpn_fleet_node *n,
			 char *why, size_t why_len)
{
	json_object *o = j_parse(json, len);
	char addr[80];
	int rc = -1;

	memset(n, 0, sizeof(*n));
	n->n.id = id;
	n->n.weight = CPN_DEFAULT_WEIGHT;
	if (!o) {
		snprintf(why, why_len, "not a JSON object");
		return -1;
	}
	if (j_str(o, "addr", addr, sizeof(addr)) ||
	    j_str(o, "router", n->router, sizeof(n->router)) || j_i64(o, "time_ms", &n->time_ms))
		snprintf(why, why_len, "a member of the wrong type");
	else if (cpn_addr_port_parse(addr, n->n.addr, &n->n.port, &n->n.family))
		snprintf(why, why_len, "addr '%s' is not ADDR:PORT", addr);
	else if (!cpn_fleet_name_ok(n->router))
		snprintf(why, why_len, "router '%s' is not a router name", n->router);
	else
		rc = 0;
	json_object_put(o);
	return rc;
}

/* The whole file, as it was validated: what is published is what was read.
 * 0, or an exit status with err.
 */
#define PUBLISH_MAX (1u << 20) /* below etcd's default request limit, 1.5 MiB */

static int read_file(const char *path, char **out, size_t *len, struct cpn_err *err)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f)
		return errf(err, CPN_EXIT_USAGE, "cannot read %s: %s", path, strerror(errno));
	buf = malloc(PUBLISH_MAX + 1);
	if (!buf) {
		fclose(f);
		return errf(err, CPN_EXIT_FAIL, "out of memory");
	}
	n = fread(buf, 1, PUBLISH_MAX + 1, f);
	if (ferror(f) || n > PUBLISH_MAX) {
		int e = errno;

		fclose(f);
		free(buf);
		if (n > PUBLISH_MAX)
			return errf(err, CPN_EXIT_USAGE, "%s: larger than %u bytes", path,
				    PUBLISH_MAX);
		return errf(err, CPN_EXIT_USAGE, "cannot read %s: %s", path, strerror(e));
	}
	fclose(f);
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

int cpn_op_publish(const char *etcd, const char *cluster, const char *path, int64_t *revision,
		   struct cpn_err *err)
{
	char prefix[128], kcfg[160], klayout[160], msg[512];
	struct cpn_etcd_txn_res res;
	struct cpn_etcd *e;
	struct cpn_cfg cfg;
	size_t len = 0;
	char *text = NULL;
	int rc;

	cpn_fleet_prefix(prefix, sizeof(prefix), cluster);
	if ((rc = read_file(path, &text, &len, err)))
		return rc;
	if (cpn_cfg_parse(path, text, len, &cfg, err)) {
		free(text);
		return CPN_EXIT_USAGE;
	}
	cpn_cfg_warn_unusable(&cfg, stderr);
	cpn_cfg_free(&cfg);
	e = cpn_etcd_open(etcd, CPN_FLEET_ETCD_TIMEOUT_MS, msg, sizeof(msg));
	if (!e) {
		free(text);
		return errf(err, CPN_EXIT_USAGE, "--etcd: %s", msg);
	}
	snprintf(kcfg, sizeof(kcfg), "%sconfig", prefix);
	snprintf(klayout, sizeof(klayout), "%slayout", prefix);
	{
		/* The config and the layout it is written in: one revision. */
		struct cpn_etcd_op ops[] = {
		    {.type = CPN_ETCD_OP_PUT,
		     .key = klayout,
		     .value = CPN_FLEET_LAYOUT,
		     .value_len = strlen(CPN_FLEET_LAYOUT)},
		    {.type = CPN_ETCD_OP_PUT, .key = kcfg, .value = text, .value_len = len},
		};

		rc = cpn_etcd_txn(e, NULL, 0, ops, 2, NULL, 0, &res, msg, sizeof(msg));
	}
	cpn_etcd_close(e);
	free(text);
	if (rc)
		return errf(err, CPN_EXIT_FAIL, "nothing published: %s", msg);
	*revision = res.revision;
	cpn_etcd_txn_res_free(&res);
	if (!res.succeeded)
		return errf(err, CPN_EXIT_FAIL, "etcd did not take the transaction");
	return CPN_EXIT_OK;
}
