/* SPDX-License-Identifier: MIT */
/*
 * The step-over: resuming from a reported stop steps past whatever is armed
 * at the PC (hardware slots disarmed, a software breakpoint lifted, the
 * guest's interrupts masked for the step), then gives it all back. And the
 * cover: while one vCPU has a software breakpoint lifted, the others catch
 * it in a hardware slot, or wait.
 */
#include <errno.h>
#include <string.h>

#include "kvmdbg-int.h"

/*
 * Bump the generation for the other vCPUs, v's cover having changed at a
 * live software breakpoint. Locked.
 *
 * This vCPU's own state stays what a compose would build after the bump
 * (kvmdbg_cover_locked never puts a vCPU's own cover into its own state):
 * where it was composed at the generation the bump leaves (v->gen, and back_gen for the way back from a
 * step, kvmdbg_step_back_fast), it is recorded as of the new one, and its lock-free
 * paths (applied_current, step_apply_fast, kvmdbg_step_back_fast) stay open
 * (issue 17: with two vCPUs, two composes under the lock per software
 * breakpoint's step-over). Only then: every change of the set bumps the
 * generation under vm->lock, as this does, so the generation read here
 * under the lock equals v->gen only if nothing changed since this vCPU's
 * state was composed but its own cover (an insert on another thread in
 * between leaves v->gen behind, and this vCPU composes). Only this vCPU's
 * thread writes v->gen and back_gen.
 */
static inline __attribute__((always_inline)) void cover_bump_locked(struct kvmdbg_vcpu *v)
{
	uint64_t gen = atomic_load_explicit(&v->vm->gen, memory_order_relaxed);

	kvmdbg_bump_gen(v->vm);
	if (v->gen == gen)
		v->gen = gen + 1;
	if (v->back_gen == gen)
		v->back_gen = gen + 1;
}

KVMDBG_WARM __attribute__((noinline)) void
kvmdbg_cover_bump_others(struct kvmdbg_vcpu *v, bool was, uint64_t old, bool on, uint64_t addr)
{
	struct kvmdbg_vm *vm = v->vm;

	kvmdbg_mutex_lock(&vm->lock);
	if ((was && kvmdbg_sw_has(vm, old)) || (on && kvmdbg_sw_has(vm, addr)))
		cover_bump_locked(v);
	kvmdbg_mutex_unlock(&vm->lock);
}

/*
 * Catch, in this vCPU's own hardware slots, every live software breakpoint
 * another vCPU has lifted or will lift for its step-over: while the guest's
 * bytes are back there, this vCPU would run them and miss the breakpoint.
 * Not for a vCPU in an internal step: it runs one instruction, the one at
 * its own stop. Returns false when a slot is needed but none is free (the
 * fence: this vCPU must not run). Called with vm->lock held, after the
 * host's slots are in hw and owner.
 */
KVMDBG_WARM bool kvmdbg_cover_locked(struct kvmdbg_vcpu *v, struct kvmdbg_hwstate *hw,
			 uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS])
{
	struct kvmdbg_vm *vm = v->vm;

	/* No software breakpoint (the table is stable under the lock): no
	 * cover can concern one. */
	if (!vm->sw.count || v->so.state == KVMDBG_SO_STEPPING)
		return true;
	for (const struct kvmdbg_vcpu *o = vm->vcpus; o; o = o->next) {
		struct kvmdbg_piece pc[KVMDBG_MAX_PIECES];
		uint64_t addr;
		unsigned int pool, m;
		bool have = false;
		int n;

		if (o == v || !atomic_load(&o->cover_on))
			continue;
		addr = atomic_load_explicit(&o->cover_addr, memory_order_relaxed);
		if (!kvmdbg_sw_has(vm, addr))
			continue;
		/* An execution slot at addr already (a hardware breakpoint of
		 * the host's, or one added for another vCPU's cover). */
		for (m = 0; m < KVMDBG_MAX_SLOTS && !have; m++) {
			const struct kvmdbg_hwslot *h = &hw->slot[KVMDBG_POOL_BP][m];

			have = h->ctrl && h->start == addr &&
			       vm->arch->slot_type(KVMDBG_POOL_BP, h->ctrl) == KVMDBG_BREAK_HW;
		}
		if (have)
			continue;
		n = vm->arch->cover(&vm->lim, KVMDBG_BREAK_HW, addr, vm->arch->sw_len, pc,
				    KVMDBG_MAX_PIECES);
		if (n != 1)
			return false;
		pool = pc[0].pool;
		for (m = 0; m < vm->slots.nr[pool]; m++)
			if (!owner[pool][m] && !hw->slot[pool][m].ctrl)
				break;
		if (m >= vm->slots.nr[pool])
			return false;
		hw->slot[pool][m] = (struct kvmdbg_hwslot){
			.value = pc[0].value, .ctrl = pc[0].ctrl, .start = pc[0].start, .len = pc[0].len};
		owner[pool][m] = KVMDBG_OWNER_SW;
	}
	return true;
}

/* Put a software breakpoint back after a step over it. Called locked. On
 * failure it stays lifted (so.sw set) and the next prepare tries again. */
static inline __attribute__((always_inline)) int sw_unlift_locked(struct kvmdbg_vcpu *v)
{
	struct kvmdbg_vm *vm = v->vm;
	struct kvmdbg_swbp *e = kvmdbg_swtab_find(&vm->sw, v->so.sw_addr);
	int r;

	if (!e || !e->lifted) {
		v->so.sw = false; /* removed meanwhile: its bytes are the guest's */
		return 0;
	}
	if (e->lifted == 1) {
		r = kvmdbg_mem_replace(vm, e->addr, vm->hot.sw_insn, e->orig, vm->hot.sw_len);
		if (r)
			return r;
	}
	e->lifted--;
	v->so.sw = false;
	return 0;
}

/* Put the guest's bytes back under our software breakpoint e (at pc) for
 * a step over it (the first vCPU to lift it writes them). Locked. */
static inline __attribute__((always_inline)) int sw_lift_locked(struct kvmdbg_vcpu *v,
								struct kvmdbg_swbp *e, uint64_t pc)
{
	struct kvmdbg_vm *vm = v->vm;
	int r = 0;

	if (e->lifted == 0)
		r = kvmdbg_mem_replace(vm, pc, e->orig, vm->hot.sw_insn, vm->hot.sw_len);
	if (!r) {
		e->lifted++;
		v->so.sw = true;
		v->so.sw_addr = pc;
	}
	return r;
}

/* The vCPU goes away: what its step-over holds in the VM goes too. A lift
 * that putting back failed gets a last try, then it is dropped. Locked. */
void kvmdbg_stepover_drop_locked(struct kvmdbg_vcpu *v)
{
	struct kvmdbg_vm *vm = v->vm;

	if (v->so.sw) {
		struct kvmdbg_swbp *e = kvmdbg_swtab_find(&vm->sw, v->so.sw_addr);

		if (e && e->lifted) {
			if (e->lifted == 1)
				kvmdbg_mem_replace(vm, e->addr, vm->arch->sw_insn, e->orig,
						   vm->arch->sw_len);
			e->lifted--;
		}
		v->so.sw = false;
	}
	if (atomic_load(&v->cover_on)) {
		kvmdbg_cover_off(v);
		if (kvmdbg_sw_has(vm, atomic_load_explicit(&v->cover_addr, memory_order_relaxed)))
			kvmdbg_bump_gen(vm);
	}
}

KVMDBG_STEP_REST int kvmdbg_stepover_irqs_give_back(struct kvmdbg_vcpu *v)
{
	return kvmdbg_irqs_give_back_inline(v);
}

/* Put back the software breakpoint a finished or abandoned step-over
 * lifted. On failure it stays pending (so.sw set). */
int kvmdbg_stepover_unlift(struct kvmdbg_vcpu *v)
{
	struct kvmdbg_vm *vm = v->vm;
	int r;

	if (!v->so.sw)
		return 0;
	kvmdbg_mutex_lock(&vm->lock);
	r = sw_unlift_locked(v);
	kvmdbg_mutex_unlock(&vm->lock);
	return r;
}

/*
 * Give back what a finished or abandoned step-over holds: the software
 * breakpoint it lifted, the guest's interrupt mask. What fails stays
 * pending; prepare settles it first and returns the error until it works.
 */
KVMDBG_STEP_REST int kvmdbg_stepover_settle(struct kvmdbg_vcpu *v)
{
	int first = kvmdbg_stepover_unlift(v), r;

	/* Independent of the breakpoint: the guest's interrupts come back. */
	r = kvmdbg_stepover_irqs_give_back(v);
	return first ? first : r;
}

/*
 * The end of a step over a software breakpoint: put it back and, once it
 * is, take the cover down (kvmdbg_cover_sync's change from on to off) in
 * the same critical section (issue 17: with other vCPUs attached, one lock
 * less per step-over: the bump needs the lock too). Under the lock the
 * table is exact and nr_vcpus stable (kvmdbg_vcpu_new counts under it), so
 * the generation is bumped (cover_bump_locked) only where the
 * cover was at a live software breakpoint and another vCPU is attached to
 * see it go. The cover goes before the bump (a vCPU that composes after
 * the bump sees it gone: else it could keep a slot, or fence, with no
 * bump left to end it). On failure the breakpoint stays lifted (so.sw),
 * and so does the cover at it.
 */
static KVMDBG_STEP_SW __attribute__((noinline)) void finish_unlift(struct kvmdbg_vcpu *v)
{
	struct kvmdbg_vm *vm = v->vm;
	uint64_t old;

	kvmdbg_mutex_lock(&vm->lock);
	if (!sw_unlift_locked(v) && atomic_load_explicit(&v->cover_on, memory_order_relaxed)) {
		old = atomic_load_explicit(&v->cover_addr, memory_order_relaxed);
		kvmdbg_cover_off(v);
		v->so.sw_clear = true; /* as kvmdbg_cover_sync leaves it */
		if (atomic_load_explicit(&vm->nr_vcpus, memory_order_relaxed) > 1 &&
		    kvmdbg_sw_has(vm, old))
			cover_bump_locked(v);
	}
	kvmdbg_mutex_unlock(&vm->lock);
}

/* End an internal step: re-arm, re-insert, give interrupts back. Inline in
 * kvmdbg_stepover_end_fast (one return fewer a hit). */
static inline __attribute__((always_inline)) void stepover_finish(struct kvmdbg_vcpu *v)
{
	v->so.state = KVMDBG_SO_NONE;
	v->so.slots = 0;
	v->dirty = true;
	/* A failure stays pending: the next prepare retries it and reports it.
	 * What kvmdbg_stepover_settle does, with the cover taken down by the
	 * unlift where there is one. */
	if (v->so.sw)
		finish_unlift(v);
	kvmdbg_irqs_give_back_inline(v);
	/* Nothing left to publish where finish_unlift took the cover down. */
	kvmdbg_cover_sync(v);
}

KVMDBG_STEP_REST void kvmdbg_stepover_finish(struct kvmdbg_vcpu *v)
{
	stepover_finish(v);
}

/*
 * The end of the step-over's own step and nothing else (classify.c,
 * stepover_end_plain), as kvmdbg_classify_stepover_end settles it: the
 * interrupt mask first (a failure changes nothing), then the step-over
 * ends. In the two-exit hit's code (KVMDBG_STEP), out of the hot page.
 */
KVMDBG_STEP KVMDBG_REGION_START int kvmdbg_stepover_end_fast(struct kvmdbg_vcpu *v)
{
	int r = kvmdbg_irqs_give_back_inline(v);

	if (r)
		return r;
	stepover_finish(v);
	/* The state from before the step, now: the next prepare then has
	 * nothing to do (issue 17: one call of vcpu_prepare less a hit),
	 * where it would have done it first. A failure changes nothing; that
	 * prepare tries again and reports it (quiet: 0 whatever happens,
	 * "not this case" too, so the call is the last thing done here). */
	return kvmdbg_step_back_fast(v, true);
}

/* The guest's instruction word under a software breakpoint, read with the
 * table's entry when it was lifted: for the interrupt mask, without the
 * lock again. The mask's callback (insn_word_known) asks
 * kvmdbg_stepover_insn_word where none was kept. */
struct insn_known {
	struct kvmdbg_vcpu *v;
	uint64_t pc;
	uint32_t word;
	bool known;
};

static bool insn_word_known(void *arg, uint64_t pc, uint32_t *insn)
{
	const struct insn_known *k = arg;

	if (!k->known || pc != k->pc)
		return kvmdbg_stepover_insn_word(k->v, pc, insn);
	*insn = k->word;
	return true;
}

/* Lift e (at k->pc) for v's step and keep the guest's instruction word
 * under it in k where it is one (arm64). Locked. */
static inline __attribute__((always_inline)) int sw_lift_keep_locked(struct kvmdbg_vcpu *v,
								      struct kvmdbg_swbp *e,
								      struct insn_known *k)
{
	int r = sw_lift_locked(v, e, k->pc);

	k->known = !r && v->vm->hot.sw_len == sizeof(k->word);
	if (k->known)
		memcpy(&k->word, e->orig, sizeof(k->word));
	return r;
}

/* Mask the guest's interrupts for v's step from pc, the word under a
 * breakpoint lifted for it in known: on failure that one goes back (a
 * failure of which stays pending, so.sw), nothing masked. sw: from the
 * software breakpoint's step-over (the glue's twin in its region). */
static inline __attribute__((always_inline)) int step_mask(struct kvmdbg_vcpu *v, uint64_t pc,
							   struct insn_known *known, bool sw)
{
	int r = kvmdbg_mask_irqs_in(sw, v->hot.mask_irqs, v->hot.host_ctx, v->fd, pc,
				    insn_word_known, known, &v->so.irq_saved);

	if (r) {
		kvmdbg_stepover_unlift(v);
		return r;
	}
	v->so.irq_masked = true;
	return 0;
}

/*
 * resume_step's software breakpoint (vcpu.c, issue 17): ours at the stop's
 * PC lifted for the step, and the guest's interrupts masked around it with
 * the guest's instruction word from the table's entry, as
 * kvmdbg_stepover_begin does, in one critical section without its
 * generality. 0 lifted (and masked), 1 none there (nothing changed),
 * -errno with nothing changed (a failed unlift stays pending, so.sw).
 */
KVMDBG_STEP_SW int kvmdbg_stepover_lift_fast(struct kvmdbg_vcpu *v)
{
	struct kvmdbg_vm *vm = v->vm;
	struct insn_known known = {.v = v, .pc = v->so.pc};
	struct kvmdbg_swbp *e;
	int r;

	kvmdbg_mutex_lock(&vm->lock);
	e = kvmdbg_swtab_find(&vm->sw, known.pc);
	r = e ? sw_lift_keep_locked(v, e, &known) : 1;
	kvmdbg_mutex_unlock(&vm->lock);
	if (r || !v->hot.mask_irqs)
		return r;
	return step_mask(v, known.pc, &known, true);
}

/*
 * The slots of the execution breakpoints at pc, each slot's point id in
 * owner: from the vCPU's copy of the points where cached (it is current:
 * no lock needed), else from the VM's point table (vm->lock held). The
 * copy also serves under the lock: no walk of the table (~200
 * instructions at every software breakpoint's step-over).
 */
static inline __attribute__((always_inline)) uint32_t
exec_slots_owned(const struct kvmdbg_vcpu *v, bool cached, uint64_t pc,
		 uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS])
{
	uint32_t slots;

	if (cached) {
		slots = kvmdbg_cached_exec_slots(v, pc);
		KVMDBG_FOR_EACH_SLOT(slots, pool, slot)
			owner[pool][slot] = v->slot_pt[pool][slot].id;
	} else {
		slots = kvmdbg_point_exec_slots_at(v->vm, pc);
		KVMDBG_FOR_EACH_SLOT(slots, pool, slot)
			owner[pool][slot] = v->vm->slots.owner[pool][slot];
	}
	return slots;
}

/*
 * A reported stop is being resumed: find what is armed at the PC and step
 * past it. Returns 0 (maybe with v->so.state = KVMDBG_SO_STEPPING; v->so.pc
 * the PC as it is now where anything is armed or the user's step masks the
 * interrupts) or -errno with nothing changed.
 */
KVMDBG_STEP_REST int kvmdbg_stepover_begin(struct kvmdbg_vcpu *v, bool *need_rf)
{
	struct kvmdbg_vm *vm = v->vm;
	const struct kvmdbg_host_ops *h = vm->host;
	uint32_t slots, exec_slots, watch_slots = 0;
	uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS];
	struct insn_known known = {.v = v};
	bool sw = false;
	uint64_t pc = v->so.pc;
	int r;

	/* Nothing can be armed anywhere: done without the lock (the common
	 * case of a user stepping with no breakpoint set). */
	if (!atomic_load_explicit(&vm->nr_exec, memory_order_relaxed) && !v->so.slots &&
	    !v->guest_step) {
		/* The user's step masks the interrupts at the PC: it must be
		 * the PC as it is now (vcpu.c, user_step_mask). */
		if (v->so.pc_stale && kvmdbg_user_step_masks(v)) {
			r = h->get_pc(v->hot.host_ctx, v->fd, &pc);
			if (r)
				return r;
			v->so.pc = pc;
		}
		v->so.state = KVMDBG_SO_NONE;
		v->so.pc_stale = false;
		return 0;
	}
	if (v->so.pc_stale) {
		r = h->get_pc(v->hot.host_ctx, v->fd, &pc);
		if (r)
			return r;
	}
	/* The guest's own step (classify.c, guest_step_start) is of the
	 * instruction it stopped at: not if the VMM moved the PC since. */
	if (v->guest_step && pc != v->so.pc)
		v->guest_step = false;

	/* Whether a point is armed at the PC, and which point holds each of its
	 * slots: without the lock while the set is the one this vCPU copied
	 * and the software breakpoints' filter says none is at the PC (what is
	 * in the table needs the lock). v->so.owner keeps the owners of the
	 * watch slots. */
	if (kvmdbg_points_cached(v) && !kvmdbg_swtab_may_have(&vm->sw, pc)) {
		exec_slots = exec_slots_owned(v, true, pc, owner);
	} else {
		struct kvmdbg_swbp *e;

		kvmdbg_mutex_lock(&vm->lock);
		/* The copy is asked again under the lock: hw_gen only moves
		 * under it, so the answer is exact here. */
		exec_slots = exec_slots_owned(v, kvmdbg_points_cached(v), pc, owner);
		e = kvmdbg_swtab_find(&vm->sw, pc);
		sw = e != NULL;
		/* A software breakpoint is stepped over, always (below): lifted
		 * here, in the same critical section (issue 17: one lock less),
		 * before the interrupt mask (which gives it back if it fails),
		 * with the guest's instruction word under it kept for the mask.
		 * On failure nothing has changed. */
		if (e) {
			known.pc = pc;
			r = sw_lift_keep_locked(v, e, &known);
			if (r) {
				kvmdbg_mutex_unlock(&vm->lock);
				return r;
			}
		}
		kvmdbg_mutex_unlock(&vm->lock);
	}
	/* Watchpoints that stop before the access, only if the PC is where
	 * they stopped (the VMM may have moved it), for the owners that hit
	 * (a slot taken by a point inserted since stays armed: compose). */
	if (!v->so.pc_stale || pc == v->so.pc)
		watch_slots = v->so.slots;
	slots = exec_slots | watch_slots;
	KVMDBG_FOR_EACH_SLOT(watch_slots & ~exec_slots, pool, slot)
		owner[pool][slot] = v->so.owner[pool][slot];

	v->so.pc = pc;
	v->so.pc_stale = false;
	if (!slots && !sw && !v->guest_step) {
		v->so.state = KVMDBG_SO_NONE;
		v->so.slots = 0;
		return 0;
	}

	/* Only execution breakpoints, and the host honours RF: no step needed.
	 * prepare sets RF last, once nothing else can fail. */
	if (!sw && !(slots & watch_slots) && !v->user_step && !v->guest_step &&
	    v->hot.set_resume_flag) { /* NULL without KVMDBG_FEAT_RF_RESUME */
		v->so.state = KVMDBG_SO_NONE;
		v->so.slots = 0;
		*need_rf = true;
		return 0;
	}

	if (v->hot.mask_irqs && !v->so.irq_masked) {
		r = step_mask(v, pc, &known, false);
		if (r)
			return r;
	}
	/* KVM's state changes for the step: the caller applies it (vcpu.c,
	 * without marking it dirty, so that it knows whether KVM holds the
	 * state of the stop as current). */
	v->so.state = KVMDBG_SO_STEPPING;
	v->so.slots = slots;
	KVMDBG_FOR_EACH_SLOT(slots, pool, slot)
		v->so.owner[pool][slot] = owner[pool][slot];
	return 0;
}

/*
 * Nothing may change on failure: a step-over begun by a failed prepare goes
 * back to armed, giving back what it lifted or masked (a failure of that
 * stays pending and is retried first next time). x86 RF, if set, only
 * skips the breakpoint the retry skips anyway.
 */
void kvmdbg_stepover_rollback(struct kvmdbg_vcpu *v, const struct kvmdbg_stepover *saved)
{
	if (saved->state != KVMDBG_SO_ARMED)
		return;
	if (v->so.state == KVMDBG_SO_STEPPING)
		kvmdbg_stepover_settle(v);
	v->so.state = saved->state;
	v->so.slots = saved->slots;
	/* Only the slots' owners are read (and saved: vcpu.c). */
	KVMDBG_FOR_EACH_SLOT(saved->slots, pool, slot)
		v->so.owner[pool][slot] = saved->owner[pool][slot];
	v->so.pc = saved->pc;
	v->so.pc_stale = saved->pc_stale;
}

/* The instruction word at pc that a step is about to run, for the
 * interrupt mask around it (arm64: what it does to DAIF, arm64_insn_daif):
 * the guest's own under a software breakpoint of ours. false when unknown
 * (no memory callbacks, unreadable): the mask then does without. */
bool kvmdbg_stepover_insn_word(void *arg, uint64_t pc, uint32_t *insn)
{
	struct kvmdbg_vcpu *v = arg;
	struct kvmdbg_vm *vm = v->vm;
	const struct kvmdbg_swbp *e;
	bool ok = false;

	kvmdbg_mutex_lock(&vm->lock);
	e = kvmdbg_swtab_find(&vm->sw, pc);
	if (e && vm->arch->sw_len == sizeof(*insn)) {
		memcpy(insn, e->orig, sizeof(*insn));
		ok = true;
	} else if (!e && vm->mem) {
		ok = vm->mem->read(vm->mem_ctx, pc, insn, sizeof(*insn)) == 0;
	}
	kvmdbg_mutex_unlock(&vm->lock);
	return ok;
}

/* Whether the instruction at pc can stop a step unfinished (see arch.h). */
bool kvmdbg_stepover_insn_unfinished(struct kvmdbg_vcpu *v, uint64_t pc)
{
	static const size_t tries[] = {KVMDBG_MAX_INSN, 8, 4, 2, 1};
	struct kvmdbg_vm *vm = v->vm;
	uint8_t insn[KVMDBG_MAX_INSN];
	bool r = false;

	if (!vm->arch->insn_restarts || !vm->mem)
		return false;
	kvmdbg_mutex_lock(&vm->lock);
	/* The instruction may end just before unmapped memory: read less. */
	for (size_t i = 0; i < ARRAY_SIZE(tries); i++)
		if (vm->mem->read(vm->mem_ctx, pc, insn, tries[i]) == 0) {
			r = vm->arch->insn_restarts(insn, tries[i]);
			break;
		}
	kvmdbg_mutex_unlock(&vm->lock);
	return r;
}
