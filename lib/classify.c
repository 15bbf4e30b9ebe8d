/* SPDX-License-Identifier: MIT */
/*
 * Classification of a KVM_EXIT_DEBUG against the state this vCPU really ran
 * with: whose stop it is (a point of the host's, a software breakpoint, a
 * step, the guest's own), what the event says, what the next prepare must
 * step past.
 *
 * kvmdbg_vcpu_handle_exit() is a sequence of phases over one struct
 * kvmdbg_classify. The first ones only read (KVM, the guest's registers and
 * memory), so a failure there changes nothing; the ones named kvmdbg_classify_*
 * call no host op and are unit-tested alone (tests/unit/test-unit-classify.c).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <linux/kvm.h>

#include "kvmdbg-int.h"

/* Overlay: the guest's registers as they are now (its changes since the
 * last look, and what its own slots match at this exit). */
static inline __attribute__((always_inline)) int exit_overlay(struct kvmdbg_vcpu *v)
{
	int r = kvmdbg_overlay_refresh(v);

	if (r)
		return r;
	/* Re-read: the slot that waited for it goes. */
	if (v->guest_resume) {
		v->guest_resume = false;
		v->dirty = true;
	}
	return 0;
}

/* Phase: read the exit, the guest's registers (overlay), decode. */
static inline __attribute__((always_inline)) int exit_read(struct kvmdbg_vcpu *v,
							   struct kvmdbg_exit *ex,
							   struct kvmdbg_decoded *dec, bool overlay)
{
	bool step_pc;
	int r;

	/* The exit all in kvm_run and the host's own decoder (x86): both
	 * inline after this one test (issue 17: under nested TCG a call
	 * through a pointer and its return each cost a lookup of the next
	 * translated block after every exit). */
	if (KVMDBG_EXIT_INLINE && v->hot.exit_inline) {
		kvmdbg_exit_read_inline(v->run, ex);
		r = overlay ? exit_overlay(v) : 0;
		if (!r)
			kvmdbg_exit_decode_inline(v->applied_on, ex, dec);
		return r;
	}
	/* The step-over's own step, not the user's: a single-step exit then
	 * is ours (nothing of the guest's, overlay or not), never reported,
	 * and its PC is compared with nothing, so arm64 need not ask KVM for
	 * it (issue 17). */
	step_pc = v->so.state != KVMDBG_SO_STEPPING || v->user_step ||
		  !(v->applied_ctl & KVMDBG_CTL_STEP) || v->guest_step;
	r = kvmdbg_read_exit(v->hot.read_exit, v->hot.host_ctx, v->fd, v->run, step_pc, ex);
	if (r)
		return r;
	if (overlay) {
		r = exit_overlay(v);
		if (r)
			return r;
	}
	/* The enabled slots as applied_on says (set_guest_debug's mask). */
	kvmdbg_decode_exit(v->hot.decode, &v->applied, v->applied_on, ex, dec);
	return 0;
}

/* Every field of the event (not a memset and stores over it: the fast
 * paths store each once; issue 17). The empty asm keeps neighbours that
 * are both constant apart: merged, GCC 12 loads the pair from .rodata, one
 * more data page per exit (bench/count/count --pages). */
static inline __attribute__((always_inline)) void
event_set(struct kvmdbg_event *ev, enum kvmdbg_stop kind, enum kvmdbg_type type, uint64_t pc,
	  uint64_t addr, uint64_t len, uint64_t data_addr, uint32_t hits, int stepped, int write)
{
	ev->kind = kind;
	__asm__ volatile("" ::: "memory");
	ev->type = type;
	ev->pc = pc;
	ev->addr = addr;
	ev->len = len;
	ev->data_addr = data_addr;
	ev->hits = hits;
	__asm__ volatile("" ::: "memory");
	ev->stepped = stepped;
	__asm__ volatile("" ::: "memory");
	ev->write = write;
}

/* The event of an exit that stops nothing (yet), at pc. */
static inline __attribute__((always_inline)) void event_none(struct kvmdbg_event *ev, uint64_t pc)
{
	event_set(ev, KVMDBG_STOP_NONE, 0, pc, 0, 0, 0, 0, 0, -1);
}

/*
 * Phase: a breakpoint instruction is ours, ours but removed since this vCPU
 * hit it (the guest's bytes are back: run again), or the guest's own.
 * Decided before anything changes: it may need a read of guest memory, and
 * a failed read must not inject a breakpoint exception the guest never
 * raised.
 */
KVMDBG_WARM int kvmdbg_classify_swbp(struct kvmdbg_vcpu *v, struct kvmdbg_classify *c)
{
	struct kvmdbg_vm *vm = v->vm;
	const struct kvmdbg_swbp *e;
	uint8_t cur[4];
	int r;

	if (!c->dec.swbp)
		return 0;
	kvmdbg_mutex_lock(&vm->lock);
	e = kvmdbg_swtab_find(&vm->sw, c->ex.pc);
	/* This vCPU's own step over our breakpoint here, with the guest's
	 * bytes back (lifted): the instruction that raised this is the
	 * guest's own, which was there before ours (its own INT3, or a BRK
	 * with our immediate). The stop at it was reported already: look at
	 * the bytes below like any that is not ours. */
	if (e && e->lifted && v->so.state == KVMDBG_SO_STEPPING && v->so.sw &&
	    v->so.sw_addr == c->ex.pc)
		e = NULL;
	if (!c->dec.swbp_our_kind || !vm->mem) {
		c->sw = KVMDBG_SW_GUEST;
	} else if (e) {
		c->sw = KVMDBG_SW_OURS;
	} else {
		r = vm->mem->read(vm->mem_ctx, c->ex.pc, cur, vm->arch->sw_len);
		if (r) {
			kvmdbg_mutex_unlock(&vm->lock);
			return r < 0 ? r : -EIO;
		}
		c->sw = memcmp(cur, vm->arch->sw_insn, vm->arch->sw_len) ? KVMDBG_SW_STALE
									 : KVMDBG_SW_GUEST;
	}
	kvmdbg_mutex_unlock(&vm->lock);
	return 0;
}

/*
 * Phase: what of the guest's own registers and instructions explains this
 * exit, read before anything changes. The ICEBP's PC move is the last thing
 * here that can fail.
 */
static KVMDBG_WARM int guest_reads(struct kvmdbg_vcpu *v, struct kvmdbg_classify *c, struct kvmdbg_event *ev)
{
	struct kvmdbg_vm *vm = v->vm;
	unsigned int icebp_skip = 0;
	int r;

	/* A hardware match nothing applied explains: the guest's own slot, if
	 * one can be shown. */
	if (c->dec.hw_unmatched) {
		r = kvmdbg_guest_own_hits(v, &c->ex, &c->own_hits);
		if (r)
			return r;
	}
	/* A debug-register access trap we did not ask for (no x86 DR7.GD of
	 * ours applied): the guest's if its own registers ask for it (KVM
	 * reports the guest's GD to us while the host debugs). */
	if (c->dec.dbg_access && !(v->applied_ctl & KVMDBG_CTL_GD)) {
		const struct kvmdbg_guest_regs *g;
		struct kvmdbg_guest_regs tmp;

		r = kvmdbg_guest_regs_now(v, &tmp, &g);
		if (r)
			return r;
		c->guest_dbg_access = g && vm->arch->guest_traps_dbg_access &&
				      vm->arch->guest_traps_dbg_access(g);
	}
	/* No cause at all: the guest's ICEBP, if the byte proves it. Where
	 * KVM stopped before it completed, the guest's trap comes after it:
	 * the PC moves now. */
	if (c->dec.causeless && !c->own_hits) {
		r = kvmdbg_guest_icebp(v, &c->ex, &c->icebp, &icebp_skip);
		if (r)
			return r;
		if (icebp_skip) {
			r = vm->host->advance_pc(v->hot.host_ctx, v->fd, icebp_skip);
			if (r)
				return r;
			c->ex.pc += icebp_skip;
			ev->pc = c->ex.pc;
		}
	}
	return 0;
}

/*
 * Phase: the end of an internal step past a breakpoint. Returns 1 when the
 * step goes on (a REP iteration), 0, or -errno with nothing changed.
 */
KVMDBG_WARM int kvmdbg_classify_stepover_end(struct kvmdbg_vcpu *v, struct kvmdbg_classify *c)
{
	const struct kvmdbg_decoded *dec = &c->dec;
	int r;

	c->ours_step = dec->step && (v->applied_ctl & KVMDBG_CTL_STEP);
	if (v->so.state != KVMDBG_SO_STEPPING)
		return 0;
	/* One iteration of a REP string instruction: the step trapped with
	 * the PC still on it. Keep stepping with the breakpoint out of the way
	 * until the instruction is done, as RF would. */
	if (c->ours_step && !v->user_step && !dec->hits && !dec->swbp && !dec->dbg_access &&
	    !c->ex.pc_unread && c->ex.pc == v->so.pc &&
	    kvmdbg_stepover_insn_unfinished(v, c->ex.pc))
		return 1;
	/* The step-over ends here. The guest's interrupt mask first: if that
	 * fails nothing has changed, and the VMM may retry. */
	r = kvmdbg_stepover_irqs_give_back(v);
	if (r)
		return r;
	/* Any other debug exit ends the internal step: the instruction
	 * completed, or raised something first (classified below). A
	 * watchpoint that stops before the access (arm64) and fired at the PC
	 * stepped from has not let the instruction complete: what this step
	 * had disarmed stays disarmed for the next one, or the watchpoints on
	 * one access report each other in turn. */
	if (v->vm->arch->watch_is_fault && !c->ex.pc_unread && c->ex.pc == v->so.pc) {
		c->restep_slots = v->so.slots;
		KVMDBG_FOR_EACH_SLOT(v->so.slots, pool, slot)
			c->restep_owner[pool][slot] = v->so.owner[pool][slot];
	}
	/* The step ran the guest's own step (guest_step_start): the guest
	 * gets its step exception if the instruction completed, as the CPU
	 * would have given it. Anything else that stopped the step first is
	 * classified below, and the guest's step is not taken. */
	if (v->guest_step) {
		v->guest_step = false;
		if (c->ours_step && !dec->hits && !dec->swbp && !dec->dbg_access &&
		    !dec->hw_unmatched && !dec->guest_only && !c->ex.pc_unread) {
			c->cause.step = true;
			/* Its handler re-arms what it disarmed for the step
			 * (Linux: the perf slot; a debugger its ptrace ones)
			 * without an exit to us: an execution slot on the
			 * instruction the exception returns to makes one, and
			 * the re-read there merges them before that runs. */
			v->guest_resume = true;
			v->guest_resume_pc = c->ex.pc;
		}
	}
	kvmdbg_stepover_finish(v);
	return 0;
}

/*
 * Phase: the overlay's debug-register handshake (x86 DR7.GD). Returns true
 * when this exit was ours and is done with.
 */
KVMDBG_WARM bool kvmdbg_classify_dbg_access(struct kvmdbg_vcpu *v, const struct kvmdbg_classify *c)
{
	if (v->gd_stepping) {
		/* The guest's MOV DR ran natively; its registers were just
		 * re-read, so the next prepare merges the new state. */
		v->gd_stepping = false;
		v->dirty = true;
		return false;
	}
	if (c->dec.dbg_access && (v->applied_ctl & KVMDBG_CTL_GD)) {
		/* Our DR7.GD: the guest is about to touch a debug register (the
		 * MOV has not run). Let it run alone against its own copy. */
		v->gd_stepping = true;
		v->dirty = true;
		return true;
	}
	return false;
}

/* One hardware slot that fired, by who owns it in the state this vCPU ran.
 * The point that holds it comes from the vCPU's copy of the points where
 * cached (the set unchanged since), else from the VM's under the lock. */
static KVMDBG_WARM void slot_hit(struct kvmdbg_vcpu *v, struct kvmdbg_classify *c, struct kvmdbg_event *ev,
		     unsigned int pool, unsigned int slot, bool cached)
{
	uint32_t bit = KVMDBG_HIT_BIT(pool, slot), owner = v->applied_owner[pool][slot];
	const struct kvmdbg_hwpoint *p;

	if (owner & KVMDBG_OWNER_GUEST) {
		unsigned int n = owner & 0xff;

		/* Stale: the guest disabled or moved it since the merge (just
		 * re-read); the re-merge at the next prepare updates the
		 * hardware, run again. */
		if (memcmp(&v->guest.slot[pool][n], &v->applied.slot[pool][slot],
			   sizeof(v->guest.slot[pool][n])))
			return;
		/* A guest slot merged into this hardware slot: re-injected
		 * under the guest's own number. */
		c->guest = true;
		c->guest_hw |= bit;
		c->cause.slots |= KVMDBG_HIT_BIT(pool, n);
		return;
	}
	/* The slot catching another vCPU's lifted software breakpoint: a stop
	 * at that breakpoint. */
	if (owner == KVMDBG_OWNER_SW) {
		c->cover_hit = true;
		c->cover_addr = v->applied.slot[pool][slot].start;
		return;
	}
	/* Only hits of points that still exist count; a slot whose point was
	 * removed since this vCPU prepared is stale. */
	p = cached ? kvmdbg_cached_point(v, pool, slot, owner) : kvmdbg_point_by_id(v->vm, owner);
	if (!p)
		return;
	ev->hits |= bit;
	/* Prefer an execution breakpoint over a watchpoint. */
	if (!c->have_hit || (p->type == KVMDBG_BREAK_HW && c->hit.type != KVMDBG_BREAK_HW)) {
		c->hit = *p;
		c->have_hit = true;
	}
}

/* Phase: the slots that fired and the breakpoint instruction, against the
 * breakpoint set as it is now. */
KVMDBG_WARM void kvmdbg_classify_hits(struct kvmdbg_vcpu *v, struct kvmdbg_classify *c,
			  struct kvmdbg_event *ev)
{
	struct kvmdbg_vm *vm = v->vm;
	uint64_t pc = c->ex.pc;
	bool cached, locked;

	/* A plain step names no slot and no instruction: no need for the set.
	 * A hit of a slot needs the point that holds it: this vCPU's copy
	 * while the set is unchanged since, else the VM's under the lock. */
	if (!c->dec.hits && !c->dec.swbp)
		return;
	cached = c->dec.hits && kvmdbg_points_cached(v);
	locked = c->dec.hits && !cached;
	if (locked)
		kvmdbg_mutex_lock(&vm->lock);
	/* The hit slots by their bits, not all of them. */
	KVMDBG_FOR_EACH_SLOT(c->dec.hits, pool, slot)
		slot_hit(v, c, ev, pool, slot, cached);
	/* The software breakpoint table needs the lock. */
	if (c->cover_hit && c->cover_addr == pc && !locked) {
		kvmdbg_mutex_lock(&vm->lock);
		locked = true;
	}
	/* Ours: kvmdbg_classify_swbp found it in the table, under the lock
	 * (issue 17: not looked up again; a removal since is one made after
	 * this exit was read, as for the host's points of hits_fast). A
	 * cover's hit: ours unless removed in the meantime (then its bytes
	 * are back). */
	if (c->sw == KVMDBG_SW_OURS ||
	    (c->cover_hit && c->cover_addr == pc && kvmdbg_swtab_find(&vm->sw, pc))) {
		ev->kind = KVMDBG_STOP_BREAK;
		ev->type = KVMDBG_BREAK_SW;
		ev->addr = pc;
		ev->len = vm->arch->sw_len;
	} else if (c->sw == KVMDBG_SW_GUEST) {
		c->guest = true;
		c->cause.swbp = true;
	}
	if (locked)
		kvmdbg_mutex_unlock(&vm->lock);
}

/* Start of the lowest slot in mask, as this vCPU ran it (x86 data_addr). */
static KVMDBG_HOT uint64_t lowest_slot_start(const struct kvmdbg_vcpu *v, uint32_t mask)
{
	KVMDBG_FOR_EACH_SLOT(mask, pool, slot)
		return v->applied.slot[pool][slot].start;
	return 0;
}

/* Phase: the event of the host's point that fired, and of the user's step. */
KVMDBG_WARM void kvmdbg_classify_event(const struct kvmdbg_vcpu *v, const struct kvmdbg_classify *c,
			   struct kvmdbg_event *ev)
{
	const struct kvmdbg_arch_ops *a = v->vm->arch;
	const struct kvmdbg_hwpoint *p = &c->hit;

	if (c->have_hit && ev->kind == KVMDBG_STOP_NONE) {
		ev->type = p->type;
		ev->addr = p->addr;
		ev->len = p->len;
		if (p->type == KVMDBG_BREAK_HW) {
			ev->kind = KVMDBG_STOP_BREAK;
		} else {
			ev->kind = KVMDBG_STOP_WATCH;
			ev->data_addr = a->reports_data_addr
						? c->dec.data_addr
						: lowest_slot_start(v, ev->hits & p->slots);
			/* The point's type says it, or (access watchpoints) the
			 * hardware, where it reports the access (arm64 WnR). */
			ev->write = p->type == KVMDBG_WATCH_WRITE  ? 1
				    : p->type == KVMDBG_WATCH_READ ? 0
				    : a->reports_data_addr	   ? c->dec.write
								   : -1;
		}
	}
	if (c->ours_step && v->user_step) {
		ev->stepped = 1;
		if (ev->kind == KVMDBG_STOP_NONE)
			ev->kind = KVMDBG_STOP_STEP;
	}
}

/*
 * Phase: what else of this exit is the guest's own. Anything that explains
 * nothing (a hit of a point removed since this vCPU prepared, a debug
 * exception with no cause we know) is just run again.
 */
KVMDBG_WARM void kvmdbg_classify_guest(const struct kvmdbg_vcpu *v, struct kvmdbg_classify *c,
			   const struct kvmdbg_event *ev)
{
	const struct kvmdbg_vm *vm = v->vm;
	const uint64_t live_feat = KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_GUEST_BP_LIVE;

	/* A single-step trap we did not ask for is the guest's own (TF / SS). */
	if (c->dec.step && !c->ours_step)
		c->cause.step = true;
	/* The guest's own slots, live in hardware, that match this exit (see
	 * kvmdbg_guest_own_hits). Nothing else unexplained is the guest's: a
	 * guest that never programmed its registers never gets one. */
	c->cause.slots |= c->own_hits;
	/* A KVM that keeps the guest's execution breakpoints live fires both
	 * when host and guest break on the same instruction, even in the same
	 * slot number: the guest gets its own. */
	if (kvmdbg_overlay_on(v) && ev->kind == KVMDBG_STOP_BREAK && ev->type == KVMDBG_BREAK_HW &&
	    (vm->features & live_feat) == live_feat) {
		for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++) {
			const struct kvmdbg_hwslot *g = &v->guest.slot[KVMDBG_POOL_BP][n];

			if (g->ctrl && g->start == c->ex.pc &&
			    vm->arch->slot_type(KVMDBG_POOL_BP, g->ctrl) == KVMDBG_BREAK_HW)
				c->cause.slots |= KVMDBG_HIT_BIT(KVMDBG_POOL_BP, n);
		}
	}
	/* The guest touched its debug registers under its own trap. */
	c->cause.dbg_access = c->guest_dbg_access;
	/* x86: ICEBP, and causes only the guest sets up (BT, BLD). */
	if (c->cause.step || c->own_hits || c->cause.slots || c->icebp || c->dec.guest_only ||
	    c->cause.dbg_access)
		c->guest = true;
}

/*
 * Phase: the guest's own slot fired in hardware (where the host's debugging
 * takes every exception, whatever the guest masks) while the guest masks
 * it: it never happened for the guest. Returns 1 when the exit is done with
 * (step past it with the slot out of the way, as natively the instruction
 * just runs), 0, or -errno.
 */
static KVMDBG_WARM int guest_masked(struct kvmdbg_vcpu *v, struct kvmdbg_classify *c,
			const struct kvmdbg_event *ev)
{
	const struct kvmdbg_host_ops *h = v->vm->host;
	bool masked = false;
	int r;

	if (!c->guest || !c->guest_hw || c->dec.swbp || c->cause.step || !h->guest_masked)
		return 0;
	r = h->guest_masked(v->hot.host_ctx, v->fd, &v->guest_regs, &masked);
	if (r || !masked)
		return r;
	c->guest = false;
	if (KVMDBG_STOP_IS_REPORTABLE(ev->kind))
		return 0;
	kvmdbg_stepover_arm(v, c->ex.pc, c->guest_hw, v->applied_owner);
	return 1;
}

/*
 * Phase (overlay): an exit that is nobody's, at an instruction the guest has
 * armed its own software step for, which KVM does not run while the host
 * debugs this vCPU (arm64 MDSCR_EL1.SS; host op guest_step_armed). The
 * step-over steps that instruction (interrupts masked, as its own steps),
 * and its end gives the guest the step exception (stepover_end). Returns 1
 * when armed, 0, or -errno with nothing changed.
 */
static KVMDBG_WARM int guest_step_start(struct kvmdbg_vcpu *v, const struct kvmdbg_classify *c,
			    const struct kvmdbg_event *ev)
{
	const struct kvmdbg_host_ops *h = v->vm->host;
	bool armed = false;
	int r;

	if (!h->guest_step_armed || !kvmdbg_overlay_on(v) || c->guest || c->dec.swbp ||
	    KVMDBG_STOP_IS_REPORTABLE(ev->kind) || v->user_step || c->ex.pc_unread ||
	    v->so.state != KVMDBG_SO_NONE)
		return 0;
	r = h->guest_step_armed(v->hot.host_ctx, v->fd, &v->guest_regs, c->ex.pc, &armed);
	if (r || !armed)
		return r;
	v->guest_step = true;
	kvmdbg_stepover_arm(v, c->ex.pc, 0, NULL);
	return 1;
}

/* Phase: give the guest its own, and arm the step past a reported stop. */
KVMDBG_WARM void kvmdbg_classify_finish(struct kvmdbg_vcpu *v, const struct kvmdbg_classify *c,
			    struct kvmdbg_event *ev)
{
	uint32_t slots, fired, owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS];

	if (c->guest) {
		kvmdbg_reinject_queue(v, &c->dec, &c->cause, &c->ex);
		if (ev->kind == KVMDBG_STOP_NONE)
			ev->kind = KVMDBG_STOP_GUEST;
	}
	if (!KVMDBG_STOP_IS_REPORTABLE(ev->kind))
		return;
	/* Resuming from a reported stop never reports the same place again:
	 * the next prepare steps past whatever is armed here. */
	slots = c->guest ? 0 : c->guest_hw;
	if (v->vm->arch->watch_is_fault && ev->kind == KVMDBG_STOP_WATCH)
		slots |= ev->hits | c->restep_slots;
	/* Each for its owner: a slot that fired, the one it ran with; one the
	 * ended step kept out, the one it was kept out for. */
	fired = ev->hits | (c->guest ? 0 : c->guest_hw);
	KVMDBG_FOR_EACH_SLOT(slots, pool, slot)
		owner[pool][slot] = (c->restep_slots & ~fired & KVMDBG_HIT_BIT(pool, slot))
					    ? c->restep_owner[pool][slot]
					    : v->applied_owner[pool][slot];
	kvmdbg_stepover_arm(v, c->ex.pc, slots, owner);
}

/*
 * Hits of the host's own points and nothing else (no step, no instruction,
 * no guest slot or cover slot, no overlay, no step-over running), settled
 * from this vCPU's copy of the points while the set is unchanged, without
 * the lock: what the phases below would do for them. 0: not this case,
 * nothing changed.
 */
_Static_assert(KVMDBG_HIT_BIT(1, 0) == 1u << KVMDBG_MAX_SLOTS,
	       "hit bit n is pool n / 16, slot n % 16");
static inline __attribute__((always_inline)) int hits_fast(struct kvmdbg_vcpu *v,
							   struct kvmdbg_event *ev,
							   const struct kvmdbg_exit *ex,
							   const struct kvmdbg_decoded *dec)
{
	const struct kvmdbg_hwpoint *hp = NULL;
	uint32_t hits = 0;
	bool exec_hit = false;

	/* The caller saw no overlay and no cause besides hits (dec->other). */
	if (v->so.state != KVMDBG_SO_NONE || v->gd_stepping || !kvmdbg_points_cached(v))
		return 0;
	/* By the bit's number n, pool n / 16 and slot n % 16 (KVMDBG_HIT_BIT):
	 * element n of either array, row after row. */
	const uint32_t *owners = (const uint32_t *)(const void *)v->applied_owner;
	const struct kvmdbg_hwpoint *pts = (const struct kvmdbg_hwpoint *)(const void *)v->slot_pt;

	for (uint32_t left = dec->hits; left; left &= left - 1) {
		unsigned int n = (unsigned int)__builtin_ctz(left);
		uint32_t owner = owners[n];
		const struct kvmdbg_hwpoint *p = &pts[n];

		if (owner >= KVMDBG_OWNER_SW)
			return 0; /* a guest's slot or a cover: the whole story */
		/* Stale: its point was removed since this vCPU prepared
		 * (kvmdbg_cached_point). */
		if (!owner || p->id != owner)
			continue;
		hits |= 1u << n;
		if (!hp || (p->type == KVMDBG_BREAK_HW && hp->type != KVMDBG_BREAK_HW))
			hp = p;
	}
	if (!hp) {
		event_none(ev, ex->pc);
		return 1; /* nothing that still exists: run again */
	}
	if (hp->type == KVMDBG_BREAK_HW) {
		event_set(ev, KVMDBG_STOP_BREAK, hp->type, ex->pc, hp->addr, hp->len, 0, hits, 0,
			  -1);
		exec_hit = hp->addr == ex->pc;
	} else {
		event_set(ev, KVMDBG_STOP_WATCH, hp->type, ex->pc, hp->addr, hp->len,
			  v->hot.reports_data_addr ? dec->data_addr
						   : lowest_slot_start(v, hits & hp->slots),
			  hits, 0,
			  hp->type == KVMDBG_WATCH_WRITE  ? 1
			  : hp->type == KVMDBG_WATCH_READ ? 0
			  : v->hot.reports_data_addr      ? dec->write
							  : -1);
	}
	/* exec_hit: resume_fast then needs no lookup of the execution
	 * breakpoints at the PC. */
	kvmdbg_stepover_arm_hit(v, ex->pc,
				v->hot.watch_is_fault && hp->type != KVMDBG_BREAK_HW ? hits : 0,
				v->applied_owner, exec_hit);
	return 1;
}

/*
 * A breakpoint instruction of our kind and nothing else (decoded other ==
 * KVMDBG_DEC_SWBP_OURS, no hit), out of any step-over (no lifted one of
 * this vCPU's to tell apart) and of the overlay's gd_stepping: where the
 * table holds the PC, ours (issue 17: what kvmdbg_classify_swbp and the
 * phases after it find for it, in one critical section of one lookup; the
 * overlay's phases find nothing of the guest's in a stop at our
 * breakpoint, and the table holds entries only with the guest's memory
 * callbacks). 0: not this case (not in the table: the bytes decide,
 * handle_exit_slow), nothing changed.
 */
_Static_assert(offsetof(struct kvmdbg_decoded, step) == offsetof(struct kvmdbg_decoded, other) &&
		       offsetof(struct kvmdbg_decoded, swbp) ==
			       offsetof(struct kvmdbg_decoded, other) + 1 &&
		       offsetof(struct kvmdbg_decoded, swbp_our_kind) ==
			       offsetof(struct kvmdbg_decoded, other) + 2,
	       "KVMDBG_DEC_STEP_ONLY and KVMDBG_DEC_SWBP_OURS: the bytes of the word");
static KVMDBG_STEP_SW KVMDBG_REGION_START __attribute__((noinline)) int
swbp_hit_fast(struct kvmdbg_vcpu *v, struct kvmdbg_event *ev, uint64_t pc)
{
	struct kvmdbg_vm *vm = v->vm;
	bool ours;

	if (v->so.state != KVMDBG_SO_NONE || v->gd_stepping)
		return 0;
	/* The same breakpoint again with the set unchanged (a breakpoint in a
	 * loop): ours without the lock (v->sw_hit_addr). */
	if (pc == v->sw_hit_addr &&
	    atomic_load_explicit(&vm->gen, memory_order_acquire) == v->sw_hit_gen) {
		ours = true;
	} else {
		kvmdbg_mutex_lock(&vm->lock);
		ours = kvmdbg_swtab_find(&vm->sw, pc) != NULL;
		if (ours) {
			v->sw_hit_addr = pc;
			v->sw_hit_gen = atomic_load_explicit(&vm->gen, memory_order_relaxed);
		}
		kvmdbg_mutex_unlock(&vm->lock);
	}
	if (!ours)
		return 0;
	event_set(ev, KVMDBG_STOP_BREAK, KVMDBG_BREAK_SW, pc, pc, vm->hot.sw_len, 0, 0, 0, -1);
	/* Resuming steps past it (kvmdbg_classify_finish). */
	kvmdbg_stepover_arm(v, pc, 0, NULL);
	return 1;
}

/*
 * The end of the step-over's own step and nothing else (issue 17): a plain
 * step trap of the step this vCPU asked KVM for, not the user's, no guest's
 * step in it, the overlay off (nothing of the guest's can be in it), and a
 * PC that is not the one stepped from (x86: no REP iteration to go on with;
 * arm64: no watchpoint that stopped the instruction before its access; a
 * PC unread is neither). Every phase of handle_exit_slow but
 * kvmdbg_classify_stepover_end finds nothing in such an exit: it is
 * settled without the classification's state, as that phase does
 * (kvmdbg_stepover_end_fast).
 * "A step and nothing else" is the decoded word's one test, as for the
 * user's step in kvmdbg_vcpu_handle_exit. Implied, so not tested: the step
 * applied (STEPPING only ever runs with
 * KVMDBG_CTL_STEP: every state applied while it holds has it, and a
 * failed apply goes back to ARMED), no guest's step nor gd_stepping (the
 * overlay's).
 */
static inline __attribute__((always_inline)) bool stepover_end_plain(const struct kvmdbg_vcpu *v,
								     const struct kvmdbg_exit *ex,
								     const struct kvmdbg_decoded *dec)
{
	return v->so.state == KVMDBG_SO_STEPPING && dec->other == KVMDBG_DEC_STEP_ONLY &&
	       !dec->hits && !v->user_step && !kvmdbg_overlay_on(v) &&
	       (ex->pc_unread || ex->pc != v->so.pc);
}

/*
 * Classify an exit the fast paths of kvmdbg_vcpu_handle_exit did not
 * settle: ev is initialised, ex read (with ev->pc) and decoded into dec.
 * The phases in order over one struct kvmdbg_classify. Out of line, so
 * that kvmdbg_vcpu_handle_exit stays in its page.
 */
static KVMDBG_STEP_REST __attribute__((noinline)) int handle_exit_slow(struct kvmdbg_vcpu *v,
							   struct kvmdbg_event *ev,
							   const struct kvmdbg_exit *ex,
							   const struct kvmdbg_decoded *dec)
{
	struct kvmdbg_classify c;
	int r;

	c = (struct kvmdbg_classify){.ex = *ex, .dec = *dec};
	/* Reads: a failure here has changed nothing. */
	r = kvmdbg_classify_swbp(v, &c);
	if (!r)
		r = guest_reads(v, &c, ev);
	if (r)
		return r;

	r = kvmdbg_classify_stepover_end(v, &c);
	if (r)
		return r < 0 ? r : 0;
	if (kvmdbg_classify_dbg_access(v, &c))
		return 0;
	kvmdbg_classify_hits(v, &c, ev);
	kvmdbg_classify_event(v, &c, ev);
	kvmdbg_classify_guest(v, &c, ev);
	r = guest_masked(v, &c, ev);
	if (r)
		return r < 0 ? r : 0;
	r = guest_step_start(v, &c, ev);
	if (r)
		return r < 0 ? r : 0;
	kvmdbg_classify_finish(v, &c, ev);
	return 0;
}

/* The short entry: read and decode, settle the common cases (the user's
 * single-step, hits of the host's own points) here, the end of the
 * step-over's own step in kvmdbg_stepover_end_fast, the rest in
 * handle_exit_slow (issue 17). */
/* First in the hot region (classify.c is the first of its objects to
 * link), page-aligned: the region, under 4 KiB on x86 and arm64, is then
 * one page. */
KVMDBG_EXPORT KVMDBG_HOT __attribute__((aligned(4096))) int kvmdbg_vcpu_handle_exit(struct kvmdbg_vcpu *v, struct kvmdbg_event *ev)
{
	struct kvmdbg_decoded dec;
	struct kvmdbg_exit ex; /* read_exit fills every field */
	bool overlay;
	int r;

	if (!v || !ev)
		return -EINVAL;
	if (v->run->exit_reason != KVM_EXIT_DEBUG) {
		event_none(ev, 0);
		return -EINVAL;
	}
	/* Read once: the fast paths below go by the same answer. */
	overlay = kvmdbg_overlay_on(v);
	r = exit_read(v, &ex, &dec, overlay);
	if (r) {
		event_none(ev, 0);
		return r;
	}
	if (!dec.recognised) {
		event_none(ev, ex.pc);
		return 0;
	}
	/* The user's step ran with the guest's interrupts masked (arm64,
	 * kvmdbg_user_step_masks): any debug exit ends that run, and the VMM
	 * reads PSTATE at the stop. Given back first, so a failure changes
	 * nothing; the next prepare masks again if the step goes on. A
	 * step-over's are given back when it ends (stepover_end). */
	if (v->so.irq_masked && v->so.state != KVMDBG_SO_STEPPING) {
		r = kvmdbg_irqs_give_back_inline(v);
		if (r) {
			event_none(ev, ex.pc);
			return r;
		}
	}
	if (!dec.other) {
		/* Hits of the host's own points and nothing else. */
		if (dec.hits && !overlay && hits_fast(v, ev, &ex, &dec))
			return 0;
	} else if (dec.other == KVMDBG_DEC_STEP_ONLY && !dec.hits &&
		   (v->applied_ctl & KVMDBG_CTL_STEP) && v->user_step &&
		   v->so.state == KVMDBG_SO_NONE && !v->gd_stepping) {
		/* The user's single-step and nothing else: the common case,
		 * settled here without the set (what the phases would do for
		 * it). */
		event_set(ev, KVMDBG_STOP_STEP, 0, ex.pc, 0, 0, 0, 0, 1, -1);
		kvmdbg_stepover_arm(v, ex.pc, 0, NULL);
		return 0;
	} else if (dec.other == KVMDBG_DEC_SWBP_OURS && !dec.hits && swbp_hit_fast(v, ev, ex.pc)) {
		return 0;
	}
	event_none(ev, ex.pc);
	if (stepover_end_plain(v, &ex, &dec))
		return kvmdbg_stepover_end_fast(v);
	return handle_exit_slow(v, ev, &ex, &dec);
}
