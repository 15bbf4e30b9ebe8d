// SPDX-License-Identifier: MIT
/*
 * Guest page walks (kvmdbg_gdb_translate): x86 no paging, 32-bit, PAE,
 * 4- and 5-level paging; arm64 EL1&0 stage 1 with 4, 16 and 64 KiB
 * granules, TTBR0/TTBR1, 48- and 52-bit addresses. Written from the
 * architecture manuals' descriptions of the formats (Intel SDM vol. 3
 * chapter 4, Arm ARM D8); entries are decoded as little-endian bytes, so
 * the walk is the same on any host.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "gdb-int.h"

#define BIT(n)         (1ULL << (n))
#define GENMASK(h, l)  ((~0ULL >> (63 - (h))) & ~((1ULL << (l)) - 1))

struct walk {
	kvmdbg_gdb_phys_read_fn read;
	void *ctx;
	uint64_t gva;
	uint64_t gpa, len; /* the result */
};

/* One table entry of 4 or 8 bytes, little-endian whatever the host. */
static int entry(struct walk *w, uint64_t addr, unsigned int size, uint64_t *out)
{
	uint8_t b[8];
	uint64_t v = 0;
	int r = w->read(w->ctx, addr, b, size);

	if (r)
		return r < 0 ? r : -EIO;
	for (unsigned int i = size; i-- > 0;)
		v = v << 8 | b[i];
	*out = v;
	return 0;
}

/* The page or block of size bytes at base maps gva. */
static int leaf(struct walk *w, uint64_t base, uint64_t size)
{
	uint64_t off = w->gva & (size - 1);

	w->gpa = (base & ~(size - 1)) | off;
	w->len = size - off;
	return 0;
}

/* --- x86 ------------------------------------------------------------- */

#define X86_CR0_PG   BIT(31)
#define X86_CR4_PSE  BIT(4)
#define X86_CR4_PAE  BIT(5)
#define X86_CR4_LA57 BIT(12)
#define X86_EFER_LMA BIT(10)
#define X86_P        BIT(0)
#define X86_PS       BIT(7)
#define X86_ADDR     GENMASK(51, 12) /* the widest MAXPHYADDR */

/* 32-bit paging: 4-byte entries, a 1024-entry directory at CR3[31:12]. */
static int x86_walk32(const struct kvmdbg_gdb_mmu *m, struct walk *w)
{
	uint64_t pde, pte;
	int r;

	r = entry(w, (m->cr3 & GENMASK(31, 12)) + 4 * (w->gva >> 22), 4, &pde);
	if (r)
		return r;
	if (!(pde & X86_P))
		return -EFAULT;
	if ((pde & X86_PS) && (m->cr4 & X86_CR4_PSE)) /* 4 MiB; PA[39:32] in bits 20:13 */
		return leaf(w, (pde & GENMASK(31, 22)) | ((pde >> 13) & 0xff) << 32, BIT(22));
	r = entry(w, (pde & GENMASK(31, 12)) + 4 * ((w->gva >> 12) & 1023), 4, &pte);
	if (r)
		return r;
	if (!(pte & X86_P))
		return -EFAULT;
	return leaf(w, pte & GENMASK(31, 12), BIT(12));
}

/*
 * PAE and long mode: 8-byte entries, 512 a table. levels tables of 9 bits
 * each from table down to the page table; PS makes a leaf in the page
 * directory (2 MiB) and in the PDPT (1 GiB, long mode only: the PAE PDPT
 * is walked by the caller), and is reserved above.
 */
static int x86_walk64(struct walk *w, uint64_t table, int levels)
{
	for (int level = levels - 1; level >= 0; level--) {
		unsigned int shift = 12 + 9 * (unsigned int)level;
		uint64_t e;
		int r = entry(w, table + 8 * ((w->gva >> shift) & 511), 8, &e);

		if (r)
			return r;
		if (!(e & X86_P))
			return -EFAULT;
		if (level == 0)
			return leaf(w, e & X86_ADDR, BIT(12));
		if (e & X86_PS) {
			if (level > 2)
				return -EFAULT; /* reserved bit set: a page fault */
			return leaf(w, e & X86_ADDR, BIT(shift));
		}
		table = e & X86_ADDR;
	}
	return -EFAULT; /* not reached: level 0 always ends the walk */
}

static int x86_walk(const struct kvmdbg_gdb_mmu *m, struct walk *w)
{
	uint64_t pdpte;
	int r;

	if (!(m->cr0 & X86_CR0_PG)) {
		if (w->gva >> 32)
			return -EFAULT; /* linear addresses are 32 bits wide */
		w->gpa = w->gva;
		w->len = BIT(32) - w->gva;
		return 0;
	}
	if (m->efer & X86_EFER_LMA) {
		int levels = (m->cr4 & X86_CR4_LA57) ? 5 : 4;
		unsigned int top = 12 + 9 * (unsigned int)levels - 1; /* 47 or 56 */
		uint64_t high = w->gva >> top;

		/* canonical: bits 63..top all copies of bit top */
		if (high != 0 && high != (~0ULL >> top))
			return -EFAULT;
		return x86_walk64(w, m->cr3 & X86_ADDR, levels);
	}
	if (w->gva >> 32)
		return -EFAULT;
	if (!(m->cr4 & X86_CR4_PAE))
		return x86_walk32(m, w);
	/* PAE: four PDPTEs at CR3[31:5], then a page directory and page table */
	r = entry(w, (m->cr3 & GENMASK(31, 5)) + 8 * (w->gva >> 30), 8, &pdpte);
	if (r)
		return r;
	if (!(pdpte & X86_P))
		return -EFAULT;
	return x86_walk64(w, pdpte & X86_ADDR, 2);
}

/* --- arm64 ----------------------------------------------------------- */

#define SCTLR_M      BIT(0)
#define TCR_T0SZ(t)  ((unsigned int)(t) & 0x3f)
#define TCR_EPD0     BIT(7)
#define TCR_TG0(t)   ((unsigned int)((t) >> 14) & 3)
#define TCR_T1SZ(t)  ((unsigned int)((t) >> 16) & 0x3f)
#define TCR_EPD1     BIT(23)
#define TCR_TG1(t)   ((unsigned int)((t) >> 30) & 3)
#define TCR_IPS(t)   ((unsigned int)((t) >> 32) & 7)
#define TCR_TBI0     BIT(37)
#define TCR_TBI1     BIT(38)
#define TCR_DS       BIT(59)
#define DESC_VALID   BIT(0)
#define DESC_TABLE   BIT(1) /* levels 0..2: table (1) or block (0); level 3: page (1) */

/* The walk's fixed parameters, from TCR_EL1 and the half VA bit 55 selects. */
struct a64 {
	unsigned int granule;  /* 12, 14 or 16: log2 of the granule */
	unsigned int pa_bits;  /* TCR.IPS */
	bool ds;               /* FEAT_LPA2 formats (TCR.DS, 4 and 16 KiB) */
	bool lpa64k;           /* FEAT_LPA formats (64 KiB with a 52-bit IPS) */
};

/* A descriptor's output (or next-table) address, per format. */
static uint64_t a64_oa(const struct a64 *a, uint64_t d)
{
	if (a->ds)
		return (d & GENMASK(49, a->granule)) | ((d >> 8) & 3) << 50;
	if (a->lpa64k)
		return (d & GENMASK(47, 16)) | ((d >> 12) & 0xf) << 48;
	return d & GENMASK(47, a->granule);
}

/* Whether a level may hold a block descriptor with this granule. */
static bool a64_block_ok(const struct a64 *a, int level)
{
	switch (a->granule) {
	case 12:
		return level == 1 || level == 2 || (level == 0 && a->ds);
	case 14:
		return level == 2 || (level == 1 && a->ds);
	default:
		return level == 2 || (level == 1 && a->lpa64k);
	}
}

static int a64_walk(const struct kvmdbg_gdb_mmu *m, struct walk *w)
{
	static const unsigned int ips_bits[] = { 32, 36, 40, 42, 44, 48, 52 };
	const uint64_t tcr = m->tcr_el1;
	const bool hi = (w->gva >> 55) & 1;
	unsigned int tsz, tg, va_bits, stride, levels, top_bits, min_tsz, max_tsz, check_top;
	struct a64 a = { 0 };
	uint64_t ttbr, table, align;
	int start;

	if (!(m->sctlr_el1 & SCTLR_M)) {
		if (w->gva >> 52)
			return -EFAULT;
		w->gpa = w->gva;
		w->len = BIT(52) - w->gva;
		return 0;
	}
	if (TCR_IPS(tcr) >= sizeof(ips_bits) / sizeof(ips_bits[0]))
		return -EINVAL;
	a.pa_bits = ips_bits[TCR_IPS(tcr)];
	if (hi) {
		static const unsigned int tg1[] = { 0, 14, 12, 16 };

		tsz = TCR_T1SZ(tcr);
		tg = tg1[TCR_TG1(tcr)];
	} else {
		static const unsigned int tg0[] = { 12, 16, 14, 0 };

		tsz = TCR_T0SZ(tcr);
		tg = tg0[TCR_TG0(tcr)];
	}
	if (!tg)
		return -EINVAL; /* a reserved TG0/TG1 encoding */
	a.granule = tg;
	a.ds = (tcr & TCR_DS) && tg != 16;
	a.lpa64k = tg == 16 && a.pa_bits == 52;
	/* 52-bit VAs: FEAT_LPA2 (TCR.DS) for 4/16 KiB, FEAT_LVA for 64 KiB;
	 * the smallest regions: FEAT_TTST */
	min_tsz = (a.ds || tg == 16) ? 12 : 16;
	max_tsz = tg == 16 ? 47 : 48;
	if (tsz < min_tsz || tsz > max_tsz)
		return -EINVAL;
	if (tcr & (hi ? TCR_EPD1 : TCR_EPD0))
		return -EFAULT; /* walks of this half disabled: a translation fault */
	va_bits = 64 - tsz;
	/* bits va_bits..63 (..55 under TBI) must all equal bit 55 */
	check_top = (tcr & (hi ? TCR_TBI1 : TCR_TBI0)) ? 56 : 64;
	for (unsigned int b = va_bits; b < check_top; b++)
		if (((w->gva >> b) & 1) != hi)
			return -EFAULT;

	stride = tg - 3; /* index bits a level */
	levels = (va_bits - tg + stride - 1) / stride;
	start = 4 - (int)levels;
	top_bits = va_bits - tg - stride * (levels - 1);

	ttbr = hi ? m->ttbr1_el1 : m->ttbr0_el1;
	if (a.ds || a.lpa64k) /* BADDR[51:48] in TTBR bits [5:2] */
		table = (ttbr & GENMASK(47, 6)) | ((ttbr >> 2) & 0xf) << 48;
	else
		table = ttbr & GENMASK(47, 1);
	/* the first table is aligned to its size (64 bytes at least with 52-bit addresses) */
	align = 8ULL << top_bits;
	if ((a.ds || a.lpa64k) && align < 64)
		align = 64;
	table &= ~(align - 1);

	for (int level = start; level <= 3; level++) {
		unsigned int shift = tg + stride * (unsigned int)(3 - level);
		unsigned int bits = level == start ? top_bits : stride;
		uint64_t d, oa;
		int r;

		if (table >> a.pa_bits)
			return -EFAULT; /* an address size fault */
		r = entry(w, table + 8 * ((w->gva >> shift) & (BIT(bits) - 1)), 8, &d);
		if (r)
			return r;
		if (!(d & DESC_VALID))
			return -EFAULT;
		oa = a64_oa(&a, d);
		if (level < 3 && (d & DESC_TABLE)) {
			table = oa;
			continue;
		}
		if (level == 3 ? !(d & DESC_TABLE) : !a64_block_ok(&a, level))
			return -EFAULT; /* a reserved descriptor */
		oa &= ~(BIT(shift) - 1);
		if (oa >> a.pa_bits)
			return -EFAULT;
		return leaf(w, oa, BIT(shift));
	}
	return -EFAULT; /* not reached: level 3 always ends the walk */
}

GDB_EXPORT int kvmdbg_gdb_translate(const struct kvmdbg_gdb_mmu *mmu, uint64_t gva,
				    kvmdbg_gdb_phys_read_fn read, void *ctx, uint64_t *gpa,
				    uint64_t *contiguous)
{
	struct kvmdbg_gdb_mmu m;
	struct walk w = { .read = read, .ctx = ctx, .gva = gva };
	int r;

	if (!mmu || !read || !gpa)
		return -EINVAL;
	r = gdb_sized_in(&m, sizeof(m), mmu);
	if (r)
		return r;
	switch (m.arch) {
	case KVMDBG_GDB_ARCH_X86_64:
		r = x86_walk(&m, &w);
		break;
	case KVMDBG_GDB_ARCH_AARCH64:
		r = a64_walk(&m, &w);
		break;
	default:
		return -EINVAL;
	}
	if (r)
		return r;
	*gpa = w.gpa;
	if (contiguous)
		*contiguous = w.len;
	return 0;
}
