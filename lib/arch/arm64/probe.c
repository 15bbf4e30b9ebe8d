// SPDX-License-Identifier: MIT
/*
 * kvmdbg_probe_verified() on arm64: a throwaway micro-VM (lib/microvm.h)
 * runs the snippets of probe-guest.S and each feature counts only if the
 * exit KVM delivers is exactly the expected one:
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
 * KVM_RUN returns; each check makes a bounded number of runs and the whole
 * probe is a few dozen ioctls.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <linux/kvm.h>

#include "kvmdbg-int.h"
#include "microvm.h"

/* Called through kvmdbg_host.probe_verified (kvm.c). */
int kvmdbg_arm64_probe_verified(int kvm_fd, uint64_t *features);

#define PROBE_MEM_SIZE  (1ull << 20)
#define PROBE_MMIO_DONE ((1ull << 30) + 0xe0) /* probe-guest.S: PG_PORT_DONE */
#define PROBE_MAX_RUNS  16

#define EC_BREAKPT_LOW 0x30
#define EC_SOFTSTP_LOW 0x32
#define EC_WATCHPT_LOW 0x34
#define EC_BRK64       0x3c
#define ESR_EC(esr)    (((esr) >> 26) & 0x3f)
#define ESR_WNR        (1ull << 6)

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

struct probe {
	struct kvmdbg_microvm m;
	struct kvmdbg_caps caps;
	int err; /* the first failure to set up or run the micro-VM */
};

static uint64_t gva(const struct probe *p, const char *label)
{
	return p->m.code_gpa + (uint64_t)(label - kvmdbg_arm64_pg_start);
}

/* One exit of interest: a debug exit (esr, far, pc) or the DONE store. */
struct probe_exit {
	bool debug, done;
	uint64_t esr, far, pc;
};

/*
 * Start at label with the given debug state, run until a debug exit or an
 * MMIO store. Returns 0 (with *ex filled) or a negative errno. A refused
 * KVM_SET_GUEST_DEBUG only means the feature is not there; a micro-VM that
 * cannot be started or run is an error of the whole probe (p->err).
 */
static int run(struct probe *p, const char *label, uint32_t ctl, const struct kvmdbg_hwstate *hw,
	       bool start, struct probe_exit *ex)
{
	static const struct kvmdbg_hwstate none;
	struct kvm_run *kr = p->m.run[0];
	int fd = p->m.vcpu_fd[0];
	int r;

	memset(ex, 0, sizeof(*ex));
	if (start) {
		r = kvmdbg_microvm_start(&p->m, 0, gva(p, label), p->m.mem_size - 64);
		if (r)
			goto fail;
	}
	r = kvmdbg_host.set_guest_debug(fd, ctl, hw ? hw : &none);
	if (r)
		return r;
	for (int i = 0; i < PROBE_MAX_RUNS; i++) {
		struct kvmdbg_exit e;

		r = kvmdbg_ioctl(fd, KVM_RUN, NULL);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0)
			goto fail;
		switch (kr->exit_reason) {
		case KVM_EXIT_DEBUG:
			r = kvmdbg_host.read_exit(fd, kr, &e);
			if (r)
				return r;
			ex->debug = true;
			ex->esr = e.esr;
			ex->far = e.far;
			ex->pc = e.pc;
			return 0;
		case KVM_EXIT_MMIO:
			/* DONE or a fail vector: either way final. */
			ex->done = kr->mmio.is_write && kr->mmio.phys_addr == PROBE_MMIO_DONE;
			return 0;
		case KVM_EXIT_INTR:
			continue;
		default:
			return 0; /* anything else: the feature is not proven */
		}
	}
	r = -ETIMEDOUT;
fail:
	if (!p->err)
		p->err = r;
	return r;
}

static bool probe_step(struct probe *p)
{
	uint64_t pc = gva(p, kvmdbg_arm64_pg_step);
	struct probe_exit ex;

	for (int i = 0; i < 4; i++) {
		if (run(p, kvmdbg_arm64_pg_step, KVMDBG_CTL_ENABLE | KVMDBG_CTL_STEP, NULL, i == 0,
			&ex))
			return false;
		pc += 4;
		if (!ex.debug || ESR_EC(ex.esr) != EC_SOFTSTP_LOW || ex.pc != pc)
			return false;
	}
	/* Stepping off: straight to the end, no further debug exit. */
	if (run(p, NULL, 0, NULL, false, &ex))
		return false;
	return ex.done;
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

static bool probe_hw_break(struct probe *p)
{
	uint64_t target = gva(p, kvmdbg_arm64_pg_bp_target);
	struct kvmdbg_hwstate hw;
	struct probe_exit ex;

	if (!one_slot(KVMDBG_BREAK_HW, target, 4, &hw))
		return false;
	if (run(p, kvmdbg_arm64_pg_bp, KVMDBG_CTL_ENABLE | KVMDBG_CTL_HW, &hw, true, &ex))
		return false;
	return ex.debug && ESR_EC(ex.esr) == EC_BREAKPT_LOW && ex.pc == target;
}

static bool probe_watch(struct probe *p, enum kvmdbg_type type, const char *label, const char *insn,
			bool write)
{
	uint64_t data = gva(p, kvmdbg_arm64_pg_data);
	struct kvmdbg_hwstate hw;
	struct probe_exit ex;

	if (!one_slot(type, data, 8, &hw))
		return false;
	if (run(p, label, KVMDBG_CTL_ENABLE | KVMDBG_CTL_HW, &hw, true, &ex))
		return false;
	return ex.debug && ESR_EC(ex.esr) == EC_WATCHPT_LOW && !!(ex.esr & ESR_WNR) == write &&
	       ex.far >= data && ex.far < data + 8 && ex.pc == gva(p, insn);
}

static bool probe_sw_break(struct probe *p)
{
	const struct kvmdbg_arch_ops *a = &kvmdbg_arm64_ops;
	uint64_t at = gva(p, kvmdbg_arm64_pg_brk_insn);
	uint32_t insn, imm;
	struct probe_exit ex;
	uint8_t orig[4];
	bool ok;

	memcpy(&insn, a->sw_insn, 4);
	imm = (insn >> 5) & 0xffff;
	memcpy(orig, p->m.mem + at, 4);
	memcpy(p->m.mem + at, a->sw_insn, 4);
	ok = !run(p, kvmdbg_arm64_pg_brk, KVMDBG_CTL_ENABLE | KVMDBG_CTL_SW_BP, NULL, true, &ex) &&
	     ex.debug && ESR_EC(ex.esr) == EC_BRK64 && (ex.esr & 0xffff) == imm && ex.pc == at;
	memcpy(p->m.mem + at, orig, 4);
	return ok;
}

/* The guest's own debug registers (op0 = 2), and its breakpoint 0 as a guest
 * would program it for EL1: E, PMC = 0b01, BAS = 0b1111, HMC = SSC = 0. */
#define REG_DBGBVR0_EL1 ARM64_SYS_REG(2, 0, 0, 0, 4)
#define REG_DBGBCR0_EL1 ARM64_SYS_REG(2, 0, 0, 0, 5)
#define REG_MDSCR_EL1   ARM64_SYS_REG(2, 0, 0, 2, 2)
#define REG_OSLSR_EL1   ARM64_SYS_REG(2, 0, 1, 1, 4)
#define GUEST_BCR_EL1   (1ull | 1ull << 1 | 0xfull << 5)
#define MDSCR_KDE       (1ull << 13)
#define MDSCR_MDE       (1ull << 15)
#define OSLSR_OSLK      (1ull << 1)

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
	int r = guest_reg(fd, REG_DBGBVR0_EL1, &target, true);

	if (!r)
		r = guest_reg(fd, REG_DBGBCR0_EL1, &bcr, true);
	if (!r)
		r = guest_reg(fd, REG_MDSCR_EL1, &mdscr, true);
	return r;
}

static bool probe_guest_regs_raw(struct probe *p)
{
	uint64_t target = gva(p, kvmdbg_arm64_pg_bp_target), oslsr;
	int fd = p->m.vcpu_fd[0];
	struct probe_exit ex;
	bool ok;
	int r;

	/* Starting resets PC, PSTATE and MDSCR_EL1: the registers after it. */
	r = kvmdbg_microvm_start(&p->m, 0, gva(p, kvmdbg_arm64_pg_bp), p->m.mem_size - 64);
	if (r) {
		if (!p->err)
			p->err = r;
		return false;
	}
	/* The OS Lock masks the guest's debug exceptions: open it (a kernel
	 * without its emulation has no OSLSR_EL1 and no lock). */
	if (!guest_reg(fd, REG_OSLSR_EL1, &oslsr, false) && (oslsr & OSLSR_OSLK)) {
		oslsr &= ~OSLSR_OSLK;
		if (guest_reg(fd, REG_OSLSR_EL1, &oslsr, true))
			return false;
	}
	if (guest_bp0(fd, target, MDSCR_MDE | MDSCR_KDE))
		return false;
	ok = !run(p, NULL, KVMDBG_CTL_ENABLE | KVMDBG_CTL_SW_BP, NULL, false, &ex) && ex.debug &&
	     ESR_EC(ex.esr) == EC_BREAKPT_LOW && ex.pc == target;
	/* Leave the guest's registers as they were for whatever runs next. */
	if (guest_bp0(fd, 0, 0))
		return false;
	return ok;
}

int kvmdbg_arm64_probe_verified(int kvm_fd, uint64_t *features)
{
	struct probe p;
	uint64_t f = KVMDBG_FEAT_VERIFIED;
	size_t blob = (size_t)(kvmdbg_arm64_pg_end - kvmdbg_arm64_pg_start);
	int r;

	if (!features)
		return -EINVAL;
	*features = 0;
	memset(&p, 0, sizeof(p));
	r = kvmdbg_microvm_create(&p.m, kvm_fd, 1, PROBE_MEM_SIZE);
	if (r)
		return r;
	r = kvmdbg_microvm_load(&p.m, p.m.code_gpa, kvmdbg_arm64_pg_start, blob);
	if (r)
		goto out;
	p.caps.sz = sizeof(p.caps);
	r = kvmdbg_host.probe(p.m.vm_fd, &p.caps);
	if (r)
		goto out;

	if (p.caps.guest_debug && p.caps.single_step && probe_step(&p))
		f |= KVMDBG_FEAT_STEP;
	if (p.caps.guest_debug && p.caps.hw_debug && p.caps.hw_breakpoints && probe_hw_break(&p))
		f |= KVMDBG_FEAT_HW_BREAK;
	if (p.caps.guest_debug && p.caps.hw_debug && p.caps.hw_watchpoints) {
		if (probe_watch(&p, KVMDBG_WATCH_WRITE, kvmdbg_arm64_pg_watch_w,
				kvmdbg_arm64_pg_watch_w_insn, true))
			f |= KVMDBG_FEAT_WATCH_WRITE;
		if (probe_watch(&p, KVMDBG_WATCH_READ, kvmdbg_arm64_pg_watch_r,
				kvmdbg_arm64_pg_watch_r_insn, false))
			f |= KVMDBG_FEAT_WATCH_READ;
		if (probe_watch(&p, KVMDBG_WATCH_ACCESS, kvmdbg_arm64_pg_watch_r,
				kvmdbg_arm64_pg_watch_r_insn, false) &&
		    probe_watch(&p, KVMDBG_WATCH_ACCESS, kvmdbg_arm64_pg_watch_w,
				kvmdbg_arm64_pg_watch_w_insn, true))
			f |= KVMDBG_FEAT_WATCH_ACCESS;
	}
	if (p.caps.guest_debug && p.caps.sw_breakpoints && probe_sw_break(&p))
		f |= KVMDBG_FEAT_SW_BREAK;
	if (p.caps.guest_debug && p.caps.sw_breakpoints && probe_guest_regs_raw(&p))
		f |= KVMDBG_FEAT_GUEST_REGS_RAW;
	r = p.err;
	if (!r)
		*features = f;
out:
	kvmdbg_microvm_destroy(&p.m);
	return r;
}
