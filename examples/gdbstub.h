/* SPDX-License-Identifier: MIT */
/*
 * gdbstub: the GDB remote serial protocol, separate from any VMM.
 *
 * The stub owns one connected socket and speaks the protocol on it; it reaches
 * the machine being debugged only through struct gdbstub_ops. It knows nothing
 * of KVM or libkvmdbg: the VMM maps the callbacks onto its vCPUs and onto
 * kvmdbg_vm_insert()/kvmdbg_vm_remove(). Threads are the VMM's vCPUs, numbered
 * 0..nthreads-1 here and 1..nthreads on the wire.
 *
 * All-stop: when gdbstub_serve() calls ops->resume(), the VMM runs the vCPUs
 * asked for; the stub then polls the socket (for Ctrl-C) and ops->stop_fd()
 * (readable once every vCPU has stopped again) and asks ops->get_stop() what
 * happened.
 *
 * Every buffer is bounded: packets longer than GDBSTUB_PACKET_SIZE are
 * discarded with an error reply, bad checksums are NAKed, unknown packets get
 * the empty reply.
 */
#ifndef KVMDBG_EXAMPLES_GDBSTUB_H
#define KVMDBG_EXAMPLES_GDBSTUB_H

#include <stddef.h>
#include <stdint.h>

/* Largest packet payload accepted and sent (advertised as PacketSize). */
#define GDBSTUB_PACKET_SIZE 4096

/* What a resumed thread does (vCont actions). */
enum gdbstub_action {
	GDBSTUB_STAY = 0,   /* stays stopped */
	GDBSTUB_CONTINUE,
	GDBSTUB_STEP,
};

/* Why the machine stopped. */
enum gdbstub_stop_kind {
	GDBSTUB_STOP_SIGNAL,  /* T packet: signal, thread, reason */
	GDBSTUB_STOP_EXITED,  /* W packet: the guest finished (exit code) */
	GDBSTUB_STOP_KILLED,  /* X packet: the guest cannot go on (signal) */
};

enum gdbstub_reason {
	GDBSTUB_REASON_NONE,     /* a step, an interrupt */
	GDBSTUB_REASON_SWBREAK,
	GDBSTUB_REASON_HWBREAK,
	GDBSTUB_REASON_WATCH,    /* write watchpoint */
	GDBSTUB_REASON_RWATCH,
	GDBSTUB_REASON_AWATCH,
};

struct gdbstub_stop {
	enum gdbstub_stop_kind kind;
	int thread;                 /* 0-based */
	int signal;                 /* 5 SIGTRAP, 2 SIGINT, ... (or exit code) */
	enum gdbstub_reason reason;
	uint64_t data_addr;         /* watchpoints */
};

/* Breakpoint/watchpoint types: the numbers of Z0..Z4. */
enum gdbstub_point {
	GDBSTUB_SW_BREAK = 0,
	GDBSTUB_HW_BREAK = 1,
	GDBSTUB_WATCH_WRITE = 2,
	GDBSTUB_WATCH_READ = 3,
	GDBSTUB_WATCH_ACCESS = 4,
};

/*
 * The machine. Every callback returns 0 or a negative errno unless said
 * otherwise; the thread arguments are 0-based and always < nthreads().
 * Register and memory callbacks are only called while everything is stopped.
 */
struct gdbstub_ops {
	/* The target description (qXfer:features:read:target.xml), NUL-terminated. */
	const char *target_xml;
	/* Size in bytes of each register, in the order of the target description
	 * (the g packet's layout), and how many there are. */
	const uint16_t *reg_sizes;
	unsigned int nregs;
	unsigned int pc_regno;      /* for "c ADDR" / "s ADDR" */

	int (*nthreads)(void *ctx);
	/* Whether a thread can still run (a finished vCPU cannot). */
	int (*thread_alive)(void *ctx, int thread);
	/* All registers of a thread in target byte order (sum of reg_sizes). */
	int (*read_regs)(void *ctx, int thread, uint8_t *buf);
	/* Write them back; the VMM tells the library (kvmdbg_vcpu_regs_changed). */
	int (*write_regs)(void *ctx, int thread, const uint8_t *buf);
	/* Guest-virtual memory as the thread sees it. Returns the number of bytes
	 * done (> 0, possibly fewer than asked: stops at an unmapped page) or a
	 * negative errno when not even the first byte is accessible. */
	long (*read_mem)(void *ctx, int thread, uint64_t addr, void *buf, size_t len);
	long (*write_mem)(void *ctx, int thread, uint64_t addr, const void *buf, size_t len);
	/* Z/z: -EOPNOTSUPP makes the stub answer with the empty reply (gdb then
	 * falls back or says it cannot), any other error an E packet. thread is
	 * gdb's selected thread (Hg, else the thread of the last stop): whose
	 * address space a software breakpoint's guest-virtual address is in. */
	int (*insert)(void *ctx, int thread, enum gdbstub_point type, uint64_t addr,
		      uint64_t kind);
	int (*remove)(void *ctx, int thread, enum gdbstub_point type, uint64_t addr,
		      uint64_t kind);
	/* Resume: actions[t] for each thread. Returns at once. */
	int (*resume)(void *ctx, const enum gdbstub_action *actions);
	/* An fd that becomes readable when the machine stopped after resume(). */
	int (*stop_fd)(void *ctx);
	/* After stop_fd() turned readable: 1 and *stop filled when everything has
	 * stopped, 0 when not yet (poll again), negative errno on failure. */
	int (*get_stop)(void *ctx, struct gdbstub_stop *stop);
	/* Ctrl-C: stop every running thread (get_stop() then reports SIGINT). */
	void (*interrupt)(void *ctx);
	/* D: remove every breakpoint and watchpoint; the VMM resumes after
	 * gdbstub_serve() returned GDBSTUB_DETACHED. */
	void (*detach)(void *ctx);
};

/* How a session ended. */
enum gdbstub_end {
	GDBSTUB_DETACHED,      /* D: let the guest run on */
	GDBSTUB_KILLED,        /* k or vKill */
	GDBSTUB_DISCONNECTED,  /* the client went away without D or k */
	GDBSTUB_GUEST_EXITED,  /* the guest finished and the client was told (W) */
	GDBSTUB_ERROR,         /* the socket or a callback failed */
};

/*
 * Serve one client on fd (a connected socket, or a serial line or virtio
 * port opened read-write) until it detaches, kills, goes
 * away, or the guest ends. The machine starts stopped. Sets *packets to the
 * number of packets received (0: the client never spoke), when not NULL.
 */
enum gdbstub_end gdbstub_serve(int fd, const struct gdbstub_ops *ops, void *ctx,
			       unsigned long *packets);

/* Target descriptions of gdbstub-tdesc.c: x86-64 (16 GPRs, rip, eflags, 6
 * selectors, x87, SSE, fs_base/gs_base, cr0/cr2/cr3/cr4/efer) and aarch64
 * (x0-x30, sp, pc, cpsr). */
extern const char gdbstub_tdesc_x86_64[];
extern const char gdbstub_tdesc_aarch64[];

/* Listen on "HOST:PORT", "PORT" or ":PORT" (HOST defaults to 127.0.0.1; a
 * numeric IPv4 or IPv6 address, or "localhost": nothing is resolved).
 * Returns the listening fd or -1 with a message in err (errlen bytes). */
int gdbstub_listen(const char *spec, char *err, size_t errlen);

#endif /* KVMDBG_EXAMPLES_GDBSTUB_H */
