/* SPDX-License-Identifier: MIT */
/*
 * gdbstub: the GDB remote serial protocol over one connection (a socket, a
 * serial line or a virtio port), for kvmdbg-run.
 * See gdbstub.h. No KVM and no libkvmdbg here: only struct gdbstub_ops.
 */
#include "gdbstub.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_REG_BYTES 2048

struct stub {
	int fd;
	const struct gdbstub_ops *ops;
	void *ctx;
	bool is_sock;              /* fd is a socket (else a tty or virtio port) */
	bool noack;
	bool eof;
	int g_thread;              /* Hg: registers and memory */
	int c_thread;              /* Hc: s and c (-1: all) */
	unsigned long packets;
	/* input buffer */
	unsigned char in[4096];
	size_t in_len, in_pos;
	/* packet being received (raw, still escaped) */
	char pkt[GDBSTUB_PACKET_SIZE + 1];
	size_t pkt_len;
	/* reply being built (payload only) */
	char out[GDBSTUB_PACKET_SIZE + 1];
	size_t out_len;
	bool out_overflow;
	/* the last frame sent, for '-' retransmission */
	char last[GDBSTUB_PACKET_SIZE + 8];
	size_t last_len;
	uint8_t regs[MAX_REG_BYTES];
};

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

/* ---- I/O: a socket or a character device --------------------------------------------------------- */

static bool write_all(struct stub *s, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		/* send() on a socket (no SIGPIPE), write() on a serial line or
		 * virtio port (--gdb DEVICE) */
		ssize_t n = s->is_sock ? send(s->fd, p, len, MSG_NOSIGNAL) : write(s->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			s->eof = true;
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
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
	n = read(s->fd, s->in, sizeof(s->in));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		s->eof = true;
		return -1;
	}
	s->in_len = (size_t)n;
	s->in_pos = 0;
	return 1;
}

static int getbyte(struct stub *s)
{
	int r;

	while ((r = fill(s, -1)) == 0)
		;
	if (r < 0)
		return -1;
	return s->in[s->in_pos++];
}

/* ---- replies ------------------------------------------------------------ */

static void out_reset(struct stub *s)
{
	s->out_len = 0;
	s->out_overflow = false;
}

static void out_char(struct stub *s, char c)
{
	if (s->out_len >= GDBSTUB_PACKET_SIZE) {
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

enum rx { RX_OK, RX_EOF, RX_TOO_LONG, RX_INTERRUPT };

/* Receive one packet into s->pkt (NUL-terminated, escapes kept). */
static enum rx read_packet(struct stub *s)
{
	for (;;) {
		bool too_long = false;
		uint8_t sum = 0;
		int c, h, l;

		c = getbyte(s);
		if (c < 0)
			return RX_EOF;
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
				return RX_EOF;
			if (c == '#')
				break;
			if (c == '$')
				goto restart; /* a new packet start: resynchronise */
			sum = (uint8_t)(sum + c);
			if (s->pkt_len < GDBSTUB_PACKET_SIZE)
				s->pkt[s->pkt_len++] = (char)c;
			else
				too_long = true;
		}
		s->pkt[s->pkt_len] = '\0';
		h = getbyte(s);
		l = h < 0 ? -1 : getbyte(s);
		if (l < 0)
			return RX_EOF;
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

static size_t regs_total(const struct gdbstub_ops *ops)
{
	size_t n = 0;

	for (unsigned int i = 0; i < ops->nregs; i++)
		n += ops->reg_sizes[i];
	return n;
}

static size_t reg_offset(const struct gdbstub_ops *ops, unsigned int regno)
{
	size_t n = 0;

	for (unsigned int i = 0; i < regno; i++)
		n += ops->reg_sizes[i];
	return n;
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
	size_t n = regs_total(s->ops);
	int r = s->ops->read_regs(s->ctx, cur_thread(s), s->regs);

	if (r < 0)
		return reply_errno(s, r);
	out_reset(s);
	out_hex(s, s->regs, n);
	return send_reply(s);
}

static bool handle_G(struct stub *s, const char *p)
{
	size_t n = regs_total(s->ops), len = strlen(p);
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

	if (!parse_hex(&p, &regno) || regno >= s->ops->nregs || (write && *p != '=') ||
	    (!write && *p))
		return reply(s, "E16");
	off = reg_offset(s->ops, (unsigned int)regno);
	size = s->ops->reg_sizes[regno];
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
	uint8_t buf[(GDBSTUB_PACKET_SIZE - 1) / 2];
	uint64_t addr, len;
	long n;

	if (!parse_addr_len(&p, &addr, &len, 0))
		return reply(s, "E16");
	if (len == 0)
		return reply(s, "");
	if (len > sizeof(buf))
		len = sizeof(buf); /* a short read is allowed */
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
	uint8_t buf[GDBSTUB_PACKET_SIZE / 2];
	uint64_t addr, len;

	if (!parse_addr_len(&p, &addr, &len, ':') || len > sizeof(buf) ||
	    strlen(p) != 2 * len || !unhex(p, 2 * len, buf))
		return reply(s, "E16");
	if (len == 0)
		return reply(s, "OK");
	return write_mem_all(s, addr, buf, (size_t)len);
}

static bool handle_X(struct stub *s, const char *p)
{
	uint8_t buf[GDBSTUB_PACKET_SIZE];
	const char *end = s->pkt + s->pkt_len;
	uint64_t addr, len;
	size_t n = 0;

	if (!parse_addr_len(&p, &addr, &len, ':') || len > sizeof(buf))
		return reply(s, "E16");
	while (p < end) {
		char c = *p++;

		if (c == '}') {
			if (p == end)
				return reply(s, "E16");
			c = (char)(*p++ ^ 0x20);
		}
		if (n == sizeof(buf))
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
	r = insert ? s->ops->insert(s->ctx, cur_thread(s), (enum gdbstub_point)type, addr, kind)
		   : s->ops->remove(s->ctx, cur_thread(s), (enum gdbstub_point)type, addr, kind);
	if (r == -EOPNOTSUPP)
		return reply(s, "");
	return r < 0 ? reply_errno(s, r) : reply(s, "OK");
}

static void out_stop(struct stub *s, const struct gdbstub_stop *st)
{
	out_reset(s);
	switch (st->kind) {
	case GDBSTUB_STOP_EXITED:
		out_fmt(s, "W%02x", st->signal & 0xff);
		return;
	case GDBSTUB_STOP_KILLED:
		out_fmt(s, "X%02x", st->signal & 0xff);
		return;
	case GDBSTUB_STOP_SIGNAL:
		break;
	}
	out_fmt(s, "T%02x", st->signal & 0xff);
	switch (st->reason) {
	case GDBSTUB_REASON_SWBREAK:
		out_str(s, "swbreak:;");
		break;
	case GDBSTUB_REASON_HWBREAK:
		out_str(s, "hwbreak:;");
		break;
	case GDBSTUB_REASON_WATCH:
		out_fmt(s, "watch:%" PRIx64 ";", st->data_addr);
		break;
	case GDBSTUB_REASON_RWATCH:
		out_fmt(s, "rwatch:%" PRIx64 ";", st->data_addr);
		break;
	case GDBSTUB_REASON_AWATCH:
		out_fmt(s, "awatch:%" PRIx64 ";", st->data_addr);
		break;
	case GDBSTUB_REASON_NONE:
		break;
	}
	out_fmt(s, "thread:%x;", st->thread + 1);
}

/* Resume and wait for the stop; Ctrl-C interrupts. Returns the end state or -1 to go on. */
static int resume_and_wait(struct stub *s, const enum gdbstub_action *actions)
{
	struct gdbstub_stop st;
	int r, sfd;
	bool interrupted = false;

	r = s->ops->resume(s->ctx, actions);
	if (r < 0) {
		reply_errno(s, r);
		return -1;
	}
	sfd = s->ops->stop_fd(s->ctx);
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = s->fd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
		};

		r = s->ops->get_stop(s->ctx, &st);
		if (r < 0) {
			reply_errno(s, r);
			return GDBSTUB_ERROR;
		}
		if (r > 0)
			break;
		/* Bytes the client sent while running: ^C interrupts, the rest waits. */
		if (s->in_pos < s->in_len || (!s->eof && !interrupted)) {
			if (poll(pfd, 2, -1) < 0 && errno != EINTR)
				return GDBSTUB_ERROR;
		} else {
			if (poll(&pfd[1], 1, -1) < 0 && errno != EINTR)
				return GDBSTUB_ERROR;
			pfd[0].revents = 0;
		}
		if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && !interrupted) {
			int fr = fill(s, 0);

			if (fr < 0) { /* the client went away while running: stop */
				s->ops->interrupt(s->ctx);
				interrupted = true;
				continue;
			}
			/* Ctrl-C is only looked for at the head; anything else stays queued. */
			while (s->in_pos < s->in_len && s->in[s->in_pos] != 0x03 &&
			       s->in[s->in_pos] != '$')
				s->in_pos++; /* stray acks */
			if (s->in_pos < s->in_len && s->in[s->in_pos] == 0x03) {
				s->in_pos++;
				s->ops->interrupt(s->ctx);
				interrupted = true;
			}
		}
	}
	if (st.kind == GDBSTUB_STOP_SIGNAL && st.thread >= 0)
		s->g_thread = st.thread;
	out_stop(s, &st);
	send_reply(s);
	return st.kind == GDBSTUB_STOP_SIGNAL ? -1 : GDBSTUB_GUEST_EXITED;
}

static int nthreads(struct stub *s)
{
	int n = s->ops->nthreads(s->ctx);

	return n > MAX_THREADS ? MAX_THREADS : n;
}

/* c/s [ADDR]: set the pc first when given. */
static int handle_cs(struct stub *s, const char *p, bool step)
{
	enum gdbstub_action act[MAX_THREADS];
	int n = nthreads(s), t;

	if (*p) {
		uint64_t addr;
		unsigned int pc = s->ops->pc_regno;
		size_t off = reg_offset(s->ops, pc), size = s->ops->reg_sizes[pc];
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
		act[i] = step ? (i == t ? GDBSTUB_STEP : GDBSTUB_STAY) : GDBSTUB_CONTINUE;
	return resume_and_wait(s, act);
}

/* vCont;ACTION[:TID]...: the leftmost action that names a thread wins. */
static int handle_vcont(struct stub *s, const char *p)
{
	enum gdbstub_action act[MAX_THREADS];
	bool set[MAX_THREADS] = { false };
	int n = nthreads(s);
	bool any = false;

	for (int i = 0; i < n; i++)
		act[i] = GDBSTUB_STAY;
	while (*p == ';') {
		enum gdbstub_action a;
		int t = -2;

		p++;
		switch (*p) {
		case 'c':
			a = GDBSTUB_CONTINUE;
			p++;
			break;
		case 's':
			a = GDBSTUB_STEP;
			p++;
			break;
		case 'C':
		case 'S': { /* with a signal: the signal is ignored (no guest signals) */
			uint64_t sig;

			a = *p == 'C' ? GDBSTUB_CONTINUE : GDBSTUB_STEP;
			p++;
			if (!parse_hex(&p, &sig)) {
				reply(s, "E16");
				return -1;
			}
			break;
		}
		case 't': /* stop: all-stop threads are stopped already */
			a = GDBSTUB_STAY;
			p++;
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
		for (int i = 0; i < n; i++) {
			if ((t == -2 || t == i) && !set[i]) {
				set[i] = true;
				act[i] = a;
				any |= a != GDBSTUB_STAY;
			}
		}
	}
	if (*p || !any) {
		reply(s, "E16");
		return -1;
	}
	return resume_and_wait(s, act);
}

static bool handle_xfer(struct stub *s, const char *p)
{
	const char *xml = s->ops->target_xml;
	size_t total = strlen(xml);
	uint64_t off, len;

	if (strncmp(p, "target.xml:", 11) != 0)
		return reply(s, "E00");
	p += 11;
	if (!parse_addr_len(&p, &off, &len, 0))
		return reply(s, "E16");
	if (off > total)
		return reply(s, "E16");
	if (len > (GDBSTUB_PACKET_SIZE - 1) / 2)
		len = (GDBSTUB_PACKET_SIZE - 1) / 2; /* room for escapes */
	out_reset(s);
	if (total - off <= len) {
		out_char(s, 'l');
		out_bin(s, xml + off, total - off);
	} else {
		out_char(s, 'm');
		out_bin(s, xml + off, (size_t)len);
	}
	return send_reply(s);
}

static bool handle_q(struct stub *s, const char *p)
{
	if (strncmp(p, "qSupported", 10) == 0) {
		out_reset(s);
		out_fmt(s, "PacketSize=%x;qXfer:features:read+;swbreak+;hwbreak+;"
			"vContSupported+;QStartNoAckMode+", GDBSTUB_PACKET_SIZE);
		return send_reply(s);
	}
	if (strncmp(p, "qXfer:features:read:", 20) == 0)
		return handle_xfer(s, p + 20);
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
		struct gdbstub_stop st = { .kind = GDBSTUB_STOP_SIGNAL, .signal = 5,
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
			reply(s, "vCont;c;C;s;S;t");
			return -1;
		}
		if (strncmp(p, "vCont;", 6) == 0)
			return handle_vcont(s, p + 5);
		if (strncmp(p, "vKill", 5) == 0) {
			reply(s, "OK");
			return GDBSTUB_KILLED;
		}
		reply(s, ""); /* vMustReplyEmpty, vFile, vRun, ... */
		return -1;
	case 'k':
		return GDBSTUB_KILLED; /* no reply */
	case 'D':
		s->ops->detach(s->ctx);
		reply(s, "OK");
		return GDBSTUB_DETACHED;
	default:
		reply(s, "");
		return -1;
	}
}

enum gdbstub_end gdbstub_serve(int fd, const struct gdbstub_ops *ops, void *ctx,
			       unsigned long *packets)
{
	struct stub *s = calloc(1, sizeof(*s));
	struct stat st;
	int end = -1;

	if (!s)
		return GDBSTUB_ERROR;
	s->fd = fd;
	s->is_sock = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
	s->ops = ops;
	s->ctx = ctx;
	s->g_thread = 0;
	s->c_thread = -1;
	if (regs_total(ops) > MAX_REG_BYTES) {
		free(s);
		return GDBSTUB_ERROR;
	}
	while (end < 0) {
		switch (read_packet(s)) {
		case RX_EOF:
			end = GDBSTUB_DISCONNECTED;
			break;
		case RX_TOO_LONG:
			reply(s, "E01");
			break;
		case RX_INTERRUPT: /* ^C while stopped: say where we are */
			break;
		case RX_OK:
			end = dispatch(s);
			if (s->eof && end < 0)
				end = GDBSTUB_DISCONNECTED;
			break;
		}
	}
	if (packets)
		*packets = s->packets;
	free(s);
	return (enum gdbstub_end)end;
}

int gdbstub_listen(const char *spec, char *errbuf, size_t errlen)
{
	char host[64] = "127.0.0.1";
	const char *colon = strrchr(spec, ':'), *port = spec;
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} addr;
	socklen_t alen;
	char *end;
	long pn;
	int fd, one = 1;

	if (colon) {
		size_t hl = (size_t)(colon - spec);

		if (hl >= sizeof(host)) {
			snprintf(errbuf, errlen, "'%s': address too long", spec);
			return -1;
		}
		if (hl) {
			memcpy(host, spec, hl);
			host[hl] = '\0';
			if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
				memmove(host, host + 1, hl - 2);
				host[hl - 2] = '\0';
			}
		}
		port = colon + 1;
	}
	errno = 0;
	pn = strtol(port, &end, 10);
	if (!*port || *end || errno || pn < 0 || pn > 65535) {
		snprintf(errbuf, errlen, "'%s': expected HOST:PORT or PORT (0-65535)", spec);
		return -1;
	}
	/* Numeric addresses only (and "localhost"): no resolver, so the static
	 * build for the VM test beds needs no NSS at run time. */
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	memset(&addr, 0, sizeof(addr));
	if (inet_pton(AF_INET, host, &addr.in4.sin_addr) == 1) {
		addr.in4.sin_family = AF_INET;
		addr.in4.sin_port = htons((uint16_t)pn);
		alen = sizeof(addr.in4);
	} else if (inet_pton(AF_INET6, host, &addr.in6.sin6_addr) == 1) {
		addr.in6.sin6_family = AF_INET6;
		addr.in6.sin6_port = htons((uint16_t)pn);
		alen = sizeof(addr.in6);
	} else {
		snprintf(errbuf, errlen, "'%s': not a numeric IPv4 or IPv6 address (or localhost)",
			 host);
		return -1;
	}
	fd = socket(addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(errbuf, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, &addr.sa, alen) || listen(fd, 1)) {
		snprintf(errbuf, errlen, "cannot listen on %s:%s: %s", host, port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}
