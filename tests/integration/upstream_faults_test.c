/*
 * upstream_faults_test.c - a misbehaving upstream turns into a clean 502
 * (or 504 when it stalls) with Connection: close, no byte of the upstream's
 * garbage reaches the client, the fault is logged with the client address,
 * and a refused connect to a dead first server falls through to the next.
 *
 * The upstreams are fakes (net.h) scripted per test; tests/conf/
 * upstream_faults.conf routes any host to the fake and pair.test to
 * (dead server, swload echo).
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

static struct sw_test_fake fake; /* the faulty upstream */
static struct sw_test_proc be;   /* swload echo "b1" behind the dead one */
static struct sw_test_gw gw;     /* the daemon */

static void
start(enum sw_test_fake_mode mode, const char *reply, size_t len,
      bool no_wait, bool listening)
{
    int be_port;
    ck_assert(sw_test_backend_start(&be, "b1", &be_port));
    fake.no_wait = no_wait;
    ck_assert(sw_test_fake_start(&fake, mode, reply, len));
    int fport = fake.port;
    if (!listening) {
        /* A port nobody listens on: connects are refused. */
        sw_test_fake_stop(&fake);
    }
    const char *kv[] = {"F",    sw_test_itoa(fport),
                        "DEAD", sw_test_itoa(sw_test_free_port()),
                        "B1",   sw_test_itoa(be_port),
                        NULL};
    ck_assert(sw_test_gw_start(&gw, "upstream_faults.conf", kv));
}

static void
stop(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    sw_test_fake_free(&fake);
    sw_test_proc_stop(&be, 2000);
}

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

struct fault {
    const char *name;           /* what the upstream does */
    enum sw_test_fake_mode mode; /* after its reply */
    const char *reply;          /* bytes it sends */
    bool no_wait;               /* send at accept, before the request */
    bool listening;             /* false: connection refused */
    int want;                   /* 502 or 504 */
    const char *marker;         /* upstream bytes that must not leak */
};

static const struct fault faults[] = {
    {"garbage", SW_TEST_FAKE_CLOSE, "GARBAGE NOT HTTP AT ALL\r\n\r\n", false,
     true, 502, "GARBAGE"},
    {"reset before head", SW_TEST_FAKE_RESET, "", false, true, 502, NULL},
    {"close before head", SW_TEST_FAKE_CLOSE, "", false, true, 502, NULL},
    {"close at accept", SW_TEST_FAKE_CLOSE, "", true, true, 502, NULL},
    {"refused", SW_TEST_FAKE_CLOSE, "", false, false, 502, NULL},
    {"HTTP/2.0 status line", SW_TEST_FAKE_CLOSE,
     "HTTP/2.0 200 OK\r\nContent-Length: 6\r\n\r\nSECRET", false, true, 502,
     "SECRET"},
    {"HTTP/0.9 body", SW_TEST_FAKE_CLOSE, "<html>SECRET page</html>\n", false,
     true, 502, "SECRET"},
    {"differing Content-Lengths", SW_TEST_FAKE_CLOSE,
     "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Length: 7\r\n\r\n"
     "SECRET!",
     false, true, 502, "SECRET"},
    {"Content-Length with Transfer-Encoding", SW_TEST_FAKE_CLOSE,
     "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n"
     "Transfer-Encoding: chunked\r\n\r\n6\r\nSECRET\r\n0\r\n\r\n",
     false, true, 502, "SECRET"},
    {"negative Content-Length", SW_TEST_FAKE_CLOSE,
     "HTTP/1.1 200 OK\r\nContent-Length: -6\r\n\r\nSECRET", false, true, 502,
     "SECRET"},
    {"bad status code", SW_TEST_FAKE_CLOSE,
     "HTTP/1.1 2000 OK\r\nContent-Length: 6\r\n\r\nSECRET", false, true, 502,
     "SECRET"},
    {"truncated head", SW_TEST_FAKE_CLOSE, "HTTP/1.1 200 OK\r\nX-Secret: SEC",
     false, true, 502, "SEC"},
    {"unsolicited 101", SW_TEST_FAKE_STALL,
     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
     "Connection: Upgrade\r\nX-Marker: SECRET\r\n\r\n",
     false, true, 502, "SECRET"},
    {"stall", SW_TEST_FAKE_STALL, "", false, true, 504, NULL},
    {"head then stall", SW_TEST_FAKE_STALL, "HTTP/1.1 200 OK\r\n", false,
     true, 504, NULL},
};

#define NFAULTS ((int)(sizeof(faults) / sizeof(faults[0])))

START_TEST(fault_answered)
{
    const struct fault *f = &faults[_i];
    start(f->mode, f->reply, strlen(f->reply), f->no_wait, f->listening);
    long long before = -1;
    char metric[64];
    snprintf(metric, sizeof(metric),
             "shockwave_http_responses_by_code_total{code=\"%d\"}", f->want);
    before = sw_test_metric(gw.admin_port, metric);

    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    c.timeout_ms = 6000;
    int port = sw_test_conn_local_port(&c);
    int rc = sw_test_conn_request(&c,
                                  "GET /fault HTTP/1.1\r\nHost: f.test\r\n\r\n",
                                  &r);
    ck_assert_msg(rc == 1, "%s: no well-formed response (rc %d): %s", f->name,
                  rc, c.buf != NULL ? c.buf : "");
    ck_assert_msg(r.status == f->want, "%s: want %d, got %d\n%s%s", f->name,
                  f->want, r.status, r.head, r.body);
    const char *conn = sw_test_resp_header(&r, "Connection");
    ck_assert_msg(conn != NULL && strcasecmp(conn, "close") == 0,
                  "%s: no Connection: close", f->name);
    if (f->marker != NULL) {
        ck_assert_msg(strstr(r.head, f->marker) == NULL &&
                          strstr(r.body, f->marker) == NULL,
                      "%s: upstream bytes leaked:\n%s%s", f->name, r.head,
                      r.body);
    }
    sw_test_resp_free(&r);
    ck_assert_msg(sw_test_conn_closed(&c, 3000), "%s: still open", f->name);
    sw_test_conn_close(&c);

    char needle[64];
    snprintf(needle, sizeof(needle), "client 127.0.0.1:%d", port);
    ck_assert_msg(sw_test_proc_wait_log(&gw.proc, needle, 0, 3000) >= 0,
                  "%s: no log line with %s", f->name, needle);
    ck_assert_int_eq(log_lines(port, f->want), 1);
    ck_assert_int_eq(sw_test_metric(gw.admin_port, metric),
                     (before < 0 ? 0 : before) + 1);
    stop();
}
END_TEST

START_TEST(dead_first_server)
{
    static const char unused[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    start(SW_TEST_FAKE_KEEP, unused, strlen(unused), false, true);
    for (int i = 0; i < 6; i++) {
        struct sw_test_resp r;
        ck_assert_int_eq(sw_test_http_get(gw.port, "pair.test", "/p", &r), 1);
        ck_assert_msg(r.status == 200, "request %d: %d", i, r.status);
        ck_assert_str_eq(sw_test_resp_header(&r, "X-Backend"), "b1");
        ck_assert(strncmp(r.body, "GET /p HTTP/1.1", 15) == 0);
        sw_test_resp_free(&r);
    }
    stop();
}
END_TEST

START_TEST(fault_isolated)
{
    /* After a fault, the next request to a healthy upstream is fine. */
    static const char junk[] = "JUNK\r\n\r\n";
    start(SW_TEST_FAKE_CLOSE, junk, strlen(junk), false, true);
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.port, "f.test", "/x", &r), 1);
    ck_assert_int_eq(r.status, 502);
    sw_test_resp_free(&r);
    ck_assert_int_eq(sw_test_http_get(gw.port, "pair.test", "/y", &r), 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(sw_test_resp_header(&r, "X-Backend"), "b1");
    sw_test_resp_free(&r);
    stop();
}
END_TEST

static Suite *
faults_suite(void)
{
    Suite *s = suite_create("upstream_faults");
    TCase *tc = tcase_create("upstream_faults");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, fault_answered, 0, NFAULTS);
    tcase_add_test(tc, dead_first_server);
    tcase_add_test(tc, fault_isolated);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(faults_suite());
}
