/* SPDX-License-Identifier: MIT */
/*
 * The static /init of the `linux` suite's initramfs: prints a marker with the
 * time since the kernel started (CLOCK_BOOTTIME) and the CPUs online, then ends the machine the
 * way the kernel command line asks (kvmdbg_end=..., which the kernel hands to
 * init as an environment variable), after printing, with kvmdbg_syms=1, the
 * addresses /proc/kallsyms gives the symbols the suite's gdb session needs
 * (Debian's packages ship no real System.map; with nokaslr they hold for the
 * next boot of the same kernel) and its own spin_stop's (a static binary, not
 * PIE: the same in every boot):
 *   poweroff (default)  reboot(RB_POWER_OFF): ACPI S5, kvmdbg-run exits 0
 *   reset               reboot(RB_AUTOBOOT): kvmdbg-run exits 3
 *   panic               init exits: "Attempted to kill init!", exits 4
 * Before it ends the machine, with kvmdbg_overlay=N it debugs itself
 * the way a debugger in the guest would, with the CPU's debug registers
 * (overlay_run below), and prints what it counted; with kvmdbg_spin=S it
 * keeps both CPUs busy for gdb's --vcpus 2 session (spin_run below); with
 * kvmdbg_getpid=N it makes N getpid syscalls (gdb's software breakpoint).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET: also when built without the project's flags */
#endif
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/hw_breakpoint.h>
#include <linux/perf_event.h>
#if defined(__aarch64__)
#include <elf.h> /* NT_ARM_HW_BREAK, NT_ARM_HW_WATCH */
#endif
#include <signal.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* arm64's kallsyms has no jiffies (a linker-script alias): jiffies_64 */
static const char *const wanted[] = { "start_kernel", "jiffies", "jiffies_64", "_stext", "_etext",
				      "__x64_sys_getppid", "__arm64_sys_getppid", "__arm64_sys_getpid",
				      "panic_timeout" };

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

#if defined(__x86_64__) || defined(__aarch64__)
/*
 * kvmdbg_overlay=N: /init as a debugger of its own, on the CPU's debug
 * registers, while gdb on the host may hold some of them through
 * kvmdbg-run. Two parts of 3 phases of N iterations each:
 *   perf    /init itself: perf_event_open(PERF_TYPE_BREAKPOINT) counters of
 *           an execution breakpoint on perf_fn() and a write watchpoint on
 *           perf_var, read() at each phase's end;
 *   ptrace  a forked child, traced: ptrace hardware breakpoints (DR0 on
 *           child_fn(), DR1 a write watchpoint on child_var, DR7 through
 *           PTRACE_POKEUSER of struct user's u_debugreg); /init counts the
 *           child's SIGTRAPs by the DR6 bit the kernel reports; on arm64
 *           breakpoint 0 on child_fn() and watchpoint 0 (stores) on
 *           child_var, by PTRACE_SETREGSET NT_ARM_HW_BREAK/NT_ARM_HW_WATCH,
 *           each SIGTRAP told apart by the address the kernel reports
 *           (si_addr), and stepped over the way a debugger does (the
 *           exception comes before the instruction completes: disarm,
 *           PTRACE_SINGLESTEP, arm again).
 * Each iteration starts with getppid() and ends with a write of
 * /proc/sys/kernel/panic (alternating values), made by the task whose
 * breakpoints are armed: the kernel paths the host's breakpoint and
 * watchpoint are on (test-linux.py), which also gives the host a debug exit
 * in that task's context before its hits (a host whose KVM does not exit on
 * the guest's debug register writes sees them at its next debug exit). The
 * host changes what it holds at the getppid() that starts a phase, so every
 * count has one expected value per phase: N; its last stop, at the last
 * write, comes after the guest's last hit.
 * Prints per counter "kvmdbg-overlay: PART KIND expected N N N saw A B C".
 */
enum { OV_PHASES = 3 };

/* 8-aligned: an arm64 watchpoint's address is a doubleword's, its
 * byte-address-select the 4 bytes from its start */
static volatile unsigned int perf_var __attribute__((aligned(8))),
	child_var __attribute__((aligned(8)));

/* noipa: a real call to a real address, which the breakpoint is on. */
__attribute__((noipa)) static void perf_fn(void)
{
	__asm__ volatile("" ::: "memory");
}

__attribute__((noipa)) static void child_fn(void)
{
	__asm__ volatile("" ::: "memory");
}

static int panic_fd = -1;
static unsigned int panic_writes;
static char panic_vals[2][4] = { "1\n", "0\n" }, panic_was[16];

/*
 * The host's two kernel paths: getppid() at the start of each iteration, a
 * write of the kernel.panic sysctl at its end: alternately two values the
 * first of which differs from the value it had (every write changes it: gdb's
 * watch reports only those).
 */
static void host_getppid(void)
{
	(void)syscall(SYS_getppid);
}

static void host_panic_write(void)
{
	const char *v = panic_vals[panic_writes++ & 1];

	if (panic_fd >= 0 && pwrite(panic_fd, v, 2, 0) != 2)
		perror("/proc/sys/kernel/panic");
}

static void panic_open(void)
{
	ssize_t r;

	panic_fd = open("/proc/sys/kernel/panic", O_RDWR);
	if (panic_fd < 0) {
		perror("/proc/sys/kernel/panic");
		return;
	}
	r = pread(panic_fd, panic_was, sizeof(panic_was) - 1, 0);
	panic_was[r > 0 ? r : 0] = '\0';
	if (atoi(panic_was) == 1)
		panic_vals[0][0] = '2';
}

/* After the host's last stop: the value it had. */
static void panic_close(void)
{
	size_t len = strlen(panic_was);

	if (panic_fd < 0)
		return;
	if (len && pwrite(panic_fd, panic_was, len, 0) != (ssize_t)len)
		perror("/proc/sys/kernel/panic");
	close(panic_fd);
}

static int perf_bp(unsigned int type, const volatile void *addr, unsigned int len)
{
	struct perf_event_attr a;

	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_BREAKPOINT;
	a.size = sizeof(a);
	a.bp_type = type;
	a.bp_addr = (uintptr_t)addr;
	a.bp_len = len;
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}

static uint64_t perf_count(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return UINT64_MAX;
	return v;
}

static void print_counts(const char *what, unsigned int n, const uint64_t *saw)
{
	printf("kvmdbg-overlay: %s expected", what);
	for (int p = 0; p < OV_PHASES; p++)
		printf(" %u", n);
	printf(" saw");
	for (int p = 0; p < OV_PHASES; p++)
		printf(" %lld", saw[p] == UINT64_MAX ? -1LL : (long long)saw[p]);
	printf("\n");
}

/* The counts of each phase from the running totals; UINT64_MAX unknown. */
static void phase_counts(const uint64_t *tot, uint64_t *out)
{
	uint64_t before = 0;

	for (int p = 0; p < OV_PHASES; p++) {
		out[p] = tot[p] == UINT64_MAX || before == UINT64_MAX ? UINT64_MAX
								       : tot[p] - before;
		before = tot[p];
	}
}

/* ex, wr: the hits of each phase, UINT64_MAX where unknown */
static int overlay_perf(unsigned int n, uint64_t *ex, uint64_t *wr)
{
	uint64_t tx[OV_PHASES], tw[OV_PHASES];
	/* x86: an execute breakpoint's length is sizeof(long); arm64: one
	 * instruction */
	int fx = perf_bp(HW_BREAKPOINT_X, (const volatile void *)(uintptr_t)perf_fn,
#if defined(__aarch64__)
			 HW_BREAKPOINT_LEN_4);
#else
			 sizeof(long));
#endif
	int fw = perf_bp(HW_BREAKPOINT_W, &perf_var, HW_BREAKPOINT_LEN_4);

	if (fx < 0 || fw < 0) {
		perror("perf_event_open(PERF_TYPE_BREAKPOINT)");
		if (fx >= 0)
			close(fx);
		if (fw >= 0)
			close(fw);
		return -1;
	}
	for (int p = 0; p < OV_PHASES; p++) {
		for (unsigned int i = 0; i < n; i++) {
			host_getppid();
			perf_fn();
			perf_var = i;
			host_panic_write();
		}
		tx[p] = perf_count(fx);
		tw[p] = perf_count(fw);
	}
	close(fx);
	close(fw);
	phase_counts(tx, ex);
	phase_counts(tw, wr);
	return 0;
}

static void child_loop(unsigned int n)
{
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
		_exit(1);
	raise(SIGSTOP); /* for /init to arm DR0, DR1 and DR7 */
	for (unsigned int i = 0; i < OV_PHASES * n; i++) {
		host_getppid();
		child_fn();
		child_var = i;
		host_panic_write();
		raise(SIGSTOP); /* one iteration done */
	}
	_exit(0);
}

#if defined(__x86_64__)
static int poke_dr(pid_t pid, int n, unsigned long v)
{
	return (int)ptrace(PTRACE_POKEUSER, pid,
			   (void *)(offsetof(struct user, u_debugreg) + n * sizeof(long)),
			   (void *)v);
}

/* DR0 on child_fn (execute, length 1), DR1 on child_var (write, 4 bytes) */
#define CHILD_POINTS "DR0, DR1 and DR7"

/* on: both armed; off: both disabled in DR7 */
static int arm_child(pid_t pid, int on)
{
	/* DR7: L0 (execute, length 1), L1 with R/W1 = 01 (write), LEN1 = 11 (4 bytes) */
	const unsigned long dr7 = 1UL | 1UL << 2 | 1UL << 20 | 3UL << 22;

	if (poke_dr(pid, 0, (unsigned long)(uintptr_t)child_fn) < 0 ||
	    poke_dr(pid, 1, (unsigned long)(uintptr_t)&child_var) < 0)
		return -1;
	return poke_dr(pid, 7, on ? dr7 : 0);
}

/* A SIGTRAP of the stopped child: which of its points DR6 names (the
 * breakpoint traps after the fetch, the watchpoint after the write: the
 * child just goes on). 0, or -1 to stop the loop. */
static int child_trap(pid_t pid, int *st, bool count, uint64_t *ex, uint64_t *wr)
{
	long dr6 = ptrace(PTRACE_PEEKUSER, pid,
			  (void *)(offsetof(struct user, u_debugreg) + 6 * sizeof(long)), NULL);

	(void)st;
	if (count) {
		*ex += (unsigned long)dr6 & 1;
		*wr += ((unsigned long)dr6 >> 1) & 1;
	}
	return 0;
}
#else
/*
 * struct user_hwdebug_state of the arm64 uapi's asm/ptrace.h (our own copy:
 * that header's PTRACE_* macros clash with glibc's sys/ptrace.h enum).
 */
struct hwdebug {
	uint32_t dbg_info; /* bits 0-7: the number of slots */
	uint32_t pad;
	struct {
		uint64_t addr;
		uint32_t ctrl;
		uint32_t pad;
	} dbg_regs[16];
};

/*
 * DBGBCR/DBGWCR as the kernel's ptrace reads them (ctrl): E (bit 0),
 * PMC/PAC (bits 1-2) 0b10 = EL0 only, watchpoints' LSC (bits 3-4) 0b10 =
 * stores, BAS (bits 5-12) the bytes from the address: 0xf, an A64
 * instruction (all a breakpoint takes) or the 4 bytes of child_var.
 */
enum {
	CTRL_E = 1,
	CTRL_EL0 = 2 << 1,
	CTRL_STORE = 2 << 3,
	CTRL_BAS4 = 0xf << 5,
};

/* slot 0 of NT_ARM_HW_BREAK or NT_ARM_HW_WATCH: addr, ctrl */
static int set_slot0(pid_t pid, int note, uintptr_t addr, uint32_t ctrl)
{
	struct hwdebug d;
	struct iovec iov = { &d, offsetof(struct hwdebug, dbg_regs) + sizeof(d.dbg_regs[0]) };

	memset(&d, 0, sizeof(d));
	d.dbg_regs[0].addr = addr;
	d.dbg_regs[0].ctrl = ctrl;
	return (int)ptrace(PTRACE_SETREGSET, pid, (void *)(uintptr_t)note, &iov);
}

/* on: both armed; off: both disarmed (E clear) */
static int arm_child(pid_t pid, int on)
{
	uint32_t e = on ? CTRL_E : 0;

	if (set_slot0(pid, NT_ARM_HW_BREAK, (uintptr_t)child_fn, e | CTRL_EL0 | CTRL_BAS4) < 0)
		return -1;
	return set_slot0(pid, NT_ARM_HW_WATCH, (uintptr_t)&child_var,
			 e | CTRL_EL0 | CTRL_STORE | CTRL_BAS4);
}

#define CHILD_POINTS "breakpoint 0 and watchpoint 0"

/* A SIGTRAP of the stopped child: which of its points si_addr names; then
 * over the instruction with both disarmed (a breakpoint stops before it, a
 * watchpoint before the access), armed again. 0, 1 for a SIGTRAP not of a
 * hardware point, -1 to stop the loop. */
static int child_trap(pid_t pid, int *st, bool count, uint64_t *ex, uint64_t *wr)
{
	siginfo_t si;

	if (ptrace(PTRACE_GETSIGINFO, pid, NULL, &si) < 0)
		return 0;
	if (si.si_code != TRAP_HWBKPT)
		return 1;
	if (count) {
		*ex += si.si_addr == (void *)(uintptr_t)child_fn;
		*wr += si.si_addr == (void *)&child_var;
	}
	if (arm_child(pid, 0) < 0 || ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) < 0 ||
	    waitpid(pid, st, 0) != pid || !WIFSTOPPED(*st) || arm_child(pid, 1) < 0) {
		perror("ptrace: stepping over a hit");
		return -1;
	}
	return 0;
}
#endif

/* /init's child runs OV_PHASES * n iterations with its own hardware
 * breakpoint and watchpoint armed by ptrace (as a debugger inside the guest
 * does): ex, wr get the hits of each phase. */
static int overlay_ptrace(unsigned int n, uint64_t *ex, uint64_t *wr)
{
	unsigned int done = 0, strays = 0, ph;
	int st, r;
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		return -1;
	}
	if (pid == 0)
		child_loop(n);
	if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st) || arm_child(pid, 1) < 0) {
		perror("ptrace: arming " CHILD_POINTS " of the child");
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		return -1;
	}
	for (;;) {
		if (ptrace(PTRACE_CONT, pid, NULL, NULL) < 0 || waitpid(pid, &st, 0) != pid)
			break;
		if (!WIFSTOPPED(st))
			break;
		if (WSTOPSIG(st) == SIGSTOP) {
			done++;
			continue;
		}
		if (WSTOPSIG(st) != SIGTRAP)
			continue;
		ph = done < OV_PHASES * n ? done / n : 0;
		r = child_trap(pid, &st, done < OV_PHASES * n, &ex[ph], &wr[ph]);
		if (r < 0)
			break;
		strays += r;
	}
	if (strays)
		fprintf(stderr, "ptrace: %u SIGTRAPs not of a hardware point\n", strays);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || done != OV_PHASES * n) {
		fprintf(stderr, "ptrace: the child ended after %u iterations (status 0x%x)\n", done,
			st);
		if (!WIFEXITED(st) && !WIFSIGNALED(st)) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
		}
	}
	return 0;
}

static void overlay_run(unsigned int n)
{
	uint64_t c[4][OV_PHASES];

	panic_open();
	printf("kvmdbg-overlay: begin, %u iterations per phase\n", n);
	fflush(stdout);
	memset(c, 0, sizeof(c));
	if (overlay_perf(n, c[0], c[1]) < 0)
		memset(c[0], 0xff, 2 * sizeof(c[0]));
	if (overlay_ptrace(n, c[2], c[3]) < 0)
		memset(c[2], 0xff, 2 * sizeof(c[2]));
	panic_close();
	/* only now, after the last hit: nothing kvmdbg-run says about them
	 * comes in the middle of these lines */
	print_counts("perf exec", n, c[0]);
	print_counts("perf write", n, c[1]);
	print_counts("ptrace exec", n, c[2]);
	print_counts("ptrace write", n, c[3]);
	printf("kvmdbg-overlay: end\n");
}
#endif

/*
 * kvmdbg_spin=S: /init busy on every CPU for gdb's multi-vCPU session
 * (test-linux.py): a child pinned to CPU 1, /init itself to CPU 0; /init
 * calls getppid() once (the host's breakpoint there: /init runs, both CPUs
 * are online), then both loop in user mode until gdb sets spin_stop (its
 * address printed by kvmdbg_syms=1) in each, or S seconds pass.
 */
static volatile int spin_stop;

static void spin_until(double secs)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while (!spin_stop && (double)(t.tv_sec - t0.tv_sec) +
				     (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
}

static int pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static void spin_run(double secs)
{
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		if (pin_to(1) < 0)
			perror("sched_setaffinity(CPU 1)");
		spin_until(secs);
		_exit(0);
	}
	if (pid < 0 || pin_to(0) < 0)
		perror(pid < 0 ? "fork" : "sched_setaffinity(CPU 0)");
	(void)syscall(SYS_getppid);
	spin_until(secs);
	printf("kvmdbg-spin: %s\n", spin_stop ? "stopped by the debugger" : "timed out");
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
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
	if (getenv("kvmdbg_syms")) {
		print_symbols();
		printf("kvmdbg-sym: spin_stop %p\n", (void *)&spin_stop);
	}
	if (getenv("kvmdbg_spin"))
		spin_run(strtod(getenv("kvmdbg_spin"), NULL));
#if defined(__x86_64__) || defined(__aarch64__)
	if (getenv("kvmdbg_overlay")) {
		unsigned long n = strtoul(getenv("kvmdbg_overlay"), NULL, 0);

		if (n > 0 && n < 100000)
			overlay_run((unsigned int)n);
	}
#endif
	if (getenv("kvmdbg_getpid")) {
		/* for gdb's software breakpoint on the getpid syscall: after
		 * main's getpid() above, N more, each a real syscall (not
		 * glibc's getpid(), whatever it may cache) */
		unsigned long n = strtoul(getenv("kvmdbg_getpid"), NULL, 0);

		for (unsigned long i = 0; i < n; i++)
			(void)syscall(SYS_getpid);
		printf("kvmdbg-getpid: %lu calls\n", n);
	}
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
