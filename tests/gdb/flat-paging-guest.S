/* SPDX-License-Identifier: MIT */
/*
 * A 64 KiB firmware image for kvmdbg-run --flat (loaded at 0xf0000, reset
 * vector 0xffff0) that pages in the two x86 modes without long mode, for
 * test-gdb-x86-paging.py:
 *
 * 1. 32-bit paging (CR4.PSE): PDE 0 a 4 MiB page onto 0 (the code keeps
 *    running where it is), PDE 768 a 4 MiB page onto 0 (0xc0000000..),
 *    VA 0x80001000 a 4 KiB page onto 0x200000. Stores MAGIC32 at
 *    0x80001004, then loop32 (0xf0100) counts at 0x80001000, 3 times.
 * 2. PAE: PDPTE 0 -> a 2 MiB page onto 0; PDPTE 2: VA 0x80001000 a 4 KiB
 *    page onto 0x201000; PDPTE 3: VA 0xc0400000 a 2 MiB page onto
 *    0x200000. Stores MAGICPAE at 0x80001004, then loop_pae (0xf0300)
 *    counts at 0x80001000 for ever.
 */
#define PD32    0x20000
#define PT32    0x21000
#define PDPT    0x22000
#define PD_LO   0x23000
#define PT_PAE  0x24000
#define PD_2    0x25000
#define PD_3    0x26000
#define P_RW    0x3
#define P_RW_PS 0x83
#define MAGIC32  0x32336267
#define MAGICPAE 0x50414521

	.code16
	.text
	.globl _start
_start:
	cli
	lgdtl %cs:gdtr
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $0x08, $(0xf0000 + pm32)

	.code32
pm32:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	/* 32-bit paging */
	movl $P_RW_PS, PD32 + 4 * 0
	movl $P_RW_PS, PD32 + 4 * 768
	movl $(PT32 + P_RW), PD32 + 4 * 512
	movl $(0x200000 + P_RW), PT32 + 4 * 1
	movl %cr4, %eax
	orl $0x10, %eax			/* PSE */
	movl %eax, %cr4
	movl $PD32, %eax
	movl %eax, %cr3
	movl %cr0, %eax
	orl $0x80000000, %eax		/* PG */
	movl %eax, %cr0
	movl $MAGIC32, 0x80001004
	movl $3, %ecx
	jmp loop32

	.p2align 3
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: code, base 0, 4 GiB, 32-bit */
	.quad 0x00cf92000000ffff	/* 0x10: data, base 0, 4 GiB */
gdtr:
	.word 23
	.long 0xf0000 + gdt

	.org 0x100
loop32:
	incl 0x80001000			/* 0xf0100 */
	decl %ecx
	jnz loop32
	/* PAE: paging off, the tables, PAE on, paging on */
	movl %cr0, %eax
	andl $0x7fffffff, %eax
	movl %eax, %cr0
	movl $(PD_LO + 1), PDPT + 8 * 0
	movl $(PD_2 + 1), PDPT + 8 * 2
	movl $(PD_3 + 1), PDPT + 8 * 3
	movl $P_RW_PS, PD_LO + 8 * 0
	movl $(PT_PAE + P_RW), PD_2 + 8 * 0
	movl $(0x201000 + P_RW), PT_PAE + 8 * 1
	movl $(0x200000 + P_RW_PS), PD_3 + 8 * 2
	movl %cr4, %eax
	orl $0x20, %eax			/* PAE */
	movl %eax, %cr4
	movl $PDPT, %eax
	movl %eax, %cr3
	movl %cr0, %eax
	orl $0x80000000, %eax
	movl %eax, %cr0
	movl $MAGICPAE, 0x80001004
	jmp loop_pae

	.org 0x300
loop_pae:
	incl 0x80001000			/* 0xf0300 */
	jmp loop_pae

	.org 0xfff0
	.code16
reset:
	ljmp $0xf000, $_start
	.org 0x10000

	.section .note.GNU-stack, "", @progbits
