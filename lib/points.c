/* SPDX-License-Identifier: MIT */
/*
 * The VM's point table (struct kvmdbg_vm.points): the hardware breakpoints
 * and watchpoints inserted, each with its id and the slots it holds. Every
 * search of the table is here. Called with vm->lock held.
 */
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
uint32_t kvmdbg_point_exec_slots_at(const struct kvmdbg_vm *vm, uint64_t pc)
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
