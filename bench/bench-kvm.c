/* SPDX-License-Identifier: MIT */
/*
 * bench-kvm: the library's cost per exit on real KVM, against a raw loop
 * that does the same guest work with hand-written ioctls in the same
 * process, measured in alternating rounds (medians of per-pair ratios).
 *
 *  1. single-step loop: prepare / KVM_RUN / handle_exit vs KVM_RUN alone
 *     (KVM_SET_GUEST_DEBUG once);
 *  2. hardware breakpoint hit and resume: the library's step-over vs the
 *     same dance by hand, chosen from kvmdbg_probe_verified() exactly as the
 *     library chooses (RFLAGS.RF where proven, else disarm-step-rearm);
 *  3. ioctls the library adds per KVM_RUN, counted through the library's
 *     ioctl seam (kvmdbg_set_ioctl_hook), and the KVM_SET_GUEST_DEBUGs per
 *     vCPU after a change.
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

#include "arch/x86/regs.h"
#include "bench-common.h"
#include "kvmdbg-int.h"
#include "microvm.h"

extern const char bg_start[], bg_end[], bg_spin[], bg_bp[], bg_bp_target[], bg_watch[],
	bg_watch_var[];

#define MEM_SIZE (2ull << 20)
#define X86_INT3 0xcc

static uint64_t features;
static int block_irq;

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
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

/* ---- micro-VMs ---- */

struct side {
	struct kvmdbg_microvm m;
	struct kvmdbg_vm *dbg; /* NULL on the raw side */
	struct kvmdbg_vcpu *v[2];
	unsigned int nr;
};

static uint64_t gva(const struct side *s, const char *label)
{
	return s->m.code_gpa + (uint64_t)(label - bg_start);
}

static int mem_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct kvmdbg_microvm *m = ctx;

	if (addr > m->mem_size || len > m->mem_size - addr)
		return -EFAULT;
	memcpy(buf, m->mem + addr, len);
	return 0;
}

static int mem_write(void *ctx, uint64_t addr, const void *buf, size_t len)
{
	struct kvmdbg_microvm *m = ctx;

	if (addr > m->mem_size || len > m->mem_size - addr)
		return -EFAULT;
	memcpy(m->mem + addr, buf, len);
	return 0;
}

static const struct kvmdbg_mem_ops identity_mem = {.read = mem_read, .write = mem_write};

static void side_new(struct side *s, int kvm_fd, unsigned int nr, const char *label, bool lib)
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
		.sz = sizeof(o), .mem = &identity_mem, .mem_ctx = &s->m, .features = features};
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

static void run_vcpu(struct side *s, unsigned int idx)
{
	while (ioctl(s->m.vcpu_fd[idx], KVM_RUN, 0) < 0)
		if (errno != EINTR && errno != EAGAIN)
			die("KVM_RUN: %s", strerror(errno));
}

static void expect_debug(const struct side *s, unsigned int idx, const char *what)
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
 * with the library's step-over armed.
 */
struct loop {
	struct side *s;
	uint64_t target;   /* breakpoint loop: the breakpoint's address */
	bool stopped;      /* the vCPU is stopped at the breakpoint */
};

/* ---- the raw side: what a VMM author writes without the library ---- */

static void raw_debug_state(struct kvm_guest_debug *dp, bool armed, bool step, uint64_t target)
{
	struct kvm_guest_debug d;

	memset(&d, 0, sizeof(d));
	d.control = KVM_GUESTDBG_ENABLE;
	d.arch.debugreg[7] = DR7_FIXED_1;
	if (armed) {
		d.control |= KVM_GUESTDBG_USE_HW_BP;
		d.arch.debugreg[0] = target;
		d.arch.debugreg[7] |= DR7_G(0); /* execute, length 1 */
	}
	if (step) {
		d.control |= KVM_GUESTDBG_SINGLESTEP;
		if (block_irq)
			d.control |= KVM_GUESTDBG_BLOCKIRQ;
	}
	*dp = d;
}

static void raw_set_debug(const struct side *s, unsigned int idx, bool armed, bool step,
			  uint64_t target)
{
	struct kvm_guest_debug d;

	raw_debug_state(&d, armed, step, target);
	if (ioctl(s->m.vcpu_fd[idx], KVM_SET_GUEST_DEBUG, &d) < 0)
		die("KVM_SET_GUEST_DEBUG: %s", strerror(errno));
}

static void raw_step_loop(struct loop *l, unsigned int n)
{
	const struct kvm_run *run = l->s->m.run[0];

	for (unsigned int i = 0; i < n; i++) {
		run_vcpu(l->s, 0);
		if (run->exit_reason != KVM_EXIT_DEBUG || !(run->debug.arch.dr6 & DR6_BS))
			die("raw step: exit %u dr6 %#llx", run->exit_reason,
			    (unsigned long long)run->debug.arch.dr6);
	}
}

/* n hits of the breakpoint, each first resumed past the previous one. */
static void raw_bp_loop(struct loop *l, unsigned int n)
{
	struct side *s = l->s;
	const struct kvm_run *run = s->m.run[0];
	int fd = s->m.vcpu_fd[0];

	for (unsigned int i = 0; i < n; i++) {
		if (l->stopped && (features & KVMDBG_FEAT_RF_RESUME)) {
			struct kvm_regs regs;

			if (ioctl(fd, KVM_GET_REGS, &regs) < 0)
				die("KVM_GET_REGS: %s", strerror(errno));
			regs.rflags |= RFLAGS_RF;
			if (ioctl(fd, KVM_SET_REGS, &regs) < 0)
				die("KVM_SET_REGS: %s", strerror(errno));
		} else if (l->stopped) {
			/* Disarm, step one instruction, re-arm. */
			raw_set_debug(s, 0, false, true, l->target);
			run_vcpu(s, 0);
			if (run->exit_reason != KVM_EXIT_DEBUG || !(run->debug.arch.dr6 & DR6_BS))
				die("raw bp step: exit %u", run->exit_reason);
			raw_set_debug(s, 0, true, false, l->target);
		}
		run_vcpu(s, 0);
		if (run->exit_reason != KVM_EXIT_DEBUG || !(run->debug.arch.dr6 & DR6_B(0)) ||
		    run->debug.arch.pc != l->target)
			die("raw bp: exit %u dr6 %#llx pc %#llx", run->exit_reason,
			    (unsigned long long)run->debug.arch.dr6,
			    (unsigned long long)run->debug.arch.pc);
		l->stopped = true;
	}
}

/* ---- the library side: the loop of kvmdbg.h ---- */

static void lib_step_loop(struct loop *l, unsigned int n)
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

/* KVM state of the raw side: software breakpoints, with or without a step. */
static void raw_sw_state(struct kvm_guest_debug *d, bool step)
{
	memset(d, 0, sizeof(*d));
	d->control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP;
	d->arch.debugreg[7] = DR7_FIXED_1;
	if (step) {
		d->control |= KVM_GUESTDBG_SINGLESTEP;
		if (block_irq)
			d->control |= KVM_GUESTDBG_BLOCKIRQ;
	}
}

/* A write watchpoint on 8 bytes at addr in slot 0. */
static void raw_watch_state(struct kvm_guest_debug *d, uint64_t addr)
{
	memset(d, 0, sizeof(*d));
	d->control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
	d->arch.debugreg[0] = addr;
	d->arch.debugreg[7] = DR7_FIXED_1 | DR7_G(0) | DR7_RW_LEN(0, X86_RW_WRITE, X86_LEN_8) | DR7_GE;
}

static void raw_set(const struct side *s, const struct kvm_guest_debug *d)
{
	if (ioctl(s->m.vcpu_fd[0], KVM_SET_GUEST_DEBUG, d) < 0)
		die("KVM_SET_GUEST_DEBUG: %s", strerror(errno));
}

/* The guest byte under a software breakpoint (a nop, see bench-guest.S). */
static uint8_t sw_orig;

/* n hits of a software breakpoint at l->target, each first resumed past the
 * previous one: put the byte back, step with interrupts blocked, re-insert. */
static void raw_sw_loop(struct loop *l, unsigned int n)
{
	struct side *s = l->s;
	const struct kvm_run *run = s->m.run[0];
	uint8_t *byte = s->m.mem + l->target;
	struct kvm_guest_debug armed, stepping;

	raw_sw_state(&armed, false);
	raw_sw_state(&stepping, true);
	for (unsigned int i = 0; i < n; i++) {
		if (l->stopped) {
			*byte = sw_orig;
			raw_set(s, &stepping);
			run_vcpu(s, 0);
			if (run->exit_reason != KVM_EXIT_DEBUG || !(run->debug.arch.dr6 & DR6_BS))
				die("raw sw step: exit %u", run->exit_reason);
			*byte = X86_INT3;
			raw_set(s, &armed);
		}
		run_vcpu(s, 0);
		if (run->exit_reason != KVM_EXIT_DEBUG || run->debug.arch.exception != 3 ||
		    run->debug.arch.pc != l->target)
			die("raw sw: exit %u exception %u pc %#llx", run->exit_reason,
			    run->debug.arch.exception, (unsigned long long)run->debug.arch.pc);
		l->stopped = true;
	}
}

/* n hits of a write watchpoint: trap-like on x86, nothing to step past. */
static void raw_watch_loop(struct loop *l, unsigned int n)
{
	struct side *s = l->s;
	const struct kvm_run *run = s->m.run[0];

	for (unsigned int i = 0; i < n; i++) {
		run_vcpu(s, 0);
		if (run->exit_reason != KVM_EXIT_DEBUG || !(run->debug.arch.dr6 & DR6_B(0)))
			die("raw watch: exit %u dr6 %#llx", run->exit_reason,
			    (unsigned long long)run->debug.arch.dr6);
	}
}

/* n reported stops of the expected kind through the library. */
static void lib_hit_loop(struct loop *l, unsigned int n, enum kvmdbg_stop kind,
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

static void lib_sw_loop(struct loop *l, unsigned int n)
{
	lib_hit_loop(l, n, KVMDBG_STOP_BREAK, KVMDBG_BREAK_SW);
}

static void lib_watch_loop(struct loop *l, unsigned int n)
{
	lib_hit_loop(l, n, KVMDBG_STOP_WATCH, KVMDBG_WATCH_WRITE);
}

static void lib_bp_loop(struct loop *l, unsigned int n)
{
	struct side *s = l->s;
	struct kvmdbg_event ev;
	unsigned int hits = 0, guard = 0;
	int r;

	while (hits < n) {
		if (++guard > 4 * n + 8)
			die("lib bp: more than 4 exits a hit");
		r = kvmdbg_vcpu_prepare(s->v[0]);
		if (r)
			die("prepare: %s", strerror(-r));
		run_vcpu(s, 0);
		expect_debug(s, 0, "lib bp");
		r = kvmdbg_vcpu_handle_exit(s->v[0], &ev);
		if (r)
			die("handle_exit: %s", strerror(-r));
		if (ev.kind == KVMDBG_STOP_BREAK) {
			if (ev.pc != l->target)
				die("lib bp: break at %#" PRIx64, ev.pc);
			hits++;
		} else if (ev.kind != KVMDBG_STOP_NONE) {
			die("lib bp: unexpected %s", kvmdbg_stop_name(ev.kind));
		}
	}
	l->stopped = true;
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
	kvmdbg_set_ioctl_hook(counting_ioctl);
	fn(l, n);
	kvmdbg_set_ioctl_hook(NULL);
	seen = nr_logged < NR_LOGGED ? nr_logged : NR_LOGGED;
	if (expect_any && !seen)
		die("the library applied no debug state");
	for (unsigned int i = 0; i < seen; i++) {
		bool match = false;

		for (unsigned int k = 0; k < nr_raw; k++)
			match |= !memcmp(&logged[i], &raw[k], sizeof(raw[k]));
		if (!match)
			die("the library's KVM_SET_GUEST_DEBUG (control %#x, dr7 %#llx) is none of "
			    "the raw side's: the comparison would not be fair", logged[i].control,
			    (unsigned long long)logged[i].arch.debugreg[7]);
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

static void bench_step(int kvm_fd)
{
	struct side s;
	struct loop l = {.s = &s};
	struct ab ab, aa;
	int r;

	struct kvm_guest_debug raw_state;

	side_new(&s, kvm_fd, 1, bg_spin, true);
	r = kvmdbg_vcpu_set_step(s.v[0], 1);
	if (r)
		die("set_step: %s", strerror(-r));
	raw_debug_state(&raw_state, false, true, 0);
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
		       "%.0f ns (raw side: 0; the step itself: %.0f ns); the same prepare again at "
		       "once: %.0f ns\n", prep, he, ab.a_ns, again);
		bench_row("1. single-step loop", "library time a step inside the loop: prepare + "
			  "handle_exit (clock cost subtracted; in brackets: prepare again at once)",
			  bench_fmt("%.0f + %.0f ns (%.0f ns)", prep, he, again),
			  bench_fmt("%.0f ns a step", ab.a_ns),
			  bench_fmt("%.1f%%", 100 * (prep + he) / ab.a_ns), "-", "-");
	}

	/* 3. ioctls the library adds per KVM_RUN when nothing changes. */
	lib_step_loop(&l, 10);
	counts_reset();
	kvmdbg_set_ioctl_hook(counting_ioctl);
	lib_step_loop(&l, 1000);
	kvmdbg_set_ioctl_hook(NULL);
	printf("single-step: library ioctls in 1000 steps (nothing changed): %lu\n",
	       counts_total());
	bench_row("3. syscalls", "ioctls the library adds per KVM_RUN, nothing changed (step loop)",
		  bench_fmt("%.3f", counts_total() / 1000.0), "0", "-", "0",
		  counts_total() == 0 ? "met" : "missed");
	side_free(&s);
}

static void bench_bp(int kvm_fd)
{
	struct side s;
	struct loop l = {.s = &s};
	const char *how = (features & KVMDBG_FEAT_RF_RESUME) ? "RFLAGS.RF" : "disarm-step-rearm";
	struct kvm_guest_debug raw_states[2];
	struct ab ab;
	double per;
	int r;

	side_new(&s, kvm_fd, 1, bg_bp, true);
	l.target = gva(&s, bg_bp_target);
	r = kvmdbg_vm_insert(s.dbg, KVMDBG_BREAK_HW, l.target, 1);
	if (r)
		die("insert: %s", strerror(-r));
	raw_debug_state(&raw_states[0], true, false, l.target);
	raw_debug_state(&raw_states[1], false, true, l.target);
	check_same_state(&l, lib_bp_loop, 3, raw_states, 2, true);

	ab = run_ab(&l, raw_bp_loop, lib_bp_loop, 100);
	printf("hw breakpoint: %u pairs of batches of %u hits: raw %.0f ns/hit, "
	       "library %.0f ns/hit (resume by %s)\n", ab.pairs, ab.batch, ab.a_ns, ab.b_ns, how);
	bench_row("2. hw breakpoint hit + resume", bench_fmt("hits/s, resume by %s", how),
		  bench_fmt("%.0f", 1e9 / ab.b_ns), bench_fmt("%.0f", 1e9 / ab.a_ns),
		  bench_fmt("%.3f", ab.ratio), ">= 0.98", verdict_ge(ab.ratio, 0.98));

	/* The library's ioctls per hit against the raw dance's two (disarm +
	 * re-arm, or KVM_GET_REGS + KVM_SET_REGS for RF). */
	lib_bp_loop(&l, 10);
	counts_reset();
	kvmdbg_set_ioctl_hook(counting_ioctl);
	lib_bp_loop(&l, 200);
	kvmdbg_set_ioctl_hook(NULL);
	per = counts_total() / 200.0;
	printf("hw breakpoint: library ioctls per hit besides KVM_RUN %.2f (raw dance: 2), "
	       "KVM_RUNs per hit: %d on both sides\n", per,
	       (features & KVMDBG_FEAT_RF_RESUME) ? 1 : 2);
	bench_row("3. syscalls", "ioctls per breakpoint hit besides KVM_RUN (lib vs raw dance)",
		  bench_fmt("%.2f", per), "2", bench_fmt("%+.2f", per - 2), "+0",
		  per - 2 < 0.005 ? "met" : "missed");
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
	double raw_per = sw ? 2 : 0, per;
	struct ab ab;
	int r;

	side_new(&s, kvm_fd, 1, sw ? bg_bp : bg_watch, true);
	if (sw) {
		l.target = gva(&s, bg_bp_target);
		sw_orig = s.m.mem[l.target];
		r = kvmdbg_vm_insert(s.dbg, KVMDBG_BREAK_SW, l.target, 1);
		raw_sw_state(&raw_states[0], false);
		raw_sw_state(&raw_states[1], true);
	} else {
		l.target = gva(&s, bg_watch_var);
		r = kvmdbg_vm_insert(s.dbg, KVMDBG_WATCH_WRITE, l.target, 8);
		raw_watch_state(&raw_states[0], l.target);
		raw_states[1] = raw_states[0];
	}
	if (r)
		die("insert: %s", strerror(-r));
	check_same_state(&l, sw ? lib_sw_loop : lib_watch_loop, 3, raw_states, 2, true);

	ab = run_ab(&l, sw ? raw_sw_loop : raw_watch_loop, sw ? lib_sw_loop : lib_watch_loop, 100);
	printf("%s: %u pairs of batches of %u hits: raw %.0f ns/hit, library %.0f ns/hit\n",
	       sw ? "sw breakpoint" : "watchpoint", ab.pairs, ab.batch, ab.a_ns, ab.b_ns);
	bench_row(section, sw ? "hits/s, resume by restore-step-reinsert" : "hits/s (trap-like: "
		  "no step-over)", bench_fmt("%.0f", 1e9 / ab.b_ns), bench_fmt("%.0f", 1e9 / ab.a_ns),
		  bench_fmt("%.3f", ab.ratio), ">= 0.98", verdict_ge(ab.ratio, 0.98));

	counts_reset();
	kvmdbg_set_ioctl_hook(counting_ioctl);
	(sw ? lib_sw_loop : lib_watch_loop)(&l, 200);
	kvmdbg_set_ioctl_hook(NULL);
	per = counts_total() / 200.0;
	bench_row("3. syscalls", bench_fmt("ioctls per %s hit besides KVM_RUN (lib vs raw)",
					   sw ? "sw breakpoint" : "watchpoint"),
		  bench_fmt("%.2f", per), bench_fmt("%.0f", raw_per),
		  bench_fmt("%+.2f", per - raw_per), "+0", per - raw_per < 0.005 ? "met" : "missed");
	side_free(&s);
}

/* Exactly one KVM_SET_GUEST_DEBUG per vCPU after a change, none before. */
static void bench_change(int kvm_fd)
{
	struct side s;
	struct kvmdbg_event ev;
	unsigned long per_vcpu[2], other = 0, idle = 0;
	bool ok = true;
	uint64_t far;
	const char *what[] = {"insert hw-break", "insert sw-break", "remove hw-break",
			      "remove sw-break"};
	int r;

	side_new(&s, kvm_fd, 2, bg_spin, true);
	far = gva(&s, bg_end) + 0x100; /* never executed */
	for (unsigned int i = 0; i < 2; i++)
		if (kvmdbg_vcpu_set_step(s.v[i], 1))
			die("set_step");
	kvmdbg_set_ioctl_hook(counting_ioctl);
	for (int change = -1; change < 4; change++) {
		switch (change) {
		case 0: r = kvmdbg_vm_insert(s.dbg, KVMDBG_BREAK_HW, far, 1); break;
		case 1: r = kvmdbg_vm_insert(s.dbg, KVMDBG_BREAK_SW, far + 0x40, 1); break;
		case 2: r = kvmdbg_vm_remove(s.dbg, KVMDBG_BREAK_HW, far, 1); break;
		case 3: r = kvmdbg_vm_remove(s.dbg, KVMDBG_BREAK_SW, far + 0x40, 1); break;
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
			other += cnt_other[s.m.vcpu_fd[i]];
			if (per_vcpu[i] != 1)
				ok = false;
		}
		printf("after %s: KVM_SET_GUEST_DEBUG per vCPU over 50 runs each: %lu, %lu\n",
		       what[change], per_vcpu[0], per_vcpu[1]);
	}
	/* And none at all once the set is stable again. */
	counts_reset();
	for (int it = 0; it < 50; it++)
		for (unsigned int i = 0; i < 2; i++) {
			kvmdbg_vcpu_prepare(s.v[i]);
			run_vcpu(&s, i);
			kvmdbg_vcpu_handle_exit(s.v[i], &ev);
		}
	idle = counts_total();
	kvmdbg_set_ioctl_hook(NULL);
	if (other || idle)
		ok = false;
	bench_row("3. syscalls",
		  "KVM_SET_GUEST_DEBUG per vCPU after a change (2 vCPUs, 4 changes, 50 runs each)",
		  ok ? "1" : bench_fmt("%lu/%lu, %lu other, %lu idle", per_vcpu[0], per_vcpu[1],
				      other, idle),
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
	side_new(&s, kvm_fd, 1, bp ? bg_bp : bg_spin, lib);
	if (bp) {
		l.target = gva(&s, bg_bp_target);
		if (lib) {
			if (kvmdbg_vm_insert(s.dbg, KVMDBG_BREAK_HW, l.target, 1))
				die("insert");
			lib_bp_loop(&l, n);
		} else {
			raw_set_debug(&s, 0, true, false, l.target);
			raw_bp_loop(&l, n);
		}
	} else if (lib) {
		if (kvmdbg_vcpu_set_step(s.v[0], 1))
			die("set_step");
		lib_step_loop(&l, n);
	} else {
		raw_set_debug(&s, 0, false, true, 0);
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
	printf("verified features: %#" PRIx64 " =", features);
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
	else
		bench_bp(kvm_fd);
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
