/*
 * conn.c - one connection end (see conn.h).
 *
 * Owns: the fd and transport state of an attached end, and the buffers it
 * holds. Borrows the loop and the buffer pool of its worker. The struct
 * itself lives inside its owner (a session) and is never freed here.
 *
 * Contents:
 *   on_event                   libevent's callback -> the owner's handlers
 *   sw_conn_init / attach / rebind / detach / close / close_gently
 *   sw_conn_connect, sw_conn_connect_error   (through the ring, or not)
 *   sw_conn_watch, sw_conn_wake, sw_conn_in_has_room
 *   sw_conn_timer, sw_conn_timer_armed, sw_conn_kick,
 *   sw_conn_peer_gone
 *   sw_conn_buf_ready / out_room / buf_release* / release_idle
 *   sw_conn_read, sw_conn_send_buf, sw_conn_flush
 *   sw_conn_show_flags
 *   sw_conn_ring_join / leave, sw_conn_splice_*,
 *   sw_conn_sends_idle           an end on the io_uring ring (ring.c)
 *
 * Threading: the owning worker's thread only.
 */
#include "ring_int.h"

#include <shockwave/log.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <unistd.h>

/* Input drained before a gentle close, at most: enough for the frames a
 * peer may send after its close, bounded so a flood cannot hold us. */
#define SW_CONN_DRAIN_CHUNK 4096
#define SW_CONN_DRAIN_READS 16

/* The connection moves the bytes of an end on the ring itself (plain
 * ends); a transport with a record layer of its own (TLS) runs its recv
 * and send, which reach the ring through the BIO under it (ring_bio.c).
 * Asked each time: a session ending TLS before its lingering close turns
 * its end plain on the ring. */
static bool
on_ring_direct(const struct sw_conn *c)
{
    return c->ring != NULL && c->io.ops->set_bio == NULL;
}

/* ---- libevent callbacks ---------------------------------------------- */

/* The one libevent callback of all three events: each event fires with
 * its own kind in `what` (EV_READ, EV_WRITE or EV_TIMEOUT). */
static void
on_event(evutil_socket_t fd, short what, void *arg)
{
    struct sw_conn *c = arg;
    SW_UNUSED(fd);
    if (what & EV_TIMEOUT) {
        if (c->on->on_timer != NULL) {
            c->on->on_timer(c, c->arg);
        }
    } else if (what & EV_READ) {
        c->on->on_read(c, c->arg);
    } else {
        c->on->on_write(c, c->arg);
    }
}

/* ---- lifecycle -------------------------------------------------------- */

static void
assign_io_events(struct sw_conn *c)
{
    event_assign(&c->rev, c->base, c->io.fd, EV_READ | EV_PERSIST, on_event, c);
    event_assign(&c->wev, c->base, c->io.fd, EV_WRITE | EV_PERSIST, on_event,
                 c);
}

/* No socket (any more): what belonged to one is cleared. */
static void
forget_socket(struct sw_conn *c)
{
    c->io = (struct sw_io){.fd = -1, .ops = &sw_io_plain};
    c->connect_err = -1;
    c->flags = 0;
    c->in_class = c->grow_class = 0;
}

void
sw_conn_init(struct sw_conn *c, const char *role, struct event_base *base,
             struct sw_buf_pool *bufs, const struct sw_conn_handlers *on,
             void *arg)
{
    memset(c, 0, sizeof(*c));
    c->io.fd = -1;
    c->connect_err = -1;
    c->io.ops = &sw_io_plain;
    c->role = role;
    c->base = base;
    c->bufs = bufs;
    c->on = on;
    c->arg = arg;
    assign_io_events(c);
    event_assign(&c->timer, base, -1, 0, on_event, c);
}

void
sw_conn_attach(struct sw_conn *c, const struct sw_io *io)
{
    SW_ASSERT(c->io.fd < 0 && !sw_conn_has(c, SW_CONN_F_READING) &&
              !sw_conn_has(c, SW_CONN_F_WRITING));
    forget_socket(c);
    c->io = *io;
    assign_io_events(c);
}

void
sw_conn_rebind(struct sw_conn *c, const struct sw_conn_handlers *on, void *arg)
{
    sw_conn_watch(c, false, false);
    event_del(&c->timer);
    c->on = on;
    c->arg = arg;
}

void
sw_conn_detach(struct sw_conn *c, struct sw_io *io)
{
    SW_ASSERT(c->ring == NULL); /* sw_conn_ring_leave first */
    SW_ASSERT(c->connecting == NULL);
    sw_conn_watch(c, false, false);
    event_del(&c->timer);
    *io = c->io;
    forget_socket(c);
}

void
sw_conn_close(struct sw_conn *c)
{
    sw_conn_watch(c, false, false);
    event_del(&c->timer);
    if (c->ring != NULL) {
        c->io.ops->close(&c->io);
        sw__ring_close(c, false); /* after the sends it holds */
    } else if (c->connecting != NULL) {
        /* the close goes after the connect and its cancel, in order: the
         * kernel resolves the connect's fd before the number is freed */
        struct sw_ring *r = sw_ring_op_ring(c->connecting);
        sw_ring_op_free(c->connecting);
        c->connecting = NULL;
        c->io.ops->close(&c->io);
        sw_ring_close_fd(r, c->io.fd);
    } else if (c->io.fd >= 0) {
        c->io.ops->close(&c->io);
        close(c->io.fd);
    }
    forget_socket(c);
    sw_conn_buf_release(c, &c->in);
    sw_conn_buf_release(c, &c->out);
}

void
sw_conn_shutdown_write(struct sw_conn *c)
{
    if (c->ring != NULL) {
        sw__ring_shutdown_write(c);
    } else if (c->io.fd >= 0) {
        shutdown(c->io.fd, SHUT_WR);
    }
}

void
sw_conn_close_gently(struct sw_conn *c)
{
    if (c->ring != NULL) {
        sw_conn_watch(c, false, false);
        c->io.ops->close(&c->io);
        sw__ring_close(c, true); /* FIN after the sends it holds */
    } else if (c->io.fd >= 0) {
        c->io.ops->close(&c->io);
        c->io.ops = &sw_io_plain;
        shutdown(c->io.fd, SHUT_WR);
        uint8_t scratch[SW_CONN_DRAIN_CHUNK];
        for (int i = 0; i < SW_CONN_DRAIN_READS; i++) {
            if (recv(c->io.fd, scratch, sizeof(scratch), MSG_DONTWAIT) <= 0) {
                break;
            }
        }
    }
    sw_conn_close(c);
}

/* ---- connect ---------------------------------------------------------- */

static void
on_ring_connected(void *arg, int res, bool more)
{
    struct sw_conn *c = arg;
    SW_UNUSED(more);
    sw_ring_op_free(c->connecting);
    c->connecting = NULL;
    c->connect_err = res < 0 ? -res : 0;
    c->on->on_write(c, c->arg); /* as writability after connect(2) */
}

void
sw_conn_connect(struct sw_conn *c, struct sw_ring *r, const struct sockaddr *sa,
                socklen_t len)
{
    SW_ASSERT(c->io.fd >= 0 && c->connecting == NULL && c->ring == NULL);
    c->connect_err = -1;
    if (r != NULL) {
        struct sw_ring_op *op = sw_ring_op_new(r, on_ring_connected, c);
        if (op != NULL && sw_ring_op_connect(op, c->io.fd, sa, len) == SW_OK) {
            c->connecting = op;
            return;
        }
        sw_ring_op_free(op);
    }
    if (connect(c->io.fd, sa, len) != 0 && errno != EINPROGRESS) {
        c->connect_err = errno; /* the failed socket is writable at once */
    }
    sw_conn_watch(c, false, true);
}

int
sw_conn_connect_error(struct sw_conn *c)
{
    if (c->connect_err >= 0) {
        return c->connect_err;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
    }
    return err;
}

/* ---- events ----------------------------------------------------------- */

static void
want(struct sw_conn *c, struct event *ev, unsigned flag, bool yes)
{
    if (yes && !sw_conn_has(c, flag)) {
        event_add(ev, NULL);
        c->flags |= flag;
    } else if (!yes && sw_conn_has(c, flag)) {
        event_del(ev);
        c->flags &= ~flag;
    }
}

void
sw_conn_watch(struct sw_conn *c, bool read, bool write)
{
    if (c->io.fd < 0) {
        return;
    }
    bool r = read || (write && sw_conn_has(c, SW_CONN_F_WRITE_WANTS_READ));
    bool w = write || (read && sw_conn_has(c, SW_CONN_F_READ_WANTS_WRITE));
    if (c->ring != NULL) {
        sw__ring_watch(c, r, w);
    } else {
        want(c, &c->rev, SW_CONN_F_READING, r);
        want(c, &c->wev, SW_CONN_F_WRITING, w);
    }
    if (read && c->io.ops->pending(&c->io) > 0) {
        sw_conn_wake(c);
    }
}

void
sw_conn_timer(struct sw_conn *c, uint64_t ms)
{
    if (ms == 0) {
        event_del(&c->timer);
        return;
    }
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(&c->timer, &tv);
}

bool
sw_conn_peer_gone(const struct sw_conn *c)
{
    if (c->io.fd < 0) {
        return false;
    }
    if (c->ring != NULL && sw__ring_failed(c)) {
        return true;
    }
    /* libevent reports a reset only to an armed read or write event: an
     * owner that is not reading has neither, so ask the socket itself */
    struct pollfd pfd = {.fd = c->io.fd, .events = 0};
    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLERR | POLLHUP)) != 0;
}

void
sw_conn_wake(struct sw_conn *c)
{
    event_active(&c->rev, EV_READ, 0);
}

bool
sw_conn_in_has_room(const struct sw_conn *c)
{
    const struct sw_buf *b = c->in;
    return b == NULL || sw_buf_room(b) > 0 || b->pos != b->start;
}

void
sw_conn_kick(struct sw_conn *c)
{
    event_active(&c->timer, EV_TIMEOUT, 0);
}

bool
sw_conn_timer_armed(const struct sw_conn *c)
{
    return event_pending(&c->timer, EV_TIMEOUT, NULL) != 0;
}

/* ---- buffers ---------------------------------------------------------- */

bool
sw_conn_buf_ready(struct sw_conn *c, struct sw_buf **bp)
{
    struct sw_buf *b = *bp;
    if (b == NULL) {
        *bp = sw_buf_get(c->bufs);
        return *bp != NULL;
    }
    if (b->pos == b->last) {
        b->pos = b->last = b->start;
    } else if (sw_buf_room(b) == 0 && b->pos != b->start) {
        sw_buf_compact(b);
    }
    return true;
}

size_t
sw_conn_out_room(struct sw_conn *c)
{
    return sw_conn_buf_ready(c, &c->out) ? sw_buf_room(c->out) : 0;
}

void
sw_conn_buf_release_if_empty(struct sw_conn *c, struct sw_buf **bp)
{
    if (*bp != NULL && sw_buf_len(*bp) == 0) {
        sw_conn_buf_release(c, bp);
    }
}

void
sw_conn_buf_release(struct sw_conn *c, struct sw_buf **bp)
{
    sw_buf_put(c->bufs, *bp);
    *bp = NULL;
}

void
sw_conn_release_idle(struct sw_conn *c)
{
    sw_conn_buf_release_if_empty(c, &c->in);
    sw_conn_buf_release_if_empty(c, &c->out);
}

/* ---- growth ----------------------------------------------------------- */

void
sw_conn_grow_upto(struct sw_conn *c, size_t bytes)
{
    unsigned k = 0;
    for (const struct sw_buf_pool *p = c->bufs;
         p->larger != NULL && p->larger->size <= bytes && k < UINT8_MAX;
         p = p->larger) {
        k++;
    }
    c->grow_class = (uint8_t)k;
    c->in_class = SW_MIN(c->in_class, c->grow_class);
}

/* Replace *bp by a buffer of class k holding its unread bytes. False (and
 * *bp kept) when no buffer came. */
static bool
buf_move_up(struct sw_conn *c, struct sw_buf **bp, unsigned k)
{
    struct sw_buf *nb = sw_buf_get(sw_buf_pool_class(c->bufs, k));
    if (nb == NULL) {
        return false;
    }
    if (*bp != NULL) {
        sw_buf_append(nb, (*bp)->pos, sw_buf_len(*bp));
        sw_buf_put(c->bufs, *bp);
    }
    *bp = nb;
    return true;
}

/* Before a read: the input buffer of the class the traffic asks for. */
static void
in_sized(struct sw_conn *c)
{
    if (c->in_class == 0) {
        return; /* the pool's own size: any buffer will do */
    }
    size_t want = sw_buf_pool_class(c->bufs, c->in_class)->size;
    if (c->in == NULL || sw_buf_cap(c->in) < want) {
        buf_move_up(c, &c->in, c->in_class); /* else: read into what is */
    }
}

/* After a read of n bytes into room: step the class up after a read that
 * filled a buffer at least half empty, down after one that would have fit
 * a quarter of the class below. */
static void
in_learn(struct sw_conn *c, size_t n, size_t room, size_t cap)
{
    if (n == room && room * 2 >= cap && c->in_class < c->grow_class) {
        c->in_class++;
    } else if (c->in_class > 0 &&
               n <= sw_buf_pool_class(c->bufs, c->in_class - 1u)->size / 4) {
        c->in_class--;
    }
}

size_t
sw_conn_out_reserve(struct sw_conn *c, size_t need)
{
    if (!sw_conn_buf_ready(c, &c->out)) {
        return 0;
    }
    size_t len = sw_buf_len(c->out);
    if (sw_buf_room(c->out) >= need || c->grow_class == 0) {
        return sw_buf_room(c->out);
    }
    unsigned k = 0;
    while (k < c->grow_class &&
           sw_buf_pool_class(c->bufs, k)->size < len + need) {
        k++;
    }
    if (sw_buf_pool_class(c->bufs, k)->size > sw_buf_cap(c->out)) {
        if (c->out->pos != c->out->start && len + need <= sw_buf_cap(c->out)) {
            sw_buf_compact(c->out); /* room enough once compacted */
        } else {
            buf_move_up(c, &c->out, k);
        }
    }
    return sw_buf_room(c->out);
}

/* ---- I/O -------------------------------------------------------------- */

ssize_t
sw_conn_recv_into(struct sw_conn *c, uint8_t *p, size_t room)
{
    ssize_t n = SW_RING_DIRECT;
    if (on_ring_direct(c)) {
        n = sw__ring_recv(c, p, room);
    }
    if (n == SW_RING_DIRECT) {
        n = c->io.ops->recv(&c->io, p, room);
        if (n == SW_AGAIN && on_ring_direct(c)) {
            sw__ring_retry_buffers(c); /* drained: back to the ring? */
        }
    }
    c->flags &= ~SW_CONN_F_READ_WANTS_WRITE;
    if (n == 0) {
        c->flags |= SW_CONN_F_EOF;
    } else if (n == SW_AGAIN) {
        if (c->io.want == SW_IO_WANT_WRITE) {
            c->flags |= SW_CONN_F_READ_WANTS_WRITE;
        }
    } else if (n < 0) {
        sw_log_debug("%s fd %d: recv: %s", c->role, c->io.fd,
                     strerror(c->io.last_errno));
        c->flags |= SW_CONN_F_EOF | SW_CONN_F_RESET;
    }
    return n;
}

ssize_t
sw_conn_read(struct sw_conn *c)
{
    if (c->grow_class > 0) {
        in_sized(c);
    }
    if (!sw_conn_buf_ready(c, &c->in)) {
        return SW_ENOMEM;
    }
    struct sw_buf *b = c->in;
    size_t room = sw_buf_room(b);
    if (room == 0) {
        return SW_AGAIN;
    }
    ssize_t n = sw_conn_recv_into(c, b->last, room);
    if (n > 0) {
        b->last += n;
        if (c->grow_class > 0) {
            in_learn(c, (size_t)n, room, sw_buf_cap(b));
        }
    }
    return n;
}

ssize_t
sw_conn_send_buf(struct sw_conn *c, struct sw_buf *b)
{
    ssize_t total = 0;
    if (sw_conn_has(c, SW_CONN_F_DEAD)) {
        return SW_ECLOSED;
    }
    c->flags &= ~SW_CONN_F_WRITE_WANTS_READ;
    if (on_ring_direct(c) && b != NULL) {
        struct iovec iov = {b->pos, sw_buf_len(b)};
        ssize_t n = sw__ring_sendv(c, &iov, 1);
        if (n < 0) {
            c->flags |= SW_CONN_F_DEAD;
            return n;
        }
        b->pos += n;
        return n;
    }
    while (b != NULL && sw_buf_len(b) > 0) {
        ssize_t n = c->io.ops->send(&c->io, b->pos, sw_buf_len(b));
        if (n > 0) {
            b->pos += n;
            total += n;
        } else if (n == SW_AGAIN) {
            if (c->io.want == SW_IO_WANT_READ) {
                c->flags |= SW_CONN_F_WRITE_WANTS_READ;
            }
            break;
        } else {
            sw_log_debug("%s fd %d: send: %s", c->role, c->io.fd,
                         strerror(c->io.last_errno));
            c->flags |= SW_CONN_F_DEAD;
            return n;
        }
    }
    /* An emptied buffer is not rewound here: its bytes stay readable until
     * the owner reuses it (the session resends a request head kept in
     * uhead after a stale reuse); sw_conn_buf_ready rewinds it then. */
    return total;
}

ssize_t
sw_conn_sendv(struct sw_conn *c, const struct iovec *iov, int n)
{
    if (sw_conn_has(c, SW_CONN_F_DEAD)) {
        return SW_ECLOSED;
    }
    c->flags &= ~SW_CONN_F_WRITE_WANTS_READ;
    if (on_ring_direct(c)) {
        ssize_t k = sw__ring_sendv(c, iov, n);
        if (k < 0) {
            c->flags |= SW_CONN_F_DEAD;
        }
        return k;
    }
    if (c->io.ops != &sw_io_plain || n == 1) {
        /* a transport of its own (TLS), or one piece: piece by piece */
        ssize_t total = 0;
        for (int i = 0; i < n; i++) {
            struct sw_buf b = {.pos = iov[i].iov_base,
                               .last =
                                   (uint8_t *)iov[i].iov_base + iov[i].iov_len};
            ssize_t k = sw_conn_send_buf(c, &b);
            if (k < 0) {
                return total > 0 ? total : k;
            }
            total += k;
            if ((size_t)k < iov[i].iov_len) {
                break;
            }
        }
        return total;
    }
    /* sendmsg rather than writev: MSG_NOSIGNAL, as every send here */
    struct msghdr msg = {.msg_iov = (struct iovec *)iov,
                         .msg_iovlen = (size_t)n};
    for (;;) {
        ssize_t k = sendmsg(c->io.fd, &msg, MSG_NOSIGNAL);
        if (k >= 0) {
            return k;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        }
        c->io.last_errno = errno;
        sw_log_debug("%s fd %d: sendmsg: %s", c->role, c->io.fd,
                     strerror(errno));
        c->flags |= SW_CONN_F_DEAD;
        return errno == EPIPE || errno == ECONNRESET ? SW_ECLOSED : SW_ERROR;
    }
}

ssize_t
sw_conn_flush(struct sw_conn *c)
{
    return sw_conn_send_buf(c, c->out);
}

/* ---- the io_uring engine ------------------------------------------- */

bool
sw_conn_ring_join(struct sw_conn *c, struct sw_ring *r)
{
    if (c->ring != NULL) {
        return true; /* joined already: an end has one worker, one ring */
    }
    if (r == NULL || c->io.fd < 0) {
        return false;
    }
    if (c->io.ops->set_bio == NULL) {
        return sw__ring_join(r, c);
    }
    /* TLS: its records go through the ring from now on (ring_bio.c) */
    void *bio = sw__ring_bio_new(c);
    if (bio == NULL || !sw__ring_join(r, c)) {
        sw__ring_bio_free(bio);
        return false;
    }
    c->io.ops->set_bio(&c->io, bio);
    return true;
}

bool
sw_conn_ring_leave(struct sw_conn *c)
{
    if (c->ring == NULL) {
        return true;
    }
    if (c->io.ops->set_bio == NULL) {
        return sw__ring_leave(c);
    }
    /* the socket BIO first: once off the ring the end must not fail for
     * want of one, and the ring BIO must not outlive the end's ring days
     * (a parked end's conn is freed) */
    void *bio = sw__ring_bio_socket(c->io.fd);
    if (bio == NULL || !sw__ring_leave(c)) {
        sw__ring_bio_free(bio);
        return false;
    }
    c->io.ops->set_bio(&c->io, bio);
    return true;
}

bool
sw_conn_splice_begin(struct sw_conn *c)
{
    return c->ring == NULL || sw__ring_splice_begin(c);
}

void
sw_conn_splice_end(struct sw_conn *c)
{
    if (c->ring != NULL) {
        sw__ring_splice_end(c);
    }
}

static ssize_t
splice_result(struct sw_conn *c, ssize_t n)
{
    return n >= 0 ? n : sw_io_fail(&c->io, errno);
}

ssize_t
sw_conn_splice_from(struct sw_conn *c, int pfd, size_t want)
{
    if (c->ring != NULL) {
        return sw__ring_splice_from(c, pfd, want);
    }
    return splice_result(c, splice(c->io.fd, NULL, pfd, NULL, want,
                                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
}

ssize_t
sw_conn_splice_to(struct sw_conn *c, int pfd, size_t n)
{
    if (c->ring != NULL) {
        return sw__ring_splice_to(c, pfd, n);
    }
    return splice_result(c, splice(pfd, NULL, c->io.fd, NULL, n,
                                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
}

bool
sw_conn_splice_async(const struct sw_conn *c)
{
    return c->ring != NULL;
}

bool
sw_conn_sends_idle(const struct sw_conn *c)
{
    return c->ring == NULL || sw__ring_tx_idle(c);
}

/* ---- debug ------------------------------------------------------------ */

const char *
sw_conn_show_flags(unsigned flags, char *out, size_t n)
{
    static const struct sw_flag_name names[] = {
        {SW_CONN_F_READING, "READING"},
        {SW_CONN_F_WRITING, "WRITING"},
        {SW_CONN_F_EOF, "EOF"},
        {SW_CONN_F_RESET, "RESET"},
        {SW_CONN_F_DEAD, "DEAD"},
        {SW_CONN_F_READ_WANTS_WRITE, "READ_WANTS_WRITE"},
        {SW_CONN_F_WRITE_WANTS_READ, "WRITE_WANTS_READ"},
    };
    return sw_flags_show(flags, names, SW_NELEMS(names), out, n);
}
