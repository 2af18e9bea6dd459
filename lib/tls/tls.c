/*
 * tls.c - the TLS contexts of one configuration snapshot (see tls.h).
 *
 *   sw_tls_ctx_new(cf)
 *     for each tls_certificate: read leaf + chain (PEM), key, check they
 *       match, collect its names (SAN DNS, CN fallback), read OCSP (DER)
 *     for each worker: one SSL_CTX per certificate, all sharing the same
 *       certificate objects; [0] is the default and the worker's cache
 *     for each upstream with a `tls` server: one client SSL_CTX
 *
 *   handshake (server): ClientHello --servername cb--> SSL_set_SSL_CTX to
 *     the certificate's context of the same worker --ALPN cb--> http/1.1
 *     --status cb--> staple the OCSP response --ticket cb--> shared keys
 *
 * Errors are collected as "FILE: reason" lines; every problem is reported,
 * not only the first.
 *
 * Ownership: the context owns its certificates, contexts and keys; SSL
 * objects take their own references to the SSL_CTXs they use. A server SSL
 * must not outlive the context (its callbacks read it): connections hold a
 * reference to the snapshot that owns it.
 *
 * Threading: built on one thread, then read-only except the ticket keys,
 * which one mutex guards (taken once per ticket issued or read).
 */
#include "tls_int.h"

#include <shockwave/log.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdarg.h>

/* ALPN: RFC 7301 wire format, one protocol. */
static const unsigned char alpn_http11[] = "\x08http/1.1";

/* Where error lines go. */
struct errs {
    char *buf;  /* borrowed (the caller's err) */
    size_t cap; /* bytes at buf */
    size_t len; /* bytes written */
    unsigned n; /* lines written */
};

static void __attribute__((format(printf, 2, 3)))
err_add(struct errs *e, const char *fmt, ...)
{
    e->n++;
    if (e->buf == NULL || e->cap == 0 || e->len + 1 >= e->cap) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(e->buf + e->len, e->cap - e->len, fmt, ap);
    va_end(ap);
    if (w < 0) {
        return;
    }
    e->len = SW_MIN(e->len + (size_t)w, e->cap - 1);
    if (e->len + 1 < e->cap) {
        e->buf[e->len++] = '\n';
        e->buf[e->len] = '\0';
    }
}

/* The newest OpenSSL reason on this thread's queue, then clear it. */
static const char *
ssl_reason(void)
{
    unsigned long code = ERR_peek_last_error();
    const char *r = code != 0 ? ERR_reason_error_string(code) : NULL;
    ERR_clear_error();
    return r != NULL ? r : "unknown error";
}

/* ---- names ------------------------------------------------------------- */

static char *
lower_dup(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        s[i] = (char)tolower((unsigned char)p[i]);
    }
    s[n] = '\0';
    return s;
}

bool
sw__tls_name_match(const char *pat, const char *host)
{
    size_t hl = strlen(host);
    /* "example.com." is "example.com". */
    if (hl > 1 && host[hl - 1] == '.') {
        hl--;
    }
    if (pat[0] == '*' && pat[1] == '.') {
        /* RFC 6125 6.4.3: the wildcard covers exactly one whole label. */
        size_t sl = strlen(pat + 1);
        const char *dot = memchr(host, '.', hl);
        return dot != NULL && dot != host && (size_t)(host + hl - dot) == sl &&
               strncasecmp(dot, pat + 1, sl) == 0;
    }
    return strlen(pat) == hl && strncasecmp(pat, host, hl) == 0;
}

size_t
sw__tls_pick_cert(const struct sw_tls_ctx *t, const char *name)
{
    if (name == NULL || name[0] == '\0') {
        return 0;
    }
    /* Exact names win over wildcards, whatever the file order. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < t->ncerts; i++) {
            const struct sw__tls_cert *c = &t->certs[i];
            for (size_t k = 0; k < c->nnames; k++) {
                bool wild = c->names[k][0] == '*';
                if (wild == (pass == 1) &&
                    sw__tls_name_match(c->names[k], name)) {
                    return i;
                }
            }
        }
    }
    return 0;
}

static enum sw_status
push_name(struct sw__tls_cert *c, const char *p, size_t n)
{
    if (n == 0 || memchr(p, '\0', n) != NULL) {
        return SW_OK; /* an embedded NUL is no name to match */
    }
    char **nn = realloc(c->names, (c->nnames + 1) * sizeof(*nn));
    if (nn == NULL) {
        return SW_ENOMEM;
    }
    c->names = nn;
    c->names[c->nnames] = lower_dup(p, n);
    if (c->names[c->nnames] == NULL) {
        return SW_ENOMEM;
    }
    c->nnames++;
    return SW_OK;
}

/* subjectAltName DNS entries; the subject's CN only when there are none
 * (RFC 6125 6.4.4). */
static enum sw_status
collect_names(struct sw__tls_cert *c)
{
    enum sw_status rc = SW_OK;
    GENERAL_NAMES *san =
        X509_get_ext_d2i(c->leaf, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; san != NULL && i < sk_GENERAL_NAME_num(san); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
        if (g->type == GEN_DNS && rc == SW_OK) {
            const ASN1_IA5STRING *s = g->d.dNSName;
            rc = push_name(c, (const char *)ASN1_STRING_get0_data(s),
                           (size_t)ASN1_STRING_length(s));
        }
    }
    GENERAL_NAMES_free(san);
    if (rc != SW_OK || c->nnames > 0) {
        return rc;
    }
    const X509_NAME *subj = X509_get_subject_name(c->leaf);
    int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (idx >= 0) {
        const ASN1_STRING *cn =
            X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
        rc = push_name(c, (const char *)ASN1_STRING_get0_data(cn),
                       (size_t)ASN1_STRING_length(cn));
    }
    return rc;
}

/* ---- files ------------------------------------------------------------- */

static BIO *
open_file(struct errs *e, const char *path, const char *at)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        err_add(e, "%s: cannot read: %s (%s)", path, strerror(errno), at);
        return NULL;
    }
    BIO *b = BIO_new_fp(f, BIO_CLOSE);
    if (b == NULL) {
        fclose(f);
        err_add(e, "%s: out of memory", path);
    }
    return b;
}

static bool
load_cert_file(struct errs *e, struct sw__tls_cert *c, const char *path,
               const char *at)
{
    BIO *b = open_file(e, path, at);
    if (b == NULL) {
        return false;
    }
    bool ok = false;
    ERR_clear_error();
    c->leaf = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
    if (c->leaf == NULL) {
        err_add(e, "%s: no PEM certificate found: %s (%s)", path, ssl_reason(),
                at);
        goto out;
    }
    c->chain = sk_X509_new_null();
    if (c->chain == NULL) {
        err_add(e, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (x == NULL) {
            break;
        }
        if (!sk_X509_push(c->chain, x)) {
            X509_free(x);
            err_add(e, "%s: out of memory", path);
            goto out;
        }
    }
    /* The loop ends on "no start line" at the end of the file; anything
     * else is a damaged certificate in the chain. */
    unsigned long code = ERR_peek_last_error();
    if (code != 0 && ERR_GET_REASON(code) != PEM_R_NO_START_LINE) {
        err_add(e, "%s: bad certificate in the chain: %s (%s)", path,
                ssl_reason(), at);
        goto out;
    }
    ERR_clear_error();
    ok = true;
out:
    BIO_free(b);
    return ok;
}

static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
    SW_UNUSED(buf);
    SW_UNUSED(size);
    SW_UNUSED(rwflag);
    SW_UNUSED(u);
    return -1;
}

static bool
load_key_file(struct errs *e, struct sw__tls_cert *c, const char *path,
              const char *at)
{
    BIO *b = open_file(e, path, at);
    if (b == NULL) {
        return false;
    }
    ERR_clear_error();
    /* No passphrase callback: OpenSSL's default would prompt on a tty. */
    c->key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    if (c->key == NULL) {
        ERR_clear_error();
        err_add(e,
                "%s: no usable PEM private key (encrypted keys are not "
                "supported) (%s)",
                path, at);
        return false;
    }
    return true;
}

static bool
load_ocsp_file(struct errs *e, struct sw__tls_cert *c, const char *path,
               const char *at)
{
    BIO *b = open_file(e, path, at);
    if (b == NULL) {
        return false;
    }
    bool ok = false;
    unsigned char *buf = malloc(SW__TLS_MAX_FILE);
    if (buf == NULL) {
        err_add(e, "%s: out of memory", path);
        goto out;
    }
    int n = BIO_read(b, buf, SW__TLS_MAX_FILE);
    if (n <= 0 || (size_t)n == SW__TLS_MAX_FILE) {
        err_add(e, "%s: %s (%s)", path,
                n <= 0 ? "empty OCSP response file"
                       : "OCSP response file too large",
                at);
        goto out;
    }
    const unsigned char *p = buf;
    OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, n);
    if (r == NULL || p != buf + n) {
        OCSP_RESPONSE_free(r);
        ERR_clear_error();
        err_add(e, "%s: not a DER OCSP response (%s)", path, at);
        goto out;
    }
    int st = OCSP_response_status(r);
    OCSP_RESPONSE_free(r);
    if (st != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        err_add(e, "%s: OCSP response status is \"%s\", not successful (%s)",
                path, OCSP_response_status_str(st), at);
        goto out;
    }
    c->ocsp = buf;
    c->ocsp_len = (size_t)n;
    buf = NULL;
    ok = true;
out:
    free(buf);
    BIO_free(b);
    return ok;
}

static bool
load_cert(struct errs *e, struct sw__tls_cert *c,
          const struct sw_conf_tls_cert *cc)
{
    char at[320];
    snprintf(at, sizeof(at), "tls_certificate at %s:%u:%u", cc->file.p,
             cc->line, cc->col);
    if (!load_cert_file(e, c, cc->cert.p, at) ||
        !load_key_file(e, c, cc->key.p, at)) {
        return false;
    }
    if (X509_check_private_key(c->leaf, c->key) != 1) {
        ERR_clear_error();
        err_add(e, "%s: private key does not match certificate %s (%s)",
                cc->key.p, cc->cert.p, at);
        return false;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(c->leaf)) < 0) {
        sw_log_warn("tls: certificate %s has expired", cc->cert.p);
    }
    if (cc->ocsp_response.len > 0 &&
        !load_ocsp_file(e, c, cc->ocsp_response.p, at)) {
        return false;
    }
    if (collect_names(c) != SW_OK) {
        err_add(e, "%s: out of memory", cc->cert.p);
        return false;
    }
    if (c->nnames == 0) {
        sw_log_warn("tls: certificate %s names no host (no subjectAltName "
                    "DNS entry, no CN): it only serves clients without SNI",
                    cc->cert.p);
    }
    return true;
}

static void
cert_fini(struct sw__tls_cert *c)
{
    for (size_t i = 0; i < c->nnames; i++) {
        free(c->names[i]);
    }
    free(c->names);
    free(c->ocsp);
    X509_free(c->leaf);
    sk_X509_pop_free(c->chain, X509_free);
    EVP_PKEY_free(c->key);
}

/* ---- ticket keys ------------------------------------------------------- */

static bool
ticket_key_gen(struct sw__tls_ticket_key *k)
{
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 ||
        RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_bytes(k->hmac, sizeof(k->hmac)) != 1) {
        ERR_clear_error();
        return false;
    }
    k->born_ms = sw_now_ms();
    k->valid = true;
    return true;
}

int
sw__tls_ticket_key(struct sw_tls_ctx *t, const unsigned char *name,
                   struct sw__tls_ticket_key *out)
{
    int which = 0;
    uint64_t now = sw_now_ms();
    pthread_mutex_lock(&t->lock);
    /* Rotate lazily: the key that encrypted for rotate_ms becomes the
     * previous one and decrypts for one more period. */
    if (!t->keys[0].valid || now - t->keys[0].born_ms >= t->rotate_ms) {
        bool fresh =
            t->keys[0].valid && now - t->keys[0].born_ms < 2 * t->rotate_ms;
        t->keys[1] = t->keys[0];
        t->keys[1].valid = fresh;
        if (!ticket_key_gen(&t->keys[0])) {
            t->keys[0].valid = false;
        }
    }
    if (name == NULL) {
        which = t->keys[0].valid ? 1 : 0;
    } else {
        for (int i = 0; i < 2; i++) {
            if (t->keys[i].valid &&
                memcmp(t->keys[i].name, name, sizeof(t->keys[i].name)) == 0) {
                which = i + 1;
                break;
            }
        }
    }
    if (which != 0) {
        *out = t->keys[which - 1];
    }
    pthread_mutex_unlock(&t->lock);
    return which;
}

/*
 * OpenSSL's ticket callback: enc = 1 to seal a new ticket (fill the name
 * and IV), 0 to open one. Returns 1 ok, 2 ok but please renew (previous
 * key), 0 unknown key (full handshake), -1 failure.
 */
static int
on_ticket_key(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
              EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    struct sw__tls_worker *w = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    struct sw__tls_ticket_key k;
    int which = sw__tls_ticket_key(w->t, enc ? NULL : key_name, &k);
    int rc = -1;
    if (which == 0) {
        rc = enc ? -1 : 0;
        goto out;
    }
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac,
                                                  sizeof(k.hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (enc) {
        memcpy(key_name, k.name, sizeof(k.name));
        if (RAND_bytes(iv, 16) != 1 ||
            EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1 ||
            EVP_MAC_CTX_set_params(hctx, params) != 1) {
            goto out;
        }
        rc = 1;
    } else {
        if (EVP_MAC_CTX_set_params(hctx, params) != 1 ||
            EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1) {
            goto out;
        }
        rc = which == 1 ? 1 : 2;
    }
out:
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}

/* ---- callbacks --------------------------------------------------------- */

static int
on_servername(SSL *ssl, int *al, void *arg)
{
    SW_UNUSED(al);
    SW_UNUSED(arg);
    struct sw__tls_worker *w = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    size_t i = sw__tls_pick_cert(w->t, name);
    if (i != 0 && SSL_set_SSL_CTX(ssl, w->ctxs[i]) == NULL) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

static int
on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
        const unsigned char *in, unsigned int inlen, void *arg)
{
    SW_UNUSED(ssl);
    SW_UNUSED(arg);
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, alpn_http11,
                              sizeof(alpn_http11) - 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED) {
        /* RFC 7301 3.2: no protocol in common is a fatal alert. */
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int
on_status(SSL *ssl, void *arg)
{
    const struct sw__tls_cert *c = arg;
    if (c == NULL || c->ocsp == NULL) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    /* OpenSSL takes ownership of the copy. */
    unsigned char *copy = OPENSSL_memdup(c->ocsp, c->ocsp_len);
    if (copy == NULL ||
        SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)c->ocsp_len) != 1) {
        OPENSSL_free(copy);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* ---- contexts ---------------------------------------------------------- */

static void
set_common(SSL_CTX *ctx, unsigned protocols)
{
    SSL_CTX_set_min_proto_version(
        ctx, (protocols & SW_CONF_TLS_V12) ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(
        ctx, (protocols & SW_CONF_TLS_V13) ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Partial writes and a movable buffer suit the proxy's pooled buffers;
     * released buffers keep an idle connection free of OpenSSL's 34 KiB of
     * record buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
}

static bool
set_ciphers(struct errs *e, SSL_CTX *ctx, const struct sw_conf *cf)
{
    bool ok = true;
    ERR_clear_error();
    if (SSL_CTX_set_cipher_list(ctx, cf->tls_ciphers.p) != 1) {
        err_add(e, "%s: tls_ciphers \"%s\": no usable cipher: %s", cf->path.p,
                cf->tls_ciphers.p, ssl_reason());
        ok = false;
    }
    if (SSL_CTX_set_ciphersuites(ctx, cf->tls_ciphersuites.p) != 1) {
        err_add(e, "%s: tls_ciphersuites \"%s\": no usable suite: %s",
                cf->path.p, cf->tls_ciphersuites.p, ssl_reason());
        ok = false;
    }
    return ok;
}

static SSL_CTX *
server_ctx(struct errs *e, const struct sw_conf *cf, struct sw__tls_worker *w,
           struct sw__tls_cert *c)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        err_add(e, "%s: SSL_CTX_new: %s", cf->path.p, ssl_reason());
        return NULL;
    }
    set_common(ctx, cf->tls_protocols);
    sw__tls_watch_renegotiation(ctx);
    /* OpenSSL 3 refuses client-initiated renegotiation unless
     * SSL_OP_ALLOW_CLIENT_RENEGOTIATION; SSL_OP_NO_RENEGOTIATION (set in
     * set_common) covers the rest. */
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_dh_auto(ctx, 1);
    SSL_CTX_set_app_data(ctx, w);
    /* The cipher strings were checked once in sw_tls_ctx_new. */
    struct errs quiet = {NULL, 0, 0, 0};
    if (!set_ciphers(&quiet, ctx, cf) ||
        SSL_CTX_use_certificate(ctx, c->leaf) != 1 ||
        SSL_CTX_set1_chain(ctx, c->chain) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, c->key) != 1) {
        err_add(e, "%s: cannot use the certificate: %s", cf->path.p,
                ssl_reason());
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    if (c->ocsp != NULL) {
        SSL_CTX_set_tlsext_status_cb(ctx, on_status);
        SSL_CTX_set_tlsext_status_arg(ctx, c);
    }
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
    /* TLS 1.3: one ticket per handshake is enough for a browser. */
    SSL_CTX_set_num_tickets(ctx, 1);
    /* A session lives as long as the key that sealed its ticket can still
     * open it. */
    SSL_CTX_set_timeout(ctx,
                        (long)SW_MAX(2 * cf->tls_ticket_rotate_ms / 1000, 1));
    static const unsigned char sid_ctx[] = "shockwave";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    if (cf->tls_session_cache == 0) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, (long)cf->tls_session_cache);
    }
    return ctx;
}

static SSL_CTX *
client_ctx(struct errs *e, const struct sw_conf *cf,
           const struct sw_conf_upstream *u)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        err_add(e, "%s: SSL_CTX_new: %s", cf->path.p, ssl_reason());
        return NULL;
    }
    set_common(ctx, cf->tls_protocols);
    SSL_CTX_set_alpn_protos(ctx, alpn_http11, sizeof(alpn_http11) - 1);
    struct errs quiet = {NULL, 0, 0, 0};
    if (!set_ciphers(&quiet, ctx, cf)) {
        err_add(e, "%s: cannot use the cipher lists: %s", cf->path.p,
                ssl_reason());
        goto fail;
    }
    if (u->tls_ca.len > 0) {
        FILE *f = fopen(u->tls_ca.p, "r");
        if (f == NULL) {
            err_add(e, "%s: cannot read: %s (tls_ca of upstream \"%s\")",
                    u->tls_ca.p, strerror(errno), u->name.p);
            goto fail;
        }
        fclose(f);
    }
    if (u->tls_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        ERR_clear_error();
        int ok = u->tls_ca.len > 0 ? SSL_CTX_load_verify_file(ctx, u->tls_ca.p)
                                   : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            err_add(e,
                    "%s: cannot load CA certificates for upstream "
                    "\"%s\": %s",
                    u->tls_ca.len > 0 ? u->tls_ca.p : "(system store)",
                    u->name.p, ssl_reason());
            goto fail;
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

struct sw_tls_ctx *
sw_tls_ctx_new(const struct sw_conf *cf, unsigned nworkers, char *err,
               size_t errlen)
{
    struct errs e = {err, errlen, 0, 0};
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    struct sw_tls_ctx *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        err_add(&e, "%s: out of memory", cf->path.p);
        return NULL;
    }
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        err_add(&e, "%s: cannot create a mutex", cf->path.p);
        goto fail;
    }
    t->lock_ready = true;
    t->nworkers = nworkers > 0 ? nworkers : 1;
    t->rotate_ms =
        cf->tls_ticket_rotate_ms > 0 ? cf->tls_ticket_rotate_ms : 3600000;
    t->certs = calloc(SW_MAX(cf->ntls_certs, 1), sizeof(*t->certs));
    t->workers = calloc(t->nworkers, sizeof(*t->workers));
    t->clients = calloc(SW_MAX(cf->nupstreams, 1), sizeof(*t->clients));
    if (t->certs == NULL || t->workers == NULL || t->clients == NULL) {
        err_add(&e, "%s: out of memory", cf->path.p);
        goto fail;
    }
    t->nclients = cf->nupstreams;
    bool ok = true;
    for (size_t i = 0; i < cf->ntls_certs; i++) {
        /* Count each slot so a failed load is released too. */
        t->ncerts = i + 1;
        ok = load_cert(&e, &t->certs[i], &cf->tls_certs[i]) && ok;
    }
    /* Cipher strings: checked once, reported once. */
    SSL_CTX *probe = SSL_CTX_new(TLS_method());
    if (probe == NULL) {
        err_add(&e, "%s: SSL_CTX_new: %s", cf->path.p, ssl_reason());
        goto fail;
    }
    ok = set_ciphers(&e, probe, cf) && ok;
    SSL_CTX_free(probe);
    if (!ok) {
        goto fail;
    }
    for (unsigned w = 0; w < t->nworkers && t->ncerts > 0; w++) {
        struct sw__tls_worker *wk = &t->workers[w];
        wk->t = t;
        wk->ctxs = calloc(t->ncerts, sizeof(*wk->ctxs));
        if (wk->ctxs == NULL) {
            err_add(&e, "%s: out of memory", cf->path.p);
            goto fail;
        }
        for (size_t i = 0; i < t->ncerts; i++) {
            wk->ctxs[i] = server_ctx(&e, cf, wk, &t->certs[i]);
            if (wk->ctxs[i] == NULL) {
                goto fail;
            }
        }
    }
    for (size_t i = 0; i < cf->nupstreams; i++) {
        const struct sw_conf_upstream *u = &cf->upstreams[i];
        bool any = false;
        for (size_t k = 0; k < u->nservers; k++) {
            any = any || u->servers[k].tls;
        }
        if (any) {
            t->clients[i] = client_ctx(&e, cf, u);
            ok = t->clients[i] != NULL && ok;
        }
    }
    if (!ok) {
        goto fail;
    }
    return t;
fail:
    sw_tls_ctx_free(t);
    return NULL;
}

void
sw_tls_ctx_free(void *ctx)
{
    struct sw_tls_ctx *t = ctx;
    if (t == NULL) {
        return;
    }
    for (unsigned w = 0; t->workers != NULL && w < t->nworkers; w++) {
        for (size_t i = 0; t->workers[w].ctxs != NULL && i < t->ncerts; i++) {
            SSL_CTX_free(t->workers[w].ctxs[i]);
        }
        free(t->workers[w].ctxs);
    }
    free(t->workers);
    for (size_t i = 0; t->clients != NULL && i < t->nclients; i++) {
        SSL_CTX_free(t->clients[i]);
    }
    free(t->clients);
    for (size_t i = 0; t->certs != NULL && i < t->ncerts; i++) {
        cert_fini(&t->certs[i]);
    }
    free(t->certs);
    if (t->lock_ready) {
        pthread_mutex_destroy(&t->lock);
    }
    OPENSSL_cleanse(t->keys, sizeof(t->keys));
    free(t);
}

size_t
sw_tls_ctx_ncerts(const struct sw_tls_ctx *t)
{
    return t != NULL ? t->ncerts : 0;
}

/* ---- attach ------------------------------------------------------------ */

enum sw_status
sw_tls_server_attach(struct sw_tls_ctx *t, unsigned worker, struct sw_io *io)
{
    if (t == NULL || t->ncerts == 0) {
        return SW_EINVAL;
    }
    SSL *ssl = SSL_new(t->workers[worker % t->nworkers].ctxs[0]);
    if (ssl == NULL || SSL_set_fd(ssl, io->fd) != 1) {
        ERR_clear_error();
        SSL_free(ssl);
        return SW_ENOMEM;
    }
    SSL_set_accept_state(ssl);
    io->tls = ssl;
    io->ops = &sw_io_tls;
    io->want = SW_IO_WANT_NONE;
    return SW_OK;
}

/* "host" from "host:port" or "[v6]:port" into out. */
static void
server_host(const struct sw_conf_server *s, char *out, size_t n)
{
    const char *p = s->text.p;
    size_t len = s->text.len;
    if (len > 0 && p[0] == '[') {
        const char *rb = memchr(p, ']', len);
        len = rb != NULL ? (size_t)(rb - p) - 1 : 0;
        p++;
    } else {
        const char *colon = memrchr(p, ':', len);
        len = colon != NULL ? (size_t)(colon - p) : len;
    }
    len = SW_MIN(len, n - 1);
    memcpy(out, p, len);
    out[len] = '\0';
}

static bool
is_ip(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, buf) == 1 ||
           inet_pton(AF_INET6, name, buf) == 1;
}

enum sw_status
sw_tls_client_attach(struct sw_tls_ctx *t, const struct sw_conf_upstream *up,
                     const struct sw_conf_server *s, struct sw_io *io)
{
    if (t == NULL || up->index >= t->nclients ||
        t->clients[up->index] == NULL) {
        return SW_EINVAL;
    }
    char name[256];
    if (up->tls_server_name.len > 0) {
        snprintf(name, sizeof(name), "%s", up->tls_server_name.p);
    } else {
        server_host(s, name, sizeof(name));
    }
    enum sw_status rc = SW_ENOMEM;
    SSL *ssl = SSL_new(t->clients[up->index]);
    if (ssl == NULL || SSL_set_fd(ssl, io->fd) != 1) {
        goto fail;
    }
    bool ip = is_ip(name);
    /* RFC 6066 3: SNI carries host names, never addresses. */
    if (!ip && name[0] != '\0' && SSL_set_tlsext_host_name(ssl, name) != 1) {
        goto fail;
    }
    if (up->tls_verify) {
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
                    : SSL_set1_host(ssl, name);
        if (ok != 1) {
            rc = SW_EINVAL;
            goto fail;
        }
    }
    SSL_set_connect_state(ssl);
    io->tls = ssl;
    io->ops = &sw_io_tls;
    io->want = SW_IO_WANT_NONE;
    return SW_OK;
fail:
    ERR_clear_error();
    SSL_free(ssl);
    return rc;
}
