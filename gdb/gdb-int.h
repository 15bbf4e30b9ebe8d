/* SPDX-License-Identifier: MIT */
/* libkvmdbg-gdb internals, shared by its source files only. */
#ifndef KVMDBG_GDB_INT_H
#define KVMDBG_GDB_INT_H

#include <stddef.h>

#include <kvmdbg/gdb.h>

#define GDB_EXPORT __attribute__((visibility("default")))

/* Sized structs across the ABI, as in libkvmdbg: copy a caller's struct in
 * (unknown non-zero trailing bytes: -E2BIG) or a result out (up to its sz). */
int gdb_sized_in(void *dst, size_t dst_size, const void *src);
int gdb_sized_out(void *dst, const void *src, size_t src_size);

#endif
