/*
 * drain_test.c - SIGTERM drains: the listeners close at once, an HTTP
 * response in flight still completes (with Connection: close), an idle
 * keep-alive client is let go, every WebSocket gets close 1001 within the
 * first half of shutdown_timeout, and the daemon then exits 0 by itself.
 */
#include "net.h"
#include "support.h"
#include "proc.h"
#include "wsclient.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static struct sw_test_proc be;
static struct sw_test_gw gw;

static void
setup(void)
{
    int port;
    ck_assert(sw_test_backend_start(&be, "b1", &port));
    const char *kv[] = {"B1", sw_test_itoa(port), NULL};
    ck_assert(sw_test_gw_start(&gw, "drain.conf", kv));
}

static void
teardown(void)
{
    sw_test_gw_stop(&gw); /* already exited in every test: reaps it */
    sw_test_proc_stop(&be, 2000);
}

static long
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* The daemon must end by itself, with status 0, within `ms`. */
static void
expect_exit(int ms)
{
    int status = -1;
    ck_assert_msg(sw_test_proc_wait(&gw.proc, ms, &status),
                  "shockwave still running %d ms after SIGTERM", ms);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "shockwave exit status 0x%x", status);
}

START_TEST(http_in_flight_completes)
{
    struct sw_test_conn busy;
    struct sw_test_conn idle;
    ck_assert(sw_test_conn_open(&busy, gw.port));
    ck_assert(sw_test_conn_open(&idle, gw.port));
    /* the idle client made one request and keeps its connection */
    struct sw_test_resp r;
    ck_assert_int_eq(
        sw_test_conn_request(&idle, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", &r),
        1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);

    ck_assert(sw_test_conn_sendf(&busy,
                                 "GET /sleep/1500 HTTP/1.1\r\nHost: x\r\n\r\n"));
    struct timespec pause = {0, 200 * 1000000L};
    nanosleep(&pause, NULL);
    ck_assert(sw_test_proc_signal(&gw.proc, SIGTERM));
    nanosleep(&pause, NULL);

    /* no new connections once draining */
    int fd = sw_test_connect(gw.port, 1000);
    ck_assert_msg(fd < 0, "a new connection was accepted while draining");

    /* the idle keep-alive client is closed without an answer */
    ck_assert_msg(sw_test_conn_closed(&idle, 2000),
                  "idle keep-alive connection kept open while draining");

    /* the request in flight is answered, and the connection then closed */
    busy.timeout_ms = 5000;
    ck_assert_int_eq(sw_test_conn_read_resp(&busy, &r, false), 1);
    ck_assert_int_eq(r.status, 200);
    const char *conn = sw_test_resp_header(&r, "Connection");
    ck_assert_msg(conn != NULL && strcasecmp(conn, "close") == 0,
                  "drained response without Connection: close:\n%s", r.head);
    sw_test_resp_free(&r);
    ck_assert(sw_test_conn_closed(&busy, 2000));
    sw_test_conn_close(&busy);
    sw_test_conn_close(&idle);
    expect_exit(5000);
}
END_TEST

START_TEST(websockets_get_1001)
{
    enum { N = 4 };
    struct sw_test_ws ws[N];
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(sw_test_ws_open(&ws[i], gw.port, "x", "/ws", NULL),
                         101);
        ck_assert(sw_test_ws_send(&ws[i], true, SW_WS_OP_TEXT, "hi", 2));
        struct sw_test_ws_msg m;
        ck_assert_int_eq(sw_test_ws_recv_msg(&ws[i], &m, 5000), 1);
        sw_test_ws_msg_free(&m);
    }
    long t0 = now_ms();
    ck_assert(sw_test_proc_signal(&gw.proc, SIGTERM));
    for (int i = 0; i < N; i++) {
        /* shutdown_timeout 4s: closes are spread over the first 2 s */
        int code = sw_test_ws_expect_close(&ws[i], 4000);
        ck_assert_msg(code == 1001, "connection %d: close %d, want 1001", i,
                      code);
        sw_test_ws_free(&ws[i]);
    }
    long spent = now_ms() - t0;
    ck_assert_msg(spent < 3500, "closes took %ld ms", spent);
    expect_exit(5000);
    /* the gateway said why it stopped */
    ck_assert(sw_test_proc_wait_log(&gw.proc, "draining", 0, 1000) >= 0);
}
END_TEST

static Suite *
drain_suite(void)
{
    Suite *s = suite_create("drain");
    TCase *tc = tcase_create("sigterm");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, http_in_flight_completes);
    tcase_add_test(tc, websockets_get_1001);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(drain_suite());
}
