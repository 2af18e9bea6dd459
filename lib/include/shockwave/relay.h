/*
 * relay.h - the WebSocket relay: after a validated 101, both connections
 * are handed to a relay that forwards traffic frame by frame.
 *
 * Per direction (client -> upstream and upstream -> client) a frame cursor
 * walks the input:
 *
 *   header --decode+check--> data frame: header re-encoded (same FIN, RSV,
 *     |                       opcode, mask key, length), payload verbatim:
 *     |                       copied through a bounded buffer, or spliced
 *     |                       (src -> pipe -> dst) when both ends are plain
 *     |                       TCP and the rest of the payload is at least
 *     |                       ws_splice_threshold
 *     +--> ping (ws_ping local): answered with a pong to its sender, not
 *     |    forwarded; pong: consumed
 *     +--> close: validated, forwarded, handshake tracked
 *     +--> a route plugin's on_ws_message sees each data frame's header
 *          first (and its payload when it came whole): forward, drop the
 *          message, or close; such a route never splices
 *
 * Frames the gateway injects (pongs, pings, closes) wait until the frame in
 * flight toward that end has ended: control frames go between frames, never
 * inside one (RFC 6455 5.4). Frames toward the upstream are masked with a
 * fresh key (RFC 6455 5.3); frames toward the client are not masked.
 *
 * Memory: buffers come from the worker's pool and go back as soon as they
 * are empty, so an idle WebSocket holds none; each direction holds at most
 * one input and one output buffer, and a side is read only while there is
 * room, so memory per connection is bounded whatever the message size.
 * Steady-state traffic allocates nothing.
 *
 * Threading: the worker's thread only.
 */
#ifndef SHOCKWAVE_RELAY_H
#define SHOCKWAVE_RELAY_H

#include <shockwave/buf.h>
#include <shockwave/conf.h>
#include <shockwave/conn.h>
#include <shockwave/io.h>
#include <shockwave/krelay.h>
#include <shockwave/metrics.h>
#include <shockwave/plugin_host.h>
#include <shockwave/slab.h>
#include <shockwave/ws.h>

#include <event2/event.h>
#include <event2/event_struct.h>

/* One pipe for splice(): its two ends and what it holds. */
struct sw_pipe {
    int fd[2];  /* fd[0] read end, fd[1] write end */
    size_t cap; /* bytes it holds (F_GETPIPE_SZ, read once at creation) */
};

/* A worker's pool of pipes for splice(). */
struct sw_pipe_pool {
    struct sw_pipe *idle; /* owned: idle pipes */
    size_t n;             /* idle pipes (relaxed atomic stores: the
                             admin thread reads it) */
    size_t cap;           /* capacity of idle */
    size_t want_size;     /* capacity asked for (ws_pipe_size, capped) */
    bool warned;          /* the kernel granted less: logged once */
};

/* Keep up to `keep` idle pipes; new pipes are resized to `want_size`
 * bytes, capped at /proc/sys/fs/pipe-max-size; when the kernel grants less
 * (a per-user pipe limit), the pipe keeps what it has and that is logged
 * once per pool. */
void sw_pipe_pool_init(struct sw_pipe_pool *pp, size_t keep, size_t want_size);
void sw_pipe_pool_fini(struct sw_pipe_pool *pp);
/* An empty pipe into *p. SW_OK or SW_ERROR. */
enum sw_status sw_pipe_get(struct sw_pipe_pool *pp, struct sw_pipe *p);
/* Give back an EMPTY pipe (closed instead when the pool is full). */
void sw_pipe_put(struct sw_pipe_pool *pp, const struct sw_pipe *p);

struct sw_ring;

/* What a relay borrows from its worker. */
struct sw_relay_env {
    struct event_base *base;       /* borrowed: the worker's loop */
    struct sw_buf_pool *bufs;      /* borrowed: the worker's buffers */
    struct sw_pipe_pool *pipes;    /* borrowed: the worker's pipes */
    struct sw_ws_rng *rng;         /* borrowed: mask keys */
    struct sw_metrics *metrics;    /* borrowed: counters */
    struct sw_slab *relays;        /* borrowed: where relays live */
    struct sw_ring *ring;          /* borrowed: the worker's io_uring ring,
                                      NULL on the epoll engine */
    struct sw_krelay_lazy *krelay; /* borrowed: the worker's kernel relay
                                      (`ws_kernel_relay on;`) */
};

struct sw_relay;

/* Called once when the relay has ended. The upstream connection is closed;
 * the client connection is closed too after sw_relay_abort() or when the
 * client had closed or failed, else it is left open with its events stopped
 * and its final bytes in the kernel, for the owner's lingering close. The
 * owner frees the relay later with sw_relay_free(), outside the relay's own
 * callbacks (close is deferred, STYLE.md). */
typedef void (*sw_relay_done_cb)(void *arg);

struct sw_relay_start {
    const struct sw_conf_route *route; /* borrowed: ws_* settings; valid
                                          while the caller's snapshot ref */
    struct sw_metrics_route *metrics;  /* borrowed (the worker's metrics,
                                          outlive the relay): the route's
                                          series */
    struct sw_conn *client;            /* borrowed: owned by the caller,
                                          valid until on_done; its `in`
                                          holds frames behind the request
                                          head, its `out` the unsent 101 */
    struct sw_conn *upstream;          /* borrowed, likewise; its `in`
                                          holds bytes behind the 101 */
    uint8_t rsv_allowed;               /* RSV bits the extensions allow */
    const char *client_addr;           /* borrowed: "127.0.0.1:5555", logs */
    const char *upstream_addr;         /* borrowed: "127.0.0.1:9000", logs */
    sw_relay_done_cb on_done;          /* see above */
    void *arg;                         /* passed to on_done */
    struct sw_plugin_sess *plugins;    /* borrowed (the caller's, valid
                                          until on_done): the route's
                                          plugins, or NULL */
};

/* sizeof(struct sw_relay), for the owner's slab (the struct is private). */
size_t sw_relay_size(void);

/* Start relaying over the caller's two connections. Returns NULL on ENOMEM
 * (the connections are left to the caller, who closes them). */
struct sw_relay *sw_relay_new(const struct sw_relay_env *env,
                              struct sw_relay_start *s);

/*
 * Parking: a relay idle at a frame boundary (nothing buffered, nothing owed
 * to either end, no close begun) for the route's ws_park_after can be
 * reduced to what it must remember; its owner then frees the relay and the
 * connection ends' events, and keeps only the two sockets and this, which
 * brings the relay back on the next byte or deadline.
 */
struct sw_relay_parked_dir {
    uint64_t msg_size;  /* payload so far of the message in progress */
    uint64_t msg_count; /* messages its limits checker completed */
    uint64_t frames;    /* counters for the relay's final log line */
    uint64_t messages;
    uint64_t bytes;
    struct sw_ws_utf8 utf8; /* the text message's validator */
    uint8_t msg_opcode;     /* TEXT or BINARY of that message */
    bool in_message;        /* a fragmented message is open */
    bool plug_dropping;     /* a plugin is dropping that message */
    bool validate;          /* its UTF-8 is being checked */
};

struct sw_relay_parked {
    struct sw_relay_parked_dir dir[2]; /* [0] client -> upstream, [1] back */
    uint64_t last_rx_ms[2];            /* [0] client, [1] upstream */
    uint64_t last_ping_ms[2];          /* keepalive pings */
    uint64_t started_us;               /* the relay's start */
    uint64_t wake_at_ms; /* its next deadline (ping, idle); 0 none */
    uint8_t rsv_allowed; /* RSV bits the extensions allow */
};

/* True when `r` may be parked at `now` (see above). */
bool sw_relay_parkable(const struct sw_relay *r, uint64_t now);

/* Save what `r` must remember into *out and stop its timers; the relay is
 * then over without on_done: the owner detaches both ends (their sockets
 * keep their state) and frees it with sw_relay_free(). */
void sw_relay_park(struct sw_relay *r, struct sw_relay_parked *out);

/* Bring a parked relay back over s's two ends (attached to the sockets it
 * had): as sw_relay_new(), without counting a new session, its state and
 * deadlines restored from *saved. s->rsv_allowed is taken from *saved.
 * NULL on ENOMEM. */
struct sw_relay *sw_relay_unpark(const struct sw_relay_env *env,
                                 struct sw_relay_start *s,
                                 const struct sw_relay_parked *saved);

/* Start a graceful close in `delay_ms` (the drain spreads them). */
void sw_relay_drain_after(struct sw_relay *r, uint64_t delay_ms);

/* Start a graceful close: close 1001 to both ends (after any frame in
 * flight), then the close handshake with its timeout. */
void sw_relay_drain(struct sw_relay *r);

/* Close both connections now, without a handshake; on_done runs. */
void sw_relay_abort(struct sw_relay *r);

/* Free a relay whose on_done has run (or that was aborted). Accepts NULL. */
void sw_relay_free(struct sw_relay *r);

#endif
