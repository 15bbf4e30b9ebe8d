/* SPDX-License-Identifier: MIT */
/*
 * x86-64: DR7 slot encoding, watchpoint range cover and DR6 decoding.
 *
 * Portable: no ioctls and no <asm/kvm.h>, so this file builds and is
 * unit-tested on every host. The ioctl glue (kvm.c) places each piece's
 * ctrl nibble into DR7 at bits 16 + 4n and sets the L/G enable bits.
 *
 * Hardware facts this file relies on (Intel SDM vol. 3, "Debug Registers";
 * AMD APM vol. 2 agrees):
 *  - DR0-DR3 hold linear addresses, one pool shared by execution
 *    breakpoints and data watchpoints.
 *  - DR7 R/Wn: 00 instruction execution, 01 data writes, 10 I/O
 *    reads/writes (only with CR4.DE), 11 data reads or writes. There is no
 *    "data reads only" condition, so read watchpoints cannot be done in
 *    hardware; they are refused with -EOPNOTSUPP (a debugger can fall
 *    back to an access watchpoint and compare values itself).
 *  - DR7 LENn: 00 = 1 byte, 01 = 2 bytes, 11 = 4 bytes, 10 = 8 bytes (the
 *    last only in 64-bit mode or on CPUs that support it). The address must
 *    be aligned to the length: the low bits are ignored by the hardware, so
 *    an unaligned DRn silently watches the aligned block around it.
 *  - Execution breakpoints must use LEN = 00 (anything else is undefined)
 *    and match the first byte of the instruction, whatever its length.
 *  - DR6 is read with its reserved bits 4-10 and 17-31 set and bit 12
 *    clear; bit 11 (BLD, bus-lock detect) and bit 16 (RTM) are active-low:
 *    set when inactive, *cleared* when their condition is present. So a
 *    DR6 with nothing to report reads DR6_ACTIVE_LOW (0xffff0ff0), and KVM
 *    reports kvm_run->debug.arch.dr6 in this raw form.
 *  - B0-B3 may be set for a slot whose condition matched even when that
 *    slot is not enabled in DR7, so a B bit alone never proves a hit.
 */
#include <errno.h>
#include <string.h>

#include "arch/backend.h"
#include "arch/x86/decode.h"
#include "arch/x86/regs.h"

#define X86_MAX_INSN	15	/* longest legal x86 instruction */
#define X86_MAX_WATCH	8	/* largest LEN */

/* DR7 LEN field for a 1/2/4/8-byte slot; note 8 bytes is 10b and 4 bytes is 11b. */
static unsigned int x86_len_field(uint64_t size)
{
	switch (size) {
	case 1:
		return 0x0;
	case 2:
		return 0x1;
	case 4:
		return 0x3;
	default: /* 8 */
		return 0x2;
	}
}

static uint64_t x86_ctrl(unsigned int rw, uint64_t size)
{
	return KVMDBG_X86_CTRL_ENABLE | rw | (uint64_t)x86_len_field(size) << 2;
}

static void x86_piece(struct kvmdbg_piece *p, unsigned int rw, uint64_t start, uint64_t size)
{
	p->pool = KVMDBG_POOL_BP;
	p->value = start;
	p->ctrl = x86_ctrl(rw, size);
	p->start = start;
	p->len = size;
}

/*
 * Largest slot that can start at addr without leaving [addr, addr + left):
 * the lowest set bit of addr bounds the alignment, left bounds the size.
 */
static uint64_t x86_piece_size(uint64_t addr, uint64_t left)
{
	uint64_t size = X86_MAX_WATCH;

	while (size > left || (addr & (size - 1)))
		size >>= 1;
	return size;
}

/*
 * Watchpoints: cover [addr, addr + len) exactly with naturally aligned
 * 1/2/4/8-byte slots, taking from the current address the largest slot that
 * is aligned there and does not run past the end.
 *
 * This greedy cover is minimal. Aligned power-of-two blocks are dyadic: two
 * of them are either disjoint or nested. Let s be the greedy block at the
 * start a of what is left, and take any exact cover of the rest. Its block
 * B containing a starts at a (nothing before a may be covered), so B is
 * aligned at a and inside the range; it cannot be larger than s, or the
 * greedy choice would have taken it. Any other block meeting [a, a + s)
 * lies inside [a, a + s) too (containing it would mean containing a, i.e.
 * being B). So the blocks meeting [a, a + s) partition it and can be
 * swapped for the single block s without adding pieces; by induction the
 * greedy cover is no larger than any other.
 *
 * The loop runs once per piece and stops at the limit, so a huge len costs
 * O(limit), not O(len).
 */
static int x86_cover_watch(unsigned int rw, uint64_t addr, uint64_t len, struct kvmdbg_piece *out,
			   unsigned int cap)
{
	uint64_t cur = addr, left = len;
	unsigned int n = 0;

	while (left) {
		uint64_t size = x86_piece_size(cur, left);

		if (n >= cap)
			return -ENOSPC;
		x86_piece(&out[n++], rw, cur, size);
		/* cur may wrap to 0 after the last byte 2^64 - 1; left is 0 then. */
		cur += size;
		left -= size;
	}
	return (int)n;
}

/*
 * On error, out may have been partly written; the caller's state is not
 * otherwise touched. Argument errors come before -ENOSPC, and an
 * unsupported type before a bad length.
 */
static int x86_cover(const struct kvmdbg_limits *lim, enum kvmdbg_type type, uint64_t addr,
		     uint64_t len, struct kvmdbg_piece *out, unsigned int max)
{
	unsigned int cap, rw;

	if (!lim || (!out && max))
		return -EINVAL;
	cap = lim->nr[KVMDBG_POOL_BP] < max ? lim->nr[KVMDBG_POOL_BP] : max;

	switch (type) {
	case KVMDBG_BREAK_SW:
		/* Not a hardware point: software breakpoints take no slot. */
		return -EOPNOTSUPP;
	case KVMDBG_WATCH_READ:
		/* RW = 10b is I/O, not data reads: x86 has no read-only match. */
		return -EOPNOTSUPP;
	case KVMDBG_BREAK_HW:
		/*
		 * len is the instruction length as gdb passes it (0 and 1 are
		 * common); it is validated, not covered: an execution
		 * breakpoint matches the instruction's first byte, LEN = 00.
		 */
		if (len > X86_MAX_INSN)
			return -EINVAL;
		if (cap < 1)
			return -ENOSPC;
		x86_piece(out, X86_RW_EXEC, addr, 1);
		return 1;
	case KVMDBG_WATCH_WRITE:
		rw = X86_RW_WRITE;
		break;
	case KVMDBG_WATCH_ACCESS:
		rw = X86_RW_ACCESS;
		break;
	default:
		return -EINVAL;
	}

	/* The last byte, addr + len - 1, must not wrap past 2^64 - 1. */
	if (len == 0 || len - 1 > UINT64_MAX - addr)
		return -EINVAL;
	return x86_cover_watch(rw, addr, len, out, cap);
}

static enum kvmdbg_type x86_slot_type(unsigned int pool, uint64_t ctrl)
{
	return kvmdbg_x86_slot_type(pool, ctrl);
}

/* Not in the hot region: on an x86 host handle_exit inlines the decoder
 * (kvmdbg_exit_decode_inline) without the watchpoint's data_addr and write, which
 * generic code reads only where the arch reports them (reports_data_addr);
 * the ops' decoder gives them. on may be more than the enabled slots (~0u):
 * the inline decoder is given exactly those, from the slots themselves. */
void kvmdbg_x86_decode(const struct kvmdbg_hwstate *applied, uint32_t on,
		       const struct kvmdbg_exit *exit, struct kvmdbg_decoded *out)
{
	uint32_t exact = 0;

	for (unsigned int n = 0; n < X86_NR_DR; n++)
		if ((on & KVMDBG_HIT_BIT(KVMDBG_POOL_BP, n)) && applied->slot[KVMDBG_POOL_BP][n].ctrl)
			exact |= KVMDBG_HIT_BIT(KVMDBG_POOL_BP, n);
	kvmdbg_x86_decode_inline(exact, exit, out);
	/*
	 * x86 reports no data address: the start of the lowest hit watch
	 * slot is the best answer. A write-only slot proves a write; an
	 * access slot cannot tell a read from a write.
	 */
	KVMDBG_FOR_EACH_SLOT(out->hits, pool, slot) {
		const struct kvmdbg_hwslot *s = &applied->slot[pool][slot];
		enum kvmdbg_type t = kvmdbg_x86_slot_type(pool, s->ctrl);

		if (t == KVMDBG_BREAK_HW)
			continue;
		out->data_addr = s->start;
		out->write = t == KVMDBG_WATCH_WRITE ? 1 : -1;
		break;
	}
}

/*
 * REP/REPNE string instructions (INS, OUTS, MOVS, CMPS, STOS, LODS, SCAS)
 * take a single-step trap after every iteration, with RIP still on the
 * instruction until the count runs out. Legacy prefixes may come in any
 * order before an optional REX byte and the one-byte opcode.
 *
 * LOCKed instructions too: they never leave RIP on themselves when they
 * complete (LOCK is only valid on memory read-modify-writes, never on a
 * jump), but KVM's instruction emulator, which software KVMs run guest
 * code in, can end a step without executing one that lost a cmpxchg race
 * with another vCPU.
 */
static bool x86_insn_restarts(const uint8_t *insn, size_t len)
{
	bool rep = false;
	size_t i = 0;

	for (; i < len && i < X86_MAX_INSN; i++) {
		switch (insn[i]) {
		case 0xf0: /* LOCK */
			return true;
		case 0xf2: /* REPNE */
		case 0xf3: /* REP / REPE */
			rep = true;
			continue;
		case 0x26: case 0x2e: case 0x36: case 0x3e: /* segment overrides */
		case 0x64: case 0x65:
		case 0x66: case 0x67: /* operand / address size */
			continue;
		}
		break;
	}
	if (i < len && (insn[i] & 0xf0) == 0x40) /* REX */
		i++;
	if (!rep || i >= len)
		return false;
	switch (insn[i]) {
	case 0x6c: case 0x6d: case 0x6e: case 0x6f: /* INS, OUTS */
	case 0xa4: case 0xa5: case 0xa6: case 0xa7: /* MOVS, CMPS */
	case 0xaa: case 0xab: case 0xac: case 0xad: /* STOS, LODS */
	case 0xae: case 0xaf:                       /* SCAS */
		return true;
	}
	return false;
}

/*
 * The guest's own DR0-3/DR7, for the overlay. Enabled means L or G set.
 * Re-encoded from the fields, so nothing but RW, LEN and the address
 * reaches the hardware: I/O breakpoints (RW = 10, which needs CR4.DE and
 * would watch the host's view of ports) are refused, GD and every other
 * DR7 bit are dropped, an execution breakpoint gets LEN = 00 (other values
 * are undefined), and the address is aligned to LEN as the CPU does.
 */
static void x86_guest_slots(const struct kvmdbg_guest_regs *g, struct kvmdbg_hwstate *out,
			    unsigned int *rejected)
{
	static const uint64_t len_bytes[4] = {1, 2, 8, 4};

	memset(out, 0, sizeof(*out));
	*rejected = 0;
	for (unsigned int n = 0; n < X86_NR_DR; n++) {
		unsigned int rw = (g->dr7 >> (16 + 4 * n)) & 3;
		unsigned int lenf = (g->dr7 >> (18 + 4 * n)) & 3;
		struct kvmdbg_hwslot *s = &out->slot[KVMDBG_POOL_BP][n];
		uint64_t size;

		if (!(g->dr7 & (3ull << (2 * n))))
			continue;
		if (rw == X86_RW_IO) {
			(*rejected)++;
			continue;
		}
		size = rw == X86_RW_EXEC ? 1 : len_bytes[lenf];
		s->start = g->value[KVMDBG_POOL_BP][n] & ~(size - 1);
		s->len = size;
		s->value = s->start;
		s->ctrl = x86_ctrl(rw, size);
	}
}

static uint32_t x86_guest_raw_hits(const struct kvmdbg_guest_regs *g,
				   const struct kvmdbg_exit *exit, bool exec_only)
{
	uint64_t dr6;
	uint32_t hits = 0;

	if (exit->exception != X86_VEC_DB)
		return 0;
	dr6 = (exit->dr6 ^ DR6_ACTIVE_LOW) & DR6_B_ALL;
	for (unsigned int n = 0; n < X86_NR_DR; n++) {
		unsigned int rw = (g->dr7 >> (16 + 4 * n)) & X86_RW_MASK;

		/* Matched (B bit) and enabled (L or G): the B bit alone is not
		 * enough, the CPU sets it for disabled slots too. */
		if (!(dr6 & DR6_B(n)) || !(g->dr7 & (3ull << (2 * n))))
			continue;
		if (rw == X86_RW_EXEC ? g->value[KVMDBG_POOL_BP][n] != exit->pc : exec_only)
			continue;
		hits |= KVMDBG_HIT_BIT(KVMDBG_POOL_BP, n);
	}
	return hits;
}

static bool x86_guest_traps_dbg_access(const struct kvmdbg_guest_regs *g)
{
	return g->dr7 & DR7_GD;
}

/*
 * #BP for the guest's own INT3, else #DB with the DR6 its handler must read:
 * B bits of its own slots that fired, BS, BD, and from the exit the bits
 * only the guest raises (BT, BLD) or that came with it (RTM: inside its
 * transaction).
 */
static void x86_guest_exception(const struct kvmdbg_decoded *dec,
				const struct kvmdbg_guest_cause *c, const struct kvmdbg_exit *exit,
				struct kvmdbg_reinject *out)
{
	uint64_t dr6 = dec->raw.x86.dr6_other & (DR6_BT | DR6_BLD | DR6_RTM);

	for (unsigned int n = 0; n < X86_NR_DR; n++)
		if (c->slots & KVMDBG_HIT_BIT(KVMDBG_POOL_BP, n))
			dr6 |= DR6_B(n);
	if (c->step)
		dr6 |= DR6_BS;
	if (c->dbg_access)
		dr6 |= DR6_BD;
	*out = (struct kvmdbg_reinject){
		.exception = c->swbp ? X86_VEC_BP : X86_VEC_DB,
		.dr6 = dr6,
		.esr = exit->esr,
		.far = exit->far,
		.pc = exit->pc,
	};
}

const struct kvmdbg_arch_ops kvmdbg_x86_ops = {
	.arch = KVMDBG_ARCH_X86_64,
	.name = "x86_64",
	.shared_pool = true,
	/* Data breakpoints are traps: the access has completed at the #DB. */
	.watch_is_fault = false,
	.sw_len = 1,
	.sw_align = 1,
	.sw_insn = { 0xcc }, /* int3 */
	.sw_imm = 0,         /* int3 has none */
	.icebp_len = 1,
	.icebp_insn = 0xf1,  /* ICEBP / INT1: a #DB trap, DR6 untouched */
	.cover = x86_cover,
	.decode = kvmdbg_x86_decode,
	.slot_type = x86_slot_type,
	.insn_restarts = x86_insn_restarts,
	.guest_slots = x86_guest_slots,
	.guest_raw_hits = x86_guest_raw_hits,
	.guest_traps_dbg_access = x86_guest_traps_dbg_access,
	.guest_exception = x86_guest_exception,
};
