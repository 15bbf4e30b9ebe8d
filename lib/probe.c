/* SPDX-License-Identifier: MIT */
/*
 * The verified probe's runner: kvmdbg_probe_verified() proves in a
 * throwaway micro-VM which debug features really deliver the exit they
 * promise. This file owns what every arch shares -- the micro-VM, the
 * wall-clock deadline, the budget of KVM_RUNs -- and runs the table of
 * checks of the host arch (lib/arch/<arch>/probe.c, kvmdbg_host.verified).
 *
 * A feature bit is set only when its check saw the exact exit the
 * architecture promises. Anything else -- another exit, a spent budget, a
 * failed ioctl -- means "not proven" for that check only. The probe as a
 * whole fails only when the micro-VM cannot be set up (creating it,
 * loading the guest, reading its capabilities) or when the deadline
 * passes (-ETIMEDOUT).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <linux/kvm.h>

#include "kvmdbg-int.h"
#include "microvm.h"

#define NSEC_PER_SEC 1000000000ll

static bool past_deadline(struct kvmdbg_probe *p)
{
	struct timespec now;

	if (p->timed_out)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > p->deadline.tv_sec ||
	    (now.tv_sec == p->deadline.tv_sec && now.tv_nsec >= p->deadline.tv_nsec))
		p->timed_out = true;
	return p->timed_out;
}

static void set_deadline(struct kvmdbg_probe *p, long long timeout_ns)
{
	clock_gettime(CLOCK_MONOTONIC, &p->deadline);
	p->deadline.tv_sec += (time_t)(timeout_ns / NSEC_PER_SEC);
	p->deadline.tv_nsec += (long)(timeout_ns % NSEC_PER_SEC);
	if (p->deadline.tv_nsec >= NSEC_PER_SEC) {
		p->deadline.tv_sec++;
		p->deadline.tv_nsec -= NSEC_PER_SEC;
	}
}

bool kvmdbg_probe_start(struct kvmdbg_probe *p, uint64_t pc, uint64_t sp)
{
	p->budget = p->checks->run_budget;
	return kvmdbg_microvm_start(p->vm, 0, pc, sp) == 0;
}

bool kvmdbg_probe_run(struct kvmdbg_probe *p)
{
	for (;;) {
		int r;

		if (!p->budget || past_deadline(p))
			return false;
		r = kvmdbg_ioctl(p->fd, KVM_RUN, NULL);
		/* A signal of the caller's (profiler, timer): again, within the deadline. */
		if (r == -EINTR || r == -EAGAIN)
			continue;
		p->budget--;
		return r >= 0;
	}
}

int kvmdbg_probe_run_checks(const struct kvmdbg_host_ops *host, int kvm_fd, uint64_t *features)
{
	const struct kvmdbg_probe_checks *c = host->verified;
	struct kvmdbg_microvm vm;
	struct kvmdbg_probe p;
	uint64_t f = KVMDBG_FEAT_VERIFIED;
	int r;

	if (!features || !c)
		return -EINVAL;
	r = kvmdbg_check_ext(kvm_fd, KVM_CAP_SET_GUEST_DEBUG);
	if (r < 0)
		return r;
	if (r == 0) {
		*features = f; /* no guest debugging at all: nothing to prove */
		return 0;
	}

	memset(&p, 0, sizeof(p));
	p.checks = c;
	set_deadline(&p, c->timeout_ns);
	r = kvmdbg_microvm_create(&vm, kvm_fd, 1, c->mem_size);
	if (r < 0)
		return r;
	p.vm = &vm;
	p.fd = vm.vcpu_fd[0];
	p.run = vm.run[0];
	p.code = vm.code_gpa;
	/* Ask the VM: the answer can be per VM type. */
	p.caps.sz = sizeof(p.caps);
	r = host->probe(NULL, vm.vm_fd, &p.caps);
	if (!r)
		r = c->load(&p);
	if (r < 0)
		goto out;

	for (unsigned int i = 0; i < c->nr_checks; i++)
		f |= c->check[i].run(&p);

	if (p.timed_out) {
		r = -ETIMEDOUT;
		goto out;
	}
	*features = f;
	r = 0;
out:
	kvmdbg_microvm_destroy(&vm);
	return r;
}
