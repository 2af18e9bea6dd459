/*
 * plugin_ratelimit_test.c - the ratelimit plugin (plugins/ratelimit) in the
 * real daemon, in front of `swload echo` (HTTP and WebSocket echo):
 *
 *   our C client, npm ws (tests/js/ratelimit_ws.js)
 *       --> shockwave [plugin ratelimit] --> swload echo
 *
 * tests/conf/plugin_ratelimit.conf (one worker) has a route per case;
 * plugin_ratelimit_workers.conf has two workers sharing one limit.
 *
 * Buckets refill while a test runs, so every bound on what is served is
 * derived from the time the test measured around its requests: at most
 * burst + rate * elapsed, and at least the burst. No assertion depends on
 * how fast the machine is.
 */
#include "net.h"
#include "proc.h"
#include "support.h"
#include "wsclient.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define METRIC(name) "shockwave_plugin_ratelimit_" name
#define MINUTE 60000ull

static struct sw_test_proc be; /* swload echo */
static struct sw_test_gw gw;   /* the daemon */
static int be_port;            /* its port */
static char plugin[512];       /* the built ratelimit.so */
static int pp_port;            /* @PPORT@: a proxy_protocol listener */

static void
start(const char *conf)
{
    sw_test_plugin_so("ratelimit", plugin, sizeof(plugin));
    ck_assert(sw_test_backend_start(&be, "b1", &be_port));
    pp_port = sw_test_free_port();
    char pp[16];
    snprintf(pp, sizeof(pp), "%d", pp_port);
    const char *kv[] = {"B1",    sw_test_itoa(be_port),   "PLUGIN", plugin,
                        "PROBE", sw_test_env("SW_PROBE"), "PPORT",  pp,
                        NULL};
    ck_assert(sw_test_gw_start(&gw, conf, kv));
}

static void
setup_one(void)
{
    start("plugin_ratelimit.conf");
}

static void
setup_two(void)
{
    start("plugin_ratelimit_workers.conf");
}

static void
teardown(void)
{
    sw_test_gw_teardown(&gw, &be);
}

/* Tokens a bucket of `count` per `period_ms` may have added over
 * `elapsed_ms`, rounded up. */
static long
refilled(uint64_t count, uint64_t period_ms, uint64_t elapsed_ms)
{
    return (long)((elapsed_ms * count + period_ms - 1) / period_ms);
}

/* Assert that `got` passed a bucket of `burst` refilled at `count` per
 * `period_ms` since t0 (the test's clock, read before the first use):
 * at least the burst, at most the burst and what came back. */
#define ASSERT_SERVED(got, burst, count, period_ms, t0)                        \
    do {                                                                       \
        uint64_t el_ = sw_now_ms() - (t0);                                     \
        long max_ = (long)(burst) + refilled((count), (period_ms), el_);       \
        ck_assert_msg((got) >= (long)(burst) && (got) <= max_,                 \
                      "%s: %ld passed in %llu ms (burst %ld, at most %ld)",    \
                      #got, (long)(got), (unsigned long long)el_,              \
                      (long)(burst), max_);                                    \
    } while (0)

/* One request on connection c (opened when c->fd < 0): its status, 0 when
 * the connection closed first. *retry gets Retry-After (-1 when absent). */
static int
request(struct sw_test_conn *c, const char *path, const char *key, long *retry)
{
    if (c->fd < 0) {
        ck_assert(sw_test_conn_open(c, gw.port));
    }
    char req[512];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: rl.example\r\n%s%s%s\r\n", path,
             key ? "X-Key: " : "", key ? key : "", key ? "\r\n" : "");
    struct sw_test_resp r;
    int rc = sw_test_conn_request(c, req, &r);
    ck_assert_msg(rc >= 0, "no answer to %s", path);
    int status = rc == 1 ? r.status : 0;
    const char *ra = rc == 1 ? sw_test_resp_header(&r, "Retry-After") : NULL;
    if (retry != NULL) {
        *retry = ra != NULL ? atol(ra) : -1;
    }
    const char *conn = rc == 1 ? sw_test_resp_header(&r, "Connection") : NULL;
    if (rc == 0 || (conn != NULL && strcasecmp(conn, "close") == 0)) {
        sw_test_conn_close(c);
        c->fd = -1;
    }
    sw_test_resp_free(&r);
    return status;
}

/* One request on a fresh connection. */
static int
request_once(const char *path, const char *key, long *retry)
{
    struct sw_test_conn c = {.fd = -1};
    int st = request(&c, path, key, retry);
    sw_test_conn_close(&c);
    return st;
}

START_TEST(requests_burst)
{
    struct sw_test_conn c = {.fd = -1};
    int status[20];
    long retry[20];
    uint64_t t0 = sw_now_ms();
    for (int i = 0; i < 20; i++) {
        status[i] = request(&c, "/burst/", "a", &retry[i]);
    }
    sw_test_conn_close(&c);
    long served = 0, limited = 0;
    for (int i = 0; i < 20; i++) {
        if (status[i] == 200) {
            served++;
        } else {
            ck_assert_msg(status[i] == 429, "request %d: status %d", i,
                          status[i]);
            /* a token comes back every 200 ms: rounded up, 1 s */
            ck_assert_int_eq(retry[i], 1);
            limited++;
        }
        if (i < 5) {
            ck_assert_msg(status[i] == 200, "request %d of the burst: %d", i,
                          status[i]);
        }
    }
    ASSERT_SERVED(served, 5, 5, 1000, t0);
    ck_assert_int_gt(limited, 0);
    ck_assert_int_eq(sw_test_metric(gw.admin_port, METRIC("limited_total")),
                     limited);
    /* another key has its own bucket */
    ck_assert_int_eq(request_once("/burst/", "b", NULL), 200);
    /* and the refusals were logged with their key */
    ck_assert_int_eq(sw_test_proc_log_count(&gw.proc, 0,
                                            "over the requests limit",
                                            "key \"a\"", "429", NULL),
                     limited);
}
END_TEST

START_TEST(reload_keeps_buckets)
{
    uint64_t t0 = sw_now_ms();
    long served = 0;
    for (int i = 0; i < 3; i++) {
        served += request_once("/slow/", "r", NULL) == 200;
    }
    ck_assert_int_eq(served, 3);
    long mark = sw_test_proc_log_size(&gw.proc);
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert(sw_test_proc_wait_log(&gw.proc, "reloaded", mark, 5000) >= 0);
    long retry = 0;
    int st = request_once("/slow/", "r", &retry);
    served += st == 200;
    uint64_t elapsed = sw_now_ms() - t0;
    /* the new snapshot's route finds the worker's bucket of "r" empty */
    ck_assert_msg(served <= 3 + refilled(3, MINUTE, elapsed),
                  "served after the reload: %d (%llu ms)", st,
                  (unsigned long long)elapsed);
    if (st == 429) {
        ck_assert(retry >= 1 && retry <= 20);
    }
}
END_TEST

START_TEST(keys_evicted_lru)
{
    /* max_keys 100: "k0" spends its 3 tokens, 99 more keys fill the
     * table, "k0" is used again (refused, but now the most recent), then
     * a 101st key evicts the least recently used: "k1", not "k0" */
    uint64_t t0 = sw_now_ms();
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(request_once("/slow/", "k0", NULL), 200);
    }
    char key[16];
    for (int i = 1; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_int_eq(request_once("/slow/", key, NULL), 200);
    }
    ck_assert_int_eq(
        sw_test_metric(gw.admin_port, METRIC("keys_evicted_total")), 0);
    int again = request_once("/slow/", "k0", NULL);
    ck_assert_int_eq(request_once("/slow/", "k100", NULL), 200);
    ck_assert_int_eq(
        sw_test_metric(gw.admin_port, METRIC("keys_evicted_total")), 1);
    int after = request_once("/slow/", "k0", NULL);
    uint64_t elapsed = sw_now_ms() - t0;
    if (elapsed + 1 < MINUTE / 3) {
        /* no token came back yet: k0 kept its empty bucket */
        ck_assert_msg(again == 429 && after == 429,
                      "k0 served after spending its burst (%d, %d): evicted "
                      "in place of k1?",
                      again, after);
    }
}
END_TEST

/* A request to /var/ with X-Probe-In: value (none when NULL). */
static int
var_request(const char *value)
{
    char req[256];
    snprintf(req, sizeof(req),
             "GET /var/ HTTP/1.1\r\nHost: rl.example\r\n%s%s%s"
             "Connection: close\r\n\r\n",
             value ? "X-Probe-In: " : "", value ? value : "",
             value ? "\r\n" : "");
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_once(gw.port, req, &r), 1);
    int st = r.status;
    sw_test_resp_free(&r);
    return st;
}

START_TEST(key_from_variable)
{
    /* requests 2/m keyed by the variable the probe plugin sets before
     * ratelimit runs; without it, the client address */
    uint64_t t0 = sw_now_ms();
    long alice = 0, addr = 0;
    for (int i = 0; i < 4; i++) {
        alice += var_request("alice") == 200;
    }
    ASSERT_SERVED(alice, 2, 2, MINUTE, t0);
    ck_assert_int_eq(var_request("bob"), 200);
    for (int i = 0; i < 4; i++) {
        addr += var_request(NULL) == 200;
    }
    ASSERT_SERVED(addr, 2, 2, MINUTE, t0);
    /* a value that looks like the address is a key of its own */
    ck_assert_int_eq(var_request("127.0.0.1"), 200);
}
END_TEST

START_TEST(connections_per_client)
{
    /* connections 3/m on /conns/, status 503: each connection sends two
     * requests; only a connection's first one takes a token */
    uint64_t t0 = sw_now_ms();
    long admitted = 0;
    for (int i = 0; i < 6; i++) {
        struct sw_test_conn c = {.fd = -1};
        long retry = -1;
        int first = request(&c, "/conns/", NULL, &retry);
        int second = c.fd >= 0 ? request(&c, "/conns/", NULL, NULL) : 0;
        sw_test_conn_close(&c);
        if (first == 200) {
            admitted++;
            ck_assert_msg(second == 200, "connection %d: second request %d", i,
                          second);
            continue;
        }
        ck_assert_msg(first == 503, "connection %d: %d", i, first);
        ck_assert_msg(retry >= 1 && retry <= 20, "Retry-After %ld", retry);
        /* a refused connection stays refused */
        ck_assert_msg(second != 200, "connection %d: refused, then served", i);
    }
    ASSERT_SERVED(admitted, 3, 3, MINUTE, t0);
    ck_assert_int_ge(sw_test_metric(gw.admin_port, METRIC("limited_total")),
                     6 - admitted);
}
END_TEST

/* One request on a new connection to the proxy_protocol listener, as a
 * balancer would bring it from client `addr`: its status. */
static int
proxied_request(const char *addr, const char *path)
{
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, pp_port));
    char hdr[96];
    int n = snprintf(hdr, sizeof(hdr), "PROXY TCP4 %s 192.0.2.1 40000 80\r\n",
                     addr);
    ck_assert(sw_test_conn_send(&c, hdr, (size_t)n));
    int status = request(&c, path, NULL, NULL);
    sw_test_conn_close(&c);
    return status;
}

START_TEST(connections_per_carried_address)
{
    /* connections 3/m on /conns/, keyed by the client address: behind a
     * balancer that is the address the PROXY header carries, so each
     * client has its own bucket though every socket comes from one peer */
    uint64_t t0 = sw_now_ms();
    long admitted = 0;
    for (int i = 0; i < 5; i++) {
        int st = proxied_request("203.0.113.1", "/conns/");
        ck_assert_msg(st == 200 || st == 503, "connection %d: %d", i, st);
        admitted += st == 200;
    }
    ASSERT_SERVED(admitted, 3, 3, MINUTE, t0);
    ck_assert_int_eq(proxied_request("203.0.113.2", "/conns/"), 200);
    ck_assert_int_eq(proxied_request("198.51.100.7", "/conns/"), 200);
}
END_TEST

/* Run tests/js/ratelimit_ws.js; *echoed and *code from its output. */
static void
node_ws(const char *path, const char *mode, int n, const char *key,
        long *echoed, long *code)
{
    char node[512], script[600], url[128], num[16];
    ck_assert_msg(sw_test_which("node", node, sizeof(node)),
                  "node is not on PATH (Node 20 is required)");
    snprintf(script, sizeof(script), "%s/tests/js/ratelimit_ws.js",
             sw_test_env("SW_SOURCE_ROOT"));
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d%s", gw.port, path);
    snprintf(num, sizeof(num), "%d", n);
    char *argv[] = {node, script, url, (char *)mode, num, (char *)key, NULL};
    char *out = NULL;
    int rc = sw_test_run(argv, 30000, &out);
    ck_assert_msg(rc == 0, "ratelimit_ws.js exit %d:\n%s", rc, out);
    const char *e = strstr(out, "echoed ");
    const char *c = strstr(out, "close ");
    ck_assert_msg(e != NULL && c != NULL, "ratelimit_ws.js:\n%s", out);
    *echoed = atol(e + 7);
    *code = atol(c + 6);
    free(out);
}

START_TEST(ws_messages_close)
{
    /* messages 5/m per connection: the sixth message closes with 1008 */
    long echoed = 0, code = 0;
    uint64_t t0 = sw_now_ms();
    node_ws("/wsclose/", "seq", 20, NULL, &echoed, &code);
    ck_assert_int_eq(code, 1008);
    ASSERT_SERVED(echoed, 5, 5, MINUTE, t0);
    ck_assert_int_eq(sw_test_metric(gw.admin_port, METRIC("ws_closed_total")),
                     1);
    ck_assert_int_ge(sw_test_proc_log_count(&gw.proc, 0,
                                            "over the messages per connection "
                                            "limit",
                                            "close 1008", NULL),
                     1);
}
END_TEST

START_TEST(ws_messages_drop)
{
    /* messages 3/m per connection, ws_over drop: of 10 messages sent at
     * once, 3 come back; the session stays open and ends with our own
     * close 1000, echoed by the upstream */
    long echoed = 0, code = 0;
    uint64_t t0 = sw_now_ms();
    node_ws("/wsdrop/", "burst", 10, NULL, &echoed, &code);
    ck_assert_int_eq(code, 1000);
    ASSERT_SERVED(echoed, 3, 3, MINUTE, t0);
    ck_assert_int_eq(sw_test_metric(gw.admin_port, METRIC("ws_dropped_total")),
                     10 - echoed);
    ck_assert_int_eq(sw_test_metric(gw.admin_port, METRIC("ws_closed_total")),
                     0);
}
END_TEST

START_TEST(ws_messages_per_key)
{
    /* messages 4/m per=key: two connections with X-Key "k" share 4 */
    long e1 = 0, e2 = 0, e3 = 0, code = 0;
    uint64_t t0 = sw_now_ms();
    node_ws("/wskey/", "burst", 3, "k", &e1, &code);
    ck_assert_int_eq(code, 1000);
    node_ws("/wskey/", "burst", 3, "k", &e2, &code);
    ck_assert_int_eq(code, 1000);
    ck_assert_int_eq(e1, 3);
    ASSERT_SERVED(e1 + e2, 4, 4, MINUTE, t0);
    /* another key: a full bucket of its own */
    node_ws("/wskey/", "burst", 3, "other", &e3, &code);
    ck_assert_int_eq(e3, 3);
    ck_assert_int_eq(sw_test_metric(gw.admin_port, METRIC("ws_dropped_total")),
                     6 - e1 - e2);
}
END_TEST

/* Send `text` as one message in `frames` fragments. */
static void
send_fragmented(struct sw_test_ws *ws, const char *text, size_t frames)
{
    size_t n = strlen(text), step = (n + frames - 1) / frames;
    for (size_t off = 0; off < n; off += step) {
        size_t k = SW_MIN(step, n - off);
        ck_assert(sw_test_ws_send(ws, off + k == n,
                                  off == 0 ? SW_WS_OP_TEXT : SW_WS_OP_CONT,
                                  text + off, k));
    }
}

START_TEST(ws_fragments_count_once)
{
    /* messages 5/m on /wsclose/: five messages of three frames each all
     * pass (a message is counted at its first frame); the sixth closes */
    uint64_t t0 = sw_now_ms();
    struct sw_test_ws ws;
    sw_test_ws_open_ok(&ws, gw.port, "rl.example", "/wsclose/");
    for (int i = 0; i < 5; i++) {
        send_fragmented(&ws, "one message, three frames", 3);
        struct sw_test_ws_msg m;
        ck_assert_int_eq(sw_test_ws_recv_msg(&ws, &m, 5000), 1);
        ck_assert_uint_eq(m.opcode, SW_WS_OP_TEXT);
        ck_assert_str_eq((const char *)m.payload, "one message, three frames");
        sw_test_ws_msg_free(&m);
    }
    send_fragmented(&ws, "the sixth", 3);
    int code = sw_test_ws_expect_close(&ws, 5000);
    sw_test_ws_free(&ws);
    if (sw_now_ms() - t0 + 1 < MINUTE / 5) {
        ck_assert_int_eq(code, 1008);
    }
}
END_TEST

START_TEST(ws_drop_whole_message)
{
    /* messages 3/m on /wsdrop/, ws_over drop: three messages pass, a
     * fourth in three frames is dropped whole (no fragment of it reaches
     * the upstream), and the session goes on to our close */
    uint64_t t0 = sw_now_ms();
    struct sw_test_ws ws;
    sw_test_ws_open_ok(&ws, gw.port, "rl.example", "/wsdrop/");
    const char *const texts[] = {"a", "b", "c"};
    for (size_t i = 0; i < SW_NELEMS(texts); i++) {
        ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_TEXT, texts[i], 1));
    }
    send_fragmented(&ws, "dropped in three frames", 3);
    ck_assert(sw_test_ws_send_close(&ws, 1000));
    size_t got = 0;
    for (;;) {
        struct sw_test_ws_msg m;
        ck_assert_int_eq(sw_test_ws_recv_msg(&ws, &m, 5000), 1);
        if (m.opcode == SW_WS_OP_CLOSE) {
            ck_assert_uint_eq(m.close_code, 1000);
            sw_test_ws_msg_free(&m);
            break;
        }
        if (got < SW_NELEMS(texts)) {
            ck_assert_str_eq((const char *)m.payload, texts[got]);
        }
        got++;
        sw_test_ws_msg_free(&m);
    }
    sw_test_ws_free(&ws);
    if (sw_now_ms() - t0 + 1 < MINUTE / 3) {
        ck_assert_uint_eq(got, 3);
        ck_assert_int_eq(
            sw_test_metric(gw.admin_port, METRIC("ws_dropped_total")), 1);
    }
}
END_TEST

START_TEST(ws_bytes_per_key)
{
    /* bytes 2k/m per=key on /wskey/ (drop): 1500 bytes on one connection
     * of key "b", then on another of the same key 1000 bytes are dropped
     * and 10 more pass: the echoes come in that order */
    uint64_t t0 = sw_now_ms();
    uint8_t buf[1500];
    memset(buf, 'y', sizeof(buf));
    struct sw_test_ws ws1, ws2;
    ck_assert_int_eq(
        sw_test_ws_open(&ws1, gw.port, "rl.example", "/wskey/", "X-Key: b\r\n"),
        101);
    sw_test_ws_echo(&ws1, SW_WS_OP_BINARY, buf, 1500, 5000);
    ck_assert_int_eq(
        sw_test_ws_open(&ws2, gw.port, "rl.example", "/wskey/", "X-Key: b\r\n"),
        101);
    ck_assert(sw_test_ws_send(&ws2, true, SW_WS_OP_BINARY, buf, 1000));
    ck_assert(sw_test_ws_send(&ws2, true, SW_WS_OP_BINARY, buf, 10));
    struct sw_test_ws_msg m;
    ck_assert_int_eq(sw_test_ws_recv_msg(&ws2, &m, 5000), 1);
    uint64_t len = m.len;
    sw_test_ws_msg_free(&m);
    if (refilled(2048, MINUTE, sw_now_ms() - t0) < 1000 - 548) {
        ck_assert_uint_eq(len, 10);
        ck_assert_int_eq(
            sw_test_metric(gw.admin_port, METRIC("ws_dropped_total")), 1);
    }
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws2, 1000, 5000), 1000);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws1, 1000, 5000), 1000);
    sw_test_ws_free(&ws1);
    sw_test_ws_free(&ws2);
}
END_TEST

START_TEST(ws_bytes_close)
{
    /* bytes 1k/m per connection: 600 bytes pass, 1000 more do not */
    uint64_t t0 = sw_now_ms();
    struct sw_test_ws ws;
    sw_test_ws_open_ok(&ws, gw.port, "rl.example", "/wsbytes/");
    uint8_t buf[1000];
    memset(buf, 'x', sizeof(buf));
    sw_test_ws_echo(&ws, SW_WS_OP_BINARY, buf, 600, 5000);
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_BINARY, buf, 1000));
    int code = sw_test_ws_expect_close(&ws, 5000);
    uint64_t elapsed = sw_now_ms() - t0;
    sw_test_ws_free(&ws);
    /* 576 bytes would take about 34 s to come back */
    if (refilled(1024, MINUTE, elapsed) < 576) {
        ck_assert_int_eq(code, 1008);
        ck_assert_int_eq(
            sw_test_metric(gw.admin_port, METRIC("ws_closed_total")), 1);
    }
}
END_TEST

START_TEST(bad_blocks_refused)
{
    /* one mistake per block of plugin_ratelimit_bad.conf */
    static const struct {
        const char *pos; /* "LINE:" of the error */
        const char *msg; /* what it says */
    } want[] = {
        {":16:", "requests \"10/x\": the period must be s, m or h"},
        {":25:", "messages per=key given twice"},
        {":33:", "unknown key \"cookie\": expected remote_addr, header or var"},
        {":41:", "no limit: give at least one of connections"},
        {":50:", "bytes: invalid \"burst=lots\""},
    };
    const char *kv[] = {"PORT",   sw_test_itoa(gw.port),
                        "B1",     sw_test_itoa(be_port),
                        "PLUGIN", plugin,
                        NULL};
    char *out = NULL;
    int rc = sw_test_conf_check("plugin_ratelimit_bad.conf", kv, &out);
    ck_assert_msg(rc > 0, "-t accepted the bad blocks:\n%s", out);
    for (size_t i = 0; i < SW_NELEMS(want); i++) {
        bool found = false;
        for (const char *l = out; l != NULL && !found; l = strchr(l, '\n')) {
            l += *l == '\n';
            const char *end = strchr(l, '\n');
            size_t n = end != NULL ? (size_t)(end - l) : strlen(l);
            char line[512];
            snprintf(line, sizeof(line), "%.*s", (int)n, l);
            found = strstr(line, want[i].pos) != NULL &&
                    strstr(line, "plugin ratelimit") != NULL &&
                    strstr(line, want[i].msg) != NULL;
        }
        ck_assert_msg(found, "no error \"%s\" at line %s in:\n%s", want[i].msg,
                      want[i].pos, out);
    }
    free(out);
}
END_TEST

START_TEST(two_workers_share_the_limit)
{
    /* requests 10/s burst=10 over 2 workers: 5/s and a burst of 5 on
     * each. One keep-alive connection stays on one worker: it sees 5. */
    struct sw_test_conn c = {.fd = -1};
    uint64_t t0 = sw_now_ms();
    long served = 0, limited = 0;
    for (int i = 0; i < 20; i++) {
        int st = request(&c, "/", "w", NULL);
        ck_assert_msg(st == 200 || st == 429, "request %d: %d", i, st);
        served += st == 200;
        limited += st == 429;
    }
    sw_test_conn_close(&c);
    ASSERT_SERVED(served, 5, 5, 1000, t0);
    /* fresh connections spread over both workers: at most the whole
     * limit, at least one worker's burst */
    t0 = sw_now_ms();
    long spread = 0;
    for (int i = 0; i < 30; i++) {
        int st = request_once("/", "v", NULL);
        ck_assert_msg(st == 200 || st == 429, "request %d: %d", i, st);
        spread += st == 200;
        limited += st == 429;
    }
    ck_assert_int_ge(spread, 5);
    ck_assert_int_le(spread, 10 + refilled(10, 1000, sw_now_ms() - t0));
    ck_assert_int_eq(sw_test_metric(gw.admin_port, METRIC("limited_total")),
                     limited);
}
END_TEST

static Suite *
plugin_ratelimit_suite(void)
{
    Suite *s = suite_create("plugin_ratelimit");
    TCase *tc = tcase_create("one_worker");
    tcase_add_checked_fixture(tc, setup_one, teardown);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, requests_burst);
    tcase_add_test(tc, reload_keeps_buckets);
    tcase_add_test(tc, keys_evicted_lru);
    tcase_add_test(tc, connections_per_client);
    tcase_add_test(tc, connections_per_carried_address);
    tcase_add_test(tc, key_from_variable);
    tcase_add_test(tc, ws_messages_close);
    tcase_add_test(tc, ws_messages_drop);
    tcase_add_test(tc, ws_messages_per_key);
    tcase_add_test(tc, ws_fragments_count_once);
    tcase_add_test(tc, ws_drop_whole_message);
    tcase_add_test(tc, ws_bytes_per_key);
    tcase_add_test(tc, ws_bytes_close);
    tcase_add_test(tc, bad_blocks_refused);
    suite_add_tcase(s, tc);
    TCase *tw = tcase_create("two_workers");
    tcase_add_checked_fixture(tw, setup_two, teardown);
    tcase_set_timeout(tw, 90);
    tcase_add_test(tw, two_workers_share_the_limit);
    suite_add_tcase(s, tw);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(plugin_ratelimit_suite());
}
