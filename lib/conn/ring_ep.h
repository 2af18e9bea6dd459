/*
 * ring_ep.h - the io_uring engine's own state: the ring and the end each
 * connection on it has, shared by ring.c (the ring, completions, the turn)
 * and ring_conn.c (what conn.c asks of an end). Private to lib/conn.
 */
#ifndef SHOCKWAVE_RING_EP_H
#define SHOCKWAVE_RING_EP_H

#include "ring_int.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <liburing.h>
#include <shockwave/slab.h>

#define SW_RING_SQ 4096u
#define SW_RING_CQ 32768u /* ends x a few completions */
#define SW_RING_BGID 7
#define SW_RING_NONE 0xffffu
#define SW_RING_RX_MAX 4u         /* received buffers an end may hold */
#define SW_RING_LINGER_MS 10000   /* queued sends of a closed end, at most */
#define SW_RING_EXIT_WAIT_MS 2000 /* for them when the worker exits */
#define SW_RING_DRAIN_READS 16    /* as sw_conn_close_gently */

/* A completion's user_data: its record's address | the tag. */
enum {
    TAG_RX = 1,
    TAG_TX = 2,
    TAG_OP = 3,
    TAG_CLOSE = 4,
    TAG_SPLICE = 5,      /* a struct ring_splice's splice */
    TAG_SPLICE_POLL = 6, /* the poll linked before it (seen on failure) */
    TAG_MASK = 7
};
enum rx_state { RX_IDLE, RX_ARMED, RX_CANCELLING };

struct sw_ring_ep {
    struct sw_ring *ring;
    struct sw_conn *conn;     /* borrowed; NULL once closed or left */
    struct sw_buf *tx;        /* owned (pool): bytes to send */
    struct sw_buf_pool *bufs; /* borrowed: where tx comes from */
    struct sw_ring_ep *next_dirty, *next_news, *next_linger;
    struct sw_ring_ep *all_prev, *all_next; /* every end of the ring */
    uint64_t linger_until_ms;
    uint32_t tx_inflight;      /* bytes of tx the kernel is sending */
    int fd;                    /* the socket (-1 once closed) */
    int rx_err, tx_err;        /* errno of a failed receive / send */
    unsigned ops;              /* operations in flight */
    uint16_t rx_head, rx_tail; /* received buffers, oldest first */
    uint16_t rx_nbufs;         /* received buffers queued (up to all of them) */
    uint8_t rx_state;          /* enum rx_state */
    bool rev_added, wev_added; /* the conn's libevent events */
    bool want_read : 1;        /* the owner's read interest */
    bool direct : 1;           /* reads straight from the socket */
    bool starved : 1;          /* direct because the buffers ran out */
    bool spliced : 1;          /* its socket is spliced from: no receive */
    bool rx_eof : 1;           /* FIN after the queued bytes */
    bool wait_room : 1;        /* the owner waits for room in tx */
    bool shut_after_tx : 1;    /* shutdown(SHUT_WR) once tx is sent */
    bool lingering : 1;        /* closed, its queued sends still going */
    bool in_dirty : 1, in_news : 1, in_linger : 1, gently : 1;
    /* owned (the ring's slab): a splice from the socket, one into it */
    struct ring_splice *sp_in, *sp_out;
};

struct sw_ring {
    struct io_uring uring;
    struct io_uring_buf_ring *br;
    uint8_t *mem;      /* owned (mmap): SW_RING_BUFS x SW_RING_BUF_SIZE */
    uint32_t *blen;    /* bytes in each buffer */
    uint32_t *boff;    /* of them already read */
    uint16_t *bnext;   /* next buffer of the same end */
    unsigned bufs_out; /* buffers queued at ends */
    struct event_base *base;
    struct event ring_ev, flush_ev, news_ev, linger_ev;
    bool flush_queued, in_turn;
    bool rx_unlimited; /* the kernel has no multishot receive limit */
    struct sw_ring_ep *dirty, *news, *linger;
    struct sw_ring_ep *all; /* every end not yet freed */
    struct sw_slab eps;
    struct sw_metrics *metrics; /* borrowed: the worker's */
    struct sw_slab ops;         /* struct sw_ring_op records */
    struct sw_slab splices;     /* struct ring_splice records */
    struct ring_op_done *opq;   /* owned: multishot completions to run */
    unsigned opq_len, opq_cap;
    struct sw_ring_op *op_fin; /* ended operations to run (their last) */
    bool exiting;              /* sw_ring_free: closes are close(2) */
};

/* One splice of an end in flight, or its result waiting for the owner
 * (ring_splice.c). */
struct ring_splice {
    struct sw_ring_ep *ep;
    int res;   /* the splice's result, once done */
    bool done; /* its completion came */
    bool out;  /* pipe -> socket (else socket -> pipe) */
};

/* A multishot completion waiting for the turn (ring_ops.c). */
struct ring_op_done {
    struct sw_ring_op *op;
    int res;
};

uint64_t ring_ud(const void *p, unsigned tag);

/* The next submission entry (submitting and reaping to make room when the
 * queue is full; the flush is kicked), or NULL when there is none. */
struct io_uring_sqe *ring_sqe_get(struct sw_ring *r);

/* The flush event runs after the current callbacks (outside a turn). */
void ring_kick(struct sw_ring *r);

/* Cancel the operation whose user_data is `data`, with the turn's
 * submission (asynchronous: its completion says when). False when the
 * ring has no room now. */
bool ring_cancel(struct sw_ring *r, uint64_t data);

/* Cancel it and wait until it has ended, its completions reaped: the
 * kernel holds nothing of it afterwards. */
void ring_sync_cancel(struct sw_ring *r, uint64_t data);

/* Everything queued goes to the kernel now. */
void ring_submit(struct sw_ring *r);

/* Every completion there is into its record; no owner runs here. */
void ring_reap(struct sw_ring *r);

/* ring_ops.c: the operations of other owners. */
bool ring_ops_init(struct sw_ring *r);
void ring_ops_fini(struct sw_ring *r);
void ring_op_cqe(struct sw_ring *r, struct sw_ring_op *op, int res,
                 unsigned flags);
void ring_close_cqe(struct sw_ring *r, int res);
/* Completions reaped and not run yet. */
bool ring_ops_pending(const struct sw_ring *r);
/* Run them (the turn's dispatch). */
void ring_ops_run(struct sw_ring *r);

/* ring_splice.c: a splice's completion; an end that leaves its conn
 * cancels its splices. */
void ring_splice_cqe(struct ring_splice *sp, int res);
void ring_splice_cancel(struct sw_ring_ep *ep);
/* A splice from the socket finished, its result not taken yet. */
bool ring_splice_in_done(const struct sw_ring_ep *ep);

/* Free an end nothing refers to any more (closed, nothing in flight, on
 * no list). */
void ring_maybe_free(struct sw_ring_ep *ep);

/* A new end, on the ring's list of ends (NULL without memory). */
struct sw_ring_ep *ring_ep_new(struct sw_ring *r);

uint8_t *ring_buf_at(const struct sw_ring *r, unsigned bid);

/* The oldest received buffer is read: back to the kernel. */
void ring_rx_pop(struct sw_ring_ep *ep);
void ring_rx_drop_all(struct sw_ring_ep *ep);

/* Arm the multishot receive when the end wants to read and may. */
void ring_rx_arm(struct sw_ring_ep *ep);

/* Cancel it (asynchronously: what arrives meanwhile is kept). */
void ring_rx_cancel(struct sw_ring_ep *ep);

/* Cancel it and wait until it has ended (completions reaped). */
void ring_rx_stop_now(struct sw_ring_ep *ep);

/* Something for the owner to read: queued bytes, or an end it has not
 * seen yet. */
bool ring_rx_has_news(const struct sw_ring_ep *ep);

/* The end has something for its owner: it runs in the turn's dispatch
 * (or the next turn's, when the turn is over). */
void ring_news(struct sw_ring_ep *ep);

/* Nothing queued or in flight toward the socket. */
bool ring_tx_idle(const struct sw_ring_ep *ep);

/* A send or a splice into the socket ended: the FIN that waited for it,
 * the owner that waits for room, a lingering close. */
void ring_tx_settled(struct sw_ring_ep *ep);

/* Bytes to send: a send goes with the turn's submission. */
void ring_tx_dirty(struct sw_ring_ep *ep);

/* Close the end's socket (FIN and drain first when closed gently). */
void ring_close_socket(struct sw_ring_ep *ep);

/* A closed end with sends still queued: kept until they are done, at most
 * SW_RING_LINGER_MS. */
void ring_linger_start(struct sw_ring_ep *ep);

#endif
