/* SPDX-License-Identifier: MIT */
/*
 * arm64 decoding of the single-step exit (see encode.c for the hardware
 * facts), inline: the first case of the decoder of arch ops .decode
 * (kvmdbg_arm64_decode, encode.c), and inlined into handle_exit's exit read
 * on arm64 hosts (kvmdbg_decode_exit in arch/backend.h): every step's exit
 * is one, and under nested TCG the call through the pointer and its return
 * each cost a lookup of the next translated block (issue 17). Portable, as
 * encode.c.
 */
#ifndef KVMDBG_ARCH_ARM64_DECODE_H
#define KVMDBG_ARCH_ARM64_DECODE_H

#include <stdbool.h>
#include <string.h>

#include "arch/arch.h"
#include "arch/arm64/regs.h"

/* Hidden, declared so here too: handle_exit compares with its address
 * without a GOT load. */
__attribute__((visibility("hidden"))) void kvmdbg_arm64_decode(const struct kvmdbg_hwstate *applied,
							       uint32_t on,
							       const struct kvmdbg_exit *exit,
							       struct kvmdbg_decoded *out);

/* A software-step exception's syndrome (EC 0x32 from a lower EL, 0x33 from
 * the current one). ESR[31:26] is the EC whatever hsr_high holds. */
static inline bool kvmdbg_arm64_esr_step(uint64_t esr)
{
	_Static_assert((EC_SOFTSTP_LOW | 1) == EC_SOFTSTP_CUR, "the step ECs differ in bit 0");
	return (ESR_EC(esr) | 1) == EC_SOFTSTP_CUR;
}

/* What kvmdbg_arm64_decode gives for a step's syndrome esr: a recognised
 * step, nothing to match, never hw_unmatched. */
static inline __attribute__((always_inline)) void
kvmdbg_arm64_decode_step(uint64_t esr, struct kvmdbg_decoded *out)
{
	memset(out, 0, sizeof(*out));
	out->write = -1;
	out->recognised = true;
	/* Kept apart: merged, GCC 12 loads the pair of constants from .rodata,
	 * one more data page per exit (bench/count/count --pages). */
	__asm__ volatile("" ::: "memory");
	out->step = true;
	/* KVM routes the guest's (EL1/EL0) debug exceptions to EL2: the _LOW ECs. */
	out->raw.arm64.from_lower_el = !(ESR_EC(esr) & 1);
}

#endif
