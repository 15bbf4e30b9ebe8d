/* SPDX-License-Identifier: MIT */
/*
 * Shared test scaffolding: suites register themselves with TEST_SUITE() and
 * tests/test-main.c runs every suite linked into the binary.
 *
 *   TEST_SUITE(slots)            // or TEST_SUITE_KVM(...) for suites that need /dev/kvm
 *   {
 *           add_test(s, test_alloc_all_or_nothing);
 *   }
 */
#ifndef KVMDBG_TEST_COMMON_H
#define KVMDBG_TEST_COMMON_H

#include <check.h>
#include <stdbool.h>

struct kvmdbg_test_suite {
	const char *name;
	bool needs_kvm;
	void (*setup)(Suite *s, TCase *tc);
	struct kvmdbg_test_suite *next;
};

void kvmdbg_test_register(struct kvmdbg_test_suite *suite);

#define TEST_SUITE_FULL(sname, kvm)                                                     \
	static void sname##_setup(Suite *s, TCase *tc);                                 \
	static struct kvmdbg_test_suite sname##_suite = {                               \
		.name = #sname, .needs_kvm = (kvm), .setup = sname##_setup};            \
	__attribute__((constructor)) static void sname##_register(void)                \
	{                                                                               \
		kvmdbg_test_register(&sname##_suite);                                   \
	}                                                                               \
	static void sname##_setup(Suite *s __attribute__((unused)), TCase *tc)

#define TEST_SUITE(sname) TEST_SUITE_FULL(sname, false)
#define TEST_SUITE_KVM(sname) TEST_SUITE_FULL(sname, true)

#define add_test(tc_, fn) tcase_add_test((tc_), (fn))

/* /dev/kvm opened read-write, or -1 (tests that need it are skipped as a binary). */
int kvmdbg_test_kvm_fd(void);

#endif
