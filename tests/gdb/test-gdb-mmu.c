/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of kvmdbg_gdb_translate() (gdb/mmu.c): page tables built here,
 * entry by entry from the architecture manuals' formats, in a fake sparse
 * guest-physical memory, for every x86 paging mode and every arm64
 * granule, both TTBRs, 48- and 52-bit addresses; hits, huge pages and
 * blocks at every legal level, reserved ones, unmapped, out-of-range and
 * non-canonical addresses, and bad paging states. Portable: any host.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kvmdbg/gdb.h>

#include "test-common.h"

#define BIT(n)        (1ULL << (n))
#define GENMASK(h, l) ((~0ULL >> (63 - (h))) & ~((1ULL << (l)) - 1))
/* --- a sparse fake guest-physical memory ------------------------------ */

struct region {
	uint64_t gpa, size, next; /* next: the bump allocator's offset */
	uint8_t *bytes;
};

struct fmem {
	struct region r[4];
	unsigned int n;
	unsigned int reads;
	int fail; /* the error the reader returns outside every region */
};

static struct region *fmem_add(struct fmem *m, uint64_t gpa, uint64_t size)
{
	struct region *r = &m->r[m->n++];

	ck_assert_uint_le(m->n, ARRAY_LEN(m->r));
	r->gpa = gpa;
	r->size = size;
	r->next = 0;
	r->bytes = calloc(1, size);
	ck_assert_ptr_nonnull(r->bytes);
	return r;
}

static void fmem_free(struct fmem *m)
{
	for (unsigned int i = 0; i < m->n; i++)
		free(m->r[i].bytes);
	memset(m, 0, sizeof(*m));
}

/* size bytes aligned to size (a table), zeroed; returns its gpa. */
static uint64_t fmem_alloc(struct region *r, uint64_t size)
{
	uint64_t off = (r->next + size - 1) & ~(size - 1);

	ck_assert_uint_le(off + size, r->size);
	r->next = off + size;
	return r->gpa + off;
}

static uint8_t *fmem_at(struct fmem *m, uint64_t gpa, size_t len)
{
	for (unsigned int i = 0; i < m->n; i++)
		if (gpa >= m->r[i].gpa && gpa - m->r[i].gpa <= m->r[i].size &&
		    len <= m->r[i].size - (gpa - m->r[i].gpa))
			return m->r[i].bytes + (gpa - m->r[i].gpa);
	return NULL;
}

static int fmem_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	struct fmem *m = ctx;
	const uint8_t *p = fmem_at(m, gpa, len);

	m->reads++;
	if (!p)
		return m->fail ? m->fail : -EFAULT;
	memcpy(buf, p, len);
	return 0;
}

/* Little-endian whatever the host, as the guest stores them. */
static void put(struct fmem *m, uint64_t gpa, uint64_t v, unsigned int size)
{
	uint8_t *p = fmem_at(m, gpa, size);

	ck_assert_ptr_nonnull(p);
	for (unsigned int i = 0; i < size; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(struct fmem *m, uint64_t gpa, unsigned int size)
{
	const uint8_t *p = fmem_at(m, gpa, size);
	uint64_t v = 0;

	ck_assert_ptr_nonnull(p);
	for (unsigned int i = size; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

/* translate, expecting success at gpa with contiguous bytes */
#define HIT(mmu, m, gva, want_gpa, want_len)                                                      \
	do {                                                                                      \
		uint64_t gpa_ = 0, len_ = 0;                                                      \
		int r_ = kvmdbg_gdb_translate((mmu), (gva), fmem_read, (m), &gpa_, &len_);        \
		REQ(r_ == 0, "%s:%d: %#" PRIx64 ": %d", __func__, __LINE__, (uint64_t)(gva), r_); \
		REQ_EQ(gpa_, want_gpa);                                                           \
		REQ_EQ(len_, want_len);                                                           \
	} while (0)

/* translate, expecting the error err and the outputs untouched */
#define MISS(mmu, m, gva, err)                                                            \
	do {                                                                              \
		uint64_t gpa_ = 0x5a5a, len_ = 0xa5a5;                                    \
		int r_ = kvmdbg_gdb_translate((mmu), (gva), fmem_read, (m), &gpa_, &len_); \
		REQ(r_ == (err), "%s:%d: %#" PRIx64 ": %d, not %d", __func__, __LINE__,   \
		    (uint64_t)(gva), r_, (err));                                          \
		REQ_EQ(gpa_, 0x5a5a);                                                     \
		REQ_EQ(len_, 0xa5a5);                                                     \
	} while (0)

/* --- x86 --------------------------------------------------------------- */

#define CR0_PG   BIT(31)
#define CR0_PE   BIT(0)
#define CR4_PSE  BIT(4)
#define CR4_PAE  BIT(5)
#define CR4_LA57 BIT(12)
#define EFER_LME BIT(8)
#define EFER_LMA BIT(10)
#define P        BIT(0)
#define RW       BIT(1)
#define PS       BIT(7)
#define NX       BIT(63)

static struct kvmdbg_gdb_mmu x86(uint64_t cr0, uint64_t cr3, uint64_t cr4, uint64_t efer)
{
	return (struct kvmdbg_gdb_mmu){ .sz = sizeof(struct kvmdbg_gdb_mmu),
					.arch = KVMDBG_GDB_ARCH_X86_64,
					.cr0 = cr0, .cr3 = cr3, .cr4 = cr4, .efer = efer };
}

START_TEST(test_x86_no_paging)
{
	struct fmem m = { 0 };
	struct kvmdbg_gdb_mmu real = x86(0, 0x1234000, 0, 0);
	struct kvmdbg_gdb_mmu prot = x86(CR0_PE, 0, CR4_PAE, 0);

	HIT(&real, &m, 0, 0, BIT(32));
	HIT(&real, &m, 0xffff0, 0xffff0, BIT(32) - 0xffff0);
	HIT(&prot, &m, 0xfffffffful, 0xfffffffful, 1);
	MISS(&real, &m, BIT(32), -EFAULT);
	MISS(&prot, &m, ~0ULL, -EFAULT);
	ck_assert_uint_eq(m.reads, 0); /* nothing walked */
}
END_TEST

START_TEST(test_x86_32bit)
{
	struct fmem m = { 0 };
	struct region *r = fmem_add(&m, 0x100000, 0x10000);
	uint64_t pd = fmem_alloc(r, 4096), pt = fmem_alloc(r, 4096);
	struct kvmdbg_gdb_mmu mmu = x86(CR0_PG | CR0_PE, pd | 0x18 /* PWT|PCD */, CR4_PSE, 0);
	struct kvmdbg_gdb_mmu nopse = mmu;

	nopse.cr4 = 0;
	/* 0x00403000: PDE 1, PTE 3 -> 0x0abcd000 */
	put(&m, pd + 4 * 1, pt | P | RW, 4);
	put(&m, pt + 4 * 3, 0x0abcd000 | P, 4);
	HIT(&mmu, &m, 0x00403000, 0x0abcd000, 4096);
	HIT(&mmu, &m, 0x00403ffe, 0x0abcdffe, 2);
	MISS(&mmu, &m, 0x00404000, -EFAULT); /* PTE 4 not present */
	MISS(&mmu, &m, 0x00800000, -EFAULT); /* PDE 2 not present */
	/* 0xc0000000 + 0x123456: PDE 768, a 4 MiB page at 0x12_3fc00000 (PSE-36) */
	put(&m, pd + 4 * 768, 0x3fc00000 | (0x12u << 13) | BIT(12) /* PAT */ | PS | P, 4);
	HIT(&mmu, &m, 0xc0123456, 0x123fd23456ULL, BIT(22) - 0x123456);
	/* without CR4.PSE the PS bit is ignored: PDE 768 points to a table
	 * at 0x3fc03000 (PAT and PSE-36 bits are address bits then), not in memory */
	MISS(&nopse, &m, 0xc0123456, -EFAULT);
	m.fail = -ERANGE;
	MISS(&nopse, &m, 0xc0123456, -ERANGE); /* the reader's error */
	m.fail = 0;
	HIT(&nopse, &m, 0x00403000, 0x0abcd000, 4096);
	/* linear addresses are 32-bit */
	MISS(&mmu, &m, BIT(32) | 0x00403000, -EFAULT);
	fmem_free(&m);
}
END_TEST

START_TEST(test_x86_pae)
{
	struct fmem m = { 0 };
	struct region *r = fmem_add(&m, 0x200000, 0x10000);
	uint64_t pdpt = fmem_alloc(r, 32), pd = fmem_alloc(r, 4096), pt = fmem_alloc(r, 4096);
	struct kvmdbg_gdb_mmu mmu = x86(CR0_PG | CR0_PE, pdpt, CR4_PAE | CR4_PSE, 0);

	ck_assert_uint_eq(pdpt & 31, 0);
	/* 0xc0000000: PDPTE 3; PDE 0 a table, PDE 1 a 2 MiB page above 4 GiB */
	put(&m, pdpt + 8 * 3, pd | P, 8);
	put(&m, pd + 8 * 0, pt | P | RW, 8);
	put(&m, pt + 8 * 511, 0x76543210000ULL | NX | P, 8);
	put(&m, pd + 8 * 1, 0x1234600000ULL | BIT(12) | PS | P, 8);
	HIT(&mmu, &m, 0xc01ff123, 0x76543210123ULL, 4096 - 0x123);
	HIT(&mmu, &m, 0xc0212345, 0x1234612345ULL, BIT(21) - 0x12345);
	MISS(&mmu, &m, 0xc01fe000, -EFAULT);   /* PTE 510 */
	MISS(&mmu, &m, 0xc0400000, -EFAULT);   /* PDE 2 */
	MISS(&mmu, &m, 0x80000000, -EFAULT);   /* PDPTE 2 */
	MISS(&mmu, &m, 0x1c0212345, -EFAULT);  /* beyond 32 bits */
	fmem_free(&m);
}
END_TEST

/* Long mode: levels 4 or 5; a page, a 2 MiB and a 1 GiB page, reserved PS. */
START_TEST(test_x86_long)
{
	const int levels = _i ? 5 : 4;
	const unsigned int top = levels == 5 ? 56 : 47;
	struct fmem m = { 0 };
	struct region *r = fmem_add(&m, 0x40000000, 0x100000);
	uint64_t root = fmem_alloc(r, 4096), t[5], base, gva;
	struct kvmdbg_gdb_mmu mmu = x86(CR0_PG | CR0_PE, root | 0x5 /* a PCID */,
					CR4_PAE | (levels == 5 ? CR4_LA57 : 0), EFER_LME | EFER_LMA);
	/* index at each level (4: PML5 .. 0: PT) for the high canonical half */
	const unsigned int idx[5] = { 0x12, 0x1fe, 0x100, 0x155, 0x1c0 };

	/* gva: the indexes above, sign-extended from bit top */
	gva = 0;
	for (int l = levels - 1; l >= 0; l--)
		gva |= (uint64_t)idx[l] << (12 + 9 * l);
	gva |= GENMASK(63, top);
	t[levels - 1] = root;
	for (int l = levels - 1; l > 0; l--) {
		t[l - 1] = fmem_alloc(r, 4096);
		put(&m, t[l] + 8 * idx[l], t[l - 1] | P | RW, 8);
	}
	put(&m, t[0] + 8 * idx[0], 0xfedcba987000ULL | NX | P, 8);
	HIT(&mmu, &m, gva + 0x321, 0xfedcba987321ULL, 4096 - 0x321);
	MISS(&mmu, &m, gva + 4096, -EFAULT);
	/* a 2 MiB page next to it, a 1 GiB page two PDPT entries on */
	put(&m, t[1] + 8 * (idx[1] + 1), 0x3ffe00000ULL | BIT(12) | PS | P, 8);
	base = gva + BIT(21) - (gva & (BIT(21) - 1));
	HIT(&mmu, &m, base + 0x1234, 0x3ffe01234ULL, BIT(21) - 0x1234);
	put(&m, t[2] + 8 * (idx[2] + 2), 0xfc0000000ULL | PS | P, 8);
	base = (gva & ~(BIT(30) - 1)) + 2 * BIT(30);
	HIT(&mmu, &m, base + 0x2345678, 0xfc2345678ULL, BIT(30) - 0x2345678);
	/* PS in the PML4 (and PML5): reserved, a fault */
	put(&m, t[3] + 8 * (idx[3] + 1), 0x8000000000ULL | PS | P, 8);
	MISS(&mmu, &m, (gva & ~(BIT(39) - 1)) + BIT(39), -EFAULT);
	if (levels == 5) {
		put(&m, t[4] + 8 * (idx[4] + 1), 0x1000000000000ULL | PS | P, 8);
		MISS(&mmu, &m, (gva & ~(BIT(48) - 1)) + BIT(48), -EFAULT);
	}
	/* non-canonical: bit top flipped, bits above kept; then the low half */
	MISS(&mmu, &m, gva ^ BIT(top), -EFAULT);
	MISS(&mmu, &m, gva & ~BIT(63), -EFAULT);
	MISS(&mmu, &m, gva & GENMASK(top - 1, 0), -EFAULT); /* canonical, idx unmapped */
	if (levels == 5) {
		/* canonical only with LA57: bits 56..63 zero, bit 47 and up used */
		struct kvmdbg_gdb_mmu four = mmu;
		uint64_t low = (gva & GENMASK(55, 0)) & ~BIT(55);

		put(&m, root + 8 * ((low >> 48) & 511), t[3] | P, 8);
		HIT(&mmu, &m, low + 0x321, 0xfedcba987321ULL, 4096 - 0x321);
		four.cr4 &= ~CR4_LA57;
		MISS(&four, &m, low + 0x321, -EFAULT);
	}
	fmem_free(&m);
}
END_TEST

/* --- arm64 ------------------------------------------------------------- */

#define SCTLR_M BIT(0)
#define VALID   BIT(0)
#define TABLE   BIT(1) /* and page, at level 3 */
#define AF      BIT(10)

/* One way of walking, with its expectations written out. */
struct a64cfg {
	const char *name;
	unsigned int g;        /* log2 granule */
	unsigned int tsz;      /* T0SZ / T1SZ */
	bool ds;               /* TCR.DS */
	unsigned int ips;      /* TCR.IPS */
	int start;             /* the first level */
	unsigned int top_bits; /* index bits at the first level */
	unsigned int blocks;   /* bit level: a block is legal at that level */
};

#define L(n) (1u << (n))
static const struct a64cfg a64cfgs[] = {
	{ "4K/48", 12, 16, false, 5, 0, 9, L(1) | L(2) },
	{ "4K/39", 12, 25, false, 2, 1, 9, L(1) | L(2) },
	{ "4K/25", 12, 39, false, 0, 2, 4, L(2) },
	{ "4K/48+DS", 12, 16, true, 6, 0, 9, L(0) | L(1) | L(2) },
	{ "4K/52+DS", 12, 12, true, 6, -1, 4, L(0) | L(1) | L(2) },
	{ "16K/48", 14, 16, false, 5, 0, 1, L(2) },
	{ "16K/47", 14, 17, false, 4, 1, 11, L(2) },
	{ "16K/52+DS", 14, 12, true, 6, 0, 5, L(1) | L(2) },
	{ "64K/48", 16, 16, false, 5, 1, 6, L(2) },
	{ "64K/42", 16, 22, false, 3, 2, 13, L(2) },
	{ "64K/52+LPA", 16, 12, false, 6, 1, 10, L(1) | L(2) },
	{ "64K/48+DS", 16, 16, true, 5, 1, 6, L(2) }, /* DS means nothing with 64K */
};

static const unsigned int ips_bits[] = { 32, 36, 40, 42, 44, 48, 52 };

static bool lpa52(const struct a64cfg *c)
{
	return c->ds || (c->g == 16 && c->ips == 6);
}

/* An output or next-table address in a descriptor. */
static uint64_t a64_desc(const struct a64cfg *c, uint64_t pa)
{
	if (c->ds && c->g != 16)
		return (pa & GENMASK(49, c->g)) | ((pa >> 50) & 3) << 8;
	if (lpa52(c))
		return (pa & GENMASK(47, 16)) | ((pa >> 48) & 0xf) << 12;
	return pa & GENMASK(47, c->g);
}

static uint64_t a64_tcr(const struct a64cfg *c, bool hi)
{
	/* TG0: 4K 0, 64K 1, 16K 2; TG1: 16K 1, 4K 2, 64K 3 */
	uint64_t tg0 = c->g == 12 ? 0 : c->g == 16 ? 1 : 2;
	uint64_t tg1 = c->g == 12 ? 2 : c->g == 16 ? 3 : 1;
	/* the other half: 4K, 48 bits, walks disabled (EPD) */
	uint64_t tcr = (uint64_t)c->ips << 32 | (c->ds ? BIT(59) : 0);

	if (hi)
		tcr |= (uint64_t)c->tsz << 16 | tg1 << 30 | 16 | BIT(7);
	else
		tcr |= c->tsz | tg0 << 14 | 16ULL << 16 | 2ULL << 30 | BIT(23);
	return tcr;
}

static uint64_t a64_ttbr(const struct a64cfg *c, uint64_t root)
{
	if (lpa52(c))
		return (root & GENMASK(47, 6)) | ((root >> 48) & 0xf) << 2 | 0xabcdULL << 48 | 1;
	return root | 0xabcdULL << 48 | 1; /* an ASID and CnP */
}

static uint64_t a64_undesc(const struct a64cfg *c, uint64_t d)
{
	if (c->ds && c->g != 16)
		return (d & GENMASK(49, c->g)) | ((d >> 8) & 3) << 50;
	if (lpa52(c))
		return (d & GENMASK(47, 16)) | ((d >> 12) & 0xf) << 48;
	return d & GENMASK(47, c->g);
}

/* Map gva to pa with a leaf (a page at level 3, else a block) at level
 * leaf; returns where the leaf descriptor is. */
static uint64_t a64_map(struct fmem *m, struct region *r, const struct a64cfg *c, uint64_t root,
			uint64_t gva, uint64_t pa, int leaf)
{
	uint64_t table = root;

	for (int l = c->start;; l++) {
		unsigned int shift = c->g + (c->g - 3) * (unsigned int)(3 - l);
		unsigned int bits = l == c->start ? c->top_bits : c->g - 3;
		uint64_t slot = table + 8 * ((gva >> shift) & (BIT(bits) - 1)), d;

		if (l == leaf) {
			put(m, slot, a64_desc(c, pa) | AF | VALID | (l == 3 ? TABLE : 0), 8);
			return slot;
		}
		d = get(m, slot, 8);
		if (!(d & VALID)) {
			uint64_t next = fmem_alloc(r, BIT(c->g));

			put(m, slot, a64_desc(c, next) | TABLE | VALID, 8);
			table = next;
		} else {
			table = a64_undesc(c, d);
		}
	}
}

static struct kvmdbg_gdb_mmu a64(uint64_t sctlr, uint64_t tcr, uint64_t ttbr0, uint64_t ttbr1)
{
	return (struct kvmdbg_gdb_mmu){ .sz = sizeof(struct kvmdbg_gdb_mmu),
					.arch = KVMDBG_GDB_ARCH_AARCH64, .sctlr_el1 = sctlr,
					.tcr_el1 = tcr, .ttbr0_el1 = ttbr0, .ttbr1_el1 = ttbr1 };
}

START_TEST(test_a64_mmu_off)
{
	struct fmem m = { 0 };
	struct kvmdbg_gdb_mmu mmu = a64(0x30d00800, 0x7ffffffff, 1, 1);

	HIT(&mmu, &m, 0x40080000, 0x40080000, BIT(52) - 0x40080000);
	HIT(&mmu, &m, BIT(52) - 1, BIT(52) - 1, 1);
	MISS(&mmu, &m, BIT(52), -EFAULT);
	MISS(&mmu, &m, 0xffff800008000000ULL, -EFAULT);
	ck_assert_uint_eq(m.reads, 0);
}
END_TEST

/*
 * Every configuration, both halves (_i = config * 2 + half): a leaf at
 * each level from the first to 3, a hit (page or block) where the granule
 * allows one and a fault where not, the neighbours unmapped, the other
 * half disabled, addresses outside the region, a reserved level-3 entry.
 */
START_TEST(test_a64_walks)
{
	const struct a64cfg *c = &a64cfgs[_i / 2];
	const bool hi = _i & 1;
	const unsigned int va_bits = 64 - c->tsz, pa_bits = ips_bits[c->ips];
	/* the tables high up in the physical address space: bits 51:48 used */
	const uint64_t tables_at = pa_bits == 52 ? 0xf000000000000ULL
				 : pa_bits >= 48 ? 0x7f0000000000ULL : 0x80000000ULL;
	const uint64_t pattern = 0x5a5a5a5a5a5a5a5aULL, pa_pattern = 0xfedcba9876543210ULL;
	unsigned int hits = 0;

	for (int leaf = c->start; leaf <= 3; leaf++) {
		unsigned int shift = c->g + (c->g - 3) * (unsigned int)(3 - leaf);
		bool legal = leaf == 3 || (leaf >= 0 && (c->blocks & L(leaf)));
		struct fmem m = { 0 };
		struct region *r = fmem_add(&m, tables_at, 8 * BIT(c->g));
		uint64_t root = fmem_alloc(r, BIT(c->g)), gva, pa, off, slot;
		struct kvmdbg_gdb_mmu mmu;

		gva = pattern & GENMASK(va_bits - 1, shift);
		if (hi)
			gva |= GENMASK(63, va_bits);
		pa = pa_pattern & GENMASK(pa_bits - 1, shift);
		off = (pattern >> 3) & (BIT(shift) - 1);
		mmu = a64(SCTLR_M | 0x30d00800, a64_tcr(c, hi), hi ? 0 : a64_ttbr(c, root),
			  hi ? a64_ttbr(c, root) : 0);
		slot = a64_map(&m, r, c, root, gva, pa, leaf);
		if (!legal) {
			MISS(&mmu, &m, gva, -EFAULT);
			fmem_free(&m);
			continue;
		}
		hits++;
		HIT(&mmu, &m, gva, pa, BIT(shift));
		HIT(&mmu, &m, gva + off, pa + off, BIT(shift) - off);
		HIT(&mmu, &m, gva + BIT(shift) - 1, pa + BIT(shift) - 1, 1);
		MISS(&mmu, &m, gva + BIT(shift), -EFAULT);
		MISS(&mmu, &m, gva - 1, -EFAULT);
		/* the same low bits in the other half: its walks are disabled (EPD) */
		MISS(&mmu, &m, gva ^ GENMASK(63, va_bits), -EFAULT);
		/* one bit above the region flipped: outside it */
		MISS(&mmu, &m, gva ^ BIT(va_bits), -EFAULT);
		MISS(&mmu, &m, gva ^ BIT(63), -EFAULT);
		if (leaf == 3) {
			/* bits 1:0 = 01 at level 3: reserved */
			put(&m, slot, get(&m, slot, 8) & ~TABLE, 8);
			MISS(&mmu, &m, gva, -EFAULT);
		} else {
			/* the block as a table instead: its table is not in memory */
			put(&m, slot, get(&m, slot, 8) | TABLE, 8);
			m.fail = -ENXIO;
			MISS(&mmu, &m, gva, -ENXIO);
		}
		fmem_free(&m);
	}
	ck_assert_msg(hits >= 2, "%s: %u hits: a page and at least one block size", c->name, hits);
}
END_TEST

/* TTBR0 and TTBR1 at once, each with its own tables and granule. */
START_TEST(test_a64_ttbr1)
{
	struct fmem m = { 0 };
	struct region *r = fmem_add(&m, 0x40000000, 0x100000);
	const struct a64cfg lo = { "4K/48", 12, 16, false, 5, 0, 9, 0 };
	const struct a64cfg hi = { "64K/42", 16, 22, false, 5, 2, 13, 0 };
	uint64_t root0 = fmem_alloc(r, 4096), root1 = fmem_alloc(r, 65536);
	/* TG0 4K T0SZ 16, TG1 64K T1SZ 22, IPS 48 bits */
	uint64_t tcr = 16 | 22ULL << 16 | 3ULL << 30 | 5ULL << 32;
	struct kvmdbg_gdb_mmu mmu = a64(SCTLR_M, tcr, root0 | 1, root1 | 0x42ULL << 48);

	a64_map(&m, r, &lo, root0, 0x0000ffffc0001000ULL, 0x40200000, 3);
	a64_map(&m, r, &hi, root1, 0xffffffc000010000ULL, 0x48000000, 3);
	a64_map(&m, r, &hi, root1, 0xffffffffe0000000ULL, 0x60000000, 2); /* 512 MiB block */
	HIT(&mmu, &m, 0x0000ffffc0001008ULL, 0x40200008, 4096 - 8);
	HIT(&mmu, &m, 0xffffffc000012345ULL, 0x48002345, 65536 - 0x2345);
	HIT(&mmu, &m, 0xffffffffe1234567ULL, 0x61234567, BIT(29) - 0x1234567);
	/* the same low bits through the other TTBR: nothing there */
	MISS(&mmu, &m, 0xffffffffc0001008ULL, -EFAULT);
	MISS(&mmu, &m, 0x000000c000012345ULL, -EFAULT);
	/* 42-bit TTBR1 region: bit 41 clear is below it */
	MISS(&mmu, &m, 0xfffffdc000012345ULL, -EFAULT);
	/* bit 55 picks the TTBR: with TBI1 the top byte is anything */
	MISS(&mmu, &m, 0x00ffffc000012345ULL, -EFAULT);
	mmu.tcr_el1 |= BIT(38);
	HIT(&mmu, &m, 0x00ffffc000012345ULL, 0x48002345, 65536 - 0x2345);
	HIT(&mmu, &m, 0x5affffc000012345ULL, 0x48002345, 65536 - 0x2345);
	MISS(&mmu, &m, 0x5a7fffc000012345ULL, -EFAULT); /* bit 55 clear: TTBR0, unmapped */
	MISS(&mmu, &m, 0x5a00ffffc0001008ULL, -EFAULT); /* TBI0 clear */
	mmu.tcr_el1 |= BIT(37);
	HIT(&mmu, &m, 0x5a00ffffc0001008ULL, 0x40200008, 4096 - 8);
	/* EPD1: no TTBR1 walks */
	mmu.tcr_el1 |= BIT(23);
	MISS(&mmu, &m, 0xffffffc000012345ULL, -EFAULT);
	HIT(&mmu, &m, 0x0000ffffc0001008ULL, 0x40200008, 4096 - 8);
	mmu.tcr_el1 |= BIT(7);
	MISS(&mmu, &m, 0x0000ffffc0001008ULL, -EFAULT);
	fmem_free(&m);
}
END_TEST

/* TCR.IPS bounds table and output addresses (an address size fault). */
START_TEST(test_a64_ips)
{
	struct fmem m = { 0 };
	struct region *r = fmem_add(&m, 0x40000000, 0x10000);
	const struct a64cfg c = { "4K/39", 12, 25, false, 0, 1, 9, 0 };
	uint64_t root = fmem_alloc(r, 4096);
	/* IPS 32 bits */
	struct kvmdbg_gdb_mmu mmu = a64(SCTLR_M, 25 | 16ULL << 16 | 2ULL << 30, root, 0);
	uint64_t slot = a64_map(&m, r, &c, root, 0x1000, 0xfffff000, 3);

	HIT(&mmu, &m, 0x1000, 0xfffff000, 4096);
	put(&m, slot, get(&m, slot, 8) + BIT(32), 8); /* 0x1_ffff_f000 */
	MISS(&mmu, &m, 0x1000, -EFAULT);
	mmu.tcr_el1 |= 1ULL << 32; /* 36 bits */
	HIT(&mmu, &m, 0x1000, 0x1fffff000ULL, 4096);
	/* the first table itself beyond 32 bits */
	mmu.tcr_el1 &= ~(7ULL << 32);
	mmu.ttbr0_el1 = BIT(33);
	m.fail = -ENXIO; /* not read at all */
	MISS(&mmu, &m, 0x1000, -EFAULT);
	fmem_free(&m);
}
END_TEST

/* Paging states no processor walks with, and the sized struct's rules. */
START_TEST(test_bad_state)
{
	struct fmem m = { 0 };
	struct region *r = fmem_add(&m, 0x40000000, 0x10000);
	const struct a64cfg c = { "4K/48", 12, 16, false, 5, 0, 9, 0 };
	uint64_t root = fmem_alloc(r, 4096), root1 = fmem_alloc(r, 4096);
	const uint64_t tcr = 16 | 16ULL << 16 | 2ULL << 30 | 5ULL << 32;
	struct kvmdbg_gdb_mmu good = a64(SCTLR_M, tcr, root, root1), mmu;
	struct {
		struct kvmdbg_gdb_mmu mmu;
		uint64_t newer[2];
	} big = { good, { 0, 0 } };
	uint64_t gpa = 7, len = 9;

	a64_map(&m, r, &c, root, 0x1000, 0x2000, 3);
	a64_map(&m, r, &c, root1, 0xffff000000001000ULL, 0x3000, 3);
	HIT(&good, &m, 0x1000, 0x2000, 4096);
	HIT(&good, &m, 0xffff000000001000ULL, 0x3000, 4096);

	mmu = good; mmu.tcr_el1 |= 3ULL << 14; /* TG0 reserved */
	MISS(&mmu, &m, 0x1000, -EINVAL);
	HIT(&mmu, &m, 0xffff000000001000ULL, 0x3000, 4096);
	mmu = good; mmu.tcr_el1 &= ~(3ULL << 30); /* TG1 reserved */
	MISS(&mmu, &m, 0xffff000000001000ULL, -EINVAL);
	HIT(&mmu, &m, 0x1000, 0x2000, 4096);
	mmu = good; mmu.tcr_el1 |= 7ULL << 32; /* IPS reserved */
	MISS(&mmu, &m, 0x1000, -EINVAL);
	mmu = good; mmu.tcr_el1 = (mmu.tcr_el1 & ~0x3fULL) | 15; /* 49 bits without DS */
	MISS(&mmu, &m, 0x1000, -EINVAL);
	mmu = good; mmu.tcr_el1 = (mmu.tcr_el1 & ~0x3fULL) | 49; /* too small */
	MISS(&mmu, &m, 0x1000, -EINVAL);
	mmu = good; mmu.tcr_el1 = (mmu.tcr_el1 & ~0x3fULL) | 48; /* 16 bits: level 3 only */
	MISS(&mmu, &m, 0x1000, -EFAULT); /* root read as a level-3 table: entry 1 empty */
	mmu = good; mmu.tcr_el1 = (mmu.tcr_el1 & ~0x3fULL) | 1ULL << 14 | 11; /* 64K, 53 bits */
	MISS(&mmu, &m, 0x1000, -EINVAL);

	mmu = good; mmu.arch = 0;
	MISS(&mmu, &m, 0x1000, -EINVAL);
	mmu.arch = (enum kvmdbg_gdb_arch)3;
	MISS(&mmu, &m, 0x1000, -EINVAL);
	MISS(NULL, &m, 0x1000, -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_translate(&good, 0x1000, NULL, &m, &gpa, &len), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_translate(&good, 0x1000, fmem_read, &m, NULL, &len), -EINVAL);
	ck_assert_uint_eq(gpa, 7);
	ck_assert_uint_eq(len, 9);
	/* contiguous is optional */
	ck_assert_int_eq(kvmdbg_gdb_translate(&good, 0x1008, fmem_read, &m, &gpa, NULL), 0);
	ck_assert_uint_eq(gpa, 0x2008);

	/* sz: too small; a newer caller's zero fields are fine, others not */
	mmu = good; mmu.sz = 0;
	MISS(&mmu, &m, 0x1000, -EINVAL);
	big.mmu.sz = sizeof(big);
	HIT(&big.mmu, &m, 0x1000, 0x2000, 4096);
	big.newer[1] = 1;
	MISS(&big.mmu, &m, 0x1000, -E2BIG);
	/* an older caller's struct ends before ttbr1_el1: read as zero */
	mmu = good;
	mmu.sz = offsetof(struct kvmdbg_gdb_mmu, ttbr1_el1);
	HIT(&mmu, &m, 0x1000, 0x2000, 4096);
	ck_assert_uint_eq(mmu.ttbr1_el1, root1); /* not looked at: the walk reads at 0 */
	m.fail = -ENXIO;
	MISS(&mmu, &m, 0xffff000000001000ULL, -ENXIO);
	fmem_free(&m);
}
END_TEST

TEST_SUITE(gdb_mmu)
{
	add_test(tc, test_x86_no_paging);
	add_test(tc, test_x86_32bit);
	add_test(tc, test_x86_pae);
	add_loop_test(tc, test_x86_long, 0, 2);
	add_test(tc, test_a64_mmu_off);
	add_loop_test(tc, test_a64_walks, 0, 2 * (int)ARRAY_LEN(a64cfgs));
	add_test(tc, test_a64_ttbr1);
	add_test(tc, test_a64_ips);
	add_test(tc, test_bad_state);
}
