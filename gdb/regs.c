// SPDX-License-Identifier: MIT
/*
 * Register layouts as data: one table per architecture, from which the
 * target description (target.xml), the g packet's layout and every VMM's
 * marshalling (kvmdbg_gdb_reg_lookup()) all come.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gdb-int.h"

struct reg_def {
	const char *name;
	unsigned short bits;
	const char *type;  /* NULL: gdb's default for the size */
	const char *group; /* NULL: general */
};

struct feature_def {
	const char *name;
	const char *types; /* <flags>, <vector>, <union> the regs use */
	const struct reg_def *regs;
	unsigned int nregs;
};

struct arch_def {
	const char *arch;
	const struct feature_def *features;
	unsigned int nfeatures;
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- x86-64 ---------------------------------------------------------------------------------- */

static const struct reg_def x86_core[] = {
	{ "rax", 64, "int64", NULL },  { "rbx", 64, "int64", NULL },
	{ "rcx", 64, "int64", NULL },  { "rdx", 64, "int64", NULL },
	{ "rsi", 64, "int64", NULL },  { "rdi", 64, "int64", NULL },
	{ "rbp", 64, "data_ptr", NULL }, { "rsp", 64, "data_ptr", NULL },
	{ "r8", 64, "int64", NULL },   { "r9", 64, "int64", NULL },
	{ "r10", 64, "int64", NULL },  { "r11", 64, "int64", NULL },
	{ "r12", 64, "int64", NULL },  { "r13", 64, "int64", NULL },
	{ "r14", 64, "int64", NULL },  { "r15", 64, "int64", NULL },
	{ "rip", 64, "code_ptr", NULL }, { "eflags", 32, "i386_eflags", NULL },
	{ "cs", 32, "int32", NULL },   { "ss", 32, "int32", NULL },
	{ "ds", 32, "int32", NULL },   { "es", 32, "int32", NULL },
	{ "fs", 32, "int32", NULL },   { "gs", 32, "int32", NULL },
	{ "st0", 80, "i387_ext", NULL }, { "st1", 80, "i387_ext", NULL },
	{ "st2", 80, "i387_ext", NULL }, { "st3", 80, "i387_ext", NULL },
	{ "st4", 80, "i387_ext", NULL }, { "st5", 80, "i387_ext", NULL },
	{ "st6", 80, "i387_ext", NULL }, { "st7", 80, "i387_ext", NULL },
	{ "fctrl", 32, "int", "float" }, { "fstat", 32, "int", "float" },
	{ "ftag", 32, "int", "float" },  { "fiseg", 32, "int", "float" },
	{ "fioff", 32, "int", "float" }, { "foseg", 32, "int", "float" },
	{ "fooff", 32, "int", "float" }, { "fop", 32, "int", "float" },
};

static const struct reg_def x86_sse[] = {
	{ "xmm0", 128, "vec128", NULL },  { "xmm1", 128, "vec128", NULL },
	{ "xmm2", 128, "vec128", NULL },  { "xmm3", 128, "vec128", NULL },
	{ "xmm4", 128, "vec128", NULL },  { "xmm5", 128, "vec128", NULL },
	{ "xmm6", 128, "vec128", NULL },  { "xmm7", 128, "vec128", NULL },
	{ "xmm8", 128, "vec128", NULL },  { "xmm9", 128, "vec128", NULL },
	{ "xmm10", 128, "vec128", NULL }, { "xmm11", 128, "vec128", NULL },
	{ "xmm12", 128, "vec128", NULL }, { "xmm13", 128, "vec128", NULL },
	{ "xmm14", 128, "vec128", NULL }, { "xmm15", 128, "vec128", NULL },
	{ "mxcsr", 32, "i386_mxcsr", "vector" },
};

static const struct reg_def x86_segments[] = {
	{ "fs_base", 64, "int", NULL },
	{ "gs_base", 64, "int", NULL },
};

static const struct reg_def x86_sys[] = {
	{ "cr0", 64, "int", "system" }, { "cr2", 64, "int", "system" },
	{ "cr3", 64, "int", "system" }, { "cr4", 64, "int", "system" },
	{ "efer", 64, "int", "system" }, { "cr8", 64, "int", "system" },
	{ "k_gs_base", 64, "int", "system" },
};

#define F(start, end) "<field name=\"" start "\" start=\"" end "\" end=\"" end "\"/>"

static const struct feature_def x86_features[] = {
	{ "org.gnu.gdb.i386.core",
	  "<flags id=\"i386_eflags\" size=\"4\">\n"
	  F("CF", "0") F("", "1") F("PF", "2") F("AF", "4") F("ZF", "6") F("SF", "7")
	  F("TF", "8") F("IF", "9") F("DF", "10") F("OF", "11") F("NT", "14") F("RF", "16")
	  F("VM", "17") F("AC", "18") F("VIF", "19") F("VIP", "20") F("ID", "21") "\n"
	  "</flags>\n",
	  x86_core, N(x86_core) },
	{ "org.gnu.gdb.i386.sse",
	  "<vector id=\"v8bf16\" type=\"bfloat16\" count=\"8\"/>\n"
	  "<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>\n"
	  "<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>\n"
	  "<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>\n"
	  "<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>\n"
	  "<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>\n"
	  "<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>\n"
	  "<union id=\"vec128\"><field name=\"v8_bfloat16\" type=\"v8bf16\"/>"
	  "<field name=\"v4_float\" type=\"v4f\"/><field name=\"v2_double\" type=\"v2d\"/>"
	  "<field name=\"v16_int8\" type=\"v16i8\"/><field name=\"v8_int16\" type=\"v8i16\"/>"
	  "<field name=\"v4_int32\" type=\"v4i32\"/><field name=\"v2_int64\" type=\"v2i64\"/>"
	  "<field name=\"uint128\" type=\"uint128\"/></union>\n"
	  "<flags id=\"i386_mxcsr\" size=\"4\">"
	  F("IE", "0") F("DE", "1") F("ZE", "2") F("OE", "3") F("UE", "4") F("PE", "5")
	  F("DAZ", "6") F("IM", "7") F("DM", "8") F("ZM", "9") F("OM", "10") F("UM", "11")
	  F("PM", "12") F("FZ", "15")
	  "</flags>\n",
	  x86_sse, N(x86_sse) },
	{ "org.gnu.gdb.i386.segments", NULL, x86_segments, N(x86_segments) },
	{ "org.kvmdbg.x86.sys", NULL, x86_sys, N(x86_sys) },
};

/* ---- aarch64 --------------------------------------------------------------------------------- */

static const struct reg_def a64_core[] = {
	{ "x0", 64, NULL, NULL },  { "x1", 64, NULL, NULL },  { "x2", 64, NULL, NULL },
	{ "x3", 64, NULL, NULL },  { "x4", 64, NULL, NULL },  { "x5", 64, NULL, NULL },
	{ "x6", 64, NULL, NULL },  { "x7", 64, NULL, NULL },  { "x8", 64, NULL, NULL },
	{ "x9", 64, NULL, NULL },  { "x10", 64, NULL, NULL }, { "x11", 64, NULL, NULL },
	{ "x12", 64, NULL, NULL }, { "x13", 64, NULL, NULL }, { "x14", 64, NULL, NULL },
	{ "x15", 64, NULL, NULL }, { "x16", 64, NULL, NULL }, { "x17", 64, NULL, NULL },
	{ "x18", 64, NULL, NULL }, { "x19", 64, NULL, NULL }, { "x20", 64, NULL, NULL },
	{ "x21", 64, NULL, NULL }, { "x22", 64, NULL, NULL }, { "x23", 64, NULL, NULL },
	{ "x24", 64, NULL, NULL }, { "x25", 64, NULL, NULL }, { "x26", 64, NULL, NULL },
	{ "x27", 64, NULL, NULL }, { "x28", 64, NULL, NULL }, { "x29", 64, NULL, NULL },
	{ "x30", 64, NULL, NULL },
	{ "sp", 64, "data_ptr", NULL }, { "pc", 64, "code_ptr", NULL }, { "cpsr", 32, NULL, NULL },
};

#define V(n) { "v" #n, 128, "aarch64v", "vector" }
static const struct reg_def a64_fpu[] = {
	V(0),  V(1),  V(2),  V(3),  V(4),  V(5),  V(6),  V(7),  V(8),  V(9),  V(10),
	V(11), V(12), V(13), V(14), V(15), V(16), V(17), V(18), V(19), V(20), V(21),
	V(22), V(23), V(24), V(25), V(26), V(27), V(28), V(29), V(30), V(31),
	{ "fpsr", 32, "int", "float" }, { "fpcr", 32, "int", "float" },
};
#undef V

/* The masks of the pointer authentication code in data and code addresses:
 * gdb strips them when it unwinds. */
static const struct reg_def a64_pauth[] = {
	{ "pauth_dmask", 64, "int", "system" },
	{ "pauth_cmask", 64, "int", "system" },
};

/* EL1's stack pointer for EL0 and what its page tables are. */
static const struct reg_def a64_sys[] = {
	{ "sp_el0", 64, "data_ptr", "system" },
	{ "sctlr_el1", 64, "int", "system" },
	{ "ttbr0_el1", 64, "int", "system" },
	{ "ttbr1_el1", 64, "int", "system" },
	{ "tcr_el1", 64, "int", "system" },
};

#define VEC(id, type, n) "<vector id=\"" id "\" type=\"" type "\" count=\"" n "\"/>\n"
#define FIELD(name, type) "<field name=\"" name "\" type=\"" type "\"/>"

static const struct feature_def a64_features[] = {
	{ "org.gnu.gdb.aarch64.core", NULL, a64_core, N(a64_core) },
	{ "org.gnu.gdb.aarch64.fpu",
	  VEC("v2d", "ieee_double", "2") VEC("v2u", "uint64", "2") VEC("v2i", "int64", "2")
	  VEC("v4f", "ieee_single", "4") VEC("v4u", "uint32", "4") VEC("v4i", "int32", "4")
	  VEC("v8f", "ieee_half", "8") VEC("v8u", "uint16", "8") VEC("v8i", "int16", "8")
	  VEC("v16u", "uint8", "16") VEC("v16i", "int8", "16")
	  VEC("v1u", "uint128", "1") VEC("v1i", "int128", "1")
	  "<union id=\"vnd\">" FIELD("f", "v2d") FIELD("u", "v2u") FIELD("s", "v2i") "</union>\n"
	  "<union id=\"vns\">" FIELD("f", "v4f") FIELD("u", "v4u") FIELD("s", "v4i") "</union>\n"
	  "<union id=\"vnh\">" FIELD("f", "v8f") FIELD("u", "v8u") FIELD("s", "v8i") "</union>\n"
	  "<union id=\"vnb\">" FIELD("u", "v16u") FIELD("s", "v16i") "</union>\n"
	  "<union id=\"vnq\">" FIELD("u", "v1u") FIELD("s", "v1i") "</union>\n"
	  "<union id=\"aarch64v\">" FIELD("d", "vnd") FIELD("s", "vns") FIELD("h", "vnh")
	  FIELD("b", "vnb") FIELD("q", "vnq") "</union>\n",
	  a64_fpu, N(a64_fpu) },
	{ "org.gnu.gdb.aarch64.pauth", NULL, a64_pauth, N(a64_pauth) },
	{ "org.kvmdbg.aarch64.sys", NULL, a64_sys, N(a64_sys) },
};

static const struct arch_def arches[] = {
	[KVMDBG_GDB_ARCH_X86_64] = { "i386:x86-64", x86_features, N(x86_features) },
	[KVMDBG_GDB_ARCH_AARCH64] = { "aarch64", a64_features, N(a64_features) },
};

/* ---- the derived layout ---------------------------------------------------------------------- */

static const struct arch_def *arch_of(enum kvmdbg_gdb_arch arch)
{
	if ((unsigned int)arch >= N(arches) || !arches[arch].arch)
		return NULL;
	return &arches[arch];
}

/* Register regno of an arch, and its byte offset in the g packet. */
static const struct reg_def *nth(const struct arch_def *a, unsigned int regno, unsigned int *off)
{
	unsigned int o = 0;

	for (unsigned int f = 0; f < a->nfeatures; f++) {
		const struct feature_def *fd = &a->features[f];

		for (unsigned int i = 0; i < fd->nregs; i++) {
			if (regno-- == 0) {
				*off = o;
				return &fd->regs[i];
			}
			o += fd->regs[i].bits / 8u;
		}
	}
	return NULL;
}

GDB_EXPORT int kvmdbg_gdb_reg_count(enum kvmdbg_gdb_arch arch, size_t *g_bytes)
{
	const struct arch_def *a = arch_of(arch);
	unsigned int n = 0;
	size_t bytes = 0;

	if (!a)
		return -EINVAL;
	for (unsigned int f = 0; f < a->nfeatures; f++) {
		for (unsigned int i = 0; i < a->features[f].nregs; i++)
			bytes += a->features[f].regs[i].bits / 8u;
		n += a->features[f].nregs;
	}
	if (g_bytes)
		*g_bytes = bytes;
	return (int)n;
}

static int fill(struct kvmdbg_gdb_reg *reg, const struct reg_def *d, unsigned int regno,
		unsigned int off)
{
	struct kvmdbg_gdb_reg r = { .sz = sizeof(r), .name = d->name, .regno = regno,
				    .offset = off, .size = d->bits / 8u };

	return gdb_sized_out(reg, &r, sizeof(r));
}

GDB_EXPORT int kvmdbg_gdb_reg_get(enum kvmdbg_gdb_arch arch, unsigned int regno,
				   struct kvmdbg_gdb_reg *reg)
{
	const struct arch_def *a = arch_of(arch);
	const struct reg_def *d;
	unsigned int off;

	if (!a || !reg)
		return -EINVAL;
	d = nth(a, regno, &off);
	if (!d)
		return -ENOENT;
	return fill(reg, d, regno, off);
}

GDB_EXPORT int kvmdbg_gdb_reg_lookup(enum kvmdbg_gdb_arch arch, const char *name,
				      struct kvmdbg_gdb_reg *reg)
{
	const struct arch_def *a = arch_of(arch);
	const struct reg_def *d;
	unsigned int off;

	if (!a || !name || !reg)
		return -EINVAL;
	for (unsigned int i = 0; (d = nth(a, i, &off)) != NULL; i++) {
		if (strcmp(d->name, name) == 0) {
			int r = fill(reg, d, i, off);

			return r < 0 ? r : (int)i;
		}
	}
	return -ENOENT;
}

/* ---- target.xml, made once per arch ---------------------------------------------------------- */

#define XML_MAX 16384

static char xml[N(arches)][XML_MAX];
static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

struct sbuf {
	char *p;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len += (size_t)n;
	if (b->len >= b->cap) /* the tables are fixed: XML_MAX is large enough */
		b->len = b->cap - 1;
}

static void make_xml(void)
{
	for (unsigned int i = 0; i < N(arches); i++) {
		const struct arch_def *a = &arches[i];
		struct sbuf b = { xml[i], 0, XML_MAX };

		if (!a->arch)
			continue;
		put(&b, "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
			"<target version=\"1.0\">\n<architecture>%s</architecture>\n", a->arch);
		for (unsigned int f = 0; f < a->nfeatures; f++) {
			const struct feature_def *fd = &a->features[f];

			put(&b, "<feature name=\"%s\">\n%s", fd->name, fd->types ? fd->types : "");
			for (unsigned int r = 0; r < fd->nregs; r++) {
				const struct reg_def *d = &fd->regs[r];

				put(&b, "<reg name=\"%s\" bitsize=\"%u\"", d->name, d->bits);
				if (d->type)
					put(&b, " type=\"%s\"", d->type);
				if (d->group)
					put(&b, " group=\"%s\"", d->group);
				put(&b, "/>\n");
			}
			put(&b, "</feature>\n");
		}
		put(&b, "</target>\n");
	}
}

GDB_EXPORT const char *kvmdbg_gdb_target_xml(enum kvmdbg_gdb_arch arch)
{
	if (!arch_of(arch))
		return NULL;
	pthread_once(&xml_once, make_xml);
	return xml[arch];
}
