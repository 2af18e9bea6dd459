/*
 * io.c - the plain TCP transport (see io.h).
 *
 * Stateless; errno is kept in io->last_errno for the caller's log line.
 */
#include <shockwave/io.h>

#include <errno.h>
#include <sys/socket.h>

ssize_t
sw_io_fail(struct sw_io *io, int err)
{
    io->last_errno = err;
    switch (err) {
    case EAGAIN:
#if EAGAIN != EWOULDBLOCK
    case EWOULDBLOCK:
#endif
    case EINTR:
        return SW_AGAIN;
    case ECONNRESET:
    case EPIPE:
    case ENOTCONN:
    case ETIMEDOUT:
        return SW_ECLOSED;
    default:
        return SW_ERROR;
    }
}

static ssize_t
plain_recv(struct sw_io *io, void *buf, size_t n)
{
    ssize_t r = recv(io->fd, buf, n, 0);
    return r >= 0 ? r : sw_io_fail(io, errno);
}

static ssize_t
plain_send(struct sw_io *io, const void *buf, size_t n)
{
    ssize_t r = send(io->fd, buf, n, MSG_NOSIGNAL);
    return r >= 0 ? r : sw_io_fail(io, errno);
}

static void
plain_close(struct sw_io *io)
{
    SW_UNUSED(io);
}

static size_t
plain_pending(const struct sw_io *io)
{
    SW_UNUSED(io);
    return 0;
}

const struct sw_io_ops sw_io_plain = {
    .recv = plain_recv,
    .send = plain_send,
    .close = plain_close,
    .handshake = NULL,
    .pending = plain_pending,
    .can_splice = true,
    .scheme = "http",
};
