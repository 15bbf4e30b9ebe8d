/* SPDX-License-Identifier: MIT */
/*
 * x86-64 micro-VMs (lib/microvm.h): a VM with one memslot, identity-mapped
 * long mode at CPL0, and nothing else.
 *
 * Guest physical layout (guest-virtual == guest-physical):
 *
 *   0x00000 - 0x00fff  unused (mapped, zero)
 *   0x01000            GDT, see the selectors below (MICROVM_GDT_GPA)
 *   0x01100            64-bit TSS, 104 bytes, no I/O bitmap (MICROVM_TSS_GPA);
 *                      rsp0 at +4, ist1..7 at +0x24: zero, a guest that goes
 *                      to CPL3 or wants IST stacks writes them itself
 *   0x02000            PML4  (one entry)
 *   0x03000            PDPT  (one entry: the first GiB)
 *   0x04000            PD    (2 MiB pages covering exactly [0, mem_size))
 *   0x05000 - 0x0ffff  reserved for later use (left zero)
 *   0x10000            code_gpa: everything from here to mem_size is the
 *                      caller's (code, data, stacks, an IDT, ...)
 *
 * Every paging level has P|RW|US, so CPL3 code can use the same mappings;
 * CR4.SMEP/SMAP are off. Addresses at or above mem_size are not mapped and
 * fault (#PF).
 *
 * GDT selectors:
 *   0x08  64-bit code, DPL0 (CS of kvmdbg_microvm_start())
 *   0x10  data, DPL0        (DS/ES/FS/GS/SS)
 *   0x18  data, DPL3        (user SS: 0x1b)
 *   0x20  64-bit code, DPL3 (user CS: 0x23)
 *   0x28  64-bit TSS (16-byte system descriptor; TR)
 *
 * No IDT: kvmdbg_microvm_start() leaves IDTR base 0 limit 0, so any
 * exception or interrupt in the guest becomes a triple fault
 * (KVM_EXIT_SHUTDOWN). Guest code that wants exceptions does `lidt` itself,
 * with 16-byte interrupt gates whose selector is 0x08 (MICROVM_SEL_CODE64).
 *
 * No interrupt controller: KVM_INTERRUPT injects an external interrupt
 * directly (userspace "irqchip"), KVM_NMI queues an NMI, and HLT exits to
 * userspace with KVM_EXIT_HLT instead of blocking in the kernel.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <linux/kvm.h>

#include "arch/x86/regs.h"
#include "kvmdbg-int.h"
#include "microvm.h"

#define MICROVM_GDT_GPA 0x1000ull
#define MICROVM_TSS_GPA 0x1100ull
#define MICROVM_PML4_GPA 0x2000ull
#define MICROVM_PDPT_GPA 0x3000ull
#define MICROVM_PD_GPA 0x4000ull
#define MICROVM_CODE_GPA 0x10000ull

#define MICROVM_SEL_CODE64 0x08
#define MICROVM_SEL_DATA 0x10
#define MICROVM_SEL_UDATA 0x18
#define MICROVM_SEL_UCODE64 0x20
#define MICROVM_SEL_TSS 0x28
#define MICROVM_GDT_SIZE 0x38 /* 5 descriptors + the 16-byte TSS descriptor */
#define MICROVM_TSS_SIZE 0x68

#define SZ_2M (2ull << 20)
#define SZ_1G (1ull << 30)

/* Code/data descriptor: access byte and the flags nibble (G, D/B, L, AVL). */
static uint64_t seg_desc(uint8_t access, uint8_t flags)
{
	/* base 0, limit 0xfffff (4 GiB with G=1; ignored in 64-bit mode) */
	return 0xffffull | (uint64_t)access << 40 | 0xfull << 48 | (uint64_t)flags << 52;
}

static void write_gdt(uint8_t *mem)
{
	uint64_t gdt[MICROVM_GDT_SIZE / 8] = { 0 };
	uint64_t base = MICROVM_TSS_GPA, limit = MICROVM_TSS_SIZE - 1;

	/* P | DPL | S | type; L=1 for 64-bit code, D/B=1 and G=1 for data */
	gdt[MICROVM_SEL_CODE64 / 8] = seg_desc(0x9b, 0xa);  /* P, DPL0, code, exec/read, accessed */
	gdt[MICROVM_SEL_DATA / 8] = seg_desc(0x93, 0xc);    /* P, DPL0, data, read/write, accessed */
	gdt[MICROVM_SEL_UDATA / 8] = seg_desc(0xf3, 0xc);   /* the same at DPL3 */
	gdt[MICROVM_SEL_UCODE64 / 8] = seg_desc(0xfb, 0xa); /* the same at DPL3 */
	/*
	 * 64-bit TSS: a 16-byte system descriptor, type 0xb (busy). VMX
	 * checks at VM entry that TR is a present, busy 64-bit TSS when the
	 * guest is in IA-32e mode, so TR cannot simply be left null.
	 */
	gdt[MICROVM_SEL_TSS / 8] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x8bull << 40 |
				   ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	gdt[MICROVM_SEL_TSS / 8 + 1] = base >> 32;
	memcpy(mem + MICROVM_GDT_GPA, gdt, sizeof(gdt));

	/* I/O map base beyond the limit: no I/O permission bitmap. */
	mem[MICROVM_TSS_GPA + 0x66] = MICROVM_TSS_SIZE & 0xff;
	mem[MICROVM_TSS_GPA + 0x67] = MICROVM_TSS_SIZE >> 8;
}

static void write_page_tables(uint8_t *mem, uint64_t mem_size)
{
	uint64_t *pml4 = (uint64_t *)(mem + MICROVM_PML4_GPA);
	uint64_t *pdpt = (uint64_t *)(mem + MICROVM_PDPT_GPA);
	uint64_t *pd = (uint64_t *)(mem + MICROVM_PD_GPA);
	const uint64_t flags = PTE_P | PTE_RW | PTE_US;

	pml4[0] = MICROVM_PDPT_GPA | flags;
	pdpt[0] = MICROVM_PD_GPA | flags;
	for (uint64_t i = 0; i < mem_size / SZ_2M; i++)
		pd[i] = i * SZ_2M | flags | PTE_PS;
}

static struct kvm_cpuid2 *get_supported_cpuid(int kvm_fd, int *err)
{
	struct kvm_cpuid2 *c = NULL;

	/* KVM says -E2BIG until nent is large enough; it then sets nent. */
	for (unsigned int n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *nc = realloc(c, sizeof(*c) + n * sizeof(c->entries[0]));
		int r;

		if (!nc) {
			*err = -ENOMEM;
			break;
		}
		c = nc;
		memset(c, 0, sizeof(*c) + n * sizeof(c->entries[0]));
		c->nent = n;
		r = kvmdbg_ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c);
		if (r >= 0)
			return c;
		*err = r;
		if (r != -E2BIG)
			break;
	}
	free(c);
	return NULL;
}

/*
 * KVM_GET_SUPPORTED_CPUID reports APIC ID 0 everywhere; give each vCPU its
 * own index as initial APIC ID (leaf 1 EBX[31:24], x2APIC ID of the
 * topology leaves 0xb and 0x1f in EDX), so guests can tell vCPUs apart.
 */
static void set_apic_id(struct kvm_cpuid2 *c, unsigned int id)
{
	for (unsigned int i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffffu) | id << 24;
		else if (e->function == 0xb || e->function == 0x1f)
			e->edx = id;
	}
}

int kvmdbg_microvm_arch_check(uint64_t mem_size)
{
	/* One page directory of 2 MiB pages maps the whole memory. */
	return !mem_size || mem_size % SZ_2M || mem_size > SZ_1G ? -EINVAL : 0;
}

uint64_t kvmdbg_microvm_arch_layout(uint8_t *mem, uint64_t mem_size)
{
	write_gdt(mem);
	write_page_tables(mem, mem_size);
	return MICROVM_CODE_GPA;
}

int kvmdbg_microvm_arch_vcpu_init(struct kvmdbg_microvm *m, unsigned int idx)
{
	struct kvm_cpuid2 *cpuid;
	int r;

	cpuid = get_supported_cpuid(m->kvm_fd, &r);
	if (!cpuid)
		return r;
	set_apic_id(cpuid, idx);
	/* Before the first KVM_RUN: newer kernels refuse CPUID changes after it. */
	r = kvmdbg_ioctl(m->vcpu_fd[idx], KVM_SET_CPUID2, cpuid);
	free(cpuid);
	return r < 0 ? r : 0;
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->s = 1;
	s->g = 1;
	s->l = code;  /* 64-bit code */
	s->db = !code; /* D must be 0 when L is 1 */
}

int kvmdbg_microvm_start(struct kvmdbg_microvm *m, unsigned int idx, uint64_t pc, uint64_t sp)
{
	struct kvm_vcpu_events ev = { 0 };
	struct kvm_guest_debug dbg = { 0 };
	struct kvm_debugregs dr = { 0 };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };
	int fd, r;

	if (!m || !m->mem || idx >= m->nr_vcpus)
		return -EINVAL;
	fd = m->vcpu_fd[idx];

	/*
	 * Drop whatever a previous run left half-delivered: a queued or
	 * injected exception (an INJECT_DB/BP never run), an interrupt
	 * queued with KVM_INTERRUPT, a pending NMI or NMI blocking, an
	 * STI/MOV SS shadow. Flags select the optional fields we zero too.
	 */
	ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
	r = kvmdbg_ioctl_chk(fd, KVM_SET_VCPU_EVENTS, &ev);
	if (r < 0)
		return r;

	/* No guest debugging: also makes KVM drop the TF it set for stepping. */
	r = kvmdbg_ioctl_chk(fd, KVM_SET_GUEST_DEBUG, &dbg);
	if (r < 0)
		return r;

	/*
	 * The guest's own debug registers at their reset values.
	 * IA32_DEBUGCTL is left alone: KVM without LBR virtualisation (SVM
	 * without LBRV, e.g.) logs "Unhandled WRMSR(0x1d9)" for every write,
	 * even of 0. A guest that sets BTF turns later single-steps into
	 * branch steps until it clears it.
	 */
	dr.dr6 = DR6_ACTIVE_LOW; /* reset values */
	dr.dr7 = DR7_FIXED_1;
	r = kvmdbg_ioctl_chk(fd, KVM_SET_DEBUGREGS, &dr);
	if (r < 0)
		return r;

	r = kvmdbg_ioctl_chk(fd, KVM_GET_SREGS, &sregs);
	if (r < 0)
		return r;
	set_seg(&sregs.cs, MICROVM_SEL_CODE64, 0xb, true);
	set_seg(&sregs.ds, MICROVM_SEL_DATA, 0x3, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.base = MICROVM_TSS_GPA;
	sregs.tr.limit = MICROVM_TSS_SIZE - 1;
	sregs.tr.selector = MICROVM_SEL_TSS;
	sregs.tr.type = 0xb; /* busy 64-bit TSS */
	sregs.tr.present = 1;
	memset(&sregs.ldt, 0, sizeof(sregs.ldt));
	sregs.ldt.unusable = 1;
	sregs.gdt.base = MICROVM_GDT_GPA;
	sregs.gdt.limit = MICROVM_GDT_SIZE - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sregs.cr2 = 0;
	sregs.cr3 = MICROVM_PML4_GPA;
	sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	sregs.cr8 = 0;
	sregs.efer = EFER_LME | EFER_LMA;
	/* Without an in-kernel irqchip a set bit here would queue an interrupt. */
	memset(sregs.interrupt_bitmap, 0, sizeof(sregs.interrupt_bitmap));
	r = kvmdbg_ioctl_chk(fd, KVM_SET_SREGS, &sregs);
	if (r < 0)
		return r;

	regs.rip = pc;
	regs.rsp = sp;
	regs.rflags = 0x2; /* bit 1 is reserved, always 1; IF = 0 */
	r = kvmdbg_ioctl_chk(fd, KVM_SET_REGS, &regs);
	if (r < 0)
		return r;

	m->run[idx]->request_interrupt_window = 0;
	m->run[idx]->immediate_exit = 0;
	return 0;
}
