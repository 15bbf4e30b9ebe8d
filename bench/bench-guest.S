/* SPDX-License-Identifier: MIT */
/*
 * x86-64 guest code of bench-kvm: one position-independent blob,
 * bg_start .. bg_end, copied to the micro-VM's code_gpa. Long mode, CPL0,
 * interrupts off, no IDT. The programs loop forever: the host only ever
 * runs them one KVM_RUN (one step, one breakpoint or watchpoint hit) at a
 * time.
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

/* bg_watch: a loop that writes bg_watch_var once an iteration. */
	.balign 16
GLABEL bg_watch
1:	incq %rcx
	movq %rcx, bg_watch_var(%rip)
	jmp 1b

	.balign 64
GLABEL bg_watch_var
	.quad 0

	.balign 16
GLABEL bg_end

	.section .note.GNU-stack, "", @progbits
