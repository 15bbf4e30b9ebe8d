/* SPDX-License-Identifier: MIT */
/* A 16550A UART: see uart8250.h. Register semantics as in the 16550A data sheet. */
#include <string.h>

#include "uart8250.h"

enum { RBR_THR, IER, IIR_FCR, LCR, MCR, LSR, MSR, SCR };

#define LCR_DLAB   0x80
#define MCR_LOOP   0x10
#define LSR_DR     0x01
#define LSR_THRE   0x20
#define LSR_TEMT   0x40
#define IER_RDI    0x01
#define IER_THRI   0x02
#define IER_RLSI   0x04
#define IIR_NO_INT 0x01
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_RLSI   0x06
#define IIR_FIFO   0xc0
#define FCR_ENABLE 0x01
#define MSR_CTS    0x10
#define MSR_DSR    0x20
#define MSR_RI     0x40
#define MSR_DCD    0x80

void uart8250_init(struct uart8250 *u, void (*tx)(void *, uint8_t),
		   void (*irq)(void *, int), void *ctx)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	u->lsr = LSR_THRE | LSR_TEMT;
	u->msr = MSR_DCD | MSR_DSR | MSR_CTS;
	u->dll = 12; /* 9600 baud */
	u->tx = tx;
	u->irq = irq;
	u->ctx = ctx;
}

static uint8_t iir(const struct uart8250 *u)
{
	uint8_t fifo = (u->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((u->ier & IER_RLSI) && (u->lsr & 0x1e))
		return fifo | IIR_RLSI;
	if ((u->ier & IER_RDI) && (u->lsr & LSR_DR))
		return fifo | IIR_RDI;
	if ((u->ier & IER_THRI) && u->thr_ipending)
		return fifo | IIR_THRI;
	return fifo | IIR_NO_INT;
}

static void update_irq(struct uart8250 *u)
{
	int level = !(iir(u) & IIR_NO_INT);

	if (level != u->level) {
		u->level = level;
		u->irq(u->ctx, level);
	}
}

/* In loopback the modem inputs follow the outputs: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
static uint8_t msr(const struct uart8250 *u)
{
	if (!(u->mcr & MCR_LOOP))
		return u->msr;
	return (uint8_t)(((u->mcr & 0x01) ? MSR_DSR : 0) | ((u->mcr & 0x02) ? MSR_CTS : 0) |
			 ((u->mcr & 0x04) ? MSR_RI : 0) | ((u->mcr & 0x08) ? MSR_DCD : 0));
}

uint8_t uart8250_read(struct uart8250 *u, unsigned int reg)
{
	uint8_t v = 0xff;

	pthread_mutex_lock(&u->lock);
	switch (reg) {
	case RBR_THR:
		if (u->lcr & LCR_DLAB) {
			v = u->dll;
		} else {
			v = u->rbr;
			u->lsr &= (uint8_t)~LSR_DR;
		}
		break;
	case IER:
		v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
		break;
	case IIR_FCR:
		v = iir(u);
		if ((v & 0x0f) == IIR_THRI)
			u->thr_ipending = false; /* reading IIR acknowledges THRE */
		break;
	case LCR:
		v = u->lcr;
		break;
	case MCR:
		v = u->mcr;
		break;
	case LSR:
		v = u->lsr;
		u->lsr &= (uint8_t)~0x1e; /* overrun, parity, framing, break clear on read */
		break;
	case MSR:
		v = msr(u);
		break;
	case SCR:
		v = u->scr;
		break;
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return v;
}

void uart8250_write(struct uart8250 *u, unsigned int reg, uint8_t v)
{
	pthread_mutex_lock(&u->lock);
	switch (reg) {
	case RBR_THR:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
			break;
		}
		/* The byte leaves at once: THRE drops and rises again, an edge. */
		u->thr_ipending = false;
		update_irq(u);
		if (u->mcr & MCR_LOOP) {
			u->rbr = v;
			u->lsr |= LSR_DR;
		} else {
			u->tx(u->ctx, v);
		}
		u->thr_ipending = true;
		break;
	case IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		if (!(u->ier & IER_THRI) && (v & IER_THRI))
			u->thr_ipending = true; /* THR is always empty */
		u->ier = v & 0x0f;
		break;
	case IIR_FCR:
		u->fcr = v & 0xc9;
		if (v & 0x02) /* clear the receive FIFO */
			u->lsr &= (uint8_t)~LSR_DR;
		break;
	case LCR:
		u->lcr = v;
		break;
	case MCR:
		u->mcr = v & 0x1f;
		break;
	case SCR:
		u->scr = v;
		break;
	default: /* LSR, MSR: read-only */
		break;
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}
