/*
 * metrics.h - per-worker counters, gauges and histograms, summed by the
 * admin listener into the Prometheus text exposition (docs/metrics.md).
 *
 * Each worker owns one `struct sw_metrics` and is its only writer; the admin
 * thread reads every worker's block to print totals. Writes and reads use
 * relaxed atomic loads/stores, which compile to plain moves on x86: counting
 * costs no locked instruction on the data path, and a sum over workers is
 * exact once the workers are quiet.
 *
 *   worker thread (writer)                   admin thread (reader)
 *   sw_metrics_inc(m, ID)         ------>    sw_metrics_sum()       globals
 *   route slot (by route name)    ------>    sw_metrics_view_add()  merged
 *   server slot (upstream+server) ------>                           by name
 *   sw_metrics_observe(hist, v)   ------>    buckets summed one by one
 *                                            sw_metrics_format()    text
 *
 * Labelled series live in slots, one per route name and one per upstream
 * server (upstream name + "host:port"), in a per-worker table that only
 * grows: a slot is created when a worker adopts a snapshot that names it
 * and is kept until the worker ends, so a reload keeps the series of a
 * route that keeps its name, sessions of an old snapshot go on counting
 * into the slots they resolved at accept, and nothing is ever folded or
 * lost. The table is bounded (SW_METRICS_MAX_ROUTES, _MAX_SERVERS); names
 * past the bound share one "_overflow" slot (logged once). Slots are
 * published to the reader with a release store of the count.
 */
#ifndef SHOCKWAVE_METRICS_H
#define SHOCKWAVE_METRICS_H

#include <shockwave/core.h>

/* Global series: X(id, exported name without the prefix, type, help). */
#define SW_METRICS(X)                                                          \
    X(CLIENT_CONNECTIONS_TOTAL, "client_connections_total", COUNTER,           \
      "Client connections accepted.")                                          \
    X(CLIENT_CONNECTIONS_ACTIVE, "client_connections_active", GAUGE,           \
      "Client connections open now.")                                          \
    X(CLIENT_CONNECTIONS_REFUSED, "client_connections_refused_total", COUNTER, \
      "Client connections closed at accept: over "                             \
      "max_client_connections.")                                               \
    X(PROXY_PROTOCOL_ERRORS, "proxy_protocol_errors_total", COUNTER,           \
      "Connections closed on a proxy_protocol listener for a missing, "        \
      "malformed, oversized or late PROXY header.")                            \
    X(HTTP_REQUESTS_TOTAL, "http_requests_total", COUNTER,                     \
      "HTTP request heads read from clients.")                                 \
    X(HTTP_ERRORS_TOTAL, "http_errors_total", COUNTER,                         \
      "Requests the gateway failed itself: its own 4xx/5xx answers and "       \
      "bodies cut after the response began.")                                  \
    X(UPSTREAM_RETRIES_TOTAL, "upstream_retries_total", COUNTER,               \
      "Requests moved to another connection or peer after a failure.")         \
    X(BYTES_FROM_CLIENTS, "client_received_bytes_total", COUNTER,              \
      "Bytes read from clients (HTTP and WebSocket).")                         \
    X(BYTES_TO_CLIENTS, "client_sent_bytes_total", COUNTER,                    \
      "Bytes sent to clients (HTTP and WebSocket).")                           \
    X(OUT_OF_MEMORY, "out_of_memory_total", COUNTER,                           \
      "Connections closed because memory ran out.")                            \
    X(WS_SESSIONS_PARKED, "ws_sessions_parked", GAUGE,                         \
      "WebSocket sessions parked now (idle, reduced to their sockets).")       \
    X(WS_PARKS_TOTAL, "ws_parks_total", COUNTER,                               \
      "Times an idle WebSocket session was parked.")                           \
    X(WS_FRAMES_TOTAL, "ws_frames_total", COUNTER,                             \
      "WebSocket frames read, both directions.")                               \
    X(WS_MESSAGES_TOTAL, "ws_messages_total", COUNTER,                         \
      "WebSocket data messages relayed, both directions.")                     \
    X(WS_PINGS_ANSWERED, "ws_pings_answered_total", COUNTER,                   \
      "WebSocket pings the gateway answered itself.")                          \
    X(WS_PINGS_SENT, "ws_pings_sent_total", COUNTER,                           \
      "WebSocket keepalive pings the gateway sent.")                           \
    X(WS_BYTES_SPLICED, "ws_spliced_bytes_total", COUNTER,                     \
      "WebSocket payload bytes moved with splice().")                          \
    X(WS_SPLICE_CALLS, "ws_splice_calls_total", COUNTER,                       \
      "splice() calls, including those that moved nothing.")                   \
    X(WS_BYTES_COPIED, "ws_copied_bytes_total", COUNTER,                       \
      "WebSocket payload bytes copied through buffers.")                       \
    X(WS_KERNEL_SESSIONS, "ws_kernel_relay_sessions", GAUGE,                   \
      "WebSocket sessions on the kernel relay now (ws_kernel_relay).")         \
    X(WS_KERNEL_FRAMES, "ws_kernel_relay_frames_total", COUNTER,               \
      "WebSocket frames the kernel relay moved, both directions.")             \
    X(WS_KERNEL_BYTES, "ws_kernel_relay_bytes_total", COUNTER,                 \
      "WebSocket payload bytes the kernel relay moved.")                       \
    X(WS_KERNEL_HANDOVERS, "ws_kernel_relay_handovers_total", COUNTER,         \
      "Times a direction went from the kernel relay back to the gateway.")     \
    X(WS_CLOSE_SENT, "ws_close_frames_sent_total", COUNTER,                    \
      "Close frames the gateway sent (forwarded or its own).")                 \
    X(WS_PROTOCOL_ERRORS, "ws_protocol_errors_total", COUNTER,                 \
      "WebSocket sessions ended because a peer broke RFC 6455 or a limit.")    \
    X(WS_PEER_LOST, "ws_peer_lost_total", COUNTER,                             \
      "WebSocket peers gone without a close frame.")                           \
    X(WS_HANDSHAKE_REJECTED, "ws_handshake_rejected_total", COUNTER,           \
      "WebSocket upgrade requests refused before reaching an upstream.")       \
    X(PIPES_IN_USE, "pipes_in_use", GAUGE,                                     \
      "splice() pipes held by relays now.")                                    \
    X(FANOUT_CLIENTS, "fanout_clients", GAUGE,                                 \
      "Clients in fan-out channels now.")                                      \
    X(FANOUT_MESSAGES, "fanout_messages_total", COUNTER,                       \
      "Upstream messages fanned out (once per channel).")                      \
    X(FANOUT_DELIVERIES, "fanout_deliveries_total", COUNTER,                   \
      "Fan-out messages queued to clients (one per client).")                  \
    X(FANOUT_DROPPED, "fanout_dropped_total", COUNTER,                         \
      "Fan-out messages slow clients missed (fanout_slow drop).")              \
    X(FANOUT_SLOW_CLOSES, "fanout_slow_closes_total", COUNTER,                 \
      "Fan-out clients closed with 1008 for being slow (fanout_slow close).")  \
    X(FANOUT_UPSTREAM_CONNECTS, "fanout_upstream_connects_total", COUNTER,     \
      "Fan-out upstream WebSockets opened, reconnects included.")              \
    X(FANOUT_UPSTREAM_LOSSES, "fanout_upstream_losses_total", COUNTER,         \
      "Fan-out upstream WebSockets lost while clients were connected.")        \
    X(FANOUT_CLIENT_FORWARDED, "fanout_client_messages_forwarded_total",       \
      COUNTER, "Client messages a fan-out channel sent to its upstream.")      \
    X(FANOUT_CLIENT_DROPPED, "fanout_client_messages_dropped_total", COUNTER,  \
      "Client messages a fan-out channel dropped.")                            \
    X(FANOUT_RING_MESSAGES, "fanout_ring_messages_total", COUNTER,             \
      "Fan-out messages handed to another worker through its ring.")           \
    X(FANOUT_BUS_CONNECTS, "fanout_bus_connects_total", COUNTER,               \
      "Connections made to the Redis bus, reconnects included.")               \
    X(FANOUT_BUS_ERRORS, "fanout_bus_errors_total", COUNTER,                   \
      "Redis bus connections lost or refused, and commands that failed.")      \
    X(FANOUT_BUS_PUBLISHED, "fanout_bus_published_total", COUNTER,             \
      "Messages this gateway published on the Redis bus.")                     \
    X(FANOUT_BUS_RECEIVED, "fanout_bus_received_total", COUNTER,               \
      "Messages from other gateways delivered from the Redis bus.")            \
    X(FANOUT_BUS_UNSENT, "fanout_bus_unsent_total", COUNTER,                   \
      "Messages not published because the Redis bus was down.")                \
    X(FANOUT_BUS_HOLDS, "fanout_bus_holds_total", COUNTER,                     \
      "Channels whose upstream this gateway took as the elected holder.")      \
    X(FANOUT_BUS_STEPDOWNS, "fanout_bus_stepdowns_total", COUNTER,             \
      "Upstreams this gateway closed because another gateway holds them.")     \
    X(RING_ENTERS, "io_uring_enters_total", COUNTER,                           \
      "io_uring_enter calls of the workers' rings (submits, cancels).")        \
    X(RING_SQES, "io_uring_submissions_total", COUNTER,                        \
      "Operations submitted to the workers' rings.")                           \
    X(RING_RECV_CQES, "io_uring_receive_completions_total", COUNTER,           \
      "Receive completions of the workers' rings that carried bytes.")         \
    X(RING_SEND_CQES, "io_uring_send_completions_total", COUNTER,              \
      "Send completions of the workers' rings.")                               \
    X(RING_SPLICES, "io_uring_splices_total", COUNTER,                         \
      "Splices (IORING_OP_SPLICE) of the workers' rings that moved bytes.")    \
    X(RING_NOBUFS, "io_uring_receives_starved_total", COUNTER,                 \
      "Ring receives ended for want of a provided buffer.")                    \
    X(RING_LINGERED, "io_uring_lingered_closes_total", COUNTER,                \
      "Closes on a ring that waited for queued sends.")                        \
    X(RING_ACCEPTS, "io_uring_accepts_total", COUNTER,                         \
      "Client connections accepted through the workers' rings.")               \
    X(RING_CONNECTS, "io_uring_connects_total", COUNTER,                       \
      "Upstream connects submitted to the workers' rings.")                    \
    X(RING_CLOSES, "io_uring_closes_total", COUNTER,                           \
      "Sockets closed through the workers' rings.")

enum sw_metric {
#define SW_METRIC_ENUM(id, name, type, help) SW_METRIC_##id,
    SW_METRICS(SW_METRIC_ENUM)
#undef SW_METRIC_ENUM
        SW_METRIC_COUNT
};

#define SW_METRICS_STATUS_MAX 600

/* ---- histograms --------------------------------------------------------- */

/* Bucket bounds per kind are fixed (docs/metrics.md); at most this many. */
#define SW_METRICS_HIST_MAX 16

enum sw_metrics_hist_kind {
    SW_METRICS_H_HTTP_DURATION = 0, /* microseconds, shown as seconds */
    SW_METRICS_H_CONNECT,           /* microseconds, shown as seconds */
    SW_METRICS_H_FIRST_BYTE,        /* microseconds, shown as seconds */
    SW_METRICS_H_WS_MESSAGE,        /* bytes */
    SW_METRICS_H_WS_DURATION,       /* microseconds, shown as seconds */
    SW_METRICS_H_COUNT,
};

struct sw_metrics_buckets {
    uint64_t le[SW_METRICS_HIST_MAX]; /* upper bounds, ascending, in the
                                         stored unit */
    unsigned n;                       /* bounds in le (+Inf is implied) */
    uint64_t per_unit;                /* stored units per exported unit:
                                         1e6 for seconds, 1 for bytes */
};

extern const struct sw_metrics_buckets sw_metrics_buckets[SW_METRICS_H_COUNT];

/* Per-bucket (not cumulative) counts: bucket[i] counts values <= le[i] and
 * > le[i-1]; bucket[n] counts the values above the last bound. The count
 * is the sum of the buckets, so _count and the +Inf bucket always agree. */
struct sw_metrics_hist {
    uint64_t bucket[SW_METRICS_HIST_MAX + 1]; /* see above */
    uint64_t sum;                             /* in the stored unit */
};

/* ---- labelled slots ----------------------------------------------------- */

#define SW_METRICS_MAX_ROUTES 1024  /* route names per worker lifetime */
#define SW_METRICS_MAX_SERVERS 1024 /* upstream servers per lifetime */

/* HTTP status classes 1xx..5xx. */
#define SW_METRICS_CLASSES 5

/* WebSocket close codes kept apart (RFC 6455 7.4.1 and the IANA registry);
 * every other code is counted as "other". */
#define SW_METRICS_CLOSE_CODES 16
/* Who closed a WebSocket session: client, upstream, gateway. */
#define SW_METRICS_CLOSERS 3
/* WebSocket directions: 0 client to upstream, 1 upstream to client. */
#define SW_METRICS_DIRS 2

struct sw_metrics_route {
    char *name;                                     /* owned: route name */
    uint64_t responses[SW_METRICS_CLASSES];         /* answers by class */
    uint64_t requests_active;                       /* gauge: in flight */
    struct sw_metrics_hist http_duration;           /* per answered request */
    uint64_t ws_sessions_total;                     /* relays started */
    uint64_t ws_sessions_active;                    /* gauge: relays now */
    struct sw_metrics_hist ws_msg[SW_METRICS_DIRS]; /* message sizes */
    struct sw_metrics_hist ws_duration;             /* per ended session */
    uint64_t ws_closes[SW_METRICS_CLOSE_CODES][SW_METRICS_CLOSERS];
};

struct sw_metrics_server {
    char *upstream;                         /* owned: upstream name */
    char *server;                           /* owned: "host:port" */
    uint64_t requests;                      /* requests sent to it */
    uint64_t responses[SW_METRICS_CLASSES]; /* its answers by class */
    uint64_t connects;                      /* connections opened */
    uint64_t failures;                      /* passive health failures */
    uint64_t reused;                        /* keep-alive reuses */
    uint64_t idle;                          /* gauge: pooled connections */
    uint64_t down_until_ms;                 /* passive health: skipped
                                               until then (sw_now_ms) */
    struct sw_metrics_hist connect;         /* TCP connect time */
    struct sw_metrics_hist first_byte;      /* head sent -> first byte */
};

/* Counters plugins register (lib/plugin keeps their names). */
#define SW_METRICS_PLUGIN_COUNTERS 64

struct sw_metrics {
    uint64_t counters[SW_METRIC_COUNT];          /* indexed by enum sw_metric */
    uint64_t plugin[SW_METRICS_PLUGIN_COUNTERS]; /* by plugin counter id */
    uint64_t status[SW_METRICS_STATUS_MAX];      /* responses sent, by status */
    /* owned: the slots; [0, nroutes) published (release store of n) */
    struct sw_metrics_route *routes[SW_METRICS_MAX_ROUTES];
    size_t nroutes;
    struct sw_metrics_server *servers[SW_METRICS_MAX_SERVERS];
    size_t nservers;
    struct sw_metrics_route *unmatched; /* borrowed (routes[]): requests
                                           answered before a route matched */
    bool overflow_logged;               /* a table filled up: said once */
};

/* Reserved route label of requests no route matched, and of names past
 * the table bound. Route names cannot start with "_" (conf). */
#define SW_METRICS_UNMATCHED "_unmatched"
#define SW_METRICS_OVERFLOW "_overflow"

/* ---- writer side (the owning worker) ------------------------------------ */

static inline void
sw_metrics_store_add(uint64_t *p, int64_t delta)
{
    uint64_t v = __atomic_load_n(p, __ATOMIC_RELAXED);
    __atomic_store_n(p, v + (uint64_t)delta, __ATOMIC_RELAXED);
}

static inline void
sw_metrics_add(struct sw_metrics *m, enum sw_metric id, int64_t delta)
{
    sw_metrics_store_add(&m->counters[id], delta);
}

static inline void
sw_metrics_inc(struct sw_metrics *m, enum sw_metric id)
{
    sw_metrics_add(m, id, 1);
}

static inline void
sw_metrics_status(struct sw_metrics *m, unsigned status)
{
    if (status < SW_METRICS_STATUS_MAX) {
        sw_metrics_store_add(&m->status[status], 1);
    }
}

/* The class index (0 for 1xx .. 4 for 5xx) of an HTTP status; statuses
 * outside 100..599 never reach here (the decoder refuses them). */
static inline unsigned
sw_metrics_class(unsigned status)
{
    unsigned c = status / 100;
    return c >= 1 && c <= SW_METRICS_CLASSES ? c - 1 : SW_METRICS_CLASSES - 1;
}

/* Count one value: a scan of at most SW_METRICS_HIST_MAX bounds and two
 * relaxed stores, no allocation. */
static inline void
sw_metrics_observe(struct sw_metrics_hist *h, enum sw_metrics_hist_kind kind,
                   uint64_t v)
{
    const struct sw_metrics_buckets *b = &sw_metrics_buckets[kind];
    unsigned i = 0;
    while (i < b->n && v > b->le[i]) {
        i++;
    }
    sw_metrics_store_add(&h->bucket[i], 1);
    sw_metrics_store_add(&h->sum, (int64_t)v);
}

/* Monotonic clock in microseconds, for durations. */
uint64_t sw_metrics_now_us(void);

/* Index of a WebSocket close code among the fixed set (the last index is
 * "other"), and the label text of an index. */
unsigned sw_metrics_close_index(uint16_t code);
const char *sw_metrics_close_label(unsigned index);

/* Prepare m (all zero, the "_unmatched" slot created). SW_OK or SW_ENOMEM.
 * sw_metrics_fini frees the slots; accepts NULL. */
enum sw_status sw_metrics_init(struct sw_metrics *m);
void sw_metrics_fini(struct sw_metrics *m);

/* The slot of route `name` or of upstream server (upstream, server),
 * created on first use (allocates: call when adopting a snapshot, never
 * on the data path). Past the table bound, or out of memory, the shared
 * "_overflow" slot (logged once); NULL only if even that cannot be made. */
struct sw_metrics_route *sw_metrics_route_slot(struct sw_metrics *m,
                                               struct sw_str name);
struct sw_metrics_server *sw_metrics_server_slot(struct sw_metrics *m,
                                                 struct sw_str upstream,
                                                 struct sw_str server);

/* ---- reader side (any thread) ------------------------------------------- */

/* Add every global counter of src into dst (dst's slots are untouched). */
void sw_metrics_sum(struct sw_metrics *dst, const struct sw_metrics *src);

/* One merged series set, as printed. */
struct sw_metrics_view_route {
    const char *name;            /* borrowed (from a worker's slot) */
    struct sw_metrics_route sum; /* summed over workers (name unused) */
};

struct sw_metrics_view_server {
    const char *upstream;         /* borrowed (from a worker's slot) */
    const char *server;           /* borrowed (from a worker's slot) */
    struct sw_metrics_server sum; /* summed; down_until_ms is the max */
};

/* Everything one exposition prints. */
struct sw_metrics_view {
    struct sw_metrics globals;            /* counters and status, summed */
    struct sw_metrics_view_route *routes; /* owned: nroutes merged slots */
    size_t nroutes;
    size_t routes_cap;                      /* allocated entries */
    struct sw_metrics_view_server *servers; /* owned: nservers */
    size_t nservers;
    size_t servers_cap; /* allocated entries */
    /* Filled by the caller: */
    uint64_t *worker_connections;  /* owned: per worker, connections open */
    unsigned nworkers;             /* entries in worker_connections */
    uint64_t buffers_in_use;       /* pool buffers held by connections */
    uint64_t buffers_idle;         /* pool buffers on free lists */
    uint64_t buffer_allocations;   /* pool mallocs over the process life */
    uint64_t pipes_idle;           /* pooled splice pipes */
    uint64_t conf_generation;      /* current snapshot */
    uint64_t conf_reloads;         /* successful reloads */
    uint64_t conf_reload_failures; /* failed reloads */
    bool conf_last_reload_ok;      /* the last load or reload succeeded */
    uint64_t conf_loaded_unix;     /* when the current snapshot was loaded */
    uint64_t start_unix;           /* when the process started */
};

/* Zero a view. sw_metrics_view_fini frees what it owns; accepts NULL. */
void sw_metrics_view_init(struct sw_metrics_view *v);
void sw_metrics_view_fini(struct sw_metrics_view *v);

/* Fold one worker's block into v: globals summed, slots merged into the
 * entry of the same name (route) or the same upstream and server. The
 * names stay borrowed from m: keep every worker alive while v is used.
 * SW_OK or SW_ENOMEM. */
enum sw_status sw_metrics_view_add(struct sw_metrics_view *v,
                                   const struct sw_metrics *m);

/* A growing text buffer for the exposition (admin thread). */
struct sw_metrics_out {
    char *p;    /* owned: the text, NUL-terminated when len > 0 */
    size_t len; /* bytes written */
    size_t cap; /* bytes allocated */
    bool oom;   /* an append failed: the text is incomplete */
};

/* printf-style append. Returns false once out of memory. */
bool sw_metrics_printf(struct sw_metrics_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Append `s` as a label value (RFC: backslash, double quote and newline
 * escaped as \\, \" and \n). */
void sw_metrics_put_label(struct sw_metrics_out *o, const char *s);

/* Append a "# HELP"/"# TYPE" pair for shockwave_NAME. */
void sw_metrics_put_family(struct sw_metrics_out *o, const char *name,
                           const char *type, const char *help);

/* Append the Prometheus text exposition (format 0.0.4) of v: every family
 * with # HELP and # TYPE, names prefixed "shockwave_". Pure: reads v,
 * writes o. Returns false when o ran out of memory. */
bool sw_metrics_format(const struct sw_metrics_view *v,
                       struct sw_metrics_out *o);

#endif
