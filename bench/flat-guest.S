/* SPDX-License-Identifier: MIT */
/*
 * The flat guest of the end-to-end bench (bench/e2e.py): a 64 KiB firmware
 * image, loaded by QEMU with -bios at 0xf0000 (the reset vector at 0xffff0
 * jumps to its start). It enters 32-bit protected mode with flat segments
 * (paging off: linear = physical) and counts in %eax forever; the loop
 * starts at offset 0x100 (linear 0xf0100), where the bench puts its
 * breakpoint.
 *
 * Protected mode, not real mode: under the x86 VM test bed (KVM's SVM nested
 * in QEMU 10.0 TCG) a hardware breakpoint in a real-mode L2 guest makes the
 * outer QEMU die with SIGSEGV (`vmbed boot -- kvmdbg-run --flat IMAGE
 * --hbreak 0xf0100` with a real-mode loop, every time); in protected mode it
 * works, so both stubs can be measured on the same image.
 *
 * gdb runs to the loop (e2e-gdb.py: a hbreak there, continue) before it
 * steps: single-stepping through the switch itself (the `mov %eax,%cr0`
 * KVM emulates, then the far jump) loses KVM's single-step in that bed, and
 * the guest runs free from the far jump on, without stopping at steps or
 * hardware breakpoints. Nor can a hbreak stand in for those steps: one
 * on the far jump (0xf0012: PE set, CS still the 16-bit real-mode segment)
 * makes the bed's QEMU die with SIGSEGV too, as in real mode (seen once, by
 * hand). Until the far jump CS keeps its real-mode base
 * 0xf0000: the linear pc is 0xf0012 there (tests/gdb/flat-pm-guest.S checks
 * that kvmdbg-run's gdb stub says so).
 * Built with the ordinary C toolchain into a raw binary (bench/meson.build).
 */
	.code16
	.text
	.globl _start
_start:
	cli
	lgdtl %cs:gdtr
	movl %cr0, %eax
	orl $1, %eax			/* CR0.PE */
	movl %eax, %cr0
	ljmpl $0x08, $(0xf0000 + pm32)

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
	incl %eax		/* breakpoint target: 0xf0100 */
	incl %ebx
	jmp loop

	.org 0xfff0
	.code16
reset:
	ljmp $0xf000, $_start
	.org 0x10000

	.section .note.GNU-stack, "", @progbits
