/*
 * plugin_test.c - lib/plugin without the daemon: the edit room and what
 * the session writes from it, the request accessors over a parsed head,
 * log fields, close codes, value parsers, and binding a snapshot to the
 * probe plugin (tests/plugins/probe.c, path in SW_PROBE) with its errors.
 */
#include "../../lib/plugin/plugin_int.h"
#include "support.h"

#include <check.h>
#include <shockwave/ws.h>
#include <stdlib.h>

static struct sw_buf_pool pool;
static struct sw_metrics metrics;
static struct sw_plugin_worker pw;
static struct sw_plugin_chain chain;

static void
setup(void)
{
    sw_buf_pool_init(&pool, 16384, 4);
    memset(&metrics, 0, sizeof(metrics));
    sw_plugin_worker_init(&pw, 0, &metrics);
    memset(&chain, 0, sizeof(chain));
}

static void
teardown(void)
{
    sw_plugin_worker_fini(&pw);
    sw_buf_pool_fini(&pool);
}

/* What the writer holds, NUL-terminated. */
static const char *
written(struct sw_http_writer *w)
{
    ck_assert(!w->overflow && w->len < w->cap);
    w->p[w->len] = '\0';
    return w->p;
}

START_TEST(edits_set_add_remove)
{
    struct sw_plugin_sess *s =
        sw_plugin_sess_new(&pw, &chain, "10.0.0.1", 7, SW_STR("r"));
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(
        sw__plugin_room_put(s, ROOM_REQ_SET, SW_STR("X-User"), SW_STR("alice")),
        SW_OK);
    ck_assert_int_eq(
        sw__plugin_room_put(s, ROOM_REQ_ADD, SW_STR("X-Tag"), SW_STR("a")),
        SW_OK);
    ck_assert_int_eq(
        sw__plugin_room_put(s, ROOM_REQ_REMOVE, SW_STR("Cookie"), SW_STR("")),
        SW_OK);
    /* a later set of the same name wins over the first */
    ck_assert_int_eq(
        sw__plugin_room_put(s, ROOM_REQ_SET, SW_STR("x-user"), SW_STR("bob")),
        SW_OK);
    ck_assert_int_eq(
        sw__plugin_room_put(s, ROOM_RESP_ADD, SW_STR("X-Out"), SW_STR("1")),
        SW_OK);
    ck_assert(sw_plugin_edits_drop(s, SW_STR("X-USER")));
    ck_assert(sw_plugin_edits_drop(s, SW_STR("cookie")));
    ck_assert(!sw_plugin_edits_drop(s, SW_STR("X-Tag"))); /* add keeps */
    char out[512];
    struct sw_http_writer w;
    sw_http_writer_init(&w, out, sizeof(out));
    sw_plugin_edits_write(s, &w);
    ck_assert_str_eq(written(&w), "X-Tag: a\r\nx-user: bob\r\n");
    sw_http_writer_init(&w, out, sizeof(out));
    sw_plugin_resp_write(s, &w);
    ck_assert_str_eq(written(&w), "X-Out: 1\r\n");
    /* the room goes back to the pool and the edits with it */
    sw_plugin_request_end(s);
    ck_assert(!sw_plugin_edits_drop(s, SW_STR("X-User")));
    sw_plugin_sess_free(s);
}
END_TEST

START_TEST(room_kept_only_for_response_headers)
{
    struct sw_plugin_sess *s =
        sw_plugin_sess_new(&pw, &chain, "10.0.0.1", 7, SW_STR("r"));
    ck_assert_int_eq(
        sw__plugin_room_put(s, ROOM_REQ_SET, SW_STR("X-A"), SW_STR("1")),
        SW_OK);
    sw_plugin_request_sent(s); /* request edits only: the room goes back */
    ck_assert_ptr_null(s->room);
    ck_assert_uint_eq(pw.rooms.nused, 0);
    ck_assert_int_eq(
        sw__plugin_room_put(s, ROOM_RESP_ADD, SW_STR("X-B"), SW_STR("2")),
        SW_OK);
    sw_plugin_request_sent(s); /* a response header: kept for the head */
    ck_assert_ptr_nonnull(s->room);
    sw_plugin_request_end(s);
    ck_assert_uint_eq(pw.rooms.nused, 0);
    sw_plugin_sess_free(s);
}
END_TEST

START_TEST(room_is_bounded)
{
    struct sw_plugin_sess *s =
        sw_plugin_sess_new(&pw, &chain, "10.0.0.1", 7, SW_STR("r"));
    char big[600];
    memset(big, 'v', sizeof(big));
    int st = SW_OK;
    int n = 0;
    while (st == SW_OK && n < 100) {
        st = sw__plugin_room_put(s, ROOM_REQ_ADD, SW_STR("X-Big"),
                                 (struct sw_str){big, sizeof(big)});
        n++;
    }
    ck_assert_int_eq(st, SW_ETOOBIG);
    /* 4 KiB of edits: six of these fit, the seventh does not */
    ck_assert_int_eq(n, SW__PLUGIN_ROOM / (int)(sizeof(big) + 5 + 8) + 1);
    /* an answer's body is not counted in the edits' room */
    ck_assert_int_eq(sw__plugin_room_put(s, ROOM_ANS_BODY, SW_STR(""),
                                         (struct sw_str){big, sizeof(big)}),
                     SW_OK);
    sw_plugin_sess_free(s);
}
END_TEST

/* A context over a real parsed head, as the session builds it. */
struct req_rig {
    struct sw_http_header hdrs[16];
    struct sw_http_request r;
    struct sw_plugin_request rq;
    struct sw__plugin_loaded pl;
    struct sw__plugin_use use;
    struct sw_plugin_sess *s;
    struct sw_plugin_ctx ctx;
};

static void
rig_init(struct req_rig *g, const char *head)
{
    memset(g, 0, sizeof(*g));
    g->r.headers = g->hdrs;
    g->r.headers_cap = SW_NELEMS(g->hdrs);
    struct sw_http_limits lim = {
        .max_head = 8192, .max_request_line = 4096, .max_headers = 16};
    int status = 0;
    const char *why = NULL;
    ck_assert_int_eq(
        sw_http_request_decode(&g->r, head, strlen(head), &lim, &status, &why),
        SW_OK);
    g->rq = (struct sw_plugin_request){
        .r = &g->r, .path = g->r.path, .host = g->r.host};
    snprintf(g->pl.name, sizeof(g->pl.name), "t");
    g->use.pl = &g->pl;
    g->use.configured = true;
    g->s = sw_plugin_sess_new(&pw, &chain, "192.0.2.9", 1, SW_STR("api"));
    g->ctx = (struct sw_plugin_ctx){.s = g->s, .use = &g->use, .rq = &g->rq};
}

START_TEST(request_accessors)
{
    struct req_rig g;
    rig_init(&g, "GET /a/b?x=1&token=abc&flag HTTP/1.1\r\nHost: h.example\r\n"
                 "Cookie: a=1; jwt=e.y.j\r\nCookie: other=2\r\n"
                 "X-Key: k1\r\n\r\n");
    struct sw_str v;
    ck_assert(sw_plugin_req_arg(&g.ctx, "token", &v));
    ck_assert_int_eq(v.len, 3);
    ck_assert(memcmp(v.p, "abc", 3) == 0);
    ck_assert(sw_plugin_req_arg(&g.ctx, "flag", &v) && v.len == 0);
    ck_assert(!sw_plugin_req_arg(&g.ctx, "tok", &v));
    ck_assert(sw_plugin_req_cookie(&g.ctx, "jwt", &v));
    ck_assert(v.len == 5 && memcmp(v.p, "e.y.j", 5) == 0);
    ck_assert(sw_plugin_req_cookie(&g.ctx, "other", &v));
    ck_assert(!sw_plugin_req_cookie(&g.ctx, "b", &v));
    ck_assert(sw_plugin_req_header(&g.ctx, "x-key", &v) && v.len == 2);
    struct sw_str q = sw_plugin_req_query(&g.ctx);
    ck_assert(q.len == strlen("x=1&token=abc&flag"));
    ck_assert(sw_str_eq_ci(sw_plugin_req_method(&g.ctx), "GET"));
    ck_assert(sw_str_eq_ci(sw_plugin_remote_addr(&g.ctx), "192.0.2.9"));
    ck_assert(sw_str_eq_ci(sw_plugin_route_name(&g.ctx), "api"));
    /* variables: the last set wins */
    ck_assert_int_eq(sw_plugin_var_set(&g.ctx, "user", SW_STR("a")), SW_OK);
    ck_assert_int_eq(sw_plugin_var_set(&g.ctx, "user", SW_STR("b")), SW_OK);
    ck_assert(sw_plugin_var_get(&g.ctx, "user", &v) && v.len == 1 &&
              v.p[0] == 'b');
    ck_assert(!sw_plugin_var_get(&g.ctx, "nope", &v));
    /* fields that are not fields are refused */
    ck_assert_int_eq(sw_plugin_req_set_header(&g.ctx, "Bad Name", SW_STR("x")),
                     SW_EINVAL);
    ck_assert_int_eq(
        sw_plugin_req_set_header(&g.ctx, "X-A", SW_STR("a\r\nX-B: c")),
        SW_EINVAL);
    /* an answer: status range, headers joined in order */
    ck_assert_int_eq(sw_plugin_respond(&g.ctx, 99, SW_STR("")), SW_EINVAL);
    ck_assert_int_eq(
        sw_plugin_respond_header(&g.ctx, "WWW-Authenticate", SW_STR("Bearer")),
        SW_OK);
    ck_assert_int_eq(
        sw_plugin_respond_header(&g.ctx, "Retry-After", SW_STR("3")), SW_OK);
    ck_assert_int_eq(sw_plugin_respond(&g.ctx, 401, SW_STR("no\n")), SW_OK);
    struct sw_plugin_answer a;
    ck_assert(sw_plugin_sess_answer(g.s, &a));
    ck_assert_uint_eq(a.status, 401);
    ck_assert(a.body.len == 3 && memcmp(a.body.p, "no\n", 3) == 0);
    const char want[] = "WWW-Authenticate: Bearer\r\nRetry-After: 3\r\n";
    ck_assert_uint_eq(a.headers.len, sizeof(want) - 1);
    ck_assert(memcmp(a.headers.p, want, a.headers.len) == 0);
    sw_plugin_sess_free(g.s);
}
END_TEST

START_TEST(accessors_outside_their_hook)
{
    struct req_rig g;
    rig_init(&g, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    g.ctx.rq = NULL; /* a WebSocket hook: no request */
    struct sw_str v;
    ck_assert(!sw_plugin_req_header(&g.ctx, "Host", &v));
    ck_assert_uint_eq(sw_plugin_req_path(&g.ctx).len, 0);
    ck_assert_int_eq(sw_plugin_req_set_header(&g.ctx, "X-A", SW_STR("b")),
                     SW_EINVAL);
    ck_assert_int_eq(sw_plugin_respond(&g.ctx, 403, SW_STR("")), SW_EINVAL);
    ck_assert_int_eq(sw_plugin_ws_payload(&g.ctx, 0, &v, 1), SW_AGAIN);
    ck_assert_int_eq(sw_plugin_log_field(&g.ctx, "k", SW_STR("v")), SW_EINVAL);
    sw_plugin_sess_free(g.s);
}
END_TEST

START_TEST(ws_frames_and_close_codes)
{
    struct req_rig g;
    rig_init(&g, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    uint8_t mask[4] = {1, 2, 3, 4};
    uint8_t wire[5] = {'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1};
    struct sw_plugin_frame f = {.dir = SW_PLUGIN_WS_FROM_CLIENT,
                                .opcode = SW_WS_OP_TEXT,
                                .first = true,
                                .fin = true,
                                .len = 5,
                                .payload = wire,
                                .mask = mask};
    g.ctx.f = &f;
    char out[8];
    /* unmasked, from any offset */
    ck_assert_int_eq(sw_plugin_ws_payload(&g.ctx, 0, out, sizeof(out)), 5);
    ck_assert(memcmp(out, "hello", 5) == 0);
    ck_assert_int_eq(sw_plugin_ws_payload(&g.ctx, 3, out, 1), 1);
    ck_assert_int_eq(out[0], 'l');
    ck_assert_int_eq(sw_plugin_ws_payload(&g.ctx, 5, out, 1), 0);
    /* only codes an endpoint may send (RFC 6455 7.4) */
    sw_plugin_ws_close(&g.ctx, 4001, NULL);
    ck_assert_uint_eq(g.ctx.close_code, 4001);
    sw_plugin_ws_close(&g.ctx, 1006, NULL);
    ck_assert_uint_eq(g.ctx.close_code, SW_WS_CLOSE_POLICY);
    sw_plugin_ws_close(&g.ctx, 1005, NULL);
    ck_assert_uint_eq(g.ctx.close_code, SW_WS_CLOSE_POLICY);
    sw_plugin_sess_free(g.s);
}
END_TEST

START_TEST(log_fields)
{
    struct req_rig g;
    rig_init(&g, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    struct sw_plugin_log_fields f = {.n = 0};
    g.ctx.log = &f;
    ck_assert_int_eq(sw_plugin_log_field(&g.ctx, "user", SW_STR("alice")),
                     SW_OK);
    ck_assert_int_eq(sw_plugin_log_field(&g.ctx, "k2", SW_STR("v 2")), SW_OK);
    /* a line break would forge a log line */
    ck_assert_int_eq(sw_plugin_log_field(&g.ctx, "k3", SW_STR("a\nb")),
                     SW_EINVAL);
    char text[128];
    sw_plugin_log_fields_text(&f, text, sizeof(text));
    ck_assert_str_eq(text, " user=alice k2=v 2");
    for (int i = 2; i < SW_PLUGIN_LOG_FIELDS; i++) {
        ck_assert_int_eq(sw_plugin_log_field(&g.ctx, "k", SW_STR("v")), SW_OK);
    }
    ck_assert_int_eq(sw_plugin_log_field(&g.ctx, "k", SW_STR("v")), SW_ETOOBIG);
    sw_plugin_sess_free(g.s);
}
END_TEST

START_TEST(durations_and_sizes)
{
    uint64_t v;
    ck_assert_int_eq(sw_plugin_parse_duration("30s", &v), SW_OK);
    ck_assert_uint_eq(v, 30000);
    ck_assert_int_eq(sw_plugin_parse_duration("250ms", &v), SW_OK);
    ck_assert_uint_eq(v, 250);
    ck_assert_int_eq(sw_plugin_parse_duration("2", &v), SW_OK);
    ck_assert_uint_eq(v, 2000);
    ck_assert_int_eq(sw_plugin_parse_duration("1h", &v), SW_OK);
    ck_assert_uint_eq(v, 3600000);
    ck_assert_int_eq(sw_plugin_parse_duration("5x", &v), SW_EINVAL);
    ck_assert_int_eq(sw_plugin_parse_duration("", &v), SW_EINVAL);
    ck_assert_int_eq(sw_plugin_parse_duration("99999999999999999999s", &v),
                     SW_EINVAL);
    ck_assert_int_eq(sw_plugin_parse_size("64k", &v), SW_OK);
    ck_assert_uint_eq(v, 65536);
    ck_assert_int_eq(sw_plugin_parse_size("1m", &v), SW_OK);
    ck_assert_uint_eq(v, 1 << 20);
    ck_assert_int_eq(sw_plugin_parse_size("-1", &v), SW_EINVAL);
}
END_TEST

/* Bind a snapshot to the probe plugin; the errors text when it fails. */
static struct sw_conf *
bind_text(const char *body, char *err, size_t errlen, enum sw_status *st)
{
    const char *probe = getenv("SW_PROBE");
    ck_assert_ptr_nonnull(probe);
    char text[2048];
    snprintf(text, sizeof(text),
             "listen 127.0.0.1:1;\nload_plugin probe %s;\n%s", probe, body);
    struct sw_conf *cf = sw_conf_load_string(text, "t.conf", NULL, err, errlen);
    ck_assert_msg(cf != NULL, "%s", err);
    *st = sw_plugin_bind(cf, 2, "/nonexistent", err, errlen);
    return cf;
}

START_TEST(bind_checks_blocks_with_positions)
{
    char err[2048];
    enum sw_status st;
    struct sw_conf *cf = bind_text("route {\n  return 200 x;\n"
                                   "  plugin probe {\n    pick 1;\n"
                                   "    picks 2;\n    answer /a 401;\n  }\n}\n",
                                   err, sizeof(err), &st);
    ck_assert_int_eq(st, SW_EINVAL);
    ck_assert_msg(strstr(err, "t.conf:7:5: unknown directive \"picks\" in "
                              "plugin probe") != NULL,
                  "%s", err);
    ck_assert_msg(strstr(err, "t.conf:8:5: plugin probe: \"answer\" takes 3 "
                              "to 3 arguments, got 2") != NULL,
                  "%s", err);
    sw_conf_unref(cf);

    cf = bind_text("route {\n  return 200 x;\n  plugin probe {\n"
                   "    fail_configure \"no key\";\n  }\n}\n",
                   err, sizeof(err), &st);
    ck_assert_int_eq(st, SW_EINVAL);
    ck_assert_msg(strstr(err, "t.conf:6:5: plugin probe: no key") != NULL, "%s",
                  err);
    sw_conf_unref(cf);

    cf = bind_text("route {\n  return 200 x;\n  plugin probe { pick 0; }\n}\n",
                   err, sizeof(err), &st);
    ck_assert_msg(st == SW_OK, "%s", err);
    const struct sw_plugin_chain *ch = cf->routes[0].plugin_chain;
    ck_assert_ptr_nonnull(ch);
    ck_assert(sw_plugin_chain_has(ch, SW_PLUGIN_HOOK_WS_MESSAGE));
    ck_assert_uint_eq(ch->n, 1);
    ck_assert(ch->uses[0].configured);
    sw_conf_unref(cf); /* unconfigure runs: ASan sees the state freed */

    /* a route's use that needs no frames leaves the hook off its chain */
    cf = bind_text(
        "route {\n  return 200 x;\n  plugin probe { skip_frames; }\n}\n", err,
        sizeof(err), &st);
    ck_assert_msg(st == SW_OK, "%s", err);
    ck_assert(!sw_plugin_chain_has(cf->routes[0].plugin_chain,
                                   SW_PLUGIN_HOOK_WS_MESSAGE));
    ck_assert(sw_plugin_chain_has(cf->routes[0].plugin_chain,
                                  SW_PLUGIN_HOOK_WS_OPEN));
    sw_conf_unref(cf);
}
END_TEST

START_TEST(bind_refuses_another_major)
{
    const char *bad = getenv("SW_PROBE_BADABI");
    ck_assert_ptr_nonnull(bad);
    char text[1024];
    snprintf(text, sizeof(text),
             "listen 127.0.0.1:1;\n\nload_plugin probe %s;\n"
             "route { return 200 x; }\n",
             bad);
    char err[2048];
    struct sw_conf *cf =
        sw_conf_load_string(text, "t.conf", NULL, err, sizeof(err));
    ck_assert_ptr_nonnull(cf);
    ck_assert_int_eq(sw_plugin_bind(cf, 1, "/nonexistent", err, sizeof(err)),
                     SW_EINVAL);
    ck_assert_msg(strstr(err, "t.conf:3:1: load_plugin probe:") != NULL &&
                      strstr(err, "ABI major version mismatch (plugin ABI "
                                  "99.") != NULL,
                  "%s", err);
    sw_conf_unref(cf);
}
END_TEST

static Suite *
plugin_suite(void)
{
    Suite *s = suite_create("plugin");
    TCase *tc = tcase_create("host");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, edits_set_add_remove);
    tcase_add_test(tc, room_kept_only_for_response_headers);
    tcase_add_test(tc, room_is_bounded);
    tcase_add_test(tc, request_accessors);
    tcase_add_test(tc, accessors_outside_their_hook);
    tcase_add_test(tc, ws_frames_and_close_codes);
    tcase_add_test(tc, log_fields);
    tcase_add_test(tc, durations_and_sizes);
    tcase_add_test(tc, bind_checks_blocks_with_positions);
    tcase_add_test(tc, bind_refuses_another_major);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(plugin_suite());
}
