/*
 * tls_test.c - TLS termination with the real daemon (tests/conf/tls.conf)
 * and third-party clients: `openssl s_client` (TLS 1.2 and 1.3 accepted,
 * 1.0 and 1.1 refused, SNI picks the certificate, ALPN http/1.1, OCSP
 * stapled, session resumption "Reused"), `curl --cacert` GET and POST with
 * X-Forwarded-Proto: https at the `swload echo` backend, a plain HTTP
 * request on the TLS port (400, logged), a stalled handshake closed after
 * tls_handshake_timeout, wss:// echo with python3-websockets and with npm
 * `ws` (tests/js/wss_client.js; 16 MiB messages, SHA-256 checked, the test
 * CA trusted, a wrong CA or name refused by the client), a certificate
 * reload under live wss connections of both clients (none dropped, new
 * handshakes see the new certificate's serial) and a bad certificate on
 * reload (old one kept), `shockwave -t` reporting a key that does not
 * match, and a real browser: headless Chromium loading tests/tls/page.html,
 * which exchanges a text and a binary message over wss:// (driven by
 * tests/tls/browser.js over the DevTools pipe; skipped, with the reason
 * printed, only when no chromium is installed). tls_wss_engine: the wss
 * relay's TLS end is on the engine in use (SW_TEST_IO_ENGINE; on io_uring
 * the shockwave_io_uring_* completions count it), many small messages, a
 * peer's close_notify (answered with ours) and reset
 * (tests/tls/wss_ends.py), then 1 and 16 MiB echoes.
 *
 * Second tcase, "upstream" (tests/conf/tls_upstream.conf): TLS toward the
 * upstream, with tests/tls/https_server.js (node's https) as the server:
 * 200 when the chain leads to tls_ca and the name (or IP address) matches,
 * with SNI and ALPN seen by the server; 502 and a "certificate verify
 * failed" log line for a wrong CA, a wrong name and a wrong IP address;
 * 200 with tls_verify off; TLS on both legs through the TLS listener;
 * a WebSocket to a wss:// upstream (the same server echoes), its TLS end
 * on the engine in use, small and 16 MiB messages.
 *
 * The PKI comes from tests/tls/gen-certs.sh, made once per test process in
 * its temporary folder.
 */
#include "net.h"
#include "support.h"
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

static struct sw_test_proc be;    /* swload echo "b1" */
static struct sw_test_gw gw;      /* the daemon */
static int tls_port;              /* @TLSPORT@ */
static char certs[512];           /* @CERTS@ */
static char port_s[16];           /* tls_port as text */
static struct sw_test_proc hs[2]; /* https_server.js with a.pem, ip.pem */
static char node_bin[512];        /* node found on PATH */

static void
sh(const char *fmt, const char *a, const char *b)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), fmt, a, b);
    ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

/* First executable `name` on PATH into out; false when there is none. */
static bool
find_on_path(const char *name, char *out, size_t outlen)
{
    const char *path = getenv("PATH");
    if (path == NULL) {
        return false;
    }
    char *copy = strdup(path);
    bool found = false;
    for (char *d = strtok(copy, ":"); d != NULL && !found;
         d = strtok(NULL, ":")) {
        snprintf(out, outlen, "%s/%s", d, name);
        found = access(out, X_OK) == 0;
    }
    free(copy);
    return found;
}

/* node and tests/js/node_modules/ws, needed by the npm `ws` client. */
static void
need_node(void)
{
    ck_assert_msg(find_on_path("node", node_bin, sizeof(node_bin)),
                  "node is not on PATH (Node 20 is required)");
    char mod[600];
    struct stat sb;
    snprintf(mod, sizeof(mod), "%s/tests/js/node_modules/ws/package.json",
             sw_test_env("SW_SOURCE_ROOT"));
    ck_assert_msg(stat(mod, &sb) == 0,
                  "npm ws is not installed in tests/js: run scripts/deps.sh");
}

static void
make_certs(void)
{
    snprintf(certs, sizeof(certs), "%s/pki", sw_test_tmpdir());
    struct stat st;
    if (stat(certs, &st) != 0) {
        char gen[600];
        snprintf(gen, sizeof(gen), "%s/tests/tls/gen-certs.sh",
                 sw_test_env("SW_SOURCE_ROOT"));
        sh("sh '%s' '%s'", gen, certs);
    }
}

static void
setup(void)
{
    make_certs();
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

/* s_client with an HTTP request on stdin; extra options in `opts`. */
static int
s_client(char **out, const char *opts)
{
    return sw_test_shell(
        out,
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
    int rc =
        sw_test_shell(&out,
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
    rc = sw_test_shell(
        &out,
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

/* A client that tries to renegotiate (TLS 1.2; TLS 1.3 has none) gets the
 * no_renegotiation alert, its connection is closed and logged once, and
 * other clients are served as before. */
START_TEST(tls_renegotiation_refused)
{
    long mark = sw_test_proc_log_size(&gw.proc);
    char *out = NULL;
    /* s_client renegotiates when a line is just "R" */
    sw_test_shell(
        &out,
        "(printf 'R\\n'; sleep 1) | openssl s_client -connect "
        "127.0.0.1:%d -tls1_2 -servername a.test -CAfile '%s/ca.pem' 2>&1",
        tls_port, certs);
    ck_assert_msg(strstr(out, "RENEGOTIATING") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "no renegotiation") != NULL,
                  "renegotiation was not refused:\n%s", out);
    free(out);
    ck_assert(sw_test_proc_wait_log(&gw.proc, "attempted renegotiation", mark,
                                    5000) >= 0);
    ck_assert_int_eq(
        sw_test_proc_log_count(&gw.proc, mark, "attempted renegotiation", NULL),
        1);
    ck_assert_int_eq(s_client(&out, "-servername a.test -tls1_2"), 0);
    ck_assert_ptr_nonnull(strstr(out, "HTTP/1.1 200"));
    free(out);
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

/* Python's websockets client through the TLS listener: messages up to
 * 16 MiB echo intact (SHA-256 checked). */
static void
python_wss_echo(void)
{
    char *out = NULL;
    int rc = sw_test_shell(&out,
                           "/usr/bin/python3 '%s/tests/tls/wss_client.py' "
                           "wss://127.0.0.1:%d/ws '%s/ca.pem' a.test echo 2>&1",
                           sw_test_env("SW_SOURCE_ROOT"), tls_port, certs);
    ck_assert_msg(rc == 0 && strstr(out, "echo ok") != NULL, "%s", out);
    free(out);
}

START_TEST(tls_wss_echo)
{
    python_wss_echo();
}
END_TEST

/* node tests/js/wss_client.js echo ... with the given CA and name. */
static int
node_wss_echo(char **out, const char *ca, const char *name)
{
    return sw_test_shell(out,
                         "'%s' '%s/tests/js/wss_client.js' echo "
                         "wss://127.0.0.1:%d/ws '%s/%s' %s 2>&1",
                         node_bin, sw_test_env("SW_SOURCE_ROOT"), tls_port,
                         certs, ca, name);
}

START_TEST(tls_wss_echo_node)
{
    need_node();
    char *out = NULL;
    int rc = node_wss_echo(&out, "ca.pem", "a.test");
    ck_assert_msg(rc == 0 && strstr(out, "echo ok 4") != NULL, "%s", out);
    /* Each check names its echo: the 16 MiB ones too. */
    ck_assert_msg(strstr(out, "ok binary-16mib sha256 ") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "ok text-16mib sha256 ") != NULL, "%s", out);
    free(out);
    /* The client really verifies: another CA, or a name the certificate
     * does not hold, and it refuses the gateway. */
    rc = node_wss_echo(&out, "other-ca.pem", "a.test");
    ck_assert_msg(rc == 1 && strstr(out, "FAIL echo") != NULL, "%s", out);
    free(out);
    rc = node_wss_echo(&out, "ca.pem", "nobody.test");
    ck_assert_msg(rc == 1 && strstr(out, "altnames") != NULL, "%s", out);
    free(out);
    /* SNI b.test picks b.pem (via live.pem), which the client accepts. */
    rc = node_wss_echo(&out, "ca.pem", "b.test");
    ck_assert_msg(rc == 0 && strstr(out, "echo ok 4") != NULL, "%s", out);
    free(out);
}
END_TEST

/* Ring receive and send completions so far (0 on epoll: there is none). */
static void
ring_counts(long long *rx, long long *tx)
{
    char *m = sw_test_metrics_fetch(gw.admin_port);
    *rx = sw_test_metric_in(m, "shockwave_io_uring_receive_completions_total");
    *tx = sw_test_metric_in(m, "shockwave_io_uring_send_completions_total");
    free(m);
    ck_assert_msg(*rx >= 0 && *tx >= 0, "no shockwave_io_uring_* metrics");
}

/* tests/tls/wss_ends.py MODE: one echo, then the end MODE names. */
static void
wss_end(const char *mode, const char *want)
{
    char *out = NULL;
    int rc = sw_test_shell(
        &out,
        "/usr/bin/python3 '%s/tests/tls/wss_ends.py' 127.0.0.1 %d "
        "'%s/ca.pem' a.test %s 2>&1",
        sw_test_env("SW_SOURCE_ROOT"), tls_port, certs, mode);
    ck_assert_msg(rc == 0 && strstr(out, want) != NULL, "%s: %s", mode, out);
    free(out);
}

/* No client connection left open (the relay and its ends are gone). */
static void
wait_no_clients(const char *after)
{
    long long n = -1;
    for (int i = 0; i < 100 && n != 0; i++) {
        if (i > 0) {
            usleep(50 * 1000);
        }
        n = sw_test_metric(gw.admin_port,
                           "shockwave_client_connections_active");
    }
    ck_assert_msg(n == 0, "after %s: %lld client connections open", after, n);
}

/* One second of small echoes from node's wss_client.js bench through
 * `url`: on io_uring each echo, one at a time, is a receive and a send at
 * both ends of the relay, so the ring counts at least two of each per
 * message (one, were `what` left on epoll); on epoll the ring counts
 * nothing. */
static void
bench_on_engine(const char *url, const char *what)
{
    bool ring = sw_test_on_io_uring();
    long long rx0, tx0, rx, tx;
    ring_counts(&rx0, &tx0);
    char *out = NULL;
    int rc = sw_test_shell(&out,
                           "'%s' '%s/tests/js/wss_client.js' bench "
                           "%s '%s/ca.pem' a.test 1 64 2>&1",
                           node_bin, sw_test_env("SW_SOURCE_ROOT"), url, certs);
    const char *m = strstr(out, "\"messages\":");
    ck_assert_msg(rc == 0 && m != NULL, "%s", out);
    long long msgs = atoll(m + strlen("\"messages\":"));
    free(out);
    ck_assert_msg(msgs >= 100, "only %lld small echoes in 1 s", msgs);
    /* the bench's close handshake came after its last echo: every
     * completion of the echoes is counted once the close's are */
    for (int i = 0; i < 40; i++) {
        ring_counts(&rx, &tx);
        if (!ring || (rx - rx0 >= 2 * msgs && tx - tx0 >= 2 * msgs)) {
            break;
        }
        usleep(50 * 1000);
    }
    if (ring) {
        ck_assert_msg(rx - rx0 >= 2 * msgs && tx - tx0 >= 2 * msgs,
                      "%lld echoes: %lld receive and %lld send completions "
                      "(%s is not on the ring)",
                      msgs, rx - rx0, tx - tx0, what);
    } else {
        ck_assert_msg(rx == 0 && tx == 0, "ring counts on epoll: %lld %lld", rx,
                      tx);
    }
}

/*
 * The TLS end of a wss relay is on the engine in use. On io_uring its
 * records go through the ring: each small echo, one at a time, is a receive
 * and a send at the TLS end and at the plain upstream end, so the ring
 * counts at least two of each per message (one, were the TLS end left on
 * epoll); on epoll there is no ring. Then the ways a peer ends it: a TLS
 * close_notify without a WebSocket close is answered with the gateway's
 * own close_notify (queued on the ring before the socket closes) and a FIN;
 * a reset closes the relay; no connection stays open, and 1 MiB and 16 MiB
 * messages still echo (SHA-256 checked).
 */
START_TEST(tls_wss_engine)
{
    need_node();
    char url[64];
    snprintf(url, sizeof(url), "wss://127.0.0.1:%d/ws", tls_port);
    bench_on_engine(url, "the TLS end");
    wait_no_clients("the bench");
    wss_end("closenotify", "close_notify ok");
    wait_no_clients("a close_notify");
    wss_end("reset", "reset sent");
    wait_no_clients("a reset");
    python_wss_echo();
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
    sw_test_shell(&cmd_out, "openssl x509 -noout -serial -in '%s'", tmp);
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
    /* And five npm `ws` connections (tests/js/wss_client.js hold). */
    need_node();
    struct sw_test_proc js;
    char jscript[600];
    snprintf(jscript, sizeof(jscript), "%s/tests/js/wss_client.js",
             sw_test_env("SW_SOURCE_ROOT"));
    char *jargv[] = {node_bin, jscript, "hold", uri, ca,
                     "b.test", "5",     flag,   NULL};
    ck_assert(sw_test_proc_spawn(&js, "wss-hold-node", jargv));
    ck_assert_msg(sw_test_proc_wait_log(&js, "open 5", 0, 20000) >= 0,
                  "node wss connections did not open");
    /* Quiet now: all 13 are parked (ws_park_after 500ms) with their TLS
     * state, and must wake to echo after the reloads. */
    long long parked = 0;
    for (int i = 0; i < 250 && parked != 13; i++) {
        sw_test_sleep_ms(20);
        parked = sw_test_metric(gw.admin_port, "shockwave_ws_sessions_parked");
    }
    ck_assert_msg(parked == 13, "wss sessions parked: %lld of 13", parked);

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
    /* ... and it is exactly b2's serial. */
    char *b2 = NULL;
    ck_assert_int_eq(
        sw_test_shell(&b2, "openssl x509 -noout -serial -in '%s/b2.leaf'",
                      certs),
        0);
    ck_assert_str_eq(after, b2);
    free(b2);
    free(after);
    free(before);

    /* Every old connection still echoes. */
    ck_assert(sw_test_write_file(flag, "go"));
    ck_assert_msg(sw_test_proc_wait_log(&py, "hold ok 8", 0, 30000) >= 0,
                  "wss connections did not survive the reload");
    ck_assert_msg(sw_test_proc_wait_log(&js, "hold ok 5", 0, 30000) >= 0,
                  "node wss connections did not survive the reload");
    int st;
    ck_assert(sw_test_proc_wait(&py, 10000, &st));
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert(sw_test_proc_wait(&js, 10000, &st));
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

/*
 * Headless Chromium opens tests/tls/page.html (file://) with the gateway's
 * wss:// URL in the query string; the page's verdict is read back over the
 * DevTools pipe by tests/tls/browser.js, which also kills every browser
 * process it started and reports how many were left ("leftover 0").
 */
START_TEST(tls_browser_wss)
{
    char chromium[512];
    if (!find_on_path("chromium", chromium, sizeof(chromium))) {
        printf("SKIP tls_browser_wss: no chromium on PATH (Debian package "
               "chromium; scripts/deps.sh installs it)\n");
        fflush(stdout);
        return;
    }
    need_node();
    char work[600];
    snprintf(work, sizeof(work), "%s/chromium", sw_test_tmpdir());
    const char *src = sw_test_env("SW_SOURCE_ROOT");
    char *out = NULL;
    long mark = sw_test_proc_log_size(&gw.proc);
    int rc = sw_test_shell(
        &out,
        "'%s' '%s/tests/tls/browser.js' '%s' "
        "'file://%s/tests/tls/page.html?url=wss://127.0.0.1:%d/ws' "
        "'%s' 30000 2>&1",
        node_bin, src, chromium, src, tls_port, work);
    ck_assert_msg(strstr(out, "result PASS\n") != NULL, "browser:\n%s", out);
    ck_assert_msg(strstr(out, "leftover 0\n") != NULL, "browser:\n%s", out);
    ck_assert_msg(rc == 0, "browser.js exit %d:\n%s", rc, out);
    free(out);
    /* The browser's handshake was a real one on this gateway: no handshake
     * failure was logged meanwhile. */
    ck_assert_int_eq(
        sw_test_proc_log_count(&gw.proc, mark, "handshake failed", NULL), 0);
}
END_TEST

/* Start tests/tls/https_server.js with NAME.pem; its port. */
static int
https_start(struct sw_test_proc *p, const char *name)
{
    char script[600];
    snprintf(script, sizeof(script), "%s/tests/tls/https_server.js",
             sw_test_env("SW_SOURCE_ROOT"));
    char cert[600];
    char key[600];
    snprintf(cert, sizeof(cert), "%s/%s.pem", certs, name);
    snprintf(key, sizeof(key), "%s/%s.key", certs, name);
    char *argv[] = {node_bin, script, cert, key, "0", NULL};
    ck_assert(sw_test_proc_spawn(p, "https", argv));
    long at = sw_test_proc_wait_log(p, "listening on 127.0.0.1:", 0, 20000);
    if (at < 0) {
        sw_test_proc_dump(p);
    }
    ck_assert(at >= 0);
    char *log = sw_test_proc_log(p);
    int port = atoi(log + at);
    free(log);
    ck_assert_int_gt(port, 0);
    return port;
}

static void
setup_upstream(void)
{
    make_certs();
    need_node();
    int h1 = https_start(&hs[0], "a");
    int h2 = https_start(&hs[1], "ip");
    tls_port = sw_test_free_port();
    snprintf(port_s, sizeof(port_s), "%d", tls_port);
    const char *kv[] = {"H1",      sw_test_itoa(h1), "H2",    sw_test_itoa(h2),
                        "TLSPORT", port_s,           "CERTS", certs,
                        NULL};
    ck_assert(sw_test_gw_start(&gw, "tls_upstream.conf", kv));
}

static void
teardown_upstream(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    sw_test_proc_stop(&hs[0], 2000);
    sw_test_proc_stop(&hs[1], 2000);
}

/* GET path on the plain listener; the status, and *body (malloc'd) if not
 * NULL. */
static int
get_status(const char *path, char **body)
{
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.port, "a.test", path, &r), 1);
    int status = r.status;
    if (body != NULL) {
        *body = strdup(r.body != NULL ? r.body : "");
    }
    sw_test_resp_free(&r);
    return status;
}

/* The value of an X-Upstream-* line in an https_server.js body must be
 * `want`. */
static void
assert_line(const char *body, const char *name, const char *want)
{
    char *v = sw_test_echo_header(body, name);
    ck_assert_msg(v != NULL && strcmp(v, want) == 0, "%s: want %s in\n%s", name,
                  want, body);
    free(v);
}

START_TEST(tls_upstream_verified)
{
    char *body = NULL;
    ck_assert_int_eq(get_status("/good", &body), 200);
    ck_assert_msg(strncmp(body, "GET /good HTTP/1.1\n", 19) == 0, "%s", body);
    assert_line(body, "X-Upstream-Tls", "yes");
    assert_line(body, "X-Upstream-Sni", "www.a.test");
    assert_line(body, "X-Upstream-Alpn", "http/1.1");
    assert_line(body, "X-Forwarded-Proto", "http");
    free(body);
    /* By IP address: no SNI (RFC 6066 3), the IP SAN is what is checked. */
    ck_assert_int_eq(get_status("/by-ip", &body), 200);
    assert_line(body, "X-Upstream-Tls", "yes");
    assert_line(body, "X-Upstream-Sni", "-");
    free(body);
    /* TLS on both legs: curl to the TLS listener, TLS to the upstream. */
    char *out = NULL;
    int rc =
        sw_test_shell(&out,
                      "curl --silent --show-error --max-time 20 --noproxy '*' "
                      "--cacert '%s/ca.pem' --resolve a.test:%d:127.0.0.1 "
                      "https://a.test:%d/good/both",
                      certs, tls_port, tls_port);
    ck_assert_msg(rc == 0, "%s", out);
    assert_line(out, "X-Forwarded-Proto", "https");
    assert_line(out, "X-Upstream-Tls", "yes");
    assert_line(out, "X-Upstream-Sni", "www.a.test");
    free(out);
}
END_TEST

START_TEST(tls_upstream_verify_fails)
{
    static const struct {
        const char *path;   /* route */
        const char *reason; /* in the gateway's log */
    } v[] = {
        {"/wrong-ca", "certificate verify failed: self-signed certificate "
                      "in certificate chain"},
        {"/wrong-name", "certificate verify failed: hostname mismatch"},
        {"/ip-wrong", "certificate verify failed: IP address mismatch"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        long mark = sw_test_proc_log_size(&gw.proc);
        long hmark = sw_test_proc_log_size(&hs[0]);
        ck_assert_int_eq(get_status(v[i].path, NULL), 502);
        ck_assert_msg(
            sw_test_proc_wait_log(&gw.proc, v[i].reason, mark, 5000) >= 0,
            "%s: no \"%s\" in the log", v[i].path, v[i].reason);
        ck_assert_int_eq(sw_test_proc_log_count(&gw.proc, mark, v[i].reason,
                                                "server 127.0.0.1:", NULL),
                         1);
        /* The server saw the gateway give up on its certificate. */
        ck_assert(sw_test_proc_wait_log(&hs[0], "tls client error", hmark,
                                        5000) >= 0);
    }
    /* Verification off takes the same server with the unknown CA. */
    char *body = NULL;
    ck_assert_int_eq(get_status("/unverified", &body), 200);
    assert_line(body, "X-Upstream-Tls", "yes");
    assert_line(body, "X-Upstream-Sni", "a.test");
    free(body);
    /* The failures marked down only their own upstream's server. */
    ck_assert_int_eq(get_status("/good", NULL), 200);
}
END_TEST

/* A WebSocket relayed to a wss:// upstream (https_server.js echoes): the
 * TLS upstream end is on the engine in use, counted as tls_wss_engine
 * counts the TLS client end (here the client end is plain, on the ring as
 * well on io_uring), and small and 16 MiB messages echo intact. */
START_TEST(tls_upstream_wss_engine)
{
    need_node();
    char url[64];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/wss", gw.port);
    bench_on_engine(url, "the TLS upstream end");
    char *out = NULL;
    int rc;
    rc = sw_test_shell(&out,
                       "'%s' '%s/tests/js/wss_client.js' echo "
                       "ws://127.0.0.1:%d/wss '%s/ca.pem' a.test 2>&1",
                       node_bin, sw_test_env("SW_SOURCE_ROOT"), gw.port, certs);
    ck_assert_msg(rc == 0 && strstr(out, "echo ok 4") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "ok binary-16mib sha256 ") != NULL, "%s", out);
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
    tcase_add_test(tc, tls_renegotiation_refused);
    tcase_add_test(tc, tls_wss_echo);
    tcase_add_test(tc, tls_wss_echo_node);
    tcase_add_test(tc, tls_wss_engine);
    tcase_add_test(tc, tls_reload_certificates);
    tcase_add_test(tc, tls_config_test);
    tcase_add_test(tc, tls_browser_wss);
    suite_add_tcase(s, tc);
    TCase *up = tcase_create("upstream");
    tcase_add_checked_fixture(up, setup_upstream, teardown_upstream);
    tcase_set_timeout(up, 120);
    tcase_add_test(up, tls_upstream_verified);
    tcase_add_test(up, tls_upstream_verify_fails);
    tcase_add_test(up, tls_upstream_wss_engine);
    suite_add_tcase(s, up);
    return s;
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return sw_test_run_suite(tls_suite());
}
