/* SPDX-License-Identifier: MIT */
/*
 * gdbstub-fake: examples/gdbstub.c over a fake aarch64 machine, so that
 * gdb-multiarch can check the aarch64 target description, register layout
 * and the protocol on any host (the real arm64 harness runs only inside the
 * arm64 test bed, which has no network for a gdb client).
 *
 * Two threads; 64 KiB of memory at 0x400000 full of NOPs; "step" moves the
 * pc 4 bytes; "continue" goes to the next breakpoint after the pc (swbreak
 * or hwbreak), or exits (W00) when there is none. Prints the port, then
 * serves one client.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <kvmdbg/gdb.h>

#include "fake-stop.h"

#define BASE 0x400000ULL
#define SIZE 0x10000ULL
#define NTHREADS 2
#define NREGS 34 /* x0-x30, sp, pc, cpsr: the core, as numbers */
#define PC 32
#define EXT_MAX 2048 /* the rest (v0-v31, fpsr, fpcr, system), as bytes */

static uint8_t mem[SIZE];
static uint64_t regs[NTHREADS][NREGS];
static unsigned int sizes[NREGS];   /* the library's layout: kvmdbg_gdb_reg_get() */
static uint8_t ext[NTHREADS][EXT_MAX];
static size_t ext_bytes;
static int run_forever;             /* --run-forever: c without a point ahead runs on */
static int running;
static struct { int type; uint64_t addr; int used; } points[16];

static int f_nthreads(void *c) { (void)c; return NTHREADS; }
static int f_alive(void *c, int t) { (void)c; (void)t; return 1; }

static int f_read_regs(void *c, int t, uint8_t *b)
{
	(void)c;
	for (int i = 0; i < NREGS; i++)
		for (unsigned int j = 0; j < sizes[i]; j++)
			*b++ = (uint8_t)(regs[t][i] >> (8 * j));
	memcpy(b, ext[t], ext_bytes);
	return 0;
}

static int f_write_regs(void *c, int t, const uint8_t *b)
{
	(void)c;
	for (int i = 0; i < NREGS; i++) {
		regs[t][i] = 0;
		for (unsigned int j = 0; j < sizes[i]; j++)
			regs[t][i] |= (uint64_t)*b++ << (8 * j);
	}
	memcpy(ext[t], b, ext_bytes);
	return 0;
}

static long f_mem(uint64_t addr, void *buf, size_t len, int wr)
{
	if (addr < BASE || addr >= BASE + SIZE)
		return -EFAULT;
	if (len > BASE + SIZE - addr)
		len = BASE + SIZE - addr;
	if (wr)
		memcpy(mem + (addr - BASE), buf, len);
	else
		memcpy(buf, mem + (addr - BASE), len);
	return (long)len;
}

static long f_read_mem(void *c, int t, uint64_t a, void *b, size_t l)
{
	(void)c; (void)t;
	return f_mem(a, b, l, 0);
}

static long f_write_mem(void *c, int t, uint64_t a, const void *b, size_t l)
{
	(void)c; (void)t;
	return f_mem(a, (void *)b, l, 1);
}

static int f_insert(void *c, int t, enum kvmdbg_gdb_point type, uint64_t addr, uint64_t kind)
{
	(void)c; (void)t;
	if (type > KVMDBG_GDB_HW_BREAK)
		return -EOPNOTSUPP; /* no watchpoints here: an E reply */
	if (kind != 4)
		return -EINVAL;
	for (int i = 0; i < 16; i++)
		if (!points[i].used) {
			points[i].used = 1;
			points[i].type = type;
			points[i].addr = addr;
			return 0;
		}
	return -ENOSPC;
}

static int f_remove(void *c, int t, enum kvmdbg_gdb_point type, uint64_t addr, uint64_t kind)
{
	(void)c; (void)t; (void)kind;
	for (int i = 0; i < 16; i++)
		if (points[i].used && points[i].type == (int)type && points[i].addr == addr) {
			points[i].used = 0;
			return 0;
		}
	return -ENOENT;
}

static int f_resume(void *c, const enum kvmdbg_gdb_action *act)
{
	(void)c;
	memset(&pending, 0, sizeof(pending));
	pending.signal = 5;
	for (int t = 0; t < NTHREADS; t++)
		if (act[t] == KVMDBG_GDB_STEP) {
			regs[t][PC] += 4;
			pending.thread = t;
			goto out;
		}
	for (int t = 0; t < NTHREADS; t++) {
		uint64_t best = 0;
		int bi = -1;

		if (act[t] != KVMDBG_GDB_CONTINUE)
			continue;
		for (int i = 0; i < 16; i++)
			if (points[i].used && points[i].addr > regs[t][PC] &&
			    (bi < 0 || points[i].addr < best)) {
				best = points[i].addr;
				bi = i;
			}
		if (bi < 0 && run_forever) {
			running = 1; /* until f_interrupt() */
			return 0;
		}
		if (bi < 0) {
			pending.kind = KVMDBG_GDB_STOP_EXITED;
			pending.signal = 0;
			goto out;
		}
		regs[t][PC] = best;
		pending.thread = t;
		pending.reason = points[bi].type == KVMDBG_GDB_SW_BREAK ? KVMDBG_GDB_REASON_SWBREAK
								     : KVMDBG_GDB_REASON_HWBREAK;
		goto out;
	}
out:
	return stop_post();
}

static int f_monitor(void *c, const char *cmd, char *out, size_t len)
{
	(void)c;
	if (strcmp(cmd, "fake pc") != 0)
		return -ENOENT;
	return snprintf(out, len, "pc %#llx\n", (unsigned long long)regs[0][PC]);
}

static void f_interrupt(void *c)
{
	(void)c;
	if (!running)
		return;
	running = 0;
	pending.thread = 0;
	pending.signal = 2;
	if (stop_post() < 0)
		abort();
}

/* The incremental API's transport: the whole buffer to the socket. */
static long f_send(void *c, const void *buf, size_t len)
{
	const char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(*(int *)c, p + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		done += (size_t)n;
	}
	return (long)done;
}

/*
 * $KVMDBG_GDB_FAKE_INCREMENTAL set: serve with the incremental API from this
 * event loop instead of kvmdbg_gdb_serve(), feeding the bytes 7 at a time
 * (packets arrive in pieces), with the handshake timeout of our own.
 */
static int serve_incremental(struct kvmdbg_gdb *g, int fd, int handshake_ms)
{
	struct kvmdbg_gdb_session *sess;
	int end = KVMDBG_GDB_ACTIVE, spoke = 0, gone = 0;

	if (kvmdbg_gdb_session_new(g, f_send, &fd, &sess) < 0)
		return -ENOMEM;
	while (end == KVMDBG_GDB_ACTIVE) {
		struct pollfd p[2] = { { .fd = notify[0], .events = POLLIN },
				       { .fd = gone ? -1 : fd, .events = POLLIN } };
		char buf[7];
		ssize_t n;
		int r = poll(p, 2, handshake_ms && !spoke ? handshake_ms : -1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			end = r == 0 ? KVMDBG_GDB_SILENT : -errno;
			break;
		}
		if (p[0].revents & POLLIN)
			end = kvmdbg_gdb_session_stopped(sess);
		if (end != KVMDBG_GDB_ACTIVE || !(p[1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		gone = n <= 0;
		spoke |= n > 0;
		end = kvmdbg_gdb_session_feed(sess, buf, n > 0 ? (size_t)n : 0);
	}
	kvmdbg_gdb_session_free(sess);
	return end;
}

/* usage: gdbstub-fake [--run-forever] [--handshake MS]
 * Prints the port, serves clients until one spoke (with --handshake, a
 * client silent that long is dropped), prints how the session ended and the
 * counters on stderr. Exit 0 unless the session failed. */
int main(int argc, char **argv)
{
	struct kvmdbg_gdb_ops ops = {
		.sz = sizeof(ops), .arch = KVMDBG_GDB_ARCH_AARCH64,
		.nthreads = f_nthreads, .thread_alive = f_alive,
		.read_regs = f_read_regs, .write_regs = f_write_regs, .read_mem = f_read_mem,
		.write_mem = f_write_mem, .insert = f_insert, .remove = f_remove,
		.resume = f_resume, .stop_fd = f_stop_fd, .get_stop = f_get_stop,
		.interrupt = f_interrupt, .detach = f_nop, .monitor = f_monitor,
	};
	static const char *const ends[] = { "detached", "killed", "disconnected",
					    "guest-exited", "silent" };
	KVMDBG_OPTS(kvmdbg_gdb_serve_opts, sopts);
	struct kvmdbg_gdb_reg v0 = { .sz = sizeof(v0) }, fpcr = { .sz = sizeof(fpcr) };
	size_t g_bytes, n = 0;
	KVMDBG_OPTS(kvmdbg_gdb_stats, st);
	struct kvmdbg_gdb *g;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char e[128];
	int lfd, fd, end;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--run-forever"))
			run_forever = 1;
		else if (!strcmp(argv[i], "--handshake") && i + 1 < argc)
			sopts.handshake_ms = atoi(argv[++i]);
		else
			return 2;
	}
	for (unsigned int i = 0; i < NREGS; i++) {
		struct kvmdbg_gdb_reg r = { .sz = sizeof(r) };

		if (kvmdbg_gdb_reg_get(KVMDBG_GDB_ARCH_AARCH64, i, &r) < 0)
			return 1;
		sizes[i] = r.size;
	}
	for (unsigned int i = 0; i < NREGS; i++)
		n += sizes[i];
	if (kvmdbg_gdb_reg_count(KVMDBG_GDB_ARCH_AARCH64, &g_bytes) < NREGS ||
	    g_bytes - n > EXT_MAX || kvmdbg_gdb_reg_lookup(KVMDBG_GDB_ARCH_AARCH64, "v0", &v0) < 0 ||
	    kvmdbg_gdb_reg_lookup(KVMDBG_GDB_ARCH_AARCH64, "fpcr", &fpcr) < 0 ||
	    kvmdbg_gdb_reg_lookup(KVMDBG_GDB_ARCH_AARCH64, "pc", &(struct kvmdbg_gdb_reg){
		    .sz = sizeof(struct kvmdbg_gdb_reg) }) != PC)
		return 1;
	ext_bytes = g_bytes - n;
	for (uint64_t i = 0; i < SIZE; i += 4) { /* A64 NOP */
		mem[i] = 0x1f; mem[i + 1] = 0x20; mem[i + 2] = 0x03; mem[i + 3] = 0xd5;
	}
	for (int t = 0; t < NTHREADS; t++) {
		regs[t][0] = 0x1234 + (uint64_t)t;
		regs[t][31] = 0x410000 - 0x1000 * (uint64_t)t;
		regs[t][PC] = BASE + 0x10 * (uint64_t)t;
		regs[t][33] = 0x3c5; /* EL1h, DAIF masked */
		for (unsigned int i = 0; i < 16; i++) /* v0: bytes 0x10 * t + 0..15 */
			ext[t][v0.offset - n + i] = (uint8_t)(0x10 * t + i);
		ext[t][fpcr.offset - n + 3] = 0x03; /* fpcr 0x03000000: round to zero */
	}
	if (pipe2(notify, O_NONBLOCK) || kvmdbg_gdb_new(&ops, NULL, &g) < 0)
		return 1;
	lfd = kvmdbg_gdb_listen("127.0.0.1:0", e, sizeof(e));
	if (lfd < 0 || getsockname(lfd, (struct sockaddr *)&sa, &sl)) {
		fprintf(stderr, "gdbstub-fake: %s\n", e);
		return 1;
	}
	printf("%d\n", ntohs(sa.sin_port));
	fflush(stdout);
	do {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			return 1;
		end = getenv("KVMDBG_GDB_FAKE_INCREMENTAL")
			      ? serve_incremental(g, fd, sopts.handshake_ms)
			      : kvmdbg_gdb_serve(g, fd, &sopts);
		close(fd);
		fprintf(stderr, "gdbstub-fake: session: %s\n", end < 0 ? strerror(-end) : ends[end]);
	} while (end == KVMDBG_GDB_SILENT);
	kvmdbg_gdb_stats_get(g, &st);
	fprintf(stderr, "gdbstub-fake: packets in %llu out %llu, bytes in %llu out %llu, "
		"sessions %llu\n", (unsigned long long)st.packets_in,
		(unsigned long long)st.packets_out, (unsigned long long)st.bytes_in,
		(unsigned long long)st.bytes_out, (unsigned long long)st.sessions);
	kvmdbg_gdb_free(g);
	return end < 0;
}
