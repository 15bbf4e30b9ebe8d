/* SPDX-License-Identifier: MIT */
/*
 * Fault injection: the kvm-facing code with each fallible call failing in
 * turn, at every call site a scenario reaches.
 *
 * Against the fake KVM (suite `fault`, in the unit binary test-hardening):
 * a scenario per arch (software, hardware and watch points, step-overs,
 * a user step, re-injection, stale hits, a register change, remove_all)
 * is run once to count its fallible calls (host ops and memory callbacks),
 * then once per call and errno (EINTR, EFAULT, EINVAL, EBUSY, and a memory
 * write that fails half-way) with exactly that call failing. Each API call
 * that meets the failure must return it with the library's state, what KVM
 * holds and guest memory as before; the retry must give what the clean run
 * gave, and the rest of the scenario must go as in the clean run. A call
 * that absorbs a failure (returns success) must leave nothing wrong. After
 * every step: the software breakpoint table matches guest memory and
 * interrupts are masked (arm64) only during an internal step.
 *
 * On /dev/kvm (suite `fault_kvm`, built with -DKVMDBG_FAULT_REAL_KVM into the
 * kvm binary test-hardening-kvm): the same idea through
 * kvmdbg_set_ioctl_hook() with a real guest: every library ioctl of a
 * breakpoint/step-over/register-change/step scenario and of a re-injection
 * scenario (the guest's own #DBs) fails in turn; the failing call returns
 * the error, the retry works, and the guest sees exactly the stops (and
 * its own #DBs, once each) of the clean run.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/kvm.h>

#include "kvmdbg-int.h"
#include "test-common.h"

static const int fault_errnos[] = {EINTR, EFAULT, EINVAL, EBUSY};

#ifndef KVMDBG_FAULT_REAL_KVM

#include "fake-host.h"

/* ---- scenarios ---- */

enum sop {
	S_INSERT,
	S_REMOVE,
	S_REMOVE_ALL,
	S_SET_STEP,
	S_PREPARE,
	S_EXIT,   /* set up the vCPU's next exit (no library call) */
	S_HANDLE,
	S_REGS,   /* the VMM moves the PC and calls regs_changed */
	S_END,
};

enum ex {
	E_SW,     /* our breakpoint instruction (or the guest's) at addr */
	E_HW,     /* the slot holding execution breakpoint addr; pc = addr */
	E_WATCH,  /* the slot whose piece starts at addr (arm64: FAR = addr) */
	E_STEP,   /* a step trap with pc = addr (the guest's own when not stepping) */
};

struct sstep {
	enum sop op;
	int cpu;
	int type;          /* S_INSERT/S_REMOVE: enum kvmdbg_type; S_EXIT: enum ex */
	uint64_t addr, len;
};

#define INS(t, a, l) {S_INSERT, 0, (t), (a), (l)}
#define REM(t, a, l) {S_REMOVE, 0, (t), (a), (l)}
#define PREP(c) {S_PREPARE, (c), 0, 0, 0}
#define EXIT(c, e, a) {S_EXIT, (c), (e), (a), 0}
#define HANDLE(c) {S_HANDLE, (c), 0, 0, 0}
#define STEP(c, on) {S_SET_STEP, (c), 0, (on), 0}
#define REGS(c, pc) {S_REGS, (c), 0, (pc), 0}

/* x86: 175 holds an 0xcc of the guest's own (fake memory pattern). */
static const struct sstep scen_x86[] = {
	INS(KVMDBG_BREAK_SW, 0x100, 1),
	INS(KVMDBG_BREAK_HW, 0x200, 1),
	INS(KVMDBG_WATCH_WRITE, 0x1002, 6), /* two slots: 2 bytes at 0x1002, 4 at 0x1004 */
	INS(KVMDBG_BREAK_SW, 0x300, 1),
	INS(KVMDBG_BREAK_SW, 0x100, 1), /* a second reference */
	PREP(0), PREP(1),
	/* software breakpoint, step-over, re-insert */
	EXIT(0, E_SW, 0x100), HANDLE(0), PREP(0), EXIT(0, E_STEP, 0x101), HANDLE(0), PREP(0),
	/* hardware breakpoint, user step at it */
	EXIT(0, E_HW, 0x200), HANDLE(0), STEP(0, 1), PREP(0), EXIT(0, E_STEP, 0x203), HANDLE(0),
	STEP(0, 0), PREP(0),
	/* watchpoint (trap: nothing to step past) */
	EXIT(1, E_WATCH, 0x1004), HANDLE(1), PREP(1),
	/* plain resume from the hardware breakpoint: RF where verified,
	 * otherwise disarm-step-rearm (then the step trap is internal) */
	EXIT(0, E_HW, 0x200), HANDLE(0), PREP(0), EXIT(0, E_STEP, 0x203), HANDLE(0), PREP(0),
	/* the guest's own TF step: re-injected */
	EXIT(1, E_STEP, 0x500), HANDLE(1), PREP(1),
	EXIT(1, E_STEP, 0x504), HANDLE(1), INS(KVMDBG_BREAK_HW, 0x208, 1), PREP(1),
	REM(KVMDBG_BREAK_HW, 0x208, 1),
	/* hit, then removed before the exit is handled: stale */
	EXIT(1, E_SW, 0x300), REM(KVMDBG_BREAK_SW, 0x300, 1), HANDLE(1), PREP(1),
	/* the guest's own int3 */
	EXIT(0, E_SW, 175), HANDLE(0), PREP(0),
	/* stopped at the hardware breakpoint, the debugger moves the PC onto
	 * the software one: the step-over follows the PC */
	EXIT(0, E_HW, 0x200), HANDLE(0), REGS(0, 0x100), PREP(0), EXIT(0, E_STEP, 0x101),
	HANDLE(0), PREP(0),
	REM(KVMDBG_BREAK_SW, 0x100, 1),
	REM(KVMDBG_BREAK_HW, 0x200, 0),
	INS(KVMDBG_BREAK_SW, 0x400, 1),
	INS(KVMDBG_BREAK_SW, 0x401, 1),
	{S_REMOVE_ALL, 0, 0, 0, 0},
	PREP(0), PREP(1),
	{S_END, 0, 0, 0, 0},
};

static const struct sstep scen_arm64[] = {
	INS(KVMDBG_BREAK_SW, 0x100, 4),
	INS(KVMDBG_BREAK_HW, 0x200, 4),
	INS(KVMDBG_WATCH_WRITE, 0x1001, 6),
	INS(KVMDBG_BREAK_SW, 0x300, 4),
	PREP(0), PREP(1),
	EXIT(0, E_SW, 0x100), HANDLE(0), PREP(0), EXIT(0, E_STEP, 0x104), HANDLE(0), PREP(0),
	EXIT(0, E_HW, 0x200), HANDLE(0), STEP(0, 1), PREP(0), EXIT(0, E_STEP, 0x204), HANDLE(0),
	STEP(0, 0), PREP(0),
	/* watchpoint: fires before the access, so resuming steps past it */
	EXIT(1, E_WATCH, 0x1001), HANDLE(1), PREP(1), EXIT(1, E_STEP, 0x604), HANDLE(1), PREP(1),
	EXIT(1, E_STEP, 0x500), HANDLE(1), PREP(1),
	/* re-injection and a change of the set in one prepare */
	EXIT(1, E_STEP, 0x504), HANDLE(1), INS(KVMDBG_BREAK_HW, 0x208, 4), PREP(1),
	REM(KVMDBG_BREAK_HW, 0x208, 4),
	EXIT(1, E_SW, 0x300), REM(KVMDBG_BREAK_SW, 0x300, 4), HANDLE(1), PREP(1),
	EXIT(0, E_HW, 0x200), HANDLE(0), REGS(0, 0x100), PREP(0), EXIT(0, E_STEP, 0x104),
	HANDLE(0), PREP(0),
	REM(KVMDBG_BREAK_SW, 0x100, 4),
	INS(KVMDBG_BREAK_SW, 0x400, 4),
	INS(KVMDBG_BREAK_SW, 0x404, 4),
	{S_REMOVE_ALL, 0, 0, 0, 0},
	PREP(0), PREP(1),
	{S_END, 0, 0, 0, 0},
};

/* ---- running a scenario ---- */

#define NCPU 2
#define MAX_STEPS 128

struct result {
	int r[MAX_STEPS];
	int kind[MAX_STEPS];
	unsigned long calls_after[MAX_STEPS];
	uint8_t mem[FH_MEM_SIZE];
	uint32_t ctl[NCPU];
	struct kvmdbg_hwstate hw[NCPU];
};

struct run {
	struct kvmdbg_vm *vm;
	struct kvmdbg_vcpu *v[NCPU];
	struct kvm_run kr[NCPU];
};

/* A comparable copy of everything a failed call must leave alone. */
struct snap {
	uint8_t mem[FH_MEM_SIZE];
	struct fh_vcpu fv[NCPU];
	struct kvmdbg_hwpoint points[KVMDBG_MAX_POINTS];
	struct kvmdbg_slots slots;
	uint64_t gen;
	size_t sw_count;
	struct {
		uint64_t addr;
		uint8_t orig[4];
		unsigned int refs, lifted;
	} sw[16];
	struct {
		uint64_t gen;
		bool applied_valid;
		uint32_t applied_ctl;
		struct kvmdbg_hwstate applied;
		uint32_t applied_owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS];
		bool user_step, so_pc_stale, so_sw, so_irq_masked, dirty, ri_pending;
		int so;
		uint64_t so_pc, so_irq_saved, ri_dr6, ri_esr, ri_far, ri_pc;
		uint32_t so_slots, ri_exception;
	} v[NCPU];
};

static void take_snap(const struct run *rn, struct snap *s)
{
	const struct kvmdbg_vm *vm = rn->vm;
	unsigned int n = 0;

	memset(s, 0, sizeof(*s));
	memcpy(s->mem, fh.mem, sizeof(s->mem));
	memcpy(s->fv, fh.v, sizeof(s->fv));
	memcpy(s->points, vm->points, sizeof(s->points));
	s->slots = vm->slots;
	s->gen = atomic_load(&vm->gen);
	s->sw_count = vm->sw.count;
	for (size_t i = 0; i < vm->sw.cap && n < 16; i++) {
		const struct kvmdbg_swbp *e = &vm->sw.e[i];

		if (e->addr == KVMDBG_SWTAB_EMPTY)
			continue;
		s->sw[n].addr = e->addr;
		memcpy(s->sw[n].orig, e->orig, 4);
		s->sw[n].refs = e->refs;
		s->sw[n].lifted = e->lifted;
		n++;
	}
	for (int i = 0; i < NCPU; i++) {
		const struct kvmdbg_vcpu *v = rn->v[i];

		s->v[i].gen = v->gen;
		s->v[i].applied_valid = v->applied_valid;
		s->v[i].applied_ctl = v->applied_ctl;
		s->v[i].applied = v->applied;
		memcpy(s->v[i].applied_owner, v->applied_owner, sizeof(v->applied_owner));
		s->v[i].user_step = v->user_step;
		s->v[i].so_pc_stale = v->so.pc_stale;
		s->v[i].so_sw = v->so.sw;
		s->v[i].so_irq_masked = v->so.irq_masked;
		s->v[i].dirty = v->dirty;
		s->v[i].ri_pending = v->reinject.pending;
		s->v[i].so = v->so.state;
		s->v[i].so_pc = v->so.pc;
		s->v[i].so_irq_saved = v->so.irq_saved;
		s->v[i].so_slots = v->so.slots;
		s->v[i].ri_exception = v->reinject.exception;
		s->v[i].ri_dr6 = v->reinject.dr6;
		s->v[i].ri_esr = v->reinject.esr;
		s->v[i].ri_far = v->reinject.far;
		s->v[i].ri_pc = v->reinject.pc;
	}
}

/* Name what differs between two snapshots, or NULL. */
static const char *snap_diff(const struct snap *a, const struct snap *b, char *buf, size_t len)
{
#define DIFF(field, what)                                                   \
	do {                                                                \
		if (memcmp(&a->field, &b->field, sizeof(a->field))) {       \
			snprintf(buf, len, "%s", what);                     \
			return buf;                                         \
		}                                                           \
	} while (0)
	for (size_t i = 0; i < FH_MEM_SIZE; i++)
		if (a->mem[i] != b->mem[i]) {
			snprintf(buf, len, "guest byte %#zx: %#x -> %#x", i, a->mem[i], b->mem[i]);
			return buf;
		}
	for (int i = 0; i < NCPU; i++) {
		DIFF(fv[i].ctl, "KVM debug control of a vCPU");
		DIFF(fv[i].hw, "KVM debug registers of a vCPU");
		DIFF(fv[i].daif, "a vCPU's PSTATE.DAIF");
		DIFF(fv[i].rf, "a vCPU's RFLAGS.RF");
		/* x86 re-injection writes the guest's DR6 (idempotent); arm64
		 * emulates an exception entry, which must happen once. */
		if (fh.arch == KVMDBG_ARCH_ARM64)
			DIFF(fv[i].inject_calls, "arm64 exception entry emulated for a re-injection");
		DIFF(v[i].gen, "vCPU: applied generation");
		DIFF(v[i].applied_valid, "vCPU: applied_valid");
		DIFF(v[i].applied_ctl, "vCPU: applied_ctl");
		DIFF(v[i].applied, "vCPU: applied state");
		DIFF(v[i].applied_owner, "vCPU: applied owners");
		DIFF(v[i].user_step, "vCPU: user step");
		DIFF(v[i].so, "vCPU: step-over state");
		DIFF(v[i].so_pc, "vCPU: step-over pc");
		DIFF(v[i].so_pc_stale, "vCPU: so_pc_stale");
		DIFF(v[i].so_slots, "vCPU: step-over slots");
		DIFF(v[i].so_sw, "vCPU: software breakpoint lifted");
		DIFF(v[i].so_irq_masked, "vCPU: interrupts masked for a step");
		DIFF(v[i].ri_pending, "vCPU: re-injection pending");
		DIFF(v[i].ri_exception, "vCPU: re-injection");
		DIFF(v[i].ri_dr6, "vCPU: re-injection DR6");
	}
	DIFF(points, "hardware points");
	DIFF(slots, "slot allocation");
	DIFF(gen, "VM generation");
	DIFF(sw_count, "software breakpoint count");
	DIFF(sw, "software breakpoint table");
	return NULL;
#undef DIFF
}

static const struct sstep *scen_of(enum kvmdbg_arch arch)
{
	return arch == KVMDBG_ARCH_X86_64 ? scen_x86 : scen_arm64;
}

static bool x86(void)
{
	return fh.arch == KVMDBG_ARCH_X86_64;
}

/* Program the fake vCPU's next exit from what KVM holds for it. */
static void set_exit(int cpu, enum ex e, uint64_t addr)
{
	struct fh_vcpu *f = &fh.v[cpu];
	struct kvmdbg_exit *x = &f->exit;
	int slot = -1;
	unsigned int pool = KVMDBG_POOL_BP;

	memset(x, 0, sizeof(*x));
	x->pc = addr;
	if (e == E_HW || e == E_WATCH) {
		if (!x86() && e == E_WATCH)
			pool = KVMDBG_POOL_WP;
		for (int s = 0; s < KVMDBG_MAX_SLOTS && slot < 0; s++) {
			const struct kvmdbg_hwslot *hs = &f->hw.slot[pool][s];

			if (hs->ctrl && (e == E_HW ? hs->value == addr
						   : addr >= hs->start && addr - hs->start < hs->len))
				slot = s;
		}
		ck_assert_msg(slot >= 0, "scenario: no armed slot for %#llx", (unsigned long long)addr);
	}
	if (x86()) {
		x->dr7 = 0x400;
		x->dr6 = 0xffff0ff0ull;
		switch (e) {
		case E_SW:
			x->exception = 3;
			break;
		case E_HW:
			x->exception = 1;
			x->dr6 |= 1ull << slot;
			break;
		case E_WATCH:
			x->exception = 1;
			x->dr6 |= 1ull << slot;
			x->pc = 0x680;
			break;
		case E_STEP:
			x->exception = 1;
			x->dr6 |= 1ull << 14;
			break;
		}
	} else {
		switch (e) {
		case E_SW:
			x->esr = (0x3cull << 26) | (1ull << 25) | 0x4b44;
			break;
		case E_HW:
			x->esr = (0x30ull << 26) | (1ull << 25);
			break;
		case E_WATCH:
			x->esr = (0x34ull << 26) | (1ull << 25) | (1ull << 6);
			x->far = addr;
			x->pc = 0x600;
			break;
		case E_STEP:
			x->esr = (0x32ull << 26) | (1ull << 25);
			break;
		}
	}
	f->pc = x->pc;
}

/* Invariants after every step: the software breakpoint table and guest
 * memory agree, and interrupts are masked only during an internal step. */
static const char *invariants(const struct run *rn, char *buf, size_t len)
{
	const struct kvmdbg_vm *vm = rn->vm;
	const struct kvmdbg_arch_ops *a = vm->arch;

	for (size_t i = 0; i < vm->sw.cap; i++) {
		const struct kvmdbg_swbp *e = &vm->sw.e[i];
		bool lifted_ok = false;

		if (e->addr == KVMDBG_SWTAB_EMPTY)
			continue;
		if (e->lifted)
			lifted_ok = !memcmp(fh.mem + e->addr, e->orig, a->sw_len);
		if (!e->lifted && memcmp(fh.mem + e->addr, a->sw_insn, a->sw_len)) {
			snprintf(buf, len,
				 "software breakpoint %#llx is inserted but guest memory there is "
				 "%02x%02x%02x%02x, not the breakpoint instruction (the breakpoint is "
				 "lost)",
				 (unsigned long long)e->addr, fh.mem[e->addr],
				 fh.mem[e->addr + (a->sw_len > 1)], fh.mem[e->addr + 2 * (a->sw_len > 1)],
				 fh.mem[e->addr + 3 * (a->sw_len > 1)]);
			return buf;
		}
		if (e->lifted && !lifted_ok) {
			snprintf(buf, len, "software breakpoint %#llx is lifted but guest memory "
				 "there is not the original", (unsigned long long)e->addr);
			return buf;
		}
	}
	for (size_t i = 0; i < FH_MEM_SIZE; i++) {
		bool covered = false;

		if (fh.mem[i] == fh.orig[i])
			continue;
		for (size_t k = 0; k < vm->sw.cap && !covered; k++) {
			const struct kvmdbg_swbp *e = &vm->sw.e[k];

			covered = e->addr != KVMDBG_SWTAB_EMPTY && i >= e->addr &&
				  i - e->addr < a->sw_len;
		}
		if (!covered) {
			snprintf(buf, len, "guest byte %#zx changed (%#x, original %#x) outside any "
				 "software breakpoint", i, fh.mem[i], fh.orig[i]);
			return buf;
		}
	}
	for (int i = 0; i < NCPU && !x86(); i++)
		if (!!fh.v[i].masked != (rn->v[i]->so.state == KVMDBG_SO_STEPPING)) {
			snprintf(buf, len, "vcpu%d: interrupts masked %u time(s) outside an internal "
				 "step (PSTATE.DAIF %#llx)", i, fh.v[i].masked,
				 (unsigned long long)fh.v[i].daif);
			return buf;
		}
	return NULL;
}

/* One API call of the scenario; fills *kind for S_HANDLE. */
static int do_step(struct run *rn, const struct sstep *s, int *kind)
{
	struct kvmdbg_event ev;
	int r = 0;

	*kind = -1;
	switch (s->op) {
	case S_INSERT:
		return kvmdbg_vm_insert(rn->vm, (enum kvmdbg_type)s->type, s->addr, s->len);
	case S_REMOVE:
		return kvmdbg_vm_remove(rn->vm, (enum kvmdbg_type)s->type, s->addr, s->len);
	case S_REMOVE_ALL:
		return kvmdbg_vm_remove_all(rn->vm);
	case S_SET_STEP:
		return kvmdbg_vcpu_set_step(rn->v[s->cpu], (int)s->addr);
	case S_PREPARE:
		return kvmdbg_vcpu_prepare(rn->v[s->cpu]);
	case S_EXIT:
		/* The vCPU ran: the instruction RF applied to is done. */
		fh.v[s->cpu].rf = false;
		set_exit(s->cpu, (enum ex)s->type, s->addr);
		return 0;
	case S_HANDLE:
		rn->kr[s->cpu].exit_reason = KVM_EXIT_DEBUG;
		r = kvmdbg_vcpu_handle_exit(rn->v[s->cpu], &ev);
		if (!r)
			*kind = ev.kind;
		return r;
	case S_REGS:
		fh.v[s->cpu].pc = s->addr;
		return kvmdbg_vcpu_regs_changed(rn->v[s->cpu]);
	case S_END:
		break;
	}
	return 0;
}

static const char *const op_names[] = {"insert", "remove", "remove_all", "set_step", "prepare",
				       "exit", "handle_exit", "regs_changed", "end"};

/* The scenarios run with this overlay mode (the overlay adds read_guest_regs). */
static enum kvmdbg_overlay fault_overlay;

struct fault_stats {
	unsigned int points;       /* (call index, errno) runs with a failure injected */
	unsigned int returned;     /* the failing API call returned the error */
	unsigned int absorbed;     /* by design: the API call succeeded anyway */
	unsigned int site_hits[FH_NR_SITES];
	unsigned int api_site[S_END][FH_NR_SITES];
	unsigned int absorbed_at[S_END][FH_NR_SITES];
};

/*
 * Run the scenario with the fail_at-th fallible call failing with -err
 * (fail_at 0: a clean run into *res). Failures of the library's contract
 * are collected into msg (first one) and counted.
 */
static bool run_scenario(enum kvmdbg_arch arch, uint64_t features, unsigned long fail_at, int err,
			 bool partial, const struct result *base, struct result *res,
			 struct fault_stats *fs, int *site, char *msg, size_t msglen)
{
	struct kvmdbg_vm_opts o = {.sz = sizeof(o), .mem = &fh_mem_ops, .mem_ctx = &fh, .features = features,
				   .overlay = fault_overlay};
	const struct sstep *sc = scen_of(arch);
	struct run rn;
	struct snap before, after;
	char why[256];
	const char *d;
	bool ok = true, injected = false;
	int r;

	memset(&rn, 0, sizeof(rn));
	memset(res, 0, sizeof(*res));
	fh_reset(arch);
	if (fault_overlay == KVMDBG_OVERLAY_GUEST) {
		/* The guest uses its own DR1 / watchpoint 1: merged beside ours. */
		fh.guest.value[KVMDBG_POOL_BP][1] = 0x700;
		fh.guest.dr7 |= 1ull << 2;
		fh.guest.mdscr = 1ull << 15 | 1ull << 13;
		fh.guest.ctrl[KVMDBG_POOL_BP][1] = 1 | 6 | 0xfull << 5;
		fh.guest.value[KVMDBG_POOL_BP][1] = 0x700;
	}
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, fh_host(), &fh, &rn.vm), 0);
	for (int i = 0; i < NCPU; i++)
		ck_assert_int_eq(kvmdbg_vcpu_new(rn.vm, i, &rn.kr[i], &rn.v[i]), 0);
	fh_fault_arm(fail_at, err);
	fh.fail_partial = partial;

	for (int k = 0; sc[k].op != S_END; k++) {
		const struct sstep *s = &sc[k];
		int kind;
		bool hit;

		take_snap(&rn, &before);
		r = do_step(&rn, s, &kind);
		hit = !injected && fh.failed_site >= 0;
		if (hit) {
			injected = true;
			fs->points++;
			fs->site_hits[fh.failed_site]++;
			fs->api_site[s->op][fh.failed_site]++;
			if (r == -err) {
				fs->returned++;
				take_snap(&rn, &after);
				/* A PC re-read after regs_changed is a refreshed cache,
				 * not a change. */
				for (int i = 0; i < NCPU; i++)
					if (before.v[i].so_pc_stale && !after.v[i].so_pc_stale &&
					    after.v[i].so_pc == fh.v[i].pc) {
						after.v[i].so_pc_stale = true;
						after.v[i].so_pc = before.v[i].so_pc;
					}
				d = s->op == S_REMOVE_ALL ? NULL
							  : snap_diff(&before, &after, why, sizeof(why));
				if (d && ok) {
					snprintf(msg, msglen,
						 "step %d (%s vcpu%d): %s failing with %d%s: error "
						 "returned but state changed: %s",
						 k, op_names[s->op], s->cpu, fh_site_names[fh.failed_site],
						 -err, partial ? " half-way" : "", d);
					ok = false;
				}
				/* The next attempt works. */
				r = do_step(&rn, s, &kind);
			} else if (r == base->r[k] && kind == base->kind[k]) {
				fs->absorbed++;
				fs->absorbed_at[s->op][fh.failed_site]++;
			} else if (ok) {
				snprintf(msg, msglen,
					 "step %d (%s vcpu%d): %s failing with %d%s: returned %d (kind "
					 "%d), clean run %d (kind %d)",
					 k, op_names[s->op], s->cpu, fh_site_names[fh.failed_site], -err,
					 partial ? " half-way" : "", r, kind, base->r[k], base->kind[k]);
				ok = false;
			}
		}
		res->r[k] = r;
		res->kind[k] = kind;
		res->calls_after[k] = fh.calls;
		if (base && ok && (r != base->r[k] || kind != base->kind[k])) {
			snprintf(msg, msglen,
				 "step %d (%s vcpu%d): returned %d (kind %d), clean run %d (kind %d)%s%s",
				 k, op_names[s->op], s->cpu, r, kind, base->r[k], base->kind[k],
				 injected ? " after a failure of " : "",
				 injected ? fh_site_names[fh.failed_site] : "");
			ok = false;
		}
		d = invariants(&rn, why, sizeof(why));
		if (d && ok) {
			snprintf(msg, msglen, "after step %d (%s vcpu%d)%s%s%s: %s", k, op_names[s->op],
				 s->cpu, injected ? " with a failure of " : "",
				 injected ? fh_site_names[fh.failed_site] : "",
				 injected && partial ? " half-way" : "", d);
			ok = false;
		}
	}
	*site = fh.failed_site;
	fh_fault_arm(0, 0);
	memcpy(res->mem, fh.mem, sizeof(res->mem));
	for (int i = 0; i < NCPU; i++) {
		res->ctl[i] = fh.v[i].ctl;
		res->hw[i] = fh.v[i].hw;
	}
	if (base && ok && memcmp(res->mem, base->mem, sizeof(res->mem))) {
		snprintf(msg, msglen, "guest memory at the end differs from the clean run");
		ok = false;
	}
	if (base && ok && (memcmp(res->ctl, base->ctl, sizeof(res->ctl)) ||
			   memcmp(res->hw, base->hw, sizeof(res->hw)))) {
		snprintf(msg, msglen, "KVM state at the end differs from the clean run");
		ok = false;
	}
	for (int i = 0; i < NCPU; i++)
		kvmdbg_vcpu_free(rn.v[i]);
	kvmdbg_vm_free(rn.vm);
	if (ok && !fh_mem_is_orig()) {
		snprintf(msg, msglen, "guest memory not restored after vm_free");
		ok = false;
	}
	return ok;
}

static void fault_all(enum kvmdbg_arch arch, uint64_t features, enum kvmdbg_overlay overlay,
		      const char *label)
{
	static struct result base, res;
	struct fault_stats fs;
	char msg[512];
	unsigned long n;
	unsigned int failures = 0;
	static char report[8192], first[512];
	size_t rl = 0;
	int site = -1;

	memset(&fs, 0, sizeof(fs));
	report[0] = 0;
	fault_overlay = overlay;
	ck_assert_msg(run_scenario(arch, features, 0, 0, false, NULL, &base, &fs, &site, msg,
				   sizeof(msg)),
		      "%s: clean run: %s", label, msg);
	if (getenv("KVMDBG_FAULT_VERBOSE"))
		for (int k = 0; scen_of(arch)[k].op != S_END; k++)
			printf("fault %s: clean step %d %s vcpu%d: %d kind %d, calls so far %lu\n",
			       label, k, op_names[scen_of(arch)[k].op], scen_of(arch)[k].cpu,
			       base.r[k], base.kind[k], base.calls_after[k]);
	n = base.calls_after[ARRAY_SIZE(base.calls_after) - 1];
	for (int k = 0; k < MAX_STEPS; k++)
		if (base.calls_after[k] > n)
			n = base.calls_after[k];
	for (unsigned long at = 1; at <= n; at++) {
		/* Each errno, then (for memory writes) one that fails half-way. */
		for (size_t e = 0; e <= ARRAY_SIZE(fault_errnos); e++) {
			bool partial = e == ARRAY_SIZE(fault_errnos);
			int err = partial ? EFAULT : fault_errnos[e];

			if (partial && site != FH_MEM_WRITE)
				continue;
			msg[0] = 0;
			if (!run_scenario(arch, features, at, err, partial, &base, &res, &fs, &site,
					  msg, sizeof(msg))) {
				/* Print each distinct failure once. */
				if (!failures++)
					snprintf(first, sizeof(first), "call %lu: %s", at, msg);
				if (rl < sizeof(report) - 600 && !strstr(report, msg)) {
					rl += (size_t)snprintf(report + rl, sizeof(report) - rl, "%s\n",
							       msg);
					printf("fault %s: call %lu: %s\n", label, at, msg);
				}
			}
		}
	}
	printf("fault %s: %lu fallible calls in the scenario, %u failure points injected "
	       "(%u returned the error, %u were absorbed: the call succeeded), %u broke the contract\n",
	       label, n, fs.points, fs.returned, fs.absorbed, failures);
	printf("fault %s: call sites reached:", label);
	for (int op = 0; op < S_END; op++)
		for (int s = 0; s < FH_NR_SITES; s++)
			if (fs.api_site[op][s])
				printf(" %s/%s", op_names[op], fh_site_names[s]);
	printf("\nfault %s: failures the API call absorbed (returned what the clean run did):",
	       label);
	for (int op = 0; op < S_END; op++)
		for (int s = 0; s < FH_NR_SITES; s++)
			if (fs.absorbed_at[op][s])
				printf(" %s/%s x%u", op_names[op], fh_site_names[s],
				       fs.absorbed_at[op][s]);
	printf("\n");
	fflush(stdout);
	ck_assert_msg(failures == 0, "%s: %u injected failures broke the contract (listed above), "
		      "first: %s", label, failures, first);
}

START_TEST(test_fault_x86)
{
	fault_all(KVMDBG_ARCH_X86_64, 0, KVMDBG_OVERLAY_OFF, "x86_64");
}
END_TEST

START_TEST(test_fault_x86_rf)
{
	fault_all(KVMDBG_ARCH_X86_64, KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_RF_RESUME,
		  KVMDBG_OVERLAY_OFF, "x86_64+rf");
}
END_TEST

START_TEST(test_fault_arm64)
{
	fault_all(KVMDBG_ARCH_ARM64, 0, KVMDBG_OVERLAY_OFF, "arm64");
}
END_TEST

/* The same with the guest/host overlay on: its guest register reads fail too. */
START_TEST(test_fault_overlay_x86)
{
	fault_all(KVMDBG_ARCH_X86_64, 0, KVMDBG_OVERLAY_GUEST, "x86_64+overlay");
}
END_TEST

START_TEST(test_fault_overlay_arm64)
{
	fault_all(KVMDBG_ARCH_ARM64, 0, KVMDBG_OVERLAY_GUEST, "arm64+overlay");
}
END_TEST

/* vm_new: a failing probe returns its error, nothing is left behind (the
 * valgrind and ASan runs see leaks), and the next attempt works. */
START_TEST(test_fault_vm_new)
{
	for (size_t e = 0; e < ARRAY_SIZE(fault_errnos); e++) {
		struct kvmdbg_vm *vm = (struct kvmdbg_vm *)1;

		fh_reset(KVMDBG_ARCH_X86_64);
		fh_fault_arm(1, fault_errnos[e]);
		ck_assert_int_eq(kvmdbg_vm_new_host(-1, NULL, fh_host(), &fh, &vm), -fault_errnos[e]);
		ck_assert_ptr_null(vm);
		ck_assert_int_eq(kvmdbg_vm_new_host(-1, NULL, fh_host(), &fh, &vm), 0);
		kvmdbg_vm_free(vm);
	}
}
END_TEST

/* The void frees: a failing KVM_SET_GUEST_DEBUG or memory write cannot be
 * reported; everything is still freed (no leak) and nothing crashes. */
START_TEST(test_fault_frees)
{
	struct kvmdbg_vm_opts o = {.sz = sizeof(o), .mem = &fh_mem_ops, .mem_ctx = &fh};
	struct kvm_run kr;
	struct kvmdbg_vm *vm;
	struct kvmdbg_vcpu *v;

	for (size_t e = 0; e < ARRAY_SIZE(fault_errnos); e++) {
		fh_reset(KVMDBG_ARCH_X86_64);
		ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, fh_host(), &fh, &vm), 0);
		ck_assert_int_eq(kvmdbg_vcpu_new(vm, 0, &kr, &v), 0);
		ck_assert_int_eq(kvmdbg_vm_insert(vm, KVMDBG_BREAK_SW, 0x100, 1), 0);
		ck_assert_int_eq(kvmdbg_vcpu_prepare(v), 0);
		fh_fault_arm(1, fault_errnos[e]);
		kvmdbg_vcpu_free(v);
		ck_assert_int_eq(fh.failed_site, FH_SET_GUEST_DEBUG);
		fh_fault_arm(1, fault_errnos[e]);
		kvmdbg_vm_free(vm);
		ck_assert_int_eq(fh.failed_site, FH_MEM_WRITE);
	}
}
END_TEST

TEST_SUITE(fault)
{
	tests_set_timeout(tc, 300);
	add_test(tc, test_fault_x86);
	add_test(tc, test_fault_x86_rf);
	add_test(tc, test_fault_arm64);
	add_test(tc, test_fault_overlay_x86);
	add_test(tc, test_fault_overlay_arm64);
	add_test(tc, test_fault_vm_new);
	add_test(tc, test_fault_frees);
}

#else /* KVMDBG_FAULT_REAL_KVM: the same on /dev/kvm through the ioctl seam */

#include <stdatomic.h>
#include <sys/ioctl.h>

#include "kvm-util.h"

static atomic_ulong ioctl_calls, ioctl_fail_at;
static atomic_int ioctl_err;
static atomic_ulong ioctl_injected;

static int fault_ioctl(int fd, unsigned long req, void *arg)
{
	unsigned long n = atomic_fetch_add(&ioctl_calls, 1) + 1;
	int r;

	if (n == atomic_load(&ioctl_fail_at)) {
		atomic_fetch_add(&ioctl_injected, 1);
		return -atomic_load(&ioctl_err);
	}
	r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

struct kres {
	unsigned int stops, steps;
	uint64_t count;
	unsigned int api_errors;    /* API calls that returned the injected error */
	unsigned int bad;           /* API calls that returned anything else */
	char msg[256];
};

/* A library call: an injected failure must come back as -err and the retry
 * must work. */
#define LIB(res, call)                                                                      \
	({                                                                                  \
		unsigned long inj_ = atomic_load(&ioctl_injected);                          \
		int r_ = (call);                                                            \
		if (atomic_load(&ioctl_injected) != inj_) {                                 \
			if (r_ == -atomic_load(&ioctl_err))                                 \
				(res)->api_errors++;                                        \
			else if (!(res)->bad++)                                             \
				snprintf((res)->msg, sizeof((res)->msg),                    \
					 "%s returned %d with an injected %d", #call, r_,    \
					 -atomic_load(&ioctl_err));                          \
			if (r_)                                                             \
				r_ = (call);                                                \
		}                                                                           \
		r_;                                                                         \
	})

static int prepare_retrying(struct kt_vm *vm, unsigned int idx)
{
	struct kres *res = vm->ctx;

	return LIB(res, kvmdbg_vcpu_prepare(vm->vcpu[idx]));
}

/*
 * g_loop over 4 iterations with a hardware breakpoint on g_loop_bp: stop,
 * resume (step-over), a user step at the breakpoint, remove, run to the end.
 */
static void kvm_loop_scenario(uint64_t features, unsigned long fail_at, int err,
			      struct kres *res)
{
	struct kt_vm vm;
	struct kt_vm_opts o = {.features_set = true, .features = features};
	struct kt_stop st;
	uint64_t bp;
	int r;

	memset(res, 0, sizeof(*res));
	kt_vm_create(&vm, &o);
	bp = kt_gva(&vm, g_loop_bp);
	kt_poke(&vm, g_loop_n, 4);
	kt_vcpu_start(&vm, 0, g_loop);
	vm.prepare = prepare_retrying;
	vm.ctx = res;
	atomic_store(&ioctl_calls, 0);
	atomic_store(&ioctl_fail_at, fail_at);
	atomic_store(&ioctl_err, err);
	atomic_store(&ioctl_injected, 0);
	kvmdbg_set_ioctl_hook(fault_ioctl);

	r = LIB(res, kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, bp, 1));
	ck_assert_int_eq(r, 0);
	for (;;) {
		kt_run(&vm, 0, 0, &st);
		if (st.what == KT_DONE)
			break;
		if (st.what != KT_EVENT)
			break;
		if (st.ev.kind == KVMDBG_STOP_STEP)
			res->steps++;
		else if (st.ev.kind == KVMDBG_STOP_BREAK && st.ev.pc == bp)
			res->stops++;
		else
			break;
		/* The VMM touched the registers: the step-over re-reads the PC. */
		if (res->stops == 1)
			LIB(res, kvmdbg_vcpu_regs_changed(vm.vcpu[0]));
		if (res->stops == 2 && res->steps == 0)
			LIB(res, kvmdbg_vcpu_set_step(vm.vcpu[0], 1));
		if (res->steps == 1 && vm.vcpu[0]->user_step) {
			LIB(res, kvmdbg_vcpu_set_step(vm.vcpu[0], 0));
		}
		if (res->stops == 3)
			LIB(res, kvmdbg_vm_remove(vm.dbg, KVMDBG_BREAK_HW, bp, 1));
	}
	kvmdbg_set_ioctl_hook(NULL);
	atomic_store(&ioctl_fail_at, 0);
	res->count = kt_peek(&vm, g_loop_count);
	if (st.what != KT_DONE && !res->bad++) {
		char d[320];

		snprintf(res->msg, sizeof(res->msg), "run ended with %s",
			 kt_describe(&vm, &st, d, sizeof(d)));
	}
	kt_vm_destroy(&vm);
}

/*
 * g_guestdb: the guest single-steps itself (TF) and, on hosts that keep them
 * live, hits its own DR0 breakpoint; the host's breakpoint on
 * g_guestdb_hostbp stops once. Each of the guest's #DBs is re-injected
 * (x86: KVM_GET/SET_DEBUGREGS for its DR6, then INJECT_DB) exactly once,
 * whatever fails on the way: kt_db_count and g_guestdb_passed are as in the
 * clean run.
 */
static void kvm_reinject_scenario(uint64_t features, unsigned long fail_at, int err,
				  struct kres *res)
{
	struct kt_vm vm;
	struct kt_vm_opts o = {.features_set = true, .features = features};
	struct kt_stop st;
	int r;

	memset(res, 0, sizeof(*res));
	kt_vm_create(&vm, &o);
	kt_vcpu_start(&vm, 0, g_guestdb);
	vm.prepare = prepare_retrying;
	vm.ctx = res;
	atomic_store(&ioctl_calls, 0);
	atomic_store(&ioctl_fail_at, fail_at);
	atomic_store(&ioctl_err, err);
	atomic_store(&ioctl_injected, 0);
	kvmdbg_set_ioctl_hook(fault_ioctl);
	r = LIB(res, kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_guestdb_hostbp), 1));
	ck_assert_int_eq(r, 0);
	for (unsigned int i = 0; i < 8; i++) {
		kt_run(&vm, 0, 0, &st);
		res->steps += st.guests; /* guest events run past */
		if (st.what != KT_EVENT || st.ev.kind != KVMDBG_STOP_BREAK)
			break;
		res->stops++;
	}
	kvmdbg_set_ioctl_hook(NULL);
	atomic_store(&ioctl_fail_at, 0);
	res->count = kt_peek(&vm, kt_db_count) << 8 | kt_peek(&vm, g_guestdb_passed);
	if (st.what != KT_DONE && !res->bad++) {
		char d[320];

		snprintf(res->msg, sizeof(res->msg), "run ended with %s",
			 kt_describe(&vm, &st, d, sizeof(d)));
	}
	kt_vm_destroy(&vm);
}

typedef void (*kvm_scenario_fn)(uint64_t features, unsigned long fail_at, int err,
				struct kres *res);

static void kvm_fault_all(kvm_scenario_fn fn, uint64_t features, const char *label)
{
	struct kres base, res;
	unsigned long n;
	unsigned int points = 0, errors = 0;

	fn(features, 0, 0, &base);
	n = atomic_load(&ioctl_calls);
	printf("fault_kvm %s: clean run: %u stops, %u steps or guest events, count %#llx\n", label,
	       base.stops, base.steps, (unsigned long long)base.count);
	ck_assert_msg(base.bad == 0, "%s: clean run: %s", label, base.msg);
	ck_assert_uint_gt(base.stops, 0);
	for (unsigned long at = 1; at <= n; at++)
		for (size_t e = 0; e < ARRAY_SIZE(fault_errnos); e++) {
			fn(features, at, fault_errnos[e], &res);
			points += atomic_load(&ioctl_injected) != 0;
			errors += res.api_errors;
			ck_assert_msg(res.bad == 0, "%s: ioctl %lu failing with %d: %s", label, at,
				      -fault_errnos[e], res.msg);
			ck_assert_msg(res.stops == base.stops && res.steps == base.steps &&
					      res.count == base.count,
				      "%s: ioctl %lu failing with %d: %u stops %u steps/guest events "
				      "count %#llx, clean run %u %u %#llx",
				      label, at, -fault_errnos[e], res.stops, res.steps,
				      (unsigned long long)res.count, base.stops, base.steps,
				      (unsigned long long)base.count);
		}
	printf("fault_kvm %s: %lu library ioctls in the scenario, %u failure points injected, %u "
	       "API calls returned the error and worked on retry\n",
	       label, n, points, errors);
	fflush(stdout);
	ck_assert_uint_eq(points, n * ARRAY_SIZE(fault_errnos));
}

START_TEST(test_fault_kvm_disarm)
{
	if (!kt_has(KVMDBG_FEAT_HW_BREAK) || !kt_has(KVMDBG_FEAT_STEP)) {
		kt_not_exercised("fault injection on /dev/kvm", "no hardware breakpoints or step");
		return;
	}
	kvm_fault_all(kvm_loop_scenario, kt_features() & ~KVMDBG_FEAT_RF_RESUME,
		      "disarm-step-rearm");
}
END_TEST

START_TEST(test_fault_kvm_rf)
{
	if (!kt_has(KVMDBG_FEAT_RF_RESUME)) {
		kt_not_exercised("fault injection of the RF step-over", "RF resume not verified");
		return;
	}
	kvm_fault_all(kvm_loop_scenario, kt_features(), "rf");
}
END_TEST

START_TEST(test_fault_kvm_reinject)
{
	if (!kt_has(KVMDBG_FEAT_HW_BREAK) || !kt_has(KVMDBG_FEAT_INJECT_DB)) {
		kt_not_exercised("fault injection of re-injection", "no verified INJECT_DB");
		return;
	}
	kvm_fault_all(kvm_reinject_scenario, kt_features(), "reinject");
	{
		struct kres r;

		kvm_reinject_scenario(kt_features(), 0, 0, &r);
		if (!r.steps)
			kt_not_exercised("fault injection of the re-injection ioctls",
					 "the guest's own #DBs never reach userspace on this host "
					 "(the fake-KVM suite `fault` covers them)");
	}
}
END_TEST

/* vm_new's probe ioctls failing in turn. */
START_TEST(test_fault_kvm_vm_new)
{
	struct kt_vm vm;
	struct kvmdbg_caps clean;
	unsigned long n;
	unsigned int points = 0, absorbed = 0, caps_differ = 0;

	kt_vm_create(&vm, NULL);
	atomic_store(&ioctl_calls, 0);
	atomic_store(&ioctl_fail_at, 0);
	kvmdbg_set_ioctl_hook(fault_ioctl);
	{
		struct kvmdbg_vm *d;

		ck_assert_int_eq(kvmdbg_vm_new(vm.m.vm_fd, NULL, &d), 0);
		clean = d->caps;
		kvmdbg_vm_free(d);
	}
	n = atomic_load(&ioctl_calls);
	for (unsigned long at = 1; at <= n; at++)
		for (size_t e = 0; e < ARRAY_SIZE(fault_errnos); e++) {
			struct kvmdbg_vm *d = NULL;
			int r;

			atomic_store(&ioctl_calls, 0);
			atomic_store(&ioctl_err, fault_errnos[e]);
			atomic_store(&ioctl_fail_at, at);
			r = kvmdbg_vm_new(vm.m.vm_fd, NULL, &d);
			atomic_store(&ioctl_fail_at, 0);
			if (r) {
				ck_assert_int_eq(r, -fault_errnos[e]);
				ck_assert_ptr_null(d);
				points++;
				ck_assert_int_eq(kvmdbg_vm_new(vm.m.vm_fd, NULL, &d), 0);
			} else {
				/* A failed KVM_CHECK_EXTENSION of an optional capability
				 * reads as "absent". */
				absorbed++;
				caps_differ += memcmp(&d->caps, &clean, sizeof(clean)) != 0;
			}
			kvmdbg_vm_free(d);
		}
	kvmdbg_set_ioctl_hook(NULL);
	printf("fault_kvm vm_new: %lu probe ioctls, %u failures returned and retried, %u absorbed "
	       "(%u of them changed the capabilities: an optional capability read as absent)\n",
	       n, points, absorbed, caps_differ);
	fflush(stdout);
	kt_vm_destroy(&vm);
}
END_TEST

static void fault_fixture(void)
{
	kt_features_init();
}

TEST_SUITE_KVM(fault_kvm)
{
	tests_set_timeout(tc, 300);
	tests_add_fixture(tc, fault_fixture);
	add_test(tc, test_fault_kvm_disarm);
	add_test(tc, test_fault_kvm_rf);
	add_test(tc, test_fault_kvm_reinject);
	add_test(tc, test_fault_kvm_vm_new);
}

#endif /* KVMDBG_FAULT_REAL_KVM */
