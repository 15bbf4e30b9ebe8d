/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the arm64 encoder (lib/arch/arm64/encode.c): BRK, breakpoint
 * and watchpoint encodings, the minimum range cover proven against two
 * independent brute-force minima, and ESR decoding with synthetic exits.
 * Portable: runs on any host.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "arch/backend.h"
#include "arch/arm64/regs.h"
#include "test-common.h"

#define OPS (&kvmdbg_arm64_ops)
/* Register fields, written out here independently of encode.c. */
#define E_BIT   1ull
#define PXC(c)  (((c) >> 1) & 3)
#define LSC(c)  (((c) >> 3) & 3)
#define WBAS(c) (((c) >> 5) & 0xff)
#define BBAS(c) (((c) >> 5) & 0xf)
#define HMC(c)  (((c) >> 13) & 1)
#define SSC(c)  (((c) >> 14) & 3)
#define LBN(c)  (((c) >> 16) & 0xf)
#define WT(c)   (((c) >> 20) & 1)
#define BT(c)   (((c) >> 20) & 0xf)
#define MASK(c) (((c) >> 24) & 0x1f)

#define EC(x) ((uint64_t)(x) << 26)
#define IL    (1ull << 25)
#define WNR   (1ull << 6)

static const enum kvmdbg_type watch_types[] = { KVMDBG_WATCH_WRITE, KVMDBG_WATCH_READ,
						KVMDBG_WATCH_ACCESS };

static unsigned int type_lsc(enum kvmdbg_type t)
{
	return t == KVMDBG_WATCH_WRITE ? 2 : t == KVMDBG_WATCH_READ ? 1 : 3;
}

static int cover(enum kvmdbg_type t, uint64_t addr, uint64_t len, bool over, unsigned int nr,
		 struct kvmdbg_piece *out, unsigned int max)
{
	struct kvmdbg_limits lim = { .nr = { 16, nr }, .allow_overcover = over };

	return OPS->cover(&lim, t, addr, len, out, max);
}

/* ---- brute-force minima, in "test coordinates" t = addr + 2^63 ----
 * (both halves of the VA space become one interval; alignment of blocks,
 * at most 2^31, is unchanged). A cost is (slots, extra bytes), compared
 * lexicographically. */

struct cost {
	uint64_t n, extra;
};

#define INF_COST ((struct cost){ UINT64_MAX / 4, UINT64_MAX / 4 })

static bool cost_lt(struct cost a, struct cost b)
{
	return a.n < b.n || (a.n == b.n && a.extra < b.extra);
}

static struct cost cost_add(struct cost a, struct cost b)
{
	return (struct cost){ a.n + b.n, a.extra + b.extra };
}

static uint64_t to_t(uint64_t addr)
{
	return addr + (1ull << 63);
}

/*
 * Brute force 1: shortest path over byte positions. State x: every byte of
 * [s, x) is matched. From x take any slot that matches byte x: a BAS run
 * x..q-1 inside x's doubleword, or the aligned 2^m block containing x
 * (m = 3..31); without overcover only slots inside [s, e) are allowed. Makes
 * no use of the structure the library's algorithm relies on. O(len).
 */
static struct cost bf_bytes(uint64_t s, uint64_t e, bool over)
{
	struct cost dp[200];
	uint64_t n = e - s;

	REQ(n < 200, "range too long for bf_bytes");
	for (uint64_t i = 0; i <= n; i++)
		dp[i] = INF_COST;
	dp[0] = (struct cost){ 0, 0 };
	for (uint64_t i = 0; i < n; i++) {
		uint64_t x = s + i, dwend = (x & ~7ull) + 8;

		if (dp[i].n == INF_COST.n)
			continue;
		for (uint64_t q = x + 1; q <= dwend; q++) {
			struct cost c = { dp[i].n + 1, dp[i].extra };
			uint64_t j = (q > e ? e : q) - s;

			if (q > e) {
				if (!over)
					break;
				c.extra += q - e;
			}
			if (cost_lt(c, dp[j]))
				dp[j] = c;
		}
		for (unsigned int m = 3; m <= 31; m++) {
			uint64_t p = x & ~((1ull << m) - 1), q = p + (1ull << m);
			struct cost c = { dp[i].n + 1, dp[i].extra };
			uint64_t j = (q > e ? e : q) - s;

			if ((p < s || q > e) && !over)
				continue;
			c.extra += (p < s ? s - p : 0) + (q > e ? q - e : 0);
			if (cost_lt(c, dp[j]))
				dp[j] = c;
		}
	}
	return dp[n];
}

/*
 * Brute force 2: every slot is a node of the binary tree of aligned blocks
 * (a BAS run lies in a doubleword leaf). For node [b, b + 2^k): if the range
 * covers it whole and it is a legal block, one slot; otherwise either one
 * slot for the whole node (overcover; or a BAS run when k = 3) or its two
 * halves independently. (slots, extra) add up componentwise, so the best of
 * the sum is the sum of the bests. Fast for huge ranges.
 */
static struct cost bf_tree(uint64_t b, unsigned int k, uint64_t s, uint64_t e, bool over)
{
	uint64_t nb = b + (1ull << k);
	uint64_t lo = b > s ? b : s, hi = nb < e ? nb : e;
	struct cost best = INF_COST, c;

	if (lo >= hi)
		return (struct cost){ 0, 0 };
	if (k <= 31) {
		if (lo == b && hi == nb)
			return (struct cost){ 1, 0 };
		if (over)
			best = (struct cost){ 1, (nb - b) - (hi - lo) };
	}
	if (k == 3)
		return (struct cost){ 1, 0 }; /* BAS run of [lo, hi) */
	c = cost_add(bf_tree(b, k - 1, s, e, over),
		     bf_tree(b + (1ull << (k - 1)), k - 1, s, e, over));
	return cost_lt(c, best) ? c : best;
}

static struct cost bf_tree_range(uint64_t s, uint64_t e, bool over)
{
	uint64_t root = s & ~((1ull << 48) - 1);

	REQ(e - root <= (2ull << 48), "range too long for bf_tree");
	return cost_add(bf_tree(root, 48, s, e, over),
			bf_tree(root + (1ull << 48), 48, s, e, over));
}

/* ---- checking one cover result ---- */

/* What a watchpoint slot matches, from its registers; fails on any encoding
 * that is not architecturally reliable. */
static void wp_span(const struct kvmdbg_piece *p, enum kvmdbg_type t, uint64_t *start,
		    uint64_t *len)
{
	uint64_t c = p->ctrl;
	unsigned int bas = WBAS(c), mask = MASK(c);

	REQ_EQ(p->pool, KVMDBG_POOL_WP);
	REQ_EQ(c & E_BIT, 1);
	REQ_EQ(PXC(c), 3);
	REQ_EQ(LSC(c), type_lsc(t));
	REQ_EQ(HMC(c) | SSC(c) | LBN(c) | WT(c), 0);
	REQ_EQ(c & ~0x1f1fffffull, 0); /* RES0 [63:29], [23:21] */
	if (mask) {
		REQ(mask >= 3 && mask <= 31, "MASK %u", mask);
		REQ(bas == 0xff, "MASK %u with BAS %#x", mask, bas);
		REQ((p->value & ((1ull << mask) - 1)) == 0, "value %#" PRIx64 " MASK %u", p->value,
		    mask);
		*start = p->value;
		*len = 1ull << mask;
	} else {
		unsigned int lo = (unsigned int)__builtin_ctz(bas | 0x100);

		REQ(bas != 0, "empty BAS");
		/* Contiguous: shifting out the low zeros leaves 2^k - 1. */
		REQ(((bas >> lo) & ((bas >> lo) + 1)) == 0, "non-contiguous BAS %#x", bas);
		REQ((p->value & 7) == 0, "value %#" PRIx64 " not 8-aligned", p->value);
		*start = p->value + lo;
		*len = (uint64_t)__builtin_popcount(bas);
	}
	REQ(p->start == *start && p->len == *len,
	    "piece says [%#" PRIx64 ", +%" PRIu64 "), registers [%#" PRIx64 ", +%" PRIu64 ")",
	    p->start, p->len, *start, *len);
}

/*
 * Check a cover of [addr, addr + len): pieces well encoded, in address order,
 * disjoint and consecutive (so the union is one interval) and covering the
 * range, exactly so without overcover. Returns its (slots, extra).
 */
static struct cost check_cover(const struct kvmdbg_piece *p, int n, enum kvmdbg_type t,
			       uint64_t addr, uint64_t len, bool over)
{
	uint64_t s = to_t(addr), e = s + len, first = 0, end = 0;

	REQ(n > 0, "no piece");
	for (int i = 0; i < n; i++) {
		uint64_t ps, pl;

		wp_span(&p[i], t, &ps, &pl);
		ps = to_t(ps);
		if (i == 0)
			first = ps;
		else
			REQ(ps == end,
			    "addr %#" PRIx64 " len %" PRIu64 ": piece %d at %#" PRIx64
			    " after end %#" PRIx64,
			    addr, len, i, ps, end);
		end = ps + pl;
	}
	REQ(first <= s && end >= e, "addr %#" PRIx64 " len %" PRIu64 " not covered", addr, len);
	if (!over)
		REQ(first == s && end == e,
		    "addr %#" PRIx64 " len %" PRIu64 ": matches bytes outside", addr, len);
	/* No piece lies wholly outside the range. */
	for (int i = 0; i < n; i++)
		REQ(to_t(p[i].start) < e && to_t(p[i].start) + p[i].len > s, "piece %d outside", i);
	return (struct cost){ (uint64_t)n, (s - first) + (end - e) };
}

/* A range of 48-bit VAs that does not wrap (and may end at 2^64). */
static bool range_ok(uint64_t addr, uint64_t len)
{
	uint64_t last = addr + len - 1;

	if (len == 0 || last < addr)
		return false;
	if (addr < (1ull << 48))
		return last < (1ull << 48);
	return addr >= 0xffff000000000000;
}

/* Cover with enough slots, check it, and compare with the brute-force minimum. */
static void check_min(uint64_t addr, uint64_t len, bool over, enum kvmdbg_type t, bool bytes)
{
	struct kvmdbg_piece p[KVMDBG_MAX_PIECES];
	uint64_t s = to_t(addr), e = s + len;
	struct cost want, got;
	int n = cover(t, addr, len, over, 16, p, KVMDBG_MAX_PIECES);

	if (!range_ok(addr, len)) {
		REQ(n == -EINVAL, "addr %#" PRIx64 " len %" PRIu64 ": %d, want -EINVAL", addr, len,
		    n);
		return;
	}
	want = bytes ? bf_bytes(s, e, over) : bf_tree_range(s, e, over);

	if (want.n > 16) {
		REQ(n == -ENOSPC, "addr %#" PRIx64 " len %" PRIu64 ": %d, want -ENOSPC", addr, len,
		    n);
		return;
	}
	REQ(n > 0, "addr %#" PRIx64 " len %" PRIu64 " over %d: %d", addr, len, over, n);
	got = check_cover(p, n, t, addr, len, over);
	REQ(got.n == want.n && got.extra == want.extra,
	    "addr %#" PRIx64 " len %" PRIu64 " over %d: %" PRIu64 " slots +%" PRIu64
	    " bytes, minimum %" PRIu64 " +%" PRIu64,
	    addr, len, over, got.n, got.extra, want.n, want.extra);
}

/* The whole window [base, base + 128) x lengths 1..80, both modes. */
static void check_window(uint64_t base, bool bytes)
{
	for (uint64_t a = 0; a < 128; a++)
		for (uint64_t len = 1; len <= 80; len++)
			for (int over = 0; over < 2; over++)
				check_min(base + a, len, over, watch_types[(a + len) % 3], bytes);
}

/* ---- the stepped instruction's effect on DAIF (arm64_insn_daif) ---- */

START_TEST(test_arm64_insn_daif)
{
	static const struct {
		uint32_t insn;
		uint64_t set;
		int whole;
	} c[] = {
		{0xd50342df, PS_I, 0},               /* msr daifset, #2 (local_irq_disable) */
		{0xd50343df, PS_I | PS_F, 0},        /* msr daifset, #3 */
		{0xd5034fdf, PS_AIF, 0},             /* msr daifset, #0xf: D is not ours */
		{0xd50348df, 0, 0},                  /* msr daifset, #8: D alone */
		{0xd50342ff, 0, 0},                  /* msr daifclr, #2: seen after the step */
		{0xd51b4220, 0, 1},                  /* msr daif, x0 (local_irq_restore) */
		{0xd51b423e, 0, 1},                  /* msr daif, x30 */
		{0xd53b4220, 0, 0},                  /* mrs x0, daif */
		{0xd51b4200, 0, 0},                  /* msr nzcv, x0 */
		{0xd69f03e0, 0, 1},                  /* eret */
		{0xd69f0bff, 0, 1},                  /* eretaa */
		{0xd69f0fff, 0, 1},                  /* eretab */
		{0xd65f03c0, 0, 0},                  /* ret */
		{0xd503201f, 0, 0},                  /* nop */
		{0xd4000001, 0, 0},                  /* svc #0: an exception, recognised after */
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint64_t set = 1;
		int whole = 2;

		arm64_insn_daif(c[i].insn, &set, &whole);
		ck_assert_msg(set == c[i].set && whole == c[i].whole,
			      "%#x: set %#" PRIx64 " whole %d, expected %#" PRIx64 " %d", c[i].insn,
			      set, whole, c[i].set, c[i].whole);
	}
}
END_TEST

/* ---- tests: software and execution breakpoints ---- */

START_TEST(test_arm64_ops)
{
	uint32_t insn = (uint32_t)OPS->sw_insn[0] | (uint32_t)OPS->sw_insn[1] << 8 |
			(uint32_t)OPS->sw_insn[2] << 16 | (uint32_t)OPS->sw_insn[3] << 24;
	uint32_t imm = (insn >> 5) & 0xffff;

	ck_assert_str_eq(OPS->name, "arm64");
	ck_assert_int_eq(OPS->arch, KVMDBG_ARCH_ARM64);
	ck_assert(!OPS->shared_pool);
	ck_assert_uint_eq(OPS->sw_len, 4);
	ck_assert_uint_eq(OPS->sw_align, 4);
	/* BRK #imm16: 1101 0100 001 imm16 000 00 */
	ck_assert_uint_eq(insn & 0xffe0001f, 0xd4200000);
	/* Not an immediate guests use (see brk-imm.h and the comment in encode.c). */
	ck_assert_uint_ne(imm, 0);
	ck_assert_uint_gt(imm, 2);
	ck_assert(!(imm >= 0x004 && imm <= 0x008));
	ck_assert_uint_ne(imm, 0x100);
	ck_assert_uint_ne(imm, 0x3e8);
	ck_assert(!(imm >= 0x400 && imm <= 0x9ff));
	ck_assert(!(imm >= 0x5500 && imm <= 0x55ff));
	ck_assert(!(imm >= 0x8000 && imm <= 0x8fff));
	ck_assert(!(imm >= 0xf000 && imm <= 0xf0ff));
	ck_assert_uint_eq(imm, 0x4b44);
	ck_assert(OPS->cover && OPS->decode && OPS->slot_type);
}
END_TEST

START_TEST(test_arm64_break_hw)
{
	static const uint64_t good[] = { 0,
					 4,
					 0x400000,
					 0x0000fffffffffffc,
					 0xffff000000000000,
					 0xffff800010081234 & ~3ull,
					 0xfffffffffffffffc };
	struct kvmdbg_limits lim = { .nr = { 6, 4 } };
	struct kvmdbg_piece p[2];

	for (unsigned int i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		for (uint64_t len = 0; len <= 4; len += 4) {
			memset(p, 0xa5, sizeof(p));
			ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, good[i], len, p, 2), 1);
			ck_assert_uint_eq(p[0].pool, KVMDBG_POOL_BP);
			ck_assert_uint_eq(p[0].value, good[i]);
			ck_assert_uint_eq(p[0].start, good[i]);
			ck_assert_uint_eq(p[0].len, 4);
			ck_assert_uint_eq(p[0].ctrl & E_BIT, 1);
			ck_assert_uint_eq(PXC(p[0].ctrl), 3);
			ck_assert_uint_eq(BBAS(p[0].ctrl), 0xf);
			ck_assert_uint_eq(HMC(p[0].ctrl) | SSC(p[0].ctrl) | LBN(p[0].ctrl) |
						  BT(p[0].ctrl),
					  0);
			ck_assert_uint_eq(p[0].ctrl & ~0x00ffe1ffull, 0); /* RES0 [63:24], [12:9] */
			ck_assert_uint_eq(p[0].ctrl & (3 << 3), 0);       /* RES0 [4:3] */
			ck_assert_int_eq(OPS->slot_type(KVMDBG_POOL_BP, p[0].ctrl),
					 KVMDBG_BREAK_HW);
		}
	}
	/* Misaligned, wrong length, not a VA (bits [63:48] not all equal). */
	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, 0x1002, 4, p, 2), -EINVAL);
	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, 0x1001, 0, p, 2), -EINVAL);
	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, 0x1000, 2, p, 2), -EINVAL);
	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, 0x1000, 8, p, 2), -EINVAL);
	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, 0x0001000000000000, 4, p, 2), -EINVAL);
	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, 0xfffe000000000000, 4, p, 2), -EINVAL);
	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, 0x8000000000000000, 4, p, 2), -EINVAL);
	/* No slot. */
	lim.nr[KVMDBG_POOL_BP] = 0;
	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, 0x1000, 4, p, 2), -ENOSPC);
	lim.nr[KVMDBG_POOL_BP] = 1;
	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, 0x1000, 4, p, 0), -ENOSPC);
	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, 0x1000, 4, p, 1), 1);
}
END_TEST

START_TEST(test_arm64_cover_errors)
{
	struct kvmdbg_limits lim = { .nr = { 6, 4 } };
	struct kvmdbg_piece p[KVMDBG_MAX_PIECES];

	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_SW, 0x1000, 4, p, 4), -EOPNOTSUPP);
	ck_assert_int_eq(OPS->cover(&lim, (enum kvmdbg_type)7, 0x1000, 4, p, 4), -EINVAL);
	ck_assert_int_eq(OPS->cover(NULL, KVMDBG_WATCH_WRITE, 0x1000, 4, p, 4), -EINVAL);
	for (unsigned int i = 0; i < 3; i++) {
		enum kvmdbg_type t = watch_types[i];

		ck_assert_int_eq(OPS->cover(&lim, t, 0x1000, 0, p, 4), -EINVAL);
		/* Wrap-around, and ranges leaving the valid VAs. */
		ck_assert_int_eq(OPS->cover(&lim, t, 0xfffffffffffffff8, 9, p, 4), -EINVAL);
		ck_assert_int_eq(OPS->cover(&lim, t, 0xfffffffffffffff8, UINT64_MAX, p, 4),
				 -EINVAL);
		ck_assert_int_eq(OPS->cover(&lim, t, 0x0000fffffffffff8, 9, p, 4), -EINVAL);
		ck_assert_int_eq(OPS->cover(&lim, t, 0x0001000000000000, 1, p, 4), -EINVAL);
		ck_assert_int_eq(OPS->cover(&lim, t, 0xfffeffffffffffff, 1, p, 4), -EINVAL);
		ck_assert_int_eq(OPS->cover(&lim, t, 0xfffefffffffffff8, 16, p, 4), -EINVAL);
		ck_assert_int_eq(OPS->cover(&lim, t, 0x8000000000000000, 8, p, 4), -EINVAL);
		/* Ending exactly at 2^64 is not a wrap. */
		ck_assert_int_eq(OPS->cover(&lim, t, 0xfffffffffffffff8, 8, p, 4), 1);
		ck_assert_int_eq(OPS->cover(&lim, t, 0xffffffffffffffff, 1, p, 4), 1);
		ck_assert_int_eq(OPS->cover(&lim, t, 0x0000fffffffffff8, 8, p, 4), 1);
		ck_assert_int_eq(OPS->cover(&lim, t, 0xffff000000000000, 8, p, 4), 1);
		/* Nothing fits. */
		ck_assert_int_eq(OPS->cover(&lim, t, 0x1000, 4, p, 0), -ENOSPC);
		lim.nr[KVMDBG_POOL_WP] = 0;
		ck_assert_int_eq(OPS->cover(&lim, t, 0x1000, 4, p, 4), -ENOSPC);
		lim.nr[KVMDBG_POOL_WP] = 4;
	}
}
END_TEST

/* ---- tests: watchpoint cover against brute force ---- */

START_TEST(test_arm64_bruteforce_agree)
{
	/* The two brute-force minima agree with each other (window 0..63 x 1..64),
	 * including at the top of the VA space. */
	static const uint64_t bases[] = { 0, 0xffffffffffffff80 };

	for (unsigned int b = 0; b < 2; b++)
		for (uint64_t a = 0; a < 64; a++)
			for (uint64_t len = 1; len <= 64; len++)
				for (int over = 0; over < 2; over++) {
					uint64_t s = to_t(bases[b] + a), e = s + len;
					struct cost x = bf_bytes(s, e, over),
						    y = bf_tree_range(s, e, over);

					if (bases[b] + a + len - 1 < bases[b] + a)
						continue;
					REQ(x.n == y.n && x.extra == y.extra,
					    "a %" PRIu64 " len %" PRIu64, a, len);
				}
}
END_TEST

START_TEST(test_arm64_cover_window_low)
{
	check_window(0, true);
}
END_TEST

START_TEST(test_arm64_cover_window_4g)
{
	/* Crossing 2^32, where blocks up to 2 GiB are aligned. */
	check_window(0xffffffc0, false);
	check_window(0x7fffffc0, false);
}
END_TEST

START_TEST(test_arm64_cover_window_top)
{
	/* The top of the kernel half, the top of the user half, the bottom of the
	 * kernel half: ranges leaving the 48-bit VAs are refused. */
	static const uint64_t bases[] = { 0xffffffffffffff80, 0x0000ffffffffffc0,
					  0xfffeffffffffffc0 };
	unsigned int refused = 0;

	for (unsigned int b = 0; b < 3; b++)
		for (uint64_t a = 0; a < 128; a++)
			for (uint64_t len = 1; len <= 80; len++)
				for (int over = 0; over < 2; over++) {
					uint64_t addr = bases[b] + a;

					refused += !range_ok(addr, len);
					check_min(addr, len, over, watch_types[len % 3], false);
				}
	ck_assert_uint_gt(refused, 1000);
}
END_TEST

START_TEST(test_arm64_cover_large)
{
	static const uint64_t addrs[] = { 0,
					  1,
					  7,
					  8,
					  0x1000,
					  0x1003,
					  0x3ffff8,
					  0x7ffffffd,
					  0x80000000,
					  0xfffffff8,
					  0x123456789,
					  0xffffffff80000000,
					  0xffff800012345670,
					  0x0000fffe00000000 };
	uint64_t lens[64];
	unsigned int nl = 0;

	for (unsigned int k = 3; k <= 34; k += 1)
		lens[nl++] = 1ull << k;
	lens[nl++] = (3ull << 20) + 5;
	lens[nl++] = (3ull << 20) - 3;
	lens[nl++] = (1ull << 31) + 8;
	lens[nl++] = (1ull << 31) - 8;
	lens[nl++] = (5ull << 30) + 1;
	lens[nl++] = 0x10001;
	lens[nl++] = 4095;
	lens[nl++] = 4097;

	for (unsigned int a = 0; a < sizeof(addrs) / sizeof(addrs[0]); a++)
		for (unsigned int l = 0; l < nl; l++)
			for (int over = 0; over < 2; over++) {
				uint64_t addr = addrs[a], len = lens[l];

				check_min(addr, len, over, watch_types[l % 3], false);
				/* And shifted by a few bytes either way. */
				check_min(addr + 3, len, over, KVMDBG_WATCH_ACCESS, false);
				if (len > 5)
					check_min(addr, len - 5, over, KVMDBG_WATCH_ACCESS, false);
			}
}
END_TEST

START_TEST(test_arm64_cover_examples)
{
	struct kvmdbg_piece p[KVMDBG_MAX_PIECES];
	int n;

	/* One doubleword: BAS. */
	n = cover(KVMDBG_WATCH_WRITE, 0x1003, 3, false, 4, p, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(p[0].value, 0x1000);
	ck_assert_uint_eq(WBAS(p[0].ctrl), 0x38);
	ck_assert_uint_eq(MASK(p[0].ctrl), 0);
	ck_assert_uint_eq(LSC(p[0].ctrl), 2);

	/* An aligned page: one MASK region. */
	n = cover(KVMDBG_WATCH_READ, 0x5000, 0x1000, false, 4, p, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(p[0].value, 0x5000);
	ck_assert_uint_eq(MASK(p[0].ctrl), 12);
	ck_assert_uint_eq(WBAS(p[0].ctrl), 0xff);
	ck_assert_uint_eq(LSC(p[0].ctrl), 1);

	/* 2 GiB is the largest region; 4 GiB takes two. */
	ck_assert_int_eq(cover(KVMDBG_WATCH_ACCESS, 0x80000000, 1ull << 31, false, 4, p, 4), 1);
	ck_assert_uint_eq(MASK(p[0].ctrl), 31);
	ck_assert_int_eq(cover(KVMDBG_WATCH_ACCESS, 0, 1ull << 32, false, 4, p, 4), 2);

	/* [1, 81): BAS 1..7, 8, 16..31, 32..63, 64..79, BAS 80 = 6 slots; -ENOSPC with 4. */
	ck_assert_int_eq(cover(KVMDBG_WATCH_WRITE, 1, 80, false, 4, p, KVMDBG_MAX_PIECES), -ENOSPC);
	ck_assert_int_eq(cover(KVMDBG_WATCH_WRITE, 1, 80, false, 6, p, 5), -ENOSPC);
	ck_assert_int_eq(cover(KVMDBG_WATCH_WRITE, 1, 80, false, 6, p, 6), 6);
	/* Overcover: [0, 128) in one slot (47 extra bytes) beats everything. */
	n = cover(KVMDBG_WATCH_WRITE, 1, 80, true, 4, p, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(p[0].start, 0);
	ck_assert_uint_eq(p[0].len, 128);

	/* Overcover saving a slot: [0x1004, 0x100c) in [0x1000, 0x1010). */
	n = cover(KVMDBG_WATCH_WRITE, 0x1004, 8, true, 4, p, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(p[0].start, 0x1000);
	ck_assert_uint_eq(p[0].len, 16);
	ck_assert_uint_eq(MASK(p[0].ctrl), 4);

	/* Overcover when it does not save a slot: straddling 2^31 with 4 + 4
	 * bytes (the block holding both would be 4 GiB), the exact cover. */
	n = cover(KVMDBG_WATCH_WRITE, 0x7ffffffc, 8, true, 4, p, 4);
	ck_assert_int_eq(n, 2);
	ck_assert_uint_eq(p[0].start, 0x7ffffffc);
	ck_assert_uint_eq(p[0].len, 4);
	ck_assert_uint_eq(p[1].start, 0x80000000);
	ck_assert_uint_eq(p[1].len, 4);

	/* 3 MiB + 5 at an odd address with overcover and 4 slots. */
	n = cover(KVMDBG_WATCH_ACCESS, 0x100003, (3ull << 20) + 5, true, 4, p, 4);
	ck_assert_int_gt(n, 0);
	ck_assert_int_le(n, 4);
	check_cover(p, n, KVMDBG_WATCH_ACCESS, 0x100003, (3ull << 20) + 5, true);
}
END_TEST

START_TEST(test_arm64_cover_enospc)
{
	/* With nr = 4: exactly the ranges whose minimum is <= 4 succeed, and
	 * overcover never takes more slots than the exact cover. */
	struct kvmdbg_piece p[KVMDBG_MAX_PIECES];

	for (uint64_t a = 0; a < 64; a++)
		for (uint64_t len = 1; len <= 80; len++) {
			uint64_t s = to_t(a), e = s + len;
			struct cost ex = bf_bytes(s, e, false), ov = bf_bytes(s, e, true);
			int n1 = cover(KVMDBG_WATCH_ACCESS, a, len, false, 4, p, KVMDBG_MAX_PIECES);
			int n2 = cover(KVMDBG_WATCH_ACCESS, a, len, true, 4, p, KVMDBG_MAX_PIECES);
			int n3;

			REQ_EQ(n1, ex.n <= 4 ? (int)ex.n : -ENOSPC);
			REQ_EQ(n2, ov.n <= 4 ? (int)ov.n : -ENOSPC);
			REQ(ov.n <= ex.n, "overcover takes more");
			if (n2 > 0)
				check_cover(p, n2, KVMDBG_WATCH_ACCESS, a, len, true);
			/* max below lim->nr limits too. */
			n3 = cover(KVMDBG_WATCH_ACCESS, a, len, false, 16, p, 3);
			REQ_EQ(n3, ex.n <= 3 ? (int)ex.n : -ENOSPC);
		}
}
END_TEST

START_TEST(test_arm64_slot_type)
{
	ck_assert_int_eq(OPS->slot_type(KVMDBG_POOL_BP, 0x1e7), KVMDBG_BREAK_HW);
	ck_assert_int_eq(OPS->slot_type(KVMDBG_POOL_WP, 1 | 6 | (1 << 3)), KVMDBG_WATCH_READ);
	ck_assert_int_eq(OPS->slot_type(KVMDBG_POOL_WP, 1 | 6 | (2 << 3)), KVMDBG_WATCH_WRITE);
	ck_assert_int_eq(OPS->slot_type(KVMDBG_POOL_WP, 1 | 6 | (3 << 3)), KVMDBG_WATCH_ACCESS);
	/* And what cover() produced. */
	for (unsigned int i = 0; i < 3; i++) {
		struct kvmdbg_piece p[4];

		ck_assert_int_eq(cover(watch_types[i], 0x2000, 0x20, false, 4, p, 4), 1);
		ck_assert_int_eq(OPS->slot_type(p[0].pool, p[0].ctrl), watch_types[i]);
	}
}
END_TEST

/* ---- tests: decoding ---- */

static void set_slot(struct kvmdbg_hwstate *hw, unsigned int pool, unsigned int i,
		     const struct kvmdbg_piece *p)
{
	hw->slot[pool][i] = (struct kvmdbg_hwslot){ p->value, p->ctrl, p->start, p->len };
}

static void add_point(struct kvmdbg_hwstate *hw, unsigned int slot, enum kvmdbg_type t,
		      uint64_t addr, uint64_t len)
{
	struct kvmdbg_piece p[4];

	ck_assert_int_eq(cover(t, addr, len, false, 4, p, 4), 1);
	set_slot(hw, p[0].pool, slot, &p[0]);
}

static struct kvmdbg_decoded dec(const struct kvmdbg_hwstate *hw, uint64_t esr, uint64_t pc,
				 uint64_t far)
{
	struct kvmdbg_exit ex = { .pc = pc, .esr = esr, .far = far };
	struct kvmdbg_decoded d;

	memset(&d, 0x5a, sizeof(d));
	OPS->decode(hw, hw ? kvmdbg_hw_on(hw) : 0, &ex, &d);
	return d;
}

#define WP(i) KVMDBG_HIT_BIT(KVMDBG_POOL_WP, i)
#define BP(i) KVMDBG_HIT_BIT(KVMDBG_POOL_BP, i)

START_TEST(test_arm64_decode_ec)
{
	struct kvmdbg_hwstate hw = { 0 };

	for (unsigned int ec = 0; ec < 64; ec++) {
		struct kvmdbg_decoded d = dec(&hw, EC(ec) | IL, 0x1000, 0x2000);
		bool known = (ec >= 0x30 && ec <= 0x35) || ec == 0x38 || ec == 0x3c;

		ck_assert_msg(d.recognised == known, "EC %#x", ec);
		ck_assert_msg(d.step == (ec == 0x32 || ec == 0x33), "EC %#x", ec);
		ck_assert_msg(d.swbp == (ec == 0x38 || ec == 0x3c), "EC %#x", ec);
		ck_assert_msg(d.raw.arm64.from_lower_el == (ec == 0x30 || ec == 0x32 || ec == 0x34),
			      "EC %#x", ec);
		ck_assert(!d.dbg_access);
		ck_assert_uint_eq(d.hits, 0);
		ck_assert_uint_eq(d.raw.x86.dr6_other, 0);
		if (ec == 0x34 || ec == 0x35) {
			ck_assert_uint_eq(d.data_addr, 0x2000);
			ck_assert_int_eq(d.write, 0);
		} else {
			ck_assert_uint_eq(d.data_addr, 0);
			ck_assert_int_eq(d.write, -1);
		}
		if (!d.swbp)
			ck_assert_uint_eq(d.raw.arm64.brk_imm, 0);
	}
	/* NULL state: nothing of ours. */
	{
		struct kvmdbg_exit ex = { .pc = 0x1000, .esr = EC(0x30) };
		struct kvmdbg_decoded d;

		OPS->decode(NULL, ~0u, &ex, &d);
		ck_assert(d.recognised);
		ck_assert_uint_eq(d.hits, 0);
	}
}
END_TEST

START_TEST(test_arm64_decode_hsr_high)
{
	struct kvmdbg_hwstate hw = { 0 };
	struct kvmdbg_decoded d;

	add_point(&hw, 0, KVMDBG_WATCH_WRITE, 0x1000, 8);
	/* ISS2 bits in hsr_high (ESR[55:32]) must not change the EC or the ISS. */
	d = dec(&hw, 0x00ffffff00000000ull | EC(0x32) | IL, 0, 0);
	ck_assert(d.recognised && d.step && d.raw.arm64.from_lower_el);
	d = dec(&hw, 0x00ffffff00000000ull | IL, 0, 0);
	ck_assert(!d.recognised);
	d = dec(&hw, (0x3cull << 32) | (0x3cull << 58) | EC(0x34) | IL | WNR, 0, 0x1004);
	ck_assert(d.recognised && !d.swbp && d.raw.arm64.from_lower_el);
	ck_assert_int_eq(d.write, 1);
	ck_assert_uint_eq(d.hits, WP(0));
	d = dec(&hw, 0xffffffff00000000ull | EC(0x3c) | IL | 0x4b44, 0, 0);
	ck_assert(d.swbp);
	ck_assert_uint_eq(d.raw.arm64.brk_imm, 0x4b44);
}
END_TEST

START_TEST(test_arm64_decode_brk)
{
	uint32_t insn = (uint32_t)OPS->sw_insn[0] | (uint32_t)OPS->sw_insn[1] << 8 |
			(uint32_t)OPS->sw_insn[2] << 16 | (uint32_t)OPS->sw_insn[3] << 24;
	uint32_t ours = (insn >> 5) & 0xffff;
	static const uint32_t imms[] = { 0, 0x800, 0x4b44, 0xffff, 0x401, 0x8000 };
	struct kvmdbg_decoded d;

	ck_assert_uint_eq(ours, 0x4b44);
	for (unsigned int i = 0; i < sizeof(imms) / sizeof(imms[0]); i++) {
		/* BRK (AArch64): ISS[15:0] is the immediate; ISS[24:16] RES0. */
		d = dec(NULL, EC(0x3c) | IL | imms[i], 0xffff800010000000, 0);
		ck_assert(d.recognised && d.swbp && !d.step && !d.raw.arm64.from_lower_el);
		ck_assert_uint_eq(d.raw.arm64.brk_imm, imms[i]);
		ck_assert(d.swbp_our_kind == (imms[i] == ours));
		ck_assert_uint_eq(d.hits, 0);
		/* BKPT (AArch32): the comment field too (A32 imm16, T32 imm8). */
		d = dec(NULL, EC(0x38) | imms[i], 0x8000, 0);
		ck_assert(d.recognised && d.swbp);
		ck_assert_uint_eq(d.raw.arm64.brk_imm, imms[i]);
	}
	ck_assert_uint_ne(dec(NULL, EC(0x3c) | IL | 0x800, 0, 0).raw.arm64.brk_imm, ours);
	ck_assert_uint_ne(dec(NULL, EC(0x3c) | IL, 0, 0).raw.arm64.brk_imm, ours);
}
END_TEST

START_TEST(test_arm64_decode_breakpoint)
{
	struct kvmdbg_hwstate hw = { 0 };
	struct kvmdbg_piece p[1];
	struct kvmdbg_limits lim = { .nr = { 6, 4 } };
	struct kvmdbg_decoded d;

	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, 0x400000, 4, p, 1), 1);
	set_slot(&hw, KVMDBG_POOL_BP, 0, &p[0]);
	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, 0xffff800010000000, 4, p, 1), 1);
	set_slot(&hw, KVMDBG_POOL_BP, 3, &p[0]);
	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, 0x400000, 0, p, 1), 1);
	set_slot(&hw, KVMDBG_POOL_BP, 5, &p[0]);
	hw.slot[KVMDBG_POOL_BP][5].ctrl &= ~E_BIT; /* disabled: ignored */
	/* A watchpoint at the same address does not count for breakpoints. */
	add_point(&hw, 0, KVMDBG_WATCH_ACCESS, 0x400000, 4);

	d = dec(&hw, EC(0x30) | IL, 0x400000, 0);
	ck_assert(d.recognised && d.raw.arm64.from_lower_el && !d.step && !d.swbp);
	ck_assert_uint_eq(d.hits, BP(0));
	ck_assert_int_eq(d.write, -1);
	d = dec(&hw, EC(0x31) | IL, 0xffff800010000000, 0);
	ck_assert(d.recognised && !d.raw.arm64.from_lower_el);
	ck_assert_uint_eq(d.hits, BP(3));
	/* Not one of ours: the guest's. */
	ck_assert_uint_eq(dec(&hw, EC(0x30) | IL, 0x400004, 0).hits, 0);
	ck_assert_uint_eq(dec(&hw, EC(0x30) | IL, 0x3ffffc, 0).hits, 0);
	ck_assert_uint_eq(dec(&hw, EC(0x30) | IL, 0x0000800010000000, 0).hits, 0);
	/* Two slots on one address both hit. */
	ck_assert_int_eq(OPS->cover(&lim, KVMDBG_BREAK_HW, 0x400000, 4, p, 1), 1);
	set_slot(&hw, KVMDBG_POOL_BP, 15, &p[0]);
	ck_assert_uint_eq(dec(&hw, EC(0x30) | IL, 0x400000, 0).hits, BP(0) | BP(15));
	/* A context-matching slot (BT 0b0011) never matches an address. */
	hw.slot[KVMDBG_POOL_BP][15].ctrl |= 3ull << 20;
	ck_assert_uint_eq(dec(&hw, EC(0x30) | IL, 0x400000, 0).hits, BP(0));
	/* A T32 halfword slot (BAS 0b1100: the halfword at +2). */
	hw.slot[KVMDBG_POOL_BP][7] =
		(struct kvmdbg_hwslot){ 0x8000, 1 | 6 | (0xc << 5), 0x8002, 2 };
	ck_assert_uint_eq(dec(&hw, EC(0x30), 0x8002, 0).hits, BP(7));
	ck_assert_uint_eq(dec(&hw, EC(0x30), 0x8000, 0).hits, 0);
}
END_TEST

START_TEST(test_arm64_decode_watchpoint)
{
	struct kvmdbg_hwstate hw = { 0 };
	struct kvmdbg_decoded d;
	const uint64_t w = EC(0x34) | IL | WNR, r = EC(0x34) | IL;

	add_point(&hw, 0, KVMDBG_WATCH_WRITE, 0x1000, 4);      /* BAS 0x0f at 0x1000 */
	add_point(&hw, 1, KVMDBG_WATCH_ACCESS, 0x2000, 0x100); /* MASK 8 */
	add_point(&hw, 2, KVMDBG_WATCH_READ, 0x1010, 8);       /* BAS 0xff at 0x1010 */
	add_point(&hw, 3, KVMDBG_WATCH_ACCESS, 0x1000, 4);
	hw.slot[KVMDBG_POOL_WP][3].ctrl &= ~E_BIT; /* disabled, would match 0x1000 */

	/* FAR inside. */
	d = dec(&hw, w, 0x4000, 0x1003);
	ck_assert(d.recognised && d.raw.arm64.from_lower_el);
	ck_assert_int_eq(d.write, 1);
	ck_assert_uint_eq(d.data_addr, 0x1003);
	ck_assert_uint_eq(d.hits, WP(0));
	ck_assert_uint_eq(dec(&hw, w, 0, 0x2000).hits, WP(1));
	ck_assert_uint_eq(dec(&hw, r, 0, 0x20ff).hits, WP(1));
	ck_assert_uint_eq(dec(&hw, r, 0, 0x1017).hits, WP(2));
	ck_assert_int_eq(dec(&hw, r, 0, 0x1017).write, 0);
	ck_assert_uint_eq(dec(&hw, EC(0x35) | WNR, 0, 0x2080).hits, WP(1));
	ck_assert(!dec(&hw, EC(0x35) | WNR, 0, 0x2080).raw.arm64.from_lower_el);

	/* FAR outside (the access started below the watched bytes): nearest. */
	ck_assert_uint_eq(dec(&hw, w, 0, 0x0ff0).hits, WP(0));
	ck_assert_uint_eq(dec(&hw, w, 0, 0x1ff0).hits, WP(1));
	ck_assert_uint_eq(dec(&hw, r, 0, 0x1ff8).hits, WP(1));
	/* 0x100a: a write can only be slot 0 (W) or 1 (RW), not slot 2 (R), though
	 * slot 2 is nearer; a read can be slot 2 or 1, not slot 0. */
	ck_assert_uint_eq(dec(&hw, w, 0, 0x100a).hits, WP(0));
	ck_assert_uint_eq(dec(&hw, r, 0, 0x100a).hits, WP(2));
	ck_assert_uint_eq(dec(&hw, r, 0, 0x1003).hits, WP(2));
	/* The disabled slot never hits, even when FAR is in it. */
	ck_assert_uint_eq(dec(&hw, r, 0, 0x1000).hits & WP(3), 0);

	/* Ties: both nearest slots. 0x1006 is 3 bytes after slot 0 (0x1000..3)
	 * and 3 before slot 4 (0x1009..a). */
	add_point(&hw, 4, KVMDBG_WATCH_WRITE, 0x1009, 2);
	ck_assert_uint_eq(dec(&hw, w, 0, 0x1006).hits, WP(0) | WP(4));
	ck_assert_uint_eq(dec(&hw, w, 0, 0x1007).hits, WP(4));
	ck_assert_uint_eq(dec(&hw, w, 0, 0x1003).hits, WP(0));

	/* Tagged FAR (TBI): the top byte is not part of the address. */
	d = dec(&hw, w, 0, 0x5a00000000001001);
	ck_assert_uint_eq(d.hits, WP(0));
	ck_assert_uint_eq(d.data_addr, 0x5a00000000001001);

	/* Kernel addresses. */
	memset(&hw, 0, sizeof(hw));
	add_point(&hw, 6, KVMDBG_WATCH_WRITE, 0xffff000012345678, 8);
	add_point(&hw, 9, KVMDBG_WATCH_WRITE, 0x0000000012345678, 8);
	ck_assert_uint_eq(dec(&hw, w, 0, 0xffff00001234567f).hits, WP(6));
	ck_assert_uint_eq(dec(&hw, w, 0, 0x12345679).hits, WP(9));
	ck_assert_uint_eq(dec(&hw, w, 0, 0xffff000012345600).hits, WP(6));

	/* Only a read-only slot, and a write exit: no better candidate, take it. */
	memset(&hw, 0, sizeof(hw));
	add_point(&hw, 2, KVMDBG_WATCH_READ, 0x3000, 2);
	ck_assert_uint_eq(dec(&hw, w, 0, 0x3001).hits, WP(2));
	/* No slot at all: nothing (the guest's own watchpoint). */
	memset(&hw, 0, sizeof(hw));
	ck_assert_uint_eq(dec(&hw, w, 0, 0x3001).hits, 0);

	/* A guest slot with a non-contiguous BAS (0b10000001): FAR in the hole
	 * is 3 or 4 bytes from a selected byte, not a match. */
	hw.slot[KVMDBG_POOL_WP][1] =
		(struct kvmdbg_hwslot){ 0x4000, 1 | 6 | (3 << 3) | (0x81 << 5), 0x4000, 8 };
	add_point(&hw, 2, KVMDBG_WATCH_ACCESS, 0x4009, 1); /* 6 bytes from 0x4003 */
	ck_assert_uint_eq(dec(&hw, w, 0, 0x4003).hits, WP(1));
	ck_assert_uint_eq(dec(&hw, w, 0, 0x4007).hits, WP(1));
	ck_assert_uint_eq(dec(&hw, w, 0, 0x4009).hits, WP(2));
}
END_TEST

/* ---- the guest's own registers (overlay sanitiser) ---- */

#define BP_POOL   KVMDBG_POOL_BP
#define WP_POOL   KVMDBG_POOL_WP

/* DBGBCR: E, PMC, BAS, HMC, SSC, LBN, BT. */
static uint64_t bcr(unsigned int pmc, unsigned int bas, unsigned int hmc, unsigned int ssc,
		    unsigned int lbn, unsigned int bt)
{
	return E_BIT | (uint64_t)pmc << 1 | (uint64_t)bas << 5 | (uint64_t)hmc << 13 |
	       (uint64_t)ssc << 14 | (uint64_t)lbn << 16 | (uint64_t)bt << 20;
}

/* DBGWCR: E, PAC, LSC, BAS, HMC, SSC, LBN, WT, MASK. */
static uint64_t wcr(unsigned int pac, unsigned int lsc, unsigned int bas, unsigned int hmc,
		    unsigned int ssc, unsigned int lbn, unsigned int wt, unsigned int mask)
{
	return E_BIT | (uint64_t)pac << 1 | (uint64_t)lsc << 3 | (uint64_t)bas << 5 |
	       (uint64_t)hmc << 13 | (uint64_t)ssc << 14 | (uint64_t)lbn << 16 |
	       (uint64_t)wt << 20 | (uint64_t)mask << 24;
}

static struct kvmdbg_guest_regs gregs(uint64_t mdscr)
{
	struct kvmdbg_guest_regs g;

	memset(&g, 0, sizeof(g));
	g.nr[BP_POOL] = 6;
	g.nr[WP_POOL] = 4;
	g.mdscr = mdscr;
	return g;
}

static unsigned int gslots(const struct kvmdbg_guest_regs *g, struct kvmdbg_hwstate *out)
{
	unsigned int rejected = 12345;

	memset(out, 0xa5, sizeof(*out)); /* every byte must be written */
	OPS->guest_slots(g, out, &rejected);
	return rejected;
}

static void expect_slot(const struct kvmdbg_hwstate *hw, unsigned int pool, unsigned int n,
			uint64_t value, uint64_t ctrl, uint64_t start, uint64_t len)
{
	const struct kvmdbg_hwslot *s = &hw->slot[pool][n];

	ck_assert_msg(s->value == value && s->ctrl == ctrl && s->start == start && s->len == len,
		      "slot %u/%u: value %#" PRIx64 " ctrl %#" PRIx64 " start %#" PRIx64
		      " len %" PRIu64 ", want %#" PRIx64 " %#" PRIx64 " %#" PRIx64 " %" PRIu64,
		      pool, n, s->value, s->ctrl, s->start, s->len, value, ctrl, start, len);
}

static void expect_empty(const struct kvmdbg_hwstate *hw, unsigned int pool, unsigned int n)
{
	expect_slot(hw, pool, n, 0, 0, 0, 0);
}

/* Good values come out re-encoded: the fields that mean something to the
 * guest kept, LBN and every RES0 / unknown bit dropped, the slot in the
 * guest's own number, start/len what it matches. */
START_TEST(test_arm64_guest_slots_good)
{
	struct kvmdbg_guest_regs g = gregs(MDSCR_MDE | MDSCR_KDE);
	struct kvmdbg_hwstate out;

	/* bp1: EL1+EL0, LBN 5 (ignored for unlinked), junk in RES0 bits. */
	g.ctrl[BP_POOL][1] = bcr(3, 0xf, 0, 0, 5, 0) | 1ull << 9 | 1ull << 30 | 1ull << 40;
	g.value[BP_POOL][1] = 0xffff000000401003; /* [1:0] RES0 */
	/* bp3: EL0 only, a T32 halfword at +2. */
	g.ctrl[BP_POOL][3] = bcr(2, 0xc, 0, 0, 0, 0);
	g.value[BP_POOL][3] = 0x400100;
	/* bp5: EL1 only, the lower halfword. */
	g.ctrl[BP_POOL][5] = bcr(1, 0x3, 0, 0, 0, 0);
	g.value[BP_POOL][5] = 0x400200;
	/* wp0: write, bytes 2..4 of a doubleword. */
	g.ctrl[WP_POOL][0] = wcr(3, 2, 0x1c, 0, 0, 7, 0, 0) | 1ull << 31;
	g.value[WP_POOL][0] = 0x80000;
	/* wp1: read, DBGWVR[2] set: BAS[3:0] select bytes of the upper word. */
	g.ctrl[WP_POOL][1] = wcr(3, 1, 0x6, 0, 0, 0, 0, 0);
	g.value[WP_POOL][1] = 0x80014;
	/* wp2: access, MASK 12 (4 KiB), DBGWVR not aligned: the block holding it. */
	g.ctrl[WP_POOL][2] = wcr(1, 3, 0xff, 0, 0, 0, 0, 12);
	g.value[WP_POOL][2] = 0xffff800000123456;
	/* wp3: MASK 3, the doubleword; a kernel address. */
	g.ctrl[WP_POOL][3] = wcr(2, 2, 0xff, 0, 0, 0, 0, 3);
	g.value[WP_POOL][3] = 0xfffffffffffffff8;

	ck_assert_uint_eq(gslots(&g, &out), 0);
	expect_empty(&out, BP_POOL, 0);
	expect_slot(&out, BP_POOL, 1, 0xffff000000401000, bcr(3, 0xf, 0, 0, 0, 0),
		    0xffff000000401000, 4);
	expect_empty(&out, BP_POOL, 2);
	expect_slot(&out, BP_POOL, 3, 0x400100, bcr(2, 0xc, 0, 0, 0, 0), 0x400102, 2);
	expect_empty(&out, BP_POOL, 4);
	expect_slot(&out, BP_POOL, 5, 0x400200, bcr(1, 0x3, 0, 0, 0, 0), 0x400200, 2);
	expect_slot(&out, WP_POOL, 0, 0x80000, wcr(3, 2, 0x1c, 0, 0, 0, 0, 0), 0x80002, 3);
	expect_slot(&out, WP_POOL, 1, 0x80010, wcr(3, 1, 0x60, 0, 0, 0, 0, 0), 0x80015, 2);
	expect_slot(&out, WP_POOL, 2, 0xffff800000123000, wcr(1, 3, 0xff, 0, 0, 0, 0, 12),
		    0xffff800000123000, 4096);
	expect_slot(&out, WP_POOL, 3, 0xfffffffffffffff8, wcr(2, 2, 0xff, 0, 0, 0, 0, 3),
		    0xfffffffffffffff8, 8);
	for (unsigned int n = 6; n < KVMDBG_MAX_SLOTS; n++)
		expect_empty(&out, BP_POOL, n);
	for (unsigned int n = 4; n < KVMDBG_MAX_SLOTS; n++)
		expect_empty(&out, WP_POOL, n);

	/* The decoder finds them: the instruction at bp1, FAR in wp2's block. */
	{
		struct kvmdbg_exit ex = { .esr = EC(0x30), .pc = 0xffff000000401000 };
		struct kvmdbg_decoded d;

		OPS->decode(&out, ~0u, &ex, &d);
		ck_assert_uint_eq(d.hits, KVMDBG_HIT_BIT(BP_POOL, 1));
		/* Only the slots on names are looked at. */
		OPS->decode(&out, kvmdbg_hw_on(&out) & ~KVMDBG_HIT_BIT(BP_POOL, 1), &ex, &d);
		ck_assert_uint_eq(d.hits, 0);
		ck_assert(d.hw_unmatched);
		ex = (struct kvmdbg_exit){ .esr = EC(0x34), .far = 0xffff800000123ff8 };
		OPS->decode(&out, kvmdbg_hw_on(&out), &ex, &d);
		ck_assert_uint_eq(d.hits, KVMDBG_HIT_BIT(WP_POOL, 2));
		OPS->decode(&out, KVMDBG_HIT_BIT(BP_POOL, 1), &ex, &d);
		ck_assert_uint_eq(d.hits, 0);
	}
}
END_TEST

/* Hostile or meaningless values: refused and counted, never passed on. */
START_TEST(test_arm64_guest_slots_hostile)
{
	static const struct {
		unsigned int pool;
		uint64_t ctrl, value;
		const char *what;
	} bad[] = {
		{ BP_POOL, 0, 0x1000, "HMC (EL2)" },
		{ BP_POOL, 0, 0x1000, "SSC 01" },
		{ BP_POOL, 0, 0x1000, "SSC 10" },
		{ BP_POOL, 0, 0x1000, "SSC 11 + HMC (EL2+EL1+EL0)" },
		{ BP_POOL, 0, 0x1000, "PMC 00" },
		{ BP_POOL, 0, 0x1000, "BT linked address" },
		{ BP_POOL, 0, 0x1000, "BT context ID" },
		{ BP_POOL, 0, 0x1000, "BT VMID" },
		{ BP_POOL, 0, 0x1000, "BT address mismatch" },
		{ BP_POOL, 0, 0x1000, "BAS 0101" },
		{ BP_POOL, 0, 0x1000, "BAS 0000" },
		{ BP_POOL, 0, 0x0001000000001000, "VA not sign-extended from 48" },
		{ BP_POOL, 0, 0x8000000000001000, "RESS bits not a copy" },
		{ WP_POOL, 0, 0x2000, "WT linked" },
		{ WP_POOL, 0, 0x2000, "LSC 00" },
		{ WP_POOL, 0, 0x2000, "MASK 1" },
		{ WP_POOL, 0, 0x2000, "MASK 2" },
		{ WP_POOL, 0, 0x2000, "MASK 6 without BAS 0xff" },
		{ WP_POOL, 0, 0x2000, "BAS not contiguous" },
		{ WP_POOL, 0, 0x2004, "DBGWVR[2] with BAS[7:4]" },
		{ WP_POOL, 0, 0x2000, "BAS 0" },
		{ WP_POOL, 0, 0x2000, "HMC" },
		{ WP_POOL, 0, 0x2000, "SSC 11" },
		{ WP_POOL, 0, 0x2000, "PAC 00" },
		{ WP_POOL, 0, 0x00ff000000002000, "VA not sign-extended from 48" },
	};
	uint64_t ctrls[] = {
		bcr(3, 0xf, 1, 0, 0, 0), bcr(3, 0xf, 0, 1, 0, 0), bcr(3, 0xf, 0, 2, 0, 0),
		bcr(3, 0xf, 1, 3, 0, 0), bcr(0, 0xf, 0, 0, 0, 0), bcr(3, 0xf, 0, 0, 2, 1),
		bcr(3, 0xf, 0, 0, 0, 2), bcr(3, 0xf, 0, 0, 0, 8), bcr(3, 0xf, 0, 0, 0, 4),
		bcr(3, 0x5, 0, 0, 0, 0), bcr(3, 0x0, 0, 0, 0, 0), bcr(3, 0xf, 0, 0, 0, 0),
		bcr(3, 0xf, 0, 0, 0, 0),
		wcr(3, 3, 0xff, 0, 0, 1, 1, 0), wcr(3, 0, 0xff, 0, 0, 0, 0, 0),
		wcr(3, 3, 0xff, 0, 0, 0, 0, 1), wcr(3, 3, 0xff, 0, 0, 0, 0, 2),
		wcr(3, 3, 0x0f, 0, 0, 0, 0, 6), wcr(3, 3, 0x05, 0, 0, 0, 0, 0),
		wcr(3, 3, 0x11, 0, 0, 0, 0, 0), wcr(3, 3, 0x00, 0, 0, 0, 0, 0),
		wcr(3, 3, 0xff, 1, 0, 0, 0, 0), wcr(3, 3, 0xff, 0, 3, 0, 0, 0),
		wcr(0, 3, 0xff, 0, 0, 0, 0, 0), wcr(3, 3, 0xff, 0, 0, 0, 0, 0),
	};
	struct kvmdbg_hwstate out;

	ck_assert_uint_eq(ARRAY_LEN(ctrls), ARRAY_LEN(bad));
	for (unsigned int i = 0; i < ARRAY_LEN(bad); i++) {
		struct kvmdbg_guest_regs g = gregs(MDSCR_MDE | MDSCR_KDE);
		unsigned int n = i % 3, pool = bad[i].pool;

		g.ctrl[pool][n] = ctrls[i];
		g.value[pool][n] = bad[i].value;
		/* A good neighbour is unaffected. */
		g.ctrl[pool][n + 1] = pool == BP_POOL ? bcr(3, 0xf, 0, 0, 0, 0)
						      : wcr(3, 3, 0xff, 0, 0, 0, 0, 0);
		g.value[pool][n + 1] = 0x3000;
		ck_assert_msg(gslots(&g, &out) == 1, "%s: not refused", bad[i].what);
		ck_assert_msg(out.slot[pool][n].ctrl == 0 && out.slot[pool][n].value == 0,
			      "%s: reached the slots", bad[i].what);
		ck_assert_msg(out.slot[pool][n + 1].ctrl != 0, "%s: neighbour lost", bad[i].what);
	}

	/* Many at once: each refused register counts. */
	{
		struct kvmdbg_guest_regs g = gregs(MDSCR_MDE | MDSCR_KDE);

		for (unsigned int n = 0; n < 6; n++)
			g.ctrl[BP_POOL][n] = ctrls[n];
		for (unsigned int n = 0; n < 4; n++)
			g.ctrl[WP_POOL][n] = ctrls[13 + n];
		ck_assert_uint_eq(gslots(&g, &out), 10);
		for (unsigned int p = 0; p < KVMDBG_NR_POOLS; p++)
			for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++)
				expect_empty(&out, p, n);
	}
}
END_TEST

/* MDSCR_EL1: without MDE nothing of the guest's can match, without KDE only
 * its EL0 part can raise an exception for it. */
START_TEST(test_arm64_guest_slots_mdscr)
{
	struct kvmdbg_guest_regs g = gregs(0);
	struct kvmdbg_hwstate out;

	g.ctrl[BP_POOL][0] = bcr(3, 0xf, 0, 0, 0, 0); /* EL1 + EL0 */
	g.value[BP_POOL][0] = 0x1000;
	g.ctrl[BP_POOL][1] = bcr(1, 0xf, 0, 0, 0, 0); /* EL1 */
	g.value[BP_POOL][1] = 0x1100;
	g.ctrl[BP_POOL][2] = bcr(2, 0xf, 0, 0, 0, 0); /* EL0 */
	g.value[BP_POOL][2] = 0x1200;
	g.ctrl[BP_POOL][3] = bcr(3, 0xf, 1, 0, 0, 0); /* hostile */
	g.ctrl[WP_POOL][0] = wcr(3, 2, 0xff, 0, 0, 0, 0, 0);
	g.value[WP_POOL][0] = 0x2000;
	g.ctrl[WP_POOL][1] = wcr(1, 2, 0xff, 0, 0, 0, 0, 0);
	g.value[WP_POOL][1] = 0x2008;

	/* MDE off (KDE alone does nothing, SS neither): nothing, nothing refused. */
	for (uint64_t m = 0; m < 2; m++) {
		g.mdscr = m ? MDSCR_KDE | 1 : 0;
		ck_assert_uint_eq(gslots(&g, &out), 0);
		for (unsigned int p = 0; p < KVMDBG_NR_POOLS; p++)
			for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++)
				expect_empty(&out, p, n);
	}

	/* MDE without KDE: EL0 only. */
	g.mdscr = MDSCR_MDE;
	ck_assert_uint_eq(gslots(&g, &out), 1);
	expect_slot(&out, BP_POOL, 0, 0x1000, bcr(2, 0xf, 0, 0, 0, 0), 0x1000, 4);
	expect_empty(&out, BP_POOL, 1);
	expect_slot(&out, BP_POOL, 2, 0x1200, bcr(2, 0xf, 0, 0, 0, 0), 0x1200, 4);
	expect_empty(&out, BP_POOL, 3);
	expect_slot(&out, WP_POOL, 0, 0x2000, wcr(2, 2, 0xff, 0, 0, 0, 0, 0), 0x2000, 8);
	expect_empty(&out, WP_POOL, 1);

	/* Both: as programmed. */
	g.mdscr = MDSCR_MDE | MDSCR_KDE;
	ck_assert_uint_eq(gslots(&g, &out), 1);
	expect_slot(&out, BP_POOL, 0, 0x1000, bcr(3, 0xf, 0, 0, 0, 0), 0x1000, 4);
	expect_slot(&out, BP_POOL, 1, 0x1100, bcr(1, 0xf, 0, 0, 0, 0), 0x1100, 4);
	expect_slot(&out, WP_POOL, 1, 0x2008, wcr(1, 2, 0xff, 0, 0, 0, 0, 0), 0x2008, 8);
}
END_TEST

/* Only the guest-visible registers count; more than 16 is clamped. */
START_TEST(test_arm64_guest_slots_counts)
{
	struct kvmdbg_guest_regs g = gregs(MDSCR_MDE | MDSCR_KDE);
	struct kvmdbg_hwstate out;

	for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++) {
		g.ctrl[BP_POOL][n] = bcr(3, 0xf, 0, 0, 0, 0);
		g.value[BP_POOL][n] = 0x1000 + 4 * n;
		g.ctrl[WP_POOL][n] = wcr(3, 3, 0x01, 1, 0, 0, 0, 0); /* HMC: refused */
	}
	g.nr[BP_POOL] = 2;
	g.nr[WP_POOL] = 3;
	ck_assert_uint_eq(gslots(&g, &out), 3);
	ck_assert_uint_ne(out.slot[BP_POOL][1].ctrl, 0);
	ck_assert_uint_eq(out.slot[BP_POOL][2].ctrl, 0);
	g.nr[BP_POOL] = 0;
	g.nr[WP_POOL] = 0;
	ck_assert_uint_eq(gslots(&g, &out), 0);
	ck_assert_uint_eq(out.slot[BP_POOL][0].ctrl, 0);
	g.nr[BP_POOL] = 99;
	g.nr[WP_POOL] = 99;
	ck_assert_uint_eq(gslots(&g, &out), 16);
	ck_assert_uint_ne(out.slot[BP_POOL][15].ctrl, 0);
}
END_TEST

/* The bytes an output watchpoint slot matches, from its fields alone
 * (an independent reading of DBGWCR/DBGWVR). */
static bool wp_matches(const struct kvmdbg_hwslot *s, uint64_t x)
{
	unsigned int mask = (unsigned int)MASK(s->ctrl), bas = (unsigned int)WBAS(s->ctrl);

	if (mask)
		return (x >> mask) == (s->value >> mask);
	return (x & ~7ull) == s->value && ((bas >> (x & 7)) & 1);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random registers: whatever comes out is only E = 1, PxC in {01, 10, 11},
 * HMC = SSC = LBN = BT/WT = 0, no RES0 bit, MASK 0 or 3..31 (BAS 0xff,
 * DBGWVR aligned), a contiguous BAS otherwise, a VA sign-extended from bit
 * 48, and start/len exactly the bytes it matches. */
START_TEST(test_arm64_guest_slots_random)
{
	const uint64_t bp_ok = E_BIT | 6 | 0xfull << 5;
	const uint64_t wp_ok = E_BIT | 6 | 3 << 3 | 0xffull << 5 | 0x1full << 24;
	uint64_t seed = 0x243f6a8885a308d3ull;
	unsigned int kept = 0, refused = 0;

	for (unsigned int it = 0; it < 20000; it++) {
		struct kvmdbg_guest_regs g = gregs(MDSCR_MDE | ((it & 1) ? MDSCR_KDE : 0));
		struct kvmdbg_hwstate out;
		unsigned int enabled = 0, good = 0, r;

		for (unsigned int p = 0; p < KVMDBG_NR_POOLS; p++)
			for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++) {
				uint64_t c, v;

				c = xorshift(&seed);
				/* Bias towards plausible values: few high bits. */
				if (it % 3)
					c &= 0x1f1003ffull | (it % 5 ? 0 : ~0ull);
				v = xorshift(&seed);
				if (it % 4)
					v = (it % 8 < 4) ? v & 0xffffffffull : v | 0xffff000000000000;
				g.ctrl[p][n] = c;
				g.value[p][n] = v;
				enabled += n < g.nr[p] && (c & 1);
			}
		r = gslots(&g, &out);
		REQ(r <= enabled, "rejected %u of %u", r, enabled);
		for (unsigned int p = 0; p < KVMDBG_NR_POOLS; p++)
			for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++) {
				const struct kvmdbg_hwslot *s = &out.slot[p][n];
				uint64_t c = s->ctrl, top = s->value >> 48;

				if (!c) {
					REQ(!s->value && !s->start && !s->len, "%u/%u junk", p, n);
					continue;
				}
				good++;
				REQ(n < g.nr[p] && (g.ctrl[p][n] & 1), "%u/%u not enabled", p, n);
				REQ(c & E_BIT, "E");
				REQ(PXC(c) != 0, "PxC 00");
				REQ((it & 1) || PXC(c) == 2, "EL1 without KDE");
				REQ(!HMC(c) && !SSC(c) && !LBN(c), "HMC/SSC/LBN %#" PRIx64, c);
				REQ(top == 0 || top == 0xffff, "VA %#" PRIx64, s->value);
				if (p == BP_POOL) {
					REQ(!(c & ~bp_ok), "bcr %#" PRIx64, c);
					REQ(BBAS(c) == 0xf || BBAS(c) == 3 || BBAS(c) == 0xc, "BAS");
					REQ(!(s->value & 3), "bvr");
					REQ(s->start == s->value + (BBAS(c) == 0xc ? 2 : 0), "start");
					REQ(s->len == (BBAS(c) == 0xf ? 4 : 2), "len");
				} else {
					unsigned int m = (unsigned int)MASK(c), b = (unsigned int)WBAS(c);

					REQ(!(c & ~wp_ok), "wcr %#" PRIx64, c);
					REQ(LSC(c) != 0, "LSC");
					REQ(m == 0 || (m >= 3 && b == 0xff), "MASK %u BAS %#x", m, b);
					if (!m) {
						unsigned int lo = (unsigned int)__builtin_ctz(b);

						REQ(b && !(((b >> lo) + 1) & (b >> lo)), "BAS %#x", b);
						REQ(!(s->value & 7), "wvr");
					} else {
						REQ(!(s->value & ((1ull << m) - 1)), "wvr");
					}
					REQ(s->len && s->start >= s->value, "start/len");
					REQ(wp_matches(s, s->start) && wp_matches(s, s->start + s->len - 1),
					    "ends");
					REQ(!wp_matches(s, s->start - 1) && !wp_matches(s, s->start + s->len),
					    "outside");
				}
			}
		REQ(good + r <= enabled, "%u + %u > %u", good, r, enabled);
		kept += good;
		refused += r;
	}
	ck_assert_uint_gt(kept, 1000);
	ck_assert_uint_gt(refused, 1000);
}
END_TEST

TEST_SUITE(arm64_encode)
{
	add_test(tc, test_arm64_ops);
	add_test(tc, test_arm64_insn_daif);
	add_test(tc, test_arm64_break_hw);
	add_test(tc, test_arm64_cover_errors);
	add_test(tc, test_arm64_cover_examples);
	add_test(tc, test_arm64_slot_type);
}

TEST_SUITE(arm64_cover)
{
	add_test(tc, test_arm64_bruteforce_agree);
	add_test(tc, test_arm64_cover_window_low);
	add_test(tc, test_arm64_cover_window_4g);
	add_test(tc, test_arm64_cover_window_top);
	add_test(tc, test_arm64_cover_large);
	add_test(tc, test_arm64_cover_enospc);
}

TEST_SUITE(arm64_decode)
{
	add_test(tc, test_arm64_decode_ec);
	add_test(tc, test_arm64_decode_hsr_high);
	add_test(tc, test_arm64_decode_brk);
	add_test(tc, test_arm64_decode_breakpoint);
	add_test(tc, test_arm64_decode_watchpoint);
}

TEST_SUITE(arm64_guest_slots)
{
	add_test(tc, test_arm64_guest_slots_good);
	add_test(tc, test_arm64_guest_slots_hostile);
	add_test(tc, test_arm64_guest_slots_mdscr);
	add_test(tc, test_arm64_guest_slots_counts);
	add_test(tc, test_arm64_guest_slots_random);
}
