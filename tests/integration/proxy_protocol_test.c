/*
 * proxy_protocol_test.c - `listen ADDR proxy_protocol;` with the real
 * daemon (tests/conf/proxy_protocol.conf) and a `swload echo` backend that
 * shows the X-Real-IP ($remote_addr), X-Real-Port and X-Forwarded-For the
 * gateway sent.
 *
 *   curl --haproxy-protocol (v1, its real address) on the plain and the
 *   TLS listener -> 200, the backend sees 127.0.0.1; curl without it -> the
 *   connection closes with no answer, counted
 *   raw v1 TCP4 203.0.113.7 (whole, and cut in pieces) and v2 TCP6
 *   2001:db8::7 (with a TLV) -> the backend and the access log show the
 *   carried address; the request after the header is intact
 *   v2 LOCAL -> the socket's own address
 *   malformed, missing, oversized (v1 and v2) and a header that never
 *   completes -> closed without an answer, each counted once in
 *   shockwave_proxy_protocol_errors_total, each logged with its reason
 *   a listener without the flag -> a PROXY line is a bad request, 400
 *   HAProxy (Debian) in front, `send-proxy` to the plain listener and
 *   `send-proxy-v2` to the TLS one (tcp mode, TLS passed through), curl
 *   bound to 127.0.0.2 -> the backend and the access log see 127.0.0.2
 *   while the gateway's socket peer is HAProxy on 127.0.0.1
 */
#include "net.h"
#include "proc.h"
#include "support.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define METRIC "shockwave_proxy_protocol_errors_total"
#define WAIT_MS 5000

static struct sw_test_proc be; /* swload echo */
static struct sw_test_gw gw;   /* the daemon */
static int plain_port;         /* @PLAIN@: no proxy_protocol */
static int tls_port;           /* @TLSPORT@: tls proxy_protocol */
static char certs[512];        /* @CERTS@ */
static char logp[600];         /* @LOG@: the access log */

static void
setup(void)
{
    snprintf(certs, sizeof(certs), "%s/pki", sw_test_tmpdir());
    struct stat st;
    if (stat(certs, &st) != 0) {
        char *out = NULL;
        int rc = sw_test_shell(&out, "sh '%s/tests/tls/gen-certs.sh' '%s'",
                               sw_test_env("SW_SOURCE_ROOT"), certs);
        ck_assert_msg(rc == 0, "gen-certs.sh: %s", out);
        free(out);
    }
    snprintf(logp, sizeof(logp), "%s/access.log", sw_test_tmpdir());
    unlink(logp);
    int port;
    ck_assert(sw_test_backend_start(&be, "b1", &port));
    plain_port = sw_test_free_port();
    tls_port = sw_test_free_port();
    const char *kv[] = {"B1",      sw_test_itoa(port),
                        "PLAIN",   sw_test_itoa(plain_port),
                        "TLSPORT", sw_test_itoa(tls_port),
                        "CERTS",   certs,
                        "LOG",     logp,
                        NULL};
    ck_assert(sw_test_gw_start(&gw, "proxy_protocol.conf", kv));
}

static void
teardown(void)
{
    sw_test_gw_teardown(&gw, &be);
}

static const char req[] = "GET /pp HTTP/1.1\r\nHost: a\r\n"
                          "Connection: close\r\n\r\n";

/* Send `hdr` (n bytes, in pieces of `piece` bytes with a pause between,
 * 0: at once), then a request; the response into r. */
static void
send_then_get(int port, const void *hdr, size_t n, size_t piece,
              struct sw_test_resp *r)
{
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, port));
    const char *p = hdr;
    while (n > 0) {
        size_t k = piece == 0 || piece > n ? n : piece;
        ck_assert(sw_test_conn_send(&c, p, k));
        p += k;
        n -= k;
        if (n > 0) {
            sw_test_sleep_ms(30);
        }
    }
    ck_assert_int_eq(sw_test_conn_request(&c, req, r), 1);
    sw_test_conn_close(&c);
}

/* The backend's view of a header the gateway sent; fails when absent. */
static void
backend_saw(const struct sw_test_resp *r, const char *name, const char *want)
{
    ck_assert_int_eq(r->status, 200);
    char *v = sw_test_echo_header(r->body, name);
    ck_assert_msg(v != NULL, "backend got no %s:\n%s", name, r->body);
    ck_assert_msg(strcmp(v, want) == 0, "%s: got \"%s\", want \"%s\"", name, v,
                  want);
    free(v);
}

/* The access log holds a line with `needle` (written per request). */
static void
access_log_has(const char *needle)
{
    for (int i = 0; i < WAIT_MS / 20; i++) {
        char *out = NULL;
        int rc = sw_test_shell(&out, "grep -F -q -e '%s' '%s'", needle, logp);
        free(out);
        if (rc == 0) {
            return;
        }
        sw_test_sleep_ms(20);
    }
    ck_abort_msg("access log has no line with %s", needle);
}

static long long
errors_now(void)
{
    long long v = sw_test_metric(gw.admin_port, METRIC);
    ck_assert_msg(v >= 0, "no %s on the admin listener", METRIC);
    return v;
}

/* The counter reaches `want` (workers add theirs when asked). */
static void
errors_reach(long long want)
{
    long long v = -1;
    for (int i = 0; i < WAIT_MS / 20; i++) {
        v = errors_now();
        if (v >= want) {
            break;
        }
        sw_test_sleep_ms(20);
    }
    ck_assert_msg(v == want, "%s is %lld, want %lld", METRIC, v, want);
}

START_TEST(curl_haproxy_protocol)
{
    char *out = NULL;
    int rc = sw_test_shell(&out,
                           "curl -sS --max-time 10 --haproxy-protocol "
                           "http://127.0.0.1:%d/pp",
                           gw.port);
    ck_assert_msg(rc == 0, "curl: %s", out);
    ck_assert_msg(strstr(out, "X-Real-IP: 127.0.0.1") != NULL, "%s", out);
    free(out);
    rc = sw_test_shell(
        &out,
        "curl -sS --max-time 10 --haproxy-protocol --cacert "
        "'%s/ca.pem' --resolve a.test:%d:127.0.0.1 https://a.test:%d/pp",
        certs, tls_port, tls_port);
    ck_assert_msg(rc == 0, "curl https: %s", out);
    ck_assert_msg(strstr(out, "X-Real-IP: 127.0.0.1") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(errors_now(), 0);

    /* the same clients without the header: closed, no answer, counted */
    rc = sw_test_shell(&out, "curl -sS --max-time 10 http://127.0.0.1:%d/pp",
                       gw.port);
    /* 52: empty reply; 56: reset, the request being unread at the close */
    ck_assert_msg(rc == 52 || rc == 56, "curl without a header: exit %d, %s",
                  rc, out);
    free(out);
    rc = sw_test_shell(&out,
                       "curl -sS --max-time 10 --cacert '%s/ca.pem' --resolve "
                       "a.test:%d:127.0.0.1 https://a.test:%d/pp",
                       certs, tls_port, tls_port);
    ck_assert_msg(rc != 0, "TLS without a header answered: %s", out);
    free(out);
    errors_reach(2);
}
END_TEST

START_TEST(raw_v1_carried)
{
    static const char v1[] = "PROXY TCP4 203.0.113.7 192.0.2.1 56324 80\r\n";
    struct sw_test_resp r;
    send_then_get(gw.port, v1, sizeof(v1) - 1, 0, &r);
    backend_saw(&r, "X-Real-IP", "203.0.113.7");
    backend_saw(&r, "X-Real-Port", "56324");
    backend_saw(&r, "X-Forwarded-For", "203.0.113.7");
    sw_test_resp_free(&r);
    access_log_has("203.0.113.7");

    /* the header in pieces: the gateway waits for the rest */
    static const char v1b[] = "PROXY TCP4 198.51.100.9 192.0.2.1 1 80\r\n";
    send_then_get(gw.port, v1b, sizeof(v1b) - 1, 7, &r);
    backend_saw(&r, "X-Real-IP", "198.51.100.9");
    sw_test_resp_free(&r);
    ck_assert_int_eq(errors_now(), 0);
}
END_TEST

#define SIG "\r\n\r\n\0\r\nQUIT\n"

START_TEST(raw_v2_carried)
{
    /* PROXY, TCP over IPv6, 36 address bytes and an ALPN TLV */
    static const char v6[] = SIG "\x21\x21\x00\x29"
                                 "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x07"
                                 "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
                                 "\xa4\x10\x01\xbb"
                                 "\x01\x00\x02h2";
    struct sw_test_resp r;
    send_then_get(gw.port, v6, sizeof(v6) - 1, 0, &r);
    backend_saw(&r, "X-Real-IP", "2001:db8::7");
    backend_saw(&r, "X-Real-Port", "42000");
    sw_test_resp_free(&r);
    access_log_has("2001:db8::7");

    /* the same cut in pieces of 5 bytes */
    send_then_get(gw.port, v6, sizeof(v6) - 1, 5, &r);
    backend_saw(&r, "X-Real-IP", "2001:db8::7");
    sw_test_resp_free(&r);

    /* v2 TCP4 */
    static const char v4[] = SIG "\x21\x11\x00\x0c"
                                 "\xcb\x00\x71\x07\x7f\x00\x00\x01"
                                 "\x30\x39\x00\x50";
    send_then_get(gw.port, v4, sizeof(v4) - 1, 0, &r);
    backend_saw(&r, "X-Real-IP", "203.0.113.7");
    backend_saw(&r, "X-Real-Port", "12345");
    sw_test_resp_free(&r);

    /* LOCAL (a balancer's own health check): the socket's address */
    static const char local[] = SIG "\x20\x00\x00\x00";
    send_then_get(gw.port, local, sizeof(local) - 1, 0, &r);
    backend_saw(&r, "X-Real-IP", "127.0.0.1");
    sw_test_resp_free(&r);
    ck_assert_int_eq(errors_now(), 0);
}
END_TEST

/* Send bytes, expect a close with no answer, the counter at `want` and a
 * log line with `reason`. */
static void
refused(const void *bytes, size_t n, long long want, const char *reason)
{
    long mark = sw_test_proc_log_size(&gw.proc);
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert(sw_test_conn_send(&c, bytes, n));
    ck_assert_msg(sw_test_conn_closed(&c, WAIT_MS),
                  "still open, or answered, after %zu bytes (%s)", n, reason);
    sw_test_conn_close(&c);
    errors_reach(want);
    ck_assert_msg(sw_test_proc_wait_log(&gw.proc, reason, mark, WAIT_MS) > 0,
                  "no log line \"%s\"", reason);
    ck_assert_int_eq(sw_test_proc_log_count(
                         &gw.proc, mark, "PROXY protocol header refused", NULL),
                     1);
}

START_TEST(refusals)
{
    static const char badport[] = "PROXY TCP4 1.2.3.4 5.6.7.8 70000 80\r\n";
    refused(badport, sizeof(badport) - 1, 1, "v1 port is not a number");
    static const char badaddr[] = "PROXY TCP4 ::1 5.6.7.8 1 80\r\n";
    refused(badaddr, sizeof(badaddr) - 1, 2, "v1 address does not match");
    refused(req, sizeof(req) - 1, 3, "not a PROXY protocol header");
    char big[200];
    memset(big, 'x', sizeof(big));
    memcpy(big, "PROXY UNKNOWN ", 14);
    refused(big, sizeof(big), 4, "v1 header longer than 107 bytes");
    static const char bigv2[] = SIG "\x21\x11\x04\x00";
    refused(bigv2, sizeof(bigv2) - 1, 5, "v2 header longer than the limit");
    static const char badsig[] = "\r\n\r\n\0\r\nQUIZ\n\x21\x11\x00\x0c";
    refused(badsig, sizeof(badsig) - 1, 6, "not a PROXY protocol header");
    /* a header that never completes: client_header_timeout (1s) */
    static const char part[] = "PROXY TCP4 1.2.3.4";
    refused(part, sizeof(part) - 1, 7, "no complete header within");
}
END_TEST

START_TEST(plain_listener_refuses_proxy_line)
{
    static const char v1[] = "PROXY TCP4 203.0.113.7 192.0.2.1 56324 80\r\n";
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, plain_port));
    ck_assert(sw_test_conn_send(&c, v1, sizeof(v1) - 1));
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_conn_request(&c, req, &r), 1);
    ck_assert_int_eq(r.status, 400);
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);
    /* and plain HTTP there works, with the socket's address */
    ck_assert_int_eq(sw_test_http_once(plain_port, req, &r), 1);
    backend_saw(&r, "X-Real-IP", "127.0.0.1");
    sw_test_resp_free(&r);
    ck_assert_int_eq(errors_now(), 0);
}
END_TEST

/* ---- HAProxy in front ------------------------------------------------- */

static struct sw_test_proc hap; /* haproxy -db */

static const char hap_cfg[] = "global\n"
                              "    maxconn 100\n"
                              "defaults\n"
                              "    mode tcp\n"
                              "    timeout connect 5s\n"
                              "    timeout client 30s\n"
                              "    timeout server 30s\n"
                              "frontend v1\n"
                              "    bind 127.0.0.1:%d\n"
                              "    default_backend gw_v1\n"
                              "frontend v2\n"
                              "    bind 127.0.0.1:%d\n"
                              "    default_backend gw_v2\n"
                              "backend gw_v1\n"
                              "    server gw 127.0.0.1:%d send-proxy\n"
                              "backend gw_v2\n"
                              "    server gw 127.0.0.1:%d send-proxy-v2\n";

/* curl from 127.0.0.2 to HAProxy's port (url has a %d for it, twice for
 * https: --resolve), then the backend and the access log line for `tag`
 * show 127.0.0.2 while the gateway's socket peer is HAProxy's 127.0.0.1. */
static void
via_haproxy(const char *url_fmt, int port, const char *tag)
{
    char url[256];
    snprintf(url, sizeof(url), url_fmt, port);
    char *out = NULL;
    int rc = sw_test_shell(&out,
                           "curl -sS --max-time 10 --interface 127.0.0.2 "
                           "--cacert '%s/ca.pem' --resolve a.test:%d:127.0.0.1 "
                           "'%s'",
                           certs, port, url);
    ck_assert_msg(rc == 0, "curl %s: %s", url, out);
    ck_assert_msg(strstr(out, "X-Real-IP: 127.0.0.2") != NULL, "%s", out);
    free(out);
    access_log_has(tag);
    rc = sw_test_shell(&out, "grep -F '%s' '%s' | grep -F -q 127.0.0.2", tag,
                       logp);
    ck_assert_msg(rc == 0, "the access log line of %s lacks 127.0.0.2", tag);
    free(out);
}

START_TEST(haproxy_in_front)
{
    int h[2] = {sw_test_free_port(), sw_test_free_port()};
    int h1 = h[0], h2 = h[1];
    char cfg_text[2048];
    snprintf(cfg_text, sizeof(cfg_text), hap_cfg, h1, h2, gw.port, tls_port);
    sw_test_haproxy_start(&hap, cfg_text, h, 2);
    via_haproxy("http://127.0.0.1:%d/via-haproxy-v1", h1, "via-haproxy-v1");
    via_haproxy("https://a.test:%d/via-haproxy-v2", h2, "via-haproxy-v2");
    sw_test_proc_stop(&hap, 2000);
}
END_TEST

static Suite *
proxy_protocol_suite(void)
{
    Suite *s = suite_create("proxy_protocol");
    TCase *tc = tcase_create("proxy_protocol");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, curl_haproxy_protocol);
    tcase_add_test(tc, raw_v1_carried);
    tcase_add_test(tc, raw_v2_carried);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, plain_listener_refuses_proxy_line);
    tcase_add_test(tc, haproxy_in_front);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(proxy_protocol_suite());
}
