/*
 * swload_bcast.c - `swload broadcast`: a WebSocket backend that sends one
 * message to every connection it holds, every --interval milliseconds (or
 * as fast as the sockets take them with --interval 0).
 *
 *   swload broadcast --listen ADDR [--listen ADDR...] [--interval MS]
 *                    [--size BYTES]
 *
 * Every broadcast is one frame, built once: a binary message of --size
 * bytes (default 64, at least 16) whose first 16 bytes are the sequence
 * number and the CLOCK_MONOTONIC time of the send (ns), both little endian,
 * then the pattern byte i % 251. The same bytes go to every connection
 * with one write() each, so the backend's cost per delivery is a plain
 * send of the frame (the "floor" of the fan-out benchmark). Receivers on
 * this machine compute the delivery latency from the time stamp and check
 * the order from the sequence number (`swload subscribe`).
 *
 * Backpressure: a write that the socket does not take whole leaves the rest
 * in the connection's output buffer (at most OUT_CAP bytes, whole frames
 * only) and arms EV_WRITE. A broadcast that finds no room there skips that
 * connection (counted as `skipped`; the receiver sees a sequence gap), so
 * memory stays bounded. With --interval 0 the next broadcast waits until
 * every output buffer is empty: the rate is what the slowest socket takes.
 *
 * A request without Upgrade gets an HTTP answer: `GET /stats` a JSON line
 * with the counters (see stats_format), anything else 404. The same line is
 * printed on stdout on SIGUSR1 and at exit (SIGTERM, SIGINT).
 *
 * Connection states:
 *   HEAD --upgrade, 101 sent--> WS --close frame, error, EOF--> freed
 *   HEAD --GET /stats, answered--> freed
 *
 * One thread, one event_base; owns every connection (held in an array for
 * the broadcast loop: index kept in the connection, swap-remove on close).
 * Received data frames are read and discarded, pings get a pong, a close
 * gets a close.
 */
#include "swload.h"

#include <shockwave/ws.h>

#include <event2/event.h>
#include <event2/listener.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#define OUT_CAP (256 * 1024) /* queued output per connection */
#define HEAD_MAX 8192        /* request head bytes before 431 */
#define READ_BUF 65536       /* shared read buffer */
#define MAX_SIZE 65535       /* --size limit: a 4-byte frame header */
#define BURST_MAX 64         /* broadcasts sent at once to catch up */

enum bstate {
    B_HEAD = 0, /* reading the request head */
    B_WS,       /* upgraded: held and broadcast to */
    B_CLOSED,   /* freed at the end of the callback */
};

struct bconn;

struct bcast {
    struct event_base *base;                           /* owned */
    struct evconnlistener *ls[SWLOAD_MAX_LISTENS];     /* owned */
    struct sockaddr_storage addrs[SWLOAD_MAX_LISTENS]; /* --listen */
    socklen_t addrlens[SWLOAD_MAX_LISTENS];            /* bytes of addrs[i] */
    size_t nlistens;                                   /* entries in addrs */
    struct event *timer;    /* owned: next broadcast */
    struct event *sigs[3];  /* owned: SIGTERM, SIGINT, SIGUSR1 */
    uint64_t interval_ns;   /* between broadcasts; 0 = as fast as possible */
    size_t size;            /* payload bytes */
    struct bconn *conns;    /* owned: every connection (list) */
    struct bconn **held;    /* owned array: upgraded connections */
    size_t nheld;           /* entries in held */
    size_t held_cap;        /* slots in held */
    size_t backlogged;      /* held connections with queued output */
    uint64_t next_due;      /* when the next broadcast is due (ns) */
    uint64_t start_ns;      /* process start, for the stats line */
    uint64_t seq;           /* broadcasts sent so far */
    uint64_t accepted;      /* TCP connections accepted */
    uint64_t upgraded;      /* WebSocket handshakes answered */
    uint64_t held_max;      /* most connections held at once */
    uint64_t sends;         /* frames written or queued to a connection */
    uint64_t skipped;       /* frames not sent: output buffer full */
    uint64_t late;          /* times the schedule fell behind by a burst */
    uint64_t received;      /* data frames received (discarded) */
    uint8_t *frame;         /* owned: the frame being broadcast */
    size_t frame_len;       /* bytes at frame */
    uint8_t rbuf[READ_BUF]; /* read buffer */
};

struct bconn {
    struct bcast *b;         /* borrowed (owner) */
    int fd;                  /* owned socket */
    struct event *rev;       /* owned: EV_READ|EV_PERSIST */
    struct event *wev;       /* owned: EV_WRITE|EV_PERSIST, added on need */
    enum bstate state;       /* see the diagram */
    bool is_held;            /* in b->held (from 101 until freed) */
    size_t slot;             /* index in b->held when is_held */
    struct bconn *prev;      /* borrowed: b->conns list */
    struct bconn *next;      /* borrowed: b->conns list */
    char *head;              /* owned: request head so far (B_HEAD) */
    size_t head_len;         /* bytes in head */
    uint8_t *out;            /* owned: queued output, NULL when none */
    size_t out_len;          /* bytes queued */
    size_t out_pos;          /* bytes of out already written */
    struct swload_frames in; /* input frames */
};

/* ---- connections ------------------------------------------------------- */

static void
set_state(struct bconn *c, enum bstate s)
{
    SW_ASSERT(c->state != B_CLOSED);
    SW_ASSERT(s != B_HEAD);
    c->state = s;
}

static void
held_remove(struct bconn *c)
{
    struct bcast *b = c->b;

    b->held[c->slot] = b->held[b->nheld - 1];
    b->held[c->slot]->slot = c->slot;
    b->nheld--;
    if (c->out_len > 0) {
        b->backlogged--;
    }
}

static void
bconn_free(struct bconn *c)
{
    if (c->is_held) {
        held_remove(c);
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        c->b->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    if (c->rev != NULL) {
        event_free(c->rev);
    }
    if (c->wev != NULL) {
        event_free(c->wev);
    }
    close(c->fd);
    free(c->head);
    free(c->out);
    free(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg);

static void
kick_if_drained(struct bcast *b)
{
    static const struct timeval zero = {0, 0};

    if (b->interval_ns == 0 && b->backlogged == 0 && b->nheld > 0 &&
        !evtimer_pending(b->timer, NULL)) {
        evtimer_add(b->timer, &zero);
    }
}

/* Queue n bytes behind what is waiting (whole frames only). Returns false
 * when they do not fit in OUT_CAP. */
static bool
queue(struct bconn *c, const uint8_t *p, size_t n)
{
    if (c->out == NULL) {
        c->out = malloc(OUT_CAP);
        if (c->out == NULL) {
            return false;
        }
    }
    if (c->out_pos > 0 && c->out_len + n > OUT_CAP) {
        memmove(c->out, c->out + c->out_pos, c->out_len - c->out_pos);
        c->out_len -= c->out_pos;
        c->out_pos = 0;
    }
    if (c->out_len + n > OUT_CAP) {
        return false;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return true;
}

/* Send p[0..n) after anything queued; the rest waits for EV_WRITE.
 * Returns false when it could not be sent nor queued (output full). */
static bool
send_bytes(struct bconn *c, const uint8_t *p, size_t n)
{
    struct bcast *b = c->b;
    ssize_t w = 0;

    if (c->out_len == 0) {
        w = write(c->fd, p, n);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                /* Dead: the read event sees the shutdown and frees it. */
                shutdown(c->fd, SHUT_RDWR);
                return true;
            }
            w = 0;
        }
        if ((size_t)w == n) {
            return true;
        }
        c->out_pos = 0;
        if (!queue(c, p + w, n - (size_t)w)) { /* n <= OUT_CAP: no memory */
            shutdown(c->fd, SHUT_RDWR);
            return true;
        }
        if (c->is_held) {
            b->backlogged++;
        }
        event_add(c->wev, NULL);
        return true;
    }
    return queue(c, p, n);
}

static void
flush(struct bconn *c)
{
    while (c->out_pos < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_pos, c->out_len - c->out_pos);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            set_state(c, B_CLOSED);
            return;
        }
        c->out_pos += (size_t)n;
    }
    c->out_pos = 0;
    c->out_len = 0;
    event_del(c->wev);
    if (c->is_held) {
        c->b->backlogged--;
        kick_if_drained(c->b);
    }
}

/* ---- broadcast --------------------------------------------------------- */

static void
broadcast(struct bcast *b, uint64_t now)
{
    uint8_t *pl = b->frame + (b->frame_len - b->size);
    uint64_t seq = ++b->seq;

    for (int i = 0; i < 8; i++) {
        pl[i] = (uint8_t)(seq >> (8 * i));
        pl[8 + i] = (uint8_t)(now >> (8 * i));
    }
    for (size_t i = 0; i < b->nheld; i++) {
        if (send_bytes(b->held[i], b->frame, b->frame_len)) {
            b->sends++;
        } else {
            b->skipped++;
        }
    }
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct bcast *b = arg;
    uint64_t now = swload_now_ns();
    int n = 0;

    SW_UNUSED(fd);
    SW_UNUSED(what);
    if (b->interval_ns == 0) {
        if (b->nheld > 0 && b->backlogged == 0) {
            broadcast(b, now);
        }
        kick_if_drained(b);
        return;
    }
    if (b->nheld == 0) {
        b->next_due = now + b->interval_ns; /* nobody to send to: no seq */
    }
    while (b->next_due <= now && n < BURST_MAX) {
        broadcast(b, swload_now_ns());
        b->next_due += b->interval_ns;
        n++;
    }
    if (b->next_due <= now) {
        b->late++;
        b->next_due = now + b->interval_ns;
    }
    uint64_t wait = b->next_due - SW_MIN(now, b->next_due);
    struct timeval tv = {(time_t)(wait / 1000000000u),
                         (suseconds_t)(wait % 1000000000u / 1000)};
    evtimer_add(b->timer, &tv);
}

/* ---- stats ------------------------------------------------------------- */

static size_t
stats_format(const struct bcast *b, char *out, size_t cap)
{
    struct rusage ru;
    uint64_t cpu_us = 0;

    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        cpu_us =
            (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
            (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    }
    int n = snprintf(
        out, cap,
        "{\"accepted\":%" PRIu64 ",\"upgraded\":%" PRIu64 ",\"held\":%zu"
        ",\"held_max\":%" PRIu64 ",\"broadcasts\":%" PRIu64
        ",\"sends\":%" PRIu64 ",\"skipped\":%" PRIu64 ",\"late\":%" PRIu64
        ",\"received\":%" PRIu64 ",\"size\":%zu,\"interval_us\":%.1f"
        ",\"cpu_us\":%" PRIu64 ",\"uptime_s\":%.3f}\n",
        b->accepted, b->upgraded, b->nheld, b->held_max, b->seq, b->sends,
        b->skipped, b->late, b->received, b->size, (double)b->interval_ns / 1e3,
        cpu_us, (double)(swload_now_ns() - b->start_ns) / 1e9);
    return n > 0 ? SW_MIN((size_t)n, cap - 1) : 0;
}

/* ---- requests ---------------------------------------------------------- */

static void
http_answer(struct bconn *c, unsigned status, const char *body, size_t n)
{
    char head[256];
    int hn = snprintf(head, sizeof(head),
                      "HTTP/1.1 %u %s\r\n"
                      "Content-Type: %s\r\n"
                      "Content-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      status, swload_reason(status),
                      status == 200 ? "application/json" : "text/plain", n);
    /* A fresh socket's buffer takes a small answer whole. */
    if (write(c->fd, head, (size_t)hn) == hn && n > 0) {
        ssize_t w = write(c->fd, body, n);
        SW_UNUSED(w);
    }
    shutdown(c->fd, SHUT_WR);
    set_state(c, B_CLOSED);
}

static void
ws_upgrade(struct bconn *c, const struct swload_req *r)
{
    struct bcast *b = c->b;
    char accept[SW_WS_ACCEPT_LEN + 1];
    char resp[512];
    int n;

    sw_ws_accept_compute(r->ws_key, accept);
    n = snprintf(resp, sizeof(resp),
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n",
                 accept);
    if (r->ws_protocol.len > 0 && r->ws_protocol.len < 200) {
        n += snprintf(resp + n, sizeof(resp) - (size_t)n,
                      "Sec-WebSocket-Protocol: %.*s\r\n",
                      (int)r->ws_protocol.len, r->ws_protocol.p);
    }
    n += snprintf(resp + n, sizeof(resp) - (size_t)n,
                  "X-Backend: broadcast\r\n\r\n");
    if (b->nheld == b->held_cap) {
        size_t cap = b->held_cap == 0 ? 1024 : 2 * b->held_cap;
        struct bconn **h = realloc(b->held, cap * sizeof(*h));
        if (h == NULL) {
            set_state(c, B_CLOSED);
            return;
        }
        b->held = h;
        b->held_cap = cap;
    }
    sw_ws_decoder_init(&c->in.dec, SW_WS_PEER_ANY,
                       SW_WS_RSV1 | SW_WS_RSV2 | SW_WS_RSV3, 0);
    set_state(c, B_WS);
    c->is_held = true;
    c->slot = b->nheld;
    b->held[b->nheld++] = c;
    b->held_max = SW_MAX(b->held_max, (uint64_t)b->nheld);
    b->upgraded++;
    send_bytes(c, (const uint8_t *)resp, (size_t)n);
    kick_if_drained(b);
}

static void
on_head(struct bconn *c, const uint8_t *p, size_t n)
{
    struct swload_req *r = NULL;
    char stats[512];

    if (c->head_len + n > HEAD_MAX) {
        http_answer(c, 431, "", 0);
        return;
    }
    memcpy(c->head + c->head_len, p, n);
    c->head_len += n;
    r = malloc(sizeof(*r));
    if (r == NULL) {
        set_state(c, B_CLOSED);
        return;
    }
    enum sw_status rc = swload_req_decode(r, c->head, c->head_len);
    if (rc == SW_AGAIN) {
        goto out;
    }
    if (rc != SW_OK) {
        http_answer(c, rc == SW_ETOOBIG ? 431 : 400, "", 0);
    } else if (r->ws_upgrade && r->ws_key.len > 0) {
        ws_upgrade(c, r);
    } else if (r->path.len == 6 && memcmp(r->path.p, "/stats", 6) == 0) {
        http_answer(c, 200, stats, stats_format(c->b, stats, sizeof(stats)));
    } else {
        http_answer(c, 404, "not found\n", 10);
    }
out:
    free(r);
}

/* A whole frame was read; control payloads are in ctl. */
static void
on_frame(struct bconn *c)
{
    uint8_t frame[SW_WS_MAX_HEADER + SW_WS_MAX_CONTROL];
    size_t hl;
    size_t n;

    switch (c->in.fr.opcode) {
    case SW_WS_OP_PING:
        /* One piece, so a full buffer never takes a header alone. */
        hl =
            sw_ws_frame_encode(frame, true, SW_WS_OP_PONG, NULL, c->in.ctl_len);
        memcpy(frame + hl, c->in.ctl, c->in.ctl_len);
        send_bytes(c, frame, hl + c->in.ctl_len);
        break;
    case SW_WS_OP_CLOSE:
        /* RFC 6455 5.5.1: answer with the code received, then close. */
        n = c->in.ctl_len >= 2 ? 2 : 0;
        hl = sw_ws_frame_encode(frame, true, SW_WS_OP_CLOSE, NULL, n);
        memcpy(frame + hl, c->in.ctl, n);
        if (c->out_len == 0) {
            ssize_t w = write(c->fd, frame, hl + n);
            SW_UNUSED(w);
        }
        set_state(c, B_CLOSED);
        break;
    case SW_WS_OP_PONG:
        break;
    default:
        if (c->in.fr.fin) {
            c->b->received++;
        }
        break;
    }
}

static void
on_ws_input(struct bconn *c, const uint8_t *p, size_t len)
{
    while (c->state == B_WS) {
        int rc = swload_frames_next(&c->in, &p, &len);
        if (rc == 0) {
            return;
        }
        if (rc < 0) {
            set_state(c, B_CLOSED);
            return;
        }
        on_frame(c);
    }
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct bconn *c = arg;
    struct bcast *b = c->b;

    SW_UNUSED(what);
    while (c->state != B_CLOSED) {
        ssize_t n = read(fd, b->rbuf, sizeof(b->rbuf));
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                break;
            }
            set_state(c, B_CLOSED);
            break;
        }
        if (c->state == B_HEAD) {
            on_head(c, b->rbuf, (size_t)n);
        } else {
            on_ws_input(c, b->rbuf, (size_t)n);
        }
        if ((size_t)n < sizeof(b->rbuf)) {
            break;
        }
    }
    if (c->state == B_CLOSED) {
        bconn_free(c);
    }
}

static void
on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct bconn *c = arg;

    SW_UNUSED(fd);
    SW_UNUSED(what);
    flush(c);
    if (c->state == B_CLOSED) {
        bconn_free(c);
    }
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
    struct bcast *b = arg;
    struct bconn *c = calloc(1, sizeof(*c));
    int one = 1;

    SW_UNUSED(l);
    SW_UNUSED(sa);
    SW_UNUSED(salen);
    b->accepted++;
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->b = b;
    c->fd = fd;
    c->state = B_HEAD;
    c->next = b->conns;
    if (b->conns != NULL) {
        b->conns->prev = c;
    }
    b->conns = c;
    c->head = malloc(HEAD_MAX);
    c->rev = event_new(b->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = event_new(b->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    if (c->head == NULL || c->rev == NULL || c->wev == NULL) {
        c->state = B_CLOSED;
        bconn_free(c);
        return;
    }
    event_add(c->rev, NULL);
}

/* ---- process ----------------------------------------------------------- */

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct bcast *b = arg;
    char stats[512];

    SW_UNUSED(what);
    if (sig == SIGUSR1) {
        fwrite(stats, 1, stats_format(b, stats, sizeof(stats)), stdout);
        fflush(stdout);
        return;
    }
    event_base_loopbreak(b->base);
}

static void
bcast_usage(void)
{
    fputs("usage: swload broadcast --listen ADDR [--listen ADDR...]"
          " [--interval MS] [--size BYTES]\n",
          stderr);
}

static int
bcast_args(struct bcast *b, int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"interval", required_argument, NULL, 'i'},
        {"size", required_argument, NULL, 'z'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t v;
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "l:i:z:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            if (b->nlistens == SWLOAD_MAX_LISTENS ||
                swload_addr_parse(optarg, &b->addrs[b->nlistens],
                                  &b->addrlens[b->nlistens]) != SW_OK) {
                fprintf(stderr, "swload: bad --listen %s\n", optarg);
                return 2;
            }
            b->nlistens++;
            break;
        case 'i': {
            char *end;
            double ms = strtod(optarg, &end);
            if (*end != '\0' || !(ms >= 0) || ms > 3600e3) {
                fprintf(stderr, "swload: bad --interval %s\n", optarg);
                return 2;
            }
            b->interval_ns = (uint64_t)(ms * 1e6);
            break;
        }
        case 'z':
            if (!swload_parse_u64(optarg, &v) || v < 16 || v > MAX_SIZE) {
                fprintf(stderr, "swload: bad --size %s (16 to %d)\n", optarg,
                        MAX_SIZE);
                return 2;
            }
            b->size = (size_t)v;
            break;
        default:
            bcast_usage();
            return 2;
        }
    }
    if (b->nlistens == 0 || optind != argc) {
        bcast_usage();
        return 2;
    }
    return 0;
}

static int
bcast_listen(struct bcast *b)
{
    unsigned flags =
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
    char text[80];

    for (size_t i = 0; i < b->nlistens; i++) {
        struct sockaddr *sa = (struct sockaddr *)&b->addrs[i];
        b->ls[i] = evconnlistener_new_bind(b->base, on_accept, b, flags, 4096,
                                           sa, (int)b->addrlens[i]);
        swload_addr_format(sa, text, sizeof(text));
        if (b->ls[i] == NULL) {
            fprintf(stderr, "swload: listen %s: %s\n", text, strerror(errno));
            return 1;
        }
        socklen_t sl = sizeof(b->addrs[i]);
        getsockname(evconnlistener_get_fd(b->ls[i]), sa, &sl);
        swload_addr_format(sa, text, sizeof(text));
        printf("listening on %s\n", text);
    }
    fflush(stdout);
    return 0;
}

int
swload_bcast_main(int argc, char **argv)
{
    static const int signums[3] = {SIGTERM, SIGINT, SIGUSR1};
    struct bcast *b = calloc(1, sizeof(*b));
    struct event_config *cfg = event_config_new();
    char stats[512];
    int rc = 2;

    if (b == NULL || cfg == NULL) {
        goto out;
    }
    b->interval_ns = 100 * 1000000u;
    b->size = 64;
    rc = bcast_args(b, argc, argv);
    if (rc != 0) {
        goto out;
    }
    rc = 1;
    signal(SIGPIPE, SIG_IGN);
    /* Sub-millisecond intervals need timerfd, not epoll's ms timeout. */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    b->base = event_base_new_with_config(cfg);
    b->frame = malloc(SW_WS_MAX_HEADER + b->size);
    if (b->base == NULL || b->frame == NULL) {
        goto out;
    }
    b->frame_len =
        sw_ws_frame_encode(b->frame, true, SW_WS_OP_BINARY, NULL, b->size);
    for (size_t i = 0; i < b->size; i++) {
        b->frame[b->frame_len + i] = (uint8_t)(i % 251);
    }
    b->frame_len += b->size;
    b->timer = evtimer_new(b->base, on_timer, b);
    if (b->timer == NULL || bcast_listen(b) != 0) {
        goto out;
    }
    for (size_t i = 0; i < SW_NELEMS(signums); i++) {
        b->sigs[i] = evsignal_new(b->base, signums[i], on_signal, b);
        if (b->sigs[i] == NULL) {
            goto out;
        }
        evsignal_add(b->sigs[i], NULL);
    }
    b->start_ns = swload_now_ns();
    b->next_due = b->start_ns + b->interval_ns;
    if (b->interval_ns > 0) {
        struct timeval tv = {
            (time_t)(b->interval_ns / 1000000000u),
            (suseconds_t)(b->interval_ns % 1000000000u / 1000)};
        evtimer_add(b->timer, &tv);
    }
    event_base_dispatch(b->base);
    fwrite(stats, 1, stats_format(b, stats, sizeof(stats)), stdout);
    fflush(stdout);
    rc = 0;
out:
    if (b != NULL) {
        while (b->conns != NULL) {
            bconn_free(b->conns);
        }
        for (size_t i = 0; i < SW_NELEMS(b->sigs); i++) {
            if (b->sigs[i] != NULL) {
                event_free(b->sigs[i]);
            }
        }
        for (size_t i = 0; i < b->nlistens; i++) {
            if (b->ls[i] != NULL) {
                evconnlistener_free(b->ls[i]);
            }
        }
        if (b->timer != NULL) {
            event_free(b->timer);
        }
        if (b->base != NULL) {
            event_base_free(b->base);
        }
        free(b->held);
        free(b->frame);
        free(b);
    }
    if (cfg != NULL) {
        event_config_free(cfg);
    }
    return rc;
}
