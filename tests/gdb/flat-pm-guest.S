/* SPDX-License-Identifier: MIT */
/*
 * A 64 KiB firmware image for kvmdbg-run --flat (loaded at 0xf0000, reset
 * vector 0xffff0) that switches to 32-bit protected mode, for the
 * gdb-sessions test: between `mov %eax,%cr0` (PE set) and the far jump, CS
 * still holds its real-mode base 0xf0000, so the linear pc gdb must see is
 * 0xf0012, not the bare IP 0x12. After the jump CS has base 0: the loop at
 * 0xf0100 counts in %eax and %ebx.
 */
	.code16
	.text
	.globl _start
_start:
	cli				/* 0xf0000 */
	lgdtl %cs:gdtr			/* 0xf0001 */
	movl %cr0, %eax			/* 0xf0008 */
	orl $1, %eax			/* 0xf000b */
	movl %eax, %cr0			/* 0xf000f */
	ljmpl $0x08, $(0xf0000 + pm32)	/* 0xf0012: PE set, CS base still 0xf0000 */

	.code32
pm32:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	xorl %ebx, %ebx
	jmp loop

	.p2align 3
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: code, base 0, 4 GiB, 32-bit */
	.quad 0x00cf92000000ffff	/* 0x10: data, base 0, 4 GiB */
gdtr:
	.word 23
	.long 0xf0000 + gdt

	.org 0x100
loop:
	incl %eax			/* 0xf0100 */
	incl %ebx			/* 0xf0101 */
	jmp loop			/* 0xf0102 */

	.org 0xfff0
	.code16
reset:
	ljmp $0xf000, $_start
	.org 0x10000

	.section .note.GNU-stack, "", @progbits
