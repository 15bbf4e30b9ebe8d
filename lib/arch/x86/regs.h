/* SPDX-License-Identifier: MIT */
/*
 * x86 register constants: the one place they are defined (as the KVM
 * selftests' include/x86/processor.h), for the library, its tests, examples
 * and benchmarks alike. No <asm/kvm.h> in here: the portable encoders and
 * the unit tests include it on every host.
 *
 * DR6 as the CPU (and KVM in kvm_run->debug.arch.dr6) reports it is "raw":
 * B0-B3, BD, BS and BT read 1 when their condition is present; bit 11 (BLD,
 * bus-lock detect) and bit 16 (RTM) are active-low, set when inactive; every
 * other bit reads 1. So a DR6 with nothing to report reads DR6_ACTIVE_LOW
 * (also its reset value), and raw ^ DR6_ACTIVE_LOW is positive polarity.
 * The DR6_* bits below are positive polarity.
 */
#ifndef KVMDBG_ARCH_X86_REGS_H
#define KVMDBG_ARCH_X86_REGS_H

/* Debug exception vectors (kvm_run->debug.arch.exception). */
#define X86_VEC_DB 1 /* #DB */
#define X86_VEC_BP 3 /* #BP (int3) */

#define X86_NR_DR 4 /* DR0-DR3 */

/* RFLAGS.RF: the next instruction ignores execution breakpoints. */
#define RFLAGS_RF (1ull << 16)

/* DR6, positive polarity. */
#define DR6_B(n)  (1ull << (n)) /* slot n's condition matched */
#define DR6_B_ALL 0xfull
#define DR6_BLD   (1ull << 11) /* bus-lock #DB (active-low in raw DR6) */
#define DR6_BD    (1ull << 13) /* debug-register access under DR7.GD */
#define DR6_BS    (1ull << 14) /* single step (TF) */
#define DR6_BT    (1ull << 15) /* task switch with T bit */
#define DR6_RTM   (1ull << 16) /* #DB inside an RTM region (active-low in raw DR6) */
/* Bits that read as 1 when inactive: reserved ones and the active-low
 * BLD/RTM; also DR6's reset value. */
#define DR6_ACTIVE_LOW 0xffff0ff0ull
/* Bits that carry information; everything else is reserved. */
#define DR6_VOLATILE (DR6_B_ALL | DR6_BLD | DR6_BD | DR6_BS | DR6_BT | DR6_RTM)

/* DR7. */
#define DR7_L(n)               (1ull << (2 * (n)))     /* slot n enabled, local */
#define DR7_G(n)               (1ull << (2 * (n) + 1)) /* slot n enabled, global */
#define DR7_GE                 (1ull << 9)             /* exact data breakpoints */
#define DR7_FIXED_1            0x400ull                /* bit 10 reads 1; DR7's reset value */
#define DR7_RTM                (1ull << 11)            /* RTM debugging: DR6.RTM can report */
#define DR7_GD                 (1ull << 13)            /* general detect: MOV DR raises #DB (BD) */
#define DR7_CTRL_SHIFT(n)      (16 + 4 * (n))          /* slot n's R/W | LEN << 2 nibble */
#define DR7_RW_LEN(n, rw, len) ((unsigned long long)((rw) | (len) << 2) << DR7_CTRL_SHIFT(n))

/* DR7 R/W field values (bits 0-1 of a slot's nibble). */
#define X86_RW_EXEC   0x0u
#define X86_RW_WRITE  0x1u
#define X86_RW_IO     0x2u
#define X86_RW_ACCESS 0x3u
#define X86_RW_MASK   0x3u

/* DR7 LEN field values (bits 2-3 of a slot's nibble); 8 bytes is 10b. */
#define X86_LEN_1 0x0u
#define X86_LEN_2 0x1u
#define X86_LEN_8 0x2u
#define X86_LEN_4 0x3u

/* Control registers, EFER, and the paging-structure entry bits. */
#define CR0_PE         (1ull << 0)
#define CR0_MP         (1ull << 1)
#define CR0_ET         (1ull << 4)
#define CR0_NE         (1ull << 5)
#define CR0_WP         (1ull << 16)
#define CR0_PG         (1ull << 31)
#define CR4_PAE        (1ull << 5)
#define CR4_OSFXSR     (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define EFER_LME       (1ull << 8)
#define EFER_LMA       (1ull << 10)
#define PTE_P          (1ull << 0)
#define PTE_RW         (1ull << 1)
#define PTE_US         (1ull << 2)
#define PTE_PS         (1ull << 7) /* a large page (PDE: 2 MiB) */

#endif /* KVMDBG_ARCH_X86_REGS_H */
