/*
 * proxy_response.c - the response side of a session: heads decoded and
 * re-serialised (interim, final, 101), bodies re-framed toward the client,
 * the hand-over to the WebSocket relay, and the end of an exchange.
 *
 * Owns nothing; works on the session it is given (worker thread only).
 *
 * Contents:
 *   sw__proxy_pump_response    heads, then the body, as far as buffers allow
 *   pump_response_head         interim, final and 101 heads
 *   forward_interim, write_response_head, write_switching_head
 *   head_begin, head_commit    a head at the end of c.out
 *   start_relay, on_relay_done the WebSocket hand-over
 *   pump_response_body, queue_body, finish_body
 *   sw__proxy_request_done     settle both connections after a response
 */
#include "proxy_int.h"

#include <shockwave/log.h>
#include <shockwave/route.h>
#include <shockwave/ws.h>

/* Start a response head at the end of c.out: the writer covers the free
 * room, the status line is written. */
static void
head_begin(struct sw_session *p, struct sw_http_writer *w, unsigned status,
           struct sw_str reason)
{
    size_t room = sw_conn_out_room(&p->c);
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
    if (resp->status == 100 && has(p, SW_SESS_F_SENT_CONTINUE)) {
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
            (sw_str_eq_ci(h->name, "Content-Length") && !keep_length) ||
            sw_route_edits_drop(rt->response_edits, rt->nresponse_edits,
                                h->name)) {
            continue;
        }
        sw_http_write_header(&w, h->name, h->value);
    }
    set_flag(p, SW_SESS_F_RESP_CHUNK_OUT, false);
    switch (resp->body) {
    case SW_HTTP_BODY_LENGTH:
        sw_http_write_cstr(&w, "Content-Length: ");
        sw_http_write_u64(&w, resp->content_length);
        sw_http_write(&w, "\r\n", 2);
        break;
    case SW_HTTP_BODY_CHUNKED:
    case SW_HTTP_BODY_TO_CLOSE:
        /* HTTP/1.1 clients get chunks (a body read to close is re-framed,
         * so their connection survives); HTTP/1.0 knows no chunks: the
         * decoded body, delimited by the close */
        if (p->version_minor == 1) {
            sw_http_write_cstr(&w, "Transfer-Encoding: chunked\r\n");
            set_flag(p, SW_SESS_F_RESP_CHUNK_OUT, true);
        } else {
            set_flag(p, SW_SESS_F_CLOSE_AFTER, true);
        }
        break;
    case SW_HTTP_BODY_NONE:
        break;
    }
    if (!has(p, SW_SESS_F_CLIENT_KEEPALIVE) || p->w->draining ||
        (!has(p, SW_SESS_F_REQ_DONE) && p->req_body != SW_HTTP_BODY_NONE)) {
        set_flag(p, SW_SESS_F_CLOSE_AFTER, true);
    }
    if (has(p, SW_SESS_F_CLOSE_AFTER)) {
        sw_http_write_cstr(&w, "Connection: close\r\n");
    } else if (p->version_minor == 0) {
        sw_http_write_cstr(&w, "Connection: keep-alive\r\n");
    }
    struct sw_route_vars vars = sw__proxy_vars(p, SW_STR(""), SW_STR(""));
    sw_route_edits_write(&w, rt->response_edits, rt->nresponse_edits, &vars);
    sw_plugin_resp_write(p->plug, &w);
    sw_plugin_request_end(p->plug); /* the edits are all written now */
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
            sw_str_eq_ci(h->name, "Content-Length") ||
            sw_route_edits_drop(rt->response_edits, rt->nresponse_edits,
                                h->name)) {
            continue;
        }
        sw_http_write_header(&w, h->name, h->value);
    }
    sw_plugin_resp_write(p->plug, &w);
    sw_plugin_request_end(p->plug);
    return head_commit(p, &w);
}

static void
on_relay_done(void *arg)
{
    sw__proxy_relay_done(arg);
}

/* Hand both connections, and every byte already read on either side, to
 * the relay: bytes behind the request head and behind the 101 are frames,
 * and c.out holds the 101 head. The session keeps owning the two ends; the
 * relay borrows them until on_relay_done. */
struct sw_relay *
sw__proxy_relay_begin(struct sw_session *p, uint8_t rsv_allowed,
                      const struct sw_relay_parked *saved)
{
    char caddr[SW_PROXY_ADDR_TEXT];
    char uaddr[SW_PROXY_ADDR_TEXT];
    snprintf(caddr, sizeof(caddr), "%s:%s", p->raddr, p->rport);
    snprintf(uaddr, sizeof(uaddr), "%.*s", (int)p->peer->server->text.len,
             p->peer->server->text.p);
    struct sw_relay_start s = {
        .route = p->route,
        .metrics = sw__proxy_route_metrics(p),
        .client = &p->c,
        .upstream = &p->u,
        .rsv_allowed = rsv_allowed,
        .client_addr = caddr,
        .upstream_addr = uaddr,
        .on_done = on_relay_done,
        .arg = p,
        .plugins = p->plug,
    };
    sw__proxy_park_watch(p->w);
    return saved != NULL ? sw_relay_unpark(&p->w->relay_env, &s, saved)
                         : sw_relay_new(&p->w->relay_env, &s);
}

static void
start_relay(struct sw_session *p, uint8_t rsv_allowed)
{
    sw_upstream_report(p->peer, true);
    p->status = 101;
    sw__proxy_metrics_answered(p, 101, true);
    sw__proxy_exchange_done(p);
    sw_conn_buf_release(&p->u, &p->u.out);
    sw_conn_buf_release(&p->u, &p->uhead);
    sw__proxy_set_state(p, SW_PROXY_UPGRADED);
    p->relay = sw__proxy_relay_begin(p, rsv_allowed, NULL);
    if (p->relay == NULL && p->state != SW_PROXY_CLOSING) {
        sw__proxy_close(p); /* closes both ends through their io ops */
    }
}

/* Decode response heads until the final one is queued to the client.
 * True when a head was consumed or the session left the PROXY state. */
static bool
pump_response_head(struct sw_session *p)
{
    struct sw_conn *u = &p->u;
    bool moved = false;
    while (!has(p, SW_SESS_F_RESP_HEAD_DONE)) {
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
        size_t have = sw_conn_buffered(u->in);
        enum sw_status st = SW_AGAIN;
        if (have > 0) {
            st = sw_http_response_decode(&resp, (const char *)u->in->pos, have,
                                         &lim, p->method_id, &why);
        }
        if (st == SW_AGAIN) {
            if (sw_conn_has(u, SW_CONN_F_EOF)) {
                if (have == 0 && sw__proxy_retry_stale(p)) {
                    return true;
                }
                sw__proxy_upstream_failed(
                    p, 502,
                    have == 0 ? "closed before responding"
                              : "closed inside the response head");
                return true;
            }
            if (have > 0 && sw_buf_room(u->in) == 0 &&
                u->in->pos == u->in->start) {
                sw__proxy_upstream_failed(p, 502, "response head too large");
                return true;
            }
            return moved;
        }
        if (st != SW_OK) {
            sw__proxy_upstream_failed(p, 502,
                                      why != NULL ? why : "bad response head");
            return true;
        }
        if (resp.status == 101) {
            if (!has(p, SW_SESS_F_WS_UPGRADE)) {
                sw__proxy_upstream_failed(
                    p, 502, "101 to a request that did not upgrade");
                return true;
            }
            struct sw_str key = {p->ws_key, p->ws_key_len};
            if (sw_ws_handshake_check_response(&resp, key, &why) != SW_OK) {
                sw__proxy_upstream_failed(p, 502,
                                          why != NULL ? why : "bad 101");
                return true;
            }
            if (!write_switching_head(p, &resp)) {
                sw__proxy_upstream_failed(p, 502, "101 head too large");
                return true;
            }
            u->in->pos += resp.head_len;
            start_relay(p, sw_ws_handshake_rsv(resp.headers, resp.nheaders));
            return true;
        }
        if (resp.status < 200) {
            if (!forward_interim(p, &resp)) {
                return moved; /* wait for the client to drain c.out */
            }
            u->in->pos += resp.head_len;
            moved = true;
            continue;
        }
        if (!write_response_head(p, &resp)) {
            if (p->c.out != NULL && sw_buf_len(p->c.out) > 0) {
                return moved; /* earlier bytes first, then retry */
            }
            sw__proxy_upstream_failed(p, 502, "response head too large");
            return true;
        }
        u->in->pos += resp.head_len;
        sw_upstream_report(p->peer, true);
        set_flag(p, SW_SESS_F_RESP_HEAD_DONE, true);
        p->status = resp.status;
        sw__proxy_metrics_answered(p, resp.status, true);
        p->resp_body = resp.body;
        p->resp_remaining = resp.content_length;
        set_flag(p, SW_SESS_F_RESP_KEEPALIVE, resp.keep_alive);
        p->bytes_out = 0;
        sw_http_chunked_init(&p->resp_chunked);
        if (resp.body == SW_HTTP_BODY_NONE ||
            (resp.body == SW_HTTP_BODY_LENGTH && resp.content_length == 0)) {
            set_flag(p, SW_SESS_F_RESP_DONE, true);
        }
    }
    return true;
}

/* Queue body bytes to the client, chunk-framed when re-encoding. */
static void
queue_body(struct sw_session *p, const void *data, size_t n)
{
    if (has(p, SW_SESS_F_RESP_CHUNK_OUT)) {
        char line[SW_PROXY_CHUNK_LINE];
        size_t ln = sw_http_chunk_header(line, n);
        sw_buf_append(p->c.out, line, ln);
    }
    sw_buf_append(p->c.out, data, n);
    if (has(p, SW_SESS_F_RESP_CHUNK_OUT)) {
        sw_buf_append(p->c.out, "\r\n", 2);
    }
    p->bytes_out += n;
}

static void
finish_body(struct sw_session *p)
{
    if (has(p, SW_SESS_F_RESP_CHUNK_OUT)) {
        sw_buf_append(p->c.out, "0\r\n\r\n", 5);
    }
    set_flag(p, SW_SESS_F_RESP_DONE, true);
}

/* Body bytes of u.in -> c.out, re-framed. True when bytes moved, the body
 * ended or the session left the PROXY state. */
static bool
pump_response_body(struct sw_session *p)
{
    struct sw_conn *u = &p->u;
    const uint8_t *before = u->in != NULL ? u->in->pos : NULL;
    bool moved = false;
    if (has(p, SW_SESS_F_RESP_DONE)) {
        return false;
    }
    while (!has(p, SW_SESS_F_RESP_DONE)) {
        size_t have = sw_conn_buffered(u->in);
        if (have == 0) {
            if (!sw_conn_has(u, SW_CONN_F_EOF)) {
                break;
            }
            if (p->resp_body == SW_HTTP_BODY_TO_CLOSE) {
                if (sw_conn_out_room(&p->c) < SW_PROXY_LAST_CHUNK) {
                    break;
                }
                finish_body(p);
                return true;
            }
            sw__proxy_upstream_failed(p, 502,
                                      "closed inside the response body");
            return true;
        }
        size_t room = sw_conn_out_room(&p->c);
        if (room < SW_PROXY_CHUNK_FRAMING + SW_PROXY_LAST_CHUNK) {
            break;
        }
        size_t cap = room - SW_PROXY_CHUNK_FRAMING;
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
                sw__proxy_upstream_failed(p, 502,
                                          "malformed chunked response body");
                return true;
            }
            if (data.len > 0) {
                queue_body(p, data.p, data.len);
            }
            u->in->pos += used;
            if (st == SW_OK) {
                finish_body(p);
            } else if (used == 0) {
                goto out;
            }
            break;
        }
        case SW_HTTP_BODY_NONE:
            set_flag(p, SW_SESS_F_RESP_DONE, true);
            break;
        }
    }
out:
    moved |= u->in != NULL && u->in->pos != before;
    return moved || has(p, SW_SESS_F_RESP_DONE);
}

/* PROXY: response heads, then the body, as far as the buffers allow. True
 * when anything moved or the session left the PROXY state. */
bool
sw__proxy_pump_response(struct sw_session *p)
{
    bool moved = false;
    if (!has(p, SW_SESS_F_RESP_HEAD_DONE)) {
        moved = pump_response_head(p);
        if (p->state != SW_PROXY_PROXY || !has(p, SW_SESS_F_RESP_HEAD_DONE)) {
            return moved;
        }
    }
    return pump_response_body(p) || moved;
}

/* The response is flushed: settle both connections, then wait for the next
 * request (any pipelined bytes are already in c.in) or close. */
void
sw__proxy_request_done(struct sw_session *p)
{
    bool reusable =
        has(p, SW_SESS_F_RESP_KEEPALIVE) && has(p, SW_SESS_F_REQ_DONE) &&
        has(p, SW_SESS_F_HEAD_SENT) && !sw_conn_has(&p->u, SW_CONN_F_EOF) &&
        sw_conn_buffered(p->u.in) == 0 && sw_conn_buffered(p->u.out) == 0 &&
        p->resp_body != SW_HTTP_BODY_TO_CLOSE;
    if (p->u.in != NULL && sw_buf_len(p->u.in) > 0) {
        /* RFC 9112 9.3: bytes after a complete response are not a second
         * answer to deliver; the connection is not reused. */
        sw_log_info("upstream %.*s: %zu unexpected bytes after the response",
                    (int)p->peer->server->text.len, p->peer->server->text.p,
                    sw_buf_len(p->u.in));
    }
    sw__proxy_exchange_done(p);
    bool keep = !has(p, SW_SESS_F_CLOSE_AFTER) &&
                has(p, SW_SESS_F_CLIENT_KEEPALIVE) && !p->w->draining &&
                has(p, SW_SESS_F_REQ_DONE) &&
                !sw_conn_has(&p->c, SW_CONN_F_EOF);
    if (keep && reusable && p->up->cf->keepalive != 0) {
        sw__proxy_upstream_keep(p);
    } else {
        sw__proxy_upstream_release(p, reusable);
    }
    sw__proxy_next_request(p, keep);
}
