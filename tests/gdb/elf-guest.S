/* SPDX-License-Identifier: MIT */
/*
 * An ELF guest for kvmdbg-run's golden tests (test-json.sh): linked at
 * 0x180000 (-Wl,-Ttext=0x180000), entered at _start in 64-bit long mode.
 * Counts %eax up 5 times and writes it to port 0xf4, which ends the run.
 */
	.text
	.globl _start
_start:
	mov	$5, %ecx	/* 0x180000 */
1:	inc	%eax		/* 0x180005: the loop */
	dec	%ecx		/* 0x180007 */
	jnz	1b		/* 0x180009 */
	outl	%eax, $0xf4	/* 0x18000b */
	hlt

	.section .note.GNU-stack, "", @progbits
