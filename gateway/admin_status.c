/*
 * admin_status.c - the status page of the admin listener, on the main
 * thread:
 *
 *   GET /status       gateway/status.html, compiled in (status_html.c is
 *                     generated from it at build time: gateway/embed.py),
 *                     which fetches /status.json every second and renders
 *                     it; no external assets
 *   GET /status.json  the same data: totals summed over the workers'
 *                     counters, errors by class, routes, upstreams and
 *                     their servers with the health checker's view, the
 *                     last reload; rates are computed by the page from two
 *                     samples (time_ms is in every answer)
 *
 * Borrows the gateway (current snapshot, workers' counters, checker).
 * Counter names never appear here: totals are read by SW_METRIC_* id.
 */
#include "gateway.h"
#include "json.h"

#include <shockwave/metrics.h>

#include <time.h>

/* status_html.c (generated) */
extern const char sw_gateway_status_html[];
extern const size_t sw_gateway_status_html_len;

/* Every worker's counters merged: globals, routes by name, servers. The
 * names stay borrowed from the workers (alive while g runs). */
static enum sw_status
view_workers(const struct sw_gateway *g, struct sw_metrics_view *v)
{
    sw_metrics_view_init(v);
    enum sw_status st = SW_OK;
    for (unsigned i = 0; i < g->nworkers && st == SW_OK; i++) {
        st = sw_metrics_view_add(v, sw_worker_metrics(g->workers[i].w));
    }
    return st;
}

/* Responses with a status in [lo, hi]. */
static uint64_t
status_sum(const struct sw_metrics *m, unsigned lo, unsigned hi)
{
    uint64_t n = 0;
    for (unsigned s = lo; s <= hi && s < SW_METRICS_STATUS_MAX; s++) {
        n += m->status[s];
    }
    return n;
}

static void
json_totals(struct sw_json *j, const struct sw_metrics_view *v)
{
    const struct sw_metrics *m = &v->globals;
    uint64_t ws_active = 0, ws_total = 0, connects = 0, failures = 0;
    for (size_t i = 0; i < v->nroutes; i++) {
        ws_active += v->routes[i].sum.ws_sessions_active;
        ws_total += v->routes[i].sum.ws_sessions_total;
    }
    for (size_t i = 0; i < v->nservers; i++) {
        connects += v->servers[i].sum.connects;
        failures += v->servers[i].sum.failures;
    }
    static const struct {
        const char *key;
        enum sw_metric id;
    } totals[] = {
        {"connections_active", SW_METRIC_CLIENT_CONNECTIONS_ACTIVE},
        {"connections_total", SW_METRIC_CLIENT_CONNECTIONS_TOTAL},
        {"requests_total", SW_METRIC_HTTP_REQUESTS_TOTAL},
        {"ws_sessions_parked", SW_METRIC_WS_SESSIONS_PARKED},
        {"ws_messages_total", SW_METRIC_WS_MESSAGES_TOTAL},
        {"ws_frames_total", SW_METRIC_WS_FRAMES_TOTAL},
        {"bytes_from_clients_total", SW_METRIC_BYTES_FROM_CLIENTS},
        {"bytes_to_clients_total", SW_METRIC_BYTES_TO_CLIENTS},
    };
    sw_json_obj_open(j, "totals");
    for (size_t i = 0; i < SW_NELEMS(totals); i++) {
        sw_json_u64(j, totals[i].key, m->counters[totals[i].id]);
    }
    sw_json_u64(j, "ws_sessions_active", ws_active);
    sw_json_u64(j, "ws_sessions_total", ws_total);
    sw_json_u64(j, "upstream_connects_total", connects);
    sw_json_obj_close(j);
    static const struct {
        const char *key;
        enum sw_metric id;
    } errors[] = {
        {"connections_refused", SW_METRIC_CLIENT_CONNECTIONS_REFUSED},
        {"upstream_retries", SW_METRIC_UPSTREAM_RETRIES_TOTAL},
        {"ws_protocol_errors", SW_METRIC_WS_PROTOCOL_ERRORS},
        {"ws_handshakes_rejected", SW_METRIC_WS_HANDSHAKE_REJECTED},
        {"ws_peer_lost", SW_METRIC_WS_PEER_LOST},
        {"out_of_memory", SW_METRIC_OUT_OF_MEMORY},
    };
    sw_json_obj_open(j, "errors");
    sw_json_u64(j, "http_4xx", status_sum(m, 400, 499));
    sw_json_u64(j, "http_5xx", status_sum(m, 500, 599));
    sw_json_u64(j, "http_502", status_sum(m, 502, 502));
    sw_json_u64(j, "http_504", status_sum(m, 504, 504));
    sw_json_u64(j, "upstream_failures", failures);
    for (size_t i = 0; i < SW_NELEMS(errors); i++) {
        sw_json_u64(j, errors[i].key, m->counters[errors[i].id]);
    }
    sw_json_obj_close(j);
}

/* The merged series of the route named `name`, or NULL (no traffic yet). */
static const struct sw_metrics_route *
route_series(const struct sw_metrics_view *v, struct sw_str name)
{
    for (size_t i = 0; i < v->nroutes; i++) {
        if (strlen(v->routes[i].name) == name.len &&
            memcmp(v->routes[i].name, name.p, name.len) == 0) {
            return &v->routes[i].sum;
        }
    }
    return NULL;
}

static void
json_routes(struct sw_json *j, const struct sw_conf *cf,
            const struct sw_metrics_view *v)
{
    sw_json_arr_open(j, "routes");
    for (size_t i = 0; i < cf->nroutes; i++) {
        const struct sw_conf_route *r = &cf->routes[i];
        sw_json_obj_open(j, NULL);
        sw_json_u64(j, "index", r->index);
        sw_json_u64(j, "line", r->line);
        sw_json_arr_open(j, "hosts");
        for (size_t k = 0; k < r->nhosts; k++) {
            sw_json_str(j, NULL, r->hosts[k].p, r->hosts[k].len);
        }
        sw_json_arr_close(j);
        sw_json_str(j, "path_prefix", r->path_prefix.p, r->path_prefix.len);
        sw_json_u64(j, "header_matches", r->nheaders);
        if (r->upstream != NULL) {
            sw_json_str(j, "upstream", r->upstream->name.p,
                        r->upstream->name.len);
        } else {
            sw_json_null(j, "upstream");
        }
        sw_json_u64(j, "return_status", (uint64_t)r->return_status);
        sw_json_bool(j, "websocket", r->websocket);
        sw_json_str(j, "name", r->name.p, r->name.len);
        const struct sw_metrics_route *m = route_series(v, r->name);
        uint64_t answered = 0;
        for (size_t c = 0; m != NULL && c < SW_METRICS_CLASSES; c++) {
            answered += m->responses[c];
        }
        sw_json_u64(j, "responses_total", answered);
        sw_json_u64(j, "requests_active", m != NULL ? m->requests_active : 0);
        sw_json_u64(j, "ws_sessions_active",
                    m != NULL ? m->ws_sessions_active : 0);
        sw_json_obj_close(j);
    }
    sw_json_arr_close(j);
}

static const char *
check_type_name(enum sw_conf_check_type t)
{
    switch (t) {
    case SW_CONF_CHECK_TCP:
        return "tcp";
    case SW_CONF_CHECK_WEBSOCKET:
        return "websocket";
    case SW_CONF_CHECK_HTTP:
    default:
        return "http";
    }
}

static const char *
balance_name(enum sw_conf_balance b)
{
    switch (b) {
    case SW_CONF_BALANCE_LEAST_CONN:
        return "least_conn";
    case SW_CONF_BALANCE_HASH:
        return "hash";
    case SW_CONF_BALANCE_ROUND_ROBIN:
    default:
        return "round_robin";
    }
}

static void
json_check(struct sw_json *j, const struct sw_conf_health_check *hc)
{
    if (!hc->enabled) {
        sw_json_null(j, "health_check");
        return;
    }
    sw_json_obj_open(j, "health_check");
    sw_json_cstr(j, "type", check_type_name(hc->type));
    sw_json_u64(j, "interval_ms", hc->interval_ms);
    sw_json_u64(j, "timeout_ms", hc->timeout_ms);
    if (hc->type != SW_CONF_CHECK_TCP) {
        sw_json_str(j, "path", hc->path.p, hc->path.len);
    }
    if (hc->type == SW_CONF_CHECK_HTTP) {
        char expect[16];
        snprintf(expect, sizeof(expect), "%u-%u", hc->expect_lo, hc->expect_hi);
        sw_json_cstr(j, "expect", expect);
    }
    sw_json_u64(j, "fall", hc->fall);
    sw_json_u64(j, "rise", hc->rise);
    sw_json_obj_close(j);
}

static void
json_server(struct sw_json *j, const struct sw_gateway *g,
            const struct sw_conf_server *s)
{
    struct sw_health_view v;
    sw_health_server_view(g->health, s, &v);
    sw_json_obj_open(j, NULL);
    sw_json_str(j, "address", s->text.p, s->text.len);
    sw_json_u64(j, "weight", s->weight);
    sw_json_bool(j, "backup", s->backup);
    sw_json_bool(j, "tls", s->tls);
    sw_json_cstr(j, "state", v.up ? "up" : "down");
    sw_json_bool(j, "checked", v.checked);
    sw_json_cstr(j, "last_check", v.last_result);
    sw_json_u64(j, "last_check_ms", v.last_check_ms);
    sw_json_u64(j, "last_change_ms", v.last_change_ms);
    sw_json_u64(j, "checks_ok", v.checks_ok);
    sw_json_u64(j, "checks_failed", v.checks_failed);
    sw_json_u64(j, "run", v.run);
    sw_json_u64(j, "passive_downs", v.passive_downs);
    sw_json_obj_close(j);
}

static void
json_upstreams(struct sw_json *j, const struct sw_gateway *g)
{
    const struct sw_conf *cf = g->cf;
    sw_json_arr_open(j, "upstreams");
    for (size_t i = 0; i < cf->nupstreams; i++) {
        const struct sw_conf_upstream *u = &cf->upstreams[i];
        sw_json_obj_open(j, NULL);
        sw_json_str(j, "name", u->name.p, u->name.len);
        sw_json_cstr(j, "balance", balance_name(u->balance));
        json_check(j, &u->hc);
        size_t up = 0;
        sw_json_arr_open(j, "servers");
        for (size_t k = 0; k < u->nservers; k++) {
            up += sw_upstream_server_is_up(&u->servers[k]) ? 1 : 0;
            json_server(j, g, &u->servers[k]);
        }
        sw_json_arr_close(j);
        sw_json_u64(j, "servers_up", up);
        sw_json_obj_close(j);
    }
    sw_json_arr_close(j);
}

static void
json_build(struct sw_json *j, const struct sw_gateway *g)
{
    struct sw_metrics_view v;
    if (view_workers(g, &v) != SW_OK) {
        j->failed = true;
    }
    uint64_t now = sw_wall_ms();
    sw_json_obj_open(j, NULL);
    sw_json_cstr(j, "version", SW_VERSION);
    sw_json_u64(j, "time_ms", now);
    sw_json_u64(j, "started_ms", g->started_ms);
    sw_json_u64(j, "workers", g->nworkers);
    sw_json_obj_open(j, "config");
    sw_json_str(j, "path", g->cf->path.p, g->cf->path.len);
    sw_json_u64(j, "generation", g->cf->generation);
    sw_json_u64(j, "reloads", g->reloads);
    sw_json_u64(j, "reload_failures", g->reload_failures);
    sw_json_u64(j, "last_reload_ms", g->last_reload_ms);
    sw_json_cstr(j, "last_reload_result",
                 g->last_reload_ms == 0 ? "none"
                 : g->last_reload_ok    ? "ok"
                                        : "failed");
    sw_json_obj_close(j);
    json_totals(j, &v);
    json_routes(j, g->cf, &v);
    json_upstreams(j, g);
    sw_json_obj_close(j);
    sw_metrics_view_fini(&v);
}

void
sw_gateway_status_json(struct sw_gateway *g, int fd)
{
    struct sw_json j;
    sw_json_init(&j);
    json_build(&j, g);
    sw_gateway_admin_answer_json(fd, 200, "OK", &j);
    sw_json_fini(&j);
}

void
sw_gateway_status_page(struct sw_gateway *g, int fd)
{
    SW_UNUSED(g);
    sw_gateway_admin_answer(fd, 200, "OK", "text/html; charset=utf-8",
                            sw_gateway_status_html, sw_gateway_status_html_len);
}
