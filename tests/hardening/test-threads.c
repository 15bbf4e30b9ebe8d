/* SPDX-License-Identifier: MIT */
/*
 * Thread stress on /dev/kvm (suite `threads`, in the kvm binary
 * test-hardening-kvm): a debugger thread inserts and removes hardware
 * breakpoints (and now and then everything) while three vCPU threads run
 * g_loop, whose body passes every candidate address once per iteration,
 * and a VMM-style loop around each: prepare, KVM_RUN, handle_exit. The
 * debugger kicks the vCPUs after every change (immediate_exit + a signal,
 * as a VMM does).
 *
 * Checked, for a bounded time (KVMDBG_THREADS_SECS, default 3 s):
 *  - no phantom stop: a BREAK names an address that was inserted at some
 *    time between that vCPU's prepare and the end of its handle_exit, and
 *    never an address whose removal completed before the prepare began
 *    (that hit must come back as NONE); never the address the guest does
 *    not execute;
 *  - no lost stop: a KVM_RUN that started with a breakpoint surely applied
 *    (inserted before the prepare began, removed after it returned) runs at
 *    most two loop iterations (the guest's %rcx) before a debug exit;
 *  - progress: every NONE is the step past a reported stop or one stale hit
 *    per change at most (no vCPU spins on stale hits), every vCPU iterates;
 *  - no other kind of event, every library call succeeds, nothing crashes,
 *    and the TSan build (scripts/harden) reports no race.
 * "Before" and "after" come from a sequence number the debugger advances
 * both before and after each library call: the library's state changes
 * inside the call, and a vCPU thread may prepare between the call's return
 * and the debugger's next step. A removal stamped only when it completed
 * would look as if it began after such a prepare, which ran without it.
 * The host's kvm_pvm emulates CPL0 guest code (~0.5 us per instruction),
 * so iterations are slow; execution breakpoints and single-step work there.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "kvm-util.h"
#include "kvmdbg-int.h"
#include "test-common.h"

#define NVCPU 3
#define NADDR 5      /* candidates; the last one is never executed */
#define MAXINC 4096  /* insertions recorded per address */

struct inc {
	/* seq before the insert began / after it completed; the same for the
	 * remove (UINT64_MAX while inserted) */
	uint64_t ins0, ins1, rem0, rem1;
};

struct vstats {
	unsigned long runs, stops, nones, kicks, iterations, stops_at[NADDR];
};

static struct {
	struct kt_vm vm;
	uint64_t addr[NADDR];
	pthread_mutex_t lock; /* guards hist, inserted */
	struct inc hist[NADDR][MAXINC];
	unsigned int nhist[NADDR];
	bool inserted[NADDR];
	atomic_uint_fast64_t seq;
	atomic_bool stop;
	atomic_bool failed;
	char err[512];
	pthread_t tid[NVCPU];
	struct vstats st[NVCPU];
	unsigned long inserts, removes, remove_alls;
} T;

static void tfail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void tfail(const char *fmt, ...)
{
	va_list ap;
	bool was = atomic_exchange(&T.failed, true);

	if (was)
		return;
	va_start(ap, fmt);
	vsnprintf(T.err, sizeof(T.err), fmt, ap);
	va_end(ap);
	atomic_store(&T.stop, true);
}

static void kick_all(void)
{
	for (int i = 0; i < NVCPU; i++)
		kt_kick(T.vm.m.run[i], T.tid[i]);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int addr_index(uint64_t a)
{
	for (int k = 0; k < NADDR; k++)
		if (T.addr[k] == a)
			return k;
	return -1;
}

/* Some insertion of k may have overlapped [s0, s1]: begun by s1, its removal
 * not completed by s0. */
static bool overlapped(int k, uint64_t s0, uint64_t s1)
{
	bool ok = false;

	pthread_mutex_lock(&T.lock);
	for (unsigned int j = 0; j < T.nhist[k] && !ok; j++)
		ok = T.hist[k][j].ins0 <= s1 && T.hist[k][j].rem1 > s0;
	pthread_mutex_unlock(&T.lock);
	return ok;
}

/* Some executed candidate was surely in from s0 to s0a: its insertion
 * completed by s0, its removal not begun by s0a. */
static bool surely_applied(uint64_t s0, uint64_t s0a)
{
	bool yes = false;

	pthread_mutex_lock(&T.lock);
	for (int k = 0; k < NADDR - 1 && !yes; k++)
		for (unsigned int j = 0; j < T.nhist[k] && !yes; j++)
			yes = T.hist[k][j].ins1 <= s0 && T.hist[k][j].rem0 > s0a;
	pthread_mutex_unlock(&T.lock);
	return yes;
}

static uint64_t rcx_of(int i)
{
	struct kvm_regs regs;

	if (ioctl(T.vm.m.vcpu_fd[i], KVM_GET_REGS, &regs)) {
		tfail("vcpu%d: KVM_GET_REGS: %s", i, strerror(errno));
		return 0;
	}
	return regs.rcx;
}

static void *vcpu_thread(void *arg)
{
	int i = (int)(intptr_t)arg;
	struct kvm_run *run = T.vm.m.run[i];
	struct vstats *st = &T.st[i];
	uint64_t rcx = rcx_of(i);
	char b[64];

	while (!atomic_load(&T.stop)) {
		uint64_t s0 = atomic_load(&T.seq), s0a, s1, rcx_now, done;
		bool applied;
		struct kvmdbg_event ev;
		int r = kvmdbg_vcpu_prepare(T.vm.vcpu[i]);

		s0a = atomic_load(&T.seq);
		if (r) {
			tfail("vcpu%d: prepare: %s", i, strerror(-r));
			break;
		}
		applied = surely_applied(s0, s0a);
		r = ioctl(T.vm.m.vcpu_fd[i], KVM_RUN, 0);
		st->runs++;
		rcx_now = rcx_of(i);
		/* Any other exit ends the test first: after a guest shutdown (a
		 * triple fault: KVM resets the vCPU) %rcx says nothing. */
		if (r >= 0 && run->exit_reason != KVM_EXIT_INTR &&
		    run->exit_reason != KVM_EXIT_DEBUG) {
			tfail("vcpu%d: exit reason %u at %s", i, run->exit_reason,
			      kt_sym(&T.vm, kt_rip(&T.vm, (unsigned int)i), b, sizeof(b)));
			break;
		}
		/* g_loop counts %rcx down once per iteration (it loads it first). */
		done = rcx >= rcx_now ? rcx - rcx_now : 0;
		st->iterations += done;
		if (applied && done > 2) {
			/* %rcx says whether the guest really ran that far (it
			 * counts down from g_loop_n) or its state was lost. */
			tfail("vcpu%d: lost stop: %llu iterations (%%rcx %#llx -> %#llx) with a "
			      "breakpoint applied",
			      i, (unsigned long long)done, (unsigned long long)rcx,
			      (unsigned long long)rcx_now);
			break;
		}
		rcx = rcx_now;
		if (r < 0) {
			if (errno != EINTR && errno != EAGAIN) {
				tfail("vcpu%d: KVM_RUN: %s", i, strerror(errno));
				break;
			}
			__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
			st->kicks++;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_INTR) {
			st->kicks++;
			continue;
		}
		r = kvmdbg_vcpu_handle_exit(T.vm.vcpu[i], &ev);
		s1 = atomic_load(&T.seq);
		if (r) {
			tfail("vcpu%d: handle_exit: %s", i, strerror(-r));
			break;
		}
		if (ev.kind == KVMDBG_STOP_NONE) {
			st->nones++;
			continue;
		}
		if (ev.kind != KVMDBG_STOP_BREAK || ev.type != KVMDBG_BREAK_HW || ev.addr != ev.pc) {
			tfail("vcpu%d: unexpected %s %s at %s", i, kvmdbg_stop_name(ev.kind),
			     kvmdbg_type_name(ev.type), kt_sym(&T.vm, ev.pc, b, sizeof(b)));
			break;
		}
		{
			int k = addr_index(ev.pc);

			if (k < 0 || k == NADDR - 1 || !overlapped(k, s0, s1)) {
				tfail("vcpu%d: phantom stop at %s (seq %llu..%llu)", i,
				     kt_sym(&T.vm, ev.pc, b, sizeof(b)), (unsigned long long)s0,
				     (unsigned long long)s1);
				break;
			}
			st->stops++;
			st->stops_at[k]++;
		}
	}
	return NULL;
}

static uint64_t rnd_state = 0x7468726561647321ull;

static unsigned int rnd(unsigned int n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (unsigned int)(rnd_state % n);
}

/* The debugger: one change at a time, each followed by a kick. */
static void debugger(double secs)
{
	double end = now() + secs;

	while (now() < end && !atomic_load(&T.stop)) {
		int k = (int)rnd(NADDR);
		uint64_t b, e; /* seq before the call began, after it completed */
		int r;

		pthread_mutex_lock(&T.lock);
		if (rnd(64) == 0) {
			b = atomic_fetch_add(&T.seq, 1) + 1;
			r = kvmdbg_vm_remove_all(T.vm.dbg);
			if (!r) {
				e = atomic_fetch_add(&T.seq, 1) + 1;
				for (int j = 0; j < NADDR; j++)
					if (T.inserted[j]) {
						T.hist[j][T.nhist[j] - 1].rem0 = b;
						T.hist[j][T.nhist[j] - 1].rem1 = e;
						T.inserted[j] = false;
					}
				T.remove_alls++;
			}
		} else if (T.inserted[k]) {
			b = atomic_fetch_add(&T.seq, 1) + 1;
			r = kvmdbg_vm_remove(T.vm.dbg, KVMDBG_BREAK_HW, T.addr[k], 1);
			if (!r) {
				e = atomic_fetch_add(&T.seq, 1) + 1;
				T.hist[k][T.nhist[k] - 1].rem0 = b;
				T.hist[k][T.nhist[k] - 1].rem1 = e;
				T.inserted[k] = false;
				T.removes++;
			}
		} else if (T.nhist[k] < MAXINC) {
			b = atomic_fetch_add(&T.seq, 1) + 1;
			r = kvmdbg_vm_insert(T.vm.dbg, KVMDBG_BREAK_HW, T.addr[k], 1);
			if (r == -ENOSPC) {
				r = 0; /* four slots, five candidates */
			} else if (!r) {
				e = atomic_fetch_add(&T.seq, 1) + 1;
				T.hist[k][T.nhist[k]++] = (struct inc){
					.ins0 = b, .ins1 = e, .rem0 = UINT64_MAX, .rem1 = UINT64_MAX};
				T.inserted[k] = true;
				T.inserts++;
			}
		} else {
			r = 0;
		}
		pthread_mutex_unlock(&T.lock);
		if (r) {
			tfail("debugger: %s", strerror(-r));
			break;
		}
		kick_all();
		/* Let the vCPUs run into what is armed now. */
		usleep(200 + rnd(2000));
	}
}

START_TEST(test_threads_insert_remove_while_running)
{
	struct kt_vm_opts o = {.nr_vcpus = NVCPU};
	const char *env = getenv("KVMDBG_THREADS_SECS");
	double secs = env ? strtod(env, NULL) : 3.0, t0, took;
	struct vstats sum = {0};

	kt_features_init();
	if (!kt_has(KVMDBG_FEAT_HW_BREAK)) {
		kt_not_exercised("thread stress", "hardware breakpoints not verified");
		return;
	}
	memset(&T.st, 0, sizeof(T.st));
	memset(T.nhist, 0, sizeof(T.nhist));
	memset(T.inserted, 0, sizeof(T.inserted));
	T.inserts = T.removes = T.remove_alls = 0;
	atomic_store(&T.seq, 1);
	atomic_store(&T.stop, false);
	atomic_store(&T.failed, false);
	T.err[0] = 0;
	pthread_mutex_init(&T.lock, NULL);

	kt_kick_setup();

	kt_vm_create(&T.vm, &o);
	T.addr[0] = kt_gva(&T.vm, g_loop_bp);
	T.addr[1] = kt_gva(&T.vm, g_loop_bp_end);
	T.addr[2] = kt_gva(&T.vm, g_loop_dec_end);
	T.addr[3] = kt_gva(&T.vm, g_loop_out_end);
	T.addr[4] = kt_gva(&T.vm, g_loop_out); /* skipped with g_loop_mark == 0 */
	kt_poke(&T.vm, g_loop_n, 0x7fffffff);
	kt_poke(&T.vm, g_loop_mark, 0);
	for (unsigned int i = 0; i < NVCPU; i++)
		kt_vcpu_start(&T.vm, i, g_loop);

	t0 = now();
	for (int i = 0; i < NVCPU; i++)
		ck_assert_int_eq(pthread_create(&T.tid[i], NULL, vcpu_thread, (void *)(intptr_t)i), 0);
	debugger(secs);
	atomic_store(&T.stop, true);
	kick_all();
	for (int i = 0; i < NVCPU; i++)
		pthread_join(T.tid[i], NULL);
	took = now() - t0;

	for (int i = 0; i < NVCPU; i++) {
		sum.runs += T.st[i].runs;
		sum.stops += T.st[i].stops;
		sum.nones += T.st[i].nones;
		sum.kicks += T.st[i].kicks;
		sum.iterations += T.st[i].iterations;
		printf("threads: vcpu%d: %lu KVM_RUNs, %lu stops (%lu %lu %lu %lu), %lu none, "
		       "%lu kicks, %lu loop iterations\n",
		       i, T.st[i].runs, T.st[i].stops, T.st[i].stops_at[0], T.st[i].stops_at[1],
		       T.st[i].stops_at[2], T.st[i].stops_at[3], T.st[i].nones, T.st[i].kicks,
		       T.st[i].iterations);
	}
	printf("threads: %.2f s, %d vCPU threads + debugger: %lu inserts, %lu removes, %lu "
	       "remove_alls; %lu KVM_RUNs, %lu stops, %lu none (stale or internal), %lu kicks, "
	       "%lu loop iterations\n",
	       took, NVCPU, T.inserts, T.removes, T.remove_alls, sum.runs, sum.stops, sum.nones,
	       sum.kicks, sum.iterations);
	fflush(stdout);
	ck_assert_msg(!atomic_load(&T.failed), "%s", T.err);
	ck_assert_int_eq(kvmdbg_vm_remove_all(T.vm.dbg), 0);
	kt_vm_destroy(&T.vm);
	pthread_mutex_destroy(&T.lock);
	ck_assert_uint_gt(sum.stops, 0);
	ck_assert_uint_gt(T.inserts, 10);
	/* Progress: every NONE is the step past a reported stop, or one stale
	 * hit per change at most; a vCPU spinning on stale hits makes none. */
	for (int i = 0; i < NVCPU; i++) {
		ck_assert_msg(T.st[i].nones <= T.st[i].stops + T.inserts + T.removes +
							   T.remove_alls + 1,
			      "vcpu%d: %lu NONE events for %lu stops and %lu changes: no progress", i,
			      T.st[i].nones, T.st[i].stops, T.inserts + T.removes + T.remove_alls);
		ck_assert_msg(T.st[i].iterations > 0, "vcpu%d ran no loop iteration", i);
	}
}
END_TEST

TEST_SUITE_KVM(threads)
{
	tests_set_timeout(tc, 120);
	add_test(tc, test_threads_insert_remove_while_running);
}
