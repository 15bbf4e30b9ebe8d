/* SPDX-License-Identifier: MIT */
/*
 * kvmdbg-run: a minimal x86-64 VMM with a built-in guest, debugged through
 * libkvmdbg's public API and nothing else.
 *
 * It creates its own VM (memory, identity page tables, GDT, long mode at
 * CPL0), copies the demo guest of demo-guest.S into it and drives it with
 * the run loop documented in <kvmdbg/kvmdbg.h>: kvmdbg_vcpu_prepare(),
 * KVM_RUN, kvmdbg_vcpu_handle_exit() on KVM_EXIT_DEBUG.
 *
 * Exit status: 0 the guest ran to completion with the expected counter,
 * 1 a runtime failure (no /dev/kvm, an ioctl or library call failed, the
 * guest crashed or timed out), 2 bad arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include <kvmdbg/kvmdbg.h>

#define PROG "kvmdbg-run"

/* Guest physical layout; guest-virtual addresses are identical. */
#define MEM_SIZE   (4ULL << 20)
#define GDT_GPA    0x1000ULL
#define TSS_GPA    0x1100ULL
#define PML4_GPA   0x2000ULL
#define PDPT_GPA   0x3000ULL
#define PD_GPA     0x4000ULL
#define CODE_GPA   0x100000ULL
#define DATA_GPA   0x200000ULL /* the 64-bit counter */
#define STACK_TOP  0x300000ULL
#define EXIT_PORT  0xf4

#define MAX_POINTS 8

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
	bool probe, json, force;
	unsigned long step, max_stops, loops, timeout;
	unsigned int npoints;
	struct point points[MAX_POINTS];
} opt = {
	.step = 4,
	.max_stops = 3,
	.loops = 10,
	.timeout = 10,
};

struct vmm {
	int kvm_fd, vm_fd, vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem;
	uint64_t features;
	struct kvmdbg_caps caps;
	struct kvmdbg_vm *dbg;
	struct kvmdbg_vcpu *dbgv;
	uint32_t exit_value;
	unsigned int nstops;
};

static volatile sig_atomic_t timed_out;
static struct kvm_run *volatile alarm_run;

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
		"Usage: " PROG " [OPTION]...\n"
		"A minimal x86-64 VMM that debugs its built-in guest with libkvmdbg.\n"
		"\n"
		"Without options: probe the host, put a hardware breakpoint on bump(),\n"
		"continue to it 3 times, single-step 4 instructions, remove the\n"
		"breakpoint, run the guest to completion and print its counter.\n"
		"\n"
		"  --probe              print advertised vs verified capabilities and exit\n"
		"  --hbreak ADDR|SYM    hardware execution breakpoint (repeatable)\n"
		"  --break ADDR|SYM     software breakpoint (repeatable)\n"
		"  --watch ADDR|SYM[:LEN]  write watchpoint, LEN bytes (default 8)\n"
		"  --step N             single-step N instructions after the stops (default 4)\n"
		"  --max-stops N        breakpoint/watchpoint stops to report before stepping\n"
		"                       (default 3)\n"
		"  --loops N            iterations of the guest's loop (default 10)\n"
		"  --timeout SEC        give up if the guest runs longer (default 10, 0: never)\n"
		"  --force              use features the verified probe says do not work\n"
		"  --json               one JSON object per line on stdout: one per stop\n"
		"                       (kind, type, pc, addr, len, data_addr, vcpu, hits,\n"
		"                       symbol), then {\"kind\":\"exit\",...}; other text on stderr\n"
		"  --help               show this help\n"
		"\n"
		"ADDR is a guest address (C syntax: 0x100020), SYM is one of the guest's\n"
		"symbols, optionally with +OFFSET:\n");
	for (size_t i = 0; i < NR_SYMBOLS; i++)
		fprintf(f, "  %-8s 0x%-8" PRIx64 " %s\n", symbols[i].name, symbols[i].gva,
			symbols[i].what);
	fprintf(f, "\nExit status: 0 success, 1 runtime failure, 2 bad arguments.\n");
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
	p->len = type == KVMDBG_BREAK_HW || type == KVMDBG_BREAK_SW ? 1 : 8;
	colon = strchr(buf, ':');
	if (colon) {
		if (type != KVMDBG_WATCH_WRITE)
			bad_args("--%s: '%s': a length is only for --watch", optname, arg);
		*colon = '\0';
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
	       O_TIMEOUT, O_FORCE, O_JSON };
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
			break;
		case O_MAX_STOPS:
			opt.max_stops = parse_count("max-stops", optarg, 1000000);
			break;
		case O_LOOPS:
			opt.loops = parse_count("loops", optarg, 100000000);
			if (!opt.loops)
				bad_args("--loops: must be at least 1");
			break;
		case O_TIMEOUT:
			opt.timeout = parse_count("timeout", optarg, 86400);
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
		bad_args("unexpected argument '%s'", argv[optind]);
	if (opt.probe && opt.npoints)
		bad_args("--probe does not run the guest: no breakpoints with it");
	if (!opt.probe && !opt.npoints)
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

static int set_cpuid(struct vmm *m)
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
	r = ioctl(m->vcpu_fd, KVM_SET_CPUID2, cpuid) < 0 ? -errno : 0;
	if (r)
		err("KVM_SET_CPUID2: %s", strerror(-r));
	free(cpuid);
	return r;
}

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

/* Identity page tables, GDT, TSS, the guest's code; then long mode at CPL0. */
static int setup_guest(struct vmm *m)
{
	const uint64_t P = 1, RW = 2, PS = 0x80;
	size_t code_len = (size_t)(demo_guest_end - demo_guest_start);
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

	memcpy(m->mem + CODE_GPA, demo_guest_start, code_len);
	put64(m, DATA_GPA, 0);

	if (ioctl(m->vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
		err("KVM_GET_SREGS: %s", strerror(errno));
		return -1;
	}
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
	if (ioctl(m->vcpu_fd, KVM_SET_SREGS, &sregs) < 0) {
		err("KVM_SET_SREGS (long mode): %s", strerror(errno));
		return -1;
	}

	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE_GPA;
	regs.rsp = STACK_TOP;
	regs.rdi = DATA_GPA;
	regs.rsi = opt.loops;
	regs.rflags = 0x2;
	if (ioctl(m->vcpu_fd, KVM_SET_REGS, &regs) < 0) {
		err("KVM_SET_REGS: %s", strerror(errno));
		return -1;
	}
	return 0;
}

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
	m->vcpu_fd = ioctl(m->vm_fd, KVM_CREATE_VCPU, 0);
	if (m->vcpu_fd < 0) {
		err("KVM_CREATE_VCPU: %s", strerror(errno));
		return -1;
	}
	size = ioctl(m->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run)) {
		err("KVM_GET_VCPU_MMAP_SIZE: %s", size < 0 ? strerror(errno) : "too small");
		return -1;
	}
	m->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, m->vcpu_fd, 0);
	if (m->run == MAP_FAILED) {
		m->run = NULL;
		err("mmap of the vCPU's kvm_run: %s", strerror(errno));
		return -1;
	}
	m->run_size = (size_t)size;
	if (set_cpuid(m) < 0)
		return -1;
	return setup_guest(m);
}

static void vmm_destroy(struct vmm *m)
{
	kvmdbg_vcpu_free(m->dbgv);
	kvmdbg_vm_free(m->dbg);
	if (m->run)
		munmap(m->run, m->run_size);
	if (m->vcpu_fd >= 0)
		close(m->vcpu_fd);
	if (m->vm_fd >= 0)
		close(m->vm_fd);
	if (m->mem)
		munmap(m->mem, MEM_SIZE);
	if (m->kvm_fd >= 0)
		close(m->kvm_fd);
}

/* Guest memory by guest-virtual address (identity mapped), for software breakpoints. */
static int mem_read(void *ctx, uint64_t gva, void *buf, size_t len)
{
	struct vmm *m = ctx;

	if (gva >= MEM_SIZE || len > MEM_SIZE - gva)
		return -EFAULT;
	memcpy(buf, m->mem + gva, len);
	return 0;
}

static int mem_write(void *ctx, uint64_t gva, const void *buf, size_t len)
{
	struct vmm *m = ctx;

	if (gva >= MEM_SIZE || len > MEM_SIZE - gva)
		return -EFAULT;
	memcpy(m->mem + gva, buf, len);
	return 0;
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
static const char *symbolize(uint64_t gva, char *buf, size_t size)
{
	const struct symbol *best = NULL;
	uint64_t code_end = CODE_GPA + (uint64_t)(demo_guest_end - demo_guest_start);

	buf[0] = '\0';
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

static void report_stop(struct vmm *m, const struct kvmdbg_event *ev)
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
		printf("\"vcpu\":0,\"hits\":%" PRIu32 ",\"symbol\":", ev->hits);
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

/* ---- running ------------------------------------------------------------ */

enum run_result { RUN_STOP, RUN_DONE, RUN_ERROR };

static void on_alarm(int sig)
{
	struct kvm_run *run = alarm_run;

	(void)sig;
	timed_out = 1;
	if (run)
		run->immediate_exit = 1;
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

/* Run until a reportable stop (filled into ev) or the guest's exit port. */
static enum run_result run_until_stop(struct vmm *m, struct kvmdbg_event *ev)
{
	struct kvm_run *run = m->run;
	int r;

	for (;;) {
		r = kvmdbg_vcpu_prepare(m->dbgv);
		if (r < 0) {
			err("kvmdbg_vcpu_prepare: %s", strerror(-r));
			return RUN_ERROR;
		}
		if (timed_out)
			goto timeout;
		if (ioctl(m->vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				run->immediate_exit = 0;
				if (timed_out)
					goto timeout;
				continue;
			}
			err("KVM_RUN: %s", strerror(errno));
			return RUN_ERROR;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_DEBUG:
			memset(ev, 0, sizeof(*ev));
			r = kvmdbg_vcpu_handle_exit(m->dbgv, ev);
			if (r < 0) {
				err("kvmdbg_vcpu_handle_exit: %s", strerror(-r));
				return RUN_ERROR;
			}
			if (KVMDBG_STOP_IS_REPORTABLE(ev->kind))
				return RUN_STOP;
			if (ev->kind == KVMDBG_STOP_GUEST)
				info("note: the guest's own debug exception at pc=0x%" PRIx64
				     ", passed back to the guest", ev->pc);
			continue;
		case KVM_EXIT_IO:
			if (run->io.port == EXIT_PORT && run->io.direction == KVM_EXIT_IO_OUT &&
			    run->io.size == 4) {
				memcpy(&m->exit_value, (uint8_t *)run + run->io.data_offset, 4);
				return RUN_DONE;
			}
			err("guest stopped: unexpected I/O %s port 0x%x size %u",
			    run->io.direction == KVM_EXIT_IO_OUT ? "out to" : "in from",
			    run->io.port, run->io.size);
			return RUN_ERROR;
		case KVM_EXIT_HLT:
			err("guest stopped: it halted before reaching the exit port");
			return RUN_ERROR;
		case KVM_EXIT_SHUTDOWN:
			err("guest stopped: KVM_EXIT_SHUTDOWN (triple fault)");
			return RUN_ERROR;
		case KVM_EXIT_FAIL_ENTRY:
			err("guest stopped: KVM_EXIT_FAIL_ENTRY, reason 0x%llx",
			    (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			return RUN_ERROR;
		case KVM_EXIT_INTERNAL_ERROR:
			dump_internal_error(run);
			return RUN_ERROR;
		case KVM_EXIT_INTR:
			continue;
		default:
			err("guest stopped: unexpected exit reason %" PRIu32, run->exit_reason);
			return RUN_ERROR;
		}
	}
timeout:
	err("the guest did not finish within %lu s (--timeout)", opt.timeout);
	return RUN_ERROR;
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

static uint64_t feature_for(enum kvmdbg_type t)
{
	switch (t) {
	case KVMDBG_BREAK_SW:
		return KVMDBG_FEAT_SW_BREAK;
	case KVMDBG_BREAK_HW:
		return KVMDBG_FEAT_HW_BREAK;
	case KVMDBG_WATCH_WRITE:
		return KVMDBG_FEAT_WATCH_WRITE;
	case KVMDBG_WATCH_READ:
		return KVMDBG_FEAT_WATCH_READ;
	default:
		return KVMDBG_FEAT_WATCH_ACCESS;
	}
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
		if (lacks(m, feature_for(p->type), what))
			continue;
		r = kvmdbg_insert(m->dbg, p->type, p->addr, p->len);
		if (r == -ENOSPC) {
			err("%s: not enough free hardware slots (needs %d)", what,
			    kvmdbg_slots_needed(m->dbg, p->type, p->addr, p->len));
			return -1;
		}
		if (r < 0) {
			err("kvmdbg_insert(%s, len %" PRIu64 "): %s", what, p->len, strerror(-r));
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
		r = kvmdbg_remove(m->dbg, p->type, p->addr, p->len);
		if (r < 0) {
			err("kvmdbg_remove(%s at 0x%" PRIx64 "): %s", kvmdbg_type_name(p->type),
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

static int run_demo(struct vmm *m)
{
	struct kvmdbg_vm_opts vo;
	struct kvmdbg_event ev;
	enum run_result rr = RUN_STOP;
	unsigned long stops = 0;
	uint64_t counter;
	int r, npoints;

	memset(&vo, 0, sizeof(vo));
	vo.sz = sizeof(vo);
	vo.mem = &mem_ops;
	vo.mem_ctx = m;
	vo.overlay = KVMDBG_OVERLAY_OFF;
	vo.features = m->features;
	r = kvmdbg_vm_new(m->vm_fd, &vo, &m->dbg);
	if (r < 0) {
		err("kvmdbg_vm_new: %s", strerror(-r));
		return 1;
	}
	r = kvmdbg_vcpu_new(m->dbg, m->vcpu_fd, m->run, &m->dbgv);
	if (r < 0) {
		err("kvmdbg_vcpu_new: %s", strerror(-r));
		return 1;
	}

	npoints = insert_points(m);
	if (npoints < 0)
		return 1;

	alarm_run = m->run;
	if (opt.timeout)
		alarm((unsigned int)opt.timeout);

	/* 1. Continue to the breakpoints. */
	if (npoints > 0 && opt.max_stops > 0) {
		info("continuing to the breakpoints, up to %lu stops", opt.max_stops);
		while (stops < opt.max_stops) {
			rr = run_until_stop(m, &ev);
			if (rr != RUN_STOP)
				break;
			report_stop(m, &ev);
			stops++;
		}
		if (rr == RUN_DONE)
			info("the guest finished after %lu of %lu stops", stops, opt.max_stops);
	}

	/* 2. Single-step. */
	if (rr == RUN_STOP && opt.step > 0 && !lacks(m, KVMDBG_FEAT_STEP, "single-step")) {
		r = kvmdbg_vcpu_set_step(m->dbgv, 1);
		if (r < 0) {
			err("kvmdbg_vcpu_set_step: %s", strerror(-r));
			return 1;
		}
		info("single-stepping %lu instruction%s", opt.step, opt.step == 1 ? "" : "s");
		for (unsigned long i = 0; i < opt.step; i++) {
			rr = run_until_stop(m, &ev);
			if (rr != RUN_STOP)
				break;
			report_stop(m, &ev);
		}
		r = kvmdbg_vcpu_set_step(m->dbgv, 0);
		if (r < 0) {
			err("kvmdbg_vcpu_set_step: %s", strerror(-r));
			return 1;
		}
	}

	/* 3. Remove the breakpoints and run to completion. */
	if (rr == RUN_STOP) {
		if (remove_points(m) < 0)
			return 1;
		info("running to completion");
		while ((rr = run_until_stop(m, &ev)) == RUN_STOP)
			report_stop(m, &ev); /* only if the library reported a stale hit */
	}
	alarm(0);
	if (rr == RUN_ERROR)
		return 1;

	counter = get64(m, DATA_GPA);
	if (opt.json)
		printf("{\"kind\":\"exit\",\"counter\":%" PRIu64 ",\"expected\":%lu,\"stops\":%u}\n",
		       counter, opt.loops, m->nstops);
	else
		printf("guest finished: counter = %" PRIu64 " (expected %lu), %u stop%s reported\n",
		       counter, opt.loops, m->nstops, m->nstops == 1 ? "" : "s");
	if (counter != opt.loops || m->exit_value != (uint32_t)opt.loops) {
		err("wrong result: counter %" PRIu64 ", exit port value %" PRIu32
		    ", expected %lu", counter, m->exit_value, opt.loops);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct vmm m = { .kvm_fd = -1, .vm_fd = -1, .vcpu_fd = -1 };
	struct sigaction sa;
	int r, vr, ret;

	init_symbols();
	parse_args(argc, argv);

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
	info("guest: %zu bytes of code at 0x%llx, bump() at 0x%" PRIx64 ", counter at 0x%llx, "
	     "%lu loops",
	     (size_t)(demo_guest_end - demo_guest_start), CODE_GPA, symbols[SYM_BUMP].gva, DATA_GPA,
	     opt.loops);

	ret = run_demo(&m);
	vmm_destroy(&m);
	return ret;
}
