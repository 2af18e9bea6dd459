/*
 * tls_io.c - the TLS transport: struct sw_io_ops over one non-blocking SSL
 * (see io.h for the contract, tls.h for the additions).
 *
 *   attach --> handshake: [server: peek, plain HTTP? -> 400, EPROTO]
 *                 SSL_do_handshake --WANT_*--> SW_AGAIN (io->want)
 *                          |--fails--> one log line, SW_EPROTO / ECLOSED
 *                          v
 *              recv / send (SSL_read_ex / SSL_write_ex) --> close:
 *              one non-blocking SSL_shutdown (close_notify), SSL_free
 *
 * The SSL's app data is a flag (not a pointer to memory): non-NULL once the
 * plain-HTTP check has run, so it runs once, on the very first bytes.
 * After a fatal error the SSL is marked quiet-shutdown: OpenSSL forbids a
 * close_notify on a broken session.
 *
 * Under the SSL a socket BIO on the fd (SSL_set_fd), or, while the
 * connection is on the io_uring ring, a ring BIO (set_bio,
 * lib/conn/ring_bio.c): the ops above do not change with it.
 *
 * Owns the SSL in io->tls (freed by close), never the fd. One thread: the
 * worker owning the connection. OpenSSL's error queue is per thread, so each
 * call clears it first and drains it after a failure.
 */
#include "tls_int.h"

#include <shockwave/log.h>

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <pthread.h>
#include <sys/socket.h>

#define PEEK_BYTES 8 /* enough for "OPTIONS " */

static const char http_answer[] =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 47\r\n"
    "Connection: close\r\n"
    "\r\n"
    "This port speaks TLS: use https:// or wss://.\r\n";

/* "1.2.3.4:5678" for log lines. */
static void
peer_name(int fd, char *out, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const void *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const void *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
    }
    snprintf(out, n, "%s:%u", host, port);
}

bool
sw__tls_looks_like_http(const unsigned char *p, size_t n)
{
    /* A TLS record starts with 0x16 (handshake) and an SSLv2 hello with the
     * high bit set; a request line starts with an upper-case method. */
    size_t i = 0;
    while (i < n && p[i] >= 'A' && p[i] <= 'Z') {
        i++;
    }
    return i > 0 && (i == n || p[i] == ' ');
}

/* Map a failed SSL call. recv: EOF is 0; send: EOF is SW_ECLOSED. */
static ssize_t
map_error(struct sw_io *io, int rc, bool reading)
{
    SSL *ssl = io->tls;
    int saved = errno;
    int e = SSL_get_error(ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        io->want = SW_IO_WANT_READ;
        return SW_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        io->want = SW_IO_WANT_WRITE;
        return SW_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        /* close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a bare EOF. */
        ERR_clear_error();
        return reading ? 0 : SW_ECLOSED;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        SSL_set_quiet_shutdown(ssl, 1);
        io->last_errno = saved;
        if (saved == 0) {
            return reading ? 0 : SW_ECLOSED;
        }
        if (saved == EAGAIN || saved == EINTR) {
            io->want = reading ? SW_IO_WANT_READ : SW_IO_WANT_WRITE;
            return SW_AGAIN;
        }
        return saved == ECONNRESET || saved == EPIPE || saved == ENOTCONN ||
                       saved == ETIMEDOUT
                   ? SW_ECLOSED
                   : SW_ERROR;
    default: {
        unsigned long code = ERR_peek_last_error();
        const char *r = code != 0 ? ERR_reason_error_string(code) : NULL;
        sw_log_debug("tls: fd %d: %s failed: %s", io->fd,
                     reading ? "read" : "write", r != NULL ? r : "error");
        ERR_clear_error();
        SSL_set_quiet_shutdown(ssl, 1);
        io->last_errno = EPROTO;
        return SW_ERROR;
    }
    }
}

/* Renegotiation: SSL_OP_NO_RENEGOTIATION makes OpenSSL refuse a client's
 * renegotiation hello with a no_renegotiation alert and carry on. We end
 * such a connection instead, and say so once: the info callback marks the
 * SSL (ex data) when that alert is written, and the next read fails. */
static int reneg_index = -1;
static pthread_once_t reneg_once = PTHREAD_ONCE_INIT;

static void
reneg_index_init(void)
{
    reneg_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static void
info_cb(const SSL *ssl, int where, int ret)
{
    if ((where & SSL_CB_WRITE_ALERT) != SSL_CB_WRITE_ALERT ||
        (ret & 0xff) != SSL_AD_NO_RENEGOTIATION || reneg_index < 0) {
        return;
    }
    SSL *s = (SSL *)ssl; /* ex data on a const SSL: OpenSSL's own cast */
    if (SSL_get_ex_data(s, reneg_index) != NULL) {
        return;
    }
    SSL_set_ex_data(s, reneg_index, s);
    char peer[64];
    peer_name(SSL_get_fd(ssl), peer, sizeof(peer));
    sw_log_warn("tls: client %s attempted renegotiation: refused, closing",
                peer);
}

void
sw__tls_watch_renegotiation(SSL_CTX *ctx)
{
    pthread_once(&reneg_once, reneg_index_init);
    SSL_CTX_set_info_callback(ctx, info_cb);
}

static bool
renegotiation_refused(SSL *ssl)
{
    return reneg_index >= 0 && SSL_get_ex_data(ssl, reneg_index) != NULL;
}

static ssize_t
tls_recv(struct sw_io *io, void *buf, size_t n)
{
    size_t got = 0;
    io->want = SW_IO_WANT_NONE;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_read_ex(io->tls, buf, n, &got);
    if (renegotiation_refused(io->tls)) {
        SSL_set_quiet_shutdown(io->tls, 1);
        io->last_errno = EPROTO;
        return SW_ERROR;
    }
    if (rc == 1) {
        return (ssize_t)got;
    }
    return map_error(io, rc, true);
}

static ssize_t
tls_send(struct sw_io *io, const void *buf, size_t n)
{
    size_t put = 0;
    io->want = SW_IO_WANT_NONE;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_write_ex(io->tls, buf, n, &put);
    if (rc == 1) {
        return (ssize_t)put;
    }
    return map_error(io, rc, false);
}

static void
tls_close(struct sw_io *io)
{
    SSL *ssl = io->tls;
    if (ssl == NULL) {
        return;
    }
    /* Best effort: one close_notify if the socket takes it now; a peer
     * that needs it sees EOF otherwise (RFC 8446 6.1 allows not waiting
     * for the reply). */
    /* After a fatal error (quiet set) no alert may be sent, and skipping
     * SSL_shutdown also drops the session from the cache. */
    if (SSL_is_init_finished(ssl) && !SSL_get_quiet_shutdown(ssl)) {
        ERR_clear_error();
        SSL_shutdown(ssl);
        ERR_clear_error();
    }
    SSL_free(ssl);
    io->tls = NULL;
}

static size_t
tls_pending(const struct sw_io *io)
{
    int n = io->tls != NULL ? SSL_pending(io->tls) : 0;
    return n > 0 ? (size_t)n : 0;
}

/* The same BIO both ways: SSL_set_bio takes the one reference and frees
 * the BIO(s) it replaces. Bytes the SSL holds (a record read ahead or
 * partly written, decrypted bytes) stay with it across the change. */
static void
tls_set_bio(struct sw_io *io, void *bio)
{
    SSL_set_bio(io->tls, bio, bio);
}

/*
 * A plain HTTP request on a TLS port: answer 400 in clear text, as nginx
 * does, after reading what the client sent so that the close does not
 * become a reset that destroys the answer in flight.
 */
static void
answer_plain_http(struct sw_io *io)
{
    char sink[4096];
    for (int i = 0; i < 4; i++) {
        if (recv(io->fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0) {
            break;
        }
    }
    ssize_t w = send(io->fd, http_answer, sizeof(http_answer) - 1,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    SW_UNUSED(w); /* best effort: the connection closes either way */
    shutdown(io->fd, SHUT_WR);
}

static enum sw_status
tls_handshake(struct sw_io *io)
{
    SSL *ssl = io->tls;
    char peer[INET6_ADDRSTRLEN + 8];
    io->want = SW_IO_WANT_NONE;
    if (SSL_is_server(ssl) && SSL_get_app_data(ssl) == NULL) {
        unsigned char first[PEEK_BYTES];
        ssize_t n = recv(io->fd, first, sizeof(first), MSG_PEEK);
        if (n < 0) {
            io->last_errno = errno;
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                io->want = SW_IO_WANT_READ;
                return SW_AGAIN;
            }
            return SW_ECLOSED;
        }
        if (n == 0) {
            peer_name(io->fd, peer, sizeof(peer));
            sw_log_info("tls: handshake failed: connection closed by the "
                        "client %s before the ClientHello (fd %d)",
                        peer, io->fd);
            return SW_ECLOSED;
        }
        if (sw__tls_looks_like_http(first, (size_t)n)) {
            peer_name(io->fd, peer, sizeof(peer));
            sw_log_info("tls: handshake failed: http request on a TLS port "
                        "from %s (fd %d): answered 400",
                        peer, io->fd);
            SSL_set_quiet_shutdown(ssl, 1);
            answer_plain_http(io);
            return SW_EPROTO;
        }
        SSL_set_app_data(ssl, (void *)ssl); /* checked: never again */
    }
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(ssl);
    if (rc == 1) {
        return SW_OK;
    }
    int saved = errno;
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ) {
        io->want = SW_IO_WANT_READ;
        return SW_AGAIN;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        io->want = SW_IO_WANT_WRITE;
        return SW_AGAIN;
    }
    SSL_set_quiet_shutdown(ssl, 1);
    peer_name(io->fd, peer, sizeof(peer));
    const char *who = SSL_is_server(ssl) ? "client" : "server";
    if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        io->last_errno = saved;
        sw_log_info("tls: handshake failed: %s with %s %s (fd %d)",
                    saved != 0 ? strerror(saved) : "connection closed", who,
                    peer, io->fd);
        return saved == 0 || saved == ECONNRESET || saved == EPIPE ? SW_ECLOSED
                                                                   : SW_ERROR;
    }
    unsigned long code = ERR_peek_last_error();
    const char *r = code != 0 ? ERR_reason_error_string(code) : NULL;
    if (code != 0 && ERR_GET_LIB(code) == ERR_LIB_SSL &&
        ERR_GET_REASON(code) == SSL_R_HTTP_REQUEST) {
        r = "http request on a TLS port";
    }
    long vr = SSL_get_verify_result(ssl);
    if (!SSL_is_server(ssl) && vr != X509_V_OK) {
        sw_log_info("tls: handshake failed: certificate verify failed: %s "
                    "(server %s, fd %d)",
                    X509_verify_cert_error_string(vr), peer, io->fd);
    } else {
        sw_log_info("tls: handshake failed: %s (%s %s, fd %d)",
                    r != NULL ? r : "protocol error", who, peer, io->fd);
    }
    ERR_clear_error();
    io->last_errno = EPROTO;
    return SW_EPROTO;
}

const struct sw_io_ops sw_io_tls = {
    .recv = tls_recv,
    .send = tls_send,
    .close = tls_close,
    .handshake = tls_handshake,
    .pending = tls_pending,
    .set_bio = tls_set_bio,
    .can_splice = false,
    .scheme = "https",
};

const char *
sw_tls_version(const struct sw_io *io)
{
    SSL *ssl = io->tls;
    return ssl != NULL && SSL_is_init_finished(ssl) ? SSL_get_version(ssl) : "";
}

const char *
sw_tls_cipher(const struct sw_io *io)
{
    SSL *ssl = io->tls;
    return ssl != NULL && SSL_is_init_finished(ssl) ? SSL_get_cipher_name(ssl)
                                                    : "";
}

bool
sw_tls_is_resumed(const struct sw_io *io)
{
    return io->tls != NULL && SSL_session_reused(io->tls) == 1;
}
