/* SPDX-License-Identifier: MIT */
/*
 * The stop that a fake machine of tests/gdb (fake-target.c, fuzz-gdb.c) has
 * for libkvmdbg-gdb: its resume or interrupt fills `pending` and posts it
 * (a byte into the pipe notify[], which the file's main opens); the engine
 * polls notify[0] (the stop_fd op) and takes the stop with get_stop. The
 * ops' callbacks for both, and a no-op one. Included once per program.
 */
#ifndef KVMDBG_TESTS_GDB_FAKE_STOP_H
#define KVMDBG_TESTS_GDB_FAKE_STOP_H

#include <errno.h>
#include <unistd.h>

#include <kvmdbg/gdb.h>

static struct kvmdbg_gdb_stop pending;
static int notify[2];

/* `pending` is ready: wake the engine. 0, or -EIO. */
static inline int stop_post(void)
{
	return write(notify[1], "x", 1) == 1 ? 0 : -EIO;
}

static inline int f_stop_fd(void *c)
{
	(void)c;
	return notify[0];
}

static inline int f_get_stop(void *c, struct kvmdbg_gdb_stop *st)
{
	char b;

	(void)c;
	if (read(notify[0], &b, 1) != 1)
		return 0;
	*st = pending;
	return 1;
}

static inline void f_nop(void *c)
{
	(void)c;
}

#endif
