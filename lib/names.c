/* SPDX-License-Identifier: MIT */
#include "kvmdbg-int.h"

KVMDBG_EXPORT const char *kvmdbg_stop_name(enum kvmdbg_stop kind)
{
	switch (kind) {
	case KVMDBG_STOP_STEP:
		return "step";
	case KVMDBG_STOP_BREAK:
		return "break";
	case KVMDBG_STOP_WATCH:
		return "watch";
	case KVMDBG_STOP_GUEST:
		return "guest";
	case KVMDBG_STOP_NONE:
		return "none";
	}
	return "unknown";
}

KVMDBG_EXPORT const char *kvmdbg_type_name(enum kvmdbg_type type)
{
	switch (type) {
	case KVMDBG_BREAK_SW:
		return "sw-break";
	case KVMDBG_BREAK_HW:
		return "hw-break";
	case KVMDBG_WATCH_WRITE:
		return "watch-write";
	case KVMDBG_WATCH_READ:
		return "watch-read";
	case KVMDBG_WATCH_ACCESS:
		return "watch-access";
	}
	return "unknown";
}

static const struct {
	uint64_t bit;
	const char *name;
} feature_names[] = {
	{KVMDBG_FEAT_STEP, "step"},
	{KVMDBG_FEAT_BLOCK_IRQ, "block_irq"},
	{KVMDBG_FEAT_HW_BREAK, "hw_break"},
	{KVMDBG_FEAT_WATCH_WRITE, "watch_write"},
	{KVMDBG_FEAT_WATCH_ACCESS, "watch_access"},
	{KVMDBG_FEAT_WATCH_READ, "watch_read"},
	{KVMDBG_FEAT_SW_BREAK, "sw_break"},
	{KVMDBG_FEAT_INJECT_DB, "inject_db"},
	{KVMDBG_FEAT_INJECT_BP, "inject_bp"},
	{KVMDBG_FEAT_RF_RESUME, "rf_resume"},
	{KVMDBG_FEAT_GD_EXIT, "gd_exit"},
	{KVMDBG_FEAT_GUEST_BP_LIVE, "guest_bp_live"},
	{KVMDBG_FEAT_GUEST_REGS_RAW, "guest_regs_raw"},
	{KVMDBG_FEAT_VERIFIED, "verified"},
};

KVMDBG_EXPORT const char *kvmdbg_feature_name(uint64_t feature)
{
	for (size_t i = 0; i < ARRAY_SIZE(feature_names); i++)
		if (feature_names[i].bit == feature)
			return feature_names[i].name;
	return NULL;
}

KVMDBG_EXPORT uint64_t kvmdbg_type_feature(enum kvmdbg_type type)
{
	switch (type) {
	case KVMDBG_BREAK_SW:
		return KVMDBG_FEAT_SW_BREAK;
	case KVMDBG_BREAK_HW:
		return KVMDBG_FEAT_HW_BREAK;
	case KVMDBG_WATCH_WRITE:
		return KVMDBG_FEAT_WATCH_WRITE;
	case KVMDBG_WATCH_READ:
		return KVMDBG_FEAT_WATCH_READ;
	case KVMDBG_WATCH_ACCESS:
		return KVMDBG_FEAT_WATCH_ACCESS;
	}
	return 0;
}
