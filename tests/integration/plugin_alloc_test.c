/*
 * plugin_alloc_test.c - plugins on the data path allocate nothing per
 * request or per message once warm (tests/conf/plugin_alloc.conf).
 *
 * The daemon runs under the allocation counter (tests/support/alloccount.c,
 * as in ws_alloc_test.c). On a keep-alive connection to a route with two
 * plugins (a request hook that adds a response header, a rate limit) and
 * the access log on (on_log runs), 2,000 requests after a warm-up must add
 * exactly the /metrics baseline: the edit room is a pool buffer, the hooks
 * are calls. On a WebSocket route whose plugin reads every data frame
 * (ratelimit with a message limit), 10,000 messages likewise.
 *
 * Control: a new connection on the plugin route counts its plugin side
 * (one allocation for the plugins' connection states), so the counter
 * does see the worker.
 */
#include "alloc_gw.h"
#include "net.h"
#include "proc.h"
#include "support.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 10000

static const char req[] = "GET /http/x HTTP/1.1\r\nHost: a.example\r\n\r\n";

static void
requests(struct sw_test_conn *c, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct sw_test_resp r;
        ck_assert_int_eq(sw_test_conn_request(c, req, &r), 1);
        ck_assert_int_eq(r.status, 200);
        const char *tag = sw_test_resp_header(&r, "X-Tag");
        ck_assert_ptr_nonnull(tag); /* the plugin ran */
        sw_test_resp_free(&r);
    }
}

static void
messages(struct sw_test_ws *ws, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        size_t len = i % 2 == 0 ? 16 : 4096;
        ck_assert(sw_test_ws_send_pattern(ws, true, SW_WS_OP_BINARY, 0, len));
        struct sw_test_ws_frame f;
        ck_assert_int_eq(sw_test_ws_recv(ws, &f, WAIT_MS), 1);
        ck_assert_uint_eq(f.len, len);
        sw_test_ws_frame_free(&f);
    }
}

static bool
start(struct sw_test_gw *gw, struct sw_test_proc *be)
{
    int be_port;
    ck_assert(sw_test_backend_start(be, "b1", &be_port));
    char example[512];
    char ratelimit[512];
    char log[600];
    sw_test_plugin_so("example", example, sizeof(example));
    sw_test_plugin_so("ratelimit", ratelimit, sizeof(ratelimit));
    snprintf(log, sizeof(log), "%s/plugin_alloc_access.log", sw_test_tmpdir());
    const char *kv[] = {"B1",        sw_test_itoa(be_port),
                        "EXAMPLE",   example,
                        "RATELIMIT", ratelimit,
                        "LOG",       log,
                        NULL};
    if (!sw_test_gw_start_counted(gw, "plugin_alloc.conf", kv,
                                  "plugin_alloc")) {
        sw_test_proc_stop(be, 2000);
        return false;
    }
    return true;
}

START_TEST(zero_alloc_per_request_and_message)
{
    struct sw_test_proc be;
    struct sw_test_gw gw;
    if (!start(&gw, &be)) {
        return;
    }
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    requests(&c, 300); /* warm-up */
    struct sw_test_ws ws;
    int st = sw_test_ws_open(&ws, gw.port, "a.example", "/ws", NULL);
    ck_assert_msg(st == 101, "upgrade: %d (%s)", st, ws.why ? ws.why : "-");
    messages(&ws, 1000); /* warm-up */

    long long m2b;
    long long base = sw_test_alloc_baseline(gw.admin_port, &m2b);
    requests(&c, 2000);
    long long m3 = sw_test_allocs(gw.admin_port);
    fprintf(stderr, "plugin_alloc: baseline %lld; 2,000 requests: %lld\n", base,
            m3 - m2b);
    ck_assert_msg(m3 - m2b == base,
                  "2,000 requests on a plugin route cost %lld allocations "
                  "beyond the /metrics baseline (%lld)",
                  m3 - m2b - base, base);
    messages(&ws, 10000);
    long long m4 = sw_test_allocs(gw.admin_port);
    fprintf(stderr, "plugin_alloc: 10,000 messages: %lld\n", m4 - m3);
    ck_assert_msg(m4 - m3 == base,
                  "10,000 messages seen by a plugin cost %lld allocations "
                  "beyond the /metrics baseline (%lld)",
                  m4 - m3 - base, base);

    /* Control: a new connection allocates its plugin side. */
    struct sw_test_conn c2;
    ck_assert(sw_test_conn_open(&c2, gw.port));
    requests(&c2, 1);
    long long m5 = sw_test_allocs(gw.admin_port);
    ck_assert_msg(m5 - m4 - base >= 1,
                  "a new connection counted %lld allocations: the counter "
                  "does not see the worker",
                  m5 - m4 - base);
    sw_test_conn_close(&c2);
    sw_test_conn_close(&c);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
    int rc;
    ck_assert_msg(sw_test_gw_stop_clean(&gw, &rc),
                  "shockwave did not exit 0 (status 0x%x)", rc);
    sw_test_proc_stop(&be, 2000);
}
END_TEST

static Suite *
plugin_alloc_suite(void)
{
    Suite *s = suite_create("plugin_alloc");
    TCase *tc = tcase_create("plugin_alloc");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, zero_alloc_per_request_and_message);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(plugin_alloc_suite());
}
