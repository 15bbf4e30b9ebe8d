/* SPDX-License-Identifier: MIT */
/*
 * Guest programs of the arm64 `kvm` suite (tests/kvm/test-kvm-arm64.c).
 *
 * One position-independent blob (only `adr`, no literal pools) copied to
 * the micro-VM's code_gpa and entered at a g_* label at EL1h, MMU off, DAIF
 * masked, with VBAR_EL1 = kt_vectors (tests/kvm-util-arm64.c sets it).
 * With the MMU off data accesses are Device memory: every access here is
 * naturally aligned.
 *
 * Ports: OUT stores a 32-bit value to KA_PORT_ADDR(port), a KVM_EXIT_MMIO
 * the run loop turns into KT_DONE / KT_MARK / a failure. x28 is reserved
 * for it; the exception handlers use x10-x14.
 */
#include "../common/kvm-util-arm64.h"

.macro GLABEL name
	.globl \name
\name:
.endm

.macro OUT port, wreg
	movz	x28, #KA_MMIO_HI, lsl #16
	str	\wreg, [x28, #(\port * 8)]
.endm

.macro DONE
	OUT	KT_PORT_DONE, wzr
	b	.
.endm

	.section .rodata.kt_arm64_guest, "a"
	.balign 4096
GLABEL kt_guest_start

/* ---- vector table: 16 entries of 0x80 bytes, 2 KiB aligned ---- */
	.balign 2048
GLABEL kt_vectors
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	.balign 0x80
	.if \n == 4
	mov	x14, #0x200      /* current EL with SP_ELx, synchronous */
	b	kt_sync_spx
	.elseif \n == 8
	mov	x14, #0x400      /* lower EL (AArch64), synchronous */
	b	kt_sync_spx
	.else
	mov	x10, #\n
	b	kt_fail
	.endif
	.endr
	.balign 0x80

/*
 * Synchronous exceptions from EL1 or EL0 (x14 = the vector offset): a BRK
 * (EC 0x3c) is counted, its ESR, ELR, SPSR and vector recorded, and execution
 * resumes after it (ELR += 4). An SVC is counted too. Anything else fails
 * the test.
 */
kt_sync_spx:
	mrs	x10, esr_el1
	lsr	x11, x10, #26
	cmp	x11, #0x15
	b.eq	kt_svc
	sub	x12, x11, #0x30
	cmp	x12, #5
	b.ls	kt_dbg
	cmp	x11, #0x3c
	b.ne	1f
	adr	x12, kt_brk_count
	ldr	x13, [x12]
	add	x13, x13, #1
	str	x13, [x12]
	adr	x12, kt_brk_esr
	str	x10, [x12]
	mrs	x13, elr_el1
	adr	x12, kt_brk_elr
	str	x13, [x12]
	mrs	x11, spsr_el1
	adr	x12, kt_brk_spsr
	str	x11, [x12]
	adr	x12, kt_brk_vec
	str	x14, [x12]
	add	x13, x13, #4
	msr	elr_el1, x13
	eret
1:	mov	x10, #4
	b	kt_fail

/*
 * Breakpoint, software step and watchpoint exceptions (EC 0x30-0x35, x12 =
 * EC - 0x30): counted per EC in kt_dbg_count, with the ESR, ELR and FAR of
 * the last one in kt_dbg_esr/elr/far. A breakpoint or watchpoint returns
 * past the instruction (the guest's own debugger "skips" it: no step
 * needed); a step returns where it stopped.
 */
kt_dbg:
	lsl	x12, x12, #3
	adr	x13, kt_dbg_count
	ldr	x11, [x13, x12]
	add	x11, x11, #1
	str	x11, [x13, x12]
	adr	x13, kt_dbg_esr
	str	x10, [x13, x12]
	mrs	x11, elr_el1
	adr	x13, kt_dbg_elr
	str	x11, [x13, x12]
	mrs	x10, far_el1
	adr	x13, kt_dbg_far
	str	x10, [x13, x12]
	adr	x13, kt_dbg_vec
	str	x14, [x13]
	lsr	x12, x12, #4      /* 0: breakpoint, 1: step, 2: watchpoint */
	cmp	x12, #1
	b.eq	1f
	add	x11, x11, #4
	msr	elr_el1, x11
	eret
1:	mrs	x10, mdscr_el1    /* one step: MDSCR_EL1.SS off again */
	bic	x10, x10, #1
	msr	mdscr_el1, x10
	eret

/* SVC (EC 0x15): counted, its SPSR recorded, resumes after it (ELR is). */
kt_svc:
	adr	x12, kt_svc_count
	ldr	x13, [x12]
	add	x13, x13, #1
	str	x13, [x12]
	mrs	x11, spsr_el1
	adr	x12, kt_svc_spsr
	str	x11, [x12]
	and	x11, x10, #0xffff
	cmp	x11, #1
	b.ne	1f
	msr	elr_el1, x27      /* SVC #1: back to EL1h at x27, D unmasked */
	mov	x11, #0x1c5
	msr	spsr_el1, x11
1:	eret

/* x10 = vector entry. kt_fail_frame = ESR, ELR, FAR, SPSR; the port value is
 * the entry number. */
kt_fail:
	adr	x12, kt_fail_frame
	mrs	x11, esr_el1
	str	x11, [x12]
	mrs	x11, elr_el1
	str	x11, [x12, #8]
	mrs	x11, far_el1
	str	x11, [x12, #16]
	mrs	x11, spsr_el1
	str	x11, [x12, #24]
	OUT	KT_PORT_FAIL, w10
	b	.

/* ---- single-step: ten adds of one ---- */
GLABEL g_step
	mov	x0, #0
GLABEL g_step_0
	add	x0, x0, #1
GLABEL g_step_1
	add	x0, x0, #1
GLABEL g_step_2
	add	x0, x0, #1
GLABEL g_step_3
	add	x0, x0, #1
GLABEL g_step_4
	add	x0, x0, #1
GLABEL g_step_5
	add	x0, x0, #1
GLABEL g_step_6
	add	x0, x0, #1
GLABEL g_step_7
	add	x0, x0, #1
GLABEL g_step_8
	add	x0, x0, #1
GLABEL g_step_9
	add	x0, x0, #1
GLABEL g_step_end
	DONE

/* ---- a loop of KA_LOOP_N iterations around g_loop_bp (x0 counts) ---- */
GLABEL g_loop
	mov	x0, #0
	mov	x1, #KA_LOOP_N
1:
GLABEL g_loop_bp
	add	x0, x0, #1
GLABEL g_loop_after
	sub	x1, x1, #1
	cbnz	x1, 1b
	adr	x2, g_loop_count
	str	x0, [x2]
	DONE

/* ---- g_swhits: run by several vCPUs, g_swhits_n iterations over
 * g_swhits_bp (x0 counts them) ---- */
GLABEL g_swhits
	mov	x0, #0
	adr	x2, g_swhits_n
	ldr	x1, [x2]
1:
GLABEL g_swhits_bp
	add	x0, x0, #1
	sub	x1, x1, #1
	cbnz	x1, 1b
	DONE

/* ---- watchpoints on g_watch_var (16 bytes) and g_watch_blk (64 bytes) ---- */
GLABEL g_watch
	adr	x1, g_watch_var
	adr	x5, g_watch_blk
	mov	x0, #0x11
	mov	w3, #0x22
GLABEL g_watch_w8
	str	x0, [x1]          /* write var[0..8) */
GLABEL g_watch_r8
	ldr	x2, [x1]          /* read var[0..8) */
GLABEL g_watch_w1
	strb	w3, [x1, #3]      /* write var[3] */
GLABEL g_watch_other
	str	x0, [x1, #8]      /* write var[8..16): outside an 8-byte watch */
GLABEL g_watch_r1
	ldrb	w4, [x1, #5]      /* read var[5] */
GLABEL g_watch_blk_w
	strb	w3, [x5, #40]     /* write blk[40] */
GLABEL g_watch_end
	DONE

/* ---- one doubleword store to each of blk[0..64) in turn ---- */
GLABEL g_watch8
	adr	x5, g_watch_blk
	mov	x0, #0x33
	.irp n, 0,1,2,3,4,5,6,7
	str	x0, [x5, #(\n * 8)]
	.endr
	DONE

/* ---- PSTATE.DAIF across the library's step-over ---- */
GLABEL g_daif
	msr	daifclr, #0xf     /* everything unmasked (nothing can interrupt) */
GLABEL g_daif_bp
	nop
GLABEL g_daif_next
	mrs	x0, daif
	adr	x1, g_daif_result
	str	x0, [x1]
	DONE

GLABEL g_daif3
	msr	daifset, #0xf
	msr	daifclr, #2       /* I unmasked: A, F (and D) masked */
GLABEL g_daif3_bp
	msr	daifclr, #1       /* the stepped instruction unmasks F */
	mrs	x0, daif
	adr	x1, g_daif_result
	str	x0, [x1]
	DONE

/* local_irq_disable: a step over MSR DAIFSet, #2 with everything unmasked
 * leaves I set, though the library's mask had it set already. */
GLABEL g_daifset
	msr	daifclr, #0xf
GLABEL g_daifset_insn
	msr	daifset, #2
GLABEL g_daifset_next
	mrs	x0, daif
	adr	x1, g_daif_result
	str	x0, [x1]
	DONE

/* A breakpoint on an SVC with everything unmasked: the internal step enters
 * the guest's SVC handler, whose SPSR must show the guest's DAIF. */
GLABEL g_svc
	msr	daifclr, #0xf
GLABEL g_svc_insn
	svc	#0
	mrs	x0, daif
	adr	x1, g_daif_result
	str	x0, [x1]
	DONE

/* ---- the guest's own BRK, handled by its own vector table ---- */
GLABEL g_brkg
	adr	x0, kt_vectors
	msr	vbar_el1, x0
	isb
GLABEL g_brkg_insn
	brk	#0x800            /* Linux's BUG() immediate */
GLABEL g_brkg_after
	mov	x0, #1
	adr	x1, g_brkg_passed
	str	x0, [x1]
	DONE

/* The guest's own BRK at EL0: taken to EL1 through the lower-EL vector. */
GLABEL g_el0
	adr	x0, kt_vectors
	msr	vbar_el1, x0
	adr	x0, g_el0_user
	msr	elr_el1, x0
	mov	x0, #0x3c0        /* EL0t, DAIF masked */
	msr	spsr_el1, x0
	eret
GLABEL g_el0_user
GLABEL g_el0_brk
	brk	#0x800
	DONE

/* The guest's own BRK with the library's immediate, not inserted by it. */
GLABEL g_brkg_ours
	adr	x0, kt_vectors
	msr	vbar_el1, x0
	isb
GLABEL g_brkg_ours_insn
	brk	#0x4b44
GLABEL g_brkg_ours_after
	DONE

/*
 * ---- the guest's own debugging (overlay) ----
 * The guest unlocks the OS Lock, programs its own breakpoint 0 (g_ov_gbp),
 * watchpoint 0 (stores to g_ov_gvar) and a hostile breakpoint 2 (HMC = 1,
 * SSC = 0b11: EL2 too) on g_ov_xbp, enables MDE and KDE, unmasks PSTATE.D
 * and says KA_OV_SETUP. Then KA_OV_N iterations of: its breakpoint, the
 * host's (g_ov_hbp), its watched store, the host's watched store
 * (g_ov_hvar), in iterations 1..KA_OV_N-2 the hostile breakpoint's nop, and
 * a marker with the iteration count. x20 counts. Variants (registers set
 * before it starts, 0 by default): x19 != 0 leaves PSTATE.D masked; x18 != 0
 * clears MDSCR_EL1 at the end of iteration 2.
 */
GLABEL g_ov
	msr	oslar_el1, xzr
	adr	x0, g_ov_gbp
	msr	dbgbvr0_el1, x0
	mov	x0, #KA_BCR_EL1_EL0
	msr	dbgbcr0_el1, x0
	adr	x0, g_ov_gvar
	msr	dbgwvr0_el1, x0
	mov	x0, #KA_WCR_STORE8
	msr	dbgwcr0_el1, x0
	adr	x0, g_ov_xbp
	msr	dbgbvr2_el1, x0
	mov	x0, #KA_BCR_HOSTILE
	msr	dbgbcr2_el1, x0
	mov	x0, #KA_MDSCR_MDE_KDE
	msr	mdscr_el1, x0
	isb
	cbnz	x19, 9f           /* variant: PSTATE.D stays masked */
	msr	daifclr, #8       /* PSTATE.D: debug exceptions from EL1 */
9:	mov	w0, #KA_OV_SETUP
	OUT	KT_PORT_MARK, w0
	mov	x20, #0
	adr	x21, g_ov_gvar
	adr	x22, g_ov_hvar
1:
GLABEL g_ov_gbp
	nop
GLABEL g_ov_hbp
	nop
GLABEL g_ov_gw
	str	x20, [x21]
GLABEL g_ov_hw
	str	x20, [x22]
	cbz	x20, 2f
	cmp	x20, #(KA_OV_N - 1)
	b.eq	2f
GLABEL g_ov_xbp
	nop
2:	cmp	x20, #2           /* variant: the guest turns its debugging */
	b.ne	3f                /* off at the end of iteration 2 */
	cbz	x18, 3f
	msr	mdscr_el1, xzr
3:	add	x20, x20, #1
	OUT	KT_PORT_MARK, w20
	cmp	x20, #KA_OV_N
	b.ne	1b
	DONE

/*
 * The guest's own breakpoints with MDSCR_EL1.MDE but not KDE: its
 * breakpoint 0 (EL1 and EL0) on g_ovu_bp, run at EL0, fires (through the
 * lower-EL vector, EC 0x30); its breakpoint 1 (EL1 and EL0) on g_ovu_k, run
 * at EL1 with PSTATE.D clear, never does (no KDE). Each of KA_OV_N
 * iterations: g_ovu_k, the host's g_ovu_hbp, ERET to EL0 for g_ovu_bp,
 * SVC #1 back to EL1, a marker.
 */
GLABEL g_ovu
	msr	oslar_el1, xzr
	adr	x0, g_ovu_bp
	msr	dbgbvr0_el1, x0
	mov	x0, #KA_BCR_EL1_EL0
	msr	dbgbcr0_el1, x0
	adr	x0, g_ovu_k
	msr	dbgbvr1_el1, x0
	mov	x0, #KA_BCR_EL1_EL0
	msr	dbgbcr1_el1, x0
	mov	x0, #KA_MDSCR_MDE
	msr	mdscr_el1, x0
	isb
	msr	daifclr, #8
	mov	w0, #KA_OV_SETUP
	OUT	KT_PORT_MARK, w0
	mov	x20, #0
1:
GLABEL g_ovu_k
	nop
GLABEL g_ovu_hbp
	nop
	adr	x27, 3f
	adr	x0, 2f
	msr	elr_el1, x0
	mov	x0, #0x3c0        /* EL0t */
	msr	spsr_el1, x0
	eret
2:
GLABEL g_ovu_bp
	nop
	svc	#1
3:	add	x20, x20, #1
	OUT	KT_PORT_MARK, w20
	cmp	x20, #KA_OV_N
	b.ne	1b
	DONE

/*
 * The guest's own software step: each of KA_OV_N iterations sets
 * MDSCR_EL1.SS (with MDE, KDE) and ERETs to g_ovs_insn with SPSR.SS set and
 * PSTATE.D clear: one instruction runs, then a step exception (EC 0x33) at
 * g_ovs_after, whose handler clears MDSCR_EL1.SS; then the host's
 * breakpoint g_ovs_hbp and a marker.
 */
GLABEL g_ovs
	msr	oslar_el1, xzr
	mov	w0, #KA_OV_SETUP
	OUT	KT_PORT_MARK, w0
	mov	x20, #0
1:	msr	daifset, #8
	mov	x0, #(KA_MDSCR_MDE_KDE | 1)
	msr	mdscr_el1, x0
	isb
	adr	x0, g_ovs_insn
	msr	elr_el1, x0
	movz	x0, #0x1c5        /* EL1h, A I F masked, D clear */
	movk	x0, #0x20, lsl #16 /* SPSR.SS */
	msr	spsr_el1, x0
	eret
GLABEL g_ovs_insn
	nop
GLABEL g_ovs_after
	nop
GLABEL g_ovs_hbp
	nop
	add	x20, x20, #1
	OUT	KT_PORT_MARK, w20
	cmp	x20, #KA_OV_N
	b.ne	1b
	DONE

/* ---- data ---- */
	.balign 8
GLABEL kt_fail_frame
	.quad	0, 0, 0, 0
GLABEL kt_brk_count
	.quad	0
GLABEL kt_brk_esr
	.quad	0
GLABEL kt_brk_elr
	.quad	0
GLABEL kt_brk_spsr
	.quad	0
GLABEL kt_brk_vec
	.quad	0
GLABEL kt_svc_count
	.quad	0
GLABEL kt_svc_spsr
	.quad	0
GLABEL g_loop_count
	.quad	0
GLABEL g_swhits_n
	.quad	0
GLABEL g_daif_result
	.quad	0
GLABEL g_brkg_passed
	.quad	0
GLABEL kt_dbg_count
	.quad	0, 0, 0, 0, 0, 0
GLABEL kt_dbg_esr
	.quad	0, 0, 0, 0, 0, 0
GLABEL kt_dbg_elr
	.quad	0, 0, 0, 0, 0, 0
GLABEL kt_dbg_far
	.quad	0, 0, 0, 0, 0, 0
GLABEL kt_dbg_vec
	.quad	0
GLABEL g_ov_gvar
	.quad	0
GLABEL g_ov_hvar
	.quad	0
	.balign 16
GLABEL g_watch_var
	.quad	0, 0
	.balign 64
GLABEL g_watch_blk
	.fill	64, 1, 0

	.balign 16
GLABEL kt_guest_end

	.section .note.GNU-stack, "", %progbits
