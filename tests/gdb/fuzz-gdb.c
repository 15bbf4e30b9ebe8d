/* SPDX-License-Identifier: MIT */
/*
 * fuzz-gdb: libkvmdbg-gdb's protocol engine under libFuzzer (clang
 * -fsanitize=fuzzer), or under tests/fuzz/standalone.c (its corpus and 2000
 * pseudo-random inputs) in every build: test `fuzz-gdb`, suites unit, gdb.
 *
 * The input is a stream of pieces: [op][len][len bytes]. op % 4 == 0 sends
 * the bytes raw (framing, checksums, escapes, ^C); otherwise a command from
 * the dictionary below is sent as a well-formed packet, followed by the
 * bytes as they are (op % 4 == 1) or mapped onto hex digits and separators
 * (op % 4 >= 2), so that random inputs reach the commands' parsers. The
 * server runs kvmdbg_gdb_serve() on one end of a socketpair over a fake
 * 2-thread aarch64 machine whose resume stops at once; a thread drains the
 * replies; then the same stream through the incremental API, fed in
 * pieces. Invariants: the session ends by itself once the input is used
 * up, with a defined result; memory accesses stay in bounds (ASan when
 * built with it).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <kvmdbg/gdb.h>

#include "fake-stop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_BASE 0x1000u
#define MEM_SIZE 0x1000u

static uint8_t mem[MEM_SIZE];
static uint8_t regs[2][1024];
static size_t g_bytes;
static int resumed;

static int f_nthreads(void *c) { (void)c; return 2; }
static int f_alive(void *c, int t) { (void)c; return t == 0 || t == 1; }
static int f_read_regs(void *c, int t, uint8_t *b)
{
	(void)c;
	if (t < 0 || t > 1)
		abort();
	memcpy(b, regs[t], g_bytes);
	return 0;
}
static int f_write_regs(void *c, int t, const uint8_t *b)
{
	(void)c;
	if (t < 0 || t > 1)
		abort();
	memcpy(regs[t], b, g_bytes);
	return 0;
}
static long f_mem(int t, uint64_t a, void *b, size_t l, int wr)
{
	if (t < 0 || t > 1 || l == 0)
		abort();
	if (a < MEM_BASE || a >= MEM_BASE + MEM_SIZE)
		return -EFAULT;
	if (l > MEM_BASE + MEM_SIZE - a)
		l = MEM_BASE + MEM_SIZE - a;
	memcpy(wr ? mem + (a - MEM_BASE) : b, wr ? b : mem + (a - MEM_BASE), l);
	return (long)l;
}
static long f_read_mem(void *c, int t, uint64_t a, void *b, size_t l)
{
	(void)c;
	return f_mem(t, a, b, l, 0);
}
static long f_write_mem(void *c, int t, uint64_t a, const void *b, size_t l)
{
	(void)c;
	return f_mem(t, a, (void *)b, l, 1);
}
static int f_point(void *c, int t, enum kvmdbg_gdb_point p, uint64_t a, uint64_t k)
{
	(void)c; (void)k;
	if (t < 0 || t > 1 || p > KVMDBG_GDB_WATCH_ACCESS)
		abort();
	return a & 1 ? -EINVAL : p == KVMDBG_GDB_WATCH_READ ? -EOPNOTSUPP : 0;
}
static int f_resume(void *c, const enum kvmdbg_gdb_action *act)
{
	(void)c;
	memset(&pending, 0, sizeof(pending));
	pending.signal = 5;
	pending.thread = act[1] != KVMDBG_GDB_STAY;
	pending.reason = (enum kvmdbg_gdb_reason)(resumed++ % 6);
	pending.data_addr = MEM_BASE;
	if (resumed % 17 == 0)
		pending.kind = KVMDBG_GDB_STOP_EXITED;
	return stop_post();
}
static int f_monitor(void *c, const char *cmd, char *out, size_t len)
{
	(void)c;
	if (strlen(cmd) >= 256)
		abort();
	return cmd[0] == 'x' ? snprintf(out, len, "%s\n", cmd) : -ENOENT;
}

static const struct kvmdbg_gdb_ops ops = {
	.sz = sizeof(ops), .arch = KVMDBG_GDB_ARCH_AARCH64, .nthreads = f_nthreads,
	.thread_alive = f_alive, .read_regs = f_read_regs, .write_regs = f_write_regs,
	.read_mem = f_read_mem, .write_mem = f_write_mem, .insert = f_point, .remove = f_point,
	.resume = f_resume, .stop_fd = f_stop_fd, .get_stop = f_get_stop, .interrupt = f_nop,
	.detach = f_nop, .monitor = f_monitor,
};

static const char *const dict[] = {
	"g", "G", "p", "P", "m", "M", "X", "Z0,", "Z1,", "Z2,", "z0,", "z3,", "c", "s", "C05",
	"S05;", "vCont;c", "vCont;s:1;c", "vCont;t", "vCont;S05:2", "vCont;r1000,1010:",
	"vCont?", "Hg", "Hc", "T",
	"qSupported:", "qXfer:features:read:target.xml:", "qXfer:threads:read::",
	"qC", "qfThreadInfo", "qsThreadInfo", "qAttached", "qThreadExtraInfo,", "qRcmd,",
	"qOffsets", "QStartNoAckMode", "?", "vMustReplyEmpty", "D", "k", "vKill",
};
#define NDICT (sizeof(dict) / sizeof(dict[0]))

static void *drain(void *arg)
{
	char buf[4096];
	int fd = *(int *)arg;

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

struct feed {
	int fd;
	const uint8_t *p;
	size_t n;
};

/* The client: the whole stream, then EOF (the server may stop reading
 * early, after D or k: the write then fails). */
static void *feed(void *arg)
{
	struct feed *f = arg;

	for (size_t w = 0; w < f->n;) {
		ssize_t k = send(f->fd, f->p + w, f->n - w, MSG_NOSIGNAL);

		if (k <= 0)
			break;
		w += (size_t)k;
	}
	shutdown(f->fd, SHUT_WR);
	return NULL;
}

static long discard(void *c, const void *buf, size_t len)
{
	(void)c; (void)buf;
	return (long)len;
}

/*
 * The same stream through the incremental API, in pieces of 1 to 13 bytes
 * (by the stream's own bytes), the machine asked after each: the session
 * stays ACTIVE or ends with a defined result, and ends at the EOF at the
 * latest (the fake's stops come at once).
 */
static void incremental(struct kvmdbg_gdb *g, const uint8_t *p, size_t n)
{
	struct kvmdbg_gdb_session *sess;
	int r = KVMDBG_GDB_ACTIVE;
	char b;

	if (kvmdbg_gdb_session_new(g, discard, NULL, &sess) < 0)
		abort();
	for (size_t w = 0; w < n && r == KVMDBG_GDB_ACTIVE;) {
		size_t k = 1 + p[w] % 13;

		if (k > n - w)
			k = n - w;
		r = kvmdbg_gdb_session_feed(sess, p + w, k);
		if (r == KVMDBG_GDB_ACTIVE)
			r = kvmdbg_gdb_session_stopped(sess);
		w += k;
	}
	if (r == KVMDBG_GDB_ACTIVE)
		r = kvmdbg_gdb_session_feed(sess, NULL, 0);
	if (r == KVMDBG_GDB_ACTIVE)
		r = kvmdbg_gdb_session_stopped(sess);
	if (r < 0 || r == KVMDBG_GDB_SILENT || r > KVMDBG_GDB_ACTIVE || r == KVMDBG_GDB_ACTIVE) {
		fprintf(stderr, "fuzz-gdb: the incremental session = %d\n", r);
		abort();
	}
	kvmdbg_gdb_session_free(sess);
	while (read(notify[0], &b, 1) == 1)
		; /* a stop nobody asked for (the session ended first) */
}

static size_t put(uint8_t *out, size_t pos, size_t cap, const void *p, size_t n)
{
	if (n > cap - pos)
		n = cap - pos;
	memcpy(out + pos, p, n);
	return pos + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kvmdbg_gdb *g;
	static uint8_t stream[1 << 17];
	static const char alpha[] = "0123456789abcdef,:;=-";
	size_t pos = 0, i = 0;
	struct feed f;
	pthread_t t, tf;
	int sv[2], r;

	if (!g) {
		if (kvmdbg_gdb_reg_count(KVMDBG_GDB_ARCH_AARCH64, &g_bytes) < 0 ||
		    g_bytes > sizeof(regs[0]) || pipe2(notify, O_NONBLOCK) ||
		    kvmdbg_gdb_new(&ops, NULL, &g) < 0)
			abort();
	}
	while (i < size) {
		uint8_t op = data[i++], len = i < size ? data[i++] % 64 : 0;
		char pkt[256];
		size_t n = 0;
		uint8_t sum = 0;

		if (len > size - i)
			len = (uint8_t)(size - i);
		if (op % 4 == 0) {
			pos = put(stream, pos, sizeof(stream), data + i, len);
			i += len;
			continue;
		}
		n = (size_t)snprintf(pkt, sizeof(pkt), "%s", dict[(op / 4) % NDICT]);
		for (size_t k = 0; k < len; k++)
			pkt[n++] = op % 4 == 1 ? (char)data[i + k]
					       : alpha[data[i + k] % (sizeof(alpha) - 1)];
		i += len;
		for (size_t k = 0; k < n; k++)
			sum = (uint8_t)(sum + (uint8_t)pkt[k]);
		pos = put(stream, pos, sizeof(stream), "$", 1);
		pos = put(stream, pos, sizeof(stream), pkt, n);
		snprintf(pkt, sizeof(pkt), "#%02x", sum);
		pos = put(stream, pos, sizeof(stream), pkt, 3);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	f.fd = sv[1];
	f.p = stream;
	f.n = pos;
	if (pthread_create(&t, NULL, drain, &sv[1]) || pthread_create(&tf, NULL, feed, &f))
		abort();
	r = kvmdbg_gdb_serve(g, sv[0], NULL);
	if (r < 0 || r >= KVMDBG_GDB_SILENT) {
		fprintf(stderr, "fuzz-gdb: kvmdbg_gdb_serve() = %d\n", r);
		abort();
	}
	close(sv[0]); /* the drain thread sees EOF, the feeder EPIPE */
	pthread_join(tf, NULL);
	pthread_join(t, NULL);
	close(sv[1]);
	incremental(g, stream, pos);
	return 0;
}
