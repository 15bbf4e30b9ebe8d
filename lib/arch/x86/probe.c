/* SPDX-License-Identifier: MIT */
/*
 * The checks of kvmdbg_probe_verified() on x86-64 hosts, run by the generic
 * runner (lib/probe.c) in its micro-VM: small snippets of lib/arch/x86/
 * probe-guest.S. A feature bit is set only when the exact exit the
 * architecture promises arrives (exit reason, vector, DR6 bit, PC, and for
 * injections what the guest's own handler saw). Anything else -- another
 * exit, KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_SHUTDOWN, a failed ioctl -- means
 * "not proven" for that feature only.
 *
 * The checks program the debug registers themselves (raw
 * KVM_SET_GUEST_DEBUG, DR7 built from regs.h), not through the library's
 * encoder and glue: what they prove is the hardware and KVM behaviour the
 * glue relies on (DR7.GD exits, the guest's own DR0 beside the host's).
 *
 * Boundedness: every guest path ends in an `out` the host treats as final,
 * or in `hlt`, which exits to userspace because the micro-VM has no
 * in-kernel irqchip; exceptions go to handlers that do the same, or are a
 * triple fault (KVM_EXIT_SHUTDOWN) where no IDT is loaded. So each KVM_RUN
 * returns on its own, and no timer signal is needed. On top of that the
 * runner gives each started snippet a small budget of KVM_RUNs and checks a
 * wall-clock deadline before every KVM_RUN (-ETIMEDOUT when it passes).
 *
 * What hosts do (measured or from the KVM sources):
 *  - VMX/SVM follow the SDM for every test here, except that BLOCKIRQ
 *    cannot hold back an interrupt from KVM_INTERRUPT without an in-kernel
 *    irqchip (see probe_block_irq()) and the guest's own DR0-DR3 are
 *    replaced by the host's while USE_HW_BP is on (GUEST_BP_LIVE clear).
 *  - kvm_pvm (software KVM, CPL0 guest code runs in KVM's emulator), as
 *    measured on a 6.18 host: step, HW_BREAK, INJECT_DB, BLOCK_IRQ (NMI
 *    variant only) and GUEST_BP_LIVE; no watchpoint ever fires (the guest's
 *    own neither); any int3 at CPL0 is KVM_EXIT_INTERNAL_ERROR (emulation
 *    failure), with or without USE_SW_BP; INJECT_BP pushes the int3's own
 *    address (no instruction length); RFLAGS.RF written by KVM_SET_REGS
 *    reads back but the breakpoint hits again; the host's DR7.GD causes
 *    no exit (the guest's own DR7.GD does raise #DB with DR6.BD in the
 *    guest); the guest's DR0 and the host's fire side by side, even in
 *    the same slot number. The whole probe takes 2-5 ms there.
 *  - kvm_amd 6.1 and 6.12 nested in QEMU 10 TCG (tests/vm): everything but
 *    SW_BREAK, GD_EXIT and GUEST_BP_LIVE, in 40-200 ms. GUEST_BP_LIVE is
 *    SVM's normal answer; SW_BREAK is missed because QEMU's SVM checks the
 *    INTn intercept, not the #BP exception intercept, for int3 (the
 *    guest's handler runs); the host's DR7.GD causes no exit there either
 *    (untested on real AMD hardware). INJECT_BP passes at a pause point
 *    there (SVM decodes the int3 to find the return address).
 *  - kvm_amd 7.3 there: the same, and GD_EXIT as well. QEMU's SVM has no
 *    decode assists, so KVM emulates the guest's MOV DR; 6.1 and 6.12
 *    check only the guest's own DR7.GD in the emulator, 7.3 checks the
 *    effective one (the host's under USE_HW_BP) and exits to userspace
 *    with DR6.BD, as VMX always did.
 *  - KVM reports DR6 in its raw form, active-low bits set (0xffff0ff0 |
 *    B0-B3/BD/BS). debug.arch.dr7 is not reliable: KVM leaves it stale for
 *    single-step exits it synthesises (kvm_vcpu_do_singlestep), and
 *    kvm_pvm reports 0 for breakpoint hits.
 *
 * Define KVMDBG_PROBE_TRACE when building this file to get a line on stderr
 * for every exit (for bring-up on a new host, never in the library).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <linux/kvm.h>

#include "arch/x86/regs.h"
#include "kvmdbg-int.h"
#include "microvm.h"

#ifdef KVMDBG_PROBE_TRACE
#include <stdio.h>
#define PTRACE(...) fprintf(stderr, "kvmdbg-probe: " __VA_ARGS__)
#else
#define PTRACE(...) ((void)0)
#endif

/* probe-guest.S */
#define PG_SYM(name) extern const uint8_t kvmdbg_x86_pg_##name[] __attribute__((visibility("hidden")))
PG_SYM(start);
PG_SYM(end);
PG_SYM(db_handler);
PG_SYM(nmi_handler);
PG_SYM(bp_handler);
PG_SYM(irq_handler);
PG_SYM(exc_stubs);
PG_SYM(step);
PG_SYM(step_1);
PG_SYM(step_2);
PG_SYM(step_3);
PG_SYM(step_4);
PG_SYM(hw);
PG_SYM(hw_t0);
PG_SYM(hw_t1);
PG_SYM(hw_t2);
PG_SYM(hw_t3);
PG_SYM(write);
PG_SYM(write_after);
PG_SYM(read);
PG_SYM(read_after);
PG_SYM(bp);
PG_SYM(bp_int3);
PG_SYM(bp_after);
PG_SYM(db);
PG_SYM(db_at);
PG_SYM(gd);
PG_SYM(gd_insn);
PG_SYM(guest);
PG_SYM(guest_t);
PG_SYM(guest_h);
PG_SYM(irq);
PG_SYM(irq_2);
PG_SYM(nmi);
PG_SYM(nmi_2);
PG_SYM(idtr);
PG_SYM(watch);

/* Ports of probe-guest.S. */
#define PORT_DONE 0xe0
#define PORT_DB 0xe1
#define PORT_NMI 0xe2
#define PORT_BP 0xe3
#define PORT_IRQ 0xe4
#define PORT_EXC 0xe5

#define PG_EXC_STUB_SIZE 4 /* mov $v, %al; jmp rel8 */
#define PG_IRQ_VECTOR 0x20
#define PG_IDT_ENTRIES (PG_IRQ_VECTOR + 1)

/* Micro-VM layout, relative to code_gpa. */
#define PROBE_MEM_SIZE (2ull << 20)
#define PROBE_BLOB_MAX 0x4000ull
#define PROBE_IDT_OFF 0x4000ull
#define PROBE_STACK_OFF 0x8000ull /* initial RSP; the stack grows down */

/* KVM_RUNs one started snippet may take, and the whole probe's wall-clock bound. */
#define PROBE_RUN_BUDGET 8
#define PROBE_TIMEOUT_NS (2 * 1000000000ll)

/* Guest address of a label of probe-guest.S. */
#define G(p, name) ((p)->code + (uint64_t)(kvmdbg_x86_pg_##name - kvmdbg_x86_pg_start))

/* Reset the vCPU to a clean state at label pc, with a fresh budget. */
static bool begin(struct kvmdbg_probe *p, uint64_t pc)
{
	return kvmdbg_probe_start(p, pc, p->code + PROBE_STACK_OFF);
}

/* One KVM_RUN; false when it could not run (budget, deadline, error). */
static bool run(struct kvmdbg_probe *p)
{
	if (!kvmdbg_probe_run(p)) {
		PTRACE("  KVM_RUN did not run or failed\n");
		return false;
	}
	switch (p->run->exit_reason) {
	case KVM_EXIT_DEBUG:
		PTRACE("  exit debug: exception %u pc %#llx dr6 %#llx dr7 %#llx\n",
		       p->run->debug.arch.exception, (unsigned long long)p->run->debug.arch.pc,
		       (unsigned long long)p->run->debug.arch.dr6,
		       (unsigned long long)p->run->debug.arch.dr7);
		break;
	case KVM_EXIT_IO:
		PTRACE("  exit io: port %#x\n", p->run->io.port);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		PTRACE("  exit internal error: suberror %u\n", p->run->internal.suberror);
		break;
	default:
		PTRACE("  exit %u\n", p->run->exit_reason);
		break;
	}
	return true;
}

static bool set_debug(struct kvmdbg_probe *p, uint32_t control, const uint64_t *dr)
{
	struct kvm_guest_debug dbg = { 0 };
	int r;

	if (control & ~p->caps.debug_flags)
		return false;
	dbg.control = control;
	if (dr)
		memcpy(dbg.arch.debugreg, dr, sizeof(dbg.arch.debugreg));
	r = kvmdbg_ioctl_chk(p->fd, KVM_SET_GUEST_DEBUG, &dbg);
	if (r < 0)
		PTRACE("  KVM_SET_GUEST_DEBUG %#x: %s\n", control, strerror(-r));
	return r == 0;
}

static bool get_regs(struct kvmdbg_probe *p, struct kvm_regs *regs)
{
	return kvmdbg_ioctl_chk(p->fd, KVM_GET_REGS, regs) == 0;
}

static bool exit_io(struct kvmdbg_probe *p, uint16_t port)
{
	return p->run->exit_reason == KVM_EXIT_IO && p->run->io.direction == KVM_EXIT_IO_OUT &&
	       p->run->io.port == port;
}

static bool exit_debug(struct kvmdbg_probe *p, uint32_t vector, uint64_t pc)
{
	return p->run->exit_reason == KVM_EXIT_DEBUG && p->run->debug.arch.exception == vector &&
	       p->run->debug.arch.pc == pc;
}

/* The guest's handler reported on port and saw return address ret. */
static bool handler_saw(struct kvmdbg_probe *p, uint16_t port, uint64_t ret, struct kvm_regs *regs)
{
	if (!exit_io(p, port) || !get_regs(p, regs))
		return false;
	PTRACE("  handler: return rip %#llx (want %#llx), rbx %#llx\n",
	       (unsigned long long)regs->rcx, (unsigned long long)ret,
	       (unsigned long long)regs->rbx);
	return regs->rcx == ret;
}

/* Run to a `hlt` pause point of the snippet. */
static bool run_to_pause(struct kvmdbg_probe *p)
{
	return run(p) && p->run->exit_reason == KVM_EXIT_HLT;
}

/*
 * KVMDBG_FEAT_STEP: one KVM_EXIT_DEBUG per instruction, DR6.BS, and the PC
 * advanced by each instruction's length (1, 5, 2, 4 bytes).
 */
static bool probe_step(struct kvmdbg_probe *p)
{
	const uint64_t want[] = { G(p, step_1), G(p, step_2), G(p, step_3), G(p, step_4) };

	PTRACE("step\n");
	if (!begin(p, G(p, step)) || !set_debug(p, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP, NULL))
		return false;
	for (unsigned int i = 0; i < ARRAY_SIZE(want); i++) {
		if (!run(p) || !exit_debug(p, X86_VEC_DB, want[i]) || !(p->run->debug.arch.dr6 & DR6_BS))
			return false;
	}
	return true;
}

/*
 * KVMDBG_FEAT_HW_BREAK: each of DR0..DR3 fires fault-like (before the
 * instruction: PC and RIP at the target) with its own DR6 bit.
 * KVMDBG_FEAT_RF_RESUME: stopped at the DR0 hit, RFLAGS.RF written with
 * KVM_SET_REGS lets the instruction execute instead of hitting again (the
 * snippet then reaches its `out`).
 */
static uint64_t check_hw_break(struct kvmdbg_probe *p)
{
	const uint64_t target[4] = { G(p, hw_t0), G(p, hw_t1), G(p, hw_t2), G(p, hw_t3) };
	uint64_t rf = 0;
	bool all = true;

	for (unsigned int n = 0; n < 4; n++) {
		uint64_t dr[8] = { 0 };
		struct kvm_regs regs;
		bool hit;

		PTRACE("hw break DR%u\n", n);
		dr[n] = target[n];
		dr[7] = DR7_FIXED_1 | DR7_L(n);
		if (!begin(p, G(p, hw)) ||
		    !set_debug(p, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP, dr))
			return rf;
		hit = run(p) && exit_debug(p, X86_VEC_DB, target[n]) &&
		      (p->run->debug.arch.dr6 & DR6_B(n)) && get_regs(p, &regs) &&
		      regs.rip == target[n];
		if (!hit) {
			all = false;
			continue;
		}
		if (n != 0)
			continue;

		PTRACE("rf resume\n");
		regs.rflags |= RFLAGS_RF;
		if (kvmdbg_ioctl_chk(p->fd, KVM_SET_REGS, &regs) < 0)
			continue;
		if (run(p) && exit_io(p, PORT_DONE))
			rf = KVMDBG_FEAT_RF_RESUME;
	}
	return rf | (all ? KVMDBG_FEAT_HW_BREAK : 0);
}

/*
 * KVMDBG_FEAT_WATCH_WRITE / _ACCESS: a 4-byte watchpoint on pg_watch fires
 * trap-like: after the access, PC at the next instruction, DR6.B0.
 */
static bool probe_watch(struct kvmdbg_probe *p, bool write)
{
	uint64_t after = write ? G(p, write_after) : G(p, read_after);
	uint64_t dr[8] = { 0 };
	uint32_t val;

	PTRACE("watch %s\n", write ? "write" : "access (read)");
	memset(p->vm->mem + G(p, watch), 0, 8);
	dr[0] = G(p, watch);
	dr[7] = DR7_FIXED_1 | DR7_L(0) | DR7_RW_LEN(0, write ? X86_RW_WRITE : X86_RW_ACCESS, X86_LEN_4);
	if (!begin(p, write ? G(p, write) : G(p, read)) ||
	    !set_debug(p, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP, dr))
		return false;
	if (!run(p) || !exit_debug(p, X86_VEC_DB, after) || !(p->run->debug.arch.dr6 & DR6_B(0)))
		return false;
	/* Trap-like: a write has already happened when the exit arrives. */
	memcpy(&val, p->vm->mem + G(p, watch), sizeof(val));
	return !write || val == 0x5a5a5a5a;
}

/*
 * KVMDBG_FEAT_GD_EXIT: the host's DR7.GD (with USE_HW_BP) makes the guest's
 * `mov %dr7, %rax` exit fault-like (PC at the MOV) with DR6.BD. No IDT is
 * loaded, so a #DB that went to the guest instead is a triple fault.
 */
static bool probe_gd(struct kvmdbg_probe *p)
{
	uint64_t dr[8] = { 0 };

	PTRACE("gd\n");
	dr[7] = DR7_FIXED_1 | DR7_GD;
	if (!begin(p, G(p, gd)) || !set_debug(p, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP, dr))
		return false;
	return run(p) && exit_debug(p, X86_VEC_DB, G(p, gd_insn)) &&
	       (p->run->debug.arch.dr6 & DR6_BD);
}

/*
 * KVMDBG_FEAT_GUEST_BP_LIVE: the guest arms its own DR0 on pg_guest_t while
 * the host holds DR1 on the next instruction (pg_guest_h). On VMX and SVM
 * KVM runs the host's debug registers only, so the host's DR1 hit comes
 * first. Where the guest's breakpoint stays live, its #DB arrives first:
 * either in the guest's handler (return RIP pg_guest_t), or as a
 * KVM_EXIT_DEBUG at pg_guest_t with DR6.B0.
 */
static bool probe_guest_live(struct kvmdbg_probe *p)
{
	uint64_t dr[8] = { 0 };
	struct kvm_regs regs;

	PTRACE("guest breakpoint live\n");
	dr[1] = G(p, guest_h);
	dr[7] = DR7_FIXED_1 | DR7_L(1);
	if (!begin(p, G(p, guest)) ||
	    !set_debug(p, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP, dr) || !run(p))
		return false;
	if (exit_debug(p, X86_VEC_DB, G(p, guest_t)) && (p->run->debug.arch.dr6 & DR6_B(0)))
		return true;
	return handler_saw(p, PORT_DB, G(p, guest_t), &regs);
}

/*
 * KVMDBG_FEAT_INJECT_DB: paused at pg_db_at with the guest's DR6.B0 set
 * through KVM_SET_DEBUGREGS, INJECT_DB reaches the guest's #DB handler with
 * the return RIP where the vCPU stood and the DR6 the host wrote (what the
 * library's re-injection of a guest #DB relies on).
 */
static bool probe_inject_db(struct kvmdbg_probe *p)
{
	struct kvm_debugregs dbr = { 0 };
	struct kvm_regs regs;

	PTRACE("inject #DB\n");
	if (!begin(p, G(p, db)) || !run_to_pause(p))
		return false;
	dbr.dr6 = DR6_ACTIVE_LOW | DR6_B(0);
	dbr.dr7 = DR7_FIXED_1;
	if (kvmdbg_ioctl_chk(p->fd, KVM_SET_DEBUGREGS, &dbr) < 0 ||
	    !set_debug(p, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_INJECT_DB, NULL) || !run(p))
		return false;
	return handler_saw(p, PORT_DB, G(p, db_at), &regs) && (regs.rbx & 0xf) == DR6_B(0);
}

/*
 * KVMDBG_FEAT_SW_BREAK: with USE_SW_BP an int3 exits as KVM_EXIT_DEBUG,
 * exception 3, PC at the int3 (the guest did not see it).
 *
 * KVMDBG_FEAT_INJECT_BP: the library re-injects a guest's own int3 that
 * USE_SW_BP intercepted. KVM queues #BP as a *soft* exception, whose
 * delivery pushes RIP + instruction length: VMX takes the length from the
 * last #BP exit (VM_EXIT_INSTRUCTION_LEN), SVM decodes the instruction at
 * RIP, a software KVM does what it does. The architecturally right return
 * address is the byte after the int3, so that is what the guest's handler
 * must see. Tested right after the int3 exit when there is one (the case
 * the library has); otherwise with the vCPU stopped at the int3 by other
 * means (a pause point), which is all INJECT_BP can mean on such a host.
 */
static uint64_t check_bp(struct kvmdbg_probe *p)
{
	struct kvm_regs regs;
	uint64_t sw = 0;

	PTRACE("sw break\n");
	if (begin(p, G(p, bp)) && run_to_pause(p) &&
	    set_debug(p, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP, NULL) && run(p) &&
	    exit_debug(p, X86_VEC_BP, G(p, bp_int3)))
		sw = KVMDBG_FEAT_SW_BREAK;

	PTRACE("inject #BP (%s)\n", sw ? "after the int3 exit" : "at a pause point");
	if (!sw && !(begin(p, G(p, bp)) && run_to_pause(p)))
		return sw;
	if (!set_debug(p, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_INJECT_BP, NULL) || !run(p))
		return sw;
	return sw | (handler_saw(p, PORT_BP, G(p, bp_after), &regs) ? KVMDBG_FEAT_INJECT_BP : 0);
}

/*
 * KVMDBG_FEAT_BLOCK_IRQ: an event is pending at a pause point; one step
 * with SINGLESTEP|BLOCKIRQ must execute the next instruction (exit at the
 * one after it), not enter the handler; then, with debugging off, the
 * handler must run, proving the event really was pending.
 *
 * Two events are tried:
 *  - an external interrupt from KVM_INTERRUPT with IF=1. Without an
 *    in-kernel irqchip mainline KVM marks it *injected* at once (userspace
 *    is expected to have checked ready_for_interrupt_injection), and
 *    BLOCKIRQ only holds back events still pending, so on VMX/SVM this
 *    one goes to the handler even with BLOCKIRQ;
 *  - an NMI from KVM_NMI, which stays pending until KVM injects it, behind
 *    the same BLOCKIRQ check as the interrupts of an in-kernel LAPIC.
 * Either passing proves the flag.
 */
static bool probe_block_irq(struct kvmdbg_probe *p)
{
	struct kvm_interrupt irq = { .irq = PG_IRQ_VECTOR };
	const uint32_t step = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_BLOCKIRQ;
	struct kvm_regs regs;

	if (!(p->caps.debug_flags & KVM_GUESTDBG_BLOCKIRQ))
		return false;

	PTRACE("blockirq: KVM_INTERRUPT\n");
	if (begin(p, G(p, irq)) && run_to_pause(p) &&
	    kvmdbg_ioctl_chk(p->fd, KVM_INTERRUPT, &irq) == 0 && set_debug(p, step, NULL) && run(p) &&
	    exit_debug(p, X86_VEC_DB, G(p, irq_2)) && (p->run->debug.arch.dr6 & DR6_BS) &&
	    set_debug(p, 0, NULL) && run(p) && handler_saw(p, PORT_IRQ, G(p, irq_2), &regs))
		return true;

	PTRACE("blockirq: KVM_NMI\n");
	return begin(p, G(p, nmi)) && run_to_pause(p) && kvmdbg_ioctl(p->fd, KVM_NMI, NULL) == 0 &&
	       set_debug(p, step, NULL) && run(p) && exit_debug(p, X86_VEC_DB, G(p, nmi_2)) &&
	       (p->run->debug.arch.dr6 & DR6_BS) && set_debug(p, 0, NULL) && run(p) &&
	       handler_saw(p, PORT_NMI, G(p, nmi_2), &regs);
}

/* Interrupt gate, DPL0, present, on the micro-VM's 64-bit code selector. */
static void idt_gate(uint8_t *e, uint64_t handler)
{
	const uint16_t sel = 0x08;

	memset(e, 0, 16);
	e[0] = handler & 0xff;
	e[1] = (handler >> 8) & 0xff;
	e[2] = sel & 0xff;
	e[3] = sel >> 8;
	e[5] = 0x8e; /* P, DPL0, 64-bit interrupt gate (clears IF) */
	e[6] = (handler >> 16) & 0xff;
	e[7] = (handler >> 24) & 0xff;
	e[8] = (handler >> 32) & 0xff;
	e[9] = (handler >> 40) & 0xff;
	e[10] = (handler >> 48) & 0xff;
	e[11] = (handler >> 56) & 0xff;
}

static int load_guest(struct kvmdbg_probe *p)
{
	size_t len = (size_t)(kvmdbg_x86_pg_end - kvmdbg_x86_pg_start);
	uint64_t idt = p->code + PROBE_IDT_OFF;
	uint8_t idtr[10];
	int r;

	if (len > PROBE_BLOB_MAX || p->code + PROBE_STACK_OFF > p->vm->mem_size)
		return -EINVAL;
	r = kvmdbg_microvm_load(p->vm, p->code, kvmdbg_x86_pg_start, len);
	if (r < 0)
		return r;

	for (unsigned int v = 0; v < PG_IDT_ENTRIES; v++) {
		uint64_t h = G(p, exc_stubs) + (uint64_t)v * PG_EXC_STUB_SIZE;

		if (v == 1)
			h = G(p, db_handler);
		else if (v == 2)
			h = G(p, nmi_handler);
		else if (v == 3)
			h = G(p, bp_handler);
		else if (v == PG_IRQ_VECTOR)
			h = G(p, irq_handler);
		idt_gate(p->vm->mem + idt + 16 * v, h);
	}
	idtr[0] = (PG_IDT_ENTRIES * 16 - 1) & 0xff;
	idtr[1] = (PG_IDT_ENTRIES * 16 - 1) >> 8;
	for (unsigned int i = 0; i < 8; i++)
		idtr[2 + i] = (idt >> (8 * i)) & 0xff;
	return kvmdbg_microvm_load(p->vm, G(p, idtr), idtr, sizeof(idtr));
}

/* The checks with one feature each. */
static uint64_t check_step(struct kvmdbg_probe *p)
{
	return probe_step(p) ? KVMDBG_FEAT_STEP : 0;
}

static uint64_t check_watch_write(struct kvmdbg_probe *p)
{
	return probe_watch(p, true) ? KVMDBG_FEAT_WATCH_WRITE : 0;
}

static uint64_t check_watch_access(struct kvmdbg_probe *p)
{
	return probe_watch(p, false) ? KVMDBG_FEAT_WATCH_ACCESS : 0;
}

static uint64_t check_gd(struct kvmdbg_probe *p)
{
	return probe_gd(p) ? KVMDBG_FEAT_GD_EXIT : 0;
}

static uint64_t check_guest_live(struct kvmdbg_probe *p)
{
	return probe_guest_live(p) ? KVMDBG_FEAT_GUEST_BP_LIVE : 0;
}

static uint64_t check_inject_db(struct kvmdbg_probe *p)
{
	return probe_inject_db(p) ? KVMDBG_FEAT_INJECT_DB : 0;
}

static uint64_t check_block_irq(struct kvmdbg_probe *p)
{
	return probe_block_irq(p) ? KVMDBG_FEAT_BLOCK_IRQ : 0;
}

static const struct kvmdbg_probe_check checks[] = {
	{ "step", check_step },
	{ "hw_break, rf_resume", check_hw_break },
	{ "watch_write", check_watch_write },
	{ "watch_access", check_watch_access },
	{ "gd_exit", check_gd },
	{ "guest_bp_live", check_guest_live },
	{ "inject_db", check_inject_db },
	{ "sw_break, inject_bp", check_bp },
	{ "block_irq", check_block_irq },
};

const struct kvmdbg_probe_checks kvmdbg_probe_checks =
	KVMDBG_PROBE_CHECKS(PROBE_MEM_SIZE, PROBE_RUN_BUDGET, PROBE_TIMEOUT_NS, load_guest, checks);
