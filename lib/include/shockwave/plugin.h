/*
 * plugin.h - the plugin ABI: the only header a plugin includes (besides
 * <shockwave/core.h>, which it pulls in for struct sw_str and the status
 * codes). docs/plugins.md walks through it with examples.
 *
 * A plugin is a shared object with one entry symbol, SW_PLUGIN_ENTRY,
 * returning a descriptor (struct sw_plugin): its ABI version, name,
 * directives and hooks. The gateway calls hooks (on_<event>); the plugin
 * calls accessors (sw_plugin_*) that take the opaque context it was given.
 * No gateway structure is ever visible, so the internals stay free to
 * change without breaking a built plugin.
 *
 * Life of a plugin:
 *
 *   load_plugin NAME [PATH];   dlopen, entry(), ABI checked (major equal)
 *        |
 *   route { plugin NAME { directives } }
 *        |   configure(pc, &route_state)     at load, at -t, at every SIGHUP
 *        |                                   (the state lives in the snapshot)
 *   worker threads: on_worker_start(id, &worker_state) once per worker
 *        |
 *   per request on the route (in the order the route lists its plugins):
 *        on_request -> [upgrade] on_upgrade -> on_upstream_pick -> upstream
 *        -> [101] on_ws_open -> on_ws_message per data frame -> on_ws_close
 *        -> on_log (when the access log line is written)
 *        |
 *   snapshot released: unconfigure(route_state)
 *   worker end: on_worker_stop(id, worker_state)
 *
 * Threading: configure/unconfigure run on the main thread; every other
 * hook runs on a worker thread, and a worker state is only ever touched by
 * its own worker, so it needs no lock. A route state is shared by all
 * workers: treat it as read-only after configure.
 *
 * Versioning: SW_PLUGIN_ABI_MAJOR changes only when something is removed or
 * changes meaning; the gateway refuses a plugin of another major. Minor
 * versions only add (descriptor fields at the end, accessors): a plugin of a
 * newer minor loads (fields the gateway does not know are ignored; an
 * accessor it lacks fails the dlopen with the symbol's name).
 */
#ifndef SHOCKWAVE_PLUGIN_H
#define SHOCKWAVE_PLUGIN_H

#include <shockwave/core.h>

#include <stdarg.h>

#define SW_PLUGIN_ABI_MAJOR 1
#define SW_PLUGIN_ABI_MINOR 0

/* The entry symbol's name, and its definition in a plugin:
 *   SW_PLUGIN_DEFINE(my_descriptor)   (a static const struct sw_plugin) */
#define SW_PLUGIN_ENTRY "sw_plugin_entry"
#define SW_PLUGIN_DEFINE(desc)                                                 \
    __attribute__((visibility("default"))) const struct sw_plugin *            \
    sw_plugin_entry(void)                                                      \
    {                                                                          \
        return &(desc);                                                        \
    }

/* What a request hook (on_request, on_upgrade) returns. */
enum sw_plugin_verdict {
    SW_PLUGIN_CONTINUE = 0, /* go on: the next plugin, then the upstream */
    SW_PLUGIN_ANSWERED = 1, /* the plugin answered (sw_plugin_respond); the
                               request never reaches the upstream */
    /* on_ws_message only: */
    SW_PLUGIN_DROP = 2,  /* the message is not forwarded: this frame and the
                            rest of its message are skipped */
    SW_PLUGIN_CLOSE = 3, /* close the session with the code given to
                            sw_plugin_ws_close (1008 if none) */
};

/* Direction of a WebSocket frame (sw_plugin_ws_dir). */
enum sw_plugin_ws_dir {
    SW_PLUGIN_WS_FROM_CLIENT = 0,
    SW_PLUGIN_WS_FROM_UPSTREAM = 1,
};

/* A directive the plugin accepts inside `plugin NAME { ... }`. The gateway
 * checks the name and the argument count (with file:line errors) before
 * configure sees the block. */
struct sw_plugin_directive {
    const char *name;  /* "secret_file"; NULL ends the table */
    unsigned min_args; /* arguments at least */
    unsigned max_args; /* at most */
    bool multiple;     /* may appear more than once in a block */
};

struct sw_plugin_conf; /* a `plugin NAME { }` block being configured */
struct sw_plugin_ctx;  /* one hook call: request, session, states */

struct sw_plugin {
    uint16_t abi_major;  /* SW_PLUGIN_ABI_MAJOR it was built with */
    uint16_t abi_minor;  /* SW_PLUGIN_ABI_MINOR it was built with */
    uint32_t size;       /* sizeof(struct sw_plugin) it was built with */
    const char *name;    /* matches load_plugin NAME: [a-z0-9_]+ */
    const char *version; /* the plugin's own, for logs ("1.0") */
    const struct sw_plugin_directive *directives; /* NULL-name ended; NULL
                                                     when it takes none */
    size_t conn_state_size; /* bytes of per-connection state, zeroed when a
                               connection first meets the route, freed when
                               it leaves (sw_plugin_conn_state); 0 = none */

    /* Configuration (main thread). SW_OK, or the status of
     * sw_plugin_conf_error(). *route_state is kept in the snapshot and
     * handed to every hook of that route. */
    int (*configure)(struct sw_plugin_conf *pc, void **route_state);
    void (*unconfigure)(void *route_state); /* snapshot released; may be
                                               NULL */

    /* Per worker thread: SW_OK or any status (logged, the worker runs with
     * a NULL state). Both may be NULL. */
    int (*on_worker_start)(unsigned worker_id, void **worker_state);
    void (*on_worker_stop)(unsigned worker_id, void *worker_state);

    /* Request head, after the route matched, before anything goes
     * upstream: returns an enum sw_plugin_verdict (CONTINUE or ANSWERED);
     * may edit the request headers. */
    int (*on_request)(struct sw_plugin_ctx *ctx);
    /* A valid WebSocket upgrade, after every on_request: the same. */
    int (*on_upgrade)(struct sw_plugin_ctx *ctx);
    /* The upstream server to use: an index below
     * sw_plugin_upstream_count(), or SW_DECLINED to let the balancer
     * choose (also when that server is down or already failed this
     * request). The first plugin that does not decline wins. */
    int (*on_upstream_pick)(struct sw_plugin_ctx *ctx);
    /* WebSocket session: after the 101, and when it ended (close code in
     * sw_plugin_ws_close_code). */
    void (*on_ws_open)(struct sw_plugin_ctx *ctx);
    void (*on_ws_close)(struct sw_plugin_ctx *ctx);
    /* Each data frame's header, before any byte of it is forwarded: returns
     * CONTINUE, DROP or CLOSE. Opt-in: a route has this hook only when a
     * plugin on it sets it. A message in N frames gives N calls
     * (sw_plugin_ws_first, sw_plugin_ws_fin). */
    int (*on_ws_message)(struct sw_plugin_ctx *ctx);
    /* The access log line is being written: add fields with
     * sw_plugin_log_field. */
    void (*on_log)(struct sw_plugin_ctx *ctx);
};

/* ---- configuration (configure only) ------------------------------------ */

/* Directives in the block, in file order. */
size_t sw_plugin_conf_count(const struct sw_plugin_conf *pc);
/* Name of directive i. */
const char *sw_plugin_conf_name(const struct sw_plugin_conf *pc, size_t i);
/* Arguments of directive i, and argument j of it (NULL past the end). */
size_t sw_plugin_conf_nargs(const struct sw_plugin_conf *pc, size_t i);
const char *sw_plugin_conf_arg(const struct sw_plugin_conf *pc, size_t i,
                               size_t j);
/* Index of the last directive named `name`, or -1 when absent. */
ssize_t sw_plugin_conf_find(const struct sw_plugin_conf *pc, const char *name);
/* Record an error at directive i (or at the block's `plugin` line when i
 * is (size_t)-1): "FILE:LINE:COL: plugin NAME: message". Returns
 * SW_EINVAL, for `return sw_plugin_conf_error(...)`. */
int sw_plugin_conf_error(struct sw_plugin_conf *pc, size_t i, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));
/* A path as written in the configuration, resolved against the folder of
 * the file that contains the block. SW_OK or SW_ETOOBIG. */
int sw_plugin_conf_path(const struct sw_plugin_conf *pc, const char *path,
                        char *out, size_t outlen);
/* Parse a duration ("30s", "500ms", "2m", "1h30m"; a bare number is
 * seconds) into milliseconds, and a size ("10k", "1m") into bytes, as the
 * gateway reads its own directives. SW_OK or SW_EINVAL. */
int sw_plugin_parse_duration(const char *s, uint64_t *ms);
int sw_plugin_parse_size(const char *s, uint64_t *bytes);
/* Worker threads of the gateway (known at configure). */
unsigned sw_plugin_conf_workers(const struct sw_plugin_conf *pc);
/* The route's name. */
const char *sw_plugin_conf_route(const struct sw_plugin_conf *pc);
/* This route's use of the plugin needs no on_ws_message (say, a rate
 * limiter configured without message limits): the route then splices as
 * if the plugin had no such hook. */
void sw_plugin_conf_skip_frames(struct sw_plugin_conf *pc);
/* Register a counter shown in /metrics as
 * shockwave_plugin_<plugin>_<name> (name: [a-z0-9_]+, end it in _total).
 * The same name gives the same id on every reload. Returns its id (>= 0),
 * SW_EINVAL for a bad name or SW_ENOMEM when the table is full. */
int sw_plugin_conf_counter(struct sw_plugin_conf *pc, const char *name,
                           const char *help);

/* ---- every hook --------------------------------------------------------- */

void *sw_plugin_route_state(const struct sw_plugin_ctx *ctx);
void *sw_plugin_worker_state(const struct sw_plugin_ctx *ctx);
/* The connection's conn_state_size bytes (NULL when 0). */
void *sw_plugin_conn_state(const struct sw_plugin_ctx *ctx);
unsigned sw_plugin_worker_id(const struct sw_plugin_ctx *ctx);
/* Monotonic milliseconds (one clock read per event, cheap). */
uint64_t sw_plugin_now_ms(const struct sw_plugin_ctx *ctx);
/* Add n to counter `id` (from sw_plugin_conf_counter) on this worker. */
void sw_plugin_count(const struct sw_plugin_ctx *ctx, int id, uint64_t n);
/* A line in the error log at level SW_LOG_* (shockwave/log.h numbering:
 * 0 error, 1 warn, 2 info, 3 debug), prefixed with the plugin, the
 * connection and the client address. */
void sw_plugin_log(const struct sw_plugin_ctx *ctx, int level, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));
struct sw_str sw_plugin_remote_addr(const struct sw_plugin_ctx *ctx);
struct sw_str sw_plugin_route_name(const struct sw_plugin_ctx *ctx);

/* ---- the request (on_request, on_upgrade, on_upstream_pick) ------------- */

struct sw_str sw_plugin_req_method(const struct sw_plugin_ctx *ctx);
/* The normalised path (what routes match), without the query. */
struct sw_str sw_plugin_req_path(const struct sw_plugin_ctx *ctx);
/* The query, without '?' (empty when none). */
struct sw_str sw_plugin_req_query(const struct sw_plugin_ctx *ctx);
struct sw_str sw_plugin_req_host(const struct sw_plugin_ctx *ctx);
/* The first header named `name` (any case) into *value: true when found. */
bool sw_plugin_req_header(const struct sw_plugin_ctx *ctx, const char *name,
                          struct sw_str *value);
/* Query argument `name` (raw, not percent-decoded): true when present. */
bool sw_plugin_req_arg(const struct sw_plugin_ctx *ctx, const char *name,
                       struct sw_str *value);
/* Cookie `name` from the Cookie headers: true when present. */
bool sw_plugin_req_cookie(const struct sw_plugin_ctx *ctx, const char *name,
                          struct sw_str *value);
/* A WebSocket upgrade the gateway accepted. */
bool sw_plugin_req_is_upgrade(const struct sw_plugin_ctx *ctx);
/* The connection's first request on this route. */
bool sw_plugin_req_is_first(const struct sw_plugin_ctx *ctx);

/* Header edits toward the upstream, applied after the route's own:
 * set replaces every header of that name (the client's too), add appends
 * one, remove drops every one. SW_OK, SW_EINVAL (a name or value that is
 * not a valid field) or SW_ETOOBIG (the request's edit room, 4 KiB, is
 * full). */
int sw_plugin_req_set_header(struct sw_plugin_ctx *ctx, const char *name,
                             struct sw_str value);
int sw_plugin_req_add_header(struct sw_plugin_ctx *ctx, const char *name,
                             struct sw_str value);
int sw_plugin_req_remove_header(struct sw_plugin_ctx *ctx, const char *name);

/* A header on the response the client gets (the upstream's, or the 101),
 * after the route's response edits; the same room and returns. */
int sw_plugin_resp_add_header(struct sw_plugin_ctx *ctx, const char *name,
                              struct sw_str value);

/* Request variables, shared by the plugins of a route for one request (in
 * the same edit room): jwt_auth sets claims, ratelimit keys on them. */
int sw_plugin_var_set(struct sw_plugin_ctx *ctx, const char *name,
                      struct sw_str value);
bool sw_plugin_var_get(const struct sw_plugin_ctx *ctx, const char *name,
                       struct sw_str *value);

/* Answer the request here (then return SW_PLUGIN_ANSWERED): the status, a
 * body (copied) and headers added with sw_plugin_respond_header before it
 * (up to 1 KiB of them). SW_OK, SW_EINVAL (status outside 200-599). */
int sw_plugin_respond_header(struct sw_plugin_ctx *ctx, const char *name,
                             struct sw_str value);
int sw_plugin_respond(struct sw_plugin_ctx *ctx, unsigned status,
                      struct sw_str body);

/* on_upstream_pick: the route's upstream servers. */
size_t sw_plugin_upstream_count(const struct sw_plugin_ctx *ctx);
/* "host:port" of server i as written. */
struct sw_str sw_plugin_upstream_server(const struct sw_plugin_ctx *ctx,
                                        size_t i);

/* ---- WebSocket (on_ws_open, on_ws_message, on_ws_close) ----------------- */

/* on_ws_message: the frame's direction (enum sw_plugin_ws_dir), its
 * message's opcode (1 text, 2 binary, also for continuation frames),
 * whether it starts and ends its message, its payload length. */
int sw_plugin_ws_dir(const struct sw_plugin_ctx *ctx);
unsigned sw_plugin_ws_opcode(const struct sw_plugin_ctx *ctx);
bool sw_plugin_ws_first(const struct sw_plugin_ctx *ctx);
bool sw_plugin_ws_fin(const struct sw_plugin_ctx *ctx);
uint64_t sw_plugin_ws_frame_len(const struct sw_plugin_ctx *ctx);
/* RSV1 of the frame: set on the first frame of a message compressed by
 * permessage-deflate (RFC 7692 6), whose payload is then deflated bytes
 * (the gateway relays extensions end to end and never inflates). */
bool sw_plugin_ws_compressed(const struct sw_plugin_ctx *ctx);
/* Copy up to n bytes of the frame's payload, unmasked, from `offset`.
 * Returns the bytes copied, or SW_AGAIN when the frame did not arrive
 * whole with its header (the payload then streams through unseen; small
 * frames nearly always arrive whole). A route with a message hook never
 * splices. */
ssize_t sw_plugin_ws_payload(const struct sw_plugin_ctx *ctx, uint64_t offset,
                             void *out, size_t n);
/* on_ws_message: the close code (and reason) SW_PLUGIN_CLOSE sends. */
void sw_plugin_ws_close(struct sw_plugin_ctx *ctx, uint16_t code,
                        const char *reason);
/* on_ws_close: the code that ended the session (1006 when none). */
uint16_t sw_plugin_ws_close_code(const struct sw_plugin_ctx *ctx);

/* ---- the access log (on_log) --------------------------------------------
 * A field on the line: ` key=value` in the text format, "key":"value" in
 * JSON (escaped). Up to 512 bytes of fields per line. SW_OK or SW_ETOOBIG. */
int sw_plugin_log_field(struct sw_plugin_ctx *ctx, const char *key,
                        struct sw_str value);

#endif
