/* SPDX-License-Identifier: MIT */
/*
 * One debug session per VM: the VM-wide breakpoint set, its generation
 * number and its lock. vCPUs pick up changes at their next prepare.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvmdbg-int.h"

static bool type_valid(enum kvmdbg_type type)
{
	return type >= KVMDBG_BREAK_SW && type <= KVMDBG_WATCH_ACCESS;
}

static bool is_exec(enum kvmdbg_type type)
{
	return type == KVMDBG_BREAK_SW || type == KVMDBG_BREAK_HW;
}

int kvmdbg_vm_new_host(int vm_fd, const struct kvmdbg_vm_opts *opts,
		       const struct kvmdbg_host_ops *host, void *host_ctx, struct kvmdbg_vm **out)
{
	struct kvmdbg_vm_opts o = {.sz = sizeof(o)};
	struct kvmdbg_vm *vm;
	void *mem;
	int r;

	if (!out || !host)
		return -EINVAL;
	*out = NULL;
	if (opts) {
		r = kvmdbg_sized_in(&o, sizeof(o), opts);
		if (r)
			return r;
	}
	if (o.overlay != KVMDBG_OVERLAY_OFF && o.overlay != KVMDBG_OVERLAY_GUEST)
		return -EINVAL;
	if (o.mem && (!o.mem->read || !o.mem->write))
		return -EINVAL;

	/* Page-aligned: what an exit reads of it is one page (issue 17). */
	if (posix_memalign(&mem, 4096, sizeof(*vm)))
		return -ENOMEM;
	vm = memset(mem, 0, sizeof(*vm));
	vm->caps.sz = sizeof(vm->caps);
	r = host->probe(host_ctx, vm_fd, &vm->caps);
	if (r) {
		free(vm);
		return r;
	}
	if (!vm->caps.guest_debug) {
		free(vm);
		return -ENOTTY;
	}
	if (o.overlay == KVMDBG_OVERLAY_GUEST &&
	    (!vm->caps.guest_state || !host->read_guest_regs || !host->arch->guest_slots)) {
		free(vm);
		return -EOPNOTSUPP;
	}

	kvmdbg_mutex_init(&vm->lock);
	vm->host = host;
	vm->hot.host_ctx = host_ctx;
	vm->arch = host->arch;
	vm->hot.read_exit = host->read_exit;
	vm->hot.exit_inline = kvmdbg_exit_inline(host);
	/* Only where RF resumes (resume_fast tests the pointer alone). */
	vm->hot.set_resume_flag = o.features & KVMDBG_FEAT_RF_RESUME ? host->set_resume_flag : NULL;
	vm->hot.mask_irqs = host->mask_irqs;
	vm->hot.restore_irqs = host->restore_irqs;
	vm->hot.set_guest_debug = host->set_guest_debug;
	vm->hot.decode = host->arch->decode;
	vm->hot.watch_is_fault = host->arch->watch_is_fault;
	vm->hot.reports_data_addr = host->arch->reports_data_addr;
	vm->vm_fd = vm_fd;
	vm->mem = o.mem;
	vm->mem_ctx = o.mem_ctx;
	vm->mem_write = o.mem ? o.mem->write : NULL;
	vm->hot.overlay = o.overlay;
	vm->features = o.features;
	vm->lim.allow_overcover = o.allow_overcover != 0;
	vm->hot.block_irq = vm->caps.block_irq;
	_Static_assert(sizeof(vm->hot.sw_insn) == sizeof(host->arch->sw_insn), "sw_insn");
	vm->hot.sw_len = (uint8_t)host->arch->sw_len;
	memcpy(vm->hot.sw_insn, host->arch->sw_insn, sizeof(vm->hot.sw_insn));
	if (vm->caps.hw_debug) {
		vm->lim.nr[KVMDBG_POOL_BP] = vm->caps.hw_breakpoints;
		vm->lim.nr[KVMDBG_POOL_WP] = vm->arch->shared_pool ? 0 : vm->caps.hw_watchpoints;
	}
	kvmdbg_slots_init(&vm->slots, &vm->lim);
	atomic_init(&vm->gen, 1);
	atomic_init(&vm->hw_gen, 1);
	*out = vm;
	return 0;
}

KVMDBG_EXPORT int kvmdbg_vm_new(int vm_fd, const struct kvmdbg_vm_opts *opts,
				struct kvmdbg_vm **out)
{
	return kvmdbg_vm_new_host(vm_fd, opts, &kvmdbg_host,
				  kvmdbg_ioctl_seam_default ? KVMDBG_IOCTL_SEAM : NULL, out);
}

KVMDBG_WARM void kvmdbg_seen_publish_locked(const struct kvmdbg_vm *vm, struct kvmdbg_vcpu *v)
{
	atomic_store_explicit(&v->seen.nr_exec,
			      atomic_load_explicit(&vm->nr_exec, memory_order_relaxed),
			      memory_order_relaxed);
	atomic_store_explicit(&v->seen.hw_gen,
			      atomic_load_explicit(&vm->hw_gen, memory_order_relaxed),
			      memory_order_release);
	atomic_store_explicit(&v->seen.gen, atomic_load_explicit(&vm->gen, memory_order_relaxed),
			      memory_order_release);
	if (!atomic_load_explicit(&v->seen.sw_filter, memory_order_relaxed) &&
	    atomic_load_explicit(&vm->sw.filter, memory_order_relaxed))
		atomic_store(&v->seen.sw_filter, true);
}

/* Every attached vCPU is told (struct kvmdbg_vm_seen): the lock-free paths
 * compare v->seen with what they applied, not vm->gen, and read no page of
 * the VM's. The generation alone: a cover's bump (stepover.c) changes
 * nothing else that seen holds. */
KVMDBG_WARM void kvmdbg_bump_gen(struct kvmdbg_vm *vm)
{
	uint64_t gen = atomic_fetch_add_explicit(&vm->gen, 1, memory_order_release) + 1;

	for (struct kvmdbg_vcpu *v = vm->vcpus; v; v = v->next)
		atomic_store_explicit(&v->seen.gen, gen, memory_order_release);
}

/* A change of the points or the table: the generation bumped, and all
 * that seen holds published (bump_hw_gen and the changes of nr_exec and
 * of the table's filter come before it in the same critical section). */
static void bump_gen(struct kvmdbg_vm *vm)
{
	atomic_fetch_add_explicit(&vm->gen, 1, memory_order_release);
	for (struct kvmdbg_vcpu *v = vm->vcpus; v; v = v->next)
		kvmdbg_seen_publish_locked(vm, v);
}

/* The hardware points changed: before the generation bump, in the same
 * critical section (resume_fast in vcpu.c relies on it: the generation
 * unchanged since a compose says the vCPU's copy of the points is too;
 * the vCPUs hear of both at once, bump_gen). */
static void bump_hw_gen(struct kvmdbg_vm *vm)
{
	atomic_fetch_add_explicit(&vm->hw_gen, 1, memory_order_release);
}

KVMDBG_WARM unsigned int kvmdbg_lifters_locked(const struct kvmdbg_vm *vm, uint64_t addr)
{
	unsigned int n = 0;

	for (const struct kvmdbg_vcpu *v = vm->vcpus; v; v = v->next)
		n += v->so.sw && v->so.sw_addr == addr;
	return n;
}

/* Validate what every type shares; the arch cover checks the rest. */
static int check_point(struct kvmdbg_vm *vm, enum kvmdbg_type type, uint64_t addr, uint64_t len)
{
	if (!vm || !type_valid(type))
		return -EINVAL;
	if (!is_exec(type) && len == 0)
		return -EINVAL;
	if (len && addr + (len - 1) < addr)
		return -EINVAL;
	if (type == KVMDBG_BREAK_SW) {
		if (!vm->caps.sw_breakpoints || !vm->mem)
			return -EOPNOTSUPP;
		if (addr % vm->arch->sw_align || addr + (vm->arch->sw_len - 1) < addr)
			return -EINVAL;
		return 0;
	}
	if (!vm->caps.hw_debug)
		return -EOPNOTSUPP;
	return 0;
}

static int sw_insert_locked(struct kvmdbg_vm *vm, uint64_t addr)
{
	const struct kvmdbg_arch_ops *a = vm->arch;
	struct kvmdbg_swbp *e = kvmdbg_swtab_find(&vm->sw, addr);
	unsigned int lifters;
	uint8_t orig[4];
	int r;

	if (e) {
		if (e->refs >= KVMDBG_SWBP_MAX_REFS)
			return -EOVERFLOW;
		e->refs++;
		return 0;
	}
	r = kvmdbg_swtab_reserve(&vm->sw);
	if (r)
		return r;
	r = vm->mem->read(vm->mem_ctx, addr, orig, a->sw_len);
	if (r)
		return r < 0 ? r : -EIO;
	/* Removed and inserted again while vCPUs still step over it with the
	 * guest's bytes back: the new entry takes over their lifts, and the
	 * last of them to finish writes our instruction (never under a step). */
	lifters = kvmdbg_lifters_locked(vm, addr);
	if (!lifters) {
		r = kvmdbg_mem_replace(vm, addr, a->sw_insn, orig, a->sw_len);
		if (r)
			return r;
	}
	e = kvmdbg_swtab_add(&vm->sw, addr);
	memcpy(e->orig, orig, a->sw_len);
	e->refs = 1;
	e->lifted = (uint16_t)lifters;
	atomic_fetch_add_explicit(&vm->nr_exec, 1, memory_order_relaxed);
	bump_gen(vm);
	return 0;
}

static int hw_insert_locked(struct kvmdbg_vm *vm, enum kvmdbg_type type, uint64_t addr,
			    uint64_t len)
{
	struct kvmdbg_piece pieces[KVMDBG_MAX_PIECES];
	struct kvmdbg_hwpoint *p = kvmdbg_point_find(vm, type, addr, len);
	uint32_t mask, id;
	int n, r;

	if (p) {
		if (p->refs == UINT32_MAX)
			return -EOVERFLOW;
		p->refs++;
		return 0;
	}
	n = vm->arch->cover(&vm->lim, type, addr, len, pieces, KVMDBG_MAX_PIECES);
	if (n < 0)
		return n;
	/* Every point holds at least one slot, so the array is full only when
	 * every slot is taken: that is -ENOSPC, never a search past its end. */
	for (p = vm->points; p < vm->points + KVMDBG_MAX_POINTS && p->id; p++)
		;
	if (p == vm->points + KVMDBG_MAX_POINTS)
		return -ENOSPC;
	id = kvmdbg_point_new_id(vm);
	r = kvmdbg_slots_alloc(&vm->slots, id, pieces, (unsigned int)n, &mask);
	if (r)
		return r;
	vm->next_id = id; /* only a point that exists takes an id */
	*p = (struct kvmdbg_hwpoint){
		.id = id,
		.type = type,
		.addr = addr,
		.len = len,
		.refs = 1,
		.slots = mask,
	};
	if (type == KVMDBG_BREAK_HW)
		atomic_fetch_add_explicit(&vm->nr_exec, 1, memory_order_relaxed);
	bump_hw_gen(vm);
	bump_gen(vm);
	return 0;
}

KVMDBG_EXPORT int kvmdbg_vm_insert(struct kvmdbg_vm *vm, enum kvmdbg_type type, uint64_t addr,
				uint64_t len)
{
	int r = check_point(vm, type, addr, len);

	if (r)
		return r;
	kvmdbg_mutex_lock(&vm->lock);
	if (type == KVMDBG_BREAK_SW)
		r = sw_insert_locked(vm, addr);
	else
		r = hw_insert_locked(vm, type, addr, len);
	kvmdbg_mutex_unlock(&vm->lock);
	return r;
}

/* Put the guest's bytes back under a software breakpoint. */
static int sw_restore_locked(struct kvmdbg_vm *vm, struct kvmdbg_swbp *e)
{
	if (e->lifted)
		return 0; /* a vCPU stepping over it already put them back */
	return kvmdbg_mem_replace(vm, e->addr, e->orig, vm->arch->sw_insn, vm->arch->sw_len);
}

static void hw_free_locked(struct kvmdbg_vm *vm, struct kvmdbg_hwpoint *p)
{
	if (p->type == KVMDBG_BREAK_HW)
		atomic_fetch_sub_explicit(&vm->nr_exec, 1, memory_order_relaxed);
	kvmdbg_slots_release(&vm->slots, p->slots);
	memset(p, 0, sizeof(*p));
	bump_hw_gen(vm);
}

KVMDBG_EXPORT int kvmdbg_vm_remove(struct kvmdbg_vm *vm, enum kvmdbg_type type, uint64_t addr,
				uint64_t len)
{
	int r = 0;

	if (!vm || !type_valid(type))
		return -EINVAL;
	kvmdbg_mutex_lock(&vm->lock);
	if (type == KVMDBG_BREAK_SW) {
		struct kvmdbg_swbp *e = kvmdbg_swtab_find(&vm->sw, addr);

		if (!e) {
			r = -ENOENT;
		} else if (e->refs > 1) {
			e->refs--;
		} else {
			r = sw_restore_locked(vm, e);
			if (!r) {
				kvmdbg_swtab_del(&vm->sw, addr);
				atomic_fetch_sub_explicit(&vm->nr_exec, 1, memory_order_relaxed);
				bump_gen(vm);
			}
		}
	} else {
		struct kvmdbg_hwpoint *p = kvmdbg_point_find(vm, type, addr, len);

		if (!p) {
			r = -ENOENT;
		} else if (--p->refs == 0) {
			hw_free_locked(vm, p);
			bump_gen(vm);
		}
	}
	kvmdbg_mutex_unlock(&vm->lock);
	return r;
}

KVMDBG_EXPORT int kvmdbg_vm_slots_needed(struct kvmdbg_vm *vm, enum kvmdbg_type type,
				      uint64_t addr, uint64_t len)
{
	struct kvmdbg_piece pieces[KVMDBG_MAX_PIECES];
	struct kvmdbg_limits lim;
	int r = check_point(vm, type, addr, len);

	if (r)
		return r;
	if (type == KVMDBG_BREAK_SW)
		return 0;
	kvmdbg_mutex_lock(&vm->lock);
	if (kvmdbg_point_find(vm, type, addr, len)) {
		kvmdbg_mutex_unlock(&vm->lock);
		return 0;
	}
	lim = vm->lim;
	kvmdbg_mutex_unlock(&vm->lock);
	/* Count without the host's limit, so a caller learns how many it needs. */
	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		if (lim.nr[pool])
			lim.nr[pool] = KVMDBG_MAX_PIECES;
	return vm->arch->cover(&lim, type, addr, len, pieces, KVMDBG_MAX_PIECES);
}

static int remove_all_locked(struct kvmdbg_vm *vm)
{
	int first = 0;

	for (unsigned int i = 0; i < KVMDBG_MAX_POINTS; i++)
		if (vm->points[i].id)
			hw_free_locked(vm, &vm->points[i]);
	/* The one at the table's marker address, kept outside its array. */
	if (vm->sw.top_used) {
		first = sw_restore_locked(vm, &vm->sw.top);
		if (!first) {
			kvmdbg_swtab_del(&vm->sw, KVMDBG_SWTAB_EMPTY);
			atomic_fetch_sub_explicit(&vm->nr_exec, 1, memory_order_relaxed);
		}
	}
	for (size_t i = 0; i < vm->sw.cap;) {
		struct kvmdbg_swbp *e = &vm->sw.e[i];
		int r;

		if (e->addr == KVMDBG_SWTAB_EMPTY) {
			i++;
			continue;
		}
		r = sw_restore_locked(vm, e);
		if (r) {
			if (!first)
				first = r;
			i++;
			continue;
		}
			/* Deletion may shift a later entry into slot i: look again. */
		kvmdbg_swtab_del(&vm->sw, e->addr);
		atomic_fetch_sub_explicit(&vm->nr_exec, 1, memory_order_relaxed);
	}
	bump_gen(vm);
	return first;
}

KVMDBG_EXPORT int kvmdbg_vm_remove_all(struct kvmdbg_vm *vm)
{
	int r;

	if (!vm)
		return -EINVAL;
	kvmdbg_mutex_lock(&vm->lock);
	r = remove_all_locked(vm);
	kvmdbg_mutex_unlock(&vm->lock);
	return r;
}

KVMDBG_EXPORT int kvmdbg_vm_free(struct kvmdbg_vm *vm)
{
	if (!vm)
		return 0;
	kvmdbg_mutex_lock(&vm->lock);
	/* Attached vCPUs point at the session: refuse rather than leave them
	 * dangling. */
	if (vm->nr_vcpus) {
		kvmdbg_mutex_unlock(&vm->lock);
		return -EBUSY;
	}
	remove_all_locked(vm);
	kvmdbg_mutex_unlock(&vm->lock);
	kvmdbg_swtab_fini(&vm->sw);
	free(vm);
	return 0;
}
