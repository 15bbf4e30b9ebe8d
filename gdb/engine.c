/* SPDX-License-Identifier: MIT */
/*
 * The protocol engine of libkvmdbg-gdb: the GDB remote serial protocol over
 * one connection (a socket, a serial line or a virtio port). See
 * <kvmdbg/gdb.h>. No KVM and no libkvmdbg here: only struct kvmdbg_gdb_ops.
 */
#include "gdb-int.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_REGS 256
#define MAX_REG_BYTES 2048

struct kvmdbg_gdb {
	struct kvmdbg_gdb_ops ops;
	void *ctx;
	struct kvmdbg_gdb_stats stats;
	const char *xml;
	unsigned int nregs, pc_regno;
	bool expedite[MAX_REGS]; /* the registers every stop reply carries */
	size_t g_bytes;
	uint16_t reg_size[MAX_REGS];
	uint32_t reg_off[MAX_REGS];
};

struct stub {
	struct kvmdbg_gdb *g;
	int fd;
	const struct kvmdbg_gdb_ops *ops;
	void *ctx;
	bool is_sock;              /* fd is a socket (else a tty or virtio port) */
	bool noack;
	bool eof;
	bool ctrl_c;               /* ^C seen while running */
	int range_thread;          /* vCont;r: the thread stepping in [range_start, range_end) */
	enum kvmdbg_gdb_action resume_act[MAX_THREADS]; /* what the last resume ran */
	uint64_t range_start, range_end;
	enum { SCAN_OUT, SCAN_PACKET, SCAN_SUM1, SCAN_SUM2 } scan; /* framing, while running */
	int g_thread;              /* Hg: registers and memory */
	int c_thread;              /* Hc: s and c (-1: all) */
	unsigned long packets;
	int64_t deadline;          /* the first packet's, CLOCK_MONOTONIC ms (0: none) */
	/* the incremental API (struct kvmdbg_gdb_session): bytes come from
	 * kvmdbg_gdb_session_feed(), replies go to out_cb; a resume returns at
	 * once (running) and kvmdbg_gdb_session_stopped() finishes it */
	bool incremental;
	bool running, interrupted;
	long (*out_cb)(void *ctx, const void *buf, size_t len);
	void *out_ctx;
	int end;                   /* the session's end once it ended, else GO_ON */
	/* input buffer: a whole packet of KVMDBG_GDB_PACKET_SIZE fits (incremental) */
	unsigned char in[2 * KVMDBG_GDB_PACKET_SIZE + 16];
	size_t in_len, in_pos;
	/* packet being received (raw, still escaped) */
	char pkt[KVMDBG_GDB_PACKET_SIZE + 1];
	size_t pkt_len;
	/* reply being built (payload only) */
	char out[KVMDBG_GDB_PACKET_SIZE + 1];
	size_t out_len;
	bool out_overflow;
	/* the last frame sent, for '-' retransmission */
	char last[KVMDBG_GDB_PACKET_SIZE + 8];
	size_t last_len;
	uint8_t regs[MAX_REG_BYTES];
	/* qXfer:threads:read's document */
	char threads_xml[64 * 48 + 64];
	size_t threads_len;
	/* memory of m, M and X */
	uint8_t scratch[KVMDBG_GDB_PACKET_SIZE];
};

/* Internal session ends besides enum kvmdbg_gdb_end: go on, and a failure (-EIO). */
#define GO_ON (-1)
#define END_ERROR 100

static const char hexd[] = "0123456789abcdef";

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* ---- I/O: a socket or a character device ------------------------------------------ */

static bool write_all(struct stub *s, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		/* send() on a socket (no SIGPIPE), write() on a serial line or
		 * virtio port (--gdb DEVICE) */
		ssize_t n = s->out_cb ? (ssize_t)s->out_cb(s->out_ctx, p, len)
			    : s->is_sock ? send(s->fd, p, len, MSG_NOSIGNAL) : write(s->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			s->eof = true;
			return false;
		}
		s->g->stats.bytes_out += (uint64_t)n;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* read() from the client: the bytes read (counted in stats.bytes_in), 0 to
 * try again later (EINTR, EAGAIN), or -1 at its end (s->eof set). */
static ssize_t client_read(struct stub *s, void *buf, size_t len)
{
	ssize_t n = read(s->fd, buf, len);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		s->eof = true;
		return -1;
	}
	s->g->stats.bytes_in += (uint64_t)n;
	return n;
}

/* Fill the input buffer; waits up to timeout_ms (-1: forever). 1 data, 0 timeout, -1 EOF. */
static int fill(struct stub *s, int timeout_ms)
{
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	ssize_t n;
	int r;

	if (s->in_pos < s->in_len)
		return 1;
	if (s->eof)
		return -1;
	r = poll(&pfd, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -1;
	if (r == 0)
		return 0;
	n = client_read(s, s->in, sizeof(s->in));
	if (n <= 0)
		return (int)n;
	s->in_len = (size_t)n;
	s->in_pos = 0;
	return 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The next byte; -1 at EOF, -2 when the handshake deadline passed first,
 * -3 when the incremental API has no more bytes yet. */
static int getbyte(struct stub *s)
{
	if (s->incremental) {
		if (s->in_pos < s->in_len)
			return s->in[s->in_pos++];
		return s->eof ? -1 : -3;
	}
	for (;;) {
		int timeout = -1, r;

		if (s->deadline && !s->packets) {
			int64_t left = s->deadline - now_ms();

			if (left <= 0 && s->in_pos >= s->in_len)
				return -2;
			timeout = left <= 0 ? 0 : (int)left;
		}
		r = fill(s, timeout);
		if (r > 0)
			return s->in[s->in_pos++];
		if (r < 0)
			return -1;
	}
}

/* ---- replies ------------------------------------------------------------ */

static void out_reset(struct stub *s)
{
	s->out_len = 0;
	s->out_overflow = false;
}

static void out_char(struct stub *s, char c)
{
	if (s->out_len >= KVMDBG_GDB_PACKET_SIZE) {
		s->out_overflow = true;
		return;
	}
	s->out[s->out_len++] = c;
}

static void out_str(struct stub *s, const char *str)
{
	while (*str)
		out_char(s, *str++);
}

__attribute__((format(printf, 2, 3))) static void out_fmt(struct stub *s, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	out_str(s, buf);
}

static void out_hex(struct stub *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		out_char(s, hexd[p[i] >> 4]);
		out_char(s, hexd[p[i] & 15]);
	}
}

/* Binary data with the protocol's escapes ('#', '$', '}', '*'). */
static void out_bin(struct stub *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (c == '#' || c == '$' || c == '}' || c == '*') {
			out_char(s, '}');
			out_char(s, (char)(c ^ 0x20));
		} else {
			out_char(s, c);
		}
	}
}

static bool send_reply(struct stub *s)
{
	uint8_t sum = 0;
	size_t n = 0;

	if (s->out_overflow) { /* never send a truncated reply */
		out_reset(s);
		out_str(s, "E01");
	}
	s->last[n++] = '$';
	for (size_t i = 0; i < s->out_len; i++) {
		sum = (uint8_t)(sum + (uint8_t)s->out[i]);
		s->last[n++] = s->out[i];
	}
	s->last[n++] = '#';
	s->last[n++] = hexd[sum >> 4];
	s->last[n++] = hexd[sum & 15];
	s->last_len = n;
	s->g->stats.packets_out++;
	return write_all(s, s->last, n);
}

static bool reply(struct stub *s, const char *str)
{
	out_reset(s);
	out_str(s, str);
	return send_reply(s);
}

static bool reply_errno(struct stub *s, int e)
{
	char buf[8];

	if (e < 0)
		e = -e;
	snprintf(buf, sizeof(buf), "E%02x", e & 0xff);
	return reply(s, buf);
}

/* ---- packets ------------------------------------------------------------ */

enum rx { RX_OK, RX_EOF, RX_TOO_LONG, RX_INTERRUPT, RX_SILENT, RX_MORE };

static enum rx rx_end(struct stub *s, int c, size_t start)
{
	if (c == -3) { /* incremental: the packet is not complete yet */
		s->in_pos = start;
		return RX_MORE;
	}
	return c == -2 ? RX_SILENT : RX_EOF;
}

/* Receive one packet into s->pkt (NUL-terminated, escapes kept). */
static enum rx read_packet(struct stub *s)
{
	for (;;) {
		bool too_long = false;
		uint8_t sum = 0;
		size_t start = s->in_pos; /* where an incomplete packet starts again */
		int c, h, l;

		c = getbyte(s);
		if (c < 0)
			return rx_end(s, c, start);
		if (c == '-') {
			if (!s->noack && s->last_len)
				write_all(s, s->last, s->last_len);
			continue;
		}
		if (c == 0x03)
			return RX_INTERRUPT;
		if (c != '$')
			continue; /* '+' and line noise */
restart:
		s->pkt_len = 0;
		sum = 0;
		too_long = false;
		for (;;) {
			c = getbyte(s);
			if (c < 0)
				return rx_end(s, c, start);
			if (c == '#')
				break;
			if (c == '$') {
				start = s->in_pos - 1;
				goto restart; /* a new packet start: resynchronise */
			}
			sum = (uint8_t)(sum + c);
			if (s->pkt_len < KVMDBG_GDB_PACKET_SIZE)
				s->pkt[s->pkt_len++] = (char)c;
			else
				too_long = true;
		}
		s->pkt[s->pkt_len] = '\0';
		h = getbyte(s);
		l = h < 0 ? h : getbyte(s);
		if (l < 0)
			return rx_end(s, h < 0 ? h : l, start);
		h = hexval(h);
		l = hexval(l);
		if (!s->noack) {
			if (h < 0 || l < 0 || (uint8_t)(h << 4 | l) != sum) {
				write_all(s, "-", 1);
				continue;
			}
			write_all(s, "+", 1);
		} else if (h < 0 || l < 0 || (uint8_t)(h << 4 | l) != sum) {
			continue; /* no-ack mode: drop it, the client times out */
		}
		s->packets++;
		s->g->stats.packets_in++;
		return too_long ? RX_TOO_LONG : RX_OK;
	}
}

/* Parse hex digits at *p into v; advances *p. False when there are none or too many. */
static bool parse_hex(const char **p, uint64_t *v)
{
	const char *q = *p;
	uint64_t x = 0;
	int n = 0, d;

	while ((d = hexval(*q)) >= 0) {
		if (++n > 16)
			return false;
		x = x << 4 | (uint64_t)d;
		q++;
	}
	if (!n)
		return false;
	*p = q;
	*v = x;
	return true;
}

/* Thread id: "-1" all, "0" any, or hex. Returns -2 for all, -1 for any, else 0-based. */
static bool parse_thread(struct stub *s, const char **p, int *out)
{
	uint64_t v;

	if ((*p)[0] == '-' && (*p)[1] == '1') {
		*p += 2;
		*out = -2;
		return true;
	}
	if ((*p)[0] == 'p') /* multiprocess syntax: we never advertise it */
		return false;
	if (!parse_hex(p, &v))
		return false;
	if (v == 0) {
		*out = -1;
		return true;
	}
	if (v > (uint64_t)s->ops->nthreads(s->ctx))
		return false;
	*out = (int)v - 1;
	return true;
}


/* Decode hex into buf; false on odd length or a bad digit. */
static bool unhex(const char *p, size_t nchars, uint8_t *buf)
{
	if (nchars % 2)
		return false;
	for (size_t i = 0; i < nchars / 2; i++) {
		int h = hexval(p[2 * i]), l = hexval(p[2 * i + 1]);

		if (h < 0 || l < 0)
			return false;
		buf[i] = (uint8_t)(h << 4 | l);
	}
	return true;
}

static int cur_thread(struct stub *s)
{
	return s->g_thread < 0 ? 0 : s->g_thread;
}

static bool handle_g(struct stub *s)
{
	size_t n = s->g->g_bytes;
	int r = s->ops->read_regs(s->ctx, cur_thread(s), s->regs);

	if (r < 0)
		return reply_errno(s, r);
	out_reset(s);
	out_hex(s, s->regs, n);
	return send_reply(s);
}

static bool handle_G(struct stub *s, const char *p)
{
	size_t n = s->g->g_bytes, len = strlen(p);
	int r;

	if (len != 2 * n || !unhex(p, len, s->regs))
		return reply(s, "E16");
	r = s->ops->write_regs(s->ctx, cur_thread(s), s->regs);
	return r < 0 ? reply_errno(s, r) : reply(s, "OK");
}

static bool handle_p(struct stub *s, const char *p, bool write)
{
	uint64_t regno;
	size_t off, size;
	int r;

	if (!parse_hex(&p, &regno) || regno >= s->g->nregs || (write && *p != '=') ||
	    (!write && *p))
		return reply(s, "E16");
	off = s->g->reg_off[regno];
	size = s->g->reg_size[regno];
	r = s->ops->read_regs(s->ctx, cur_thread(s), s->regs);
	if (r < 0)
		return reply_errno(s, r);
	if (!write) {
		out_reset(s);
		out_hex(s, s->regs + off, size);
		return send_reply(s);
	}
	p++;
	if (strlen(p) != 2 * size || !unhex(p, 2 * size, s->regs + off))
		return reply(s, "E16");
	r = s->ops->write_regs(s->ctx, cur_thread(s), s->regs);
	return r < 0 ? reply_errno(s, r) : reply(s, "OK");
}

/* "ADDR,LEN" then the separator sep (or the end when sep is 0). */
static bool parse_addr_len(const char **p, uint64_t *addr, uint64_t *len, char sep)
{
	if (!parse_hex(p, addr) || **p != ',')
		return false;
	(*p)++;
	if (!parse_hex(p, len))
		return false;
	if (sep ? **p != sep : **p != '\0')
		return false;
	if (sep)
		(*p)++;
	return true;
}

static bool handle_m(struct stub *s, const char *p)
{
	uint8_t *buf = s->scratch;
	const size_t bufsize = (KVMDBG_GDB_PACKET_SIZE - 1) / 2;
	uint64_t addr, len;
	long n;

	if (!parse_addr_len(&p, &addr, &len, 0))
		return reply(s, "E16");
	if (len == 0)
		return reply(s, "");
	if (len > bufsize)
		len = bufsize; /* a short read is allowed */
	n = s->ops->read_mem(s->ctx, cur_thread(s), addr, buf, (size_t)len);
	if (n <= 0)
		return reply_errno(s, n < 0 ? (int)n : -EFAULT);
	out_reset(s);
	out_hex(s, buf, (size_t)n);
	return send_reply(s);
}

static bool write_mem_all(struct stub *s, uint64_t addr, const uint8_t *buf, size_t len)
{
	while (len) {
		long n = s->ops->write_mem(s->ctx, cur_thread(s), addr, buf, len);

		if (n <= 0)
			return reply_errno(s, n < 0 ? (int)n : -EFAULT);
		addr += (uint64_t)n;
		buf += n;
		len -= (size_t)n;
	}
	return reply(s, "OK");
}

static bool handle_M(struct stub *s, const char *p)
{
	uint8_t *buf = s->scratch;
	uint64_t addr, len;

	if (!parse_addr_len(&p, &addr, &len, ':') || len > KVMDBG_GDB_PACKET_SIZE / 2 ||
	    strlen(p) != 2 * len || !unhex(p, 2 * len, buf))
		return reply(s, "E16");
	if (len == 0)
		return reply(s, "OK");
	return write_mem_all(s, addr, buf, (size_t)len);
}

static bool handle_X(struct stub *s, const char *p)
{
	uint8_t *buf = s->scratch;
	const size_t bufsize = sizeof(s->scratch);
	const char *end = s->pkt + s->pkt_len;
	uint64_t addr, len;
	size_t n = 0;

	if (!parse_addr_len(&p, &addr, &len, ':') || len > bufsize)
		return reply(s, "E16");
	while (p < end) {
		char c = *p++;

		if (c == '}') {
			if (p == end)
				return reply(s, "E16");
			c = (char)(*p++ ^ 0x20);
		}
		if (n == bufsize)
			return reply(s, "E16");
		buf[n++] = (uint8_t)c;
	}
	if (n != len)
		return reply(s, "E16");
	if (len == 0)
		return reply(s, "OK"); /* gdb's probe for X support */
	return write_mem_all(s, addr, buf, n);
}

static bool handle_Z(struct stub *s, const char *p, bool insert)
{
	uint64_t type, addr, kind;
	int r;

	if (!parse_hex(&p, &type) || *p != ',')
		return reply(s, "E16");
	p++;
	/* Conditions and commands (";X...") are never sent: not advertised. */
	if (!parse_addr_len(&p, &addr, &kind, strchr(p, ';') ? ';' : 0))
		return reply(s, "E16");
	if (type > 4)
		return reply(s, "");
	/* Every failure is an error reply, -EOPNOTSUPP too: the empty reply
	 * would tell gdb the packet is unknown, and for Z0 it would then write
	 * the breakpoint instruction itself, which the host cannot deliver. */
	r = insert ? s->ops->insert(s->ctx, cur_thread(s), (enum kvmdbg_gdb_point)type, addr, kind)
		   : s->ops->remove(s->ctx, cur_thread(s), (enum kvmdbg_gdb_point)type, addr, kind);
	return r < 0 ? reply_errno(s, r) : reply(s, "OK");
}

static void out_stop(struct stub *s, const struct kvmdbg_gdb_stop *st)
{
	out_reset(s);
	switch (st->kind) {
	case KVMDBG_GDB_STOP_EXITED:
		out_fmt(s, "W%02x", st->signal & 0xff);
		return;
	case KVMDBG_GDB_STOP_KILLED:
		out_fmt(s, "X%02x", st->signal & 0xff);
		return;
	case KVMDBG_GDB_STOP_SIGNAL:
		break;
	}
	out_fmt(s, "T%02x", st->signal & 0xff);
	switch (st->reason) {
	case KVMDBG_GDB_REASON_SWBREAK:
		out_str(s, "swbreak:;");
		break;
	case KVMDBG_GDB_REASON_HWBREAK:
		out_str(s, "hwbreak:;");
		break;
	case KVMDBG_GDB_REASON_WATCH:
		out_fmt(s, "watch:%" PRIx64 ";", st->data_addr);
		break;
	case KVMDBG_GDB_REASON_RWATCH:
		out_fmt(s, "rwatch:%" PRIx64 ";", st->data_addr);
		break;
	case KVMDBG_GDB_REASON_AWATCH:
		out_fmt(s, "awatch:%" PRIx64 ";", st->data_addr);
		break;
	case KVMDBG_GDB_REASON_NONE:
		break;
	}
	out_fmt(s, "thread:%x;", st->thread + 1);
	/* The general registers of the stopped thread, expedited: gdb fills
	 * its register cache from them and needs no g after a step or a break. */
	if (st->thread >= 0 && st->thread < s->ops->nthreads(s->ctx) &&
	    s->ops->read_regs(s->ctx, st->thread, s->regs) == 0) {
		for (unsigned int i = 0; i < s->g->nregs; i++) {
			if (!s->g->expedite[i])
				continue;
			out_fmt(s, "%x:", i);
			out_hex(s, s->regs + s->g->reg_off[i], s->g->reg_size[i]);
			out_char(s, ';');
		}
	}
}

/*
 * While the machine runs: read what the client sent (poll said it can be
 * read: this never blocks) and keep it for after the stop, except Ctrl-C
 * outside a packet, which is taken out and noted in s->ctrl_c. What does
 * not fit in the input buffer is dropped (its packet then fails its
 * checksum or its framing and is NAKed or resynchronised on). 0, or -1 at
 * EOF: the client went away.
 */
static void compact(struct stub *s)
{
	if (s->in_pos > 0) {
		memmove(s->in, s->in + s->in_pos, s->in_len - s->in_pos);
		s->in_len -= s->in_pos;
		s->in_pos = 0;
	}
}

static void absorb_bytes(struct stub *s, const unsigned char *tmp, size_t n)
{
	compact(s);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = tmp[i];

		switch (s->scan) {
		case SCAN_OUT:
			if (c == 0x03) {
				s->ctrl_c = true;
				continue; /* not queued */
			}
			if (c == '$')
				s->scan = SCAN_PACKET;
			break;
		case SCAN_PACKET:
			if (c == '#')
				s->scan = SCAN_SUM1;
			break;
		case SCAN_SUM1:
			s->scan = SCAN_SUM2;
			break;
		case SCAN_SUM2:
			s->scan = SCAN_OUT;
			break;
		}
		if (s->in_len < sizeof(s->in))
			s->in[s->in_len++] = c;
	}
}

static int absorb(struct stub *s)
{
	unsigned char tmp[1024];
	ssize_t n = client_read(s, tmp, sizeof(tmp));

	if (n <= 0)
		return (int)n;
	absorb_bytes(s, tmp, (size_t)n);
	return 0;
}

/* resume_poll(): the machine still runs. */
#define STILL_RUNNING (-2)

/* Resume: the VMM's resume, then the bytes already queued (sent with the
 * resuming packet) scanned for ^C. False (an E reply sent) when the VMM
 * cannot resume. */
static bool resume_start(struct stub *s, const enum kvmdbg_gdb_action *actions)
{
	int r = s->ops->resume(s->ctx, actions);

	if (r < 0) {
		reply_errno(s, r);
		return false;
	}
	if (actions != s->resume_act)
		memcpy(s->resume_act, actions, sizeof(s->resume_act));
	s->interrupted = false;
	s->scan = SCAN_OUT; /* read_packet() leaves whole packets, or nothing, before in_pos */
	s->ctrl_c = false;
	for (size_t i = s->in_pos; i < s->in_len; i++) {
		if (s->in[i] == 0x03 && s->scan == SCAN_OUT) {
			memmove(s->in + i, s->in + i + 1, s->in_len - i - 1);
			s->in_len--;
			s->ctrl_c = true;
			i--;
			continue;
		}
		s->scan = s->scan == SCAN_OUT	 ? (s->in[i] == '$' ? SCAN_PACKET : SCAN_OUT)
			  : s->scan == SCAN_PACKET ? (s->in[i] == '#' ? SCAN_SUM1 : SCAN_PACKET)
			  : s->scan == SCAN_SUM1   ? SCAN_SUM2
						   : SCAN_OUT;
	}
	return true;
}

/*
 * One look at the resumed machine: ^C or a client that went away stops it
 * (once); STILL_RUNNING, or the stop reported (GO_ON, KVMDBG_GDB_GUEST_EXITED)
 * or END_ERROR. A vCont;r step that is still inside the range is not
 * reported: the thread steps again (^C and other stops end it).
 */
static int resume_poll(struct stub *s)
{
	struct kvmdbg_gdb_stop st;
	int r;

	if ((s->ctrl_c || s->eof) && !s->interrupted) {
		s->ops->interrupt(s->ctx);
		s->interrupted = true;
	}
	s->ctrl_c = false;
	memset(&st, 0, sizeof(st));
	st.sz = sizeof(st);
	r = s->ops->get_stop(s->ctx, &st);
	if (r < 0) {
		reply_errno(s, r);
		return END_ERROR;
	}
	if (r == 0)
		return STILL_RUNNING;
	if (s->range_thread >= 0 && st.kind == KVMDBG_GDB_STOP_SIGNAL && st.signal == 5 &&
	    st.reason == KVMDBG_GDB_REASON_NONE && st.thread == s->range_thread &&
	    !s->interrupted && !s->ctrl_c && !s->eof &&
	    s->ops->read_regs(s->ctx, st.thread, s->regs) == 0) {
		uint64_t pc = 0;

		for (size_t i = 0; i < s->g->reg_size[s->g->pc_regno] && i < 8; i++)
			pc |= (uint64_t)s->regs[s->g->reg_off[s->g->pc_regno] + i] << (8 * i);
		if (pc >= s->range_start && pc < s->range_end) {
			s->g->stats.range_steps++;
			if (resume_start(s, s->resume_act))
				return STILL_RUNNING;
			s->range_thread = -1;
			return GO_ON;
		}
	}
	s->range_thread = -1;
	if (st.kind == KVMDBG_GDB_STOP_SIGNAL && st.thread >= 0)
		s->g_thread = st.thread;
	out_stop(s, &st);
	send_reply(s);
	return st.kind == KVMDBG_GDB_STOP_SIGNAL ? GO_ON : KVMDBG_GDB_GUEST_EXITED;
}

/*
 * Resume and wait for the stop. Ctrl-C interrupts, at any moment: also
 * behind packets the client sent meanwhile (answered after the stop); a
 * client that goes away stops the machine too. Returns the end state or -1
 * to go on. Incremental: returns at once, running, unless already stopped.
 */
static int resume_and_wait(struct stub *s, const enum kvmdbg_gdb_action *actions)
{
	if (!resume_start(s, actions))
		return GO_ON;
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = s->ops->stop_fd(s->ctx), .events = POLLIN },
			{ .fd = s->fd, .events = POLLIN },
		};
		nfds_t npfd = s->eof ? 1 : 2;
		int r = resume_poll(s);

		if (r != STILL_RUNNING)
			return r;
		if (s->incremental) {
			s->running = true; /* kvmdbg_gdb_session_stopped() goes on */
			return GO_ON;
		}
		if (poll(pfd, npfd, -1) < 0) {
			if (errno == EINTR)
				continue;
			return END_ERROR;
		}
		if (npfd == 2 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)))
			absorb(s);
	}
}

static int nthreads(struct stub *s)
{
	int n = s->ops->nthreads(s->ctx);

	return n > MAX_THREADS ? MAX_THREADS : n;
}

/* c/s [ADDR]: set the pc first when given. */
static int handle_cs(struct stub *s, const char *p, bool step)
{
	enum kvmdbg_gdb_action act[MAX_THREADS];
	int n = nthreads(s), t;

	if (*p) {
		uint64_t addr;
		unsigned int pc = s->g->pc_regno;
		size_t off = s->g->reg_off[pc], size = s->g->reg_size[pc];
		int r;

		if (!parse_hex(&p, &addr) || *p || size > 8) {
			reply(s, "E16");
			return -1;
		}
		t = cur_thread(s);
		r = s->ops->read_regs(s->ctx, t, s->regs);
		if (r == 0) {
			for (size_t i = 0; i < size; i++) /* little-endian targets */
				s->regs[off + i] = (uint8_t)(addr >> (8 * i));
			r = s->ops->write_regs(s->ctx, t, s->regs);
		}
		if (r < 0) {
			reply_errno(s, r);
			return -1;
		}
	}
	t = s->c_thread >= 0 ? s->c_thread : cur_thread(s);
	for (int i = 0; i < n; i++)
		act[i] = step ? (i == t ? KVMDBG_GDB_STEP : KVMDBG_GDB_STAY) : KVMDBG_GDB_CONTINUE;
	return resume_and_wait(s, act);
}

/* vCont;ACTION[:TID]...: the leftmost action that names a thread wins. */
static int handle_vcont(struct stub *s, const char *p)
{
	enum kvmdbg_gdb_action act[MAX_THREADS];
	bool set[MAX_THREADS] = { false };
	int n = nthreads(s), rng = -1;
	uint64_t rstart = 0, rend = 0;
	bool any = false;

	for (int i = 0; i < n; i++)
		act[i] = KVMDBG_GDB_STAY;
	while (*p == ';') {
		enum kvmdbg_gdb_action a;
		int t = -2;

		p++;
		switch (*p) {
		case 'c':
			a = KVMDBG_GDB_CONTINUE;
			p++;
			break;
		case 's':
			a = KVMDBG_GDB_STEP;
			p++;
			break;
		case 'C':
		case 'S': { /* with a signal: the signal is ignored (no guest signals) */
			uint64_t sig;

			a = *p == 'C' ? KVMDBG_GDB_CONTINUE : KVMDBG_GDB_STEP;
			p++;
			if (!parse_hex(&p, &sig)) {
				reply(s, "E16");
				return -1;
			}
			break;
		}
		case 't': /* stop: all-stop threads are stopped already */
			a = KVMDBG_GDB_STAY;
			p++;
			break;
		case 'r': /* rSTART,END: step while the pc stays in [START, END) */
			a = KVMDBG_GDB_STEP;
			p++;
			if (rng >= 0 || !parse_hex(&p, &rstart) || *p++ != ',' ||
			    !parse_hex(&p, &rend)) { /* one range at a time */
				reply(s, "E16");
				return -1;
			}
			rng = -3; /* this action's thread, set below */
			break;
		default:
			reply(s, "E16");
			return -1;
		}
		if (*p == ':') {
			p++;
			if (!parse_thread(s, &p, &t) || t == -1) {
				reply(s, "E16");
				return -1;
			}
		}
		if (*p && *p != ';') {
			reply(s, "E16");
			return -1;
		}
		if (rng == -3) { /* a range needs one thread */
			if (t < 0 || set[t]) {
				reply(s, "E16");
				return -1;
			}
			rng = t;
		}
		for (int i = 0; i < n; i++) {
			if ((t == -2 || t == i) && !set[i]) {
				set[i] = true;
				act[i] = a;
				any |= a != KVMDBG_GDB_STAY;
			}
		}
	}
	if (*p || !any) {
		reply(s, "E16");
		return -1;
	}
	s->range_thread = rng;
	s->range_start = rstart;
	s->range_end = rend;
	return resume_and_wait(s, act);
}

/* A qXfer read of the object text (total bytes) at "OFF,LEN". */
static bool xfer_reply(struct stub *s, const char *p, const char *text, size_t total)
{
	uint64_t off, len;

	if (!parse_addr_len(&p, &off, &len, 0))
		return reply(s, "E16");
	if (off > total)
		return reply(s, "E16");
	if (len > (KVMDBG_GDB_PACKET_SIZE - 1) / 2)
		len = (KVMDBG_GDB_PACKET_SIZE - 1) / 2; /* room for escapes */
	out_reset(s);
	if (total - off <= len) {
		out_char(s, 'l');
		out_bin(s, text + off, total - off);
	} else {
		out_char(s, 'm');
		out_bin(s, text + off, (size_t)len);
	}
	return send_reply(s);
}

static bool handle_xfer_features(struct stub *s, const char *p)
{
	if (strncmp(p, "target.xml:", 11) != 0)
		return reply(s, "E00");
	return xfer_reply(s, p + 11, s->g->xml, strlen(s->g->xml));
}

/* qXfer:threads:read::OFF,LEN: the live threads in one reply instead of
 * qfThreadInfo, qsThreadInfo and a qThreadExtraInfo each (the element's
 * text, "vCPU N"; no name attribute: gdb would print it instead). Made
 * afresh at offset 0, kept for the reads that follow. */
static bool handle_xfer_threads(struct stub *s, const char *p)
{
	if (*p++ != ':')
		return reply(s, "E00");
	if (p[0] == '0' && p[1] == ',') {
		int n = nthreads(s);
		size_t len = 0;

		len += (size_t)snprintf(s->threads_xml, sizeof(s->threads_xml),
					"<?xml version=\"1.0\"?>\n<threads>\n");
		for (int i = 0; i < n && len < sizeof(s->threads_xml); i++) {
			if (!s->ops->thread_alive(s->ctx, i))
				continue;
			len += (size_t)snprintf(s->threads_xml + len, sizeof(s->threads_xml) - len,
						"<thread id=\"%x\">vCPU %d</thread>\n", i + 1, i);
		}
		if (len < sizeof(s->threads_xml))
			len += (size_t)snprintf(s->threads_xml + len, sizeof(s->threads_xml) - len,
						"</threads>\n");
		if (len >= sizeof(s->threads_xml))
			return reply(s, "E0c");
		s->threads_len = len;
	}
	return xfer_reply(s, p, s->threads_xml, s->threads_len);
}

/* qRcmd,HEX: `monitor CMD`. Built in: `info version`; the rest goes to
 * ops->monitor when the VMM has one. The output is sent hex-encoded. */
static bool handle_monitor(struct stub *s, const char *p)
{
	char cmd[256], *text = (char *)s->scratch;
	const size_t textsize = (KVMDBG_GDB_PACKET_SIZE - 1) / 2;
	size_t n = strlen(p) / 2;
	int r;

	if (n >= sizeof(cmd) || !unhex(p, 2 * n, (uint8_t *)cmd) || p[2 * n])
		return reply(s, "E16");
	cmd[n] = '\0';
	if (strcmp(cmd, "info version") == 0) {
		r = snprintf(text, textsize, "libkvmdbg-gdb %s\n", KVMDBG_GDB_VERSION);
	} else if (s->ops->monitor) {
		text[0] = '\0';
		r = s->ops->monitor(s->ctx, cmd, text, textsize);
		if (r == -ENOENT)
			r = snprintf(text, textsize, "unknown monitor command: %s\n", cmd);
		else if (r < 0)
			return reply_errno(s, r);
	} else {
		r = snprintf(text, textsize, "unknown monitor command: %s (have: info version)\n",
			     cmd);
	}
	if (r <= 0)
		return reply(s, "OK");
	if ((size_t)r >= textsize)
		r = (int)textsize - 1;
	out_reset(s);
	out_hex(s, (const uint8_t *)text, (size_t)r);
	return send_reply(s);
}

static bool handle_q(struct stub *s, const char *p)
{
	if (strncmp(p, "qSupported", 10) == 0) {
		out_reset(s);
		out_fmt(s, "PacketSize=%x;qXfer:features:read+;qXfer:threads:read+;swbreak+;hwbreak+;"
			"vContSupported+;QStartNoAckMode+", KVMDBG_GDB_PACKET_SIZE);
		return send_reply(s);
	}
	if (strncmp(p, "qXfer:features:read:", 20) == 0)
		return handle_xfer_features(s, p + 20);
	if (strncmp(p, "qXfer:threads:read:", 19) == 0)
		return handle_xfer_threads(s, p + 19);
	if (strcmp(p, "qC") == 0) {
		out_reset(s);
		out_fmt(s, "QC%x", cur_thread(s) + 1);
		return send_reply(s);
	}
	if (strcmp(p, "qfThreadInfo") == 0) {
		int n = nthreads(s);
		bool first = true;

		out_reset(s);
		out_char(s, 'm');
		for (int i = 0; i < n; i++) {
			if (!s->ops->thread_alive(s->ctx, i))
				continue;
			out_fmt(s, first ? "%x" : ",%x", i + 1);
			first = false;
		}
		if (first)
			return reply(s, "l");
		return send_reply(s);
	}
	if (strcmp(p, "qsThreadInfo") == 0)
		return reply(s, "l");
	if (strcmp(p, "qOffsets") == 0)
		return reply(s, "Text=0;Data=0;Bss=0"); /* addresses are the guest's own */
	if (strncmp(p, "qRcmd,", 6) == 0)
		return handle_monitor(s, p + 6);
	if (strcmp(p, "qAttached") == 0)
		return reply(s, "0");
	if (strncmp(p, "qThreadExtraInfo,", 17) == 0) {
		const char *q = p + 17;
		char name[32];
		int t;

		if (!parse_thread(s, &q, &t) || t < 0 || *q)
			return reply(s, "E16");
		snprintf(name, sizeof(name), "vCPU %d", t);
		out_reset(s);
		out_hex(s, (const uint8_t *)name, strlen(name));
		return send_reply(s);
	}
	return reply(s, "");
}

/* One packet; returns an end state or -1 to go on. */
static int dispatch(struct stub *s)
{
	const char *p = s->pkt;

	switch (p[0]) {
	case '?': {
		struct kvmdbg_gdb_stop st = { .kind = KVMDBG_GDB_STOP_SIGNAL, .signal = 5,
					   .thread = cur_thread(s) };

		out_stop(s, &st);
		send_reply(s);
		return -1;
	}
	case 'g':
		if (p[1])
			reply(s, "E16");
		else
			handle_g(s);
		return -1;
	case 'G':
		handle_G(s, p + 1);
		return -1;
	case 'p':
		handle_p(s, p + 1, false);
		return -1;
	case 'P':
		handle_p(s, p + 1, true);
		return -1;
	case 'm':
		handle_m(s, p + 1);
		return -1;
	case 'M':
		handle_M(s, p + 1);
		return -1;
	case 'X':
		handle_X(s, p + 1);
		return -1;
	case 'Z':
	case 'z':
		handle_Z(s, p + 1, p[0] == 'Z');
		return -1;
	case 'c':
		return handle_cs(s, p + 1, false);
	case 's':
		return handle_cs(s, p + 1, true);
	case 'C':
	case 'S': { /* signal ignored; optional ";ADDR" */
		const char *q = p + 1;
		uint64_t sig;

		if (!parse_hex(&q, &sig) || (*q && *q != ';')) {
			reply(s, "E16");
			return -1;
		}
		return handle_cs(s, *q ? q + 1 : q, p[0] == 'S');
	}
	case 'H': {
		const char *q = p + 2;
		int t;

		if ((p[1] != 'g' && p[1] != 'c') || !parse_thread(s, &q, &t) || *q ||
		    (t >= 0 && !s->ops->thread_alive(s->ctx, t))) {
			reply(s, "E16");
			return -1;
		}
		if (p[1] == 'g')
			s->g_thread = t < 0 ? cur_thread(s) : t;
		else
			s->c_thread = t < 0 ? -1 : t;
		reply(s, "OK");
		return -1;
	}
	case 'T': {
		const char *q = p + 1;
		int t;

		if (!parse_thread(s, &q, &t) || *q || t < 0 || !s->ops->thread_alive(s->ctx, t))
			reply(s, "E16");
		else
			reply(s, "OK");
		return -1;
	}
	case 'q':
		handle_q(s, p);
		return -1;
	case 'Q':
		if (strcmp(p, "QStartNoAckMode") == 0) {
			reply(s, "OK");
			s->noack = true;
			return -1;
		}
		reply(s, "");
		return -1;
	case 'v':
		if (strcmp(p, "vCont?") == 0) {
			reply(s, "vCont;c;C;s;S;t;r");
			return -1;
		}
		if (strncmp(p, "vCont;", 6) == 0)
			return handle_vcont(s, p + 5);
		if (strncmp(p, "vKill", 5) == 0) {
			reply(s, "OK");
			return KVMDBG_GDB_KILLED;
		}
		reply(s, ""); /* vMustReplyEmpty, vFile, vRun, ... */
		return -1;
	case 'k':
		return KVMDBG_GDB_KILLED; /* no reply */
	case 'D':
		s->ops->detach(s->ctx);
		reply(s, "OK");
		return KVMDBG_GDB_DETACHED;
	default:
		reply(s, "");
		return -1;
	}
}

/*
 * Packets until the session ends (an end state or END_ERROR) or, with the
 * incremental API, until the bytes fed so far hold no whole packet or the
 * machine was resumed (GO_ON).
 */
static int packets(struct stub *s)
{
	int end = GO_ON;

	while (end < 0 && !s->running) {
		switch (read_packet(s)) {
		case RX_MORE:
			return GO_ON;
		case RX_EOF:
			end = KVMDBG_GDB_DISCONNECTED;
			break;
		case RX_SILENT:
			end = KVMDBG_GDB_SILENT;
			break;
		case RX_TOO_LONG:
			reply(s, "E01");
			break;
		case RX_INTERRUPT: /* ^C while stopped: nothing runs */
			break;
		case RX_OK:
			end = dispatch(s);
			if (s->eof && end < 0)
				end = KVMDBG_GDB_DISCONNECTED;
			break;
		}
	}
	return end;
}

GDB_EXPORT int kvmdbg_gdb_serve(struct kvmdbg_gdb *g, int fd,
				 const struct kvmdbg_gdb_serve_opts *opts)
{
	struct kvmdbg_gdb_serve_opts o = { .sz = sizeof(o) };
	struct stub *s;
	struct stat st;
	int end = GO_ON, r;

	if (!g || fd < 0)
		return -EINVAL;
	if (opts) {
		r = gdb_sized_in(&o, sizeof(o), opts);
		if (r < 0)
			return r;
		if (o.handshake_ms < 0)
			return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->g = g;
	s->fd = fd;
	s->is_sock = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
	s->ops = &g->ops;
	s->ctx = g->ctx;
	s->g_thread = 0;
	s->c_thread = -1;
	s->range_thread = -1;
	if (o.handshake_ms)
		s->deadline = now_ms() + o.handshake_ms;
	g->stats.sessions++;
	end = packets(s);
	free(s);
	return end == END_ERROR ? -EIO : end;
}

/* ---- the incremental API ------------------------------------------------------------------- */

struct kvmdbg_gdb_session {
	struct stub st;
};

GDB_EXPORT int kvmdbg_gdb_session_new(struct kvmdbg_gdb *g,
				       long (*write)(void *ctx, const void *buf, size_t len),
				       void *write_ctx, struct kvmdbg_gdb_session **out)
{
	struct kvmdbg_gdb_session *sess;
	struct stub *s;

	if (!g || !write || !out)
		return -EINVAL;
	sess = calloc(1, sizeof(*sess));
	if (!sess)
		return -ENOMEM;
	s = &sess->st;
	s->g = g;
	s->fd = -1;
	s->ops = &g->ops;
	s->ctx = g->ctx;
	s->g_thread = 0;
	s->c_thread = -1;
	s->range_thread = -1;
	s->incremental = true;
	s->out_cb = write;
	s->out_ctx = write_ctx;
	s->end = GO_ON;
	g->stats.sessions++;
	*out = sess;
	return 0;
}

GDB_EXPORT void kvmdbg_gdb_session_free(struct kvmdbg_gdb_session *sess)
{
	free(sess);
}

/* Where the session is: on (KVMDBG_GDB_ACTIVE), or how it ended. */
static int session_step(struct stub *s)
{
	int end = GO_ON;

	if (s->end != GO_ON)
		return s->end;
	if (s->running) {
		end = resume_poll(s);
		if (end == STILL_RUNNING)
			return KVMDBG_GDB_ACTIVE;
		s->running = false;
	}
	if (end == GO_ON)
		end = packets(s);
	if (end == GO_ON)
		return KVMDBG_GDB_ACTIVE;
	s->end = end == END_ERROR ? -EIO : end;
	return s->end;
}

GDB_EXPORT int kvmdbg_gdb_session_feed(struct kvmdbg_gdb_session *sess, const void *buf,
					size_t len)
{
	struct stub *s;

	if (!sess || (!buf && len))
		return -EINVAL;
	s = &sess->st;
	if (s->end != GO_ON)
		return s->end;
	s->g->stats.bytes_in += len;
	if (!len) {
		s->eof = true;
	} else if (s->running) {
		absorb_bytes(s, buf, len); /* ^C noted, packets queued */
	} else {
		compact(s);
		if (len > sizeof(s->in) - s->in_len)
			s->in_len = 0; /* no packet is that long: drop what cannot be one */
		if (len > sizeof(s->in)) { /* the tail: framing resynchronises on '$' */
			buf = (const unsigned char *)buf + (len - sizeof(s->in));
			len = sizeof(s->in);
		}
		memcpy(s->in + s->in_len, buf, len);
		s->in_len += len;
	}
	return session_step(s);
}

GDB_EXPORT int kvmdbg_gdb_session_stopped(struct kvmdbg_gdb_session *sess)
{
	if (!sess)
		return -EINVAL;
	return session_step(&sess->st);
}

GDB_EXPORT int kvmdbg_gdb_new(const struct kvmdbg_gdb_ops *ops, void *ctx,
			       struct kvmdbg_gdb **out)
{
	struct kvmdbg_gdb *g;
	struct kvmdbg_gdb_reg reg = { .sz = sizeof(reg) };
	int n, r;

	if (!ops || !out)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	r = gdb_sized_in(&g->ops, sizeof(g->ops), ops);
	if (r < 0)
		goto fail;
	r = -EINVAL;
	if (!g->ops.nthreads || !g->ops.thread_alive || !g->ops.read_regs ||
	    !g->ops.write_regs || !g->ops.read_mem || !g->ops.write_mem || !g->ops.insert ||
	    !g->ops.remove || !g->ops.resume || !g->ops.stop_fd || !g->ops.get_stop ||
	    !g->ops.interrupt || !g->ops.detach)
		goto fail;
	n = kvmdbg_gdb_reg_count(g->ops.arch, &g->g_bytes);
	if (n < 0 || n > MAX_REGS || g->g_bytes > MAX_REG_BYTES)
		goto fail;
	g->nregs = (unsigned int)n;
	for (unsigned int i = 0; i < g->nregs; i++) {
		r = kvmdbg_gdb_reg_get(g->ops.arch, i, &reg);
		if (r < 0)
			goto fail;
		g->reg_size[i] = (uint16_t)reg.size;
		g->reg_off[i] = reg.offset;
	}
	r = kvmdbg_gdb_reg_lookup(g->ops.arch, g->ops.arch == KVMDBG_GDB_ARCH_X86_64 ? "rip" : "pc",
				  &reg);
	if (r < 0)
		goto fail;
	g->pc_regno = (unsigned int)r;
	/* What gdb reads at every stop: the general registers, up to x86-64's
	 * segment selectors or arm64's cpsr (pc, the frame's sp/fp/lr, the
	 * flags), and arm64's pointer-auth masks (its unwinder strips return
	 * addresses with them). The x87/SSE, FP/SIMD and system registers (on
	 * arm64 over 1 KiB of hex) come by a g when a command wants them. */
	r = kvmdbg_gdb_reg_lookup(g->ops.arch, g->ops.arch == KVMDBG_GDB_ARCH_X86_64 ? "gs" : "cpsr",
				  &reg);
	if (r < 0)
		goto fail;
	for (int i = 0; i <= r; i++)
		g->expedite[i] = true;
	for (const char *const *name = (const char *const[]){ "pauth_dmask", "pauth_cmask", NULL };
	     *name; name++)
		if ((r = kvmdbg_gdb_reg_lookup(g->ops.arch, *name, &reg)) >= 0)
			g->expedite[r] = true;
	g->xml = kvmdbg_gdb_target_xml(g->ops.arch);
	g->ctx = ctx;
	g->stats.sz = sizeof(g->stats);
	*out = g;
	return 0;
fail:
	free(g);
	return r;
}

GDB_EXPORT void kvmdbg_gdb_free(struct kvmdbg_gdb *g)
{
	free(g);
}

GDB_EXPORT int kvmdbg_gdb_stats_get(const struct kvmdbg_gdb *g,
				     struct kvmdbg_gdb_stats *stats)
{
	if (!g)
		return -EINVAL;
	return gdb_sized_out(stats, &g->stats, sizeof(g->stats));
}
