/*
 * conn.h - one connection end: its transport, its events, its input and
 * output buffers, and the read / flush / interest logic every protocol
 * module shares (twemproxy's one `struct conn` for client, server and
 * proxy connections alike).
 *
 *   owner (HTTP session, relay)
 *      |  sw_conn_read()    -> bytes appended to c->in
 *      |  sw_conn_flush()   <- bytes taken from c->out
 *      |  sw_conn_watch()   -> which readiness to wait for
 *      v
 *   struct sw_conn: io (plain or TLS ops) + rev/wev/timer + in/out buffers
 *      |
 *   engine: libevent's epoll loop, or the worker's io_uring ring (ring.h,
 *   sw_conn_ring_join) for the ends of an HTTP session and its relay: the
 *   client from its accept (after a PROXY header; TLS: once its handshake
 *   is done), the upstream from its connect (and TLS handshake) or its
 *   reuse. Ends that wait on epoll (the keep-alive pool, parked
 *   WebSockets, fan-out clients) leave the ring first with
 *   sw_conn_ring_leave, which takes only an end with nothing queued either
 *   way.
 *
 * The owner says what it wants (read, write); the connection adds what its
 * transport needs besides (TLS: a read that must write, a write that must
 * read) and schedules a read at once when the transport holds decrypted
 * bytes that the socket will not signal again. Owners never test for TLS.
 *
 * Buffers come from the worker's pool and are held only while bytes are in
 * flight: an owner releases empty ones (sw_conn_release_idle) so an idle
 * connection holds none.
 *
 * Reads sized to the traffic (sw_conn_grow_upto): while a source keeps
 * filling whole reads, its next input buffer comes from the next size
 * class of the pool's chain, up to the owner's bound, so a stream of small
 * frames is read, walked and sent in large batches; reads that come in
 * small step it back down, and an emptied buffer goes back to its pool as
 * always. sw_conn_out_reserve grows the output buffer the same way.
 *
 * Callbacks get the connection and the owner's argument. An owner may hand
 * a connection to another (the session to the WebSocket relay) with
 * sw_conn_rebind(): the fd, the transport and the buffers stay in place.
 * Close is the owner's business and deferred by it; sw_conn_close() never
 * frees the struct, which lives inside its owner.
 *
 * Threading: the owning worker's thread only.
 */
#ifndef SHOCKWAVE_CONN_H
#define SHOCKWAVE_CONN_H

#include <shockwave/buf.h>
#include <shockwave/io.h>

#include <event2/event.h>
#include <event2/event_struct.h>

/* The flags word of a connection (printed by sw_conn_show_flags). */
enum sw_conn_flag {
    SW_CONN_F_READING = 1u << 0,          /* rev is added */
    SW_CONN_F_WRITING = 1u << 1,          /* wev is added */
    SW_CONN_F_EOF = 1u << 2,              /* input ended: FIN or error */
    SW_CONN_F_RESET = 1u << 3,            /* it ended with an error */
    SW_CONN_F_DEAD = 1u << 4,             /* a send failed: no more output */
    SW_CONN_F_READ_WANTS_WRITE = 1u << 5, /* last recv waits for POLLOUT */
    SW_CONN_F_WRITE_WANTS_READ = 1u << 6, /* last send waits for POLLIN */
};

/* Room a flags print needs: every name, separators and the NUL. */
#define SW_CONN_FLAGS_TEXT 96

struct sw_conn;
struct sw_ring;
struct sw_ring_ep;
struct sw_ring_op;
struct sockaddr;

typedef void (*sw_conn_event_cb)(struct sw_conn *c, void *arg);

/* What the owner is called for. on_timer may be NULL (no timer). */
struct sw_conn_handlers {
    sw_conn_event_cb on_read;  /* readable */
    sw_conn_event_cb on_write; /* writable */
    sw_conn_event_cb on_timer; /* sw_conn_timer() expired */
};

struct sw_conn {
    struct sw_io io;                   /* fd owned (-1: none), transport */
    struct event rev;                  /* readable */
    struct event wev;                  /* writable */
    struct event timer;                /* the owner's deadline */
    struct sw_buf *in;                 /* owned (pool): bytes read */
    struct sw_buf *out;                /* owned (pool): bytes to send */
    unsigned flags;                    /* SW_CONN_F_* */
    uint8_t in_class;                  /* size class of the next input
                                          buffer (buf.h), while growing */
    uint8_t grow_class;                /* highest class it may grow to; 0:
                                          the pool's own size only */
    const char *role;                  /* borrowed (static): "client"... */
    struct event_base *base;           /* borrowed: the worker's loop */
    struct sw_buf_pool *bufs;          /* borrowed: the worker's buffers */
    const struct sw_conn_handlers *on; /* borrowed (static table) */
    void *arg;                         /* the owner's, passed to `on` */
    struct sw_ring_ep *ring;           /* owned: this end on the worker's
                                          io_uring ring; NULL on epoll */
    struct sw_ring_op *connecting;     /* owned: sw_conn_connect's connect
                                          in flight on the ring */
    int connect_err;                   /* how sw_conn_connect ended (errno,
                                          0), -1: ask the socket */
};

static inline bool
sw_conn_has(const struct sw_conn *c, unsigned flag)
{
    return (c->flags & flag) != 0;
}

static inline bool
sw_conn_is_open(const struct sw_conn *c)
{
    return c->io.fd >= 0;
}

/* Bytes waiting in a buffer that may be absent. */
static inline size_t
sw_conn_buffered(const struct sw_buf *b)
{
    return b != NULL ? sw_buf_len(b) : 0;
}

/* Prepare an end with no socket yet: plain ops, fd -1, the timer assigned.
 * `role` names it in logs ("client", "upstream"). */
void sw_conn_init(struct sw_conn *c, const char *role, struct event_base *base,
                  struct sw_buf_pool *bufs, const struct sw_conn_handlers *on,
                  void *arg);

/* Take ownership of `io` (its fd and transport state); the flags start
 * clear. The connection must hold no socket. */
void sw_conn_attach(struct sw_conn *c, const struct sw_io *io);

/* Hand the callbacks to a new owner; events are stopped first, the socket,
 * transport and buffers stay. */
void sw_conn_rebind(struct sw_conn *c, const struct sw_conn_handlers *on,
                    void *arg);

/* Give up the socket without closing it (to a keep-alive pool): events
 * stopped, `*io` receives fd and transport, the connection holds none.
 * Buffers stay with the connection. */
void sw_conn_detach(struct sw_conn *c, struct sw_io *io);

/* Send a FIN (shutdown SHUT_WR) after the bytes already sent: at once on
 * epoll, after the queued bytes on the io_uring ring. */
void sw_conn_shutdown_write(struct sw_conn *c);

/* Stop events and the timer, end the transport (TLS close_notify), close
 * the fd and return both buffers to the pool. Accepts a closed end. */
void sw_conn_close(struct sw_conn *c);

/* As sw_conn_close(), but first shut the write side down and drain input
 * that already arrived: unread input turns close() into a reset, and a
 * reset makes the peer drop what we sent but it has not read yet. */
void sw_conn_close_gently(struct sw_conn *c);

/* Arm the events: what the owner wants plus the opposite readiness the
 * transport asked for; with `read`, a transport that holds decrypted bytes
 * gets its read callback at once. */
void sw_conn_watch(struct sw_conn *c, bool read, bool write);

/* Run the owner's on_read from the loop soon, without waiting for
 * readiness (bytes a transport holds; work left when an owner stopped at a
 * cap). */
void sw_conn_wake(struct sw_conn *c);

/* True when c->in can take more bytes: absent (one will be taken), with
 * room at its end, or compactable. An owner reads only then. */
bool sw_conn_in_has_room(const struct sw_conn *c);

/* Arm the owner's deadline `ms` from now; 0 disarms it. */
void sw_conn_timer(struct sw_conn *c, uint64_t ms);

/* Run the owner's on_timer from the loop soon, without waiting (an owner
 * that stopped at a cap with work left resumes after other connections).
 * An armed deadline is replaced by it. */
void sw_conn_kick(struct sw_conn *c);

/* True while the deadline is armed. */
bool sw_conn_timer_armed(const struct sw_conn *c);

/* True when the socket reports an error or hang-up (a reset) now, without
 * reading: for an end whose read interest is off. */
bool sw_conn_peer_gone(const struct sw_conn *c);

/* Make *bp a buffer with room at its end: taken from the pool when absent,
 * rewound when empty, compacted when full. False on ENOMEM (counted by the
 * caller). */
bool sw_conn_buf_ready(struct sw_conn *c, struct sw_buf **bp);

/* Room in c->out after sw_conn_buf_ready (0 on ENOMEM). */
size_t sw_conn_out_room(struct sw_conn *c);

/* Return *bp to the pool if it is empty (or always, for _release). */
void sw_conn_buf_release_if_empty(struct sw_conn *c, struct sw_buf **bp);
void sw_conn_buf_release(struct sw_conn *c, struct sw_buf **bp);

/* Let reads grow up to `bytes` per buffer (the largest size class of the
 * pool's chain that fits; 0 or less than the pool's size: no growth). */
void sw_conn_grow_upto(struct sw_conn *c, size_t bytes);

/* Start again from the pool's own size (a source that turned to large
 * frames the owner splices: no point reading them into user space). */
static inline void
sw_conn_grow_reset(struct sw_conn *c)
{
    c->in_class = 0;
}

/* Make room for `need` bytes in c->out when its growth bound allows: a
 * larger buffer replaces a full one, its unread bytes moved over. Returns
 * the room in c->out then (less than need when the bound or memory did
 * not allow; 0 on ENOMEM). */
size_t sw_conn_out_reserve(struct sw_conn *c, size_t need);

/* Return c->in and c->out to the pool when they are empty. */
void sw_conn_release_idle(struct sw_conn *c);

/* Read once into c->in (taken from the pool when absent). Returns the bytes
 * read (> 0); 0 at EOF; SW_AGAIN when the socket would block or c->in has
 * no room; SW_ENOMEM without a buffer; SW_ECLOSED or SW_ERROR for a reset
 * or failure, logged here with the fd and errno. EOF and failures set
 * SW_CONN_F_EOF (and SW_CONN_F_RESET for a failure). */
ssize_t sw_conn_read(struct sw_conn *c);

/* As sw_conn_read, into the caller's memory (room > 0 bytes at p): the
 * same results and flags, c->in untouched. */
ssize_t sw_conn_recv_into(struct sw_conn *c, uint8_t *p, size_t room);

/* Send as much of `b` as the socket takes (b may be NULL). Returns the
 * bytes sent (>= 0), or SW_ECLOSED / SW_ERROR once a send failed (logged
 * here; SW_CONN_F_DEAD is set). The bytes sent stay in `b` before b->pos
 * (not rewound): sw_conn_buf_ready rewinds an empty buffer when it is
 * used again. */
ssize_t sw_conn_send_buf(struct sw_conn *c, struct sw_buf *b);

/* Send from n pieces at once (one sendmsg on a plain socket; piece by
 * piece through any other transport). Returns the bytes sent (0 when the socket
 * would block), or SW_ECLOSED / SW_ERROR as sw_conn_send_buf. */
struct iovec;
ssize_t sw_conn_sendv(struct sw_conn *c, const struct iovec *iov, int n);

/* sw_conn_send_buf(c, c->out). */
ssize_t sw_conn_flush(struct sw_conn *c);

/* Connect c's non-blocking socket to `sa`: through the ring `r` (an
 * IORING_OP_CONNECT with the turn's submission) or, with r NULL or no room
 * on the ring, connect(2) and writability. Either way the owner's on_write
 * runs once the connect is done, and sw_conn_connect_error says how it
 * went. A close meanwhile cancels it. */
void sw_conn_connect(struct sw_conn *c, struct sw_ring *r,
                     const struct sockaddr *sa, socklen_t len);

/* After on_write of a connect: 0 when connected, else the errno (what
 * the ring's completion said, or the socket's SO_ERROR). */
int sw_conn_connect_error(struct sw_conn *c);

/* ---- the io_uring engine (ring.h) -------------------------------------
 * An end on the ring keeps the calls above: sw_conn_read returns what its
 * multishot receive brought, sw_conn_send_buf queues the bytes for the
 * turn's one submission, on_read / on_write come from completions. */

/* Move an end onto the ring `r` (NULL: the epoll engine, nothing done).
 * A TLS end's records go through the ring from then on (a ring BIO under
 * its SSL, lib/conn/ring_bio.c). True when the end is on the ring, also
 * when it was already (a second join changes nothing: the relay joins
 * ends the HTTP session put there). False when it stays on epoll: no
 * ring, no socket, no memory. */
bool sw_conn_ring_join(struct sw_conn *c, struct sw_ring *r);

/* Back to epoll (before sw_conn_detach): true when done or never on the
 * ring (a TLS end has a socket BIO again); false while bytes are queued
 * either way, or without memory (c stays on the ring). */
bool sw_conn_ring_leave(struct sw_conn *c);

/* ---- splicing a payload (the relay's large frames) --------------------
 * splice(2) between c's socket and a pipe: on epoll the system call, now;
 * on the io_uring ring IORING_OP_SPLICE behind a poll for readiness, the
 * call starting it and returning SW_AGAIN, on_read (from the socket) or
 * on_write (into it) coming once it is done and the next call returning
 * its result. */

/* Before splicing from c's socket: true when it may be (on the ring, its
 * receive is stopped until sw_conn_splice_end); false: copy instead. */
bool sw_conn_splice_begin(struct sw_conn *c);

/* After the payload: c receives as before. */
void sw_conn_splice_end(struct sw_conn *c);

/* Up to `want` bytes from c's socket into the pipe's write end `pfd`
 * (bytes received through the ring before sw_conn_splice_begin go first):
 * bytes moved, 0 at EOF, SW_AGAIN, or SW_ECLOSED / SW_ERROR (errno in
 * c->io.last_errno). */
ssize_t sw_conn_splice_from(struct sw_conn *c, int pfd, size_t want);

/* Up to n bytes from the pipe's read end `pfd` to c's socket: bytes moved,
 * SW_AGAIN, or SW_ECLOSED / SW_ERROR (c->io.last_errno). */
ssize_t sw_conn_splice_to(struct sw_conn *c, int pfd, size_t n);

/* The splices above run asynchronously (the ring): a short count says
 * nothing of the socket being drained or full. */
bool sw_conn_splice_async(const struct sw_conn *c);

/* Before a splice into c's socket: nothing queued or in flight toward it.
 * Always true on epoll. */
bool sw_conn_sends_idle(const struct sw_conn *c);

/* Print the names of the flags set ("READING|EOF", "-" for none) into out
 * (SW_CONN_FLAGS_TEXT bytes are enough). Returns out. */
const char *sw_conn_show_flags(unsigned flags, char *out, size_t n);

#endif
