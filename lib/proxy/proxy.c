/*
 * proxy.c - one client connection: HTTP/1.1 requests read, routed and
 * proxied to an upstream, responses streamed back (state diagram in
 * proxy_int.h).
 *
 * Owns: the session, both sockets, its pool buffers and a reference on the
 * snapshot state (struct sw_wconf) it was accepted under. Borrows the
 * worker. Runs on the worker's thread only.
 *
 * Data path per request:
 *
 *   client --c.in--> head decode --> route --> uhead (re-serialised head)
 *                    body decode (CL / chunked) --u.out--> upstream
 *   client <--c.out-- head re-serialised, body re-framed <--u.in-- upstream
 *
 * The upstream never sees the client's raw bytes: the head is rebuilt from
 * the parsed fields and the body is re-framed (its own Content-Length, or
 * chunks re-encoded), which closes the door on request smuggling.
 * Backpressure: each buffer is bounded; a side is read only while the buffer
 * it fills has room.
 */
#include "proxy_int.h"

#include <shockwave/log.h>
#include <shockwave/route.h>
#include <shockwave/tls.h>
#include <shockwave/ws.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <unistd.h>

/* Headers kept per request head: a fixed array on the stack. */
#define SW_PROXY_MAX_HEADERS 256

static void run(struct sw_session *p);
static void connect_next(struct sw_session *p);

/* ---- state ------------------------------------------------------------ */

static bool
transition_ok(enum sw_proxy_state from, enum sw_proxy_state to)
{
    if (to == SW_PROXY_CLOSING) {
        return from != SW_PROXY_CLOSING;
    }
    switch (from) {
    case SW_PROXY_HANDSHAKE:
        return to == SW_PROXY_IDLE;
    case SW_PROXY_IDLE:
        return to == SW_PROXY_HEAD;
    case SW_PROXY_HEAD:
        return to == SW_PROXY_LOCAL || to == SW_PROXY_CONNECT ||
               to == SW_PROXY_PROXY;
    case SW_PROXY_CONNECT:
        return to == SW_PROXY_PROXY || to == SW_PROXY_LOCAL ||
               to == SW_PROXY_CONNECT;
    case SW_PROXY_PROXY:
        return to == SW_PROXY_IDLE || to == SW_PROXY_LOCAL ||
               to == SW_PROXY_CONNECT || to == SW_PROXY_UPGRADED ||
               to == SW_PROXY_LINGER;
    case SW_PROXY_LOCAL:
        return to == SW_PROXY_IDLE || to == SW_PROXY_LINGER;
    case SW_PROXY_LINGER:
    case SW_PROXY_UPGRADED:
    case SW_PROXY_CLOSING:
        return false;
    }
    return false;
}

static void
set_state(struct sw_session *p, enum sw_proxy_state to)
{
    SW_ASSERT(transition_ok(p->state, to));
    p->state = to;
}

/* ---- events and timers ------------------------------------------------ */

static void
want(struct event *ev, bool *on, bool yes)
{
    if (yes && !*on) {
        event_add(ev, NULL);
        *on = true;
    } else if (!yes && *on) {
        event_del(ev);
        *on = false;
    }
}

static void
timer_set(struct sw_side *s, uint64_t ms)
{
    if (ms == 0) {
        event_del(&s->timer);
        return;
    }
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(&s->timer, &tv);
}

static const struct sw_conf *
conf_of(const struct sw_session *p)
{
    return p->wc->cf;
}

/* ---- buffers ---------------------------------------------------------- */

/* Make sure *bp is a buffer with room at its end; false on ENOMEM. */
static bool
buf_ready(struct sw_session *p, struct sw_buf **bp)
{
    if (*bp == NULL) {
        *bp = sw_buf_get(&p->w->bufs);
        if (*bp == NULL) {
            sw_metrics_inc(&p->w->metrics, SW_METRIC_OUT_OF_MEMORY);
            return false;
        }
        return true;
    }
    struct sw_buf *b = *bp;
    if (b->pos == b->last) {
        b->pos = b->last = b->start;
    } else if (sw_buf_room(b) == 0 && b->pos != b->start) {
        sw_buf_compact(b);
    }
    return true;
}

/* Return an empty buffer to the pool: idle connections hold none. */
static void
buf_release_if_empty(struct sw_session *p, struct sw_buf **bp)
{
    if (*bp != NULL && sw_buf_len(*bp) == 0) {
        sw_buf_put(&p->w->bufs, *bp);
        *bp = NULL;
    }
}

static void
buf_release(struct sw_session *p, struct sw_buf **bp)
{
    sw_buf_put(&p->w->bufs, *bp);
    *bp = NULL;
}

static size_t
out_room(struct sw_session *p, struct sw_buf **bp)
{
    if (!buf_ready(p, bp)) {
        return 0;
    }
    return sw_buf_room(*bp);
}

/* ---- closing ---------------------------------------------------------- */

static void
side_close(struct sw_session *p, struct sw_side *s)
{
    want(&s->rev, &s->rev_on, false);
    want(&s->wev, &s->wev_on, false);
    event_del(&s->timer);
    if (s->io.fd >= 0) {
        s->io.ops->close(&s->io);
        close(s->io.fd);
        s->io.fd = -1;
    }
    s->eof = false;
    buf_release(p, &s->in);
    buf_release(p, &s->out);
}

/* Let go of the upstream connection: back to the keep-alive pool when it
 * finished a response cleanly, else closed. */
static void
upstream_release(struct sw_session *p, bool reusable)
{
    struct sw_side *u = &p->u;
    if (p->peer != NULL) {
        p->peer->active--;
    }
    if (u->io.fd >= 0 && reusable && p->peer != NULL) {
        want(&u->rev, &u->rev_on, false);
        want(&u->wev, &u->wev_on, false);
        event_del(&u->timer);
        sw_upstream_keepalive_put(p->peer, &u->io);
        u->io.fd = -1;
        u->io.ops = &sw_io_plain;
        u->io.tls = NULL;
    }
    side_close(p, u);
    buf_release(p, &p->uhead);
    p->peer = NULL;
}

/*
 * Between requests a session keeps its upstream connection, still
 * registered for reads (an upstream that closes it is seen at once), and
 * reuses it when the balancer picks the same peer for the next request, as
 * HAProxy's default reuse does: the fd changes no owner, so no epoll_ctl.
 * Another pick, or the session's end, hands it to the shared pool.
 */
static void
upstream_keep(struct sw_session *p)
{
    struct sw_side *u = &p->u;
    p->peer->active--;
    p->kept_peer = p->peer;
    p->peer = NULL;
    event_del(&u->timer);
    want(&u->wev, &u->wev_on, false);
    want(&u->rev, &u->rev_on, true);
    buf_release(p, &u->in);
    buf_release(p, &u->out);
    buf_release(p, &p->uhead);
}

/* The kept connection goes to the shared pool (reusable) or is closed. */
static void
kept_release(struct sw_session *p, bool to_pool)
{
    struct sw_side *u = &p->u;
    if (p->kept_peer == NULL) {
        return;
    }
    if (to_pool) {
        want(&u->rev, &u->rev_on, false);
        sw_upstream_keepalive_put(p->kept_peer, &u->io);
        u->io.fd = -1;
        u->io.ops = &sw_io_plain;
        u->io.tls = NULL;
    }
    side_close(p, u);
    p->kept_peer = NULL;
}

static void
session_close(struct sw_session *p)
{
    if (p->state == SW_PROXY_CLOSING) {
        return;
    }
    set_state(p, SW_PROXY_CLOSING);
    kept_release(p, !p->w->draining);
    upstream_release(p, false);
    side_close(p, &p->c);
    sw__proxy_session_closed(p);
}

/* ---- logging ---------------------------------------------------------- */

static void
log_access(struct sw_session *p)
{
    uint64_t ms = sw_now_ms() - p->started_ms;
    sw_log_access("%s \"%s\" %u %llu %.*s %llums %s", p->raddr, p->log_req,
                  p->status, (unsigned long long)p->bytes_out,
                  p->peer ? (int)p->peer->server->text.len : 1,
                  p->peer ? p->peer->server->text.p : "-",
                  (unsigned long long)ms, p->request_id);
}

/* ---- local answers ---------------------------------------------------- */

/*
 * Answer the client ourselves (errors, 404, `return`). The connection is
 * kept only when `keep` and the request carried no unread body: its bytes
 * would otherwise be read as the next request.
 */
static void
respond_local(struct sw_session *p, unsigned status, const char *body,
              size_t body_len, bool keep, const char *why, const char *extra)
{
    const char *reason = sw_http_reason(status);
    if (status >= 400) {
        sw_metrics_inc(&p->w->metrics, SW_METRIC_HTTP_ERRORS_TOTAL);
        sw_log_warn("client %s:%s: %u %s: %s", p->raddr, p->rport, status,
                    reason, why != NULL ? why : reason);
    }
    if (p->state == SW_PROXY_CONNECT || p->state == SW_PROXY_PROXY) {
        upstream_release(p, false);
    }
    if (p->req_body != SW_HTTP_BODY_NONE && !p->req_done) {
        keep = false;
    }
    if (!p->client_keepalive || p->w->draining) {
        keep = false;
    }
    p->close_after = !keep;
    p->status = status;
    sw_metrics_status(&p->w->metrics, status);
    set_state(p, SW_PROXY_LOCAL);

    char head[320];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %u %s\r\nServer: shockwave\r\n"
                     "Content-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "%s%s\r\n",
                     status, reason, body_len, extra != NULL ? extra : "",
                     keep ? "" : "Connection: close\r\n");
    struct sw_buf *b = NULL;
    if (!buf_ready(p, &p->c.out) || (b = p->c.out) == NULL ||
        !sw_buf_append(b, head, (size_t)n) ||
        !sw_buf_append(b, body, body_len)) {
        session_close(p);
        return;
    }
    p->bytes_out = body_len;
    log_access(p);
}

static void
respond_error(struct sw_session *p, unsigned status, const char *why)
{
    char body[96];
    int n =
        snprintf(body, sizeof(body), "%u %s\n", status, sw_http_reason(status));
    respond_local(p, status, body, (size_t)n, false, why, NULL);
}

/* An upstream failure: 502/504 while the client has seen nothing of the
 * response, else the client connection is cut (a half-sent response cannot
 * be turned into an error). */
static void
upstream_failed(struct sw_session *p, unsigned status, const char *why)
{
    if (p->peer != NULL) {
        sw_upstream_report(p->peer, false);
    }
    if (!p->resp_head_done) {
        char msg[160];
        snprintf(msg, sizeof(msg), "upstream %.*s: %s",
                 p->peer ? (int)p->peer->server->text.len : 1,
                 p->peer ? p->peer->server->text.p : "-", why);
        respond_error(p, status, msg);
        return;
    }
    sw_log_warn("client %s:%s: upstream %.*s failed mid-response: %s", p->raddr,
                p->rport, p->peer ? (int)p->peer->server->text.len : 1,
                p->peer ? p->peer->server->text.p : "-", why);
    session_close(p);
}

/* ---- request start ---------------------------------------------------- */

static void
make_request_id(struct sw_session *p, const struct sw_http_request *r)
{
    const struct sw_http_header *h =
        sw_http_find(r->headers, r->nheaders, "X-Request-Id");
    if (h != NULL && h->value.len > 0 && h->value.len < sizeof(p->request_id)) {
        memcpy(p->request_id, h->value.p, h->value.len);
        p->request_id[h->value.len] = '\0';
        return;
    }
    uint64_t seq = ++p->w->request_seq;
    snprintf(p->request_id, sizeof(p->request_id), "%016llx%08x%08llx",
             (unsigned long long)p->w->id_seed, p->w->id,
             (unsigned long long)(seq & 0xffffffffu));
}

static bool
is_named(struct sw_str name, const char *lit)
{
    return sw_str_eq_ci(name, lit);
}

static struct sw_str
cstr(const char *s)
{
    return (struct sw_str){s, strlen(s)};
}

/* The values of $variables for this session's request (host and target
 * are empty once the request head is gone, for response edits). */
static struct sw_route_vars
session_vars(const struct sw_session *p, struct sw_str host,
             struct sw_str target)
{
    return (struct sw_route_vars){
        .remote_addr = cstr(p->raddr),
        .remote_port = cstr(p->rport),
        .scheme = cstr(p->c.io.ops->scheme),
        .host = host,
        .request_id = cstr(p->request_id),
        .request_uri = target,
        .server_port = cstr(p->l->port),
    };
}

/* True when the route's request edits set or remove header `name`. */
static bool
edited(const struct sw_conf_route *rt, const char *name)
{
    struct sw_str n = {name, strlen(name)};
    return sw_route_edits_drop(rt->request_edits, rt->nrequest_edits, n);
}

/* Write the head the upstream will see: request line, the client's
 * end-to-end fields minus what the route edits, forwarding fields, our own
 * framing, then the route's set/add edits. */
static bool
write_upstream_head(struct sw_session *p, const struct sw_http_request *r,
                    const struct sw_route_vars *vars)
{
    const struct sw_conf_route *rt = p->route;
    struct sw_buf *b = p->uhead;
    struct sw_http_writer w;
    sw_http_writer_init(&w, (char *)b->start, (size_t)(b->end - b->start));

    sw_http_write_str(&w, r->method);
    sw_http_write(&w, " ", 1);
    sw_http_write_str(&w, r->target);
    sw_http_write_cstr(&w, " HTTP/1.1\r\n");

    for (size_t i = 0; i < r->nheaders; i++) {
        const struct sw_http_header *h = &r->headers[i];
        if (sw_http_is_hop_by_hop(h->name, r->connection) ||
            is_named(h->name, "Content-Length") ||
            is_named(h->name, "Expect") ||
            is_named(h->name, "X-Forwarded-Proto") ||
            is_named(h->name, "X-Forwarded-Host") ||
            is_named(h->name, "X-Request-Id") ||
            sw_route_edits_drop(rt->request_edits, rt->nrequest_edits,
                                h->name)) {
            continue;
        }
        if (is_named(h->name, "X-Forwarded-For")) {
            continue; /* merged into one field below */
        }
        sw_http_write_header(&w, h->name, h->value);
    }
    if (r->host.len == 0) {
        /* HTTP/1.0 without Host: name the upstream (its first server; the
         * peer is picked after the head is built) */
        sw_http_write_header(&w, SW_STR("Host"), rt->upstream->servers[0].text);
    }
    /* The forwarding fields are the gateway's, unless the route sets or
     * removes them itself: then its edit alone speaks. */
    if (!edited(rt, "X-Forwarded-For")) {
        sw_http_write_cstr(&w, "X-Forwarded-For: ");
        for (size_t i = 0; i < r->nheaders; i++) {
            const struct sw_http_header *h = &r->headers[i];
            if (is_named(h->name, "X-Forwarded-For") && h->value.len > 0) {
                sw_http_write_str(&w, h->value);
                sw_http_write(&w, ", ", 2);
            }
        }
        sw_http_write_cstr(&w, p->raddr);
        sw_http_write(&w, "\r\n", 2);
    }
    if (!edited(rt, "X-Forwarded-Proto")) {
        sw_http_write_cstr(&w, "X-Forwarded-Proto: ");
        sw_http_write_cstr(&w, p->c.io.ops->scheme);
        sw_http_write(&w, "\r\n", 2);
    }
    if (r->host.len > 0 && !edited(rt, "X-Forwarded-Host")) {
        sw_http_write_header(&w, SW_STR("X-Forwarded-Host"), r->host);
    }
    if (!edited(rt, "X-Request-Id")) {
        sw_http_write_cstr(&w, "X-Request-Id: ");
        sw_http_write_cstr(&w, p->request_id);
        sw_http_write(&w, "\r\n", 2);
    }
    if (p->ws_upgrade) {
        sw_http_write_cstr(&w, "Connection: Upgrade\r\nUpgrade: websocket\r\n");
    }
    if (r->body == SW_HTTP_BODY_LENGTH) {
        sw_http_write_cstr(&w, "Content-Length: ");
        sw_http_write_u64(&w, r->content_length);
        sw_http_write(&w, "\r\n", 2);
    } else if (r->body == SW_HTTP_BODY_CHUNKED) {
        sw_http_write_cstr(&w, "Transfer-Encoding: chunked\r\n");
    }
    sw_route_edits_write(&w, rt->request_edits, rt->nrequest_edits, vars);
    sw_http_write(&w, "\r\n", 2);
    if (w.overflow) {
        return false;
    }
    b->pos = b->start;
    b->last = b->start + w.len;
    return true;
}

/*
 * A WebSocket upgrade is accepted only on a route with `websocket on;` and
 * only when the handshake is valid (RFC 6455 4.2.1): anything else gets
 * 400 (426 for a wrong version) and never reaches the upstream. Other
 * upgrade tokens (h2c among them) are dropped with the hop-by-hop Upgrade
 * field and the request goes on as plain HTTP: nothing is tunnelled.
 * Returns false when the request was answered here.
 */
static bool
check_upgrade(struct sw_session *p, const struct sw_http_request *r)
{
    p->ws_upgrade = false;
    if (!r->upgrade || !sw_str_has_token(r->upgrade_proto, "websocket") ||
        !p->route->websocket) {
        return true;
    }
    int status = 400;
    const char *why = NULL;
    struct sw_str key = {NULL, 0};
    if (sw_ws_handshake_check_request(r, &status, &why, &key) != SW_OK ||
        key.len >= sizeof(p->ws_key)) {
        char body[96];
        int n = snprintf(body, sizeof(body), "%u %s\n", status,
                         sw_http_reason((unsigned)status));
        sw_metrics_inc(&p->w->metrics, SW_METRIC_WS_HANDSHAKE_REJECTED);
        respond_local(p, (unsigned)status, body, (size_t)n, false,
                      why != NULL ? why : "bad WebSocket handshake",
                      status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL);
        return false;
    }
    if (r->body != SW_HTTP_BODY_NONE) {
        sw_metrics_inc(&p->w->metrics, SW_METRIC_WS_HANDSHAKE_REJECTED);
        respond_error(p, 400, "WebSocket upgrade request with a body");
        return false;
    }
    memcpy(p->ws_key, key.p, key.len);
    p->ws_key_len = key.len;
    p->ws_upgrade = true;
    return true;
}

static void
start_request(struct sw_session *p, const struct sw_http_request *r)
{
    const struct sw_conf *cf = conf_of(p);
    struct sw_worker *w = p->w;

    sw_metrics_inc(&w->metrics, SW_METRIC_HTTP_REQUESTS_TOTAL);
    p->started_ms = sw_now_ms();
    p->method_id = r->method_id;
    p->version_minor = r->version_minor;
    /* keepalive_timeout 0 turns client keep-alive off */
    p->client_keepalive = r->keep_alive && cf->keepalive_timeout_ms != 0;
    p->req_body = r->body;
    p->req_remaining = r->content_length;
    p->req_done = r->body == SW_HTTP_BODY_NONE;
    p->req_body_bytes = 0;
    sw_http_chunked_init(&p->req_chunked);
    snprintf(p->log_req, sizeof(p->log_req), "%.*s %.*s HTTP/1.%u",
             (int)r->method.len, r->method.p, (int)SW_MIN(r->target.len, 200),
             r->target.p, r->version_minor);
    make_request_id(p, r);
    p->c.in->pos += r->head_len; /* the head is consumed; body follows */

    char norm[4096];
    ssize_t nlen = sw_route_normalize_path(r->path, norm, sizeof(norm));
    if (nlen == SW_EPROTO) {
        respond_error(p, 400, "path climbs above the root");
        return;
    }
    if (nlen < 0) {
        respond_error(p, 414, "path too long to route");
        return;
    }
    struct sw_str path = {norm, (size_t)nlen};
    p->route = sw_route_match(cf, r->host, path, r->headers, r->nheaders);
    if (p->route == NULL) {
        static const char body[] = "404 Not Found: no route\n";
        respond_local(p, 404, body, sizeof(body) - 1, true, "no route", NULL);
        return;
    }
    const struct sw_conf_route *rt = p->route;
    if (rt->return_status != 0) {
        respond_local(p, (unsigned)rt->return_status, rt->return_body.p,
                      rt->return_body.len, true, "return", NULL);
        return;
    }
    p->max_body =
        rt->max_body_size != 0 ? rt->max_body_size : cf->max_body_size;
    if (r->body == SW_HTTP_BODY_LENGTH && p->max_body != 0 &&
        r->content_length > p->max_body) {
        respond_error(p, 413, "Content-Length over max_body_size");
        return;
    }
    if (!check_upgrade(p, r)) {
        return;
    }
    if (r->expect_continue && r->body != SW_HTTP_BODY_NONE &&
        r->version_minor == 1) {
        /* RFC 9110 10.1.1: a proxy may answer 100 itself; the upstream then
         * gets the body without Expect, and its own 100 is dropped. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (out_room(p, &p->c.out) < sizeof(cont) - 1) {
            session_close(p);
            return;
        }
        sw_buf_append(p->c.out, cont, sizeof(cont) - 1);
        p->sent_continue = true;
    }

    p->up = &p->wc->ups[rt->upstream->index];
    p->hash_key_len = 0;
    if (rt->upstream->balance == SW_CONF_BALANCE_HASH) {
        struct sw_str key = {p->raddr, strlen(p->raddr)};
        if (rt->upstream->hash_key == SW_CONF_HASH_HEADER) {
            char name[128];
            snprintf(name, sizeof(name), "%.*s",
                     (int)rt->upstream->hash_header.len,
                     rt->upstream->hash_header.p);
            const struct sw_http_header *h =
                sw_http_find(r->headers, r->nheaders, name);
            key = h != NULL ? h->value : SW_STR("");
        }
        p->hash_key_len = SW_MIN(key.len, sizeof(p->hash_key));
        memcpy(p->hash_key, key.p, p->hash_key_len);
    }

    struct sw_route_vars vars = session_vars(p, r->host, r->target);
    if (!buf_ready(p, &p->uhead)) {
        session_close(p);
        return;
    }
    if (!write_upstream_head(p, r, &vars)) {
        respond_error(p, 431, "request head too large after edits");
        return;
    }
    p->tried = 0;
    p->resp_head_done = false;
    p->resp_done = false;
    connect_next(p);
}

/* ---- upstream connection ---------------------------------------------- */

static void on_upstream_read(evutil_socket_t fd, short what, void *arg);
static void on_upstream_write(evutil_socket_t fd, short what, void *arg);

static void
upstream_attach(struct sw_session *p, const struct sw_io *io)
{
    struct sw_side *u = &p->u;
    int fd = io->fd;
    u->io = *io;
    u->eof = false;
    u->read_wants_write = false;
    u->write_wants_read = false;
    u->rev_on = u->wev_on = false;
    event_assign(&u->rev, p->w->base, fd, EV_READ | EV_PERSIST,
                 on_upstream_read, p);
    event_assign(&u->wev, p->w->base, fd, EV_WRITE | EV_PERSIST,
                 on_upstream_write, p);
    p->uhead->pos = p->uhead->start;
    p->head_sent = false;
}

static uint64_t
route_or(uint64_t route_ms, uint64_t upstream_ms)
{
    return route_ms != 0 ? route_ms : upstream_ms;
}

/* The request goes on the connection the session kept: its events are
 * already assigned and its read interest on. */
static void
reuse_kept(struct sw_session *p)
{
    struct sw_side *u = &p->u;
    p->peer = p->kept_peer;
    p->kept_peer = NULL;
    p->peer->active++;
    p->reused = true;
    sw_metrics_inc(&p->w->metrics, SW_METRIC_UPSTREAM_REUSED_TOTAL);
    u->eof = false;
    u->read_wants_write = false;
    u->write_wants_read = false;
    p->uhead->pos = p->uhead->start;
    p->head_sent = false;
    set_state(p, SW_PROXY_PROXY);
}

static void
connect_next(struct sw_session *p)
{
    for (;;) {
        struct sw_str key = {p->hash_key, p->hash_key_len};
        struct sw_upstream_peer *peer = sw_upstream_pick(p->up, key, p->tried);
        if (peer == NULL) {
            /* p->peer is already released: report without it */
            respond_error(p, p->status == 504 ? 504 : 502,
                          p->status == 504 ? "upstream connect timed out"
                                           : "no upstream server reachable");
            return;
        }
        if (peer->index < 64) {
            p->tried |= 1ull << peer->index;
        }
        if (p->kept_peer == peer) {
            reuse_kept(p);
            return;
        }
        kept_release(p, true);
        struct sw_io io = {.fd = -1, .ops = &sw_io_plain};
        p->reused = sw_upstream_keepalive_get(peer, &io);
        if (!p->reused) {
            io.fd = sw_upstream_connect(peer);
            if (io.fd < 0) {
                sw_upstream_report(peer, false);
                sw_metrics_inc(&p->w->metrics,
                               SW_METRIC_UPSTREAM_RETRIES_TOTAL);
                continue;
            }
        }
        p->peer = peer;
        peer->active++;
        upstream_attach(p, &io);
        if (p->reused) {
            set_state(p, SW_PROXY_PROXY);
        } else {
            set_state(p, SW_PROXY_CONNECT);
            want(&p->u.wev, &p->u.wev_on, true);
            timer_set(&p->u, route_or(p->route->connect_timeout_ms,
                                      p->up->cf->connect_timeout_ms));
        }
        return;
    }
}

/* The connect to p->peer failed: try the next peer (nothing was sent to the
 * client yet). `timeout` remembers that the last failure was a timeout, for
 * a 504 when no peer is left. */
static void
connect_failed(struct sw_session *p, bool timeout, const char *why)
{
    sw_log_warn("client %s:%s: upstream %.*s: %s", p->raddr, p->rport,
                (int)p->peer->server->text.len, p->peer->server->text.p, why);
    sw_upstream_report(p->peer, false);
    sw_metrics_inc(&p->w->metrics, SW_METRIC_UPSTREAM_RETRIES_TOTAL);
    struct sw_buf *keep = p->uhead;
    p->uhead = NULL; /* the serialised head survives the release */
    upstream_release(p, false);
    p->uhead = keep;
    p->status = timeout ? 504 : 502;
    set_state(p, SW_PROXY_CONNECT);
    connect_next(p);
}

/* A reused keep-alive connection died before answering: the upstream closed
 * it as we picked it. Retry once on a fresh connection when the request had
 * no body (nothing of it is lost). */
static bool
retry_stale(struct sw_session *p)
{
    if (!p->reused || p->req_body != SW_HTTP_BODY_NONE ||
        (p->u.in != NULL && sw_buf_len(p->u.in) > 0)) {
        return false;
    }
    struct sw_upstream_peer *peer = p->peer;
    struct sw_buf *keep = p->uhead;
    p->uhead = NULL;
    upstream_release(p, false);
    p->uhead = keep;
    struct sw_io io = {.fd = sw_upstream_connect(peer), .ops = &sw_io_plain};
    if (io.fd < 0) {
        return false;
    }
    sw_metrics_inc(&p->w->metrics, SW_METRIC_UPSTREAM_RETRIES_TOTAL);
    p->peer = peer;
    peer->active++;
    p->reused = false;
    upstream_attach(p, &io);
    set_state(p, SW_PROXY_CONNECT);
    want(&p->u.wev, &p->u.wev_on, true);
    timer_set(&p->u, route_or(p->route->connect_timeout_ms,
                              p->up->cf->connect_timeout_ms));
    return true;
}

/* ---- I/O -------------------------------------------------------------- */

/* Read from a side into its input buffer. Returns false when the session
 * was closed. */
static bool
side_read(struct sw_session *p, struct sw_side *s, bool is_client)
{
    if (!buf_ready(p, &s->in)) {
        session_close(p);
        return false;
    }
    struct sw_buf *b = s->in;
    if (sw_buf_room(b) == 0) {
        return true;
    }
    ssize_t n = s->io.ops->recv(&s->io, b->last, sw_buf_room(b));
    s->read_wants_write = n == SW_AGAIN && s->io.want == SW_IO_WANT_WRITE;
    if (n > 0) {
        b->last += n;
        if (is_client) {
            sw_metrics_add(&p->w->metrics, SW_METRIC_BYTES_FROM_CLIENTS, n);
        }
    } else if (n == 0) {
        s->eof = true;
    } else if (n != SW_AGAIN) {
        /* a reset counts as EOF: the state machine decides what it means */
        sw_log_debug("%s fd %d: recv: %s", is_client ? "client" : "upstream",
                     s->io.fd, strerror(s->io.last_errno));
        s->eof = true;
    }
    return true;
}

/* Write as much of b as the socket takes. Returns bytes written, or
 * SW_ECLOSED / SW_ERROR when the peer is gone. */
static ssize_t
side_flush(struct sw_side *s, struct sw_buf *b)
{
    ssize_t total = 0;
    while (b != NULL && sw_buf_len(b) > 0) {
        ssize_t n = s->io.ops->send(&s->io, b->pos, sw_buf_len(b));
        s->write_wants_read = n == SW_AGAIN && s->io.want == SW_IO_WANT_READ;
        if (n > 0) {
            b->pos += n;
            total += n;
        } else if (n == SW_AGAIN) {
            break;
        } else {
            return n;
        }
    }
    if (b != NULL && b->pos == b->last) {
        b->pos = b->last = b->start;
    }
    return total;
}

/* ---- request body: client -> upstream --------------------------------- */

/* The client's body broke a rule: an error answer while the client has
 * seen nothing of the response, else the connection is cut (the upstream
 * may already be streaming its answer). */
static void
request_body_failed(struct sw_session *p, unsigned status, const char *why)
{
    if (!p->resp_head_done) {
        respond_error(p, status, why);
        return;
    }
    sw_log_warn("client %s:%s: %s after the response started, closing",
                p->raddr, p->rport, why);
    sw_metrics_inc(&p->w->metrics, SW_METRIC_HTTP_ERRORS_TOTAL);
    session_close(p);
}

static void
pump_request_body(struct sw_session *p)
{
    struct sw_buf *in = p->c.in;
    while (!p->req_done && in != NULL && sw_buf_len(in) > 0) {
        size_t room = out_room(p, &p->u.out);
        if (room < 32) {
            return;
        }
        struct sw_buf *out = p->u.out;
        if (p->req_body == SW_HTTP_BODY_LENGTH) {
            size_t n =
                (size_t)SW_MIN((uint64_t)sw_buf_len(in), p->req_remaining);
            n = SW_MIN(n, room);
            sw_buf_append(out, in->pos, n);
            in->pos += n;
            p->req_remaining -= n;
            p->req_done = p->req_remaining == 0;
            continue;
        }
        /* chunked: decode, then re-encode with our own chunk lines so the
         * upstream sees only framing we wrote (no smuggled extensions) */
        size_t feed = SW_MIN(sw_buf_len(in), room - 32);
        size_t used = 0;
        struct sw_str data = {NULL, 0};
        enum sw_status st = sw_http_chunked_decode(
            &p->req_chunked, (const char *)in->pos, feed, &used, &data);
        if (st == SW_EPROTO) {
            request_body_failed(p, 400, "malformed chunked request body");
            return;
        }
        if (data.len > 0) {
            p->req_body_bytes += data.len;
            if (p->max_body != 0 && p->req_body_bytes > p->max_body) {
                request_body_failed(p, 413, "chunked body over max_body_size");
                return;
            }
            char line[24];
            size_t ln = sw_http_chunk_header(line, data.len);
            sw_buf_append(out, line, ln);
            sw_buf_append(out, data.p, data.len);
            sw_buf_append(out, "\r\n", 2);
        }
        in->pos += used;
        if (st == SW_OK) {
            sw_buf_append(out, "0\r\n\r\n", 5);
            p->req_done = true;
        }
        if (used == 0) {
            return;
        }
    }
}

/* ---- response: upstream -> client ------------------------------------- */

/* Start a response head at the end of c.out: the writer covers the free
 * room, the status line is written. */
static void
head_begin(struct sw_session *p, struct sw_http_writer *w, unsigned status,
           struct sw_str reason)
{
    size_t room = out_room(p, &p->c.out);
    sw_http_writer_init(w, (char *)p->c.out->last, room);
    char line[64];
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %u %.*s\r\n", status,
                     (int)SW_MIN(reason.len, 40), reason.p);
    sw_http_write(w, line, (size_t)n);
}

/* End the head and queue it; false when it did not fit (nothing queued). */
static bool
head_commit(struct sw_session *p, struct sw_http_writer *w)
{
    sw_http_write(w, "\r\n", 2);
    if (w->overflow) {
        return false;
    }
    p->c.out->last += w->len;
    return true;
}

/* Forward an interim (1xx) response head, minus hop-by-hop fields. */
static bool
forward_interim(struct sw_session *p, const struct sw_http_response *resp)
{
    if (resp->status == 100 && p->sent_continue) {
        return true; /* the client already has our own 100 */
    }
    if (p->version_minor == 0) {
        return true; /* RFC 9110 15.2: no 1xx to HTTP/1.0 clients */
    }
    struct sw_http_writer w;
    head_begin(p, &w, resp->status, resp->reason);
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct sw_http_header *h = &resp->headers[i];
        if (!sw_http_is_hop_by_hop(h->name, resp->connection)) {
            sw_http_write_header(&w, h->name, h->value);
        }
    }
    return head_commit(p, &w);
}

static bool
write_response_head(struct sw_session *p, const struct sw_http_response *resp)
{
    const struct sw_conf_route *rt = p->route;
    struct sw_http_writer w;
    head_begin(p, &w, resp->status, resp->reason);

    /* Bodiless answers to HEAD and 304 keep the upstream's length field:
     * it describes the representation, not this message. */
    bool keep_length =
        resp->body == SW_HTTP_BODY_NONE &&
        (p->method_id == sw_http_method_head() || resp->status == 304);
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct sw_http_header *h = &resp->headers[i];
        if (sw_http_is_hop_by_hop(h->name, resp->connection) ||
            (is_named(h->name, "Content-Length") && !keep_length) ||
            sw_route_edits_drop(rt->response_edits, rt->nresponse_edits,
                                h->name)) {
            continue;
        }
        sw_http_write_header(&w, h->name, h->value);
    }
    p->resp_chunk_out = false;
    switch (resp->body) {
    case SW_HTTP_BODY_LENGTH:
        sw_http_write_cstr(&w, "Content-Length: ");
        sw_http_write_u64(&w, resp->content_length);
        sw_http_write(&w, "\r\n", 2);
        break;
    case SW_HTTP_BODY_CHUNKED:
        if (p->version_minor == 1) {
            sw_http_write_cstr(&w, "Transfer-Encoding: chunked\r\n");
            p->resp_chunk_out = true;
        } else {
            /* HTTP/1.0 knows no chunks: decoded body, delimited by close */
            p->close_after = true;
        }
        break;
    case SW_HTTP_BODY_TO_CLOSE:
        if (p->version_minor == 1) {
            /* re-frame as chunked so the client connection survives */
            sw_http_write_cstr(&w, "Transfer-Encoding: chunked\r\n");
            p->resp_chunk_out = true;
        } else {
            p->close_after = true;
        }
        break;
    case SW_HTTP_BODY_NONE:
        break;
    }
    if (!p->client_keepalive || p->w->draining ||
        (!p->req_done && p->req_body != SW_HTTP_BODY_NONE)) {
        p->close_after = true;
    }
    if (p->close_after) {
        sw_http_write_cstr(&w, "Connection: close\r\n");
    } else if (p->version_minor == 0) {
        sw_http_write_cstr(&w, "Connection: keep-alive\r\n");
    }
    struct sw_route_vars vars = session_vars(p, SW_STR(""), SW_STR(""));
    sw_route_edits_write(&w, rt->response_edits, rt->nresponse_edits, &vars);
    return head_commit(p, &w);
}

/* The 101 toward the client: the upstream's end-to-end fields (protocol and
 * extension choices, accept key) plus our own Upgrade/Connection. */
static bool
write_switching_head(struct sw_session *p, const struct sw_http_response *resp)
{
    const struct sw_conf_route *rt = p->route;
    struct sw_http_writer w;
    head_begin(p, &w, 101, SW_STR("Switching Protocols"));
    sw_http_write_cstr(&w, "Upgrade: websocket\r\nConnection: Upgrade\r\n");
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct sw_http_header *h = &resp->headers[i];
        if (sw_http_is_hop_by_hop(h->name, resp->connection) ||
            is_named(h->name, "Content-Length") ||
            sw_route_edits_drop(rt->response_edits, rt->nresponse_edits,
                                h->name)) {
            continue;
        }
        sw_http_write_header(&w, h->name, h->value);
    }
    return head_commit(p, &w);
}

static void
on_relay_done(void *arg)
{
    struct sw_session *p = arg;
    session_close(p);
}

/* Hand both sockets, and every byte already read on either side, to the
 * relay: bytes behind the request head and behind the 101 are frames. */
static void
start_relay(struct sw_session *p, uint8_t rsv_allowed)
{
    sw_upstream_report(p->peer, true);
    p->status = 101;
    sw_metrics_status(&p->w->metrics, 101);
    log_access(p);
    char caddr[64];
    char uaddr[64];
    snprintf(caddr, sizeof(caddr), "%s:%s", p->raddr, p->rport);
    snprintf(uaddr, sizeof(uaddr), "%.*s", (int)p->peer->server->text.len,
             p->peer->server->text.p);
    struct sw_relay_start s = {
        .route = p->route,
        .client = p->c.io,
        .upstream = p->u.io,
        .client_in = p->c.in,
        .upstream_in = p->u.in,
        .client_out = p->c.out,
        .rsv_allowed = rsv_allowed,
        .client_addr = caddr,
        .upstream_addr = uaddr,
        .on_done = on_relay_done,
        .arg = p,
    };
    struct sw_side *sides[2] = {&p->c, &p->u};
    for (int i = 0; i < 2; i++) {
        want(&sides[i]->rev, &sides[i]->rev_on, false);
        want(&sides[i]->wev, &sides[i]->wev_on, false);
        event_del(&sides[i]->timer);
        sides[i]->io.fd = -1;
        sides[i]->in = NULL;
    }
    p->c.out = NULL;
    buf_release(p, &p->u.out);
    buf_release(p, &p->uhead);
    set_state(p, SW_PROXY_UPGRADED);
    p->relay = sw_relay_new(&p->w->relay_env, &s);
    if (p->relay == NULL && p->state != SW_PROXY_CLOSING) {
        session_close(p);
    }
}

/* Decode response heads until the final one is queued to the client.
 * Returns false when the session left the PROXY state. */
static bool
pump_response_head(struct sw_session *p)
{
    struct sw_side *u = &p->u;
    while (!p->resp_head_done) {
        struct sw_http_header hdrs[SW_PROXY_MAX_HEADERS];
        struct sw_http_response resp = {.headers = hdrs,
                                        .headers_cap = SW_NELEMS(hdrs)};
        const struct sw_conf *cf = conf_of(p);
        struct sw_http_limits lim = {
            .max_head = p->w->bufs.size,
            .max_request_line = p->w->bufs.size,
            .max_headers = SW_MIN(cf->max_headers * 2, SW_NELEMS(hdrs)),
        };
        const char *why = NULL;
        size_t have = u->in != NULL ? sw_buf_len(u->in) : 0;
        enum sw_status st = SW_AGAIN;
        if (have > 0) {
            st = sw_http_response_decode(&resp, (const char *)u->in->pos, have,
                                         &lim, p->method_id, &why);
        }
        if (st == SW_AGAIN) {
            if (u->eof) {
                if (have == 0 && retry_stale(p)) {
                    return false;
                }
                upstream_failed(p, 502,
                                have == 0 ? "closed before responding"
                                          : "closed inside the response head");
                return false;
            }
            if (have > 0 && sw_buf_room(u->in) == 0 &&
                u->in->pos == u->in->start) {
                upstream_failed(p, 502, "response head too large");
                return false;
            }
            return true;
        }
        if (st != SW_OK) {
            upstream_failed(p, 502, why != NULL ? why : "bad response head");
            return false;
        }
        if (resp.status == 101) {
            if (!p->ws_upgrade) {
                upstream_failed(p, 502,
                                "101 to a request that did not upgrade");
                return false;
            }
            struct sw_str key = {p->ws_key, p->ws_key_len};
            if (sw_ws_handshake_check_response(&resp, key, &why) != SW_OK) {
                upstream_failed(p, 502, why != NULL ? why : "bad 101");
                return false;
            }
            if (!write_switching_head(p, &resp)) {
                upstream_failed(p, 502, "101 head too large");
                return false;
            }
            u->in->pos += resp.head_len;
            start_relay(p, sw_ws_handshake_rsv(resp.headers, resp.nheaders));
            return false;
        }
        if (resp.status < 200) {
            if (!forward_interim(p, &resp)) {
                return true; /* wait for the client to drain c.out */
            }
            u->in->pos += resp.head_len;
            continue;
        }
        if (!write_response_head(p, &resp)) {
            if (p->c.out != NULL && sw_buf_len(p->c.out) > 0) {
                return true; /* earlier bytes first, then retry */
            }
            upstream_failed(p, 502, "response head too large");
            return false;
        }
        u->in->pos += resp.head_len;
        sw_upstream_report(p->peer, true);
        p->resp_head_done = true;
        p->status = resp.status;
        sw_metrics_status(&p->w->metrics, resp.status);
        p->resp_body = resp.body;
        p->resp_remaining = resp.content_length;
        p->resp_keepalive = resp.keep_alive;
        p->bytes_out = 0;
        sw_http_chunked_init(&p->resp_chunked);
        if (resp.body == SW_HTTP_BODY_NONE ||
            (resp.body == SW_HTTP_BODY_LENGTH && resp.content_length == 0)) {
            p->resp_done = true;
        }
    }
    return true;
}

/* Queue body bytes to the client, chunk-framed when re-encoding. */
static void
queue_body(struct sw_session *p, const void *data, size_t n)
{
    if (p->resp_chunk_out) {
        char line[24];
        size_t ln = sw_http_chunk_header(line, n);
        sw_buf_append(p->c.out, line, ln);
    }
    sw_buf_append(p->c.out, data, n);
    if (p->resp_chunk_out) {
        sw_buf_append(p->c.out, "\r\n", 2);
    }
    p->bytes_out += n;
}

static void
finish_body(struct sw_session *p)
{
    if (p->resp_chunk_out) {
        sw_buf_append(p->c.out, "0\r\n\r\n", 5);
    }
    p->resp_done = true;
}

static void
pump_response_body(struct sw_session *p)
{
    struct sw_side *u = &p->u;
    while (!p->resp_done) {
        size_t have = u->in != NULL ? sw_buf_len(u->in) : 0;
        if (have == 0) {
            if (!u->eof) {
                return;
            }
            if (p->resp_body == SW_HTTP_BODY_TO_CLOSE) {
                if (out_room(p, &p->c.out) < 8) {
                    return;
                }
                finish_body(p);
                return;
            }
            upstream_failed(p, 502, "closed inside the response body");
            return;
        }
        size_t room = out_room(p, &p->c.out);
        if (room < 40) {
            return;
        }
        size_t cap = room - 32; /* chunk line and CRLF when re-encoding */
        switch (p->resp_body) {
        case SW_HTTP_BODY_LENGTH: {
            size_t n =
                (size_t)SW_MIN((uint64_t)SW_MIN(have, cap), p->resp_remaining);
            queue_body(p, u->in->pos, n);
            u->in->pos += n;
            p->resp_remaining -= n;
            if (p->resp_remaining == 0) {
                finish_body(p);
            }
            break;
        }
        case SW_HTTP_BODY_TO_CLOSE: {
            size_t n = SW_MIN(have, cap);
            queue_body(p, u->in->pos, n);
            u->in->pos += n;
            break;
        }
        case SW_HTTP_BODY_CHUNKED: {
            size_t used = 0;
            struct sw_str data = {NULL, 0};
            enum sw_status st = sw_http_chunked_decode(
                &p->resp_chunked, (const char *)u->in->pos, SW_MIN(have, cap),
                &used, &data);
            if (st == SW_EPROTO) {
                upstream_failed(p, 502, "malformed chunked response body");
                return;
            }
            if (data.len > 0) {
                queue_body(p, data.p, data.len);
            }
            u->in->pos += used;
            if (st == SW_OK) {
                finish_body(p);
            } else if (used == 0) {
                return;
            }
            break;
        }
        case SW_HTTP_BODY_NONE:
            p->resp_done = true;
            break;
        }
    }
}

/* ---- the request/response cycle --------------------------------------- */

static void
reset_request(struct sw_session *p)
{
    p->route = NULL;
    p->up = NULL;
    p->peer = NULL;
    p->req_body = SW_HTTP_BODY_NONE;
    p->req_done = false;
    p->sent_continue = false;
    p->resp_head_done = false;
    p->resp_done = false;
    p->close_after = false;
    p->status = 0;
    p->bytes_out = 0;
}

/* Lingering close: RFC 9112 9.6 asks a server that closes while the client
 * may still be sending to close in stages, or the client's TCP stack may
 * discard our answer when the unread bytes turn the close into a reset. */
#define SW_LINGER_TOTAL_MS 5000
#define SW_LINGER_IDLE_MS 1000

static void
start_linger(struct sw_session *p)
{
    if (p->c.eof) {
        session_close(p);
        return;
    }
    if (p->c.io.ops != &sw_io_plain) {
        /* end the transport first (TLS: close_notify), then linger on the
         * raw socket: what still arrives is dropped undecrypted */
        p->c.io.ops->close(&p->c.io);
        p->c.io.ops = &sw_io_plain;
    }
    shutdown(p->c.io.fd, SHUT_WR);
    set_state(p, SW_PROXY_LINGER);
    p->linger_until_ms = sw_now_ms() + SW_LINGER_TOTAL_MS;
    timer_set(&p->c, SW_LINGER_IDLE_MS);
    want(&p->c.wev, &p->c.wev_on, false);
    want(&p->c.rev, &p->c.rev_on, true);
}

static void
linger_read(struct sw_session *p)
{
    char scratch[16384];
    for (int i = 0; i < 16; i++) {
        ssize_t n = p->c.io.ops->recv(&p->c.io, scratch, sizeof(scratch));
        if (n == SW_AGAIN) {
            break;
        }
        if (n <= 0 || sw_now_ms() >= p->linger_until_ms) {
            session_close(p);
            return;
        }
    }
    timer_set(&p->c, SW_LINGER_IDLE_MS);
}

/* Between requests: no buffers held, keepalive_timeout armed. */
static void
wait_next_request(struct sw_session *p)
{
    reset_request(p);
    set_state(p, SW_PROXY_IDLE);
    buf_release_if_empty(p, &p->c.in);
    buf_release_if_empty(p, &p->c.out);
    timer_set(&p->c, conf_of(p)->keepalive_timeout_ms);
}

/* The response is flushed: settle both connections, then wait for the next
 * request (any pipelined bytes are already in c.in) or close. */
static void
request_done(struct sw_session *p)
{
    bool reusable = p->resp_keepalive && p->req_done && !p->u.eof &&
                    (p->u.in == NULL || sw_buf_len(p->u.in) == 0) &&
                    (p->u.out == NULL || sw_buf_len(p->u.out) == 0) &&
                    p->head_sent && p->resp_body != SW_HTTP_BODY_TO_CLOSE;
    if (p->u.in != NULL && sw_buf_len(p->u.in) > 0) {
        /* RFC 9112 9.3: bytes after a complete response are not a second
         * answer to deliver; the connection is not reused. */
        sw_log_info("upstream %.*s: %zu unexpected bytes after the response",
                    (int)p->peer->server->text.len, p->peer->server->text.p,
                    sw_buf_len(p->u.in));
    }
    log_access(p);
    bool keep = !p->close_after && p->client_keepalive && !p->w->draining &&
                p->req_done && !p->c.eof;
    if (keep && reusable && p->up->cf->keepalive != 0) {
        upstream_keep(p);
    } else {
        upstream_release(p, reusable);
    }
    if (!keep) {
        start_linger(p);
        return;
    }
    wait_next_request(p);
}

static void
local_done(struct sw_session *p)
{
    if (p->close_after) {
        start_linger(p);
        return;
    }
    wait_next_request(p);
}

/* IDLE/HEAD: decode the next request head from c.in. */
static void
process_head(struct sw_session *p)
{
    struct sw_buf *in = p->c.in;
    size_t have = in != NULL ? sw_buf_len(in) : 0;
    if (have == 0) {
        if (p->c.eof) {
            session_close(p); /* closed between requests: normal */
        }
        return;
    }
    const struct sw_conf *cf = conf_of(p);
    if (p->state == SW_PROXY_IDLE) {
        set_state(p, SW_PROXY_HEAD);
        timer_set(&p->c, cf->client_header_timeout_ms);
    }
    struct sw_http_header hdrs[SW_PROXY_MAX_HEADERS];
    struct sw_http_request r = {.headers = hdrs,
                                .headers_cap = SW_NELEMS(hdrs)};
    struct sw_http_limits lim = {
        .max_head = SW_MIN(cf->max_header_bytes, p->w->bufs.size),
        .max_request_line = cf->max_request_line,
        .max_headers = SW_MIN(cf->max_headers, SW_NELEMS(hdrs)),
    };
    int status = 400;
    const char *why = NULL;
    enum sw_status st = sw_http_request_decode(&r, (const char *)in->pos, have,
                                               &lim, &status, &why);
    if (st == SW_AGAIN) {
        if (p->c.eof) {
            sw_log_info("client %s:%s: closed inside a request head", p->raddr,
                        p->rport);
            session_close(p);
        } else if (sw_buf_room(in) == 0) {
            if (in->pos != in->start) {
                sw_buf_compact(in);
            } else {
                respond_error(p, 431, "request head larger than the buffer");
            }
        }
        return;
    }
    if (st != SW_OK) {
        p->client_keepalive = false;
        snprintf(p->log_req, sizeof(p->log_req), "-");
        respond_error(p, (unsigned)status, why);
        return;
    }
    timer_set(&p->c, 0);
    start_request(p, &r);
}

static void
flush_upstream(struct sw_session *p)
{
    struct sw_side *u = &p->u;
    if (u->io.fd < 0 || p->state != SW_PROXY_PROXY) {
        return;
    }
    ssize_t n = 0;
    if (!p->head_sent) {
        n = side_flush(u, p->uhead);
        if (n >= 0 && sw_buf_len(p->uhead) == 0) {
            p->head_sent = true;
        }
    }
    if (n >= 0 && p->head_sent && u->out != NULL) {
        n = side_flush(u, u->out);
    }
    if (n < 0) {
        /* The upstream stopped reading: it may have answered already (an
         * early 413, say); keep reading its response, drop what is left. */
        sw_log_debug("upstream fd %d: send: %s", u->io.fd,
                     strerror(u->io.last_errno));
        if (p->u.out != NULL) {
            p->u.out->pos = p->u.out->last = p->u.out->start;
        }
        p->uhead->pos = p->uhead->last;
        p->head_sent = true;
        if (!p->req_done) {
            /* the rest of the body stays unread: the client connection
             * cannot carry another request after this one */
            p->close_after = true;
            p->req_done = true;
        }
    }
}

static bool
flush_client(struct sw_session *p)
{
    ssize_t n = side_flush(&p->c, p->c.out);
    if (n < 0) {
        sw_log_debug("client %s:%s: send: %s", p->raddr, p->rport,
                     strerror(p->c.io.last_errno));
        session_close(p);
        return false;
    }
    if (n > 0) {
        sw_metrics_add(&p->w->metrics, SW_METRIC_BYTES_TO_CLIENTS, n);
    }
    return true;
}

/* Arm a side's events: what the state wants, plus the opposite readiness a
 * transport asked for (TLS), and an immediate read when the transport
 * already holds decrypted bytes the socket will not signal again. */
static void
side_interest(struct sw_side *s, bool read, bool write)
{
    want(&s->rev, &s->rev_on, read || s->write_wants_read);
    want(&s->wev, &s->wev_on, write || s->read_wants_write);
    if (read && s->io.ops->pending(&s->io) > 0) {
        event_active(&s->rev, EV_READ, 0);
    }
}

static void
update_interest(struct sw_session *p)
{
    struct sw_side *c = &p->c;
    struct sw_side *u = &p->u;
    bool c_pending = c->out != NULL && sw_buf_len(c->out) > 0;
    bool c_room =
        c->in == NULL || sw_buf_room(c->in) > 0 || c->in->pos != c->in->start;
    bool read_client = false;
    switch (p->state) {
    case SW_PROXY_IDLE:
    case SW_PROXY_HEAD:
        read_client = !c->eof && c_room;
        break;
    case SW_PROXY_CONNECT:
    case SW_PROXY_PROXY:
        /* after the body, bytes read are a pipelined next request: they
         * wait in c.in (bounded), and the read interest need not flip off
         * and on for every request */
        read_client = !c->eof && c_room;
        break;
    case SW_PROXY_LINGER:
        read_client = true;
        break;
    default:
        break;
    }
    side_interest(c, read_client, c_pending);

    if (u->io.fd >= 0 && p->state == SW_PROXY_PROXY) {
        bool u_pending =
            !p->head_sent || (u->out != NULL && sw_buf_len(u->out) > 0);
        bool u_room = u->in == NULL || sw_buf_room(u->in) > 0 ||
                      u->in->pos != u->in->start;
        side_interest(u, !u->eof && !p->resp_done && u_room, u_pending);
    }
}

/* Arm the deadlines that fit the state; called after progress. */
static void
update_timers(struct sw_session *p, bool c_progress, bool u_progress)
{
    const struct sw_conf *cf = conf_of(p);
    if (p->state == SW_PROXY_PROXY || p->state == SW_PROXY_LOCAL) {
        if (c_progress || !event_pending(&p->c.timer, EV_TIMEOUT, NULL)) {
            if (p->c.out != NULL && sw_buf_len(p->c.out) > 0) {
                timer_set(&p->c, cf->send_timeout_ms);
            } else if (!p->req_done && p->state == SW_PROXY_PROXY) {
                timer_set(&p->c, cf->client_body_timeout_ms);
            } else {
                timer_set(&p->c, 0);
            }
        }
    }
    if (p->state == SW_PROXY_PROXY &&
        (u_progress || !event_pending(&p->u.timer, EV_TIMEOUT, NULL))) {
        bool sending =
            !p->head_sent || (p->u.out != NULL && sw_buf_len(p->u.out) > 0);
        if (p->resp_done) {
            timer_set(&p->u, 0);
        } else if (sending && !p->resp_head_done) {
            timer_set(&p->u, route_or(p->route->send_timeout_ms,
                                      p->up->cf->send_timeout_ms));
        } else {
            timer_set(&p->u, route_or(p->route->read_timeout_ms,
                                      p->up->cf->read_timeout_ms));
        }
    }
}

/* A cheap fingerprint of where every buffer stands: when an iteration of
 * run() changes none of it, nothing more can move until an event. */
static uintptr_t
buf_mark(const struct sw_buf *b)
{
    return b == NULL ? 0 : (uintptr_t)b->pos * 31u + (uintptr_t)b->last;
}

static uintptr_t
progress_mark(const struct sw_session *p)
{
    return (uintptr_t)p->state * 7919u + buf_mark(p->c.in) * 3u +
           buf_mark(p->c.out) * 5u + buf_mark(p->u.in) * 11u +
           buf_mark(p->u.out) * 13u + buf_mark(p->uhead) * 17u +
           (uintptr_t)p->resp_done + (uintptr_t)p->req_done * 2u;
}

/* Advance the session as far as the buffered bytes allow. */
static void
run(struct sw_session *p)
{
    for (int guard = 0; guard < 1000; guard++) {
        uintptr_t before = progress_mark(p);
        switch (p->state) {
        case SW_PROXY_IDLE:
        case SW_PROXY_HEAD:
            process_head(p);
            break;
        case SW_PROXY_PROXY:
            pump_request_body(p);
            if (p->state != SW_PROXY_PROXY) {
                break;
            }
            flush_upstream(p);
            if (pump_response_head(p) && p->state == SW_PROXY_PROXY &&
                p->resp_head_done) {
                pump_response_body(p);
            }
            break;
        default:
            break;
        }
        if (p->state == SW_PROXY_CLOSING || p->state == SW_PROXY_UPGRADED) {
            return;
        }
        if (!flush_client(p)) {
            return;
        }
        size_t pending = p->c.out ? sw_buf_len(p->c.out) : 0;
        if (p->state == SW_PROXY_LOCAL && pending == 0) {
            local_done(p);
        } else if (p->state == SW_PROXY_PROXY && p->resp_done && pending == 0) {
            request_done(p);
        }
        if (p->state == SW_PROXY_CLOSING) {
            return;
        }
        if (progress_mark(p) == before) {
            break;
        }
    }
    update_interest(p);
}

/* Advance after I/O on one side, then re-arm that side's deadlines. */
static void
run_after_io(struct sw_session *p, bool client_side)
{
    run(p);
    if (p->state != SW_PROXY_CLOSING) {
        update_timers(p, client_side, !client_side);
    }
}

/* ---- transport handshake ---------------------------------------------- */

/* Drive the client's transport handshake (TLS); IDLE when done. */
static void
client_handshake(struct sw_session *p)
{
    enum sw_status st = p->c.io.ops->handshake(&p->c.io);
    if (st == SW_AGAIN) {
        bool wr = p->c.io.want == SW_IO_WANT_WRITE;
        want(&p->c.rev, &p->c.rev_on, !wr);
        want(&p->c.wev, &p->c.wev_on, wr);
        return;
    }
    if (st != SW_OK) {
        session_close(p); /* the transport logged why */
        return;
    }
    set_state(p, SW_PROXY_IDLE);
    want(&p->c.wev, &p->c.wev_on, false);
    timer_set(&p->c, conf_of(p)->client_header_timeout_ms);
    update_interest(p);
}

/* CONNECT after the TCP connect succeeded: a transport with a handshake
 * (TLS toward the upstream) finishes it here, still within connect_timeout;
 * then the request goes out. */
static void
upstream_handshake(struct sw_session *p)
{
    struct sw_side *u = &p->u;
    if (u->io.ops->handshake != NULL) {
        enum sw_status st = u->io.ops->handshake(&u->io);
        if (st == SW_AGAIN) {
            bool wr = u->io.want == SW_IO_WANT_WRITE;
            want(&u->rev, &u->rev_on, !wr);
            want(&u->wev, &u->wev_on, wr);
            return;
        }
        if (st != SW_OK) {
            connect_failed(p, false, "TLS handshake failed");
            if (p->state != SW_PROXY_CLOSING) {
                update_interest(p);
            }
            return;
        }
    }
    set_state(p, SW_PROXY_PROXY);
    event_del(&u->timer);
    run_after_io(p, false);
}

/* ---- callbacks -------------------------------------------------------- */

static void
on_client_read(evutil_socket_t fd, short what, void *arg)
{
    struct sw_session *p = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    if (p->state == SW_PROXY_LINGER) {
        linger_read(p);
        return;
    }
    if (p->state == SW_PROXY_HANDSHAKE) {
        client_handshake(p);
        return;
    }
    if (p->state == SW_PROXY_CLOSING || !side_read(p, &p->c, true)) {
        return;
    }
    run_after_io(p, true);
}

static void
on_client_write(evutil_socket_t fd, short what, void *arg)
{
    struct sw_session *p = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    if (p->state == SW_PROXY_CLOSING) {
        return;
    }
    if (p->state == SW_PROXY_HANDSHAKE) {
        client_handshake(p);
        return;
    }
    if (p->c.read_wants_write && !side_read(p, &p->c, true)) {
        return;
    }
    run_after_io(p, true);
}

static void
on_upstream_read(evutil_socket_t fd, short what, void *arg)
{
    struct sw_session *p = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    if (p->kept_peer != NULL) {
        /* an idle upstream speaks only to close (or to break HTTP) */
        kept_release(p, false);
        return;
    }
    if (p->state == SW_PROXY_CONNECT) {
        upstream_handshake(p);
        return;
    }
    if (p->state != SW_PROXY_PROXY || !side_read(p, &p->u, false)) {
        return;
    }
    run_after_io(p, false);
}

static void
on_upstream_write(evutil_socket_t fd, short what, void *arg)
{
    struct sw_session *p = arg;
    SW_UNUSED(what);
    if (p->state == SW_PROXY_CONNECT) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
        }
        if (err != 0) {
            connect_failed(p, false, strerror(err));
            if (p->state != SW_PROXY_CLOSING) {
                update_interest(p);
            }
            return;
        }
        if (p->peer->server->tls && p->u.io.ops == &sw_io_plain &&
            sw_tls_client_attach(conf_of(p)->tls, p->up->cf, p->peer->server,
                                 &p->u.io) != SW_OK) {
            connect_failed(p, false, "cannot start TLS");
            if (p->state != SW_PROXY_CLOSING) {
                update_interest(p);
            }
            return;
        }
        upstream_handshake(p);
        return;
    }
    if (p->state != SW_PROXY_PROXY) {
        return;
    }
    if (p->u.read_wants_write && !side_read(p, &p->u, false)) {
        return;
    }
    run_after_io(p, false);
}

static void
on_client_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sw_session *p = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    switch (p->state) {
    case SW_PROXY_HANDSHAKE:
        sw_log_info("client %s:%s: TLS handshake timed out", p->raddr,
                    p->rport);
        session_close(p);
        return;
    case SW_PROXY_UPGRADED:
        sw_relay_drain(p->relay); /* the drain's spread delay ended */
        return;
    case SW_PROXY_IDLE:
    case SW_PROXY_LINGER:
        session_close(p); /* keep-alive idle or linger over: close quietly */
        return;
    case SW_PROXY_HEAD:
        p->client_keepalive = false;
        snprintf(p->log_req, sizeof(p->log_req), "-");
        respond_error(p, 408, "client_header_timeout");
        break;
    case SW_PROXY_PROXY:
    case SW_PROXY_CONNECT:
        if (!p->req_done && (p->c.out == NULL || sw_buf_len(p->c.out) == 0) &&
            !p->resp_head_done) {
            respond_error(p, 408, "client_body_timeout");
            break;
        }
        /* a client that stopped reading */
        __attribute__((fallthrough));
    default:
        sw_log_warn("client %s:%s: send_timeout or body timeout, closing",
                    p->raddr, p->rport);
        session_close(p);
        return;
    }
    if (p->state != SW_PROXY_CLOSING) {
        run(p);
    }
}

static void
on_upstream_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sw_session *p = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    if (p->state == SW_PROXY_CONNECT) {
        connect_failed(p, true, "connect timed out");
    } else if (p->state == SW_PROXY_PROXY) {
        upstream_failed(p, 504, "read timed out");
    } else {
        return;
    }
    if (p->state != SW_PROXY_CLOSING) {
        run(p);
    }
}

/* ---- session lifecycle ------------------------------------------------ */

static void
addr_text(const struct sockaddr *sa, char *host, size_t hostlen, char *port,
          size_t portlen)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, (socklen_t)hostlen);
        snprintf(port, portlen, "%u", ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, (socklen_t)hostlen);
        snprintf(port, portlen, "%u", ntohs(s4->sin_port));
    }
}

void
sw__proxy_session_start(struct sw_worker *w, struct sw_listener *l, int fd,
                        const struct sockaddr *sa)
{
    static uint64_t next_id;
    struct sw_session *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        sw_metrics_inc(&w->metrics, SW_METRIC_OUT_OF_MEMORY);
        close(fd);
        return;
    }
    p->w = w;
    p->l = l;
    p->wc = w->wconf;
    p->wc->refs++;
    p->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    addr_text(sa, p->raddr, sizeof(p->raddr), p->rport, sizeof(p->rport));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    p->c.io.fd = fd;
    p->c.io.ops = &sw_io_plain;
    p->u.io.fd = -1;
    p->u.io.ops = &sw_io_plain;
    event_assign(&p->c.rev, w->base, fd, EV_READ | EV_PERSIST, on_client_read,
                 p);
    event_assign(&p->c.wev, w->base, fd, EV_WRITE | EV_PERSIST, on_client_write,
                 p);
    event_assign(&p->c.timer, w->base, -1, 0, on_client_timer, p);
    event_assign(&p->u.timer, w->base, -1, 0, on_upstream_timer, p);
    event_assign(&p->u.rev, w->base, -1, 0, on_upstream_read, p);
    event_assign(&p->u.wev, w->base, -1, 0, on_upstream_write, p);

    p->next = w->sessions;
    if (w->sessions != NULL) {
        w->sessions->prev = p;
    }
    w->sessions = p;
    w->nsessions++;
    sw_metrics_inc(&w->metrics, SW_METRIC_CLIENT_CONNECTIONS_TOTAL);
    sw_metrics_inc(&w->metrics, SW_METRIC_CLIENT_CONNECTIONS_ACTIVE);

    if (l->tls) {
        /* the snapshot built its TLS contexts at load (gateway) */
        if (conf_of(p)->tls == NULL ||
            sw_tls_server_attach(conf_of(p)->tls, w->id, &p->c.io) != SW_OK) {
            sw_log_error("client %s:%s: cannot start TLS", p->raddr, p->rport);
            session_close(p);
            return;
        }
        p->state = SW_PROXY_HANDSHAKE;
        timer_set(&p->c, conf_of(p)->tls_handshake_timeout_ms);
        want(&p->c.rev, &p->c.rev_on, true);
        return;
    }
    p->state = SW_PROXY_IDLE;
    /* the first request gets the header timeout from accept */
    timer_set(&p->c, conf_of(p)->client_header_timeout_ms);
    want(&p->c.rev, &p->c.rev_on, true);
}

void
sw__proxy_session_free(struct sw_session *p)
{
    struct sw_worker *w = p->w;
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        w->sessions = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    }
    w->nsessions--;
    sw_metrics_add(&w->metrics, SW_METRIC_CLIENT_CONNECTIONS_ACTIVE, -1);
    sw_relay_free(p->relay);
    sw__proxy_wconf_unref(p->wc);
    free(p);
}

void
sw__proxy_session_drain(struct sw_session *p, bool force)
{
    if (p->state == SW_PROXY_CLOSING) {
        return;
    }
    if (p->state == SW_PROXY_UPGRADED) {
        if (force) {
            sw_relay_abort(p->relay);
        } else {
            /* spread the 1001 closes over half the drain window, so that
             * clients do not all reconnect at the same instant */
            uint64_t window = conf_of(p)->shutdown_timeout_ms / 2;
            uint8_t rnd[2];
            sw_ws_rng_bytes(&p->w->rng, rnd, sizeof(rnd));
            uint64_t delay =
                window != 0 ? ((uint64_t)rnd[0] << 8 | rnd[1]) % window : 0;
            timer_set(&p->c, delay + 1);
        }
        return;
    }
    if (force || p->state == SW_PROXY_IDLE || p->state == SW_PROXY_LINGER ||
        p->state == SW_PROXY_HANDSHAKE) {
        session_close(p);
        return;
    }
    p->close_after = true; /* finish this request, then close */
}
