/* SPDX-License-Identifier: MIT */
/*
 * Hardware slot allocator. Slots are owned by point ids; a point keeps its
 * slot numbers for as long as it lives (stable numbering, so a vCPU that ran
 * with an older state can still tell whose slot fired), and allocation is
 * all-or-nothing.
 */
#include <errno.h>
#include <string.h>

#include "kvmdbg-int.h"

void kvmdbg_slots_init(struct kvmdbg_slots *s, const struct kvmdbg_limits *lim)
{
	memset(s, 0, sizeof(*s));
	for (unsigned int p = 0; p < KVMDBG_NR_POOLS; p++)
		s->nr[p] = lim->nr[p] > KVMDBG_MAX_SLOTS ? KVMDBG_MAX_SLOTS : lim->nr[p];
}

unsigned int kvmdbg_slots_free(const struct kvmdbg_slots *s, unsigned int pool)
{
	unsigned int n = 0;

	if (pool >= KVMDBG_NR_POOLS)
		return 0;
	for (unsigned int i = 0; i < s->nr[pool]; i++)
		n += !s->owner[pool][i];
	return n;
}

int kvmdbg_slots_alloc(struct kvmdbg_slots *s, uint32_t owner, const struct kvmdbg_piece *p,
		       unsigned int n, uint32_t *mask)
{
	unsigned int want[KVMDBG_NR_POOLS] = {0};
	uint32_t taken = 0;

	if (!owner || (n && !p))
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++) {
		if (p[i].pool >= KVMDBG_NR_POOLS || !p[i].ctrl)
			return -EINVAL;
		want[p[i].pool]++;
	}
	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		if (want[pool] > kvmdbg_slots_free(s, pool))
			return -ENOSPC;

	/* Enough room in every pool: from here on nothing can fail. */
	for (unsigned int i = 0; i < n; i++) {
		unsigned int pool = p[i].pool, slot = 0;

		while (s->owner[pool][slot])
			slot++;
		s->owner[pool][slot] = owner;
		s->hw[pool][slot] = (struct kvmdbg_hwslot){
			.value = p[i].value,
			.ctrl = p[i].ctrl,
			.start = p[i].start,
			.len = p[i].len,
		};
		taken |= KVMDBG_HIT_BIT(pool, slot);
	}
	if (mask)
		*mask = taken;
	return 0;
}

void kvmdbg_slots_release(struct kvmdbg_slots *s, uint32_t mask)
{
	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int slot = 0; slot < KVMDBG_MAX_SLOTS; slot++)
			if (mask & KVMDBG_HIT_BIT(pool, slot)) {
				s->owner[pool][slot] = 0;
				memset(&s->hw[pool][slot], 0, sizeof(s->hw[pool][slot]));
			}
}

KVMDBG_WARM void kvmdbg_slots_to_hw(const struct kvmdbg_slots *s, struct kvmdbg_hwstate *hw)
{
	memcpy(hw->slot, s->hw, sizeof(hw->slot));
}
