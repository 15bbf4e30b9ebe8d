/* SPDX-License-Identifier: MIT */
/*
 * arm64 guest code of bench-kvm, the same programs as bench-guest.S: one
 * position-independent blob, bg_start .. bg_end, copied to the micro-VM's
 * code_gpa. EL1h with the MMU off (data accesses are Device memory: the
 * watched store is an aligned doubleword), D, A, I and F masked. The
 * programs loop forever: the host only ever runs them one KVM_RUN (one step,
 * one breakpoint or watchpoint hit) at a time.
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
1:	add	x0, x0, #1
	add	x1, x1, #1
	b	1b

/* bg_bp: a loop whose every iteration runs bg_bp_target once. */
	.balign 16
GLABEL bg_bp
1:	add	x2, x2, #1
GLABEL bg_bp_target
	nop
	b	1b

/* bg_watch: a loop that writes bg_watch_var once an iteration. */
	.balign 16
GLABEL bg_watch
	adr	x3, bg_watch_var
1:	add	x2, x2, #1
	str	x2, [x3]
	b	1b

	.balign 64
GLABEL bg_watch_var
	.quad 0

	.balign 16
GLABEL bg_end

	.section .note.GNU-stack, "", %progbits
