/*
 * tls.h - TLS termination (clients: https://, wss://) and TLS toward
 * upstream servers, on OpenSSL 3.
 *
 * A `struct sw_tls_ctx` holds every SSL_CTX one configuration snapshot
 * needs; the daemon builds it right after sw_conf_load() and hangs it on the
 * snapshot (cf->tls, cf->tls_free), so a live connection keeps the contexts
 * of the snapshot it started with and a reload never drops one:
 *
 *   sw_conf_load --> sw_tls_ctx_new(cf) --> cf->tls = ctx
 *                                             |
 *   accept on `listen ... tls` --> sw_tls_server_attach(cf->tls, w, io)
 *        --> io->ops->handshake until SW_OK --> HTTP / WebSocket as usual
 *   connect to `server ... tls` --> sw_tls_client_attach(...) --> same
 *
 * What a context holds:
 *   - per worker, one server SSL_CTX per certificate; the worker's first one
 *     owns that worker's session cache (so no cache lock is shared between
 *     workers), the others are switched to by SNI;
 *   - one client SSL_CTX per upstream that has a `tls` server;
 *   - the session ticket keys, shared by all workers (a client may resume on
 *     any worker: SO_REUSEPORT spreads its connections), rotated every
 *     tls_ticket_rotate; the previous key still decrypts.
 *
 * Ownership: io->tls is an owned SSL * once attached; io->ops->close frees
 * it (never the fd). The context is owned by the snapshot.
 *
 * Threading: a context is immutable after sw_tls_ctx_new except for the
 * ticket keys (one mutex, taken once per handshake that issues or reads a
 * ticket, never on the byte path). A connection's SSL belongs to the worker
 * that accepted it.
 */
#ifndef SHOCKWAVE_TLS_H
#define SHOCKWAVE_TLS_H

#include <shockwave/conf.h>
#include <shockwave/io.h>

struct sw_tls_ctx;

/*
 * Build every TLS context `cf` needs: server certificates (with SNI names
 * from subjectAltName DNS entries, CN as fallback), OCSP responses, cipher
 * lists and protocol range, per-worker session caches (nworkers >= 1) and
 * one client context per upstream with a `tls` server.
 *
 * Returns the context (possibly empty when no TLS is configured), or NULL
 * with one "FILE: reason" line per problem in err (a bad certificate, a key
 * that does not match it, an unreadable file, a cipher string OpenSSL
 * rejects). err is always NUL-terminated when errlen > 0.
 */
struct sw_tls_ctx *sw_tls_ctx_new(const struct sw_conf *cf, unsigned nworkers,
                                  char *err, size_t errlen);

/* Free a context (matches sw_conf.tls_free). Accepts NULL. Live SSL objects
 * keep their own references to the SSL_CTXs they use. */
void sw_tls_ctx_free(void *ctx);

/* Server certificates configured (0: a `tls` listener cannot be served). */
size_t sw_tls_ctx_ncerts(const struct sw_tls_ctx *t);

/*
 * Server side: make an accepted plain io (io->fd set, non-blocking) a TLS
 * io: io->ops = &sw_io_tls, io->tls = a new SSL in accept state using
 * worker `worker`'s contexts (taken modulo the context's worker count).
 * The handshake is then driven by io->ops->handshake.
 *
 * Returns SW_OK; SW_ENOMEM (io unchanged); SW_EINVAL when t is NULL or has
 * no certificate (io unchanged).
 */
enum sw_status sw_tls_server_attach(struct sw_tls_ctx *t, unsigned worker,
                                    struct sw_io *io);

/*
 * Client side, toward server `s` of upstream `up` (s->tls set): io->ops =
 * &sw_io_tls, io->tls = a new SSL in connect state with SNI (unless the
 * name is an IP address), ALPN http/1.1 and, with tls_verify on, chain and
 * name verification against tls_ca (or the system store). The name is
 * up->tls_server_name, else the host part of s->text.
 *
 * Returns SW_OK; SW_ENOMEM (io unchanged); SW_EINVAL when the context has
 * no client context for `up` (io unchanged).
 */
enum sw_status sw_tls_client_attach(struct sw_tls_ctx *t,
                                    const struct sw_conf_upstream *up,
                                    const struct sw_conf_server *s,
                                    struct sw_io *io);

/*
 * The TLS transport (scheme "https", can_splice false). recv/send follow
 * io.h; additionally:
 *   - SSL_ERROR_WANT_READ / WANT_WRITE give SW_AGAIN with io->want set;
 *   - a close_notify or a bare TCP EOF gives 0;
 *   - after SW_AGAIN, send must be called again with at least the same
 *     bytes (the buffer may move: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
 *   - handshake logs one line when it fails, naming the reason ("tls:
 *     handshake failed: unsupported protocol", "tls: http request on a TLS
 *     port") and returns SW_EPROTO; SW_ECLOSED when the peer went away.
 */
extern const struct sw_io_ops sw_io_tls;

/* Protocol and cipher of an established connection, for logs and tests:
 * "TLSv1.3", "TLS_AES_128_GCM_SHA256"; "" before the handshake. */
const char *sw_tls_version(const struct sw_io *io);
const char *sw_tls_cipher(const struct sw_io *io);

/* Whether the session was resumed (ticket or cache). */
bool sw_tls_is_resumed(const struct sw_io *io);

#endif
