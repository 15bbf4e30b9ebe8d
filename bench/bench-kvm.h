/* SPDX-License-Identifier: MIT */
/*
 * bench-kvm's arch hooks: what a hand-written VMM debugger does by itself on
 * each host (the "raw" side), implemented once per arch in
 * bench/bench-kvm-<arch>.c with the guest in bench/bench-guest[-arm64].S.
 * bench-kvm.c is the arch-neutral part: the micro-VMs, the library side, the
 * alternation and the rows.
 *
 * The raw side does what a debugger has to do per stop and no more: report
 * the stop with its PC (x86: in kvm_run; arm64: KVM_GET_ONE_REG), and to
 * resume past a breakpoint or watchpoint do the dance the library does on
 * that host (x86: RFLAGS.RF where the probe proved it, else disarm, step,
 * re-arm; arm64: always disarm / lift, step with interrupts masked, re-arm).
 */
#ifndef KVMDBG_BENCH_KVM_H
#define KVMDBG_BENCH_KVM_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "microvm.h"

struct kvmdbg_vm;
struct kvmdbg_vcpu;

/* One micro-VM and, on the library side, its kvmdbg objects. */
struct side {
	struct kvmdbg_microvm m;
	struct kvmdbg_vm *dbg; /* NULL on the raw side */
	struct kvmdbg_vcpu *v[2];
	unsigned int nr;
};

/* The guest blob (bench/bench-guest*.S): the same labels on every arch. */
extern const char bg_start[], bg_end[], bg_spin[], bg_bp[], bg_bp_target[], bg_watch[],
	bg_watch_var[];

/* The struct kvm_guest_debug states of the raw side. */
enum raw_state {
	RAW_STEP,    /* single-step, nothing armed */
	RAW_HW,      /* a hardware breakpoint at addr */
	RAW_SW,      /* software breakpoints on */
	RAW_SW_STEP, /* software breakpoints on, single-step */
	RAW_WATCH,   /* a write watchpoint on the 8 bytes at addr */
};

/* What the raw side expects of an exit of vCPU 0. */
enum raw_exit {
	EXIT_STEP_REPORT, /* a user's single-step: reported, with its PC */
	EXIT_STEP_INNER,  /* the step of a step-over: not reported */
	EXIT_HW,          /* the hardware breakpoint at target, reported */
	EXIT_SW,          /* the software breakpoint at target, reported */
	EXIT_WATCH,       /* the write watchpoint on target, reported */
};

/* "x86-64", "arm64". */
extern const char bench_arch_name[];
/* A resume flag exists (x86 RFLAGS.RF; the library uses it where the
 * probe proved it: KVMDBG_FEAT_RF_RESUME). */
extern const bool bench_arch_has_rf;
/* Watchpoints stop before the access (arm64): a step-over resumes them. */
extern const bool bench_arch_watch_faults;
/* A breakpoint's length (gdb's kind: x86 1, arm64 4), and the software
 * breakpoint instruction the library writes, hand-written. */
extern const unsigned int bench_arch_bp_len;
extern const uint8_t bench_arch_sw_insn[];

/* Fill *d for st (block_irq: the host has KVM_GUESTDBG_BLOCKIRQ). */
void bench_arch_state(struct kvm_guest_debug *d, enum raw_state st, uint64_t addr,
		      bool block_irq);
/* Check the last exit of vCPU 0 of s (dies if it is not what), reading
 * what a debugger needs to report it. */
void bench_arch_expect(const struct side *s, enum raw_exit what, uint64_t target);
/* Resume from a breakpoint stop by the resume flag (only where
 * bench_arch_has_rf). */
void bench_arch_resume_flag(const struct side *s);
/* Around the step of a step-over: mask the guest's interrupts where
 * KVM cannot (arm64 PSTATE.AIF; x86 has BLOCKIRQ in the state) and give
 * them back. *saved carries what begin found to end. */
void bench_arch_step_irqs_begin(const struct side *s, uint64_t *saved);
void bench_arch_step_irqs_end(const struct side *s, uint64_t saved);
/* Run a loop of exactly 3 instructions (add, decrement, branch) iters
 * times: the instructions' reference. */
void bench_arch_spin(unsigned long iters);
/* Describe a struct kvm_guest_debug in one line (for a failed check). */
const char *bench_arch_describe(const struct kvm_guest_debug *d);

/* ioctl(2) for the raw side's ioctls besides KVM_RUN and
 * KVM_SET_GUEST_DEBUG, so that they are counted. */
int bench_ioctl(int fd, unsigned long req, void *arg);

void bench_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/*
 * The measured loops of both sides and what they call, in one text region
 * ahead of the library's (.text.hot.* input sections go together, in link
 * order: bench-kvm's objects before the library's). Where each side's code
 * lies then no longer moves with the library's size: in a nested-TCG bed
 * which pages a loop touches, and which of them share a slot of QEMU's TLB,
 * changed a ratio by a few thousandths between two builds of the library
 * whose own code and pages were the same (issue 17).
 */
#define BENCH_LOOP __attribute__((section(".text.hot.bench")))

#endif
