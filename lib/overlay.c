/* SPDX-License-Identifier: MIT */
/*
 * The guest's side of the debug registers: the overlay (its own slots
 * re-read and merged into the hardware slots the host leaves free), the
 * attribution of an exit to the guest's own registers or instructions, and
 * the queue of the exceptions given back to it.
 */
#include <errno.h>
#include <string.h>

#include "kvmdbg-int.h"

KVMDBG_EXPORT int kvmdbg_vcpu_refresh_guest(struct kvmdbg_vcpu *v)
{
	if (!v)
		return -EINVAL;
	if (!kvmdbg_overlay_on(v))
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
	if (!kvmdbg_overlay_on(v))
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
int kvmdbg_overlay_refresh(struct kvmdbg_vcpu *v)
{
	const struct kvmdbg_vm *vm = v->vm;
	struct kvmdbg_hwstate slots;
	unsigned int rejected;
	int r = vm->host->read_guest_regs(v->hot.host_ctx, v->fd, &v->guest_regs);

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
void kvmdbg_overlay_merge_locked(struct kvmdbg_vcpu *v, struct kvmdbg_hwstate *hw,
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

void kvmdbg_reinject_queue(struct kvmdbg_vcpu *v, const struct kvmdbg_decoded *dec,
			   const struct kvmdbg_guest_cause *cause, const struct kvmdbg_exit *ex)
{
	v->vm->arch->guest_exception(dec, cause, ex, &v->reinject);
	v->reinject.pending = true;
}

/*
 * The guest's own debug registers as they are at this exit: the overlay's
 * copy (re-read at every exit), else read now into *tmp. *out = NULL where
 * the glue cannot read them.
 */
int kvmdbg_guest_regs_now(struct kvmdbg_vcpu *v, struct kvmdbg_guest_regs *tmp,
			  const struct kvmdbg_guest_regs **out)
{
	int r;

	*out = NULL;
	if (kvmdbg_overlay_on(v)) {
		*out = &v->guest_regs;
		return 0;
	}
	if (!v->vm->host->read_guest_regs)
		return 0;
	r = v->vm->host->read_guest_regs(v->hot.host_ctx, v->fd, tmp);
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
int kvmdbg_guest_own_hits(struct kvmdbg_vcpu *v, const struct kvmdbg_exit *ex, uint32_t *hits)
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
	r = kvmdbg_guest_regs_now(v, &tmp, &regs);
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
int kvmdbg_guest_icebp(struct kvmdbg_vcpu *v, const struct kvmdbg_exit *ex, bool *icebp,
		       unsigned int *skip)
{
	struct kvmdbg_vm *vm = v->vm;
	const unsigned int len = vm->arch->icebp_len;
	bool on = vm->host->icebp_exit_on_insn && vm->host->icebp_exit_on_insn(v->hot.host_ctx);
	uint64_t at = on ? ex->pc : ex->pc - len;
	uint8_t b[1];
	int r;

	*icebp = false;
	*skip = 0;
	if (len != 1 || !vm->mem || (on && !vm->host->advance_pc) || (!on && ex->pc < len))
		return 0;
	kvmdbg_mutex_lock(&vm->lock);
	r = vm->mem->read(vm->mem_ctx, at, b, 1);
	kvmdbg_mutex_unlock(&vm->lock);
	/* Unreadable: nothing shows it is the guest's. */
	if (r || b[0] != vm->arch->icebp_insn)
		return 0;
	*icebp = true;
	*skip = on ? len : 0;
	return 0;
}
