/*
 * ring_ops.c - operations of other owners on a worker's io_uring ring (see
 * ring.h): a listener's multishot accept, an upstream connect, and closes
 * of sockets through the ring.
 *
 * Owns: the struct sw_ring_op records (a slab of the ring) and the queue of
 * their completions. A record outlives its owner while the kernel still
 * holds its operation: completions name it by pointer, so it is freed only
 * once its last completion is reaped and run.
 *
 *   reap (ring.c, maybe inside an owner's call)
 *      |-- a multishot completion (more to come) -> the queue (opq)
 *      `-- an operation's last completion       -> its record, on op_fin
 *   dispatch (the turn, ring.c) -> ring_ops_run: the queue in order, then
 *      the ended operations: each owner's callback, or, for a record its
 *      owner let go, an accepted socket closed
 *
 * The queue grows (doubling) past its start size only in a burst of
 * accepts larger than any before; an accept it has no room for is closed.
 *
 * Threading: the owning worker's thread only.
 */
#include "ring_ep.h"

#include <shockwave/log.h>
#include <shockwave/metrics.h>

#include <unistd.h>

#define SW_RING_OPQ_START 256u

enum op_kind { OP_NONE, OP_ACCEPT, OP_CONNECT };

struct sw_ring_op {
    struct sw_ring *ring;         /* borrowed: the ring it is on */
    sw_ring_op_cb cb;             /* NULL once the owner let go */
    void *arg;                    /* the owner's */
    struct sw_ring_op *next_fin;  /* on ring->op_fin */
    struct sockaddr_storage addr; /* a connect's peer (copied) */
    unsigned queued;              /* its completions in ring->opq */
    int fin_res;                  /* the last completion's result */
    uint8_t kind;                 /* enum op_kind of what is in flight */
    bool inflight;                /* the kernel holds the operation */
    bool fin_pending;             /* on ring->op_fin */
    bool in_cb;                   /* its callback runs: freed after it */
};

bool
ring_ops_init(struct sw_ring *r)
{
    r->opq = calloc(SW_RING_OPQ_START, sizeof(*r->opq));
    if (r->opq == NULL) {
        return false;
    }
    r->opq_cap = SW_RING_OPQ_START;
    sw_slab_init(&r->ops, sizeof(struct sw_ring_op));
    return true;
}

static void
op_maybe_free(struct sw_ring_op *op)
{
    if (op->cb == NULL && !op->inflight && !op->fin_pending &&
        op->queued == 0 && !op->in_cb) {
        sw_slab_free(&op->ring->ops, op);
    }
}

struct sw_ring_op *
sw_ring_op_new(struct sw_ring *r, sw_ring_op_cb cb, void *arg)
{
    struct sw_ring_op *op = sw_slab_zalloc(&r->ops);
    if (op != NULL) {
        op->ring = r;
        op->cb = cb;
        op->arg = arg;
    }
    return op;
}

struct sw_ring *
sw_ring_op_ring(const struct sw_ring_op *op)
{
    return op->ring;
}

bool
sw_ring_op_busy(const struct sw_ring_op *op)
{
    return op->inflight || op->fin_pending || op->queued > 0;
}

enum sw_status
sw_ring_op_accept(struct sw_ring_op *op, int fd)
{
    SW_ASSERT(!op->inflight);
    struct io_uring_sqe *s = ring_sqe_get(op->ring);
    if (s == NULL) {
        return SW_ERROR;
    }
    io_uring_prep_multishot_accept(s, fd, NULL, NULL,
                                   SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, ring_ud(op, TAG_OP));
    op->kind = OP_ACCEPT;
    op->inflight = true;
    return SW_OK;
}

enum sw_status
sw_ring_op_connect(struct sw_ring_op *op, int fd, const struct sockaddr *sa,
                   socklen_t len)
{
    SW_ASSERT(!op->inflight && len <= sizeof(op->addr));
    struct io_uring_sqe *s = ring_sqe_get(op->ring);
    if (s == NULL) {
        return SW_ERROR;
    }
    /* the kernel reads the address when the entry is submitted, later in
     * the turn: the record's copy is there until the completion */
    memcpy(&op->addr, sa, len);
    io_uring_prep_connect(s, fd, (struct sockaddr *)&op->addr, len);
    io_uring_sqe_set_data64(s, ring_ud(op, TAG_OP));
    op->kind = OP_CONNECT;
    op->inflight = true;
    sw_metrics_inc(op->ring->metrics, SW_METRIC_RING_CONNECTS);
    return SW_OK;
}

void
sw_ring_op_stop(struct sw_ring_op *op)
{
    struct sw_ring *r = op->ring;
    op->cb = NULL; /* what comes in meanwhile is dropped, below */
    if (op->inflight) {
        /* its last completion is reaped, with whatever it accepted */
        ring_sync_cancel(r, ring_ud(op, TAG_OP));
    }
    op_maybe_free(op);
}

void
sw_ring_op_free(struct sw_ring_op *op)
{
    if (op == NULL) {
        return;
    }
    op->cb = NULL;
    if (op->inflight) {
        /* the completion frees it */
        ring_cancel(op->ring, ring_ud(op, TAG_OP));
    }
    op_maybe_free(op);
}

/* ---- completions ------------------------------------------------------ */

void
ring_op_cqe(struct sw_ring *r, struct sw_ring_op *op, int res, unsigned flags)
{
    if (op->kind == OP_ACCEPT && res >= 0) {
        sw_metrics_inc(r->metrics, SW_METRIC_RING_ACCEPTS);
    }
    if ((flags & IORING_CQE_F_MORE) == 0) {
        op->inflight = false;
        op->fin_res = res;
        op->fin_pending = true;
        op->next_fin = r->op_fin;
        r->op_fin = op;
    } else {
        if (r->opq_len == r->opq_cap) {
            struct ring_op_done *q =
                realloc(r->opq, 2 * (size_t)r->opq_cap * sizeof(*q));
            if (q == NULL) {
                sw_log_error("io_uring: out of memory for completions");
                if (op->kind == OP_ACCEPT && res >= 0) {
                    close(res);
                }
                return;
            }
            r->opq = q;
            r->opq_cap *= 2;
        }
        r->opq[r->opq_len++] = (struct ring_op_done){op, res};
        op->queued++;
    }
    ring_kick(r); /* reaped outside a turn: the next one runs it */
}

void
ring_close_cqe(struct sw_ring *r, int res)
{
    SW_UNUSED(r);
    if (res < 0) {
        sw_log_debug("io_uring close: %s", strerror(-res));
    }
}

bool
ring_ops_pending(const struct sw_ring *r)
{
    return r->opq_len > 0 || r->op_fin != NULL;
}

static void
deliver(struct sw_ring_op *op, int res, bool more)
{
    if (op->cb != NULL) {
        op->in_cb = true;
        op->cb(op->arg, res, more);
        op->in_cb = false;
    } else if (op->kind == OP_ACCEPT && res >= 0) {
        close(res); /* accepted as its listener stopped */
    }
    op_maybe_free(op);
}

void
ring_ops_run(struct sw_ring *r)
{
    /* a callback may reap more (its sends find the queue full): they are
     * appended, and run here too */
    for (unsigned i = 0; i < r->opq_len; i++) {
        struct ring_op_done d = r->opq[i];
        d.op->queued--;
        deliver(d.op, d.res, true);
    }
    r->opq_len = 0;
    struct sw_ring_op *list = r->op_fin;
    r->op_fin = NULL; /* ended in a callback: the next turn runs them */
    while (list != NULL) {
        struct sw_ring_op *op = list;
        list = op->next_fin;
        op->fin_pending = false;
        deliver(op, op->fin_res, false);
    }
    if (ring_ops_pending(r)) {
        ring_kick(r);
    }
}

/* At the ring's end: what was reaped is dropped (sockets accepted as the
 * listeners stopped closed); what is in flight ends with the ring. */
void
ring_ops_fini(struct sw_ring *r)
{
    ring_reap(r);
    for (unsigned i = 0; i < r->opq_len; i++) {
        r->opq[i].op->cb = NULL;
    }
    for (struct sw_ring_op *op = r->op_fin; op != NULL; op = op->next_fin) {
        op->cb = NULL;
    }
    ring_ops_run(r);
    free(r->opq);
    r->opq = NULL;
    sw_slab_fini(&r->ops);
}

void
sw_ring_close_fd(struct sw_ring *r, int fd)
{
    struct io_uring_sqe *s = r->exiting ? NULL : ring_sqe_get(r);
    if (s == NULL) {
        close(fd);
        return;
    }
    io_uring_prep_close(s, fd);
    io_uring_sqe_set_data64(s, ring_ud(NULL, TAG_CLOSE));
    sw_metrics_inc(r->metrics, SW_METRIC_RING_CLOSES);
}
