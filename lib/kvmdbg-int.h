/* SPDX-License-Identifier: MIT */
/*
 * Private types shared by the generic files. No arch #ifdef in here.
 *
 * Where each concept lives:
 *
 *   concept                                               file
 *   ----------------------------------------------------  ---------------------------
 *   the VM session, insert / remove, its lock and gen     vm.c
 *   the point table: find, new id, by id, exec at a pc,
 *     each vCPU's lock-free copy of it (issue 17)         points.c
 *   hardware slot allocator                               slots.c
 *   software breakpoint table                             swbp.c
 *   vCPU lifecycle, prepare (its no-change check, the
 *     lock-free resume, the composer)                     vcpu.c
 *   step-over (struct kvmdbg_stepover) and the cover      stepover.c
 *   overlay: refresh, merge, attribution to the guest,
 *     re-injection queue, stats                           overlay.c
 *   handle_exit: short entry with the fast paths (step,
 *     host hits), classification in named phases          classify.c
 *   arch encoding, range cover, exit decoding (portable)  arch/<arch>/encode.c
 *   everything a backend provides (arch ops, host ops
 *     taking ctx, micro-VM hooks, probe checks)           arch/backend.h
 *   arch register constants (DR6/DR7, ESR, ...)           arch/<arch>/regs.h
 *   arch ioctl glue (struct kvmdbg_host_ops)              arch/<arch>/kvm.c
 *   verified-probe runner / the arch's checks             probe.c / arch/<arch>/probe.c
 *   sized structs, ioctl seam, capabilities, names        sized.c, ioctl.c, caps.c, names.c
 *
 * Glossary:
 *   applied    the debug state KVM holds for a vCPU (applied, applied_ctl,
 *              applied_owner): what it really ran with, so exits are
 *              classified against it, never against the set as it is now.
 *   lifted     a software breakpoint of ours with the guest's bytes put back
 *              while a vCPU steps over it (kvmdbg_swbp.lifted counts the
 *              vCPUs, kvmdbg_stepover.sw marks the one); the others catch it
 *              in a hardware slot (the cover) or wait (the fence, -EAGAIN).
 *   stale      true when the vCPU prepared, not any more: a hit of a point
 *              removed since, our breakpoint instruction removed since
 *              (KVMDBG_SW_STALE), a guest slot moved since the merge; such an
 *              exit explains nothing and the vCPU just runs again. Also what
 *              must be re-read first (guest_stale, kvmdbg_stepover.pc_stale).
 *   give back  return to the guest what a step-over took (its bytes under a
 *              lifted breakpoint: ours goes back in; its interrupt mask), or
 *              an exception of its own (re-injection). What fails stays
 *              pending and the next prepare retries it first (settle).
 */
#ifndef KVMDBG_INT_H
#define KVMDBG_INT_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "arch/backend.h"
#include "kvmdbg/kvmdbg.h"

/* Everything declared below is the library's own: hidden, so that taking
 * an address (a callback's, a variable's) is PC-relative, not a load from
 * the GOT (issue 17: arm64's linker keeps those loads, another data page
 * at an exit; the definitions are hidden anyway, -fvisibility=hidden). */
#pragma GCC visibility push(hidden)

#define KVMDBG_EXPORT __attribute__((visibility("default")))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Slot owners of the overlay: the guest's register n of a pool. Host point
 * ids stay below KVMDBG_OWNER_SW. */
#define KVMDBG_OWNER_GUEST 0x80000000u
/* The slot a vCPU runs with, in compose only, to catch a software breakpoint
 * another vCPU has lifted (or is about to lift) for its step-over: a hit is
 * that software breakpoint's stop (the slot's start is its address). */
#define KVMDBG_OWNER_SW 0x40000000u
#define KVMDBG_OWNER_GUEST_ID(pool, n) (KVMDBG_OWNER_GUEST | (pool) << 8 | (n))
/* Overlay: the slot a vCPU runs with, in compose only, on the instruction
 * the guest's emulated step exception returns to (v->guest_resume): its hit
 * is a debug exit, which re-reads the guest's registers, and nothing else. */
#define KVMDBG_OWNER_RESUME (KVMDBG_OWNER_SW | 1u)

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
	                     always the number of attached vCPUs with so.sw at
	                     addr (an entry added while some are keeps them) */
};

#define KVMDBG_SWBP_MAX_REFS UINT16_MAX

/*
 * A Bloom filter of the table's addresses, for the lock-free question "can
 * there be a software breakpoint at this address" (issue 17): two bits in
 * one 64-bit word per address, 8 bits per table entry. Written under the
 * VM lock (bits only set while the table lives at this size; all cleared
 * when it empties), read without it. A bigger table gets a new filter; the
 * old one stays allocated (retired) until the table goes, so a reader that
 * still holds it reads valid memory: at most as many bytes again as the
 * current filter.
 */
struct kvmdbg_swfilter {
	struct kvmdbg_swfilter *retired; /* the one before it */
	size_t mask;                     /* words - 1 */
	_Atomic uint64_t *w;             /* mask + 1 words: after the struct, or
	                                    the table's first_w */
};

/* The first size of a table, and of its filter (8 bits an entry). */
#define KVMDBG_SWTAB_MIN_CAP           16
#define KVMDBG_SWFILTER_BITS_PER_ENTRY 8
#define KVMDBG_SWFILTER_MIN_WORDS      (KVMDBG_SWTAB_MIN_CAP * KVMDBG_SWFILTER_BITS_PER_ENTRY / 64)

struct kvmdbg_swtab {
	struct kvmdbg_swbp *e; /* addr == KVMDBG_SWTAB_EMPTY marks a free entry */
	size_t cap;            /* power of two, or 0 */
	size_t count;          /* entries in e, plus top when top_used */
	/* The breakpoint at the marker's own address (x86: an INT3 at the last
	 * byte of the address space) lives outside e. */
	bool top_used;
	struct kvmdbg_swbp top;
	/* Every address of the table, top included; NULL before the first
	 * reserve. Published with seq_cst (see kvmdbg_cover_sync). */
	_Atomic(struct kvmdbg_swfilter *) filter;
	/* The table at its first size and its filter live here, not on the
	 * heap (issue 17: a software breakpoint's hit and step-over then read
	 * the VM's page alone, where the table is inside it, and not two more
	 * pages after each exit); a table that grows moves to the heap, its
	 * first filter retired as any other. */
	struct kvmdbg_swfilter first_filter;
	_Atomic uint64_t first_w[KVMDBG_SWFILTER_MIN_WORDS];
	struct kvmdbg_swbp first_e[KVMDBG_SWTAB_MIN_CAP];
};

#define KVMDBG_SWTAB_EMPTY UINT64_MAX

/* The filter's hash of addr: word index in the low bits, the two bit
 * numbers in the top twelve. */
static inline uint64_t kvmdbg_swfilter_hash(uint64_t addr)
{
	addr ^= addr >> 31;
	addr *= 0xbf58476d1ce4e5b9ull;
	addr ^= addr >> 27;
	return addr;
}

static inline uint64_t kvmdbg_swfilter_bits(uint64_t h)
{
	return 1ull << (h >> 58) | 1ull << ((h >> 52) & 63);
}

/*
 * Whether the table may hold addr, without the lock: false means it does
 * not (as of a moment during the call); true, that it may (a false positive
 * for a few per cent of addresses, or one removed since the table last
 * emptied). Both loads seq_cst: see kvmdbg_cover_sync.
 */
static inline __attribute__((always_inline)) bool kvmdbg_swtab_may_have(const struct kvmdbg_swtab *t,
								       uint64_t addr)
{
	const struct kvmdbg_swfilter *f = atomic_load(&t->filter);
	uint64_t h, bits;

	if (!f)
		return false;
	h = kvmdbg_swfilter_hash(addr);
	bits = kvmdbg_swfilter_bits(h);
	return (atomic_load(&f->w[h & f->mask]) & bits) == bits;
}

static inline __attribute__((always_inline)) size_t kvmdbg_swtab_hash(uint64_t addr, size_t cap)
{
	/* Fibonacci hashing of a splitmix-style mixed key. */
	addr ^= addr >> 31;
	addr *= 0x9e3779b97f4a7c15ull;
	addr ^= addr >> 29;
	return (size_t)(addr >> 17) & (cap - 1);
}

/* addr's entry, or NULL. Inline (issue 17): a software breakpoint's
 * step-over looks it up twice a hit, and under nested TCG a call's return
 * is a lookup of the next translated block. */
static inline __attribute__((always_inline)) struct kvmdbg_swbp *
kvmdbg_swtab_find(const struct kvmdbg_swtab *t, uint64_t addr)
{
	if (addr == KVMDBG_SWTAB_EMPTY)
		return t->top_used ? (struct kvmdbg_swbp *)&t->top : NULL;
	if (!t->cap)
		return NULL;
	for (size_t i = kvmdbg_swtab_hash(addr, t->cap);; i = (i + 1) & (t->cap - 1)) {
		struct kvmdbg_swbp *e = &t->e[i];

		if (e->addr == addr)
			return e;
		if (e->addr == KVMDBG_SWTAB_EMPTY)
			return NULL;
	}
}
/* Make room for one more entry (so a following add cannot fail), with the
 * filter that goes with it. */
int kvmdbg_swtab_reserve(struct kvmdbg_swtab *t);
/* Add addr (not present; room reserved by kvmdbg_swtab_reserve, else NULL)
 * and return its entry, refs = 0. Every address can be added,
 * KVMDBG_SWTAB_EMPTY too (as t->top). */
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

/* The VM's lock (mutex.c): a futex mutex, not recursive. */
struct kvmdbg_mutex {
	_Atomic uint32_t word;
};

void kvmdbg_mutex_init(struct kvmdbg_mutex *m);
void kvmdbg_mutex_lock(struct kvmdbg_mutex *m);
void kvmdbg_mutex_unlock(struct kvmdbg_mutex *m);

/*
 * What the exit paths read of the VM that never changes after
 * kvmdbg_vm_new_host: the VM holds it (vm->hot) and every vCPU a copy
 * (v->hot, taken by kvmdbg_vcpu_new), so that a step exit, a hardware
 * breakpoint's or a watchpoint's hit and their resume read no page of the
 * VM's (issue 17: each page touched after a KVM_RUN costs a TLB refill in
 * a nested bed), nor an ops table's: copies of host->read_exit,
 * set_resume_flag, mask_irqs, restore_irqs, set_guest_debug and of
 * arch->decode, watch_is_fault, reports_data_addr, sw_len and sw_insn.
 */
struct kvmdbg_vm_hot {
	void *host_ctx; /* every host op's ctx */
	int (*read_exit)(void *ctx, int vcpu_fd, const struct kvm_run *run, bool step_pc,
			 struct kvmdbg_exit *exit);
	void (*decode)(const struct kvmdbg_hwstate *applied, uint32_t on,
		       const struct kvmdbg_exit *exit, struct kvmdbg_decoded *out);
	int (*set_resume_flag)(void *ctx, int vcpu_fd); /* NULL without
	                                                   KVMDBG_FEAT_RF_RESUME */
	/* For the user's step (kvmdbg_user_step_masks) and the step-overs. */
	int (*mask_irqs)(void *ctx, int vcpu_fd, uint64_t pc,
			 bool (*insn)(void *arg, uint64_t pc, uint32_t *word), void *arg,
			 uint64_t *saved);
	int (*restore_irqs)(void *ctx, int vcpu_fd, uint64_t saved);
	/* The step-over's fast paths (vcpu.c, step_apply_fast and
	 * kvmdbg_step_back_fast). */
	int (*set_guest_debug)(void *ctx, int vcpu_fd, uint32_t ctl,
			       const struct kvmdbg_hwstate *hw, uint32_t on);
	enum kvmdbg_overlay overlay;
	bool watch_is_fault, reports_data_addr;
	/* kvmdbg_exit_inline(host): handle_exit reads and decodes the exit
	 * inline, after this one test (x86 hosts). */
	bool exit_inline;
	bool block_irq; /* caps.block_irq */
	/* arch->sw_len and sw_insn: a software breakpoint's hit and step-over
	 * read them here, not on the arch's page (issue 17). */
	uint8_t sw_len;
	uint8_t sw_insn[4];
};

/*
 * The VM's generations and execution breakpoint count as a vCPU's lock-free
 * paths read them (v->seen): written, for every attached vCPU, in the
 * critical section of each bump (vm.c's bump_gen after a change of the
 * points or the table, kvmdbg_bump_gen the generation alone for a cover's;
 * kvmdbg_vcpu_new for a new vCPU), so that outside the lock they equal
 * vm->gen, vm->hw_gen and vm->nr_exec and are read from the vCPU's own page
 * (issue 17: a step exit, a hardware breakpoint's or a watchpoint's hit and
 * their resume touch no page of the VM's). gen and hw_gen are stored with
 * release and loaded with acquire, as vm->gen and vm->hw_gen are.
 */
struct kvmdbg_vm_seen {
	atomic_uint_fast64_t gen, hw_gen;
	atomic_uint nr_exec;
	/* vm->sw.filter is there (it never goes: false until the first
	 * software breakpoint's reserve, true after). seq_cst, as the
	 * filter's own load was in cover_near: see kvmdbg_cover_sync. */
	atomic_bool sw_filter;
};

struct kvmdbg_vm {
	/* First: what the exits that reach the VM read (a software
	 * breakpoint's, a cover's; the others read the vCPU's seen and hot),
	 * in the first two cache lines (the struct is page-aligned), and all
	 * that a software breakpoint's step-over reads in its first page. */
	atomic_uint_fast64_t gen; /* bumped on every change of the set */
	/* Bumped (under the lock) on every change of the hardware points
	 * alone: what the vCPUs' lock-free copies of them depend on. */
	atomic_uint_fast64_t hw_gen;
	atomic_uint nr_exec;      /* execution breakpoints (hw points + sw entries) */
	struct kvmdbg_vm_hot hot; /* set once by kvmdbg_vm_new_host */
	uint64_t features;
	struct kvmdbg_swtab sw;   /* its filter: every exit near a software breakpoint */

	const struct kvmdbg_host_ops *host;
	const struct kvmdbg_arch_ops *arch;
	int vm_fd;
	struct kvmdbg_caps caps;
	struct kvmdbg_limits lim;
	const struct kvmdbg_mem_ops *mem;
	void *mem_ctx;
	/* Copy of mem->write (NULL without mem): a software breakpoint's lift
	 * and put-back reach the VMM's callback without its ops table's page
	 * (issue 17). */
	int (*mem_write)(void *ctx, uint64_t gva, const void *buf, size_t len);

	struct kvmdbg_mutex lock;
	uint32_t next_id;         /* the last id a point took */
	struct kvmdbg_hwpoint points[KVMDBG_MAX_POINTS];
	struct kvmdbg_slots slots;
	/* Attached vCPUs: changed under the lock (seq_cst), read without it
	 * by kvmdbg_cover_bump. */
	atomic_uint nr_vcpus;
	struct kvmdbg_vcpu *vcpus; /* the attached vCPUs (kvmdbg_vcpu.next) */
};

/* What a software breakpoint's hit and step-over read of the VM (its
 * generation, the table at its first size and its filter, the lock, the
 * guest-write callback, nr_vcpus) is all in its first page. */
_Static_assert(offsetof(struct kvmdbg_vm, sw) + sizeof(struct kvmdbg_swtab) <= 4096 &&
		       offsetof(struct kvmdbg_vm, nr_vcpus) + sizeof(atomic_uint) <= 4096,
	       "the VM's exit fields in its first page");

/* ---- the point table (points.c), under vm->lock ---- */

/* The live point of this type at addr (execution breakpoints: addr alone;
 * watchpoints: addr and len), or NULL. */
struct kvmdbg_hwpoint *kvmdbg_point_find(struct kvmdbg_vm *vm, enum kvmdbg_type type, uint64_t addr,
					uint64_t len);
/* The id a new point takes (see struct kvmdbg_hwpoint.id). */
uint32_t kvmdbg_point_new_id(const struct kvmdbg_vm *vm);
/* The KVMDBG_HIT_BIT()s of the execution breakpoints at pc. */
uint32_t kvmdbg_point_exec_slots_at(const struct kvmdbg_vm *vm, uint64_t pc);
/* The live point with this id, or NULL (id 0 too). */
const struct kvmdbg_hwpoint *kvmdbg_point_by_id(const struct kvmdbg_vm *vm, uint32_t id);

/* Bump vm->gen: every vCPU re-composes at its next prepare. Locked: the
 * new generation goes into every vCPU's seen.gen (vm.c). */
void kvmdbg_bump_gen(struct kvmdbg_vm *vm);
/* vm->gen, hw_gen, nr_exec and whether the table has its filter into
 * v->seen. Locked. */
void kvmdbg_seen_publish_locked(const struct kvmdbg_vm *vm, struct kvmdbg_vcpu *v);

/* A software breakpoint of ours is at addr. Locked. */
static inline bool kvmdbg_sw_has(const struct kvmdbg_vm *vm, uint64_t addr)
{
	return kvmdbg_swtab_find(&vm->sw, addr) != NULL;
}

/* Attached vCPUs that hold a lift of the software breakpoint at addr. Locked. */
unsigned int kvmdbg_lifters_locked(const struct kvmdbg_vm *vm, uint64_t addr);

/* Write len bytes of guest memory; if the write fails (maybe half-way),
 * write the old bytes back so the guest sees one or the other, never a mix.
 * Returns 0 or the write's negative errno. Called with vm->lock held.
 * Inline: twice a software breakpoint's step-over (issue 17). */
static inline __attribute__((always_inline)) int
kvmdbg_mem_replace(struct kvmdbg_vm *vm, uint64_t addr, const void *new_bytes,
		   const void *old_bytes, size_t len)
{
	int r = vm->mem_write(vm->mem_ctx, addr, new_bytes, len);

	if (!r)
		return 0;
	/* Best effort: the write that failed may have changed some bytes. */
	vm->mem_write(vm->mem_ctx, addr, old_bytes, len);
	return r < 0 ? r : -EIO;
}

/* Internal constructor with an explicit host glue and the ctx its ops get
 * (tests: a fake KVM and its state). */
int kvmdbg_vm_new_host(int vm_fd, const struct kvmdbg_vm_opts *opts,
		       const struct kvmdbg_host_ops *host, void *host_ctx, struct kvmdbg_vm **out);

/* Where a vCPU's step past a breakpoint stands. */
enum kvmdbg_so_state {
	KVMDBG_SO_NONE = 0,
	KVMDBG_SO_ARMED,   /* a stop at a breakpoint was reported; resume must step past */
	KVMDBG_SO_STEPPING /* the internal step is running */
};

/* The bit of bool member field in the flags word of a union of both
 * (struct kvmdbg_vcpu and struct kvmdbg_stepover flags): its byte's lowest. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define KVMDBG_FLAG_BIT(type, field) (1ull << 8 * (offsetof(type, field) - offsetof(type, flags)))
#else
#define KVMDBG_FLAG_BIT(type, field) \
	(1ull << (56 - 8 * (offsetof(type, field) - offsetof(type, flags))))
#endif
#define KVMDBG_SO_FLAG(field)   KVMDBG_FLAG_BIT(struct kvmdbg_stepover, field)
#define KVMDBG_VCPU_FLAG(field) KVMDBG_FLAG_BIT(struct kvmdbg_vcpu, field)

/* A vCPU's step past a breakpoint (stepover.c). */
struct kvmdbg_stepover {
	enum kvmdbg_so_state state;
	uint32_t slots;     /* slots disarmed for the step */
	uint64_t pc;        /* pc of the stop */
	uint64_t sw_addr;   /* the software breakpoint lifted (while sw) */
	uint64_t irq_saved; /* the guest's interrupt mask (while irq_masked) */
	/* Its flags as bools, and as one word (KVMDBG_SO_FLAG). */
	union {
		struct {
			bool pc_stale;      /* the VMM changed registers: re-read the pc */
			bool sw;            /* a software breakpoint is lifted: a step runs, or
			                       putting it back failed and is pending */
			bool irq_masked;    /* interrupts masked for a step, a step-over's or the
			                       user's (or restoring them failed and is pending) */
			/* For resume_fast (vcpu.c), valid while KVM holds the state it ran
			 * with at the stop (a compose voids them: both false). exec_hit: the
			 * stop is a hit of the host's execution breakpoint at pc, from the
			 * vCPU's copy of the points (hits_fast; while kvmdbg_points_cached).
			 * sw_clear (while !sw): no software breakpoint at pc, as the filter
			 * said when kvmdbg_cover_sync published pc as the cover, after the
			 * compose (one inserted since bumped the generation); false where it
			 * did not ask. False, not true, as the unknown: constant stores of
			 * zero, which GCC 12 does not merge into a load from .rodata (one more
			 * data page per exit, bench/count/count --pages). */
			bool exec_hit, sw_clear;
		};
		uint64_t flags;
	};
	/* For each slot in slots, who held it when it was chosen (the point's
	 * id, KVMDBG_OWNER_GUEST_ID): only that owner is disarmed. A step can
	 * outlive a change of the set (KVM_RUN interrupted before the
	 * instruction ran, the VMM reporting its kick): a slot now another
	 * point's stays armed for it. Last: the fields above are read at
	 * every exit, this only with slots. */
	uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS];
};

/* Most slots a step-over disarms that step_apply_fast (vcpu.c) handles:
 * one execution breakpoint's, a few watchpoint pieces. */
#define KVMDBG_STEP_BACK_SLOTS 4

struct kvmdbg_vcpu {
	/* First: everything the no-change prepare and a plain step exit touch,
	 * with seen and hot, what they read of the VM (the struct is
	 * page-aligned: what any exit touches, up to applied_owner, is one
	 * page, and a step exit, a hardware breakpoint's or a watchpoint's
	 * hit touch no page of the VM's). */
	struct kvmdbg_vm *vm;
	struct kvm_run *run;
	uint64_t gen;            /* VM generation applied to KVM */
	int fd;
	uint32_t applied_ctl;
	struct kvmdbg_vm_seen seen; /* the VM's generations, as published to it */
	struct kvmdbg_vm_hot hot;   /* a copy of vm->hot */
	/* Its flags as bools, and as one word for the fast paths' tests of
	 * several at once (KVMDBG_VCPU_FLAG; issue 17). */
	union {
		struct {
			bool applied_valid;      /* KVM holds applied/applied_ctl */
			bool dirty;              /* re-apply at the next prepare even if gen is unchanged */
			bool user_step;
			bool user_step_masks;  /* kvmdbg_user_step_masks: user_step, and the host masks
			                          interrupts for a step itself (arm64) */
			bool guest_stale;        /* overlay: re-read the guest's registers at the next prepare */
			bool gd_stepping;        /* overlay: running one guest MOV DR natively (x86 GD exit) */
			bool guest_step;         /* overlay: the step-over runs the guest's own step (arm64
						    MDSCR_EL1.SS), whose exception it gets at the end */
			bool guest_resume;       /* overlay: catch the guest's return to guest_resume_pc */
		};
		uint64_t flags;
	};
	uint64_t guest_resume_pc; /* ... where its emulated step exception was taken */
	/* Where this vCPU has a step-over pending (ARMED) or a software
	 * breakpoint lifted (so.sw): the other vCPUs catch a live software
	 * breakpoint there with a hardware slot, or wait (-EAGAIN). Written by
	 * this vCPU's thread (cover_addr first, then cover_on with release),
	 * without vm->lock, which it takes only to bump the generation where
	 * a change concerns a software breakpoint; read
	 * by the others under vm->lock (cover_on with acquire, then
	 * cover_addr). See kvmdbg_cover_sync. */
	atomic_bool cover_on;
	_Atomic uint64_t cover_addr;
	/* kvmdbg_cover_sync: the software breakpoint table's filter said none
	 * at cover_clear_addr after a load of vm->gen that gave
	 * cover_clear_gen (0: never; the generation starts at 1). */
	uint64_t cover_clear_addr, cover_clear_gen;
	/* swbp_hit_fast: the table held a software breakpoint at sw_hit_addr,
	 * looked up under the lock at generation sw_hit_gen (0: never). Every
	 * insert and remove of one bumps the generation, so while it is
	 * unchanged another hit there is ours without the lock. */
	uint64_t sw_hit_addr, sw_hit_gen;
	struct kvmdbg_reinject reinject;
	struct kvmdbg_stepover so; /* its owner[] last, past the hot lines */
	struct kvmdbg_vcpu *next; /* vm->vcpus */

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
	/* The way back from a step-over's step without a compose (vcpu.c,
	 * kvmdbg_step_back_fast): while back_valid, applied is the plain state of
	 * generation back_gen with the slots back_slots disarmed (their ctrl
	 * and owner before, lowest slot first, in back_ctrl and back_owner)
	 * and the step; back_ctl is that state's control bits. */
	bool back_valid;
	/* Of applied, for the step-over's fast paths (no loop over the slots):
	 * applied_on has KVMDBG_HIT_BIT of each slot enabled (ctrl != 0,
	 * kvmdbg_hw_on), applied_plain says it is the host's slots alone (no
	 * overlay, no cover slot: no owner with KVMDBG_OWNER_SW's bit). */
	bool applied_plain;
	uint32_t applied_on;
	/* ... and back_on those of back_slots that were enabled. */
	uint32_t back_on;
	uint32_t back_slots, back_ctl;
	uint64_t back_gen;
	uint64_t back_ctrl[KVMDBG_STEP_BACK_SLOTS];
	uint32_t back_owner[KVMDBG_STEP_BACK_SLOTS];

	/* overlay (KVMDBG_OVERLAY_GUEST) */
	struct kvmdbg_guest_regs guest_regs;
	struct kvmdbg_hwstate guest; /* sanitised guest slots, guest numbering */
	unsigned int guest_rejected;
	unsigned int guest_merged, guest_suspended;
	uint64_t nr_reinjected, nr_refreshes;
};

/* The step-over disarms this slot, held now by owner, for v's step. */
static inline bool kvmdbg_stepover_disarms(const struct kvmdbg_vcpu *v, unsigned int pool,
					   unsigned int slot, uint32_t owner)
{
	return v->so.state == KVMDBG_SO_STEPPING && (v->so.slots & KVMDBG_HIT_BIT(pool, slot)) &&
	       owner && v->so.owner[pool][slot] == owner;
}

/* The vCPU runs the overlay (KVMDBG_OVERLAY_GUEST). */
static inline bool kvmdbg_overlay_on(const struct kvmdbg_vcpu *v)
{
	return v->hot.overlay == KVMDBG_OVERLAY_GUEST;
}

/* ---- the vCPU's copy of the point table (points.c), for the lock-free paths ---- */

/* Two bits of a 64-bit Bloom filter for an address: no execution breakpoint
 * at pc where the filter lacks either, whatever number are armed (a PC
 * that matches both by chance only looks at the list). */
static inline uint64_t kvmdbg_exec_bit(uint64_t pc)
{
	uint64_t h = pc * 0x9e3779b97f4a7c15ull;

	return 1ull << (h >> 58) | 1ull << ((h >> 52) & 63);
}

/* Copy what the lock-free paths need of the VM's hardware points into v
 * (struct kvmdbg_vcpu pts_gen), for vm->hw_gen == gen. Locked. */
void kvmdbg_points_cache_locked(struct kvmdbg_vcpu *v, uint64_t gen);

/* The VM's hardware points are still the ones of v's copy. */
static inline bool kvmdbg_points_cached(const struct kvmdbg_vcpu *v)
{
	return v->pts_gen == atomic_load_explicit(&v->seen.hw_gen, memory_order_acquire);
}

/* The slots of the execution breakpoints at pc, from v's copy. */
static inline __attribute__((always_inline)) uint32_t
kvmdbg_cached_exec_slots(const struct kvmdbg_vcpu *v, uint64_t pc)
{
	uint64_t bit = kvmdbg_exec_bit(pc);
	uint32_t slots = 0;

	if ((v->exec_filter & bit) != bit)
		return 0;
	for (unsigned int i = 0; i < v->nr_exec_pts; i++)
		if (v->exec_addr[i] == pc)
			slots |= v->exec_slots[i];
	return slots;
}

/* The host point that held hardware slot pool/slot with id owner, from
 * v's copy (while kvmdbg_points_cached), or NULL: removed since. */
static inline const struct kvmdbg_hwpoint *kvmdbg_cached_point(const struct kvmdbg_vcpu *v,
							       unsigned int pool, unsigned int slot,
							       uint32_t owner)
{
	const struct kvmdbg_hwpoint *p = &v->slot_pt[pool][slot];

	return owner && p->id == owner ? p : NULL;
}

/* ---- the guest's side: overlay, attribution, re-injection (overlay.c) ---- */

/* Re-read the guest's own debug registers; dirty if its slots changed. */
int kvmdbg_overlay_refresh(struct kvmdbg_vcpu *v);
/* Put the guest's enabled slots into the hardware slots the host leaves
 * free. Locked, after the host's slots are in hw. */
void kvmdbg_overlay_merge_locked(struct kvmdbg_vcpu *v, struct kvmdbg_hwstate *hw,
				 uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS]);
/* Queue the guest's own exception for cause at exit ex (decoded as dec),
 * delivered at the next prepare. */
void kvmdbg_reinject_queue(struct kvmdbg_vcpu *v, const struct kvmdbg_decoded *dec,
			   const struct kvmdbg_guest_cause *cause, const struct kvmdbg_exit *ex);
/* The guest's own debug registers as they are at this exit (*out = NULL
 * where the glue cannot read them). */
int kvmdbg_guest_regs_now(struct kvmdbg_vcpu *v, struct kvmdbg_guest_regs *tmp,
			  const struct kvmdbg_guest_regs **out);
/* The guest's own slots, live in hardware, that explain this exit. */
int kvmdbg_guest_own_hits(struct kvmdbg_vcpu *v, const struct kvmdbg_exit *ex, uint32_t *hits);
/* x86 ICEBP: a causeless #DB the byte at the PC proves the guest's. */
int kvmdbg_guest_icebp(struct kvmdbg_vcpu *v, const struct kvmdbg_exit *ex, bool *icebp,
		       unsigned int *skip);

/* ---- the step-over and the cover (stepover.c) ---- */

/*
 * A published cover changed while the VM has software breakpoints (see
 * kvmdbg_cover_sync below): bump the generation if the change concerns a
 * live one (under the lock). v's own state, composed at the generation
 * bumped, is recorded as of the new one (it has no cover of its own).
 *
 * The bump is for the other vCPUs (a vCPU's own cover never goes into its
 * own state: kvmdbg_cover_locked skips it). With this vCPU the only one
 * attached there is nobody to tell, and neither the lock nor the bump is
 * taken (issue 17: a step-over on one vCPU, two changes of its cover). A
 * vCPU attached concurrently still sees this cover at its first compose,
 * which it always makes (applied_valid false): the cover was published
 * (cover_on: a seq_cst store) before nr_vcpus is read here (seq_cst
 * load), and kvmdbg_vcpu_new counts the new vCPU in nr_vcpus (seq_cst)
 * before that compose loads cover_on (seq_cst). If
 * this load read 1, it came before that increment in the single total
 * order of seq_cst operations, so the new vCPU's loads come after the
 * publication and see it (or a later change of it, which syncs again).
 *
 * The test inline, the locked part out of line (stepover.c): under nested
 * TCG a call's return is a lookup of the next translated block, and a
 * software breakpoint's hit on one vCPU makes the test each time.
 */
void kvmdbg_cover_bump_others(struct kvmdbg_vcpu *v, bool was, uint64_t old, bool on,
			      uint64_t addr);
static inline __attribute__((always_inline)) void
kvmdbg_cover_bump(struct kvmdbg_vcpu *v, bool was, uint64_t old, bool on, uint64_t addr)
{
	if (atomic_load(&v->vm->nr_vcpus) <= 1)
		return;
	kvmdbg_cover_bump_others(v, was, old, on, addr);
}

/*
 * Publish where the others must catch a software breakpoint for v: one it
 * has lifted for its step-over, or the place of a reported stop it will
 * step past at its next prepare (where it will lift one, if one is there
 * then). Published with atomics; a change that concerns a live software
 * breakpoint bumps the generation so the others re-compose.
 *
 * Where the VM has no software breakpoint at the old or the new address
 * (the table's filter, kvmdbg_swtab_may_have, says so without the lock), no
 * change can concern one and the lock is not taken (every step, hardware
 * breakpoint and watchpoint stop away from a software breakpoint, however
 * many are set). Publishing first and reading the filter after it, both
 * seq_cst, pairs with kvmdbg_vm_insert, which sets the new address's bits
 * (seq_cst, in the filter it publishes seq_cst if the table grows) before it
 * bumps the generation: either this sees the new breakpoint and takes the
 * lock to decide the bump, or every vCPU that composes after that bump sees
 * this cover. Inline: it is on every exit's fast path. Only v's own cache
 * line is written: no count of the covers in the VM, which every vCPU's
 * stop would modify in the line of vm->gen that every exit reads (the
 * composes that look for covers take vm->lock and walk the vCPUs).
 */
/* v's cover goes down. The callers have seen it on. */
static inline __attribute__((always_inline)) void kvmdbg_cover_off(struct kvmdbg_vcpu *v)
{
	atomic_store(&v->cover_on, false);
}

/*
 * For kvmdbg_cover_sync, after the cover at addr is published: whether the
 * table may hold addr. The filter's answer none is kept with the generation
 * loaded before it (seq_cst, after the publish): a stop at the same place
 * again (every hit of a breakpoint in a loop) takes it while the generation
 * is unchanged, without the hash, however many software breakpoints there
 * are (issue 17). Sound as the filter's own answer is: kvmdbg_vm_insert
 * sets the filter's bits and then bumps the generation, so a load that
 * still gives the old generation after this publish comes before that
 * bump, and every vCPU that composes after the bump sees this cover.
 */
static inline __attribute__((always_inline)) bool cover_near(struct kvmdbg_vcpu *v, uint64_t addr)
{
	struct kvmdbg_vm *vm = v->vm;
	uint64_t gen;

	/* The vCPU's own word, not the VM's page, where the VM has no
	 * software breakpoint (struct kvmdbg_vm_seen). Its seq_cst load
	 * serves as the filter's did: kvmdbg_vm_insert publishes it, seq_cst,
	 * to every vCPU at the bump, so a load that still gives false after
	 * this cover's publish comes before that bump, and every vCPU that
	 * composes after the bump sees this cover. */
	if (!atomic_load(&v->seen.sw_filter))
		return false;
	gen = atomic_load(&vm->gen);
	if (addr == v->cover_clear_addr && gen == v->cover_clear_gen)
		return false;
	if (kvmdbg_swtab_may_have(&vm->sw, addr))
		return true;
	v->cover_clear_addr = addr;
	v->cover_clear_gen = gen;
	return false;
}

static inline __attribute__((always_inline)) void kvmdbg_cover_sync(struct kvmdbg_vcpu *v)
{
	struct kvmdbg_vm *vm = v->vm;
	bool on = v->so.sw || v->so.state == KVMDBG_SO_ARMED;
	uint64_t addr = v->so.sw ? v->so.sw_addr : v->so.pc;
	bool was = atomic_load_explicit(&v->cover_on, memory_order_relaxed);
	uint64_t old = atomic_load_explicit(&v->cover_addr, memory_order_relaxed);
	bool near;

	if (on == was && (!on || addr == old))
		return;
	if (on)
		atomic_store_explicit(&v->cover_addr, addr, memory_order_relaxed);
	atomic_store(&v->cover_on, on);
	near = on && cover_near(v, addr);
	/* Kept for resume_fast (struct kvmdbg_stepover sw_clear). */
	v->so.sw_clear = !near;
	if (near || (was && atomic_load(&v->seen.sw_filter) && kvmdbg_swtab_may_have(&vm->sw, old)))
		kvmdbg_cover_bump(v, was, old, on, addr);
}
/* Add to v's hardware state the slots that catch the others' lifted software
 * breakpoints; false when one is needed and none is free. Locked. */
bool kvmdbg_cover_locked(struct kvmdbg_vcpu *v, struct kvmdbg_hwstate *hw,
			 uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS]);
/* Give the guest back the interrupt mask a step took (arm64 DAIF: a
 * step-over's, or the user's single-step's, see kvmdbg_user_step_masks).
 * On failure it stays pending (so.irq_masked set). */
int kvmdbg_stepover_irqs_give_back(struct kvmdbg_vcpu *v);
/* The same inline, for the user's step exit (handle_exit's short entry):
 * every one gives it back (issue 17). */
static inline __attribute__((always_inline)) int kvmdbg_irqs_give_back_inline(struct kvmdbg_vcpu *v)
{
	int r;

	if (!v->so.irq_masked || !v->hot.restore_irqs)
		return 0;
	r = kvmdbg_restore_irqs(v->hot.restore_irqs, v->hot.host_ctx, v->fd, v->so.irq_saved);
	if (!r)
		v->so.irq_masked = false;
	return r;
}
/*
 * The step-over's step has ended: back to the state from before it without
 * the lock (vcpu.c): 0 done, 1 not this case (prepare composes), -errno
 * with KVM and v as they were; with quiet, 0 for all three (the step's end
 * in handle_exit, which returns it as its own answer: a tail call, one
 * return fewer; the next prepare does what was not done, and reports).
 */
int kvmdbg_step_back_fast(struct kvmdbg_vcpu *v, bool quiet);
/* Put back the software breakpoint a step-over lifted (so.sw). */
int kvmdbg_stepover_unlift(struct kvmdbg_vcpu *v);
/* Give back what a finished or abandoned step-over holds. */
int kvmdbg_stepover_settle(struct kvmdbg_vcpu *v);
/*
 * The user's single-step runs with the guest's interrupts masked by the
 * library (arm64 PSTATE.A, I, F, as a step-over's step): the host has
 * mask_irqs and no KVM_GUESTDBG_BLOCKIRQ (x86 blocks them in KVM instead).
 * Without it a step with an interrupt pending (always, under a slow nested
 * host: the timer) runs the vector, whose handler returns to the stop.
 * Taken before the KVM_RUN that steps (vcpu.c), kept across exits that are
 * not debug exits (MMIO: the step has not completed), given back exactly
 * (the guest's bits and the stepped instruction's own effect) by the debug
 * exit that ends it, before its event is reported (classify.c). One state,
 * so.irq_masked, for it and a step-over's.
 */
static inline bool kvmdbg_user_step_masks(const struct kvmdbg_vcpu *v)
{
	return v->user_step_masks;
}
/* The vCPU goes away: drop its lift and its cover. Locked. */
void kvmdbg_stepover_drop_locked(struct kvmdbg_vcpu *v);
/* A stop at pc was reported: the next prepare steps past what is armed
 * there, and past slots (disarmed for that step, while still held by the
 * owner recorded here for each: owner may be NULL when slots is 0) besides.
 * Inline: the fast paths of handle_exit end with it. _hit: exec_hit says the
 * stop is a hit of the host's execution breakpoint at pc (struct
 * kvmdbg_stepover). */
static inline __attribute__((always_inline)) void
kvmdbg_stepover_arm_hit(struct kvmdbg_vcpu *v, uint64_t pc, uint32_t slots,
			const uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS], bool exec_hit)
{
	v->so.slots = slots;
	/* Kept apart from the store above: merged with a constant slots (0),
	 * GCC 12 loads the 8-byte pair {ARMED, 0} from .rodata, one more
	 * data page per hit (bench/count/count --pages). */
	__asm__ volatile("" ::: "memory");
	v->so.state = KVMDBG_SO_ARMED;
	v->so.pc = pc;
	v->so.pc_stale = false;
	v->so.exec_hit = exec_hit;
	v->so.sw_clear = false; /* until kvmdbg_cover_sync asks the filter */
	KVMDBG_FOR_EACH_SLOT(slots, pool, slot)
		v->so.owner[pool][slot] = owner[pool][slot];
	kvmdbg_cover_sync(v);
}
static inline __attribute__((always_inline)) void
kvmdbg_stepover_arm(struct kvmdbg_vcpu *v, uint64_t pc, uint32_t slots,
		    const uint32_t owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS])
{
	kvmdbg_stepover_arm_hit(v, pc, slots, owner, false);
}
/* End an internal step. */
void kvmdbg_stepover_finish(struct kvmdbg_vcpu *v);
/* The end of the step-over's own step and nothing else: give the mask
 * back, finish, the state from before the step. 0 or -errno (the mask's
 * give-back failed: nothing changed). */
int kvmdbg_stepover_end_fast(struct kvmdbg_vcpu *v);
/* Step past what is armed at the PC of a reported stop. */
int kvmdbg_stepover_begin(struct kvmdbg_vcpu *v, bool *need_rf);
/* Lift our software breakpoint at so.pc for the step and mask the guest's
 * interrupts: 0 done, 1 none there, -errno (nothing changed). */
int kvmdbg_stepover_lift_fast(struct kvmdbg_vcpu *v);
/* Undo a step-over prepare began from saved (a copy of v->so before it):
 * give back what it lifted or masked, and arm it again. */
void kvmdbg_stepover_rollback(struct kvmdbg_vcpu *v, const struct kvmdbg_stepover *saved);
/* The instruction word a step runs at pc (the guest's under our software
 * breakpoint), for the interrupt mask: false when unknown. */
bool kvmdbg_stepover_insn_word(void *v, uint64_t pc, uint32_t *insn);
/* Whether the instruction at pc can stop a step unfinished (x86 REP). */
bool kvmdbg_stepover_insn_unfinished(struct kvmdbg_vcpu *v, uint64_t pc);

/* ---- classification of a debug exit (classify.c) ---- */

/* Whose a breakpoint instruction at the exit's PC is. */
enum kvmdbg_sw_whose {
	KVMDBG_SW_NONE = 0, /* no breakpoint instruction */
	KVMDBG_SW_OURS,     /* ours, in the table */
	KVMDBG_SW_STALE,    /* ours, removed since: the guest's bytes are back */
	KVMDBG_SW_GUEST,    /* the guest's own */
};

/* One exit being classified: what each phase found for the next. */
struct kvmdbg_classify {
	struct kvmdbg_exit ex;
	struct kvmdbg_decoded dec;
	enum kvmdbg_sw_whose sw;
	bool ours_step;         /* a step trap this vCPU asked KVM for */
	uint32_t own_hits;      /* the guest's own slots, live in hardware, that match
	                           (guest numbering) */
	bool guest_dbg_access;  /* a debug-register access trap the guest asked for */
	bool icebp;             /* x86: the guest's ICEBP */
	uint32_t restep_slots;  /* slots the ended step had disarmed, to keep so */
	uint32_t restep_owner[KVMDBG_NR_POOLS][KVMDBG_MAX_SLOTS]; /* and for whom */
	bool cover_hit;         /* the slot catching another vCPU's lift fired */
	uint64_t cover_addr;    /* its address */
	bool have_hit;          /* hit holds the host's point that fired */
	struct kvmdbg_hwpoint hit; /* a copy: the set may change once unlocked */
	bool guest;             /* the guest gets an exception */
	uint32_t guest_hw;      /* hardware slots of the guest's merged slots that fired */
	struct kvmdbg_guest_cause cause;
};

/* The phases of kvmdbg_vcpu_handle_exit() that call no host op, in order;
 * each reads what the ones before it left in c. */
int kvmdbg_classify_swbp(struct kvmdbg_vcpu *v, struct kvmdbg_classify *c);
int kvmdbg_classify_stepover_end(struct kvmdbg_vcpu *v, struct kvmdbg_classify *c);
bool kvmdbg_classify_dbg_access(struct kvmdbg_vcpu *v, const struct kvmdbg_classify *c);
void kvmdbg_classify_hits(struct kvmdbg_vcpu *v, struct kvmdbg_classify *c,
			  struct kvmdbg_event *ev);
void kvmdbg_classify_event(const struct kvmdbg_vcpu *v, const struct kvmdbg_classify *c,
			   struct kvmdbg_event *ev);
void kvmdbg_classify_guest(const struct kvmdbg_vcpu *v, struct kvmdbg_classify *c,
			   const struct kvmdbg_event *ev);
void kvmdbg_classify_finish(struct kvmdbg_vcpu *v, const struct kvmdbg_classify *c,
			    struct kvmdbg_event *ev);

/* lib/sized.c: sized structs across the ABI. _in copies the caller's
 * struct into a zeroed full one: -EINVAL (NULL, sz below sizeof(size_t)),
 * -E2BIG (non-zero bytes past the fields this library knows). _out copies a
 * full result into the caller's struct as far as its sz reaches, keeping
 * its sz: -EINVAL (NULL, sz too small). */
int kvmdbg_sized_in(void *dst, size_t dst_size, const void *src);
int kvmdbg_sized_out(void *dst, const void *src, size_t src_size);

/* ---- the ioctl seam (ioctl.c): the glue's ioctls can go through it ---- */

/* Tests: replace the ioctl (fault injection, counting). NULL restores. */
typedef int (*kvmdbg_ioctl_fn)(int fd, unsigned long req, void *arg);
void kvmdbg_set_ioctl_hook(kvmdbg_ioctl_fn fn);
/* ioctl.c; NULL but in tests. Hidden as all of this header: read
 * PC-relative, not through the GOT. */
extern _Atomic(kvmdbg_ioctl_fn) kvmdbg_ioctl_hook;

/* Returns the ioctl's result, or -errno (never -1 with errno), through the
 * hook where one is set: the ioctls of probing and of the micro-VMs, made
 * once. Inline in each caller (issue 17): under nested TCG a call and its
 * return are each a lookup of the next translated block. */
static inline __attribute__((always_inline)) int kvmdbg_ioctl(int fd, unsigned long req, void *arg)
{
	kvmdbg_ioctl_fn hook = atomic_load_explicit(&kvmdbg_ioctl_hook, memory_order_relaxed);
	int r;

	if (__builtin_expect(hook != NULL, 0))
		return hook(fd, req, arg);
	r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

/*
 * The KVM glue's host context (vm->hot.host_ctx, and each vCPU's copy in
 * v->hot): NULL, the vCPUs' ioctls go straight to the kernel; or
 * KVMDBG_IOCTL_SEAM, they go through the hook as kvmdbg_ioctl's do. The
 * vCPUs' ioctls are those of every exit and resume: without the seam they
 * load nothing but their arguments (issue 17: the hook is a variable on a
 * page nothing else of an exit touches, one TLB refill more at each exit
 * in a nested-TCG bed). A VM has the seam where kvmdbg_ioctl_seam_default
 * was set when it was created (tests/common/kvm-util.c sets it in every
 * program of the tests with KVM) or kvmdbg_vm_ioctl_seam set it (the bench,
 * for its counts only).
 */
#define KVMDBG_IOCTL_SEAM ((void *)&kvmdbg_ioctl_hook)
extern bool kvmdbg_ioctl_seam_default;
/* The seam on or off for vm's vCPUs, and for those attached later; none of
 * them may be in the library meanwhile. -EINVAL: vm NULL or not the KVM
 * glue's (a test's fake host has its own context). */
int kvmdbg_vm_ioctl_seam(struct kvmdbg_vm *vm, bool on);

/* kvmdbg_ioctl out of line (ioctl.c), for the seam: off the exits' pages. */
int kvmdbg_ioctl_hooked(int fd, unsigned long req, void *arg);

/* A vCPU's ioctl in the KVM glue: ctx its host context, as above. */
static inline __attribute__((always_inline)) int kvmdbg_ioctl_in(void *ctx, int fd,
								 unsigned long req, void *arg)
{
	int r;

	if (__builtin_expect(ctx != NULL, 0))
		return kvmdbg_ioctl_hooked(fd, req, arg);
	r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

/* Size-checked ioctls, as the kernel's selftests do: the argument's type
 * must match the size encoded in the request. */
#define KVMDBG_IOC_CHECK(req, arg) \
	_Static_assert(_IOC_SIZE(req) == sizeof(*(arg)), "ioctl " #req " argument size")
#define kvmdbg_ioctl_chk(fd, req, arg)            \
	({                                        \
		KVMDBG_IOC_CHECK(req, arg);       \
		kvmdbg_ioctl((fd), (req), (arg)); \
	})
#define kvmdbg_ioctl_in_chk(ctx, fd, req, arg)              \
	({                                                  \
		KVMDBG_IOC_CHECK(req, arg);                 \
		kvmdbg_ioctl_in((ctx), (fd), (req), (arg)); \
	})

#pragma GCC visibility pop

#endif /* KVMDBG_INT_H */
