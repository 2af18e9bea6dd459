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
 */
#ifndef SHOCKWAVE_IO_H
#define SHOCKWAVE_IO_H

#include <shockwave/core.h>

struct sw_io {
    int fd;                        /* owned by the connection holding it */
    const struct sw_io_ops *ops;   /* borrowed (static table) */
    void *tls;                     /* owned: transport state, NULL for plain */
    int last_errno;                /* errno of the last failed call */
};

struct sw_io_ops {
    ssize_t (*recv)(struct sw_io *io, void *buf, size_t n);
    ssize_t (*send)(struct sw_io *io, const void *buf, size_t n);
    void (*close)(struct sw_io *io);  /* release transport state, not fd */
    bool can_splice;                  /* bytes on fd are the payload itself */
    const char *scheme;               /* "http" or "https" */
};

extern const struct sw_io_ops sw_io_plain;

#endif
