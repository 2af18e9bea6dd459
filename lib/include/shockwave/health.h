/*
 * health.h - active health checks: one checker probes every server of the
 * upstreams that have a `health_check`, from one event loop (the daemon
 * runs it on the main thread), and publishes up/down in each server's
 * shared struct sw_upstream_state, which every worker's sw_upstream_pick
 * reads without a lock.
 *
 *   sw_health_apply(h, cf)  every server of cf gets a state: the one of the
 *                           same upstream name and address in the snapshot
 *                           applied before (so a reload keeps what the
 *                           checks learnt), else a new one (up)
 *     interval timer -> probe: connect [TLS handshake] [request] [answer]
 *                     -> ok / failed (deadline: timeout)
 *     fall failures in a row (failed probes, and failed client requests
 *     the workers count in st->passive_fails, looked at every 100 ms and
 *     at each probe): up -> down; rise good probes in a row: down -> up
 *     each change: one log line (server, old -> new, reason)
 *
 * Probe state machine (per server, one probe in flight at most):
 *
 *   IDLE --timer--> CONNECT --> [HANDSHAKE] --> SEND --> READ --> IDLE
 *                      |  tcp: done at connect       |
 *                      +------ any error, timeout ---+--> IDLE (failed)
 *
 * Ownership: the checker owns its per-server entries and holds one
 * reference on each state it probes and on the snapshot last applied (its
 * servers' text and options are borrowed from it). A snapshot holds one
 * reference per server on the states, dropped by cf->health_free when the
 * snapshot is freed (on whichever thread drops it last).
 *
 * Threading: every call here runs on the checker's loop thread.
 */
#ifndef SHOCKWAVE_HEALTH_H
#define SHOCKWAVE_HEALTH_H

#include <shockwave/conf.h>
#include <shockwave/upstream.h>

#include <event2/event.h>

struct sw_health;

/* A checker running its probes on `base`. NULL on ENOMEM (logged). */
struct sw_health *sw_health_new(struct event_base *base);

/* Stop every probe and free the checker (states live on while snapshots
 * hold them). Accepts NULL. */
void sw_health_free(struct sw_health *h);

/*
 * Attach a state to every server of `cf` (before cf is shared with any
 * worker), set cf->health_free, and from now on probe the servers of cf's
 * upstreams that have health_check; servers of the previous snapshot that
 * cf no longer has (or no longer checks) stop being probed. A server keeps
 * its state across the change when its upstream name and address text are
 * the same; a state whose upstream lost its health_check is set up.
 * Returns SW_OK, or SW_ENOMEM (logged; cf is left without states, which
 * means "up", and the previous probes keep running).
 */
enum sw_status sw_health_apply(struct sw_health *h, struct sw_conf *cf);

/* What the checker knows of one server, for the status page and metrics. */
struct sw_health_view {
    bool checked;            /* its upstream has a health_check */
    bool up;                 /* the shared verdict */
    const char *last_result; /* borrowed (checker, valid until the next
                                probe): "HTTP 200", "timeout", ...; ""
                                before the first probe */
    uint64_t last_check_ms;  /* wall clock (ms since 1970) of the last
                                result; 0 = none yet */
    uint64_t last_change_ms; /* wall clock of the last up/down change;
                                0 = none since the daemon started */
    uint64_t checks_ok;      /* probes that passed */
    uint64_t checks_failed;  /* probes that failed */
    uint64_t passive_downs;  /* passive marks by workers (max_fails) */
    unsigned run;            /* results in a row agreeing with the last */
};

/* Fill *v for server `s` of the snapshot last applied. Returns false when
 * s has no state from this checker (v then says up, unchecked). */
bool sw_health_server_view(const struct sw_health *h,
                           const struct sw_conf_server *s,
                           struct sw_health_view *v);

#endif
