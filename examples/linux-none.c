/* SPDX-License-Identifier: MIT */
/*
 * kvmdbg-run --kernel where no Linux machine is built: a host arch without
 * one, or arm64 without libfdt (the device tree) or zlib (the gzip'ed Image).
 * LINUX_NONE_WHY, from examples/meson.build, says which.
 */
#include <stdio.h>

#include "linux.h"

#ifndef LINUX_NONE_WHY
#define LINUX_NONE_WHY "booting Linux is implemented for x86-64 and arm64 hosts only"
#endif

const char linux_help[] =
	"                       (not in this build: " LINUX_NONE_WHY ")\n";

int linux_vm_create(const struct linux_opts *o, int kvm_fd, int vm_fd, uint8_t *mem,
		    struct linux_vm **out)
{
	(void)o, (void)kvm_fd, (void)vm_fd, (void)mem;
	*out = NULL;
	fprintf(stderr, "kvmdbg-run: --kernel: not in this build: %s\n", LINUX_NONE_WHY);
	return -1;
}

int linux_vcpu_setup(struct linux_vm *l, int vcpu_fd, unsigned int id)
{
	(void)l, (void)vcpu_fd, (void)id;
	return -1;
}

int linux_handle_exit(struct linux_vm *l, struct kvm_run *run)
{
	(void)l, (void)run;
	return 0;
}

enum linux_end linux_end(const struct linux_vm *l)
{
	(void)l;
	return LINUX_RUNNING;
}

void linux_describe(const struct linux_vm *l, char *buf, size_t size)
{
	(void)l;
	snprintf(buf, size, "none");
}

void linux_vm_free(struct linux_vm *l)
{
	(void)l;
}
