/* SPDX-License-Identifier: MIT */
/*
 * Model-based checking of the generic core (vm.c, vcpu.c, slots.c, swbp.c)
 * with the real arch ops behind a fake KVM (fake-host.h).
 *
 * A run applies a sequence of operations chosen from a byte source (a seeded
 * PRNG for tests/unit/test-unit-model.c, the fuzzer's input for
 * tests/fuzz/fuzz-api.c): insert, remove, remove_all, slots_needed,
 * set_step, regs_changed, prepare, a synthetic exit generated from what the
 * fake KVM holds for the vCPU (a hit of an armed slot, a software
 * breakpoint, a step trap, or junk), and handle_exit. After every operation
 * it compares the library with a reference model of the breakpoint set:
 * return codes, points and refcounts, slot ownership and encodings, the
 * state each vCPU applied, the classification of each exit, the step past
 * a reported breakpoint, and guest memory byte for byte. At the end
 * remove_all must leave guest memory as it was and no slot held.
 *
 * No Check in here (the fuzz target links it): failures come back as text.
 */
#ifndef KVMDBG_TEST_MODEL_H
#define KVMDBG_TEST_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kvmdbg/kvmdbg.h"

struct model_src {
	const uint8_t *data; /* fuzz input, or NULL: PRNG from seed */
	size_t len, pos;
	uint64_t seed;
};

struct model_stats {
	unsigned long ops, inserts, inserts_ok, removes, prepares, exits, handled;
	unsigned long kinds[5]; /* by enum kvmdbg_stop */
	unsigned long stepovers;
	unsigned long fenced, cover_hits; /* prepares told to wait; hits of a cover slot */
};

/* Run up to max_ops operations on arch. Returns 0, or -1 with a message in
 * err (the operation log's tail is included). */
int model_run(enum kvmdbg_arch arch, struct model_src *src, unsigned int max_ops,
	      struct model_stats *st, char *err, size_t errlen);

#endif
