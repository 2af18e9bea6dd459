/*
 * reload_test.c - SIGHUP re-reads the configuration: new requests follow the
 * new routes, a connection opened before keeps working on its snapshot, an
 * invalid file keeps the old configuration (logged as "reload failed"),
 * reloads under load lose no request, and a changed `io_engine` waits for a
 * restart (logged) while the reload goes through.
 *
 * tests/conf/reload.conf routes everything to upstream @TARGET@ (a -> "one",
 * b -> "two"); tests/conf/reload_bad.conf is the same file with errors.
 */
#include "net.h"
#include "support.h"
#include "proc.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static struct sw_test_proc be[2]; /* swload echo "one", "two" */
static int be_port[2];            /* their ports */
static struct sw_test_gw gw;      /* the daemon */

static const char **
vars(const char *target)
{
    static const char *kv[7];
    kv[0] = "B1";
    kv[1] = sw_test_itoa(be_port[0]);
    kv[2] = "B2";
    kv[3] = sw_test_itoa(be_port[1]);
    kv[4] = "TARGET";
    kv[5] = target;
    kv[6] = NULL;
    return kv;
}

static void
setup(void)
{
    ck_assert(sw_test_backend_start(&be[0], "one", &be_port[0]));
    ck_assert(sw_test_backend_start(&be[1], "two", &be_port[1]));
    ck_assert(sw_test_gw_start(&gw, "reload.conf", vars("a")));
}

static void
teardown(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    sw_test_proc_stop(&be[0], 2000);
    sw_test_proc_stop(&be[1], 2000);
}

/* Render `conf` with `target`, SIGHUP, and wait for `outcome` in the log. */
static void
reload(const char *conf, const char *target, const char *outcome)
{
    long mark = sw_test_proc_log_size(&gw.proc);
    ck_assert(sw_test_gw_render(&gw, conf, vars(target)));
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert_msg(sw_test_proc_wait_log(&gw.proc, outcome, mark, 5000) >= 0,
                  "no \"%s\" after SIGHUP", outcome);
}

static const char *
backend_of(struct sw_test_resp *r)
{
    const char *b = sw_test_resp_header(r, "X-Backend");
    return b != NULL ? b : "(none)";
}

START_TEST(reload_switches_backend)
{
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.port, "x", "/", &r), 1);
    ck_assert_str_eq(backend_of(&r), "one");
    sw_test_resp_free(&r);
    char *m0 = sw_test_metrics_fetch(gw.admin_port);
    long long gen0 = sw_test_metric_in(m0, "shockwave_conf_generation");
    long long rel0 = sw_test_metric_in(m0, "shockwave_conf_reloads_total");
    free(m0);
    ck_assert_int_ge(gen0, 1);

    reload("reload.conf", "b", "reloaded");
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(sw_test_http_get(gw.port, "x", "/", &r), 1);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(backend_of(&r), "two");
        sw_test_resp_free(&r);
    }
    char *m1 = sw_test_metrics_fetch(gw.admin_port);
    ck_assert_int_eq(sw_test_metric_in(m1, "shockwave_conf_generation"),
                     gen0 + 1);
    ck_assert_int_eq(sw_test_metric_in(m1, "shockwave_conf_reloads_total"),
                     (rel0 < 0 ? 0 : rel0) + 1);
    free(m1);
    /* The log names the new generation. */
    char gen[32];
    snprintf(gen, sizeof(gen), "%lld", gen0 + 1);
    ck_assert_int_ge(sw_test_proc_log_count(&gw.proc, 0, "reloaded", gen, NULL),
                     1);
}
END_TEST

START_TEST(old_connection_keeps_working)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert_int_eq(
        sw_test_conn_request(&c, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n", &r), 1);
    ck_assert_str_eq(backend_of(&r), "one");
    sw_test_resp_free(&r);

    reload("reload.conf", "b", "reloaded");

    /* The live connection still works, on the snapshot it started with. */
    ck_assert_int_eq(
        sw_test_conn_request(&c, "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n", &r), 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r), "one");
    sw_test_resp_free(&r);
    /* A new connection sees the new configuration. */
    ck_assert_int_eq(sw_test_http_get(gw.port, "x", "/3", &r), 1);
    ck_assert_str_eq(backend_of(&r), "two");
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);
}
END_TEST

START_TEST(invalid_file_keeps_old)
{
    struct sw_test_resp r;
    char *m0 = sw_test_metrics_fetch(gw.admin_port);
    long long gen0 = sw_test_metric_in(m0, "shockwave_conf_generation");
    long long fail0 =
        sw_test_metric_in(m0, "shockwave_conf_reload_failures_total");
    free(m0);

    long mark = sw_test_proc_log_size(&gw.proc);
    reload("reload_bad.conf", "a", "reload failed");
    /* The errors are in the log with their positions. */
    char *log = sw_test_proc_log(&gw.proc);
    ck_assert_msg(strstr(log + mark, ":12:5: unknown directive \"upstrem\"") !=
                      NULL,
                  "log:\n%s", log + mark);
    free(log);

    ck_assert(sw_test_proc_alive(&gw.proc));
    ck_assert_int_eq(sw_test_http_get(gw.port, "x", "/", &r), 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r), "one");
    sw_test_resp_free(&r);
    char *m1 = sw_test_metrics_fetch(gw.admin_port);
    ck_assert_int_eq(sw_test_metric_in(m1, "shockwave_conf_generation"), gen0);
    ck_assert_int_eq(
        sw_test_metric_in(m1, "shockwave_conf_reload_failures_total"),
        (fail0 < 0 ? 0 : fail0) + 1);
    free(m1);

    /* A good file afterwards is taken. */
    reload("reload.conf", "b", "reloaded");
    ck_assert_int_eq(sw_test_http_get(gw.port, "x", "/", &r), 1);
    ck_assert_str_eq(backend_of(&r), "two");
    sw_test_resp_free(&r);
}
END_TEST

struct load {
    int port;      /* daemon port */
    int done;      /* requests answered 200 by a known backend */
    int failed;    /* anything else */
    char why[256]; /* first failure */
};

static void *
load_main(void *arg)
{
    struct load *l = arg;
    /* 2000 requests over keep-alive connections of 100 requests each, so
     * both old and new snapshots serve while reloads happen. */
    for (int k = 0; k < 20; k++) {
        struct sw_test_conn c;
        if (!sw_test_conn_open(&c, l->port)) {
            l->failed += 100;
            snprintf(l->why, sizeof(l->why), "connect failed");
            continue;
        }
        for (int i = 0; i < 100; i++) {
            struct sw_test_resp r;
            int rc = sw_test_conn_request(&c,
                                          "GET /load HTTP/1.1\r\n"
                                          "Host: x\r\n\r\n",
                                          &r);
            const char *b =
                rc == 1 ? sw_test_resp_header(&r, "X-Backend") : NULL;
            if (rc == 1 && r.status == 200 && b != NULL &&
                (strcmp(b, "one") == 0 || strcmp(b, "two") == 0)) {
                l->done++;
            } else {
                if (l->failed == 0) {
                    snprintf(l->why, sizeof(l->why),
                             "conn %d request %d: rc %d status %d", k, i, rc,
                             r.status);
                }
                l->failed++;
            }
            sw_test_resp_free(&r);
            if (rc != 1) {
                break;
            }
        }
        sw_test_conn_close(&c);
    }
    return NULL;
}

START_TEST(reload_under_load)
{
    struct load l = {gw.port, 0, 0, ""};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, load_main, &l), 0);
    for (int i = 0; i < 10; i++) {
        struct timespec ts = {0, 40 * 1000000L};
        nanosleep(&ts, NULL);
        reload("reload.conf", i % 2 == 0 ? "b" : "a", "reloaded");
    }
    pthread_join(t, NULL);
    ck_assert_msg(l.failed == 0, "%d failures, first: %s", l.failed, l.why);
    ck_assert_int_eq(l.done, 2000);
    ck_assert_int_eq(sw_test_proc_log_count(&gw.proc, 0, "reloaded", NULL), 10);
    ck_assert_int_eq(
        sw_test_metric(gw.admin_port, "shockwave_conf_reloads_total"), 10);
}
END_TEST

START_TEST(reload_keeps_the_engine)
{
    /* The daemon runs on the test engine (SW_TEST_IO_ENGINE, default
     * epoll); the file names the other one. */
    const char *started = sw_test_io_engine();
    const char *other = strcmp(started, "epoll") == 0 ? "io_uring" : "epoll";
    char text[512];
    snprintf(text, sizeof(text),
             "workers 2;\nlisten 127.0.0.1:%d;\nadmin 127.0.0.1:%d;\n"
             "io_engine %s;\nupstream b { server 127.0.0.1:%d; }\n"
             "route { upstream b; }\n",
             gw.port, gw.admin_port, other, be_port[1]);
    ck_assert(sw_test_write_file(gw.conf_path, text));
    /* Twice: the second reload still compares with the engine the workers
     * run on, not with the file's last value. */
    for (int i = 0; i < 2; i++) {
        long mark = sw_test_proc_log_size(&gw.proc);
        ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
        char *line =
            sw_test_proc_log_line(&gw.proc, mark, "reload: io_engine", 5000);
        ck_assert_msg(line != NULL, "reload %d: no warning", i);
        char want[128];
        snprintf(want, sizeof(want),
                 "changed to %s; it takes effect at the next restart (the "
                 "workers stay on %s)",
                 other, started);
        ck_assert_msg(strstr(line, want) != NULL, "want \"%s\" in: %s", want,
                      line);
        free(line);
        ck_assert_int_ge(
            sw_test_proc_wait_log(&gw.proc, "reloaded", mark, 5000), 0);
    }
    /* The rest of the file is taken. */
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.port, "x", "/", &r), 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r), "two");
    sw_test_resp_free(&r);
    /* Back to a file on the engine the workers run on: nothing said. */
    long mark = sw_test_proc_log_size(&gw.proc);
    reload("reload.conf", "a", "reloaded");
    ck_assert_int_eq(
        sw_test_proc_log_count(&gw.proc, mark, "reload: io_engine", NULL), 0);
}
END_TEST

static Suite *
reload_suite(void)
{
    Suite *s = suite_create("reload");
    TCase *tc = tcase_create("reload");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, reload_switches_backend);
    tcase_add_test(tc, old_connection_keeps_working);
    tcase_add_test(tc, invalid_file_keeps_old);
    tcase_add_test(tc, reload_under_load);
    tcase_add_test(tc, reload_keeps_the_engine);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(reload_suite());
}
