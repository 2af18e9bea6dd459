/*
 * tls_int.h - private parts of the TLS module.
 *
 *   tls.c     contexts: certificates, SNI names, OCSP, ticket keys, the
 *             per-worker server SSL_CTXs and the upstream client SSL_CTXs
 *   tls_io.c  the sw_io_tls transport over one SSL: recv, send, close,
 *             handshake (with the plain-HTTP check) and pending
 *
 * Ownership: a struct sw_tls_ctx owns everything below it; each server
 * SSL_CTX carries a borrowed pointer to its struct sw__tls_worker as app
 * data, which the callbacks use to reach the context.
 *
 * Threading: see tls.h; only the ticket keys change after construction.
 */
#ifndef SW_TLS_INT_H
#define SW_TLS_INT_H

#include <shockwave/tls.h>

#include <openssl/ssl.h>
#include <pthread.h>

#define SW__TLS_MAX_FILE (1u << 20) /* bytes read from an OCSP file */

/* One `tls_certificate` after loading. */
struct sw__tls_cert {
    char **names;           /* owned: lower-case DNS names ("*.a.com") */
    size_t nnames;          /* entries in names */
    unsigned char *ocsp;    /* owned: DER OCSP response, or NULL */
    size_t ocsp_len;        /* bytes at ocsp */
    X509 *leaf;             /* owned (a reference): the certificate */
    STACK_OF(X509) * chain; /* owned: intermediates, may be empty */
    EVP_PKEY *key;          /* owned (a reference): its private key */
};

/* One worker's row of server contexts. */
struct sw__tls_worker {
    struct sw_tls_ctx *t; /* borrowed (the context owning this row) */
    SSL_CTX **ctxs;       /* owned: ncerts contexts, [0] = default and
                             the worker's session cache */
};

/* A session ticket key (RFC 5077 4 layout: name, AES key, HMAC key). */
struct sw__tls_ticket_key {
    unsigned char name[16]; /* sent in the clear with each ticket */
    unsigned char aes[32];  /* AES-256-CBC key */
    unsigned char hmac[32]; /* HMAC-SHA256 key */
    uint64_t born_ms;       /* sw_now_ms() when generated */
    bool valid;             /* generated and not expired */
};

struct sw_tls_ctx {
    struct sw__tls_cert *certs;        /* owned: ncerts, file order */
    size_t ncerts;                     /* 0 = no termination */
    struct sw__tls_worker *workers;    /* owned: nworkers rows */
    unsigned nworkers;                 /* >= 1 */
    SSL_CTX **clients;                 /* owned: one per upstream (index
                                          sw_conf_upstream.index), NULL where
                                          no server has `tls` */
    size_t nclients;                   /* cf->nupstreams */
    uint64_t rotate_ms;                /* ticket key lifetime */
    pthread_mutex_t lock;              /* guards keys */
    struct sw__tls_ticket_key keys[2]; /* [0] encrypts, [1] the previous
                                          one, still decrypts */
    bool lock_ready;                   /* lock was initialised */
};

/* The certificate index for an SNI name (exact names first, then
 * wildcards matching one label); 0 (the default) when none matches. */
size_t sw__tls_pick_cert(const struct sw_tls_ctx *t, const char *name);

/* Whether DNS name pattern pat ("a.com" or "*.a.com", lower case) covers
 * host (any case). */
bool sw__tls_name_match(const char *pat, const char *host);

/* Copy the current (enc) or named (dec) ticket key, rotating first when
 * due. Returns 0 none, 1 the current key, 2 the previous one. */
int sw__tls_ticket_key(struct sw_tls_ctx *t, const unsigned char *name,
                       struct sw__tls_ticket_key *out);

/* Whether the first bytes of a connection look like an HTTP request line
 * ("GET /"): upper-case letters then a space. */
bool sw__tls_looks_like_http(const unsigned char *p, size_t n);

/* Server contexts: log and end connections whose client tries to
 * renegotiate (tls_io.c). */
void sw__tls_watch_renegotiation(SSL_CTX *ctx);

#endif
