/* SPDX-License-Identifier: MIT */
/*
 * x86-64 ioctl glue (x86-64 hosts only): struct kvm_guest_debug from the
 * arch-neutral state, exits into struct kvmdbg_exit, RFLAGS.RF, and the
 * re-injection of the guest's own #DB/#BP.
 */
#include <cpuid.h>
#include <errno.h>
#include <string.h>

#include <linux/kvm.h>

#include "arch/x86/regs.h"
#include "kvmdbg-int.h"

/* What kernels before KVM_CAP_SET_GUEST_DEBUG2 accepted on x86. */
#define X86_DEBUG_FLAGS_DEFAULT                                                                \
	(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_SW_BP |            \
	 KVM_GUESTDBG_USE_HW_BP | KVM_GUESTDBG_INJECT_DB | KVM_GUESTDBG_INJECT_BP)

static int x86_probe(void *ctx, int fd, struct kvmdbg_caps *c)
{
	int r = kvmdbg_probe_debug_caps(fd, KVMDBG_ARCH_X86_64, X86_DEBUG_FLAGS_DEFAULT, c);
	uint64_t flags;

	(void)ctx;
	if (r <= 0)
		return r;
	flags = c->debug_flags;
	c->hw_debug = !!(flags & KVM_GUESTDBG_USE_HW_BP);
	c->block_irq = !!(flags & KVM_GUESTDBG_BLOCKIRQ);
	c->inject_db = !!(flags & KVM_GUESTDBG_INJECT_DB);
	c->inject_bp = !!(flags & KVM_GUESTDBG_INJECT_BP);
	/* DR0-DR3 are architectural: four slots shared by both kinds. */
	c->hw_breakpoints = c->hw_debug ? 4 : 0;
	c->hw_watchpoints = c->hw_debug ? 4 : 0;
	c->shared_slots = 1;
	c->max_watch_len = 8;
	r = kvmdbg_check_ext(fd, KVM_CAP_DEBUGREGS);
	if (r < 0)
		return r;
	c->guest_state = r > 0;
	return 0;
}

static int x86_probe_guest(void *ctx, int vcpu_fd, struct kvmdbg_guest_caps *c)
{
	struct kvm_debugregs dr;
	int r;

	(void)ctx;
	/* Prove the fd is a vCPU: the guest's registers are readable. */
	r = kvmdbg_ioctl_chk(vcpu_fd, KVM_GET_DEBUGREGS, &dr);
	if (r < 0)
		return r;
	memset((char *)c + sizeof(c->sz), 0, sizeof(*c) - sizeof(c->sz));
	c->breakpoints = 4;
	c->watchpoints = 4;
	c->context_cmps = 0;
	c->shared_slots = 1;
	return 0;
}

/* KVM_SET_GUEST_DEBUG, built twice (the ops' and the software
 * breakpoint's region: kvmdbg_host_set_guest_debug_sw). */
static inline __attribute__((always_inline)) int
set_guest_debug(void *ctx, int vcpu_fd, uint32_t ctl, const struct kvmdbg_hwstate *hw, uint32_t on)
{
	struct kvm_guest_debug dbg;
	uint64_t dr7 = DR7_FIXED_1;

	memset(&dbg, 0, sizeof(dbg));
	if (ctl & KVMDBG_CTL_ENABLE)
		dbg.control |= KVM_GUESTDBG_ENABLE;
	if (ctl & KVMDBG_CTL_STEP)
		dbg.control |= KVM_GUESTDBG_SINGLESTEP;
	if (ctl & KVMDBG_CTL_SW_BP)
		dbg.control |= KVM_GUESTDBG_USE_SW_BP;
	if (ctl & KVMDBG_CTL_HW)
		dbg.control |= KVM_GUESTDBG_USE_HW_BP;
	if (ctl & KVMDBG_CTL_BLOCKIRQ)
		dbg.control |= KVM_GUESTDBG_BLOCKIRQ;
	if (ctl & KVMDBG_CTL_INJECT_DB)
		dbg.control |= KVM_GUESTDBG_INJECT_DB;
	if (ctl & KVMDBG_CTL_INJECT_BP)
		dbg.control |= KVM_GUESTDBG_INJECT_BP;

	/* DR0-DR3: the enabled slots of the breakpoint pool (the only one). */
	KVMDBG_FOR_EACH_SLOT(on & 0xf, pool, i) {
		const struct kvmdbg_hwslot *s = &hw->slot[pool][i];

		dbg.arch.debugreg[i] = s->value;
		/* G bit (global enable: survives guest task switches), and the
		 * slot's RW/LEN nibble. */
		dr7 |= DR7_G(i);
		dr7 |= (s->ctrl & 0xf) << DR7_CTRL_SHIFT(i);
		if (s->ctrl & 0x3)
			dr7 |= DR7_GE; /* exact data breakpoints */
	}
	/* Overlay: every guest MOV DR exits to userspace with DR6.BD. */
	if (ctl & KVMDBG_CTL_GD)
		dr7 |= DR7_GD;
	dbg.arch.debugreg[7] = dr7;
	return kvmdbg_ioctl_in_chk(ctx, vcpu_fd, KVM_SET_GUEST_DEBUG, &dbg);
}

KVMDBG_HOST_SET_GUEST_DEBUG(set_guest_debug)

int kvmdbg_host_read_exit(void *ctx, int vcpu_fd, const struct kvm_run *run, bool step_pc,
			  struct kvmdbg_exit *ex)
{
	(void)ctx;
	(void)vcpu_fd;
	(void)step_pc; /* the PC is in kvm_run: no ioctl to save */
	kvmdbg_x86_exit_from_run(run, ex);
	return 0;
}

static int x86_get_pc(void *ctx, int vcpu_fd, uint64_t *pc)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	int r = kvmdbg_ioctl_in_chk(ctx, vcpu_fd, KVM_GET_REGS, &regs);

	if (r < 0)
		return r;
	r = kvmdbg_ioctl_in_chk(ctx, vcpu_fd, KVM_GET_SREGS, &sregs);
	if (r < 0)
		return r;
	/* The linear RIP, as KVM reports in debug exits. */
	*pc = regs.rip + (sregs.cs.l ? 0 : sregs.cs.base);
	return 0;
}

static KVMDBG_HOT int x86_set_resume_flag(void *ctx, int vcpu_fd)
{
	struct kvm_regs regs;
	int r = kvmdbg_ioctl_in_chk(ctx, vcpu_fd, KVM_GET_REGS, &regs);

	if (r < 0)
		return r;
	regs.rflags |= RFLAGS_RF;
	r = kvmdbg_ioctl_in_chk(ctx, vcpu_fd, KVM_SET_REGS, &regs);
	return r < 0 ? r : 0;
}

static int x86_inject(void *ctx, int vcpu_fd, const struct kvmdbg_reinject *ri, uint32_t *ctl)
{
	struct kvm_debugregs dr;
	int r;

	*ctl = 0;
	if (ri->exception == 3) {
		*ctl = KVMDBG_CTL_INJECT_BP;
		return 0;
	}
	/* #DB: the guest's handler reads DR6, so give it the guest's bits
	 * (architectural polarity: active-low bits 1 when inactive) first. */
	r = kvmdbg_ioctl_in_chk(ctx, vcpu_fd, KVM_GET_DEBUGREGS, &dr);
	if (r < 0)
		return r;
	/* As the CPU (and KVM's own #DB payload delivery) does: B0-B3 describe
	 * this exception only, BD/BS/BT are sticky, active-low bits flip. */
	dr.dr6 &= ~0xfull;
	dr.dr6 |= DR6_ACTIVE_LOW;
	dr.dr6 |= ri->dr6;
	dr.dr6 ^= ri->dr6 & DR6_ACTIVE_LOW;
	r = kvmdbg_ioctl_in_chk(ctx, vcpu_fd, KVM_SET_DEBUGREGS, &dr);
	if (r < 0)
		return r;
	*ctl = KVMDBG_CTL_INJECT_DB;
	return 0;
}

static int x86_read_guest_regs(void *ctx, int vcpu_fd, struct kvmdbg_guest_regs *g)
{
	struct kvm_debugregs dr;
	int r = kvmdbg_ioctl_in_chk(ctx, vcpu_fd, KVM_GET_DEBUGREGS, &dr);

	if (r < 0)
		return r;
	memset(g, 0, sizeof(*g));
	g->nr[KVMDBG_POOL_BP] = 4;
	for (unsigned int i = 0; i < 4; i++)
		g->value[KVMDBG_POOL_BP][i] = dr.db[i];
	g->dr6 = dr.dr6;
	g->dr7 = dr.dr7;
	return 0;
}

/*
 * Where KVM reports a guest ICEBP's #DB: VMX exits on the exception before
 * the instruction completes (interruption type "privileged software
 * exception", RIP on the ICEBP), SVM after it. KVM's vendor module is the
 * CPU's: AMD and Hygon run SVM, every other x86-64 vendor VMX.
 */
static bool x86_icebp_exit_on_insn(void *ctx)
{
	unsigned int eax, ebx, ecx, edx;

	(void)ctx;
	if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx))
		return true;
	/* "AuthenticAMD", "HygonGenuine": EBX holds the first four bytes. */
	return !(ebx == 0x68747541 /* Auth */ || ebx == 0x6f677948 /* Hygo */);
}

static int x86_advance_pc(void *ctx, int vcpu_fd, unsigned int len)
{
	struct kvm_regs regs;
	int r = kvmdbg_ioctl_in_chk(ctx, vcpu_fd, KVM_GET_REGS, &regs);

	if (r < 0)
		return r;
	regs.rip += len;
	r = kvmdbg_ioctl_in_chk(ctx, vcpu_fd, KVM_SET_REGS, &regs);
	return r < 0 ? r : 0;
}

const struct kvmdbg_host_ops kvmdbg_host = {
	.arch = &kvmdbg_x86_ops,
	.probe = x86_probe,
	.probe_guest = x86_probe_guest,
	.verified = &kvmdbg_probe_checks,
	.set_guest_debug = kvmdbg_host_set_guest_debug,
	.read_exit = kvmdbg_host_read_exit,
	.exit_in_run = true, /* handle_exit reads as kvmdbg_host_read_exit, inline */
	.get_pc = x86_get_pc,
	.set_resume_flag = x86_set_resume_flag,
	.mask_irqs = NULL,
	.restore_irqs = NULL,
	.inject = x86_inject,
	.read_guest_regs = x86_read_guest_regs,
	.icebp_exit_on_insn = x86_icebp_exit_on_insn,
	.advance_pc = x86_advance_pc,
};
