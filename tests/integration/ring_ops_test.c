/*
 * ring_ops_test.c - accept, connect and close on the worker's io_uring ring
 * (`io_engine io_uring`: the listener's multishot accept, IORING_OP_CONNECT
 * toward upstreams, IORING_OP_CLOSE), answered as on epoll:
 *   - a crowd of connections opened at once is accepted and served;
 *   - the accept hits the open-files limit: the daemon logs it, holds off,
 *     and answers again once descriptors are free;
 *   - a refused connect falls through to the next server (200), a connect
 *     that times out is a 504;
 *   - a reload keeps the listener accepting.
 * The ring's counters (shockwave_io_uring_accepts/connects/closes_total)
 * show the ring did it on io_uring, and stay 0 on epoll, where the same
 * tests run on libevent.
 *
 * tests/conf/ring_ops.conf: pair.test is (dead server, swload echo);
 * full.test's server never accepts.
 */
#include "net.h"
#include "proc.h"
#include "support.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define N_CROWD 200

static struct sw_test_proc be; /* swload echo "b1" */
static struct sw_test_gw gw;
static int full_fd = -1; /* full.test's server: listens, never accepts */
static int full_fill[4]; /* connections filling its backlog */

static int
listen_full(int *port)
{
    int fd = sw_test_listen_loopback(0, port);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)*port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* fill the accept queue: later SYNs are dropped, connects hang */
    for (int i = 0; i < 4; i++) {
        full_fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(full_fill[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    struct timespec pause = {0, 200 * 1000000L};
    nanosleep(&pause, NULL);
    return fd;
}

static void
start(rlim_t nofile)
{
    int be_port;
    ck_assert(sw_test_backend_start(&be, "b1", &be_port));
    int full_port;
    full_fd = listen_full(&full_port);
    const char *kv[] = {
        "DEAD", sw_test_itoa(sw_test_free_port()), "B1", sw_test_itoa(be_port),
        "FULL", sw_test_itoa(full_port),           NULL};
    struct rlimit keep;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &keep), 0);
    if (nofile != 0) {
        /* the daemon inherits the lower limit; this process gets its own
         * back at once */
        struct rlimit low = {nofile, keep.rlim_max};
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    }
    bool up = sw_test_gw_start(&gw, "ring_ops.conf", kv);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &keep), 0);
    ck_assert(up);
}

static void
setup(void)
{
    start(0);
}

static void
teardown(void)
{
    sw_test_gw_teardown(&gw, &be);
    for (int i = 0; i < 4; i++) {
        close(full_fill[i]);
    }
    close(full_fd);
}

/* The ring's counter `name`: at least `min` on io_uring, 0 on epoll. */
static void
ring_counted(const char *name, long long min)
{
    long long v = sw_test_metric(gw.admin_port, name);
    if (sw_test_on_io_uring()) {
        ck_assert_msg(v >= min, "%s = %lld, want >= %lld", name, v, min);
    } else {
        ck_assert_msg(v == 0, "%s = %lld on epoll", name, v);
    }
}

static void
expect_200(int port)
{
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(port, "pair.test", "/p", &r), 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(sw_test_resp_header(&r, "X-Backend"), "b1");
    sw_test_resp_free(&r);
}

/* N_CROWD connections wait in the backlog together, then each sends one
 * request: every one is accepted and answered on its own connection. */
START_TEST(crowd_accepted)
{
    static struct sw_test_conn c[N_CROWD];
    for (int i = 0; i < N_CROWD; i++) {
        ck_assert_msg(sw_test_conn_open(&c[i], gw.port), "open %d", i);
    }
    for (int i = 0; i < N_CROWD; i++) {
        ck_assert(sw_test_conn_sendf(&c[i],
                                     "GET /c%d HTTP/1.1\r\n"
                                     "Host: pair.test\r\n\r\n",
                                     i));
    }
    for (int i = 0; i < N_CROWD; i++) {
        struct sw_test_resp r;
        c[i].timeout_ms = 10000;
        ck_assert_int_eq(sw_test_conn_read_resp(&c[i], &r, false), 1);
        ck_assert_int_eq(r.status, 200);
        char want[32];
        snprintf(want, sizeof(want), "GET /c%d HTTP/1.1", i);
        ck_assert_msg(strncmp(r.body, want, strlen(want)) == 0, "%d: %s", i,
                      r.body);
        sw_test_resp_free(&r);
    }
    for (int i = 0; i < N_CROWD; i++) {
        sw_test_conn_close(&c[i]);
    }
    ring_counted("shockwave_io_uring_accepts_total", N_CROWD);
    /* the first server refused at least one connect through the ring */
    ring_counted("shockwave_io_uring_connects_total", 2);
}
END_TEST

/* pair.test's first server refuses: the next one answers, the refusal is
 * logged and counted against the dead server, as on epoll. */
START_TEST(refused_then_next)
{
    for (int i = 0; i < 4; i++) {
        expect_200(gw.port);
    }
    ck_assert(sw_test_proc_wait_log(&gw.proc, "Connection refused", 0, 3000) >=
              0);
    ck_assert_int_ge(
        sw_test_metric(gw.admin_port, "shockwave_upstream_retries_total"), 1);
    ring_counted("shockwave_io_uring_connects_total", 2);
}
END_TEST

/* full.test's server never completes a handshake: connect_timeout, 504;
 * the daemon goes on answering other requests. */
START_TEST(connect_timeout_504)
{
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.port, "full.test", "/t", &r), 1);
    ck_assert_int_eq(r.status, 504);
    sw_test_resp_free(&r);
    ck_assert(sw_test_proc_wait_log(&gw.proc, "connect timed out", 0, 3000) >=
              0);
    expect_200(gw.port);
    ring_counted("shockwave_io_uring_connects_total", 1);
    /* the timed-out connect was cancelled, its socket closed after it
     * through the ring */
    ring_counted("shockwave_io_uring_closes_total", 1);
}
END_TEST

/* A reload keeps the listener: connections are accepted after it. */
START_TEST(reload_keeps_accepting)
{
    expect_200(gw.port);
    long long before =
        sw_test_metric(gw.admin_port, "shockwave_io_uring_accepts_total");
    long mark = sw_test_proc_log_size(&gw.proc);
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert(sw_test_proc_wait_log(&gw.proc, "reload", mark, 3000) >= 0);
    for (int i = 0; i < 5; i++) {
        expect_200(gw.port);
    }
    long long after =
        sw_test_metric(gw.admin_port, "shockwave_io_uring_accepts_total");
    if (sw_test_on_io_uring()) {
        ck_assert_int_ge(after - before, 5);
    } else {
        ck_assert_int_eq(after, 0);
    }
}
END_TEST

static void
limit_setup(void)
{
    start(64);
}

/* The daemon runs out of descriptors while connections wait: it logs the
 * accept failure, keeps the others waiting (no crash, no spin), and
 * answers again once the idle ones are gone. */
START_TEST(fd_limit_then_answers)
{
    static struct sw_test_conn idle[80];
    long mark = sw_test_proc_log_size(&gw.proc);
    for (int i = 0; i < 80; i++) {
        ck_assert(sw_test_conn_open(&idle[i], gw.port));
    }
    ck_assert_msg(
        sw_test_proc_wait_log(&gw.proc, "Too many open files", mark, 5000) >= 0,
        "no accept failure logged");
    for (int i = 0; i < 80; i++) {
        sw_test_conn_close(&idle[i]);
    }
    /* the daemon sees them gone, closes them, and accepts again */
    bool ok = false;
    for (int i = 0; i < 50 && !ok; i++) {
        struct sw_test_resp r;
        ok = sw_test_http_get(gw.port, "pair.test", "/again", &r) == 1 &&
             r.status == 200;
        sw_test_resp_free(&r);
        if (!ok) {
            struct timespec pause = {0, 100 * 1000000L};
            nanosleep(&pause, NULL);
        }
    }
    ck_assert_msg(ok, "no answer after the descriptors came back");
    if (sw_test_on_io_uring()) {
        /* one line per burst, not one per try */
        ck_assert_int_le(
            sw_test_proc_log_count(&gw.proc, mark, "Too many open files", NULL),
            5);
    }
}
END_TEST

static Suite *
ring_ops_suite(void)
{
    Suite *s = suite_create("ring_ops");
    TCase *tc = tcase_create("ring_ops");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, crowd_accepted);
    tcase_add_test(tc, refused_then_next);
    tcase_add_test(tc, connect_timeout_504);
    tcase_add_test(tc, reload_keeps_accepting);
    suite_add_tcase(s, tc);
    TCase *lim = tcase_create("fd_limit");
    tcase_add_checked_fixture(lim, limit_setup, teardown);
    tcase_set_timeout(lim, 60);
    tcase_add_test(lim, fd_limit_then_answers);
    suite_add_tcase(s, lim);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(ring_ops_suite());
}
