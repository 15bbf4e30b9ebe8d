/* SPDX-License-Identifier: MIT */
/*
 * kvmdbg-run --kernel: boot a Linux kernel (x86-64: a bzImage through the
 * 64-bit boot protocol, linux-x86.c; arm64: an Image with a device tree,
 * linux-arm64.c; linux-none.c where neither is built) on kvmdbg-run's VM. The VMM owns the VM, its memory
 * and the vCPU threads; this part fills the memory, creates the in-kernel
 * interrupt controllers, sets each vCPU up, and emulates the devices the
 * guest reaches through KVM_EXIT_IO / KVM_EXIT_MMIO / KVM_EXIT_SHUTDOWN.
 */
#ifndef KVMDBG_RUN_LINUX_H
#define KVMDBG_RUN_LINUX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

struct linux_opts {
	const char *kernel;  /* x86-64: bzImage; arm64: Image, gzip'ed or not */
	const char *initrd;  /* NULL: none */
	const char *append;  /* the kernel command line, NULL: empty */
	uint64_t mem_size;   /* bytes of RAM at guest-physical 0 */
	unsigned int vcpus;
};

/* How the guest ended; kvmdbg-run's exit status in parentheses. */
enum linux_end {
	LINUX_RUNNING,       /* not yet */
	LINUX_POWER_OFF,     /* (0) ACPI S5: SLP_EN in the FADT's PM1a control block;
			      *     arm64: PSCI SYSTEM_OFF */
	LINUX_RESET,         /* (3) reset register, keyboard controller reset, or triple fault;
			      *     arm64: PSCI SYSTEM_RESET */
	LINUX_PANIC,         /* (4) "Kernel panic - not syncing" on the console */
};

#define LINUX_MEM_DEFAULT (256ULL << 20)
#define LINUX_MEM_MIN     (32ULL << 20)
#define LINUX_MEM_MAX     (3ULL << 30) /* below the 32-bit MMIO hole */

struct linux_vm;

/*
 * The machine --kernel boots, for kvmdbg-run --help: lines that follow
 * "--kernel IMAGE", each indented by 23 spaces and ending in a newline.
 */
extern const char linux_help[];

/* "256M", "1G", "1048576": bytes; false when malformed. */
bool linux_parse_size(const char *s, uint64_t *out);

/*
 * After KVM_CREATE_VM and the memory slot (mem: o->mem_size bytes at
 * guest-physical 0), before any KVM_CREATE_VCPU: create the interrupt
 * controllers (x86 irqchip and PIT; arm64 the vGICv3, initialised by the last
 * linux_vcpu_setup()), load kernel and initrd, and describe the machine (x86
 * command line, boot_params and ACPI tables; arm64 the device tree).
 * Messages go to stderr; returns 0 or -1 (then linux_vm_free() *out).
 */
int linux_vm_create(const struct linux_opts *o, int kvm_fd, int vm_fd, uint8_t *mem,
		    struct linux_vm **out);
/*
 * One vCPU, right after KVM_CREATE_VCPU, in id order: x86 CPUID (its APIC
 * ID), and for vCPU 0 the 64-bit entry state; arm64 KVM_ARM_VCPU_INIT (PSCI
 * 0.2, the secondaries powered off), vCPU 0's entry registers, and after
 * the last one the vGIC's initialisation.
 */
int linux_vcpu_setup(struct linux_vm *l, int vcpu_fd, unsigned int id);
/*
 * An exit KVM_RUN returned: 1 handled (run on), 0 not one of the devices'
 * (the VMM's to report), or the guest ended (linux_end() says how: 1 too).
 */
int linux_handle_exit(struct linux_vm *l, struct kvm_run *run);
/* The guest console's line buffer (a 16550A's output, stdout a line at a
 * time). Each arch's machine holds one under its own lock. */
struct linux_line {
	char buf[512];
	size_t n;
};

/* Write the buffered bytes to stdout and empty the buffer. */
void linux_line_flush(struct linux_line *ln);

/* Add c; at a newline or when the buffer is full, write the line out. True
 * when the line written held the kernel's "Kernel panic - not syncing". */
bool linux_line_put(struct linux_line *ln, uint8_t c);

/* The console and how the guest ended, which every vCPU thread reaches: one
 * in each arch's machine. */
struct linux_out {
	pthread_mutex_t lock;       /* line, end (and what the arch adds) */
	struct linux_line line;
	enum linux_end end;
};

void linux_out_init(struct linux_out *o);
/* The UART's output: stdout, a line at a time; a kernel panic ends the
 * run (LINUX_PANIC). */
void linux_out_put(struct linux_out *o, uint8_t c);
/* The guest ended (the first end counts); the line so far is written out. */
void linux_out_end(struct linux_out *o, enum linux_end e);
/* How the guest ended (LINUX_RUNNING: not yet), from any thread. */
enum linux_end linux_out_ended(const struct linux_out *o);
/* What is buffered, written out (when the VM is freed). */
void linux_out_flush(struct linux_out *o);

/* A message of the --kernel machine: "kvmdbg-run: " FMT... and a newline
 * on stderr, after what stdout holds. */
void linux_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

enum linux_end linux_end(const struct linux_vm *l);
const char *linux_end_name(enum linux_end e);
/* One line about the guest (kernel, protocol, memory, vCPUs). */
void linux_describe(const struct linux_vm *l, char *buf, size_t size);
void linux_vm_free(struct linux_vm *l);

#endif
