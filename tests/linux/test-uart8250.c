/* SPDX-License-Identifier: MIT */
/*
 * examples/uart8250.c without a VM: what Linux's 8250 driver relies on
 * (scratch and IER read back, the loopback MSR test, FIFO detection, the THRE
 * interrupt with its edge on each transmitted byte, IIR acknowledging THRE)
 * and that bytes leave through tx() in order.
 */
#include <stdio.h>
#include <string.h>

#include "uart8250.h"

static char out[64];
static size_t nout;
static int level, edges;

static void tx(void *ctx, uint8_t c)
{
	(void)ctx;
	if (nout < sizeof(out))
		out[nout++] = (char)c;
}

static void irq(void *ctx, int l)
{
	(void)ctx;
	if (l && !level)
		edges++;
	level = l;
}

static int passed, failed;

static void expect(const char *what, unsigned int got, unsigned int want)
{
	if (got != want) {
		printf("FAIL: %s: 0x%x, expected 0x%x\n", what, got, want);
		failed++;
	} else {
		printf("ok: %s\n", what);
		passed++;
	}
}

int main(void)
{
	struct uart8250 u;
	int e;

	uart8250_init(&u, tx, irq, NULL);
	expect("LSR after reset: THRE | TEMT", uart8250_read(&u, 5), 0x60);
	expect("IIR after reset: no interrupt", uart8250_read(&u, 2), 0x01);
	uart8250_write(&u, 7, 0xa5);
	expect("scratch register reads back", uart8250_read(&u, 7), 0xa5);
	uart8250_write(&u, 1, 0x0f);
	expect("IER keeps its low 4 bits", uart8250_read(&u, 1), 0x0f);
	uart8250_write(&u, 1, 0);
	expect("IER cleared: line low", (unsigned int)level, 0);

	/* divisor latch */
	uart8250_write(&u, 3, 0x80);
	uart8250_write(&u, 0, 0x01);
	uart8250_write(&u, 1, 0x00);
	expect("DLL with DLAB", uart8250_read(&u, 0), 0x01);
	uart8250_write(&u, 3, 0x03);
	expect("LCR", uart8250_read(&u, 3), 0x03);
	expect("DLAB off: IER again", uart8250_read(&u, 1), 0x00);

	/* Linux's loopback test: MCR = LOOP | OUT2 | RTS -> MSR high nibble 0x90 */
	uart8250_write(&u, 4, 0x1a);
	expect("loopback MSR (DCD | CTS)", uart8250_read(&u, 6) & 0xf0, 0x90);
	uart8250_write(&u, 0, 'x');
	expect("loopback: the byte is received", uart8250_read(&u, 5) & 0x01, 0x01);
	expect("loopback: RBR", uart8250_read(&u, 0), 'x');
	expect("loopback: nothing went out", (unsigned int)nout, 0);
	uart8250_write(&u, 4, 0x0b);
	expect("MSR outside loopback: DCD | DSR | CTS", uart8250_read(&u, 6) & 0xf0, 0xb0);

	uart8250_write(&u, 2, 0x07);
	expect("FIFO enabled: IIR bits 6-7", uart8250_read(&u, 2) & 0xc0, 0xc0);

	/* THRE interrupt: enabling it raises the line; reading IIR acknowledges */
	e = edges;
	uart8250_write(&u, 1, 0x02);
	expect("IER.THRI: line high", (unsigned int)level, 1);
	expect("IER.THRI: one edge", (unsigned int)(edges - e), 1);
	expect("IIR: THRE", uart8250_read(&u, 2) & 0x0f, 0x02);
	expect("IIR read: line low", (unsigned int)level, 0);
	expect("IIR again: no interrupt", uart8250_read(&u, 2) & 0x0f, 0x01);

	/* each byte sent: an edge, THRE pending again */
	e = edges;
	uart8250_write(&u, 0, 'o');
	uart8250_write(&u, 0, 'k');
	expect("two bytes: two edges", (unsigned int)(edges - e), 2);
	expect("bytes out in order", (unsigned int)(nout == 2 && memcmp(out, "ok", 2) == 0), 1);
	expect("THRE pending after the bytes", uart8250_read(&u, 2) & 0x0f, 0x02);
	uart8250_write(&u, 0, '!');
	uart8250_write(&u, 1, 0);
	expect("IER cleared with THRE pending: line low", (unsigned int)level, 0);

	printf("kvmdbg-result: uart8250: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
