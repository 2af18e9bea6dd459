/*
 * conf_directive_tls.c - the TLS directives: server certificates and their
 * keys, protocol versions and the session cache at the top level, and the
 * CA bundle and server name of an upstream (see docs/tls.md).
 *
 *   tls_file()                         a file name, relative to the
 *                                      directive's own file
 *   sw__conf_set_tls_certificate()     tls_certificate FILE: a new pair
 *   sw__conf_set_tls_cert_part()       tls_certificate_key,
 *                                      tls_ocsp_response: complete it
 *   sw__conf_set_tls_protocols()       TLSv1.2 and/or TLSv1.3
 *   sw__conf_set_tls_session_cache()   off | a session count
 *   sw__conf_set_upstream_tls()        tls_ca FILE, tls_server_name NAME
 *
 * Cipher lists go through sw__conf_set_string, timeouts through
 * sw__conf_set_value; OpenSSL checks what it alone can when the daemon
 * builds the TLS contexts. That a certificate has its key, and a TLS
 * listener a certificate, is checked over the whole file (conf_parse.c).
 *
 * Ownership: paths are copied into the snapshot's arena. One thread.
 */
#include "conf_int.h"

/*
 * A file named by a TLS directive, as a path open(2) can take: relative
 * names are relative to the folder of the file the directive is in (like
 * `include`), so a configuration and its certificates move together.
 */
static bool
tls_file(struct sw__conf_parser *ps, const struct sw__conf_src *s,
         const struct sw__conf_tok *t, const char *what, struct sw_str *out)
{
    if (t->text.len == 0) {
        sw__conf_err_tok(ps, s, t, "\"%s\" needs a file name", what);
        return false;
    }
    if (memchr(t->text.p, '\0', t->text.len) != NULL) {
        sw__conf_err_tok(ps, s, t, "NUL byte in the file name of \"%s\"", what);
        return false;
    }
    size_t n;
    const char *p = sw__conf_path(ps, s, t->text, &n);
    if (p == NULL) {
        return false;
    }
    *out = (struct sw_str){p, n};
    return true;
}

void
sw__conf_set_tls_certificate(struct sw__conf_parser *ps, struct sw__conf_src *s,
                             struct sw__conf_block *b,
                             const struct sw__conf_stmt *st,
                             const struct sw__conf_directive *d)
{
    struct sw_conf *cf = b->obj;
    struct sw_conf_tls_cert c;
    memset(&c, 0, sizeof(c));
    if (!tls_file(ps, s, &st->args[0], d->name, &c.cert)) {
        return;
    }
    c.file = sw__conf_dup_str(ps, s->lx.file, strlen(s->lx.file));
    c.line = st->name.line;
    c.col = st->name.col;
    SW__CONF_APPEND(ps, cf->tls_certs, cf->ntls_certs, c);
}

/* tls_certificate_key and tls_ocsp_response complete the certificate
 * written just before them. */
void
sw__conf_set_tls_cert_part(struct sw__conf_parser *ps, struct sw__conf_src *s,
                           struct sw__conf_block *b,
                           const struct sw__conf_stmt *st,
                           const struct sw__conf_directive *d)
{
    struct sw_conf *cf = b->obj;
    bool key = strcmp(d->name, "tls_certificate_key") == 0;
    struct sw_conf_tls_cert *c =
        cf->ntls_certs > 0 ? &cf->tls_certs[cf->ntls_certs - 1] : NULL;
    struct sw_str *slot = c == NULL ? NULL : key ? &c->key : &c->ocsp_response;
    if (slot == NULL) {
        sw__conf_err_tok(ps, s, &st->name,
                         "\"%s\" must follow the \"tls_certificate\" it "
                         "belongs to",
                         d->name);
        return;
    }
    if (slot->len > 0) {
        sw__conf_err_tok(ps, s, &st->name,
                         "the certificate at %.*s:%u:%u already has a "
                         "\"%s\": start the next pair with "
                         "\"tls_certificate\"",
                         (int)c->file.len, c->file.p, c->line, c->col, d->name);
        return;
    }
    tls_file(ps, s, &st->args[0], d->name, slot);
}

void
sw__conf_set_tls_protocols(struct sw__conf_parser *ps, struct sw__conf_src *s,
                           struct sw__conf_block *b,
                           const struct sw__conf_stmt *st,
                           const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    unsigned v = 0;
    for (size_t i = 0; i < st->nargs; i++) {
        const struct sw__conf_tok *t = &st->args[i];
        if (sw__conf_str_eq(t->text, "TLSv1.2")) {
            v |= SW_CONF_TLS_V12;
        } else if (sw__conf_str_eq(t->text, "TLSv1.3")) {
            v |= SW_CONF_TLS_V13;
        } else if (sw__conf_str_eq(t->text, "TLSv1") ||
                   sw__conf_str_eq(t->text, "TLSv1.1") ||
                   sw__conf_str_eq(t->text, "SSLv3")) {
            sw__conf_err_tok(ps, s, t,
                             "\"%.*s\" is not supported (RFC 8996 "
                             "deprecates it): use TLSv1.2 and TLSv1.3",
                             SW__CONF_TOKF(t));
            return;
        } else {
            sw__conf_err_tok(ps, s, t,
                             "\"tls_protocols\" expects TLSv1.2 and/or "
                             "TLSv1.3, got \"%.*s\"",
                             SW__CONF_TOKF(t));
            return;
        }
    }
    cf->tls_protocols = v;
}

void
sw__conf_set_tls_session_cache(struct sw__conf_parser *ps,
                               struct sw__conf_src *s, struct sw__conf_block *b,
                               const struct sw__conf_stmt *st,
                               const struct sw__conf_directive *d)
{
    struct sw_conf *cf = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    uint64_t v;
    if (sw__conf_str_eq(t->text, "off")) {
        cf->tls_session_cache = 0;
        return;
    }
    if (sw_conf_parse_size(t->text, &v) != SW_OK || v < d->lo || v > d->hi) {
        sw__conf_err_tok(ps, s, t,
                         "\"tls_session_cache\" expects \"off\" or a "
                         "session count from %llu to %llu (k and m "
                         "suffixes allowed), got \"%.*s\"",
                         (unsigned long long)d->lo, (unsigned long long)d->hi,
                         SW__CONF_TOKF(t));
        return;
    }
    cf->tls_session_cache = v;
}

/* tls_ca: a file; tls_server_name: a host name, an IP literal allowed. */
void
sw__conf_set_upstream_tls(struct sw__conf_parser *ps, struct sw__conf_src *s,
                          struct sw__conf_block *b,
                          const struct sw__conf_stmt *st,
                          const struct sw__conf_directive *d)
{
    struct sw_conf_upstream *u = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    if (strcmp(d->name, "tls_ca") == 0) {
        tls_file(ps, s, t, d->name, &u->tls_ca);
        return;
    }
    bool ok = t->text.len > 0 && t->text.len <= SW__CONF_NAME_MAX;
    for (size_t i = 0; ok && i < t->text.len; i++) {
        char ch = t->text.p[i];
        ok = sw__conf_is_host_char(ch) || (ch >= 'A' && ch <= 'Z') ||
             ch == ':' || ch == '[' || ch == ']';
    }
    if (!ok) {
        sw__conf_err_tok(ps, s, t,
                         "invalid name \"%.*s\" for \"tls_server_name\"",
                         SW__CONF_TOKF(t));
        return;
    }
    u->tls_server_name = sw__conf_dup_str(ps, t->text.p, t->text.len);
}
