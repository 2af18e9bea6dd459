/*
 * proxy_upstream.c - the upstream connection of a session: peer pick,
 * connect, keep-alive reuse (kept by the session or from the shared pool),
 * retry of a stale reuse, release, and its events.
 *
 * Owns nothing; works on the session it is given (worker thread only).
 *
 * Contents:
 *   sw__proxy_connect_next        pick a peer, reuse or connect
 *   upstream_attach, reuse_kept
 *   sw__proxy_connected           TCP connect done: TLS handshake, PROXY
 *   sw__proxy_connect_failed      try the next peer
 *   sw__proxy_retry_stale         a reused connection died before answering
 *   sw__proxy_flush_upstream      uhead, then the body in u.out
 *   sw__proxy_upstream_release / _keep / sw__proxy_kept_release
 *   on_upstream_read / _write / _timer   (sw__proxy_upstream_handlers)
 */
#include "proxy_int.h"

#include <shockwave/log.h>
#include <shockwave/tls.h>

#include <errno.h>
#include <sys/socket.h>

static void
upstream_attach(struct sw_session *p, const struct sw_io *io)
{
    sw_conn_attach(&p->u, io);
    p->uhead->pos = p->uhead->start;
    set_flag(p, SW_SESS_F_HEAD_SENT, false);
}

/* A new connection's connect: through the worker's io_uring ring, or
 * connect(2) and writability on epoll (sw_conn_connect); its end calls
 * on_write either way, and connect_done tells how it went. */
static void
start_connect(struct sw_session *p)
{
    sw__proxy_set_state(p, SW_PROXY_CONNECT);
    const struct sw_conf_server *s = p->peer->server;
    sw_conn_connect(&p->u, p->w->ring, (const struct sockaddr *)&s->addr,
                    s->addrlen);
    sw_conn_timer(&p->u, route_or(p->route->connect_timeout_ms,
                                  p->up->cf->connect_timeout_ms));
}

/* The request goes on the connection the session kept: its events are
 * already assigned and its read interest on. */
static void
reuse_kept(struct sw_session *p)
{
    p->peer = p->kept_peer;
    p->kept_peer = NULL;
    p->peer->active++;
    set_flag(p, SW_SESS_F_REUSED, true);
    sw_metrics_store_add(&p->peer->m->reused, 1);
    sw__proxy_metrics_peer(p);
    p->uhead->pos = p->uhead->start;
    set_flag(p, SW_SESS_F_HEAD_SENT, false);
    sw__proxy_set_state(p, SW_PROXY_PROXY);
}

void
sw__proxy_connect_next(struct sw_session *p)
{
    for (;;) {
        struct sw_str key = {p->hash_key, p->hash_key_len};
        struct sw_upstream_peer *peer = sw__proxy_plugins_pick(p);
        if (peer == NULL) {
            peer = sw_upstream_pick(p->up, key, p->tried);
        }
        if (peer == NULL) {
            /* p->peer is already released: report without it. Nothing
             * tried means the health checks hold every server down. */
            char why[160];
            snprintf(why, sizeof(why),
                     "upstream %s: every server is down (health checks)",
                     p->up->cf->name.p);
            sw__proxy_respond_error(p, p->status == 504 ? 504 : 502,
                                    p->status == 504 ? "upstream connect "
                                                       "timed out"
                                    : p->tried == 0
                                        ? why
                                        : "no upstream server reachable");
            return;
        }
        sw_upstream_tried_add(&p->tried, peer->index);
        if (p->kept_peer == peer) {
            reuse_kept(p);
            return;
        }
        sw__proxy_kept_release(p, true);
        struct sw_io io = {.fd = -1, .ops = &sw_io_plain};
        bool reused = sw_upstream_keepalive_get(peer, &io);
        set_flag(p, SW_SESS_F_REUSED, reused);
        if (!reused) {
            io.fd = sw_upstream_socket(peer);
            if (io.fd < 0) {
                sw_upstream_report(peer, false);
                sw_metrics_inc(&p->w->metrics,
                               SW_METRIC_UPSTREAM_RETRIES_TOTAL);
                continue;
            }
        }
        p->peer = peer;
        peer->active++;
        sw__proxy_metrics_peer(p);
        upstream_attach(p, &io);
        if (reused) {
            /* the pool keeps its ends on epoll; in use, one is on the
             * ring (io_uring engine) */
            sw_conn_ring_join(&p->u, p->w->ring);
            sw__proxy_set_state(p, SW_PROXY_PROXY);
        } else {
            start_connect(p);
        }
        return;
    }
}

/* Close the upstream connection but keep the serialised head, for another
 * try. */
static void
release_keep_head(struct sw_session *p)
{
    struct sw_buf *keep = p->uhead;
    p->uhead = NULL;
    sw__proxy_upstream_release(p, false);
    p->uhead = keep;
}

/* The connect to p->peer failed: try the next peer (nothing was sent to the
 * client yet). `timeout` remembers that the last failure was a timeout, for
 * a 504 when no peer is left. */
void
sw__proxy_connect_failed(struct sw_session *p, bool timeout, const char *why)
{
    sw_log_warn("client %s:%s: upstream %.*s: %s", p->raddr, p->rport,
                (int)p->peer->server->text.len, p->peer->server->text.p, why);
    sw_upstream_report(p->peer, false);
    sw_metrics_inc(&p->w->metrics, SW_METRIC_UPSTREAM_RETRIES_TOTAL);
    release_keep_head(p);
    p->status = timeout ? 504 : 502;
    sw__proxy_set_state(p, SW_PROXY_CONNECT);
    sw__proxy_connect_next(p);
}

/*
 * A reused keep-alive connection ended before the first response byte: the
 * upstream closed or reset it as we picked it. Like nginx's
 * proxy_next_upstream, the request goes again, once, on a fresh connection
 * to the same peer when that is safe: an idempotent method, nothing of the
 * response sent to the client, and no body (a streamed body is no longer at
 * hand). Returns false when the caller must answer 502.
 */
bool
sw__proxy_retry_stale(struct sw_session *p)
{
    if (!has(p, SW_SESS_F_REUSED) || has(p, SW_SESS_F_RETRIED) ||
        has(p, SW_SESS_F_RESP_STARTED) || p->req_body != SW_HTTP_BODY_NONE ||
        !has(p, SW_SESS_F_IDEMPOTENT) || sw_conn_buffered(p->c.out) > 0) {
        return false;
    }
    struct sw_upstream_peer *peer = p->peer;
    release_keep_head(p);
    struct sw_io io = {.fd = sw_upstream_socket(peer), .ops = &sw_io_plain};
    if (io.fd < 0) {
        return false;
    }
    sw_log_info("client %s:%s: upstream %.*s closed a reused connection "
                "before answering; retrying on a new one",
                p->raddr, p->rport, (int)peer->server->text.len,
                peer->server->text.p);
    sw_metrics_inc(&p->w->metrics, SW_METRIC_UPSTREAM_RETRIES_TOTAL);
    p->peer = peer;
    peer->active++;
    sw__proxy_metrics_peer(p);
    set_flag(p, SW_SESS_F_REUSED, false);
    set_flag(p, SW_SESS_F_RETRIED, true);
    upstream_attach(p, &io);
    start_connect(p);
    return true;
}

/* Hand the upstream socket to peer's keep-alive pool, which watches its
 * idle sockets on epoll: an end on the io_uring ring leaves it first, and
 * one that cannot (bytes still queued either way: a send not done, bytes
 * or a close received) is closed by the caller instead, never pooled. */
static void
to_pool(struct sw_session *p, struct sw_upstream_peer *peer)
{
    if (!sw_conn_ring_leave(&p->u)) {
        sw_log_debug("session %llu: upstream fd %d has bytes queued on the "
                     "ring: closed, not pooled",
                     (unsigned long long)p->id, p->u.io.fd);
        return;
    }
    struct sw_io io;
    sw_conn_detach(&p->u, &io);
    sw_upstream_keepalive_put(peer, &io);
}

/* Let go of the upstream connection: back to the keep-alive pool when it
 * finished a response cleanly, else closed. */
void
sw__proxy_upstream_release(struct sw_session *p, bool reusable)
{
    if (p->peer != NULL) {
        p->peer->active--;
        if (reusable && sw_conn_is_open(&p->u)) {
            to_pool(p, p->peer);
        }
    }
    sw_conn_close(&p->u);
    sw_conn_buf_release(&p->u, &p->uhead);
    p->peer = NULL;
}

/*
 * Between requests a session keeps its upstream connection, still
 * registered for reads (an upstream that closes it is seen at once), and
 * reuses it when the balancer picks the same peer for the next request, as
 * HAProxy's default reuse does: the fd changes no owner, so no epoll_ctl.
 * Another pick, or the session's end, hands it to the shared pool.
 */
void
sw__proxy_upstream_keep(struct sw_session *p)
{
    struct sw_conn *u = &p->u;
    p->peer->active--;
    p->kept_peer = p->peer;
    p->peer = NULL;
    sw_conn_timer(u, 0);
    sw_conn_watch(u, true, false);
    sw_conn_buf_release(u, &u->in);
    sw_conn_buf_release(u, &u->out);
    sw_conn_buf_release(u, &p->uhead);
}

/* The kept connection goes to the shared pool (reusable) or is closed. */
void
sw__proxy_kept_release(struct sw_session *p, bool reusable)
{
    if (p->kept_peer == NULL) {
        return;
    }
    if (reusable) {
        to_pool(p, p->kept_peer);
    }
    sw_conn_close(&p->u);
    p->kept_peer = NULL;
}

/* PROXY: the serialised head, then the body bytes in u.out. True when
 * bytes went out or the upstream stopped reading. */
bool
sw__proxy_flush_upstream(struct sw_session *p)
{
    struct sw_conn *u = &p->u;
    if (!sw_conn_is_open(u) || p->state != SW_PROXY_PROXY) {
        return false;
    }
    ssize_t n = 0;
    ssize_t sent = 0;
    if (!has(p, SW_SESS_F_HEAD_SENT)) {
        n = sw_conn_send_buf(u, p->uhead);
        sent += n > 0 ? n : 0;
        if (n >= 0 && sw_buf_len(p->uhead) == 0) {
            set_flag(p, SW_SESS_F_HEAD_SENT, true);
            sw__proxy_metrics_head_sent(p);
        }
    }
    if (n >= 0 && has(p, SW_SESS_F_HEAD_SENT) && sw_conn_buffered(u->out) > 0) {
        n = sw_conn_flush(u);
        sent += n > 0 ? n : 0;
    }
    if (n >= 0) {
        return sent > 0;
    }
    /* The upstream stopped reading: it may have answered already (an early
     * 413, say); keep reading its response, drop what is left. */
    if (u->out != NULL) {
        u->out->pos = u->out->last = u->out->start;
    }
    p->uhead->pos = p->uhead->last;
    set_flag(p, SW_SESS_F_HEAD_SENT, true);
    if (!has(p, SW_SESS_F_REQ_DONE)) {
        /* the rest of the body stays unread: the client connection cannot
         * carry another request after this one */
        set_flag(p, SW_SESS_F_CLOSE_AFTER, true);
        set_flag(p, SW_SESS_F_REQ_DONE, true);
    }
    return true;
}

/* CONNECT after the TCP connect succeeded: a transport with a handshake
 * (TLS toward the upstream) finishes it here, still within connect_timeout;
 * then the request goes out. */
static void
upstream_handshake(struct sw_session *p)
{
    struct sw_conn *u = &p->u;
    if (u->io.ops->handshake != NULL) {
        enum sw_status st = u->io.ops->handshake(&u->io);
        if (st == SW_AGAIN) {
            bool wr = u->io.want == SW_IO_WANT_WRITE;
            sw_conn_watch(u, !wr, wr);
            return;
        }
        if (st != SW_OK) {
            sw__proxy_connect_failed(p, false, "TLS handshake failed");
            sw__proxy_run(p);
            return;
        }
    }
    sw__proxy_set_state(p, SW_PROXY_PROXY);
    sw_conn_timer(u, 0);
    /* connected (and TLS done): on the ring from now on (io_uring) */
    sw_conn_ring_join(u, p->w->ring);
    sw__proxy_run_io(p, false);
}

/* CONNECT: the socket became writable (or the ring's connect completed);
 * did the connect succeed? */
static void
connect_done(struct sw_session *p)
{
    int err = sw_conn_connect_error(&p->u);
    if (err != 0) {
        sw__proxy_connect_failed(p, false, strerror(err));
        sw__proxy_run(p);
        return;
    }
    sw__proxy_metrics_connected(p);
    if (p->peer->server->tls && p->u.io.ops == &sw_io_plain &&
        sw_tls_client_attach(conf_of(p)->tls, p->up->cf, p->peer->server,
                             &p->u.io) != SW_OK) {
        sw__proxy_connect_failed(p, false, "cannot start TLS");
        sw__proxy_run(p);
        return;
    }
    upstream_handshake(p);
}

/* Read the upstream into u.in; false when the session was closed. */
static bool
upstream_read(struct sw_session *p)
{
    ssize_t n = sw__proxy_read(p, &p->u);
    if (n > 0 && !has(p, SW_SESS_F_RESP_STARTED)) {
        set_flag(p, SW_SESS_F_RESP_STARTED, true);
        sw__proxy_metrics_first_byte(p);
    }
    return n != SW_ENOMEM;
}

static void
on_upstream_read(struct sw_conn *c, void *arg)
{
    struct sw_session *p = arg;
    SW_UNUSED(c);
    if (p->kept_peer != NULL) {
        /* an idle upstream speaks only to close (or to break HTTP) */
        sw__proxy_kept_release(p, false);
        return;
    }
    if (p->state == SW_PROXY_CONNECT) {
        upstream_handshake(p);
        return;
    }
    if (p->state == SW_PROXY_PROXY && upstream_read(p)) {
        sw__proxy_run_io(p, false);
    }
}

static void
on_upstream_write(struct sw_conn *c, void *arg)
{
    struct sw_session *p = arg;
    if (p->state == SW_PROXY_CONNECT) {
        connect_done(p);
        return;
    }
    if (p->state != SW_PROXY_PROXY) {
        return;
    }
    if (sw_conn_has(c, SW_CONN_F_READ_WANTS_WRITE) && !upstream_read(p)) {
        return;
    }
    sw__proxy_run_io(p, false);
}

static void
on_upstream_timer(struct sw_conn *c, void *arg)
{
    struct sw_session *p = arg;
    SW_UNUSED(c);
    if (p->state == SW_PROXY_CONNECT) {
        sw__proxy_connect_failed(p, true, "connect timed out");
    } else if (p->state == SW_PROXY_PROXY) {
        sw__proxy_upstream_failed(p, 504, "read timed out");
    } else {
        return;
    }
    sw__proxy_run(p);
}

const struct sw_conn_handlers sw__proxy_upstream_handlers = {
    .on_read = on_upstream_read,
    .on_write = on_upstream_write,
    .on_timer = on_upstream_timer,
};
