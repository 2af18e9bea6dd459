/*
 * ring.h - the io_uring engine of a worker: one ring per worker thread, under
 * the connections of its HTTP sessions and their WebSocket relays (conn.h,
 * sw_conn_ring_join).
 *
 *   worker loop (libevent, epoll)
 *      |-- the ring's fd is one more readable event: completions to reap
 *      |-- the flush event, last in a turn: every queued send and receive
 *      |   armed in that turn goes to the kernel in one io_uring_enter
 *      |-- operations of other owners (struct sw_ring_op): the listeners'
 *      |   multishot accepts, upstream connects; their completions run in
 *      |   the turn, before the ends' owners
 *      `-- timers, TLS handshakes, PROXY headers, the keep-alive pool's
 *          idle sockets, parked WebSockets, health checks, fan-out clients
 *          and upstreams: libevent, as on the epoll engine
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

#include <sys/socket.h>

struct event_base;
struct sw_metrics;
struct sw_ring;
struct sw_ring_op;

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

/* ---- operations of other owners ----------------------------------------
 * One record per operation an owner keeps going (a listener's accept, a
 * connect). Completions are reaped into the record and its callback runs
 * later in the ring's turn, never inside another owner's call. */

/* A completion: `res` as the kernel gives it (an fd, 0, or -errno); `more`:
 * a multishot operation goes on (else the operation has ended and may be
 * started again). */
typedef void (*sw_ring_op_cb)(void *arg, int res, bool more);

/* A record for `cb`; NULL without memory. */
struct sw_ring_op *sw_ring_op_new(struct sw_ring *r, sw_ring_op_cb cb,
                                  void *arg);

/* Start a multishot accept on the listening socket `fd` (accepted sockets
 * are SOCK_NONBLOCK | SOCK_CLOEXEC): SW_OK, or SW_ERROR when the ring has
 * no room now. The operation must not be in flight. */
enum sw_status sw_ring_op_accept(struct sw_ring_op *op, int fd);

/* Start a connect of the non-blocking socket `fd` to `sa` (copied): SW_OK,
 * or SW_ERROR when the ring has no room now. */
enum sw_status sw_ring_op_connect(struct sw_ring_op *op, int fd,
                                  const struct sockaddr *sa, socklen_t len);

/* In flight: started and its last completion not run yet. */
bool sw_ring_op_busy(const struct sw_ring_op *op);

/* Cancel what is in flight and wait until it ended (its completions
 * reaped): afterwards the kernel holds nothing of it, so its socket may be
 * closed with close(2). The callback does not run any more. */
void sw_ring_op_stop(struct sw_ring_op *op);

/* The owner lets go: the callback never runs again, what is in flight is
 * cancelled, and the record goes once its completion is reaped (a socket
 * an accept still brings is closed). Accepts NULL. */
void sw_ring_op_free(struct sw_ring_op *op);

struct sw_ring *sw_ring_op_ring(const struct sw_ring_op *op);

/* Close `fd` through the ring, with the turn's submission (after the
 * operations queued before it, which still see the socket). The fd number
 * is the kernel's again from here: the caller must not use it. */
void sw_ring_close_fd(struct sw_ring *r, int fd);

#endif
