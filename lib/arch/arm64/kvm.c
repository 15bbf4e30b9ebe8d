/* SPDX-License-Identifier: MIT */
/*
 * arm64 ioctl glue (arm64 hosts only): struct kvm_guest_debug from the
 * arch-neutral state, exits into struct kvmdbg_exit (the PC through
 * KVM_GET_ONE_REG), PSTATE.DAIF around the library's internal steps, and the
 * re-injection of the guest's own debug exceptions by emulating the
 * exception entry, since arm64 KVM has no inject flag.
 *
 * Facts used (Documentation/virt/kvm/api.rst, arch/arm64/kvm/{guest,debug,
 * handle_exit}.c):
 *  - KVM_SET_GUEST_DEBUG accepts ENABLE, SINGLESTEP, USE_SW_BP and USE_HW and
 *    refuses anything else with -EINVAL. While any flag is set, MDCR_EL2.TDE
 *    routes every debug exception of the guest (its own BRKs too) to KVM,
 *    which exits with KVM_EXIT_DEBUG and the EL2 syndrome: the "lower EL"
 *    ECs 0x30/0x32/0x34, BRK 0x3c, BKPT 0x38. FAR is filled for watchpoints
 *    only; hsr_high only when run->flags has KVM_DEBUG_ARCH_HSR_HIGH_VALID.
 *  - Which breakpoint and watchpoint registers run meanwhile: with USE_HW
 *    the host's set, MDSCR_EL1.MDE and KDE forced on. Without it, before
 *    Linux 6.14 the guest's own registers and MDSCR_EL1 (SS cleared), so
 *    its slots fire and come to us; from 6.14 (debug.c's debug_owner) the
 *    host's set again, with MDE, KDE and SS cleared: nothing of the guest's
 *    fires. The verified probe tells which (KVMDBG_FEAT_GUEST_REGS_RAW).
 *  - The PC of a debug exit is not in kvm_run: it is read with
 *    KVM_GET_ONE_REG (core regs.pc).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <linux/kvm.h>

#include "arch/arm64/regs.h"
#include "kvmdbg-int.h"

#ifndef KVM_DEBUG_ARCH_HSR_HIGH_VALID
#define KVM_DEBUG_ARCH_HSR_HIGH_VALID (1 << 0)
#endif

/* What arm64 KVM accepts (KVM_GUESTDBG_VALID_MASK), for kernels that predate
 * KVM_CAP_SET_GUEST_DEBUG2. */
#define ARM64_DEBUG_FLAGS_DEFAULT                                                 \
	(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_SW_BP | \
	 KVM_GUESTDBG_USE_HW)

/* The largest region one watchpoint covers: DBGWCR.MASK = 31. */
#define ARM64_MAX_WATCH_LEN (1ull << 31)

/* ctx: the glue's host context (kvmdbg_ioctl_in). */
static inline __attribute__((always_inline)) int get_reg(void *ctx, int vcpu_fd, uint64_t id,
							 uint64_t *val)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uintptr_t)val };
	int r = kvmdbg_ioctl_in_chk(ctx, vcpu_fd, KVM_GET_ONE_REG, &reg);

	return r < 0 ? r : 0;
}

static inline __attribute__((always_inline)) int set_reg(void *ctx, int vcpu_fd, uint64_t id,
							 uint64_t val)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uintptr_t)&val };
	int r = kvmdbg_ioctl_in_chk(ctx, vcpu_fd, KVM_SET_ONE_REG, &reg);

	return r < 0 ? r : 0;
}

static int arm64_probe(void *ctx, int fd, struct kvmdbg_caps *c)
{
	int r = kvmdbg_probe_debug_caps(fd, KVMDBG_ARCH_ARM64, ARM64_DEBUG_FLAGS_DEFAULT, c);
	uint64_t flags;

	(void)ctx;
	if (r < 0)
		return r;
	/* ONE_REG reaches the guest's own DBGB/W{C,V}R and MDSCR_EL1 on every
	 * arm64 KVM. */
	c->guest_state = 1;
	if (!r)
		return 0;
	flags = c->debug_flags;
	c->hw_debug = !!(flags & KVM_GUESTDBG_USE_HW);
	/* arm64 has neither: interrupts are masked through PSTATE.DAIF and
	 * exceptions are re-injected by emulating their entry. */
	c->block_irq = 0;
	c->inject_db = 0;
	c->inject_bp = 0;
	c->shared_slots = 0;
	c->max_watch_len = ARM64_MAX_WATCH_LEN;
	if (c->hw_debug) {
		/* Host slots (the hardware's, not the guest's ID_AA64DFR0_EL1).
		 * 0 means "unknown" from an old kernel on a /dev/kvm fd. */
		r = kvmdbg_check_ext(fd, KVM_CAP_GUEST_DEBUG_HW_BPS);
		if (r < 0)
			return r;
		c->hw_breakpoints = (unsigned int)r;
		r = kvmdbg_check_ext(fd, KVM_CAP_GUEST_DEBUG_HW_WPS);
		if (r < 0)
			return r;
		c->hw_watchpoints = (unsigned int)r;
		if (c->hw_breakpoints > KVM_ARM_MAX_DBG_REGS)
			c->hw_breakpoints = KVM_ARM_MAX_DBG_REGS;
		if (c->hw_watchpoints > KVM_ARM_MAX_DBG_REGS)
			c->hw_watchpoints = KVM_ARM_MAX_DBG_REGS;
	}
	return 0;
}

static int arm64_probe_guest(void *ctx, int vcpu_fd, struct kvmdbg_guest_caps *c)
{
	uint64_t dfr0;
	int r = get_reg(KVMDBG_IOCTL_SEAM, vcpu_fd, REG_ID_AA64DFR0_EL1, &dfr0);

	/* Probing, made once: through the hook whatever ctx says. */
	(void)ctx;
	if (r)
		return r;
	memset((char *)c + sizeof(c->sz), 0, sizeof(*c) - sizeof(c->sz));
	/* BRPs [15:12], WRPs [23:20], CTX_CMPs [31:28]: each "count - 1". */
	c->breakpoints = (unsigned int)((dfr0 >> 12) & 0xf) + 1;
	c->watchpoints = (unsigned int)((dfr0 >> 20) & 0xf) + 1;
	c->context_cmps = (unsigned int)((dfr0 >> 28) & 0xf) + 1;
	c->shared_slots = 0;
	return 0;
}

/*
 * Zero the 520 bytes of struct kvm_guest_debug with stores here, not a call
 * of memset (issue 17): glibc's memset (DC ZVA, on another code page) cost
 * ~1 us at each of a two-exit hit's two KVM_SET_GUEST_DEBUG in the arm64
 * bed, where everything after an exit runs cold; these stores ~0.2 us. The
 * empty asm keeps GCC and clang from turning the loop back into memset.
 */
static inline __attribute__((always_inline)) void gd_zero(struct kvm_guest_debug *d)
{
	uint64_t *w = (uint64_t *)(void *)&d->arch;

	_Static_assert(sizeof(d->arch) % (8 * sizeof(*w)) == 0, "the arch part in 8-word rows");
	memset(d, 0, offsetof(struct kvm_guest_debug, arch)); /* 8 bytes: inline */
	for (size_t i = 0; i < sizeof(d->arch) / sizeof(*w); i += 8) {
		w[i] = w[i + 1] = w[i + 2] = w[i + 3] = 0;
		w[i + 4] = w[i + 5] = w[i + 6] = w[i + 7] = 0;
		__asm__ volatile("" : : "r"(w));
	}
}

/* KVM_SET_GUEST_DEBUG, built twice (the ops' and the software
 * breakpoint's region: kvmdbg_host_set_guest_debug_sw). */
static inline __attribute__((always_inline)) int
set_guest_debug(void *ctx, int vcpu_fd, uint32_t ctl, const struct kvmdbg_hwstate *hw, uint32_t on)
{
	struct kvm_guest_debug dbg;
	int r;

	/* No inject or BLOCKIRQ flag exists on arm64 (KVM would say -EINVAL). */
	if (ctl & (KVMDBG_CTL_BLOCKIRQ | KVMDBG_CTL_INJECT_DB | KVMDBG_CTL_INJECT_BP))
		return -EOPNOTSUPP;

	gd_zero(&dbg);
	if (ctl & KVMDBG_CTL_ENABLE)
		dbg.control |= KVM_GUESTDBG_ENABLE;
	if (ctl & KVMDBG_CTL_STEP)
		dbg.control |= KVM_GUESTDBG_SINGLESTEP;
	if (ctl & KVMDBG_CTL_SW_BP)
		dbg.control |= KVM_GUESTDBG_USE_SW_BP;
	if (ctl & KVMDBG_CTL_HW)
		dbg.control |= KVM_GUESTDBG_USE_HW;

	/* The enabled slots alone; a disabled one is all zero (E = 0). */
	_Static_assert(KVMDBG_MAX_SLOTS <= KVM_ARM_MAX_DBG_REGS, "slot count");
	KVMDBG_FOR_EACH_SLOT(on, pool, slot) {
		const struct kvmdbg_hwslot *s = &hw->slot[pool][slot];

		if (pool == KVMDBG_POOL_BP) {
			dbg.arch.dbg_bcr[slot] = s->ctrl;
			dbg.arch.dbg_bvr[slot] = s->value;
		} else {
			dbg.arch.dbg_wcr[slot] = s->ctrl;
			dbg.arch.dbg_wvr[slot] = s->value;
		}
	}
	r = kvmdbg_ioctl_in_chk(ctx, vcpu_fd, KVM_SET_GUEST_DEBUG, &dbg);
	return r < 0 ? r : 0;
}

KVMDBG_HOST_SET_GUEST_DEBUG(set_guest_debug)

static KVMDBG_HOT int arm64_get_pc(void *ctx, int vcpu_fd, uint64_t *pc)
{
	return get_reg(ctx, vcpu_fd, REG_PC, pc);
}

KVMDBG_HOT int kvmdbg_host_read_exit(void *ctx, int vcpu_fd, const struct kvm_run *run,
				     bool step_pc, struct kvmdbg_exit *ex)
{
	uint64_t esr = run->debug.arch.hsr;

	memset(ex, 0, sizeof(*ex));
	if (run->flags & KVM_DEBUG_ARCH_HSR_HIGH_VALID)
		esr |= (uint64_t)run->debug.arch.hsr_high << 32;
	ex->esr = esr;
	/* FAR is only written for watchpoints; elsewhere it is stale. */
	if (ESR_EC(esr) == EC_WATCHPT_LOW)
		ex->far = run->debug.arch.far;
	/* kvm_run has no PC: one KVM_GET_ONE_REG, saved where nobody will
	 * look at it (the step-over's own step). */
	if (!step_pc && (ESR_EC(esr) == EC_SOFTSTP_LOW || ESR_EC(esr) == EC_SOFTSTP_CUR)) {
		ex->pc_unread = true;
		return 0;
	}
	return get_reg(ctx, vcpu_fd, REG_PC, &ex->pc);
}

/*
 * Interrupts around one step (the library's step-over of a breakpoint or
 * watchpoint, the user's single-step): an IRQ, FIQ or SError pending when
 * the step starts would be taken first and the step would stop at its
 * vector instead.
 *
 * mask_irqs sets PSTATE.{A,I,F} and returns in *saved the guest's own bits
 * (PSTATE.D is left alone: with MDCR_EL2.TDE the debug exceptions go to EL2
 * and PSTATE.D of EL1 does not mask them) together with the PC (the
 * caller's: it knows it, no ioctl for it here), so that
 * restore_irqs can tell what the stepped instruction itself did:
 *
 *   saved = PC[55:2] << 2 (the PC sign-extended from bit 55 on decoding)
 *         | orig A,I,F << 56 | KEEP << 60 | WHOLE << 61
 *
 * KEEP means the guest had A, I and F masked already: nothing was changed and
 * nothing is restored. The bits the stepped instruction (insn, where the
 * caller could read it: arm64_insn_daif) sets are saved as the guest's (MSR
 * DAIFSet), and WHOLE marks one that writes all three (MSR DAIF, Xt; ERET).
 * On restore:
 *  - the step entered an exception (PSTATE EL1h, ELR_EL1 the stepped PC or
 *    the next one, PC inside the vector table): the CPU masked everything as
 *    it should, but SPSR_EL1 holds our masked bits: put the guest's back;
 *  - WHOLE: the bits are the instruction's, as they are;
 *  - the stepped instruction cleared some of the bits (MSR DAIFClr, or MSR
 *    DAIF and ERET where insn was unknown): keep what it cleared, the rest
 *    as saved;
 *  - otherwise the saved bits come back exactly, and nothing else of PSTATE
 *    is touched.
 * Where insn was unknown (no memory callbacks), a bit an MSR DAIFSet, MSR
 * DAIF or ERET sets that the guest had clear comes back clear.
 */
#define SAVED_PC_MASK   0x00fffffffffffffcull
#define SAVED_AIF_SHIFT 56
#define SAVED_KEEP      (1ull << 60)
#define SAVED_WHOLE     (1ull << 61)

static uint64_t saved_pc(uint64_t saved)
{
	uint64_t pc = saved & SAVED_PC_MASK;

	return (uint64_t)((int64_t)(pc << 8) >> 8);
}

/* mask_irqs, built twice as set_guest_debug. */
static inline __attribute__((always_inline)) int
mask_irqs(void *ctx, int vcpu_fd, uint64_t pc, bool (*insn)(void *arg, uint64_t pc, uint32_t *word),
	  void *arg, uint64_t *saved)
{
	uint64_t pstate, set = 0;
	uint32_t word;
	int whole = 0, r = get_reg(ctx, vcpu_fd, REG_PSTATE, &pstate);

	if (r)
		return r;
	/* Masked already: nothing to give back, whatever the step runs. */
	if ((pstate & PS_AIF) == PS_AIF) {
		*saved = (pc & SAVED_PC_MASK) | (PS_AIF >> 6) << SAVED_AIF_SHIFT | SAVED_KEEP;
		return 0;
	}
	if (insn && insn(arg, pc, &word))
		arm64_insn_daif(word, &set, &whole);
	*saved = (pc & SAVED_PC_MASK) | (((pstate | set) & PS_AIF) >> 6) << SAVED_AIF_SHIFT |
		 (whole ? SAVED_WHOLE : 0);
	return set_reg(ctx, vcpu_fd, REG_PSTATE, pstate | PS_AIF);
}

KVMDBG_STEP int kvmdbg_arm64_mask_irqs(void *ctx, int vcpu_fd, uint64_t pc,
				       bool (*insn)(void *arg, uint64_t pc, uint32_t *word),
				       void *arg, uint64_t *saved)
{
	return mask_irqs(ctx, vcpu_fd, pc, insn, arg, saved);
}

KVMDBG_STEP_SW int kvmdbg_arm64_mask_irqs_sw(void *ctx, int vcpu_fd, uint64_t pc,
					     bool (*insn)(void *arg, uint64_t pc, uint32_t *word),
					     void *arg, uint64_t *saved)
{
	return mask_irqs(ctx, vcpu_fd, pc, insn, arg, saved);
}

/* restore_irqs where the step may have entered an exception (EL1h with
 * D, A, I and F all set): 1 if it did not, else 0 or -errno, SPSR_EL1
 * given the guest's bits. Out of the step-over's page (rare). */
static KVMDBG_WARM __attribute__((noinline)) int restore_irqs_entered(void *ctx, int vcpu_fd,
								      uint64_t orig, uint64_t pc0)
{
	uint64_t pc, elr, vbar, spsr;
	int r = get_reg(ctx, vcpu_fd, REG_PC, &pc);

	if (!r)
		r = get_reg(ctx, vcpu_fd, REG_ELR_EL1, &elr);
	if (!r)
		r = get_reg(ctx, vcpu_fd, REG_VBAR_EL1, &vbar);
	if (r)
		return r;
	vbar &= ~0x7ffull;
	if ((elr != pc0 && elr != pc0 + 4) || pc < vbar || pc >= vbar + 0x800)
		return 1;
	/* An exception was entered by the step: its SPSR_EL1 must show the
	 * guest's bits, not ours. */
	r = get_reg(ctx, vcpu_fd, REG_SPSR_EL1, &spsr);
	if (r)
		return r;
	if ((spsr & PS_AIF) == PS_AIF && orig != PS_AIF)
		r = set_reg(ctx, vcpu_fd, REG_SPSR_EL1, (spsr & ~PS_AIF) | orig);
	return r;
}

KVMDBG_STEP int kvmdbg_arm64_restore_irqs(void *ctx, int vcpu_fd, uint64_t saved)
{
	uint64_t orig = ((saved >> SAVED_AIF_SHIFT) & 7) << 6;
	uint64_t pstate, want;
	int r;

	if (saved & SAVED_KEEP)
		return 0;
	r = get_reg(ctx, vcpu_fd, REG_PSTATE, &pstate);
	if (r)
		return r;

	/* Only an exception entry can have left EL1h with D, A, I and F all
	 * set: the PC (one more KVM_GET_ONE_REG) only then, not at every
	 * step's exit. */
	if ((pstate & PS_MODE_MASK) == PS_MODE_EL1h && (pstate & PS_DAIF) == PS_DAIF) {
		r = restore_irqs_entered(ctx, vcpu_fd, orig, saved_pc(saved));
		if (r <= 0)
			return r;
	}
	if (saved & SAVED_WHOLE)
		return 0;
	/* Bits the instruction cleared stay clear; the others are the guest's. */
	want = (pstate & ~PS_AIF) | (pstate & orig & PS_AIF);
	if (want == pstate)
		return 0;
	return set_reg(ctx, vcpu_fd, REG_PSTATE, want);
}

/*
 * Deliver a guest-owned debug exception the way the CPU would have if KVM
 * had not routed it to EL2 (the Arm ARM's AArch64.TakeException for a
 * synchronous exception to EL1). Every register is read before anything is
 * written; a failed write leaves the earlier ones written, which only
 * changes EL1 syndrome registers the guest cannot observe before the PC.
 */
static int arm64_inject(void *ctx, int vcpu_fd, const struct kvmdbg_reinject *ri, uint32_t *ctl)
{
	uint64_t pstate, vbar, sctlr, pfr1 = 0, mmfr1 = 0;
	uint64_t esr = ri->esr, mode, vec, np, spsr;
	unsigned int ec = (unsigned int)ESR_EC(esr);
	int r;

	*ctl = 0;
	r = get_reg(ctx, vcpu_fd, REG_PSTATE, &pstate);
	if (!r)
		r = get_reg(ctx, vcpu_fd, REG_VBAR_EL1, &vbar);
	if (!r)
		r = get_reg(ctx, vcpu_fd, REG_SCTLR_EL1, &sctlr);
	if (r)
		return r;
	/* Optional features; an old kernel without these ids means "none". */
	(void)get_reg(ctx, vcpu_fd, REG_ID_AA64PFR1_EL1, &pfr1);
	(void)get_reg(ctx, vcpu_fd, REG_ID_AA64MMFR1_EL1, &mmfr1);

	mode = pstate & PS_MODE_MASK;
	if (pstate & PS_MODE32)
		vec = VEC_LOWER_A32;
	else if (mode == PS_MODE_EL1h)
		vec = VEC_CUR_SPX;
	else if (mode == PS_MODE_EL1t)
		vec = VEC_CUR_SP0;
	else if (mode == PS_MODE_EL0t)
		vec = VEC_LOWER_A64;
	else
		return -EINVAL; /* EL2/EL3 modes: not a guest running at EL1/EL0 */

	/* KVM reports the EL2 view: debug exceptions "from a lower EL". To the
	 * guest an exception from EL1 itself is the same-EL class. */
	if (!(pstate & PS_MODE32) && mode != PS_MODE_EL0t &&
	    (ec == EC_BREAKPT_LOW || ec == EC_SOFTSTP_LOW || ec == EC_WATCHPT_LOW))
		esr |= 1ull << ESR_EC_SHIFT;

	/* New PSTATE: EL1h, D, A, I, F masked; SS, IL, BTYPE cleared; DIT kept;
	 * PAN set unless SCTLR_EL1.SPAN; UAO cleared; SSBS from SCTLR_EL1.DSSBS;
	 * TCO set (with MTE). */
	np = PS_MODE_EL1h | PS_DAIF | (pstate & PS_DIT);
	if ((mmfr1 >> 20) & 0xf) { /* FEAT_PAN */
		if (!(sctlr & SCTLR_SPAN))
			np |= PS_PAN;
		else
			np |= pstate & PS_PAN;
	}
	if (((pfr1 >> 4) & 0xf) >= 2 && (sctlr & SCTLR_DSSBS)) /* FEAT_SSBS2 */
		np |= PS_SSBS;
	if (((pfr1 >> 8) & 0xf) >= 2) /* FEAT_MTE2 */
		np |= PS_TCO;

	/* A software step exception is taken with the step active-pending:
	 * SPSR.SS clear. */
	spsr = pstate;
	if (ec == EC_SOFTSTP_LOW || ec == EC_SOFTSTP_CUR)
		spsr &= ~PS_SS;

	r = set_reg(ctx, vcpu_fd, REG_ESR_EL1, esr);
	if (!r && ec == EC_WATCHPT_LOW)
		r = set_reg(ctx, vcpu_fd, REG_FAR_EL1, ri->far);
	if (!r)
		r = set_reg(ctx, vcpu_fd, REG_SPSR_EL1, spsr);
	if (!r)
		r = set_reg(ctx, vcpu_fd, REG_ELR_EL1, ri->pc);
	if (!r)
		r = set_reg(ctx, vcpu_fd, REG_PSTATE, np);
	if (!r)
		r = set_reg(ctx, vcpu_fd, REG_PC, (vbar & ~0x7ffull) + vec);
	return r;
}

/*
 * The guest's own debug registers (overlay), as KVM keeps them for the guest
 * while the host's set runs: with KVM_GUESTDBG_USE_HW the guest's accesses
 * trap (MDCR_EL2.TDA) to KVM's copy of them, which ONE_REG reads. Runs at
 * every debug exit in overlay mode, so it reads only what can matter:
 *
 *   MDSCR_EL1                       1 ioctl; MDE clear: done (nothing of the
 *                                   guest's can match), nr = 0
 *   OSLSR_EL1                       1; the OS Lock locked: done, nr = 0 (KVM
 *                                   emulates it by clearing MDE for the guest)
 *   ID_AA64DFR0_EL1                 1: the guest-visible counts (read every
 *                                   time: a per-fd cache could outlive its
 *                                   vCPU when the fd number is reused)
 *   DBGBCRn_EL1, DBGWCRn_EL1        one per guest-visible register
 *   DBGBVRn_EL1, DBGWVRn_EL1        only for the registers with E = 1
 *
 * so 1 ioctl while the guest does not debug, and 3 + BRPs + WRPs + enabled
 * ones while it does (the test bed's 6 + 4 registers, 2 enabled: 15). The
 * kernels this runs on have no ioctl that reads several registers at once.
 * A kernel without OSLSR_EL1 in ONE_REG (before the OS Lock emulation) is
 * taken as unlocked.
 */
static int arm64_read_guest_regs(void *ctx, int vcpu_fd, struct kvmdbg_guest_regs *g)
{
	static const uint64_t cr[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS] = {
#define CR4(f, n) f(n), f(n + 1), f(n + 2), f(n + 3)
		{ CR4(REG_DBGBCR_EL1, 0), CR4(REG_DBGBCR_EL1, 4), CR4(REG_DBGBCR_EL1, 8),
		  CR4(REG_DBGBCR_EL1, 12) },
		{ CR4(REG_DBGWCR_EL1, 0), CR4(REG_DBGWCR_EL1, 4), CR4(REG_DBGWCR_EL1, 8),
		  CR4(REG_DBGWCR_EL1, 12) },
	};
	static const uint64_t vr[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS] = {
		{ CR4(REG_DBGBVR_EL1, 0), CR4(REG_DBGBVR_EL1, 4), CR4(REG_DBGBVR_EL1, 8),
		  CR4(REG_DBGBVR_EL1, 12) },
		{ CR4(REG_DBGWVR_EL1, 0), CR4(REG_DBGWVR_EL1, 4), CR4(REG_DBGWVR_EL1, 8),
		  CR4(REG_DBGWVR_EL1, 12) },
#undef CR4
	};
	struct kvmdbg_guest_regs n;
	uint64_t oslsr = 0, dfr0;
	int r;

	memset(&n, 0, sizeof(n));
	r = get_reg(ctx, vcpu_fd, REG_MDSCR_EL1, &n.mdscr);
	if (r)
		return r;
	if (!(n.mdscr & MDSCR_MDE))
		goto out;
	r = get_reg(ctx, vcpu_fd, REG_OSLSR_EL1, &oslsr);
	if (r == -ENOENT)
		oslsr = 0;
	else if (r)
		return r;
	if (oslsr & OSLSR_OSLK)
		goto out;
	r = get_reg(ctx, vcpu_fd, REG_ID_AA64DFR0_EL1, &dfr0);
	if (r)
		return r;
	/* BRPs [15:12], WRPs [23:20]: count - 1. */
	n.nr[KVMDBG_POOL_BP] = (unsigned int)((dfr0 >> 12) & 0xf) + 1;
	n.nr[KVMDBG_POOL_WP] = (unsigned int)((dfr0 >> 20) & 0xf) + 1;
	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int i = 0; i < n.nr[pool]; i++) {
			r = get_reg(ctx, vcpu_fd, cr[pool][i], &n.ctrl[pool][i]);
			if (!r && (n.ctrl[pool][i] & 1))
				r = get_reg(ctx, vcpu_fd, vr[pool][i], &n.value[pool][i]);
			if (r)
				return r;
		}
out:
	*g = n;
	return 0;
}

/* Debug exceptions from EL1 to EL1 need MDSCR_EL1.KDE and PSTATE.D clear;
 * from EL0 (to EL1) they are never masked. One ioctl (PSTATE). */
static int arm64_guest_masked(void *ctx, int vcpu_fd, const struct kvmdbg_guest_regs *g,
			      bool *masked)
{
	uint64_t pstate;
	int r = get_reg(ctx, vcpu_fd, REG_PSTATE, &pstate);

	if (r)
		return r;
	*masked = !(pstate & PS_MODE32) && (pstate & PS_MODE_MASK) != PS_MODE_EL0t &&
		  ((pstate & PS_D) || !(g->mdscr & MDSCR_KDE));
	return 0;
}

/*
 * The guest's own software step, armed and expected at pc (overlay): KVM
 * runs the vCPU with MDSCR_EL1.SS clear while the host debugs it (before
 * 6.14 it masks SS; from 6.14 none of the guest's debug state runs), so the
 * guest's step never happens. Its own MDSCR_EL1 (KVM's copy, in g) has SS,
 * and the step is enabled where the vCPU is: at EL0 always, at EL1 with
 * MDSCR_EL1.KDE and PSTATE.D clear, never with the OS Lock locked. The
 * guest expects it at pc when it has returned there (ERET): PC = ELR_EL1,
 * SPSR_EL1 of the mode the vCPU is in. SPSR_EL1.SS is set by the ERET that
 * armed the step, but not always still: the real PSTATE.SS stays 0 (as the
 * real MDSCR_EL1.SS), so an interrupt the guest takes before the
 * instruction saves SPSR_EL1.SS = 0 where the CPU would save 1, and
 * returns there with it (seen in the arm64 bed: Linux's step past its perf
 * breakpoint and watchpoint, after a timer interrupt). Natively the guest takes a step exception
 * at pc or after it either way; the one after it is what an OS that arms a
 * step wants (Linux ERETs with SPSR.SS = 1, never into the active-pending
 * state). 0 ioctls when the guest's SS is clear, else 3 or 4.
 */
static int arm64_guest_step_armed(void *ctx, int vcpu_fd, const struct kvmdbg_guest_regs *g,
				  uint64_t pc, bool *armed)
{
	uint64_t pstate, elr, spsr, oslsr = 0;
	bool el0;
	int r;

	*armed = false;
	if (!(g->mdscr & MDSCR_SS))
		return 0;
	r = get_reg(ctx, vcpu_fd, REG_PSTATE, &pstate);
	if (r)
		return r;
	el0 = (pstate & PS_MODE32) || (pstate & PS_MODE_MASK) == PS_MODE_EL0t;
	if (!el0 && ((pstate & PS_MODE_MASK) != PS_MODE_EL1t &&
		     (pstate & PS_MODE_MASK) != PS_MODE_EL1h))
		return 0;
	if (!el0 && (!(g->mdscr & MDSCR_KDE) || (pstate & PS_D)))
		return 0;
	r = get_reg(ctx, vcpu_fd, REG_ELR_EL1, &elr);
	if (!r)
		r = get_reg(ctx, vcpu_fd, REG_SPSR_EL1, &spsr);
	if (r)
		return r;
	if (elr != pc || (spsr & PS_MODE_MASK) != (pstate & PS_MODE_MASK))
		return 0;
	r = get_reg(ctx, vcpu_fd, REG_OSLSR_EL1, &oslsr);
	if (r && r != -ENOENT)
		return r;
	*armed = !(oslsr & OSLSR_OSLK);
	return 0;
}

const struct kvmdbg_host_ops kvmdbg_host = {
	.arch = &kvmdbg_arm64_ops,
	.probe = arm64_probe,
	.probe_guest = arm64_probe_guest,
	.verified = &kvmdbg_probe_checks,
	.set_guest_debug = kvmdbg_host_set_guest_debug,
	.read_exit = kvmdbg_host_read_exit,
	.get_pc = arm64_get_pc,
	.set_resume_flag = NULL,
	.mask_irqs = kvmdbg_arm64_mask_irqs,
	.restore_irqs = kvmdbg_arm64_restore_irqs,
	.inject = arm64_inject,
	.inject_emulated = true,
	.read_guest_regs = arm64_read_guest_regs,
	.guest_masked = arm64_guest_masked,
	.guest_step_armed = arm64_guest_step_armed,
};
