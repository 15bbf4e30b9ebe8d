/* SPDX-License-Identifier: MIT */
/*
 * The built-in demo guest of kvmdbg-run on arm64: A64 code for EL1 with the
 * MMU off, the counterpart of demo-guest.S (same labels, same behaviour).
 *
 * Position independent (every branch is relative); kvmdbg-run copies the
 * bytes between demo_guest_start and demo_guest_end into guest memory.
 *
 * In:  x0 = guest address of a 64-bit counter, x1 = iterations (> 0),
 *      SP = top of a stack.
 * Out: calls bump() x1 times, then stores the counter's low 32 bits to the
 *      MMIO address 0x10000000 (no memory there: KVM_EXIT_MMIO), which ends
 *      the run. Spins if resumed.
 */
#define DEMO_EXIT_MMIO 0x10000000

	.section .rodata.kvmdbg_demo_guest, "a"
	.balign 16

	.globl demo_guest_start, demo_guest_end
	.globl demo_guest_loop, demo_guest_bump, demo_guest_done
	.hidden demo_guest_start, demo_guest_end
	.hidden demo_guest_loop, demo_guest_bump, demo_guest_done

demo_guest_start:
	mov	x19, x1
.Lloop:
	bl	.Lbump
	subs	x19, x19, #1
	b.ne	.Lloop
.Ldone:
	ldr	x2, [x0]
	mov	x3, #DEMO_EXIT_MMIO
	str	w2, [x3]
	b	.Ldone

	/* bump(): ++*counter, with a frame so stepping shows a few instructions. */
	.balign 32
.Lbump:
	stp	x29, x30, [sp, #-16]!
	mov	x29, sp
	ldr	x2, [x0]
	add	x2, x2, #1
	str	x2, [x0]
	ldp	x29, x30, [sp], #16
	ret
demo_guest_end:

	.set	demo_guest_loop, .Lloop
	.set	demo_guest_bump, .Lbump
	.set	demo_guest_done, .Ldone

	.section .note.GNU-stack, "", @progbits
