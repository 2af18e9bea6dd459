/*
 * metrics_format.c - the Prometheus text exposition (format 0.0.4) of a
 * merged view: a pure function from a struct sw_metrics_view to text.
 *
 * Every family is printed once, "# HELP" and "# TYPE" first, then all of
 * its samples, so label sets of one family stay together as the format
 * asks. Names are "shockwave_" + snake_case, counters end in "_total",
 * durations are in seconds and sizes in bytes. Label values are escaped
 * (backslash, double quote, newline). See docs/metrics.md for the list.
 *
 * Owns nothing but the text buffer it grows; admin thread (any thread).
 */
#include <shockwave/metrics.h>

#include <stdarg.h>

#define PREFIX "shockwave_"

static const char *const class_labels[SW_METRICS_CLASSES] = {
    "1xx", "2xx", "3xx", "4xx", "5xx",
};

static const char *const dir_labels[SW_METRICS_DIRS] = {
    "client_to_upstream",
    "upstream_to_client",
};

static const char *const closer_labels[SW_METRICS_CLOSERS] = {
    "client",
    "upstream",
    "gateway",
};

/* ---- the text buffer ---------------------------------------------------- */

static bool
reserve(struct sw_metrics_out *o, size_t more)
{
    if (o->oom) {
        return false;
    }
    if (o->len + more + 1 <= o->cap) {
        return true;
    }
    size_t ncap = o->cap != 0 ? o->cap : 16384;
    while (ncap < o->len + more + 1) {
        ncap *= 2;
    }
    char *p = realloc(o->p, ncap);
    if (p == NULL) {
        o->oom = true;
        return false;
    }
    o->p = p;
    o->cap = ncap;
    return true;
}

bool
sw_metrics_printf(struct sw_metrics_out *o, const char *fmt, ...)
{
    for (int pass = 0; pass < 2; pass++) {
        size_t room = o->cap > o->len ? o->cap - o->len : 0;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(room > 0 ? o->p + o->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = true;
            return false;
        }
        if ((size_t)n < room) {
            o->len += (size_t)n;
            return true;
        }
        if (!reserve(o, (size_t)n)) {
            return false;
        }
    }
    return false;
}

static void
put_char(struct sw_metrics_out *o, char ch)
{
    if (reserve(o, 1)) {
        o->p[o->len++] = ch;
        o->p[o->len] = '\0';
    }
}

void
sw_metrics_put_label(struct sw_metrics_out *o, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '\\':
            sw_metrics_printf(o, "\\\\");
            break;
        case '"':
            sw_metrics_printf(o, "\\\"");
            break;
        case '\n':
            sw_metrics_printf(o, "\\n");
            break;
        default:
            put_char(o, *s);
            break;
        }
    }
}

void
sw_metrics_put_family(struct sw_metrics_out *o, const char *name,
                      const char *type, const char *help)
{
    sw_metrics_printf(o, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s %s\n",
                      name, help, name, type);
}

/* ---- samples ------------------------------------------------------------ */

/* Up to three label pairs; a NULL key ends the list. */
struct labels {
    const char *k[3]; /* borrowed: label names */
    const char *v[3]; /* borrowed: raw values (escaped when printed) */
};

static void
put_labels(struct sw_metrics_out *o, const struct labels *l, const char *le)
{
    bool any = false;
    for (int i = 0; i < 3 && l != NULL && l->k[i] != NULL; i++) {
        sw_metrics_printf(o, "%s%s=\"", any ? "," : "{", l->k[i]);
        sw_metrics_put_label(o, l->v[i]);
        put_char(o, '"');
        any = true;
    }
    if (le != NULL) {
        sw_metrics_printf(o, "%sle=\"%s\"", any ? "," : "{", le);
        any = true;
    }
    if (any) {
        put_char(o, '}');
    }
}

static void
sample(struct sw_metrics_out *o, const char *name, const char *suffix,
       const struct labels *l, uint64_t v)
{
    sw_metrics_printf(o, PREFIX "%s%s", name, suffix);
    put_labels(o, l, NULL);
    sw_metrics_printf(o, " %llu\n", (unsigned long long)v);
}

/* A bound or a sum in the exported unit: seconds keep six decimals at
 * most, bytes are integers. */
static void
unit_text(char *out, size_t n, uint64_t v, uint64_t per_unit)
{
    if (per_unit <= 1) {
        snprintf(out, n, "%llu", (unsigned long long)v);
        return;
    }
    snprintf(out, n, "%llu.%06llu", (unsigned long long)(v / per_unit),
             (unsigned long long)(v % per_unit));
    /* trim trailing zeros (and a bare point): "0.002500" -> "0.0025" */
    size_t len = strlen(out);
    while (len > 0 && out[len - 1] == '0') {
        out[--len] = '\0';
    }
    if (len > 0 && out[len - 1] == '.') {
        out[--len] = '\0';
    }
}

/* One histogram's samples: cumulative buckets, +Inf, _sum and _count. */
static void
hist(struct sw_metrics_out *o, const char *name, const struct labels *l,
     const struct sw_metrics_hist *h, enum sw_metrics_hist_kind kind)
{
    const struct sw_metrics_buckets *b = &sw_metrics_buckets[kind];
    uint64_t cum = 0;
    char le[48];
    for (unsigned i = 0; i <= b->n; i++) {
        cum += h->bucket[i];
        if (i < b->n) {
            unit_text(le, sizeof(le), b->le[i], b->per_unit);
        } else {
            snprintf(le, sizeof(le), "+Inf");
        }
        sw_metrics_printf(o, PREFIX "%s_bucket", name);
        put_labels(o, l, le);
        sw_metrics_printf(o, " %llu\n", (unsigned long long)cum);
    }
    char sum[48];
    unit_text(sum, sizeof(sum), h->sum, b->per_unit);
    sw_metrics_printf(o, PREFIX "%s_sum", name);
    put_labels(o, l, NULL);
    sw_metrics_printf(o, " %s\n", sum);
    sample(o, name, "_count", l, cum);
}

/* ---- families ----------------------------------------------------------- */

static void
globals(const struct sw_metrics_view *v, struct sw_metrics_out *o)
{
    static const struct {
        const char *name;
        const char *type;
        const char *help;
    } g[] = {
#define SW_METRIC_ROW(id, name, type, help) {name, #type, help},
        SW_METRICS(SW_METRIC_ROW)
#undef SW_METRIC_ROW
    };
    for (size_t i = 0; i < SW_NELEMS(g); i++) {
        sw_metrics_put_family(
            o, g[i].name, g[i].type[0] == 'C' ? "counter" : "gauge", g[i].help);
        sample(o, g[i].name, "", NULL, v->globals.counters[i]);
    }
    sw_metrics_put_family(o, "http_responses_by_code_total", "counter",
                          "HTTP responses sent to clients, by exact status "
                          "(codes seen so far).");
    for (unsigned s = 100; s < SW_METRICS_STATUS_MAX; s++) {
        if (v->globals.status[s] != 0) {
            char code[8];
            snprintf(code, sizeof(code), "%u", s);
            struct labels l = {{"code"}, {code}};
            sample(o, "http_responses_by_code_total", "", &l,
                   v->globals.status[s]);
        }
    }
}

/* A family with one series per slot: a counter or gauge (a uint64_t) or
 * a histogram, at `field` in the slot. */
struct family {
    const char *name;               /* without the prefix */
    const char *type;               /* "counter", "gauge", "histogram" */
    const char *help;               /* the # HELP text */
    size_t field;                   /* offsetof in the slot */
    enum sw_metrics_hist_kind kind; /* histograms: the buckets */
    bool ws_only;                   /* only routes that carried WebSocket */
};

static void
series(struct sw_metrics_out *o, const struct family *f, const struct labels *l,
       const void *slot)
{
    const char *at = (const char *)slot + f->field;
    if (strcmp(f->type, "histogram") == 0) {
        hist(o, f->name, l, (const struct sw_metrics_hist *)(const void *)at,
             f->kind);
    } else {
        uint64_t val;
        memcpy(&val, at, sizeof(val));
        sample(o, f->name, "", l, val);
    }
}

#define ROUTE_FIELD(f) offsetof(struct sw_metrics_route, f)
#define SERVER_FIELD(f) offsetof(struct sw_metrics_server, f)

static const struct family route_families[] = {
    {"http_requests_active", "gauge", "HTTP requests in flight, by route.",
     ROUTE_FIELD(requests_active), 0, false},
    {"http_request_duration_seconds", "histogram",
     "From a request head read to its answer queued in full, by route.",
     ROUTE_FIELD(http_duration), SW_METRICS_H_HTTP_DURATION, false},
    {"ws_sessions_total", "counter", "WebSocket sessions relayed, by route.",
     ROUTE_FIELD(ws_sessions_total), 0, false},
    {"ws_sessions_active", "gauge", "WebSocket sessions open now, by route.",
     ROUTE_FIELD(ws_sessions_active), 0, false},
    {"ws_session_duration_seconds", "histogram",
     "WebSocket session lifetimes, from the 101 to the end, by route.",
     ROUTE_FIELD(ws_duration), SW_METRICS_H_WS_DURATION, true},
};

static const struct family server_families[] = {
    {"upstream_requests_total", "counter",
     "Requests sent to each upstream server (retries count again).",
     SERVER_FIELD(requests), 0, false},
    {"upstream_connects_total", "counter",
     "New connections opened to each upstream server.", SERVER_FIELD(connects),
     0, false},
    {"upstream_failures_total", "counter",
     "Failed connects and exchanges, as passive health counts them toward "
     "max_fails.",
     SERVER_FIELD(failures), 0, false},
    {"upstream_reused_total", "counter",
     "Requests sent on a kept-alive connection.", SERVER_FIELD(reused), 0,
     false},
    {"upstream_idle_connections", "gauge",
     "Idle keep-alive connections pooled now.", SERVER_FIELD(idle), 0, false},
    {"upstream_connect_duration_seconds", "histogram",
     "TCP connect time to each upstream server.", SERVER_FIELD(connect),
     SW_METRICS_H_CONNECT, false},
    {"upstream_first_byte_seconds", "histogram",
     "From the request head sent to the first response byte, per upstream "
     "server.",
     SERVER_FIELD(first_byte), SW_METRICS_H_FIRST_BYTE, false},
};

static void
routes(const struct sw_metrics_view *v, struct sw_metrics_out *o)
{
    sw_metrics_put_family(o, "http_responses_total", "counter",
                          "HTTP responses sent to clients, by route and "
                          "status class.");
    for (size_t i = 0; i < v->nroutes; i++) {
        for (int c = 0; c < SW_METRICS_CLASSES; c++) {
            struct labels l = {{"route", "code"},
                               {v->routes[i].name, class_labels[c]}};
            sample(o, "http_responses_total", "", &l,
                   v->routes[i].sum.responses[c]);
        }
    }
    for (size_t k = 0; k < SW_NELEMS(route_families); k++) {
        const struct family *f = &route_families[k];
        sw_metrics_put_family(o, f->name, f->type, f->help);
        for (size_t i = 0; i < v->nroutes; i++) {
            if (!f->ws_only || v->routes[i].sum.ws_sessions_total != 0) {
                struct labels l = {{"route"}, {v->routes[i].name}};
                series(o, f, &l, &v->routes[i].sum);
            }
        }
    }
    sw_metrics_put_family(o, "ws_message_size_bytes", "histogram",
                          "WebSocket data message payload sizes, by route "
                          "and direction.");
    for (size_t i = 0; i < v->nroutes; i++) {
        for (int d = 0;
             d < SW_METRICS_DIRS && v->routes[i].sum.ws_sessions_total != 0;
             d++) {
            struct labels l = {{"route", "direction"},
                               {v->routes[i].name, dir_labels[d]}};
            hist(o, "ws_message_size_bytes", &l, &v->routes[i].sum.ws_msg[d],
                 SW_METRICS_H_WS_MESSAGE);
        }
    }
    sw_metrics_put_family(o, "ws_closes_total", "counter",
                          "Ended WebSocket sessions, by route, close code "
                          "(1006: no close frame) and who closed first.");
    for (size_t i = 0; i < v->nroutes; i++) {
        for (int c = 0; c < SW_METRICS_CLOSE_CODES; c++) {
            for (int by = 0; by < SW_METRICS_CLOSERS; by++) {
                uint64_t n = v->routes[i].sum.ws_closes[c][by];
                if (n != 0) {
                    struct labels l = {{"route", "code", "by"},
                                       {v->routes[i].name,
                                        sw_metrics_close_label((unsigned)c),
                                        closer_labels[by]}};
                    sample(o, "ws_closes_total", "", &l, n);
                }
            }
        }
    }
}

static void
servers(const struct sw_metrics_view *v, struct sw_metrics_out *o)
{
    sw_metrics_put_family(o, "upstream_responses_total", "counter",
                          "Response heads from each upstream server, by "
                          "status class.");
    for (size_t i = 0; i < v->nservers; i++) {
        const struct sw_metrics_view_server *s = &v->servers[i];
        for (int c = 0; c < SW_METRICS_CLASSES; c++) {
            struct labels l = {{"upstream", "server", "code"},
                               {s->upstream, s->server, class_labels[c]}};
            sample(o, "upstream_responses_total", "", &l, s->sum.responses[c]);
        }
    }
    for (size_t k = 0; k < SW_NELEMS(server_families); k++) {
        const struct family *f = &server_families[k];
        sw_metrics_put_family(o, f->name, f->type, f->help);
        for (size_t i = 0; i < v->nservers; i++) {
            const struct sw_metrics_view_server *s = &v->servers[i];
            struct labels l = {{"upstream", "server"},
                               {s->upstream, s->server}};
            series(o, f, &l, &s->sum);
        }
    }
}

static void
process(const struct sw_metrics_view *v, struct sw_metrics_out *o)
{
    sw_metrics_put_family(o, "worker_connections_active", "gauge",
                          "Client connections open now, per worker thread.");
    for (unsigned i = 0; i < v->nworkers; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%u", i);
        struct labels l = {{"worker"}, {id}};
        sample(o, "worker_connections_active", "", &l,
               v->worker_connections[i]);
    }
    /* the unlabelled process series, one sample each */
    const struct {
        const char *name;
        const char *type;
        const char *help;
        uint64_t value;
    } rows[] = {
        {"buffers_in_use", "gauge", "Pool buffers held by connections now.",
         v->buffers_in_use},
        {"buffers_idle", "gauge", "Pool buffers on the free lists now.",
         v->buffers_idle},
        {"buffer_allocations_total", "counter",
         "Pool buffers allocated since start.", v->buffer_allocations},
        {"pipes_idle", "gauge", "splice() pipes pooled for reuse now.",
         v->pipes_idle},
        {"workers", "gauge", "Worker threads.", v->nworkers},
        {"conf_generation", "gauge",
         "Configuration generation in use for new connections (1 at "
         "start, +1 per successful reload).",
         v->conf_generation},
        {"conf_reloads_total", "counter", "Successful configuration reloads.",
         v->conf_reloads},
        {"conf_reload_failures_total", "counter",
         "Failed configuration reloads (the running configuration stayed).",
         v->conf_reload_failures},
        {"conf_last_reload_success", "gauge",
         "1 if the last load or reload succeeded, else 0.",
         v->conf_last_reload_ok ? 1 : 0},
        {"conf_last_reload_timestamp_seconds", "gauge",
         "Unix time the configuration in use was loaded.", v->conf_loaded_unix},
        {"start_time_seconds", "gauge", "Unix time the process started.",
         v->start_unix},
    };
    for (size_t i = 0; i < SW_NELEMS(rows); i++) {
        sw_metrics_put_family(o, rows[i].name, rows[i].type, rows[i].help);
        sample(o, rows[i].name, "", NULL, rows[i].value);
    }
}

bool
sw_metrics_format(const struct sw_metrics_view *v, struct sw_metrics_out *o)
{
    globals(v, o);
    routes(v, o);
    servers(v, o);
    process(v, o);
    return !o->oom;
}
