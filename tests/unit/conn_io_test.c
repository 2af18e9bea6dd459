/*
 * conn_io_test.c - Check suite for lib/conn's byte moving over real sockets
 * and a real event_base: sw_conn_read at data, EOF, reset, an empty socket
 * and a full c->in; sw_conn_flush whole, partial against a full socket and
 * after the peer went away; a gentle close that the peer sees as data then
 * EOF; and the TLS transport's pending bytes turned into a read callback.
 * The lifecycle, watch, timer and flags tests are in conn_test.c; the rig
 * both use is conn_rig.c.
 *
 *   test end                              peer end
 *   struct sw_conn (fd a) <-- socket --> plain fd b, driven by the test
 *
 * Pairs are socketpair(AF_UNIX), or loopback TCP where a reset or a small
 * receive window is needed. Every wait on a socket is a poll() with a
 * deadline. Assertions are on bytes, flags and callback counts, never on
 * timings.
 */
#include <shockwave/conn.h>
#include <shockwave/tls.h>

#include "conn_rig.h"
#include "support.h"

#include <check.h>
#include <errno.h>
#include <linux/sockios.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- sw_conn_read ------------------------------------------------------- */

START_TEST(test_read_data_again_eof)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    int sv[2];
    conn_on_pair(&c, "client", &o, sv, false);

    /* Nothing there: SW_AGAIN, no EOF. The buffer may be taken already;
     * it is empty and release_idle gives it back. */
    ck_assert_int_eq(sw_conn_read(&c), SW_AGAIN);
    ck_assert_uint_eq(c.flags, 0);
    ck_assert_uint_eq(sw_conn_buffered(c.in), 0);
    sw_conn_release_idle(&c);
    ck_assert_ptr_null(c.in);
    ck_assert_uint_eq(pool.nused, 0);

    peer_send(sv[1], "hello", 5);
    ck_assert_int_eq(sw_conn_read(&c), 5);
    check_in(&c, "hello");
    ck_assert_uint_eq(pool.nused, 1);

    /* Appends after what is there. */
    peer_send(sv[1], " world", 6);
    ck_assert_int_eq(sw_conn_read(&c), 6);
    check_in(&c, "hello world");
    ck_assert_int_eq(sw_conn_read(&c), SW_AGAIN);
    check_in(&c, "hello world");
    ck_assert_uint_eq(c.flags, 0);

    /* Consumed to the end: the next read starts at the front again. */
    c.in->pos = c.in->last;
    peer_send(sv[1], "again", 5);
    ck_assert_int_eq(sw_conn_read(&c), 5);
    check_in(&c, "again");
    ck_assert_ptr_eq(c.in->pos, c.in->start);

    /* Orderly EOF: 0 and EOF without RESET; the bytes stay. */
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
    ck_assert_int_eq(sw_conn_read(&c), 0);
    ck_assert_uint_eq(c.flags, SW_CONN_F_EOF);
    check_in(&c, "again");
    /* EOF stays EOF. */
    ck_assert_int_eq(sw_conn_read(&c), 0);
    ck_assert_uint_eq(c.flags, SW_CONN_F_EOF);

    sw_conn_close(&c);
    close(sv[1]);
    rig_fini();
}
END_TEST

START_TEST(test_read_full_buffer)
{
    rig_init(64);
    struct owner o = {0};
    struct sw_conn c;
    int sv[2];
    conn_on_pair(&c, "client", &o, sv, false);

    uint8_t data[100];
    fill_pattern(data, sizeof(data), 0);
    peer_send(sv[1], data, sizeof(data));
    ck_assert_int_eq(sw_conn_read(&c), 64);
    ck_assert_uint_eq(sw_buf_len(c.in), 64);
    ck_assert_uint_eq(sw_buf_room(c.in), 0);
    ck_assert(is_pattern(c.in->pos, 64, 0));

    /* Full with nothing consumed: SW_AGAIN, the socket keeps its bytes. */
    ck_assert_int_eq(sw_conn_read(&c), SW_AGAIN);
    ck_assert_int_eq(sw_conn_read(&c), SW_AGAIN);
    ck_assert_uint_eq(c.flags, 0);
    ck_assert_uint_eq(sw_buf_len(c.in), 64);
    ck_assert(is_readable(sv[0]));

    /* 10 consumed: the rest moves to the front and 10 more come in. */
    c.in->pos += 10;
    ck_assert_int_eq(sw_conn_read(&c), 10);
    sw__buf_validate(c.in);
    ck_assert_ptr_eq(c.in->pos, c.in->start);
    ck_assert_uint_eq(sw_buf_len(c.in), 64);
    ck_assert(is_pattern(c.in->pos, 64, 10));

    /* All consumed: the last 26 bytes from the front. */
    c.in->pos = c.in->last;
    ck_assert_int_eq(sw_conn_read(&c), 26);
    ck_assert(is_pattern(c.in->pos, 26, 74));
    ck_assert_int_eq(sw_conn_read(&c), SW_AGAIN);
    ck_assert_uint_eq(c.flags, 0);

    sw_conn_close(&c);
    close(sv[1]);
    rig_fini();
}
END_TEST

START_TEST(test_read_reset)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    int sv[2];
    conn_on_pair(&c, "upstream", &o, sv, true);

    peer_send(sv[1], "abc", 3);
    ck_assert(wait_readable(sv[0]));
    ck_assert_int_eq(sw_conn_read(&c), 3);
    ck_assert_int_eq(sw_conn_read(&c), SW_AGAIN);
    close_reset(sv[1]);
    ck_assert(wait_readable(sv[0]));
    ck_assert_int_eq(sw_conn_read(&c), SW_ECLOSED);
    ck_assert_int_eq(c.io.last_errno, ECONNRESET);
    ck_assert_uint_eq(c.flags, SW_CONN_F_EOF | SW_CONN_F_RESET);
    check_in(&c, "abc");

    sw_conn_close(&c);
    ck_assert_uint_eq(c.flags, 0);
    rig_fini();
}
END_TEST

/* ---- sw_conn_flush ------------------------------------------------------ */

START_TEST(test_flush_all)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    int sv[2];
    conn_on_pair(&c, "client", &o, sv, false);

    /* No buffer, an empty buffer: nothing to send. */
    ck_assert_int_eq(sw_conn_flush(&c), 0);
    ck_assert_uint_eq(sw_conn_out_room(&c), 4096);
    ck_assert_int_eq(sw_conn_flush(&c), 0);

    uint8_t data[3000];
    fill_pattern(data, sizeof(data), 0);
    put_bytes(&c, data, sizeof(data));
    ck_assert_uint_eq(sw_conn_out_room(&c), 4096 - 3000);
    ck_assert_int_eq(sw_conn_flush(&c), 3000);
    sw__buf_validate(c.out);
    ck_assert_uint_eq(sw_buf_len(c.out), 0);
    /* Not rewound by the flush: the sent bytes stay readable (a kept
     * request head is resent from them); the next use rewinds it. */
    ck_assert_ptr_eq(c.out->last, c.out->start + 3000);
    ck_assert(is_pattern(c.out->start, 3000, 0));
    ck_assert_uint_eq(sw_conn_out_room(&c), 4096);
    ck_assert_ptr_eq(c.out->pos, c.out->start);
    ck_assert_uint_eq(c.flags, 0);

    uint8_t got[4096];
    ssize_t end;
    int err;
    shutdown(sv[0], SHUT_WR);
    ck_assert_uint_eq(peer_recv_all(sv[1], got, sizeof(got), &end, &err), 3000);
    ck_assert_int_eq(end, 0);
    ck_assert(is_pattern(got, 3000, 0));

    /* sw_conn_send_buf takes a buffer of the caller's too, and NULL. */
    ck_assert_int_eq(sw_conn_send_buf(&c, NULL), 0);

    sw_conn_close(&c);
    close(sv[1]);
    rig_fini();
}
END_TEST

START_TEST(test_flush_partial)
{
    const size_t total = 256 * 1024;
    rig_init(total);
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    int sv[2];
    unix_pair(sv);
    /* A small socket buffer: the first flush cannot take it all. */
    int small = 16 * 1024;
    ck_assert_int_eq(
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    attach_fd(&c, sv[0]);

    ck_assert_uint_eq(sw_conn_out_room(&c), total);
    fill_pattern(c.out->last, total, 0);
    c.out->last += total;

    ssize_t n = sw_conn_flush(&c);
    ck_assert_int_gt(n, 0);
    ck_assert_int_lt(n, (ssize_t)total);
    sw__buf_validate(c.out);
    ck_assert_uint_eq(sw_buf_len(c.out), total - (size_t)n);
    /* Not rewound while bytes remain: pos moved by what was sent. */
    ck_assert_ptr_eq(c.out->pos, c.out->start + n);
    ck_assert_uint_eq(c.flags, 0);

    /* The socket is full: 0, nothing lost, not dead. */
    ck_assert_int_eq(sw_conn_flush(&c), 0);
    ck_assert_uint_eq(sw_buf_len(c.out), total - (size_t)n);
    ck_assert_uint_eq(c.flags, 0);

    /* Not writable while full: the write callback does not come. */
    sw_conn_watch(&c, false, true);
    ck_assert_uint_eq(c.flags, SW_CONN_F_WRITING);
    pump();
    ck_assert_int_eq(o.writes, 0);

    /* Drain on the peer, flush on each write callback, until all is sent. */
    uint8_t *got = malloc(total);
    ck_assert_ptr_nonnull(got);
    size_t rcvd = 0;
    size_t sent = (size_t)n;
    int partial = 1; /* the first flush above */
    for (int i = 0; i < 100000 && rcvd < total; i++) {
        ssize_t r = recv(sv[1], got + rcvd, total - rcvd, 0);
        if (r > 0) {
            rcvd += (size_t)r;
        } else {
            ck_assert_int_eq(errno, EAGAIN);
        }
        int before = o.writes;
        pump();
        if (o.writes > before && sw_buf_len(c.out) > 0) {
            ck_assert_ptr_eq(o.seen, &c);
            size_t left = sw_buf_len(c.out);
            ssize_t k = sw_conn_flush(&c);
            ck_assert_int_ge(k, 0);
            sent += (size_t)k;
            if (k > 0 && (size_t)k < left) {
                partial++;
            }
            if (sw_buf_len(c.out) == 0) {
                sw_conn_watch(&c, false, false);
            }
        }
    }
    ck_assert_uint_eq(sent, total);
    ck_assert_uint_eq(rcvd, total);
    ck_assert_int_ge(partial, 2);
    ck_assert(is_pattern(got, total, 0));
    ck_assert_uint_eq(sw_buf_len(c.out), 0);
    ck_assert_uint_eq(sw_conn_out_room(&c), c.out->end - c.out->start);
    ck_assert_uint_eq(c.flags, 0);
    free(got);

    sw_conn_close(&c);
    close(sv[1]);
    rig_fini();
}
END_TEST

START_TEST(test_flush_peer_gone)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);

    /* Unix pair, peer closed: EPIPE at once. */
    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);
    close(sv[1]);
    put_bytes(&c, "lost", 4);
    ck_assert_int_eq(sw_conn_flush(&c), SW_ECLOSED);
    ck_assert_int_eq(c.io.last_errno, EPIPE);
    ck_assert(sw_conn_has(&c, SW_CONN_F_DEAD));
    ck_assert_uint_eq(sw_buf_len(c.out), 4);
    /* Dead stays dead, without another send (errno is left alone). */
    c.io.last_errno = 0;
    ck_assert_int_eq(sw_conn_flush(&c), SW_ECLOSED);
    ck_assert_int_eq(sw_conn_flush(&c), SW_ECLOSED);
    ck_assert_int_eq(sw_conn_send_buf(&c, NULL), SW_ECLOSED);
    ck_assert_int_eq(c.io.last_errno, 0);
    ck_assert(sw_conn_has(&c, SW_CONN_F_DEAD));
    char flags[SW_CONN_FLAGS_TEXT];
    ck_assert_str_eq(sw_conn_show_flags(c.flags, flags, sizeof(flags)), "DEAD");
    sw_conn_close(&c);
    ck_assert_uint_eq(c.flags, 0);

    /* TCP, peer reset: ECONNRESET (or EPIPE once it was reported). */
    tcp_pair(sv);
    attach_fd(&c, sv[0]);
    close_reset(sv[1]);
    ck_assert(wait_readable(sv[0])); /* the reset has arrived */
    put_bytes(&c, "lost", 4);
    ck_assert_int_eq(sw_conn_flush(&c), SW_ECLOSED);
    ck_assert(c.io.last_errno == ECONNRESET || c.io.last_errno == EPIPE);
    ck_assert(sw_conn_has(&c, SW_CONN_F_DEAD));
    ck_assert_int_eq(sw_conn_flush(&c), SW_ECLOSED);
    ck_assert_int_eq(sw_conn_flush(&c), SW_ECLOSED);
    ck_assert(sw_conn_has(&c, SW_CONN_F_DEAD));

    /* Attach starts clear: a new socket is not dead. */
    sw_conn_close(&c);
    unix_pair(sv);
    attach_fd(&c, sv[0]);
    ck_assert_uint_eq(c.flags, 0);
    put_bytes(&c, "ok", 2);
    ck_assert_int_eq(sw_conn_flush(&c), 2);
    sw_conn_close(&c);
    close(sv[1]);
    rig_fini();
}
END_TEST

/* ---- a gentle close ----------------------------------------------------- */

/*
 * Our end got `unread` bytes it never read; it sends until its socket is
 * full, so that some bytes are still queued on our side (not yet in the
 * peer's receive buffer) when it is closed, gently or not. Returns what
 * the peer read in the end and how its reads ended; *sent gets what we
 * sent.
 */
static size_t
close_with_unread(bool gently, size_t unread, uint8_t *got, size_t cap,
                  size_t *sent, ssize_t *end, int *err)
{
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    int sv[2];
    tcp_pair_rcvbuf(sv, 4096);
    int sndbuf = 16 * 1024;
    ck_assert_int_eq(
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    attach_fd(&c, sv[0]);
    uint8_t *junk = malloc(unread);
    ck_assert_ptr_nonnull(junk);
    memset(junk, 'j', unread);
    peer_send(sv[1], junk, unread);
    free(junk);
    ck_assert(wait_readable(sv[0]));

    /* Send the pattern until the socket takes no more. */
    *sent = 0;
    for (int i = 0; i < 10000; i++) {
        size_t room = sw_conn_out_room(&c);
        fill_pattern(c.out->last, room, *sent + sw_buf_len(c.out));
        c.out->last += room;
        ssize_t n = sw_conn_flush(&c);
        ck_assert_int_ge(n, 0);
        *sent += (size_t)n;
        if (sw_buf_len(c.out) > 0) {
            break;
        }
    }
    ck_assert_uint_gt(*sent, 0);
    ck_assert_uint_le(*sent, cap);
    /* Bytes are still on our side: the peer's window is closed. */
    int queued = 0;
    ck_assert_int_eq(ioctl(sv[0], SIOCOUTQ, &queued), 0);
    ck_assert_int_gt(queued, 0);

    sw_conn_watch(&c, true, false);
    if (gently) {
        sw_conn_close_gently(&c);
    } else {
        sw_conn_close(&c);
    }
    ck_assert_int_eq(c.io.fd, -1);
    ck_assert_uint_eq(c.flags, 0);
    ck_assert_ptr_null(c.in);
    ck_assert_ptr_null(c.out);
    ck_assert_uint_eq(pool.nused, 0);
    size_t n = peer_recv_all(sv[1], got, cap, end, err);
    close(sv[1]);
    return n;
}

START_TEST(test_close_gently)
{
    rig_init(4096);
    size_t cap = 4u << 20;
    uint8_t *got = malloc(cap);
    ck_assert_ptr_nonnull(got);
    size_t sent;
    ssize_t end;
    int err;

    /* Unread input, more than one drain read: the peer reads every byte
     * we sent, including those still queued at the close, then EOF. */
    size_t n = close_with_unread(true, 20000, got, cap, &sent, &end, &err);
    ck_assert_msg(end == 0, "peer saw an error (%s), not EOF", strerror(err));
    ck_assert_uint_eq(n, sent);
    ck_assert(is_pattern(got, n, 0));

    /* A single unread byte is enough to need it. */
    n = close_with_unread(true, 1, got, cap, &sent, &end, &err);
    ck_assert_msg(end == 0, "peer saw an error (%s), not EOF", strerror(err));
    ck_assert_uint_eq(n, sent);
    ck_assert(is_pattern(got, n, 0));

    /* What it prevents: a plain close with unread input is a reset, the
     * bytes still queued are lost and the peer reads an error. */
    n = close_with_unread(false, 20000, got, cap, &sent, &end, &err);
    ck_assert_int_eq(end, -1);
    ck_assert_int_eq(err, ECONNRESET);
    ck_assert_uint_lt(n, sent);
    free(got);

    /* Gentle on a closed end is a plain no-op. */
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    sw_conn_close_gently(&c);
    ck_assert_int_eq(c.io.fd, -1);
    rig_fini();
}
END_TEST

/* ---- TLS: pending decrypted bytes --------------------------------------- */

/* A server context with a throwaway self-signed P-256 certificate. */
static SSL_CTX *
tls_server_ctx(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(key);
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)"conn.test", -1, -1, 0);
    ck_assert_int_eq(X509_set_issuer_name(x, name), 1);
    ck_assert_int_eq(X509_set_pubkey(x, key), 1);
    ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(SSL_CTX_use_certificate(ctx, x), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(x);
    EVP_PKEY_free(key);
    return ctx;
}

START_TEST(test_tls_pending_read)
{
    /* Buffers of 10 bytes: a 100-byte record is read in ten pieces, and
     * after the first one OpenSSL holds the rest decrypted: the socket has
     * nothing to signal. */
    rig_init(10);
    SSL_CTX *sctx = tls_server_ctx();
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(cctx);
    int sv[2];
    unix_pair(sv);

    SSL *ours = SSL_new(sctx);
    ck_assert_ptr_nonnull(ours);
    SSL_set_fd(ours, sv[0]);
    SSL_set_accept_state(ours);
    SSL *peer = SSL_new(cctx);
    ck_assert_ptr_nonnull(peer);
    SSL_set_fd(peer, sv[1]);
    SSL_set_connect_state(peer);

    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    sw_conn_attach(
        &c, &(struct sw_io){.fd = sv[0], .ops = &sw_io_tls, .tls = ours});

    enum sw_status rc = SW_AGAIN;
    bool peer_ok = false;
    for (int i = 0; i < 100 && !(rc == SW_OK && peer_ok); i++) {
        if (rc == SW_AGAIN) {
            rc = c.io.ops->handshake(&c.io);
        }
        if (!peer_ok) {
            ERR_clear_error();
            int r = SSL_do_handshake(peer);
            peer_ok = r == 1;
            if (!peer_ok) {
                int e = SSL_get_error(peer, r);
                ck_assert(e == SSL_ERROR_WANT_READ ||
                          e == SSL_ERROR_WANT_WRITE);
            }
        }
        ck_assert(rc == SW_OK || rc == SW_AGAIN);
    }
    ck_assert_int_eq(rc, SW_OK);
    ck_assert(peer_ok);
    /* Let the peer take its tickets, so nothing is left in flight. */
    char sink[256];
    ERR_clear_error();
    SSL_read(peer, sink, sizeof(sink));
    ERR_clear_error();

    uint8_t msg[100];
    fill_pattern(msg, sizeof(msg), 0);
    ck_assert_int_eq(SSL_write(peer, msg, sizeof(msg)), (int)sizeof(msg));
    ck_assert(wait_readable(sv[0]));
    ck_assert_int_eq(sw_conn_read(&c), 10);
    ck_assert_uint_eq(c.io.ops->pending(&c.io), 90);
    ck_assert(!is_readable(sv[0])); /* the whole record left the socket */

    /* Each watch with read schedules a callback while bytes are pending;
     * the socket alone would never fire one. */
    uint8_t got[100];
    size_t rcvd = 10;
    memcpy(got, c.in->pos, 10);
    c.in->pos = c.in->last;
    for (int i = 0; i < 20 && rcvd < sizeof(got); i++) {
        ck_assert(!is_readable(sv[0]));
        int before = o.reads;
        sw_conn_watch(&c, true, false);
        ck_assert(sw_conn_has(&c, SW_CONN_F_READING));
        pump();
        ck_assert_int_eq(o.reads, before + 1);
        ck_assert_ptr_eq(o.seen, &c);
        ssize_t n = sw_conn_read(&c);
        ck_assert_int_eq(n, 10);
        memcpy(got + rcvd, c.in->pos, 10);
        rcvd += 10;
        c.in->pos = c.in->last;
    }
    ck_assert_uint_eq(rcvd, sizeof(got));
    ck_assert(is_pattern(got, sizeof(got), 0));
    ck_assert_uint_eq(c.io.ops->pending(&c.io), 0);

    /* Nothing pending, nothing on the socket: no callback. */
    int before = o.reads;
    sw_conn_watch(&c, true, false);
    pump();
    pump();
    ck_assert_int_eq(o.reads, before);

    /* Pending bytes, but the owner watches write only: no read callback. */
    ck_assert_int_eq(SSL_write(peer, msg, 20), 20);
    ck_assert(wait_readable(sv[0]));
    ck_assert_int_eq(sw_conn_read(&c), 10);
    ck_assert_uint_eq(c.io.ops->pending(&c.io), 10);
    c.in->pos = c.in->last;
    sw_conn_watch(&c, false, true);
    before = o.reads;
    pump();
    ck_assert_int_eq(o.reads, before);
    ck_assert_int_ge(o.writes, 1);

    /* Close ends the TLS session: the peer reads close_notify. */
    sw_conn_close(&c);
    ck_assert_ptr_null(c.io.tls);
    ERR_clear_error();
    ck_assert(wait_readable(sv[1]));
    int r = SSL_read(peer, sink, sizeof(sink));
    ck_assert_int_eq(SSL_get_error(peer, r), SSL_ERROR_ZERO_RETURN);
    ERR_clear_error();
    SSL_free(peer);
    close(sv[1]);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    rig_fini();
}
END_TEST

static Suite *
conn_io_suite(void)
{
    Suite *s = suite_create("conn_io");
    TCase *rd = tcase_create("read");
    tcase_add_checked_fixture(rd, rig_setup, NULL);
    tcase_add_test(rd, test_read_data_again_eof);
    tcase_add_test(rd, test_read_full_buffer);
    tcase_add_test(rd, test_read_reset);
    suite_add_tcase(s, rd);

    TCase *fl = tcase_create("flush");
    tcase_add_checked_fixture(fl, rig_setup, NULL);
    tcase_add_test(fl, test_flush_all);
    tcase_add_test(fl, test_flush_partial);
    tcase_add_test(fl, test_flush_peer_gone);
    suite_add_tcase(s, fl);

    TCase *cl = tcase_create("close");
    tcase_add_checked_fixture(cl, rig_setup, NULL);
    tcase_add_test(cl, test_close_gently);
    suite_add_tcase(s, cl);

    TCase *tl = tcase_create("tls");
    tcase_add_checked_fixture(tl, rig_setup, NULL);
    tcase_add_test(tl, test_tls_pending_read);
    suite_add_tcase(s, tl);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(conn_io_suite());
}
