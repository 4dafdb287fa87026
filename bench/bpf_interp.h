/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * bpf_interp: a userspace interpreter of XDP programs, for counting what one
 * packet costs in machine-independent terms: the BPF instructions executed
 * and the helper calls made, by helper.
 *
 * It runs the instructions libbpf loaded (bpf_program__insns() after load:
 * relocated, subprograms appended, map fds in the ld_imm64s) on a copy of a
 * frame, over copies of the maps read from the kernel (bi_snapshot), with
 * the helpers the router calls emulated on those copies. Every memory access
 * is checked against the stack, the frame, the context and the map values;
 * anything outside them, an unknown opcode or an unemulated helper stops the
 * run with an error instead of a guess.
 *
 * Map types: array, per-CPU array (the slice of one CPU), hash, LRU hash
 * (evicting the oldest insert when full), hash of maps (the inner maps read
 * by id), devmap/devmap hash (redirects), prog array (a tail call into an
 * empty slot falls through; into a program, an error); an XSKMAP is empty
 * (its sockets cannot be read from userspace). Helpers: map lookup, update,
 * delete; ktime_get_ns and ktime_get_tai_ns (the clock the caller gives);
 * get_prandom_u32; redirect_map; xdp_adjust_head/tail (the kernel's test-run
 * frame: 256 bytes of headroom, 4096 in all, 320 for skb_shared_info);
 * fib_lookup (the caller's table); spin lock/unlock; tail_call.
 */
#ifndef CPN_BENCH_BPF_INTERP_H
#define CPN_BENCH_BPF_INTERP_H

#include <stddef.h>
#include <linux/bpf.h>
#include <linux/types.h>

struct bpf_object;
struct bi_vm;

#define BI_MAX_HELPER 256

struct bi_counts {
	__u64 insns;		      /* instructions executed (an ld_imm64 is one) */
	__u64 helper_calls;	      /* calls of helpers, all kinds */
	__u64 helpers[BI_MAX_HELPER]; /* by helper id (BPF_FUNC_*) */
	__u64 subprog_calls;	      /* bpf-to-bpf calls */
	__u32 max_depth;	      /* deepest call frame (0 = the program only) */
};

/* The FIB lookup, answered by the caller: returns a BPF_FIB_LKUP_RET_* and
 * fills *p as the kernel would.
 */
typedef int (*bi_fib_fn)(void *user, struct bpf_fib_lookup *p, __u32 flags);

struct bi_run {
	/* in */
	const struct bpf_insn *insns;
	size_t n_insns;
	const __u8 *frame;
	size_t len;
	__u32 ingress_ifindex, rx_queue_index;
	__u64 ktime_ns; /* what bpf_ktime_get_ns() returns */
	__u64 tai_ns;	/* what bpf_ktime_get_tai_ns() returns */
	bi_fib_fn fib;
	void *fib_user;
	__u32 *hits; /* optional, n_insns entries: times each instruction ran */
	/* out */
	__u32 retval;
	__u8 out[4096];
	size_t out_len;
	struct bi_counts counts;
	char err[160]; /* why the run stopped, when bi_exec returns -1 */
};

/* A machine for the programs of one object: its maps (and any inner map)
 * are known by fd. obj may be NULL for a program without maps.
 */
struct bi_vm *bi_new(struct bpf_object *obj, char *err, size_t errlen);
void bi_free(struct bi_vm *vm);
/* Read every map's contents from the kernel, as the CPU `cpu` sees its
 * per-CPU maps: the state each bi_exec starts from. 0 or -1 (err says why).
 */
int bi_snapshot(struct bi_vm *vm, int cpu, char *err, size_t errlen);
/* Run r->insns on r->frame from the snapshot's state (each call starts from
 * the snapshot again). 0, or -1 with r->err.
 */
int bi_exec(struct bi_vm *vm, struct bi_run *r);
/* Compare the map named `name` as the last bi_exec left it with the
 * kernel's now (the CPU of the snapshot): 0 equal, 1 different (err says
 * where), -1 error.
 */
int bi_compare_map(struct bi_vm *vm, const char *name, char *err, size_t errlen);
/* A helper's name ("map_lookup_elem"), or NULL where this file has none. */
const char *bi_helper_name(int id);
#endif /* CPN_BENCH_BPF_INTERP_H */
