/*
 * bodies_test.c - 100 MiB bodies both ways through the daemon to `swload
 * echo` (tests/conf/basic.conf, max_body_size 200m): a Content-Length and a
 * chunked upload to /sink (the backend answers bytes=N sha256=HEX), and
 * /size and /chunked downloads checked byte by byte against the pattern
 * (byte i is i % 251). Bodies stream: neither side holds them in memory,
 * and the daemon's peak resident set (VmHWM) must stay under 64 MiB.
 */
#include "net.h"
#include "proc.h"
#include "support.h"

#include <check.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define BODY_LEN (100ull * 1024 * 1024)
#define HWM_LIMIT_KB (64 * 1024)

static struct sw_test_proc be; /* swload echo "b1" */
static struct sw_test_gw gw;   /* the daemon */

static void
setup(void)
{
    int port;
    ck_assert(sw_test_backend_start(&be, "b1", &port));
    const char *kv[] = {"B1", sw_test_itoa(port), NULL};
    ck_assert(sw_test_gw_start(&gw, "basic.conf", kv));
}

static void
teardown(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    sw_test_proc_stop(&be, 2000);
}

static void
check_hwm(void)
{
#if defined(__SANITIZE_ADDRESS__)
    /* ASan's quarantine and shadow memory make RSS meaningless here. */
    return;
#else
    long kb = sw_test_proc_hwm_kb(gw.proc.pid);
    ck_assert_int_gt(kb, 0);
    ck_assert_msg(kb < HWM_LIMIT_KB, "shockwave VmHWM %ld KiB >= %d KiB", kb,
                  HWM_LIMIT_KB);
#endif
}

static void
hex_of(EVP_MD_CTX *ctx, char hex[65])
{
    uint8_t md[32];
    unsigned mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    for (unsigned i = 0; i < 32; i++) {
        sprintf(hex + 2 * i, "%02x", md[i]);
    }
    hex[64] = '\0';
}

static void
expect_sink(struct sw_test_conn *c, const char *hex)
{
    struct sw_test_resp r;
    c->timeout_ms = 30000;
    ck_assert_int_eq(sw_test_conn_read_resp(c, &r, false), 1);
    ck_assert_int_eq(r.status, 200);
    char want[128];
    snprintf(want, sizeof(want), "bytes=%llu sha256=%s\n",
             (unsigned long long)BODY_LEN, hex);
    ck_assert_str_eq(r.body, want);
    sw_test_resp_free(&r);
}

START_TEST(upload_content_length)
{
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    c.timeout_ms = 10000;
    ck_assert(sw_test_conn_sendf(&c,
                                 "POST /sink HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Length: %llu\r\n\r\n",
                                 (unsigned long long)BODY_LEN));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    static uint8_t block[256 * 1024];
    for (uint64_t off = 0; off < BODY_LEN; off += sizeof(block)) {
        size_t k = BODY_LEN - off < sizeof(block) ? (size_t)(BODY_LEN - off)
                                                  : sizeof(block);
        sw_test_pattern_fill(off, block, k);
        EVP_DigestUpdate(ctx, block, k);
        ck_assert_msg(sw_test_conn_send(&c, block, k),
                      "send failed at byte %llu: %s",
                      (unsigned long long)off, strerror(errno));
    }
    char hex[65];
    hex_of(ctx, hex);
    EVP_MD_CTX_free(ctx);
    expect_sink(&c, hex);
    sw_test_conn_close(&c);
    check_hwm();
}
END_TEST

START_TEST(upload_chunked)
{
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    c.timeout_ms = 10000;
    ck_assert(sw_test_conn_sendf(&c, "POST /sink HTTP/1.1\r\nHost: x\r\n"
                                     "Transfer-Encoding: chunked\r\n\r\n"));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    static uint8_t block[300 * 1024];
    struct sw_test_rng rng;
    sw_test_rng_init(&rng, 42);
    uint64_t off = 0;
    while (off < BODY_LEN) {
        /* Chunk sizes from 1 byte to 300 KiB. */
        size_t k = 1 + sw_test_rng_below(&rng, sizeof(block));
        if (k > BODY_LEN - off) {
            k = (size_t)(BODY_LEN - off);
        }
        sw_test_pattern_fill(off, block, k);
        EVP_DigestUpdate(ctx, block, k);
        ck_assert(sw_test_conn_sendf(&c, "%zx\r\n", k));
        ck_assert_msg(sw_test_conn_send(&c, block, k) &&
                          sw_test_conn_sendf(&c, "\r\n"),
                      "send failed at byte %llu: %s",
                      (unsigned long long)off, strerror(errno));
        off += k;
    }
    ck_assert(sw_test_conn_sendf(&c, "0\r\n\r\n"));
    char hex[65];
    hex_of(ctx, hex);
    EVP_MD_CTX_free(ctx);
    expect_sink(&c, hex);
    sw_test_conn_close(&c);
    check_hwm();
}
END_TEST

struct verify {
    uint64_t off; /* bytes seen */
    bool ok;      /* pattern held so far */
};

static void
on_body(const uint8_t *p, size_t n, void *arg)
{
    struct verify *v = arg;
    if (v->ok && !sw_test_pattern_ok(v->off, p, n)) {
        v->ok = false;
    }
    v->off += n;
}

static void
download(const char *kind)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    struct verify v = {0, true};
    ck_assert(sw_test_conn_open(&c, gw.port));
    c.timeout_ms = 10000;
    c.body_cb = on_body;
    c.body_arg = &v;
    char req[128];
    snprintf(req, sizeof(req), "GET /%s/%llu HTTP/1.1\r\nHost: x\r\n\r\n",
             kind, (unsigned long long)BODY_LEN);
    ck_assert_int_eq(sw_test_conn_request(&c, req, &r), 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_total, BODY_LEN);
    ck_assert_uint_eq(v.off, BODY_LEN);
    ck_assert_msg(v.ok, "%s: pattern broken", kind);
    sw_test_resp_free(&r);
    /* The connection is still usable after the body. */
    c.body_cb = NULL;
    ck_assert_int_eq(sw_test_conn_request(&c,
                                          "GET /after HTTP/1.1\r\n"
                                          "Host: x\r\n\r\n",
                                          &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);
    check_hwm();
}

START_TEST(download_content_length)
{
    download("size");
}
END_TEST

START_TEST(download_chunked)
{
    download("chunked");
}
END_TEST

static Suite *
bodies_suite(void)
{
    Suite *s = suite_create("bodies");
    TCase *tc = tcase_create("bodies");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, upload_content_length);
    tcase_add_test(tc, upload_chunked);
    tcase_add_test(tc, download_content_length);
    tcase_add_test(tc, download_chunked);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(bodies_suite());
}
