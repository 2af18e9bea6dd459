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

#include <shockwave/metrics.h>

#include <dlfcn.h>

/*
 * shockwave_upstream_server_up{upstream,server}: 1 up, 0 down or
 * draining. What it prints today is the passive health state: 0 while any
 * worker has the server marked down after max_fails failures (until its
 * fail_timeout passes), else 1. This is the one place that decides what
 * "up" means for the metrics; a shared server state (active health
 * checks) answers here instead.
 */
static void
append_server_up(struct sw_metrics_out *o, const struct sw_metrics_view *v)
{
    sw_metrics_put_family(o, "upstream_server_up", "gauge",
                          "1 if the server takes new requests, 0 if it is "
                          "down or draining.");
    uint64_t now = sw_now_ms();
    for (size_t i = 0; i < v->nservers; i++) {
        const struct sw_metrics_view_server *s = &v->servers[i];
        sw_metrics_printf(o, "shockwave_upstream_server_up{upstream=\"");
        sw_metrics_put_label(o, s->upstream);
        sw_metrics_printf(o, "\",server=\"");
        sw_metrics_put_label(o, s->server);
        sw_metrics_printf(o, "\"} %d\n", s->sum.down_until_ms > now ? 0 : 1);
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
        append_server_up(o, &v);
        append_allocations(o);
    }
    sw_metrics_view_fini(&v);
    return st == SW_OK && !o->oom ? SW_OK : SW_ENOMEM;
}
