/*
 * edits_test.c - per-route request_header and response_header edits (set,
 * add, remove) and the variables in their values, through the real daemon
 * to `swload echo` (which lists the headers it received in its body).
 *
 * tests/conf/edits.conf: every edit lives on the catch-all route; the
 * /plain/ route has none, so the same request there passes unchanged.
 */
#include "net.h"
#include "support.h"
#include "proc.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static struct sw_test_proc be; /* swload echo "b1" */
static struct sw_test_gw gw;   /* the daemon */

static void
setup(void)
{
    int port;
    ck_assert(sw_test_backend_start(&be, "b1", &port));
    const char *kv[] = {"B1", sw_test_itoa(port), NULL};
    ck_assert(sw_test_gw_start(&gw, "edits.conf", kv));
}

static void
teardown(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    sw_test_proc_stop(&be, 2000);
}

static const char client_req[] = "GET %s HTTP/1.1\r\n"
                                 "Host: edits.example\r\n"
                                 "User-Agent: client-agent\r\n"
                                 "X-Set: from-client-1\r\n"
                                 "X-Set: from-client-2\r\n"
                                 "X-Add: zero\r\n"
                                 "X-Remove-Me: a\r\n"
                                 "X-Remove-Me: b\r\n"
                                 "X-Untouched: same\r\n"
                                 "Connection: close\r\n\r\n";

static void
request(const char *target, struct sw_test_resp *r)
{
    char req[1024];
    snprintf(req, sizeof(req), client_req, target);
    ck_assert_int_eq(sw_test_http_once(gw.port, req, r), 1);
    ck_assert_int_eq(r->status, 200);
}

static void
expect_echo(const struct sw_test_resp *r, const char *name, const char *want)
{
    char *v = sw_test_echo_header(r->body, name);
    ck_assert_msg(v != NULL && strcmp(v, want) == 0,
                  "%s upstream: want \"%s\", got \"%s\"\n%s", name, want,
                  v != NULL ? v : "(absent)", r->body);
    free(v);
}

START_TEST(request_set)
{
    struct sw_test_resp r;
    request("/e", &r);
    /* set drops every client copy and adds one. */
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Set"), 1);
    expect_echo(&r, "X-Set", "one");
    ck_assert_int_eq(sw_test_echo_count(r.body, "User-Agent"), 1);
    expect_echo(&r, "User-Agent", "replaced agent");
    expect_echo(&r, "X-Untouched", "same");
    sw_test_resp_free(&r);
}
END_TEST

/* A route that sets or removes one of the gateway's forwarding fields is
 * the only voice for it: one X-Forwarded-Proto, the route's, and no
 * X-Forwarded-Host; the others the gateway still adds. */
START_TEST(request_forwarding_fields_edited)
{
    struct sw_test_resp r;
    request("/fwd/x", &r);
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Forwarded-Proto"), 1);
    expect_echo(&r, "X-Forwarded-Proto", "from-edit");
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Forwarded-Host"), 0);
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Forwarded-For"), 1);
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Request-Id"), 1);
    sw_test_resp_free(&r);
}
END_TEST

START_TEST(request_add)
{
    struct sw_test_resp r;
    request("/e", &r);
    /* add keeps the client's header and appends, in order. */
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Add"), 3);
    const char *p0 = strstr(r.body, "X-Add: zero");
    const char *p1 = strstr(r.body, "X-Add: first");
    const char *p2 = strstr(r.body, "X-Add: second");
    ck_assert_msg(p0 != NULL && p1 != NULL && p2 != NULL && p0 < p1 &&
                      p1 < p2,
                  "X-Add order upstream:\n%s", r.body);
    sw_test_resp_free(&r);
}
END_TEST

START_TEST(request_remove)
{
    struct sw_test_resp r;
    request("/e", &r);
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Remove-Me"), 0);
    sw_test_resp_free(&r);
}
END_TEST

START_TEST(request_variables)
{
    struct sw_test_resp r;
    request("/vars/path?q=1&r=2", &r);
    expect_echo(&r, "X-Vars",
                "127.0.0.1,http,edits.example,/vars/path?q=1&r=2");
    /* $request_id is the id the upstream gets in X-Request-Id. */
    char *rid = sw_test_echo_header(r.body, "X-Request-Id");
    ck_assert_ptr_nonnull(rid);
    ck_assert_uint_gt(strlen(rid), 0);
    expect_echo(&r, "X-Req-Copy", rid);
    free(rid);
    sw_test_resp_free(&r);

    /* A client-supplied id flows into the variable as well. */
    ck_assert_int_eq(sw_test_http_once(gw.port,
                                       "GET /v HTTP/1.1\r\n"
                                       "Host: edits.example\r\n"
                                       "X-Request-Id: rid-from-client\r\n"
                                       "Connection: close\r\n\r\n",
                                       &r),
                     1);
    expect_echo(&r, "X-Req-Copy", "rid-from-client");
    sw_test_resp_free(&r);
}
END_TEST

START_TEST(response_edits)
{
    struct sw_test_resp r;
    request("/e", &r);
    ck_assert_uint_eq(sw_test_resp_header_count(&r, "X-Backend"), 1);
    ck_assert_str_eq(sw_test_resp_header(&r, "X-Backend"), "renamed");
    ck_assert_uint_eq(sw_test_resp_header_count(&r, "X-Resp-Add"), 2);
    const char *a1 = strstr(r.head, "X-Resp-Add: r1");
    const char *a2 = strstr(r.head, "X-Resp-Add: r2");
    ck_assert_msg(a1 != NULL && a2 != NULL && a1 < a2, "head:\n%s", r.head);
    ck_assert_ptr_null(sw_test_resp_header(&r, "X-Conn-Requests"));
    /* Untouched upstream headers stay. */
    ck_assert_ptr_nonnull(sw_test_resp_header(&r, "X-Conn-Id"));
    ck_assert_str_eq(sw_test_resp_header(&r, "X-Client"), "ip=127.0.0.1");
    sw_test_resp_free(&r);
}
END_TEST

START_TEST(other_route_untouched)
{
    struct sw_test_resp r;
    request("/plain/x", &r);
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Set"), 2);
    expect_echo(&r, "User-Agent", "client-agent");
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Add"), 1);
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Remove-Me"), 2);
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Vars"), 0);
    ck_assert_str_eq(sw_test_resp_header(&r, "X-Backend"), "b1");
    ck_assert_ptr_nonnull(sw_test_resp_header(&r, "X-Conn-Requests"));
    ck_assert_ptr_null(sw_test_resp_header(&r, "X-Resp-Add"));
    sw_test_resp_free(&r);
}
END_TEST

static Suite *
edits_suite(void)
{
    Suite *s = suite_create("edits");
    TCase *tc = tcase_create("edits");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, request_set);
    tcase_add_test(tc, request_add);
    tcase_add_test(tc, request_forwarding_fields_edited);
    tcase_add_test(tc, request_remove);
    tcase_add_test(tc, request_variables);
    tcase_add_test(tc, response_edits);
    tcase_add_test(tc, other_route_untouched);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(edits_suite());
}
