/*
 * conf_parse.c - the block parser, includes and the checks run over a whole
 * snapshot (see conf_int.h, docs/configuration.md).
 *
 *   parse_block --read_stmt--> struct stmt (name, args, ";" or "{")
 *        |                          |
 *        |                     dispatch: look the name up in the table of
 *        |                     the current context (main, upstream, route),
 *        |                     check block-ness, argument count, duplicates
 *        |                          |
 *        +<-- block directives -----+--> d->set(): parse and store values
 *             (upstream, route) and include recurse into parse_block
 *
 * The directive tables live in conf_directive.c, the setters in
 * conf_directive_*.c.
 *
 * After the text is read, validate() resolves route -> upstream references
 * (an upstream may be defined after the route that names it) and checks
 * what only the whole file can tell (a listen exists, limits agree).
 *
 * Errors never stop the parse (until SW__CONF_MAX_ERRORS): a bad statement
 * is reported and skipped, a block is skipped to its closing brace.
 *
 * Ownership: every value stored is copied into the snapshot's arena; tokens
 * borrow the text of the file being read, which is freed after the file.
 * One thread.
 */
#include "conf_int.h"

#include <shockwave/log.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>

/* ---- messages ---------------------------------------------------------- */

bool
sw__conf_stopped(const struct sw__conf_parser *ps)
{
    return ps->oom || ps->errs->full;
}

static void
verr(struct sw__conf_parser *ps, const char *file, unsigned line, unsigned col,
     const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    sw__conf_error(ps->errs, file, line, col, "%s", msg);
}

void __attribute__((format(printf, 4, 5)))
sw__conf_err_tok(struct sw__conf_parser *ps, const struct sw__conf_src *s,
                 const struct sw__conf_tok *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(ps, s->lx.file, t->line, t->col, fmt, ap);
    va_end(ap);
}

void __attribute__((format(printf, 5, 6)))
sw__conf_err_off(struct sw__conf_parser *ps, const struct sw__conf_src *s,
                 const struct sw__conf_tok *t, size_t off, const char *fmt, ...)
{
    unsigned line;
    unsigned col;
    sw__conf_tok_pos(t, off, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    verr(ps, s->lx.file, line, col, fmt, ap);
    va_end(ap);
}

void __attribute__((format(printf, 3, 4)))
sw__conf_err_pos(struct sw__conf_parser *ps, const struct sw__conf_pos *p,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(ps, p->file, p->line, p->col, fmt, ap);
    va_end(ap);
}

void
sw__conf_oom(struct sw__conf_parser *ps)
{
    if (!ps->oom) {
        sw__conf_error(ps->errs, ps->top_file, 1, 1, "out of memory");
        ps->oom = true;
    }
}

/* ---- small helpers ----------------------------------------------------- */

struct sw_str
sw__conf_dup_str(struct sw__conf_parser *ps, const char *p, size_t n)
{
    char *c = sw__conf_strndup(ps->arena, p, n);
    if (c == NULL) {
        sw__conf_oom(ps);
        return (struct sw_str){"", 0};
    }
    return (struct sw_str){c, n};
}

const char *
sw__conf_dup_cstr(struct sw__conf_parser *ps, const char *p)
{
    return sw__conf_dup_str(ps, p, strlen(p)).p;
}

/* Room for one more element in an arena array of n elements. The capacity
 * is implied by n (0 or a power of two >= 4 means full), so no field is
 * needed for it. Returns the (possibly moved) array or NULL on ENOMEM. */
void *
sw__conf_grow(struct sw__conf_parser *ps, void *base, size_t n, size_t size)
{
    if (n != 0 && (n < 4 || (n & (n - 1)) != 0)) {
        return base;
    }
    size_t cap = n == 0 ? 4 : n * 2;
    void *nb = sw__conf_alloc(ps->arena, cap * size);
    if (nb == NULL) {
        sw__conf_oom(ps);
        return NULL;
    }
    if (n > 0) {
        memcpy(nb, base, n * size);
    }
    return nb;
}

bool
sw__conf_str_eq(struct sw_str a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && memcmp(a.p, b, n) == 0;
}

bool
sw__conf_parse_u64(struct sw_str s, uint64_t *out)
{
    uint64_t v = 0;
    if (s.len == 0) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            return false;
        }
        unsigned dgt = (unsigned)(s.p[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10) {
            return false;
        }
        v = v * 10 + dgt;
    }
    *out = v;
    return true;
}
/* ---- the parser -------------------------------------------------------- */

static bool
next(struct sw__conf_parser *ps, struct sw__conf_src *s, struct sw__conf_tok *t)
{
    if (sw__conf_lex_next(&s->lx, t) != SW_OK) {
        sw__conf_oom(ps);
        t->kind = SW__CONF_TOK_EOF;
        return false;
    }
    return true;
}

/* Line and column just past a token (where a missing ";" belongs). */
static void
end_pos(const struct sw__conf_tok *t, unsigned *line, unsigned *col)
{
    sw__conf_tok_pos(t, t->raw.len, line, col);
    if (t->kind == SW__CONF_TOK_STRING) {
        (*col)++;
    }
}

/* Skip to the "}" that closes a block whose "{" was just read. */
static void
skip_block(struct sw__conf_parser *ps, struct sw__conf_src *s)
{
    unsigned depth = 1;
    struct sw__conf_tok t;
    while (depth > 0 && next(ps, s, &t)) {
        if (t.kind == SW__CONF_TOK_EOF) {
            if (!s->lx.failed) {
                sw__conf_err_tok(ps, s, &t,
                                 "unexpected end of file, expected \"}\"");
            }
            return;
        }
        if (t.kind == SW__CONF_TOK_LBRACE) {
            depth++;
        } else if (t.kind == SW__CONF_TOK_RBRACE) {
            depth--;
        }
    }
}

/* Read the arguments of a statement up to ";" or "{". */
static void
read_stmt(struct sw__conf_parser *ps, struct sw__conf_src *s,
          const struct sw__conf_block *b, const struct sw__conf_tok *name,
          struct sw__conf_stmt *st)
{
    memset(st, 0, sizeof(*st));
    st->name = *name;
    const struct sw__conf_tok *last = name;
    bool toomany = false;
    struct sw__conf_tok t;
    while (next(ps, s, &t)) {
        if (t.kind == SW__CONF_TOK_SEMI) {
            return;
        }
        if (t.kind == SW__CONF_TOK_LBRACE) {
            st->block = true;
            return;
        }
        /* A directive name at the start of a later line most likely
         * means the ";" was forgotten: say so rather than complain about
         * the arguments. */
        bool next_stmt = t.kind == SW__CONF_TOK_WORD && t.line > last->line &&
                         sw__conf_lookup(b->ctx, t.text, NULL) != NULL;
        if (t.kind == SW__CONF_TOK_EOF || t.kind == SW__CONF_TOK_RBRACE ||
            next_stmt) {
            if (t.kind != SW__CONF_TOK_EOF || !s->lx.failed) {
                unsigned line;
                unsigned col;
                end_pos(last, &line, &col);
                sw__conf_error(ps->errs, s->lx.file, line, col,
                               "expected \";\" or \"{\" after \"%.*s\"",
                               SW__CONF_TOKF(last));
            }
            sw__conf_lex_unget(&s->lx, &t);
            st->cut = true;
            return;
        }
        if (st->nargs == SW__CONF_MAX_ARGS) {
            if (!toomany) {
                sw__conf_err_tok(ps, s, &t,
                                 "too many arguments for \"%.*s\" (limit "
                                 "%d)",
                                 SW__CONF_TOKF(name), SW__CONF_MAX_ARGS);
                toomany = true;
                st->toomany = true;
            }
        } else {
            st->args[st->nargs++] = t;
            last = &st->args[st->nargs - 1];
        }
    }
    st->cut = true;
}

static void
dispatch(struct sw__conf_parser *ps, struct sw__conf_src *s,
         struct sw__conf_block *b, const struct sw__conf_stmt *st)
{
    const struct sw__conf_tok *nt = &st->name;
    size_t idx;
    const struct sw__conf_directive *d =
        sw__conf_lookup(b->ctx, nt->text, &idx);
    if (st->toomany) {
        goto skip;
    }
    if (d == NULL) {
        sw__conf_unknown_directive(ps, s, b, st);
        goto skip;
    }
    if (!(d->flags & SW__CONF_F_MULTI) && (b->seen & (1ull << idx))) {
        sw__conf_err_tok(ps, s, nt, "duplicate \"%s\" directive", d->name);
        goto skip;
    }
    b->seen |= 1ull << idx;
    if (b->ctx == SW__CONF_CTX_MAIN && idx < SW_NELEMS(ps->main_pos)) {
        ps->main_pos[idx] =
            (struct sw__conf_pos){s->lx.file, nt->line, nt->col};
    }
    if ((d->flags & SW__CONF_F_BLOCK) && !st->block) {
        if (!st->cut) {
            sw__conf_err_tok(ps, s, nt, "\"%s\" needs a block: expected \"{\"",
                             d->name);
        }
        return;
    }
    if (!(d->flags & SW__CONF_F_BLOCK) && st->block) {
        sw__conf_err_tok(ps, s, nt, "\"%s\" takes no block: expected \";\"",
                         d->name);
        goto skip;
    }
    int n = (int)st->nargs;
    if (n < d->min || (d->max >= 0 && n > d->max)) {
        const struct sw__conf_tok *at = n > d->min ? &st->args[d->max] : nt;
        if (d->min == d->max) {
            sw__conf_err_tok(ps, s, at, "\"%s\" takes %d argument%s, got %d",
                             d->name, d->min, d->min == 1 ? "" : "s", n);
        } else if (d->max < 0) {
            sw__conf_err_tok(ps, s, at, "\"%s\" needs at least %d argument%s",
                             d->name, d->min, d->min == 1 ? "" : "s");
        } else {
            sw__conf_err_tok(ps, s, at,
                             "\"%s\" takes %d to %d arguments, got %d", d->name,
                             d->min, d->max, n);
        }
        goto skip;
    }
    d->set(ps, s, b, st, d);
    return;
skip:
    if (st->block) {
        skip_block(ps, s);
    }
}

void
sw__conf_parse_block(struct sw__conf_parser *ps, struct sw__conf_src *s,
                     struct sw__conf_block *b, bool nested)
{
    struct sw__conf_tok t;
    struct sw__conf_stmt st;
    while (!sw__conf_stopped(ps) && next(ps, s, &t)) {
        switch (t.kind) {
        case SW__CONF_TOK_EOF:
            if (nested && !s->lx.failed) {
                sw__conf_err_tok(ps, s, &t,
                                 "unexpected end of file, expected "
                                 "\"}\"");
            }
            return;
        case SW__CONF_TOK_RBRACE:
            if (nested) {
                return;
            }
            sw__conf_err_tok(ps, s, &t, "unexpected \"}\"");
            break;
        case SW__CONF_TOK_SEMI:
            sw__conf_err_tok(ps, s, &t,
                             "unexpected \";\": expected a directive");
            break;
        case SW__CONF_TOK_LBRACE:
            sw__conf_err_tok(ps, s, &t,
                             "unexpected \"{\": expected a directive");
            skip_block(ps, s);
            break;
        case SW__CONF_TOK_STRING:
            sw__conf_err_tok(ps, s, &t,
                             "expected a directive name, got a quoted "
                             "string");
            read_stmt(ps, s, b, &t, &st);
            if (st.block) {
                skip_block(ps, s);
            }
            break;
        case SW__CONF_TOK_WORD:
            read_stmt(ps, s, b, &t, &st);
            /* A statement cut short by a lexical error is not judged: its
             * arguments are missing for a reason already reported. */
            if (!sw__conf_stopped(ps) && !s->lx.failed) {
                dispatch(ps, s, b, &st);
            }
            break;
        }
    }
}

/* ---- directives: shared ------------------------------------------------ */

const char *
sw__conf_path(struct sw__conf_parser *ps, const struct sw__conf_src *s,
              struct sw_str name, size_t *len)
{
    if ((name.len > 0 && name.p[0] == '/') || s->dir == NULL) {
        char *c = sw__conf_strndup(ps->arena, name.p, name.len);
        if (c == NULL) {
            sw__conf_oom(ps);
            return NULL;
        }
        *len = name.len;
        return c;
    }
    size_t dl = strlen(s->dir);
    bool slash = dl > 0 && s->dir[dl - 1] == '/';
    size_t n = dl + (slash ? 0 : 1) + name.len;
    char *p = sw__conf_alloc(ps->arena, n + 1);
    if (p == NULL) {
        sw__conf_oom(ps);
        return NULL;
    }
    memcpy(p, s->dir, dl);
    if (!slash) {
        p[dl++] = '/';
    }
    memcpy(p + dl, name.p, name.len);
    p[n] = '\0';
    *len = n;
    return p;
}

void
sw__conf_set_include(struct sw__conf_parser *ps, struct sw__conf_src *s,
                     struct sw__conf_block *b, const struct sw__conf_stmt *st,
                     const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    const struct sw__conf_tok *t = &st->args[0];
    char *text = NULL;
    char *real = NULL;
    if (t->text.len == 0) {
        sw__conf_err_tok(ps, s, t, "\"include\" needs a file name");
        goto out;
    }
    if (ps->depth >= SW__CONF_MAX_INCLUDE) {
        sw__conf_err_tok(ps, s, t, "includes nested too deep (limit %d)",
                         SW__CONF_MAX_INCLUDE);
        goto out;
    }
    /* Relative names are relative to the including file's folder. */
    size_t plen;
    const char *path = sw__conf_path(ps, s, t->text, &plen);
    if (path == NULL) {
        goto out;
    }
    real = realpath(path, NULL);
    if (real == NULL) {
        sw__conf_err_tok(ps, s, t, "cannot open \"%s\": %s", path,
                         strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < ps->nstack; i++) {
        if (strcmp(ps->stack[i], real) == 0) {
            sw__conf_err_tok(
                ps, s, t, "include cycle: \"%s\" is already being read", path);
            goto out;
        }
    }
    size_t len;
    enum sw_status rc = sw__conf_read_file(path, &text, &len);
    if (rc != SW_OK) {
        sw__conf_err_tok(ps, s, t, "cannot read \"%s\": %s", path,
                         rc == SW_ETOOBIG  ? "file too large"
                         : rc == SW_ENOMEM ? "out of memory"
                                           : strerror(errno));
        goto out;
    }
    struct sw__conf_src ns;
    const char *slash = strrchr(path, '/');
    ns.dir = slash == NULL ? NULL
             : slash == path
                 ? "/"
                 : sw__conf_dup_str(ps, path, (size_t)(slash - path)).p;
    sw__conf_lex_init(&ns.lx, text, len, path, ps->arena, ps->errs);
    ps->stack[ps->nstack++] = sw__conf_dup_cstr(ps, real);
    ps->depth++;
    sw__conf_parse_block(ps, &ns, b, false);
    ps->lexfail = ps->lexfail || ns.lx.failed;
    ps->depth--;
    ps->nstack--;
out:
    free(text);
    free(real);
}

/* ---- whole-file checks ------------------------------------------------- */

/* Whether a main directive was written, and where (first occurrence). */
static bool
main_seen(const struct sw__conf_parser *ps, const char *name,
          struct sw__conf_pos *at)
{
    size_t i;
    struct sw_str n = {name, strlen(name)};
    if (sw__conf_lookup(SW__CONF_CTX_MAIN, n, &i) == NULL ||
        i >= SW_NELEMS(ps->main_pos) || ps->main_pos[i].file == NULL) {
        return false;
    }
    *at = ps->main_pos[i];
    return true;
}

/* Where `name` was written, else `other`, else the top of the file. */
static struct sw__conf_pos
main_pos(const struct sw__conf_parser *ps, const char *name, const char *other)
{
    struct sw__conf_pos at = {ps->top_file, 1, 1};
    if (!main_seen(ps, name, &at)) {
        main_seen(ps, other, &at);
    }
    return at;
}

/* A route without `name` is named by its position ("0", "1", ...); two
 * routes may not share a name, whichever way they got it. */
static void
name_routes(struct sw__conf_parser *ps)
{
    struct sw_conf *cf = ps->cf;
    for (size_t i = 0; i < cf->nroutes; i++) {
        struct sw_conf_route *r = &cf->routes[i];
        if (r->name.len == 0) {
            char pos[24];
            int n = snprintf(pos, sizeof(pos), "%zu", i);
            r->name = sw__conf_dup_str(ps, pos, (size_t)n);
        }
    }
    for (size_t i = 0; i < cf->nroutes && i < ps->nraux; i++) {
        for (size_t k = 0; k < i; k++) {
            if (sw__conf_str_eq(cf->routes[i].name, cf->routes[k].name.p)) {
                sw__conf_err_pos(
                    ps, &ps->raux[i].name_at,
                    "route name \"%.*s\" is already used by the "
                    "route at line %u",
                    (int)SW_MIN(cf->routes[i].name.len, SW__CONF_SHOW),
                    cf->routes[i].name.p, cf->routes[k].line);
                break;
            }
        }
    }
}

static void
validate(struct sw__conf_parser *ps)
{
    struct sw_conf *cf = ps->cf;
    /* A listen line with a bad value was reported already. */
    struct sw__conf_pos lp;
    if (cf->nlistens == 0 && !main_seen(ps, "listen", &lp)) {
        sw__conf_error(ps->errs, ps->top_file, 1, 1,
                       "no \"listen\" directive: at least one is required");
    }
    /* The proxy reads a request head into one pool buffer. */
    if (cf->max_header_bytes > cf->buffer_size) {
        struct sw__conf_pos p = main_pos(ps, "max_header_bytes", "buffer_size");
        sw__conf_err_pos(ps, &p,
                         "max_header_bytes (%zu) is larger than buffer_size "
                         "(%zu): a request head must fit in one buffer",
                         cf->max_header_bytes, cf->buffer_size);
    }
    if (cf->max_request_line > cf->max_header_bytes) {
        struct sw__conf_pos p =
            main_pos(ps, "max_request_line", "max_header_bytes");
        sw__conf_err_pos(ps, &p,
                         "max_request_line (%zu) is larger than "
                         "max_header_bytes (%zu)",
                         cf->max_request_line, cf->max_header_bytes);
    }
    /* TLS: every certificate needs its key, a TLS listener a certificate. */
    for (size_t i = 0; i < cf->ntls_certs; i++) {
        struct sw_conf_tls_cert *c = &cf->tls_certs[i];
        if (c->key.len == 0) {
            struct sw__conf_pos p = {c->file.p, c->line, c->col};
            sw__conf_err_pos(ps, &p,
                             "\"tls_certificate\" has no "
                             "\"tls_certificate_key\": write one right "
                             "after it");
        }
    }
    if (ps->tls_listen.file != NULL && cf->ntls_certs == 0) {
        sw__conf_err_pos(ps, &ps->tls_listen,
                         "\"listen ... tls\" needs at least one "
                         "\"tls_certificate\" and \"tls_certificate_key\"");
    }
    name_routes(ps);
    sw__conf_check_plugins(ps);
    for (size_t i = 0; i < cf->nroutes; i++) {
        struct sw_conf_route *r = &cf->routes[i];
        if (!r->ws_kernel_relay_given) {
            r->ws_kernel_relay = cf->ws_kernel_relay; /* the main default */
        }
    }
    for (size_t i = 0; i < cf->nroutes && i < ps->nraux; i++) {
        const struct sw_conf_route *r = &cf->routes[i];
        if (r->fanout && (!r->websocket || ps->raux[i].upstream.len == 0)) {
            sw__conf_err_pos(ps, &ps->raux[i].name_at,
                             "\"fanout\" needs \"websocket on;\" and an "
                             "\"upstream\" in the same route");
        }
    }
    for (size_t i = 0; i < cf->nroutes && i < ps->nraux; i++) {
        struct sw__conf_route_aux *ra = &ps->raux[i];
        if (ra->upstream.len == 0) {
            continue;
        }
        const struct sw_conf_upstream *u =
            sw_conf_find_upstream(cf, ra->upstream);
        if (u != NULL) {
            cf->routes[i].upstream = u;
            continue;
        }
        const char *sugg = NULL;
        size_t bestd = 3;
        for (size_t k = 0; k < cf->nupstreams; k++) {
            struct sw_str n = cf->upstreams[k].name;
            size_t dd = sw__conf_distance(ra->upstream.p, ra->upstream.len, n.p,
                                          n.len, 2);
            if (dd < bestd && dd < ra->upstream.len) {
                sugg = n.p;
                bestd = dd;
            }
        }
        sw__conf_err_pos(ps, &ra->at, "unknown upstream \"%.*s\"%s%s%s",
                         (int)SW_MIN(ra->upstream.len, SW__CONF_SHOW),
                         ra->upstream.p, sugg ? ", did you mean \"" : "",
                         sugg ? sugg : "", sugg ? "\"?" : "");
    }
}

struct sw_conf *
sw__conf_parse(const char *text, size_t len, const char *name, const char *dir,
               const char *real, struct sw__conf_errors *errs)
{
    struct sw__conf_arena *arena = sw__conf_arena_new();
    struct sw_conf *cf = NULL;
    if (arena == NULL) {
        sw__conf_error(errs, name, 1, 1, "out of memory");
        goto fail;
    }
    cf = sw__conf_alloc(arena, sizeof(*cf));
    if (cf == NULL) {
        sw__conf_error(errs, name, 1, 1, "out of memory");
        goto fail;
    }
    struct sw__conf_parser ps;
    memset(&ps, 0, sizeof(ps));
    ps.cf = cf;
    ps.arena = arena;
    ps.errs = errs;
    cf->arena = arena;
    atomic_init(&cf->refcnt, 1);
    ps.top_file = sw__conf_dup_cstr(&ps, name);
    cf->path = sw__conf_dup_str(&ps, name, strlen(name));
    cf->error_log = sw__conf_dup_str(&ps, "stderr", 6);
    cf->io_engine = SW_IO_ENGINE_EPOLL;
    cf->log_level = SW_LOG_INFO;
    cf->access_log = sw__conf_dup_str(&ps, "off", 3);
    cf->user = sw__conf_dup_str(&ps, "", 0);
    cf->group = sw__conf_dup_str(&ps, "", 0);
    cf->real_ip_header = sw__conf_dup_str(&ps, "X-Forwarded-For", 15);
    cf->buffer_size = 16u << 10;
    cf->ws_pipe_size = 1u << 20;
    cf->max_header_bytes = 16u << 10;
    cf->max_request_line = 8u << 10;
    cf->max_headers = 100;
    cf->max_body_size = 1u << 20;
    cf->max_client_connections = 10000;
    cf->client_header_timeout_ms = 10000;
    cf->client_body_timeout_ms = 60000;
    cf->keepalive_timeout_ms = 75000;
    cf->send_timeout_ms = 60000;
    cf->shutdown_timeout_ms = 10000;
    cf->tls_protocols = SW_CONF_TLS_V12 | SW_CONF_TLS_V13;
    /* Mozilla "intermediate" (server side TLS guidelines v5.7). */
    cf->tls_ciphers = sw__conf_dup_str(&ps, SW__CONF_TLS_CIPHERS,
                                       sizeof(SW__CONF_TLS_CIPHERS) - 1);
    cf->tls_ciphersuites = sw__conf_dup_str(&ps, SW__CONF_TLS_SUITES,
                                            sizeof(SW__CONF_TLS_SUITES) - 1);
    cf->tls_ticket_rotate_ms = 3600000;
    cf->tls_session_cache = 20480;
    cf->tls_handshake_timeout_ms = 10000;
    sw__conf_bus_defaults(&ps);
    if (ps.oom) {
        goto fail;
    }
    struct sw__conf_src s;
    s.dir = dir != NULL ? sw__conf_dup_cstr(&ps, dir) : NULL;
    sw__conf_lex_init(&s.lx, text, len, ps.top_file, arena, errs);
    if (real != NULL) {
        ps.stack[ps.nstack++] = sw__conf_dup_cstr(&ps, real);
    }
    struct sw__conf_block top = {SW__CONF_CTX_MAIN, cf, 0};
    sw__conf_parse_block(&ps, &s, &top, false);
    ps.lexfail = ps.lexfail || s.lx.failed;
    /* After a lexical error the rest of a file was not read: whole-file
     * checks would only add noise. */
    if (!sw__conf_stopped(&ps) && !ps.lexfail) {
        validate(&ps);
    }
    if (errs->n > 0 || ps.oom) {
        goto fail;
    }
    return cf;
fail:
    sw__conf_arena_free(arena);
    return NULL;
}
