/*
 * plugin_host.h - the gateway's side of the plugin ABI: loading plugins,
 * binding their blocks to a snapshot, and running their hooks from the
 * session (lib/proxy) and the relay (lib/relay). Plugins never include
 * this header: theirs is plugin.h.
 *
 *   main thread: sw_plugin_bind(cf)   dlopen each load_plugin (once per
 *                                     process), check its ABI, configure
 *                                     every route block -> route chains
 *   worker:      sw_plugin_worker_adopt(pw, cf)   on_worker_start for
 *                                     plugins it has not started yet
 *   session:     sw_plugin_sess_new() on a connection's first request on a
 *                route with plugins; sw_plugin_run_request() ->
 *                answer or edits (written into the upstream head) ->
 *                sw_plugin_run_pick() -> sw_plugin_run_ws_*() -> _run_log()
 *
 * Ownership: a loaded plugin lives until the process ends (its code may be
 * running on any worker; unloading it would need every worker quiet). A
 * chain and the plugins' route states belong to their snapshot and are
 * released with it. A sess belongs to its session.
 *
 * Threading: bind on the main thread; everything else on the worker that
 * owns the session.
 */
#ifndef SHOCKWAVE_PLUGIN_HOST_H
#define SHOCKWAVE_PLUGIN_HOST_H

#include <shockwave/buf.h>
#include <shockwave/conf.h>
#include <shockwave/http.h>
#include <shockwave/metrics.h>
#include <shockwave/plugin.h>

/* Plugins a process may load over its life. */
#define SW_PLUGIN_MAX 32

/* ---- loading (main thread) ---------------------------------------------- */

/* Open every plugin cf loads (PATH, else default_dir/NAME.so), check its
 * ABI and descriptor, then check and configure each route's plugin block
 * (directive names and counts from the descriptor, then its configure),
 * setting route->plugin_chain, cf->plugins and cf->plugins_free. Errors go
 * into err one per line ("FILE:LINE:COL: message"). SW_OK or SW_EINVAL
 * (the snapshot is left without plugins; unref it). */
enum sw_status sw_plugin_bind(struct sw_conf *cf, unsigned nworkers,
                              const char *default_dir, char *err,
                              size_t errlen);

/* Append the plugins' registered counters, summed in `globals`, as
 * shockwave_plugin_<plugin>_<name> families. */
void sw_plugin_metrics_format(const struct sw_metrics *globals,
                              struct sw_metrics_out *o);

/* ---- per worker ---------------------------------------------------------- */

struct sw_plugin_worker {
    unsigned id;                 /* the worker's number */
    struct sw_metrics *metrics;  /* borrowed: the worker's counters */
    struct sw_buf_pool rooms;    /* the edit rooms: 8 KiB buffers, a few
                                    kept idle (rooms live only from a
                                    request's first edit to its response
                                    head, so few are out at once) */
    void *state[SW_PLUGIN_MAX];  /* owned by each plugin: its worker state */
    bool started[SW_PLUGIN_MAX]; /* on_worker_start ran */
};

void sw_plugin_worker_init(struct sw_plugin_worker *pw, unsigned id,
                           struct sw_metrics *m);
/* Start (on_worker_start) every plugin cf uses that this worker has not
 * started yet. */
void sw_plugin_worker_adopt(struct sw_plugin_worker *pw,
                            const struct sw_conf *cf);
/* on_worker_stop for each started plugin; the rooms' pool freed (every
 * session is gone by then). */
void sw_plugin_worker_fini(struct sw_plugin_worker *pw);

/* Hooks a chain has, as bits (sw_plugin_chain_has). */
enum sw_plugin_hook {
    SW_PLUGIN_HOOK_REQUEST = 1u << 0,
    SW_PLUGIN_HOOK_UPGRADE = 1u << 1,
    SW_PLUGIN_HOOK_PICK = 1u << 2,
    SW_PLUGIN_HOOK_WS_OPEN = 1u << 3,
    SW_PLUGIN_HOOK_WS_CLOSE = 1u << 4,
    SW_PLUGIN_HOOK_WS_MESSAGE = 1u << 5,
    SW_PLUGIN_HOOK_LOG = 1u << 6,
};

/* True when some plugin of the chain has one of the hooks in `mask`.
 * Accepts NULL (no plugin: false). */
bool sw_plugin_chain_has(const struct sw_plugin_chain *ch, unsigned mask);

/* ---- a connection's plugin side ----------------------------------------- */

/* The request, as the session shows it to request hooks. */
struct sw_plugin_request {
    const struct sw_http_request *r;         /* borrowed: the head */
    struct sw_str path;                      /* borrowed: normalised path */
    struct sw_str host;                      /* borrowed: the request's host */
    bool upgrade;                            /* a WebSocket upgrade */
    const struct sw_conf_upstream *upstream; /* borrowed: the route's */
    uint64_t tried;                          /* servers already tried (bits
                                                by index): pick skips them */
};

struct sw_plugin_sess;

/* A connection's plugin side on a route with chain `ch`: conn states
 * zeroed. raddr is copied. NULL on ENOMEM. */
struct sw_plugin_sess *sw_plugin_sess_new(struct sw_plugin_worker *pw,
                                          const struct sw_plugin_chain *ch,
                                          const char *raddr, uint64_t conn_id,
                                          struct sw_str route);
/* Accepts NULL. Gives back the edit room. */
void sw_plugin_sess_free(struct sw_plugin_sess *s);
const struct sw_plugin_chain *
sw_plugin_sess_chain(const struct sw_plugin_sess *s);

/* on_request of each plugin in order, then on_upgrade when rq->upgrade,
 * until one answers. SW_PLUGIN_CONTINUE, SW_PLUGIN_ANSWERED (see
 * sw_plugin_sess_answer), or SW_ERROR (a plugin returned something
 * else: logged, the session answers 500). rq must stay valid until the upstream
 * head is written. */
int sw_plugin_run_request(struct sw_plugin_sess *s,
                          const struct sw_plugin_request *rq);

/* The answer a plugin gave: status, body and header lines
 * ("Name: value\r\n"...), borrowed from the edit room until
 * sw_plugin_request_end. */
struct sw_plugin_answer {
    unsigned status;       /* 200..599 */
    struct sw_str body;    /* borrowed (room) */
    struct sw_str headers; /* borrowed (room): header lines, or empty */
    const char *by;        /* borrowed: the answering plugin's name */
};
bool sw_plugin_sess_answer(const struct sw_plugin_sess *s,
                           struct sw_plugin_answer *out);

/* The server index a plugin picked for rq, or SW_DECLINED. */
int sw_plugin_run_pick(struct sw_plugin_sess *s,
                       const struct sw_plugin_request *rq);

/* Request header edits, for the head toward the upstream: whether a
 * header of that name from the client is dropped (a plugin set or
 * removed it), and the set/add lines written. */
bool sw_plugin_edits_drop(const struct sw_plugin_sess *s, struct sw_str name);
void sw_plugin_edits_write(const struct sw_plugin_sess *s,
                           struct sw_http_writer *w);
/* Response headers the plugins added, for the head toward the client. */
void sw_plugin_resp_write(const struct sw_plugin_sess *s,
                          struct sw_http_writer *w);
/* The request's head went out: the edit room goes back to the pool. */
void sw_plugin_request_end(struct sw_plugin_sess *s);
/* The head toward the upstream is written: the room goes back at once
 * unless it holds response headers (then at sw_plugin_request_end), so a
 * request that only edits holds no room while its upstream answers.
 * Accepts NULL. */
void sw_plugin_request_sent(struct sw_plugin_sess *s);

/* WebSocket session hooks. */
void sw_plugin_run_ws_open(struct sw_plugin_sess *s);
void sw_plugin_run_ws_close(struct sw_plugin_sess *s, uint16_t code);

/* A data frame header seen by the relay. */
struct sw_plugin_frame {
    int dir;                /* enum sw_plugin_ws_dir */
    unsigned opcode;        /* the message's: 1 text, 2 binary */
    bool first;             /* the frame starts its message */
    bool fin;               /* the frame ends its message */
    uint64_t len;           /* payload bytes */
    bool compressed;        /* RSV1 (permessage-deflate) */
    const uint8_t *payload; /* borrowed: the whole payload, still masked
                               when mask is set; NULL when not all here */
    const uint8_t *mask;    /* borrowed: the 4-byte key, or NULL */
};
/* on_ws_message of each plugin until one does not continue: returns
 * SW_PLUGIN_CONTINUE, _DROP or _CLOSE (*code set, 1008 by default). */
int sw_plugin_run_ws_frame(struct sw_plugin_sess *s,
                           const struct sw_plugin_frame *f, uint16_t *code);

/* Fields plugins add to one access log line. */
#define SW_PLUGIN_LOG_ROOM 512
#define SW_PLUGIN_LOG_FIELDS 16
struct sw_plugin_log_fields {
    char room[SW_PLUGIN_LOG_ROOM];           /* keys and values, back to back */
    size_t used;                             /* bytes of room in use */
    struct sw_str key[SW_PLUGIN_LOG_FIELDS]; /* borrowed (room) */
    struct sw_str value[SW_PLUGIN_LOG_FIELDS]; /* borrowed (room) */
    size_t n;                                  /* fields */
};
/* on_log of each plugin into *f (emptied first). Accepts a NULL s. */
void sw_plugin_run_log(struct sw_plugin_sess *s,
                       struct sw_plugin_log_fields *f);
/* " key=value key2=value2" into out (cut to fit, NUL-terminated). */
void sw_plugin_log_fields_text(const struct sw_plugin_log_fields *f, char *out,
                               size_t n);

#endif
