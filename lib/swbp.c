/* SPDX-License-Identifier: MIT */
/*
 * Software breakpoint table: open addressing with linear probing and
 * backward-shift deletion (no tombstones), so lookup, insert and delete are
 * O(1) expected at any size. 16 bytes an entry, load factor at most 3/4:
 * between 21 and 43 bytes per breakpoint.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvmdbg-int.h"

#define SWTAB_MIN_CAP 16

static size_t swtab_hash(uint64_t addr, size_t cap)
{
	/* Fibonacci hashing of a splitmix-style mixed key. */
	addr ^= addr >> 31;
	addr *= 0x9e3779b97f4a7c15ull;
	addr ^= addr >> 29;
	return (size_t)(addr >> 17) & (cap - 1);
}

struct kvmdbg_swbp *kvmdbg_swtab_find(const struct kvmdbg_swtab *t, uint64_t addr)
{
	if (addr == KVMDBG_SWTAB_EMPTY)
		return t->top_used ? (struct kvmdbg_swbp *)&t->top : NULL;
	if (!t->cap)
		return NULL;
	for (size_t i = swtab_hash(addr, t->cap);; i = (i + 1) & (t->cap - 1)) {
		struct kvmdbg_swbp *e = &t->e[i];

		if (e->addr == addr)
			return e;
		if (e->addr == KVMDBG_SWTAB_EMPTY)
			return NULL;
	}
}

static void swtab_place(struct kvmdbg_swbp *e, size_t cap, const struct kvmdbg_swbp *src)
{
	size_t i = swtab_hash(src->addr, cap);

	while (e[i].addr != KVMDBG_SWTAB_EMPTY)
		i = (i + 1) & (cap - 1);
	e[i] = *src;
}

int kvmdbg_swtab_reserve(struct kvmdbg_swtab *t)
{
	struct kvmdbg_swbp *e;
	size_t cap;

	if ((t->count + 1) * 4 <= t->cap * 3)
		return 0;
	cap = t->cap ? t->cap * 2 : SWTAB_MIN_CAP;
	if (cap > SIZE_MAX / sizeof(*e))
		return -ENOMEM;
	e = malloc(cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		e[i].addr = KVMDBG_SWTAB_EMPTY;
	for (size_t i = 0; i < t->cap; i++)
		if (t->e[i].addr != KVMDBG_SWTAB_EMPTY)
			swtab_place(e, cap, &t->e[i]);
	free(t->e);
	t->e = e;
	t->cap = cap;
	return 0;
}

struct kvmdbg_swbp *kvmdbg_swtab_add(struct kvmdbg_swtab *t, uint64_t addr)
{
	size_t i;

	if (addr == KVMDBG_SWTAB_EMPTY) {
		if (t->top_used)
			return NULL;
		t->top = (struct kvmdbg_swbp){.addr = addr};
		t->top_used = true;
		t->count++;
		return &t->top;
	}
	if ((t->count + 1) * 4 > t->cap * 3)
		return NULL;
	for (i = swtab_hash(addr, t->cap); t->e[i].addr != KVMDBG_SWTAB_EMPTY;
	     i = (i + 1) & (t->cap - 1))
		;
	t->e[i] = (struct kvmdbg_swbp){.addr = addr};
	t->count++;
	return &t->e[i];
}

void kvmdbg_swtab_del(struct kvmdbg_swtab *t, uint64_t addr)
{
	struct kvmdbg_swbp *hole = kvmdbg_swtab_find(t, addr);
	size_t mask = t->cap - 1, i, j;

	if (!hole)
		return;
	if (hole == &t->top) {
		t->top_used = false;
		t->count--;
		return;
	}
	i = (size_t)(hole - t->e);
	/* Backward-shift: pull later entries of the cluster into the hole when
	 * their home slot does not lie cyclically in (hole, entry]. */
	for (j = (i + 1) & mask; t->e[j].addr != KVMDBG_SWTAB_EMPTY; j = (j + 1) & mask) {
		size_t home = swtab_hash(t->e[j].addr, t->cap);

		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->e[i] = t->e[j];
			i = j;
		}
	}
	t->e[i].addr = KVMDBG_SWTAB_EMPTY;
	t->count--;
}

void kvmdbg_swtab_fini(struct kvmdbg_swtab *t)
{
	free(t->e);
	memset(t, 0, sizeof(*t));
}

size_t kvmdbg_swtab_bytes(const struct kvmdbg_swtab *t)
{
	return t->cap * sizeof(*t->e);
}
