/* SPDX-License-Identifier: MIT */
/*
 * The guest of kvmdbg_probe_verified() on arm64 (lib/arch/arm64/probe.c).
 *
 * Position-independent A64 code and data (only `adr`, no literal pools),
 * copied as one blob into a micro-VM (EL1h, MMU off, DAIF masked) and
 * entered at one of the pg_* test labels. The blob is never executed in the
 * host: it lives in .rodata.
 *
 * Rules that keep every KVM_RUN bounded:
 *  - straight-line code only, no loops;
 *  - every snippet ends in a store to the DONE port (KVM_EXIT_MMIO: the
 *    address is outside guest memory), which the host treats as final and
 *    never resumes; the `b .` after it is never reached;
 *  - any exception the guest takes goes to the micro-VM's fail vectors
 *    (VBAR_EL1 = 0), which end in an MMIO store too.
 *
 * Offsets of the hidden global labels are the interface with probe.c.
 */

#define PG_MMIO_HI 0x4000       /* MMIO window at 1 GiB: movz #PG_MMIO_HI, lsl #16 */
#define PG_PORT_DONE 0xe0       /* the end of a snippet */

.macro GLABEL name
	.globl \name
	.hidden \name
\name:
.endm

.macro DONE
	movz	x9, #PG_MMIO_HI, lsl #16
	str	w0, [x9, #PG_PORT_DONE]
	b	.
.endm

	.section .rodata.kvmdbg_arm64_probe_guest, "a"
	.balign 64
GLABEL kvmdbg_arm64_pg_start

/* ---- single-step: four instructions, one exit after each ---- */
GLABEL kvmdbg_arm64_pg_step
	nop
	nop
	nop
	nop
	DONE

/* ---- hardware breakpoint on the second instruction ---- */
GLABEL kvmdbg_arm64_pg_bp
	nop
GLABEL kvmdbg_arm64_pg_bp_target
	nop
	DONE

/* ---- watchpoints: a doubleword store and a doubleword load ---- */
GLABEL kvmdbg_arm64_pg_watch_w
	adr	x1, kvmdbg_arm64_pg_data
	mov	x0, #0x5a
GLABEL kvmdbg_arm64_pg_watch_w_insn
	str	x0, [x1]
	DONE

GLABEL kvmdbg_arm64_pg_watch_r
	adr	x1, kvmdbg_arm64_pg_data
GLABEL kvmdbg_arm64_pg_watch_r_insn
	ldr	x0, [x1]
	DONE

/* ---- software breakpoint: the host writes its BRK over the second nop ---- */
GLABEL kvmdbg_arm64_pg_brk
	nop
GLABEL kvmdbg_arm64_pg_brk_insn
	nop
	DONE

	.balign 8
GLABEL kvmdbg_arm64_pg_data
	.quad	0
	.quad	0

GLABEL kvmdbg_arm64_pg_end

	.section .note.GNU-stack, "", %progbits
