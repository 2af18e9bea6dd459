/*
 * proxy.h - a worker's data path: accepted connections, HTTP/1.1 proxying,
 * and configuration adoption.
 *
 * A `struct sw_worker` is one event loop thread's whole world: its
 * event_base, listeners, sessions, buffer pool, upstream pools (per adopted
 * snapshot) and counters. Nothing in it is touched by another thread except
 * through sw_worker_post_conf() and sw_worker_post_drain(), which hand over
 * under a mutex and wake the loop.
 *
 *   gateway main thread                     worker thread
 *   sw_worker_new(cf) ------------------->  sw_worker_run(): event loop
 *   SIGHUP: sw_worker_post_conf(cf2) ---->  adopt cf2 for new connections
 *   SIGTERM: sw_worker_post_drain() ----->  stop accepting, finish, exit loop
 *   join; sw_worker_free()
 */
#ifndef SHOCKWAVE_PROXY_H
#define SHOCKWAVE_PROXY_H

#include <shockwave/buf.h>
#include <shockwave/conf.h>
#include <shockwave/metrics.h>

struct sw_worker;

/* Create worker `id` using snapshot `cf` (a reference is taken), its
 * fan-out side on `hub` (shared by every worker, freed after them).
 * Returns NULL on failure (logged). */
struct sw_fanout_hub;
struct sw_worker *sw_worker_new(unsigned id, struct sw_conf *cf,
                                struct sw_fanout_hub *hub);

/* Add a listening socket (non-blocking, already bound and listening); the
 * worker owns it from now on. `tls`: connections on it start with a TLS
 * handshake (the snapshot's TLS contexts). `proxy_protocol`: a PROXY
 * protocol header (v1 or v2) comes first, before any TLS byte, and carries
 * the client's address. SW_OK or SW_ERROR. */
enum sw_status sw_worker_listen(struct sw_worker *w, int fd, bool tls,
                                bool proxy_protocol);

/* Run the loop until drained. Call on the worker's own thread. */
void sw_worker_run(struct sw_worker *w);

/* From any thread: switch new connections to `cf` (a reference is taken). */
void sw_worker_post_conf(struct sw_worker *w, struct sw_conf *cf);

/* From any thread: stop accepting, let in-flight work finish (closing idle
 * keep-alive connections), force-close what is left after the configured
 * shutdown_timeout, then return from sw_worker_run(). */
void sw_worker_post_drain(struct sw_worker *w);

/* Free a worker whose loop has returned. Accepts NULL. */
void sw_worker_free(struct sw_worker *w);

/* The worker's counters (read them from any thread, see metrics.h). */
const struct sw_metrics *sw_worker_metrics(const struct sw_worker *w);

/* What a worker's pools hold now. */
struct sw_worker_pool_stats {
    uint64_t buffers_in_use;     /* buffers handed out */
    uint64_t buffers_idle;       /* buffers on the free list */
    uint64_t buffer_allocations; /* mallocs over the pool's life */
    uint64_t pipes_idle;         /* splice pipes kept for reuse */
};

/* Read the pools' counts (any thread; each is one relaxed load, so the
 * numbers may be a moment apart). */
void sw_worker_pools(const struct sw_worker *w,
                     struct sw_worker_pool_stats *out);

#endif
