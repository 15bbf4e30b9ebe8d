/* SPDX-License-Identifier: MIT */
/*
 * Suite `replay` (unit, fake KVM): the DR6 and ESR patterns real CPUs give,
 * replayed through handle_exit and the next prepare (issue 12). What is
 * asserted is the invariant: the library gives the guest a debug exception
 * only when it can show it is the guest's (a guest slot that is enabled and
 * matched, the guest's own TF, ICEBP, an INT3 or BRK that is not ours,
 * BLD); a guest that never programmed its debug registers (the fake's guest
 * registers at their reset values) never receives one.
 *
 * x86 DR6 as KVM reports it (raw): the active-low bits (4-11, 16 and up) read
 * 1 when inactive, so BLD (bit 11) and RTM (bit 16) are present when clear.
 * Each case runs with opts.features 0 (nothing verified, how a new user
 * starts), with the verified set of a hardware KVM and with GUEST_BP_LIVE
 * (a software KVM), overlay off.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <linux/kvm.h>

#include "arch/arm64/regs.h"
#include "arch/x86/regs.h"
#include "fake-host.h"
#include "kvmdbg-int.h"
#include "test-common.h"

#define MEM_SIZE 0x10000


static struct kvm_run runs[2];

struct env {
	struct kvmdbg_vm *vm;
	struct kvmdbg_vcpu *v;
};

static const uint64_t x86_feature_sets[] = {
	0,
	/* A hardware KVM (VMX/SVM): the guest's breakpoints are not live
	 * beside the host's. */
	KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_STEP | KVMDBG_FEAT_BLOCK_IRQ | KVMDBG_FEAT_HW_BREAK |
		KVMDBG_FEAT_WATCH_WRITE | KVMDBG_FEAT_WATCH_ACCESS | KVMDBG_FEAT_INJECT_DB |
		KVMDBG_FEAT_INJECT_BP | KVMDBG_FEAT_RF_RESUME,
	/* A software KVM: they are. */
	KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_STEP | KVMDBG_FEAT_HW_BREAK | KVMDBG_FEAT_INJECT_DB |
		KVMDBG_FEAT_GUEST_BP_LIVE,
};
#define NR_FEATURE_SETS (sizeof(x86_feature_sets) / sizeof(x86_feature_sets[0]))

static void env_new(struct env *e, enum kvmdbg_arch arch, uint64_t features)
{
	struct kvmdbg_vm_opts o = {.sz = sizeof(o), .mem = &fh_mem_ops, .mem_ctx = &fh, .features = features};

	fh_reset(arch);
	fh_mem_resize(MEM_SIZE);
	/* The guest's own registers at their reset values: never programmed. */
	memset(&fh.guest, 0, sizeof(fh.guest));
	if (arch == KVMDBG_ARCH_X86_64) {
		fh.guest.nr[KVMDBG_POOL_BP] = 4;
		fh.guest.dr6 = DR6_ACTIVE_LOW;
		fh.guest.dr7 = 0x400;
	} else {
		fh.guest.nr[KVMDBG_POOL_BP] = 6;
		fh.guest.nr[KVMDBG_POOL_WP] = 4;
	}
	memset(runs, 0, sizeof(runs));
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, fh_host(), &fh, &e->vm), 0);
	ck_assert_int_eq(kvmdbg_vcpu_new(e->vm, 0, &runs[0], &e->v), 0);
	runs[0].exit_reason = KVM_EXIT_DEBUG;
}

static void env_free(struct env *e)
{
	kvmdbg_vcpu_free(e->v);
	ck_assert_int_eq(kvmdbg_vm_free(e->vm), 0);
}

/* Instruction bytes at a guest address (none of them 0xf1 unless asked). */
static void put(uint64_t at, const uint8_t *b, size_t n)
{
	memcpy(fh.mem + at, b, n);
}

static void x86_exit(uint32_t exc, uint64_t pc, uint64_t raw_dr6, uint64_t dr7)
{
	fh.v[0].exit = (struct kvmdbg_exit){.exception = exc, .pc = pc, .dr6 = raw_dr6, .dr7 = dr7};
	fh.v[0].pc = pc;
}

/* handle_exit, then the next prepare: the kind, and whether anything was
 * injected (the fake's inject op, which x86 INJECT_DB/BP and arm64's
 * emulated entry both go through). */
static enum kvmdbg_stop replay(struct env *e, struct kvmdbg_event *ev, bool *injected)
{
	unsigned int before = fh.v[0].inject_calls;

	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e->v, ev), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e->v), 0);
	*injected = fh.v[0].inject_calls != before;
	return ev->kind;
}

/* What the guest got from replay(): its own stop and an injection
 * (GUEST), neither (NOT_GUEST), or no stop at all and nothing (NOTHING);
 * the message names the feature set and the case (printf FMT...). */
enum expect { NOT_GUEST, GUEST, NOTHING };

static void __attribute__((format(printf, 5, 6)))
expect(struct env *e, struct kvmdbg_event *ev, uint64_t features, enum expect want,
       const char *fmt, ...)
{
	enum kvmdbg_stop kind;
	char what[200];
	va_list ap;
	bool inj;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	kind = replay(e, ev, &inj);
	ck_assert_msg(want == GUEST ? kind == KVMDBG_STOP_GUEST && inj
		      : want == NOTHING ? kind == KVMDBG_STOP_NONE && !inj
					: kind != KVMDBG_STOP_GUEST && !inj,
		      "features %#llx: %s: %s, injected %d", (unsigned long long)features, what,
		      kvmdbg_stop_name(kind), inj);
}

static void no_f1_near(uint64_t pc)
{
	static const uint8_t nops[4] = {0x90, 0x90, 0x90, 0x90};

	put(pc - 2, nops, 4);
}

/* ======================================================================
 * x86
 * ====================================================================== */

/* The scenario of issue 12 on the fake: the stale B0 of a removed
 * breakpoint rides along with every later step. */
START_TEST(test_x86_headline_replay)
{
	static const uint64_t pcs[4] = {0x1004, 0x1002, 0x1003, 0x1004};
	/* What the SVM bed's CPU reported (B0 stays set: SDM 18.2.3). */
	static const uint64_t dr6[4] = {0xffff4ff1, 0xffff4ff1, 0xffff4ff1, 0xffff4ff1};
	const uint64_t features = x86_feature_sets[_i];
	struct kvmdbg_event ev;
	struct env e;
	bool inj;

	env_new(&e, KVMDBG_ARCH_X86_64, features);
	put(0x1000, (const uint8_t[]){0x31, 0xc0, 0x40, 0x90, 0xeb, 0xfc}, 6);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x1003, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	for (int i = 0; i < 3; i++) {
		x86_exit(1, 0x1003, 0xffff0ff1, 0x402);
		ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_BREAK);
		ck_assert(!inj);
		/* The step past it (no RF): slot 0 disarmed, its B0 stale. */
		if (kvmdbg_vcpu_is_stepping(e.v)) {
			x86_exit(1, 0x1004, 0xffff4ff1, 0x400);
			expect(&e, &ev, features, NOTHING,
			       "the step past the breakpoint (dr6 0xffff4ff1)");
			x86_exit(1, 0x1002, 0xffff0ff0, 0x402);
		}
	}
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x1003, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	for (int i = 0; i < 4; i++) {
		x86_exit(1, pcs[i], dr6[i], 0x400);
		ck_assert_msg(replay(&e, &ev, &inj) == KVMDBG_STOP_STEP && ev.pc == pcs[i],
			      "features %#llx step %d: %s at %#llx",
			      (unsigned long long)features, i + 1, kvmdbg_stop_name(ev.kind),
			      (unsigned long long)ev.pc);
		ck_assert_msg(!inj, "features %#llx step %d to %#llx: DR6 %#llx injected a #DB "
			      "(dr6 %#llx) into a guest that never enabled a slot",
			      (unsigned long long)features, i + 1, (unsigned long long)pcs[i],
			      (unsigned long long)dr6[i],
			      (unsigned long long)fh.v[0].injected.dr6);
	}
	ck_assert_uint_eq(fh.v[0].inject_calls, 0);
	env_free(&e);
}
END_TEST

/* B0-B3 of slots nobody enabled, alone, with our step, with our other
 * slot's hit, with the guest's TF: never a B bit for the guest. */
START_TEST(test_x86_stale_b_bits)
{
	const uint64_t features = x86_feature_sets[_i];

	for (uint64_t stale = 1; stale < 16; stale++) {
		struct kvmdbg_event ev;
		struct env e;
		bool inj;

		/* 1. Nothing of ours, nothing stepping: a #DB with stale B
		 * bits only explains nothing. */
		env_new(&e, KVMDBG_ARCH_X86_64, features);
		no_f1_near(0x300);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
		x86_exit(1, 0x300, DR6_ACTIVE_LOW | stale, 0x400);
		expect(&e, &ev, features, NOT_GUEST,
		       "stale %#llx, nothing armed", (unsigned long long)stale);
		ck_assert(!KVMDBG_STOP_IS_REPORTABLE(ev.kind));

		/* 2. Our step: BS with stale B bits is a step, nothing more. */
		ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v, 1), 0);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
		x86_exit(1, 0x301, DR6_ACTIVE_LOW | DR6_BS | stale, 0x400);
		ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_STEP);
		ck_assert_msg(!inj, "features %#llx, BS | stale %#llx: injected dr6 %#llx",
			      (unsigned long long)features, (unsigned long long)stale,
			      (unsigned long long)fh.v[0].injected.dr6);
		ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v, 0), 0);

		/* 3. Our breakpoint in slot 0 with stale bits of the others. */
		ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x400, 1), 0);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
		x86_exit(1, 0x400, DR6_ACTIVE_LOW | DR6_B(0) | (stale & ~1ull), 0x402);
		ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_BREAK);
		ck_assert_uint_eq(ev.hits, 1);
		ck_assert_msg(!inj, "features %#llx, B0 ours | stale %#llx: injected dr6 %#llx",
			      (unsigned long long)features, (unsigned long long)stale,
			      (unsigned long long)fh.v[0].injected.dr6);

		/* The step past it, where it takes one (no RF). */
		if (kvmdbg_vcpu_is_stepping(e.v)) {
			x86_exit(1, 0x401, DR6_ACTIVE_LOW | DR6_BS | (stale & ~1ull), 0x400);
			ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_NONE);
			ck_assert(!inj);
		}

		/* 4. The guest's own TF (we are not stepping): the guest gets
		 * its #DB, with BS and without the stale B bits. */
		no_f1_near(0x500);
		x86_exit(1, 0x500, DR6_ACTIVE_LOW | DR6_BS | (stale & ~1ull), 0x402);
		ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_GUEST);
		ck_assert(inj);
		ck_assert_uint_eq(fh.v[0].injected.exception, 1);
		ck_assert_msg(fh.v[0].injected.dr6 == DR6_BS,
			      "features %#llx, the guest's TF with stale %#llx: it gets dr6 %#llx",
			      (unsigned long long)features, (unsigned long long)stale,
			      (unsigned long long)fh.v[0].injected.dr6);
		env_free(&e);
	}
}
END_TEST

/* The guest did program a slot: its own hit (while we step without
 * hardware slots, KVM runs the guest's DR7) is its own. */
START_TEST(test_x86_guest_slot_enabled)
{
	struct kvmdbg_event ev;
	struct env e;
	bool inj;

	env_new(&e, KVMDBG_ARCH_X86_64, 0);
	fh.guest.value[KVMDBG_POOL_BP][2] = 0x600;
	fh.guest.dr7 = 0x400 | 1ull << 4; /* L2, execution */
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	x86_exit(1, 0x600, DR6_ACTIVE_LOW | DR6_BS | DR6_B(2), 0x400);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_STEP);
	ck_assert(inj);
	ck_assert_uint_eq(fh.v[0].injected.exception, 1);
	ck_assert_uint_eq(fh.v[0].injected.dr6, DR6_B(2));
	/* Its slot 2 enabled, the stale B1 beside it is not passed on. */
	x86_exit(1, 0x600, DR6_ACTIVE_LOW | DR6_BS | DR6_B(2) | DR6_B(1), 0x400);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_STEP);
	ck_assert(inj);
	ck_assert_uint_eq(fh.v[0].injected.dr6, DR6_B(2));
	env_free(&e);
}
END_TEST

/* DR6.BD: only a guest that set DR7.GD can have touched a debug register
 * under it. */
START_TEST(test_x86_bd)
{
	const uint64_t features = x86_feature_sets[_i];
	struct kvmdbg_event ev;
	struct env e;
	bool inj;

	env_new(&e, KVMDBG_ARCH_X86_64, features);
	no_f1_near(0x700);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x100, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	/* The guest never set GD: a BD nobody asked for is not delivered. */
	x86_exit(1, 0x700, DR6_ACTIVE_LOW | DR6_BD, 0x402);
	expect(&e, &ev, features, NOT_GUEST, "BD with the guest's DR7.GD clear");
	/* With stale B bits beside it: still nothing. */
	x86_exit(1, 0x700, DR6_ACTIVE_LOW | DR6_BD | DR6_B(3) | DR6_B(2), 0x402);
	expect(&e, &ev, features, NOT_GUEST, "BD | B3 | B2");
	/* The guest set GD: its MOV DR faulted, it gets #DB with BD. */
	fh.guest.dr7 = 0x400 | DR7_GD;
	x86_exit(1, 0x700, DR6_ACTIVE_LOW | DR6_BD, 0x402);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_GUEST);
	ck_assert(inj);
	ck_assert_uint_eq(fh.v[0].injected.dr6 & DR6_BD, DR6_BD);
	ck_assert_uint_eq(fh.v[0].injected.dr6 & 0xf, 0);
	env_free(&e);
}
END_TEST

/* Bus lock detection: raw DR6 bit 11 clear. Only a guest that enabled
 * DEBUGCTL.BLD gets these; it gets #DB with DR6.BLD. And DR6.BT. */
START_TEST(test_x86_bld)
{
	const uint64_t features = x86_feature_sets[_i];
	struct kvmdbg_event ev;
	struct env e;
	bool inj;

	env_new(&e, KVMDBG_ARCH_X86_64, features);
	no_f1_near(0x800);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	x86_exit(1, 0x800, DR6_ACTIVE_LOW & ~DR6_BLD, 0x400);
	expect(&e, &ev, features, GUEST, "BLD");
	ck_assert_uint_eq(fh.v[0].injected.exception, 1);
	ck_assert_uint_eq(fh.v[0].injected.dr6 & (DR6_BLD | DR6_BS | 0xf), DR6_BLD);

	/* While we step: the step is reported, the bus lock still the guest's
	 * (stale B bits not passed on). */
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	x86_exit(1, 0x802, (DR6_ACTIVE_LOW & ~DR6_BLD) | DR6_BS | DR6_B(1), 0x400);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_STEP);
	ck_assert(inj);
	ck_assert_uint_eq(fh.v[0].injected.dr6 & (DR6_BLD | DR6_BS | 0xf), DR6_BLD);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v, 0), 0);

	/* DR6.BT (bit 15, positive): a task switch into a TSS whose T bit the
	 * guest set: its own, without the stale bits beside it. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	x86_exit(1, 0x810, DR6_ACTIVE_LOW | DR6_BT | DR6_B(3), 0x400);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_GUEST);
	ck_assert(inj);
	ck_assert_uint_eq(fh.v[0].injected.dr6 & (DR6_BT | DR6_BS | 0xf), DR6_BT);
	env_free(&e);
}
END_TEST

/* RTM (raw bit 16 clear) means something only with DR7.RTM: a kernel that
 * reported it clear without it (old DR6_FIXED_1) must not make a #DB. */
START_TEST(test_x86_rtm)
{
	const uint64_t features = x86_feature_sets[_i];
	struct kvmdbg_event ev;
	struct env e;
	bool inj;

	env_new(&e, KVMDBG_ARCH_X86_64, features);
	no_f1_near(0x900);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	x86_exit(1, 0x900, (DR6_ACTIVE_LOW & ~DR6_RTM) | DR6_BS, 0x400);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_STEP);
	ck_assert(!inj);
	x86_exit(1, 0x901, (DR6_ACTIVE_LOW & ~DR6_RTM) | DR6_BS | DR6_B(2), 0x400);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_STEP);
	ck_assert(!inj);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v, 0), 0);
	/* Our breakpoint inside a transaction (DR7.RTM as we ran): ours. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x910, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	x86_exit(1, 0x910, (DR6_ACTIVE_LOW & ~DR6_RTM) | DR6_B(0), 0x402 | DR7_RTM);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_BREAK);
	ck_assert(!inj);
	/* A bare RTM bit, nothing else: not a reason either. */
	x86_exit(1, 0x920, DR6_ACTIVE_LOW & ~DR6_RTM, 0x400);
	no_f1_near(0x920);
	expect(&e, &ev, features, NOT_GUEST, "bare RTM");
	env_free(&e);
}
END_TEST

/* ICEBP (0xf1, INT1): a #DB with no DR6 cause at all. VMX reports it with
 * the pc on the 0xf1 (the guest must get its #DB after it: the library moves
 * the PC past it, host op advance_pc), SVM with the pc after it; the host
 * glue says which (icebp_exit_on_insn). A #DB with no cause where no 0xf1
 * is, or where the 0xf1 is on the other side of the pc than this host
 * reports, is nobody's. */
START_TEST(test_x86_icebp)
{
	const uint64_t features = x86_feature_sets[_i];
	struct kvmdbg_event ev;
	struct env e;

	env_new(&e, KVMDBG_ARCH_X86_64, features);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);

	/* SVM style: pc after the 0xf1. */
	fh.icebp_on_insn = false;
	put(0xa00, (const uint8_t[]){0x90, 0xf1, 0x90, 0x90}, 4);
	x86_exit(1, 0xa02, DR6_ACTIVE_LOW, 0x400);
	expect(&e, &ev, features, GUEST, "ICEBP (SVM, pc after it)");
	ck_assert_uint_eq(fh.v[0].injected.exception, 1);
	ck_assert_uint_eq(fh.v[0].injected.dr6 & (0xf | DR6_BS | DR6_BD), 0);
	ck_assert_uint_eq(fh.v[0].pc, 0xa02);
	ck_assert_uint_eq(fh.v[0].advance_calls, 0);
	/* An SVM host never reports the pc on it: 0xf1 at the pc is some
	 * other instruction's byte (nothing was executed). */
	put(0xa80, (const uint8_t[]){0x90, 0x90, 0xf1, 0x90}, 4);
	x86_exit(1, 0xa82, DR6_ACTIVE_LOW, 0x400);
	expect(&e, &ev, features, NOT_GUEST, "SVM host, 0xf1 at the pc, not before");

	/* VMX style: pc on the 0xf1; the guest's #DB comes after it. */
	fh.icebp_on_insn = true;
	put(0xb00, (const uint8_t[]){0x90, 0x90, 0xf1, 0x90}, 4);
	x86_exit(1, 0xb02, DR6_ACTIVE_LOW, 0x400);
	expect(&e, &ev, features, GUEST, "ICEBP (VMX, pc on it)");
	ck_assert_uint_eq(fh.v[0].injected.exception, 1);
	ck_assert_uint_eq(fh.v[0].injected.dr6 & (0xf | DR6_BS | DR6_BD), 0);
	ck_assert_uint_eq(fh.v[0].pc, 0xb03);
	ck_assert_uint_eq(fh.v[0].advance_calls, 1);
	/* A VMX host never reports the pc after it. */
	put(0xb80, (const uint8_t[]){0x90, 0xf1, 0x90, 0x90}, 4);
	x86_exit(1, 0xb82, DR6_ACTIVE_LOW, 0x400);
	expect(&e, &ev, features, NOT_GUEST, "VMX host, 0xf1 before the pc");
	ck_assert_uint_eq(fh.v[0].pc, 0xb82);
	fh.icebp_on_insn = false;

	/* The same DR6 where no 0xf1 is: nothing to deliver. */
	no_f1_near(0xc00);
	x86_exit(1, 0xc00, DR6_ACTIVE_LOW, 0x400);
	expect(&e, &ev, features, NOT_GUEST, "#DB with no cause and no ICEBP");
	/* ... nor with only stale B bits. */
	x86_exit(1, 0xc00, DR6_ACTIVE_LOW | DR6_B(1) | DR6_B(3), 0x400);
	expect(&e, &ev, features, NOT_GUEST, "stale B1 B3, no ICEBP");
	env_free(&e);
}
END_TEST

/* #BP: an INT3 that is not ours is the guest's; ours is a stop; one of ours
 * removed while in flight (the guest's byte is back) is nothing. */
START_TEST(test_x86_int3)
{
	const uint64_t features = x86_feature_sets[_i];
	struct kvmdbg_event ev;
	struct env e;
	bool inj;

	env_new(&e, KVMDBG_ARCH_X86_64, features);
	put(0xd00, (const uint8_t[]){0x90, 0xcc, 0x90, 0x90}, 4);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0xd02, 0), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	x86_exit(3, 0xd02, DR6_ACTIVE_LOW, 0x400);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_BREAK);
	ck_assert(!inj);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, 0xd02, 0), 0);
	ck_assert_uint_eq(fh.mem[0xd02], 0x90);
	x86_exit(3, 0xd02, DR6_ACTIVE_LOW, 0x400);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_NONE);
	ck_assert(!inj);
	/* The guest's own INT3. */
	x86_exit(3, 0xd01, DR6_ACTIVE_LOW, 0x400);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_GUEST);
	ck_assert(inj);
	ck_assert_uint_eq(fh.v[0].injected.exception, 3);
	env_free(&e);
}
END_TEST

/* ======================================================================
 * arm64
 * ====================================================================== */


static const uint64_t arm64_feature_sets[] = {
	0,
	KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_STEP | KVMDBG_FEAT_HW_BREAK | KVMDBG_FEAT_WATCH_WRITE |
		KVMDBG_FEAT_WATCH_ACCESS | KVMDBG_FEAT_WATCH_READ | KVMDBG_FEAT_SW_BREAK |
		KVMDBG_FEAT_GUEST_REGS_RAW,
	KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_STEP | KVMDBG_FEAT_HW_BREAK | KVMDBG_FEAT_WATCH_WRITE |
		KVMDBG_FEAT_WATCH_ACCESS | KVMDBG_FEAT_WATCH_READ | KVMDBG_FEAT_SW_BREAK,
};

static void a_exit(uint64_t esr, uint64_t pc, uint64_t far)
{
	fh.v[0].exit = (struct kvmdbg_exit){.esr = esr, .pc = pc, .far = far};
	fh.v[0].pc = pc;
}

/* Breakpoint and watchpoint syndromes, from EL0 and EL1, with and without
 * ISS2 in hsr_high, matching our slots, matching removed ones, FAR inside
 * and outside the watched range: ours are stops, the rest is nobody's. */
START_TEST(test_arm64_esr_variants)
{
	const uint64_t features = arm64_feature_sets[_i];
	static const uint64_t high[2] = {0, 1ull << 32};

	for (unsigned int lvl = 0; lvl < 2; lvl++)
		for (unsigned int h = 0; h < 2; h++) {
			uint64_t bk = ESR_FOR_EC(lvl ? EC_BREAKPT_CUR : EC_BREAKPT_LOW) | high[h];
			uint64_t wp = ESR_FOR_EC(lvl ? EC_WATCHPT_CUR : EC_WATCHPT_LOW) | high[h];
			struct kvmdbg_event ev;
			struct env e;
			bool inj;

			env_new(&e, KVMDBG_ARCH_ARM64, features);
			ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x1000, 4), 0);
			ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x3000, 8), 0);
			ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);

			a_exit(bk, 0x1000, 0);
			ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_BREAK);
			ck_assert(!inj);
			/* The step past it. */
			a_exit(ESR_FOR_EC(EC_SOFTSTP_CUR), 0x1004, 0);
			ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_NONE);
			ck_assert(!inj);

			/* A store inside the range (WnR): a write stop at FAR. */
			a_exit(wp | ESR_ISS_WNR, 0x1010, 0x3004);
			ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_WATCH);
			ck_assert_uint_eq(ev.data_addr, 0x3004);
			ck_assert(!inj);
			a_exit(ESR_FOR_EC(EC_SOFTSTP_CUR), 0x1014, 0);
			ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_NONE);
			ck_assert(!inj);

			/* FAR outside anything watched (ours or the guest's):
			 * nobody's. */
			a_exit(wp | ESR_ISS_WNR, 0x1020, 0x5000);
			expect(&e, &ev, features, NOT_GUEST,
			       "esr %#llx far 0x5000", (unsigned long long)(wp | ESR_ISS_WNR));
			ck_assert(!KVMDBG_STOP_IS_REPORTABLE(ev.kind) ||
				  ev.kind == KVMDBG_STOP_WATCH);

			/* Both removed: their syndromes in flight are stale. */
			ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_HW, 0x1000, 4), 0);
			ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_WATCH_WRITE, 0x3000, 8), 0);
			a_exit(bk, 0x1000, 0);
			expect(&e, &ev, features, NOTHING,
			       "stale esr %#llx", (unsigned long long)bk);
			/* Now nothing is applied at all: a breakpoint or
			 * watchpoint syndrome still is not the guest's, whose
			 * registers are all disabled. */
			a_exit(bk, 0x1000, 0);
			expect(&e, &ev, features, NOTHING,
			       "esr %#llx, nothing applied, guest slots disabled",
			       (unsigned long long)bk);
			a_exit(wp, 0x1010, 0x3004);
			expect(&e, &ev, features, NOTHING,
			       "esr %#llx, nothing applied, guest slots disabled",
			       (unsigned long long)wp);
			/* Our single-step with software breakpoints only: the
			 * same syndromes while KVM debugs with no slot. */
			ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v, 1), 0);
			ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
			a_exit(bk, 0x1000, 0);
			expect(&e, &ev, features, NOT_GUEST,
			       "esr %#llx while stepping, guest slots disabled",
			       (unsigned long long)bk);
			a_exit(ESR_FOR_EC(lvl ? EC_SOFTSTP_CUR : EC_SOFTSTP_LOW) | high[h], 0x1004, 0);
			ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_STEP);
			ck_assert(!inj);
			env_free(&e);
		}
}
END_TEST

/* BRK: ours is a stop, the guest's own (another immediate, or ours removed
 * with the guest's BRK under it) is the guest's, one of ours removed in
 * flight is nothing. */
START_TEST(test_arm64_brk_variants)
{
	const uint64_t features = arm64_feature_sets[_i];
	struct kvmdbg_event ev;
	struct env e;
	bool inj;
	const uint8_t nop[4] = {0x1f, 0x20, 0x03, 0xd5};

	env_new(&e, KVMDBG_ARCH_ARM64, features);
	put(0x2000, nop, 4);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_SW, 0x2000, 4), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	a_exit(ESR_FOR_EC(EC_BRK64) | kvmdbg_arm64_ops.sw_imm, 0x2000, 0);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_BREAK);
	ck_assert(!inj);
	a_exit(ESR_FOR_EC(EC_SOFTSTP_CUR), 0x2004, 0);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_NONE);
	ck_assert(!inj);
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_BREAK_SW, 0x2000, 4), 0);
	a_exit(ESR_FOR_EC(EC_BRK64) | kvmdbg_arm64_ops.sw_imm, 0x2000, 0);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_NONE);
	ck_assert(!inj);
	/* The guest's own BRK #0x800. */
	a_exit(ESR_FOR_EC(EC_BRK64) | 0x800, 0x2100, 0);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_GUEST);
	ck_assert(inj);
	ck_assert_uint_eq(fh.v[0].injected.esr, ESR_FOR_EC(EC_BRK64) | 0x800);
	env_free(&e);
}
END_TEST

/* A software-step syndrome we did not ask for (this vCPU ran without our
 * step): like x86 BS without our step (the guest's TF), the guest's own
 * step (MDSCR_EL1.SS): delivered with its syndrome, as the library's header
 * documents. No KVM produces it for a guest that does not step itself. */
START_TEST(test_arm64_unasked_step)
{
	const uint64_t features = arm64_feature_sets[_i];
	struct kvmdbg_event ev;
	struct env e;
	bool inj;

	env_new(&e, KVMDBG_ARCH_ARM64, features);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_BREAK_HW, 0x1000, 4), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	a_exit(ESR_FOR_EC(EC_SOFTSTP_CUR), 0x1234, 0);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_GUEST);
	ck_assert(inj);
	ck_assert_uint_eq(fh.v[0].injected.esr, ESR_FOR_EC(EC_SOFTSTP_CUR));
	/* Our step: never the guest's. */
	ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v, 1), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	a_exit(ESR_FOR_EC(EC_SOFTSTP_CUR), 0x1238, 0);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_STEP);
	ck_assert(!inj);
	env_free(&e);
}
END_TEST

/*
 * arm64 watchpoints are taken before the access; resuming from a watch stop
 * steps past the access with the slots that hit disarmed. A second
 * watchpoint on the same bytes, inserted while stopped there, fires during
 * that step: it is reported (a new point, fair). Resuming from that stop
 * must run the access with both out of the way: the first was reported at
 * this access already. Otherwise each continue reports the other one at the
 * same PC, forever (found by kvm_invariant in the arm64 bed).
 */
START_TEST(test_arm64_watch_pingpong)
{
	struct kvmdbg_event ev;
	struct env e;
	bool inj;
	int slots = 0;

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x3000, 8), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	a_exit(ESR_FOR_EC(EC_WATCHPT_CUR) | ESR_ISS_WNR, 0x1010, 0x3000);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_WATCH);
	ck_assert_int_eq(ev.type, KVMDBG_WATCH_WRITE);
	/* Stopped at the store; the user adds an access watchpoint. The
	 * replay's prepare began the step past the store: redo it. */
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_ACCESS, 0x3000, 8), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	a_exit(ESR_FOR_EC(EC_WATCHPT_CUR) | ESR_ISS_WNR, 0x1010, 0x3000);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_WATCH);
	ck_assert_int_eq(ev.type, KVMDBG_WATCH_ACCESS);
	/* The resume from here: a step past the store, no watch slot armed. */
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++)
		slots += fh.v[0].hw.slot[KVMDBG_POOL_WP][n].ctrl != 0;
	ck_assert_msg(slots == 0,
		      "the step past the store keeps %d watch slot(s) armed: the write "
		      "watchpoint reported at this store fires again",
		      slots);
	a_exit(ESR_FOR_EC(EC_SOFTSTP_CUR), 0x1014, 0);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_NONE);
	ck_assert(!inj);
	env_free(&e);
}
END_TEST

/*
 * A resume from a watch stop began its step past the store (the slot that
 * hit disarmed), and KVM_RUN came back before the store ran (the VMM's
 * kick: EINTR, no exit). Stopped there, the user removed that watchpoint
 * and inserted another on the same word, which took the same hardware
 * slot. The step past the store must not disarm the new one: the slot
 * number is the old point's no more. Otherwise the store the vCPU is on is
 * missed and the next loop iteration's is reported (kvm_invariant, arm64
 * bed, seed 0x661ce1d6da8c8: timing-dependent, as the kick had to come
 * before the step's one instruction ran).
 */
START_TEST(test_arm64_watch_slot_reused_mid_step)
{
	const uint32_t wp0 = KVMDBG_HIT_BIT(KVMDBG_POOL_WP, 0);
	struct kvmdbg_event ev;
	struct env e;
	bool inj;

	env_new(&e, KVMDBG_ARCH_ARM64, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x3000, 4), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	a_exit(ESR_FOR_EC(EC_WATCHPT_CUR) | ESR_ISS_WNR, 0x1010, 0x3000);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_WATCH);
	ck_assert_uint_eq(ev.hits, wp0);
	/* The replay's prepare began the step past the store, WP0 out. */
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	ck_assert_uint_eq(fh.v[0].hw.slot[KVMDBG_POOL_WP][0].ctrl, 0);
	/* KVM_RUN: -EINTR, the PC still on the store. Stopped by the kick. */
	ck_assert_int_eq(kvmdbg_vm_remove(e.vm, KVMDBG_WATCH_WRITE, 0x3000, 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e.vm, KVMDBG_WATCH_WRITE, 0x3000, 4), 0);
	ck_assert_uint_eq(e.vm->slots.owner[KVMDBG_POOL_WP][0] != 0, 1);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e.v), 0);
	ck_assert_msg(fh.v[0].hw.slot[KVMDBG_POOL_WP][0].ctrl != 0,
		      "the watchpoint inserted since (in the slot of the removed one) is "
		      "disarmed for the store the vCPU is on: the store is missed");
	/* It fires at the store: a stop there, for the new point. */
	a_exit(ESR_FOR_EC(EC_WATCHPT_CUR) | ESR_ISS_WNR, 0x1010, 0x3000);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_WATCH);
	ck_assert(!inj);
	ck_assert_int_eq(ev.type, KVMDBG_WATCH_WRITE);
	ck_assert_uint_eq(ev.pc, 0x1010);
	ck_assert_uint_eq(ev.hits, wp0);
	/* Resuming from that stop steps past the store with it out. */
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	ck_assert_uint_eq(fh.v[0].hw.slot[KVMDBG_POOL_WP][0].ctrl, 0);
	a_exit(ESR_FOR_EC(EC_SOFTSTP_CUR), 0x1014, 0);
	ck_assert_int_eq(replay(&e, &ev, &inj), KVMDBG_STOP_NONE);
	ck_assert(!inj);
	/* The step is over: the new watchpoint is armed again. */
	ck_assert_uint_eq(fh.v[0].ctl & KVMDBG_CTL_STEP, 0);
	ck_assert(fh.v[0].hw.slot[KVMDBG_POOL_WP][0].ctrl != 0);
	env_free(&e);
}
END_TEST

TEST_SUITE(replay)
{
	add_loop_test(tc, test_x86_headline_replay, 0, NR_FEATURE_SETS);
	add_loop_test(tc, test_x86_stale_b_bits, 0, NR_FEATURE_SETS);
	add_test(tc, test_x86_guest_slot_enabled);
	add_loop_test(tc, test_x86_bd, 0, NR_FEATURE_SETS);
	add_loop_test(tc, test_x86_bld, 0, NR_FEATURE_SETS);
	add_loop_test(tc, test_x86_rtm, 0, NR_FEATURE_SETS);
	add_loop_test(tc, test_x86_icebp, 0, NR_FEATURE_SETS);
	add_loop_test(tc, test_x86_int3, 0, NR_FEATURE_SETS);
	add_loop_test(tc, test_arm64_esr_variants, 0, 3);
	add_loop_test(tc, test_arm64_brk_variants, 0, 3);
	add_loop_test(tc, test_arm64_unasked_step, 0, 3);
	add_test(tc, test_arm64_watch_pingpong);
	add_test(tc, test_arm64_watch_slot_reused_mid_step);
}
