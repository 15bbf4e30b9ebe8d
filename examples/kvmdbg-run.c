/* SPDX-License-Identifier: MIT */
/*
 * kvmdbg-run: a minimal x86-64 VMM with a built-in guest, debugged through
 * libkvmdbg's public API and nothing else.
 *
 * It creates its own VM (memory, identity page tables, GDT, long mode at
 * CPL0), copies the demo guest of demo-guest.S (or a flat binary or ELF
 * guest, or a real-mode firmware image with --flat) into it and drives it
 * with the run loop documented in <kvmdbg/kvmdbg.h>: kvmdbg_vcpu_prepare(),
 * KVM_RUN, kvmdbg_vcpu_handle_exit() on KVM_EXIT_DEBUG.
 *
 * Each vCPU runs in its own thread; the main thread is the controller
 * (scripted mode, or libkvmdbg-gdb's server with --gdb). All-stop: when a
 * vCPU stops, the others are kicked out of KVM_RUN (immediate_exit and a
 * signal) and park until the controller resumes them.
 *
 * Exit status: 0 the guest ran to completion with the expected counter,
 * 1 a runtime failure (no /dev/kvm, an ioctl or library call failed, the
 * guest crashed or timed out), 2 bad arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <elf.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <linux/kvm.h>

#include <kvmdbg/kvmdbg.h>

#include <kvmdbg/gdb-kvm.h>

#include "linux.h"

#define PROG "kvmdbg-run"

/* Guest physical layout; guest-virtual addresses are identical. */
#define MEM_SIZE   guest_mem_size /* 4 MiB; --kernel: --mem */
static unsigned long long guest_mem_size = 4ULL << 20;
#define GDT_GPA    0x1000ULL
#define TSS_GPA    0x1100ULL
#define PML4_GPA   0x2000ULL
#define PDPT_GPA   0x3000ULL
#define PD_GPA     0x4000ULL
#define CODE_GPA   0x100000ULL
#define DATA_GPA   0x200000ULL /* the 64-bit counter (vCPU n: + 8 * n) */
#define STACK_TOP  0x300000ULL /* vCPU n: - 0x10000 * n */
#define EXIT_PORT  0xf4        /* x86: `outl %eax, $0xf4` ends the run */
#define EXIT_MMIO  0x10000000ULL /* arm64: a 32-bit store here ends the run */
#define FLAT_GPA   0x100000ULL /* a --flat image ends here (like QEMU's -bios) */
#define FLAT_MAX   (256ULL << 10)

#define MAX_POINTS 8
#define MAX_VCPUS  16

/* The guest, assembled from demo-guest.S into this binary's rodata. */
extern const unsigned char demo_guest_start[], demo_guest_end[];
extern const unsigned char demo_guest_loop[], demo_guest_bump[], demo_guest_done[];

struct symbol {
	const char *name;
	uint64_t gva;
	const char *what;
};

/* Code symbols first, in address order, then the data symbol. */
enum { SYM_START, SYM_LOOP, SYM_DONE, SYM_BUMP, SYM_COUNTER, NR_SYMBOLS };
static struct symbol symbols[NR_SYMBOLS];

static void init_symbols(void)
{
	const struct symbol s[NR_SYMBOLS] = {
		{ "start", CODE_GPA, "guest entry point" },
		{ "loop", CODE_GPA + (uint64_t)(demo_guest_loop - demo_guest_start),
		  "top of the loop: call bump" },
		{ "done", CODE_GPA + (uint64_t)(demo_guest_done - demo_guest_start),
		  "after the loop: out to port 0xf4" },
		{ "bump", CODE_GPA + (uint64_t)(demo_guest_bump - demo_guest_start),
		  "the function that increments the counter" },
		{ "counter", DATA_GPA, "the 64-bit counter (data)" },
	};

	memcpy(symbols, s, sizeof(symbols));
}

struct point {
	enum kvmdbg_type type;
	uint64_t addr, len;
	bool inserted;
};

static struct options {
	bool probe, json, force, overlay, timeout_given, step_given;
	unsigned long step, max_stops, loops, timeout;
	unsigned int npoints, vcpus;
	struct point points[MAX_POINTS];
	const char *gdb;    /* --gdb HOST:PORT */
	const char *flat;   /* --flat IMAGE: real-mode firmware */
	const char *guest;  /* GUEST: flat long-mode binary or ELF */
	struct linux_opts lx; /* --kernel, --initrd, --append, --mem */
} opt = {
	.step = 4,
	.max_stops = 3,
	.loops = 10,
	.timeout = 10,
	.vcpus = 1,
};

/* What guest-virtual to guest-physical translation needs: one vCPU's paging
 * state (kvmdbg_gdb_translate), read from it when an access needs it. */
struct mmu {
	struct kvmdbg_gdb_mmu regs;
};

/*
 * A software breakpoint's guest-physical place: the bytes under it, found
 * through the page tables of one vCPU when it is first inserted, and used for
 * every later write at its address (the INT3/BRK itself, the step past it,
 * the restore at removal), whatever tables the vCPU doing that runs with.
 */
struct pin {
	uint64_t gva, gpa;
	unsigned int refs; /* the library's references: kvmdbg_vm_insert - kvmdbg_vm_remove */
};

#if defined(__x86_64__)
#define EM_HOST EM_X86_64
#define BREAK_KIND 1 /* gdb's kind for x86 breakpoints */
#define SW_LEN     1 /* INT3 */
#elif defined(__aarch64__)
#define EM_HOST EM_AARCH64
#define BREAK_KIND 4 /* gdb's kind: a 4-byte instruction */
#define SW_LEN     4 /* BRK */
/* A core register for KVM_{GET,SET}_ONE_REG. */
#define ARM64_CORE(x) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
		       KVM_REG_ARM_CORE_REG(x))
#else
#error "kvmdbg-run: x86-64 or arm64 hosts only"
#endif

/* Why a vCPU thread stopped running. */
enum vres { VR_NONE, VR_EVENT, VR_FINISHED, VR_ERROR, VR_KICKED, VR_TIMEOUT };

struct vcpu {
	struct vmm *m;
	int id, fd;
	struct kvm_run *run;
	struct kvmdbg_vcpu *dbg;
	pthread_t thread;
	bool thread_started;
	/* under m->lock */
	bool go, step, running, pending, finished;
	enum vres result;
	struct kvmdbg_event ev;      /* the pending event (VR_EVENT) */
	uint32_t exit_value;
	bool step_set;               /* what the library was told last */
};

struct vmm {
	int kvm_fd, vm_fd;
	size_t run_size;
	uint8_t *mem;
	uint64_t features;
	struct kvmdbg_caps caps;
	struct kvmdbg_vm *dbg;
	unsigned int nvcpus;
	struct vcpu vcpus[MAX_VCPUS];
	bool builtin;                /* the demo guest: symbols, counters */
	struct linux_vm *lx;         /* --kernel: the Linux machine (linux.h) */
	uint64_t entry;
	bool real_mode;
	unsigned int nstops;
	/* all-stop control */
	pthread_mutex_t lock;
	pthread_cond_t cond;         /* vCPUs wait for go; the controller for nrunning == 0 */
	unsigned int nrunning;
	int stopping;                /* atomic: a vCPU stopped, the others leave KVM_RUN */
	bool quit, immediate;
	int first;                   /* the vCPU that stopped first */
	int notify[2];               /* readable when nrunning dropped to 0 */
	/* software breakpoints' guest-physical places (under pin_lock, taken
	 * inside the library's lock by its memory callbacks, never around a
	 * library call) */
	pthread_mutex_t pin_lock;
	struct pin *pins;
	size_t npins, pins_cap;
};

/*
 * Whose guest-virtual addresses the library's memory callbacks mean. The
 * callbacks carry no vCPU (struct kvmdbg_mem_ops: a VM-wide context only), so
 * kvmdbg-run says it per thread around its library calls: a vCPU thread is
 * its own vCPU (kvmdbg_vcpu_prepare's step past a software breakpoint,
 * kvmdbg_vcpu_handle_exit's look at the instruction that trapped); the
 * controller thread names the vCPU whose tables a software breakpoint is
 * inserted with (gdb's selected thread, vCPU 0 in the scripted mode).
 */
static __thread int mem_vcpu = -1;
static __thread bool mem_controller;

static volatile sig_atomic_t timed_out;
static struct vmm *volatile alarm_vmm;

__attribute__((format(printf, 1, 2))) static void err(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Informational text: stdout, or stderr with --json (stdout is JSON only). */
__attribute__((format(printf, 1, 2))) static void info(const char *fmt, ...)
{
	FILE *f = opt.json ? stderr : stdout;
	va_list ap;

	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

/* ---- arguments ---------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [OPTION]... [GUEST]\n"
		"A minimal x86-64 / arm64 VMM that debugs a guest with libkvmdbg.\n"
		"\n"
		"Without options: probe the host, put a hardware breakpoint on the built-in\n"
		"guest's bump(), continue to it 3 times, single-step 4 instructions, remove\n"
		"the breakpoint, run the guest to completion and print its counter.\n"
		"\n"
		"GUEST is an ELF executable (its PT_LOAD segments at their physical\n"
		"addresses, started at its entry point) or a flat binary (loaded and started\n"
		"at 0x100000) with 4 MiB of memory: on x86-64 in 64-bit long mode at CPL0\n"
		"with identity page tables, ending with `outl %%eax, $0xf4` or `hlt`; on\n"
		"arm64 at EL1 with the MMU off, ending with a 32-bit store to 0x10000000.\n"
		"Without GUEST: the built-in demo guest.\n"
		"\n"
		"  --probe              print advertised vs verified capabilities and exit\n"
		"  --hbreak ADDR|SYM    hardware execution breakpoint (repeatable)\n"
		"  --break ADDR|SYM     software breakpoint (repeatable), in vCPU 0's page\n"
		"                       tables\n"
		"  --watch ADDR|SYM[:LEN[:w|r|rw]]  watchpoint on LEN bytes (default 8) for\n"
		"                       writes (w, default), reads (r) or both (rw)\n"
		"  --step N             single-step N instructions after the stops (default 4)\n"
		"  --max-stops N        breakpoint/watchpoint stops to report before stepping\n"
		"                       (default 3)\n"
		"  --loops N            iterations of the built-in guest's loop (default 10)\n"
		"  --vcpus N            run N vCPUs (1-%d), each in a thread, all-stop; the\n"
		"                       built-in guest gives each its own counter and stack\n"
		"  --overlay            KVMDBG_OVERLAY_GUEST: the guest's own debug registers\n"
		"                       keep working beside the debugger's\n"
		"  --timeout SEC        give up if the guest runs longer (default 10, 0: never;\n"
		"                       with --gdb: the whole session, default never)\n"
		"  --force              use features the verified probe says do not work\n"
		"  --json               one JSON object per line on stdout: one per stop\n"
		"                       (kind, type, pc, addr, len, data_addr, vcpu, hits,\n"
		"                       symbol), then {\"kind\":\"exit\",...}; other text on stderr\n"
		"  --gdb [HOST:]PORT    serve the GDB remote protocol to one client on\n"
		"                       HOST:PORT (default host 127.0.0.1; numeric, or\n"
		"                       localhost) instead of the scripted run: `target\n"
		"                       remote HOST:PORT` in gdb; vCPUs are threads,\n"
		"                       addresses are guest-virtual, in the selected\n"
		"                       thread's page tables (a software breakpoint stays\n"
		"                       in the page they mapped when it was inserted)\n"
		"  --gdb /DEVICE        the same over a serial line or a virtio-serial port\n"
		"                       (an absolute path; the VM test beds use this)\n"
		"  --flat IMAGE         a real-mode firmware image instead of GUEST, loaded\n"
		"                       like QEMU's -bios: it ends at 1 MiB (a 64 KiB image at\n"
		"                       0xf0000), started at the reset vector f000:fff0\n"
		"  --kernel IMAGE       boot a Linux kernel instead of GUEST\n"
		"%s"
		"  --initrd FILE        with --kernel: the initramfs\n"
		"  --append CMDLINE     with --kernel: the kernel command line\n"
		"  --mem SIZE           with --kernel: RAM, e.g. 512M or 1G (default 256M,\n"
		"                       32M to 3G)\n"
		"  --help               show this help\n"
		"\n"
		"ADDR is a guest address (C syntax: 0x100020), SYM is one of the built-in\n"
		"guest's symbols, optionally with +OFFSET:\n", MAX_VCPUS, linux_help);
	for (size_t i = 0; i < NR_SYMBOLS; i++)
		fprintf(f, "  %-8s 0x%-8" PRIx64 " %s\n", symbols[i].name, symbols[i].gva,
			symbols[i].what);
	fprintf(f, "\nExit status: 0 success, 1 runtime failure, 2 bad arguments.\n"
		"With --kernel: 0 the guest powered off (x86 ACPI S5, arm64 PSCI SYSTEM_OFF),\n"
		"3 it reset, 4 it panicked (\"Kernel panic - not syncing\" on its console),\n"
		"5 --timeout, 1 a failure.\n"
		"With --kernel, --timeout and --step default to 0.\n");
}

__attribute__((format(printf, 1, 2), noreturn)) static void bad_args(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (try --help)\n", stderr);
	exit(2);
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

static unsigned long parse_count(const char *name, const char *s, unsigned long max)
{
	uint64_t v;

	if (!parse_u64(s, &v) || v > max)
		bad_args("--%s: '%s' is not a number from 0 to %lu", name, s, max);
	return (unsigned long)v;
}

/* ADDR, SYM or SYM+OFFSET. */
static bool parse_location(const char *s, uint64_t *addr)
{
	const char *plus = strchr(s, '+');
	size_t n = plus ? (size_t)(plus - s) : strlen(s);
	uint64_t off = 0;

	for (size_t i = 0; i < NR_SYMBOLS; i++) {
		if (strlen(symbols[i].name) != n || strncmp(symbols[i].name, s, n) != 0)
			continue;
		if (plus && !parse_u64(plus + 1, &off))
			return false;
		*addr = symbols[i].gva + off;
		return true;
	}
	return parse_u64(s, addr);
}

static void add_point(const char *optname, enum kvmdbg_type type, const char *arg)
{
	struct point *p;
	char buf[128];
	char *colon;

	if (opt.npoints == MAX_POINTS)
		bad_args("--%s: at most %d breakpoints and watchpoints", optname, MAX_POINTS);
	if (strlen(arg) >= sizeof(buf))
		bad_args("--%s: argument too long", optname);
	strcpy(buf, arg);
	p = &opt.points[opt.npoints];
	p->type = type;
	p->len = type == KVMDBG_BREAK_HW || type == KVMDBG_BREAK_SW ? BREAK_KIND : 8;
	colon = strchr(buf, ':');
	if (colon) {
		char *mode;

		if (type != KVMDBG_WATCH_WRITE)
			bad_args("--%s: '%s': a length is only for --watch", optname, arg);
		*colon = '\0';
		mode = strchr(colon + 1, ':');
		if (mode) {
			*mode++ = '\0';
			if (strcmp(mode, "w") == 0)
				p->type = KVMDBG_WATCH_WRITE;
			else if (strcmp(mode, "r") == 0)
				p->type = KVMDBG_WATCH_READ;
			else if (strcmp(mode, "rw") == 0)
				p->type = KVMDBG_WATCH_ACCESS;
			else
				bad_args("--%s: '%s': the access is w, r or rw", optname, arg);
		}
		if (!parse_u64(colon + 1, &p->len) || p->len == 0)
			bad_args("--%s: '%s': bad length", optname, arg);
	}
	if (!parse_location(buf, &p->addr))
		bad_args("--%s: '%s' is neither an address nor a guest symbol", optname, arg);
	opt.npoints++;
}

static void parse_args(int argc, char **argv)
{
	enum { O_PROBE = 256, O_HBREAK, O_BREAK, O_WATCH, O_STEP, O_MAX_STOPS, O_LOOPS,
	       O_TIMEOUT, O_FORCE, O_JSON, O_VCPUS, O_OVERLAY, O_GDB, O_FLAT, O_KERNEL,
	       O_INITRD, O_CMDLINE, O_MEM };
	static const struct option longopts[] = {
		{ "probe", no_argument, NULL, O_PROBE },
		{ "hbreak", required_argument, NULL, O_HBREAK },
		{ "break", required_argument, NULL, O_BREAK },
		{ "watch", required_argument, NULL, O_WATCH },
		{ "step", required_argument, NULL, O_STEP },
		{ "max-stops", required_argument, NULL, O_MAX_STOPS },
		{ "loops", required_argument, NULL, O_LOOPS },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "force", no_argument, NULL, O_FORCE },
		{ "json", no_argument, NULL, O_JSON },
		{ "vcpus", required_argument, NULL, O_VCPUS },
		{ "overlay", no_argument, NULL, O_OVERLAY },
		{ "gdb", required_argument, NULL, O_GDB },
		{ "flat", required_argument, NULL, O_FLAT },
		{ "kernel", required_argument, NULL, O_KERNEL },
		{ "initrd", required_argument, NULL, O_INITRD },
		{ "append", required_argument, NULL, O_CMDLINE },
		{ "mem", required_argument, NULL, O_MEM },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case O_PROBE:
			opt.probe = true;
			break;
		case O_HBREAK:
			add_point("hbreak", KVMDBG_BREAK_HW, optarg);
			break;
		case O_BREAK:
			add_point("break", KVMDBG_BREAK_SW, optarg);
			break;
		case O_WATCH:
			add_point("watch", KVMDBG_WATCH_WRITE, optarg);
			break;
		case O_STEP:
			opt.step = parse_count("step", optarg, 1000000);
			opt.step_given = true;
			break;
		case O_MAX_STOPS:
			opt.max_stops = parse_count("max-stops", optarg, 1000000);
			break;
		case O_LOOPS:
			/* The x86 guest counts in %esi: 32 bits. */
			opt.loops = parse_count("loops", optarg, UINT32_MAX);
			if (!opt.loops)
				bad_args("--loops: must be at least 1");
			break;
		case O_TIMEOUT:
			opt.timeout = parse_count("timeout", optarg, 86400);
			opt.timeout_given = true;
			break;
		case O_VCPUS:
			opt.vcpus = (unsigned int)parse_count("vcpus", optarg, MAX_VCPUS);
			if (!opt.vcpus)
				bad_args("--vcpus: must be at least 1");
			break;
		case O_OVERLAY:
			opt.overlay = true;
			break;
		case O_GDB:
			opt.gdb = optarg;
			break;
		case O_FLAT:
			opt.flat = optarg;
			break;
		case O_KERNEL:
			opt.lx.kernel = optarg;
			break;
		case O_INITRD:
			opt.lx.initrd = optarg;
			break;
		case O_CMDLINE:
			opt.lx.append = optarg;
			break;
		case O_MEM:
			if (!linux_parse_size(optarg, &opt.lx.mem_size) ||
			    opt.lx.mem_size < LINUX_MEM_MIN || opt.lx.mem_size > LINUX_MEM_MAX)
				bad_args("--mem '%s': a size from 32M to 3G", optarg);
			break;
		case O_FORCE:
			opt.force = true;
			break;
		case O_JSON:
			opt.json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			bad_args("option '%s' needs an argument", argv[optind - 1]);
		default:
			bad_args("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		opt.guest = argv[optind++];
	if (optind < argc)
		bad_args("unexpected argument '%s'", argv[optind]);
	if (opt.guest && opt.flat)
		bad_args("either GUEST or --flat IMAGE, not both");
	if (opt.lx.kernel && (opt.guest || opt.flat))
		bad_args("either --kernel IMAGE or a GUEST/--flat IMAGE, not both");
	if (!opt.lx.kernel && (opt.lx.initrd || opt.lx.append || opt.lx.mem_size))
		bad_args("--initrd, --append and --mem go with --kernel");
	if (opt.lx.kernel && access(opt.lx.kernel, R_OK) < 0)
		bad_args("--kernel '%s': %s", opt.lx.kernel, strerror(errno));
	if (opt.lx.initrd && access(opt.lx.initrd, R_OK) < 0)
		bad_args("--initrd '%s': %s", opt.lx.initrd, strerror(errno));
	if (opt.lx.kernel) {
		if (opt.probe)
			bad_args("--probe does not run a guest: no --kernel with it");
		if (!opt.lx.mem_size)
			opt.lx.mem_size = LINUX_MEM_DEFAULT;
		opt.lx.vcpus = opt.vcpus;
		guest_mem_size = opt.lx.mem_size;
		if (!opt.timeout_given)
			opt.timeout = 0;
		if (!opt.step_given)
			opt.step = 0;
	}
	if (opt.guest && access(opt.guest, R_OK) < 0)
		bad_args("GUEST '%s': %s", opt.guest, strerror(errno));
	if (opt.flat && access(opt.flat, R_OK) < 0)
		bad_args("--flat '%s': %s", opt.flat, strerror(errno));
	if (opt.probe && (opt.npoints || opt.gdb || opt.guest || opt.flat))
		bad_args("--probe does not run a guest: no breakpoints, --gdb or guest with it");
	if (opt.gdb && opt.npoints)
		bad_args("--gdb: breakpoints come from gdb, not from --break/--hbreak/--watch");
	if (opt.gdb && opt.gdb[0] == '/' && access(opt.gdb, R_OK | W_OK) < 0)
		bad_args("--gdb '%s': %s", opt.gdb, strerror(errno));
	if (opt.gdb && !opt.timeout_given)
		opt.timeout = 0;
	if (!opt.probe && !opt.gdb && !opt.npoints && !opt.guest && !opt.flat && !opt.lx.kernel)
		add_point("hbreak", KVMDBG_BREAK_HW, "bump");
}

/* ---- the VM ------------------------------------------------------------- */

static int open_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int version;

	if (fd < 0) {
		int e = errno;

		if (e == ENOENT || e == ENODEV || e == ENXIO)
			err("cannot open /dev/kvm: %s: KVM is not available on this machine "
			    "(no kvm module loaded, no hardware virtualization, or /dev/kvm not "
			    "passed into this container/VM)", strerror(e));
		else if (e == EACCES || e == EPERM)
			err("cannot open /dev/kvm: %s: run as root or as a member of the group "
			    "that owns /dev/kvm (usually 'kvm')", strerror(e));
		else
			err("cannot open /dev/kvm: %s", strerror(e));
		return -1;
	}
	version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		err("/dev/kvm speaks KVM API %d, this program needs %d", version,
		    KVM_API_VERSION);
		close(fd);
		return -1;
	}
	return fd;
}

#ifdef __x86_64__
static int set_cpuid(struct vmm *m, int vcpu_fd)
{
	struct kvm_cpuid2 *cpuid = NULL;
	unsigned int nent = 64;
	int r;

	for (;;) {
		cpuid = calloc(1, sizeof(*cpuid) + nent * sizeof(cpuid->entries[0]));
		if (!cpuid)
			return -ENOMEM;
		cpuid->nent = nent;
		if (ioctl(m->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
			break;
		r = -errno;
		free(cpuid);
		if (r != -E2BIG || nent >= 4096) {
			err("KVM_GET_SUPPORTED_CPUID: %s", strerror(-r));
			return r;
		}
		nent *= 2;
	}
	r = ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) < 0 ? -errno : 0;
	if (r)
		err("KVM_SET_CPUID2: %s", strerror(-r));
	free(cpuid);
	return r;
}
#endif

static void put64(struct vmm *m, uint64_t gpa, uint64_t v)
{
	memcpy(m->mem + gpa, &v, sizeof(v));
}

static uint64_t get64(struct vmm *m, uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, m->mem + gpa, sizeof(v));
	return v;
}

static int read_file(const char *path, uint8_t **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *buf;

	if (!f) {
		err("cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (uint64_t)st.st_size > MEM_SIZE) {
		err("'%s': not a regular file of 1 byte to %llu bytes", path, MEM_SIZE);
		fclose(f);
		return -1;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		err("cannot read '%s'", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	*data = buf;
	*size = (size_t)st.st_size;
	return 0;
}

/* The guest image: the built-in demo, an ELF, a flat binary or a firmware image. */
static int load_guest(struct vmm *m)
{
	uint8_t *img;
	size_t size;
	const Elf64_Ehdr *eh;

	if (!opt.guest && !opt.flat) {
		m->builtin = true;
		m->entry = CODE_GPA;
		memcpy(m->mem + CODE_GPA, demo_guest_start,
		       (size_t)(demo_guest_end - demo_guest_start));
		for (unsigned int i = 0; i < m->nvcpus; i++)
			put64(m, DATA_GPA + 8 * i, 0);
		return 0;
	}
	if (read_file(opt.flat ? opt.flat : opt.guest, &img, &size) < 0)
		return -1;
	if (opt.flat) {
#ifndef __x86_64__
		err("--flat: real-mode firmware images are for x86-64 hosts");
		free(img);
		return -1;
#endif
		if (size > FLAT_MAX || size % 16) {
			err("--flat '%s': %zu bytes; a firmware image is a multiple of 16 bytes, "
			    "at most %llu KiB", opt.flat, size, FLAT_MAX >> 10);
			free(img);
			return -1;
		}
		memcpy(m->mem + FLAT_GPA - size, img, size);
		m->real_mode = true;
		m->entry = 0xffff0;
		free(img);
		return 0;
	}
	eh = (const Elf64_Ehdr *)img;
	if (size >= sizeof(*eh) && memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0) {
		if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_HOST ||
		    eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > size ||
		    (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum) {
			err("'%s': not a 64-bit ELF for this host's arch", opt.guest);
			free(img);
			return -1;
		}
		for (unsigned int i = 0; i < eh->e_phnum; i++) {
			Elf64_Phdr ph;

			memcpy(&ph, img + eh->e_phoff + i * sizeof(ph), sizeof(ph));
			if (ph.p_type != PT_LOAD || !ph.p_memsz)
				continue;
			if (ph.p_filesz > ph.p_memsz || ph.p_offset > size ||
			    ph.p_filesz > size - ph.p_offset || ph.p_paddr < 0x5000 ||
			    ph.p_paddr >= MEM_SIZE || ph.p_memsz > MEM_SIZE - ph.p_paddr) {
				err("'%s': segment %u at 0x%llx (+0x%llx) does not fit guest memory "
				    "0x5000-0x%llx", opt.guest, i, (unsigned long long)ph.p_paddr,
				    (unsigned long long)ph.p_memsz, MEM_SIZE);
				free(img);
				return -1;
			}
			memcpy(m->mem + ph.p_paddr, img + ph.p_offset, ph.p_filesz);
			memset(m->mem + ph.p_paddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		}
		m->entry = eh->e_entry;
	} else {
		if (size > MEM_SIZE - CODE_GPA) {
			err("'%s': too big for guest memory", opt.guest);
			free(img);
			return -1;
		}
		memcpy(m->mem + CODE_GPA, img, size);
		m->entry = CODE_GPA;
	}
	free(img);
	return 0;
}

/* Identity page tables, GDT, TSS in memory (once). */
static void setup_memory(struct vmm *m)
{
#ifdef __x86_64__
	const uint64_t P = 1, RW = 2, PS = 0x80;

	/* 2 MiB pages covering all guest memory. */
	put64(m, PML4_GPA, PDPT_GPA | P | RW);
	put64(m, PDPT_GPA, PD_GPA | P | RW);
	for (uint64_t i = 0; i < MEM_SIZE >> 21; i++)
		put64(m, PD_GPA + 8 * i, (i << 21) | P | RW | PS);

	/* null, 64-bit code, data, 64-bit TSS (two slots). */
	put64(m, GDT_GPA + 0x00, 0);
	put64(m, GDT_GPA + 0x08, 0x00af9b000000ffffULL);
	put64(m, GDT_GPA + 0x10, 0x00cf93000000ffffULL);
	put64(m, GDT_GPA + 0x18, 0x67 | (TSS_GPA & 0xffffff) << 16 | 0x8bULL << 40 |
				 ((TSS_GPA >> 24) & 0xff) << 56);
	put64(m, GDT_GPA + 0x20, TSS_GPA >> 32);
#else
	(void)m; /* arm64: the MMU stays off, guest-virtual == guest-physical */
#endif
}

#ifdef __aarch64__
static int set_one(int fd, uint64_t id, uint64_t val)
{
	struct kvm_one_reg r = { .id = id, .addr = (uintptr_t)&val };

	return ioctl(fd, KVM_SET_ONE_REG, &r) < 0 ? -errno : 0;
}

/* EL1h with DAIF masked (KVM's reset state), MMU off, at the entry point. */
static int setup_vcpu(struct vmm *m, struct vcpu *v)
{
	struct kvm_vcpu_init init;
	int r;

	memset(&init, 0, sizeof(init));
	if (ioctl(m->vm_fd, KVM_ARM_PREFERRED_TARGET, &init) < 0) {
		err("KVM_ARM_PREFERRED_TARGET: %s", strerror(errno));
		return -1;
	}
	if (ioctl(v->fd, KVM_ARM_VCPU_INIT, &init) < 0) {
		err("KVM_ARM_VCPU_INIT: %s", strerror(errno));
		return -1;
	}
	r = set_one(v->fd, ARM64_CORE(regs.pc), m->entry);
	if (!r)
		r = set_one(v->fd, ARM64_CORE(sp_el1), STACK_TOP - 0x10000ULL * (unsigned int)v->id);
	if (!r && m->builtin)
		r = set_one(v->fd, ARM64_CORE(regs.regs[0]), DATA_GPA + 8ULL * (unsigned int)v->id);
	if (!r && m->builtin)
		r = set_one(v->fd, ARM64_CORE(regs.regs[1]), opt.loops);
	if (r) {
		err("KVM_SET_ONE_REG: %s", strerror(-r));
		return -1;
	}
	return 0;
}
#else
/* Long mode at CPL0 (or real mode at the reset vector for --flat). */
static int setup_vcpu(struct vmm *m, struct vcpu *v)
{
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 0xb,
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0x3,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	struct kvm_segment tr = {
		.base = TSS_GPA, .limit = 0x67, .selector = 0x18, .type = 0xb,
		.present = 1, .s = 0,
	};
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
		err("KVM_GET_SREGS: %s", strerror(errno));
		return -1;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	if (m->real_mode) {
		/* KVM's reset state is real mode at f000:fff0 already; make it explicit. */
		sregs.cs.selector = 0xf000;
		sregs.cs.base = 0xf0000;
		regs.rip = 0xfff0;
	} else {
		sregs.cs = code;
		sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
		sregs.tr = tr;
		memset(&sregs.ldt, 0, sizeof(sregs.ldt));
		sregs.ldt.unusable = 1;
		sregs.gdt.base = GDT_GPA;
		sregs.gdt.limit = 0x27;
		sregs.idt.base = 0;
		sregs.idt.limit = 0;
		sregs.cr3 = PML4_GPA;
		sregs.cr4 = 1u << 5;                   /* PAE */
		sregs.cr0 = 0x80050033;                /* PG AM WP NE ET MP PE */
		sregs.efer = (1u << 8) | (1u << 10);   /* LME LMA */
		regs.rip = m->entry;
		regs.rsp = STACK_TOP - 0x10000ULL * (unsigned int)v->id;
		if (m->builtin) {
			regs.rdi = DATA_GPA + 8ULL * (unsigned int)v->id;
			regs.rsi = opt.loops;
		}
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0) {
		err("KVM_SET_SREGS (%s mode): %s", m->real_mode ? "real" : "long",
		    strerror(errno));
		return -1;
	}
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
		err("KVM_SET_REGS: %s", strerror(errno));
		return -1;
	}
	return 0;
}
#endif

static int vmm_create(struct vmm *m)
{
	struct kvm_userspace_memory_region region;
	int size;

	m->vm_fd = ioctl(m->kvm_fd, KVM_CREATE_VM, 0);
	if (m->vm_fd < 0) {
		err("KVM_CREATE_VM: %s", strerror(errno));
		return -1;
	}
	m->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->mem == MAP_FAILED) {
		m->mem = NULL;
		err("mmap of %llu bytes of guest memory: %s", MEM_SIZE, strerror(errno));
		return -1;
	}
	region = (struct kvm_userspace_memory_region){
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = MEM_SIZE,
		.userspace_addr = (uintptr_t)m->mem,
	};
	if (ioctl(m->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		err("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		return -1;
	}
	size = ioctl(m->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run)) {
		err("KVM_GET_VCPU_MMAP_SIZE: %s", size < 0 ? strerror(errno) : "too small");
		return -1;
	}
	m->run_size = (size_t)size;
	if (opt.lx.kernel) {
		if (linux_vm_create(&opt.lx, m->kvm_fd, m->vm_fd, m->mem, &m->lx) < 0)
			return -1;
	} else {
		setup_memory(m);
		if (load_guest(m) < 0)
			return -1;
	}
	for (unsigned int i = 0; i < m->nvcpus; i++) {
		struct vcpu *v = &m->vcpus[i];

		v->fd = ioctl(m->vm_fd, KVM_CREATE_VCPU, i);
		if (v->fd < 0) {
			err("KVM_CREATE_VCPU %u: %s", i, strerror(errno));
			return -1;
		}
		v->run = mmap(NULL, m->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
		if (v->run == MAP_FAILED) {
			v->run = NULL;
			err("mmap of the vCPU's kvm_run: %s", strerror(errno));
			return -1;
		}
		if (m->lx) {
			if (linux_vcpu_setup(m->lx, v->fd, i) < 0)
				return -1;
			continue;
		}
#ifdef __x86_64__
		if (set_cpuid(m, v->fd) < 0)
			return -1;
#endif
		if (setup_vcpu(m, v) < 0)
			return -1;
	}
	return 0;
}

static void vmm_destroy(struct vmm *m)
{
	for (unsigned int i = 0; i < m->nvcpus; i++)
		kvmdbg_vcpu_free(m->vcpus[i].dbg);
	kvmdbg_vm_free(m->dbg); /* restores what is left, through the pins */
	linux_vm_free(m->lx);
	free(m->pins);
	for (unsigned int i = 0; i < m->nvcpus; i++) {
		struct vcpu *v = &m->vcpus[i];

		if (v->run)
			munmap(v->run, m->run_size);
		if (v->fd >= 0)
			close(v->fd);
	}
	if (m->vm_fd >= 0)
		close(m->vm_fd);
	if (m->mem)
		munmap(m->mem, MEM_SIZE);
	if (m->kvm_fd >= 0)
		close(m->kvm_fd);
}

/* Guest-physical reads for the page walk: guest memory is MEM_SIZE bytes at 0. */
static int read_phys(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	const struct vmm *m = ctx;

	if (gpa >= MEM_SIZE || len > MEM_SIZE - gpa)
		return -EFAULT;
	memcpy(buf, m->mem + gpa, len);
	return 0;
}

/*
 * Guest-virtual to guest-physical through the paging state sr, in whatever
 * mode the vCPU is in (kvmdbg_gdb_translate: x86 real mode to 5-level paging,
 * arm64 with any granule, either TTBR, or the MMU off). Returns the bytes up
 * to the end of the page (or of memory) that are contiguous, 0 when not
 * mapped or not in guest memory.
 */
static uint64_t translate(struct vmm *m, const struct mmu *sr, uint64_t gva, uint64_t *gpa)
{
	uint64_t pa, n;

	if (kvmdbg_gdb_translate(&sr->regs, gva, read_phys, m, &pa, &n) < 0 || pa >= MEM_SIZE)
		return 0;
	*gpa = pa;
	return n < MEM_SIZE - pa ? n : MEM_SIZE - pa;
}

/* Copy guest-virtual memory; returns the bytes done (stops at an unmapped page). */
static size_t access_virt(struct vmm *m, const struct mmu *sr, uint64_t gva, void *buf,
			  size_t len, bool write)
{
	size_t done = 0;

	while (done < len) {
		uint64_t gpa, n = translate(m, sr, gva + done, &gpa);

		if (!n)
			break;
		if (n > len - done)
			n = len - done;
		if (write)
			memcpy(m->mem + gpa, (const uint8_t *)buf + done, n);
		else
			memcpy((uint8_t *)buf + done, m->mem + gpa, n);
		done += n;
	}
	return done;
}

/* One vCPU's paging state now (kvmdbg_gdb_kvm_mmu_read). Only for a vCPU
 * that is not in KVM_RUN: its own thread, or any thread while everything is
 * stopped. */
static int get_mmu(struct vmm *m, int vcpu, struct mmu *out)
{
	out->regs = (struct kvmdbg_gdb_mmu){ .sz = sizeof(out->regs) };
	if (vcpu < 0 || (unsigned int)vcpu >= m->nvcpus)
		return -EFAULT; /* no vCPU named: no address space */
	return kvmdbg_gdb_kvm_mmu_read(m->vcpus[vcpu].fd, &out->regs);
}

/* The pin of the software breakpoint at gva, or NULL. Under pin_lock. */
static struct pin *pin_find(struct vmm *m, uint64_t gva)
{
	for (size_t i = 0; i < m->npins; i++)
		if (m->pins[i].gva == gva)
			return &m->pins[i];
	return NULL;
}

static void pin_drop(struct vmm *m, struct pin *p)
{
	*p = m->pins[--m->npins];
}

/*
 * Guest memory by guest-virtual address, for software breakpoints (the
 * library's kvmdbg_mem_ops). Reads see the memory of the vCPU this thread
 * works for (mem_vcpu), through its page tables as they are now: what that
 * vCPU executed, when the library looks at the instruction that trapped.
 * Writes go only to a breakpoint's pinned bytes, so that the INT3/BRK, the
 * step past it and the restore always land on the same guest-physical bytes
 * whichever vCPU, with whichever tables, causes them; a write anywhere else
 * is refused (the library writes nowhere else).
 */
static int mem_read(void *ctx, uint64_t gva, void *buf, size_t len)
{
	struct vmm *m = ctx;
	struct mmu mmu;
	int r;

	if (mem_controller && len == SW_LEN) {
		/* inserting: the bytes the INT3/BRK will replace */
		const struct pin *p;
		bool pinned;

		pthread_mutex_lock(&m->pin_lock);
		p = pin_find(m, gva);
		pinned = p != NULL;
		if (pinned)
			memcpy(buf, m->mem + p->gpa, len);
		pthread_mutex_unlock(&m->pin_lock);
		if (pinned)
			return 0;
	}
	r = get_mmu(m, mem_vcpu, &mmu);
	if (r < 0)
		return r;
	return access_virt(m, &mmu, gva, buf, len, false) == len ? 0 : -EFAULT;
}

static int mem_write(void *ctx, uint64_t gva, const void *buf, size_t len)
{
	struct vmm *m = ctx;
	struct pin *p;

	pthread_mutex_lock(&m->pin_lock);
	p = len == SW_LEN ? pin_find(m, gva) : NULL;
	if (p)
		memcpy(m->mem + p->gpa, buf, len);
	pthread_mutex_unlock(&m->pin_lock);
	return p ? 0 : -EFAULT;
}

/*
 * kvmdbg_vm_insert/kvmdbg_vm_remove with the memory callbacks working for vCPU
 * vcpu. A software breakpoint is pinned to the guest-physical bytes that
 * vcpu's tables map its address to when it is first inserted (its first
 * reference); further references and the removal use that pin, whatever
 * vCPU asks. Two addresses whose bytes alias are refused (-EADDRINUSE): the
 * second would save the first one's INT3/BRK as the guest's bytes.
 */
static int point_change(struct vmm *m, int vcpu, bool insert, enum kvmdbg_type type,
			uint64_t addr, uint64_t len)
{
	bool fresh = false;
	struct pin *p;
	int r = 0;

	if (type != KVMDBG_BREAK_SW)
		return insert ? kvmdbg_vm_insert(m->dbg, type, addr, len)
			      : kvmdbg_vm_remove(m->dbg, type, addr, len);
	pthread_mutex_lock(&m->pin_lock);
	if (insert && !pin_find(m, addr)) {
		struct mmu mmu;
		uint64_t gpa = 0;

		r = get_mmu(m, vcpu, &mmu);
		if (!r && translate(m, &mmu, addr, &gpa) < SW_LEN)
			r = -EFAULT; /* unmapped, or the instruction would straddle pages */
		for (size_t i = 0; !r && i < m->npins; i++)
			if (gpa < m->pins[i].gpa + SW_LEN && m->pins[i].gpa < gpa + SW_LEN)
				r = -EADDRINUSE;
		if (!r && m->npins == m->pins_cap) {
			size_t cap = m->pins_cap ? 2 * m->pins_cap : 16;
			struct pin *n = realloc(m->pins, cap * sizeof(*n));

			if (!n)
				r = -ENOMEM;
			else {
				m->pins = n;
				m->pins_cap = cap;
			}
		}
		if (!r) {
			m->pins[m->npins++] = (struct pin){ .gva = addr, .gpa = gpa };
			fresh = true;
		}
	}
	pthread_mutex_unlock(&m->pin_lock);
	if (r)
		return r;

	mem_vcpu = vcpu;
	mem_controller = true;
	r = insert ? kvmdbg_vm_insert(m->dbg, type, addr, len) : kvmdbg_vm_remove(m->dbg, type, addr, len);
	mem_controller = false;
	mem_vcpu = -1;

	pthread_mutex_lock(&m->pin_lock);
	p = pin_find(m, addr);
	if (p && !r && insert)
		p->refs++;
	else if (p && !r && --p->refs == 0)
		pin_drop(m, p); /* the last reference: the guest's bytes are back */
	else if (p && r && fresh)
		pin_drop(m, p);
	pthread_mutex_unlock(&m->pin_lock);
	return r;
}

/* kvmdbg_vm_remove_all: every software breakpoint is restored at its pin. */
static int points_clear(struct vmm *m)
{
	int r;

	mem_controller = true;
	r = kvmdbg_vm_remove_all(m->dbg);
	mem_controller = false;
	if (!r) {
		pthread_mutex_lock(&m->pin_lock);
		m->npins = 0;
		pthread_mutex_unlock(&m->pin_lock);
	}
	return r;
}

static const struct kvmdbg_mem_ops mem_ops = {
	.read = mem_read,
	.write = mem_write,
};

/* ---- reporting ---------------------------------------------------------- */

static const char *arch_name(enum kvmdbg_arch a)
{
	switch (a) {
	case KVMDBG_ARCH_X86_64:
		return "x86-64";
	case KVMDBG_ARCH_ARM64:
		return "arm64";
	default:
		return "unknown";
	}
}

/* "bump+4" for an address in the guest's code or data, "" elsewhere. */
static bool builtin_guest;

static const char *symbolize(uint64_t gva, char *buf, size_t size)
{
	const struct symbol *best = NULL;
	uint64_t code_end = CODE_GPA + (uint64_t)(demo_guest_end - demo_guest_start);

	buf[0] = '\0';
	if (!builtin_guest)
		return buf;
	if (gva >= DATA_GPA && gva < DATA_GPA + 8) {
		best = &symbols[SYM_COUNTER];
	} else if (gva >= CODE_GPA && gva < code_end) {
		for (size_t i = 0; i < SYM_COUNTER; i++)
			if (symbols[i].gva <= gva && (!best || symbols[i].gva > best->gva))
				best = &symbols[i];
	}
	if (!best)
		return buf;
	if (gva == best->gva)
		snprintf(buf, size, "%s", best->name);
	else
		snprintf(buf, size, "%s+%" PRIu64, best->name, gva - best->gva);
	return buf;
}

static void report_stop(struct vmm *m, int vcpu, const struct kvmdbg_event *ev)
{
	bool point = ev->kind == KVMDBG_STOP_BREAK || ev->kind == KVMDBG_STOP_WATCH;
	char sym[48], pc[64];

	m->nstops++;
	symbolize(ev->pc, sym, sizeof(sym));
	if (opt.json) {
		printf("{\"kind\":\"%s\",", kvmdbg_stop_name(ev->kind));
		if (point)
			printf("\"type\":\"%s\",", kvmdbg_type_name(ev->type));
		else
			printf("\"type\":null,");
		printf("\"pc\":\"0x%" PRIx64 "\",", ev->pc);
		if (point)
			printf("\"addr\":\"0x%" PRIx64 "\",\"len\":%" PRIu64 ",", ev->addr, ev->len);
		else
			printf("\"addr\":null,\"len\":null,");
		if (ev->kind == KVMDBG_STOP_WATCH)
			printf("\"data_addr\":\"0x%" PRIx64 "\",", ev->data_addr);
		else
			printf("\"data_addr\":null,");
		printf("\"vcpu\":%d,\"hits\":%" PRIu32 ",\"symbol\":", vcpu, ev->hits);
		if (sym[0])
			printf("\"%s\"}\n", sym);
		else
			printf("null}\n");
		fflush(stdout);
		return;
	}
	if (sym[0])
		snprintf(pc, sizeof(pc), "0x%" PRIx64 " <%s>", ev->pc, sym);
	else
		snprintf(pc, sizeof(pc), "0x%" PRIx64, ev->pc);
	if (m->nvcpus > 1)
		printf("stop %u: vcpu %d: %-5s %-11s pc=%-18s", m->nstops, vcpu,
		       kvmdbg_stop_name(ev->kind), point ? kvmdbg_type_name(ev->type) : "-", pc);
	else
		printf("stop %u: %-5s %-11s pc=%-18s", m->nstops, kvmdbg_stop_name(ev->kind),
		       point ? kvmdbg_type_name(ev->type) : "-", pc);
	if (point)
		printf(" addr=0x%" PRIx64, ev->addr);
	else
		printf(" addr=-");
	if (ev->kind == KVMDBG_STOP_WATCH)
		printf(" data=0x%" PRIx64, ev->data_addr);
	printf(" hits=0x%" PRIx32 "\n", ev->hits);
	fflush(stdout);
}

/* Advertised answer for one verified feature: 1 yes, 0 no, -1 not a KVM capability. */
static int advertised(const struct kvmdbg_caps *c, uint64_t feat)
{
	switch (feat) {
	case KVMDBG_FEAT_STEP:
		return c->single_step;
	case KVMDBG_FEAT_BLOCK_IRQ:
		return c->block_irq;
	case KVMDBG_FEAT_HW_BREAK:
		return c->hw_debug && c->hw_breakpoints > 0;
	case KVMDBG_FEAT_WATCH_WRITE:
	case KVMDBG_FEAT_WATCH_ACCESS:
		return c->hw_debug && c->hw_watchpoints > 0;
	case KVMDBG_FEAT_WATCH_READ:
		return c->arch == KVMDBG_ARCH_ARM64 && c->hw_debug && c->hw_watchpoints > 0;
	case KVMDBG_FEAT_SW_BREAK:
		return c->sw_breakpoints;
	case KVMDBG_FEAT_INJECT_DB:
		return c->inject_db;
	case KVMDBG_FEAT_INJECT_BP:
		return c->inject_bp;
	default:
		return -1; /* RF_RESUME, GD_EXIT, GUEST_BP_LIVE: behaviours, not capabilities */
	}
}

static void print_probe(const struct kvmdbg_caps *c, int vr, uint64_t features)
{
	const char *yn[] = { "no", "yes" };

	if (opt.json) {
		const char *sep = "";

		printf("{\"arch\":\"%s\",\"guest_debug\":%s,\"debug_flags\":\"0x%" PRIx64 "\","
		       "\"hw_breakpoints\":%u,\"hw_watchpoints\":%u,\"shared_slots\":%s,"
		       "\"max_watch_len\":%" PRIu64 ",\"guest_state\":%s,",
		       arch_name(c->arch), c->guest_debug ? "true" : "false", c->debug_flags,
		       c->hw_breakpoints, c->hw_watchpoints, c->shared_slots ? "true" : "false",
		       c->max_watch_len, c->guest_state ? "true" : "false");
		printf("\"verified_ok\":%s,\"features\":\"0x%" PRIx64 "\",\"capabilities\":{",
		       vr == 0 ? "true" : "false", features);
		for (unsigned int b = 0; b < 63; b++) {
			const char *name = kvmdbg_feature_name(1ULL << b);
			int a = advertised(c, 1ULL << b);

			if (!name)
				continue;
			printf("%s\"%s\":{\"advertised\":%s,\"verified\":%s}", sep, name,
			       a < 0 ? "null" : a ? "true" : "false",
			       vr ? "null" : features & (1ULL << b) ? "true" : "false");
			sep = ",";
		}
		printf("}}\n");
		return;
	}

	printf("host KVM: %s, guest debugging %s, KVM_GUESTDBG_* flags 0x%" PRIx64 "\n",
	       arch_name(c->arch), c->guest_debug ? "yes" : "no", c->debug_flags);
	printf("hardware slots: %u breakpoints, %u watchpoints%s, longest watch %" PRIu64
	       " bytes\n",
	       c->hw_breakpoints, c->hw_watchpoints, c->shared_slots ? " (one shared pool)" : "",
	       c->max_watch_len);
	printf("guest debug registers readable/writable: %s\n", yn[!!c->guest_state]);
	if (vr)
		printf("verified probe failed: %s (verified column unknown)\n", strerror(-vr));
	printf("\n%-16s %-11s %s\n", "feature", "advertised", "verified");
	for (unsigned int b = 0; b < 63; b++) {
		const char *name = kvmdbg_feature_name(1ULL << b);
		int a = advertised(c, 1ULL << b);
		const char *v = vr ? "?" : yn[!!(features & (1ULL << b))];
		const char *note = "";

		if (!name)
			continue;
		if (!vr && a > 0 && !(features & (1ULL << b)))
			note = "   <- advertised but does not work here";
		printf("%-16s %-11s %s%s\n", name, a < 0 ? "-" : yn[a], v, note);
	}
}

/* ---- running: one thread per vCPU, all-stop ------------------------------ */

/* Make every other running vCPU leave KVM_RUN. Called with m->lock held. */
static void kick_others(struct vmm *m, const struct vcpu *self)
{
	__atomic_store_n(&m->stopping, 1, __ATOMIC_SEQ_CST);
	for (unsigned int i = 0; i < m->nvcpus; i++) {
		struct vcpu *v = &m->vcpus[i];

		if (v == self || !v->running)
			continue;
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(v->thread, SIGUSR1);
	}
}

static void on_alarm(int sig)
{
	struct vmm *m = alarm_vmm;

	(void)sig;
	timed_out = 1;
	if (!m)
		return;
	if (opt.gdb) { /* --timeout with --gdb bounds the whole session */
		static const char msg[] = PROG ": --timeout: the gdb session took too long\n";

		if (write(2, msg, sizeof(msg) - 1) < 0) {
			/* nothing more to do */
		}
		_exit(1);
	}
	__atomic_store_n(&m->stopping, 1, __ATOMIC_SEQ_CST);
	for (unsigned int i = 0; i < m->nvcpus; i++) {
		struct vcpu *v = &m->vcpus[i];

		if (v->run)
			__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		if (v->thread_started && !pthread_equal(v->thread, pthread_self()))
			pthread_kill(v->thread, SIGUSR1); /* async-signal-safe */
	}
}

static void on_kick(int sig)
{
	(void)sig;
}

static void dump_internal_error(const struct kvm_run *run)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "KVM_EXIT_INTERNAL_ERROR, suberror %" PRIu32,
			 run->internal.suberror);

	for (uint32_t i = 0; i < run->internal.ndata && i < 8 && n > 0 &&
			     (size_t)n < sizeof(buf); i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s0x%llx", i ? " " : " data ",
			      (unsigned long long)run->internal.data[i]);
	err("guest stopped: %s", buf);
}

/*
 * A debug exit the library could not classify, even a second time: typically
 * a breakpoint instruction that is not in the breakpoint table, at an address
 * whose bytes cannot be read through this vCPU's page tables (a paging mode
 * this VMM does not walk), so nobody can tell whether it is the guest's own
 * or one of ours removed meanwhile. It must not end the session, must not be
 * delivered to the guest on a guess (kvmdbg-run cannot queue that, and a stale
 * breakpoint of ours would then crash the guest), and must not be dropped: it
 * is reported as a plain trap (gdb: SIGTRAP on this vCPU; the scripted mode:
 * a stop of kind "none"). Resuming runs the instruction again: the guest's own
 * traps again, a stale one of ours runs the guest's bytes.
 */
static enum vres unclassified_exit(struct vcpu *v, int r)
{
	struct kvmdbg_event *ev = &v->ev;
	uint64_t pc = ev->pc;

#ifdef __x86_64__
	if (!pc)
		pc = v->run->debug.arch.pc;
#endif
	memset(ev, 0, sizeof(*ev));
	ev->kind = KVMDBG_STOP_NONE;
	ev->pc = pc;
	ev->write = -1;
	err("vCPU %d: a debug exit at pc=0x%" PRIx64 " that kvmdbg_vcpu_handle_exit cannot "
	    "classify (%s): reported as a trap", v->id, pc, strerror(-r));
	return VR_EVENT;
}

/* Run one vCPU until a reportable stop (v->ev), the guest's end, or a kick. */
static enum vres vcpu_run(struct vmm *m, struct vcpu *v)
{
	struct kvm_run *run = v->run;
	struct kvmdbg_event *ev = &v->ev;
	int r;

	for (;;) {
		r = kvmdbg_vcpu_prepare(v->dbg);
		if (r == -EAGAIN) {
			/* Fenced while another vCPU steps past a software
			 * breakpoint this one cannot catch in hardware. */
			if (__atomic_load_n(&m->stopping, __ATOMIC_SEQ_CST))
				return VR_KICKED;
			if (timed_out)
				return VR_TIMEOUT;
			sched_yield();
			continue;
		}
		if (r < 0) {
			err("kvmdbg_vcpu_prepare: %s", strerror(-r));
			return VR_ERROR;
		}
		if (timed_out)
			return VR_TIMEOUT;
		if (__atomic_load_n(&m->stopping, __ATOMIC_SEQ_CST))
			return VR_KICKED;
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				continue;
			}
			err("KVM_RUN: %s", strerror(errno));
			return VR_ERROR;
		}
		if (m->lx && run->exit_reason != KVM_EXIT_DEBUG &&
		    linux_handle_exit(m->lx, run) > 0) {
			if (linux_end(m->lx) != LINUX_RUNNING)
				return VR_FINISHED; /* the machine ended: every vCPU with it */
			continue;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_DEBUG:
			memset(ev, 0, sizeof(*ev));
			r = kvmdbg_vcpu_handle_exit(v->dbg, ev);
			/* After an error nothing has changed and the exit may be
			 * classified again (the header's promise); the memory
			 * callbacks look at this vCPU's tables anew each time. */
			if (r < 0)
				r = kvmdbg_vcpu_handle_exit(v->dbg, ev);
			if (r < 0)
				return unclassified_exit(v, r);
			if (KVMDBG_STOP_IS_REPORTABLE(ev->kind))
				return VR_EVENT;
			if (ev->kind == KVMDBG_STOP_GUEST)
				info("note: the guest's own debug exception at pc=0x%" PRIx64
				     ", passed back to the guest", ev->pc);
			continue;
#ifdef __aarch64__
		case KVM_EXIT_MMIO:
			if (run->mmio.phys_addr == EXIT_MMIO && run->mmio.is_write &&
			    run->mmio.len == 4) {
				memcpy(&v->exit_value, run->mmio.data, 4);
				return VR_FINISHED;
			}
			err("guest stopped: unexpected MMIO %s 0x%llx size %u",
			    run->mmio.is_write ? "write to" : "read from",
			    (unsigned long long)run->mmio.phys_addr, run->mmio.len);
			return VR_ERROR;
#else
		case KVM_EXIT_IO:
			if (run->io.port == EXIT_PORT && run->io.direction == KVM_EXIT_IO_OUT &&
			    run->io.size == 4) {
				memcpy(&v->exit_value, (uint8_t *)run + run->io.data_offset, 4);
				return VR_FINISHED;
			}
			err("guest stopped: unexpected I/O %s port 0x%x size %u",
			    run->io.direction == KVM_EXIT_IO_OUT ? "out to" : "in from",
			    run->io.port, run->io.size);
			return VR_ERROR;
		case KVM_EXIT_HLT:
			if (!m->builtin) {
				v->exit_value = 0;
				return VR_FINISHED;
			}
			err("guest stopped: it halted before reaching the exit port");
			return VR_ERROR;
#endif
		case KVM_EXIT_SHUTDOWN:
			err("guest stopped: KVM_EXIT_SHUTDOWN (triple fault)");
			return VR_ERROR;
		case KVM_EXIT_FAIL_ENTRY:
			err("guest stopped: KVM_EXIT_FAIL_ENTRY, reason 0x%llx",
			    (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			return VR_ERROR;
		case KVM_EXIT_INTERNAL_ERROR:
			dump_internal_error(run);
			return VR_ERROR;
		case KVM_EXIT_INTR:
			continue;
		default:
			err("guest stopped: unexpected exit reason %" PRIu32, run->exit_reason);
			return VR_ERROR;
		}
	}
}

static void notify_stopped(struct vmm *m)
{
	char c = 1;

	pthread_cond_broadcast(&m->cond);
	if (write(m->notify[1], &c, 1) < 0) {
		/* the pipe is non-blocking and only a wake-up: full is fine */
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vmm *m = v->m;

	mem_vcpu = v->id; /* the library's memory accesses from here are this vCPU's */
	pthread_mutex_lock(&m->lock);
	for (;;) {
		enum vres res;
		bool step;
		int r = 0;

		while (!v->go && !m->quit)
			pthread_cond_wait(&m->cond, &m->lock);
		if (m->quit)
			break;
		v->go = false;
		step = v->step;
		pthread_mutex_unlock(&m->lock);

		if (step != v->step_set) {
			r = kvmdbg_vcpu_set_step(v->dbg, step);
			if (r < 0)
				err("kvmdbg_vcpu_set_step: %s", strerror(-r));
			else
				v->step_set = step;
		}
		res = r < 0 ? VR_ERROR : vcpu_run(m, v);
		if (m->lx && linux_end(m->lx) != LINUX_RUNNING && res != VR_ERROR)
			res = VR_FINISHED; /* kicked out, or stopped, after the machine ended */

		pthread_mutex_lock(&m->lock);
		v->result = res;
		v->running = false;
		if (res == VR_EVENT)
			v->pending = true;
		if (res == VR_FINISHED)
			v->finished = true;
		if ((res == VR_EVENT || res == VR_ERROR || res == VR_TIMEOUT ||
		     (res == VR_FINISHED && m->lx)) &&
		    !__atomic_load_n(&m->stopping, __ATOMIC_SEQ_CST)) {
			m->first = v->id;
			kick_others(m, v);
		}
		if (--m->nrunning == 0)
			notify_stopped(m);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

static int start_vcpus(struct vmm *m)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_kick;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: interrupt KVM_RUN */
	if (pipe2(m->notify, O_CLOEXEC | O_NONBLOCK) < 0) {
		err("pipe: %s", strerror(errno));
		return -1;
	}
	for (unsigned int i = 0; i < m->nvcpus; i++) {
		struct vcpu *v = &m->vcpus[i];
		int r = pthread_create(&v->thread, NULL, vcpu_thread, v);

		if (r) {
			err("pthread_create: %s", strerror(r));
			return -1;
		}
		v->thread_started = true;
	}
	return 0;
}

static void stop_vcpus(struct vmm *m)
{
	pthread_mutex_lock(&m->lock);
	m->quit = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	for (unsigned int i = 0; i < m->nvcpus; i++)
		if (m->vcpus[i].thread_started)
			pthread_join(m->vcpus[i].thread, NULL);
	if (m->notify[0] >= 0) {
		close(m->notify[0]);
		close(m->notify[1]);
	}
}

/*
 * Resume the vCPUs: actions[i] is KVMDBG_GDB_STAY, _CONTINUE or _STEP. A vCPU
 * with an event not reported yet is not run: the next wait reports it.
 */
static void vmm_resume(struct vmm *m, const enum kvmdbg_gdb_action *actions)
{
	char buf[16];

	while (read(m->notify[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&m->lock);
	m->immediate = false;
	for (unsigned int i = 0; i < m->nvcpus; i++)
		if (actions[i] != KVMDBG_GDB_STAY && m->vcpus[i].pending && !m->vcpus[i].finished)
			m->immediate = true;
	if (!m->immediate) {
		__atomic_store_n(&m->stopping, 0, __ATOMIC_SEQ_CST);
		m->first = -1;
		for (unsigned int i = 0; i < m->nvcpus; i++) {
			struct vcpu *v = &m->vcpus[i];

			if (actions[i] == KVMDBG_GDB_STAY || v->finished)
				continue;
			v->step = actions[i] == KVMDBG_GDB_STEP;
			v->go = true;
			v->running = true;
			v->result = VR_NONE;
			m->nrunning++;
		}
		pthread_cond_broadcast(&m->cond);
	}
	if (m->nrunning == 0)
		notify_stopped(m);
	pthread_mutex_unlock(&m->lock);
}

/*
 * Forget the stops not reported yet (several vCPUs hit at once): after the
 * points were removed they are stale. The library cannot tell: the event was
 * classified when it happened.
 */
static void vmm_drop_pending(struct vmm *m)
{
	pthread_mutex_lock(&m->lock);
	for (unsigned int i = 0; i < m->nvcpus; i++)
		m->vcpus[i].pending = false;
	pthread_mutex_unlock(&m->lock);
}

/* Kick every running vCPU (Ctrl-C in gdb). */
static void vmm_interrupt(struct vmm *m)
{
	pthread_mutex_lock(&m->lock);
	if (!__atomic_load_n(&m->stopping, __ATOMIC_SEQ_CST))
		kick_others(m, NULL);
	pthread_mutex_unlock(&m->lock);
}

enum stop_what { SW_EVENT, SW_FINISHED, SW_INTERRUPTED, SW_ERROR, SW_TIMEOUT };

/*
 * With m->lock held and nothing running: what to report. An event is taken
 * (its pending flag cleared) from the vCPU that stopped first, else any.
 */
static enum stop_what take_stop(struct vmm *m, int *vcpu, struct kvmdbg_event *ev)
{
	bool all_finished = true;
	int pick = -1;

	for (unsigned int i = 0; i < m->nvcpus; i++) {
		if (m->vcpus[i].result == VR_ERROR) {
			*vcpu = (int)i;
			return SW_ERROR;
		}
		if (m->vcpus[i].result == VR_TIMEOUT || timed_out) {
			*vcpu = (int)i;
			return SW_TIMEOUT;
		}
		if (!m->vcpus[i].finished)
			all_finished = false;
	}
	if (m->first >= 0 && m->vcpus[m->first].pending)
		pick = m->first;
	for (unsigned int i = 0; pick < 0 && i < m->nvcpus; i++)
		if (m->vcpus[i].pending)
			pick = (int)i;
	if (pick >= 0) {
		m->vcpus[pick].pending = false;
		*ev = m->vcpus[pick].ev;
		*vcpu = pick;
		return SW_EVENT;
	}
	if (all_finished) {
		*vcpu = 0;
		return SW_FINISHED;
	}
	*vcpu = 0;
	if (m->first >= 0 && !m->vcpus[m->first].finished)
		*vcpu = m->first;
	else
		for (unsigned int i = 0; i < m->nvcpus; i++)
			if (!m->vcpus[i].finished) {
				*vcpu = (int)i;
				break;
			}
	return SW_INTERRUPTED;
}

/* Block until everything stopped after vmm_resume(). */
static enum stop_what vmm_wait(struct vmm *m, int *vcpu, struct kvmdbg_event *ev)
{
	enum stop_what w;

	pthread_mutex_lock(&m->lock);
	while (m->nrunning > 0)
		pthread_cond_wait(&m->cond, &m->lock);
	w = take_stop(m, vcpu, ev);
	pthread_mutex_unlock(&m->lock);
	return w;
}

/* Resume all (continue) or one vCPU (step) and wait. */
static enum stop_what run_until_stop(struct vmm *m, int step_vcpu, int *vcpu,
				     struct kvmdbg_event *ev)
{
	enum kvmdbg_gdb_action act[MAX_VCPUS];

	for (unsigned int i = 0; i < m->nvcpus; i++)
		act[i] = step_vcpu < 0 ? KVMDBG_GDB_CONTINUE
				       : (int)i == step_vcpu ? KVMDBG_GDB_STEP : KVMDBG_GDB_STAY;
	vmm_resume(m, act);
	return vmm_wait(m, vcpu, ev);
}

/* Is a verified feature missing? Says so; true means "skip it". */
static bool lacks(struct vmm *m, uint64_t feat, const char *what)
{
	const char *name = kvmdbg_feature_name(feat);

	if (!(m->features & KVMDBG_FEAT_VERIFIED) || (m->features & feat))
		return false;
	if (opt.force) {
		info("warning: %s does not work on this host (verified probe lacks %s); "
		     "trying anyway (--force)", what, name ? name : "it");
		return false;
	}
	err("%s: this host's KVM cannot deliver it (verified probe lacks %s); skipped "
	    "(--force tries anyway)", what, name ? name : "it");
	return true;
}

static int insert_points(struct vmm *m)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < opt.npoints; i++) {
		struct point *p = &opt.points[i];
		char what[160], sym[48];
		int r;

		symbolize(p->addr, sym, sizeof(sym));
		snprintf(what, sizeof(what), "%s at 0x%" PRIx64 "%s%s%s", kvmdbg_type_name(p->type),
			 p->addr, sym[0] ? " <" : "", sym, sym[0] ? ">" : "");
		if (lacks(m, kvmdbg_type_feature(p->type), what))
			continue;
		/* software breakpoints: in vCPU 0's address space */
		r = point_change(m, 0, true, p->type, p->addr, p->len);
		if (r == -ENOSPC) {
			err("%s: not enough free hardware slots (needs %d)", what,
			    kvmdbg_vm_slots_needed(m->dbg, p->type, p->addr, p->len));
			return -1;
		}
		if (r < 0) {
			err("kvmdbg_vm_insert(%s, len %" PRIu64 "): %s", what, p->len, strerror(-r));
			return -1;
		}
		p->inserted = true;
		n++;
		info("inserted %s", what);
	}
	return (int)n;
}

static int remove_points(struct vmm *m)
{
	for (unsigned int i = 0; i < opt.npoints; i++) {
		struct point *p = &opt.points[i];
		int r;

		if (!p->inserted)
			continue;
		r = point_change(m, 0, false, p->type, p->addr, p->len);
		if (r < 0) {
			err("kvmdbg_vm_remove(%s at 0x%" PRIx64 "): %s", kvmdbg_type_name(p->type),
			    p->addr, strerror(-r));
			return -1;
		}
		p->inserted = false;
		info("removed %s at 0x%" PRIx64, kvmdbg_type_name(p->type), p->addr);
	}
	return 0;
}

static void print_verified(uint64_t features)
{
	char buf[512];
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned int b = 0; b < 63 && n < sizeof(buf); b++) {
		const char *name = kvmdbg_feature_name(1ULL << b);

		if (name && (features & (1ULL << b)))
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s", name);
	}
	info("verified features:%s", buf[0] ? buf : " none");
}

static int session_start(struct vmm *m)
{
	struct kvmdbg_vm_opts vo;
	int r;

	memset(&vo, 0, sizeof(vo));
	vo.sz = sizeof(vo);
	vo.mem = &mem_ops;
	vo.mem_ctx = m;
	vo.overlay = opt.overlay ? KVMDBG_OVERLAY_GUEST : KVMDBG_OVERLAY_OFF;
	vo.features = m->features;
	r = kvmdbg_vm_new(m->vm_fd, &vo, &m->dbg);
	if (r < 0) {
		if (r == -EOPNOTSUPP && opt.overlay)
			err("--overlay: this host cannot read the guest's own debug registers");
		else
			err("kvmdbg_vm_new: %s", strerror(-r));
		return -1;
	}
	for (unsigned int i = 0; i < m->nvcpus; i++) {
		struct vcpu *v = &m->vcpus[i];

		r = kvmdbg_vcpu_new(m->dbg, v->fd, v->run, &v->dbg);
		if (r < 0) {
			err("kvmdbg_vcpu_new: %s", strerror(-r));
			return -1;
		}
	}
	return start_vcpus(m);
}

static bool stop_failed(enum stop_what w)
{
	if (w == SW_TIMEOUT)
		err("the guest did not finish within %lu s (--timeout)", opt.timeout);
	return w == SW_ERROR || w == SW_TIMEOUT;
}

/* Scripted mode: continue to the points, step, remove them, run to the end. */
static int run_demo(struct vmm *m)
{
	struct kvmdbg_event ev;
	enum stop_what w = SW_EVENT;
	unsigned long stops = 0;
	int r, npoints, vcpu = 0, last = 0;
	bool ok = true;

	npoints = insert_points(m);
	if (npoints < 0)
		return 1;

	alarm_vmm = m;
	if (opt.timeout)
		alarm((unsigned int)opt.timeout);

	/* 1. Continue to the breakpoints. */
	if (npoints > 0 && opt.max_stops > 0) {
		info("continuing to the breakpoints, up to %lu stops", opt.max_stops);
		while (stops < opt.max_stops) {
			w = run_until_stop(m, -1, &vcpu, &ev);
			if (w != SW_EVENT)
				break;
			report_stop(m, vcpu, &ev);
			last = vcpu;
			stops++;
		}
		if (w == SW_FINISHED)
			info("the guest finished after %lu of %lu stops", stops, opt.max_stops);
	}

	/* 2. Single-step the vCPU that stopped last. */
	if (w == SW_EVENT && opt.step > 0 && !lacks(m, KVMDBG_FEAT_STEP, "single-step")) {
		info("single-stepping %lu instruction%s%s", opt.step, opt.step == 1 ? "" : "s",
		     m->nvcpus > 1 ? " of the vCPU that stopped last" : "");
		for (unsigned long i = 0; i < opt.step; i++) {
			w = run_until_stop(m, last, &vcpu, &ev);
			if (w != SW_EVENT)
				break;
			report_stop(m, vcpu, &ev);
		}
	}

	/* 3. Remove the breakpoints and run to completion. */
	if (w == SW_EVENT || w == SW_INTERRUPTED) {
		if (remove_points(m) < 0)
			return 1;
		vmm_drop_pending(m);
		info("running to completion");
		while ((w = run_until_stop(m, -1, &vcpu, &ev)) == SW_EVENT)
			report_stop(m, vcpu, &ev); /* a stale hit, or a step still pending */
	}
	alarm(0);
	if (stop_failed(w))
		return 1;
	if (w != SW_FINISHED) {
		err("the guest stopped unexpectedly");
		return 1;
	}

	if (!m->builtin) {
		uint32_t v0 = m->vcpus[0].exit_value;

		if (opt.json)
			printf("{\"kind\":\"exit\",\"value\":%" PRIu32 ",\"stops\":%u}\n", v0,
			       m->nstops);
		else
			printf("guest finished: exit value %" PRIu32 ", %u stop%s reported\n", v0,
			       m->nstops, m->nstops == 1 ? "" : "s");
		return 0;
	}
	if (m->nvcpus == 1) {
		uint64_t counter = get64(m, DATA_GPA);

		if (opt.json)
			printf("{\"kind\":\"exit\",\"counter\":%" PRIu64 ",\"expected\":%lu,"
			       "\"stops\":%u}\n", counter, opt.loops, m->nstops);
		else
			printf("guest finished: counter = %" PRIu64 " (expected %lu), %u stop%s "
			       "reported\n", counter, opt.loops, m->nstops,
			       m->nstops == 1 ? "" : "s");
	} else {
		if (opt.json) {
			printf("{\"kind\":\"exit\",\"counters\":[");
			for (unsigned int i = 0; i < m->nvcpus; i++)
				printf("%s%" PRIu64, i ? "," : "", get64(m, DATA_GPA + 8 * i));
			printf("],\"expected\":%lu,\"stops\":%u}\n", opt.loops, m->nstops);
		} else {
			printf("guest finished: counters =");
			for (unsigned int i = 0; i < m->nvcpus; i++)
				printf(" %" PRIu64, get64(m, DATA_GPA + 8 * i));
			printf(" (expected %lu each), %u stop%s reported\n", opt.loops, m->nstops,
			       m->nstops == 1 ? "" : "s");
		}
	}
	for (unsigned int i = 0; i < m->nvcpus; i++) {
		uint64_t counter = get64(m, DATA_GPA + 8 * i);

		if (counter != opt.loops || m->vcpus[i].exit_value != (uint32_t)opt.loops) {
			err("wrong result on vCPU %u: counter %" PRIu64 ", exit port value %" PRIu32
			    ", expected %lu", i, counter, m->vcpus[i].exit_value, opt.loops);
			ok = false;
		}
	}
	(void)r;
	return ok ? 0 : 1;
}

/* --kernel: the exit status by how the guest ended (see usage()). */
static int linux_exit_status(struct linux_vm *lx, int ret)
{
	enum linux_end e = linux_end(lx);

	if (e == LINUX_RUNNING)
		return timed_out ? 5 : ret; /* run_demo said so; or a gdb session's end */
	info("guest %s", linux_end_name(e));
	return e == LINUX_POWER_OFF ? 0 : e == LINUX_RESET ? 3 : 4;
}

/* ---- the gdb remote stub's target --------------------------------------- */

#ifdef __x86_64__
#define GDB_ARCH KVMDBG_GDB_ARCH_X86_64
#else
#define GDB_ARCH KVMDBG_GDB_ARCH_AARCH64
#endif

static int g_nthreads(void *ctx)
{
	return (int)((struct vmm *)ctx)->nvcpus;
}

static int g_thread_alive(void *ctx, int t)
{
	struct vmm *m = ctx;
	int alive;

	pthread_mutex_lock(&m->lock);
	alive = !m->vcpus[t].finished;
	pthread_mutex_unlock(&m->lock);
	return alive;
}

/* Registers: the KVM layer of libkvmdbg-gdb marshals them (<kvmdbg/gdb-kvm.h>). */
static int g_read_regs(void *ctx, int t, uint8_t *b)
{
	return kvmdbg_gdb_kvm_regs_read(((struct vmm *)ctx)->vcpus[t].fd, b);
}

static int g_write_regs(void *ctx, int t, const uint8_t *b)
{
	struct vcpu *v = &((struct vmm *)ctx)->vcpus[t];
	int r = kvmdbg_gdb_kvm_regs_write(v->fd, b);

	return r < 0 ? r : kvmdbg_vcpu_regs_changed(v->dbg);
}

/* `monitor phys on`: gdb's addresses are guest-physical, not the thread's
 * guest-virtual ones (the memory commands only; breakpoints stay virtual). */
static bool gdb_phys;

static long g_access_mem(struct vmm *m, int t, uint64_t addr, void *buf, size_t len, bool wr)
{
	struct mmu mmu;
	size_t n;
	int r;

	if (gdb_phys) {
		if (addr >= MEM_SIZE)
			return -EFAULT;
		if (len > MEM_SIZE - addr)
			len = (size_t)(MEM_SIZE - addr);
		memcpy(wr ? m->mem + addr : buf, wr ? buf : m->mem + addr, len);
		return (long)len;
	}
	r = get_mmu(m, t, &mmu);
	if (r < 0)
		return r;
	n = access_virt(m, &mmu, addr, buf, len, wr);
	return n ? (long)n : -EFAULT;
}

static long g_read_mem(void *ctx, int t, uint64_t addr, void *buf, size_t len)
{
	return g_access_mem(ctx, t, addr, buf, len, false);
}

static long g_write_mem(void *ctx, int t, uint64_t addr, const void *buf, size_t len)
{
	return g_access_mem(ctx, t, addr, (void *)buf, len, true);
}

static int g_point(void *ctx, int t, enum kvmdbg_gdb_point type, uint64_t addr, uint64_t kind,
		   bool insert)
{
	struct vmm *m = ctx;
	enum kvmdbg_type kt = (enum kvmdbg_type)type; /* Z0..Z4 have the same numbers */
	int r;

	if (insert && !opt.force && (r = kvmdbg_gdb_kvm_point_check(m->features, type)) < 0) {
		info("gdb: %s at 0x%" PRIx64 ": this host's KVM cannot deliver it (verified "
		     "probe lacks %s)", kvmdbg_type_name(kt), addr,
		     kvmdbg_feature_name(kvmdbg_type_feature(kt)));
		return r; /* an E reply (--force lets it try) */
	}
	/* A software breakpoint goes where gdb's selected thread's tables map
	 * addr; its removal restores those same bytes (point_change). */
	r = point_change(m, t, insert, kt, addr, kind);
	if (r < 0)
		info("gdb: %s %s at 0x%" PRIx64 " len %" PRIu64 ": %s", insert ? "insert" : "remove",
		     kvmdbg_type_name(kt), addr, kind, strerror(-r));
	return r;
}

static int g_insert(void *ctx, int t, enum kvmdbg_gdb_point type, uint64_t addr, uint64_t kind)
{
	return g_point(ctx, t, type, addr, kind, true);
}

static int g_remove(void *ctx, int t, enum kvmdbg_gdb_point type, uint64_t addr, uint64_t kind)
{
	return g_point(ctx, t, type, addr, kind, false);
}

static int g_resume(void *ctx, const enum kvmdbg_gdb_action *actions)
{
	vmm_resume(ctx, actions);
	return 0;
}

static int g_stop_fd(void *ctx)
{
	return ((struct vmm *)ctx)->notify[0];
}

static int g_get_stop(void *ctx, struct kvmdbg_gdb_stop *st)
{
	struct vmm *m = ctx;
	struct kvmdbg_event ev;
	enum stop_what w;
	int vcpu = 0;
	char buf[16];
	size_t sz;

	while (read(m->notify[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&m->lock);
	if (m->nrunning > 0) {
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	w = take_stop(m, &vcpu, &ev);
	pthread_mutex_unlock(&m->lock);
#if defined(__x86_64__) && defined(KVM_KVMCLOCK_CTRL)
	/* Paused for the debugger: tell a guest using kvmclock, so that its
	 * soft-lockup watchdog does not fire when it runs again. EINVAL when
	 * the guest has not set kvmclock up (our guests): nothing to do. */
	for (unsigned int i = 0; i < m->nvcpus; i++)
		if (ioctl(m->vcpus[i].fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL &&
		    errno != ENOTSUP)
			info("gdb: KVM_KVMCLOCK_CTRL on vCPU %u: %s", i, strerror(errno));
#endif
	sz = st->sz; /* the library's, kept */
	memset(st, 0, sizeof(*st));
	st->sz = sz;
	st->thread = vcpu;
	st->kind = KVMDBG_GDB_STOP_SIGNAL;
	switch (w) {
	case SW_EVENT:
		kvmdbg_gdb_kvm_stop_from_event(&ev, vcpu, st);
		if (opt.json)
			report_stop(m, vcpu, &ev);
		break;
	case SW_INTERRUPTED:
		st->signal = 2;
		break;
	case SW_FINISHED:
		st->kind = KVMDBG_GDB_STOP_EXITED;
		st->signal = 0;
		break;
	case SW_ERROR:
	case SW_TIMEOUT:
		st->kind = KVMDBG_GDB_STOP_KILLED;
		st->signal = 6; /* SIGABRT: the VM cannot go on */
		break;
	}
	return 1;
}

static void g_interrupt(void *ctx)
{
	vmm_interrupt(ctx);
}

static void g_detach(void *ctx)
{
	struct vmm *m = ctx;
	int r = points_clear(m);

	if (r < 0)
		err("kvmdbg_vm_remove_all: %s", strerror(-r));
	vmm_drop_pending(m);
}

/* monitor phys on|off, monitor phys: the memory mode. */
static int g_monitor(void *ctx, const char *cmd, char *out, size_t outlen)
{
	(void)ctx;
	if (strcmp(cmd, "phys on") == 0)
		gdb_phys = true;
	else if (strcmp(cmd, "phys off") == 0)
		gdb_phys = false;
	else if (strcmp(cmd, "phys") != 0)
		return -ENOENT;
	return snprintf(out, outlen, "memory: guest-%s addresses\n",
			gdb_phys ? "physical" : "virtual (the selected thread's page tables)");
}

static const struct kvmdbg_gdb_ops gdb_ops = {
	.sz = sizeof(struct kvmdbg_gdb_ops),
	.arch = GDB_ARCH,
	.nthreads = g_nthreads,
	.thread_alive = g_thread_alive,
	.read_regs = g_read_regs,
	.write_regs = g_write_regs,
	.read_mem = g_read_mem,
	.write_mem = g_write_mem,
	.insert = g_insert,
	.remove = g_remove,
	.resume = g_resume,
	.stop_fd = g_stop_fd,
	.get_stop = g_get_stop,
	.interrupt = g_interrupt,
	.detach = g_detach,
	.monitor = g_monitor,
};

/* A client that sends nothing for this long after connecting is dropped and
 * the next one accepted (a port probe, a stuck peer). */
#define GDB_HANDSHAKE_MS 10000

/* --gdb: serve one client, then let the guest run on (detach) or end. A
 * device (a serial line or a virtio-serial port) is served once it has a
 * peer: a virtio port reports POLLHUP while nobody is connected on the
 * host side. */
static int run_gdb(struct vmm *m)
{
	KVMDBG_OPTS(kvmdbg_gdb_serve_opts, sopts, .handshake_ms = GDB_HANDSHAKE_MS);
	KVMDBG_OPTS(kvmdbg_gdb_stats, stats);
	struct kvmdbg_gdb *g = NULL;
	char ebuf[256];
	int lfd = -1, fd = -1, one = 1, end, r;
	bool device = opt.gdb[0] == '/';
	uint64_t before;

	r = kvmdbg_gdb_new(&gdb_ops, m, &g);
	if (r < 0) {
		err("kvmdbg_gdb_new: %s", strerror(-r));
		return 1;
	}
	alarm_vmm = m;
	if (opt.timeout)
		alarm((unsigned int)opt.timeout);
	if (device) {
		fd = kvmdbg_gdb_device_open(opt.gdb);
		if (fd < 0) {
			err("--gdb %s: %s", opt.gdb, strerror(-fd));
			kvmdbg_gdb_free(g);
			return 1;
		}
		info("gdb: serving on %s", opt.gdb);
	} else {
		lfd = kvmdbg_gdb_listen(opt.gdb, ebuf, sizeof(ebuf));
		if (lfd < 0) {
			err("--gdb %s", ebuf);
			kvmdbg_gdb_free(g);
			return 1;
		}
		info("gdb: listening on %s (target remote %s)", opt.gdb, opt.gdb);
	}
	for (;;) {
		if (device) {
			kvmdbg_gdb_device_wait(fd, -1);
		} else {
			fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0) {
				if (errno == EINTR)
					continue;
				err("accept: %s", strerror(errno));
				close(lfd);
				kvmdbg_gdb_free(g);
				return 1;
			}
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		kvmdbg_gdb_stats_get(g, &stats);
		before = stats.packets_in;
		end = kvmdbg_gdb_serve(g, fd, &sopts);
		kvmdbg_gdb_stats_get(g, &stats);
		if (!device)
			close(fd);
		if (end == KVMDBG_GDB_SILENT)
			info("gdb: the client sent nothing for %d ms; waiting for the next one",
			     GDB_HANDSHAKE_MS);
		else if (end != KVMDBG_GDB_DISCONNECTED || stats.packets_in > before)
			break;
		/* a connection that never spoke (a port probe): wait for the real client */
	}
	if (device)
		close(fd);
	else
		close(lfd);
	kvmdbg_gdb_free(g);
	if (end < 0) {
		err("gdb: the session failed: %s", strerror(-end));
		return 1;
	}
	switch (end) {
	case KVMDBG_GDB_DETACHED: {
		struct kvmdbg_event ev;
		enum stop_what w;
		int vcpu;

		info("gdb: detached; the guest runs on");
		while ((w = run_until_stop(m, -1, &vcpu, &ev)) == SW_EVENT)
			;
		if (w != SW_FINISHED)
			return 1;
		if (m->builtin)
			info("guest finished: counter = %" PRIu64, get64(m, DATA_GPA));
		else
			info("guest finished: exit value %" PRIu32, m->vcpus[0].exit_value);
		return 0;
	}
	case KVMDBG_GDB_KILLED:
		info("gdb: killed");
		return 0;
	case KVMDBG_GDB_DISCONNECTED:
		info("gdb: the client went away; stopping the guest");
		return 0;
	case KVMDBG_GDB_GUEST_EXITED:
		info("gdb: the guest ended");
		return 0;
	default:
		err("gdb: the session failed");
		return 1;
	}
}

int main(int argc, char **argv)
{
	static struct vmm m = { .kvm_fd = -1, .vm_fd = -1, .notify = { -1, -1 } };
	struct sigaction sa;
	int r, vr, ret;

	init_symbols();
	parse_args(argc, argv);
	pthread_mutex_init(&m.lock, NULL);
	pthread_mutex_init(&m.pin_lock, NULL);
	pthread_cond_init(&m.cond, NULL);
	m.first = -1;
	m.nvcpus = opt.probe ? 1 : opt.vcpus;
	for (unsigned int i = 0; i < MAX_VCPUS; i++) {
		m.vcpus[i].m = &m;
		m.vcpus[i].id = (int)i;
		m.vcpus[i].fd = -1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: interrupt KVM_RUN */
	sigaction(SIGALRM, &sa, NULL);

	m.kvm_fd = open_kvm();
	if (m.kvm_fd < 0)
		return 1;
	if (vmm_create(&m) < 0) {
		vmm_destroy(&m);
		return 1;
	}

	m.caps.sz = sizeof(m.caps);
	r = kvmdbg_probe(m.vm_fd, &m.caps);
	if (r < 0) {
		err("kvmdbg_probe: %s", strerror(-r));
		vmm_destroy(&m);
		return 1;
	}
	vr = kvmdbg_probe_verified(m.kvm_fd, &m.features);
	if (vr < 0)
		m.features = 0;

	if (opt.probe) {
		print_probe(&m.caps, vr, m.features);
		vmm_destroy(&m);
		return 0;
	}

	if (!m.caps.guest_debug) {
		err("this host's KVM has no guest debugging (KVM_CAP_SET_GUEST_DEBUG); "
		    "--probe shows what it has");
		vmm_destroy(&m);
		return 1;
	}
	info("host: %s KVM, %u hardware breakpoint slots, %u watchpoint slots%s",
	     arch_name(m.caps.arch), m.caps.hw_breakpoints, m.caps.hw_watchpoints,
	     m.caps.shared_slots ? " (shared)" : "");
	if (vr < 0)
		err("warning: kvmdbg_probe_verified: %s; relying on advertised capabilities",
		    strerror(-vr));
	else
		print_verified(m.features);
	builtin_guest = m.builtin;
	if (m.builtin)
		info("guest: %zu bytes of code at 0x%llx, bump() at 0x%" PRIx64 ", counter at "
		     "0x%llx, %lu loops%s",
		     (size_t)(demo_guest_end - demo_guest_start), CODE_GPA, symbols[SYM_BUMP].gva,
		     DATA_GPA, opt.loops, m.nvcpus > 1 ? " (vCPU n: counter + 8 * n)" : "");
	else if (m.lx) {
		char what[512];

		linux_describe(m.lx, what, sizeof(what));
		info("guest: %s", what);
	} else
		info("guest: %s, %s mode, entry 0x%" PRIx64, opt.flat ? opt.flat : opt.guest,
		     m.real_mode ? "real" : "long", m.entry);
	if (m.nvcpus > 1)
		info("%u vCPUs, one thread each, all-stop", m.nvcpus);

	if (session_start(&m) < 0)
		ret = 1;
	else
		ret = opt.gdb ? run_gdb(&m) : run_demo(&m);
	alarm(0);
	stop_vcpus(&m);
	if (m.lx)
		ret = linux_exit_status(m.lx, ret);
	vmm_destroy(&m);
	return ret;
}
