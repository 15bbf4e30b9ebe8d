/* SPDX-License-Identifier: MIT */
/*
 * The lock-free exit paths (issue 17) under threads, without KVM: two vCPU
 * threads run prepare / exit / handle_exit against a fake x86 KVM whose
 * state is per vCPU (so the fake itself never races), while a debugger
 * thread inserts and removes hardware breakpoints, a watchpoint and
 * software breakpoints. What a vCPU reports is checked against stamps the
 * debugger takes before and after each library call, as tests/hardening/test-threads.c
 * does on real KVM (the check that catches a vCPU running a stale set
 * that its classifier also trusts):
 *  - no phantom stop: a BREAK or WATCH never names a point whose removal
 *    completed before that vCPU's prepare began and that nothing inserted
 *    again since;
 *  - every call succeeds (prepare may fence with -EAGAIN while the other
 *    vCPU steps over a software breakpoint it cannot cover);
 *  - a software breakpoint whose insert returned and whose removal has not
 *    begun is never missed by the table's lock-free filter
 *    (kvmdbg_swtab_may_have), while the debugger grows the table with a
 *    batch of others now and then (new filters, old ones retired) and
 *    empties it (filter cleared);
 *  - the TSan build (scripts/harden tsan) reports no race.
 * The exits are synthetic: a vCPU raises the hit of a slot it really runs
 * with (its own copy of what KVM holds), a #BP at a software breakpoint
 * candidate, or a single-step trap where it steps.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "kvmdbg-int.h"
#include "test-common.h"

#define NR_VCPUS 2
#define ITERS 5000      /* exits per vCPU at least ... */
#define MIN_CHANGES 1000 /* ... and until the debugger made this many calls */
#define NR_HW 6 /* candidates, for 4 slots */
#define NR_SW 3

static const uint64_t hw_addr[NR_HW] = {0x1000, 0x1010, 0x1020, 0x1030, 0x1040, 0x1050};
static const uint64_t sw_addr[NR_SW] = {0x2000, 0x2010, 0x2020};
#define WATCH_ADDR 0x3000u
#define NR_FILL 40          /* software breakpoints a batch adds to the one before */
#define MAX_FILL 1600
#define FILL_ADDR 0x800000u /* + 16 * k */
#define FILL_EVERY 64       /* debugger calls between batches */

/* ---- a fake x86 KVM, all state per vCPU fd ---- */

struct lf_vcpu {
	uint32_t ctl;
	struct kvmdbg_hwstate hw;
	struct kvmdbg_exit exit;
	uint64_t pc;
	unsigned int rf;
};

static struct lf_vcpu lf[NR_VCPUS];

static int lf_probe(void *ctx, int fd, struct kvmdbg_caps *c)
{
	size_t sz = c->sz;

	(void)ctx;
	(void)fd;
	memset(c, 0, sizeof(*c));
	c->sz = sz;
	c->arch = KVMDBG_ARCH_X86_64;
	c->guest_debug = c->single_step = c->sw_breakpoints = c->hw_debug = 1;
	c->hw_breakpoints = c->hw_watchpoints = 4;
	c->shared_slots = 1;
	c->block_irq = c->inject_db = c->inject_bp = 1;
	c->max_watch_len = 8;
	return 0;
}

static int lf_set_guest_debug(void *ctx, int fd, uint32_t ctl, const struct kvmdbg_hwstate *hw,
			      uint32_t on)
{
	(void)ctx;
	if (on != kvmdbg_hw_on(hw))
		abort(); /* from any thread: the slots the glue reads (fake-host.c) */
	lf[fd].ctl = ctl;
	lf[fd].hw = *hw;
	return 0;
}

static int lf_read_exit(void *ctx, int fd, const struct kvm_run *run, bool step_pc,
			struct kvmdbg_exit *ex)
{
	(void)ctx;
	(void)run;
	(void)step_pc;
	*ex = lf[fd].exit;
	return 0;
}

static int lf_get_pc(void *ctx, int fd, uint64_t *pc)
{
	(void)ctx;
	*pc = lf[fd].pc;
	return 0;
}

static int lf_set_rf(void *ctx, int fd)
{
	(void)ctx;
	lf[fd].rf++;
	return 0;
}

static int lf_inject(void *ctx, int fd, const struct kvmdbg_reinject *r, uint32_t *ctl)
{
	(void)ctx;
	(void)fd;
	*ctl = r->exception == 3 ? KVMDBG_CTL_INJECT_BP : KVMDBG_CTL_INJECT_DB;
	return 0;
}

static const struct kvmdbg_host_ops lf_host = {
	.arch = &kvmdbg_x86_ops,
	.probe = lf_probe,
	.set_guest_debug = lf_set_guest_debug,
	.read_exit = lf_read_exit,
	.get_pc = lf_get_pc,
	.set_resume_flag = lf_set_rf,
	.inject = lf_inject,
};

/* Guest memory: every byte a nop, writes vanish (no shared state). */
static int lf_mem_read(void *ctx, uint64_t gva, void *buf, size_t len)
{
	(void)ctx;
	(void)gva;
	memset(buf, 0x90, len);
	return 0;
}

static int lf_mem_write(void *ctx, uint64_t gva, const void *buf, size_t len)
{
	(void)ctx;
	(void)gva;
	(void)buf;
	(void)len;
	return 0;
}

static const struct kvmdbg_mem_ops lf_mem = {.read = lf_mem_read, .write = lf_mem_write};

/* ---- stamps ---- */

static atomic_ulong seq;                    /* advanced before and after each call */
static atomic_ulong ins_begin[NR_HW + NR_SW + 1], rem_end[NR_HW + NR_SW + 1];
static atomic_bool stop;
static atomic_uint phantoms, failures, reports, changes;
/* Per software breakpoint: odd while it is surely in the table (its insert
 * returned, its removal has not begun). */
static atomic_ulong sw_ver[NR_SW];
static atomic_uint misses, batches;

static int point_index(enum kvmdbg_type type, uint64_t addr)
{
	for (int i = 0; i < NR_HW; i++)
		if (type == KVMDBG_BREAK_HW && addr == hw_addr[i])
			return i;
	for (int i = 0; i < NR_SW; i++)
		if (type == KVMDBG_BREAK_SW && addr == sw_addr[i])
			return NR_HW + i;
	if (type == KVMDBG_WATCH_WRITE && addr == WATCH_ADDR)
		return NR_HW + NR_SW;
	return -1;
}

static struct kvmdbg_vm *vm;
static struct kvmdbg_vcpu *vcpus[NR_VCPUS];
static struct kvm_run runs[NR_VCPUS];

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Insert a batch of software breakpoints elsewhere, NR_FILL more each time
 * up to MAX_FILL (the table keeps growing: a new filter each time it does),
 * or remove them (with the three candidates out too, it empties). */
static void fill_batch(void)
{
	static bool filled;
	static unsigned int n;

	if (!filled)
		n = n + NR_FILL > MAX_FILL ? NR_FILL : n + NR_FILL;
	for (unsigned int k = 0; k < n; k++) {
		int r = filled ? kvmdbg_vm_remove(vm, KVMDBG_BREAK_SW, FILL_ADDR + 16 * k, 1)
			       : kvmdbg_vm_insert(vm, KVMDBG_BREAK_SW, FILL_ADDR + 16 * k, 1);

		if (r)
			atomic_fetch_add(&failures, 1);
	}
	filled = !filled;
	atomic_fetch_add(&batches, 1);
}

/* A software breakpoint surely in the table that the filter misses. */
static void check_filter(uint64_t *s)
{
	unsigned int i = (unsigned int)(rnd(s) % NR_SW);
	unsigned long ver = atomic_load(&sw_ver[i]);
	bool maybe;

	if (!(ver & 1))
		return;
	maybe = kvmdbg_swtab_may_have(&vm->sw, sw_addr[i]);
	if (!maybe && atomic_load(&sw_ver[i]) == ver)
		atomic_fetch_add(&misses, 1);
}

static void *debugger(void *arg)
{
	uint64_t s = 0x9e3779b97f4a7c15ull;
	bool *in = arg; /* what is inserted (the first four hardware ones at the start) */

	while (!atomic_load(&stop)) {
		int i = (int)(rnd(&s) % (NR_HW + NR_SW + 1));
		enum kvmdbg_type type = i < NR_HW ? KVMDBG_BREAK_HW
				       : i < NR_HW + NR_SW ? KVMDBG_BREAK_SW
							    : KVMDBG_WATCH_WRITE;
		uint64_t addr = i < NR_HW ? hw_addr[i] : i < NR_HW + NR_SW ? sw_addr[i - NR_HW]
									   : WATCH_ADDR;
		uint64_t len = type == KVMDBG_WATCH_WRITE ? 4 : 1;
		int r;

		if (atomic_load(&changes) % FILL_EVERY == FILL_EVERY - 1)
			fill_batch();
		if (!in[i]) {
			atomic_store(&ins_begin[i], atomic_fetch_add(&seq, 1) + 1);
			r = kvmdbg_vm_insert(vm, type, addr, len);
			atomic_fetch_add(&seq, 1);
			if (r == 0)
				in[i] = true;
			else if (r != -ENOSPC)
				atomic_fetch_add(&failures, 1);
			if (r == 0 && type == KVMDBG_BREAK_SW)
				atomic_fetch_add(&sw_ver[i - NR_HW], 1);
		} else {
			if (type == KVMDBG_BREAK_SW)
				atomic_fetch_add(&sw_ver[i - NR_HW], 1);
			atomic_fetch_add(&seq, 1);
			r = kvmdbg_vm_remove(vm, type, addr, len);
			atomic_store(&rem_end[i], atomic_fetch_add(&seq, 1) + 1);
			if (r)
				atomic_fetch_add(&failures, 1);
			in[i] = false;
		}
		atomic_fetch_add(&changes, 1);
		sched_yield();
	}
	return NULL;
}

/* A reported stop at (type, addr): was it there at some time since begin? */
static void check_report(const struct kvmdbg_event *ev, unsigned long begin)
{
	int i = point_index(ev->type, ev->addr);

	atomic_fetch_add(&reports, 1);
	if (i < 0) {
		atomic_fetch_add(&phantoms, 1);
		return;
	}
	/* Removed last, and before the prepare began: absent all along. */
	if (atomic_load(&rem_end[i]) > atomic_load(&ins_begin[i]) &&
	    atomic_load(&rem_end[i]) < begin)
		atomic_fetch_add(&phantoms, 1);
}

static void *vcpu_thread(void *arg)
{
	int n = (int)(intptr_t)arg;
	struct kvmdbg_vcpu *v = vcpus[n];
	uint64_t s = 0x2545f4914f6cdd1dull * (uint64_t)(n + 1);
	struct kvmdbg_event ev;

	for (int it = 0; it < ITERS || atomic_load(&changes) < MIN_CHANGES; it++) {
		unsigned long begin = atomic_load(&seq);
		uint64_t pc = 0x4000;
		int r = kvmdbg_vcpu_prepare(v);
		unsigned int pick;

		if (r == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (r) {
			atomic_fetch_add(&failures, 1);
			continue;
		}
		check_filter(&s);
		/* The exit, from what this vCPU runs with now. */
		pick = (unsigned int)(rnd(&s) % 4);
		if (kvmdbg_vcpu_is_stepping(v) == 1 && pick < 2) {
			lf[n].exit = (struct kvmdbg_exit){.exception = 1, .pc = lf[n].pc + 1,
							  .dr6 = 0xffff0ff0ull | 1ull << 14,
							  .dr7 = 0x400};
		} else if (pick == 2) {
			pc = sw_addr[rnd(&s) % NR_SW];
			lf[n].exit = (struct kvmdbg_exit){.exception = 3, .pc = pc,
							  .dr6 = 0xffff0ff0ull};
		} else {
			unsigned int slot = (unsigned int)(rnd(&s) % 4);
			const struct kvmdbg_hwslot *h = &lf[n].hw.slot[KVMDBG_POOL_BP][slot];

			if (h->ctrl)
				pc = h->start;
			lf[n].exit = (struct kvmdbg_exit){.exception = 1, .pc = pc,
							  .dr6 = 0xffff0ff0ull | 1ull << slot,
							  .dr7 = 0x400};
		}
		lf[n].pc = lf[n].exit.pc;
		runs[n].exit_reason = KVM_EXIT_DEBUG;
		r = kvmdbg_vcpu_handle_exit(v, &ev);
		if (r) {
			atomic_fetch_add(&failures, 1);
			continue;
		}
		if (ev.kind == KVMDBG_STOP_BREAK || ev.kind == KVMDBG_STOP_WATCH)
			check_report(&ev, begin);
		else if (ev.kind != KVMDBG_STOP_NONE && ev.kind != KVMDBG_STOP_STEP)
			atomic_fetch_add(&failures, 1);
	}
	return NULL;
}

START_TEST(test_lockfree_paths_under_threads)
{
	struct kvmdbg_vm_opts o = {.sz = sizeof(o),
				   .mem = &lf_mem,
				   .features = KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_RF_RESUME};
	static bool in[NR_HW + NR_SW + 1];
	pthread_t dbg, t[NR_VCPUS];

	memset(lf, 0, sizeof(lf));
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, &lf_host, NULL, &vm), 0);
	for (int i = 0; i < NR_VCPUS; i++)
		ck_assert_int_eq(kvmdbg_vcpu_new(vm, i, &runs[i], &vcpus[i]), 0);
	/* vCPU 0 single-steps, vCPU 1 runs. */
	ck_assert_int_eq(kvmdbg_vcpu_set_step(vcpus[0], 1), 0);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(kvmdbg_vm_insert(vm, KVMDBG_BREAK_HW, hw_addr[i], 1), 0);
		in[i] = true;
	}
	ck_assert_int_eq(pthread_create(&dbg, NULL, debugger, in), 0);
	for (int i = 0; i < NR_VCPUS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, vcpu_thread, (void *)(intptr_t)i), 0);
	for (int i = 0; i < NR_VCPUS; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	atomic_store(&stop, true);
	ck_assert_int_eq(pthread_join(dbg, NULL), 0);
	ck_assert_uint_eq(atomic_load(&failures), 0);
	ck_assert_uint_eq(atomic_load(&phantoms), 0);
	ck_assert_uint_eq(atomic_load(&misses), 0);
	ck_assert_uint_ge(atomic_load(&batches), MIN_CHANGES / FILL_EVERY);
	ck_assert_uint_gt(atomic_load(&reports), 0);
	ck_assert_uint_ge(atomic_load(&changes), MIN_CHANGES);
	for (int i = 0; i < NR_VCPUS; i++)
		kvmdbg_vcpu_free(vcpus[i]);
	ck_assert_int_eq(kvmdbg_vm_free(vm), 0);
}
END_TEST

/* The VM's lock (mutex.c): mutual exclusion under contention, and its
 * sleep and wake-up, taken for certain once. */
#define MX_THREADS 4
#define MX_ITERS 20000
static struct kvmdbg_mutex mx;
static long mx_count;  /* plain: only under mx */
static int mx_inside;  /* plain: only under mx */
static atomic_uint mx_overlaps;

static void *mx_worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < MX_ITERS; i++) {
		kvmdbg_mutex_lock(&mx);
		if (++mx_inside != 1)
			atomic_fetch_add(&mx_overlaps, 1);
		mx_count++;
		mx_inside--;
		kvmdbg_mutex_unlock(&mx);
	}
	return NULL;
}

static void *mx_waiter(void *arg)
{
	(void)arg;
	kvmdbg_mutex_lock(&mx);
	mx_count++;
	kvmdbg_mutex_unlock(&mx);
	return NULL;
}

START_TEST(test_vm_mutex)
{
	pthread_t t[MX_THREADS], w;

	kvmdbg_mutex_init(&mx);
	mx_count = 0;
	for (int i = 0; i < MX_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, mx_worker, NULL), 0);
	for (int i = 0; i < MX_THREADS; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_uint_eq(atomic_load(&mx_overlaps), 0);
	ck_assert_int_eq(mx_count, (long)MX_THREADS * MX_ITERS);
	ck_assert_uint_eq(atomic_load(&mx.word), 0); /* free */

	/* Held here: another locker marks the lock as waited for (2) and
	 * sleeps; the unlock wakes it, and it gets in. */
	kvmdbg_mutex_lock(&mx);
	ck_assert_int_eq(pthread_create(&w, NULL, mx_waiter, NULL), 0);
	for (int i = 0; atomic_load(&mx.word) != 2; i++) {
		ck_assert_int_lt(i, 100000); /* 10 s */
		usleep(100);
	}
	ck_assert_int_eq(mx_count, (long)MX_THREADS * MX_ITERS);
	kvmdbg_mutex_unlock(&mx);
	ck_assert_int_eq(pthread_join(w, NULL), 0);
	ck_assert_int_eq(mx_count, (long)MX_THREADS * MX_ITERS + 1);
	ck_assert_uint_eq(atomic_load(&mx.word), 0);
}
END_TEST

TEST_SUITE(lockfree)
{
	add_test(tc, test_lockfree_paths_under_threads);
	add_test(tc, test_vm_mutex);
}
