/*
 * tls_test.c - TLS termination with the real daemon (tests/conf/tls.conf)
 * and third-party clients: `openssl s_client` (TLS 1.2 and 1.3 accepted,
 * 1.0 and 1.1 refused, SNI picks the certificate, ALPN http/1.1, OCSP
 * stapled, session resumption "Reused"), `curl --cacert` GET and POST with
 * X-Forwarded-Proto: https at the `swload echo` backend, a plain HTTP
 * request on the TLS port (400, logged), a stalled handshake closed after
 * tls_handshake_timeout, wss:// echo with python3-websockets (16 MiB
 * messages, SHA-256 checked), a certificate reload under live wss
 * connections (none dropped, new handshakes see the new certificate) and a
 * bad certificate on reload (old one kept), and `shockwave -t` reporting a
 * key that does not match.
 *
 * The PKI comes from tests/tls/gen-certs.sh, made once per test process in
 * its temporary folder.
 */
#include "net.h"
#include "proc.h"

#include <check.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct sw_test_proc be; /* swload echo "b1" */
static struct sw_test_gw gw;   /* the daemon */
static int tls_port;           /* @TLSPORT@ */
static char certs[512];        /* @CERTS@ */
static char port_s[16];        /* tls_port as text */

static void
sh(const char *fmt, const char *a, const char *b)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), fmt, a, b);
    ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static void
setup(void)
{
    snprintf(certs, sizeof(certs), "%s/pki", sw_test_tmpdir());
    struct stat st;
    if (stat(certs, &st) != 0) {
        char gen[600];
        snprintf(gen, sizeof(gen), "%s/tests/tls/gen-certs.sh",
                 sw_test_env("SW_SOURCE_ROOT"));
        sh("sh '%s' '%s'", gen, certs);
    }
    sh("cp '%s/b.pem' '%s/live.pem'", certs, certs);
    sh("cp '%s/b.key' '%s/live.key'", certs, certs);
    int port;
    ck_assert(sw_test_backend_start(&be, "b1", &port));
    tls_port = sw_test_free_port();
    snprintf(port_s, sizeof(port_s), "%d", tls_port);
    const char *kv[] = {
        "B1", sw_test_itoa(port), "TLSPORT", port_s, "CERTS", certs, NULL};
    ck_assert(sw_test_gw_start(&gw, "tls.conf", kv));
}

static void
teardown(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    sw_test_proc_stop(&be, 2000);
}

/* Run a shell pipeline (stdin from /dev/null unless it pipes); exit code,
 * *out gets stdout + stderr. */
static int shell(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int
shell(char **out, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    return sw_test_run(argv, 60000, out);
}

/* s_client with an HTTP request on stdin; extra options in `opts`. */
static int
s_client(char **out, const char *opts)
{
    return shell(out,
                 "printf 'GET /x HTTP/1.1\\r\\nHost: a.test\\r\\nConnection: "
                 "close\\r\\n\\r\\n' | openssl s_client -connect 127.0.0.1:%d "
                 "-CAfile '%s/ca.pem' -verify_return_error -ign_eof %s 2>&1",
                 tls_port, certs, opts);
}

START_TEST(tls_versions)
{
    char *out = NULL;
    ck_assert_int_eq(s_client(&out, "-servername a.test -tls1_3"), 0);
    ck_assert_msg(strstr(out, "Protocol  : TLSv1.3") != NULL ||
                      strstr(out, "New, TLSv1.3") != NULL,
                  "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "HTTP/1.1 200"));
    ck_assert_ptr_nonnull(strstr(out, "Verify return code: 0 (ok)"));
    free(out);
    ck_assert_int_eq(s_client(&out, "-servername a.test -tls1_2"), 0);
    ck_assert_ptr_nonnull(strstr(out, "TLSv1.2"));
    ck_assert_ptr_nonnull(strstr(out, "HTTP/1.1 200"));
    free(out);
    long mark = sw_test_proc_log_size(&gw.proc);
    const char *old[] = {"-tls1", "-tls1_1"};
    for (size_t i = 0; i < 2; i++) {
        char opts[128];
        snprintf(opts, sizeof(opts),
                 "-servername a.test %s -cipher DEFAULT@SECLEVEL=0", old[i]);
        ck_assert_int_ne(s_client(&out, opts), 0);
        ck_assert_ptr_null(strstr(out, "HTTP/1.1 200"));
        free(out);
    }
    ck_assert(sw_test_proc_wait_log(&gw.proc,
                                    "tls: handshake failed: unsupported "
                                    "protocol",
                                    mark, 5000) >= 0);
}
END_TEST

START_TEST(tls_sni_alpn_ocsp)
{
    static const struct {
        const char *opts;
        const char *subject;
    } v[] = {
        {"-servername a.test", "CN = a.test"},
        {"-servername www.a.test", "CN = a.test"},
        {"-servername x.w.test", "CN = wild.w.test"},
        {"-servername b.test", "CN = b.test"},
        {"-servername nobody.test", "CN = a.test"},
        {"-noservername", "CN = a.test"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char *out = NULL;
        char opts[256];
        snprintf(opts, sizeof(opts), "%s -alpn h2,http/1.1 -status", v[i].opts);
        s_client(&out, opts);
        char want[128];
        snprintf(want, sizeof(want), "subject=%s", v[i].subject);
        ck_assert_msg(strstr(out, want) != NULL, "%s: no %s in\n%s", v[i].opts,
                      want, out);
        ck_assert_msg(strstr(out, "ALPN protocol: http/1.1") != NULL, "%s",
                      out);
        bool stapled = strstr(out, "OCSP Response Status: successful") != NULL;
        ck_assert_msg(stapled == (strcmp(v[i].subject, "CN = a.test") == 0),
                      "%s: OCSP stapled %d", v[i].opts, stapled);
        free(out);
    }
}
END_TEST

START_TEST(tls_resumption)
{
    const char *vers[] = {"-tls1_3", "-tls1_2"};
    for (size_t i = 0; i < 2; i++) {
        char *out = NULL;
        char opts[1024];
        snprintf(opts, sizeof(opts),
                 "-servername a.test %s -sess_out '%s/s%zu'", vers[i], certs,
                 i);
        ck_assert_int_eq(s_client(&out, opts), 0);
        ck_assert_ptr_nonnull(strstr(out, "New, TLS"));
        free(out);
        /* Several times: connections land on either worker. */
        for (int k = 0; k < 4; k++) {
            snprintf(opts, sizeof(opts),
                     "-servername a.test %s -sess_in '%s/s%zu'", vers[i], certs,
                     i);
            ck_assert_int_eq(s_client(&out, opts), 0);
            ck_assert_msg(strstr(out, "Reused, TLS") != NULL, "%s", out);
            ck_assert_ptr_nonnull(strstr(out, "HTTP/1.1 200"));
            free(out);
        }
    }
}
END_TEST

START_TEST(tls_curl)
{
    char *out = NULL;
    int rc = shell(&out,
                   "curl --silent --show-error --max-time 20 --noproxy '*' "
                   "--cacert '%s/ca.pem' --resolve a.test:%d:127.0.0.1 "
                   "https://a.test:%d/get",
                   certs, tls_port, tls_port);
    ck_assert_msg(rc == 0, "%s", out);
    char *proto = sw_test_echo_header(out, "X-Forwarded-Proto");
    ck_assert_msg(proto != NULL && strcmp(proto, "https") == 0, "%s", out);
    free(proto);
    free(out);
    /* POST a 1 MiB body; the echo backend answers with its digest. */
    rc = shell(&out,
               "head -c 1048576 /dev/urandom > '%s/body' && curl --silent "
               "--show-error --max-time 20 --noproxy '*' --cacert '%s/ca.pem' "
               "--resolve a.test:%d:127.0.0.1 --data-binary @'%s/body' "
               "-o '%s/answer' -w '%%{http_code} %%{size_download}' "
               "https://a.test:%d/post",
               certs, certs, tls_port, certs, certs, tls_port);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strncmp(out, "200 ", 4) == 0, "%s", out);
    free(out);
    char path[700];
    snprintf(path, sizeof(path), "%s/answer", certs);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char body[65536];
    size_t n = fread(body, 1, sizeof(body) - 1, f);
    body[n] = '\0';
    fclose(f);
    /* The backend saw the whole body. */
    ck_assert_msg(strstr(body, "1048576") != NULL, "%s", body);
}
END_TEST

START_TEST(tls_plain_http_and_stall)
{
    long mark = sw_test_proc_log_size(&gw.proc);
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(tls_port, "a.test", "/", &r), 1);
    ck_assert_int_eq(r.status, 400);
    sw_test_resp_free(&r);
    ck_assert(sw_test_proc_wait_log(&gw.proc, "http request on a TLS port",
                                    mark, 5000) >= 0);
    /* A client that never sends its hello is closed after 1s. */
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, tls_port));
    ck_assert(sw_test_conn_closed(&c, 5000));
    sw_test_conn_close(&c);
    /* The daemon still serves. */
    char *out = NULL;
    ck_assert_int_eq(s_client(&out, "-servername a.test"), 0);
    free(out);
}
END_TEST

START_TEST(tls_wss_echo)
{
    char *out = NULL;
    int rc = shell(&out,
                   "/usr/bin/python3 '%s/tests/tls/wss_client.py' "
                   "wss://127.0.0.1:%d/ws '%s/ca.pem' a.test echo 2>&1",
                   sw_test_env("SW_SOURCE_ROOT"), tls_port, certs);
    ck_assert_msg(rc == 0 && strstr(out, "echo ok") != NULL, "%s", out);
    free(out);
}
END_TEST

static char *
serial_of(const char *name)
{
    char *out = NULL;
    char opts[256];
    snprintf(opts, sizeof(opts), "-servername %s", name);
    s_client(&out, opts);
    char *cmd_out = NULL;
    /* The leaf's serial, from the PEM s_client printed. */
    char tmp[700];
    snprintf(tmp, sizeof(tmp), "%s/leaf.out", certs);
    FILE *f = fopen(tmp, "w");
    fputs(out, f);
    fclose(f);
    free(out);
    shell(&cmd_out, "openssl x509 -noout -serial -in '%s'", tmp);
    return cmd_out;
}

START_TEST(tls_reload_certificates)
{
    char flag[700];
    snprintf(flag, sizeof(flag), "%s/go", certs);
    unlink(flag);
    char *before = serial_of("b.test");
    ck_assert_ptr_nonnull(strstr(before, "serial="));
    /* Live wss connections across the reload. */
    struct sw_test_proc py;
    char uri[64];
    snprintf(uri, sizeof(uri), "wss://127.0.0.1:%d/ws", tls_port);
    char ca[600];
    snprintf(ca, sizeof(ca), "%s/ca.pem", certs);
    char script[600];
    snprintf(script, sizeof(script), "%s/tests/tls/wss_client.py",
             sw_test_env("SW_SOURCE_ROOT"));
    char *argv[] = {
        "/usr/bin/python3", script, uri, ca, "b.test", "hold", "8", flag, NULL};
    ck_assert(sw_test_proc_spawn(&py, "wss-hold", argv));
    ck_assert(sw_test_proc_wait_log(&py, "open 8", 0, 20000) >= 0);

    /* A bad certificate: the reload fails, the old one serves. */
    long mark = sw_test_proc_log_size(&gw.proc);
    sh("cp '%s/a.key' '%s/live.key'", certs, certs);
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert(sw_test_proc_wait_log(&gw.proc, "reload failed", mark, 5000) >=
              0);
    ck_assert(sw_test_proc_log_count(&gw.proc, mark,
                                     "private key does not match", NULL) == 1);
    char *same = serial_of("b.test");
    ck_assert_str_eq(same, before);
    free(same);

    /* The new certificate: new handshakes see it. */
    mark = sw_test_proc_log_size(&gw.proc);
    sh("cp '%s/b2.pem' '%s/live.pem'", certs, certs);
    sh("cp '%s/b2.key' '%s/live.key'", certs, certs);
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert(sw_test_proc_wait_log(&gw.proc, "configuration reloaded", mark,
                                    5000) >= 0);
    char *after = serial_of("b.test");
    ck_assert_str_ne(after, before);
    free(after);
    free(before);

    /* Every old connection still echoes. */
    ck_assert(sw_test_write_file(flag, "go"));
    ck_assert_msg(sw_test_proc_wait_log(&py, "hold ok 8", 0, 30000) >= 0,
                  "wss connections did not survive the reload");
    int st;
    ck_assert(sw_test_proc_wait(&py, 10000, &st));
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

START_TEST(tls_config_test)
{
    char conf[700];
    snprintf(conf, sizeof(conf), "%s/bad.conf", certs);
    char text[2048];
    snprintf(text, sizeof(text),
             "listen 127.0.0.1:1 tls;\ntls_certificate %s/a.pem;\n"
             "tls_certificate_key %s/wild.key;\n"
             "upstream u { server 127.0.0.1:2; }\nroute { upstream u; }\n",
             certs, certs);
    ck_assert(sw_test_write_file(conf, text));
    char *out = NULL;
    char *argv[] = {(char *)sw_test_env("SW_SHOCKWAVE"), "-t", "-c", conf,
                    NULL};
    ck_assert_int_eq(sw_test_run(argv, 20000, &out), 1);
    ck_assert_msg(strstr(out, "wild.key: private key does not match "
                              "certificate") != NULL,
                  "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "bad.conf:2:1)"));
    ck_assert_ptr_nonnull(strstr(out, "test failed"));
    free(out);
}
END_TEST

static Suite *
tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, tls_versions);
    tcase_add_test(tc, tls_sni_alpn_ocsp);
    tcase_add_test(tc, tls_resumption);
    tcase_add_test(tc, tls_curl);
    tcase_add_test(tc, tls_plain_http_and_stall);
    tcase_add_test(tc, tls_wss_echo);
    tcase_add_test(tc, tls_reload_certificates);
    tcase_add_test(tc, tls_config_test);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(tls_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
