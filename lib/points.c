/* SPDX-License-Identifier: MIT */
/*
 * The VM's point table (struct kvmdbg_vm.points): the hardware breakpoints
 * and watchpoints inserted, each with its id and the slots it holds. Every
 * search of the table is here (called with vm->lock held), and the copy of
 * it each vCPU keeps for its lock-free paths (issue 17).
 */
#include <string.h>

#include "kvmdbg-int.h"

struct kvmdbg_hwpoint *kvmdbg_point_find(struct kvmdbg_vm *vm, enum kvmdbg_type type, uint64_t addr,
					uint64_t len)
{
	for (unsigned int i = 0; i < KVMDBG_MAX_POINTS; i++) {
		struct kvmdbg_hwpoint *p = &vm->points[i];

		/* Execution breakpoints are identified by address alone: gdb's
		 * "kind" may differ between insert and remove. */
		if (p->id && p->type == type && p->addr == addr &&
		    (type == KVMDBG_BREAK_HW || p->len == len))
			return p;
	}
	return NULL;
}

/* The id after vm->next_id that no live point holds (ids are 1 to
 * KVMDBG_OWNER_SW - 1 and wrap; at most KVMDBG_MAX_POINTS are live). */
uint32_t kvmdbg_point_new_id(const struct kvmdbg_vm *vm)
{
	uint32_t id = vm->next_id;
	bool used;

	do {
		if (++id >= KVMDBG_OWNER_SW)
			id = 1;
		used = false;
		for (unsigned int i = 0; i < KVMDBG_MAX_POINTS && !used; i++)
			used = vm->points[i].id == id;
	} while (used);
	return id;
}

/* The slots of the execution breakpoints at pc. */
KVMDBG_WARM uint32_t kvmdbg_point_exec_slots_at(const struct kvmdbg_vm *vm, uint64_t pc)
{
	uint32_t slots = 0;

	for (unsigned int i = 0; i < KVMDBG_MAX_POINTS; i++) {
		const struct kvmdbg_hwpoint *p = &vm->points[i];

		if (p->id && p->type == KVMDBG_BREAK_HW && p->addr == pc)
			slots |= p->slots;
	}
	return slots;
}

const struct kvmdbg_hwpoint *kvmdbg_point_by_id(const struct kvmdbg_vm *vm, uint32_t id)
{
	if (!id)
		return NULL;
	for (unsigned int i = 0; i < KVMDBG_MAX_POINTS; i++)
		if (vm->points[i].id == id)
			return &vm->points[i];
	return NULL;
}

/*
 * Copy what the lock-free paths need of the VM's hardware points into the
 * vCPU (see struct kvmdbg_vcpu pts_gen), for vm->hw_gen == gen: the point
 * holding each slot, and the execution breakpoints' addresses and slots
 * behind a Bloom filter. Called with vm->lock held; nothing to do while
 * they are the ones copied.
 */
KVMDBG_WARM void kvmdbg_points_cache_locked(struct kvmdbg_vcpu *v, uint64_t gen)
{
	const struct kvmdbg_vm *vm = v->vm;
	uint64_t filter = 0;
	unsigned int n = 0;

	if (v->pts_gen == gen)
		return;
	memset(v->slot_pt, 0, sizeof(v->slot_pt));
	for (unsigned int i = 0; i < KVMDBG_MAX_POINTS; i++) {
		const struct kvmdbg_hwpoint *p = &vm->points[i];

		if (!p->id)
			continue;
		KVMDBG_FOR_EACH_SLOT(p->slots, pool, slot)
			v->slot_pt[pool][slot] = *p;
		/* Every execution breakpoint holds a slot of its own. */
		if (p->type == KVMDBG_BREAK_HW && n < KVMDBG_MAX_SLOTS) {
			v->exec_addr[n] = p->addr;
			v->exec_slots[n] = p->slots;
			filter |= kvmdbg_exec_bit(p->addr);
			n++;
		}
	}
	v->exec_filter = filter;
	v->nr_exec_pts = n;
	v->pts_gen = gen;
}
