/*
 * fanout_bus_test.c - fan-out channels across gateways through the Redis
 * bus (docs/scaling.md): Debian's redis-server, up to three gateways on
 * 127.0.0.2, .3 and .4 (tests/conf/fanout_bus.conf, `fanout_bus` with a
 * 1 s lease), one `fanback` backend and, for the scale-out case, HAProxy
 * in front with the PROXY protocol v2.
 *
 *   clients ==> gateway .2 (holder) --1 WS--> fanback
 *   clients ==> gateway .3 (follower) <--PUBLISH d:feed:KEY-- Redis
 *
 * Cases:
 *   two gateways, one client on each: one upstream connection, every
 *   message to both clients once and in order, published once on the bus
 *   a client message on the follower reaches the backend (through u:)
 *   POST /publish on either gateway (and on one without the channel) and
 *   a PUBLISH straight into Redis (p:, through the holder) reach the
 *   clients of every gateway, in the same order
 *   Redis stopped: both gateways hold their own upstream and keep
 *   delivering; Redis back: one upstream again, every message once
 *   the holder killed (SIGKILL): the follower takes the channel over, its
 *   clients stay connected and get what is sent after the take-over
 *   scale-out: 1,000 clients through HAProxy (roundrobin, send-proxy-v2)
 *   over 10 channels and three gateways of two workers each (each worker
 *   its own bus connections, a channel's clients on both workers): one
 *   upstream connection per channel, every message to every client once
 *   and in order, each client's real address and port in one gateway's
 *   access log; a gateway killed: its clients' connections end, they
 *   reconnect through HAProxy, and everyone gets the later messages; the
 *   others never miss one.
 *
 * Waits are bounded polls (fanback stats, /metrics, Redis keys); nothing
 * asserts how long anything took.
 */
#include "fanctl.h"
#include "net.h"
#include "proc.h"
#include "redis.h"
#include "support.h"
#include "wsclient.h"

#include <shockwave/core.h>

#include <check.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NGW 3         /* gateways at most */
#define WAIT_MS 10000 /* a message, a metric */
#define BUS_MS 20000  /* a take-over, an election after Redis is back */
#define PREFIX "shockwave:"
#define NCLIENTS 1000           /* the scale-out case */
#define NCHANNELS 10            /* its channels */
#define CLIENT_SRC "127.0.0.10" /* its clients' source address */

/* One gateway of the test. */
struct bgw {
    struct sw_test_gw gw; /* the daemon (port: direct clients) */
    char addr[24];        /* its loopback address */
    int pport;            /* its proxy_protocol listener */
    char log[600];        /* its access log */
    bool up;              /* running (not killed) */
};

static struct sw_test_redis redis;  /* the bus */
static struct sw_test_fanback feed; /* every channel's upstream */
static struct bgw gws[NGW];         /* the gateways */
static struct sw_test_proc hap;     /* haproxy -db (scale-out) */

static void
setup(void)
{
    memset(gws, 0, sizeof(gws));
    ck_assert_msg(sw_test_redis_start(&redis), "redis-server did not start");
    ck_assert_msg(sw_test_fanback_start(&feed, NULL), "fanback did not start");
}

static void
teardown(void)
{
    if (hap.pid > 0) {
        sw_test_proc_stop(&hap, 2000);
    }
    bool clean = true;
    int st = 0;
    for (int i = 0; i < NGW; i++) {
        if (gws[i].up && !sw_test_gw_stop_clean(&gws[i].gw, &st)) {
            clean = false;
        }
    }
    sw_test_fanback_stop(&feed);
    sw_test_redis_stop(&redis);
    ck_assert_msg(clean, "a gateway did not exit 0 on SIGTERM (0x%x)", st);
}

/* Start gateway i on 127.0.0.(2+i) with the bus and `workers` workers. */
static void
gw_up_workers(int i, int workers)
{
    struct bgw *g = &gws[i];
    snprintf(g->addr, sizeof(g->addr), "127.0.0.%d", 2 + i);
    snprintf(g->log, sizeof(g->log), "%s/access.%d.log", sw_test_tmpdir(), i);
    unlink(g->log);
    g->pport = sw_test_free_port();
    char bus[128];
    snprintf(bus, sizeof(bus),
             "fanout_bus redis://127.0.0.1:%d;\nfanout_bus_lease 1s;",
             redis.port);
    const char *kv[] = {"ADDR", g->addr, "PPORT",   sw_test_itoa(g->pport),
                        "LOG",  g->log,  "FEED",    sw_test_itoa(feed.port),
                        "BUS",  bus,     "WORKERS", sw_test_itoa(workers),
                        NULL};
    ck_assert_msg(sw_test_gw_start(&g->gw, "fanout_bus.conf", kv),
                  "gateway %s did not start", g->addr);
    g->up = true;
}

/* The same with one worker. */
static void
gw_up(int i)
{
    gw_up_workers(i, 1);
}

/* SIGKILL gateway i by its pid and reap it. */
static void
gw_kill(int i)
{
    ck_assert(sw_test_proc_signal(&gws[i].gw.proc, SIGKILL));
    ck_assert(sw_test_proc_wait(&gws[i].gw.proc, WAIT_MS, NULL));
    gws[i].up = false;
}

/* A client of `path` straight on gateway i. */
static void
join(struct sw_test_ws *ws, int i, const char *path)
{
    int st = sw_test_ws_open_addr(ws, gws[i].addr, NULL, gws[i].gw.port,
                                  "app.example", path, NULL);
    ck_assert_msg(st == 101, "join %s on %s: status %d (%s)\n%s", path,
                  gws[i].addr, st, ws->why ? ws->why : "-",
                  ws->head ? ws->head : "");
}

static long long
metric(int i, const char *name)
{
    return sw_test_metric(gws[i].gw.admin_port, name);
}

/* A metric summed over the running gateways (absent counts 0). */
static long long
metric_sum(const char *name)
{
    long long sum = 0;
    for (int i = 0; i < NGW; i++) {
        long long v = gws[i].up ? metric(i, name) : -1;
        sum += v > 0 ? v : 0;
    }
    return sum;
}

/* Poll metric_sum until it equals want; returns the last value. */
static long long
metric_sum_wait(const char *name, long long want, int timeout_ms)
{
    uint64_t deadline = sw_now_ms() + (uint64_t)timeout_ms;
    long long v = metric_sum(name);
    while (v != want && sw_now_ms() < deadline) {
        sw_test_sleep_ms(50);
        v = metric_sum(name);
    }
    return v;
}

/* The lease of channel `path` (upstream feed): its value, malloc'd, or
 * NULL when there is none. */
static char *
lease(const char *path)
{
    char key[256];
    snprintf(key, sizeof(key), PREFIX "h:feed:%s", path);
    return sw_test_redis_get(&redis, key);
}

/* Wait until the lease of `path` says its upstream is open ("ID|1|...");
 * returns it (malloc'd). */
static char *
lease_open(const char *path)
{
    uint64_t deadline = sw_now_ms() + BUS_MS;
    for (;;) {
        char *v = lease(path);
        if (v != NULL && strstr(v, "|1|") != NULL) {
            return v;
        }
        ck_assert_msg(sw_now_ms() < deadline, "lease of %s never open: \"%s\"",
                      path, v != NULL ? v : "(none)");
        free(v);
        sw_test_sleep_ms(50);
    }
}

/* The holder id in a lease value (the part before the first '|'). */
static void
lease_id(const char *v, char *out, size_t cap)
{
    size_t k = strcspn(v, "|");
    snprintf(out, cap, "%.*s", (int)k, v);
}

/* Subscribers of a bus channel of `path` (kind 'd' or 'u'). */
static long long
numsub(char kind, const char *path)
{
    char ch[256];
    snprintf(ch, sizeof(ch), PREFIX "%c:feed:%s", kind, path);
    return sw_test_redis_numsub(&redis, ch);
}

/* Poll numsub until it equals want; returns the last value. */
static long long
numsub_wait(char kind, const char *path, long long want)
{
    uint64_t deadline = sw_now_ms() + WAIT_MS;
    long long v = numsub(kind, path);
    while (v != want && sw_now_ms() < deadline) {
        sw_test_sleep_ms(50);
        v = numsub(kind, path);
    }
    return v;
}

/* The next message on ws is `opcode` with exactly `text`. */
static void
expect_msg(struct sw_test_ws *ws, const char *who, uint8_t opcode,
           const char *text)
{
    struct sw_test_ws_msg m;
    int rc = sw_test_ws_recv_msg(ws, &m, WAIT_MS);
    ck_assert_msg(rc == 1, "%s: no message \"%s\": rc %d (%s)", who, text, rc,
                  ws->why ? ws->why : "-");
    ck_assert_msg(m.opcode == opcode && m.len == strlen(text) &&
                      memcmp(m.payload, text, m.len) == 0,
                  "%s: got opcode %u \"%.*s\", expected opcode %u \"%s\"", who,
                  m.opcode, (int)m.len, (const char *)m.payload, opcode, text);
    sw_test_ws_msg_free(&m);
}

/* The connection of ws ends (the gateway behind it is gone). */
static void
expect_end(struct sw_test_ws *ws, const char *who)
{
    struct sw_test_ws_msg m;
    int rc = sw_test_ws_recv_msg(ws, &m, WAIT_MS);
    ck_assert_msg(rc == 0, "%s: rc %d (%s), expected the connection to end",
                  who, rc, ws->why ? ws->why : "-");
}

/* Gateways 0..ngw-1 up; client a joins `path` on gateway 0 first (the
 * holder, once its upstream is open), then b on gateway 1 (a follower,
 * subscribed to the channel's d:; the holder subscribes u: and p:). */
static void
holder_and_follower(const char *path, int ngw, struct sw_test_ws *a,
                    struct sw_test_ws *b)
{
    for (int i = 0; i < ngw; i++) {
        gw_up(i);
    }
    join(a, 0, path);
    free(lease_open(path));
    join(b, 1, path);
    ck_assert_int_eq(numsub_wait('d', path, 1), 1);
    ck_assert_int_eq(numsub_wait('u', path, 1), 1);
    ck_assert_int_eq(numsub_wait('p', path, 1), 1);
}

/* The backend sends n rounds; every client in ws[0..nws) gets each once,
 * in order, on `path`. `when` names the phase in failure messages. */
static void
send_to_all(const char *path, unsigned n, struct sw_test_ws *const *ws, int nws,
            const char *when)
{
    unsigned long long s = sw_test_fanback_send(&feed, n, 50, false);
    for (int i = 0; i < nws; i++) {
        char who[64];
        snprintf(who, sizeof(who), "client %d (%s)", i, when);
        sw_test_fan_expect(ws[i], who, s, n, path, 50, WAIT_MS);
    }
}

START_TEST(one_upstream_for_two_gateways)
{
    const char *path = "/live/one";
    struct sw_test_ws a, b;
    holder_and_follower(path, 2, &a, &b);
    ck_assert_int_eq(sw_test_fanback_stat(&feed, "upgraded"), 1);
    ck_assert_int_eq(sw_test_fanback_stat(&feed, "live"), 1);

    /* a witness on the bus: the holder publishes each message once on d:,
     * as docs/scaling.md has it (the opcode, 1 = text, then the payload) */
    char ch[256];
    snprintf(ch, sizeof(ch), PREFIX "d:feed:%s", path);
    redisContext *sub = sw_test_redis_subscribe(&redis, ch);
    ck_assert(sub != NULL);

    unsigned long long first = sw_test_fanback_send(&feed, 30, 100, false);
    ck_assert_uint_eq(
        sw_test_fan_expect(&a, "client on .2", first, 30, path, 100, WAIT_MS),
        first + 29);
    ck_assert_uint_eq(
        sw_test_fan_expect(&b, "client on .3", first, 30, path, 100, WAIT_MS),
        first + 29);
    for (unsigned i = 0; i < 30; i++) {
        size_t n = 0;
        char *p = sw_test_redis_next(sub, &n, WAIT_MS);
        ck_assert_msg(p != NULL, "bus message %u of 30 missing", i + 1);
        unsigned long long s = 0;
        char t[256];
        ck_assert_msg(n > 1 && p[0] == SW_WS_OP_TEXT &&
                          sw_test_fan_parse(p + 1, &s, t, sizeof(t)) &&
                          s == first + i && strcmp(t, path) == 0,
                      "bus message %u: opcode %d, %zu bytes, \"%.40s\"", i + 1,
                      n > 0 ? p[0] : -1, n, n > 1 ? p + 1 : "");
        free(p);
    }
    redisFree(sub);

    /* and still one upstream connection */
    ck_assert_int_eq(sw_test_fanback_stat(&feed, "upgraded"), 1);
    ck_assert_int_eq(metric(0, "shockwave_fanout_upstream_connects_total"), 1);
    ck_assert_int_le(metric(1, "shockwave_fanout_upstream_connects_total"), 0);
    ck_assert_int_ge(metric(0, "shockwave_fanout_bus_published_total"), 30);
    ck_assert_int_ge(metric(1, "shockwave_fanout_bus_received_total"), 30);
    sw_test_fan_leave(&a);
    sw_test_fan_leave(&b);
}
END_TEST

START_TEST(client_message_from_the_follower)
{
    const char *path = "/live/up";
    struct sw_test_ws a, b;
    holder_and_follower(path, 2, &a, &b);
    ck_assert(
        sw_test_ws_send(&b, true, SW_WS_OP_TEXT, "from the follower", 17));
    ck_assert_int_eq(sw_test_fanback_wait(&feed, "msgs", 1, WAIT_MS), 1);
    ck_assert(sw_test_ws_send(&a, true, SW_WS_OP_TEXT, "from the holder", 15));
    ck_assert_int_eq(sw_test_fanback_wait(&feed, "msgs", 2, WAIT_MS), 2);
    /* both arrived on the one upstream connection, whole, in order */
    sw_test_fanback_ok(&feed, "msg 1",
                       "conn 1 op 1 len 17 frames 1 uniform 0 text from the "
                       "follower");
    sw_test_fanback_ok(&feed, "msg 2",
                       "conn 1 op 1 len 15 frames 1 uniform 0 text from the "
                       "holder");
    ck_assert_int_eq(sw_test_fanback_stat(&feed, "upgraded"), 1);
    ck_assert_int_eq(sw_test_fanback_stat(&feed, "errors"), 0);
    sw_test_fan_leave(&a);
    sw_test_fan_leave(&b);
}
END_TEST

/* POST /publish on gateway i's admin listener: the answer's status, body
 * into *json (malloc'd). */
static int
publish(int i, const char *channel, const char *ctype, const char *body,
        char **json)
{
    char req[1024];
    snprintf(req, sizeof(req),
             "POST /publish?upstream=feed&channel=%s HTTP/1.1\r\n"
             "Host: 127.0.0.1\r\nContent-Type: %s\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             channel, ctype, strlen(body), body);
    struct sw_test_resp r;
    int rc = sw_test_http_once(gws[i].gw.admin_port, req, &r);
    int status = rc == 1 ? r.status : -1;
    *json = strdup(rc == 1 ? r.body : "");
    sw_test_resp_free(&r);
    return status;
}

START_TEST(publish_reaches_every_gateway)
{
    const char *path = "/live/pub";
    const char *arg = "%2Flive%2Fpub"; /* percent-decoded by the gateway */
    struct sw_test_ws a, b;
    holder_and_follower(path, 3, &a, &b);

    /* from the follower's admin listener, then the holder's */
    char *json = NULL;
    ck_assert_int_eq(publish(1, arg, "text/plain", "pub via .3", &json), 202);
    ck_assert_msg(strstr(json, "\"local\":true") != NULL &&
                      strstr(json, "\"bus\":true") != NULL &&
                      strstr(json, "\"channel\":\"/live/pub\"") != NULL,
                  "%s", json);
    free(json);
    expect_msg(&a, "client on .2", SW_WS_OP_TEXT, "pub via .3");
    expect_msg(&b, "client on .3", SW_WS_OP_TEXT, "pub via .3");
    ck_assert_int_eq(publish(0, arg, "text/plain", "pub via .2", &json), 202);
    free(json);
    expect_msg(&a, "client on .2", SW_WS_OP_TEXT, "pub via .2");
    expect_msg(&b, "client on .3", SW_WS_OP_TEXT, "pub via .2");
    /* binary, from a gateway that has no client of the channel */
    ck_assert_int_eq(
        publish(2, arg, "application/octet-stream", "bin via .4", &json), 202);
    ck_assert_msg(strstr(json, "\"local\":false") != NULL &&
                      strstr(json, "\"bus\":true") != NULL,
                  "%s", json);
    free(json);
    expect_msg(&a, "client on .2", SW_WS_OP_BINARY, "bin via .4");
    expect_msg(&b, "client on .3", SW_WS_OP_BINARY, "bin via .4");
    /* straight into Redis, as a backend without a gateway would: on p:,
     * which the holder alone takes */
    char ch[256];
    snprintf(ch, sizeof(ch), PREFIX "p:feed:%s", path);
    ck_assert_int_eq(sw_test_redis_publish(&redis, ch,
                                           "\x01"
                                           "from redis",
                                           11),
                     1);
    expect_msg(&a, "client on .2", SW_WS_OP_TEXT, "from redis");
    expect_msg(&b, "client on .3", SW_WS_OP_TEXT, "from redis");
    /* the backend wrote none of these, and a message from it still comes
     * after them, once */
    unsigned long long first = sw_test_fanback_send(&feed, 1, 10, false);
    sw_test_fan_expect(&a, "client on .2", first, 1, path, 10, WAIT_MS);
    sw_test_fan_expect(&b, "client on .3", first, 1, path, 10, WAIT_MS);
    ck_assert_int_eq(sw_test_fanback_stat(&feed, "upgraded"), 1);
    sw_test_fan_leave(&a);
    sw_test_fan_leave(&b);
}
END_TEST

START_TEST(redis_down_and_back)
{
    const char *path = "/live/down";
    struct sw_test_ws a, b;
    holder_and_follower(path, 2, &a, &b);
    struct sw_test_ws *both[] = {&a, &b};
    send_to_all(path, 5, both, 2, "bus up");

    /* Redis stopped: the follower holds an upstream of its own, and both
     * keep delivering */
    sw_test_redis_stop(&redis);
    ck_assert_int_eq(sw_test_fanback_wait(&feed, "live", 2, BUS_MS), 2);
    ck_assert_int_eq(sw_test_fanback_stat(&feed, "upgraded"), 2);
    send_to_all(path, 5, both, 2, "Redis down");
    ck_assert_int_ge(metric(0, "shockwave_fanout_bus_unsent_total"), 5);
    ck_assert_int_ge(metric(1, "shockwave_fanout_bus_unsent_total"), 5);
    ck_assert_int_ge(metric_sum("shockwave_fanout_bus_errors_total"), 1);

    /* Redis back: an election, the loser closes its upstream */
    ck_assert_msg(sw_test_redis_restart(&redis), "redis did not restart");
    ck_assert_int_eq(sw_test_fanback_wait(&feed, "live", 1, BUS_MS), 1);
    ck_assert_int_eq(
        metric_sum_wait("shockwave_fanout_bus_stepdowns_total", 1, WAIT_MS), 1);
    free(lease_open(path));
    /* one holder (u:, p:) and one follower (d:) again */
    ck_assert_int_eq(numsub_wait('d', path, 1), 1);
    ck_assert_int_eq(numsub_wait('u', path, 1), 1);
    ck_assert_int_eq(numsub_wait('p', path, 1), 1);
    send_to_all(path, 5, both, 2, "Redis back");
    /* once: a duplicate of those would come before these */
    send_to_all(path, 3, both, 2, "Redis back");
    ck_assert_int_eq(sw_test_fanback_stat(&feed, "live"), 1);
    ck_assert_int_eq(sw_test_fanback_stat(&feed, "errors"), 0);
    sw_test_fan_leave(&a);
    sw_test_fan_leave(&b);
}
END_TEST

START_TEST(holder_killed)
{
    const char *path = "/live/kill";
    struct sw_test_ws a, b, c;
    holder_and_follower(path, 3, &a, &b);
    join(&c, 2, path);
    ck_assert_int_eq(numsub_wait('d', path, 2), 2);
    char *v = lease_open(path);
    char before[64];
    lease_id(v, before, sizeof(before));
    free(v);
    struct sw_test_ws *all[] = {&a, &b, &c};
    send_to_all(path, 5, all, 3, "before the kill");

    gw_kill(0);
    expect_end(&a, "client on .2");
    sw_test_ws_free(&a);
    /* the lease lapses, a follower takes the channel and connects */
    ck_assert_int_eq(sw_test_fanback_wait(&feed, "upgraded", 2, BUS_MS), 2);
    ck_assert_int_eq(sw_test_fanback_wait(&feed, "live", 1, WAIT_MS), 1);
    v = lease_open(path);
    char after[64];
    lease_id(v, after, sizeof(after));
    free(v);
    ck_assert_msg(strcmp(before, after) != 0, "lease still held by %s", before);
    ck_assert_int_eq(metric_sum("shockwave_fanout_bus_holds_total"), 1);
    /* the followers' clients stayed connected and get what comes next */
    send_to_all(path, 5, all + 1, 2, "after the take-over");
    ck_assert_int_eq(sw_test_fanback_stat(&feed, "upgraded"), 2);
    sw_test_fan_leave(&b);
    sw_test_fan_leave(&c);
}
END_TEST

/* ---- scale-out: HAProxy in front of three gateways ----------------- */

static const char hap_cfg[] =
    "global\n"
    "    maxconn 6000\n"
    "defaults\n"
    "    mode tcp\n"
    "    timeout connect 2s\n"
    "    timeout client 120s\n"
    "    timeout server 120s\n"
    "    retries 3\n"
    "    option redispatch 1\n"
    "frontend ws\n"
    "    bind 127.0.0.1:%d\n"
    "    default_backend gateways\n"
    "backend gateways\n"
    "    balance roundrobin\n"
    "    source 127.0.0.1\n"
    "    server g0 %s:%d send-proxy-v2 check addr 127.0.0.1 port %d "
    "inter 200 fall 1 rise 1\n"
    "    server g1 %s:%d send-proxy-v2 check addr 127.0.0.1 port %d "
    "inter 200 fall 1 rise 1\n"
    "    server g2 %s:%d send-proxy-v2 check addr 127.0.0.1 port %d "
    "inter 200 fall 1 rise 1\n";

/* Start HAProxy in front of the three gateways' proxy_protocol listeners
 * (health checks on their admin ports); returns its port. */
static int
haproxy_up(void)
{
    int port = sw_test_free_port();
    char text[2048];
    snprintf(text, sizeof(text), hap_cfg, port, gws[0].addr, gws[0].pport,
             gws[0].gw.admin_port, gws[1].addr, gws[1].pport,
             gws[1].gw.admin_port, gws[2].addr, gws[2].pport,
             gws[2].gw.admin_port);
    sw_test_haproxy_start(&hap, text, &port, 1);
    return port;
}

/* One client of the scale-out case. */
struct sclient {
    struct sw_test_ws ws;    /* its connection through HAProxy */
    char path[32];           /* its channel */
    int port;                /* its local port (in the access logs) */
    unsigned long long last; /* SEQ of the last message it got */
    bool moved;              /* its gateway was killed: reconnected */
};

/* Connect client k through HAProxy (a few tries: a connection HAProxy
 * handed to a gateway that just died ends without an answer, and a real
 * client would try again). */
static void
sclient_open(struct sclient *sc, int hport)
{
    for (int attempt = 0;; attempt++) {
        int st = sw_test_ws_open_addr(&sc->ws, "127.0.0.1", CLIENT_SRC, hport,
                                      "app.example", sc->path, NULL);
        if (st == 101) {
            sc->port = sw_test_conn_local_port(&sc->ws.conn);
            return;
        }
        ck_assert_msg(attempt < 5, "%s through haproxy: status %d (%s)\n%s",
                      sc->path, st, sc->ws.why ? sc->ws.why : "-",
                      sc->ws.head ? sc->ws.head : "");
        sw_test_ws_free(&sc->ws);
        sw_test_sleep_ms(100);
    }
}

/* Every client reads n messages: SEQ first.. on its own channel. */
static void
sclients_expect(struct sclient *cl, unsigned long long first, unsigned n)
{
    for (int k = 0; k < NCLIENTS; k++) {
        char who[64];
        snprintf(who, sizeof(who), "client %d (%s%s)", k, cl[k].path,
                 cl[k].moved ? ", reconnected" : "");
        cl[k].last = sw_test_fan_expect(&cl[k].ws, who, first, n, cl[k].path,
                                        20, WAIT_MS);
    }
}

/* Check that every client's CLIENT_SRC:PORT is in exactly one gateway's
 * access log on a 101 line: the PROXY v2 header carried it (the
 * gateways' socket peer is HAProxy's 127.0.0.1). Returns the clients
 * found per gateway in per_gw. */
static void
access_logs_show_clients(const struct sclient *cl, int per_gw[NGW])
{
    static unsigned char seen[65536];
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < NGW; i++) {
        per_gw[i] = 0;
        char *out = NULL;
        /* JSON lines: ..."client":"ADDR","client_port":PORT,... */
        sw_test_shell(&out,
                      "grep -F '\"status\":101' '%s' | grep -o "
                      "'\"client\":\"" CLIENT_SRC "\",\"client_port\":[0-9]*' "
                      "| cut -d: -f3",
                      gws[i].log);
        for (char *p = out; p != NULL && *p != '\0';) {
            int prt = atoi(p);
            if (prt > 0 && prt < 65536) {
                seen[prt]++;
                per_gw[i]++;
            }
            p = strchr(p, '\n');
            p = p != NULL ? p + 1 : NULL;
        }
        free(out);
    }
    for (int k = 0; k < NCLIENTS; k++) {
        ck_assert_msg(seen[cl[k].port] == 1,
                      "client %d (" CLIENT_SRC ":%d) is in %d access log "
                      "lines, expected 1",
                      k, cl[k].port, seen[cl[k].port]);
    }
}

START_TEST(scale_out_behind_haproxy)
{
    for (int i = 0; i < NGW; i++) {
        gw_up_workers(i, 2);
    }
    int hport = haproxy_up();
    struct sclient *cl = calloc(NCLIENTS, sizeof(*cl));
    ck_assert_ptr_nonnull(cl);
    for (int k = 0; k < NCLIENTS; k++) {
        snprintf(cl[k].path, sizeof(cl[k].path), "/live/ch%d", k % NCHANNELS);
        sclient_open(&cl[k], hport);
    }
    /* one upstream connection per channel, in all */
    ck_assert_int_eq(sw_test_fanback_stat(&feed, "upgraded"), NCHANNELS);
    ck_assert_int_eq(sw_test_fanback_stat(&feed, "live"), NCHANNELS);
    ck_assert_int_eq(
        metric_sum_wait("shockwave_fanout_clients", NCLIENTS, WAIT_MS),
        NCLIENTS);
    int per_gw[NGW];
    access_logs_show_clients(cl, per_gw);
    for (int i = 0; i < NGW; i++) {
        ck_assert_msg(
            per_gw[i] > 0 && per_gw[i] == metric(i, "shockwave_fanout_clients"),
            "gateway %s: %d clients in its access log, %lld in "
            "its metrics",
            gws[i].addr, per_gw[i], metric(i, "shockwave_fanout_clients"));
    }

    unsigned long long s = sw_test_fanback_send(&feed, 10, 40, false);
    sclients_expect(cl, s, 10);

    /* kill the gateway with the first channel's upstream (it holds some) */
    long long held = metric(0, "shockwave_fanout_bus_holds_total") -
                     metric(0, "shockwave_fanout_bus_stepdowns_total");
    ck_assert_int_gt(held, 0);
    int gone = (int)metric(0, "shockwave_fanout_clients");
    gw_kill(0);
    /* its clients' connections end; they reconnect through HAProxy */
    int ended = 0;
    uint64_t deadline = sw_now_ms() + BUS_MS;
    while (ended < gone) {
        ck_assert_msg(sw_now_ms() < deadline,
                      "%d of the %d clients of the killed gateway ended", ended,
                      gone);
        for (int k = 0; k < NCLIENTS; k++) {
            struct pollfd pfd = {cl[k].ws.conn.fd, POLLIN, 0};
            if (cl[k].moved || poll(&pfd, 1, 0) != 1) {
                continue;
            }
            char who[64];
            snprintf(who, sizeof(who), "client %d (%s)", k, cl[k].path);
            expect_end(&cl[k].ws, who);
            sw_test_ws_free(&cl[k].ws);
            sclient_open(&cl[k], hport);
            cl[k].moved = true;
            ended++;
        }
        sw_test_sleep_ms(20);
    }
    /* the channels it held are taken over: one upstream each again */
    ck_assert_int_eq(
        sw_test_fanback_wait(&feed, "upgraded", NCHANNELS + held, BUS_MS),
        NCHANNELS + held);
    ck_assert_int_eq(sw_test_fanback_wait(&feed, "live", NCHANNELS, WAIT_MS),
                     NCHANNELS);
    ck_assert_int_eq(
        metric_sum_wait("shockwave_fanout_clients", NCLIENTS, WAIT_MS),
        NCLIENTS);
    for (int k = 0; k < NCHANNELS; k++) {
        free(lease_open(cl[k].path));
    }
    /* everyone gets what comes next; the clients that stayed never missed
     * one (their next SEQ follows their last) */
    unsigned long long s2 = sw_test_fanback_send(&feed, 10, 40, false);
    ck_assert_uint_eq(s2, s + 10);
    sclients_expect(cl, s2, 10);
    ck_assert_int_eq(sw_test_fanback_stat(&feed, "upgraded"), NCHANNELS + held);
    ck_assert_int_eq(sw_test_fanback_stat(&feed, "errors"), 0);
    for (int k = 0; k < NCLIENTS; k++) {
        sw_test_ws_free(&cl[k].ws);
    }
    free(cl);
}
END_TEST

static Suite *
fanout_bus_suite(void)
{
    Suite *s = suite_create("fanout_bus");
    TCase *tc = tcase_create("fanout_bus");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, one_upstream_for_two_gateways);
    tcase_add_test(tc, client_message_from_the_follower);
    tcase_add_test(tc, publish_reaches_every_gateway);
    tcase_add_test(tc, redis_down_and_back);
    tcase_add_test(tc, holder_killed);
    tcase_add_test(tc, scale_out_behind_haproxy);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(fanout_bus_suite());
}
