/* SPDX-License-Identifier: MIT */
/* Model-based checking of the generic core: see model.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <linux/kvm.h>

#include "arch/arm64/regs.h"
#include "arch/x86/regs.h"
#include "fake-host.h"
#include "model.h"

#define NV 2       /* vCPUs */
#define MAXP 64    /* model points of each kind */
#define LOGN 12    /* operations kept for failure messages */

#define ARM64_OUR_IMM 0x4b44u

struct mhw {
	bool used;
	enum kvmdbg_type type;
	uint64_t addr, len;
	unsigned int refs;
	uint32_t id; /* the library's point id */
	int n;
	struct kvmdbg_piece pc[KVMDBG_MAX_PIECES];
};

struct msw {
	bool used;
	uint64_t addr;
	unsigned int refs;
};

enum gen { GEN_STEP, GEN_HW, GEN_SW, GEN_JUNK };

struct pend {
	bool on;
	enum gen what;
	bool step;        /* the exit carries a step trap */
	bool hw;          /* the exit carries a hit of slot (pool, slot) */
	unsigned int pool, slot;
	uint32_t id;      /* the slot's owner when the vCPU prepared */
	bool unique;      /* no other armed slot can explain the exit */
	uint64_t addr;    /* GEN_SW: the breakpoint's address */
};

struct mvcpu {
	bool prepared;    /* prepared since its last exit: it may "run" */
	struct pend p;
	bool armed;       /* the last exit was reported: the next prepare steps past it */
	uint64_t report_pc;
	enum kvmdbg_stop report_kind;
	bool pc_moved;
};

struct ctx {
	struct model_src *src;
	struct model_stats *st;
	char *err;
	size_t errlen;
	bool failed, exhausted;
	unsigned long nops;
	const struct kvmdbg_arch_ops *a;
	struct kvmdbg_vm *vm;
	struct kvmdbg_vcpu *v[NV];
	struct kvm_run run[NV];
	uint64_t features;
	struct mhw hw[MAXP];
	struct msw sw[MAXP];
	struct mvcpu mv[NV];
	char log[LOGN][112];
	unsigned int logpos;
};

/* ---- choices ---- */

static uint8_t get8(struct ctx *c)
{
	struct model_src *s = c->src;

	if (s->data) {
		if (s->pos >= s->len) {
			c->exhausted = true;
			return 0;
		}
		return s->data[s->pos++];
	}
	/* splitmix64 */
	s->seed += 0x9e3779b97f4a7c15ull;
	{
		uint64_t z = s->seed;

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		return (uint8_t)((z ^ (z >> 31)) >> 24);
	}
}

static uint64_t pick(struct ctx *c, uint64_t n)
{
	uint64_t x = get8(c);

	if (n > 256)
		x |= (uint64_t)get8(c) << 8;
	if (n > 65536)
		x |= (uint64_t)get8(c) << 16 | (uint64_t)get8(c) << 24;
	return n ? x % n : 0;
}

static uint64_t pick64(struct ctx *c)
{
	uint64_t x = 0;

	for (int i = 0; i < 8; i++)
		x = x << 8 | get8(c);
	return x;
}

/* ---- failure reporting ---- */

static void logop(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logop(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->log[c->logpos % LOGN], sizeof(c->log[0]), fmt, ap);
	va_end(ap);
	c->logpos++;
}

static bool fail(struct ctx *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(struct ctx *c, int line, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (c->failed)
		return false;
	c->failed = true;
	n = (size_t)snprintf(c->err, c->errlen, "%s: op %lu (model.c:%d): ", c->a->name,
			     c->nops, line);
	if (n >= c->errlen)
		return false;
	va_start(ap, fmt);
	n += (size_t)vsnprintf(c->err + n, c->errlen - n, fmt, ap);
	va_end(ap);
	for (unsigned int i = c->logpos > LOGN ? c->logpos - LOGN : 0; i < c->logpos; i++) {
		if (n >= c->errlen)
			break;
		n += (size_t)snprintf(c->err + n, c->errlen - n, "\n  #%u %s", i, c->log[i % LOGN]);
	}
	return false;
}

#define CHECK(cond, ...)                                    \
	do {                                                \
		if (!(cond))                                \
			return fail(c, __LINE__, __VA_ARGS__); \
	} while (0)

/* ---- the model ---- */

static bool is_exec(enum kvmdbg_type t)
{
	return t == KVMDBG_BREAK_SW || t == KVMDBG_BREAK_HW;
}

static struct mhw *m_find_hw(struct ctx *c, enum kvmdbg_type t, uint64_t addr, uint64_t len)
{
	for (int i = 0; i < MAXP; i++) {
		struct mhw *m = &c->hw[i];

		if (m->used && m->type == t && m->addr == addr &&
		    (t == KVMDBG_BREAK_HW || m->len == len))
			return m;
	}
	return NULL;
}

static struct mhw *m_hw_by_id(struct ctx *c, uint32_t id)
{
	for (int i = 0; i < MAXP && id; i++)
		if (c->hw[i].used && c->hw[i].id == id)
			return &c->hw[i];
	return NULL;
}

static struct msw *m_find_sw(struct ctx *c, uint64_t addr)
{
	for (int i = 0; i < MAXP; i++)
		if (c->sw[i].used && c->sw[i].addr == addr)
			return &c->sw[i];
	return NULL;
}

static unsigned int m_sw_count(struct ctx *c)
{
	unsigned int n = 0;

	for (int i = 0; i < MAXP; i++)
		n += c->sw[i].used;
	return n;
}

static unsigned int m_used(struct ctx *c, unsigned int pool)
{
	unsigned int n = 0;

	for (int i = 0; i < MAXP; i++)
		for (int j = 0; c->hw[i].used && j < c->hw[i].n; j++)
			n += c->hw[i].pc[j].pool == pool;
	return n;
}

static const struct kvmdbg_hwpoint *lib_point(struct ctx *c, uint32_t id)
{
	for (unsigned int i = 0; i < KVMDBG_MAX_POINTS && id; i++)
		if (c->vm->points[i].id == id)
			return &c->vm->points[i];
	return NULL;
}

static bool mem_is_insn(struct ctx *c, uint64_t addr)
{
	return addr < FH_MEM_SIZE && FH_MEM_SIZE - addr >= c->a->sw_len &&
	       !memcmp(fh.mem + addr, c->a->sw_insn, c->a->sw_len);
}

/* Everything VM-wide: points, slots, software breakpoints, guest memory. */
static bool check_vm(struct ctx *c)
{
	struct kvmdbg_vm *vm = c->vm;
	static uint8_t expect[FH_MEM_SIZE];
	unsigned int n_lib = 0, n_model = 0;

	for (unsigned int i = 0; i < KVMDBG_MAX_POINTS; i++) {
		const struct kvmdbg_hwpoint *p = &vm->points[i];
		const struct mhw *m;
		bool used[KVMDBG_MAX_PIECES] = {false};

		if (!p->id)
			continue;
		n_lib++;
		m = m_hw_by_id(c, p->id);
		CHECK(m, "library point %u (%s %#llx+%llu) is not in the model", p->id,
		      kvmdbg_type_name(p->type), (unsigned long long)p->addr,
		      (unsigned long long)p->len);
		CHECK(p->type == m->type && p->addr == m->addr &&
			      (p->type == KVMDBG_BREAK_HW || p->len == m->len),
		      "point %u is %s %#llx+%llu, model %s %#llx+%llu", p->id,
		      kvmdbg_type_name(p->type), (unsigned long long)p->addr,
		      (unsigned long long)p->len, kvmdbg_type_name(m->type),
		      (unsigned long long)m->addr, (unsigned long long)m->len);
		CHECK(p->refs == m->refs, "point %u refs %u, model %u", p->id, p->refs, m->refs);
		CHECK((int)__builtin_popcount(p->slots) == m->n, "point %u holds %d slots, cover %d",
		      p->id, __builtin_popcount(p->slots), m->n);
		for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
			for (unsigned int s = 0; s < KVMDBG_MAX_SLOTS; s++) {
				const struct kvmdbg_hwslot *hs = &vm->slots.hw[pool][s];
				bool found = false;

				if (!(p->slots & KVMDBG_HIT_BIT(pool, s)))
					continue;
				CHECK(vm->slots.owner[pool][s] == p->id,
				      "slot %u/%u of point %u owned by %u", pool, s, p->id,
				      vm->slots.owner[pool][s]);
				for (int j = 0; j < m->n && !found; j++)
					if (!used[j] && m->pc[j].pool == pool &&
					    m->pc[j].value == hs->value && m->pc[j].ctrl == hs->ctrl) {
						used[j] = true;
						found = true;
					}
				CHECK(found, "slot %u/%u (%#llx ctrl %#llx) is no piece of point %u",
				      pool, s, (unsigned long long)hs->value,
				      (unsigned long long)hs->ctrl, p->id);
			}
	}
	for (int i = 0; i < MAXP; i++)
		n_model += c->hw[i].used;
	CHECK(n_lib == n_model, "library has %u hardware points, model %u", n_lib, n_model);

	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int s = 0; s < KVMDBG_MAX_SLOTS; s++) {
			uint32_t o = vm->slots.owner[pool][s];
			const struct kvmdbg_hwpoint *p;

			if (!o)
				continue;
			CHECK(s < vm->lim.nr[pool], "slot %u/%u used beyond the host's %u", pool, s,
			      vm->lim.nr[pool]);
			p = lib_point(c, o);
			CHECK(p && (p->slots & KVMDBG_HIT_BIT(pool, s)),
			      "slot %u/%u held by %u, which does not own it", pool, s, o);
		}

	CHECK(vm->sw.count == m_sw_count(c), "library has %zu software breakpoints, model %u",
	      vm->sw.count, m_sw_count(c));
	memcpy(expect, fh.orig, sizeof(expect));
	for (int i = 0; i < MAXP; i++) {
		const struct msw *m = &c->sw[i];
		const struct kvmdbg_swbp *e;
		unsigned int stepping = 0;

		if (!m->used)
			continue;
		e = kvmdbg_swtab_find(&vm->sw, m->addr);
		CHECK(e, "software breakpoint %#llx missing", (unsigned long long)m->addr);
		CHECK(e->refs == m->refs, "software breakpoint %#llx refs %u, model %u",
		      (unsigned long long)m->addr, e->refs, m->refs);
		CHECK(!memcmp(e->orig, fh.orig + m->addr, c->a->sw_len),
		      "software breakpoint %#llx saved bytes are not the guest's",
		      (unsigned long long)m->addr);
		for (int v = 0; v < NV; v++)
			stepping += c->v[v] && c->v[v]->so.state == KVMDBG_SO_STEPPING &&
				    c->v[v]->so.sw && c->v[v]->so.pc == m->addr;
		CHECK(e->lifted <= stepping, "software breakpoint %#llx lifted %u, %u vCPUs step",
		      (unsigned long long)m->addr, e->lifted, stepping);
		if (!e->lifted)
			memcpy(expect + m->addr, c->a->sw_insn, c->a->sw_len);
	}
	for (size_t i = 0; memcmp(fh.mem, expect, FH_MEM_SIZE) && i < FH_MEM_SIZE; i++)
		CHECK(fh.mem[i] == expect[i], "guest byte %#zx is %#x, expected %#x (original %#x)",
		      i, fh.mem[i], expect[i], fh.orig[i]);
	return true;
}

/* What the vCPU applied equals the library's set, minus slots it disarmed. */
static bool check_applied(struct ctx *c, int i)
{
	const struct kvmdbg_vcpu *v = c->v[i];
	const struct fh_vcpu *f = &fh.v[i];
	bool any_hw = false, step;

	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int s = 0; s < KVMDBG_MAX_SLOTS; s++) {
			const struct kvmdbg_hwslot *want = &c->vm->slots.hw[pool][s];
			const struct kvmdbg_hwslot *got = &f->hw.slot[pool][s];
			bool on = c->vm->slots.owner[pool][s] &&
				  !kvmdbg_stepover_disarms(v, pool, s, c->vm->slots.owner[pool][s]);

			/* Catching another vCPU's software breakpoint while that
			 * one steps over it (issue 12 item 4). */
			if (got->ctrl && v->applied_owner[pool][s] == KVMDBG_OWNER_SW) {
				CHECK(!c->vm->slots.owner[pool][s] && v->so.state != KVMDBG_SO_STEPPING &&
					      m_find_sw(c, got->start),
				      "vcpu%d: slot %u/%u catches %#llx, no software breakpoint of "
				      "another vCPU's step-over", i, pool, s,
				      (unsigned long long)got->start);
				any_hw = true;
				continue;
			}
			if (!on) {
				CHECK(!got->ctrl, "vcpu%d: slot %u/%u applied but free or disarmed", i,
				      pool, s);
				continue;
			}
			CHECK(got->ctrl == want->ctrl && got->value == want->value,
			      "vcpu%d: slot %u/%u applied %#llx/%#llx, set has %#llx/%#llx", i, pool,
			      s, (unsigned long long)got->value, (unsigned long long)got->ctrl,
			      (unsigned long long)want->value, (unsigned long long)want->ctrl);
			any_hw = true;
		}
	/* Every live software breakpoint another vCPU has lifted, or stopped
	 * at and will lift, is caught in this vCPU's hardware (or it may not
	 * run: prepare said -EAGAIN), unless this vCPU only runs its own
	 * internal step. */
	for (int o = 0; o < NV && v->so.state != KVMDBG_SO_STEPPING; o++) {
		const struct kvmdbg_vcpu *ov = c->v[o];
		bool caught = false;

		if (o == i || !ov || !ov->cover_on || !m_find_sw(c, ov->cover_addr))
			continue;
		for (unsigned int s = 0; s < KVMDBG_MAX_SLOTS && !caught; s++) {
			const struct kvmdbg_hwslot *h = &f->hw.slot[KVMDBG_POOL_BP][s];

			caught = h->ctrl && h->start == ov->cover_addr &&
				 c->a->slot_type(KVMDBG_POOL_BP, h->ctrl) == KVMDBG_BREAK_HW;
		}
		CHECK(caught, "vcpu%d runs without catching %#llx, which vcpu%d steps over", i,
		      (unsigned long long)ov->cover_addr, o);
	}
	step = v->user_step || v->so.state == KVMDBG_SO_STEPPING;
	CHECK(!!(f->ctl & KVMDBG_CTL_HW) == any_hw, "vcpu%d: ctl %#x, hw slots %d", i, f->ctl,
	      any_hw);
	CHECK(!!(f->ctl & KVMDBG_CTL_SW_BP) == (m_sw_count(c) > 0), "vcpu%d: ctl %#x, %u sw bps", i,
	      f->ctl, m_sw_count(c));
	CHECK(!!(f->ctl & KVMDBG_CTL_STEP) == step, "vcpu%d: ctl %#x, stepping %d", i, f->ctl, step);
	CHECK(!!(f->ctl & KVMDBG_CTL_ENABLE) == !!(f->ctl & ~KVMDBG_CTL_ENABLE),
	      "vcpu%d: ctl %#x: ENABLE must go with any other bit", i, f->ctl);
	/* arm64 has no BLOCKIRQ: every step, the internal one or the user's,
	 * runs with the interrupts masked by the library, once. */
	if (c->a->arch == KVMDBG_ARCH_ARM64)
		CHECK(f->masked == (unsigned int)step,
		      "vcpu%d: interrupts masked %u, internal step %d, user step %d", i,
		      f->masked, v->so.state == KVMDBG_SO_STEPPING, v->user_step);
	return true;
}

/* ---- operations ---- */

static const uint64_t x86_exec_addrs[] = {0x100, 0x101, 0x102, 0x104, 0x107, 0x10c,
					  175 /* an 0xcc byte of the guest's */, FH_MEM_SIZE + 0x10,
					  UINT64_MAX};
static const uint64_t arm64_exec_addrs[] = {0x100, 0x104, 0x108, 0x10c, 0x110, 0x120,
					    0x102, FH_MEM_SIZE + 0x10, 0xfffffffffffffffcull};

static uint64_t pick_exec_addr(struct ctx *c)
{
	if (c->a->arch == KVMDBG_ARCH_X86_64)
		return x86_exec_addrs[pick(c, ARRAY_SIZE(x86_exec_addrs))];
	return arm64_exec_addrs[pick(c, ARRAY_SIZE(arm64_exec_addrs))];
}

static void pick_point(struct ctx *c, enum kvmdbg_type *t, uint64_t *addr, uint64_t *len)
{
	unsigned int k = (unsigned int)pick(c, 16);

	if (k < 5) {
		*t = KVMDBG_BREAK_SW;
		*addr = pick_exec_addr(c);
		*len = c->a->sw_len;
	} else if (k < 9) {
		*t = KVMDBG_BREAK_HW;
		*addr = pick_exec_addr(c);
		*len = c->a->arch == KVMDBG_ARCH_X86_64 ? pick(c, 17) : (pick(c, 3) == 0 ? 0 : 4);
	} else if (k < 15) {
		static const enum kvmdbg_type wt[] = {KVMDBG_WATCH_WRITE, KVMDBG_WATCH_READ,
						      KVMDBG_WATCH_ACCESS};

		*t = wt[pick(c, 3)];
		*addr = 0x1000 + pick(c, 0x40);
		if (c->a->arch == KVMDBG_ARCH_X86_64)
			*len = pick(c, 12);
		else
			*len = pick(c, 4) == 0 ? pick(c, 0x2000) : pick(c, 80);
		if (pick(c, 32) == 0)
			*addr = UINT64_MAX - pick(c, 8);
	} else {
		*t = (enum kvmdbg_type)(5 + pick(c, 3)); /* invalid */
		*addr = 0x100;
		*len = 1;
	}
}

/* check_point() of vm.c, as documented. */
static int m_check_point(struct ctx *c, enum kvmdbg_type t, uint64_t addr, uint64_t len)
{
	if ((unsigned int)t > KVMDBG_WATCH_ACCESS)
		return -EINVAL;
	if (!is_exec(t) && len == 0)
		return -EINVAL;
	if (len && addr + (len - 1) < addr)
		return -EINVAL;
	if (t == KVMDBG_BREAK_SW &&
	    (addr % c->a->sw_align || addr + (c->a->sw_len - 1) < addr))
		return -EINVAL;
	return 0;
}

static bool op_insert(struct ctx *c)
{
	enum kvmdbg_type t;
	uint64_t addr, len;
	int want, r;
	struct kvmdbg_piece pc[KVMDBG_MAX_PIECES];
	int n = 0;

	pick_point(c, &t, &addr, &len);
	logop(c, "insert %s %#llx %llu", kvmdbg_type_name(t), (unsigned long long)addr,
	      (unsigned long long)len);
	c->st->inserts++;
	want = m_check_point(c, t, addr, len);
	if (!want && t == KVMDBG_BREAK_SW) {
		struct msw *m = m_find_sw(c, addr);

		if (m)
			want = m->refs >= KVMDBG_SWBP_MAX_REFS ? -EOVERFLOW : 0;
		else if (addr >= FH_MEM_SIZE || FH_MEM_SIZE - addr < c->a->sw_len)
			want = -EFAULT;
	} else if (!want && !m_find_hw(c, t, addr, len)) {
		n = c->a->cover(&c->vm->lim, t, addr, len, pc, KVMDBG_MAX_PIECES);
		if (n < 0) {
			want = n;
		} else {
			unsigned int need[KVMDBG_NR_POOLS] = {0};

			for (int j = 0; j < n; j++)
				need[pc[j].pool]++;
			for (unsigned int p = 0; p < KVMDBG_NR_POOLS; p++)
				if (need[p] > c->vm->lim.nr[p] - m_used(c, p))
					want = -ENOSPC;
		}
	}
	r = kvmdbg_vm_insert(c->vm, t, addr, len);
	CHECK(r == want, "insert %s %#llx %llu returned %d, model %d", kvmdbg_type_name(t),
	      (unsigned long long)addr, (unsigned long long)len, r, want);
	if (r)
		return true;
	c->st->inserts_ok++;
	if (t == KVMDBG_BREAK_SW) {
		struct msw *m = m_find_sw(c, addr);

		if (m) {
			m->refs++;
			return true;
		}
		for (int i = 0; i < MAXP; i++)
			if (!c->sw[i].used) {
				c->sw[i] = (struct msw){.used = true, .addr = addr, .refs = 1};
				return true;
			}
		CHECK(0, "model: too many software breakpoints");
	} else {
		struct mhw *m = m_find_hw(c, t, addr, len);

		if (m) {
			m->refs++;
			return true;
		}
		for (int i = 0; i < MAXP; i++) {
			m = &c->hw[i];
			if (m->used)
				continue;
			*m = (struct mhw){.used = true, .type = t, .addr = addr, .len = len, .refs = 1,
					  .n = n};
			memcpy(m->pc, pc, sizeof(pc[0]) * (size_t)n);
			for (unsigned int j = 0; j < KVMDBG_MAX_POINTS; j++) {
				const struct kvmdbg_hwpoint *p = &c->vm->points[j];

				if (p->id && p->type == t && p->addr == addr &&
				    (t == KVMDBG_BREAK_HW || p->len == len))
					m->id = p->id;
			}
			CHECK(m->id, "inserted point not found in the library");
			return true;
		}
		CHECK(0, "model: too many hardware points");
	}
	return true;
}

static bool op_remove(struct ctx *c)
{
	enum kvmdbg_type t;
	uint64_t addr, len;
	int want, r;

	/* Mostly something present. */
	if (pick(c, 3)) {
		int k = (int)pick(c, MAXP);

		if (c->hw[k].used && pick(c, 2)) {
			t = c->hw[k].type;
			addr = c->hw[k].addr;
			len = t == KVMDBG_BREAK_HW ? pick(c, 5) : c->hw[k].len;
		} else if (c->sw[k].used) {
			t = KVMDBG_BREAK_SW;
			addr = c->sw[k].addr;
			len = c->a->sw_len;
		} else {
			pick_point(c, &t, &addr, &len);
		}
	} else {
		pick_point(c, &t, &addr, &len);
	}
	logop(c, "remove %s %#llx %llu", kvmdbg_type_name(t), (unsigned long long)addr,
	      (unsigned long long)len);
	c->st->removes++;
	if ((unsigned int)t > KVMDBG_WATCH_ACCESS) {
		want = -EINVAL;
	} else if (t == KVMDBG_BREAK_SW) {
		struct msw *m = m_find_sw(c, addr);

		want = m ? 0 : -ENOENT;
		if (m && --m->refs == 0)
			m->used = false;
	} else {
		struct mhw *m = m_find_hw(c, t, addr, len);

		want = m ? 0 : -ENOENT;
		if (m && --m->refs == 0)
			m->used = false;
	}
	r = kvmdbg_vm_remove(c->vm, t, addr, len);
	CHECK(r == want, "remove %s %#llx %llu returned %d, model %d", kvmdbg_type_name(t),
	      (unsigned long long)addr, (unsigned long long)len, r, want);
	return true;
}

static bool op_remove_all(struct ctx *c)
{
	int r;

	logop(c, "remove_all");
	r = kvmdbg_vm_remove_all(c->vm);
	CHECK(r == 0, "remove_all returned %d", r);
	memset(c->hw, 0, sizeof(c->hw));
	memset(c->sw, 0, sizeof(c->sw));
	return true;
}

static bool op_slots_needed(struct ctx *c)
{
	enum kvmdbg_type t;
	uint64_t addr, len;
	int want, r;

	pick_point(c, &t, &addr, &len);
	logop(c, "slots_needed %s %#llx %llu", kvmdbg_type_name(t), (unsigned long long)addr,
	      (unsigned long long)len);
	want = m_check_point(c, t, addr, len);
	if (!want && t != KVMDBG_BREAK_SW && !m_find_hw(c, t, addr, len)) {
		struct kvmdbg_limits lim = c->vm->lim;
		struct kvmdbg_piece pc[KVMDBG_MAX_PIECES];

		for (unsigned int p = 0; p < KVMDBG_NR_POOLS; p++)
			if (lim.nr[p])
				lim.nr[p] = KVMDBG_MAX_PIECES;
		want = c->a->cover(&lim, t, addr, len, pc, KVMDBG_MAX_PIECES);
	}
	r = kvmdbg_vm_slots_needed(c->vm, t, addr, len);
	CHECK(r == want, "slots_needed %s %#llx %llu returned %d, model %d", kvmdbg_type_name(t),
	      (unsigned long long)addr, (unsigned long long)len, r, want);
	return true;
}

static bool op_set_step(struct ctx *c, int i)
{
	int on = (int)pick(c, 2);
	int r;

	logop(c, "vcpu%d set_step %d", i, on);
	r = kvmdbg_vcpu_set_step(c->v[i], on);
	CHECK(r == 0, "set_step returned %d", r);
	return true;
}

static bool op_regs_changed(struct ctx *c, int i)
{
	fh.v[i].pc = pick_exec_addr(c);
	logop(c, "vcpu%d regs_changed pc %#llx", i, (unsigned long long)fh.v[i].pc);
	CHECK(kvmdbg_vcpu_regs_changed(c->v[i]) == 0, "regs_changed failed");
	c->mv[i].pc_moved = true;
	return true;
}

static bool hw_point_at(struct ctx *c, uint64_t pc)
{
	return m_find_hw(c, KVMDBG_BREAK_HW, pc, 0) != NULL;
}

static bool op_prepare(struct ctx *c, int i)
{
	struct mvcpu *mv = &c->mv[i];
	struct fh_vcpu *f = &fh.v[i];
	struct kvmdbg_vcpu *v = c->v[i];
	unsigned int injects = f->inject_calls;
	bool reinject = v->reinject.pending;
	int r;

	logop(c, "vcpu%d prepare", i);
	c->st->prepares++;
	f->rf = false;
	r = kvmdbg_vcpu_prepare(v);
	if (r == -EAGAIN) {
		/* The fence: another vCPU steps over (or is stopped at) a live
		 * software breakpoint this one has no free slot to catch. It
		 * must not run; nothing changed (still armed). */
		bool other = false;

		for (int o = 0; o < NV; o++)
			other |= o != i && c->v[o] && c->v[o]->cover_on &&
				 m_find_sw(c, c->v[o]->cover_addr);
		CHECK(other && v->so.state != KVMDBG_SO_STEPPING,
		      "vcpu%d: prepare fenced (-EAGAIN) with no other vCPU's step-over to wait for",
		      i);
		CHECK(f->inject_calls == injects, "vcpu%d: fenced prepare injected", i);
		c->st->fenced++;
		mv->prepared = false;
		return true;
	}
	CHECK(r == 0, "prepare returned %d", r);
	if (!check_applied(c, i))
		return false;
	CHECK(f->inject_calls == injects + reinject, "vcpu%d: re-injection pending %d, %u injects",
	      i, reinject, f->inject_calls - injects);
	if (mv->armed) {
		uint64_t pc = mv->pc_moved ? f->pc : mv->report_pc;
		bool hw = hw_point_at(c, pc), sw = m_find_sw(c, pc) != NULL;
		bool watch = c->a->watch_is_fault && mv->report_kind == KVMDBG_STOP_WATCH &&
			     pc == mv->report_pc;

		if (hw || sw || watch) {
			c->st->stepovers++;
			if (c->a->arch == KVMDBG_ARCH_X86_64 && hw && !sw && !v->user_step &&
			    (c->features & KVMDBG_FEAT_RF_RESUME)) {
				CHECK(f->rf, "vcpu%d: resuming at the breakpoint %#llx without RF", i,
				      (unsigned long long)pc);
			} else {
				CHECK(v->so.state == KVMDBG_SO_STEPPING && (f->ctl & KVMDBG_CTL_STEP),
				      "vcpu%d: resuming at %s%s%s %#llx without stepping past it", i,
				      hw ? "hw-break " : "", sw ? "sw-break " : "",
				      watch ? "watchpoint " : "", (unsigned long long)pc);
				if (hw) {
					const struct mhw *m = m_find_hw(c, KVMDBG_BREAK_HW, pc, 0);
					const struct kvmdbg_hwpoint *p = lib_point(c, m->id);

					CHECK(p && (v->so.slots & p->slots),
					      "vcpu%d: breakpoint %#llx not disarmed for the step", i,
					      (unsigned long long)pc);
				}
				if (sw)
					CHECK(!memcmp(fh.mem + pc, fh.orig + pc, c->a->sw_len),
					      "vcpu%d: software breakpoint %#llx not lifted for the step",
					      i, (unsigned long long)pc);
			}
		} else {
			CHECK(v->so.state == KVMDBG_SO_NONE, "vcpu%d: steps past nothing at %#llx", i,
			      (unsigned long long)pc);
		}
		mv->armed = false;
	}
	mv->pc_moved = false;
	mv->prepared = true;
	return true;
}

/* Enabled slots of what KVM holds for vCPU i. */
static unsigned int armed_slots(int i, unsigned int pool_slot[][2])
{
	unsigned int n = 0;

	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int s = 0; s < KVMDBG_MAX_SLOTS; s++)
			if (fh.v[i].hw.slot[pool][s].ctrl) {
				pool_slot[n][0] = pool;
				pool_slot[n][1] = s;
				n++;
			}
	return n;
}

static bool op_exit(struct ctx *c, int i)
{
	struct fh_vcpu *f = &fh.v[i];
	struct pend *p = &c->mv[i].p;
	struct kvmdbg_exit *ex = &f->exit;
	unsigned int ps[KVMDBG_NR_POOLS * KVMDBG_MAX_SLOTS][2];
	unsigned int nslots = armed_slots(i, ps);
	bool stepping = f->ctl & KVMDBG_CTL_STEP;
	bool x86 = c->a->arch == KVMDBG_ARCH_X86_64;
	uint64_t swa[MAXP];
	unsigned int nsw = 0;
	enum gen g;

	if (f->ctl & KVMDBG_CTL_SW_BP) {
		for (int k = 0; k < MAXP; k++)
			if (c->sw[k].used && mem_is_insn(c, c->sw[k].addr))
				swa[nsw++] = c->sw[k].addr;
		if (x86 && mem_is_insn(c, 175))
			swa[nsw++] = 175; /* the guest's own int3 */
	}
	g = (enum gen)pick(c, 4);
	if (g == GEN_STEP && !stepping)
		g = GEN_HW;
	if (g == GEN_HW && !nslots)
		g = GEN_SW;
	if (g == GEN_SW && !nsw)
		g = GEN_JUNK;

	memset(p, 0, sizeof(*p));
	memset(ex, 0, sizeof(*ex));
	p->on = true;
	p->what = g;
	p->unique = true;
	switch (g) {
	case GEN_STEP:
		p->step = true;
		ex->pc = pick_exec_addr(c);
		if (x86) {
			ex->exception = 1;
			ex->dr6 = DR6_ACTIVE_LOW | DR6_BS;
			ex->dr7 = 0x400;
		} else {
			ex->esr = ESR_FOR_EC(EC_SOFTSTP_LOW);
		}
		break;
	case GEN_HW: {
		unsigned int k = (unsigned int)pick(c, nslots);
		const struct kvmdbg_hwslot *hs;

		p->hw = true;
		p->pool = ps[k][0];
		p->slot = ps[k][1];
		p->id = c->v[i]->applied_owner[p->pool][p->slot];
		hs = &f->hw.slot[p->pool][p->slot];
		if (x86) {
			bool exec = (hs->ctrl & 3) == 0;

			ex->exception = 1;
			ex->dr6 = DR6_ACTIVE_LOW | (1ull << p->slot);
			ex->dr7 = 0x400;
			if (stepping && pick(c, 2)) {
				ex->dr6 |= DR6_BS;
				p->step = true;
			}
			ex->pc = exec ? hs->value : pick_exec_addr(c);
		} else if (p->pool == KVMDBG_POOL_BP) {
			ex->esr = ESR_FOR_EC(EC_BREAKPT_LOW);
			ex->pc = hs->value;
		} else {
			unsigned int lsc = (unsigned int)(hs->ctrl >> 3) & 3;
			bool wnr = lsc == 2 || (lsc == 3 && pick(c, 2));

			ex->esr = ESR_FOR_EC(EC_WATCHPT_LOW) | (wnr ? ESR_ISS_WNR : 0);
			ex->far = hs->start + pick(c, hs->len ? hs->len : 1);
			ex->pc = pick_exec_addr(c);
			/* Only a FAR no other armed watchpoint contains proves which. */
			for (unsigned int s = 0; s < KVMDBG_MAX_SLOTS; s++) {
				const struct kvmdbg_hwslot *o = &f->hw.slot[KVMDBG_POOL_WP][s];

				if (s != p->slot && o->ctrl && ex->far >= o->start &&
				    ex->far - o->start < o->len)
					p->unique = false;
			}
		}
		break;
	}
	case GEN_SW:
		p->addr = swa[pick(c, nsw)];
		ex->pc = p->addr;
		if (x86) {
			ex->exception = 3;
			ex->dr6 = DR6_ACTIVE_LOW;
			ex->dr7 = 0x400;
		} else {
			ex->esr = ESR_FOR_EC(EC_BRK64) | ARM64_OUR_IMM;
		}
		break;
	case GEN_JUNK: {
		static const uint32_t vec[] = {0, 1, 2, 3, 6, 13, 14, 255};
		static const unsigned int ecs[] = {0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x38, 0x3c, 0x01};

		p->unique = false;
		ex->exception = pick(c, 4) ? vec[pick(c, ARRAY_SIZE(vec))] : (uint32_t)pick64(c);
		ex->dr6 = pick(c, 2) ? pick64(c) : DR6_ACTIVE_LOW | pick(c, 1u << 16);
		ex->dr7 = pick64(c);
		ex->pc = pick(c, 2) ? pick_exec_addr(c) : pick64(c);
		ex->esr = pick(c, 2) ? pick64(c) : (uint64_t)ecs[pick(c, ARRAY_SIZE(ecs))] << ESR_EC_SHIFT | pick(c, 1u << 25);
		ex->far = pick(c, 2) ? pick64(c) : 0x1000 + pick(c, 0x60);
		break;
	}
	}
	f->pc = ex->pc;
	c->mv[i].prepared = false;
	c->st->exits++;
	logop(c, "vcpu%d exit %s exc %u pc %#llx dr6 %#llx esr %#llx far %#llx", i,
	      g == GEN_STEP ? "step" : g == GEN_HW ? "hw" : g == GEN_SW ? "sw" : "junk", ex->exception,
	      (unsigned long long)ex->pc, (unsigned long long)ex->dr6, (unsigned long long)ex->esr,
	      (unsigned long long)ex->far);
	return true;
}

static bool op_handle(struct ctx *c, int i)
{
	struct pend *p = &c->mv[i].p;
	struct kvmdbg_vcpu *v = c->v[i];
	struct kvmdbg_event ev;
	bool user_step = v->user_step, ours_step = p->step && (fh.v[i].ctl & KVMDBG_CTL_STEP);
	const struct kvmdbg_swbp *se = kvmdbg_swtab_find(&c->vm->sw, p->addr);
	/* This vCPU steps over its reported stop at our software breakpoint
	 * p->addr, with the guest's bytes back: a breakpoint instruction there
	 * now is the guest's own (issue 12 item 5). */
	bool own_lift = p->what == GEN_SW && se && se->lifted &&
			v->so.state == KVMDBG_SO_STEPPING && v->so.sw && v->so.sw_addr == p->addr;
	bool insn_before = own_lift && mem_is_insn(c, p->addr); /* the step-over's end puts ours back */
	unsigned int unread = fh.v[i].pc_unread_exits;
	int r;

	c->run[i].exit_reason = KVM_EXIT_DEBUG;
	r = kvmdbg_vcpu_handle_exit(v, &ev);
	unread = fh.v[i].pc_unread_exits - unread;
	logop(c, "vcpu%d handle_exit: %d %s %s addr %#llx hits %#x", i, r,
	      kvmdbg_stop_name(ev.kind), kvmdbg_type_name(ev.type), (unsigned long long)ev.addr,
	      ev.hits);
	p->on = false;
	c->st->handled++;
	/* A breakpoint instruction at an address the memory callbacks cannot
	 * read: whose it is cannot be told, so the read's error, no change. */
	if (r == -EFAULT && fh_swbp_unreadable(&fh.v[i].exit, c->a->arch == KVMDBG_ARCH_X86_64))
		return true;
	CHECK(r == 0, "handle_exit returned %d", r);
	CHECK((unsigned int)ev.kind <= KVMDBG_STOP_NONE, "kind %d is no documented kind", ev.kind);
	/* The PC of the exit, unless left unread (arm64: the library's own
	 * step past a stop, never reported). */
	CHECK(ev.pc == (unread ? 0 : fh.v[i].exit.pc),
	      "event pc %#llx, exit pc %#llx", (unsigned long long)ev.pc,
	      (unsigned long long)fh.v[i].exit.pc);
	CHECK(!unread || ev.kind == KVMDBG_STOP_NONE,
	      "%s reported without its PC", kvmdbg_stop_name(ev.kind));
	c->st->kinds[ev.kind]++;

	/* Whatever the exit: what is reported exists. */
	switch (ev.kind) {
	case KVMDBG_STOP_BREAK:
		if (ev.type == KVMDBG_BREAK_SW)
			CHECK(m_find_sw(c, ev.addr) && ev.addr == ev.pc,
			      "reported software breakpoint %#llx is not inserted",
			      (unsigned long long)ev.addr);
		else
			CHECK(ev.type == KVMDBG_BREAK_HW && hw_point_at(c, ev.addr),
			      "reported breakpoint %s %#llx is not inserted",
			      kvmdbg_type_name(ev.type), (unsigned long long)ev.addr);
		break;
	case KVMDBG_STOP_WATCH:
		CHECK(!is_exec(ev.type) && m_find_hw(c, ev.type, ev.addr, ev.len),
		      "reported watchpoint %s %#llx+%llu is not inserted", kvmdbg_type_name(ev.type),
		      (unsigned long long)ev.addr, (unsigned long long)ev.len);
		break;
	case KVMDBG_STOP_STEP:
		CHECK(user_step && (fh.v[i].ctl & KVMDBG_CTL_STEP),
		      "step reported, user step %d, applied ctl %#x", user_step, fh.v[i].ctl);
		break;
	case KVMDBG_STOP_GUEST:
		CHECK(v->reinject.pending, "guest event without a queued re-injection");
		break;
	case KVMDBG_STOP_NONE:
		break;
	}
	for (unsigned int pool = 0; pool < KVMDBG_NR_POOLS; pool++)
		for (unsigned int s = 0; s < KVMDBG_MAX_SLOTS; s++)
			if (ev.hits & KVMDBG_HIT_BIT(pool, s))
				CHECK(fh.v[i].hw.slot[pool][s].ctrl,
				      "hit of slot %u/%u, which the vCPU did not run with", pool, s);

	/* What this exit must be. */
	switch (p->what) {
	case GEN_STEP:
		CHECK(ev.kind == (user_step ? KVMDBG_STOP_STEP : KVMDBG_STOP_NONE),
		      "step trap (user step %d) classified %s", user_step, kvmdbg_stop_name(ev.kind));
		break;
	case GEN_HW: {
		const struct mhw *m = m_hw_by_id(c, p->id);

		if (!p->unique)
			break;
		if (p->id == KVMDBG_OWNER_SW) {
			/* The slot catching another vCPU's lifted software
			 * breakpoint: that breakpoint's stop, if it still is. */
			uint64_t at = fh.v[i].hw.slot[p->pool][p->slot].start;
			bool live = m_find_sw(c, at) && fh.v[i].exit.pc == at;

			CHECK(live ? ev.kind == KVMDBG_STOP_BREAK && ev.type == KVMDBG_BREAK_SW &&
					     ev.addr == at
				   : ev.kind == (ours_step && user_step ? KVMDBG_STOP_STEP
									: KVMDBG_STOP_NONE),
			      "hit of the slot catching %#llx (software breakpoint %d) classified "
			      "%s %s %#llx", (unsigned long long)at, live, kvmdbg_stop_name(ev.kind),
			      kvmdbg_type_name(ev.type), (unsigned long long)ev.addr);
			c->st->cover_hits += live;
			break;
		}
		if (m) {
			enum kvmdbg_stop want =
				m->type == KVMDBG_BREAK_HW ? KVMDBG_STOP_BREAK : KVMDBG_STOP_WATCH;

			CHECK(ev.kind == want && ev.type == m->type && ev.addr == m->addr &&
				      (ev.type == KVMDBG_BREAK_HW || ev.len == m->len),
			      "hit of slot %u/%u of %s %#llx+%llu classified %s %s %#llx+%llu",
			      p->pool, p->slot, kvmdbg_type_name(m->type),
			      (unsigned long long)m->addr, (unsigned long long)m->len,
			      kvmdbg_stop_name(ev.kind), kvmdbg_type_name(ev.type),
			      (unsigned long long)ev.addr, (unsigned long long)ev.len);
			CHECK(ev.hits & KVMDBG_HIT_BIT(p->pool, p->slot), "hits %#x lack slot %u/%u",
			      ev.hits, p->pool, p->slot);
			CHECK(ev.stepped == (ours_step && user_step), "stepped %d", ev.stepped);
			if (want == KVMDBG_STOP_WATCH && c->a->arch == KVMDBG_ARCH_ARM64)
				CHECK(ev.data_addr == fh.v[i].exit.far, "data_addr is not FAR");
		} else {
			/* Removed since this vCPU prepared: never a hit. */
			enum kvmdbg_stop want =
				ours_step && user_step ? KVMDBG_STOP_STEP : KVMDBG_STOP_NONE;

			CHECK(ev.kind == want, "stale hit of removed point %u classified %s, want %s",
			      p->id, kvmdbg_stop_name(ev.kind), kvmdbg_stop_name(want));
		}
		break;
	}
	case GEN_SW:
		if (m_find_sw(c, p->addr) && !own_lift) {
			CHECK(ev.kind == KVMDBG_STOP_BREAK && ev.type == KVMDBG_BREAK_SW &&
				      ev.addr == p->addr && ev.len == c->a->sw_len,
			      "software breakpoint %#llx classified %s %s %#llx",
			      (unsigned long long)p->addr, kvmdbg_stop_name(ev.kind),
			      kvmdbg_type_name(ev.type), (unsigned long long)ev.addr);
		} else {
			bool insn = own_lift ? insn_before : mem_is_insn(c, p->addr);
			enum kvmdbg_stop want = insn ? KVMDBG_STOP_GUEST : KVMDBG_STOP_NONE;

			CHECK(ev.kind == want, "breakpoint instruction at %#llx (not ours) classified %s, want %s",
			      (unsigned long long)p->addr, kvmdbg_stop_name(ev.kind),
			      kvmdbg_stop_name(want));
		}
		break;
	case GEN_JUNK:
		break;
	}

	if (KVMDBG_STOP_IS_REPORTABLE(ev.kind)) {
		c->mv[i].armed = true;
		c->mv[i].report_pc = ev.pc;
		c->mv[i].report_kind = ev.kind;
		c->mv[i].pc_moved = false;
	}
	return true;
}

static bool finish(struct ctx *c)
{
	for (int i = 0; i < NV; i++)
		if (c->mv[i].p.on && !op_handle(c, i))
			return false;
	if (!check_vm(c) || !op_remove_all(c) || !check_vm(c))
		return false;
	CHECK(fh_mem_is_orig(), "guest memory differs from the original after remove_all");
	for (unsigned int p = 0; p < KVMDBG_NR_POOLS; p++)
		CHECK(kvmdbg_slots_free(&c->vm->slots, p) == c->vm->lim.nr[p],
		      "pool %u: %u of %u slots free after remove_all", p,
		      kvmdbg_slots_free(&c->vm->slots, p), c->vm->lim.nr[p]);
	for (int i = 0; i < NV; i++) {
		CHECK(kvmdbg_vcpu_set_step(c->v[i], 0) == 0, "set_step 0");
		CHECK(kvmdbg_vcpu_prepare(c->v[i]) == 0, "final prepare");
		CHECK(!(fh.v[i].ctl & (KVMDBG_CTL_HW | KVMDBG_CTL_SW_BP)),
		      "vcpu%d still applies breakpoints after remove_all: ctl %#x", i, fh.v[i].ctl);
		if (!check_applied(c, i))
			return false;
	}
	return true;
}

int model_run(enum kvmdbg_arch arch, struct model_src *src, unsigned int max_ops,
	      struct model_stats *st, char *err, size_t errlen)
{
	static struct ctx cx;
	struct ctx *c = &cx;
	struct kvmdbg_vm_opts o = {.sz = sizeof(o), .mem = &fh_mem_ops, .mem_ctx = &fh};
	bool ok = true;
	int r;

	memset(c, 0, sizeof(*c));
	c->src = src;
	c->st = st;
	c->err = err;
	c->errlen = errlen;
	if (errlen)
		err[0] = 0;
	fh_reset(arch);
	c->a = fh_host()->arch;
	if (arch == KVMDBG_ARCH_X86_64) {
		static const uint64_t feats[] = {
			0, KVMDBG_FEAT_VERIFIED, KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_RF_RESUME,
			KVMDBG_FEAT_VERIFIED | KVMDBG_FEAT_GUEST_BP_LIVE};

		c->features = feats[pick(c, ARRAY_SIZE(feats))];
	} else {
		o.allow_overcover = (int)pick(c, 2);
	}
	o.features = c->features;
	r = kvmdbg_vm_new_host(-1, &o, fh_host(), &fh, &c->vm);
	if (r) {
		snprintf(err, errlen, "kvmdbg_vm_new_host: %d", r);
		return -1;
	}
	for (int i = 0; i < NV; i++) {
		c->run[i].exit_reason = KVM_EXIT_DEBUG;
		r = kvmdbg_vcpu_new(c->vm, i, &c->run[i], &c->v[i]);
		if (r) {
			snprintf(err, errlen, "kvmdbg_vcpu_new: %d", r);
			while (i--)
				kvmdbg_vcpu_free(c->v[i]);
			kvmdbg_vm_free(c->vm);
			return -1;
		}
	}

	for (unsigned int n = 0; n < max_ops && ok && !c->exhausted; n++) {
		unsigned int op = (unsigned int)pick(c, 16);
		int i = (int)pick(c, NV);
		struct mvcpu *mv = &c->mv[i];

		st->ops++;
		c->nops++;
		/* A vCPU with an exit pending handles it before anything else. */
		if (mv->p.on && (op == 8 || op == 9 || op >= 10))
			op = 14;
		if (!mv->p.on && op >= 14)
			op = mv->prepared ? 12 : 10;
		if ((op == 12 || op == 13) && !mv->prepared)
			op = 10;
		switch (op) {
		case 0: case 1: case 2: case 3:
			ok = op_insert(c);
			break;
		case 4: case 5:
			ok = op_remove(c);
			break;
		case 6:
			ok = pick(c, 6) ? op_slots_needed(c) : op_remove_all(c);
			break;
		case 7:
			ok = op_slots_needed(c);
			break;
		case 8:
			ok = op_set_step(c, i);
			break;
		case 9:
			ok = pick(c, 3) ? op_prepare(c, i) : op_regs_changed(c, i);
			break;
		case 10: case 11:
			ok = op_prepare(c, i);
			break;
		case 12: case 13:
			ok = op_exit(c, i);
			break;
		default:
			ok = op_handle(c, i);
			break;
		}
		if (ok)
			ok = check_vm(c);
	}
	if (ok)
		ok = finish(c);
	for (int i = 0; i < NV; i++)
		kvmdbg_vcpu_free(c->v[i]);
	kvmdbg_vm_free(c->vm);
	if (ok && !fh_mem_is_orig())
		ok = fail(c, __LINE__, "guest memory differs from the original after vm_free");
	for (int i = 0; ok && i < NV; i++)
		if (fh.v[i].ctl || fh.v[i].masked)
			ok = fail(c, __LINE__, "vcpu%d left with ctl %#x, interrupts masked %u", i,
				  fh.v[i].ctl, fh.v[i].masked);
	return ok ? 0 : -1;
}
