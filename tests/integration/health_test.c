/*
 * health_test.c - active health checks with the real daemon
 * (tests/conf/health.conf, two workers) and the test's own backends
 * (tests/support/hcback.c), whose health answer the test switches:
 *
 *   - a backend that starts failing its health path is taken out (the
 *     shockwave_upstream_server_up gauge goes to 0, one "up -> down" log
 *     line naming the reason) with no client request sent, gets no client
 *     request while down, and is back after it heals ("down -> up");
 *   - a probe to a backend that accepts and never answers times out and
 *     marks it down;
 *   - primaries down: the backup server serves; everything down: 502 at
 *     once, no backend reached, the log says every server is down;
 *   - probes come from one place: with two workers the backend sees no
 *     more health requests than one prober can send;
 *   - type=tcp follows a port that starts listening; type=websocket needs a
 *     real 101 (and sends a close frame after it);
 *   - a reload keeps a down server down (state carried by name+address);
 *   - /status.json holds the same states, checked with python3's json;
 *   - tcase "tls" (tests/conf/health_tls.conf): probes over TLS to node's
 *     https server (tests/tls/https_server.js, the PKI of
 *     tests/tls/gen-certs.sh): verified against the right CA it stays up
 *     and answers clients, against another CA the handshake fails and the
 *     server is marked down; when the server goes away, down too.
 *
 * Waits are bounded polls; nothing asserts on durations.
 */
#include "hcback.h"
#include "net.h"
#include "proc.h"
#include "support.h"

#include <shockwave/core.h>

#include <arpa/inet.h>
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 8000 /* generous bound for any state change */

static struct sw_test_hcback a, b, bk, w; /* web primaries, backup, ws */
static struct sw_test_hcback pb;          /* upstream "passive" */
static int tcp_port;                      /* nobody listens at first */
static struct sw_test_gw gw;

static void
start(void)
{
    ck_assert(sw_test_hcback_start(&a, "a"));
    ck_assert(sw_test_hcback_start(&b, "b"));
    ck_assert(sw_test_hcback_start(&bk, "bk"));
    ck_assert(sw_test_hcback_start(&w, "w"));
    ck_assert(sw_test_hcback_start(&pb, "p"));
    tcp_port = sw_test_free_port();
    const char *kv[] = {
        "A",  sw_test_itoa(a.fake.port),  "B", sw_test_itoa(b.fake.port),
        "BK", sw_test_itoa(bk.fake.port), "T", sw_test_itoa(tcp_port),
        "W",  sw_test_itoa(w.fake.port),  "P", sw_test_itoa(pb.fake.port),
        NULL};
    ck_assert(sw_test_gw_start(&gw, "health.conf", kv));
}

static void
stop(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    sw_test_hcback_stop(&a);
    sw_test_hcback_stop(&b);
    sw_test_hcback_stop(&bk);
    sw_test_hcback_stop(&w);
    sw_test_hcback_stop(&pb);
}

/* The gauge of upstream `up`, server 127.0.0.1:port; -1 if absent. */
static long long
server_up(const char *up, int port)
{
    char name[160];
    snprintf(name, sizeof(name),
             "shockwave_upstream_server_up{upstream=\"%s\","
             "server=\"127.0.0.1:%d\"}",
             up, port);
    return sw_test_metric(gw.admin_port, name);
}

/* Poll the gauge until it reads `want`, within WAIT_MS. */
static bool
wait_up(const char *up, int port, long long want)
{
    for (int t = 0; t < WAIT_MS; t += 25) {
        if (server_up(up, port) == want) {
            return true;
        }
        sw_test_sleep_ms(25);
    }
    return false;
}

/* Log lines from `from` naming this server's change old -> new. */
static int
changes(long from, const char *up, int port, const char *change)
{
    char who[128];
    snprintf(who, sizeof(who), "upstream %s server 127.0.0.1:%d: %s", up, port,
             change);
    return sw_test_proc_log_count(&gw.proc, from, who, NULL);
}

static int
client_hits(void)
{
    return atomic_load(&a.other_hits) + atomic_load(&b.other_hits) +
           atomic_load(&bk.other_hits);
}

/* GET / through the gateway: the status, and the body in body[] */
static int
get(const char *host, char *body, size_t cap)
{
    struct sw_test_resp r;
    int rc = sw_test_http_get(gw.port, host, "/", &r);
    int status = rc == 1 ? r.status : -1;
    if (body != NULL) {
        snprintf(body, cap, "%s", rc == 1 ? r.body : "");
    }
    sw_test_resp_free(&r);
    return status;
}

START_TEST(hc_down_and_back_without_clients)
{
    start();
    /* probes reach the backend (with the configured Host) */
    for (int t = 0; t < WAIT_MS && atomic_load(&a.health_hits) < 2; t += 25) {
        sw_test_sleep_ms(25);
    }
    ck_assert_int_ge(atomic_load(&a.health_hits), 2);
    size_t n = 0;
    char *rx = sw_test_fake_rx(&a.fake, &n);
    ck_assert_msg(strstr(rx, "Host: web.internal\r\n") != NULL, "%s", rx);
    free(rx);
    ck_assert_int_eq(server_up("web", a.fake.port), 1);
    long mark = sw_test_proc_log_size(&gw.proc);

    sw_test_hcback_set(&a, SW_TEST_HC_FAIL);
    uint64_t t0 = sw_now_ms();
    ck_assert_msg(wait_up("web", a.fake.port, 0), "a never went down");
    /* for the test log only (fall 3 x interval 100 ms): no assertion */
    printf("down after %llu ms\n", (unsigned long long)(sw_now_ms() - t0));
    ck_assert_int_eq(client_hits(), 0); /* found with no client request */
    ck_assert_int_eq(changes(mark, "web", a.fake.port,
                             "up -> down (HTTP 500, 3 failures in a row)"),
                     1);
    ck_assert_int_eq(server_up("web", b.fake.port), 1);

    /* down: every request goes to b, never to a or the backup */
    char body[64];
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(get("x.test", body, sizeof(body)), 200);
        ck_assert_str_eq(body, "b");
    }
    ck_assert_int_eq(atomic_load(&a.other_hits), 0);
    ck_assert_int_eq(atomic_load(&bk.other_hits), 0);

    sw_test_hcback_set(&a, SW_TEST_HC_OK);
    t0 = sw_now_ms();
    ck_assert_msg(wait_up("web", a.fake.port, 1), "a never came back");
    printf("up after %llu ms\n", (unsigned long long)(sw_now_ms() - t0));
    ck_assert_int_eq(changes(mark, "web", a.fake.port,
                             "down -> up (HTTP 200, 2 successes in a row)"),
                     1);
    /* one change each way, logged once */
    ck_assert_int_eq(changes(mark, "web", a.fake.port, "up -> down"), 1);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(get("x.test", NULL, 0), 200);
    }
    ck_assert_int_gt(atomic_load(&a.other_hits), 0);
    stop();
}
END_TEST

START_TEST(hc_slow_probe_times_out)
{
    start();
    ck_assert(wait_up("web", a.fake.port, 1));
    long mark = sw_test_proc_log_size(&gw.proc);
    sw_test_hcback_set(&a, SW_TEST_HC_STALL);
    ck_assert_msg(wait_up("web", a.fake.port, 0), "a stalled but stayed up");
    ck_assert_int_eq(
        changes(mark, "web", a.fake.port,
                "up -> down (timeout (waiting for the answer, 300 ms)"),
        1);
    ck_assert_int_eq(client_hits(), 0);
    stop();
}
END_TEST

START_TEST(hc_answer_shapes)
{
    start();
    ck_assert(wait_up("web", a.fake.port, 1));
    long mark = sw_test_proc_log_size(&gw.proc);
    /* only the status line counts: a 12 KiB head of fields passes */
    sw_test_hcback_set(&a, SW_TEST_HC_BIGHEAD);
    int h0 = atomic_load(&a.health_hits);
    for (int t = 0; t < WAIT_MS && atomic_load(&a.health_hits) < h0 + 5;
         t += 25) {
        sw_test_sleep_ms(25);
    }
    ck_assert_int_ge(atomic_load(&a.health_hits), h0 + 5);
    ck_assert_int_eq(server_up("web", a.fake.port), 1);
    ck_assert_int_eq(changes(mark, "web", a.fake.port, "up -> down"), 0);
    /* not HTTP at all: down, saying why */
    sw_test_hcback_set(&a, SW_TEST_HC_GARBAGE);
    ck_assert(wait_up("web", a.fake.port, 0));
    ck_assert_int_eq(changes(mark, "web", a.fake.port,
                             "up -> down (bad answer: not an HTTP/1.x status "
                             "line, 3 failures in a row)"),
                     1);
    stop();
}
END_TEST

START_TEST(hc_backup_then_502)
{
    start();
    long mark = sw_test_proc_log_size(&gw.proc);
    sw_test_hcback_set(&a, SW_TEST_HC_FAIL);
    sw_test_hcback_set(&b, SW_TEST_HC_FAIL);
    ck_assert(wait_up("web", a.fake.port, 0));
    ck_assert(wait_up("web", b.fake.port, 0));
    /* every primary down: the backup serves */
    char body[64];
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(get("x.test", body, sizeof(body)), 200);
        ck_assert_str_eq(body, "bk");
    }
    ck_assert_int_eq(atomic_load(&a.other_hits), 0);
    ck_assert_int_eq(atomic_load(&b.other_hits), 0);

    /* the backup down too: 502 without trying any server */
    sw_test_hcback_set(&bk, SW_TEST_HC_FAIL);
    ck_assert(wait_up("web", bk.fake.port, 0));
    int before = client_hits();
    int accepts = atomic_load(&a.fake.accepts) + atomic_load(&b.fake.accepts) +
                  atomic_load(&bk.fake.accepts);
    int probes = atomic_load(&a.health_hits) + atomic_load(&b.health_hits) +
                 atomic_load(&bk.health_hits);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(get("x.test", NULL, 0), 502);
    }
    ck_assert_int_eq(client_hits(), before);
    /* every connection the backends accepted meanwhile was a probe */
    int accepts2 = atomic_load(&a.fake.accepts) + atomic_load(&b.fake.accepts) +
                   atomic_load(&bk.fake.accepts);
    int probes2 = atomic_load(&a.health_hits) + atomic_load(&b.health_hits) +
                  atomic_load(&bk.health_hits);
    ck_assert_int_le(accepts2 - accepts, probes2 - probes + 3);
    ck_assert_int_eq(
        sw_test_proc_log_count(&gw.proc, mark,
                               "502 Bad Gateway: upstream web: every server "
                               "is down (health checks)",
                               NULL),
        3);

    /* the backup heals first: it serves again, primaries still down */
    sw_test_hcback_set(&bk, SW_TEST_HC_OK);
    ck_assert(wait_up("web", bk.fake.port, 1));
    ck_assert_int_eq(get("x.test", body, sizeof(body)), 200);
    ck_assert_str_eq(body, "bk");
    /* a primary heals: the backup gets no more requests */
    sw_test_hcback_set(&b, SW_TEST_HC_OK);
    ck_assert(wait_up("web", b.fake.port, 1));
    int bk_hits = atomic_load(&bk.other_hits);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(get("x.test", body, sizeof(body)), 200);
        ck_assert_str_eq(body, "b");
    }
    ck_assert_int_eq(atomic_load(&bk.other_hits), bk_hits);
    stop();
}
END_TEST

START_TEST(hc_one_prober_for_all_workers)
{
    start();
    ck_assert(wait_up("web", b.fake.port, 1));
    /* One prober sends at most one probe per interval (100 ms), plus the
     * first one at start; a prober per worker (two workers) would send
     * twice that. Counted over at least 1.5 s of wall time. */
    uint64_t t0 = sw_now_ms();
    int h0 = atomic_load(&b.health_hits);
    sw_test_sleep_ms(1500);
    int h1 = atomic_load(&b.health_hits);
    uint64_t elapsed = sw_now_ms() - t0;
    printf("%d probes of one server in %llu ms\n", h1 - h0,
           (unsigned long long)elapsed);
    ck_assert_int_gt(h1 - h0, 0);
    ck_assert_msg((uint64_t)(h1 - h0) <= elapsed / 100 + 2,
                  "%d probes in %llu ms: more than one prober", h1 - h0,
                  (unsigned long long)elapsed);
    stop();
}
END_TEST

START_TEST(hc_passive_failures_count_toward_fall)
{
    start();
    /* its only probe (at start) passed; clients now get resets */
    for (int t = 0; t < WAIT_MS && atomic_load(&pb.health_hits) < 1; t += 25) {
        sw_test_sleep_ms(25);
    }
    ck_assert_int_eq(atomic_load(&pb.health_hits), 1);
    atomic_store(&pb.reset_clients, true);
    long mark = sw_test_proc_log_size(&gw.proc);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(get("passive.test", NULL, 0), 502);
    }
    sw_test_sleep_ms(300); /* the checker looks every 100 ms */
    ck_assert_int_eq(server_up("passive", pb.fake.port), 1);
    /* the third failure in a row makes fall (3) */
    ck_assert_int_eq(get("passive.test", NULL, 0), 502);
    ck_assert_msg(wait_up("passive", pb.fake.port, 0),
                  "3 failed client requests did not make fall");
    /* the gauge also reads 0 for a worker's passive mark: the checker's
     * own change (every 100 ms) is what the log says */
    ck_assert(sw_test_proc_wait_log(&gw.proc, "client requests failing", mark,
                                    WAIT_MS) > 0);
    ck_assert_int_eq(changes(mark, "passive", pb.fake.port,
                             "up -> down (client requests failing, 3 "
                             "failures in a row)"),
                     1);
    /* down by the checker now: 502 at once, the backend not reached */
    int hits = atomic_load(&pb.other_hits);
    ck_assert_int_eq(get("passive.test", NULL, 0), 502);
    ck_assert_int_eq(atomic_load(&pb.other_hits), hits);
    /* only probes bring it back: a reload probes at once (rise 1) */
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert_msg(wait_up("passive", pb.fake.port, 1), "no probe after reload");
    ck_assert_int_eq(changes(mark, "passive", pb.fake.port,
                             "down -> up (HTTP 200, 1 success in a row)"),
                     1);
    stop();
}
END_TEST

/* A listener on 127.0.0.1:port that never accepts (the kernel completes
 * connects from its backlog). */
static int
listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 64), 0);
    return fd;
}

START_TEST(hc_tcp_and_websocket)
{
    start();
    /* tcp: nobody listens, so down; a listener brings it up */
    ck_assert(wait_up("tcp", tcp_port, 0));
    long mark = sw_test_proc_log_size(&gw.proc);
    int lfd = listen_on(tcp_port);
    ck_assert_msg(wait_up("tcp", tcp_port, 1), "tcp check never passed");
    ck_assert_int_eq(changes(mark, "tcp", tcp_port,
                             "down -> up (tcp: connected, 1 success in a row)"),
                     1);
    close(lfd);
    ck_assert_msg(wait_up("tcp", tcp_port, 0), "tcp check never failed");

    /* websocket: a real 101 keeps it up, and the probe closes cleanly */
    ck_assert(wait_up("ws", w.fake.port, 1));
    ck_assert_int_gt(atomic_load(&w.ws_hits), 0);
    ck_assert_int_eq(atomic_load(&w.health_hits), 0);
    size_t n = 0;
    char *rx = sw_test_fake_rx(&w.fake, &n);
    ck_assert_msg(strstr(rx, "GET /healthz/ws HTTP/1.1\r\n") != NULL, "%s", rx);
    ck_assert(strstr(rx, "Sec-WebSocket-Version: 13\r\n") != NULL);
    ck_assert_msg(memchr(rx, 0x88, n) != NULL, "no close frame after 101");
    free(rx);
    mark = sw_test_proc_log_size(&gw.proc);
    sw_test_hcback_set(&w, SW_TEST_HC_FAIL);
    ck_assert_msg(wait_up("ws", w.fake.port, 0), "ws check ignored a 503");
    ck_assert_int_eq(
        changes(mark, "ws", w.fake.port, "up -> down (websocket: HTTP 503"), 1);
    stop();
}
END_TEST

START_TEST(hc_reload_keeps_state)
{
    start();
    sw_test_hcback_set(&a, SW_TEST_HC_FAIL);
    ck_assert(wait_up("web", a.fake.port, 0));
    long mark = sw_test_proc_log_size(&gw.proc);
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert(sw_test_proc_wait_log(&gw.proc, "configuration reloaded", mark,
                                    5000) >= 0);
    /* still down at once, and no second "up -> down" for it */
    ck_assert_int_eq(server_up("web", a.fake.port), 0);
    sw_test_sleep_ms(500);
    ck_assert_int_eq(server_up("web", a.fake.port), 0);
    ck_assert_int_eq(changes(mark, "web", a.fake.port, "up -> down"), 0);
    char body[64];
    ck_assert_int_eq(get("x.test", body, sizeof(body)), 200);
    ck_assert_str_eq(body, "b");
    stop();
}
END_TEST

/* /status.json checked by python3's json module: the server states and
 * the last check result as the checker sees them. */
START_TEST(hc_status_json)
{
    start();
    sw_test_hcback_set(&a, SW_TEST_HC_FAIL);
    ck_assert(wait_up("web", a.fake.port, 0));
    char path[600];
    snprintf(path, sizeof(path), "%s/status.json", sw_test_tmpdir());
    struct sw_test_resp r;
    ck_assert_int_eq(
        sw_test_http_get(gw.admin_port, "admin", "/status.json", &r), 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(sw_test_resp_header(&r, "Content-Type"),
                     "application/json");
    ck_assert(sw_test_write_file(path, r.body));
    sw_test_resp_free(&r);
    char script[1400];
    snprintf(script, sizeof(script),
             "import json,sys\n"
             "s=json.load(open(sys.argv[1]))\n"
             "u={x['name']:x for x in s['upstreams']}\n"
             "web={v['address']:v for v in u['web']['servers']}\n"
             "a=web['127.0.0.1:%d']; b=web['127.0.0.1:%d']\n"
             "bk=web['127.0.0.1:%d']\n"
             "assert a['state']=='down' and a['checked'], a\n"
             "assert a['last_check']=='HTTP 500', a\n"
             "assert a['checks_failed']>=3 and a['last_change_ms']>0, a\n"
             "assert b['state']=='up' and not b['backup'], b\n"
             "assert bk['backup'] and bk['state']=='up', bk\n"
             "hc=u['web']['health_check']\n"
             "assert hc['type']=='http' and hc['fall']==3, hc\n"
             "assert hc['interval_ms']==100 and hc['expect']=='200-399', hc\n"
             "assert u['ws']['health_check']['type']=='websocket'\n"
             "assert u['web']['servers_up']==2\n"
             "assert s['workers']==2 and s['config']['generation']==1\n"
             "assert s['config']['last_reload_result']=='none'\n"
             "assert [r['upstream'] for r in s['routes']]=="
             "['passive','tcp','ws','web']\n"
             "assert s['routes'][1]['hosts']==['tcp.test']\n"
             "for k in ('connections_active','ws_sessions_active',"
             "'requests_total','ws_messages_total'):\n"
             "    assert isinstance(s['totals'][k],int), k\n"
             "assert 'http_5xx' in s['errors']\n"
             "print('json ok')\n",
             a.fake.port, b.fake.port, bk.fake.port);
    char *argv[] = {"/usr/bin/python3", "-c", script, path, NULL};
    char *out = NULL;
    int rc = sw_test_run(argv, 20000, &out);
    ck_assert_msg(rc == 0 && strstr(out, "json ok") != NULL, "python: %s", out);
    free(out);
    stop();
}
END_TEST

/* ---- over TLS ---------------------------------------------------------- */

static struct sw_test_proc https; /* tests/tls/https_server.js */

static void
run_sh(const char *cmd)
{
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    char *out = NULL;
    int rc = sw_test_run(argv, 60000, &out);
    ck_assert_msg(rc == 0, "%s: %s", cmd, out);
    free(out);
}

START_TEST(hc_over_tls)
{
    const char *src = sw_test_env("SW_SOURCE_ROOT");
    char certs[600];
    snprintf(certs, sizeof(certs), "%s/health-certs", sw_test_tmpdir());
    char cmd[2000];
    snprintf(cmd, sizeof(cmd), "sh '%s/tests/tls/gen-certs.sh' '%s'", src,
             certs);
    run_sh(cmd);
    char script[700], cert[700], key[700];
    snprintf(script, sizeof(script), "%s/tests/tls/https_server.js", src);
    snprintf(cert, sizeof(cert), "%s/a.pem", certs);
    snprintf(key, sizeof(key), "%s/a.key", certs);
    char node[512];
    ck_assert_msg(sw_test_which("node", node, sizeof(node)),
                  "node is not on PATH");
    char *argv[] = {node, script, cert, key, "0", NULL};
    ck_assert(sw_test_proc_spawn(&https, "https", argv));
    const char *mark = "listening on 127.0.0.1:";
    long at = sw_test_proc_wait_log(&https, mark, 0, 20000);
    ck_assert(at >= 0);
    char *log = sw_test_proc_log(&https);
    int port = atoi(log + at); /* at: just past the needle */
    free(log);
    ck_assert_int_gt(port, 0);

    const char *kv[] = {"S", sw_test_itoa(port), "CERTS", certs, NULL};
    ck_assert(sw_test_gw_start(&gw, "health_tls.conf", kv));
    ck_assert_msg(wait_up("bad", port, 0), "wrong CA, still up");
    if (changes(0, "bad", port, "up -> down (tls: handshake failed: ") != 1) {
        sw_test_proc_dump(&gw.proc);
        ck_abort_msg("no single \"up -> down\" for the wrong CA");
    }
    /* same server, right CA: up, with no change logged, and serving */
    ck_assert_int_eq(server_up("good", port), 1);
    ck_assert_int_eq(changes(0, "good", port, "up -> down"), 0);
    ck_assert_int_eq(get("x.test", NULL, 0), 200);
    /* the server goes away: down */
    sw_test_proc_stop(&https, 5000);
    ck_assert_msg(wait_up("good", port, 0), "server gone, still up");
    int st = sw_test_gw_stop(&gw);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certs);
    run_sh(cmd);
}
END_TEST

static Suite *
health_suite(void)
{
    Suite *s = suite_create("health");
    TCase *tc = tcase_create("health");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, hc_down_and_back_without_clients);
    tcase_add_test(tc, hc_slow_probe_times_out);
    tcase_add_test(tc, hc_answer_shapes);
    tcase_add_test(tc, hc_backup_then_502);
    tcase_add_test(tc, hc_one_prober_for_all_workers);
    tcase_add_test(tc, hc_passive_failures_count_toward_fall);
    tcase_add_test(tc, hc_tcp_and_websocket);
    tcase_add_test(tc, hc_reload_keeps_state);
    tcase_add_test(tc, hc_status_json);
    suite_add_tcase(s, tc);
    TCase *tls = tcase_create("tls");
    tcase_set_timeout(tls, 120);
    tcase_add_test(tls, hc_over_tls);
    suite_add_tcase(s, tls);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(health_suite());
}
