/*
 * health_test.c - Check suite for the health parts of lib/conf,
 * lib/upstream and lib/health that need no daemon: `health_check` and
 * `server ... backup` parsing (defaults, every option, every error with
 * its position), the pick with shared states (a down server is never
 * chosen, backups only when no primary is usable, NULL when the checks
 * hold everything down, today's fallback kept without states), the
 * state's reference count across snapshots (sw_health_apply carrying a
 * state by upstream name and address), and the status page's JSON writer
 * (gateway/json.c: escaping, commas, nesting).
 */
#include <shockwave/conf.h>
#include <shockwave/health.h>
#include <shockwave/log.h>
#include <shockwave/upstream.h>

#include "../../gateway/json.h"
#include "support.h"

#include <check.h>
#include <stdlib.h>

static char err[8192];

static struct sw_conf *
load(const char *text)
{
    return sw_conf_load_string(text, "t.conf", NULL, err, sizeof(err));
}

/* One upstream "u" with the given body, a listen and a route. */
static struct sw_conf *
load_up(const char *body)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "listen 127.0.0.1:8080;\nupstream u {\n%s}\n"
             "route { upstream u; }\n",
             body);
    return load(text);
}

START_TEST(test_health_check_defaults)
{
    struct sw_conf *cf = load_up("server 127.0.0.1:9000;\nhealth_check;\n");
    ck_assert_msg(cf != NULL, "%s", err);
    const struct sw_conf_health_check *hc = &cf->upstreams[0].hc;
    ck_assert(hc->enabled);
    ck_assert_int_eq(hc->type, SW_CONF_CHECK_HTTP);
    ck_assert_uint_eq(hc->interval_ms, 2000);
    ck_assert_uint_eq(hc->timeout_ms, 1000);
    ck_assert_str_eq(hc->path.p, "/healthz");
    ck_assert_uint_eq(hc->host.len, 0);
    ck_assert_uint_eq(hc->expect_lo, 200);
    ck_assert_uint_eq(hc->expect_hi, 399);
    ck_assert_uint_eq(hc->fall, 3);
    ck_assert_uint_eq(hc->rise, 2);
    ck_assert(!cf->upstreams[0].servers[0].backup);
    ck_assert_ptr_null(cf->upstreams[0].servers[0].state);
    sw_conf_unref(cf);

    cf = load_up("server 127.0.0.1:9000;\n");
    ck_assert(!cf->upstreams[0].hc.enabled);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_health_check_options)
{
    struct sw_conf *cf = load_up(
        "server 127.0.0.1:9000;\nserver 127.0.0.1:9001 backup weight=2;\n"
        "health_check type=websocket interval=150ms timeout=50ms path=/ws?x=1 "
        "host=api.internal expect=101 fall=1 rise=5;\n");
    ck_assert_msg(cf != NULL, "%s", err);
    const struct sw_conf_upstream *u = &cf->upstreams[0];
    ck_assert_int_eq(u->hc.type, SW_CONF_CHECK_WEBSOCKET);
    ck_assert_uint_eq(u->hc.interval_ms, 150);
    ck_assert_uint_eq(u->hc.timeout_ms, 50);
    ck_assert_str_eq(u->hc.path.p, "/ws?x=1");
    ck_assert_str_eq(u->hc.host.p, "api.internal");
    ck_assert_uint_eq(u->hc.expect_lo, 101);
    ck_assert_uint_eq(u->hc.expect_hi, 101);
    ck_assert_uint_eq(u->hc.fall, 1);
    ck_assert_uint_eq(u->hc.rise, 5);
    ck_assert(!u->servers[0].backup);
    ck_assert(u->servers[1].backup);
    ck_assert_uint_eq(u->servers[1].weight, 2);
    ck_assert_uint_eq(u->nbackups, 1);
    sw_conf_unref(cf);

    cf = load_up("server 127.0.0.1:9000;\nhealth_check type=tcp;\n");
    ck_assert_int_eq(cf->upstreams[0].hc.type, SW_CONF_CHECK_TCP);
    sw_conf_unref(cf);
}
END_TEST

static const struct {
    const char *body; /* inside upstream u { } (line 3 on) */
    const char *want; /* the error, with its position */
} bad[] = {
    {"server 127.0.0.1:9000;\nhealth_check type=udp;\n",
     "t.conf:4:19: \"type\" expects http, tcp or websocket"},
    {"server 127.0.0.1:9000;\nhealth_check expect=200-100;\n",
     "t.conf:4:21: \"expect\" wants a status or a range"},
    {"server 127.0.0.1:9000;\nhealth_check expect=99;\n",
     "t.conf:4:21: \"expect\" wants"},
    {"server 127.0.0.1:9000;\nhealth_check expect=2xx;\n",
     "t.conf:4:21: \"expect\" wants"},
    {"server 127.0.0.1:9000;\nhealth_check fall=0;\n", "t.conf:4:19: "},
    {"server 127.0.0.1:9000;\nhealth_check rise=101;\n", "t.conf:4:19: "},
    {"server 127.0.0.1:9000;\nhealth_check interval=1ms;\n", "t.conf:4:23: "},
    {"server 127.0.0.1:9000;\nhealth_check path=healthz;\n",
     "t.conf:4:19: \"path\" must start with \"/\""},
    {"server 127.0.0.1:9000;\nhealth_check host=a/b;\n",
     "t.conf:4:19: \"host\" must be a host name"},
    {"server 127.0.0.1:9000;\nhealth_check every=2s;\n",
     "t.conf:4:14: unknown option \"every=2s\" for \"health_check\""},
    {"server 127.0.0.1:9000;\nhealth_check;\nhealth_check;\n", "t.conf:5:1: "},
    {"server 127.0.0.1:9000 backup;\n",
     "every server is \"backup\"; at least one must not be"},
    {"server 127.0.0.1:9000 standby;\n",
     "unknown option \"standby\" for \"server\": expected weight=N, "
     "max_fails=N, fail_timeout=TIME, tls or backup"},
};

START_TEST(test_health_check_errors)
{
    for (size_t i = 0; i < SW_NELEMS(bad); i++) {
        struct sw_conf *cf = load_up(bad[i].body);
        ck_assert_msg(cf == NULL, "accepted: %s", bad[i].body);
        ck_assert_msg(strstr(err, bad[i].want) != NULL,
                      "case %zu: want \"%s\" in:\n%s", i, bad[i].want, err);
    }
}
END_TEST

/* ---- the pick with shared states ------------------------------------ */

struct fixture {
    struct sw_conf *cf;
    struct sw_upstream up;
    struct sw_metrics m;
};

static void
fixture_init(struct fixture *f, const char *body, bool states)
{
    memset(f, 0, sizeof(*f));
    f->cf = load_up(body);
    ck_assert_msg(f->cf != NULL, "%s", err);
    struct sw_conf_upstream *u = &f->cf->upstreams[0];
    for (size_t i = 0; states && i < u->nservers; i++) {
        u->servers[i].state = sw_upstream_state_new();
    }
    ck_assert_int_eq(sw_metrics_init(&f->m), SW_OK);
    ck_assert_int_eq(sw_upstream_init(&f->up, u, NULL, &f->m), SW_OK);
}

static void
fixture_fini(struct fixture *f)
{
    sw_upstream_fini(&f->up);
    sw_metrics_fini(&f->m);
    struct sw_conf_upstream *u = &f->cf->upstreams[0];
    for (size_t i = 0; i < u->nservers; i++) {
        sw_upstream_state_unref(u->servers[i].state);
        u->servers[i].state = NULL;
    }
    sw_conf_unref(f->cf);
}

static void
set_up(struct fixture *f, size_t i, bool up)
{
    atomic_store(&f->cf->upstreams[0].servers[i].state->up, up);
}

/* Which peers `rounds` picks choose, as a bit mask. */
static unsigned
picked(struct fixture *f, int rounds)
{
    unsigned mask = 0;
    for (int i = 0; i < rounds; i++) {
        struct sw_upstream_peer *p =
            sw_upstream_pick(&f->up, (struct sw_str){"k", 1}, 0);
        if (p != NULL) {
            mask |= 1u << p->index;
        }
    }
    return mask;
}

static const char *const balances[] = {"round_robin", "least_conn",
                                       "hash $remote_addr"};

START_TEST(test_pick_states_and_backup)
{
    for (size_t b = 0; b < SW_NELEMS(balances); b++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "server 127.0.0.1:9000;\nserver 127.0.0.1:9001;\n"
                 "server 127.0.0.1:9002 backup;\nbalance %s;\n",
                 balances[b]);
        struct fixture f;
        fixture_init(&f, body, true);
        /* all up: primaries only (round robin: both) */
        unsigned m = picked(&f, 8);
        ck_assert_msg(m != 0 && (m & 4u) == 0, "%s: %u", balances[b], m);
        ck_assert(b != 0 || m == 3u);
        /* one primary down: the other only */
        set_up(&f, 0, false);
        ck_assert_uint_eq(picked(&f, 8), 2u);
        /* both down: the backup */
        set_up(&f, 1, false);
        ck_assert_uint_eq(picked(&f, 8), 4u);
        /* everything down: nothing, at once */
        set_up(&f, 2, false);
        ck_assert_ptr_null(sw_upstream_pick(&f.up, (struct sw_str){"k", 1}, 0));
        /* a primary back: it, not the backup */
        set_up(&f, 2, true);
        set_up(&f, 1, true);
        ck_assert_uint_eq(picked(&f, 8), 2u);
        fixture_fini(&f);
    }
}
END_TEST

START_TEST(test_pick_passive_fallback)
{
    /* Without states (no health_check): every server passively down still
     * gives one to try, as before; with a backup, the backup first. */
    struct fixture f;
    fixture_init(&f,
                 "server 127.0.0.1:9000 max_fails=1;\n"
                 "server 127.0.0.1:9001 backup max_fails=1;\n",
                 false);
    sw_upstream_report(&f.up.peers[0], false);
    ck_assert_uint_eq(picked(&f, 4), 2u);
    sw_upstream_report(&f.up.peers[1], false);
    ck_assert_uint_eq(picked(&f, 4), 1u); /* last resort: the primary */
    /* tried peers are still skipped */
    ck_assert_ptr_null(sw_upstream_pick(&f.up, (struct sw_str){"k", 1}, 3ull));
    fixture_fini(&f);

    /* With states: a passively marked server is skipped while another is
     * up, and counted in the state. */
    fixture_init(&f,
                 "server 127.0.0.1:9000 max_fails=1;\n"
                 "server 127.0.0.1:9001;\n",
                 true);
    sw_upstream_report(&f.up.peers[0], false);
    ck_assert_uint_eq(picked(&f, 4), 2u);
    ck_assert_uint_eq(
        atomic_load(&f.cf->upstreams[0].servers[0].state->passive_downs), 1);
    /* active down beats passive: the passively marked one is the last
     * resort, the actively down one never */
    set_up(&f, 1, false);
    ck_assert_uint_eq(picked(&f, 4), 1u);
    fixture_fini(&f);
}
END_TEST

/* ---- sw_health_apply: states across snapshots ------------------------- */

START_TEST(test_apply_carries_states)
{
    struct event_base *base = event_base_new();
    struct sw_health *h = sw_health_new(base);
    ck_assert_ptr_nonnull(h);
    const char *one = "listen 127.0.0.1:8080;\n"
                      "upstream u { server 127.0.0.1:1; server 127.0.0.1:2; }\n"
                      "upstream v { server 127.0.0.1:1; }\n"
                      "route { upstream u; }\n";
    const char *two = "listen 127.0.0.1:8080;\n"
                      "upstream v { server 127.0.0.1:1; }\n"
                      "upstream u { server 127.0.0.1:2; server 127.0.0.1:3; }\n"
                      "route { upstream u; }\n";
    struct sw_conf *c1 = load(one);
    ck_assert_int_eq(sw_health_apply(h, c1), SW_OK);
    struct sw_upstream_state *u2 = c1->upstreams[0].servers[1].state;
    struct sw_upstream_state *v1 = c1->upstreams[1].servers[0].state;
    ck_assert_ptr_nonnull(u2);
    ck_assert_ptr_ne(c1->upstreams[0].servers[0].state, v1);
    atomic_store(&u2->up, false);
    struct sw_conf *c2 = load(two);
    ck_assert_int_eq(sw_health_apply(h, c2), SW_OK);
    /* same upstream and address: same state (and its verdict) */
    ck_assert_ptr_eq(c2->upstreams[1].servers[0].state, u2);
    ck_assert_ptr_eq(c2->upstreams[0].servers[0].state, v1);
    /* unchecked upstream: the state is set up again */
    ck_assert(atomic_load(&u2->up));
    ck_assert_ptr_ne(c2->upstreams[1].servers[1].state, u2);
    struct sw_health_view view;
    ck_assert(sw_health_server_view(h, &c2->upstreams[1].servers[1], &view));
    ck_assert(!view.checked && view.up);
    ck_assert(!sw_health_server_view(h, &c1->upstreams[0].servers[0], &view));
    sw_conf_unref(c1); /* the old snapshot's references go */
    sw_health_free(h); /* the checker's go */
    ck_assert_int_eq(atomic_load(&u2->refs), 1); /* c2's alone */
    sw_conf_unref(c2);
    event_base_free(base);
}
END_TEST

/* ---- the JSON writer ------------------------------------------------ */

START_TEST(test_json_writer)
{
    struct sw_json j;
    sw_json_init(&j);
    sw_json_obj_open(&j, NULL);
    sw_json_cstr(&j, "s", "a\"b\\c\n\t\x01\x7f\xc3\xa9");
    sw_json_u64(&j, "n", 18446744073709551615ull);
    sw_json_arr_open(&j, "a");
    sw_json_bool(&j, NULL, true);
    sw_json_null(&j, NULL);
    sw_json_obj_open(&j, NULL);
    sw_json_obj_close(&j);
    sw_json_arr_open(&j, NULL);
    sw_json_arr_close(&j);
    sw_json_str(&j, NULL, "x\0y", 3);
    sw_json_arr_close(&j);
    sw_json_double(&j, "d", 1.5);
    sw_json_obj_close(&j);
    ck_assert(!j.failed);
    ck_assert_str_eq(j.buf,
                     "{\"s\":\"a\\\"b\\\\c\\n\\t\\u0001\\u007f\\u00c3\\u00a9\","
                     "\"n\":18446744073709551615,"
                     "\"a\":[true,null,{},[],\"x\\u0000y\"],\"d\":1.500}");
    ck_assert_uint_eq(j.len, strlen(j.buf));
    sw_json_fini(&j);

    /* too deep or unbalanced: failed, never a crash */
    sw_json_init(&j);
    for (int i = 0; i < SW_JSON_DEPTH + 2; i++) {
        sw_json_arr_open(&j, NULL);
    }
    ck_assert(j.failed);
    sw_json_fini(&j);
    sw_json_init(&j);
    sw_json_obj_close(&j);
    ck_assert(j.failed);
    sw_json_fini(&j);
}
END_TEST

static Suite *
health_suite(void)
{
    Suite *s = suite_create("health");
    TCase *tc = tcase_create("health");
    tcase_add_test(tc, test_health_check_defaults);
    tcase_add_test(tc, test_health_check_options);
    tcase_add_test(tc, test_health_check_errors);
    tcase_add_test(tc, test_pick_states_and_backup);
    tcase_add_test(tc, test_pick_passive_fallback);
    tcase_add_test(tc, test_apply_carries_states);
    tcase_add_test(tc, test_json_writer);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    sw_log_init(2, SW_LOG_ERROR);
    return sw_test_run_suite(health_suite());
}
