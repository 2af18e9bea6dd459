/*
 * swload_client.c - `swload client`: WebSocket load scenarios.
 *
 *   echo        1 connection, 1 message in flight, --size bytes (default 64)
 *   concurrent  100 connections, each 1 message in flight
 *   throughput  one-way to `swload sink`: as many frames as the socket
 *               takes, 64 B then 4 KiB (or --size); delivery is confirmed
 *               with the sink's `__stats` at the end
 *   large       1 MiB messages echoed, MB/s and latency
 *   ping        ping/pong round trips, 1 in flight per connection
 *   idle        open --connections (default 10000) and hold them
 *   subscribe   open --connections (default 10) and receive what
 *               `swload broadcast` sends: delivery latency and order per
 *               connection (swload_sub.c); `swload subscribe` runs it
 *
 * Each thread (--threads, default 1) owns an event_base, a share of the
 * connections, a histogram and a mask-key RNG (lib/ws sw_ws_rng); nothing is
 * shared while running. Sockets are non-blocking with TCP_NODELAY and plain
 * `struct event`s. Per connection: one output buffer allocated when the
 * connection opens (header + largest frame), received payloads are never
 * stored (only control payloads, at most 125 bytes), reads go through one
 * per-thread buffer. Nothing is allocated per message.
 *
 * Connection states:
 *   CONNECTING --connected--> HANDSHAKE --101--> OPEN --stop/close--> DONE
 *        any --error, peer close--> DEAD
 *
 * Output: a human table on stdout, then one JSON line (a line that starts
 * with '{') with the same numbers.
 */
#include "swload.h"

#include <shockwave/ws.h>

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <strings.h>
#include <unistd.h>

#define READ_BUF (256 * 1024) /* per-thread read buffer */
#define TP_BUF (256 * 1024)   /* throughput: output batch per connection */
#define HS_MAX 1024           /* handshake response bytes kept */
#define MAX_INFLIGHT_OPEN 256 /* connects+handshakes in flight per thread */
#define STATS_WAIT_MS 5000    /* wait for __stats replies at the end */

enum scenario {
    SC_ECHO = 0,
    SC_CONCURRENT,
    SC_THROUGHPUT,
    SC_LARGE,
    SC_PING,
    SC_IDLE,
    SC_SUBSCRIBE,
};

static const char *const scenario_names[] = {
    "echo", "concurrent", "throughput", "large", "ping", "idle", "subscribe",
};

enum cc_state {
    CC_NEW = 0,    /* not started */
    CC_CONNECTING, /* non-blocking connect in progress */
    CC_HANDSHAKE,  /* upgrade request sent, waiting for 101 */
    CC_OPEN,       /* WebSocket open */
    CC_DONE,       /* finished normally */
    CC_DEAD,       /* failed or closed by the peer */
};

struct client {
    enum scenario sc;            /* what to run */
    struct sockaddr_storage dst; /* server address */
    socklen_t dstlen;            /* bytes of dst */
    char host[128];              /* Host header value */
    char path[256];              /* request path */
    uint64_t channels;           /* --channels: 0, or path + (i mod it) */
    uint64_t conns;              /* connections in total */
    uint64_t size;               /* message payload bytes */
    uint64_t duration_ms;        /* measuring (or holding) time */
    unsigned nthreads;           /* threads */
    struct sockaddr_storage src[SWLOAD_MAX_ADDRS]; /* --source-addrs */
    size_t nsrc;                                   /* entries in src */
    bool json_only;                                /* skip the human table */
};

struct cworker;

struct cconn {
    struct cworker *w;           /* borrowed (owner) */
    int fd;                      /* owned socket, -1 when closed */
    struct event *rev;           /* owned: EV_READ|EV_PERSIST */
    struct event *wev;           /* owned: EV_WRITE|EV_PERSIST, added on need */
    enum cc_state state;         /* see the diagram */
    uint64_t index;              /* connection number (source address) */
    char key[SW_WS_KEY_LEN + 1]; /* Sec-WebSocket-Key sent */
    uint8_t *out;                /* owned: output buffer */
    size_t out_cap;              /* bytes at out */
    size_t out_len;              /* bytes queued */
    size_t out_pos;              /* bytes of out already written */
    char *hs;                    /* owned: handshake response so far */
    size_t hs_len;               /* bytes in hs */
    struct swload_frames in;     /* input frames */
    bool pong_due;               /* a server ping waits for our pong */
    uint8_t pong[SW_WS_MAX_CONTROL]; /* its payload */
    size_t pong_len;                 /* bytes in pong */
    bool waiting;                    /* a message or ping is in flight */
    uint64_t sent_ns;                /* when it was sent */
    uint64_t sent_frames;            /* throughput: data frames queued */
    bool stats_asked;                /* throughput: __stats sent */
    bool stats_done;                 /* throughput: __stats answered */
    uint64_t acked;                  /* throughput: frames the sink counted */
    struct swload_sub_conn sub;      /* subscribe: order state */
};

struct cworker {
    struct client *cl;           /* borrowed (main) */
    struct event_base *base;     /* owned */
    pthread_t tid;               /* its thread */
    struct cconn *conns;         /* owned: nconns entries */
    size_t nconns;               /* connections of this thread */
    size_t next_open;            /* next connection to start */
    size_t inflight;             /* connects/handshakes in flight */
    size_t nopen;                /* connections that reached OPEN */
    size_t nfinished;            /* OPEN or failed during the opening */
    struct event *timer;         /* owned: stop / stats timeout */
    bool measuring;              /* between start and stop */
    bool stopping;               /* stop reached: no new messages */
    uint64_t start_ns;           /* all open: measurement starts */
    uint64_t open_ns;            /* when the thread began connecting */
    uint64_t end_ns;             /* measurement end */
    uint64_t msgs;               /* messages (or pings) completed */
    uint64_t bytes;              /* payload bytes completed */
    uint64_t errors;             /* failed connections or bad echoes */
    uint64_t dropped;            /* open connections lost while running */
    uint64_t pending_stats;      /* __stats replies still awaited */
    struct swload_hist hist;     /* round-trip (or delivery) latencies */
    struct swload_sub_stats sub; /* subscribe: deliveries, gaps */
    struct sw_ws_rng rng;        /* mask keys */
    uint8_t pattern[251 * 2];    /* payload pattern source */
    uint8_t rbuf[READ_BUF];      /* read buffer */
};

static void cc_kick(struct cconn *c);
static void open_more(struct cworker *w);

/* ---- output ------------------------------------------------------------ */

/* Append one masked client frame (RFC 6455 5.3: fresh key per frame). The
 * payload is `n` pattern bytes, or `data` when not NULL. */
static bool
frame_put(struct cconn *c, uint8_t opcode, const void *data, size_t n)
{
    uint8_t key[4];
    uint8_t hdr[SW_WS_MAX_HEADER];
    size_t hl;

    if (c->out_cap - c->out_len < n + SW_WS_MAX_HEADER) {
        return false;
    }
    sw_ws_rng_key(&c->w->rng, key);
    hl = sw_ws_frame_encode(hdr, true, opcode, key, n);
    memcpy(c->out + c->out_len, hdr, hl);
    uint8_t *p = c->out + c->out_len + hl;
    if (data != NULL) {
        memcpy(p, data, n);
    } else {
        for (size_t i = 0; i < n; i += 251) {
            memcpy(p + i, c->w->pattern, SW_MIN((size_t)251, n - i));
        }
    }
    sw_ws_mask(p, n, key, 0);
    c->out_len += hl + n;
    return true;
}

static void
cc_fail(struct cconn *c, bool error)
{
    struct cworker *w = c->w;

    if (c->state == CC_DEAD || c->state == CC_DONE) {
        return;
    }
    if (c->state == CC_OPEN) {
        if (!w->stopping) {
            w->dropped++;
        }
    } else {
        w->inflight--;
        w->nfinished++;
    }
    if (error) {
        w->errors++;
    }
    c->state = CC_DEAD;
    event_del(c->rev);
    event_del(c->wev);
    close(c->fd);
    c->fd = -1;
    if (c->stats_asked && !c->stats_done) {
        c->stats_done = true;
        w->pending_stats--;
    }
    if (!w->measuring && !w->stopping) {
        open_more(w);
    }
}

/* Write what is queued; arm EV_WRITE if the socket is full. */
static void
cc_flush(struct cconn *c)
{
    while (c->out_pos < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_pos, c->out_len - c->out_pos);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                event_add(c->wev, NULL);
                return;
            }
            cc_fail(c, true);
            return;
        }
        c->out_pos += (size_t)n;
    }
    c->out_pos = 0;
    c->out_len = 0;
    event_del(c->wev);
}

/* Throughput: refill the batch with frames, then write. */
static void
tp_fill(struct cconn *c)
{
    while (c->state == CC_OPEN && !c->w->stopping) {
        if (c->pong_due && frame_put(c, SW_WS_OP_PONG, c->pong, c->pong_len)) {
            c->pong_due = false;
        }
        /* Fill up to TP_BUF only: the rest of out is kept for a pong and
         * the final __stats. */
        while (c->out_len < TP_BUF &&
               frame_put(c, SW_WS_OP_BINARY, NULL, (size_t)c->w->cl->size)) {
            c->sent_frames++;
        }
        cc_flush(c);
        if (c->out_len > 0) {
            return; /* socket full: EV_WRITE resumes */
        }
    }
}

static void
cc_send_next(struct cconn *c)
{
    struct cworker *w = c->w;

    if (c->state != CC_OPEN || w->stopping) {
        return;
    }
    if (c->pong_due && frame_put(c, SW_WS_OP_PONG, c->pong, c->pong_len)) {
        c->pong_due = false;
    }
    switch (w->cl->sc) {
    case SC_ECHO:
    case SC_CONCURRENT:
    case SC_LARGE:
        frame_put(c, SW_WS_OP_BINARY, NULL, (size_t)w->cl->size);
        break;
    case SC_PING: {
        uint64_t t = swload_now_ns();
        frame_put(c, SW_WS_OP_PING, &t, sizeof(t));
        break;
    }
    case SC_THROUGHPUT:
        tp_fill(c);
        return;
    case SC_IDLE:
    case SC_SUBSCRIBE:
        cc_flush(c);
        return;
    }
    c->waiting = true;
    c->sent_ns = swload_now_ns();
    cc_flush(c);
}

static void
cc_kick(struct cconn *c)
{
    cc_send_next(c);
}

/* ---- input ------------------------------------------------------------- */

/* A whole frame was received (payload counted; control payload in ctl). */
static void
on_frame(struct cconn *c)
{
    struct cworker *w = c->w;
    const struct sw_ws_frame *f = &c->in.fr;
    uint64_t t = swload_now_ns();

    switch (f->opcode) {
    case SW_WS_OP_PING:
        /* Frames in out are whole, so a pong can always go behind them;
         * without room it waits for the next send (RFC 6455 5.5.3 allows a
         * late pong, answering the most recent ping). */
        memcpy(c->pong, c->in.ctl, c->in.ctl_len);
        c->pong_len = c->in.ctl_len;
        c->pong_due = !frame_put(c, SW_WS_OP_PONG, c->pong, c->pong_len);
        if (!c->pong_due && c->out_pos == 0) {
            cc_flush(c);
        }
        return;
    case SW_WS_OP_PONG:
        if (w->cl->sc == SC_PING && c->waiting) {
            c->waiting = false;
            if (w->measuring) {
                swload_hist_add(&w->hist, t - c->sent_ns);
                w->msgs++;
            }
            cc_send_next(c);
        }
        return;
    case SW_WS_OP_CLOSE:
        if (w->stopping) {
            c->state = CC_DONE;
            event_del(c->rev);
            event_del(c->wev);
            close(c->fd);
            c->fd = -1;
        } else {
            cc_fail(c, true);
        }
        return;
    default:
        break;
    }
    if (w->cl->sc == SC_SUBSCRIBE) {
        if (f->fin) {
            swload_sub_message(&w->sub, &c->sub, c->in.ctl, c->in.ctl_len,
                               f->payload_len, t,
                               w->measuring ? &w->hist : NULL);
        }
        return;
    }
    if (c->stats_asked && !c->stats_done && f->opcode == SW_WS_OP_TEXT) {
        /* {"pings":N,"pongs":N,"frames":N} from the sink */
        char text[SW_WS_MAX_CONTROL + 1];
        memcpy(text, c->in.ctl, c->in.ctl_len);
        text[c->in.ctl_len] = '\0';
        const char *fp = strstr(text, "\"frames\":");
        if (fp != NULL) {
            c->acked = strtoull(fp + 9, NULL, 10);
        }
        c->stats_done = true;
        if (--w->pending_stats == 0) {
            event_base_loopexit(w->base, NULL);
        }
        return;
    }
    if (c->waiting && w->cl->sc != SC_PING && w->cl->sc != SC_THROUGHPUT) {
        c->waiting = false;
        if (f->payload_len != w->cl->size || !f->fin) {
            w->errors++;
        } else if (w->measuring) {
            swload_hist_add(&w->hist, t - c->sent_ns);
            w->msgs++;
            w->bytes += f->payload_len;
        }
        cc_send_next(c);
    }
}

/* Feed received bytes to the frame parser. */
static void
frames_feed(struct cconn *c, const uint8_t *p, size_t len)
{
    while (c->state == CC_OPEN) {
        int rc = swload_frames_next(&c->in, &p, &len);
        if (rc == 0) {
            return;
        }
        if (rc < 0) {
            cc_fail(c, true);
            return;
        }
        on_frame(c);
    }
}

static void
all_open(struct cworker *w)
{
    struct timeval tv = {(time_t)(w->cl->duration_ms / 1000),
                         (suseconds_t)(w->cl->duration_ms % 1000) * 1000};

    w->start_ns = swload_now_ns();
    w->measuring = true;
    if ((w->cl->sc == SC_IDLE || w->cl->sc == SC_SUBSCRIBE) &&
        !w->cl->json_only) {
        printf("all %zu connections open (%zu failed) after %.3f s, "
               "%s for %.1f s\n",
               w->nopen, w->nconns - w->nopen,
               (double)(w->start_ns - w->open_ns) / 1e9,
               w->cl->sc == SC_IDLE ? "holding" : "measuring",
               (double)w->cl->duration_ms / 1000);
        fflush(stdout);
    }
    evtimer_add(w->timer, &tv);
    for (size_t i = 0; i < w->nconns; i++) {
        if (w->conns[i].state == CC_OPEN) {
            cc_kick(&w->conns[i]);
        }
    }
}

static void
hs_done(struct cconn *c)
{
    struct cworker *w = c->w;
    char accept[SW_WS_ACCEPT_LEN + 1];
    char *end = memmem(c->hs, c->hs_len, "\r\n\r\n", 4);
    size_t head = (size_t)(end - c->hs) + 4;

    sw_ws_accept_compute((struct sw_str){c->key, SW_WS_KEY_LEN}, accept);
    c->hs[head - 1] = '\0';
    if (strncmp(c->hs, "HTTP/1.1 101", 12) != 0 ||
        strcasestr(c->hs, "\nsec-websocket-accept:") == NULL ||
        strstr(c->hs, accept) == NULL) {
        if (!c->w->cl->json_only) {
            fprintf(stderr, "swload: handshake refused: %.*s\n",
                    (int)strcspn(c->hs, "\r\n"), c->hs);
        }
        cc_fail(c, true);
        return;
    }
    c->state = CC_OPEN;
    w->inflight--;
    w->nopen++;
    w->nfinished++;
    sw_ws_decoder_init(&c->in.dec, SW_WS_PEER_SERVER, 0, 0);
    size_t extra = c->hs_len - head;
    uint8_t rest[HS_MAX];
    memcpy(rest, c->hs + head, extra);
    free(c->hs);
    c->hs = NULL;
    if (w->measuring) {
        cc_kick(c);
    }
    frames_feed(c, rest, extra);
    if (!w->measuring) {
        open_more(w);
    }
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct cconn *c = arg;
    struct cworker *w = c->w;

    SW_UNUSED(what);
    for (;;) {
        if (c->state == CC_HANDSHAKE) {
            ssize_t n = read(fd, c->hs + c->hs_len, HS_MAX - 1 - c->hs_len);
            if (n <= 0) {
                if (n < 0 && errno == EAGAIN) {
                    return;
                }
                cc_fail(c, true);
                return;
            }
            c->hs_len += (size_t)n;
            if (memmem(c->hs, c->hs_len, "\r\n\r\n", 4) != NULL) {
                hs_done(c);
            } else if (c->hs_len == HS_MAX - 1) {
                cc_fail(c, true);
                return;
            }
            continue;
        }
        if (c->state != CC_OPEN) {
            return;
        }
        ssize_t n = read(fd, w->rbuf, sizeof(w->rbuf));
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                return;
            }
            cc_fail(c, !w->stopping);
            return;
        }
        frames_feed(c, w->rbuf, (size_t)n);
        if ((size_t)n < sizeof(w->rbuf)) {
            return;
        }
    }
}

static void
on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct cconn *c = arg;
    struct cworker *w = c->w;
    char req[1024];
    int err = 0;
    socklen_t el = sizeof(err);

    SW_UNUSED(what);
    if (c->state == CC_CONNECTING) {
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            cc_fail(c, true);
            return;
        }
        /* --channels: connection i asks for PATH + (i mod N) */
        char suffix[24] = "";
        if (w->cl->channels > 0) {
            snprintf(suffix, sizeof(suffix), "%" PRIu64,
                     c->index % w->cl->channels);
        }
        int n = snprintf(req, sizeof(req),
                         "GET %s%s HTTP/1.1\r\n"
                         "Host: %s\r\n"
                         "Upgrade: websocket\r\n"
                         "Connection: Upgrade\r\n"
                         "Sec-WebSocket-Key: %s\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         w->cl->path, suffix, w->cl->host, c->key);
        /* A fresh socket's buffer takes a small request whole. */
        if (write(fd, req, (size_t)n) != n) {
            cc_fail(c, true);
            return;
        }
        c->state = CC_HANDSHAKE;
        event_del(c->wev);
        event_add(c->rev, NULL);
        return;
    }
    if (c->state != CC_OPEN) {
        event_del(c->wev);
        return;
    }
    cc_flush(c);
    if (c->out_len == 0 && w->cl->sc == SC_THROUGHPUT) {
        tp_fill(c);
    }
}

/* ---- opening ----------------------------------------------------------- */

static void
cc_start(struct cconn *c)
{
    struct cworker *w = c->w;
    const struct client *cl = w->cl;
    int one = 1;
    size_t size = (size_t)cl->size;

    w->inflight++;
    c->state = CC_CONNECTING;
    c->fd = socket(cl->dst.ss_family,
                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        goto fail;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (cl->nsrc > 0) {
        const struct sockaddr_storage *s = &cl->src[c->index % cl->nsrc];
        socklen_t sl = s->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                : sizeof(struct sockaddr_in);
        /* Let connect() pick the port per 4-tuple, so that each source
         * address gives its own ~28k ports toward the one destination. */
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                   sizeof(one));
        if (bind(c->fd, (const struct sockaddr *)s, sl) != 0) {
            goto fail;
        }
    }
    if (connect(c->fd, (const struct sockaddr *)&cl->dst, cl->dstlen) != 0 &&
        errno != EINPROGRESS) {
        goto fail;
    }
    c->rev = event_new(w->base, c->fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = event_new(w->base, c->fd, EV_WRITE | EV_PERSIST, on_writable, c);
    c->hs = malloc(HS_MAX);
    if (cl->sc == SC_THROUGHPUT) {
        c->out_cap = TP_BUF + size + 2 * SW_WS_MAX_HEADER + SW_WS_MAX_CONTROL;
    } else if (cl->sc == SC_IDLE || cl->sc == SC_SUBSCRIBE) {
        c->out_cap = 2 * (SW_WS_MAX_HEADER + SW_WS_MAX_CONTROL);
    } else {
        c->out_cap = size + 3 * SW_WS_MAX_HEADER + 2 * SW_WS_MAX_CONTROL;
    }
    c->out = malloc(c->out_cap);
    if (c->rev == NULL || c->wev == NULL || c->hs == NULL || c->out == NULL) {
        goto fail;
    }
    sw_ws_handshake_key(&w->rng, c->key);
    event_add(c->wev, NULL);
    return;
fail:
    if (!cl->json_only) {
        fprintf(stderr, "swload: connection %" PRIu64 ": %s\n", c->index,
                strerror(errno));
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->state = CC_DEAD;
    w->inflight--;
    w->nfinished++;
    w->errors++;
}

static void
open_more(struct cworker *w)
{
    while (w->next_open < w->nconns && w->inflight < MAX_INFLIGHT_OPEN) {
        cc_start(&w->conns[w->next_open++]);
    }
    if (!w->measuring && !w->stopping && w->nfinished == w->nconns) {
        all_open(w);
    }
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cworker *w = arg;
    struct timeval tv = {STATS_WAIT_MS / 1000, 0};

    SW_UNUSED(fd);
    SW_UNUSED(what);
    if (w->stopping) {
        event_base_loopexit(w->base, NULL); /* __stats timeout */
        return;
    }
    w->stopping = true;
    w->measuring = false;
    w->end_ns = swload_now_ns();
    if (w->cl->sc == SC_SUBSCRIBE && !w->cl->json_only) {
        /* Before the connections close: a caller reading CPU time around
         * the measurement takes this line as its end. */
        printf("measured %.3f s\n", (double)(w->end_ns - w->start_ns) / 1e9);
        fflush(stdout);
    }
    if (w->cl->sc != SC_THROUGHPUT) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    for (size_t i = 0; i < w->nconns; i++) {
        struct cconn *c = &w->conns[i];
        if (c->state != CC_OPEN) {
            continue;
        }
        if (c->pong_due) {
            frame_put(c, SW_WS_OP_PONG, c->pong, c->pong_len);
        }
        if (frame_put(c, SW_WS_OP_TEXT, "__stats", 7)) {
            c->stats_asked = true;
            w->pending_stats++;
            cc_flush(c);
        }
    }
    if (w->pending_stats == 0) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    evtimer_add(w->timer, &tv);
}

static void *
cworker_run(void *arg)
{
    struct cworker *w = arg;

    w->open_ns = swload_now_ns();
    open_more(w);
    event_base_dispatch(w->base);
    if (!w->stopping) {
        w->end_ns = swload_now_ns();
    }
    return NULL;
}

static void
cworker_fini(struct cworker *w)
{
    for (size_t i = 0; i < w->nconns; i++) {
        struct cconn *c = &w->conns[i];
        if (c->fd >= 0) {
            if (c->state == CC_OPEN) {
                /* Best effort close 1000 (masked), then go. */
                uint8_t code[2] = {0x03, 0xe8};
                c->out_len = c->out_pos = 0;
                if (c->out_cap >= 2 + SW_WS_MAX_HEADER &&
                    frame_put(c, SW_WS_OP_CLOSE, code, 2)) {
                    ssize_t n = write(c->fd, c->out, c->out_len);
                    SW_UNUSED(n);
                }
            }
            close(c->fd);
        }
        if (c->rev != NULL) {
            event_free(c->rev);
        }
        if (c->wev != NULL) {
            event_free(c->wev);
        }
        free(c->out);
        free(c->hs);
    }
    free(w->conns);
    if (w->timer != NULL) {
        event_free(w->timer);
    }
    if (w->base != NULL) {
        event_base_free(w->base);
    }
    sw_ws_rng_fini(&w->rng);
}

/* Run one phase with cl->size; fills r. Returns 0 or 1 (setup failure). */
static int
run_phase(struct client *cl, struct swload_result *r)
{
    struct cworker *ws = calloc(cl->nthreads, sizeof(*ws));
    int rc = 1;

    memset(r, 0, sizeof(*r));
    swload_hist_init(&r->hist);
    r->size = cl->size;
    if (ws == NULL) {
        goto out;
    }
    for (unsigned t = 0; t < cl->nthreads; t++) {
        struct cworker *w = &ws[t];
        w->cl = cl;
        w->nconns = (size_t)(cl->conns / cl->nthreads +
                             (t < cl->conns % cl->nthreads ? 1 : 0));
        w->conns = calloc(SW_MAX(w->nconns, 1), sizeof(*w->conns));
        w->base = event_base_new();
        if (w->conns == NULL || w->base == NULL ||
            sw_ws_rng_init(&w->rng) != SW_OK) {
            goto out;
        }
        w->timer = evtimer_new(w->base, on_timer, w);
        if (w->timer == NULL) {
            goto out;
        }
        swload_hist_init(&w->hist);
        for (size_t i = 0; i < sizeof(w->pattern); i++) {
            w->pattern[i] = (uint8_t)(i % 251);
        }
        for (size_t i = 0; i < w->nconns; i++) {
            w->conns[i].w = w;
            w->conns[i].fd = -1;
            w->conns[i].index = t + i * cl->nthreads;
        }
    }
    for (unsigned t = 0; t < cl->nthreads; t++) {
        if (pthread_create(&ws[t].tid, NULL, cworker_run, &ws[t]) != 0) {
            goto out;
        }
    }
    double secs = 0;
    for (unsigned t = 0; t < cl->nthreads; t++) {
        struct cworker *w = &ws[t];
        pthread_join(w->tid, NULL);
        if (w->start_ns > 0 && w->end_ns > w->start_ns) {
            secs = SW_MAX(secs, (double)(w->end_ns - w->start_ns) / 1e9);
        }
        if (w->start_ns > 0) {
            r->connect_s =
                SW_MAX(r->connect_s, (double)(w->start_ns - w->open_ns) / 1e9);
        }
        swload_sub_merge(&r->sub, &w->sub);
        r->msgs += w->msgs;
        r->bytes += w->bytes;
        r->errors += w->errors;
        r->dropped += w->dropped;
        r->opened += w->nopen;
        for (size_t i = 0; i < w->nconns; i++) {
            if (cl->sc == SC_THROUGHPUT) {
                r->msgs += w->conns[i].sent_frames;
                r->bytes += w->conns[i].sent_frames * cl->size;
                r->acked += w->conns[i].acked;
            }
        }
        swload_hist_merge(&r->hist, &w->hist);
    }
    r->secs = secs;
    rc = 0;
out:
    if (ws != NULL) {
        for (unsigned t = 0; t < cl->nthreads; t++) {
            cworker_fini(&ws[t]);
        }
        free(ws);
    }
    return rc;
}

static void
client_usage(void)
{
    fputs("usage: swload client --url ws://HOST:PORT/PATH"
          " --scenario echo|concurrent|throughput|large|ping|idle|subscribe\n"
          "       [--connections N] [--size BYTES] [--duration SEC]"
          " [--threads N] [--source-addrs A,B,...] [--json-only]\n"
          "       swload subscribe --url ws://HOST:PORT/PATH [--clients N]"
          " [--duration SEC] [--channels N] [...]\n",
          stderr);
}

int
swload_client_main(int argc, char **argv, bool subscribe)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"scenario", required_argument, NULL, 's'},
        {"connections", required_argument, NULL, 'c'},
        {"clients", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 'z'},
        {"duration", required_argument, NULL, 'd'},
        {"threads", required_argument, NULL, 't'},
        {"source-addrs", required_argument, NULL, 'a'},
        {"json-only", no_argument, NULL, 'j'},
        {"channels", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct client *cl = calloc(1, sizeof(*cl));
    struct swload_result *r = calloc(1, sizeof(*r));
    const char *url = NULL;
    int rc = 2;
    int opt;
    uint64_t v;
    bool have_conns = false, have_size = false;
    bool failed = false;
    double dur = 10;

    if (cl == NULL || r == NULL) {
        goto out;
    }
    cl->sc = subscribe ? SC_SUBSCRIBE : SC_ECHO;
    cl->nthreads = 1;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "u:s:c:z:d:t:a:n:jh", opts, NULL)) !=
           -1) {
        switch (opt) {
        case 'u':
            url = optarg;
            break;
        case 's': {
            size_t i;
            for (i = 0; i < SW_NELEMS(scenario_names); i++) {
                if (strcmp(optarg, scenario_names[i]) == 0) {
                    break;
                }
            }
            if (i == SW_NELEMS(scenario_names)) {
                fprintf(stderr, "swload: unknown scenario %s\n", optarg);
                goto out;
            }
            cl->sc = (enum scenario)i;
            break;
        }
        case 'c':
            if (!swload_parse_u64(optarg, &cl->conns) || cl->conns == 0) {
                goto bad;
            }
            have_conns = true;
            break;
        case 'z':
            if (!swload_parse_u64(optarg, &cl->size) || cl->size > (1u << 30)) {
                goto bad;
            }
            have_size = true;
            break;
        case 'd': {
            char *end;
            dur = strtod(optarg, &end);
            if (*end != '\0' || dur <= 0) {
                goto bad;
            }
            break;
        }
        case 't':
            if (!swload_parse_u64(optarg, &v) || v == 0 || v > 256) {
                goto bad;
            }
            cl->nthreads = (unsigned)v;
            break;
        case 'a':
            if (swload_addrs_parse(optarg, cl->src, SWLOAD_MAX_ADDRS,
                                   &cl->nsrc) != SW_OK) {
                goto bad;
            }
            break;
        case 'j':
            cl->json_only = true;
            break;
        case 'n':
            if (!swload_parse_u64(optarg, &cl->channels) || cl->channels == 0) {
                goto bad;
            }
            break;
        default:
            client_usage();
            goto out;
        }
    }
    if (url == NULL || optind != argc ||
        swload_url_parse(url, &cl->dst, &cl->dstlen, cl->host, sizeof(cl->host),
                         cl->path, sizeof(cl->path)) != SW_OK) {
        client_usage();
        goto out;
    }
    cl->duration_ms = (uint64_t)(dur * 1000);
    if (!have_conns) {
        cl->conns = cl->sc == SC_CONCURRENT  ? 100
                    : cl->sc == SC_IDLE      ? 10000
                    : cl->sc == SC_SUBSCRIBE ? 10
                                             : 1;
    }
    if (!have_size) {
        cl->size = cl->sc == SC_LARGE ? 1024 * 1024 : 64;
    }
    if (cl->nthreads > cl->conns) {
        cl->nthreads = (unsigned)cl->conns;
    }
    signal(SIGPIPE, SIG_IGN);
    rc = 1;
    if (run_phase(cl, r) != 0) {
        goto out;
    }
    swload_report(scenario_names[cl->sc], cl->conns, r, cl->json_only);
    failed = r->opened != cl->conns || r->errors > 0;
    if (cl->sc == SC_THROUGHPUT && !have_size) {
        cl->size = 4096;
        if (run_phase(cl, r) != 0) {
            goto out;
        }
        swload_report(scenario_names[cl->sc], cl->conns, r, cl->json_only);
    }
    failed |= r->opened != cl->conns || r->errors > 0;
    rc = failed ? 1 : 0;
    goto out;
bad:
    fprintf(stderr, "swload: bad value %s\n", optarg);
out:
    free(cl);
    free(r);
    return rc;
}
