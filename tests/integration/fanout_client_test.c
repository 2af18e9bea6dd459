/*
 * fanout_client_test.c - what fan-out clients send (tests/conf/fanout.conf):
 * messages forwarded upstream whole and never interleaved, or dropped;
 * pings answered by the gateway on both sides; idle clients pinged;
 * malformed frames closed with 1002 without disturbing the channel; the
 * access log line naming the channel.
 *
 *   client A --fragments--+
 *                         +--> shockwave --one frame per message--> fanback
 *   client B --fragments--+                                        (records)
 *
 * The backend (tests/support/fanback.c) records each message with the
 * number of frames it came in and counts a message that starts inside
 * another as an error.
 */
#include "fanctl.h"
#include "net.h"
#include "proc.h"
#include "support.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 10000

static struct sw_test_fan_rig *rig; /* the fixture's (fanctl.h) */

/* n bytes of the letter ch, as a data frame */
static void
send_run(struct sw_test_ws *ws, bool fin, uint8_t op, char ch, size_t n)
{
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    memset(p, ch, n);
    ck_assert(sw_test_ws_send(ws, fin, op, p, n));
    free(p);
}

/* Find the backend's record of a message whose first byte is ch: its
 * length and frames are checked, and that it holds only ch. */
static void
expect_record(int nrecs, char ch, unsigned op, size_t len)
{
    for (int i = 1; i <= nrecs; i++) {
        char *r = sw_test_fanback_cmd(&rig->feed, "msg %d", i);
        ck_assert_ptr_nonnull(r);
        char *text = strstr(r, " text ");
        if (text == NULL || text[6] != ch) {
            free(r);
            continue;
        }
        unsigned rop = 0, frames = 0;
        size_t rlen = 0;
        int uniform = 0, conn = 0;
        ck_assert_int_eq(sscanf(r,
                                "conn %d op %u len %zu frames %u "
                                "uniform %d",
                                &conn, &rop, &rlen, &frames, &uniform),
                         5);
        ck_assert_msg(rop == op && rlen == len && uniform == 1,
                      "message of '%c' upstream: %s (expected op %u, %zu "
                      "bytes, one letter: not whole or interleaved)",
                      ch, r, op, len);
        ck_assert_msg(frames == 1,
                      "message of '%c' reached the upstream in %u frames, "
                      "expected one",
                      ch, frames);
        free(r);
        return;
    }
    ck_abort_msg("the upstream never received the message of '%c'", ch);
}

START_TEST(client_messages_forwarded_whole)
{
    struct sw_test_ws a, b;
    sw_test_fan_join(&a, rig->gw.port, "/live/fw", NULL);
    sw_test_fan_join(&b, rig->gw.port, "/live/fw", NULL);
    /* two fragmented messages at the same time, a ping inside one */
    send_run(&a, false, SW_WS_OP_TEXT, 'a', 1000);
    send_run(&b, false, SW_WS_OP_TEXT, 'b', 1000);
    ck_assert(sw_test_ws_send(&a, true, SW_WS_OP_PING, "mid", 3));
    send_run(&a, false, SW_WS_OP_CONT, 'a', 1000);
    send_run(&b, false, SW_WS_OP_CONT, 'b', 1000);
    send_run(&a, true, SW_WS_OP_CONT, 'a', 1000);
    sw_test_fan_expect_pong(&a, "mid");
    /* b's tail a little after a's message is whole, so that the gateway
     * most likely holds an unfinished message of b's while a's is
     * complete (a pause to shape the traffic, not a timing check) */
    sw_test_sleep_ms(50);
    send_run(&b, true, SW_WS_OP_CONT, 'b', 1000);
    /* a large binary message in two fragments, and a whole one */
    send_run(&b, false, SW_WS_OP_BINARY, 'c', 100000);
    send_run(&b, true, SW_WS_OP_CONT, 'c', 200000);
    send_run(&a, true, SW_WS_OP_TEXT, 'd', 7);
    long long got = sw_test_fanback_wait(&rig->feed, "msgs", 4, WAIT_MS);
    ck_assert_msg(got == 4, "the upstream received %lld messages, expected 4",
                  got);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "errors"), 0);
    expect_record(4, 'a', SW_WS_OP_TEXT, 3000);
    expect_record(4, 'b', SW_WS_OP_TEXT, 3000);
    expect_record(4, 'c', SW_WS_OP_BINARY, 300000);
    expect_record(4, 'd', SW_WS_OP_TEXT, 7);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "upgraded"), 1);
    /* the broadcast direction still works for both */
    unsigned long long s = sw_test_fanback_send(&rig->feed, 3, 20, false);
    sw_test_fan_expect(&a, "a", s, 3, "/live/fw", 20, WAIT_MS);
    sw_test_fan_expect(&b, "b", s, 3, "/live/fw", 20, WAIT_MS);
    sw_test_fan_leave(&a);
    sw_test_fan_leave(&b);
    sw_test_fan_metric_is(
        rig, "shockwave_fanout_client_messages_forwarded_total", 4);
}
END_TEST

START_TEST(client_messages_dropped)
{
    struct sw_test_ws a;
    sw_test_fan_join(&a, rig->gw.port, "/quiet/d", NULL);
    ck_assert(sw_test_ws_send(&a, true, SW_WS_OP_TEXT, "one", 3));
    send_run(&a, false, SW_WS_OP_TEXT, 't', 500);
    send_run(&a, true, SW_WS_OP_CONT, 't', 500);
    send_run(&a, true, SW_WS_OP_BINARY, 'z', 70000);
    ck_assert(sw_test_ws_send(&a, true, SW_WS_OP_PING, "after", 5));
    sw_test_fan_expect_pong(&a, "after");
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "msgs"), 0);
    unsigned long long s = sw_test_fanback_send(&rig->feed, 2, 20, false);
    sw_test_fan_expect(&a, "a", s, 2, "/quiet/d", 20, WAIT_MS);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "msgs"), 0);
    sw_test_fan_leave(&a);
    sw_test_fan_metric_is(rig, "shockwave_fanout_client_messages_dropped_total",
                          3);
    ck_assert_int_eq(
        sw_test_metric(rig->gw.admin_port,
                       "shockwave_fanout_client_messages_forwarded_total"),
        0);
}
END_TEST

START_TEST(pings_answered_both_sides)
{
    struct sw_test_ws a, b;
    sw_test_fan_join(&a, rig->gw.port, "/live/ping", NULL);
    sw_test_fan_join(&b, rig->gw.port, "/live/ping", NULL);
    ck_assert(sw_test_ws_send(&a, true, SW_WS_OP_PING, "cping", 5));
    sw_test_fan_expect_pong(&a, "cping");
    char big[SW_WS_MAX_CONTROL + 1];
    memset(big, 'p', SW_WS_MAX_CONTROL);
    big[SW_WS_MAX_CONTROL] = '\0';
    ck_assert(sw_test_ws_send(&b, true, SW_WS_OP_PING, big, SW_WS_MAX_CONTROL));
    sw_test_fan_expect_pong(&b, big);
    /* the upstream's ping is answered by the gateway, and reaches no
     * client */
    sw_test_fanback_ok(&rig->feed, "ping up1", "ok 1");
    long long pongs = sw_test_fanback_wait(&rig->feed, "pongs", 1, WAIT_MS);
    ck_assert_msg(pongs == 1, "upstream ping: %lld pongs, expected 1", pongs);
    unsigned long long s = sw_test_fanback_send(&rig->feed, 2, 20, false);
    sw_test_fan_expect(&a, "a", s, 2, "/live/ping", 20, WAIT_MS);
    sw_test_fan_expect(&b, "b", s, 2, "/live/ping", 20, WAIT_MS);
    ck_assert_msg(a.pings == 0 && b.pings == 0,
                  "the upstream's ping reached the clients (%llu, %llu)",
                  (unsigned long long)a.pings, (unsigned long long)b.pings);
    sw_test_fan_leave(&a);
    sw_test_fan_leave(&b);
}
END_TEST

START_TEST(idle_clients_pinged)
{
    struct sw_test_ws a;
    sw_test_fan_join(&a, rig->gw.port, "/idle/x", NULL);
    struct sw_test_ws_frame f;
    int rc = sw_test_ws_recv(&a, &f, WAIT_MS);
    ck_assert_msg(rc == 1 && f.opcode == SW_WS_OP_PING,
                  "idle client: rc %d opcode %u, expected a ping", rc,
                  rc == 1 ? f.opcode : 0);
    ck_assert(
        sw_test_ws_send(&a, true, SW_WS_OP_PONG, f.payload, (size_t)f.len));
    sw_test_ws_frame_free(&f);
    sw_test_fan_leave(&a);
}
END_TEST

/* A client sends one bad frame: a frame of `opcode` with FIN `fin` and
 * `first_or` or-ed into its first byte, masked unless `unmasked`; it must
 * get close 1002. */
static void
bad_frame(const char *why, bool fin, uint8_t opcode, uint8_t first_or,
          bool unmasked)
{
    struct sw_test_ws c;
    sw_test_fan_join(&c, rig->gw.port, "/live/bad", NULL);
    uint8_t out[64];
    size_t n = sw_test_ws_build(&c, out, fin, opcode, "x", 1);
    out[0] |= first_or;
    if (unmasked) {
        out[1] &= 0x7f;
        out[2] = 'x'; /* header of 2 bytes, then the payload */
        n = 3;
    }
    ck_assert(sw_test_ws_send_raw(&c, out, n));
    int code = sw_test_ws_expect_close(&c, WAIT_MS);
    ck_assert_msg(code == 1002, "%s: close %d, expected 1002", why, code);
    sw_test_ws_free(&c);
}

START_TEST(malformed_frame_closed_1002)
{
    struct sw_test_ws a, b;
    sw_test_fan_join(&a, rig->gw.port, "/live/bad", NULL);
    sw_test_fan_join(&b, rig->gw.port, "/live/bad", NULL);
    /* RFC 6455 5.1: unmasked; 5.2: reserved opcode, RSV1 with nothing
     * negotiated; 5.4: continuation without a message, 5.5: fragmented
     * control frame */
    bad_frame("unmasked", true, SW_WS_OP_TEXT, 0, true);
    bad_frame("reserved opcode", true, 0x3, 0, false);
    bad_frame("RSV1", true, SW_WS_OP_TEXT, 0x40, false);
    bad_frame("continuation first", true, SW_WS_OP_CONT, 0, false);
    bad_frame("fragmented ping", false, SW_WS_OP_PING, 0, false);
    /* the channel and its other clients are untouched */
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 2);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "accepted"), 1);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "live"), 1);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "msgs"), 0);
    unsigned long long s = sw_test_fanback_send(&rig->feed, 5, 20, false);
    sw_test_fan_expect(&a, "a", s, 5, "/live/bad", 20, WAIT_MS);
    sw_test_fan_expect(&b, "b", s, 5, "/live/bad", 20, WAIT_MS);
    ck_assert(sw_test_ws_send(&a, true, SW_WS_OP_TEXT, "still", 5));
    ck_assert_int_eq(sw_test_fanback_wait(&rig->feed, "msgs", 1, WAIT_MS), 1);
    ck_assert(sw_test_proc_alive(&rig->gw.proc));
    sw_test_fan_leave(&a);
    sw_test_fan_leave(&b);
}
END_TEST

START_TEST(access_log_names_channel)
{
    struct sw_test_ws a;
    sw_test_fan_join(&a, rig->gw.port, "/room/log?room=7", NULL);
    sw_test_fan_leave(&a);
    long at =
        sw_test_proc_wait_log(&rig->gw.proc, "channel=room-7", 0, WAIT_MS);
    if (at < 0) {
        sw_test_proc_dump(&rig->gw.proc);
    }
    ck_assert_msg(at >= 0, "no access log line with channel=room-7");
}
END_TEST

static Suite *
fanout_client_suite(void)
{
    Suite *s = suite_create("fanout_client");
    TCase *tc = tcase_create("fanout_client");
    rig = sw_test_fan_fixture(tc, "fanout.conf", NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, client_messages_forwarded_whole);
    tcase_add_test(tc, client_messages_dropped);
    tcase_add_test(tc, pings_answered_both_sides);
    tcase_add_test(tc, idle_clients_pinged);
    tcase_add_test(tc, malformed_frame_closed_1002);
    tcase_add_test(tc, access_log_names_channel);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(fanout_client_suite());
}
