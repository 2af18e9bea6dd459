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
 *   sw_conn_watch, sw_conn_wake, sw_conn_in_has_room
 *   sw_conn_timer, sw_conn_timer_armed, sw_conn_kick,
 *   sw_conn_peer_gone
 *   sw_conn_buf_ready / out_room / buf_release* / release_idle
 *   sw_conn_read, sw_conn_send_buf, sw_conn_flush
 *   sw_conn_show_flags
 *
 * Threading: the owning worker's thread only.
 */
#include <shockwave/conn.h>
#include <shockwave/log.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Input drained before a gentle close, at most: enough for the frames a
 * peer may send after its close, bounded so a flood cannot hold us. */
#define SW_CONN_DRAIN_CHUNK 4096
#define SW_CONN_DRAIN_READS 16

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

void
sw_conn_init(struct sw_conn *c, const char *role, struct event_base *base,
             struct sw_buf_pool *bufs, const struct sw_conn_handlers *on,
             void *arg)
{
    memset(c, 0, sizeof(*c));
    c->io.fd = -1;
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
    c->io = *io;
    c->flags = 0;
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
    sw_conn_watch(c, false, false);
    event_del(&c->timer);
    *io = c->io;
    c->io = (struct sw_io){.fd = -1, .ops = &sw_io_plain};
    c->flags = 0;
}

void
sw_conn_close(struct sw_conn *c)
{
    sw_conn_watch(c, false, false);
    event_del(&c->timer);
    if (c->io.fd >= 0) {
        c->io.ops->close(&c->io);
        close(c->io.fd);
    }
    c->io = (struct sw_io){.fd = -1, .ops = &sw_io_plain};
    c->flags = 0;
    sw_conn_buf_release(c, &c->in);
    sw_conn_buf_release(c, &c->out);
}

void
sw_conn_close_gently(struct sw_conn *c)
{
    if (c->io.fd >= 0) {
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
    want(c, &c->rev, SW_CONN_F_READING, r);
    want(c, &c->wev, SW_CONN_F_WRITING, w);
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

/* ---- I/O -------------------------------------------------------------- */

ssize_t
sw_conn_read(struct sw_conn *c)
{
    if (!sw_conn_buf_ready(c, &c->in)) {
        return SW_ENOMEM;
    }
    struct sw_buf *b = c->in;
    if (sw_buf_room(b) == 0) {
        return SW_AGAIN;
    }
    ssize_t n = c->io.ops->recv(&c->io, b->last, sw_buf_room(b));
    c->flags &= ~SW_CONN_F_READ_WANTS_WRITE;
    if (n > 0) {
        b->last += n;
    } else if (n == 0) {
        c->flags |= SW_CONN_F_EOF;
    } else if (n == SW_AGAIN) {
        if (c->io.want == SW_IO_WANT_WRITE) {
            c->flags |= SW_CONN_F_READ_WANTS_WRITE;
        }
    } else {
        sw_log_debug("%s fd %d: recv: %s", c->role, c->io.fd,
                     strerror(c->io.last_errno));
        c->flags |= SW_CONN_F_EOF | SW_CONN_F_RESET;
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
sw_conn_flush(struct sw_conn *c)
{
    return sw_conn_send_buf(c, c->out);
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
