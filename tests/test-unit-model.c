/* SPDX-License-Identifier: MIT */
/*
 * Model-based test of the generic core on both arches: seeded random
 * sequences of insert / remove / remove_all / slots_needed / set_step /
 * regs_changed / prepare / synthetic exits / handle_exit against a reference
 * model of the breakpoint set, checked after every operation; at the end
 * guest memory is byte for byte the original and no slot is held. The engine
 * is tests/hardening/model.c (shared with the fuzz target
 * tests/fuzz/fuzz-api.c); the fake KVM is tests/hardening/fake-host.c.
 *
 * KVMDBG_MODEL_SEEDS=N runs N seeds per arch instead of the default.
 */
#include <stdio.h>
#include <stdlib.h>

#include "hardening/fake-host.h"
#include "hardening/model.h"
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
	       "%lu exits: %lu step %lu break %lu watch %lu guest %lu none; %lu step-overs\n",
	       arch == KVMDBG_ARCH_X86_64 ? "x86_64" : "arm64", seeds, st.ops, st.inserts,
	       st.inserts_ok, st.removes, st.prepares, st.handled, st.kinds[KVMDBG_STOP_STEP],
	       st.kinds[KVMDBG_STOP_BREAK], st.kinds[KVMDBG_STOP_WATCH], st.kinds[KVMDBG_STOP_GUEST],
	       st.kinds[KVMDBG_STOP_NONE], st.stepovers);
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

TEST_SUITE(model)
{
	add_test(tc, test_model_x86);
	add_test(tc, test_model_arm64);
}
