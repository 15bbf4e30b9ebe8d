// SPDX-License-Identifier: MIT
/* Sized structs: every option, result and callback struct starts with
 * `size_t sz`, the size the caller was built with. */
#include <errno.h>
#include <string.h>

#include "gdb-int.h"

int gdb_sized_in(void *dst, size_t dst_size, const void *src)
{
	const unsigned char *s = src;
	size_t src_sz;

	if (!src)
		return -EINVAL;
	memcpy(&src_sz, src, sizeof(src_sz));
	if (src_sz < sizeof(size_t))
		return -EINVAL;
	for (size_t i = dst_size; i < src_sz; i++)
		if (s[i])
			return -E2BIG;
	memset(dst, 0, dst_size);
	memcpy(dst, src, src_sz < dst_size ? src_sz : dst_size);
	memcpy(dst, &dst_size, sizeof(dst_size));
	return 0;
}

int gdb_sized_out(void *dst, const void *src, size_t src_size)
{
	size_t sz;

	if (!dst)
		return -EINVAL;
	memcpy(&sz, dst, sizeof(sz));
	if (sz < sizeof(size_t))
		return -EINVAL;
	sz = sz < src_size ? sz : src_size;
	memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t),
	       sz - sizeof(size_t));
	return 0;
}
