/*
 * ws_conformance_test.c - RFC 6455 conformance through the gateway: the
 * gateway must be transparent.
 *
 * Every case of tests/conformance/cases.h (Autobahn's categories) is run
 * twice per backend: once straight against the backend, once through the
 * gateway (tests/conf/conformance.conf), and the two outcomes must be the
 * same. Backends: `swload echo` (ours; it echoes frame by frame and polices
 * little on purpose) and the npm `ws` package (tests/js/echo_server.js; it
 * reassembles messages and polices everything).
 *
 *   case steps --build--> masked byte stream --pump--> server
 *                                              <--     frames --> outcome
 *
 * The pump writes and reads at the same time (poll, non-blocking socket),
 * so a 16 MiB echo never deadlocks, and payloads are hashed, not stored.
 * An outcome is what a client can observe:
 *   - data frames in order: FIN, RSV, opcode, length, payload digest
 *   - pongs in order (compared apart from the data frames: when a ping sits
 *     between fragments, the gateway answers it at once while the echo of
 *     the fragment is still on its way to the backend and back; the RFC does
 *     not order a pong against unrelated data, RFC 6455 5.5.3)
 *   - the close frame (code, payload digest), frames after it
 *   - frames a server may not send (masked, RSV not negotiated, reserved
 *     opcode, control > 125)
 *   - whether the server closed TCP (FIN or reset) within a short wait
 *     after its close frame, and whether the case ran into its deadline.
 * When the server sends a close first, the client answers it the way
 * Autobahn's does (same code, at a frame boundary) and stops sending.
 *
 * A difference is tolerated only when the backend's direct outcome breaks
 * RFC 6455 and the gateway's conforms (the gateway enforces the RFC in
 * front of a lax backend): those are counted and printed apart. Any other
 * difference fails the test. The table at the end prints per category:
 * cases, equal, differ (backend at fault), differ (gateway at fault).
 *
 * SW_CONFORMANCE_ONLY=PREFIX in the environment runs only the cases whose
 * id starts with PREFIX (e.g. "9.7"), for debugging.
 *
 * Threading: single-threaded; one connection at a time.
 */
#include "../conformance/cases.h"
#include "support.h"
#include "net.h"
#include "proc.h"

#include <shockwave/ws.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CASE_TIMEOUT_MS 5000 /* default deadline of a whole case */
#define CLOSE_WAIT_MS 1500   /* server's close frame -> its TCP close */
#define TRACE_LEN 200        /* characters of frame trace kept */
#define READ_CHUNK (64 * 1024)
#define WRITE_CHUNK (256 * 1024)
#define MAX_CAT 16

/* ---- the fixture ------------------------------------------------------- */

static struct sw_test_proc be_swload; /* swload echo */
static struct sw_test_proc be_node;   /* node tests/js/echo_server.js */
static int swload_port;               /* be_swload's port */
static int node_port;                 /* be_node's port */
static bool node_up;                  /* be_node is running */
static const char *node_skip;         /* why the ws backend is skipped */
static struct sw_test_gw gw;          /* the daemon */
static struct sw_ws_rng rng;          /* mask and handshake keys */

/* Start the npm `ws` echo server. Returns false with node_skip set when
 * node or the ws package is missing and tests/js/package.json does not ask
 * for it; a declared but uninstalled dependency fails the test. */
static bool
node_start(int *port)
{
    const char *root = sw_test_env("SW_SOURCE_ROOT");
    char dir[600], script[700], pkg[700], cmd[900];
    snprintf(dir, sizeof(dir), "%s/tests/js", root);
    snprintf(script, sizeof(script), "%s/echo_server.js", dir);
    snprintf(pkg, sizeof(pkg), "%s/package.json", dir);
    snprintf(cmd, sizeof(cmd), "cd '%s' && node -e \"require('ws')\"", dir);
    char *const probe[] = {"/bin/sh", "-c", cmd, NULL};
    char *out = NULL;
    int rc = sw_test_run(probe, 10000, &out);
    if (rc != 0) {
        bool declared = access(pkg, F_OK) == 0;
        fprintf(stderr,
                "conformance: node or its `ws` package is unavailable "
                "(%s): %s\n",
                declared ? "run `cd tests/js && npm install`"
                         : "tests/js/package.json does not exist yet",
                out != NULL ? out : "");
        free(out);
        ck_assert_msg(!declared,
                      "tests/js/package.json declares ws but it is not "
                      "installed: run `cd tests/js && npm install`");
        node_skip = "node or the npm ws package is not installed";
        return false;
    }
    free(out);
    char *const argv[] = {"/usr/bin/env", "node", script, "0", NULL};
    ck_assert(sw_test_proc_spawn(&be_node, "node", argv));
    long at = sw_test_proc_wait_log(&be_node, "listening on 127.0.0.1:", 0,
                                    10000);
    if (at < 0) {
        sw_test_proc_dump(&be_node);
        ck_abort_msg("the ws echo server did not start");
    }
    char *log = sw_test_proc_log(&be_node);
    *port = atoi(log + at);
    free(log);
    ck_assert_int_gt(*port, 0);
    return true;
}

static void
setup(void)
{
    ck_assert_int_eq(sw_ws_rng_init(&rng), SW_OK);
    ck_assert(sw_test_backend_start(&be_swload, "swload", &swload_port));
    node_up = node_start(&node_port);
    if (!node_up) {
        node_port = sw_test_free_port(); /* a route to nowhere, unused */
    }
    const char *kv[] = {"B1", sw_test_itoa(swload_port), "B2",
                        sw_test_itoa(node_port), NULL};
    ck_assert(sw_test_gw_start(&gw, "conformance.conf", kv));
}

static void
teardown(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    if (node_up) {
        sw_test_proc_stop(&be_node, 2000);
    }
    sw_test_proc_stop(&be_swload, 2000);
    sw_ws_rng_fini(&rng);
}


static void
fnv(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        *h = (*h ^ b[i]) * 0x100000001b3ull;
    }
}

#define FNV_INIT 0xcbf29ce484222325ull

/* ---- building the client's byte stream --------------------------------- */

/* One piece of the stream: a frame (or frames written together), written
 * whole or in chops. */
struct chunk {
    size_t off;        /* start in the stream */
    size_t len;        /* bytes */
    unsigned chop;     /* write size, 0 = as much as the socket takes */
    unsigned pause_ms; /* wait after the last byte */
    bool is_close;     /* the frame is a client close */
};

struct stream {
    uint8_t *p;           /* owned: all bytes */
    size_t len;           /* bytes in p */
    size_t cap;           /* capacity of p */
    struct chunk *c;      /* owned: frames in order */
    size_t n;             /* entries in c */
    size_t ncap;          /* capacity of c */
    int our_close;        /* code of the client's first close, 1005 for an
                             empty one, -1 before any */
};

static uint8_t *
stream_room(struct stream *s, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n) {
            cap *= 2;
        }
        s->p = realloc(s->p, cap);
        ck_assert_ptr_nonnull(s->p);
        s->cap = cap;
    }
    return s->p + s->len;
}

static void
stream_free(struct stream *s)
{
    free(s->p);
    free(s->c);
    memset(s, 0, sizeof(*s));
}

/* Payload byte i of a generated payload: printable ASCII for text (valid
 * UTF-8), every byte value for the rest. */
static void
gen_fill(uint8_t opcode, uint64_t from, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t k = from + i;
        p[i] = opcode == SW_WS_OP_TEXT || opcode == SW_WS_OP_CONT
                   ? (uint8_t)(0x20 + k % 95)
                   : (uint8_t)(k & 0xff);
    }
}

/* Append one frame: header as the step says, payload pl[0..n) masked. */
static void
stream_frame(struct stream *s, const struct cf_step *st, bool fin,
             uint8_t opcode, uint8_t rsv, const uint8_t *pl, size_t n,
             bool is_close)
{
    uint8_t *h = stream_room(s, n + SW_WS_MAX_HEADER);
    size_t hl = 2;
    uint8_t key[4];
    sw_ws_rng_key(&rng, key);
    h[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv & 7) << 4 | (opcode & 0xf));
    uint8_t mbit = st->unmasked ? 0 : 0x80;
    if (st->lenform == CF_LEN_MIN && n < 126) {
        h[1] = (uint8_t)(mbit | n);
    } else if (st->lenform == CF_LEN_16 ||
               (st->lenform == CF_LEN_MIN && n < 65536)) {
        h[1] = mbit | 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    } else {
        uint64_t v = n;
        if (st->lenform == CF_LEN_64_MSB) {
            v |= 1ull << 63;
        }
        h[1] = mbit | 127;
        for (int i = 0; i < 8; i++) {
            h[2 + i] = (uint8_t)(v >> (56 - 8 * i));
        }
        hl = 10;
    }
    if (!st->unmasked) {
        memcpy(h + hl, key, 4);
        hl += 4;
    }
    if (n > 0) {
        memcpy(h + hl, pl, n);
        if (!st->unmasked) {
            sw_ws_mask(h + hl, n, key, 0);
        }
    }
    if (st->together && s->n > 0 && s->c[s->n - 1].pause_ms == 0) {
        /* one write with the frame before: grow its chunk */
        s->c[s->n - 1].len += hl + n;
        s->c[s->n - 1].is_close |= is_close;
        s->len += hl + n;
        return;
    }
    if (s->n == s->ncap) {
        s->ncap = s->ncap ? s->ncap * 2 : 64;
        s->c = realloc(s->c, s->ncap * sizeof(*s->c));
        ck_assert_ptr_nonnull(s->c);
    }
    s->c[s->n++] = (struct chunk){s->len, hl + n, st->chop, 0, is_close};
    s->len += hl + n;
}

/* The whole stream of a case, our final close included. */
static void
stream_build(struct stream *s, const struct cf_case *k)
{
    memset(s, 0, sizeof(*s));
    s->our_close = -1;
    for (size_t i = 0; i < CF_MAX_STEPS; i++) {
        const struct cf_step *st = &k->s[i];
        if (!st->on) {
            break; /* end of the steps */
        }
        size_t n = st->data != NULL ? st->len : (size_t)st->gen;
        size_t cl = st->code != 0 ? 2 : 0;
        uint8_t *pl = malloc(n + cl + 1);
        ck_assert_ptr_nonnull(pl);
        if (cl != 0) {
            pl[0] = (uint8_t)(CF_CODE_OF(st->code) >> 8);
            pl[1] = (uint8_t)CF_CODE_OF(st->code);
        }
        if (st->data != NULL) {
            memcpy(pl + cl, st->data, n);
        } else {
            gen_fill(st->opcode, 0, pl + cl, n);
        }
        n += cl;
        bool is_close = st->opcode == SW_WS_OP_CLOSE;
        if (is_close && s->our_close < 0) {
            s->our_close = n >= 2 ? (pl[0] << 8 | pl[1]) : 1005;
        }
        unsigned times = st->repeat ? st->repeat : 1;
        for (unsigned t = 0; t < times; t++) {
            if (st->frag == 0 || n == 0) {
                stream_frame(s, st, !st->more, st->opcode, st->rsv, pl, n,
                             is_close);
            } else {
                for (size_t off = 0; off < n; off += st->frag) {
                    size_t m = SW_MIN((size_t)st->frag, n - off);
                    bool last = off + m == n;
                    stream_frame(s, st, last && !st->more,
                                 off == 0 ? st->opcode : SW_WS_OP_CONT,
                                 st->rsv, pl + off, m, false);
                }
            }
            s->c[s->n - 1].pause_ms = st->pause_ms;
        }
        free(pl);
    }
    if (!k->own_close) {
        static const struct cf_step plain = {OP(SW_WS_OP_CLOSE)};
        uint8_t pl[2] = {0x03, 0xe8};
        stream_frame(s, &plain, true, SW_WS_OP_CLOSE, 0, pl, 2, true);
        if (s->our_close < 0) {
            s->our_close = 1000;
        }
    }
}

/* ---- reading the server's frames --------------------------------------- */

struct outcome {
    int status;             /* handshake answer's status, -1 if none */
    bool deflate;           /* the 101 accepted permessage-deflate */
    uint64_t data_frames;   /* data frames received */
    uint64_t data_bytes;    /* their payload bytes */
    uint64_t data_digest;   /* FNV-1a over each data frame's FIN, RSV,
                               opcode, length and payload digest, in order */
    unsigned pongs;         /* pongs received */
    uint64_t pong_digest;   /* the same over the pongs */
    unsigned pings;         /* pings from the server */
    bool got_close;         /* a close frame came */
    uint16_t close_code;    /* its code, 1005 when empty, 0 for 1 byte */
    size_t close_len;       /* its payload length */
    uint64_t close_digest;  /* digest of its payload */
    unsigned after_close;   /* frames after the close */
    unsigned bad;           /* frames a server may not send */
    const char *bad_why;    /* static: the first such reason */
    bool tcp_closed;        /* the server closed TCP (FIN or reset) */
    bool timed_out;         /* the case deadline passed */
    char trace[TRACE_LEN];  /* frames as text, for the log */
};

/* Frame parser state for one connection. */
struct rx {
    struct sw_ws_decoder dec;  /* server frame headers */
    uint8_t rsv_ok;            /* RSV bits negotiated */
    bool dead;                 /* unparseable: the rest is ignored */
    bool in_frame;             /* inside a payload */
    struct sw_ws_frame f;      /* the frame in progress */
    uint64_t left;             /* its payload bytes still to come */
    uint64_t off;              /* payload bytes seen (mask offset) */
    uint64_t ph;               /* digest of its payload so far */
    uint8_t ctl[SW_WS_MAX_CONTROL]; /* control payload, unmasked */
    size_t ctl_len;            /* bytes in ctl */
};

static void
trace_add(struct outcome *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
trace_add(struct outcome *o, const char *fmt, ...)
{
    size_t used = strlen(o->trace);
    if (used + 4 >= sizeof(o->trace)) {
        return;
    }
    char piece[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(piece, sizeof(piece), fmt, ap);
    va_end(ap);
    if (used + strlen(piece) + 5 >= sizeof(o->trace)) {
        snprintf(o->trace + used, sizeof(o->trace) - used, "...");
        return;
    }
    snprintf(o->trace + used, sizeof(o->trace) - used, "%s%s",
             used ? " " : "", piece);
}

static void
frame_end(struct rx *x, struct outcome *o)
{
    const struct sw_ws_frame *f = &x->f;
    static const char names[16] = "CTB?????XPO?????";
    if (o->got_close) {
        o->after_close++;
    }
    if (!sw_ws_is_control(f->opcode)) {
        uint8_t rec[19] = {f->fin, f->rsv, f->opcode};
        for (int i = 0; i < 8; i++) {
            rec[3 + i] = (uint8_t)(f->payload_len >> (8 * i));
            rec[11 + i] = (uint8_t)(x->ph >> (8 * i));
        }
        o->data_frames++;
        o->data_bytes += f->payload_len;
        fnv(&o->data_digest, rec, sizeof(rec));
        if (o->data_frames <= 64 || !f->fin) {
            if (o->data_frames <= 64) {
                trace_add(o, "%c%s%llu%s", names[f->opcode],
                          f->rsv ? "r" : "",
                          (unsigned long long)f->payload_len,
                          f->fin ? "" : "+");
            }
        }
        return;
    }
    switch (f->opcode) {
    case SW_WS_OP_PONG:
        o->pongs++;
        uint8_t len = (uint8_t)x->ctl_len;
        fnv(&o->pong_digest, &len, 1);
        fnv(&o->pong_digest, x->ctl, x->ctl_len);
        trace_add(o, "O%zu", x->ctl_len);
        break;
    case SW_WS_OP_PING:
        o->pings++;
        trace_add(o, "P%zu", x->ctl_len);
        break;
    case SW_WS_OP_CLOSE:
        if (o->got_close) {
            trace_add(o, "X(again)");
            break;
        }
        o->got_close = true;
        o->close_len = x->ctl_len;
        o->close_code = x->ctl_len >= 2 ? (uint16_t)(x->ctl[0] << 8 |
                                                     x->ctl[1])
                        : x->ctl_len == 0 ? SW_WS_CLOSE_NO_STATUS
                                          : 0;
        fnv(&o->close_digest, x->ctl, x->ctl_len);
        trace_add(o, "X%u/%zu", (unsigned)o->close_code, x->ctl_len);
        break;
    default:
        break;
    }
}

static void
mark_bad(struct outcome *o, const char *why)
{
    o->bad++;
    if (o->bad_why == NULL) {
        o->bad_why = why;
    }
    trace_add(o, "!%s", why);
}

/* Feed bytes from the server. */
static void
rx_feed(struct rx *x, struct outcome *o, const uint8_t *p, size_t n)
{
    while (n > 0 && !x->dead) {
        if (!x->in_frame) {
            ssize_t used = sw_ws_frame_decode(&x->dec, p, n, &x->f);
            if (used == SW_AGAIN) {
                return;
            }
            if (used < 0) {
                mark_bad(o, x->dec.why != NULL ? x->dec.why : "bad header");
                x->dead = true;
                return;
            }
            p += used;
            n -= (size_t)used;
            if (x->f.masked) {
                mark_bad(o, "masked server frame");
            }
            if ((x->f.rsv & ~x->rsv_ok) != 0) {
                mark_bad(o, "RSV bits not negotiated");
            }
            x->in_frame = true;
            x->left = x->f.payload_len;
            x->off = 0;
            x->ph = FNV_INIT;
            x->ctl_len = 0;
        }
        size_t m = (size_t)SW_MIN((uint64_t)n, x->left);
        if (m > 0) {
            uint8_t tmp[4096];
            for (size_t done = 0; done < m;) {
                size_t k = SW_MIN(m - done, sizeof(tmp));
                memcpy(tmp, p + done, k);
                if (x->f.masked) {
                    sw_ws_mask(tmp, k, x->f.mask, (size_t)x->off);
                }
                fnv(&x->ph, tmp, k);
                if (sw_ws_is_control(x->f.opcode)) {
                    memcpy(x->ctl + x->ctl_len, tmp, k); /* <= 125 */
                    x->ctl_len += k;
                }
                x->off += k;
                done += k;
            }
            p += m;
            n -= m;
            x->left -= m;
        }
        if (x->left == 0) {
            x->in_frame = false;
            frame_end(x, o);
        }
    }
}

/* ---- running a case ---------------------------------------------------- */

/* Upgrade on c; returns the status and fills x->rsv_ok. */
static int
handshake(struct sw_test_conn *c, const char *host, const char *ext,
          struct rx *x)
{
    char key[SW_WS_KEY_LEN + 1], accept[SW_WS_ACCEPT_LEN + 1];
    sw_ws_handshake_key(&rng, key);
    sw_ws_accept_compute((struct sw_str){key, strlen(key)}, accept);
    char extra[256] = "";
    if (ext != NULL) {
        snprintf(extra, sizeof(extra), "Sec-WebSocket-Extensions: %s\r\n",
                 ext);
    }
    char req[1024];
    snprintf(req, sizeof(req),
             "GET /conformance HTTP/1.1\r\nHost: %s\r\n"
             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
             host, key, extra);
    struct sw_test_resp r;
    if (!sw_test_conn_send(c, req, strlen(req)) ||
        sw_test_conn_read_resp(c, &r, false) != 1) {
        sw_test_resp_free(&r);
        return -1;
    }
    int status = r.status;
    const char *acc = sw_test_resp_header(&r, "Sec-WebSocket-Accept");
    if (status == 101 && (acc == NULL || strcmp(acc, accept) != 0)) {
        status = -2;
    }
    const char *exts = sw_test_resp_header(&r, "Sec-WebSocket-Extensions");
    if (exts != NULL && strstr(exts, "permessage-deflate") != NULL) {
        x->rsv_ok = SW_WS_RSV1;
    }
    sw_test_resp_free(&r);
    return status;
}

/* Run one case on a fresh connection to port with Host host. */
static void
run_case(const struct cf_case *k, int port, const char *host,
         struct outcome *o)
{
    struct stream s;
    struct rx x;
    struct sw_test_conn c;
    memset(o, 0, sizeof(*o));
    memset(&x, 0, sizeof(x));
    o->status = -1;
    o->data_digest = o->pong_digest = o->close_digest = FNV_INIT;
    stream_build(&s, k);
    sw_ws_decoder_init(&x.dec, SW_WS_PEER_ANY,
                       SW_WS_RSV1 | SW_WS_RSV2 | SW_WS_RSV3, 0);
    if (!sw_test_conn_open(&c, port)) {
        stream_free(&s);
        return;
    }
    c.timeout_ms = 5000;
    o->status = handshake(&c, host, k->ext, &x);
    o->deflate = x.rsv_ok != 0;
    if (o->status != 101) {
        sw_test_conn_close(&c);
        stream_free(&s);
        return;
    }
    rx_feed(&x, o, (const uint8_t *)c.buf, c.len); /* behind the 101 */
    c.len = 0;
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);

    uint64_t deadline = sw_now_ms() + (uint64_t)(k->timeout_ms ? k->timeout_ms
                                                             : CASE_TIMEOUT_MS);
    uint64_t resume_at = 0;     /* end of a pause */
    uint64_t close_wait = 0;    /* server's close + CLOSE_WAIT_MS */
    size_t ci = 0, coff = 0;    /* chunk and offset in it being written */
    bool sent_close = false;    /* a client close frame went (partly) out */
    bool stop = false;          /* write nothing more */
    uint8_t reply[SW_WS_MAX_HEADER + SW_WS_MAX_CONTROL]; /* close answer */
    size_t reply_len = 0, reply_off = 0;
    uint8_t *rbuf = malloc(READ_CHUNK);
    ck_assert_ptr_nonnull(rbuf);

    for (;;) {
        uint64_t now = sw_now_ms();
        if (now >= deadline) {
            o->timed_out = true;
            break;
        }
        if (close_wait != 0 && now >= close_wait) {
            break; /* the server did not close TCP after its close */
        }
        if (o->got_close && close_wait == 0) {
            close_wait = now + CLOSE_WAIT_MS;
            /* Answer the server's close like Autobahn's client: at a frame
             * boundary, with the same code; a client that already sent its
             * close only waits (RFC 6455 5.5.1). */
            if (!sent_close && coff == 0 && !stop) {
                static const struct cf_step plain = {0};
                struct stream one_frame;
                memset(&one_frame, 0, sizeof(one_frame));
                uint8_t pl[2] = {(uint8_t)(o->close_code >> 8),
                                 (uint8_t)o->close_code};
                bool coded = o->close_code != SW_WS_CLOSE_NO_STATUS &&
                             o->close_code != 0;
                stream_frame(&one_frame, &plain, true, SW_WS_OP_CLOSE, 0, pl,
                             coded ? 2 : 0, true);
                memcpy(reply, one_frame.p, one_frame.len);
                reply_len = one_frame.len;
                stream_free(&one_frame);
                sent_close = true;
            }
            stop = true;
        }
        bool can_write = false;
        if (reply_off < reply_len) {
            can_write = true;
        } else if (!stop && ci < s.n && now >= resume_at) {
            can_write = true;
        }
        int wait = (int)(deadline - now);
        if (close_wait != 0) {
            wait = SW_MIN(wait, (int)(close_wait - now));
        }
        if (!can_write && !stop && ci < s.n && resume_at > now) {
            wait = SW_MIN(wait, (int)(resume_at - now));
        }
        struct pollfd pfd = {c.fd, POLLIN | (can_write ? POLLOUT : 0), 0};
        int pr = poll(&pfd, 1, wait);
        if (pr < 0 && errno != EINTR) {
            break;
        }
        if (pr <= 0) {
            continue;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(c.fd, rbuf, READ_CHUNK, 0);
            if (n > 0) {
                rx_feed(&x, o, rbuf, (size_t)n);
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                o->tcp_closed = true;
                break;
            }
        }
        if ((pfd.revents & POLLOUT) && can_write) {
            const uint8_t *p;
            size_t want;
            bool is_reply = reply_off < reply_len;
            if (is_reply) {
                p = reply + reply_off;
                want = reply_len - reply_off;
            } else {
                const struct chunk *ch = &s.c[ci];
                p = s.p + ch->off + coff;
                want = ch->len - coff;
                if (ch->chop != 0) {
                    want = SW_MIN(want, (size_t)ch->chop);
                }
                want = SW_MIN(want, (size_t)WRITE_CHUNK);
                sent_close |= ch->is_close;
            }
            ssize_t n = send(c.fd, p, want, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno != EAGAIN && errno != EINTR) {
                    stop = true; /* the server is gone: read what is left */
                    reply_off = reply_len;
                }
                continue;
            }
            if (is_reply) {
                reply_off += (size_t)n;
                continue;
            }
            coff += (size_t)n;
            if (coff == s.c[ci].len) {
                if (s.c[ci].pause_ms != 0) {
                    resume_at = sw_now_ms() + s.c[ci].pause_ms;
                }
                ci++;
                coff = 0;
            }
        }
    }
    free(rbuf);
    sw_test_conn_close(&c);
    stream_free(&s);
}

/* ---- comparing --------------------------------------------------------- */

static bool
outcome_eq(const struct outcome *a, const struct outcome *b)
{
    return a->status == b->status && a->deflate == b->deflate &&
           a->data_frames == b->data_frames &&
           a->data_bytes == b->data_bytes &&
           a->data_digest == b->data_digest && a->pongs == b->pongs &&
           a->pong_digest == b->pong_digest && a->pings == b->pings &&
           a->got_close == b->got_close && a->close_code == b->close_code &&
           a->close_len == b->close_len &&
           a->close_digest == b->close_digest &&
           a->after_close == b->after_close && a->bad == b->bad &&
           a->tcp_closed == b->tcp_closed && a->timed_out == b->timed_out;
}

/* Does a server that produced o conform to RFC 6455 for case k? our_close
 * is the code of the client's close. */
static bool
conforms(const struct cf_case *k, const struct outcome *o, int our_close)
{
    if (o->status != 101 || o->bad != 0 || o->after_close != 0 ||
        o->timed_out) {
        return false;
    }
    bool failed = o->got_close
                      ? o->close_code != our_close && o->close_code != 1000
                      : o->tcp_closed;
    bool fail_code = !o->got_close || o->close_code == 1002 ||
                     o->close_code == 1003 || o->close_code == 1007 ||
                     o->close_code == 1008 || o->close_code == 1009 ||
                     o->close_code == 1011;
    switch (k->expect) {
    case CF_OK:
        return o->got_close && !failed;
    case CF_FAIL:
        return failed && fail_code;
    case CF_DEFLATE:
        return o->deflate ? o->got_close && !failed : failed && fail_code;
    case CF_EITHER:
        return true;
    }
    return false;
}

static void
outcome_print(const char *label, const struct outcome *o)
{
    fprintf(stderr,
            "    %-8s status=%d data=%llu/%lluB pongs=%u pings=%u close=%s%u "
            "after=%u bad=%u%s%s tcp_closed=%d timeout=%d\n"
            "             frames: %s\n",
            label, o->status, (unsigned long long)o->data_frames,
            (unsigned long long)o->data_bytes, o->pongs, o->pings,
            o->got_close ? "" : "none/", (unsigned)o->close_code,
            o->after_close, o->bad, o->bad_why ? " " : "",
            o->bad_why ? o->bad_why : "", o->tcp_closed, o->timed_out,
            o->trace);
}

struct tally {
    unsigned cases;         /* cases run */
    unsigned equal;         /* same outcome both ways */
    unsigned both_fail;     /* differ only in how a violation was failed */
    unsigned backend_fault; /* differ: backend broke the RFC, gateway ok */
    unsigned gateway_fault; /* differ otherwise */
};

/* Both sides failed the connection over the client's violation, each
 * conformantly, with different close codes: the gateway saw the violation
 * first and answered it itself (RFC 6455 7.1.7 leaves the code to the
 * endpoint that fails, e.g. 1002 or 1009 for a 64-bit length with its top
 * bit set). Everything before the close must still be the same. */
static bool
both_failed(const struct cf_case *k, const struct outcome *a,
            const struct outcome *b, int our_close)
{
    if (k->expect != CF_FAIL || !conforms(k, a, our_close) ||
        !conforms(k, b, our_close)) {
        return false;
    }
    return a->data_frames == b->data_frames &&
           a->data_digest == b->data_digest && a->pongs == b->pongs &&
           a->pong_digest == b->pong_digest;
}

/* Run the whole table against one backend; returns the cases that differ
 * with the gateway at fault. */
static unsigned
run_backend(const char *name, int backend_port, const char *host)
{
    struct tally t[MAX_CAT];
    struct tally all;
    memset(t, 0, sizeof(t));
    memset(&all, 0, sizeof(all));
    uint64_t t0 = sw_now_ms();
    const char *only = getenv("SW_CONFORMANCE_ONLY");
    size_t skipped = 0;
    for (size_t i = 0; i < SW_NELEMS(cf_cases); i++) {
        const struct cf_case *k = &cf_cases[i];
        if (only != NULL && strncmp(k->id, only, strlen(only)) != 0) {
            skipped++;
            continue;
        }
        struct outcome direct, via;
        struct stream s;
        stream_build(&s, k);
        int our_close = s.our_close;
        stream_free(&s);
        run_case(k, backend_port, "127.0.0.1", &direct);
        long mark = sw_test_proc_log_size(&gw.proc);
        run_case(k, gw.port, host, &via);
        struct tally *ct = &t[k->cat < MAX_CAT ? k->cat : 0];
        ct->cases++;
        const char *verdict = "equal";
        if (outcome_eq(&direct, &via)) {
            ct->equal++;
        } else if (both_failed(k, &direct, &via, our_close)) {
            ct->both_fail++;
            verdict = "differ: both fail the connection, codes differ";
        } else if (!conforms(k, &direct, our_close) &&
                   conforms(k, &via, our_close)) {
            ct->backend_fault++;
            verdict = "differ: backend breaks RFC 6455, gateway conforms";
        } else {
            ct->gateway_fault++;
            verdict = "DIFFER: gateway not transparent";
        }
        if (strcmp(verdict, "equal") != 0) {
            fprintf(stderr, "[%s] %s %s: %s\n", name, k->id, k->what,
                    verdict);
            outcome_print("direct", &direct);
            outcome_print("gateway", &via);
            if (via.after_close > direct.after_close) {
                fprintf(stderr, "    note: the gateway sent frames after "
                                "its close frame (RFC 6455 5.5.1)\n");
            }
            if (via.got_close != direct.got_close && via.tcp_closed &&
                !via.got_close) {
                fprintf(stderr, "    note: the gateway closed TCP without "
                                "a close frame, %llu of %llu data frames "
                                "relayed\n",
                        (unsigned long long)via.data_frames,
                        (unsigned long long)direct.data_frames);
            }
            if (verdict[0] == 'D') {
                /* the daemon's lines about this session (written when it
                 * ended, so give it a moment) */
                struct timespec ts = {0, 200 * 1000000L};
                nanosleep(&ts, NULL);
                char *log = sw_test_proc_log(&gw.proc);
                fprintf(stderr, "    gateway log:\n%s", log + mark);
                free(log);
            }
        } else if (!direct.tcp_closed || direct.timed_out ||
                   direct.status != 101) {
            /* equal, but worth a look: record what happened */
            fprintf(stderr, "[%s] %s %s: equal (%s)\n", name, k->id, k->what,
                    direct.status != 101 ? "no handshake"
                    : direct.timed_out   ? "deadline"
                                         : "server kept TCP open");
        }
    }
    fprintf(stderr,
            "\nconformance [%s] %llu ms\n"
            "  category  cases  equal  differ(both fail)  "
            "differ(backend at fault)  differ(gateway)\n",
            name, (unsigned long long)(sw_now_ms() - t0));
    for (int c = 0; c < MAX_CAT; c++) {
        if (t[c].cases == 0) {
            continue;
        }
        fprintf(stderr, "  %8d  %5u  %5u  %17u  %24u  %15u\n", c,
                t[c].cases, t[c].equal, t[c].both_fail, t[c].backend_fault,
                t[c].gateway_fault);
        all.cases += t[c].cases;
        all.equal += t[c].equal;
        all.both_fail += t[c].both_fail;
        all.backend_fault += t[c].backend_fault;
        all.gateway_fault += t[c].gateway_fault;
    }
    fprintf(stderr, "  %8s  %5u  %5u  %17u  %24u  %15u\n\n", "all",
            all.cases, all.equal, all.both_fail, all.backend_fault,
            all.gateway_fault);
    ck_assert_uint_eq(all.cases + skipped, SW_NELEMS(cf_cases));
    return all.gateway_fault;
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(conformance_swload)
{
    unsigned bad = run_backend("swload echo", swload_port, "swload.test");
    ck_assert_msg(bad == 0,
                  "%u case(s) differ through the gateway (swload echo)", bad);
}
END_TEST

START_TEST(conformance_ws)
{
    if (!node_up) {
        fprintf(stderr, "conformance [npm ws]: SKIPPED: %s\n", node_skip);
        return;
    }
    unsigned bad = run_backend("npm ws", node_port, "node.test");
    ck_assert_msg(bad == 0, "%u case(s) differ through the gateway (npm ws)",
                  bad);
}
END_TEST

static Suite *
conformance_suite(void)
{
    Suite *s = suite_create("ws_conformance");
    TCase *tc = tcase_create("rfc6455");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, conformance_swload);
    tcase_add_test(tc, conformance_ws);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(conformance_suite());
}
