/* SPDX-License-Identifier: MIT */
/*
 * Everything an arch backend provides, in one place (as the KVM selftests'
 * per-arch lib/<arch>/processor.c implement the hooks their generic code
 * declares). Generic code includes this and never an arch file.
 *
 *  1. struct kvmdbg_arch_ops (arch/arch.h, included here): portable logic
 *     (encoding, range cover, exit decoding), built and unit-tested on
 *     every host for both arches: kvmdbg_x86_ops, kvmdbg_arm64_ops
 *     (lib/arch/<arch>/encode.c).
 *  2. struct kvmdbg_host_ops: the ioctl glue of the host arch
 *     (lib/arch/<arch>/kvm.c: kvmdbg_host), or a fake KVM in tests. Every
 *     op gets the ctx the VM was created with (NULL for the real glue).
 *  3. The micro-VM hooks (lib/arch/<arch>/microvm.c) that the generic
 *     lib/microvm.c calls.
 *  4. The verified probe's checks (lib/arch/<arch>/probe.c): a table the
 *     generic runner in lib/probe.c drives, with the runner's helpers.
 *
 * Register constants (DR6/DR7, ESR/EC, system register ids) live in
 * lib/arch/<arch>/regs.h, included by the arch files that need them.
 */
#ifndef KVMDBG_ARCH_BACKEND_H
#define KVMDBG_ARCH_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "arch/arch.h"
#include "kvmdbg/kvmdbg.h"

struct kvm_run;
struct kvmdbg_microvm;

/* ---- 2. host ops ---- */

/* Arch-neutral KVM_SET_GUEST_DEBUG control bits; the host glue maps them. */
#define KVMDBG_CTL_ENABLE    (1u << 0)
#define KVMDBG_CTL_STEP      (1u << 1)
#define KVMDBG_CTL_SW_BP     (1u << 2)
#define KVMDBG_CTL_HW        (1u << 3)
#define KVMDBG_CTL_BLOCKIRQ  (1u << 4)
#define KVMDBG_CTL_INJECT_DB (1u << 5)
#define KVMDBG_CTL_INJECT_BP (1u << 6)
#define KVMDBG_CTL_GD        (1u << 7) /* x86: DR7.GD in the host's DR7 (overlay) */

/* struct kvmdbg_reinject, a guest-owned debug exception waiting to be
 * delivered back to the guest, is in arch/arch.h: the arch's
 * guest_exception fills it, inject() below delivers it. */

struct kvmdbg_probe_checks;

/*
 * The ioctl glue of one host arch (lib/arch/<arch>/kvm.c), or a fake KVM in
 * tests. Every op gets ctx, the context the VM was created with
 * (kvmdbg_vm_new_host(); NULL for the real glue, which keeps no state), and
 * returns 0 or a negative errno, leaving the vCPU as it was on failure.
 */
struct kvmdbg_host_ops {
	const struct kvmdbg_arch_ops *arch;
	/* Fill every field of caps (caps->sz is the library's own size). */
	int (*probe)(void *ctx, int fd, struct kvmdbg_caps *caps);
	int (*probe_guest)(void *ctx, int vcpu_fd, struct kvmdbg_guest_caps *caps);
	/* The verified probe's checks for lib/probe.c. NULL: no verified probe. */
	const struct kvmdbg_probe_checks *verified;
	/* KVM_SET_GUEST_DEBUG with KVMDBG_CTL_* bits and the hardware state.
	 * on is kvmdbg_hw_on(hw), which the caller often knows without a look
	 * at every slot: the glue reads those slots alone (arm64 has 32;
	 * issue 17: a loop over all of them twice per two-exit hit). */
	int (*set_guest_debug)(void *ctx, int vcpu_fd, uint32_t ctl,
			       const struct kvmdbg_hwstate *hw, uint32_t on);
	/* Read the KVM_EXIT_DEBUG in run into exit (arm64 also reads the PC),
	 * every field of it when it returns 0 (zero what the arch does not
	 * report). step_pc false: the PC of a single-step exit will not be
	 * looked at (the step-over's own step, never reported), so an arch
	 * that must ask KVM for it (arm64) may leave it unread: exit->pc 0
	 * and exit->pc_unread set. */
	int (*read_exit)(void *ctx, int vcpu_fd, const struct kvm_run *run, bool step_pc,
			 struct kvmdbg_exit *exit);
	/* The vCPU's PC (x86: linear RIP). */
	int (*get_pc)(void *ctx, int vcpu_fd, uint64_t *pc);
	/* x86: set RFLAGS.RF so the next instruction ignores execution
	 * breakpoints. NULL where the arch has no such flag. */
	int (*set_resume_flag)(void *ctx, int vcpu_fd);
	/* Mask interrupts for one step (the library's or the user's) and
	 * restore them exactly (arm64 PSTATE.DAIF). pc is the vCPU's PC now,
	 * which the caller knows; insn(arg, pc, &word) reads the instruction
	 * there that the step runs (the guest's, under a software breakpoint
	 * of ours; false if it cannot be read), called only where the mask
	 * changes anything (not when the guest has them all masked already:
	 * it takes the VM lock). NULL where KVMDBG_CTL_BLOCKIRQ does it. */
	int (*mask_irqs)(void *ctx, int vcpu_fd, uint64_t pc,
			 bool (*insn)(void *arg, uint64_t pc, uint32_t *word), void *arg,
			 uint64_t *saved);
	int (*restore_irqs)(void *ctx, int vcpu_fd, uint64_t saved);
	/* Deliver r to the guest before the next KVM_RUN; may return extra
	 * one-shot control bits in *ctl (x86: KVMDBG_CTL_INJECT_DB/BP after
	 * writing the guest's DR6; arm64 emulates the exception entry and
	 * returns none). */
	int (*inject)(void *ctx, int vcpu_fd, const struct kvmdbg_reinject *r, uint32_t *ctl);
	/* inject() emulates the exception entry itself (arm64: register
	 * writes, no ctl bits): prepare calls it after KVM_SET_GUEST_DEBUG
	 * succeeded, so a failure of that leaves the guest untouched. */
	bool inject_emulated;
	/* x86: read_exit only copies kvm_run's debug.arch (no ioctl, ctx and
	 * vcpu_fd unused): on an x86 host handle_exit does it inline, with
	 * x86's decoder (kvmdbg_x86_exit_from_run). */
	bool exit_in_run;
	/* Overlay: the guest's own debug registers (x86 KVM_GET_DEBUGREGS, arm64
	 * ONE_REG), which KVM keeps while the host's set runs. NULL: no overlay. */
	int (*read_guest_regs)(void *ctx, int vcpu_fd, struct kvmdbg_guest_regs *g);
	/* Overlay: whether the guest, in its state now (at a debug exit), masks
	 * the breakpoint/watchpoint exceptions of its own registers g (arm64:
	 * at EL1 with PSTATE.D set or MDSCR_EL1.KDE clear), so that one of its
	 * slots firing in hardware must not reach it. NULL: never masked. */
	int (*guest_masked)(void *ctx, int vcpu_fd, const struct kvmdbg_guest_regs *g,
			    bool *masked);
	/* Overlay: whether the guest, at a debug exit with its PC at pc, has
	 * armed a software step of its own that it expects to take at the
	 * instruction there and that KVM does not run while the host debugs
	 * the vCPU (arm64: MDSCR_EL1.SS in g, the step enabled at the guest's
	 * EL, and the vCPU at ELR_EL1 in the mode of SPSR_EL1: where the
	 * guest's ERET took it; see lib/arch/arm64/kvm.c).
	 * The library then steps that instruction itself and gives the guest
	 * its step exception. NULL: the guest's own steps run natively. */
	int (*guest_step_armed)(void *ctx, int vcpu_fd, const struct kvmdbg_guest_regs *g,
				uint64_t pc, bool *armed);
	/* x86: whether this host's KVM reports a guest ICEBP's #DB with the PC
	 * still on the ICEBP (VMX: the exit comes before the instruction
	 * completes) rather than after it (SVM). NULL: after it. */
	bool (*icebp_exit_on_insn)(void *ctx);
	/* Move the vCPU's PC forward by len bytes (x86: RIP), for an exception
	 * KVM reported before the instruction that raised it as a trap
	 * completed. NULL where never needed. */
	int (*advance_pc)(void *ctx, int vcpu_fd, unsigned int len);
};

/* The glue of the arch this library was built for. */
extern const struct kvmdbg_host_ops kvmdbg_host;
/* Its set_guest_debug and read_exit by name (kvmdbg_set_guest_debug and
 * kvmdbg_read_exit below). Hidden here, not only where defined: the
 * comparisons take their addresses PC-relative, not from the GOT (another
 * data page an exit in a position-independent build). */
__attribute__((visibility("hidden"))) int
kvmdbg_host_set_guest_debug(void *ctx, int vcpu_fd, uint32_t ctl, const struct kvmdbg_hwstate *hw,
			    uint32_t on);
/* Its twin in the software breakpoint's step-over region. */
__attribute__((visibility("hidden"))) int
kvmdbg_host_set_guest_debug_sw(void *ctx, int vcpu_fd, uint32_t ctl,
			       const struct kvmdbg_hwstate *hw, uint32_t on);
/* Both, in the glue, from its inline body(ctx, vcpu_fd, ctl, hw, on). */
#define KVMDBG_HOST_SET_GUEST_DEBUG(body)                                                         \
	KVMDBG_STEP int kvmdbg_host_set_guest_debug(void *ctx, int vcpu_fd, uint32_t ctl,         \
						    const struct kvmdbg_hwstate *hw, uint32_t on) \
	{                                                                                         \
		return body(ctx, vcpu_fd, ctl, hw, on);                                           \
	}                                                                                         \
	KVMDBG_STEP_SW int kvmdbg_host_set_guest_debug_sw(void *ctx, int vcpu_fd, uint32_t ctl,   \
							  const struct kvmdbg_hwstate *hw,        \
							  uint32_t on)                            \
	{                                                                                         \
		return body(ctx, vcpu_fd, ctl, hw, on);                                           \
	}
__attribute__((visibility("hidden"))) int kvmdbg_host_read_exit(void *ctx, int vcpu_fd,
								const struct kvm_run *run,
								bool step_pc,
								struct kvmdbg_exit *exit);

/* For the glue (lib/caps.c): KVM_CHECK_EXTENSION on fd (the count, 0, or a
 * negative errno), and the caps every arch fills alike -- everything past
 * c->sz zeroed, then arch, guest_debug (KVM_CAP_SET_GUEST_DEBUG) and, where
 * the host debugs guests at all, debug_flags (KVM_CAP_SET_GUEST_DEBUG2, else
 * default_flags), single_step and sw_breakpoints. Returns 1 when the host
 * debugs guests, 0 when it does not, or a negative errno. */
int kvmdbg_check_ext(int fd, long cap);
int kvmdbg_probe_debug_caps(int fd, enum kvmdbg_arch arch, uint64_t default_flags,
			    struct kvmdbg_caps *c);

/* ---- 3. micro-VM hooks (lib/arch/<arch>/microvm.c) ---- */

/*
 * For the generic lib/microvm.c, which creates the VM, its memory slot and
 * vCPUs:
 *  - check: whether mem_size suits the arch's layout (0 or -EINVAL);
 *  - layout: write the arch's fixed structures (x86 GDT, TSS, page tables;
 *    arm64 a fail vector table) into fresh memory and return code_gpa;
 *  - vcpu_init: make a new vCPU runnable (x86 CPUID with its own APIC ID;
 *    arm64 KVM_ARM_VCPU_INIT), before its first KVM_RUN.
 * kvmdbg_microvm_start() (lib/microvm.h) is the fourth hook.
 */
int kvmdbg_microvm_arch_check(uint64_t mem_size);
uint64_t kvmdbg_microvm_arch_layout(uint8_t *mem, uint64_t mem_size);
int kvmdbg_microvm_arch_vcpu_init(struct kvmdbg_microvm *m, unsigned int idx);

/* ---- 4. the verified probe (lib/probe.c runs lib/arch/<arch>/probe.c) ---- */

/*
 * The state of one kvmdbg_probe_verified(): a micro-VM with one vCPU and
 * the arch's guest blob, a wall-clock deadline for the whole probe and a
 * budget of KVM_RUNs per started check.
 */
struct kvmdbg_probe {
	const struct kvmdbg_probe_checks *checks;
	struct kvmdbg_microvm *vm;
	int fd;                   /* vCPU 0 */
	struct kvm_run *run;      /* its kvm_run */
	struct kvmdbg_caps caps;  /* kvmdbg_host.probe() on the micro-VM's fd */
	uint64_t code;            /* guest address of the arch's blob */
	unsigned int budget;      /* KVM_RUNs left since the last kvmdbg_probe_start() */
	struct timespec deadline; /* CLOCK_MONOTONIC */
	bool timed_out;           /* the deadline passed: the probe fails */
};

/* One check: the KVMDBG_FEAT_* bits it proves. Not proven is 0, never an
 * error: a check that cannot run (refused flag, budget, unexpected exit,
 * failed ioctl) proves nothing. */
struct kvmdbg_probe_check {
	const char *name;
	uint64_t (*run)(struct kvmdbg_probe *p);
};

/* What an arch's verified probe is made of. */
struct kvmdbg_probe_checks {
	uint64_t mem_size;       /* of the micro-VM */
	unsigned int run_budget; /* KVM_RUNs allowed after each kvmdbg_probe_start() */
	long long timeout_ns;    /* of the whole probe */
	/* Load the guest blob at p->code (and whatever the arch's checks need
	 * beside it). 0 or a negative errno, which fails the probe. */
	int (*load)(struct kvmdbg_probe *p);
	const struct kvmdbg_probe_check *check;
	unsigned int nr_checks;
};

/* The initializer of an arch's table: mem_size, run_budget, timeout_ns, the
 * load hook and the array of checks. */
#define KVMDBG_PROBE_CHECKS(mem, runs, timeout, load_fn, checks)                  \
	{                                                                         \
		.mem_size = (mem), .run_budget = (runs), .timeout_ns = (timeout), \
		.load = (load_fn), .check = (checks),                             \
		.nr_checks = sizeof(checks) / sizeof((checks)[0]),                \
	}

/* The host arch's checks (lib/arch/<arch>/probe.c), kvmdbg_host.verified. */
extern const struct kvmdbg_probe_checks kvmdbg_probe_checks;

/* The generic runner behind kvmdbg_probe_verified(): 0 with *features, or a
 * negative errno (-ETIMEDOUT past the deadline; the micro-VM's setup). */
int kvmdbg_probe_run_checks(const struct kvmdbg_host_ops *host, int kvm_fd, uint64_t *features);
/* Reset vCPU 0 to the arch's clean state at pc with stack pointer sp and
 * give it a fresh budget. False when that fails. */
bool kvmdbg_probe_start(struct kvmdbg_probe *p, uint64_t pc, uint64_t sp);
/* One KVM_RUN (signals of the caller's retried within the deadline). False
 * when it could not run: budget spent, deadline passed, KVM_RUN failed. */
bool kvmdbg_probe_run(struct kvmdbg_probe *p);

/*
 * Decode an exit with decode (a VM's arch ops .decode), where handle_exit
 * does not read and decode it inline (kvmdbg_exit_inline below: x86's own
 * glue always does). On an arm64 host the step inline (issue 17: under
 * nested TCG a call through a pointer and its return each cost a lookup of
 * the next translated block after every exit), the rest through the
 * pointer.
 */
#if defined(__x86_64__)
#include "arch/x86/decode.h"
#elif defined(__aarch64__)
#include "arch/arm64/decode.h"
#endif
static inline __attribute__((always_inline)) void
kvmdbg_decode_exit(void (*decode)(const struct kvmdbg_hwstate *, uint32_t,
				  const struct kvmdbg_exit *, struct kvmdbg_decoded *),
		   const struct kvmdbg_hwstate *applied, uint32_t on, const struct kvmdbg_exit *exit,
		   struct kvmdbg_decoded *out)
{
#if defined(__aarch64__)
	/* arm64: the step inline, the rest (hits to match) by a direct call
	 * (the decoder is in the hot page). */
	if (decode == kvmdbg_arm64_decode) {
		if (kvmdbg_arm64_esr_step(exit->esr))
			kvmdbg_arm64_decode_step(exit->esr, out);
		else
			kvmdbg_arm64_decode(applied, on, exit, out);
		return;
	}
#endif
	decode(applied, on, exit, out);
}

/*
 * The host ops the exit paths call, each called directly where it is the
 * host glue's own, through the pointer otherwise (the tests' fakes), as
 * kvmdbg_decode_exit does the decoder: under nested TCG an indirect call
 * is a lookup of the next translated block, a direct one within a page is
 * not (issue 17). mask_irqs and restore_irqs (the step-overs' and the
 * user's step's interrupt mask) are arm64's alone: x86 KVM blocks them
 * itself (KVM_GUESTDBG_BLOCKIRQ).
 */
static inline __attribute__((always_inline)) int
kvmdbg_set_guest_debug(int (*set)(void *, int, uint32_t, const struct kvmdbg_hwstate *, uint32_t),
		       void *ctx, int vcpu_fd, uint32_t ctl, const struct kvmdbg_hwstate *hw,
		       uint32_t on)
{
	if (set == kvmdbg_host_set_guest_debug)
		return kvmdbg_host_set_guest_debug(ctx, vcpu_fd, ctl, hw, on);
	return set(ctx, vcpu_fd, ctl, hw, on);
}

/* The same from the software breakpoint's step-over (its region,
 * KVMDBG_STEP_SW): the glue's twin there, so that the hit's resume runs in
 * the hot page and that one (sw a constant at each call). */
static inline __attribute__((always_inline)) int
kvmdbg_set_guest_debug_in(bool sw,
			  int (*set)(void *, int, uint32_t, const struct kvmdbg_hwstate *, uint32_t),
			  void *ctx, int vcpu_fd, uint32_t ctl, const struct kvmdbg_hwstate *hw,
			  uint32_t on)
{
	if (sw && set == kvmdbg_host_set_guest_debug)
		return kvmdbg_host_set_guest_debug_sw(ctx, vcpu_fd, ctl, hw, on);
	return kvmdbg_set_guest_debug(set, ctx, vcpu_fd, ctl, hw, on);
}

static inline __attribute__((always_inline)) int
kvmdbg_read_exit(int (*read)(void *, int, const struct kvm_run *, bool, struct kvmdbg_exit *),
		 void *ctx, int vcpu_fd, const struct kvm_run *run, bool step_pc,
		 struct kvmdbg_exit *exit)
{
	if (read == kvmdbg_host_read_exit)
		return kvmdbg_host_read_exit(ctx, vcpu_fd, run, step_pc, exit);
	return read(ctx, vcpu_fd, run, step_pc, exit);
}

#if defined(__aarch64__)
__attribute__((visibility("hidden"))) int
kvmdbg_arm64_mask_irqs(void *ctx, int vcpu_fd, uint64_t pc,
		       bool (*insn)(void *arg, uint64_t pc, uint32_t *word), void *arg,
		       uint64_t *saved);
__attribute__((visibility("hidden"))) int
kvmdbg_arm64_mask_irqs_sw(void *ctx, int vcpu_fd, uint64_t pc,
			  bool (*insn)(void *arg, uint64_t pc, uint32_t *word), void *arg,
			  uint64_t *saved);
__attribute__((visibility("hidden"))) int kvmdbg_arm64_restore_irqs(void *ctx, int vcpu_fd,
								    uint64_t saved);
#endif
static inline __attribute__((always_inline)) int
kvmdbg_mask_irqs(int (*mask)(void *, int, uint64_t, bool (*)(void *, uint64_t, uint32_t *), void *,
			     uint64_t *),
		 void *ctx, int vcpu_fd, uint64_t pc,
		 bool (*insn)(void *arg, uint64_t pc, uint32_t *word), void *arg, uint64_t *saved)
{
#if defined(__aarch64__)
	if (mask == kvmdbg_arm64_mask_irqs)
		return kvmdbg_arm64_mask_irqs(ctx, vcpu_fd, pc, insn, arg, saved);
#endif
	return mask(ctx, vcpu_fd, pc, insn, arg, saved);
}

/* The same, the twin from the software breakpoint's step-over (as
 * kvmdbg_set_guest_debug_in). */
static inline __attribute__((always_inline)) int
kvmdbg_mask_irqs_in(bool sw,
		    int (*mask)(void *, int, uint64_t, bool (*)(void *, uint64_t, uint32_t *),
				void *, uint64_t *),
		    void *ctx, int vcpu_fd, uint64_t pc,
		    bool (*insn)(void *arg, uint64_t pc, uint32_t *word), void *arg,
		    uint64_t *saved)
{
	(void)sw; /* arm64's alone */
#if defined(__aarch64__)
	if (sw && mask == kvmdbg_arm64_mask_irqs)
		return kvmdbg_arm64_mask_irqs_sw(ctx, vcpu_fd, pc, insn, arg, saved);
#endif
	return kvmdbg_mask_irqs(mask, ctx, vcpu_fd, pc, insn, arg, saved);
}

static inline __attribute__((always_inline)) int
kvmdbg_restore_irqs(int (*restore)(void *, int, uint64_t), void *ctx, int vcpu_fd, uint64_t saved)
{
#if defined(__aarch64__)
	if (restore == kvmdbg_arm64_restore_irqs)
		return kvmdbg_arm64_restore_irqs(ctx, vcpu_fd, saved);
#endif
	return restore(ctx, vcpu_fd, saved);
}

/*
 * The exit read and decoded inline by handle_exit (lib/classify.c,
 * exit_read), after one test of the VM's exit_inline, kvmdbg_exit_inline(host):
 * on an x86 host whose glue says the exit is all in kvm_run (exception, PC,
 * DR6, DR7: the host ops' read_exit only copies it) and whose decoder is
 * x86's own. KVMDBG_EXIT_INLINE is 0 elsewhere, where the two helpers below
 * are never reached.
 */
#if defined(__x86_64__)
#include <string.h>
#include <linux/kvm.h>

#define KVMDBG_EXIT_INLINE 1

static inline __attribute__((always_inline)) void
kvmdbg_x86_exit_from_run(const struct kvm_run *run, struct kvmdbg_exit *ex)
{
	*ex = (struct kvmdbg_exit){
		.exception = run->debug.arch.exception,
		.pc = run->debug.arch.pc,
		.dr6 = run->debug.arch.dr6,
		.dr7 = run->debug.arch.dr7,
	};
}
#else
#define KVMDBG_EXIT_INLINE 0
#endif

struct kvm_run;

static inline bool kvmdbg_exit_inline(const struct kvmdbg_host_ops *host)
{
#if KVMDBG_EXIT_INLINE
	return host->exit_in_run && host->arch->decode == kvmdbg_x86_decode;
#else
	(void)host;
	return false;
#endif
}

static inline __attribute__((always_inline)) void
kvmdbg_exit_read_inline(const struct kvm_run *run, struct kvmdbg_exit *ex)
{
#if KVMDBG_EXIT_INLINE
	kvmdbg_x86_exit_from_run(run, ex);
#else
	(void)run;
	(void)ex;
	__builtin_unreachable();
#endif
}

static inline __attribute__((always_inline)) void
kvmdbg_exit_decode_inline(uint32_t on, const struct kvmdbg_exit *ex, struct kvmdbg_decoded *dec)
{
#if KVMDBG_EXIT_INLINE
	kvmdbg_x86_decode_inline(on, ex, dec);
#else
	(void)on;
	(void)ex;
	(void)dec;
	__builtin_unreachable();
#endif
}

#endif /* KVMDBG_ARCH_BACKEND_H */
