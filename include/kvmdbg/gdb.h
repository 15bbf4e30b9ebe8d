/* SPDX-License-Identifier: MIT */
/**
 * @file gdb.h
 * @brief libkvmdbg-gdb: a GDB remote serial protocol server for a VMM.
 *
 * Link with `pkg-config --cflags --libs kvmdbg-gdb`. The library speaks the
 * protocol on one connection (a socket, a serial line or a virtio port:
 * any file descriptor) and reaches the machine only through the callbacks
 * of struct kvmdbg_gdb_ops: it has no KVM or libkvmdbg state of its own.
 * The registers' layout (the target description gdb reads and the layout of
 * the `g` packet) is the library's, per architecture, from one table: a VMM
 * finds where each register goes with kvmdbg_gdb_reg_lookup().
 *
 * Threads are the VMM's vCPUs, numbered 0..nthreads-1 in the callbacks and
 * 1..nthreads on the wire. All-stop: when kvmdbg_gdb_serve() calls
 * kvmdbg_gdb_ops::resume, the VMM runs the vCPUs asked for; the library then
 * waits for the connection (Ctrl-C, a client that goes away) and for
 * kvmdbg_gdb_ops::stop_fd (readable once every vCPU has stopped again) and
 * asks kvmdbg_gdb_ops::get_stop what happened.
 *
 * Conventions, as in <kvmdbg/kvmdbg.h>: functions are
 * `kvmdbg_gdb_<verb>` or `kvmdbg_gdb_<object>_<verb>`, return 0 (or a
 * non-negative value) or a negative errno; option, result and callback
 * structs start with `size_t sz` (KVMDBG_OPTS() sets it), and unknown
 * non-zero trailing bytes from a newer caller are refused with -E2BIG.
 *
 * Protocol: qSupported with PacketSize 0x4000, no-ack mode, binary X, vCont
 * (c, C, s, S, t and r: range stepping), qXfer:features (target.xml) and
 * qXfer:threads, qOffsets, monitor commands (qRcmd: `info version` built in,
 * the VMM's through kvmdbg_gdb_ops::monitor); stop replies (swbreak,
 * hwbreak, watch/rwatch/awatch:ADDR) expedite the general registers of the
 * stopped thread (x86-64: rax..gs; aarch64: x0..cpsr), so gdb needs no `g`
 * after a stop; the others come by `g` when a command wants them. Ctrl-C and a client that goes
 * away are noticed at any moment, also while the machine runs with packets
 * queued; serve options bound how long a new client may stay silent.
 *
 * Every buffer is bounded: packets longer than KVMDBG_GDB_PACKET_SIZE are
 * discarded with an error reply, bad checksums are NAKed, unknown packets get
 * the empty reply.
 */
#ifndef KVMDBG_GDB_H
#define KVMDBG_GDB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Largest packet payload accepted and sent (advertised as PacketSize). */
#define KVMDBG_GDB_PACKET_SIZE 16384

#ifndef KVMDBG_OPTS
/** Declare a sized struct with its sz set, as in <kvmdbg/kvmdbg.h>:
 * `KVMDBG_OPTS(kvmdbg_gdb_serve_opts, o, .handshake_ms = 5000);` */
#define KVMDBG_OPTS(TYPE, NAME, ...) struct TYPE NAME = {.sz = sizeof(struct TYPE), __VA_ARGS__}
#endif

/** @defgroup gdb_regs Register layouts
 * @{ */

/** The architecture whose register layout and target description are served. */
enum kvmdbg_gdb_arch {
	KVMDBG_GDB_ARCH_X86_64 = 1,  /**< i386:x86-64 */
	KVMDBG_GDB_ARCH_AARCH64 = 2, /**< aarch64 */
};

/** One register of a layout: where it is in the `g` packet. */
struct kvmdbg_gdb_reg {
	size_t sz;           /**< sizeof(struct kvmdbg_gdb_reg), set by the caller */
	const char *name;    /**< gdb's name ("rip", "x0", ...) */
	unsigned int regno;  /**< its number (gdb's `p`/`P` packets) */
	unsigned int offset; /**< byte offset in the `g` packet's data */
	unsigned int size;   /**< size in bytes (little-endian) */
};

/**
 * Look a register up by name.
 * @param arch the layout
 * @param name gdb's register name
 * @param reg filled (its sz set by the caller)
 * @return its register number (>= 0), -ENOENT when the layout has no such
 *	   register, -EINVAL for an unknown arch or a bad argument
 */
int kvmdbg_gdb_reg_lookup(enum kvmdbg_gdb_arch arch, const char *name, struct kvmdbg_gdb_reg *reg);

/**
 * Describe register number @p regno of a layout.
 * @param arch the layout
 * @param regno 0 .. kvmdbg_gdb_reg_count() - 1
 * @param reg filled (its sz set by the caller)
 * @return 0, or -ENOENT past the last register, -EINVAL for a bad argument
 */
int kvmdbg_gdb_reg_get(enum kvmdbg_gdb_arch arch, unsigned int regno, struct kvmdbg_gdb_reg *reg);

/**
 * The number of registers of a layout.
 * @param arch the layout
 * @param g_bytes set to the size of all of them (the `g` packet's data), when not NULL
 * @return the count (> 0), or -EINVAL for an unknown arch
 */
int kvmdbg_gdb_reg_count(enum kvmdbg_gdb_arch arch, size_t *g_bytes);

/**
 * The target description (qXfer:features:read:target.xml) of a layout,
 * made from the same table as the `g` layout.
 * @param arch the layout
 * @return a NUL-terminated static string, or NULL for an unknown arch
 */
const char *kvmdbg_gdb_target_xml(enum kvmdbg_gdb_arch arch);

/** @} */

/** @defgroup gdb_mmu Guest page walks
 *
 * kvmdbg_gdb_translate() walks a stopped vCPU's own page tables, read from
 * guest-physical memory through the VMM's callback, the way the vCPU's MMU
 * would: for a `read_mem`/`write_mem` callback and for placing software
 * breakpoints. Access permissions, the access flag (arm64 AF, x86 A/D) and
 * the TLBs play no part: what the tables map is what it returns.
 *
 * x86-64, by CR0.PG, CR4.PAE, EFER.LMA and CR4.LA57: no paging (real mode
 * and protected mode without paging: linear = physical, 32-bit linear
 * addresses); 32-bit paging (4 KiB pages, 4 MiB pages with CR4.PSE, PSE-36
 * addresses); PAE (4 KiB, 2 MiB; the PDPTEs read from memory at CR3, not
 * from the processor's PDPTE registers); 4-level (4 KiB, 2 MiB, 1 GiB) and
 * 5-level paging, with the canonical address check of each.
 *
 * arm64 (the EL1&0 regime): SCTLR_EL1.M clear: identity (52-bit physical
 * addresses). Otherwise VA bit 55 selects TTBR0_EL1 or TTBR1_EL1 with its
 * half of TCR_EL1 (TG0/TG1: 4, 16 or 64 KiB granule, T0SZ/T1SZ, EPD0/EPD1,
 * TBI0/TBI1: the bits above the region must all equal bit 55, the top byte
 * excepted under TBI); the walk starts at the level T0SZ/T1SZ gives (level
 * -1 for 4 KiB with 52-bit VAs) and takes block descriptors where the
 * granule allows them (4 KiB: levels 1 and 2, level 0 with TCR.DS; 16 KiB:
 * level 2, level 1 with TCR.DS; 64 KiB: level 2, level 1 with 52-bit output
 * addresses). Output addresses: 48-bit; 52-bit with TCR.DS (FEAT_LPA2, 4 and
 * 16 KiB: OA[51:50] in descriptor bits [9:8]) and with the 64 KiB granule
 * and TCR.IPS = 52 bits (FEAT_LPA: OA[51:48] in bits [15:12]), the TTBRs
 * then holding BADDR[51:48] in bits [5:2]. TCR.IPS bounds every table and
 * output address.
 * @{ */

/**
 * A vCPU's paging state, as the VMM reads it from the stopped vCPU.
 * Only the fields of @ref arch are looked at.
 */
struct kvmdbg_gdb_mmu {
	size_t sz;                 /**< sizeof(struct kvmdbg_gdb_mmu), set by the caller */
	enum kvmdbg_gdb_arch arch; /**< which registers below describe the vCPU */
	uint64_t cr0;              /**< x86-64: `struct kvm_sregs` cr0 (KVM_GET_SREGS) */
	uint64_t cr3;              /**< x86-64: kvm_sregs cr3 */
	uint64_t cr4;              /**< x86-64: kvm_sregs cr4 */
	uint64_t efer;             /**< x86-64: kvm_sregs efer (LMA, bit 10, says long mode) */
	/** arm64: KVM_GET_ONE_REG of ARM64_SYS_REG(3, 0, 1, 0, 0) (SCTLR_EL1) */
	uint64_t sctlr_el1;
	/** arm64: ARM64_SYS_REG(3, 0, 2, 0, 2) (TCR_EL1) */
	uint64_t tcr_el1;
	/** arm64: ARM64_SYS_REG(3, 0, 2, 0, 0) (TTBR0_EL1) */
	uint64_t ttbr0_el1;
	/** arm64: ARM64_SYS_REG(3, 0, 2, 0, 1) (TTBR1_EL1) */
	uint64_t ttbr1_el1;
};

/**
 * Read guest-physical memory for kvmdbg_gdb_translate(): the page-table
 * entries (4 or 8 bytes, little-endian, naturally aligned).
 * @param ctx the caller's context
 * @param gpa the guest-physical address
 * @param buf where to put the bytes
 * @param len how many
 * @return 0 when all len bytes were read, or a negative errno (the VMM's
 *	   choice, e.g. -EFAULT outside guest memory), which the walk returns
 */
typedef int (*kvmdbg_gdb_phys_read_fn)(void *ctx, uint64_t gpa, void *buf, size_t len);

/**
 * Translate a guest-virtual address through a vCPU's page tables.
 * @param mmu the vCPU's paging state (its sz set)
 * @param gva the guest-virtual address (x86: the linear address)
 * @param read reads the tables from guest-physical memory
 * @param ctx passed to @p read
 * @param gpa set to the guest-physical address on success
 * @param contiguous when not NULL, set on success to the number of bytes
 *	  from @p gva that the same page or block maps contiguously (at least
 *	  1; with no paging, up to the end of the address space: 4 GiB on
 *	  x86, 2^52 on arm64 with the MMU off)
 * @return 0 on success; -EFAULT when @p gva is not mapped (a not-present or
 *	   invalid entry, a reserved block size, a non-canonical or out-of-range
 *	   address, a walk disabled by EPD0/EPD1, a table or output address beyond
 *	   TCR.IPS); -EINVAL for a bad argument or a paging state no processor
 *	   walks with (an unknown arch, a reserved TG0/TG1 or IPS, T0SZ/T1SZ out
 *	   of range for the granule); -E2BIG when @p mmu has unknown non-zero
 *	   trailing fields (a newer caller); or the error of @p read. @p gpa
 *	   and @p contiguous are left alone on failure.
 */
int kvmdbg_gdb_translate(const struct kvmdbg_gdb_mmu *mmu, uint64_t gva,
			 kvmdbg_gdb_phys_read_fn read, void *ctx, uint64_t *gpa,
			 uint64_t *contiguous);

/** @} */

/** @defgroup gdb_target The machine: callbacks the VMM supplies
 * @{ */

/** What a resumed thread does (vCont actions). */
enum kvmdbg_gdb_action {
	KVMDBG_GDB_STAY = 0,     /**< stays stopped */
	KVMDBG_GDB_CONTINUE = 1, /**< runs */
	KVMDBG_GDB_STEP = 2,     /**< runs one instruction */
};

/** Why the machine stopped. */
enum kvmdbg_gdb_stop_kind {
	KVMDBG_GDB_STOP_SIGNAL = 0, /**< T packet: signal, thread, reason */
	KVMDBG_GDB_STOP_EXITED = 1, /**< W packet: the guest finished (exit code) */
	KVMDBG_GDB_STOP_KILLED = 2, /**< X packet: the guest cannot go on (signal) */
};

/** The stop reason of a T packet. */
enum kvmdbg_gdb_reason {
	KVMDBG_GDB_REASON_NONE = 0, /**< a step, an interrupt */
	KVMDBG_GDB_REASON_SWBREAK,  /**< a software breakpoint (swbreak) */
	KVMDBG_GDB_REASON_HWBREAK,  /**< a hardware breakpoint (hwbreak) */
	KVMDBG_GDB_REASON_WATCH,    /**< a write watchpoint (watch:ADDR) */
	KVMDBG_GDB_REASON_RWATCH,   /**< a read watchpoint (rwatch:ADDR) */
	KVMDBG_GDB_REASON_AWATCH,   /**< an access watchpoint (awatch:ADDR) */
};

/** A stop, filled by kvmdbg_gdb_ops::get_stop. */
struct kvmdbg_gdb_stop {
	size_t sz;                      /**< set by the library before the call */
	enum kvmdbg_gdb_stop_kind kind; /**< T, W or X */
	int thread;                     /**< the stopped thread, 0-based */
	int signal;                     /**< 5 SIGTRAP, 2 SIGINT, ... (W: the exit code) */
	enum kvmdbg_gdb_reason reason;  /**< T: why */
	uint64_t data_addr;             /**< watchpoints: the address accessed */
};

/** Breakpoint and watchpoint types: the numbers of Z0..Z4. */
enum kvmdbg_gdb_point {
	KVMDBG_GDB_SW_BREAK = 0,     /**< Z0 */
	KVMDBG_GDB_HW_BREAK = 1,     /**< Z1 */
	KVMDBG_GDB_WATCH_WRITE = 2,  /**< Z2 */
	KVMDBG_GDB_WATCH_READ = 3,   /**< Z3 */
	KVMDBG_GDB_WATCH_ACCESS = 4, /**< Z4 */
};

/**
 * The machine. Every callback returns 0 or a negative errno unless said
 * otherwise; the thread arguments are 0-based and always < nthreads().
 * Register and memory callbacks are only called while everything is stopped.
 * All callbacks are required but monitor.
 */
struct kvmdbg_gdb_ops {
	size_t sz;                  /**< sizeof(struct kvmdbg_gdb_ops) */
	enum kvmdbg_gdb_arch arch;  /**< the register layout (kvmdbg_gdb_reg_lookup()) */

	/** The number of threads (vCPUs), at most 64. */
	int (*nthreads)(void *ctx);
	/** Whether a thread can still run (1) or has finished (0). */
	int (*thread_alive)(void *ctx, int thread);
	/** All registers of a thread, in the arch's `g` layout (kvmdbg_gdb_reg_count() bytes). */
	int (*read_regs)(void *ctx, int thread, uint8_t *buf);
	/** Write them all back (the VMM tells libkvmdbg: kvmdbg_vcpu_regs_changed()). */
	int (*write_regs)(void *ctx, int thread, const uint8_t *buf);
	/** Guest-virtual memory as the thread sees it: the number of bytes done
	 * (> 0, possibly fewer than asked: stops at an unmapped page) or a
	 * negative errno when not even the first byte is accessible. */
	long (*read_mem)(void *ctx, int thread, uint64_t addr, void *buf, size_t len);
	/** Write guest-virtual memory; returns as read_mem. */
	long (*write_mem)(void *ctx, int thread, uint64_t addr, const void *buf, size_t len);
	/** Z: insert a point. Any error is an E packet (gdb says it cannot
	 * insert it; the empty reply, which would make gdb write a software
	 * breakpoint itself, is never sent for Z0..Z4). thread is gdb's
	 * selected thread (Hg, else the thread of the last stop): whose address
	 * space a software breakpoint is in. */
	int (*insert)(void *ctx, int thread, enum kvmdbg_gdb_point type, uint64_t addr,
		      uint64_t kind);
	/** z: remove a point; errors as insert. */
	int (*remove)(void *ctx, int thread, enum kvmdbg_gdb_point type, uint64_t addr,
		      uint64_t kind);
	/** Resume: actions[t] for each thread. Returns at once. */
	int (*resume)(void *ctx, const enum kvmdbg_gdb_action *actions);
	/** An fd that becomes readable when the machine may have stopped after resume(). */
	int (*stop_fd)(void *ctx);
	/** 1 and *stop filled when everything has stopped, 0 when not yet
	 * (the library polls stop_fd again), a negative errno on failure. */
	int (*get_stop)(void *ctx, struct kvmdbg_gdb_stop *stop);
	/** Ctrl-C or a lost client: stop every running thread (get_stop()
	 * then reports it, normally with signal 2). */
	void (*interrupt)(void *ctx);
	/** D: remove every breakpoint and watchpoint; the VMM resumes after
	 * kvmdbg_gdb_serve() returned KVMDBG_GDB_DETACHED. */
	void (*detach)(void *ctx);
	/** Optional (NULL: none): `monitor CMD` beyond the built-in
	 * `monitor info version`. Write the text to show into out (outlen
	 * bytes, NUL-terminated) and return its length, or -ENOENT for a
	 * command the VMM does not have, or another negative errno (an E reply). */
	int (*monitor)(void *ctx, const char *cmd, char *out, size_t outlen);
};

/** @} */

/** @defgroup gdb_server The server
 * @{ */

/** A server: the ops, the VMM's context and the state that outlives one connection. */
struct kvmdbg_gdb;

/**
 * Make a server for a machine.
 * @param ops the callbacks (copied; sz set)
 * @param ctx passed to every callback
 * @param out set to the new server
 * @return 0, -EINVAL (a missing callback, an unknown arch, bad sz), -E2BIG
 *	   (a newer caller's unknown fields set), -ENOMEM
 */
int kvmdbg_gdb_new(const struct kvmdbg_gdb_ops *ops, void *ctx, struct kvmdbg_gdb **out);

/**
 * Free a server (not while kvmdbg_gdb_serve() runs). NULL is a no-op.
 * @param g the server
 */
void kvmdbg_gdb_free(struct kvmdbg_gdb *g);

/** How a session ended: kvmdbg_gdb_serve()'s non-negative results (and
 * the incremental API's, which also says that it has not). */
enum kvmdbg_gdb_end {
	KVMDBG_GDB_DETACHED = 0,     /**< D: let the guest run on */
	KVMDBG_GDB_KILLED = 1,       /**< k or vKill */
	KVMDBG_GDB_DISCONNECTED = 2, /**< the client went away without D or k */
	KVMDBG_GDB_GUEST_EXITED = 3, /**< the guest finished and the client was told (W or X) */
	KVMDBG_GDB_SILENT = 4,       /**< no packet within serve_opts.handshake_ms */
	KVMDBG_GDB_ACTIVE = 5,       /**< incremental API: the session goes on */
};

/** Options of kvmdbg_gdb_serve(). */
struct kvmdbg_gdb_serve_opts {
	size_t sz;             /**< sizeof(struct kvmdbg_gdb_serve_opts) */
	/** Give up on a client that sends no packet within this many
	 * milliseconds of the start (a port probe, a stuck peer):
	 * KVMDBG_GDB_SILENT. 0: wait for ever. */
	int handshake_ms;
};

/**
 * Serve one client on fd (a connected socket, a serial line or a virtio
 * port opened read-write) until it detaches, kills, goes away, or the guest
 * ends. The machine starts stopped and is stopped when this returns (but
 * after KVMDBG_GDB_DETACHED, where the points are removed and the VMM lets
 * it run). The fd is not closed.
 * @param g the server
 * @param fd the connection
 * @param opts options, or NULL for the defaults
 * @return an enum kvmdbg_gdb_end (>= 0), or a negative errno: the connection
 *	   or a callback failed (-EIO), bad options (-EINVAL, -E2BIG)
 */
int kvmdbg_gdb_serve(struct kvmdbg_gdb *g, int fd, const struct kvmdbg_gdb_serve_opts *opts);

/** Counters of a server, over every session it served. */
struct kvmdbg_gdb_stats {
	size_t sz;                 /**< sizeof(struct kvmdbg_gdb_stats), set by the caller */
	uint64_t packets_in;       /**< packets received with a good checksum */
	uint64_t packets_out;      /**< packets sent (retransmissions not counted) */
	uint64_t bytes_in;         /**< bytes read from the connection */
	uint64_t bytes_out;        /**< bytes written to it */
	uint64_t sessions;         /**< kvmdbg_gdb_serve() calls */
	uint64_t range_steps;      /**< vCont;r steps inside the range, not reported to gdb */
};

/**
 * Read the counters.
 * @param g the server
 * @param stats filled up to its sz
 * @return 0, or -EINVAL
 */
int kvmdbg_gdb_stats_get(const struct kvmdbg_gdb *g, struct kvmdbg_gdb_stats *stats);

/** @} */

/** @defgroup gdb_session The incremental API
 * For a VMM with its own event loop: it reads the connection itself and
 * feeds the bytes in, watches kvmdbg_gdb_ops::stop_fd itself, and the
 * session writes through a callback (any transport). Nothing blocks: a
 * resume returns at once with the machine running; the stop reply is sent
 * from kvmdbg_gdb_session_stopped(). The same protocol as
 * kvmdbg_gdb_serve() (which is this, with its own poll loop), without the
 * handshake timeout (the VMM's loop has its own clock). One session at a
 * time per server.
 * @{ */

/** A session on one connection, driven by the VMM's event loop. */
struct kvmdbg_gdb_session;

/**
 * Start a session of server g. The machine is stopped.
 * @param g the server
 * @param write sends bytes to the client: returns how many it sent (> 0),
 *	  or a negative errno when the client is gone (the session then ends
 *	  as KVMDBG_GDB_DISCONNECTED)
 * @param write_ctx passed to write
 * @param out set to the new session
 * @return 0, -EINVAL (a NULL argument), -ENOMEM
 */
int kvmdbg_gdb_session_new(struct kvmdbg_gdb *g,
			   long (*write)(void *ctx, const void *buf, size_t len),
			   void *write_ctx, struct kvmdbg_gdb_session **out);

/**
 * Bytes from the client, any amount (partial packets are kept until the
 * rest arrives). Complete packets are answered at once while the machine is
 * stopped; while it runs they wait for the stop, and a Ctrl-C among them
 * interrupts it. len 0: the client went away (the machine is stopped and the
 * session ends, as KVMDBG_GDB_DISCONNECTED once it has).
 * @param sess the session
 * @param buf the bytes (may be NULL when len is 0)
 * @param len how many
 * @return KVMDBG_GDB_ACTIVE while the session goes on, how it ended (an
 *	   enum kvmdbg_gdb_end below KVMDBG_GDB_ACTIVE; again at every later
 *	   call), or a negative errno: -EINVAL (bad arguments), -EIO (a
 *	   callback failed)
 */
int kvmdbg_gdb_session_feed(struct kvmdbg_gdb_session *sess, const void *buf, size_t len);

/**
 * kvmdbg_gdb_ops::stop_fd became readable: ask the machine (get_stop), and
 * when it has stopped send the stop reply and answer the packets that
 * waited for it. Harmless at any other moment.
 * @param sess the session
 * @return as kvmdbg_gdb_session_feed()
 */
int kvmdbg_gdb_session_stopped(struct kvmdbg_gdb_session *sess);

/**
 * Free a session (the machine is left as it is: stop or detach it first
 * when it runs). NULL is a no-op.
 * @param sess the session
 */
void kvmdbg_gdb_session_free(struct kvmdbg_gdb_session *sess);

/** @} */

/** @defgroup gdb_transport Transports
 * @{ */

/**
 * Listen for gdb on "HOST:PORT", "PORT" or ":PORT" (HOST defaults to
 * 127.0.0.1; a numeric IPv4 or IPv6 address, or "localhost": nothing is
 * resolved). Accept with accept4() and pass the connection to
 * kvmdbg_gdb_serve().
 * @param spec the address
 * @param err a message on failure
 * @param errlen its size
 * @return the listening fd (close-on-exec), or -1 with a message in err
 */
int kvmdbg_gdb_listen(const char *spec, char *err, size_t errlen);

/**
 * Open a serial line (made raw) or a virtio-serial port for
 * kvmdbg_gdb_serve().
 * @param path the device
 * @return the fd (close-on-exec), or a negative errno
 */
int kvmdbg_gdb_device_open(const char *path);

/**
 * Wait until a device opened with kvmdbg_gdb_device_open() has a peer: a
 * virtio port reports POLLHUP while nothing is connected on the host side.
 * @param fd the device
 * @param timeout_ms how long at most; negative: for ever
 * @return 1 when connected (or readable), 0 on timeout, a negative errno
 */
int kvmdbg_gdb_device_wait(int fd, int timeout_ms);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* KVMDBG_GDB_H */
