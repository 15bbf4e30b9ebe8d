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
 * What gdb needs is <kvmdbg/gdb-kvm.h>'s: this file only gives it the vCPU,
 * guest-physical memory, and a thread that runs when told and says why it
 * stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <kvmdbg/kvmdbg.h>
#include <kvmdbg/gdb-kvm.h>

#define MEM_SIZE 0x10000
#define CODE 0x1000

static struct {
	uint8_t *mem;
	struct kvm_run *run;
	struct kvmdbg_vcpu *vcpu;
	struct kvmdbg_gdb_kvm *gdb;
	int vcpu_fd, go;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
} m = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* Guest-physical memory: 64 KiB at 0. Real mode: virtual = physical. */
static long phys(void *c, uint64_t a, void *buf, size_t len, int wr)
{
	(void)c;
	if (a >= MEM_SIZE)
		return -EFAULT;
	if (len > MEM_SIZE - a)
		len = MEM_SIZE - a;
	memcpy(wr ? m.mem + a : buf, wr ? buf : m.mem + a, len);
	return (long)len;
}
static int lib_read(void *c, uint64_t a, void *b, size_t l)
{
	return phys(c, a, b, l, 0) == (long)l ? 0 : -EFAULT;
}
static int lib_write(void *c, uint64_t a, const void *b, size_t l)
{
	return phys(c, a, (void *)b, l, 1) == (long)l ? 0 : -EFAULT;
}

/* The vCPU thread: runs when the layer says so, tells it why it stopped. */
static void on_kick(int sig) { (void)sig; }
static void *vcpu_thread(void *arg)
{
	(void)arg;
	for (;;) {
		enum kvmdbg_gdb_kvm_why why = KVMDBG_GDB_KVM_FAILED;
		struct kvmdbg_event ev;

		pthread_mutex_lock(&m.lock);
		while (!m.go)
			pthread_cond_wait(&m.cond, &m.lock);
		m.go = 0;
		pthread_mutex_unlock(&m.lock);
		while (kvmdbg_vcpu_prepare(m.vcpu) == 0) {
			if (ioctl(m.vcpu_fd, KVM_RUN, 0) < 0) {
				if (errno == EINTR)
					why = KVMDBG_GDB_KVM_KICKED;
				break;
			}
			if (m.run->exit_reason != KVM_EXIT_DEBUG) { /* HLT, I/O, a crash */
				fprintf(stderr, "gdb-minimal: exit reason %u\n", m.run->exit_reason);
				break;
			}
			if (kvmdbg_vcpu_handle_exit(m.vcpu, &ev) == 0 && KVMDBG_STOP_IS_REPORTABLE(ev.kind)) {
				why = KVMDBG_GDB_KVM_EVENT;
				break;
			}
		}
		kvmdbg_gdb_kvm_stopped(m.gdb, 0, why, why == KVMDBG_GDB_KVM_EVENT ? &ev : NULL);
	}
	return NULL;
}
static int resume(void *c, unsigned int vcpu)
{
	(void)c; (void)vcpu;
	pthread_mutex_lock(&m.lock);
	m.go = 1;
	pthread_cond_signal(&m.cond);
	pthread_mutex_unlock(&m.lock);
	return 0;
}
static void kick(void *c, unsigned int vcpu)
{
	(void)c; (void)vcpu;
	pthread_kill(m.thread, SIGUSR1);
}

static const struct kvmdbg_mem_ops lib_mem = { .read = lib_read, .write = lib_write };

int main(int argc, char **argv)
{
	static const uint8_t guest[] = { 0x40, 0xeb, 0xfd }; /* inc %ax; jmp .-1 */
	struct kvm_userspace_memory_region region = { .memory_size = MEM_SIZE };
	struct sigaction sa = { .sa_handler = on_kick };
	KVMDBG_OPTS(kvmdbg_vm_opts, vopts, .mem = &lib_mem);
	KVMDBG_OPTS(kvmdbg_gdb_serve_opts, sopts, .handshake_ms = 10000);
	KVMDBG_OPTS(kvmdbg_gdb_kvm_vm, gvm, .nvcpus = 1, .vcpu_fds = &m.vcpu_fd, .runs = &m.run,
		    .vcpus = &m.vcpu, .phys_access = phys, .resume = resume, .kick = kick);
	struct kvm_sregs s;
	struct kvm_regs r = { .rip = CODE, .rflags = 2 };
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
	if (kvmdbg_probe_verified(kvm, &gvm.features) < 0) /* what this host delivers */
		gvm.features = 0;
	if (kvmdbg_vm_new(vm, &vopts, &gvm.vm) < 0 ||
	    kvmdbg_vcpu_new(gvm.vm, m.vcpu_fd, m.run, &m.vcpu) < 0 ||
	    kvmdbg_gdb_kvm_new(&gvm, NULL, &m.gdb) < 0)
		return 1;
	sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: the kick ends KVM_RUN */
	pthread_create(&m.thread, NULL, vcpu_thread, NULL);

	spec = argc > 2 && !strcmp(argv[1], "--gdb") ? argv[2] : argc > 1 ? argv[1] : "1234";
	if (spec[0] == '/') { /* a device */
		fd = kvmdbg_gdb_device_open(spec);
		if (fd < 0 || kvmdbg_gdb_device_wait(fd, -1) < 0)
			return 1;
		end = kvmdbg_gdb_kvm_serve(m.gdb, fd, NULL);
	} else {
		lfd = kvmdbg_gdb_listen(spec, e, sizeof(e));
		if (lfd < 0) {
			fprintf(stderr, "gdb-minimal: %s\n", e);
			return 1;
		}
		fprintf(stderr, "gdb-minimal: target remote %s\n", spec);
		do {
			fd = accept(lfd, NULL, NULL);
			end = fd < 0 ? -errno : kvmdbg_gdb_kvm_serve(m.gdb, fd, &sopts);
			close(fd);
		} while (end == KVMDBG_GDB_SILENT);
	}
	fprintf(stderr, "gdb-minimal: session ended (%d)\n", end);
	if (end == KVMDBG_GDB_DETACHED) /* the guest runs on for a second */
		sleep(1);
	return end < 0;
}
