/* SPDX-License-Identifier: MIT */
/*
 * bench-kvm's raw side on x86-64 (bench/bench-kvm.h): DR0..DR7 by hand, the
 * stop read from kvm_run (DR6, the PC), RFLAGS.RF by KVM_GET/SET_REGS.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arch/x86/regs.h"
#include "bench-kvm.h"

const char bench_arch_name[] = "x86-64";
const bool bench_arch_has_rf = true;
const bool bench_arch_watch_faults = false; /* data breakpoints are traps */
const unsigned int bench_arch_bp_len = 1;
const uint8_t bench_arch_sw_insn[] = {0xcc}; /* INT3 */

void bench_arch_state(struct kvm_guest_debug *d, enum raw_state st, uint64_t addr,
		      bool block_irq)
{
	memset(d, 0, sizeof(*d));
	d->control = KVM_GUESTDBG_ENABLE;
	d->arch.debugreg[7] = DR7_FIXED_1;
	switch (st) {
	case RAW_HW:
		d->control |= KVM_GUESTDBG_USE_HW_BP;
		d->arch.debugreg[0] = addr;
		d->arch.debugreg[7] |= DR7_G(0); /* execute, length 1 */
		break;
	case RAW_WATCH:
		d->control |= KVM_GUESTDBG_USE_HW_BP;
		d->arch.debugreg[0] = addr;
		d->arch.debugreg[7] |= DR7_G(0) | DR7_RW_LEN(0, X86_RW_WRITE, X86_LEN_8) | DR7_GE;
		break;
	case RAW_SW:
	case RAW_SW_STEP:
		d->control |= KVM_GUESTDBG_USE_SW_BP;
		break;
	case RAW_STEP:
		break;
	}
	if (st == RAW_STEP || st == RAW_SW_STEP) {
		d->control |= KVM_GUESTDBG_SINGLESTEP;
		if (block_irq)
			d->control |= KVM_GUESTDBG_BLOCKIRQ;
	}
}

BENCH_LOOP void bench_arch_expect(const struct side *s, enum raw_exit what, uint64_t target)
{
	const struct kvm_run *run = s->m.run[0];
	uint64_t dr6 = run->debug.arch.dr6, pc = run->debug.arch.pc;
	bool ok = run->exit_reason == KVM_EXIT_DEBUG;

	switch (what) {
	case EXIT_STEP_REPORT:
	case EXIT_STEP_INNER:
		ok = ok && (dr6 & DR6_BS);
		break;
	case EXIT_HW:
		ok = ok && (dr6 & DR6_B(0)) && pc == target;
		break;
	case EXIT_SW:
		ok = ok && run->debug.arch.exception == 3 && pc == target;
		break;
	case EXIT_WATCH:
		ok = ok && (dr6 & DR6_B(0));
		break;
	}
	if (!ok)
		bench_die("raw side: exit %u (expected kind %d): exception %u dr6 %#llx pc %#llx",
			  run->exit_reason, (int)what, run->debug.arch.exception,
			  (unsigned long long)dr6, (unsigned long long)pc);
}

BENCH_LOOP void bench_arch_resume_flag(const struct side *s)
{
	struct kvm_regs regs;
	int fd = s->m.vcpu_fd[0];

	if (bench_ioctl(fd, KVM_GET_REGS, &regs) < 0)
		bench_die("KVM_GET_REGS: %s", strerror(errno));
	regs.rflags |= RFLAGS_RF;
	if (bench_ioctl(fd, KVM_SET_REGS, &regs) < 0)
		bench_die("KVM_SET_REGS: %s", strerror(errno));
}

/* KVM_GUESTDBG_BLOCKIRQ in the state does it, where the host has it. */
BENCH_LOOP void bench_arch_step_irqs_begin(const struct side *s, uint64_t *saved)
{
	(void)s;
	*saved = 0;
}

BENCH_LOOP void bench_arch_step_irqs_end(const struct side *s, uint64_t saved)
{
	(void)s;
	(void)saved;
}

BENCH_LOOP void bench_arch_spin(unsigned long iters)
{
	unsigned long x = 0;

	if (!iters)
		return;
	__asm__ volatile("1: add $1, %0\n\t"
			 "dec %1\n\t"
			 "jnz 1b"
			 : "+r"(x), "+r"(iters)
			 :
			 : "cc");
}

const char *bench_arch_describe(const struct kvm_guest_debug *d)
{
	static char b[160];

	snprintf(b, sizeof(b), "control %#x dr0 %#llx dr7 %#llx", d->control,
		 (unsigned long long)d->arch.debugreg[0], (unsigned long long)d->arch.debugreg[7]);
	return b;
}
