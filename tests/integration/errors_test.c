/*
 * errors_test.c - every client-side error status of the daemon: the answer
 * carries Connection: close, the connection is closed after it, the error
 * is logged once with the client address and counted in the metrics, and
 * other clients are unaffected.
 *
 * tests/conf/errors.conf sets tight limits (8k head, 4k request line, 50
 * headers, 1m body, 1k under /small/, 1s client_header_timeout, upstream
 * read_timeout 1s) in front of one `swload echo` backend.
 */
#include "net.h"
#include "support.h"
#include "proc.h"

#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static struct sw_test_proc be; /* swload echo "b1" */
static struct sw_test_gw gw;   /* the daemon */

static void
setup(void)
{
    int port;
    ck_assert(sw_test_backend_start(&be, "b1", &port));
    const char *kv[] = {"B1", sw_test_itoa(port), NULL};
    ck_assert(sw_test_gw_start(&gw, "errors.conf", kv));
}

static void
teardown(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    sw_test_proc_stop(&be, 2000);
}

/* Lines of the daemon log naming "client 127.0.0.1:<port>" (not a longer
 * port) and holding `status`. */
static int
log_lines(int port, int status)
{
    char needle[64];
    char code[16];
    snprintf(needle, sizeof(needle), "client 127.0.0.1:%d", port);
    snprintf(code, sizeof(code), "%d", status);
    char *text = sw_test_proc_log(&gw.proc);
    int n = 0;
    for (char *line = strtok(text, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        char *hit = strstr(line, needle);
        if (hit != NULL && !isdigit((unsigned char)hit[strlen(needle)]) &&
            strstr(line, code) != NULL) {
            n++;
        }
    }
    free(text);
    return n;
}

/* Status `want` with Connection: close, then a closed connection, one log
 * line and one more count in
 * shockwave_http_responses_by_code_total{code="<want>"}. `c` has sent the
 * request already; `before` is the counter read before it. */
static void
expect_error(struct sw_test_conn *c, int want, long long before)
{
    struct sw_test_resp r;
    int port = sw_test_conn_local_port(c);
    int rc = sw_test_conn_read_resp(c, &r, false);
    ck_assert_msg(rc == 1, "no response for expected %d (rc %d)", want, rc);
    ck_assert_msg(r.status == want, "want %d, got %d:\n%s", want, r.status,
                  r.head);
    const char *conn = sw_test_resp_header(&r, "Connection");
    ck_assert_msg(conn != NULL && strcasecmp(conn, "close") == 0,
                  "%d without Connection: close:\n%s", want, r.head);
    sw_test_resp_free(&r);
    ck_assert_msg(sw_test_conn_closed(c, 3000),
                  "connection still open after %d", want);

    char needle[64];
    snprintf(needle, sizeof(needle), "client 127.0.0.1:%d", port);
    ck_assert_msg(sw_test_proc_wait_log(&gw.proc, needle, 0, 3000) >= 0,
                  "no log line with \"%s\"", needle);
    ck_assert_int_eq(log_lines(port, want), 1);

    char metric[64];
    snprintf(metric, sizeof(metric),
             "shockwave_http_responses_by_code_total{code=\"%d\"}", want);
    ck_assert_int_eq(sw_test_metric(gw.admin_port, metric),
                     (before < 0 ? 0 : before) + 1);
}

/* Build the request of case i into a malloc'd buffer. */
static char *
build(int i, int *want)
{
    char *s = NULL;
    char big[6000];
    switch (i) {
    case 0:
        *want = 400;
        s = strdup("GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n");
        break;
    case 1:
        *want = 400;
        s = strdup("\x16\x03\x01\x02\x01\x01\xfc\x03\x03\r\n\r\n");
        break;
    case 2:
        *want = 414;
        memset(big, 'a', 5000);
        big[5000] = '\0';
        if (asprintf(&s, "GET /%s HTTP/1.1\r\nHost: x\r\n\r\n", big) < 0) {
            s = NULL;
        }
        break;
    case 3: {
        *want = 431;
        size_t len = 0;
        s = malloc(20000);
        len += (size_t)sprintf(s, "GET / HTTP/1.1\r\nHost: x\r\n");
        memset(big, 'b', 1000);
        big[1000] = '\0';
        for (int k = 0; k < 10; k++) {
            len += (size_t)sprintf(s + len, "X-Big-%d: %s\r\n", k, big);
        }
        sprintf(s + len, "\r\n");
        break;
    }
    case 4: {
        *want = 431;
        size_t len = 0;
        s = malloc(4000);
        len += (size_t)sprintf(s, "GET / HTTP/1.1\r\nHost: x\r\n");
        for (int k = 0; k < 60; k++) {
            len += (size_t)sprintf(s + len, "X-H-%d: v\r\n", k);
        }
        sprintf(s + len, "\r\n");
        break;
    }
    case 5:
        *want = 413;
        s = strdup("POST /echo HTTP/1.1\r\nHost: x\r\n"
                   "Content-Length: 2000000\r\n\r\n");
        break;
    case 6:
        *want = 413;
        s = strdup("POST /small/x HTTP/1.1\r\nHost: x\r\n"
                   "Content-Length: 2000\r\n\r\n");
        break;
    case 7:
        *want = 501;
        s = strdup("POST /echo HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: gzip, chunked\r\n\r\n");
        break;
    case 8:
        *want = 405;
        s = strdup("CONNECT example.com:443 HTTP/1.1\r\n"
                   "Host: example.com:443\r\n\r\n");
        break;
    case 9:
        *want = 505;
        s = strdup("GET / HTTP/2.0\r\nHost: x\r\n\r\n");
        break;
    case 10:
        *want = 505;
        s = strdup("GET / HTTP/0.9\r\nHost: x\r\n\r\n");
        break;
    default:
        *want = 0;
        break;
    }
    ck_assert_ptr_nonnull(s);
    return s;
}

#define NCASES 11

START_TEST(error_status)
{
    int want = 0;
    char *req = build(_i, &want);
    char metric[64];
    snprintf(metric, sizeof(metric),
             "shockwave_http_responses_by_code_total{code=\"%d\"}", want);
    long long before = sw_test_metric(gw.admin_port, metric);
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert(sw_test_conn_send(&c, req, strlen(req)));
    expect_error(&c, want, before);
    sw_test_conn_close(&c);
    free(req);
}
END_TEST

START_TEST(header_timeout_408)
{
    long long before = sw_test_metric(
        gw.admin_port, "shockwave_http_responses_by_code_total{code=\"408\"}");
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert(sw_test_conn_sendf(&c, "GET /slow HTTP/1.1\r\nHost: x\r\n"));
    c.timeout_ms = 4000;
    expect_error(&c, 408, before);
    sw_test_conn_close(&c);
}
END_TEST

START_TEST(chunked_body_413)
{
    long long before = sw_test_metric(
        gw.admin_port, "shockwave_http_responses_by_code_total{code=\"413\"}");
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    /* /sink answers only after the whole body: /echo would start its
     * response first, and a 413 can no longer be sent then. */
    ck_assert(sw_test_conn_sendf(&c, "POST /sink HTTP/1.1\r\nHost: x\r\n"
                                     "Transfer-Encoding: chunked\r\n\r\n"));
    /* 64 KiB chunks up to 2 MiB, stopping as soon as an answer arrives:
     * the limit (1m) is passed at the 17th chunk. */
    static char chunk[65536];
    memset(chunk, 'z', sizeof(chunk));
    for (int k = 0; k < 32; k++) {
        if (sw_test_conn_fill(&c, 0) != -1 || c.len > 0) {
            break;
        }
        if (!sw_test_conn_sendf(&c, "10000\r\n") ||
            !sw_test_conn_send(&c, chunk, sizeof(chunk)) ||
            !sw_test_conn_sendf(&c, "\r\n")) {
            break;
        }
    }
    expect_error(&c, 413, before);
    sw_test_conn_close(&c);
}
END_TEST

START_TEST(upstream_timeout_504)
{
    long long before = sw_test_metric(
        gw.admin_port, "shockwave_http_responses_by_code_total{code=\"504\"}");
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert(sw_test_conn_sendf(&c, "GET /stall HTTP/1.1\r\nHost: x\r\n\r\n"));
    c.timeout_ms = 5000;
    expect_error(&c, 504, before);
    sw_test_conn_close(&c);
}
END_TEST

START_TEST(others_unaffected)
{
    struct sw_test_conn a;
    struct sw_test_conn bad;
    struct sw_test_conn slow;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&a, gw.port));
    ck_assert_int_eq(sw_test_conn_request(&a,
                                          "GET /one HTTP/1.1\r\n"
                                          "Host: x\r\n\r\n",
                                          &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);

    /* One client stalls mid-head, another sends garbage. */
    ck_assert(sw_test_conn_open(&slow, gw.port));
    ck_assert(sw_test_conn_sendf(&slow, "GET / HTTP/1.1\r\nHo"));
    ck_assert(sw_test_conn_open(&bad, gw.port));
    ck_assert(sw_test_conn_sendf(&bad, "BLAH\x01\x02 / HTTP/1.1\r\n\r\n"));
    ck_assert_int_eq(sw_test_conn_read_resp(&bad, &r, false), 1);
    ck_assert_int_eq(r.status, 400);
    sw_test_resp_free(&r);

    /* The first client goes on, answered long before the 408 timer. */
    a.timeout_ms = 800;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sw_test_conn_request(&a,
                                              "GET /two HTTP/1.1\r\n"
                                              "Host: x\r\n\r\n",
                                              &r),
                         1);
        ck_assert_int_eq(r.status, 200);
        ck_assert(strncmp(r.body, "GET /two ", 9) == 0);
        sw_test_resp_free(&r);
    }
    /* The stalled one still gets its own 408. */
    slow.timeout_ms = 4000;
    ck_assert_int_eq(sw_test_conn_read_resp(&slow, &r, false), 1);
    ck_assert_int_eq(r.status, 408);
    sw_test_resp_free(&r);
    ck_assert(!a.eof);
    sw_test_conn_close(&a);
    sw_test_conn_close(&bad);
    sw_test_conn_close(&slow);
}
END_TEST

static void
cap_setup(void)
{
    int port;
    ck_assert(sw_test_backend_start(&be, "b1", &port));
    const char *kv[] = {"B1", sw_test_itoa(port), NULL};
    ck_assert(sw_test_gw_start(&gw, "conn_cap.conf", kv));
}

/* max_client_connections 3 on one worker: a fourth connection is closed at
 * once, counted and logged; the three others are served; once one leaves,
 * a new connection is accepted again. */
START_TEST(connection_cap)
{
    struct sw_test_conn held[3];
    for (int i = 0; i < 3; i++) {
        ck_assert(sw_test_conn_open(&held[i], gw.port));
    }
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_conn_request(
                         &held[0], "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);

    struct sw_test_conn extra;
    ck_assert(sw_test_conn_open(&extra, gw.port));
    ck_assert_msg(sw_test_conn_closed(&extra, 3000),
                  "a fourth connection was kept over max_client_connections");
    sw_test_conn_close(&extra);
    ck_assert(sw_test_proc_wait_log(&gw.proc, "max_client_connections", 0,
                                    3000) >= 0);
    ck_assert_int_eq(
        sw_test_metric(gw.admin_port,
                       "shockwave_client_connections_refused_total"),
        1);

    /* the held connections still work */
    ck_assert_int_eq(sw_test_conn_request(
                         &held[2], "GET /b HTTP/1.1\r\nHost: x\r\n\r\n", &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);

    /* one leaves: room for a new one */
    sw_test_conn_close(&held[1]);
    struct timespec pause = {0, 300 * 1000000L};
    nanosleep(&pause, NULL);
    struct sw_test_conn next;
    ck_assert(sw_test_conn_open(&next, gw.port));
    ck_assert_int_eq(
        sw_test_conn_request(&next, "GET /c HTTP/1.1\r\nHost: x\r\n\r\n", &r),
        1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);
    sw_test_conn_close(&next);
    sw_test_conn_close(&held[0]);
    sw_test_conn_close(&held[2]);
}
END_TEST

static Suite *
errors_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, error_status, 0, NCASES);
    tcase_add_test(tc, header_timeout_408);
    tcase_add_test(tc, chunked_body_413);
    tcase_add_test(tc, upstream_timeout_504);
    tcase_add_test(tc, others_unaffected);
    suite_add_tcase(s, tc);
    TCase *cap = tcase_create("connection_cap");
    tcase_add_checked_fixture(cap, cap_setup, teardown);
    tcase_set_timeout(cap, 60);
    tcase_add_test(cap, connection_cap);
    suite_add_tcase(s, cap);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(errors_suite());
}
