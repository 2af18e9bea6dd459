/*
 * metrics.c - the bucket bounds, the per-worker slot tables and the
 * reader's merge of every worker into one view (see metrics.h for the
 * threading rules; the text itself is in metrics_format.c).
 *
 * Owns: the slots of a struct sw_metrics (created by its worker, freed by
 * sw_metrics_fini) and the merged arrays of a view.
 */
#include <shockwave/log.h>
#include <shockwave/metrics.h>

#include <time.h>

#define US_PER_MS 1000ull
#define US_PER_S 1000000ull
#define KIB 1024ull

/* Fixed bounds (docs/metrics.md lists them as exported). */
const struct sw_metrics_buckets sw_metrics_buckets[SW_METRICS_H_COUNT] = {
    [SW_METRICS_H_HTTP_DURATION] =
        {{1 * US_PER_MS, 2500, 5 * US_PER_MS, 10 * US_PER_MS, 25 * US_PER_MS,
          50 * US_PER_MS, 100 * US_PER_MS, 250 * US_PER_MS, 500 * US_PER_MS,
          1 * US_PER_S, 2500 * US_PER_MS, 5 * US_PER_S, 10 * US_PER_S,
          30 * US_PER_S, 60 * US_PER_S},
         15,
         US_PER_S},
    [SW_METRICS_H_CONNECT] = {{250, 500, 1 * US_PER_MS, 2500, 5 * US_PER_MS,
                               10 * US_PER_MS, 25 * US_PER_MS, 50 * US_PER_MS,
                               100 * US_PER_MS, 250 * US_PER_MS,
                               500 * US_PER_MS, 1 * US_PER_S, 2500 * US_PER_MS,
                               5 * US_PER_S},
                              14,
                              US_PER_S},
    [SW_METRICS_H_FIRST_BYTE] = {{1 * US_PER_MS, 2500, 5 * US_PER_MS,
                                  10 * US_PER_MS, 25 * US_PER_MS,
                                  50 * US_PER_MS, 100 * US_PER_MS,
                                  250 * US_PER_MS, 500 * US_PER_MS,
                                  1 * US_PER_S, 2500 * US_PER_MS, 5 * US_PER_S,
                                  10 * US_PER_S, 30 * US_PER_S, 60 * US_PER_S},
                                 15,
                                 US_PER_S},
    [SW_METRICS_H_WS_MESSAGE] = {{64, 256, 1 * KIB, 4 * KIB, 16 * KIB, 64 * KIB,
                                  256 * KIB, 1024 * KIB, 4096 * KIB,
                                  16384 * KIB},
                                 10,
                                 1},
    [SW_METRICS_H_WS_DURATION] = {{100 * US_PER_MS, 1 * US_PER_S, 10 * US_PER_S,
                                   30 * US_PER_S, 60 * US_PER_S, 300 * US_PER_S,
                                   900 * US_PER_S, 1800 * US_PER_S,
                                   3600 * US_PER_S, 10800 * US_PER_S,
                                   43200 * US_PER_S, 86400 * US_PER_S},
                                  12,
                                  US_PER_S},
};

static const uint16_t close_codes[SW_METRICS_CLOSE_CODES - 1] = {
    1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008,
    1009, 1010, 1011, 1012, 1013, 1014, 1015,
};

static const char *const close_labels[SW_METRICS_CLOSE_CODES] = {
    "1000", "1001", "1002", "1003", "1005", "1006", "1007", "1008",
    "1009", "1010", "1011", "1012", "1013", "1014", "1015", "other",
};

uint64_t
sw_metrics_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * US_PER_S + (uint64_t)ts.tv_nsec / 1000u;
}

unsigned
sw_metrics_close_index(uint16_t code)
{
    for (unsigned i = 0; i < SW_NELEMS(close_codes); i++) {
        if (close_codes[i] == code) {
            return i;
        }
    }
    return SW_METRICS_CLOSE_CODES - 1;
}

const char *
sw_metrics_close_label(unsigned index)
{
    return index < SW_METRICS_CLOSE_CODES ? close_labels[index] : "other";
}

/* ---- the worker's tables ------------------------------------------------ */

static bool
str_is(const char *a, struct sw_str b)
{
    return strlen(a) == b.len && memcmp(a, b.p, b.len) == 0;
}

static void
route_free(struct sw_metrics_route *r)
{
    if (r != NULL) {
        free(r->name);
        free(r);
    }
}

static void
server_free(struct sw_metrics_server *s)
{
    if (s != NULL) {
        free(s->upstream);
        free(s->server);
        free(s);
    }
}

/* Publish slot i: its contents are written before the reader can see the
 * new count. */
static void
publish(size_t *n, size_t value)
{
    __atomic_store_n(n, value, __ATOMIC_RELEASE);
}

static void
overflow_note(struct sw_metrics *m, const char *what, int max)
{
    if (!m->overflow_logged) {
        m->overflow_logged = true;
        sw_log_warn("metrics: more than %d %s names since start; the rest "
                    "are counted as \"%s\"",
                    max - 1, what, SW_METRICS_OVERFLOW);
    }
}

static struct sw_metrics_route *
route_find(const struct sw_metrics *m, struct sw_str name)
{
    for (size_t i = 0; i < m->nroutes; i++) {
        if (str_is(m->routes[i]->name, name)) {
            return m->routes[i];
        }
    }
    return NULL;
}

static struct sw_metrics_route *
route_add(struct sw_metrics *m, struct sw_str name)
{
    struct sw_metrics_route *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->name = strndup(name.p, name.len)) == NULL) {
        route_free(r);
        return NULL;
    }
    m->routes[m->nroutes] = r;
    publish(&m->nroutes, m->nroutes + 1);
    return r;
}

struct sw_metrics_route *
sw_metrics_route_slot(struct sw_metrics *m, struct sw_str name)
{
    struct sw_metrics_route *r = route_find(m, name);
    if (r != NULL) {
        return r;
    }
    /* the last entry is kept for the overflow slot */
    if (m->nroutes < SW_METRICS_MAX_ROUTES - 1 &&
        (r = route_add(m, name)) != NULL) {
        return r;
    }
    overflow_note(m, "route", SW_METRICS_MAX_ROUTES);
    struct sw_str of = SW_STR(SW_METRICS_OVERFLOW);
    r = route_find(m, of);
    return r != NULL || m->nroutes >= SW_METRICS_MAX_ROUTES ? r
                                                            : route_add(m, of);
}

static struct sw_metrics_server *
server_find(const struct sw_metrics *m, struct sw_str upstream,
            struct sw_str server)
{
    for (size_t i = 0; i < m->nservers; i++) {
        const struct sw_metrics_server *s = m->servers[i];
        if (str_is(s->upstream, upstream) && str_is(s->server, server)) {
            return m->servers[i];
        }
    }
    return NULL;
}

static struct sw_metrics_server *
server_add(struct sw_metrics *m, struct sw_str upstream, struct sw_str server)
{
    struct sw_metrics_server *s = calloc(1, sizeof(*s));
    if (s == NULL ||
        (s->upstream = strndup(upstream.p, upstream.len)) == NULL ||
        (s->server = strndup(server.p, server.len)) == NULL) {
        server_free(s);
        return NULL;
    }
    m->servers[m->nservers] = s;
    publish(&m->nservers, m->nservers + 1);
    return s;
}

struct sw_metrics_server *
sw_metrics_server_slot(struct sw_metrics *m, struct sw_str upstream,
                       struct sw_str server)
{
    struct sw_metrics_server *s = server_find(m, upstream, server);
    if (s != NULL) {
        return s;
    }
    if (m->nservers < SW_METRICS_MAX_SERVERS - 1 &&
        (s = server_add(m, upstream, server)) != NULL) {
        return s;
    }
    overflow_note(m, "server", SW_METRICS_MAX_SERVERS);
    struct sw_str of = SW_STR(SW_METRICS_OVERFLOW);
    s = server_find(m, of, of);
    return s != NULL || m->nservers >= SW_METRICS_MAX_SERVERS
               ? s
               : server_add(m, of, of);
}

enum sw_status
sw_metrics_init(struct sw_metrics *m)
{
    memset(m, 0, sizeof(*m));
    m->unmatched = route_add(m, SW_STR(SW_METRICS_UNMATCHED));
    return m->unmatched != NULL ? SW_OK : SW_ENOMEM;
}

void
sw_metrics_fini(struct sw_metrics *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->nroutes; i++) {
        route_free(m->routes[i]);
    }
    for (size_t i = 0; i < m->nservers; i++) {
        server_free(m->servers[i]);
    }
    m->nroutes = m->nservers = 0;
}

/* ---- the reader's merge ------------------------------------------------- */

static uint64_t
load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void
sum_array(uint64_t *dst, const uint64_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] += load(&src[i]);
    }
}

void
sw_metrics_sum(struct sw_metrics *dst, const struct sw_metrics *src)
{
    sum_array(dst->counters, src->counters, SW_METRIC_COUNT);
    sum_array(dst->status, src->status, SW_METRICS_STATUS_MAX);
    sum_array(dst->plugin, src->plugin, SW_METRICS_PLUGIN_COUNTERS);
}

static void
hist_sum(struct sw_metrics_hist *dst, const struct sw_metrics_hist *src)
{
    sum_array(dst->bucket, src->bucket, SW_METRICS_HIST_MAX + 1);
    dst->sum += load(&src->sum);
}

static void
route_sum(struct sw_metrics_route *d, const struct sw_metrics_route *s)
{
    sum_array(d->responses, s->responses, SW_METRICS_CLASSES);
    d->requests_active += load(&s->requests_active);
    hist_sum(&d->http_duration, &s->http_duration);
    d->ws_sessions_total += load(&s->ws_sessions_total);
    d->ws_sessions_active += load(&s->ws_sessions_active);
    for (int i = 0; i < SW_METRICS_DIRS; i++) {
        hist_sum(&d->ws_msg[i], &s->ws_msg[i]);
    }
    hist_sum(&d->ws_duration, &s->ws_duration);
    sum_array(&d->ws_closes[0][0], &s->ws_closes[0][0],
              SW_METRICS_CLOSE_CODES * SW_METRICS_CLOSERS);
}

static void
server_sum(struct sw_metrics_server *d, const struct sw_metrics_server *s)
{
    d->requests += load(&s->requests);
    sum_array(d->responses, s->responses, SW_METRICS_CLASSES);
    d->connects += load(&s->connects);
    d->failures += load(&s->failures);
    d->reused += load(&s->reused);
    d->idle += load(&s->idle);
    d->down_until_ms = SW_MAX(d->down_until_ms, load(&s->down_until_ms));
    hist_sum(&d->connect, &s->connect);
    hist_sum(&d->first_byte, &s->first_byte);
}

void
sw_metrics_view_init(struct sw_metrics_view *v)
{
    memset(v, 0, sizeof(*v));
}

void
sw_metrics_view_fini(struct sw_metrics_view *v)
{
    if (v != NULL) {
        free(v->routes);
        free(v->servers);
        free(v->worker_connections);
        memset(v, 0, sizeof(*v));
    }
}

/* Room for one more entry of `size` bytes in *arr; false on ENOMEM. */
static bool
grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) {
        return true;
    }
    size_t ncap = *cap != 0 ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * size);
    if (p == NULL) {
        return false;
    }
    memset((char *)p + *cap * size, 0, (ncap - *cap) * size);
    *arr = p;
    *cap = ncap;
    return true;
}

static enum sw_status
merge_route(struct sw_metrics_view *v, const struct sw_metrics_route *r)
{
    for (size_t i = 0; i < v->nroutes; i++) {
        if (strcmp(v->routes[i].name, r->name) == 0) {
            route_sum(&v->routes[i].sum, r);
            return SW_OK;
        }
    }
    if (!grow((void **)&v->routes, &v->routes_cap, v->nroutes,
              sizeof(*v->routes))) {
        return SW_ENOMEM;
    }
    struct sw_metrics_view_route *e = &v->routes[v->nroutes++];
    e->name = r->name;
    route_sum(&e->sum, r);
    return SW_OK;
}

static enum sw_status
merge_server(struct sw_metrics_view *v, const struct sw_metrics_server *s)
{
    for (size_t i = 0; i < v->nservers; i++) {
        struct sw_metrics_view_server *e = &v->servers[i];
        if (strcmp(e->upstream, s->upstream) == 0 &&
            strcmp(e->server, s->server) == 0) {
            server_sum(&e->sum, s);
            return SW_OK;
        }
    }
    if (!grow((void **)&v->servers, &v->servers_cap, v->nservers,
              sizeof(*v->servers))) {
        return SW_ENOMEM;
    }
    struct sw_metrics_view_server *e = &v->servers[v->nservers++];
    e->upstream = s->upstream;
    e->server = s->server;
    server_sum(&e->sum, s);
    return SW_OK;
}

enum sw_status
sw_metrics_view_add(struct sw_metrics_view *v, const struct sw_metrics *m)
{
    sw_metrics_sum(&v->globals, m);
    uint64_t *wc =
        realloc(v->worker_connections, (v->nworkers + 1) * sizeof(*wc));
    if (wc == NULL) {
        return SW_ENOMEM;
    }
    v->worker_connections = wc;
    wc[v->nworkers++] = load(&m->counters[SW_METRIC_CLIENT_CONNECTIONS_ACTIVE]);
    size_t nr = __atomic_load_n(&m->nroutes, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < nr; i++) {
        if (merge_route(v, m->routes[i]) != SW_OK) {
            return SW_ENOMEM;
        }
    }
    size_t ns = __atomic_load_n(&m->nservers, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < ns; i++) {
        if (merge_server(v, m->servers[i]) != SW_OK) {
            return SW_ENOMEM;
        }
    }
    return SW_OK;
}
