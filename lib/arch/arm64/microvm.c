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
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "kvmdbg-int.h"
#include "microvm.h"

#define MICROVM_CODE_GPA  0x10000ull
#define MICROVM_MMIO_GPA  (1ull << 30)
#define MICROVM_FAIL_MMIO (MICROVM_MMIO_GPA + 0xff8)
#define MICROVM_MAX_MEM   (1ull << 30)

#define CORE_REG(name) \
	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(name))
#define REG_PC        CORE_REG(regs.pc)
#define REG_SP        CORE_REG(regs.sp)
#define REG_PSTATE    CORE_REG(regs.pstate)
#define REG_SP_EL1    CORE_REG(sp_el1)
#define REG_VBAR_EL1  ARM64_SYS_REG(3, 0, 12, 0, 0)
#define REG_MDSCR_EL1 ARM64_SYS_REG(2, 0, 0, 2, 2) /* op0 = 2: a debug register */

/* EL1h with D, A, I, F masked. */
#define PSTATE_EL1H_MASKED 0x3c5ull

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

static void set_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl >= 0 && !(fl & FD_CLOEXEC))
		fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
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

static void teardown(struct kvmdbg_microvm *m)
{
	for (unsigned int i = 0; i < KVMDBG_MICROVM_MAX_VCPUS; i++) {
		if (m->run[i])
			munmap(m->run[i], m->run_size);
		if (i < m->nr_vcpus && m->vcpu_fd[i] >= 0)
			close(m->vcpu_fd[i]);
	}
	if (m->vm_fd >= 0)
		close(m->vm_fd);
	if (m->mem)
		munmap(m->mem, m->mem_size);
	memset(m, 0, sizeof(*m));
}

int kvmdbg_microvm_create(struct kvmdbg_microvm *m, int kvm_fd, unsigned int nr_vcpus,
			  uint64_t mem_size)
{
	struct kvm_userspace_memory_region region = { 0 };
	long page = sysconf(_SC_PAGESIZE);
	void *mem;
	int r;

	if (!m)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	if (page <= 0)
		page = 4096;
	if (kvm_fd < 0 || nr_vcpus == 0 || nr_vcpus > KVMDBG_MICROVM_MAX_VCPUS ||
	    mem_size <= MICROVM_CODE_GPA || mem_size % (uint64_t)page || mem_size > MICROVM_MAX_MEM)
		return -EINVAL;

	m->kvm_fd = kvm_fd;
	m->vm_fd = -1;
	for (unsigned int i = 0; i < KVMDBG_MICROVM_MAX_VCPUS; i++)
		m->vcpu_fd[i] = -1;

	r = kvmdbg_ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	if (r < 0)
		goto fail;
	if ((size_t)r < sizeof(struct kvm_run)) {
		r = -EINVAL;
		goto fail;
	}
	m->run_size = (size_t)r;

	/* Type 0: the default 40-bit IPA space, enough for RAM at 0 and the
	 * MMIO window at 1 GiB on every host. */
	r = kvmdbg_ioctl(kvm_fd, KVM_CREATE_VM, (void *)0);
	if (r < 0)
		goto fail;
	m->vm_fd = r;
	set_cloexec(m->vm_fd);

	mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	m->mem = mem;
	m->mem_size = mem_size;
	m->code_gpa = MICROVM_CODE_GPA;
	write_fail_vectors(m->mem);

	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = mem_size;
	region.userspace_addr = (uintptr_t)mem;
	r = kvmdbg_ioctl(m->vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
	if (r < 0)
		goto fail;

	for (unsigned int i = 0; i < nr_vcpus; i++) {
		void *run;

		r = kvmdbg_ioctl(m->vm_fd, KVM_CREATE_VCPU, (void *)(uintptr_t)i);
		if (r < 0)
			goto fail;
		m->vcpu_fd[i] = r;
		m->nr_vcpus = i + 1;
		set_cloexec(r);

		run = mmap(NULL, m->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->vcpu_fd[i], 0);
		if (run == MAP_FAILED) {
			r = -errno;
			goto fail;
		}
		m->run[i] = run;

		r = vcpu_init(m->vm_fd, m->vcpu_fd[i]);
		if (r < 0)
			goto fail;
	}
	return 0;

fail:
	teardown(m);
	return r;
}

int kvmdbg_microvm_load(struct kvmdbg_microvm *m, uint64_t gpa, const void *src, size_t len)
{
	if (!m || !m->mem || (len && !src) || gpa > m->mem_size || len > m->mem_size - gpa)
		return -EINVAL;
	memcpy(m->mem + gpa, src, len);
	return 0;
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

void kvmdbg_microvm_destroy(struct kvmdbg_microvm *m)
{
	if (!m || !m->mem)
		return;
	teardown(m);
}
