/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the bench programs: a monotonic clock, medians, and the
 * machine-readable lines bench/run turns into docs/performance.md.
 *
 * Every result is a ratio against a baseline measured in the same process,
 * interleaved with it (alternating rounds, medians), because the machines
 * these run on are shared and noisy. Nothing here asserts on time.
 *
 * Output lines (tab-separated after the tag; everything else is free text):
 *   @row   section  measure  library  baseline  ratio  target  verdict
 *   @curve name     x        y
 *   @note  section  text                         (not measured, and why)
 */
#ifndef KVMDBG_BENCH_COMMON_H
#define KVMDBG_BENCH_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline uint64_t bench_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of n values (sorts a copy). */
static inline double bench_median(const double *v, size_t n)
{
	double *c;
	double m;

	if (!n)
		return 0;
	c = malloc(n * sizeof(*c));
	if (!c)
		abort();
	memcpy(c, v, n * sizeof(*c));
	qsort(c, n, sizeof(*c), bench_cmp_double);
	m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
	free(c);
	return m;
}

static inline void bench_row(const char *section, const char *measure, const char *lib,
			     const char *base, const char *ratio, const char *target,
			     const char *verdict)
{
	printf("@row\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", section, measure, lib, base, ratio, target,
	       verdict);
	fflush(stdout);
}

static inline void bench_curve(const char *name, double x, double y)
{
	printf("@curve\t%s\t%.0f\t%.3f\n", name, x, y);
}

static inline void bench_note(const char *section, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline void bench_note(const char *section, const char *fmt, ...)
{
	va_list ap;

	printf("@note\t%s\t", section);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* snprintf into a small static ring, for building row cells inline. */
static inline const char *bench_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline const char *bench_fmt(const char *fmt, ...)
{
	static char ring[16][128];
	static unsigned int next;
	char *b = ring[next++ % 16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(ring[0]), fmt, ap);
	va_end(ap);
	return b;
}

/* xorshift64*: deterministic addresses and orders. */
static inline uint64_t bench_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

#endif
