/*
 * signals.c - SIGHUP reloads the configuration, SIGTERM/SIGINT drain,
 * SIGUSR1 reopens the log files (logfiles.c).
 *
 * Reload: the new file is parsed and validated here on the main thread; on
 * any error the running snapshot stays and the errors are logged. A valid
 * snapshot is posted to every worker, which uses it for new connections;
 * live connections keep the snapshot they started with.
 *
 * The service manager hears of both (notify.c): RELOADING=1 with the
 * CLOCK_MONOTONIC time, then READY=1 whatever the outcome (with a STATUS=
 * line saying it failed), and STOPPING=1 when the drain starts.
 */
#include "gateway.h"

#include <shockwave/log.h>

#include <signal.h>
#include <time.h>

static bool
same_listens(const struct sw_conf *a, const struct sw_conf *b)
{
    if (a->nlistens != b->nlistens) {
        return false;
    }
    for (size_t i = 0; i < a->nlistens; i++) {
        if (a->listens[i].addrlen != b->listens[i].addrlen ||
            memcmp(&a->listens[i].addr, &b->listens[i].addr,
                   a->listens[i].addrlen) != 0) {
            return false;
        }
    }
    return true;
}

/* Log every error line, then that the running snapshot stays. */
static void
reload_failed(struct sw_gateway *g, char *err)
{
    g->reload_failures++;
    g->last_reload_ms = sw_wall_ms();
    g->last_reload_ok = false;
    char first[256] = "";
    char *line = strtok(err, "\n");
    while (line != NULL) {
        sw_log_error("%s", line);
        if (first[0] == '\0') {
            snprintf(first, sizeof(first), "%s", line);
        }
        line = strtok(NULL, "\n");
    }
    sw_log_error("reload failed: keeping configuration generation %llu",
                 (unsigned long long)g->cf->generation);
    sw_gateway_notify(g,
                      "READY=1\nSTATUS=reload failed, keeping configuration "
                      "generation %llu: %s",
                      (unsigned long long)g->cf->generation, first);
}

static bool
same_str(struct sw_str a, struct sw_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* What a reload cannot change, said once in the log. */
static void
warn_fixed(const struct sw_gateway *g, const struct sw_conf *cf)
{
    if (!same_listens(g->cf, cf)) {
        sw_log_warn("reload: listen addresses changed; they take effect at "
                    "the next restart%s%s",
                    g->privs.drop ? " (listeners are bound as root, before "
                                    "the drop to user "
                                  : "",
                    g->privs.drop ? g->privs.name : "");
        if (g->privs.drop) {
            sw_log_warn("reload: a new port below 1024 would need root: "
                        "restart the daemon to bind it");
        }
    }
    if (!same_str(g->cf->user, cf->user) ||
        !same_str(g->cf->group, cf->group)) {
        sw_log_warn("reload: \"user\" changed; it takes effect at the next "
                    "restart");
    }
    if (!same_str(g->cf->access_log, cf->access_log) ||
        !same_str(g->cf->error_log, cf->error_log) ||
        g->cf->access_log_json != cf->access_log_json) {
        sw_log_warn("reload: log files or formats changed; they take effect "
                    "at the next restart");
    }
    /* The bus connects once, at start (docs/configuration.md). */
    if (!same_str(g->cf->bus_url, cf->bus_url) ||
        !same_str(g->cf->bus_prefix, cf->bus_prefix) ||
        g->cf->bus_lease_ms != cf->bus_lease_ms) {
        sw_log_warn("reload: fanout_bus, fanout_bus_prefix or "
                    "fanout_bus_lease changed; they take effect at the next "
                    "restart (the bus the daemon started with stays)");
    }
}

static void
reload(struct sw_gateway *g)
{
    static char err[16384];
    sw_gateway_notify(g,
                      "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading "
                      "%s",
                      (unsigned long long)sw_gateway_monotonic_usec(),
                      g->conf_path);
    struct sw_conf *cf = sw_conf_load(g->conf_path, err, sizeof(err));
    if (cf == NULL) {
        reload_failed(g, err);
        return;
    }
    /* Certificates are re-read now: a bad one keeps the old snapshot (and
     * its certificates) serving. */
    if (sw_gateway_attach(cf, g->nworkers, err, sizeof(err)) != SW_OK) {
        reload_failed(g, err);
        sw_conf_unref(cf);
        return;
    }
    warn_fixed(g, cf);
    /* The workers' loops stay on the engine they started on: the new
     * snapshot says so too, so the next reload compares with it. */
    if (cf->io_engine != g->cf->io_engine) {
        sw_log_warn("reload: io_engine changed to %s; it takes effect at the "
                    "next restart (the workers stay on %s)",
                    sw_conf_io_engine_name(cf->io_engine),
                    sw_conf_io_engine_name(g->cf->io_engine));
        cf->io_engine = g->cf->io_engine;
    }
    cf->generation = g->cf->generation + 1;
    /* Before any worker sees it: the servers' shared states (health). */
    sw_health_apply(g->health, cf);
    for (unsigned i = 0; i < g->nworkers; i++) {
        sw_worker_post_conf(g->workers[i].w, cf);
    }
    sw_conf_unref(g->cf);
    g->cf = cf;
    g->reloads++;
    g->last_reload_ms = sw_wall_ms();
    g->last_reload_ok = true;
    g->loaded_unix = (uint64_t)time(NULL);
    sw_log_info("configuration reloaded (generation %llu)",
                (unsigned long long)cf->generation);
    sw_gateway_notify(g, "READY=1\nSTATUS=configuration generation %llu",
                      (unsigned long long)cf->generation);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct sw_gateway *g = arg;
    SW_UNUSED(what);
    if (sig == SIGHUP) {
        if (!g->stopping) {
            reload(g);
        }
        return;
    }
    if (sig == SIGUSR1) {
        sw_gateway_logs_reopen(g);
        return;
    }
    if (g->stopping) {
        return;
    }
    g->stopping = true;
    sw_log_info("signal %d: draining (shutdown_timeout %llu ms)", (int)sig,
                (unsigned long long)g->cf->shutdown_timeout_ms);
    sw_gateway_notify(g,
                      "STOPPING=1\nSTATUS=draining (shutdown_timeout "
                      "%llu ms)",
                      (unsigned long long)g->cf->shutdown_timeout_ms);
    /* Workers drain on their own threads; the main loop ends and main()
     * joins them. */
    sw_gateway_admin_stop(g);
    event_base_loopexit(g->base, NULL);
}

enum sw_status
sw_gateway_signals_start(struct sw_gateway *g)
{
    g->sighup = evsignal_new(g->base, SIGHUP, on_signal, g);
    g->sigterm = evsignal_new(g->base, SIGTERM, on_signal, g);
    g->sigint = evsignal_new(g->base, SIGINT, on_signal, g);
    g->sigusr1 = evsignal_new(g->base, SIGUSR1, on_signal, g);
    if (g->sighup == NULL || g->sigterm == NULL || g->sigint == NULL ||
        g->sigusr1 == NULL || evsignal_add(g->sighup, NULL) != 0 ||
        evsignal_add(g->sigterm, NULL) != 0 ||
        evsignal_add(g->sigint, NULL) != 0 ||
        evsignal_add(g->sigusr1, NULL) != 0) {
        sw_log_error("cannot install signal handlers");
        return SW_ERROR;
    }
    return SW_OK;
}

void
sw_gateway_signals_stop(struct sw_gateway *g)
{
    struct event **evs[] = {&g->sighup, &g->sigterm, &g->sigint, &g->sigusr1};
    for (size_t i = 0; i < SW_NELEMS(evs); i++) {
        if (*evs[i] != NULL) {
            event_free(*evs[i]);
            *evs[i] = NULL;
        }
    }
}
