/* SPDX-License-Identifier: MIT */
/*
 * The Check side of the VM test beds: a suite built exactly like the `kvm`
 * suite (tests/common/test-main.c, TEST_SUITE_KVM, Check linked statically), so a
 * pass here proves that Check's forked test cases, timeouts and temporary
 * files work inside the initramfs on each arch and kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "test-common.h"

#ifndef KVM_CAP_SET_GUEST_DEBUG2
#define KVM_CAP_SET_GUEST_DEBUG2 220
#endif

START_TEST(test_api_version)
{
	int kvm = kvmdbg_test_kvm_fd();

	ck_assert_msg(kvm >= 0, "open /dev/kvm: %s", strerror(errno));
	ck_assert_int_eq(ioctl(kvm, KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	close(kvm);
}
END_TEST

START_TEST(test_vm_vcpu)
{
	int kvm = kvmdbg_test_kvm_fd(), vm, vcpu;

	ck_assert_int_ge(kvm, 0);
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	ck_assert_msg(vm >= 0, "KVM_CREATE_VM: %s", strerror(errno));
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	ck_assert_msg(vcpu >= 0, "KVM_CREATE_VCPU: %s", strerror(errno));
	close(vcpu);
	close(vm);
	close(kvm);
}
END_TEST

START_TEST(test_guest_debug_caps)
{
	int kvm = kvmdbg_test_kvm_fd(), vm, mask;

	ck_assert_int_ge(kvm, 0);
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	ck_assert_int_ge(vm, 0);
	mask = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_SET_GUEST_DEBUG2);
	ck_assert_int_ne(mask & KVM_GUESTDBG_ENABLE, 0);
	ck_assert_int_ne(mask & KVM_GUESTDBG_SINGLESTEP, 0);
#if defined(__aarch64__)
	ck_assert_int_gt(ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_DEBUG_HW_BPS), 0);
	ck_assert_int_gt(ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_DEBUG_HW_WPS), 0);
#endif
	close(vm);
	close(kvm);
}
END_TEST

/* Check's forked runner and the tests need a writable /tmp (/init mounts one). */
START_TEST(test_timer_and_tmp)
{
	char path[] = "/tmp/kvmdbg-XXXXXX";
	int fd = mkstemp(path);

	ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
	ck_assert_int_eq(unlink(path), 0);
	usleep(10000);
}
END_TEST

TEST_SUITE_KVM(vm_smoke)
{
	add_test(tc, test_api_version);
	add_test(tc, test_vm_vcpu);
	add_test(tc, test_guest_debug_caps);
	add_test(tc, test_timer_and_tmp);
}
