/* SPDX-License-Identifier: MIT */
/*
 * bench-kvm's raw side on arm64 (bench/bench-kvm.h): DBGBCR/DBGWCR by hand,
 * the stop from kvm_run's ESR (and FAR for a watchpoint), its PC by
 * KVM_GET_ONE_REG (arm64 kvm_run has none), PSTATE.AIF masked by hand around
 * a step-over's step (arm64 KVM has no BLOCKIRQ), BRK as the software
 * breakpoint. There is no resume flag: every resume past a stop steps.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arch/arm64/regs.h"
#include "bench-kvm.h"

/* The library's BRK immediate (lib/arch/arm64/encode.c: it tells its own
 * BRKs from the guest's by it), so both sides write the same word. */
#define BENCH_BRK_IMM 0x4b44u
#define BENCH_BRK     ARM64_BRK_INSN(BENCH_BRK_IMM)

/* DBGBCR: enabled, EL1 and EL0, BAS = 0b1111 (an A64 instruction). */
#define BENCH_BCR (CR_E | CR_PxC_EL1_EL0 | 0xfull << CR_BAS_SHIFT)
/* DBGWCR: enabled, EL1 and EL0, stores, BAS = 0xff (the doubleword). */
#define BENCH_WCR \
	(CR_E | CR_PxC_EL1_EL0 | (uint64_t)LSC_STORE << CR_LSC_SHIFT | 0xffull << CR_BAS_SHIFT)

/* The saved mask of bench_arch_step_irqs_begin: the bits set here. */
#define SAVED_SET (1ull << 63)

const char bench_arch_name[] = "arm64";
const bool bench_arch_has_rf = false;
const bool bench_arch_watch_faults = true;
const unsigned int bench_arch_bp_len = 4;
const uint8_t bench_arch_sw_insn[] = {BENCH_BRK & 0xff, BENCH_BRK >> 8 & 0xff,
				      BENCH_BRK >> 16 & 0xff, BENCH_BRK >> 24};

static BENCH_LOOP uint64_t get_reg(const struct side *s, uint64_t id)
{
	uint64_t v;
	struct kvm_one_reg reg = {.id = id, .addr = (uintptr_t)&v};

	if (bench_ioctl(s->m.vcpu_fd[0], KVM_GET_ONE_REG, &reg) < 0)
		bench_die("KVM_GET_ONE_REG %#llx: %s", (unsigned long long)id, strerror(errno));
	return v;
}

static BENCH_LOOP void set_reg(const struct side *s, uint64_t id, uint64_t v)
{
	struct kvm_one_reg reg = {.id = id, .addr = (uintptr_t)&v};

	if (bench_ioctl(s->m.vcpu_fd[0], KVM_SET_ONE_REG, &reg) < 0)
		bench_die("KVM_SET_ONE_REG %#llx: %s", (unsigned long long)id, strerror(errno));
}

void bench_arch_state(struct kvm_guest_debug *d, enum raw_state st, uint64_t addr,
		      bool block_irq)
{
	(void)block_irq; /* none on arm64 */
	memset(d, 0, sizeof(*d));
	d->control = KVM_GUESTDBG_ENABLE;
	switch (st) {
	case RAW_STEP:
		d->control |= KVM_GUESTDBG_SINGLESTEP;
		break;
	case RAW_HW:
		d->control |= KVM_GUESTDBG_USE_HW;
		d->arch.dbg_bcr[0] = BENCH_BCR;
		d->arch.dbg_bvr[0] = addr;
		break;
	case RAW_WATCH:
		d->control |= KVM_GUESTDBG_USE_HW;
		d->arch.dbg_wcr[0] = BENCH_WCR;
		d->arch.dbg_wvr[0] = addr;
		break;
	case RAW_SW:
		d->control |= KVM_GUESTDBG_USE_SW_BP;
		break;
	case RAW_SW_STEP:
		d->control |= KVM_GUESTDBG_USE_SW_BP | KVM_GUESTDBG_SINGLESTEP;
		break;
	}
}

BENCH_LOOP void bench_arch_expect(const struct side *s, enum raw_exit what, uint64_t target)
{
	const struct kvm_run *run = s->m.run[0];
	uint64_t esr = run->debug.arch.hsr, far = run->debug.arch.far, pc = 0;
	unsigned int ec = (unsigned int)ESR_EC(esr);
	bool ok = run->exit_reason == KVM_EXIT_DEBUG;

	/* A reported stop is reported with its PC. */
	if (ok && what != EXIT_STEP_INNER)
		pc = get_reg(s, REG_PC);
	switch (what) {
	case EXIT_STEP_REPORT:
	case EXIT_STEP_INNER:
		ok = ok && ec == EC_SOFTSTP_LOW;
		break;
	case EXIT_HW:
		ok = ok && ec == EC_BREAKPT_LOW && pc == target;
		break;
	case EXIT_SW:
		ok = ok && ec == EC_BRK64 && (esr & ESR_ISS_COMMENT) == BENCH_BRK_IMM &&
		     pc == target;
		break;
	case EXIT_WATCH:
		ok = ok && ec == EC_WATCHPT_LOW && (esr & ESR_ISS_WNR) && far >= target &&
		     far < target + 8;
		break;
	}
	if (!ok)
		bench_die("raw side: exit %u (expected kind %d): esr %#llx far %#llx pc %#llx",
			  run->exit_reason, (int)what, (unsigned long long)esr,
			  (unsigned long long)far, (unsigned long long)pc);
}

BENCH_LOOP void bench_arch_resume_flag(const struct side *s)
{
	(void)s;
	bench_die("arm64 has no resume flag");
}

/* An interrupt pending when the step starts would be taken first: mask
 * A, I and F unless the guest has them masked already (one read then). */
BENCH_LOOP void bench_arch_step_irqs_begin(const struct side *s, uint64_t *saved)
{
	uint64_t pstate = get_reg(s, REG_PSTATE);

	*saved = pstate & PS_AIF;
	if ((pstate & PS_AIF) == PS_AIF)
		return;
	set_reg(s, REG_PSTATE, pstate | PS_AIF);
	*saved |= SAVED_SET;
}

BENCH_LOOP void bench_arch_step_irqs_end(const struct side *s, uint64_t saved)
{
	uint64_t pstate;

	if (!(saved & SAVED_SET))
		return;
	pstate = get_reg(s, REG_PSTATE);
	set_reg(s, REG_PSTATE, (pstate & ~PS_AIF) | (saved & PS_AIF));
}

BENCH_LOOP void bench_arch_spin(unsigned long iters)
{
	unsigned long x = 0;

	if (!iters)
		return;
	__asm__ volatile("1: add %0, %0, #1\n\t"
			 "subs %1, %1, #1\n\t"
			 "b.ne 1b"
			 : "+r"(x), "+r"(iters)
			 :
			 : "cc");
}

const char *bench_arch_describe(const struct kvm_guest_debug *d)
{
	static char b[200];

	snprintf(b, sizeof(b), "control %#x bcr0 %#llx bvr0 %#llx wcr0 %#llx wvr0 %#llx",
		 d->control, (unsigned long long)d->arch.dbg_bcr[0],
		 (unsigned long long)d->arch.dbg_bvr[0], (unsigned long long)d->arch.dbg_wcr[0],
		 (unsigned long long)d->arch.dbg_wvr[0]);
	return b;
}
