// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A userspace interpreter of XDP programs: see bpf_interp.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "bpf_interp.h"

#define BI_MAX_MAPS   64
#define BI_STACK      512 /* MAX_BPF_STACK */
#define BI_FRAMES     8	  /* MAX_CALL_FRAMES */
#define BI_MAX_STEPS  1000000
#define BI_FRAME_SZ   4096 /* the kernel's test-run frame (a page) */
#define BI_HEADROOM   256  /* XDP_PACKET_HEADROOM */
#define BI_TAILROOM   320  /* SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) */
#define BI_HASH_SPARE 64   /* free slots a hash map has for inserts in one run */

#ifndef BPF_MEMSX
#define BPF_MEMSX 0x80
#endif

struct bi_map {
	int fd, own_fd;
	__u32 id, type, key_size, value_size, max_entries, flags;
	char name[BPF_OBJ_NAME_LEN];
	size_t vstride; /* a value's room in storage: 8-byte aligned, as the kernel's arrays */
	__u32 cap;	/* slots */
	/* the snapshot, and the copy a run works on */
	__u8 *skeys, *svals, *slive;
	__u64 *sage;
	__u8 *keys, *vals, *live;
	__u64 *age;
	__u64 tick;
	int cpu;
};

struct bi_vm {
	struct bi_map *maps[BI_MAX_MAPS];
	int n_maps;
	int cpu, ncpus;
	_Alignas(8) __u8 stack[BI_FRAMES][BI_STACK];
	_Alignas(8) __u8 pkt[BI_FRAME_SZ];
	_Alignas(8) __u8 ctx[24]; /* struct xdp_md: its loads are answered, not read */
	__u8 *data, *data_end, *data_meta;
	struct bi_run *run;
};

static int is_hash(__u32 t)
{
	return t == BPF_MAP_TYPE_HASH || t == BPF_MAP_TYPE_LRU_HASH ||
	       t == BPF_MAP_TYPE_HASH_OF_MAPS || t == BPF_MAP_TYPE_DEVMAP_HASH ||
	       t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

static int is_percpu(__u32 t)
{
	return t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PERCPU_HASH ||
	       t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

static int is_lru(__u32 t)
{
	return t == BPF_MAP_TYPE_LRU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

static void fmt_err(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fmt_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* ---- maps ------------------------------------------------------------- */

static struct bi_map *map_add(struct bi_vm *vm, int fd, int own, char *err, size_t errlen)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	struct bi_map *m;

	if (vm->n_maps == BI_MAX_MAPS) {
		fmt_err(err, errlen, "more than %d maps", BI_MAX_MAPS);
		return NULL;
	}
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		fmt_err(err, errlen, "map info: %s", strerror(errno));
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		fmt_err(err, errlen, "out of memory");
		return NULL;
	}
	m->fd = fd;
	m->own_fd = own;
	m->id = info.id;
	m->type = info.type;
	m->key_size = info.key_size;
	m->value_size = info.value_size;
	m->max_entries = info.max_entries;
	m->flags = info.map_flags;
	memcpy(m->name, info.name, sizeof(m->name));
	m->name[sizeof(m->name) - 1] = 0;
	m->vstride = (info.value_size + 7) & ~(size_t)7;
	vm->maps[vm->n_maps++] = m;
	return m;
}

static void map_free(struct bi_map *m)
{
	free(m->skeys);
	free(m->svals);
	free(m->slive);
	free(m->sage);
	free(m->keys);
	free(m->vals);
	free(m->live);
	free(m->age);
	if (m->own_fd)
		close(m->fd);
	free(m);
}

static struct bi_map *map_by_fd(struct bi_vm *vm, int fd)
{
	for (int i = 0; i < vm->n_maps; i++)
		if (vm->maps[i]->fd == fd)
			return vm->maps[i];
	return NULL;
}

static struct bi_map *map_by_id(struct bi_vm *vm, __u32 id)
{
	for (int i = 0; i < vm->n_maps; i++)
		if (vm->maps[i]->id == id)
			return vm->maps[i];
	return NULL;
}

/* A map pointer the program holds (from an ld_imm64 or a map-in-map lookup). */
static struct bi_map *map_of_ptr(struct bi_vm *vm, __u64 p)
{
	for (int i = 0; i < vm->n_maps; i++)
		if ((__u64)(unsigned long)vm->maps[i] == p)
			return vm->maps[i];
	return NULL;
}

struct bi_vm *bi_new(struct bpf_object *obj, char *err, size_t errlen)
{
	struct bi_vm *vm = calloc(1, sizeof(*vm));
	struct bpf_map *map;

	if (!vm) {
		fmt_err(err, errlen, "out of memory");
		return NULL;
	}
	vm->ncpus = libbpf_num_possible_cpus();
	if (vm->ncpus <= 0) {
		fmt_err(err, errlen, "cannot count the possible CPUs");
		free(vm);
		return NULL;
	}
	if (obj)
		bpf_object__for_each_map(map, obj)
		{
			if (bpf_map__fd(map) < 0)
				continue;
			if (!map_add(vm, bpf_map__fd(map), 0, err, errlen)) {
				bi_free(vm);
				return NULL;
			}
		}
	return vm;
}

void bi_free(struct bi_vm *vm)
{
	if (!vm)
		return;
	for (int i = 0; i < vm->n_maps; i++)
		map_free(vm->maps[i]);
	free(vm);
}

/* Storage for cap slots, snapshot and working copy alike. */
static int map_alloc(struct bi_map *m, __u32 cap)
{
	size_t kb = (size_t)cap * (m->key_size ? m->key_size : 1);
	size_t vb = (size_t)cap * m->vstride;

	free(m->skeys);
	free(m->svals);
	free(m->slive);
	free(m->sage);
	free(m->keys);
	free(m->vals);
	free(m->live);
	free(m->age);
	m->cap = cap;
	m->skeys = calloc(1, kb + 1);
	m->keys = calloc(1, kb + 1);
	m->svals = calloc(1, vb + 8);
	m->vals = calloc(1, vb + 8);
	m->slive = calloc(1, (size_t)cap + 1);
	m->live = calloc(1, (size_t)cap + 1);
	m->sage = calloc((size_t)cap + 1, sizeof(__u64));
	m->age = calloc((size_t)cap + 1, sizeof(__u64));
	return m->skeys && m->keys && m->svals && m->vals && m->slive && m->live && m->sage &&
		       m->age
		   ? 0
		   : -1;
}

/* One value as the kernel gives it to userspace: for a per-CPU map, the
 * slice of the snapshot's CPU.
 */
static int map_read(struct bi_vm *vm, struct bi_map *m, const void *key, __u8 *val, __u8 *buf)
{
	if (bpf_map_lookup_elem(m->fd, key, is_percpu(m->type) ? buf : val))
		return -1;
	if (is_percpu(m->type))
		memcpy(val, buf + (size_t)vm->cpu * m->vstride, m->value_size);
	return 0;
}

static int map_snapshot(struct bi_vm *vm, struct bi_map *m, char *err, size_t errlen)
{
	size_t bufsz = m->vstride * (size_t)vm->ncpus + 8;
	__u8 *buf = calloc(1, bufsz), *key = NULL, *next = NULL;
	int rc = -1;
	__u32 n = 0;

	if (!buf)
		goto oom;
	m->cpu = vm->cpu;
	switch (m->type) {
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_PROG_ARRAY:
		if (map_alloc(m, m->max_entries))
			goto oom;
		for (__u32 i = 0; i < m->max_entries; i++) {
			__u8 *v = m->svals + (size_t)i * m->vstride;

			m->slive[i] = 1;
			memcpy(m->skeys + (size_t)i * m->key_size, &i, sizeof(i));
			if (map_read(vm, m, &i, v, buf)) {
				/* a prog array's empty slot */
				if (m->type == BPF_MAP_TYPE_PROG_ARRAY && errno == ENOENT) {
					memset(v, 0, m->value_size);
					continue;
				}
				fmt_err(err, errlen, "map %s: lookup %u: %s", m->name, i,
					strerror(errno));
				goto out;
			}
		}
		break;
	case BPF_MAP_TYPE_XSKMAP:
		/* Its sockets cannot be read from userspace: empty. */
		if (map_alloc(m, 1))
			goto oom;
		break;
	default:
		if (!is_hash(m->type) && m->type != BPF_MAP_TYPE_DEVMAP) {
			fmt_err(err, errlen, "map %s: type %u not emulated", m->name, m->type);
			goto out;
		}
		key = calloc(1, m->key_size);
		next = calloc(1, m->key_size);
		if (!key || !next)
			goto oom;
		/* Count, then read: the map does not change in between. */
		for (void *k = NULL; !bpf_map_get_next_key(m->fd, k, next); k = key) {
			memcpy(key, next, m->key_size);
			n++;
		}
		if (map_alloc(m, n + BI_HASH_SPARE))
			goto oom;
		n = 0;
		for (void *k = NULL; !bpf_map_get_next_key(m->fd, k, next); k = key) {
			memcpy(key, next, m->key_size);
			if (n == m->cap - BI_HASH_SPARE)
				break;
			if (map_read(vm, m, key, m->svals + (size_t)n * m->vstride, buf)) {
				if (errno == ENOENT) /* gone meanwhile */
					continue;
				fmt_err(err, errlen, "map %s: lookup: %s", m->name,
					strerror(errno));
				goto out;
			}
			memcpy(m->skeys + (size_t)n * m->key_size, key, m->key_size);
			m->slive[n] = 1;
			m->sage[n] = n + 1;
			n++;
		}
		m->tick = n + 1;
		break;
	}
	rc = 0;
	goto out;
oom:
	fmt_err(err, errlen, "out of memory");
out:
	free(buf);
	free(key);
	free(next);
	return rc;
}

int bi_snapshot(struct bi_vm *vm, int cpu, char *err, size_t errlen)
{
	if (cpu < 0 || cpu >= vm->ncpus) {
		fmt_err(err, errlen, "CPU %d out of range", cpu);
		return -1;
	}
	vm->cpu = cpu;
	/* Inner maps join the list as their outer map is read: n_maps grows. */
	for (int i = 0; i < vm->n_maps; i++) {
		struct bi_map *m = vm->maps[i];

		if (map_snapshot(vm, m, err, errlen))
			return -1;
		if (m->type != BPF_MAP_TYPE_HASH_OF_MAPS)
			continue;
		for (__u32 s = 0; s < m->cap; s++) {
			__u32 id;
			int fd;

			if (!m->slive[s])
				continue;
			memcpy(&id, m->svals + (size_t)s * m->vstride, sizeof(id));
			if (map_by_id(vm, id))
				continue;
			fd = bpf_map_get_fd_by_id(id);
			if (fd < 0) {
				fmt_err(err, errlen, "inner map %u of %s: %s", id, m->name,
					strerror(errno));
				return -1;
			}
			if (!map_add(vm, fd, 1, err, errlen)) {
				close(fd);
				return -1;
			}
		}
	}
	return 0;
}

static void map_reset(struct bi_map *m)
{
	size_t kb = (size_t)m->cap * m->key_size;

	memcpy(m->keys, m->skeys, kb);
	memcpy(m->vals, m->svals, (size_t)m->cap * m->vstride);
	memcpy(m->live, m->slive, m->cap);
	memcpy(m->age, m->sage, (size_t)m->cap * sizeof(__u64));
}

static long hash_find(struct bi_map *m, const void *key)
{
	for (__u32 s = 0; s < m->cap; s++)
		if (m->live[s] && !memcmp(m->keys + (size_t)s * m->key_size, key, m->key_size))
			return s;
	return -1;
}

static __u32 hash_count(struct bi_map *m)
{
	__u32 n = 0;

	for (__u32 s = 0; s < m->cap; s++)
		n += m->live[s];
	return n;
}

/* A value's address in the working copy, or NULL. */
static __u8 *map_lookup(struct bi_map *m, const void *key)
{
	__u32 i;
	long s;

	switch (m->type) {
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
		memcpy(&i, key, sizeof(i));
		return i < m->max_entries ? m->vals + (size_t)i * m->vstride : NULL;
	case BPF_MAP_TYPE_XSKMAP:
	case BPF_MAP_TYPE_PROG_ARRAY:
		return NULL;
	default:
		s = hash_find(m, key);
		if (s < 0)
			return NULL;
		if (is_lru(m->type))
			m->age[s] = ++m->tick;
		return m->vals + (size_t)s * m->vstride;
	}
}

static long map_update(struct bi_map *m, const void *key, const void *val, __u64 flags)
{
	__u64 cmd = flags & 3;
	__u8 *v;
	long s;
	__u32 i;

	if (flags > BPF_F_LOCK || cmd == 3)
		return -EINVAL;
	switch (m->type) {
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
		memcpy(&i, key, sizeof(i));
		if (i >= m->max_entries)
			return -E2BIG;
		if (cmd == BPF_NOEXIST)
			return -EEXIST;
		memcpy(m->vals + (size_t)i * m->vstride, val, m->value_size);
		return 0;
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
		break;
	default:
		return -EOPNOTSUPP;
	}
	s = hash_find(m, key);
	if (s >= 0) {
		if (cmd == BPF_NOEXIST)
			return -EEXIST;
		v = m->vals + (size_t)s * m->vstride;
		memcpy(v, val, m->value_size);
		m->age[s] = ++m->tick;
		return 0;
	}
	if (cmd == BPF_EXIST)
		return -ENOENT;
	if (hash_count(m) >= m->max_entries) {
		long old = -1;

		if (!is_lru(m->type))
			return -E2BIG;
		for (__u32 t = 0; t < m->cap; t++)
			if (m->live[t] && (old < 0 || m->age[t] < m->age[old]))
				old = t;
		if (old >= 0)
			m->live[old] = 0;
	}
	for (__u32 t = 0; t < m->cap; t++)
		if (!m->live[t]) {
			memcpy(m->keys + (size_t)t * m->key_size, key, m->key_size);
			memcpy(m->vals + (size_t)t * m->vstride, val, m->value_size);
			m->live[t] = 1;
			m->age[t] = ++m->tick;
			return 0;
		}
	return -ENOMEM; /* more inserts in one run than BI_HASH_SPARE */
}

static long map_delete(struct bi_map *m, const void *key)
{
	long s;

	if (!is_hash(m->type))
		return -EINVAL;
	s = hash_find(m, key);
	if (s < 0)
		return -ENOENT;
	m->live[s] = 0;
	return 0;
}

int bi_compare_map(struct bi_vm *vm, const char *name, char *err, size_t errlen)
{
	struct bi_map *m = NULL;
	__u8 *buf, *val;
	int rc = 0;

	for (int i = 0; i < vm->n_maps; i++)
		if (!strcmp(vm->maps[i]->name, name))
			m = vm->maps[i];
	if (!m || (m->type != BPF_MAP_TYPE_ARRAY && m->type != BPF_MAP_TYPE_PERCPU_ARRAY)) {
		fmt_err(err, errlen, "no array map %s", name);
		return -1;
	}
	buf = calloc(1, m->vstride * (size_t)vm->ncpus + 8);
	val = calloc(1, m->vstride + 8);
	if (!buf || !val) {
		free(buf);
		free(val);
		fmt_err(err, errlen, "out of memory");
		return -1;
	}
	for (__u32 i = 0; i < m->max_entries && !rc; i++) {
		if (map_read(vm, m, &i, val, buf)) {
			fmt_err(err, errlen, "map %s: lookup %u: %s", name, i, strerror(errno));
			rc = -1;
		} else if (memcmp(val, m->vals + (size_t)i * m->vstride, m->value_size)) {
			fmt_err(err, errlen, "map %s differs at index %u", name, i);
			rc = 1;
		}
	}
	free(buf);
	free(val);
	return rc;
}

/* ---- memory ------------------------------------------------------------ */

static int in_range(__u64 a, size_t n, const void *base, size_t len)
{
	__u64 b = (__u64)(unsigned long)base;

	return a >= b && n <= len && a - b <= len - n;
}

/* The host address of [a, a + n) when the program may touch it, or NULL. */
static void *mem(struct bi_vm *vm, __u64 a, size_t n)
{
	if (in_range(a, n, vm->stack, sizeof(vm->stack)) ||
	    in_range(a, n, vm->pkt, sizeof(vm->pkt)))
		return (void *)(unsigned long)a;
	for (int i = 0; i < vm->n_maps; i++) {
		struct bi_map *m = vm->maps[i];

		if (m->vals && in_range(a, n, m->vals, (size_t)m->cap * m->vstride))
			return (void *)(unsigned long)a;
	}
	return NULL;
}

static int ctx_load(struct bi_vm *vm, __u64 a, int size, __u64 *out)
{
	size_t off = (size_t)(a - (__u64)(unsigned long)vm->ctx);
	__u32 f[6];

	switch (off) {
	case offsetof(struct xdp_md, data):
		*out = (__u64)(unsigned long)vm->data;
		return size == 4 ? 0 : -1;
	case offsetof(struct xdp_md, data_end):
		*out = (__u64)(unsigned long)vm->data_end;
		return size == 4 ? 0 : -1;
	case offsetof(struct xdp_md, data_meta):
		*out = (__u64)(unsigned long)vm->data_meta;
		return size == 4 ? 0 : -1;
	default:
		break;
	}
	f[3] = vm->run->ingress_ifindex;
	f[4] = vm->run->rx_queue_index;
	f[5] = 0; /* egress_ifindex: not set in a test run */
	if (off < 12 || off + (size_t)size > sizeof(f))
		return -1;
	*out = 0;
	memcpy(out, (__u8 *)f + off, (size_t)size); /* little endian */
	return 0;
}

static int is_ctx(struct bi_vm *vm, __u64 a)
{
	return in_range(a, 1, vm->ctx, sizeof(vm->ctx));
}

/* ---- helpers ----------------------------------------------------------- */

#define BI_FN(x) #x
static const char *const helper_names[] = {__BPF_FUNC_MAPPER(BI_FN)};
#undef BI_FN

const char *bi_helper_name(int id)
{
	if (id < 0 || (size_t)id >= sizeof(helper_names) / sizeof(helper_names[0]))
		return NULL;
	return helper_names[id];
}

/* 0 done (r0 set), 1 the program ends (a tail call), -1 error. */
static int helper(struct bi_vm *vm, __s32 id, __u64 *r)
{
	struct bi_run *run = vm->run;
	struct bi_map *m;
	void *k, *v;
	long rc;

	if (id <= 0 || id >= BI_MAX_HELPER) {
		fmt_err(run->err, sizeof(run->err), "call of helper %d", id);
		return -1;
	}
	run->counts.helper_calls++;
	run->counts.helpers[id]++;
	switch (id) {
	case BPF_FUNC_map_lookup_elem:
	case BPF_FUNC_map_update_elem:
	case BPF_FUNC_map_delete_elem:
		m = map_of_ptr(vm, r[1]);
		if (!m)
			goto bad_map;
		k = mem(vm, r[2], m->key_size);
		if (!k)
			goto bad_mem;
		if (id == BPF_FUNC_map_lookup_elem) {
			__u8 *p = map_lookup(m, k);

			if (p && m->type == BPF_MAP_TYPE_HASH_OF_MAPS) {
				__u32 inner;

				memcpy(&inner, p, sizeof(inner));
				m = map_by_id(vm, inner);
				if (!m) {
					fmt_err(run->err, sizeof(run->err), "inner map %u not read",
						inner);
					return -1;
				}
				r[0] = (__u64)(unsigned long)m;
			} else {
				r[0] = (__u64)(unsigned long)p;
			}
		} else if (id == BPF_FUNC_map_update_elem) {
			v = mem(vm, r[3], m->value_size);
			if (!v)
				goto bad_mem;
			rc = map_update(m, k, v, r[4]);
			if (rc == -EOPNOTSUPP) {
				fmt_err(run->err, sizeof(run->err),
					"update of map %s (type %u) not emulated", m->name,
					m->type);
				return -1;
			}
			if (rc == -ENOMEM) {
				fmt_err(run->err, sizeof(run->err),
					"more than %d inserts into %s in one run", BI_HASH_SPARE,
					m->name);
				return -1;
			}
			r[0] = (__u64)rc;
		} else {
			r[0] = (__u64)map_delete(m, k);
		}
		return 0;
	case BPF_FUNC_ktime_get_ns:
		r[0] = run->ktime_ns;
		return 0;
	case BPF_FUNC_ktime_get_tai_ns:
		r[0] = run->tai_ns;
		return 0;
	case BPF_FUNC_get_prandom_u32:
		/* The kernel's draw cannot be known: a program that needs it
		 * will not match, and says so.
		 */
		r[0] = (__u32)random();
		return 0;
	case BPF_FUNC_spin_lock:
	case BPF_FUNC_spin_unlock:
		if (!mem(vm, r[1], 4))
			goto bad_mem;
		r[0] = 0;
		return 0;
	case BPF_FUNC_redirect_map:
		m = map_of_ptr(vm, r[1]);
		if (!m)
			goto bad_map;
		if (m->type != BPF_MAP_TYPE_DEVMAP && m->type != BPF_MAP_TYPE_DEVMAP_HASH &&
		    m->type != BPF_MAP_TYPE_XSKMAP) {
			fmt_err(run->err, sizeof(run->err), "redirect into map %s (type %u)",
				m->name, m->type);
			return -1;
		}
		{
			__u32 key = (__u32)r[2];
			__u8 *p = map_lookup(m, &key); /* an XSKMAP's: NULL */

			if (r[3] & ~(__u64)(XDP_ABORTED | XDP_DROP | XDP_PASS | XDP_TX)) {
				fmt_err(run->err, sizeof(run->err),
					"redirect_map flags %#llx not emulated",
					(unsigned long long)r[3]);
				return -1;
			}
			r[0] = p ? XDP_REDIRECT : (r[3] & 3);
		}
		return 0;
	case BPF_FUNC_xdp_adjust_tail:
	case BPF_FUNC_xdp_adjust_head: {
		__s32 d = (__s32)r[2];

		if (!is_ctx(vm, r[1]))
			goto bad_mem;
		if (id == BPF_FUNC_xdp_adjust_tail) {
			__u8 *end = vm->data_end + d;

			if (end > vm->pkt + BI_FRAME_SZ - BI_TAILROOM || end < vm->data + 14) {
				r[0] = (__u64)(long)-EINVAL;
				return 0;
			}
			if (d > 0)
				memset(vm->data_end, 0, (size_t)d);
			vm->data_end = end;
		} else {
			__u8 *data = vm->data + d;

			/* struct xdp_frame (40 bytes) sits at the frame's start */
			if (data < vm->pkt + 40 || data > vm->data_end - 14) {
				r[0] = (__u64)(long)-EINVAL;
				return 0;
			}
			vm->data = data;
			vm->data_meta = data;
		}
		r[0] = 0;
		return 0;
	}
	case BPF_FUNC_fib_lookup: {
		struct bpf_fib_lookup p;
		void *pp = mem(vm, r[2], sizeof(p));

		if (!is_ctx(vm, r[1]) || !pp || r[3] < sizeof(p))
			goto bad_mem;
		if (!run->fib) {
			fmt_err(run->err, sizeof(run->err), "fib_lookup without a FIB");
			return -1;
		}
		memcpy(&p, pp, sizeof(p));
		r[0] = (__u64)(long)run->fib(run->fib_user, &p, (__u32)r[4]);
		memcpy(pp, &p, sizeof(p));
		return 0;
	}
	case BPF_FUNC_tail_call:
		m = map_of_ptr(vm, r[2]);
		if (!m || m->type != BPF_MAP_TYPE_PROG_ARRAY)
			goto bad_map;
		{
			__u32 i = (__u32)r[3], prog = 0;

			if (i < m->max_entries)
				memcpy(&prog, m->vals + (size_t)i * m->vstride, sizeof(prog));
			if (prog) {
				fmt_err(run->err, sizeof(run->err),
					"tail call into program %u of %s: not emulated", prog,
					m->name);
				return -1;
			}
		}
		/* An empty slot: the call falls through. */
		r[0] = (__u64)(long)-ENOENT;
		return 0;
	default:
		fmt_err(run->err, sizeof(run->err), "helper %d (%s) not emulated", id,
			bi_helper_name(id) ? bi_helper_name(id) : "?");
		return -1;
	}
bad_map:
	fmt_err(run->err, sizeof(run->err), "helper %s: not a map", bi_helper_name(id));
	return -1;
bad_mem:
	fmt_err(run->err, sizeof(run->err), "helper %s: argument outside the program's memory",
		bi_helper_name(id));
	return -1;
}

/* ---- the instructions ---------------------------------------------------- */

static __u64 alu(__u8 op, __u64 d, __u64 s, int is64, __s16 off, int *bad)
{
	if (!is64) {
		__u32 a = (__u32)d, b = (__u32)s;

		switch (op) {
		case BPF_ADD:
			return (__u32)(a + b);
		case BPF_SUB:
			return (__u32)(a - b);
		case BPF_MUL:
			return (__u32)(a * b);
		case BPF_DIV:
			if (off == 1) {
				__s32 x = (__s32)a, y = (__s32)b;

				if (!y)
					return 0;
				if (y == -1)
					return (__u32)(0 - a);
				return (__u32)(x / y);
			}
			return b ? a / b : 0;
		case BPF_MOD:
			if (off == 1) {
				__s32 x = (__s32)a, y = (__s32)b;

				if (!y)
					return a;
				if (y == -1)
					return 0;
				return (__u32)(x % y);
			}
			return b ? a % b : a;
		case BPF_OR:
			return a | b;
		case BPF_AND:
			return a & b;
		case BPF_XOR:
			return a ^ b;
		case BPF_LSH:
			return (__u32)(a << (b & 31));
		case BPF_RSH:
			return a >> (b & 31);
		case BPF_ARSH:
			return (__u32)((__s32)a >> (b & 31));
		case BPF_NEG:
			return (__u32)(0 - a);
		case BPF_MOV:
			if (off == 8)
				return (__u32)(__s32)(__s8)b;
			if (off == 16)
				return (__u32)(__s32)(__s16)b;
			return b;
		}
	} else {
		switch (op) {
		case BPF_ADD:
			return d + s;
		case BPF_SUB:
			return d - s;
		case BPF_MUL:
			return d * s;
		case BPF_DIV:
			if (off == 1) {
				__s64 x = (__s64)d, y = (__s64)s;

				if (!y)
					return 0;
				if (y == -1)
					return 0 - d;
				return (__u64)(x / y);
			}
			return s ? d / s : 0;
		case BPF_MOD:
			if (off == 1) {
				__s64 x = (__s64)d, y = (__s64)s;

				if (!y)
					return d;
				if (y == -1)
					return 0;
				return (__u64)(x % y);
			}
			return s ? d % s : d;
		case BPF_OR:
			return d | s;
		case BPF_AND:
			return d & s;
		case BPF_XOR:
			return d ^ s;
		case BPF_LSH:
			return d << (s & 63);
		case BPF_RSH:
			return d >> (s & 63);
		case BPF_ARSH:
			return (__u64)((__s64)d >> (s & 63));
		case BPF_NEG:
			return 0 - d;
		case BPF_MOV:
			if (off == 8)
				return (__u64)(__s64)(__s8)s;
			if (off == 16)
				return (__u64)(__s64)(__s16)s;
			if (off == 32)
				return (__u64)(__s64)(__s32)s;
			return s;
		}
	}
	*bad = 1;
	return 0;
}

static __u64 bswap(__u64 v, __s32 bits)
{
	switch (bits) {
	case 16:
		return __builtin_bswap16((__u16)v);
	case 32:
		return __builtin_bswap32((__u32)v);
	default:
		return __builtin_bswap64(v);
	}
}

static __u64 trunc_to(__u64 v, __s32 bits)
{
	return bits == 16 ? (__u16)v : bits == 32 ? (__u32)v : v;
}

static int jump(__u8 op, __u64 d, __u64 s, int is64, int *bad)
{
	if (!is64) {
		d = (__u32)d;
		s = (__u32)s;
	}
#define SGN(x) (is64 ? (__s64)(x) : (__s64)(__s32)(x))
	switch (op) {
	case BPF_JEQ:
		return d == s;
	case BPF_JNE:
		return d != s;
	case BPF_JGT:
		return d > s;
	case BPF_JGE:
		return d >= s;
	case BPF_JLT:
		return d < s;
	case BPF_JLE:
		return d <= s;
	case BPF_JSET:
		return (d & s) != 0;
	case BPF_JSGT:
		return SGN(d) > SGN(s);
	case BPF_JSGE:
		return SGN(d) >= SGN(s);
	case BPF_JSLT:
		return SGN(d) < SGN(s);
	case BPF_JSLE:
		return SGN(d) <= SGN(s);
	}
#undef SGN
	*bad = 1;
	return 0;
}

static size_t size_of(__u8 code)
{
	switch (BPF_SIZE(code)) {
	case BPF_B:
		return 1;
	case BPF_H:
		return 2;
	case BPF_W:
		return 4;
	default:
		return 8;
	}
}

static __u64 load(const void *p, size_t n, int sx)
{
	__u8 b;
	__u16 h;
	__u32 w;
	__u64 q;

	switch (n) {
	case 1:
		memcpy(&b, p, 1);
		return sx ? (__u64)(__s64)(__s8)b : b;
	case 2:
		memcpy(&h, p, 2);
		return sx ? (__u64)(__s64)(__s16)h : h;
	case 4:
		memcpy(&w, p, 4);
		return sx ? (__u64)(__s64)(__s32)w : w;
	default:
		memcpy(&q, p, 8);
		return q;
	}
}

static void store(void *p, size_t n, __u64 v)
{
	__u8 b = (__u8)v;
	__u16 h = (__u16)v;
	__u32 w = (__u32)v;

	switch (n) {
	case 1:
		memcpy(p, &b, 1);
		break;
	case 2:
		memcpy(p, &h, 2);
		break;
	case 4:
		memcpy(p, &w, 4);
		break;
	default:
		memcpy(p, &v, 8);
	}
}

static int atomic(struct bi_vm *vm, const struct bpf_insn *in, __u64 *r)
{
	size_t n = size_of(in->code);
	void *p = mem(vm, r[in->dst_reg] + (__u64)(__s64)in->off, n);
	__u64 old, s = r[in->src_reg], nv;
	int bad = 0;

	if (!p || (n != 4 && n != 8))
		return -1;
	old = load(p, n, 0);
	switch (in->imm) {
	case BPF_XCHG:
		nv = s;
		break;
	case BPF_CMPXCHG:
		nv = (n == 4 ? (__u32)old == (__u32)r[0] : old == r[0]) ? s : old;
		store(p, n, nv);
		r[0] = old;
		return 0;
	default:
		nv = alu((__u8)(in->imm & ~BPF_FETCH), old, s, n == 8, 0, &bad);
		if (bad || ((in->imm & ~BPF_FETCH) != BPF_ADD && (in->imm & ~BPF_FETCH) != BPF_OR &&
			    (in->imm & ~BPF_FETCH) != BPF_AND && (in->imm & ~BPF_FETCH) != BPF_XOR))
			return -1;
	}
	store(p, n, nv);
	if (in->imm & BPF_FETCH)
		r[in->src_reg] = old;
	return 0;
}

int bi_exec(struct bi_vm *vm, struct bi_run *run)
{
	struct {
		size_t ret;
		__u64 saved[4]; /* r6-r9 */
		__u64 fp;
	} frames[BI_FRAMES];
	const struct bpf_insn *prog = run->insns;
	size_t n = run->n_insns, pc = 0;
	__u64 r[11] = {0};
	int depth = 0;

	memset(&run->counts, 0, sizeof(run->counts));
	if (run->hits)
		memset(run->hits, 0, n * sizeof(*run->hits));
	run->err[0] = 0;
	run->out_len = 0;
	if (run->len > BI_FRAME_SZ - BI_HEADROOM - BI_TAILROOM) {
		fmt_err(run->err, sizeof(run->err), "frame of %zu bytes too large", run->len);
		return -1;
	}
	for (int i = 0; i < vm->n_maps; i++)
		if (vm->maps[i]->cap)
			map_reset(vm->maps[i]);
	vm->run = run;
	memset(vm->stack, 0, sizeof(vm->stack));
	memset(vm->pkt, 0, sizeof(vm->pkt));
	memcpy(vm->pkt + BI_HEADROOM, run->frame, run->len);
	vm->data = vm->data_meta = vm->pkt + BI_HEADROOM;
	vm->data_end = vm->data + run->len;
	r[1] = (__u64)(unsigned long)vm->ctx;
	r[10] = (__u64)(unsigned long)(vm->stack[0] + BI_STACK);

	for (;;) {
		const struct bpf_insn *in;
		__u8 cls, op;
		__u64 src, *dst;
		int bad = 0;

		if (pc >= n) {
			fmt_err(run->err, sizeof(run->err), "pc %zu past the program's end", pc);
			return -1;
		}
		if (run->counts.insns >= BI_MAX_STEPS) {
			fmt_err(run->err, sizeof(run->err), "more than %d instructions",
				BI_MAX_STEPS);
			return -1;
		}
		in = &prog[pc];
		run->counts.insns++;
		if (run->hits)
			run->hits[pc]++;
		cls = BPF_CLASS(in->code);
		op = BPF_OP(in->code);
		if (in->dst_reg > 10 || in->src_reg > 10)
			goto bad_insn;
		dst = &r[in->dst_reg];
		switch (cls) {
		case BPF_ALU:
		case BPF_ALU64:
			if (in->dst_reg == 10)
				goto bad_insn;
			if (op == BPF_END) {
				if (cls == BPF_ALU64 || BPF_SRC(in->code) == BPF_TO_BE)
					*dst = bswap(*dst, in->imm);
				*dst = trunc_to(*dst, in->imm);
				break;
			}
			src = BPF_SRC(in->code) == BPF_X ? r[in->src_reg]
			      : cls == BPF_ALU64	 ? (__u64)(__s64)in->imm
							 : (__u32)in->imm;
			*dst = alu(op, *dst, src, cls == BPF_ALU64, in->off, &bad);
			if (bad)
				goto bad_insn;
			break;
		case BPF_JMP:
		case BPF_JMP32:
			if (op == BPF_JA) {
				pc += (size_t)(cls == BPF_JMP ? (long)in->off : (long)in->imm);
				break;
			}
			if (op == BPF_CALL && cls == BPF_JMP) {
				if (in->src_reg == BPF_PSEUDO_CALL) {
					if (depth + 1 >= BI_FRAMES) {
						fmt_err(run->err, sizeof(run->err),
							"calls nested deeper than %d", BI_FRAMES);
						return -1;
					}
					frames[depth].ret = pc + 1;
					memcpy(frames[depth].saved, &r[6], sizeof(frames[0].saved));
					frames[depth].fp = r[10];
					depth++;
					if ((__u32)depth > run->counts.max_depth)
						run->counts.max_depth = (__u32)depth;
					run->counts.subprog_calls++;
					r[10] = (__u64)(unsigned long)(vm->stack[depth] + BI_STACK);
					pc = pc + 1 + (size_t)(long)in->imm;
					continue;
				}
				if (in->src_reg != 0)
					goto bad_insn;
				switch (helper(vm, in->imm, r)) {
				case 0:
					break;
				default:
					return -1;
				}
				break;
			}
			if (op == BPF_EXIT && cls == BPF_JMP) {
				if (!depth) {
					run->retval = (__u32)r[0];
					goto done;
				}
				depth--;
				pc = frames[depth].ret;
				memcpy(&r[6], frames[depth].saved, sizeof(frames[0].saved));
				r[10] = frames[depth].fp;
				continue;
			}
			src = BPF_SRC(in->code) == BPF_X ? r[in->src_reg] : (__u64)(__s64)in->imm;
			if (jump(op, *dst, src, cls == BPF_JMP, &bad))
				pc += (size_t)(long)in->off;
			if (bad)
				goto bad_insn;
			break;
		case BPF_LD:
			if (in->code != (BPF_LD | BPF_IMM | BPF_DW) || pc + 1 >= n)
				goto bad_insn;
			if (in->src_reg == 0) {
				*dst =
				    (__u64)(__u32)in->imm | ((__u64)(__u32)prog[pc + 1].imm << 32);
			} else if (in->src_reg == BPF_PSEUDO_MAP_FD ||
				   in->src_reg == BPF_PSEUDO_MAP_VALUE) {
				struct bi_map *m = map_by_fd(vm, in->imm);

				if (!m) {
					fmt_err(run->err, sizeof(run->err),
						"ld_imm64 of unknown map fd %d", in->imm);
					return -1;
				}
				if (in->src_reg == BPF_PSEUDO_MAP_FD)
					*dst = (__u64)(unsigned long)m;
				else if (m->type == BPF_MAP_TYPE_ARRAY && m->vals)
					*dst =
					    (__u64)(unsigned long)m->vals + (__u32)prog[pc + 1].imm;
				else
					goto bad_insn;
			} else {
				goto bad_insn;
			}
			pc++;
			break;
		case BPF_LDX: {
			__u64 a = r[in->src_reg] + (__u64)(__s64)in->off;
			size_t sz = size_of(in->code);
			void *p;

			if (BPF_MODE(in->code) != BPF_MEM && BPF_MODE(in->code) != BPF_MEMSX)
				goto bad_insn;
			if (is_ctx(vm, a)) {
				if (BPF_MODE(in->code) != BPF_MEM || ctx_load(vm, a, (int)sz, dst))
					goto bad_mem;
				break;
			}
			p = mem(vm, a, sz);
			if (!p)
				goto bad_mem;
			*dst = load(p, sz, BPF_MODE(in->code) == BPF_MEMSX);
			break;
		}
		case BPF_ST:
		case BPF_STX: {
			__u64 a = r[in->dst_reg] + (__u64)(__s64)in->off;
			size_t sz = size_of(in->code);
			void *p;

			if (cls == BPF_STX && BPF_MODE(in->code) == BPF_ATOMIC) {
				if (atomic(vm, in, r))
					goto bad_mem;
				break;
			}
			if (BPF_MODE(in->code) != BPF_MEM)
				goto bad_insn;
			p = mem(vm, a, sz);
			if (!p)
				goto bad_mem;
			store(p, sz, cls == BPF_ST ? (__u64)(__s64)in->imm : r[in->src_reg]);
			break;
		}
		default:
			goto bad_insn;
		}
		pc++;
	}
done:
	run->out_len = (size_t)(vm->data_end - vm->data_meta);
	memcpy(run->out, vm->data_meta, run->out_len);
	return 0;
bad_insn:
	fmt_err(run->err, sizeof(run->err), "insn %zu: opcode %#x (dst r%u, src r%u) not emulated",
		pc, prog[pc].code, prog[pc].dst_reg, prog[pc].src_reg);
	return -1;
bad_mem:
	fmt_err(run->err, sizeof(run->err),
		"insn %zu: opcode %#x: access outside the program's memory", pc, prog[pc].code);
	return -1;
}
