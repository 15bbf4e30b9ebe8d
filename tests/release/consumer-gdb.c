/* SPDX-License-Identifier: MIT */
/*
 * The outside program of tests/release for libkvmdbg-gdb: built against it
 * the way a VMM's build takes it (`pkg-config --static kvmdbg-gdb`, a Meson
 * subproject's dependency('kvmdbg-gdb'), the Debian packages), with nothing
 * but <kvmdbg/gdb.h>. It checks the register layouts, the target
 * descriptions and a session object (no connection, no KVM needed), one
 * line per check.
 *
 * usage: consumer-gdb
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <kvmdbg/gdb.h>

static int failed;

static void check(int ok, const char *what)
{
	printf("consumer-gdb: %s: %s\n", what, ok ? "ok" : "FAILED");
	if (!ok)
		failed++;
}

int main(void)
{
	struct kvmdbg_gdb_reg reg = { .sz = sizeof(reg) };
	const char *xml = kvmdbg_gdb_target_xml(KVMDBG_GDB_ARCH_X86_64);
	size_t g_bytes = 0;
	int n = kvmdbg_gdb_reg_count(KVMDBG_GDB_ARCH_X86_64, &g_bytes);
	int r;

	printf("consumer-gdb: x86-64 layout: %d registers, %zu bytes of g\n", n, g_bytes);
	check(n > 16 && g_bytes > 16 * 8, "kvmdbg_gdb_reg_count(x86-64)");
	r = kvmdbg_gdb_reg_lookup(KVMDBG_GDB_ARCH_X86_64, "rip", &reg);
	check(r >= 0 && reg.size == 8 && reg.name && strcmp(reg.name, "rip") == 0,
	      "kvmdbg_gdb_reg_lookup(x86-64, rip)");
	check(kvmdbg_gdb_reg_lookup(KVMDBG_GDB_ARCH_AARCH64, "pc", &reg) >= 0 && reg.size == 8,
	      "kvmdbg_gdb_reg_lookup(aarch64, pc)");
	check(kvmdbg_gdb_reg_lookup(KVMDBG_GDB_ARCH_X86_64, "no-such-reg", &reg) == -ENOENT,
	      "an unknown register is -ENOENT");
	check(xml && strstr(xml, "i386:x86-64") != NULL, "kvmdbg_gdb_target_xml(x86-64)");
	check(kvmdbg_gdb_new(NULL, NULL, NULL) < 0, "kvmdbg_gdb_new(NULL) is refused");
	printf("consumer-gdb: %s\n", failed ? "FAILED" : "ok");
	return failed ? 1 : 0;
}
