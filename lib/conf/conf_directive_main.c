/*
 * conf_directive_main.c - the top-level directives with a setter of their
 * own: worker count, listeners, the admin address and the log level.
 *
 *   sw__conf_set_workers()    workers auto | N
 *   sw__conf_set_io_engine()  io_engine epoll | io_uring
 *   sw_conf_io_engine_name()  an engine's name, as the directive spells it
 *   listen_init()             an address with the listen defaults
 *   sw__conf_set_listen()     listen ADDR [backlog=N] [tls] [proxy_protocol]
 *   sw__conf_set_admin()      admin ADDR
 *   sw__conf_set_log_level()  log_level error | warn | info | debug
 *   sw__conf_set_access_log() access_log off | stderr | PATH [json]
 *   sw__conf_set_user()       user NAME [GROUP]
 *
 * Sizes, timeouts and log paths go through the generic setters
 * (conf_directive_value.c); the TLS directives are in conf_directive_tls.c.
 *
 * Ownership: what is stored is copied into the snapshot's arena. One
 * thread.
 */
#include "conf_int.h"

#include <shockwave/log.h>

#define BACKLOG_MAX 65535 /* largest backlog= accepted */
#define LEVEL_NAME_MAX 16 /* bytes of a log level name, with its NUL */
#define USER_NAME_MAX 63  /* bytes of a user or group name */

/* A listen line without options. */
static const struct sw_conf_listen listen_defaults = {
    .backlog = 511, /* listen(2) backlog, as nginx has it */
};

void
sw__conf_set_workers(struct sw__conf_parser *ps, struct sw__conf_src *s,
                     struct sw__conf_block *b, const struct sw__conf_stmt *st,
                     const struct sw__conf_directive *d)
{
    struct sw_conf *cf = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    uint64_t v;
    if (sw__conf_str_eq(t->text, "auto")) {
        cf->workers = 0; /* one per core */
        return;
    }
    if (!sw__conf_parse_u64(t->text, &v) || v < d->lo || v > d->hi) {
        sw__conf_err_tok(ps, s, t,
                         "\"workers\" expects \"auto\" or a number from "
                         "%llu to %llu, got \"%.*s\"",
                         (unsigned long long)d->lo, (unsigned long long)d->hi,
                         SW__CONF_TOKF(t));
        return;
    }
    cf->workers = (unsigned)v;
}

/* Indexed by enum sw_io_engine. */
static const char *const engine_names[] = {
    [SW_IO_ENGINE_EPOLL] = "epoll",
    [SW_IO_ENGINE_IO_URING] = "io_uring",
};

const char *
sw_conf_io_engine_name(enum sw_io_engine e)
{
    return (size_t)e < SW_NELEMS(engine_names) ? engine_names[e] : "unknown";
}

void
sw__conf_set_io_engine(struct sw__conf_parser *ps, struct sw__conf_src *s,
                       struct sw__conf_block *b, const struct sw__conf_stmt *st,
                       const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    for (size_t i = 0; i < SW_NELEMS(engine_names); i++) {
        if (sw__conf_str_eq(t->text, engine_names[i])) {
            cf->io_engine = (enum sw_io_engine)i;
            return;
        }
    }
    sw__conf_err_tok(ps, s, t,
                     "\"io_engine\" expects epoll or io_uring, got \"%.*s\"",
                     SW__CONF_TOKF(t));
}

static bool
same_addr(const struct sockaddr_storage *a, socklen_t alen,
          const struct sockaddr_storage *z, socklen_t zlen)
{
    return alen == zlen && memcmp(a, z, alen) == 0;
}

/* l from the address in args[0], options at their defaults. */
static bool
listen_init(struct sw__conf_parser *ps, const struct sw__conf_src *s,
            const struct sw__conf_stmt *st, struct sw_conf_listen *l)
{
    *l = listen_defaults;
    return sw__conf_resolve(ps, s, &st->args[0], true, &l->addr, &l->addrlen);
}

void
sw__conf_set_listen(struct sw__conf_parser *ps, struct sw__conf_src *s,
                    struct sw__conf_block *b, const struct sw__conf_stmt *st,
                    const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    struct sw_conf_listen l;
    bool ok = listen_init(ps, s, st, &l);
    for (size_t i = 1; i < st->nargs; i++) {
        struct sw__conf_tok v;
        uint64_t n;
        if (sw__conf_option(&st->args[i], "backlog", &v)) {
            if (sw__conf_get_value(ps, s, &v, "backlog", &sw__conf_number, 1,
                                   BACKLOG_MAX, &n)) {
                l.backlog = (int)n;
            } else {
                ok = false;
            }
        } else if (sw__conf_str_eq(st->args[i].text, "tls")) {
            l.tls = true;
        } else if (sw__conf_str_eq(st->args[i].text, "proxy_protocol")) {
            l.proxy_protocol = true;
        } else {
            sw__conf_err_tok(ps, s, &st->args[i],
                             "unknown option \"%.*s\" for "
                             "\"listen\": expected backlog=N, tls or "
                             "proxy_protocol",
                             SW__CONF_TOKF(&st->args[i]));
            ok = false;
        }
    }
    if (!ok) {
        return;
    }
    for (size_t i = 0; i < cf->nlistens; i++) {
        if (same_addr(&cf->listens[i].addr, cf->listens[i].addrlen, &l.addr,
                      l.addrlen)) {
            sw__conf_err_tok(ps, s, &st->args[0],
                             "duplicate listen address \"%.*s\"",
                             SW__CONF_TOKF(&st->args[0]));
            return;
        }
    }
    l.text = sw__conf_dup_str(ps, st->args[0].text.p, st->args[0].text.len);
    if (l.tls && ps->tls_listen.file == NULL) {
        ps->tls_listen =
            (struct sw__conf_pos){s->lx.file, st->name.line, st->name.col};
    }
    SW__CONF_APPEND(ps, cf->listens, cf->nlistens, l);
}

void
sw__conf_set_admin(struct sw__conf_parser *ps, struct sw__conf_src *s,
                   struct sw__conf_block *b, const struct sw__conf_stmt *st,
                   const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    struct sw_conf_listen l;
    if (!listen_init(ps, s, st, &l)) {
        return;
    }
    l.text = sw__conf_dup_str(ps, st->args[0].text.p, st->args[0].text.len);
    cf->admin = sw__conf_alloc(ps->arena, sizeof(*cf->admin));
    if (cf->admin == NULL) {
        sw__conf_oom(ps);
        return;
    }
    *cf->admin = l;
}

void
sw__conf_set_log_level(struct sw__conf_parser *ps, struct sw__conf_src *s,
                       struct sw__conf_block *b, const struct sw__conf_stmt *st,
                       const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    char name[LEVEL_NAME_MAX];
    enum sw_log_level lv;
    if (t->text.len < sizeof(name)) {
        memcpy(name, t->text.p, t->text.len);
        name[t->text.len] = '\0';
        if (sw_log_level_parse(name, &lv) == SW_OK) {
            cf->log_level = (int)lv;
            return;
        }
    }
    sw__conf_err_tok(ps, s, t,
                     "\"log_level\" expects error, warn, info or debug, "
                     "got \"%.*s\"",
                     SW__CONF_TOKF(t));
}

void
sw__conf_set_access_log(struct sw__conf_parser *ps, struct sw__conf_src *s,
                        struct sw__conf_block *b,
                        const struct sw__conf_stmt *st,
                        const struct sw__conf_directive *d)
{
    struct sw_conf *cf = b->obj;
    sw__conf_set_path(ps, s, b, st, d);
    if (st->nargs < 2) {
        return;
    }
    const struct sw__conf_tok *t = &st->args[1];
    if (!sw__conf_str_eq(t->text, "json")) {
        sw__conf_err_tok(ps, s, t,
                         "unknown format \"%.*s\" for \"access_log\": "
                         "expected json (or nothing, for text lines)",
                         SW__CONF_TOKF(t));
        return;
    }
    if (sw__conf_str_eq(st->args[0].text, "off")) {
        sw__conf_err_tok(ps, s, t, "\"access_log off\" takes no format");
        return;
    }
    cf->access_log_json = true;
}

/* A user or group name as getpwnam(3) takes it: no NUL, no "/" or ":",
 * not empty, not a number (uids are not accepted: names only). */
static bool
check_user_name(struct sw__conf_parser *ps, const struct sw__conf_src *s,
                const struct sw__conf_tok *t, const char *what)
{
    struct sw_str n = t->text;
    bool digits = n.len > 0;
    for (size_t i = 0; i < n.len; i++) {
        unsigned char ch = (unsigned char)n.p[i];
        if (ch <= ' ' || ch == ':' || ch == '/' || ch == 0x7f) {
            digits = false;
            n.len = 0; /* reported below */
            break;
        }
        digits = digits && ch >= '0' && ch <= '9';
    }
    if (n.len == 0 || n.len > USER_NAME_MAX || digits) {
        sw__conf_err_tok(ps, s, t,
                         "\"user\" expects a %s name (at most %d bytes, no "
                         "spaces, \":\" or \"/\", not a number), got \"%.*s\"",
                         what, USER_NAME_MAX, SW__CONF_TOKF(t));
        return false;
    }
    return true;
}

void
sw__conf_set_user(struct sw__conf_parser *ps, struct sw__conf_src *s,
                  struct sw__conf_block *b, const struct sw__conf_stmt *st,
                  const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    if (!check_user_name(ps, s, &st->args[0], "user") ||
        (st->nargs > 1 && !check_user_name(ps, s, &st->args[1], "group"))) {
        return;
    }
    cf->user = sw__conf_dup_str(ps, st->args[0].text.p, st->args[0].text.len);
    if (st->nargs > 1) {
        cf->group =
            sw__conf_dup_str(ps, st->args[1].text.p, st->args[1].text.len);
    }
}
