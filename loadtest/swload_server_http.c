/*
 * swload_server_http.c - the HTTP/1.1 side of `swload echo`: routes,
 * request bodies (echoed, hashed or counted) and generated responses.
 * The connection states are described in swload_server.c.
 */
#include "swload_server_int.h"

#include <inttypes.h>

/* ---- response pieces -------------------------------------------------- */

/* Status line and the headers every response carries. */
static void
head_write(struct conn *c, struct evbuffer *b, unsigned status)
{
    evbuffer_add_printf(b,
                        "HTTP/1.1 %u %s\r\n"
                        "X-Backend: %s\r\n"
                        "X-Conn-Id: %" PRIu64 "\r\n"
                        "X-Conn-Requests: %" PRIu64 "\r\n",
                        status, swload_reason(status), c->w->srv->name, c->id,
                        c->nreq);
    if (c->close_after) {
        evbuffer_add(b, "Connection: close\r\n", 19);
    }
}

/* A complete response with a small body (suppressed for HEAD). */
static void
simple_write(struct conn *c, struct evbuffer *b, unsigned status,
             const char *body, size_t len)
{
    head_write(c, b, status);
    evbuffer_add_printf(b,
                        "Content-Type: text/plain\r\n"
                        "Content-Length: %zu\r\n\r\n",
                        len);
    if (!c->head_req) {
        evbuffer_add(b, body, len);
    }
}

/* The request finished: keep the connection or close it. */
static void
request_done(struct conn *c)
{
    set_state(c, c->close_after ? ST_DRAIN : ST_HEAD);
}

static bool
path_num(struct sw_str path, const char *prefix, uint64_t *n)
{
    char digits[24];
    size_t pl = strlen(prefix);

    if (path.len <= pl || path.len - pl >= sizeof(digits) ||
        memcmp(path.p, prefix, pl) != 0) {
        return false;
    }
    memcpy(digits, path.p + pl, path.len - pl);
    digits[path.len - pl] = '\0';
    return swload_parse_u64(digits, n);
}

static bool
str_is(struct sw_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

static enum route
route_pick(const struct swload_req *r, uint64_t *arg)
{
    bool post = str_is(r->method, "POST") || str_is(r->method, "PUT");

    *arg = 0;
    if (post && str_is(r->path, "/echo")) {
        return R_ECHO;
    }
    if (post && str_is(r->path, "/sink")) {
        return R_SINK;
    }
    if (path_num(r->path, "/size/", arg)) {
        return R_SIZE;
    }
    if (path_num(r->path, "/chunked/", arg)) {
        return R_CHUNKED;
    }
    if (path_num(r->path, "/close/", arg)) {
        return R_CLOSE;
    }
    if (path_num(r->path, "/status/", arg) && *arg >= 100 && *arg <= 999) {
        return R_STATUS;
    }
    if (path_num(r->path, "/sleep/", arg)) {
        return R_SLEEP;
    }
    if (str_is(r->path, "/stall")) {
        return R_STALL;
    }
    if (path_num(r->path, "/hang-body/", arg)) {
        return R_HANG;
    }
    if (str_is(r->path, "/continue")) {
        return R_CONTINUE;
    }
    return R_DUMP;
}

/* Body of R_DUMP: what the backend received, line by line. */
static void
dump_write(struct conn *c, const struct swload_req *r)
{
    struct evbuffer *body = evbuffer_new();

    if (body == NULL) {
        return;
    }
    evbuffer_add_printf(body, "%.*s %.*s HTTP/1.%u\n", (int)r->method.len,
                        r->method.p, (int)r->target.len, r->target.p, r->minor);
    for (size_t i = 0; i < r->nhdrs; i++) {
        evbuffer_add_printf(body, "%.*s: %.*s\n", (int)r->hdrs[i].name.len,
                            r->hdrs[i].name.p, (int)r->hdrs[i].value.len,
                            r->hdrs[i].value.p);
    }
    evbuffer_add(body, "\n", 1);
    head_write(c, c->pending, 200);
    evbuffer_add_printf(c->pending,
                        "Content-Type: text/plain\r\n"
                        "Content-Length: %zu\r\n\r\n",
                        evbuffer_get_length(body));
    if (!c->head_req) {
        evbuffer_add_buffer(c->pending, body);
    }
    evbuffer_free(body);
}

/* The request body has been read: answer per route. */
static enum sw_status
respond(struct conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    enum sw_status rc = SW_OK;
    char text[160];
    int n;

    switch (c->route) {
    case R_DUMP:
        evbuffer_add_buffer(out, c->pending);
        request_done(c);
        break;
    case R_ECHO:
        if (c->body == SW_HTTP_BODY_CHUNKED) {
            evbuffer_add(out, "0\r\n\r\n", 5);
        }
        request_done(c);
        break;
    case R_SINK: {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        EVP_DigestFinal_ex(c->sha, md, &mdlen);
        for (unsigned i = 0; i < mdlen; i++) {
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        }
        hex[2 * mdlen] = '\0';
        n = snprintf(text, sizeof(text), "bytes=%" PRIu64 " sha256=%s\n",
                     c->body_bytes, hex);
        simple_write(c, out, 200, text, (size_t)n);
        request_done(c);
        break;
    }
    case R_SIZE:
    case R_CHUNKED:
    case R_CLOSE:
    case R_HANG:
        if (c->route == R_CLOSE) {
            c->close_after = true;
        }
        head_write(c, out, 200);
        evbuffer_add(out, "Content-Type: application/octet-stream\r\n", 40);
        if (c->route == R_SIZE || c->route == R_HANG) {
            evbuffer_add_printf(out, "Content-Length: %" PRIu64 "\r\n", c->arg);
        } else if (c->route == R_CHUNKED) {
            evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
        }
        evbuffer_add(out, "\r\n", 2);
        c->gen_pos = 0;
        c->gen_len = c->route == R_HANG ? c->arg / 2 : c->arg;
        c->gen_chunked = c->route == R_CHUNKED;
        if (c->head_req) {
            c->gen_len = 0;
            c->gen_chunked = false;
        }
        set_state(c, ST_GEN);
        break;
    case R_STATUS: {
        unsigned code = (unsigned)c->arg;
        if (code < 200 || code == 204 || code == 304) {
            head_write(c, out, code);
            evbuffer_add(out, "\r\n", 2);
        } else {
            n = snprintf(text, sizeof(text), "status %u\n", code);
            simple_write(c, out, code, text, (size_t)n);
        }
        request_done(c);
        break;
    }
    case R_SLEEP: {
        struct timeval tv = {(time_t)(c->arg / 1000),
                             (suseconds_t)(c->arg % 1000) * 1000};
        if (c->timer == NULL) {
            c->timer = evtimer_new(c->w->base, swload_server_timer, c);
            if (c->timer == NULL) {
                rc = SW_ENOMEM;
                break;
            }
        }
        evtimer_add(c->timer, &tv);
        set_state(c, ST_WAIT);
        break;
    }
    case R_STALL:
        set_state(c, ST_WAIT);
        break;
    case R_CONTINUE:
        evbuffer_add(out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        evbuffer_add_printf(out,
                            "HTTP/1.1 103 Early Hints\r\n"
                            "Link: </style.css>; rel=preload; as=style\r\n"
                            "X-Backend: %s\r\n\r\n",
                            c->w->srv->name);
        simple_write(c, out, 200, "ok", 2);
        request_done(c);
        break;
    }
    return rc;
}

void
swload_server_timer(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char text[64];
    int n;

    SW_UNUSED(fd);
    SW_UNUSED(what);
    if (c->state == ST_LINGER) {
        set_state(c, ST_CLOSED);
        swload_server_settle(c);
        return;
    }
    n = snprintf(text, sizeof(text), "slept %" PRIu64 "\n", c->arg);
    simple_write(c, out, 200, text, (size_t)n);
    request_done(c);
    swload_server_settle(c);
}

/* ---- HTTP states ------------------------------------------------------ */

enum sw_status
swload_server_head(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct swload_req r;
    size_t len = evbuffer_get_length(in);
    enum sw_status rc;

    if (len == 0) {
        return SW_AGAIN;
    }
    len = SW_MIN(len, (size_t)SWLOAD_MAX_HEAD + 1);
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
    rc = swload_req_decode(&r, p, len);
    if (rc == SW_AGAIN) {
        return SW_AGAIN;
    }
    c->nreq++;
    c->head_req = false;
    c->close_after = true;
    if (rc != SW_OK) {
        unsigned code = rc == SW_ETOOBIG ? 431 : 400;
        simple_write(c, out, code, "bad request\n", 12);
        set_state(c, ST_DRAIN);
        return SW_OK;
    }

    c->head_req = str_is(r.method, "HEAD");
    c->close_after = !r.keep_alive;
    c->body = r.body;
    c->body_left = r.content_length;
    c->body_bytes = 0;
    swload_chunked_init(&c->ch);
    if (r.ws_upgrade) {
        rc = swload_server_ws_start(c, &r);
        evbuffer_drain(in, r.head_len);
        return rc;
    }

    c->route = route_pick(&r, &c->arg);
    bool has_body = r.body == SW_HTTP_BODY_CHUNKED ||
                    (r.body == SW_HTTP_BODY_LENGTH && r.content_length > 0);
    if (r.expect_continue && has_body) {
        /* RFC 9110 10.1.1: the client waits for this before the body. */
        evbuffer_add(out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    switch (c->route) {
    case R_DUMP:
        dump_write(c, &r);
        break;
    case R_ECHO:
        head_write(c, out, 200);
        if (r.body == SW_HTTP_BODY_CHUNKED) {
            evbuffer_add(out, "Transfer-Encoding: chunked\r\n\r\n", 30);
        } else {
            evbuffer_add_printf(out, "Content-Length: %" PRIu64 "\r\n\r\n",
                                r.content_length);
        }
        break;
    case R_SINK:
        if (c->sha == NULL) {
            c->sha = EVP_MD_CTX_new();
        }
        if (c->sha == NULL ||
            EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL) != 1) {
            return SW_ENOMEM;
        }
        break;
    default:
        break;
    }
    evbuffer_drain(in, r.head_len);
    set_state(c, ST_BODY);
    return SW_OK;
}

/* Use one piece of request body according to the route. */
static void
body_piece(struct conn *c, const char *p, size_t n)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    c->body_bytes += n;
    if (c->route == R_SINK) {
        EVP_DigestUpdate(c->sha, p, n);
    } else if (c->route == R_ECHO && n > 0) {
        if (c->body == SW_HTTP_BODY_CHUNKED) {
            evbuffer_add_printf(out, "%zx\r\n", n);
            evbuffer_add(out, p, n);
            evbuffer_add(out, "\r\n", 2);
        } else {
            evbuffer_add(out, p, n);
        }
    }
}

enum sw_status
swload_server_body(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    enum sw_status rc = SW_OK;

    while (out_len(c) < OUT_HIGH) {
        if (c->body == SW_HTTP_BODY_NONE ||
            (c->body == SW_HTTP_BODY_LENGTH && c->body_left == 0)) {
            return respond(c);
        }
        size_t avail = evbuffer_get_contiguous_space(in);
        if (avail == 0) {
            return c->eof ? SW_ECLOSED : SW_AGAIN;
        }
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)avail);
        if (c->body == SW_HTTP_BODY_LENGTH) {
            size_t n = (size_t)SW_MIN((uint64_t)avail, c->body_left);
            body_piece(c, p, n);
            c->body_left -= n;
            evbuffer_drain(in, n);
            continue;
        }
        size_t used = 0;
        struct sw_str data;
        rc = swload_chunked_decode(&c->ch, p, avail, &used, &data);
        body_piece(c, data.p, data.len);
        evbuffer_drain(in, used);
        if (rc == SW_OK) {
            return respond(c); /* c->body stays CHUNKED for the echo */
        }
        if (rc != SW_AGAIN) {
            return rc;
        }
    }
    return SW_OK;
}

enum sw_status
swload_server_gen(struct conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    const uint8_t *pat = c->w->srv->pattern;

    while (c->gen_pos < c->gen_len && out_len(c) < OUT_HIGH) {
        size_t n = (size_t)SW_MIN((uint64_t)GEN_PIECE, c->gen_len - c->gen_pos);
        if (c->gen_chunked) {
            evbuffer_add_printf(out, "%zx\r\n", n);
        }
        evbuffer_add(out, pat + c->gen_pos % 251, n);
        if (c->gen_chunked) {
            evbuffer_add(out, "\r\n", 2);
        }
        c->gen_pos += n;
    }
    if (c->gen_pos < c->gen_len) {
        return SW_OK;
    }
    if (c->gen_chunked) {
        evbuffer_add(out, "0\r\n\r\n", 5);
    }
    if (c->route == R_HANG) {
        set_state(c, ST_WAIT);
    } else {
        request_done(c);
    }
    return SW_OK;
}
