/* SPDX-License-Identifier: MIT */
/*
 * x86-64 side of the `kvm` suite's helpers: the kt_arch_* hooks of
 * kvm-util.h for the x86 guest blob (tests/guest/x86-guests.S), whose "out"
 * ports are real I/O ports (KVM_EXIT_IO). Linked with tests/common/kvm-util.c on
 * x86-64 hosts.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "kvm-util.h"

#define KT_SYM_ENTRY(s) { #s, s },
const struct kt_symtab kt_arch_syms[] = { KT_GUEST_SYMS(KT_SYM_ENTRY) };
#undef KT_SYM_ENTRY
const size_t kt_arch_nr_syms = sizeof(kt_arch_syms) / sizeof(kt_arch_syms[0]);
const char kt_arch_pc_name[] = "rip";

uint64_t kt_rip(struct kt_vm *vm, unsigned int idx)
{
	struct kvm_regs regs;
	int r = ioctl(vm->m.vcpu_fd[idx], KVM_GET_REGS, &regs);

	ck_assert_msg(r == 0, "KVM_GET_REGS: %s", strerror(errno));
	return regs.rip;
}

void kt_arch_vcpu_started(struct kt_vm *vm, unsigned int idx)
{
	/* The micro-VM's start state is all the blob needs. */
	(void)vm;
	(void)idx;
}

int kt_arch_out(const struct kt_vm *vm, unsigned int idx, uint32_t *port, uint32_t *val, char *msg,
		size_t len)
{
	const struct kvm_run *run = vm->m.run[idx];

	if (run->exit_reason != KVM_EXIT_IO)
		return 0;
	if (run->io.direction != KVM_EXIT_IO_OUT) {
		snprintf(msg, len, "guest read port %#x", run->io.port);
		return -1;
	}
	*port = run->io.port;
	*val = 0;
	memcpy(val, (const uint8_t *)run + run->io.data_offset,
	       run->io.size < 4 ? run->io.size : 4);
	return 1;
}

bool kt_arch_fail(struct kt_vm *vm, unsigned int idx, uint32_t port, uint32_t val, char *msg,
		  size_t len)
{
	uint64_t f[4];
	char b[64];

	(void)idx;
	if (port != KT_PORT_FAIL)
		return false;
	/* val is the vector; those with an error code push it below rip. */
	memcpy(f, kt_hva(vm, kt_fail_frame), sizeof(f));
	snprintf(msg, len,
		 "guest exception %u, frame %#llx %#llx %#llx "
		 "%#llx (rip %s)",
		 val, (unsigned long long)f[0], (unsigned long long)f[1], (unsigned long long)f[2],
		 (unsigned long long)f[3],
		 kt_sym(vm, (val == 8 || (val >= 10 && val <= 14) || val == 17) ? f[1] : f[0], b,
			sizeof(b)));
	return true;
}

void kt_arch_debug_detail(const struct kt_vm *vm, unsigned int idx, char *buf, size_t len)
{
	const struct kvm_run *run = vm->m.run[idx];

	snprintf(buf, len, "exception %u dr6 %#llx", run->debug.arch.exception,
		 (unsigned long long)run->debug.arch.dr6);
}
