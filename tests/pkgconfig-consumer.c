/* SPDX-License-Identifier: MIT */
/*
 * An outside program built by tests/install-test.sh against the installed
 * copy of libkvmdbg, with nothing but `pkg-config --cflags --libs kvmdbg`.
 * It prints the path of the libkvmdbg it really loaded, so the script can
 * check that it is the installed one.
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <kvmdbg/kvmdbg.h>

static int failed;

#define CHECK(cond)                                                                \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "pkgconfig-consumer: %s:%d: check failed: %s\n", \
				__FILE__, __LINE__, #cond);                       \
			failed++;                                                  \
		}                                                                  \
	} while (0)

static int streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

int main(void)
{
	struct kvmdbg_caps caps;
	Dl_info dli;
	int fd;

	/* Which shared object provides the API? */
	if (dladdr((void *)kvmdbg_probe, &dli) && dli.dli_fname)
		printf("library: %s\n", dli.dli_fname);
	else
		CHECK(!"dladdr(kvmdbg_probe)");

	/* Names: never NULL for known values, NULL for unknown feature bits. */
	CHECK(streq(kvmdbg_stop_name(KVMDBG_STOP_STEP), "step"));
	CHECK(streq(kvmdbg_stop_name(KVMDBG_STOP_BREAK), "break"));
	CHECK(kvmdbg_stop_name(KVMDBG_STOP_WATCH) != NULL);
	CHECK(kvmdbg_stop_name(KVMDBG_STOP_GUEST) != NULL);
	CHECK(kvmdbg_stop_name(KVMDBG_STOP_NONE) != NULL);
	CHECK(kvmdbg_stop_name((enum kvmdbg_stop)1234) != NULL);
	CHECK(streq(kvmdbg_type_name(KVMDBG_BREAK_SW), "sw-break"));
	CHECK(streq(kvmdbg_type_name(KVMDBG_BREAK_HW), "hw-break"));
	CHECK(streq(kvmdbg_type_name(KVMDBG_WATCH_WRITE), "watch-write"));
	CHECK(kvmdbg_type_name((enum kvmdbg_type)1234) != NULL);
	CHECK(streq(kvmdbg_feature_name(KVMDBG_FEAT_STEP), "step"));
	CHECK(streq(kvmdbg_feature_name(KVMDBG_FEAT_HW_BREAK), "hw_break"));
	CHECK(kvmdbg_feature_name(1ULL << 40) == NULL);

	/* Argument checks and NULL frees. */
	CHECK(kvmdbg_probe(-1, NULL) == -EINVAL);
	memset(&caps, 0, sizeof(caps));
	caps.sz = sizeof(caps);
	CHECK(kvmdbg_probe(-1, &caps) == -EBADF);
	CHECK(kvmdbg_vm_insert(NULL, KVMDBG_BREAK_HW, 0x1000, 1) == -EINVAL);
	CHECK(kvmdbg_vcpu_prepare(NULL) == -EINVAL);
	kvmdbg_vcpu_free(NULL);
	kvmdbg_vm_free(NULL);

	/* The real thing, where there is a KVM. */
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		int r = kvmdbg_probe(fd, &caps);

		CHECK(r == 0);
		if (r == 0) {
#if defined(__x86_64__)
			CHECK(caps.arch == KVMDBG_ARCH_X86_64);
#elif defined(__aarch64__)
			CHECK(caps.arch == KVMDBG_ARCH_ARM64);
#endif
			printf("kvmdbg_probe(/dev/kvm): arch %d, %u hw breakpoints, %u hw watchpoints\n",
			       (int)caps.arch, caps.hw_breakpoints, caps.hw_watchpoints);
		}
		close(fd);
	} else {
		printf("no /dev/kvm (%s): kvmdbg_probe on it not tried\n", strerror(errno));
	}

	printf("pkgconfig-consumer: %s\n", failed ? "FAILED" : "ok");
	return failed ? 1 : 0;
}
