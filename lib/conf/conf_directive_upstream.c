/*
 * conf_directive_upstream.c - `upstream NAME { }` and the directives with
 * a setter of their own inside it.
 *
 *   sw__conf_set_upstream_block()  a new upstream at its defaults, then
 *                                  its block; at least one server
 *   sw__conf_set_server()          server ADDR [weight=N] [max_fails=N]
 *                                  [fail_timeout=TIME] [tls]
 *   sw__conf_set_balance()         round_robin | least_conn |
 *                                  hash $remote_addr | hash header NAME
 *
 * Keepalive and timeouts go through sw__conf_set_value, tls_verify through
 * sw__conf_set_flag, tls_ca and tls_server_name through conf_directive_tls.c.
 * Routes name upstreams by name; conf_parse.c resolves those names once the
 * whole file is read, so an upstream may come after the route using it.
 *
 * Ownership: what is stored is copied into the snapshot's arena. One
 * thread.
 */
#include "conf_int.h"

#define WEIGHT_MAX 1000    /* largest weight= */
#define MAX_FAILS_MAX 1000 /* largest max_fails= */

/* An upstream before its block is read (see docs/configuration.md). */
static const struct sw_conf_upstream upstream_defaults = {
    .balance = SW_CONF_BALANCE_ROUND_ROBIN,
    .keepalive = 32, /* idle connections kept per worker */
    .keepalive_timeout_ms = 60 * SW__CONF_SEC,
    .connect_timeout_ms = 5 * SW__CONF_SEC,
    .read_timeout_ms = 60 * SW__CONF_SEC,
    .send_timeout_ms = 60 * SW__CONF_SEC,
    .tls_verify = true,
};

/* A server line without options. */
static const struct sw_conf_server server_defaults = {
    .weight = 1,
    .max_fails = 1,
    .fail_timeout_ms = 10 * SW__CONF_SEC,
};

void
sw__conf_set_upstream_block(struct sw__conf_parser *ps, struct sw__conf_src *s,
                            struct sw__conf_block *b,
                            const struct sw__conf_stmt *st,
                            const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    const struct sw__conf_tok *nt = &st->args[0];
    if (nt->text.len == 0) {
        sw__conf_err_tok(ps, s, nt, "empty upstream name");
    }
    for (size_t i = 0; i < cf->nupstreams; i++) {
        struct sw_str other = cf->upstreams[i].name;
        if (other.len == nt->text.len &&
            memcmp(other.p, nt->text.p, other.len) == 0) {
            sw__conf_err_tok(ps, s, nt,
                             "duplicate upstream \"%.*s\", first defined "
                             "at %s:%u:%u",
                             SW__CONF_TOKF(nt), ps->upos[i].file,
                             ps->upos[i].line, ps->upos[i].col);
            break;
        }
    }
    struct sw_conf_upstream *u;
    struct sw__conf_pos *up;
    SW__CONF_PUSH(ps, cf->upstreams, cf->nupstreams, u);
    if (u == NULL) {
        return;
    }
    SW__CONF_PUSH(ps, ps->upos, ps->nupos, up);
    if (up == NULL) {
        return;
    }
    *up = (struct sw__conf_pos){s->lx.file, nt->line, nt->col};
    *u = upstream_defaults;
    u->name = sw__conf_dup_str(ps, nt->text.p, nt->text.len);
    u->index = cf->nupstreams - 1;
    /* cf->upstreams cannot move while its block is read: "upstream" is
     * not allowed inside one, so u stays valid. */
    struct sw__conf_block nb = {SW__CONF_CTX_UPSTREAM, u, 0};
    unsigned nerr = ps->errs->n;
    sw__conf_parse_block(ps, s, &nb, true);
    /* A server line already reported as bad would make this one noise. */
    if (u->nservers == 0 && !sw__conf_stopped(ps) && ps->errs->n == nerr) {
        sw__conf_err_tok(ps, s, &st->name,
                         "upstream \"%.*s\" has no \"server\"",
                         SW__CONF_TOKF(nt));
    }
}

void
sw__conf_set_server(struct sw__conf_parser *ps, struct sw__conf_src *s,
                    struct sw__conf_block *b, const struct sw__conf_stmt *st,
                    const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_upstream *u = b->obj;
    struct sw_conf_server sv = server_defaults;
    bool ok =
        sw__conf_resolve(ps, s, &st->args[0], false, &sv.addr, &sv.addrlen);
    for (size_t i = 1; i < st->nargs; i++) {
        const struct sw__conf_tok *t = &st->args[i];
        struct sw__conf_tok v;
        uint64_t n;
        /* A bad value leaves n unset; ok then drops the whole line. */
        if (sw__conf_option(t, "weight", &v)) {
            ok = sw__conf_get_value(ps, s, &v, "weight", &sw__conf_number, 1,
                                    WEIGHT_MAX, &n) &&
                 ok;
            sv.weight = (unsigned)n;
        } else if (sw__conf_option(t, "max_fails", &v)) {
            ok = sw__conf_get_value(ps, s, &v, "max_fails", &sw__conf_number, 0,
                                    MAX_FAILS_MAX, &n) &&
                 ok;
            sv.max_fails = (unsigned)n;
        } else if (sw__conf_option(t, "fail_timeout", &v)) {
            ok = sw__conf_get_value(ps, s, &v, "fail_timeout",
                                    &sw__conf_duration, 0, SW__CONF_MAX_DUR,
                                    &n) &&
                 ok;
            sv.fail_timeout_ms = n;
        } else if (sw__conf_str_eq(t->text, "tls")) {
            sv.tls = true;
        } else {
            sw__conf_err_tok(ps, s, t,
                             "unknown option \"%.*s\" for \"server\": "
                             "expected weight=N, max_fails=N, "
                             "fail_timeout=TIME or tls",
                             SW__CONF_TOKF(t));
            ok = false;
        }
    }
    if (!ok) {
        return;
    }
    sv.text = sw__conf_dup_str(ps, st->args[0].text.p, st->args[0].text.len);
    SW__CONF_APPEND(ps, u->servers, u->nservers, sv);
}

void
sw__conf_set_balance(struct sw__conf_parser *ps, struct sw__conf_src *s,
                     struct sw__conf_block *b, const struct sw__conf_stmt *st,
                     const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_upstream *u = b->obj;
    const struct sw__conf_tok *a = st->args;
    if (st->nargs == 1 && sw__conf_str_eq(a[0].text, "round_robin")) {
        u->balance = SW_CONF_BALANCE_ROUND_ROBIN;
    } else if (st->nargs == 1 && sw__conf_str_eq(a[0].text, "least_conn")) {
        u->balance = SW_CONF_BALANCE_LEAST_CONN;
    } else if (st->nargs == 2 && sw__conf_str_eq(a[0].text, "hash") &&
               sw__conf_str_eq(a[1].text, "$remote_addr")) {
        u->balance = SW_CONF_BALANCE_HASH;
        u->hash_key = SW_CONF_HASH_REMOTE_ADDR;
    } else if (st->nargs == 3 && sw__conf_str_eq(a[0].text, "hash") &&
               sw__conf_str_eq(a[1].text, "header")) {
        if (!sw__conf_check_header_name(ps, s, &a[2])) {
            return;
        }
        u->balance = SW_CONF_BALANCE_HASH;
        u->hash_key = SW_CONF_HASH_HEADER;
        u->hash_header = sw__conf_dup_str(ps, a[2].text.p, a[2].text.len);
    } else {
        sw__conf_err_tok(ps, s, &a[0],
                         "\"balance\" expects round_robin, least_conn, "
                         "\"hash $remote_addr\" or \"hash header "
                         "NAME\"");
    }
}
