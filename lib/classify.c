/* SPDX-License-Identifier: MIT */
/*
 * Classification of a KVM_EXIT_DEBUG against the state this vCPU really ran
 * with: whose stop it is (a point of the host's, a software breakpoint, a
 * step, the guest's own), what the event says, what the next prepare must
 * step past.
 */
#include <errno.h>
#include <string.h>

#include <linux/kvm.h>

#include "kvmdbg-int.h"

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

KVMDBG_EXPORT int kvmdbg_vcpu_handle_exit(struct kvmdbg_vcpu *v, struct kvmdbg_event *ev)
{
	struct kvmdbg_hwpoint hit = {0}; /* a copy: the set may change once unlocked */
	const struct kvmdbg_hwpoint *hit_point = NULL;
	struct kvmdbg_decoded dec;
	struct kvmdbg_exit ex = {0};
	struct kvmdbg_vm *vm;
	bool ours_step, guest = false, cover_hit = false;
	uint64_t guest_dr6 = 0, cover_addr = 0;
	uint32_t guest_exc = 1, guest_hw = 0, own_hits = 0, restep_slots = 0;
	enum { SW_NONE, SW_OURS, SW_STALE, SW_GUEST } sw = SW_NONE;
	bool icebp = false, guest_gd = false;
	unsigned int icebp_skip = 0;
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
	if (kvmdbg_overlay_on(v)) {
		r = kvmdbg_overlay_refresh(v);
		if (r)
			return r;
	}
	vm->arch->decode(&v->applied, &ex, &dec);
	ev->pc = ex.pc;
	if (!dec.recognised)
		return 0;

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
		if (e && e->lifted && v->so.state == KVMDBG_SO_STEPPING && v->so.sw &&
		    v->so.sw_addr == ex.pc)
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
		r = kvmdbg_guest_own_hits(v, &ex, &own_hits);
		if (r)
			return r;
	}
	/* x86 DR6.BD we did not ask for (no DR7.GD of ours applied): the
	 * guest's if its own DR7.GD is set (KVM reports the guest's GD to us
	 * while the host debugs). */
	if (dec.gd && !(v->applied_ctl & KVMDBG_CTL_GD)) {
		const struct kvmdbg_guest_regs *g;
		struct kvmdbg_guest_regs tmp;

		r = kvmdbg_guest_regs_now(v, &tmp, &g);
		if (r)
			return r;
		guest_gd = g && (g->dr7 & X86_DR7_GD);
	}
	/* No cause at all: the guest's ICEBP, if the byte proves it. Where
	 * KVM stopped before it completed, the guest's trap comes after it:
	 * the PC moves now, the last thing here that can fail. */
	if (dec.causeless && !own_hits) {
		r = kvmdbg_guest_icebp(v, &ex, &icebp, &icebp_skip);
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
	if (v->so.state == KVMDBG_SO_STEPPING) {
		/* One iteration of a REP string instruction: the step trapped
		 * with the PC still on it. Keep stepping with the breakpoint
		 * out of the way until the instruction is done, as RF would. */
		if (ours_step && !v->user_step && !dec.hits && !dec.swbp && !dec.gd &&
		    ex.pc == v->so.pc && kvmdbg_stepover_insn_unfinished(v, ex.pc))
			return 0;
		/* The step-over ends here. The guest's interrupt mask first:
		 * if that fails nothing has changed, and the VMM may retry. */
		r = kvmdbg_stepover_irqs_give_back(v);
		if (r)
			return r;
		/* Any other debug exit ends the internal step: the instruction
		 * completed, or raised something first (classified below). A
		 * watchpoint that stops before the access (arm64) and fired at
		 * the PC stepped from has not let the instruction complete: what
		 * this step had disarmed stays disarmed for the next one, or
		 * the watchpoints on one access report each other in turn. */
		if (vm->arch->watch_is_fault && ex.pc == v->so.pc)
			restep_slots = v->so.slots;
		kvmdbg_stepover_finish(v);
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

	/* A plain step names no slot and no instruction: no need for the set. */
	if (dec.hits || dec.swbp)
		pthread_mutex_lock(&vm->lock);
	/* Hardware slots: only hits of points that still exist count; a slot
	 * whose point was removed since this vCPU prepared is stale. */
	for (unsigned int pool = 0; dec.hits && pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int slot = 0; slot < KVMDBG_MAX_SLOTS; slot++) {
			uint32_t bit = KVMDBG_HIT_BIT(pool, slot);
			const struct kvmdbg_hwpoint *p;

			if (!(dec.hits & bit))
				continue;
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
			p = kvmdbg_point_by_id(vm, v->applied_owner[pool][slot]);
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
	if (dec.hits || dec.swbp)
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
	if (kvmdbg_overlay_on(v) && ev->kind == KVMDBG_STOP_BREAK && ev->type == KVMDBG_BREAK_HW &&
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
				v->so.state = KVMDBG_SO_ARMED;
				v->so.pc = ex.pc;
				v->so.pc_stale = false;
				v->so.slots = guest_hw;
				kvmdbg_cover_sync(v);
				return 0;
			}
		}
	}
	if (guest) {
		/* RTM: the #DB the guest gets came inside its transaction. */
		guest_dr6 |= dec.dr6_other & X86_DR6_RTM;
		kvmdbg_reinject_queue(v, guest_exc, guest_dr6, &ex);
		if (ev->kind == KVMDBG_STOP_NONE)
			ev->kind = KVMDBG_STOP_GUEST;
	}

	if (KVMDBG_STOP_IS_REPORTABLE(ev->kind)) {
		/* Resuming from a reported stop never reports the same place
		 * again: the next prepare steps past whatever is armed here. */
		v->so.state = KVMDBG_SO_ARMED;
		v->so.pc = ex.pc;
		v->so.pc_stale = false;
		v->so.slots = guest_hw & ~(guest ? guest_hw : 0);
		if (vm->arch->watch_is_fault && ev->kind == KVMDBG_STOP_WATCH)
			v->so.slots |= ev->hits | restep_slots;
		kvmdbg_cover_sync(v);
	}
	return 0;
}
