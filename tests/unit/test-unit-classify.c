/* SPDX-License-Identifier: MIT */
/*
 * The phases of kvmdbg_vcpu_handle_exit() (lib/classify.c) one at a time,
 * without host ops: a VM and a vCPU set up by hand around a host glue whose
 * every op is NULL (a call would crash), a decoded exit filled in directly,
 * and guest memory in an array.
 */
#include <string.h>

#include "kvmdbg-int.h"
#include "test-common.h"

static const struct kvmdbg_host_ops no_host; /* every op NULL */

#define MEM_SIZE 0x4000
static uint8_t mem[MEM_SIZE];

static int mem_read(void *ctx, uint64_t gva, void *buf, size_t len)
{
	(void)ctx;
	if (gva >= MEM_SIZE || len > MEM_SIZE - gva)
		return -14; /* -EFAULT */
	memcpy(buf, mem + gva, len);
	return 0;
}

static int mem_write(void *ctx, uint64_t gva, const void *buf, size_t len)
{
	(void)ctx;
	if (gva >= MEM_SIZE || len > MEM_SIZE - gva)
		return -14;
	memcpy(mem + gva, buf, len);
	return 0;
}

static const struct kvmdbg_mem_ops mem_ops = {.read = mem_read, .write = mem_write};

static struct {
	struct kvmdbg_vm vm;
	struct kvmdbg_vcpu v;
	struct kvmdbg_classify c;
	struct kvmdbg_event ev;
} e;

static void env(const struct kvmdbg_arch_ops *a)
{
	kvmdbg_swtab_fini(&e.vm.sw);
	memset(&e, 0, sizeof(e));
	memset(mem, 0x90, sizeof(mem));
	e.vm.host = &no_host;
	e.vm.arch = a;
	e.vm.mem = &mem_ops;
	e.vm.mem_write = mem_ops.write;
	kvmdbg_mutex_init(&e.vm.lock);
	atomic_init(&e.vm.gen, 1);
	atomic_init(&e.vm.hw_gen, 1); /* as kvmdbg_vm_new_host: no vCPU copy of the points (pts_gen 0) */
	e.vm.lim.nr[KVMDBG_POOL_BP] = 4;
	e.vm.lim.nr[KVMDBG_POOL_WP] = a->shared_pool ? 0 : 4;
	kvmdbg_slots_init(&e.vm.slots, &e.vm.lim);
	e.v.vm = &e.vm;
	e.v.fd = -1;
	e.vm.vcpus = &e.v;
	e.vm.nr_vcpus = 1;
	/* What kvmdbg_vcpu_new gives a vCPU of the VM's. */
	e.v.hot = e.vm.hot;
	kvmdbg_seen_publish_locked(&e.vm, &e.v);
	e.ev.kind = KVMDBG_STOP_NONE;
	e.ev.write = -1;
}

/* A host point of the table in hardware slot (pool, slot), as applied. */
static void point(unsigned int i, uint32_t id, enum kvmdbg_type type, uint64_t addr,
		  unsigned int pool, unsigned int slot)
{
	e.vm.points[i] = (struct kvmdbg_hwpoint){
		.id = id, .type = type, .addr = addr, .len = 1, .refs = 1,
		.slots = KVMDBG_HIT_BIT(pool, slot)};
	e.v.applied_owner[pool][slot] = id;
	e.v.applied.slot[pool][slot] = (struct kvmdbg_hwslot){
		.value = addr, .ctrl = 0x100, .start = addr, .len = 1};
}

static void our_swbp(uint64_t addr)
{
	struct kvmdbg_swbp *b;

	ck_assert_int_eq(kvmdbg_swtab_reserve(&e.vm.sw), 0);
	b = kvmdbg_swtab_add(&e.vm.sw, addr);
	b->refs = 1;
	memcpy(mem + addr, e.vm.arch->sw_insn, e.vm.arch->sw_len);
}

START_TEST(test_classify_hits_to_points)
{
	env(&kvmdbg_x86_ops);
	point(0, 7, KVMDBG_WATCH_WRITE, 0x2000, KVMDBG_POOL_BP, 0);
	point(1, 8, KVMDBG_BREAK_HW, 0x1000, KVMDBG_POOL_BP, 1);
	/* Slot 2's point was removed since the vCPU prepared. */
	e.v.applied_owner[KVMDBG_POOL_BP][2] = 9;
	e.c.ex.pc = 0x1000;
	e.c.dec.hits = 0x7;
	kvmdbg_classify_hits(&e.v, &e.c, &e.ev);
	ck_assert_uint_eq(e.ev.hits, 0x3);
	/* The execution breakpoint wins over the watchpoint. */
	ck_assert(e.c.have_hit);
	ck_assert_uint_eq(e.c.hit.id, 8);
	ck_assert(!e.c.guest);
	kvmdbg_classify_event(&e.v, &e.c, &e.ev);
	ck_assert_int_eq(e.ev.kind, KVMDBG_STOP_BREAK);
	ck_assert_int_eq(e.ev.type, KVMDBG_BREAK_HW);
	ck_assert_uint_eq(e.ev.addr, 0x1000);

	/* The watchpoint alone: x86 reports the slot's start as data_addr. */
	env(&kvmdbg_x86_ops);
	point(0, 7, KVMDBG_WATCH_WRITE, 0x2000, KVMDBG_POOL_BP, 3);
	e.c.dec.hits = 0x8;
	kvmdbg_classify_hits(&e.v, &e.c, &e.ev);
	kvmdbg_classify_event(&e.v, &e.c, &e.ev);
	ck_assert_int_eq(e.ev.kind, KVMDBG_STOP_WATCH);
	ck_assert_uint_eq(e.ev.data_addr, 0x2000);
	ck_assert_int_eq(e.ev.write, 1);

	/* Only the removed point's slot: nothing to report. */
	env(&kvmdbg_x86_ops);
	e.v.applied_owner[KVMDBG_POOL_BP][2] = 9;
	e.c.dec.hits = 0x4;
	kvmdbg_classify_hits(&e.v, &e.c, &e.ev);
	kvmdbg_classify_event(&e.v, &e.c, &e.ev);
	kvmdbg_classify_guest(&e.v, &e.c, &e.ev);
	ck_assert_int_eq(e.ev.kind, KVMDBG_STOP_NONE);
	ck_assert(!e.c.guest);
}
END_TEST

START_TEST(test_classify_guest_slot)
{
	const struct kvmdbg_hwslot g = {.value = 0x3000, .ctrl = 0x100, .start = 0x3000, .len = 1};

	/* The guest's register 2, merged into hardware slot 0. */
	env(&kvmdbg_x86_ops);
	e.v.applied_owner[KVMDBG_POOL_BP][0] = KVMDBG_OWNER_GUEST_ID(KVMDBG_POOL_BP, 2);
	e.v.applied.slot[KVMDBG_POOL_BP][0] = g;
	e.v.guest.slot[KVMDBG_POOL_BP][2] = g;
	e.c.ex.pc = 0x3000;
	e.c.dec.hits = 0x1;
	kvmdbg_classify_hits(&e.v, &e.c, &e.ev);
	ck_assert(e.c.guest);
	ck_assert_uint_eq(e.c.guest_hw, 0x1);
	ck_assert_uint_eq(e.c.cause.slots, KVMDBG_HIT_BIT(KVMDBG_POOL_BP, 2));
	ck_assert_uint_eq(e.ev.hits, 0);
	/* Given back under its own number: DR6.B2. */
	kvmdbg_classify_finish(&e.v, &e.c, &e.ev);
	ck_assert_int_eq(e.ev.kind, KVMDBG_STOP_GUEST);
	ck_assert(e.v.reinject.pending);
	ck_assert_uint_eq(e.v.reinject.exception, 1);
	ck_assert_uint_eq(e.v.reinject.dr6, 1u << 2);
	ck_assert_uint_eq(e.v.so.state, KVMDBG_SO_NONE);

	/* Moved by the guest since the merge: stale, nobody's. */
	env(&kvmdbg_x86_ops);
	e.v.applied_owner[KVMDBG_POOL_BP][0] = KVMDBG_OWNER_GUEST_ID(KVMDBG_POOL_BP, 2);
	e.v.applied.slot[KVMDBG_POOL_BP][0] = g;
	e.v.guest.slot[KVMDBG_POOL_BP][2] = g;
	e.v.guest.slot[KVMDBG_POOL_BP][2].start = 0x3004;
	e.c.dec.hits = 0x1;
	kvmdbg_classify_hits(&e.v, &e.c, &e.ev);
	kvmdbg_classify_guest(&e.v, &e.c, &e.ev);
	ck_assert(!e.c.guest);
}
END_TEST

START_TEST(test_classify_swbp_whose)
{
	const struct kvmdbg_arch_ops *arches[] = {&kvmdbg_x86_ops, &kvmdbg_arm64_ops};

	for (unsigned int i = 0; i < 2; i++) {
		const struct kvmdbg_arch_ops *a = arches[i];

		/* Ours, in the table: a break at it. */
		env(a);
		our_swbp(0x100);
		e.c.ex.pc = 0x100;
		e.c.dec.swbp = e.c.dec.swbp_our_kind = true;
		ck_assert_int_eq(kvmdbg_classify_swbp(&e.v, &e.c), 0);
		ck_assert_int_eq(e.c.sw, KVMDBG_SW_OURS);
		kvmdbg_classify_hits(&e.v, &e.c, &e.ev);
		ck_assert_int_eq(e.ev.kind, KVMDBG_STOP_BREAK);
		ck_assert_int_eq(e.ev.type, KVMDBG_BREAK_SW);
		ck_assert_uint_eq(e.ev.len, a->sw_len);

		/* Not in the table, our instruction in memory: the guest's. */
		env(a);
		memcpy(mem + 0x100, a->sw_insn, a->sw_len);
		e.c.ex.pc = 0x100;
		e.c.dec.swbp = e.c.dec.swbp_our_kind = true;
		ck_assert_int_eq(kvmdbg_classify_swbp(&e.v, &e.c), 0);
		ck_assert_int_eq(e.c.sw, KVMDBG_SW_GUEST);
		kvmdbg_classify_hits(&e.v, &e.c, &e.ev);
		ck_assert(e.c.guest && e.c.cause.swbp);

		/* Removed since: the guest's bytes are back, run again. */
		env(a);
		e.c.ex.pc = 0x100;
		e.c.dec.swbp = e.c.dec.swbp_our_kind = true;
		ck_assert_int_eq(kvmdbg_classify_swbp(&e.v, &e.c), 0);
		ck_assert_int_eq(e.c.sw, KVMDBG_SW_STALE);
		kvmdbg_classify_hits(&e.v, &e.c, &e.ev);
		kvmdbg_classify_guest(&e.v, &e.c, &e.ev);
		ck_assert_int_eq(e.ev.kind, KVMDBG_STOP_NONE);
		ck_assert(!e.c.guest);

		/* Not of our kind (arm64: another BRK immediate): the guest's,
		 * without a look at memory; a failed read fails the phase. */
		env(a);
		our_swbp(0x100);
		e.c.ex.pc = 0x100;
		e.c.dec.swbp = true;
		ck_assert_int_eq(kvmdbg_classify_swbp(&e.v, &e.c), 0);
		ck_assert_int_eq(e.c.sw, KVMDBG_SW_GUEST);
		env(a);
		e.c.ex.pc = MEM_SIZE;
		e.c.dec.swbp = e.c.dec.swbp_our_kind = true;
		ck_assert_int_lt(kvmdbg_classify_swbp(&e.v, &e.c), 0);
	}
}
END_TEST

START_TEST(test_classify_guest_causes)
{
	/* A step the vCPU did not ask for: the guest's (x86 BS). */
	env(&kvmdbg_x86_ops);
	e.c.dec.step = true;
	ck_assert_int_eq(kvmdbg_classify_stepover_end(&e.v, &e.c), 0);
	ck_assert(!e.c.ours_step);
	kvmdbg_classify_event(&e.v, &e.c, &e.ev);
	kvmdbg_classify_guest(&e.v, &e.c, &e.ev);
	ck_assert(e.c.guest && e.c.cause.step);
	kvmdbg_classify_finish(&e.v, &e.c, &e.ev);
	ck_assert_uint_eq(e.v.reinject.dr6, 1u << 14);

	/* The user's step: a step stop, nothing for the guest. */
	env(&kvmdbg_x86_ops);
	e.v.user_step = true;
	e.v.applied_ctl = KVMDBG_CTL_ENABLE | KVMDBG_CTL_STEP;
	e.c.ex.pc = 0x1234;
	e.c.dec.step = true;
	ck_assert_int_eq(kvmdbg_classify_stepover_end(&e.v, &e.c), 0);
	kvmdbg_classify_event(&e.v, &e.c, &e.ev);
	kvmdbg_classify_guest(&e.v, &e.c, &e.ev);
	kvmdbg_classify_finish(&e.v, &e.c, &e.ev);
	ck_assert_int_eq(e.ev.kind, KVMDBG_STOP_STEP);
	ck_assert(e.ev.stepped);
	ck_assert(!e.c.guest && !e.v.reinject.pending);
	ck_assert_uint_eq(e.v.so.state, KVMDBG_SO_ARMED);
	ck_assert_uint_eq(e.v.so.pc, 0x1234);

	/* A cause only the guest sets up (x86 BT), with its raw bit. */
	env(&kvmdbg_x86_ops);
	e.c.dec.guest_only = true;
	e.c.dec.raw.x86.dr6_other = 1u << 15;
	kvmdbg_classify_guest(&e.v, &e.c, &e.ev);
	ck_assert(e.c.guest);
	kvmdbg_classify_finish(&e.v, &e.c, &e.ev);
	ck_assert_uint_eq(e.v.reinject.dr6, 1u << 15);

	/* Its own debug-register access trap (x86 BD). */
	env(&kvmdbg_x86_ops);
	e.c.guest_dbg_access = true;
	kvmdbg_classify_guest(&e.v, &e.c, &e.ev);
	kvmdbg_classify_finish(&e.v, &e.c, &e.ev);
	ck_assert_uint_eq(e.v.reinject.dr6, 1u << 13);

	/* arm64: the guest's BRK goes back as it came. */
	env(&kvmdbg_arm64_ops);
	e.c.ex = (struct kvmdbg_exit){.esr = 0xf2000123, .pc = 0x2000};
	e.c.sw = KVMDBG_SW_GUEST;
	e.c.dec.swbp = true;
	kvmdbg_classify_hits(&e.v, &e.c, &e.ev);
	kvmdbg_classify_guest(&e.v, &e.c, &e.ev);
	kvmdbg_classify_finish(&e.v, &e.c, &e.ev);
	ck_assert_int_eq(e.ev.kind, KVMDBG_STOP_GUEST);
	ck_assert_uint_eq(e.v.reinject.esr, 0xf2000123);
	ck_assert_uint_eq(e.v.reinject.pc, 0x2000);

	/* Nothing at all explains it: run again. */
	env(&kvmdbg_x86_ops);
	kvmdbg_classify_guest(&e.v, &e.c, &e.ev);
	kvmdbg_classify_finish(&e.v, &e.c, &e.ev);
	ck_assert(!e.c.guest && !e.v.reinject.pending);
	ck_assert_uint_eq(e.v.so.state, KVMDBG_SO_NONE);
}
END_TEST

START_TEST(test_classify_dbg_access_handshake)
{
	env(&kvmdbg_x86_ops);
	e.v.applied_ctl = KVMDBG_CTL_ENABLE | KVMDBG_CTL_HW | KVMDBG_CTL_GD;
	e.c.dec.dbg_access = true;
	/* Ours: the guest's MOV DR runs alone next. */
	ck_assert(kvmdbg_classify_dbg_access(&e.v, &e.c));
	ck_assert(e.v.gd_stepping && e.v.dirty);
	/* The step that ran it: back to normal, classified further. */
	memset(&e.c, 0, sizeof(e.c));
	e.c.dec.step = true;
	e.v.dirty = false;
	ck_assert(!kvmdbg_classify_dbg_access(&e.v, &e.c));
	ck_assert(!e.v.gd_stepping && e.v.dirty);
	/* Without our GD applied, the trap is not ours. */
	e.v.applied_ctl = KVMDBG_CTL_ENABLE | KVMDBG_CTL_HW;
	e.c.dec.dbg_access = true;
	ck_assert(!kvmdbg_classify_dbg_access(&e.v, &e.c));
	ck_assert(!e.v.gd_stepping);
}
END_TEST

START_TEST(test_classify_stepover_end)
{
	/* x86 REP MOVSB under a step past a breakpoint: the step goes on. */
	env(&kvmdbg_x86_ops);
	mem[0x200] = 0xf3;
	mem[0x201] = 0xa4;
	e.v.applied_ctl = KVMDBG_CTL_ENABLE | KVMDBG_CTL_STEP;
	e.v.so = (struct kvmdbg_stepover){.state = KVMDBG_SO_STEPPING, .pc = 0x200, .slots = 0x1};
	e.c.ex.pc = 0x200;
	e.c.dec.step = true;
	ck_assert_int_eq(kvmdbg_classify_stepover_end(&e.v, &e.c), 1);
	ck_assert_uint_eq(e.v.so.state, KVMDBG_SO_STEPPING);
	/* The PC moved: the step-over is over. */
	e.c.ex.pc = 0x202;
	ck_assert_int_eq(kvmdbg_classify_stepover_end(&e.v, &e.c), 0);
	ck_assert(e.c.ours_step);
	ck_assert_uint_eq(e.v.so.state, KVMDBG_SO_NONE);
	ck_assert_uint_eq(e.v.so.slots, 0);
	ck_assert_uint_eq(e.c.restep_slots, 0);

	/* arm64: a watchpoint fired at the PC stepped from keeps what the
	 * step disarmed for the next step, and the watch stop arms it. */
	env(&kvmdbg_arm64_ops);
	point(0, 5, KVMDBG_WATCH_WRITE, 0x3000, KVMDBG_POOL_WP, 1);
	e.v.applied_ctl = KVMDBG_CTL_ENABLE | KVMDBG_CTL_STEP | KVMDBG_CTL_HW;
	e.v.so = (struct kvmdbg_stepover){.state = KVMDBG_SO_STEPPING, .pc = 0x400,
					  .slots = KVMDBG_HIT_BIT(KVMDBG_POOL_WP, 0)};
	e.v.so.owner[KVMDBG_POOL_WP][0] = 4; /* the point the step kept out */
	e.c.ex.pc = 0x400;
	e.c.dec.hits = KVMDBG_HIT_BIT(KVMDBG_POOL_WP, 1);
	ck_assert_int_eq(kvmdbg_classify_stepover_end(&e.v, &e.c), 0);
	ck_assert_uint_eq(e.c.restep_slots, KVMDBG_HIT_BIT(KVMDBG_POOL_WP, 0));
	kvmdbg_classify_hits(&e.v, &e.c, &e.ev);
	kvmdbg_classify_event(&e.v, &e.c, &e.ev);
	kvmdbg_classify_guest(&e.v, &e.c, &e.ev);
	kvmdbg_classify_finish(&e.v, &e.c, &e.ev);
	ck_assert_int_eq(e.ev.kind, KVMDBG_STOP_WATCH);
	ck_assert_uint_eq(e.v.so.state, KVMDBG_SO_ARMED);
	ck_assert_uint_eq(e.v.so.slots, KVMDBG_HIT_BIT(KVMDBG_POOL_WP, 0) |
						KVMDBG_HIT_BIT(KVMDBG_POOL_WP, 1));
	/* Each for its owner: the one kept out, the one that fired. */
	ck_assert_uint_eq(e.v.so.owner[KVMDBG_POOL_WP][0], 4);
	ck_assert_uint_eq(e.v.so.owner[KVMDBG_POOL_WP][1], 5);
}
END_TEST

TEST_SUITE(classify)
{
	add_test(tc, test_classify_hits_to_points);
	add_test(tc, test_classify_guest_slot);
	add_test(tc, test_classify_swbp_whose);
	add_test(tc, test_classify_guest_causes);
	add_test(tc, test_classify_dbg_access_handshake);
	add_test(tc, test_classify_stepover_end);
}
