/*
 * kernel_relay_test.c - `ws_kernel_relay on;` through the real daemon
 * (tests/conf/kernel_relay.conf) and a `swload echo` backend: small
 * messages are carried by the kernel (its counters move, the gateway's
 * session log and message counts are what the user-space relay gives),
 * pings are still answered by the gateway and the kernel takes the session
 * back after them, a fragmented message with a ping inside it crosses
 * from one path to the other intact, a message over the limit still gets
 * 1009, a route with it off never uses it, and a gateway that may not load
 * BPF says so once and relays in user space.
 *
 *   wsclient --> shockwave [verdict: redirect | pass] --> swload echo
 */
#include "net.h"
#include "proc.h"
#include "support.h"
#include "wsclient.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define WAIT_MS 5000
#define SMALL 200 /* messages per echo run */

static struct sw_test_proc be; /* swload echo */
static struct sw_test_gw gw;   /* the daemon */
static int be_port;

static void
setup(void)
{
    ck_assert(sw_test_backend_start(&be, "b1", &be_port));
    const char *kv[] = {"B1", sw_test_itoa(be_port), NULL};
    ck_assert(sw_test_gw_start(&gw, "kernel_relay.conf", kv));
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
    sw_test_proc_stop(&be, 2000);
}

static long long
metric(const char *name)
{
    return sw_test_metric(gw.admin_port, name);
}

/* Echo n small text messages "m-<i>" (17 bytes with padding), in turn. */
static void
echo_small(struct sw_test_ws *ws, int n)
{
    for (int i = 0; i < n; i++) {
        char text[32];
        snprintf(text, sizeof(text), "m-%014d", i);
        sw_test_ws_echo(ws, SW_WS_OP_TEXT, text, strlen(text), WAIT_MS);
    }
}

/* A session on /k, past its first messages (so it has joined the map). */
static void
open_joined(struct sw_test_ws *ws)
{
    sw_test_ws_open_ok(ws, gw.port, "k.test", "/k");
    echo_small(ws, 10);
}

static void
close_ok(struct sw_test_ws *ws)
{
    ck_assert_int_eq(sw_test_ws_close_handshake(ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(ws);
}

/* Wait until no session is on the kernel relay (a session's end folds
 * its last counts in first); the gauge then. */
static long long
wait_no_session(void)
{
    long long v = metric("shockwave_ws_kernel_relay_sessions");
    for (int i = 0; i < 100 && v != 0; i++) {
        sw_test_sleep_ms(20);
        v = metric("shockwave_ws_kernel_relay_sessions");
    }
    return v;
}

START_TEST(small_messages_go_through_the_kernel)
{
    long long k0 = metric("shockwave_ws_kernel_relay_frames_total");
    long long m0 = metric("shockwave_ws_messages_total");
    long mark = sw_test_proc_log_size(&gw.proc);
    struct sw_test_ws ws;
    sw_test_ws_open_ok(&ws, gw.port, "k.test", "/k");
    echo_small(&ws, SMALL);
    ck_assert_int_eq(metric("shockwave_ws_kernel_relay_sessions"), 1);
    close_ok(&ws);
    /* the session's end folds the last counts in */
    char *line = sw_test_proc_log_line(&gw.proc, mark, " c2u_msgs=", WAIT_MS);
    ck_assert_ptr_nonnull(line);
    char want[96];
    snprintf(want, sizeof(want), "c2u_msgs=%d c2u_bytes=%d u2c_msgs=%d "
             "u2c_bytes=%d closed_by=client code=1000",
             SMALL, SMALL * 16, SMALL, SMALL * 16);
    ck_assert_msg(strstr(line, want) != NULL, "log line: %s (want %s)", line,
                  want);
    free(line);
    long long k1 = metric("shockwave_ws_kernel_relay_frames_total");
    /* both ways; the first messages may pass through the gateway before
     * the session joins, but most go through the kernel */
    ck_assert_msg(k1 - k0 >= SMALL, "the kernel carried %lld frames of %d",
                  k1 - k0, 2 * SMALL);
    /* the session's message count is the same whichever path: 2 per echo */
    ck_assert_int_eq(wait_no_session(), 0);
    ck_assert_int_eq(metric("shockwave_ws_messages_total") - m0, 2 * SMALL);
}
END_TEST

START_TEST(pings_answered_then_back_to_the_kernel)
{
    long long answered0 = metric("shockwave_ws_pings_answered_total");
    long long hand0 = metric("shockwave_ws_kernel_relay_handovers_total");
    struct sw_test_ws ws;
    sw_test_ws_open_ok(&ws, gw.port, "k.test", "/k");
    echo_small(&ws, 20);
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_PING, "abc123", 6));
    struct sw_test_ws_frame f;
    ck_assert_int_eq(sw_test_ws_recv(&ws, &f, WAIT_MS), 1);
    ck_assert_int_eq(f.opcode, SW_WS_OP_PONG);
    ck_assert_uint_eq(f.len, 6);
    ck_assert(memcmp(f.payload, "abc123", 6) == 0);
    sw_test_ws_frame_free(&f);
    ck_assert_int_eq(metric("shockwave_ws_pings_answered_total"),
                     answered0 + 1);
    /* the gateway took the direction toward the client for the pong */
    ck_assert_int_gt(metric("shockwave_ws_kernel_relay_handovers_total"),
                     hand0);
    long long k0 = metric("shockwave_ws_kernel_relay_frames_total");
    echo_small(&ws, 50);
    close_ok(&ws);
    long long k1 = metric("shockwave_ws_kernel_relay_frames_total");
    ck_assert_msg(k1 - k0 >= 50, "after the ping the kernel carried %lld",
                  k1 - k0);
}
END_TEST

/* TEXT "frag-" (no FIN), a ping, CONT "ment" (FIN): the first fragment may
 * go through the kernel, the ping makes the gateway take the rest; the
 * echo is the joined message, and the message count is one. */
START_TEST(fragmented_message_across_paths)
{
    long long m0 = metric("shockwave_ws_messages_total");
    struct sw_test_ws ws;
    open_joined(&ws);
    for (int round = 0; round < 5; round++) {
        ck_assert(sw_test_ws_send(&ws, false, SW_WS_OP_TEXT, "frag-", 5));
        sw_test_sleep_ms(5); /* its own skb */
        ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_PING, "p", 1));
        ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_CONT, "ment", 4));
        struct sw_test_ws_msg m;
        ck_assert_int_eq(sw_test_ws_recv_msg(&ws, &m, WAIT_MS), 1);
        ck_assert_int_eq(m.opcode, SW_WS_OP_TEXT);
        ck_assert_str_eq((const char *)m.payload, "frag-ment");
        sw_test_ws_msg_free(&m);
        ck_assert_int_eq(ws.pongs, round + 1);
    }
    close_ok(&ws);
    /* counted once each, whichever path carried their fragments (the
     * kernel's counts are folded in by the session's end) */
    ck_assert_int_eq(wait_no_session(), 0);
    ck_assert_int_eq(metric("shockwave_ws_messages_total") - m0,
                     2 * (10 + 5));
}
END_TEST

/* A message over ws_max_message (256k) in frames the kernel would carry:
 * the verdict hands the frame that passes the limit to the gateway, which
 * answers 1009 as it does without the kernel relay. */
START_TEST(message_limit_still_enforced)
{
    long long err0 = metric("shockwave_ws_protocol_errors_total");
    struct sw_test_ws ws;
    open_joined(&ws);
    static uint8_t chunk[60 * 1024];
    memset(chunk, 'x', sizeof(chunk));
    bool ok = sw_test_ws_send(&ws, false, SW_WS_OP_BINARY, chunk,
                              sizeof(chunk));
    for (int i = 0; ok && i < 5; i++) {
        ok = sw_test_ws_send(&ws, false, SW_WS_OP_CONT, chunk, sizeof(chunk));
    }
    int code = sw_test_ws_expect_close(&ws, WAIT_MS);
    ck_assert_msg(code == SW_WS_CLOSE_TOO_BIG, "close %d (%s)", code,
                  ws.why != NULL ? ws.why : "");
    sw_test_ws_free(&ws);
    ck_assert_int_eq(metric("shockwave_ws_protocol_errors_total"), err0 + 1);
}
END_TEST

/* Binary messages just under ws_max_frame, in several skbs each: frames the
 * kernel began are finished by whichever path, and come back byte for
 * byte. */
START_TEST(large_messages_intact)
{
    struct sw_test_ws ws;
    open_joined(&ws);
    for (int i = 0; i < 4; i++) {
        ck_assert(sw_test_ws_send_pattern(&ws, true, SW_WS_OP_BINARY,
                                          (uint64_t)i, 60000));
        struct sw_test_ws_msg m;
        ck_assert_int_eq(sw_test_ws_recv_msg(&ws, &m, WAIT_MS), 1);
        ck_assert_uint_eq(m.len, 60000);
        ck_assert(sw_test_pattern_ok((size_t)i, m.payload, 60000));
        sw_test_ws_msg_free(&m);
        echo_small(&ws, 5);
    }
    close_ok(&ws);
}
END_TEST

START_TEST(route_turned_off_stays_in_user_space)
{
    long long k0 = metric("shockwave_ws_kernel_relay_frames_total");
    struct sw_test_ws ws;
    sw_test_ws_open_ok(&ws, gw.port, "k.test", "/off");
    echo_small(&ws, 50);
    ck_assert_int_eq(metric("shockwave_ws_kernel_relay_sessions"), 0);
    close_ok(&ws);
    ck_assert_int_eq(metric("shockwave_ws_kernel_relay_frames_total"), k0);
}
END_TEST

/* bpf() refused (a seccomp filter): the worker says why once, and the
 * sessions run on the user-space relay. */
START_TEST(refused_bpf_falls_back_to_user_space)
{
    struct sw_test_gw g2;
    memset(&g2, 0, sizeof(g2));
    g2.port = sw_test_free_port();
    g2.admin_port = sw_test_free_port();
    const char *kv[] = {"B1", sw_test_itoa(be_port), NULL};
    snprintf(g2.conf_path, sizeof(g2.conf_path), "%s/nobpf.%d.conf",
             sw_test_tmpdir(), g2.port);
    ck_assert(sw_test_gw_render(&g2, "kernel_relay.conf", kv));
    char *argv[] = {(char *)sw_test_env("SW_NO_BPF"),
                    (char *)sw_test_env("SW_SHOCKWAVE"), "-R", "-c",
                    g2.conf_path, NULL};
    ck_assert(sw_test_proc_spawn(&g2.proc, "shockwave", argv));
    ck_assert_int_ge(sw_test_proc_wait_log(&g2.proc, "ready", 0, 10000), 0);
    ck_assert_int_eq(sw_test_proc_log_count(&g2.proc, 0,
                                            "worker 0: kernel relay "
                                            "unavailable (",
                                            "): WebSockets use the "
                                            "user-space relay",
                                            NULL),
                     1);
    struct sw_test_ws ws;
    sw_test_ws_open_ok(&ws, g2.port, "k.test", "/k");
    echo_small(&ws, 20);
    close_ok(&ws);
    ck_assert_int_eq(sw_test_metric(g2.admin_port,
                                    "shockwave_ws_kernel_relay_frames_total"),
                     0);
    ck_assert_int_eq(
        sw_test_metric(g2.admin_port, "shockwave_ws_messages_total"), 40);
    int st = 0;
    ck_assert_msg(sw_test_gw_stop_clean(&g2, &st), "exit status 0x%x", st);
}
END_TEST

static Suite *
kernel_relay_suite(void)
{
    Suite *s = suite_create("kernel_relay");
    TCase *tc = tcase_create("kernel_relay");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, small_messages_go_through_the_kernel);
    tcase_add_test(tc, pings_answered_then_back_to_the_kernel);
    tcase_add_test(tc, fragmented_message_across_paths);
    tcase_add_test(tc, message_limit_still_enforced);
    tcase_add_test(tc, large_messages_intact);
    tcase_add_test(tc, route_turned_off_stays_in_user_space);
    tcase_add_test(tc, refused_bpf_falls_back_to_user_space);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(kernel_relay_suite());
}
