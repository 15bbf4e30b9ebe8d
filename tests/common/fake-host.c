/* SPDX-License-Identifier: MIT */
/* A fake KVM with fault injection: see fake-host.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arm64/regs.h"
#include "arch/x86/regs.h"
#include "fake-host.h"

struct fh_state fh;

const char *const fh_site_names[FH_NR_SITES] = {
	[FH_PROBE] = "probe",
	[FH_SET_GUEST_DEBUG] = "set_guest_debug",
	[FH_READ_EXIT] = "read_exit",
	[FH_GET_PC] = "get_pc",
	[FH_SET_RF] = "set_resume_flag",
	[FH_MASK_IRQS] = "mask_irqs",
	[FH_RESTORE_IRQS] = "restore_irqs",
	[FH_INJECT] = "inject",
	[FH_READ_GUEST_REGS] = "read_guest_regs",
	[FH_ADVANCE_PC] = "advance_pc",
	[FH_MEM_READ] = "mem_read",
	[FH_MEM_WRITE] = "mem_write",
};

/* Count a fallible call; the armed one fails. */
static int fault(struct fh_state *s, enum fh_site site)
{
	s->site_calls[site]++;
	s->calls++;
	if (!s->fail_at)
		return 0;
	if (s->fail_one_site ? site != s->fail_site || ++s->fail_site_calls != s->fail_at
			     : s->calls != s->fail_at)
		return 0;
	s->failed_site = (int)site;
	return -s->fail_errno;
}

void fh_fault_arm(unsigned long nth, int err)
{
	fh.calls = 0;
	fh.fail_at = nth;
	fh.fail_errno = err;
	fh.failed_site = -1;
	fh.fail_one_site = false;
}

void fh_fault_arm_site(enum fh_site site, unsigned long nth, int err)
{
	fh_fault_arm(nth, err);
	fh.fail_one_site = nth != 0;
	fh.fail_site = site;
	fh.fail_site_calls = 0;
}

void fh_state_mem_resize(struct fh_state *s, size_t size)
{
	if (size > FH_MEM_MAX)
		size = FH_MEM_MAX;
	for (size_t i = 0; i < size; i++)
		s->mem[i] = (uint8_t)(i * 7 + 3); /* 0xcc at i = 175, 431, ... */
	memcpy(s->orig, s->mem, size);
	s->mem_size = size;
}

void fh_mem_resize(size_t size)
{
	fh_state_mem_resize(&fh, size);
}

void fh_state_reset(struct fh_state *s, enum kvmdbg_arch arch)
{
	memset(s, 0, sizeof(*s));
	s->arch = arch;
	s->failed_site = -1;
	s->mem = s->mem_buf;
	s->orig = s->orig_buf;
	fh_state_mem_resize(s, FH_MEM_SIZE);
	for (int i = 0; i < FH_MAX_VCPUS; i++)
		s->v[i].daif = PS_DAIF;

	s->caps.sz = sizeof(s->caps);
	s->caps.arch = arch;
	s->caps.guest_debug = 1;
	s->caps.single_step = s->caps.sw_breakpoints = s->caps.hw_debug = 1;
	s->caps.guest_state = 1;
	s->guest.nr[KVMDBG_POOL_BP] = arch == KVMDBG_ARCH_X86_64 ? 4 : 6;
	s->guest.nr[KVMDBG_POOL_WP] = arch == KVMDBG_ARCH_X86_64 ? 0 : 4;
	s->guest.dr6 = DR6_ACTIVE_LOW;
	s->guest.dr7 = DR7_FIXED_1;
	if (arch == KVMDBG_ARCH_X86_64) {
		s->caps.hw_breakpoints = s->caps.hw_watchpoints = 4;
		s->caps.shared_slots = 1;
		s->caps.block_irq = s->caps.inject_db = s->caps.inject_bp = 1;
		s->caps.max_watch_len = 8;
	} else {
		s->caps.hw_breakpoints = 6;
		s->caps.hw_watchpoints = 4;
		s->caps.max_watch_len = 1ull << 31;
	}
}

void fh_reset(enum kvmdbg_arch arch)
{
	fh_state_reset(&fh, arch);
}

bool fh_mem_is_orig(void)
{
	return memcmp(fh.mem, fh.orig, fh.mem_size) == 0;
}

/* ---- memory callbacks ---- */

static int mem_read(void *ctx, uint64_t gva, void *buf, size_t len)
{
	struct fh_state *s = ctx;
	int r = fault(s, FH_MEM_READ);

	if (r)
		return r;
	if (gva > s->mem_size || len > s->mem_size - gva)
		return -EFAULT;
	memcpy(buf, s->mem + gva, len);
	return 0;
}

static int mem_write(void *ctx, uint64_t gva, const void *buf, size_t len)
{
	struct fh_state *s = ctx;
	int r = fault(s, FH_MEM_WRITE);

	if (gva > s->mem_size || len > s->mem_size - gva)
		return -EFAULT;
	if (r) {
		/* A write that failed half-way. */
		if (s->fail_partial && len)
			memcpy(s->mem + gva, buf, 1);
		return r;
	}
	memcpy(s->mem + gva, buf, len);
	return 0;
}

const struct kvmdbg_mem_ops fh_mem_ops = {.read = mem_read, .write = mem_write};

/* ---- host ops ---- */

static struct fh_vcpu *vcpu(struct fh_state *s, int fd)
{
	return fd >= 0 && fd < FH_MAX_VCPUS ? &s->v[fd] : NULL;
}

/* A fallible call at site on vCPU fd: counted (and maybe failed) first,
 * then *v; -EBADF for an unknown fd, else the injected error or 0. */
static int enter(struct fh_state *s, int fd, enum fh_site site, struct fh_vcpu **v)
{
	int r = fault(s, site);

	*v = vcpu(s, fd);
	return *v ? r : -EBADF;
}

static int probe(void *ctx, int fd, struct kvmdbg_caps *c)
{
	struct fh_state *s = ctx;
	int r = fault(s, FH_PROBE);
	size_t sz = c->sz;

	(void)fd;
	if (r)
		return r;
	memcpy(c, &s->caps, sizeof(*c));
	c->sz = sz;
	return 0;
}

static int set_guest_debug(void *ctx, int fd, uint32_t ctl, const struct kvmdbg_hwstate *hw,
			   uint32_t on)
{
	struct fh_state *s = ctx;
	struct fh_vcpu *v;
	int r = enter(s, fd, FH_SET_GUEST_DEBUG, &v);

	if (r)
		return r;
#ifndef FH_NO_ON_CHECK
	/* The glue reads only the slots in on (lib/arch/<arch>/kvm.c): a
	 * caller that gave another mask would hand KVM another state. Not in
	 * bench-count, which counts the library's instructions and the fake's
	 * as they were. */
	if (on != kvmdbg_hw_on(hw)) {
		fprintf(stderr, "fake host: set_guest_debug with on %#x, enabled slots %#x\n", on,
			kvmdbg_hw_on(hw));
		abort();
	}
#else
	(void)on;
#endif
	v->set_calls++;
	v->arm64_ioctls++; /* KVM_SET_GUEST_DEBUG */
	v->ctl = ctl;
	v->hw = *hw;
	return 0;
}

static int read_exit(void *ctx, int fd, const struct kvm_run *run, bool step_pc,
		     struct kvmdbg_exit *ex)
{
	struct fh_state *s = ctx;
	struct fh_vcpu *v = vcpu(s, fd);
	int r;

	(void)run;
	if (!v)
		return -EBADF;
	/* x86 reads the exit from kvm_run alone: no ioctl, nothing to fail.
	 * arm64 reads the PC (KVM_GET_ONE_REG), but not a single-step exit's
	 * that the library will not look at, as lib/arch/arm64/kvm.c. */
	if (s->arch == KVMDBG_ARCH_ARM64) {
		if (!step_pc && (ESR_EC(v->exit.esr) == EC_SOFTSTP_LOW ||
				 ESR_EC(v->exit.esr) == EC_SOFTSTP_CUR)) {
			*ex = v->exit;
			ex->pc = 0;
			ex->pc_unread = true;
			v->pc_unread_exits++;
			return 0;
		}
		r = fault(s, FH_READ_EXIT);
		if (r)
			return r;
		v->arm64_ioctls++;
	}
	*ex = v->exit;
	return 0;
}

static int get_pc(void *ctx, int fd, uint64_t *pc)
{
	struct fh_state *s = ctx;
	struct fh_vcpu *v;
	int r = enter(s, fd, FH_GET_PC, &v);

	if (r)
		return r;
	*pc = v->pc;
	v->arm64_ioctls++; /* KVM_GET_ONE_REG */
	return 0;
}

static int set_rf(void *ctx, int fd)
{
	struct fh_state *s = ctx;
	struct fh_vcpu *v;
	int r = enter(s, fd, FH_SET_RF, &v);

	if (r)
		return r;
	v->rf = true;
	v->rf_calls++;
	return 0;
}

/* The fake's saved value: the guest's DAIF (with what the instruction sets)
 * and lib/arch/arm64/kvm.c's KEEP and WHOLE. */
#define FH_SAVED_KEEP  (1ull << 60)
#define FH_SAVED_WHOLE (1ull << 61)

static int mask_irqs(void *ctx, int fd, uint64_t pc,
		     bool (*insn)(void *arg, uint64_t pc, uint32_t *word), void *arg,
		     uint64_t *saved)
{
	struct fh_state *s = ctx;
	struct fh_vcpu *v;
	uint64_t set = 0;
	uint32_t word;
	int whole = 0, r = enter(s, fd, FH_MASK_IRQS, &v);

	if (r)
		return r;
	/* PSTATE read; written unless A, I and F are masked already. As
	 * lib/arch/arm64/kvm.c: A, I and F set, D left alone, the bits the
	 * instruction sets saved as the guest's, the instruction read only
	 * where the mask changes anything. */
	v->arm64_ioctls += (v->daif & PS_AIF) == PS_AIF ? 1 : 2;
	v->mask_pc = pc;
	v->mask_insn_known = (v->daif & PS_AIF) != PS_AIF && insn && insn(arg, pc, &word);
	if (v->mask_insn_known) {
		v->mask_insn = word;
		arm64_insn_daif(word, &set, &whole);
	}
	*saved = (v->daif | set) | (whole ? FH_SAVED_WHOLE : 0) |
		 ((v->daif & PS_AIF) == PS_AIF ? FH_SAVED_KEEP : 0);
	v->daif |= PS_AIF;
	v->masked++;
	v->mask_calls++;
	return 0;
}

static int restore_irqs(void *ctx, int fd, uint64_t saved)
{
	struct fh_state *s = ctx;
	struct fh_vcpu *v;
	int r = enter(s, fd, FH_RESTORE_IRQS, &v);

	if (r)
		return r;
	/* Nothing when the guest had A, I and F masked; else PSTATE read and
	 * written (no exception entered by the step: no PC read). As
	 * lib/arch/arm64/kvm.c without an exception entered: A, I or F that
	 * the stepped instruction cleared (a test changes daif between the
	 * step's prepare and its exit as the instruction would) stay clear,
	 * the others are as saved; all three the instruction's after one that
	 * writes them all (WHOLE); D is as the step left it. */
	if (!(saved & FH_SAVED_KEEP)) {
		v->arm64_ioctls += 2;
		if (!(saved & FH_SAVED_WHOLE))
			v->daif = (v->daif & ~PS_AIF) | (v->daif & saved & PS_AIF);
	}
	if (v->masked)
		v->masked--;
	v->restore_calls++;
	return 0;
}

static int inject(void *ctx, int fd, const struct kvmdbg_reinject *ri, uint32_t *ctl)
{
	struct fh_state *s = ctx;
	struct fh_vcpu *v;
	int r = enter(s, fd, FH_INJECT, &v);

	*ctl = 0;
	if (r)
		return r;
	v->inject_calls++;
	v->injected = *ri;
	if (s->arch == KVMDBG_ARCH_X86_64)
		*ctl = ri->exception == 3 ? KVMDBG_CTL_INJECT_BP : KVMDBG_CTL_INJECT_DB;
	return 0;
}

static int read_guest_regs(void *ctx, int fd, struct kvmdbg_guest_regs *g)
{
	struct fh_state *s = ctx;
	struct fh_vcpu *v;
	int r = enter(s, fd, FH_READ_GUEST_REGS, &v);

	if (r)
		return r;
	s->guest_reads++;
	v->guest_reads++;
	*g = s->guest;
	return 0;
}

/* As lib/arch/arm64/kvm.c: the guest's MDSCR_EL1.SS, the step enabled at
 * its EL (EL1: KDE set, PSTATE.D clear), and the vCPU at ELR_EL1 with
 * SPSR_EL1 of its mode (EL0t, EL1h) (fails as a KVM_GET_ONE_REG, site
 * get_pc). */
static int guest_step_armed(void *ctx, int fd, const struct kvmdbg_guest_regs *g, uint64_t pc,
			    bool *armed)
{
	struct fh_state *s = ctx;
	struct fh_vcpu *v = vcpu(s, fd);
	int r;

	if (!v)
		return -EBADF;
	*armed = false;
	if (!(g->mdscr & MDSCR_SS))
		return 0;
	r = fault(s, FH_GET_PC);
	if (r)
		return r;
	v->step_armed_calls++;
	*armed = (v->el == 0 || ((g->mdscr & MDSCR_KDE) && !(v->daif & PS_D))) &&
		 v->elr_el1 == pc &&
		 (v->spsr_el1 & PS_MODE_MASK) == (v->el ? PS_MODE_EL1h : PS_MODE_EL0t);
	return 0;
}

static bool icebp_exit_on_insn(void *ctx)
{
	const struct fh_state *s = ctx;

	return s->icebp_on_insn;
}

static int advance_pc(void *ctx, int fd, unsigned int len)
{
	struct fh_state *s = ctx;
	struct fh_vcpu *v;
	int r = enter(s, fd, FH_ADVANCE_PC, &v);

	if (r)
		return r;
	v->pc += len;
	v->advance_calls++;
	return 0;
}

/* FH_X86_EXIT_IN_RUN (bench-count's copy): the library reads an x86 exit
 * from kvm_run itself, inline, as with lib/arch/x86/kvm.c; the caller fills
 * kvm_run's debug.arch as KVM does. Elsewhere the tests set the exit in
 * fh_vcpu, read by the read_exit op. */
#ifdef FH_X86_EXIT_IN_RUN
#define FH_X86_IN_RUN true
#else
#define FH_X86_IN_RUN false
#endif

static const struct kvmdbg_host_ops host_x86 = {
	.arch = &kvmdbg_x86_ops,
	.probe = probe,
	.set_guest_debug = set_guest_debug,
	.read_exit = read_exit,
	.exit_in_run = FH_X86_IN_RUN,
	.get_pc = get_pc,
	.set_resume_flag = set_rf,
	.inject = inject,
	.read_guest_regs = read_guest_regs,
	.icebp_exit_on_insn = icebp_exit_on_insn,
	.advance_pc = advance_pc,
};

static const struct kvmdbg_host_ops host_x86_no_rf = {
	.arch = &kvmdbg_x86_ops,
	.probe = probe,
	.set_guest_debug = set_guest_debug,
	.read_exit = read_exit,
	.exit_in_run = FH_X86_IN_RUN,
	.get_pc = get_pc,
	.inject = inject,
	.read_guest_regs = read_guest_regs,
	.icebp_exit_on_insn = icebp_exit_on_insn,
	.advance_pc = advance_pc,
};

static const struct kvmdbg_host_ops host_arm64 = {
	.arch = &kvmdbg_arm64_ops,
	.probe = probe,
	.set_guest_debug = set_guest_debug,
	.read_exit = read_exit,
	.get_pc = get_pc,
	.mask_irqs = mask_irqs,
	.restore_irqs = restore_irqs,
	.inject = inject,
	.inject_emulated = true,
	.read_guest_regs = read_guest_regs,
	.guest_step_armed = guest_step_armed,
};

const struct kvmdbg_host_ops *fh_state_host(const struct fh_state *s)
{
	if (s->arch == KVMDBG_ARCH_ARM64)
		return &host_arm64;
	return s->no_rf_op ? &host_x86_no_rf : &host_x86;
}

const struct kvmdbg_host_ops *fh_host(void)
{
	return fh_state_host(&fh);
}

bool fh_swbp_unreadable(const struct kvmdbg_exit *ex, bool x86)
{
	uint32_t ec = (uint32_t)ESR_EC(ex->esr);
	/* arm64: only our own immediate needs a look at memory. */
	bool swbp = x86 ? ex->exception == X86_VEC_BP :
			  (ec == EC_BRK64 || ec == EC_BKPT32) &&
				    (ex->esr & ESR_ISS_COMMENT) == kvmdbg_arm64_ops.sw_imm;

	return swbp && (ex->pc >= fh.mem_size || fh.mem_size - ex->pc < (x86 ? 1 : 4));
}
