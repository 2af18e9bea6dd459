/*
 * realip_test.c - the client address from a trusted front
 * (`set_real_ip_from`, `real_ip_header`, `real_ip_recursive`) through the
 * real daemon to `swload echo`, which lists the headers it received: the
 * routes set X-Real-IP to $remote_addr, so the echo shows which address
 * the gateway took. Every request comes from 127.0.0.1.
 *
 * tests/conf/realip.conf, rendered per test case:
 *   trusted    127.0.0.1 trusted, recursive off: the last X-Forwarded-For
 *   recursive  127.0.0.1 and 203.0.113.0/24 trusted, recursive on
 *   untrusted  only 10.0.0.0/8 and 192.0.2.1 trusted: the header is ignored
 *   header     real_ip_header X-Client-IP: a single address
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
#include <unistd.h>

#define WAIT_MS 5000
#define HASH_CLIENTS 16 /* distinct addresses spread over two backends */

static struct sw_test_proc be1; /* swload echo "b1" */
static struct sw_test_proc be2; /* swload echo "b2" */
static struct sw_test_gw gw;    /* the daemon */

static void
start(const char *from1, const char *from2, const char *header,
      const char *recursive)
{
    int p1;
    int p2;
    ck_assert(sw_test_backend_start(&be1, "b1", &p1));
    ck_assert(sw_test_backend_start(&be2, "b2", &p2));
    const char *kv[] = {
        "B1",        sw_test_itoa(p1), "B2",  sw_test_itoa(p2), "FROM1",
        from1,       "FROM2",          from2, "HEADER",         header,
        "RECURSIVE", recursive,        NULL};
    ck_assert(sw_test_gw_start(&gw, "realip.conf", kv));
}

static void
setup_trusted(void)
{
    start("127.0.0.1", "192.0.2.1", "X-Forwarded-For", "off");
}

static void
setup_recursive(void)
{
    start("127.0.0.1/32", "203.0.113.0/24", "X-Forwarded-For", "on");
}

static void
setup_untrusted(void)
{
    start("10.0.0.0/8", "192.0.2.1", "X-Forwarded-For", "off");
}

static void
setup_header(void)
{
    start("127.0.0.0/8", "::1", "X-Client-IP", "off");
}

static void
teardown(void)
{
    int st;
    ck_assert(sw_test_gw_stop_clean(&gw, &st));
    sw_test_proc_stop(&be1, 2000);
    sw_test_proc_stop(&be2, 2000);
}

/* GET path with the extra header lines; the echo's body in *r (200). */
static void
get(const char *path, const char *extra, struct sw_test_resp *r)
{
    char req[2048];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: a\r\n%sConnection: close\r\n\r\n", path,
             extra);
    ck_assert_int_eq(sw_test_http_once(gw.port, req, r), 1);
    ck_assert_int_eq(r->status, 200);
}

static void
expect_echo(const struct sw_test_resp *r, const char *name, const char *want)
{
    sw_test_expect_echo(r->body, name, want);
}

/* The address the upstream saw as $remote_addr for one request. */
static void
expect_real(const char *extra, const char *want)
{
    struct sw_test_resp r;
    get("/r", extra, &r);
    expect_echo(&r, "X-Real-IP", want);
    sw_test_resp_free(&r);
}

/* Wait (bounded) for the log (error and access lines both go to
 * stderr) to hold `needle`. */
static void
expect_logged(const char *needle)
{
    ck_assert_msg(sw_test_proc_wait_log(&gw.proc, needle, 0, WAIT_MS) > 0,
                  "no \"%s\" in the log", needle);
}

START_TEST(trusted_last_address)
{
    expect_real("X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n",
                "203.0.113.9");
    /* two field lines are one list */
    expect_real("X-Forwarded-For: 198.51.100.1\r\n"
                "X-Forwarded-For: 203.0.113.9\r\n",
                "203.0.113.9");
    /* IPv6, written back in its canonical form */
    expect_real("X-Forwarded-For: 2001:DB8:0::1\r\n", "2001:db8::1");
    /* without the header the peer stays */
    expect_real("", "127.0.0.1");
}
END_TEST

/* As nginx's $proxy_add_x_forwarded_for: the client's values, then the
 * request's client address (the rewritten one). */
START_TEST(trusted_forwarded_for_upstream)
{
    struct sw_test_resp r;
    get("/r", "X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n", &r);
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Forwarded-For"), 1);
    expect_echo(&r, "X-Forwarded-For",
                "198.51.100.1, 203.0.113.9, 203.0.113.9");
    expect_echo(&r, "X-Peer", "127.0.0.1"); /* $realip_remote_addr */
    sw_test_resp_free(&r);
}
END_TEST

START_TEST(trusted_garbage_keeps_peer)
{
    long mark = sw_test_proc_log_size(&gw.proc);
    expect_real("X-Forwarded-For: 198.51.100.1, not-an-ip\r\n", "127.0.0.1");
    ck_assert_msg(sw_test_proc_wait_log(&gw.proc,
                                        "\"not-an-ip\" is not an IP "
                                        "address, ignored",
                                        mark, WAIT_MS) > 0,
                  "no debug line for the bad X-Forwarded-For");
    expect_real("X-Forwarded-For: 203.0.113.9:8080\r\n", "127.0.0.1");
    expect_real("X-Forwarded-For: ,, \r\n", "127.0.0.1");
}
END_TEST

START_TEST(trusted_access_log)
{
    expect_real("X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n",
                "203.0.113.9");
    expect_logged("203.0.113.9 \"GET /r HTTP/1.1\" 200");
}
END_TEST

/* The real address is per request: a later request on the same
 * connection without the header is the peer's again. */
START_TEST(trusted_keepalive)
{
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    const char *reqs[] = {
        "GET /k1 HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n",
        "GET /k2 HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /k3 HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n",
    };
    const char *want[] = {"203.0.113.9", "127.0.0.1", "198.51.100.7"};
    for (size_t i = 0; i < SW_NELEMS(reqs); i++) {
        struct sw_test_resp r;
        ck_assert_int_eq(sw_test_conn_request(&c, reqs[i], &r), 1);
        ck_assert_int_eq(r.status, 200);
        expect_echo(&r, "X-Real-IP", want[i]);
        sw_test_resp_free(&r);
    }
    sw_test_conn_close(&c);
    expect_logged("127.0.0.1 \"GET /k2 HTTP/1.1\" 200");
    expect_logged("198.51.100.7 \"GET /k3 HTTP/1.1\" 200");
}
END_TEST

START_TEST(trusted_websocket)
{
    struct sw_test_ws ws;
    ck_assert_int_eq(sw_test_ws_open(&ws, gw.port, "a", "/ws/chat",
                                     "X-Forwarded-For: 203.0.113.9\r\n"),
                     101);
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_TEXT, "hello", 5));
    struct sw_test_ws_msg m;
    ck_assert_int_eq(sw_test_ws_recv_msg(&ws, &m, WAIT_MS), 1);
    ck_assert_uint_eq(m.len, 5);
    sw_test_ws_msg_free(&m);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
    expect_logged("203.0.113.9 \"GET /ws/chat HTTP/1.1\" 101");
}
END_TEST

/* `balance hash $remote_addr` hashes the real address: distinct clients
 * behind one front spread over both backends, one client sticks. */
START_TEST(trusted_hash)
{
    int seen[2] = {0, 0};
    for (int i = 0; i < HASH_CLIENTS; i++) {
        char extra[128];
        snprintf(extra, sizeof(extra), "X-Forwarded-For: 198.51.100.%d\r\n",
                 i + 1);
        struct sw_test_resp r;
        get("/hash/x", extra, &r);
        const char *b = sw_test_resp_header(&r, "X-Backend");
        ck_assert_ptr_nonnull(b);
        seen[strcmp(b, "b1") == 0 ? 0 : 1]++;
        struct sw_test_resp again;
        get("/hash/y", extra, &again);
        ck_assert_str_eq(sw_test_resp_header(&again, "X-Backend"), b);
        sw_test_resp_free(&again);
        sw_test_resp_free(&r);
    }
    ck_assert_msg(seen[0] > 0 && seen[1] > 0, "b1 %d, b2 %d", seen[0], seen[1]);
}
END_TEST

START_TEST(recursive_skips_trusted)
{
    expect_real("X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n",
                "198.51.100.1");
    expect_real("X-Forwarded-For: 192.0.2.4, 198.51.100.1, 203.0.113.9\r\n",
                "198.51.100.1");
    /* every hop trusted: the leftmost */
    expect_real("X-Forwarded-For: 203.0.113.5, 203.0.113.9\r\n", "203.0.113.5");
    /* the walk stops at garbage: the last good (trusted) address stays */
    expect_real("X-Forwarded-For: 198.51.100.1, junk, 203.0.113.9\r\n",
                "203.0.113.9");
}
END_TEST

START_TEST(untrusted_changes_nothing)
{
    expect_real("X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n", "127.0.0.1");
    struct sw_test_resp r;
    get("/r", "X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n", &r);
    expect_echo(&r, "X-Forwarded-For", "198.51.100.1, 203.0.113.9, 127.0.0.1");
    sw_test_resp_free(&r);
    expect_logged("127.0.0.1 \"GET /r HTTP/1.1\" 200");
}
END_TEST

START_TEST(header_single_address)
{
    expect_real("X-Client-IP: 192.0.2.55\r\n"
                "X-Forwarded-For: 198.51.100.1\r\n",
                "192.0.2.55");
    /* not a list: the whole value must be one address */
    expect_real("X-Client-IP: 192.0.2.55, 192.0.2.56\r\n", "127.0.0.1");
    expect_real("X-Forwarded-For: 198.51.100.1\r\n", "127.0.0.1");
}
END_TEST

static Suite *
realip_suite(void)
{
    Suite *s = suite_create("realip");
    TCase *tc = tcase_create("trusted");
    tcase_add_checked_fixture(tc, setup_trusted, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, trusted_last_address);
    tcase_add_test(tc, trusted_forwarded_for_upstream);
    tcase_add_test(tc, trusted_garbage_keeps_peer);
    tcase_add_test(tc, trusted_access_log);
    tcase_add_test(tc, trusted_keepalive);
    tcase_add_test(tc, trusted_websocket);
    tcase_add_test(tc, trusted_hash);
    suite_add_tcase(s, tc);
    TCase *rc = tcase_create("recursive");
    tcase_add_checked_fixture(rc, setup_recursive, teardown);
    tcase_set_timeout(rc, 120);
    tcase_add_test(rc, recursive_skips_trusted);
    suite_add_tcase(s, rc);
    TCase *uc = tcase_create("untrusted");
    tcase_add_checked_fixture(uc, setup_untrusted, teardown);
    tcase_set_timeout(uc, 120);
    tcase_add_test(uc, untrusted_changes_nothing);
    suite_add_tcase(s, uc);
    TCase *hc = tcase_create("header");
    tcase_add_checked_fixture(hc, setup_header, teardown);
    tcase_set_timeout(hc, 120);
    tcase_add_test(hc, header_single_address);
    suite_add_tcase(s, hc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(realip_suite());
}
