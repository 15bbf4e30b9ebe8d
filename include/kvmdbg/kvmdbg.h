/* SPDX-License-Identifier: MIT */
/**
 * @file kvmdbg.h
 * @brief libkvmdbg: guest debugging for KVM-based virtual machine monitors.
 *
 * The only public header of the library. It is arch-neutral: nothing in it
 * depends on <asm/kvm.h>, so the same VMM code builds for x86-64 and arm64.
 *
 * Conventions:
 * - Every function that can fail returns an int: 0 (or a non-negative count)
 *   on success, a negative errno on failure. After a failure nothing has
 *   changed: no half-inserted watchpoint, no guest byte left modified, no
 *   hardware slot leaked.
 * - Option and result structs start with `size_t sz`, which the caller sets
 *   to `sizeof(struct ...)` as it knows it (KVMDBG_OPTS() does it); the
 *   library only touches the fields that fit, so the structs can grow
 *   without breaking the ABI. Options from a newer caller whose unknown
 *   trailing bytes are not all zero are refused with -E2BIG.
 * - `_free(NULL)` is a no-op.
 *
 * Naming: every function is `kvmdbg_<object>_<verb>`, the object being the
 * handle it takes first (`vm`, `vcpu`) or, for functions without one, the
 * thing it asks about (`probe`, `stop`, `type`, `feature`). A *point* is a
 * breakpoint or a watchpoint (enum kvmdbg_type says which); points are
 * VM-wide and are inserted and removed (`kvmdbg_vm_insert/remove`), never
 * "added" or "set"; a vCPU is prepared before KVM_RUN and handles the exit
 * after it. Constants are `KVMDBG_<GROUP>_<NAME>`; `_new` returns a handle
 * through an out parameter, `_free` releases it.
 *
 * The run loop a VMM writes, on both arches:
 * @code
 * for (;;) {
 *	r = kvmdbg_vcpu_prepare(v);      // zero syscalls when nothing changed
 *	if (r == -EAGAIN)                // fenced: another vCPU steps over a
 *		continue;                  // software breakpoint (yield, retry)
 *	if (r < 0)
 *		...;                       // nothing changed: retry or give up
 *	ioctl(vcpu_fd, KVM_RUN, 0);      // EINTR: kicked, e.g. for all-stop
 *	if (run->exit_reason == KVM_EXIT_DEBUG) {
 *		kvmdbg_vcpu_handle_exit(v, &ev);
 *		if (KVMDBG_STOP_IS_REPORTABLE(ev.kind))
 *			report(&ev);       // then wait for "continue"
 *		continue;
 *	}
 *	...
 * }
 * @endcode
 *
 * Threading: functions taking a struct kvmdbg_vm are thread-safe. A struct
 * kvmdbg_vcpu is used by one thread at a time (normally its vCPU thread).
 * Breakpoint changes are VM-wide and reach each vCPU at its next
 * kvmdbg_vcpu_prepare(); kicking vCPUs out of KVM_RUN is the VMM's job.
 *
 * Software breakpoints and several vCPUs: resuming from a stop at a
 * software breakpoint puts the guest's own instruction back in memory (it
 * is VM-wide) for the one step past it. So that no other vCPU runs that
 * instruction unseen in the meantime, every other vCPU catches the address
 * in a hardware execution breakpoint slot of its own (free slots are per
 * vCPU), from the moment the stop is reported by kvmdbg_vcpu_handle_exit()
 * until the step past it has ended; reaching it there is reported as that
 * software breakpoint (KVMDBG_STOP_BREAK, KVMDBG_BREAK_SW, its address),
 * and resuming steps past it as usual. Where a vCPU has no free slot left
 * for it (the host's slots all taken by hardware points, or none at all),
 * kvmdbg_vcpu_prepare() fences it: -EAGAIN, nothing changed, and the VMM
 * must not run it until a later prepare returns 0 (the fence lifts when
 * the stopped vCPU's step-over ends, or when that vCPU is freed or the
 * breakpoint removed). A vCPU running its own step past a breakpoint is
 * never fenced, so vCPUs cannot wait for each other. The guarantee holds
 * for the vCPUs that call prepare after the stop was reported: an all-stop
 * VMM (every vCPU out of KVM_RUN while one is stopped, all prepare again
 * before running) has it; a VMM that keeps other vCPUs running while one
 * is stopped must kick them through a prepare before resuming the stopped
 * one, and while the stopped one is not resumed, the vCPUs it fences wait.
 * A PC the VMM moves onto a software breakpoint (kvmdbg_vcpu_regs_changed())
 * is only caught from the prepare that steps past it on.
 */
#ifndef KVMDBG_KVMDBG_H
#define KVMDBG_KVMDBG_H

#include <stddef.h>
#include <stdint.h>

#include <kvmdbg/kvmdbg-version.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kvm_run;

/** Opaque debug session of one VM. */
struct kvmdbg_vm;
/** Opaque per-vCPU state of a debug session. */
struct kvmdbg_vcpu;

/** Guest architecture. */
enum kvmdbg_arch {
	KVMDBG_ARCH_UNKNOWN = 0,
	KVMDBG_ARCH_X86_64 = 1,
	KVMDBG_ARCH_ARM64 = 2,
};

/**
 * @defgroup probe Capability discovery: what the host and the guest offer
 * @{
 */

/**
 * Capabilities the host's KVM advertises (KVM_CHECK_EXTENSION).
 *
 * Advertised is not the same as working: see kvmdbg_probe_verified().
 */
struct kvmdbg_caps {
	size_t sz;                  /**< caller sets sizeof(struct kvmdbg_caps) */
	enum kvmdbg_arch arch;      /**< the arch of this build's KVM backend */
	int guest_debug;            /**< KVM_CAP_SET_GUEST_DEBUG: any guest debugging */
	uint64_t debug_flags;       /**< KVM_GUESTDBG_* control bits the host accepts
	                                 (KVM_CAP_SET_GUEST_DEBUG2; a conservative default
	                                 for kernels that predate it) */
	unsigned int hw_breakpoints; /**< host slots usable for execution breakpoints */
	unsigned int hw_watchpoints; /**< host slots usable for watchpoints */
	int shared_slots;           /**< 1 when breakpoints and watchpoints share one
	                                 pool (x86: DR0-DR3) */
	uint64_t max_watch_len;     /**< largest range a single slot can cover */
	int single_step;            /**< KVM_GUESTDBG_SINGLESTEP accepted */
	int sw_breakpoints;         /**< KVM_GUESTDBG_USE_SW_BP accepted */
	int hw_debug;               /**< KVM_GUESTDBG_USE_HW_BP / USE_HW accepted */
	int block_irq;              /**< KVM_GUESTDBG_BLOCKIRQ accepted (x86) */
	int inject_db;              /**< KVM_GUESTDBG_INJECT_DB accepted (x86) */
	int inject_bp;              /**< KVM_GUESTDBG_INJECT_BP accepted (x86) */
	int guest_state;            /**< the guest's own debug registers can be read
	                                 and written (x86 KVM_CAP_DEBUGREGS, arm64
	                                 ONE_REG) */
};

/**
 * Read the capabilities the host's KVM advertises.
 *
 * @param fd   a VM fd (preferred: per-VM answers) or a /dev/kvm fd.
 * @param caps filled up to caps->sz bytes.
 * A KVM without guest debugging is not an error: caps->guest_debug is 0.
 *
 * @return 0, or -EINVAL (NULL caps, sz too small to hold sz and arch),
 *         -EBADF (negative or closed fd), -ENOTTY (fd is not a KVM fd).
 */
int kvmdbg_probe(int fd, struct kvmdbg_caps *caps);

/** Debug registers as the guest itself sees them (not the host's slots). */
struct kvmdbg_guest_caps {
	size_t sz;                  /**< caller sets sizeof(struct kvmdbg_guest_caps) */
	unsigned int breakpoints;   /**< guest-visible breakpoint registers */
	unsigned int watchpoints;   /**< guest-visible watchpoint registers */
	unsigned int context_cmps;  /**< arm64: context-aware breakpoints; x86: 0 */
	int shared_slots;           /**< x86: 1 (DR0-DR3 serve both) */
};

/**
 * Read how many debug registers the guest sees on one vCPU.
 *
 * On arm64 this decodes the vCPU's ID_AA64DFR0_EL1 (read with
 * KVM_GET_ONE_REG), which can differ from the host slots of kvmdbg_probe().
 * On x86 it is always four shared registers.
 *
 * @param vcpu_fd a vCPU fd.
 * @param caps    filled up to caps->sz bytes.
 * @return 0, or -EINVAL (NULL), -errno of the failed ioctl.
 */
int kvmdbg_probe_guest(int vcpu_fd, struct kvmdbg_guest_caps *caps);

/** @name Verified features (bits of kvmdbg_probe_verified()'s result)
 * Each bit means: a micro-VM on this host really delivered the expected
 * exit for that feature.
 * @{ */
#define KVMDBG_FEAT_STEP         (1ULL << 0)  /**< single-step exits once per instruction */
#define KVMDBG_FEAT_BLOCK_IRQ    (1ULL << 1)  /**< stepping with BLOCKIRQ skips a pending interrupt */
#define KVMDBG_FEAT_HW_BREAK     (1ULL << 2)  /**< hardware execution breakpoints fire */
#define KVMDBG_FEAT_WATCH_WRITE  (1ULL << 3)  /**< write watchpoints fire */
#define KVMDBG_FEAT_WATCH_ACCESS (1ULL << 4)  /**< read/write (access) watchpoints fire on reads */
#define KVMDBG_FEAT_WATCH_READ   (1ULL << 5)  /**< read-only watchpoints fire (arm64) */
#define KVMDBG_FEAT_SW_BREAK     (1ULL << 6)  /**< software breakpoint instructions exit */
#define KVMDBG_FEAT_INJECT_DB    (1ULL << 7)  /**< INJECT_DB reaches the guest's \#DB handler */
#define KVMDBG_FEAT_INJECT_BP    (1ULL << 8)  /**< INJECT_BP reaches the guest's \#BP handler
                                                   with the right return address */
#define KVMDBG_FEAT_RF_RESUME    (1ULL << 9)  /**< x86 RFLAGS.RF set by userspace resumes
                                                   past a host breakpoint */
#define KVMDBG_FEAT_GD_EXIT      (1ULL << 10) /**< x86 DR7.GD: a guest MOV DR exits with DR6.BD */
#define KVMDBG_FEAT_GUEST_BP_LIVE (1ULL << 11) /**< the guest's own execution breakpoints stay
                                                   live beside the host's (software KVMs) */
#define KVMDBG_FEAT_GUEST_REGS_RAW (1ULL << 12) /**< arm64 (never set on x86): while the host
                                                    debugs with no hardware slot (software
                                                    breakpoints or single-step only), KVM keeps
                                                    the guest's own breakpoints and watchpoints
                                                    armed as the guest set them, and their
                                                    exceptions reach the host
                                                    (KVMDBG_STOP_GUEST, re-injected). Clear:
                                                    they are inert meanwhile (Linux 6.14 on);
                                                    KVMDBG_OVERLAY_GUEST keeps them working
                                                    either way */
#define KVMDBG_FEAT_VERIFIED     (1ULL << 63) /**< set on every successful result */
/** @} */

/**
 * Prove which debug features really work on this host.
 *
 * Starts a throwaway micro-VM with a tiny guest, tries each feature and
 * reports the ones that delivered the expected exit. Bounded in time (well
 * under a second on a fast host), leaves nothing behind. Not for the hot
 * path: call it once and keep the result, e.g. in kvmdbg_vm_opts::features.
 *
 * @param kvm_fd   an open /dev/kvm fd.
 * @param features set to a mask of KVMDBG_FEAT_* (always with
 *                 KVMDBG_FEAT_VERIFIED) on success.
 * @return 0, or -EINVAL (NULL features), -EOPNOTSUPP (no micro-VM for this
 *         host arch), -ETIMEDOUT (the micro-VM did not answer in time),
 *         -errno of an ioctl or mmap that setting up the micro-VM needs.
 */
int kvmdbg_probe_verified(int kvm_fd, uint64_t *features);
/** @} */

/**
 * @defgroup session Sessions: one per VM, one per vCPU
 * @{
 */

/** Guest memory access for software breakpoints, by guest-virtual address. */
struct kvmdbg_mem_ops {
	/** Read len bytes at gva into buf. Return 0 or a negative errno. */
	int (*read)(void *ctx, uint64_t gva, void *buf, size_t len);
	/** Write len bytes from buf at gva. Return 0 or a negative errno. */
	int (*write)(void *ctx, uint64_t gva, const void *buf, size_t len);
};

/** What happens to the guest's own use of its debug registers. */
enum kvmdbg_overlay {
	/** The host owns every slot while it debugs (KVM's behaviour; on arm64
	 *  the guest's own slots may stay armed while the host holds none:
	 *  KVMDBG_FEAT_GUEST_REGS_RAW). */
	KVMDBG_OVERLAY_OFF = 0,
	/** The guest's own debug registers keep working beside the host's:
	 *  the slots the guest enabled run in the hardware slots the host leaves
	 *  free (renumbered where the host holds the guest's number), every
	 *  debug exception comes to userspace, and the guest's are re-injected
	 *  as the guest expects them (its own slot numbers in DR6; arm64 ESR and
	 *  FAR). The host wins when both want more slots than exist. See
	 *  kvmdbg_vcpu_refresh_guest() for how soon guest changes are seen.
	 *  arm64: the guest's own single-step (MDSCR_EL1.SS), which KVM masks
	 *  while the host debugs the vCPU, is emulated: at a debug exit with the
	 *  vCPU where the guest's ERET armed it, the library steps the
	 *  instruction (one more debug exit) and injects the step exception
	 *  (KVMDBG_STOP_GUEST); one more exit where that exception returns lets
	 *  it see the slots the guest re-armed meanwhile. */
	KVMDBG_OVERLAY_GUEST = 1,
};

/**
 * Declare and initialise an options struct with its `sz` set, e.g.
 * `KVMDBG_OPTS(kvmdbg_vm_opts, o, .overlay = KVMDBG_OVERLAY_GUEST);`. The
 * fields not named are zero.
 */
#define KVMDBG_OPTS(TYPE, NAME, ...) struct TYPE NAME = {.sz = sizeof(struct TYPE), __VA_ARGS__}

/** Options of kvmdbg_vm_new(). */
struct kvmdbg_vm_opts {
	size_t sz;                        /**< caller sets sizeof(struct kvmdbg_vm_opts) */
	const struct kvmdbg_mem_ops *mem; /**< NULL: no software breakpoints */
	void *mem_ctx;                    /**< passed to mem's callbacks */
	enum kvmdbg_overlay overlay;      /**< default KVMDBG_OVERLAY_OFF */
	/** Result of kvmdbg_probe_verified(), or 0 when not known. The library
	 *  only relies on features proven here: without KVMDBG_FEAT_RF_RESUME it
	 *  steps over x86 hardware breakpoints by disarm-step-rearm (works on
	 *  every host, one extra exit) instead of RFLAGS.RF. */
	uint64_t features;
	/** Allow a watchpoint to cover more bytes than asked for when that
	 *  saves slots (arm64 MASK regions). 0: cover exactly the range. */
	int allow_overcover;
};

/**
 * Start a debug session on a VM.
 *
 * @param vm_fd the VM fd (used for capability queries).
 * @param opts  options, or NULL for defaults.
 * @param out   set to the new session.
 * The memory callbacks are called with the session's lock held: they must
 * not call back into the library.
 *
 * @return 0, or -EINVAL (NULL out, opts->sz too small, bad enum value, mem
 *         without both callbacks), -E2BIG (opts from a newer header with a
 *         field this library does not know set), -ENOMEM, -ENOTTY (the host has no guest
 *         debugging, or vm_fd is not a KVM fd), -EOPNOTSUPP
 *         (KVMDBG_OVERLAY_GUEST on a host that cannot read the guest's
 *         own debug registers).
 */
int kvmdbg_vm_new(int vm_fd, const struct kvmdbg_vm_opts *opts, struct kvmdbg_vm **out);

/**
 * End a debug session: restores every guest byte the library changed and
 * frees the session. vCPU handles must be freed first (their free disables
 * guest debugging on that vCPU); while any is attached the session is not
 * freed. NULL is a no-op.
 *
 * @param vm the session, or NULL.
 * @return 0 (freed, or NULL), or -EBUSY (vCPUs are still attached: nothing
 *         was freed or restored, the session and its vCPUs work as before).
 */
int kvmdbg_vm_free(struct kvmdbg_vm *vm);

/**
 * Attach a vCPU to a debug session.
 *
 * @param vm     the session.
 * @param vcpu_fd the vCPU fd.
 * @param run    the vCPU's mmap'ed struct kvm_run.
 * @param out    set to the new handle.
 * @return 0, or -EINVAL (NULL argument), -ENOMEM.
 */
int kvmdbg_vcpu_new(struct kvmdbg_vm *vm, int vcpu_fd, struct kvm_run *run,
		    struct kvmdbg_vcpu **out);

/**
 * Detach a vCPU: disables guest debugging on it (KVM_SET_GUEST_DEBUG with
 * no flags) and restores anything a pending step-over or single-step had
 * changed (a lifted breakpoint, arm64's masked interrupts). NULL is a no-op.
 *
 * @param vcpu the handle, or NULL.
 */
void kvmdbg_vcpu_free(struct kvmdbg_vcpu *vcpu);
/** @} */

/**
 * @defgroup points Points: breakpoints and watchpoints, VM-wide
 * @{
 */

/** Breakpoint and watchpoint kinds: the semantics of gdb's Z0..Z4. */
enum kvmdbg_type {
	KVMDBG_BREAK_SW = 0,     /**< software breakpoint (Z0) */
	KVMDBG_BREAK_HW = 1,     /**< hardware execution breakpoint (Z1) */
	KVMDBG_WATCH_WRITE = 2,  /**< write watchpoint (Z2) */
	KVMDBG_WATCH_READ = 3,   /**< read watchpoint (Z3); -EOPNOTSUPP on x86,
	                              whose hardware has no read-only match */
	KVMDBG_WATCH_ACCESS = 4, /**< read/write watchpoint (Z4) */
};

/**
 * Insert a breakpoint or watchpoint, VM-wide.
 *
 * Inserting the same (type, addr, len) again takes another reference; each
 * reference is dropped by one kvmdbg_vm_remove(). Hardware points are covered
 * by the fewest slots and inserted all-or-nothing. A software breakpoint
 * is written into guest memory now, through the kvmdbg_mem_ops.
 *
 * A software breakpoint on an instruction that already is the breakpoint
 * instruction (the guest's own INT3; an arm64 BRK with the library's
 * immediate) is accepted: reaching it stops once (KVMDBG_STOP_BREAK), and
 * resuming from that stop runs the guest's own instruction, whose exception
 * is the guest's (KVMDBG_STOP_GUEST, delivered to it at the next
 * kvmdbg_vcpu_prepare()), as without the breakpoint. It is not refused: a
 * debugger cannot always know what lies at an address, and gdb fails a
 * whole continue on one refused Z0.
 *
 * @param vm   the session.
 * @param type what to insert.
 * @param addr guest-virtual address (execution breakpoints: the
 *             instruction; watchpoints: the first byte watched).
 * @param len execution breakpoints: gdb's "kind", validated and otherwise
 *            ignored (x86: 0 to 15; arm64: 0 or 4); watchpoints: bytes
 *            watched, any length that fits the host's slots.
 * @return 0, or -EINVAL (NULL vm, unknown type, len 0 for a watchpoint,
 *         addr + len wrapping, an address the arch cannot watch or break
 *         on), -ENOSPC (not enough free hardware slots), -EOPNOTSUPP (the
 *         host or arch cannot do this type, or no memory callbacks for a
 *         software breakpoint), -ENOMEM, -EOVERFLOW (too many references
 *         to one point: 65535 for software breakpoints), or the negative
 *         errno of a failed memory callback (then the guest bytes are as
 *         they were).
 */
int kvmdbg_vm_insert(struct kvmdbg_vm *vm, enum kvmdbg_type type, uint64_t addr, uint64_t len);

/**
 * Drop one reference to a breakpoint or watchpoint inserted with the same
 * (type, addr, len). The last reference frees its slots, or restores the
 * guest's original bytes.
 *
 * @param vm   the session.
 * @param type as inserted.
 * @param addr as inserted.
 * @param len  as inserted (ignored for execution breakpoints).
 * @return 0, or -EINVAL (NULL vm, unknown type), -ENOENT (no such point),
 *         or the negative errno of a failed memory callback (then the
 *         breakpoint stays inserted).
 */
int kvmdbg_vm_remove(struct kvmdbg_vm *vm, enum kvmdbg_type type, uint64_t addr, uint64_t len);

/**
 * How many hardware slots kvmdbg_vm_insert() would take for this point now.
 *
 * @param vm   the session.
 * @param type as for kvmdbg_vm_insert().
 * @param addr as for kvmdbg_vm_insert().
 * @param len  as for kvmdbg_vm_insert().
 * @return the count (0 for a software breakpoint or a reference to a point
 *         already inserted), or the errors of kvmdbg_vm_insert(); a count
 *         larger than the free slots is returned as is, and -ENOSPC only
 *         means the range needs more than 32 slots.
 */
int kvmdbg_vm_slots_needed(struct kvmdbg_vm *vm, enum kvmdbg_type type, uint64_t addr, uint64_t len);

/**
 * Remove every breakpoint and watchpoint, restoring guest memory.
 *
 * @param vm the session.
 * @return 0, or -EINVAL (NULL vm), or the first negative errno of a failed
 *         memory callback (the breakpoints it could not restore stay in).
 */
int kvmdbg_vm_remove_all(struct kvmdbg_vm *vm);
/** @} */

/**
 * @defgroup run The run loop: before KVM_RUN
 * @{
 */

/**
 * Single-step this vCPU from its next kvmdbg_vcpu_prepare() on.
 *
 * A single-step holds the guest's interrupts off, on both arches, so that
 * it runs the next instruction and not the handler of an interrupt that is
 * pending (always, on a slow host: the timer's; the handler would return
 * to the stop, and a debugger's step over its own breakpoint would never
 * get past it):
 *  - x86: KVM_GUESTDBG_BLOCKIRQ, where KVM has it (kvmdbg_caps.block_irq);
 *  - arm64, which has no such flag: the library masks PSTATE.A, I and F
 *    before the KVM_RUN that steps and gives them back when the step's
 *    debug exit is handled, before kvmdbg_vcpu_handle_exit() returns. At the
 *    stop PSTATE is the guest's own, with what the stepped instruction did
 *    to it (MSR DAIFClr/DAIFSet, MSR DAIF, ERET, an exception it entered;
 *    the instruction is read through the memory callbacks: without them a
 *    bit that MSR DAIFSet, MSR DAIF or ERET sets comes back clear if the
 *    guest had it clear). Exits of
 *    that KVM_RUN that are not debug exits (MMIO, a kick) keep the mask
 *    until the step completes or is turned off (a stop the VMM reports at
 *    such an exit shows A, I and F set), and the stepped instruction itself
 *    runs masked (an MRS of DAIF reads them set), as under QEMU's gdbstub.
 *
 * The library's own steps past breakpoints hold them off the same way. A
 * VMM that injects interrupts itself with KVM_INTERRUPT must hold them
 * while kvmdbg_vcpu_is_stepping() says so.
 *
 * @param vcpu   the vCPU.
 * @param enable 1 to step, 0 to run.
 * @return 0, or -EINVAL (NULL), -EOPNOTSUPP (the host cannot step).
 */
int kvmdbg_vcpu_set_step(struct kvmdbg_vcpu *vcpu, int enable);

/**
 * Bring the vCPU's KVM debug state up to date. Call before every KVM_RUN.
 *
 * Makes no system call when nothing changed since the last call; exactly
 * one KVM_SET_GUEST_DEBUG after a change. After a reported stop at an
 * execution breakpoint (or an arm64 watchpoint) it arranges the step past
 * it, which costs a few more ioctls that one time.
 *
 * While another vCPU of the VM is stopped at, or stepping past, a software
 * breakpoint, this vCPU runs with a hardware execution breakpoint slot on
 * that address (see "Software breakpoints and several vCPUs" above), or is
 * fenced with -EAGAIN where it has no free slot.
 *
 * @param vcpu the vCPU about to run.
 * @return 0, or -EINVAL (NULL), -EAGAIN (fenced: another vCPU's step past a
 *         software breakpoint has, or is about to have, the guest's own
 *         instruction back in memory, and this vCPU has no free hardware
 *         slot to catch it; do not run this vCPU, yield and call prepare
 *         again: nothing changed), -errno of a failed ioctl or memory
 *         callback (the vCPU's state is unchanged and the next call tries
 *         again).
 */
int kvmdbg_vcpu_prepare(struct kvmdbg_vcpu *vcpu);

/**
 * Whether the vCPU single-steps in the KVM_RUN that follows the last
 * kvmdbg_vcpu_prepare(): a step the user asked for, or the library's own
 * step past a breakpoint.
 *
 * BLOCKIRQ holds back interrupts from KVM's in-kernel interrupt controller,
 * but not one a VMM with its own controller injects with KVM_INTERRUPT
 * (KVM delivers that at once). Such a VMM asks this after prepare and
 * delays its injection while it returns 1, or the step lands in the
 * interrupt handler.
 *
 * @param vcpu the vCPU.
 * @return 1 stepping, 0 not, -EINVAL (NULL).
 */
int kvmdbg_vcpu_is_stepping(const struct kvmdbg_vcpu *vcpu);

/**
 * Tell the library that the VMM changed the vCPU's registers (for example
 * the PC, from a debugger's register write) while it was stopped, so that
 * a pending step past a breakpoint is recomputed at the next prepare.
 *
 * @param vcpu the vCPU whose registers changed.
 * @return 0, or -EINVAL (NULL).
 */
int kvmdbg_vcpu_regs_changed(struct kvmdbg_vcpu *vcpu);

/** Counters of the guest/host overlay (KVMDBG_OVERLAY_GUEST) on one vCPU. */
struct kvmdbg_overlay_stats {
	size_t sz;                  /**< caller sets sizeof(struct kvmdbg_overlay_stats) */
	unsigned int merged;        /**< guest slots running in hardware slots now */
	unsigned int suspended;     /**< guest slots that do not fit beside the host's
	                                 (the host wins; they come back when it frees one) */
	unsigned int rejected;      /**< guest slots refused as unsafe (I/O breakpoints,
	                                 EL2 or linked matches, reserved encodings) */
	uint64_t reinjected;        /**< guest debug exceptions delivered back to it */
	uint64_t refreshes;         /**< reads of the guest's own debug registers */
};

/**
 * Read the overlay counters of a vCPU.
 *
 * @param vcpu the vCPU.
 * @param st   filled up to st->sz bytes.
 * @return 0, or -EINVAL (NULL, sz too small), -EOPNOTSUPP (the session was
 *         not created with KVMDBG_OVERLAY_GUEST).
 */
int kvmdbg_vcpu_overlay_stats(const struct kvmdbg_vcpu *vcpu, struct kvmdbg_overlay_stats *st);

/**
 * Make the overlay re-read the guest's own debug registers at the next
 * kvmdbg_vcpu_prepare().
 *
 * With KVMDBG_OVERLAY_GUEST the library sees the guest's own changes to
 * its debug registers: on x86 hosts whose verified features include
 * KVMDBG_FEAT_GD_EXIT at once (every guest MOV DR exits while the host
 * holds slots, and runs against the guest's own copy); elsewhere at every
 * debug exit and whenever this is called. So a guest change stays unseen
 * at most until the vCPU's next debug exit or the VMM's next call of this
 * (a VMM may call it on any exit, e.g. periodically; it costs one ioctl at
 * the next prepare).
 *
 * @param vcpu the vCPU.
 * @return 0, or -EINVAL (NULL), -EOPNOTSUPP (no overlay in this session).
 */
int kvmdbg_vcpu_refresh_guest(struct kvmdbg_vcpu *vcpu);
/** @} */

/**
 * @defgroup exit Exits: what a KVM_EXIT_DEBUG means
 * @{
 */

/** What a debug exit means. */
enum kvmdbg_stop {
	KVMDBG_STOP_STEP = 0,   /**< a single-step the user asked for completed */
	KVMDBG_STOP_BREAK = 1,  /**< an execution breakpoint (pc = its address);
	                             a software breakpoint caught in a hardware
	                             slot while another vCPU steps past it is
	                             reported as the software breakpoint */
	KVMDBG_STOP_WATCH = 2,  /**< a watchpoint */
	KVMDBG_STOP_GUEST = 3,  /**< the guest's own debug exception; it is
	                             queued for re-injection at the next prepare */
	KVMDBG_STOP_NONE = 4,   /**< internal or stale: just run again */
};

/** True for the kinds a debugger reports to its user (step, break, watch). */
#define KVMDBG_STOP_IS_REPORTABLE(kind)                                                  \
	((kind) == KVMDBG_STOP_STEP || (kind) == KVMDBG_STOP_BREAK || (kind) == KVMDBG_STOP_WATCH)

/** An arch-neutral debug event. */
struct kvmdbg_event {
	enum kvmdbg_stop kind;   /**< see enum kvmdbg_stop */
	enum kvmdbg_type type;   /**< for BREAK/WATCH: which kind fired; 0 otherwise */
	uint64_t pc;             /**< guest PC at the stop (x86: linear RIP); 0 in
	                              the KVMDBG_STOP_NONE of the end of the
	                              library's own step past a stop on arm64,
	                              where reading it would cost an ioctl */
	uint64_t addr;           /**< the breakpoint/watchpoint as inserted (0 for
	                              STEP, GUEST and NONE, as type is) */
	uint64_t len;            /**< its length as inserted */
	uint64_t data_addr;      /**< watchpoints: the data address the hardware
	                              reported (arm64 FAR); where it reports none
	                              (x86), the start of the hitting slot's piece */
	uint32_t hits;           /**< hardware slots that matched: bit n is
	                              breakpoint slot n (x86: DRn), bit 16 + n is
	                              watchpoint slot n (arm64) */
	int stepped;             /**< 1 when a single-step trap is part of it */
	int write;               /**< watchpoints: 1 write, 0 read, -1 unknown */
};

/**
 * Classify the KVM_EXIT_DEBUG that the vCPU's struct kvm_run holds.
 *
 * Call after KVM_RUN returned with exit_reason KVM_EXIT_DEBUG. Never trusts
 * the guest, and never gives it an exception it did not raise: an exit is
 * the guest's (KVMDBG_STOP_GUEST, re-injected at the next prepare: nothing
 * to do but run again) only where the library can show it: a slot the
 * guest enabled in its own registers that matches this exit while those
 * registers ran in hardware (merged by the overlay; KVM running them
 * because the host applied no slot; or a verified KVM keeping them live,
 * KVMDBG_FEAT_GUEST_BP_LIVE), the guest's own single-step (x86 TF, arm64
 * SS), x86 ICEBP proven by the byte at the PC (on hosts whose KVM stops
 * before it completes, VMX, the PC is first moved past it, as the trap
 * leaves it), DR6.BLD or DR6.BT, DR6.BD under the guest's own DR7.GD, or a
 * breakpoint instruction that is not the library's. Anything else,
 * including x86 B0-B3 bits of slots nobody enabled (the CPU sets them for
 * disabled slots too) and a hit of a point removed since this vCPU last
 * prepared, is KVMDBG_STOP_NONE. This holds with opts.features left 0: a
 * guest that never programmed its debug registers never gets one.
 *
 * To decide, it may read the guest's debug registers (one ioctl, only for
 * an exit nothing of the host's explains) and guest memory (through the
 * session's memory callbacks). After an error nothing has changed: the VMM
 * may call it again for the same exit. The exit that ends the library's own
 * step past a stop (a KVMDBG_STOP_NONE event) also gives KVM back the
 * debug state from before that step (one KVM_SET_GUEST_DEBUG, which the
 * next kvmdbg_vcpu_prepare() then does not make; where it fails, nothing
 * changed and that prepare makes it and reports its error).
 *
 * @param vcpu the vCPU whose KVM_RUN returned.
 * @param ev   filled with the event.
 * @return 0, or -EINVAL (NULL, or exit_reason is not KVM_EXIT_DEBUG),
 *         -errno of an ioctl needed to read the exit (arm64 PC), to read
 *         the guest's debug registers or to move the PC past an ICEBP,
 *         or of the memory callback reading a breakpoint instruction.
 */
int kvmdbg_vcpu_handle_exit(struct kvmdbg_vcpu *vcpu, struct kvmdbg_event *ev);
/** @} */

/**
 * @defgroup names Names and feature helpers
 * @{
 */

/**
 * @param kind a stop kind.
 * @return its short name ("step", "break", ...), "unknown" for others; never NULL.
 */
const char *kvmdbg_stop_name(enum kvmdbg_stop kind);
/**
 * @param type a point type.
 * @return its short name ("sw-break", "hw-break", "watch-write", ...),
 *         "unknown" for others; never NULL.
 */
const char *kvmdbg_type_name(enum kvmdbg_type type);
/**
 * @param feature one KVMDBG_FEAT_* bit.
 * @return its name ("step", "hw_break", ...), or NULL for an unknown bit
 *         (so a caller can list every bit until the first NULL).
 */
const char *kvmdbg_feature_name(uint64_t feature);
/**
 * The verified feature a point type needs, so a VMM can check
 * kvmdbg_probe_verified()'s answer before it offers the type.
 *
 * @param type a point type.
 * @return its KVMDBG_FEAT_* bit (KVMDBG_BREAK_SW: KVMDBG_FEAT_SW_BREAK,
 *         KVMDBG_BREAK_HW: KVMDBG_FEAT_HW_BREAK, KVMDBG_WATCH_*: the watch
 *         bit of its kind), or 0 for an unknown type.
 */
uint64_t kvmdbg_type_feature(enum kvmdbg_type type);
/** @} */

/**
 * @defgroup version Version
 * The headers' version is KVMDBG_VERSION_MAJOR/MINOR/MICRO and
 * KVMDBG_CHECK_VERSION() (<kvmdbg/kvmdbg-version.h>, included above); the
 * library's own is kvmdbg_version().
 * @{
 */

/**
 * The version of the library the program runs with, which can be newer
 * than the headers it was compiled with (KVMDBG_VERSION_STRING).
 *
 * @return "MAJOR.MINOR.MICRO", a static string; never NULL.
 */
const char *kvmdbg_version(void);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* KVMDBG_KVMDBG_H */
