/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "test-common.h"

static struct kvmdbg_test_suite *suites;

struct kvmdbg_test_cases {
	double timeout;
	SFun fixtures[4];
	unsigned int nfixtures;
	struct {
		const TTest *test;
		int start, end;
	} *tests;
	unsigned int ntests;
};

void kvmdbg_test_register(struct kvmdbg_test_suite *suite)
{
	struct kvmdbg_test_suite **p = &suites;

	/* Keep registration order stable: append. */
	while (*p)
		p = &(*p)->next;
	suite->next = NULL;
	*p = suite;
}

void kvmdbg_test_add(struct kvmdbg_test_cases *tc, const TTest *test, int start, int end)
{
	void *p = realloc(tc->tests, (tc->ntests + 1) * sizeof(*tc->tests));

	if (!p) {
		perror("kvmdbg_test_add");
		exit(1);
	}
	tc->tests = p;
	tc->tests[tc->ntests].test = test;
	tc->tests[tc->ntests].start = start;
	tc->tests[tc->ntests].end = end;
	tc->ntests++;
}

void tests_set_timeout(struct kvmdbg_test_cases *tc, double seconds)
{
	tc->timeout = seconds;
}

void tests_add_fixture(struct kvmdbg_test_cases *tc, SFun setup)
{
	if (tc->nfixtures == sizeof(tc->fixtures) / sizeof(tc->fixtures[0])) {
		fprintf(stderr, "tests_add_fixture: too many fixtures\n");
		exit(1);
	}
	tc->fixtures[tc->nfixtures++] = setup;
}

/* One Check test case per test, named after it: CK_RUN_CASE selects one. */
static Suite *make_suite(struct kvmdbg_test_suite *t)
{
	struct kvmdbg_test_cases cases = {.timeout = 60};
	Suite *s = suite_create(t->name);

	t->setup(&cases);
	for (unsigned int i = 0; i < cases.ntests; i++) {
		TCase *tc = tcase_create(cases.tests[i].test->name);

		tcase_set_timeout(tc, cases.timeout);
		for (unsigned int j = 0; j < cases.nfixtures; j++)
			tcase_add_unchecked_fixture(tc, cases.fixtures[j], NULL);
		tcase_add_loop_test(tc, cases.tests[i].test, cases.tests[i].start,
				    cases.tests[i].end);
		suite_add_tcase(s, tc);
	}
	free(cases.tests);
	return s;
}

/*
 * The rule of tests/kvm-present: a character device that opens read-write
 * (never created: no O_CREAT) and answers KVM_GET_API_VERSION with 12.
 */
int kvmdbg_test_kvm_fd(void)
{
	struct stat st;
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || !S_ISCHR(st.st_mode)) {
		close(fd);
		errno = ENODEV;
		return -1;
	}
	if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		close(fd);
		errno = EPROTO;
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	const char *only = getenv("KVMDBG_TEST_SUITE");
	const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	bool needs_kvm = false;
	SRunner *sr = NULL;
	struct stat st;
	char tap[64];
	int tap_fd, failed;

	(void)argc;
	for (struct kvmdbg_test_suite *t = suites; t; t = t->next)
		needs_kvm |= t->needs_kvm;

	if (needs_kvm) {
		int fd = kvmdbg_test_kvm_fd();

		if (fd < 0) {
			/* TAP's skip: meson test (protocol tap) reports SKIP. */
			printf("1..0 # SKIP %s: no usable /dev/kvm: %s\n", prog, strerror(errno));
			return 0;
		}
		close(fd);
	}

	for (struct kvmdbg_test_suite *t = suites; t; t = t->next) {
		Suite *s;

		if (only && strcmp(only, t->name) != 0)
			continue;
		s = make_suite(t);
		if (!sr)
			sr = srunner_create(s);
		else
			srunner_add_suite(sr, s);
	}
	if (!sr) {
		fprintf(stderr, "%s: no suite selected\n", prog);
		return 1;
	}

	/*
	 * stdout carries Check's TAP (one line per test, the plan last), for
	 * `meson test` (protocol: 'tap') and the VM test beds. Where it is a
	 * pipe or a terminal, nothing else: the tests' own output and Check's
	 * progress go to stderr, and Check writes the TAP to a reopened copy
	 * of the original stdout. Into a file or a socket (which reopening
	 * would truncate, or cannot open) everything goes to stdout, as TAP
	 * readers skip what is not TAP.
	 */
	if (fstat(STDOUT_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) {
		fflush(stdout);
		tap_fd = dup(STDOUT_FILENO);
		if (tap_fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
			perror("dup");
			return 1;
		}
		setvbuf(stdout, NULL, _IOLBF, 0);
		snprintf(tap, sizeof(tap), "/proc/self/fd/%d", tap_fd);
		srunner_set_tap(sr, tap);
	} else {
		srunner_set_tap(sr, "-");
	}
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
