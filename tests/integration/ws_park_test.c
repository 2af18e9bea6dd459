/*
 * ws_park_test.c - idle WebSockets parked and brought back, through the
 * real daemon (tests/conf/ws_park.conf: ws_park_after 100ms, one worker)
 * in front of `swload echo` and the scripted upstream (wsfake.h).
 *
 *   wsclient --frames--> shockwave --frames--> swload echo / wsfake
 *            (idle 100 ms: session and relay reduced to struct sw_parked,
 *             ws_sessions_parked counts it; a byte or a deadline wakes it)
 *
 * Covered: a parked WebSocket is woken by its client and by its upstream
 * and carries on; a text message split by a quiet spell keeps its UTF-8
 * state (valid completes, invalid gets 1007); keepalive pings and the idle
 * timeout still fire while parked; a reload and the drain reach parked
 * WebSockets (the drain's 1001); many parked at once each come back;
 * `ws_park_after 0` never parks; a crowd that closes at once is answered.
 */
#include "net.h"
#include "support.h"
#include "proc.h"
#include "wsclient.h"
#include "wsfake.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define WAIT_MS 5000
#define MANY 64

static struct sw_test_proc be;       /* swload echo */
static struct sw_test_wsfake script; /* speaks on cue */
static struct sw_test_gw gw;         /* the daemon */

static void
setup(void)
{
    int port = 0;
    ck_assert(sw_test_backend_start(&be, "b1", &port));
    ck_assert(sw_test_wsfake_start(&script));
    const char *kv[] = {"B1", sw_test_itoa(port), "S",
                        sw_test_itoa(script.port), NULL};
    ck_assert(sw_test_gw_start(&gw, "ws_park.conf", kv));
}

static void
teardown(void)
{
    int st = 0;
    bool clean = sw_test_gw_stop_clean(&gw, &st);
    sw_test_wsfake_stop(&script);
    sw_test_wsfake_free(&script);
    sw_test_proc_stop(&be, 2000);
    ck_assert_msg(clean, "shockwave did not exit 0 (status 0x%x)", st);
}

static long long
metric(const char *name)
{
    return sw_test_metric(gw.admin_port, name);
}

/* Wait until ws_sessions_parked reads `n`. */
static bool
wait_parked(long long n)
{
    for (int i = 0; i < WAIT_MS / 20; i++) {
        if (metric("shockwave_ws_sessions_parked") == n) {
            return true;
        }
        sw_test_sleep_ms(20);
    }
    return false;
}

static void
ws_open(struct sw_test_ws *ws, const char *path)
{
    sw_test_ws_open_ok(ws, gw.port, "app.example", path);
}

static void
echo_once(struct sw_test_ws *ws, const char *text)
{
    sw_test_ws_echo(ws, SW_WS_OP_TEXT, text, strlen(text), WAIT_MS);
}

START_TEST(woken_by_the_client)
{
    struct sw_test_ws ws;
    ws_open(&ws, "/");
    echo_once(&ws, "before");
    ck_assert_msg(wait_parked(1), "not parked: ws_sessions_parked %lld",
                  metric("shockwave_ws_sessions_parked"));
    ck_assert_int_ge(metric("shockwave_ws_parks_total"), 1);
    ck_assert_int_eq(metric("shockwave_ws_sessions_active"), 1);
    echo_once(&ws, "after");
    /* quiet again: parked again */
    ck_assert(wait_parked(1));
    ck_assert_int_ge(metric("shockwave_ws_parks_total"), 2);
    echo_once(&ws, "again");
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
    ck_assert(wait_parked(0));
}
END_TEST

START_TEST(woken_by_the_upstream)
{
    struct sw_test_ws ws;
    ws_open(&ws, "/scripted/");
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_TEXT, "later 1500", 10));
    ck_assert_msg(wait_parked(1), "not parked while the upstream waits");
    struct sw_test_ws_msg m;
    ck_assert_int_eq(sw_test_ws_recv_msg(&ws, &m, WAIT_MS), 1);
    ck_assert_str_eq((const char *)m.payload, "later");
    sw_test_ws_msg_free(&m);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
}
END_TEST

/* "caf\xc3" + quiet + "\xa9!" is "café!"; "caf\xc3" + quiet + "A" is not
 * UTF-8: the validator's state must survive the park. */
START_TEST(text_message_split_by_a_quiet_spell)
{
    struct sw_test_ws ws;
    ws_open(&ws, "/");
    ck_assert(sw_test_ws_send(&ws, false, SW_WS_OP_TEXT, "caf\xc3", 4));
    ck_assert(wait_parked(1));
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_CONT, "\xa9!", 2));
    struct sw_test_ws_msg m;
    ck_assert_int_eq(sw_test_ws_recv_msg(&ws, &m, WAIT_MS), 1);
    ck_assert_uint_eq(m.len, 6);
    ck_assert(memcmp(m.payload, "caf\xc3\xa9!", 6) == 0);
    sw_test_ws_msg_free(&m);

    ck_assert(sw_test_ws_send(&ws, false, SW_WS_OP_TEXT, "caf\xc3", 4));
    ck_assert(wait_parked(1));
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_CONT, "A", 1));
    ck_assert_int_eq(sw_test_ws_expect_close(&ws, WAIT_MS), 1007);
    sw_test_ws_free(&ws);
}
END_TEST

START_TEST(keepalive_pings_while_parked)
{
    struct sw_test_ws ws;
    ws_open(&ws, "/keepalive/");
    ck_assert(wait_parked(1));
    long long parks = metric("shockwave_ws_parks_total");
    /* two pings, 700 ms apart, each from a parked session */
    for (int i = 0; i < 2; i++) {
        struct sw_test_ws_frame f;
        ck_assert_int_eq(sw_test_ws_recv(&ws, &f, WAIT_MS), 1);
        ck_assert_uint_eq(f.opcode, SW_WS_OP_PING);
        sw_test_ws_frame_free(&f);
        ck_assert(wait_parked(1));
    }
    ck_assert_int_gt(metric("shockwave_ws_parks_total"), parks);
    ck_assert_int_ge(metric("shockwave_ws_pings_sent_total"), 2);
    sw_test_ws_free(&ws);
}
END_TEST

START_TEST(idle_timeout_while_parked)
{
    struct sw_test_ws ws;
    ws_open(&ws, "/idle/");
    ck_assert(wait_parked(1));
    ck_assert_int_eq(sw_test_ws_expect_close(&ws, WAIT_MS), 1001);
    sw_test_ws_free(&ws);
    ck_assert(wait_parked(0));
}
END_TEST

START_TEST(reload_then_drain_reach_parked)
{
    struct sw_test_ws ws;
    ws_open(&ws, "/");
    ck_assert(wait_parked(1));
    long mark = sw_test_proc_log_size(&gw.proc);
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert(sw_test_proc_wait_log(&gw.proc, "reloaded", mark, WAIT_MS) > 0);
    echo_once(&ws, "kept across the reload");
    ck_assert(wait_parked(1));
    ck_assert(sw_test_proc_signal(&gw.proc, SIGTERM));
    ck_assert_int_eq(sw_test_ws_expect_close(&ws, WAIT_MS), 1001);
    sw_test_ws_free(&ws);
}
END_TEST

START_TEST(many_parked_each_come_back)
{
    static struct sw_test_ws ws[MANY];
    for (int i = 0; i < MANY; i++) {
        ws_open(&ws[i], "/");
    }
    ck_assert_msg(wait_parked(MANY), "parked %lld of %d",
                  metric("shockwave_ws_sessions_parked"), MANY);
    for (int i = MANY - 1; i >= 0; i--) {
        char text[32];
        snprintf(text, sizeof(text), "conn %d", i);
        echo_once(&ws[i], text);
    }
    ck_assert_int_eq(metric("shockwave_ws_sessions_active"), MANY);
    for (int i = 0; i < MANY; i++) {
        ck_assert_int_eq(sw_test_ws_close_handshake(&ws[i], 1000, WAIT_MS),
                         1000);
        sw_test_ws_free(&ws[i]);
    }
}
END_TEST

/* Many WebSockets that are not parked (on io_uring all on the ring) end at
 * once: their close frames outnumber the ring's provided buffers (512), so
 * receives run out of buffers and their ends read directly for a while;
 * every close still gets its answer, and the gateway goes on relaying. */
#define CROWD 1200

START_TEST(many_close_at_once)
{
    /* the daemon holds two descriptors per WebSocket, with this process's
     * limit (inherited): the crowd fits in it */
    struct rlimit lim;
    ck_assert(getrlimit(RLIMIT_NOFILE, &lim) == 0);
    int crowd = (int)SW_MIN((rlim_t)CROWD, (lim.rlim_cur - 100) / 2);
    static struct sw_test_ws ws[CROWD];
    for (int i = 0; i < crowd; i++) {
        ws_open(&ws[i], "/never/");
    }
    for (int i = 0; i < crowd; i++) {
        ck_assert(sw_test_ws_send_close(&ws[i], 1000));
    }
    for (int i = 0; i < crowd; i++) {
        int code = sw_test_ws_expect_close(&ws[i], WAIT_MS);
        ck_assert_msg(code == 1000, "WebSocket %d: close %d (%s)", i, code,
                      ws[i].why != NULL ? ws[i].why : "-");
        sw_test_ws_free(&ws[i]);
    }
    struct sw_test_ws after;
    ws_open(&after, "/never/");
    echo_once(&after, "after the crowd");
    ck_assert_int_eq(sw_test_ws_close_handshake(&after, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&after);
}
END_TEST

START_TEST(park_after_zero_never_parks)
{
    struct sw_test_ws ws;
    ws_open(&ws, "/never/");
    echo_once(&ws, "x");
    sw_test_sleep_ms(800);
    ck_assert_int_eq(metric("shockwave_ws_sessions_parked"), 0);
    ck_assert_int_eq(metric("shockwave_ws_parks_total"), 0);
    echo_once(&ws, "y");
    sw_test_ws_free(&ws);
}
END_TEST

static Suite *
park_suite(void)
{
    Suite *s = suite_create("ws_park");
    TCase *tc = tcase_create("park");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, woken_by_the_client);
    tcase_add_test(tc, woken_by_the_upstream);
    tcase_add_test(tc, text_message_split_by_a_quiet_spell);
    tcase_add_test(tc, keepalive_pings_while_parked);
    tcase_add_test(tc, idle_timeout_while_parked);
    tcase_add_test(tc, reload_then_drain_reach_parked);
    tcase_add_test(tc, many_parked_each_come_back);
    tcase_add_test(tc, park_after_zero_never_parks);
    tcase_add_test(tc, many_close_at_once);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(park_suite());
}
