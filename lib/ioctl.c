/* SPDX-License-Identifier: MIT */
/* The one place the library's ioctls can be replaced: a seam for fault
 * injection and counting (kvmdbg_ioctl, inline in kvmdbg-int.h). */
#include "kvmdbg-int.h"

_Atomic(kvmdbg_ioctl_fn) kvmdbg_ioctl_hook;

void kvmdbg_set_ioctl_hook(kvmdbg_ioctl_fn fn)
{
	atomic_store(&kvmdbg_ioctl_hook, fn);
}
