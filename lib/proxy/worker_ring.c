/*
 * worker_ring.c - a worker's listeners on its io_uring ring: one multishot
 * accept per listening socket instead of libevent's readable event.
 *
 *   start (worker thread, before the loop) -> multishot accept armed
 *   completion with an fd  -> getpeername -> sw__proxy_accepted (the code
 *                             accept4 leads to on epoll)
 *   ended without an error -> armed again (the kernel ends a multishot
 *                             accept now and then, a full completion queue)
 *   EMFILE/ENFILE/ENOMEM/ENOBUFS -> logged once per burst, armed again
 *                             after SW_WORKER_ACCEPT_BACKOFF_MS (the
 *                             connection waits in the backlog meanwhile)
 *   EINVAL (no multishot accept in this kernel) -> libevent's accept4
 *   stop (drain, worker exit) -> cancelled and reaped, then the socket is
 *                             closed by the caller
 *
 * Owns the listener's accept record (struct sw_ring_op) and its retry
 * timer; the listener itself is worker.c's. Worker thread only.
 */
#include "proxy_int.h"

#include <shockwave/log.h>
#include <shockwave/ring.h>

#include <errno.h>
#include <unistd.h>

/* After an accept ran out of fds or memory: the next try, this much later
 * (the closes meanwhile give them back). */
#define SW_WORKER_ACCEPT_BACKOFF_MS 100

static void
arm(struct sw_listener *l)
{
    if (sw_ring_op_accept(l->accept_op, l->fd) != SW_OK) {
        /* the ring's queue is full: the next try after the backoff */
        struct timeval tv = {0, SW_WORKER_ACCEPT_BACKOFF_MS * 1000};
        event_add(&l->retry_ev, &tv);
    }
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
    SW_UNUSED(fd);
    SW_UNUSED(what);
    struct sw_listener *l = arg;
    if (l->accept_op != NULL && !l->w->draining &&
        !sw_ring_op_busy(l->accept_op)) {
        arm(l);
    }
}

static bool
out_of_resources(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS;
}

static void
accepted(struct sw_listener *l, int fd)
{
    struct sw_worker *w = l->w;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    /* a multishot accept gives no address per connection */
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
        sw_log_debug("worker %u: fd %d: getpeername: %s", w->id, fd,
                     strerror(errno)); /* reset before we saw it */
        close(fd);
        return;
    }
    sw__proxy_accepted(w, l, fd, (struct sockaddr *)&ss);
}

static void
on_accept(void *arg, int res, bool more)
{
    struct sw_listener *l = arg;
    struct sw_worker *w = l->w;
    if (res >= 0) {
        l->accept_failing = false;
        accepted(l, res);
    } else if (out_of_resources(-res)) {
        if (!l->accept_failing) {
            sw_log_error("worker %u: accept: %s", w->id, strerror(-res));
            l->accept_failing = true;
        }
        if (!more) {
            struct timeval tv = {0, SW_WORKER_ACCEPT_BACKOFF_MS * 1000};
            event_add(&l->retry_ev, &tv);
            return;
        }
    } else if (res == -EINVAL && !more) {
        sw_log_info("worker %u: no multishot accept in this kernel: "
                    "accepting on epoll",
                    w->id);
        event_del(&l->retry_ev);
        sw_ring_op_free(l->accept_op);
        l->accept_op = NULL;
        event_add(&l->ev, NULL);
        return;
    } else if (res != -ECANCELED && res != -ECONNABORTED && res != -EINTR) {
        sw_log_error("worker %u: accept: %s", w->id, strerror(-res));
    }
    if (!more && !w->draining) {
        arm(l);
    }
}

bool
sw__proxy_listener_ring_start(struct sw_listener *l)
{
    struct sw_worker *w = l->w;
    if (w->ring == NULL || l->fd < 0) {
        return false;
    }
    l->accept_op = sw_ring_op_new(w->ring, on_accept, l);
    if (l->accept_op == NULL) {
        return false;
    }
    event_assign(&l->retry_ev, w->base, -1, 0, on_retry, l);
    if (sw_ring_op_accept(l->accept_op, l->fd) != SW_OK) {
        sw_ring_op_free(l->accept_op);
        l->accept_op = NULL;
        return false;
    }
    return true;
}

void
sw__proxy_listener_ring_stop(struct sw_listener *l)
{
    if (l->accept_op == NULL) {
        return;
    }
    event_del(&l->retry_ev);
    /* synchronous: the kernel must let go of the socket before it is
     * closed, or it would go on accepting connections nobody serves */
    sw_ring_op_stop(l->accept_op);
    l->accept_op = NULL;
}
