/* SPDX-License-Identifier: MIT */
/*
 * kvmdbg-run --kernel on arm64: an Image (Debian's vmlinuz is a gzip'ed one;
 * zlib reads both) through the arm64 boot protocol
 * (Documentation/arch/arm64/booting.rst): the Image at text_offset from a
 * 2 MiB-aligned base, MMU off, EL1h with DAIF masked, x0 the device tree's
 * address, x1-x3 zero.
 *
 * The machine: RAM from 0, KVM's GICv3 (KVM_DEV_TYPE_ARM_VGIC_V3) and
 * architected timer, PSCI 0.2 answered by KVM (KVM_ARM_VCPU_PSCI_0_2: the
 * secondary vCPUs start powered off and CPU_ON brings them up; SYSTEM_OFF and
 * SYSTEM_RESET come back as KVM_EXIT_SYSTEM_EVENT), a 16550A (uart8250.c)
 * behind KVM_EXIT_MMIO on SPI 1 as the console, and a device tree
 * (linux-dtb.c) that says so.
 *
 * Guest-physical layout:
 *   0x00200000  the Image (text_offset from here)
 *   below the DTB, page-aligned: the initrd
 *   the last 2 MiB of RAM: the device tree (up to 64 KiB)
 *   0xf0000000  GICv3 distributor (64 KiB)
 *   0xf0100000  GICv3 redistributors (128 KiB per vCPU)
 *   0xf2000000  the 16550A (8 byte registers)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <zlib.h>

#include "linux-dtb.h"
#include "linux.h"
#include "uart8250.h"

#define KERNEL_BASE     0x200000ULL     /* 2 MiB-aligned */
#define DTB_MAX         0x10000ULL
#define DTB_REGION      0x200000ULL     /* the DTB's 2 MiB block: nothing else in it */
#define GICD_GPA        0xf0000000ULL
#define GICD_SIZE       0x10000ULL
#define GICR_GPA        0xf0100000ULL
#define GICR_PER_CPU    0x20000ULL      /* RD_base and SGI_base frames */
#define UART_GPA        0xf2000000ULL
#define UART_SIZE       8ULL
#define UART_SPI        1
#define UART_CLOCK      1843200u


/* The Image header (booting.rst, "Call the kernel image") */
#define IMG_TEXT_OFFSET 8
#define IMG_SIZE        16
#define IMG_FLAGS       24
#define IMG_MAGIC       56
#define IMG_HDR_SIZE    64
#define IMG_MAGIC_VALUE 0x644d5241u     /* "ARM\x64" */
#define IMG_FLAG_BE     1u

/* PSTATE: EL1h, D, A, I and F masked */
#define PSTATE_EL1H_DAIF 0x3c5ULL

#define CORE_REG(x) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
		     KVM_REG_ARM_CORE_REG(x))

const char linux_help[] =
	"                       (arm64: an Image, gzip'ed or not, with a device tree:\n"
	"                       GICv3, PSCI 0.2, the arch timer; console: a 16550A\n"
	"                       at 0xf2000000, SPI 1, on stdout)\n";

struct linux_vm {
	struct linux_opts o;
	int vm_fd, gic_fd;
	uint8_t *mem;
	struct kvm_vcpu_init init;  /* KVM_ARM_PREFERRED_TARGET */
	uint64_t entry, image_size, dtb_gpa, initrd_gpa, initrd_size;
	unsigned int vcpus_ready;
	struct uart8250 uart;
	struct linux_out out;       /* the console, the end */
	bool mmio_warned;
};

static uint32_t get32(const uint8_t *p, size_t off) { uint32_t v; memcpy(&v, p + off, 4); return v; }
static uint64_t get64(const uint8_t *p, size_t off) { uint64_t v; memcpy(&v, p + off, 8); return v; }

/* The rest of a file past max bytes: whether there is any. */
static bool more_than(const char *what, const char *path, size_t max, bool more)
{
	if (more)
		linux_err("%s '%s': more than the %zu bytes of memory it can have (--mem)", what,
		          path, max);
	return more;
}

/* A file as is, at most max bytes into dst. Returns its size, or -1 after a message. */
static ssize_t read_file(const char *what, const char *path, int fd, uint8_t *dst, size_t max)
{
	size_t done = 0;
	ssize_t n = 1;
	char c;

	while (done < max && n > 0) {
		n = read(fd, dst + done, max - done);
		if (n > 0)
			done += (size_t)n;
		else if (n < 0 && errno == EINTR)
			n = 1;
	}
	if (n < 0) {
		linux_err("%s '%s': %s", what, path, strerror(errno));
		return -1;
	}
	if (done == max && more_than(what, path, max, read(fd, &c, 1) > 0))
		return -1;
	return (ssize_t)done;
}

/* The same through zlib: gunzipped if it is gzip, as is otherwise. */
static ssize_t gunzip_file(const char *what, const char *path, int fd, uint8_t *dst, size_t max)
{
	gzFile f = gzdopen(fd, "rb");
	size_t done = 0;
	int n = 1, e;
	char c;

	if (!f) {
		close(fd);
		linux_err("%s '%s': out of memory", what, path);
		return -1;
	}
	gzbuffer(f, 1 << 17);
	while (done < max && n > 0) {
		n = gzread(f, dst + done, (unsigned int)(max - done < (1u << 30) ? max - done
										: (1u << 30)));
		if (n > 0)
			done += (size_t)n;
	}
	if (n < 0)
		linux_err("%s '%s': %s", what, path, gzerror(f, &e));
	else if (done == max && more_than(what, path, max, gzread(f, &c, 1) > 0))
		n = -1;
	gzclose(f); /* closes fd */
	return n < 0 ? -1 : (ssize_t)done;
}

/*
 * A file of at most max bytes into dst, gunzipped when gunzip is set and it
 * is gzip. Returns its size (at least 1), or -1 after a message.
 */
static ssize_t load_file(const char *what, const char *path, bool gunzip, uint8_t *dst,
			 size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		linux_err("%s '%s': %s", what, path, strerror(errno));
		return -1;
	}
	if (gunzip) {
		n = gunzip_file(what, path, fd, dst, max);
	} else {
		n = read_file(what, path, fd, dst, max);
		close(fd);
	}
	if (n == 0) {
		linux_err("%s '%s': empty", what, path);
		return -1;
	}
	return n;
}

/* ---- the console -------------------------------------------------------- */

/* The UART's output: stdout, a line at a time; a kernel panic ends the run. */
static void uart_tx(void *ctx, uint8_t c)
{
	struct linux_vm *l = ctx;

	linux_out_put(&l->out, c);
}

/* The UART's interrupt line: its SPI, level-triggered, through the vGIC. */
static void uart_irq(void *ctx, int level)
{
	struct linux_vm *l = ctx;
	struct kvm_irq_level irq = {
		.irq = (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | (32 + UART_SPI),
		.level = (uint32_t)level,
	};

	if (ioctl(l->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		linux_err("KVM_IRQ_LINE SPI %d: %s", UART_SPI, strerror(errno));
}

/* ---- loading ------------------------------------------------------------- */

static int load_image(struct linux_vm *l)
{
	uint64_t room = l->dtb_gpa - KERNEL_BASE, text_offset; /* below the DTB's 2 MiB */
	uint8_t *img = l->mem + KERNEL_BASE;
	ssize_t n = load_file("--kernel", l->o.kernel, true, img, room);

	if (n < 0)
		return -1;
	if ((size_t)n < IMG_HDR_SIZE || get32(img, IMG_MAGIC) != IMG_MAGIC_VALUE) {
		linux_err("--kernel '%s': not an arm64 Image (no \"ARM\\x64\" magic in its header, "
		          "gzip'ed or not)", l->o.kernel);
		return -1;
	}
	text_offset = get64(img, IMG_TEXT_OFFSET);
	l->image_size = get64(img, IMG_SIZE);
	if (!l->image_size) {
		linux_err("--kernel '%s': image_size 0 (a kernel before 3.17): not supported",
		          l->o.kernel);
		return -1;
	}
	if (get64(img, IMG_FLAGS) & IMG_FLAG_BE) {
		linux_err("--kernel '%s': a big-endian kernel", l->o.kernel);
		return -1;
	}
	if (text_offset >= DTB_REGION || (uint64_t)n > l->image_size ||
	    l->image_size > room - text_offset) {
		linux_err("--kernel '%s': text_offset 0x%" PRIx64 " and %" PRIu64 " bytes of image "
		          "need more than --mem %" PRIu64 " MiB", l->o.kernel, text_offset,
		          l->image_size, l->o.mem_size >> 20);
		return -1;
	}
	if (text_offset) /* loaded at the base: move it up (memmove: they overlap) */
		memmove(img + text_offset, img, (size_t)n);
	/* the bss and whatever the kernel expects zeroed up to image_size */
	memset(l->mem + KERNEL_BASE + text_offset + n, 0, l->image_size - (uint64_t)n);
	l->entry = KERNEL_BASE + text_offset;
	return 0;
}

static int load_initrd(struct linux_vm *l)
{
	uint64_t kernel_end = l->entry + l->image_size, top = l->dtb_gpa, room;
	ssize_t n;

	if (!l->o.initrd)
		return 0;
	room = top > kernel_end ? top - kernel_end : 0;
	/* read it just above the kernel, then move it to the top, page-aligned */
	n = load_file("--initrd", l->o.initrd, false, l->mem + kernel_end, room);
	if (n < 0)
		return -1;
	l->initrd_size = (uint64_t)n;
	l->initrd_gpa = (top - l->initrd_size) & ~0xfffULL;
	if (l->initrd_gpa < kernel_end) {
		linux_err("--initrd '%s': %" PRIu64 " bytes do not fit between the kernel and the "
		          "device tree (--mem)", l->o.initrd, l->initrd_size);
		return -1;
	}
	memmove(l->mem + l->initrd_gpa, l->mem + kernel_end, l->initrd_size);
	return 0;
}

static int build_dtb(struct linux_vm *l)
{
	struct linux_dtb d = {
		.mem_base = 0, .mem_size = l->o.mem_size, .vcpus = l->o.vcpus,
		.gicd_base = GICD_GPA, .gicd_size = GICD_SIZE,
		.gicr_base = GICR_GPA, .gicr_size = GICR_PER_CPU * l->o.vcpus,
		.uart_base = UART_GPA, .uart_size = UART_SIZE, .uart_spi = UART_SPI,
		.uart_clock = UART_CLOCK, .bootargs = l->o.append,
		.initrd_start = l->initrd_gpa, .initrd_end = l->initrd_gpa + l->initrd_size,
	};
	int r = linux_dtb_build(&d, l->mem + l->dtb_gpa, DTB_MAX);

	if (r < 0) {
		linux_err("the device tree: %s", strerror(-r));
		return -1;
	}
	return 0;
}

/* ---- the GIC -------------------------------------------------------------- */

static int gic_attr(struct linux_vm *l, uint32_t group, uint64_t attr, uint64_t *val,
		    const char *what)
{
	struct kvm_device_attr a = {
		.group = group, .attr = attr, .addr = (uint64_t)(uintptr_t)val,
	};

	if (ioctl(l->gic_fd, KVM_SET_DEVICE_ATTR, &a) < 0) {
		linux_err("GICv3 %s: KVM_SET_DEVICE_ATTR: %s", what, strerror(errno));
		return -1;
	}
	return 0;
}

/* The vGIC and its addresses; initialised once every vCPU exists. */
static int gic_create(struct linux_vm *l)
{
	struct kvm_create_device dev = { .type = KVM_DEV_TYPE_ARM_VGIC_V3 };
	uint64_t dist = GICD_GPA, redist = GICR_GPA;

	if (ioctl(l->vm_fd, KVM_CREATE_DEVICE, &dev) < 0) {
		linux_err("KVM_CREATE_DEVICE (GICv3): %s%s", strerror(errno),
		          errno == ENODEV ? ": this host's KVM has no GICv3 emulation" : "");
		return -1;
	}
	l->gic_fd = (int)dev.fd;
	if (gic_attr(l, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist,
		     "distributor address") < 0 ||
	    gic_attr(l, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist,
		     "redistributor address") < 0)
		return -1;
	return 0;
}

/* ---- the VM ---------------------------------------------------------------- */

int linux_vm_create(const struct linux_opts *o, int kvm_fd, int vm_fd, uint8_t *mem,
		    struct linux_vm **out)
{
	struct linux_vm *l = calloc(1, sizeof(*l));

	(void)kvm_fd;
	if (!l) {
		linux_err("out of memory");
		return -1;
	}
	*out = l;
	l->o = *o;
	l->vm_fd = vm_fd;
	l->gic_fd = -1;
	l->mem = mem;
	linux_out_init(&l->out);
	uart8250_init(&l->uart, uart_tx, uart_irq, l);
	if (!o->vcpus || GICR_GPA + GICR_PER_CPU * o->vcpus > UART_GPA) {
		linux_err("--vcpus %u: more than the redistributor region holds", o->vcpus);
		return -1;
	}
	if (o->mem_size > GICD_GPA || o->mem_size < KERNEL_BASE + 2 * DTB_REGION) {
		linux_err("--mem %" PRIu64 " MiB: RAM must end below the GIC at 0x%llx",
		          o->mem_size >> 20, GICD_GPA);
		return -1;
	}
	if (ioctl(vm_fd, KVM_ARM_PREFERRED_TARGET, &l->init) < 0) {
		linux_err("KVM_ARM_PREFERRED_TARGET: %s", strerror(errno));
		return -1;
	}
	l->dtb_gpa = (o->mem_size - DTB_REGION) & ~(DTB_REGION - 1);
	if (gic_create(l) < 0 || load_image(l) < 0 || load_initrd(l) < 0 || build_dtb(l) < 0)
		return -1;
	return 0;
}

static int set_reg(int vcpu_fd, uint64_t id, uint64_t v)
{
	struct kvm_one_reg r = { .id = id, .addr = (uint64_t)(uintptr_t)&v };

	if (ioctl(vcpu_fd, KVM_SET_ONE_REG, &r) < 0) {
		linux_err("KVM_SET_ONE_REG 0x%" PRIx64 ": %s", id, strerror(errno));
		return -1;
	}
	return 0;
}

int linux_vcpu_setup(struct linux_vm *l, int vcpu_fd, unsigned int id)
{
	struct kvm_vcpu_init init = l->init;
	uint64_t ctrl_init = 0;

	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	if (id != 0)
		init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF; /* until PSCI CPU_ON */
	if (ioctl(vcpu_fd, KVM_ARM_VCPU_INIT, &init) < 0) {
		linux_err("KVM_ARM_VCPU_INIT (PSCI 0.2%s): %s", id ? ", powered off" : "",
		          strerror(errno));
		return -1;
	}
	if (id == 0 &&
	    (set_reg(vcpu_fd, CORE_REG(regs.pc), l->entry) < 0 ||
	     set_reg(vcpu_fd, CORE_REG(regs.pstate), PSTATE_EL1H_DAIF) < 0 ||
	     set_reg(vcpu_fd, CORE_REG(regs.regs[0]), l->dtb_gpa) < 0 ||
	     set_reg(vcpu_fd, CORE_REG(regs.regs[1]), 0) < 0 ||
	     set_reg(vcpu_fd, CORE_REG(regs.regs[2]), 0) < 0 ||
	     set_reg(vcpu_fd, CORE_REG(regs.regs[3]), 0) < 0))
		return -1;
	/* the last vCPU: the vGIC can be initialised now that all exist */
	if (++l->vcpus_ready == l->o.vcpus &&
	    gic_attr(l, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, &ctrl_init,
		     "KVM_DEV_ARM_VGIC_CTRL_INIT") < 0)
		return -1;
	return 0;
}

static void mmio(struct linux_vm *l, struct kvm_run *run)
{
	uint64_t a = run->mmio.phys_addr;
	uint32_t len = run->mmio.len <= sizeof(run->mmio.data) ? run->mmio.len : 0;

	if (a >= UART_GPA && a < UART_GPA + UART_SIZE && len <= UART_GPA + UART_SIZE - a) {
		for (uint32_t i = 0; i < len; i++) {
			unsigned int reg = (unsigned int)(a - UART_GPA) + i;

			if (run->mmio.is_write)
				uart8250_write(&l->uart, reg, run->mmio.data[i]);
			else
				run->mmio.data[i] = uart8250_read(&l->uart, reg);
		}
		return;
	}
	/* nothing else is there: reads all ones, writes ignored (said once) */
	if (!run->mmio.is_write)
		memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
	if (!__atomic_exchange_n(&l->mmio_warned, true, __ATOMIC_SEQ_CST))
		linux_err("note: the guest %s 0x%" PRIx64 " (%u bytes), where no device is",
		          run->mmio.is_write ? "wrote to" : "read from", a, run->mmio.len);
}

int linux_handle_exit(struct linux_vm *l, struct kvm_run *run)
{
	switch (run->exit_reason) {
	case KVM_EXIT_MMIO:
		mmio(l, run);
		return 1;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			linux_out_end(&l->out, LINUX_POWER_OFF);
			return 1;
		case KVM_SYSTEM_EVENT_RESET:
			linux_out_end(&l->out, LINUX_RESET);
			return 1;
		case KVM_SYSTEM_EVENT_CRASH:
			linux_out_end(&l->out, LINUX_PANIC);
			return 1;
		default:
			return 0;
		}
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
	int n = snprintf(buf, size, "Linux %s (arm64 Image at 0x%" PRIx64 ", %" PRIu64
			 " bytes; device tree at 0x%" PRIx64 ", GICv3, PSCI 0.2), %" PRIu64
			 " MiB, %u vCPU%s", l->o.kernel, l->entry, l->image_size, l->dtb_gpa,
			 l->o.mem_size >> 20, l->o.vcpus, l->o.vcpus == 1 ? "" : "s");

	if (l->o.initrd && n > 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, ", initrd %s (%" PRIu64 " bytes at 0x%" PRIx64
			 ")", l->o.initrd, l->initrd_size, l->initrd_gpa);
}

void linux_vm_free(struct linux_vm *l)
{
	if (!l)
		return;
	linux_out_flush(&l->out);
	if (l->gic_fd >= 0)
		close(l->gic_fd);
	free(l);
}
