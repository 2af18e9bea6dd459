/*
 * admin_metrics.c - the /metrics body: every worker's block merged into
 * one view (lib/metrics), the daemon's own numbers added, and the text
 * exposition formatted (metrics_format.c), then the lines the formatter
 * cannot know (server state, the test allocation counter) appended.
 *
 * Main thread only; reads the workers' blocks with relaxed loads (see
 * metrics.h). Allocates per call (the view and the text), never on a
 * worker thread.
 */
#include "gateway.h"

#include <shockwave/fanout.h>
#include <shockwave/metrics.h>
#include <shockwave/plugin_host.h>
#include <shockwave/upstream.h>

#include <dlfcn.h>

/* The merged series of one server of the configuration, or NULL when no
 * worker has counted it yet. */
static const struct sw_metrics_view_server *
find_server(const struct sw_metrics_view *v, const struct sw_conf_upstream *u,
            const struct sw_conf_server *s)
{
    for (size_t i = 0; i < v->nservers; i++) {
        if (strcmp(v->servers[i].upstream, u->name.p) == 0 &&
            strcmp(v->servers[i].server, s->text.p) == 0) {
            return &v->servers[i];
        }
    }
    return NULL;
}

/* Server k of u has the address of an earlier one (allowed: it weighs
 * the address more), so its series is that one's. */
static bool
listed_before(const struct sw_conf_upstream *u, size_t k)
{
    for (size_t j = 0; j < k; j++) {
        if (strcmp(u->servers[j].text.p, u->servers[k].text.p) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * shockwave_upstream_server_up{upstream,server}: 1 up, 0 down or
 * draining, for every server of the configuration in use (servers a
 * reload removed keep their counters but get no line here). 0 while the
 * active health checks hold the server down (lib/health), or while any
 * worker has it marked down after max_fails failures (until its
 * fail_timeout passes), else 1. This is the one place that decides what
 * "up" means for the metrics.
 */
static void
append_server_up(struct sw_gateway *g, struct sw_metrics_out *o,
                 const struct sw_metrics_view *v)
{
    sw_metrics_put_family(o, "upstream_server_up", "gauge",
                          "1 if the server takes new requests, 0 if it is "
                          "down or draining.");
    uint64_t now = sw_now_ms();
    const struct sw_conf *cf = g->cf;
    for (size_t i = 0; i < cf->nupstreams; i++) {
        const struct sw_conf_upstream *u = &cf->upstreams[i];
        for (size_t k = 0; k < u->nservers; k++) {
            if (listed_before(u, k)) {
                continue; /* the same address twice: one series */
            }
            const struct sw_metrics_view_server *s =
                find_server(v, u, &u->servers[k]);
            /* down: the active checks say so (every worker), or a worker
             * marked it after max_fails failed requests */
            bool down = !sw_upstream_server_is_up(&u->servers[k]) ||
                        (s != NULL && s->sum.down_until_ms > now);
            sw_metrics_printf(o, "shockwave_upstream_server_up{upstream=\"");
            sw_metrics_put_label(o, u->name.p);
            sw_metrics_printf(o, "\",server=\"");
            sw_metrics_put_label(o, u->servers[k].text.p);
            sw_metrics_printf(o, "\"} %d\n", down ? 0 : 1);
        }
    }
}

/* Under the test suite's LD_PRELOAD allocation counter
 * (tests/support/alloccount.c) the process's malloc count is exported too,
 * so a test can prove the data path allocates nothing. */
static void
append_allocations(struct sw_metrics_out *o)
{
    uint64_t (*count)(void) =
        (uint64_t(*)(void))dlsym(RTLD_DEFAULT, "sw_test_alloc_count");
    if (count != NULL) {
        sw_metrics_put_family(o, "process_allocations_total", "counter",
                              "malloc calls on worker threads (test builds "
                              "with the allocation counter only).");
        sw_metrics_printf(o, "shockwave_process_allocations_total %llu\n",
                          (unsigned long long)count());
    }
}

/* The hub's view: channels and their sizes, message blocks. */
static void
append_fanout(struct sw_gateway *g, struct sw_metrics_out *o)
{
    struct sw_fanout_stats fs;
    sw_fanout_hub_stats(g->fanout, &fs);
    static const struct {
        const char *name;
        const char *help;
    } fams[] = {
        {"fanout_channels", "Fan-out channels open."},
        {"fanout_channel_clients_max",
         "Clients of the largest fan-out channel."},
        {"fanout_block_bytes", "Bytes of fan-out message blocks allocated."},
        {"fanout_blocks_pooled", "Idle fan-out message blocks kept for reuse."},
    };
    const uint64_t vals[] = {fs.channels, fs.largest, fs.block_bytes,
                             fs.blocks_pooled};
    for (size_t i = 0; i < SW_NELEMS(fams); i++) {
        sw_metrics_put_family(o, fams[i].name, "gauge", fams[i].help);
        sw_metrics_printf(o, "shockwave_%s %llu\n", fams[i].name,
                          (unsigned long long)vals[i]);
    }
}

enum sw_status
sw_gateway_metrics_text(struct sw_gateway *g, struct sw_metrics_out *o)
{
    struct sw_metrics_view v;
    sw_metrics_view_init(&v);
    enum sw_status st = SW_OK;
    for (unsigned i = 0; i < g->nworkers && st == SW_OK; i++) {
        const struct sw_worker *w = g->workers[i].w;
        st = sw_metrics_view_add(&v, sw_worker_metrics(w));
        struct sw_worker_pool_stats ps;
        sw_worker_pools(w, &ps);
        v.buffers_in_use += ps.buffers_in_use;
        v.buffers_idle += ps.buffers_idle;
        v.buffer_allocations += ps.buffer_allocations;
        v.pipes_idle += ps.pipes_idle;
    }
    v.conf_generation = g->cf->generation;
    v.conf_reloads = g->reloads;
    v.conf_reload_failures = g->reload_failures;
    v.conf_last_reload_ok = g->last_reload_ok;
    v.conf_loaded_unix = g->loaded_unix;
    v.start_unix = g->start_unix;
    if (st == SW_OK && sw_metrics_format(&v, o)) {
        append_server_up(g, o, &v);
        sw_plugin_metrics_format(&v.globals, o);
        append_fanout(g, o);
        append_allocations(o);
    }
    sw_metrics_view_fini(&v);
    return st == SW_OK && !o->oom ? SW_OK : SW_ENOMEM;
}
