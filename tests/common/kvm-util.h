/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the `kvm` suite: a test VM (micro-VM + debug session with
 * identity memory callbacks + one kvmdbg_vcpu per vCPU), a bounded run loop
 * that turns guest `out`s and debug exits into stops, and guest symbol
 * addresses. Included by tests/guest/x86-guests.S for the port numbers.
 */
#ifndef KVMDBG_TEST_KVM_UTIL_H
#define KVMDBG_TEST_KVM_UTIL_H

/* I/O ports the guests write to (`out %eax`). */
#define KT_PORT_DONE 0xe0 /* the program finished */
#define KT_PORT_MARK 0xe1 /* a marker: %eax is its value */
#define KT_PORT_FAIL 0xe2 /* an unexpected exception: %eax is the vector */

#define KT_IDT_VECTORS 48   /* vectors kt_idt_init fills */
#define KT_IRQ_VECTOR  0x20 /* external interrupt the guests handle */
#define KT_DB_MAX      8    /* #DB records kt_db_handler keeps */
#define KT_MP_ITERS    3    /* iterations of g_mp over g_mp_bp */

/* g_acc: access kinds of g_acc_tab entries, and its bounds. */
#define KT_ACC_W1   1
#define KT_ACC_W2   2
#define KT_ACC_W4   3
#define KT_ACC_W8   4
#define KT_ACC_R1   5
#define KT_ACC_R2   6
#define KT_ACC_R4   7
#define KT_ACC_R8   8
#define KT_ACC_MAX  1024 /* entries of g_acc_tab (plus the end marker) */
#define KT_ACC_BIAS 64   /* offset 0 of an entry is g_wbuf - KT_ACC_BIAS */

#ifndef __ASSEMBLER__

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvmdbg/kvmdbg.h"
#include "microvm.h"

/* ---- the guest blob (tests/guest/x86-guests.S) ---- */

/* clang-format off */
#define KT_GUEST_SYMS(X) \
	X(kt_guest_start) \
	X(kt_guest_end) \
	X(kt_fail_vec) \
	X(kt_fail_frame) \
	X(kt_irq_handler) \
	X(kt_irq_handler_end) \
	X(kt_irq_count) \
	X(kt_irq_rip) \
	X(kt_db_handler) \
	X(kt_db_handler_end) \
	X(kt_db_count) \
	X(kt_db_dr6) \
	X(kt_db_rip) \
	X(kt_bp_count) \
	X(kt_bp_rip) \
	X(g_bp4) \
	X(g_bp4_l0) \
	X(g_bp4_l1) \
	X(g_bp4_l2) \
	X(g_bp4_l3) \
	X(g_bp4_l4) \
	X(g_bp4_result) \
	X(g_loop) \
	X(g_loop_bp) \
	X(g_loop_bp_end) \
	X(g_loop_dec_end) \
	X(g_loop_out) \
	X(g_loop_out_end) \
	X(g_loop_n) \
	X(g_loop_count) \
	X(g_loop_mark) \
	X(g_step) \
	X(g_step_out) \
	X(g_step_0) \
	X(g_step_1) \
	X(g_step_2) \
	X(g_step_3) \
	X(g_step_4) \
	X(g_step_5) \
	X(g_step_6) \
	X(g_step_7) \
	X(g_step_8) \
	X(g_step_9) \
	X(g_step_end) \
	X(g_step_sti) \
	X(g_step_irqs) \
	X(g_guestdb) \
	X(g_guestdb_gbp) \
	X(g_guestdb_tf) \
	X(g_guestdb_after_tf) \
	X(g_guestdb_hostbp) \
	X(g_guestdb_passed) \
	X(g_int3) \
	X(g_int3_insn) \
	X(g_int3_after) \
	X(g_icebp) \
	X(g_icebp_insn) \
	X(g_icebp_after) \
	X(g_icebp_hostbp) \
	X(g_int3_hostbp) \
	X(g_mp) \
	X(g_mp_bp) \
	X(g_mp_count) \
	X(g_watch) \
	X(g_watch_w8_end) \
	X(g_watch_r8_end) \
	X(g_watch_w1_end) \
	X(g_watch_other_end) \
	X(g_watch_var) \
	X(kt_nmi_handler) \
	X(kt_nmi_handler_end) \
	X(kt_nmi_count) \
	X(kt_nmi_rip) \
	X(g_rep) \
	X(g_rep_insn) \
	X(g_rep_end) \
	X(g_rep_src) \
	X(g_rep_dst) \
	X(g_stress) \
	X(g_stress_bp) \
	X(g_stress_bp2) \
	X(g_stress_n) \
	X(g_stress_count) \
	X(g_acc) \
	X(g_acc_w1) \
	X(g_acc_w1_end) \
	X(g_acc_w2) \
	X(g_acc_w2_end) \
	X(g_acc_w4) \
	X(g_acc_w4_end) \
	X(g_acc_w8) \
	X(g_acc_w8_end) \
	X(g_acc_r1) \
	X(g_acc_r1_end) \
	X(g_acc_r2) \
	X(g_acc_r2_end) \
	X(g_acc_r4) \
	X(g_acc_r4_end) \
	X(g_acc_r8) \
	X(g_acc_r8_end) \
	X(g_acc_cur) \
	X(g_acc_tab) \
	X(g_wbuf) \
	X(g_stepemu) \
	X(g_stepemu_out) \
	X(g_stepemu_0) \
	X(g_stepemu_1) \
	X(g_stepemu_2) \
	X(g_stepemu_3) \
	X(g_stepemu_4) \
	X(g_spin) \
	X(g_spin_loop) \
	X(g_spin_loop_end) \
	X(g_spin_count) \
	X(g_spin_stop)
/* clang-format on */

#define KT_DECLARE_SYM(s) extern const char s[];
KT_GUEST_SYMS(KT_DECLARE_SYM)
#undef KT_DECLARE_SYM

/* ---- features the host really delivers ---- */

/* Run kvmdbg_probe_verified() once per process (call it before forking
 * tests: tests/kvm/test-kvm-x86.c does from an unchecked fixture). */
void kt_features_init(void);
/* The cached result; a failed probe fails the calling test. */
uint64_t kt_features(void);
bool kt_has(uint64_t feat);
/* The host is the software KVM kvm_pvm (/sys/module/kvm_pvm exists). */
bool kt_host_is_pvm(void);
/* The VM test bed the suite runs in ($KVMDBG_TESTBED, set by tests/vm/vmbed:
 * "x86-svm-tcg" = kvm-amd nested in QEMU TCG), or NULL outside one. */
const char *kt_testbed(void);
bool kt_testbed_is(const char *name);
/* ---- kicking a vCPU thread out of KVM_RUN ---- */

/* Install the kick's signal: a no-op SIGUSR1 handler without SA_RESTART, so
 * the signal makes a KVM_RUN in progress return -EINTR. */
void kt_kick_setup(void);
/* Make the thread `tid` running (or about to run) KVM_RUN on `run` leave
 * it: immediate_exit (atomically: shared with the thread and the kernel),
 * then the signal. pthread_kill's result. */
int kt_kick(struct kvm_run *run, pthread_t tid);

/* CPUs online; in a test bed, asserted equal to the VM's -smp. */
unsigned int kt_cpus(void);
/* Print "not exercised here: <feature> (<why>)" on stdout. */
void kt_not_exercised(const char *feature, const char *why, ...)
	__attribute__((format(printf, 2, 3)));
/* Print a free-form note on stdout ("note: ..."). */
void kt_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- a test VM ---- */

struct kt_vm;
/* Replaces kvmdbg_vcpu_prepare() in kt_run() (fault injection). */
typedef int (*kt_prepare_fn)(struct kt_vm *vm, unsigned int idx);

struct kt_vm {
	int kvm_fd;
	struct kvmdbg_microvm m;
	struct kvmdbg_vm *dbg;
	struct kvmdbg_vcpu *vcpu[KVMDBG_MICROVM_MAX_VCPUS];
	unsigned int nr_vcpus;
	uint64_t features; /* given to kvmdbg_vm_new() */
	kt_prepare_fn prepare;
	void *ctx;
};

struct kt_vm_opts {
	unsigned int nr_vcpus; /* 0: 1 */
	enum kvmdbg_overlay overlay;
	bool features_set; /* false: the verified features */
	uint64_t features;
	bool no_mem;          /* no memory callbacks */
	bool vm_new_may_fail; /* return kvmdbg_vm_new()'s error, not assert */
};

/* Create VM + session + vCPU handles and load the guest blob. Asserts;
 * returns 0, or with vm_new_may_fail kvmdbg_vm_new()'s error (then there is
 * nothing to destroy). */
int kt_vm_create(struct kt_vm *vm, const struct kt_vm_opts *opts);
void kt_vm_destroy(struct kt_vm *vm);
/* Point vCPU idx at a program label, with its own stack. Asserts.
 * kvmdbg_microvm_start() also turns KVM's guest debugging off behind the
 * session's back: start a vCPU before its first kvmdbg_vcpu_prepare(). */
void kt_vcpu_start(struct kt_vm *vm, unsigned int idx, const char *label);

/* Guest address of a blob label. */
uint64_t kt_gva(const struct kt_vm *vm, const char *label);
/* Host pointer to a blob label's bytes in guest memory. */
void *kt_hva(const struct kt_vm *vm, const char *label);
uint64_t kt_peek(const struct kt_vm *vm, const char *label);
void kt_poke(struct kt_vm *vm, const char *label, uint64_t val);
/* The label (or "label+off") nearest below gva, for messages. */
const char *kt_sym(const struct kt_vm *vm, uint64_t gva, char *buf, size_t len);

/* ---- the run loop ---- */

enum kt_what {
	KT_DONE,  /* the guest wrote KT_PORT_DONE */
	KT_MARK,  /* the guest wrote KT_PORT_MARK; mark = value */
	KT_EVENT, /* a reportable debug event (or GUEST with KT_RUN_GUEST) */
	KT_ERROR, /* anything else: see msg */
	KT_LIMIT, /* the iteration bound was reached */
	KT_INTR,  /* KVM_RUN returned EINTR (a kick), with KT_RUN_INTR */
};

struct kt_stop {
	enum kt_what what;
	uint32_t mark;
	struct kvmdbg_event ev;
	uint32_t exit_reason;
	int err;
	unsigned int runs;   /* KVM_RUNs made */
	unsigned int nones;  /* KVMDBG_STOP_NONE events run past */
	unsigned int guests; /* KVMDBG_STOP_GUEST events run past */
	char msg[256];
};

#define KT_RUN_GUEST      0x1 /* return KVMDBG_STOP_GUEST events too */
#define KT_RUN_NO_PREPARE 0x2 /* no prepare before the first KVM_RUN */
#define KT_RUN_ONCE       0x4 /* return after one KVM_RUN whatever it was (NONE: KT_EVENT) */
#define KT_RUN_INTR \
	0x8 /* return KT_INTR when KVM_RUN is interrupted (immediate_exit
                                 is cleared then); otherwise EINTR just runs again */

/* Iteration bound of one kt_run(). */
#define KT_RUN_MAX 10000

/*
 * Prepare, KVM_RUN, classify, until a stop worth returning. Never asserts
 * (usable from vCPU threads); fills *st and returns st->what.
 */
enum kt_what kt_run(struct kt_vm *vm, unsigned int idx, unsigned int flags, struct kt_stop *st);
/*
 * All-stop, as a debugger runs an SMP guest (examples/kvmdbg-run): vCPU
 * threads 0..n-1 run until KT_DONE; each reported stop at the software
 * breakpoint bp (counted in breaks[idx]) kicks every other vCPU out of
 * KVM_RUN (immediate_exit + SIGUSR1), and all resume once all are out.
 * Anything else fails the run (err, else ""). Returns the world stops.
 */
unsigned int kt_allstop_breaks(struct kt_vm *vm, unsigned int n, uint64_t bp,
			       unsigned int breaks[], char *err, size_t errlen);
/* A one-line description of a stop, for messages. */
const char *kt_describe(const struct kt_vm *vm, const struct kt_stop *st, char *buf, size_t len);

/* Asserting wrappers (test thread only). */
void kt_expect_done(struct kt_vm *vm, unsigned int idx);
void kt_expect_mark(struct kt_vm *vm, unsigned int idx, uint32_t mark);
/* Expect a reportable event; pc checked when label != NULL. Returns it. */
struct kvmdbg_event kt_expect_event(struct kt_vm *vm, unsigned int idx, enum kvmdbg_stop kind,
				    const char *label);

/* The program counter of vCPU idx (x86: KVM_GET_REGS rip; arm64: PC). */
uint64_t kt_rip(struct kt_vm *vm, unsigned int idx);

/*
 * ---- per-arch hooks ----
 *
 * tests/common/kvm-util.c is arch-neutral; what differs between the arches is in
 * tests/common/kvm-util-x86.c and tests/common/kvm-util-arm64.c (one of them is linked),
 * which implement kt_rip() above and the following.
 */

/* A label of the guest blob, for kt_sym(). */
struct kt_symtab {
	const char *name;
	const char *addr;
};
/* The arch's blob labels, and the name of its program counter in messages
 * ("rip", "pc"). */
extern const struct kt_symtab kt_arch_syms[];
extern const size_t kt_arch_nr_syms;
extern const char kt_arch_pc_name[];

/* kt_vcpu_start() after kvmdbg_microvm_start(): what else the arch's blob
 * needs of a started vCPU (asserts). */
void kt_arch_vcpu_started(struct kt_vm *vm, unsigned int idx);
/* The last exit of vCPU idx as a guest "out" (x86: KVM_EXIT_IO; arm64: an
 * MMIO store to KA_PORT_ADDR(port)): 1 with *port and *val when it is one,
 * 0 when the exit is of another kind, -1 when it is the arch's port exit
 * but no "out" (msg says what). */
int kt_arch_out(const struct kt_vm *vm, unsigned int idx, uint32_t *port, uint32_t *val, char *msg,
		size_t len);
/* Whether port is one the guest reports an unexpected exception on (val
 * from kt_arch_out()); if so, describe the exception in msg. */
bool kt_arch_fail(struct kt_vm *vm, unsigned int idx, uint32_t port, uint32_t val, char *msg,
		  size_t len);
/* The arch's detail of vCPU idx's last KVM_EXIT_DEBUG, for the trace. */
void kt_arch_debug_detail(const struct kt_vm *vm, unsigned int idx, char *buf, size_t len);

#endif /* __ASSEMBLER__ */
#endif
