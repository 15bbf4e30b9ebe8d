// SPDX-License-Identifier: MIT
/*
 * Suite `unit` (and `gdb`): libkvmdbg-gdb's KVM layer (<kvmdbg/gdb-kvm.h>)
 * without KVM: events to stop replies, the verified-feature gate of Z0..Z4,
 * and every argument check (bad input changes nothing).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvmdbg/gdb-kvm.h>
#include <linux/kvm.h>

#include "fake-host.h"

static struct kvmdbg_gdb_stop stop_of(enum kvmdbg_stop kind, enum kvmdbg_type type, uint64_t data)
{
	struct kvmdbg_event ev = { .kind = kind, .type = type, .pc = 0x1000, .data_addr = data };
	struct kvmdbg_gdb_stop st = { .sz = sizeof(st) };

	ck_assert_int_eq(kvmdbg_gdb_kvm_stop_from_event(&ev, 3, &st), 0);
	ck_assert_int_eq(st.kind, KVMDBG_GDB_STOP_SIGNAL);
	ck_assert_int_eq(st.thread, 3);
	ck_assert_int_eq(st.signal, 5);
	return st;
}

START_TEST(test_stop_reasons)
{
	struct kvmdbg_gdb_stop st;

	st = stop_of(KVMDBG_STOP_BREAK, KVMDBG_BREAK_SW, 0);
	ck_assert_int_eq(st.reason, KVMDBG_GDB_REASON_SWBREAK);
	st = stop_of(KVMDBG_STOP_BREAK, KVMDBG_BREAK_HW, 0);
	ck_assert_int_eq(st.reason, KVMDBG_GDB_REASON_HWBREAK);
	st = stop_of(KVMDBG_STOP_WATCH, KVMDBG_WATCH_WRITE, 0x2000);
	ck_assert_int_eq(st.reason, KVMDBG_GDB_REASON_WATCH);
	ck_assert_uint_eq(st.data_addr, 0x2000);
	st = stop_of(KVMDBG_STOP_WATCH, KVMDBG_WATCH_READ, 0x2008);
	ck_assert_int_eq(st.reason, KVMDBG_GDB_REASON_RWATCH);
	ck_assert_uint_eq(st.data_addr, 0x2008);
	st = stop_of(KVMDBG_STOP_WATCH, KVMDBG_WATCH_ACCESS, 0x2010);
	ck_assert_int_eq(st.reason, KVMDBG_GDB_REASON_AWATCH);
	ck_assert_uint_eq(st.data_addr, 0x2010);
	st = stop_of(KVMDBG_STOP_STEP, 0, 0x1234);
	ck_assert_int_eq(st.reason, KVMDBG_GDB_REASON_NONE);
	ck_assert_uint_eq(st.data_addr, 0); /* only watchpoints have one */
}
END_TEST

START_TEST(test_stop_bad_args)
{
	struct kvmdbg_event ev = { .kind = KVMDBG_STOP_BREAK, .type = KVMDBG_BREAK_HW };
	struct kvmdbg_gdb_stop st, keep;

	memset(&st, 0x5a, sizeof(st));
	st.sz = sizeof(st);
	keep = st;
	ck_assert_int_eq(kvmdbg_gdb_kvm_stop_from_event(NULL, 0, &st), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stop_from_event(&ev, 0, NULL), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stop_from_event(&ev, -1, &st), -EINVAL);
	st.sz = sizeof(size_t);
	keep.sz = st.sz;
	ck_assert_int_eq(kvmdbg_gdb_kvm_stop_from_event(&ev, 0, &st), -EINVAL);
	ck_assert_mem_eq(&st, &keep, sizeof(st));
}
END_TEST

START_TEST(test_point_check)
{
	const uint64_t all = KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_SW_BREAK | KVMDBG_FEAT_HW_BREAK |
			     KVMDBG_FEAT_WATCH_WRITE | KVMDBG_FEAT_WATCH_READ | KVMDBG_FEAT_WATCH_ACCESS;

	/* not verified: everything is tried */
	for (int t = KVMDBG_GDB_SW_BREAK; t <= KVMDBG_GDB_WATCH_ACCESS; t++)
		ck_assert_int_eq(kvmdbg_gdb_kvm_point_check(0, (enum kvmdbg_gdb_point)t), 0);
	for (int t = KVMDBG_GDB_SW_BREAK; t <= KVMDBG_GDB_WATCH_ACCESS; t++)
		ck_assert_int_eq(kvmdbg_gdb_kvm_point_check(all, (enum kvmdbg_gdb_point)t), 0);
	/* x86: no read-only watchpoints; a host whose INT3 does not exit */
	ck_assert_int_eq(kvmdbg_gdb_kvm_point_check(all & ~KVMDBG_FEAT_WATCH_READ,
						    KVMDBG_GDB_WATCH_READ), -ENOSYS);
	ck_assert_int_eq(kvmdbg_gdb_kvm_point_check(all & ~KVMDBG_FEAT_WATCH_READ,
						    KVMDBG_GDB_WATCH_WRITE), 0);
	ck_assert_int_eq(kvmdbg_gdb_kvm_point_check(all & ~KVMDBG_FEAT_SW_BREAK,
						    KVMDBG_GDB_SW_BREAK), -ENOSYS);
	ck_assert_int_eq(kvmdbg_gdb_kvm_point_check(KVMDBG_FEAT_VERIFIED, KVMDBG_GDB_HW_BREAK),
			 -ENOSYS);
	ck_assert_int_eq(kvmdbg_gdb_kvm_point_check(all, (enum kvmdbg_gdb_point)5), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_kvm_point_check(all, (enum kvmdbg_gdb_point)-1), -EINVAL);
}
END_TEST

static long f_phys(void *c, uint64_t a, void *b, size_t l, int w)
{
	(void)c; (void)a; (void)b; (void)w;
	return (long)l;
}
static int f_resume(void *c, unsigned int v)
{
	(void)c; (void)v;
	return 0;
}
static void f_kick(void *c, unsigned int v)
{
	(void)c; (void)v;
}

/* Only the pointers are stored by kvmdbg_gdb_kvm_new(): stand-ins do. */
static int fds[2] = { 10, 11 };
static struct kvm_run *runs[2] = { (struct kvm_run *)&fds[0], (struct kvm_run *)&fds[1] };
static struct kvmdbg_vcpu *vcpus[2] = { (struct kvmdbg_vcpu *)&fds[0], (struct kvmdbg_vcpu *)&fds[1] };

static struct kvmdbg_gdb_kvm_vm good(void)
{
	struct kvmdbg_gdb_kvm_vm vm = {
		.sz = sizeof(vm), .vm = (struct kvmdbg_vm *)&fds, .nvcpus = 2, .vcpu_fds = fds,
		.runs = runs, .vcpus = vcpus, .phys_access = f_phys, .resume = f_resume,
		.kick = f_kick,
	};
	return vm;
}

START_TEST(test_new_args)
{
	struct kvmdbg_gdb_kvm *k = (struct kvmdbg_gdb_kvm *)&fds, *keep = k;
	struct kvmdbg_gdb_kvm_vm vm;
	struct {
		struct kvmdbg_gdb_kvm_vm vm;
		uint64_t newer;
	} big;

	ck_assert_int_eq(kvmdbg_gdb_kvm_new(NULL, NULL, &k), -EINVAL);
	vm = good();
	ck_assert_int_eq(kvmdbg_gdb_kvm_new(&vm, NULL, NULL), -EINVAL);
	vm.nvcpus = 0;
	ck_assert_int_eq(kvmdbg_gdb_kvm_new(&vm, NULL, &k), -EINVAL);
	vm.nvcpus = 65;
	ck_assert_int_eq(kvmdbg_gdb_kvm_new(&vm, NULL, &k), -EINVAL);
	vm = good();
	vm.kick = NULL;
	ck_assert_int_eq(kvmdbg_gdb_kvm_new(&vm, NULL, &k), -EINVAL);
	vm = good();
	vm.phys_access = NULL;
	ck_assert_int_eq(kvmdbg_gdb_kvm_new(&vm, NULL, &k), -EINVAL);
	vm = good();
	vm.vm = NULL;
	ck_assert_int_eq(kvmdbg_gdb_kvm_new(&vm, NULL, &k), -EINVAL);
	vm = good();
	vm.vcpus = NULL;
	ck_assert_int_eq(kvmdbg_gdb_kvm_new(&vm, NULL, &k), -EINVAL);
	vm = good();
	vm.sz = 4;
	ck_assert_int_eq(kvmdbg_gdb_kvm_new(&vm, NULL, &k), -EINVAL);
	{
		int bad[2] = { 10, -1 };

		vm = good();
		vm.vcpu_fds = bad;
		ck_assert_int_eq(kvmdbg_gdb_kvm_new(&vm, NULL, &k), -EINVAL);
	}
	memset(&big, 0, sizeof(big));
	big.vm = good();
	big.vm.sz = sizeof(big);
	big.newer = 1;
	ck_assert_int_eq(kvmdbg_gdb_kvm_new(&big.vm, NULL, &k), -E2BIG);
	ck_assert_ptr_eq(k, keep); /* nothing set on failure */
	big.newer = 0;
	ck_assert_int_eq(kvmdbg_gdb_kvm_new(&big.vm, NULL, &k), 0);
	kvmdbg_gdb_kvm_free(k);
}
END_TEST

START_TEST(test_layer)
{
	struct kvmdbg_gdb_kvm_vm vm = good();
	struct kvmdbg_event ev = { .kind = KVMDBG_STOP_STEP };
	struct kvmdbg_gdb_kvm *k;
	KVMDBG_OPTS(kvmdbg_gdb_stats, stats);

	ck_assert_int_eq(kvmdbg_gdb_kvm_new(&vm, NULL, &k), 0);
	ck_assert_ptr_nonnull(kvmdbg_gdb_kvm_server(k));
	ck_assert_int_eq(kvmdbg_gdb_stats_get(kvmdbg_gdb_kvm_server(k), &stats), 0);
	ck_assert_ptr_null(kvmdbg_gdb_kvm_server(NULL));
	ck_assert_int_eq(kvmdbg_gdb_kvm_serve(NULL, 0, NULL), -EINVAL);
	/* stopped(): the vCPU, the reason and the event are checked */
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(NULL, 0, KVMDBG_GDB_KVM_KICKED, NULL), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 2, KVMDBG_GDB_KVM_KICKED, NULL), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 0, (enum kvmdbg_gdb_kvm_why)0, NULL), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 0, (enum kvmdbg_gdb_kvm_why)5, NULL), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 0, KVMDBG_GDB_KVM_EVENT, NULL), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 1, KVMDBG_GDB_KVM_EVENT, &ev), 0);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 1, KVMDBG_GDB_KVM_KICKED, NULL), 0);
	kvmdbg_gdb_kvm_free(k);
	kvmdbg_gdb_kvm_free(NULL);
}
END_TEST

static char wrote[256];
static size_t nwrote;

static long collect(void *c, const void *buf, size_t len)
{
	(void)c;
	if (len > sizeof(wrote) - nwrote)
		return -EPIPE;
	memcpy(wrote + nwrote, buf, len);
	nwrote += len;
	return (long)len;
}

/* The incremental API over the layer's server: packets in pieces, replies
 * through the callback, the end sticks; bad arguments are refused. */
START_TEST(test_session)
{
	struct kvmdbg_gdb_kvm_vm vm = good();
	struct kvmdbg_gdb_session *sess = (struct kvmdbg_gdb_session *)&fds;
	struct kvmdbg_gdb_kvm *k;
	struct kvmdbg_gdb *g;

	ck_assert_int_eq(kvmdbg_gdb_kvm_new(&vm, NULL, &k), 0);
	g = kvmdbg_gdb_kvm_server(k);
	ck_assert_int_eq(kvmdbg_gdb_session_new(NULL, collect, NULL, &sess), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_session_new(g, NULL, NULL, &sess), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_session_new(g, collect, NULL, NULL), -EINVAL);
	ck_assert_ptr_eq(sess, (struct kvmdbg_gdb_session *)&fds);
	ck_assert_int_eq(kvmdbg_gdb_session_new(g, collect, NULL, &sess), 0);
	ck_assert_int_eq(kvmdbg_gdb_session_feed(NULL, "+", 1), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_session_feed(sess, NULL, 1), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_session_stopped(NULL), -EINVAL);
	nwrote = 0;
	ck_assert_int_eq(kvmdbg_gdb_session_feed(sess, "+$q", 3), KVMDBG_GDB_ACTIVE);
	ck_assert_int_eq(kvmdbg_gdb_session_feed(sess, "C#b", 3), KVMDBG_GDB_ACTIVE);
	ck_assert_uint_eq(nwrote, 0); /* not whole yet */
	ck_assert_int_eq(kvmdbg_gdb_session_feed(sess, "4", 1), KVMDBG_GDB_ACTIVE);
	ck_assert_uint_eq(nwrote, 8);
	ck_assert_mem_eq(wrote, "+$QC1#c5", 8);
	/* a bad checksum is NAKed, nothing else */
	nwrote = 0;
	ck_assert_int_eq(kvmdbg_gdb_session_feed(sess, "$qC#00", 6), KVMDBG_GDB_ACTIVE);
	ck_assert_uint_eq(nwrote, 1);
	ck_assert_int_eq(wrote[0], '-');
	ck_assert_int_eq(kvmdbg_gdb_session_stopped(sess), KVMDBG_GDB_ACTIVE);
	ck_assert_int_eq(kvmdbg_gdb_session_feed(sess, "$k#6b", 5), KVMDBG_GDB_KILLED);
	ck_assert_int_eq(kvmdbg_gdb_session_feed(sess, "$?#3f", 5), KVMDBG_GDB_KILLED);
	ck_assert_int_eq(kvmdbg_gdb_session_stopped(sess), KVMDBG_GDB_KILLED);
	kvmdbg_gdb_session_free(sess);
	kvmdbg_gdb_session_free(NULL);
	kvmdbg_gdb_kvm_free(k);
}
END_TEST

/* ---- all-stop over libkvmdbg on the fake KVM (tests/common/fake-host.h) ---- */

static unsigned int resumed[2], kicked[2];

static int rec_resume(void *c, unsigned int v)
{
	(void)c;
	resumed[v]++;
	return 0;
}

static void rec_kick(void *c, unsigned int v)
{
	(void)c;
	kicked[v]++;
}

static long fh_phys(void *c, uint64_t a, void *b, size_t l, int w)
{
	(void)c;
	if (a >= FH_MEM_SIZE)
		return -EFAULT;
	if (l > FH_MEM_SIZE - a)
		l = FH_MEM_SIZE - a;
	memcpy(w ? fh.mem + a : b, w ? b : fh.mem + a, l);
	return (long)l;
}

/* Feed one packet (framed here); the session's state. */
static int feed_pkt(struct kvmdbg_gdb_session *sess, const char *payload)
{
	char buf[128];
	unsigned int sum = 0;

	for (const char *p = payload; *p; p++)
		sum += (unsigned char)*p;
	snprintf(buf, sizeof(buf), "$%s#%02x", payload, sum & 0xff);
	nwrote = 0;
	return kvmdbg_gdb_session_feed(sess, buf, strlen(buf));
}

/* The reply written last (after the '+' ack), NUL-terminated. */
static const char *last_reply(void)
{
	static char r[sizeof(wrote) + 1];
	size_t i = 0;

	while (i < nwrote && wrote[i] != '$')
		i++;
	memcpy(r, wrote + i, nwrote - i);
	r[nwrote - i] = 0;
	return r;
}

START_TEST(test_all_stop)
{
	static struct kvm_run kr[2];
	struct kvmdbg_vm_opts o = { .sz = sizeof(o), .mem = &fh_mem_ops, .mem_ctx = &fh };
	struct kvmdbg_event hw = { .kind = KVMDBG_STOP_BREAK, .type = KVMDBG_BREAK_HW, .pc = 0x100 };
	struct kvmdbg_event wr = { .kind = KVMDBG_STOP_WATCH, .type = KVMDBG_WATCH_WRITE,
				   .pc = 0x104, .data_addr = 0x208 };
	struct kvmdbg_gdb_kvm_vm vm = good();
	struct kvmdbg_gdb_session *sess;
	struct kvmdbg_gdb_kvm *k;
	struct kvmdbg_vcpu *v[2];
	struct kvmdbg_vm *kv;
	struct kvm_run *rp[2] = { &kr[0], &kr[1] };
	int p[2];

	fh_reset(KVMDBG_ARCH_X86_64);
	ck_assert_int_eq(kvmdbg_vm_new_host(-1, &o, fh_host(), &fh, &kv), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kvmdbg_vcpu_new(kv, i, &kr[i], &v[i]), 0);
	/* the layer's fds: not vCPUs (register reads fail: stop replies
	 * without registers), the fake's vCPUs behind libkvmdbg */
	ck_assert_int_eq(pipe(p), 0);
	vm.vm = kv;
	vm.vcpu_fds = p;
	vm.runs = rp;
	vm.vcpus = v;
	vm.resume = rec_resume;
	vm.kick = rec_kick;
	vm.phys_access = fh_phys;
	vm.features = KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_HW_BREAK | KVMDBG_FEAT_WATCH_WRITE;
	memset(resumed, 0, sizeof(resumed));
	memset(kicked, 0, sizeof(kicked));
	ck_assert_int_eq(kvmdbg_gdb_kvm_new(&vm, NULL, &k), 0);
	ck_assert_int_eq(kvmdbg_gdb_session_new(kvmdbg_gdb_kvm_server(k), collect, NULL, &sess), 0);

	/* Z gated by the verified features: no INT3 exits, no read watchpoints */
	ck_assert_int_eq(feed_pkt(sess, "Z0,100,1"), KVMDBG_GDB_ACTIVE);
	ck_assert_str_eq(last_reply(), "$E26#ad"); /* ENOSYS */
	ck_assert_int_eq(feed_pkt(sess, "Z3,200,8"), KVMDBG_GDB_ACTIVE);
	ck_assert_str_eq(last_reply(), "$E26#ad");
	ck_assert_int_eq(feed_pkt(sess, "Z1,100,1"), KVMDBG_GDB_ACTIVE);
	ck_assert_str_eq(last_reply(), "$OK#9a");

	/* vCPU 1 hits: vCPU 0 is kicked; the reply once both stopped */
	ck_assert_int_eq(feed_pkt(sess, "vCont;c"), KVMDBG_GDB_ACTIVE);
	ck_assert_uint_eq(resumed[0] + resumed[1], 2);
	ck_assert_int_eq(kr[0].immediate_exit, 0);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 1, KVMDBG_GDB_KVM_EVENT, &hw), 0);
	ck_assert_uint_eq(kicked[0], 1);
	ck_assert_uint_eq(kicked[1], 0);
	ck_assert_int_eq(kr[0].immediate_exit, 1);
	ck_assert_int_eq(kvmdbg_gdb_session_stopped(sess), KVMDBG_GDB_ACTIVE);
	ck_assert_str_eq(last_reply(), ""); /* vCPU 0 still runs */
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 0, KVMDBG_GDB_KVM_KICKED, NULL), 0);
	ck_assert_int_eq(kvmdbg_gdb_session_stopped(sess), KVMDBG_GDB_ACTIVE);
	ck_assert_ptr_nonnull(strstr(last_reply(), "$T05hwbreak:;thread:2;"));

	/* both hit at once: the first is reported, the other at the next
	 * resume without running anything */
	ck_assert_int_eq(feed_pkt(sess, "vCont;c"), KVMDBG_GDB_ACTIVE);
	ck_assert_uint_eq(resumed[0] + resumed[1], 4);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 0, KVMDBG_GDB_KVM_EVENT, &wr), 0);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 1, KVMDBG_GDB_KVM_EVENT, &hw), 0);
	ck_assert_uint_eq(kicked[1], 1);
	ck_assert_int_eq(kvmdbg_gdb_session_stopped(sess), KVMDBG_GDB_ACTIVE);
	ck_assert_ptr_nonnull(strstr(last_reply(), "$T05watch:208;thread:1;"));
	ck_assert_int_eq(feed_pkt(sess, "vCont;c"), KVMDBG_GDB_ACTIVE);
	ck_assert_uint_eq(resumed[0] + resumed[1], 4);
	ck_assert_ptr_nonnull(strstr(last_reply(), "$T05hwbreak:;thread:2;"));

	/* Ctrl-C: both kicked, SIGINT */
	ck_assert_int_eq(feed_pkt(sess, "vCont;c"), KVMDBG_GDB_ACTIVE);
	ck_assert_int_eq(kvmdbg_gdb_session_feed(sess, "\x03", 1), KVMDBG_GDB_ACTIVE);
	ck_assert_uint_eq(kicked[0], 2);
	ck_assert_uint_eq(kicked[1], 2);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 0, KVMDBG_GDB_KVM_KICKED, NULL), 0);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 1, KVMDBG_GDB_KVM_KICKED, NULL), 0);
	ck_assert_int_eq(kvmdbg_gdb_session_stopped(sess), KVMDBG_GDB_ACTIVE);
	ck_assert_ptr_nonnull(strstr(last_reply(), "$T02thread:1;"));

	/* a step runs one vCPU only, single-stepping */
	ck_assert_int_eq(feed_pkt(sess, "vCont;s:2"), KVMDBG_GDB_ACTIVE);
	ck_assert_uint_eq(resumed[0], 3);
	ck_assert_uint_eq(resumed[1], 4);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 1, KVMDBG_GDB_KVM_EVENT,
						&(struct kvmdbg_event){ .kind = KVMDBG_STOP_STEP }), 0);
	ck_assert_uint_eq(kicked[0], 2); /* not running: not kicked */
	ck_assert_int_eq(kvmdbg_gdb_session_stopped(sess), KVMDBG_GDB_ACTIVE);
	ck_assert_ptr_nonnull(strstr(last_reply(), "$T05thread:2;"));

	/* vCPU 0's guest ends, vCPU 1 fails: X */
	ck_assert_int_eq(feed_pkt(sess, "vCont;c"), KVMDBG_GDB_ACTIVE);
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 0, KVMDBG_GDB_KVM_EXITED, NULL), 0);
	ck_assert_int_eq(kvmdbg_gdb_session_stopped(sess), KVMDBG_GDB_ACTIVE);
	ck_assert_str_eq(last_reply(), "");
	ck_assert_int_eq(kvmdbg_gdb_kvm_stopped(k, 1, KVMDBG_GDB_KVM_FAILED, NULL), 0);
	ck_assert_int_eq(kvmdbg_gdb_session_stopped(sess), KVMDBG_GDB_GUEST_EXITED);
	ck_assert_str_eq(last_reply(), "$X06#be");

	kvmdbg_gdb_session_free(sess);
	kvmdbg_gdb_kvm_free(k);
	for (int i = 0; i < 2; i++)
		kvmdbg_vcpu_free(v[i]);
	kvmdbg_vm_free(kv);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(test_regs_bad_fd)
{
	uint8_t buf[4096];
	int p[2];
	size_t n;

	ck_assert_int_gt(kvmdbg_gdb_reg_count(
#ifdef __x86_64__
		KVMDBG_GDB_ARCH_X86_64,
#else
		KVMDBG_GDB_ARCH_AARCH64,
#endif
		&n), 0);
	ck_assert_uint_le(n, sizeof(buf));
	memset(buf, 0x77, sizeof(buf));
	ck_assert_int_eq(kvmdbg_gdb_kvm_regs_read(-1, buf), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_kvm_regs_read(0, NULL), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_kvm_regs_write(-1, buf), -EINVAL);
	ck_assert_int_eq(kvmdbg_gdb_kvm_regs_write(0, NULL), -EINVAL);
	/* not a vCPU: the ioctl's error, the buffer untouched */
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(kvmdbg_gdb_kvm_regs_read(p[0], buf), -ENOTTY);
	ck_assert_int_eq(kvmdbg_gdb_kvm_regs_write(p[0], buf), -ENOTTY);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(buf[i], 0x77);
	close(p[0]);
	close(p[1]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gdb-kvm");
	TCase *tc = tcase_create("layer");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_stop_reasons);
	tcase_add_test(tc, test_stop_bad_args);
	tcase_add_test(tc, test_point_check);
	tcase_add_test(tc, test_new_args);
	tcase_add_test(tc, test_layer);
	tcase_add_test(tc, test_session);
	tcase_add_test(tc, test_all_stop);
	tcase_add_test(tc, test_regs_bad_fd);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
