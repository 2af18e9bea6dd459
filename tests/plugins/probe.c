/*
 * probe.c - a test plugin that uses every hook and accessor of plugin.h,
 * so that tests/integration/plugin_test.c can see each one work through
 * the real daemon. Built three times (tests/meson.build): as it is, with
 * another ABI major (refused at load) and with a newer ABI minor and a
 * larger descriptor (accepted).
 *
 * Directives (all optional):
 *   answer PATH STATUS BODY     on_request answers requests for PATH
 *   answer_header NAME VALUE    a header on that answer
 *   set_header NAME VALUE       request header toward the upstream
 *   remove_header NAME          request header dropped
 *   resp_header NAME VALUE      response header toward the client
 *   pick INDEX                  on_upstream_pick's choice
 *   close_on TEXT               a client message TEXT: close 4001
 *   drop_on TEXT                a client message TEXT: dropped
 *   log_field KEY VALUE         on_log adds KEY=VALUE
 *   fail_configure MESSAGE      configure refuses, at this directive
 *   skip_frames                 this route needs no on_ws_message
 */
#include <shockwave/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PROBE_ABI_MAJOR
#define PROBE_ABI_MAJOR SW_PLUGIN_ABI_MAJOR
#endif
#ifndef PROBE_ABI_MINOR
#define PROBE_ABI_MINOR SW_PLUGIN_ABI_MINOR
#endif

struct probe_route {
    const char *answer_path;
    unsigned answer_status;
    const char *answer_body;
    const char *answer_hname;
    const char *answer_hvalue;
    const char *set_name;
    const char *set_value;
    const char *remove_name;
    const char *resp_name;
    const char *resp_value;
    int pick;
    const char *close_on;
    const char *drop_on;
    const char *log_key;
    const char *log_value;
    int c_requests;
    int c_upgrades;
    int c_opens;
    int c_closes;
    int c_frames;
    int c_picks;
};

struct probe_worker {
    unsigned long requests; /* on this worker */
};

struct probe_conn {
    unsigned long requests; /* on this connection */
    unsigned long frames;   /* client frames seen */
};

static const char *
arg_of(struct sw_plugin_conf *pc, const char *name, size_t j)
{
    ssize_t i = sw_plugin_conf_find(pc, name);
    return i >= 0 ? sw_plugin_conf_arg(pc, (size_t)i, j) : NULL;
}

static int
configure(struct sw_plugin_conf *pc, void **route_state)
{
    ssize_t fail = sw_plugin_conf_find(pc, "fail_configure");
    if (fail >= 0) {
        return sw_plugin_conf_error(pc, (size_t)fail, "%s",
                                    sw_plugin_conf_arg(pc, (size_t)fail, 0));
    }
    struct probe_route *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return SW_ENOMEM;
    }
    if (sw_plugin_conf_find(pc, "skip_frames") >= 0) {
        sw_plugin_conf_skip_frames(pc);
    }
    r->answer_path = arg_of(pc, "answer", 0);
    const char *st = arg_of(pc, "answer", 1);
    r->answer_status = st != NULL ? (unsigned)atoi(st) : 0;
    r->answer_body = arg_of(pc, "answer", 2);
    r->answer_hname = arg_of(pc, "answer_header", 0);
    r->answer_hvalue = arg_of(pc, "answer_header", 1);
    r->set_name = arg_of(pc, "set_header", 0);
    r->set_value = arg_of(pc, "set_header", 1);
    r->remove_name = arg_of(pc, "remove_header", 0);
    r->resp_name = arg_of(pc, "resp_header", 0);
    r->resp_value = arg_of(pc, "resp_header", 1);
    const char *pick = arg_of(pc, "pick", 0);
    r->pick = pick != NULL ? atoi(pick) : -1;
    r->close_on = arg_of(pc, "close_on", 0);
    r->drop_on = arg_of(pc, "drop_on", 0);
    r->log_key = arg_of(pc, "log_field", 0);
    r->log_value = arg_of(pc, "log_field", 1);
    r->c_requests = sw_plugin_conf_counter(pc, "requests_total", "Requests.");
    r->c_upgrades = sw_plugin_conf_counter(pc, "upgrades_total", "Upgrades.");
    r->c_opens = sw_plugin_conf_counter(pc, "ws_opens_total", "Opens.");
    r->c_closes = sw_plugin_conf_counter(pc, "ws_closes_total", "Closes.");
    r->c_frames = sw_plugin_conf_counter(pc, "ws_frames_total", "Frames.");
    r->c_picks = sw_plugin_conf_counter(pc, "picks_total", "Picks.");
    if (r->c_requests < 0 ||
        sw_plugin_conf_counter(pc, "Bad-Name", "") != SW_EINVAL) {
        free(r);
        return sw_plugin_conf_error(pc, (size_t)-1, "counters misbehave");
    }
    *route_state = r;
    return SW_OK;
}

static void
unconfigure(void *route_state)
{
    free(route_state);
}

static int
worker_start(unsigned id, void **worker_state)
{
    (void)id;
    *worker_state = calloc(1, sizeof(struct probe_worker));
    return *worker_state != NULL ? SW_OK : SW_ENOMEM;
}

static void
worker_stop(unsigned id, void *worker_state)
{
    (void)id;
    free(worker_state);
}

static struct sw_str
cs(const char *s)
{
    return (struct sw_str){s, strlen(s)};
}

static bool
str_is(struct sw_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

static int
on_request(struct sw_plugin_ctx *ctx)
{
    struct probe_route *r = sw_plugin_route_state(ctx);
    struct probe_worker *w = sw_plugin_worker_state(ctx);
    struct probe_conn *c = sw_plugin_conn_state(ctx);
    sw_plugin_count(ctx, r->c_requests, 1);
    w->requests++;
    c->requests++;
    if (r->answer_path != NULL &&
        str_is(sw_plugin_req_path(ctx), r->answer_path)) {
        if (r->answer_hname != NULL) {
            sw_plugin_respond_header(ctx, r->answer_hname,
                                     cs(r->answer_hvalue));
        }
        sw_plugin_log(ctx, 2, "answering %u for %s", r->answer_status,
                      r->answer_path);
        if (sw_plugin_respond(ctx, r->answer_status, cs(r->answer_body)) !=
            SW_OK) {
            return -1; /* the gateway answers 500 */
        }
        return SW_PLUGIN_ANSWERED;
    }
    /* what the request looks like, as the upstream will see it */
    char buf[256];
    struct sw_str v;
    snprintf(buf, sizeof(buf), "%lu", c->requests);
    sw_plugin_req_set_header(ctx, "X-Probe-Conn-Requests", cs(buf));
    snprintf(buf, sizeof(buf), "%lu", w->requests);
    sw_plugin_req_set_header(ctx, "X-Probe-Worker-Requests", cs(buf));
    struct sw_str m = sw_plugin_req_method(ctx);
    struct sw_str q = sw_plugin_req_query(ctx);
    struct sw_str h = sw_plugin_req_host(ctx);
    struct sw_str ra = sw_plugin_remote_addr(ctx);
    struct sw_str rn = sw_plugin_route_name(ctx);
    snprintf(buf, sizeof(buf),
             "%.*s %.*s q=%.*s host=%.*s from=%.*s route=%.*s first=%d",
             (int)m.len, m.p, (int)sw_plugin_req_path(ctx).len,
             sw_plugin_req_path(ctx).p, (int)q.len, q.p, (int)h.len, h.p,
             (int)ra.len, ra.p, (int)rn.len, rn.p, sw_plugin_req_is_first(ctx));
    sw_plugin_req_set_header(ctx, "X-Probe-Seen", cs(buf));
    if (sw_plugin_req_arg(ctx, "who", &v)) {
        sw_plugin_req_add_header(ctx, "X-Probe-Arg", v);
    }
    if (sw_plugin_req_cookie(ctx, "sid", &v)) {
        sw_plugin_req_add_header(ctx, "X-Probe-Cookie", v);
    }
    if (sw_plugin_req_header(ctx, "X-Probe-In", &v)) {
        sw_plugin_var_set(ctx, "probe_in", v);
    }
    if (r->set_name != NULL) {
        sw_plugin_req_set_header(ctx, r->set_name, cs(r->set_value));
    }
    if (r->remove_name != NULL) {
        sw_plugin_req_remove_header(ctx, r->remove_name);
    }
    if (r->resp_name != NULL) {
        sw_plugin_resp_add_header(ctx, r->resp_name, cs(r->resp_value));
    }
    /* a bad header name is refused, not written */
    if (sw_plugin_req_set_header(ctx, "Bad Name", cs("x")) != SW_EINVAL ||
        sw_plugin_req_set_header(ctx, "X-Ok", cs("a\r\nInjected: 1")) !=
            SW_EINVAL) {
        return -1;
    }
    return SW_PLUGIN_CONTINUE;
}

static int
on_upgrade(struct sw_plugin_ctx *ctx)
{
    struct probe_route *r = sw_plugin_route_state(ctx);
    sw_plugin_count(ctx, r->c_upgrades, 1);
    struct sw_str v;
    if (sw_plugin_var_get(ctx, "probe_in", &v)) {
        sw_plugin_req_set_header(ctx, "X-Probe-Var", v);
    }
    sw_plugin_req_set_header(ctx, "X-Probe-Upgrade",
                             cs(sw_plugin_req_is_upgrade(ctx) ? "yes" : "no"));
    return SW_PLUGIN_CONTINUE;
}

static int
on_upstream_pick(struct sw_plugin_ctx *ctx)
{
    struct probe_route *r = sw_plugin_route_state(ctx);
    if (r->pick < 0 || (size_t)r->pick >= sw_plugin_upstream_count(ctx)) {
        return SW_DECLINED;
    }
    sw_plugin_count(ctx, r->c_picks, 1);
    struct sw_str s = sw_plugin_upstream_server(ctx, (size_t)r->pick);
    sw_plugin_log(ctx, 3, "picking %.*s", (int)s.len, s.p);
    return r->pick;
}

static void
on_ws_open(struct sw_plugin_ctx *ctx)
{
    struct probe_route *r = sw_plugin_route_state(ctx);
    sw_plugin_count(ctx, r->c_opens, 1);
}

static void
on_ws_close(struct sw_plugin_ctx *ctx)
{
    struct probe_route *r = sw_plugin_route_state(ctx);
    sw_plugin_count(ctx, r->c_closes, 1);
    sw_plugin_log(ctx, 2, "ws closed with %u", sw_plugin_ws_close_code(ctx));
}

static int
on_ws_message(struct sw_plugin_ctx *ctx)
{
    struct probe_route *r = sw_plugin_route_state(ctx);
    struct probe_conn *c = sw_plugin_conn_state(ctx);
    sw_plugin_count(ctx, r->c_frames, 1);
    if (sw_plugin_ws_dir(ctx) != SW_PLUGIN_WS_FROM_CLIENT) {
        return SW_PLUGIN_CONTINUE;
    }
    c->frames++;
    char text[128];
    ssize_t n = sw_plugin_ws_payload(ctx, 0, text, sizeof(text) - 1);
    if (n < 0 || !sw_plugin_ws_first(ctx) || !sw_plugin_ws_fin(ctx) ||
        sw_plugin_ws_compressed(ctx) || sw_plugin_ws_opcode(ctx) != 1 ||
        sw_plugin_ws_frame_len(ctx) != (uint64_t)n) {
        return SW_PLUGIN_CONTINUE;
    }
    text[n] = '\0';
    if (r->close_on != NULL && strcmp(text, r->close_on) == 0) {
        sw_plugin_ws_close(ctx, 4001, "probe");
        return SW_PLUGIN_CLOSE;
    }
    if (r->drop_on != NULL && strcmp(text, r->drop_on) == 0) {
        return SW_PLUGIN_DROP;
    }
    return SW_PLUGIN_CONTINUE;
}

static void
on_log(struct sw_plugin_ctx *ctx)
{
    struct probe_route *r = sw_plugin_route_state(ctx);
    if (r->log_key != NULL) {
        sw_plugin_log_field(ctx, r->log_key, cs(r->log_value));
    }
}

static const struct sw_plugin_directive directives[] = {
    {"answer", 3, 3, false},      {"answer_header", 2, 2, false},
    {"set_header", 2, 2, false},  {"remove_header", 1, 1, false},
    {"resp_header", 2, 2, false}, {"pick", 1, 1, false},
    {"close_on", 1, 1, false},    {"drop_on", 1, 1, false},
    {"log_field", 2, 2, false},   {"fail_configure", 1, 1, false},
    {"skip_frames", 0, 0, false}, {NULL, 0, 0, false},
};

/* A descriptor of a newer minor is larger: fields this gateway does not
 * know follow the ones it does. */
struct probe_descriptor {
    struct sw_plugin d;
    void *future[4];
};

static const struct probe_descriptor probe = {
    .d =
        {
            .abi_major = PROBE_ABI_MAJOR,
            .abi_minor = PROBE_ABI_MINOR,
            .size = PROBE_ABI_MINOR > SW_PLUGIN_ABI_MINOR
                        ? sizeof(struct probe_descriptor)
                        : sizeof(struct sw_plugin),
            .name = "probe",
            .version = "1.0",
            .directives = directives,
            .conn_state_size = sizeof(struct probe_conn),
            .configure = configure,
            .unconfigure = unconfigure,
            .on_worker_start = worker_start,
            .on_worker_stop = worker_stop,
            .on_request = on_request,
            .on_upgrade = on_upgrade,
            .on_upstream_pick = on_upstream_pick,
            .on_ws_open = on_ws_open,
            .on_ws_close = on_ws_close,
            .on_ws_message = on_ws_message,
            .on_log = on_log,
        },
};

SW_PLUGIN_DEFINE(probe.d)
