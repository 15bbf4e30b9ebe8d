/* SPDX-License-Identifier: MIT */
/* kvmdbg-run --kernel: what every arch's Linux machine shares (linux.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "linux.h"

bool linux_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned int shift = 0;

	if (!*s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno)
		return false;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (*end || (shift && v > (~0ULL >> shift)))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

const char *linux_end_name(enum linux_end e)
{
	switch (e) {
	case LINUX_POWER_OFF:
		return "powered off";
	case LINUX_RESET:
		return "reset";
	case LINUX_PANIC:
		return "panicked";
	case LINUX_RUNNING:
	default:
		return "running";
	}
}

#define PANIC_TEXT "Kernel panic - not syncing"

void linux_line_flush(struct linux_line *ln)
{
	size_t done = 0;

	while (done < ln->n) {
		ssize_t n = write(STDOUT_FILENO, ln->buf + done, ln->n - done);

		if (n <= 0)
			break;
		done += (size_t)n;
	}
	ln->n = 0;
}

bool linux_line_put(struct linux_line *ln, uint8_t c)
{
	bool panic;

	if (ln->n < sizeof(ln->buf))
		ln->buf[ln->n++] = (char)c;
	if (c != '\n' && ln->n < sizeof(ln->buf))
		return false;
	panic = memmem(ln->buf, ln->n, PANIC_TEXT, sizeof(PANIC_TEXT) - 1) != NULL;
	linux_line_flush(ln);
	return panic;
}

void linux_out_init(struct linux_out *o)
{
	pthread_mutex_init(&o->lock, NULL);
	o->line.n = 0;
	o->end = LINUX_RUNNING;
}

void linux_out_put(struct linux_out *o, uint8_t c)
{
	pthread_mutex_lock(&o->lock);
	if (linux_line_put(&o->line, c) && o->end == LINUX_RUNNING)
		o->end = LINUX_PANIC;
	pthread_mutex_unlock(&o->lock);
}

void linux_out_end(struct linux_out *o, enum linux_end e)
{
	pthread_mutex_lock(&o->lock);
	if (o->end == LINUX_RUNNING)
		o->end = e;
	linux_line_flush(&o->line);
	pthread_mutex_unlock(&o->lock);
}

enum linux_end linux_out_ended(const struct linux_out *o)
{
	return __atomic_load_n(&o->end, __ATOMIC_SEQ_CST);
}

void linux_out_flush(struct linux_out *o)
{
	pthread_mutex_lock(&o->lock);
	linux_line_flush(&o->line);
	pthread_mutex_unlock(&o->lock);
}

void linux_err(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("kvmdbg-run: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
