/* SPDX-License-Identifier: MIT */
/*
 * An ELF guest for kvmdbg-run (`--vcpus 2`) with two address spaces: the same
 * guest-virtual address is a different guest-physical page on each vCPU.
 * Linked at 0x180000 (-Wl,-Ttext=0x180000), entered at _start in 64-bit long
 * mode on kvmdbg-run's identity tables by both vCPUs (vCPU 0: %rsp 0x300000).
 *
 *   0x181000  f(): nop; inc %r12; ret, and an identical copy at 0x1a1000
 *   0x180200  after_switch: vCPU 1, just after it moved to its own tables
 *   0x180300  int3_site: int3; ret (the guest's own breakpoint instruction)
 *
 * vCPU 1 builds its own tables (0x1b0000-0x1b4fff): like kvmdbg-run's, except
 * that f's page 0x181000 is the copy at 0x1a1000, and 0x40000000 + x is x for
 * x below 2 MiB, an address kvmdbg-run's tables (vCPU 0) do not map. It loads
 * them, reaches after_switch, calls 0x40000000 + int3_site once, sets FLAG,
 * then calls f and 0x40000000 + int3_site LOOPS times; its #BP handler counts
 * the INT3s in %r13. vCPU 0 waits for FLAG, then calls f LOOPS times (at
 * 0x181000 itself).
 *
 * Each vCPU ends by looking at the first 16 bytes of both copies of f: an
 * INT3 left in either (a debugger's breakpoint restored into the other page),
 * or vCPU 1 missing one of its own INT3s, is a `ud2` with no handler: a triple
 * fault (kvmdbg-run: KVM_EXIT_SHUTDOWN, exit 1). Otherwise it writes the
 * number of calls of f (LOOPS) to port 0xf4, which ends its run.
 */
#define F_VA     0x181000
#define ALIAS_PA 0x1a1000
#define HIGH     0x40000000
#define PML4_B   0x1b0000
#define PDPT_B   0x1b1000
#define PD_B     0x1b2000
#define PD_HIGH  0x1b3000
#define PT_B     0x1b4000
#define IDT      0x1b8000
#define FLAG     0x1b9000
#define LOOPS    3

	.text
	.globl _start
_start:
	xor	%r12d, %r12d
	xor	%r13d, %r13d
	/* #BP (vector 3): a 64-bit interrupt gate to bp_handler */
	lea	bp_handler(%rip), %rax
	mov	%ax, IDT + 48
	movw	$0x08, IDT + 50
	movw	$0x8e00, IDT + 52
	shr	$16, %rax
	mov	%ax, IDT + 54
	shr	$16, %rax
	mov	%eax, IDT + 56
	movl	$0, IDT + 60
	lidt	idtr(%rip)
	cmp	$0x300000, %rsp
	je	vcpu0

	/* vCPU 1: 4 KiB identity pages for 0-2 MiB, but f's page is the copy */
	mov	$PT_B, %edi
	xor	%eax, %eax
1:	mov	%rax, %rdx
	shl	$12, %rdx
	or	$3, %rdx
	mov	%rdx, (%rdi,%rax,8)
	inc	%eax
	cmp	$512, %eax
	jne	1b
	movq	$(ALIAS_PA | 3), PT_B + 8 * (F_VA >> 12)
	movq	$(PT_B | 3), PD_B
	movq	$(0x200000 | 0x83), PD_B + 8	/* 2-4 MiB: one 2 MiB page */
	movq	$(0 | 0x83), PD_HIGH		/* HIGH + x -> x */
	movq	$(PD_B | 3), PDPT_B
	movq	$(PD_HIGH | 3), PDPT_B + 8
	movq	$(PDPT_B | 3), PML4_B
	mov	$PML4_B, %eax
	mov	%rax, %cr3
	jmp	after_switch

	.org	0x200, 0x90
after_switch:				/* 0x180200 */
	mov	$HIGH, %rbx		/* vCPU 1 reaches guest-physical x at HIGH + x */
	lea	int3_site(%rip), %rbp
	add	%rbx, %rbp		/* only vCPU 1's tables map it */
	call	*%rbp			/* one INT3 before vCPU 0 may go on */
	movl	$1, FLAG
	mov	$LOOPS, %ecx
2:	mov	$F_VA, %eax
	call	*%rax
	call	*%rbp
	dec	%ecx
	jnz	2b
	cmp	$LOOPS + 1, %r13
	jne	fail
	jmp	finish

vcpu0:
	xor	%ebx, %ebx
3:	pause
	cmpl	$1, FLAG
	jne	3b
	mov	$LOOPS, %ecx
4:	mov	$F_VA, %eax
	call	*%rax
	dec	%ecx
	jnz	4b

finish:
	lea	F_VA(%rbx), %rsi
	call	check16
	lea	ALIAS_PA(%rbx), %rsi
	call	check16
	mov	%r12d, %eax
	outl	%eax, $0xf4
	hlt
	jmp	finish

check16:
	mov	$16, %edx
5:	cmpb	$0xcc, (%rsi)
	je	fail
	inc	%rsi
	dec	%edx
	jnz	5b
	ret

fail:
	ud2				/* no handler: triple fault */

bp_handler:
	inc	%r13
	iretq

	.balign	16
idtr:
	.word	63
	.quad	IDT

	.org	0x300, 0x90
int3_site:				/* 0x180300 */
	int3
	ret

	.org	F_VA - 0x180000, 0x90
f:					/* 0x181000 */
	nop
	inc	%r12
	ret

	.org	ALIAS_PA - 0x180000, 0x90
f_copy:					/* 0x1a1000: f's page on vCPU 1 */
	nop
	inc	%r12
	ret

	.section .note.GNU-stack, "", @progbits
