/* SPDX-License-Identifier: MIT */
/*
 * Smoke test for the VM test beds: proves that /dev/kvm inside the VM works
 * and prints the guest-debug capabilities the kernel advertises. No Check, no
 * libkvmdbg: it only has to build with a bare (cross) compiler and -static.
 * Its checks are TAP, like the Check binaries' (tests/common/test-main.c):
 * one "ok N - ..." or "not ok N - ..." line each, the plan "1..N" last.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef KVM_CAP_SET_GUEST_DEBUG2
#define KVM_CAP_SET_GUEST_DEBUG2 220
#endif
#ifndef KVM_CAP_DEBUGREGS            /* only x86's <linux/kvm.h> defines it */
#define KVM_CAP_DEBUGREGS 50
#endif
#if defined(__x86_64__)
#define GUESTDBG_HW KVM_GUESTDBG_USE_HW_BP
#else
#define GUESTDBG_HW KVM_GUESTDBG_USE_HW
#endif

static int passed, failed;

static void check(int ok, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void check(int ok, const char *what, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - %s", ok ? "ok" : "not ok", passed + failed + 1, what);
	if (fmt) {
		fputs(": ", stdout);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	putchar('\n');
	if (ok)
		passed++;
	else
		failed++;
}

static int cap(int fd, long c)
{
	return ioctl(fd, KVM_CHECK_EXTENSION, c);
}

static const char *arch_name(void)
{
#if defined(__x86_64__)
	return "x86_64";
#elif defined(__aarch64__)
	return "arm64";
#else
	return "other";
#endif
}

int main(void)
{
	int kvm, vm, vcpu, api, dbg2, bps, wps, run_sz;
	struct kvm_guest_debug gd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	check(kvm >= 0, "open /dev/kvm", "%s", kvm >= 0 ? "fd" : strerror(errno));
	if (kvm < 0)
		goto out;
	api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	check(api == KVM_API_VERSION, "KVM_GET_API_VERSION", "%d", api);

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	check(vm >= 0, "KVM_CREATE_VM", "%s", vm >= 0 ? "fd" : strerror(errno));
	if (vm < 0)
		goto out;

	dbg2 = cap(vm, KVM_CAP_SET_GUEST_DEBUG2);
	bps = cap(vm, KVM_CAP_GUEST_DEBUG_HW_BPS);
	wps = cap(vm, KVM_CAP_GUEST_DEBUG_HW_WPS);
	printf("caps: arch=%s SET_GUEST_DEBUG=%d SET_GUEST_DEBUG2=0x%x "
	       "GUEST_DEBUG_HW_BPS=%d GUEST_DEBUG_HW_WPS=%d DEBUGREGS=%d ONE_REG=%d\n",
	       arch_name(), cap(vm, KVM_CAP_SET_GUEST_DEBUG), dbg2, bps, wps,
	       cap(vm, KVM_CAP_DEBUGREGS), cap(vm, KVM_CAP_ONE_REG));
	check(dbg2 > 0 && (dbg2 & (KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP)) ==
			  (KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP),
	      "KVM_CAP_SET_GUEST_DEBUG2 has ENABLE|SINGLESTEP", "0x%x", dbg2);
#if defined(__aarch64__)
	check(bps > 0 && wps > 0, "arm64 hardware breakpoints/watchpoints", "%d/%d", bps, wps);
#endif

	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	check(vcpu >= 0, "KVM_CREATE_VCPU", "%s", vcpu >= 0 ? "fd" : strerror(errno));
	if (vcpu < 0)
		goto out;
	run_sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	check(run_sz > 0 && mmap(NULL, run_sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0) !=
			    MAP_FAILED, "mmap kvm_run", "%d bytes", run_sz);

#if defined(__aarch64__)
	{
		struct kvm_vcpu_init init;
		uint64_t dfr0 = 0;
		struct kvm_one_reg reg = {
			.id = ARM64_SYS_REG(3, 0, 0, 5, 0),   /* ID_AA64DFR0_EL1 */
			.addr = (uintptr_t)&dfr0,
		};
		int r = ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init);

		check(r == 0, "KVM_ARM_PREFERRED_TARGET", "%s", r ? strerror(errno) : "ok");
		r = r ? r : ioctl(vcpu, KVM_ARM_VCPU_INIT, &init);
		check(r == 0, "KVM_ARM_VCPU_INIT", "%s", r ? strerror(errno) : "ok");
		r = ioctl(vcpu, KVM_GET_ONE_REG, &reg);
		check(r == 0, "ONE_REG ID_AA64DFR0_EL1", "0x%llx", (unsigned long long)dfr0);
		if (!r)
			printf("guest view: ID_AA64DFR0_EL1=0x%llx BRPs=%u WRPs=%u CTX_CMPs=%u "
			       "DebugVer=%u\n", (unsigned long long)dfr0,
			       (unsigned)((dfr0 >> 12) & 0xf) + 1, (unsigned)((dfr0 >> 20) & 0xf) + 1,
			       (unsigned)((dfr0 >> 28) & 0xf) + 1, (unsigned)(dfr0 & 0xf));
	}
#endif

	memset(&gd, 0, sizeof(gd));
	gd.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | GUESTDBG_HW;
	check(ioctl(vcpu, KVM_SET_GUEST_DEBUG, &gd) == 0, "KVM_SET_GUEST_DEBUG enable+step+hw",
	      "%s", strerror(errno));
	gd.control = 0;
	check(ioctl(vcpu, KVM_SET_GUEST_DEBUG, &gd) == 0, "KVM_SET_GUEST_DEBUG off", "%s",
	      strerror(errno));

out:
	printf("1..%d\n", passed + failed);
	return failed ? 1 : 0;
}
