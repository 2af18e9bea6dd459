/*
 * ws_limits_test.c - every RFC 6455 violation and configured limit through
 * the real daemon (tests/conf/ws_limits.conf) is answered with its close
 * code, the other side gets a close too, the error is counted, and other
 * clients carry on.
 *
 *   wsclient --bad frame--> shockwave --close 1001--> recording upstream
 *            <--close 1002/1007/1009--
 *
 * The recording upstream is a scripted fake (net.h) whose canned 101 holds
 * the accept for a fixed key; everything the gateway forwards to it is
 * recorded and decoded here to find the close it was sent. A second fake
 * answers the upgrade and then breaks the protocol itself (a masked frame
 * from a server): the client gets 1011 and the upstream 1002.
 */
#include "net.h"
#include "support.h"
#include "proc.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 5000
#define FIXED_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static struct sw_test_proc be;   /* swload echo "b1" */
static struct sw_test_fake rec;  /* 101, then records */
static struct sw_test_fake bad;  /* 101 + a masked (illegal) frame */
static char rec_reply[512];      /* rec's canned answer */
static char bad_reply[512];      /* bad's canned answer */
static size_t bad_reply_len;     /* its length (holds a frame) */
static struct sw_test_gw gw;     /* the daemon */

static void
setup(void)
{
    sw_test_ws_answer_101(rec_reply, sizeof(rec_reply), SW_STR(FIXED_KEY),
                          NULL);
    memcpy(bad_reply, rec_reply, strlen(rec_reply));
    bad_reply_len = strlen(rec_reply);
    /* a masked text frame "hi": servers must not mask (RFC 6455 5.1) */
    const uint8_t frame[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
    memcpy(bad_reply + bad_reply_len, frame, sizeof(frame));
    bad_reply_len += sizeof(frame);

    int port;
    ck_assert(sw_test_backend_start(&be, "b1", &port));
    ck_assert(sw_test_fake_start(&rec, SW_TEST_FAKE_STALL, rec_reply,
                                 strlen(rec_reply)));
    ck_assert(sw_test_fake_start(&bad, SW_TEST_FAKE_STALL, bad_reply,
                                 bad_reply_len));
    const char *kv[] = {"B1",  sw_test_itoa(port),     "REC",
                        sw_test_itoa(rec.port), "BAD", sw_test_itoa(bad.port),
                        NULL};
    ck_assert(sw_test_gw_start(&gw, "ws_limits.conf", kv));
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
    sw_test_fake_free(&rec);
    sw_test_fake_free(&bad);
    sw_test_proc_stop(&be, 2000);
}

/* Another client on the echo route still works. */
static void
other_client_ok(void)
{
    struct sw_test_ws ws;
    int st = sw_test_ws_open(&ws, gw.port, "app.example", "/ok", NULL);
    ck_assert_msg(st == 101, "upgrade: %d (%s)", st, ws.why ? ws.why : "-");
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_TEXT, "still ok", 8));
    struct sw_test_ws_msg m;
    ck_assert_int_eq(sw_test_ws_recv_msg(&ws, &m, WAIT_MS), 1);
    ck_assert_str_eq((const char *)m.payload, "still ok");
    sw_test_ws_msg_free(&m);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
}

/*
 * Open a session to the recording upstream, send `pre` (valid frames, may
 * be NULL) and then `bad`, expect close `code` on the client, close
 * `up_code` on the upstream, one more protocol error counted, and another
 * client served.
 */
static void
violation(const char *name, const uint8_t *pre, size_t pre_len,
          const uint8_t *badf, size_t bad_len, int code, int up_code)
{
    long long err0 =
        sw_test_metric(gw.admin_port, "shockwave_ws_protocol_errors_total");
    size_t mark = sw_test_fake_rx_mark(&rec);
    struct sw_test_ws ws;
    int st = sw_test_ws_open_key(&ws, gw.port, "app.example", "/rec/x", NULL,
                                 FIXED_KEY);
    ck_assert_msg(st == 101, "%s: upgrade %d (%s)", name, st,
                  ws.why ? ws.why : "-");
    if (pre_len > 0) {
        ck_assert(sw_test_ws_send_raw(&ws, pre, pre_len));
    }
    ck_assert(sw_test_ws_send_raw(&ws, badf, bad_len));
    int got = sw_test_ws_expect_close(&ws, WAIT_MS);
    ck_assert_msg(got == code, "%s: client got close %d, want %d (%s)", name,
                  got, code, ws.why ? ws.why : "-");
    sw_test_ws_free(&ws);
    int up = sw_test_fake_ws_close(&rec, mark);
    ck_assert_msg(up == up_code,
                  "%s: upstream got close %d, want %d (-1: none, -2: "
                  "unparseable frames)",
                  name, up, up_code);
    long long err1 =
        sw_test_metric(gw.admin_port, "shockwave_ws_protocol_errors_total");
    ck_assert_msg(err1 == err0 + 1, "%s: ws_protocol_errors_total %lld -> %lld",
                  name, err0, err1);
    other_client_ok();
}

#define M1 1, 2, 3, 4 /* a masking key */

START_TEST(reserved_opcode)
{
    const uint8_t f[] = {0x83, 0x80, M1};
    violation("opcode 3", NULL, 0, f, sizeof(f), 1002, 1001);
    const uint8_t g[] = {0x8B, 0x80, M1};
    violation("opcode 0xB", NULL, 0, g, sizeof(g), 1002, 1001);
}
END_TEST

START_TEST(rsv_bits)
{
    const uint8_t f[] = {0xC1, 0x80, M1};
    violation("RSV1", NULL, 0, f, sizeof(f), 1002, 1001);
    const uint8_t g[] = {0x92, 0x80, M1};
    violation("RSV3", NULL, 0, g, sizeof(g), 1002, 1001);
}
END_TEST

START_TEST(unmasked_client_frame)
{
    const uint8_t f[] = {0x81, 0x02, 'h', 'i'};
    violation("unmasked", NULL, 0, f, sizeof(f), 1002, 1001);
}
END_TEST

START_TEST(fragmented_control)
{
    const uint8_t f[] = {0x09, 0x80, M1};
    violation("ping without FIN", NULL, 0, f, sizeof(f), 1002, 1001);
}
END_TEST

START_TEST(control_too_long)
{
    uint8_t f[8 + 126] = {0x89, 0xFE, 0x00, 126, M1};
    memset(f + 8, 'x', 126);
    violation("ping of 126 bytes", NULL, 0, f, sizeof(f), 1002, 1001);
}
END_TEST

START_TEST(cont_without_start)
{
    const uint8_t f[] = {0x80, 0x81, M1, 'a' ^ 1};
    violation("CONT first", NULL, 0, f, sizeof(f), 1002, 1001);
}
END_TEST

START_TEST(data_inside_fragmented)
{
    const uint8_t pre[] = {0x01, 0x81, M1, 'a' ^ 1};
    const uint8_t f[] = {0x81, 0x81, M1, 'b' ^ 1};
    violation("TEXT inside a message", pre, sizeof(pre), f, sizeof(f), 1002,
              1001);
}
END_TEST

START_TEST(length_top_bit)
{
    const uint8_t f[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, M1};
    violation("64-bit length with its top bit", NULL, 0, f, sizeof(f), 1002,
              1001);
}
END_TEST

START_TEST(max_frame)
{
    /* ws_max_frame 64k: a frame of 65537 declared */
    uint8_t f[14 + 1024] = {0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 1, M1};
    violation("frame over ws_max_frame", NULL, 0, f, sizeof(f), 1009, 1001);
}
END_TEST

START_TEST(max_message)
{
    /* ws_max_message 256k: four fragments of 60000 pass, the fifth not */
    enum { FRAG = 60000 };
    uint8_t *pre = calloc(4, FRAG + 8);
    ck_assert_ptr_nonnull(pre);
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t *h = pre + n;
        h[0] = i == 0 ? 0x02 : 0x00;
        h[1] = 0xFE;
        h[2] = FRAG >> 8;
        h[3] = FRAG & 0xff;
        h[4] = 1;
        h[5] = 2;
        h[6] = 3;
        h[7] = 4;
        n += 8 + FRAG;
    }
    uint8_t f[8 + 100] = {0x80, 0xFE, FRAG >> 8, FRAG & 0xff, M1};
    violation("message over ws_max_message", pre, n, f, sizeof(f), 1009,
              1001);
    free(pre);
}
END_TEST

START_TEST(invalid_utf8)
{
    /* 0xC0 0xAF: an overlong '/' */
    const uint8_t f[] = {0x81, 0x82, M1, 0xC0 ^ 1, 0xAF ^ 2};
    violation("invalid UTF-8", NULL, 0, f, sizeof(f), 1007, 1001);
    /* split over fragments: the first one is valid so far */
    const uint8_t pre[] = {0x01, 0x82, M1, 'o' ^ 1, 0xE2 ^ 2};
    const uint8_t g[] = {0x80, 0x81, M1, 'x' ^ 1};
    violation("invalid UTF-8 across fragments", pre, sizeof(pre), g,
              sizeof(g), 1007, 1001);
}
END_TEST

START_TEST(bad_close)
{
    /* 1005 may not be sent on the wire (RFC 6455 7.4.1) */
    const uint8_t f[] = {0x88, 0x82, M1, (1005 >> 8) ^ 1, (1005 & 0xff) ^ 2};
    violation("close 1005", NULL, 0, f, sizeof(f), 1002, 1001);
    const uint8_t g[] = {0x88, 0x81, M1, 0x03 ^ 1};
    violation("close of one byte", NULL, 0, g, sizeof(g), 1002, 1001);
}
END_TEST

START_TEST(upstream_violation)
{
    long long err0 =
        sw_test_metric(gw.admin_port, "shockwave_ws_protocol_errors_total");
    size_t mark = sw_test_fake_rx_mark(&bad);
    struct sw_test_ws ws;
    int st = sw_test_ws_open_key(&ws, gw.port, "app.example", "/bad/x", NULL,
                                 FIXED_KEY);
    ck_assert_msg(st == 101, "upgrade %d (%s)", st, ws.why ? ws.why : "-");
    int got = sw_test_ws_expect_close(&ws, WAIT_MS);
    ck_assert_msg(got == 1011, "client got close %d, want 1011 (%s)", got,
                  ws.why ? ws.why : "-");
    sw_test_ws_free(&ws);
    int up = sw_test_fake_ws_close(&bad, mark);
    ck_assert_msg(up == 1002, "upstream got close %d, want 1002", up);
    ck_assert_int_eq(
        sw_test_metric(gw.admin_port, "shockwave_ws_protocol_errors_total"),
        err0 + 1);
    other_client_ok();
}
END_TEST

static Suite *
ws_limits_suite(void)
{
    Suite *s = suite_create("ws_limits");
    TCase *tc = tcase_create("ws_limits");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, reserved_opcode);
    tcase_add_test(tc, rsv_bits);
    tcase_add_test(tc, unmasked_client_frame);
    tcase_add_test(tc, fragmented_control);
    tcase_add_test(tc, control_too_long);
    tcase_add_test(tc, cont_without_start);
    tcase_add_test(tc, data_inside_fragmented);
    tcase_add_test(tc, length_top_bit);
    tcase_add_test(tc, max_frame);
    tcase_add_test(tc, max_message);
    tcase_add_test(tc, invalid_utf8);
    tcase_add_test(tc, bad_close);
    tcase_add_test(tc, upstream_violation);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(ws_limits_suite());
}
