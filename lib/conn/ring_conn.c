/*
 * ring_conn.c - an end on the io_uring ring as conn.c sees it: joining and
 * leaving, interest, reads from the received buffers, sends into the
 * staging buffer, close (see ring_int.h; the ring itself is ring.c). A TLS
 * end's records reach these reads and sends through ring_bio.c.
 *
 * Threading: the owning worker's thread only.
 */
#include "ring_ep.h"

#include <shockwave/log.h>

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* ---- what conn.c asks ------------------------------------------------- */

bool
sw__ring_join(struct sw_ring *r, struct sw_conn *c)
{
    SW_ASSERT(c->ring == NULL && c->io.fd >= 0);
    struct sw_ring_ep *ep = ring_ep_new(r);
    if (ep == NULL) {
        return false;
    }
    ep->conn = c;
    ep->bufs = c->bufs;
    ep->fd = c->io.fd;
    ep->rx_head = ep->rx_tail = SW_RING_NONE;
    /* the libevent events the end had are the ring's to keep or drop */
    ep->rev_added = sw_conn_has(c, SW_CONN_F_READING);
    ep->wev_added = sw_conn_has(c, SW_CONN_F_WRITING);
    c->ring = ep;
    bool rd = sw_conn_has(c, SW_CONN_F_READING);
    bool wr = sw_conn_has(c, SW_CONN_F_WRITING);
    if (ep->rev_added) {
        event_del(&c->rev);
        ep->rev_added = false;
    }
    c->flags &= ~(unsigned)(SW_CONN_F_READING | SW_CONN_F_WRITING);
    sw__ring_watch(c, rd, wr);
    return true;
}

static void
set_event(struct event *ev, bool *added, bool yes)
{
    if (yes && !*added) {
        event_add(ev, NULL);
    } else if (!yes && *added) {
        event_del(ev);
    }
    *added = yes;
}

void
sw__ring_watch(struct sw_conn *c, bool read, bool write)
{
    struct sw_ring_ep *ep = c->ring;
    ep->want_read = read;
    if (ep->direct) {
        set_event(&c->rev, &ep->rev_added, read);
    } else if (read) {
        ring_rx_arm(ep);
        if (ring_rx_has_news(ep)) {
            ring_news(ep); /* level-triggered, as epoll: read again */
        }
    } else {
        ring_rx_cancel(ep); /* what arrives meanwhile waits in its buffers */
    }
    c->flags = read ? c->flags | SW_CONN_F_READING
                    : c->flags & ~(unsigned)SW_CONN_F_READING;
    c->flags = write ? c->flags | SW_CONN_F_WRITING
                     : c->flags & ~(unsigned)SW_CONN_F_WRITING;
    /* Writable: the socket itself while nothing is queued (a splice
     * writes there), else once the queued bytes are sent (the completion
     * says so; partial room would wake an owner that waits to splice
     * again and again). */
    bool idle = ring_tx_idle(ep) && ep->tx_err == 0;
    set_event(&c->wev, &ep->wev_added, write && idle);
    ep->wait_room = write && !idle;
}

static void
go_direct(struct sw_ring_ep *ep)
{
    ep->direct = true;
    set_event(&ep->conn->rev, &ep->rev_added, ep->want_read);
}

ssize_t
sw__ring_recv(struct sw_conn *c, uint8_t *p, size_t room)
{
    struct sw_ring_ep *ep = c->ring;
    struct sw_ring *r = ep->ring;
    size_t got = 0;
    while (got < room && ep->rx_head != SW_RING_NONE) {
        unsigned bid = ep->rx_head;
        size_t k = SW_MIN(room - got, (size_t)(r->blen[bid] - r->boff[bid]));
        memcpy(p + got, ring_buf_at(r, bid) + r->boff[bid], k);
        r->boff[bid] += (uint32_t)k;
        got += k;
        if (r->boff[bid] == r->blen[bid]) {
            ring_rx_pop(ep);
        }
    }
    if (got > 0) {
        ring_rx_arm(ep); /* held buffers went back: receive again */
        return (ssize_t)got;
    }
    if (ep->rx_err != 0) {
        return sw_io_fail(&c->io, ep->rx_err);
    }
    if (ep->rx_eof) {
        return 0;
    }
    if (ep->direct) {
        return SW_RING_DIRECT;
    }
    if (ep->starved && ep->rx_state == RX_IDLE) {
        go_direct(ep); /* until buffers are back (sw__ring_ring_reads) */
        return SW_RING_DIRECT;
    }
    ring_rx_arm(ep);
    return SW_AGAIN;
}

ssize_t
sw__ring_sendv(struct sw_conn *c, const struct iovec *iov, int n)
{
    struct sw_ring_ep *ep = c->ring;
    if (ep->tx_err != 0) {
        return sw_io_fail(&c->io, ep->tx_err);
    }
    if (ep->tx == NULL) {
        /* the worker's own size, prefilled: no malloc on the data path
         * (the larger classes start empty) */
        ep->tx = sw_buf_get(c->bufs);
        if (ep->tx == NULL) {
            sw_log_error("%s fd %d: out of memory for a send buffer", c->role,
                         c->io.fd);
            return sw_io_fail(&c->io, ENOMEM);
        }
    }
    struct sw_buf *b = ep->tx;
    if (ep->tx_inflight == 0) {
        if (b->pos == b->last) {
            b->pos = b->last = b->start;
        } else if (b->pos != b->start) {
            sw_buf_compact(b);
        }
    }
    size_t taken = 0;
    for (int i = 0; i < n; i++) {
        size_t k = SW_MIN(iov[i].iov_len, sw_buf_room(b));
        memcpy(b->last, iov[i].iov_base, k);
        b->last += k;
        taken += k;
        if (k < iov[i].iov_len) {
            break;
        }
    }
    if (taken > 0) {
        ring_tx_dirty(ep);
        if (ep->wev_added) {
            /* the socket's own writability says nothing of the staging
             * buffer now: wait for a send's completion instead */
            set_event(&c->wev, &ep->wev_added, false);
            ep->wait_room = sw_conn_has(c, SW_CONN_F_WRITING);
        }
    }
    return (ssize_t)taken;
}

/* The end leaves its conn: events stopped, received bytes dropped. */
static void
unbind(struct sw_conn *c)
{
    struct sw_ring_ep *ep = c->ring;
    set_event(&c->rev, &ep->rev_added, false);
    set_event(&c->wev, &ep->wev_added, false);
    c->flags &= ~(unsigned)(SW_CONN_F_READING | SW_CONN_F_WRITING);
    ring_rx_cancel(ep);
    ring_splice_cancel(ep);
    ring_rx_drop_all(ep);
    ep->conn = NULL;
    ep->want_read = false;
    c->ring = NULL;
}

void
sw__ring_close(struct sw_conn *c, bool gently)
{
    struct sw_ring_ep *ep = c->ring;
    unbind(c);
    c->io.fd = -1; /* the end has the socket now */
    ep->gently = gently;
    if (ring_tx_idle(ep) || ep->tx_err != 0) {
        ring_close_socket(ep);
    } else {
        /* bytes the owner was told were sent: they go out first */
        ring_linger_start(ep);
    }
    ring_maybe_free(ep);
}

/* Stop the receive for good before the end reads its socket directly:
 * false (and receiving as before) when bytes came in meanwhile. */
static bool
rx_quiesce(struct sw_ring_ep *ep)
{
    if (ring_rx_has_news(ep) || ep->rx_eof) {
        return false;
    }
    ep->direct = true; /* no re-arm while the cancel completes */
    ring_rx_stop_now(ep);
    if (ep->rx_state != RX_IDLE || ring_rx_has_news(ep) || ep->rx_eof) {
        ep->direct = false;
        ring_rx_arm(ep);
        if (ep->want_read && ring_rx_has_news(ep)) {
            event_active(&ep->conn->rev, EV_READ, 0);
        }
        return false;
    }
    return true;
}

void
sw__ring_shutdown_write(struct sw_conn *c)
{
    struct sw_ring_ep *ep = c->ring;
    if (ring_tx_idle(ep) || ep->tx_err != 0) {
        shutdown(ep->fd, SHUT_WR);
    } else {
        ep->shut_after_tx = true; /* on_tx does it */
    }
}

bool
sw__ring_leave(struct sw_conn *c)
{
    struct sw_ring_ep *ep = c->ring;
    if (!ring_tx_idle(ep) || ep->tx_err != 0 || ep->spliced ||
        ep->sp_out != NULL || !rx_quiesce(ep)) {
        return false;
    }
    bool rd = ep->want_read;
    bool wr = sw_conn_has(c, SW_CONN_F_WRITING);
    unbind(c);
    ep->fd = -1; /* the socket stays with the conn */
    ring_maybe_free(ep);
    sw_conn_watch(c, rd, wr);
    return true;
}

/* Back to the ring's receive after direct reads or a splice: armed again,
 * the owner told of bytes that still wait in its buffers. */
static void
receive_on_ring(struct sw_conn *c)
{
    struct sw_ring_ep *ep = c->ring;
    ep->direct = ep->spliced = ep->starved = false;
    set_event(&c->rev, &ep->rev_added, false);
    ring_rx_arm(ep);
    if (ep->want_read && ring_rx_has_news(ep)) {
        ring_news(ep);
    }
}

bool
sw__ring_splice_begin(struct sw_conn *c)
{
    struct sw_ring_ep *ep = c->ring;
    if (ep->spliced) {
        return true;
    }
    ep->spliced = true; /* no re-arm while the cancel completes */
    if (ep->direct) {
        ep->direct = false;
        set_event(&c->rev, &ep->rev_added, false);
    }
    ring_rx_stop_now(ep);
    if (ep->rx_state != RX_IDLE) {
        ep->spliced = false; /* the kernel did not end it: copy instead */
        ring_rx_arm(ep);
        return false;
    }
    return true;
}

void
sw__ring_splice_end(struct sw_conn *c)
{
    struct sw_ring_ep *ep = c->ring;
    if (!ep->spliced || ep->sp_in != NULL) {
        return;
    }
    receive_on_ring(c); /* bytes of the next frame may have come along */
}

void
sw__ring_retry_buffers(struct sw_conn *c)
{
    struct sw_ring_ep *ep = c->ring;
    if (ep->direct && ep->starved && ep->ring->bufs_out < SW_RING_BUFS / 2) {
        receive_on_ring(c);
    }
}

bool
sw__ring_tx_idle(const struct sw_conn *c)
{
    return ring_tx_idle(c->ring);
}

bool
sw__ring_failed(const struct sw_conn *c)
{
    return c->ring->rx_err != 0 || c->ring->tx_err != 0;
}
