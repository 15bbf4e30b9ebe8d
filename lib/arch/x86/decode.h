/* SPDX-License-Identifier: MIT */
/*
 * x86-64 DR6 decoding (see encode.c for the hardware facts), inline: the
 * decoder of arch ops .decode (kvmdbg_x86_decode, encode.c), and inlined
 * into handle_exit's exit read on x86 hosts (kvmdbg_exit_decode_inline in
 * arch/backend.h): under nested TCG the call through the pointer and its
 * return each cost a lookup of the next translated block after every exit
 * (issue 17). Portable, as encode.c.
 */
#ifndef KVMDBG_ARCH_X86_DECODE_H
#define KVMDBG_ARCH_X86_DECODE_H

#include <string.h>

#include "arch/arch.h"
#include "arch/x86/regs.h"

static inline enum kvmdbg_type kvmdbg_x86_slot_type(unsigned int pool, uint64_t ctrl)
{
	(void)pool; /* x86 has one shared pool */

	switch (ctrl & X86_RW_MASK) {
	case X86_RW_EXEC:
		return KVMDBG_BREAK_HW;
	case X86_RW_WRITE:
		return KVMDBG_WATCH_WRITE;
	case X86_RW_IO:
		/*
		 * cover() never produces I/O breakpoints; the closest type of
		 * one that comes from elsewhere: it fires on reads and writes.
		 */
	default: /* X86_RW_ACCESS */
		return KVMDBG_WATCH_ACCESS;
	}
}

/*
 * Everything of the exit but a watchpoint's data_addr and write (0 and -1
 * here: x86 reports neither, generic code reads them only where the arch
 * does, and the ops' kvmdbg_x86_decode adds them). A hit of applied slots
 * and nothing else, the common exit, stores its hits and no cause
 * (struct kvmdbg_decoded other 0). on is exactly the enabled slots of the
 * applied state (kvmdbg_hw_on: a vCPU's applied_on), not a superset as the
 * ops' decoder may be given: a B bit is a hit where on has the slot, one
 * mask.
 */
static inline __attribute__((always_inline)) void
kvmdbg_x86_decode_inline(uint32_t on, const struct kvmdbg_exit *exit,
			 struct kvmdbg_decoded *out)
{
	uint64_t dr6, named;
	uint32_t hits;

	memset(out, 0, sizeof(*out));
	out->write = -1;

	switch (exit->exception) {
	case X86_VEC_BP:
		/* int3: DR6 is not involved. The empty asm keeps the two
		 * flags' stores apart: merged, GCC 12 loads the pair from
		 * .rodata, a data page more at each INT3 exit (issue 17). */
		out->recognised = true;
		out->swbp = true;
		__asm__ volatile("" ::: "memory");
		out->swbp_our_kind = true; /* every INT3 is 0xCC, ours too */
		return;
	case X86_VEC_DB:
		break;
	default:
		return;
	}
	out->recognised = true;

	/*
	 * Raw DR6 -> positive polarity: XOR with the active-low mask turns
	 * the fixed-1 reserved bits into 0 and BLD/RTM into "1 = present".
	 * Reserved bits (including the upper 32) are dropped whatever they
	 * held, so garbage in them cannot look like a guest event.
	 */
	dr6 = (exit->dr6 ^ DR6_ACTIVE_LOW) & (DR6_VOLATILE & ~DR6_RTM);
	/*
	 * The CPU can only clear DR6.RTM when DR7.RTM (and DEBUGCTL.RTM) were
	 * set. Kernels whose DR6_FIXED_1 was 0xfffe0ff0 (before the RTM fix
	 * of the VMX exit path) reported bit 16 as the exit qualification's
	 * positive-polarity 0, which reads as "in RTM" here; trust the bit
	 * only when the DR7 that ran enabled RTM debugging.
	 */
	if (exit->dr7 & DR7_RTM)
		dr6 |= (exit->dr6 ^ DR6_ACTIVE_LOW) & DR6_RTM;

	/* A single-step and nothing else, the other common exit: what the
	 * causes below come to for it (no hit, nothing unexplained). */
	if (dr6 == DR6_BS) {
		out->step = true;
		return;
	}
	/* A B bit of a slot we did not enable is not our hit. DR6 bit n is
	 * DRn's, as KVMDBG_HIT_BIT(KVMDBG_POOL_BP, n). */
	_Static_assert(KVMDBG_HIT_BIT(KVMDBG_POOL_BP, 0) == 1 && DR6_B_ALL == 0xf, "DR6 B bits");
	hits = (uint32_t)(dr6 & DR6_B_ALL) & on;
	out->hits = hits;
	/* Hits of applied slots and nothing else: no cause (the memset left
	 * them false), nothing unexplained. */
	if (dr6 == hits && hits)
		return;

	/* The causes the CPU names besides a B bit. */
	named = dr6 & (DR6_BS | DR6_BD | DR6_BT | DR6_BLD);
	/* B bits of disabled slots, BT, BLD, RTM: not explained by us. */
	dr6 &= ~(DR6_BS | DR6_BD | (uint64_t)hits);
	out->raw.x86.dr6_other = dr6;
	out->step = named & DR6_BS;
	out->dbg_access = named & DR6_BD;
	out->hw_unmatched = dr6 & DR6_B_ALL;
	/* BLD: only the guest can enable bus-lock detection; BT: a task switch
	 * to a TSS with the T bit, the guest's own. */
	out->guest_only = dr6 & (DR6_BT | DR6_BLD);
	/* No cause the CPU names: a step, BD, BT and BLD set their bits, a
	 * slot's match its B bit. ICEBP (INT1) sets none; B bits of slots we
	 * did not enable may be left from any match (see above). */
	out->causeless = !named && !hits;
}

/* The decoder of kvmdbg_x86_ops (encode.c). Hidden: its address, compared
 * with at every exit, comes from a lea, not a load from the GOT (a data
 * page more) in a position-independent executable. */
__attribute__((visibility("hidden"))) void kvmdbg_x86_decode(const struct kvmdbg_hwstate *applied,
							     uint32_t on,
							     const struct kvmdbg_exit *exit,
							     struct kvmdbg_decoded *out);

#endif /* KVMDBG_ARCH_X86_DECODE_H */
