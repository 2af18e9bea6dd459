/*
 * ring_int.h - what conn.c asks of the io_uring engine (ring.c) for a
 * connection that joined a ring. Private to lib/conn.
 */
#ifndef SHOCKWAVE_RING_INT_H
#define SHOCKWAVE_RING_INT_H

#include <shockwave/conn.h>
#include <shockwave/ring.h>

struct iovec;

/* sw__ring_recv: nothing came through the ring, read the socket itself
 * (the end reads straight from its socket: for a splice, or while the
 * provided buffers ran out). */
#define SW_RING_DIRECT (-100)

/* Move c onto the ring (c->ring set). False without memory. */
bool sw__ring_join(struct sw_ring *r, struct sw_conn *c);

/* sw_conn_watch for an end on the ring. */
void sw__ring_watch(struct sw_conn *c, bool read, bool write);

/* Bytes that came through the ring, copied to p; 0 at EOF; SW_AGAIN;
 * SW_ECLOSED / SW_ERROR with c->io.last_errno; or SW_RING_DIRECT. */
ssize_t sw__ring_recv(struct sw_conn *c, uint8_t *p, size_t room);

/* Queue n pieces for the next send: the bytes taken (0 while the staging
 * buffer is full), or SW_ECLOSED / SW_ERROR once a send failed. */
ssize_t sw__ring_sendv(struct sw_conn *c, const struct iovec *iov, int n);

/* Close the socket, after the queued sends when there are some (the ring
 * keeps it that long, bounded). c holds no socket afterwards. */
void sw__ring_close(struct sw_conn *c, bool gently);

/* shutdown(SHUT_WR) once the queued sends are out. */
void sw__ring_shutdown_write(struct sw_conn *c);

/* Take c off the ring (back to epoll): true when done, false when bytes
 * are still queued or received (c stays on the ring). */
bool sw__ring_leave(struct sw_conn *c);

/* Splicing from c's socket from now on: the receive is stopped (true), or
 * it did not stop (false: c receives as before). Bytes received before
 * are still c's, and sw__ring_splice_from moves them first. */
bool sw__ring_splice_begin(struct sw_conn *c);

/* Receive through the ring again (once no splice from it is in flight). */
void sw__ring_splice_end(struct sw_conn *c);

/* sw_conn_splice_from / _to on the ring (ring_splice.c). */
ssize_t sw__ring_splice_from(struct sw_conn *c, int pfd, size_t want);
ssize_t sw__ring_splice_to(struct sw_conn *c, int pfd, size_t n);

/* After a direct read found nothing: receive through the ring again if
 * the end went direct for want of buffers and they are back. */
void sw__ring_retry_buffers(struct sw_conn *c);

/* Nothing queued or in flight toward the socket. */
bool sw__ring_tx_idle(const struct sw_conn *c);

/* The ring saw the peer reset or fail. */
bool sw__ring_failed(const struct sw_conn *c);

/* ring_bio.c: an OpenSSL BIO (returned as void *, so that conn.c needs no
 * OpenSSL header) carrying a TLS end's records through c's end on the
 * ring; it borrows c. NULL without memory. */
void *sw__ring_bio_new(struct sw_conn *c);

/* A socket BIO on fd that leaves the fd open (BIO_NOCLOSE): what carries
 * the records again once the end is off the ring. NULL without memory. */
void *sw__ring_bio_socket(int fd);

/* Free a BIO no SSL took (NULL accepted). */
void sw__ring_bio_free(void *bio);

#endif
