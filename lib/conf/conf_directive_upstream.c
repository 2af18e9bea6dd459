/*
 * conf_directive_upstream.c - `upstream NAME { }` and the directives with
 * a setter of their own inside it.
 *
 *   sw__conf_set_upstream_block()  a new upstream at its defaults, then
 *                                  its block; at least one server
 *   sw__conf_set_server()          server ADDR [weight=N] [max_fails=N]
 *                                  [fail_timeout=TIME] [tls] [backup]
 *   sw__conf_set_balance()         round_robin | least_conn |
 *                                  hash $remote_addr | hash header NAME
 *   sw__conf_set_health_check()    health_check [type=] [interval=]
 *                                  [timeout=] [path=] [host=] [expect=]
 *                                  [fall=] [rise=]
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

#define WEIGHT_MAX 1000     /* largest weight= */
#define MAX_FAILS_MAX 1000  /* largest max_fails= */
#define CHECK_COUNT_MAX 100 /* largest fall= and rise= */

/* An upstream before its block is read (see docs/configuration.md). */
static const struct sw_conf_upstream upstream_defaults = {
    .balance = SW_CONF_BALANCE_ROUND_ROBIN,
    .keepalive = 32, /* idle connections kept per worker */
    .keepalive_timeout_ms = 60 * SW__CONF_SEC,
    .connect_timeout_ms = 5 * SW__CONF_SEC,
    .read_timeout_ms = 60 * SW__CONF_SEC,
    .send_timeout_ms = 60 * SW__CONF_SEC,
    .tls_verify = true,
    .hc = {.interval_ms = 2 * SW__CONF_SEC,
           .timeout_ms = 1 * SW__CONF_SEC,
           .expect_lo = 200,
           .expect_hi = 399,
           .fall = 3,
           .rise = 2},
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
    } else if (u->nservers > 0 && u->nbackups == u->nservers) {
        sw__conf_err_tok(ps, s, &st->name,
                         "upstream \"%.*s\": every server is \"backup\"; "
                         "at least one must not be",
                         SW__CONF_TOKF(nt));
    }
    if (u->hc.enabled && u->hc.path.len == 0) {
        u->hc.path = sw__conf_dup_str(ps, "/healthz", 8);
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
        } else if (sw__conf_str_eq(t->text, "backup")) {
            sv.backup = true;
        } else {
            sw__conf_err_tok(ps, s, t,
                             "unknown option \"%.*s\" for \"server\": "
                             "expected weight=N, max_fails=N, "
                             "fail_timeout=TIME, tls or backup",
                             SW__CONF_TOKF(t));
            ok = false;
        }
    }
    if (!ok) {
        return;
    }
    sv.text = sw__conf_dup_str(ps, st->args[0].text.p, st->args[0].text.len);
    u->nbackups += sv.backup ? 1 : 0;
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

/* A request target for a probe: starts with "/", visible ASCII only (no
 * space or control would survive the request line). */
static bool
check_path_ok(struct sw_str p)
{
    if (p.len == 0 || p.p[0] != '/') {
        return false;
    }
    for (size_t i = 0; i < p.len; i++) {
        unsigned char ch = (unsigned char)p.p[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            return false;
        }
    }
    return true;
}

/* "200", "200-399": statuses 100 to 599, lo <= hi. */
static bool
check_expect(struct sw_str v, unsigned *lo, unsigned *hi)
{
    const char *dash = memchr(v.p, '-', v.len);
    struct sw_str a = v;
    struct sw_str b = v;
    if (dash != NULL) {
        a.len = (size_t)(dash - v.p);
        b.p = dash + 1;
        b.len = v.len - a.len - 1;
    }
    uint64_t x;
    uint64_t y;
    if (!sw__conf_parse_u64(a, &x) || !sw__conf_parse_u64(b, &y) || x < 100 ||
        y > 599 || x > y) {
        return false;
    }
    *lo = (unsigned)x;
    *hi = (unsigned)y;
    return true;
}

void
sw__conf_set_health_check(struct sw__conf_parser *ps, struct sw__conf_src *s,
                          struct sw__conf_block *b,
                          const struct sw__conf_stmt *st,
                          const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_upstream *u = b->obj;
    struct sw_conf_health_check hc = u->hc;
    bool ok = true;
    hc.enabled = true;
    for (size_t i = 0; i < st->nargs; i++) {
        const struct sw__conf_tok *t = &st->args[i];
        struct sw__conf_tok v;
        uint64_t n = 0;
        if (sw__conf_option(t, "type", &v)) {
            if (sw__conf_str_eq(v.text, "http")) {
                hc.type = SW_CONF_CHECK_HTTP;
            } else if (sw__conf_str_eq(v.text, "tcp")) {
                hc.type = SW_CONF_CHECK_TCP;
            } else if (sw__conf_str_eq(v.text, "websocket")) {
                hc.type = SW_CONF_CHECK_WEBSOCKET;
            } else {
                sw__conf_err_tok(ps, s, &v,
                                 "\"type\" expects http, tcp or websocket");
                ok = false;
            }
        } else if (sw__conf_option(t, "interval", &v)) {
            ok = sw__conf_get_value(ps, s, &v, "interval", &sw__conf_duration,
                                    10, SW__CONF_MAX_DUR, &n) &&
                 ok;
            hc.interval_ms = n;
        } else if (sw__conf_option(t, "timeout", &v)) {
            ok = sw__conf_get_value(ps, s, &v, "timeout", &sw__conf_duration, 1,
                                    SW__CONF_MAX_DUR, &n) &&
                 ok;
            hc.timeout_ms = n;
        } else if (sw__conf_option(t, "fall", &v)) {
            ok = sw__conf_get_value(ps, s, &v, "fall", &sw__conf_number, 1,
                                    CHECK_COUNT_MAX, &n) &&
                 ok;
            hc.fall = (unsigned)n;
        } else if (sw__conf_option(t, "rise", &v)) {
            ok = sw__conf_get_value(ps, s, &v, "rise", &sw__conf_number, 1,
                                    CHECK_COUNT_MAX, &n) &&
                 ok;
            hc.rise = (unsigned)n;
        } else if (sw__conf_option(t, "path", &v)) {
            if (!check_path_ok(v.text)) {
                sw__conf_err_tok(ps, s, &v,
                                 "\"path\" must start with \"/\" and hold no "
                                 "spaces or control characters");
                ok = false;
            } else {
                hc.path = sw__conf_dup_str(ps, v.text.p, v.text.len);
            }
        } else if (sw__conf_option(t, "host", &v)) {
            /* a header value: visible ASCII, no space, no "/" */
            bool good = v.text.len > 0 && v.text.len <= SW__CONF_NAME_MAX;
            for (size_t k = 0; good && k < v.text.len; k++) {
                unsigned char ch = (unsigned char)v.text.p[k];
                good = ch > 0x20 && ch < 0x7f && ch != '/';
            }
            if (!good) {
                sw__conf_err_tok(ps, s, &v,
                                 "\"host\" must be a host name (visible "
                                 "ASCII, no \"/\")");
                ok = false;
            } else {
                hc.host = sw__conf_dup_str(ps, v.text.p, v.text.len);
            }
        } else if (sw__conf_option(t, "expect", &v)) {
            if (!check_expect(v.text, &hc.expect_lo, &hc.expect_hi)) {
                sw__conf_err_tok(ps, s, &v,
                                 "\"expect\" wants a status or a range of "
                                 "statuses from 100 to 599: 200 or 200-399");
                ok = false;
            }
        } else {
            sw__conf_err_tok(ps, s, t,
                             "unknown option \"%.*s\" for \"health_check\": "
                             "expected type=, interval=, timeout=, path=, "
                             "host=, expect=, fall= or rise=",
                             SW__CONF_TOKF(t));
            ok = false;
        }
    }
    if (ok) {
        u->hc = hc;
    }
}
