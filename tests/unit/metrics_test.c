/*
 * metrics_test.c - Check suite for lib/metrics: the slot tables (names,
 * reuse, the overflow bound), histogram buckets, the merge of several
 * workers' blocks into one view (exact sums, slots met in any order), the
 * text exposition (one # HELP/# TYPE per family, label escaping, bucket
 * bounds as printed) and the route names the configuration gives.
 *
 * Each exposition check formats a view built by hand and looks for whole
 * sample lines in the text.
 */
#include <shockwave/conf.h>
#include <shockwave/metrics.h>

#include "support.h"

#include <check.h>

static struct sw_str
S(const char *s) {
    return (struct sw_str){s, strlen(s)};
}

/* The text of v's exposition (malloc'd). */
static char *
format(const struct sw_metrics_view *v)
{
    struct sw_metrics_out o = {0};
    ck_assert(sw_metrics_format(v, &o));
    ck_assert_ptr_nonnull(o.p);
    return o.p;
}

/* True when `line` (without its newline) is a whole line of text. */
static bool
has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0')) {
            return true;
        }
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    return false;
}

static size_t
count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p != NULL;
         p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

#define CK_LINE(text, line)                                                    \
    ck_assert_msg(has_line(text, line), "missing line: %s", line)

START_TEST(test_slots)
{
    struct sw_metrics m;
    ck_assert_int_eq(sw_metrics_init(&m), SW_OK);
    ck_assert_uint_eq(m.nroutes, 1);
    ck_assert_str_eq(m.unmatched->name, SW_METRICS_UNMATCHED);
    struct sw_metrics_route *a = sw_metrics_route_slot(&m, S("api"));
    struct sw_metrics_route *b = sw_metrics_route_slot(&m, S("ws"));
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    /* a reload naming the same route gets the same series */
    ck_assert_ptr_eq(sw_metrics_route_slot(&m, S("api")), a);
    struct sw_metrics_server *s1 =
        sw_metrics_server_slot(&m, S("feed"), S("10.0.0.1:9000"));
    struct sw_metrics_server *s2 =
        sw_metrics_server_slot(&m, S("feed"), S("10.0.0.2:9000"));
    struct sw_metrics_server *s3 =
        sw_metrics_server_slot(&m, S("other"), S("10.0.0.1:9000"));
    ck_assert_ptr_ne(s1, s2);
    ck_assert_ptr_ne(s1, s3);
    ck_assert_ptr_eq(sw_metrics_server_slot(&m, S("feed"), S("10.0.0.1:9000")),
                     s1);
    ck_assert_str_eq(s3->upstream, "other");
    ck_assert_str_eq(s3->server, "10.0.0.1:9000");
    sw_metrics_fini(&m);
}
END_TEST

START_TEST(test_slots_bounded)
{
    struct sw_metrics m;
    ck_assert_int_eq(sw_metrics_init(&m), SW_OK);
    char name[32];
    struct sw_metrics_route *first_over = NULL;
    for (int i = 0; i < SW_METRICS_MAX_ROUTES + 10; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        struct sw_metrics_route *r = sw_metrics_route_slot(&m, S(name));
        ck_assert_ptr_nonnull(r);
        if (strcmp(r->name, SW_METRICS_OVERFLOW) == 0) {
            if (first_over == NULL) {
                first_over = r;
                /* "_unmatched" plus MAX - 2 names fit, one slot stays
                 * for the overflow */
                ck_assert_int_eq(i, SW_METRICS_MAX_ROUTES - 2);
            }
            ck_assert_ptr_eq(r, first_over);
        }
    }
    ck_assert_ptr_nonnull(first_over);
    ck_assert_uint_eq(m.nroutes, SW_METRICS_MAX_ROUTES);
    /* names seen before the bound keep their own slot */
    ck_assert_str_eq(sw_metrics_route_slot(&m, S("r5"))->name, "r5");
    sw_metrics_fini(&m);
}
END_TEST

START_TEST(test_buckets)
{
    struct sw_metrics_hist h;
    memset(&h, 0, sizeof(h));
    const struct sw_metrics_buckets *b =
        &sw_metrics_buckets[SW_METRICS_H_WS_MESSAGE];
    ck_assert_uint_eq(b->le[0], 64);
    sw_metrics_observe(&h, SW_METRICS_H_WS_MESSAGE, 0);
    sw_metrics_observe(&h, SW_METRICS_H_WS_MESSAGE, 64);       /* le is <= */
    sw_metrics_observe(&h, SW_METRICS_H_WS_MESSAGE, 65);       /* next one */
    sw_metrics_observe(&h, SW_METRICS_H_WS_MESSAGE, 1u << 30); /* +Inf */
    ck_assert_uint_eq(h.bucket[0], 2);
    ck_assert_uint_eq(h.bucket[1], 1);
    ck_assert_uint_eq(h.bucket[b->n], 1);
    ck_assert_uint_eq(h.sum, 64 + 65 + (1u << 30));
    /* every kind's bounds ascend and fit */
    for (int k = 0; k < SW_METRICS_H_COUNT; k++) {
        const struct sw_metrics_buckets *kb = &sw_metrics_buckets[k];
        ck_assert_uint_gt(kb->n, 0);
        ck_assert_uint_le(kb->n, SW_METRICS_HIST_MAX);
        for (unsigned i = 1; i < kb->n; i++) {
            ck_assert_uint_gt(kb->le[i], kb->le[i - 1]);
        }
    }
}
END_TEST

START_TEST(test_close_codes_and_classes)
{
    ck_assert_str_eq(sw_metrics_close_label(sw_metrics_close_index(1000)),
                     "1000");
    ck_assert_str_eq(sw_metrics_close_label(sw_metrics_close_index(1011)),
                     "1011");
    ck_assert_str_eq(sw_metrics_close_label(sw_metrics_close_index(1004)),
                     "other");
    ck_assert_str_eq(sw_metrics_close_label(sw_metrics_close_index(4000)),
                     "other");
    ck_assert_uint_eq(sw_metrics_class(101), 0);
    ck_assert_uint_eq(sw_metrics_class(204), 1);
    ck_assert_uint_eq(sw_metrics_class(404), 3);
    ck_assert_uint_eq(sw_metrics_class(599), 4);
}
END_TEST

START_TEST(test_label_escaping)
{
    struct sw_metrics_out o = {0};
    sw_metrics_put_label(&o, "a\\b\"c\nd");
    ck_assert_str_eq(o.p, "a\\\\b\\\"c\\nd");
    free(o.p);
}
END_TEST

/* Two workers that met their routes in different orders, plus a route
 * only the second one has (a reload it adopted first). */
START_TEST(test_merge_exact)
{
    struct sw_metrics w0, w1;
    ck_assert_int_eq(sw_metrics_init(&w0), SW_OK);
    ck_assert_int_eq(sw_metrics_init(&w1), SW_OK);
    struct sw_metrics_route *a0 = sw_metrics_route_slot(&w0, S("api"));
    struct sw_metrics_route *b0 = sw_metrics_route_slot(&w0, S("ws"));
    struct sw_metrics_route *b1 = sw_metrics_route_slot(&w1, S("ws"));
    struct sw_metrics_route *a1 = sw_metrics_route_slot(&w1, S("api"));
    struct sw_metrics_route *n1 = sw_metrics_route_slot(&w1, S("new"));
    sw_metrics_store_add(&a0->responses[1], 3);
    sw_metrics_store_add(&a1->responses[1], 4);
    sw_metrics_store_add(&a1->responses[3], 1);
    sw_metrics_store_add(&b0->ws_sessions_total, 2);
    sw_metrics_store_add(&b1->ws_sessions_total, 5);
    sw_metrics_store_add(&n1->requests_active, 1);
    sw_metrics_store_add(&b0->ws_closes[0][0], 2);
    sw_metrics_store_add(&b1->ws_closes[0][0], 1);
    sw_metrics_store_add(&b1->ws_closes[sw_metrics_close_index(4000)][2], 1);
    for (int i = 0; i < 3; i++) {
        sw_metrics_observe(&a0->http_duration, SW_METRICS_H_HTTP_DURATION,
                           1500); /* 1.5 ms: the 0.0025 bucket */
    }
    sw_metrics_observe(&a1->http_duration, SW_METRICS_H_HTTP_DURATION,
                       2 * 60 * 1000000ull); /* past 60 s: +Inf */
    sw_metrics_observe(&b1->ws_msg[1], SW_METRICS_H_WS_MESSAGE, 100);
    sw_metrics_inc(&w0, SW_METRIC_HTTP_REQUESTS_TOTAL);
    sw_metrics_add(&w1, SW_METRIC_HTTP_REQUESTS_TOTAL, 7);
    sw_metrics_status(&w0, 200);
    sw_metrics_status(&w1, 200);
    sw_metrics_status(&w1, 404);
    sw_metrics_add(&w0, SW_METRIC_CLIENT_CONNECTIONS_ACTIVE, 2);
    sw_metrics_add(&w1, SW_METRIC_CLIENT_CONNECTIONS_ACTIVE, 3);
    struct sw_metrics_server *s0 =
        sw_metrics_server_slot(&w0, S("fe\"ed"), S("10.0.0.1:9000"));
    struct sw_metrics_server *s1 =
        sw_metrics_server_slot(&w1, S("fe\"ed"), S("10.0.0.1:9000"));
    sw_metrics_store_add(&s0->requests, 10);
    sw_metrics_store_add(&s1->requests, 20);
    sw_metrics_store_add(&s1->idle, 2);
    sw_metrics_observe(&s0->connect, SW_METRICS_H_CONNECT, 300);

    struct sw_metrics_view v;
    sw_metrics_view_init(&v);
    ck_assert_int_eq(sw_metrics_view_add(&v, &w0), SW_OK);
    ck_assert_int_eq(sw_metrics_view_add(&v, &w1), SW_OK);
    ck_assert_uint_eq(v.nroutes, 4); /* _unmatched, api, ws, new */
    ck_assert_uint_eq(v.nservers, 1);
    ck_assert_uint_eq(v.nworkers, 2);
    v.conf_generation = 3;
    char *t = format(&v);

    CK_LINE(t, "shockwave_http_requests_total 8");
    CK_LINE(t, "shockwave_client_connections_active 5");
    CK_LINE(t, "shockwave_worker_connections_active{worker=\"0\"} 2");
    CK_LINE(t, "shockwave_worker_connections_active{worker=\"1\"} 3");
    CK_LINE(t, "shockwave_http_responses_by_code_total{code=\"200\"} 2");
    CK_LINE(t, "shockwave_http_responses_by_code_total{code=\"404\"} 1");
    CK_LINE(t, "shockwave_http_responses_total{route=\"api\",code=\"2xx\"} 7");
    CK_LINE(t, "shockwave_http_responses_total{route=\"api\",code=\"4xx\"} 1");
    CK_LINE(t, "shockwave_http_responses_total{route=\"new\",code=\"2xx\"} 0");
    CK_LINE(t, "shockwave_http_requests_active{route=\"new\"} 1");
    CK_LINE(t, "shockwave_ws_sessions_total{route=\"ws\"} 7");
    CK_LINE(t, "shockwave_ws_closes_total{route=\"ws\",code=\"1000\","
               "by=\"client\"} 3");
    CK_LINE(t, "shockwave_ws_closes_total{route=\"ws\",code=\"other\","
               "by=\"gateway\"} 1");
    /* cumulative buckets, the bound printed in seconds */
    CK_LINE(t, "shockwave_http_request_duration_seconds_bucket{route=\"api\","
               "le=\"0.001\"} 0");
    CK_LINE(t, "shockwave_http_request_duration_seconds_bucket{route=\"api\","
               "le=\"0.0025\"} 3");
    CK_LINE(t, "shockwave_http_request_duration_seconds_bucket{route=\"api\","
               "le=\"60\"} 3");
    CK_LINE(t, "shockwave_http_request_duration_seconds_bucket{route=\"api\","
               "le=\"+Inf\"} 4");
    CK_LINE(t, "shockwave_http_request_duration_seconds_count{route=\"api\"}"
               " 4");
    CK_LINE(t, "shockwave_http_request_duration_seconds_sum{route=\"api\"}"
               " 120.0045");
    /* sizes in bytes, only for routes that carried WebSocket sessions */
    CK_LINE(t, "shockwave_ws_message_size_bytes_bucket{route=\"ws\","
               "direction=\"upstream_to_client\",le=\"16777216\"} 1");
    CK_LINE(t, "shockwave_ws_message_size_bytes_sum{route=\"ws\","
               "direction=\"upstream_to_client\"} 100");
    ck_assert_ptr_null(strstr(t, "ws_message_size_bytes_bucket{route=\"api\""));
    /* labels escaped */
    CK_LINE(t, "shockwave_upstream_requests_total{upstream=\"fe\\\"ed\","
               "server=\"10.0.0.1:9000\"} 30");
    CK_LINE(t, "shockwave_upstream_idle_connections{upstream=\"fe\\\"ed\","
               "server=\"10.0.0.1:9000\"} 2");
    CK_LINE(t, "shockwave_upstream_connect_duration_seconds_bucket{upstream="
               "\"fe\\\"ed\",server=\"10.0.0.1:9000\",le=\"0.0005\"} 1");
    CK_LINE(t, "shockwave_conf_generation 3");
    /* one HELP and one TYPE per family, TYPE before its samples */
    ck_assert_uint_eq(count(t, "# TYPE shockwave_http_responses_total "), 1);
    ck_assert_uint_eq(count(t, "# HELP shockwave_http_responses_total "), 1);
    ck_assert_uint_eq(
        count(t, "# TYPE shockwave_http_request_duration_seconds histogram"),
        1);
    const char *typed = strstr(t, "# TYPE shockwave_ws_sessions_total counter");
    const char *first = strstr(t, "shockwave_ws_sessions_total{");
    ck_assert(typed != NULL && first != NULL && typed < first);
    free(t);
    sw_metrics_view_fini(&v);
    sw_metrics_fini(&w0);
    sw_metrics_fini(&w1);
}
END_TEST

/* Every sample line is `shockwave_NAME[{k="v",...}] VALUE` and its family
 * was typed earlier. */
START_TEST(test_every_line_well_formed)
{
    struct sw_metrics m;
    ck_assert_int_eq(sw_metrics_init(&m), SW_OK);
    sw_metrics_route_slot(&m, S("r"));
    sw_metrics_server_slot(&m, S("u"), S("h:1"));
    struct sw_metrics_view v;
    sw_metrics_view_init(&v);
    ck_assert_int_eq(sw_metrics_view_add(&v, &m), SW_OK);
    char *t = format(&v);
    size_t samples = 0;
    for (char *line = strtok(t, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        if (line[0] == '#') {
            ck_assert(strncmp(line, "# HELP shockwave_", 17) == 0 ||
                      strncmp(line, "# TYPE shockwave_", 17) == 0);
            continue;
        }
        ck_assert_msg(strncmp(line, "shockwave_", 10) == 0, "%s", line);
        char *sp = strrchr(line, ' ');
        ck_assert_ptr_nonnull(sp);
        char *end = NULL;
        strtod(sp + 1, &end);
        ck_assert_msg(end != sp + 1 && *end == '\0', "value: %s", line);
        char *brace = strchr(line, '{');
        if (brace != NULL && brace < sp) {
            ck_assert_msg(sp[-1] == '}', "labels: %s", line);
        }
        samples++;
    }
    ck_assert_uint_gt(samples, 50);
    free(t);
    sw_metrics_view_fini(&v);
    sw_metrics_fini(&m);
}
END_TEST

/* ---- route names from the configuration -------------------------------- */

static char err[4096];

static struct sw_conf *
load(const char *routes)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "listen 127.0.0.1:8080;\n"
             "upstream a { server 127.0.0.1:9000; }\n%s",
             routes);
    return sw_conf_load_string(text, "m.conf", NULL, err, sizeof(err));
}

START_TEST(test_route_names)
{
    struct sw_conf *cf = load("route { upstream a; }\n"
                              "route { name api-v2.x:y/z; upstream a; }\n"
                              "route { return 204; }\n");
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_str_eq(cf->routes[0].name.p, "0");
    ck_assert_str_eq(cf->routes[1].name.p, "api-v2.x:y/z");
    ck_assert_str_eq(cf->routes[2].name.p, "2");
    sw_conf_unref(cf);

    /* a given name that equals another route's position */
    ck_assert_ptr_null(load("route { upstream a; }\n"
                            "route { name 0; return 204; }\n"));
    ck_assert_msg(strstr(err, "m.conf:4:14: route name \"0\" is already "
                              "used by the route at line 3") != NULL,
                  "%s", err);
    ck_assert_ptr_null(load("route { name x; upstream a; }\n"
                            "route { name x; return 204; }\n"));
    ck_assert_ptr_nonnull(strstr(err, "route name \"x\" is already used"));
    ck_assert_ptr_null(load("route { name _mine; upstream a; }\n"));
    ck_assert_ptr_nonnull(strstr(err, "are reserved"));
    ck_assert_ptr_null(load("route { name \"a b\"; upstream a; }\n"));
    ck_assert_ptr_nonnull(strstr(err, "invalid character in route name"));
    ck_assert_ptr_null(load("route { name \"\"; upstream a; }\n"));
    ck_assert_ptr_nonnull(strstr(err, "1 to 64 bytes"));
    ck_assert_ptr_null(load("route { name a; name b; upstream a; }\n"));
}
END_TEST

static Suite *
metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("slots");
    tcase_add_test(tc, test_slots);
    tcase_add_test(tc, test_slots_bounded);
    tcase_add_test(tc, test_buckets);
    tcase_add_test(tc, test_close_codes_and_classes);
    suite_add_tcase(s, tc);
    TCase *fm = tcase_create("format");
    tcase_add_test(fm, test_label_escaping);
    tcase_add_test(fm, test_merge_exact);
    tcase_add_test(fm, test_every_line_well_formed);
    suite_add_tcase(s, fm);
    TCase *cf = tcase_create("conf");
    tcase_add_test(cf, test_route_names);
    suite_add_tcase(s, cf);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(metrics_suite());
}
