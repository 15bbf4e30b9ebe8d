/* SPDX-License-Identifier: MIT */
/*
 * Per-vCPU: one composer builds the vCPU's whole KVM debug state (breakpoint
 * set, user step, step-over, re-injection) so no feature erases another;
 * prepare applies it only when something changed; handle_exit classifies a
 * KVM_EXIT_DEBUG against the state this vCPU really ran with.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/kvm.h>

#include "kvmdbg-int.h"

KVMDBG_EXPORT int kvmdbg_vcpu_new(struct kvmdbg_vm *vm, int vcpu_fd, struct kvm_run *run,
				  struct kvmdbg_vcpu **out)
{
	struct kvmdbg_vcpu *v;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!vm || !run || vcpu_fd < 0)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->vm = vm;
	v->fd = vcpu_fd;
	v->run = run;
	/* KVM's state for this vCPU is unknown to us: apply at the first prepare. */
	v->applied_valid = false;
	v->guest_stale = vm->overlay == KVMDBG_OVERLAY_GUEST;
	pthread_mutex_lock(&vm->lock);
	vm->nr_vcpus++;
	v->next = vm->vcpus;
	vm->vcpus = v;
	pthread_mutex_unlock(&vm->lock);
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
	return v->user_step || v->so == KVMDBG_SO_STEPPING || v->gd_stepping;
}

static bool overlay_on(const struct kvmdbg_vcpu *v)
{
	return v->vm->overlay == KVMDBG_OVERLAY_GUEST;
}

KVMDBG_EXPORT int kvmdbg_vcpu_refresh_guest(struct kvmdbg_vcpu *v)
{
	if (!v)
		return -EINVAL;
	if (!overlay_on(v))
		return -EOPNOTSUPP;
	v->guest_stale = true;
	return 0;
}

KVMDBG_EXPORT int kvmdbg_vcpu_overlay_stats(const struct kvmdbg_vcpu *v,
					    struct kvmdbg_overlay_stats *st)
{
	struct kvmdbg_overlay_stats full;

	if (!v || !st || st->sz < sizeof(size_t))
		return -EINVAL;
	if (!overlay_on(v))
		return -EOPNOTSUPP;
	full = (struct kvmdbg_overlay_stats){
		.sz = st->sz,
		.merged = v->guest_merged,
		.suspended = v->guest_suspended,
		.rejected = v->guest_rejected,
		.reinjected = v->nr_reinjected,
		.refreshes = v->nr_refreshes,
	};
	return kvmdbg_sized_out(st, &full, sizeof(full));
}

/* Re-read the guest's own debug registers; dirty if its slots changed. */
static int guest_refresh(struct kvmdbg_vcpu *v)
{
	const struct kvmdbg_vm *vm = v->vm;
	struct kvmdbg_hwstate slots;
	unsigned int rejected;
	int r = vm->host->read_guest_regs(v->fd, &v->guest_regs);

	if (r)
		return r;
	v->nr_refreshes++;
	v->guest_stale = false;
	vm->arch->guest_slots(&v->guest_regs, &slots, &rejected);
	if (memcmp(&slots, &v->guest, sizeof(slots)) || rejected != v->guest_rejected) {
		v->guest = slots;
		v->guest_rejected = rejected;
		v->dirty = true;
	}
	return 0;
}

/*
 * Overlay: put the guest's enabled slots into the hardware slots the host
 * leaves free, under the guest's own number where the host does not hold
 * it, else any free one; what does not fit is suspended (the host wins).
 * Called with vm->lock held, after the host's slots are in hw.
 */
static void merge_guest_locked(struct kvmdbg_vcpu *v, struct kvmdbg_hwstate *hw,
			       uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS])
{
	const struct kvmdbg_vm *vm = v->vm;
	bool live_exec = (vm->features & KVMDBG_FEAT_VERIFIED) &&
			 (vm->features & KVMDBG_FEAT_GUEST_BP_LIVE);

	v->guest_merged = v->guest_suspended = 0;
	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++) {
		unsigned int nr = vm->slots.nr[pool];

		for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++) {
			const struct kvmdbg_hwslot *g = &v->guest.slot[pool][n];
			unsigned int m = KVMDBG_MAX_SLOTS;

			if (!g->ctrl)
				continue;
			/* This KVM keeps the guest's own execution breakpoints
			 * running beside the host's: merging would double them. */
			if (live_exec && vm->arch->slot_type(pool, g->ctrl) == KVMDBG_BREAK_HW)
				continue;
			if (n < nr && !vm->slots.owner[pool][n] && !owner[pool][n])
				m = n;
			for (unsigned int i = 0; m == KVMDBG_MAX_SLOTS && i < nr; i++)
				if (!vm->slots.owner[pool][i] && !owner[pool][i])
					m = i;
			if (m == KVMDBG_MAX_SLOTS) {
				v->guest_suspended++;
				continue;
			}
			hw->slot[pool][m] = *g;
			owner[pool][m] = KVMDBG_OWNER_GUEST_ID(pool, n);
			v->guest_merged++;
		}
	}
}

KVMDBG_EXPORT int kvmdbg_vcpu_regs_changed(struct kvmdbg_vcpu *v)
{
	if (!v)
		return -EINVAL;
	v->so_pc_stale = true;
	return 0;
}

static bool sw_table_has(const struct kvmdbg_vm *vm, uint64_t addr)
{
	return kvmdbg_swtab_find(&vm->sw, addr) != NULL;
}

/*
 * The address the other vCPUs must catch for this one: a software breakpoint
 * it has lifted for its step-over, or the place of a reported stop it will
 * step past at its next prepare (where it will lift one, if one is there
 * then). Published with atomics; a change that concerns a live software
 * breakpoint bumps the generation so the others re-compose.
 *
 * Where the VM has no software breakpoint at all, no change can concern
 * one and the lock is not taken (the common single-step and hardware
 * breakpoint stops). Publishing first and reading nr_sw after it, both
 * seq_cst, pairs with kvmdbg_vm_insert, which raises nr_sw (seq_cst) before
 * it bumps the generation: either this sees the new breakpoint and takes
 * the lock to decide the bump, or every vCPU that composes after that bump
 * sees this cover.
 */
/* A published cover changed while the VM has software breakpoints: bump
 * the generation if the change concerns a live one. */
static __attribute__((noinline)) void cover_bump(struct kvmdbg_vm *vm, bool was, uint64_t old,
						 bool on, uint64_t addr)
{
	pthread_mutex_lock(&vm->lock);
	if ((was && sw_table_has(vm, old)) || (on && sw_table_has(vm, addr)))
		kvmdbg_bump_gen(vm);
	pthread_mutex_unlock(&vm->lock);
}

static inline __attribute__((always_inline)) void cover_sync(struct kvmdbg_vcpu *v)
{
	struct kvmdbg_vm *vm = v->vm;
	bool on = v->so_sw || v->so == KVMDBG_SO_ARMED;
	uint64_t addr = v->so_sw ? v->so_sw_addr : v->so_pc;
	bool was = atomic_load_explicit(&v->cover_on, memory_order_relaxed);
	uint64_t old = atomic_load_explicit(&v->cover_addr, memory_order_relaxed);

	if (on == was && (!on || addr == old))
		return;
	if (on)
		atomic_store_explicit(&v->cover_addr, addr, memory_order_relaxed);
	atomic_store(&v->cover_on, on);
	if (on && !was)
		atomic_fetch_add(&vm->nr_cover, 1);
	else if (!on && was)
		atomic_fetch_sub(&vm->nr_cover, 1);
	if (atomic_load(&vm->nr_sw))
		cover_bump(vm, was, old, on, addr);
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
static bool cover_locked(struct kvmdbg_vcpu *v, struct kvmdbg_hwstate *hw,
			 uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS])
{
	struct kvmdbg_vm *vm = v->vm;

	if (!atomic_load(&vm->nr_cover) || v->so == KVMDBG_SO_STEPPING)
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
		if (!sw_table_has(vm, addr))
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

/*
 * Copy what the lock-free paths need of the VM's hardware points into the
 * vCPU (see struct kvmdbg_vcpu pts_gen), for vm->hw_gen == gen. Called
 * with vm->lock held; nothing to do while they are the ones copied.
 */
static void points_cache_locked(struct kvmdbg_vcpu *v, uint64_t gen)
{
	const struct kvmdbg_vm *vm = v->vm;
	uint64_t filter = 0;
	unsigned int n = 0;

	if (v->pts_gen == gen)
		return;
	memset(v->slot_pt, 0, sizeof(v->slot_pt));
	for (unsigned int i = 0; i < KVMDBG_MAX_POINTS; i++) {
		const struct kvmdbg_hwpoint *p = &vm->points[i];

		if (!p->id)
			continue;
		for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
			for (unsigned int slot = 0; slot < KVMDBG_MAX_SLOTS; slot++)
				if (p->slots & KVMDBG_HIT_BIT(pool, slot))
					v->slot_pt[pool][slot] = *p;
		/* Every execution breakpoint holds a slot of its own. */
		if (p->type == KVMDBG_BREAK_HW && n < KVMDBG_MAX_SLOTS) {
			v->exec_addr[n] = p->addr;
			v->exec_slots[n] = p->slots;
			filter |= kvmdbg_exec_bit(p->addr);
			n++;
		}
	}
	v->exec_filter = filter;
	v->nr_exec_pts = n;
	v->pts_gen = gen;
}

/* The VM's set is still the one of the vCPU's copy (points_cache_locked). */
static bool points_cached(const struct kvmdbg_vcpu *v)
{
	return v->pts_gen == atomic_load_explicit(&v->vm->hw_gen, memory_order_acquire);
}

/* The slots of the execution breakpoints at pc, from the vCPU's copy. */
static inline __attribute__((always_inline)) uint32_t cached_exec_slots(const struct kvmdbg_vcpu *v, uint64_t pc)
{
	uint64_t bit = kvmdbg_exec_bit(pc);
	uint32_t slots = 0;

	if ((v->exec_filter & bit) != bit)
		return 0;
	for (unsigned int i = 0; i < v->nr_exec_pts; i++)
		if (v->exec_addr[i] == pc)
			slots |= v->exec_slots[i];
	return slots;
}

/* Build the vCPU's whole debug state. Called with vm->lock held. Returns
 * false when the vCPU must not run now (cover_locked). */
static bool compose_locked(struct kvmdbg_vcpu *v, struct kvmdbg_hwstate *hw,
			   uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS], uint32_t *ctl)
{
	struct kvmdbg_vm *vm = v->vm;
	bool any_hw = false, host_hw = false, may_run = true;

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
	may_run = cover_locked(v, hw, owner);

	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int slot = 0; slot < KVMDBG_MAX_SLOTS; slot++)
			host_hw |= owner[pool][slot] != 0;
	/* Any KVM debug flag takes the guest's own breakpoints and watchpoints
	 * away from it: arm64 KVM either routes their exceptions to us
	 * (MDCR_EL2.TDE, KVMDBG_FEAT_GUEST_REGS_RAW) or runs none of them
	 * (Linux 6.14 on). So merge whenever KVM will debug this vCPU, not only
	 * when the host holds hardware slots. */
	if (overlay_on(v) && (host_hw || vm->sw.count || v->user_step ||
			      v->so == KVMDBG_SO_STEPPING)) {
		merge_guest_locked(v, hw, owner);
		if (vm->features & KVMDBG_FEAT_GD_EXIT)
			*ctl |= KVMDBG_CTL_GD;
	} else if (overlay_on(v)) {
		v->guest_merged = v->guest_suspended = 0;
	}
	/* Slots disarmed while this vCPU steps past the stop that hit them
	 * (the host's, or a guest's the guest could not take: after the merge,
	 * which puts a guest slot where it was). */
	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int slot = 0; slot < KVMDBG_MAX_SLOTS; slot++)
			if (v->so == KVMDBG_SO_STEPPING &&
			    (v->so_slots & KVMDBG_HIT_BIT(pool, slot))) {
				hw->slot[pool][slot].ctrl = 0;
				owner[pool][slot] = 0;
			}
	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int slot = 0; slot < KVMDBG_MAX_SLOTS; slot++)
			any_hw |= hw->slot[pool][slot].ctrl != 0;
	if (any_hw)
		*ctl |= KVMDBG_CTL_HW;
	else
		*ctl &= ~KVMDBG_CTL_GD;
flags:
	if (vm->sw.count)
		*ctl |= KVMDBG_CTL_SW_BP;
	if (v->user_step || v->so == KVMDBG_SO_STEPPING || v->gd_stepping) {
		*ctl |= KVMDBG_CTL_STEP;
		if (vm->caps.block_irq)
			*ctl |= KVMDBG_CTL_BLOCKIRQ;
	}
	if (*ctl)
		*ctl |= KVMDBG_CTL_ENABLE;
	return may_run;
}

/* Put a software breakpoint back after a step over it. Called locked. On
 * failure it stays lifted (so_sw set) and the next prepare tries again. */
static int sw_unlift_locked(struct kvmdbg_vcpu *v)
{
	struct kvmdbg_vm *vm = v->vm;
	struct kvmdbg_swbp *e = kvmdbg_swtab_find(&vm->sw, v->so_sw_addr);
	int r;

	if (!e || !e->lifted) {
		v->so_sw = false; /* removed meanwhile: its bytes are the guest's */
		return 0;
	}
	if (e->lifted == 1) {
		r = kvmdbg_mem_replace(vm, e->addr, vm->arch->sw_insn, e->orig, vm->arch->sw_len);
		if (r)
			return r;
	}
	e->lifted--;
	v->so_sw = false;
	return 0;
}

/* Give the guest back the interrupt mask a step-over took (arm64 DAIF).
 * On failure it stays pending (so_irq_masked set). */
static int irqs_give_back(struct kvmdbg_vcpu *v)
{
	const struct kvmdbg_host_ops *h = v->vm->host;
	int r;

	if (!v->so_irq_masked || !h->restore_irqs)
		return 0;
	r = h->restore_irqs(v->fd, v->so_irq_saved);
	if (!r)
		v->so_irq_masked = false;
	return r;
}

/*
 * Give back what a finished or abandoned step-over holds: the software
 * breakpoint it lifted, the guest's interrupt mask. What fails stays
 * pending; prepare settles it first and returns the error until it works.
 */
static int stepover_settle(struct kvmdbg_vcpu *v)
{
	struct kvmdbg_vm *vm = v->vm;
	int first = 0, r;

	if (v->so_sw) {
		pthread_mutex_lock(&vm->lock);
		first = sw_unlift_locked(v);
		pthread_mutex_unlock(&vm->lock);
	}
	/* Independent of the breakpoint: the guest's interrupts come back. */
	r = irqs_give_back(v);
	return first ? first : r;
}

/* End an internal step: re-arm, re-insert, give interrupts back. */
static void stepover_finish(struct kvmdbg_vcpu *v)
{
	v->so = KVMDBG_SO_NONE;
	v->so_slots = 0;
	v->dirty = true;
	/* A failure stays pending: the next prepare retries it and reports it. */
	stepover_settle(v);
	cover_sync(v);
}

/*
 * A reported stop is being resumed: find what is armed at the PC and step
 * past it. Returns 0 (maybe with v->so = KVMDBG_SO_STEPPING) or -errno with
 * nothing changed.
 */
static int stepover_begin(struct kvmdbg_vcpu *v, bool *need_rf)
{
	struct kvmdbg_vm *vm = v->vm;
	const struct kvmdbg_host_ops *h = vm->host;
	uint32_t slots = 0, watch_slots = 0;
	bool sw = false;
	uint64_t pc = v->so_pc;
	int r;

	/* Nothing can be armed anywhere: done without the lock (the common
	 * case of a user stepping with no breakpoint set). */
	if (!atomic_load_explicit(&vm->nr_exec, memory_order_relaxed) && !v->so_slots) {
		v->so = KVMDBG_SO_NONE;
		v->so_pc_stale = false;
		return 0;
	}
	if (v->so_pc_stale) {
		r = h->get_pc(v->fd, &pc);
		if (r)
			return r;
	}

	/* Whether a point is armed at the PC: without the lock while the set
	 * is the one this vCPU copied and no software breakpoint exists (what
	 * is in the table needs the lock). */
	if (points_cached(v) && !atomic_load_explicit(&vm->nr_sw, memory_order_acquire)) {
		slots = cached_exec_slots(v, pc);
	} else {
		pthread_mutex_lock(&vm->lock);
		for (unsigned int i = 0; i < KVMDBG_MAX_POINTS; i++) {
			const struct kvmdbg_hwpoint *p = &vm->points[i];

			if (p->id && p->type == KVMDBG_BREAK_HW && p->addr == pc)
				slots |= p->slots;
		}
		sw = sw_table_has(vm, pc);
		pthread_mutex_unlock(&vm->lock);
	}
	/* Watchpoints that stop before the access, only if the PC is where
	 * they stopped (the VMM may have moved it). */
	if (!v->so_pc_stale || pc == v->so_pc)
		watch_slots = v->so_slots;
	slots |= watch_slots;

	v->so_pc = pc;
	v->so_pc_stale = false;
	if (!slots && !sw) {
		v->so = KVMDBG_SO_NONE;
		v->so_slots = 0;
		return 0;
	}

	/* Only execution breakpoints, and the host honours RF: no step needed.
	 * prepare sets RF last, once nothing else can fail. */
	if (!sw && !(slots & watch_slots) && !v->user_step &&
	    (vm->features & KVMDBG_FEAT_RF_RESUME) && h->set_resume_flag) {
		v->so = KVMDBG_SO_NONE;
		v->so_slots = 0;
		*need_rf = true;
		return 0;
	}

	if (h->mask_irqs && !v->so_irq_masked) {
		r = h->mask_irqs(v->fd, &v->so_irq_saved);
		if (r)
			return r;
		v->so_irq_masked = true;
	}
	if (sw) {
		pthread_mutex_lock(&vm->lock);
		struct kvmdbg_swbp *e = kvmdbg_swtab_find(&vm->sw, pc);

		r = 0;
		if (e && e->lifted == 0)
			r = kvmdbg_mem_replace(vm, pc, e->orig, vm->arch->sw_insn, vm->arch->sw_len);
		if (e && !r) {
			e->lifted++;
			v->so_sw = true;
			v->so_sw_addr = pc;
		}
		pthread_mutex_unlock(&vm->lock);
		if (r) {
			irqs_give_back(v); /* a failure stays pending */
			return r;
		}
	}
	v->so = KVMDBG_SO_STEPPING;
	v->so_slots = slots;
	v->dirty = true;
	return 0;
}

/* KVM holds what this vCPU would apply now: nothing changed, nothing to
 * deliver, nothing to re-read. */
static bool applied_current(const struct kvmdbg_vcpu *v)
{
	return v->applied_valid && !v->dirty && !v->reinject.pending && !v->guest_stale &&
	       atomic_load_explicit(&v->vm->gen, memory_order_acquire) == v->gen;
}

/* What prepare saves to undo a step-over it began. */
struct stepover_saved {
	enum kvmdbg_stepover so;
	uint32_t slots;
	uint64_t pc;
	bool pc_stale;
};

static void stepover_restore(struct kvmdbg_vcpu *v, const struct stepover_saved *s)
{
	v->so = s->so;
	v->so_slots = s->slots;
	v->so_pc = s->pc;
	v->so_pc_stale = s->pc_stale;
}

static __attribute__((noinline)) int vcpu_prepare(struct kvmdbg_vcpu *v)
{
	struct kvmdbg_hwstate hw;
	uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS];
	struct kvmdbg_vm *vm = v->vm;
	uint32_t ctl, once = 0;
	struct stepover_saved saved;
	uint64_t gen;
	bool need_rf = false, may_run;
	int r;

	/* What an earlier step-over could not give back yet. */
	if (v->so != KVMDBG_SO_STEPPING) {
		r = stepover_settle(v);
		if (r)
			return r;
	}

	/* Until now KVM ran the guest's own registers (nothing applied yet, or
	 * no hardware slot of ours): the guest may have changed them without
	 * any exit. Look before merging them. */
	if (overlay_on(v) && !(v->applied_valid && (v->applied_ctl & KVMDBG_CTL_HW)))
		v->guest_stale = true;
	if (overlay_on(v) && v->guest_stale) {
		r = guest_refresh(v);
		if (r)
			return r;
	}

	saved = (struct stepover_saved){
		.so = v->so, .slots = v->so_slots, .pc = v->so_pc, .pc_stale = v->so_pc_stale};
	if (v->so == KVMDBG_SO_ARMED) {
		r = stepover_begin(v, &need_rf);
		if (r)
			return r;
		/* Nothing to step past, or only RF to set: maybe nothing
		 * changed at all, and KVM holds what compose would build. RF
		 * last, as below. */
		if (applied_current(v)) {
			if (!need_rf)
				return 0;
			r = vm->host->set_resume_flag(v->fd);
			if (r)
				stepover_restore(v, &saved);
			return r;
		}
	}

	pthread_mutex_lock(&vm->lock);
	gen = atomic_load_explicit(&vm->gen, memory_order_acquire);
	may_run = compose_locked(v, &hw, owner, &ctl);
	points_cache_locked(v, atomic_load_explicit(&vm->hw_gen, memory_order_relaxed));
	pthread_mutex_unlock(&vm->lock);
	/* The fence: another vCPU's step-over has (or is about to have) the
	 * guest's bytes back under a software breakpoint this vCPU cannot
	 * catch in a hardware slot. It waits; nothing has changed. */
	if (!may_run) {
		r = -EAGAIN;
		goto rollback;
	}

	/* x86: the injection rides on KVM_SET_GUEST_DEBUG's flags. */
	if (v->reinject.pending && !vm->host->inject_emulated) {
		r = vm->host->inject(v->fd, &v->reinject, &once);
		if (r)
			goto rollback;
	}

	ctl |= once;
	if (once)
		ctl |= KVMDBG_CTL_ENABLE;
	r = 0;
	if (once || !v->applied_valid || ctl != v->applied_ctl ||
	    memcmp(&hw, &v->applied, sizeof(hw))) {
		r = vm->host->set_guest_debug(v->fd, ctl, &hw);
		if (r)
			goto rollback;
	}
	/* arm64: the exception entry is emulated once the rest is in place;
	 * if it fails, KVM gets its previous debug state back. */
	if (v->reinject.pending && vm->host->inject_emulated) {
		r = vm->host->inject(v->fd, &v->reinject, &once);
		if (r) {
			if (!v->applied_valid ||
			    vm->host->set_guest_debug(v->fd, v->applied_ctl, &v->applied))
				v->applied_valid = false; /* unknown: apply next time */
			goto rollback;
		}
		v->reinject.pending = false;
		v->nr_reinjected++;
	}
	/* Last, so that nothing fails after it. On failure KVM already holds
	 * the new state: record it, and stay armed to set RF again. */
	if (need_rf) {
		r = vm->host->set_resume_flag(v->fd);
		if (r)
			stepover_restore(v, &saved);
	}
	v->applied = hw;
	memcpy(v->applied_owner, owner, sizeof(owner));
	v->applied_ctl = ctl;
	v->applied_valid = true;
	v->gen = gen;
	v->dirty = false;
	if (once) {
		v->reinject.pending = false;
		v->nr_reinjected++;
	}
	return r;

rollback:
	/* Nothing may change on failure: a step-over begun here goes back to
	 * armed, giving back what it lifted or masked (a failure of that stays
	 * pending and is retried first next time). x86 RF, if set, only
	 * skips the breakpoint the retry skips anyway. */
	if (saved.so == KVMDBG_SO_ARMED) {
		if (v->so == KVMDBG_SO_STEPPING)
			stepover_settle(v);
		stepover_restore(v, &saved);
	}
	return r;
}

/*
 * Resuming from a reported stop where nothing else changed: when nothing is
 * armed at the PC (a single-step stop), or only execution breakpoints that
 * RF skips, settle the step-over here without the lock or a compose:
 * 1 done (*r its result), 0 not this case (vcpu_prepare does it all).
 */
static int resume_fast(struct kvmdbg_vcpu *v, int *r)
{
	struct kvmdbg_vm *vm = v->vm;
	uint32_t slots = 0;

	if (v->so_sw || v->so_irq_masked || v->so_pc_stale || v->so_slots || !applied_current(v))
		return 0;
	/* Overlay: while no slot of ours runs, prepare re-reads the guest's. */
	if (overlay_on(v) && !(v->applied_ctl & KVMDBG_CTL_HW))
		return 0;
	if (atomic_load_explicit(&vm->nr_exec, memory_order_relaxed)) {
		if (!points_cached(v) || atomic_load_explicit(&vm->nr_sw, memory_order_acquire))
			return 0;
		slots = cached_exec_slots(v, v->so_pc);
	}
	if (slots) {
		/* As stepover_begin: RF where the host honours it, else a step. */
		if (v->user_step || !(vm->features & KVMDBG_FEAT_RF_RESUME) ||
		    !vm->host->set_resume_flag)
			return 0;
		*r = vm->host->set_resume_flag(v->fd);
		if (*r)
			return 1; /* still armed: the retry sets RF again */
	}
	v->so = KVMDBG_SO_NONE;
	*r = 0;
	cover_sync(v);
	return 1;
}

KVMDBG_EXPORT int kvmdbg_vcpu_prepare(struct kvmdbg_vcpu *v)
{
	int r;

	if (!v)
		return -EINVAL;
	/* Fast path, no lock: nothing changed since the last
	 * KVM_SET_GUEST_DEBUG, no step-over to begin or give back, and the
	 * others already see this vCPU's cover as it is. */
	if (v->so != KVMDBG_SO_ARMED &&
	    (v->so == KVMDBG_SO_STEPPING || !(v->so_sw || v->so_irq_masked)) &&
	    atomic_load_explicit(&v->cover_on, memory_order_relaxed) == v->so_sw &&
	    applied_current(v))
		return 0;
	if (v->so == KVMDBG_SO_ARMED && resume_fast(v, &r))
		return r;
	r = vcpu_prepare(v);
	/* What the others must catch for this vCPU now (its step-over begun,
	 * finished, or given up by the VMM moving the PC). On failure nothing
	 * changed, the generation included. */
	if (!r)
		cover_sync(v);
	return r;
}

static const struct kvmdbg_hwpoint *point_by_id(const struct kvmdbg_vm *vm, uint32_t id)
{
	if (!id)
		return NULL;
	for (unsigned int i = 0; i < KVMDBG_MAX_POINTS; i++)
		if (vm->points[i].id == id)
			return &vm->points[i];
	return NULL;
}

static void queue_reinject(struct kvmdbg_vcpu *v, uint32_t exception, uint64_t dr6,
			   const struct kvmdbg_exit *ex)
{
	v->reinject = (struct kvmdbg_reinject){
		.pending = true,
		.exception = exception,
		.dr6 = dr6,
		.esr = ex->esr,
		.far = ex->far,
		.pc = ex->pc,
	};
}

/* Whether the instruction at pc can stop a step unfinished (see arch.h). */
static bool insn_unfinished(struct kvmdbg_vcpu *v, uint64_t pc)
{
	static const size_t tries[] = {KVMDBG_MAX_INSN, 8, 4, 2, 1};
	struct kvmdbg_vm *vm = v->vm;
	uint8_t insn[KVMDBG_MAX_INSN];
	bool r = false;

	if (!vm->arch->insn_restarts || !vm->mem)
		return false;
	pthread_mutex_lock(&vm->lock);
	/* The instruction may end just before unmapped memory: read less. */
	for (size_t i = 0; i < ARRAY_SIZE(tries); i++)
		if (vm->mem->read(vm->mem_ctx, pc, insn, tries[i]) == 0) {
			r = vm->arch->insn_restarts(insn, tries[i]);
			break;
		}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

/* Start of the lowest slot in mask, as this vCPU ran it (x86 data_addr). */
static uint64_t lowest_slot_start(const struct kvmdbg_vcpu *v, uint32_t mask)
{
	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int slot = 0; slot < KVMDBG_MAX_SLOTS; slot++)
			if (mask & KVMDBG_HIT_BIT(pool, slot))
				return v->applied.slot[pool][slot].start;
	return 0;
}

/* x86 DR6 bits in positive polarity. */
#define X86_DR6_BLD (1ull << 11)
#define X86_DR6_BD (1ull << 13)
#define X86_DR6_BS (1ull << 14)
#define X86_DR6_BT (1ull << 15)
#define X86_DR6_RTM (1ull << 16)
#define X86_DR7_GD (1ull << 13)

/*
 * The guest's own debug registers as they are at this exit: the overlay's
 * copy (re-read at every exit), else read now into *tmp. *out = NULL where
 * the glue cannot read them.
 */
static int guest_regs_now(struct kvmdbg_vcpu *v, struct kvmdbg_guest_regs *tmp,
			  const struct kvmdbg_guest_regs **out)
{
	int r;

	*out = NULL;
	if (overlay_on(v)) {
		*out = &v->guest_regs;
		return 0;
	}
	if (!v->vm->host->read_guest_regs)
		return 0;
	r = v->vm->host->read_guest_regs(v->fd, tmp);
	if (!r)
		*out = tmp;
	return r;
}

/*
 * The guest's own slots that explain this exit, in the guest's numbering:
 * enabled in its registers as they are now (re-read for this exit outside
 * the overlay) and matched by it (see arch guest_raw_hits). Only where its
 * registers were live in hardware: KVM ran them as the guest set them
 * because we applied no slot, or a verified KVM keeps its execution
 * breakpoints live beside ours (KVMDBG_FEAT_GUEST_BP_LIVE). Anything else
 * cannot be shown to be the guest's (the CPU sets x86 B bits of disabled
 * slots too).
 */
static int guest_own_hits(struct kvmdbg_vcpu *v, const struct kvmdbg_exit *ex, uint32_t *hits)
{
	struct kvmdbg_vm *vm = v->vm;
	const uint64_t live_feat = KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_GUEST_BP_LIVE;
	bool live_all = !(v->applied_ctl & KVMDBG_CTL_HW);
	bool live_exec = live_all || (vm->features & live_feat) == live_feat;
	const struct kvmdbg_guest_regs *regs;
	struct kvmdbg_guest_regs tmp;
	int r;

	*hits = 0;
	if (!live_exec || !vm->arch->guest_raw_hits)
		return 0;
	r = guest_regs_now(v, &tmp, &regs);
	if (r || !regs)
		return r;
	*hits = vm->arch->guest_raw_hits(regs, ex, !live_all);
	return 0;
}

/*
 * x86 ICEBP (INT1): a #DB whose DR6 names no cause. KVM reports it with the
 * PC on the ICEBP (VMX: before the instruction completes) or after it
 * (SVM); the byte there proves it. *skip: bytes the PC must move for the
 * guest to see its trap after the ICEBP.
 */
static int guest_icebp(struct kvmdbg_vcpu *v, const struct kvmdbg_exit *ex, bool *icebp,
		       unsigned int *skip)
{
	struct kvmdbg_vm *vm = v->vm;
	const unsigned int len = vm->arch->icebp_len;
	bool on = vm->host->icebp_exit_on_insn && vm->host->icebp_exit_on_insn();
	uint64_t at = on ? ex->pc : ex->pc - len;
	uint8_t b[1];
	int r;

	*icebp = false;
	*skip = 0;
	if (len != 1 || !vm->mem || (on && !vm->host->advance_pc) || (!on && ex->pc < len))
		return 0;
	pthread_mutex_lock(&vm->lock);
	r = vm->mem->read(vm->mem_ctx, at, b, 1);
	pthread_mutex_unlock(&vm->lock);
	/* Unreadable: nothing shows it is the guest's. */
	if (r || b[0] != vm->arch->icebp_insn)
		return 0;
	*icebp = true;
	*skip = on ? len : 0;
	return 0;
}

/*
 * Hits of the host's own points and nothing else (no step, no instruction,
 * no guest slot or cover slot, no overlay, no step-over running), settled
 * from this vCPU's copy of the points while the set is unchanged, without
 * the lock: what handle_exit_slow would do for them. 0: not this case,
 * nothing changed.
 */
static inline __attribute__((always_inline)) int hits_fast(struct kvmdbg_vcpu *v,
							   struct kvmdbg_event *ev,
							   const struct kvmdbg_exit *ex,
							   const struct kvmdbg_decoded *dec)
{
	const struct kvmdbg_vm *vm = v->vm;
	const struct kvmdbg_hwpoint *hp = NULL;
	uint32_t hits = 0;

	if (!dec->hits || dec->step || dec->swbp || dec->gd || dec->hw_unmatched ||
	    dec->dr6_other || v->so != KVMDBG_SO_NONE || v->gd_stepping || overlay_on(v) ||
	    !points_cached(v))
		return 0;
	for (uint32_t left = dec->hits; left; left &= left - 1) {
		unsigned int pool = (unsigned int)__builtin_ctz(left) / 16;
		unsigned int slot = (unsigned int)__builtin_ctz(left) % 16;
		uint32_t owner = v->applied_owner[pool][slot];
		const struct kvmdbg_hwpoint *p = &v->slot_pt[pool][slot];

		if (owner >= KVMDBG_OWNER_SW)
			return 0; /* a guest's slot or a cover: the whole story */
		/* Stale: its point was removed since this vCPU prepared. */
		if (!owner || p->id != owner)
			continue;
		hits |= KVMDBG_HIT_BIT(pool, slot);
		if (!hp || (p->type == KVMDBG_BREAK_HW && hp->type != KVMDBG_BREAK_HW))
			hp = p;
	}
	if (!hp)
		return 1; /* nothing that still exists: run again */
	ev->hits = hits;
	ev->type = hp->type;
	ev->addr = hp->addr;
	ev->len = hp->len;
	if (hp->type == KVMDBG_BREAK_HW) {
		ev->kind = KVMDBG_STOP_BREAK;
	} else {
		ev->kind = KVMDBG_STOP_WATCH;
		ev->data_addr = vm->arch->reports_data_addr ? dec->data_addr
							    : lowest_slot_start(v, hits & hp->slots);
		ev->write = hp->type == KVMDBG_WATCH_WRITE  ? 1
			    : hp->type == KVMDBG_WATCH_READ ? 0
			    : vm->arch->reports_data_addr   ? dec->write
							    : -1;
	}
	v->so = KVMDBG_SO_ARMED;
	v->so_pc = ex->pc;
	v->so_pc_stale = false;
	v->so_slots = vm->arch->watch_is_fault && ev->kind == KVMDBG_STOP_WATCH ? hits : 0;
	cover_sync(v);
	return 1;
}

/*
 * Classify an exit the fast path of kvmdbg_vcpu_handle_exit did not settle:
 * ev is initialised, ex read (with ev->pc) and decoded into dec.
 */
static __attribute__((noinline)) int handle_exit_slow(struct kvmdbg_vcpu *v,
						      struct kvmdbg_event *ev,
						      struct kvmdbg_exit ex,
						      const struct kvmdbg_decoded dec)
{
	struct kvmdbg_hwpoint hit = {0}; /* a copy: the set may change once unlocked */
	const struct kvmdbg_hwpoint *hit_point = NULL;
	struct kvmdbg_vm *vm = v->vm;
	bool ours_step, guest = false, cover_hit = false;
	uint64_t guest_dr6 = 0, cover_addr = 0;
	uint32_t guest_exc = 1, guest_hw = 0, own_hits = 0, restep_slots = 0;
	enum { SW_NONE, SW_OURS, SW_STALE, SW_GUEST } sw = SW_NONE;
	bool icebp = false, guest_gd = false, cached, locked;
	unsigned int icebp_skip = 0;
	int r;


	/* A breakpoint instruction: ours, ours but removed since this vCPU hit
	 * it (the guest's bytes are back: run again), or the guest's own.
	 * Decided before anything changes: it may need a read of guest memory,
	 * and a failed read must not inject a #BP the guest never raised. */
	if (dec.swbp) {
		bool ours_imm = dec.brk_imm == vm->arch->sw_imm;
		const struct kvmdbg_swbp *e;
		uint8_t cur[4];

		pthread_mutex_lock(&vm->lock);
		e = kvmdbg_swtab_find(&vm->sw, ex.pc);
		/* This vCPU's own step over our breakpoint here, with the
		 * guest's bytes back (lifted): the instruction that raised this
		 * is the guest's own, which was there before ours (its own INT3,
		 * or a BRK with our immediate). The stop at it was reported
		 * already: look at the bytes below like any that is not ours. */
		if (e && e->lifted && v->so == KVMDBG_SO_STEPPING && v->so_sw &&
		    v->so_sw_addr == ex.pc)
			e = NULL;
		if (!ours_imm || !vm->mem) {
			sw = SW_GUEST;
		} else if (e) {
			sw = SW_OURS;
		} else {
			r = vm->mem->read(vm->mem_ctx, ex.pc, cur, vm->arch->sw_len);
			if (r) {
				pthread_mutex_unlock(&vm->lock);
				return r < 0 ? r : -EIO;
			}
			sw = memcmp(cur, vm->arch->sw_insn, vm->arch->sw_len) ? SW_STALE : SW_GUEST;
		}
		pthread_mutex_unlock(&vm->lock);
	}

	/* A hardware match nothing applied explains: the guest's own slot, if
	 * one can be shown (reads, before anything changes). */
	if (dec.hw_unmatched) {
		r = guest_own_hits(v, &ex, &own_hits);
		if (r)
			return r;
	}
	/* x86 DR6.BD we did not ask for (no DR7.GD of ours applied): the
	 * guest's if its own DR7.GD is set (KVM reports the guest's GD to us
	 * while the host debugs). */
	if (dec.gd && !(v->applied_ctl & KVMDBG_CTL_GD)) {
		const struct kvmdbg_guest_regs *g;
		struct kvmdbg_guest_regs tmp;

		r = guest_regs_now(v, &tmp, &g);
		if (r)
			return r;
		guest_gd = g && (g->dr7 & X86_DR7_GD);
	}
	/* No cause at all: the guest's ICEBP, if the byte proves it. Where
	 * KVM stopped before it completed, the guest's trap comes after it:
	 * the PC moves now, the last thing here that can fail. */
	if (dec.causeless && !own_hits) {
		r = guest_icebp(v, &ex, &icebp, &icebp_skip);
		if (r)
			return r;
		if (icebp_skip) {
			r = vm->host->advance_pc(v->fd, icebp_skip);
			if (r)
				return r;
			ex.pc += icebp_skip;
			ev->pc = ex.pc;
		}
	}

	ours_step = dec.step && (v->applied_ctl & KVMDBG_CTL_STEP);
	if (v->so == KVMDBG_SO_STEPPING) {
		/* One iteration of a REP string instruction: the step trapped
		 * with the PC still on it. Keep stepping with the breakpoint
		 * out of the way until the instruction is done, as RF would. */
		if (ours_step && !v->user_step && !dec.hits && !dec.swbp && !dec.gd &&
		    ex.pc == v->so_pc && insn_unfinished(v, ex.pc))
			return 0;
		/* The step-over ends here. The guest's interrupt mask first:
		 * if that fails nothing has changed, and the VMM may retry. */
		r = irqs_give_back(v);
		if (r)
			return r;
		/* Any other debug exit ends the internal step: the instruction
		 * completed, or raised something first (classified below). A
		 * watchpoint that stops before the access (arm64) and fired at
		 * the PC stepped from has not let the instruction complete: what
		 * this step had disarmed stays disarmed for the next one, or
		 * the watchpoints on one access report each other in turn. */
		if (vm->arch->watch_is_fault && ex.pc == v->so_pc)
			restep_slots = v->so_slots;
		stepover_finish(v);
	}

	if (v->gd_stepping) {
		/* The guest's MOV DR ran natively; its registers were just
		 * re-read, so the next prepare merges the new state. */
		v->gd_stepping = false;
		v->dirty = true;
	} else if (dec.gd && (v->applied_ctl & KVMDBG_CTL_GD)) {
		/* Our DR7.GD: the guest is about to touch a debug register (the
		 * MOV has not run). Let it run alone against its own copy. */
		v->gd_stepping = true;
		v->dirty = true;
		return 0;
	}

	/* A plain step names no slot and no instruction: no need for the set.
	 * A hit of a slot needs the point that holds it: this vCPU's copy
	 * while the set is unchanged since, else the VM's under the lock. */
	cached = dec.hits && points_cached(v);
	locked = dec.swbp || (dec.hits && !cached);
	if (locked)
		pthread_mutex_lock(&vm->lock);
	/* Hardware slots: only hits of points that still exist count; a slot
	 * whose point was removed since this vCPU prepared is stale. */
	for (uint32_t left = dec.hits; left; left &= left - 1) {
		unsigned int pool = (unsigned int)__builtin_ctz(left) / 16;
		unsigned int slot = (unsigned int)__builtin_ctz(left) % 16;
		uint32_t bit = KVMDBG_HIT_BIT(pool, slot);
		const struct kvmdbg_hwpoint *p;

		if (v->applied_owner[pool][slot] & KVMDBG_OWNER_GUEST) {
			unsigned int n = v->applied_owner[pool][slot] & 0xff;

			/* Stale: the guest disabled or moved it since the
			 * merge (just re-read); the re-merge at the next
			 * prepare updates the hardware, run again. */
			if (memcmp(&v->guest.slot[pool][n], &v->applied.slot[pool][slot],
				   sizeof(v->guest.slot[pool][n])))
				continue;
			/* A guest slot merged into this hardware slot:
			 * re-injected under the guest's own number. */
			guest = true;
			guest_hw |= bit;
			guest_dr6 |= 1ull << n;
			continue;
		}
		/* The slot catching another vCPU's lifted software
		 * breakpoint: a stop at that breakpoint. */
		if (v->applied_owner[pool][slot] == KVMDBG_OWNER_SW) {
			cover_hit = true;
			cover_addr = v->applied.slot[pool][slot].start;
			continue;
		}
		if (!cached)
			p = point_by_id(vm, v->applied_owner[pool][slot]);
		else if (v->applied_owner[pool][slot] &&
			 v->slot_pt[pool][slot].id == v->applied_owner[pool][slot])
			p = &v->slot_pt[pool][slot];
		else
			p = NULL;
		if (!p)
			continue;
		ev->hits |= bit;
		/* Prefer an execution breakpoint over a watchpoint. */
		if (!hit_point || (p->type == KVMDBG_BREAK_HW &&
				   hit_point->type != KVMDBG_BREAK_HW)) {
			hit = *p;
			hit_point = &hit;
		}
	}

	/* Ours, unless removed in the meantime (then its bytes are back). */
	if (cover_hit && cover_addr == ex.pc && !locked) {
		pthread_mutex_lock(&vm->lock);
		locked = true;
	}
	if ((sw == SW_OURS || (cover_hit && cover_addr == ex.pc)) &&
	    kvmdbg_swtab_find(&vm->sw, ex.pc)) {
		ev->kind = KVMDBG_STOP_BREAK;
		ev->type = KVMDBG_BREAK_SW;
		ev->addr = ex.pc;
		ev->len = vm->arch->sw_len;
	} else if (sw == SW_GUEST) {
		guest = true;
		guest_exc = 3;
	}
	if (locked)
		pthread_mutex_unlock(&vm->lock);

	if (hit_point && ev->kind == KVMDBG_STOP_NONE) {
		ev->type = hit_point->type;
		ev->addr = hit_point->addr;
		ev->len = hit_point->len;
		if (hit_point->type == KVMDBG_BREAK_HW) {
			ev->kind = KVMDBG_STOP_BREAK;
		} else {
			ev->kind = KVMDBG_STOP_WATCH;
			ev->data_addr = vm->arch->reports_data_addr
						? dec.data_addr
						: lowest_slot_start(v, ev->hits & hit_point->slots);
			/* The point's type says it, or (access watchpoints) the
			 * hardware, where it reports the access (arm64 WnR). */
			ev->write = hit_point->type == KVMDBG_WATCH_WRITE  ? 1
				    : hit_point->type == KVMDBG_WATCH_READ ? 0
				    : vm->arch->reports_data_addr	   ? dec.write
									   : -1;
		}
	}

	/* A single-step trap we did not ask for is the guest's own (TF / SS). */
	if (dec.step && !ours_step) {
		guest = true;
		guest_dr6 |= X86_DR6_BS;
	}
	/* The guest's own slots, live in hardware, that match this exit (see
	 * guest_own_hits): x86 B bits under the guest's own numbers, arm64 the
	 * exception as it came. Nothing else unexplained is the guest's: a
	 * guest that never programmed its registers never gets one. */
	if (own_hits) {
		guest = true;
		for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++)
			if (own_hits & KVMDBG_HIT_BIT(KVMDBG_POOL_BP, n))
				guest_dr6 |= 1ull << n;
	}
	/* x86: ICEBP, a bus-lock trap (BLD: only the guest can enable bus-lock
	 * detection), a task switch to a TSS with the T bit: the guest's. */
	if (icebp)
		guest = true;
	if (dec.dr6_other & (X86_DR6_BLD | X86_DR6_BT)) {
		guest = true;
		guest_dr6 |= dec.dr6_other & (X86_DR6_BLD | X86_DR6_BT);
	}
	/* A KVM that keeps the guest's execution breakpoints live fires both
	 * when host and guest break on the same instruction, even in the same
	 * slot number: the guest gets its own. */
	if (overlay_on(v) && ev->kind == KVMDBG_STOP_BREAK && ev->type == KVMDBG_BREAK_HW &&
	    (vm->features & KVMDBG_FEAT_VERIFIED) && (vm->features & KVMDBG_FEAT_GUEST_BP_LIVE)) {
		for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++) {
			const struct kvmdbg_hwslot *g = &v->guest.slot[KVMDBG_POOL_BP][n];

			if (g->ctrl && g->start == ex.pc &&
			    vm->arch->slot_type(KVMDBG_POOL_BP, g->ctrl) == KVMDBG_BREAK_HW) {
				guest = true;
				guest_dr6 |= 1ull << n;
			}
		}
	}
	/* x86 DR6.BD: the guest touched its debug registers under its own
	 * DR7.GD. */
	if (guest_gd) {
		guest = true;
		guest_dr6 |= X86_DR6_BD;
	}
	/* Anything else that explains nothing (a hit of a point removed since
	 * this vCPU prepared, a #DB with no bit we know) is just run again. */

	if (ours_step && v->user_step) {
		ev->stepped = 1;
		if (ev->kind == KVMDBG_STOP_NONE)
			ev->kind = KVMDBG_STOP_STEP;
	}

	/* The guest's own slot fired in hardware (where the host's debugging
	 * takes every exception, whatever the guest masks) while the guest
	 * masks it: it never happened for the guest. Step past it with the
	 * slot out of the way, as natively the instruction just runs. */
	if (guest && guest_hw && !dec.swbp && !(dec.step && !ours_step) && vm->host->guest_masked) {
		bool masked = false;

		r = vm->host->guest_masked(v->fd, &v->guest_regs, &masked);
		if (r)
			return r;
		if (masked) {
			guest = false;
			if (!KVMDBG_STOP_IS_REPORTABLE(ev->kind)) {
				v->so = KVMDBG_SO_ARMED;
				v->so_pc = ex.pc;
				v->so_pc_stale = false;
				v->so_slots = guest_hw;
				cover_sync(v);
				return 0;
			}
		}
	}
	if (guest) {
		/* RTM: the #DB the guest gets came inside its transaction. */
		guest_dr6 |= dec.dr6_other & X86_DR6_RTM;
		queue_reinject(v, guest_exc, guest_dr6, &ex);
		if (ev->kind == KVMDBG_STOP_NONE)
			ev->kind = KVMDBG_STOP_GUEST;
	}

	if (KVMDBG_STOP_IS_REPORTABLE(ev->kind)) {
		/* Resuming from a reported stop never reports the same place
		 * again: the next prepare steps past whatever is armed here. */
		v->so = KVMDBG_SO_ARMED;
		v->so_pc = ex.pc;
		v->so_pc_stale = false;
		v->so_slots = guest_hw & ~(guest ? guest_hw : 0);
		if (vm->arch->watch_is_fault && ev->kind == KVMDBG_STOP_WATCH)
			v->so_slots |= ev->hits | restep_slots;
		cover_sync(v);
	}
	return 0;
}

KVMDBG_EXPORT int kvmdbg_vcpu_handle_exit(struct kvmdbg_vcpu *v, struct kvmdbg_event *ev)
{
	struct kvmdbg_decoded dec;
	struct kvmdbg_exit ex = {0};
	struct kvmdbg_vm *vm;
	int r;

	if (!v || !ev)
		return -EINVAL;
	memset(ev, 0, sizeof(*ev));
	ev->kind = KVMDBG_STOP_NONE;
	ev->write = -1;
	if (v->run->exit_reason != KVM_EXIT_DEBUG)
		return -EINVAL;
	vm = v->vm;

	r = vm->host->read_exit(v->fd, v->run, &ex);
	if (r)
		return r;
	/* Overlay: the guest's registers as they are now (its changes since
	 * the last look, and what its own slots match at this exit). */
	if (overlay_on(v)) {
		r = guest_refresh(v);
		if (r)
			return r;
	}
	vm->arch->decode(&v->applied, &ex, &dec);
	ev->pc = ex.pc;
	if (!dec.recognised)
		return 0;

	/* The user's single-step and nothing else: the common case, settled
	 * here without the set (what the rest below would do for it). */
	if (dec.step && !dec.hits && !dec.swbp && !dec.gd && !dec.hw_unmatched && !dec.dr6_other &&
	    (v->applied_ctl & KVMDBG_CTL_STEP) && v->user_step && v->so == KVMDBG_SO_NONE &&
	    !v->gd_stepping) {
		ev->stepped = 1;
		ev->kind = KVMDBG_STOP_STEP;
		v->so = KVMDBG_SO_ARMED;
		v->so_pc = ex.pc;
		v->so_pc_stale = false;
		v->so_slots = 0;
		cover_sync(v);
		return 0;
	}
	if (hits_fast(v, ev, &ex, &dec))
		return 0;
	return handle_exit_slow(v, ev, ex, dec);
}

KVMDBG_EXPORT void kvmdbg_vcpu_free(struct kvmdbg_vcpu *v)
{
	struct kvmdbg_vm *vm;
	struct kvmdbg_hwstate none;

	if (!v)
		return;
	vm = v->vm;
	if (v->so == KVMDBG_SO_STEPPING)
		stepover_finish(v);
	memset(&none, 0, sizeof(none));
	vm->host->set_guest_debug(v->fd, 0, &none);
	pthread_mutex_lock(&vm->lock);
	if (v->so_sw) {
		/* Putting it back failed: last try, then its lift is dropped. */
		struct kvmdbg_swbp *e = kvmdbg_swtab_find(&vm->sw, v->so_sw_addr);

		if (e && e->lifted) {
			if (e->lifted == 1)
				kvmdbg_mem_replace(vm, e->addr, vm->arch->sw_insn, e->orig,
						   vm->arch->sw_len);
			e->lifted--;
		}
		v->so_sw = false;
	}
	if (atomic_load(&v->cover_on)) {
		atomic_store(&v->cover_on, false);
		atomic_fetch_sub(&vm->nr_cover, 1);
		if (sw_table_has(vm, atomic_load_explicit(&v->cover_addr, memory_order_relaxed)))
			kvmdbg_bump_gen(vm);
	}
	for (struct kvmdbg_vcpu **pp = &vm->vcpus; *pp; pp = &(*pp)->next)
		if (*pp == v) {
			*pp = v->next;
			break;
		}
	vm->nr_vcpus--;
	pthread_mutex_unlock(&vm->lock);
	free(v);
}
