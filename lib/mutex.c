/* SPDX-License-Identifier: MIT */
/*
 * The VM's lock (struct kvmdbg_mutex): a futex mutex of our own, the
 * three-state one of Drepper's "Futexes Are Tricky" (0 free, 1 held, 2 held
 * with waiters that may sleep), instead of a pthread_mutex_t. Issue 17: the
 * software breakpoint's step-over takes it twice a hit, and after the
 * world switch of every KVM_RUN the code it runs is cold; glibc's
 * pthread_mutex_lock and unlock are another code page and a longer way
 * (the mutex type's dispatch, the lock elision check) than one
 * compare-and-swap and one exchange, here in the step-over's own pages.
 * Measured in the arm64 bed (CNTVCT around the calls, bookworm VHE): 1.2-1.5
 * µs a pthread_mutex_lock and 0.7-0.8 µs an unlock, cold, where the whole
 * hit costs the library 14 µs more than the raw loop.
 *
 * Not recursive, no owner check, no robustness: what the VM's default
 * pthread mutex gave. The acquire of the compare-and-swap (or of the
 * exchange after a wait) pairs with the release of the unlocker's exchange,
 * which is what the critical sections need, and what ThreadSanitizer sees.
 */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvmdbg-int.h"

enum { MUTEX_FREE, MUTEX_HELD, MUTEX_WAITERS };

void kvmdbg_mutex_init(struct kvmdbg_mutex *m)
{
	atomic_init(&m->word, MUTEX_FREE);
}

/* Contended: mark the lock as having waiters and sleep until it is free,
 * taking it (still marked: the unlock then wakes one more, which finds it
 * held or free and goes on). EINTR and a changed word just loop. */
static KVMDBG_WARM __attribute__((noinline)) void mutex_wait(struct kvmdbg_mutex *m, uint32_t c)
{
	if (c != MUTEX_WAITERS)
		c = atomic_exchange_explicit(&m->word, MUTEX_WAITERS, memory_order_acquire);
	while (c != MUTEX_FREE) {
		syscall(SYS_futex, &m->word, FUTEX_WAIT_PRIVATE, MUTEX_WAITERS, NULL, NULL, 0);
		c = atomic_exchange_explicit(&m->word, MUTEX_WAITERS, memory_order_acquire);
	}
}

static KVMDBG_WARM __attribute__((noinline)) void mutex_wake(struct kvmdbg_mutex *m)
{
	syscall(SYS_futex, &m->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Out of line (counted by bench/count as a lock), in the software
 * breakpoint step-over's region, the one path that takes it on a hit. */
KVMDBG_STEP_SW __attribute__((noinline)) void kvmdbg_mutex_lock(struct kvmdbg_mutex *m)
{
	uint32_t c = MUTEX_FREE;

	if (!atomic_compare_exchange_strong_explicit(&m->word, &c, MUTEX_HELD, memory_order_acquire,
						     memory_order_relaxed))
		mutex_wait(m, c);
}

KVMDBG_STEP_SW __attribute__((noinline)) void kvmdbg_mutex_unlock(struct kvmdbg_mutex *m)
{
	if (atomic_exchange_explicit(&m->word, MUTEX_FREE, memory_order_release) == MUTEX_WAITERS)
		mutex_wake(m);
}
