// SPDX-License-Identifier: MIT
/*
 * The KVM layer (<kvmdbg/gdb-kvm.h>): struct kvmdbg_gdb_ops implemented on
 * KVM and libkvmdbg for the host's architecture. The VMM supplies vCPU fds,
 * run areas, its libkvmdbg objects, guest-physical memory and a way to run
 * and kick its vCPU threads; everything between them and gdb is here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include <kvmdbg/gdb-kvm.h>

#include "gdb-int.h"

#define MAX_VCPUS 64

#if defined(__x86_64__)
#define HOST_ARCH KVMDBG_GDB_ARCH_X86_64
#elif defined(__aarch64__)
#define HOST_ARCH KVMDBG_GDB_ARCH_AARCH64
#else
#error "libkvmdbg-gdb's KVM layer: x86-64 or arm64 hosts only"
#endif

struct kvmdbg_gdb_kvm {
	struct kvmdbg_gdb_kvm_vm vm;
	int fds[MAX_VCPUS];
	struct kvm_run *runs[MAX_VCPUS];
	struct kvmdbg_vcpu *vcpus[MAX_VCPUS];
	void *ctx;
	struct kvmdbg_gdb *server;
	bool phys; /* monitor phys on: memory by guest-physical address */
	int notify[2]; /* readable when nrunning dropped to 0 */

	pthread_mutex_t lock;
	unsigned int nrunning;
	bool stopping; /* a vCPU stopped first (or Ctrl-C): the others are kicked */
	int first;     /* the vCPU that stopped first, -1 */
	struct {
		bool running, pending, finished, failed;
		struct kvmdbg_event ev;
	} v[MAX_VCPUS];
};

/* ---- registers: the g layout of regs.c, by name ------------------------ */

/* Where register name (of size bytes) is in b, or NULL when the layout
 * differs (regs.c changed without this file). */
static uint8_t *reg_at(const uint8_t *b, const char *name, unsigned int size)
{
	struct kvmdbg_gdb_reg r = { .sz = sizeof(r) };

	if (kvmdbg_gdb_reg_lookup(HOST_ARCH, name, &r) < 0 || r.size != size)
		return NULL;
	return (uint8_t *)b + r.offset;
}

/* Put v (little-endian, size bytes) at register name; false when absent. */
static bool put(uint8_t *b, const char *name, uint64_t v, unsigned int size)
{
	uint8_t *p = reg_at(b, name, size);

	for (unsigned int i = 0; p && i < size; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p != NULL;
}

#ifdef __x86_64__
/* Read register name of b (x86-64: arm64 reads through its table). */
static bool get(const uint8_t *b, const char *name, __u64 *v, unsigned int size)
{
	const uint8_t *p = reg_at(b, name, size);

	*v = 0;
	for (unsigned int i = 0; p && i < size; i++)
		*v |= (uint64_t)p[i] << (8 * i);
	return p != NULL;
}

static bool put_bytes(uint8_t *b, const char *name, const void *src, unsigned int size)
{
	uint8_t *p = reg_at(b, name, size);

	if (p)
		memcpy(p, src, size);
	return p != NULL;
}

static bool get_bytes(const uint8_t *b, const char *name, void *dst, unsigned int size)
{
	const uint8_t *p = reg_at(b, name, size);

	if (p)
		memcpy(dst, p, size);
	return p != NULL;
}

static const char *const x86_gpr[16] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
					 "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15" };
static const char *const x86_seg[6] = { "cs", "ss", "ds", "es", "fs", "gs" };

/* The linear pc, as libkvmdbg and KVM's debug exits have it: CS base + IP
 * unless CS is a 64-bit code segment (not CR0.PE: between setting PE and the
 * far jump CS keeps its real-mode base). */
static uint64_t linear_pc(const struct kvm_sregs *sr, uint64_t rip)
{
	return sr->cs.l ? rip : (sr->cs.base + rip) & 0xffffffffULL;
}

/* MSR_KERNEL_GS_BASE: read, or write *v. */
static int kernel_gs_base(int fd, __u64 *v, bool write)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} msrs = { .h.nmsrs = 1, .e.index = 0xc0000102 };

	msrs.e.data = write ? *v : 0;
	if (ioctl(fd, write ? KVM_SET_MSRS : KVM_GET_MSRS, &msrs) != 1)
		return -EIO;
	*v = msrs.e.data;
	return 0;
}

/* What the g packet holds, from the kernel: the registers, the special
 * registers, the FPU state and MSR_KERNEL_GS_BASE. */
static int regs_get(int fd, struct kvm_regs *r, struct kvm_sregs *sr, struct kvm_fpu *fpu,
		    __u64 *kgs)
{
	if (ioctl(fd, KVM_GET_REGS, r) < 0 || ioctl(fd, KVM_GET_SREGS, sr) < 0 ||
	    ioctl(fd, KVM_GET_FPU, fpu) < 0)
		return -errno;
	return kernel_gs_base(fd, kgs, false);
}

static int regs_read(int fd, uint8_t *b)
{
	struct kvm_regs r;
	struct kvm_sregs sr;
	struct kvm_fpu fpu;
	const struct kvm_segment *seg[6] = { &sr.cs, &sr.ss, &sr.ds, &sr.es, &sr.fs, &sr.gs };
	__u64 kgs;
	uint16_t ftag = 0;
	bool ok = true;
	char name[8];
	int e;

	e = regs_get(fd, &r, &sr, &fpu, &kgs);
	if (e < 0)
		return e;
	{
		const uint64_t g[16] = { r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp,
					 r.r8,  r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15 };

		for (unsigned int i = 0; i < 16; i++)
			ok &= put(b, x86_gpr[i], g[i], 8);
	}
	ok &= put(b, "rip", linear_pc(&sr, r.rip), 8);
	ok &= put(b, "eflags", r.rflags, 4);
	for (unsigned int i = 0; i < 6; i++)
		ok &= put(b, x86_seg[i], seg[i]->selector, 4);
	for (unsigned int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "st%u", i);
		ok &= put_bytes(b, name, fpu.fpr[i], 10);
		if (!(fpu.ftwx & (1u << i))) /* abridged tag (1 valid) to full (11 empty) */
			ftag |= (uint16_t)(3u << (2 * i));
	}
	ok &= put(b, "fctrl", fpu.fcw, 4) & put(b, "fstat", fpu.fsw, 4) & put(b, "ftag", ftag, 4) &
	      put(b, "fiseg", 0, 4) & put(b, "fioff", (uint32_t)fpu.last_ip, 4) &
	      put(b, "foseg", 0, 4) & put(b, "fooff", (uint32_t)fpu.last_dp, 4) &
	      put(b, "fop", fpu.last_opcode, 4);
	for (unsigned int i = 0; i < 16; i++) {
		snprintf(name, sizeof(name), "xmm%u", i);
		ok &= put_bytes(b, name, fpu.xmm[i], 16);
	}
	ok &= put(b, "mxcsr", fpu.mxcsr, 4) & put(b, "fs_base", sr.fs.base, 8) &
	      put(b, "gs_base", sr.gs.base, 8) & put(b, "cr0", sr.cr0, 8) & put(b, "cr2", sr.cr2, 8) &
	      put(b, "cr3", sr.cr3, 8) & put(b, "cr4", sr.cr4, 8) & put(b, "efer", sr.efer, 8) &
	      put(b, "cr8", sr.cr8, 8) & put(b, "k_gs_base", kgs, 8);
	return ok ? 0 : -EIO;
}

static int regs_write(int fd, const uint8_t *b)
{
	struct kvm_regs r;
	struct kvm_sregs sr, sr0;
	struct kvm_fpu fpu, fpu0;
	__u64 *g[16] = { &r.rax, &r.rbx, &r.rcx, &r.rdx, &r.rsi, &r.rdi, &r.rbp, &r.rsp,
			 &r.r8,  &r.r9,  &r.r10, &r.r11, &r.r12, &r.r13, &r.r14, &r.r15 };
	struct kvm_segment *seg[6] = { &sr.cs, &sr.ss, &sr.ds, &sr.es, &sr.fs, &sr.gs };
	__u64 v, kgs, kgs0;
	bool ok = true;
	char name[8];
	int e;

	e = regs_get(fd, &r, &sr, &fpu, &kgs0);
	if (e < 0)
		return e;
	sr0 = sr;
	fpu0 = fpu;
	for (unsigned int i = 0; i < 16; i++)
		ok &= get(b, x86_gpr[i], g[i], 8);
	ok &= get(b, "rip", &v, 8);
	r.rip = sr.cs.l ? v : (v - sr.cs.base) & (sr.cs.db ? 0xffffffffULL : 0xffffULL);
	ok &= get(b, "eflags", &v, 4);
	r.rflags = v | 2;
	for (unsigned int i = 0; i < 6; i++) {
		ok &= get(b, x86_seg[i], &v, 4);
		if ((uint16_t)v == seg[i]->selector)
			continue;
		if (sr.cr0 & 1)
			return -EINVAL; /* protected mode: would need a descriptor load */
		seg[i]->selector = (uint16_t)v;
		seg[i]->base = (uint64_t)(uint16_t)v << 4; /* real mode */
	}
	for (unsigned int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "st%u", i);
		ok &= get_bytes(b, name, fpu.fpr[i], 10);
	}
	ok &= get(b, "fctrl", &v, 4);
	fpu.fcw = (uint16_t)v;
	ok &= get(b, "fstat", &v, 4);
	fpu.fsw = (uint16_t)v;
	ok &= get(b, "fop", &v, 4);
	fpu.last_opcode = (uint16_t)v;
	for (unsigned int i = 0; i < 16; i++) {
		snprintf(name, sizeof(name), "xmm%u", i);
		ok &= get_bytes(b, name, fpu.xmm[i], 16);
	}
	ok &= get(b, "mxcsr", &v, 4);
	fpu.mxcsr = (uint32_t)v;
	ok &= get(b, "fs_base", &sr.fs.base, 8) & get(b, "gs_base", &sr.gs.base, 8) &
	      get(b, "cr0", &sr.cr0, 8) & get(b, "cr2", &sr.cr2, 8) & get(b, "cr3", &sr.cr3, 8) &
	      get(b, "cr4", &sr.cr4, 8) & get(b, "efer", &sr.efer, 8) & get(b, "cr8", &sr.cr8, 8) &
	      get(b, "k_gs_base", &kgs, 8);
	if (!ok)
		return -EIO;
	if (kgs != kgs0 && (e = kernel_gs_base(fd, &kgs, true)) < 0)
		return e;
	if (ioctl(fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	if (memcmp(&sr, &sr0, sizeof(sr)) && ioctl(fd, KVM_SET_SREGS, &sr) < 0)
		return -errno;
	if (memcmp(&fpu, &fpu0, sizeof(fpu)) && ioctl(fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	return 0;
}

#else /* __aarch64__ */

#define A64_REG(size, x) (KVM_REG_ARM64 | (size) | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(x))
#define A64_CORE(x) A64_REG(KVM_REG_SIZE_U64, x)
#define A64_SP_SEL 0 /* stands for SP_EL1 or SP_EL0, by PSTATE.SPSel */
#define A64_PAUTH 1  /* derived from TCR_EL1, not a KVM register */

/* The registers of the g layout and their KVM_{GET,SET}_ONE_REG ids. */
struct a64_reg {
	char name[12];
	uint64_t id;
};

static unsigned int a64_regs(struct a64_reg *t)
{
	static const struct {
		const char *name;
		uint64_t id;
	} sys[] = {
		{ "sp", A64_SP_SEL },
		{ "pc", A64_CORE(regs.pc) },
		{ "cpsr", A64_CORE(regs.pstate) },
		{ "fpsr", A64_REG(KVM_REG_SIZE_U32, fp_regs.fpsr) },
		{ "fpcr", A64_REG(KVM_REG_SIZE_U32, fp_regs.fpcr) },
		{ "sp_el0", A64_CORE(regs.sp) },
		{ "sctlr_el1", ARM64_SYS_REG(3, 0, 1, 0, 0) },
		{ "ttbr0_el1", ARM64_SYS_REG(3, 0, 2, 0, 0) },
		{ "ttbr1_el1", ARM64_SYS_REG(3, 0, 2, 0, 1) },
		{ "tcr_el1", ARM64_SYS_REG(3, 0, 2, 0, 2) },
		{ "pauth_dmask", A64_PAUTH },
		{ "pauth_cmask", A64_PAUTH },
	};
	unsigned int n = 0;

	for (unsigned int i = 0; i < 31; i++, n++) {
		snprintf(t[n].name, sizeof(t[n].name), "x%u", i);
		t[n].id = A64_CORE(regs.regs[i]);
	}
	for (unsigned int i = 0; i < 32; i++, n++) {
		snprintf(t[n].name, sizeof(t[n].name), "v%u", i);
		t[n].id = A64_REG(KVM_REG_SIZE_U128, fp_regs.vregs[i]);
	}
	for (unsigned int i = 0; i < sizeof(sys) / sizeof(sys[0]); i++, n++) {
		snprintf(t[n].name, sizeof(t[n].name), "%s", sys[i].name);
		t[n].id = sys[i].id;
	}
	return n;
}

#define A64_NREGS (31 + 32 + 12)

static unsigned int id_size(uint64_t id)
{
	return 1u << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
}

static int one_reg(int fd, uint64_t id, void *v, bool write)
{
	struct kvm_one_reg r = { .id = id, .addr = (uintptr_t)v };

	return ioctl(fd, write ? KVM_SET_ONE_REG : KVM_GET_ONE_REG, &r) < 0 ? -errno : 0;
}

/* The stack pointer gdb means: SP_EL1 when PSTATE.SPSel, else SP_EL0. */
static uint64_t sp_id(uint64_t pstate)
{
	return pstate & 1 ? A64_CORE(sp_el1) : A64_CORE(regs.sp);
}

/* The pointer authentication code's bits in an address of the lower range,
 * as TCR_EL1 sets it up: from the VA size (T0SZ) to bit 54, and the top byte
 * unless TBI0 (data) or TBI0 without TBID0 (code) make the MMU ignore it. */
static uint64_t pauth_mask(uint64_t tcr, bool code)
{
	unsigned int t0sz = tcr & 0x3f, va = 64 - t0sz;
	bool tbi = (tcr >> 37) & 1, tbid = (tcr >> 51) & 1;
	uint64_t m = 0;

	if (!t0sz || va > 54)
		return 0; /* translation not set up */
	m = ((1ULL << 55) - 1) & ~((1ULL << va) - 1);
	if (!tbi || (code && tbid))
		m |= 0xffULL << 56;
	return m;
}

static int regs_read(int fd, uint8_t *b)
{
	struct a64_reg t[A64_NREGS];
	unsigned int n = a64_regs(t);
	__u64 pstate, tcr;
	uint8_t v[16];
	bool ok = true;
	int r;

	r = one_reg(fd, A64_CORE(regs.pstate), &pstate, false);
	if (!r)
		r = one_reg(fd, ARM64_SYS_REG(3, 0, 2, 0, 2), &tcr, false);
	for (unsigned int i = 0; !r && i < n; i++) {
		uint64_t id = t[i].id == A64_SP_SEL ? sp_id(pstate) : t[i].id;
		uint8_t *p;

		if (id == A64_PAUTH) {
			ok &= put(b, t[i].name, pauth_mask(tcr, !strcmp(t[i].name, "pauth_cmask")), 8);
			continue;
		}
		memset(v, 0, sizeof(v));
		r = one_reg(fd, id, v, false);
		/* cpsr: the low 32 bits of PSTATE (little-endian) */
		p = reg_at(b, t[i].name, !strcmp(t[i].name, "cpsr") ? 4 : id_size(id));
		if (p)
			memcpy(p, v, !strcmp(t[i].name, "cpsr") ? 4 : id_size(id));
		ok &= p != NULL;
	}
	return r ? r : ok ? 0 : -EIO;
}

static int regs_write(int fd, const uint8_t *b)
{
	struct a64_reg t[A64_NREGS];
	unsigned int n = a64_regs(t);
	uint8_t old[A64_NREGS][16], v[16];
	__u64 pstate;
	int r;

	/* every register in the layout first: nothing is written when it is not */
	for (unsigned int i = 0; i < n; i++)
		if (!reg_at(b, t[i].name, !strcmp(t[i].name, "cpsr") ? 4
					  : t[i].id <= A64_PAUTH ? 8 : id_size(t[i].id)))
			return -EIO;
	/* then what they are now: sp and sp_el0 may be one register (SPSel 0),
	 * the one gdb changed wins */
	r = one_reg(fd, A64_CORE(regs.pstate), &pstate, false);
	for (unsigned int i = 0; !r && i < n; i++) {
		memset(old[i], 0, sizeof(old[i]));
		if (t[i].id != A64_PAUTH)
			r = one_reg(fd, t[i].id == A64_SP_SEL ? sp_id(pstate) : t[i].id, old[i], false);
	}
	for (unsigned int i = 0; !r && i < n; i++) {
		uint64_t id = t[i].id == A64_SP_SEL ? sp_id(pstate) : t[i].id;
		unsigned int size = id_size(id);

		if (id == A64_PAUTH)
			continue; /* derived from TCR_EL1: read-only */
		memcpy(v, old[i], sizeof(v));
		if (!strcmp(t[i].name, "cpsr"))
			memcpy(v, reg_at(b, "cpsr", 4), 4); /* PSTATE's upper half kept */
		else
			memcpy(v, reg_at(b, t[i].name, size), size);
		if (memcmp(old[i], v, size)) /* only what changed */
			r = one_reg(fd, id, v, true);
	}
	return r;
}
#endif

GDB_EXPORT int kvmdbg_gdb_kvm_regs_read(int vcpu_fd, uint8_t *buf)
{
	if (vcpu_fd < 0 || !buf)
		return -EINVAL;
	return regs_read(vcpu_fd, buf);
}

GDB_EXPORT int kvmdbg_gdb_kvm_regs_write(int vcpu_fd, const uint8_t *buf)
{
	if (vcpu_fd < 0 || !buf)
		return -EINVAL;
	return regs_write(vcpu_fd, buf);
}

/* ---- events and points -------------------------------------------------- */

GDB_EXPORT int kvmdbg_gdb_kvm_stop_from_event(const struct kvmdbg_event *ev, int vcpu,
					       struct kvmdbg_gdb_stop *stop)
{
	struct kvmdbg_gdb_stop st = { .sz = sizeof(st), .kind = KVMDBG_GDB_STOP_SIGNAL };

	if (!ev || !stop || vcpu < 0 || stop->sz < sizeof(st))
		return -EINVAL;
	st.thread = vcpu;
	st.signal = 5; /* SIGTRAP */
	if (ev->kind == KVMDBG_STOP_BREAK && ev->type == KVMDBG_BREAK_SW)
		st.reason = KVMDBG_GDB_REASON_SWBREAK;
	else if (ev->kind == KVMDBG_STOP_BREAK && ev->type == KVMDBG_BREAK_HW)
		st.reason = KVMDBG_GDB_REASON_HWBREAK;
	else if (ev->kind == KVMDBG_STOP_WATCH && (ev->type == KVMDBG_WATCH_WRITE ||
						   ev->type == KVMDBG_WATCH_READ ||
						   ev->type == KVMDBG_WATCH_ACCESS)) {
		st.reason = ev->type == KVMDBG_WATCH_WRITE  ? KVMDBG_GDB_REASON_WATCH
			    : ev->type == KVMDBG_WATCH_READ ? KVMDBG_GDB_REASON_RWATCH
							    : KVMDBG_GDB_REASON_AWATCH;
		st.data_addr = ev->data_addr;
	}
	memcpy(stop, &st, sizeof(st));
	return 0;
}

GDB_EXPORT int kvmdbg_gdb_kvm_point_check(uint64_t features, enum kvmdbg_gdb_point type)
{
	uint64_t need;

	if ((unsigned int)type > KVMDBG_GDB_WATCH_ACCESS)
		return -EINVAL;
	need = kvmdbg_type_feature((enum kvmdbg_type)type); /* Z0..Z4 are its numbers */
	if (!(features & KVMDBG_FEAT_VERIFIED))
		return 0;
	return need && (features & need) == need ? 0 : -ENOSYS;
}

#ifdef __x86_64__
static int mmu_read(int fd, struct kvmdbg_gdb_mmu *m)
{
	struct kvm_sregs sr;

	if (ioctl(fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	m->arch = KVMDBG_GDB_ARCH_X86_64;
	m->cr0 = sr.cr0;
	m->cr3 = sr.cr3;
	m->cr4 = sr.cr4;
	m->efer = sr.efer;
	return 0;
}
#else
static int mmu_read(int fd, struct kvmdbg_gdb_mmu *m)
{
	static const struct {
		uint64_t id;
		size_t off;
	} sys[] = {
		{ ARM64_SYS_REG(3, 0, 1, 0, 0), offsetof(struct kvmdbg_gdb_mmu, sctlr_el1) },
		{ ARM64_SYS_REG(3, 0, 2, 0, 2), offsetof(struct kvmdbg_gdb_mmu, tcr_el1) },
		{ ARM64_SYS_REG(3, 0, 2, 0, 0), offsetof(struct kvmdbg_gdb_mmu, ttbr0_el1) },
		{ ARM64_SYS_REG(3, 0, 2, 0, 1), offsetof(struct kvmdbg_gdb_mmu, ttbr1_el1) },
	};

	m->arch = KVMDBG_GDB_ARCH_AARCH64;
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
		uint64_t v;
		int r = one_reg(fd, sys[i].id, &v, false);

		if (r < 0)
			return r;
		memcpy((char *)m + sys[i].off, &v, sizeof(v));
	}
	return 0;
}
#endif

GDB_EXPORT int kvmdbg_gdb_kvm_mmu_read(int vcpu_fd, struct kvmdbg_gdb_mmu *mmu)
{
	struct kvmdbg_gdb_mmu m = { .sz = sizeof(m) };
	int r;

	if (vcpu_fd < 0 || !mmu || mmu->sz < sizeof(m))
		return -EINVAL;
	r = mmu_read(vcpu_fd, &m);
	if (r < 0)
		return r;
	m.sz = mmu->sz;
	memset(mmu, 0, mmu->sz);
	memcpy(mmu, &m, sizeof(m));
	return 0;
}

/* ---- memory: guest-virtual through the vCPU's tables, or physical -------- */

/* The page walk's reads: the VMM's guest-physical access, all or nothing. */
static int walk_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	struct kvmdbg_gdb_kvm *k = ctx;

	return k->vm.phys_access(k->ctx, gpa, buf, len, 0) == (long)len ? 0 : -EFAULT;
}

/*
 * Guest-virtual to guest-physical for vCPU vcpu as its registers are now
 * (kvmdbg_gdb_translate: every x86 paging mode, arm64 stage 1 or the MMU
 * off): the bytes from *gpa that are contiguous, 0 when gva is not mapped.
 */
static uint64_t translate(struct kvmdbg_gdb_kvm *k, int vcpu, uint64_t gva, uint64_t *gpa)
{
	struct kvmdbg_gdb_mmu m = { .sz = sizeof(m) };
	uint64_t n;

	if (mmu_read(k->fds[vcpu], &m) < 0 ||
	    kvmdbg_gdb_translate(&m, gva, walk_read, k, gpa, &n) < 0)
		return 0;
	return n;
}

static long mem_access(struct kvmdbg_gdb_kvm *k, int t, uint64_t addr, void *buf, size_t len,
		       int write)
{
	size_t done = 0;

	while (done < len) {
		uint64_t gpa = addr + done, n = k->phys ? len - done : translate(k, t, addr + done, &gpa);
		long r;

		if (!n)
			break;
		if (n > len - done)
			n = len - done;
		r = k->vm.phys_access(k->ctx, gpa, (uint8_t *)buf + done, (size_t)n, write);
		if (r <= 0)
			break;
		done += (size_t)r;
		if ((uint64_t)r < n)
			break;
	}
	return done ? (long)done : -EFAULT;
}

/* ---- the server's callbacks ---------------------------------------------- */

static int k_nthreads(void *ctx)
{
	return (int)((struct kvmdbg_gdb_kvm *)ctx)->vm.nvcpus;
}

static int k_thread_alive(void *ctx, int t)
{
	struct kvmdbg_gdb_kvm *k = ctx;
	int alive;

	pthread_mutex_lock(&k->lock);
	alive = !k->v[t].finished;
	pthread_mutex_unlock(&k->lock);
	return alive;
}

static int k_read_regs(void *ctx, int t, uint8_t *b)
{
	return regs_read(((struct kvmdbg_gdb_kvm *)ctx)->fds[t], b);
}

static int k_write_regs(void *ctx, int t, const uint8_t *b)
{
	struct kvmdbg_gdb_kvm *k = ctx;
	int r = regs_write(k->fds[t], b);

	return r < 0 ? r : kvmdbg_vcpu_regs_changed(k->vcpus[t]);
}

static long k_read_mem(void *ctx, int t, uint64_t addr, void *buf, size_t len)
{
	return mem_access(ctx, t, addr, buf, len, 0);
}

static long k_write_mem(void *ctx, int t, uint64_t addr, const void *buf, size_t len)
{
	return mem_access(ctx, t, addr, (void *)buf, len, 1);
}

static int k_insert(void *ctx, int t, enum kvmdbg_gdb_point type, uint64_t addr, uint64_t kind)
{
	struct kvmdbg_gdb_kvm *k = ctx;
	int r = kvmdbg_gdb_kvm_point_check(k->vm.features, type);

	(void)t;
	return r < 0 ? r : kvmdbg_vm_insert(k->vm.vm, (enum kvmdbg_type)type, addr, kind);
}

static int k_remove(void *ctx, int t, enum kvmdbg_gdb_point type, uint64_t addr, uint64_t kind)
{
	struct kvmdbg_gdb_kvm *k = ctx;

	(void)t;
	return kvmdbg_vm_remove(k->vm.vm, (enum kvmdbg_type)type, addr, kind);
}

static void notify(struct kvmdbg_gdb_kvm *k)
{
	char c = 1;

	if (write(k->notify[1], &c, 1) < 0) {
		/* non-blocking, only a wake-up: a full pipe is fine */
	}
}

static void drain(struct kvmdbg_gdb_kvm *k)
{
	char buf[16];

	while (read(k->notify[0], buf, sizeof(buf)) > 0)
		;
}

/* Kick every running vCPU but self (-1: all). Under k->lock. */
static void kick_others(struct kvmdbg_gdb_kvm *k, int self)
{
	k->stopping = true;
	for (unsigned int i = 0; i < k->vm.nvcpus; i++) {
		if ((int)i == self || !k->v[i].running)
			continue;
		__atomic_store_n(&k->runs[i]->immediate_exit, 1, __ATOMIC_SEQ_CST);
		k->vm.kick(k->ctx, i);
	}
}

static int k_resume(void *ctx, const enum kvmdbg_gdb_action *act)
{
	struct kvmdbg_gdb_kvm *k = ctx;
	bool go[MAX_VCPUS] = { false }, pending = false;
	int r = 0;

	drain(k);
	pthread_mutex_lock(&k->lock);
	for (unsigned int i = 0; i < k->vm.nvcpus; i++)
		if (act[i] != KVMDBG_GDB_STAY && k->v[i].pending && !k->v[i].finished)
			pending = true; /* reported by the next get_stop, nothing runs */
	for (unsigned int i = 0; !pending && !r && i < k->vm.nvcpus; i++) {
		if (act[i] == KVMDBG_GDB_STAY || k->v[i].finished || k->v[i].running)
			continue;
		r = kvmdbg_vcpu_set_step(k->vcpus[i], act[i] == KVMDBG_GDB_STEP);
		go[i] = r == 0;
	}
	if (!pending && !r) {
		k->stopping = false;
		k->first = -1;
		for (unsigned int i = 0; i < k->vm.nvcpus; i++) {
			if (!go[i])
				continue;
			__atomic_store_n(&k->runs[i]->immediate_exit, 0, __ATOMIC_SEQ_CST);
			k->v[i].running = true;
			k->nrunning++;
		}
	}
	if (k->nrunning == 0)
		notify(k);
	pthread_mutex_unlock(&k->lock);
	if (pending || r)
		return r;
	/* outside the lock: the VMM's thread may report a stop meanwhile */
	for (unsigned int i = 0; i < k->vm.nvcpus; i++) {
		if (go[i] && k->vm.resume(k->ctx, i) < 0) {
			kvmdbg_gdb_kvm_stopped(k, i, KVMDBG_GDB_KVM_FAILED, NULL);
			r = r ? r : -EIO;
		}
	}
	return r;
}

static int k_stop_fd(void *ctx)
{
	return ((struct kvmdbg_gdb_kvm *)ctx)->notify[0];
}

/* Paused for the debugger: a guest on kvmclock would see the pause as a
 * soft lockup otherwise. EINVAL: the guest has not set kvmclock up. */
static void clock_paused(struct kvmdbg_gdb_kvm *k)
{
#if defined(__x86_64__) && defined(KVM_KVMCLOCK_CTRL)
	for (unsigned int i = 0; i < k->vm.nvcpus; i++)
		if (!k->v[i].finished)
			(void)ioctl(k->fds[i], KVM_KVMCLOCK_CTRL, 0);
#else
	(void)k;
#endif
}

/* Under k->lock with nothing running: the stop to report. */
static void take_stop(struct kvmdbg_gdb_kvm *k, struct kvmdbg_gdb_stop *st)
{
	int pick = -1, alive = -1;

	memset(st, 0, sizeof(*st));
	st->sz = sizeof(*st);
	for (unsigned int i = 0; i < k->vm.nvcpus; i++) {
		if (k->v[i].failed) {
			st->kind = KVMDBG_GDB_STOP_KILLED;
			st->thread = (int)i;
			st->signal = 6; /* SIGABRT: the machine cannot go on */
			return;
		}
		if (!k->v[i].finished && alive < 0)
			alive = (int)i;
	}
	if (k->first >= 0 && k->v[k->first].pending)
		pick = k->first;
	for (unsigned int i = 0; pick < 0 && i < k->vm.nvcpus; i++)
		if (k->v[i].pending)
			pick = (int)i;
	if (pick >= 0) {
		k->v[pick].pending = false;
		kvmdbg_gdb_kvm_stop_from_event(&k->v[pick].ev, pick, st);
		return;
	}
	if (alive < 0) {
		st->kind = KVMDBG_GDB_STOP_EXITED;
		return;
	}
	st->kind = KVMDBG_GDB_STOP_SIGNAL;
	st->thread = k->first >= 0 && !k->v[k->first].finished ? k->first : alive;
	st->signal = 2; /* SIGINT */
}

static int k_get_stop(void *ctx, struct kvmdbg_gdb_stop *st)
{
	struct kvmdbg_gdb_kvm *k = ctx;
	struct kvmdbg_gdb_stop s;

	drain(k);
	pthread_mutex_lock(&k->lock);
	if (k->nrunning > 0) {
		pthread_mutex_unlock(&k->lock);
		return 0;
	}
	take_stop(k, &s);
	pthread_mutex_unlock(&k->lock);
	clock_paused(k);
	return gdb_sized_out(st, &s, sizeof(s)) < 0 ? -EINVAL : 1;
}

static void k_interrupt(void *ctx)
{
	struct kvmdbg_gdb_kvm *k = ctx;

	pthread_mutex_lock(&k->lock);
	kick_others(k, -1);
	pthread_mutex_unlock(&k->lock);
}

/* D: every point removed, the stops not reported yet dropped (stale: their
 * points are gone), every vCPU still alive resumed. */
static void k_detach(void *ctx)
{
	struct kvmdbg_gdb_kvm *k = ctx;
	enum kvmdbg_gdb_action act[MAX_VCPUS] = { KVMDBG_GDB_STAY };

	kvmdbg_vm_remove_all(k->vm.vm);
	pthread_mutex_lock(&k->lock);
	for (unsigned int i = 0; i < k->vm.nvcpus; i++) {
		k->v[i].pending = false;
		act[i] = KVMDBG_GDB_CONTINUE;
	}
	pthread_mutex_unlock(&k->lock);
	k_resume(k, act);
}

static int k_monitor(void *ctx, const char *cmd, char *out, size_t outlen)
{
	struct kvmdbg_gdb_kvm *k = ctx;

	if (strcmp(cmd, "phys on") == 0)
		k->phys = true;
	else if (strcmp(cmd, "phys off") == 0)
		k->phys = false;
	else if (strcmp(cmd, "phys") != 0)
		return k->vm.monitor ? k->vm.monitor(k->ctx, cmd, out, outlen) : -ENOENT;
	return snprintf(out, outlen, "memory: guest-%s addresses\n",
			k->phys ? "physical" : "virtual (the selected thread's page tables)");
}

static const struct kvmdbg_gdb_ops kvm_ops = {
	.sz = sizeof(struct kvmdbg_gdb_ops),
	.arch = HOST_ARCH,
	.nthreads = k_nthreads,
	.thread_alive = k_thread_alive,
	.read_regs = k_read_regs,
	.write_regs = k_write_regs,
	.read_mem = k_read_mem,
	.write_mem = k_write_mem,
	.insert = k_insert,
	.remove = k_remove,
	.resume = k_resume,
	.stop_fd = k_stop_fd,
	.get_stop = k_get_stop,
	.interrupt = k_interrupt,
	.detach = k_detach,
	.monitor = k_monitor,
};

/* ---- the API ------------------------------------------------------------- */

GDB_EXPORT int kvmdbg_gdb_kvm_stopped(struct kvmdbg_gdb_kvm *k, unsigned int vcpu,
				       enum kvmdbg_gdb_kvm_why why, const struct kvmdbg_event *ev)
{
	if (!k || vcpu >= k->vm.nvcpus || why < KVMDBG_GDB_KVM_EVENT ||
	    why > KVMDBG_GDB_KVM_FAILED || (why == KVMDBG_GDB_KVM_EVENT && !ev))
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	if (why == KVMDBG_GDB_KVM_EVENT) {
		k->v[vcpu].pending = true;
		k->v[vcpu].ev = *ev;
	} else if (why == KVMDBG_GDB_KVM_EXITED) {
		k->v[vcpu].finished = true;
	} else if (why == KVMDBG_GDB_KVM_FAILED) {
		k->v[vcpu].failed = true;
	}
	if ((why == KVMDBG_GDB_KVM_EVENT || why == KVMDBG_GDB_KVM_FAILED) && !k->stopping) {
		k->first = (int)vcpu;
		kick_others(k, (int)vcpu);
	}
	if (k->v[vcpu].running) {
		k->v[vcpu].running = false;
		if (--k->nrunning == 0)
			notify(k);
	}
	pthread_mutex_unlock(&k->lock);
	return 0;
}

GDB_EXPORT int kvmdbg_gdb_kvm_new(const struct kvmdbg_gdb_kvm_vm *vm, void *ctx,
				   struct kvmdbg_gdb_kvm **out)
{
	struct kvmdbg_gdb_kvm *k;
	int r;

	if (!vm || !out)
		return -EINVAL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->notify[0] = k->notify[1] = -1;
	r = gdb_sized_in(&k->vm, sizeof(k->vm), vm);
	if (r < 0)
		goto fail;
	r = -EINVAL;
	if (!k->vm.vm || !k->vm.nvcpus || k->vm.nvcpus > MAX_VCPUS || !k->vm.vcpu_fds ||
	    !k->vm.runs || !k->vm.vcpus || !k->vm.phys_access || !k->vm.resume || !k->vm.kick)
		goto fail;
	for (unsigned int i = 0; i < k->vm.nvcpus; i++) {
		k->fds[i] = k->vm.vcpu_fds[i];
		k->runs[i] = k->vm.runs[i];
		k->vcpus[i] = k->vm.vcpus[i];
		if (k->fds[i] < 0 || !k->runs[i] || !k->vcpus[i])
			goto fail;
	}
	/* the caller's arrays are not kept */
	k->vm.vcpu_fds = NULL;
	k->vm.runs = NULL;
	k->vm.vcpus = NULL;
	k->ctx = ctx;
	k->first = -1;
	if (pipe2(k->notify, O_CLOEXEC | O_NONBLOCK) < 0) {
		r = -errno;
		goto fail;
	}
	r = pthread_mutex_init(&k->lock, NULL);
	if (r) {
		r = -r;
		goto fail;
	}
	r = kvmdbg_gdb_new(&kvm_ops, k, &k->server);
	if (r < 0) {
		pthread_mutex_destroy(&k->lock);
		goto fail;
	}
	*out = k;
	return 0;
fail:
	if (k->notify[0] >= 0) {
		close(k->notify[0]);
		close(k->notify[1]);
	}
	free(k);
	return r;
}

GDB_EXPORT void kvmdbg_gdb_kvm_free(struct kvmdbg_gdb_kvm *k)
{
	if (!k)
		return;
	kvmdbg_gdb_free(k->server);
	pthread_mutex_destroy(&k->lock);
	close(k->notify[0]);
	close(k->notify[1]);
	free(k);
}

GDB_EXPORT struct kvmdbg_gdb *kvmdbg_gdb_kvm_server(struct kvmdbg_gdb_kvm *k)
{
	return k ? k->server : NULL;
}

GDB_EXPORT int kvmdbg_gdb_kvm_serve(struct kvmdbg_gdb_kvm *k, int fd,
				     const struct kvmdbg_gdb_serve_opts *opts)
{
	if (!k)
		return -EINVAL;
	return kvmdbg_gdb_serve(k->server, fd, opts);
}
