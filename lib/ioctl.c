/* SPDX-License-Identifier: MIT */
/* The one place the library calls ioctl(): a seam for fault injection and counting. */
#include <errno.h>
#include <stdatomic.h>
#include <sys/ioctl.h>

#include "kvmdbg-int.h"

static _Atomic(kvmdbg_ioctl_fn) ioctl_hook;

void kvmdbg_set_ioctl_hook(kvmdbg_ioctl_fn fn)
{
	atomic_store(&ioctl_hook, fn);
}

KVMDBG_HOT int kvmdbg_ioctl(int fd, unsigned long req, void *arg)
{
	kvmdbg_ioctl_fn hook = atomic_load_explicit(&ioctl_hook, memory_order_relaxed);
	int r;

	if (hook)
		return hook(fd, req, arg);
	r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}
