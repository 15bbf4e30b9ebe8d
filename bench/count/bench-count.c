/* SPDX-License-Identifier: MIT */
/*
 * bench-count: the library's instructions per exit, counted by callgrind
 * (issue 17). Run by bench/count/count, which starts it under
 *   valgrind --tool=callgrind --instr-atstart=no --compress-strings=no ...
 * and reads one callgrind dump per measurement: the inclusive instruction
 * counts of the calls to kvmdbg_vcpu_prepare() and
 * kvmdbg_vcpu_handle_exit() (everything they run: the fake KVM's host ops
 * standing in for the ioctls, libc's memcmp, the mutex), and how many
 * calls took the VM's lock (kvmdbg_mutex_lock(), lib/mutex.c).
 *
 * Each measurement sets up a VM on the fake KVM of tests/hardening
 * (fake-host.h) for one arch, arms a configuration (0, 1, 4 or every
 * hardware slot; or 10, 10,000 or 1,000,000 software breakpoints; or, for
 * the two-exit step-overs, a second vCPU attached and idle: vcpus2), runs
 * WARM iterations of one operation uncounted, then ITER counted, and dumps.
 * The operations, each one iteration:
 *   prepare       kvmdbg_vcpu_prepare() with nothing changed since the last
 *   step          a single-step exit: handle_exit (a reported step) + prepare
 *   hwbp-rf       x86: hardware breakpoint hit + resume by RFLAGS.RF
 *   hwbp-step     hardware breakpoint hit + resume by disarm, step, re-arm
 *                 (two exits: the hit and the internal step)
 *   watch         watchpoint hit + resume (x86 trap-like: one exit; arm64
 *                 stops before the access: two, as hwbp-step)
 *   swbp          software breakpoint hit + step-over (lift, step, put back)
 *   guest         overlay on: the guest's own single-step trap, classified
 *                 as the guest's and re-injected by the next prepare
 * Every iteration checks what the library reported, so a bench that stopped
 * measuring what it says fails (exit 1).
 *
 * Output: one line per measurement, "@count LABEL ITER", in the order of the
 * dumps; LABEL is arch/op/config. Outside valgrind it runs the same (the
 * checks) and the dumps are no-ops.
 *
 * usage: bench-count [--quick | --pages] [LABEL_PREFIX]
 *   --quick: without the 1,000,000 software breakpoints, for a guard that
 *   must stay short; LABEL_PREFIX: only the measurements it starts.
 *   --pages: for valgrind --tool=lackey --trace-mem=yes (bench/count/count
 *   --pages): PAGES_ITER iterations, each library call between a store to
 *   mark.enter and one to mark.leave, each iteration after a store to
 *   mark.iter, so that the trace shows which pages the library touches per
 *   iteration; prints "@marks ENTER LEAVE ITER PREPARE" (their addresses,
 *   and kvmdbg_vcpu_prepare's: the load bias) first. LABEL_PREFIX is then
 *   one whole label.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/kvm.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif
#endif
#ifndef HAVE_CALLGRIND
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(s) ((void)(s))
#endif

#include "arch/arm64/regs.h"
#include "fake-host.h"
#include "kvmdbg-int.h"

#define WARM 20
#define ITER 500
#define PAGES_ITER 20

/* --pages: what the trace is cut at (see the usage above). */
static struct {
	volatile unsigned char enter, pad0[63], leave, pad1[63], iter;
} mark;
static bool pages_mode;

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "bench-count: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

/* Guest memory anywhere in the address space: reads give nops, writes
 * vanish (as in bench-scale: a million breakpoints, spread out). */
static int flat_read(void *ctx, uint64_t gva, void *buf, size_t len)
{
	(void)ctx;
	(void)gva;
	memset(buf, 0x90, len);
	return 0;
}

static int flat_write(void *ctx, uint64_t gva, const void *buf, size_t len)
{
	(void)ctx;
	(void)gva;
	(void)buf;
	(void)len;
	return 0;
}

static const struct kvmdbg_mem_ops flat_mem = {.read = flat_read, .write = flat_write};

/* Software breakpoint i: a bijection onto 16-byte aligned 48-bit addresses,
 * above everything else used here. */
static uint64_t sw_addr(uint64_t i)
{
	return ((((i + 1) * 0x9e3779b97f4bull) & ((1ull << 44) - 1)) << 4) | (1ull << 47);
}

#define HW_ELSEWHERE 0x10000u /* hardware breakpoints never hit: + 0x100 * k */
#define WP_ELSEWHERE 0x20000u /* watchpoints never hit */
#define HIT_PC 0x4000u        /* the breakpoint that is hit */
#define WATCHED 0x6000u       /* the watchpoint that is hit */
#define STEP_PC 0x5000u       /* where a plain step or a watch hit stops */

#define ALL_SLOTS (-1)
#define OWN_ONLY (-2)

enum op { OP_PREPARE, OP_STEP, OP_HWBP_RF, OP_HWBP_STEP, OP_WATCH, OP_SWBP, OP_GUEST, NR_OPS };
static const char *const op_names[NR_OPS] = {"prepare", "step",  "hwbp-rf", "hwbp-step",
					     "watch",   "swbp", "guest"};

static struct kvm_run run2;

struct ctx {
	enum kvmdbg_arch arch;
	enum op op;
	struct kvmdbg_vm *vm;
	struct kvmdbg_vcpu *v;
	struct kvm_run run;
	/* A second vCPU, attached and idle (vcpus2): what the others cost the
	 * measured one (the cover's generation bumps). NULL without. Its
	 * kvm_run is run2 (static: not in this struct, on measure()'s stack,
	 * where it would move the library's stack frames to other pages). */
	struct kvmdbg_vcpu *v2;
	bool x86;
	unsigned int insn; /* bytes of the instruction stepped over */
};

/* The measured vCPU's kvm_run: x86 exits are read from it (the fake's
 * FH_X86_EXIT_IN_RUN, as on KVM) on an x86 host, whose kvm_run has x86's
 * debug.arch; elsewhere through the read_exit op. */
static struct kvm_run *cur_run;

static void x86_exit(uint32_t exception, uint64_t pc, uint64_t dr6_bits)
{
	fh.v[0].exit = (struct kvmdbg_exit){
		.exception = exception, .pc = pc, .dr6 = 0xffff0ff0ull | dr6_bits, .dr7 = 0x400};
	fh.v[0].pc = pc;
#if defined(__x86_64__)
	cur_run->debug.arch.exception = exception;
	cur_run->debug.arch.pc = pc;
	cur_run->debug.arch.dr6 = fh.v[0].exit.dr6;
	cur_run->debug.arch.dr7 = fh.v[0].exit.dr7;
#endif
}

static void arm64_exit(uint64_t esr, uint64_t pc, uint64_t far)
{
	fh.v[0].exit = (struct kvmdbg_exit){.esr = esr, .pc = pc, .far = far};
	fh.v[0].pc = pc;
}

#define DR6_BS (1ull << 14)

static void step_exit(struct ctx *c, uint64_t pc)
{
	if (c->x86)
		x86_exit(1, pc, DR6_BS);
	else
		arm64_exit(ESR_FOR_EC(0x32), pc, 0);
}

static void handle(struct ctx *c, enum kvmdbg_stop want, const char *what)
{
	struct kvmdbg_event ev;
	int r;

	mark.enter = 1;
	r = kvmdbg_vcpu_handle_exit(c->v, &ev);
	mark.leave = 1;

	if (r || ev.kind != want)
		die("%s/%s: %s: handle_exit %d, stop %d (expected %d)",
		    c->x86 ? "x86" : "arm64", op_names[c->op], what, r, (int)ev.kind, (int)want);
}

static void prepare(struct ctx *c)
{
	int r;

	mark.enter = 1;
	r = kvmdbg_vcpu_prepare(c->v);
	mark.leave = 1;
	if (r)
		die("%s/%s: prepare %d", c->x86 ? "x86" : "arm64", op_names[c->op], r);
}

/* One iteration of the operation. */
static void iterate(struct ctx *c)
{
	switch (c->op) {
	case OP_PREPARE:
		prepare(c);
		break;
	case OP_STEP:
		step_exit(c, STEP_PC);
		handle(c, KVMDBG_STOP_STEP, "step");
		prepare(c);
		break;
	case OP_HWBP_RF:
		x86_exit(1, HIT_PC, 1u << 0);
		handle(c, KVMDBG_STOP_BREAK, "hit");
		prepare(c);
		if (!fh.v[0].rf)
			die("x86/hwbp-rf: no RF");
		fh.v[0].rf = false;
		break;
	case OP_HWBP_STEP:
		if (c->x86)
			x86_exit(1, HIT_PC, 1u << 0);
		else
			arm64_exit(ESR_FOR_EC(0x30), HIT_PC, 0);
		handle(c, KVMDBG_STOP_BREAK, "hit");
		prepare(c);
		step_exit(c, HIT_PC + c->insn);
		handle(c, KVMDBG_STOP_NONE, "internal step");
		prepare(c);
		break;
	case OP_WATCH:
		if (c->x86) {
			x86_exit(1, STEP_PC, 1u << 0);
			handle(c, KVMDBG_STOP_WATCH, "hit");
			prepare(c);
		} else {
			arm64_exit(ESR_FOR_EC(0x34) | 1u << 6, STEP_PC, WATCHED);
			handle(c, KVMDBG_STOP_WATCH, "hit");
			prepare(c);
			step_exit(c, STEP_PC + 4);
			handle(c, KVMDBG_STOP_NONE, "internal step");
			prepare(c);
		}
		break;
	case OP_SWBP:
		if (c->x86)
			x86_exit(3, sw_addr(0), 0);
		else
			arm64_exit(ESR_FOR_EC(0x3c) | kvmdbg_arm64_ops.sw_imm, sw_addr(0), 0);
		handle(c, KVMDBG_STOP_BREAK, "hit");
		prepare(c);
		step_exit(c, sw_addr(0) + c->insn);
		handle(c, KVMDBG_STOP_NONE, "internal step");
		prepare(c);
		break;
	case OP_GUEST:
		/* Not stepping: the trap is the guest's own (x86 TF, arm64 SS). */
		step_exit(c, STEP_PC);
		handle(c, KVMDBG_STOP_GUEST, "guest step");
		prepare(c);
		if (!fh.v[0].inject_calls)
			die("guest: nothing re-injected");
		fh.v[0].inject_calls = 0;
		break;
	case NR_OPS:
		break;
	}
}

static void insert(struct ctx *c, enum kvmdbg_type type, uint64_t addr, uint64_t len)
{
	int r = kvmdbg_vm_insert(c->vm, type, addr, len);

	if (r)
		die("insert type %d at %#llx len %llu: %d", (int)type, (unsigned long long)addr,
		    (unsigned long long)len, r);
}

/*
 * Set up c for its op with `slots` hardware slots armed in all (the op's own
 * point first; ALL_SLOTS: every slot of every pool; OWN_ONLY: the op's own
 * point, if it has one, and nothing else), nsw software breakpoints and
 * nr_vcpus vCPUs attached (1 or 2; the second never runs after its first
 * prepare). Returns false where the configuration does not exist (no slots
 * for the op's own point).
 */
static bool setup(struct ctx *c, int slots, size_t nsw, unsigned int nr_vcpus)
{
	bool own_hw = c->op == OP_HWBP_RF || c->op == OP_HWBP_STEP || c->op == OP_WATCH;
	struct kvmdbg_vm_opts o = {.sz = sizeof(o), .mem = &flat_mem};
	unsigned int nbp, nwp, taken_bp = 0, taken_wp = 0;
	int r;

	if (own_hw && slots == 0)
		return false;
	if (slots == OWN_ONLY)
		slots = own_hw;
	fh_reset(c->arch);
	c->x86 = c->arch == KVMDBG_ARCH_X86_64;
	c->insn = c->x86 ? 1 : 4;
	if (c->op == OP_HWBP_RF)
		o.features = KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_RF_RESUME;
	if (c->op == OP_GUEST)
		o.overlay = KVMDBG_OVERLAY_GUEST;
	memset(&c->run, 0, sizeof(c->run));
	r = kvmdbg_vm_new_host(-1, &o, fh_host(), &fh, &c->vm);
	if (r)
		die("vm_new: %d", r);
	r = kvmdbg_vcpu_new(c->vm, 0, &c->run, &c->v);
	if (r)
		die("vcpu_new: %d", r);
	c->run.exit_reason = KVM_EXIT_DEBUG;
	cur_run = &c->run;
	c->v2 = NULL;
	if (nr_vcpus > 1) {
		memset(&run2, 0, sizeof(run2));
		r = kvmdbg_vcpu_new(c->vm, 1, &run2, &c->v2);
		if (r)
			die("vcpu_new 1: %d", r);
	}
	nbp = c->vm->lim.nr[KVMDBG_POOL_BP];
	nwp = c->vm->lim.nr[KVMDBG_POOL_WP];

	/* The op's own point, in the first slot of its pool. */
	if (c->op == OP_HWBP_RF || c->op == OP_HWBP_STEP) {
		insert(c, KVMDBG_BREAK_HW, HIT_PC, c->insn);
		taken_bp++;
	} else if (c->op == OP_WATCH) {
		insert(c, KVMDBG_WATCH_WRITE, WATCHED, 4);
		if (c->x86)
			taken_bp++;
		else
			taken_wp++;
	}
	/* The rest elsewhere, never hit: breakpoints, then (all) watchpoints. */
	for (int k = 0; slots == ALL_SLOTS ? taken_bp < nbp : (int)(taken_bp + taken_wp) < slots; k++) {
		if (taken_bp >= nbp)
			return false;
		insert(c, KVMDBG_BREAK_HW, HW_ELSEWHERE + 0x100u * (unsigned int)k, c->insn);
		taken_bp++;
	}
	for (int k = 0; slots == ALL_SLOTS && taken_wp < nwp; k++) {
		insert(c, KVMDBG_WATCH_WRITE, WP_ELSEWHERE + 0x100u * (unsigned int)k, 8);
		taken_wp++;
	}
	for (size_t i = 0; i < nsw; i++)
		insert(c, KVMDBG_BREAK_SW, sw_addr(i), c->insn);
	if (c->op == OP_SWBP && !nsw)
		insert(c, KVMDBG_BREAK_SW, sw_addr(0), c->insn);
	if (c->op == OP_STEP) {
		r = kvmdbg_vcpu_set_step(c->v, 1);
		if (r)
			die("set_step: %d", r);
	}
	/* The guest's own registers: nothing enabled, so every slot of the
	 * host's stays (the guest only single-steps itself). */
	prepare(c);
	if (c->v2) {
		r = kvmdbg_vcpu_prepare(c->v2);
		if (r)
			die("prepare vcpu 1: %d", r);
	}
	return true;
}

static void teardown(struct ctx *c)
{
	int r;

	kvmdbg_vcpu_free(c->v);
	kvmdbg_vcpu_free(c->v2);
	r = kvmdbg_vm_free(c->vm);
	if (r)
		die("vm_free: %d", r);
}

static const char *only; /* measure only the labels that start with it */

static void measure(enum kvmdbg_arch arch, enum op op, int slots, size_t nsw,
		    unsigned int nr_vcpus, const char *config)
{
	struct ctx c = {.arch = arch, .op = op};
	char label[128];

	snprintf(label, sizeof(label), "%s/%s/%s", arch == KVMDBG_ARCH_X86_64 ? "x86" : "arm64",
		 op_names[op], config);
	if (only && (pages_mode ? strcmp(label, only) : strncmp(label, only, strlen(only))))
		return;
	if (!setup(&c, slots, nsw, nr_vcpus))
		return;
	if (pages_mode) {
		for (int i = 0; i < WARM; i++)
			iterate(&c);
		printf("@pages\t%s\n", label);
		fflush(stdout);
		for (int i = 0; i < PAGES_ITER; i++) {
			mark.iter = 1;
			iterate(&c);
		}
		mark.iter = 1;
		teardown(&c);
		return;
	}
	CALLGRIND_START_INSTRUMENTATION;
	for (int i = 0; i < WARM; i++)
		iterate(&c);
	CALLGRIND_ZERO_STATS;
	for (int i = 0; i < ITER; i++)
		iterate(&c);
	CALLGRIND_DUMP_STATS_AT(label);
	CALLGRIND_STOP_INSTRUMENTATION;
	printf("@count\t%s\t%d\n", label, ITER);
	fflush(stdout);
	teardown(&c);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int slots;
		size_t nsw;
		unsigned int nr_vcpus;
		unsigned int ops; /* 1u << op of the ops measured; 0: all */
	} configs[] = {
		{"slots0", 0, 0, 1, 0},
		{"slots1", 1, 0, 1, 0},
		{"slots4", 4, 0, 1, 0},
		{"slots-all", ALL_SLOTS, 0, 1, 0},
		{"sw10", OWN_ONLY, 10, 1, 0},
		{"sw10k", OWN_ONLY, 10000, 1, 0},
		{"sw1m", OWN_ONLY, 1000000, 1, 0},
		/* Last: the labels above keep their order. The two-exit
		 * step-overs with another vCPU attached, which sees the cover. */
		{"vcpus2", OWN_ONLY, 0, 2, 1u << OP_HWBP_STEP | 1u << OP_SWBP},
	};
	bool quick = argc > 1 && !strcmp(argv[1], "--quick");

	pages_mode = argc > 1 && !strcmp(argv[1], "--pages");
	quick |= pages_mode;
	only = argc > 1 + quick ? argv[1 + quick] : NULL;
	if (pages_mode) {
		printf("@marks\t%p\t%p\t%p\t%p\n", (void *)&mark.enter, (void *)&mark.leave,
		       (void *)&mark.iter, (void *)(uintptr_t)kvmdbg_vcpu_prepare);
		fflush(stdout);
	}
	static const enum kvmdbg_arch arches[] = {KVMDBG_ARCH_X86_64, KVMDBG_ARCH_ARM64};

#ifndef HAVE_CALLGRIND
	printf("@no-callgrind\tbuilt without <valgrind/callgrind.h>: nothing is counted\n");
#endif
	for (size_t a = 0; a < 2; a++)
		for (size_t k = 0; k < sizeof(configs) / sizeof(configs[0]); k++)
			for (int op = 0; op < NR_OPS; op++) {
				if (op == OP_HWBP_RF && arches[a] != KVMDBG_ARCH_X86_64)
					continue;
				if (quick && configs[k].nsw > 10000)
					continue;
				if (configs[k].ops && !(configs[k].ops & 1u << op))
					continue;
				measure(arches[a], (enum op)op, configs[k].slots, configs[k].nsw,
					configs[k].nr_vcpus, configs[k].name);
			}
	return 0;
}
