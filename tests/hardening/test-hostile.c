/* SPDX-License-Identifier: MIT */
/*
 * Hostile guests, against the fake KVM: exits no well-behaved guest
 * produces (every DR6 bit alone and all of them, DR7 garbage, every x86
 * vector, every arm64 EC with random ISS and ISS2, an all-ones ESR, FAR and
 * PC anywhere in the address space) and a guest that spins on its own debug
 * exceptions. The library's state must stay sane (the breakpoint set, the
 * slots and guest memory are what the debugger made them, KVM only ever gets
 * the library's own slots and control bits, each re-injection is delivered
 * once) and the VMM loop must keep making progress (every handle_exit and
 * prepare succeeds in a bounded number of host calls; nothing is reported
 * that the debugger did not insert).
 *
 * A guest that programs absurd debug state of its own (every DR7 bit, I/O
 * breakpoints, GD, unaligned addresses; arm64 EL2/HMC/SSC matching, linked
 * and context types, reserved MASK values, non-contiguous BAS, reserved
 * bits, more registers than exist) reaches the library only through the
 * guest/host overlay (KVMDBG_OVERLAY_GUEST): the arch's guest_slots() must
 * sanitise every such register, and with the overlay on, what KVM gets on
 * every prepare must be made of sane slots only, the host's points intact,
 * while the loop keeps going through absurd exits.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <linux/kvm.h>

#include "fake-host.h"
#include "sane.h"
#include "kvmdbg-int.h"
#include "test-common.h"

#define NCPU 2

static uint64_t rng = 0x686f7374696c65ull;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct env {
	struct kvmdbg_vm *vm;
	struct kvmdbg_vcpu *v[NCPU];
	struct kvm_run kr[NCPU];
	struct kvmdbg_hwpoint points[KVMDBG_MAX_POINTS];
	struct kvmdbg_slots slots;
	uint8_t mem[FH_MEM_SIZE];
	uint64_t bp_hw, bp_sw, watch;
};

static void env_new(struct env *e, enum kvmdbg_arch arch)
{
	struct kvmdbg_vm_opts o = {.sz = sizeof(o), .mem = &fh_mem_ops, .mem_ctx = &fh};
	bool x86 = arch == KVMDBG_ARCH_X86_64;

	memset(e, 0, sizeof(*e));
	fh_reset(arch);
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, fh_host(), &fh, &e->vm), 0);
	for (int i = 0; i < NCPU; i++) {
		ck_assert_int_eq(kvmdbg_vcpu_new(e->vm, i, &e->kr[i], &e->v[i]), 0);
		e->kr[i].exit_reason = KVM_EXIT_DEBUG;
	}
	e->bp_hw = 0x200;
	e->bp_sw = 0x100;
	e->watch = 0x1000;
	ck_assert_int_eq(kvmdbg_vm_insert(e->vm, KVMDBG_BREAK_HW, e->bp_hw, x86 ? 1 : 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e->vm, KVMDBG_BREAK_SW, e->bp_sw, x86 ? 1 : 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e->vm, KVMDBG_WATCH_WRITE, e->watch, 8), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(e->vm, KVMDBG_WATCH_ACCESS, e->watch + 0x40, 4), 0);
	memcpy(e->points, e->vm->points, sizeof(e->points));
	e->slots = e->vm->slots;
	memcpy(e->mem, fh.mem, sizeof(e->mem));
}

static void env_free(struct env *e)
{
	for (int i = 0; i < NCPU; i++)
		kvmdbg_vcpu_free(e->v[i]);
	kvmdbg_vm_free(e->vm);
	ck_assert(fh_mem_is_orig());
}

/* Nothing an exit does may change the debugger's breakpoint set. */
static void check_sane(struct env *e, int cpu, const struct kvmdbg_event *ev, unsigned long it,
		       bool hits)
{
	const struct fh_vcpu *f = &fh.v[cpu];
	const uint32_t ctl_ok = KVMDBG_CTL_ENABLE | KVMDBG_CTL_STEP | KVMDBG_CTL_SW_BP |
				KVMDBG_CTL_HW | KVMDBG_CTL_BLOCKIRQ | KVMDBG_CTL_INJECT_DB |
				KVMDBG_CTL_INJECT_BP;

	ck_assert_msg(!memcmp(e->points, e->vm->points, sizeof(e->points)),
		      "iteration %lu: the breakpoint set changed", it);
	ck_assert_msg(!memcmp(&e->slots, &e->vm->slots, sizeof(e->slots)),
		      "iteration %lu: the slot allocation changed", it);
	for (size_t i = 0; i < FH_MEM_SIZE; i++)
		if (fh.mem[i] != e->mem[i])
			/* Only our software breakpoint, lifted for a step. */
			ck_assert_msg(i >= e->bp_sw && i - e->bp_sw < e->vm->arch->sw_len &&
					      fh.mem[i] == fh.orig[i],
				      "iteration %lu: guest byte %#zx changed", it, i);
	ck_assert_msg(!(f->ctl & ~ctl_ok), "iteration %lu: ctl %#x", it, f->ctl);
	for (unsigned int p = 0; p < KVMDBG_NR_POOLS; p++)
		for (unsigned int s = 0; s < KVMDBG_MAX_SLOTS; s++) {
			const struct kvmdbg_hwslot *h = &f->hw.slot[p][s];

			if (!h->ctrl)
				continue;
			/* Catching the software breakpoint the other vCPU
			 * steps over (issue 12 item 4). */
			if (e->v[cpu]->applied_owner[p][s] == KVMDBG_OWNER_SW &&
			    !e->slots.owner[p][s] && h->start == e->bp_sw)
				continue;
			ck_assert_msg(e->slots.owner[p][s] && h->ctrl == e->slots.hw[p][s].ctrl &&
					      h->value == e->slots.hw[p][s].value,
				      "iteration %lu: KVM got slot %u/%u = %#llx/%#llx, not ours", it,
				      p, s, (unsigned long long)h->value, (unsigned long long)h->ctrl);
		}
	ck_assert_msg((unsigned int)ev->kind <= KVMDBG_STOP_NONE, "iteration %lu: kind %d", it,
		      ev->kind);
	switch (ev->kind) {
	case KVMDBG_STOP_BREAK:
		ck_assert_msg((ev->type == KVMDBG_BREAK_HW && ev->addr == e->bp_hw) ||
				      (ev->type == KVMDBG_BREAK_SW && ev->addr == e->bp_sw),
			      "iteration %lu: reported a breakpoint at %#llx", it,
			      (unsigned long long)ev->addr);
		break;
	case KVMDBG_STOP_WATCH:
		ck_assert_msg((ev->type == KVMDBG_WATCH_WRITE && ev->addr == e->watch &&
			       ev->len == 8) ||
				      (ev->type == KVMDBG_WATCH_ACCESS && ev->addr == e->watch + 0x40 &&
				       ev->len == 4),
			      "iteration %lu: reported a watchpoint %s %#llx+%llu", it,
			      kvmdbg_type_name(ev->type), (unsigned long long)ev->addr,
			      (unsigned long long)ev->len);
		break;
	case KVMDBG_STOP_STEP:
		ck_assert_msg(e->v[cpu]->user_step, "iteration %lu: a step nobody asked for", it);
		break;
	default:
		break;
	}
	/* Hits name only slots the vCPU ran with. */
	for (unsigned int p = 0; p < KVMDBG_NR_POOLS && hits; p++)
		for (unsigned int s = 0; s < KVMDBG_MAX_SLOTS; s++)
			if (ev->hits & KVMDBG_HIT_BIT(p, s))
				ck_assert_msg(e->v[cpu]->applied.slot[p][s].ctrl,
					      "iteration %lu: hit of slot %u/%u not applied", it, p,
					      s);
}

/* One exit and the loop around it. */
static void one(struct env *e, int cpu, const struct kvmdbg_exit *ex, unsigned long it,
		unsigned long *kinds)
{
	struct fh_vcpu *f = &fh.v[cpu];
	struct kvmdbg_event ev;
	unsigned int sets, injects, unread;
	unsigned long calls;
	bool reinject;

	ck_assert_int_eq(kvmdbg_vcpu_prepare(e->v[cpu]), 0);
	f->exit = *ex;
	f->pc = ex->pc;
	fh_fault_arm(0, 0);
	if (fh_swbp_unreadable(ex, e->vm->arch->arch == KVMDBG_ARCH_X86_64)) {
		/* Whose instruction it is cannot be told: the read's error,
		 * and nothing changed (the next prepare has nothing to do). */
		sets = f->set_calls;
		ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e->v[cpu], &ev), -EFAULT);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(e->v[cpu]), 0);
		ck_assert_uint_eq(f->set_calls, sets);
		kinds[KVMDBG_STOP_NONE]++;
		return;
	}
	unread = f->pc_unread_exits;
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(e->v[cpu], &ev), 0);
	/* An unread PC (arm64: the library's own step) is never reported. */
	unread = f->pc_unread_exits - unread;
	ck_assert_uint_eq(ev.pc, unread ? 0 : ex->pc);
	ck_assert(!unread || ev.kind == KVMDBG_STOP_NONE);
	check_sane(e, cpu, &ev, it, true);
	kinds[ev.kind]++;
	/* Progress: the next prepare succeeds with a bounded number of host
	 * calls, delivers a queued re-injection once, and the one after it
	 * has nothing left to do unless a step is running. */
	reinject = e->v[cpu]->reinject.pending;
	sets = f->set_calls;
	injects = f->inject_calls;
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e->v[cpu]), 0);
	calls = fh.calls;
	/* arm64: the user's step after an exit that was not reported reads
	 * the PC and masks the interrupts at it (2 more). */
	ck_assert_msg(calls <= (e->vm->arch->arch == KVMDBG_ARCH_ARM64 ? 8u : 6u),
		      "iteration %lu: prepare made %lu host calls", it, calls);
	ck_assert_uint_eq(f->inject_calls, injects + reinject);
	ck_assert_uint_le(f->set_calls, sets + 1);
	check_sane(e, cpu, &ev, it, false);
	fh_fault_arm(0, 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(e->v[cpu]), 0);
	ck_assert_msg(fh.calls == 0, "iteration %lu: an idle prepare made %lu host calls", it,
		      fh.calls);
}

static void exit_x86(struct env *e, unsigned long it, struct kvmdbg_exit *ex)
{
	static const uint64_t pcs[] = {0, UINT64_MAX, 0x100, 0x200, 0x1000, 0x8000000000000000ull};

	memset(ex, 0, sizeof(*ex));
	(void)e;
	/* Vectors: mostly #DB and #BP, but every other one too. */
	ex->exception = it % 4 == 0 ? (uint32_t)(it / 4 % 256) : it % 4 == 1 ? 3 : 1;
	if (it % 97 == 0)
		ex->exception = (uint32_t)rnd();
	switch (it % 5) {
	case 0:
		ex->dr6 = 1ull << (it / 5 % 64); /* every bit alone, polarity ignored */
		break;
	case 1:
		ex->dr6 = UINT64_MAX;
		break;
	case 2:
		ex->dr6 = 0xffff0ff0ull | (1ull << (it / 5 % 64));
		break;
	default:
		ex->dr6 = rnd();
		break;
	}
	ex->dr7 = it % 3 == 0 ? UINT64_MAX : rnd();
	ex->pc = it % 2 ? pcs[it / 2 % ARRAY_SIZE(pcs)] : rnd();
	ex->esr = rnd();
	ex->far = rnd();
}

static void exit_arm64(struct env *e, unsigned long it, struct kvmdbg_exit *ex)
{
	static const uint64_t pcs[] = {0, UINT64_MAX, 0x100, 0x200, 0x202, 0xfffffffffffffffcull};
	static const uint64_t fars[] = {0, UINT64_MAX, 0x1000, 0x1007, 0x1008, 0x1040, 0x0fff,
					0xff00000000001000ull, 0x8000000000000000ull};

	memset(ex, 0, sizeof(*ex));
	switch (it % 4) {
	case 0:
		ex->esr = UINT64_MAX;
		break;
	case 1:
		/* Every EC, with random ISS and ISS2. */
		ex->esr = ((uint64_t)(it / 4 % 64) << 26) | (rnd() & 0x3ffffff) |
			  (rnd() & 0xffffff00000000ull);
		break;
	case 2:
		/* The debug ECs. */
		ex->esr = ((uint64_t)(0x30 + it / 4 % 16) << 26) | (rnd() & 0x1ffffff);
		break;
	default:
		ex->esr = rnd();
		break;
	}
	ex->far = it % 2 ? fars[it / 2 % ARRAY_SIZE(fars)] : rnd();
	ex->pc = it % 3 ? pcs[it / 3 % ARRAY_SIZE(pcs)] : rnd();
	ex->dr6 = rnd();
	ex->dr7 = rnd();
	ex->exception = (uint32_t)rnd();
	(void)e;
}

static void hostile(enum kvmdbg_arch arch)
{
	struct env e;
	unsigned long kinds[5] = {0};
	const unsigned long n = 40000;

	env_new(&e, arch);
	for (unsigned long it = 0; it < n; it++) {
		struct kvmdbg_exit ex;
		int cpu = (int)(it % NCPU);

		if (arch == KVMDBG_ARCH_X86_64)
			exit_x86(&e, it, &ex);
		else
			exit_arm64(&e, it, &ex);
		/* Now and then the user steps. */
		if (it % 1000 == 500)
			ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[cpu], 1), 0);
		if (it % 1000 == 700)
			ck_assert_int_eq(kvmdbg_vcpu_set_step(e.v[cpu], 0), 0);
		one(&e, cpu, &ex, it, kinds);
	}
	printf("hostile %s: %lu absurd exits: %lu step %lu break %lu watch %lu guest %lu none\n",
	       arch == KVMDBG_ARCH_X86_64 ? "x86_64" : "arm64", n, kinds[0], kinds[1], kinds[2],
	       kinds[3], kinds[4]);
	fflush(stdout);
	env_free(&e);
}

START_TEST(test_hostile_x86)
{
	hostile(KVMDBG_ARCH_X86_64);
}
END_TEST

START_TEST(test_hostile_arm64)
{
	hostile(KVMDBG_ARCH_ARM64);
}
END_TEST

/* A guest that spins on its own debug exceptions (TF single-steps, its own
 * int3/BRK): every one is re-injected exactly once, nothing accumulates,
 * our breakpoints keep working in between. */
static void spin(enum kvmdbg_arch arch)
{
	struct env e;
	unsigned long kinds[5] = {0};
	bool x86 = arch == KVMDBG_ARCH_X86_64;

	env_new(&e, arch);
	for (unsigned long it = 0; it < 20000; it++) {
		struct kvmdbg_exit ex = {0};
		int cpu = (int)(it / 10 % NCPU);
		unsigned long guests = kinds[KVMDBG_STOP_GUEST];

		if (it % 10 == 8) {
			/* Our hardware breakpoint in between... */
			if (x86) {
				ex.exception = 1;
				ex.dr6 = 0xffff0ff0ull | 1;
			} else {
				ex.esr = (0x30ull << 26) | (1ull << 25);
			}
			ex.pc = e.bp_hw;
		} else if (it % 10 == 9 || it % 2) {
			/* ...then the step past it (ours), or the guest's own
			 * single-step trap. */
			if (x86) {
				ex.exception = 1;
				ex.dr6 = 0xffff0ff0ull | (1ull << 14);
			} else {
				ex.esr = (0x32ull << 26) | (1ull << 25);
			}
			ex.pc = 0x3000 + it;
		} else {
			/* The guest's own breakpoint instruction (x86: the guest's
			 * 0xcc at 175; arm64: a BRK with another immediate). */
			if (x86) {
				ex.exception = 3;
				ex.pc = 175;
			} else {
				ex.esr = (0x3cull << 26) | (1ull << 25) | 0x1234;
				ex.pc = 0x3000;
			}
		}
		one(&e, cpu, &ex, it, kinds);
		ck_assert_uint_eq(kinds[KVMDBG_STOP_GUEST], guests + (it % 10 < 8));
	}
	ck_assert_uint_eq(kinds[KVMDBG_STOP_BREAK], 2000);
	ck_assert_uint_eq(fh.v[0].inject_calls + fh.v[1].inject_calls, kinds[KVMDBG_STOP_GUEST]);
	env_free(&e);
}

START_TEST(test_spin_x86)
{
	spin(KVMDBG_ARCH_X86_64);
}
END_TEST

START_TEST(test_spin_arm64)
{
	spin(KVMDBG_ARCH_ARM64);
}
END_TEST

/* ---- the guest's own absurd debug state (overlay) ---- */

static void absurd_guest(enum kvmdbg_arch arch, unsigned long it, struct kvmdbg_guest_regs *g)
{
	memset(g, 0, sizeof(*g));
	if (arch == KVMDBG_ARCH_X86_64) {
		g->nr[KVMDBG_POOL_BP] = 4;
		for (int n = 0; n < 4; n++)
			g->value[KVMDBG_POOL_BP][n] = it % 3 ? rnd() : 0x1000 + (rnd() & 0xff);
		switch (it % 4) {
		case 0:
			g->dr7 = UINT64_MAX; /* every bit: I/O slots, GD, LEN 10 for exec */
			break;
		case 1:
			/* Every slot enabled as an I/O breakpoint (RW = 10), GD. */
			g->dr7 = 0xff | 0x2222ull << 16 | (rnd() & 0x8888ull << 16) | 1ull << 13;
			break;
		default:
			g->dr7 = rnd();
			break;
		}
		g->dr6 = rnd();
		return;
	}
	g->mdscr = it % 2 ? (1ull << 15 | 1ull << 13) | (rnd() & ~(3ull << 13)) : rnd();
	g->nr[KVMDBG_POOL_BP] = it % 5 == 0 ? 255 : (unsigned int)(rnd() % 17);
	g->nr[KVMDBG_POOL_WP] = it % 7 == 0 ? 255 : (unsigned int)(rnd() % 17);
	for (unsigned int p = 0; p < KVMDBG_NR_POOLS; p++)
		for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++) {
			uint64_t c;

			switch ((it + n) % 6) {
			case 0:
				c = UINT64_MAX;
				break;
			case 1:
				c = 1 | 1ull << 13 | (rnd() & (3ull << 14)); /* HMC, SSC: EL2 */
				break;
			case 2:
				c = 1 | 6 | (rnd() % 16) << 20 | (rnd() % 16) << 16; /* BT / WT, LBN */
				break;
			case 3:
				c = 1 | 6 | (rnd() % 3) << 24 | (rnd() & 0x1fe0); /* reserved MASK, odd BAS */
				break;
			default:
				c = rnd() | 1;
				break;
			}
			g->ctrl[p][n] = c;
			g->value[p][n] = (it + n) % 3 ? rnd() : 0x1000 + (rnd() & 0x3f);
		}
}

static void guest_slots_sanitised(enum kvmdbg_arch arch)
{
	const struct kvmdbg_arch_ops *a =
		arch == KVMDBG_ARCH_X86_64 ? &kvmdbg_x86_ops : &kvmdbg_arm64_ops;
	unsigned long merged = 0, refused = 0;
	char why[160];

	ck_assert_ptr_nonnull(a->guest_slots);
	for (unsigned long it = 0; it < 50000; it++) {
		struct kvmdbg_guest_regs g;
		struct kvmdbg_hwstate out;
		unsigned int rejected = 12345, enabled = 0;

		absurd_guest(arch, it, &g);
		a->guest_slots(&g, &out, &rejected);
		for (unsigned int p = 0; p < KVMDBG_NR_POOLS; p++)
			for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++) {
				const struct kvmdbg_hwslot *s = &out.slot[p][n];

				if (!s->ctrl)
					continue;
				enabled++;
				ck_assert_msg(n < g.nr[p], "iteration %lu: slot %u/%u beyond the guest's %u",
					      it, p, n, g.nr[p]);
				ck_assert_msg(slot_sane(arch, p, n, s, why, sizeof(why)),
					      "iteration %lu: guest slot %u/%u: %s", it, p, n, why);
			}
		ck_assert_uint_le(rejected, (arch == KVMDBG_ARCH_X86_64 ? 4u : 32u) - enabled);
		merged += enabled;
		refused += rejected;
	}
	printf("hostile guest state %s: 50000 absurd register sets: %lu slots kept (sanitised), "
	       "%lu refused\n", a->name, merged, refused);
	fflush(stdout);
	ck_assert_uint_gt(merged, 0);
	ck_assert_uint_gt(refused, 0);
}

START_TEST(test_guest_state_x86)
{
	guest_slots_sanitised(KVMDBG_ARCH_X86_64);
}
END_TEST

START_TEST(test_guest_state_arm64)
{
	guest_slots_sanitised(KVMDBG_ARCH_ARM64);
}
END_TEST

/* The overlay on: absurd guest state and absurd exits together. */
static void overlay_hostile(enum kvmdbg_arch arch)
{
	struct kvmdbg_vm_opts o = {.sz = sizeof(o), .mem = &fh_mem_ops, .mem_ctx = &fh,
				   .overlay = KVMDBG_OVERLAY_GUEST};
	struct kvmdbg_vm *vm;
	struct kvmdbg_vcpu *v;
	struct kvm_run kr = {.exit_reason = KVM_EXIT_DEBUG};
	bool x86 = arch == KVMDBG_ARCH_X86_64;
	unsigned long kinds[5] = {0}, guest_slots = 0;
	char why[160];
	int r;

	fh_reset(arch);
	r = kvmdbg_vm_new_host(-1, &o, fh_host(), &fh, &vm);
	if (r == -EOPNOTSUPP) {
		printf("not exercised here: overlay on %s (kvmdbg_vm_new: -EOPNOTSUPP)\n",
		       x86 ? "x86_64" : "arm64");
		return;
	}
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(kvmdbg_vcpu_new(vm, 0, &kr, &v), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(vm, KVMDBG_BREAK_HW, 0x200, x86 ? 1 : 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(vm, KVMDBG_WATCH_WRITE, 0x1000, 8), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(vm, KVMDBG_BREAK_SW, 0x100, x86 ? 1 : 4), 0);
	for (unsigned long it = 0; it < 20000; it++) {
		struct kvmdbg_exit ex;
		struct kvmdbg_event ev;
		const struct fh_vcpu *f = &fh.v[0];

		absurd_guest(arch, it, &fh.guest);
		ck_assert_int_eq(kvmdbg_vcpu_refresh_guest(v), 0);
		r = kvmdbg_vcpu_prepare(v);
		ck_assert_msg(r == 0, "iteration %lu: prepare %d", it, r);
		for (unsigned int p = 0; p < KVMDBG_NR_POOLS; p++)
			for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++) {
				const struct kvmdbg_hwslot *s = &f->hw.slot[p][n];
				uint32_t owner = vm->slots.owner[p][n];
				bool disarmed = kvmdbg_stepover_disarms(v, p, n, owner);

				ck_assert_msg(slot_sane(arch, p, n, s, why, sizeof(why)),
					      "iteration %lu: KVM got slot %u/%u: %s", it, p, n, why);
				/* The host's points keep their slots: the host wins. */
				if (owner && !disarmed)
					ck_assert_msg(s->ctrl == vm->slots.hw[p][n].ctrl &&
							      s->value == vm->slots.hw[p][n].value,
						      "iteration %lu: the host's slot %u/%u lost", it, p,
						      n);
				guest_slots += s->ctrl && !owner;
			}
		ck_assert_msg(!(f->ctl & ~(KVMDBG_CTL_ENABLE | KVMDBG_CTL_STEP | KVMDBG_CTL_SW_BP |
					   KVMDBG_CTL_HW | KVMDBG_CTL_BLOCKIRQ | KVMDBG_CTL_INJECT_DB |
					   KVMDBG_CTL_INJECT_BP | (x86 ? KVMDBG_CTL_GD : 0))),
			      "iteration %lu: ctl %#x", it, f->ctl);
		if (x86)
			exit_x86(NULL, it, &ex);
		else
			exit_arm64(NULL, it, &ex);
		fh.v[0].exit = ex;
		fh.v[0].pc = ex.pc;
		kr.exit_reason = KVM_EXIT_DEBUG;
		r = kvmdbg_vcpu_handle_exit(v, &ev);
		if (r == -EFAULT && fh_swbp_unreadable(&ex, x86))
			continue; /* whose instruction it is cannot be told */
		ck_assert_msg(r == 0, "iteration %lu: handle_exit %d", it, r);
		ck_assert_msg((unsigned int)ev.kind <= KVMDBG_STOP_NONE, "kind %d", ev.kind);
		kinds[ev.kind]++;
	}
	printf("hostile guest state with the overlay, %s: 20000 rounds: %lu guest slots merged; "
	       "%lu step %lu break %lu watch %lu guest %lu none\n", x86 ? "x86_64" : "arm64",
	       guest_slots, kinds[0], kinds[1], kinds[2], kinds[3], kinds[4]);
	fflush(stdout);
	ck_assert_int_eq(kvmdbg_vm_remove_all(vm), 0);
	kvmdbg_vcpu_free(v);
	kvmdbg_vm_free(vm);
	ck_assert(fh_mem_is_orig());
}

START_TEST(test_overlay_hostile_x86)
{
	overlay_hostile(KVMDBG_ARCH_X86_64);
}
END_TEST

START_TEST(test_overlay_hostile_arm64)
{
	overlay_hostile(KVMDBG_ARCH_ARM64);
}
END_TEST

TEST_SUITE(hostile)
{
	tests_set_timeout(tc, 300);
	add_test(tc, test_hostile_x86);
	add_test(tc, test_hostile_arm64);
	add_test(tc, test_spin_x86);
	add_test(tc, test_spin_arm64);
	add_test(tc, test_guest_state_x86);
	add_test(tc, test_guest_state_arm64);
	add_test(tc, test_overlay_hostile_x86);
	add_test(tc, test_overlay_hostile_arm64);
}
