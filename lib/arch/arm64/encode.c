/* SPDX-License-Identifier: MIT */
/*
 * arm64 backend, portable half: DBGBCR/DBGWCR encoding, the range cover for
 * watchpoints (BAS pieces and MASK regions) and ESR decoding.
 *
 * No <asm/kvm.h>, no ioctls: this file builds and is unit-tested on every
 * host. The facts below come from the Arm ARM (DDI 0487, chapter D2 "AArch64
 * Self-hosted Debug"), as also used by Linux (arch/arm64/kernel/hw_breakpoint.c,
 * arch/arm64/include/asm/{esr,brk-imm}.h) and KVM (arch/arm64/kvm/handle_exit.c).
 *
 * Register layouts (AArch64 view, the only one KVM_SET_GUEST_DEBUG takes):
 *
 *   DBGBCR<n>_EL1  [23:20] BT  [19:16] LBN  [15:14] SSC  [13] HMC  [8:5] BAS  [2:1] PMC  [0] E
 *   DBGWCR<n>_EL1  [28:24] MASK  [20] WT  [19:16] LBN  [15:14] SSC  [13] HMC  [12:5] BAS
 *                  [4:3] LSC  [2:1] PAC  [0] E
 *   DBGBVR/DBGWVR  [63:53] RESS  [52:49] VA or RESS (FEAT_LVA)  [48:2] VA  [1:0] RES0
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arch/arm64/decode.h"
#include "arch/arm64/regs.h"
#include "arch/backend.h"

/*
 * Our software breakpoint: BRK #KVMDBG_ARM64_BRK_IMM.
 *
 * The immediate lands in ESR.ISS[15:0] of the BRK exception (EC 0x3c), so the
 * generic code can tell our breakpoints from the guest's own BRKs. It must be
 * one no guest uses on purpose:
 *   #0            gdb/lldb running inside the guest, and most hand-written code
 *   #1, #2        clang's __builtin_trap (#1), Xen's BUG frame / fault (#1, #2)
 *   0x004-0x008   Linux kprobes, uprobes, kprobe single-step (and DTrace ports)
 *   0x100         Linux FAULT_BRK_IMM
 *   0x3e8         GCC's __builtin_trap (brk #1000)
 *   0x400-0x7ff   Linux KGDB (0x400 dynamic, 0x401 compiled)
 *   0x800         Linux BUG()/WARN()
 *   0x900-0x9ff   Linux KASAN (software tag-based)
 *   0x5500-0x55ff Linux UBSAN traps ('U' << 8)
 *   0x8000-0x83ff Linux kCFI traps (0x8xxx)
 *   0xc470-0xc473 pointer-authentication failure traps (clang)
 *   0xf000-0xf0ff LLVM debugtrap / Windows __debugbreak and fast-fail
 * 0x4b44 ("KD") is in none of those ranges.
 */
#define KVMDBG_ARM64_BRK_IMM 0x4b44u

/*
 * Virtual addresses the value registers can hold.
 *
 * DBGBVR/DBGWVR hold VA[48:2] on every implementation, VA[52:49] only with
 * FEAT_LVA; every bit above the VA field is RESS, a copy of the field's top
 * bit, and it is CONSTRAINED UNPREDICTABLE whether the comparison ignores the
 * RESS bits. So an address is only safe to program when it is sign-extended
 * from bit 48: bits [63:48] all equal. That is exactly the 48-bit VA space of
 * both translation regimes (TTBR0 0x0000..., TTBR1 0xffff...). A 52-bit
 * address (bits [51:48] not a copy of bit 63) written on a host without
 * FEAT_LVA could be compared as a different, sign-extended-from-48 address,
 * i.e. match bytes far outside the range; this encoder does not know whether
 * the host has FEAT_LVA, so it refuses such addresses (-EINVAL).
 *
 * Internally addresses are moved into a "linear" space by adding 2^48: the
 * valid VAs become the contiguous interval [0, 2^49), upper half first, and
 * alignment to any power of two up to 2^48 is preserved, so no range or
 * block computation below can overflow.
 */
#define VA_SIGN_BIT 48
#define LIN_BIAS    (1ull << VA_SIGN_BIT)
#define LIN_END     (2ull << VA_SIGN_BIT)

/* The largest MASK region: MASK = 31, 2 GiB. The smallest is MASK = 3 (8 bytes). */
#define MASK_MIN  3
#define MASK_MAX  31
#define BLOCK_MAX (1ull << MASK_MAX)

static inline uint64_t align_down(uint64_t x, uint64_t a)
{
	return x & ~(a - 1);
}

static inline uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static inline unsigned int ilog2_u64(uint64_t x)
{
	return 63 - (unsigned int)__builtin_clzll(x);
}

static inline int64_t sign_extend(uint64_t x, unsigned int bit)
{
	unsigned int sh = 63 - bit;

	return (int64_t)(x << sh) >> sh;
}

/* ---- range cover ---- */

/*
 * What one watchpoint slot can match:
 *  - a BAS piece: any contiguous run of bytes within one doubleword (DBGWVR
 *    8-byte aligned, BAS bit i = byte DBGWVR + i). Only a contiguous BAS
 *    is architecturally reliable for a watchpoint: which bytes between the
 *    set bits of a non-contiguous one match is not something to depend on,
 *    and Linux (hw_breakpoint.c), QEMU (hyp_gdbstub.c, "BAS must be
 *    contiguous") and KVM's selftests never program one. Neither does this.
 *  - a MASK region: a naturally aligned 2^MASK-byte block, MASK 3..31, with
 *    BAS = 0xff and the masked DBGWVR bits zero (anything else is
 *    CONSTRAINED UNPREDICTABLE). An 8-byte block is written as BAS = 0xff
 *    without MASK, which matches the same bytes.
 *
 * Both kinds form a laminar family: two aligned blocks are nested or
 * disjoint, and a BAS run lies inside one doubleword, itself a block. Hence:
 *
 * Exact cover (no byte outside [s, e) may match). A doubleword that the range
 * only partly covers needs a BAS piece of its own (every block containing
 * one of its range bytes also contains its outside bytes), and one piece is
 * enough since range ∩ doubleword is contiguous: at most a head and a tail
 * piece. The aligned middle [A, B) must be partitioned exactly into blocks;
 * the blocks contained in [A, B) that are maximal (not inside a larger one
 * contained in [A, B)) partition it, and any exact cover has at least one
 * piece inside each maximal block, so their number is the minimum. The
 * greedy walk "largest aligned block that fits at p" produces exactly them.
 *
 * Overcover allowed. Take a minimal cover: its pieces are pairwise disjoint
 * (nested ones are redundant; two BAS runs in one doubleword can be merged)
 * and each meets the range. Ordered by address, only the first can match
 * bytes below s and only the last bytes at or above e; every piece in between
 * lies inside the range. So either one piece covers everything (a BAS run, or
 * the smallest block containing [s, e)), or the cover is: a first piece L
 * containing s, an exact cover of the aligned middle, a last piece R
 * containing e - 1. L is the BAS run [s, next doubleword) or a block
 * containing s (at most 28 distinct ends), likewise R; trying every pair, with
 * the middle counted in closed form, finds the fewest slots and then the
 * fewest extra bytes. The exact cover is among the candidates and wins ties.
 */

/* Number of blocks the greedy exact cover of the aligned [a, b) takes (8 | a, b). */
static uint64_t blocks_count(uint64_t a, uint64_t b)
{
	uint64_t a2, b2, m;
	unsigned int h;

	if (a >= b)
		return 0;
	a2 = align_up(a, BLOCK_MAX);
	b2 = align_down(b, BLOCK_MAX);
	if (a2 <= b2) {
		/*
		 * Up to a2 the greedy walk adds the lowest set bit of p until
		 * a2: one block per set bit of a2 - a; then whole 2 GiB blocks;
		 * then from b2 one block per set bit of b - b2, largest first.
		 */
		return (uint64_t)__builtin_popcountll(a2 - a) + (b2 - a2) / BLOCK_MAX +
		       (uint64_t)__builtin_popcountll(b - b2);
	}
	/* No 2 GiB boundary inside: split at the highest bit where a and b differ. */
	h = ilog2_u64(a ^ b);
	m = align_down(b, 1ull << h);
	return (uint64_t)__builtin_popcountll(m - a) + (uint64_t)__builtin_popcountll(b - m);
}

/* Size of the greedy block at p, below b (8 | p, p < b). */
static uint64_t greedy_block(uint64_t p, uint64_t b)
{
	uint64_t sz = p ? p & -p : BLOCK_MAX;

	if (sz > BLOCK_MAX)
		sz = BLOCK_MAX;
	while (sz > b - p)
		sz >>= 1;
	return sz;
}

/* Slots of the exact cover of [s, e) (linear coordinates, s < e). */
static uint64_t exact_count(uint64_t s, uint64_t e)
{
	uint64_t a = align_up(s, 8), b = align_down(e, 8);

	if (align_down(s, 8) == align_down(e - 1, 8))
		return 1;
	return (s != a) + (e != b) + blocks_count(a, b);
}

/*
 * A cover that may match bytes outside the range, in linear coordinates:
 * one piece [ls, le) when single, else a first piece [ls, le), the exact
 * greedy cover of [le, rs), and a last piece [rs, re).
 */
struct plan {
	uint64_t n;     /* slots */
	uint64_t extra; /* bytes matched outside the range */
	bool single;
	uint64_t ls, le, rs, re;
};

struct span {
	uint64_t start, end, extra;
};

/* The fewest-slots, then fewest-extra-bytes overcover of [s, e), which spans
 * more than one doubleword. best->n is UINT64_MAX when nothing was found. */
static void plan_overcover(uint64_t s, uint64_t e, struct plan *best)
{
	struct span l[MASK_MAX + 1], r[MASK_MAX + 1];
	unsigned int nl = 0, nr = 0, m, i, j;
	uint64_t b, end, len = e - s;

	best->n = UINT64_MAX;
	best->extra = UINT64_MAX;

	/* One block holding the whole range: the smallest aligned one. */
	m = ilog2_u64(s ^ (e - 1)) + 1;
	if (m < MASK_MIN)
		m = MASK_MIN;
	if (m <= MASK_MAX) {
		b = align_down(s, 1ull << m);
		*best = (struct plan){ .n = 1,
				       .extra = (1ull << m) - len,
				       .single = true,
				       .ls = b,
				       .le = b + (1ull << m) };
	}

	/* First piece: the BAS run from s to its doubleword's end, or a larger
	 * block containing s; for blocks ending at the same place keep the
	 * smallest (fewest extra bytes). Blocks reaching e are the single case. */
	l[nl++] = (struct span){ s, align_down(s, 8) + 8, 0 };
	for (m = MASK_MIN + 1; m <= MASK_MAX; m++) {
		b = align_down(s, 1ull << m);
		end = b + (1ull << m);
		if (end >= e)
			break;
		if (end != l[nl - 1].end)
			l[nl++] = (struct span){ b, end, s - b };
	}
	/* Last piece, symmetrically around e - 1. */
	r[nr++] = (struct span){ align_down(e - 1, 8), e, 0 };
	for (m = MASK_MIN + 1; m <= MASK_MAX; m++) {
		b = align_down(e - 1, 1ull << m);
		if (b <= s)
			break;
		if (b != r[nr - 1].start)
			r[nr++] = (struct span){ b, b + (1ull << m), b + (1ull << m) - e };
	}

	for (i = 0; i < nl; i++) {
		for (j = 0; j < nr; j++) {
			struct plan p = {
				.single = false,
				.ls = l[i].start,
				.le = l[i].end,
				.rs = r[j].start,
				.re = r[j].end,
				.extra = l[i].extra + r[j].extra,
			};

			if (l[i].end > r[j].start)
				continue; /* overlapping means nested: the single case */
			p.n = 2 + blocks_count(l[i].end, r[j].start);
			if (p.n < best->n || (p.n == best->n && p.extra < best->extra))
				*best = p;
		}
	}
}

/* Encode the watchpoint piece [ls, le) (linear coordinates). */
static void put_piece(struct kvmdbg_piece *pc, uint64_t ls, uint64_t le, unsigned int lsc)
{
	uint64_t len = le - ls, start = ls - LIN_BIAS;
	uint64_t ctrl = CR_E | CR_PxC_EL1_EL0 | ((uint64_t)lsc << CR_LSC_SHIFT);

	if (len < 8) {
		/* BAS run inside one doubleword; DBGWVR is the doubleword. */
		uint64_t bas = ((1ull << len) - 1) << (start & 7);

		pc->value = align_down(start, 8);
		ctrl |= bas << CR_BAS_SHIFT;
	} else {
		/* Naturally aligned block: BAS = 0xff, MASK = log2(len) from 16 bytes up. */
		unsigned int mask = ilog2_u64(len);

		pc->value = start;
		ctrl |= 0xffull << CR_BAS_SHIFT;
		if (mask > MASK_MIN)
			ctrl |= (uint64_t)mask << CR_MASK_SHIFT;
	}
	pc->pool = KVMDBG_POOL_WP;
	pc->ctrl = ctrl;
	pc->start = start;
	pc->len = len;
}

/* Emit the greedy exact cover of the aligned [a, b). */
static unsigned int put_blocks(struct kvmdbg_piece *out, uint64_t a, uint64_t b, unsigned int lsc)
{
	unsigned int n = 0;

	while (a < b) {
		uint64_t sz = greedy_block(a, b);

		put_piece(&out[n++], a, a + sz, lsc);
		a += sz;
	}
	return n;
}

static int cover_break(const struct kvmdbg_limits *lim, uint64_t addr, uint64_t len,
		       struct kvmdbg_piece *out, unsigned int max)
{
	/* A64 instructions are 4 bytes, 4-aligned: DBGBVR[1:0] are RES0. */
	if ((addr & 3) || (len != 0 && len != 4))
		return -EINVAL;
	if (addr + LIN_BIAS >= LIN_END)
		return -EINVAL;
	if (lim->nr[KVMDBG_POOL_BP] < 1 || max < 1)
		return -ENOSPC;
	/*
	 * BT = 0b0000 unlinked address match, LBN = 0; BAS = 0b1111 (for an
	 * AArch64 instruction BAS must be all ones: it only selects halfwords
	 * of T32 code); HMC = 0, SSC = 0, PMC = 0b11: EL1 and EL0.
	 */
	out[0] = (struct kvmdbg_piece){
		.pool = KVMDBG_POOL_BP,
		.value = addr,
		.ctrl = CR_E | CR_PxC_EL1_EL0 | (0xfull << CR_BAS_SHIFT),
		.start = addr,
		.len = 4,
	};
	return 1;
}

static int arm64_cover(const struct kvmdbg_limits *lim, enum kvmdbg_type type, uint64_t addr,
		       uint64_t len, struct kvmdbg_piece *out, unsigned int max)
{
	unsigned int lsc, limit, k = 0;
	uint64_t s, e, n, a, b;
	struct plan plan;
	bool use_plan = false;

	switch (type) {
	case KVMDBG_BREAK_SW:
		return -EOPNOTSUPP; /* BRK is written to memory by the generic code */
	case KVMDBG_BREAK_HW:
		lsc = 0;
		break;
	case KVMDBG_WATCH_WRITE:
		lsc = LSC_STORE;
		break;
	case KVMDBG_WATCH_READ:
		lsc = LSC_LOAD;
		break;
	case KVMDBG_WATCH_ACCESS:
		lsc = LSC_LOAD | LSC_STORE;
		break;
	default:
		return -EINVAL;
	}
	if (!lim || (!out && max))
		return -EINVAL;
	if (type == KVMDBG_BREAK_HW)
		return cover_break(lim, addr, len, out, max);

	/* [addr, addr + len) may end at 2^64 but not wrap past it. */
	if (len == 0 || len - 1 > UINT64_MAX - addr)
		return -EINVAL;
	s = addr + LIN_BIAS;
	if (s >= LIN_END || len > LIN_END - s)
		return -EINVAL; /* not (entirely) a valid VA, see VA_SIGN_BIT */
	e = s + len;

	n = exact_count(s, e);
	if (lim->allow_overcover && n > 1) {
		plan_overcover(s, e, &plan);
		/* Only when it saves slots: on a tie the exact cover has no extra byte. */
		if (plan.n < n) {
			n = plan.n;
			use_plan = true;
		}
	}
	limit = lim->nr[KVMDBG_POOL_WP] < max ? lim->nr[KVMDBG_POOL_WP] : max;
	if (n > limit)
		return -ENOSPC;

	if (use_plan) {
		put_piece(&out[k++], plan.ls, plan.le, lsc);
		if (!plan.single) {
			k += put_blocks(&out[k], plan.le, plan.rs, lsc);
			put_piece(&out[k++], plan.rs, plan.re, lsc);
		}
	} else if (align_down(s, 8) == align_down(e - 1, 8)) {
		put_piece(&out[k++], s, e, lsc);
	} else {
		a = align_up(s, 8);
		b = align_down(e, 8);
		if (s != a)
			put_piece(&out[k++], s, a, lsc);
		k += put_blocks(&out[k], a, b, lsc);
		if (e != b)
			put_piece(&out[k++], b, e, lsc);
	}
	return (int)k;
}

/* ---- exit decoding ---- */

/*
 * Distance from x to the nearest byte watchpoint (value, ctrl) matches, 0 when
 * it matches x, UINT64_MAX when it can match nothing. Computed from the
 * registers alone, so it also serves slots the library did not encode (the
 * guest's own, merged by the overlay).
 */
static KVMDBG_STEP_ARM64 uint64_t wp_distance(uint64_t value, uint64_t ctrl, uint64_t x)
{
	unsigned int mask = (ctrl >> CR_MASK_SHIFT) & 0x1f;
	unsigned int bas = (ctrl >> CR_BAS_SHIFT) & 0xff;
	uint64_t lo, hi, base;

	if (mask >= MASK_MIN) {
		/* The low MASK bits of the address are not compared. */
		lo = align_down(value, 1ull << mask);
		hi = lo + ((1ull << mask) - 1);
	} else {
		/*
		 * MASK 0 (the reserved 1 and 2 behave as 0 or as a valid
		 * value; take 0): BAS bit i selects byte DBGWVR[..:3] + i; with
		 * DBGWVR[2] set only BAS[3:0] count, for the word at DBGWVR.
		 */
		base = value & ~3ull;
		if (value & 4)
			bas &= 0xf;
		if (!bas)
			return UINT64_MAX;
		lo = base + (unsigned int)__builtin_ctz(bas);
		hi = base + (31 - (unsigned int)__builtin_clz(bas));
		if (x >= lo && x <= hi && !((bas >> (x - base)) & 1)) {
			/* In the hole of a non-contiguous BAS (a guest's): nearest byte. */
			uint64_t d = UINT64_MAX;

			for (unsigned int i = 0; i < 8; i++) {
				uint64_t y = base + i;

				if ((bas >> i) & 1) {
					uint64_t di = y > x ? y - x : x - y;

					if (di < d)
						d = di;
				}
			}
			return d;
		}
	}
	if (x < lo)
		return lo - x;
	if (x > hi)
		return x - hi;
	return 0;
}

/*
 * The watchpoint slots an access at far hit. The FAR of a watchpoint is some
 * address of the access, not necessarily the watched byte: the Arm ARM
 * allows any address from the lowest address accessed (rounded down, e.g. to
 * 16 bytes or to a DC ZVA block) up to the highest watched one. So, as Linux
 * does (get_distance_from_watchpoint()), the hits are the slots that contain
 * FAR, or if none does, the nearest one(s). Slots whose LSC does not include
 * the access direction (ESR.WnR) are only considered when no slot does.
 * on: the pool's slots that may be enabled (bit i: slot i).
 */
static KVMDBG_STEP_ARM64 uint32_t wp_hits(const struct kvmdbg_hwstate *hw, uint32_t on, uint64_t far,
					  bool write)
{
	unsigned int dir = write ? LSC_STORE : LSC_LOAD;

	for (int pass = 0; pass < 2; pass++) {
		uint64_t best = UINT64_MAX;
		uint32_t hits = 0;
		bool any = false;

		for (uint32_t left = on & 0xffff; left; left &= left - 1) {
			unsigned int i = (unsigned int)__builtin_ctz(left);
			const struct kvmdbg_hwslot *sl = &hw->slot[KVMDBG_POOL_WP][i];
			unsigned int lsc = (sl->ctrl >> CR_LSC_SHIFT) & 3;
			uint64_t d;

			/* LSC 0b00 is reserved and behaves as disabled. */
			if (!(sl->ctrl & CR_E) || !lsc)
				continue;
			if (pass == 0 && !(lsc & dir))
				continue;
			any = true;
			d = wp_distance(sl->value, sl->ctrl, far);
			if (d == UINT64_MAX)
				continue;
			if (d < best) {
				best = d;
				hits = 0;
			}
			if (d == best)
				hits |= KVMDBG_HIT_BIT(KVMDBG_POOL_WP, i);
		}
		if (any)
			return hits;
	}
	return 0;
}

/*
 * The breakpoint slots matching an instruction at pc: enabled address-match
 * slots (BT 0b0000 unlinked, 0b0001 linked; the others match contexts, not
 * addresses) whose DBGBVR VA field [52:2] equals pc's and whose BAS selects
 * pc's halfword (0b1111 for A64; T32 code may use 0b0011 / 0b1100). on:
 * the pool's slots that may be enabled (bit i: slot i); the others are not
 * looked at (issue 17: a hit's decode went through all 16).
 */
static inline __attribute__((always_inline)) uint32_t bp_hits(const struct kvmdbg_hwstate *hw,
								uint32_t on, uint64_t pc)
{
	const uint64_t va_field = ((1ull << 53) - 1) & ~3ull;
	uint32_t hits = 0;

	for (uint32_t left = on & 0xffff; left; left &= left - 1) {
		unsigned int i = (unsigned int)__builtin_ctz(left);
		const struct kvmdbg_hwslot *sl = &hw->slot[KVMDBG_POOL_BP][i];
		unsigned int bt = (sl->ctrl >> CR_BT_SHIFT) & 0xf;
		unsigned int bas = (sl->ctrl >> CR_BAS_SHIFT) & 0xf;

		if (!(sl->ctrl & CR_E) || bt > 1)
			continue;
		if ((pc ^ sl->value) & va_field)
			continue;
		if (!((bas >> (pc & 3)) & 1))
			continue;
		hits |= KVMDBG_HIT_BIT(KVMDBG_POOL_BP, i);
	}
	return hits;
}

/* kvmdbg_arm64_decode past the step: out zeroed, write -1, by the
 * exception class of esr. Inline on an arm64 host, where handle_exit
 * decodes the step itself (kvmdbg_decode_exit) and the ops' decoder is
 * called for the others alone (KVMDBG_INLINE_ARM64, issue 17). */
static KVMDBG_HOT_ARM64 KVMDBG_INLINE_ARM64 void
arm64_decode_other(const struct kvmdbg_hwstate *applied, uint32_t on,
		   const struct kvmdbg_exit *exit, uint64_t esr, struct kvmdbg_decoded *out)
{
	if (!applied)
		on = 0;
	switch (ESR_EC(esr)) {
	case EC_BREAKPT_LOW:
	case EC_BREAKPT_CUR:
		/* Taken before the instruction executes: pc is its address. */
		out->recognised = true;
		out->hits = bp_hits(applied, on, exit->pc);
		break;
	case EC_WATCHPT_LOW:
	case EC_WATCHPT_CUR:
		/* Taken before the access completes. FAR may carry a top-byte
		 * tag (TBI); match with it removed, as Linux's untagged_addr(). */
		out->recognised = true;
		out->data_addr = exit->far;
		out->write = (esr & ESR_ISS_WNR) ? 1 : 0;
		out->hits = wp_hits(applied, on >> KVMDBG_MAX_SLOTS, (uint64_t)sign_extend(exit->far, 55),
				    out->write);
		break;
	case EC_BRK64:
	case EC_BKPT32:
		/* Same EC from every EL; the comment field is ISS[15:0]. */
		out->recognised = true;
		out->swbp = true;
		out->raw.arm64.brk_imm = (uint32_t)(esr & ESR_ISS_COMMENT);
		out->swbp_our_kind = out->raw.arm64.brk_imm == KVMDBG_ARM64_BRK_IMM;
		return;
	default:
		return;
	}
	/* A breakpoint or watchpoint exception that no applied slot explains. */
	out->hw_unmatched = !out->hits;
	/* KVM routes the guest's (EL1/EL0) debug exceptions to EL2: the _LOW ECs. */
	out->raw.arm64.from_lower_el = !(ESR_EC(esr) & 1);
}

KVMDBG_HOT_ARM64 void kvmdbg_arm64_decode(const struct kvmdbg_hwstate *applied, uint32_t on,
					  const struct kvmdbg_exit *exit, struct kvmdbg_decoded *out)
{
	if (!exit) {
		memset(out, 0, sizeof(*out));
		out->write = -1;
		return;
	}
	/* The most common exit (every step, the user's and the step-over's)
	 * first, before the jump table: nothing to match (issue 17). */
	if (kvmdbg_arm64_esr_step(exit->esr)) {
		kvmdbg_arm64_decode_step(exit->esr, out);
		return;
	}
	memset(out, 0, sizeof(*out));
	out->write = -1;
	arm64_decode_other(applied, on, exit, exit->esr, out);
}

static uint32_t arm64_guest_raw_hits(const struct kvmdbg_guest_regs *g,
				     const struct kvmdbg_exit *exit, bool exec_only)
{
	struct kvmdbg_hwstate raw;
	uint32_t hits = 0;

	memset(&raw, 0, sizeof(raw));
	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int n = 0; n < g->nr[pool] && n < KVMDBG_MAX_SLOTS; n++) {
			raw.slot[pool][n].value = g->value[pool][n];
			raw.slot[pool][n].ctrl = g->ctrl[pool][n];
		}
	switch (ESR_EC(exit->esr)) {
	case EC_BREAKPT_LOW:
	case EC_BREAKPT_CUR:
		hits = bp_hits(&raw, 0xffff, exit->pc);
		/* No address match: an enabled context-matching breakpoint
		 * (BT other than 0b000x) is the only other source. */
		for (unsigned int n = 0; !hits && n < KVMDBG_MAX_SLOTS; n++) {
			uint64_t ctrl = raw.slot[KVMDBG_POOL_BP][n].ctrl;

			if ((ctrl & CR_E) && ((ctrl >> CR_BT_SHIFT) & 0xf) > 1)
				hits |= KVMDBG_HIT_BIT(KVMDBG_POOL_BP, n);
		}
		return hits;
	case EC_WATCHPT_LOW:
	case EC_WATCHPT_CUR:
		if (exec_only)
			return 0;
		return wp_hits(&raw, 0xffff, (uint64_t)sign_extend(exit->far, 55),
			       !!(exit->esr & ESR_ISS_WNR));
	default:
		return 0;
	}
}

static enum kvmdbg_type arm64_slot_type(unsigned int pool, uint64_t ctrl)
{
	if (pool != KVMDBG_POOL_WP)
		return KVMDBG_BREAK_HW;
	switch ((ctrl >> CR_LSC_SHIFT) & 3) {
	case LSC_LOAD:
		return KVMDBG_WATCH_READ;
	case LSC_STORE:
		return KVMDBG_WATCH_WRITE;
	default:
		return KVMDBG_WATCH_ACCESS;
	}
}

/* ---- the guest's own registers (overlay) ---- */

/*
 * MDSCR_EL1 and the rules of AArch64 self-hosted debug that decide whether a
 * guest's breakpoint or watchpoint can generate an exception for it at all
 * (Arm ARM D2.5 "Enabling debug exceptions", AArch64.GenerateDebugExceptions
 * and the *Match() pseudocode):
 *  - breakpoints and watchpoints match only with MDSCR_EL1.MDE = 1;
 *  - from EL0 (the guest's debug exceptions target its EL1) they are taken
 *    whenever they match; from EL1 itself only with MDSCR_EL1.KDE = 1 and
 *    PSTATE.D = 0;
 *  - nothing is taken while the OS Lock is locked (the glue reports no
 *    registers then: see lib/arch/arm64/kvm.c).
 * While the host debugs with hardware slots (merged ones count), KVM sets
 * MDCR_EL2.TDE and forces MDE and KDE on, so every match of a merged slot
 * exits to the host, from any EL, whatever the
 * guest's MDSCR_EL1 or PSTATE.D: the sanitiser applies MDE and KDE here, so
 * that a slot the guest could not take an exception from does not match in
 * hardware either. PSTATE.D changes at every exception entry and cannot be
 * applied to a slot; the generic code must drop (and step past) a guest hit
 * taken at EL1 with PSTATE.D set.
 */

/*
 * The privilege fields a guest may use: HMC = 0, SSC = 0b00 and PMC / PAC
 * 0b01 (EL1), 0b10 (EL0) or 0b11 (both). With HMC = 0 and SSC = 0 that is
 * exactly the EL1/EL0 set; every other combination involves EL2, EL3, a
 * security state, or is reserved (0b0 00 00). Returns the PxC bits, or 0.
 */
static unsigned int guest_pxc(uint64_t ctrl)
{
	if ((ctrl & CR_HMC) || ((ctrl >> CR_SSC_SHIFT) & 3))
		return 0;
	return (unsigned int)(ctrl >> CR_PXC_SHIFT) & 3;
}

/* A valid VA for the value registers: sign-extended from bit 48 (see VA_SIGN_BIT). */
static bool guest_va_ok(uint64_t va)
{
	return va + LIN_BIAS < LIN_END;
}

/*
 * A guest breakpoint: only BT = 0b0000 (unlinked address match; LBN is
 * ignored for it and written as 0). BAS 0b1111 matches an A64 (or A32 /
 * 32-bit T32) instruction at DBGBVR; 0b0011 and 0b1100 the T32 halfword at
 * DBGBVR or DBGBVR + 2 (AArch32 EL0). Anything else is reserved or never
 * matches and is refused.
 */
static bool guest_bp(uint64_t value, uint64_t ctrl, unsigned int pxc, struct kvmdbg_hwslot *s)
{
	unsigned int bas = (unsigned int)(ctrl >> CR_BAS_SHIFT) & 0xf;
	uint64_t va = value & ~3ull;

	if (((ctrl >> CR_BT_SHIFT) & 0xf) != 0 || !guest_va_ok(va))
		return false;
	switch (bas) {
	case 0xf:
		s->start = va;
		s->len = 4;
		break;
	case 0x3:
		s->start = va;
		s->len = 2;
		break;
	case 0xc:
		s->start = va + 2;
		s->len = 2;
		break;
	default:
		return false;
	}
	s->value = va;
	s->ctrl = CR_E | (uint64_t)pxc << CR_PXC_SHIFT | (uint64_t)bas << CR_BAS_SHIFT;
	return true;
}

/*
 * A guest watchpoint: only WT = 0 (unlinked; LBN ignored), LSC != 0b00.
 * MASK 3..31 with BAS = 0xff watches the naturally aligned 2^MASK block
 * holding DBGWVR (written aligned: the masked bits must be zero); MASK 1
 * and 2 are reserved. MASK 0: a non-empty contiguous BAS, within the
 * doubleword at DBGWVR[..:3], or with DBGWVR[2] set within the word at
 * DBGWVR[..:2] (BAS[7:4] must then be 0); written as the doubleword with
 * the BAS shifted, which matches the same bytes.
 */
static bool guest_wp(uint64_t value, uint64_t ctrl, unsigned int pxc, struct kvmdbg_hwslot *s)
{
	unsigned int mask = (unsigned int)(ctrl >> CR_MASK_SHIFT) & 0x1f;
	unsigned int bas = (unsigned int)(ctrl >> CR_BAS_SHIFT) & 0xff;
	unsigned int lsc = (unsigned int)(ctrl >> CR_LSC_SHIFT) & 3;
	uint64_t out = CR_E | (uint64_t)pxc << CR_PXC_SHIFT | (uint64_t)lsc << CR_LSC_SHIFT;
	uint64_t va = value & ~3ull;
	unsigned int lo, run;

	if ((ctrl & CR_WT) || !lsc || !guest_va_ok(va))
		return false;
	if (mask) {
		if (mask < MASK_MIN || bas != 0xff)
			return false;
		va = align_down(va, 1ull << mask);
		/* The block lies within one half of the VA space (2^mask <= 2^31). */
		s->value = va;
		s->ctrl = out | 0xffull << CR_BAS_SHIFT | (uint64_t)mask << CR_MASK_SHIFT;
		s->start = va;
		s->len = 1ull << mask;
		return true;
	}
	if (va & 4) {
		if (bas & 0xf0)
			return false;
		bas <<= 4;
		va -= 4;
	}
	if (!bas)
		return false;
	lo = (unsigned int)__builtin_ctz(bas);
	run = bas >> lo;
	if (run & (run + 1))
		return false; /* not contiguous */
	s->value = va;
	s->ctrl = out | (uint64_t)bas << CR_BAS_SHIFT;
	s->start = va + lo;
	s->len = (uint64_t)__builtin_popcount(bas);
	return true;
}

static void arm64_guest_slots(const struct kvmdbg_guest_regs *g, struct kvmdbg_hwstate *out,
			      unsigned int *rejected)
{
	bool kde = g->mdscr & MDSCR_KDE;

	*out = (struct kvmdbg_hwstate){ 0 };
	*rejected = 0;
	/* Without MDE nothing of the guest's can match: nothing to merge, and
	 * nothing refused either (the glue does not even read the registers). */
	if (!(g->mdscr & MDSCR_MDE))
		return;
	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++) {
		unsigned int nr = g->nr[pool] < KVMDBG_MAX_SLOTS ? g->nr[pool] : KVMDBG_MAX_SLOTS;

		for (unsigned int n = 0; n < nr; n++) {
			uint64_t ctrl = g->ctrl[pool][n], value = g->value[pool][n];
			unsigned int pxc = guest_pxc(ctrl);
			struct kvmdbg_hwslot s;
			bool ok;

			if (!(ctrl & CR_E))
				continue;
			ok = pxc != 0 && (pool == KVMDBG_POOL_BP ? guest_bp(value, ctrl, pxc, &s)
								  : guest_wp(value, ctrl, pxc, &s));
			if (!ok) {
				(*rejected)++;
				continue;
			}
			/* Without KDE the guest takes none of it at EL1: keep the
			 * EL0 part, if any. Not refused: the guest may set KDE
			 * later, and then it fires. */
			if (!kde) {
				pxc &= PXC_EL0;
				if (!pxc)
					continue;
				s.ctrl = (s.ctrl & ~(3ull << CR_PXC_SHIFT)) |
					 (uint64_t)pxc << CR_PXC_SHIFT;
			}
			out->slot[pool][n] = s;
		}
	}
}

/* The guest gets the exception as it came: its syndrome, FAR, PC. */
static void arm64_guest_exception(const struct kvmdbg_decoded *dec,
				  const struct kvmdbg_guest_cause *c,
				  const struct kvmdbg_exit *exit, struct kvmdbg_reinject *out)
{
	(void)dec;
	(void)c;
	*out = (struct kvmdbg_reinject){.esr = exit->esr, .far = exit->far, .pc = exit->pc};
}

#define BRK_BYTE(n) ((uint8_t)(ARM64_BRK_INSN(KVMDBG_ARM64_BRK_IMM) >> (8 * (n))))

const struct kvmdbg_arch_ops kvmdbg_arm64_ops = {
	.arch = KVMDBG_ARCH_ARM64,
	.name = "arm64",
	.shared_pool = false,
	.sw_len = 4,
	.sw_align = 4,
	/* A64 instructions are little-endian in memory whatever the data endianness. */
	.sw_insn = { BRK_BYTE(0), BRK_BYTE(1), BRK_BYTE(2), BRK_BYTE(3) },
	.sw_imm = KVMDBG_ARM64_BRK_IMM,
	.cover = arm64_cover,
	/* Watchpoints are faults: the access has not happened at the stop,
	 * and FAR is the address the access used. */
	.watch_is_fault = true,
	.reports_data_addr = true,
	.decode = kvmdbg_arm64_decode,
	.slot_type = arm64_slot_type,
	.guest_slots = arm64_guest_slots,
	.guest_raw_hits = arm64_guest_raw_hits,
	.guest_exception = arm64_guest_exception,
};
