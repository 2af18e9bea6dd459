/*
 * ring_bio.c - an OpenSSL BIO over an end on the io_uring ring, so that a
 * TLS end's records travel through the ring as a plain end's bytes do (the
 * transport's own recv/send run; only what lies under the SSL changes):
 *
 *   SSL_read_ex  -> bio_read  -> sw__ring_recv: the end's received
 *                                provided buffers, or the socket itself
 *                                while the end reads directly (buffers ran
 *                                out); nothing there: retry (WANT_READ)
 *   SSL_write_ex -> bio_write -> sw__ring_sendv: the end's staging buffer,
 *                                sent with the turn; full: retry
 *                                (WANT_WRITE), on_write once it is sent
 *   SSL_shutdown -> close_notify queued as any record: the closed end
 *                   lingers until its queue is out (ring_conn.c)
 *
 * Borrows the connection (the BIO's data): a ring BIO is put under the SSL
 * when the end joins the ring and replaced by a socket BIO before it
 * leaves (conn.c), or freed with the SSL when the end closes, so it never
 * outlives the end's time on the ring. Nothing is allocated per call; the
 * method table is made once for the process and kept.
 *
 * Threading: a BIO is used by the end's worker only; the method table is
 * read-only once made.
 */
#include "ring_int.h"

#include <errno.h>
#include <openssl/bio.h>
#include <pthread.h>
#include <sys/uio.h>

static BIO_METHOD *method;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

/* A failed call's errno for OpenSSL (SSL_ERROR_SYSCALL reads it): the
 * transport's error mapping then sees what a socket BIO would give it. */
static void
fail(const struct sw_conn *c)
{
    errno = c->io.last_errno != 0 ? c->io.last_errno : EIO;
}

static int
bio_read(BIO *b, char *out, size_t len, size_t *got)
{
    struct sw_conn *c = BIO_get_data(b);
    SW_ASSERT(c != NULL && c->ring != NULL);
    BIO_clear_retry_flags(b);
    ssize_t n = sw__ring_recv(c, (uint8_t *)out, len);
    if (n == SW_RING_DIRECT) {
        n = sw_io_plain.recv(&c->io, out, len);
        if (n == SW_AGAIN) {
            sw__ring_retry_buffers(c); /* drained: back to the ring? */
        }
    }
    if (n > 0) {
        *got = (size_t)n;
        return 1;
    }
    *got = 0;
    if (n == 0) {
        BIO_set_flags(b, BIO_FLAGS_IN_EOF); /* BIO_eof: an orderly end */
    } else if (n == SW_AGAIN) {
        BIO_set_retry_read(b);
    } else {
        fail(c);
    }
    return 0;
}

static int
bio_write(BIO *b, const char *in, size_t len, size_t *put)
{
    struct sw_conn *c = BIO_get_data(b);
    SW_ASSERT(c != NULL && c->ring != NULL);
    BIO_clear_retry_flags(b);
    struct iovec iov = {(void *)in, len};
    ssize_t n = sw__ring_sendv(c, &iov, 1);
    if (n > 0) {
        *put = (size_t)n;
        return 1;
    }
    *put = 0;
    if (n == 0) {
        BIO_set_retry_write(b); /* the staging buffer is full */
    } else {
        fail(c);
    }
    return 0;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    SW_UNUSED(num);
    const struct sw_conn *c = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* what was queued leaves with the turn's submit */
    case BIO_CTRL_EOF:
        return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    case BIO_C_GET_FD:
        /* SSL_get_fd (log lines name the peer) */
        if (c == NULL) {
            return -1;
        }
        if (ptr != NULL) {
            *(int *)ptr = c->io.fd;
        }
        return c->io.fd;
    default:
        return 0; /* no kTLS, no datagrams, nothing buffered here */
    }
}

static int
bio_destroy(BIO *b)
{
    BIO_set_data(b, NULL);
    BIO_set_init(b, 0);
    return 1;
}

static void
method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK |
                                     BIO_TYPE_DESCRIPTOR,
                                 "shockwave io_uring end");
    if (m == NULL || BIO_meth_set_read_ex(m, bio_read) != 1 ||
        BIO_meth_set_write_ex(m, bio_write) != 1 ||
        BIO_meth_set_ctrl(m, bio_ctrl) != 1 ||
        BIO_meth_set_destroy(m, bio_destroy) != 1) {
        BIO_meth_free(m);
        return; /* TLS ends stay on epoll */
    }
    method = m;
}

void *
sw__ring_bio_new(struct sw_conn *c)
{
    pthread_once(&method_once, method_make);
    BIO *b = method != NULL ? BIO_new(method) : NULL;
    if (b != NULL) {
        BIO_set_data(b, c);
        BIO_set_init(b, 1);
    }
    return b;
}

void *
sw__ring_bio_socket(int fd)
{
    return BIO_new_socket(fd, BIO_NOCLOSE);
}

void
sw__ring_bio_free(void *bio)
{
    BIO_free(bio);
}
