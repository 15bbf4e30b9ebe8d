/* SPDX-License-Identifier: MIT */
/*
 * Suite `kvm` on arm64: real guests on /dev/kvm, through the public API.
 *
 * The host-side scenarios of the kernel's arm64 debug-exceptions selftest,
 * and the library's own: userspace single-step with pc += 4 and EC 0x32 per
 * exit, stepping stopped on request with no further debug exit, hardware
 * breakpoints (the instruction not executed, step-over resuming), write /
 * read / access watchpoints with the FAR of the access (the access not done
 * at the stop, step-over past it), BRK software breakpoints through the
 * memory callbacks (refcounted, bytes restored), PSTATE.DAIF kept exactly
 * across the library's internal steps, the re-injection of the guest's
 * own BRK into its own vector table with the ESR it would have seen, and the
 * overlay (KVMDBG_OVERLAY_GUEST): guests with their own vector table,
 * DBGBCR/DBGWCR and MDSCR_EL1 debugging themselves beside the host.
 *
 * Guests: tests/guest/arm64-guests.S; helpers: tests/common/kvm-util-arm64.c.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "arch/backend.h"
#include "arch/arm64/regs.h"
#include "kvm-util-arm64.h"
#include "kvmdbg-int.h"
#include "test-common.h"

#define OUR_BRK_IMM    0x4b44u
#define NOP_INSN       0xd503201fu
#define ADD_X0_1       0x91000400u /* add x0, x0, #1 */


static void suite_fixture(void)
{
	kt_features_init();
}

static void need(uint64_t f, const char *name)
{
	ck_assert_msg(kt_has(f), "the verified probe says %s does not work on this arm64 host",
		      name);
}

/* Run to the next reportable event and return the whole stop. */
static struct kt_stop run_event(struct kt_vm *vm, enum kvmdbg_stop kind, const char *label)
{
	struct kt_stop st;
	char d[320], b[64];

	kt_run(vm, 0, kind == KVMDBG_STOP_GUEST ? KT_RUN_GUEST : 0, &st);
	ck_assert_msg(st.what == KT_EVENT && st.ev.kind == kind, "expected %s at %s, got %s",
		      kvmdbg_stop_name(kind),
		      label ? kt_sym(vm, kt_gva(vm, label), b, sizeof(b)) : "-",
		      kt_describe(vm, &st, d, sizeof(d)));
	if (label)
		ck_assert_msg(st.ev.pc == kt_gva(vm, label), "expected %s at %s, got %s",
			      kvmdbg_stop_name(kind), kt_sym(vm, kt_gva(vm, label), b, sizeof(b)),
			      kt_describe(vm, &st, d, sizeof(d)));
	return st;
}

/* ---- capabilities ---- */

START_TEST(test_probe_caps)
{
	struct kvmdbg_caps c = { .sz = sizeof(c) };
	struct kvmdbg_guest_caps g = { .sz = sizeof(g) };
	struct kt_vm vm;
	int r;

	kt_vm_create(&vm, NULL);
	r = kvmdbg_probe(vm.m.vm_fd, &c);
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(c.arch, KVMDBG_ARCH_ARM64);
	ck_assert_int_eq(c.guest_debug, 1);
	ck_assert_int_eq(c.single_step, 1);
	ck_assert_int_eq(c.sw_breakpoints, 1);
	ck_assert_int_eq(c.hw_debug, 1);
	ck_assert_int_eq(c.block_irq, 0);
	ck_assert_int_eq(c.inject_db, 0);
	ck_assert_int_eq(c.inject_bp, 0);
	ck_assert_int_eq(c.shared_slots, 0);
	ck_assert_int_eq(c.guest_state, 1);
	ck_assert_uint_eq(c.max_watch_len, 1ull << 31);
	ck_assert_uint_ge(c.hw_breakpoints, 2);
	ck_assert_uint_le(c.hw_breakpoints, 16);
	ck_assert_uint_ge(c.hw_watchpoints, 2);
	ck_assert_uint_le(c.hw_watchpoints, 16);
	/* KVM_GUESTDBG_VALID_MASK of arm64: nothing else. */
	ck_assert_uint_eq(c.debug_flags &
				  ~(uint64_t)(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP |
					      KVM_GUESTDBG_USE_SW_BP | KVM_GUESTDBG_USE_HW),
			  0);

	r = kvmdbg_probe_guest(vm.m.vcpu_fd[0], &g);
	ck_assert_int_eq(r, 0);
	/* Architecturally at least 2 of each; ID_AA64DFR0_EL1 fields are count - 1. */
	ck_assert_uint_ge(g.breakpoints, 2);
	ck_assert_uint_le(g.breakpoints, 16);
	ck_assert_uint_ge(g.watchpoints, 2);
	ck_assert_uint_le(g.watchpoints, 16);
	ck_assert_uint_ge(g.context_cmps, 1);
	ck_assert_uint_le(g.context_cmps, g.breakpoints);
	ck_assert_int_eq(g.shared_slots, 0);
	kt_note("host slots %u breakpoints / %u watchpoints; guest sees %u / %u, %u context-aware",
		c.hw_breakpoints, c.hw_watchpoints, g.breakpoints, g.watchpoints, g.context_cmps);
	kt_vm_destroy(&vm);
}
END_TEST

START_TEST(test_probe_verified)
{
	uint64_t want = KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_STEP | KVMDBG_FEAT_HW_BREAK |
			KVMDBG_FEAT_WATCH_WRITE | KVMDBG_FEAT_WATCH_READ |
			KVMDBG_FEAT_WATCH_ACCESS | KVMDBG_FEAT_SW_BREAK;
	uint64_t f = kt_features();
	int fd = kvmdbg_test_kvm_fd();
	uint64_t again;

	/* Real arm64 KVM delivers all of them; none of the x86-only ones. */
	ck_assert_msg((f & want) == want, "verified %#llx, want %#llx", (unsigned long long)f,
		      (unsigned long long)want);
	ck_assert_uint_eq(f & (KVMDBG_FEAT_BLOCK_IRQ | KVMDBG_FEAT_INJECT_DB |
			       KVMDBG_FEAT_INJECT_BP | KVMDBG_FEAT_RF_RESUME | KVMDBG_FEAT_GD_EXIT),
			  0);
	/* The kernel's (its debug rework of 6.14 ended it): either answer,
	 * test_overlay_off_sw_only checks it against a guest's own slots. */
	kt_note("guest_regs_raw %s: the guest's own slots while the host debugs with none",
		(f & KVMDBG_FEAT_GUEST_REGS_RAW) ? "yes" : "no");
	/* Repeatable, and leaves nothing behind. */
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(kvmdbg_probe_verified(fd, &again), 0);
	ck_assert_uint_eq(again, f);
	close(fd);
}
END_TEST

TEST_SUITE_KVM(kvm_arm64_probe)
{
	tests_add_fixture(tc, suite_fixture);
	add_test(tc, test_probe_caps);
	add_test(tc, test_probe_verified);
}

/* ---- single-step ---- */

/* Userspace single-step over a range: one EC 0x32 exit per instruction, the
 * PC 4 further each time, the instruction before it executed. */
START_TEST(test_step_range)
{
	static const char *const at[] = { g_step_0, g_step_1, g_step_2, g_step_3, g_step_4,
					  g_step_5, g_step_6, g_step_7, g_step_8, g_step_9 };
	struct kt_vm vm;
	uint64_t prev;

	need(KVMDBG_FEAT_STEP, "step");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_step);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(vm.vcpu[0], 1), 0);
	prev = kt_gva(&vm, g_step);
	for (unsigned int i = 0; i < 10; i++) {
		struct kt_stop st = run_event(&vm, KVMDBG_STOP_STEP, at[i]);

		ck_assert_uint_eq(st.ev.pc, prev + 4);
		ck_assert_int_eq(st.ev.stepped, 1);
		ck_assert_uint_eq(st.nones, 0);
		ck_assert_uint_eq(ESR_EC(ka_last_esr(&vm, 0)), EC_SOFTSTP_LOW);
		ck_assert_uint_eq(ka_pc(&vm, 0), st.ev.pc);
		ck_assert_uint_eq(ka_x(&vm, 0, 0), i);
		prev = st.ev.pc;
	}
	/* One more step reaches g_step_end, the eleventh instruction. */
	run_event(&vm, KVMDBG_STOP_STEP, g_step_end);
	ck_assert_uint_eq(ka_x(&vm, 0, 0), 10);
	kt_vm_destroy(&vm);
}
END_TEST

/* Stepping turned off on request: the guest runs to its end with no debug
 * exit at all. */
START_TEST(test_step_stop)
{
	struct kt_vm vm;
	struct kt_stop st;
	char d[320];

	need(KVMDBG_FEAT_STEP, "step");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_step);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(vm.vcpu[0], 1), 0);
	run_event(&vm, KVMDBG_STOP_STEP, g_step_0);
	run_event(&vm, KVMDBG_STOP_STEP, g_step_1);
	run_event(&vm, KVMDBG_STOP_STEP, g_step_2);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(vm.vcpu[0], 0), 0);
	kt_run(&vm, 0, 0, &st);
	ck_assert_msg(st.what == KT_DONE, "got %s", kt_describe(&vm, &st, d, sizeof(d)));
	ck_assert_uint_eq(st.runs, 1);
	ck_assert_uint_eq(st.nones, 0);
	ck_assert_uint_eq(ka_x(&vm, 0, 0), 10);
	kt_vm_destroy(&vm);
}
END_TEST

TEST_SUITE_KVM(kvm_arm64_step)
{
	tests_add_fixture(tc, suite_fixture);
	add_test(tc, test_step_range);
	add_test(tc, test_step_stop);
}

/* ---- hardware breakpoints ---- */

/* A breakpoint in a loop: every iteration stops before the instruction, and
 * continuing steps past it (the library's step-over, no report). */
START_TEST(test_hw_break_loop)
{
	struct kt_vm vm;

	need(KVMDBG_FEAT_HW_BREAK, "hw_break");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_loop);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_loop_bp), 4), 0);
	for (unsigned int i = 0; i < KA_LOOP_N; i++) {
		struct kt_stop st = run_event(&vm, KVMDBG_STOP_BREAK, g_loop_bp);

		ck_assert_int_eq(st.ev.type, KVMDBG_BREAK_HW);
		ck_assert_uint_eq(st.ev.addr, kt_gva(&vm, g_loop_bp));
		ck_assert_uint_eq(st.ev.hits, KVMDBG_HIT_BIT(KVMDBG_POOL_BP, 0));
		ck_assert_uint_eq(ESR_EC(ka_last_esr(&vm, 0)), EC_BREAKPT_LOW);
		/* Not executed: x0 counts the iterations before this one. */
		ck_assert_uint_eq(ka_x(&vm, 0, 0), i);
		/* The step-over of the previous stop came back as nothing. */
		ck_assert_uint_eq(st.nones, i ? 1 : 0);
	}
	kt_expect_done(&vm, 0);
	ck_assert_uint_eq(kt_peek(&vm, g_loop_count), KA_LOOP_N);
	kt_vm_destroy(&vm);
}
END_TEST

/* gdb's stepi at a breakpoint: exactly one instruction, reported as a step;
 * the breakpoint is still armed on the next iteration. */
START_TEST(test_hw_break_stepi)
{
	struct kt_vm vm;
	struct kt_stop st;

	need(KVMDBG_FEAT_HW_BREAK | KVMDBG_FEAT_STEP, "hw_break and step");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_loop);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_loop_bp), 4), 0);
	run_event(&vm, KVMDBG_STOP_BREAK, g_loop_bp);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(vm.vcpu[0], 1), 0);
	st = run_event(&vm, KVMDBG_STOP_STEP, g_loop_after);
	ck_assert_int_eq(st.ev.stepped, 1);
	ck_assert_uint_eq(ka_x(&vm, 0, 0), 1);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(vm.vcpu[0], 0), 0);
	run_event(&vm, KVMDBG_STOP_BREAK, g_loop_bp);
	ck_assert_uint_eq(ka_x(&vm, 0, 0), 1);
	/* Removed while stopped on it: no step-over needed, straight to the end. */
	ck_assert_int_eq(kvmdbg_vm_remove(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_loop_bp), 4), 0);
	kt_expect_done(&vm, 0);
	ck_assert_uint_eq(kt_peek(&vm, g_loop_count), KA_LOOP_N);
	kt_vm_destroy(&vm);
}
END_TEST

/* Every host breakpoint slot fires, each with its own slot number (the
 * glue's DBGBCR<n>/DBGBVR<n> placement), and one more does not fit. */
START_TEST(test_hw_break_all_slots)
{
	static const char *const at[] = { g_step_0, g_step_1, g_step_2, g_step_3, g_step_4,
					  g_step_5, g_step_6, g_step_7, g_step_8, g_step_9 };
	struct kvmdbg_caps c = { .sz = sizeof(c) };
	struct kt_vm vm;
	unsigned int n;

	need(KVMDBG_FEAT_HW_BREAK, "hw_break");
	kt_vm_create(&vm, NULL);
	ck_assert_int_eq(kvmdbg_probe(vm.m.vm_fd, &c), 0);
	n = c.hw_breakpoints < 10 ? c.hw_breakpoints : 10;
	kt_vcpu_start(&vm, 0, g_step);
	for (unsigned int i = 0; i < n; i++)
		ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, at[i]), 4), 0);
	if (n < 10 && n == c.hw_breakpoints)
		ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, at[n]), 4),
				 -ENOSPC);
	for (unsigned int i = 0; i < n; i++) {
		struct kt_stop st = run_event(&vm, KVMDBG_STOP_BREAK, at[i]);

		ck_assert_uint_eq(st.ev.hits, KVMDBG_HIT_BIT(KVMDBG_POOL_BP, i));
		ck_assert_uint_eq(ka_x(&vm, 0, 0), i);
	}
	kt_expect_done(&vm, 0);
	ck_assert_uint_eq(ka_x(&vm, 0, 0), 10);
	kt_vm_destroy(&vm);
}
END_TEST

/* The VMM moves the PC while stopped (a debugger's register write): the
 * pending step-over is recomputed, nothing is stepped at the old place. */
START_TEST(test_hw_break_regs_changed)
{
	struct kt_vm vm;

	need(KVMDBG_FEAT_HW_BREAK, "hw_break");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_loop);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_loop_bp), 4), 0);
	run_event(&vm, KVMDBG_STOP_BREAK, g_loop_bp);
	/* Skip the add of this iteration. */
	ka_set_reg(&vm, 0,
		   KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
			   KVM_REG_ARM_CORE_REG(regs.pc),
		   kt_gva(&vm, g_loop_after));
	ck_assert_int_eq(kvmdbg_vcpu_regs_changed(vm.vcpu[0]), 0);
	run_event(&vm, KVMDBG_STOP_BREAK, g_loop_bp);
	ck_assert_uint_eq(ka_x(&vm, 0, 0), 0);
	ck_assert_int_eq(kvmdbg_vm_remove(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_loop_bp), 4), 0);
	kt_expect_done(&vm, 0);
	ck_assert_uint_eq(kt_peek(&vm, g_loop_count), KA_LOOP_N - 1);
	kt_vm_destroy(&vm);
}
END_TEST

/* Two vCPUs stopped on the same software breakpoint in turn: each steps past
 * it on its own (the BRK lifted and put back by reference count). */
START_TEST(test_sw_break_two_vcpus)
{
	struct kt_vm_opts o = { .nr_vcpus = 2 };
	struct kt_vm vm;
	uint64_t at;

	need(KVMDBG_FEAT_SW_BREAK, "sw_break");
	kt_vm_create(&vm, &o);
	kt_vcpu_start(&vm, 0, g_loop);
	kt_vcpu_start(&vm, 1, g_loop);
	at = kt_gva(&vm, g_loop_bp);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_SW, at, 4), 0);
	for (unsigned int i = 0; i < 3; i++) {
		for (unsigned int v = 0; v < 2; v++) {
			struct kvmdbg_event ev =
				kt_expect_event(&vm, v, KVMDBG_STOP_BREAK, g_loop_bp);

			ck_assert_int_eq(ev.type, KVMDBG_BREAK_SW);
			ck_assert_uint_eq(ka_x(&vm, v, 0), i);
		}
	}
	ck_assert_uint_eq(ka_peek32(&vm, at), ARM64_BRK_INSN(OUR_BRK_IMM));
	ck_assert_int_eq(kvmdbg_vm_remove(vm.dbg, KVMDBG_BREAK_SW, at, 4), 0);
	ck_assert_uint_eq(ka_peek32(&vm, at), ADD_X0_1);
	kt_expect_done(&vm, 0);
	kt_expect_done(&vm, 1);
	ck_assert_uint_eq(ka_x(&vm, 0, 0), KA_LOOP_N);
	ck_assert_uint_eq(ka_x(&vm, 1, 0), KA_LOOP_N);
	kt_vm_destroy(&vm);
}
END_TEST

/*
 * Issue 12 item 4: two vCPUs loop over one software breakpoint under an
 * all-stop debugger (kt_allstop_breaks). Each one's step past the BRK puts
 * the guest's instruction back for the whole VM; the other vCPU must still
 * stop there every time: in a hardware slot of its own (cover), or, with
 * every slot taken by hardware breakpoints elsewhere, fenced by prepare
 * until the step is over. Every iteration of every vCPU is one stop.
 */
#define SWHITS_N 300

static void sw_hits_all_stop(bool fill_slots)
{
	struct kt_vm_opts o = { .nr_vcpus = 2 };
	unsigned int breaks[2], stops, filled = 0;
	char err[400];
	struct kt_vm vm;
	uint64_t at;

	need(KVMDBG_FEAT_SW_BREAK, "sw_break");
	kt_vm_create(&vm, &o);
	kt_poke(&vm, g_swhits_n, SWHITS_N);
	for (unsigned int v = 0; v < 2; v++)
		kt_vcpu_start(&vm, v, g_swhits);
	at = kt_gva(&vm, g_swhits_bp);
	for (unsigned int k = 0; fill_slots; k++) {
		/* Instructions of g_step, which no vCPU runs here. */
		int r = kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_step_0) + 4 * k, 4);

		if (r == -ENOSPC || r == -EOPNOTSUPP)
			break;
		ck_assert_int_eq(r, 0);
		filled++;
	}
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_SW, at, 4), 0);
	stops = kt_allstop_breaks(&vm, 2, at, breaks, err, sizeof(err));
	ck_assert_msg(!err[0], "%s", err);
	kt_note("software breakpoint hit by 2 vCPUs, all-stop%s: %u + %u stops of %u + %u "
		"iterations, %u world stops, %u CPUs", fill_slots ? " with every hardware slot taken" : "",
		breaks[0], breaks[1], SWHITS_N, SWHITS_N, stops, kt_cpus());
	for (unsigned int v = 0; v < 2; v++) {
		ck_assert_uint_eq(ka_x(&vm, v, 0), SWHITS_N);
		ck_assert_msg(breaks[v] == SWHITS_N,
			      "vCPU %u: %u stops at the software breakpoint in %u iterations (%s)", v,
			      breaks[v], SWHITS_N, breaks[v] < SWHITS_N ? "hits lost" : "hits doubled");
	}
	ck_assert_uint_eq(ka_peek32(&vm, at), ARM64_BRK_INSN(OUR_BRK_IMM));
	ck_assert_int_eq(kvmdbg_vm_remove(vm.dbg, KVMDBG_BREAK_SW, at, 4), 0);
	ck_assert_uint_eq(ka_peek32(&vm, at), ADD_X0_1);
	(void)filled;
	kt_vm_destroy(&vm);
}

START_TEST(test_sw_break_smp_no_lost_hits)
{
	sw_hits_all_stop(false);
}
END_TEST

START_TEST(test_sw_break_smp_no_lost_hits_fenced)
{
	sw_hits_all_stop(true);
}
END_TEST

TEST_SUITE_KVM(kvm_arm64_hwbreak)
{
	tests_add_fixture(tc, suite_fixture);
	add_test(tc, test_hw_break_loop);
	add_test(tc, test_hw_break_stepi);
	add_test(tc, test_hw_break_all_slots);
	add_test(tc, test_hw_break_regs_changed);
	add_test(tc, test_sw_break_smp_no_lost_hits);
	add_test(tc, test_sw_break_smp_no_lost_hits_fenced);
	add_test(tc, test_sw_break_two_vcpus);
}

/* ---- watchpoints ---- */

struct watch_hit {
	const char *insn;  /* the access instruction */
	uint64_t off, len; /* the bytes it accesses, from g_watch_var */
	int write;
};

static const struct watch_hit hit_w8 = { g_watch_w8, 0, 8, 1 };
static const struct watch_hit hit_r8 = { g_watch_r8, 0, 8, 0 };
static const struct watch_hit hit_w1 = { g_watch_w1, 3, 1, 1 };
static const struct watch_hit hit_r1 = { g_watch_r1, 5, 1, 0 };

/* Run g_watch under one watchpoint and expect exactly the hits given. */
static void watch_scenario(enum kvmdbg_type type, uint64_t off, uint64_t len,
			   const struct watch_hit *const *hits, unsigned int n)
{
	struct kt_vm vm;
	uint64_t var;

	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_watch);
	var = kt_gva(&vm, g_watch_var);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, type, var + off, len), 0);
	for (unsigned int i = 0; i < n; i++) {
		struct kt_stop st = run_event(&vm, KVMDBG_STOP_WATCH, hits[i]->insn);
		uint64_t esr = ka_last_esr(&vm, 0);

		ck_assert_int_eq(st.ev.type, type);
		ck_assert_uint_eq(st.ev.addr, var + off);
		ck_assert_uint_eq(st.ev.len, len);
		ck_assert_uint_eq(ESR_EC(esr), EC_WATCHPT_LOW);
		ck_assert_int_eq(!!(esr & (1u << 6)), hits[i]->write);
		ck_assert_int_eq(st.ev.write, hits[i]->write);
		/* FAR: an address of the access (QEMU and most cores: its first
		 * byte, the exact address). */
		ck_assert_msg(st.ev.data_addr >= var + hits[i]->off &&
				      st.ev.data_addr < var + hits[i]->off + hits[i]->len,
			      "FAR %#llx outside the access [%#llx, +%llu)",
			      (unsigned long long)st.ev.data_addr,
			      (unsigned long long)(var + hits[i]->off),
			      (unsigned long long)hits[i]->len);
		if (st.ev.data_addr != var + hits[i]->off)
			kt_note("FAR %#llx is not the access's first byte %#llx",
				(unsigned long long)st.ev.data_addr,
				(unsigned long long)(var + hits[i]->off));
		/* The access has not happened yet. */
		if (hits[i] == &hit_w8)
			ck_assert_uint_eq(kt_peek(&vm, g_watch_var), 0);
	}
	kt_expect_done(&vm, 0);
	/* Every access did happen once (step-over past each stop). */
	ck_assert_uint_eq(kt_peek(&vm, g_watch_var), 0x11 | 0x22ull << 24);
	ck_assert_uint_eq(ka_x(&vm, 0, 2), 0x11);
	kt_vm_destroy(&vm);
}

START_TEST(test_watch_write)
{
	const struct watch_hit *h[] = { &hit_w8, &hit_w1 };

	need(KVMDBG_FEAT_WATCH_WRITE, "watch_write");
	watch_scenario(KVMDBG_WATCH_WRITE, 0, 8, h, 2);
}
END_TEST

START_TEST(test_watch_read)
{
	const struct watch_hit *h[] = { &hit_r8, &hit_r1 };

	need(KVMDBG_FEAT_WATCH_READ, "watch_read");
	watch_scenario(KVMDBG_WATCH_READ, 0, 8, h, 2);
}
END_TEST

START_TEST(test_watch_access)
{
	const struct watch_hit *h[] = { &hit_w8, &hit_r8, &hit_w1, &hit_r1 };

	need(KVMDBG_FEAT_WATCH_ACCESS, "watch_access");
	watch_scenario(KVMDBG_WATCH_ACCESS, 0, 8, h, 4);
}
END_TEST

/* One watched byte: the doubleword store covers it and fires with a FAR
 * below it (nearest-range matching), the byte store exactly. */
START_TEST(test_watch_byte)
{
	const struct watch_hit *h[] = { &hit_w8, &hit_w1 };

	need(KVMDBG_FEAT_WATCH_WRITE, "watch_write");
	watch_scenario(KVMDBG_WATCH_WRITE, 3, 1, h, 2);
}
END_TEST

/* A 64-byte aligned block takes one slot (DBGWCR.MASK); a byte store in its
 * middle fires with its exact address. */
START_TEST(test_watch_mask_block)
{
	struct kt_vm vm;
	struct kt_stop st;
	uint64_t blk;

	need(KVMDBG_FEAT_WATCH_WRITE, "watch_write");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_watch);
	blk = kt_gva(&vm, g_watch_blk);
	ck_assert_uint_eq(blk % 64, 0);
	ck_assert_int_eq(kvmdbg_vm_slots_needed(vm.dbg, KVMDBG_WATCH_WRITE, blk, 64), 1);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_WATCH_WRITE, blk, 64), 0);
	st = run_event(&vm, KVMDBG_STOP_WATCH, g_watch_blk_w);
	ck_assert_uint_eq(st.ev.data_addr, blk + 40);
	ck_assert_uint_eq(st.ev.addr, blk);
	ck_assert_uint_eq(st.ev.len, 64);
	ck_assert_uint_eq(kt_peek(&vm, g_watch_blk), 0);
	kt_expect_done(&vm, 0);
	ck_assert_uint_eq(((uint8_t *)kt_hva(&vm, g_watch_blk))[40], 0x22);
	kt_vm_destroy(&vm);
}
END_TEST

/* Every host watchpoint slot fires on its own doubleword, in order, with the
 * store's exact FAR and its own slot number. */
START_TEST(test_watch_all_slots)
{
	struct kvmdbg_caps c = { .sz = sizeof(c) };
	struct kt_vm vm;
	unsigned int n;
	uint64_t blk;

	need(KVMDBG_FEAT_WATCH_WRITE, "watch_write");
	kt_vm_create(&vm, NULL);
	ck_assert_int_eq(kvmdbg_probe(vm.m.vm_fd, &c), 0);
	n = c.hw_watchpoints < 8 ? c.hw_watchpoints : 8;
	kt_vcpu_start(&vm, 0, g_watch8);
	blk = kt_gva(&vm, g_watch_blk);
	for (unsigned int i = 0; i < n; i++)
		ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_WATCH_WRITE, blk + 8 * i, 8), 0);
	if (n < 8 && n == c.hw_watchpoints)
		ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_WATCH_WRITE, blk + 8 * n, 8),
				 -ENOSPC);
	for (unsigned int i = 0; i < n; i++) {
		struct kt_stop st = run_event(&vm, KVMDBG_STOP_WATCH, NULL);

		ck_assert_uint_eq(st.ev.pc, kt_gva(&vm, g_watch8) + 8 + 4 * i);
		ck_assert_uint_eq(st.ev.hits, KVMDBG_HIT_BIT(KVMDBG_POOL_WP, i));
		ck_assert_uint_eq(st.ev.addr, blk + 8 * i);
		ck_assert_uint_eq(st.ev.data_addr, blk + 8 * i);
		ck_assert_uint_eq(((uint64_t *)kt_hva(&vm, g_watch_blk))[i], 0);
	}
	kt_expect_done(&vm, 0);
	for (unsigned int i = 0; i < 8; i++)
		ck_assert_uint_eq(((uint64_t *)kt_hva(&vm, g_watch_blk))[i], 0x33);
	kt_vm_destroy(&vm);
}
END_TEST

/* Stepping onto a watched store: the step before it, then the watchpoint
 * at it (the store not done), then one user step that completes it. */
START_TEST(test_watch_while_stepping)
{
	struct kt_vm vm;
	struct kt_stop st;
	uint64_t var;

	need(KVMDBG_FEAT_WATCH_WRITE | KVMDBG_FEAT_STEP, "watch_write and step");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_watch);
	var = kt_gva(&vm, g_watch_var);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_WATCH_WRITE, var, 8), 0);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(vm.vcpu[0], 1), 0);
	for (unsigned int i = 0; i < 4; i++)
		run_event(&vm, KVMDBG_STOP_STEP, NULL);
	ck_assert_uint_eq(ka_pc(&vm, 0), kt_gva(&vm, g_watch_w8));
	st = run_event(&vm, KVMDBG_STOP_WATCH, g_watch_w8);
	ck_assert_uint_eq(st.ev.data_addr, var);
	ck_assert_uint_eq(kt_peek(&vm, g_watch_var), 0);
	st = run_event(&vm, KVMDBG_STOP_STEP, g_watch_r8);
	ck_assert_int_eq(st.ev.stepped, 1);
	ck_assert_uint_eq(kt_peek(&vm, g_watch_var), 0x11);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(vm.vcpu[0], 0), 0);
	run_event(&vm, KVMDBG_STOP_WATCH, g_watch_w1);
	kt_expect_done(&vm, 0);
	kt_vm_destroy(&vm);
}
END_TEST

TEST_SUITE_KVM(kvm_arm64_watch)
{
	tests_add_fixture(tc, suite_fixture);
	add_test(tc, test_watch_write);
	add_test(tc, test_watch_read);
	add_test(tc, test_watch_access);
	add_test(tc, test_watch_byte);
	add_test(tc, test_watch_mask_block);
	add_test(tc, test_watch_all_slots);
	add_test(tc, test_watch_while_stepping);
}

/* ---- software breakpoints ---- */

START_TEST(test_sw_break_loop)
{
	struct kt_vm vm;
	uint64_t at;

	need(KVMDBG_FEAT_SW_BREAK, "sw_break");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_loop);
	at = kt_gva(&vm, g_loop_bp);
	ck_assert_uint_eq(ka_peek32(&vm, at), ADD_X0_1);
	/* Refcounted: two inserts, the BRK written once. */
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_SW, at, 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_SW, at, 4), 0);
	ck_assert_uint_eq(ka_peek32(&vm, at), ARM64_BRK_INSN(OUR_BRK_IMM));
	for (unsigned int i = 0; i < KA_LOOP_N; i++) {
		struct kt_stop st = run_event(&vm, KVMDBG_STOP_BREAK, g_loop_bp);
		uint64_t esr = ka_last_esr(&vm, 0);

		ck_assert_int_eq(st.ev.type, KVMDBG_BREAK_SW);
		ck_assert_uint_eq(st.ev.addr, at);
		ck_assert_uint_eq(ESR_EC(esr), EC_BRK64);
		ck_assert_uint_eq(esr & 0xffff, OUR_BRK_IMM);
		ck_assert_uint_eq(ka_x(&vm, 0, 0), i);
		/* Between stops the BRK is in memory again. */
		ck_assert_uint_eq(ka_peek32(&vm, at), ARM64_BRK_INSN(OUR_BRK_IMM));
		if (i == 2) {
			/* One reference dropped: still there. */
			ck_assert_int_eq(kvmdbg_vm_remove(vm.dbg, KVMDBG_BREAK_SW, at, 4), 0);
			ck_assert_uint_eq(ka_peek32(&vm, at), ARM64_BRK_INSN(OUR_BRK_IMM));
		}
	}
	/* The last reference: the guest's bytes come back. */
	ck_assert_int_eq(kvmdbg_vm_remove(vm.dbg, KVMDBG_BREAK_SW, at, 4), 0);
	ck_assert_uint_eq(ka_peek32(&vm, at), ADD_X0_1);
	ck_assert_int_eq(kvmdbg_vm_remove(vm.dbg, KVMDBG_BREAK_SW, at, 4), -ENOENT);
	kt_expect_done(&vm, 0);
	ck_assert_uint_eq(kt_peek(&vm, g_loop_count), KA_LOOP_N);
	kt_vm_destroy(&vm);
}
END_TEST

/* stepi from a software breakpoint: the original instruction runs once, the
 * BRK is back afterwards. */
START_TEST(test_sw_break_stepi)
{
	struct kt_vm vm;
	struct kt_stop st;
	uint64_t at;

	need(KVMDBG_FEAT_SW_BREAK | KVMDBG_FEAT_STEP, "sw_break and step");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_loop);
	at = kt_gva(&vm, g_loop_bp);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_SW, at, 4), 0);
	run_event(&vm, KVMDBG_STOP_BREAK, g_loop_bp);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(vm.vcpu[0], 1), 0);
	st = run_event(&vm, KVMDBG_STOP_STEP, g_loop_after);
	ck_assert_int_eq(st.ev.stepped, 1);
	ck_assert_uint_eq(ka_x(&vm, 0, 0), 1);
	ck_assert_uint_eq(ka_peek32(&vm, at), ARM64_BRK_INSN(OUR_BRK_IMM));
	ck_assert_int_eq(kvmdbg_vcpu_set_step(vm.vcpu[0], 0), 0);
	run_event(&vm, KVMDBG_STOP_BREAK, g_loop_bp);
	ck_assert_uint_eq(ka_x(&vm, 0, 0), 1);
	/* Freeing the session restores the guest's bytes. */
	kvmdbg_vcpu_free(vm.vcpu[0]);
	vm.vcpu[0] = NULL;
	kvmdbg_vm_free(vm.dbg);
	vm.dbg = NULL;
	ck_assert_uint_eq(ka_peek32(&vm, at), ADD_X0_1);
	kt_vm_destroy(&vm);
}
END_TEST

TEST_SUITE_KVM(kvm_arm64_swbreak)
{
	tests_add_fixture(tc, suite_fixture);
	add_test(tc, test_sw_break_loop);
	add_test(tc, test_sw_break_stepi);
}

/* ---- PSTATE.DAIF across the internal step ---- */

/* A VM whose vCPU 0 starts at entry and stops at the hardware breakpoint at
 * bp, with PSTATE.DAIF as daif there (the guest's, not the library's). */
static void daif_stop_at(struct kt_vm *vm, const char *entry, const char *bp, uint64_t daif)
{
	need(KVMDBG_FEAT_HW_BREAK, "hw_break");
	kt_vm_create(vm, NULL);
	kt_vcpu_start(vm, 0, entry);
	ck_assert_int_eq(kvmdbg_vm_insert(vm->dbg, KVMDBG_BREAK_HW, kt_gva(vm, bp), 4), 0);
	run_event(vm, KVMDBG_STOP_BREAK, bp);
	ck_assert_uint_eq(ka_pstate(vm, 0) & PS_DAIF, daif);
}

/* The guest runs with everything unmasked: the step-over masks A, I, F for
 * its one instruction and gives back exactly the guest's bits. */
START_TEST(test_daif_unmasked)
{
	struct kt_vm vm;

	daif_stop_at(&vm, g_daif, g_daif_bp, 0);
	kt_expect_done(&vm, 0);
	ck_assert_uint_eq(kt_peek(&vm, g_daif_result), 0);
	kt_vm_destroy(&vm);
}
END_TEST

/* The stepped instruction changes DAIF itself (MSR DAIFClr): its effect is
 * kept, the other bits are the guest's. */
START_TEST(test_daif_changed_by_insn)
{
	struct kt_vm vm;

	/* D, A, F masked, I open. */
	daif_stop_at(&vm, g_daif3, g_daif3_bp, 0x340);
	kt_expect_done(&vm, 0);
	/* F opened by the instruction: D and A stay. */
	ck_assert_uint_eq(kt_peek(&vm, g_daif_result), 0x300);
	kt_vm_destroy(&vm);
}
END_TEST

/* The stepped instruction enters an exception (SVC): the step stops at the
 * guest's vector with everything masked, as the CPU does, and the SPSR_EL1
 * its handler returns with holds the guest's DAIF, not the library's. */
START_TEST(test_daif_step_into_exception)
{
	struct kt_vm vm;

	daif_stop_at(&vm, g_svc, g_svc_insn, 0);
	kt_expect_done(&vm, 0);
	ck_assert_uint_eq(kt_peek(&vm, kt_svc_count), 1);
	ck_assert_uint_eq(kt_peek(&vm, kt_svc_spsr) & PS_DAIF, 0);
	ck_assert_uint_eq(kt_peek(&vm, kt_svc_spsr) & PS_MODE_MASK, PS_MODE_EL1h);
	ck_assert_uint_eq(kt_peek(&vm, g_daif_result), 0);
	kt_vm_destroy(&vm);
}
END_TEST

/* The vCPU's IRQ line (no in-kernel irqchip here: KVM_ARM_IRQ_TYPE_CPU),
 * level-triggered: up, an interrupt stays pending until it goes down. */
static void irq_line(struct kt_vm *vm, unsigned int idx, int level)
{
	struct kvm_irq_level irq = {
		.irq = KVM_ARM_IRQ_TYPE_CPU << KVM_ARM_IRQ_TYPE_SHIFT |
		       idx << KVM_ARM_IRQ_VCPU_SHIFT | KVM_ARM_IRQ_CPU_IRQ,
		.level = level};

	ck_assert_msg(ioctl(vm->m.vm_fd, KVM_IRQ_LINE, &irq) == 0, "KVM_IRQ_LINE: %s",
		      strerror(errno));
}

/* With the vCPU's IRQ line up and the guest's DAIF all clear at g_daif_bp:
 * the user's step runs the next instruction, not the IRQ vector, and the
 * stop shows the guest's own DAIF; the interrupt still pending, with the line
 * down the guest runs on unmasked to its end (an IRQ taken would fail it:
 * kt_vectors). Destroys vm. */
static void step_with_irq_pending(struct kt_vm *vm)
{
	struct kt_stop st;

	irq_line(vm, 0, 1);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(vm->vcpu[0], 1), 0);
	st = run_event(vm, KVMDBG_STOP_STEP, g_daif_next);
	ck_assert_int_eq(st.ev.stepped, 1);
	ck_assert_uint_eq(ka_pstate(vm, 0) & PS_DAIF, 0);
	irq_line(vm, 0, 0);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(vm->vcpu[0], 0), 0);
	kt_expect_done(vm, 0);
	ck_assert_uint_eq(kt_peek(vm, g_daif_result), 0);
	kt_vm_destroy(vm);
}

/* The user's single-step with an interrupt pending that the guest's DAIF
 * lets in (issue 15: a gdb `continue` from a kernel breakpoint stepped into
 * the timer's handler, which returned to the breakpoint, forever): the step
 * runs the next instruction, not the IRQ vector, as x86's BLOCKIRQ, and the
 * stop shows the guest's own DAIF. Not from a breakpoint: the user's step
 * alone, no step-over. */
START_TEST(test_daif_user_step_irq_pending)
{
	struct kt_vm vm;

	need(KVMDBG_FEAT_STEP, "step");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_daif_bp);
	/* EL1h with D, A, I, F all clear, as g_daif leaves them. */
	ka_set_reg(&vm, 0, REG_PSTATE, PS_MODE_EL1h);
	step_with_irq_pending(&vm);
}
END_TEST

/* The same pending interrupt at a breakpoint: the step-over of a continue
 * and the step-over a stepi combines with its own step run the instruction
 * at the breakpoint, not the vector, each with the guest's DAIF back at its
 * end. */
START_TEST(test_daif_stepover_irq_pending)
{
	struct kt_vm vm;

	daif_stop_at(&vm, g_daif, g_daif_bp, 0);
	step_with_irq_pending(&vm);
}
END_TEST

/* The stepped instruction sets a bit the guest had clear, one the mask had
 * set already (MSR DAIFSet, #2: local_irq_disable): the user's step and
 * the step-over of a continue leave it set. */
START_TEST(test_daif_set_by_insn)
{
	struct kt_vm vm;
	struct kt_stop st;

	need(KVMDBG_FEAT_STEP, "step");
	daif_stop_at(&vm, g_daifset, g_daifset_insn, 0);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(vm.vcpu[0], 1), 0);
	st = run_event(&vm, KVMDBG_STOP_STEP, g_daifset_next);
	ck_assert_int_eq(st.ev.stepped, 1);
	ck_assert_uint_eq(ka_pstate(&vm, 0) & PS_DAIF, PS_I);
	ck_assert_int_eq(kvmdbg_vcpu_set_step(vm.vcpu[0], 0), 0);
	kt_expect_done(&vm, 0);
	ck_assert_uint_eq(kt_peek(&vm, g_daif_result), PS_I);
	kt_vm_destroy(&vm);

	daif_stop_at(&vm, g_daifset, g_daifset_insn, 0);
	kt_expect_done(&vm, 0);
	ck_assert_uint_eq(kt_peek(&vm, g_daif_result), PS_I);
	kt_vm_destroy(&vm);
}
END_TEST

TEST_SUITE_KVM(kvm_arm64_daif)
{
	tests_add_fixture(tc, suite_fixture);
	add_test(tc, test_daif_unmasked);
	add_test(tc, test_daif_changed_by_insn);
	add_test(tc, test_daif_set_by_insn);
	add_test(tc, test_daif_step_into_exception);
	add_test(tc, test_daif_user_step_irq_pending);
	add_test(tc, test_daif_stepover_irq_pending);
}

/* ---- re-injection of the guest's own BRK ---- */

static void expect_guest_brk_from(struct kt_vm *vm, const char *insn, uint32_t imm,
				  uint64_t spsr_mode, uint64_t spsr_daif)
{
	uint64_t esr = kt_peek(vm, kt_brk_esr), spsr = kt_peek(vm, kt_brk_spsr);

	ck_assert_uint_eq(kt_peek(vm, kt_brk_count), 1);
	/* What the CPU itself would have written: EC 0x3c, IL, the immediate. */
	ck_assert_uint_eq(esr, (uint64_t)EC_BRK64 << 26 | ESR_IL | imm);
	ck_assert_uint_eq(kt_peek(vm, kt_brk_elr), kt_gva(vm, insn));
	ck_assert_uint_eq(spsr & PS_MODE_MASK, spsr_mode);
	ck_assert_uint_eq(spsr & PS_DAIF, spsr_daif);
	/* Through the vector of the EL it came from (both run with SP_EL1). */
	ck_assert_uint_eq(kt_peek(vm, kt_brk_vec), spsr_mode == PS_MODE_EL1h ? 0x200 : 0x400);
}

static void expect_guest_brk_handled(struct kt_vm *vm, const char *insn, uint32_t imm,
				     uint64_t spsr_daif)
{
	expect_guest_brk_from(vm, insn, imm, PS_MODE_EL1h, spsr_daif);
}

/* Without host debugging the guest's BRK never leaves the guest. */
START_TEST(test_guest_brk_native)
{
	struct kt_vm vm;
	struct kt_stop st;
	char d[320];

	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_brkg);
	kt_run(&vm, 0, 0, &st);
	ck_assert_msg(st.what == KT_DONE, "got %s", kt_describe(&vm, &st, d, sizeof(d)));
	ck_assert_uint_eq(st.guests, 0);
	expect_guest_brk_handled(&vm, g_brkg_insn, 0x800, PS_DAIF);
	ck_assert_uint_eq(kt_peek(&vm, g_brkg_passed), 1);
	kt_vm_destroy(&vm);
}
END_TEST

/* With host debugging on (MDCR_EL2.TDE), KVM hands the guest's BRK #0x800
 * to us: it is the guest's, re-injected into its own vector table, which
 * sees the right ESR and returns past it. */
START_TEST(test_guest_brk_reinjected)
{
	struct kt_vm vm;
	struct kt_stop st;

	need(KVMDBG_FEAT_HW_BREAK, "hw_break");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_brkg);
	/* Any host debugging will do; this breakpoint is never reached. */
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_step), 4), 0);
	st = run_event(&vm, KVMDBG_STOP_GUEST, g_brkg_insn);
	ck_assert_uint_eq(ESR_EC(ka_last_esr(&vm, 0)), EC_BRK64);
	ck_assert_uint_eq(ka_last_esr(&vm, 0) & 0xffff, 0x800);
	ck_assert_uint_eq(kt_peek(&vm, kt_brk_count), 0);
	(void)st;
	kt_expect_done(&vm, 0);
	expect_guest_brk_handled(&vm, g_brkg_insn, 0x800, PS_DAIF);
	ck_assert_uint_eq(kt_peek(&vm, g_brkg_passed), 1);
	kt_vm_destroy(&vm);
}
END_TEST

/* The guest's BRK followed by our software breakpoint after it: the guest's
 * exception first, then ours, in order. */
START_TEST(test_guest_brk_then_ours)
{
	struct kt_vm vm;

	need(KVMDBG_FEAT_SW_BREAK, "sw_break");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_brkg);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_SW, kt_gva(&vm, g_brkg_after), 4), 0);
	run_event(&vm, KVMDBG_STOP_GUEST, g_brkg_insn);
	run_event(&vm, KVMDBG_STOP_BREAK, g_brkg_after);
	ck_assert_uint_eq(kt_peek(&vm, kt_brk_count), 1);
	ck_assert_uint_eq(kt_peek(&vm, g_brkg_passed), 0);
	kt_expect_done(&vm, 0);
	expect_guest_brk_handled(&vm, g_brkg_insn, 0x800, PS_DAIF);
	ck_assert_uint_eq(kt_peek(&vm, g_brkg_passed), 1);
	kt_vm_destroy(&vm);
}
END_TEST

/* A BRK with our immediate that the library did not insert is the guest's. */
START_TEST(test_guest_brk_our_imm)
{
	struct kt_vm vm;

	need(KVMDBG_FEAT_SW_BREAK, "sw_break");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_brkg_ours);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_SW, kt_gva(&vm, g_loop_bp), 4), 0);
	run_event(&vm, KVMDBG_STOP_GUEST, g_brkg_ours_insn);
	kt_expect_done(&vm, 0);
	expect_guest_brk_handled(&vm, g_brkg_ours_insn, OUR_BRK_IMM, PS_DAIF);
	kt_vm_destroy(&vm);
}
END_TEST

/* Issue 12 item 5: our software breakpoint on the guest's own BRK with our
 * immediate. The stop is reported once; resuming delivers the guest's BRK
 * exception to its vector and the guest runs on. */
START_TEST(test_sw_break_on_guest_brk)
{
	struct kt_vm vm;

	need(KVMDBG_FEAT_SW_BREAK, "sw_break");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_brkg_ours);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_SW, kt_gva(&vm, g_brkg_ours_insn), 4),
			 0);
	run_event(&vm, KVMDBG_STOP_BREAK, g_brkg_ours_insn);
	ck_assert_uint_eq(kt_peek(&vm, kt_brk_count), 0);
	run_event(&vm, KVMDBG_STOP_GUEST, g_brkg_ours_insn);
	kt_expect_done(&vm, 0);
	expect_guest_brk_handled(&vm, g_brkg_ours_insn, OUR_BRK_IMM, PS_DAIF);
	kt_vm_destroy(&vm);
}
END_TEST

/* The guest's BRK at EL0: re-injected through the lower-EL vector (0x400)
 * with SPSR_EL1 showing EL0t; its handler returns to EL0. */
START_TEST(test_guest_brk_el0)
{
	struct kt_vm vm;

	need(KVMDBG_FEAT_HW_BREAK, "hw_break");
	kt_vm_create(&vm, NULL);
	kt_vcpu_start(&vm, 0, g_el0);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_step), 4), 0);
	run_event(&vm, KVMDBG_STOP_GUEST, g_el0_brk);
	ck_assert_uint_eq(ka_pstate(&vm, 0) & PS_MODE_MASK, 0);
	kt_expect_done(&vm, 0);
	expect_guest_brk_from(&vm, g_el0_brk, 0x800, 0, PS_DAIF);
	/* Back at EL0 after the handler's eret. */
	ck_assert_uint_eq(ka_pstate(&vm, 0) & PS_MODE_MASK, 0);
	kt_vm_destroy(&vm);
}
END_TEST

TEST_SUITE_KVM(kvm_arm64_reinject)
{
	tests_add_fixture(tc, suite_fixture);
	add_test(tc, test_guest_brk_native);
	add_test(tc, test_guest_brk_reinjected);
	add_test(tc, test_guest_brk_then_ours);
	add_test(tc, test_guest_brk_our_imm);
	add_test(tc, test_sw_break_on_guest_brk);
	add_test(tc, test_guest_brk_el0);
}

/* ---- the guest's own debug registers beside the host's (overlay) ---- */


/* What the guest's handler recorded (tests/guest/arm64-guests.S, kt_dbg). */
static uint64_t dbg_rec(const struct kt_vm *vm, const char *tab, unsigned int ec)
{
	uint64_t v;

	memcpy(&v, (const char *)kt_hva(vm, tab) + 8 * (ec - 0x30), sizeof(v));
	return v;
}

/* Everything the library gives KVM_SET_GUEST_DEBUG, checked on the way, and
 * the ONE_REG reads counted. */
static unsigned int ov_get_one_reg, ov_set_debug, ov_bad;
static uint64_t ov_forbidden; /* an address no hardware slot may hold */
static char ov_bad_msg[160];

static void ov_check_slot(const char *kind, unsigned int i, uint64_t ctrl, uint64_t value)
{
	/* Only E, PxC, LSC, BAS, MASK; PxC one of 01/10/11; HMC, SSC, LBN, BT/WT zero. */
	const uint64_t known = 1 | 6 | 3 << 3 | 0xffull << 5 | 0x1full << 24;

	if (!(ctrl & 1))
		return;
	if ((ctrl & ~known) || !((ctrl >> 1) & 3) || (value & ~0xfull) == ov_forbidden) {
		if (!ov_bad++)
			snprintf(ov_bad_msg, sizeof(ov_bad_msg), "%s%u: ctrl %#llx value %#llx", kind,
				 i, (unsigned long long)ctrl, (unsigned long long)value);
	}
}

static int ov_hook(int fd, unsigned long req, void *arg)
{
	int r;

	if (req == KVM_GET_ONE_REG)
		ov_get_one_reg++;
	if (req == KVM_SET_GUEST_DEBUG) {
		const struct kvm_guest_debug *d = arg;

		ov_set_debug++;
		for (unsigned int i = 0; i < KVM_ARM_MAX_DBG_REGS; i++) {
			ov_check_slot("bcr", i, d->arch.dbg_bcr[i], d->arch.dbg_bvr[i]);
			ov_check_slot("wcr", i, d->arch.dbg_wcr[i], d->arch.dbg_wvr[i]);
		}
	}
	r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

/*
 * One iteration of g_ov, to its marker: with the host attached, a stop at
 * its breakpoint and one at its watchpoint (each stepped past: one internal
 * step each); `guests` guest-owned exceptions delivered back on the way.
 */
static void ov_iteration(struct kt_vm *vm, unsigned int iter, bool host, unsigned int guests)
{
	unsigned int g = 0, nones = 0;
	struct kt_stop st;
	char d[320];

	if (host) {
		st = run_event(vm, KVMDBG_STOP_BREAK, g_ov_hbp);
		ck_assert_uint_eq(st.ev.addr, kt_gva(vm, g_ov_hbp));
		g += st.guests;
		nones += st.nones;
		st = run_event(vm, KVMDBG_STOP_WATCH, g_ov_hw);
		ck_assert_uint_eq(st.ev.addr, kt_gva(vm, g_ov_hvar));
		ck_assert_uint_eq(st.ev.data_addr, kt_gva(vm, g_ov_hvar));
		ck_assert_int_eq(st.ev.write, 1);
		g += st.guests;
		nones += st.nones;
	}
	kt_run(vm, 0, 0, &st);
	ck_assert_msg(st.what == KT_MARK && st.mark == iter + 1, "iteration %u: got %s", iter,
		      kt_describe(vm, &st, d, sizeof(d)));
	g += st.guests;
	nones += st.nones;
	ck_assert_msg(g == guests, "iteration %u: %u guest exceptions through the host, want %u",
		      iter, g, guests);
	ck_assert_msg(nones == (host ? 2u : 0u), "iteration %u: %u internal exits", iter, nones);
}

/* The guest's own records: bp breakpoint and wp watchpoint exceptions in
 * all, nothing else, each with the ESR (esr_bp / esr_wp when not 0), ELR
 * and FAR the CPU gives it. */
static void ov_expect_guest(const struct kt_vm *vm, uint64_t bp, uint64_t wp, uint64_t esr_bp,
			    uint64_t esr_wp)
{
	for (unsigned int ec = 0x30; ec <= 0x35; ec++) {
		uint64_t want = ec == EC_BREAKPT_CUR ? bp : ec == EC_WATCHPT_CUR ? wp : 0;

		ck_assert_msg(dbg_rec(vm, kt_dbg_count, ec) == want,
			      "guest saw %llu exceptions of EC %#x, want %llu",
			      (unsigned long long)dbg_rec(vm, kt_dbg_count, ec), ec,
			      (unsigned long long)want);
	}
	ck_assert_uint_eq(kt_peek(vm, kt_brk_count), 0);
	if (bp) {
		ck_assert_uint_eq(dbg_rec(vm, kt_dbg_elr, EC_BREAKPT_CUR), kt_gva(vm, g_ov_gbp));
		if (esr_bp)
			ck_assert_uint_eq(dbg_rec(vm, kt_dbg_esr, EC_BREAKPT_CUR), esr_bp);
	}
	if (wp) {
		ck_assert_uint_eq(dbg_rec(vm, kt_dbg_elr, EC_WATCHPT_CUR), kt_gva(vm, g_ov_gw));
		ck_assert_uint_eq(dbg_rec(vm, kt_dbg_far, EC_WATCHPT_CUR), kt_gva(vm, g_ov_gvar));
		if (esr_wp)
			ck_assert_uint_eq(dbg_rec(vm, kt_dbg_esr, EC_WATCHPT_CUR), esr_wp);
	}
}

static struct kvmdbg_overlay_stats ov_stats(const struct kt_vm *vm)
{
	struct kvmdbg_overlay_stats s = { .sz = sizeof(s) };

	ck_assert_int_eq(kvmdbg_vcpu_overlay_stats(vm->vcpu[0], &s), 0);
	return s;
}

#define OV_EXPECT(vm, m, su, rej, reinj)                                                        \
	do {                                                                                    \
		struct kvmdbg_overlay_stats s_ = ov_stats(vm);                                  \
		ck_assert_msg(s_.merged == (m) && s_.suspended == (su) && s_.rejected == (rej) && \
				      s_.reinjected == (reinj),                                 \
			      "overlay: merged %u suspended %u rejected %u reinjected %llu, "    \
			      "want %u %u %u %u",                                               \
			      s_.merged, s_.suspended, s_.rejected,                              \
			      (unsigned long long)s_.reinjected, (m), (su), (rej), (reinj));     \
	} while (0)

/*
 * A guest debugging itself (its own vector table, DBGBCR0/DBGWCR0, MDSCR_EL1
 * MDE and KDE, counting its exceptions in memory) while the host debugger
 * holds other slots, KVMDBG_OVERLAY_GUEST:
 *  0. no host debugging: KVM runs the guest's registers, nothing exits;
 *  1. the host takes breakpoint and watchpoint slot 0 (the guest's numbers):
 *     the guest's move to other slots; both sides' exceptions happen once
 *     per iteration, the guest's re-injected with the ESR the CPU gave it
 *     natively in 0 (same-EL EC) and the FAR of its store;
 *  2. the host takes every slot of both pools: the guest's are suspended;
 *  3. the host frees one watchpoint slot: the guest's watchpoint is back;
 *  4. the host removes everything: the guest's debugging runs natively again.
 * The guest's hostile breakpoint 2 (HMC, SSC 0b11) on an instruction run in
 * 1-3 is refused: no KVM_SET_GUEST_DEBUG ever carries it, it never fires.
 */
START_TEST(test_overlay_guest_own_debug)
{
	struct kt_vm_opts o = { .overlay = KVMDBG_OVERLAY_GUEST };
	struct kvmdbg_caps c = { .sz = sizeof(c) };
	struct kvmdbg_guest_caps gc = { .sz = sizeof(gc) };
	struct kvmdbg_vcpu *v;
	uint64_t esr_bp, esr_wp, refreshes;
	struct kt_vm vm;
	unsigned int reads;

	need(KVMDBG_FEAT_HW_BREAK, "hw_break");
	need(KVMDBG_FEAT_WATCH_WRITE, "watch_write");
	kt_vm_create(&vm, &o);
	v = vm.vcpu[0];
	ck_assert_int_eq(kvmdbg_probe(vm.m.vm_fd, &c), 0);
	ck_assert_int_eq(kvmdbg_probe_guest(vm.m.vcpu_fd[0], &gc), 0);
	ck_assert_uint_ge(c.hw_breakpoints, 3);
	ck_assert_uint_ge(c.hw_watchpoints, 2);
	ov_forbidden = kt_gva(&vm, g_ov_xbp);
	ov_bad = ov_set_debug = 0;
	kvmdbg_set_ioctl_hook(ov_hook);

	kt_vcpu_start(&vm, 0, g_ov);
	kt_expect_mark(&vm, 0, KA_OV_SETUP);

	/* 0: natively. Keep the syndromes the CPU itself wrote. */
	ov_iteration(&vm, 0, false, 0);
	ov_expect_guest(&vm, 1, 1, 0, 0);
	esr_bp = dbg_rec(&vm, kt_dbg_esr, EC_BREAKPT_CUR);
	esr_wp = dbg_rec(&vm, kt_dbg_esr, EC_WATCHPT_CUR);
	ck_assert_uint_eq(esr_bp & ~0x1ffffffull, (uint64_t)EC_BREAKPT_CUR << 26 | ESR_IL);
	ck_assert_uint_eq(esr_bp & 0x3f, ESR_FSC_DEBUG);
	ck_assert_uint_eq(esr_wp & ~0x1ffffffull, (uint64_t)EC_WATCHPT_CUR << 26 | ESR_IL);
	ck_assert_uint_eq(esr_wp & (ESR_ISS_WNR | 0x3f), ESR_ISS_WNR | ESR_FSC_DEBUG);
	OV_EXPECT(&vm, 0u, 0u, 0u, 0u);

	/* 1: the host attaches. The guest changed its registers while KVM ran
	 * them: the VMM has the library look (kvmdbg_vcpu_refresh_guest), and
	 * the read costs `reads` ONE_REGs. */
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_ov_hbp), 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_WATCH_WRITE, kt_gva(&vm, g_ov_hvar), 8), 0);
	ck_assert_int_eq(kvmdbg_vcpu_refresh_guest(v), 0);
	ov_get_one_reg = 0;
	ck_assert_int_eq(kvmdbg_vcpu_prepare(v), 0);
	reads = ov_get_one_reg;
	/* MDSCR, OSLSR, ID_AA64DFR0, every DBGBCR/DBGWCR, the 3 enabled values. */
	ck_assert_uint_eq(reads, 3 + gc.breakpoints + gc.watchpoints + 3);
	OV_EXPECT(&vm, 2u, 0u, 1u, 0u);
	/* Renumbered: the host holds slot 0 of each pool. */
	ck_assert_uint_eq(v->applied_owner[KVMDBG_POOL_BP][1], KVMDBG_OWNER_GUEST_ID(0, 0));
	ck_assert_uint_eq(v->applied.slot[KVMDBG_POOL_BP][1].value, kt_gva(&vm, g_ov_gbp));
	ck_assert_uint_eq(v->applied_owner[KVMDBG_POOL_WP][1], KVMDBG_OWNER_GUEST_ID(1, 0));
	ck_assert_uint_eq(v->applied.slot[KVMDBG_POOL_WP][1].value, kt_gva(&vm, g_ov_gvar));
	ov_iteration(&vm, 1, true, 2);
	ov_expect_guest(&vm, 2, 2, esr_bp, esr_wp);
	OV_EXPECT(&vm, 2u, 0u, 1u, 2u);

	/* 2: the host takes every slot (on code and data g_ov never touches). */
	for (unsigned int i = 1; i < c.hw_breakpoints; i++)
		ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_step) + 4 * i,
					       4),
				 0);
	for (unsigned int i = 1; i < c.hw_watchpoints; i++)
		ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_WATCH_WRITE,
					       kt_gva(&vm, g_watch_blk) + 8 * i, 8),
				 0);
	ov_iteration(&vm, 2, true, 0);
	ov_expect_guest(&vm, 2, 2, esr_bp, esr_wp);
	OV_EXPECT(&vm, 0u, 2u, 1u, 2u);

	/* 3: one watchpoint slot back: the guest's watchpoint runs in it. */
	ck_assert_int_eq(kvmdbg_vm_remove(vm.dbg, KVMDBG_WATCH_WRITE, kt_gva(&vm, g_watch_blk) + 8, 8),
			 0);
	ov_iteration(&vm, 3, true, 1);
	ov_expect_guest(&vm, 2, 3, esr_bp, esr_wp);
	OV_EXPECT(&vm, 1u, 1u, 1u, 3u);

	/* 4: the host detaches: as if nothing had happened. */
	ck_assert_int_eq(kvmdbg_vm_remove_all(vm.dbg), 0);
	ov_iteration(&vm, 4, false, 0);
	ov_expect_guest(&vm, 3, 4, esr_bp, esr_wp);
	kt_expect_done(&vm, 0);
	OV_EXPECT(&vm, 0u, 0u, 1u, 3u);

	kvmdbg_set_ioctl_hook(NULL);
	ck_assert_msg(ov_bad == 0, "%u unsafe slots reached KVM_SET_GUEST_DEBUG, first %s", ov_bad,
		      ov_bad_msg);
	refreshes = ov_stats(&vm).refreshes;
	kt_note("overlay: guest sees %u/%u registers; a refresh with the guest debugging costs %u "
		"KVM_GET_ONE_REG; %llu refreshes, %u KVM_SET_GUEST_DEBUG in this test",
		gc.breakpoints, gc.watchpoints, reads, (unsigned long long)refreshes, ov_set_debug);
	kt_vm_destroy(&vm);
}
END_TEST

/* Run to marker iter + 1; with the host's breakpoint at host_bp first. The
 * guest-owned exceptions delivered on the way are returned. */
static unsigned int ov_run_iter(struct kt_vm *vm, unsigned int iter, const char *host_bp)
{
	unsigned int g = 0;
	struct kt_stop st;
	char d[320];

	if (host_bp) {
		st = run_event(vm, KVMDBG_STOP_BREAK, host_bp);
		g += st.guests;
	}
	kt_run(vm, 0, 0, &st);
	ck_assert_msg(st.what == KT_MARK && st.mark == iter + 1, "iteration %u: got %s", iter,
		      kt_describe(vm, &st, d, sizeof(d)));
	return g + st.guests;
}

/* The guest's exception counts per EC 0x30..0x35, as a string for messages. */
static bool ov_counts_are(const struct kt_vm *vm, const uint64_t want[6], char *buf, size_t len)
{
	bool ok = true;
	int n = 0;

	for (unsigned int i = 0; i < 6; i++) {
		uint64_t c = dbg_rec(vm, kt_dbg_count, 0x30 + i);

		ok &= c == want[i];
		n += snprintf(buf + n, len - (size_t)n, "%s%#x:%llu", i ? " " : "", 0x30 + i,
			      (unsigned long long)c);
	}
	return ok;
}

#define OV_COUNTS(vm, ...)                                                             \
	do {                                                                           \
		const uint64_t w_[6] = __VA_ARGS__;                                    \
		char b_[128];                                                          \
		ck_assert_msg(ov_counts_are(vm, w_, b_, sizeof(b_)), "guest saw %s", b_); \
	} while (0)

/*
 * MDE without KDE: the guest's breakpoint on EL0 code fires for it through
 * the lower-EL vector with EC 0x30, also when re-injected; its EL1+EL0
 * breakpoint on EL1 code never fires (natively KDE forbids it; merged, the
 * sanitiser keeps only its EL0 part). Suspend/resume and detach as above.
 */
START_TEST(test_overlay_guest_el0_no_kde)
{
	struct kt_vm_opts o = { .overlay = KVMDBG_OVERLAY_GUEST };
	struct kvmdbg_caps c = { .sz = sizeof(c) };
	struct kvmdbg_vcpu *v;
	uint64_t esr;
	struct kt_vm vm;
	unsigned int n;

	need(KVMDBG_FEAT_HW_BREAK, "hw_break");
	kt_vm_create(&vm, &o);
	v = vm.vcpu[0];
	ck_assert_int_eq(kvmdbg_probe(vm.m.vm_fd, &c), 0);
	kt_vcpu_start(&vm, 0, g_ovu);
	kt_expect_mark(&vm, 0, KA_OV_SETUP);

	ck_assert_uint_eq(ov_run_iter(&vm, 0, NULL), 0);
	OV_COUNTS(&vm, { 1, 0, 0, 0, 0, 0 });
	esr = dbg_rec(&vm, kt_dbg_esr, EC_BREAKPT_LOW);
	ck_assert_uint_eq(esr, (uint64_t)EC_BREAKPT_LOW << 26 | ESR_IL | ESR_FSC_DEBUG);
	ck_assert_uint_eq(dbg_rec(&vm, kt_dbg_elr, EC_BREAKPT_LOW), kt_gva(&vm, g_ovu_bp));
	ck_assert_uint_eq(kt_peek(&vm, kt_dbg_vec), 0x400);

	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_ovu_hbp), 4), 0);
	ck_assert_int_eq(kvmdbg_vcpu_refresh_guest(v), 0);
	ck_assert_uint_eq(ov_run_iter(&vm, 1, g_ovu_hbp), 1);
	OV_COUNTS(&vm, { 2, 0, 0, 0, 0, 0 });
	ck_assert_uint_eq(dbg_rec(&vm, kt_dbg_esr, EC_BREAKPT_LOW), esr);
	ck_assert_uint_eq(dbg_rec(&vm, kt_dbg_elr, EC_BREAKPT_LOW), kt_gva(&vm, g_ovu_bp));
	ck_assert_uint_eq(kt_peek(&vm, kt_dbg_vec), 0x400);
	OV_EXPECT(&vm, 2u, 0u, 0u, 1u);
	/* Both merged as EL0-only (PMC 0b10), in slots 1 and 2. */
	for (n = 0; n < 2; n++) {
		ck_assert_uint_eq(v->applied_owner[KVMDBG_POOL_BP][n + 1],
				  KVMDBG_OWNER_GUEST_ID(0, n));
		ck_assert_uint_eq(v->applied.slot[KVMDBG_POOL_BP][n + 1].ctrl, 1 | 2 << 1 | 0xf << 5);
	}

	for (n = 1; n < c.hw_breakpoints; n++)
		ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_step) + 4 * n,
					       4),
				 0);
	ck_assert_uint_eq(ov_run_iter(&vm, 2, g_ovu_hbp), 0);
	OV_COUNTS(&vm, { 2, 0, 0, 0, 0, 0 });
	OV_EXPECT(&vm, 0u, 2u, 0u, 1u);

	/* One slot back: the guest's register 0 first. */
	ck_assert_int_eq(kvmdbg_vm_remove(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_step) + 4, 4), 0);
	ck_assert_uint_eq(ov_run_iter(&vm, 3, g_ovu_hbp), 1);
	OV_COUNTS(&vm, { 3, 0, 0, 0, 0, 0 });
	OV_EXPECT(&vm, 1u, 1u, 0u, 2u);

	ck_assert_int_eq(kvmdbg_vm_remove_all(vm.dbg), 0);
	ck_assert_uint_eq(ov_run_iter(&vm, 4, NULL), 0);
	OV_COUNTS(&vm, { 4, 0, 0, 0, 0, 0 });
	ck_assert_uint_eq(dbg_rec(&vm, kt_dbg_esr, EC_BREAKPT_LOW), esr);
	kt_expect_done(&vm, 0);
	kt_vm_destroy(&vm);
}
END_TEST

/*
 * The guest's own software step (MDSCR_EL1.SS, SPSR.SS) natively gives it
 * one EC 0x33 exception per iteration. While the host debugs, KVM runs the
 * guest with MDSCR_EL1.SS cleared unless the host steps itself
 * (arch/arm64/kvm/debug.c, kvm_arm_setup_debug), so the guest's step is not
 * taken at all and there is nothing to re-inject: the step is lost for the
 * guest. Checked as it is (if a KVM ever delivers it, it must come back
 * with the native syndrome), and the guest's step works again after detach
 * (with one stray step: the consequence of the lost one).
 */
START_TEST(test_overlay_guest_step)
{
	struct kt_vm_opts o = { .overlay = KVMDBG_OVERLAY_GUEST };
	uint64_t esr, steps;
	struct kt_vm vm;
	unsigned int g;

	need(KVMDBG_FEAT_HW_BREAK, "hw_break");
	kt_vm_create(&vm, &o);
	kt_vcpu_start(&vm, 0, g_ovs);
	kt_expect_mark(&vm, 0, KA_OV_SETUP);

	ck_assert_uint_eq(ov_run_iter(&vm, 0, NULL), 0);
	OV_COUNTS(&vm, { 0, 0, 0, 1, 0, 0 });
	esr = dbg_rec(&vm, kt_dbg_esr, 0x33);
	ck_assert_uint_eq(esr & ~0x1ffffffull, (uint64_t)0x33 << 26 | ESR_IL);
	ck_assert_uint_eq(dbg_rec(&vm, kt_dbg_elr, 0x33), kt_gva(&vm, g_ovs_after));

	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_ovs_hbp), 4), 0);
	ck_assert_int_eq(kvmdbg_vcpu_refresh_guest(vm.vcpu[0]), 0);
	g = ov_run_iter(&vm, 1, g_ovs_hbp);
	steps = dbg_rec(&vm, kt_dbg_count, 0x33);
	ck_assert_uint_eq(steps, 1 + g);
	if (g) {
		ck_assert_uint_eq(dbg_rec(&vm, kt_dbg_esr, 0x33), esr);
		ck_assert_uint_eq(dbg_rec(&vm, kt_dbg_elr, 0x33), kt_gva(&vm, g_ovs_after));
		kt_note("overlay: this KVM delivers the guest's own step while the host debugs");
	} else {
		kt_not_exercised("re-injection of the guest's own software step",
				 "KVM runs the guest with MDSCR_EL1.SS cleared while the host "
				 "debugs without stepping: the step is not taken");
	}

	/* Detached: the guest's steps come natively again. A step lost while
	 * attached left MDSCR_EL1.SS set with PSTATE.D clear (the handler that
	 * clears it never ran): natively that is a pending step, taken right
	 * after the marker, before the iteration's own. */
	ck_assert_int_eq(kvmdbg_vm_remove_all(vm.dbg), 0);
	ck_assert_uint_eq(ov_run_iter(&vm, 2, NULL), 0);
	OV_COUNTS(&vm, { 0, 0, 0, steps + (g ? 1 : 2), 0, 0 });
	ck_assert_uint_eq(dbg_rec(&vm, kt_dbg_esr, 0x33), esr);
	ck_assert_uint_eq(dbg_rec(&vm, kt_dbg_elr, 0x33), kt_gva(&vm, g_ovs_after));
	kt_vm_destroy(&vm);
}
END_TEST

/*
 * Host and guest on the same instruction and the same doubleword: each
 * exit is reported to the host once and delivered to the guest too, with
 * its native syndrome, once per iteration each.
 */
START_TEST(test_overlay_same_address)
{
	struct kt_vm_opts o = { .overlay = KVMDBG_OVERLAY_GUEST };
	uint64_t esr_bp, esr_wp;
	struct kt_stop st;
	struct kt_vm vm;
	char d[320];

	need(KVMDBG_FEAT_HW_BREAK, "hw_break");
	need(KVMDBG_FEAT_WATCH_WRITE, "watch_write");
	kt_vm_create(&vm, &o);
	kt_vcpu_start(&vm, 0, g_ov);
	kt_expect_mark(&vm, 0, KA_OV_SETUP);
	ov_iteration(&vm, 0, false, 0);
	ov_expect_guest(&vm, 1, 1, 0, 0);
	esr_bp = dbg_rec(&vm, kt_dbg_esr, EC_BREAKPT_CUR);
	esr_wp = dbg_rec(&vm, kt_dbg_esr, EC_WATCHPT_CUR);

	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_ov_gbp), 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_WATCH_WRITE, kt_gva(&vm, g_ov_gvar), 8), 0);
	ck_assert_int_eq(kvmdbg_vcpu_refresh_guest(vm.vcpu[0]), 0);
	for (unsigned int it = 1; it < KA_OV_N - 1; it++) {
		st = run_event(&vm, KVMDBG_STOP_BREAK, g_ov_gbp);
		ck_assert_uint_eq(st.guests, 0);
		st = run_event(&vm, KVMDBG_STOP_WATCH, g_ov_gw);
		ck_assert_uint_eq(st.ev.data_addr, kt_gva(&vm, g_ov_gvar));
		ck_assert_uint_eq(st.guests, 0);
		/* The breakpoint's exception was delivered when resumed. */
		ov_expect_guest(&vm, 1 + it, it, esr_bp, esr_wp);
		kt_run(&vm, 0, 0, &st);
		ck_assert_msg(st.what == KT_MARK && st.mark == it + 1, "got %s",
			      kt_describe(&vm, &st, d, sizeof(d)));
		ck_assert_uint_eq(st.guests, 0);
		ov_expect_guest(&vm, 1 + it, 1 + it, esr_bp, esr_wp);
	}
	OV_EXPECT(&vm, 2u, 0u, 1u, 2u * (KA_OV_N - 2));
	ck_assert_int_eq(kvmdbg_vm_remove_all(vm.dbg), 0);
	ov_iteration(&vm, KA_OV_N - 1, false, 0);
	ov_expect_guest(&vm, KA_OV_N, KA_OV_N, esr_bp, esr_wp);
	kt_expect_done(&vm, 0);
	kt_vm_destroy(&vm);
}
END_TEST


/* g_ov with its variant flags: x19 keeps PSTATE.D masked, x18 has the guest
 * clear MDSCR_EL1 at the end of iteration 2. */
static void ov_start(struct kt_vm *vm, enum kvmdbg_overlay ov, uint64_t dmasked,
		     uint64_t mdscr_off)
{
	struct kt_vm_opts o = { .overlay = ov };

	kt_vm_create(vm, &o);
	kt_vcpu_start(vm, 0, g_ov);
	ka_set_reg(vm, 0, REG_X(19), dmasked);
	ka_set_reg(vm, 0, REG_X(18), mdscr_off);
	kt_expect_mark(vm, 0, KA_OV_SETUP);
}

/* Host debugging with software breakpoints only. With the overlay the
 * guest's slots are merged: its exceptions are the guest's, delivered, once
 * each; no livelock. Without it they are KVM's business: where the probe
 * found GUEST_REGS_RAW (before Linux 6.14) KVM runs the guest's own
 * registers but routes their exceptions to us (MDCR_EL2.TDE), and the
 * library hands them back; elsewhere KVM runs none of them, and neither we
 * nor the guest see anything. */
static void sw_only(enum kvmdbg_overlay ov)
{
	uint64_t esr_bp, esr_wp;
	struct kt_stop st;
	struct kt_vm vm;
	char d[320];

	need(KVMDBG_FEAT_SW_BREAK, "sw_break");
	ov_start(&vm, ov, 0, 0);
	ov_iteration(&vm, 0, false, 0);
	ov_expect_guest(&vm, 1, 1, 0, 0);
	esr_bp = dbg_rec(&vm, kt_dbg_esr, EC_BREAKPT_CUR);
	esr_wp = dbg_rec(&vm, kt_dbg_esr, EC_WATCHPT_CUR);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_SW, kt_gva(&vm, g_ov_hbp), 4), 0);
	if (ov == KVMDBG_OVERLAY_OFF && !kt_has(KVMDBG_FEAT_GUEST_REGS_RAW)) {
		/* Inert: its breakpoint, its watched store and its hostile
		 * breakpoint run in iteration 1 with no exception at all. */
		st = run_event(&vm, KVMDBG_STOP_BREAK, g_ov_hbp);
		ck_assert_uint_eq(st.guests, 0);
		kt_run(&vm, 0, 0, &st);
		ck_assert_msg(st.what == KT_MARK && st.mark == 2, "got %s",
			      kt_describe(&vm, &st, d, sizeof(d)));
		ck_assert_uint_eq(st.guests, 0);
		ov_expect_guest(&vm, 1, 1, esr_bp, esr_wp);
		kt_note("overlay off, software breakpoints only: this KVM runs none of the "
			"guest's own slots meanwhile (guest_regs_raw not verified)");
		kt_vm_destroy(&vm);
		return;
	}
	/* Iteration 1 only: 2 and 3 run the guest's hostile breakpoint, which
	 * KVM runs raw with the overlay off. */
	st = run_event(&vm, KVMDBG_STOP_BREAK, g_ov_hbp);
	ck_assert_uint_eq(st.guests, 1);
	kt_run(&vm, 0, 0, &st);
	ck_assert_msg(st.what == KT_MARK && st.mark == 2, "got %s",
		      kt_describe(&vm, &st, d, sizeof(d)));
	if (ov == KVMDBG_OVERLAY_GUEST) {
		ck_assert_uint_eq(st.guests, 1);
		ov_expect_guest(&vm, 2, 2, esr_bp, esr_wp);
	} else {
		/* KVM runs the guest's registers raw: its hostile breakpoint
		 * (HMC, SSC 0b11) matches at EL1 too, and is its own. */
		ck_assert_uint_eq(st.guests, 2);
		OV_COUNTS(&vm, { 0, 3, 0, 0, 0, 2 });
		ck_assert_uint_eq(dbg_rec(&vm, kt_dbg_elr, EC_BREAKPT_CUR), kt_gva(&vm, g_ov_xbp));
		ck_assert_uint_eq(dbg_rec(&vm, kt_dbg_esr, EC_BREAKPT_CUR), esr_bp);
	}
	kt_vm_destroy(&vm);
}

START_TEST(test_overlay_sw_only)
{
	sw_only(KVMDBG_OVERLAY_GUEST);
}
END_TEST

START_TEST(test_overlay_off_sw_only)
{
	sw_only(KVMDBG_OVERLAY_OFF);
}
END_TEST

/* The guest's registers changed while KVM ran them (no host slot): seen
 * when the host attaches, without the VMM asking. */
START_TEST(test_overlay_attach_sees_guest)
{
	struct kt_vm vm;

	need(KVMDBG_FEAT_HW_BREAK, "hw_break");
	ov_start(&vm, KVMDBG_OVERLAY_GUEST, 0, 0);
	ov_iteration(&vm, 0, false, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_ov_hbp), 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_WATCH_WRITE, kt_gva(&vm, g_ov_hvar), 8), 0);
	ov_iteration(&vm, 1, true, 2);
	ov_expect_guest(&vm, 2, 2, 0, 0);
	kt_vm_destroy(&vm);
}
END_TEST

/* The guest turns its debugging off (MDSCR_EL1 = 0) while the host
 * debugs: its slots, still merged, fire once more in hardware; that hit is
 * stale, not delivered. */
START_TEST(test_overlay_guest_turns_off)
{
	struct kt_vm vm;

	need(KVMDBG_FEAT_HW_BREAK, "hw_break");
	ov_start(&vm, KVMDBG_OVERLAY_GUEST, 0, 1);
	ov_iteration(&vm, 0, false, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_ov_hbp), 4), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_WATCH_WRITE, kt_gva(&vm, g_ov_hvar), 8), 0);
	ck_assert_int_eq(kvmdbg_vcpu_refresh_guest(vm.vcpu[0]), 0);
	ov_iteration(&vm, 1, true, 2);
	ov_iteration(&vm, 2, true, 2);
	ov_expect_guest(&vm, 3, 3, 0, 0);
	ck_assert_uint_eq(ka_get_reg(&vm, 0, ARM64_SYS_REG(2, 0, 0, 2, 2)), 0);
	/* Iteration 3: nothing for the guest; one internal exit more (the
	 * stale hit). */
	{
		struct kt_stop st;

		st = run_event(&vm, KVMDBG_STOP_BREAK, g_ov_hbp);
		ck_assert_uint_eq(st.guests, 0);
		st = run_event(&vm, KVMDBG_STOP_WATCH, g_ov_hw);
		ck_assert_uint_eq(st.guests, 0);
		kt_expect_mark(&vm, 0, 4);
	}
	ov_expect_guest(&vm, 3, 3, 0, 0);
	OV_EXPECT(&vm, 0u, 0u, 0u, 4u);
	kt_vm_destroy(&vm);
}
END_TEST

/* PSTATE.D stays masked at EL1: natively the guest takes none of its own
 * exceptions, and with the host attached it must not either (KVM's
 * MDCR_EL2.TDE makes the hardware fire them); the instruction just runs. */
START_TEST(test_overlay_guest_d_masked)
{
	struct kt_vm vm;

	need(KVMDBG_FEAT_HW_BREAK, "hw_break");
	ov_start(&vm, KVMDBG_OVERLAY_GUEST, 1, 0);
	ov_iteration(&vm, 0, false, 0);
	ov_expect_guest(&vm, 0, 0, 0, 0);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, kt_gva(&vm, g_ov_hbp), 4), 0);
	ck_assert_int_eq(kvmdbg_vcpu_refresh_guest(vm.vcpu[0]), 0);
	for (unsigned int it = 1; it < KA_OV_N - 1; it++) {
		struct kt_stop st = run_event(&vm, KVMDBG_STOP_BREAK, g_ov_hbp);

		ck_assert_uint_eq(st.guests, 0);
		kt_expect_mark(&vm, 0, it + 1);
	}
	ov_expect_guest(&vm, 0, 0, 0, 0);
	ck_assert_int_eq(kvmdbg_vm_remove_all(vm.dbg), 0);
	ov_iteration(&vm, KA_OV_N - 1, false, 0);
	ov_expect_guest(&vm, 0, 0, 0, 0);
	kt_vm_destroy(&vm);
}
END_TEST

TEST_SUITE_KVM(kvm_arm64_overlay)
{
	tests_add_fixture(tc, suite_fixture);
	add_test(tc, test_overlay_guest_own_debug);
	add_test(tc, test_overlay_guest_el0_no_kde);
	add_test(tc, test_overlay_guest_step);
	add_test(tc, test_overlay_same_address);
	add_test(tc, test_overlay_sw_only);
	add_test(tc, test_overlay_off_sw_only);
	add_test(tc, test_overlay_attach_sees_guest);
	add_test(tc, test_overlay_guest_turns_off);
	add_test(tc, test_overlay_guest_d_masked);
}
