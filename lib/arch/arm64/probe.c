// SPDX-License-Identifier: MIT
/*
 * The checks of kvmdbg_probe_verified() on arm64, run by the generic runner
 * (lib/probe.c) in its micro-VM: the snippets of probe-guest.S, with each
 * feature counting only if the exit KVM delivers is exactly the expected
 * one. Hardware slots are encoded by the library's own encoder
 * (kvmdbg_arm64_ops.cover) and applied by the glue (kvmdbg_host):
 *
 *   step         KVM_GUESTDBG_SINGLESTEP: one EC 0x32 exit per instruction,
 *                PC advancing by 4 each time, four times in a row
 *   hw_break     DBGBCR/DBGBVR on an instruction: EC 0x30 with PC = it
 *                (not executed: the DONE store has not happened)
 *   watch_write  DBGWCR LSC=store on a doubleword: a store gives EC 0x34,
 *                WnR = 1, FAR inside the doubleword, PC = the store
 *   watch_read   LSC=load: a load gives EC 0x34 with WnR = 0
 *   watch_access LSC=load|store: a load fires it
 *   sw_break     our BRK written into guest memory, KVM_GUESTDBG_USE_SW_BP:
 *                EC 0x3c, ISS = our immediate, PC = the BRK
 *   guest_regs_raw  the guest's own breakpoint 0 on an instruction (its
 *                DBGBCR0/DBGBVR0_EL1 and MDSCR_EL1.MDE, written with
 *                KVM_SET_ONE_REG) while the host debugs with USE_SW_BP
 *                only: EC 0x30 with PC = it. KVM before 6.14 runs the
 *                guest's registers then (MDCR_EL2.TDE routes the hit to
 *                it); 6.14's debug rework loads the host's set whenever
 *                userspace debugs, empty without USE_HW: the guest runs
 *                through to DONE
 *
 * Every guest path ends in an MMIO store (or, on any unexpected exception,
 * in the micro-VM's fail vectors, which also store to MMIO), so every
 * KVM_RUN returns; the runner bounds the KVM_RUNs of each started snippet
 * and the whole probe's time, which is a few dozen ioctls.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <linux/kvm.h>

#include "arch/arm64/regs.h"
#include "kvmdbg-int.h"
#include "microvm.h"

#define PROBE_MEM_SIZE   (1ull << 20)
#define PROBE_MMIO_DONE  ((1ull << 30) + 0xe0) /* probe-guest.S: PG_PORT_DONE */
#define PROBE_RUN_BUDGET 16
#define PROBE_TIMEOUT_NS (10 * 1000000000ll)

/* clang-format off */
#define PG_SYMS(X)                                                                             \
	X(kvmdbg_arm64_pg_start) X(kvmdbg_arm64_pg_step) X(kvmdbg_arm64_pg_bp)                 \
	X(kvmdbg_arm64_pg_bp_target) X(kvmdbg_arm64_pg_watch_w) X(kvmdbg_arm64_pg_watch_w_insn) \
	X(kvmdbg_arm64_pg_watch_r) X(kvmdbg_arm64_pg_watch_r_insn) X(kvmdbg_arm64_pg_brk)       \
	X(kvmdbg_arm64_pg_brk_insn) X(kvmdbg_arm64_pg_data) X(kvmdbg_arm64_pg_end)
/* clang-format on */

#define PG_DECLARE(s) extern const char s[];
PG_SYMS(PG_DECLARE)
#undef PG_DECLARE

static uint64_t gva(const struct kvmdbg_probe *p, const char *label)
{
	return p->code + (uint64_t)((uintptr_t)label - (uintptr_t)kvmdbg_arm64_pg_start);
}

/* One exit of interest: a debug exit (esr, far, pc) or the DONE store. */
struct probe_exit {
	bool debug, done;
	uint64_t esr, far, pc;
};

/*
 * Start at label (unless !start: go on where the vCPU stands) with the given
 * debug state, run until a debug exit or an MMIO store. True with *ex filled
 * (neither debug nor done: some other exit), false when it could not run.
 */
static bool run(struct kvmdbg_probe *p, const char *label, uint32_t ctl,
		const struct kvmdbg_hwstate *hw, bool start, struct probe_exit *ex)
{
	static const struct kvmdbg_hwstate none;

	memset(ex, 0, sizeof(*ex));
	if (start && !kvmdbg_probe_start(p, gva(p, label), p->vm->mem_size - 64))
		return false;
	/* Probing, made once: its ioctls through the hook (KVMDBG_IOCTL_SEAM). */
	if (kvmdbg_host.set_guest_debug(KVMDBG_IOCTL_SEAM, p->fd, ctl, hw ? hw : &none,
					kvmdbg_hw_on(hw ? hw : &none)))
		return false;
	while (kvmdbg_probe_run(p)) {
		struct kvmdbg_exit e;

		switch (p->run->exit_reason) {
		case KVM_EXIT_DEBUG:
			if (kvmdbg_host.read_exit(KVMDBG_IOCTL_SEAM, p->fd, p->run, true, &e))
				return false;
			ex->debug = true;
			ex->esr = e.esr;
			ex->far = e.far;
			ex->pc = e.pc;
			return true;
		case KVM_EXIT_MMIO:
			/* DONE or a fail vector: either way final. */
			ex->done = p->run->mmio.is_write &&
				   p->run->mmio.phys_addr == PROBE_MMIO_DONE;
			return true;
		case KVM_EXIT_INTR:
			continue;
		default:
			return true; /* anything else: the feature is not proven */
		}
	}
	return false;
}

static bool probe_step(struct kvmdbg_probe *p)
{
	uint64_t pc = gva(p, kvmdbg_arm64_pg_step);
	struct probe_exit ex;

	for (int i = 0; i < 4; i++) {
		if (!run(p, kvmdbg_arm64_pg_step, KVMDBG_CTL_ENABLE | KVMDBG_CTL_STEP, NULL, i == 0,
			 &ex))
			return false;
		pc += 4;
		if (!ex.debug || ESR_EC(ex.esr) != EC_SOFTSTP_LOW || ex.pc != pc)
			return false;
	}
	/* Stepping off: straight to the end, no further debug exit. */
	return run(p, NULL, 0, NULL, false, &ex) && ex.done;
}

/* One slot of pool holding the cover of (type, addr, len). */
static bool one_slot(enum kvmdbg_type type, uint64_t addr, uint64_t len, struct kvmdbg_hwstate *hw)
{
	const struct kvmdbg_limits lim = { .nr = { 1, 1 }, .allow_overcover = false };
	struct kvmdbg_piece pc[1];
	int n = kvmdbg_arm64_ops.cover(&lim, type, addr, len, pc, 1);
	struct kvmdbg_hwslot *s;

	if (n != 1)
		return false;
	memset(hw, 0, sizeof(*hw));
	s = &hw->slot[pc[0].pool][0];
	s->value = pc[0].value;
	s->ctrl = pc[0].ctrl;
	s->start = pc[0].start;
	s->len = pc[0].len;
	return true;
}

static bool probe_hw_break(struct kvmdbg_probe *p)
{
	uint64_t target = gva(p, kvmdbg_arm64_pg_bp_target);
	struct kvmdbg_hwstate hw;
	struct probe_exit ex;

	if (!one_slot(KVMDBG_BREAK_HW, target, 4, &hw))
		return false;
	if (!run(p, kvmdbg_arm64_pg_bp, KVMDBG_CTL_ENABLE | KVMDBG_CTL_HW, &hw, true, &ex))
		return false;
	return ex.debug && ESR_EC(ex.esr) == EC_BREAKPT_LOW && ex.pc == target;
}

static bool probe_watch(struct kvmdbg_probe *p, enum kvmdbg_type type, const char *label,
			const char *insn, bool write)
{
	uint64_t data = gva(p, kvmdbg_arm64_pg_data);
	struct kvmdbg_hwstate hw;
	struct probe_exit ex;

	if (!one_slot(type, data, 8, &hw))
		return false;
	if (!run(p, label, KVMDBG_CTL_ENABLE | KVMDBG_CTL_HW, &hw, true, &ex))
		return false;
	return ex.debug && ESR_EC(ex.esr) == EC_WATCHPT_LOW && !!(ex.esr & ESR_ISS_WNR) == write &&
	       ex.far >= data && ex.far < data + 8 && ex.pc == gva(p, insn);
}

static bool probe_sw_break(struct kvmdbg_probe *p)
{
	const struct kvmdbg_arch_ops *a = &kvmdbg_arm64_ops;
	uint64_t at = gva(p, kvmdbg_arm64_pg_brk_insn);
	uint32_t insn, imm;
	struct probe_exit ex;
	uint8_t orig[4];
	bool ok;

	memcpy(&insn, a->sw_insn, 4);
	imm = (insn >> 5) & 0xffff;
	memcpy(orig, p->vm->mem + at, 4);
	memcpy(p->vm->mem + at, a->sw_insn, 4);
	ok = run(p, kvmdbg_arm64_pg_brk, KVMDBG_CTL_ENABLE | KVMDBG_CTL_SW_BP, NULL, true, &ex) &&
	     ex.debug && ESR_EC(ex.esr) == EC_BRK64 && (ex.esr & ESR_ISS_COMMENT) == imm &&
	     ex.pc == at;
	memcpy(p->vm->mem + at, orig, 4);
	return ok;
}

/* The guest's breakpoint 0 as a guest would program it for EL1: E,
 * PMC = 0b01, BAS = 0b1111, HMC = SSC = 0. */
#define GUEST_BCR_EL1 (CR_E | (uint64_t)PXC_EL1 << CR_PXC_SHIFT | 0xfull << CR_BAS_SHIFT)

static int guest_reg(int fd, uint64_t id, uint64_t *val, bool set)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uintptr_t)val };
	int r = set ? kvmdbg_ioctl_chk(fd, KVM_SET_ONE_REG, &reg) :
		      kvmdbg_ioctl_chk(fd, KVM_GET_ONE_REG, &reg);

	return r < 0 ? r : 0;
}

/* The guest's breakpoint 0 on target (0: off) with MDSCR_EL1 mdscr. */
static int guest_bp0(int fd, uint64_t target, uint64_t mdscr)
{
	uint64_t bcr = target ? GUEST_BCR_EL1 : 0;
	int r = guest_reg(fd, REG_DBGBVR_EL1(0), &target, true);

	if (!r)
		r = guest_reg(fd, REG_DBGBCR_EL1(0), &bcr, true);
	if (!r)
		r = guest_reg(fd, REG_MDSCR_EL1, &mdscr, true);
	return r;
}

static bool probe_guest_regs_raw(struct kvmdbg_probe *p)
{
	uint64_t target = gva(p, kvmdbg_arm64_pg_bp_target), oslsr;
	int fd = p->fd;
	struct probe_exit ex;
	bool ok;

	/* Starting resets PC, PSTATE and MDSCR_EL1: the registers after it. */
	if (!kvmdbg_probe_start(p, gva(p, kvmdbg_arm64_pg_bp), p->vm->mem_size - 64))
		return false;
	/* The OS Lock masks the guest's debug exceptions: open it (a kernel
	 * without its emulation has no OSLSR_EL1 and no lock). */
	if (!guest_reg(fd, REG_OSLSR_EL1, &oslsr, false) && (oslsr & OSLSR_OSLK)) {
		oslsr &= ~OSLSR_OSLK;
		if (guest_reg(fd, REG_OSLSR_EL1, &oslsr, true))
			return false;
	}
	if (guest_bp0(fd, target, MDSCR_MDE | MDSCR_KDE))
		return false;
	ok = run(p, NULL, KVMDBG_CTL_ENABLE | KVMDBG_CTL_SW_BP, NULL, false, &ex) && ex.debug &&
	     ESR_EC(ex.esr) == EC_BREAKPT_LOW && ex.pc == target;
	/* Leave the guest's registers as they were for whatever runs next. */
	if (guest_bp0(fd, 0, 0))
		return false;
	return ok;
}

static int load_guest(struct kvmdbg_probe *p)
{
	size_t blob = (size_t)(kvmdbg_arm64_pg_end - kvmdbg_arm64_pg_start);

	return kvmdbg_microvm_load(p->vm, p->code, kvmdbg_arm64_pg_start, blob);
}

/* The checks, each gated by what the micro-VM's KVM advertises. */
static uint64_t check_step(struct kvmdbg_probe *p)
{
	return p->caps.guest_debug && p->caps.single_step && probe_step(p) ? KVMDBG_FEAT_STEP : 0;
}

static uint64_t check_hw_break(struct kvmdbg_probe *p)
{
	return p->caps.guest_debug && p->caps.hw_debug && p->caps.hw_breakpoints &&
			       probe_hw_break(p) ?
		       KVMDBG_FEAT_HW_BREAK :
		       0;
}

static bool can_watch(const struct kvmdbg_probe *p)
{
	return p->caps.guest_debug && p->caps.hw_debug && p->caps.hw_watchpoints;
}

static uint64_t check_watch_write(struct kvmdbg_probe *p)
{
	return can_watch(p) && probe_watch(p, KVMDBG_WATCH_WRITE, kvmdbg_arm64_pg_watch_w,
					   kvmdbg_arm64_pg_watch_w_insn, true) ?
		       KVMDBG_FEAT_WATCH_WRITE :
		       0;
}

static uint64_t check_watch_read(struct kvmdbg_probe *p)
{
	return can_watch(p) && probe_watch(p, KVMDBG_WATCH_READ, kvmdbg_arm64_pg_watch_r,
					   kvmdbg_arm64_pg_watch_r_insn, false) ?
		       KVMDBG_FEAT_WATCH_READ :
		       0;
}

/* A load and a store both fire a load|store watchpoint. */
static uint64_t check_watch_access(struct kvmdbg_probe *p)
{
	return can_watch(p) &&
			       probe_watch(p, KVMDBG_WATCH_ACCESS, kvmdbg_arm64_pg_watch_r,
					   kvmdbg_arm64_pg_watch_r_insn, false) &&
			       probe_watch(p, KVMDBG_WATCH_ACCESS, kvmdbg_arm64_pg_watch_w,
					   kvmdbg_arm64_pg_watch_w_insn, true) ?
		       KVMDBG_FEAT_WATCH_ACCESS :
		       0;
}

static uint64_t check_sw_break(struct kvmdbg_probe *p)
{
	return p->caps.guest_debug && p->caps.sw_breakpoints && probe_sw_break(p) ?
		       KVMDBG_FEAT_SW_BREAK :
		       0;
}

static uint64_t check_guest_regs_raw(struct kvmdbg_probe *p)
{
	return p->caps.guest_debug && p->caps.sw_breakpoints && probe_guest_regs_raw(p) ?
		       KVMDBG_FEAT_GUEST_REGS_RAW :
		       0;
}

static const struct kvmdbg_probe_check checks[] = {
	{ "step", check_step },
	{ "hw_break", check_hw_break },
	{ "watch_write", check_watch_write },
	{ "watch_read", check_watch_read },
	{ "watch_access", check_watch_access },
	{ "sw_break", check_sw_break },
	{ "guest_regs_raw", check_guest_regs_raw },
};

const struct kvmdbg_probe_checks kvmdbg_probe_checks =
	KVMDBG_PROBE_CHECKS(PROBE_MEM_SIZE, PROBE_RUN_BUDGET, PROBE_TIMEOUT_NS, load_guest, checks);
