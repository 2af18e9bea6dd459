/*
 * metrics.h - per-worker counters, summed by the admin listener.
 *
 * Each worker owns one `struct sw_metrics` and is its only writer; the admin
 * thread reads every worker's block to print totals. Writes and reads use
 * relaxed atomic loads/stores, which compile to plain moves on x86: counting
 * costs no locked instruction on the data path.
 */
#ifndef SHOCKWAVE_METRICS_H
#define SHOCKWAVE_METRICS_H

#include <shockwave/core.h>

#define SW_METRICS(X)                                                          \
    X(CLIENT_CONNECTIONS_TOTAL, "client_connections_total")                    \
    X(CLIENT_CONNECTIONS_ACTIVE, "client_connections_active")                  \
    X(CLIENT_CONNECTIONS_REFUSED, "client_connections_refused_total")          \
    X(HTTP_REQUESTS_TOTAL, "http_requests_total")                              \
    X(HTTP_ERRORS_TOTAL, "http_errors_total")                                  \
    X(UPSTREAM_CONNECTS_TOTAL, "upstream_connects_total")                      \
    X(UPSTREAM_CONNECT_FAILURES, "upstream_connect_failures_total")            \
    X(UPSTREAM_REUSED_TOTAL, "upstream_reused_total")                          \
    X(UPSTREAM_RETRIES_TOTAL, "upstream_retries_total")                        \
    X(BYTES_FROM_CLIENTS, "bytes_from_clients_total")                          \
    X(BYTES_TO_CLIENTS, "bytes_to_clients_total")                              \
    X(OUT_OF_MEMORY, "out_of_memory_total")                                    \
    X(WS_SESSIONS_TOTAL, "ws_sessions_total")                                  \
    X(WS_SESSIONS_ACTIVE, "ws_sessions_active")                                \
    X(WS_SESSIONS_PARKED, "ws_sessions_parked")                                \
    X(WS_PARKS_TOTAL, "ws_parks_total")                                        \
    X(WS_FRAMES_TOTAL, "ws_frames_total")                                      \
    X(WS_MESSAGES_TOTAL, "ws_messages_total")                                  \
    X(WS_PINGS_ANSWERED, "ws_pings_answered_total")                            \
    X(WS_PINGS_SENT, "ws_pings_sent_total")                                    \
    X(WS_BYTES_SPLICED, "ws_bytes_spliced_total")                              \
    X(WS_SPLICE_CALLS, "ws_splice_calls_total")                                \
    X(WS_BYTES_COPIED, "ws_bytes_copied_total")                                \
    X(WS_CLOSE_SENT, "ws_close_sent_total")                                    \
    X(WS_PROTOCOL_ERRORS, "ws_protocol_errors_total")                          \
    X(WS_PEER_LOST, "ws_peer_lost_total")                                      \
    X(WS_HANDSHAKE_REJECTED, "ws_handshake_rejected_total")

enum sw_metric {
#define SW_METRIC_ENUM(id, name) SW_METRIC_##id,
    SW_METRICS(SW_METRIC_ENUM)
#undef SW_METRIC_ENUM
        SW_METRIC_COUNT
};

#define SW_METRICS_STATUS_MAX 600

struct sw_metrics {
    uint64_t counters[SW_METRIC_COUNT];     /* indexed by enum sw_metric */
    uint64_t status[SW_METRICS_STATUS_MAX]; /* responses sent, by status */
};

static inline void
sw_metrics_add(struct sw_metrics *m, enum sw_metric id, int64_t delta)
{
    uint64_t v = __atomic_load_n(&m->counters[id], __ATOMIC_RELAXED);
    __atomic_store_n(&m->counters[id], v + (uint64_t)delta, __ATOMIC_RELAXED);
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
        uint64_t v = __atomic_load_n(&m->status[status], __ATOMIC_RELAXED);
        __atomic_store_n(&m->status[status], v + 1, __ATOMIC_RELAXED);
    }
}

/* The exported name of a counter ("http_requests_total"). */
const char *sw_metrics_name(enum sw_metric id);

/* Add every counter of src into dst (read side, any thread). */
void sw_metrics_sum(struct sw_metrics *dst, const struct sw_metrics *src);

/* Print "name value\n" lines (counters, then http_status_NNN_total for
 * every status seen) into out; returns the length written (truncated at
 * cap - 1, always NUL-terminated when cap > 0). */
size_t sw_metrics_format(const struct sw_metrics *m, char *out, size_t cap);

#endif
