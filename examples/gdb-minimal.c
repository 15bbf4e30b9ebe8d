/* SPDX-License-Identifier: MIT */
/*
 * gdb-minimal: the smallest VMM with a working gdb server, built only
 * against the installed libraries:
 *
 *	cc -o gdb-minimal gdb-minimal.c -pthread \
 *	   $(pkg-config --cflags --libs kvmdbg kvmdbg-gdb)
 *	./gdb-minimal 1234 & gdb -ex 'target remote :1234'
 *
 * (or ./gdb-minimal /dev/ttyS1: a serial line or a virtio-serial port).
 *
 * x86-64 hosts. One vCPU in real mode runs `inc %ax; jmp .-1` at 0x1000
 * (linear = guest-virtual = guest-physical): stepi, hbreak, watch, Ctrl-C,
 * registers and memory; detach lets it run on, kill ends it. (break: in the
 * x86 VM test bed, a real-mode INT3 reached the guest instead of exiting.)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <kvmdbg/kvmdbg.h>
#include <kvmdbg/gdb.h>

#define MEM_SIZE 0x10000
#define CODE 0x1000

static struct {
	int vcpu_fd, notify[2];
	uint8_t *mem;
	struct kvm_run *run;
	struct kvmdbg_vm *vm;
	struct kvmdbg_vcpu *vcpu;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum kvmdbg_gdb_action go; /* STAY: parked */
	int running, interrupt;
	struct kvmdbg_gdb_stop stop;
} m = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* ---- guest memory: 64 KiB at 0, real mode (virtual = physical) ---- */
static long mem_copy(uint64_t a, void *buf, size_t len, int wr)
{
	if (a >= MEM_SIZE)
		return -EFAULT;
	if (len > MEM_SIZE - a)
		len = MEM_SIZE - a;
	memcpy(wr ? m.mem + a : buf, wr ? buf : m.mem + a, len);
	return (long)len;
}
static int lib_read(void *c, uint64_t a, void *b, size_t l)
{
	(void)c;
	return mem_copy(a, b, l, 0) == (long)l ? 0 : -EFAULT;
}
static int lib_write(void *c, uint64_t a, const void *b, size_t l)
{
	(void)c;
	return mem_copy(a, (void *)b, l, 1) == (long)l ? 0 : -EFAULT;
}
static long g_read_mem(void *c, int t, uint64_t a, void *b, size_t l)
{
	(void)c; (void)t;
	return mem_copy(a, b, l, 0);
}
static long g_write_mem(void *c, int t, uint64_t a, const void *b, size_t l)
{
	(void)c; (void)t;
	return mem_copy(a, (void *)b, l, 1);
}

/* ---- the vCPU thread: runs when told, parks at every reportable stop ---- */
static void on_kick(int sig) { (void)sig; }

static void *vcpu_thread(void *arg)
{
	(void)arg;
	for (;;) {
		struct kvmdbg_gdb_stop st = { .sz = sizeof(st), .signal = 5 };
		struct kvmdbg_event ev;

		pthread_mutex_lock(&m.lock);
		while (m.go == KVMDBG_GDB_STAY)
			pthread_cond_wait(&m.cond, &m.lock);
		kvmdbg_vcpu_set_step(m.vcpu, m.go == KVMDBG_GDB_STEP);
		pthread_mutex_unlock(&m.lock);
		for (;;) {
			if (kvmdbg_vcpu_prepare(m.vcpu) < 0 ||
			    __atomic_load_n(&m.interrupt, __ATOMIC_SEQ_CST)) {
				st.signal = 2;
				break;
			}
			if (ioctl(m.vcpu_fd, KVM_RUN, 0) < 0 && errno == EINTR)
				continue; /* kicked: g_interrupt() */
			if (m.run->exit_reason != KVM_EXIT_DEBUG) { /* HLT, I/O, a crash */
				fprintf(stderr, "gdb-minimal: exit reason %u\n", m.run->exit_reason);
				st.kind = KVMDBG_GDB_STOP_KILLED;
				break;
			}
			if (kvmdbg_vcpu_handle_exit(m.vcpu, &ev) < 0 ||
			    !KVMDBG_STOP_IS_REPORTABLE(ev.kind))
				continue;
			if (ev.kind == KVMDBG_STOP_WATCH) /* Z2..Z4 order */
				st.reason = KVMDBG_GDB_REASON_WATCH + (ev.type - KVMDBG_WATCH_WRITE);
			else if (ev.kind == KVMDBG_STOP_BREAK)
				st.reason = ev.type == KVMDBG_BREAK_SW ? KVMDBG_GDB_REASON_SWBREAK
								       : KVMDBG_GDB_REASON_HWBREAK;
			st.data_addr = ev.data_addr;
			break;
		}
		pthread_mutex_lock(&m.lock);
		m.stop = st;
		m.go = KVMDBG_GDB_STAY;
		m.running = 0;
		pthread_mutex_unlock(&m.lock);
		if (write(m.notify[1], "s", 1) != 1)
			abort();
	}
	return NULL;
}

/* ---- what libkvmdbg-gdb needs ---- */
static int g_nthreads(void *c) { (void)c; return 1; }
static int g_alive(void *c, int t) { (void)c; (void)t; return 1; }

static uint8_t *reg(uint8_t *b, const char *name)
{
	struct kvmdbg_gdb_reg r = { .sz = sizeof(r) };

	return kvmdbg_gdb_reg_lookup(KVMDBG_GDB_ARCH_X86_64, name, &r) < 0 ? NULL : b + r.offset;
}
/* struct kvm_regs, field by field */
static const char *const gpr[] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
				   "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "eflags" };

static int g_read_regs(void *c, int t, uint8_t *b)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	size_t n;

	(void)c; (void)t;
	if (ioctl(m.vcpu_fd, KVM_GET_REGS, &r) < 0 || ioctl(m.vcpu_fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	kvmdbg_gdb_reg_count(KVMDBG_GDB_ARCH_X86_64, &n);
	memset(b, 0, n);
	for (int i = 0; i < 18; i++)
		memcpy(reg(b, gpr[i]), (uint64_t *)&r + i, i == 17 ? 4 : 8);
	memcpy(reg(b, "cs"), &s.cs.selector, 2);
	memcpy(reg(b, "ss"), &s.ss.selector, 2);
	memcpy(reg(b, "ds"), &s.ds.selector, 2);
	memcpy(reg(b, "cr0"), &s.cr0, 8);
	return 0;
}

static int g_write_regs(void *c, int t, const uint8_t *b)
{
	struct kvm_regs r = { 0 };

	(void)c; (void)t;
	for (int i = 0; i < 18; i++)
		memcpy((uint64_t *)&r + i, reg((uint8_t *)b, gpr[i]), i == 17 ? 4 : 8);
	r.rflags |= 2;
	if (ioctl(m.vcpu_fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	return kvmdbg_vcpu_regs_changed(m.vcpu);
}

static int g_insert(void *c, int t, enum kvmdbg_gdb_point p, uint64_t a, uint64_t k)
{
	(void)c; (void)t; /* Z0..Z4 are enum kvmdbg_type's numbers */
	return kvmdbg_vm_insert(m.vm, (enum kvmdbg_type)p, a, k);
}
static int g_remove(void *c, int t, enum kvmdbg_gdb_point p, uint64_t a, uint64_t k)
{
	(void)c; (void)t;
	return kvmdbg_vm_remove(m.vm, (enum kvmdbg_type)p, a, k);
}

static int g_resume(void *c, const enum kvmdbg_gdb_action *act)
{
	(void)c;
	pthread_mutex_lock(&m.lock);
	m.go = act[0];
	m.running = act[0] != KVMDBG_GDB_STAY;
	__atomic_store_n(&m.interrupt, 0, __ATOMIC_SEQ_CST);
	m.run->immediate_exit = 0;
	pthread_cond_signal(&m.cond);
	pthread_mutex_unlock(&m.lock);
	return 0;
}
static int g_stop_fd(void *c) { (void)c; return m.notify[0]; }
static int g_get_stop(void *c, struct kvmdbg_gdb_stop *st)
{
	char b[8];
	int stopped;

	(void)c;
	while (read(m.notify[0], b, sizeof(b)) > 0)
		;
	pthread_mutex_lock(&m.lock);
	stopped = !m.running;
	if (stopped)
		*st = m.stop;
	pthread_mutex_unlock(&m.lock);
	return stopped;
}
static void g_interrupt(void *c)
{
	(void)c;
	__atomic_store_n(&m.interrupt, 1, __ATOMIC_SEQ_CST);
	m.run->immediate_exit = 1;
	pthread_kill(m.thread, SIGUSR1);
}
static void g_detach(void *c) { (void)c; kvmdbg_vm_remove_all(m.vm); }

static const struct kvmdbg_gdb_ops ops = {
	.sz = sizeof(ops), .arch = KVMDBG_GDB_ARCH_X86_64,
	.nthreads = g_nthreads, .thread_alive = g_alive, .read_regs = g_read_regs,
	.write_regs = g_write_regs, .read_mem = g_read_mem, .write_mem = g_write_mem,
	.insert = g_insert, .remove = g_remove, .resume = g_resume, .stop_fd = g_stop_fd,
	.get_stop = g_get_stop, .interrupt = g_interrupt, .detach = g_detach,
};
static const struct kvmdbg_mem_ops lib_mem = { .read = lib_read, .write = lib_write };

int main(int argc, char **argv)
{
	static const uint8_t guest[] = { 0x40, 0xeb, 0xfd }; /* inc %ax; jmp .-1 */
	struct kvm_userspace_memory_region region = { .memory_size = MEM_SIZE };
	struct sigaction sa = { .sa_handler = on_kick };
	KVMDBG_OPTS(kvmdbg_vm_opts, vopts, .mem = &lib_mem);
	KVMDBG_OPTS(kvmdbg_gdb_serve_opts, sopts, .handshake_ms = 10000);
	struct kvm_sregs s;
	struct kvm_regs r = { .rip = CODE, .rflags = 2 };
	struct kvmdbg_gdb *g;
	const char *spec;
	char e[128];
	int kvm, vm, lfd, fd, end;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
	m.mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	region.userspace_addr = (uintptr_t)m.mem;
	if (vm < 0 || m.mem == MAP_FAILED || ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0 ||
	    (m.vcpu_fd = ioctl(vm, KVM_CREATE_VCPU, 0)) < 0) {
		perror("gdb-minimal: KVM");
		return 1;
	}
	memcpy(m.mem + CODE, guest, sizeof(guest));
	m.run = mmap(NULL, (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE,
		     MAP_SHARED, m.vcpu_fd, 0);
	if (m.run == MAP_FAILED || ioctl(m.vcpu_fd, KVM_GET_SREGS, &s) < 0)
		return 1;
	s.cs.base = 0;
	s.cs.selector = 0;
	if (ioctl(m.vcpu_fd, KVM_SET_SREGS, &s) < 0 || ioctl(m.vcpu_fd, KVM_SET_REGS, &r) < 0)
		return 1;
	if (kvmdbg_vm_new(vm, &vopts, &m.vm) < 0 ||
	    kvmdbg_vcpu_new(m.vm, m.vcpu_fd, m.run, &m.vcpu) < 0 ||
	    kvmdbg_gdb_new(&ops, NULL, &g) < 0 || pipe2(m.notify, O_NONBLOCK) < 0)
		return 1;
	sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: the kick ends KVM_RUN */
	pthread_create(&m.thread, NULL, vcpu_thread, NULL);

	spec = argc > 2 && !strcmp(argv[1], "--gdb") ? argv[2] : argc > 1 ? argv[1] : "1234";
	if (spec[0] == '/') { /* a device */
		fd = kvmdbg_gdb_device_open(spec);
		if (fd < 0 || kvmdbg_gdb_device_wait(fd, -1) < 0)
			return 1;
		end = kvmdbg_gdb_serve(g, fd, NULL);
	} else {
		lfd = kvmdbg_gdb_listen(spec, e, sizeof(e));
		if (lfd < 0) {
			fprintf(stderr, "gdb-minimal: %s\n", e);
			return 1;
		}
		fprintf(stderr, "gdb-minimal: target remote %s\n", spec);
		do {
			fd = accept(lfd, NULL, NULL);
			end = fd < 0 ? -errno : kvmdbg_gdb_serve(g, fd, &sopts);
			close(fd);
		} while (end == KVMDBG_GDB_SILENT);
	}
	fprintf(stderr, "gdb-minimal: session ended (%d)\n", end);
	if (end == KVMDBG_GDB_DETACHED) { /* runs on for a second, then stops */
		g_resume(NULL, &(enum kvmdbg_gdb_action){ KVMDBG_GDB_CONTINUE });
		sleep(1);
		g_interrupt(NULL);
	}
	return end < 0;
}
