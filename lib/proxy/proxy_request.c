/*
 * proxy_request.c - the request side of a session: the head is decoded,
 * routed, checked for an upgrade and re-serialised for the upstream; the
 * body is re-framed toward it.
 *
 * Owns nothing; works on the session it is given (worker thread only).
 * The request head's slices borrow c.in until its head is consumed.
 *
 * Contents:
 *   sw__proxy_phase_head         IDLE/HEAD: decode the next request head
 *   start_request                route, limits, upgrade check, then connect
 *   check_upgrade                RFC 6455 4.2.1 on websocket routes
 *   write_upstream_head          the head the upstream sees
 *   session_vars, make_request_id
 *   sw__proxy_pump_request_body  client body -> u.out, re-framed
 */
#include "proxy_int.h"

#include <shockwave/log.h>
#include <shockwave/route.h>
#include <shockwave/ws.h>

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
struct sw_route_vars
sw__proxy_vars(const struct sw_session *p, struct sw_str host,
               struct sw_str target)
{
    return (struct sw_route_vars){
        .remote_addr = cstr(client_addr(p)),
        .remote_port = cstr(p->rport),
        .scheme = cstr(p->c.io.ops->scheme),
        .host = host,
        .request_id = cstr(p->request_id),
        .request_uri = target,
        .server_port = cstr(p->l->port),
        .realip_remote_addr = cstr(p->raddr),
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
                    struct sw_str host, const struct sw_route_vars *vars,
                    const char *fanout_key)
{
    const struct sw_conf_route *rt = p->route;
    struct sw_buf *b = p->uhead;
    bool absolute = r->authority.len > 0;
    struct sw_http_writer w;
    sw_http_writer_init(&w, (char *)b->start, (size_t)(b->end - b->start));

    sw_http_write_str(&w, r->method);
    sw_http_write(&w, " ", 1);
    if (r->origin.p[0] == '?') {
        sw_http_write(&w, "/", 1); /* "http://h?q" is "/?q" */
    }
    sw_http_write_str(&w, r->origin);
    sw_http_write_cstr(&w, " HTTP/1.1\r\n");

    for (size_t i = 0; i < r->nheaders; i++) {
        const struct sw_http_header *h = &r->headers[i];
        if (sw_http_is_hop_by_hop(h->name, r->connection) ||
            is_named(h->name, "Content-Length") ||
            (absolute && is_named(h->name, "Host")) ||
            is_named(h->name, "Expect") ||
            is_named(h->name, "X-Forwarded-Proto") ||
            is_named(h->name, "X-Forwarded-Host") ||
            is_named(h->name, "X-Request-Id") ||
            (fanout_key != NULL &&
             (is_named(h->name, "Sec-WebSocket-Extensions") ||
              is_named(h->name, "Sec-WebSocket-Key"))) ||
            sw_route_edits_drop(rt->request_edits, rt->nrequest_edits,
                                h->name) ||
            (p->plug != NULL && sw_plugin_edits_drop(p->plug, h->name))) {
            continue;
        }
        if (is_named(h->name, "X-Forwarded-For")) {
            continue; /* merged into one field below */
        }
        sw_http_write_header(&w, h->name, h->value);
    }
    if (absolute) {
        sw_http_write_header(&w, SW_STR("Host"), host);
    } else if (host.len == 0) {
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
        sw_http_write_cstr(&w, client_addr(p));
        sw_http_write(&w, "\r\n", 2);
    }
    if (!edited(rt, "X-Forwarded-Proto")) {
        sw_http_write_cstr(&w, "X-Forwarded-Proto: ");
        sw_http_write_cstr(&w, p->c.io.ops->scheme);
        sw_http_write(&w, "\r\n", 2);
    }
    if (host.len > 0 && !edited(rt, "X-Forwarded-Host")) {
        sw_http_write_header(&w, SW_STR("X-Forwarded-Host"), host);
    }
    if (!edited(rt, "X-Request-Id")) {
        sw_http_write_cstr(&w, "X-Request-Id: ");
        sw_http_write_cstr(&w, p->request_id);
        sw_http_write(&w, "\r\n", 2);
    }
    if (has(p, SW_SESS_F_WS_UPGRADE)) {
        sw_http_write_cstr(&w, "Connection: Upgrade\r\nUpgrade: websocket\r\n");
    }
    if (fanout_key != NULL) {
        /* the channel's handshake is the gateway's, with a key of its own */
        sw_http_write_cstr(&w, "Sec-WebSocket-Key: ");
        sw_http_write_cstr(&w, fanout_key);
        sw_http_write(&w, "\r\n", 2);
    }
    if (r->body == SW_HTTP_BODY_LENGTH) {
        sw_http_write_cstr(&w, "Content-Length: ");
        sw_http_write_u64(&w, r->content_length);
        sw_http_write(&w, "\r\n", 2);
    } else if (r->body == SW_HTTP_BODY_CHUNKED) {
        sw_http_write_cstr(&w, "Transfer-Encoding: chunked\r\n");
    }
    sw_route_edits_write(&w, rt->request_edits, rt->nrequest_edits, vars);
    sw_plugin_edits_write(p->plug, &w); /* after the route's: they win */
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
    set_flag(p, SW_SESS_F_WS_UPGRADE, false);
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
        sw__proxy_respond_local(p, (unsigned)status, body, (size_t)n, false,
                                why != NULL ? why : "bad WebSocket handshake",
                                status == 426 ? "Sec-WebSocket-Version: 13\r\n"
                                              : NULL);
        return false;
    }
    if (r->body != SW_HTTP_BODY_NONE) {
        sw_metrics_inc(&p->w->metrics, SW_METRIC_WS_HANDSHAKE_REJECTED);
        sw__proxy_respond_error(p, 400,
                                "WebSocket upgrade request with a body");
        return false;
    }
    memcpy(p->ws_key, key.p, key.len);
    p->ws_key_len = key.len;
    set_flag(p, SW_SESS_F_WS_UPGRADE, true);
    return true;
}

/* RFC 9110 9.2.2: methods a client may send twice without harm. */
static bool
is_idempotent(struct sw_str method)
{
    static const char *const names[] = {"GET",    "HEAD",    "PUT",
                                        "DELETE", "OPTIONS", "TRACE"};
    for (size_t i = 0; i < SW_NELEMS(names); i++) {
        if (method.len == strlen(names[i]) &&
            memcmp(method.p, names[i], method.len) == 0) {
            return true;
        }
    }
    return false;
}

static void
route_request(struct sw_session *p, const struct sw_http_request *r)
{
    const struct sw_conf *cf = conf_of(p);
    struct sw_worker *w = p->w;

    sw_metrics_inc(&w->metrics, SW_METRIC_HTTP_REQUESTS_TOTAL);
    /* one clock read: the access log's milliseconds are the same
     * monotonic instant as the metrics' microseconds */
    p->t_start_us = sw_metrics_now_us();
    p->started_ms = p->t_start_us / 1000;
    p->method_id = r->method_id;
    p->version_minor = r->version_minor;
    set_flag(p, SW_SESS_F_IDEMPOTENT, is_idempotent(r->method));
    /* keepalive_timeout 0 turns client keep-alive off */
    set_flag(p, SW_SESS_F_CLIENT_KEEPALIVE,
             r->keep_alive && cf->keepalive_timeout_ms != 0);
    p->req_body = r->body;
    p->req_remaining = r->content_length;
    set_flag(p, SW_SESS_F_REQ_DONE, r->body == SW_HTTP_BODY_NONE);
    p->req_body_bytes = 0;
    sw_http_chunked_init(&p->req_chunked);
    snprintf(p->log_req, sizeof(p->log_req), "%.*s %.*s HTTP/1.%u",
             (int)r->method.len, r->method.p, (int)SW_MIN(r->target.len, 200),
             r->target.p, r->version_minor);
    make_request_id(p, r);
    sw__proxy_realip(p, r);
    p->c.in->pos += r->head_len; /* the head is consumed; body follows */

    char norm[4096];
    ssize_t nlen = sw_route_normalize_path(r->path, norm, sizeof(norm));
    if (nlen == SW_EPROTO) {
        sw__proxy_respond_error(p, 400, "path climbs above the root");
        return;
    }
    if (nlen < 0) {
        sw__proxy_respond_error(p, 414, "path too long to route");
        return;
    }
    struct sw_str path = {norm, (size_t)nlen};
    /* RFC 9112 3.2.2: a request in absolute-form names its host in the
     * target, and a server MUST ignore Host in favour of it. The gateway
     * routes on that authority and forwards origin-form with it as Host,
     * so an upstream never sees a target and a Host that disagree. */
    bool absolute = r->authority.len > 0;
    struct sw_str host = absolute ? r->authority : r->host;
    p->route = sw_route_match(cf, host, path, r->headers, r->nheaders);
    sw__proxy_metrics_start(p);
    if (p->route == NULL) {
        static const char body[] = "404 Not Found: no route\n";
        sw__proxy_respond_local(p, 404, body, sizeof(body) - 1, true,
                                "no route", NULL);
        return;
    }
    const struct sw_conf_route *rt = p->route;
    struct sw_plugin_request prq;
    if (p->plug != NULL && sw_plugin_sess_chain(p->plug) != rt->plugin_chain) {
        /* another route: its plugins see a connection of their own */
        sw_plugin_sess_free(p->plug);
        p->plug = NULL;
    }
    if (rt->return_status != 0) {
        if (rt->plugin_chain != NULL &&
            !sw__proxy_plugins_request(p, r, path, host, &prq)) {
            return;
        }
        sw__proxy_respond_local(p, (unsigned)rt->return_status,
                                rt->return_body.p, rt->return_body.len, true,
                                "return", NULL);
        sw_plugin_request_end(p->plug);
        return;
    }
    p->max_body =
        rt->max_body_size != 0 ? rt->max_body_size : cf->max_body_size;
    if (r->body == SW_HTTP_BODY_LENGTH && p->max_body != 0 &&
        r->content_length > p->max_body) {
        sw__proxy_respond_error(p, 413, "Content-Length over max_body_size");
        return;
    }
    if (!check_upgrade(p, r)) {
        return;
    }
    /* the route's plugins: after the route and the upgrade check, before
     * any byte goes upstream (they may answer, edit or pick) */
    if (rt->plugin_chain != NULL &&
        !sw__proxy_plugins_request(p, r, path, host, &prq)) {
        return;
    }
    if (r->expect_continue && r->body != SW_HTTP_BODY_NONE &&
        r->version_minor == 1) {
        /* RFC 9110 10.1.1: a proxy may answer 100 itself; the upstream then
         * gets the body without Expect, and its own 100 is dropped. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (sw_conn_out_room(&p->c) < sizeof(cont) - 1) {
            sw__proxy_close(p);
            return;
        }
        sw_buf_append(p->c.out, cont, sizeof(cont) - 1);
        set_flag(p, SW_SESS_F_SENT_CONTINUE, true);
    }

    p->up = &p->wc->ups[rt->upstream->index];
    p->hash_key_len = 0;
    if (rt->upstream->balance == SW_CONF_BALANCE_HASH) {
        struct sw_str key = cstr(client_addr(p));
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

    struct sw_route_vars vars = sw__proxy_vars(p, host, r->target);
    if (!sw_conn_buf_ready(&p->u, &p->uhead)) {
        sw__proxy_close(p);
        return;
    }
    bool fanout = rt->fanout && has(p, SW_SESS_F_WS_UPGRADE);
    char fanout_key[SW_WS_KEY_LEN + 1];
    if (fanout) {
        sw_ws_handshake_key(&p->w->rng, fanout_key);
    }
    if (!write_upstream_head(p, r, host, &vars, fanout ? fanout_key : NULL)) {
        sw__proxy_respond_error(p, 431, "request head too large after edits");
        return;
    }
    sw_plugin_request_sent(p->plug); /* the edits are in the head now */
    if (fanout) {
        sw__proxy_fanout_join(p, r, path, host, fanout_key);
        return;
    }
    p->tried = 0;
    set_flag(p, SW_SESS_F_RESP_HEAD_DONE, false);
    set_flag(p, SW_SESS_F_RESP_DONE, false);
    sw__proxy_connect_next(p);
}

static void
start_request(struct sw_session *p, const struct sw_http_request *r)
{
    route_request(p, r);
    p->plug_rq = NULL; /* it pointed into route_request's stack */
}

/* IDLE/HEAD: decode the next request head from c.in. SW_OK when the
 * request moved the session on (to CONNECT, PROXY, LOCAL or CLOSING),
 * SW_AGAIN while the head is incomplete. */
enum sw_status
sw__proxy_phase_head(struct sw_session *p)
{
    struct sw_buf *in = p->c.in;
    size_t have = sw_conn_buffered(in);
    if (have == 0) {
        if (sw_conn_has(&p->c, SW_CONN_F_EOF)) {
            sw__proxy_close(p); /* closed between requests: normal */
            return SW_ECLOSED;
        }
        return SW_AGAIN;
    }
    const struct sw_conf *cf = conf_of(p);
    if (p->state == SW_PROXY_IDLE) {
        p->real_addr[0] = '\0'; /* a 408 here is the peer's */
        sw__proxy_set_state(p, SW_PROXY_HEAD);
        sw_conn_timer(&p->c, cf->client_header_timeout_ms);
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
        if (sw_conn_has(&p->c, SW_CONN_F_EOF)) {
            sw_log_info("client %s:%s: closed inside a request head", p->raddr,
                        p->rport);
            sw__proxy_close(p);
            return SW_ECLOSED;
        }
        if (sw_buf_room(in) > 0) {
            return SW_AGAIN;
        }
        if (in->pos != in->start) {
            sw_buf_compact(in);
            return SW_OK; /* room again: read on */
        }
        sw__proxy_respond_error(p, 431, "request head larger than the buffer");
        return SW_OK;
    }
    p->real_addr[0] = '\0'; /* per request: the peer until realip says */
    if (st != SW_OK) {
        set_flag(p, SW_SESS_F_CLIENT_KEEPALIVE, false);
        snprintf(p->log_req, sizeof(p->log_req), "-");
        sw__proxy_respond_error(p, (unsigned)status, why);
        return SW_OK;
    }
    if (r.upgrade && !sw_conn_sends_idle(&p->c)) {
        /* a hand-over (fan-out) takes the client off the io_uring ring,
         * which it leaves only with nothing queued: the upgrade is routed
         * once on_write says the queue is sent (the head stays in c.in,
         * under the header timeout) */
        set_flag(p, SW_SESS_F_WAIT_SENT, true);
        return SW_AGAIN;
    }
    set_flag(p, SW_SESS_F_WAIT_SENT, false);
    sw_conn_timer(&p->c, 0);
    start_request(p, &r);
    return SW_OK;
}

/* Body bytes of c.in -> u.out, re-framed. True when bytes moved or the
 * body ended (the caller's loop goes on). */
bool
sw__proxy_pump_request_body(struct sw_session *p)
{
    struct sw_buf *in = p->c.in;
    const uint8_t *before = in != NULL ? in->pos : NULL;
    bool was_done = has(p, SW_SESS_F_REQ_DONE);
    while (!has(p, SW_SESS_F_REQ_DONE) && in != NULL && sw_buf_len(in) > 0) {
        size_t room = sw_conn_out_room(&p->u);
        if (room < SW_PROXY_CHUNK_FRAMING) {
            return in != NULL && in->pos != before;
        }
        struct sw_buf *out = p->u.out;
        if (p->req_body == SW_HTTP_BODY_LENGTH) {
            size_t n =
                (size_t)SW_MIN((uint64_t)sw_buf_len(in), p->req_remaining);
            n = SW_MIN(n, room);
            sw_buf_append(out, in->pos, n);
            in->pos += n;
            p->req_remaining -= n;
            set_flag(p, SW_SESS_F_REQ_DONE, p->req_remaining == 0);
            continue;
        }
        /* chunked: decode, then re-encode with our own chunk lines so the
         * upstream sees only framing we wrote (no smuggled extensions) */
        size_t feed = SW_MIN(sw_buf_len(in), room - SW_PROXY_CHUNK_FRAMING);
        size_t used = 0;
        struct sw_str data = {NULL, 0};
        enum sw_status st = sw_http_chunked_decode(
            &p->req_chunked, (const char *)in->pos, feed, &used, &data);
        if (st == SW_EPROTO) {
            sw__proxy_request_body_failed(p, 400,
                                          "malformed chunked request body");
            return true; /* the session moved on */
        }
        if (data.len > 0) {
            p->req_body_bytes += data.len;
            if (p->max_body != 0 && p->req_body_bytes > p->max_body) {
                sw__proxy_request_body_failed(
                    p, 413, "chunked body over max_body_size");
                return true;
            }
            char line[SW_PROXY_CHUNK_LINE];
            size_t ln = sw_http_chunk_header(line, data.len);
            sw_buf_append(out, line, ln);
            sw_buf_append(out, data.p, data.len);
            sw_buf_append(out, "\r\n", 2);
        }
        in->pos += used;
        if (st == SW_OK) {
            sw_buf_append(out, "0\r\n\r\n", 5);
            set_flag(p, SW_SESS_F_REQ_DONE, true);
        }
        if (used == 0) {
            return in != NULL && in->pos != before;
        }
    }
    return (in != NULL && in->pos != before) ||
           has(p, SW_SESS_F_REQ_DONE) != was_done;
}
