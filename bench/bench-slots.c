/* SPDX-License-Identifier: MIT */
/*
 * bench-slots: slot economy of watchpoint range covers, on both arches
 * (portable: kvmdbg_x86_ops.cover and kvmdbg_arm64_ops.cover run on any
 * host).
 *
 * For every (address, length) in an exhaustive window:
 *  - the slots the library's cover uses (exact cover, no byte outside the
 *    range), checked to match exactly the range;
 *  - the proven minimum, by an exhaustive search written here independently
 *    of the library: every piece a slot can match is an interval, so a
 *    minimum cover of [x, end) is one piece containing x plus a minimum
 *    cover of what lies after that piece; min over all such pieces (dynamic
 *    programming over x, trying every candidate piece);
 *  - what QEMU's gdbstub accepts: x86 (target/i386/kvm/kvm.c) one slot of
 *    1, 2, 4 or 8 bytes aligned to its length; arm64
 *    (target/arm/hyp_gdbstub.c) one slot of at most 8 bytes within one
 *    doubleword, or an aligned power of two. (QEMU also takes some other
 *    arm64 ranges but watches other bytes than asked: a run crossing a
 *    doubleword is cut short, a misaligned power of two is aligned down.
 *    Those count as rejected here.)
 * The share of the ranges QEMU rejects that the library covers is with the
 * host's slots: x86 4 (DR0-DR3), arm64 4 watchpoints (the architectural
 * minimum and the common count; up to 16 exist).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>

#include "bench-common.h"
#include "kvmdbg-int.h"

#define MAXLEN 512
#define HOST_SLOTS 4

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "bench-slots: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

/* Candidate pieces containing byte x that lie inside [a, b): their ends. */
static unsigned int x86_ends(uint64_t a, uint64_t b, uint64_t x, uint64_t *ends)
{
	unsigned int n = 0;

	for (uint64_t sz = 1; sz <= 8; sz *= 2) {
		uint64_t s = x & ~(sz - 1);

		if (s >= a && s + sz <= b)
			ends[n++] = s + sz;
	}
	return n;
}

static unsigned int arm64_ends(uint64_t a, uint64_t b, uint64_t x, uint64_t *ends)
{
	unsigned int n = 0;
	uint64_t dw = x & ~7ull;

	/* BAS runs containing x: any end in (x, doubleword end], inside [a, b)
	 * (the start can be x itself, which is inside). */
	for (uint64_t e = x + 1; e <= dw + 8 && e <= b; e++)
		ends[n++] = e;
	/* MASK regions: aligned 2^k blocks, k = 3 .. 31. */
	for (unsigned int k = 3; k <= 31; k++) {
		uint64_t sz = 1ull << k, s = x & ~(sz - 1);

		if (s < a || s + sz > b)
			break; /* larger blocks containing x only grow */
		ends[n++] = s + sz;
	}
	return n;
}

/* Minimum pieces covering [a, b) exactly. */
static unsigned int brute_min(bool arm64, uint64_t a, uint64_t b)
{
	static unsigned int f[MAXLEN + 1];
	uint64_t ends[48];

	f[b - a] = 0;
	for (uint64_t x = b; x-- > a;) {
		unsigned int n = arm64 ? arm64_ends(a, b, x, ends) : x86_ends(a, b, x, ends);
		unsigned int best = UINT32_MAX;

		for (unsigned int i = 0; i < n; i++)
			if (1 + f[ends[i] - a] < best)
				best = 1 + f[ends[i] - a];
		f[x - a] = best;
	}
	return f[0];
}

static bool qemu_accepts(bool arm64, uint64_t a, uint64_t len)
{
	bool pow2 = (len & (len - 1)) == 0;

	if (!arm64)
		return (len == 1 || len == 2 || len == 4 || len == 8) && a % len == 0;
	if (len <= 8)
		return (a & 7) + len <= 8;
	return pow2 && a % len == 0;
}

/* The library's pieces must match exactly [a, b). */
static void check_exact(const char *arch, uint64_t a, uint64_t b, const struct kvmdbg_piece *p,
			int n)
{
	static unsigned char hit[MAXLEN];

	memset(hit, 0, (size_t)(b - a));
	for (int i = 0; i < n; i++) {
		if (p[i].start < a || p[i].start + p[i].len > b || !p[i].len)
			die("%s [%#" PRIx64 ", +%" PRIu64 "): piece %d matches bytes outside", arch,
			    a, b - a, i);
		memset(hit + (p[i].start - a), 1, (size_t)p[i].len);
	}
	for (uint64_t i = 0; i < b - a; i++)
		if (!hit[i])
			die("%s [%#" PRIx64 ", +%" PRIu64 "): byte %" PRIu64 " not covered", arch, a,
			    b - a, i);
}

struct tally {
	unsigned long ranges, equal, above, below;
	unsigned long qemu_ok, lib_one_on_qemu_ok;
	unsigned long qemu_rejects, lib_covers_rejected, min_fits_rejected;
	double sum_lib, sum_min;
	unsigned int worst_extra;
};

static void window(bool arm64, uint64_t amax, uint64_t lmax, struct tally *t)
{
	const struct kvmdbg_arch_ops *ops = arm64 ? &kvmdbg_arm64_ops : &kvmdbg_x86_ops;
	const char *arch = arm64 ? "arm64" : "x86";
	struct kvmdbg_limits lim = {.allow_overcover = false};
	struct kvmdbg_piece pieces[KVMDBG_MAX_PIECES];

	memset(t, 0, sizeof(*t));
	if (arm64) {
		lim.nr[KVMDBG_POOL_BP] = KVMDBG_MAX_PIECES;
		lim.nr[KVMDBG_POOL_WP] = KVMDBG_MAX_PIECES;
	} else {
		lim.nr[KVMDBG_POOL_BP] = KVMDBG_MAX_PIECES;
	}
	for (uint64_t a = 0; a < amax; a++)
		for (uint64_t len = 1; len <= lmax; len++) {
			unsigned int min = brute_min(arm64, a, a + len);
			int n = ops->cover(&lim, KVMDBG_WATCH_WRITE, a, len, pieces,
					   KVMDBG_MAX_PIECES);
			bool q = qemu_accepts(arm64, a, len);

			if (n == -ENOSPC && min > KVMDBG_MAX_PIECES)
				continue; /* beyond what any insert could take */
			if (n <= 0)
				die("%s cover(%#" PRIx64 ", %" PRIu64 "): %d", arch, a, len, n);
			check_exact(arch, a, a + len, pieces, n);
			t->ranges++;
			t->sum_lib += n;
			t->sum_min += min;
			if ((unsigned int)n == min)
				t->equal++;
			else if ((unsigned int)n > min)
				t->above++;
			else
				t->below++; /* the brute force would be wrong */
			if ((unsigned int)n > min && (unsigned int)n - min > t->worst_extra)
				t->worst_extra = (unsigned int)n - min;
			if (q) {
				t->qemu_ok++;
				t->lib_one_on_qemu_ok += n == 1;
			} else {
				t->qemu_rejects++;
				t->lib_covers_rejected += n <= HOST_SLOTS;
				t->min_fits_rejected += min <= HOST_SLOTS;
			}
		}
}

static void report(bool arm64, uint64_t amax, uint64_t lmax)
{
	const char *arch = arm64 ? "arm64" : "x86";
	const char *win = bench_fmt("addr 0..%" PRIu64 ", len 1..%" PRIu64, amax - 1, lmax);
	struct tally t;
	double share;
	uint64_t t0 = bench_ns();

	window(arm64, amax, lmax, &t);
	share = t.qemu_rejects ? 100.0 * t.lib_covers_rejected / t.qemu_rejects : 0;
	printf("%s, %s: %lu ranges; library = minimum on %lu, above on %lu (worst +%u), below on "
	       "%lu; mean slots %.3f (minimum %.3f); QEMU accepts %lu (library 1 slot on %lu), "
	       "rejects %lu, of which the library covers %lu with %d slots (%lu need at most %d); "
	       "%.2f s\n",
	       arch, win, t.ranges, t.equal, t.above, t.worst_extra, t.below, t.sum_lib / t.ranges,
	       t.sum_min / t.ranges, t.qemu_ok, t.lib_one_on_qemu_ok, t.qemu_rejects,
	       t.lib_covers_rejected, HOST_SLOTS, t.min_fits_rejected, HOST_SLOTS,
	       (double)(bench_ns() - t0) / 1e9);
	if (t.below)
		die("%s: the library used fewer slots than the brute-force minimum on %lu ranges: "
		    "the bench's search is wrong", arch, t.below);
	bench_row("5. slot economy", bench_fmt("%s (%s, %lu ranges): library slots = proven minimum",
					       arch, win, t.ranges),
		  bench_fmt("%lu/%lu", t.equal, t.ranges), "-",
		  bench_fmt("mean %.3f vs %.3f", t.sum_lib / t.ranges, t.sum_min / t.ranges),
		  "everywhere", t.equal == t.ranges ? "met" : "missed");
	bench_row("5. slot economy",
		  bench_fmt("%s: ranges QEMU's rules reject that the library covers with %d slots",
			    arch, HOST_SLOTS),
		  bench_fmt("%lu/%lu", t.lib_covers_rejected, t.qemu_rejects), "0",
		  bench_fmt("%.1f%%", share),
		  bench_fmt("all that fit (%lu)", t.min_fits_rejected),
		  t.lib_covers_rejected == t.min_fits_rejected ? "met" : "missed");
	bench_row("5. slot economy", bench_fmt("%s: ranges QEMU accepts, library in 1 slot too",
					       arch),
		  bench_fmt("%lu/%lu", t.lib_one_on_qemu_ok, t.qemu_ok), bench_fmt("%lu", t.qemu_ok),
		  "-", "all", t.lib_one_on_qemu_ok == t.qemu_ok ? "met" : "missed");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	report(false, 128, 128);
	report(true, 256, MAXLEN);
	return 0;
}
