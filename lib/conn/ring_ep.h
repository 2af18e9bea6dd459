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
enum { TAG_RX = 1, TAG_TX = 2, TAG_OP = 3, TAG_CLOSE = 4, TAG_MASK = 7 };
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
    bool want_read;            /* the owner's read interest */
    bool direct;               /* reads straight from the socket */
    bool to_direct;            /* direct once the received bytes are read */
    bool starved;              /* direct because the buffers ran out */
    bool rx_eof;               /* FIN after the queued bytes */
    bool rev_added, wev_added; /* the conn's libevent events */
    bool wait_room;            /* the owner waits for room in tx */
    bool shut_after_tx;        /* shutdown(SHUT_WR) once tx is sent */
    bool lingering;            /* closed, its queued sends still going */
    bool in_dirty, in_news, in_linger, gently;
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
    struct sw_ring_ep *dirty, *news, *linger;
    struct sw_ring_ep *all; /* every end not yet freed */
    struct sw_slab eps;
    struct sw_metrics *metrics; /* borrowed: the worker's */
    struct sw_slab ops;         /* struct sw_ring_op records */
    struct ring_op_done *opq;   /* owned: multishot completions to run */
    unsigned opq_len, opq_cap;
    struct sw_ring_op *op_fin; /* ended operations to run (their last) */
    bool exiting;              /* sw_ring_free: closes are close(2) */
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

/* Bytes to send: a send goes with the turn's submission. */
void ring_tx_dirty(struct sw_ring_ep *ep);

/* Close the end's socket (FIN and drain first when closed gently). */
void ring_close_socket(struct sw_ring_ep *ep);

/* A closed end with sends still queued: kept until they are done, at most
 * SW_RING_LINGER_MS. */
void ring_linger_start(struct sw_ring_ep *ep);

#endif
