/*
 * ring.c - the io_uring engine under a worker's connections (see
 * ring.h for the loop, ring_int.h for what conn.c asks of it).
 *
 * Owns: the ring, its provided buffers, and one struct sw_ring_ep per
 * connection on it. An end outlives its connection while operations of it
 * are in flight or its queued sends still go out (lingering, bounded by
 * SW_RING_LINGER_MS); completions name their end by pointer, so an end is
 * freed only once nothing in the kernel refers to it.
 *
 * A turn: the ring's fd is readable -> every completion is reaped into its
 * end's state (received buffers queued, bytes sent counted) -> the owners of
 * the ends with news run (on_read, on_write) -> every send queued and every
 * receive armed in the turn is submitted in one io_uring_enter. Sends queued
 * from other events (timers, libevent reads) are submitted by the flush
 * event, activated by the first of them.
 *
 * Received bytes are kept in the provided buffers they arrived in, in
 * order, until the owner reads them: an end that stops reading has its
 * receive cancelled, and one holding SW_RING_RX_MAX buffers is not armed
 * again until its owner reads. A multishot receive still takes as much as
 * its socket holds, so when a receive ends for want of a buffer, its end
 * reads its socket directly until the buffers are back: one end's backlog
 * slows no other.
 *
 * Contents: ends' list, buffers, submission, receive, send, lingering
 * close, the turn (reap, dispatch, flush), set-up. What conn.c asks of an
 * end is in ring_conn.c.
 *
 * Threading: the owning worker's thread only.
 */
#include "ring_ep.h"

#include <shockwave/log.h>
#include <shockwave/metrics.h>
#include <shockwave/slab.h>

#include <errno.h>
#include <event2/event.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

uint64_t
ring_ud(const void *p, unsigned tag)
{
    return (uint64_t)(uintptr_t)p | tag;
}

static void
ep_free(struct sw_ring_ep *ep)
{
    struct sw_ring *r = ep->ring;
    if (ep->all_prev != NULL) {
        ep->all_prev->all_next = ep->all_next;
    } else {
        r->all = ep->all_next;
    }
    if (ep->all_next != NULL) {
        ep->all_next->all_prev = ep->all_prev;
    }
    sw_buf_put(ep->bufs, ep->tx);
    /* only at sw_ring_free can a splice still be in flight: the kernel's
     * copy of it ends with the ring */
    if (ep->sp_in != NULL) {
        sw_slab_free(&r->splices, ep->sp_in);
    }
    if (ep->sp_out != NULL) {
        sw_slab_free(&r->splices, ep->sp_out);
    }
    sw_slab_free(&r->eps, ep);
}

void
ring_maybe_free(struct sw_ring_ep *ep)
{
    if (ep->conn == NULL && ep->ops == 0 && ep->fd < 0 && !ep->in_dirty &&
        !ep->in_news && !ep->in_linger) {
        ep_free(ep);
    }
}

struct sw_ring_ep *
ring_ep_new(struct sw_ring *r)
{
    struct sw_ring_ep *ep = sw_slab_zalloc(&r->eps);
    if (ep != NULL) {
        ep->ring = r;
        ep->all_next = r->all;
        if (r->all != NULL) {
            r->all->all_prev = ep;
        }
        r->all = ep;
    }
    return ep;
}

/* ---- buffers ---------------------------------------------------------- */

uint8_t *
ring_buf_at(const struct sw_ring *r, unsigned bid)
{
    return r->mem + (size_t)bid * SW_RING_BUF_SIZE;
}

static void
buf_give_back(struct sw_ring *r, unsigned bid)
{
    io_uring_buf_ring_add(r->br, ring_buf_at(r, bid), SW_RING_BUF_SIZE,
                          (unsigned short)bid,
                          io_uring_buf_ring_mask(SW_RING_BUFS), 0);
    io_uring_buf_ring_advance(r->br, 1);
}

static void
rx_push(struct sw_ring_ep *ep, unsigned bid, uint32_t len)
{
    struct sw_ring *r = ep->ring;
    r->blen[bid] = len;
    r->boff[bid] = 0;
    r->bnext[bid] = SW_RING_NONE;
    if (ep->rx_tail != SW_RING_NONE) {
        r->bnext[ep->rx_tail] = (uint16_t)bid;
    } else {
        ep->rx_head = (uint16_t)bid;
    }
    ep->rx_tail = (uint16_t)bid;
    ep->rx_nbufs++;
    r->bufs_out++;
}

void
ring_rx_pop(struct sw_ring_ep *ep)
{
    struct sw_ring *r = ep->ring;
    unsigned bid = ep->rx_head;
    ep->rx_head = r->bnext[bid];
    if (ep->rx_head == SW_RING_NONE) {
        ep->rx_tail = SW_RING_NONE;
    }
    ep->rx_nbufs--;
    r->bufs_out--;
    buf_give_back(r, bid);
}

void
ring_rx_drop_all(struct sw_ring_ep *ep)
{
    while (ep->rx_head != SW_RING_NONE) {
        ring_rx_pop(ep);
    }
}

/* ---- submission ------------------------------------------------------- */

void
ring_kick(struct sw_ring *r)
{
    if (!r->flush_queued && !r->in_turn && !r->exiting) {
        r->flush_queued = true;
        event_active(&r->flush_ev, EV_READ, 0);
    }
}

void
ring_submit(struct sw_ring *r)
{
    if (io_uring_sq_ready(&r->uring) == 0) {
        return;
    }
    int n = io_uring_submit(&r->uring);
    sw_metrics_inc(r->metrics, SW_METRIC_RING_ENTERS);
    if (n > 0) {
        sw_metrics_add(r->metrics, SW_METRIC_RING_SQES, n);
    } else if (n < 0) {
        sw_log_debug("io_uring_submit: %s", strerror(-n)); /* retried */
        ring_kick(r);
    }
}

struct io_uring_sqe *
ring_sqe_get(struct sw_ring *r)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&r->uring);
    for (int i = 0; s == NULL && i < 8; i++) {
        /* the queue is full: what it holds goes now; a completion queue
         * that overflowed (thousands of ends closing at once) makes the
         * kernel refuse it until the completions are reaped */
        ring_submit(r);
        s = io_uring_get_sqe(&r->uring);
        if (s == NULL) {
            ring_reap(r);
        }
    }
    ring_kick(r);
    return s;
}

bool
ring_cancel(struct sw_ring *r, uint64_t data)
{
    struct io_uring_sqe *s = ring_sqe_get(r);
    if (s == NULL) {
        return false;
    }
    io_uring_prep_cancel64(s, data, 0);
    io_uring_sqe_set_data64(s, 0); /* its own completion names no record */
    return true;
}

void
ring_sync_cancel(struct sw_ring *r, uint64_t data)
{
    ring_submit(r); /* the operation itself may still wait in the queue */
    struct io_uring_sync_cancel_reg reg = {.addr = data, .timeout = {-1, -1}};
    int rc = io_uring_register_sync_cancel(&r->uring, &reg);
    sw_metrics_inc(r->metrics, SW_METRIC_RING_ENTERS);
    if (rc < 0 && rc != -ENOENT && rc != -EALREADY) {
        sw_log_debug("io_uring sync cancel: %s", strerror(-rc));
    }
    ring_reap(r); /* its last completion, and whatever came before it */
}

/* ---- receive ---------------------------------------------------------- */

void
ring_rx_arm(struct sw_ring_ep *ep)
{
    if (ep->conn == NULL || !ep->want_read || ep->rx_state != RX_IDLE ||
        ep->direct || ep->spliced || ep->starved || ep->rx_eof ||
        ep->rx_err != 0 || ep->rx_nbufs >= SW_RING_RX_MAX) {
        return;
    }
    struct io_uring_sqe *s = ring_sqe_get(ep->ring);
    if (s == NULL) {
        return; /* armed on the next read */
    }
    io_uring_prep_recv_multishot(s, ep->fd, NULL, 0, 0);
    if (!ep->ring->rx_unlimited) {
        /* the kernel ends the receive after this much (Linux 6.17's
         * optlen, which liburing 2.3 names file_index), so it cannot run
         * far ahead of an owner about to splice the rest */
        s->file_index = SW_RING_RX_MAX * SW_RING_BUF_SIZE;
    }
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = SW_RING_BGID;
    io_uring_sqe_set_data64(s, ring_ud(ep, TAG_RX));
    ep->rx_state = RX_ARMED;
    ep->ops++;
}

void
ring_rx_cancel(struct sw_ring_ep *ep)
{
    if (ep->rx_state != RX_ARMED) {
        return;
    }
    if (ring_cancel(ep->ring, ring_ud(ep, TAG_RX))) {
        ep->rx_state = RX_CANCELLING;
    }
}

/* Cancel the receive and wait for it to end, so that nothing more arrives
 * through the ring (before a splice, before leaving the ring). */
void
ring_rx_stop_now(struct sw_ring_ep *ep)
{
    struct sw_ring *r = ep->ring;
    if (ep->rx_state == RX_IDLE) {
        return;
    }
    ring_sync_cancel(r, ring_ud(ep, TAG_RX));
}

/* Something for the owner to read: queued bytes, or an end it has not
 * seen yet. */
bool
ring_rx_has_news(const struct sw_ring_ep *ep)
{
    return ep->rx_head != SW_RING_NONE || ring_splice_in_done(ep) ||
           ((ep->rx_eof || ep->rx_err != 0 || ep->starved) &&
            ep->conn != NULL && !sw_conn_has(ep->conn, SW_CONN_F_EOF));
}

void
ring_news(struct sw_ring_ep *ep)
{
    struct sw_ring *r = ep->ring;
    if (!ep->in_news) {
        ep->in_news = true;
        ep->next_news = r->news;
        r->news = ep;
    }
    ring_kick(r); /* news reaped outside a turn (rx_stop_now) still gets run */
}

static void
on_rx(struct sw_ring_ep *ep, int res, unsigned flags)
{
    struct sw_ring *r = ep->ring;
    if (res > 0 && (flags & IORING_CQE_F_BUFFER) != 0) {
        unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
        sw_metrics_inc(r->metrics, SW_METRIC_RING_RECV_CQES);
        if (ep->conn == NULL) {
            buf_give_back(r, bid);
        } else {
            rx_push(ep, bid, (uint32_t)res);
            ring_news(ep);
            if (ep->rx_nbufs >= SW_RING_RX_MAX || !ep->want_read) {
                ring_rx_cancel(ep);
            }
        }
    } else if (res == 0) {
        ep->rx_eof = true;
        ring_news(ep);
    } else if (res == -EINVAL && !r->rx_unlimited) {
        r->rx_unlimited = true; /* re-armed below without the limit */
        sw_log_info("io_uring: receives cannot be limited (before Linux "
                    "6.17): they may run ahead of a splice");
    } else if (res == -ENOBUFS) {
        ep->starved = true;
        sw_metrics_inc(r->metrics, SW_METRIC_RING_NOBUFS);
        ring_news(ep);
    } else if (res != -ECANCELED) {
        ep->rx_err = -res;
        ring_news(ep);
    }
    if ((flags & IORING_CQE_F_MORE) == 0) {
        ep->rx_state = RX_IDLE;
        ep->ops--;
        ring_rx_arm(ep);
        ring_maybe_free(ep);
    }
}

/* ---- send ------------------------------------------------------------- */

bool
ring_tx_idle(const struct sw_ring_ep *ep)
{
    return ep->tx_inflight == 0 &&
           (ep->tx == NULL || sw_buf_len(ep->tx) == 0) &&
           (ep->sp_out == NULL || ep->sp_out->done);
}

void
ring_tx_dirty(struct sw_ring_ep *ep)
{
    struct sw_ring *r = ep->ring;
    if (!ep->in_dirty) {
        ep->in_dirty = true;
        ep->next_dirty = r->dirty;
        r->dirty = ep;
    }
    ring_kick(r);
}

static void
tx_submit(struct sw_ring_ep *ep)
{
    struct sw_buf *b = ep->tx;
    if (ep->tx_err != 0 || ep->tx_inflight != 0 || b == NULL ||
        sw_buf_len(b) == 0 || ep->fd < 0) {
        return;
    }
    struct io_uring_sqe *s = ring_sqe_get(ep->ring);
    if (s == NULL) {
        ring_tx_dirty(ep);
        return;
    }
    ep->tx_inflight = (uint32_t)SW_MIN(sw_buf_len(b), (size_t)UINT32_MAX);
    io_uring_prep_send(s, ep->fd, b->pos, ep->tx_inflight, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, ring_ud(ep, TAG_TX));
    ep->ops++;
}

static void linger_done(struct sw_ring_ep *ep);

static void
on_tx(struct sw_ring_ep *ep, int res)
{
    sw_metrics_inc(ep->ring->metrics, SW_METRIC_RING_SEND_CQES);
    ep->ops--;
    ep->tx_inflight = 0;
    if (res > 0) {
        ep->tx->pos += res;
        if (sw_buf_len(ep->tx) == 0) {
            sw_buf_put(ep->bufs, ep->tx); /* an idle end holds no buffer */
            ep->tx = NULL;
        } else {
            ring_tx_dirty(ep);
        }
    } else if (res < 0 && res != -EINTR && res != -EAGAIN) {
        ep->tx_err = -res;
        if (ep->tx != NULL) {
            ep->tx->pos = ep->tx->last = ep->tx->start;
        }
        if (ep->conn != NULL) {
            sw_log_debug("%s fd %d: send: %s", ep->conn->role, ep->fd,
                         strerror(ep->tx_err));
            ep->conn->flags |= SW_CONN_F_DEAD;
        }
    } else {
        ring_tx_dirty(ep);
    }
    ring_tx_settled(ep);
}

void
ring_tx_settled(struct sw_ring_ep *ep)
{
    if (ep->shut_after_tx && ring_tx_idle(ep) && ep->fd >= 0) {
        ep->shut_after_tx = false;
        shutdown(ep->fd, SHUT_WR); /* the FIN follows the last byte */
    }
    if (ep->conn != NULL) {
        if (ep->wait_room || ep->tx_err != 0) {
            ring_news(ep);
        }
    } else if (ep->lingering && (ring_tx_idle(ep) || ep->tx_err != 0)) {
        linger_done(ep);
    }
    ring_maybe_free(ep);
}

/* ---- closing ---------------------------------------------------------- */

void
ring_close_socket(struct sw_ring_ep *ep)
{
    if (ep->fd < 0) {
        return;
    }
    if (ep->gently && ep->tx_err == 0) {
        /* as sw_conn_close_gently: FIN, then what already arrived */
        shutdown(ep->fd, SHUT_WR);
        uint8_t scratch[4096];
        for (int i = 0; i < SW_RING_DRAIN_READS; i++) {
            if (recv(ep->fd, scratch, sizeof(scratch), MSG_DONTWAIT) <= 0) {
                break;
            }
        }
    }
    /* a receive still in flight holds the file till it ends */
    sw_ring_close_fd(ep->ring, ep->fd);
    ep->fd = -1;
}

static void
linger_done(struct sw_ring_ep *ep)
{
    ep->lingering = false; /* the linger sweep drops it from its list */
    ring_close_socket(ep);
}

void
ring_linger_start(struct sw_ring_ep *ep)
{
    struct sw_ring *r = ep->ring;
    sw_metrics_inc(r->metrics, SW_METRIC_RING_LINGERED);
    ep->lingering = ep->in_linger = true;
    ep->linger_until_ms = sw_now_ms() + SW_RING_LINGER_MS;
    ep->next_linger = r->linger;
    r->linger = ep;
    if (!event_pending(&r->linger_ev, EV_TIMEOUT, NULL)) {
        struct timeval tv = {1, 0};
        event_add(&r->linger_ev, &tv);
    }
}

static void
on_linger_sweep(evutil_socket_t fd, short what, void *arg)
{
    SW_UNUSED(fd);
    SW_UNUSED(what);
    struct sw_ring *r = arg;
    uint64_t now = sw_now_ms();
    struct sw_ring_ep **pp = &r->linger;
    while (*pp != NULL) {
        struct sw_ring_ep *ep = *pp;
        if (ep->lingering && now >= ep->linger_until_ms) {
            sw_log_info("fd %d: queued bytes not sent in %d ms, closing",
                        ep->fd, SW_RING_LINGER_MS);
            if (ep->tx_inflight != 0) {
                ring_cancel(r, ring_ud(ep, TAG_TX));
            }
            ep->tx_err = ETIMEDOUT;
            linger_done(ep);
        }
        if (!ep->lingering) {
            *pp = ep->next_linger;
            ep->in_linger = false;
            ring_maybe_free(ep);
        } else {
            pp = &ep->next_linger;
        }
    }
    if (r->linger != NULL) {
        struct timeval tv = {1, 0};
        event_add(&r->linger_ev, &tv);
    }
}

/* ---- the turn --------------------------------------------------------- */

static void
on_cqe(struct sw_ring *r, uint64_t data, int res, unsigned flags)
{
    void *p = (void *)(uintptr_t)(data & ~(uint64_t)TAG_MASK);
    unsigned tag = (unsigned)(data & TAG_MASK);
    if (tag == TAG_CLOSE) {
        ring_close_cqe(r, res);
    } else if (p == NULL) {
        return; /* a cancel's own completion */
    } else if (tag == TAG_RX) {
        on_rx(p, res, flags);
    } else if (tag == TAG_TX) {
        on_tx(p, res);
    } else if (tag == TAG_SPLICE) {
        ring_splice_cqe(p, res);
    } else if (tag == TAG_SPLICE_POLL) {
        return; /* the poll failed: its splice's completion follows */
    } else {
        ring_op_cqe(r, p, res, flags);
    }
}

/* Every completion there is into its end's state; no owner runs here, so
 * this may be called from inside an owner (rx_stop_now). */
void
ring_reap(struct sw_ring *r)
{
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&r->uring, &cqe) == 0) {
        uint64_t data = cqe->user_data;
        int res = cqe->res;
        unsigned flags = cqe->flags;
        io_uring_cqe_seen(&r->uring, cqe);
        on_cqe(r, data, res, flags);
    }
}

/* The owners of the ends with news: bytes or an end to read, room to
 * write, a failed send to see. */
static void
dispatch(struct sw_ring *r)
{
    ring_ops_run(r); /* accepts and connects: new sessions first */
    struct sw_ring_ep *list = r->news;
    struct sw_ring_ep *again = NULL;
    r->news = NULL;
    while (list != NULL) {
        /* in_news stays set while its owner runs: an end closed there is
         * freed below, not under our feet */
        struct sw_ring_ep *ep = list;
        list = ep->next_news;
        struct sw_conn *c = ep->conn;
        if (c != NULL && ep->want_read && ring_rx_has_news(ep)) {
            c->on->on_read(c, c->arg);
        }
        c = ep->conn; /* the owner may have closed or moved it */
        if (c != NULL && ep->wait_room && sw_conn_has(c, SW_CONN_F_WRITING) &&
            (ep->tx_err != 0 || ring_tx_idle(ep))) {
            ep->wait_room = false;
            c->on->on_write(c, c->arg);
        }
        if (ep->conn != NULL && ep->want_read && ring_rx_has_news(ep)) {
            /* bytes left unread: the owner runs again next turn, as a
             * level-triggered epoll would call it */
            ep->next_news = again;
            again = ep;
        } else {
            ep->in_news = false;
            ring_maybe_free(ep);
        }
    }
    while (again != NULL) {
        struct sw_ring_ep *ep = again;
        again = ep->next_news;
        ep->next_news = r->news;
        r->news = ep;
    }
}

static void
flush(struct sw_ring *r)
{
    struct sw_ring_ep *list = r->dirty;
    r->dirty = NULL; /* a send that finds no room goes back there */
    while (list != NULL) {
        struct sw_ring_ep *ep = list;
        list = ep->next_dirty;
        ep->in_dirty = false;
        tx_submit(ep);
        ring_maybe_free(ep);
    }
    if (r->dirty != NULL) {
        event_active(&r->flush_ev, EV_READ, 0); /* again, after the rest */
    }
    if (r->news != NULL || ring_ops_pending(r)) {
        struct timeval zero = {0, 0};
        event_add(&r->news_ev, &zero); /* after the next epoll_wait */
    }
    ring_submit(r);
}

/* One turn: the completions (when the ring's fd woke us), the owners with
 * news, one submit. */
static void
turn(struct sw_ring *r, bool completions)
{
    r->in_turn = true;
    if (completions) {
        ring_reap(r);
    }
    dispatch(r);
    flush(r);
    r->in_turn = false;
    r->flush_queued = false;
}

static void
on_ring_ready(evutil_socket_t fd, short what, void *arg)
{
    SW_UNUSED(fd);
    SW_UNUSED(what);
    turn(arg, true);
}

/* Owners that left bytes unread run again, after the next epoll_wait. */
static void
on_news_again(evutil_socket_t fd, short what, void *arg)
{
    SW_UNUSED(fd);
    SW_UNUSED(what);
    turn(arg, false);
}

static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
    SW_UNUSED(fd);
    SW_UNUSED(what);
    struct sw_ring *r = arg;
    r->flush_queued = false;
    flush(r);
}

/* ---- set-up ------------------------------------------------------------ */

static bool
setup_buffers(struct sw_ring *r, char *why, size_t n)
{
    size_t ring_bytes = SW_RING_BUFS * sizeof(struct io_uring_buf);
    void *br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE,
                    MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    /* the buffers' pages stay untouched (not resident) until used */
    void *mem =
        mmap(NULL, (size_t)SW_RING_BUFS * SW_RING_BUF_SIZE,
             PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    r->blen = calloc(SW_RING_BUFS, sizeof(*r->blen));
    r->boff = calloc(SW_RING_BUFS, sizeof(*r->boff));
    r->bnext = calloc(SW_RING_BUFS, sizeof(*r->bnext));
    if (br == MAP_FAILED || mem == MAP_FAILED || r->blen == NULL ||
        r->boff == NULL || r->bnext == NULL) {
        snprintf(why, n, "out of memory for provided buffers");
        if (br != MAP_FAILED) {
            munmap(br, ring_bytes);
        }
        if (mem != MAP_FAILED) {
            munmap(mem, (size_t)SW_RING_BUFS * SW_RING_BUF_SIZE);
        }
        return false;
    }
    r->br = br;
    r->mem = mem;
    /* liburing 2.3 has no io_uring_setup_buf_ring: registered by hand */
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)br,
                                   .ring_entries = SW_RING_BUFS,
                                   .bgid = SW_RING_BGID};
    int rc = io_uring_register_buf_ring(&r->uring, &reg, 0);
    if (rc < 0) {
        snprintf(why, n, "provided buffer ring: %s", strerror(-rc));
        return false;
    }
    io_uring_buf_ring_init(r->br);
    for (unsigned bid = 0; bid < SW_RING_BUFS; bid++) {
        io_uring_buf_ring_add(r->br, ring_buf_at(r, bid), SW_RING_BUF_SIZE,
                              (unsigned short)bid,
                              io_uring_buf_ring_mask(SW_RING_BUFS), (int)bid);
    }
    io_uring_buf_ring_advance(r->br, SW_RING_BUFS);
    return true;
}

struct sw_ring *
sw_ring_new(struct event_base *base, struct sw_metrics *metrics, char *why,
            size_t n)
{
    struct sw_ring *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(why, n, "out of memory");
        return NULL;
    }
    struct io_uring_params p = {
        .flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL,
        .cq_entries = SW_RING_CQ,
    };
    int rc = io_uring_queue_init_params(SW_RING_SQ, &r->uring, &p);
    if (rc < 0) {
        snprintf(why, n, "io_uring_setup: %s", strerror(-rc));
        free(r);
        return NULL;
    }
    if ((p.features & IORING_FEAT_NODROP) == 0) {
        snprintf(why, n, "the kernel's io_uring may drop completions");
        io_uring_queue_exit(&r->uring);
        free(r);
        return NULL;
    }
    if (!setup_buffers(r, why, n)) {
        sw_ring_free(r);
        return NULL;
    }
    if (!ring_ops_init(r)) {
        snprintf(why, n, "out of memory");
        sw_ring_free(r);
        return NULL;
    }
    r->base = base;
    r->metrics = metrics;
    sw_slab_init(&r->eps, sizeof(struct sw_ring_ep));
    sw_slab_init(&r->splices, sizeof(struct ring_splice));
    event_assign(&r->ring_ev, base, r->uring.ring_fd, EV_READ | EV_PERSIST,
                 on_ring_ready, r);
    event_assign(&r->flush_ev, base, -1, 0, on_flush, r);
    event_assign(&r->news_ev, base, -1, 0, on_news_again, r);
    event_assign(&r->linger_ev, base, -1, 0, on_linger_sweep, r);
    event_add(&r->ring_ev, NULL);
    return r;
}

static bool
lingering_any(const struct sw_ring *r)
{
    for (const struct sw_ring_ep *ep = r->linger; ep != NULL;
         ep = ep->next_linger) {
        if (ep->lingering) {
            return true;
        }
    }
    return false;
}

/* At exit, the closed ends' queued sends (a close frame, the last bytes of
 * a drained WebSocket) get a bounded wait, as the kernel would give them
 * after close() on epoll. */
static void
finish_lingering(struct sw_ring *r)
{
    uint64_t until = sw_now_ms() + SW_RING_EXIT_WAIT_MS;
    while (lingering_any(r) && sw_now_ms() < until) {
        flush(r);
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {0, 50 * 1000 * 1000};
        io_uring_wait_cqe_timeout(&r->uring, &cqe, &ts);
        ring_reap(r);
    }
}

void
sw_ring_free(struct sw_ring *r)
{
    if (r == NULL) {
        return;
    }
    if (r->base != NULL) {
        finish_lingering(r);
        event_del(&r->ring_ev);
        event_del(&r->flush_ev);
        event_del(&r->news_ev);
        event_del(&r->linger_ev);
        r->exiting = true; /* closes from here on are close(2) */
        ring_submit(r);    /* the closes queued before */
        ring_ops_fini(r);
        while (r->all != NULL) {
            ring_close_socket(r->all);
            ep_free(r->all);
        }
        sw_slab_fini(&r->eps);
        sw_slab_fini(&r->splices);
    }
    io_uring_queue_exit(&r->uring); /* ends what is still in flight */
    if (r->br != NULL) {
        munmap(r->br, SW_RING_BUFS * sizeof(struct io_uring_buf));
    }
    if (r->mem != NULL) {
        munmap(r->mem, (size_t)SW_RING_BUFS * SW_RING_BUF_SIZE);
    }
    free(r->blen);
    free(r->boff);
    free(r->bnext);
    free(r);
}
