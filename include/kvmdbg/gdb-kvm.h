/* SPDX-License-Identifier: MIT */
/**
 * @file gdb-kvm.h
 * @brief libkvmdbg-gdb on KVM and libkvmdbg: the server's callbacks done for the VMM.
 *
 * <kvmdbg/gdb.h> asks a VMM for thirteen callbacks; this layer implements
 * them on top of KVM and libkvmdbg, for the host's architecture. The VMM
 * supplies only what it alone knows (struct kvmdbg_gdb_kvm_vm): its vCPU fds
 * and run areas, its libkvmdbg objects, guest-physical memory, and how to
 * let its vCPU threads run and how to kick them out of KVM_RUN. Its vCPU
 * threads tell the layer when they stop (kvmdbg_gdb_kvm_stopped()).
 *
 * What the layer does:
 * - registers: KVM_GET/SET_REGS, SREGS, FPU and MSR_KERNEL_GS_BASE (x86-64),
 *   KVM_GET/SET_ONE_REG (arm64), marshalled in the layout of
 *   kvmdbg_gdb_reg_lookup(); x86 gdb sees the linear pc (CS base + IP outside
 *   64-bit code), the address space of libkvmdbg's events;
 * - stop replies from libkvmdbg's events (swbreak, hwbreak, watch, rwatch,
 *   awatch:ADDR), see kvmdbg_gdb_kvm_stop_from_event();
 * - Z0..Z4 onto kvmdbg_vm_insert()/kvmdbg_vm_remove(), refused with an error
 *   reply where the verified probe says this host cannot deliver the type;
 * - all-stop: the first vCPU that stops makes the layer kick the others;
 *   KVM_KVMCLOCK_CTRL on every vCPU at each stop where the host has it;
 * - memory by guest-virtual address through the stopped vCPU's page tables,
 *   or guest-physical after `monitor phys on`;
 * - detach: every point removed, every vCPU resumed.
 *
 * Link with `pkg-config --cflags --libs kvmdbg-gdb` (it requires kvmdbg).
 */
#ifndef KVMDBG_GDB_KVM_H
#define KVMDBG_GDB_KVM_H

#include <stddef.h>
#include <stdint.h>

#include <kvmdbg/gdb.h>
#include <kvmdbg/kvmdbg.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kvm_run;

/** @defgroup gdb_kvm The KVM layer
 * @{ */

/**
 * What the VMM supplies: its machine, as KVM and libkvmdbg know it.
 * The arrays are read by kvmdbg_gdb_kvm_new() only (copied).
 */
struct kvmdbg_gdb_kvm_vm {
	size_t sz;                  /**< sizeof(struct kvmdbg_gdb_kvm_vm) */
	struct kvmdbg_vm *vm;       /**< libkvmdbg's VM: the points */
	unsigned int nvcpus;        /**< vCPUs, 1..64; gdb's threads 1..nvcpus */
	const int *vcpu_fds;        /**< KVM vCPU fds, nvcpus of them */
	struct kvm_run *const *runs; /**< their run areas (immediate_exit for the kicks) */
	struct kvmdbg_vcpu *const *vcpus; /**< libkvmdbg's vCPUs (regs_changed, set_step) */
	/** kvmdbg_probe_verified()'s result: a point type whose feature it
	 * lacks is refused with an error reply. 0 (no KVMDBG_FEAT_VERIFIED):
	 * not verified, every type is tried. */
	uint64_t features;
	/** Guest-physical memory: copy len bytes at gpa from (write 0) or to
	 * (write 1) buf; return the bytes done (> 0, fewer at the end of a
	 * memory region) or a negative errno when gpa is not guest RAM. */
	long (*phys_access)(void *ctx, uint64_t gpa, void *buf, size_t len, int write);
	/** Let vCPU thread vcpu run (KVM_RUN until it stops: it then calls
	 * kvmdbg_gdb_kvm_stopped()). The layer has set its single-step state
	 * (kvmdbg_vcpu_set_step()) and cleared its immediate_exit. */
	int (*resume)(void *ctx, unsigned int vcpu);
	/** Kick vCPU vcpu out of KVM_RUN (e.g. pthread_kill() of a signal
	 * without SA_RESTART); its immediate_exit is already set. Returns at
	 * once; the thread calls kvmdbg_gdb_kvm_stopped() when it has stopped. */
	void (*kick)(void *ctx, unsigned int vcpu);
	/** Optional (NULL: none): `monitor CMD` beyond the built-in ones, as
	 * kvmdbg_gdb_ops::monitor. */
	int (*monitor)(void *ctx, const char *cmd, char *out, size_t outlen);
};

/** Why a vCPU thread stopped: kvmdbg_gdb_kvm_stopped()'s argument. */
enum kvmdbg_gdb_kvm_why {
	KVMDBG_GDB_KVM_EVENT = 1,  /**< kvmdbg_vcpu_handle_exit() gave a reportable event */
	KVMDBG_GDB_KVM_KICKED = 2, /**< kicked (KVM_RUN returned EINTR), or nothing to report */
	KVMDBG_GDB_KVM_EXITED = 3, /**< this vCPU is done for good (the guest ended) */
	KVMDBG_GDB_KVM_FAILED = 4, /**< it cannot go on (KVM_EXIT_SHUTDOWN, an error) */
};

/** The layer: a server (struct kvmdbg_gdb) over one VMM's machine. */
struct kvmdbg_gdb_kvm;

/**
 * Make the layer and its server for a machine. The vCPUs start stopped.
 * @param vm the machine (copied, arrays included)
 * @param ctx passed to vm's callbacks
 * @param out set to the new layer
 * @return 0, -EINVAL (no vm/vcpu objects, a missing callback, nvcpus 0 or
 *	   over 64, bad sz), -E2BIG (a newer caller's fields set), -ENOMEM, or
 *	   a negative errno of making the stop notification
 */
int kvmdbg_gdb_kvm_new(const struct kvmdbg_gdb_kvm_vm *vm, void *ctx, struct kvmdbg_gdb_kvm **out);

/**
 * Free the layer (not while kvmdbg_gdb_kvm_serve() runs). NULL is a no-op.
 * @param k the layer
 */
void kvmdbg_gdb_kvm_free(struct kvmdbg_gdb_kvm *k);

/**
 * The layer's server, for kvmdbg_gdb_stats_get().
 * @param k the layer
 * @return the server, owned by the layer; NULL when k is NULL
 */
struct kvmdbg_gdb *kvmdbg_gdb_kvm_server(struct kvmdbg_gdb_kvm *k);

/**
 * Serve one client on fd, as kvmdbg_gdb_serve() of kvmdbg_gdb_kvm_server()
 * (whose incremental API works the same way). At a detach every point is
 * removed and every vCPU still alive runs again.
 * @param k the layer
 * @param fd the connection
 * @param opts options, or NULL for the defaults
 * @return an enum kvmdbg_gdb_end (>= 0), or a negative errno as
 *	   kvmdbg_gdb_serve() (-EINVAL also for a NULL k)
 */
int kvmdbg_gdb_kvm_serve(struct kvmdbg_gdb_kvm *k, int fd, const struct kvmdbg_gdb_serve_opts *opts);

/**
 * A vCPU thread says it stopped. The first reportable stop after a resume
 * makes the layer kick every other running vCPU (all-stop); the server is
 * told once all have stopped. Thread-safe; call it from the vCPU's thread
 * after it left KVM_RUN, then wait for the VMM's resume callback.
 * @param k the layer
 * @param vcpu the vCPU, 0..nvcpus-1
 * @param why what happened
 * @param ev the event (KVMDBG_GDB_KVM_EVENT; copied), else NULL
 * @return 0, or -EINVAL (a bad vcpu or why, no ev for an event)
 */
int kvmdbg_gdb_kvm_stopped(struct kvmdbg_gdb_kvm *k, unsigned int vcpu, enum kvmdbg_gdb_kvm_why why,
			   const struct kvmdbg_event *ev);

/**
 * The stop reply for a libkvmdbg event: signal 5 with swbreak, hwbreak,
 * watch, rwatch or awatch (data_addr set) for a breakpoint or watchpoint;
 * signal 5 and no reason for a step or any other event.
 * @param ev the event of kvmdbg_vcpu_handle_exit()
 * @param vcpu the vCPU it happened on (the stop's thread)
 * @param stop filled (its sz set by the caller)
 * @return 0, or -EINVAL (NULL arguments, a negative vcpu, sz too small)
 */
int kvmdbg_gdb_kvm_stop_from_event(const struct kvmdbg_event *ev, int vcpu,
				   struct kvmdbg_gdb_stop *stop);

/**
 * Whether this host can deliver a point type, by the verified probe.
 * @param features kvmdbg_probe_verified()'s result (without
 *	  KVMDBG_FEAT_VERIFIED: not verified, every type is allowed)
 * @param type Z0..Z4
 * @return 0 when it can (or nothing was verified), -ENOSYS when the verified
 *	   probe lacks the type's feature, -EINVAL for an unknown type
 */
int kvmdbg_gdb_kvm_point_check(uint64_t features, enum kvmdbg_gdb_point type);

/**
 * Read a vCPU's paging state for kvmdbg_gdb_translate(): CR0, CR3, CR4 and
 * EFER by KVM_GET_SREGS on x86-64; SCTLR_EL1, TCR_EL1, TTBR0_EL1 and
 * TTBR1_EL1 by KVM_GET_ONE_REG on arm64. The vCPU must not be in KVM_RUN.
 * @param vcpu_fd the KVM vCPU fd
 * @param mmu filled, arch included (its sz set by the caller; bytes past
 *	  the fields this version knows are zeroed)
 * @return 0, -EINVAL (a negative fd, NULL mmu, sz too small), or the
 *	   negative errno of an ioctl
 */
int kvmdbg_gdb_kvm_mmu_read(int vcpu_fd, struct kvmdbg_gdb_mmu *mmu);

/**
 * Read every register of a vCPU into the host arch's `g` layout
 * (kvmdbg_gdb_reg_count() bytes): KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_FPU
 * and MSR_KERNEL_GS_BASE on x86-64, KVM_GET_ONE_REG on arm64. The vCPU must
 * not be in KVM_RUN.
 * @param vcpu_fd the KVM vCPU fd
 * @param buf the `g` data
 * @return 0, -EINVAL (a negative fd, NULL buf), or the negative errno of an ioctl
 */
int kvmdbg_gdb_kvm_regs_read(int vcpu_fd, uint8_t *buf);

/**
 * Write every register of a vCPU from the `g` layout; only what changed is
 * written (x86: the segment selectors only in real mode, where the base
 * follows). Tell libkvmdbg afterwards (kvmdbg_vcpu_regs_changed()).
 * @param vcpu_fd the KVM vCPU fd
 * @param buf the `g` data
 * @return 0, -EINVAL (bad arguments, a protected-mode selector change), or
 *	   the negative errno of an ioctl (nothing is half-written before the
 *	   first failing ioctl)
 */
int kvmdbg_gdb_kvm_regs_write(int vcpu_fd, const uint8_t *buf);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* KVMDBG_GDB_KVM_H */
