/* SPDX-License-Identifier: MIT */
/*
 * The device tree kvmdbg-run --kernel hands an arm64 Linux kernel (x0 at
 * entry): memory, the CPUs with PSCI 0.2 as their enable method, a GICv3,
 * the architected timer, a 16550A console and /chosen (bootargs, stdout-path,
 * the initrd). Built with libfdt's sequential-write functions; portable
 * (nothing here needs an arm64 host or KVM), so the unit suite checks it
 * everywhere libfdt is installed.
 */
#ifndef KVMDBG_RUN_LINUX_DTB_H
#define KVMDBG_RUN_LINUX_DTB_H

#include <stddef.h>
#include <stdint.h>

/** The machine the tree describes. Addresses are guest-physical. */
struct linux_dtb {
	uint64_t mem_base, mem_size;     /**< the one RAM bank */
	unsigned int vcpus;              /**< CPUs 0..vcpus-1, KVM's vCPU ids */
	uint64_t gicd_base, gicd_size;   /**< GICv3 distributor */
	uint64_t gicr_base, gicr_size;   /**< redistributors: 128 KiB per CPU */
	uint64_t uart_base, uart_size;   /**< ns16550a, byte registers, reg-shift 0 */
	unsigned int uart_spi;           /**< its interrupt: SPI number (INTID - 32) */
	uint32_t uart_clock;             /**< its input clock in Hz */
	const char *bootargs;            /**< the command line; NULL: empty */
	uint64_t initrd_start, initrd_end; /**< [start, end); both 0: no initrd */
};

/** The phandle of the interrupt controller in the tree. */
#define LINUX_DTB_GIC_PHANDLE 1

/**
 * linux_dtb_mpidr() - a CPU node's `reg`: the affinity KVM gives vCPU @id.
 * @id: the vCPU id (KVM_CREATE_VCPU), below 4096.
 *
 * KVM derives MPIDR_EL1 from the vCPU id: Aff0 holds its low 4 bits, Aff1
 * the next 8 (Aff2 the 8 after that); the tree must name each CPU by it.
 *
 * Return: Aff2:Aff1:Aff0 as the 24 low bits.
 */
uint32_t linux_dtb_mpidr(unsigned int id);

/**
 * linux_dtb_build() - write the device tree blob for @d into @buf.
 * @d: the machine; every size nonzero, vcpus 1 to 4096, the UART's SPI
 *     below 988, initrd_end not below initrd_start.
 * @buf: where the blob goes (8-byte aligned in guest memory is the caller's
 *       business).
 * @size: bytes available at @buf.
 *
 * Return: the blob's size in bytes (fdt_totalsize), -EINVAL for a machine
 * that cannot be described (@buf then unchanged), -ENOSPC when @size is too
 * small (@buf's contents then undefined).
 */
int linux_dtb_build(const struct linux_dtb *d, void *buf, size_t size);

#endif
