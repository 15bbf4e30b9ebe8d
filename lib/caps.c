/* SPDX-License-Identifier: MIT */
/* Capability discovery: the public wrappers around the host glue. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <linux/kvm.h>

#include "kvmdbg-int.h"

int kvmdbg_check_ext(int fd, long cap)
{
	return kvmdbg_ioctl(fd, KVM_CHECK_EXTENSION, (void *)cap);
}

int kvmdbg_probe_debug_caps(int fd, enum kvmdbg_arch arch, uint64_t default_flags,
			    struct kvmdbg_caps *c)
{
	int r = kvmdbg_check_ext(fd, KVM_CAP_SET_GUEST_DEBUG);

	if (r < 0)
		return r;
	memset((char *)c + sizeof(c->sz), 0, sizeof(*c) - sizeof(c->sz));
	c->arch = arch;
	c->guest_debug = r > 0;
	if (!c->guest_debug)
		return 0;

	r = kvmdbg_check_ext(fd, KVM_CAP_SET_GUEST_DEBUG2);
	if (r < 0)
		return r;
	c->debug_flags = r > 0 ? (uint64_t)r : default_flags;
	c->single_step = !!(c->debug_flags & KVM_GUESTDBG_SINGLESTEP);
	c->sw_breakpoints = !!(c->debug_flags & KVM_GUESTDBG_USE_SW_BP);
	return 1;
}

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
