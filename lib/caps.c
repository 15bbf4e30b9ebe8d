/* SPDX-License-Identifier: MIT */
/* Capability discovery: the public wrappers around the host glue. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "kvmdbg-int.h"

KVMDBG_EXPORT int kvmdbg_probe(int fd, struct kvmdbg_caps *caps)
{
	struct kvmdbg_caps full = {.sz = sizeof(full)};
	int r;

	if (!caps || caps->sz < offsetof(struct kvmdbg_caps, arch) + sizeof(caps->arch))
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	r = kvmdbg_host.probe(NULL, fd, &full);
	if (r)
		return r;
	return kvmdbg_sized_out(caps, &full, sizeof(full));
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
	r = kvmdbg_host.probe_guest(NULL, vcpu_fd, &full);
	if (r)
		return r;
	return kvmdbg_sized_out(caps, &full, sizeof(full));
}

KVMDBG_EXPORT int kvmdbg_probe_verified(int kvm_fd, uint64_t *features)
{
	if (!features)
		return -EINVAL;
	if (kvm_fd < 0)
		return -EBADF;
	if (!kvmdbg_host.verified)
		return -EOPNOTSUPP;
	return kvmdbg_probe_run_checks(&kvmdbg_host, kvm_fd, features);
}
