/* SPDX-License-Identifier: MIT */
/*
 * x86-64 guest code of bench-kvm: one position-independent blob,
 * bg_start .. bg_end, copied to the micro-VM's code_gpa. Long mode, CPL0,
 * interrupts off, no IDT. Both programs loop forever: the host only ever
 * runs them one KVM_RUN (one step, one breakpoint hit) at a time.
 */
.macro GLABEL name
	.globl \name
	.hidden \name
\name:
.endm

	.section .rodata.kvmdbg_bench_guest, "a"
	.balign 4096
GLABEL bg_start

/* bg_spin: the single-step loop, three instructions an iteration. */
GLABEL bg_spin
1:	incq %rax
	incq %rbx
	jmp 1b

/* bg_bp: a loop whose every iteration runs bg_bp_target once. */
	.balign 16
GLABEL bg_bp
1:	incq %rcx
GLABEL bg_bp_target
	nop
	jmp 1b

	.balign 16
GLABEL bg_end

	.section .note.GNU-stack, "", @progbits
