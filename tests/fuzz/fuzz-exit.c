/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: exit classification on both arches.
 *
 * Part 1, the pure decoders (kvmdbg_x86_ops / kvmdbg_arm64_ops .decode):
 * an arbitrary applied hardware state (any slot, any value and control
 * bits) and an arbitrary exit (x86 vector/PC/DR6/DR7, arm64 ESR/FAR/PC).
 * Part 2, the full vCPU path with the fake KVM: points inserted from the
 * input, prepare, two arbitrary exits through handle_exit, prepare again.
 *
 * Part 3, the overlay's sanitiser (guest_slots): arbitrary guest debug
 * registers (x86 DR0-3/DR7, arm64 DBGB/W{C,V}R, MDSCR_EL1, register counts)
 * must come out as slots that are safe to hand to KVM.
 *
 * Invariants: no crash and no sanitizer report; decode is deterministic,
 * names only enabled slots, recognises nothing without naming it; every
 * classification is one of the documented kinds and only reports what the
 * debugger inserted; the breakpoint set, the slots and guest memory are
 * not changed by exits; prepare and handle_exit succeed.
 */
#include <errno.h>
#include <string.h>

#include <linux/kvm.h>

#include "fake-host.h"
#include "fuzz-input.h"
#include "sane.h"

static void fuzz_decode(const struct kvmdbg_arch_ops *a, struct fin *in)
{
	struct kvmdbg_hwstate hw;
	struct kvmdbg_exit ex;
	struct kvmdbg_decoded d1, d2;
	unsigned int nslots = fin_u8(in) % 12;

	memset(&hw, 0, sizeof(hw));
	for (unsigned int i = 0; i < nslots; i++) {
		unsigned int pool = fin_u8(in) % KVMDBG_NR_POOLS;
		unsigned int slot = fin_u8(in) % KVMDBG_MAX_SLOTS;
		struct kvmdbg_hwslot *s = &hw.slot[pool][slot];

		s->value = fin_u64(in);
		s->ctrl = fin_u64(in);
		s->start = fin_u8(in) & 1 ? s->value : fin_u64(in);
		s->len = fin_u8(in) & 1 ? 1ull << (fin_u8(in) % 40) : fin_u64(in);
	}
	memset(&ex, 0, sizeof(ex));
	ex.exception = fin_u8(in) & 1 ? fin_u8(in) % 4 : fin_u32(in);
	ex.pc = fin_u64(in);
	ex.dr6 = fin_u64(in);
	ex.dr7 = fin_u64(in);
	ex.esr = fin_u64(in);
	ex.far = fin_u64(in);

	/* Told exactly which slots are enabled, or nothing: the same. */
	a->decode(&hw, kvmdbg_hw_on(&hw), &ex, &d1);
	a->decode(&hw, ~0u, &ex, &d2);
	FUZZ_REQUIRE(!memcmp(&d1, &d2, sizeof(d1)), "decode depends on more than the enabled slots");
	FUZZ_REQUIRE(d1.write >= -1 && d1.write <= 1, "write %d", d1.write);
	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int slot = 0; slot < KVMDBG_MAX_SLOTS; slot++)
			if (d1.hits & KVMDBG_HIT_BIT(pool, slot))
				FUZZ_REQUIRE(hw.slot[pool][slot].ctrl, "hit of disabled slot %u/%u",
					     pool, slot);
	FUZZ_REQUIRE(!(d1.hits & ~0xffffffffu), "hits %#x", d1.hits);
	if (!d1.recognised)
		FUZZ_REQUIRE(!d1.hits && !d1.step && !d1.swbp && !d1.dbg_access,
			     "unrecognised exit with content");
	if (a->arch == KVMDBG_ARCH_X86_64) {
		FUZZ_REQUIRE(!(d1.raw.x86.dr6_other & ~0x1f80full), "dr6_other %#llx",
			     (unsigned long long)d1.raw.x86.dr6_other);
		FUZZ_REQUIRE(!(d1.hits >> 4), "x86 hit beyond DR3: %#x", d1.hits);
	} else {
		FUZZ_REQUIRE(!d1.raw.x86.dr6_other && !d1.dbg_access, "arm64 decoded x86 bits");
	}
	/* Decoding against nothing finds no slot. */
	memset(&hw, 0, sizeof(hw));
	a->decode(&hw, ~0u, &ex, &d1);
	FUZZ_REQUIRE(!d1.hits, "hit with no slot enabled");
}

static void fuzz_vcpu(enum kvmdbg_arch arch, struct fin *in)
{
	struct kvmdbg_vm_opts o = {.sz = sizeof(o), .mem = &fh_mem_ops, .mem_ctx = &fh};
	static struct kvmdbg_hwpoint points[KVMDBG_MAX_POINTS];
	static struct kvmdbg_slots slots;
	struct kvmdbg_vm *vm;
	struct kvmdbg_vcpu *v;
	struct kvm_run run;
	unsigned int n = fin_u8(in) % 8;

	fh_reset(arch);
	o.features = fin_u8(in) & 1 ? KVMDBG_FEAT_VERIFIED | (fin_u8(in) & 1 ? KVMDBG_FEAT_RF_RESUME : 0) : 0;
	o.allow_overcover = fin_u8(in) & 1;
	if (kvmdbg_vm_new_host(-1, &o, fh_host(), &fh, &vm))
		abort();
	if (kvmdbg_vcpu_new(vm, 0, &run, &v))
		abort();
	for (unsigned int i = 0; i < n; i++) {
		enum kvmdbg_type t = (enum kvmdbg_type)(fin_u8(in) % 5);
		uint64_t addr = fin_u8(in) & 1 ? fin_u64(in) : (fin_bytes(in, 2) % FH_MEM_SIZE);
		(void)kvmdbg_vm_insert(vm, t, addr, fin_u8(in) % 24);
	}
	memcpy(points, vm->points, sizeof(points));
	slots = vm->slots;
	FUZZ_REQUIRE(kvmdbg_vcpu_set_step(v, fin_u8(in) & 1) == 0, "set_step");
	FUZZ_REQUIRE(kvmdbg_vcpu_prepare(v) == 0, "prepare");
	for (int k = 0; k < 3; k++) {
		struct kvmdbg_event ev;
		struct kvmdbg_exit *ex = &fh.v[0].exit;
		int r;

		ex->exception = fin_u8(in) & 1 ? fin_u8(in) % 4 : fin_u32(in);
		/* Often at an inserted point. */
		ex->pc = fin_u8(in) & 1 && vm->points[0].id ? vm->points[0].addr : fin_u64(in);
		ex->dr6 = fin_u8(in) & 1 ? 0xffff0ff0ull | (fin_bytes(in, 2) & 0x700f) : fin_u64(in);
		ex->dr7 = fin_u64(in);
		ex->esr = fin_u8(in) & 1 ? (uint64_t)(0x30 + fin_u8(in) % 16) << 26 | fin_bytes(in, 3)
					 : fin_u64(in);
		ex->far = fin_u8(in) & 1 ? vm->points[0].addr + fin_u8(in) % 16 : fin_u64(in);
		fh.v[0].pc = ex->pc;
		run.exit_reason = KVM_EXIT_DEBUG;
		r = kvmdbg_vcpu_handle_exit(v, &ev);
		/* A breakpoint instruction the memory callbacks cannot read:
		 * whose it is cannot be told, so the read's error. */
		if (r == -EFAULT && fh_swbp_unreadable(ex, arch == KVMDBG_ARCH_X86_64))
			continue;
		FUZZ_REQUIRE(r == 0, "handle_exit %d", r);
		FUZZ_REQUIRE((unsigned int)ev.kind <= KVMDBG_STOP_NONE, "kind %d", ev.kind);
		if (ev.kind == KVMDBG_STOP_BREAK && ev.type == KVMDBG_BREAK_SW) {
			FUZZ_REQUIRE(kvmdbg_swtab_find(&vm->sw, ev.addr) && ev.addr == ev.pc,
				     "software breakpoint %#llx not inserted",
				     (unsigned long long)ev.addr);
		} else if (ev.kind == KVMDBG_STOP_BREAK || ev.kind == KVMDBG_STOP_WATCH) {
			bool found = false;

			for (unsigned int i = 0; i < KVMDBG_MAX_POINTS; i++)
				found |= vm->points[i].id && vm->points[i].type == ev.type &&
					 vm->points[i].addr == ev.addr && vm->points[i].len == ev.len;
			FUZZ_REQUIRE(found, "%s %#llx+%llu not inserted", kvmdbg_type_name(ev.type),
				     (unsigned long long)ev.addr, (unsigned long long)ev.len);
			FUZZ_REQUIRE((ev.kind == KVMDBG_STOP_BREAK) == (ev.type == KVMDBG_BREAK_HW),
				     "kind %d type %d", ev.kind, ev.type);
		} else if (ev.kind == KVMDBG_STOP_STEP) {
			FUZZ_REQUIRE(v->user_step, "step not asked for");
		} else if (ev.kind == KVMDBG_STOP_GUEST) {
			FUZZ_REQUIRE(v->reinject.pending, "guest event not queued");
		}
		FUZZ_REQUIRE(!memcmp(points, vm->points, sizeof(points)), "points changed");
		FUZZ_REQUIRE(!memcmp(&slots, &vm->slots, sizeof(slots)), "slots changed");
		r = kvmdbg_vcpu_prepare(v);
		FUZZ_REQUIRE(r == 0, "prepare %d", r);
		/* What the next exit is decoded against: applied_on is exactly
		 * the enabled slots of the state KVM holds (x86's inline decoder
		 * takes a B bit for a hit by it alone). */
		FUZZ_REQUIRE(!v->applied_valid || v->applied_on == kvmdbg_hw_on(&v->applied),
			     "applied_on %#x, enabled %#x", v->applied_on, kvmdbg_hw_on(&v->applied));
		/* Guest memory: the original, or our instruction where we put it. */
		for (size_t i = 0; i < FH_MEM_SIZE; i++)
			if (fh.mem[i] != fh.orig[i]) {
				bool ours = false;

				for (size_t j = 0; j < vm->sw.cap && !ours; j++)
					ours = vm->sw.e[j].addr != KVMDBG_SWTAB_EMPTY &&
					       i >= vm->sw.e[j].addr &&
					       i - vm->sw.e[j].addr < vm->arch->sw_len;
				FUZZ_REQUIRE(ours, "guest byte %#zx changed", i);
			}
	}
	FUZZ_REQUIRE(kvmdbg_vm_remove_all(vm) == 0, "remove_all");
	FUZZ_REQUIRE(fh_mem_is_orig(), "guest memory not restored");
	kvmdbg_vcpu_free(v);
	kvmdbg_vm_free(vm);
}

static void fuzz_guest_slots(const struct kvmdbg_arch_ops *a, struct fin *in)
{
	struct kvmdbg_guest_regs g;
	struct kvmdbg_hwstate out;
	unsigned int rejected, enabled = 0;
	char why[160];

	memset(&g, 0, sizeof(g));
	g.nr[0] = fin_u8(in);
	g.nr[1] = fin_u8(in);
	if (a->arch == KVMDBG_ARCH_X86_64)
		g.nr[0] = 4, g.nr[1] = 0;
	g.dr6 = fin_u64(in);
	g.dr7 = fin_u64(in);
	g.mdscr = fin_u64(in);
	for (unsigned int p = 0; p < KVMDBG_NR_POOLS; p++)
		for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++) {
			g.value[p][n] = fin_u64(in);
			g.ctrl[p][n] = fin_u64(in);
		}
	if (!a->guest_slots)
		return;
	a->guest_slots(&g, &out, &rejected);
	for (unsigned int p = 0; p < KVMDBG_NR_POOLS; p++)
		for (unsigned int n = 0; n < KVMDBG_MAX_SLOTS; n++) {
			if (!out.slot[p][n].ctrl)
				continue;
			enabled++;
			FUZZ_REQUIRE(n < g.nr[p], "slot %u/%u beyond %u registers", p, n, g.nr[p]);
			FUZZ_REQUIRE(slot_sane(a->arch, p, n, &out.slot[p][n], why, sizeof(why)),
				     "guest slot %u/%u: %s", p, n, why);
		}
	FUZZ_REQUIRE(rejected + enabled <= 2 * KVMDBG_MAX_SLOTS, "rejected %u", rejected);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fin in = {.p = data, .n = size};
	uint8_t mode = fin_u8(&in);
	enum kvmdbg_arch arch = mode & 1 ? KVMDBG_ARCH_ARM64 : KVMDBG_ARCH_X86_64;

	if (mode & 4)
		fuzz_guest_slots(arch == KVMDBG_ARCH_ARM64 ? &kvmdbg_arm64_ops : &kvmdbg_x86_ops, &in);
	else if (mode & 2)
		fuzz_vcpu(arch, &in);
	else
		fuzz_decode(arch == KVMDBG_ARCH_ARM64 ? &kvmdbg_arm64_ops : &kvmdbg_x86_ops, &in);
	return 0;
}
