/* SPDX-License-Identifier: MIT */
/*
 * The guest/host overlay on real KVM (x86): a guest that debugs itself with
 * its own DR0 (execution) and DR1 (write watch) and #DB handler, while the
 * host debugger holds, takes, frees and finally drops hardware slots. Both
 * the host's stops and the guest's own exceptions must happen, each exactly
 * as often as the host can deliver them, with the guest's own slot numbers.
 */
#include <errno.h>
#include <string.h>

#include "kvm-util.h"
#include "test-common.h"

extern const char ovg_start[], ovg_end[], ovg_entry[], ovg_t0[], ovg_host[], ovg_h1[],
	ovg_h2[], ovg_h3[], ovg_var[], ovg_db_count[], ovg_db_dr6[], ovg_db_rip[];

/* Where the program is loaded: beside the shared blob, below the stacks. */
#define OVG_BASE 0x100000ull
#define OVG_DB_MAX 32

static uint64_t ovg(const char *sym)
{
	return OVG_BASE + (uint64_t)(sym - ovg_start);
}

static uint64_t ovg_peek(const struct kt_vm *vm, const char *sym, unsigned int idx)
{
	uint64_t v;

	memcpy(&v, vm->m.mem + ovg(sym) + 8 * idx, sizeof(v));
	return v;
}

static void expect_stats(struct kt_vm *vm, unsigned int phase, unsigned int merged,
			 unsigned int suspended)
{
	struct kvmdbg_overlay_stats st = {.sz = sizeof(st)};

	ck_assert_int_eq(kvmdbg_vcpu_overlay_stats(vm->vcpu[0], &st), 0);
	ck_assert_msg(st.merged == merged && st.suspended == suspended,
		      "phase %u: merged %u suspended %u, expected %u and %u", phase, st.merged,
		      st.suspended, merged, suspended);
	ck_assert_uint_eq(st.rejected, 0);
}

START_TEST(test_overlay_guest_and_host)
{
	struct kt_vm_opts o = {.overlay = KVMDBG_OVERLAY_GUEST, .vm_new_may_fail = true};
	bool live = kt_has(KVMDBG_FEAT_GUEST_BP_LIVE), watch = kt_has(KVMDBG_FEAT_WATCH_WRITE);
	/* Per phase: guest execution #DBs, guest watch #DBs, merged, suspended. */
	const unsigned int exp_exec[5] = {0, 1, live ? 1 : 0, 1, 1};
	const unsigned int exp_watch[5] = {0, watch, 0, watch && live, watch};
	const unsigned int exp_merged[5] = {0, live ? 1 : 2, 0, 1, 0};
	const unsigned int exp_susp[5] = {0, 0, live ? 1 : 2, live ? 0 : 1, 0};
	unsigned int execs = 0, watches = 0;
	struct kvmdbg_event ev;
	struct kt_vm vm;
	uint64_t n;
	int r;

	if (!kt_has(KVMDBG_FEAT_HW_BREAK)) {
		kt_not_exercised("overlay", "no hardware breakpoints verified on this host");
		return;
	}
	r = kt_vm_create(&vm, &o);
	if (r == -EOPNOTSUPP) {
		kt_not_exercised("overlay", "the host cannot read the guest's debug registers");
		return;
	}
	ck_assert_msg(r == 0, "kvmdbg_vm_new: %s", strerror(-r));
	ck_assert_uint_le(OVG_BASE + (uint64_t)(ovg_end - ovg_start),
			  vm.m.mem_size - 4 * 65536);
	ck_assert_int_eq(kvmdbg_microvm_load(&vm.m, OVG_BASE, ovg_start,
					     (size_t)(ovg_end - ovg_start)),
			 0);
	ck_assert_int_eq(kvmdbg_microvm_start(&vm.m, 0, ovg(ovg_entry), vm.m.mem_size - 64), 0);
	ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, ovg(ovg_host), 1), 0);
	if (!watch)
		kt_not_exercised("overlay guest watchpoints",
				 "watchpoints do not fire on this host");
	if (live)
		kt_note("this KVM keeps the guest's execution breakpoints live: not merged");

	kt_expect_mark(&vm, 0, 1);
	for (unsigned int phase = 1; phase <= 4; phase++) {
		uint64_t before = ovg_peek(&vm, ovg_db_count, 0);

		/* The guest may have changed its registers since the last look:
		 * a VMM whose host gives no GD exit refreshes on its exits. */
		ck_assert_int_eq(kvmdbg_vcpu_refresh_guest(vm.vcpu[0]), 0);
		switch (phase) {
		case 2: /* the host takes every slot: the host wins */
			ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, ovg(ovg_h1), 1), 0);
			ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, ovg(ovg_h2), 1), 0);
			ck_assert_int_eq(kvmdbg_vm_insert(vm.dbg, KVMDBG_BREAK_HW, ovg(ovg_h3), 1), 0);
			break;
		case 3: /* one comes back */
			ck_assert_int_eq(kvmdbg_vm_remove(vm.dbg, KVMDBG_BREAK_HW, ovg(ovg_h1), 1), 0);
			break;
		case 4: /* the host detaches */
			ck_assert_int_eq(kvmdbg_vm_remove_all(vm.dbg), 0);
			break;
		}
		if (phase < 4) {
			ev = kt_expect_event(&vm, 0, KVMDBG_STOP_BREAK, NULL);
			ck_assert_uint_eq(ev.pc, ovg(ovg_host));
			ck_assert_uint_eq(ev.hits, 1u << 0); /* the host's slot 0 */
			expect_stats(&vm, phase, exp_merged[phase], exp_susp[phase]);
			kt_expect_mark(&vm, 0, phase + 1);
		} else {
			kt_expect_done(&vm, 0);
		}
		n = ovg_peek(&vm, ovg_db_count, 0);
		ck_assert_uint_le(n, OVG_DB_MAX);
		/* Every guest #DB carries the guest's own slot number in DR6,
		 * whichever hardware slot it ran in. */
		for (uint64_t i = before; i < n; i++) {
			uint64_t dr6 = ovg_peek(&vm, ovg_db_dr6, (unsigned int)i);
			uint64_t rip = ovg_peek(&vm, ovg_db_rip, (unsigned int)i);

			if (rip == ovg(ovg_t0)) {
				ck_assert_msg((dr6 & 0xf) == 1, "phase %u: exec dr6 %#llx", phase,
					      (unsigned long long)dr6);
				execs++;
			} else {
				ck_assert_msg((dr6 & 0xf) == 2, "phase %u: watch dr6 %#llx at %#llx",
					      phase, (unsigned long long)dr6,
					      (unsigned long long)rip);
				watches++;
			}
		}
		ck_assert_msg(n - before == exp_exec[phase] + exp_watch[phase],
			      "phase %u: %llu guest #DBs, expected %u + %u", phase,
			      (unsigned long long)(n - before), exp_exec[phase], exp_watch[phase]);
	}
	ck_assert_uint_eq(ovg_peek(&vm, ovg_var, 0), 4);
	kt_note("overlay: %u guest execution and %u guest watch #DBs delivered", execs, watches);
	kt_vm_destroy(&vm);
}
END_TEST

TEST_SUITE_KVM(kvm_overlay)
{
	add_test(tc, test_overlay_guest_and_host);
}
