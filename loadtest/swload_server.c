/*
 * swload_server.c - `swload echo` and `swload sink`: the HTTP/1.1 and
 * WebSocket test backend.
 *
 * One event_base per thread (--threads N, default 1), each with its own
 * listener per --listen address (SO_REUSEPORT when N > 1), its own
 * connections and nothing shared but the atomic connection counter behind
 * X-Conn-Id. The main thread only waits for SIGTERM/SIGINT, then stops the
 * workers and frees everything.
 *
 * A connection is a bufferevent. Backpressure both ways: the input stops
 * being read above IN_HIGH bytes (bufferevent read watermark), and nothing
 * is produced while the output holds OUT_HIGH bytes or more; the write
 * callback (low watermark OUT_LOW) resumes production. So memory per
 * connection stays bounded whatever the body or message size.
 *
 * Connection states (changed only by set_state):
 *
 *            +--------------- keep-alive ----------------+
 *            v                                           |
 *   ---> HEAD --head--> BODY --body done--> respond ---> + --> DRAIN --+
 *          |                                 |   ^            (flushed) |
 *          |                                 |   |   CLOSED <-- LINGER <-+
 *          |                                 |   |   (peer FIN or 2 s; input
 *          |                                 |   |    discarded meanwhile)
 *          |                         GEN (generated body) / WAIT (timer, stall)
 *          +--upgrade--> WS --close handshake--> DRAIN
 *   any state --error or peer gone--> CLOSED
 *
 * Close is deferred: callbacks run the state machine, then settle() frees
 * the connection as their last step; nothing touches it after that.
 */
#include "swload.h"

#include <shockwave/ws.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#define OUT_HIGH (1024 * 1024) /* stop producing at this output backlog */
#define OUT_LOW (256 * 1024)   /* write callback (resume) at or below this */
#define IN_HIGH (256 * 1024)   /* stop reading the socket above this input */
#define GEN_PIECE 8192         /* generated body piece / chunk size */
#define PATTERN_LEN (251 * 34) /* >= 251 + GEN_PIECE: any piece is a slice */
#define SCRATCH_LEN 65536      /* WebSocket payload unmask scratch */

struct server;

enum cstate {
    ST_HEAD = 0, /* reading a request head */
    ST_BODY,     /* reading a request body */
    ST_GEN,      /* producing a generated response body */
    ST_WAIT,     /* /sleep timer armed, or stalled on purpose */
    ST_WS,       /* after 101: WebSocket frames */
    ST_DRAIN,    /* last bytes queued: close once the output is empty */
    ST_LINGER,   /* FIN sent: discard input until the peer closes */
    ST_CLOSED,   /* to be freed by settle() */
};

enum route {
    R_DUMP = 0, /* 200 with the request line and headers as the body */
    R_ECHO,     /* POST|PUT /echo: body streamed back */
    R_SINK,     /* POST|PUT /sink: body counted and hashed */
    R_SIZE,     /* /size/N: N pattern bytes, Content-Length */
    R_CHUNKED,  /* /chunked/N: N pattern bytes, chunked */
    R_CLOSE,    /* /close/N: N pattern bytes, delimited by close */
    R_STATUS,   /* /status/CODE */
    R_SLEEP,    /* /sleep/MS: answer after a timer */
    R_STALL,    /* /stall: never answer */
    R_HANG,     /* /hang-body/N: head, N/2 bytes, then stall */
    R_CONTINUE, /* /continue: 100, 103, then 200 */
};

struct worker {
    struct server *srv;                            /* borrowed (main) */
    struct event_base *base;                       /* owned */
    struct evconnlistener *ls[SWLOAD_MAX_LISTENS]; /* owned: one per listen */
    pthread_t tid;                                 /* its thread */
    bool started;                                  /* tid is valid */
    struct conn *conns;                            /* owned: live list */
    uint8_t scratch[SCRATCH_LEN];                  /* unmask buffer */
};

struct server {
    bool sink;         /* `swload sink`: drop WebSocket data */
    const char *name;  /* borrowed (argv): X-Backend value */
    unsigned nthreads; /* worker threads */
    size_t nlistens;   /* entries in addrs */
    struct sockaddr_storage addrs[SWLOAD_MAX_LISTENS]; /* --listen */
    socklen_t addrlens[SWLOAD_MAX_LISTENS];            /* bytes of addrs[i] */
    atomic_uint_fast64_t nconns;  /* accepted TCP connections (X-Conn-Id) */
    struct worker *workers;       /* owned: nthreads entries */
    uint8_t pattern[PATTERN_LEN]; /* byte i = i % 251; read-only */
};

struct conn {
    struct worker *w;         /* borrowed (owner worker) */
    struct bufferevent *bev;  /* owned: socket and buffers */
    struct event *timer;      /* owned: /sleep timer, NULL until needed */
    struct evbuffer *pending; /* owned: response held until body end */
    EVP_MD_CTX *sha;          /* owned: /sink digest, NULL until needed */
    struct conn *prev;        /* borrowed: worker list */
    struct conn *next;        /* borrowed: worker list */
    uint64_t id;              /* X-Conn-Id */
    uint64_t nreq;            /* requests so far (X-Conn-Requests) */
    enum cstate state;        /* see the diagram */
    enum route route;         /* current request's route */
    uint64_t arg;             /* route argument: N, CODE or MS */
    bool head_req;            /* HEAD: no response body */
    bool close_after;         /* close once this response is sent */
    bool eof;                 /* the peer closed its sending side */
    enum sw_http_body body;   /* current request body framing */
    uint64_t body_left;       /* Content-Length bytes still to read */
    uint64_t body_bytes;      /* body bytes read (sink) */
    struct swload_chunked ch; /* chunked body decoder */
    uint64_t gen_pos;         /* generated bytes so far */
    uint64_t gen_len;         /* generated bytes to send */
    bool gen_chunked;         /* generated body is chunked */
    /* WebSocket */
    struct sw_ws_decoder dec; /* frame header decoder */
    struct sw_ws_frame fr;    /* frame being read */
    bool in_frame;            /* fr is being read */
    bool hdr_sent;            /* echo header of fr already queued */
    uint64_t pay_left;        /* payload bytes of fr still to read */
    uint64_t pay_off;         /* payload bytes of fr read (mask offset) */
    bool close_sent;          /* we sent a close frame */
    uint64_t pings;           /* pings received */
    uint64_t pongs;           /* pongs received */
    uint64_t frames;          /* data frames received (not __stats) */
};

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static size_t
out_len(struct conn *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

static void
set_state(struct conn *c, enum cstate s)
{
    /* CLOSED is final; DRAIN only leads to LINGER or CLOSED. */
    SW_ASSERT(c->state != ST_CLOSED);
    SW_ASSERT(c->state != ST_DRAIN || s == ST_CLOSED || s == ST_LINGER);
    SW_ASSERT(c->state != ST_LINGER || s == ST_CLOSED);
    c->state = s;
}

/* ---- connection lifetime ---------------------------------------------- */

static void
conn_free(struct conn *c)
{
    if (c == NULL) {
        return;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        c->w->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    if (c->timer != NULL) {
        event_free(c->timer);
    }
    if (c->pending != NULL) {
        evbuffer_free(c->pending);
    }
    EVP_MD_CTX_free(c->sha);
    bufferevent_free(c->bev);
    free(c);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
    struct worker *w = arg;
    struct conn *c = NULL;
    int one = 1;

    SW_UNUSED(l);
    SW_UNUSED(sa);
    SW_UNUSED(salen);
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        /* Unix sockets or an odd kernel: latency only, not an error. */
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        evutil_closesocket(fd);
        goto out;
    }
    c->w = w;
    c->id = atomic_fetch_add(&w->srv->nconns, 1) + 1;
    c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->pending = evbuffer_new();
    if (c->bev == NULL || c->pending == NULL) {
        if (c->bev == NULL) {
            evutil_closesocket(fd);
        }
        if (c->pending != NULL) {
            evbuffer_free(c->pending);
        }
        if (c->bev != NULL) {
            bufferevent_free(c->bev);
        }
        free(c);
        goto out;
    }
    c->next = w->conns;
    if (w->conns != NULL) {
        w->conns->prev = c;
    }
    w->conns = c;
    c->state = ST_HEAD;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, IN_HIGH);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
out:
    return;
}

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

static void on_timer(evutil_socket_t fd, short what, void *arg);

static void settle(struct conn *c);

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
            c->timer = evtimer_new(c->w->base, on_timer, c);
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

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char text[64];
    int n;

    SW_UNUSED(fd);
    SW_UNUSED(what);
    if (c->state == ST_LINGER) {
        set_state(c, ST_CLOSED);
        settle(c);
        return;
    }
    n = snprintf(text, sizeof(text), "slept %" PRIu64 "\n", c->arg);
    simple_write(c, out, 200, text, (size_t)n);
    request_done(c);
    settle(c);
}

/* ---- HTTP states ------------------------------------------------------ */

static enum sw_status ws_start(struct conn *c, const struct swload_req *r);

static enum sw_status
on_head(struct conn *c)
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
        rc = ws_start(c, &r);
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

static enum sw_status
on_body(struct conn *c)
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

static enum sw_status
on_gen(struct conn *c)
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

/* ---- WebSocket -------------------------------------------------------- */

static enum sw_status
ws_start(struct conn *c, const struct swload_req *r)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char accept[SW_WS_ACCEPT_LEN + 1];

    sw_ws_accept_compute(r->ws_key, accept);
    c->close_after = false;
    evbuffer_add_printf(out,
                        "HTTP/1.1 101 Switching Protocols\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: %s\r\n",
                        accept);
    if (r->ws_protocol.len > 0) {
        evbuffer_add_printf(out, "Sec-WebSocket-Protocol: %.*s\r\n",
                            (int)r->ws_protocol.len, r->ws_protocol.p);
    }
    evbuffer_add_printf(out,
                        "X-Backend: %s\r\n"
                        "X-Conn-Id: %" PRIu64 "\r\n"
                        "X-Conn-Requests: %" PRIu64 "\r\n\r\n",
                        c->w->srv->name, c->id, c->nreq);
    /* Tolerant: masking and RSV bits are not ours to police here. */
    sw_ws_decoder_init(&c->dec, SW_WS_PEER_ANY,
                       SW_WS_RSV1 | SW_WS_RSV2 | SW_WS_RSV3, 0);
    c->in_frame = false;
    set_state(c, ST_WS);
    return SW_OK;
}

static void
ws_send(struct conn *c, bool fin, uint8_t opcode, const void *p, size_t n)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint8_t hdr[SW_WS_MAX_HEADER];
    size_t hl = sw_ws_frame_encode(hdr, fin, opcode, NULL, n);

    evbuffer_add(out, hdr, hl);
    if (n > 0) {
        evbuffer_add(out, p, n);
    }
}

/* A whole small frame (control, or a short final text frame) is in p. */
static enum sw_status
ws_small(struct conn *c, uint8_t *p, size_t n)
{
    const struct sw_ws_frame *f = &c->fr;
    char text[128];
    int tn;

    switch (f->opcode) {
    case SW_WS_OP_PING:
        c->pings++;
        if (!c->close_sent) {
            ws_send(c, true, SW_WS_OP_PONG, p, n);
        }
        break;
    case SW_WS_OP_PONG:
        c->pongs++;
        break;
    case SW_WS_OP_CLOSE:
        if (!c->close_sent) {
            /* Echo the code only (RFC 6455 5.5.1: the reply usually
             * repeats the status code it received). */
            ws_send(c, true, SW_WS_OP_CLOSE, p, n >= 2 ? 2 : 0);
            c->close_sent = true;
        }
        set_state(c, ST_DRAIN);
        break;
    default:
        if (c->close_sent) {
            break; /* RFC 6455 5.5.1: no data after our close */
        }
        if (n == 7 && memcmp(p, "__stats", 7) == 0) {
            tn = snprintf(text, sizeof(text),
                          "{\"pings\":%" PRIu64 ",\"pongs\":%" PRIu64
                          ",\"frames\":%" PRIu64 "}",
                          c->pings, c->pongs, c->frames);
            ws_send(c, true, SW_WS_OP_TEXT, text, (size_t)tn);
            break;
        }
        if (n > 8 && n < 16 && memcmp(p, "__close ", 8) == 0) {
            char digits[8];
            uint64_t code = 0;
            memcpy(digits, p + 8, n - 8);
            digits[n - 8] = '\0';
            if (swload_parse_u64(digits, &code) && code <= 0xffff) {
                uint8_t pl[2] = {(uint8_t)(code >> 8), (uint8_t)code};
                ws_send(c, true, SW_WS_OP_CLOSE, pl, 2);
                c->close_sent = true;
                break;
            }
        }
        c->frames++;
        if (!c->w->srv->sink) {
            ws_send(c, f->fin, f->opcode, p, n);
        }
        break;
    }
    return SW_OK;
}

static enum sw_status
on_ws(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint8_t *scratch = c->w->scratch;

    while (c->state == ST_WS && out_len(c) < OUT_HIGH) {
        size_t len = evbuffer_get_length(in);
        if (!c->in_frame) {
            size_t n = SW_MIN(len, (size_t)SW_WS_MAX_HEADER);
            if (n == 0) {
                return c->eof ? SW_ECLOSED : SW_AGAIN;
            }
            const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)n);
            ssize_t used = sw_ws_frame_decode(&c->dec, p, n, &c->fr);
            if (used == SW_AGAIN) {
                evbuffer_drain(in, n);
                continue;
            }
            if (used < 0) {
                ws_send(c, true, SW_WS_OP_CLOSE,
                        (uint8_t[]){c->dec.close_code >> 8,
                                    c->dec.close_code & 0xff},
                        2);
                set_state(c, ST_DRAIN);
                return SW_OK;
            }
            evbuffer_drain(in, (size_t)used);
            c->in_frame = true;
            c->hdr_sent = false;
            c->pay_left = c->fr.payload_len;
            c->pay_off = 0;
            continue;
        }
        bool small = sw_ws_is_control(c->fr.opcode) ||
                     (c->fr.opcode == SW_WS_OP_TEXT && c->fr.fin &&
                      c->fr.payload_len <= SW_WS_MAX_CONTROL);
        if (small) {
            size_t n = (size_t)c->fr.payload_len;
            if (len < n) {
                return c->eof ? SW_ECLOSED : SW_AGAIN;
            }
            evbuffer_remove(in, scratch, n);
            if (c->fr.masked) {
                sw_ws_mask(scratch, n, c->fr.mask, 0);
            }
            c->in_frame = false;
            ws_small(c, scratch, n);
            continue;
        }
        /* Stream a data frame: same FIN and opcode, unmasked. */
        bool echo = !c->w->srv->sink && !c->close_sent;
        if (!c->hdr_sent) {
            if (echo) {
                uint8_t hdr[SW_WS_MAX_HEADER];
                size_t hl = sw_ws_frame_encode(hdr, c->fr.fin, c->fr.opcode,
                                               NULL, c->fr.payload_len);
                evbuffer_add(out, hdr, hl);
            }
            c->hdr_sent = true;
        }
        if (c->pay_left == 0) {
            c->frames++;
            c->in_frame = false;
            continue;
        }
        size_t n =
            (size_t)SW_MIN((uint64_t)SW_MIN(len, SCRATCH_LEN), c->pay_left);
        if (n == 0) {
            return c->eof ? SW_ECLOSED : SW_AGAIN;
        }
        if (echo) {
            evbuffer_remove(in, scratch, n);
            if (c->fr.masked) {
                sw_ws_mask(scratch, n, c->fr.mask, (size_t)c->pay_off);
            }
            evbuffer_add(out, scratch, n);
        } else {
            evbuffer_drain(in, n);
        }
        c->pay_left -= n;
        c->pay_off += n;
    }
    return SW_OK;
}

/* ---- dispatch --------------------------------------------------------- */

/* Run the state machine as far as input and output room allow. */
static void
process(struct conn *c)
{
    enum sw_status rc = SW_OK;

    while (rc == SW_OK && out_len(c) < OUT_HIGH) {
        switch (c->state) {
        case ST_HEAD:
            rc = on_head(c);
            break;
        case ST_BODY:
            rc = on_body(c);
            break;
        case ST_GEN:
            rc = on_gen(c);
            break;
        case ST_WS:
            rc = on_ws(c);
            break;
        case ST_LINGER:
            evbuffer_drain(bufferevent_get_input(c->bev),
                           evbuffer_get_length(bufferevent_get_input(c->bev)));
            return;
        case ST_WAIT:
        case ST_DRAIN:
        case ST_CLOSED:
            return;
        }
    }
    if (rc != SW_OK && rc != SW_AGAIN) {
        set_state(c, ST_CLOSED);
    }
}

/* Everything is sent: half-close and read until the peer closes too, so
 * that unread input (a rejected head, pipelined requests) does not turn our
 * close into a RST that would destroy the response in flight. */
static void
linger(struct conn *c)
{
    struct timeval tv = {2, 0};

    if (c->eof) {
        set_state(c, ST_CLOSED);
        return;
    }
    if (c->timer == NULL) {
        c->timer = evtimer_new(c->w->base, on_timer, c);
    }
    if (c->timer == NULL || shutdown(bufferevent_getfd(c->bev), SHUT_WR) != 0) {
        set_state(c, ST_CLOSED);
        return;
    }
    evtimer_add(c->timer, &tv);
    set_state(c, ST_LINGER);
    evbuffer_drain(bufferevent_get_input(c->bev),
                   evbuffer_get_length(bufferevent_get_input(c->bev)));
    bufferevent_enable(c->bev, EV_READ);
}

/* Last step of every callback: close what is finished. */
static void
settle(struct conn *c)
{
    if (c->eof && c->state == ST_LINGER) {
        set_state(c, ST_CLOSED);
    }
    if (c->eof && c->state != ST_CLOSED && c->state != ST_DRAIN) {
        bool timer = c->timer != NULL && evtimer_pending(c->timer, NULL);
        if (c->state == ST_BODY) {
            set_state(c, ST_CLOSED); /* the body will never end */
        } else if (c->state == ST_HEAD || c->state == ST_WS ||
                   (c->state == ST_WAIT && !timer)) {
            set_state(c, ST_DRAIN);
        }
    }
    if (c->state == ST_DRAIN) {
        if (out_len(c) == 0) {
            linger(c);
        } else {
            bufferevent_disable(c->bev, EV_READ);
            bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        }
    }
    if (c->state == ST_CLOSED) {
        conn_free(c);
    }
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    SW_UNUSED(bev);
    process(c);
    settle(c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    SW_UNUSED(bev);
    process(c);
    settle(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    SW_UNUSED(bev);
    if (what & BEV_EVENT_ERROR) {
        if (c->state != ST_CLOSED) {
            set_state(c, ST_CLOSED);
        }
    } else if (what & BEV_EVENT_EOF) {
        c->eof = true;
        process(c);
    }
    settle(c);
}

/* ---- process ---------------------------------------------------------- */

static void *
worker_run(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    return NULL;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;

    SW_UNUSED(sig);
    SW_UNUSED(what);
    for (unsigned i = 0; i < srv->nthreads; i++) {
        event_base_loopbreak(srv->workers[i].base);
    }
}

static void
server_usage(void)
{
    fputs("usage: swload echo|sink --listen ADDR [--listen ADDR...]"
          " [--name NAME] [--threads N]\n",
          stderr);
}

static enum sw_status
server_listen(struct server *srv)
{
    unsigned flags =
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
    char text[80];

    if (srv->nthreads > 1) {
        flags |= LEV_OPT_REUSEABLE_PORT;
    }
    for (size_t i = 0; i < srv->nlistens; i++) {
        for (unsigned t = 0; t < srv->nthreads; t++) {
            struct worker *w = &srv->workers[t];
            w->ls[i] = evconnlistener_new_bind(
                w->base, on_accept, w, flags, 1024,
                (struct sockaddr *)&srv->addrs[i], (int)srv->addrlens[i]);
            if (w->ls[i] == NULL) {
                swload_addr_format((struct sockaddr *)&srv->addrs[i], text,
                                   sizeof(text));
                fprintf(stderr, "swload: listen %s: %s\n", text,
                        strerror(errno));
                return SW_ERROR;
            }
            if (t == 0) {
                /* Port 0: the others bind the port the kernel chose. */
                socklen_t sl = sizeof(srv->addrs[i]);
                getsockname(evconnlistener_get_fd(w->ls[i]),
                            (struct sockaddr *)&srv->addrs[i], &sl);
            }
        }
        swload_addr_format((struct sockaddr *)&srv->addrs[i], text,
                           sizeof(text));
        printf("listening on %s\n", text);
    }
    fflush(stdout);
    return SW_OK;
}

int
swload_server_main(int argc, char **argv, bool sink)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"name", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct server *srv = NULL;
    struct event_base *main_base = NULL;
    struct event *sigs[2] = {NULL, NULL};
    int rc = 2;
    int opt;
    uint64_t v;

    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        goto out;
    }
    srv->sink = sink;
    srv->name = sink ? "sink" : "echo";
    srv->nthreads = 1;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "l:n:t:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            if (srv->nlistens == SWLOAD_MAX_LISTENS ||
                swload_addr_parse(optarg, &srv->addrs[srv->nlistens],
                                  &srv->addrlens[srv->nlistens]) != SW_OK) {
                fprintf(stderr, "swload: bad --listen %s\n", optarg);
                goto out;
            }
            srv->nlistens++;
            break;
        case 'n':
            srv->name = optarg;
            break;
        case 't':
            if (!swload_parse_u64(optarg, &v) || v == 0 || v > 256) {
                fprintf(stderr, "swload: bad --threads %s\n", optarg);
                goto out;
            }
            srv->nthreads = (unsigned)v;
            break;
        default:
            server_usage();
            goto out;
        }
    }
    if (srv->nlistens == 0 || optind != argc) {
        server_usage();
        goto out;
    }
    rc = 1;
    for (size_t i = 0; i < PATTERN_LEN; i++) {
        srv->pattern[i] = (uint8_t)(i % 251);
    }
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        goto out;
    }
    srv->workers = calloc(srv->nthreads, sizeof(*srv->workers));
    main_base = event_base_new();
    if (srv->workers == NULL || main_base == NULL) {
        goto out;
    }
    for (unsigned t = 0; t < srv->nthreads; t++) {
        srv->workers[t].srv = srv;
        srv->workers[t].base = event_base_new();
        if (srv->workers[t].base == NULL) {
            goto out;
        }
    }
    if (server_listen(srv) != SW_OK) {
        goto out;
    }
    sigs[0] = evsignal_new(main_base, SIGTERM, on_signal, srv);
    sigs[1] = evsignal_new(main_base, SIGINT, on_signal, srv);
    if (sigs[0] == NULL || sigs[1] == NULL) {
        goto out;
    }
    evsignal_add(sigs[0], NULL);
    evsignal_add(sigs[1], NULL);
    for (unsigned t = 0; t < srv->nthreads; t++) {
        struct worker *w = &srv->workers[t];
        if (pthread_create(&w->tid, NULL, worker_run, w) != 0) {
            goto out;
        }
        w->started = true;
    }
    /* Returns after on_signal: the signal events are then the only ones
     * left, so break the main loop from there too. */
    event_base_loop(main_base, EVLOOP_ONCE);
    rc = 0;

out:
    if (srv != NULL && srv->workers != NULL) {
        for (unsigned t = 0; t < srv->nthreads; t++) {
            struct worker *w = &srv->workers[t];
            if (w->started) {
                event_base_loopbreak(w->base);
                pthread_join(w->tid, NULL);
            }
            while (w->conns != NULL) {
                conn_free(w->conns);
            }
            for (size_t i = 0; i < SWLOAD_MAX_LISTENS; i++) {
                if (w->ls[i] != NULL) {
                    evconnlistener_free(w->ls[i]);
                }
            }
            if (w->base != NULL) {
                event_base_free(w->base);
            }
        }
        free(srv->workers);
    }
    for (size_t i = 0; i < SW_NELEMS(sigs); i++) {
        if (sigs[i] != NULL) {
            event_free(sigs[i]);
        }
    }
    if (main_base != NULL) {
        event_base_free(main_base);
    }
    free(srv);
    return rc;
}
