/*
 * ring_splice.c - splice(2) for an end on the io_uring ring: a payload
 * moved between the end's socket and a pipe with IORING_OP_SPLICE, each
 * behind a poll for readiness in the same link (see ring_int.h).
 *
 * io_uring never tries a splice inline: every one runs in the kernel's io
 * worker threads, and a blocking one would hold a worker until the peer
 * sends or reads. So the poll waits (SO_RCVLOWAT still decides when a
 * socket is readable) and the splice after it is non-blocking and short.
 * The poll's completion is skipped when it succeeds; the splice's always
 * comes, -ECANCELED when the poll failed.
 *
 * One splice per direction at a time. Its record (struct ring_splice, from
 * the ring's slab) keeps the result until the owner asks again; an end that
 * leaves its conn cancels its splices, and is freed after their
 * completions.
 *
 * Threading: the owning worker's thread only.
 */
#include "ring_ep.h"

#include <shockwave/metrics.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#define SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)

/* Start a splice of n bytes from `in` to `outfd` once the end's socket is
 * ready (for writing when `out`): SW_AGAIN, or SW_ERROR without memory.
 * Without room in the submission queue the record is done at once with
 * -EAGAIN, and the owner asks again. */
static ssize_t
start(struct sw_conn *c, struct ring_splice **slot, bool out, int in, int outfd,
      size_t n)
{
    struct sw_ring_ep *ep = c->ring;
    struct sw_ring *r = ep->ring;
    struct ring_splice *sp = sw_slab_alloc(&r->splices);
    if (sp == NULL) {
        return sw_io_fail(&c->io, ENOMEM);
    }
    *sp = (struct ring_splice){.ep = ep, .out = out};
    *slot = sp;
    /* the two entries of a link go in one submission */
    if (io_uring_sq_space_left(&r->uring) < 2) {
        ring_submit(r);
    }
    struct io_uring_sqe *poll = NULL;
    struct io_uring_sqe *splice = NULL;
    if (io_uring_sq_space_left(&r->uring) >= 2) {
        poll = io_uring_get_sqe(&r->uring);
        splice = io_uring_get_sqe(&r->uring);
    }
    if (poll == NULL || splice == NULL) {
        sp->res = -EAGAIN;
        sp->done = true;
        ring_news(ep);
        return SW_AGAIN;
    }
    io_uring_prep_poll_add(poll, ep->fd, out ? POLLOUT : POLLIN);
    poll->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(poll, ring_ud(sp, TAG_SPLICE_POLL));
    io_uring_prep_splice(splice, in, -1, outfd, -1, (unsigned)n, SPLICE_FLAGS);
    io_uring_sqe_set_data64(splice, ring_ud(sp, TAG_SPLICE));
    ep->ops++;
    ring_kick(r);
    return SW_AGAIN;
}

/* The result of the splice in *slot, when it is done: bytes moved, or
 * SW_AGAIN for one to start (the kernel found nothing to move, or it was
 * cancelled), or SW_ERROR; SW_AGAIN too while it is in flight. */
static ssize_t
take(struct sw_conn *c, struct ring_splice **slot, bool *start_next)
{
    struct ring_splice *sp = *slot;
    *start_next = sp == NULL;
    if (sp == NULL || !sp->done) {
        return SW_AGAIN;
    }
    int res = sp->res;
    *slot = NULL;
    sw_slab_free(&c->ring->ring->splices, sp);
    if (res >= 0) {
        return res;
    }
    *start_next = res == -EAGAIN || res == -ECANCELED || res == -EINTR;
    return *start_next ? SW_AGAIN : sw_io_fail(&c->io, -res);
}

/* Bytes that came through the ring before the splice began go first: into
 * the pipe with one writev(2) (every queued buffer, at most `want`). */
static ssize_t
received_to_pipe(struct sw_conn *c, int pfd, size_t want)
{
    struct sw_ring_ep *ep = c->ring;
    struct sw_ring *r = ep->ring;
    struct iovec iov[SW_RING_RX_MAX];
    unsigned n = 0;
    size_t asked = 0;
    for (unsigned bid = ep->rx_head;
         bid != SW_RING_NONE && n < SW_RING_RX_MAX && asked < want;
         bid = r->bnext[bid]) {
        size_t k = SW_MIN(want - asked, (size_t)(r->blen[bid] - r->boff[bid]));
        iov[n++] = (struct iovec){ring_buf_at(r, bid) + r->boff[bid], k};
        asked += k;
    }
    ssize_t w = writev(pfd, iov, (int)n);
    if (w <= 0) {
        return SW_AGAIN; /* the pipe is full: the rest after its next drain */
    }
    for (size_t left = (size_t)w; left > 0;) {
        unsigned bid = ep->rx_head;
        size_t k = SW_MIN(left, (size_t)(r->blen[bid] - r->boff[bid]));
        r->boff[bid] += (uint32_t)k;
        left -= k;
        if (r->boff[bid] == r->blen[bid]) {
            ring_rx_pop(ep);
        }
    }
    return w;
}

ssize_t
sw__ring_splice_from(struct sw_conn *c, int pfd, size_t want)
{
    struct sw_ring_ep *ep = c->ring;
    if (ep->rx_head != SW_RING_NONE) {
        return received_to_pipe(c, pfd, want);
    }
    bool next;
    ssize_t n = take(c, &ep->sp_in, &next);
    if (n != SW_AGAIN || !next) {
        return n;
    }
    /* what the receive saw before it stopped */
    if (ep->rx_err != 0) {
        return sw_io_fail(&c->io, ep->rx_err);
    }
    if (ep->rx_eof) {
        return 0;
    }
    return start(c, &ep->sp_in, false, ep->fd, pfd, want);
}

ssize_t
sw__ring_splice_to(struct sw_conn *c, int pfd, size_t n)
{
    struct sw_ring_ep *ep = c->ring;
    bool next;
    ssize_t m = take(c, &ep->sp_out, &next);
    if (m != SW_AGAIN || !next) {
        return m;
    }
    if (ep->tx_err != 0) {
        return sw_io_fail(&c->io, ep->tx_err);
    }
    return start(c, &ep->sp_out, true, pfd, ep->fd, n);
}

void
ring_splice_cqe(struct ring_splice *sp, int res)
{
    struct sw_ring_ep *ep = sp->ep;
    struct sw_ring *r = ep->ring;
    bool out = sp->out;
    ep->ops--;
    if (res > 0) {
        sw_metrics_inc(r->metrics, SW_METRIC_RING_SPLICES);
    }
    if (ep->conn == NULL) {
        /* the end left its conn (closed): nobody takes the result */
        struct ring_splice **slot = out ? &ep->sp_out : &ep->sp_in;
        *slot = NULL;
        sw_slab_free(&r->splices, sp);
    } else {
        sp->res = res;
        sp->done = true;
    }
    if (out || ep->conn == NULL) {
        ring_tx_settled(ep); /* a FIN, room, a lingering close; may free */
    } else {
        ring_news(ep);
    }
}

static void
cancel_one(struct sw_ring_ep *ep, struct ring_splice **slot)
{
    struct sw_ring *r = ep->ring;
    struct ring_splice *sp = *slot;
    if (sp == NULL) {
        return;
    }
    if (sp->done) {
        *slot = NULL;
        sw_slab_free(&r->splices, sp);
        return;
    }
    /* whichever of the two is waiting: the poll, or the splice after it */
    ring_cancel(r, ring_ud(sp, TAG_SPLICE_POLL));
    ring_cancel(r, ring_ud(sp, TAG_SPLICE));
}

void
ring_splice_cancel(struct sw_ring_ep *ep)
{
    cancel_one(ep, &ep->sp_in);
    cancel_one(ep, &ep->sp_out);
    ep->spliced = false;
}

bool
ring_splice_in_done(const struct sw_ring_ep *ep)
{
    return ep->sp_in != NULL && ep->sp_in->done;
}
