/*
 * tls_test.c - Check suite for lib/tls: context construction and its error
 * lines, SNI name matching, and the sw_io_tls transport driven against a
 * real OpenSSL peer over a socketpair, in one thread (both ends
 * non-blocking, stepped in turn): protocol versions, SNI, ALPN, ticket and
 * cache resumption across workers, OCSP stapling, the plain-HTTP answer,
 * bulk data with partial writes, pending bytes, close_notify and EOF, and
 * the upstream client side with verification.
 *
 * Certificates come from tests/tls/gen-certs.sh, run once per process into
 * a temporary folder (no key is ever committed).
 */
#include <shockwave/conf.h>
#include <shockwave/log.h>
#include <shockwave/tls.h>

#include "../../lib/tls/tls_int.h"
#include "support.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];
static char err[8192];

static void
setup_pki(void)
{
    const char *root = getenv("SW_SOURCE_ROOT");
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/sw-tls-unit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    char cmd[PATH_MAX * 3];
    snprintf(cmd, sizeof(cmd), "sh '%s/tests/tls/gen-certs.sh' '%s'",
             root != NULL ? root : ".", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    signal(SIGPIPE, SIG_IGN);
    sw_log_init(2, SW_LOG_ERROR);
}

static void
teardown_pki(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        char p[PATH_MAX * 2];
        snprintf(p, sizeof(p), "%s/%s", tmpdir, de->d_name);
        unlink(p);
    }
    if (d != NULL) {
        closedir(d);
    }
    rmdir(tmpdir);
}

static const char *
path(const char *name)
{
    static char p[4][PATH_MAX * 2];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", tmpdir, name);
    return p[i];
}

#define UPSTREAM                                                               \
    "upstream demo { server 127.0.0.1:9000; }\n"                               \
    "route { upstream demo; }\n"

#define CERTS                                                                  \
    "tls_certificate a.pem;\n"                                                 \
    "tls_certificate_key a.key;\n"                                             \
    "tls_ocsp_response a.ocsp;\n"                                              \
    "tls_certificate wild.pem;\n"                                              \
    "tls_certificate_key wild.key;\n"                                          \
    "tls_certificate b.pem;\n"                                                 \
    "tls_certificate_key b.key;\n"

static struct sw_conf *
conf(const char *text)
{
    struct sw_conf *cf =
        sw_conf_load_string(text, "t.conf", tmpdir, err, sizeof(err));
    ck_assert_msg(cf != NULL, "%s", err);
    return cf;
}

/* A snapshot and its TLS context, as the daemon builds them. */
static struct sw_conf *
conf_tls(const char *text, unsigned nworkers)
{
    struct sw_conf *cf = conf(text);
    struct sw_tls_ctx *t = sw_tls_ctx_new(cf, nworkers, err, sizeof(err));
    ck_assert_msg(t != NULL, "%s", err);
    cf->tls = t;
    cf->tls_free = sw_tls_ctx_free;
    return cf;
}

/* ---- a connected pair: sw_io_tls on one end, plain OpenSSL on the other */

struct pair {
    struct sw_io io;   /* our end (server or client) */
    SSL_CTX *pctx;     /* owned: the peer's context */
    SSL *peer;         /* owned: the peer */
    int pfd;           /* owned: the peer's socket */
    enum sw_status rc; /* our handshake result */
    bool peer_ok;      /* the peer's handshake finished */
};

static void
nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void
pair_sockets(struct pair *p)
{
    int sv[2];
    memset(p, 0, sizeof(*p));
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    nonblock(sv[0]);
    nonblock(sv[1]);
    p->io.fd = sv[0];
    p->io.ops = &sw_io_plain;
    p->pfd = sv[1];
    p->rc = SW_AGAIN;
}

static SSL_CTX *
client_ctx(int minv, int maxv)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(c);
    SSL_CTX_set_security_level(c, 0); /* let TLS 1.1 be offered */
    SSL_CTX_set_min_proto_version(c, minv);
    SSL_CTX_set_max_proto_version(c, maxv);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    ck_assert_int_eq(SSL_CTX_load_verify_file(c, path("ca.pem")), 1);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    return c;
}

/* Our server end on worker w, a client peer with SNI `sni` (or none). */
static void
server_pair(struct pair *p, struct sw_conf *cf, unsigned w, SSL_CTX *cctx,
            const char *sni)
{
    pair_sockets(p);
    ck_assert_int_eq(sw_tls_server_attach(cf->tls, w, &p->io), SW_OK);
    ck_assert_ptr_eq(p->io.ops, &sw_io_tls);
    ck_assert_ptr_nonnull(p->io.tls);
    p->pctx = cctx;
    SSL_CTX_up_ref(cctx);
    p->peer = SSL_new(cctx);
    ck_assert_ptr_nonnull(p->peer);
    SSL_set_fd(p->peer, p->pfd);
    if (sni != NULL) {
        SSL_set_tlsext_host_name(p->peer, sni);
        SSL_set1_host(p->peer, sni);
    }
    SSL_set_connect_state(p->peer);
}

/* Step both ends until both finish or one fails. */
static void
drive(struct pair *p)
{
    for (int i = 0; i < 1000 && !(p->rc == SW_OK && p->peer_ok); i++) {
        bool peer_failed = false;
        if (p->rc == SW_AGAIN) {
            p->rc = p->io.ops->handshake(&p->io);
            if (p->rc == SW_AGAIN) {
                ck_assert(p->io.want == SW_IO_WANT_READ ||
                          p->io.want == SW_IO_WANT_WRITE);
            }
        }
        if (!p->peer_ok) {
            ERR_clear_error();
            int r = SSL_do_handshake(p->peer);
            int e = SSL_get_error(p->peer, r);
            p->peer_ok = r == 1;
            peer_failed =
                r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
            ERR_clear_error();
        }
        if (p->rc != SW_AGAIN && p->rc != SW_OK) {
            break;
        }
        if (peer_failed && p->rc != SW_AGAIN) {
            break;
        }
        if (peer_failed) {
            /* Let our end see the alert. */
            continue;
        }
    }
}

static void
pair_free(struct pair *p)
{
    if (p->io.ops != NULL && p->io.ops->close != NULL) {
        p->io.ops->close(&p->io);
    }
    /* OpenSSL drops the session of an SSL freed without a shutdown. */
    if (p->peer != NULL && p->peer_ok) {
        SSL_shutdown(p->peer);
        ERR_clear_error();
    }
    SSL_free(p->peer);
    SSL_CTX_free(p->pctx);
    close(p->io.fd);
    close(p->pfd);
}

/* Read whatever the peer has (tickets arrive after the handshake). */
static void
peer_pump(struct pair *p)
{
    char buf[256];
    ERR_clear_error();
    SSL_read(p->peer, buf, sizeof(buf));
    ERR_clear_error();
}

static void
peer_cn(SSL *ssl, char *out, size_t n)
{
    X509 *x = SSL_get0_peer_certificate(ssl);
    ck_assert_ptr_nonnull(x);
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out,
                              (int)n);
}

/* ---- names and keys ---------------------------------------------------- */

static const struct {
    const char *pat;
    const char *host;
    bool match;
} name_vectors[] = {
    {"a.test", "a.test", true},        {"a.test", "A.Test", true},
    {"a.test", "a.test.", true},       {"a.test", "b.test", false},
    {"a.test", "a.tes", false},        {"a.test", "xa.test", false},
    {"*.w.test", "x.w.test", true},    {"*.w.test", "X.W.TEST", true},
    {"*.w.test", "w.test", false},     {"*.w.test", ".w.test", false},
    {"*.w.test", "a.b.w.test", false}, {"*.w.test", "x.xw.test", false},
    {"*.w.test", "x.w.test.", true},   {"*.w.test", "", false},
};

START_TEST(test_name_match)
{
    for (size_t i = 0; i < SW_NELEMS(name_vectors); i++) {
        ck_assert_msg(
            sw__tls_name_match(name_vectors[i].pat, name_vectors[i].host) ==
                name_vectors[i].match,
            "%s vs %s", name_vectors[i].pat, name_vectors[i].host);
    }
}
END_TEST

START_TEST(test_pick_cert)
{
    struct sw_conf *cf =
        conf_tls("listen 127.0.0.1:1 tls;\n" CERTS UPSTREAM, 1);
    struct sw_tls_ctx *t = cf->tls;
    ck_assert_uint_eq(sw_tls_ctx_ncerts(t), 3);
    ck_assert_uint_eq(sw__tls_pick_cert(t, NULL), 0);
    ck_assert_uint_eq(sw__tls_pick_cert(t, "a.test"), 0);
    ck_assert_uint_eq(sw__tls_pick_cert(t, "www.a.test"), 0);
    ck_assert_uint_eq(sw__tls_pick_cert(t, "x.w.test"), 1);
    ck_assert_uint_eq(sw__tls_pick_cert(t, "B.TEST"), 2);
    ck_assert_uint_eq(sw__tls_pick_cert(t, "unknown.test"), 0);
    ck_assert_uint_eq(sw__tls_pick_cert(t, "a.b.w.test"), 0);
    /* names come from subjectAltName, lower case */
    ck_assert_uint_eq(t->certs[0].nnames, 2);
    ck_assert_str_eq(t->certs[0].names[1], "www.a.test");
    ck_assert_str_eq(t->certs[1].names[0], "*.w.test");
    ck_assert_ptr_nonnull(t->certs[0].ocsp);
    ck_assert_ptr_null(t->certs[1].ocsp);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_ticket_keys)
{
    struct sw_conf *cf =
        conf_tls("listen 127.0.0.1:1 tls;\n" CERTS UPSTREAM, 2);
    struct sw_tls_ctx *t = cf->tls;
    struct sw__tls_ticket_key k0;
    struct sw__tls_ticket_key k;
    ck_assert_int_eq(sw__tls_ticket_key(t, NULL, &k0), 1);
    ck_assert_int_eq(sw__tls_ticket_key(t, k0.name, &k), 1);
    ck_assert_mem_eq(k.aes, k0.aes, sizeof(k.aes));
    unsigned char other[16] = {0};
    ck_assert_int_eq(sw__tls_ticket_key(t, other, &k), 0);
    /* One period later k0 only decrypts (2 = renew the ticket) and a new
     * key encrypts; after a second period k0 is gone. */
    t->rotate_ms = 40;
    usleep(50 * 1000);
    struct sw__tls_ticket_key k1;
    ck_assert_int_eq(sw__tls_ticket_key(t, NULL, &k1), 1);
    ck_assert(memcmp(k1.name, k0.name, sizeof(k0.name)) != 0);
    ck_assert(memcmp(k1.aes, k0.aes, sizeof(k0.aes)) != 0);
    ck_assert_int_eq(sw__tls_ticket_key(t, k0.name, &k), 2);
    usleep(50 * 1000);
    ck_assert_int_eq(sw__tls_ticket_key(t, k1.name, &k), 2);
    ck_assert_int_eq(sw__tls_ticket_key(t, k0.name, &k), 0);
    sw_conf_unref(cf);
}
END_TEST

/* ---- construction errors ----------------------------------------------- */

static const char *
tls_err(const char *text)
{
    struct sw_conf *cf = conf(text);
    memset(err, 'x', sizeof(err));
    struct sw_tls_ctx *t = sw_tls_ctx_new(cf, 2, err, sizeof(err));
    ck_assert_msg(t == NULL, "context built for:\n%s", text);
    sw_conf_unref(cf);
    return sw_test_cut_dir(err, tmpdir);
}

START_TEST(test_ctx_errors)
{
    ck_assert_str_eq(
        tls_err("listen 127.0.0.1:1 tls;\ntls_certificate none.pem;\n"
                "tls_certificate_key a.key;\n" UPSTREAM),
        "none.pem: cannot read: No such file or directory (tls_certificate "
        "at t.conf:2:1)\n");
    ck_assert_str_eq(
        tls_err("listen 127.0.0.1:1 tls;\ntls_certificate a.key;\n"
                "tls_certificate_key a.key;\n" UPSTREAM),
        "a.key: no PEM certificate found: no start line (tls_certificate at "
        "t.conf:2:1)\n");
    ck_assert_str_eq(
        tls_err("listen 127.0.0.1:1 tls;\ntls_certificate a.pem;\n"
                "tls_certificate_key a.pem;\n" UPSTREAM),
        "a.pem: no usable PEM private key (encrypted keys are not supported) "
        "(tls_certificate at t.conf:2:1)\n");
    /* Every bad pair is reported, not only the first. */
    ck_assert_str_eq(
        tls_err("listen 127.0.0.1:1 tls;\ntls_certificate a.pem;\n"
                "tls_certificate_key wild.key;\n"
                "tls_certificate b.pem;\ntls_certificate_key b.key;\n"
                "tls_ocsp_response b.pem;\n" UPSTREAM),
        "wild.key: private key does not match certificate a.pem "
        "(tls_certificate at t.conf:2:1)\n"
        "b.pem: not a DER OCSP response (tls_certificate at t.conf:4:1)\n");
    ck_assert_str_eq(
        tls_err("listen 127.0.0.1:1 tls;\n" CERTS
                "tls_ciphers NOPE-CIPHER;\n" UPSTREAM),
        "t.conf: tls_ciphers \"NOPE-CIPHER\": no usable cipher: no cipher "
        "match\n");
    ck_assert_str_eq(
        tls_err("listen 127.0.0.1:1 tls;\n" CERTS
                "tls_ciphersuites TLS_NOPE;\n" UPSTREAM),
        "t.conf: tls_ciphersuites \"TLS_NOPE\": no usable suite: no cipher "
        "match\n");
    ck_assert_str_eq(
        tls_err("listen 127.0.0.1:1;\nupstream s { server 127.0.0.1:2 tls; "
                "tls_ca nothere.pem; }\nroute { upstream s; }\n"),
        "nothere.pem: cannot read: No such file or directory (tls_ca of "
        "upstream \"s\")\n");
}
END_TEST

START_TEST(test_ctx_without_tls)
{
    struct sw_conf *cf = conf_tls("listen 127.0.0.1:1;\n" UPSTREAM, 4);
    ck_assert_uint_eq(sw_tls_ctx_ncerts(cf->tls), 0);
    struct pair p;
    pair_sockets(&p);
    ck_assert_int_eq(sw_tls_server_attach(cf->tls, 0, &p.io), SW_EINVAL);
    ck_assert_ptr_eq(p.io.ops, &sw_io_plain);
    ck_assert_int_eq(sw_tls_server_attach(NULL, 0, &p.io), SW_EINVAL);
    ck_assert_int_eq(sw_tls_client_attach(cf->tls, &cf->upstreams[0],
                                          &cf->upstreams[0].servers[0], &p.io),
                     SW_EINVAL);
    pair_free(&p);
    sw_conf_unref(cf);
    sw_tls_ctx_free(NULL);
}
END_TEST

/* ---- handshakes -------------------------------------------------------- */

START_TEST(test_versions)
{
    struct sw_conf *cf =
        conf_tls("listen 127.0.0.1:1 tls;\n" CERTS UPSTREAM, 2);
    static const struct {
        int minv, maxv;
        bool ok;
        const char *version;
    } v[] = {
        {TLS1_3_VERSION, TLS1_3_VERSION, true, "TLSv1.3"},
        {TLS1_2_VERSION, TLS1_2_VERSION, true, "TLSv1.2"},
        {TLS1_VERSION, TLS1_1_VERSION, false, ""},
        {TLS1_VERSION, TLS1_VERSION, false, ""},
    };
    for (size_t i = 0; i < SW_NELEMS(v); i++) {
        struct pair p;
        SSL_CTX *c = client_ctx(v[i].minv, v[i].maxv);
        server_pair(&p, cf, (unsigned)i, c, "a.test");
        SSL_CTX_free(c);
        drive(&p);
        if (v[i].ok) {
            ck_assert_msg(p.rc == SW_OK && p.peer_ok, "case %zu: rc %d", i,
                          p.rc);
            ck_assert_str_eq(sw_tls_version(&p.io), v[i].version);
            ck_assert_str_eq(SSL_get_version(p.peer), v[i].version);
            ck_assert_int_eq(SSL_get_verify_result(p.peer), X509_V_OK);
            ck_assert_str_ne(sw_tls_cipher(&p.io), "");
            ck_assert(!sw_tls_is_resumed(&p.io));
        } else {
            ck_assert_msg(p.rc == SW_EPROTO, "case %zu: rc %d", i, p.rc);
            ck_assert(!p.peer_ok);
            ck_assert_str_eq(sw_tls_version(&p.io), "");
        }
        pair_free(&p);
    }
    sw_conf_unref(cf);

    /* tls_protocols TLSv1.3 refuses a TLS 1.2-only client. */
    cf = conf_tls("listen 127.0.0.1:1 tls;\n" CERTS
                  "tls_protocols TLSv1.3;\n" UPSTREAM,
                  1);
    struct pair p;
    SSL_CTX *c = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    server_pair(&p, cf, 0, c, "a.test");
    SSL_CTX_free(c);
    drive(&p);
    ck_assert_int_eq(p.rc, SW_EPROTO);
    pair_free(&p);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_sni)
{
    struct sw_conf *cf =
        conf_tls("listen 127.0.0.1:1 tls;\n" CERTS UPSTREAM, 3);
    static const struct {
        const char *sni;
        const char *cn;
    } v[] = {
        {"a.test", "a.test"},        {"www.a.test", "a.test"},
        {"x.w.test", "wild.w.test"}, {"b.test", "b.test"},
        {"nobody.test", "a.test"},   {NULL, "a.test"},
    };
    SSL_CTX *c = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
    for (size_t i = 0; i < SW_NELEMS(v); i++) {
        for (unsigned w = 0; w < 3; w++) {
            struct pair p;
            server_pair(&p, cf, w, c, NULL);
            if (v[i].sni != NULL) {
                SSL_set_tlsext_host_name(p.peer, v[i].sni);
            }
            drive(&p);
            ck_assert_msg(p.rc == SW_OK && p.peer_ok, "%s: rc %d", v[i].sni,
                          p.rc);
            char cn[128] = "";
            peer_cn(p.peer, cn, sizeof(cn));
            ck_assert_msg(strcmp(cn, v[i].cn) == 0, "sni %s got %s", v[i].sni,
                          cn);
            pair_free(&p);
        }
    }
    SSL_CTX_free(c);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_alpn)
{
    struct sw_conf *cf =
        conf_tls("listen 127.0.0.1:1 tls;\n" CERTS UPSTREAM, 1);
    SSL_CTX *c = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
    struct pair p;
    server_pair(&p, cf, 0, c, "a.test");
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    SSL_set_alpn_protos(p.peer, both, sizeof(both) - 1);
    drive(&p);
    ck_assert_int_eq(p.rc, SW_OK);
    const unsigned char *sel = NULL;
    unsigned len = 0;
    SSL_get0_alpn_selected(p.peer, &sel, &len);
    ck_assert_uint_eq(len, 8);
    ck_assert_mem_eq(sel, "http/1.1", 8);
    pair_free(&p);

    /* Only h2 on offer: RFC 7301 no_application_protocol. */
    server_pair(&p, cf, 0, c, "a.test");
    static const unsigned char h2[] = "\x02h2";
    SSL_set_alpn_protos(p.peer, h2, sizeof(h2) - 1);
    drive(&p);
    ck_assert_int_eq(p.rc, SW_EPROTO);
    pair_free(&p);

    /* No ALPN at all is fine. */
    server_pair(&p, cf, 0, c, "a.test");
    drive(&p);
    ck_assert_int_eq(p.rc, SW_OK);
    SSL_get0_alpn_selected(p.peer, &sel, &len);
    ck_assert_uint_eq(len, 0);
    pair_free(&p);
    SSL_CTX_free(c);
    sw_conf_unref(cf);
}
END_TEST

/* Handshake, exchange a byte so the client reads its ticket, and return
 * the client's session (caller frees). */
static SSL_SESSION *
connect_once(struct sw_conf *cf, unsigned w, SSL_CTX *c, SSL_SESSION *sess,
             bool *resumed)
{
    struct pair p;
    server_pair(&p, cf, w, c, "a.test");
    if (sess != NULL) {
        SSL_set_session(p.peer, sess);
    }
    drive(&p);
    ck_assert_int_eq(p.rc, SW_OK);
    ck_assert(p.peer_ok);
    ck_assert_int_eq(p.io.ops->send(&p.io, "x", 1), 1);
    peer_pump(&p);
    *resumed = sw_tls_is_resumed(&p.io);
    ck_assert_int_eq(*resumed, SSL_session_reused(p.peer) == 1);
    SSL_SESSION *out = SSL_get1_session(p.peer);
    pair_free(&p);
    return out;
}

START_TEST(test_resumption)
{
    struct sw_conf *cf =
        conf_tls("listen 127.0.0.1:1 tls;\n" CERTS UPSTREAM, 2);
    bool resumed;
    /* Tickets (TLS 1.3 and 1.2): keys are shared, any worker resumes. */
    int versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};
    for (size_t i = 0; i < SW_NELEMS(versions); i++) {
        SSL_CTX *c = client_ctx(versions[i], versions[i]);
        SSL_SESSION *s = connect_once(cf, 0, c, NULL, &resumed);
        ck_assert(!resumed);
        ck_assert(SSL_SESSION_is_resumable(s));
        SSL_SESSION *s2 = connect_once(cf, 1, c, s, &resumed);
        ck_assert_msg(resumed, "ticket not resumed (version %x)", versions[i]);
        SSL_SESSION_free(s2);
        s2 = connect_once(cf, 0, c, s, &resumed);
        ck_assert(resumed);
        SSL_SESSION_free(s2);
        SSL_SESSION_free(s);
        SSL_CTX_free(c);
    }
    /* TLS 1.2 without tickets: the session cache is per worker. */
    SSL_CTX *c = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    SSL_SESSION *s = connect_once(cf, 0, c, NULL, &resumed);
    ck_assert(!resumed);
    SSL_SESSION *s2 = connect_once(cf, 0, c, s, &resumed);
    ck_assert(resumed);
    SSL_SESSION_free(s2);
    s2 = connect_once(cf, 1, c, s, &resumed);
    ck_assert(!resumed);
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s);
    sw_conf_unref(cf);

    /* tls_session_cache off: no session-id resumption. */
    cf = conf_tls("listen 127.0.0.1:1 tls;\n" CERTS
                  "tls_session_cache off;\n" UPSTREAM,
                  1);
    s = connect_once(cf, 0, c, NULL, &resumed);
    s2 = connect_once(cf, 0, c, s, &resumed);
    ck_assert(!resumed);
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s);
    SSL_CTX_free(c);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_ocsp)
{
    struct sw_conf *cf =
        conf_tls("listen 127.0.0.1:1 tls;\n" CERTS UPSTREAM, 1);
    FILE *f = fopen(path("a.ocsp"), "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char want[8192];
    size_t wlen = fread(want, 1, sizeof(want), f);
    fclose(f);
    SSL_CTX *c = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
    const char *names[] = {"a.test", "b.test"};
    for (size_t i = 0; i < 2; i++) {
        struct pair p;
        server_pair(&p, cf, 0, c, names[i]);
        SSL_set_tlsext_status_type(p.peer, TLSEXT_STATUSTYPE_ocsp);
        drive(&p);
        ck_assert_int_eq(p.rc, SW_OK);
        const unsigned char *resp = NULL;
        long len = SSL_get_tlsext_status_ocsp_resp(p.peer, &resp);
        if (i == 0) {
            ck_assert_int_eq(len, (long)wlen);
            ck_assert_mem_eq(resp, want, wlen);
        } else {
            ck_assert(len <= 0 || resp == NULL);
        }
        pair_free(&p);
    }
    SSL_CTX_free(c);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_plain_http)
{
    struct sw_conf *cf =
        conf_tls("listen 127.0.0.1:1 tls;\n" CERTS UPSTREAM, 1);
    struct pair p;
    pair_sockets(&p);
    ck_assert_int_eq(sw_tls_server_attach(cf->tls, 0, &p.io), SW_OK);
    /* Nothing sent yet: wait for reading. */
    ck_assert_int_eq(p.io.ops->handshake(&p.io), SW_AGAIN);
    ck_assert_int_eq(p.io.want, SW_IO_WANT_READ);
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(p.pfd, req, sizeof(req) - 1), sizeof(req) - 1);
    ck_assert_int_eq(p.io.ops->handshake(&p.io), SW_EPROTO);
    char buf[512];
    ssize_t n = read(p.pfd, buf, sizeof(buf) - 1);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%s",
                  buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nThis port speaks TLS"));
    /* the request was consumed and the write side shut: EOF, no reset */
    ck_assert_int_eq(read(p.pfd, buf, sizeof(buf)), 0);
    pair_free(&p);

    ck_assert(sw__tls_looks_like_http((const unsigned char *)"OPTIONS ", 8));
    ck_assert(sw__tls_looks_like_http((const unsigned char *)"GE", 2));
    ck_assert(
        !sw__tls_looks_like_http((const unsigned char *)"\x16\x03\x01", 3));
    ck_assert(!sw__tls_looks_like_http((const unsigned char *)"get /", 5));
    ck_assert(!sw__tls_looks_like_http((const unsigned char *)" GET", 4));

    /* A client that connects and leaves before the hello. */
    pair_sockets(&p);
    ck_assert_int_eq(sw_tls_server_attach(cf->tls, 0, &p.io), SW_OK);
    shutdown(p.pfd, SHUT_WR);
    ck_assert_int_eq(p.io.ops->handshake(&p.io), SW_ECLOSED);
    pair_free(&p);
    sw_conf_unref(cf);
}
END_TEST

/* ---- data -------------------------------------------------------------- */

static void
fill(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        b[i] = (unsigned char)(seed >> 16);
    }
}

START_TEST(test_bulk_both_ways)
{
    struct sw_conf *cf =
        conf_tls("listen 127.0.0.1:1 tls;\n" CERTS UPSTREAM, 1);
    SSL_CTX *c = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
    struct pair p;
    server_pair(&p, cf, 0, c, "a.test");
    drive(&p);
    ck_assert_int_eq(p.rc, SW_OK);
    const size_t total = 3u << 20;
    unsigned char *up = malloc(total);
    unsigned char *down = malloc(total);
    unsigned char *got_up = malloc(total);
    unsigned char *got_down = malloc(total);
    fill(up, total, 1);
    fill(down, total, 2);
    size_t sent_up = 0, sent_down = 0, rcv_up = 0, rcv_down = 0;
    size_t again = 0;
    for (int i = 0; i < 200000 && (rcv_up < total || rcv_down < total); i++) {
        if (sent_up < total) {
            size_t w = 0;
            if (SSL_write_ex(p.peer, up + sent_up,
                             SW_MIN(total - sent_up, 100000), &w) == 1) {
                sent_up += w;
            }
            ERR_clear_error();
        }
        while (sent_down < total) {
            /* Odd sizes: records and partial writes at any boundary; write
             * until the socket is full. */
            ssize_t w = p.io.ops->send(&p.io, down + sent_down,
                                       SW_MIN(total - sent_down, 70001));
            if (w <= 0) {
                ck_assert_int_eq(w, SW_AGAIN);
                ck_assert(p.io.want != SW_IO_WANT_NONE);
                again++;
                break;
            }
            sent_down += (size_t)w;
        }
        ssize_t r;
        while ((r = p.io.ops->recv(&p.io, got_up + rcv_up,
                                   SW_MIN(total - rcv_up, 5000))) > 0) {
            rcv_up += (size_t)r;
            if (rcv_up == total) {
                break;
            }
        }
        if (rcv_up < total) {
            ck_assert_int_eq(r, SW_AGAIN);
        }
        size_t got = 0;
        while (rcv_down < total && SSL_read_ex(p.peer, got_down + rcv_down,
                                               total - rcv_down, &got) == 1) {
            rcv_down += got;
        }
        ERR_clear_error();
    }
    ck_assert_uint_eq(rcv_up, total);
    ck_assert_uint_eq(rcv_down, total);
    ck_assert(memcmp(up, got_up, total) == 0);
    ck_assert(memcmp(down, got_down, total) == 0);
    ck_assert_uint_gt(again, 0); /* the socket did fill up */
    free(up);
    free(down);
    free(got_up);
    free(got_down);
    pair_free(&p);
    SSL_CTX_free(c);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_pending_and_close)
{
    struct sw_conf *cf =
        conf_tls("listen 127.0.0.1:1 tls;\n" CERTS UPSTREAM, 1);
    SSL_CTX *c = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
    struct pair p;
    server_pair(&p, cf, 0, c, "a.test");
    drive(&p);
    ck_assert_int_eq(p.rc, SW_OK);
    char buf[300];
    ck_assert_int_eq(p.io.ops->recv(&p.io, buf, sizeof(buf)), SW_AGAIN);
    ck_assert_int_eq(p.io.want, SW_IO_WANT_READ);
    ck_assert_uint_eq(p.io.ops->pending(&p.io), 0);
    memset(buf, 'q', sizeof(buf));
    ck_assert_int_eq(SSL_write(p.peer, buf, 100), 100);
    /* A short read leaves the rest of the record decrypted inside. */
    ck_assert_int_eq(p.io.ops->recv(&p.io, buf, 10), 10);
    ck_assert_uint_eq(p.io.ops->pending(&p.io), 90);
    ck_assert_int_eq(p.io.ops->recv(&p.io, buf, sizeof(buf)), 90);
    ck_assert_uint_eq(p.io.ops->pending(&p.io), 0);
    /* Our close sends close_notify: the peer reads a clean end. */
    p.io.ops->close(&p.io);
    ck_assert_ptr_null(p.io.tls);
    int r = SSL_read(p.peer, buf, sizeof(buf));
    ck_assert_int_eq(SSL_get_error(p.peer, r), SSL_ERROR_ZERO_RETURN);
    pair_free(&p);

    /* The peer's close_notify, then a bare EOF: both read as 0. */
    for (int bare = 0; bare < 2; bare++) {
        server_pair(&p, cf, 0, c, "a.test");
        drive(&p);
        ck_assert_int_eq(p.rc, SW_OK);
        if (bare) {
            shutdown(p.pfd, SHUT_WR);
        } else {
            SSL_shutdown(p.peer);
        }
        ck_assert_int_eq(p.io.ops->recv(&p.io, buf, sizeof(buf)), 0);
        pair_free(&p);
    }
    /* A reset while sending: SW_ECLOSED. */
    server_pair(&p, cf, 0, c, "a.test");
    drive(&p);
    close(p.pfd);
    p.pfd = -1;
    ssize_t w = 0;
    for (int i = 0; i < 100 && w >= 0; i++) {
        w = p.io.ops->send(&p.io, buf, sizeof(buf));
    }
    ck_assert_int_eq(w, SW_ECLOSED);
    ck_assert_int_eq(p.io.last_errno, EPIPE);
    pair_free(&p);
    SSL_CTX_free(c);
    sw_conf_unref(cf);
}
END_TEST

/* ---- the upstream (client) side ---------------------------------------- */

static SSL_CTX *
plain_server_ctx(const char *cert, const char *key)
{
    SSL_CTX *s = SSL_CTX_new(TLS_server_method());
    ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(s, path(cert)), 1);
    ck_assert_int_eq(
        SSL_CTX_use_PrivateKey_file(s, path(key), SSL_FILETYPE_PEM), 1);
    return s;
}

/* Our client end toward server 0 of upstream 0, an OpenSSL server peer. */
static enum sw_status
upstream_handshake(const char *text, const char *cert, const char *key,
                   char *sni, size_t snilen)
{
    struct sw_conf *cf = conf_tls(text, 1);
    struct pair p;
    pair_sockets(&p);
    const struct sw_conf_upstream *u = &cf->upstreams[0];
    ck_assert_int_eq(sw_tls_client_attach(cf->tls, u, &u->servers[0], &p.io),
                     SW_OK);
    p.pctx = plain_server_ctx(cert, key);
    p.peer = SSL_new(p.pctx);
    SSL_set_fd(p.peer, p.pfd);
    SSL_set_accept_state(p.peer);
    drive(&p);
    enum sw_status rc = p.rc;
    const char *name = SSL_get_servername(p.peer, TLSEXT_NAMETYPE_host_name);
    snprintf(sni, snilen, "%s", name != NULL ? name : "");
    if (rc == SW_OK) {
        /* Bytes flow through our client end too. */
        ck_assert_int_eq(p.io.ops->send(&p.io, "ping", 4), 4);
        char buf[8];
        ck_assert_int_eq(SSL_read(p.peer, buf, sizeof(buf)), 4);
        ck_assert_mem_eq(buf, "ping", 4);
    }
    pair_free(&p);
    sw_conf_unref(cf);
    return rc;
}

START_TEST(test_upstream)
{
    char sni[256];
    char text[1024];
#define UP(opts, addr)                                                         \
    snprintf(text, sizeof(text),                                               \
             "listen 127.0.0.1:1;\nupstream s {\n server %s tls;\n%s}\n"       \
             "route { upstream s; }\n",                                        \
             addr, opts)
    UP("tls_ca ca.pem; tls_server_name a.test;", "127.0.0.1:2");
    ck_assert_int_eq(upstream_handshake(text, "a.pem", "a.key", sni, 256),
                     SW_OK);
    ck_assert_str_eq(sni, "a.test");
    /* Wrong name, unknown CA: refused. */
    UP("tls_ca ca.pem; tls_server_name c.test;", "127.0.0.1:2");
    ck_assert_int_eq(upstream_handshake(text, "a.pem", "a.key", sni, 256),
                     SW_EPROTO);
    UP("tls_ca other-ca.pem; tls_server_name a.test;", "127.0.0.1:2");
    ck_assert_int_eq(upstream_handshake(text, "a.pem", "a.key", sni, 256),
                     SW_EPROTO);
    /* tls_verify off accepts it anyway. */
    UP("tls_verify off; tls_ca other-ca.pem; tls_server_name a.test;",
       "127.0.0.1:2");
    ck_assert_int_eq(upstream_handshake(text, "a.pem", "a.key", sni, 256),
                     SW_OK);
    /* Default name: the server's host; an address is verified as an IP and
     * sent without SNI. */
    UP("tls_ca ca.pem;", "127.0.0.1:2");
    ck_assert_int_eq(upstream_handshake(text, "ip.pem", "ip.key", sni, 256),
                     SW_OK);
    ck_assert_str_eq(sni, "");
    ck_assert_int_eq(upstream_handshake(text, "a.pem", "a.key", sni, 256),
                     SW_EPROTO);
    UP("tls_ca ca.pem;", "localhost:2");
    ck_assert_int_eq(upstream_handshake(text, "ip.pem", "ip.key", sni, 256),
                     SW_OK);
    ck_assert_str_eq(sni, "localhost");
#undef UP
}
END_TEST

static Suite *
tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");
    tcase_add_unchecked_fixture(tc, setup_pki, teardown_pki);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_name_match);
    tcase_add_test(tc, test_pick_cert);
    tcase_add_test(tc, test_ticket_keys);
    tcase_add_test(tc, test_ctx_errors);
    tcase_add_test(tc, test_ctx_without_tls);
    tcase_add_test(tc, test_versions);
    tcase_add_test(tc, test_sni);
    tcase_add_test(tc, test_alpn);
    tcase_add_test(tc, test_resumption);
    tcase_add_test(tc, test_ocsp);
    tcase_add_test(tc, test_plain_http);
    tcase_add_test(tc, test_bulk_both_ways);
    tcase_add_test(tc, test_pending_and_close);
    tcase_add_test(tc, test_upstream);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(tls_suite());
}
