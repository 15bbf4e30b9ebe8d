/* SPDX-License-Identifier: MIT */
/*
 * bench-scale: software breakpoints at scale, 10 ... 1,000,000 of them,
 * against the linear list a VMM author would otherwise write (QEMU keeps its
 * software breakpoints in a QTAILQ and kvm_find_sw_breakpoint() walks it).
 *
 * Portable: the library runs against a fake KVM (the struct kvmdbg_host_ops of
 * tests/common/fake-host.h, as in tests/unit/test-unit-core.c) and fake guest
 * memory, so only the library's own work is timed. Per size n:
 *  - classification: kvmdbg_vcpu_handle_exit() on a synthetic x86 #BP exit at
 *    one of the n breakpoints, chosen at random (public API);
 *  - insert / remove: kvmdbg_vm_insert() / kvmdbg_vm_remove() of a new software
 *    breakpoint while n are set, in batches of 8 (public API);
 *  - memory: the table's bytes over the breakpoints it holds;
 *  - baseline: a doubly linked list of malloc'ed nodes (QEMU's struct
 *    kvm_sw_breakpoint), lookup = walk until the pc matches, insert = lookup
 *    for a duplicate then link at the head, remove = lookup then unlink.
 * Every figure is the median of many short rounds.
 *
 * usage: bench-scale [MAX_N]   (default 1000000)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>

#include <linux/kvm.h>

#include "arch/x86/regs.h"
#include "bench-common.h"
#include "fake-host.h"
#include "kvmdbg-int.h"

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "bench-scale: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

/*
 * ---- fake guest memory: every byte reads as a nop, writes vanish ----
 *
 * Not fake-host.h's memory: the breakpoints here sit anywhere in 48 bits
 * of address space, a million of them, and only the library is timed.
 */

static int fake_read(void *ctx, uint64_t gva, void *buf, size_t len)
{
	(void)ctx;
	(void)gva;
	memset(buf, 0x90, len);
	return 0;
}

static int fake_write(void *ctx, uint64_t gva, const void *buf, size_t len)
{
	(void)ctx;
	(void)gva;
	(void)buf;
	(void)len;
	return 0;
}

static const struct kvmdbg_mem_ops fake_mem = {.read = fake_read, .write = fake_write};

/* Breakpoint i's address: a bijection of i onto 48-bit addresses. */
static uint64_t bp_addr(uint64_t i)
{
	return ((i + 1) * 0x9e3779b97f4bull) & ((1ull << 48) - 1);
}

/* ---- the baseline: QEMU's list ---- */

struct lbp {
	uint64_t pc;
	uint64_t saved_insn;
	int use_count;
	struct lbp *next, **prevp;
};

struct llist {
	struct lbp *head;
	size_t count;
};

static struct lbp *l_find(const struct llist *l, uint64_t pc)
{
	for (struct lbp *b = l->head; b; b = b->next)
		if (b->pc == pc)
			return b;
	return NULL;
}

static void l_link(struct llist *l, uint64_t pc)
{
	struct lbp *b = malloc(sizeof(*b));
	uint8_t orig;

	if (!b)
		die("out of memory");
	fake_read(NULL, pc, &orig, 1);
	fake_write(NULL, pc, "\xcc", 1);
	*b = (struct lbp){.pc = pc, .saved_insn = orig, .use_count = 1};
	b->next = l->head;
	b->prevp = &l->head;
	if (l->head)
		l->head->prevp = &b->next;
	l->head = b;
	l->count++;
}

/* kvm_insert_breakpoint(): a duplicate only takes a reference. */
static void l_insert(struct llist *l, uint64_t pc)
{
	struct lbp *b = l_find(l, pc);

	if (b) {
		b->use_count++;
		return;
	}
	l_link(l, pc);
}

static void l_remove(struct llist *l, uint64_t pc)
{
	struct lbp *b = l_find(l, pc);

	if (!b)
		die("baseline: remove of a missing breakpoint");
	if (--b->use_count)
		return;
	fake_write(NULL, pc, &b->saved_insn, 1);
	*b->prevp = b->next;
	if (b->next)
		b->next->prevp = b->prevp;
	free(b);
	l->count--;
}

static void l_free(struct llist *l)
{
	while (l->head) {
		struct lbp *b = l->head;

		l->head = b->next;
		free(b);
	}
	l->count = 0;
}

/* ---- measurement ---- */

#define NPC (1u << 20)    /* random breakpoint picks, cycled */
#define NHOT 4096         /* the hot set: this many distinct picks */
#define MAX_ROUNDS 401
#define ROUND_NS 1e6      /* about 1 ms a round */

static uint64_t pcs[NPC];
static unsigned int npc; /* picks in use: NPC, or NHOT for the hot set */

struct result {
	size_t n;
	double classify_ns, hot_ns, insert_ns, remove_ns, build_ns, bytes_per;
	double l_lookup_ns, l_insert_ns; /* l_insert_ns: an insert and its remove */
};

/* Rounds of `per` operations of fn until about budget_ns have passed
 * (at least 5 rounds); median ns per operation. */
static double timed(double budget_ns, unsigned int per, void (*fn)(void *, unsigned int),
		    void *ctx)
{
	double v[MAX_ROUNDS];
	unsigned int rounds = 0;
	uint64_t start = bench_ns(), t;

	while (rounds < MAX_ROUNDS && (rounds < 5 || bench_ns() - start < budget_ns)) {
		t = bench_ns();
		fn(ctx, per);
		v[rounds++] = (double)(bench_ns() - t) / per;
	}
	return bench_median(v, rounds);
}

struct libctx {
	struct kvmdbg_vm *vm;
	struct kvmdbg_vcpu *v;
	size_t n;
	unsigned int pick;
	uint64_t next_new;
	uint64_t batch[8];
	double ins_ns, rem_ns;
	unsigned int batches;
	double ins_v[MAX_ROUNDS], rem_v[MAX_ROUNDS];
	struct llist *l;
};

static void lib_classify(void *p, unsigned int count)
{
	struct libctx *c = p;
	struct kvmdbg_event ev;

	for (unsigned int i = 0; i < count; i++) {
		fh.v[0].exit.pc = fh.v[0].pc = pcs[c->pick++ % npc];
		if (kvmdbg_vcpu_handle_exit(c->v, &ev) || ev.kind != KVMDBG_STOP_BREAK)
			die("classification: not our breakpoint");
	}
}

static void l_lookup(void *p, unsigned int count)
{
	struct libctx *c = p;

	for (unsigned int i = 0; i < count; i++)
		if (!l_find(c->l, pcs[c->pick++ % npc]))
			die("baseline: lookup missed");
}

/* One l_insert of a new pc and its l_remove (the list stays at n). */
static void l_insert_remove(void *p, unsigned int count)
{
	struct libctx *c = p;

	for (unsigned int i = 0; i < count; i++) {
		uint64_t pc = bp_addr(c->n + 1 + (c->next_new++ % 1024));

		l_insert(c->l, pc);
		l_remove(c->l, pc);
	}
}

static void measure_lib_insert(struct libctx *c, double budget_ns)
{
	uint64_t start = bench_ns(), t;
	unsigned int rounds = 0;

	while (rounds < MAX_ROUNDS && (rounds < 5 || bench_ns() - start < budget_ns)) {
		for (int k = 0; k < 8; k++)
			c->batch[k] = bp_addr(c->n + 1 + (c->next_new++ % (1u << 20)));
		t = bench_ns();
		for (int k = 0; k < 8; k++)
			if (kvmdbg_vm_insert(c->vm, KVMDBG_BREAK_SW, c->batch[k], 1))
				die("insert");
		c->ins_v[rounds] = (double)(bench_ns() - t) / 8;
		t = bench_ns();
		for (int k = 0; k < 8; k++)
			if (kvmdbg_vm_remove(c->vm, KVMDBG_BREAK_SW, c->batch[k], 1))
				die("remove");
		c->rem_v[rounds] = (double)(bench_ns() - t) / 8;
		rounds++;
	}
	c->ins_ns = bench_median(c->ins_v, rounds);
	c->rem_ns = bench_median(c->rem_v, rounds);
}

static struct result measure(size_t n, uint64_t *seed)
{
	struct kvmdbg_vm_opts o = {.sz = sizeof(o), .mem = &fake_mem};
	static struct kvm_run run;
	struct libctx c = {.n = n};
	struct llist l = {0};
	struct result res = {.n = n};
	uint64_t t;
	int r;

	fh_reset(KVMDBG_ARCH_X86_64);
	r = kvmdbg_vm_new_host(-1, &o, fh_host(), &fh, &c.vm);
	if (r)
		die("kvmdbg_vm_new_host: %s", strerror(-r));
	r = kvmdbg_vcpu_new(c.vm, 0, &run, &c.v);
	if (r)
		die("kvmdbg_vcpu_new: %s", strerror(-r));
	run.exit_reason = KVM_EXIT_DEBUG;
	fh.v[0].exit = (struct kvmdbg_exit){.exception = 3, .dr6 = DR6_ACTIVE_LOW, .dr7 = DR7_FIXED_1};

	t = bench_ns();
	for (size_t i = 0; i < n; i++)
		if ((r = kvmdbg_vm_insert(c.vm, KVMDBG_BREAK_SW, bp_addr(i), 1)))
			die("insert #%zu: %s", i, strerror(-r));
	res.build_ns = (double)(bench_ns() - t) / n;
	if (c.vm->sw.count != n)
		die("table holds %zu, not %zu", c.vm->sw.count, n);
	res.bytes_per = (double)kvmdbg_swtab_bytes(&c.vm->sw) / c.vm->sw.count;
	/* The stop is reported once per handle_exit; the prepare that would
	 * step past it is not part of classification. */
	for (unsigned int i = 0; i < NPC; i++)
		pcs[i] = bp_addr(bench_rand(seed) % n);

	npc = NHOT;
	res.hot_ns = timed(100e6, 2048, lib_classify, &c);
	npc = NPC;
	res.classify_ns = timed(150e6, 2048, lib_classify, &c);
	measure_lib_insert(&c, 150e6);
	res.insert_ns = c.ins_ns;
	res.remove_ns = c.rem_ns;
	kvmdbg_vcpu_free(c.v);
	kvmdbg_vm_free(c.vm);

	/* The baseline, built without its O(n) duplicate check (building a
	 * million-entry list through l_insert would take minutes); its
	 * lookups and inserts are then timed as QEMU does them. */
	for (size_t i = 0; i < n; i++)
		l_link(&l, bp_addr(i));
	c.l = &l;
	{
		/* Rounds of about ROUND_NS: size from one probe lookup walk. */
		double one;
		unsigned int per;

		t = bench_ns();
		l_lookup(&c, 8);
		one = (double)(bench_ns() - t) / 8 + 1;
		per = ROUND_NS / one < 1 ? 1 : (unsigned int)(ROUND_NS / one);
		res.l_lookup_ns = timed(150e6, per, l_lookup, &c);
		res.l_insert_ns = timed(150e6, per, l_insert_remove, &c);
	}
	l_free(&l);
	return res;
}

/* ns of one dependent random load in a buffer of `bytes` (pointer chase
 * through a random cycle): what one cache miss costs on this machine. */
static double miss_ns(size_t bytes, uint64_t *seed)
{
	size_t n = bytes / sizeof(size_t), at = 0;
	size_t *next = malloc(n * sizeof(*next));
	double v[9];

	if (!next)
		die("out of memory");
	for (size_t i = 0; i < n; i++)
		next[i] = i;
	for (size_t i = n - 1; i > 0; i--) { /* Sattolo: one cycle through all */
		size_t j = bench_rand(seed) % i, t = next[i];

		next[i] = next[j];
		next[j] = t;
	}
	for (int r = 0; r < 9; r++) {
		uint64_t t = bench_ns();

		for (int k = 0; k < 200000; k++)
			at = next[at];
		v[r] = (double)(bench_ns() - t) / 200000;
	}
	free(next);
	if (at == (size_t)-1)
		printf("\n"); /* keep the chase */
	return bench_median(v, 9);
}

int main(int argc, char **argv)
{
	size_t max_n = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000000;
	struct result res[8];
	unsigned int nr = 0;
	uint64_t seed = 0x243f6a8885a308d3ull;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("%9s %12s %12s %10s %10s %10s %8s %14s %14s %10s\n", "n", "classify ns", "hot-set ns", "insert ns",
	       "remove ns", "build ns", "B/bp", "list lookup ns", "list ins+rm ns",
	       "list/lib");
	for (size_t n = 10; n <= max_n && nr < 8; n *= 10) {
		struct result *r = &res[nr++];

		*r = measure(n, &seed);
		printf("%9zu %12.1f %12.1f %10.1f %10.1f %10.1f %8.1f %14.1f %14.1f %10.1f\n", r->n,
		       r->classify_ns, r->hot_ns, r->insert_ns, r->remove_ns, r->build_ns, r->bytes_per,
		       r->l_lookup_ns, r->l_insert_ns, r->l_lookup_ns / r->classify_ns);
		bench_curve("classify (library)", (double)n, r->classify_ns);
		bench_curve("classify, hot set of 4096 (library)", (double)n, r->hot_ns);
		bench_curve("insert (library)", (double)n, r->insert_ns);
		bench_curve("lookup (linear list)", (double)n, r->l_lookup_ns);
		bench_curve("insert+remove (linear list)", (double)n, r->l_insert_ns);
	}
	if (!nr)
		die("usage: bench-scale [MAX_N >= 10]");
	{
		double miss = miss_ns(32u << 20, &seed);

		printf("one dependent random load in 32 MiB (the table's size at 1M): %.0f ns\n",
		       miss);
		bench_row("4. scale", "reference: one random dependent load in 32 MiB (a cache miss)",
			  bench_fmt("%.0f ns", miss), "-", "-", "-", "-");
	}

	{
		const struct result *lo = &res[0], *hi = &res[nr - 1];
		double cr = hi->classify_ns / lo->classify_ns;
		double hr = hi->hot_ns / lo->hot_ns;
		double ir = hi->insert_ns / lo->insert_ns;
		double rr = hi->remove_ns / lo->remove_ns;
		double worst_bytes = 0;

		for (unsigned int i = 0; i < nr; i++)
			if (res[i].bytes_per > worst_bytes)
				worst_bytes = res[i].bytes_per;
		bench_row("4. scale", bench_fmt("classification ns (handle_exit, sw-break hit "
						"at a uniformly random one of them) at %zu vs at 10", hi->n),
			  bench_fmt("%.0f", hi->classify_ns), bench_fmt("%.0f", lo->classify_ns),
			  bench_fmt("%.2fx", cr), "<= 2x", cr <= 2 ? "met" : "missed");
		bench_row("4. scale", bench_fmt("classification ns, hits within a hot set of %u, at "
						"%zu vs at 10", NHOT, hi->n),
			  bench_fmt("%.0f", hi->hot_ns), bench_fmt("%.0f", lo->hot_ns),
			  bench_fmt("%.2fx", hr), "<= 2x", hr <= 2 ? "met" : "missed");
		bench_row("4. scale", bench_fmt("insert ns (kvmdbg_vm_insert, sw-break) at %zu vs at 10",
						hi->n),
			  bench_fmt("%.0f", hi->insert_ns), bench_fmt("%.0f", lo->insert_ns),
			  bench_fmt("%.2fx", ir), "<= 2x", ir <= 2 ? "met" : "missed");
		bench_row("4. scale", bench_fmt("remove ns (kvmdbg_vm_remove, sw-break) at %zu vs at 10",
						hi->n),
			  bench_fmt("%.0f", hi->remove_ns), bench_fmt("%.0f", lo->remove_ns),
			  bench_fmt("%.2fx", rr), "<= 2x", rr <= 2 ? "met" : "missed");
		for (unsigned int i = 0; i < nr; i++)
			bench_row("4. scale", bench_fmt("lookup at %zu: linear list / library "
							"classification", res[i].n),
				  bench_fmt("%.0f ns", res[i].classify_ns),
				  bench_fmt("%.0f ns", res[i].l_lookup_ns),
				  bench_fmt("%.3gx", res[i].l_lookup_ns / res[i].classify_ns), "-",
				  "-");
		bench_row("4. scale", bench_fmt("insert + remove at %zu: linear list (QEMU: find, "
						"then link) / library", hi->n),
			  bench_fmt("%.0f ns", hi->insert_ns + hi->remove_ns),
			  bench_fmt("%.0f ns", hi->l_insert_ns),
			  bench_fmt("%.3gx", hi->l_insert_ns / (hi->insert_ns + hi->remove_ns)), "-",
			  "-");
		bench_row("4. scale", "memory per breakpoint, worst over all sizes (table bytes / count)",
			  bench_fmt("%.1f B", worst_bytes),
			  bench_fmt("%zu B + malloc", sizeof(struct lbp)), "-", "<= 48 B",
			  worst_bytes <= 48 ? "met" : "missed");
	}
	return 0;
}
