/* SPDX-License-Identifier: MIT */
/*
 * kvmdbg-run --kernel on x86-64: a bzImage through the 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst, "64-bit boot protocol").
 *
 * Why the bzImage's 64-bit entry and not PVH: Debian's kernels carry no
 * uncompressed vmlinux, and the PVH note sits in the vmlinux inside the
 * compressed payload; the bzImage's own decompressor runs from its 64-bit
 * entry point (startup_64, 0x200 past the protected-mode code) with nothing
 * but identity page tables, a flat GDT and boot_params, so the VMM needs no
 * decompressor and no 32-bit setup of its own.
 *
 * The machine: RAM from 0 (e820: 0-639 KiB and 1 MiB-end usable, the BIOS
 * area reserved), KVM's in-kernel PIC/IOAPIC/LAPIC and PIT, CPUID from
 * KVM_GET_SUPPORTED_CPUID with each vCPU's APIC ID, a 16550A at 0x3f8 on
 * IRQ 4, and ACPI tables (RSDP, XSDT, FADT with FACS, a DSDT with \_S5, a
 * MADT with one local APIC per vCPU): the MADT brings the secondary CPUs up
 * (INIT/SIPI are KVM's), SLP_EN in the FADT's PM1a control block powers off
 * and its reset register resets. Not a hardware-reduced FADT: Linux then
 * drops the legacy PIC and with it the ISA IRQs, the UART's among them (its
 * tty open fails and user space writes get EIO). The PM1 event block has a
 * status that never changes, its enable bits and the control block read
 * back what was written (SCI_EN always set), and the SCI (IRQ 9) never fires.
 *
 * Guest-physical layout:
 *   0x1000  GDT (0x10 __BOOT_CS, 0x18 __BOOT_DS, 0x20 TSS)   0x1100 TSS
 *   0x2000  PML4, 0x3000 PDPT, 0x4000-0x7fff four PDs: 0-4 GiB identity, 2 MiB pages
 *   0x10000 boot_params ("zero page")   0x20000 command line
 *   0xe0000 ACPI tables (reserved)      0x100000 the kernel (protected-mode part)
 *   initrd: page-aligned at the top of RAM
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "linux.h"
#include "uart8250.h"

#define GDT_GPA         0x1000ULL
#define TSS_GPA         0x1100ULL
#define PML4_GPA        0x2000ULL
#define PDPT_GPA        0x3000ULL
#define PD_GPA          0x4000ULL
#define ZERO_PAGE_GPA   0x10000ULL
#define CMDLINE_GPA     0x20000ULL
#define CMDLINE_MAX     0x10000ULL
#define EBDA_GPA        0x9fc00ULL
#define ACPI_GPA        0xe0000ULL
#define KERNEL_GPA      0x100000ULL

#define BOOT_CS         0x10
#define BOOT_DS         0x18
#define BOOT_TSS        0x20

#define COM1_PORT       0x3f8
#define COM1_IRQ        4
#define PM1_EVT_PORT    0x600   /* FADT PM1a event block: status, enable (2 x 16 bits) */
#define PM1_CNT_PORT    0x604   /* FADT PM1a control block (16 bits) */
#define PM1_CNT_SLP_EN  0x2000  /* SLP_EN: enter the sleep state SLP_TYP names */
#define RESET_PORT      0xcf9   /* FADT reset register (value 6) */
#define KBD_CMD_PORT    0x64    /* 0xfe: pulse the reset line */
#define SCI_IRQ         9


/* boot_params offsets (arch/x86/include/uapi/asm/bootparam.h) */
#define BP_ACPI_RSDP    0x070
#define BP_EXT_RD_IMAGE 0x0c0
#define BP_EXT_RD_SIZE  0x0c4
#define BP_EXT_CMDLINE  0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR          0x1f1
#define BP_E820_TABLE   0x2d0
/* setup_header, at the same offsets in the bzImage and in boot_params */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG   0x1fe
#define HDR_JUMP        0x200
#define HDR_MAGIC       0x202
#define HDR_VERSION     0x206
#define HDR_LOADER      0x210
#define HDR_LOADFLAGS   0x211
#define HDR_RD_IMAGE    0x218
#define HDR_RD_SIZE     0x21c
#define HDR_CMDLINE     0x228
#define HDR_INITRD_MAX  0x22c
#define HDR_XLOADFLAGS  0x236
#define HDR_CMDLINE_SZ  0x238

#define E820_RAM        1
#define E820_RESERVED   2

const char linux_help[] =
	"                       (x86-64: a bzImage, 64-bit boot protocol; console: a\n"
	"                       16550A at 0x3f8, IRQ 4, on stdout; ACPI with one CPU\n"
	"                       per vCPU)\n";

struct linux_vm {
	struct linux_opts o;
	int vm_fd;
	uint8_t *mem;
	uint16_t version;           /* boot protocol */
	uint64_t kernel_size, initrd_gpa, initrd_size;
	struct kvm_cpuid2 *cpuid;
	struct uart8250 com1;
	uint8_t pm1[8];             /* PM1a status (reads 0), enable, control; under out.lock */
	struct linux_out out;       /* the console, the end */
};

static void put8(uint8_t *p, uint64_t off, uint8_t v) { p[off] = v; }
static void put16(uint8_t *p, uint64_t off, uint16_t v) { memcpy(p + off, &v, 2); }
static void put32(uint8_t *p, uint64_t off, uint32_t v) { memcpy(p + off, &v, 4); }
static void put64(uint8_t *p, uint64_t off, uint64_t v) { memcpy(p + off, &v, 8); }
static uint16_t get16(const uint8_t *p, uint64_t off) { uint16_t v; memcpy(&v, p + off, 2); return v; }
static uint32_t get32(const uint8_t *p, uint64_t off) { uint32_t v; memcpy(&v, p + off, 4); return v; }

static int slurp(const char *what, const char *path, uint8_t **data, size_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;
	size_t done = 0;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
		linux_err("%s '%s': %s", what, path,
		          fd < 0 ? strerror(errno) : "not a non-empty file");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	buf = malloc((size_t)st.st_size);
	while (buf && done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	if (!buf || done != (size_t)st.st_size) {
		linux_err("%s '%s': cannot read it", what, path);
		free(buf);
		return -1;
	}
	*data = buf;
	*size = done;
	return 0;
}

/* ---- ACPI ------------------------------------------------------------------ */

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return (uint8_t)-s;
}

/* A table's 36-byte header; the length and checksum are set by acpi_done(). */
static void acpi_header(uint8_t *t, const char *sig, uint8_t rev)
{
	memcpy(t, sig, 4);
	put8(t, 8, rev);
	memcpy(t + 10, "KVMDBG", 6);
	memcpy(t + 16, "KVMDBGRN", 8);
	put32(t, 24, 1);
	memcpy(t + 28, "KDBG", 4);
	put32(t, 32, 1);
}

static void acpi_done(uint8_t *t, uint32_t len)
{
	put32(t, 4, len);
	t[9] = 0;
	t[9] = checksum(t, len);
}

/* A Generic Address Structure: one byte in I/O space. */
static void gas_io8(uint8_t *p, uint16_t port)
{
	put8(p, 0, 1);  /* SystemIO */
	put8(p, 1, 8);  /* bit width */
	put8(p, 2, 0);
	put8(p, 3, 1);  /* byte access */
	put64(p, 4, port);
}

static void build_acpi(struct linux_vm *l)
{
	uint8_t *base = l->mem + ACPI_GPA;
	const uint64_t rsdp = ACPI_GPA, xsdt = ACPI_GPA + 0x40, fadt = ACPI_GPA + 0x100,
		       facs = ACPI_GPA + 0x240, dsdt = ACPI_GPA + 0x300, madt = ACPI_GPA + 0x400;
	/* DSDT: Name (_S5, Package () { 5, 5, 0, 0 }) */
	static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
				      0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00 };
	uint8_t *t;
	uint32_t n;

	memset(base, 0, 0x20000);

	/* RSDP, ACPI 2.0+: the XSDT only */
	t = l->mem + rsdp;
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + 9, "KVMDBG", 6);
	put8(t, 15, 2);
	put32(t, 20, 36);
	put64(t, 24, xsdt);
	t[8] = checksum(t, 20);
	t[32] = checksum(t, 36);

	t = l->mem + xsdt;
	acpi_header(t, "XSDT", 1);
	put64(t, 36, fadt);
	put64(t, 44, madt);
	acpi_done(t, 52);

	/* FADT 6.x: PM1a event and control blocks, no SMI (always in ACPI mode),
	 * no PM timer, no GPEs, no 8042, no CMOS RTC */
	t = l->mem + fadt;
	acpi_header(t, "FACP", 6);
	put32(t, 36, (uint32_t)facs);
	put32(t, 40, (uint32_t)dsdt);
	put16(t, 46, SCI_IRQ);
	put32(t, 56, PM1_EVT_PORT);
	put32(t, 64, PM1_CNT_PORT);
	put8(t, 88, 4);                                    /* PM1_EVT_LEN */
	put8(t, 89, 2);                                    /* PM1_CNT_LEN */
	put16(t, 109, (1u << 2) | (1u << 3) | (1u << 5)); /* no VGA, no MSI, no CMOS RTC */
	put32(t, 112, (1u << 0) | (1u << 10));             /* WBINVD, RESET_REG_SUP */
	gas_io8(t + 116, RESET_PORT);
	put8(t, 128, 0x06);
	put8(t, 131, 0);                                   /* minor version */
	put64(t, 132, facs);
	put64(t, 140, dsdt);
	memcpy(t + 268, "KVMDBGRN", 8);
	acpi_done(t, 276);

	t = l->mem + facs;
	memcpy(t, "FACS", 4);
	put32(t, 4, 64);
	put8(t, 32, 2);                                    /* version */

	t = l->mem + dsdt;
	acpi_header(t, "DSDT", 2);
	memcpy(t + 36, s5, sizeof(s5));
	acpi_done(t, 36 + sizeof(s5));

	/* MADT: local APICs, the IOAPIC, LINT1 as NMI on every CPU */
	t = l->mem + madt;
	acpi_header(t, "APIC", 4);
	put32(t, 36, 0xfee00000);
	put32(t, 40, 1); /* PCAT_COMPAT: the 8259s are there (KVM's), masked by Linux */
	n = 44;
	for (unsigned int i = 0; i < l->o.vcpus; i++) {
		put8(t, n, 0);
		put8(t, n + 1, 8);
		put8(t, n + 2, (uint8_t)i);  /* ACPI processor UID */
		put8(t, n + 3, (uint8_t)i);  /* APIC ID = KVM's vcpu_id */
		put32(t, n + 4, 1);          /* enabled */
		n += 8;
	}
	put8(t, n, 1);
	put8(t, n + 1, 12);
	put8(t, n + 2, (uint8_t)l->o.vcpus); /* IOAPIC ID after the CPUs' */
	put32(t, n + 4, 0xfec00000);
	put32(t, n + 8, 0);                  /* GSI base; KVM routes ISA IRQ n to pin n */
	n += 12;
	put8(t, n, 4);
	put8(t, n + 1, 6);
	put8(t, n + 2, 0xff);                /* all processors */
	put16(t, n + 3, 0);
	put8(t, n + 5, 1);                   /* LINT1 */
	n += 6;
	acpi_done(t, n);
}

/* ---- boot_params, page tables, GDT ----------------------------------------- */

static void e820_add(uint8_t *bp, uint64_t addr, uint64_t size, uint32_t type)
{
	uint8_t n = bp[BP_E820_ENTRIES];
	uint64_t off = BP_E820_TABLE + 20ULL * n;

	put64(bp, off, addr);
	put64(bp, off + 8, size);
	put32(bp, off + 16, type);
	bp[BP_E820_ENTRIES] = (uint8_t)(n + 1);
}

static void build_tables(struct linux_vm *l)
{
	const uint64_t P = 1, RW = 2, PS = 0x80;

	put64(l->mem, PML4_GPA, PDPT_GPA | P | RW);
	for (uint64_t i = 0; i < 4; i++) {
		put64(l->mem, PDPT_GPA + 8 * i, (PD_GPA + 0x1000 * i) | P | RW);
		for (uint64_t j = 0; j < 512; j++)
			put64(l->mem, PD_GPA + 0x1000 * i + 8 * j, ((i << 30) | (j << 21)) | P | RW | PS);
	}
	put64(l->mem, GDT_GPA + 0x00, 0);
	put64(l->mem, GDT_GPA + 0x08, 0);
	put64(l->mem, GDT_GPA + BOOT_CS, 0x00af9b000000ffffULL);
	put64(l->mem, GDT_GPA + BOOT_DS, 0x00cf93000000ffffULL);
	put64(l->mem, GDT_GPA + BOOT_TSS, 0x67 | (TSS_GPA & 0xffffff) << 16 | 0x8bULL << 40 |
					 ((TSS_GPA >> 24) & 0xff) << 56);
	put64(l->mem, GDT_GPA + BOOT_TSS + 8, TSS_GPA >> 32);
}

static int load_kernel(struct linux_vm *l)
{
	uint8_t *img = NULL, *rd = NULL, *bp = l->mem + ZERO_PAGE_GPA;
	size_t size, rd_size = 0, setup, hdr_end, cmd_len;
	uint32_t cmdline_max = 255, initrd_max = 0x37ffffff;
	const char *cmd = l->o.append ? l->o.append : "";

	if (slurp("--kernel", l->o.kernel, &img, &size) < 0)
		return -1;
	if (size < 0x300 || get16(img, HDR_BOOT_FLAG) != 0xaa55 ||
	    memcmp(img + HDR_MAGIC, "HdrS", 4) != 0) {
		linux_err("--kernel '%s': not a bzImage (no boot sector signature and \"HdrS\" header)",
		          l->o.kernel);
		goto fail;
	}
	l->version = get16(img, HDR_VERSION);
	if (l->version < 0x20c || !(get16(img, HDR_XLOADFLAGS) & 1)) {
		linux_err("--kernel '%s': boot protocol %u.%02u without a 64-bit entry point "
		          "(needs 2.12 and XLF_KERNEL_64)", l->o.kernel, l->version >> 8,
		          l->version & 0xff);
		goto fail;
	}
	setup = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	setup = (setup + 1) * 512;
	hdr_end = HDR_JUMP + 2 + img[HDR_JUMP + 1];
	if (setup >= size || hdr_end > setup || hdr_end > 0x290) {
		linux_err("--kernel '%s': setup of %zu bytes does not fit a %zu-byte image",
		          l->o.kernel, setup, size);
		goto fail;
	}
	l->kernel_size = size - setup;
	if (KERNEL_GPA + l->kernel_size > l->o.mem_size / 2) {
		linux_err("--kernel '%s': %" PRIu64 " bytes of kernel need more than --mem %" PRIu64
		          " MiB", l->o.kernel, l->kernel_size, l->o.mem_size >> 20);
		goto fail;
	}
	memcpy(l->mem + KERNEL_GPA, img + setup, l->kernel_size);

	/* boot_params: zero, then the image's setup_header as is */
	memset(bp, 0, 0x1000);
	memcpy(bp + BP_HDR, img + BP_HDR, hdr_end - BP_HDR);
	if (l->version >= 0x206)
		cmdline_max = get32(img, HDR_CMDLINE_SZ);
	if (l->version >= 0x203)
		initrd_max = get32(img, HDR_INITRD_MAX);
	put8(bp, HDR_LOADER, 0xff);
	put8(bp, HDR_LOADFLAGS, (uint8_t)(bp[HDR_LOADFLAGS] | 0x01)); /* LOADED_HIGH */
	cmd_len = strlen(cmd);
	if (cmd_len > cmdline_max || cmd_len >= CMDLINE_MAX) {
		linux_err("--append: %zu bytes; this kernel takes at most %" PRIu32, cmd_len,
		          cmdline_max);
		goto fail;
	}
	memcpy(l->mem + CMDLINE_GPA, cmd, cmd_len + 1);
	put32(bp, HDR_CMDLINE, (uint32_t)CMDLINE_GPA);
	if (l->version >= 0x20e)
		put64(bp, BP_ACPI_RSDP, ACPI_GPA);

	if (l->o.initrd) {
		uint64_t top = l->o.mem_size;

		if (slurp("--initrd", l->o.initrd, &rd, &rd_size) < 0)
			goto fail;
		if ((uint64_t)initrd_max + 1 < top)
			top = (uint64_t)initrd_max + 1;
		if (rd_size > top / 2) {
			linux_err("--initrd '%s': %zu bytes do not fit below 0x%" PRIx64,
			          l->o.initrd, rd_size, top);
			goto fail;
		}
		l->initrd_gpa = (top - rd_size) & ~0xfffULL;
		l->initrd_size = rd_size;
		memcpy(l->mem + l->initrd_gpa, rd, rd_size);
		put32(bp, HDR_RD_IMAGE, (uint32_t)l->initrd_gpa);
		put32(bp, HDR_RD_SIZE, (uint32_t)rd_size);
		put32(bp, BP_EXT_RD_IMAGE, 0);
		put32(bp, BP_EXT_RD_SIZE, 0);
	}
	put32(bp, BP_EXT_CMDLINE, 0);

	e820_add(bp, 0, EBDA_GPA, E820_RAM);
	e820_add(bp, EBDA_GPA, 0xa0000 - EBDA_GPA, E820_RESERVED);
	e820_add(bp, ACPI_GPA, KERNEL_GPA - ACPI_GPA, E820_RESERVED);
	e820_add(bp, KERNEL_GPA, l->o.mem_size - KERNEL_GPA, E820_RAM);
	free(img);
	free(rd);
	return 0;
fail:
	free(img);
	free(rd);
	return -1;
}

/* ---- the console ------------------------------------------------------------ */

/* The UART's output: stdout, a line at a time; a kernel panic ends the run. */
static void com1_tx(void *ctx, uint8_t c)
{
	struct linux_vm *l = ctx;

	linux_out_put(&l->out, c);
}

static void com1_irq(void *ctx, int level)
{
	struct linux_vm *l = ctx;
	struct kvm_irq_level irq = { .irq = COM1_IRQ, .level = (uint32_t)level };

	if (ioctl(l->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		linux_err("KVM_IRQ_LINE %d: %s", COM1_IRQ, strerror(errno));
}

/* ---- the VM ------------------------------------------------------------------- */

int linux_vm_create(const struct linux_opts *o, int kvm_fd, int vm_fd, uint8_t *mem,
		    struct linux_vm **out)
{
	struct linux_vm *l = calloc(1, sizeof(*l));
	struct kvm_pit_config pit = { .flags = 0 };
	unsigned int nent = 64;

	if (!l) {
		linux_err("out of memory");
		return -1;
	}
	*out = l;
	l->o = *o;
	l->vm_fd = vm_fd;
	l->mem = mem;
	linux_out_init(&l->out);
	uart8250_init(&l->com1, com1_tx, com1_irq, l);
	if (o->vcpus > 254) {
		linux_err("--vcpus %u: at most 254 with one IOAPIC after the local APICs",
		          o->vcpus);
		return -1;
	}
	if (ioctl(vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0) {
		linux_err("KVM_SET_TSS_ADDR: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		linux_err("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		linux_err("KVM_CREATE_PIT2: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		l->cpuid = calloc(1, sizeof(*l->cpuid) + nent * sizeof(l->cpuid->entries[0]));
		if (!l->cpuid) {
			linux_err("out of memory");
			return -1;
		}
		l->cpuid->nent = nent;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, l->cpuid) == 0)
			break;
		free(l->cpuid);
		l->cpuid = NULL;
		if (errno != E2BIG || nent >= 4096) {
			linux_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
			return -1;
		}
		nent *= 2;
	}
	build_tables(l);
	build_acpi(l);
	return load_kernel(l);
}

int linux_vcpu_setup(struct linux_vm *l, int vcpu_fd, unsigned int id)
{
	size_t sz = sizeof(*l->cpuid) + l->cpuid->nent * sizeof(l->cpuid->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = BOOT_CS, .type = 0xb,
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = {
		.base = 0, .limit = 0xffffffff, .selector = BOOT_DS, .type = 0x3,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	struct kvm_segment tr = {
		.base = TSS_GPA, .limit = 0x67, .selector = BOOT_TSS, .type = 0xb,
		.present = 1, .s = 0,
	};
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int r;

	if (!c) {
		linux_err("out of memory");
		return -1;
	}
	memcpy(c, l->cpuid, sz);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1) {
			e->ebx = (e->ebx & 0x00ffffffu) | (id << 24);
			e->ecx |= 1u << 31; /* a hypervisor: KVM's leaves 0x40000000 (kvm-clock) */
		}
		if (e->function == 0xb || e->function == 0x1f)
			e->edx = id;
	}
	r = ioctl(vcpu_fd, KVM_SET_CPUID2, c);
	free(c);
	if (r < 0) {
		linux_err("KVM_SET_CPUID2: %s", strerror(errno));
		return -1;
	}
	if (id != 0)
		return 0; /* a secondary CPU waits for INIT/SIPI in KVM's LAPIC */

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
		linux_err("KVM_GET_SREGS: %s", strerror(errno));
		return -1;
	}
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = tr;
	memset(&sregs.ldt, 0, sizeof(sregs.ldt));
	sregs.ldt.unusable = 1;
	sregs.gdt.base = GDT_GPA;
	sregs.gdt.limit = BOOT_TSS + 15;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr3 = PML4_GPA;
	sregs.cr4 = 1u << 5;                   /* PAE */
	sregs.cr0 = 0x80000011;                /* PG ET PE */
	sregs.efer = (1u << 8) | (1u << 10);   /* LME LMA */
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0) {
		linux_err("KVM_SET_SREGS: %s", strerror(errno));
		return -1;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;                     /* interrupts off */
	regs.rip = KERNEL_GPA + 0x200;         /* startup_64 */
	regs.rsi = ZERO_PAGE_GPA;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0) {
		linux_err("KVM_SET_REGS: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* One byte of port I/O; reads of nothing are all ones. */
static uint8_t pio_in(struct linux_vm *l, uint16_t port)
{
	if (port >= COM1_PORT && port < COM1_PORT + 8)
		return uart8250_read(&l->com1, port - COM1_PORT);
	if (port >= PM1_EVT_PORT && port < PM1_CNT_PORT + 2) {
		uint8_t v;

		pthread_mutex_lock(&l->out.lock);
		v = port < PM1_EVT_PORT + 2 ? 0 : l->pm1[port - PM1_EVT_PORT];
		pthread_mutex_unlock(&l->out.lock);
		return port == PM1_CNT_PORT ? (uint8_t)(v | 1) : v; /* SCI_EN: ACPI mode */
	}
	if (port == RESET_PORT)
		return 0;
	return 0xff;
}

static void pio_out(struct linux_vm *l, uint16_t port, uint8_t v)
{
	if (port >= COM1_PORT && port < COM1_PORT + 8)
		uart8250_write(&l->com1, port - COM1_PORT, v);
	else if (port == PM1_CNT_PORT + 1 && (v & (PM1_CNT_SLP_EN >> 8)))
		/* SLP_TYP is \_S5's: the only state the DSDT has */
		linux_out_end(&l->out, LINUX_POWER_OFF);
	else if (port >= PM1_EVT_PORT + 2 && port < PM1_CNT_PORT + 2) {
		pthread_mutex_lock(&l->out.lock);
		l->pm1[port - PM1_EVT_PORT] = v;
		pthread_mutex_unlock(&l->out.lock);
	}
	else if ((port == RESET_PORT && (v & 0x04)) || (port == KBD_CMD_PORT && v == 0xfe))
		linux_out_end(&l->out, LINUX_RESET);
}

int linux_handle_exit(struct linux_vm *l, struct kvm_run *run)
{
	switch (run->exit_reason) {
	case KVM_EXIT_IO: {
		uint8_t *d = (uint8_t *)run + run->io.data_offset;

		for (uint32_t i = 0; i < run->io.count; i++, d += run->io.size) {
			for (uint32_t b = 0; b < run->io.size; b++) {
				uint16_t port = (uint16_t)(run->io.port + b);

				if (run->io.direction == KVM_EXIT_IO_OUT)
					pio_out(l, port, d[b]);
				else
					d[b] = pio_in(l, port);
			}
		}
		return 1;
	}
	case KVM_EXIT_MMIO:
		/* nothing is mapped outside RAM and KVM's APICs: reads all ones */
		if (!run->mmio.is_write)
			memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
		return 1;
	case KVM_EXIT_SHUTDOWN:
		/* a triple fault: how x86 resets at the last resort */
		linux_out_end(&l->out, LINUX_RESET);
		return 1;
	default:
		return 0;
	}
}

enum linux_end linux_end(const struct linux_vm *l)
{
	return l ? linux_out_ended(&l->out) : LINUX_RUNNING;
}

void linux_describe(const struct linux_vm *l, char *buf, size_t size)
{
	int n = snprintf(buf, size, "Linux %s (x86 boot protocol %u.%02u, 64-bit entry), "
			 "%" PRIu64 " MiB, %u vCPU%s", l->o.kernel, l->version >> 8,
			 l->version & 0xff, l->o.mem_size >> 20, l->o.vcpus,
			 l->o.vcpus == 1 ? "" : "s");

	if (l->o.initrd && n > 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, ", initrd %s (%" PRIu64 " bytes at 0x%" PRIx64
			 ")", l->o.initrd, l->initrd_size, l->initrd_gpa);
}

void linux_vm_free(struct linux_vm *l)
{
	if (!l)
		return;
	linux_out_flush(&l->out);
	free(l->cpuid);
	free(l);
}
