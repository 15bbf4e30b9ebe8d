/* SPDX-License-Identifier: MIT */
/*
 * An outside VMM-to-be of tests/release: built against libkvmdbg the way a
 * distribution or build system hands it over (a static link through
 * `pkg-config --static`, a Meson subproject, the Debian packages), with
 * nothing but <kvmdbg/kvmdbg.h>. It checks the version API, the names,
 * and, where this machine has a /dev/kvm, the probe; it prints one line
 * per check so the scripts can show what ran.
 *
 * usage: consumer EXPECTED_VERSION
 */
#define _GNU_SOURCE /* O_CLOEXEC under -std=c11 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <kvmdbg/kvmdbg.h>

#if !KVMDBG_CHECK_VERSION(0, 1, 0)
#error "these headers are older than 0.1.0, the first with the version API"
#endif
#if KVMDBG_CHECK_VERSION(KVMDBG_VERSION_MAJOR, KVMDBG_VERSION_MINOR, KVMDBG_VERSION_MICRO + 1)
#error "KVMDBG_CHECK_VERSION() accepts a version newer than the headers"
#endif

static int failed;

static void check(int ok, const char *what)
{
	printf("consumer: %s: %s\n", what, ok ? "ok" : "FAILED");
	if (!ok)
		failed++;
}

int main(int argc, char **argv)
{
	char hdr[32];
	const char *lib = kvmdbg_version();
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: consumer EXPECTED_VERSION\n");
		return 2;
	}
	snprintf(hdr, sizeof(hdr), "%d.%d.%d", KVMDBG_VERSION_MAJOR, KVMDBG_VERSION_MINOR,
		 KVMDBG_VERSION_MICRO);
	printf("consumer: headers %s, library %s\n", KVMDBG_VERSION_STRING, lib ? lib : "(null)");
	check(strcmp(hdr, KVMDBG_VERSION_STRING) == 0, "KVMDBG_VERSION_STRING matches MAJOR.MINOR.MICRO");
	check(strcmp(KVMDBG_VERSION_STRING, argv[1]) == 0, "the headers are the expected version");
	check(lib && strcmp(lib, argv[1]) == 0, "kvmdbg_version() is the expected version");
	check(strcmp(kvmdbg_stop_name(KVMDBG_STOP_BREAK), "break") == 0 &&
		      strcmp(kvmdbg_type_name(KVMDBG_WATCH_WRITE), "watch-write") == 0 &&
		      kvmdbg_feature_name(KVMDBG_FEAT_STEP) != NULL,
	      "names");
	check(kvmdbg_probe(-1, NULL) == -EINVAL, "kvmdbg_probe(-1, NULL) is -EINVAL");

	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("consumer: /dev/kvm: %s: the probe of a real KVM not run\n", strerror(errno));
	} else {
		struct kvmdbg_caps caps = { .sz = sizeof(caps) };
		int r = kvmdbg_probe(fd, &caps);

		check(r == 0 && caps.arch != KVMDBG_ARCH_UNKNOWN, "kvmdbg_probe(/dev/kvm)");
		close(fd);
	}
	printf("consumer: %s\n", failed ? "FAILED" : "ok");
	return failed ? 1 : 0;
}
