/* SPDX-License-Identifier: MIT */
/*
 * The static /init of the `linux` suite's initramfs: prints a marker with the
 * time since the kernel started (CLOCK_BOOTTIME) and the CPUs online, then ends the machine the
 * way the kernel command line asks (kvmdbg_end=..., which the kernel hands to
 * init as an environment variable), after printing, with kvmdbg_syms=1, the
 * addresses /proc/kallsyms gives the symbols the suite's gdb session needs
 * (Debian's packages ship no real System.map; with nokaslr they hold for the
 * next boot of the same kernel):
 *   poweroff (default)  reboot(RB_POWER_OFF): ACPI S5, kvmdbg-run exits 0
 *   reset               reboot(RB_AUTOBOOT): kvmdbg-run exits 3
 *   panic               init exits: "Attempted to kill init!", exits 4
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* arm64's kallsyms has no jiffies (a linker-script alias): jiffies_64 */
static const char *const wanted[] = { "start_kernel", "jiffies", "jiffies_64", "_stext",
				      "_etext" };

/* The CPUs online: the cpuN lines of /proc/stat. */
static int online_cpus(void)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/stat", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "cpu", 3) == 0 && line[3] >= '0' && line[3] <= '9')
			n++;
	fclose(f);
	return n;
}

static void print_symbols(void)
{
	char line[512], name[256];
	unsigned long long addr;
	char type;
	FILE *f;

	f = fopen("/proc/kallsyms", "r");
	if (!f) {
		perror("/proc/kallsyms");
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3 || strchr(line, '['))
			continue;
		for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
			if (strcmp(name, wanted[i]) == 0)
				printf("kvmdbg-sym: %s 0x%llx\n", name, addr);
	}
	fclose(f);
}

int main(void)
{
	const char *end = getenv("kvmdbg_end");
	struct timespec ts;

	if (getpid() != 1) {
		fprintf(stderr, "this is the initramfs' /init: it runs as PID 1 only\n");
		return 2;
	}
	clock_gettime(CLOCK_BOOTTIME, &ts);
	if (mount("proc", "/proc", "proc", 0, NULL) < 0)
		perror("mount /proc");
	printf("kvmdbg-linux: /init at %ld.%03ld s, %d CPUs online\n", (long)ts.tv_sec,
	       ts.tv_nsec / 1000000, online_cpus());
	if (getenv("kvmdbg_syms"))
		print_symbols();
	fflush(stdout);
	tcdrain(STDOUT_FILENO); /* the UART sends it on its THRE interrupts: wait for them */
	sync();
	if (end && strcmp(end, "panic") == 0)
		return 0;
	if (end && strcmp(end, "reset") == 0)
		reboot(RB_AUTOBOOT);
	else
		reboot(RB_POWER_OFF);
	perror("reboot");
	return 1;
}
