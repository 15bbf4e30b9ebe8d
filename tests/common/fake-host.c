/* SPDX-License-Identifier: MIT */
/* A fake KVM with fault injection: see fake-host.h. */
#include <errno.h>
#include <string.h>

#include "fake-host.h"

struct fh_state fh;

static uint8_t mem_buf[FH_MEM_MAX], orig_buf[FH_MEM_MAX];

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
static int fault(enum fh_site site)
{
	fh.site_calls[site]++;
	fh.calls++;
	if (!fh.fail_at)
		return 0;
	if (fh.fail_one_site ? site != fh.fail_site || ++fh.fail_site_calls != fh.fail_at
			     : fh.calls != fh.fail_at)
		return 0;
	fh.failed_site = (int)site;
	return -fh.fail_errno;
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

void fh_mem_resize(size_t size)
{
	if (size > FH_MEM_MAX)
		size = FH_MEM_MAX;
	for (size_t i = 0; i < size; i++)
		fh.mem[i] = (uint8_t)(i * 7 + 3); /* 0xcc at i = 175, 431, ... */
	memcpy(fh.orig, fh.mem, size);
	fh.mem_size = size;
}

void fh_reset(enum kvmdbg_arch arch)
{
	memset(&fh, 0, sizeof(fh));
	fh.arch = arch;
	fh.failed_site = -1;
	fh.mem = mem_buf;
	fh.orig = orig_buf;
	fh_mem_resize(FH_MEM_SIZE);
	for (int i = 0; i < FH_MAX_VCPUS; i++)
		fh.v[i].daif = 0x3c0;

	fh.caps.sz = sizeof(fh.caps);
	fh.caps.arch = arch;
	fh.caps.guest_debug = 1;
	fh.caps.single_step = fh.caps.sw_breakpoints = fh.caps.hw_debug = 1;
	fh.caps.guest_state = 1;
	fh.guest.nr[KVMDBG_POOL_BP] = arch == KVMDBG_ARCH_X86_64 ? 4 : 6;
	fh.guest.nr[KVMDBG_POOL_WP] = arch == KVMDBG_ARCH_X86_64 ? 0 : 4;
	fh.guest.dr6 = 0xffff0ff0ull;
	fh.guest.dr7 = 0x400;
	if (arch == KVMDBG_ARCH_X86_64) {
		fh.caps.hw_breakpoints = fh.caps.hw_watchpoints = 4;
		fh.caps.shared_slots = 1;
		fh.caps.block_irq = fh.caps.inject_db = fh.caps.inject_bp = 1;
		fh.caps.max_watch_len = 8;
	} else {
		fh.caps.hw_breakpoints = 6;
		fh.caps.hw_watchpoints = 4;
		fh.caps.max_watch_len = 1ull << 31;
	}
}

bool fh_mem_is_orig(void)
{
	return memcmp(fh.mem, fh.orig, fh.mem_size) == 0;
}

/* ---- memory callbacks ---- */

static int mem_read(void *ctx, uint64_t gva, void *buf, size_t len)
{
	int r = fault(FH_MEM_READ);

	(void)ctx;
	if (r)
		return r;
	if (gva > fh.mem_size || len > fh.mem_size - gva)
		return -EFAULT;
	memcpy(buf, fh.mem + gva, len);
	return 0;
}

static int mem_write(void *ctx, uint64_t gva, const void *buf, size_t len)
{
	int r = fault(FH_MEM_WRITE);

	(void)ctx;
	if (gva > fh.mem_size || len > fh.mem_size - gva)
		return -EFAULT;
	if (r) {
		/* A write that failed half-way. */
		if (fh.fail_partial && len)
			memcpy(fh.mem + gva, buf, 1);
		return r;
	}
	memcpy(fh.mem + gva, buf, len);
	return 0;
}

const struct kvmdbg_mem_ops fh_mem_ops = {.read = mem_read, .write = mem_write};

/* ---- host ops ---- */

static struct fh_vcpu *vcpu(int fd)
{
	return fd >= 0 && fd < FH_MAX_VCPUS ? &fh.v[fd] : NULL;
}

/* A fallible call at site on vCPU fd: counted (and maybe failed) first,
 * then *v; -EBADF for an unknown fd, else the injected error or 0. */
static int enter(int fd, enum fh_site site, struct fh_vcpu **v)
{
	int r = fault(site);

	*v = vcpu(fd);
	return *v ? r : -EBADF;
}

static int probe(int fd, struct kvmdbg_caps *c)
{
	int r = fault(FH_PROBE);
	size_t sz = c->sz;

	(void)fd;
	if (r)
		return r;
	memcpy(c, &fh.caps, sizeof(*c));
	c->sz = sz;
	return 0;
}

static int set_guest_debug(int fd, uint32_t ctl, const struct kvmdbg_hwstate *hw)
{
	struct fh_vcpu *v;
	int r = enter(fd, FH_SET_GUEST_DEBUG, &v);

	if (r)
		return r;
	v->set_calls++;
	v->ctl = ctl;
	v->hw = *hw;
	return 0;
}

static int read_exit(int fd, const struct kvm_run *run, struct kvmdbg_exit *ex)
{
	struct fh_vcpu *v = vcpu(fd);
	int r;

	(void)run;
	if (!v)
		return -EBADF;
	/* x86 reads the exit from kvm_run alone: no ioctl, nothing to fail. */
	if (fh.arch == KVMDBG_ARCH_ARM64) {
		r = fault(FH_READ_EXIT);
		if (r)
			return r;
	}
	*ex = v->exit;
	return 0;
}

static int get_pc(int fd, uint64_t *pc)
{
	struct fh_vcpu *v;
	int r = enter(fd, FH_GET_PC, &v);

	if (r)
		return r;
	*pc = v->pc;
	return 0;
}

static int set_rf(int fd)
{
	struct fh_vcpu *v;
	int r = enter(fd, FH_SET_RF, &v);

	if (r)
		return r;
	v->rf = true;
	v->rf_calls++;
	return 0;
}

static int mask_irqs(int fd, uint64_t *saved)
{
	struct fh_vcpu *v;
	int r = enter(fd, FH_MASK_IRQS, &v);

	if (r)
		return r;
	*saved = v->daif;
	v->daif = 0x3c0;
	v->masked++;
	v->mask_calls++;
	return 0;
}

static int restore_irqs(int fd, uint64_t saved)
{
	struct fh_vcpu *v;
	int r = enter(fd, FH_RESTORE_IRQS, &v);

	if (r)
		return r;
	v->daif = saved;
	if (v->masked)
		v->masked--;
	v->restore_calls++;
	return 0;
}

static int inject(int fd, const struct kvmdbg_reinject *ri, uint32_t *ctl)
{
	struct fh_vcpu *v;
	int r = enter(fd, FH_INJECT, &v);

	*ctl = 0;
	if (r)
		return r;
	v->inject_calls++;
	v->injected = *ri;
	if (fh.arch == KVMDBG_ARCH_X86_64)
		*ctl = ri->exception == 3 ? KVMDBG_CTL_INJECT_BP : KVMDBG_CTL_INJECT_DB;
	return 0;
}

static int read_guest_regs(int fd, struct kvmdbg_guest_regs *g)
{
	struct fh_vcpu *v;
	int r = enter(fd, FH_READ_GUEST_REGS, &v);

	if (r)
		return r;
	fh.guest_reads++;
	v->guest_reads++;
	*g = fh.guest;
	return 0;
}

static bool icebp_exit_on_insn(void)
{
	return fh.icebp_on_insn;
}

static int advance_pc(int fd, unsigned int len)
{
	struct fh_vcpu *v;
	int r = enter(fd, FH_ADVANCE_PC, &v);

	if (r)
		return r;
	v->pc += len;
	v->advance_calls++;
	return 0;
}

static const struct kvmdbg_host_ops host_x86 = {
	.arch = &kvmdbg_x86_ops,
	.probe = probe,
	.set_guest_debug = set_guest_debug,
	.read_exit = read_exit,
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
};

const struct kvmdbg_host_ops *fh_host(void)
{
	if (fh.arch == KVMDBG_ARCH_ARM64)
		return &host_arm64;
	return fh.no_rf_op ? &host_x86_no_rf : &host_x86;
}

bool fh_swbp_unreadable(const struct kvmdbg_exit *ex, bool x86)
{
	uint32_t ec = (uint32_t)(ex->esr >> 26) & 0x3f;
	/* arm64: only our own immediate needs a look at memory. */
	bool swbp = x86 ? ex->exception == 3
			: (ec == 0x3c || ec == 0x38) && (ex->esr & 0xffff) == kvmdbg_arm64_ops.sw_imm;

	return swbp && (ex->pc >= fh.mem_size || fh.mem_size - ex->pc < (x86 ? 1 : 4));
}
