/* SPDX-License-Identifier: MIT */
/*
 * arm64 side of the `kvm` suite's helpers: the kt_arch_* hooks of
 * kvm-util.h for the arm64 guest blob (tests/guest/arm64-guests.S), whose
 * "out" ports are MMIO stores (KVM_EXIT_MMIO) and whose registers go through
 * ONE_REG, plus the ka_* helpers of kvm-util-arm64.h. Linked with
 * tests/common/kvm-util.c on arm64 hosts.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "arch/arm64/regs.h"
#include "kvm-util-arm64.h"


/* ---- symbols ---- */

#define KA_SYM_ENTRY(s) { #s, s },
const struct kt_symtab kt_arch_syms[] = { KA_GUEST_SYMS(KA_SYM_ENTRY) };
#undef KA_SYM_ENTRY
const size_t kt_arch_nr_syms = sizeof(kt_arch_syms) / sizeof(kt_arch_syms[0]);
const char kt_arch_pc_name[] = "pc";

uint32_t ka_peek32(const struct kt_vm *vm, uint64_t gva)
{
	uint32_t v;

	ck_assert_msg(gva < vm->m.mem_size && gva + 4 <= vm->m.mem_size, "gva %#llx",
		      (unsigned long long)gva);
	memcpy(&v, vm->m.mem + gva, sizeof(v));
	return v;
}

/* ---- registers ---- */

uint64_t ka_get_reg(struct kt_vm *vm, unsigned int idx, uint64_t id)
{
	uint64_t v = 0;
	struct kvm_one_reg reg = { .id = id, .addr = (uintptr_t)&v };
	int r = ioctl(vm->m.vcpu_fd[idx], KVM_GET_ONE_REG, &reg);

	ck_assert_msg(r == 0, "KVM_GET_ONE_REG %#llx: %s", (unsigned long long)id, strerror(errno));
	return v;
}

void ka_set_reg(struct kt_vm *vm, unsigned int idx, uint64_t id, uint64_t val)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uintptr_t)&val };
	int r = ioctl(vm->m.vcpu_fd[idx], KVM_SET_ONE_REG, &reg);

	ck_assert_msg(r == 0, "KVM_SET_ONE_REG %#llx: %s", (unsigned long long)id, strerror(errno));
}

uint64_t ka_x(struct kt_vm *vm, unsigned int idx, unsigned int n)
{
	ck_assert_uint_lt(n, 31);
	return ka_get_reg(vm, idx, CORE_REG(regs.regs[0]) + 2 * n);
}

uint64_t ka_pc(struct kt_vm *vm, unsigned int idx)
{
	return ka_get_reg(vm, idx, CORE_REG(regs.pc));
}

uint64_t ka_pstate(struct kt_vm *vm, unsigned int idx)
{
	return ka_get_reg(vm, idx, CORE_REG(regs.pstate));
}

uint64_t kt_rip(struct kt_vm *vm, unsigned int idx)
{
	return ka_pc(vm, idx);
}

uint64_t ka_last_esr(const struct kt_vm *vm, unsigned int idx)
{
	const struct kvm_run *run = vm->m.run[idx];
	uint64_t esr = run->debug.arch.hsr;

	if (run->flags & KVM_DEBUG_ARCH_HSR_HIGH_VALID)
		esr |= (uint64_t)run->debug.arch.hsr_high << 32;
	return esr;
}

/* ---- the hooks of kvm-util.c ---- */

void kt_arch_vcpu_started(struct kt_vm *vm, unsigned int idx)
{
	/* The blob's vector table: any unexpected exception reports itself. */
	ka_set_reg(vm, idx, REG_VBAR_EL1, kt_gva(vm, kt_vectors));
}

int kt_arch_out(const struct kt_vm *vm, unsigned int idx, uint32_t *port, uint32_t *val, char *msg,
		size_t len)
{
	const struct kvm_run *run = vm->m.run[idx];
	uint64_t a;

	if (run->exit_reason != KVM_EXIT_MMIO)
		return 0;
	a = run->mmio.phys_addr;
	if (!run->mmio.is_write) {
		snprintf(msg, len, "guest MMIO read at %#llx", (unsigned long long)a);
		return -1;
	}
	if (a < KA_MMIO_BASE || (a - KA_MMIO_BASE) % 8) {
		snprintf(msg, len, "guest MMIO write at %#llx", (unsigned long long)a);
		return -1;
	}
	*port = (uint32_t)((a - KA_MMIO_BASE) / 8);
	*val = 0;
	memcpy(val, run->mmio.data, run->mmio.len < 4 ? run->mmio.len : 4);
	return 1;
}

bool kt_arch_fail(struct kt_vm *vm, unsigned int idx, uint32_t port, uint32_t val, char *msg,
		  size_t len)
{
	char b[64];

	if (port == KT_PORT_FAIL) {
		/* The blob's vectors: val is the vector entry. */
		uint64_t f[4];

		memcpy(f, kt_hva(vm, kt_fail_frame), sizeof(f));
		snprintf(msg, len,
			 "guest exception (vector entry %u): esr %#llx elr %s "
			 "far %#llx spsr %#llx",
			 val, (unsigned long long)f[0], kt_sym(vm, f[1], b, sizeof(b)),
			 (unsigned long long)f[2], (unsigned long long)f[3]);
		return true;
	}
	if (port == KA_MICROVM_FAIL) {
		snprintf(msg, len,
			 "guest exception in the micro-VM's vectors "
			 "(entry %llu): esr %#llx elr %s far %#llx",
			 (unsigned long long)ka_x(vm, idx, 1), (unsigned long long)ka_x(vm, idx, 0),
			 kt_sym(vm, ka_x(vm, idx, 2), b, sizeof(b)),
			 (unsigned long long)ka_x(vm, idx, 3));
		return true;
	}
	return false;
}

void kt_arch_debug_detail(const struct kt_vm *vm, unsigned int idx, char *buf, size_t len)
{
	snprintf(buf, len, "esr %#llx far %#llx", (unsigned long long)ka_last_esr(vm, idx),
		 (unsigned long long)vm->m.run[idx]->debug.arch.far);
}
