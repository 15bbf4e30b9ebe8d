/* SPDX-License-Identifier: MIT */
/*
 * x86-64 guest programs of the `kvm` suite.
 *
 * One position-independent blob, kt_guest_start .. kt_guest_end, that
 * tests/kvm-util.c copies to the micro-VM's code_gpa. The guest address of a
 * label is code_gpa + (label - kt_guest_start). Code and data both live in
 * the blob (guest memory is identity mapped and writable at CPL0); the host
 * reads and writes the data through the same offsets.
 *
 * The guests run in long mode at CPL0 with no IDT. Programs that need one
 * call kt_idt_init (every vector reports itself on KT_PORT_FAIL), then
 * install their own handlers with kt_idt_set. The gate selector is the CS
 * the guest runs with (read at run time), so nothing here depends on the
 * GDT layout of the micro-VM.
 *
 * Programs talk to the host with `out %eax` to the KT_PORT_* ports.
 * Instruction-exact labels (breakpoint targets, step sequences) are exported
 * as hidden globals; their encodings are spelled out where a test depends
 * on an instruction length.
 */
#include "../common/kvm-util.h"

/* A hidden global label, visible to the test binary. */
.macro GLABEL name
	.globl \name
	.hidden \name
\name:
.endm

.macro MARK val
	movl $\val, %eax
	outl %eax, $KT_PORT_MARK
.endm

.macro DONE
	xorl %eax, %eax
	outl %eax, $KT_PORT_DONE
1:	hlt
	jmp 1b
.endm

	.section .rodata.kvmdbg_guests, "a"
	.balign 4096
GLABEL kt_guest_start

/* ------------------------------------------------------------------ */
/* Shared helpers                                                       */
/* ------------------------------------------------------------------ */

/* Exception stubs: one 16-byte stub per vector, pushing the vector. */
	.balign 16
GLABEL kt_exc_stubs
	.set vec, 0
	.rept KT_IDT_VECTORS
	.balign 16
	pushq $vec
	jmp kt_exc_common
	.set vec, vec + 1
	.endr

/* Unexpected exception or interrupt: record it and report on KT_PORT_FAIL. */
kt_exc_common:
	pushq %rax
	movq 8(%rsp), %rax
	movq %rax, kt_fail_vec(%rip)
	movq 16(%rsp), %rax
	movq %rax, kt_fail_frame(%rip)
	movq 24(%rsp), %rax
	movq %rax, kt_fail_frame + 8(%rip)
	movq 32(%rsp), %rax
	movq %rax, kt_fail_frame + 16(%rip)
	movq 40(%rsp), %rax
	movq %rax, kt_fail_frame + 24(%rip)
	movq kt_fail_vec(%rip), %rax
	outl %eax, $KT_PORT_FAIL
1:	hlt
	jmp 1b

/* kt_idt_set: %rdi = vector, %rsi = handler. Clobbers %rax, %rdx, %rdi. */
GLABEL kt_idt_set
	leaq kt_idt(%rip), %rax
	shlq $4, %rdi
	addq %rdi, %rax
	movw %si, (%rax)
	movw %cs, %dx
	movw %dx, 2(%rax)
	movw $0x8e00, 4(%rax)		/* present, DPL 0, 64-bit interrupt gate */
	movq %rsi, %rdx
	shrq $16, %rdx
	movw %dx, 6(%rax)
	shrq $16, %rdx
	movl %edx, 8(%rax)
	movl $0, 12(%rax)
	ret

/* kt_idt_init: every vector to its reporting stub, then lidt. Keeps all GPRs. */
GLABEL kt_idt_init
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	xorl %ecx, %ecx
1:	leaq kt_exc_stubs(%rip), %rsi
	movq %rcx, %rax
	shlq $4, %rax
	addq %rax, %rsi
	movq %rcx, %rdi
	call kt_idt_set
	incl %ecx
	cmpl $KT_IDT_VECTORS, %ecx
	jb 1b
	leaq kt_idt(%rip), %rax
	movq %rax, kt_idtr + 2(%rip)
	movw $(KT_IDT_VECTORS * 16 - 1), kt_idtr(%rip)
	lidt kt_idtr(%rip)
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rax
	ret

/* An interrupt handler (no error code) that counts its interrupts in
 * \count and remembers in \rip where the last one hit. */
.macro COUNT_HANDLER name, count, rip
GLABEL \name
	lock incq \count(%rip)
	pushq %rax
	movq 8(%rsp), %rax
	movq %rax, \rip(%rip)
	popq %rax
	iretq
.endm

/* External interrupt KT_IRQ_VECTOR: count it and remember where it hit. */
COUNT_HANDLER kt_irq_handler, kt_irq_count, kt_irq_rip
GLABEL kt_irq_handler_end

/* NMI: count it and remember where it hit. */
COUNT_HANDLER kt_nmi_handler, kt_nmi_count, kt_nmi_rip
GLABEL kt_nmi_handler_end

/*
 * #DB handler: records up to KT_DB_MAX (DR6, RIP) pairs, clears DR6, clears
 * TF in the interrupted RFLAGS, and for a hit of the guest's own DR0
 * breakpoint disables it (DR7) and sets RF so the instruction runs once.
 */
GLABEL kt_db_handler
	pushq %rax
	pushq %rcx
	pushq %rdx
	/* frame: %rdx, %rcx, %rax, then RIP at 24, CS at 32, RFLAGS at 40 */
	movq %dr6, %rax
	movq kt_db_count(%rip), %rcx
	cmpq $KT_DB_MAX, %rcx
	jae 1f
	leaq kt_db_dr6(%rip), %rdx
	movq %rax, (%rdx, %rcx, 8)
	leaq kt_db_rip(%rip), %rdx
	movq 24(%rsp), %rax
	movq %rax, (%rdx, %rcx, 8)
1:	lock incq kt_db_count(%rip)
	movq %dr6, %rax
	testb $1, %al			/* B0: the guest's own DR0 breakpoint */
	jz 2f
	movq $0x400, %rdx
	movq %rdx, %dr7
	orq $0x10000, 40(%rsp)		/* RF: run the instruction once */
2:	andq $~0x100, 40(%rsp)		/* TF off */
	movq $0xffff0ff0, %rax
	movq %rax, %dr6
	popq %rdx
	popq %rcx
	popq %rax
	iretq
GLABEL kt_db_handler_end

/* #BP handler: count and remember the return address. */
COUNT_HANDLER kt_bp_handler, kt_bp_count, kt_bp_rip

/* ------------------------------------------------------------------ */
/* Programs                                                             */
/* ------------------------------------------------------------------ */

/* g_bp4: four breakpoint targets, the first two back to back. Result 4. */
GLABEL g_bp4
	call kt_idt_init
	xorl %eax, %eax
GLABEL g_bp4_l0
	incl %eax
GLABEL g_bp4_l1
	incl %eax
	nop
GLABEL g_bp4_l2
	incl %eax
	nop
	nop
GLABEL g_bp4_l3
	incl %eax
	movl %eax, g_bp4_result(%rip)
GLABEL g_bp4_l4
	nop
	DONE

/*
 * g_loop: g_loop_n iterations over g_loop_bp (a 7-byte incq of the counter);
 * with g_loop_mark != 0 each iteration also reports the iterations left on
 * KT_PORT_MARK.
 */
GLABEL g_loop
	call kt_idt_init
	movl g_loop_n(%rip), %ecx
1:
GLABEL g_loop_bp
	incq g_loop_count(%rip)		/* 48 ff 05 rel32: 7 bytes */
GLABEL g_loop_bp_end
	decl %ecx			/* ff c9: 2 bytes */
GLABEL g_loop_dec_end
	cmpl $0, g_loop_mark(%rip)
	je 2f
	movl %ecx, %eax
GLABEL g_loop_out
	outl %eax, $KT_PORT_MARK	/* e7 e1: 2 bytes */
GLABEL g_loop_out_end
2:	testl %ecx, %ecx
	jnz 1b
	DONE

/*
 * g_step: a straight run of instructions of known lengths, g_step_0 ..
 * g_step_end. With g_step_sti != 0, interrupts are enabled (handler
 * kt_irq_handler on KT_IRQ_VECTOR) before the marker; the run ends with cli.
 * Result: g_step_irqs = interrupts taken.
 */
GLABEL g_step
	call kt_idt_init
	movl $KT_IRQ_VECTOR, %edi
	leaq kt_irq_handler(%rip), %rsi
	call kt_idt_set
	movl $2, %edi
	leaq kt_nmi_handler(%rip), %rsi
	call kt_idt_set
	xorl %ebx, %ebx
	cmpl $0, g_step_sti(%rip)
	je 1f
	sti
1:	movl $1, %eax
GLABEL g_step_out
	outl %eax, $KT_PORT_MARK	/* marker 1 */
GLABEL g_step_0
	.byte 0x90				/* nop: 1 */
GLABEL g_step_1
	.byte 0xb8, 0x78, 0x56, 0x34, 0x12	/* mov $0x12345678, %eax: 5 */
GLABEL g_step_2
	.byte 0x48, 0x01, 0xd8			/* add %rbx, %rax: 3 */
GLABEL g_step_3
	.byte 0x31, 0xc9			/* xor %ecx, %ecx: 2 */
GLABEL g_step_4
	.byte 0x48, 0x8d, 0x15, 0, 0, 0, 0	/* lea 0(%rip), %rdx: 7 */
GLABEL g_step_5
	.byte 0x49, 0xb8			/* movabs $imm64, %r8: 10 */
	.quad 0x1122334455667788
GLABEL g_step_6
	.byte 0x50				/* push %rax: 1 */
GLABEL g_step_7
	.byte 0x58				/* pop %rax: 1 */
GLABEL g_step_8
	.byte 0xeb, 0x00			/* jmp .+2: 2 */
GLABEL g_step_9
	.byte 0x90				/* nop: 1 */
GLABEL g_step_end
	nop
	nop
	cli
	movq kt_irq_count(%rip), %rax
	movq %rax, g_step_irqs(%rip)
	DONE

/*
 * g_guestdb: the guest debugs itself while the host debugs it too.
 *  1. its own execution breakpoint (DR0/DR7 L0) on g_guestdb_gbp;
 *  2. a TF single-step trap after g_guestdb_tf;
 *  3. the host's breakpoint target g_guestdb_hostbp.
 * kt_db_handler records each #DB; g_guestdb_passed counts executions of the
 * instruction at g_guestdb_gbp (must be 1).
 */
GLABEL g_guestdb
	call kt_idt_init
	movl $1, %edi
	leaq kt_db_handler(%rip), %rsi
	call kt_idt_set
	movq $0xffff0ff0, %rax
	movq %rax, %dr6
	leaq g_guestdb_gbp(%rip), %rax
	movq %rax, %dr0
	movq $0x401, %rax		/* L0, execute, length 1 */
	movq %rax, %dr7
	nop
GLABEL g_guestdb_gbp
	incq g_guestdb_passed(%rip)
	movq $0x400, %rax
	movq %rax, %dr7
	pushfq
	orq $0x100, (%rsp)
	popfq
GLABEL g_guestdb_tf
	nop				/* traps after this one */
GLABEL g_guestdb_after_tf
	nop
	nop
GLABEL g_guestdb_hostbp
	nop
	DONE

/*
 * g_int3: the guest's own INT3 (handler kt_bp_handler), then the host's
 * breakpoint target g_int3_hostbp.
 */
GLABEL g_int3
	call kt_idt_init
	movl $3, %edi
	leaq kt_bp_handler(%rip), %rsi
	call kt_idt_set
GLABEL g_int3_insn
	int3
GLABEL g_int3_after
	nop
GLABEL g_int3_hostbp
	nop
	DONE

/*
 * g_icebp: the guest's own ICEBP (INT1, 0xf1: a #DB trap that leaves DR6
 * alone; handler kt_db_handler), then the host's breakpoint target
 * g_icebp_hostbp.
 */
GLABEL g_icebp
	call kt_idt_init
	movl $1, %edi
	leaq kt_db_handler(%rip), %rsi
	call kt_idt_set
	movq $0xffff0ff0, %rax
	movq %rax, %dr6
GLABEL g_icebp_insn
	.byte 0xf1
GLABEL g_icebp_after
	nop
GLABEL g_icebp_hostbp
	nop
	DONE

/*
 * g_rep: a breakpoint target that is a REP string instruction (8 iterations,
 * g_rep_src to g_rep_dst); single-step traps come after each iteration with
 * RIP still on the instruction.
 */
GLABEL g_rep
	call kt_idt_init
	leaq g_rep_src(%rip), %rsi
	leaq g_rep_dst(%rip), %rdi
	movl $8, %ecx
	cld
GLABEL g_rep_insn
	rep movsb
GLABEL g_rep_end
	nop
	DONE

/*
 * g_mp: run by several vCPUs at once. Marker 1, then KT_MP_ITERS iterations
 * over g_mp_bp (a nop) and a locked increment of the shared g_mp_count. (Not
 * the locked instruction itself as the breakpoint target: on kvm_pvm a
 * single-step of an emulated LOCK instruction that lost a race with the
 * other vCPU can trap with RIP unchanged, the instruction not executed.)
 */
GLABEL g_mp
	MARK 1
	movl $KT_MP_ITERS, %ecx
1:
GLABEL g_mp_bp
	nop
	lock incq g_mp_count(%rip)
	decl %ecx
	jnz 1b
	DONE

/*
 * g_stress: run by several vCPUs while the debugger changes breakpoints:
 * g_stress_n iterations of a locked increment (g_stress_bp) and a nop
 * (g_stress_bp2), each iteration reporting on KT_PORT_MARK.
 */
GLABEL g_stress
	movl g_stress_n(%rip), %ecx
1:
GLABEL g_stress_bp
	lock incq g_stress_count(%rip)
GLABEL g_stress_bp2
	nop
	movl %ecx, %eax
	outl %eax, $KT_PORT_MARK
	decl %ecx
	jnz 1b
	DONE

/*
 * g_watch: writes and reads of g_watch_var, each followed by a label (data
 * breakpoints are trap-like: they stop after the access).
 */
GLABEL g_watch
	call kt_idt_init
	leaq g_watch_var(%rip), %rbx
	movq $1, (%rbx)			/* write 8 */
GLABEL g_watch_w8_end
	nop
	movq (%rbx), %rax		/* read 8 */
GLABEL g_watch_r8_end
	nop
	movb $2, 3(%rbx)		/* write 1 at +3 */
GLABEL g_watch_w1_end
	nop
	movq %rax, 8(%rbx)		/* write 8 next to the variable */
GLABEL g_watch_other_end
	nop
	DONE

/*
 * g_acc: a list of data accesses around g_wbuf, driven by the host through
 * g_acc_tab: 4-byte entries {kind, 0, offset (u16)}, kind KT_ACC_W1..W8
 * (write 1/2/4/8 bytes) or KT_ACC_R1..R8 (read), 0 ends the list. The
 * access is to g_wbuf + offset - KT_ACC_BIAS. Before each access the guest
 * stores its index in g_acc_cur, so the host knows which access a
 * (trap-like) watchpoint stop came after; the stop's pc is the label after
 * the access instruction (g_acc_<kind>_end). A write stores the entry's
 * index + 1 in every byte it writes (0x0101.. pattern times index + 1).
 */
.macro ACC kind, insn
	cmpl $\kind, %ecx
	jne 9f
	\insn
	jmp 8f
9:
.endm

GLABEL g_acc
	call kt_idt_init
	xorl %r12d, %r12d
1:	movq %r12, g_acc_cur(%rip)
	leaq g_acc_tab(%rip), %rax
	movzbl (%rax,%r12,4), %ecx
	movzwl 2(%rax,%r12,4), %ebx
	leaq g_wbuf(%rip), %rdx
	leaq -KT_ACC_BIAS(%rdx,%rbx), %rbx
	leaq 1(%r12), %rax
	movabsq $0x0101010101010101, %rdx
	imulq %rdx, %rax
	incq %r12
	testl %ecx, %ecx
	jz 7f
	cmpl $KT_ACC_W1, %ecx
	je g_acc_w1
	cmpl $KT_ACC_W2, %ecx
	je g_acc_w2
	cmpl $KT_ACC_W4, %ecx
	je g_acc_w4
	cmpl $KT_ACC_W8, %ecx
	je g_acc_w8
	cmpl $KT_ACC_R1, %ecx
	je g_acc_r1
	cmpl $KT_ACC_R2, %ecx
	je g_acc_r2
	cmpl $KT_ACC_R4, %ecx
	je g_acc_r4
	cmpl $KT_ACC_R8, %ecx
	je g_acc_r8
	movl %ecx, %eax			/* a bad kind: report it */
	outl %eax, $KT_PORT_FAIL
	jmp 7f
GLABEL g_acc_w1
	movb %al, (%rbx)
GLABEL g_acc_w1_end
	jmp 1b
GLABEL g_acc_w2
	movw %ax, (%rbx)
GLABEL g_acc_w2_end
	jmp 1b
GLABEL g_acc_w4
	movl %eax, (%rbx)
GLABEL g_acc_w4_end
	jmp 1b
GLABEL g_acc_w8
	movq %rax, (%rbx)
GLABEL g_acc_w8_end
	jmp 1b
GLABEL g_acc_r1
	movb (%rbx), %al
GLABEL g_acc_r1_end
	jmp 1b
GLABEL g_acc_r2
	movw (%rbx), %ax
GLABEL g_acc_r2_end
	jmp 1b
GLABEL g_acc_r4
	movl (%rbx), %eax
GLABEL g_acc_r4_end
	jmp 1b
GLABEL g_acc_r8
	movq (%rbx), %rax
GLABEL g_acc_r8_end
	jmp 1b
7:	DONE

/*
 * g_stepemu: single-step across an instruction that exits to KVM, which
 * emulates it and must synthesise the step's #DB itself (debug_regs.c
 * steps over CPUID the same way).
 */
GLABEL g_stepemu
	movl $1, %eax
GLABEL g_stepemu_out
	outl %eax, $KT_PORT_MARK	/* marker 1 */
GLABEL g_stepemu_0
	.byte 0x31, 0xc0		/* xor %eax, %eax: 2 */
GLABEL g_stepemu_1
	.byte 0x0f, 0xa2		/* cpuid: 2 */
GLABEL g_stepemu_2
	.byte 0x90			/* nop: 1 */
GLABEL g_stepemu_3
	.byte 0x0f, 0xa2		/* cpuid: 2 */
GLABEL g_stepemu_4
	DONE

/*
 * g_spin: the other vCPU of an all-stop: counts g_spin_count up without
 * any exit until the host sets g_spin_stop.
 */
GLABEL g_spin
	MARK 1
1:
GLABEL g_spin_loop
	lock incq g_spin_count(%rip)
	pause
	cmpq $0, g_spin_stop(%rip)
	je 1b
GLABEL g_spin_loop_end
	DONE

/* ------------------------------------------------------------------ */
/* Data (host-visible through the same offsets)                          */
/* ------------------------------------------------------------------ */
	.balign 64
GLABEL kt_fail_vec
	.quad 0
GLABEL kt_fail_frame
	.quad 0, 0, 0, 0
GLABEL kt_irq_count
	.quad 0
GLABEL kt_irq_rip
	.quad 0
GLABEL kt_nmi_count
	.quad 0
GLABEL kt_nmi_rip
	.quad 0
GLABEL kt_db_count
	.quad 0
GLABEL kt_db_dr6
	.fill KT_DB_MAX, 8, 0
GLABEL kt_db_rip
	.fill KT_DB_MAX, 8, 0
GLABEL kt_bp_count
	.quad 0
GLABEL kt_bp_rip
	.quad 0
GLABEL g_bp4_result
	.quad 0
GLABEL g_loop_n
	.quad 0
GLABEL g_loop_count
	.quad 0
GLABEL g_loop_mark
	.quad 0
GLABEL g_step_sti
	.quad 0
GLABEL g_step_irqs
	.quad 0
GLABEL g_guestdb_passed
	.quad 0
GLABEL g_mp_count
	.quad 0
GLABEL g_stress_n
	.quad 0
GLABEL g_stress_count
	.quad 0
GLABEL g_rep_src
	.ascii "kvmdbg!\n"
GLABEL g_rep_dst
	.quad 0
	.balign 64
GLABEL g_watch_var
	.quad 0, 0
GLABEL g_acc_cur
	.quad 0
GLABEL g_spin_count
	.quad 0
GLABEL g_spin_stop
	.quad 0
GLABEL g_acc_tab
	.fill KT_ACC_MAX + 1, 4, 0
	/* g_wbuf: KT_ACC_BIAS bytes of margin, the watched area, margin again:
	 * nothing else of the guest's lives within 64 bytes of it. */
	.balign 64
	.fill 64, 1, 0
GLABEL g_wbuf
	.fill 2 * KT_ACC_BIAS + 64, 1, 0
	.fill 64, 1, 0
	.balign 16
kt_idtr:
	.word 0
	.quad 0
	.balign 16
kt_idt:
	.fill KT_IDT_VECTORS * 16, 1, 0
GLABEL kt_guest_end

	.section .note.GNU-stack, "", @progbits
