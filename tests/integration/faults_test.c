/*
 * faults_test.c - four faults of the gateway, each pinned by the bytes a
 * client sees (tests/conf/faults.conf; one daemon per test):
 *
 *   keepalive_reset   an upstream resets a reused keep-alive connection
 *                     before answering: the client gets 502 at once, or 200
 *                     from a transparent retry on a fresh connection where
 *                     that is safe (idempotent, nothing sent to the client,
 *                     body at hand); never 504 after read_timeout (30 s).
 *                     A POST whose body reached the upstream is not
 *                     replayed: 502.
 *   ws_vanish         an upstream resets or closes (FIN) under an open
 *                     WebSocket: the client gets close 1011 at once; when
 *                     a frame toward the client is half sent, the client
 *                     gets only the TCP close (no close frame inside the
 *                     frame). Logged once with both addresses.
 *   absolute_form     "GET http://other.example/x" with "Host: a.example":
 *                     the target's authority wins (RFC 9112 3.2.2): routed
 *                     by it, forwarded in origin-form with Host set to it,
 *                     so no forwarded request has a target and a Host that
 *                     disagree.
 *   pings             several pings before the gateway can answer (one
 *                     read, between fragments, while a frame toward the
 *                     client is in flight) get one pong each, in order,
 *                     with their own payloads (up to 8 pending per
 *                     direction; beyond that the oldest may be dropped).
 *
 * Upstreams: a fake from net.h (RESET_REUSED), `swload echo` (it echoes the
 * request it got), and the scripted WebSocket upstream of wsfake.h, which
 * obeys text messages ("reset", "fin", "head N M", "tail").
 *
 * Every read has a deadline of a few seconds while the daemon's own
 * timeouts are 10-30 s, so a fault that is only ended by a timeout fails
 * the test instead of passing late.
 */
#include "net.h"
#include "support.h"
#include "proc.h"
#include "wsclient.h"
#include "wsfake.h"

#include <shockwave/core.h>

#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

/* "At once": far below read_timeout and ws_close_timeout in faults.conf. */
#define QUICK_MS 3000

static struct sw_test_fake fake;  /* resets reused connections */
static struct sw_test_proc be_a;  /* swload echo "a" */
static struct sw_test_proc be_b;  /* swload echo "b" */
static struct sw_test_wsfake wsf; /* scripted WebSocket upstream */
static struct sw_test_gw gw;      /* the daemon */

static const char ok_reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/* ---- fixtures ---------------------------------------------------------- */

static void
gw_up(int f, int a, int b, int w)
{
    const char *kv[] = {"F", sw_test_itoa(f > 0 ? f : sw_test_free_port()),
                        "A", sw_test_itoa(a > 0 ? a : sw_test_free_port()),
                        "B", sw_test_itoa(b > 0 ? b : sw_test_free_port()),
                        "W", sw_test_itoa(w > 0 ? w : sw_test_free_port()),
                        NULL};
    ck_assert(sw_test_gw_start(&gw, "faults.conf", kv));
}

static void
gw_down(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
}

static void
ka_setup(void)
{
    ck_assert(sw_test_fake_start(&fake, SW_TEST_FAKE_RESET_REUSED, ok_reply,
                                 strlen(ok_reply)));
    gw_up(fake.port, 0, 0, 0);
}

static void
ka_teardown(void)
{
    gw_down();
    sw_test_fake_free(&fake);
}

static void
echo_setup(void)
{
    int pa, pb;
    ck_assert(sw_test_backend_start(&be_a, "a", &pa));
    ck_assert(sw_test_backend_start(&be_b, "b", &pb));
    gw_up(0, pa, pb, 0);
}

static void
echo_teardown(void)
{
    gw_down();
    sw_test_proc_stop(&be_a, 2000);
    sw_test_proc_stop(&be_b, 2000);
}

static void
ws_setup(void)
{
    ck_assert(sw_test_wsfake_start(&wsf));
    gw_up(0, 0, 0, wsf.port);
}

static void
ws_teardown(void)
{
    gw_down();
    sw_test_wsfake_free(&wsf);
}

/* ---- helpers ----------------------------------------------------------- */

/* Does the line name "127.0.0.1:PORT" (not as the prefix of a longer
 * port)? */
static bool
names_port(const char *line, int port)
{
    char needle[32];
    snprintf(needle, sizeof(needle), "127.0.0.1:%d", port);
    size_t n = strlen(needle);
    for (const char *hit = strstr(line, needle); hit != NULL;
         hit = strstr(hit + 1, needle)) {
        if (!isdigit((unsigned char)hit[n])) {
            return true;
        }
    }
    return false;
}

/* Lines of the daemon's log after byte `from` that name both ports. */
static int
log_lines_naming(long from, int port1, int port2)
{
    char *text = sw_test_proc_log(&gw.proc);
    int n = 0;
    char *save = NULL;
    size_t len = strlen(text);
    char *start = text + ((size_t)from < len ? (size_t)from : len);
    for (char *line = strtok_r(start, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (names_port(line, port1) && names_port(line, port2)) {
            n++;
        }
    }
    free(text);
    return n;
}


/* ---- 1: a reused keep-alive connection reset before the answer --------- */

struct ka_case {
    const char *name;  /* what varies */
    bool fresh_client; /* second request on a new client connection: the
                          upstream connection comes from the shared pool */
    bool post;         /* second request is a POST with a body */
};

/* Idempotent, no body, nothing sent to the client yet: 502 or a retry. */
static const struct ka_case ka_get_cases[] = {
    {"GET, same client connection", false, false},
    {"GET, fresh client connection (shared pool)", true, false},
};

/* The upstream had the whole POST and may have acted on it: 502, never a
 * replay. */
static const struct ka_case ka_post_cases[] = {
    {"POST with a body, same client connection", false, true},
    {"POST with a body, fresh client connection (shared pool)", true, true},
};

static void
keepalive_reset(const struct ka_case *k)
{
    struct sw_test_conn c;
    struct sw_test_resp r;

    /* The first request opens the upstream connection; the fake answers
     * it and keeps the connection. */
    ck_assert(sw_test_conn_open(&c, gw.port));
    const char *first = k->fresh_client
                            ? "GET /first HTTP/1.1\r\nHost: ka.test\r\n"
                              "Connection: close\r\n\r\n"
                            : "GET /first HTTP/1.1\r\nHost: ka.test\r\n\r\n";
    ck_assert_int_eq(sw_test_conn_request(&c, first, &r), 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "ok");
    sw_test_resp_free(&r);
    if (k->fresh_client) {
        ck_assert(sw_test_conn_closed(&c, QUICK_MS));
        sw_test_conn_close(&c);
        ck_assert(sw_test_conn_open(&c, gw.port));
    }

    char *m0 = sw_test_metrics_fetch(gw.admin_port);
    long long reused0 =
        sw_test_metric_in(m0, "shockwave_upstream_reused_total");
    long long s504_0 = sw_test_metric_in(
        m0, "shockwave_http_responses_by_code_total{code=\"504\"}");
    free(m0);

    /* The second request goes on the kept connection, which the fake
     * resets once the request is in. */
    static const char get2[] = "GET /second HTTP/1.1\r\nHost: ka.test\r\n\r\n";
    static const char post2[] = "POST /second HTTP/1.1\r\nHost: ka.test\r\n"
                                "Content-Length: 11\r\n\r\nhello-world";
    c.timeout_ms = QUICK_MS;
    int rc = sw_test_conn_request(&c, k->post ? post2 : get2, &r);
    ck_assert_msg(rc == 1,
                  "%s: no answer within %d ms (read_timeout is 30 s), "
                  "rc %d, upstream resets %d",
                  k->name, QUICK_MS, rc, atomic_load(&fake.resets));
    ck_assert_msg(r.status != 504, "%s: 504 for a reset upstream", k->name);
    if (k->post) {
        /* the upstream had the whole request and may have acted on it: a
         * retry could apply it twice */
        ck_assert_msg(r.status == 502, "%s: want 502, got %d\n%s%s", k->name,
                      r.status, r.head, r.body);
    } else {
        ck_assert_msg(r.status == 502 || r.status == 200,
                      "%s: want 502 or 200 (retried), got %d\n%s%s", k->name,
                      r.status, r.head, r.body);
        if (r.status == 200) {
            ck_assert_str_eq(r.body, "ok");
        }
    }
    int status = r.status;
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);

    /* The fault really happened on a reused connection. */
    ck_assert_int_eq(atomic_load(&fake.resets), 1);
    char *m1 = sw_test_metrics_fetch(gw.admin_port);
    ck_assert_int_gt(sw_test_metric_in(m1, "shockwave_upstream_reused_total"),
                     reused0);
    ck_assert_int_eq(
        sw_test_metric_in(
            m1, "shockwave_http_responses_by_code_total{code=\"504\"}"),
        s504_0);
    free(m1);
    size_t rx_len;
    char *rx = sw_test_fake_rx(&fake, &rx_len);
    size_t seconds = sw_test_count(rx, rx_len, " /second HTTP/1.1");
    if (status == 200) {
        ck_assert_int_eq(seconds, 2); /* reset once, retried once */
        ck_assert_int_eq(atomic_load(&fake.accepts), 2);
    } else {
        ck_assert_int_eq(seconds, 1); /* never replayed */
    }
    free(rx);
}

START_TEST(keepalive_reset_get)
{
    keepalive_reset(&ka_get_cases[_i]);
}
END_TEST

START_TEST(keepalive_reset_post)
{
    keepalive_reset(&ka_post_cases[_i]);
}
END_TEST

/* ---- 2: the upstream vanishes under a WebSocket ------------------------ */

static void
ws_open(struct sw_test_ws *ws)
{
    int st = sw_test_ws_open(ws, gw.port, "ws.test", "/ws", NULL);
    ck_assert_msg(st == 101, "upgrade: %d (%s)", st,
                  ws->why != NULL ? ws->why : "");
    ws->conn.timeout_ms = QUICK_MS;
}

static void
ws_text(struct sw_test_ws *ws, const char *s)
{
    ck_assert(sw_test_ws_send(ws, true, SW_WS_OP_TEXT, s, strlen(s)));
}

/* The client's view when the upstream goes away without a close frame:
 * close 1011 at once, then the TCP close; logged once, counted. */
static void
upstream_vanishes(const char *how)
{
    struct sw_test_ws ws;
    ws_open(&ws);
    int cport = sw_test_conn_local_port(&ws.conn);
    long mark = sw_test_proc_log_size(&gw.proc);
    long long closes0 =
        sw_test_metric(gw.admin_port, "shockwave_ws_close_frames_sent_total");
    ws_text(&ws, how);
    int code = sw_test_ws_expect_close(&ws, QUICK_MS);
    ck_assert_msg(code == SW_WS_CLOSE_INTERNAL,
                  "upstream %s: want close 1011 within %d ms, got %d (%s)", how,
                  QUICK_MS, code, ws.why != NULL ? ws.why : "");
    sw_test_ws_free(&ws);
    ck_assert_int_eq(atomic_load(&wsf.commands), 1);

    sw_test_sleep_ms(200); /* the session's log line is written as it ends */
    ck_assert_int_eq(log_lines_naming(mark, cport, wsf.port), 1);
    ck_assert_int_gt(
        sw_test_metric(gw.admin_port, "shockwave_ws_close_frames_sent_total"),
        closes0);
    ck_assert_int_eq(
        sw_test_metric(gw.admin_port, "shockwave_ws_sessions_active"), 0);
}

START_TEST(ws_upstream_reset)
{
    upstream_vanishes("reset");
}
END_TEST

START_TEST(ws_upstream_fin)
{
    upstream_vanishes("fin");
}
END_TEST

/* Fill until the client has `n` bytes buffered (nothing consumed). */
static void
ws_fill_to(struct sw_test_ws *ws, size_t n)
{
    while (ws->conn.len < n) {
        ck_assert_msg(sw_test_conn_fill(&ws->conn, QUICK_MS) > 0,
                      "only %zu of %zu bytes arrived", ws->conn.len, n);
    }
}

#define BIG_TOTAL (1024 * 1024) /* payload of the half-sent frame */
#define BIG_PART (64 * 1024)    /* of which the upstream sends this */
#define BIG_HDR 10              /* its header: 64-bit length form */

START_TEST(ws_upstream_reset_mid_frame)
{
    struct sw_test_ws ws;
    ws_open(&ws);
    int cport = sw_test_conn_local_port(&ws.conn);
    long mark = sw_test_proc_log_size(&gw.proc);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "head %d %d", BIG_TOTAL, BIG_PART);
    ws_text(&ws, cmd);
    /* The frame toward the client is half sent: its header and BIG_PART
     * payload bytes are here. */
    ws_fill_to(&ws, BIG_HDR + BIG_PART);
    ws_text(&ws, "reset");
    ck_assert_msg(sw_test_conn_read_all(&ws.conn, QUICK_MS),
                  "the client connection is still open %d ms after the "
                  "upstream reset",
                  QUICK_MS);
    const uint8_t *b = (const uint8_t *)ws.conn.buf;
    size_t len = ws.conn.len;
    static const uint8_t hdr[BIG_HDR] = {0x82, 127, 0, 0, 0, 0, 0, 0x10, 0, 0};
    ck_assert(memcmp(b, hdr, BIG_HDR) == 0);
    ck_assert(sw_test_pattern_ok(0, b + BIG_HDR, BIG_PART));
    if (len != BIG_HDR + BIG_PART) {
        char extra[64] = "";
        for (size_t i = BIG_HDR + BIG_PART;
             i < len && i < BIG_HDR + BIG_PART + 8; i++) {
            snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
                     "%02x ", b[i]);
        }
        ck_abort_msg("after the upstream reset mid-frame the client got %zu "
                     "more byte(s) inside the frame (%s...): want a bare TCP "
                     "close, no close frame",
                     len - (BIG_HDR + BIG_PART), extra);
    }
    sw_test_ws_free(&ws);
    ck_assert_int_eq(atomic_load(&wsf.commands), 2);
    sw_test_sleep_ms(200);
    ck_assert_int_eq(log_lines_naming(mark, cport, wsf.port), 1);
    ck_assert_int_eq(
        sw_test_metric(gw.admin_port, "shockwave_ws_sessions_active"), 0);
}
END_TEST

#define LATE_SIZE 262144
#define LATE_SIZE_TEXT "262144"
#define LATE_READ_MS 15000

/* A client that writes after the close handshake ended (a frame sent late,
 * as a busy client may) must still read everything the gateway sent: a
 * socket the gateway had closed would answer those bytes with a reset, and
 * a reset destroys what the client had not read yet. The gateway lingers. */
#define LATE_SIZE 262144
#define LATE_SIZE_TEXT "262144"
#define LATE_READ_MS 15000

START_TEST(ws_late_client_bytes_after_close)
{
    struct sw_test_ws ws;
    ws_open(&ws);
    /* a small receive buffer keeps most of the frame in the gateway's send
     * queue while the client reads nothing */
    int small = 4096;
    setsockopt(ws.conn.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    ws_text(&ws, "head " LATE_SIZE_TEXT " " LATE_SIZE_TEXT);
    ck_assert(sw_test_ws_send_close(&ws, 1000));
    sw_test_sleep_ms(300); /* the handshake completes; nothing is read meanwhile */
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_TEXT, "late", 4));
    /* the small window makes the transfer slow, not the gateway */
    ck_assert_msg(sw_test_conn_read_all(&ws.conn, LATE_READ_MS),
                  "the client's read failed (reset?) after %zu bytes",
                  ws.conn.len);
    const uint8_t *b = (const uint8_t *)ws.conn.buf;
    static const uint8_t hdr[10] = {0x82, 127, 0, 0, 0, 0, 0, 4, 0, 0};
    static const uint8_t close_frame[4] = {0x88, 2, 0x03, 0xe8};
    ck_assert_uint_eq(ws.conn.len, sizeof(hdr) + LATE_SIZE + sizeof(close_frame));
    ck_assert(memcmp(b, hdr, sizeof(hdr)) == 0);
    ck_assert(sw_test_pattern_ok(0, b + sizeof(hdr), LATE_SIZE));
    ck_assert(memcmp(b + sizeof(hdr) + LATE_SIZE, close_frame,
                     sizeof(close_frame)) == 0);
    sw_test_ws_free(&ws);
}
END_TEST


/* ---- 3: absolute-form target against Host ------------------------------ */

struct abs_case {
    const char *name;    /* what it checks */
    const char *req;     /* the request head, sent as is */
    const char *backend; /* X-Backend that must answer */
    const char *line;    /* request line the backend must see */
    const char *host;    /* the Host it must see */
};

static const struct abs_case abs_cases[] = {
    {"authority differs from Host",
     "GET http://other.example/x HTTP/1.1\r\nHost: a.example\r\n"
     "Connection: close\r\n\r\n",
     "b", "GET /x HTTP/1.1", "other.example"},
    {"authority with a port and a query",
     "GET http://other.example:8080/x?q=1 HTTP/1.1\r\nHost: a.example\r\n"
     "Connection: close\r\n\r\n",
     "b", "GET /x?q=1 HTTP/1.1", "other.example:8080"},
    {"authority equals Host",
     "GET http://a.example/y HTTP/1.1\r\nHost: a.example\r\n"
     "Connection: close\r\n\r\n",
     "a", "GET /y HTTP/1.1", "a.example"},
    {"no path in the target",
     "GET http://other.example HTTP/1.1\r\nHost: a.example\r\n"
     "Connection: close\r\n\r\n",
     "b", "GET / HTTP/1.1", "other.example"},
    {"https scheme on a plain listener",
     "GET https://other.example/z HTTP/1.1\r\nHost: a.example\r\n"
     "Connection: close\r\n\r\n",
     "b", "GET /z HTTP/1.1", "other.example"},
    {"HTTP/1.0 without Host", "GET http://other.example/v HTTP/1.0\r\n\r\n",
     "b", "GET /v HTTP/1.1", "other.example"},
};

/* The forwarded request line must not be absolute-form with an authority
 * other than the forwarded Host. */
static void
assert_target_agrees(const char *line, const char *host)
{
    const char *t = strchr(line, ' ');
    ck_assert_ptr_nonnull(t);
    t++;
    const char *auth = NULL;
    if (strncasecmp(t, "http://", 7) == 0) {
        auth = t + 7;
    } else if (strncasecmp(t, "https://", 8) == 0) {
        auth = t + 8;
    }
    if (auth == NULL) {
        return;
    }
    size_t n = strcspn(auth, "/? ");
    ck_assert_msg(strlen(host) == n && strncasecmp(auth, host, n) == 0,
                  "forwarded target %s disagrees with Host: %s", line, host);
}

START_TEST(absolute_form)
{
    const struct abs_case k = abs_cases[_i];
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_once(gw.port, k.req, &r), 1);
    ck_assert_msg(r.status == 200, "%s: status %d\n%s%s", k.name, r.status,
                  r.head, r.body);
    const char *be = sw_test_resp_header(&r, "X-Backend");
    char *nl = strchr(r.body, '\n');
    ck_assert_ptr_nonnull(nl);
    char *line = strndup(r.body, (size_t)(nl - r.body));
    char *host = sw_test_echo_header(r.body, "Host");
    ck_assert_ptr_nonnull(host);
    ck_assert_int_eq(sw_test_echo_count(r.body, "Host"), 1);
    ck_assert_msg(be != NULL && strcmp(be, k.backend) == 0,
                  "%s: answered by backend %s, want %s; it got:\n%s", k.name,
                  be != NULL ? be : "(none)", k.backend, r.body);
    ck_assert_msg(strcmp(line, k.line) == 0 && strcmp(host, k.host) == 0,
                  "%s: backend got \"%s\" with Host %s, want \"%s\" with "
                  "Host %s",
                  k.name, line, host, k.line, k.host);
    assert_target_agrees(line, host);
    /* what the gateway forwards about the request speaks of the same host,
     * and of the transport the request really came over */
    char *xfh = sw_test_echo_header(r.body, "X-Forwarded-Host");
    if (xfh != NULL) {
        ck_assert_str_eq(xfh, k.host);
    }
    char *xfp = sw_test_echo_header(r.body, "X-Forwarded-Proto");
    ck_assert_ptr_nonnull(xfp);
    ck_assert_str_eq(xfp, "http");
    free(xfp);
    free(xfh);
    free(host);
    free(line);
    sw_test_resp_free(&r);
}
END_TEST

/* ---- 4: one pong per ping ---------------------------------------------- */

#define MAX_PONGS 16

struct pongs {
    char p[MAX_PONGS][SW_WS_MAX_CONTROL + 1]; /* payloads, in order */
    size_t n;                                 /* pongs received */
};

/* Send a close 1000 and read until the server's close: every pong the
 * gateway owes the client comes before it (nothing follows a close frame,
 * RFC 6455 5.5.1). Data frames are dropped. */
static void
pongs_until_close(struct sw_test_ws *ws, struct pongs *out)
{
    memset(out, 0, sizeof(*out));
    ck_assert(sw_test_ws_send_close(ws, 1000));
    for (;;) {
        struct sw_test_ws_frame f;
        int rc = sw_test_ws_recv(ws, &f, QUICK_MS);
        ck_assert_msg(rc == 1,
                      "no close from the gateway (%s) after %zu "
                      "pong(s)",
                      ws->why != NULL ? ws->why : "", out->n);
        uint8_t op = f.opcode;
        if (op == SW_WS_OP_PONG && out->n < MAX_PONGS) {
            memcpy(out->p[out->n], f.payload, (size_t)f.len);
            out->p[out->n][f.len] = '\0';
            out->n++;
        }
        sw_test_ws_frame_free(&f);
        if (op == SW_WS_OP_CLOSE) {
            return;
        }
    }
}

/* The pongs are exactly the pings' payloads, in order. */
static void
assert_pongs(const struct pongs *got, const char *const *want, size_t n)
{
    char list[512] = "";
    for (size_t i = 0; i < got->n; i++) {
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"",
                 i ? ", " : "", got->p[i]);
    }
    ck_assert_msg(got->n == n, "%zu ping(s), %zu pong(s): %s", n, got->n, list);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(strcmp(got->p[i], want[i]) == 0,
                      "pong %zu is \"%s\", want \"%s\" (pongs: %s)", i,
                      got->p[i], want[i], list);
    }
}

/* Append one masked frame to a batch that goes out in one write. */
static void
batch_add(struct sw_test_ws *ws, uint8_t *buf, size_t *len, bool fin,
          uint8_t opcode, const char *payload)
{
    *len +=
        sw_test_ws_build(ws, buf + *len, fin, opcode, payload, strlen(payload));
}

START_TEST(pings_in_one_write)
{
    static const char *const want[] = {"ping-1", "ping-2", "ping-3", "ping-4",
                                       "ping-5"};
    struct sw_test_ws ws;
    ws_open(&ws);
    uint8_t buf[1024];
    size_t len = 0;
    for (size_t i = 0; i < SW_NELEMS(want); i++) {
        batch_add(&ws, buf, &len, true, SW_WS_OP_PING, want[i]);
    }
    ck_assert(sw_test_ws_send_raw(&ws, buf, len));
    struct pongs got;
    pongs_until_close(&ws, &got);
    assert_pongs(&got, want, SW_NELEMS(want));
    sw_test_ws_free(&ws);
}
END_TEST

START_TEST(pings_between_fragments)
{
    static const char *const want[] = {"p-1", "p-2", "p-3"};
    struct sw_test_ws ws;
    ws_open(&ws);
    uint8_t buf[1024];
    size_t len = 0;
    batch_add(&ws, buf, &len, false, SW_WS_OP_TEXT, "frag-1");
    batch_add(&ws, buf, &len, true, SW_WS_OP_PING, "p-1");
    batch_add(&ws, buf, &len, false, SW_WS_OP_CONT, "frag-2");
    batch_add(&ws, buf, &len, true, SW_WS_OP_PING, "p-2");
    batch_add(&ws, buf, &len, true, SW_WS_OP_PING, "p-3");
    batch_add(&ws, buf, &len, true, SW_WS_OP_CONT, "frag-3");
    ck_assert(sw_test_ws_send_raw(&ws, buf, len));
    struct pongs got;
    pongs_until_close(&ws, &got);
    assert_pongs(&got, want, SW_NELEMS(want));
    sw_test_ws_free(&ws);
    char *msgs = sw_test_wsfake_msgs(&wsf);
    ck_assert_str_eq(msgs, "frag-1frag-2frag-3\n");
    free(msgs);
}
END_TEST

#define INFLIGHT_TOTAL (256 * 1024) /* frame toward the client */
#define INFLIGHT_PART (64 * 1024)   /* sent before the pings */

/* Have the upstream start a large frame toward the client and stop halfway;
 * returns once the client holds its header and first part. */
static void
frame_in_flight(struct sw_test_ws *ws)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "head %d %d", INFLIGHT_TOTAL, INFLIGHT_PART);
    ws_text(ws, cmd);
    ws_fill_to(ws, BIG_HDR + INFLIGHT_PART);
}

/* Read the rest of that frame: it arrives whole, first. */
static void
frame_finish(struct sw_test_ws *ws)
{
    struct sw_test_ws_frame f;
    ck_assert_int_eq(sw_test_ws_recv(ws, &f, QUICK_MS), 1);
    ck_assert_int_eq(f.opcode, SW_WS_OP_BINARY);
    ck_assert(f.fin);
    ck_assert_uint_eq(f.len, INFLIGHT_TOTAL);
    ck_assert(sw_test_pattern_ok(0, f.payload, INFLIGHT_TOTAL));
    sw_test_ws_frame_free(&f);
}

START_TEST(pings_while_frame_in_flight)
{
    static const char *const want[] = {"p-1", "p-2", "p-3", "p-4", "p-5"};
    struct sw_test_ws ws;
    ws_open(&ws);
    frame_in_flight(&ws);
    /* pings and messages toward the upstream while the gateway cannot put
     * a pong toward the client: it is inside a frame */
    uint8_t buf[1024];
    size_t len = 0;
    batch_add(&ws, buf, &len, true, SW_WS_OP_PING, "p-1");
    batch_add(&ws, buf, &len, true, SW_WS_OP_TEXT, "m-1");
    batch_add(&ws, buf, &len, true, SW_WS_OP_PING, "p-2");
    batch_add(&ws, buf, &len, true, SW_WS_OP_TEXT, "m-2");
    batch_add(&ws, buf, &len, true, SW_WS_OP_PING, "p-3");
    ck_assert(sw_test_ws_send_raw(&ws, buf, len));
    sw_test_sleep_ms(100); /* a second read on the gateway's side */
    len = 0;
    batch_add(&ws, buf, &len, true, SW_WS_OP_PING, "p-4");
    batch_add(&ws, buf, &len, true, SW_WS_OP_PING, "p-5");
    batch_add(&ws, buf, &len, true, SW_WS_OP_TEXT, "tail");
    ck_assert(sw_test_ws_send_raw(&ws, buf, len));
    frame_finish(&ws);
    struct pongs got;
    pongs_until_close(&ws, &got);
    assert_pongs(&got, want, SW_NELEMS(want));
    sw_test_ws_free(&ws);
    char *msgs = sw_test_wsfake_msgs(&wsf);
    ck_assert_str_eq(msgs, "head 262144 65536\nm-1\nm-2\ntail\n");
    free(msgs);
}
END_TEST

/* Ten pings while the frame is in flight: the queue holds 8, so at least 8
 * pongs come, in order, each for one of the pings, the newest among them;
 * only the oldest may be missing. */
START_TEST(pings_over_the_queue_bound)
{
    struct sw_test_ws ws;
    ws_open(&ws);
    frame_in_flight(&ws);
    uint8_t buf[2048];
    size_t len = 0;
    char name[16];
    for (int i = 1; i <= 10; i++) {
        snprintf(name, sizeof(name), "p-%02d", i);
        batch_add(&ws, buf, &len, true, SW_WS_OP_PING, name);
    }
    batch_add(&ws, buf, &len, true, SW_WS_OP_TEXT, "tail");
    ck_assert(sw_test_ws_send_raw(&ws, buf, len));
    frame_finish(&ws);
    struct pongs got;
    pongs_until_close(&ws, &got);
    sw_test_ws_free(&ws);
    char list[512] = "";
    for (size_t i = 0; i < got.n; i++) {
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                 i ? ", " : "", got.p[i]);
    }
    ck_assert_msg(got.n >= 8 && got.n <= 10,
                  "10 pings, %zu pong(s) (%s): want 8 to 10", got.n, list);
    int prev = 0;
    for (size_t i = 0; i < got.n; i++) {
        int k = 0;
        ck_assert_msg(sscanf(got.p[i], "p-%d", &k) == 1 && k > prev && k <= 10,
                      "pongs out of order or foreign: %s", list);
        prev = k;
    }
    ck_assert_msg(prev == 10, "the newest ping got no pong: %s", list);
    /* what is missing is the oldest: the pongs are a run ending at 10,
     * after perhaps some answered before the queue filled (one gap) */
    int gaps = 0;
    for (size_t i = 0; i + 1 < got.n; i++) {
        int a = 0, b = 0;
        sscanf(got.p[i], "p-%d", &a);
        sscanf(got.p[i + 1], "p-%d", &b);
        gaps += b != a + 1;
    }
    ck_assert_msg(gaps <= 1, "pongs dropped from the middle: %s", list);
}
END_TEST

/* ---- the suite --------------------------------------------------------- */

static Suite *
faults_suite(void)
{
    Suite *s = suite_create("faults");

    TCase *ka = tcase_create("keepalive_reset");
    tcase_add_checked_fixture(ka, ka_setup, ka_teardown);
    tcase_set_timeout(ka, 60);
    tcase_add_loop_test(ka, keepalive_reset_get, 0,
                        (int)SW_NELEMS(ka_get_cases));
    tcase_add_loop_test(ka, keepalive_reset_post, 0,
                        (int)SW_NELEMS(ka_post_cases));
    suite_add_tcase(s, ka);

    TCase *wv = tcase_create("ws_vanish");
    tcase_add_checked_fixture(wv, ws_setup, ws_teardown);
    tcase_set_timeout(wv, 60);
    tcase_add_test(wv, ws_upstream_reset);
    tcase_add_test(wv, ws_upstream_fin);
    tcase_add_test(wv, ws_upstream_reset_mid_frame);
    tcase_add_test(wv, ws_late_client_bytes_after_close);
    suite_add_tcase(s, wv);

    TCase *ab = tcase_create("absolute_form");
    tcase_add_checked_fixture(ab, echo_setup, echo_teardown);
    tcase_set_timeout(ab, 60);
    tcase_add_loop_test(ab, absolute_form, 0, (int)SW_NELEMS(abs_cases));
    suite_add_tcase(s, ab);

    TCase *pg = tcase_create("pings");
    tcase_add_checked_fixture(pg, ws_setup, ws_teardown);
    tcase_set_timeout(pg, 60);
    tcase_add_test(pg, pings_in_one_write);
    tcase_add_test(pg, pings_between_fragments);
    tcase_add_test(pg, pings_while_frame_in_flight);
    tcase_add_test(pg, pings_over_the_queue_bound);
    suite_add_tcase(s, pg);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(faults_suite());
}
