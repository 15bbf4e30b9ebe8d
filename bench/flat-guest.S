/* SPDX-License-Identifier: MIT */
/*
 * The flat guest of the end-to-end bench (bench/e2e.py): a 64 KiB real-mode
 * firmware image, loaded by QEMU with -bios at 0xf0000 (the reset vector at
 * 0xffff0 jumps to its start). It counts in %eax forever; the loop starts at
 * offset 0x100 (linear 0xf0100), where the bench puts its breakpoint.
 * Built with the ordinary C toolchain into a raw binary (bench/meson.build).
 */
	.code16
	.text
	.globl _start
_start:
	xorl %eax, %eax
	xorl %ebx, %ebx
	jmp loop

	.org 0x100
loop:
	incl %eax		/* breakpoint target: 0xf0100 */
	incl %ebx
	jmp loop

	.org 0xfff0
reset:
	ljmp $0xf000, $_start
	.org 0x10000

	.section .note.GNU-stack, "", @progbits
