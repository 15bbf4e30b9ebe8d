/* SPDX-License-Identifier: MIT */
/*
 * bench-kvm: the library's cost per exit on real KVM, against a raw loop
 * that does the same guest work with hand-written ioctls in the same
 * process, measured in alternating rounds (medians of per-pair ratios).
 * x86-64 and arm64: the raw side's arch parts are in bench-kvm-<arch>.c
 * (bench-kvm.h), the guests in bench-guest.S and bench-guest-arm64.S.
 *
 *  1. single-step loop: prepare / KVM_RUN / handle_exit vs KVM_RUN and the
 *     reading of the stop (KVM_SET_GUEST_DEBUG once);
 *  2. hardware breakpoint hit and resume: the library's step-over vs the
 *     same dance by hand: by RFLAGS.RF (x86, where kvmdbg_probe_verified()
 *     proves it) and by disarm-step-rearm (the library told RF does not
 *     work, and on arm64); software breakpoints (INT3, BRK) and write
 *     watchpoints the same way, where the verified probe says they fire;
 *  3. ioctls per iteration besides KVM_RUN, the library's counted through
 *     its ioctl seam (kvmdbg_set_ioctl_hook; on for the count only), the raw
 *     side's by itself; and the KVM_SET_GUEST_DEBUGs per vCPU after a change.
 *
 * The micro-VMs come from the internal library (lib/microvm.h); the
 * measured path is the public API only.
 *
 * usage: bench-kvm                       everything above, @row lines
 *        bench-kvm --loop step|bp lib|raw N FEATURES
 *                                        only N iterations of one loop (for
 *                                        `strace -c -f`: bench/run runs it
 *                                        for two N and takes the difference)
 * Exit status: 0, 77 when /dev/kvm cannot be opened, 1 on an error. Never
 * on a missed target.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "bench-common.h"
#include "bench-kvm.h"
#include "kvmdbg-int.h"

#define MEM_SIZE (2ull << 20)

static uint64_t features;
static int block_irq;

void bench_die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "bench-kvm: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

#define die bench_die

/* ---- micro-VMs ---- */

static uint64_t gva(const struct side *s, const char *label)
{
	return s->m.code_gpa + (uint64_t)(label - bg_start);
}

/* The VMM's guest-memory callbacks: the library side's counterpart of the
 * raw side's memcpy in its loop, so in the loops' section too (a software
 * breakpoint's step-over writes through mem_write twice a hit). */
static BENCH_LOOP int mem_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct kvmdbg_microvm *m = ctx;

	if (addr > m->mem_size || len > m->mem_size - addr)
		return -EFAULT;
	memcpy(buf, m->mem + addr, len);
	return 0;
}

static BENCH_LOOP int mem_write(void *ctx, uint64_t addr, const void *buf, size_t len)
{
	struct kvmdbg_microvm *m = ctx;

	if (addr > m->mem_size || len > m->mem_size - addr)
		return -EFAULT;
	memcpy(m->mem + addr, buf, len);
	return 0;
}

static const struct kvmdbg_mem_ops identity_mem = {.read = mem_read, .write = mem_write};

/* feats: the verified features the library side is given (bench_bp() takes
 * RF_RESUME away to measure the disarm-step-rearm resume where RF works). */
static void side_new(struct side *s, int kvm_fd, unsigned int nr, const char *label, bool lib,
		     uint64_t feats)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->nr = nr;
	r = kvmdbg_microvm_create(&s->m, kvm_fd, nr, MEM_SIZE);
	if (r)
		die("micro-VM: %s", strerror(-r));
	r = kvmdbg_microvm_load(&s->m, s->m.code_gpa, bg_start, (size_t)(bg_end - bg_start));
	if (r)
		die("loading the guest: %s", strerror(-r));
	for (unsigned int i = 0; i < nr; i++) {
		r = kvmdbg_microvm_start(&s->m, i, gva(s, label), MEM_SIZE - 0x1000 * (i + 1));
		if (r)
			die("starting vCPU %u: %s", i, strerror(-r));
	}
	if (!lib)
		return;
	struct kvmdbg_vm_opts o = {
		.sz = sizeof(o), .mem = &identity_mem, .mem_ctx = &s->m, .features = feats};
	r = kvmdbg_vm_new(s->m.vm_fd, &o, &s->dbg);
	if (r)
		die("kvmdbg_vm_new: %s", strerror(-r));
	for (unsigned int i = 0; i < nr; i++) {
		r = kvmdbg_vcpu_new(s->dbg, s->m.vcpu_fd[i], s->m.run[i], &s->v[i]);
		if (r)
			die("kvmdbg_vcpu_new: %s", strerror(-r));
	}
}

static void side_free(struct side *s)
{
	for (unsigned int i = 0; i < s->nr; i++)
		kvmdbg_vcpu_free(s->v[i]);
	kvmdbg_vm_free(s->dbg);
	kvmdbg_microvm_destroy(&s->m);
}

static BENCH_LOOP void run_vcpu(struct side *s, unsigned int idx)
{
	while (ioctl(s->m.vcpu_fd[idx], KVM_RUN, 0) < 0)
		if (errno != EINTR && errno != EAGAIN)
			die("KVM_RUN: %s", strerror(errno));
}

static BENCH_LOOP void expect_debug(const struct side *s, unsigned int idx, const char *what)
{
	const struct kvm_run *run = s->m.run[idx];

	if (run->exit_reason != KVM_EXIT_DEBUG)
		die("%s: exit reason %u, not KVM_EXIT_DEBUG", what, run->exit_reason);
}

/*
 * Both sides run on the same vCPU of the same micro-VM, alternating every few
 * iterations (two VMs differ by several per cent on a shared host: memory
 * placement, shadow paging; and rounds far apart in time see different
 * load). No side needs to resynchronise KVM's state when the other ran
 * before it: the raw side writes exactly the struct kvm_guest_debug the
 * library composes in every state (check_same_state() proves it through
 * the library's ioctl seam before measuring), and between batches the vCPU
 * is always where both leave it: after a step, or stopped at the breakpoint
 * (or watchpoint) with the library's step-over armed.
 */
struct loop {
	struct side *s;
	uint64_t target;   /* the breakpoint's address, the watched variable's */
	bool stopped;      /* the vCPU is stopped at the breakpoint / watchpoint */
	bool rf;           /* the raw side resumes by the resume flag (x86 RF) */
	struct kvm_guest_debug armed, stepping; /* the raw side's two states */
	uint8_t orig[8];   /* the guest's bytes under a software breakpoint */
};

/* ---- the raw side: what a VMM author writes without the library ---- */

static unsigned long raw_ioctls; /* the raw side's ioctls besides KVM_RUN */

static BENCH_LOOP void raw_set(const struct side *s, const struct kvm_guest_debug *d)
{
	raw_ioctls++;
	if (ioctl(s->m.vcpu_fd[0], KVM_SET_GUEST_DEBUG, d) < 0)
		die("KVM_SET_GUEST_DEBUG: %s", strerror(errno));
}

/* The raw side's register ioctls (bench-kvm-<arch>.c), counted. */
BENCH_LOOP int bench_ioctl(int fd, unsigned long req, void *arg)
{
	raw_ioctls++;
	return ioctl(fd, req, arg);
}

/* One single-step as the library makes it: interrupts held off for the
 * step (x86: KVM_GUESTDBG_BLOCKIRQ in the state, nothing here; arm64, which
 * has no BLOCKIRQ: PSTATE.A, I, F masked around it, one PSTATE read when the
 * guest has them masked already), the stop read. */
static inline void raw_step_once(struct loop *l)
{
	uint64_t saved;

	bench_arch_step_irqs_begin(l->s, &saved);
	run_vcpu(l->s, 0);
	bench_arch_expect(l->s, EXIT_STEP_REPORT, 0);
	bench_arch_step_irqs_end(l->s, saved);
}

static BENCH_LOOP void raw_step_loop(struct loop *l, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		raw_step_once(l);
}

/*
 * A reference for the library's own time per exit: the raw step loop reading
 * one byte more from each of TOUCH_PAGES pages after every exit. The
 * difference to the plain raw loop, per page, is what a page touched again
 * after a KVM_RUN costs on this machine (under TCG: a refill of QEMU's
 * software TLB, which the world switch flushes; on hardware: next to
 * nothing). A data page stands for any page the library's code or data
 * spreads over.
 */
#define TOUCH_PAGES 32
static volatile uint8_t touch_buf[TOUCH_PAGES][4096] __attribute__((aligned(4096)));

static BENCH_LOOP void raw_step_touch_loop(struct loop *l, unsigned int n)
{
	unsigned int sum = 0;

	for (unsigned int i = 0; i < n; i++) {
		raw_step_once(l);
		for (unsigned int p = 0; p < TOUCH_PAGES; p++)
			sum += touch_buf[p][(i * 64) % 4096];
	}
	touch_buf[0][0] = (uint8_t)sum;
}

/* The other reference: SPIN_ITERS iterations of a 3-instruction loop after
 * every exit, on the stack and one code page. */
#define SPIN_ITERS 1000

static BENCH_LOOP void raw_step_spin_loop(struct loop *l, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		raw_step_once(l);
		bench_arch_spin(SPIN_ITERS);
	}
}

/* The third reference: CALL_FUNCS calls after every exit, each to its own
 * function that returns at once, all in one page of ordinary text (not the
 * loops' section: their code stays where it was). Under nested TCG a return,
 * and a call to another page, each look up the next translated block, in a
 * cache the world switch emptied; the library's calls and returns on an
 * exit, most into pages of its own, are priced by this. */
#define CALL_FUNCS 32
#define CALL_FN(n)                                                               \
	static __attribute__((noinline)) unsigned int call_fn##n(unsigned int x) \
	{                                                                        \
		__asm__ volatile("" : "+r"(x));                                  \
		return x + n;                                                    \
	}
/* clang-format off */
#define CALL_FN8(n) \
	CALL_FN(n##0) CALL_FN(n##1) CALL_FN(n##2) CALL_FN(n##3) \
	CALL_FN(n##4) CALL_FN(n##5) CALL_FN(n##6) CALL_FN(n##7)
/* clang-format on */
CALL_FN8(1)
CALL_FN8(2)
CALL_FN8(3)
CALL_FN8(4)
#define CALL_8(n, x)                                    \
	(x = call_fn##n##7(call_fn##n##6(call_fn##n##5( \
		 call_fn##n##4(call_fn##n##3(call_fn##n##2(call_fn##n##1(call_fn##n##0(x)))))))))

static volatile unsigned int call_sink;

static BENCH_LOOP void raw_step_call_loop(struct loop *l, unsigned int n)
{
	unsigned int x = 0;

	for (unsigned int i = 0; i < n; i++) {
		raw_step_once(l);
		CALL_8(1, x);
		CALL_8(2, x);
		CALL_8(3, x);
		CALL_8(4, x);
	}
	call_sink = x;
}

/* Resume past the stop at l->target by one step: interrupts masked (where
 * the state cannot say so), the point disarmed (a software breakpoint: the
 * guest's bytes back), one step, everything back. */
static BENCH_LOOP void raw_step_past(struct loop *l, bool sw)
{
	struct side *s = l->s;
	uint8_t *at = s->m.mem + l->target;
	uint64_t saved;

	bench_arch_step_irqs_begin(s, &saved);
	if (sw)
		memcpy(at, l->orig, bench_arch_bp_len);
	raw_set(s, &l->stepping);
	run_vcpu(s, 0);
	bench_arch_expect(s, EXIT_STEP_INNER, 0);
	if (sw)
		memcpy(at, bench_arch_sw_insn, bench_arch_bp_len);
	raw_set(s, &l->armed);
	bench_arch_step_irqs_end(s, saved);
}

/* n hits of the breakpoint, each first resumed past the previous one. */
static BENCH_LOOP void raw_bp_loop(struct loop *l, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (l->stopped && l->rf)
			bench_arch_resume_flag(l->s);
		else if (l->stopped)
			raw_step_past(l, false);
		run_vcpu(l->s, 0);
		bench_arch_expect(l->s, EXIT_HW, l->target);
		l->stopped = true;
	}
}

/* ---- the library side: the loop of kvmdbg.h ---- */

static BENCH_LOOP void lib_step_loop(struct loop *l, unsigned int n)
{
	struct side *s = l->s;
	struct kvmdbg_event ev;
	int r;

	for (unsigned int i = 0; i < n; i++) {
		r = kvmdbg_vcpu_prepare(s->v[0]);
		if (r)
			die("prepare: %s", strerror(-r));
		run_vcpu(s, 0);
		expect_debug(s, 0, "lib step");
		r = kvmdbg_vcpu_handle_exit(s->v[0], &ev);
		if (r || ev.kind != KVMDBG_STOP_STEP)
			die("lib step: handle_exit %d, kind %s", r, kvmdbg_stop_name(ev.kind));
	}
}

/* The library's own time inside the step loop: prepare and handle_exit,
 * each timed, less the clock's own cost; and a second prepare at once after
 * the first (same work, warm caches). Returns ns a step for each. */
static void lib_step_split(struct loop *l, unsigned int n, double *prep_ns, double *he_ns,
			   double *again_ns)
{
	struct side *s = l->s;
	struct kvmdbg_event ev;
	uint64_t t0, t1, t2, t3, t4, prep = 0, he = 0, again = 0;
	double clk[101];

	for (int i = 0; i < 101; i++) {
		t0 = bench_ns();
		clk[i] = (double)(bench_ns() - t0);
	}
	for (unsigned int i = 0; i < n; i++) {
		t0 = bench_ns();
		if (kvmdbg_vcpu_prepare(s->v[0]))
			die("prepare");
		t1 = bench_ns();
		if (kvmdbg_vcpu_prepare(s->v[0]))
			die("prepare");
		t4 = bench_ns();
		run_vcpu(s, 0);
		expect_debug(s, 0, "lib step");
		t2 = bench_ns();
		if (kvmdbg_vcpu_handle_exit(s->v[0], &ev) || ev.kind != KVMDBG_STOP_STEP)
			die("lib step: handle_exit");
		t3 = bench_ns();
		prep += t1 - t0;
		again += t4 - t1;
		he += t3 - t2;
	}
	*prep_ns = (double)prep / n - bench_median(clk, 101);
	*again_ns = (double)again / n - bench_median(clk, 101);
	*he_ns = (double)he / n - bench_median(clk, 101);
}

/* ---- software breakpoints and watchpoints (where the probe says they fire) ---- */

/* n hits of a software breakpoint at l->target, each first resumed past the
 * previous one: put the guest's bytes back, step, re-insert. */
static BENCH_LOOP void raw_sw_loop(struct loop *l, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (l->stopped)
			raw_step_past(l, true);
		run_vcpu(l->s, 0);
		bench_arch_expect(l->s, EXIT_SW, l->target);
		l->stopped = true;
	}
}

/* n hits of a write watchpoint: trap-like on x86 (nothing to step past),
 * before the access on arm64 (disarm, step, re-arm). */
static BENCH_LOOP void raw_watch_loop(struct loop *l, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (l->stopped && bench_arch_watch_faults)
			raw_step_past(l, false);
		run_vcpu(l->s, 0);
		bench_arch_expect(l->s, EXIT_WATCH, l->target);
		l->stopped = true;
	}
}

/* n reported stops of the expected kind through the library. */
static BENCH_LOOP void lib_hit_loop(struct loop *l, unsigned int n, enum kvmdbg_stop kind,
			 enum kvmdbg_type type)
{
	struct side *s = l->s;
	struct kvmdbg_event ev;
	unsigned int hits = 0, guard = 0;
	int r;

	while (hits < n) {
		if (++guard > 4 * n + 8)
			die("lib %s: more than 4 exits a hit", kvmdbg_type_name(type));
		r = kvmdbg_vcpu_prepare(s->v[0]);
		if (r)
			die("prepare: %s", strerror(-r));
		run_vcpu(s, 0);
		/* The point's name only to die with: a call of kvmdbg_type_name
		 * on every exit is another code page after each KVM_RUN, a
		 * cost of this loop's, not the library's (the raw loops name
		 * nothing). */
		if (s->m.run[0]->exit_reason != KVM_EXIT_DEBUG)
			expect_debug(s, 0, kvmdbg_type_name(type));
		r = kvmdbg_vcpu_handle_exit(s->v[0], &ev);
		if (r)
			die("handle_exit: %s", strerror(-r));
		if (ev.kind == kind && ev.type == type) {
			if (kind == KVMDBG_STOP_BREAK && ev.pc != l->target)
				die("lib %s: stop at %#" PRIx64, kvmdbg_type_name(type), ev.pc);
			hits++;
		} else if (ev.kind != KVMDBG_STOP_NONE) {
			die("lib %s: unexpected %s", kvmdbg_type_name(type),
			    kvmdbg_stop_name(ev.kind));
		}
	}
	l->stopped = true;
}

static BENCH_LOOP void lib_sw_loop(struct loop *l, unsigned int n)
{
	lib_hit_loop(l, n, KVMDBG_STOP_BREAK, KVMDBG_BREAK_SW);
}

static BENCH_LOOP void lib_watch_loop(struct loop *l, unsigned int n)
{
	lib_hit_loop(l, n, KVMDBG_STOP_WATCH, KVMDBG_WATCH_WRITE);
}

static BENCH_LOOP void lib_bp_loop(struct loop *l, unsigned int n)
{
	lib_hit_loop(l, n, KVMDBG_STOP_BREAK, KVMDBG_BREAK_HW);
}

/* ---- counting ioctls through the library's seam ---- */

#define NR_FDS 64
static unsigned long cnt_sgd[NR_FDS], cnt_other[NR_FDS];

/* The last KVM_SET_GUEST_DEBUG arguments the library passed. */
#define NR_LOGGED 8
static struct kvm_guest_debug logged[NR_LOGGED];
static unsigned int nr_logged;

static int counting_ioctl(int fd, unsigned long req, void *arg)
{
	int r;

	if (req == KVM_SET_GUEST_DEBUG)
		memcpy(&logged[nr_logged++ % NR_LOGGED], arg, sizeof(logged[0]));
	if (fd >= 0 && fd < NR_FDS) {
		if (req == KVM_SET_GUEST_DEBUG)
			cnt_sgd[fd]++;
		else
			cnt_other[fd]++;
	}
	r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

static void counts_reset(void)
{
	nr_logged = 0;
	memset(cnt_sgd, 0, sizeof(cnt_sgd));
	memset(cnt_other, 0, sizeof(cnt_other));
}

static unsigned long counts_total(void)
{
	unsigned long t = 0;

	for (int i = 0; i < NR_FDS; i++)
		t += cnt_sgd[i] + cnt_other[i];
	return t;
}

/* The library side's vCPU ioctls through fn (counting_ioctl), or, fn NULL,
 * straight to the kernel again as a VMM's go: the seam is on only while
 * counted (kvmdbg-int.h, KVMDBG_IOCTL_SEAM), never in a timed loop. */
static void seam(struct side *s, kvmdbg_ioctl_fn fn)
{
	if (fn && kvmdbg_vm_ioctl_seam(s->dbg, true))
		die("kvmdbg_vm_ioctl_seam");
	kvmdbg_set_ioctl_hook(fn);
	if (!fn && kvmdbg_vm_ioctl_seam(s->dbg, false))
		die("kvmdbg_vm_ioctl_seam");
}

/*
 * Every KVM_SET_GUEST_DEBUG the library makes while fn runs n iterations
 * must be bit for bit one of the raw side's states (so the two sides can
 * alternate on one vCPU without resynchronising); at least one must be seen
 * when expect_any.
 */
static void check_same_state(struct loop *l, void (*fn)(struct loop *, unsigned int),
			     unsigned int n, const struct kvm_guest_debug *raw, unsigned int nr_raw,
			     bool expect_any)
{
	unsigned int seen;

	counts_reset();
	seam(l->s, counting_ioctl);
	fn(l, n);
	seam(l->s, NULL);
	seen = nr_logged < NR_LOGGED ? nr_logged : NR_LOGGED;
	if (expect_any && !seen)
		die("the library applied no debug state");
	for (unsigned int i = 0; i < seen; i++) {
		bool match = false;

		for (unsigned int k = 0; k < nr_raw; k++)
			match |= !memcmp(&logged[i], &raw[k], sizeof(raw[k]));
		if (!match)
			die("the library's KVM_SET_GUEST_DEBUG (%s) is none of the raw side's "
			    "(the first: %s): the comparison would not be fair",
			    bench_fmt("%s", bench_arch_describe(&logged[i])),
			    bench_arch_describe(&raw[0]));
	}
}

/* ---- the benchmarks ---- */

#define BATCH_NS 60e3    /* a batch of iterations: about 60 us */
#define BUDGET_NS 1.5e9  /* per comparison */
#define MAX_PAIRS 20000

typedef void (*loop_fn)(struct loop *l, unsigned int n);

struct ab {
	unsigned int batch, pairs; /* iterations a batch, batch pairs */
	double a_ns, b_ns;         /* medians, ns an iteration */
	double ratio;              /* median of the per-pair ratios a time / b time */
};

/*
 * Batches of fa and fb alternate (the order flips every pair) for about
 * BUDGET_NS; ratio = median(a time / b time) over the pairs: for a = raw,
 * b = library, the library's throughput over raw's.
 */
static struct ab run_ab(struct loop *l, loop_fn fa, loop_fn fb, unsigned int warm)
{
	static double a[MAX_PAIRS], b[MAX_PAIRS], ratio[MAX_PAIRS];
	double per;
	struct ab r;
	uint64_t t, start;

	fb(l, warm);
	t = bench_ns();
	fa(l, warm);
	per = (double)(bench_ns() - t) / warm + 1;
	r.batch = BATCH_NS / per < 1 ? 1 : BATCH_NS / per > 64 ? 64 : (unsigned int)(BATCH_NS / per);

	start = bench_ns();
	for (r.pairs = 0; r.pairs < MAX_PAIRS && (r.pairs < 50 || bench_ns() - start < BUDGET_NS);
	     r.pairs++) {
		unsigned int i = r.pairs;

		for (int k = 0; k < 2; k++) {
			bool do_a = (k == 0) == (i % 2 == 0);

			t = bench_ns();
			(do_a ? fa : fb)(l, r.batch);
			t = bench_ns() - t;
			(do_a ? a : b)[i] = (double)t / r.batch;
		}
		ratio[i] = a[i] / b[i];
	}
	r.a_ns = bench_median(a, r.pairs);
	r.b_ns = bench_median(b, r.pairs);
	r.ratio = bench_median(ratio, r.pairs);
	return r;
}

static const char *verdict_ge(double v, double target)
{
	return v >= target ? "met" : "missed";
}

/* ioctls besides KVM_RUN per iteration of the library's and the raw side's
 * loop fn (n iterations each, after a few uncounted ones): *lib, *raw. */
static void count_per(struct loop *l, loop_fn lib_fn, loop_fn raw_fn, unsigned int n, double *lib,
		      double *raw)
{
	lib_fn(l, 10);
	counts_reset();
	seam(l->s, counting_ioctl);
	lib_fn(l, n);
	seam(l->s, NULL);
	*lib = (double)counts_total() / n;
	raw_fn(l, 10);
	raw_ioctls = 0;
	raw_fn(l, n);
	*raw = (double)raw_ioctls / n;
}

static void syscall_row(const char *what, double lib, double raw)
{
	printf("%s: ioctls besides KVM_RUN: library %.2f, raw %.2f\n", what, lib, raw);
	bench_row("3. syscalls", bench_fmt("ioctls besides KVM_RUN per %s (lib vs raw)", what),
		  bench_fmt("%.2f", lib), bench_fmt("%.2f", raw), bench_fmt("%+.2f", lib - raw),
		  "+0", lib - raw < 0.005 ? "met" : "missed");
}

static void bench_step(int kvm_fd)
{
	struct side s;
	struct loop l = {.s = &s};
	struct ab ab, aa;
	double lib, raw;
	int r;

	struct kvm_guest_debug raw_state;

	side_new(&s, kvm_fd, 1, bg_spin, true, features);
	r = kvmdbg_vcpu_set_step(s.v[0], 1);
	if (r)
		die("set_step: %s", strerror(-r));
	bench_arch_state(&raw_state, RAW_STEP, 0, block_irq);
	check_same_state(&l, lib_step_loop, 10, &raw_state, 1, true);

	aa = run_ab(&l, raw_step_loop, raw_step_loop, 200);
	ab = run_ab(&l, raw_step_loop, lib_step_loop, 200);
	printf("single-step: %u pairs of batches of %u steps: raw %.0f ns/step, "
	       "library %.0f ns/step; raw vs raw (noise floor) %.3f\n", ab.pairs, ab.batch,
	       ab.a_ns, ab.b_ns, aa.ratio);
	bench_row("1. single-step loop", "steps/s (lib / raw throughput)",
		  bench_fmt("%.0f", 1e9 / ab.b_ns), bench_fmt("%.0f", 1e9 / ab.a_ns),
		  bench_fmt("%.3f", ab.ratio), ">= 0.98", verdict_ge(ab.ratio, 0.98));
	bench_row("1. single-step loop", "noise floor: raw / raw, same scheme",
		  "-", "-", bench_fmt("%.3f", aa.ratio), "1", "-");
	{
		double prep, he, again;

		lib_step_split(&l, 5000, &prep, &he, &again);
		printf("single-step: the library's own time a step: prepare %.0f ns + handle_exit "
		       "%.0f ns (their ioctls included: arm64's PC read and the PSTATE read of the interrupt mask, which the raw side makes too; "
		       "the step itself: %.0f ns); the same prepare again at "
		       "once: %.0f ns\n", prep, he, ab.a_ns, again);
		bench_row("1. single-step loop", "library time a step inside the loop: prepare + "
			  "handle_exit (clock cost subtracted; in brackets: prepare again at once)",
			  bench_fmt("%.0f + %.0f ns (%.0f ns)", prep, he, again),
			  bench_fmt("%.0f ns a step", ab.a_ns),
			  bench_fmt("%.1f%%", 100 * (prep + he) / ab.a_ns), "-", "-");
	}

	{
		struct ab t = run_ab(&l, raw_step_loop, raw_step_touch_loop, 200);
		double per = (t.b_ns - t.a_ns) / TOUCH_PAGES;

		printf("single-step: reading one byte of %d more pages after each exit: %.0f ns "
		       "a step instead of %.0f (ratio %.3f): %.0f ns a page\n", TOUCH_PAGES,
		       t.b_ns, t.a_ns, t.ratio, per);
		bench_row("1. single-step loop", bench_fmt("reference: one more page touched after "
			  "each exit (raw loop reading %d more pages)", TOUCH_PAGES),
			  bench_fmt("%.0f ns a page", per), bench_fmt("%.0f ns a step", t.a_ns),
			  bench_fmt("%.1f%% a page", 100 * per / t.a_ns), "-", "-");
	}
	{
		struct ab t = run_ab(&l, raw_step_loop, raw_step_spin_loop, 200);
		double per = (t.b_ns - t.a_ns) / (3 * SPIN_ITERS);

		printf("single-step: %d more instructions after each exit: %.0f ns a step instead "
		       "of %.0f (ratio %.3f): %.2f ns an instruction\n", 3 * SPIN_ITERS, t.b_ns,
		       t.a_ns, t.ratio, per);
		bench_row("1. single-step loop", bench_fmt("reference: one more instruction after "
			  "each exit (raw loop running %d more)", 3 * SPIN_ITERS),
			  bench_fmt("%.2f ns an instruction", per), bench_fmt("%.0f ns a step", t.a_ns),
			  bench_fmt("%.3f%% an instruction", 100 * per / t.a_ns), "-", "-");
	}

	{
		struct ab t = run_ab(&l, raw_step_loop, raw_step_call_loop, 200);
		double per = (t.b_ns - t.a_ns) / CALL_FUNCS;

		printf("single-step: %d more calls after each exit: %.0f ns a step instead "
		       "of %.0f (ratio %.3f): %.2f ns a call\n",
		       CALL_FUNCS, t.b_ns, t.a_ns, t.ratio, per);
		bench_row("1. single-step loop",
			  bench_fmt("reference: one more call and return after "
				    "each exit (raw loop making %d more, to distinct functions)",
				    CALL_FUNCS),
			  bench_fmt("%.0f ns a call", per), bench_fmt("%.0f ns a step", t.a_ns),
			  bench_fmt("%.2f%% a call", 100 * per / t.a_ns), "-", "-");
	}

	/* 3. ioctls per step when nothing changes: the raw side reads what it
	 * reports (arm64: the PC). */
	count_per(&l, lib_step_loop, raw_step_loop, 1000, &lib, &raw);
	syscall_row("single-step, nothing changed", lib, raw);
	side_free(&s);
}

/* A hardware breakpoint hit and resumed, by the resume flag (rf) or by
 * disarm-step-rearm (the library told the host has no RF_RESUME). */
static void bench_bp(int kvm_fd, bool rf)
{
	struct side s;
	struct loop l = {.s = &s, .rf = rf};
	const char *how = rf ? "RFLAGS.RF" : "disarm-step-rearm";
	struct kvm_guest_debug raw_states[2];
	struct ab ab;
	double lib, raw;
	int r;

	side_new(&s, kvm_fd, 1, bg_bp, true, rf ? features : features & ~KVMDBG_FEAT_RF_RESUME);
	l.target = gva(&s, bg_bp_target);
	r = kvmdbg_vm_insert(s.dbg, KVMDBG_BREAK_HW, l.target, bench_arch_bp_len);
	if (r)
		die("insert: %s", strerror(-r));
	bench_arch_state(&l.armed, RAW_HW, l.target, block_irq);
	bench_arch_state(&l.stepping, RAW_STEP, l.target, block_irq);
	raw_states[0] = l.armed;
	raw_states[1] = l.stepping;
	check_same_state(&l, lib_bp_loop, 3, raw_states, rf ? 1 : 2, true);

	ab = run_ab(&l, raw_bp_loop, lib_bp_loop, 100);
	printf("hw breakpoint: %u pairs of batches of %u hits: raw %.0f ns/hit, "
	       "library %.0f ns/hit (resume by %s)\n", ab.pairs, ab.batch, ab.a_ns, ab.b_ns, how);
	bench_row("2. hw breakpoint hit + resume", bench_fmt("hits/s, resume by %s", how),
		  bench_fmt("%.0f", 1e9 / ab.b_ns), bench_fmt("%.0f", 1e9 / ab.a_ns),
		  bench_fmt("%.3f", ab.ratio), ">= 0.98", verdict_ge(ab.ratio, 0.98));

	count_per(&l, lib_bp_loop, raw_bp_loop, 200, &lib, &raw);
	syscall_row(bench_fmt("breakpoint hit, resume by %s", how), lib, raw);
	side_free(&s);
}

/*
 * Software breakpoints or write watchpoints: the same comparison as
 * bench_bp(). Only called where the verified probe says they fire.
 */
static void bench_sw_or_watch(int kvm_fd, bool sw)
{
	const char *section = sw ? "2. sw breakpoint hit + resume" : "2. watchpoint hit + resume";
	struct side s;
	struct loop l = {.s = &s};
	struct kvm_guest_debug raw_states[2];
	struct ab ab;
	double lib, raw;
	int r;

	side_new(&s, kvm_fd, 1, sw ? bg_bp : bg_watch, true, features);
	if (sw) {
		l.target = gva(&s, bg_bp_target);
		memcpy(l.orig, s.m.mem + l.target, bench_arch_bp_len);
		r = kvmdbg_vm_insert(s.dbg, KVMDBG_BREAK_SW, l.target, bench_arch_bp_len);
		bench_arch_state(&l.armed, RAW_SW, l.target, block_irq);
		bench_arch_state(&l.stepping, RAW_SW_STEP, l.target, block_irq);
	} else {
		l.target = gva(&s, bg_watch_var);
		r = kvmdbg_vm_insert(s.dbg, KVMDBG_WATCH_WRITE, l.target, 8);
		bench_arch_state(&l.armed, RAW_WATCH, l.target, block_irq);
		bench_arch_state(&l.stepping, RAW_STEP, l.target, block_irq);
	}
	if (r)
		die("insert: %s", strerror(-r));
	raw_states[0] = l.armed;
	raw_states[1] = l.stepping;
	check_same_state(&l, sw ? lib_sw_loop : lib_watch_loop, 3, raw_states,
			 sw || bench_arch_watch_faults ? 2 : 1, true);
	/* Stopped at it: the library's instruction is in place, and must be the
	 * raw side's (the library tells its own from the guest's). */
	if (sw && memcmp(s.m.mem + l.target, bench_arch_sw_insn, bench_arch_bp_len))
		die("the library's software breakpoint instruction is not the raw side's");

	ab = run_ab(&l, sw ? raw_sw_loop : raw_watch_loop, sw ? lib_sw_loop : lib_watch_loop, 100);
	printf("%s: %u pairs of batches of %u hits: raw %.0f ns/hit, library %.0f ns/hit\n",
	       sw ? "sw breakpoint" : "watchpoint", ab.pairs, ab.batch, ab.a_ns, ab.b_ns);
	bench_row(section, sw ? "hits/s, resume by restore-step-reinsert" :
		  bench_arch_watch_faults ? "hits/s (before the access: resume by "
		  "disarm-step-rearm)" : "hits/s (trap-like: no step-over)",
		  bench_fmt("%.0f", 1e9 / ab.b_ns), bench_fmt("%.0f", 1e9 / ab.a_ns),
		  bench_fmt("%.3f", ab.ratio), ">= 0.98", verdict_ge(ab.ratio, 0.98));

	count_per(&l, sw ? lib_sw_loop : lib_watch_loop, sw ? raw_sw_loop : raw_watch_loop, 200,
		  &lib, &raw);
	syscall_row(sw ? "sw breakpoint hit" : "watchpoint hit", lib, raw);
	side_free(&s);
}

/* Exactly one KVM_SET_GUEST_DEBUG per vCPU after a change, none before. */
static void bench_change(int kvm_fd)
{
	struct side s;
	struct kvmdbg_event ev;
	unsigned long per_vcpu[2], other[4] = {0}, idle_sgd = 0, idle_other = 0;
	bool ok = true;
	uint64_t far;
	const char *what[] = {"insert hw-break", "insert sw-break", "remove hw-break",
			      "remove sw-break"};
	int r;

	side_new(&s, kvm_fd, 2, bg_spin, true, features);
	far = gva(&s, bg_end) + 0x100; /* never executed */
	for (unsigned int i = 0; i < 2; i++)
		if (kvmdbg_vcpu_set_step(s.v[i], 1))
			die("set_step");
	seam(&s, counting_ioctl);
	for (int change = -1; change < 4; change++) {
		switch (change) {
		case 0: r = kvmdbg_vm_insert(s.dbg, KVMDBG_BREAK_HW, far, bench_arch_bp_len); break;
		case 1: r = kvmdbg_vm_insert(s.dbg, KVMDBG_BREAK_SW, far + 0x40, bench_arch_bp_len); break;
		case 2: r = kvmdbg_vm_remove(s.dbg, KVMDBG_BREAK_HW, far, bench_arch_bp_len); break;
		case 3: r = kvmdbg_vm_remove(s.dbg, KVMDBG_BREAK_SW, far + 0x40, bench_arch_bp_len); break;
		default: r = 0;
		}
		if (r)
			die("%s: %s", what[change], strerror(-r));
		counts_reset();
		for (int it = 0; it < 50; it++)
			for (unsigned int i = 0; i < 2; i++) {
				if ((r = kvmdbg_vcpu_prepare(s.v[i])))
					die("prepare: %s", strerror(-r));
				run_vcpu(&s, i);
				expect_debug(&s, i, "change");
				if ((r = kvmdbg_vcpu_handle_exit(s.v[i], &ev)) ||
				    ev.kind != KVMDBG_STOP_STEP)
					die("change: handle_exit %d kind %s", r,
					    kvmdbg_stop_name(ev.kind));
			}
		if (change < 0) {
			/* The very first prepare of each vCPU applies; nothing else. */
			continue;
		}
		for (unsigned int i = 0; i < 2; i++) {
			per_vcpu[i] = cnt_sgd[s.m.vcpu_fd[i]];
			other[change] += cnt_other[s.m.vcpu_fd[i]];
			if (per_vcpu[i] != 1)
				ok = false;
		}
		printf("after %s: KVM_SET_GUEST_DEBUG per vCPU over 50 runs each: %lu, %lu\n",
		       what[change], per_vcpu[0], per_vcpu[1]);
	}
	/* And none at all once the set is stable again; the other ioctls
	 * (those of every exit: the arm64 PC) are the same with or without a
	 * change. */
	counts_reset();
	for (int it = 0; it < 50; it++)
		for (unsigned int i = 0; i < 2; i++) {
			kvmdbg_vcpu_prepare(s.v[i]);
			run_vcpu(&s, i);
			kvmdbg_vcpu_handle_exit(s.v[i], &ev);
		}
	for (unsigned int i = 0; i < 2; i++) {
		idle_sgd += cnt_sgd[s.m.vcpu_fd[i]];
		idle_other += cnt_other[s.m.vcpu_fd[i]];
	}
	seam(&s, NULL);
	ok &= !idle_sgd && counts_total() == idle_sgd + idle_other;
	for (int c = 0; c < 4; c++)
		ok &= other[c] == idle_other;
	bench_row("3. syscalls",
		  "KVM_SET_GUEST_DEBUG per vCPU after a change (2 vCPUs, 4 changes, 50 runs each)",
		  ok ? "1" : bench_fmt("%lu/%lu, other ioctls %lu/%lu/%lu/%lu vs %lu idle, %lu idle",
				      per_vcpu[0], per_vcpu[1], other[0], other[1], other[2],
				      other[3], idle_other, idle_sgd),
		  "1", "-", "exactly 1", ok ? "met" : "missed");
	side_free(&s);
}

/* One loop only, for strace. */
static int loop_only(int kvm_fd, const char *loop, const char *who, unsigned int n)
{
	struct side s;
	struct loop l = {.s = &s};
	bool lib = !strcmp(who, "lib");
	bool bp = !strcmp(loop, "bp");

	if ((!bp && strcmp(loop, "step")) || (!lib && strcmp(who, "raw")))
		die("--loop step|bp lib|raw N FEATURES");
	side_new(&s, kvm_fd, 1, bp ? bg_bp : bg_spin, lib, features);
	if (bp) {
		l.target = gva(&s, bg_bp_target);
		if (lib) {
			if (kvmdbg_vm_insert(s.dbg, KVMDBG_BREAK_HW, l.target, bench_arch_bp_len))
				die("insert");
			lib_bp_loop(&l, n);
		} else {
			l.rf = bench_arch_has_rf && (features & KVMDBG_FEAT_RF_RESUME);
			bench_arch_state(&l.armed, RAW_HW, l.target, block_irq);
			bench_arch_state(&l.stepping, RAW_STEP, l.target, block_irq);
			raw_set(&s, &l.armed);
			raw_bp_loop(&l, n);
		}
	} else if (lib) {
		if (kvmdbg_vcpu_set_step(s.v[0], 1))
			die("set_step");
		lib_step_loop(&l, n);
	} else {
		bench_arch_state(&l.stepping, RAW_STEP, 0, block_irq);
		raw_set(&s, &l.stepping);
		raw_step_loop(&l, n);
	}
	side_free(&s);
	return 0;
}

int main(int argc, char **argv)
{
	struct kvmdbg_caps caps = {.sz = sizeof(caps)};
	int kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (kvm_fd < 0) {
		bench_note("1-3. KVM", "not measured here (/dev/kvm: %s)", strerror(errno));
		return 77;
	}
	r = kvmdbg_probe(kvm_fd, &caps);
	if (r)
		die("kvmdbg_probe: %s", strerror(-r));
	block_irq = caps.block_irq;

	if (argc == 6 && !strcmp(argv[1], "--loop")) {
		features = strtoull(argv[5], NULL, 0);
		return loop_only(kvm_fd, argv[2], argv[3], (unsigned int)strtoul(argv[4], NULL, 0));
	}
	if (argc != 1)
		die("usage: bench-kvm [--loop step|bp lib|raw N FEATURES]");

	r = kvmdbg_probe_verified(kvm_fd, &features);
	if (r)
		die("kvmdbg_probe_verified: %s", strerror(-r));
	printf("arch: %s\nverified features: %#" PRIx64 " =", bench_arch_name, features);
	for (int b = 0; b < 63; b++)
		if (features & (1ull << b) && kvmdbg_feature_name(1ull << b))
			printf(" %s", kvmdbg_feature_name(1ull << b));
	printf("\n@features\t%#" PRIx64 "\n", features);

	if (!(features & KVMDBG_FEAT_STEP))
		bench_note("1. single-step loop", "not measured here: single-step does not "
			   "deliver its exit on this host (verified probe)");
	else
		bench_step(kvm_fd);
	if (!(features & KVMDBG_FEAT_HW_BREAK))
		bench_note("2. hw breakpoint hit + resume", "not measured here: hardware "
			   "breakpoints do not fire on this host (verified probe)");
	else {
		/* The library resumes by RF where it is proven, else by
		 * disarm-step-rearm: both, where both can be had. */
		if (bench_arch_has_rf && (features & KVMDBG_FEAT_RF_RESUME))
			bench_bp(kvm_fd, true);
		bench_bp(kvm_fd, false);
	}
	if (features & KVMDBG_FEAT_STEP)
		bench_change(kvm_fd);
	if (!(features & KVMDBG_FEAT_SW_BREAK))
		bench_note("2. sw breakpoint hit + resume", "not measured here: a software "
			   "breakpoint does not exit as a debug exit on this host (verified "
			   "probe: sw_break missing%s)", access("/sys/module/kvm_pvm", F_OK) ? "" :
			   "; kvm_pvm turns the guest's INT3 into KVM_EXIT_INTERNAL_ERROR");
	else
		bench_sw_or_watch(kvm_fd, true);
	if (!(features & KVMDBG_FEAT_WATCH_WRITE))
		bench_note("2. watchpoint hit + resume", "not measured here: write watchpoints "
			   "never fire on this host (verified probe: watch_write missing)");
	else
		bench_sw_or_watch(kvm_fd, false);
	close(kvm_fd);
	return 0;
}
