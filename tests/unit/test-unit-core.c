/* SPDX-License-Identifier: MIT */
/*
 * The generic core (vm.c, vcpu.c, slots.c, swbp.c) against a fake KVM
 * (tests/common/fake-host.h): a struct kvmdbg_host_ops that records what
 * the library asks of KVM and feeds it synthetic exits, with the real
 * portable arch ops behind it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/kvm.h>

#include "arch/arm64/regs.h"
#include "arch/x86/regs.h"
#include "fake-host.h"
#include "kvmdbg-int.h"
#include "test-common.h"

/* ---- the fake KVM: tests/common/fake-host.h ---- */

/* Guest memory: the fake's pattern over 64 KiB (rather than its default). */
#define MEM_SIZE 0x10000

/* Reset the fake KVM to a typical host of arch; its host ops. */
static const struct kvmdbg_host_ops *fake_host(enum kvmdbg_arch arch)
{
	fh_reset(arch);
	fh_mem_resize(MEM_SIZE);
	return fh_host();
}

static struct kvm_run runs[4];

struct env {
	struct kvmdbg_vm *vm;
	struct kvmdbg_vcpu *v[2];
};

static void env_new_overlay(struct env *e, enum kvmdbg_arch arch, uint64_t features,
			    enum kvmdbg_overlay overlay)
{
	struct kvmdbg_vm_opts o = {
		.sz = sizeof(o), .mem = &fh_mem_ops, .mem_ctx = &fh, .features = features, .overlay = overlay};
	const struct kvmdbg_host_ops *host = fake_host(arch);

	memset(runs, 0, sizeof(runs));
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, host, &fh, &e->vm), 0);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(kvmdbg_vcpu_new(e->vm, i, &runs[i], &e->v[i]), 0);
		runs[i].exit_reason = KVM_EXIT_DEBUG;
	}
}

static void env_new(struct env *e, enum kvmdbg_arch arch, uint64_t features)
{
	env_new_overlay(e, arch, features, KVMDBG_OVERLAY_OFF);
}

static void env_free(struct env *e)
{
	for (int i = 0; i < 2; i++) {
		kvmdbg_vcpu_free(e->v[i]);
		/* arm64: every restore_irqs gave back what mask_irqs saved. */
		ck_assert_uint_eq(fh.v[i].daif, 0x3c0);
	}
	ck_assert_int_eq(kvmdbg_vm_free(e->vm), 0);
}

/* Outside the lock every attached vCPU's copies are the VM's (struct
 * kvmdbg_vm_seen, struct kvmdbg_vm_hot): the lock-free paths read only them. */
static void assert_seen(const struct kvmdbg_vm *vm)
{
	unsigned int n = 0;

	for (const struct kvmdbg_vcpu *v = vm->vcpus; v; v = v->next, n++) {
		uint64_t gen = atomic_load(&v->seen.gen), hw_gen = atomic_load(&v->seen.hw_gen);
		unsigned int nr_exec = atomic_load(&v->seen.nr_exec);
		bool filter = atomic_load(&v->seen.sw_filter);

		ck_assert_msg(gen == atomic_load(&vm->gen),
			      "vCPU %u: seen.gen %" PRIu64 ", vm->gen %" PRIu64, n, gen,
			      (uint64_t)atomic_load(&vm->gen));
		ck_assert_msg(hw_gen == atomic_load(&vm->hw_gen), "vCPU %u: seen.hw_gen %" PRIu64, n,
			      hw_gen);
		ck_assert_msg(nr_exec == atomic_load(&vm->nr_exec), "vCPU %u: seen.nr_exec %u", n,
			      nr_exec);
		ck_assert_msg(filter == (atomic_load(&vm->sw.filter) != NULL),
			      "vCPU %u: seen.sw_filter %d", n, filter);
		ck_assert_msg(!memcmp(&v->hot, &vm->hot, sizeof(v->hot)), "vCPU %u: hot differs", n);
	}
	ck_assert_uint_eq(n, atomic_load(&vm->nr_vcpus));
}

/* x86 #DB exit with positive-polarity DR6 bits. */
static void x86_db(int cpu, uint64_t pc, uint64_t dr6_bits)
{
	fh.v[cpu].exit = (struct kvmdbg_exit){
		.exception = 1, .pc = pc, .dr6 = 0xffff0ff0ull | dr6_bits, .dr7 = 0x400};
	fh.v[cpu].pc = pc;
}

static void x86_bp(int cpu, uint64_t pc)
{
	fh.v[cpu].exit = (struct kvmdbg_exit){.exception = 3, .pc = pc, .dr6 = 0xffff0ff0ull};
	fh.v[cpu].pc = pc;
}


static int enabled_slots(const struct fh_vcpu *f, unsigned int pool)
{
	int n = 0;

	for (int i = 0; i < KVMDBG_MAX_SLOTS; i++)
		n += f->hw.slot[pool][i].ctrl != 0;
	return n;
}

/* ---- slots ---- */

START_TEST(test_slots_all_or_nothing)
{
	struct kvmdbg_limits lim = {.nr = {4, 2}};
	struct kvmdbg_slots s;
	struct kvmdbg_piece p[5];
	uint32_t m1, m2, m3;

	for (int i = 0; i < 5; i++)
		p[i] = (struct kvmdbg_piece){.pool = 0, .value = 0x1000u + i, .ctrl = 0x100,
					     .start = 0x1000u + i, .len = 1};
	kvmdbg_slots_init(&s, &lim);
	ck_assert_uint_eq(kvmdbg_slots_free(&s, 0), 4);
	ck_assert_uint_eq(kvmdbg_slots_free(&s, 1), 2);
	ck_assert_int_eq(kvmdbg_slots_alloc(&s, 1, p, 2, &m1), 0);
	ck_assert_uint_eq(m1, 0x3);
	ck_assert_int_eq(kvmdbg_slots_alloc(&s, 2, p, 3, &m2), -ENOSPC);
	ck_assert_uint_eq(kvmdbg_slots_free(&s, 0), 2); /* nothing half-taken */
	ck_assert_int_eq(kvmdbg_slots_alloc(&s, 2, p, 1, &m2), 0);
	ck_assert_uint_eq(m2, 0x4);
	kvmdbg_slots_release(&s, m1);
	/* Stable numbering: owner 2 keeps slot 2; the freed low slots are reused. */
	ck_assert_uint_eq(s.owner[0][2], 2);
	ck_assert_int_eq(kvmdbg_slots_alloc(&s, 3, p, 3, &m3), 0);
	ck_assert_uint_eq(m3, 0xb);
	ck_assert_int_eq(kvmdbg_slots_alloc(&s, 4, p, 1, NULL), -ENOSPC);
	/* Watchpoint pool bits sit at 16 + n. */
	p[0].pool = 1;
	ck_assert_int_eq(kvmdbg_slots_alloc(&s, 5, p, 1, &m1), 0);
	ck_assert_uint_eq(m1, 1u << 16);
	ck_assert_int_eq(kvmdbg_slots_alloc(&s, 0, p, 1, &m1), -EINVAL);
	p[0].ctrl = 0;
	ck_assert_int_eq(kvmdbg_slots_alloc(&s, 6, p, 1, &m1), -EINVAL);
}
END_TEST

/* ---- software breakpoint table vs a reference model ---- */

START_TEST(test_swtab_model)
{
	enum { N = 4096 };
	static uint64_t keys[N];
	static bool present[N];
	struct kvmdbg_swtab t = {0};
	unsigned int seed = 12345;

	for (int i = 0; i < N; i++)
		keys[i] = (uint64_t)i * 0x1000 + (i & 7); /* clustered, aligned-ish */
	memset(present, 0, sizeof(present));
	for (int step = 0; step < 200000; step++) {
		int k;

		seed = seed * 1103515245 + 12345;
		k = (int)((seed >> 8) % N);
		if (!present[k]) {
			struct kvmdbg_swbp *e;

			ck_assert_ptr_null(kvmdbg_swtab_find(&t, keys[k]));
			ck_assert_int_eq(kvmdbg_swtab_reserve(&t), 0);
			e = kvmdbg_swtab_add(&t, keys[k]);
			ck_assert_ptr_nonnull(e);
			e->refs = (uint16_t)(k & 0xff);
			present[k] = true;
		} else {
			struct kvmdbg_swbp *e = kvmdbg_swtab_find(&t, keys[k]);

			ck_assert_ptr_nonnull(e);
			ck_assert_uint_eq(e->refs, k & 0xff);
			kvmdbg_swtab_del(&t, keys[k]);
			present[k] = false;
		}
		if (step % 9973 == 0) {
			size_t count = 0;

			for (int i = 0; i < N; i++) {
				bool found = kvmdbg_swtab_find(&t, keys[i]) != NULL;

				ck_assert_int_eq(found, present[i]);
				/* The lock-free filter: never a false negative. */
				if (present[i])
					ck_assert(kvmdbg_swtab_may_have(&t, keys[i]));
				count += present[i];
			}
			ck_assert_uint_eq(count, t.count);
			/* Memory: at most 48 bytes per entry once past the minimum table. */
			if (t.count > 64)
				ck_assert_uint_le(kvmdbg_swtab_bytes(&t), 48 * t.count);
		}
	}
	ck_assert_ptr_null(kvmdbg_swtab_find(&t, KVMDBG_SWTAB_EMPTY));
	kvmdbg_swtab_fini(&t);
	ck_assert_uint_eq(t.cap, 0);
	ck_assert(!kvmdbg_swtab_may_have(&t, keys[0]));
}
END_TEST

/* KVMDBG_FOR_EACH_SLOT: the set bits only, lowest first, as pool and slot;
 * the mask evaluated once. */
static unsigned int mask_evals;

static uint32_t counted_mask(uint32_t m)
{
	mask_evals++;
	return m;
}

START_TEST(test_for_each_slot)
{
	static const uint32_t masks[] = {0, 1, 0x8000, 0x10000, 0x80000000u, 0x80018001u,
					 0xffffffffu, 0x00f0f00fu};

	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		uint32_t seen = 0;
		int last = -1;
		unsigned int n = 0;

		mask_evals = 0;
		KVMDBG_FOR_EACH_SLOT(counted_mask(masks[i]), pool, slot) {
			int b = (int)(pool * 16 + slot);

			ck_assert_uint_lt(pool, KVMDBG_NR_POOLS);
			ck_assert_uint_lt(slot, KVMDBG_MAX_SLOTS);
			ck_assert_int_gt(b, last);
			last = b;
			seen |= KVMDBG_HIT_BIT(pool, slot);
			n++;
		}
		ck_assert_uint_eq(seen, masks[i]);
		ck_assert_uint_eq(n, (unsigned int)__builtin_popcount(masks[i]));
		ck_assert_uint_eq(mask_evals, 1);
	}
}
END_TEST

/* The software breakpoints' lock-free filter (issue 17): every address in
 * the table, through growth (new filters, old ones retired) and the marker
 * address; few false positives; nothing once the table empties. */
START_TEST(test_swtab_filter)
{
	enum { N = 3000, PROBES = 20000 };
	struct kvmdbg_swtab t = {0};
	unsigned int fp = 0;
	size_t retired = 0;

	ck_assert(!kvmdbg_swtab_may_have(&t, 0x1000));
	/* Without a reserve there is no room, and no filter to set. */
	ck_assert_ptr_null(kvmdbg_swtab_add(&t, KVMDBG_SWTAB_EMPTY));
	ck_assert_int_eq(kvmdbg_swtab_reserve(&t), 0);
	/* The first size lives in the table's struct, not on the heap. */
	ck_assert_ptr_eq(t.e, t.first_e);
	ck_assert_ptr_eq(atomic_load(&t.filter), &t.first_filter);
	ck_assert_ptr_nonnull(kvmdbg_swtab_add(&t, KVMDBG_SWTAB_EMPTY));
	ck_assert(kvmdbg_swtab_may_have(&t, KVMDBG_SWTAB_EMPTY));
	for (uint64_t i = 0; i < N; i++) {
		ck_assert_int_eq(kvmdbg_swtab_reserve(&t), 0);
		ck_assert_ptr_nonnull(kvmdbg_swtab_add(&t, 0x400000 + i * 16));
	}
	for (uint64_t i = 0; i < N; i++)
		ck_assert(kvmdbg_swtab_may_have(&t, 0x400000 + i * 16));
	ck_assert(kvmdbg_swtab_may_have(&t, KVMDBG_SWTAB_EMPTY));
	/* Addresses never added: a few per cent, not more. */
	for (uint64_t i = 0; i < PROBES; i++)
		fp += kvmdbg_swtab_may_have(&t, 0x90000000 + i * 16);
	ck_assert_uint_lt(fp, PROBES / 10);
	/* Grown: on the heap, the first filter retired last in the chain
	 * (still valid for a reader that holds it). */
	ck_assert_ptr_ne(t.e, t.first_e);
	for (const struct kvmdbg_swfilter *f = atomic_load(&t.filter)->retired; f; f = f->retired) {
		retired++;
		if (!f->retired)
			ck_assert_ptr_eq(f, &t.first_filter);
	}
	ck_assert_uint_gt(retired, 0);
	ck_assert(kvmdbg_swtab_may_have(&t, 0x400000));
	/* Removed: still maybe (the bits stay) until the table empties. */
	for (uint64_t i = 0; i < N; i++)
		kvmdbg_swtab_del(&t, 0x400000 + i * 16);
	ck_assert(kvmdbg_swtab_may_have(&t, KVMDBG_SWTAB_EMPTY));
	kvmdbg_swtab_del(&t, KVMDBG_SWTAB_EMPTY);
	for (uint64_t i = 0; i < N; i++)
		ck_assert(!kvmdbg_swtab_may_have(&t, 0x400000 + i * 16));
	ck_assert(!kvmdbg_swtab_may_have(&t, KVMDBG_SWTAB_EMPTY));
	kvmdbg_swtab_fini(&t);
	ck_assert_ptr_null(atomic_load(&t.filter));
	/* Used again after fini: the first size again, its filter cleared. */
	ck_assert_int_eq(kvmdbg_swtab_reserve(&t), 0);
	ck_assert_ptr_eq(t.e, t.first_e);
	ck_assert(!kvmdbg_swtab_may_have(&t, 0x400000));
	ck_assert_ptr_nonnull(kvmdbg_swtab_add(&t, 0x400000));
	ck_assert(kvmdbg_swtab_may_have(&t, 0x400000));
	kvmdbg_swtab_fini(&t);
}
END_TEST

/* ---- VM construction ---- */

START_TEST(test_vm_new_errors)
{
	const struct kvmdbg_host_ops *fake_x86 = fake_host(KVMDBG_ARCH_X86_64);
	struct kvmdbg_vm_opts o = {.sz = sizeof(o)};
	struct kvmdbg_mem_ops half = {.read = fh_mem_ops.read};
	struct kvmdbg_vm *vm = (struct kvmdbg_vm *)0x1;

	ck_assert_int_eq(kvmdbg_vm_new_host(-1, NULL, fake_x86, &fh, NULL), -EINVAL);
	o.sz = 4;
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, fake_x86, &fh, &vm), -EINVAL);
	ck_assert_ptr_null(vm);
	o.sz = sizeof(o);
	o.overlay = 7;
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, fake_x86, &fh, &vm), -EINVAL);
	o.overlay = KVMDBG_OVERLAY_OFF;
	o.mem = &half;
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, fake_x86, &fh, &vm), -EINVAL);
	o.mem = NULL;
	fh.caps.guest_debug = 0;
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, fake_x86, &fh, &vm), -ENOTTY);
	fh.caps.guest_debug = 1;
	/* An older, smaller opts struct (only sz and mem) is accepted. */
	o.sz = offsetof(struct kvmdbg_vm_opts, mem_ctx);
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, fake_x86, &fh, &vm), 0);
	ck_assert_ptr_nonnull(vm);
	/* The ioctl seam is the KVM glue's: a fake host keeps its context. */
	ck_assert_int_eq(kvmdbg_vm_ioctl_seam(vm, true), -EINVAL);
	ck_assert_ptr_eq(vm->hot.host_ctx, &fh);
	ck_assert_int_eq(kvmdbg_vm_ioctl_seam(NULL, true), -EINVAL);
	ck_assert_int_eq(kvmdbg_vm_free(vm), 0);
	ck_assert_int_eq(kvmdbg_vm_free(NULL), 0);
	kvmdbg_vcpu_free(NULL);
	ck_assert_int_eq(kvmdbg_vcpu_new(NULL, 0, &runs[0], (struct kvmdbg_vcpu **)&vm), -EINVAL);
}
END_TEST

/* Sized options from a newer caller (libbpf's OPTS_VALID): unknown trailing
 * bytes must be zero; KVMDBG_OPTS sets sz. */
START_TEST(test_vm_opts_sized)
{
	const struct kvmdbg_host_ops *fake_x86 = fake_host(KVMDBG_ARCH_X86_64);
	struct {
		struct kvmdbg_vm_opts known;
		uint64_t future;
	} newer;
	struct kvmdbg_vm *vm = (struct kvmdbg_vm *)0x1;
	struct kvmdbg_overlay_stats st;
	KVMDBG_OPTS(kvmdbg_vm_opts, o, .allow_overcover = 1);

	ck_assert_uint_eq(o.sz, sizeof(struct kvmdbg_vm_opts));
	ck_assert_ptr_null(o.mem);
	ck_assert_int_eq(o.allow_overcover, 1);

	memset(&newer, 0, sizeof(newer));
	newer.known.sz = sizeof(newer);
	newer.future = 1;
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &newer.known, fake_x86, &fh, &vm), -E2BIG);
	ck_assert_ptr_null(vm);
	newer.future = 0;
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &newer.known, fake_x86, &fh, &vm), 0);
	ck_assert_int_eq(kvmdbg_vm_free(vm), 0);

	/* Result structs: a NULL or a too-small one is refused. */
	ck_assert_int_eq(kvmdbg_vcpu_overlay_stats(NULL, &st), -EINVAL);

	ck_assert(KVMDBG_STOP_IS_REPORTABLE(KVMDBG_STOP_STEP));
	ck_assert(KVMDBG_STOP_IS_REPORTABLE(KVMDBG_STOP_BREAK));
	ck_assert(KVMDBG_STOP_IS_REPORTABLE(KVMDBG_STOP_WATCH));
	ck_assert(!KVMDBG_STOP_IS_REPORTABLE(KVMDBG_STOP_GUEST));
	ck_assert(!KVMDBG_STOP_IS_REPORTABLE(KVMDBG_STOP_NONE));
	ck_assert(!KVMDBG_STOP_IS_REPORTABLE(-1));
}
END_TEST

START_TEST(test_insert_errors_change_nothing)
{
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(NULL, KVMDBG_BREAK_HW, 0x100, 1), -EINVAL);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, 9, 0x100, 1), -EINVAL);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x100, 0), -EINVAL);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, UINT64_MAX - 2, 8), -EINVAL);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_READ, 0x100, 4), -EOPNOTSUPP);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x100, 1), -ENOENT);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, 0x100, 1), -ENOENT);
	ck_assert_int_eq(kvmdbg_vm_remove(NULL, KVMDBG_BREAK_SW, 0x100, 1), -EINVAL);

	/* Three slots taken, then a 3-slot watchpoint does not fit: -ENOSPC and
	 * nothing half-inserted. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x200, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_slots_needed(e.vm, KVMDBG_WATCH_WRITE, 0x1001, 7), 3);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x1001, 7), -ENOSPC);
	ck_assert_uint_eq(kvmdbg_slots_free(&e.vm->slots, 0), 2);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x1000, 8), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_ACCESS, 0x2000, 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x300, 1), -ENOSPC);
	/* Counting is not limited by what is free. */
	ck_assert_int_eq(kvmdbg_vm_slots_needed(e.vm, KVMDBG_WATCH_WRITE, 0x1001, 15), 4);
	ck_assert_int_eq(kvmdbg_vm_slots_needed(e.vm, KVMDBG_WATCH_WRITE, 0x1001, 14), 6);
	ck_assert_int_eq(kvmdbg_vm_slots_needed(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_slots_needed(e.vm, KVMDBG_BREAK_SW, 0x100, 1), 0);
	env_free(&e);
}
END_TEST

START_TEST(test_refcounts)
{
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x1000, 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x1000, 4), 0);
	ck_assert_uint_eq(kvmdbg_slots_free(&e.vm->slots, 0), 3);
	/* Same address, other length: another point. */
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_WATCH_WRITE, 0x1000, 2), -ENOENT);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_WATCH_WRITE, 0x1000, 4), 0);
	ck_assert_uint_eq(kvmdbg_slots_free(&e.vm->slots, 0), 3);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_WATCH_WRITE, 0x1000, 4), 0);
	ck_assert_uint_eq(kvmdbg_slots_free(&e.vm->slots, 0), 4);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_WATCH_WRITE, 0x1000, 4), -ENOENT);
	/* Execution breakpoints: identified by address, whatever gdb's kind. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x500, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x500, 0), 0);

	/* Software breakpoints: refcounted, bytes restored on the last remove. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x600, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x600, 1), 0);
	ck_assert_uint_eq(fh.mem[0x600], 0xcc);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, 0x600, 1), 0);
	ck_assert_uint_eq(fh.mem[0x600], 0xcc);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, 0x600, 1), 0);
	ck_assert_uint_eq(fh.mem[0x600], fh.orig[0x600]);
	env_free(&e);
}
END_TEST

START_TEST(test_sw_memory_failures)
{
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	fh_fault_arm_site(FH_MEM_READ, 1, EFAULT);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x700, 1), -EFAULT);
	ck_assert_uint_eq(e.vm->sw.count, 0);
	fh_fault_arm_site(FH_MEM_WRITE, 1, EFAULT);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x700, 1), -EFAULT);
	ck_assert_uint_eq(e.vm->sw.count, 0);
	ck_assert_int_eq(memcmp(fh.mem, fh.orig, MEM_SIZE), 0);
	/* The last byte of the address space is a valid int3 address; the
	 * memory callback refuses it and nothing changes. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, UINT64_MAX, 1), -EFAULT);
	ck_assert_uint_eq(e.vm->sw.count, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, MEM_SIZE + 5, 1), -EFAULT);

	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x700, 1), 0);
	fh_fault_arm_site(FH_MEM_WRITE, 1, EFAULT);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, 0x700, 1), -EFAULT);
	ck_assert_uint_eq(fh.mem[0x700], 0xcc); /* still inserted, still tracked */
	ck_assert_ptr_nonnull(kvmdbg_swtab_find(&e.vm->sw, 0x700));
	fh_fault_arm_site(FH_MEM_WRITE, 1, EFAULT);
	ck_assert_int_eq(kvmdbg_vm_remove_all(e.vm), -EFAULT);
	ck_assert_ptr_nonnull(kvmdbg_swtab_find(&e.vm->sw, 0x700));
	ck_assert_int_eq(kvmdbg_vm_remove_all(e.vm), 0);
	ck_assert_int_eq(memcmp(fh.mem, fh.orig, MEM_SIZE), 0);
	env_free(&e);

	/* No memory callbacks: software breakpoints are not available. */
	{
		struct kvmdbg_vm *vm;

		ck_assert_int_eq(kvmdbg_vm_new_host(-1, NULL, fh_host(), &fh, &vm), 0);
		ck_assert_int_eq(kvmdbg_vm_insert(vm, KVMDBG_BREAK_SW, 0x700, 1), -EOPNOTSUPP);
		kvmdbg_vm_free(vm);
	}
}
END_TEST

START_TEST(test_vm_free_restores_memory)
{
	struct env e;
	unsigned int seed = 99;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	for (int i = 0; i < 3000; i++) {
		uint64_t a;

		seed = seed * 1103515245 + 12345;
		a = (seed >> 4) % MEM_SIZE;
		if ((seed >> 28) & 1)
			kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, a, 1);
		else
			ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, a, 1), 0);
	}
	ck_assert_uint_gt(e.vm->sw.count, 100);
	env_free(&e);
	ck_assert_int_eq(memcmp(fh.mem, fh.orig, MEM_SIZE), 0);
}
END_TEST

/* Guest memory that also maps the last 16 bytes of the address space. */
#define TOP_BASE (UINT64_MAX - 15)
static uint8_t top_mem[16];

static int top_read(void *ctx, uint64_t gva, void *buf, size_t len)
{
	if (gva < TOP_BASE)
		return fh_mem_ops.read(ctx, gva, buf, len);
	if (len > UINT64_MAX - gva + 1)
		return -EFAULT;
	memcpy(buf, top_mem + (gva - TOP_BASE), len);
	return 0;
}

static int top_write(void *ctx, uint64_t gva, const void *buf, size_t len)
{
	if (gva < TOP_BASE)
		return fh_mem_ops.write(ctx, gva, buf, len);
	if (len > UINT64_MAX - gva + 1)
		return -EFAULT;
	memcpy(top_mem + (gva - TOP_BASE), buf, len);
	return 0;
}

static const struct kvmdbg_mem_ops top_mem_ops = {.read = top_read, .write = top_write};

/* Issue 12 item 1: a software breakpoint at the last address of the
 * address space (x86: 0xffffffffffffffff, the table's empty marker; arm64:
 * 0xfffffffffffffffc) where the guest maps it: inserted, hit, stepped
 * over, refcounted, removed, like any other. */
START_TEST(test_sw_break_top_address)
{
	static const enum kvmdbg_arch arches[] = {KVMDBG_ARCH_X86_64, KVMDBG_ARCH_ARM64};

	for (unsigned int k = 0; k < ARRAY_SIZE(arches); k++) {
		struct kvmdbg_vm_opts o = {.sz = sizeof(o), .mem = &top_mem_ops, .mem_ctx = &fh};
		bool x86 = arches[k] == KVMDBG_ARCH_X86_64;
		uint64_t at = x86 ? UINT64_MAX : UINT64_MAX - 3;
		unsigned int off = (unsigned int)(at - TOP_BASE), len = x86 ? 1 : 4;
		struct kvmdbg_event ev;
		uint8_t orig[16];
		struct env e;

		fake_host(arches[k]);
		for (unsigned int i = 0; i < sizeof(top_mem); i++)
			top_mem[i] = (uint8_t)(0x90 + i);
		memcpy(orig, top_mem, sizeof(orig));
		ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, fh_host(), &fh, &e.vm), 0);
		for (int i = 0; i < 2; i++) {
			ck_assert_int_eq(kvmdbg_vcpu_new(e.vm, i, &runs[i], &e.v[i]), 0);
			runs[i].exit_reason = KVM_EXIT_DEBUG;
		}
		if (!x86)
			ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, UINT64_MAX, 4),
					 -EINVAL);
		ck_assert_int_eq(kvmdbg_vm_slots_needed(e.vm, KVMDBG_BREAK_SW, at, len), 0);
		ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, at, len), 0);
		ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x100, len), 0);
		ck_assert_int_eq(memcmp(top_mem + off, e.vm->arch->sw_insn, len), 0);
		ck_assert_uint_eq(e.vm->sw.count, 2);
		ck_assert_ptr_nonnull(kvmdbg_swtab_find(&e.vm->sw, at));
		ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, at, len), 0);
		ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, at, len), 0);
		ck_assert_int_eq(memcmp(top_mem + off, e.vm->arch->sw_insn, len), 0);

		/* Hit, reported, stepped over with the guest's bytes back. */
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		if (x86)
			x86_bp(0, at);
		else
			fh.v[0].exit = (struct kvmdbg_exit){.esr = (0x3cull << 26) | (1ull << 25) |
								    e.vm->arch->sw_imm,
							    .pc = at};
		fh.v[0].pc = at;
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
		ck_assert_int_eq(ev.type, KVMDBG_BREAK_SW);
		ck_assert_uint_eq(ev.addr, at);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert_int_eq(memcmp(top_mem, orig, sizeof(orig)), 0);
		if (x86)
			x86_db(0, 0, DR6_BS);
		else
			fh.v[0].exit = (struct kvmdbg_exit){.esr = (0x32ull << 26) | (1ull << 25),
							    .pc = 0};
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
		ck_assert_int_eq(memcmp(top_mem + off, e.vm->arch->sw_insn, len), 0);

		/* Removed: the guest's bytes back, the table empty of it. */
		ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, at, len), 0);
		ck_assert_int_eq(memcmp(top_mem, orig, sizeof(orig)), 0);
		ck_assert_ptr_null(kvmdbg_swtab_find(&e.vm->sw, at));
		ck_assert_uint_eq(e.vm->sw.count, 1);
		ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, at, len), -ENOENT);
		/* remove_all and vm_free restore it too. */
		ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, at, len), 0);
		ck_assert_int_eq(kvmdbg_vm_remove_all(e.vm), 0);
		ck_assert_int_eq(memcmp(top_mem, orig, sizeof(orig)), 0);
		ck_assert_uint_eq(e.vm->sw.count, 0);
		ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, at, len), 0);
		env_free(&e);
		ck_assert_int_eq(memcmp(top_mem, orig, sizeof(orig)), 0);
		ck_assert(fh_mem_is_orig());
	}
}
END_TEST

/* Issue 12 item 8: a host with 16 + 16 slots fills the whole points array;
 * one more insert is -ENOSPC and changes nothing, without searching past
 * the array for a free entry (valgrind: no invalid read). */
START_TEST(test_points_array_full)
{
	struct kvmdbg_vm_opts o = {.sz = sizeof(o), .mem = &fh_mem_ops, .mem_ctx = &fh};
	struct kvmdbg_hwpoint points[KVMDBG_MAX_POINTS];
	struct kvmdbg_slots slots;
	struct env e;

	fake_host(KVMDBG_ARCH_ARM64);
	fh.caps.hw_breakpoints = fh.caps.hw_watchpoints = KVMDBG_MAX_SLOTS;
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, fh_host(), &fh, &e.vm), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kvmdbg_vcpu_new(e.vm, i, &runs[i], &e.v[i]), 0);
	for (unsigned int i = 0; i < KVMDBG_MAX_SLOTS; i++) {
		ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x1000 + 4 * i, 4), 0);
		ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x8000 + 8 * i, 8), 0);
	}
	for (unsigned int i = 0; i < KVMDBG_MAX_POINTS; i++)
		ck_assert_uint_ne(e.vm->points[i].id, 0);
	ck_assert_uint_eq(kvmdbg_slots_free(&e.vm->slots, KVMDBG_POOL_BP), 0);
	ck_assert_uint_eq(kvmdbg_slots_free(&e.vm->slots, KVMDBG_POOL_WP), 0);
	memcpy(points, e.vm->points, sizeof(points));
	slots = e.vm->slots;
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x2000, 4), -ENOSPC);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x9000, 8), -ENOSPC);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_ACCESS, 0x9000, 8), -ENOSPC);
	ck_assert_int_eq(memcmp(points, e.vm->points, sizeof(points)), 0);
	ck_assert_int_eq(memcmp(&slots, &e.vm->slots, sizeof(slots)), 0);
	/* One removed: its entry and slot are free for the next. */
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x1000, 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x2000, 4), 0);
	ck_assert_int_eq(kvmdbg_vm_remove_all(e.vm), 0);
	env_free(&e);
}
END_TEST

/* Issue 12 item 6: freeing a session with vCPUs attached is refused
 * (-EBUSY) and frees nothing: the breakpoints stay, guest memory keeps
 * them, the vCPUs keep working; once they are freed, the session is. */
#define VM_FREE_BUSY(vm) ck_assert_int_eq(kvmdbg_vm_free(vm), -EBUSY)
START_TEST(test_vm_free_busy)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x600, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	VM_FREE_BUSY(e.vm);
	ck_assert_uint_eq(fh.mem[0x600], 0xcc);
	ck_assert_uint_eq(e.vm->sw.count, 1);
	ck_assert_uint_eq(e.vm->nr_vcpus, 2);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl, KVMDBG_CTL_ENABLE | KVMDBG_CTL_HW | KVMDBG_CTL_SW_BP);
	x86_bp(0, 0x600);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	kvmdbg_vcpu_free(e.v[0]);
	e.v[0] = NULL;
	VM_FREE_BUSY(e.vm); /* one still attached */
	ck_assert_uint_eq(fh.mem[0x600], 0xcc);
	env_free(&e); /* frees the other vCPU, then the session */
	ck_assert_int_eq(memcmp(fh.mem, fh.orig, MEM_SIZE), 0);
}
END_TEST

/* The live point holding id, or NULL; fails if two hold it. */
static const struct kvmdbg_hwpoint *live_id(const struct kvmdbg_vm *vm, uint32_t id)
{
	const struct kvmdbg_hwpoint *found = NULL;

	for (unsigned int i = 0; i < KVMDBG_MAX_POINTS; i++)
		if (vm->points[i].id == id) {
			ck_assert_msg(!found, "two live points with id %u", id);
			found = &vm->points[i];
		}
	return found;
}

/* Issue 12 item 7: point ids stay unique among live points. A failed insert
 * takes no id; after 2^31 - 1 ids the numbering wraps past the ids still
 * in use, so a hit is never attributed to another point. */
START_TEST(test_point_ids_unique)
{
	struct kvmdbg_event ev;
	struct env e;
	uint32_t a, b, c;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	a = e.vm->points[0].id;
	/* Failed inserts: -EOPNOTSUPP, -EINVAL, -ENOSPC (3 slots asked, 3 free
	 * but 4 needed), each consuming nothing. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_READ, 0x1000, 4), -EOPNOTSUPP);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x1000, 0), -EINVAL);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x1001, 15), -ENOSPC);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x140, 1), 0);
	b = e.vm->points[1].id;
	ck_assert_uint_eq(b, a + 1);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x140, 1), 0);

	/* The numbering about to wrap while id a is live: the wrapped ids skip
	 * it. */
	e.vm->next_id = KVMDBG_OWNER_SW - 2;
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x1000, 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x200, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x300, 1), 0);
	for (unsigned int i = 0; i < KVMDBG_MAX_POINTS; i++) {
		uint32_t id = e.vm->points[i].id;

		if (id) {
			ck_assert_uint_lt(id, KVMDBG_OWNER_SW);
			ck_assert_ptr_eq(live_id(e.vm, id), &e.vm->points[i]);
		}
	}
	ck_assert_uint_eq(live_id(e.vm, a)->addr, 0x100);
	/* A hit of the breakpoint at 0x200 (slot 2) is that breakpoint's. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][2].value, 0x200);
	x86_db(0, 0x200, 1u << 2);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_uint_eq(ev.addr, 0x200);
	c = e.vm->next_id;
	/* A failed insert after the wrap takes none either. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x2000, 8), -ENOSPC);
	ck_assert_uint_eq(e.vm->next_id, c);
	env_free(&e);
}
END_TEST

/* ---- prepare: ioctls only when something changed ---- */

START_TEST(test_prepare_generation)
{
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(NULL), -EINVAL);
	/* First prepare: KVM's state is unknown, apply once. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].set_calls, 1);
	ck_assert_uint_eq(fh.v[0].ctl, 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].set_calls, 1);

	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].set_calls, 2);
	ck_assert_uint_eq(fh.v[0].ctl, KVMDBG_CTL_ENABLE | KVMDBG_CTL_HW);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][0].value, 0x100);

	/* Both vCPUs pick up the VM-wide change once each. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	ck_assert_int_eq(fh.v[1].set_calls, 1);
	ck_assert_uint_eq(fh.v[1].hw.slot[0][0].value, 0x100);

	/* A failing ioctl: error returned, retried next time. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x200, 1), 0);
	fh_fault_arm_site(FH_SET_GUEST_DEBUG, 1, EINTR);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), -EINTR);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].set_calls, 3);
	ck_assert_int_eq(enabled_slots(&fh.v[0], 0), 2);

	/* Stepping on and off. */
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl, KVMDBG_CTL_ENABLE | KVMDBG_CTL_HW | KVMDBG_CTL_STEP |
					     KVMDBG_CTL_BLOCKIRQ);
	ck_assert_int_eq(enabled_slots(&fh.v[0], 0), 2); /* stepping keeps the breakpoints */
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 0), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl, KVMDBG_CTL_ENABLE | KVMDBG_CTL_HW);
	ck_assert_int_eq(fh.v[0].set_calls, 5);
	/* Insert then remove before a prepare: same state, no ioctl. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x300, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x300, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].set_calls, 5);
	env_free(&e);
}
END_TEST

/* ---- x86 exits and the step-over ---- */

START_TEST(test_x86_hw_break_stepover)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x180, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);

	x86_db(0, 0x180, 1u << 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(ev.type, KVMDBG_BREAK_HW);
	ck_assert_uint_eq(ev.pc, 0x180);
	ck_assert_uint_eq(ev.addr, 0x180);
	ck_assert_uint_eq(ev.hits, 1u << 1);

	/* Resume: slot 1 disarmed, one step with interrupts blocked. */
	ck_assert_int_eq(kvmdbg_vcpu_is_stepping(e.v[0]), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(kvmdbg_vcpu_is_stepping(e.v[0]), 1);
	ck_assert_int_eq(kvmdbg_vcpu_is_stepping(NULL), -EINVAL);
	ck_assert_uint_eq(fh.v[0].ctl & (KVMDBG_CTL_STEP | KVMDBG_CTL_BLOCKIRQ),
			  KVMDBG_CTL_STEP | KVMDBG_CTL_BLOCKIRQ);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][1].ctrl, 0);
	ck_assert_uint_ne(fh.v[0].hw.slot[0][0].ctrl, 0);
	ck_assert_int_eq(fh.v[0].rf_calls, 0);

	x86_db(0, 0x183, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(fh.v[0].inject_calls, 0);

	/* Re-armed, not stepping. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(kvmdbg_vcpu_is_stepping(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl, KVMDBG_CTL_ENABLE | KVMDBG_CTL_HW);
	ck_assert_int_eq(enabled_slots(&fh.v[0], 0), 2);
	env_free(&e);
}
END_TEST

START_TEST(test_x86_rf_resume)
{
	struct kvmdbg_event ev;
	struct env e;
	int calls;

	env_new(&e, KVMDBG_ARCH_X86_64, KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_RF_RESUME);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	calls = fh.v[0].set_calls;
	x86_db(0, 0x100, 1u << 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].rf_calls, 1);
	ck_assert_int_eq(fh.v[0].set_calls, calls); /* no step, no state change */

	/* Asked to step at the breakpoint: RF is not enough, and the step is
	 * the user's. */
	x86_db(0, 0x100, 1u << 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].rf_calls, 1);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][0].ctrl, 0);
	x86_db(0, 0x102, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
	ck_assert_uint_eq(ev.pc, 0x102);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_ne(fh.v[0].hw.slot[0][0].ctrl, 0);
	env_free(&e);
}
END_TEST

/* resume_fast takes the vCPU's copy of the hardware points as current while
 * the generation is the one its compose applied (every change of the points
 * bumps it): an execution breakpoint inserted at the stop's PC between the
 * stop and the resume is passed with RF, one removed there is not. */
START_TEST(test_x86_rf_resume_points_changed_at_stop)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_RF_RESUME);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x3000, 1), 0); /* slot 0 */
	/* One elsewhere: the copy's execution breakpoints are looked at. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x500, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);

	/* Watchpoint stop at 0x180, nothing armed there: no RF. */
	x86_db(0, 0x180, 1u << 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_WATCH);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].rf_calls, 0);

	/* Again, and an execution breakpoint at 0x180 before the resume: the
	 * resume steps past it with RF, as from any stop at its address. */
	x86_db(0, 0x180, 1u << 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_WATCH);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x180, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].rf_calls, 1);

	/* Its hit, and it removed before the resume: nothing to pass. */
	x86_db(0, 0x180, 1u << 2);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_uint_eq(ev.addr, 0x180);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x180, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].rf_calls, 1);
	ck_assert_int_eq(kvmdbg_vcpu_is_stepping(e.v[0]), 0);
	env_free(&e);
}
END_TEST

/* A stop at the same place again takes the filter's earlier "no software
 * breakpoint here" only while the generation is unchanged
 * (kvmdbg_cover_sync): one inserted there since must be stepped over,
 * not passed with RF. */
START_TEST(test_x86_rf_resume_sw_inserted_at_hit)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_RF_RESUME);
	/* One elsewhere: the table has a filter to ask. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x2000, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	for (int i = 1; i <= 2; i++) {
		x86_db(0, 0x100, 1u << 0);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert_int_eq(fh.v[0].rf_calls, i);
	}
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x100, 1u << 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].rf_calls, 2);
	ck_assert_int_eq(kvmdbg_vcpu_is_stepping(e.v[0]), 1);
	env_free(&e);
}
END_TEST

START_TEST(test_x86_step_onto_breakpoint)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x104, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	/* Step lands on the breakpoint's address: a step stop. */
	x86_db(0, 0x104, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
	/* The next step executes the instruction at the breakpoint: the library
	 * disarms it for that step so the user moves exactly one instruction. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][0].ctrl, 0);
	x86_db(0, 0x106, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
	ck_assert_uint_eq(ev.pc, 0x106);
	/* Breakpoint and step bits together: both reported as one break. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_ne(fh.v[0].hw.slot[0][0].ctrl, 0);
	x86_db(0, 0x104, DR6_BS | 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(ev.stepped, 1);
	env_free(&e);
}
END_TEST

START_TEST(test_x86_stale_and_removed)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	/* Removed before this vCPU prepared again: never reported as a hit. */
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	x86_db(0, 0x100, 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(fh.v[0].inject_calls, 0);
	/* ...even when another point took the same slot number meanwhile. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x200, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x200, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x300, 1), 0);
	x86_db(1, 0x200, 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[1], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);

	/* Stopped on a breakpoint that is then removed: no step-over needed. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x300, 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x300, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl, 0);

	/* Not a debug exit. */
	runs[0].exit_reason = KVM_EXIT_IO;
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), -EINVAL);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(NULL, &ev), -EINVAL);
	env_free(&e);
}
END_TEST

/* A #DB with dr6_bits that is the guest's: reported as KVMDBG_STOP_GUEST,
 * and the next prepare gives the guest guest_dr6. */
static void expect_guest_db(struct env *e, int cpu, uint64_t pc, uint64_t dr6_bits,
			    uint64_t guest_dr6)
{
	struct kvmdbg_event ev;

	x86_db(cpu, pc, dr6_bits);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e->v[cpu], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e->v[cpu]), 0);
	ck_assert_uint_eq(fh.v[cpu].injected.dr6, guest_dr6);
}

START_TEST(test_x86_guest_reinjection)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	/* The guest single-steps itself (TF) while the host is not stepping. */
	x86_db(0, 0x444, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 1);
	ck_assert_uint_eq(fh.v[0].injected.exception, 1);
	ck_assert_uint_eq(fh.v[0].injected.dr6, DR6_BS);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_INJECT_DB, KVMDBG_CTL_INJECT_DB);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_HW, KVMDBG_CTL_HW);
	/* One-shot: the next prepare makes no call. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 1);

	/* A B bit of a slot we do not use (slot 2) while ours run: KVM ran our
	 * registers, not the guest's, so nothing shows it is the guest's,
	 * even with the guest's own DR2 enabled at that address. */
	fh.guest.dr7 = 0x400 | 3u << 4; /* L2 G2, execution */
	fh.guest.value[KVMDBG_POOL_BP][2] = 0x555;
	x86_db(0, 0x555, 1u << 2);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 1);

	/* Ours with a stale B bit: reported, nothing for the guest. */
	x86_db(0, 0x100, 1u << 0 | 1u << 3);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 1);
	env_free(&e);

	/* A host proven to keep the guest's execution breakpoints live beside
	 * ours: its enabled slot at the PC is the guest's, under its number. */
	env_new(&e, KVMDBG_ARCH_X86_64, KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_GUEST_BP_LIVE);
	fh.guest.dr7 = 0x400 | 3u << 4;
	fh.guest.value[KVMDBG_POOL_BP][2] = 0x555;
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	expect_guest_db(&e, 0, 0x555, 1u << 2, 1u << 2);
	/* ...but not at another PC: a stale bit of the same slot. */
	x86_db(0, 0x556, 1u << 2);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	/* Ours and the guest's at once: reported, and re-injected on resume. */
	fh.guest.value[KVMDBG_POOL_BP][2] = 0x100;
	x86_db(0, 0x100, 1u << 0 | 1u << 2);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 2);
	ck_assert_uint_eq(fh.v[0].injected.dr6, 1u << 2);
	env_free(&e);

	/* A host proven not to keep the guest's breakpoints live: B bits of
	 * slots we did not enable are spurious, not the guest's. */
	env_new(&e, KVMDBG_ARCH_X86_64, KVMDBG_FEAT_VERIFIED);
	fh.guest.dr7 = 0x400 | 3u << 4;
	fh.guest.value[KVMDBG_POOL_BP][2] = 0x555;
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x555, 1u << 2);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	env_free(&e);
}
END_TEST

/*
 * Issue 12's headline, as the SVM bed gave it: a hardware breakpoint
 * removed, then stepping with features left 0. The CPU keeps reporting B0
 * of the slot no longer enabled (DR6 0xffff4ff1 at 0x1003); the guest never
 * programmed its debug registers, so it never gets a #DB.
 */
START_TEST(test_x86_stale_b_bits_not_injected)
{
	static const uint64_t steps[] = {0x1004, 0x1002, 0x1003, 0x1004};
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x1003, 1), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		if (i) {
			/* The step past the breakpoint (no RF with features 0). */
			x86_db(0, 0x1004, DR6_BS);
			ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
			ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
			ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		}
		x86_db(0, 0x1003, 1u << 0);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	}
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x1003, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 1), 0);
	for (unsigned int i = 0; i < 4; i++) {
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert_uint_eq(fh.v[0].ctl & (KVMDBG_CTL_INJECT_DB | KVMDBG_CTL_HW), 0);
		/* Stale B0 with the step, at 0x1003 and elsewhere. */
		x86_db(0, steps[i], DR6_BS | (i == 2 || i == 3 ? 1u : 0u));
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
		ck_assert_uint_eq(ev.pc, steps[i]);
	}
	/* Stale B bits alone, with nothing of ours running: nothing at all. */
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 0), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x200, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x1003, 0xf);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_INJECT_DB, 0);

	/* The same exit once the guest enabled its own DR0 there (KVM ran the
	 * guest's registers: we applied no slot): the guest's, as B0. */
	fh.guest.dr7 = 0x400 | 2u; /* G0, execution */
	fh.guest.value[KVMDBG_POOL_BP][0] = 0x1003;
	x86_db(0, 0x1003, 1u << 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 1);
	ck_assert_uint_eq(fh.v[0].injected.dr6, 1u << 0);
	/* A guest write watchpoint in DR1: its B bit is the guest's whatever
	 * the PC; DR0's B bit at another PC is not. */
	fh.guest.dr7 = 0x400 | 2u | 2u << 2 | 0xdu << 20; /* DR1: write, 4 bytes */
	fh.guest.value[KVMDBG_POOL_BP][1] = 0x3000;
	expect_guest_db(&e, 0, 0x1010, 1u << 0 | 1u << 1, 1u << 1);
	env_free(&e);
}
END_TEST

/* x86 causes only the guest can raise: ICEBP, BLD, BT, BD under its GD. */
START_TEST(test_x86_guest_only_causes)
{
	struct kvmdbg_event ev;
	struct env e;

	for (int vmx = 0; vmx < 2; vmx++) {
		env_new(&e, KVMDBG_ARCH_X86_64, 0);
		fh.icebp_on_insn = vmx;
		ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		/* ICEBP at 0x300: VMX stops on it, SVM after it. */
		fh.mem[0x300] = 0xf1;
		x86_db(0, vmx ? 0x300 : 0x301, 0);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
		ck_assert_uint_eq(fh.v[0].pc, 0x301);
		ck_assert_int_eq(fh.v[0].advance_calls, vmx);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert_int_eq(fh.v[0].inject_calls, 1);
		ck_assert_uint_eq(fh.v[0].injected.exception, 1);
		ck_assert_uint_eq(fh.v[0].injected.dr6, 0);
		/* A causeless #DB where no ICEBP is: nothing, the PC stays. */
		fh.mem[0x300] = 0x90;
		x86_db(0, vmx ? 0x300 : 0x301, 0);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
		ck_assert_uint_eq(fh.v[0].pc, vmx ? 0x300 : 0x301);
		/* VMX: if the PC cannot move, nothing changes and the error
		 * comes back; the same exit classifies again. */
		if (vmx) {
			fh.mem[0x300] = 0xf1;
			fh_fault_arm_site(FH_ADVANCE_PC, 1, EIO);
			ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), -EIO);
			ck_assert_uint_eq(fh.v[0].pc, 0x300);
			ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
			ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
			ck_assert_uint_eq(fh.v[0].pc, 0x301);
			ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		}
		env_free(&e);
	}

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	/* Bus lock: raw DR6 bit 11 clear. */
	fh.v[0].exit = (struct kvmdbg_exit){
		.exception = 1, .pc = 0x400, .dr6 = 0xffff0ff0ull & ~(1ull << 11), .dr7 = 0x400};
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].injected.dr6, 1ull << 11);
	/* Task switch with T: BT. */
	expect_guest_db(&e, 0, 0x400, 1ull << 15, 1ull << 15);
	/* BD: only under the guest's own DR7.GD. */
	x86_db(0, 0x400, 1ull << 13);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	fh.guest.dr7 = 0x400 | 1ull << 13;
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].injected.dr6, 1ull << 13);
	ck_assert_int_eq(fh.v[0].inject_calls, 3);
	env_free(&e);
}
END_TEST

START_TEST(test_x86_watch_trap)
{
	struct kvmdbg_event ev;
	struct env e;
	int calls;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x1003, 6), 0); /* 3 slots */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	calls = fh.v[0].set_calls;
	x86_db(0, 0x123, 1u << 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_WATCH);
	ck_assert_int_eq(ev.type, KVMDBG_WATCH_WRITE);
	ck_assert_uint_eq(ev.addr, 0x1003);
	ck_assert_uint_eq(ev.len, 6);
	ck_assert_uint_eq(ev.data_addr, 0x1004);
	ck_assert_int_eq(ev.write, 1);
	/* Trap-like: the access happened, nothing to step past. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].set_calls, calls);
	env_free(&e);
}
END_TEST

START_TEST(test_x86_sw_break)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl, KVMDBG_CTL_ENABLE | KVMDBG_CTL_SW_BP);
	x86_bp(0, 0x800);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(ev.type, KVMDBG_BREAK_SW);
	ck_assert_uint_eq(ev.addr, 0x800);

	/* Resume: original byte back for one blocked-interrupt step. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.mem[0x800], fh.orig[0x800]);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	/* The other vCPU stopped there too and steps over it at the same time. */
	x86_bp(1, 0x800);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[1], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	x86_db(0, 0x802, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_uint_eq(fh.mem[0x800], fh.orig[0x800]); /* vCPU 1 still stepping */
	x86_db(1, 0x802, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[1], &ev), 0);
	ck_assert_uint_eq(fh.mem[0x800], 0xcc);

	/* The guest's own int3 elsewhere: re-injected as #BP. */
	fh.mem[0x900] = 0xcc;
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_bp(0, 0x900);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].injected.exception, 3);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_INJECT_BP, KVMDBG_CTL_INJECT_BP);
	fh.mem[0x900] = fh.orig[0x900];

	/* Hit, then removed before the exit was handled: run again, no
	 * injection (the guest's byte is back). */
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, 0x800, 1), 0);
	x86_bp(0, 0x800);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	env_free(&e);
	ck_assert_int_eq(memcmp(fh.mem, fh.orig, MEM_SIZE), 0);
}
END_TEST

START_TEST(test_sw_removed_while_lifted)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_bp(0, 0x800);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0); /* lifted */
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, 0x800, 1), 0);
	x86_db(0, 0x802, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(memcmp(fh.mem, fh.orig, MEM_SIZE), 0); /* not re-inserted */
	/* Freed mid step-over: the guest's bytes are restored too. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x810, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_bp(0, 0x810);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	env_free(&e);
	ck_assert_int_eq(memcmp(fh.mem, fh.orig, MEM_SIZE), 0);
}
END_TEST

START_TEST(test_regs_changed_stepover)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x100, 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	/* The debugger moved the PC elsewhere: nothing to step past there. */
	fh.v[0].pc = 0x400;
	ck_assert_int_eq(kvmdbg_vcpu_regs_changed(e.v[0]), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	ck_assert_uint_ne(fh.v[0].hw.slot[0][0].ctrl, 0);
	ck_assert_int_eq(kvmdbg_vcpu_regs_changed(NULL), -EINVAL);
	env_free(&e);
}
END_TEST


START_TEST(test_x86_rep_string_stepover)
{
	struct kvmdbg_event ev;
	struct env e;
	int calls;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	fh.mem[0x100] = 0xf3; /* rep movsb */
	fh.mem[0x101] = 0xa4;
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x100, 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	calls = fh.v[0].set_calls;
	/* Each iteration traps with RIP unchanged: keep stepping, disarmed,
	 * without another ioctl and without reporting the breakpoint again. */
	for (int i = 0; i < 5; i++) {
		x86_db(0, 0x100, DR6_BS);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert_int_eq(fh.v[0].set_calls, calls);
		ck_assert_uint_eq(fh.v[0].hw.slot[0][0].ctrl, 0);
	}
	x86_db(0, 0x102, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_ne(fh.v[0].hw.slot[0][0].ctrl, 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);

	/* A LOCKed instruction that an emulator did not execute (lost race). */
	fh.mem[0x180] = 0xf0; /* lock incl (%rax) */
	fh.mem[0x181] = 0xff;
	fh.mem[0x182] = 0x00;
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x180, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x180, 1u << 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x180, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(kvmdbg_vcpu_is_stepping(e.v[0]), 1);
	x86_db(0, 0x183, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x180, 1), 0);

	/* A jump to itself completes every step: the breakpoint fires again. */
	fh.mem[0x200] = 0xeb; /* jmp . */
	fh.mem[0x201] = 0xfe;
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x200, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x200, 1u << 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x200, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_ne(fh.v[0].hw.slot[0][1].ctrl, 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	env_free(&e);
}
END_TEST

START_TEST(test_x86_data_addr_of_reported_point)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x1000, 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_ACCESS, 0x2001, 3), 0); /* 2 slots */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_WATCH_WRITE, 0x1000, 4), 0);
	/* Slot 0 (removed point) and slot 2 (second piece of the live one). */
	x86_db(0, 0x50, 1u << 0 | 1u << 2);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_WATCH);
	ck_assert_int_eq(ev.type, KVMDBG_WATCH_ACCESS);
	ck_assert_uint_eq(ev.addr, 0x2001);
	ck_assert_uint_eq(ev.data_addr, 0x2002);
	ck_assert_uint_eq(ev.hits, 1u << 2);
	ck_assert_int_eq(ev.write, -1);
	env_free(&e);
}
END_TEST

/* ---- arm64 flows through the same generic code ---- */


static void arm64_exit(int cpu, uint64_t esr, uint64_t pc, uint64_t far)
{
	fh.v[cpu].exit = (struct kvmdbg_exit){.esr = esr, .pc = pc, .far = far};
	fh.v[cpu].pc = pc;
}

START_TEST(test_arm64_break_watch_stepover)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x1002, 4), -EINVAL);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x1000, 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_READ, 0x3004, 2), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_BP), 1);
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_WP), 1);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_BLOCKIRQ, 0);

	arm64_exit(0, ESR_FOR_EC(0x30), 0x1000, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_uint_eq(ev.hits, 1u << 0);
	/* Resume: breakpoint disarmed, interrupts masked, one step. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].mask_calls, 1);
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_BP), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	arm64_exit(0, ESR_FOR_EC(0x32), 0x1004, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(fh.v[0].restore_calls, 1);
	ck_assert_uint_eq(fh.v[0].daif, 0x3c0); /* what mask_irqs saved */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_BP), 1);

	/* A load that touches the watched bytes: FAR anywhere in the access,
	 * reported as is; the access has not happened, so resuming steps past
	 * it with the watchpoint disarmed. */
	arm64_exit(0, ESR_FOR_EC(0x34), 0x1010, 0x3000);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_WATCH);
	ck_assert_int_eq(ev.type, KVMDBG_WATCH_READ);
	ck_assert_uint_eq(ev.addr, 0x3004);
	ck_assert_uint_eq(ev.data_addr, 0x3000);
	ck_assert_int_eq(ev.write, 0);
	ck_assert_uint_eq(ev.hits, 1u << 16);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_WP), 0);
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_BP), 1);
	arm64_exit(0, ESR_FOR_EC(0x32), 0x1014, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_WP), 1);
	ck_assert_int_eq(fh.v[0].mask_calls, 2);
	ck_assert_int_eq(fh.v[0].restore_calls, 2);
	ck_assert_uint_eq(fh.v[0].daif, 0x3c0);
	env_free(&e);
}
END_TEST

/*
 * arm64 ioctls per stop and its step-over (issue 17), as the arm64 glue
 * makes them (the fake's arm64_ioctls): a hardware breakpoint, watchpoint
 * or BRK hit with the guest's A, I and F masked (as bench-kvm's guest has
 * them), from its handle_exit to the prepare after the step, no more than
 * the hand-written loop of bench/bench-kvm-arm64.c makes: the stop's PC,
 * PSTATE for the interrupt mask, the step's KVM_SET_GUEST_DEBUG and the
 * one re-arming. The mask gets the stop's PC (no read of its own), and the
 * step's exit, never reported, is left without its PC.
 */
#define ARM64_RAW_IOCTLS_PER_HIT 4

static void arm64_hit_cycle(struct env *e, uint64_t esr, uint64_t pc, uint64_t far,
			    enum kvmdbg_stop kind)
{
	struct kvmdbg_event ev;

	for (int i = 0; i < 3; i++) {
		unsigned int unread = fh.v[0].pc_unread_exits;

		fh.v[0].arm64_ioctls = 0;
		arm64_exit(0, esr, pc, far);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e->v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, kind);
		ck_assert_uint_eq(ev.pc, pc);
		ck_assert_uint_eq(fh.v[0].pc_unread_exits, unread);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e->v[0]), 0);
		ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
		ck_assert_uint_eq(fh.v[0].mask_pc, pc);
		arm64_exit(0, ESR_FOR_EC(0x32), pc + 4, 0);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e->v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
		ck_assert_uint_eq(fh.v[0].pc_unread_exits, unread + 1);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e->v[0]), 0);
		ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
		ck_assert_uint_le(fh.v[0].arm64_ioctls, ARM64_RAW_IOCTLS_PER_HIT);
		ck_assert_uint_eq(fh.v[0].daif, 0x3c0);
	}
	ck_assert_int_eq(fh.v[0].mask_calls, 3);
	ck_assert_int_eq(fh.v[0].restore_calls, 3);
}

START_TEST(test_arm64_ioctls_per_hit)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x1000, 4), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	arm64_hit_cycle(&e, ESR_FOR_EC(0x30), 0x1000, 0, KVMDBG_STOP_BREAK);
	env_free(&e);

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x3000, 8), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	arm64_hit_cycle(&e, ESR_FOR_EC(0x34) | ESR_ISS_WNR, 0x1010, 0x3000, KVMDBG_STOP_WATCH);
	env_free(&e);

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, 4), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	arm64_hit_cycle(&e, ESR_FOR_EC(0x3c) | 0x4b44, 0x800, 0, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, kvmdbg_arm64_ops.sw_insn, 4), 0);
	env_free(&e);

	/* The user's step from a stop is reported: its PC is read. */
	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x1000, 4), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	arm64_exit(0, ESR_FOR_EC(0x30), 0x1000, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], true), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	arm64_exit(0, ESR_FOR_EC(0x32), 0x1004, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
	ck_assert_uint_eq(ev.pc, 0x1004);
	ck_assert_uint_eq(fh.v[0].pc_unread_exits, 0);
	env_free(&e);
}
END_TEST

/*
 * arm64 has no KVM_GUESTDBG_BLOCKIRQ: the user's single-step runs with the
 * guest's A, I and F masked by the library (issue 15: unmasked, a step with
 * the timer pending runs its handler, which returns to the stop), given
 * back when the step's exit comes, before the stop is reported. The fake's
 * daif is the guest's PSTATE.DAIF.
 */
#define GUEST_DAIF_OPEN 0x000 /* the guest's: nothing masked */

/* The user steps vCPU 0 to a reported step stop at pc (nothing armed
 * there), then from it: prepare masks, returns with KVM stepping. The
 * counts of mask and restore calls start there. */
static void arm64_user_step_from(struct env *e, uint64_t pc, uint64_t guest_daif)
{
	struct kvmdbg_event ev;

	fh.v[0].daif = guest_daif;
	fh.v[0].pc = pc - 4;
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e->v[0], 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e->v[0]), 0);
	arm64_exit(0, ESR_FOR_EC(0x32), pc, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e->v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
	ck_assert_uint_eq(fh.v[0].daif, guest_daif);
	fh.v[0].mask_calls = fh.v[0].restore_calls = 0;
	fh.site_calls[FH_GET_PC] = 0;
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e->v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
}

/* The test's guest DAIF is not the fake's reset value: env_free checks that
 * every mask was given back, against 0x3c0. */
static void arm64_daif_done(struct env *e, uint64_t guest_daif)
{
	ck_assert_uint_eq(fh.v[0].masked, 0);
	ck_assert_uint_eq(fh.v[0].daif, guest_daif);
	fh.v[0].daif = 0x3c0;
	env_free(e);
}

START_TEST(test_arm64_user_step_masks)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	/* Interrupts open, the user's step from a stop at 0x1000: masked at
	 * its PC, the step's own (no read of it). */
	arm64_user_step_from(&e, 0x1000, GUEST_DAIF_OPEN);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_BLOCKIRQ, 0);
	ck_assert_int_eq(fh.v[0].mask_calls, 1);
	ck_assert_uint_eq(fh.v[0].mask_pc, 0x1000);
	ck_assert_uint_eq(fh.v[0].daif, PS_AIF);
	ck_assert_uint_eq(fh.site_calls[FH_GET_PC], 0);
	/* Nothing ran: an idle prepare keeps it, asks nothing. */
	fh.calls = 0;
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.calls, 0);
	/* The step's exit: the guest's DAIF back before the stop is
	 * reported, where the VMM reads PSTATE (gdb's cpsr). */
	arm64_exit(0, ESR_FOR_EC(0x32), 0x1004, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
	ck_assert_int_eq(fh.v[0].restore_calls, 1);
	ck_assert_uint_eq(fh.v[0].daif, GUEST_DAIF_OPEN);
	/* Each step of the user's: masked again at its own PC. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].mask_calls, 2);
	ck_assert_uint_eq(fh.v[0].mask_pc, 0x1004);
	ck_assert_uint_eq(fh.v[0].daif, PS_AIF);
	arm64_exit(0, ESR_FOR_EC(0x32), 0x1008, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_uint_eq(fh.v[0].daif, GUEST_DAIF_OPEN);
	ck_assert_int_eq(fh.v[0].restore_calls, 2);
	/* The step off: the run that follows has nothing masked. */
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 0), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	ck_assert_int_eq(fh.v[0].mask_calls, 2);
	arm64_daif_done(&e, GUEST_DAIF_OPEN);
}
END_TEST

/* The stepped instruction changes DAIF itself (MSR DAIFClr #1 with D, A, F
 * masked): the stop shows its effect, the other bits the guest's. */
START_TEST(test_arm64_user_step_daifclr)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	arm64_user_step_from(&e, 0x1000, PS_D | PS_A | PS_F);
	ck_assert_uint_eq(fh.v[0].daif, PS_DAIF);
	fh.v[0].daif &= ~PS_F; /* the instruction: MSR DAIFClr, #1 */
	arm64_exit(0, ESR_FOR_EC(0x32), 0x1004, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
	ck_assert_uint_eq(fh.v[0].daif, PS_D | PS_A);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 0), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	arm64_daif_done(&e, PS_D | PS_A);
}
END_TEST

/* The instruction stepped sets bits the mask hides: MSR DAIFSet, #2
 * (local_irq_disable) with the guest's I open leaves I set at the stop; MSR
 * DAIF, X0 (local_irq_restore) leaves what it wrote, whatever the guest had.
 * The library reads the instruction at the PC for the mask (memory
 * callbacks); under a software breakpoint of ours, the guest's own. */
static void put_insn(uint64_t at, uint32_t insn)
{
	memcpy(fh.mem + at, &insn, sizeof(insn));
	memcpy(fh.orig + at, &insn, sizeof(insn));
}

START_TEST(test_arm64_user_step_daifset)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	put_insn(0x1000, 0xd50342df); /* msr daifset, #2 */
	put_insn(0x1004, 0xd51b4220); /* msr daif, x0 */
	arm64_user_step_from(&e, 0x1000, GUEST_DAIF_OPEN);
	ck_assert(fh.v[0].mask_insn_known);
	ck_assert_uint_eq(fh.v[0].mask_insn, 0xd50342df);
	arm64_exit(0, ESR_FOR_EC(0x32), 0x1004, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
	ck_assert_uint_eq(fh.v[0].daif, PS_I);
	/* msr daif, x0 with x0 = A and F (the step writes them over the
	 * mask): the stop shows them, not the guest's I. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].mask_insn, 0xd51b4220);
	fh.v[0].daif = PS_A | PS_F;
	arm64_exit(0, ESR_FOR_EC(0x32), 0x1008, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_uint_eq(fh.v[0].daif, PS_A | PS_F);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 0), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	arm64_daif_done(&e, PS_A | PS_F);

	/* A continue from our software breakpoint on the MSR DAIFSet: the
	 * step-over's mask gets the guest's instruction, not our BRK. */
	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	put_insn(0x800, 0xd50342df);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, 4), 0);
	fh.v[0].daif = GUEST_DAIF_OPEN;
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	arm64_exit(0, ESR_FOR_EC(0x3c) | 0x4b44, 0x800, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert(fh.v[0].mask_insn_known);
	ck_assert_uint_eq(fh.v[0].mask_insn, 0xd50342df);
	arm64_exit(0, ESR_FOR_EC(0x32), 0x804, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_uint_eq(fh.v[0].daif, PS_I);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	arm64_daif_done(&e, PS_I);

	/* A hardware breakpoint on it, continued (resume_step's mask) and
	 * stepped (the general step-over's): the instruction read from
	 * memory for the mask. */
	for (int step = 0; step < 2; step++) {
		env_new(&e, KVMDBG_ARCH_ARM64, 0);
		put_insn(0x800, 0xd50342df);
		ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x800, 4), 0);
		fh.v[0].daif = GUEST_DAIF_OPEN;
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		arm64_exit(0, ESR_FOR_EC(0x30), 0x800, 0);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
		ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], step), 0);
		fh.v[0].mask_insn_known = false;
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert(fh.v[0].mask_insn_known);
		ck_assert_uint_eq(fh.v[0].mask_insn, 0xd50342df);
		arm64_exit(0, ESR_FOR_EC(0x32), 0x804, 0);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, step ? KVMDBG_STOP_STEP : KVMDBG_STOP_NONE);
		ck_assert_uint_eq(fh.v[0].daif, PS_I);
		ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 0), 0);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		arm64_daif_done(&e, PS_I);
	}
}
END_TEST

/* The step's KVM_RUN returns an exit that is not a debug exit (MMIO: the
 * instruction has not completed): the mask stays until the step's own
 * debug exit, whatever prepare runs in between. The VMM moving the PC
 * meanwhile masks again at the new PC. */
START_TEST(test_arm64_user_step_mmio)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	arm64_user_step_from(&e, 0x1000, GUEST_DAIF_OPEN);
	for (int i = 0; i < 3; i++) {
		/* KVM_RUN: KVM_EXIT_MMIO, handled by the VMM, KVM_RUN again;
		 * meanwhile a breakpoint elsewhere comes (the whole prepare
		 * runs, not its no-change path). */
		if (i == 1)
			ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x3000, 4), 0);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_BP), i > 0);
		ck_assert_uint_eq(fh.v[0].daif, PS_AIF);
		ck_assert_int_eq(fh.v[0].mask_calls, 1);
		ck_assert_int_eq(fh.v[0].restore_calls, 0);
	}
	fh.v[0].pc = 0x2000;
	ck_assert_int_eq(kvmdbg_vcpu_regs_changed(e.v[0]), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].restore_calls, 1);
	ck_assert_int_eq(fh.v[0].mask_calls, 2);
	ck_assert_uint_eq(fh.v[0].mask_pc, 0x2000);
	ck_assert_uint_eq(fh.v[0].masked, 1);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].mask_calls, 2);
	arm64_exit(0, ESR_FOR_EC(0x32), 0x2004, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
	ck_assert_uint_eq(fh.v[0].daif, GUEST_DAIF_OPEN);
	ck_assert_int_eq(fh.v[0].restore_calls, 2);
	/* After an MMIO exit the user turns the step off (a kick, gdb's
	 * Ctrl-C): the run that follows has the guest's DAIF. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].daif, PS_AIF);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 0), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	ck_assert_int_eq(fh.v[0].restore_calls, 3);
	arm64_daif_done(&e, GUEST_DAIF_OPEN);
}
END_TEST

/* A breakpoint hit during the user's step is reported with the guest's
 * DAIF; the step from it is a step-over and the user's step at once: one
 * mask, one give-back. A step first turned on where the vCPU never stopped
 * reads its PC for the mask. */
START_TEST(test_arm64_user_step_with_stepover)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x1008, 4), 0);
	fh.v[0].daif = GUEST_DAIF_OPEN;
	fh.v[0].pc = 0x1004;
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.site_calls[FH_GET_PC], 1);
	ck_assert_uint_eq(fh.v[0].mask_pc, 0x1004);
	ck_assert_uint_eq(fh.v[0].daif, PS_AIF);
	arm64_exit(0, ESR_FOR_EC(0x30), 0x1008, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_uint_eq(fh.v[0].daif, GUEST_DAIF_OPEN);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(e.v[0]->so.state, KVMDBG_SO_STEPPING);
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_BP), 0);
	ck_assert_uint_eq(fh.v[0].masked, 1);
	ck_assert_int_eq(fh.v[0].mask_calls, 2);
	ck_assert_uint_eq(fh.v[0].mask_pc, 0x1008);
	arm64_exit(0, ESR_FOR_EC(0x32), 0x100c, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
	ck_assert_uint_eq(fh.v[0].daif, GUEST_DAIF_OPEN);
	ck_assert_int_eq(fh.v[0].restore_calls, 2);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 0), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_BP), 1);
	arm64_daif_done(&e, GUEST_DAIF_OPEN);
}
END_TEST

/* Failures: nothing changed, the retry works. The mask (prepare fails),
 * KVM_SET_GUEST_DEBUG after it (the mask given back), the give-back at the
 * step's exit (the exit is not handled; handled again, it is). */
START_TEST(test_arm64_user_step_failures)
{
	struct kvmdbg_event ev;
	struct env e;
	unsigned int sets;

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	arm64_user_step_from(&e, 0x1000, GUEST_DAIF_OPEN);
	arm64_exit(0, ESR_FOR_EC(0x32), 0x1000, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
	/* A breakpoint inserted meanwhile: the next prepare applies it. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x3000, 4), 0);
	sets = fh.v[0].set_calls;
	fh_fault_arm_site(FH_MASK_IRQS, 1, EIO);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), -EIO);
	ck_assert_uint_eq(fh.v[0].daif, GUEST_DAIF_OPEN);
	ck_assert_uint_eq(fh.v[0].set_calls, sets);
	ck_assert(!e.v[0]->so.irq_masked);
	fh_fault_arm_site(FH_SET_GUEST_DEBUG, 1, EIO);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), -EIO);
	ck_assert_uint_eq(fh.v[0].daif, GUEST_DAIF_OPEN);
	ck_assert_uint_eq(fh.v[0].masked, 0);
	ck_assert(!e.v[0]->so.irq_masked);
	ck_assert_int_eq(e.v[0]->so.state, KVMDBG_SO_ARMED);
	fh_fault_arm(0, 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].daif, PS_AIF);
	ck_assert_uint_eq(fh.v[0].mask_pc, 0x1000);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);

	arm64_exit(0, ESR_FOR_EC(0x32), 0x1004, 0);
	fh_fault_arm_site(FH_RESTORE_IRQS, 1, EIO);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), -EIO);
	ck_assert_uint_eq(fh.v[0].daif, PS_AIF);
	ck_assert(e.v[0]->so.irq_masked);
	fh_fault_arm(0, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
	ck_assert_uint_eq(ev.pc, 0x1004);
	ck_assert_uint_eq(fh.v[0].daif, GUEST_DAIF_OPEN);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 0), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	arm64_daif_done(&e, GUEST_DAIF_OPEN);
}
END_TEST

/* The resume from the user's step stop with nothing else changed masks
 * without a compose (vcpu.c, resume_fast), with breakpoints elsewhere too:
 * a failure of the mask leaves the step armed at the stop, nothing masked,
 * nothing applied, and the retry masks at the stop's PC. */
START_TEST(test_arm64_user_step_resume_fast_mask)
{
	struct kvmdbg_event ev;
	struct env e;
	unsigned int sets;

	for (int elsewhere = 0; elsewhere < 2; elsewhere++) {
		env_new(&e, KVMDBG_ARCH_ARM64, 0);
		if (elsewhere)
			ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x3000, 4), 0);
		arm64_user_step_from(&e, 0x1000, GUEST_DAIF_OPEN);
		ck_assert_int_eq(fh.v[0].mask_calls, 1);
		arm64_exit(0, ESR_FOR_EC(0x32), 0x1004, 0);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
		ck_assert_uint_eq(fh.v[0].daif, GUEST_DAIF_OPEN);
		sets = fh.v[0].set_calls;
		fh.v[0].pc = 0x1004;
		fh_fault_arm_site(FH_MASK_IRQS, 1, EIO);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), -EIO);
		ck_assert(!e.v[0]->so.irq_masked);
		ck_assert_int_eq(e.v[0]->so.state, KVMDBG_SO_ARMED);
		ck_assert_uint_eq(e.v[0]->so.pc, 0x1004);
		ck_assert(atomic_load(&e.v[0]->cover_on));
		ck_assert_uint_eq(fh.v[0].daif, GUEST_DAIF_OPEN);
		ck_assert_uint_eq(fh.v[0].masked, 0);
		fh_fault_arm(0, 0);
		fh.site_calls[FH_GET_PC] = 0;
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert_uint_eq(fh.v[0].set_calls, sets);
		ck_assert_int_eq(e.v[0]->so.state, KVMDBG_SO_NONE);
		ck_assert(!atomic_load(&e.v[0]->cover_on));
		ck_assert(e.v[0]->so.irq_masked);
		ck_assert_int_eq(fh.v[0].mask_calls, 2);
		ck_assert_uint_eq(fh.v[0].mask_pc, 0x1004);
		ck_assert_uint_eq(fh.site_calls[FH_GET_PC], 0);
		ck_assert_uint_eq(fh.v[0].daif, PS_AIF);
		/* Nothing ran: the idle prepare keeps the mask. */
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert_int_eq(fh.v[0].mask_calls, 2);
		arm64_exit(0, ESR_FOR_EC(0x32), 0x1008, 0);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_uint_eq(fh.v[0].daif, GUEST_DAIF_OPEN);
		ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 0), 0);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		arm64_daif_done(&e, GUEST_DAIF_OPEN);
	}
}
END_TEST

/* x86 blocks the interrupts in KVM (BLOCKIRQ): nothing masked by hand, and
 * an arm64 host that had BLOCKIRQ would do the same. */
START_TEST(test_user_step_blockirq_no_mask)
{
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & (KVMDBG_CTL_STEP | KVMDBG_CTL_BLOCKIRQ),
			  KVMDBG_CTL_STEP | KVMDBG_CTL_BLOCKIRQ);
	ck_assert_int_eq(fh.v[0].mask_calls, 0);
	env_free(&e);

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	e.vm->caps.block_irq = 1;
	fh.v[0].daif = GUEST_DAIF_OPEN;
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].mask_calls, 0);
	arm64_daif_done(&e, GUEST_DAIF_OPEN);
}
END_TEST

START_TEST(test_arm64_brk)
{
	struct kvmdbg_event ev;
	struct env e;
	uint8_t brk[4];

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	memcpy(brk, kvmdbg_arm64_ops.sw_insn, 4);
	/* The immediate the arch announces is the one in its instruction. */
	ck_assert_uint_eq(kvmdbg_arm64_ops.sw_imm,
			  (((uint32_t)brk[0] | (uint32_t)brk[1] << 8 | (uint32_t)brk[2] << 16 |
			    (uint32_t)brk[3] << 24) >> 5) & 0xffff);
	ck_assert_uint_eq(kvmdbg_x86_ops.sw_imm, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x802, 4), -EINVAL);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, 4), 0);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, brk, 4), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	arm64_exit(0, ESR_FOR_EC(0x3c) | 0x4b44, 0x800, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(ev.type, KVMDBG_BREAK_SW);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, fh.orig + 0x800, 4), 0);
	arm64_exit(0, ESR_FOR_EC(0x32), 0x804, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, brk, 4), 0);

	/* The guest's own BRK #0x800 (BUG) at one of our addresses is still
	 * the guest's: the immediate tells. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	arm64_exit(0, ESR_FOR_EC(0x3c) | 0x800, 0x800, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 1);
	ck_assert_uint_eq(fh.v[0].injected.esr, ESR_FOR_EC(0x3c) | 0x800);
	ck_assert_uint_eq(fh.v[0].injected.pc, 0x800);
	env_free(&e);
	ck_assert_int_eq(memcmp(fh.mem, fh.orig, MEM_SIZE), 0);
}
END_TEST

/* The arches of the software-breakpoint tests below: one loop-test run each
 * (_i). */
static const enum kvmdbg_arch sw_arches[] = {KVMDBG_ARCH_X86_64, KVMDBG_ARCH_ARM64};

/* vCPU cpu reaches the library's software breakpoint at pc (x86 INT3, arm64
 * BRK with the library's immediate). */
static void sw_hit(bool x86, int cpu, uint64_t pc)
{
	if (x86)
		x86_bp(cpu, pc);
	else
		arm64_exit(cpu, ESR_FOR_EC(0x3c) | kvmdbg_arm64_ops.sw_imm, pc, 0);
}

/* vCPU cpu's single step ends at pc. */
static void step_end(bool x86, int cpu, uint64_t pc)
{
	if (x86)
		x86_db(cpu, pc, DR6_BS);
	else
		arm64_exit(cpu, ESR_FOR_EC(0x32), pc, 0);
}

/* vCPU cpu's step over the instruction at 0x800 ends after it (the fake's
 * x86 pattern has a 2-byte instruction there; A64 ones are 4 bytes). */
static void stepped_over_0x800(bool x86, int cpu)
{
	step_end(x86, cpu, x86 ? 0x802 : 0x804);
}

/*
 * Issue 12 item 3: a software breakpoint removed and inserted again while
 * vCPUs step over it with the guest's bytes back. The new entry must not put
 * the instruction back under a step (the step would hit it and report the
 * same breakpoint twice), and one vCPU's end of step must not put it back
 * while the other still steps: the last one to finish does, exactly once.
 */
START_TEST(test_sw_reinserted_while_lifted)
{
	bool x86 = sw_arches[_i] == KVMDBG_ARCH_X86_64;
	const struct kvmdbg_arch_ops *a = x86 ? &kvmdbg_x86_ops : &kvmdbg_arm64_ops;
	unsigned int len = a->sw_len;
	struct kvmdbg_event ev;
	unsigned long writes;
	struct env e;

	env_new(&e, sw_arches[_i], 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, len), 0);
	/* Both vCPUs stop at it. */
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[i]), 0);
		sw_hit(x86, i, 0x800);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[i], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
		ck_assert_int_eq(ev.type, KVMDBG_BREAK_SW);
	}
	/* vCPU 0 steps over it: the guest's bytes are back. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, fh.orig + 0x800, len), 0);
	/* Removed and inserted again under the step: still the guest's
	 * bytes (else vCPU 0's step runs our instruction again). */
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, 0x800, len), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, len), 0);
	ck_assert_msg(!memcmp(fh.mem + 0x800, fh.orig + 0x800, len),
		      "%s: the breakpoint was written back under a vCPU's step",
		      x86 ? "x86" : "arm64");
	/* vCPU 1 steps over it too. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	ck_assert_uint_eq(fh.v[1].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, fh.orig + 0x800, len), 0);
	/* vCPU 0's step ends: vCPU 1 still steps, nothing written. */
	stepped_over_0x800(x86, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_msg(!memcmp(fh.mem + 0x800, fh.orig + 0x800, len),
		      "%s: one vCPU's end of step wrote the breakpoint back while the "
		      "other steps over it", x86 ? "x86" : "arm64");
	/* The last one: written back, once. */
	writes = fh.site_calls[FH_MEM_WRITE];
	stepped_over_0x800(x86, 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[1], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, a->sw_insn, len), 0);
	ck_assert_uint_eq(fh.site_calls[FH_MEM_WRITE], writes + 1);
	ck_assert_uint_eq(kvmdbg_swtab_find(&e.vm->sw, 0x800)->lifted, 0);
	/* Still one breakpoint, hit once more and stepped over as usual. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	sw_hit(x86, 0, 0x800);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, 0x800, len), 0);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, 0x800, len), -ENOENT);
	env_free(&e);
	ck_assert_int_eq(memcmp(fh.mem, fh.orig, MEM_SIZE), 0);
}
END_TEST

/* The enabled execution slot of f at addr, or -1. */
static int exec_slot_at(const struct kvmdbg_arch_ops *a, const struct fh_vcpu *f, uint64_t addr)
{
	for (int s = 0; s < KVMDBG_MAX_SLOTS; s++) {
		const struct kvmdbg_hwslot *h = &f->hw.slot[KVMDBG_POOL_BP][s];

		if (h->ctrl && h->start == addr &&
		    a->slot_type(KVMDBG_POOL_BP, h->ctrl) == KVMDBG_BREAK_HW)
			return s;
	}
	return -1;
}

/*
 * Issue 12 item 4: while one vCPU steps over a software breakpoint with the
 * guest's bytes back, the other would run them and miss the breakpoint. It
 * catches the address in a hardware slot of its own instead (reported as
 * that software breakpoint, then stepped past like it), from the moment the
 * stop is reported until the step-over ends; where no slot is free, prepare
 * fences it (-EAGAIN) until then.
 */
START_TEST(test_sw_stepover_other_vcpu_caught)
{
	bool x86 = sw_arches[_i] == KVMDBG_ARCH_X86_64;
	const struct kvmdbg_arch_ops *a = x86 ? &kvmdbg_x86_ops : &kvmdbg_arm64_ops;
	unsigned int len = a->sw_len, sets;
	struct kvmdbg_event ev;
	struct env e;
	int s;

	env_new(&e, sw_arches[_i], 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, len), 0);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[i]), 0);
		ck_assert_int_eq(exec_slot_at(a, &fh.v[i], 0x800), -1);
	}
	/* vCPU 0 stops at it: vCPU 1 catches the address in hardware
	 * before vCPU 0 lifts it, and until its step-over ends. */
	sw_hit(x86, 0, 0x800);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	s = exec_slot_at(a, &fh.v[1], 0x800);
	ck_assert_msg(s >= 0, "%s: vCPU 1 runs without catching the breakpoint vCPU 0 "
		      "steps over", x86 ? "x86" : "arm64");
	ck_assert_uint_eq(fh.v[1].ctl & KVMDBG_CTL_HW, KVMDBG_CTL_HW);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, fh.orig + 0x800, len), 0);
	ck_assert_int_eq(exec_slot_at(a, &fh.v[0], 0x800), -1); /* not its own */
	/* vCPU 1 reaches it meanwhile: that breakpoint's stop. */
	if (x86)
		x86_db(1, 0x800, 1ull << s);
	else
		arm64_exit(1, ESR_FOR_EC(0x30), 0x800, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[1], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(ev.type, KVMDBG_BREAK_SW);
	ck_assert_uint_eq(ev.addr, 0x800);
	ck_assert_uint_eq(ev.len, len);
	ck_assert_uint_eq(ev.pc, 0x800);
	/* Resumed, vCPU 1 steps past it like past its own stop there:
	 * without the slot, with the guest's bytes. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	ck_assert_uint_eq(fh.v[1].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	ck_assert_int_eq(exec_slot_at(a, &fh.v[1], 0x800), -1);
	stepped_over_0x800(x86, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, fh.orig + 0x800, len), 0);
	/* Now vCPU 0 catches it while vCPU 1 steps. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x800), 0);
	stepped_over_0x800(x86, 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[1], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, a->sw_insn, len), 0);
	/* Both done: no slot catches it any more. */
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[i]), 0);
		ck_assert_int_eq(exec_slot_at(a, &fh.v[i], 0x800), -1);
		ck_assert_uint_eq(fh.v[i].ctl & KVMDBG_CTL_HW, 0);
	}

	/* No free slot: vCPU 1 waits (-EAGAIN, nothing applied) from
	 * vCPU 0's stop until its step-over has ended. */
	for (unsigned int n = 0; n < e.vm->lim.nr[KVMDBG_POOL_BP]; n++)
		ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100 + 4 * n, len), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[i]), 0);
	sw_hit(x86, 0, 0x800);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	sets = fh.v[1].set_calls;
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), -EAGAIN);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, fh.orig + 0x800, len), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), -EAGAIN);
	ck_assert_uint_eq(fh.v[1].set_calls, sets);
	stepped_over_0x800(x86, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, a->sw_insn, len), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	/* A vCPU in its own internal step is never fenced: both stop at
	 * it and step over it at once. */
	for (int i = 0; i < 2; i++) {
		sw_hit(x86, i, 0x800);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[i], &ev), 0);
	}
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[i]), 0);
	for (int i = 0; i < 2; i++) {
		stepped_over_0x800(x86, i);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[i], &ev), 0);
	}
	ck_assert_int_eq(memcmp(fh.mem + 0x800, a->sw_insn, len), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[i]), 0);
	env_free(&e);
	ck_assert_int_eq(memcmp(fh.mem, fh.orig, MEM_SIZE), 0);
}
END_TEST

/*
 * Issue 17: the step of a step-over applied from the state KVM held at the
 * stop, and the way back to it at the step's end, without the lock or a
 * compose (vcpu.c step_apply_fast, step_back_fast), and the plain end of
 * the step settled without the classifier's state (classify.c
 * stepover_end_plain). Each case below is one the fast paths must leave to
 * the general ones, or get exactly as they would.
 */

/* What KVM holds for vCPU cpu. */
struct kvm_state {
	uint32_t ctl;
	struct kvmdbg_hwstate hw;
};

static struct kvm_state kvm_now(int cpu)
{
	return (struct kvm_state){.ctl = fh.v[cpu].ctl, .hw = fh.v[cpu].hw};
}

static void assert_kvm_holds(int cpu, const struct kvm_state *s)
{
	ck_assert_uint_eq(fh.v[cpu].ctl, s->ctl);
	ck_assert_int_eq(memcmp(&fh.v[cpu].hw, &s->hw, sizeof(s->hw)), 0);
}

/* vCPU cpu hits the execution breakpoint in slot slot (pool BP) at pc. */
static void hw_hit(bool x86, int cpu, uint64_t pc, unsigned int slot)
{
	if (x86)
		x86_db(cpu, pc, 1ull << slot);
	else
		arm64_exit(cpu, ESR_FOR_EC(0x30), pc, 0);
}

static void handle_expect(int cpu, struct kvmdbg_vcpu *v, enum kvmdbg_stop kind)
{
	struct kvmdbg_event ev;

	(void)cpu;
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(v, &ev), 0);
	ck_assert_int_eq(ev.kind, kind);
}

/*
 * A hit of our software breakpoint is told from the table (under the lock)
 * or, for the same address again with the set unchanged, from the vCPU's
 * note of the last one it found there (swbp_hit_fast, issue 17). A
 * breakpoint instruction of our kind at another address, not in the table,
 * is not ours however recent that note; nor is one at the noted address
 * once it is removed; and one there again after it is inserted again is.
 */
START_TEST(test_sw_hit_noted)
{
	const bool x86 = sw_arches[_i] == KVMDBG_ARCH_X86_64;
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, sw_arches[_i], 0);
	/* One vCPU: with another attached, the cover's bump at each hit moves
	 * the generation, and the note never holds. */
	kvmdbg_vcpu_free(e.v[1]);
	e.v[1] = NULL;
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, e.vm->arch->sw_len), 0);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		sw_hit(x86, 0, 0x800);
		handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		stepped_over_0x800(x86, 0);
		handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	}
	/* Our kind of instruction at 0x900, never inserted: not a stop at a
	 * breakpoint of ours. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	sw_hit(x86, 0, 0x900);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert(!(ev.kind == KVMDBG_STOP_BREAK && ev.type == KVMDBG_BREAK_SW));
	/* Still ours at 0x800. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	sw_hit(x86, 0, 0x800);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(ev.type, KVMDBG_BREAK_SW);
	ck_assert_uint_eq(ev.pc, 0x800);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	stepped_over_0x800(x86, 0);
	handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	/* Removed: a stale hit there is not a stop at it. */
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, 0x800, e.vm->arch->sw_len), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	sw_hit(x86, 0, 0x800);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert(!(ev.kind == KVMDBG_STOP_BREAK && ev.type == KVMDBG_BREAK_SW));
	/* Inserted again: ours. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, e.vm->arch->sw_len), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	sw_hit(x86, 0, 0x800);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(ev.type, KVMDBG_BREAK_SW);
	env_free(&e);
	ck_assert_int_eq(memcmp(fh.mem, fh.orig, MEM_SIZE), 0);
}
END_TEST

/* A stop at the breakpoint at 0x100 (slot 0), resumed: the step runs with
 * that slot alone disarmed, the step's flags added, one ioctl; at its end
 * (handle_exit) KVM gets exactly the state of the stop back, one ioctl. */
START_TEST(test_stepover_fast_round_trip)
{
	bool x86 = sw_arches[_i] == KVMDBG_ARCH_X86_64;
	uint64_t step = x86 ? KVMDBG_CTL_STEP | KVMDBG_CTL_BLOCKIRQ : KVMDBG_CTL_STEP;
	struct kvm_state before, stepping;
	unsigned int calls;
	struct env e;

	env_new(&e, sw_arches[_i], 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, x86 ? 1 : 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x180, x86 ? 1 : 4), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	for (int round = 0; round < 3; round++) {
		before = kvm_now(0);
		calls = fh.v[0].set_calls;
		hw_hit(x86, 0, 0x100, 0);
		handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert(e.v[0]->back_valid); /* the fast path ran */
		stepping = before;
		stepping.hw.slot[KVMDBG_POOL_BP][0].ctrl = 0;
		stepping.ctl |= step;
		assert_kvm_holds(0, &stepping);
		ck_assert_uint_eq(fh.v[0].set_calls, calls + 1);
		ck_assert_int_eq(kvmdbg_vcpu_is_stepping(e.v[0]), 1);
		/* An exit that is not a debug exit: nothing changes. */
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert_uint_eq(fh.v[0].set_calls, calls + 1);
		step_end(x86, 0, x86 ? 0x102 : 0x104);
		handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
		/* The way back is taken at the step's end: the prepare after
		 * it has nothing to do. */
		ck_assert(!e.v[0]->back_valid);
		assert_kvm_holds(0, &before);
		ck_assert_uint_eq(fh.v[0].set_calls, calls + 2);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert_uint_eq(fh.v[0].set_calls, calls + 2);
		ck_assert_int_eq(kvmdbg_vcpu_is_stepping(e.v[0]), 0);
	}
	env_free(&e);
}
END_TEST

/* The set changes around the step: the state applied is the set's as a
 * compose would build it, never the one the fast paths kept. */
START_TEST(test_stepover_fast_set_changes)
{
	bool x86 = sw_arches[_i] == KVMDBG_ARCH_X86_64;
	const struct kvmdbg_arch_ops *a = x86 ? &kvmdbg_x86_ops : &kvmdbg_arm64_ops;
	uint64_t len = x86 ? 1 : 4;
	struct env e;

	env_new(&e, sw_arches[_i], 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, len), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);

	/* Inserted while it steps: armed when the step ends. */
	hw_hit(x86, 0, 0x100, 0);
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(exec_slot_at(a, &fh.v[0], 0x100), -1);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x200, len), 0);
	step_end(x86, 0, x86 ? 0x102 : 0x104);
	handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x100), 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x200), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);

	/* Removed while it steps: not armed again. */
	hw_hit(x86, 0, 0x100, (unsigned int)exec_slot_at(a, &fh.v[0], 0x100));
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x100, len), 0);
	step_end(x86, 0, x86 ? 0x102 : 0x104);
	handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(exec_slot_at(a, &fh.v[0], 0x100), -1);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x200), 0);

	/* Inserted between the stop and its resume: the step runs with it. */
	hw_hit(x86, 0, 0x200, (unsigned int)exec_slot_at(a, &fh.v[0], 0x200));
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x300, len), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(exec_slot_at(a, &fh.v[0], 0x200), -1);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x300), 0);
	step_end(x86, 0, x86 ? 0x202 : 0x204);
	handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x200), 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x300), 0);

	/* The user's step turned on after the step ended: the way back is
	 * compose's, with the step. */
	hw_hit(x86, 0, 0x200, (unsigned int)exec_slot_at(a, &fh.v[0], 0x200));
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	step_end(x86, 0, x86 ? 0x202 : 0x204);
	handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x200), 0);
	env_free(&e);
}
END_TEST

/* Another vCPU stopped at a software breakpoint: this one catches it in a
 * slot (the cover), but not during its own step-over's step (compose adds
 * no cover then), and again after it. */
START_TEST(test_stepover_fast_not_with_cover)
{
	bool x86 = sw_arches[_i] == KVMDBG_ARCH_X86_64;
	const struct kvmdbg_arch_ops *a = x86 ? &kvmdbg_x86_ops : &kvmdbg_arm64_ops;
	struct env e;

	env_new(&e, sw_arches[_i], 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, a->sw_len), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, x86 ? 1 : 4), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[i]), 0);
	sw_hit(x86, 1, 0x800);
	handle_expect(1, e.v[1], KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x800), 0);

	hw_hit(x86, 0, 0x100, 0);
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	ck_assert_int_eq(exec_slot_at(a, &fh.v[0], 0x100), -1);
	ck_assert_int_eq(exec_slot_at(a, &fh.v[0], 0x800), -1);
	step_end(x86, 0, x86 ? 0x102 : 0x104);
	handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x100), 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x800), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	/* vCPU 1 steps past its stop: the cover goes at the next prepare. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	stepped_over_0x800(x86, 1);
	handle_expect(1, e.v[1], KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(exec_slot_at(a, &fh.v[0], 0x800), -1);
	env_free(&e);
}
END_TEST

/* KVM_SET_GUEST_DEBUG fails for the step, then for the way back: each time
 * KVM and the vCPU stay as they were, and the retry gets it right. */
START_TEST(test_stepover_fast_failures)
{
	bool x86 = sw_arches[_i] == KVMDBG_ARCH_X86_64;
	uint64_t step = x86 ? KVMDBG_CTL_STEP | KVMDBG_CTL_BLOCKIRQ : KVMDBG_CTL_STEP;
	struct kvm_state before, stepping;
	struct env e;

	env_new(&e, sw_arches[_i], 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, x86 ? 1 : 4), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	before = kvm_now(0);
	stepping = before;
	stepping.hw.slot[KVMDBG_POOL_BP][0].ctrl = 0;
	/* No slot left enabled: no KVMDBG_CTL_HW. */
	stepping.ctl = (before.ctl & ~KVMDBG_CTL_HW) | step;
	for (int round = 0; round < 2; round++) {
		hw_hit(x86, 0, 0x100, 0);
		handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
		fh_fault_arm_site(FH_SET_GUEST_DEBUG, 1, EINTR);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), -EINTR);
		assert_kvm_holds(0, &before);
		ck_assert_int_eq(kvmdbg_vcpu_is_stepping(e.v[0]), 0);
		ck_assert_uint_eq(fh.v[0].masked, 0); /* arm64: the mask given back */
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		assert_kvm_holds(0, &stepping);
		step_end(x86, 0, x86 ? 0x102 : 0x104);
		/* The way back is taken at the step's end: it fails there
		 * (nothing changes, the event is the same), and again in the
		 * prepare that retries it. */
		fh_fault_arm_site(FH_SET_GUEST_DEBUG, 1, EINTR);
		handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
		assert_kvm_holds(0, &stepping);
		fh_fault_arm_site(FH_SET_GUEST_DEBUG, 1, EINTR);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), -EINTR);
		assert_kvm_holds(0, &stepping);
		if (x86 && round == 1) {
			struct kvmdbg_event ev;

			/* Run anyway: exits are read against the state KVM
			 * holds, where slot 0 is off: its B bit is the guest's
			 * own execution breakpoint there (live: no slot of
			 * ours runs), not ours. */
			fh.guest.dr7 = 0x400 | 3u << 0;
			fh.guest.value[KVMDBG_POOL_BP][0] = 0x100;
			x86_db(0, 0x100, DR6_BS | 1u << 0);
			ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
			ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
			fh.guest.dr7 = 0;
			ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
			ck_assert_uint_eq(fh.v[0].injected.dr6, 1u << 0);
			ck_assert_uint_eq(fh.v[0].ctl & ~KVMDBG_CTL_INJECT_DB, before.ctl);
			ck_assert_int_eq(memcmp(&fh.v[0].hw, &before.hw, sizeof(before.hw)), 0);
			break;
		}
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		assert_kvm_holds(0, &before);
	}
	env_free(&e);
}
END_TEST

/* x86: the step-over's step ends on another breakpoint (DR6 BS with its B
 * bit): that breakpoint's stop, not a plain end. */
START_TEST(test_stepover_end_on_breakpoint)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x101, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x100, 1u << 0);
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x101, DR6_BS | 1u << 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_uint_eq(ev.addr, 0x101);
	ck_assert_uint_eq(ev.hits, 1u << 1);
	/* Resumed from there: past 0x101, 0x100 armed again. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][1].ctrl, 0);
	ck_assert_uint_ne(fh.v[0].hw.slot[0][0].ctrl, 0);
	env_free(&e);
}
END_TEST

/* x86: the step-over's step ends with a cause of the guest's own too (DR6
 * BT: a task switch to a TSS with its T bit): the guest gets it at the next
 * prepare, which the way back must not skip. */
START_TEST(test_stepover_end_guest_cause)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x100, 1u << 0);
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x140, DR6_BS | DR6_BT);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 1);
	ck_assert_uint_eq(fh.v[0].injected.exception, 1);
	ck_assert_uint_eq(fh.v[0].injected.dr6 & DR6_BT, DR6_BT);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	ck_assert_uint_ne(fh.v[0].hw.slot[0][0].ctrl, 0);
	env_free(&e);
}
END_TEST

/* x86: the step-over's step ends with a debug exception of the guest's own
 * registers besides: its execution breakpoint at the PC where KVM keeps
 * them live (a B bit of a slot not ours), its DR7.GD (BD: a MOV DR under
 * it). The guest gets each; the end is not a plain one. */
START_TEST(test_stepover_end_guest_regs)
{
	struct kvmdbg_event ev;
	struct env e;

	for (int k = 0; k < 2; k++) {
		env_new(&e, KVMDBG_ARCH_X86_64, KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_GUEST_BP_LIVE);
		fh.guest.dr7 = 0x400 | 3u << 4 | (k ? DR7_GD : 0); /* L2 G2, execution */
		fh.guest.value[KVMDBG_POOL_BP][2] = 0x555;
		ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		x86_db(0, 0x100, 1u << 0);
		handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		x86_db(0, 0x555, DR6_BS | (k ? DR6_BD : 1u << 2));
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert_int_eq(fh.v[0].inject_calls, 1);
		ck_assert_uint_eq(fh.v[0].injected.dr6 & (k ? DR6_BD : 1u << 2), k ? DR6_BD : 1u << 2);
		ck_assert_uint_ne(fh.v[0].hw.slot[0][0].ctrl, 0);
		env_free(&e);
	}
}
END_TEST

/* Overlay on (x86 with the GD exit): the step-over's step is compose's,
 * which keeps DR7.GD while host slots run, never the state of the stop
 * with the step added. */
START_TEST(test_stepover_overlay_composes)
{
	struct kvmdbg_event ev;
	struct env e;

	env_new_overlay(&e, KVMDBG_ARCH_X86_64, KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_GD_EXIT,
			KVMDBG_OVERLAY_GUEST);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x180, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_GD, KVMDBG_CTL_GD);
	x86_db(0, 0x100, 1u << 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & (KVMDBG_CTL_GD | KVMDBG_CTL_STEP | KVMDBG_CTL_HW),
			  KVMDBG_CTL_GD | KVMDBG_CTL_STEP | KVMDBG_CTL_HW);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][0].ctrl, 0);
	ck_assert_uint_ne(fh.v[0].hw.slot[0][1].ctrl, 0);
	env_free(&e);
}
END_TEST

/* arm64: a watchpoint stop at an execution breakpoint, four watchpoints
 * hit at once: five slots disarmed for the step, more than the fast path
 * keeps (KVMDBG_STEP_BACK_SLOTS); all five back after it. */
START_TEST(test_stepover_fast_many_slots)
{
	struct kvmdbg_event ev;
	struct kvm_state before;
	struct env e;

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x1000, 4), 0);
	for (uint64_t len = 1; len <= 8; len *= 2)
		ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x3000, len), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_WP), 4);
	before = kvm_now(0);
	arm64_exit(0, ESR_FOR_EC(0x34) | 1u << 6, 0x1000, 0x3000);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_WATCH);
	ck_assert_uint_eq(ev.hits >> 16, 0xf);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_BP), 0);
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_WP), 0);
	arm64_exit(0, ESR_FOR_EC(0x32), 0x1004, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	assert_kvm_holds(0, &before);
	/* Each slot back for its point: their hits are theirs. */
	arm64_exit(0, ESR_FOR_EC(0x34) | 1u << 6, 0x2000, 0x3000);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_WATCH);
	ck_assert_uint_eq(ev.hits >> 16, 0xf);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	arm64_exit(0, ESR_FOR_EC(0x32), 0x2004, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	arm64_exit(0, ESR_FOR_EC(0x30), 0x1000, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_uint_eq(ev.addr, 0x1000);
	env_free(&e);
}
END_TEST

/* arm64: the software breakpoint is lifted with its lookup, before the
 * interrupt mask, which reads the guest's word under it from that entry;
 * a mask that fails puts the breakpoint back: nothing changed. */
START_TEST(test_arm64_sw_lift_then_mask)
{
	const struct kvmdbg_arch_ops *a = &kvmdbg_arm64_ops;
	struct env e;

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	put_insn(0x800, 0xd50342df); /* msr daifset, #2 */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, a->sw_len), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	fh.v[0].daif = 0; /* interrupts open: the mask reads the instruction */
	sw_hit(false, 0, 0x800);
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	fh_fault_arm_site(FH_MASK_IRQS, 1, EIO);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), -EIO);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, a->sw_insn, a->sw_len), 0);
	ck_assert(!e.v[0]->so.sw);
	ck_assert_uint_eq(e.v[0]->so.state, KVMDBG_SO_ARMED);
	ck_assert_uint_eq(fh.v[0].daif, 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, fh.orig + 0x800, a->sw_len), 0);
	ck_assert(fh.v[0].mask_insn_known);
	ck_assert_uint_eq(fh.v[0].mask_insn, 0xd50342df);
	ck_assert_uint_eq(fh.v[0].mask_pc, 0x800);
	stepped_over_0x800(false, 0);
	handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, a->sw_insn, a->sw_len), 0);
	ck_assert_uint_eq(fh.v[0].daif, PS_I); /* what msr daifset, #2 set */
	fh.v[0].daif = 0x3c0;
	env_free(&e);
}
END_TEST

/* A cover changing on the only vCPU attached bumps nothing (kvmdbg_cover_bump):
 * no compose for it anywhere, and its step-over takes the fast paths; a
 * vCPU attached while it is stopped still catches the breakpoint at its
 * first prepare. With two attached, the stop bumps the generation. */
START_TEST(test_cover_one_vcpu)
{
	bool x86 = sw_arches[_i] == KVMDBG_ARCH_X86_64;
	const struct kvmdbg_arch_ops *a = x86 ? &kvmdbg_x86_ops : &kvmdbg_arm64_ops;
	struct kvmdbg_vcpu *late;
	struct kvm_state before;
	uint64_t gen;
	struct env e;

	env_new(&e, sw_arches[_i], 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, a->sw_len), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[i]), 0);
	gen = atomic_load(&e.vm->gen);
	sw_hit(x86, 0, 0x800);
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_uint_gt(atomic_load(&e.vm->gen), gen);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	stepped_over_0x800(x86, 0);
	handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);

	kvmdbg_vcpu_free(e.v[1]);
	e.v[1] = NULL;
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	before = kvm_now(0);
	for (int round = 0; round < 2; round++) {
		gen = atomic_load(&e.vm->gen);
		sw_hit(x86, 0, 0x800);
		handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
		ck_assert_uint_eq(atomic_load(&e.vm->gen), gen);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert(e.v[0]->back_valid);
		ck_assert_int_eq(memcmp(fh.mem + 0x800, fh.orig + 0x800, a->sw_len), 0);
		ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
		stepped_over_0x800(x86, 0);
		handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
		ck_assert_uint_eq(atomic_load(&e.vm->gen), gen);
		ck_assert_int_eq(memcmp(fh.mem + 0x800, a->sw_insn, a->sw_len), 0);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		assert_kvm_holds(0, &before);
	}
	/* Stopped there, then a vCPU attached: it catches the address. */
	sw_hit(x86, 0, 0x800);
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_new(e.vm, 1, &runs[1], &late), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(late), 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[1], 0x800), 0);
	e.v[1] = late;
	/* Two attached now: the step-over's end bumps for the other. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	gen = atomic_load(&e.vm->gen);
	stepped_over_0x800(x86, 0);
	handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	ck_assert_uint_gt(atomic_load(&e.vm->gen), gen);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	ck_assert_int_eq(exec_slot_at(a, &fh.v[1], 0x800), -1);
	env_free(&e);
}
END_TEST

/*
 * Two vCPUs: each bump of a software breakpoint's step-over's cover
 * (kvmdbg_cover_bump) is for the other, which catches the address in a slot
 * from the stop to the breakpoint's return and not after; the vCPU that
 * steps keeps its own state as of the new generation (its cover is not in
 * it), so its step and the way back take the paths without a compose, and
 * end in the state compose builds.
 */
START_TEST(test_cover_bump_two_vcpus)
{
	bool x86 = sw_arches[_i] == KVMDBG_ARCH_X86_64;
	const struct kvmdbg_arch_ops *a = x86 ? &kvmdbg_x86_ops : &kvmdbg_arm64_ops;
	struct kvm_state before;
	uint64_t gen;
	struct env e;

	env_new(&e, sw_arches[_i], 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, a->sw_len), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, x86 ? 1 : 4), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[i]), 0);
	before = kvm_now(0);
	for (int round = 0; round < 2; round++) {
		gen = atomic_load(&e.vm->gen);
		sw_hit(x86, 0, 0x800);
		handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
		ck_assert_uint_eq(atomic_load(&e.vm->gen), gen + 1);
		ck_assert_uint_eq(e.v[0]->gen, gen + 1);
		ck_assert_uint_eq(e.v[1]->gen, gen);
		/* The other catches it from now on. */
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
		ck_assert_int_ge(exec_slot_at(a, &fh.v[1], 0x800), 0);
		ck_assert_int_ge(exec_slot_at(a, &fh.v[1], 0x100), 0);
		/* The step from the state of the stop, no compose. */
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert(e.v[0]->back_valid);
		ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
		ck_assert_int_eq(exec_slot_at(a, &fh.v[0], 0x800), -1);
		ck_assert_int_eq(memcmp(fh.mem + 0x800, fh.orig + 0x800, a->sw_len), 0);
		/* Lifted at the same address: the other has nothing new. */
		ck_assert_uint_eq(atomic_load(&e.vm->gen), gen + 1);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
		ck_assert_int_ge(exec_slot_at(a, &fh.v[1], 0x800), 0);

		stepped_over_0x800(x86, 0);
		handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
		ck_assert_int_eq(memcmp(fh.mem + 0x800, a->sw_insn, a->sw_len), 0);
		ck_assert_uint_eq(atomic_load(&e.vm->gen), gen + 2);
		ck_assert_uint_eq(e.v[0]->back_gen, gen + 2);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		assert_kvm_holds(0, &before);
		/* The breakpoint is back: the other's slot goes. */
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
		ck_assert_int_eq(exec_slot_at(a, &fh.v[1], 0x800), -1);
		ck_assert_int_ge(exec_slot_at(a, &fh.v[1], 0x100), 0);
	}
	env_free(&e);
}
END_TEST

/*
 * Every change of the set and every cover's bump reach each vCPU's copies
 * (struct kvmdbg_vm_seen), a vCPU attached later gets them at attach, and
 * the lock-free paths act on them: a point inserted from another thread
 * between a stop and its resume makes the resume compose.
 */
START_TEST(test_vcpu_seen_published)
{
	bool x86 = sw_arches[_i] == KVMDBG_ARCH_X86_64;
	const struct kvmdbg_arch_ops *a = x86 ? &kvmdbg_x86_ops : &kvmdbg_arm64_ops;
	struct kvmdbg_vcpu *late;
	struct kvm_run late_run = {.exit_reason = KVM_EXIT_DEBUG};
	uint64_t gen;
	struct env e;

	env_new(&e, sw_arches[_i], 0);
	assert_seen(e.vm);
	ck_assert(!atomic_load(&e.v[0]->seen.sw_filter));
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, x86 ? 1 : 4), 0);
	assert_seen(e.vm);
	ck_assert_uint_eq(atomic_load(&e.v[1]->seen.nr_exec), 1);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x2000, 8), 0);
	assert_seen(e.vm);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, a->sw_len), 0);
	assert_seen(e.vm);
	ck_assert(atomic_load(&e.v[0]->seen.sw_filter));
	ck_assert_uint_eq(atomic_load(&e.v[0]->seen.nr_exec), 2);
	/* A vCPU attached now starts from the VM's. */
	ck_assert_int_eq(kvmdbg_vcpu_new(e.vm, 2, &late_run, &late), 0);
	assert_seen(e.vm);
	ck_assert(atomic_load(&late->seen.sw_filter));
	kvmdbg_vcpu_free(late);
	assert_seen(e.vm);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[i]), 0);
	/* A cover's bump (the hit at 0x800 with another vCPU attached). */
	gen = atomic_load(&e.vm->gen);
	sw_hit(x86, 0, 0x800);
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_uint_eq(atomic_load(&e.vm->gen), gen + 1);
	assert_seen(e.vm);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	stepped_over_0x800(x86, 0);
	handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	assert_seen(e.vm);
	/* An insert between vCPU 0's stop and its resume: the resume sees
	 * it through its copy and composes (the new point in KVM's state). */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	sw_hit(x86, 0, 0x800);
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x180, x86 ? 1 : 4), 0);
	assert_seen(e.vm);
	ck_assert_uint_ne(e.v[0]->gen, atomic_load(&e.v[0]->seen.gen));
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x180), 0);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x100, x86 ? 1 : 4), 0);
	assert_seen(e.vm);
	ck_assert_int_eq(kvmdbg_vm_remove_all(e.vm), 0);
	assert_seen(e.vm);
	ck_assert_uint_eq(atomic_load(&e.v[1]->seen.nr_exec), 0);
	env_free(&e);
}
END_TEST

/*
 * Two vCPUs: the end of a step over a software breakpoint puts it back and
 * takes the cover down in one critical section (stepover.c, finish_unlift).
 * Where putting it back fails, the cover stays (the guest's bytes are
 * there: the other vCPU keeps catching the address) until the retry of the
 * next prepare; where the breakpoint was removed during the step, the cover
 * goes without a bump (its removal bumped already).
 */
START_TEST(test_cover_finish_unlift)
{
	bool x86 = sw_arches[_i] == KVMDBG_ARCH_X86_64;
	const struct kvmdbg_arch_ops *a = x86 ? &kvmdbg_x86_ops : &kvmdbg_arm64_ops;
	uint64_t gen;
	struct env e;

	env_new(&e, sw_arches[_i], 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, a->sw_len), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[i]), 0);

	/* Putting it back fails: lifted still, the cover with it. */
	sw_hit(x86, 0, 0x800);
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	gen = atomic_load(&e.vm->gen);
	fh_fault_arm_site(FH_MEM_WRITE, 1, EFAULT);
	stepped_over_0x800(x86, 0);
	handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, fh.orig + 0x800, a->sw_len), 0);
	ck_assert(atomic_load(&e.v[0]->cover_on));
	ck_assert_uint_eq(atomic_load(&e.vm->gen), gen);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[1], 0x800), 0);
	/* The retry puts it back: the cover goes, the other's slot too. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, a->sw_insn, a->sw_len), 0);
	ck_assert(!atomic_load(&e.v[0]->cover_on));
	ck_assert(!atomic_load(&e.v[1]->cover_on));
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	ck_assert_int_eq(exec_slot_at(a, &fh.v[1], 0x800), -1);

	/* Removed during the step: the removal bumped, the end does not. */
	sw_hit(x86, 0, 0x800);
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, 0x800, a->sw_len), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	ck_assert_int_eq(exec_slot_at(a, &fh.v[1], 0x800), -1);
	gen = atomic_load(&e.vm->gen);
	stepped_over_0x800(x86, 0);
	handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	ck_assert(!atomic_load(&e.v[0]->cover_on));
	ck_assert(!atomic_load(&e.v[1]->cover_on));
	ck_assert_uint_eq(atomic_load(&e.vm->gen), gen);
	ck_assert_int_eq(memcmp(fh.mem + 0x800, fh.orig + 0x800, a->sw_len), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	env_free(&e);
}
END_TEST

/*
 * Two vCPUs: a change of the set made on another thread between this
 * vCPU's compose (or its step's apply) and its cover's bump is not hidden by
 * the bump: v->gen (back_gen) is moved with it only when nothing else
 * changed since, and the next prepare composes with the change.
 */
START_TEST(test_cover_bump_insert_between)
{
	bool x86 = sw_arches[_i] == KVMDBG_ARCH_X86_64;
	const struct kvmdbg_arch_ops *a = x86 ? &kvmdbg_x86_ops : &kvmdbg_arm64_ops;
	uint64_t len = x86 ? 1 : 4;
	struct env e;

	env_new(&e, sw_arches[_i], 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x800, a->sw_len), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[i]), 0);

	/* Between the compose and the stop's bump: the step runs with it. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, len), 0);
	sw_hit(x86, 0, 0x800);
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_uint_ne(e.v[0]->gen, atomic_load(&e.vm->gen));
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x100), 0);

	/* Between the step's apply and the bump at its end: the way back
	 * has it. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x200, len), 0);
	stepped_over_0x800(x86, 0);
	handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x100), 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x200), 0);

	/* The same with the step taken without a compose (nothing changed
	 * before the stop), a removal between it and its end. */
	sw_hit(x86, 0, 0x800);
	handle_expect(0, e.v[0], KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert(e.v[0]->back_valid);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x200, len), 0);
	stepped_over_0x800(x86, 0);
	handle_expect(0, e.v[0], KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[0], 0x100), 0);
	ck_assert_int_eq(exec_slot_at(a, &fh.v[0], 0x200), -1);

	/* The other vCPU saw every change. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	ck_assert_int_ge(exec_slot_at(a, &fh.v[1], 0x100), 0);
	ck_assert_int_eq(exec_slot_at(a, &fh.v[1], 0x200), -1);
	ck_assert_int_eq(exec_slot_at(a, &fh.v[1], 0x800), -1);
	env_free(&e);
}
END_TEST

/*
 * Issue 12 item 5: a software breakpoint on an instruction that already is
 * the breakpoint instruction (the guest's own INT3; an arm64 BRK with the
 * library's immediate). The stop there is reported once; resuming steps
 * over it with the guest's bytes back, which runs the guest's own
 * instruction: that exception is the guest's, delivered to it, and the
 * vCPU goes on (no second report of the same stop, no loop).
 */
START_TEST(test_sw_break_on_guest_insn)
{
	bool x86 = sw_arches[_i] == KVMDBG_ARCH_X86_64;
	const struct kvmdbg_arch_ops *a = x86 ? &kvmdbg_x86_ops : &kvmdbg_arm64_ops;
	uint64_t at = x86 ? 175 : 0x800; /* x86: a 0xcc of the fake's pattern */
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, sw_arches[_i], 0);
	if (!x86) {
		memcpy(fh.mem + at, a->sw_insn, 4);
		memcpy(fh.orig + at, a->sw_insn, 4);
	}
	ck_assert_int_eq(memcmp(fh.mem + at, a->sw_insn, a->sw_len), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, at, a->sw_len), 0);

	for (int user_step = 0; user_step < 2; user_step++) {
		ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[0], user_step), 0);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		/* The instruction is reached: our stop, reported. */
		sw_hit(x86, 0, at);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
		ck_assert_int_eq(ev.type, KVMDBG_BREAK_SW);
		ck_assert_uint_eq(ev.addr, at);
		/* Resume: the guest's bytes (the same instruction) for one step. */
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert_int_eq(kvmdbg_vcpu_is_stepping(e.v[0]), 1);
		ck_assert_int_eq(memcmp(fh.mem + at, fh.orig + at, a->sw_len), 0);
		/* The step runs the guest's own breakpoint instruction. */
		sw_hit(x86, 0, at);
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
		ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
		ck_assert_int_eq(memcmp(fh.mem + at, a->sw_insn, a->sw_len), 0);
		/* Delivered at the next prepare; the step-over is over. */
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
		ck_assert_int_eq(fh.v[0].inject_calls, 1 + user_step);
		ck_assert_uint_eq(fh.v[0].injected.pc, at);
		if (x86) {
			ck_assert_uint_eq(fh.v[0].injected.exception, 3);
			ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_INJECT_BP,
					  KVMDBG_CTL_INJECT_BP);
		} else {
			ck_assert_uint_eq(fh.v[0].injected.esr, ESR_FOR_EC(0x3c) | a->sw_imm);
		}
		ck_assert_int_eq(kvmdbg_vcpu_is_stepping(e.v[0]), user_step);
		ck_assert_uint_eq(e.v[0]->so.state, KVMDBG_SO_NONE);
		if (user_step) {
			/* The user's step ends in the guest's handler. */
			step_end(x86, 0, 0x400);
			ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
			ck_assert_int_eq(ev.kind, KVMDBG_STOP_STEP);
		}
	}
	/* Another vCPU reaching it is stopped there too: ours first. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[1]), 0);
	sw_hit(x86, 1, at);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[1], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, at, a->sw_len), 0);
	env_free(&e);
	ck_assert(fh_mem_is_orig());
}
END_TEST

/* ---- guest/host overlay (x86) ---- */

/* Guest DR7 bits for register n: L enable, RW, LEN field. */
static uint64_t gdr7(unsigned int n, unsigned int rw, unsigned int lenf)
{
	return 1ull << (2 * n) | (uint64_t)rw << (16 + 4 * n) | (uint64_t)lenf << (18 + 4 * n);
}

static uint32_t owner_of(const struct kvmdbg_vcpu *v, unsigned int slot)
{
	return v->applied_owner[KVMDBG_POOL_BP][slot];
}

START_TEST(test_overlay_merge_route_suspend)
{
	struct kvmdbg_overlay_stats st = {.sz = sizeof(st)};
	struct kvmdbg_event ev;
	struct env e;

	env_new_overlay(&e, KVMDBG_ARCH_X86_64, 0, KVMDBG_OVERLAY_GUEST);
	/* The guest: DR0 execution at 0x500, DR1 4-byte write watch at 0x600,
	 * DR2 an I/O breakpoint (refused). */
	fh.guest.value[0][0] = 0x500;
	fh.guest.value[0][1] = 0x602; /* aligned down to 0x600 like the CPU */
	fh.guest.value[0][2] = 0x3f8;
	fh.guest.dr7 = 0x400 | gdr7(0, 0, 0) | gdr7(1, 1, 3) | gdr7(2, 2, 0);

	/* No host slot: KVM runs the guest's own registers, nothing merged. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].guest_reads, 1);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_HW, 0);
	ck_assert_int_eq(kvmdbg_vcpu_overlay_stats(e.v[0], &st), 0);
	ck_assert_uint_eq(st.merged, 0);
	ck_assert_uint_eq(st.rejected, 1);

	/* The host takes slot 0: the guest's DR0 moves to a free slot, its DR1
	 * to the next; the I/O breakpoint never reaches the hardware. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_HW, KVMDBG_CTL_HW);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_GD, 0); /* GD exit not verified */
	ck_assert_uint_eq(fh.v[0].hw.slot[0][0].value, 0x100);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][1].value, 0x500);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][1].ctrl, KVMDBG_X86_CTRL_ENABLE);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][2].value, 0x600);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][2].ctrl, KVMDBG_X86_CTRL_ENABLE | 1 | 3 << 2);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][3].ctrl, 0);
	ck_assert_uint_eq(owner_of(e.v[0], 1), KVMDBG_OWNER_GUEST_ID(0, 0));
	ck_assert_int_eq(kvmdbg_vcpu_overlay_stats(e.v[0], &st), 0);
	ck_assert_uint_eq(st.merged, 2);
	ck_assert_uint_eq(st.suspended, 0);

	/* The guest's breakpoint fires in hardware slot 1: re-injected with
	 * the guest's own number, B0. */
	x86_db(0, 0x500, 1u << 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_uint_eq(ev.hits, 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].injected.exception, 1);
	ck_assert_uint_eq(fh.v[0].injected.dr6, 1u << 0);
	/* Its watchpoint in hardware slot 2 is its B1. */
	x86_db(0, 0x777, 1u << 2);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].injected.dr6, 1u << 1);
	/* The host's own hit is the host's. */
	x86_db(0, 0x100, 1u << 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_overlay_stats(e.v[0], &st), 0);
	ck_assert_uint_eq(st.reinjected, 2);

	/* The host takes every slot: the host wins, both guest slots wait. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x110, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x120, 1), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x130, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0); /* steps past 0x100 */
	x86_db(0, 0x101, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(kvmdbg_vcpu_overlay_stats(e.v[0], &st), 0);
	ck_assert_uint_eq(st.merged, 0);
	ck_assert_uint_eq(st.suspended, 2);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_lt(owner_of(e.v[0], i), KVMDBG_OWNER_GUEST);
	/* One freed: the guest's DR1 may have its own number back... DR0 first. */
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x110, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(kvmdbg_vcpu_overlay_stats(e.v[0], &st), 0);
	ck_assert_uint_eq(st.merged, 1);
	ck_assert_uint_eq(st.suspended, 1);
	ck_assert_uint_eq(owner_of(e.v[0], 1), KVMDBG_OWNER_GUEST_ID(0, 0));

	/* The guest reprograms DR0 elsewhere; seen at the next debug exit. */
	fh.guest.value[0][0] = 0x540;
	x86_db(0, 0x130, 1u << 3);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	x86_db(0, 0x131, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][1].value, 0x540);

	/* ...or when the VMM asks. */
	fh.guest.value[0][0] = 0x580;
	ck_assert_int_eq(kvmdbg_vcpu_refresh_guest(e.v[0]), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][1].value, 0x580);

	/* The host detaches: the guest's own registers run as before. */
	ck_assert_int_eq(kvmdbg_vm_remove_all(e.vm), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl, 0);
	env_free(&e);
}
END_TEST

START_TEST(test_overlay_sanitise)
{
	struct kvmdbg_guest_regs g = {.nr = {4, 0}};
	struct kvmdbg_hwstate out;
	unsigned int rejected;

	/* Every DR7 bit set: GD, GE/LE, RTM, every RW/LEN; only RW/LEN of
	 * non-I/O slots survive, re-encoded, with LEN 00 for execution. */
	g.dr7 = ~0ull;
	g.value[0][0] = 0x1007;
	kvmdbg_x86_ops.guest_slots(&g, &out, &rejected);
	ck_assert_uint_eq(rejected, 0); /* RW = 11 everywhere: access watchpoints */
	for (int n = 0; n < 4; n++)
		ck_assert_uint_eq(out.slot[0][n].ctrl, KVMDBG_X86_CTRL_ENABLE | 3 | 3 << 2);
	ck_assert_uint_eq(out.slot[0][0].value, 0x1004);
	ck_assert_uint_eq(out.slot[0][0].len, 4);

	g.dr7 = gdr7(0, 2, 3) | gdr7(1, 0, 3) | gdr7(2, 1, 2) | (1ull << 13);
	g.value[0][1] = 0x2003;
	g.value[0][2] = 0x300f;
	kvmdbg_x86_ops.guest_slots(&g, &out, &rejected);
	ck_assert_uint_eq(rejected, 1);
	ck_assert_uint_eq(out.slot[0][0].ctrl, 0);
	ck_assert_uint_eq(out.slot[0][1].ctrl, KVMDBG_X86_CTRL_ENABLE);
	ck_assert_uint_eq(out.slot[0][1].value, 0x2003);
	ck_assert_uint_eq(out.slot[0][2].ctrl, KVMDBG_X86_CTRL_ENABLE | 1 | 2 << 2);
	ck_assert_uint_eq(out.slot[0][2].value, 0x3008);
	ck_assert_uint_eq(out.slot[0][3].ctrl, 0);
}
END_TEST

START_TEST(test_overlay_gd_exit)
{
	struct kvmdbg_event ev;
	struct env e;
	int reads, calls;

	env_new_overlay(&e, KVMDBG_ARCH_X86_64, KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_GD_EXIT,
			KVMDBG_OVERLAY_GUEST);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_GD, KVMDBG_CTL_GD);

	/* The guest is about to write DR7: our GD exit. */
	x86_db(0, 0x900, 1ull << 13);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_is_stepping(e.v[0]), 1);
	/* The MOV runs alone against the guest's own registers. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & (KVMDBG_CTL_HW | KVMDBG_CTL_GD), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	fh.guest.value[0][0] = 0x700;
	fh.guest.dr7 = 0x400 | gdr7(0, 0, 0);
	reads = fh.v[0].guest_reads;
	x86_db(0, 0x903, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(fh.v[0].guest_reads, reads + 1);
	/* Back to host slots, GD, and the guest's new breakpoint merged. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & (KVMDBG_CTL_HW | KVMDBG_CTL_GD | KVMDBG_CTL_STEP),
			  KVMDBG_CTL_HW | KVMDBG_CTL_GD);
	ck_assert_uint_eq(fh.v[0].hw.slot[0][1].value, 0x700);

	/* Seen in time, so it fires in hardware slot 1 at once: the guest's
	 * B0, queued, delivered by the next prepare (x86-svm-tcg on 7.3, the
	 * first KVM of the test beds with GD exits). */
	calls = fh.v[0].inject_calls;
	x86_db(0, 0x700, 1u << 1);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_uint_eq(ev.hits, 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, calls + 1);
	ck_assert_uint_eq(fh.v[0].injected.exception, 1);
	ck_assert_uint_eq(fh.v[0].injected.dr6, 1u << 0);
	ck_assert_uint_eq(fh.v[0].ctl & (KVMDBG_CTL_HW | KVMDBG_CTL_GD | KVMDBG_CTL_INJECT_DB),
			  KVMDBG_CTL_HW | KVMDBG_CTL_GD | KVMDBG_CTL_INJECT_DB);
	/* Its handler ran; the guest's own TF trap comes next, with no exit
	 * of ours in between: its own #DB again, BS alone (no B0 left over
	 * from the one before). */
	x86_db(0, 0x705, DR6_BS);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, calls + 2);
	ck_assert_uint_eq(fh.v[0].injected.exception, 1);
	ck_assert_uint_eq(fh.v[0].injected.dr6, DR6_BS);
	ck_assert_uint_eq(fh.v[0].ctl & (KVMDBG_CTL_HW | KVMDBG_CTL_GD),
			  KVMDBG_CTL_HW | KVMDBG_CTL_GD);
	env_free(&e);
}
END_TEST

START_TEST(test_overlay_guest_bp_live)
{
	struct kvmdbg_overlay_stats st = {.sz = sizeof(st)};
	struct kvmdbg_event ev;
	struct env e;

	/* A KVM that keeps the guest's execution breakpoints running: they are
	 * not merged (or they would fire twice), but a hit shared with the host
	 * in the same slot number goes to both. */
	env_new_overlay(&e, KVMDBG_ARCH_X86_64, KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_GUEST_BP_LIVE,
			KVMDBG_OVERLAY_GUEST);
	fh.guest.value[0][0] = 0x100;
	fh.guest.dr7 = 0x400 | gdr7(0, 0, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(kvmdbg_vcpu_overlay_stats(e.v[0], &st), 0);
	ck_assert_uint_eq(st.merged, 0);
	ck_assert_int_eq(enabled_slots(&fh.v[0], 0), 1);
	x86_db(0, 0x100, 1u << 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 1);
	ck_assert_uint_eq(fh.v[0].injected.dr6, 1u << 0);
	env_free(&e);
}
END_TEST

/* ---- guest/host overlay (arm64): the guest's own software step ---- */

/* The guest's DBGBCR: enabled, EL0 only (PMC 0b10), BAS 0xf. */
#define GBCR_EL0 (1u | 2u << 1 | 0xfu << 5)
/* ESR of KVM's step exit (EL2's view, from a lower EL): ISV, IFSC 0x22. */
#define ESR_STEP_EXIT (ESR_FOR_EC(0x32) | 1u << 24 | 0x22u)

/* The guest's breakpoint at 0x400 (EL0), merged beside the host's at
 * 0x1000, fires and is passed back; the guest's handler then disables it and
 * arms its own step over it (MDSCR_EL1.SS; ERET to 0x400 with SPSR_EL1.SS),
 * which KVM does not run: arms_ss decides. The re-hit of the merged copy is
 * the exit that follows. */
static void arm64_guest_bp_rehit(struct env *e, bool arms_ss, struct kvmdbg_event *ev)
{
	fh.guest.mdscr = MDSCR_MDE | MDSCR_KDE;
	fh.guest.nr[KVMDBG_POOL_BP] = 6;
	fh.guest.nr[KVMDBG_POOL_WP] = 4;
	fh.guest.ctrl[KVMDBG_POOL_BP][0] = GBCR_EL0;
	fh.guest.value[KVMDBG_POOL_BP][0] = 0x400;
	fh.v[0].el = 0;
	ck_assert_int_eq(kvmdbg_vm_insert(e->vm, KVMDBG_BREAK_HW, 0x1000, 4), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e->v[0]), 0);
	ck_assert_uint_eq(fh.v[0].hw.slot[KVMDBG_POOL_BP][1].value, 0x400);
	ck_assert_uint_eq(owner_of(e->v[0], 1), KVMDBG_OWNER_GUEST_ID(KVMDBG_POOL_BP, 0));

	arm64_exit(0, ESR_FOR_EC(0x30) | 0x22, 0x400, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e->v[0], ev), 0);
	ck_assert_int_eq(ev->kind, KVMDBG_STOP_GUEST);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e->v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 1);
	ck_assert_uint_eq(ESR_EC(fh.v[0].injected.esr), 0x30);
	ck_assert_uint_eq(fh.v[0].injected.pc, 0x400);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);

	/* The guest's handler: its slot off, its step armed (or not). */
	fh.guest.ctrl[KVMDBG_POOL_BP][0] = 0;
	fh.v[0].elr_el1 = 0x400;
	fh.v[0].spsr_el1 = arms_ss ? PS_SS : 0; /* EL0t */
	if (arms_ss)
		fh.guest.mdscr |= MDSCR_SS;
	arm64_exit(0, ESR_FOR_EC(0x30) | 0x22, 0x400, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e->v[0], ev), 0);
	ck_assert_int_eq(ev->kind, KVMDBG_STOP_NONE);
}

START_TEST(test_overlay_arm64_guest_step)
{
	struct kvmdbg_guest_regs g;
	struct kvmdbg_event ev;
	struct env e;

	env_new_overlay(&e, KVMDBG_ARCH_ARM64, 0, KVMDBG_OVERLAY_GUEST);
	arm64_guest_bp_rehit(&e, true, &ev);
	g = fh.guest;
	/* The library steps the instruction itself: interrupts masked, the
	 * guest's slot gone from the hardware, nothing injected yet. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	ck_assert_int_eq(fh.v[0].step_armed_calls, 1);
	ck_assert_int_eq(fh.v[0].mask_calls, 1);
	ck_assert_uint_eq(fh.v[0].mask_pc, 0x400);
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_BP), 1); /* the host's */
	ck_assert_int_eq(fh.v[0].inject_calls, 1);
	ck_assert_int_eq(kvmdbg_vcpu_is_stepping(e.v[0]), 1);
	/* Its step exit: the guest's own, at the next instruction; nothing for
	 * the host's debugger. */
	arm64_exit(0, ESR_STEP_EXIT, 0x404, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_uint_eq(ev.pc, 0x404);
	ck_assert_uint_eq(ev.hits, 0);
	ck_assert_int_eq(ev.stepped, 0);
	ck_assert_int_eq(fh.v[0].pc_unread_exits, 0);
	ck_assert_int_eq(fh.v[0].restore_calls, 1);
	/* The guest gets its step exception: the syndrome of the step the
	 * hardware took (EC 0x32, which the glue makes 0x33 for EL1; IL, ISV,
	 * EX 0, IFSC 0x22), ELR the next instruction; the step ends and the
	 * guest's registers are as it left them. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 2);
	ck_assert_uint_eq(fh.v[0].injected.esr, ESR_FOR_EC(0x32) | 1u << 24 | 0x22u);
	ck_assert_uint_eq(fh.v[0].injected.pc, 0x404);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	ck_assert_int_eq(kvmdbg_vcpu_is_stepping(e.v[0]), 0);
	ck_assert_mem_eq(&g, &fh.guest, sizeof(g));
	/* Its handler re-arms its breakpoint without an exit: a slot on
	 * 0x404, where the exception returns to, makes one. */
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_BP), 2);
	ck_assert_uint_eq(fh.v[0].hw.slot[KVMDBG_POOL_BP][1].value, 0x404);
	ck_assert_uint_eq(owner_of(e.v[0], 1), KVMDBG_OWNER_RESUME);
	fh.guest.ctrl[KVMDBG_POOL_BP][0] = GBCR_EL0;
	fh.guest.mdscr &= ~MDSCR_SS;
	arm64_exit(0, ESR_FOR_EC(0x30) | 0x22, 0x404, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	/* Re-read there: the guest's slot is back, the catch gone, nothing
	 * stepped or injected. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(enabled_slots(&fh.v[0], KVMDBG_POOL_BP), 2);
	ck_assert_uint_eq(fh.v[0].hw.slot[KVMDBG_POOL_BP][1].value, 0x400);
	ck_assert_uint_eq(owner_of(e.v[0], 1), KVMDBG_OWNER_GUEST_ID(KVMDBG_POOL_BP, 0));
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 2);
	/* Its next hit is its own again. */
	arm64_exit(0, ESR_FOR_EC(0x30) | 0x22, 0x400, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 3);
	ck_assert_uint_eq(fh.v[0].injected.pc, 0x400);
	fh.guest.ctrl[KVMDBG_POOL_BP][0] = 0;

	/* From EL1 (KDE, PSTATE.D clear) as well, after an exit the guest's
	 * registers did not change; a load-exclusive stepped: EX as the
	 * hardware says. */
	fh.guest.mdscr |= MDSCR_SS;
	fh.v[0].el = 1;
	fh.v[0].daif = PS_AIF;
	fh.v[0].elr_el1 = 0x500;
	fh.v[0].spsr_el1 = PS_SS | PS_MODE_EL1h;
	arm64_exit(0, ESR_FOR_EC(0x30) | 0x22, 0x500, 0); /* a stale exit at 0x500 */
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	arm64_exit(0, ESR_STEP_EXIT | 1u << 6, 0x504, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 4);
	ck_assert_uint_eq(fh.v[0].injected.esr, ESR_FOR_EC(0x32) | 1u << 24 | 1u << 6 | 0x22u);
	ck_assert_uint_eq(fh.v[0].injected.pc, 0x504);
	fh.v[0].daif = PS_DAIF;
	env_free(&e);
}
END_TEST

START_TEST(test_overlay_arm64_guest_step_not_armed)
{
	struct kvmdbg_event ev;
	struct env e;

	/* SS clear: the re-hit is run again, no step, nothing injected. */
	env_new_overlay(&e, KVMDBG_ARCH_ARM64, 0, KVMDBG_OVERLAY_GUEST);
	arm64_guest_bp_rehit(&e, false, &ev);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	ck_assert_int_eq(fh.v[0].mask_calls, 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 1);

	/* SS set but the vCPU is not where the guest returned to (ELR_EL1
	 * elsewhere), or at EL1 with PSTATE.D set: no step either. */
	fh.guest.mdscr |= MDSCR_SS;
	fh.v[0].spsr_el1 = PS_SS;
	fh.v[0].elr_el1 = 0x408;
	arm64_exit(0, ESR_FOR_EC(0x30) | 0x22, 0x400, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	fh.v[0].el = 1;
	fh.v[0].elr_el1 = 0x400;
	fh.v[0].spsr_el1 = PS_SS | PS_MODE_EL1h;
	arm64_exit(0, ESR_FOR_EC(0x30) | 0x22, 0x400, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 1);

	/* A host step-over's own step (gdb's continue from its breakpoint)
	 * while the guest's SS is set: the host's, nothing given to the guest. */
	arm64_exit(0, ESR_FOR_EC(0x30), 0x1000, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	arm64_exit(0, ESR_STEP_EXIT, 0x1004, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 1);

	/* At EL0 with SPSR_EL1 of EL1h (not where the guest returned to):
	 * no step. */
	fh.v[0].el = 0;
	arm64_exit(0, ESR_FOR_EC(0x30) | 0x22, 0x400, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 1);

	/* Armed, where the guest returned to, at EL0, SPSR_EL1.SS lost to an
	 * interrupt the guest took before the instruction: the emulated step. */
	fh.v[0].spsr_el1 = 0;
	arm64_exit(0, ESR_FOR_EC(0x30) | 0x22, 0x400, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	arm64_exit(0, ESR_STEP_EXIT, 0x404, 0);
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e.v[0], &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v[0]), 0);
	ck_assert_int_eq(fh.v[0].inject_calls, 2);
	ck_assert_uint_eq(ESR_EC(fh.v[0].injected.esr), 0x32);
	ck_assert_uint_eq(fh.v[0].injected.pc, 0x404);
	ck_assert_int_eq(fh.v[0].step_armed_calls, 4);
	env_free(&e);
}
END_TEST

START_TEST(test_overlay_api_errors)
{
	struct kvmdbg_overlay_stats st = {.sz = sizeof(st)};
	struct kvmdbg_vm_opts o = {.sz = sizeof(o), .overlay = KVMDBG_OVERLAY_GUEST};
	struct kvmdbg_host_ops no_regs;
	struct kvmdbg_vm *vm;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	ck_assert_int_eq(kvmdbg_vcpu_overlay_stats(e.v[0], &st), -EOPNOTSUPP);
	ck_assert_int_eq(kvmdbg_vcpu_refresh_guest(e.v[0]), -EOPNOTSUPP);
	ck_assert_int_eq(kvmdbg_vcpu_refresh_guest(NULL), -EINVAL);
	ck_assert_int_eq(kvmdbg_vcpu_overlay_stats(NULL, &st), -EINVAL);
	st.sz = 0;
	ck_assert_int_eq(kvmdbg_vcpu_overlay_stats(e.v[0], &st), -EINVAL);
	env_free(&e);
	/* A host that cannot read the guest's registers cannot overlay. */
	no_regs = *fake_host(KVMDBG_ARCH_ARM64);
	no_regs.read_guest_regs = NULL;
	fh.caps.guest_state = 0;
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, &no_regs, &fh, &vm), -EOPNOTSUPP);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(kvmdbg_stop_name(KVMDBG_STOP_WATCH), "watch");
	ck_assert_str_eq(kvmdbg_stop_name((enum kvmdbg_stop)99), "unknown");
	ck_assert_str_eq(kvmdbg_type_name(KVMDBG_WATCH_ACCESS), "watch-access");
	ck_assert_str_eq(kvmdbg_type_name((enum kvmdbg_type)99), "unknown");
	ck_assert_uint_eq(kvmdbg_type_feature(KVMDBG_BREAK_SW), KVMDBG_FEAT_SW_BREAK);
	ck_assert_uint_eq(kvmdbg_type_feature(KVMDBG_BREAK_HW), KVMDBG_FEAT_HW_BREAK);
	ck_assert_uint_eq(kvmdbg_type_feature(KVMDBG_WATCH_WRITE), KVMDBG_FEAT_WATCH_WRITE);
	ck_assert_uint_eq(kvmdbg_type_feature(KVMDBG_WATCH_READ), KVMDBG_FEAT_WATCH_READ);
	ck_assert_uint_eq(kvmdbg_type_feature(KVMDBG_WATCH_ACCESS), KVMDBG_FEAT_WATCH_ACCESS);
	ck_assert_uint_eq(kvmdbg_type_feature((enum kvmdbg_type)99), 0);
	/* Every named feature bit, then NULL: a caller can list them. */
	for (unsigned int b = 0; b < 13; b++)
		ck_assert_ptr_nonnull(kvmdbg_feature_name(1ull << b));
	ck_assert_ptr_null(kvmdbg_feature_name(1ull << 13));
	ck_assert_str_eq(kvmdbg_feature_name(KVMDBG_FEAT_GUEST_REGS_RAW), "guest_regs_raw");
	ck_assert_str_eq(kvmdbg_feature_name(KVMDBG_FEAT_VERIFIED), "verified");
}
END_TEST

TEST_SUITE(core)
{
	add_test(tc, test_slots_all_or_nothing);
	add_test(tc, test_swtab_model);
	add_test(tc, test_swtab_filter);
	add_test(tc, test_for_each_slot);
	add_test(tc, test_vm_new_errors);
	add_test(tc, test_vm_opts_sized);
	add_test(tc, test_insert_errors_change_nothing);
	add_test(tc, test_refcounts);
	add_test(tc, test_sw_memory_failures);
	add_test(tc, test_vm_free_restores_memory);
	add_test(tc, test_sw_break_top_address);
	add_test(tc, test_points_array_full);
	add_test(tc, test_vm_free_busy);
	add_test(tc, test_point_ids_unique);
	add_test(tc, test_prepare_generation);
	add_test(tc, test_x86_hw_break_stepover);
	add_test(tc, test_x86_rf_resume);
	add_test(tc, test_x86_rf_resume_sw_inserted_at_hit);
	add_test(tc, test_x86_rf_resume_points_changed_at_stop);
	add_test(tc, test_x86_step_onto_breakpoint);
	add_test(tc, test_x86_stale_and_removed);
	add_test(tc, test_x86_guest_reinjection);
	add_test(tc, test_x86_stale_b_bits_not_injected);
	add_test(tc, test_x86_guest_only_causes);
	add_test(tc, test_x86_watch_trap);
	add_test(tc, test_x86_sw_break);
	add_test(tc, test_sw_removed_while_lifted);
	add_loop_test(tc, test_sw_hit_noted, 0, ARRAY_SIZE(sw_arches));
	add_loop_test(tc, test_sw_reinserted_while_lifted, 0, ARRAY_SIZE(sw_arches));
	add_loop_test(tc, test_sw_stepover_other_vcpu_caught, 0, ARRAY_SIZE(sw_arches));
	add_test(tc, test_regs_changed_stepover);
	add_test(tc, test_x86_rep_string_stepover);
	add_test(tc, test_x86_data_addr_of_reported_point);
	add_test(tc, test_arm64_break_watch_stepover);
	add_test(tc, test_arm64_brk);
	add_test(tc, test_arm64_ioctls_per_hit);
	add_test(tc, test_arm64_user_step_masks);
	add_test(tc, test_arm64_user_step_daifclr);
	add_test(tc, test_arm64_user_step_daifset);
	add_test(tc, test_arm64_user_step_mmio);
	add_test(tc, test_arm64_user_step_with_stepover);
	add_test(tc, test_arm64_user_step_failures);
	add_test(tc, test_arm64_user_step_resume_fast_mask);
	add_test(tc, test_user_step_blockirq_no_mask);
	add_loop_test(tc, test_sw_break_on_guest_insn, 0, ARRAY_SIZE(sw_arches));
	add_loop_test(tc, test_stepover_fast_round_trip, 0, ARRAY_SIZE(sw_arches));
	add_loop_test(tc, test_stepover_fast_set_changes, 0, ARRAY_SIZE(sw_arches));
	add_loop_test(tc, test_stepover_fast_not_with_cover, 0, ARRAY_SIZE(sw_arches));
	add_loop_test(tc, test_stepover_fast_failures, 0, ARRAY_SIZE(sw_arches));
	add_test(tc, test_stepover_end_on_breakpoint);
	add_test(tc, test_stepover_end_guest_cause);
	add_test(tc, test_stepover_end_guest_regs);
	add_test(tc, test_stepover_overlay_composes);
	add_test(tc, test_stepover_fast_many_slots);
	add_loop_test(tc, test_cover_one_vcpu, 0, ARRAY_SIZE(sw_arches));
	add_loop_test(tc, test_cover_bump_two_vcpus, 0, ARRAY_SIZE(sw_arches));
	add_loop_test(tc, test_vcpu_seen_published, 0, ARRAY_SIZE(sw_arches));
	add_loop_test(tc, test_cover_bump_insert_between, 0, ARRAY_SIZE(sw_arches));
	add_loop_test(tc, test_cover_finish_unlift, 0, ARRAY_SIZE(sw_arches));
	add_test(tc, test_arm64_sw_lift_then_mask);
	add_test(tc, test_overlay_merge_route_suspend);
	add_test(tc, test_overlay_sanitise);
	add_test(tc, test_overlay_gd_exit);
	add_test(tc, test_overlay_guest_bp_live);
	add_test(tc, test_overlay_api_errors);
	add_test(tc, test_overlay_arm64_guest_step);
	add_test(tc, test_overlay_arm64_guest_step_not_armed);
	add_test(tc, test_names);
}
