/* SPDX-License-Identifier: MIT */
/*
 * Per-vCPU: one composer builds the vCPU's whole KVM debug state (breakpoint
 * set, user step, step-over, re-injection) so no feature erases another;
 * prepare applies it only when something changed (handle_exit: classify.c).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <linux/kvm.h>

#include "kvmdbg-int.h"

KVMDBG_EXPORT int kvmdbg_vcpu_new(struct kvmdbg_vm *vm, int vcpu_fd, struct kvm_run *run,
				  struct kvmdbg_vcpu **out)
{
	struct kvmdbg_vcpu *v;
	void *mem;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!vm || !run || vcpu_fd < 0)
		return -EINVAL;
	/* Page-aligned: what an exit reads of it (up to applied_owner) is one
	 * page (issue 17). */
	if (posix_memalign(&mem, 4096, sizeof(*v)))
		return -ENOMEM;
	v = memset(mem, 0, sizeof(*v));
	v->vm = vm;
	v->fd = vcpu_fd;
	v->run = run;
	/* KVM's state for this vCPU is unknown to us: apply at the first prepare. */
	v->applied_valid = false;
	v->hot = vm->hot;
	v->guest_stale = v->hot.overlay == KVMDBG_OVERLAY_GUEST;
	kvmdbg_mutex_lock(&vm->lock);
	/* seq_cst, before its first compose: see kvmdbg_cover_bump. */
	atomic_fetch_add(&vm->nr_vcpus, 1);
	kvmdbg_seen_publish_locked(vm, v);
	v->next = vm->vcpus;
	vm->vcpus = v;
	kvmdbg_mutex_unlock(&vm->lock);
	*out = v;
	return 0;
}

KVMDBG_EXPORT int kvmdbg_vcpu_set_step(struct kvmdbg_vcpu *v, int enable)
{
	if (!v)
		return -EINVAL;
	if (enable && !v->vm->caps.single_step)
		return -EOPNOTSUPP;
	if (v->user_step != !!enable) {
		v->user_step = !!enable;
		/* Fixed per VM: computed here, not on every prepare (the fast
		 * path reads no ops table). */
		v->user_step_masks = v->user_step && v->vm->host->mask_irqs &&
				     !v->vm->caps.block_irq;
		v->dirty = true;
	}
	return 0;
}

KVMDBG_EXPORT int kvmdbg_vcpu_is_stepping(const struct kvmdbg_vcpu *v)
{
	if (!v)
		return -EINVAL;
	/* A pending step-over (ARMED) becomes a step at the next prepare only
	 * if something is armed at the PC; answer for the state KVM will run. */
	return v->user_step || v->so.state == KVMDBG_SO_STEPPING || v->gd_stepping;
}

KVMDBG_EXPORT int kvmdbg_vcpu_regs_changed(struct kvmdbg_vcpu *v)
{
	if (!v)
		return -EINVAL;
	v->so.pc_stale = true;
	return 0;
}

/* An execution slot on v->guest_resume_pc, owner KVMDBG_OWNER_RESUME, in
 * the first free breakpoint slot if any. Locked. */
static void overlay_resume_slot(struct kvmdbg_vcpu *v, struct kvmdbg_hwstate *hw,
				uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS])
{
	const struct kvmdbg_vm *vm = v->vm;
	struct kvmdbg_piece pc[KVMDBG_MAX_PIECES];
	unsigned int pool, m;

	if (vm->arch->cover(&vm->lim, KVMDBG_BREAK_HW, v->guest_resume_pc, vm->arch->sw_len, pc,
			    KVMDBG_MAX_PIECES) != 1)
		return;
	pool = pc[0].pool;
	for (m = 0; m < vm->slots.nr[pool]; m++)
		if (!owner[pool][m] && !hw->slot[pool][m].ctrl)
			break;
	if (m >= vm->slots.nr[pool])
		return;
	hw->slot[pool][m] = (struct kvmdbg_hwslot){
		.value = pc[0].value, .ctrl = pc[0].ctrl, .start = pc[0].start, .len = pc[0].len};
	owner[pool][m] = KVMDBG_OWNER_RESUME;
}

/* Build the vCPU's whole debug state, *on the slots enabled in it
 * (kvmdbg_hw_on). Called with vm->lock held. Returns false when the vCPU
 * must not run now (cover_locked). Out of line: not in vcpu_prepare's body,
 * which the general step-over runs. */
static KVMDBG_WARM __attribute__((noinline)) bool compose_locked(struct kvmdbg_vcpu *v, struct kvmdbg_hwstate *hw,
			   uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS], uint32_t *ctl,
			   uint32_t *on)
{
	struct kvmdbg_vm *vm = v->vm;
	uint32_t host_hw = 0, any_hw = 0; /* any_hw: 0 for gd_stepping's empty state */
	bool may_run = true;

	*ctl = 0;
	if (v->gd_stepping) {
		/* One guest MOV DR runs natively against the guest's own
		 * registers: no host slots, no GD, one blocked-interrupt step. */
		memset(hw, 0, sizeof(*hw));
		memset(owner, 0, sizeof(vm->slots.owner));
		goto flags;
	}

	kvmdbg_slots_to_hw(&vm->slots, hw);
	memcpy(owner, vm->slots.owner, sizeof(vm->slots.owner));
	/* Before the guest's merge: the host's need comes first. */
	may_run = kvmdbg_cover_locked(v, hw, owner);

	/* OR, not a test per slot: a loop without branches. */
	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int slot = 0; slot < KVMDBG_MAX_SLOTS; slot++)
			host_hw |= owner[pool][slot];
	/* Any KVM debug flag takes the guest's own breakpoints and watchpoints
	 * away from it: arm64 KVM either routes their exceptions to us
	 * (MDCR_EL2.TDE, KVMDBG_FEAT_GUEST_REGS_RAW) or runs none of them
	 * (Linux 6.14 on). So merge whenever KVM will debug this vCPU, not only
	 * when the host holds hardware slots. */
	if (kvmdbg_overlay_on(v) && (host_hw || vm->sw.count || v->user_step ||
			      v->so.state == KVMDBG_SO_STEPPING)) {
		kvmdbg_overlay_merge_locked(v, hw, owner);
		if (vm->features & KVMDBG_FEAT_GD_EXIT)
			*ctl |= KVMDBG_CTL_GD;
	} else if (kvmdbg_overlay_on(v)) {
		v->guest_merged = v->guest_suspended = 0;
	}
	/* Overlay: the guest's return from its emulated step exception, in a
	 * breakpoint slot left free (after the guest's own: they come first). */
	if (v->guest_resume && kvmdbg_overlay_on(v) && v->so.state != KVMDBG_SO_STEPPING)
		overlay_resume_slot(v, hw, owner);
	/* Slots disarmed while this vCPU steps past the stop that hit them
	 * (the host's, or a guest's the guest could not take: after the merge,
	 * which puts a guest slot where it was), while still theirs. */
	if (v->so.state == KVMDBG_SO_STEPPING)
		KVMDBG_FOR_EACH_SLOT(v->so.slots, pool, slot) {
			if (kvmdbg_stepover_disarms(v, pool, slot, owner[pool][slot])) {
				hw->slot[pool][slot].ctrl = 0;
				owner[pool][slot] = 0;
			}
		}
	/* kvmdbg_hw_on(hw), over the host's slots alone: every slot composed
	 * is one of them (the host's points, the covers, the overlay's merge
	 * and its resume slot take a free one below vm->slots.nr; the fake
	 * KVM of the tests checks it at every KVM_SET_GUEST_DEBUG). */
	any_hw = kvmdbg_hw_on_below(hw, vm->slots.nr);
	if (any_hw)
		*ctl |= KVMDBG_CTL_HW;
	else
		*ctl &= ~KVMDBG_CTL_GD;
flags:
	*on = any_hw;
	if (vm->sw.count)
		*ctl |= KVMDBG_CTL_SW_BP;
	if (v->user_step || v->so.state == KVMDBG_SO_STEPPING || v->gd_stepping) {
		*ctl |= KVMDBG_CTL_STEP;
		if (vm->caps.block_irq)
			*ctl |= KVMDBG_CTL_BLOCKIRQ;
	}
	if (*ctl)
		*ctl |= KVMDBG_CTL_ENABLE;
	return may_run;
}

/* KVM holds what this vCPU would apply now: nothing changed, nothing to
 * deliver, nothing to re-read. */
static KVMDBG_HOT bool applied_current(const struct kvmdbg_vcpu *v)
{
	return v->applied_valid && !v->dirty && !v->reinject.pending && !v->guest_stale &&
	       atomic_load_explicit(&v->seen.gen, memory_order_acquire) == v->gen;
}

/* Before composing: give back what an earlier step-over could not yet,
 * and look at the guest's registers where they may have changed. */
static KVMDBG_STEP_REST int prepare_look(struct kvmdbg_vcpu *v)
{
	int r;

	/* What an earlier step-over could not give back yet. The user's
	 * step keeps the interrupt mask it runs with across an exit that was
	 * not its debug exit (MMIO: the step has not completed), unless the
	 * VMM moved the PC since (masked again there, below). Nothing lifted
	 * or masked: no call (the flags say what settle would find). */
	if (v->so.state != KVMDBG_SO_STEPPING &&
	    (v->so.flags & (KVMDBG_SO_FLAG(sw) | KVMDBG_SO_FLAG(irq_masked)))) {
		if (kvmdbg_user_step_masks(v) && !v->so.pc_stale)
			r = kvmdbg_stepover_unlift(v);
		else
			r = kvmdbg_stepover_settle(v);
		if (r)
			return r;
	}
	/* Until now KVM ran the guest's own registers (nothing applied yet, or
	 * no hardware slot of ours): the guest may have changed them without
	 * any exit. Look before merging them. */
	if (kvmdbg_overlay_on(v) && !(v->applied_valid && (v->applied_ctl & KVMDBG_CTL_HW)))
		v->guest_stale = true;
	if (kvmdbg_overlay_on(v) && v->guest_stale)
		return kvmdbg_overlay_refresh(v);
	return 0;
}

/*
 * Hand KVM the composed state hw / *ctl and the pending re-injection; *once
 * gets the one-shot bits that went with it (also in *ctl). On failure KVM
 * holds what it held before (or applied_valid is false: unknown).
 */
static KVMDBG_WARM int apply_to_kvm(struct kvmdbg_vcpu *v, const struct kvmdbg_hwstate *hw, uint32_t *ctl,
			uint32_t *once, uint32_t on)
{
	const struct kvmdbg_host_ops *h = v->vm->host;
	int r;

	/* x86: the injection rides on KVM_SET_GUEST_DEBUG's flags. */
	if (v->reinject.pending && !h->inject_emulated) {
		r = h->inject(v->hot.host_ctx, v->fd, &v->reinject, once);
		if (r)
			return r;
	}
	*ctl |= *once;
	if (*once)
		*ctl |= KVMDBG_CTL_ENABLE;
	if (*once || !v->applied_valid || *ctl != v->applied_ctl ||
	    memcmp(hw, &v->applied, sizeof(*hw))) {
		r = h->set_guest_debug(v->hot.host_ctx, v->fd, *ctl, hw, on);
		if (r)
			return r;
	}
	/* arm64: the exception entry is emulated once the rest is in place;
	 * if it fails, KVM gets its previous debug state back. */
	if (v->reinject.pending && h->inject_emulated) {
		r = h->inject(v->hot.host_ctx, v->fd, &v->reinject, once);
		if (r) {
			if (!v->applied_valid ||
			    h->set_guest_debug(v->hot.host_ctx, v->fd, v->applied_ctl, &v->applied,
					       v->applied_on))
				v->applied_valid = false; /* unknown: apply next time */
			return r;
		}
		v->reinject.pending = false;
		v->nr_reinjected++;
	}
	return 0;
}

/* KVM holds hw / ctl, composed at generation gen. gen is loaded under the
 * lock that made the vCPU's copy of the points (kvmdbg_points_cache_locked):
 * resume_fast takes the copy as current while vm->gen is still v->gen. */
static KVMDBG_WARM void record_applied(struct kvmdbg_vcpu *v, const struct kvmdbg_hwstate *hw,
			   uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS], uint32_t ctl,
			   uint64_t gen, uint32_t once, uint32_t on)
{
	const struct kvmdbg_vm *vm = v->vm;
	uint32_t owners = 0;

	v->applied = *hw;
	memcpy(v->applied_owner, owner, sizeof(v->applied_owner));
	v->applied_on = on;
	/* Without the overlay, compose puts no owner past the host's number
	 * (a cover slot goes in a free one of them). */
	v->applied_plain = !kvmdbg_overlay_on(v);
	if (v->applied_plain) {
		for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
			for (unsigned int slot = 0; slot < vm->slots.nr[pool]; slot++)
				owners |= owner[pool][slot];
		v->applied_plain = !(owners & KVMDBG_OWNER_SW);
	}
	v->applied_ctl = ctl;
	v->applied_valid = true;
	v->back_valid = false;
	v->gen = gen;
	v->dirty = false;
	if (once) {
		v->reinject.pending = false;
		v->nr_reinjected++;
	}
}

/*
 * The user's single-step is about to run without BLOCKIRQ (arm64): mask the
 * guest's interrupts for it (kvmdbg_user_step_masks), unless a step-over
 * holds them masked already. saved is v->so before this prepare: a PC the
 * last stop reported is still the PC. *masked tells whether this call took
 * the mask. 0 or -errno with nothing changed.
 */
static KVMDBG_STEP_REST int user_step_mask(struct kvmdbg_vcpu *v, const struct kvmdbg_stepover *saved,
			  bool *masked)
{
	const struct kvmdbg_host_ops *h = v->vm->host;
	uint64_t pc = v->so.pc;
	int r;

	*masked = false;
	if (!kvmdbg_user_step_masks(v) || v->so.irq_masked)
		return 0;
	/* Not a reported stop (the first run, a kick, an MMIO exit before the
	 * user stepped), or the VMM moved the PC since a stop that was not
	 * resumed (from one, kvmdbg_stepover_begin has just read it): ask KVM. */
	if (saved->state != KVMDBG_SO_ARMED) {
		r = h->get_pc(v->hot.host_ctx, v->fd, &pc);
		if (r)
			return r;
	}
	/* What the instruction does to the mask, where it can be read. */
	r = h->mask_irqs(v->hot.host_ctx, v->fd, pc, kvmdbg_stepover_insn_word, v,
			 &v->so.irq_saved);
	if (r)
		return r;
	v->so.irq_masked = true;
	*masked = true;
	/* The mask was taken at the PC as it is now. */
	if (v->so.state == KVMDBG_SO_NONE)
		v->so.pc_stale = false;
	return 0;
}

/* A failed prepare gives back the mask user_step_mask took (a failure of
 * that stays pending) and the step-over it began. */
static void prepare_undo(struct kvmdbg_vcpu *v, const struct kvmdbg_stepover *saved, bool masked)
{
	kvmdbg_stepover_rollback(v, saved);
	if (masked) {
		kvmdbg_stepover_irqs_give_back(v);
		v->so.pc_stale = saved->pc_stale;
	}
}

/*
 * The step of a step-over just begun (kvmdbg_stepover_begin: STEPPING),
 * from the state KVM held at the stop, without the lock (issue 17): 0 done,
 * 1 not this case (compose it), or -errno with KVM and v as they were.
 *
 * compose_locked, for a vCPU in its step-over's step, builds the host's
 * slots (no cover: kvmdbg_cover_locked adds none to a vCPU in an internal
 * step, whatever the others publish), without the slots the step disarms,
 * plus the step. Where the state KVM holds (applied) was composed at the
 * generation that is still the VM's (applied_current: the step-over's
 * begin leaves v->dirty alone), for the host's slots alone (no cover slot, no
 * step, no overlay), that is applied with the disarmed slots'
 * ctrl cleared (kvmdbg_stepover_disarms against applied_owner, which is
 * vm->slots.owner of that generation), and control bits recomputed as
 * compose does: SW_BP as in applied (the table empties or fills only with
 * a generation bump), HW while a slot stays enabled, STEP, BLOCKIRQ where
 * KVM has it (the user's step, if on, is in applied already, with what
 * user_step_mask took). A change of the set after the check is one made
 * just after this prepare: v->gen stays the checked generation, and the
 * next prepare composes.
 *
 * What it takes out it keeps (back_*), for the way back at the step's end
 * (kvmdbg_step_back_fast). Done in place in applied: on failure the ctrl values go
 * back, and applied is again what KVM holds. sw: called from the software
 * breakpoint's step-over (its region's twin of the glue's call).
 */
static inline __attribute__((always_inline)) int step_apply_fast(struct kvmdbg_vcpu *v, bool sw)
{
	uint32_t disarm = 0, ctl;
	unsigned int n = 0;
	int r;

	/* applied is the host's slots alone: no overlay, no cover slot (its
	 * owner has the bit of KVMDBG_OWNER_SW, no point's id has it):
	 * applied_plain. A step in it is
	 * the user's (a step-over's ended with a compose or kvmdbg_step_back_fast;
	 * gd_stepping is the overlay's): the step adds it again. */
	if (!v->applied_plain)
		return 1;
	KVMDBG_FOR_EACH_SLOT(v->so.slots, pool, slot) {
		if (!kvmdbg_stepover_disarms(v, pool, slot, v->applied_owner[pool][slot]))
			continue;
		if (n == KVMDBG_STEP_BACK_SLOTS)
			return 1;
		disarm |= KVMDBG_HIT_BIT(pool, slot);
		v->back_ctrl[n] = v->applied.slot[pool][slot].ctrl;
		v->back_owner[n++] = v->applied_owner[pool][slot];
	}
	KVMDBG_FOR_EACH_SLOT(disarm, pool, slot)
		v->applied.slot[pool][slot].ctrl = 0;
	ctl = KVMDBG_CTL_ENABLE | KVMDBG_CTL_STEP | (v->applied_ctl & KVMDBG_CTL_SW_BP) |
	      (v->applied_on & ~disarm ? KVMDBG_CTL_HW : 0) |
	      (v->hot.block_irq ? KVMDBG_CTL_BLOCKIRQ : 0);
	r = kvmdbg_set_guest_debug_in(sw, v->hot.set_guest_debug, v->hot.host_ctx, v->fd, ctl,
				      &v->applied, v->applied_on & ~disarm);
	if (r) {
		n = 0;
		KVMDBG_FOR_EACH_SLOT(disarm, pool, slot)
			v->applied.slot[pool][slot].ctrl = v->back_ctrl[n++];
		return r;
	}
	KVMDBG_FOR_EACH_SLOT(disarm, pool, slot)
		v->applied_owner[pool][slot] = 0;
	v->back_on = v->applied_on & disarm;
	v->applied_on &= ~disarm;
	/* What compose builds for the plain state of this generation. */
	v->back_ctl = v->applied_ctl & (KVMDBG_CTL_HW | KVMDBG_CTL_SW_BP);
	if (v->back_ctl)
		v->back_ctl |= KVMDBG_CTL_ENABLE;
	v->back_slots = disarm;
	v->back_gen = v->gen;
	v->back_valid = true;
	v->applied_ctl = ctl;
	v->dirty = false;
	return 0;
}

/*
 * The step-over's step has ended (kvmdbg_stepover_finish): back to the
 * state before it (back_*) without the lock: 0 done, 1 not this case, or
 * -errno with KVM and v as they were; with quiet 0 for all three (the
 * step's end in handle_exit: the next prepare makes what was not made and
 * reports its error).
 *
 * compose_locked, for a vCPU out of any step-over, without the user's
 * step, the overlay or gd_stepping, builds from the VM alone: the host's
 * slots, SW_BP, and the cover slots of the others' published covers at
 * live software breakpoints. While the generation is still back_gen, that
 * is the state before the step: the slots and the table changed with a
 * bump, and so did every cover that concerns a live software breakpoint,
 * before the handle_exit that published it returned (kvmdbg_cover_sync),
 * so a vCPU that prepares after another's stop was reported sees a newer
 * generation and composes (the guarantee in kvmdbg.h; a cover published
 * but not yet bumped is one a compose may miss as well). Asked here, so
 * every caller (the step's end in handle_exit, prepare before and after
 * prepare_look) asks the same: out of the step-over, nothing lifted or
 * masked still to give back (prepare_look gives it back first). Not asked:
 * the overlay (never back_valid), applied since (record_applied voids
 * back_valid). applied_valid goes false only with a failed re-injection,
 * which stays pending.
 */
KVMDBG_STEP int kvmdbg_step_back_fast(struct kvmdbg_vcpu *v, bool quiet)
{
	uint32_t on = v->applied_on | v->back_on;
	unsigned int n = 0;
	int r;

	if (!v->back_valid || v->so.state != KVMDBG_SO_NONE ||
	    (v->so.flags & (KVMDBG_SO_FLAG(sw) | KVMDBG_SO_FLAG(irq_masked))) ||
	    v->reinject.pending || v->user_step || !v->applied_valid ||
	    atomic_load_explicit(&v->seen.gen, memory_order_acquire) != v->back_gen)
		return quiet ? 0 : 1;
	KVMDBG_FOR_EACH_SLOT(v->back_slots, pool, slot)
		v->applied.slot[pool][slot].ctrl = v->back_ctrl[n++];
	r = kvmdbg_set_guest_debug(v->hot.set_guest_debug, v->hot.host_ctx, v->fd, v->back_ctl,
				   &v->applied, on);
	if (r) {
		KVMDBG_FOR_EACH_SLOT(v->back_slots, pool, slot)
			v->applied.slot[pool][slot].ctrl = 0;
		return quiet ? 0 : r;
	}
	n = 0;
	KVMDBG_FOR_EACH_SLOT(v->back_slots, pool, slot)
		v->applied_owner[pool][slot] = v->back_owner[n++];
	v->applied_on = on;
	v->applied_ctl = v->back_ctl;
	v->back_valid = false;
	v->dirty = false;
	return 0;
}

/*
 * resume_fast's step-over (issue 17): a stop resumed past the host's own
 * execution breakpoints at the PC where the host has no RF, or past arm64
 * watchpoints that stopped before their access (so.slots), by a step with
 * those slots disarmed; with sw (the filter did not rule one out), past our
 * software breakpoint there, lifted (kvmdbg_stepover_lift_fast: none there
 * is "not this case"). What vcpu_prepare does for it (kvmdbg_stepover_begin,
 * its lock-free case where the points' copy is current and the filter said
 * no software breakpoint at the PC, else its lift under the lock; then
 * step_apply_fast) without its generality: resume_fast's conditions hold
 * (nothing changed since the stop, nothing lifted, masked or stale, no
 * guest's step, sw_clear unless sw), the user is
 * not stepping (the caller asks), and what step_apply_fast asks of applied
 * is asked first (no overlay, no cover slot), so that once the mask is taken
 * it answers "not this case" only for more slots than it keeps. 0 done,
 * -errno with nothing changed (as prepare_undo leaves it: the mask's
 * give-back, if that fails, stays pending), 1 not this case (what it took
 * given back so). Its result is not returned through a pointer: resume_fast,
 * inline in kvmdbg_vcpu_prepare, then needs no stack frame. Built twice, sw
 * a constant in each (resume_step_hw, resume_step_sw): the hardware points'
 * hit runs no test of it.
 */
static inline __attribute__((always_inline)) int resume_step(struct kvmdbg_vcpu *v, bool sw)
{
	int r;
	uint32_t exec = kvmdbg_cached_exec_slots(v, v->so.pc), watch = v->so.slots;
	uint32_t slots = exec | watch, both = exec & watch;
	uint32_t kept[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS];

	if (!v->applied_plain)
		return 1;
	/* As kvmdbg_stepover_begin: the software breakpoint lifted, the
	 * interrupts masked for the step (a failure changes nothing), at the
	 * stop's PC (not stale). */
	if (sw) {
		r = kvmdbg_stepover_lift_fast(v);
		if (r)
			return r;
	} else if (v->hot.mask_irqs) {
		r = kvmdbg_mask_irqs(v->hot.mask_irqs, v->hot.host_ctx, v->fd, v->so.pc,
				     kvmdbg_stepover_insn_word, v, &v->so.irq_saved);
		if (r)
			return r;
		v->so.irq_masked = true;
	}
	/* The stop's hints go, as with a compose (vcpu_prepare). */
	v->so.exec_hit = false;
	v->so.sw_clear = false;
	v->so.state = KVMDBG_SO_STEPPING;
	v->so.slots = slots;
	/* Each slot's owner: the execution breakpoint's point from the copy,
	 * else the watchpoint's, kept at the stop (what a failure restores). */
	KVMDBG_FOR_EACH_SLOT(both, pool, slot)
		kept[pool][slot] = v->so.owner[pool][slot];
	KVMDBG_FOR_EACH_SLOT(exec, pool, slot)
		v->so.owner[pool][slot] = v->slot_pt[pool][slot].id;
	/* 1: more slots than step_apply_fast keeps (a watchpoint of many
	 * pieces), vcpu_prepare composes; -errno: nothing applied. Either way
	 * back to armed first, as kvmdbg_stepover_rollback. */
	r = step_apply_fast(v, sw);
	if (r) {
		v->so.state = KVMDBG_SO_ARMED;
		v->so.slots = watch;
		KVMDBG_FOR_EACH_SLOT(both, pool, slot)
			v->so.owner[pool][slot] = kept[pool][slot];
		/* Failures stay pending. */
		kvmdbg_irqs_give_back_inline(v);
		if (sw)
			kvmdbg_stepover_unlift(v);
		return r;
	}
	/* The stop's cover goes, as resume_fast's (sw_clear: no software
	 * breakpoint at the PC to bump the generation for); the lifted one's
	 * stays, where it was published at the stop (kvmdbg_cover_sync: the
	 * same address). */
	if (!sw && atomic_load_explicit(&v->cover_on, memory_order_relaxed))
		kvmdbg_cover_off(v);
	return 0;
}

static int vcpu_prepare_sync(struct kvmdbg_vcpu *v);

/* resume_step as prepare's answer: where it is not this case, the whole
 * prepare (vcpu_prepare_sync). kvmdbg_vcpu_prepare tail-calls these, and
 * they it: the return goes to the VMM at once (issue 17: under nested TCG
 * each return is a lookup of the next translated block). */
static KVMDBG_STEP __attribute__((noinline)) int resume_step_hw(struct kvmdbg_vcpu *v)
{
	int r = resume_step(v, false);

	return r > 0 ? vcpu_prepare_sync(v) : r;
}

/* With the software breakpoints' two-exit code. */
static KVMDBG_STEP_SW __attribute__((noinline)) int resume_step_sw(struct kvmdbg_vcpu *v)
{
	int r = resume_step(v, true);

	return r > 0 ? vcpu_prepare_sync(v) : r;
}

/* Everything kvmdbg_vcpu_prepare's no-change check and resume_fast did not
 * settle (vcpu_prepare_sync's body). */
static inline __attribute__((always_inline)) int vcpu_prepare(struct kvmdbg_vcpu *v)
{
	struct kvmdbg_hwstate hw;
	uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS];
	struct kvmdbg_vm *vm = v->vm;
	uint32_t ctl, once = 0, on;
	struct kvmdbg_stepover saved;
	uint64_t gen;
	bool need_rf = false, may_run, masked;
	int r;

	/* A compose follows: the stop's hints for resume_fast are void. */
	v->so.exec_hit = false;
	v->so.sw_clear = false;
	/* The way back from the step-over's step, where prepare_look and
	 * user_step_mask have nothing to do (kvmdbg_step_back_fast asks). */
	if (v->back_valid) {
		r = kvmdbg_step_back_fast(v, false);
		if (r <= 0)
			return r;
	}
	r = prepare_look(v);
	if (r)
		return r;

	/* What a failure gives back (prepare_undo): the step-over where one
	 * begins, with the owners of its slots alone (all that
	 * kvmdbg_stepover_rollback reads); else only what user_step_mask and
	 * prepare_undo read. Not 168 bytes copied on every compose. */
	if (v->so.state == KVMDBG_SO_ARMED) {
		memcpy(&saved, &v->so, offsetof(struct kvmdbg_stepover, owner));
		KVMDBG_FOR_EACH_SLOT(saved.slots, pool, slot)
			saved.owner[pool][slot] = v->so.owner[pool][slot];
	} else {
		saved.state = v->so.state;
		saved.pc_stale = v->so.pc_stale;
	}
	if (v->so.state == KVMDBG_SO_ARMED) {
		r = kvmdbg_stepover_begin(v, &need_rf);
		if (r)
			return r;
	}
	r = user_step_mask(v, &saved, &masked);
	if (r) {
		kvmdbg_stepover_rollback(v, &saved);
		return r;
	}
	/* A step-over begun leaves v->dirty alone: KVM holds the state of
	 * the stop, and whether it is current says what the step needs. */
	if (saved.state == KVMDBG_SO_ARMED && applied_current(v)) {
		if (v->so.state != KVMDBG_SO_STEPPING) {
			/* Nothing to step past, or only RF to set (never with
			 * the user's step, so never with its mask): maybe
			 * nothing changed at all, and KVM holds what compose
			 * would build. RF last, as below. */
			if (!need_rf)
				return 0;
			r = v->hot.set_resume_flag(v->hot.host_ctx, v->fd);
			if (r)
				kvmdbg_stepover_rollback(v, &saved);
			return r;
		}
		/* The step-over's step without the lock where the state KVM
		 * holds says it all. */
		r = step_apply_fast(v, false);
		if (r <= 0) {
			if (r)
				prepare_undo(v, &saved, masked);
			return r;
		}
	} else if (v->back_valid && saved.state == KVMDBG_SO_NONE) {
		/* ... and the way back from it. */
		r = kvmdbg_step_back_fast(v, false);
		if (r <= 0)
			return r;
	}

	kvmdbg_mutex_lock(&vm->lock);
	gen = atomic_load_explicit(&vm->gen, memory_order_acquire);
	may_run = compose_locked(v, &hw, owner, &ctl, &on);
	kvmdbg_points_cache_locked(v, atomic_load_explicit(&vm->hw_gen, memory_order_relaxed));
	kvmdbg_mutex_unlock(&vm->lock);
	/* The fence: another vCPU's step-over has (or is about to have) the
	 * guest's bytes back under a software breakpoint this vCPU cannot
	 * catch in a hardware slot. It waits; nothing has changed. */
	r = may_run ? apply_to_kvm(v, &hw, &ctl, &once, on) : -EAGAIN;
	if (r) {
		prepare_undo(v, &saved, masked);
		return r;
	}
	/* Last, so that nothing fails after it. On failure KVM already holds
	 * the new state: record it, and stay armed to set RF again. */
	if (need_rf) {
		r = v->hot.set_resume_flag(v->hot.host_ctx, v->fd);
		if (r)
			kvmdbg_stepover_rollback(v, &saved);
	}
	record_applied(v, &hw, owner, ctl, gen, once, on);
	return r;
}

/* vcpu_prepare, then what the others must catch for this vCPU now (its
 * step-over begun, finished, or given up by the VMM moving the PC). On
 * failure nothing changed, the generation included. Out of line, with the
 * publication: kvmdbg_vcpu_prepare's fast paths stay short and in the hot
 * page. */
static KVMDBG_STEP_REST __attribute__((noinline)) int vcpu_prepare_sync(struct kvmdbg_vcpu *v)
{
	int r = vcpu_prepare(v);

	if (!r)
		kvmdbg_cover_sync(v);
	return r;
}

/*
 * Resuming from a reported stop where nothing else changed: when nothing is
 * armed at the PC (a single-step stop), or only execution breakpoints that
 * RF skips, settle the step-over here without the lock or a compose (what
 * kvmdbg_stepover_begin would find, from the vCPU's copy of the points),
 * and take the user's step's interrupt mask where nothing is armed (what
 * user_step_mask would, at the stop's PC); where the host's hardware points
 * at the PC need a step (no RF, arm64 watchpoints) or a software breakpoint
 * may be there, resume_step takes it. Returns prepare's answer (on failure
 * nothing changed); where it is not this case, vcpu_prepare_sync's, called
 * last (a tail call, as resume_step_hw and resume_step_sw).
 */
static KVMDBG_HOT int resume_fast(struct kvmdbg_vcpu *v)
{
	uint32_t slots = 0;
	int r;

	/* Nothing lifted, masked or moved; applied_current() (the flags in
	 * one test). The user's step's interrupt mask is
	 * taken below where nothing is armed at the PC. Watchpoints that stop
	 * before the access (so.slots) are stepped past below too. */
	const uint64_t so_any = KVMDBG_SO_FLAG(sw) | KVMDBG_SO_FLAG(irq_masked) |
				KVMDBG_SO_FLAG(pc_stale);
	const uint64_t v_mask = KVMDBG_VCPU_FLAG(applied_valid) | KVMDBG_VCPU_FLAG(dirty) |
				KVMDBG_VCPU_FLAG(guest_stale) | KVMDBG_VCPU_FLAG(guest_step);

	if ((v->so.flags & so_any) ||
	    (v->flags & v_mask) != KVMDBG_VCPU_FLAG(applied_valid) || v->reinject.pending ||
	    atomic_load_explicit(&v->seen.gen, memory_order_acquire) != v->gen)
		return vcpu_prepare_sync(v);
	/* Overlay: while no slot of ours runs, prepare re-reads the guest's
	 * (vm as loaded above: kvmdbg_overlay_on(v) would load it again after
	 * the acquire). */
	if (v->hot.overlay == KVMDBG_OVERLAY_GUEST && !(v->applied_ctl & KVMDBG_CTL_HW))
		return vcpu_prepare_sync(v);
	/* The vCPU's copy of the points is current without asking hw_gen:
	 * it was made under the lock that loaded v->gen (vcpu_prepare, before
	 * record_applied; a cover's bump moves v->gen along only where
	 * nothing changed since, kvmdbg_cover_bump), and every change of the
	 * hardware points bumps
	 * vm->gen in the critical section that bumps hw_gen (vm.c), so the
	 * generation unchanged above says the copy is too (issue 17).
	 * Expected false: without the hint GCC 12 lays the no-breakpoint case
	 * out of line, one jump more on the plain step's resume. */
	if (__builtin_expect(atomic_load_explicit(&v->seen.nr_exec, memory_order_relaxed) != 0, 0) ||
	    v->so.slots) {
		/* Not sw_clear: a software breakpoint may be at the PC
		 * (resume_step_sw looks; not with the user's step). */
		if (!v->so.sw_clear)
			return v->user_step ? vcpu_prepare_sync(v) : resume_step_sw(v);
		/* Stopped watchpoints (so.slots) step whatever else is here:
		 * resume_step_hw looks up the execution breakpoints itself. */
		slots = v->so.slots   ? v->so.slots
			: v->so.exec_hit ? 1
					 : kvmdbg_cached_exec_slots(v, v->so.pc);
	}
	if (slots) {
		/* As kvmdbg_stepover_begin: RF where the host honours it and
		 * only execution breakpoints stopped here, else a step (the
		 * user's step: vcpu_prepare). */
		if (v->user_step)
			return vcpu_prepare_sync(v);
		if (v->so.slots || !v->hot.set_resume_flag)
			return resume_step_hw(v);
		r = v->hot.set_resume_flag(v->hot.host_ctx, v->fd);
		if (r)
			return r; /* still armed: the retry sets RF again */
	} else if (kvmdbg_user_step_masks(v)) {
		/* The user's step runs with the guest's interrupts masked
		 * (user_step_mask): nothing is armed at the PC, so no step-over
		 * holds them, and the PC is the stop's (not stale). */
		r = kvmdbg_mask_irqs(v->hot.mask_irqs, v->hot.host_ctx, v->fd, v->so.pc,
				     kvmdbg_stepover_insn_word, v, &v->so.irq_saved);
		if (r)
			return r; /* still armed, nothing masked */
		v->so.irq_masked = true;
	}
	v->so.state = KVMDBG_SO_NONE;
	/* The stop's cover goes (kvmdbg_cover_sync for a step-over that
	 * lifted nothing), without asking the filter again whether a software
	 * breakpoint is at so.pc for a generation bump: above it said none
	 * (or none exists at all). One inserted there since bumped the
	 * generation itself; a vCPU that composed in between keeps a slot
	 * catching a live breakpoint until its next compose, which is what
	 * the breakpoint does anyway. */
	if (atomic_load_explicit(&v->cover_on, memory_order_relaxed))
		kvmdbg_cover_off(v);
	return 0;
}

KVMDBG_EXPORT KVMDBG_HOT int kvmdbg_vcpu_prepare(struct kvmdbg_vcpu *v)
{
	if (!v)
		return -EINVAL;
	/* Fast path, no lock: nothing changed since the last
	 * KVM_SET_GUEST_DEBUG, no step-over to begin or give back, the
	 * interrupts masked if and only if the user's step needs them so
	 * (kvmdbg_user_step_masks, at the PC they were masked at), and the
	 * others already see this vCPU's cover as it is. */
	if (v->so.state != KVMDBG_SO_ARMED &&
	    (v->so.state == KVMDBG_SO_STEPPING ||
	     (!v->so.sw && v->so.irq_masked == kvmdbg_user_step_masks(v) &&
	      !(v->so.irq_masked & v->so.pc_stale))) &&
	    atomic_load_explicit(&v->cover_on, memory_order_relaxed) == v->so.sw &&
	    applied_current(v))
		return 0;
	if (v->so.state == KVMDBG_SO_ARMED)
		return resume_fast(v);
	return vcpu_prepare_sync(v);
}

KVMDBG_EXPORT void kvmdbg_vcpu_free(struct kvmdbg_vcpu *v)
{
	struct kvmdbg_vm *vm;
	struct kvmdbg_hwstate none;

	if (!v)
		return;
	vm = v->vm;
	if (v->so.state == KVMDBG_SO_STEPPING)
		kvmdbg_stepover_finish(v);
	/* The user's step's mask, held across an MMIO exit. */
	kvmdbg_stepover_irqs_give_back(v);
	memset(&none, 0, sizeof(none));
	v->hot.set_guest_debug(v->hot.host_ctx, v->fd, 0, &none, 0);
	kvmdbg_mutex_lock(&vm->lock);
	kvmdbg_stepover_drop_locked(v);
	for (struct kvmdbg_vcpu **pp = &vm->vcpus; *pp; pp = &(*pp)->next)
		if (*pp == v) {
			*pp = v->next;
			break;
		}
	atomic_fetch_sub(&vm->nr_vcpus, 1);
	kvmdbg_mutex_unlock(&vm->lock);
	free(v);
}
