/* SPDX-License-Identifier: MIT */
/*
 * Throwaway micro-VMs: used by kvmdbg_probe_verified() and by the test
 * suites. Internal, not exported. Each host arch implements these in
 * lib/arch/<arch>/microvm.c.
 *
 * Guest physical memory [0, mem_size) is one memslot, mapped at m->mem in
 * the host, and guest-virtual addresses equal guest-physical ones (x86:
 * identity page tables in long mode at CPL0; arm64: EL1 with the MMU off).
 * Code can be placed anywhere in [code_gpa, mem_size) and is run from there;
 * position-independent code assembled into a host binary can simply be
 * copied in.
 *
 * The arch hooks behind this are declared in lib/arch/backend.h;
 * kvmdbg_microvm_start() is one of them (lib/arch/<arch>/microvm.c).
 */
#ifndef KVMDBG_MICROVM_H
#define KVMDBG_MICROVM_H

#include <stddef.h>
#include <stdint.h>

struct kvm_run;

#define KVMDBG_MICROVM_MAX_VCPUS 4

struct kvmdbg_microvm {
	int kvm_fd;        /* borrowed from the caller, never closed here */
	int vm_fd;
	unsigned int nr_vcpus;
	int vcpu_fd[KVMDBG_MICROVM_MAX_VCPUS];
	struct kvm_run *run[KVMDBG_MICROVM_MAX_VCPUS];
	size_t run_size;
	uint8_t *mem;      /* host mapping of guest physical 0 */
	uint64_t mem_size;
	uint64_t code_gpa; /* first byte free for guest code and data */
};

/*
 * Create a VM with nr_vcpus vCPUs and mem_size bytes of memory (a multiple
 * of 2 MiB on x86), set up so that kvmdbg_microvm_start() can run code.
 * On failure everything created so far is destroyed and m is zeroed.
 * Returns 0 or a negative errno.
 */
int kvmdbg_microvm_create(struct kvmdbg_microvm *m, int kvm_fd, unsigned int nr_vcpus,
			  uint64_t mem_size);

/* Copy len bytes to guest physical gpa. Returns 0 or -EINVAL (out of range). */
int kvmdbg_microvm_load(struct kvmdbg_microvm *m, uint64_t gpa, const void *src, size_t len);

/*
 * Reset vCPU idx to the arch's initial debug-free state and point it at pc
 * with stack pointer sp (x86: long mode CPL0, interrupts disabled, RFLAGS =
 * 0x2; arm64: EL1h, DAIF masked). Returns 0 or a negative errno.
 */
int kvmdbg_microvm_start(struct kvmdbg_microvm *m, unsigned int idx, uint64_t pc, uint64_t sp);

/* Destroy everything; safe on a zeroed or already destroyed m. */
void kvmdbg_microvm_destroy(struct kvmdbg_microvm *m);

#endif /* KVMDBG_MICROVM_H */
