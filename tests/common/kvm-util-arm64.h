/* SPDX-License-Identifier: MIT */
/*
 * arm64 side of the `kvm` suite's helpers: tests/common/kvm-util-arm64.c implements
 * the kt_arch_* hooks through which the arch-neutral tests/common/kvm-util.c (test
 * VM, run loop, symbols) drives arm64 micro-VMs, plus the arm64-only helpers
 * below. Included by tests/guest/arm64-guests.S for the MMIO window.
 *
 * The guests' "out" port on arm64 is an aligned 32-bit store to
 * KA_PORT_ADDR(port) (KT_PORT_* of kvm-util.h): that address is no memory
 * in the micro-VM (lib/arch/arm64/microvm.c), so KVM exits with
 * KVM_EXIT_MMIO and the run loop reads the value.
 */
#ifndef KVMDBG_TEST_KVM_UTIL_ARM64_H
#define KVMDBG_TEST_KVM_UTIL_ARM64_H

#include "kvm-util.h" /* KT_PORT_*, and the API implemented for arm64 */

#define KA_MMIO_BASE       0x40000000 /* lib/arch/arm64/microvm.c: MICROVM_MMIO_GPA */
#define KA_MMIO_HI         0x4000     /* movz xN, #KA_MMIO_HI, lsl #16 */
#define KA_PORT_ADDR(port) (KA_MMIO_BASE + 8 * (port))
#define KA_MICROVM_FAIL    0x1ff /* port of the micro-VM's own fail vectors (+0xff8) */
#define KA_LOOP_N          5     /* iterations of g_loop */

/* g_ov: the guest's own debug registers (overlay). */
#define KA_OV_N            5      /* iterations */
#define KA_OV_SETUP        0x100  /* marker: the guest's registers are set */
#define KA_BCR_EL1_EL0     0x1e7  /* E, PMC 0b11, BAS 0b1111 */
#define KA_BCR_HOSTILE     0xe1e7 /* the same with HMC = 1, SSC = 0b11 */
#define KA_WCR_STORE8      0x1ff7 /* E, PAC 0b11, LSC store, BAS 0xff */
#define KA_MDSCR_MDE_KDE   0xa000 /* MDSCR_EL1.MDE | KDE */
#define KA_MDSCR_MDE       0x8000 /* MDSCR_EL1.MDE */

#ifndef __ASSEMBLER__

#include <stdint.h>

/* The arm64 guest blob (tests/guest/arm64-guests.S). */
/* clang-format off */
#define KA_GUEST_SYMS(X)                                                                       \
	X(kt_guest_start) X(kt_guest_end) X(kt_vectors) X(kt_fail_frame) X(kt_brk_count)      \
	X(kt_brk_esr) X(kt_brk_elr) X(kt_brk_spsr) X(kt_brk_vec) X(kt_svc_count)               \
	X(kt_svc_spsr) X(g_step) X(g_step_0) X(g_step_1) X(g_step_2) X(g_step_3) X(g_step_4)   \
	X(g_step_5) X(g_step_6) X(g_step_7) X(g_step_8) X(g_step_9) X(g_step_end) X(g_loop)    \
	X(g_loop_bp) X(g_loop_after) X(g_loop_count) X(g_watch) X(g_watch_w8) X(g_watch_r8)    \
	X(g_watch_w1) X(g_watch_other) X(g_watch_r1) X(g_watch_blk_w) X(g_watch_end)           \
	X(g_watch_var) X(g_watch_blk) X(g_watch8) X(g_daif) X(g_daif_bp) X(g_daif_next) X(g_daif3)            \
	X(g_daif3_bp) X(g_daifset) X(g_daifset_insn) X(g_daifset_next) X(g_daif_result) X(g_svc) X(g_svc_insn) X(g_brkg) X(g_brkg_insn)         \
	X(g_brkg_after) X(g_brkg_passed) X(g_brkg_ours) X(g_brkg_ours_insn)                    \
	X(g_brkg_ours_after) X(g_el0) X(g_el0_user) X(g_el0_brk) X(kt_dbg_count) X(kt_dbg_esr)  \
	X(kt_dbg_elr) X(kt_dbg_far) X(g_ov) X(g_ov_gbp) X(g_ov_hbp) X(g_ov_gw) X(g_ov_hw)      \
	X(g_ov_xbp) X(g_ov_gvar) X(g_ov_hvar) X(kt_dbg_vec) X(g_ovu) X(g_ovu_k) X(g_ovu_hbp)      \
	X(g_ovu_bp) X(g_ovs) X(g_ovs_insn) X(g_ovs_after) X(g_ovs_hbp) X(g_swhits)              \
	X(g_swhits_bp) X(g_swhits_n)
/* clang-format on */

#define KA_DECLARE_SYM(s) extern const char s[];
KA_GUEST_SYMS(KA_DECLARE_SYM)
#undef KA_DECLARE_SYM

/* ONE_REG of vCPU idx (asserting). */
uint64_t ka_get_reg(struct kt_vm *vm, unsigned int idx, uint64_t id);
void ka_set_reg(struct kt_vm *vm, unsigned int idx, uint64_t id, uint64_t val);
/* General-purpose register xN, PC, PSTATE. */
uint64_t ka_x(struct kt_vm *vm, unsigned int idx, unsigned int n);
uint64_t ka_pc(struct kt_vm *vm, unsigned int idx);
uint64_t ka_pstate(struct kt_vm *vm, unsigned int idx);
/* ESR of the last KVM_EXIT_DEBUG of vCPU idx, as KVM reported it. */
uint64_t ka_last_esr(const struct kt_vm *vm, unsigned int idx);
/* Little-endian 32-bit word at a guest address. */
uint32_t ka_peek32(const struct kt_vm *vm, uint64_t gva);

#endif /* __ASSEMBLER__ */
#endif
