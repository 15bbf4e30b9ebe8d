/* SPDX-License-Identifier: MIT */
/* Capability discovery: the public wrappers around the host glue. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "kvmdbg-int.h"

/* Copy a full result into a caller's sized struct, keeping the caller's sz. */
static void copy_out(void *dst, const void *src, size_t full)
{
	size_t sz = *(const size_t *)dst;

	sz = sz < full ? sz : full;
	memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t),
	       sz - sizeof(size_t));
}

KVMDBG_EXPORT int kvmdbg_probe(int fd, struct kvmdbg_caps *caps)
{
	struct kvmdbg_caps full = {.sz = sizeof(full)};
	int r;

	if (!caps || caps->sz < offsetof(struct kvmdbg_caps, arch) + sizeof(caps->arch))
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	r = kvmdbg_host.probe(fd, &full);
	if (r)
		return r;
	copy_out(caps, &full, sizeof(full));
	return 0;
}

KVMDBG_EXPORT int kvmdbg_probe_guest(int vcpu_fd, struct kvmdbg_guest_caps *caps)
{
	struct kvmdbg_guest_caps full = {.sz = sizeof(full)};
	int r;

	if (!caps || caps->sz < offsetof(struct kvmdbg_guest_caps, breakpoints) +
					sizeof(caps->breakpoints))
		return -EINVAL;
	if (vcpu_fd < 0)
		return -EBADF;
	r = kvmdbg_host.probe_guest(vcpu_fd, &full);
	if (r)
		return r;
	copy_out(caps, &full, sizeof(full));
	return 0;
}

KVMDBG_EXPORT int kvmdbg_probe_verified(int kvm_fd, uint64_t *features)
{
	if (!features)
		return -EINVAL;
	if (kvm_fd < 0)
		return -EBADF;
	if (!kvmdbg_host.probe_verified)
		return -EOPNOTSUPP;
	return kvmdbg_host.probe_verified(kvm_fd, features);
}
