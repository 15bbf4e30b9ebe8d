/* SPDX-License-Identifier: MIT */
/*
 * The guest of kvmdbg_probe_verified() on x86-64 (lib/arch/x86/probe.c).
 *
 * Position-independent 64-bit code and data, copied as one blob into a
 * micro-VM (long mode, CPL0, identity mapped) and entered at one of the
 * pg_* test labels with interrupts disabled and no IDT. The blob is never
 * executed in the host: it lives in .rodata.
 *
 * Rules that keep every KVM_RUN bounded:
 *  - straight-line code only, no loops;
 *  - every path ends in `out` to a probe port (a KVM_EXIT_IO the host
 *    treats as final) and then `hlt`, which without an in-kernel irqchip
 *    exits to userspace (KVM_EXIT_HLT) instead of waiting;
 *  - `hlt` in the middle of a test is a pause point: the vCPU stops with
 *    RIP after it and nothing left to complete, so the host can inject or
 *    change state and run again;
 *  - code that can take an exception first loads pg_idt; each handler
 *    reports through its own port and halts. Without the IDT an exception
 *    is a triple fault: KVM_EXIT_SHUTDOWN.
 *
 * The host fills pg_idtr (and the IDT it points to) in the guest copy
 * before running anything that loads it. Handlers leave the interrupted
 * RIP (from the exception frame) in %rcx and DR6 in %rbx for the host to
 * read with KVM_GET_REGS.
 *
 * Offsets of the hidden global labels are the interface with probe.c.
 */

#define PORT_DONE 0xe0 /* the end of a test snippet */
#define PORT_DB 0xe1   /* #DB handler (vector 1) */
#define PORT_NMI 0xe2  /* NMI handler (vector 2) */
#define PORT_BP 0xe3   /* #BP handler (vector 3) */
#define PORT_IRQ 0xe4  /* external interrupt handler (vector 0x20) */
#define PORT_EXC 0xe5  /* any other exception; %al = vector */

.macro GLABEL name
	.globl \name
	.hidden \name
\name:
.endm

	.section .rodata.kvmdbg_x86_probe_guest, "a"
	.balign 64
GLABEL kvmdbg_x86_pg_start

/* ---- exception and interrupt handlers ---- */

GLABEL kvmdbg_x86_pg_db_handler
	mov (%rsp), %rcx
	mov %dr6, %rbx
	out %al, $PORT_DB
	hlt

GLABEL kvmdbg_x86_pg_nmi_handler
	mov (%rsp), %rcx
	out %al, $PORT_NMI
	hlt

GLABEL kvmdbg_x86_pg_bp_handler
	mov (%rsp), %rcx
	out %al, $PORT_BP
	hlt

GLABEL kvmdbg_x86_pg_irq_handler
	mov (%rsp), %rcx
	out %al, $PORT_IRQ
	hlt

/* Vectors 0-31 without a handler of their own: 4 bytes each, vector in %al. */
	.balign 4
GLABEL kvmdbg_x86_pg_exc_stubs
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	mov $\v, %al
	jmp 1f
	.endr
1:	out %al, $PORT_EXC
	hlt

/* ---- single-step: four instructions of known lengths (1, 5, 2, 4) ---- */

GLABEL kvmdbg_x86_pg_step
	nop
GLABEL kvmdbg_x86_pg_step_1
	.byte 0xb8, 0x01, 0x00, 0x00, 0x00 /* mov $1, %eax */
GLABEL kvmdbg_x86_pg_step_2
	.byte 0x31, 0xc9                   /* xor %ecx, %ecx */
GLABEL kvmdbg_x86_pg_step_3
	.byte 0x8d, 0x54, 0x48, 0x10       /* lea 0x10(%rax,%rcx,2), %edx */
GLABEL kvmdbg_x86_pg_step_4
	out %al, $PORT_DONE
	hlt

/* ---- execution breakpoints: one target per slot ---- */

GLABEL kvmdbg_x86_pg_hw
	nop
GLABEL kvmdbg_x86_pg_hw_t0
	nop
GLABEL kvmdbg_x86_pg_hw_t1
	nop
GLABEL kvmdbg_x86_pg_hw_t2
	nop
GLABEL kvmdbg_x86_pg_hw_t3
	nop
	out %al, $PORT_DONE
	hlt

/* ---- watchpoints on pg_watch ---- */

GLABEL kvmdbg_x86_pg_write
	mov $0x5a5a5a5a, %eax
	mov %eax, kvmdbg_x86_pg_watch(%rip)
GLABEL kvmdbg_x86_pg_write_after
	nop
	out %al, $PORT_DONE
	hlt

GLABEL kvmdbg_x86_pg_read
	mov kvmdbg_x86_pg_watch(%rip), %eax
GLABEL kvmdbg_x86_pg_read_after
	nop
	out %al, $PORT_DONE
	hlt

/* ---- int3 and #BP injection: pause at the int3, then run it or inject ---- */

GLABEL kvmdbg_x86_pg_bp
	lidt kvmdbg_x86_pg_idtr(%rip)
	hlt
GLABEL kvmdbg_x86_pg_bp_int3
	int3
GLABEL kvmdbg_x86_pg_bp_after
	nop
	out %al, $PORT_DONE
	hlt

/* ---- #DB injection: pause, the host injects, the handler reports ---- */

GLABEL kvmdbg_x86_pg_db
	lidt kvmdbg_x86_pg_idtr(%rip)
	hlt
GLABEL kvmdbg_x86_pg_db_at
	nop
	out %al, $PORT_DONE
	hlt

/* ---- DR7.GD: no IDT, a #DB delivered to the guest is a triple fault ---- */

GLABEL kvmdbg_x86_pg_gd
	nop
GLABEL kvmdbg_x86_pg_gd_insn
	mov %dr7, %rax
	nop
	out %al, $PORT_DONE
	hlt

/*
 * ---- the guest's own execution breakpoint (its DR0) beside the host's ----
 * pg_guest_t is the guest's target, pg_guest_h the host's (another slot).
 */

GLABEL kvmdbg_x86_pg_guest
	lidt kvmdbg_x86_pg_idtr(%rip)
	lea kvmdbg_x86_pg_guest_t(%rip), %rax
	mov %rax, %dr0
	mov $0x401, %eax /* L0, exec, len 1; bit 10 reads as 1 */
	mov %rax, %dr7
	nop
GLABEL kvmdbg_x86_pg_guest_t
	nop
GLABEL kvmdbg_x86_pg_guest_h
	nop
	out %al, $PORT_DONE
	hlt

/* ---- interrupt blocking: pause with IF=1 (or IF=0 for the NMI) ---- */

GLABEL kvmdbg_x86_pg_irq
	lidt kvmdbg_x86_pg_idtr(%rip)
	sti
	nop /* STI shadow */
	hlt
GLABEL kvmdbg_x86_pg_irq_1
	nop
GLABEL kvmdbg_x86_pg_irq_2
	nop
	out %al, $PORT_DONE
	hlt

GLABEL kvmdbg_x86_pg_nmi
	lidt kvmdbg_x86_pg_idtr(%rip)
	hlt
GLABEL kvmdbg_x86_pg_nmi_1
	nop
GLABEL kvmdbg_x86_pg_nmi_2
	nop
	out %al, $PORT_DONE
	hlt

/* ---- data ---- */

	.balign 16
GLABEL kvmdbg_x86_pg_idtr
	.fill 16, 1, 0 /* limit (2 bytes), base (8 bytes): filled by the host */
	.balign 64
GLABEL kvmdbg_x86_pg_watch
	.quad 0
	.balign 64
GLABEL kvmdbg_x86_pg_end

	.section .note.GNU-stack, "", @progbits
