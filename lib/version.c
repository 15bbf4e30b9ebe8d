/* SPDX-License-Identifier: MIT */
#include "kvmdbg-int.h"

KVMDBG_EXPORT const char *kvmdbg_version(void)
{
	return KVMDBG_VERSION_STRING;
}
