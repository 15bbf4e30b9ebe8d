/* SPDX-License-Identifier: MIT */
/* Private types shared by the generic files. No arch #ifdef in here. */
#ifndef KVMDBG_INT_H
#define KVMDBG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/arch.h"
#include "kvmdbg/kvmdbg.h"

#define KVMDBG_EXPORT __attribute__((visibility("default")))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Arch-neutral KVM_SET_GUEST_DEBUG control bits; the host glue maps them. */
#define KVMDBG_CTL_ENABLE (1u << 0)
#define KVMDBG_CTL_STEP (1u << 1)
#define KVMDBG_CTL_SW_BP (1u << 2)
#define KVMDBG_CTL_HW (1u << 3)
#define KVMDBG_CTL_BLOCKIRQ (1u << 4)
#define KVMDBG_CTL_INJECT_DB (1u << 5)
#define KVMDBG_CTL_INJECT_BP (1u << 6)
#define KVMDBG_CTL_GD (1u << 7) /* x86: DR7.GD in the host's DR7 (overlay) */

/* Slot owners of the overlay: the guest's register n of a pool. Host point
 * ids stay below KVMDBG_OWNER_SW. */
#define KVMDBG_OWNER_GUEST 0x80000000u
/* The slot a vCPU runs with, in compose only, to catch a software breakpoint
 * another vCPU has lifted (or is about to lift) for its step-over: a hit is
 * that software breakpoint's stop (the slot's start is its address). */
#define KVMDBG_OWNER_SW 0x40000000u
#define KVMDBG_OWNER_GUEST_ID(pool, n) (KVMDBG_OWNER_GUEST | (pool) << 8 | (n))

/* A guest-owned debug exception waiting to be delivered back to the guest. */
struct kvmdbg_reinject {
	bool pending;
	uint32_t exception; /* x86: 1 (#DB) or 3 (#BP) */
	uint64_t dr6;       /* x86: positive-polarity DR6 bits the guest must see */
	uint64_t esr, far;  /* arm64: syndrome and fault address (watchpoints) */
	uint64_t pc;        /* where the exception was taken */
};

/*
 * The ioctl glue of one host arch (lib/arch/<arch>/kvm.c), or a fake KVM in
 * tests. Every function returns 0 or a negative errno and leaves the vCPU
 * as it was on failure.
 */
struct kvmdbg_host_ops {
	const struct kvmdbg_arch_ops *arch;
	/* Fill every field of caps (caps->sz is the library's own size). */
	int (*probe)(int fd, struct kvmdbg_caps *caps);
	int (*probe_guest)(int vcpu_fd, struct kvmdbg_guest_caps *caps);
	int (*probe_verified)(int kvm_fd, uint64_t *features);
	/* KVM_SET_GUEST_DEBUG with KVMDBG_CTL_* bits and the hardware state. */
	int (*set_guest_debug)(int vcpu_fd, uint32_t ctl, const struct kvmdbg_hwstate *hw);
	/* Read the KVM_EXIT_DEBUG in run into exit (arm64 also reads the PC). */
	int (*read_exit)(int vcpu_fd, const struct kvm_run *run, struct kvmdbg_exit *exit);
	/* The vCPU's PC (x86: linear RIP). */
	int (*get_pc)(int vcpu_fd, uint64_t *pc);
	/* x86: set RFLAGS.RF so the next instruction ignores execution
	 * breakpoints. NULL where the arch has no such flag. */
	int (*set_resume_flag)(int vcpu_fd);
	/* Mask interrupts for one internal step and restore them exactly
	 * (arm64 PSTATE.DAIF). NULL where KVMDBG_CTL_BLOCKIRQ does it. */
	int (*mask_irqs)(int vcpu_fd, uint64_t *saved);
	int (*restore_irqs)(int vcpu_fd, uint64_t saved);
	/* Deliver r to the guest before the next KVM_RUN; may return extra
	 * one-shot control bits in *ctl (x86: KVMDBG_CTL_INJECT_DB/BP after
	 * writing the guest's DR6; arm64 emulates the exception entry and
	 * returns none). */
	int (*inject)(int vcpu_fd, const struct kvmdbg_reinject *r, uint32_t *ctl);
	/* inject() emulates the exception entry itself (arm64: register
	 * writes, no ctl bits): prepare calls it after KVM_SET_GUEST_DEBUG
	 * succeeded, so a failure of that leaves the guest untouched. */
	bool inject_emulated;
	/* Overlay: the guest's own debug registers (x86 KVM_GET_DEBUGREGS, arm64
	 * ONE_REG), which KVM keeps while the host's set runs. NULL: no overlay. */
	int (*read_guest_regs)(int vcpu_fd, struct kvmdbg_guest_regs *g);
	/* Overlay: whether the guest, in its state now (at a debug exit), masks
	 * the breakpoint/watchpoint exceptions of its own registers g (arm64:
	 * at EL1 with PSTATE.D set or MDSCR_EL1.KDE clear), so that one of its
	 * slots firing in hardware must not reach it. NULL: never masked. */
	int (*guest_masked)(int vcpu_fd, const struct kvmdbg_guest_regs *g, bool *masked);
	/* x86: whether this host's KVM reports a guest ICEBP's #DB with the PC
	 * still on the ICEBP (VMX: the exit comes before the instruction
	 * completes) rather than after it (SVM). NULL: after it. */
	bool (*icebp_exit_on_insn)(void);
	/* Move the vCPU's PC forward by len bytes (x86: RIP), for an exception
	 * KVM reported before the instruction that raised it as a trap
	 * completed. NULL where never needed. */
	int (*advance_pc)(int vcpu_fd, unsigned int len);
};

/* The glue of the arch this library was built for. */
extern const struct kvmdbg_host_ops kvmdbg_host;

/* ---- hardware slot allocator (slots.c) ---- */

struct kvmdbg_slots {
	unsigned int nr[KVMDBG_NR_POOLS];                     /* usable slots per pool */
	uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS];    /* point id, 0 = free */
	struct kvmdbg_hwslot hw[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS];
};

void kvmdbg_slots_init(struct kvmdbg_slots *s, const struct kvmdbg_limits *lim);
unsigned int kvmdbg_slots_free(const struct kvmdbg_slots *s, unsigned int pool);
/* Give n pieces to owner, lowest free slot first; all or nothing (-ENOSPC).
 * *mask gets the KVMDBG_HIT_BIT()s taken. */
int kvmdbg_slots_alloc(struct kvmdbg_slots *s, uint32_t owner, const struct kvmdbg_piece *p,
		       unsigned int n, uint32_t *mask);
void kvmdbg_slots_release(struct kvmdbg_slots *s, uint32_t mask);
/* Copy the allocated slots into a hardware state. */
void kvmdbg_slots_to_hw(const struct kvmdbg_slots *s, struct kvmdbg_hwstate *hw);

/* ---- software breakpoint table (swbp.c): open addressing, O(1) ---- */

struct kvmdbg_swbp {
	uint64_t addr;
	uint8_t orig[4];  /* the guest's bytes under our instruction */
	uint16_t refs;    /* kvmdbg_vm_insert() references */
	uint16_t lifted;  /* vCPUs stepping over it with the original bytes back:
	                     always the number of attached vCPUs with so_sw at
	                     addr (an entry added while some are keeps them) */
};

#define KVMDBG_SWBP_MAX_REFS UINT16_MAX

struct kvmdbg_swtab {
	struct kvmdbg_swbp *e; /* addr == KVMDBG_SWTAB_EMPTY marks a free entry */
	size_t cap;            /* power of two, or 0 */
	size_t count;          /* entries in e, plus top when top_used */
	/* The breakpoint at the marker's own address (x86: an INT3 at the last
	 * byte of the address space) lives outside e. */
	bool top_used;
	struct kvmdbg_swbp top;
};

#define KVMDBG_SWTAB_EMPTY UINT64_MAX

struct kvmdbg_swbp *kvmdbg_swtab_find(const struct kvmdbg_swtab *t, uint64_t addr);
/* Make room for one more entry (so a following add cannot fail). */
int kvmdbg_swtab_reserve(struct kvmdbg_swtab *t);
/* Add addr (not present; room reserved) and return its entry, refs = 0.
 * Every address can be added, KVMDBG_SWTAB_EMPTY too (as t->top). */
struct kvmdbg_swbp *kvmdbg_swtab_add(struct kvmdbg_swtab *t, uint64_t addr);
void kvmdbg_swtab_del(struct kvmdbg_swtab *t, uint64_t addr);
void kvmdbg_swtab_fini(struct kvmdbg_swtab *t);
size_t kvmdbg_swtab_bytes(const struct kvmdbg_swtab *t);

/* ---- the VM session (vm.c) ---- */

#define KVMDBG_MAX_POINTS (KVMDBG_NR_POOLS * KVMDBG_MAX_SLOTS)

struct kvmdbg_hwpoint {
	uint32_t id; /* unique among live points (1..KVMDBG_OWNER_SW - 1, wrapping
	                past ids in use; failed inserts take none); 0 = unused entry */
	enum kvmdbg_type type;
	uint64_t addr, len;
	unsigned int refs;
	uint32_t slots; /* KVMDBG_HIT_BIT()s it holds */
};

struct kvmdbg_vm {
	/* First: what every prepare and handle_exit reads. */
	atomic_uint_fast64_t gen; /* bumped on every change of the set */
	/* Bumped (under the lock) on every change of the hardware points
	 * alone: what the vCPUs' lock-free copies of them depend on. */
	atomic_uint_fast64_t hw_gen;
	atomic_uint nr_exec;      /* execution breakpoints (hw points + sw entries) */
	/* Software breakpoints in the table. Changed under the lock (seq_cst,
	 * before the generation bump); read without it by cover_sync, whose
	 * publication of a cover pairs with it (see there). */
	atomic_uint nr_sw;
	const struct kvmdbg_host_ops *host;
	const struct kvmdbg_arch_ops *arch;
	int vm_fd;
	struct kvmdbg_caps caps;
	struct kvmdbg_limits lim;
	const struct kvmdbg_mem_ops *mem;
	void *mem_ctx;
	enum kvmdbg_overlay overlay;
	uint64_t features;

	pthread_mutex_t lock;
	uint32_t next_id;         /* the last id a point took */
	struct kvmdbg_hwpoint points[KVMDBG_MAX_POINTS];
	struct kvmdbg_slots slots;
	struct kvmdbg_swtab sw;
	unsigned int nr_vcpus;
	struct kvmdbg_vcpu *vcpus; /* the attached vCPUs (kvmdbg_vcpu.next) */
	atomic_uint nr_cover;      /* vCPUs with cover_on */
};

/* Bump vm->gen: every vCPU re-composes at its next prepare. */
static inline void kvmdbg_bump_gen(struct kvmdbg_vm *vm)
{
	atomic_fetch_add_explicit(&vm->gen, 1, memory_order_release);
}

/* Attached vCPUs that hold a lift of the software breakpoint at addr. Locked. */
unsigned int kvmdbg_lifters_locked(const struct kvmdbg_vm *vm, uint64_t addr);

/* The vCPU's pending step past a breakpoint. */
enum kvmdbg_stepover {
	KVMDBG_SO_NONE = 0,
	KVMDBG_SO_ARMED,   /* a stop at a breakpoint was reported; resume must step past */
	KVMDBG_SO_STEPPING /* the internal step is running */
};

struct kvmdbg_vcpu {
	/* First cache line: everything the no-change prepare and a plain step
	 * exit touch, so the hot path costs one line after KVM_RUN. */
	struct kvmdbg_vm *vm;
	struct kvm_run *run;
	uint64_t gen;            /* VM generation applied to KVM */
	int fd;
	uint32_t applied_ctl;
	bool applied_valid;      /* KVM holds applied/applied_ctl */
	bool dirty;              /* re-apply at the next prepare even if gen is unchanged */
	bool user_step;
	bool guest_stale;        /* overlay: re-read the guest's registers at the next prepare */
	bool gd_stepping;        /* overlay: running one guest MOV DR natively (x86 GD exit) */
	bool so_pc_stale;        /* the VMM changed registers: re-read the pc */
	bool so_sw;              /* a software breakpoint is lifted: a step runs, or
	                            putting it back failed and is pending */
	bool so_irq_masked;      /* interrupts masked for a step (or restoring them
	                            failed and is pending) */
	enum kvmdbg_stepover so;
	uint32_t so_slots;       /* slots disarmed for the step */
	uint64_t so_pc;          /* pc of the stop */
	uint64_t so_sw_addr;     /* the software breakpoint lifted (while so_sw) */
	uint64_t so_irq_saved;
	struct kvmdbg_reinject reinject;

	/* Where this vCPU has a step-over pending (ARMED) or a software
	 * breakpoint lifted (so_sw): the other vCPUs catch a live software
	 * breakpoint there with a hardware slot, or wait (-EAGAIN). Written by
	 * this vCPU's thread (cover_addr first, then cover_on with release),
	 * under vm->lock unless the VM has no software breakpoint at all; read
	 * by the others under vm->lock (cover_on with acquire, then
	 * cover_addr). */
	struct kvmdbg_vcpu *next; /* vm->vcpus */
	atomic_bool cover_on;
	_Atomic uint64_t cover_addr;

	/* The VM's hardware points as they were at vm->hw_gen == pts_gen,
	 * copied under vm->lock, for the lock-free paths: while vm->hw_gen still
	 * equals pts_gen they have not changed since. slot_pt: the host point
	 * holding each slot (id 0: none); exec: the execution breakpoints'
	 * addresses and slots. 0: not built. */
	uint64_t pts_gen;
	uint64_t exec_filter;     /* kvmdbg_exec_bit() of every exec_addr */
	unsigned int nr_exec_pts;
	uint64_t exec_addr[KVMDBG_MAX_SLOTS];
	uint32_t exec_slots[KVMDBG_MAX_SLOTS];
	struct kvmdbg_hwpoint slot_pt[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS];

	struct kvmdbg_hwstate applied;
	uint32_t applied_owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS];

	/* overlay (KVMDBG_OVERLAY_GUEST) */
	struct kvmdbg_guest_regs guest_regs;
	struct kvmdbg_hwstate guest; /* sanitised guest slots, guest numbering */
	unsigned int guest_rejected;
	unsigned int guest_merged, guest_suspended;
	uint64_t nr_reinjected, nr_refreshes;
};

/* Two bits of a 64-bit Bloom filter for an address: no execution breakpoint
 * at pc where the filter lacks either, whatever number are armed (a PC
 * that matches both by chance only looks at the list). */
static inline uint64_t kvmdbg_exec_bit(uint64_t pc)
{
	uint64_t h = pc * 0x9e3779b97f4a7c15ull;

	return 1ull << (h >> 58) | 1ull << ((h >> 52) & 63);
}

/* Write len bytes of guest memory; if the write fails (maybe half-way),
 * write the old bytes back so the guest sees one or the other, never a mix.
 * Returns 0 or the write's negative errno. Called with vm->lock held. */
int kvmdbg_mem_replace(struct kvmdbg_vm *vm, uint64_t addr, const void *new_bytes,
		       const void *old_bytes, size_t len);

/* Internal constructor with an explicit host glue (tests: a fake KVM). */
int kvmdbg_vm_new_host(int vm_fd, const struct kvmdbg_vm_opts *opts,
		       const struct kvmdbg_host_ops *host, struct kvmdbg_vm **out);

/* ---- the ioctl seam (ioctl.c): every ioctl of the glue goes through it ---- */

/* Returns the ioctl's result, or -errno (never -1 with errno). */
/* lib/sized.c: sized structs across the ABI. _in copies the caller's
 * struct into a zeroed full one: -EINVAL (NULL, sz below sizeof(size_t)),
 * -E2BIG (non-zero bytes past the fields this library knows). _out copies a
 * full result into the caller's struct as far as its sz reaches, keeping
 * its sz: -EINVAL (NULL, sz too small). */
int kvmdbg_sized_in(void *dst, size_t dst_size, const void *src);
int kvmdbg_sized_out(void *dst, const void *src, size_t src_size);

int kvmdbg_ioctl(int fd, unsigned long req, void *arg);
/* Tests: replace the ioctl (fault injection, counting). NULL restores. */
typedef int (*kvmdbg_ioctl_fn)(int fd, unsigned long req, void *arg);
void kvmdbg_set_ioctl_hook(kvmdbg_ioctl_fn fn);

/* Size-checked ioctl, as the kernel's selftests do: the argument's type must
 * match the size encoded in the request. */
#define kvmdbg_ioctl_chk(fd, req, arg)                                                          \
	({                                                                                     \
		_Static_assert(_IOC_SIZE(req) == sizeof(*(arg)), "ioctl " #req " argument size"); \
		kvmdbg_ioctl((fd), (req), (arg));                                               \
	})

#endif /* KVMDBG_INT_H */
