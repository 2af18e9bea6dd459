/*
 * io.h - the transport ops table: plain TCP now, TLS later.
 *
 * A connection picks its ops once, at accept or connect (nginx's c->recv /
 * c->send, HAProxy's xprt_ops), so the proxy and relay never test "is this
 * TLS?" on the data path.
 *
 * Return values of recv/send: bytes moved (> 0), 0 for an orderly EOF
 * (recv only), SW_AGAIN when the socket would block, SW_ECLOSED for a reset
 * or broken pipe, SW_ERROR for anything else (logged at the call site with
 * errno by the caller that knows the connection).
 *
 * A transport may need the opposite readiness to make progress (TLS: a read
 * that must write, a write that must read). On SW_AGAIN it sets io->want to
 * SW_IO_WANT_READ or SW_IO_WANT_WRITE; callers arm that event too. It may
 * also hold decrypted bytes the socket no longer signals: pending() tells,
 * and callers read again without waiting for readiness when it is non-zero.
 */
#ifndef SHOCKWAVE_IO_H
#define SHOCKWAVE_IO_H

#include <shockwave/core.h>

enum sw_io_want {
    SW_IO_WANT_NONE = 0, /* SW_AGAIN waits on the natural direction */
    SW_IO_WANT_READ,     /* the last SW_AGAIN waits for readability */
    SW_IO_WANT_WRITE,    /* the last SW_AGAIN waits for writability */
};

struct sw_io {
    int fd;                      /* owned by the connection holding it */
    const struct sw_io_ops *ops; /* borrowed (static table) */
    void *tls;                   /* owned: transport state, NULL for plain */
    int last_errno;              /* errno of the last failed call */
    enum sw_io_want want;        /* see above; reset by each call */
};

struct sw_io_ops {
    ssize_t (*recv)(struct sw_io *io, void *buf, size_t n);
    ssize_t (*send)(struct sw_io *io, const void *buf, size_t n);
    void (*close)(struct sw_io *io); /* release transport state, not fd */
    /* Drive the transport's handshake: SW_OK when done, SW_AGAIN (with
     * io->want) to wait, SW_EPROTO/SW_ERROR/SW_ECLOSED when it failed (the
     * transport logs why once). NULL for transports without one. */
    enum sw_status (*handshake)(struct sw_io *io);
    /* Decrypted bytes ready without touching the socket (0 for plain). */
    size_t (*pending)(const struct sw_io *io);
    /* Carry the transport's records over `bio`, an OpenSSL BIO whose
     * ownership moves to the transport, instead of what carried them so
     * far: the io_uring ring's end (lib/conn/ring_bio.c), then a socket BIO
     * on fd again. NULL for a transport that is the socket itself (plain),
     * whose bytes the connection moves through the ring directly. */
    void (*set_bio)(struct sw_io *io, void *bio);
    bool can_splice;    /* bytes on fd are the payload itself */
    const char *scheme; /* "http" or "https" */
};

extern const struct sw_io_ops sw_io_plain;

/* A failed socket call's errno `err` as the io ops report it: SW_AGAIN
 * (EAGAIN, EINTR), SW_ECLOSED (the peer reset or went), SW_ERROR; err is
 * kept in io->last_errno. */
ssize_t sw_io_fail(struct sw_io *io, int err);

#endif
