/* SPDX-License-Identifier: MIT */
/*
 * Model-based test of the generic core on both arches: seeded random
 * sequences of insert / remove / remove_all / slots_needed / set_step /
 * regs_changed / prepare / synthetic exits / handle_exit against a reference
 * model of the breakpoint set, checked after every operation; at the end
 * guest memory is byte for byte the original and no slot is held. The engine
 * is tests/common/model.c (shared with the fuzz target
 * tests/fuzz/fuzz-api.c); the fake KVM is tests/common/fake-host.c.
 *
 * KVMDBG_MODEL_SEEDS=N runs N seeds per arch instead of the default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/kvm.h>

#include "fake-host.h"
#include "model.h"
#include "test-common.h"

#define DEFAULT_SEEDS 300
#define OPS_PER_SEED 400

static void run_arch(enum kvmdbg_arch arch)
{
	const char *env = getenv("KVMDBG_MODEL_SEEDS");
	unsigned int seeds = env ? (unsigned int)strtoul(env, NULL, 0) : DEFAULT_SEEDS;
	struct model_stats st = {0};
	static char err[4096];

	for (unsigned int s = 0; s < seeds; s++) {
		struct model_src src = {.seed = 0x6b766d6462670000ull + s};

		if (model_run(arch, &src, OPS_PER_SEED, &st, err, sizeof(err)))
			ck_abort_msg("seed %u: %s", s, err);
	}
	printf("model %s: %u seeds, %lu ops: %lu inserts (%lu ok), %lu removes, %lu prepares, "
	       "%lu exits: %lu step %lu break %lu watch %lu guest %lu none; %lu step-overs; "
	       "%lu fenced prepares, %lu cover-slot hits\n",
	       arch == KVMDBG_ARCH_X86_64 ? "x86_64" : "arm64", seeds, st.ops, st.inserts,
	       st.inserts_ok, st.removes, st.prepares, st.handled, st.kinds[KVMDBG_STOP_STEP],
	       st.kinds[KVMDBG_STOP_BREAK], st.kinds[KVMDBG_STOP_WATCH], st.kinds[KVMDBG_STOP_GUEST],
	       st.kinds[KVMDBG_STOP_NONE], st.stepovers, st.fenced, st.cover_hits);
	fflush(stdout);
	/* The sequences must really reach the interesting places. */
	ck_assert_uint_gt(st.kinds[KVMDBG_STOP_BREAK], seeds / 4);
	ck_assert_uint_gt(st.stepovers, seeds / 8);
	ck_assert_uint_gt(st.kinds[KVMDBG_STOP_NONE], 0);
	ck_assert_uint_gt(st.kinds[KVMDBG_STOP_GUEST], 0);
}

START_TEST(test_model_x86)
{
	run_arch(KVMDBG_ARCH_X86_64);
}
END_TEST

START_TEST(test_model_arm64)
{
	run_arch(KVMDBG_ARCH_ARM64);
}
END_TEST

/*
 * arm64 watchpoints are taken before the access (DESIGN.md: "arm64 by
 * disabling the slot, stepping, re-enabling"), so resuming from a reported
 * watchpoint stop must step past the access with the watchpoint disarmed;
 * otherwise the guest re-executes the access and stops at the same place
 * forever. The model checks this wherever the arch ops say watch_is_fault;
 * this test checks that arm64 says so and what then happens.
 */
START_TEST(test_arm64_watch_steps_past)
{
	struct kvmdbg_vm_opts o = {.sz = sizeof(o), .mem = &fh_mem_ops, .mem_ctx = &fh};
	struct kvmdbg_vm *vm;
	struct kvmdbg_vcpu *v;
	struct kvm_run kr = {.exit_reason = KVM_EXIT_DEBUG};
	struct kvmdbg_event ev;
	struct fh_vcpu *f = &fh.v[0];

	fh_reset(KVMDBG_ARCH_ARM64);
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, fh_host(), &fh, &vm), 0);
	ck_assert_int_eq(kvmdbg_vcpu_new(vm, 0, &kr, &v), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(vm, KVMDBG_WATCH_WRITE, 0x1000, 8), 0);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(v), 0);
	ck_assert_uint_ne(f->hw.slot[KVMDBG_POOL_WP][0].ctrl, 0);
	/* str x1, [x0] at 0x600 writes 0x1000: watchpoint, EC 0x34, WnR. */
	f->exit = (struct kvmdbg_exit){
		.esr = (0x34ull << 26) | (1ull << 25) | (1ull << 6), .far = 0x1000, .pc = 0x600};
	f->pc = 0x600;
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(v, &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_WATCH);
	ck_assert_uint_eq(ev.data_addr, 0x1000);
	ck_assert_int_eq(ev.write, 1);
	/* Resume: the store must run once with the watchpoint disarmed. */
	ck_assert_int_eq(kvmdbg_vcpu_prepare(v), 0);
	ck_assert_msg(kvmdbg_arm64_ops.watch_is_fault,
		      "kvmdbg_arm64_ops.watch_is_fault is false: resuming from an arm64 "
		      "watchpoint re-executes the access with the watchpoint armed");
	ck_assert_uint_eq(f->ctl & KVMDBG_CTL_STEP, KVMDBG_CTL_STEP);
	ck_assert_uint_eq(f->hw.slot[KVMDBG_POOL_WP][0].ctrl, 0);
	ck_assert_uint_eq(f->masked, 1);
	/* The step completes: re-armed, interrupts back, nothing reported. */
	f->exit = (struct kvmdbg_exit){.esr = (0x32ull << 26) | (1ull << 25), .pc = 0x604};
	ck_assert_int_eq(kvmdbg_vcpu_handle_exit(v, &ev), 0);
	ck_assert_int_eq(ev.kind, KVMDBG_STOP_NONE);
	ck_assert_int_eq(kvmdbg_vcpu_prepare(v), 0);
	ck_assert_uint_ne(f->hw.slot[KVMDBG_POOL_WP][0].ctrl, 0);
	ck_assert_uint_eq(f->ctl & KVMDBG_CTL_STEP, 0);
	ck_assert_uint_eq(f->masked, 0);
	kvmdbg_vcpu_free(v);
	kvmdbg_vm_free(vm);
}
END_TEST

TEST_SUITE(model)
{
	add_test(tc, test_model_x86);
	add_test(tc, test_model_arm64);
	add_test(tc, test_arm64_watch_steps_past);
}
