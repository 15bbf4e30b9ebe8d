// SPDX-License-Identifier: MIT
/*
 * arm64 micro-VMs (lib/microvm.h): a VM with one memslot and vCPUs at EL1
 * with the MMU off, and nothing else (no GIC, no timer interrupts, no PSCI
 * use, no firmware).
 *
 * Guest physical layout (guest-virtual == guest-physical, MMU off):
 *
 *   0x00000 - 0x007ff  the fail vector table (VBAR_EL1 = 0 at start): every
 *                      entry stores ESR_EL1 to MICROVM_FAIL_MMIO, which exits
 *                      with KVM_EXIT_MMIO; then x1 = the entry number (0..15),
 *                      x0 = ESR_EL1, x2 = ELR_EL1, x3 = FAR_EL1
 *   0x00800 - 0x0ffff  unused (mapped, zero)
 *   0x10000            code_gpa: everything from here to mem_size is the
 *                      caller's (code, data, stacks, a vector table, ...)
 *   [1 GiB, 1 GiB + 64 KiB)  MICROVM_MMIO_GPA: no memory. Guest stores there
 *                      exit with KVM_EXIT_MMIO (the guests' "out" port).
 *
 * RAM at guest physical 0 is fine on arm64: KVM puts no restriction on memslot
 * addresses below the IPA limit (type 0: 40 bits), and a bare VM has no
 * firmware or devices that would need the low addresses.
 *
 * With the MMU off, data accesses are Device-nGnRnE: an unaligned access is an
 * alignment fault, exclusives and DC ZVA are not usable. Guest code keeps its
 * accesses naturally aligned. Instruction fetches are Normal memory. On a host
 * without FEAT_S2FWB the guest's non-cacheable view is only coherent with the
 * host's writes that KVM cleaned to the point of coherency (at the first
 * stage-2 fault of a page): load code before the first KVM_RUN.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "arch/arm64/regs.h"
#include "kvmdbg-int.h"
#include "microvm.h"

#define MICROVM_CODE_GPA  0x10000ull
#define MICROVM_MMIO_GPA  (1ull << 30)
#define MICROVM_FAIL_MMIO (MICROVM_MMIO_GPA + 0xff8)
#define MICROVM_MAX_MEM   (1ull << 30)

/* EL1h with D, A, I, F masked. */
#define PSTATE_EL1H_MASKED (PS_MODE_EL1h | PS_DAIF)

/* Fail vector entry n (see the layout above). */
static void write_fail_vectors(uint8_t *mem)
{
	for (uint32_t n = 0; n < 16; n++) {
		const uint32_t insn[] = {
			0xd2800001u | n << 5, /* mov  x1, #n */
			0xd5385200u,          /* mrs  x0, esr_el1 */
			0xd5384022u,          /* mrs  x2, elr_el1 */
			0xd5386003u,          /* mrs  x3, far_el1 */
			0xd2a80004u,          /* mov  x4, #0x40000000 */
			0xf281ff04u,          /* movk x4, #0xff8 */
			0xf9000080u,          /* str  x0, [x4] */
			0x14000000u,          /* b    . */
		};
		_Static_assert(MICROVM_FAIL_MMIO == 0x40000ff8ull, "fail vector encoding");

		memcpy(mem + n * 0x80, insn, sizeof(insn));
	}
}

static int set_reg(int fd, uint64_t id, uint64_t val)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uintptr_t)&val };
	int r = kvmdbg_ioctl_chk(fd, KVM_SET_ONE_REG, &reg);

	return r < 0 ? r : 0;
}

/* KVM_ARM_VCPU_INIT with the host's preferred target and no optional
 * features: every vCPU powered on, AArch64 EL1. Also resets the vCPU. */
static int vcpu_init(int vm_fd, int vcpu_fd)
{
	struct kvm_vcpu_init init;
	int r;

	memset(&init, 0, sizeof(init));
	r = kvmdbg_ioctl_chk(vm_fd, KVM_ARM_PREFERRED_TARGET, &init);
	if (r < 0)
		return r;
	memset(init.features, 0, sizeof(init.features));
	r = kvmdbg_ioctl_chk(vcpu_fd, KVM_ARM_VCPU_INIT, &init);
	return r < 0 ? r : 0;
}

int kvmdbg_microvm_arch_check(uint64_t mem_size)
{
	long page = sysconf(_SC_PAGESIZE);

	if (page <= 0)
		page = 4096;
	return mem_size <= MICROVM_CODE_GPA || mem_size % (uint64_t)page ||
			       mem_size > MICROVM_MAX_MEM
		       ? -EINVAL
		       : 0;
}

uint64_t kvmdbg_microvm_arch_layout(uint8_t *mem, uint64_t mem_size)
{
	(void)mem_size;
	write_fail_vectors(mem);
	return MICROVM_CODE_GPA;
}

int kvmdbg_microvm_arch_vcpu_init(struct kvmdbg_microvm *m, unsigned int idx)
{
	return vcpu_init(m->vm_fd, m->vcpu_fd[idx]);
}

int kvmdbg_microvm_start(struct kvmdbg_microvm *m, unsigned int idx, uint64_t pc, uint64_t sp)
{
	struct kvm_guest_debug dbg = { 0 };
	int fd, r;

	if (!m || !m->mem || idx >= m->nr_vcpus)
		return -EINVAL;
	fd = m->vcpu_fd[idx];

	/* No guest debugging first: also forgets a pending software step. */
	r = kvmdbg_ioctl_chk(fd, KVM_SET_GUEST_DEBUG, &dbg);
	if (r < 0)
		return r;
	/* Back to the architectural reset state: every system register
	 * (MDSCR_EL1, the guest's DBGB/W{C,V}R, SCTLR_EL1 with the MMU off,
	 * ...) at its reset value, an exception KVM had pending dropped. */
	r = vcpu_init(m->vm_fd, fd);
	if (r)
		return r;

	r = set_reg(fd, REG_VBAR_EL1, 0);
	if (!r)
		r = set_reg(fd, REG_MDSCR_EL1, 0);
	if (!r)
		r = set_reg(fd, REG_PSTATE, PSTATE_EL1H_MASKED);
	if (!r)
		r = set_reg(fd, REG_SP_EL1, sp);
	if (!r)
		r = set_reg(fd, REG_SP, sp); /* SP_EL0, for code that selects SP0 */
	if (!r)
		r = set_reg(fd, REG_PC, pc);
	if (r)
		return r;

	m->run[idx]->request_interrupt_window = 0;
	m->run[idx]->immediate_exit = 0;
	return 0;
}
