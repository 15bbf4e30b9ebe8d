/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the portable x86-64 backend (lib/arch/x86/encode.c): DR7
 * encodings, the watchpoint range cover against a brute-force minimum, and
 * DR6 decoding of synthetic KVM_EXIT_DEBUG exits.
 *
 * The expected values here are written from the hardware facts, not from
 * the code under test: LEN 00/01/11/10 = 1/2/4/8 bytes, RW 00/01/11 =
 * execute/write/access, DR6 as KVM reports it (active-low bits set).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "arch/backend.h"
#include "arch/x86/regs.h"
#include "test-common.h"

#define ENABLE KVMDBG_X86_CTRL_ENABLE

/* Raw DR6 with nothing to report, as KVM hands it to userspace. */

#define MAX_TEST_LEN 40   /* lengths of the exhaustive windows */
#define MAX_BRUTE_LEN 320 /* lengths of the random samples: up to ~40 pieces */

/*
 * A check for hot loops: every passing ck_assert*() records its location
 * with the forked runner (a write per assertion), which would make the
 * exhaustive windows cost seconds of system time. This one is silent
 * unless it fails.
 */
#define EXPECT(cond, ...)                                \
	do {                                             \
		if (!(cond))                             \
			ck_abort_msg(__VA_ARGS__);       \
	} while (0)

static const struct kvmdbg_arch_ops *ops = &kvmdbg_x86_ops;

static struct kvmdbg_limits limits(unsigned int nr)
{
	struct kvmdbg_limits lim = { .nr = { nr, 0 }, .allow_overcover = false };

	return lim;
}

/* DR7 LEN field of a 1/2/4/8-byte slot, straight from the SDM table. */
static unsigned int len_field(uint64_t size)
{
	static const struct {
		uint64_t size;
		unsigned int field;
	} tab[] = { { 1, 0x0 }, { 2, 0x1 }, { 4, 0x3 }, { 8, 0x2 } };

	for (unsigned int i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (tab[i].size == size)
			return tab[i].field;
	ck_abort_msg("bad slot size %llu", (unsigned long long)size);
	return 0;
}

static unsigned int rw_field(enum kvmdbg_type type)
{
	switch (type) {
	case KVMDBG_BREAK_HW:
		return 0x0;
	case KVMDBG_WATCH_WRITE:
		return 0x1;
	case KVMDBG_WATCH_ACCESS:
		return 0x3;
	default:
		ck_abort_msg("no RW for type %d", type);
		return 0;
	}
}

/*
 * Minimum number of naturally aligned 1/2/4/8-byte blocks that partition
 * [addr, addr + len), by dynamic programming over prefixes: an exact cover
 * without overlap, sorted by address, is a chain of adjacent blocks, so
 * best[i] = 1 + min best[i - s] over the sizes s whose block ending at
 * addr + i is aligned. Independent of the greedy rule the library uses.
 */
static unsigned int brute_min(uint64_t addr, unsigned int len)
{
	unsigned int best[MAX_BRUTE_LEN + 1];

	EXPECT(len <= MAX_BRUTE_LEN, "brute_min: len %u too large", len);
	best[0] = 0;
	for (unsigned int i = 1; i <= len; i++) {
		best[i] = UINT_MAX;
		for (unsigned int s = 1; s <= 8 && s <= i; s *= 2) {
			/* Start of the block ending at byte addr + i - 1 (mod 2^64). */
			uint64_t start = addr + i - s;

			if (start % s == 0 && best[i - s] != UINT_MAX && best[i - s] + 1 < best[i])
				best[i] = best[i - s] + 1;
		}
	}
	return best[len];
}

/* Every piece is a valid, aligned slot and together they tile the range exactly. */
static void check_cover(enum kvmdbg_type type, uint64_t addr, uint64_t len,
			const struct kvmdbg_piece *p, int n)
{
	unsigned long long a = addr, l = len;
	uint64_t cur = addr, total = 0;

	for (int i = 0; i < n; i++) {
		uint64_t sz = p[i].len;

		EXPECT(sz == 1 || sz == 2 || sz == 4 || sz == 8,
		       "addr %#llx len %llu: piece %d has len %llu", a, l, i, (unsigned long long)sz);
		EXPECT(p[i].pool == KVMDBG_POOL_BP, "addr %#llx len %llu: piece %d pool %u", a, l, i,
		       p[i].pool);
		EXPECT(p[i].start == cur, "addr %#llx len %llu: piece %d at %#llx, want %#llx", a, l,
		       i, (unsigned long long)p[i].start, (unsigned long long)cur);
		EXPECT(p[i].start % sz == 0, "addr %#llx len %llu: piece %d unaligned", a, l, i);
		EXPECT(p[i].value == p[i].start, "addr %#llx len %llu: piece %d value %#llx", a, l,
		       i, (unsigned long long)p[i].value);
		EXPECT(p[i].ctrl == (ENABLE | rw_field(type) | len_field(sz) << 2),
		       "addr %#llx len %llu: piece %d ctrl %#llx", a, l, i,
		       (unsigned long long)p[i].ctrl);
		EXPECT(ops->slot_type(KVMDBG_POOL_BP, p[i].ctrl) == type,
		       "addr %#llx len %llu: piece %d slot_type", a, l, i);
		cur += sz; /* may wrap to 0 after the last piece at the top */
		total += sz;
	}
	EXPECT(total == len, "addr %#llx len %llu: pieces cover %llu bytes", a, l,
	       (unsigned long long)total);
	EXPECT(cur == addr + len, "addr %#llx len %llu: cover ends at %#llx", a, l,
	       (unsigned long long)cur);
}

/*
 * For one address and every length 1..MAX_TEST_LEN that does not wrap:
 * minimal count under a large limit, -ENOSPC exactly when the minimum is
 * above the pool size or max, and success when it just fits.
 */
static void check_window_addr(uint64_t addr)
{
	static const enum kvmdbg_type types[] = { KVMDBG_WATCH_WRITE, KVMDBG_WATCH_ACCESS };
	struct kvmdbg_limits big = limits(KVMDBG_MAX_PIECES), four = limits(4);
	struct kvmdbg_piece p[KVMDBG_MAX_PIECES];

	for (unsigned int len = 1; len <= MAX_TEST_LEN; len++) {
		unsigned int want;

		if (len - 1 > UINT64_MAX - addr)
			break; /* would wrap: covered by the error tests */
		want = brute_min(addr, len);
		for (unsigned int t = 0; t < 2; t++) {
			struct kvmdbg_limits exact = limits(want), less = limits(want - 1);
			unsigned long long a = addr;
			int n;

			n = ops->cover(&big, types[t], addr, len, p, KVMDBG_MAX_PIECES);
			EXPECT(n == (int)want, "addr %#llx len %u: %d pieces, minimum %u", a, len, n,
			       want);
			check_cover(types[t], addr, len, p, n);

			/* The pool limit: four slots, as on real x86. */
			n = ops->cover(&four, types[t], addr, len, p, KVMDBG_MAX_PIECES);
			EXPECT(n == (want > 4 ? -ENOSPC : (int)want),
			       "addr %#llx len %u, 4 slots: %d (minimum %u)", a, len, n, want);
			if (n > 0)
				check_cover(types[t], addr, len, p, n);
			/* The max argument limits the same way. */
			n = ops->cover(&big, types[t], addr, len, p, 4);
			EXPECT(n == (want > 4 ? -ENOSPC : (int)want),
			       "addr %#llx len %u, max 4: %d (minimum %u)", a, len, n, want);
			/* Exactly enough fits, one less does not. */
			n = ops->cover(&exact, types[t], addr, len, p, KVMDBG_MAX_PIECES);
			EXPECT(n == (int)want, "addr %#llx len %u, %u slots: %d", a, len, want, n);
			check_cover(types[t], addr, len, p, n);
			n = ops->cover(&less, types[t], addr, len, p, KVMDBG_MAX_PIECES);
			EXPECT(n == -ENOSPC, "addr %#llx len %u, %u slots: %d", a, len, want - 1, n);
			n = ops->cover(&big, types[t], addr, len, p, want - 1);
			EXPECT(n == -ENOSPC, "addr %#llx len %u, max %u: %d", a, len, want - 1, n);
		}
	}
}

/* ---- suite x86_encode: the ops table, encodings, errors ---- */

START_TEST(test_ops_table)
{
	ck_assert_int_eq(ops->arch, KVMDBG_ARCH_X86_64);
	ck_assert_str_eq(ops->name, "x86_64");
	ck_assert(ops->shared_pool);
	ck_assert(!ops->watch_is_fault); /* x86 data breakpoints trap after the access */
	ck_assert_uint_eq(ops->sw_len, 1);
	ck_assert_uint_eq(ops->sw_align, 1);
	ck_assert_uint_eq(ops->sw_insn[0], 0xcc);
	ck_assert_ptr_nonnull(ops->cover);
	ck_assert_ptr_nonnull(ops->decode);
	ck_assert_ptr_nonnull(ops->slot_type);
}
END_TEST

START_TEST(test_len_encodings)
{
	static const struct {
		enum kvmdbg_type type;
		uint64_t len;
		uint64_t ctrl;
	} tab[] = {
		/* RW | LEN << 2 | enable, written out by hand. */
		{ KVMDBG_WATCH_WRITE, 1, 0x101 },  { KVMDBG_WATCH_WRITE, 2, 0x105 },
		{ KVMDBG_WATCH_WRITE, 4, 0x10d },  { KVMDBG_WATCH_WRITE, 8, 0x109 },
		{ KVMDBG_WATCH_ACCESS, 1, 0x103 }, { KVMDBG_WATCH_ACCESS, 2, 0x107 },
		{ KVMDBG_WATCH_ACCESS, 4, 0x10f }, { KVMDBG_WATCH_ACCESS, 8, 0x10b },
	};
	struct kvmdbg_limits lim = limits(4);
	struct kvmdbg_piece p[4];

	ck_assert_uint_eq(ENABLE, 0x100);
	for (unsigned int i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		memset(p, 0xa5, sizeof(p));
		ck_assert_int_eq(ops->cover(&lim, tab[i].type, 0x1000, tab[i].len, p, 4), 1);
		ck_assert_uint_eq(p[0].pool, KVMDBG_POOL_BP);
		ck_assert_uint_eq(p[0].value, 0x1000);
		ck_assert_uint_eq(p[0].start, 0x1000);
		ck_assert_uint_eq(p[0].len, tab[i].len);
		ck_assert_uint_eq(p[0].ctrl, tab[i].ctrl);
		ck_assert_uint_eq(ops->slot_type(KVMDBG_POOL_BP, p[0].ctrl), tab[i].type);
	}
}
END_TEST

START_TEST(test_exec_break)
{
	struct kvmdbg_limits lim = limits(4);
	struct kvmdbg_piece p[4];
	static const uint64_t addrs[] = { 0, 1, 0x401003, 0xffffffff80000001ull, UINT64_MAX };

	for (unsigned int a = 0; a < sizeof(addrs) / sizeof(addrs[0]); a++) {
		/* Any instruction length 0..15 is accepted; the slot is always 1 byte. */
		for (uint64_t len = 0; len <= 15; len++) {
			memset(p, 0xa5, sizeof(p));
			ck_assert_int_eq(ops->cover(&lim, KVMDBG_BREAK_HW, addrs[a], len, p, 4), 1);
			ck_assert_uint_eq(p[0].pool, KVMDBG_POOL_BP);
			ck_assert_uint_eq(p[0].value, addrs[a]);
			ck_assert_uint_eq(p[0].start, addrs[a]);
			ck_assert_uint_eq(p[0].len, 1);
			ck_assert_uint_eq(p[0].ctrl, ENABLE); /* RW = 00, LEN = 00 */
			ck_assert_int_eq(ops->slot_type(KVMDBG_POOL_BP, p[0].ctrl),
					 KVMDBG_BREAK_HW);
		}
		ck_assert_int_eq(ops->cover(&lim, KVMDBG_BREAK_HW, addrs[a], 16, p, 4), -EINVAL);
	}
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_BREAK_HW, 0x1000, UINT64_MAX, p, 4), -EINVAL);
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_BREAK_HW, 0x1000, 1ull << 32, p, 4), -EINVAL);
	/* Exactly one slot: fits with one, not with none. */
	lim = limits(1);
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_BREAK_HW, 0x1000, 1, p, 1), 1);
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_BREAK_HW, 0x1000, 1, p, 0), -ENOSPC);
	lim = limits(0);
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_BREAK_HW, 0x1000, 1, p, 4), -ENOSPC);
}
END_TEST

START_TEST(test_cover_errors)
{
	struct kvmdbg_limits lim = limits(4);
	struct kvmdbg_piece p[KVMDBG_MAX_PIECES];

	/* No hardware read-only match on x86 (RW = 10 is I/O). */
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_WATCH_READ, 0x1000, 4, p, 4), -EOPNOTSUPP);
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_WATCH_READ, 0x1000, 1, p, 4), -EOPNOTSUPP);
	/* Software breakpoints take no hardware slot. */
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_BREAK_SW, 0x1000, 1, p, 4), -EOPNOTSUPP);
	/* Unknown types. */
	ck_assert_int_eq(ops->cover(&lim, (enum kvmdbg_type)5, 0x1000, 1, p, 4), -EINVAL);
	ck_assert_int_eq(ops->cover(&lim, (enum kvmdbg_type)-1, 0x1000, 1, p, 4), -EINVAL);
	ck_assert_int_eq(ops->cover(&lim, (enum kvmdbg_type)1000, 0x1000, 1, p, 4), -EINVAL);
	/* NULL limits or output. */
	ck_assert_int_eq(ops->cover(NULL, KVMDBG_WATCH_WRITE, 0x1000, 1, p, 4), -EINVAL);
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_WATCH_WRITE, 0x1000, 1, NULL, 4), -EINVAL);

	for (int t = KVMDBG_WATCH_WRITE; t <= KVMDBG_WATCH_ACCESS; t += 2) {
		/* len 0 watches nothing. */
		ck_assert_int_eq(ops->cover(&lim, t, 0x1000, 0, p, 4), -EINVAL);
		ck_assert_int_eq(ops->cover(&lim, t, 0, 0, p, 4), -EINVAL);
		/* The last byte must not wrap past 2^64 - 1 ... */
		ck_assert_int_eq(ops->cover(&lim, t, UINT64_MAX, 2, p, 4), -EINVAL);
		ck_assert_int_eq(ops->cover(&lim, t, UINT64_MAX - 7, 9, p, 4), -EINVAL);
		ck_assert_int_eq(ops->cover(&lim, t, 2, UINT64_MAX, p, 4), -EINVAL);
		ck_assert_int_eq(ops->cover(&lim, t, UINT64_MAX, UINT64_MAX, p, 4), -EINVAL);
		ck_assert_int_eq(ops->cover(&lim, t, 1ull << 63, 1ull << 63 | 1, p, 4), -EINVAL);
		/* ... but may be exactly 2^64 - 1 (then only slots are short). */
		ck_assert_int_eq(ops->cover(&lim, t, 1, UINT64_MAX, p, 4), -ENOSPC);
		ck_assert_int_eq(ops->cover(&lim, t, 0, UINT64_MAX, p, 4), -ENOSPC);
		ck_assert_int_eq(ops->cover(&lim, t, UINT64_MAX, 1, p, 4), 1);
		ck_assert_uint_eq(p[0].start, UINT64_MAX);
		ck_assert_int_eq(ops->cover(&lim, t, UINT64_MAX - 7, 8, p, 4), 1);
		ck_assert_uint_eq(p[0].len, 8);
		ck_assert_int_eq(ops->cover(&lim, t, UINT64_MAX - 31, 32, p, 4), 4);
		check_cover(t, UINT64_MAX - 31, 32, p, 4);
		/* Errors of the arguments win over a lack of slots. */
		ck_assert_int_eq(ops->cover(&lim, t, 0x1000, 0, p, 0), -EINVAL);
		ck_assert_int_eq(ops->cover(&lim, t, UINT64_MAX, 2, p, 0), -EINVAL);
	}
}
END_TEST

START_TEST(test_cover_huge)
{
	struct kvmdbg_limits lim = limits(4), big = limits(KVMDBG_MAX_PIECES);
	struct kvmdbg_piece p[KVMDBG_MAX_PIECES];

	/* Huge ranges fail fast with -ENOSPC, not after 2^61 iterations. */
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_WATCH_WRITE, 0, UINT64_MAX, p, 4), -ENOSPC);
	ck_assert_int_eq(ops->cover(&big, KVMDBG_WATCH_ACCESS, 0, UINT64_MAX, p, KVMDBG_MAX_PIECES),
			 -ENOSPC);
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_WATCH_ACCESS, 1, UINT64_MAX, p, 4), -ENOSPC);
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_WATCH_ACCESS, 2, UINT64_MAX, p, 4), -EINVAL);
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_WATCH_WRITE, 1ull << 63, 1ull << 63, p, 4),
			 -ENOSPC);
	/* 32 aligned bytes are exactly the four 8-byte slots; 33 are not. */
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_WATCH_WRITE, 0x7000, 32, p, 4), 4);
	check_cover(KVMDBG_WATCH_WRITE, 0x7000, 32, p, 4);
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_WATCH_WRITE, 0x7000, 33, p, 4), -ENOSPC);
	/* A large, aligned range under a large limit: all 8-byte slots. */
	ck_assert_int_eq(ops->cover(&big, KVMDBG_WATCH_WRITE, 0x8000, 8 * KVMDBG_MAX_PIECES, p,
				    KVMDBG_MAX_PIECES),
			 KVMDBG_MAX_PIECES);
	check_cover(KVMDBG_WATCH_WRITE, 0x8000, 8 * KVMDBG_MAX_PIECES, p, KVMDBG_MAX_PIECES);
}
END_TEST

START_TEST(test_cover_examples)
{
	struct kvmdbg_limits lim = limits(KVMDBG_MAX_PIECES);
	struct kvmdbg_piece p[KVMDBG_MAX_PIECES];

	/* [0x1003, 0x100d): 1 @3, 4 @4, 4 @8, 1 @c -- in address order. */
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_WATCH_WRITE, 0x1003, 10, p, KVMDBG_MAX_PIECES), 4);
	ck_assert_uint_eq(p[0].start, 0x1003);
	ck_assert_uint_eq(p[0].len, 1);
	ck_assert_uint_eq(p[1].start, 0x1004);
	ck_assert_uint_eq(p[1].len, 4);
	ck_assert_uint_eq(p[2].start, 0x1008);
	ck_assert_uint_eq(p[2].len, 4);
	ck_assert_uint_eq(p[3].start, 0x100c);
	ck_assert_uint_eq(p[3].len, 1);
	/* [7, 0x18): 1 @7, 8 @8, 8 @0x10 */
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_WATCH_ACCESS, 7, 0x11, p, KVMDBG_MAX_PIECES), 3);
	ck_assert_uint_eq(p[0].len, 1);
	ck_assert_uint_eq(p[1].start, 8);
	ck_assert_uint_eq(p[1].len, 8);
	ck_assert_uint_eq(p[2].start, 0x10);
	ck_assert_uint_eq(p[2].len, 8);
	/* A 2-byte value straddling an 8-byte boundary takes two slots. */
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_WATCH_WRITE, 0x2007, 2, p, KVMDBG_MAX_PIECES), 2);
	ck_assert_uint_eq(p[0].len, 1);
	ck_assert_uint_eq(p[1].start, 0x2008);
	ck_assert_uint_eq(p[1].len, 1);
	/* Worst case within 15 bytes: 1+2+4+4+2+1 at an odd address. */
	ck_assert_int_eq(ops->cover(&lim, KVMDBG_WATCH_WRITE, 0x1, 14, p, KVMDBG_MAX_PIECES), 3 + 3);
}
END_TEST

START_TEST(test_slot_type)
{
	/* RW field in bits 0-1; the LEN bits and the enable bit do not matter. */
	for (uint64_t len = 0; len < 4; len++) {
		uint64_t c = ENABLE | len << 2;

		ck_assert_int_eq(ops->slot_type(KVMDBG_POOL_BP, c | 0x0), KVMDBG_BREAK_HW);
		ck_assert_int_eq(ops->slot_type(KVMDBG_POOL_BP, c | 0x1), KVMDBG_WATCH_WRITE);
		ck_assert_int_eq(ops->slot_type(KVMDBG_POOL_BP, c | 0x3), KVMDBG_WATCH_ACCESS);
	}
}
END_TEST

TEST_SUITE(x86_encode)
{
	add_test(tc, test_ops_table);
	add_test(tc, test_len_encodings);
	add_test(tc, test_exec_break);
	add_test(tc, test_cover_errors);
	add_test(tc, test_cover_huge);
	add_test(tc, test_cover_examples);
	add_test(tc, test_slot_type);
}

/* ---- suite x86_cover: exhaustive comparison with the brute-force minimum ---- */

START_TEST(test_cover_low_window)
{
	for (uint64_t addr = 0; addr < 64; addr++)
		check_window_addr(addr);
}
END_TEST

START_TEST(test_cover_top_window)
{
	/* The last 64 bytes of the address space: lengths stop where they would wrap. */
	for (uint64_t addr = UINT64_MAX - 63;; addr++) {
		check_window_addr(addr);
		if (addr == UINT64_MAX)
			break;
	}
}
END_TEST

START_TEST(test_cover_4g_window)
{
	for (uint64_t addr = (1ull << 32) - 48; addr < (1ull << 32) + 48; addr++)
		check_window_addr(addr);
}
END_TEST

START_TEST(test_cover_canonical_edges)
{
	/* Around the 48-bit canonical hole: the cover does not care, any address works. */
	for (uint64_t addr = 0x00007fffffffffc0ull; addr < 0x0000800000000040ull; addr++)
		check_window_addr(addr);
	for (uint64_t addr = 0xffff7fffffffffc0ull; addr < 0xffff800000000040ull; addr++)
		check_window_addr(addr);
}
END_TEST

START_TEST(test_brute_min_sanity)
{
	/* The reference itself, on cases worked out by hand. */
	ck_assert_uint_eq(brute_min(0, 8), 1);
	ck_assert_uint_eq(brute_min(0, 16), 2);
	ck_assert_uint_eq(brute_min(1, 7), 3);  /* 1 + 2 + 4 */
	ck_assert_uint_eq(brute_min(1, 14), 6); /* 1 + 2 + 4 + 4 + 2 + 1 */
	ck_assert_uint_eq(brute_min(7, 2), 2);
	ck_assert_uint_eq(brute_min(3, 10), 4);
	ck_assert_uint_eq(brute_min(UINT64_MAX, 1), 1);
	ck_assert_uint_eq(brute_min(UINT64_MAX - 7, 8), 1);
	ck_assert_uint_eq(brute_min(UINT64_MAX - 8, 9), 2);
}
END_TEST

/* xorshift64: a fixed, reproducible sequence. */
static uint64_t rnd(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

START_TEST(test_cover_random)
{
	struct kvmdbg_limits big = limits(KVMDBG_MAX_PIECES);
	struct kvmdbg_piece p[KVMDBG_MAX_PIECES];
	uint64_t state = 0x9e3779b97f4a7c15ull;

	/*
	 * Addresses anywhere in the 64-bit space, lengths up to MAX_BRUTE_LEN:
	 * the largest lengths need more pieces than KVMDBG_MAX_PIECES, so both
	 * outcomes are sampled. The low address bits are biased towards
	 * unaligned values, where the cover has work to do.
	 */
	for (unsigned int i = 0; i < 4000; i++) {
		uint64_t addr = rnd(&state);
		unsigned int len = 1 + (unsigned int)(rnd(&state) % MAX_BRUTE_LEN);
		enum kvmdbg_type type = i & 1 ? KVMDBG_WATCH_ACCESS : KVMDBG_WATCH_WRITE;
		unsigned int want;
		int n;

		if (i % 4 == 0)
			addr = UINT64_MAX - (addr % (2 * MAX_BRUTE_LEN)); /* near the top */
		if (len - 1 > UINT64_MAX - addr) {
			ck_assert_int_eq(ops->cover(&big, type, addr, len, p, KVMDBG_MAX_PIECES),
					 -EINVAL);
			continue;
		}
		want = brute_min(addr, len);
		n = ops->cover(&big, type, addr, len, p, KVMDBG_MAX_PIECES);
		if (want > KVMDBG_MAX_PIECES) {
			EXPECT(n == -ENOSPC, "addr %#llx len %u: %d, minimum %u",
			       (unsigned long long)addr, len, n, want);
			continue;
		}
		EXPECT(n == (int)want, "addr %#llx len %u: %d pieces, minimum %u",
		       (unsigned long long)addr, len, n, want);
		check_cover(type, addr, len, p, n);
	}
}
END_TEST

TEST_SUITE(x86_cover)
{
	add_test(tc, test_brute_min_sanity);
	add_test(tc, test_cover_low_window);
	add_test(tc, test_cover_top_window);
	add_test(tc, test_cover_4g_window);
	add_test(tc, test_cover_canonical_edges);
	add_test(tc, test_cover_random);
}

/* ---- suite x86_decode: synthetic KVM_EXIT_DEBUG exits ---- */

/* An applied state built through cover(), as the generic code does. */
static void put_slot(struct kvmdbg_hwstate *hw, unsigned int n, enum kvmdbg_type type,
		     uint64_t addr, uint64_t len)
{
	struct kvmdbg_limits lim = limits(4);
	struct kvmdbg_piece p[4];
	struct kvmdbg_hwslot *s = &hw->slot[KVMDBG_POOL_BP][n];

	ck_assert_int_eq(ops->cover(&lim, type, addr, len, p, 4), 1);
	s->value = p[0].value;
	s->ctrl = p[0].ctrl;
	s->start = p[0].start;
	s->len = p[0].len;
}

/* Four execution breakpoints in DR0-DR3. */
static void all_exec(struct kvmdbg_hwstate *hw)
{
	memset(hw, 0, sizeof(*hw));
	for (unsigned int n = 0; n < 4; n++)
		put_slot(hw, n, KVMDBG_BREAK_HW, 0x1000 + n, 1);
}

static struct kvmdbg_decoded decode_dr7(const struct kvmdbg_hwstate *hw, uint32_t vec,
					 uint64_t dr6, uint64_t dr7)
{
	struct kvmdbg_exit ex = { .exception = vec, .pc = 0x1234, .dr6 = dr6, .dr7 = dr7 };
	struct kvmdbg_decoded d;

	/* Poison: decode() must fill every field. */
	memset(&d, 0xa5, sizeof(d));
	ops->decode(hw, kvmdbg_hw_on(hw), &ex, &d);
	return d;
}

/* Decode with a DR7 that has every slot enabled, as the glue would set it. */
static struct kvmdbg_decoded decode(const struct kvmdbg_hwstate *hw, uint32_t vec, uint64_t dr6)
{
	return decode_dr7(hw, vec, dr6, 0x400 | 0xff);
}

START_TEST(test_decode_each_slot)
{
	struct kvmdbg_hwstate hw;

	all_exec(&hw);
	for (unsigned int n = 0; n < 4; n++) {
		struct kvmdbg_decoded d = decode(&hw, 1, DR6_ACTIVE_LOW | 1ull << n);

		ck_assert(d.recognised);
		ck_assert_uint_eq(d.hits, KVMDBG_HIT_BIT(KVMDBG_POOL_BP, n));
		ck_assert(!d.step);
		ck_assert(!d.swbp);
		ck_assert(!d.dbg_access);
		ck_assert(!d.raw.arm64.from_lower_el);
		ck_assert_uint_eq(d.raw.arm64.brk_imm, 0);
		ck_assert_uint_eq(d.data_addr, 0);
		ck_assert_int_eq(d.write, -1);
		ck_assert_uint_eq(d.raw.x86.dr6_other, 0);
	}
	/* All four at once. */
	ck_assert_uint_eq(decode(&hw, 1, DR6_ACTIVE_LOW | 0xf).hits, 0xf);
}
END_TEST

START_TEST(test_decode_active_low)
{
	struct kvmdbg_hwstate hw;
	struct kvmdbg_decoded d;

	all_exec(&hw);
	/* The SDM/KVM example: 0xffff0ff1 is B0 and nothing else. */
	d = decode(&hw, 1, 0xffff0ff1ull);
	ck_assert(d.recognised);
	ck_assert_uint_eq(d.hits, KVMDBG_HIT_BIT(KVMDBG_POOL_BP, 0));
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0);
	ck_assert(!d.step);

	/* Idle DR6: recognised #DB, but nothing in it. */
	d = decode(&hw, 1, DR6_ACTIVE_LOW);
	ck_assert(d.recognised);
	ck_assert_uint_eq(d.hits, 0);
	ck_assert(!d.step);
	ck_assert(!d.dbg_access);
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0);

	/* Reserved bits, including the upper half, are ignored whatever they hold. */
	d = decode(&hw, 1, 0xffffffff00000000ull | DR6_ACTIVE_LOW | 0x2);
	ck_assert_uint_eq(d.hits, KVMDBG_HIT_BIT(KVMDBG_POOL_BP, 1));
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0);
	/* Reserved bits 4-10 and 17-31 clear, reserved-0 bit 12 set: still just BS. */
	d = decode(&hw, 1, (DR6_ACTIVE_LOW & ~0xfffe07f0ull) | 0x1000 | DR6_BS);
	ck_assert(d.step);
	ck_assert_uint_eq(d.hits, 0);
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0);
}
END_TEST

START_TEST(test_decode_disabled_slots)
{
	struct kvmdbg_hwstate hw;
	struct kvmdbg_decoded d;

	/* Only DR0 and DR2 are enabled; the CPU may still set B1 and B3. */
	memset(&hw, 0, sizeof(hw));
	put_slot(&hw, 0, KVMDBG_BREAK_HW, 0x1000, 1);
	put_slot(&hw, 2, KVMDBG_WATCH_WRITE, 0x2000, 8);
	/* A disabled slot whose other fields are stale must still not count. */
	hw.slot[KVMDBG_POOL_BP][3].value = 0x3000;
	hw.slot[KVMDBG_POOL_BP][3].start = 0x3000;
	hw.slot[KVMDBG_POOL_BP][3].len = 1;

	d = decode(&hw, 1, DR6_ACTIVE_LOW | 0xf);
	ck_assert_uint_eq(d.hits, KVMDBG_HIT_BIT(KVMDBG_POOL_BP, 0) |
				  KVMDBG_HIT_BIT(KVMDBG_POOL_BP, 2));
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0xa); /* B1 | B3: candidate guest bits */
	ck_assert_uint_eq(d.data_addr, 0x2000);
	ck_assert_int_eq(d.write, 1);

	/* Only bits of disabled slots: no hit at all. */
	d = decode(&hw, 1, DR6_ACTIVE_LOW | 0x2);
	ck_assert(d.recognised);
	ck_assert_uint_eq(d.hits, 0);
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0x2);
	ck_assert_uint_eq(d.data_addr, 0);
	ck_assert_int_eq(d.write, -1);

	/* Nothing enabled: every B bit is someone else's. */
	memset(&hw, 0, sizeof(hw));
	d = decode(&hw, 1, DR6_ACTIVE_LOW | 0xf);
	ck_assert_uint_eq(d.hits, 0);
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0xf);
}
END_TEST

START_TEST(test_decode_step_and_hit)
{
	struct kvmdbg_hwstate hw;
	struct kvmdbg_decoded d;

	all_exec(&hw);
	/* BS alone. */
	d = decode(&hw, 1, DR6_ACTIVE_LOW | DR6_BS);
	ck_assert(d.recognised);
	ck_assert(d.step);
	ck_assert_uint_eq(d.hits, 0);
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0);
	/* A step that lands on a breakpoint reports both. */
	d = decode(&hw, 1, DR6_ACTIVE_LOW | DR6_BS | 0x4);
	ck_assert(d.step);
	ck_assert_uint_eq(d.hits, KVMDBG_HIT_BIT(KVMDBG_POOL_BP, 2));
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0);
	/* BS + a B bit of a disabled slot. */
	hw.slot[KVMDBG_POOL_BP][1].ctrl = 0;
	d = decode(&hw, 1, DR6_ACTIVE_LOW | DR6_BS | 0x2);
	ck_assert(d.step);
	ck_assert_uint_eq(d.hits, 0);
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0x2);
}
END_TEST

START_TEST(test_decode_bd)
{
	struct kvmdbg_hwstate hw;
	struct kvmdbg_decoded d;

	all_exec(&hw);
	d = decode(&hw, 1, DR6_ACTIVE_LOW | DR6_BD);
	ck_assert(d.recognised);
	ck_assert(d.dbg_access);
	ck_assert(!d.step);
	ck_assert_uint_eq(d.hits, 0);
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0);
	d = decode(&hw, 1, DR6_ACTIVE_LOW | DR6_BD | DR6_BS | 0x1);
	ck_assert(d.dbg_access);
	ck_assert(d.step);
	ck_assert_uint_eq(d.hits, 1);
}
END_TEST

START_TEST(test_decode_other_bits)
{
	struct kvmdbg_hwstate hw;
	struct kvmdbg_decoded d;

	all_exec(&hw);
	/*
	 * RTM is active-low: bit 16 clear means "inside an RTM region", which
	 * the CPU can only report with DR7.RTM (bit 11) set.
	 */
	d = decode_dr7(&hw, 1, (DR6_ACTIVE_LOW & ~DR6_RTM) | 0x1, 0x4ff | DR7_RTM);
	ck_assert_uint_eq(d.hits, 1);
	ck_assert_uint_eq(d.raw.x86.dr6_other, DR6_RTM);
	ck_assert(!d.guest_only); /* RTM only comes with another cause */
	d = decode_dr7(&hw, 1, DR6_ACTIVE_LOW | DR6_RTM | 0x1, 0x4ff | DR7_RTM);
	ck_assert_uint_eq(d.hits, 1);
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0);
	/*
	 * Without DR7.RTM a clear bit 16 is an artefact: older kernels built
	 * the VMX exit's DR6 as exit qualification | 0xfffe0ff0, leaving bit
	 * 16 at the qualification's positive-polarity 0.
	 */
	d = decode_dr7(&hw, 1, 0xfffe0ff0ull | 0x1, 0x4ff);
	ck_assert_uint_eq(d.hits, 1);
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0);
	d = decode_dr7(&hw, 1, 0xfffe0ff0ull | DR6_BS, 0);
	ck_assert(d.step);
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0);
	/* Bus-lock detect (bit 11) is active-low too. */
	d = decode(&hw, 1, DR6_ACTIVE_LOW & ~DR6_BLD);
	ck_assert(d.recognised);
	ck_assert_uint_eq(d.hits, 0);
	ck_assert_uint_eq(d.raw.x86.dr6_other, DR6_BLD);
	ck_assert(d.guest_only && !d.causeless);
	/* BT (task switch) is positive. */
	d = decode(&hw, 1, DR6_ACTIVE_LOW | DR6_BT);
	ck_assert_uint_eq(d.raw.x86.dr6_other, DR6_BT);
	ck_assert(d.guest_only);
	ck_assert(!d.step);
	/* All together, with a disabled slot's B bit. */
	hw.slot[KVMDBG_POOL_BP][3].ctrl = 0;
	d = decode_dr7(&hw, 1, ((DR6_ACTIVE_LOW | DR6_BT | DR6_BS | 0x9) & ~(DR6_RTM | DR6_BLD)),
		       0x4ff | DR7_RTM);
	ck_assert(d.step);
	ck_assert_uint_eq(d.hits, 1);
	ck_assert_uint_eq(d.raw.x86.dr6_other, DR6_BT | DR6_RTM | DR6_BLD | 0x8);
}
END_TEST

START_TEST(test_decode_watch)
{
	struct kvmdbg_hwstate hw;
	struct kvmdbg_decoded d;

	memset(&hw, 0, sizeof(hw));
	put_slot(&hw, 0, KVMDBG_BREAK_HW, 0x401000, 1);
	put_slot(&hw, 1, KVMDBG_WATCH_ACCESS, 0x3000, 8);
	put_slot(&hw, 2, KVMDBG_WATCH_WRITE, 0x2004, 4);
	put_slot(&hw, 3, KVMDBG_WATCH_WRITE, 0x2008, 2);

	/* Write slot: write = 1. */
	d = decode(&hw, 1, DR6_ACTIVE_LOW | 0x4);
	ck_assert_uint_eq(d.hits, KVMDBG_HIT_BIT(KVMDBG_POOL_BP, 2));
	ck_assert_uint_eq(d.data_addr, 0x2004);
	ck_assert_int_eq(d.write, 1);
	/* Access slot: x86 cannot tell a read from a write. */
	d = decode(&hw, 1, DR6_ACTIVE_LOW | 0x2);
	ck_assert_uint_eq(d.data_addr, 0x3000);
	ck_assert_int_eq(d.write, -1);
	/* Execution breakpoint only: no data address. */
	d = decode(&hw, 1, DR6_ACTIVE_LOW | 0x1);
	ck_assert_uint_eq(d.hits, 1);
	ck_assert_uint_eq(d.data_addr, 0);
	ck_assert_int_eq(d.write, -1);
	/* Several: the first hit watch slot in slot order, after an exec hit. */
	d = decode(&hw, 1, DR6_ACTIVE_LOW | 0xd);
	ck_assert_uint_eq(d.hits, 0xd);
	ck_assert_uint_eq(d.data_addr, 0x2004);
	ck_assert_int_eq(d.write, 1);
	d = decode(&hw, 1, DR6_ACTIVE_LOW | 0xe);
	ck_assert_uint_eq(d.data_addr, 0x3000);
	ck_assert_int_eq(d.write, -1);
	/* A disabled watch slot's B bit does not provide the data address. */
	hw.slot[KVMDBG_POOL_BP][1].ctrl = 0;
	d = decode(&hw, 1, DR6_ACTIVE_LOW | 0xa);
	ck_assert_uint_eq(d.hits, KVMDBG_HIT_BIT(KVMDBG_POOL_BP, 3));
	ck_assert_uint_eq(d.data_addr, 0x2008);
	ck_assert_int_eq(d.write, 1);
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0x2);
}
END_TEST

START_TEST(test_decode_multi_piece_watch)
{
	struct kvmdbg_limits lim = limits(4);
	struct kvmdbg_piece p[4];
	struct kvmdbg_hwstate hw;
	int n;

	/* A 7-byte watch at 0x5001 takes 1 + 2 + 4; each piece decodes to its own start. */
	n = ops->cover(&lim, KVMDBG_WATCH_WRITE, 0x5001, 7, p, 4);
	ck_assert_int_eq(n, 3);
	memset(&hw, 0, sizeof(hw));
	for (int i = 0; i < n; i++) {
		hw.slot[KVMDBG_POOL_BP][i].value = p[i].value;
		hw.slot[KVMDBG_POOL_BP][i].ctrl = p[i].ctrl;
		hw.slot[KVMDBG_POOL_BP][i].start = p[i].start;
		hw.slot[KVMDBG_POOL_BP][i].len = p[i].len;
	}
	for (int i = 0; i < n; i++) {
		struct kvmdbg_decoded d = decode(&hw, 1, DR6_ACTIVE_LOW | 1ull << i);

		ck_assert_uint_eq(d.hits, KVMDBG_HIT_BIT(KVMDBG_POOL_BP, i));
		ck_assert_uint_eq(d.data_addr, p[i].start);
		ck_assert_int_eq(d.write, 1);
	}
}
END_TEST

START_TEST(test_decode_bp_and_unknown)
{
	struct kvmdbg_hwstate hw;
	struct kvmdbg_decoded d;
	static const uint32_t others[] = { 0, 2, 4, 6, 13, 14, 32, 255, UINT32_MAX };

	all_exec(&hw);
	/* #BP: a software breakpoint; DR6 is irrelevant to it. */
	d = decode(&hw, 3, DR6_ACTIVE_LOW | 0xf | DR6_BS);
	ck_assert(d.recognised);
	ck_assert(d.swbp);
	ck_assert(d.swbp_our_kind); /* every INT3 may be ours */
	ck_assert(!d.step);
	ck_assert(!d.dbg_access);
	ck_assert_uint_eq(d.hits, 0);
	ck_assert_uint_eq(d.data_addr, 0);
	ck_assert_int_eq(d.write, -1);
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0);

	for (unsigned int i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		d = decode(&hw, others[i], DR6_ACTIVE_LOW | 0xf | DR6_BS);
		ck_assert(!d.recognised);
		ck_assert(!d.swbp);
		ck_assert(!d.step);
		ck_assert(!d.dbg_access);
		ck_assert(!d.raw.arm64.from_lower_el);
		ck_assert_uint_eq(d.raw.arm64.brk_imm, 0);
		ck_assert_uint_eq(d.hits, 0);
		ck_assert_uint_eq(d.data_addr, 0);
		ck_assert_int_eq(d.write, -1);
		ck_assert_uint_eq(d.raw.x86.dr6_other, 0);
	}
}
END_TEST

START_TEST(test_decode_ignores_other_pools)
{
	struct kvmdbg_hwstate hw;
	struct kvmdbg_decoded d;

	/* x86 has DR0-DR3 only: slots 4+ and the WP pool never produce hits. */
	memset(&hw, 0, sizeof(hw));
	for (unsigned int n = 4; n < KVMDBG_MAX_SLOTS; n++)
		hw.slot[KVMDBG_POOL_BP][n].ctrl = ENABLE;
	for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++)
		hw.slot[KVMDBG_POOL_WP][n].ctrl = ENABLE | 0x1;
	d = decode(&hw, 1, 0xffffffff00000000ull | DR6_ACTIVE_LOW | 0xf);
	ck_assert_uint_eq(d.hits, 0);
	ck_assert_uint_eq(d.raw.x86.dr6_other, 0xf);
}
END_TEST

TEST_SUITE(x86_decode)
{
	add_test(tc, test_decode_each_slot);
	add_test(tc, test_decode_active_low);
	add_test(tc, test_decode_disabled_slots);
	add_test(tc, test_decode_step_and_hit);
	add_test(tc, test_decode_bd);
	add_test(tc, test_decode_other_bits);
	add_test(tc, test_decode_watch);
	add_test(tc, test_decode_multi_piece_watch);
	add_test(tc, test_decode_bp_and_unknown);
	add_test(tc, test_decode_ignores_other_pools);
}
