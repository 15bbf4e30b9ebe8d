/* SPDX-License-Identifier: MIT */
/* The one place the library's ioctls can be replaced: a seam for fault
 * injection and counting (kvmdbg_ioctl and kvmdbg_ioctl_in, inline in
 * kvmdbg-int.h; a VM's vCPUs only where the VM has the seam). */
#include "kvmdbg-int.h"
#include "arch/backend.h"

_Atomic(kvmdbg_ioctl_fn) kvmdbg_ioctl_hook;

void kvmdbg_set_ioctl_hook(kvmdbg_ioctl_fn fn)
{
	atomic_store(&kvmdbg_ioctl_hook, fn);
}

bool kvmdbg_ioctl_seam_default;

int kvmdbg_ioctl_hooked(int fd, unsigned long req, void *arg)
{
	return kvmdbg_ioctl(fd, req, arg);
}

int kvmdbg_vm_ioctl_seam(struct kvmdbg_vm *vm, bool on)
{
	void *ctx = on ? KVMDBG_IOCTL_SEAM : NULL;

	if (!vm || vm->host != &kvmdbg_host)
		return -EINVAL;
	kvmdbg_mutex_lock(&vm->lock);
	vm->hot.host_ctx = ctx;
	for (struct kvmdbg_vcpu *v = vm->vcpus; v; v = v->next)
		v->hot.host_ctx = ctx;
	kvmdbg_mutex_unlock(&vm->lock);
	return 0;
}
