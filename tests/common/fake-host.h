/* SPDX-License-Identifier: MIT */
/*
 * A fake KVM for the hardening tests (model, fault injection, hostile exits),
 * the fuzz targets, the generic core's unit tests (tests/unit/test-unit-core.c)
 * and bench/bench-scale.c: a struct kvmdbg_host_ops for either arch with
 * fake guest memory behind struct kvmdbg_mem_ops, recording what the library
 * asks of "KVM", and a fault injector that can fail any one fallible call (a
 * host op or a memory callback, or the nth call of one of them) with a
 * chosen errno.
 *
 * No Check in here: the fuzz targets link it too. The host ops and memory
 * callbacks work on the struct fh_state passed as their ctx (the host ctx
 * of kvmdbg_vm_new_host(), the mem_ctx of the VM options), so there can be
 * any number of fakes; the fh_* functions without a state argument work on
 * the default one, fh, which the tests use. vCPU fds are indices
 * 0..FH_MAX_VCPUS-1.
 */
#ifndef KVMDBG_TEST_FAKE_HOST_H
#define KVMDBG_TEST_FAKE_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "kvmdbg-int.h"

#define FH_MAX_VCPUS 4
#define FH_MEM_SIZE 0x800   /* guest memory after fh_reset() */
#define FH_MEM_MAX  0x10000 /* ... and at the most, with fh_mem_resize() */

/* Fallible call sites of the fake, for fault injection. */
enum fh_site {
	FH_PROBE,
	FH_SET_GUEST_DEBUG,
	FH_READ_EXIT,
	FH_GET_PC,
	FH_SET_RF,
	FH_MASK_IRQS,
	FH_RESTORE_IRQS,
	FH_INJECT,
	FH_READ_GUEST_REGS,
	FH_ADVANCE_PC,
	FH_MEM_READ,
	FH_MEM_WRITE,
	FH_NR_SITES,
};

struct fh_vcpu {
	/* What KVM holds for this vCPU. */
	uint32_t ctl;
	struct kvmdbg_hwstate hw;
	unsigned int set_calls;
	/* Registers. */
	uint64_t pc;
	bool rf;              /* x86 RFLAGS.RF set by the library */
	uint64_t daif;        /* arm64 PSTATE.DAIF */
	unsigned int masked;  /* mask_irqs calls not yet restored */
	/* Successful calls of this vCPU, since fh_reset(). */
	unsigned int rf_calls, mask_calls, restore_calls, guest_reads, advance_calls;
	uint64_t mask_pc;     /* the PC the last mask_irqs was given */
	bool mask_insn_known; /* ... and whether it was given the instruction */
	uint32_t mask_insn;   /* ... which was this */
	/* arm64: the KVM ioctls lib/arch/arm64/kvm.c makes for the successful
	 * set_guest_debug, read_exit, get_pc, mask_irqs and restore_irqs of
	 * this vCPU (the ops of a stop and its step-over), since fh_reset(). */
	unsigned int arm64_ioctls;
	/* The exit the next read_exit returns. */
	struct kvmdbg_exit exit;
	/* Exits read_exit left without their PC (arm64, the library's own
	 * step): the event's PC is 0 then, and it must be KVMDBG_STOP_NONE. */
	unsigned int pc_unread_exits;
	unsigned int inject_calls;
	struct kvmdbg_reinject injected;
	/* arm64, for guest_step_armed: the guest's EL (0 or 1), ELR_EL1 and
	 * SPSR_EL1, and the successful calls of it. */
	unsigned int el;
	uint64_t elr_el1, spsr_el1;
	unsigned int step_armed_calls;
};

struct fh_state {
	enum kvmdbg_arch arch;
	struct kvmdbg_caps caps;
	bool no_rf_op;        /* x86: no set_resume_flag op */
	bool icebp_on_insn;   /* x86: ICEBP exits with the PC on it (VMX), not after (SVM) */
	/* The guest's own debug registers (overlay), what read_guest_regs gives. */
	struct kvmdbg_guest_regs guest;
	unsigned int guest_reads;
	struct fh_vcpu v[FH_MAX_VCPUS];
	/* Guest memory: mem_size bytes at mem, their original bytes at orig
	 * (mem_buf and orig_buf). */
	uint8_t *mem, *orig;
	size_t mem_size;
	uint8_t mem_buf[FH_MEM_MAX], orig_buf[FH_MEM_MAX];
	/* Fault injection: the fail_at-th fallible call (1-based, counted from
	 * the last fh_fault_arm()) returns -fail_errno; after
	 * fh_fault_arm_site(), the fail_at-th call of fail_site. */
	unsigned long calls;
	unsigned long fail_at;
	int fail_errno;
	bool fail_one_site;
	enum fh_site fail_site;
	unsigned long fail_site_calls;
	bool fail_partial;    /* a failing memory write writes its first byte */
	int failed_site;      /* enum fh_site of the injected failure, -1 none */
	unsigned long site_calls[FH_NR_SITES];
};

/* The default fake, what the fh_* functions without a state argument use. */
extern struct fh_state fh;
/* Guest memory callbacks: their ctx (mem_ctx) is the struct fh_state. */
extern const struct kvmdbg_mem_ops fh_mem_ops;
extern const char *const fh_site_names[FH_NR_SITES];

/* Reset everything: arch caps as a typical host, FH_MEM_SIZE bytes of memory
 * in a fixed pattern (which contains some 0xcc bytes, like real code), no
 * faults armed. */
void fh_state_reset(struct fh_state *s, enum kvmdbg_arch arch);
void fh_reset(enum kvmdbg_arch arch);
/* After fh_reset(): size bytes of memory (<= FH_MEM_MAX), the same pattern. */
void fh_state_mem_resize(struct fh_state *s, size_t size);
void fh_mem_resize(size_t size);
/* The fake host ops of s->arch (their ctx is s). */
const struct kvmdbg_host_ops *fh_state_host(const struct fh_state *s);
const struct kvmdbg_host_ops *fh_host(void);
/* Fail the nth next fallible call (1 = the next) with -err; 0 disarms. */
void fh_fault_arm(unsigned long nth, int err);
/* The same, counting only the calls of one site. */
void fh_fault_arm_site(enum fh_site site, unsigned long nth, int err);
/* Guest memory equals its original bytes. */
bool fh_mem_is_orig(void);
/* Whether an exit is a breakpoint instruction (x86 #BP, arm64 BRK/BKPT) at
 * an address the fake memory cannot read: the library must then fail with
 * the memory callback's error rather than guess whose instruction it was. */
bool fh_swbp_unreadable(const struct kvmdbg_exit *ex, bool x86);

#endif
