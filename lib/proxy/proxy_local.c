/*
 * proxy_local.c - answers the gateway writes itself, and the access log.
 *
 * Owns nothing; works on the session it is given (worker thread only).
 *
 * Contents:
 *   sw__proxy_exchange_done        a request's duration, access-log line
 *   sw__proxy_respond_local        status + body of our own (404, return)
 *   sw__proxy_respond_error        an error status with a short body
 *   sw__proxy_upstream_failed      502/504 before the response, else cut
 *   sw__proxy_request_body_failed  400/413 for a bad body, else cut
 */
#include "proxy_int.h"

#include <shockwave/log.h>

/* The JSON form (`access_log PATH json;`; fields in docs/operations.md). */
static void
log_access_json(const struct sw_session *p, uint64_t ms,
                const struct sw_plugin_log_fields *f)
{
    struct sw_log_json j;
    sw_log_json_begin(&j, "http");
    sw_log_json_str(&j, "client", client_addr(p), strlen(client_addr(p)));
    sw_log_json_u64(&j, "client_port", strtoull(p->rport, NULL, 10));
    if (p->real_addr[0] != '\0') {
        /* the trusted front the client address came through */
        sw_log_json_str(&j, "realip_remote_addr", p->raddr, strlen(p->raddr));
    }
    sw_log_json_str(&j, "request", p->log_req, strlen(p->log_req));
    sw_log_json_u64(&j, "status", p->status);
    sw_log_json_u64(&j, "bytes_sent", p->bytes_out);
    sw_log_json_u64(&j, "bytes_received", p->req_body_bytes);
    if (p->peer != NULL) {
        sw_log_json_str(&j, "upstream", p->peer->server->text.p,
                        p->peer->server->text.len);
    }
    sw_log_json_u64(&j, "duration_ms", ms);
    sw_log_json_str(&j, "request_id", p->request_id, strlen(p->request_id));
    for (size_t i = 0; i < f->n; i++) {
        char key[64];
        snprintf(key, sizeof(key), "%.*s", (int)f->key[i].len, f->key[i].p);
        sw_log_json_str(&j, key, f->value[i].p, f->value[i].len);
    }
    sw_log_json_write(&j);
}

static void
log_access(struct sw_session *p, uint64_t now_us)
{
    /* started_ms is set once a request head parsed: a head refused with
     * 400 has none (it was 0, or the previous request's). */
    uint64_t ms = p->log_req[0] != '-' && p->started_ms != 0
                      ? now_us / 1000 - p->started_ms
                      : 0;
    if (!sw_log_access_is_on()) {
        return; /* nor do the plugins' on_log run */
    }
    struct sw_plugin_log_fields f;
    sw__proxy_plugins_log_fields(p, &f);
    if (sw_log_access_is_json()) {
        log_access_json(p, ms, &f);
        return;
    }
    char extra[SW_PLUGIN_LOG_ROOM + 2 * SW_PLUGIN_LOG_FIELDS + 1];
    sw_plugin_log_fields_text(&f, extra, sizeof(extra));
    sw_log_access("%s \"%s\" %u %llu %.*s %llums %s%s", client_addr(p),
                  p->log_req, p->status, (unsigned long long)p->bytes_out,
                  p->peer ? (int)p->peer->server->text.len : 1,
                  p->peer ? p->peer->server->text.p : "-",
                  (unsigned long long)ms, p->request_id, extra);
}

void
sw__proxy_exchange_done(struct sw_session *p)
{
    uint64_t now_us = sw_metrics_now_us();
    sw__proxy_metrics_done(p, true, now_us);
    log_access(p, now_us);
}

/*
 * Answer the client ourselves (errors, 404, `return`). The connection is
 * kept only when `keep` and the request carried no unread body: its bytes
 * would otherwise be read as the next request.
 */
void
sw__proxy_respond_local(struct sw_session *p, unsigned status, const char *body,
                        size_t body_len, bool keep, const char *why,
                        const char *extra)
{
    const char *reason = sw_http_reason(status);
    if (status >= 400) {
        sw_metrics_inc(&p->w->metrics, SW_METRIC_HTTP_ERRORS_TOTAL);
        /* a plugin's answer is its policy, and the plugin logs its reason:
         * the gateway's own line would only double a flood of 429s */
        enum sw_log_level level =
            has(p, SW_SESS_F_PLUGIN_ANSWER) ? SW_LOG_DEBUG : SW_LOG_WARN;
        sw_log(level, "client %s:%s: %u %s: %s", p->raddr, p->rport, status,
               reason, why != NULL ? why : reason);
    }
    if (p->state == SW_PROXY_CONNECT || p->state == SW_PROXY_PROXY) {
        sw__proxy_upstream_release(p, false);
    }
    if (p->req_body != SW_HTTP_BODY_NONE && !has(p, SW_SESS_F_REQ_DONE)) {
        keep = false;
    }
    if (!has(p, SW_SESS_F_CLIENT_KEEPALIVE) || p->w->draining) {
        keep = false;
    }
    set_flag(p, SW_SESS_F_CLOSE_AFTER, !keep);
    p->status = status;
    sw__proxy_metrics_answered(p, status, false);
    sw__proxy_set_state(p, SW_PROXY_LOCAL);

    char head[320];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %u %s\r\nServer: shockwave\r\n"
                     "Content-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "%s%s\r\n",
                     status, reason, body_len, extra != NULL ? extra : "",
                     keep ? "" : "Connection: close\r\n");
    /* RFC 9110 9.3.2: the answer to HEAD is the head alone, its
     * Content-Length the body's that a GET would get; a body here would be
     * read as the start of the next response */
    size_t send_len = p->method_id == sw_http_method_head() ? 0 : body_len;
    struct sw_buf *b = NULL;
    if (!sw_conn_buf_ready(&p->c, &p->c.out) || (b = p->c.out) == NULL ||
        !sw_buf_append(b, head, (size_t)n) ||
        !sw_buf_append(b, body, send_len)) {
        sw__proxy_close(p);
        return;
    }
    p->bytes_out = send_len;
    sw__proxy_exchange_done(p);
}

void
sw__proxy_respond_error(struct sw_session *p, unsigned status, const char *why)
{
    char body[96];
    int n =
        snprintf(body, sizeof(body), "%u %s\n", status, sw_http_reason(status));
    sw__proxy_respond_local(p, status, body, (size_t)n, false, why, NULL);
}

/* An upstream failure: 502/504 while the client has seen nothing of the
 * response, else the client connection is cut (a half-sent response cannot
 * be turned into an error). */
void
sw__proxy_upstream_failed(struct sw_session *p, unsigned status,
                          const char *why)
{
    if (p->peer != NULL) {
        sw_upstream_report(p->peer, false);
    }
    if (!has(p, SW_SESS_F_RESP_HEAD_DONE)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "upstream %.*s: %s",
                 p->peer ? (int)p->peer->server->text.len : 1,
                 p->peer ? p->peer->server->text.p : "-", why);
        sw__proxy_respond_error(p, status, msg);
        return;
    }
    sw_log_warn("client %s:%s: upstream %.*s failed mid-response: %s", p->raddr,
                p->rport, p->peer ? (int)p->peer->server->text.len : 1,
                p->peer ? p->peer->server->text.p : "-", why);
    sw__proxy_close(p);
}

/* The client's body broke a rule: an error answer while the client has
 * seen nothing of the response, else the connection is cut (the upstream
 * may already be streaming its answer). */
void
sw__proxy_request_body_failed(struct sw_session *p, unsigned status,
                              const char *why)
{
    if (!has(p, SW_SESS_F_RESP_HEAD_DONE)) {
        sw__proxy_respond_error(p, status, why);
        return;
    }
    sw_log_warn("client %s:%s: %s after the response started, closing",
                p->raddr, p->rport, why);
    sw_metrics_inc(&p->w->metrics, SW_METRIC_HTTP_ERRORS_TOTAL);
    sw__proxy_close(p);
}
