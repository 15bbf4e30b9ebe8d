/* SPDX-License-Identifier: MIT */
/*
 * Shared test scaffolding: suites register themselves with TEST_SUITE() and
 * tests/common/test-main.c runs every suite linked into the binary, each
 * test in a Check test case of its own (named after the test function), so
 * CK_RUN_SUITE=<suite> and CK_RUN_CASE=<test> select what runs.
 *
 *   TEST_SUITE(slots)            // or TEST_SUITE_KVM(...) for suites that need /dev/kvm
 *   {
 *           tests_set_timeout(tc, 300);           // every test of the suite
 *           tests_add_fixture(tc, probe_once);    // unchecked, before each test case
 *           add_test(tc, test_alloc_all_or_nothing);
 *           add_loop_test(tc, test_variant, 0, 4); // one test case, 4 runs
 *   }
 */
#ifndef KVMDBG_TEST_COMMON_H
#define KVMDBG_TEST_COMMON_H

#include <check.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>

/* What a suite's setup collects: its tests, their timeout and fixtures. */
struct kvmdbg_test_cases;

struct kvmdbg_test_suite {
	const char *name;
	bool needs_kvm;
	void (*setup)(struct kvmdbg_test_cases *tc);
	struct kvmdbg_test_suite *next;
};

void kvmdbg_test_register(struct kvmdbg_test_suite *suite);
void kvmdbg_test_add(struct kvmdbg_test_cases *tc, const TTest *test, int start, int end);
void tests_set_timeout(struct kvmdbg_test_cases *tc, double seconds);
void tests_add_fixture(struct kvmdbg_test_cases *tc, SFun setup);

#define TEST_SUITE_FULL(sname, kvm)                                                     \
	static void sname##_setup(struct kvmdbg_test_cases *tc);                        \
	static struct kvmdbg_test_suite sname##_suite = {                               \
		.name = #sname, .needs_kvm = (kvm), .setup = sname##_setup};            \
	__attribute__((constructor)) static void sname##_register(void)                \
	{                                                                               \
		kvmdbg_test_register(&sname##_suite);                                   \
	}                                                                               \
	static void sname##_setup(struct kvmdbg_test_cases *tc)

#define TEST_SUITE(sname) TEST_SUITE_FULL(sname, false)
#define TEST_SUITE_KVM(sname) TEST_SUITE_FULL(sname, true)

#define add_test(tc_, fn) kvmdbg_test_add((tc_), (fn), 0, 1)
#define add_loop_test(tc_, fn, start, end) kvmdbg_test_add((tc_), (fn), (start), (end))

/* Asserts for hot loops: Check's ck_assert_*() writes to a pipe on every
 * call, these only when they fail. REQ_EQ names the function, the line and
 * both expressions with their values. */
#define REQ(cond, ...)                             \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)
#define REQ_EQ(a, b)                                                                              \
	REQ((a) == (b), "%s:%d: %s == %s: %#" PRIx64 " != %#" PRIx64, __func__, __LINE__, #a, #b, \
	    (uint64_t)(a), (uint64_t)(b))

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* /dev/kvm opened read-write, or -1 (tests that need it are skipped as a binary). */
int kvmdbg_test_kvm_fd(void);

#endif
