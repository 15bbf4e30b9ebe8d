/* SPDX-License-Identifier: MIT */
/* Reading a fuzz input as a stream of fields; zeros once it is used up. */
#ifndef KVMDBG_FUZZ_INPUT_H
#define KVMDBG_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct fin {
	const uint8_t *p;
	size_t n, pos;
};

static inline uint64_t fin_bytes(struct fin *f, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < bytes; i++)
		v |= (uint64_t)(f->pos < f->n ? f->p[f->pos++] : 0) << (8 * i);
	return v;
}

#define fin_u8(f) ((uint8_t)fin_bytes((f), 1))
#define fin_u32(f) ((uint32_t)fin_bytes((f), 4))
#define fin_u64(f) fin_bytes((f), 8)

/* A failed invariant: say which and abort (libFuzzer keeps the input). */
#define FUZZ_REQUIRE(cond, ...)                                                 \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                           \
			fprintf(stderr, "\n");                                  \
			abort();                                                \
		}                                                               \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
