/* SPDX-License-Identifier: MIT */
/*
 * An arm64 guest for kvmdbg-run (ELF, linked at 0x100000) that turns its
 * MMU on with two address spaces of different granules, for
 * test-gdb-mmu-aarch64.py: TTBR0_EL1 4 KiB granule, T0SZ 25 (39-bit VAs,
 * the walk starts at level 1), one 1 GiB level-1 block mapping 0..1 GiB
 * onto itself (the code keeps running where it is); TTBR1_EL1 64 KiB
 * granule, T1SZ 22 (42-bit VAs, the walk starts at level 2), one 64 KiB
 * page at VA_HI onto DATA_PA. Through VA_HI it stores MAGIC at +8, then
 * increments the counter at +0 for ever (mmu_loop).
 */
#define TT0     0x300000 /* TTBR0 level 1 (512 entries) */
#define TT1_L2  0x310000 /* TTBR1 level 2 (8192 entries) */
#define TT1_L3  0x320000 /* TTBR1 level 3 */
#define DATA_PA 0x340000
#define VA_HI   0xffffffc001230000
#define MAGIC   0x6b766d6462676d6d
/* descriptor bits: valid, table/page, AttrIndx 0, inner shareable, AF */
#define D_BLOCK 0x701
#define D_TABLE 0x3
#define D_PAGE  0x703
/* TCR_EL1: T0SZ 25, TG0 4K, T1SZ 22, TG1 64K, write-back inner shareable walks, IPS 36 bits */
#define TCR (25 | 1 << 8 | 1 << 10 | 3 << 12 | 22 << 16 | 1 << 24 | 1 << 26 | 3 << 28 | \
	     3 << 30 | 1 << 32)

	.text
	.globl _start, mmu_on, mmu_loop
_start:
	ldr	x1, =TT0
	ldr	x2, =D_BLOCK
	str	x2, [x1]
	ldr	x1, =TT1_L2 + 8 * ((VA_HI >> 29) & 0x1fff)
	ldr	x2, =TT1_L3 | D_TABLE
	str	x2, [x1]
	ldr	x1, =TT1_L3 + 8 * ((VA_HI >> 16) & 0x1fff)
	ldr	x2, =DATA_PA | D_PAGE
	str	x2, [x1]
	dsb	ish
	ldr	x1, =0xff /* attribute 0: normal, write-back */
	msr	mair_el1, x1
	ldr	x1, =TCR
	msr	tcr_el1, x1
	ldr	x1, =TT0
	msr	ttbr0_el1, x1
	ldr	x1, =TT1_L2
	msr	ttbr1_el1, x1
	isb
	tlbi	vmalle1
	dsb	nsh
	isb
	mrs	x1, sctlr_el1
	orr	x1, x1, #1         /* M */
	orr	x1, x1, #(1 << 2)  /* C */
	orr	x1, x1, #(1 << 12) /* I */
	msr	sctlr_el1, x1
	isb
mmu_on:
	ldr	x3, =VA_HI
	ldr	x5, =MAGIC
	str	x5, [x3, #8]
mmu_loop:
	ldr	x4, [x3]
	add	x4, x4, #1
	str	x4, [x3]
	b	mmu_loop
	.ltorg

	.section .note.GNU-stack, "", @progbits
