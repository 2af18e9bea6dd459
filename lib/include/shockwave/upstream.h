/*
 * upstream.h - one worker's view of an upstream pool: balancing, passive
 * health, keep-alive connections and non-blocking connects.
 *
 * A `struct sw_upstream` is the runtime state for one `upstream NAME {}` of
 * one configuration snapshot in one worker. It is created when the worker
 * adopts a snapshot and freed when the last session using that snapshot
 * ends, so a reload starts fresh pools while old sessions finish on theirs.
 *
 *   pick peer (balancer, skipping tried and failed peers)
 *     -> keepalive_get(peer): an idle connection, or -1
 *     -> connect(peer): a new non-blocking connect in progress
 *   ... request / response ...
 *     -> keepalive_put(peer, fd) or close
 *
 * Health: a peer is chosen only when its shared state (`server->state`,
 * written by the daemon's active health checks on the main thread, read
 * here with a relaxed atomic load) says up AND this worker's passive
 * marks (max_fails within fail_timeout) do not hold it down. Backup
 * servers are chosen only while no primary is usable. Without active
 * checks, a pool whose every server is passively down still tries one
 * (trying beats failing); with them, servers the checks found down are
 * never tried and the pick returns NULL (the caller answers 502).
 *
 * Idle keep-alive connections are watched for readability: an upstream that
 * closes (or sends unsolicited bytes) while idle gets its connection closed
 * at once, so a reused connection is rarely stale.
 *
 * Threading: one worker thread; no locks. A struct sw_upstream_state is
 * shared by every thread: its fields are atomics.
 */
#ifndef SHOCKWAVE_UPSTREAM_H
#define SHOCKWAVE_UPSTREAM_H

#include <shockwave/conf.h>
#include <shockwave/io.h>
#include <shockwave/metrics.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include <stdatomic.h>

struct sw_upstream;

/*
 * What every worker shares about one server: the active checks' verdict
 * and counts of the passive failures and marks. Reference counted: each
 * snapshot naming the server holds one (through sw_conf_server.state) and the
 * health checker holds one while it probes the server, so the state
 * outlives reloads that keep the server (same upstream name and address).
 */
struct sw_upstream_state {
    atomic_int refs;                    /* see _ref/_unref */
    atomic_bool up;                     /* active checks: true = up (also
                                           true without health_check) */
    atomic_uint_fast64_t passive_downs; /* times a worker marked it down
                                           after max_fails */
    atomic_uint_fast64_t passive_fails; /* failed client exchanges (with
                                           max_fails > 0): the checker
                                           counts them toward fall */
};

/* A new state, up, refs 1. NULL on ENOMEM. */
struct sw_upstream_state *sw_upstream_state_new(void);

/* Take a reference; returns st. */
struct sw_upstream_state *sw_upstream_state_ref(struct sw_upstream_state *st);

/* Drop a reference (any thread); the last frees it. Accepts NULL. */
void sw_upstream_state_unref(struct sw_upstream_state *st);

/* The active verdict for `s` (up when no state is attached). */
static inline bool
sw_upstream_server_is_up(const struct sw_conf_server *s)
{
    return s->state == NULL ||
           atomic_load_explicit(&s->state->up, memory_order_relaxed);
}

struct sw_upstream_peer {
    const struct sw_conf_server *server; /* borrowed (from the snapshot) */
    struct sw_upstream *up;              /* borrowed: owning upstream */
    int64_t current_weight;              /* smooth weighted round robin */
    unsigned active;                     /* requests in flight (least_conn) */
    unsigned fails;                      /* failures in the current window */
    uint64_t down_until_ms;              /* skip until then (sw_now_ms) */
    size_t index;                        /* position in up->peers */
    struct sw_metrics_server *m;         /* borrowed (the worker's metrics
                                            table, outlives every
                                            snapshot): this server's
                                            labelled series */
};

struct sw_upstream_idle {
    struct sw_io io;               /* owned: idle connection (fd and, for a
                                      TLS upstream, its session) */
    struct sw_upstream_peer *peer; /* borrowed: where it goes */
    struct event ev;               /* readable or idle timeout */
    struct sw_upstream_idle *prev; /* borrowed: list links */
    struct sw_upstream_idle *next;
};

struct sw_upstream {
    const struct sw_conf_upstream *cf; /* borrowed (from the snapshot) */
    struct event_base *base;           /* borrowed (worker's loop) */
    struct sw_metrics *metrics;        /* borrowed (worker's counters) */
    struct sw_upstream_peer *peers;    /* owned: cf->nservers entries */
    size_t npeers;
    struct sw_upstream_idle *idle; /* owned: idle keep-alive list */
    size_t nidle;                  /* entries in idle */
};

/* Set up the runtime state for `ucf`; each peer's series are the slot of
 * (upstream name, server text) in `metrics` (created on first use).
 * SW_OK or SW_ENOMEM. */
enum sw_status sw_upstream_init(struct sw_upstream *u,
                                const struct sw_conf_upstream *ucf,
                                struct event_base *base,
                                struct sw_metrics *metrics);

/* Close idle connections and free the peers. Accepts NULL. */
void sw_upstream_fini(struct sw_upstream *u);

/* Peers a `tried` mask tracks: one bit each; peers past it are never
 * skipped as tried. */
#define SW_UPSTREAM_MAX_TRIED 64

/* Mark `index` as tried in *tried. */
static inline void
sw_upstream_tried_add(uint64_t *tried, size_t index)
{
    if (index < SW_UPSTREAM_MAX_TRIED) {
        *tried |= 1ull << index;
    }
}

/*
 * Choose a peer by the configured balance, skipping peers whose bit is set
 * in `tried` (bit i = peer i; at most SW_UPSTREAM_MAX_TRIED are tracked),
 * peers the active checks hold down, and peers passively marked down
 * (unless every untried peer left is passively down: then one of those).
 * Primary servers first; backup servers only when no primary is left.
 * `key` is the hash key for `balance hash` (ignored otherwise). Returns
 * NULL when every peer was tried or every untried one is down by the
 * active checks.
 */
struct sw_upstream_peer *sw_upstream_pick(struct sw_upstream *u,
                                          struct sw_str key, uint64_t tried);

/* Take an idle keep-alive connection to `peer` into *io (ownership moves
 * to the caller). Returns false if there is none. */
bool sw_upstream_keepalive_get(struct sw_upstream_peer *peer, struct sw_io *io);

/* Offer a connection that finished a response cleanly for reuse; it is
 * closed instead when the pool is full or keepalive is 0. Takes ownership
 * of *io (its transport state included). */
void sw_upstream_keepalive_put(struct sw_upstream_peer *peer,
                               const struct sw_io *io);

/* Start a non-blocking connect to `peer`. Returns the socket (connect in
 * progress or done) or -1 with errno set; logs the failure. */
int sw_upstream_connect(struct sw_upstream_peer *peer);

/* The socket of a new connection to `peer`, counted as a connect, its
 * connect left to the caller (sw_conn_connect: through the io_uring ring).
 * Returns it, or -1 with errno set (logged). */
int sw_upstream_socket(struct sw_upstream_peer *peer);

/* Passive health: a failed connect/exchange counts toward max_fails, after
 * which the peer is skipped for fail_timeout; a success clears the count.
 * With max_fails > 0 a failure is also counted in the shared state, where
 * the active checks (if any) count it toward fall. */
void sw_upstream_report(struct sw_upstream_peer *peer, bool ok);

#endif
