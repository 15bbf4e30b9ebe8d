/* SPDX-License-Identifier: MIT */
/*
 * A 16550A UART (8250 family) for kvmdbg-run's Linux guests: the registers
 * Linux's 8250 driver uses (probe, loopback test, FIFO detection, THRE and
 * receive interrupts), transmitting each byte at once through tx(). No input:
 * the receiver only sees the loopback.
 */
#ifndef KVMDBG_RUN_UART8250_H
#define KVMDBG_RUN_UART8250_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct uart8250 {
	pthread_mutex_t lock;
	uint8_t rbr, ier, fcr, lcr, mcr, lsr, msr, scr, dll, dlm;
	bool thr_ipending;
	int level;                      /* the interrupt line as last driven */
	void (*tx)(void *ctx, uint8_t c);
	void (*irq)(void *ctx, int level);
	void *ctx;
};

void uart8250_init(struct uart8250 *u, void (*tx)(void *, uint8_t),
		   void (*irq)(void *, int), void *ctx);
/* reg: 0-7, the offset from the UART's base */
uint8_t uart8250_read(struct uart8250 *u, unsigned int reg);
void uart8250_write(struct uart8250 *u, unsigned int reg, uint8_t v);

#endif
