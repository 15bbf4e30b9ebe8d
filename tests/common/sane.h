/* SPDX-License-Identifier: MIT */
/* What a hardware slot handed to KVM may hold (tests and fuzz targets). */
#ifndef KVMDBG_TEST_SANE_H
#define KVMDBG_TEST_SANE_H

#include <stdbool.h>
#include <stdio.h>

#include "arch/backend.h"

/* A slot that may reach the hardware: re-encoded, nothing the guest could
 * use to watch the host (I/O, EL2, linked or context matches, reserved). */
static inline bool slot_sane(enum kvmdbg_arch arch, unsigned int pool, unsigned int n,
		      const struct kvmdbg_hwslot *s, char *why, size_t len)
{
	uint64_t c = s->ctrl;

	if (!c)
		return true;
	if (arch == KVMDBG_ARCH_X86_64) {
		static const uint64_t size_of[4] = {1, 2, 8, 4};
		unsigned int rw = c & 3, lenf = (c >> 2) & 3;

		if (pool != KVMDBG_POOL_BP || n >= 4)
			snprintf(why, len, "x86 slot %u/%u", pool, n);
		else if ((c & ~(KVMDBG_X86_CTRL_ENABLE | 0xfull)) || !(c & KVMDBG_X86_CTRL_ENABLE))
			snprintf(why, len, "x86 ctrl %#llx has bits beyond RW/LEN", (unsigned long long)c);
		else if (rw == 2)
			snprintf(why, len, "x86 I/O breakpoint");
		else if (rw == 0 && lenf)
			snprintf(why, len, "x86 execution breakpoint with LEN %u", lenf);
		else if (s->value % size_of[lenf])
			snprintf(why, len, "x86 address %#llx not aligned to %llu",
				 (unsigned long long)s->value, (unsigned long long)size_of[lenf]);
		else
			return true;
		return false;
	}
	if (!(c & 1) || !((c >> 1) & 3)) {
		snprintf(why, len, "arm64 ctrl %#llx: not enabled or no privilege", (unsigned long long)c);
		return false;
	}
	if (pool == KVMDBG_POOL_BP) {
		/* E, PMC, BAS[3:0]; HMC, SSC, LBN, BT zero: unlinked address match. */
		if (c & ~0x1e7ull) {
			snprintf(why, len, "arm64 DBGBCR %#llx has bits beyond E/PMC/BAS",
				 (unsigned long long)c);
			return false;
		}
		if (s->value & 3) {
			snprintf(why, len, "arm64 DBGBVR %#llx not word aligned",
				 (unsigned long long)s->value);
			return false;
		}
		return true;
	} else {
		unsigned int mask = (c >> 24) & 0x1f, bas = (c >> 5) & 0xff;
		uint64_t run;

		if (c & ~(0x1full | 0xffull << 5 | 0x1full << 24) || !((c >> 3) & 3)) {
			snprintf(why, len, "arm64 DBGWCR %#llx: reserved/HMC/SSC/WT/LBN bits or no LSC",
				 (unsigned long long)c);
			return false;
		}
		if (mask == 1 || mask == 2 || (mask && (bas != 0xff || s->value % (1ull << mask)))) {
			snprintf(why, len, "arm64 DBGWCR %#llx MASK %u with BAS %#x at %#llx",
				 (unsigned long long)c, mask, bas, (unsigned long long)s->value);
			return false;
		}
		run = bas ? (uint64_t)bas >> __builtin_ctz(bas) : 0;
		if (!mask && (!bas || (s->value & 3) || ((s->value & 4) && (bas >> 4)) ||
			      (run & (run + 1)))) {
			snprintf(why, len, "arm64 DBGWVR %#llx with BAS %#x", (unsigned long long)s->value,
				 bas);
			return false;
		}
		return true;
	}
}

#endif
