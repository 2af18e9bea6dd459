/*
 * proxy_test.c - HTTP requests through the real daemon to `swload echo`
 * (app.example) and to a recording fake upstream (fake.example).
 *
 * Each test starts its own backend, fake upstream and daemon
 * (tests/conf/proxy.conf) in the forked test process; proc.c kills them at
 * exit whatever happens. Assertions are on the bytes the client and the
 * upstream see.
 */
#include "net.h"
#include "support.h"
#include "proc.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static struct sw_test_proc be;   /* swload echo "b1" */
static int be_port;              /* its port */
static struct sw_test_fake fake; /* scripted upstream for fake.example */
static struct sw_test_gw gw;     /* the daemon */

/* The fake answers every request with this; it carries hop-by-hop headers
 * that must not reach the client. */
static const char fake_reply[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Length: 2\r\n"
    "Connection: X-Secret\r\n"
    "X-Secret: s3cr3t\r\n"
    "Keep-Alive: timeout=99\r\n"
    "Proxy-Connection: keep-alive\r\n"
    "Trailer: X-Trail\r\n"
    "Upgrade: h2c\r\n"
    "X-Keep: yes\r\n"
    "\r\n"
    "ok";

static void
setup(void)
{
    ck_assert(sw_test_backend_start(&be, "b1", &be_port));
    ck_assert(sw_test_fake_start(&fake, SW_TEST_FAKE_KEEP, fake_reply,
                                 strlen(fake_reply)));
    const char *kv[] = {"B1", sw_test_itoa(be_port), "F",
                        sw_test_itoa(fake.port), NULL};
    ck_assert(sw_test_gw_start(&gw, "proxy.conf", kv));
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

/* Echo header value or "" (freed by the caller). */
static char *
echo_hdr(const struct sw_test_resp *r, const char *name)
{
    char *v = sw_test_echo_header(r->body, name);
    return v != NULL ? v : strdup("");
}

START_TEST(get_through)
{
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.port, "app.example",
                                      "/hello?x=1", &r), 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(sw_test_resp_header(&r, "X-Backend"), "b1");
    ck_assert_msg(strncmp(r.body, "GET /hello?x=1 HTTP/1.1", 23) == 0,
                  "echo starts with: %.60s", r.body);
    char *host = echo_hdr(&r, "Host");
    ck_assert_str_eq(host, "app.example");
    free(host);
    sw_test_resp_free(&r);
}
END_TEST

START_TEST(forwarded_headers)
{
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.port, "app.example", "/fwd", &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    char *xff = echo_hdr(&r, "X-Forwarded-For");
    char *proto = echo_hdr(&r, "X-Forwarded-Proto");
    char *xfh = echo_hdr(&r, "X-Forwarded-Host");
    ck_assert_str_eq(xff, "127.0.0.1");
    ck_assert_str_eq(proto, "http");
    ck_assert_str_eq(xfh, "app.example");
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Forwarded-For"), 1);
    free(xff);
    free(proto);
    free(xfh);
    sw_test_resp_free(&r);

    /* An existing X-Forwarded-For is appended to, not replaced. */
    ck_assert_int_eq(
        sw_test_http_once(gw.port,
                          "GET /fwd2 HTTP/1.1\r\nHost: app.example\r\n"
                          "X-Forwarded-For: 10.1.2.3\r\n"
                          "Connection: close\r\n\r\n",
                          &r),
        1);
    xff = echo_hdr(&r, "X-Forwarded-For");
    ck_assert_str_eq(xff, "10.1.2.3, 127.0.0.1");
    free(xff);
    sw_test_resp_free(&r);
}
END_TEST

START_TEST(request_id)
{
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.port, "app.example", "/id1", &r),
                     1);
    char *id1 = echo_hdr(&r, "X-Request-Id");
    ck_assert_msg(strlen(id1) >= 8, "generated X-Request-Id: \"%s\"", id1);
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Request-Id"), 1);
    sw_test_resp_free(&r);

    ck_assert_int_eq(sw_test_http_get(gw.port, "app.example", "/id2", &r),
                     1);
    char *id2 = echo_hdr(&r, "X-Request-Id");
    ck_assert_str_ne(id1, id2);
    sw_test_resp_free(&r);

    ck_assert_int_eq(
        sw_test_http_once(gw.port,
                          "GET /id3 HTTP/1.1\r\nHost: app.example\r\n"
                          "X-Request-Id: client-chosen-42\r\n"
                          "Connection: close\r\n\r\n",
                          &r),
        1);
    char *id3 = echo_hdr(&r, "X-Request-Id");
    ck_assert_str_eq(id3, "client-chosen-42");
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Request-Id"), 1);
    sw_test_resp_free(&r);
    free(id1);
    free(id2);
    free(id3);
}
END_TEST

START_TEST(hop_by_hop_request)
{
    struct sw_test_resp r;
    ck_assert_int_eq(
        sw_test_http_once(gw.port,
                          "GET /hop HTTP/1.1\r\nHost: app.example\r\n"
                          "Connection: keep-alive, X-Private\r\n"
                          "X-Private: secret\r\n"
                          "Keep-Alive: timeout=5\r\n"
                          "Proxy-Connection: keep-alive\r\n"
                          "TE: trailers\r\n"
                          "Trailer: X-Trail\r\n"
                          "X-End-To-End: kept\r\n"
                          "\r\n",
                          &r),
        1);
    ck_assert_int_eq(r.status, 200);
    const char *gone[] = {"X-Private", "Keep-Alive", "Proxy-Connection", "TE",
                          "Trailer", "Upgrade"};
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        ck_assert_msg(sw_test_echo_count(r.body, gone[i]) == 0,
                      "%s reached the upstream:\n%s", gone[i], r.body);
    }
    char *conn = echo_hdr(&r, "Connection");
    ck_assert_msg(strcasestr(conn, "x-private") == NULL,
                  "Connection upstream: %s", conn);
    free(conn);
    char *kept = echo_hdr(&r, "X-End-To-End");
    ck_assert_str_eq(kept, "kept");
    free(kept);
    sw_test_resp_free(&r);
}
END_TEST

START_TEST(hop_by_hop_response)
{
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.port, "fake.example", "/", &r), 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "ok");
    ck_assert_str_eq(sw_test_resp_header(&r, "X-Keep"), "yes");
    const char *gone[] = {"X-Secret", "Proxy-Connection", "Trailer",
                          "Upgrade"};
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        ck_assert_msg(sw_test_resp_header(&r, gone[i]) == NULL,
                      "%s reached the client:\n%s", gone[i], r.head);
    }
    const char *ka = sw_test_resp_header(&r, "Keep-Alive");
    ck_assert_msg(ka == NULL || strstr(ka, "99") == NULL,
                  "upstream Keep-Alive leaked: %s", ka);
    const char *conn = sw_test_resp_header(&r, "Connection");
    ck_assert_msg(conn == NULL || strcasestr(conn, "x-secret") == NULL,
                  "upstream Connection leaked: %s", conn);
    sw_test_resp_free(&r);
}
END_TEST

START_TEST(request_body_reframed)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    /* Odd spelling, so the raw client line is recognisable upstream. */
    ck_assert_int_eq(
        sw_test_conn_request(&c,
                             "POST /cl HTTP/1.1\r\nHost: fake.example\r\n"
                             "content-LENGTH:   5\r\n\r\nhello",
                             &r),
        1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);
    ck_assert_int_eq(
        sw_test_conn_request(&c,
                             "POST /ch HTTP/1.1\r\nHost: fake.example\r\n"
                             "transfer-ENCODING:   chunked\r\n\r\n"
                             "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
                             &r),
        1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);

    size_t n;
    char *rx = sw_test_fake_rx(&fake, &n);
    ck_assert_msg(strstr(rx, "content-LENGTH") == NULL &&
                      strstr(rx, "transfer-ENCODING") == NULL,
                  "raw client framing lines reached the upstream:\n%s", rx);
    char *cl = strstr(rx, "POST /cl HTTP/1.1\r\n");
    char *ch = strstr(rx, "POST /ch HTTP/1.1\r\n");
    ck_assert_msg(cl != NULL && ch != NULL && cl < ch, "upstream saw:\n%s",
                  rx);
    /* First request: its own Content-Length: 5, body "hello". */
    ch[0] = '\0';
    ck_assert_msg(strcasestr(cl, "\r\nContent-Length: 5\r\n") != NULL &&
                      strcasestr(cl, "Transfer-Encoding") == NULL,
                  "first request upstream:\n%s", cl);
    char *body = strstr(cl, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(body + 4, "hello");
    /* Second request: chunked, no Content-Length, decodes to "abcdefg". */
    ch[0] = 'P';
    ck_assert_msg(strcasestr(ch, "\r\nTransfer-Encoding: chunked\r\n") !=
                          NULL &&
                      strcasestr(ch, "Content-Length") == NULL,
                  "second request upstream:\n%s", ch);
    body = strstr(ch, "\r\n\r\n") + 4;
    char decoded[64] = {0};
    size_t dlen = 0;
    for (;;) {
        char *end;
        unsigned long sz = strtoul(body, &end, 16);
        char *eol = strstr(body, "\r\n");
        ck_assert_ptr_nonnull(eol);
        if (sz == 0) {
            break;
        }
        ck_assert(dlen + sz < sizeof(decoded));
        memcpy(decoded + dlen, eol + 2, sz);
        dlen += sz;
        body = eol + 2 + sz + 2;
    }
    ck_assert_str_eq(decoded, "abcdefg");
    free(rx);
}
END_TEST

START_TEST(head_no_body)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert_int_eq(sw_test_conn_request(&c,
                                          "HEAD /size/1000 HTTP/1.1\r\n"
                                          "Host: app.example\r\n\r\n",
                                          &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 0);
    sw_test_resp_free(&r);
    /* Had any body byte followed, this response would not parse. */
    ck_assert_int_eq(sw_test_conn_request(&c,
                                          "GET /after-head HTTP/1.1\r\n"
                                          "Host: app.example\r\n\r\n",
                                          &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    ck_assert(strncmp(r.body, "GET /after-head ", 16) == 0);
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);
}
END_TEST

START_TEST(no_body_statuses)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    const int codes[] = {204, 304};
    for (size_t i = 0; i < 2; i++) {
        char req[128];
        snprintf(req, sizeof(req),
                 "GET /status/%d HTTP/1.1\r\nHost: app.example\r\n\r\n",
                 codes[i]);
        ck_assert_int_eq(sw_test_conn_request(&c, req, &r), 1);
        ck_assert_int_eq(r.status, codes[i]);
        ck_assert_msg(sw_test_resp_header(&r, "Transfer-Encoding") == NULL,
                      "%d with Transfer-Encoding", codes[i]);
        sw_test_resp_free(&r);
        ck_assert_int_eq(sw_test_conn_request(&c,
                                              "GET /next HTTP/1.1\r\n"
                                              "Host: app.example\r\n\r\n",
                                              &r),
                         1);
        ck_assert_int_eq(r.status, 200);
        ck_assert(strncmp(r.body, "GET /next ", 10) == 0);
        sw_test_resp_free(&r);
    }
    sw_test_conn_close(&c);
}
END_TEST

START_TEST(post_echo)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert_int_eq(sw_test_conn_request(&c,
                                          "POST /echo HTTP/1.1\r\n"
                                          "Host: app.example\r\n"
                                          "Content-Length: 11\r\n\r\n"
                                          "hello world",
                                          &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello world");
    sw_test_resp_free(&r);
    ck_assert_int_eq(sw_test_conn_request(&c,
                                          "PUT /echo HTTP/1.1\r\n"
                                          "Host: app.example\r\n"
                                          "Transfer-Encoding: chunked\r\n\r\n"
                                          "5\r\nchunk\r\n3\r\ned!\r\n0\r\n\r\n",
                                          &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "chunked!");
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);
}
END_TEST

START_TEST(no_route_404)
{
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.port, "nowhere.example", "/x", &r),
                     1);
    ck_assert_int_eq(r.status, 404);
    ck_assert_msg(r.body_len > 0 && r.body_len < 1024, "404 body %zu bytes",
                  r.body_len);
    ck_assert_ptr_null(sw_test_resp_header(&r, "X-Backend"));
    sw_test_resp_free(&r);
}
END_TEST

START_TEST(pipelining_in_order)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    /* Everything in one write. */
    ck_assert(sw_test_conn_sendf(&c,
                                 "GET /p1 HTTP/1.1\r\nHost: app.example\r\n\r\n"
                                 "POST /echo HTTP/1.1\r\nHost: app.example\r\n"
                                 "Content-Length: 4\r\n\r\nbody"
                                 "HEAD /p3 HTTP/1.1\r\n"
                                 "Host: app.example\r\n\r\n"
                                 "GET /p4 HTTP/1.1\r\nHost: app.example\r\n\r\n"
                                 "GET /p5 HTTP/1.1\r\nHost: app.example\r\n"
                                 "Connection: close\r\n\r\n"));
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    ck_assert(strncmp(r.body, "GET /p1 ", 8) == 0);
    sw_test_resp_free(&r);
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    ck_assert_str_eq(r.body, "body");
    sw_test_resp_free(&r);
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, true), 1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    ck_assert_msg(strncmp(r.body, "GET /p4 ", 8) == 0, "got %.40s", r.body);
    sw_test_resp_free(&r);
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    ck_assert(strncmp(r.body, "GET /p5 ", 8) == 0);
    sw_test_resp_free(&r);
    ck_assert(sw_test_conn_closed(&c, 3000));
    sw_test_conn_close(&c);
}
END_TEST

START_TEST(expect_continue)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert(sw_test_conn_sendf(&c, "POST /echo HTTP/1.1\r\n"
                                     "Host: app.example\r\n"
                                     "Expect: 100-continue\r\n"
                                     "Content-Length: 7\r\n\r\n"));
    /* The body is held back until the interim answer arrives. */
    c.timeout_ms = 3000;
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    ck_assert_int_eq(r.status, 100);
    sw_test_resp_free(&r);
    ck_assert(sw_test_conn_sendf(&c, "payload"));
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "payload");
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);
}
END_TEST

START_TEST(interim_then_final)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert(sw_test_conn_sendf(&c, "GET /continue HTTP/1.1\r\n"
                                     "Host: app.example\r\n\r\n"));
    int interim = 0;
    for (;;) {
        ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
        if (r.status >= 200) {
            break;
        }
        ck_assert_uint_eq(r.body_len, 0);
        interim++;
        ck_assert_int_le(interim, 2);
        sw_test_resp_free(&r);
    }
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "ok");
    sw_test_resp_free(&r);
    /* The connection is still in sync. */
    ck_assert_int_eq(sw_test_conn_request(&c,
                                          "GET /sync HTTP/1.1\r\n"
                                          "Host: app.example\r\n\r\n",
                                          &r),
                     1);
    ck_assert(strncmp(r.body, "GET /sync ", 10) == 0);
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);
}
END_TEST

START_TEST(bodies_by_framing)
{
    const char *paths[] = {"/size/70000", "/chunked/70000", "/close/70000"};
    for (size_t i = 0; i < 3; i++) {
        struct sw_test_conn c;
        struct sw_test_resp r;
        char req[128];
        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: app.example\r\n\r\n", paths[i]);
        ck_assert(sw_test_conn_open(&c, gw.port));
        ck_assert_int_eq(sw_test_conn_request(&c, req, &r), 1);
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg(r.body_len == 70000, "%s: %zu bytes", paths[i],
                      r.body_len);
        ck_assert_msg(sw_test_pattern_ok(0, (uint8_t *)r.body, r.body_len),
                      "%s: pattern broken", paths[i]);
        sw_test_resp_free(&r);
        sw_test_conn_close(&c);
    }
}
END_TEST

START_TEST(metrics_and_healthz)
{
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.admin_port, "127.0.0.1", "/healthz",
                                      &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, "ok") != NULL, "healthz: %s", r.body);
    sw_test_resp_free(&r);
    char *m0 = sw_test_metrics_fetch(gw.admin_port);
    long long before = sw_test_metric_in(m0, "shockwave_http_requests_total");
    long long s200 = sw_test_metric_in(
        m0, "shockwave_http_responses_by_code_total{code=\"200\"}");
    free(m0);
    ck_assert_int_ge(before, 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sw_test_http_get(gw.port, "app.example", "/m", &r),
                         1);
        sw_test_resp_free(&r);
    }
    ck_assert_int_eq(sw_test_http_get(gw.port, "nowhere.example", "/m", &r),
                     1);
    sw_test_resp_free(&r);
    char *m1 = sw_test_metrics_fetch(gw.admin_port);
    ck_assert_int_eq(sw_test_metric_in(m1, "shockwave_http_requests_total"),
                     before + 4);
    ck_assert_int_eq(
        sw_test_metric_in(
            m1, "shockwave_http_responses_by_code_total{code=\"200\"}"),
        (s200 < 0 ? 0 : s200) + 3);
    free(m1);
    ck_assert_int_ge(
        sw_test_metric(gw.admin_port,
                       "shockwave_http_responses_by_code_total{code=\"404\"}"),
        1);
    ck_assert_int_ge(
        sw_test_metric(gw.admin_port, "shockwave_client_connections_total"), 4);
    ck_assert_int_ge(
        sw_test_metric(gw.admin_port, "shockwave_client_connections_active"),
        0);
}
END_TEST

static Suite *
proxy_suite(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("proxy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, get_through);
    tcase_add_test(tc, forwarded_headers);
    tcase_add_test(tc, request_id);
    tcase_add_test(tc, hop_by_hop_request);
    tcase_add_test(tc, hop_by_hop_response);
    tcase_add_test(tc, request_body_reframed);
    tcase_add_test(tc, head_no_body);
    tcase_add_test(tc, no_body_statuses);
    tcase_add_test(tc, post_echo);
    tcase_add_test(tc, no_route_404);
    tcase_add_test(tc, pipelining_in_order);
    tcase_add_test(tc, expect_continue);
    tcase_add_test(tc, interim_then_final);
    tcase_add_test(tc, bodies_by_framing);
    tcase_add_test(tc, metrics_and_healthz);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(proxy_suite());
}
