/*
 * curl_test.c - a third-party client: the `curl` binary against the daemon
 * and `swload echo` (tests/conf/basic.conf). GET, POST --data-binary,
 * a chunked upload, -I (HEAD) and connection reuse with two URLs in one
 * command.
 */
#include "net.h"
#include "support.h"
#include "proc.h"

#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct sw_test_proc be; /* swload echo "b1" */
static struct sw_test_gw gw;   /* the daemon */
static char url[128];          /* http://127.0.0.1:PORT */

static void
setup(void)
{
    int port;
    ck_assert(sw_test_backend_start(&be, "b1", &port));
    const char *kv[] = {"B1", sw_test_itoa(port), NULL};
    ck_assert(sw_test_gw_start(&gw, "basic.conf", kv));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", gw.port);
}

static void
teardown(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    sw_test_proc_stop(&be, 2000);
}

/* Run curl with argv (after "curl"); returns exit code, *out gets stdout +
 * stderr. */
static int
curl(char **out, const char *const *args)
{
    char *argv[32];
    size_t n = 0;
    argv[n++] = "/usr/bin/curl";
    argv[n++] = "--silent";
    argv[n++] = "--show-error";
    argv[n++] = "--max-time";
    argv[n++] = "20";
    argv[n++] = "--noproxy";
    argv[n++] = "*";
    for (size_t i = 0; args[i] != NULL && n < 31; i++) {
        argv[n++] = (char *)args[i];
    }
    argv[n] = NULL;
    return sw_test_run(argv, 30000, out);
}

static char *
tmpfile_with(size_t len, const char *name)
{
    static char path[600];
    snprintf(path, sizeof(path), "%s/%s", sw_test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint8_t buf[4096];
    for (size_t off = 0; off < len; off += sizeof(buf)) {
        size_t k = len - off < sizeof(buf) ? len - off : sizeof(buf);
        sw_test_pattern_fill(off, buf, k);
        ck_assert_uint_eq(fwrite(buf, 1, k, f), k);
    }
    fclose(f);
    return path;
}

static void
sha256_hex_of_pattern(size_t len, char hex[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    uint8_t buf[4096];
    for (size_t off = 0; off < len; off += sizeof(buf)) {
        size_t k = len - off < sizeof(buf) ? len - off : sizeof(buf);
        sw_test_pattern_fill(off, buf, k);
        EVP_DigestUpdate(ctx, buf, k);
    }
    uint8_t md[32];
    unsigned mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < 32; i++) {
        sprintf(hex + 2 * i, "%02x", md[i]);
    }
    hex[64] = '\0';
}

START_TEST(curl_get)
{
    char target[256];
    snprintf(target, sizeof(target), "%s/hello?a=1", url);
    const char *args[] = {"-i", "-H", "Host: curl.example", target, NULL};
    char *out;
    int rc = curl(&out, args);
    ck_assert_msg(rc == 0, "curl exit %d:\n%s", rc, out);
    ck_assert_msg(strncmp(out, "HTTP/1.1 200", 12) == 0, "%s", out);
    ck_assert_msg(strcasestr(out, "\r\nX-Backend: b1\r\n") != NULL, "%s",
                  out);
    ck_assert_msg(strstr(out, "GET /hello?a=1 HTTP/1.1") != NULL, "%s", out);
    ck_assert_msg(strcasestr(out, "Host: curl.example") != NULL, "%s", out);
    ck_assert_msg(strcasestr(out, "User-Agent: curl/") != NULL, "%s", out);
    free(out);
}
END_TEST

START_TEST(curl_post_binary)
{
    const size_t len = 300000;
    char *file = tmpfile_with(len, "post.bin");
    char at[700];
    snprintf(at, sizeof(at), "@%s", file);
    char target[256];
    snprintf(target, sizeof(target), "%s/echo", url);
    char outpath[600];
    snprintf(outpath, sizeof(outpath), "%s/post.out", sw_test_tmpdir());
    const char *args[] = {"--data-binary", at, "-H",
                          "Content-Type: application/octet-stream", "-o",
                          outpath, target, NULL};
    char *out;
    int rc = curl(&out, args);
    ck_assert_msg(rc == 0, "curl exit %d:\n%s", rc, out);
    free(out);
    FILE *f = fopen(outpath, "rb");
    ck_assert_ptr_nonnull(f);
    uint8_t *got = malloc(len + 1);
    size_t n = fread(got, 1, len + 1, f);
    fclose(f);
    ck_assert_uint_eq(n, len);
    ck_assert(sw_test_pattern_ok(0, got, n));
    free(got);
}
END_TEST

START_TEST(curl_chunked_upload)
{
    const size_t len = 1000003;
    char *file = tmpfile_with(len, "chunked.bin");
    char at[700];
    snprintf(at, sizeof(at), "@%s", file);
    char target[256];
    snprintf(target, sizeof(target), "%s/sink", url);
    const char *args[] = {"-H", "Transfer-Encoding: chunked", "--data-binary",
                          at, target, NULL};
    char *out;
    int rc = curl(&out, args);
    ck_assert_msg(rc == 0, "curl exit %d:\n%s", rc, out);
    char hex[65];
    sha256_hex_of_pattern(len, hex);
    char want[128];
    snprintf(want, sizeof(want), "bytes=%zu sha256=%s", len, hex);
    ck_assert_msg(strstr(out, want) != NULL, "want %s, got:\n%s", want, out);
    free(out);
}
END_TEST

START_TEST(curl_head)
{
    char target[256];
    snprintf(target, sizeof(target), "%s/size/12345", url);
    const char *args[] = {"-I", target, NULL};
    char *out;
    int rc = curl(&out, args);
    ck_assert_msg(rc == 0, "curl exit %d:\n%s", rc, out);
    ck_assert_msg(strncmp(out, "HTTP/1.1 200", 12) == 0, "%s", out);
    ck_assert_msg(strcasestr(out, "X-Backend: b1") != NULL, "%s", out);
    /* Only the head: it ends with the blank line. */
    size_t n = strlen(out);
    ck_assert_msg(n >= 4 && strcmp(out + n - 4, "\r\n\r\n") == 0,
                  "bytes after the head:\n%s", out);
    free(out);
}
END_TEST

START_TEST(curl_reuses_connection)
{
    char u1[256];
    char u2[256];
    snprintf(u1, sizeof(u1), "%s/first", url);
    snprintf(u2, sizeof(u2), "%s/second", url);
    const char *args[] = {"-v", u1, u2, NULL};
    char *out;
    int rc = curl(&out, args);
    ck_assert_msg(rc == 0, "curl exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "GET /first HTTP/1.1") != NULL &&
                      strstr(out, "GET /second HTTP/1.1") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "Re-using existing connection") != NULL,
                  "curl opened a second connection:\n%s", out);
    ck_assert_int_eq(sw_test_count(out, strlen(out), "Connected to"), 1);
    free(out);
}
END_TEST

static Suite *
curl_suite(void)
{
    Suite *s = suite_create("curl");
    TCase *tc = tcase_create("curl");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, curl_get);
    tcase_add_test(tc, curl_post_binary);
    tcase_add_test(tc, curl_chunked_upload);
    tcase_add_test(tc, curl_head);
    tcase_add_test(tc, curl_reuses_connection);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    if (access("/usr/bin/curl", X_OK) != 0) {
        fprintf(stderr, "curl not installed: skipping\n");
        return 77;
    }
    return sw_test_run_suite(curl_suite());
}
