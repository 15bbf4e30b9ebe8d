/* SPDX-License-Identifier: MIT */
/*
 * arm64 register constants: the one place they are defined (as the KVM
 * selftests' include/arm64/processor.h), for the library, its tests,
 * examples and benchmarks alike. The bit fields are portable (the encoders
 * and the unit tests use them on every host); the ONE_REG ids at the end
 * need arm64's <asm/kvm.h> and exist only on arm64 hosts.
 */
#ifndef KVMDBG_ARCH_ARM64_REGS_H
#define KVMDBG_ARCH_ARM64_REGS_H

#include <stdint.h>

/* ESR_ELx: exception class (ESR[31:26]), IL, and the ISS of debug exceptions. */
#define ESR_EC_SHIFT    26
#define ESR_EC(esr)     (((esr) >> ESR_EC_SHIFT) & 0x3f)
#define ESR_IL          (1ull << 25) /* 32-bit instruction */
#define ESR_ISS_WNR     (1ull << 6)  /* watchpoint: the access was a write */
#define ESR_ISS_EX      (1ull << 6)  /* software step: a load-exclusive was stepped */
#define ESR_ISS_ISV     (1ull << 24) /* software step: EX is valid */
#define ESR_ISS_COMMENT 0xffffull    /* BRK / BKPT: the immediate */
#define ESR_FSC_DEBUG   0x22ull      /* IFSC / DFSC of a breakpoint / watchpoint */
/* An ESR of class ec with IL set and an empty ISS (tests build exits with it). */
#define ESR_FOR_EC(ec) ((unsigned long long)(ec) << ESR_EC_SHIFT | ESR_IL)

/* Debug exception classes: the "lower EL" ones are even, +1 is the same EL. */
#define EC_BREAKPT_LOW 0x30
#define EC_BREAKPT_CUR 0x31
#define EC_SOFTSTP_LOW 0x32
#define EC_SOFTSTP_CUR 0x33
#define EC_WATCHPT_LOW 0x34
#define EC_WATCHPT_CUR 0x35
#define EC_BKPT32      0x38
#define EC_BRK64       0x3c

/* BRK #imm. */
#define ARM64_BRK_INSN(imm) (0xd4200000u | ((uint32_t)(imm) << 5))

/* DBGBCR<n>_EL1 / DBGWCR<n>_EL1 fields. */
#define CR_E           (1ull << 0)
#define CR_PXC_SHIFT   1           /* PMC / PAC: privilege */
#define CR_PxC_EL1_EL0 (3ull << 1) /* PMC / PAC = 0b11: EL1 and EL0 (HMC = 0, SSC = 0) */
#define CR_LSC_SHIFT   3           /* watchpoints: load/store control */
#define CR_BAS_SHIFT   5           /* byte address select */
#define CR_HMC         (1ull << 13)
#define CR_SSC_SHIFT   14
#define CR_BT_SHIFT    20           /* breakpoints: type */
#define CR_WT          (1ull << 20) /* watchpoints: linked */
#define CR_MASK_SHIFT  24
#define PXC_EL1        1u /* PMC / PAC bit 0: match at EL1 */
#define PXC_EL0        2u /* PMC / PAC bit 1: match at EL0 */
#define LSC_LOAD       1u
#define LSC_STORE      2u

/* MDSCR_EL1, OSLSR_EL1. */
#define MDSCR_SS   (1ull << 0)
#define MDSCR_KDE  (1ull << 13)
#define MDSCR_MDE  (1ull << 15)
#define OSLSR_OSLK (1ull << 1)

/* PSTATE (SPSR layout for AArch64). */
#define PS_MODE_MASK 0x1full
#define PS_MODE_EL0t 0x0ull
#define PS_MODE_EL1t 0x4ull
#define PS_MODE_EL1h 0x5ull
#define PS_MODE32    (1ull << 4) /* nRW: the exception came from AArch32 */
#define PS_F         (1ull << 6)
#define PS_I         (1ull << 7)
#define PS_A         (1ull << 8)
#define PS_D         (1ull << 9)
#define PS_DAIF      (PS_D | PS_A | PS_I | PS_F)
#define PS_AIF       (PS_A | PS_I | PS_F)
#define PS_BTYPE     (3ull << 10)
#define PS_SSBS      (1ull << 12)
#define PS_SS        (1ull << 21)
#define PS_PAN       (1ull << 22)
#define PS_UAO       (1ull << 23)
#define PS_DIT       (1ull << 24)
#define PS_TCO       (1ull << 25)

/* SCTLR_EL1. */
#define SCTLR_SPAN  (1ull << 23)
#define SCTLR_DSSBS (1ull << 44)

/* Exception vector offsets from VBAR_EL1 (synchronous exceptions). */
#define VEC_CUR_SP0   0x000
#define VEC_CUR_SPX   0x200
#define VEC_LOWER_A64 0x400
#define VEC_LOWER_A32 0x600

/*
 * What an instruction does to PSTATE.A, I and F that the library's mask
 * around a step (A, I, F set for it: lib/arch/arm64/kvm.c) would hide:
 * *set gets the bits MSR DAIFSet, #imm sets; *whole is 1 for MSR DAIF, Xt
 * and ERET, ERETAA, ERETAB, which write all three (the value after the
 * step is theirs). Anything else hides nothing (MSR DAIFClr's clears are
 * seen after the step, an exception entered is recognised there).
 */
#define ARM64_MSR_DAIFSET      0xd50340dfu /* | imm << 8 */
#define ARM64_MSR_DAIFCLR      0xd50340ffu /* | imm << 8 */
#define ARM64_MSR_DAIF_XT      0xd51b4220u /* | Rt */
#define ARM64_ERET             0xd69f03e0u
#define ARM64_ERETAA           0xd69f0bffu
#define ARM64_ERETAB           0xd69f0fffu
static inline void arm64_insn_daif(uint32_t insn, uint64_t *set, int *whole)
{
	*set = 0;
	*whole = 0;
	if ((insn & 0xfffff0ffu) == ARM64_MSR_DAIFSET)
		*set = (uint64_t)((insn >> 8) & 7) << 6; /* imm: D A I F, PSTATE bits 9..6 */
	else if ((insn & 0xffffffe0u) == ARM64_MSR_DAIF_XT || insn == ARM64_ERET ||
		 insn == ARM64_ERETAA || insn == ARM64_ERETAB)
		*whole = 1;
}

#if defined(__aarch64__)
#include <linux/kvm.h>

/* ONE_REG ids. */
#define CORE_REG(name) \
	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(name))
#define REG_X(n)             CORE_REG(regs.regs[n])
#define REG_SP               CORE_REG(regs.sp)
#define REG_PC               CORE_REG(regs.pc)
#define REG_PSTATE           CORE_REG(regs.pstate)
#define REG_SP_EL1           CORE_REG(sp_el1)
#define REG_ELR_EL1          CORE_REG(elr_el1)
#define REG_SPSR_EL1         CORE_REG(spsr[KVM_SPSR_EL1])
#define REG_ESR_EL1          ARM64_SYS_REG(3, 0, 5, 2, 0)
#define REG_FAR_EL1          ARM64_SYS_REG(3, 0, 6, 0, 0)
#define REG_VBAR_EL1         ARM64_SYS_REG(3, 0, 12, 0, 0)
#define REG_SCTLR_EL1        ARM64_SYS_REG(3, 0, 1, 0, 0)
#define REG_ID_AA64DFR0_EL1  ARM64_SYS_REG(3, 0, 0, 5, 0)
#define REG_ID_AA64PFR1_EL1  ARM64_SYS_REG(3, 0, 0, 4, 1)
#define REG_ID_AA64MMFR1_EL1 ARM64_SYS_REG(3, 0, 0, 7, 1)
/* Debug system registers are op0 = 2 (op0 = 3, CRn = 0 is the ID space). */
#define REG_MDSCR_EL1     ARM64_SYS_REG(2, 0, 0, 2, 2)
#define REG_OSLSR_EL1     ARM64_SYS_REG(2, 0, 1, 1, 4)
#define REG_DBGBVR_EL1(n) ARM64_SYS_REG(2, 0, 0, (n), 4)
#define REG_DBGBCR_EL1(n) ARM64_SYS_REG(2, 0, 0, (n), 5)
#define REG_DBGWVR_EL1(n) ARM64_SYS_REG(2, 0, 0, (n), 6)
#define REG_DBGWCR_EL1(n) ARM64_SYS_REG(2, 0, 0, (n), 7)
#endif /* __aarch64__ */

#endif /* KVMDBG_ARCH_ARM64_REGS_H */
