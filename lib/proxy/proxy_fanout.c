/*
 * proxy_fanout.c - the session's part in fan-out: on a `fanout KEY;`
 * route, a valid upgrade's key is expanded and the client is handed to
 * the channel (lib/fanout), which answers its 101 and serves it from then
 * on; the session ends there, without closing the socket.
 *
 *   expand_key          $uri, $host, $arg_NAME, $http_NAME and the rest
 *   sw__proxy_fanout_join
 *
 * Worker thread only.
 */
#include "proxy_int.h"

#include <shockwave/fanout.h>
#include <shockwave/log.h>

/* Longest expanded key, the upstream's name included. */
#define SW_FANOUT_KEY_MAX 1024
/* Room for the subprotocols a client offers. */
#define SW_FANOUT_OFFERED_MAX 512

struct key_out {
    char *p;
    size_t len;
    size_t cap;
    bool overflow;
};

static void
put(struct key_out *o, struct sw_str s)
{
    if (o->len + s.len > o->cap) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s.p, s.len);
    o->len += s.len;
}

/* The raw value of query argument `name` in target ("/x?a=1&b=2"). */
static struct sw_str
query_arg(struct sw_str target, struct sw_str name)
{
    struct sw_str v = {"", 0};
    sw_http_param(sw_http_query(target), '&', name, &v);
    return v;
}

/* The value of request header `name` ("_" standing for "-"). */
static struct sw_str
header_value(const struct sw_http_request *r, struct sw_str name)
{
    char hname[128];
    if (name.len >= sizeof(hname)) {
        return (struct sw_str){"", 0};
    }
    for (size_t i = 0; i < name.len; i++) {
        hname[i] = name.p[i] == '_' ? '-' : name.p[i];
    }
    hname[name.len] = '\0';
    const struct sw_http_header *h =
        sw_http_find(r->headers, r->nheaders, hname);
    return h != NULL ? h->value : (struct sw_str){"", 0};
}

static bool
expand_key(const struct sw_session *p, const struct sw_http_request *r,
           struct sw_str path, struct sw_str host, struct key_out *o)
{
    const struct sw_conf_route *rt = p->route;
    struct sw_route_vars v = sw__proxy_vars(p, host, r->target);
    put(o, rt->upstream->name);
    put(o, SW_STR("\x1f")); /* one channel per upstream and key */
    for (size_t i = 0; i < rt->fanout_key.nparts; i++) {
        const struct sw_conf_tpl_part *pt = &rt->fanout_key.parts[i];
        switch (pt->var) {
        case SW_CONF_VAR_NONE:
            put(o, pt->text);
            break;
        case SW_CONF_VAR_URI:
            put(o, path);
            break;
        case SW_CONF_VAR_ARG:
            put(o, query_arg(r->target, pt->text));
            break;
        case SW_CONF_VAR_HTTP:
            put(o, header_value(r, pt->text));
            break;
        case SW_CONF_VAR_REMOTE_ADDR:
            put(o, v.remote_addr);
            break;
        case SW_CONF_VAR_REMOTE_PORT:
            put(o, v.remote_port);
            break;
        case SW_CONF_VAR_SCHEME:
            put(o, v.scheme);
            break;
        case SW_CONF_VAR_HOST:
            put(o, v.host);
            break;
        case SW_CONF_VAR_REQUEST_ID:
            put(o, v.request_id);
            break;
        case SW_CONF_VAR_REQUEST_URI:
            put(o, v.request_uri);
            break;
        case SW_CONF_VAR_SERVER_PORT:
            put(o, v.server_port);
            break;
        case SW_CONF_VAR_REALIP_REMOTE_ADDR:
            put(o, v.realip_remote_addr);
            break;
        }
    }
    return !o->overflow;
}

static void
release_wconf(void *arg)
{
    sw__proxy_wconf_unref(arg);
}

/* The channel serves its clients on epoll: on the io_uring engine the
 * client leaves the ring first. Its sends are done (the upgrade head
 * waited for them, SW_SESS_F_WAIT_SENT); bytes the ring received behind
 * the head are read into c.in, which the channel takes over, and the
 * leave is tried again. False when the client cannot leave (it closed, a
 * full c.in, no memory). Reads here may reuse c.in's memory: nothing of
 * the request's slices is used after. */
static bool
leave_ring(struct sw_session *p)
{
    for (int i = 0; i < 4; i++) {
        if (sw_conn_ring_leave(&p->c)) {
            return true;
        }
        if (!sw_conn_sends_idle(&p->c)) {
            return false;
        }
        ssize_t n = sw_conn_read(&p->c);
        if (n > 0) {
            sw_metrics_add(&p->w->metrics, SW_METRIC_BYTES_FROM_CLIENTS, n);
        } else if (n != SW_AGAIN) {
            return false;
        }
    }
    return false;
}

void
sw__proxy_fanout_join(struct sw_session *p, const struct sw_http_request *r,
                      struct sw_str path, struct sw_str host,
                      const char *ws_key)
{
    char key[SW_FANOUT_KEY_MAX];
    struct key_out ko = {key, 0, sizeof(key), false};
    if (!expand_key(p, r, path, host, &ko)) {
        sw__proxy_respond_error(p, 400, "fan-out key too long");
        return;
    }
    char offered[SW_FANOUT_OFFERED_MAX];
    struct key_out oo = {offered, 0, sizeof(offered), false};
    for (size_t i = 0; i < r->nheaders; i++) {
        if (sw_str_eq_ci(r->headers[i].name, "Sec-WebSocket-Protocol")) {
            put(&oo, oo.len > 0 ? SW_STR(", ") : SW_STR(""));
            put(&oo, r->headers[i].value);
        }
    }
    char caddr[SW_PROXY_ADDR_TEXT];
    snprintf(caddr, sizeof(caddr), "%s:%s", p->raddr, p->rport);
    struct sw_fanout_join j = {
        .route = p->route,
        .key = {key, ko.len},
        .client_key = {p->ws_key, p->ws_key_len},
        .offered = {offered, oo.overflow ? 0 : oo.len},
        .client_addr = caddr,
        .head = {(const char *)p->uhead->pos, sw_buf_len(p->uhead)},
        .ws_key = {ws_key, strlen(ws_key)},
        .up = p->up,
        .tls = conf_of(p)->tls,
        .release = release_wconf,
        .release_arg = p->wc,
    };
    if (!leave_ring(p)) {
        sw__proxy_respond_error(p, 503, "cannot hand the client to fan-out");
        return;
    }
    p->wc->refs++; /* the channel's, dropped by release */
    const char *why = NULL;
    unsigned status = sw_fanout_join(p->w->fanout, &j, &p->c, &why);
    if (status != 0) {
        p->wc->refs--;
        sw_conn_ring_join(&p->c, p->w->ring); /* the session keeps it */
        sw__proxy_respond_error(p, status, why);
        return;
    }
    /* the request line is logged now, as an upgrade; the client's
     * WebSocket line comes from the channel when it leaves */
    p->status = 101;
    sw__proxy_metrics_answered(p, 101, false);
    sw__proxy_exchange_done(p);
    sw_conn_buf_release(&p->u, &p->uhead);
    sw__proxy_close(p); /* the socket is the channel's now */
}
