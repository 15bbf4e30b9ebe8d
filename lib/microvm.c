/* SPDX-License-Identifier: MIT */
/*
 * Throwaway micro-VMs (lib/microvm.h), the arch-neutral half: the VM, one
 * memslot at guest physical 0 and the vCPUs with their kvm_run mappings.
 * The arch's layout, vCPU initialisation and start live in
 * lib/arch/<arch>/microvm.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "kvmdbg-int.h"
#include "microvm.h"

/* KVM fds are O_CLOEXEC already; make sure of it for kernels that were not. */
static void set_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl >= 0 && !(fl & FD_CLOEXEC))
		fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

/*
 * Tear down whatever of m exists. During creation vm_fd and vcpu_fd[] are -1
 * until created; for a finished micro-VM every vcpu_fd[i < nr_vcpus] and
 * vm_fd are valid.
 */
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

/*
 * The VM: type 0 (x86: the only one; arm64: the default 40-bit IPA space).
 * KVM_CREATE_VM fails with -EINTR when a signal arrives while it sets up
 * the VM's mm hooks (QEMU retries it the same way).
 */
static int create_vm(struct kvmdbg_microvm *m)
{
	int r = -EINTR;

	for (unsigned int tries = 0; tries < 100 && r == -EINTR; tries++)
		r = kvmdbg_ioctl(m->kvm_fd, KVM_CREATE_VM, (void *)0);
	if (r < 0)
		return r;
	m->vm_fd = r;
	set_cloexec(m->vm_fd);
	return 0;
}

/* Guest memory at guest-physical 0, and the arch's layout in it. */
static int map_memory(struct kvmdbg_microvm *m, uint64_t mem_size)
{
	struct kvm_userspace_memory_region region = {0};
	void *mem;

	/* MAP_NORESERVE: only the pages the guest touches are ever allocated. */
	mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	m->mem = mem;
	m->mem_size = mem_size;
	m->code_gpa = kvmdbg_microvm_arch_layout(m->mem, mem_size);

	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = mem_size;
	region.userspace_addr = (uintptr_t)mem;
	return kvmdbg_ioctl_chk(m->vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
}

/* vCPU i, its run area and the arch's initial state. */
static int add_vcpu(struct kvmdbg_microvm *m, unsigned int i)
{
	void *run;
	int r;

	r = kvmdbg_ioctl(m->vm_fd, KVM_CREATE_VCPU, (void *)(uintptr_t)i);
	if (r < 0)
		return r;
	m->vcpu_fd[i] = r;
	m->nr_vcpus = i + 1;
	set_cloexec(r);

	run = mmap(NULL, m->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->vcpu_fd[i], 0);
	if (run == MAP_FAILED)
		return -errno;
	m->run[i] = run;
	return kvmdbg_microvm_arch_vcpu_init(m, i);
}

int kvmdbg_microvm_create(struct kvmdbg_microvm *m, int kvm_fd, unsigned int nr_vcpus,
			  uint64_t mem_size)
{
	int r;

	if (!m)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	if (kvm_fd < 0 || nr_vcpus == 0 || nr_vcpus > KVMDBG_MICROVM_MAX_VCPUS ||
	    kvmdbg_microvm_arch_check(mem_size))
		return -EINVAL;

	m->kvm_fd = kvm_fd;
	m->vm_fd = -1;
	for (unsigned int i = 0; i < KVMDBG_MICROVM_MAX_VCPUS; i++)
		m->vcpu_fd[i] = -1;

	r = kvmdbg_ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	if (r >= 0 && (size_t)r < sizeof(struct kvm_run))
		r = -EINVAL;
	if (r < 0)
		goto fail;
	m->run_size = (size_t)r;

	r = create_vm(m);
	if (r >= 0)
		r = map_memory(m, mem_size);
	for (unsigned int i = 0; r >= 0 && i < nr_vcpus; i++)
		r = add_vcpu(m, i);
	if (r < 0)
		goto fail;
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

void kvmdbg_microvm_destroy(struct kvmdbg_microvm *m)
{
	/* A micro-VM always has memory: no memory means zeroed or destroyed. */
	if (!m || !m->mem)
		return;
	teardown(m);
}
