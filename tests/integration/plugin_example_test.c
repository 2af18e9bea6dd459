/*
 * plugin_example_test.c - the example plugin (plugins/example) loaded by the
 * real daemon (tests/conf/plugin_example.conf) in front of `swload echo`:
 *
 *   our C client, curl --> shockwave [plugin example] --> swload echo
 *
 * Its `header` lines reach the client on every response of its route (and
 * on a 101), never on another route's, and its counter shows in /metrics
 * as shockwave_plugin_example_responses_tagged_total. A bad header name is
 * refused by `shockwave -t` at the directive's position.
 */
#include "net.h"
#include "proc.h"
#include "support.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define TAGGED "shockwave_plugin_example_responses_tagged_total"

static struct sw_test_proc be; /* swload echo */
static struct sw_test_gw gw;   /* the daemon */
static int be_port;            /* its port */
static char plugin[512];       /* the built example.so */

static void
setup(void)
{
    sw_test_plugin_so("example", plugin, sizeof(plugin));
    ck_assert(sw_test_backend_start(&be, "b1", &be_port));
    const char *kv[] = {"B1", sw_test_itoa(be_port), "PLUGIN", plugin, NULL};
    ck_assert(sw_test_gw_start(&gw, "plugin_example.conf", kv));
}

static void
teardown(void)
{
    sw_test_gw_teardown(&gw, &be);
}

START_TEST(headers_reach_client)
{
    long long before = sw_test_metric(gw.admin_port, TAGGED);
    ck_assert_int_eq(before, 0);
    for (int i = 0; i < 3; i++) {
        struct sw_test_resp r;
        ck_assert_int_eq(sw_test_http_get(gw.port, "app.example", "/x", &r), 1);
        ck_assert_int_eq(r.status, 200);
        ck_assert_uint_eq(sw_test_resp_header_count(&r, "X-Served-By"), 1);
        ck_assert_str_eq(sw_test_resp_header(&r, "X-Served-By"), "shockwave");
        ck_assert_str_eq(sw_test_resp_header(&r, "X-Greeting"),
                         "hello, newcomer");
        /* a response header: the upstream never saw it */
        ck_assert_ptr_null(sw_test_echo_header(r.body, "X-Served-By"));
        sw_test_resp_free(&r);
    }
    /* another route: untouched, not counted */
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.port, "app.example", "/plain/", &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(sw_test_resp_header(&r, "X-Served-By"));
    sw_test_resp_free(&r);
    ck_assert_int_eq(sw_test_metric(gw.admin_port, TAGGED), 3);
}
END_TEST

START_TEST(headers_with_curl_and_upgrade)
{
    char curl[512];
    ck_assert_msg(sw_test_which("curl", curl, sizeof(curl)),
                  "curl is not on PATH");
    char target[128];
    snprintf(target, sizeof(target), "http://127.0.0.1:%d/curl", gw.port);
    char *argv[] = {curl, "-sS", "-i", target, NULL};
    char *out = NULL;
    int rc = sw_test_run(argv, 10000, &out);
    ck_assert_msg(rc == 0, "curl exit %d:\n%s", rc, out);
    ck_assert_msg(strcasestr(out, "\nX-Served-By: shockwave\r\n") != NULL, "%s",
                  out);
    free(out);
    /* the 101 of a WebSocket upgrade carries them too */
    struct sw_test_ws ws;
    sw_test_ws_open_ok(&ws, gw.port, "app.example", "/ws");
    ck_assert_msg(strcasestr(ws.head, "\nX-Served-By: shockwave\r\n") != NULL,
                  "%s", ws.head);
    sw_test_ws_echo(&ws, SW_WS_OP_TEXT, "hi", 2, 5000);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, 5000), 1000);
    sw_test_ws_free(&ws);
    ck_assert_int_eq(sw_test_metric(gw.admin_port, TAGGED), 2);
}
END_TEST

START_TEST(bad_header_name_refused)
{
    const char *kv[] = {"PORT",   sw_test_itoa(gw.port),
                        "B1",     sw_test_itoa(be_port),
                        "PLUGIN", plugin,
                        NULL};
    char *out = NULL;
    int rc = sw_test_conf_check("plugin_example_bad.conf", kv, &out);
    ck_assert_msg(rc > 0, "-t accepted a bad header name:\n%s", out);
    ck_assert_msg(strstr(out, "plugin_example_bad.conf:14:") != NULL &&
                      strstr(out, "plugin example") != NULL &&
                      strstr(out, "invalid header name \"Bad Name\"") != NULL,
                  "%s", out);
    free(out);
}
END_TEST

static Suite *
plugin_example_suite(void)
{
    Suite *s = suite_create("plugin_example");
    TCase *tc = tcase_create("plugin_example");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, headers_reach_client);
    tcase_add_test(tc, headers_with_curl_and_upgrade);
    tcase_add_test(tc, bad_header_name_refused);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(plugin_example_suite());
}
