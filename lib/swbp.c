/* SPDX-License-Identifier: MIT */
/*
 * Software breakpoint table: open addressing with linear probing and
 * backward-shift deletion (no tombstones), so lookup, insert and delete are
 * O(1) expected at any size. 16 bytes an entry, load factor at most 3/4,
 * and the lock-free Bloom filter (1 byte an entry, and its retired smaller
 * ones: at most 1 more): between 24 and 48 bytes per breakpoint. The table
 * at its first size (16 entries) and its filter live in struct
 * kvmdbg_swtab itself: inside the VM's page (issue 17).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvmdbg-int.h"

static void swtab_place(struct kvmdbg_swbp *e, size_t cap, const struct kvmdbg_swbp *src)
{
	size_t i = kvmdbg_swtab_hash(src->addr, cap);

	while (e[i].addr != KVMDBG_SWTAB_EMPTY)
		i = (i + 1) & (cap - 1);
	e[i] = *src;
}

static void swfilter_set(struct kvmdbg_swfilter *f, uint64_t addr)
{
	uint64_t h = kvmdbg_swfilter_hash(addr);

	/* seq_cst: before the generation bump that follows (kvmdbg_cover_sync). */
	atomic_fetch_or(&f->w[h & f->mask], kvmdbg_swfilter_bits(h));
}

/* Set the addresses of t in the empty filter f. */
static void swfilter_fill(struct kvmdbg_swfilter *f, const struct kvmdbg_swtab *t)
{
	for (size_t i = 0; i < t->cap; i++)
		if (t->e[i].addr != KVMDBG_SWTAB_EMPTY)
			swfilter_set(f, t->e[i].addr);
	if (t->top_used)
		swfilter_set(f, KVMDBG_SWTAB_EMPTY);
}

/* A filter for a table of cap entries, with the addresses of t in it: the
 * table's own first one at the first size, else on the heap. */
static struct kvmdbg_swfilter *swfilter_new(struct kvmdbg_swtab *t, size_t cap)
{
	size_t words = cap * KVMDBG_SWFILTER_BITS_PER_ENTRY / 64;
	struct kvmdbg_swfilter *f;

	if (words == KVMDBG_SWFILTER_MIN_WORDS) {
		f = &t->first_filter;
		*f = (struct kvmdbg_swfilter){.mask = words - 1, .w = t->first_w};
		for (size_t i = 0; i < words; i++)
			atomic_store_explicit(&t->first_w[i], 0, memory_order_relaxed);
	} else {
		if (words > (SIZE_MAX - sizeof(*f)) / sizeof(f->w[0]))
			return NULL;
		f = calloc(1, sizeof(*f) + words * sizeof(f->w[0]));
		if (!f)
			return NULL;
		f->mask = words - 1;
		f->w = (_Atomic uint64_t *)(f + 1);
	}
	swfilter_fill(f, t);
	return f;
}

/* The storage of a table of cap entries: the table's own at the first size. */
static struct kvmdbg_swbp *swtab_storage(struct kvmdbg_swtab *t, size_t cap)
{
	if (cap == KVMDBG_SWTAB_MIN_CAP)
		return t->first_e;
	if (cap > SIZE_MAX / sizeof(struct kvmdbg_swbp))
		return NULL;
	return malloc(cap * sizeof(struct kvmdbg_swbp));
}

static void swtab_storage_free(struct kvmdbg_swtab *t, struct kvmdbg_swbp *e)
{
	if (e != t->first_e)
		free(e);
}

static void swfilter_free(struct kvmdbg_swtab *t, struct kvmdbg_swfilter *f)
{
	if (f != &t->first_filter)
		free(f);
}

int kvmdbg_swtab_reserve(struct kvmdbg_swtab *t)
{
	struct kvmdbg_swfilter *f;
	struct kvmdbg_swbp *e;
	size_t cap;

	if ((t->count + 1) * 4 <= t->cap * 3)
		return 0;
	cap = t->cap ? t->cap * 2 : KVMDBG_SWTAB_MIN_CAP;
	if (!cap)
		return -ENOMEM;
	e = swtab_storage(t, cap);
	if (!e)
		return -ENOMEM;
	f = swfilter_new(t, cap);
	if (!f) {
		swtab_storage_free(t, e);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cap; i++)
		e[i].addr = KVMDBG_SWTAB_EMPTY;
	for (size_t i = 0; i < t->cap; i++)
		if (t->e[i].addr != KVMDBG_SWTAB_EMPTY)
			swtab_place(e, cap, &t->e[i]);
	swtab_storage_free(t, t->e);
	t->e = e;
	t->cap = cap;
	/* Readers may still hold the old filter: kept until fini. */
	f->retired = atomic_load_explicit(&t->filter, memory_order_relaxed);
	atomic_store(&t->filter, f);
	return 0;
}

struct kvmdbg_swbp *kvmdbg_swtab_add(struct kvmdbg_swtab *t, uint64_t addr)
{
	struct kvmdbg_swfilter *f = atomic_load_explicit(&t->filter, memory_order_relaxed);
	size_t i;

	if (addr == KVMDBG_SWTAB_EMPTY) {
		if (t->top_used)
			return NULL;
		if (!f)
			return NULL;
		t->top = (struct kvmdbg_swbp){.addr = addr};
		t->top_used = true;
		t->count++;
		swfilter_set(f, addr);
		return &t->top;
	}
	if ((t->count + 1) * 4 > t->cap * 3)
		return NULL;
	for (i = kvmdbg_swtab_hash(addr, t->cap); t->e[i].addr != KVMDBG_SWTAB_EMPTY;
	     i = (i + 1) & (t->cap - 1))
		;
	t->e[i] = (struct kvmdbg_swbp){.addr = addr};
	t->count++;
	swfilter_set(f, addr);
	return &t->e[i];
}

/* The table is empty: no address can be in it any more (the bits of the
 * ones removed stay set until then). */
static void swfilter_clear_if_empty(struct kvmdbg_swtab *t)
{
	struct kvmdbg_swfilter *f = atomic_load_explicit(&t->filter, memory_order_relaxed);

	if (t->count || !f)
		return;
	for (size_t i = 0; i <= f->mask; i++)
		atomic_store_explicit(&f->w[i], 0, memory_order_relaxed);
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
		swfilter_clear_if_empty(t);
		return;
	}
	i = (size_t)(hole - t->e);
	/* Backward-shift: pull later entries of the cluster into the hole when
	 * their home slot does not lie cyclically in (hole, entry]. */
	for (j = (i + 1) & mask; t->e[j].addr != KVMDBG_SWTAB_EMPTY; j = (j + 1) & mask) {
		size_t home = kvmdbg_swtab_hash(t->e[j].addr, t->cap);

		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->e[i] = t->e[j];
			i = j;
		}
	}
	t->e[i].addr = KVMDBG_SWTAB_EMPTY;
	t->count--;
	swfilter_clear_if_empty(t);
}

void kvmdbg_swtab_fini(struct kvmdbg_swtab *t)
{
	struct kvmdbg_swfilter *f = atomic_load_explicit(&t->filter, memory_order_relaxed);

	while (f) {
		struct kvmdbg_swfilter *next = f->retired;

		swfilter_free(t, f);
		f = next;
	}
	swtab_storage_free(t, t->e);
	t->e = NULL;
	t->cap = t->count = 0;
	t->top_used = false;
	memset(&t->top, 0, sizeof(t->top));
	atomic_store_explicit(&t->filter, NULL, memory_order_relaxed);
}

size_t kvmdbg_swtab_bytes(const struct kvmdbg_swtab *t)
{
	size_t n = t->cap * sizeof(*t->e);

	for (const struct kvmdbg_swfilter *f = atomic_load_explicit(&t->filter, memory_order_relaxed);
	     f; f = f->retired)
		n += sizeof(*f) + (f->mask + 1) * sizeof(f->w[0]);
	return n;
}
