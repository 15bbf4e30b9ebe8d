/* SPDX-License-Identifier: MIT */
/*
 * A main() for the fuzz targets where libFuzzer is not available (gcc
 * builds): runs every file given (or every file of every directory given),
 * then KVMDBG_FUZZ_RANDOM (default 2000) pseudo-random inputs, through
 * LLVMFuzzerTestOneInput(). So the seed corpus and the invariants are
 * checked in every build; scripts/harden runs the real fuzzers.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz-input.h"

static unsigned long runs;

static void run_file(const char *path)
{
	static uint8_t buf[1 << 16];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		exit(1);
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	runs++;
}

static void run_path(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;

	if (stat(path, &st)) {
		perror(path);
		exit(1);
	}
	if (!S_ISDIR(st.st_mode)) {
		run_file(path);
		return;
	}
	d = opendir(path);
	if (!d) {
		perror(path);
		exit(1);
	}
	while ((e = readdir(d))) {
		char p[4096];

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		run_path(p);
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	const char *env = getenv("KVMDBG_FUZZ_RANDOM");
	unsigned long random_runs = env ? strtoul(env, NULL, 0) : 2000;
	uint64_t x = 0x66757a7a;
	static uint8_t buf[4096];
	unsigned long files;

	for (int i = 1; i < argc; i++)
		run_path(argv[i]);
	files = runs;
	for (unsigned long r = 0; r < random_runs; r++) {
		size_t n = (size_t)(r % sizeof(buf));

		for (size_t i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = (uint8_t)x;
		}
		LLVMFuzzerTestOneInput(buf, n);
		runs++;
	}
	printf("%s: %lu corpus inputs, %lu random inputs, no invariant failed\n", argv[0], files,
	       runs - files);
	return 0;
}
