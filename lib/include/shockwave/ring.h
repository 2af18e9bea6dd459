/*
 * ring.h - the io_uring engine of a worker: one ring per worker thread, under
 * the connections of its WebSocket relays (conn.h, sw_conn_ring_join).
 *
 *   worker loop (libevent, epoll)
 *      |-- the ring's fd is one more readable event: completions to reap
 *      |-- the flush event, last in a turn: every queued send and receive
 *      |   armed in that turn goes to the kernel in one io_uring_enter
 *      `-- timers, accept, connect, TLS handshakes, HTTP sessions: libevent,
 *          as on the epoll engine
 *
 * Receives are multishot: one armed receive per connection keeps delivering
 * into a provided buffer ring shared by the worker's connections, so an idle
 * connection holds no buffer; the owner reads those bytes with sw_conn_read
 * as it would read the socket. Sends are copied into a staging buffer per
 * connection and leave as one send per connection and turn.
 *
 * Threading: a ring belongs to one worker thread.
 */
#ifndef SHOCKWAVE_RING_H
#define SHOCKWAVE_RING_H

#include <shockwave/core.h>

struct event_base;
struct sw_metrics;
struct sw_ring;

/* Provided buffers per worker ring, and their size. */
#define SW_RING_BUFS 512u
#define SW_RING_BUF_SIZE (16u * 1024u)

/* Set up a ring on `base`, counting what it does (kernel entries,
 * completions: SW_METRIC_RING_*) into `metrics`, the worker's. NULL when
 * io_uring is unavailable (old kernel, seccomp, io_uring_disabled,
 * limits); `why` then says what failed. */
struct sw_ring *sw_ring_new(struct event_base *base, struct sw_metrics *metrics,
                            char *why, size_t n);

/* Close every socket still lingering on the ring and free it. The owner
 * frees it after its connections are closed, before its buffer pools. */
void sw_ring_free(struct sw_ring *r);

#endif
