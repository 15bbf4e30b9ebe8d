/* SPDX-License-Identifier: MIT */
/*
 * The built-in demo guest of kvmdbg-run: 64-bit code for CPL0 in long mode.
 *
 * It is position independent (every branch is relative) and lives in the
 * host binary's read-only data: kvmdbg-run copies the bytes between
 * demo_guest_start and demo_guest_end into guest memory and runs them there.
 * The other exported labels mark places a user can break on; their offsets
 * from demo_guest_start are the same in the guest.
 *
 * In:  %rdi = guest address of a 64-bit counter, %esi = iterations (> 0),
 *      %rsp = top of a stack.
 * Out: calls bump() %esi times, then writes the counter's low 32 bits to
 *      I/O port 0xf4 (`outl`), which ends the run. It halts if resumed.
 */
#define DEMO_EXIT_PORT 0xf4

	.section .rodata.kvmdbg_demo_guest, "a"
	.balign 16, 0xf4

	.globl demo_guest_start, demo_guest_end
	.globl demo_guest_loop, demo_guest_bump, demo_guest_done
	.hidden demo_guest_start, demo_guest_end
	.hidden demo_guest_loop, demo_guest_bump, demo_guest_done

demo_guest_start:
	mov	%esi, %ebx
.Lloop:
	call	.Lbump
	dec	%ebx
	jnz	.Lloop
.Ldone:
	mov	(%rdi), %rax
	outl	%eax, $DEMO_EXIT_PORT
	hlt
	jmp	.Ldone

	/* bump(): ++*counter, with a frame so stepping shows a few instructions. */
	.balign 16, 0xf4
.Lbump:
	push	%rbp
	mov	%rsp, %rbp
	mov	(%rdi), %rax
	add	$1, %rax
	mov	%rax, (%rdi)
	pop	%rbp
	ret
demo_guest_end:

	.set	demo_guest_loop, .Lloop
	.set	demo_guest_bump, .Lbump
	.set	demo_guest_done, .Ldone

	.section .note.GNU-stack, "", @progbits
