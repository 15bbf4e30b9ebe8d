/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the `kvm` suite: see kvm-util.h. Arch-neutral: what differs
 * between the arches (guest blob labels, vCPU start, the exit a guest "out"
 * makes, its fail ports, the program counter) is in kvm-util-x86.c and
 * kvm-util-arm64.c, behind the kt_arch_* hooks of kvm-util.h.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
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

/* Every VM of the tests, made by kt_vm_create or by kvmdbg_vm_new itself,
 * sends its vCPUs' ioctls through the library's hook where one is set
 * (kvmdbg_set_ioctl_hook: counted, failed on demand): the seam a VMM's VMs
 * go without (kvmdbg-int.h, KVMDBG_IOCTL_SEAM). Set before main. */
__attribute__((constructor)) static void kt_ioctl_seam(void)
{
	kvmdbg_ioctl_seam_default = true;
}

#define KT_MEM_SIZE   (2ull << 20)
#define KT_STACK_SIZE 0x4000ull

/* ---- features ---- */

static bool feat_done;
static int feat_err;
static uint64_t feat;
static double feat_secs;

void kt_features_init(void)
{
	struct timespec a, b;
	int fd;

	if (feat_done)
		return;
	feat_done = true;
	fd = kvmdbg_test_kvm_fd();
	if (fd < 0) {
		feat_err = -errno;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	feat_err = kvmdbg_probe_verified(fd, &feat);
	clock_gettime(CLOCK_MONOTONIC, &b);
	feat_secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	close(fd);
	if (!feat_err) {
		printf("verified features (%.3f s):", feat_secs);
		for (unsigned int i = 0; i < 64; i++) {
			const char *n = kvmdbg_feature_name(1ull << i);

			if (feat & (1ull << i))
				printf(" %s", n ? n : "?");
		}
		printf("\n");
		fflush(stdout);
	}
}

uint64_t kt_features(void)
{
	kt_features_init();
	ck_assert_msg(feat_err == 0, "kvmdbg_probe_verified: %s", strerror(-feat_err));
	return feat;
}

bool kt_has(uint64_t f)
{
	return (kt_features() & f) == f;
}

bool kt_host_is_pvm(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0;
}

const char *kt_testbed(void)
{
	const char *t = getenv("KVMDBG_TESTBED");

	return t && *t ? t : NULL;
}

bool kt_testbed_is(const char *name)
{
	const char *t = kt_testbed();

	return t && strcmp(t, name) == 0;
}

static void kick_signal(int sig)
{
	(void)sig;
}

void kt_kick_setup(void)
{
	struct sigaction sa = {.sa_handler = kick_signal};

	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0); /* no SA_RESTART */
}

int kt_kick(struct kvm_run *run, pthread_t tid)
{
	__atomic_store_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	return pthread_kill(tid, SIGUSR1);
}

unsigned int kt_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	const char *want = getenv("KVMDBG_VM_CPUS");

	ck_assert_msg(n > 0, "sysconf(_SC_NPROCESSORS_ONLN): %ld", n);
	if (want && *want)
		ck_assert_msg(n == atol(want), "test bed: %ld CPUs online, the VM has -smp %s", n,
			      want);
	return (unsigned int)n;
}

void kt_not_exercised(const char *feature, const char *why, ...)
{
	va_list ap;

	printf("not exercised here: %s (", feature);
	va_start(ap, why);
	vprintf(why, ap);
	va_end(ap);
	printf(")\n");
	fflush(stdout);
}

void kt_note(const char *fmt, ...)
{
	va_list ap;

	printf("note: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* ---- symbols ---- */

static size_t blob_size(void)
{
	return (size_t)(kt_guest_end - kt_guest_start);
}

uint64_t kt_gva(const struct kt_vm *vm, const char *label)
{
	return vm->m.code_gpa + (uint64_t)(label - kt_guest_start);
}

void *kt_hva(const struct kt_vm *vm, const char *label)
{
	return vm->m.mem + kt_gva(vm, label);
}

uint64_t kt_peek(const struct kt_vm *vm, const char *label)
{
	uint64_t v;

	memcpy(&v, kt_hva(vm, label), sizeof(v));
	return v;
}

void kt_poke(struct kt_vm *vm, const char *label, uint64_t val)
{
	memcpy(kt_hva(vm, label), &val, sizeof(val));
}

const char *kt_sym(const struct kt_vm *vm, uint64_t gva, char *buf, size_t len)
{
	const struct kt_symtab *best = NULL;
	uint64_t best_at = 0;

	for (size_t i = 0; i < kt_arch_nr_syms; i++) {
		uint64_t at = kt_gva(vm, kt_arch_syms[i].addr);

		if (at <= gva && (!best || at >= best_at) && kt_arch_syms[i].addr != kt_guest_end) {
			best = &kt_arch_syms[i];
			best_at = at;
		}
	}
	if (!best || gva >= kt_gva(vm, kt_guest_end))
		snprintf(buf, len, "%#llx", (unsigned long long)gva);
	else if (gva == best_at)
		snprintf(buf, len, "%s", best->name);
	else
		snprintf(buf, len, "%s+%llu", best->name, (unsigned long long)(gva - best_at));
	return buf;
}

/* ---- identity memory callbacks: gva == gpa, bounds-checked ---- */

static int mem_read(void *ctx, uint64_t gva, void *buf, size_t len)
{
	struct kt_vm *vm = ctx;

	if (gva >= vm->m.mem_size || len > vm->m.mem_size - gva)
		return -EFAULT;
	memcpy(buf, vm->m.mem + gva, len);
	return 0;
}

static int mem_write(void *ctx, uint64_t gva, const void *buf, size_t len)
{
	struct kt_vm *vm = ctx;

	if (gva >= vm->m.mem_size || len > vm->m.mem_size - gva)
		return -EFAULT;
	memcpy(vm->m.mem + gva, buf, len);
	/* The guest fetches instructions from this memory: on real hardware
	 * the I-cache must see the new bytes (arm64; PIPT: the host alias
	 * works). Nothing to do on x86, where this compiles to nothing. */
	__builtin___clear_cache((char *)vm->m.mem + gva, (char *)vm->m.mem + gva + len);
	return 0;
}

static const struct kvmdbg_mem_ops mem_ops = { .read = mem_read, .write = mem_write };

/* ---- the test VM ---- */

int kt_vm_create(struct kt_vm *vm, const struct kt_vm_opts *o)
{
	struct kt_vm_opts def = { 0 };
	struct kvmdbg_vm_opts opts = { .sz = sizeof(opts) };
	int r;

	if (!o)
		o = &def;
	memset(vm, 0, sizeof(*vm));
	vm->nr_vcpus = o->nr_vcpus ? o->nr_vcpus : 1;
	ck_assert_uint_le(vm->nr_vcpus, KVMDBG_MICROVM_MAX_VCPUS);
	vm->features = o->features_set ? o->features : kt_features();

	vm->kvm_fd = kvmdbg_test_kvm_fd();
	ck_assert_msg(vm->kvm_fd >= 0, "open /dev/kvm: %s", strerror(errno));
	r = kvmdbg_microvm_create(&vm->m, vm->kvm_fd, vm->nr_vcpus, KT_MEM_SIZE);
	ck_assert_msg(r == 0, "kvmdbg_microvm_create: %s", strerror(-r));
	ck_assert_msg(vm->m.code_gpa % 4096 == 0, "code_gpa %#llx",
		      (unsigned long long)vm->m.code_gpa);
	ck_assert_msg(vm->m.code_gpa + blob_size() + vm->nr_vcpus * KT_STACK_SIZE <= vm->m.mem_size,
		      "guest blob (%zu bytes at %#llx) does not fit", blob_size(),
		      (unsigned long long)vm->m.code_gpa);
	r = kvmdbg_microvm_load(&vm->m, vm->m.code_gpa, kt_guest_start, blob_size());
	ck_assert_msg(r == 0, "kvmdbg_microvm_load: %s", strerror(-r));

	opts.mem = o->no_mem ? NULL : &mem_ops;
	opts.mem_ctx = vm;
	opts.overlay = o->overlay;
	opts.features = vm->features;
	r = kvmdbg_vm_new(vm->m.vm_fd, &opts, &vm->dbg);
	if (r && o->vm_new_may_fail) {
		kt_vm_destroy(vm);
		return r;
	}
	ck_assert_msg(r == 0, "kvmdbg_vm_new: %s", strerror(-r));
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		r = kvmdbg_vcpu_new(vm->dbg, vm->m.vcpu_fd[i], vm->m.run[i], &vm->vcpu[i]);
		ck_assert_msg(r == 0, "kvmdbg_vcpu_new(%u): %s", i, strerror(-r));
	}
	return 0;
}

void kt_vm_destroy(struct kt_vm *vm)
{
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		kvmdbg_vcpu_free(vm->vcpu[i]);
		vm->vcpu[i] = NULL;
	}
	kvmdbg_vm_free(vm->dbg);
	vm->dbg = NULL;
	kvmdbg_microvm_destroy(&vm->m);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->kvm_fd = -1;
}

void kt_vcpu_start(struct kt_vm *vm, unsigned int idx, const char *label)
{
	uint64_t sp = vm->m.mem_size - idx * KT_STACK_SIZE - 64;
	int r = kvmdbg_microvm_start(&vm->m, idx, kt_gva(vm, label), sp);

	ck_assert_msg(r == 0, "kvmdbg_microvm_start(%u): %s", idx, strerror(-r));
	kt_arch_vcpu_started(vm, idx);
}

/* ---- the run loop ---- */

static bool trace(void)
{
	/* vCPU threads call this too: an atomic, not a plain cached static. */
	static int t = -1;
	int v = __atomic_load_n(&t, __ATOMIC_RELAXED);

	if (v < 0) {
		v = getenv("KVMDBG_TEST_TRACE") != NULL;
		__atomic_store_n(&t, v, __ATOMIC_RELAXED);
	}
	return v;
}

static enum kt_what stop_error(struct kt_stop *st, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum kt_what stop_error(struct kt_stop *st, int err, const char *fmt, ...)
{
	va_list ap;

	st->what = KT_ERROR;
	st->err = err;
	va_start(ap, fmt);
	vsnprintf(st->msg, sizeof(st->msg), fmt, ap);
	va_end(ap);
	return KT_ERROR;
}

static void trace_event(const struct kt_vm *vm, unsigned int idx, const struct kvmdbg_event *ev)
{
	char b[64], d[96];

	if (!trace())
		return;
	kt_arch_debug_detail(vm, idx, d, sizeof(d));
	fprintf(stderr, "  vcpu%u: %s pc=%s addr=%#llx hits=%#x stepped=%d (%s)\n", idx,
		kvmdbg_stop_name(ev->kind), kt_sym(vm, ev->pc, b, sizeof(b)),
		(unsigned long long)ev->addr, ev->hits, ev->stepped, d);
}

/* A guest "out" to port: a stop, or (an unknown or fail port) an error. */
static enum kt_what port_stop(struct kt_vm *vm, unsigned int idx, uint32_t port, uint32_t val,
			      struct kt_stop *st)
{
	if (trace())
		fprintf(stderr, "  vcpu%u: out %#x <- %#x\n", idx, port, val);
	if (port == KT_PORT_DONE) {
		st->what = KT_DONE;
		return KT_DONE;
	}
	if (port == KT_PORT_MARK) {
		st->what = KT_MARK;
		st->mark = val;
		return KT_MARK;
	}
	if (kt_arch_fail(vm, idx, port, val, st->msg, sizeof(st->msg))) {
		st->what = KT_ERROR;
		st->err = 0;
		return KT_ERROR;
	}
	return stop_error(st, 0, "guest wrote unknown port %#x", port);
}

enum kt_what kt_run(struct kt_vm *vm, unsigned int idx, unsigned int flags, struct kt_stop *st)
{
	struct kvm_run *run = vm->m.run[idx];
	int fd = vm->m.vcpu_fd[idx];
	char b[64];

	memset(st, 0, sizeof(*st));
	for (unsigned int i = 0; i < KT_RUN_MAX; i++) {
		uint32_t port, val;
		int r;

		if (i > 0 || !(flags & KT_RUN_NO_PREPARE)) {
			r = vm->prepare ? vm->prepare(vm, idx) : kvmdbg_vcpu_prepare(vm->vcpu[idx]);
			/* Fenced: another vCPU steps past a software breakpoint
			 * this one cannot catch in hardware. A kick ends the
			 * wait as it ends KVM_RUN. */
			for (unsigned int w = 0; r == -EAGAIN && w < 10000000; w++) {
				if ((flags & KT_RUN_INTR) &&
				    __atomic_load_n(&run->immediate_exit, __ATOMIC_SEQ_CST)) {
					__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
					st->what = KT_INTR;
					return KT_INTR;
				}
				sched_yield();
				r = vm->prepare ? vm->prepare(vm, idx)
						: kvmdbg_vcpu_prepare(vm->vcpu[idx]);
			}
			if (r)
				return stop_error(st, r, "kvmdbg_vcpu_prepare: %s", strerror(-r));
		}
		r = ioctl(fd, KVM_RUN, 0);
		st->runs++;
		if (r < 0) {
			if (errno == EINTR && (flags & KT_RUN_INTR)) {
				__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				st->what = KT_INTR;
				return KT_INTR;
			}
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return stop_error(st, -errno, "KVM_RUN: %s", strerror(errno));
		}
		st->exit_reason = run->exit_reason;
		r = kt_arch_out(vm, idx, &port, &val, st->msg, sizeof(st->msg));
		if (r < 0) {
			st->what = KT_ERROR;
			st->err = 0;
			return KT_ERROR;
		}
		if (r > 0)
			return port_stop(vm, idx, port, val, st);
		switch (run->exit_reason) {
		case KVM_EXIT_DEBUG:
			r = kvmdbg_vcpu_handle_exit(vm->vcpu[idx], &st->ev);
			if (r)
				return stop_error(st, r, "kvmdbg_vcpu_handle_exit: %s",
						  strerror(-r));
			trace_event(vm, idx, &st->ev);
			if ((flags & KT_RUN_ONCE) || KVMDBG_STOP_IS_REPORTABLE(st->ev.kind) ||
			    (st->ev.kind == KVMDBG_STOP_GUEST && (flags & KT_RUN_GUEST))) {
				st->what = KT_EVENT;
				return KT_EVENT;
			}
			if (st->ev.kind == KVMDBG_STOP_GUEST)
				st->guests++;
			else
				st->nones++;
			continue;
		case KVM_EXIT_INTR:
			if (flags & KT_RUN_INTR) {
				__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				st->what = KT_INTR;
				return KT_INTR;
			}
			continue;
		case KVM_EXIT_INTERNAL_ERROR:
			return stop_error(st, 0, "KVM_EXIT_INTERNAL_ERROR suberror %u at %s %s",
					  run->internal.suberror, kt_arch_pc_name,
					  kt_sym(vm, kt_rip(vm, idx), b, sizeof(b)));
		default:
			return stop_error(st, 0, "unexpected exit reason %u at %s %s",
					  run->exit_reason, kt_arch_pc_name,
					  kt_sym(vm, kt_rip(vm, idx), b, sizeof(b)));
		}
	}
	st->what = KT_LIMIT;
	snprintf(st->msg, sizeof(st->msg), "no stop after %u KVM_RUNs", KT_RUN_MAX);
	return KT_LIMIT;
}

const char *kt_describe(const struct kt_vm *vm, const struct kt_stop *st, char *buf, size_t len)
{
	char b[64];

	switch (st->what) {
	case KT_DONE:
		snprintf(buf, len, "done");
		break;
	case KT_INTR:
		snprintf(buf, len, "interrupted (kicked)");
		break;
	case KT_MARK:
		snprintf(buf, len, "marker %u", st->mark);
		break;
	case KT_EVENT: {
		/* BREAK and WATCH carry a point type; STEP, GUEST and NONE don't. */
		bool typed = st->ev.kind == KVMDBG_STOP_BREAK || st->ev.kind == KVMDBG_STOP_WATCH;

		snprintf(buf, len, "%s%s%s at %s (addr %#llx hits %#x stepped %d)",
			 kvmdbg_stop_name(st->ev.kind), typed ? " " : "",
			 typed ? kvmdbg_type_name(st->ev.type) : "",
			 kt_sym(vm, st->ev.pc, b, sizeof(b)), (unsigned long long)st->ev.addr,
			 st->ev.hits, st->ev.stepped);
		break;
	}
	case KT_ERROR:
	case KT_LIMIT:
		snprintf(buf, len, "%s", st->msg);
		break;
	}
	return buf;
}

void kt_expect_done(struct kt_vm *vm, unsigned int idx)
{
	struct kt_stop st;
	char d[320];

	kt_run(vm, idx, 0, &st);
	ck_assert_msg(st.what == KT_DONE, "vcpu%u: expected done, got %s", idx,
		      kt_describe(vm, &st, d, sizeof(d)));
}

void kt_expect_mark(struct kt_vm *vm, unsigned int idx, uint32_t mark)
{
	struct kt_stop st;
	char d[320];

	kt_run(vm, idx, 0, &st);
	ck_assert_msg(st.what == KT_MARK && st.mark == mark, "vcpu%u: expected marker %u, got %s",
		      idx, mark, kt_describe(vm, &st, d, sizeof(d)));
}

struct kvmdbg_event kt_expect_event(struct kt_vm *vm, unsigned int idx, enum kvmdbg_stop kind,
				    const char *label)
{
	struct kt_stop st;
	char d[320], b[64];

	kt_run(vm, idx, kind == KVMDBG_STOP_GUEST ? KT_RUN_GUEST : 0, &st);
	ck_assert_msg(st.what == KT_EVENT && st.ev.kind == kind, "vcpu%u: expected %s%s%s, got %s",
		      idx, kvmdbg_stop_name(kind), label ? " at " : "",
		      label ? kt_sym(vm, kt_gva(vm, label), b, sizeof(b)) : "",
		      kt_describe(vm, &st, d, sizeof(d)));
	if (label)
		ck_assert_msg(st.ev.pc == kt_gva(vm, label), "vcpu%u: expected %s at %s, got %s",
			      idx, kvmdbg_stop_name(kind),
			      kt_sym(vm, kt_gva(vm, label), b, sizeof(b)),
			      kt_describe(vm, &st, d, sizeof(d)));
	return st.ev;
}

/* ---- all-stop over several vCPU threads (kt_allstop_breaks) ---- */

struct allstop_run {
	struct kt_vm *vm;
	unsigned int n;
	uint64_t bp;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;            /* the world is stopping: nobody enters KVM_RUN */
	unsigned int parked;  /* vCPU threads waiting for the world to resume */
	unsigned int done;    /* vCPU threads finished (DONE or failed) */
	unsigned long epoch;  /* bumped at every resume */
	bool failed;
	char err[400];
	pthread_t tid[KVMDBG_MICROVM_MAX_VCPUS];
	bool running[KVMDBG_MICROVM_MAX_VCPUS];
	unsigned int *breaks;
	unsigned int stops;   /* world stops */
};

struct allstop_arg {
	struct allstop_run *a;
	unsigned int idx;
};

/* With a->mu held: the last vCPU to park resumes the world. */
static void allstop_park_locked(struct allstop_run *a, unsigned int idx)
{
	unsigned long epoch = a->epoch;

	a->running[idx] = false;
	a->parked++;
	if (a->parked + a->done == a->n) {
		for (unsigned int j = 0; j < a->n; j++)
			__atomic_store_n(&a->vm->m.run[j]->immediate_exit, 0, __ATOMIC_SEQ_CST);
		a->parked = 0;
		a->stop = false;
		a->epoch++;
		pthread_cond_broadcast(&a->cv);
		return;
	}
	while (a->epoch == epoch)
		pthread_cond_wait(&a->cv, &a->mu);
}

/* With a->mu held: stop the world (kick every vCPU in KVM_RUN). */
static void allstop_stop_locked(struct allstop_run *a, unsigned int idx)
{
	if (a->stop)
		return;
	a->stop = true;
	a->stops++;
	for (unsigned int j = 0; j < a->n; j++)
		if (j != idx && a->running[j])
			kt_kick(a->vm->m.run[j], a->tid[j]);
}

static void *allstop_thread(void *arg)
{
	struct allstop_arg *x = arg;
	struct allstop_run *a = x->a;
	unsigned int i = x->idx;
	struct kt_stop st;
	char d[320];

	for (;;) {
		pthread_mutex_lock(&a->mu);
		while (a->stop)
			allstop_park_locked(a, i);
		a->running[i] = true;
		pthread_mutex_unlock(&a->mu);

		kt_run(a->vm, i, KT_RUN_INTR, &st);

		pthread_mutex_lock(&a->mu);
		if (st.what == KT_EVENT && st.ev.kind == KVMDBG_STOP_BREAK && st.ev.pc == a->bp &&
		    st.ev.addr == a->bp && st.ev.type == KVMDBG_BREAK_SW) {
			a->breaks[i]++;
			/* A reported stop: every other vCPU out of KVM_RUN and
			 * through a prepare before this one resumes. */
			allstop_stop_locked(a, i);
			allstop_park_locked(a, i);
		} else if (st.what == KT_INTR) {
			if (!a->stop) /* a kick that came late: run again */
				a->running[i] = false;
			else
				allstop_park_locked(a, i);
		} else {
			if (st.what != KT_DONE && !a->failed) {
				a->failed = true;
				snprintf(a->err, sizeof(a->err), "vcpu%u: %s", i,
					 kt_describe(a->vm, &st, d, sizeof(d)));
			}
			a->running[i] = false;
			a->done++;
			/* Parked ones may be waiting for this one. */
			if (a->stop && a->parked && a->parked + a->done == a->n) {
				for (unsigned int j = 0; j < a->n; j++)
					__atomic_store_n(&a->vm->m.run[j]->immediate_exit, 0,
							 __ATOMIC_SEQ_CST);
				a->parked = 0;
				a->stop = false;
				a->epoch++;
				pthread_cond_broadcast(&a->cv);
			}
			pthread_mutex_unlock(&a->mu);
			return NULL;
		}
		pthread_mutex_unlock(&a->mu);
	}
}

unsigned int kt_allstop_breaks(struct kt_vm *vm, unsigned int n, uint64_t bp,
			       unsigned int breaks[], char *err, size_t errlen)
{
	struct allstop_arg args[KVMDBG_MICROVM_MAX_VCPUS];
	struct allstop_run *a = calloc(1, sizeof(*a));
	unsigned int stops;

	ck_assert_ptr_nonnull(a);
	ck_assert_uint_le(n, vm->nr_vcpus);
	kt_kick_setup();
	a->vm = vm;
	a->n = n;
	a->bp = bp;
	a->breaks = breaks;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	pthread_mutex_lock(&a->mu);
	for (unsigned int i = 0; i < n; i++) {
		breaks[i] = 0;
		args[i] = (struct allstop_arg){.a = a, .idx = i};
		ck_assert_int_eq(pthread_create(&a->tid[i], NULL, allstop_thread, &args[i]), 0);
	}
	pthread_mutex_unlock(&a->mu);
	for (unsigned int i = 0; i < n; i++)
		pthread_join(a->tid[i], NULL);
	err[0] = 0;
	if (a->failed)
		snprintf(err, errlen, "%s", a->err);
	stops = a->stops;
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
	return stops;
}
