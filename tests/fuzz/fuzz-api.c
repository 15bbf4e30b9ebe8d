/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: random API call sequences (insert, remove, remove_all,
 * slots_needed, set_step, regs_changed, prepare, synthetic exits,
 * handle_exit) against the fake KVM with fake memory, on both arches, each
 * checked against the reference model of tests/common/model.c: return
 * codes, points, refcounts, slots, applied state, classification (always a
 * documented kind), step-overs, guest memory after every operation; at the
 * end remove_all leaves guest memory as it was and no slot held.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz-input.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char err[4096];
	struct model_stats st = {0};
	struct model_src src;
	enum kvmdbg_arch arch;

	if (size < 1)
		return 0;
	arch = data[0] & 1 ? KVMDBG_ARCH_ARM64 : KVMDBG_ARCH_X86_64;
	src = (struct model_src){.data = data + 1, .len = size - 1};
	if (model_run(arch, &src, 4096, &st, err, sizeof(err))) {
		fprintf(stderr, "model: %s\n", err);
		abort();
	}
	return 0;
}
