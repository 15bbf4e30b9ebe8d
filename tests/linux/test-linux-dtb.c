/* SPDX-License-Identifier: MIT */
/*
 * examples/linux-dtb.c without a VM (any host with libfdt): the device tree
 * kvmdbg-run --kernel gives an arm64 kernel, read back with libfdt node by
 * node and property by property, and what it refuses (leaving the buffer
 * as it was).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libfdt.h>

#include "linux-dtb.h"

static int passed, failed;

static void expect(const char *what, unsigned long long got, unsigned long long want)
{
	if (got != want) {
		printf("FAIL: %s: 0x%llx, expected 0x%llx\n", what, got, want);
		failed++;
	} else {
		printf("ok: %s\n", what);
		passed++;
	}
}

static void expect_str(const char *what, const char *got, const char *want)
{
	if (!got || strcmp(got, want) != 0) {
		printf("FAIL: %s: '%s', expected '%s'\n", what, got ? got : "(none)", want);
		failed++;
	} else {
		printf("ok: %s\n", what);
		passed++;
	}
}

/* A property of n big-endian cells, cell i (or ~0 when it is not that long). */
static unsigned long long cell(const void *fdt, int node, const char *name, int n, int i)
{
	int len;
	const fdt32_t *p = fdt_getprop(fdt, node, name, &len);

	if (!p || len != n * 4)
		return ~0ULL;
	return fdt32_to_cpu(p[i]);
}

static unsigned long long cell64(const void *fdt, int node, const char *name, int n, int i)
{
	int len;
	const char *p = fdt_getprop(fdt, node, name, &len);
	fdt64_t v;

	if (!p || len != n * 8)
		return ~0ULL;
	/* A property is 4-byte aligned only: copy the cell out. */
	memcpy(&v, p + 8 * i, sizeof(v));
	return fdt64_to_cpu(v);
}

static const char *str(const void *fdt, int node, const char *name)
{
	int len;
	const char *p = fdt_getprop(fdt, node, name, &len);

	return p && len > 0 && p[len - 1] == '\0' ? p : NULL;
}

static const struct linux_dtb machine = {
	.mem_base = 0, .mem_size = 256ULL << 20, .vcpus = 3,
	.gicd_base = 0xf0000000, .gicd_size = 0x10000,
	.gicr_base = 0xf0100000, .gicr_size = 3 * 0x20000,
	.uart_base = 0xf2000000, .uart_size = 8, .uart_spi = 1, .uart_clock = 1843200,
	.bootargs = "console=ttyS0 nokaslr",
	.initrd_start = 0xfc00000, .initrd_end = 0xfc12345,
};

static void check_tree(const void *fdt, int size)
{
	static const unsigned int ppis[] = { 13, 14, 11, 10 };
	char name[64];
	int node, gic, uart, len;

	expect("fdt_check_header", (unsigned int)fdt_check_header(fdt), 0);
	expect("the size returned is fdt_totalsize", (unsigned int)size, fdt_totalsize(fdt));
	expect("root #address-cells", cell(fdt, 0, "#address-cells", 1, 0), 2);
	expect("root #size-cells", cell(fdt, 0, "#size-cells", 1, 0), 2);
	expect("root interrupt-parent is the GIC", cell(fdt, 0, "interrupt-parent", 1, 0),
	       LINUX_DTB_GIC_PHANDLE);

	node = fdt_path_offset(fdt, "/memory@0");
	expect_str("/memory@0 device_type", str(fdt, node, "device_type"), "memory");
	expect("/memory@0 reg base", cell64(fdt, node, "reg", 2, 0), 0);
	expect("/memory@0 reg size", cell64(fdt, node, "reg", 2, 1), 256ULL << 20);

	node = fdt_path_offset(fdt, "/cpus");
	expect("/cpus #address-cells", cell(fdt, node, "#address-cells", 1, 0), 1);
	expect("/cpus #size-cells", cell(fdt, node, "#size-cells", 1, 0), 0);
	len = 0;
	fdt_for_each_subnode(node, fdt, fdt_path_offset(fdt, "/cpus"))
		len++;
	expect("/cpus has one node per vCPU", (unsigned int)len, 3);
	for (unsigned int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "/cpus/cpu@%x", i);
		node = fdt_path_offset(fdt, name);
		expect_str("cpu device_type", str(fdt, node, "device_type"), "cpu");
		expect("cpu reg is its MPIDR", cell(fdt, node, "reg", 1, 0), i);
		expect_str("cpu enable-method", str(fdt, node, "enable-method"), "psci");
	}

	node = fdt_path_offset(fdt, "/psci");
	expect_str("/psci compatible", str(fdt, node, "compatible"), "arm,psci-0.2");
	expect_str("/psci method", str(fdt, node, "method"), "hvc");

	gic = fdt_node_offset_by_phandle(fdt, LINUX_DTB_GIC_PHANDLE);
	expect("the GIC's node is /interrupt-controller@f0000000", (unsigned int)gic,
	       (unsigned int)fdt_path_offset(fdt, "/interrupt-controller@f0000000"));
	expect_str("GIC compatible", str(fdt, gic, "compatible"), "arm,gic-v3");
	expect("GIC interrupt-controller (empty)",
	       fdt_getprop(fdt, gic, "interrupt-controller", &len) != NULL && len == 0, 1);
	expect("GIC #interrupt-cells", cell(fdt, gic, "#interrupt-cells", 1, 0), 3);
	expect("GIC distributor base", cell64(fdt, gic, "reg", 4, 0), 0xf0000000);
	expect("GIC distributor size", cell64(fdt, gic, "reg", 4, 1), 0x10000);
	expect("GIC redistributor base", cell64(fdt, gic, "reg", 4, 2), 0xf0100000);
	expect("GIC redistributor size", cell64(fdt, gic, "reg", 4, 3), 0x60000);

	node = fdt_path_offset(fdt, "/timer");
	expect_str("timer compatible", str(fdt, node, "compatible"), "arm,armv8-timer");
	for (int i = 0; i < 4; i++) {
		expect("timer interrupt is a PPI", cell(fdt, node, "interrupts", 12, 3 * i), 1);
		expect("timer PPI number", cell(fdt, node, "interrupts", 12, 3 * i + 1), ppis[i]);
		expect("timer PPI level-high", cell(fdt, node, "interrupts", 12, 3 * i + 2), 4);
	}

	uart = fdt_path_offset(fdt, "/serial@f2000000");
	expect_str("serial compatible", str(fdt, uart, "compatible"), "ns16550a");
	expect("serial reg base", cell64(fdt, uart, "reg", 2, 0), 0xf2000000);
	expect("serial reg size", cell64(fdt, uart, "reg", 2, 1), 8);
	expect("serial reg-shift", cell(fdt, uart, "reg-shift", 1, 0), 0);
	expect("serial reg-io-width", cell(fdt, uart, "reg-io-width", 1, 0), 1);
	expect("serial clock-frequency", cell(fdt, uart, "clock-frequency", 1, 0), 1843200);
	expect("serial interrupt is an SPI", cell(fdt, uart, "interrupts", 3, 0), 0);
	expect("serial SPI number", cell(fdt, uart, "interrupts", 3, 1), 1);
	expect("serial level-high", cell(fdt, uart, "interrupts", 3, 2), 4);

	node = fdt_path_offset(fdt, "/chosen");
	expect_str("/chosen bootargs", str(fdt, node, "bootargs"), "console=ttyS0 nokaslr");
	expect("/chosen stdout-path names the serial node",
	       (unsigned int)fdt_path_offset(fdt, str(fdt, node, "stdout-path")),
	       (unsigned int)uart);
	expect("/chosen linux,initrd-start", cell64(fdt, node, "linux,initrd-start", 1, 0),
	       0xfc00000);
	expect("/chosen linux,initrd-end", cell64(fdt, node, "linux,initrd-end", 1, 0),
	       0xfc12345);
}

/* A refused machine or buffer: the error, and the buffer as it was. */
static void refused(const char *what, const struct linux_dtb *d, size_t size, int want)
{
	static unsigned char buf[4096];
	unsigned char copy[sizeof(buf)];
	int r;

	memset(buf, 0xa5, sizeof(buf));
	memcpy(copy, buf, sizeof(buf));
	r = linux_dtb_build(d, buf, size);
	expect(what, (unsigned int)r, (unsigned int)want);
	expect("  and the buffer is unchanged", memcmp(buf, copy, sizeof(buf)) == 0, 1);
}

int main(void)
{
	static unsigned char buf[65536] __attribute__((aligned(8)));
	struct linux_dtb d = machine;
	int size, node;

	expect("mpidr of vCPU 0", linux_dtb_mpidr(0), 0);
	expect("mpidr of vCPU 15: Aff0 15", linux_dtb_mpidr(15), 0xf);
	expect("mpidr of vCPU 16: Aff1 1", linux_dtb_mpidr(16), 0x100);
	expect("mpidr of vCPU 4095", linux_dtb_mpidr(4095), 0xff0f);
	expect("mpidr of vCPU 4096: Aff2 1", linux_dtb_mpidr(4096), 0x10000);

	size = linux_dtb_build(&machine, buf, sizeof(buf));
	expect("linux_dtb_build succeeds", size > 0, 1);
	if (size > 0)
		check_tree(buf, size);

	/* no initrd, no bootargs, 17 CPUs: cpu@101 for vCPU 16 */
	d.initrd_start = d.initrd_end = 0;
	d.bootargs = NULL;
	d.vcpus = 17;
	size = linux_dtb_build(&d, buf, sizeof(buf));
	expect("linux_dtb_build without initrd succeeds", size > 0, 1);
	node = fdt_path_offset(buf, "/chosen");
	expect("no linux,initrd-start without an initrd",
	       fdt_getprop(buf, node, "linux,initrd-start", NULL) == NULL, 1);
	expect_str("empty bootargs", str(buf, node, "bootargs"), "");
	node = fdt_path_offset(buf, "/cpus/cpu@100");
	expect("vCPU 16 is cpu@100 with reg 0x100",
	       node >= 0 ? cell(buf, node, "reg", 1, 0) : ~0ULL, 0x100);

	refused("a buffer too small: -ENOSPC", &machine, 256, -ENOSPC);
	refused("a buffer smaller than the header: -ENOSPC", &machine, 8, -ENOSPC);
	d = machine;
	d.vcpus = 0;
	refused("no vCPUs: -EINVAL", &d, 4096, -EINVAL);
	d = machine;
	d.mem_size = 0;
	refused("no memory: -EINVAL", &d, 4096, -EINVAL);
	d = machine;
	d.initrd_end = d.initrd_start - 1;
	refused("an initrd ending before its start: -EINVAL", &d, 4096, -EINVAL);
	d = machine;
	d.uart_spi = 988;
	refused("SPI 988 (INTID 1020): -EINVAL", &d, 4096, -EINVAL);
	expect("a NULL buffer: -EINVAL", (unsigned int)linux_dtb_build(&machine, NULL, 4096),
	       (unsigned int)-EINVAL);
	expect("a NULL machine: -EINVAL", (unsigned int)linux_dtb_build(NULL, buf, 4096),
	       (unsigned int)-EINVAL);

	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
