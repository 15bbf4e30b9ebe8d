/* SPDX-License-Identifier: MIT */
/*
 * kvmdbg-run --kernel on arm64: the device tree (linux-dtb.h), written with
 * libfdt's sequential-write API. The bindings followed (Linux's
 * Documentation/devicetree/bindings): arm/cpus.yaml and arm/psci.yaml,
 * interrupt-controller/arm,gic-v3.yaml, timer/arm,arch_timer.yaml,
 * serial/8250.yaml, and chosen.yaml for /chosen.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfdt.h>

#include "linux-dtb.h"

/* Interrupt specifiers of the GIC binding: type, number, flags. */
#define GIC_SPI            0
#define GIC_PPI            1
#define IRQ_LEVEL_HIGH     4

/* The architected timer's PPIs: secure and non-secure physical, virtual, hypervisor. */
static const uint32_t timer_ppis[] = { 13, 14, 11, 10 };

uint32_t linux_dtb_mpidr(unsigned int id)
{
	return (id & 0xfu) | ((id >> 4) & 0xffu) << 8 | ((id >> 12) & 0xffu) << 16;
}

/* A property of big-endian cells. */
static int prop_cells(void *fdt, const char *name, const uint32_t *v, size_t n)
{
	fdt32_t be[12];

	if (n > sizeof(be) / sizeof(be[0]))
		return -FDT_ERR_INTERNAL;
	for (size_t i = 0; i < n; i++)
		be[i] = cpu_to_fdt32(v[i]);
	return fdt_property(fdt, name, be, (int)(n * sizeof(be[0])));
}

/* reg = <addr size> with #address-cells = #size-cells = 2. */
static int prop_reg(void *fdt, uint64_t addr, uint64_t size)
{
	fdt64_t be[2] = { cpu_to_fdt64(addr), cpu_to_fdt64(size) };

	return fdt_property(fdt, "reg", be, sizeof(be));
}

static int begin(void *fdt, const char *name, uint64_t addr)
{
	char full[64];

	snprintf(full, sizeof(full), "%s@%llx", name, (unsigned long long)addr);
	return fdt_begin_node(fdt, full);
}

static int cpus(void *fdt, const struct linux_dtb *d)
{
	int r = fdt_begin_node(fdt, "cpus");

	if (!r)
		r = fdt_property_u32(fdt, "#address-cells", 1);
	if (!r)
		r = fdt_property_u32(fdt, "#size-cells", 0);
	for (unsigned int i = 0; !r && i < d->vcpus; i++) {
		uint32_t mpidr = linux_dtb_mpidr(i);

		r = begin(fdt, "cpu", mpidr);
		if (!r)
			r = fdt_property_string(fdt, "device_type", "cpu");
		if (!r)
			r = fdt_property_string(fdt, "compatible", "arm,armv8");
		if (!r)
			r = fdt_property_u32(fdt, "reg", mpidr);
		if (!r)
			r = fdt_property_string(fdt, "enable-method", "psci");
		if (!r)
			r = fdt_end_node(fdt);
	}
	return r ? r : fdt_end_node(fdt);
}

static int devices(void *fdt, const struct linux_dtb *d)
{
	uint32_t timer[3 * 4], uart_irq[3] = { GIC_SPI, d->uart_spi, IRQ_LEVEL_HIGH };
	fdt64_t gic_reg[4] = {
		cpu_to_fdt64(d->gicd_base), cpu_to_fdt64(d->gicd_size),
		cpu_to_fdt64(d->gicr_base), cpu_to_fdt64(d->gicr_size),
	};
	char path[64];
	int r;

	/* PSCI 0.2 through HVC: KVM answers it (KVM_ARM_VCPU_PSCI_0_2) */
	r = fdt_begin_node(fdt, "psci");
	if (!r)
		r = fdt_property_string(fdt, "compatible", "arm,psci-0.2");
	if (!r)
		r = fdt_property_string(fdt, "method", "hvc");
	if (!r)
		r = fdt_end_node(fdt);

	if (!r)
		r = begin(fdt, "interrupt-controller", d->gicd_base);
	if (!r)
		r = fdt_property_string(fdt, "compatible", "arm,gic-v3");
	if (!r)
		r = fdt_property_u32(fdt, "#interrupt-cells", 3);
	if (!r)
		r = fdt_property(fdt, "interrupt-controller", NULL, 0);
	if (!r)
		r = fdt_property_u32(fdt, "#redistributor-regions", 1);
	if (!r)
		r = fdt_property(fdt, "reg", gic_reg, sizeof(gic_reg));
	if (!r)
		r = fdt_property_u32(fdt, "phandle", LINUX_DTB_GIC_PHANDLE);
	if (!r)
		r = fdt_end_node(fdt);

	for (size_t i = 0; i < 4; i++) {
		timer[3 * i] = GIC_PPI;
		timer[3 * i + 1] = timer_ppis[i];
		timer[3 * i + 2] = IRQ_LEVEL_HIGH;
	}
	if (!r)
		r = fdt_begin_node(fdt, "timer");
	if (!r)
		r = fdt_property_string(fdt, "compatible", "arm,armv8-timer");
	if (!r)
		r = prop_cells(fdt, "interrupts", timer, 12);
	if (!r)
		r = fdt_property(fdt, "always-on", NULL, 0);
	if (!r)
		r = fdt_end_node(fdt);

	if (!r)
		r = begin(fdt, "serial", d->uart_base);
	if (!r)
		r = fdt_property_string(fdt, "compatible", "ns16550a");
	if (!r)
		r = prop_reg(fdt, d->uart_base, d->uart_size);
	if (!r)
		r = fdt_property_u32(fdt, "clock-frequency", d->uart_clock);
	if (!r)
		r = fdt_property_u32(fdt, "reg-shift", 0);
	if (!r)
		r = fdt_property_u32(fdt, "reg-io-width", 1);
	if (!r)
		r = prop_cells(fdt, "interrupts", uart_irq, 3);
	if (!r)
		r = fdt_end_node(fdt);

	snprintf(path, sizeof(path), "/serial@%llx", (unsigned long long)d->uart_base);
	if (!r)
		r = fdt_begin_node(fdt, "chosen");
	if (!r)
		r = fdt_property_string(fdt, "bootargs", d->bootargs ? d->bootargs : "");
	if (!r)
		r = fdt_property_string(fdt, "stdout-path", path);
	if (!r && d->initrd_end) {
		r = fdt_property_u64(fdt, "linux,initrd-start", d->initrd_start);
		if (!r)
			r = fdt_property_u64(fdt, "linux,initrd-end", d->initrd_end);
	}
	return r ? r : fdt_end_node(fdt);
}

static bool valid(const struct linux_dtb *d)
{
	return d && d->mem_size && d->gicd_size && d->gicr_size && d->uart_size &&
	       d->vcpus >= 1 && d->vcpus <= 4096 && d->uart_spi < 988 && d->uart_clock &&
	       d->initrd_end >= d->initrd_start &&
	       (!d->bootargs || strlen(d->bootargs) < 65536);
}

int linux_dtb_build(const struct linux_dtb *d, void *buf, size_t size)
{
	void *fdt;
	int r;

	if (!valid(d) || !buf)
		return -EINVAL;
	if (size < sizeof(struct fdt_header) || size > 0x7fffffff)
		return size < sizeof(struct fdt_header) ? -ENOSPC : -EINVAL;
	fdt = malloc(size); /* @buf keeps its contents when the tree does not fit */
	if (!fdt)
		return -ENOMEM;
	r = fdt_create(fdt, (int)size);
	if (!r)
		r = fdt_finish_reservemap(fdt);
	if (!r)
		r = fdt_begin_node(fdt, "");
	if (!r)
		r = fdt_property_string(fdt, "compatible", "linux,dummy-virt");
	if (!r)
		r = fdt_property_u32(fdt, "#address-cells", 2);
	if (!r)
		r = fdt_property_u32(fdt, "#size-cells", 2);
	if (!r)
		r = fdt_property_u32(fdt, "interrupt-parent", LINUX_DTB_GIC_PHANDLE);
	if (!r)
		r = begin(fdt, "memory", d->mem_base);
	if (!r)
		r = fdt_property_string(fdt, "device_type", "memory");
	if (!r)
		r = prop_reg(fdt, d->mem_base, d->mem_size);
	if (!r)
		r = fdt_end_node(fdt);
	if (!r)
		r = cpus(fdt, d);
	if (!r)
		r = devices(fdt, d);
	if (!r)
		r = fdt_end_node(fdt);
	if (!r)
		r = fdt_finish(fdt);
	if (r) {
		free(fdt);
		return r == -FDT_ERR_NOSPACE ? -ENOSPC : -EINVAL;
	}
	r = (int)fdt_totalsize(fdt);
	memcpy(buf, fdt, (size_t)r);
	free(fdt);
	return r;
}
