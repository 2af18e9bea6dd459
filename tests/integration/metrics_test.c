/*
 * metrics_test.c - /metrics after real traffic, checked by promtool and
 * parsed back.
 *
 * The daemon (tests/conf/metrics.conf, two workers) gets HTTP requests of
 * every status class on named and unnamed routes, a failing upstream, 16
 * keep-alive clients held open and four WebSocket sessions (one with
 * messages of known sizes in both directions, each closed by the client
 * with 1000). The exposition must pass `promtool check metrics` (Debian
 * `prometheus`, installed by scripts/deps.sh: its absence fails the test)
 * and, parsed back line by line:
 *   - every sample has its family's # TYPE before it, labels as documented;
 *   - counters equal the traffic sent, exactly (summed over two workers,
 *     and the per-worker gauge adds up to the total);
 *   - each histogram's buckets never decrease, +Inf equals _count, and the
 *     message-size _sum is the bytes sent.
 * A reload that moves the "api" route and adds one keeps api's series, and
 * a WebSocket session that spans it goes on counting into its route's.
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

#define WAIT_MS 10000
#define N_API 6     /* GET app.example, Connection: close */
#define N_KEEP 16   /* keep-alive clients held open, one GET each */
#define N_TEA 2     /* 418 */
#define N_MOVED 1   /* 301 */
#define N_NOROUTE 3 /* 404 */
#define N_FAIL 2    /* 502 */
#define N_WS 4      /* WebSocket sessions */

/* Message sizes of the one WebSocket session that carries data: small
 * (<= 64), medium (<= 1024) and spliced (over the 16k threshold). */
static const size_t ws_sizes[] = {10,   10,   10,   10,     10,
                                  1000, 1000, 1000, 100000, 100000};
#define N_MSGS (sizeof(ws_sizes) / sizeof(ws_sizes[0]))

static struct sw_test_proc be;
static int be_port;
static int dead_port;
static struct sw_test_gw gw;

static const char *const *
vars(void)
{
    static const char *kv[5];
    kv[0] = "B1";
    kv[1] = sw_test_itoa(be_port);
    kv[2] = "DEAD";
    kv[3] = sw_test_itoa(dead_port);
    kv[4] = NULL;
    return kv;
}

static void
setup(void)
{
    ck_assert(sw_test_backend_start(&be, "b1", &be_port));
    dead_port = sw_test_free_port();
    ck_assert_int_gt(dead_port, 0);
    ck_assert(sw_test_gw_start(&gw, "metrics.conf", vars()));
}

static void
teardown(void)
{
    sw_test_gw_teardown(&gw, &be);
}

/* ---- the exposition, parsed ------------------------------------------- */

struct sample {
    char name[128];   /* metric name as printed (with _bucket etc.) */
    char labels[256]; /* label pairs as printed, without braces */
    double value;
};

struct scrape {
    char *text;          /* owned: the body */
    struct sample *s;    /* owned: samples in order */
    size_t n;            /* entries in s */
    char types[128][96]; /* families with a # TYPE, in order */
    char kinds[128][16]; /* their types */
    size_t ntypes;
};

static const char *
type_of(const struct scrape *sc, const char *family)
{
    for (size_t i = 0; i < sc->ntypes; i++) {
        if (strcmp(sc->types[i], family) == 0) {
            return sc->kinds[i];
        }
    }
    return NULL;
}

/* The family a sample belongs to: a histogram's _bucket/_sum/_count name
 * its family without the suffix. */
static void
family_of(const struct scrape *sc, const char *name, char *out, size_t n)
{
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    snprintf(out, n, "%s", name);
    for (size_t i = 0; i < 3; i++) {
        size_t ln = strlen(name), ls = strlen(sfx[i]);
        if (ln > ls && strcmp(name + ln - ls, sfx[i]) == 0) {
            char base[128];
            snprintf(base, sizeof(base), "%.*s", (int)(ln - ls), name);
            const char *t = type_of(sc, base);
            if (t != NULL && strcmp(t, "histogram") == 0) {
                snprintf(out, n, "%s", base);
            }
        }
    }
}

static void
parse(struct scrape *sc, char *text)
{
    memset(sc, 0, sizeof(*sc));
    sc->text = text;
    size_t cap = 0;
    for (char *line = strtok(text, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        if (strncmp(line, "# TYPE ", 7) == 0) {
            ck_assert_uint_lt(sc->ntypes, 128);
            char kind[16];
            ck_assert_int_eq(
                sscanf(line + 7, "%95s %15s", sc->types[sc->ntypes], kind), 2);
            ck_assert_ptr_null(type_of(sc, sc->types[sc->ntypes]));
            snprintf(sc->kinds[sc->ntypes], 16, "%s", kind);
            sc->ntypes++;
            continue;
        }
        if (line[0] == '#') {
            continue;
        }
        if (sc->n == cap) {
            cap = cap ? cap * 2 : 256;
            sc->s = realloc(sc->s, cap * sizeof(*sc->s));
            ck_assert_ptr_nonnull(sc->s);
        }
        struct sample *s = &sc->s[sc->n++];
        char *sp = strrchr(line, ' ');
        ck_assert_msg(sp != NULL, "no value: %s", line);
        char *end;
        s->value = strtod(sp + 1, &end);
        ck_assert_msg(*end == '\0', "bad value: %s", line);
        *sp = '\0';
        char *brace = strchr(line, '{');
        s->labels[0] = '\0';
        if (brace != NULL) {
            ck_assert_msg(sp[-1] == '}', "labels: %s", line);
            sp[-1] = '\0';
            snprintf(s->labels, sizeof(s->labels), "%s", brace + 1);
            *brace = '\0';
        }
        snprintf(s->name, sizeof(s->name), "%s", line);
        char fam[128];
        family_of(sc, s->name, fam, sizeof(fam));
        ck_assert_msg(type_of(sc, fam) != NULL, "%s has no # TYPE before it",
                      s->name);
    }
}

static void
scrape_free(struct scrape *sc)
{
    free(sc->s);
    free(sc->text);
}

static struct scrape
scrape(void)
{
    struct scrape sc;
    char *text = sw_test_metrics_fetch(gw.admin_port);
    ck_assert_msg(text[0] != '\0', "no /metrics answer");
    parse(&sc, text);
    return sc;
}

/* The sample `name` with exactly `labels`, or -1. */
static double
get(const struct scrape *sc, const char *name, const char *labels)
{
    for (size_t i = 0; i < sc->n; i++) {
        if (strcmp(sc->s[i].name, name) == 0 &&
            strcmp(sc->s[i].labels, labels) == 0) {
            return sc->s[i].value;
        }
    }
    return -1;
}

#define CK_VAL(sc, name, labels, want)                                         \
    do {                                                                       \
        double got_ = get(sc, name, labels);                                   \
        ck_assert_msg(got_ == (double)(want), "%s{%s} = %g, want %g", name,    \
                      labels, got_, (double)(want));                           \
    } while (0)

/* Every label key of every sample of `name` is one of `keys`. */
static size_t
check_label_keys(const struct scrape *sc, const char *name,
                 const char *const *keys, size_t nkeys)
{
    size_t found = 0;
    for (size_t i = 0; i < sc->n; i++) {
        if (strcmp(sc->s[i].name, name) != 0) {
            continue;
        }
        found++;
        char copy[256];
        snprintf(copy, sizeof(copy), "%s", sc->s[i].labels);
        size_t seen = 0;
        for (char *kv = strtok(copy, ","); kv != NULL; kv = strtok(NULL, ",")) {
            char *eq = strchr(kv, '=');
            ck_assert_msg(eq != NULL && eq[1] == '"', "%s{%s}", name,
                          sc->s[i].labels);
            *eq = '\0';
            bool known = false;
            for (size_t k = 0; k < nkeys; k++) {
                known |= strcmp(kv, keys[k]) == 0;
            }
            ck_assert_msg(known, "%s has label %s", name, kv);
            seen++;
        }
        ck_assert_msg(seen == nkeys, "%s{%s}: %zu labels, want %zu", name,
                      sc->s[i].labels, seen, nkeys);
    }
    return found;
}

/* Every histogram: per label set (le removed), buckets in order never
 * decrease and end with +Inf equal to _count. Returns the series seen. */
static size_t
check_histograms(const struct scrape *sc)
{
    size_t series = 0;
    for (size_t i = 0; i < sc->n; i++) {
        const struct sample *s = &sc->s[i];
        size_t ln = strlen(s->name);
        if (ln < 7 || strcmp(s->name + ln - 7, "_bucket") != 0) {
            continue;
        }
        char *le = strstr(s->labels, "le=\"");
        ck_assert_ptr_nonnull(le);
        bool first = i == 0 || strcmp(sc->s[i - 1].name, s->name) != 0 ||
                     strncmp(sc->s[i - 1].labels, s->labels,
                             (size_t)(le - s->labels)) != 0;
        if (!first) {
            ck_assert_msg(s->value >= sc->s[i - 1].value, "%s{%s} decreases",
                          s->name, s->labels);
            continue;
        }
        /* walk this series to its +Inf bucket, then _sum and _count */
        size_t k = i;
        while (k + 1 < sc->n && strcmp(sc->s[k + 1].name, s->name) == 0 &&
               strncmp(sc->s[k + 1].labels, s->labels,
                       (size_t)(le - s->labels)) == 0) {
            k++;
        }
        ck_assert_msg(strstr(sc->s[k].labels, "le=\"+Inf\"") != NULL,
                      "%s{%s}: last bucket is not +Inf", s->name, s->labels);
        char base[128], want[256];
        snprintf(base, sizeof(base), "%.*s", (int)(ln - 7), s->name);
        /* the label set without le (le is printed last) */
        size_t keep = (size_t)(le - s->labels);
        snprintf(want, sizeof(want), "%.*s", (int)(keep > 0 ? keep - 1 : 0),
                 s->labels);
        char cname[160], sname[160];
        snprintf(cname, sizeof(cname), "%s_count", base);
        snprintf(sname, sizeof(sname), "%s_sum", base);
        CK_VAL(sc, cname, want, sc->s[k].value);
        ck_assert_msg(get(sc, sname, want) >= 0, "%s{%s} missing", sname, want);
        series++;
    }
    return series;
}

/* ---- traffic ----------------------------------------------------------- */

static void
get_status(const char *host, int want)
{
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.port, host, "/m", &r), 1);
    ck_assert_msg(r.status == want, "%s: %d, want %d", host, r.status, want);
    sw_test_resp_free(&r);
}

static void
ws_echo(struct sw_test_ws *ws, size_t n)
{
    ck_assert(sw_test_ws_send_pattern(ws, true, SW_WS_OP_BINARY, 0, n));
    struct sw_test_ws_msg m;
    ck_assert_int_eq(sw_test_ws_recv_msg(ws, &m, WAIT_MS), 1);
    ck_assert_uint_eq(m.len, n);
    sw_test_ws_msg_free(&m);
}

/* Wait (bounded) until the relays have all ended on the gateway's side. */
static void
wait_ws_idle(void)
{
    long long active = -1;
    for (int i = 0; i < 200; i++) {
        active = sw_test_metric(gw.admin_port, "shockwave_ws_sessions_active");
        if (active == 0) {
            return;
        }
        sw_test_sleep_ms(25);
    }
    ck_abort_msg("ws_sessions_active stays %lld", active);
}

/* promtool must exist: scripts/deps.sh installs it (Debian prometheus). */
static void
promtool_check(const char *text)
{
    char *out = NULL;
    char *which[] = {"/bin/sh", "-c", "command -v promtool", NULL};
    int rc = sw_test_run(which, WAIT_MS, &out);
    free(out);
    ck_assert_msg(rc == 0, "promtool is not installed: run scripts/deps.sh "
                           "(Debian package prometheus)");
    char path[512];
    snprintf(path, sizeof(path), "%s/metrics.txt", sw_test_tmpdir());
    ck_assert(sw_test_write_file(path, text));
    char cmd[640];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s'", path);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    rc = sw_test_run(argv, WAIT_MS, &out);
    ck_assert_msg(rc == 0 && (out == NULL || out[0] == '\0'),
                  "promtool check metrics: exit %d:\n%s", rc,
                  out != NULL ? out : "");
    free(out);
}

/* The ring's counters: on io_uring the relayed messages went through it
 * (each 10-byte echo is one receive and one send at each end: the client
 * waits for it before the next); on epoll there is no ring. */
static void
ring_counted(struct scrape *sc)
{
    static const char *const names[] = {
        "shockwave_io_uring_enters_total",
        "shockwave_io_uring_submissions_total",
        "shockwave_io_uring_receive_completions_total",
        "shockwave_io_uring_send_completions_total",
        "shockwave_io_uring_splices_total",
        "shockwave_io_uring_receives_starved_total",
        "shockwave_io_uring_lingered_closes_total",
        "shockwave_io_uring_accepts_total",
        "shockwave_io_uring_connects_total",
        "shockwave_io_uring_closes_total"};
    bool ring = sw_test_on_io_uring();
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        double v = get(sc, names[i], "");
        ck_assert_msg(v >= 0, "%s missing", names[i]);
        if (!ring) {
            ck_assert_msg(v == 0, "%s = %g on epoll", names[i], v);
        }
    }
    if (ring) {
        double small = 5; /* ws_sizes[] of 10 bytes */
        ck_assert_double_ge(
            get(sc, "shockwave_io_uring_receive_completions_total", ""),
            2 * small);
        ck_assert_double_ge(
            get(sc, "shockwave_io_uring_send_completions_total", ""),
            2 * small);
        ck_assert_double_gt(get(sc, "shockwave_io_uring_enters_total", ""), 0);
        /* the 100,000-byte frames left through IORING_OP_SPLICE */
        ck_assert_double_gt(get(sc, "shockwave_io_uring_splices_total", ""),
                            0);
        /* every client connection came through the ring's accept */
        ck_assert_double_eq(get(sc, "shockwave_io_uring_accepts_total", ""),
                            get(sc, "shockwave_client_connections_total", ""));
    }
}

START_TEST(traffic_counted_exactly)
{
    struct sw_test_conn keep[N_KEEP];
    struct sw_test_ws ws[N_WS];
    for (int i = 0; i < N_API; i++) {
        get_status("app.example", 200);
    }
    for (int i = 0; i < N_TEA; i++) {
        get_status("tea.example", 418);
    }
    for (int i = 0; i < N_MOVED; i++) {
        get_status("old.example", 301);
    }
    for (int i = 0; i < N_NOROUTE; i++) {
        get_status("nowhere.example", 404);
    }
    for (int i = 0; i < N_FAIL; i++) {
        get_status("fail.example", 502);
    }
    for (int i = 0; i < N_KEEP; i++) {
        struct sw_test_resp r;
        ck_assert(sw_test_conn_open(&keep[i], gw.port));
        ck_assert_int_eq(sw_test_conn_request(&keep[i],
                                              "GET /k HTTP/1.1\r\n"
                                              "Host: app.example\r\n\r\n",
                                              &r),
                         1);
        ck_assert_int_eq(r.status, 200);
        sw_test_resp_free(&r);
    }
    for (int i = 0; i < N_WS; i++) {
        int st = sw_test_ws_open(&ws[i], gw.port, "ws.example", "/ws", NULL);
        ck_assert_msg(st == 101, "upgrade %d: %d", i, st);
    }
    uint64_t bytes = 0;
    for (size_t i = 0; i < N_MSGS; i++) {
        ws_echo(&ws[0], ws_sizes[i]);
        bytes += ws_sizes[i];
    }

    /* While the keep-alive clients and the sessions are open. */
    struct scrape mid = scrape();
    CK_VAL(&mid, "shockwave_ws_sessions_active", "route=\"ws\"", N_WS);
    CK_VAL(&mid, "shockwave_client_connections_active", "", N_KEEP + N_WS);
    double w0 =
        get(&mid, "shockwave_worker_connections_active", "worker=\"0\"");
    double w1 =
        get(&mid, "shockwave_worker_connections_active", "worker=\"1\"");
    ck_assert_msg(w0 + w1 == N_KEEP + N_WS, "workers %g + %g", w0, w1);
    /* SO_REUSEPORT spreads 20 connections: both workers have some (all on
     * one has odds of 2^-19) */
    ck_assert_msg(w0 > 0 && w1 > 0, "workers %g and %g", w0, w1);
    scrape_free(&mid);

    for (int i = 0; i < N_WS; i++) {
        ck_assert_int_eq(sw_test_ws_close_handshake(&ws[i], 1000, WAIT_MS),
                         1000);
        sw_test_ws_free(&ws[i]);
    }
    for (int i = 0; i < N_KEEP; i++) {
        sw_test_conn_close(&keep[i]);
    }
    wait_ws_idle();

    char *text = sw_test_metrics_fetch(gw.admin_port);
    promtool_check(text);
    struct scrape sc;
    parse(&sc, text);
    char server[64], echo[128], dead[128];
    snprintf(server, sizeof(server), "127.0.0.1:%d", be_port);
    snprintf(echo, sizeof(echo), "upstream=\"echo\",server=\"%s\"", server);
    snprintf(dead, sizeof(dead), "upstream=\"dead\",server=\"127.0.0.1:%d\"",
             dead_port);

    /* label sets as documented */
    static const char *const rc_keys[] = {"route", "code"};
    ck_assert_uint_eq(
        check_label_keys(&sc, "shockwave_http_responses_total", rc_keys, 2),
        6 * 5); /* _unmatched, api, ws, moved, teapot, 4: five classes */
    static const char *const close_keys[] = {"route", "code", "by"};
    ck_assert_uint_eq(
        check_label_keys(&sc, "shockwave_ws_closes_total", close_keys, 3), 1);
    static const char *const srv_keys[] = {"upstream", "server"};
    ck_assert_uint_eq(
        check_label_keys(&sc, "shockwave_upstream_server_up", srv_keys, 2), 2);
    static const char *const code_keys[] = {"code"};
    ck_assert_uint_eq(check_label_keys(&sc,
                                       "shockwave_http_responses_by_code_total",
                                       code_keys, 1),
                      6); /* 101 200 301 404 418 502 */

    /* HTTP, per route and class */
    int n_ok = N_API + N_KEEP;
    int n_req = n_ok + N_TEA + N_MOVED + N_NOROUTE + N_FAIL + N_WS;
    CK_VAL(&sc, "shockwave_http_requests_total", "", n_req);
    CK_VAL(&sc, "shockwave_http_responses_total", "route=\"api\",code=\"2xx\"",
           n_ok);
    CK_VAL(&sc, "shockwave_http_responses_total", "route=\"api\",code=\"5xx\"",
           0);
    CK_VAL(&sc, "shockwave_http_responses_total", "route=\"ws\",code=\"1xx\"",
           N_WS);
    CK_VAL(&sc, "shockwave_http_responses_total",
           "route=\"moved\",code=\"3xx\"", N_MOVED);
    CK_VAL(&sc, "shockwave_http_responses_total",
           "route=\"teapot\",code=\"4xx\"", N_TEA);
    CK_VAL(&sc, "shockwave_http_responses_total", "route=\"4\",code=\"5xx\"",
           N_FAIL);
    CK_VAL(&sc, "shockwave_http_responses_total",
           "route=\"_unmatched\",code=\"4xx\"", N_NOROUTE);
    CK_VAL(&sc, "shockwave_http_responses_by_code_total", "code=\"200\"", n_ok);
    CK_VAL(&sc, "shockwave_http_responses_by_code_total", "code=\"101\"", N_WS);
    CK_VAL(&sc, "shockwave_http_responses_by_code_total", "code=\"502\"",
           N_FAIL);
    CK_VAL(&sc, "shockwave_http_request_duration_seconds_count",
           "route=\"api\"", n_ok);
    CK_VAL(&sc, "shockwave_http_request_duration_seconds_count", "route=\"ws\"",
           N_WS);
    CK_VAL(&sc, "shockwave_http_request_duration_seconds_count",
           "route=\"_unmatched\"", N_NOROUTE);
    CK_VAL(&sc, "shockwave_http_requests_active", "route=\"api\"", 0);
    /* one connection per request: Connection: close, or held open */
    CK_VAL(&sc, "shockwave_client_connections_total", "", n_req);

    /* upstream servers */
    CK_VAL(&sc, "shockwave_upstream_requests_total", echo, n_ok + N_WS);
    double connects = get(&sc, "shockwave_upstream_connects_total", echo);
    double reused = get(&sc, "shockwave_upstream_reused_total", echo);
    ck_assert_msg(connects >= 1 && connects + reused == n_ok + N_WS,
                  "connects %g + reused %g", connects, reused);
    CK_VAL(&sc, "shockwave_upstream_connect_duration_seconds_count", echo,
           connects);
    CK_VAL(&sc, "shockwave_upstream_first_byte_seconds_count", echo,
           n_ok + N_WS);
    {
        char lab[192];
        snprintf(lab, sizeof(lab), "%s,code=\"2xx\"", echo);
        CK_VAL(&sc, "shockwave_upstream_responses_total", lab, n_ok);
        snprintf(lab, sizeof(lab), "%s,code=\"1xx\"", echo);
        CK_VAL(&sc, "shockwave_upstream_responses_total", lab, N_WS);
    }
    CK_VAL(&sc, "shockwave_upstream_failures_total", echo, 0);
    CK_VAL(&sc, "shockwave_upstream_failures_total", dead, N_FAIL);
    CK_VAL(&sc, "shockwave_upstream_connects_total", dead, N_FAIL);
    CK_VAL(&sc, "shockwave_upstream_server_up", echo, 1);
    CK_VAL(&sc, "shockwave_upstream_server_up", dead, 0);

    /* WebSocket: sessions, closes, sizes both ways */
    CK_VAL(&sc, "shockwave_ws_sessions_total", "route=\"ws\"", N_WS);
    CK_VAL(&sc, "shockwave_ws_sessions_active", "route=\"ws\"", 0);
    CK_VAL(&sc, "shockwave_ws_closes_total",
           "route=\"ws\",code=\"1000\",by=\"client\"", N_WS);
    CK_VAL(&sc, "shockwave_ws_session_duration_seconds_count", "route=\"ws\"",
           N_WS);
    static const char *const dirs[] = {"client_to_upstream",
                                       "upstream_to_client"};
    for (int d = 0; d < 2; d++) {
        char lab[128], le[160];
        snprintf(lab, sizeof(lab), "route=\"ws\",direction=\"%s\"", dirs[d]);
        CK_VAL(&sc, "shockwave_ws_message_size_bytes_count", lab, N_MSGS);
        CK_VAL(&sc, "shockwave_ws_message_size_bytes_sum", lab, bytes);
        snprintf(le, sizeof(le), "%s,le=\"64\"", lab);
        CK_VAL(&sc, "shockwave_ws_message_size_bytes_bucket", le, 5);
        snprintf(le, sizeof(le), "%s,le=\"1024\"", lab);
        CK_VAL(&sc, "shockwave_ws_message_size_bytes_bucket", le, 8);
        snprintf(le, sizeof(le), "%s,le=\"65536\"", lab);
        CK_VAL(&sc, "shockwave_ws_message_size_bytes_bucket", le, 8);
        snprintf(le, sizeof(le), "%s,le=\"262144\"", lab);
        CK_VAL(&sc, "shockwave_ws_message_size_bytes_bucket", le, 10);
    }
    CK_VAL(&sc, "shockwave_ws_messages_total", "", 2 * N_MSGS);
    /* large payloads: spliced, or with the kernel relay redirected */
    ck_assert_double_gt(
        get(&sc, sw_test_kernel_relay() ? "shockwave_ws_kernel_relay_bytes_total"
                                        : "shockwave_ws_spliced_bytes_total",
            ""),
        0);
    ring_counted(&sc);

    /* process-wide gauges */
    CK_VAL(&sc, "shockwave_workers", "", 2);
    CK_VAL(&sc, "shockwave_conf_generation", "", 1);
    CK_VAL(&sc, "shockwave_conf_last_reload_success", "", 1);
    CK_VAL(&sc, "shockwave_pipes_in_use", "", 0);
    ck_assert_double_gt(
        get(&sc, "shockwave_conf_last_reload_timestamp_seconds", ""), 1.6e9);
    ck_assert_double_gt(get(&sc, "shockwave_buffer_allocations_total", ""), 0);

    /* api carried no WebSocket: no message-size series for it */
    ck_assert_double_lt(get(&sc, "shockwave_ws_message_size_bytes_count",
                            "route=\"api\",direction=\"client_to_upstream\""),
                        0);
    ck_assert_uint_ge(check_histograms(&sc), 6 + 2 + 2 + 2 + 1);
    scrape_free(&sc);
}
END_TEST

/* The series of a route follow its name across a reload, whatever its
 * position; a new name starts at zero; a removed route's stay, frozen; a
 * session of the old configuration counts into the series it began with. */
START_TEST(reload_keeps_series_by_name)
{
    for (int i = 0; i < 3; i++) {
        get_status("app.example", 200);
    }
    get_status("tea.example", 418);
    /* a session that starts before the reload and ends after it */
    struct sw_test_ws ws;
    ck_assert_int_eq(sw_test_ws_open(&ws, gw.port, "ws.example", "/ws", NULL),
                     101);
    ws_echo(&ws, 10);
    long mark = sw_test_proc_log_size(&gw.proc);
    ck_assert(sw_test_gw_render(&gw, "metrics_reload.conf", vars()));
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert(sw_test_proc_wait_log(&gw.proc, "reloaded", mark, 5000) >= 0);
    get_status("app.example", 200);
    get_status("new.example", 200);
    get_status("tea.example", 404); /* its route is gone */
    ws_echo(&ws, 10);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
    wait_ws_idle();
    struct scrape sc = scrape();
    CK_VAL(&sc, "shockwave_ws_sessions_total", "route=\"ws\"", 1);
    CK_VAL(&sc, "shockwave_ws_closes_total",
           "route=\"ws\",code=\"1000\",by=\"client\"", 1);
    CK_VAL(&sc, "shockwave_ws_message_size_bytes_count",
           "route=\"ws\",direction=\"upstream_to_client\"", 2);
    CK_VAL(&sc, "shockwave_http_responses_total", "route=\"api\",code=\"2xx\"",
           4);
    CK_VAL(&sc, "shockwave_http_responses_total",
           "route=\"fresh\",code=\"2xx\"", 1);
    CK_VAL(&sc, "shockwave_http_responses_total",
           "route=\"_unmatched\",code=\"4xx\"", 1);
    /* the removed route's series stay, frozen */
    CK_VAL(&sc, "shockwave_http_responses_total",
           "route=\"teapot\",code=\"4xx\"", 1);
    CK_VAL(&sc, "shockwave_conf_generation", "", 2);
    CK_VAL(&sc, "shockwave_conf_reloads_total", "", 1);
    scrape_free(&sc);
}
END_TEST

static Suite *
metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("exposition");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, traffic_counted_exactly);
    tcase_add_test(tc, reload_keeps_series_by_name);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(metrics_suite());
}
