/*
 * smuggling_test.c - request smuggling vectors (RFC 9112 sections 2.2, 5,
 * 6.1, 6.3) are refused with 400 (501 for an unknown transfer coding) and
 * Connection: close, and the upstream never receives a second request.
 *
 * Every vector is followed, in the same write, by "GET /smuggled": were the
 * daemon to read the body differently from the upstream, that request would
 * surface. The upstream is a recording fake (tests/conf/smuggling.conf), so
 * the test reads exactly what reached it: after the bad request and one
 * normal request on a fresh connection, the upstream must have seen the
 * normal request, never /smuggled, and for head-level vectors nothing else.
 */
#include "net.h"
#include "support.h"
#include "proc.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char ok_reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

static struct sw_test_fake fake; /* recording upstream */
static struct sw_test_gw gw;     /* the daemon */

static void
setup(void)
{
    ck_assert(sw_test_fake_start(&fake, SW_TEST_FAKE_KEEP, ok_reply,
                                 strlen(ok_reply)));
    const char *kv[] = {"F", sw_test_itoa(fake.port), NULL};
    ck_assert(sw_test_gw_start(&gw, "smuggling.conf", kv));
}

static void
teardown(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    sw_test_fake_free(&fake);
}

#define SMUGGLED "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

struct vector {
    const char *name;  /* what it tries */
    const char *data;  /* request bytes, then SMUGGLED */
    size_t len;        /* bytes of data (NUL bytes allowed) */
    int want;          /* status */
    bool head_level;   /* refused on the head: nothing may go upstream */
};

#define V(name, lit, want, head)                                              \
    {name, lit SMUGGLED, sizeof(lit SMUGGLED) - 1, want, head}

static const struct vector vectors[] = {
    V("CL then TE",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      400, true),
    V("TE then CL",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Content-Length: 5\r\n\r\n0\r\n\r\n",
      400, true),
    V("differing duplicate CL",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
      "Content-Length: 6\r\n\r\nhello",
      400, true),
    V("CL list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n"
                 "hello",
      400, true),
    V("CL overflow",
      "POST / HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: 184467440737095516160\r\n\r\n",
      400, true),
    V("CL 2^64", "POST / HTTP/1.1\r\nHost: x\r\n"
                 "Content-Length: 18446744073709551616\r\n\r\n",
      400, true),
    V("CL with sign", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n"
                      "hello",
      400, true),
    V("chunk size overflow",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "fffffffffffffffff1\r\nhello\r\n0\r\n\r\n",
      400, false),
    V("chunk data longer than size",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nhello\r\n0\r\n\r\n",
      400, false),
    V("TE not final chunked",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
      "0\r\n\r\n",
      400, true),
    V("TE split over two lines",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
      400, true),
    V("TE unknown coding",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xyzzy, chunked\r\n\r\n"
      "0\r\n\r\n",
      501, true),
    V("TE on HTTP/1.0",
      "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n",
      400, true),
    V("obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-Fold: a\r\n b\r\n\r\n", 400,
      true),
    V("obs-fold TE",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
      "0\r\n\r\n",
      400, true),
    V("bare LF in header",
      "POST / HTTP/1.1\r\nHost: x\r\nX-A: 1\nTransfer-Encoding: chunked\r\n"
      "\r\n0\r\n\r\n",
      400, true),
    V("bare LF after request line", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400,
      true),
    V("bare CR", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\rX-B: 2\r\n\r\n", 400,
      true),
    V("NUL in header value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
      400, true),
    V("control byte in header value",
      "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01" "b\r\n\r\n", 400, true),
    V("vertical tab before chunked",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x0b" "chunked\r\n\r\n"
      "0\r\n\r\n",
      400, true),
    V("space before colon",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello", 400,
      true),
    V("space before colon TE",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n"
      "0\r\n\r\n",
      400, true),
    V("HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400, true),
    V("two Hosts", "GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n"
                   "\r\n",
      400, true),
};

#define NVECTORS ((int)(sizeof(vectors) / sizeof(vectors[0])))

START_TEST(vector_refused)
{
    const struct vector *v = &vectors[_i];
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert(sw_test_conn_send(&c, v->data, v->len));
    int rc = sw_test_conn_read_resp(&c, &r, false);
    ck_assert_msg(rc == 1, "%s: no response (rc %d)", v->name, rc);
    ck_assert_msg(r.status == v->want, "%s: want %d, got %d", v->name,
                  v->want, r.status);
    const char *conn = sw_test_resp_header(&r, "Connection");
    ck_assert_msg(conn != NULL && strcasecmp(conn, "close") == 0,
                  "%s: no Connection: close", v->name);
    sw_test_resp_free(&r);
    /* Nothing else comes back: no answer to /smuggled. */
    ck_assert_msg(sw_test_conn_closed(&c, 3000), "%s: open, or more bytes: %s",
                  v->name, c.buf != NULL ? c.buf : "");
    sw_test_conn_close(&c);

    /* A normal request on a fresh connection still works. */
    ck_assert_int_eq(sw_test_http_once(gw.port,
                                       "GET /after HTTP/1.1\r\nHost: x\r\n"
                                       "Connection: close\r\n\r\n",
                                       &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "ok");
    sw_test_resp_free(&r);

    size_t n;
    char *rx = sw_test_fake_rx(&fake, &n);
    ck_assert_msg(sw_test_count(rx, n, "/smuggled") == 0,
                  "%s: the upstream got the smuggled request:\n%s", v->name,
                  rx);
    ck_assert_msg(sw_test_count(rx, n, "GET /after HTTP/1.1\r\n") == 1,
                  "%s: upstream:\n%s", v->name, rx);
    size_t requests = sw_test_count(rx, n, " HTTP/1.1\r\n");
    ck_assert_msg(requests <= (v->head_level ? 1u : 2u),
                  "%s: upstream saw %zu requests:\n%s", v->name, requests, rx);
    free(rx);
}
END_TEST

START_TEST(valid_pipeline_reaches_upstream)
{
    /* Control: the same framing done right is forwarded, request by
     * request, so the vectors above fail for the right reason. */
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert(sw_test_conn_sendf(&c,
                                 "POST /a HTTP/1.1\r\nHost: x\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n"
                                 "5\r\nhello\r\n0\r\n\r\n"
                                 "POST /b HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Length: 5\r\n\r\nhello"
                                 "GET /c HTTP/1.1\r\nHost: x\r\n"
                                 "Connection: close\r\n\r\n"));
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
        ck_assert_int_eq(r.status, 200);
        sw_test_resp_free(&r);
    }
    sw_test_conn_close(&c);
    size_t n;
    char *rx = sw_test_fake_rx(&fake, &n);
    ck_assert_uint_eq(sw_test_count(rx, n, " HTTP/1.1\r\n"), 3);
    const char *a = strstr(rx, "POST /a ");
    const char *b = strstr(rx, "POST /b ");
    const char *cc = strstr(rx, "GET /c ");
    ck_assert_msg(a != NULL && b != NULL && cc != NULL && a < b && b < cc,
                  "upstream:\n%s", rx);
    free(rx);
}
END_TEST

static Suite *
smuggling_suite(void)
{
    Suite *s = suite_create("smuggling");
    TCase *tc = tcase_create("smuggling");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, vector_refused, 0, NVECTORS);
    tcase_add_test(tc, valid_pipeline_reaches_upstream);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(smuggling_suite());
}
