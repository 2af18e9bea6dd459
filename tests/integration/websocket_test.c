/*
 * websocket_test.c - WebSocket traffic through the real daemon
 * (tests/conf/ws_echo.conf) to `swload echo`, driven by our own client
 * (tests/support/wsclient.h, framing from lib/ws).
 *
 *   wsclient --frames--> shockwave (relay) --frames--> swload echo
 *            <--echo---                    <--echo---
 *
 * Covered: echo of text and binary messages of every length class up to
 * 16 MiB (SHA-256 compared), fragments with pings between them, frames
 * split over many TCP writes, the splice and copy paths (metrics), local
 * and forwarded pings, keepalive pings, idle timeout, close handshakes from
 * either side, handshake refusals (400/426, h2c, pipelined bytes, bad
 * upstream accept: 502), protocol and extension pass-through with verbatim
 * frames, and bounded gateway memory under a slow reader.
 *
 * Each test starts its own backend, fake upstream and daemon in the forked
 * test process; proc.c kills them at exit whatever happens.
 */
#include "net.h"
#include "support.h"
#include "proc.h"
#include "wsclient.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 5000
#define MIB (1024 * 1024)

/* A Sec-WebSocket-Key the fake upstream's canned 101 is computed for. */
#define FIXED_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static struct sw_test_proc be;   /* swload echo "b1" */
static int be_port;              /* its port */
static struct sw_test_fake fake; /* canned 101 for FIXED_KEY, then holds */
static char fake_reply[512];     /* its reply */
static struct sw_test_gw gw;     /* the daemon */

static void
setup(void)
{
    sw_test_ws_answer_101(fake_reply, sizeof(fake_reply), SW_STR(FIXED_KEY),
                          "Sec-WebSocket-Protocol: chat\r\n"
                          "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    ck_assert(sw_test_backend_start(&be, "b1", &be_port));
    ck_assert(sw_test_fake_start(&fake, SW_TEST_FAKE_STALL, fake_reply,
                                 strlen(fake_reply)));
    const char *kv[] = {"B1", sw_test_itoa(be_port), "F",
                        sw_test_itoa(fake.port), NULL};
    ck_assert(sw_test_gw_start(&gw, "ws_echo.conf", kv));
}

static void
teardown(void)
{
    int st = sw_test_gw_stop(&gw);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        sw_test_proc_dump(&gw.proc);
    }
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    sw_test_fake_free(&fake);
    sw_test_proc_stop(&be, 2000);
}

/* Open a WebSocket through the gateway or fail the test. */
static void
ws_open(struct sw_test_ws *ws, const char *path)
{
    sw_test_ws_open_ok(ws, gw.port, "app.example", path);
}

static void
echo_once(struct sw_test_ws *ws, uint8_t opcode, const void *p, size_t n)
{
    sw_test_ws_echo(ws, opcode, p, n, WAIT_MS);
}

/* `__stats` of the backend for this connection. */
static void
backend_stats(struct sw_test_ws *ws, long *pings, long *pongs, long *frames)
{
    ck_assert(sw_test_ws_send(ws, true, SW_WS_OP_TEXT, "__stats", 7));
    struct sw_test_ws_msg m;
    ck_assert_int_eq(sw_test_ws_recv_msg(ws, &m, WAIT_MS), 1);
    ck_assert_uint_eq(m.opcode, SW_WS_OP_TEXT);
    int n = sscanf((const char *)m.payload,
                   "{\"pings\":%ld,\"pongs\":%ld,\"frames\":%ld}", pings,
                   pongs, frames);
    ck_assert_msg(n == 3, "__stats answer: %s", (const char *)m.payload);
    sw_test_ws_msg_free(&m);
}

/* The access log line of the session whose client port is `port` (the
 * one with closed_by=, not the relay's info lines). */
static char *
session_line(int port)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "ws 127.0.0.1:%d -> ", port);
    char *line = NULL;
    for (int i = 0; i < 250 && line == NULL; i++) {
        char *text = sw_test_proc_log(&gw.proc);
        for (char *l = strtok(text, "\n"); l != NULL; l = strtok(NULL, "\n")) {
            char *hit = strstr(l, needle);
            if (hit != NULL && strstr(hit, " closed_by=") != NULL) {
                line = strdup(hit);
                break;
            }
        }
        free(text);
        if (line == NULL) {
            usleep(20000);
        }
    }
    ck_assert_msg(line != NULL, "no access log line \"%s... closed_by=\"",
                  needle);
    return line;
}

/* ---- large messages: a sender thread, the reader checks SHA-256 ------- */

struct bg_send {
    pthread_t t;          /* the thread */
    struct sw_test_ws *ws; /* borrowed: the client (send side only) */
    uint8_t opcode;       /* message type */
    uint64_t size;        /* bytes per message (pattern from offset 0) */
    uint64_t frame;       /* bytes per frame, 0 = one frame per message */
    int count;            /* messages */
    bool ok;              /* every send succeeded */
};

static void *
bg_main(void *arg)
{
    struct bg_send *b = arg;
    b->ok = true;
    for (int i = 0; i < b->count && b->ok; i++) {
        uint64_t step = b->frame != 0 ? b->frame : b->size;
        uint64_t off = 0;
        do {
            uint64_t k = SW_MIN(step, b->size - off);
            bool fin = off + k == b->size;
            b->ok = sw_test_ws_send_pattern(
                b->ws, fin, off == 0 ? b->opcode : SW_WS_OP_CONT, off, k);
            off += k;
        } while (b->ok && off < b->size);
    }
    return NULL;
}

static void
sha_cb(const uint8_t *p, size_t n, uint64_t off, void *arg)
{
    SW_UNUSED(off);
    sw_test_sha256_update(arg, p, n);
}

/* Send `count` messages of `size` pattern bytes and check every echo. */
static void
echo_pattern(struct sw_test_ws *ws, uint8_t opcode, uint64_t size,
             uint64_t frame, int count)
{
    char want[65];
    sw_test_sha256_pattern(size, want);
    struct bg_send b = {.ws = ws, .opcode = opcode, .size = size,
                        .frame = frame, .count = count};
    ws->auto_pong = false; /* the reader must not send: one sender */
    ck_assert_int_eq(pthread_create(&b.t, NULL, bg_main, &b), 0);
    struct sw_test_sha256 h;
    ws->payload_cb = sha_cb;
    ws->payload_arg = &h;
    int got = 0;
    for (; got < count; got++) {
        struct sw_test_ws_msg m;
        sw_test_sha256_init(&h);
        int rc = sw_test_ws_recv_msg(ws, &m, 15000);
        char sum[65];
        sw_test_sha256_final(&h, sum);
        if (rc != 1) {
            break;
        }
        ck_assert_uint_eq(m.opcode, opcode);
        ck_assert_uint_eq(m.len, size);
        ck_assert_msg(strcmp(sum, want) == 0,
                      "message %d of %llu bytes: sha256 %s, sent %s", got,
                      (unsigned long long)size, sum, want);
        sw_test_ws_msg_free(&m);
    }
    pthread_join(b.t, NULL);
    ws->payload_cb = NULL;
    ws->payload_arg = NULL;
    ws->auto_pong = true;
    ck_assert_msg(b.ok, "sending %d x %llu bytes failed", count,
                  (unsigned long long)size);
    ck_assert_msg(got == count, "%d of %d echoes of %llu bytes (%s)", got,
                  count, (unsigned long long)size,
                  ws->why != NULL ? ws->why : "-");
}

/* ---- tests ------------------------------------------------------------ */

START_TEST(echo_text_binary)
{
    struct sw_test_ws ws;
    ws_open(&ws, "/chat");
    int port = sw_test_conn_local_port(&ws.conn);
    echo_once(&ws, SW_WS_OP_TEXT, "hello", 5);
    const uint8_t bin[4] = {0x00, 0xff, 0x80, 0x7f};
    echo_once(&ws, SW_WS_OP_BINARY, bin, sizeof(bin));
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);

    char *line = session_line(port);
    char up[64];
    snprintf(up, sizeof(up), "-> 127.0.0.1:%d ", be_port);
    const char *want[] = {up,
                          "c2u_msgs=2 ",
                          "c2u_bytes=9 ",
                          "u2c_msgs=2 ",
                          "u2c_bytes=9 ",
                          "closed_by=client code=1000"};
    for (size_t i = 0; i < SW_NELEMS(want); i++) {
        ck_assert_msg(strstr(line, want[i]) != NULL,
                      "access log line lacks \"%s\": %s", want[i], line);
    }
    free(line);
}
END_TEST

START_TEST(message_sizes)
{
    struct sw_test_ws ws;
    ws_open(&ws, "/sizes");
    const uint64_t sizes[] = {0, 125, 126, 65535, 65536};
    for (size_t i = 0; i < SW_NELEMS(sizes); i++) {
        echo_pattern(&ws, SW_WS_OP_BINARY, sizes[i], 0, 2);
    }
    echo_pattern(&ws, SW_WS_OP_BINARY, 16 * MIB, 0, 1);
    /* the same 16 MiB as a fragmented message of 1 MiB frames */
    echo_pattern(&ws, SW_WS_OP_BINARY, 16 * MIB, MIB, 1);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
}
END_TEST

/* Read frames until `pongs` pongs came; data frames are appended to
 * text/len (fragments of one message). */
static void
read_until_pongs(struct sw_test_ws *ws, uint64_t pongs, char *text,
                 size_t *len, size_t cap, unsigned *frames, bool *fin)
{
    while (ws->pongs < pongs) {
        struct sw_test_ws_frame f;
        int rc = sw_test_ws_recv(ws, &f, WAIT_MS);
        ck_assert_msg(rc == 1, "waiting for pong %llu: rc %d (%s)",
                      (unsigned long long)pongs, rc,
                      ws->why != NULL ? ws->why : "-");
        if (f.opcode == SW_WS_OP_PONG) {
            ws->pongs++;
            ws->last_pong_len = (size_t)f.len;
            memcpy(ws->last_pong, f.payload, (size_t)f.len);
        } else {
            ck_assert_msg(f.opcode == (*frames == 0 ? SW_WS_OP_TEXT
                                                    : SW_WS_OP_CONT),
                          "unexpected opcode %u", f.opcode);
            ck_assert(*len + f.len < cap);
            memcpy(text + *len, f.payload, (size_t)f.len);
            *len += (size_t)f.len;
            (*frames)++;
            *fin = f.fin;
        }
        sw_test_ws_frame_free(&f);
    }
}

START_TEST(fragments_with_pings)
{
    struct sw_test_ws ws;
    ws_open(&ws, "/frag");
    char text[64];
    size_t len = 0;
    unsigned frames = 0;
    bool fin = false;
    /* each ping answered while the message is in flight both ways */
    ck_assert(sw_test_ws_send(&ws, false, SW_WS_OP_TEXT, "Hel", 3));
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_PING, "p1", 2));
    read_until_pongs(&ws, 1, text, &len, sizeof(text), &frames, &fin);
    ck_assert(ws.last_pong_len == 2 && memcmp(ws.last_pong, "p1", 2) == 0);
    ck_assert(sw_test_ws_send(&ws, false, SW_WS_OP_CONT, "lo, ", 4));
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_PING, "p2", 2));
    read_until_pongs(&ws, 2, text, &len, sizeof(text), &frames, &fin);
    ck_assert(ws.last_pong_len == 2 && memcmp(ws.last_pong, "p2", 2) == 0);
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_CONT, "world", 5));
    while (!fin) {
        struct sw_test_ws_frame f;
        ck_assert_int_eq(sw_test_ws_recv(&ws, &f, WAIT_MS), 1);
        ck_assert_uint_eq(f.opcode,
                          frames == 0 ? SW_WS_OP_TEXT : SW_WS_OP_CONT);
        ck_assert(len + f.len < sizeof(text));
        memcpy(text + len, f.payload, (size_t)f.len);
        len += (size_t)f.len;
        frames++;
        fin = f.fin;
        sw_test_ws_frame_free(&f);
    }
    text[len] = '\0';
    ck_assert_str_eq(text, "Hello, world");
    ck_assert_uint_eq(frames, 3);

    /* two pings in one write: each answered, as a peer answering directly
     * would (ws_faults_test.c checks their order and payloads) */
    uint8_t two[64];
    size_t n = sw_test_ws_build(&ws, two, true, SW_WS_OP_PING, "q1", 2);
    n += sw_test_ws_build(&ws, two + n, true, SW_WS_OP_PING, "q2", 2);
    ck_assert(sw_test_ws_send_raw(&ws, two, n));
    uint64_t before = ws.pongs;
    long pings = -1, pongs = -1, nframes = -1;
    backend_stats(&ws, &pings, &pongs, &nframes);
    ck_assert_msg(ws.pongs == before + 2, "%llu pongs for two pings",
                  (unsigned long long)(ws.pongs - before));
    ck_assert(ws.last_pong_len == 2 && memcmp(ws.last_pong, "q2", 2) == 0);
    ck_assert_int_eq(pings, 0);
    ck_assert_int_eq(nframes, 3);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
}
END_TEST

START_TEST(split_writes)
{
    struct sw_test_ws ws;
    struct sw_test_rng rng;
    sw_test_rng_init(&rng, 0x5eed);
    ws_open(&ws, "/split");
    /* a small frame, one byte per write */
    uint8_t text[100];
    for (size_t i = 0; i < sizeof(text); i++) {
        text[i] = (uint8_t)('a' + i % 26);
    }
    uint8_t frame[sizeof(text) + SW_WS_MAX_HEADER];
    size_t n = sw_test_ws_build(&ws, frame, true, SW_WS_OP_TEXT, text,
                                sizeof(text));
    ck_assert(sw_test_ws_send_split(&ws, frame, n, &rng, 1, 1000));
    struct sw_test_ws_msg m;
    ck_assert_int_eq(sw_test_ws_recv_msg(&ws, &m, WAIT_MS), 1);
    ck_assert_uint_eq(m.len, sizeof(text));
    ck_assert(memcmp(m.payload, text, sizeof(text)) == 0);
    sw_test_ws_msg_free(&m);

    /* a 1 MiB frame: header a byte or two at a time, payload in random
     * pieces of up to 64 KiB (the echo is 1 MiB: fits the socket buffers
     * of the chain, so sending before reading cannot deadlock) */
    size_t size = MIB;
    uint8_t *payload = malloc(size);
    uint8_t *big = malloc(size + SW_WS_MAX_HEADER);
    ck_assert(payload != NULL && big != NULL);
    sw_test_pattern_fill(0, payload, size);
    n = sw_test_ws_build(&ws, big, true, SW_WS_OP_BINARY, payload, size);
    ck_assert(sw_test_ws_send_split(&ws, big, 24, &rng, 2, 1000));
    ck_assert(sw_test_ws_send_split(&ws, big + 24, n - 24, &rng, 65536, 0));
    ck_assert_int_eq(sw_test_ws_recv_msg(&ws, &m, WAIT_MS), 1);
    ck_assert_uint_eq(m.len, size);
    ck_assert(sw_test_pattern_ok(0, m.payload, size));
    sw_test_ws_msg_free(&m);
    free(payload);
    free(big);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
}
END_TEST

/* Payload bytes the kernel relay moved (0 without it): like spliced
 * bytes, never copied through the gateway's buffers. */
static long long
kernel_bytes(void)
{
    return sw_test_metric(gw.admin_port,
                          "shockwave_ws_kernel_relay_bytes_total");
}

START_TEST(splice_and_copy)
{
    /* default route: large payloads are spliced; with the kernel relay
     * they are copied (its sockets are read through its own queue, which
     * splice does not see, and it carries only frames that end in the
     * skb they came in) */
    long long sp0 =
        sw_test_metric(gw.admin_port, "shockwave_ws_spliced_bytes_total");
    long long cp0 =
        sw_test_metric(gw.admin_port, "shockwave_ws_copied_bytes_total");
    long long kb0 = kernel_bytes();
    ck_assert_msg(sp0 >= 0 && cp0 >= 0, "ws byte counters missing");
    struct sw_test_ws ws;
    ws_open(&ws, "/splice");
    echo_pattern(&ws, SW_WS_OP_BINARY, MIB, 0, 4);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
    long long sp1 =
        sw_test_metric(gw.admin_port, "shockwave_ws_spliced_bytes_total");
    long long cp1 =
        sw_test_metric(gw.admin_port, "shockwave_ws_copied_bytes_total");
    /* 4 MiB each way; whatever arrived with a header is copied first (on
     * io_uring what the ring received beyond it goes through the pipe:
     * docs/architecture.md), so at least half is spliced on both engines */
    long long kb1 = kernel_bytes();
    long long want = sw_test_kernel_relay() ? 0 : 4LL * MIB;
    ck_assert_msg(sp1 - sp0 >= want,
                  "spliced %lld bytes of 8 MiB, the kernel relay %lld "
                  "(copied %lld)",
                  sp1 - sp0, kb1 - kb0, cp1 - cp0);
    ck_assert_int_eq((sp1 - sp0) + (cp1 - cp0) + (kb1 - kb0), 8LL * MIB);
    if (sw_test_kernel_relay()) {
        ck_assert_int_eq(sp1, sp0); /* its sockets are never spliced */
    }

    /* ws_splice_threshold 0: everything copied */
    ws_open(&ws, "/copy/x");
    echo_pattern(&ws, SW_WS_OP_BINARY, MIB, 0, 4);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
    long long sp2 =
        sw_test_metric(gw.admin_port, "shockwave_ws_spliced_bytes_total");
    long long cp2 =
        sw_test_metric(gw.admin_port, "shockwave_ws_copied_bytes_total");
    ck_assert_int_eq(sp2, sp1);
    ck_assert_int_eq((cp2 - cp1) + (kernel_bytes() - kb1), 8LL * MIB);
}
END_TEST

START_TEST(ping_local_and_forward)
{
    long long answered0 =
        sw_test_metric(gw.admin_port, "shockwave_ws_pings_answered_total");
    struct sw_test_ws ws;
    ws_open(&ws, "/ping");
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_PING, "abc123", 6));
    struct sw_test_ws_frame f;
    ck_assert_int_eq(sw_test_ws_recv(&ws, &f, WAIT_MS), 1);
    ck_assert_uint_eq(f.opcode, SW_WS_OP_PONG);
    ck_assert_uint_eq(f.len, 6);
    ck_assert_str_eq((const char *)f.payload, "abc123");
    sw_test_ws_frame_free(&f);
    /* an unsolicited pong is consumed as well */
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_PONG, "zz", 2));
    long pings = -1, pongs = -1, frames = -1;
    backend_stats(&ws, &pings, &pongs, &frames);
    ck_assert_int_eq(pings, 0);
    ck_assert_int_eq(pongs, 0);
    ck_assert_int_eq(frames, 0);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
    ck_assert_int_ge(
        sw_test_metric(gw.admin_port, "shockwave_ws_pings_answered_total"),
        answered0 + 1);

    /* ws_ping forward: the backend answers, and counts it */
    ws_open(&ws, "/fwd/ping");
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_PING, "xyz", 3));
    ck_assert_int_eq(sw_test_ws_recv(&ws, &f, WAIT_MS), 1);
    ck_assert_uint_eq(f.opcode, SW_WS_OP_PONG);
    ck_assert_str_eq((const char *)f.payload, "xyz");
    sw_test_ws_frame_free(&f);
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_PONG, "zz", 2));
    backend_stats(&ws, &pings, &pongs, &frames);
    ck_assert_int_eq(pings, 1);
    ck_assert_int_eq(pongs, 1);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
}
END_TEST

START_TEST(keepalive_ping)
{
    long long sent0 =
        sw_test_metric(gw.admin_port, "shockwave_ws_pings_sent_total");
    struct sw_test_ws ws;
    ws_open(&ws, "/keepalive/a");
    /* idle: within a few intervals the gateway pings us */
    struct sw_test_ws_frame f;
    ck_assert_int_eq(sw_test_ws_recv(&ws, &f, 2000), 1);
    ck_assert_uint_eq(f.opcode, SW_WS_OP_PING);
    ck_assert(f.fin);
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_PONG, f.payload,
                              (size_t)f.len));
    sw_test_ws_frame_free(&f);
    ck_assert_int_ge(
        sw_test_metric(gw.admin_port, "shockwave_ws_pings_sent_total"),
        sent0 + 1);
    /* the session still relays, and the backend saw none of it */
    echo_once(&ws, SW_WS_OP_TEXT, "still here", 10);
    long pings = -1, pongs = -1, frames = -1;
    backend_stats(&ws, &pings, &pongs, &frames);
    ck_assert_int_eq(pongs, 0);
    ck_assert_int_eq(frames, 1);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
}
END_TEST

START_TEST(idle_timeout)
{
    struct sw_test_ws ws;
    ws_open(&ws, "/idle/a");
    int port = sw_test_conn_local_port(&ws.conn);
    uint64_t t0 = sw_now_ms();
    int code = sw_test_ws_expect_close(&ws, 3000);
    uint64_t waited = sw_now_ms() - t0;
    ck_assert_msg(code == 1001, "idle session: close %d (%s)", code,
                  ws.why != NULL ? ws.why : "-");
    ck_assert_msg(waited >= 400, "closed after %llu ms, idle timeout 500ms",
                  (unsigned long long)waited);
    sw_test_ws_free(&ws);
    char *line = session_line(port);
    ck_assert_msg(strstr(line, "closed_by=gateway code=1001") != NULL,
                  "access log: %s", line);
    free(line);
}
END_TEST

START_TEST(close_both_ways)
{
    long long active0 =
        sw_test_metric(gw.admin_port, "shockwave_ws_sessions_active");
    struct sw_test_ws ws;
    ws_open(&ws, "/close");
    echo_once(&ws, SW_WS_OP_TEXT, "x", 1);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);

    /* the backend closes with 4000: the client gets 4000 */
    ws_open(&ws, "/close");
    int port = sw_test_conn_local_port(&ws.conn);
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_TEXT, "__close 4000", 12));
    int code = sw_test_ws_expect_close(&ws, WAIT_MS);
    ck_assert_msg(code == 4000, "backend close: got %d (%s)", code,
                  ws.why != NULL ? ws.why : "-");
    sw_test_ws_free(&ws);
    char *line = session_line(port);
    ck_assert_msg(strstr(line, "closed_by=upstream code=4000") != NULL,
                  "access log: %s", line);
    free(line);

    /* the gateway keeps serving, WebSocket and HTTP */
    ws_open(&ws, "/close");
    echo_once(&ws, SW_WS_OP_BINARY, "again", 5);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1001, WAIT_MS), 1001);
    sw_test_ws_free(&ws);
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.port, "app.example", "/plain/x",
                                      &r), 1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);
    /* every session ended */
    long long active = -1;
    for (int i = 0; i < 50; i++) {
        active = sw_test_metric(gw.admin_port, "shockwave_ws_sessions_active");
        if (active == active0) {
            break;
        }
        usleep(20000);
    }
    ck_assert_int_eq(active, active0);
}
END_TEST

/* Send a raw request on a new connection; expect one refusal with
 * Connection: close and then the end of the connection. */
static void
refused(const char *req, int status)
{
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert(sw_test_conn_send(&c, req, strlen(req)));
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    ck_assert_msg(r.status == status, "want %d, got %d for:\n%s", status,
                  r.status, req);
    if (status == 426) {
        const char *v = sw_test_resp_header(&r, "Sec-WebSocket-Version");
        ck_assert_msg(v != NULL && strcmp(v, "13") == 0,
                      "426 without Sec-WebSocket-Version: 13:\n%s", r.head);
    }
    ck_assert(sw_test_resp_header(&r, "Sec-WebSocket-Accept") == NULL);
    sw_test_resp_free(&r);
    ck_assert_msg(sw_test_conn_closed(&c, WAIT_MS),
                  "bytes or no close after %d: %.*s", status, (int)c.len,
                  c.buf);
    sw_test_conn_close(&c);
}

#define WS_HEAD(path, extra)                                                  \
    "GET " path " HTTP/1.1\r\nHost: app.example\r\n" extra "\r\n"

START_TEST(handshake_refused)
{
    long long rej0 =
        sw_test_metric(gw.admin_port, "shockwave_ws_handshake_rejected_total");
    const char *up = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    char req[1024];
    struct {
        const char *extra; /* headers after Host */
        const char *method; /* request line start */
        int status;         /* expected */
    } cases[] = {
        /* no key */
        {"Sec-WebSocket-Version: 13\r\n", "GET /fake/a HTTP/1.1", 400},
        /* key of 15 bytes */
        {"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n"
         "Sec-WebSocket-Version: 13\r\n",
         "GET /fake/a HTTP/1.1", 400},
        /* two keys */
        {"Sec-WebSocket-Key: " FIXED_KEY "\r\nSec-WebSocket-Key: " FIXED_KEY
         "\r\nSec-WebSocket-Version: 13\r\n",
         "GET /fake/a HTTP/1.1", 400},
        /* no version */
        {"Sec-WebSocket-Key: " FIXED_KEY "\r\n", "GET /fake/a HTTP/1.1", 400},
        /* wrong version */
        {"Sec-WebSocket-Key: " FIXED_KEY "\r\nSec-WebSocket-Version: 8\r\n",
         "GET /fake/a HTTP/1.1", 426},
        /* not GET */
        {"Sec-WebSocket-Key: " FIXED_KEY "\r\nSec-WebSocket-Version: 13\r\n"
         "Content-Length: 0\r\n",
         "POST /fake/a HTTP/1.1", 400},
        /* a body */
        {"Sec-WebSocket-Key: " FIXED_KEY "\r\nSec-WebSocket-Version: 13\r\n"
         "Content-Length: 5\r\n",
         "GET /fake/a HTTP/1.1", 400},
    };
    for (size_t i = 0; i < SW_NELEMS(cases); i++) {
        snprintf(req, sizeof(req), "%s\r\nHost: app.example\r\n%s%s\r\n%s",
                 cases[i].method, up, cases[i].extra,
                 strstr(cases[i].extra, "Content-Length: 5") ? "hello" : "");
        refused(req, cases[i].status);
    }
    long long rej1 =
        sw_test_metric(gw.admin_port, "shockwave_ws_handshake_rejected_total");
    ck_assert_int_ge(rej1 - rej0, (long long)SW_NELEMS(cases));

    /* bytes pipelined behind a refused upgrade are never relayed: one
     * answer, then the connection ends */
    uint8_t frame[64];
    struct sw_test_ws tmp = {0};
    tmp.rng = malloc(sizeof(*tmp.rng));
    ck_assert(tmp.rng != NULL && sw_ws_rng_init(tmp.rng) == SW_OK);
    size_t fl = sw_test_ws_build(&tmp, frame, true, SW_WS_OP_TEXT, "smuggled",
                                 8);
    sw_ws_rng_fini(tmp.rng);
    free(tmp.rng);
    char *pipelined = malloc(2048);
    ck_assert_ptr_nonnull(pipelined);
    int hl = snprintf(pipelined, 2048,
                      "GET /fake/b HTTP/1.1\r\nHost: app.example\r\n%s"
                      "Sec-WebSocket-Key: " FIXED_KEY "\r\n"
                      "Sec-WebSocket-Version: 99\r\n\r\n",
                      up);
    memcpy(pipelined + hl, frame, fl);
    int tl = snprintf(pipelined + hl + fl, 2048 - (size_t)hl - fl,
                      "GET /fake/c HTTP/1.1\r\nHost: app.example\r\n\r\n");
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert(sw_test_conn_send(&c, pipelined, (size_t)hl + fl + (size_t)tl));
    free(pipelined);
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    ck_assert_int_eq(r.status, 426);
    sw_test_resp_free(&r);
    ck_assert_msg(sw_test_conn_closed(&c, WAIT_MS),
                  "more after the refusal: %.*s", (int)c.len, c.buf);
    sw_test_conn_close(&c);

    /* none of it reached the upstream */
    usleep(100000);
    size_t rx_len = 0;
    char *rx = sw_test_fake_rx(&fake, &rx_len);
    ck_assert_msg(rx_len == 0 && atomic_load(&fake.accepts) == 0,
                  "the upstream got %zu bytes on %d connections:\n%s",
                  rx_len, atomic_load(&fake.accepts), rx);
    free(rx);
}
END_TEST

START_TEST(h2c_and_plain_upgrade)
{
    /* h2c: Upgrade dropped, answered as HTTP/1.1 by the backend */
    struct sw_test_resp r;
    ck_assert_int_eq(
        sw_test_http_once(gw.port,
                          "GET /h2c HTTP/1.1\r\nHost: app.example\r\n"
                          "Upgrade: h2c\r\n"
                          "Connection: Upgrade, HTTP2-Settings, close\r\n"
                          "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
                          "\r\n",
                          &r),
        1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(sw_test_resp_header(&r, "X-Backend"), "b1");
    ck_assert_msg(sw_test_echo_count(r.body, "Upgrade") == 0 &&
                      sw_test_echo_count(r.body, "HTTP2-Settings") == 0,
                  "Upgrade reached the upstream:\n%s", r.body);
    ck_assert_msg(strncmp(r.body, "GET /h2c HTTP/1.1", 17) == 0, "%s",
                  r.body);
    sw_test_resp_free(&r);

    /* a WebSocket upgrade on a route without `websocket on`: plain HTTP,
     * and what is pipelined behind it is parsed as HTTP too (frame bytes
     * are not a request: once a blank line completes that "head", 400),
     * never relayed as frames */
    struct sw_test_ws tmp = {0};
    tmp.rng = malloc(sizeof(*tmp.rng));
    ck_assert(tmp.rng != NULL && sw_ws_rng_init(tmp.rng) == SW_OK);
    uint8_t frame[64];
    size_t fl = sw_test_ws_build(&tmp, frame, true, SW_WS_OP_TEXT, "hi", 2);
    sw_ws_rng_fini(tmp.rng);
    free(tmp.rng);
    const char *head = "GET /plain/ws HTTP/1.1\r\nHost: app.example\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: " FIXED_KEY "\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n"
                       "GET /plain/next HTTP/1.1\r\nHost: app.example\r\n\r\n";
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert(sw_test_conn_send(&c, head, strlen(head)));
    ck_assert(sw_test_conn_send(&c, frame, fl));
    ck_assert(sw_test_conn_send(&c, "\r\n\r\n", 4));
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strncmp(r.body, "GET /plain/ws HTTP/1.1", 22) == 0, "%s",
                  r.body);
    ck_assert_msg(sw_test_echo_count(r.body, "Upgrade") == 0,
                  "Upgrade reached the upstream:\n%s", r.body);
    sw_test_resp_free(&r);
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strncmp(r.body, "GET /plain/next HTTP/1.1", 24) == 0, "%s",
                  r.body);
    sw_test_resp_free(&r);
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    ck_assert_int_eq(r.status, 400);
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);
}
END_TEST

START_TEST(upstream_handshake)
{
    /* the fake's 101 carries the accept for FIXED_KEY: another key -> 502 */
    struct sw_test_ws ws;
    int st = sw_test_ws_open(&ws, gw.port, "app.example", "/fake/bad", NULL);
    ck_assert_msg(st == 502, "101 with a wrong accept: client got %d\n%s", st,
                  ws.head != NULL ? ws.head : "");
    sw_test_ws_free(&ws);

    /* FIXED_KEY: subprotocol and extension pass both ways, frames (RSV1
     * allowed by permessage-deflate) reach the upstream byte for byte */
    size_t mark = 0;
    free(sw_test_fake_rx(&fake, &mark));
    st = sw_test_ws_open_key(
        &ws, gw.port, "app.example", "/fake/good",
        "Sec-WebSocket-Protocol: chat, superchat\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; "
        "client_max_window_bits\r\n",
        FIXED_KEY);
    ck_assert_msg(st == 101, "status %d (%s)", st, ws.why ? ws.why : "-");
    ck_assert_msg(strstr(ws.head, "Sec-WebSocket-Protocol: chat\r\n") != NULL,
                  "%s", ws.head);
    ck_assert_msg(strstr(ws.head, "Sec-WebSocket-Extensions: "
                                  "permessage-deflate\r\n") != NULL,
                  "%s", ws.head);
    uint8_t frame[64];
    size_t fl = sw_test_ws_build(&ws, frame, true, SW_WS_OP_BINARY,
                                 "\x01\x02\x03\x04\x05", 5);
    frame[0] |= 0x40; /* RSV1: a compressed message */
    ck_assert(sw_test_ws_send_raw(&ws, frame, fl));
    char *rx = NULL;
    size_t rx_len = 0;
    bool seen = false;
    for (int i = 0; i < 100 && !seen; i++) {
        free(rx);
        rx = sw_test_fake_rx(&fake, &rx_len);
        seen = rx_len >= mark + fl &&
               memmem(rx + mark, rx_len - mark, frame, fl) != NULL;
        if (!seen) {
            usleep(20000);
        }
    }
    ck_assert_msg(seen, "frame not relayed verbatim; upstream got:\n%s",
                  rx + mark);
    char *req = rx + mark;
    ck_assert_msg(strcasestr(req, "Sec-WebSocket-Protocol: chat, superchat") !=
                          NULL &&
                      strcasestr(req, "Sec-WebSocket-Extensions: "
                                      "permessage-deflate") != NULL &&
                      strcasestr(req, "Sec-WebSocket-Key: " FIXED_KEY) !=
                          NULL,
                  "upgrade request upstream:\n%s", req);
    /* the frame follows the head directly: nothing else was relayed */
    char *eoh = strstr(req, "\r\n\r\n");
    ck_assert_ptr_nonnull(eoh);
    ck_assert(memcmp(eoh + 4, frame, fl) == 0);
    free(rx);
    sw_test_ws_free(&ws);
}
END_TEST

/* Peak and current resident memory of the daemon, KiB. */
static long
rss_kb(pid_t pid, const char *field)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        return -1;
    }
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    }
    fclose(fp);
    return v;
}

/* Streaming reader of echoed 1 MiB pattern frames. */
struct slow_reader {
    struct sw_ws_decoder dec; /* server frames */
    uint64_t remaining;       /* payload bytes of the current frame left */
    uint64_t off;             /* offset in the current frame */
    bool in_payload;          /* between header and end of payload */
    int frames;               /* complete echoes */
    bool bad;                 /* a byte differed or a frame was wrong */
};

static void
slow_feed(struct slow_reader *s, const uint8_t *p, size_t n)
{
    while (n > 0 && !s->bad) {
        if (!s->in_payload) {
            struct sw_ws_frame f;
            ssize_t k = sw_ws_frame_decode(&s->dec, p, n, &f);
            if (k == SW_AGAIN) {
                return;
            }
            if (k < 0 || f.opcode != SW_WS_OP_BINARY ||
                f.payload_len != MIB) {
                s->bad = true;
                return;
            }
            p += k;
            n -= (size_t)k;
            s->in_payload = true;
            s->remaining = f.payload_len;
            s->off = 0;
        }
        size_t k = (size_t)SW_MIN((uint64_t)n, s->remaining);
        if (!sw_test_pattern_ok(s->off, p, k)) {
            s->bad = true;
            return;
        }
        p += k;
        n -= k;
        s->off += k;
        s->remaining -= k;
        if (s->remaining == 0) {
            s->in_payload = false;
            s->frames++;
        }
    }
}

START_TEST(slow_reader_bounded)
{
    enum { COUNT = 200 };
    struct sw_test_ws ws;
    ws_open(&ws, "/slow");
    int fd = ws.conn.fd;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    uint8_t *payload = malloc(MIB);
    uint8_t *frame = malloc(MIB + SW_WS_MAX_HEADER);
    uint8_t *rbuf = malloc(256 * 1024);
    ck_assert(payload != NULL && frame != NULL && rbuf != NULL);
    sw_test_pattern_fill(0, payload, MIB);
    struct slow_reader s;
    memset(&s, 0, sizeof(s));
    sw_ws_decoder_init(&s.dec, SW_WS_PEER_SERVER, 0, 0);
    /* bytes the 101 read brought along */
    slow_feed(&s, (const uint8_t *)ws.conn.buf, ws.conn.len);

    int sent = 0;
    size_t flen = 0, fpos = 0;
    uint64_t bytes_out = 0;
    /* phase 1: write without reading until the chain is full for 1 s */
    uint64_t stuck_since = 0;
    uint64_t deadline = sw_now_ms() + 60000;
    bool reading = false;
    while (s.frames < COUNT && !s.bad && sw_now_ms() < deadline) {
        if (fpos == flen && sent < COUNT) {
            flen = sw_test_ws_build(&ws, frame, true, SW_WS_OP_BINARY,
                                    payload, MIB);
            fpos = 0;
            sent++;
        }
        bool wrote = false;
        if (fpos < flen) {
            ssize_t w = send(fd, frame + fpos, flen - fpos,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                fpos += (size_t)w;
                bytes_out += (uint64_t)w;
                wrote = true;
            } else {
                ck_assert_msg(w < 0 && (errno == EAGAIN || errno == EINTR),
                              "send: %s", strerror(errno));
            }
        }
        if (!reading) {
            if (wrote) {
                stuck_since = 0;
            } else if (stuck_since == 0) {
                stuck_since = sw_now_ms();
            } else if (sw_now_ms() - stuck_since >= 1000) {
                reading = true; /* backpressure reached the writer */
                long hwm = rss_kb(gw.proc.pid, "VmHWM");
                fprintf(stderr,
                        "slow reader: writer blocked after %llu bytes, "
                        "gateway VmHWM %ld KiB\n",
                        (unsigned long long)bytes_out, hwm);
                ck_assert_msg(bytes_out < 64ULL * MIB,
                              "%llu bytes accepted with nobody reading",
                              (unsigned long long)bytes_out);
            }
            if (!wrote) {
                usleep(1000);
            }
            continue;
        }
        /* phase 2: read slowly: 128 KiB per 2 ms at most */
        ssize_t r = recv(fd, rbuf, 128 * 1024, MSG_DONTWAIT);
        if (r > 0) {
            slow_feed(&s, rbuf, (size_t)r);
        } else {
            ck_assert_msg(r < 0 && (errno == EAGAIN || errno == EINTR),
                          "connection ended after %d echoes", s.frames);
        }
        usleep(2000);
    }
    long hwm = rss_kb(gw.proc.pid, "VmHWM");
    long rss = rss_kb(gw.proc.pid, "VmRSS");
    fprintf(stderr, "slow reader: %d x 1 MiB echoed, gateway VmHWM %ld KiB, "
                    "VmRSS %ld KiB\n",
            s.frames, hwm, rss);
    ck_assert_msg(!s.bad, "echo %d differs from what was sent", s.frames);
    ck_assert_int_eq(s.frames, COUNT);
    ck_assert_msg(hwm > 0 && hwm < 64 * 1024,
                  "gateway VmHWM %ld KiB (limit 64 MiB)", hwm);
    free(payload);
    free(frame);
    free(rbuf);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
}
END_TEST

static Suite *
websocket_suite(void)
{
    Suite *s = suite_create("websocket");
    TCase *tc = tcase_create("websocket");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, echo_text_binary);
    tcase_add_test(tc, message_sizes);
    tcase_add_test(tc, fragments_with_pings);
    tcase_add_test(tc, split_writes);
    tcase_add_test(tc, splice_and_copy);
    tcase_add_test(tc, ping_local_and_forward);
    tcase_add_test(tc, keepalive_ping);
    tcase_add_test(tc, idle_timeout);
    tcase_add_test(tc, close_both_ways);
    tcase_add_test(tc, handshake_refused);
    tcase_add_test(tc, h2c_and_plain_upgrade);
    tcase_add_test(tc, upstream_handshake);
    tcase_add_test(tc, slow_reader_bounded);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(websocket_suite());
}
