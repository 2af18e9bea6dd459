/*
 * routing_test.c - route matching through the real daemon: exact host beats
 * wildcard beats any host, the longest wildcard suffix first, the longest
 * path prefix, header matches, and the first route written on ties.
 *
 * tests/conf/routing.conf gives every outcome its own `swload echo` backend,
 * named after it, so the X-Backend response header tells which route won.
 * Backends and daemon start once per test in the forked test process.
 */
#include "net.h"
#include "support.h"
#include "proc.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define NBACKENDS 6

static const char *names[NBACKENDS] = {"exact", "wild", "deepwild",
                                       "any",   "api",  "canary"};
static const char *keys[NBACKENDS] = {"B_EXACT", "B_WILD", "B_DEEPWILD",
                                      "B_ANY",   "B_API",  "B_CANARY"};
static struct sw_test_proc be[NBACKENDS]; /* one per upstream */
static struct sw_test_gw gw;              /* the daemon */

static void
setup(void)
{
    const char *kv[2 * NBACKENDS + 1];
    for (size_t i = 0; i < NBACKENDS; i++) {
        int port;
        ck_assert(sw_test_backend_start(&be[i], names[i], &port));
        kv[2 * i] = keys[i];
        kv[2 * i + 1] = sw_test_itoa(port);
    }
    kv[2 * NBACKENDS] = NULL;
    ck_assert(sw_test_gw_start(&gw, "routing.conf", kv));
}

static void
teardown(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    for (size_t i = 0; i < NBACKENDS; i++) {
        sw_test_proc_stop(&be[i], 2000);
    }
}

struct route_case {
    const char *host;   /* Host header */
    const char *path;   /* request target */
    const char *extra;  /* extra header lines ("" for none) */
    const char *expect; /* X-Backend of the winning route */
};

static const struct route_case cases[] = {
    /* 1. host rank: exact > wildcard > any */
    {"www.example.com", "/x", "", "exact"},
    {"other.example.net", "/x", "", "exact"},
    {"WWW.Example.COM", "/x", "", "exact"},
    {"www.example.com:8080", "/x", "", "exact"},
    {"foo.example.com", "/x", "", "wild"},
    {"a.b.example.com", "/x", "", "wild"},
    {"x.deep.example.com", "/x", "", "deepwild"},
    {"X.Deep.Example.Com:81", "/x", "", "deepwild"},
    {"unknown.org", "/x", "", "any"},
    /* host rank beats a longer prefix of a lower rank */
    {"foo.example.com", "/api/v1", "", "wild"},
    /* 2. longest prefix within the rank */
    {"unknown.org", "/api/v1", "", "api"},
    {"unknown.org", "/api", "", "any"},
    {"unknown.org", "/apix/", "", "any"},
    /* exact host: its /api/ route beats its "/" route (which says exact) */
    {"www.example.com", "/api/v1", "", "api"},
    /* header match: all must hold, exact value */
    {"unknown.org", "/x", "X-Canary: 1\r\n", "canary"},
    {"unknown.org", "/x", "X-Canary: 2\r\n", "any"},
    {"unknown.org", "/x", "X-Canary: 10\r\n", "any"},
    /* a longer prefix still beats the header route */
    {"unknown.org", "/api/v1", "X-Canary: 1\r\n", "api"},
    /* header routes carry no host list: a host rank wins over them */
    {"foo.example.com", "/x", "X-Canary: 1\r\n", "wild"},
};

START_TEST(route_table)
{
    const struct route_case *rc = &cases[_i];
    char req[512];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n",
             rc->path, rc->host, rc->extra);
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_once(gw.port, req, &r), 1);
    ck_assert_int_eq(r.status, 200);
    const char *got = sw_test_resp_header(&r, "X-Backend");
    const char *want = rc->expect;
    ck_assert_msg(got != NULL && strcmp(got, want) == 0,
                  "Host %s %s %s: want %s, got %s", rc->host, rc->path,
                  rc->extra, want, got != NULL ? got : "(none)");
    /* The upstream saw the request unchanged. */
    char line[300];
    snprintf(line, sizeof(line), "GET %s HTTP/1.1", rc->path);
    ck_assert_msg(strncmp(r.body, line, strlen(line)) == 0, "echo: %.80s",
                  r.body);
    sw_test_resp_free(&r);
}
END_TEST

START_TEST(route_per_request_on_one_connection)
{
    /* Routing is decided per request, not per connection. */
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    const char *seq[][2] = {{"www.example.com", "exact"},
                            {"foo.example.com", "wild"},
                            {"unknown.org", "any"},
                            {"www.example.com", "exact"}};
    for (size_t i = 0; i < 4; i++) {
        char req[256];
        snprintf(req, sizeof(req), "GET /k HTTP/1.1\r\nHost: %s\r\n\r\n",
                 seq[i][0]);
        ck_assert_int_eq(sw_test_conn_request(&c, req, &r), 1);
        ck_assert_str_eq(sw_test_resp_header(&r, "X-Backend"), seq[i][1]);
        sw_test_resp_free(&r);
    }
    sw_test_conn_close(&c);
}
END_TEST

static Suite *
routing_suite(void)
{
    Suite *s = suite_create("routing");
    TCase *tc = tcase_create("routing");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, route_table, 0,
                        (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, route_per_request_on_one_connection);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(routing_suite());
}
