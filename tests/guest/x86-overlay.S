/* SPDX-License-Identifier: MIT */
/*
 * The overlay test's guest (tests/kvm/test-kvm-x86-overlay.c): a self-contained,
 * position-independent long-mode program that debugs itself. It builds its
 * own IDT (#DB handler that records DR6 and RIP, sets RF and clears DR6),
 * programs its own DR0 (execution, ovg_t0) and DR1 (4-byte write, ovg_var),
 * then runs four phases; each starts with a marker (an exit: the VMM
 * refreshes the overlay and changes the host's breakpoints there) and then
 * executes ovg_t0, writes ovg_var and calls ovg_host (the host's target).
 */
#include "../common/kvm-util.h"

#define OVG_PHASES 4
#define OVG_DB_MAX 32

	.text
	.code64
	.balign 16
	.globl ovg_start, ovg_end, ovg_entry, ovg_t0, ovg_host, ovg_h1, ovg_h2, ovg_h3
	.globl ovg_var, ovg_db_count, ovg_db_dr6, ovg_db_rip
ovg_start:
ovg_entry:
	/* IDT: 32 interrupt gates on the micro-VM's code selector 0x08. */
	leaq ovg_idt(%rip), %rdi
	xorl %ecx, %ecx
1:	leaq ovg_fail(%rip), %rax
	cmpl $1, %ecx
	jne 2f
	leaq ovg_db(%rip), %rax
2:	movw %ax, (%rdi)
	movw $0x08, 2(%rdi)
	movw $0x8e00, 4(%rdi)
	shrq $16, %rax
	movw %ax, 6(%rdi)
	shrq $16, %rax
	movl %eax, 8(%rdi)
	movl $0, 12(%rdi)
	addq $16, %rdi
	incl %ecx
	cmpl $32, %ecx
	jb 1b
	leaq ovg_idtr(%rip), %rdi
	movw $(32 * 16 - 1), (%rdi)
	leaq ovg_idt(%rip), %rax
	movq %rax, 2(%rdi)
	lidt (%rdi)

	/* Its own debug registers: DR0 execute ovg_t0 (L0), DR1 write 4
	 * bytes at ovg_var (L1, RW1 = 01, LEN1 = 11). */
	movq $0xffff0ff0, %rax
	movq %rax, %dr6
	leaq ovg_t0(%rip), %rax
	movq %rax, %dr0
	leaq ovg_var(%rip), %rax
	movq %rax, %dr1
	movq $(0x400 | 0x1 | 0x4 | (0xd << 20)), %rax
	movq %rax, %dr7

	movl $1, %ebx
3:	movl %ebx, %eax
	outl %eax, $KT_PORT_MARK
	call ovg_t0
	movl %ebx, ovg_var(%rip)
	call ovg_host
	incl %ebx
	cmpl $OVG_PHASES, %ebx
	jbe 3b
	xorl %eax, %eax
	outl %eax, $KT_PORT_DONE
	hlt

	.balign 16
ovg_t0:
	nop
	ret
	.balign 16
ovg_host:
	nop
	ret
	/* Never executed: places for the host's other breakpoints. */
	.balign 16
ovg_h1:
	nop
	ret
	.balign 16
ovg_h2:
	nop
	ret
	.balign 16
ovg_h3:
	nop
	ret

	/* #DB: record DR6 and the RIP, set RF in the frame (an execution
	 * breakpoint is a fault), clear DR6 as a real handler does. */
	.balign 16
ovg_db:
	pushq %rax
	pushq %rcx
	pushq %rdx
	movq ovg_db_count(%rip), %rcx
	cmpq $OVG_DB_MAX, %rcx
	jae 1f
	movq %dr6, %rax
	leaq ovg_db_dr6(%rip), %rdx
	movq %rax, (%rdx, %rcx, 8)
	movq 24(%rsp), %rax
	leaq ovg_db_rip(%rip), %rdx
	movq %rax, (%rdx, %rcx, 8)
1:	incq ovg_db_count(%rip)
	orq $0x10000, 40(%rsp)
	movq $0xffff0ff0, %rax
	movq %rax, %dr6
	popq %rdx
	popq %rcx
	popq %rax
	iretq

ovg_fail:
	movl $0xff, %eax
	outl %eax, $KT_PORT_FAIL
	hlt

	.balign 16
ovg_var:
	.quad 0
ovg_db_count:
	.quad 0
ovg_db_dr6:
	.fill OVG_DB_MAX, 8, 0
ovg_db_rip:
	.fill OVG_DB_MAX, 8, 0
ovg_idtr:
	.fill 16, 1, 0
	.balign 16
ovg_idt:
	.fill 32 * 16, 1, 0
ovg_end:
	.section .note.GNU-stack, "", @progbits
