/*
 * fanout.h - fan-out channels: one upstream WebSocket per channel, its
 * messages delivered to every client of the channel (docs/fanout.md).
 *
 *   route `fanout KEY;`: the session expands KEY and calls sw_fanout_join
 *        |
 *   hub (process-wide): directory KEY -> channel, under a mutex taken at
 *        |               join and leave only
 *   channel: owned by the worker of its first client, which holds the
 *        |   upstream WebSocket and reads its frames into shared,
 *        |   reference-counted blocks
 *        +--> its own clients: each queue holds slices of those blocks
 *        +--> other workers: a single-producer ring per pair of workers,
 *             woken by an eventfd; each delivers to its own clients
 *
 * A message is one frame in a block, read once and sent to every client
 * from there: no copy and no allocation per client or per message once
 * the pools are warm.
 *
 * Threading: the hub is shared (its directory under its mutex, its rings
 * lock-free); a struct sw_fanout belongs to one worker thread.
 */
#ifndef SHOCKWAVE_FANOUT_H
#define SHOCKWAVE_FANOUT_H

#include <shockwave/buf.h>
#include <shockwave/conf.h>
#include <shockwave/conn.h>
#include <shockwave/metrics.h>
#include <shockwave/upstream.h>
#include <shockwave/ws.h>

#include <event2/event.h>

struct sw_fanout_hub;
struct sw_fanout;
struct sw_tls_ctx;

/* The hub of `nworkers` workers. NULL on ENOMEM. */
struct sw_fanout_hub *sw_fanout_hub_new(unsigned nworkers);
/* Free the hub after every worker's sw_fanout was freed. Accepts NULL. */
void sw_fanout_hub_free(struct sw_fanout_hub *hub);

/* The Redis bus between gateways (docs/scaling.md), from cf's bus_*
 * settings: call before any worker's side is made. A no-op when cf has
 * no bus. SW_ENOMEM on failure. */
enum sw_status sw_fanout_hub_set_bus(struct sw_fanout_hub *hub,
                                     const struct sw_conf *cf);
/* True when a bus is configured. */
bool sw_fanout_hub_has_bus(const struct sw_fanout_hub *hub);

/* Publish a message into channel `key` ("UPSTREAM\x1fKEY", as a fan-out
 * route names it) from any thread: this gateway's clients of the channel
 * get it, and with a bus every other gateway's. opcode: SW_WS_OP_TEXT or
 * SW_WS_OP_BINARY. The channel's owner sends it, soon after the call.
 * True when this gateway has the channel now. */
bool sw_fanout_hub_publish(struct sw_fanout_hub *hub, struct sw_str key,
                           uint8_t opcode, const void *data, size_t len);

/* What the metrics show of the hub (any thread; takes the mutex). */
struct sw_fanout_stats {
    uint64_t channels;      /* channels in the directory */
    uint64_t clients;       /* clients of all of them */
    uint64_t largest;       /* clients of the largest */
    uint64_t block_bytes;   /* bytes of message blocks allocated */
    uint64_t blocks_pooled; /* idle blocks kept for reuse */
};
void sw_fanout_hub_stats(struct sw_fanout_hub *hub,
                         struct sw_fanout_stats *out);

/* What a worker lends its fan-out side. */
struct sw_fanout_env {
    unsigned id;                 /* the worker's number, < nworkers */
    struct event_base *base;     /* borrowed: the worker's loop */
    struct sw_buf_pool *bufs;    /* borrowed: the worker's buffers */
    struct sw_ws_rng *rng;       /* borrowed: mask keys */
    struct sw_metrics *metrics;  /* borrowed: counters */
    void (*on_empty)(void *arg); /* while draining: the last client or
                                    channel of this worker ended */
    void *arg;
};

/* Worker `env->id`'s side of the hub. NULL on failure (logged). */
struct sw_fanout *sw_fanout_new(struct sw_fanout_hub *hub,
                                const struct sw_fanout_env *env);
/* Close everything the worker still holds and free it. Accepts NULL. */
void sw_fanout_free(struct sw_fanout *f);
/* Clients and channel upstreams this worker still serves (a draining
 * worker ends when this and its sessions are 0). */
size_t sw_fanout_live(const struct sw_fanout *f);
/* Shutdown: close 1001 to every client and upstream of this worker; a
 * join after it gets 503. */
void sw_fanout_drain(struct sw_fanout *f);
/* shutdown_timeout passed: close every client and upstream now. */
void sw_fanout_abort(struct sw_fanout *f);

/* A client joining a channel (the session's upgrade request). */
struct sw_fanout_join {
    const struct sw_conf_route *route; /* borrowed: the fanout_* settings,
                                          copied when a channel is made */
    struct sw_str key;                 /* borrowed: the channel's identity */
    struct sw_str client_key;          /* borrowed: its Sec-WebSocket-Key */
    struct sw_str offered;             /* borrowed: its Sec-WebSocket-Protocol
                                          values, comma separated */
    const char *client_addr;           /* borrowed: "ADDR:PORT", logs */
    /* Used only when the join makes a new channel: */
    struct sw_str head;         /* borrowed: the request head the
                                   upstream gets (copied) */
    struct sw_str ws_key;       /* borrowed: the key in head */
    struct sw_upstream *up;     /* borrowed until release runs */
    struct sw_tls_ctx *tls;     /* borrowed until release runs */
    void (*release)(void *arg); /* the channel no longer needs up
                                   and tls (run on this worker) */
    void *release_arg;
};

/* Take client `c` (its socket and the bytes behind the request head)
 * into the channel `j->key`, made when absent. Returns 0 when the client
 * was taken: `c` then holds no socket, and the 101 (or a 502 when the
 * channel's upstream fails to open) comes from the fan-out side. Else an
 * HTTP status the caller answers, `c` untouched, `*why` said for its log:
 * 400 for a subprotocol the channel does not speak, 503 without memory.
 * When 0 is returned, `j->release` runs exactly once: when the channel
 * that was made ends, or at once when the channel existed; it never runs
 * when a status is returned. */
unsigned sw_fanout_join(struct sw_fanout *f, const struct sw_fanout_join *j,
                        struct sw_conn *c, const char **why);

#endif
