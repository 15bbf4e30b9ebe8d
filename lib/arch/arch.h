/* SPDX-License-Identifier: MIT */
/*
 * The portable part of the backend contract: struct kvmdbg_arch_ops and its
 * types (encoding, range cover, exit decoding), built and unit-tested on
 * every host for every arch, so no <asm/kvm.h> type appears here: exits come
 * in as struct kvmdbg_exit and hardware state goes out as struct
 * kvmdbg_hwstate. Include lib/arch/backend.h, which declares everything a
 * backend provides (this, the host ops, the micro-VM hooks, the verified
 * probe's checks).
 */
#ifndef KVMDBG_ARCH_H
#define KVMDBG_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmdbg/kvmdbg.h"

/*
 * The code every debug exit runs (issue 17), in one contiguous text region:
 * prepare and handle_exit with their fast paths, the decoders, the glue's
 * exit read, RF and KVM_SET_GUEST_DEBUG, the ioctl seam. The linkers' default scripts (GNU ld,
 * gold, lld) put every .text.hot.* input section together ahead of the rest
 * of .text, in a shared object and a static executable alike, so an exit
 * touches two or three code pages instead of one per source file: in a
 * nested-TCG bed each distinct page costs a TLB refill per exit
 * (bench/count/count --pages counts them; `nm -n` shows the layout).
 */
#define KVMDBG_HOT __attribute__((section(".text.hot.kvmdbg")))
/* The two-exit hit of the host's hardware points (a hit resumed by a
 * step, nothing else at the PC): resume_fast's step-over, the lock-free
 * apply of its step and the way back, the end of its step, the interrupt
 * mask and KVM_SET_GUEST_DEBUG, right after the hot region where the
 * linker sorts .text.sorted.* by name after .text.hot.* (GNU ld >= 2.35),
 * kept out of it so the one-exit path stays in one page, and under a page
 * itself, so that these two exits touch two code pages: under TCG a jump to
 * another page is a lookup of the next translated block, and a page first
 * touched after an exit a TLB refill. Elsewhere: grouped per object. */
#define KVMDBG_STEP __attribute__((section(".text.sorted.kvmdbg.1")))
/* A software breakpoint's two-exit hit besides KVMDBG_STEP's end of the
 * step and way back: its classification, the lift and the put-back, the
 * table's lookup, the guest's bytes written, and the glue's twins of the
 * interrupt mask and KVM_SET_GUEST_DEBUG (kvmdbg_host_set_guest_debug_sw,
 * kvmdbg_arm64_mask_irqs_sw) so that the hit and its resume touch the hot
 * page and this one; after KVMDBG_STEP (names sort so), which the hardware
 * points' hits then keep to themselves. */
#define KVMDBG_STEP_SW __attribute__((section(".text.sorted.kvmdbg.1sw")))
/* The rest of the step-over (its general begin and prepare, the
 * classifier's entry), after KVMDBG_STEP_SW. */
#define KVMDBG_STEP_REST __attribute__((section(".text.sorted.kvmdbg.2")))
/* The rest of the two-exit paths (compose, apply, the general classifier's
 * phases), after KVMDBG_STEP_REST. */
#define KVMDBG_WARM __attribute__((section(".text.sorted.kvmdbg.3")))
/* On the first function of KVMDBG_STEP (kvmdbg_stepover_end_fast:
 * stepover.c links first) and of KVMDBG_STEP_SW (swbp_hit_fast: classify.c
 * does): each region begins a page, so that the hardware points' two-exit
 * code (x86 2.7 KiB, arm64 3.7 KiB) is one page of its own and the
 * software breakpoint's the next, where the first was the hot page's tail
 * and the next page, the step's end straddling the two (under nested TCG
 * a jump across a page is a lookup of the next translated block). */
#define KVMDBG_REGION_START __attribute__((aligned(4096)))
/* The arch decoders are built on every host (portable, unit-tested); only
 * the host's own is hot. */
/* KVMDBG_INLINE_ARM64: inline into the host's own decoder on an arm64
 * host, where handle_exit decodes the step itself and the ops' decoder sees
 * the other exits alone (each call and return costs a lookup of the next
 * translated block under nested TCG); out of line elsewhere, where the
 * portable decoder also takes every step and would save more registers
 * for it. */
#if defined(__x86_64__)
#define KVMDBG_HOT_X86 KVMDBG_HOT
#define KVMDBG_HOT_ARM64
#define KVMDBG_STEP_ARM64
#define KVMDBG_INLINE_ARM64 __attribute__((noinline))
#elif defined(__aarch64__)
#define KVMDBG_HOT_X86
#define KVMDBG_HOT_ARM64 KVMDBG_HOT
/* arm64's watchpoint hits: every one is a two-exit operation (it stops
 * before the access), in KVMDBG_STEP's page anyway; the hot page keeps the
 * rest of the one-exit paths. */
#define KVMDBG_STEP_ARM64 KVMDBG_STEP
#define KVMDBG_INLINE_ARM64 inline __attribute__((always_inline))
#else
#define KVMDBG_HOT_X86
#define KVMDBG_HOT_ARM64
#define KVMDBG_STEP_ARM64
#define KVMDBG_INLINE_ARM64 __attribute__((noinline))
#endif

/* Slots per pool the library can manage (arm64 allows up to 16). */
#define KVMDBG_MAX_SLOTS 16
/* Most pieces one range cover may need (arm64: BAS pieces + MASK regions). */
/* Longest instruction any arch has (x86: 15 bytes). */
#define KVMDBG_MAX_INSN 15
#define KVMDBG_MAX_PIECES 32

enum kvmdbg_pool {
	KVMDBG_POOL_BP = 0, /* breakpoint registers; x86: the shared DR0-DR3 pool */
	KVMDBG_POOL_WP = 1, /* watchpoint registers (arm64 only) */
	KVMDBG_NR_POOLS = 2,
};

/* Bit of struct kvmdbg_event::hits / kvmdbg_decoded::hits for a slot. */
#define KVMDBG_HIT_BIT(pool, slot) (1u << ((pool) * 16 + (slot)))

/*
 * For each slot whose KVMDBG_HIT_BIT() is in mask, lowest bit first: the
 * statement runs with pool and slot (uint32_t, declared here, scoped to the
 * loop) naming it. mask is evaluated once; the loop looks at the set bits
 * only, however many slots there are.
 */
#define KVMDBG_FOR_EACH_SLOT(mask, pool, slot)                                                  \
	for (uint32_t kvmdbg_left_ = (mask), pool = 0, slot = 0;                               \
	     kvmdbg_left_ && ((pool) = (uint32_t)__builtin_ctz(kvmdbg_left_) / 16,              \
	     (slot) = (uint32_t)__builtin_ctz(kvmdbg_left_) % 16, 1);                          \
	     kvmdbg_left_ &= kvmdbg_left_ - 1)

/* What a range cover may use. */
struct kvmdbg_limits {
	unsigned int nr[KVMDBG_NR_POOLS]; /* host slots per pool (x86: nr[BP] = 4, nr[WP] = 0) */
	bool allow_overcover;             /* may match bytes outside the range to save slots */
};

/* One hardware slot's worth of a breakpoint or watchpoint. */
struct kvmdbg_piece {
	unsigned int pool;  /* enum kvmdbg_pool (x86: always KVMDBG_POOL_BP) */
	uint64_t value;     /* x86: DRn address; arm64: DBGBVR / DBGWVR */
	uint64_t ctrl;      /* arch encoding, independent of the slot number; never 0:
	                       x86: DR7 nibble RW | LEN << 2, plus KVMDBG_X86_CTRL_ENABLE;
	                       arm64: the whole DBGBCR / DBGWCR value with E = 1 */
	uint64_t start;     /* first byte this slot matches */
	uint64_t len;       /* bytes this slot matches (>= the part of the range it covers) */
};

/* x86: ctrl bit marking an enabled slot (the DR7 L/G bits are placed by the glue). */
#define KVMDBG_X86_CTRL_ENABLE (1ull << 8)

/* One slot of the hardware state a vCPU runs with; ctrl == 0 means disabled. */
struct kvmdbg_hwslot {
	uint64_t value;
	uint64_t ctrl;
	uint64_t start, len; /* as in struct kvmdbg_piece (for decoding) */
};

/* The whole debug-register state, arch-neutral. */
struct kvmdbg_hwstate {
	struct kvmdbg_hwslot slot[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS];
};

/* KVMDBG_HIT_BIT of every slot of hw below nr[pool] that is enabled
 * (ctrl != 0), without a branch per slot. */
static inline uint32_t kvmdbg_hw_on_below(const struct kvmdbg_hwstate *hw,
					  const unsigned int nr[KVMDBG_NR_POOLS])
{
	uint32_t on = 0;

	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int slot = 0; slot < nr[pool]; slot++)
			on |= (uint32_t)(hw->slot[pool][slot].ctrl != 0) << (pool * 16 + slot);
	return on;
}

/* ... of every slot: what the host op set_guest_debug is given with hw. */
static inline uint32_t kvmdbg_hw_on(const struct kvmdbg_hwstate *hw)
{
	static const unsigned int all[KVMDBG_NR_POOLS] = {KVMDBG_MAX_SLOTS, KVMDBG_MAX_SLOTS};

	return kvmdbg_hw_on_below(hw, all);
}

/* A KVM_EXIT_DEBUG, arch-neutral (filled by the glue from kvm_run, or by tests). */
struct kvmdbg_exit {
	uint32_t exception; /* x86: vector (1 = #DB, 3 = #BP) */
	bool pc_unread;     /* arm64: a single-step exit's PC not read (read_exit's step_pc) */
	uint64_t pc;        /* x86: linear RIP from KVM; arm64: PC read with ONE_REG */
	uint64_t dr6, dr7;  /* x86: as KVM reports them (DR6 with its active-low bits set) */
	uint64_t esr;       /* arm64: hsr | (hsr_high << 32 when valid) */
	uint64_t far;       /* arm64: valid for watchpoints only */
};

/*
 * What the hardware says happened, in slot terms, arch-neutral: generic code
 * decides from these fields alone. What only the arch's own hooks read stays
 * in raw.
 */
struct kvmdbg_decoded {
	bool recognised;    /* a debug exception this arch knows */
	/* Every cause besides hits, as bools, and all of them as one word:
	 * other == 0 is "hits and nothing else", other == KVMDBG_DEC_STEP_ONLY
	 * "a step and nothing else", one test each on every exit (issue 17). */
	union {
		struct {
			bool step;          /* single-step trap (x86 DR6.BS, arm64 EC
			                       0x32/0x33) */
			bool swbp;          /* breakpoint instruction (x86 #BP, arm64
			                       BRK/BKPT) */
			bool swbp_our_kind; /* swbp of the kind this library writes
			                       (x86 every INT3; arm64 a BRK with
			                       sw_imm): ours if the software
			                       breakpoint table says so */
			bool dbg_access;    /* a debug-register access trapped before
			                       it ran (x86 DR6.BD: a MOV DR under
			                       DR7.GD) */
			bool hw_unmatched;  /* a breakpoint/watchpoint match no
			                       applied slot explains (x86: a B bit of
			                       a slot not enabled, which the CPU may
			                       set for disabled slots too; arm64: a
			                       breakpoint or watchpoint EC with no
			                       hit): maybe the guest's own registers,
			                       if they were live */
			bool causeless;     /* x86: a #DB whose DR6 names no cause at
			                       all (no step, BD, BT, BLD, nor a hit of
			                       an applied slot; stale B bits aside):
			                       ICEBP (INT1) is the only one */
			bool guest_only;    /* a cause only the guest can have set up
			                       (x86 DR6.BT: a task switch to a TSS
			                       with the T bit; DR6.BLD: bus-lock
			                       detection, which only the guest
			                       enables) */
			bool other_zero_;   /* always false: the word's last byte */
		};
		uint64_t other;
	};
	uint32_t hits;      /* KVMDBG_HIT_BIT()s of the slots enabled in the applied
	                       state that match this exit */
	int write;          /* watchpoint: 1 write, 0 read, -1 unknown */
	uint64_t data_addr; /* watchpoint: arm64 FAR; x86: start of the first hit
	                       watch slot (the ops' decode; the x86 decoder inlined
	                       into handle_exit leaves it 0 and write -1: x86 does
	                       not report them, generic code reads neither there) */
	/* Raw facts for the arch's own hooks (guest_exception) and tests; generic
	 * code never reads them. Each arch leaves the other's zero. */
	struct {
		struct {
			uint64_t dr6_other; /* positive-polarity DR6 bits not explained
			                       by the applied state */
		} x86;
		struct {
			uint32_t brk_imm;   /* BRK/BKPT immediate */
			bool from_lower_el; /* EC says the exception came from a lower EL */
		} arm64;
	} raw;
};

/* struct kvmdbg_decoded other of a single-step trap and nothing else: step
 * is the word's first byte. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define KVMDBG_DEC_STEP_ONLY 1ull
#else
#define KVMDBG_DEC_STEP_ONLY (1ull << 56)
#endif
/* ... of a breakpoint instruction of the kind this library writes and
 * nothing else: swbp and swbp_our_kind, the word's second and third
 * bytes. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define KVMDBG_DEC_SWBP_OURS (1ull << 8 | 1ull << 16)
#else
#define KVMDBG_DEC_SWBP_OURS (1ull << 48 | 1ull << 40)
#endif

/* What classification found to be the guest's own in one exit, for the
 * arch to turn into the exception the guest gets (guest_exception). */
struct kvmdbg_guest_cause {
	bool swbp;       /* its own breakpoint instruction */
	bool step;       /* its own single-step trap */
	bool dbg_access; /* its own debug-register access trap */
	uint32_t slots;  /* KVMDBG_HIT_BIT()s of its own registers that fired, in
	                    the guest's numbering */
};

/* A guest-owned debug exception waiting to be delivered back to the guest
 * (filled by the arch's guest_exception, delivered by the host glue). */
struct kvmdbg_reinject {
	bool pending;
	uint32_t exception; /* x86: 1 (#DB) or 3 (#BP) */
	uint64_t dr6;       /* x86: positive-polarity DR6 bits the guest must see */
	uint64_t esr, far;  /* arm64: syndrome and fault address (watchpoints) */
	uint64_t pc;        /* where the exception was taken */
};

/* The guest's own debug registers, raw, as the glue read them (overlay). */
struct kvmdbg_guest_regs {
	unsigned int nr[KVMDBG_NR_POOLS]; /* guest-visible registers per pool */
	uint64_t value[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS]; /* x86 DR0-3 (pool BP);
							      arm64 DBGBVR / DBGWVR */
	uint64_t ctrl[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS];  /* arm64 DBGBCR / DBGWCR */
	uint64_t dr6, dr7; /* x86 */
	uint64_t mdscr;    /* arm64 MDSCR_EL1 */
};

struct kvmdbg_arch_ops {
	enum kvmdbg_arch arch;
	const char *name;
	bool shared_pool;          /* breakpoints and watchpoints share KVMDBG_POOL_BP */
	bool watch_is_fault;       /* watchpoints stop before the access (arm64), so
	                              resuming must step past them like breakpoints */
	bool reports_data_addr;    /* decode's data_addr and write are what the
	                              hardware reported (arm64 FAR, WnR), not a
	                              slot's start and a guess */
	unsigned int sw_len;       /* bytes of the software breakpoint instruction */
	unsigned int sw_align;     /* required alignment of a software breakpoint */
	uint8_t sw_insn[4];        /* the instruction bytes, little-endian as stored */
	uint32_t sw_imm;           /* its immediate, for which decode() sets
	                              swbp_our_kind (arm64 BRK #imm; 0 where there
	                              is none: x86) */
	unsigned int icebp_len;    /* x86 ICEBP (INT1, 0xF1): its length, 0 where the
	                              arch has no such instruction */
	uint8_t icebp_insn;        /* its opcode byte */

	/*
	 * Cover [addr, addr + len) for a point of this type with the fewest
	 * slots under lim. Execution breakpoints (KVMDBG_BREAK_HW) always take
	 * one KVMDBG_POOL_BP piece (len is validated, not covered).
	 * Returns the number of pieces written to out (at most max), or
	 * -EINVAL (len 0 for a watchpoint, wrap-around, an address the arch
	 * cannot use), -EOPNOTSUPP (type not available in hardware, e.g. x86
	 * read watchpoints, or KVMDBG_BREAK_SW), -ENOSPC (needs more slots of a
	 * pool than lim allows, or more than max pieces).
	 */
	int (*cover)(const struct kvmdbg_limits *lim, enum kvmdbg_type type, uint64_t addr,
		     uint64_t len, struct kvmdbg_piece *out, unsigned int max);

	/*
	 * Decode an exit against the hardware state the vCPU ran with. Pure:
	 * no guest access, no allocation. Always fills *out (recognised = false
	 * for an exit that is not a debug exception of this arch). on: the
	 * KVMDBG_HIT_BIT()s of applied's slots that may be enabled, a superset
	 * of those with ctrl != 0 (kvmdbg_hw_on(applied) exactly, ~0u for "do
	 * not know"); no other slot is looked at (issue 17: arm64 matches the
	 * PC or FAR against the enabled slots alone, not all 16 of a pool).
	 */
	void (*decode)(const struct kvmdbg_hwstate *applied, uint32_t on,
		       const struct kvmdbg_exit *exit, struct kvmdbg_decoded *out);

	/* The type a slot's ctrl encodes (KVMDBG_BREAK_HW or a KVMDBG_WATCH_*). */
	enum kvmdbg_type (*slot_type)(unsigned int pool, uint64_t ctrl);

	/*
	 * Whether the instruction whose first len bytes are insn can end a
	 * single-step with the PC still on itself, unfinished (x86 REP string
	 * instructions trap after each iteration). A step past a breakpoint on
	 * such an instruction goes on until the PC moves. NULL: none exist.
	 */
	bool (*insn_restarts)(const uint8_t *insn, size_t len);

	/*
	 * The slots the guest enabled in its own registers, sanitised, in the
	 * guest's own numbering (out->slot[pool][n] for guest register n):
	 * only what the guest could watch itself, re-encoded by this file, never
	 * copied (x86: no I/O breakpoints, no GD, LEN forced to 1 byte for
	 * execution, address aligned to LEN; arm64: EL1/EL0 privilege only, no
	 * HMC/SSC/EL2, unlinked address matches only, no reserved MASK). Each
	 * enabled register this refuses counts in *rejected.
	 */
	void (*guest_slots)(const struct kvmdbg_guest_regs *g, struct kvmdbg_hwstate *out,
			    unsigned int *rejected);
	/*
	 * The guest's own registers g, exactly as the guest set them (as KVM
	 * runs them where the host applies no slot), that explain exit: the
	 * KVMDBG_HIT_BIT()s of the enabled ones that match it, in the guest's
	 * numbering (x86: a B bit in DR6 of a slot the guest's DR7 enables,
	 * an execution breakpoint only at the PC; arm64: what the ESR's
	 * breakpoint/watchpoint EC and the PC/FAR select). exec_only: execution
	 * breakpoints only. 0 for an exit that is no such match.
	 */
	uint32_t (*guest_raw_hits)(const struct kvmdbg_guest_regs *g, const struct kvmdbg_exit *exit,
				   bool exec_only);
	/*
	 * Whether the guest's own registers g trap its debug-register accesses
	 * (x86 DR7.GD), so that such a trap at an exit is the guest's. NULL:
	 * the arch has no such trap (decode never sets dbg_access).
	 */
	bool (*guest_traps_dbg_access)(const struct kvmdbg_guest_regs *g);
	/*
	 * The exception the guest must get for cause c at exit (decoded as
	 * dec): every field of *out but pending (x86: the vector and the DR6
	 * bits, with the raw ones only the guest raises or that came with it,
	 * BT, BLD, RTM; arm64: the syndrome and FAR as they came).
	 */
	void (*guest_exception)(const struct kvmdbg_decoded *dec,
				const struct kvmdbg_guest_cause *c, const struct kvmdbg_exit *exit,
				struct kvmdbg_reinject *out);
};

extern const struct kvmdbg_arch_ops kvmdbg_x86_ops;
extern const struct kvmdbg_arch_ops kvmdbg_arm64_ops;

#endif /* KVMDBG_ARCH_H */
