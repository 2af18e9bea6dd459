/*
 * conf_directive_plugin.c - the plugin directives (docs/plugins.md):
 *
 *   sw__conf_set_load_plugin()   load_plugin NAME [PATH] (top level)
 *   sw__conf_set_plugin_block()  plugin NAME { statements } (route): the
 *                                statements are kept as written, for the
 *                                plugin layer to check against the
 *                                plugin's own table
 *   sw__conf_check_plugins()     every route's plugin is loaded, once
 *
 * The conf module knows no plugin: lib/plugin (above it) opens the shared
 * objects and checks their blocks once the snapshot is parsed, with the
 * positions kept here.
 *
 * Ownership: everything stored is copied into the snapshot's arena. One
 * thread.
 */
#include "conf_int.h"

/* NAME: what a plugin's descriptor may call itself. */
static bool
plugin_name_ok(struct sw_str n)
{
    if (n.len == 0 || n.len > 64) {
        return false;
    }
    for (size_t i = 0; i < n.len; i++) {
        char ch = n.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_')) {
            return false;
        }
    }
    return true;
}

static bool
check_name(struct sw__conf_parser *ps, const struct sw__conf_src *s,
           const struct sw__conf_tok *t)
{
    if (!plugin_name_ok(t->text)) {
        sw__conf_err_tok(ps, s, t,
                         "bad plugin name \"%.*s\": lower-case letters, "
                         "digits and \"_\", at most 64",
                         SW__CONF_TOKF(t));
        return false;
    }
    return true;
}

static struct sw_str
file_dir(struct sw__conf_parser *ps, const struct sw__conf_src *s)
{
    return s->dir != NULL ? sw__conf_dup_str(ps, s->dir, strlen(s->dir))
                          : sw__conf_dup_str(ps, "", 0);
}

void
sw__conf_set_load_plugin(struct sw__conf_parser *ps, struct sw__conf_src *s,
                         struct sw__conf_block *b,
                         const struct sw__conf_stmt *st,
                         const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    const struct sw__conf_tok *nt = &st->args[0];
    if (!check_name(ps, s, nt)) {
        return;
    }
    for (size_t i = 0; i < cf->nplugin_loads; i++) {
        if (sw__conf_str_eq(nt->text, cf->plugin_loads[i].name.p)) {
            sw__conf_err_tok(ps, s, nt,
                             "plugin \"%.*s\" is already loaded (line %u)",
                             SW__CONF_TOKF(nt), cf->plugin_loads[i].line);
            return;
        }
    }
    struct sw_conf_plugin_load *pl;
    SW__CONF_PUSH(ps, cf->plugin_loads, cf->nplugin_loads, pl);
    if (pl == NULL) {
        return;
    }
    pl->name = sw__conf_dup_str(ps, nt->text.p, nt->text.len);
    pl->path = sw__conf_dup_str(ps, "", 0);
    if (st->nargs == 2) {
        size_t n = 0;
        const char *path = sw__conf_path(ps, s, st->args[1].text, &n);
        if (path != NULL) {
            pl->path = (struct sw_str){path, n};
        }
    }
    pl->file = sw__conf_dup_str(ps, s->lx.file, strlen(s->lx.file));
    pl->line = st->name.line;
    pl->col = st->name.col;
}

/* Read one token; false at the end (lexical error or out of memory). */
static bool
next_tok(struct sw__conf_parser *ps, struct sw__conf_src *s,
         struct sw__conf_tok *t)
{
    if (sw__conf_lex_next(&s->lx, t) != SW_OK) {
        sw__conf_oom(ps);
        return false;
    }
    return true;
}

/* Skip the rest of a nested "{ ... }" after its "{". */
static void
skip_nested(struct sw__conf_parser *ps, struct sw__conf_src *s)
{
    struct sw__conf_tok t;
    for (int depth = 1; depth > 0 && next_tok(ps, s, &t);) {
        if (t.kind == SW__CONF_TOK_EOF) {
            return;
        }
        depth += t.kind == SW__CONF_TOK_LBRACE   ? 1
                 : t.kind == SW__CONF_TOK_RBRACE ? -1
                                                 : 0;
    }
}

/* One `name args...;` of a plugin block into *pd. False when the block
 * cannot be read further (the error is reported). */
static bool
read_statement(struct sw__conf_parser *ps, struct sw__conf_src *s,
               const struct sw__conf_tok *name,
               struct sw_conf_plugin_directive *pd)
{
    struct sw__conf_tok args[SW__CONF_MAX_ARGS];
    size_t nargs = 0;
    struct sw__conf_tok t;
    for (;;) {
        if (!next_tok(ps, s, &t)) {
            return false;
        }
        if (t.kind == SW__CONF_TOK_SEMI) {
            break;
        }
        if (t.kind == SW__CONF_TOK_LBRACE) {
            sw__conf_err_tok(ps, s, name,
                             "plugin directive \"%.*s\" takes no block",
                             SW__CONF_TOKF(name));
            skip_nested(ps, s);
            return true;
        }
        if (t.kind == SW__CONF_TOK_EOF || t.kind == SW__CONF_TOK_RBRACE) {
            sw__conf_err_tok(ps, s, &t, "expected \";\" after \"%.*s\"",
                             SW__CONF_TOKF(name));
            sw__conf_lex_unget(&s->lx, &t);
            return t.kind == SW__CONF_TOK_RBRACE;
        }
        if (nargs == SW__CONF_MAX_ARGS) {
            sw__conf_err_tok(ps, s, &t, "too many arguments (limit %d)",
                             SW__CONF_MAX_ARGS);
            continue;
        }
        args[nargs++] = t;
    }
    pd->name = sw__conf_dup_str(ps, name->text.p, name->text.len);
    pd->line = name->line;
    pd->col = name->col;
    pd->nargs = nargs;
    pd->args = sw__conf_alloc(ps->arena, sizeof(*pd->args) * (nargs + 1));
    if (pd->args == NULL) {
        sw__conf_oom(ps);
        return false;
    }
    for (size_t i = 0; i < nargs; i++) {
        pd->args[i] = sw__conf_dup_str(ps, args[i].text.p, args[i].text.len);
    }
    return true;
}

void
sw__conf_set_plugin_block(struct sw__conf_parser *ps, struct sw__conf_src *s,
                          struct sw__conf_block *b,
                          const struct sw__conf_stmt *st,
                          const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    const struct sw__conf_tok *nt = &st->args[0];
    bool ok = check_name(ps, s, nt);
    for (size_t i = 0; ok && i < r->nplugins; i++) {
        if (sw__conf_str_eq(nt->text, r->plugins[i].name.p)) {
            sw__conf_err_tok(ps, s, nt,
                             "plugin \"%.*s\" is already on this route "
                             "(line %u)",
                             SW__CONF_TOKF(nt), r->plugins[i].line);
            ok = false;
        }
    }
    if (!ok) {
        skip_nested(ps, s);
        return;
    }
    struct sw_conf_plugin_block *pb;
    SW__CONF_PUSH(ps, r->plugins, r->nplugins, pb);
    if (pb == NULL) {
        return;
    }
    pb->name = sw__conf_dup_str(ps, nt->text.p, nt->text.len);
    pb->file = sw__conf_dup_str(ps, s->lx.file, strlen(s->lx.file));
    pb->dir = file_dir(ps, s);
    pb->line = st->name.line;
    pb->col = st->name.col;
    struct sw__conf_tok t;
    while (!sw__conf_stopped(ps) && next_tok(ps, s, &t)) {
        if (t.kind == SW__CONF_TOK_RBRACE) {
            return;
        }
        if (t.kind == SW__CONF_TOK_EOF) {
            if (!s->lx.failed) {
                sw__conf_err_tok(ps, s, &t,
                                 "unexpected end of file, expected \"}\"");
            }
            return;
        }
        if (t.kind != SW__CONF_TOK_WORD) {
            sw__conf_err_tok(ps, s, &t, "expected a plugin directive");
            if (t.kind == SW__CONF_TOK_LBRACE) {
                skip_nested(ps, s);
            }
            continue;
        }
        struct sw_conf_plugin_directive *pd;
        SW__CONF_PUSH(ps, pb->directives, pb->ndirectives, pd);
        if (pd == NULL || !read_statement(ps, s, &t, pd)) {
            return;
        }
    }
}

void
sw__conf_check_plugins(struct sw__conf_parser *ps)
{
    const struct sw_conf *cf = ps->cf;
    for (size_t i = 0; i < cf->nroutes; i++) {
        const struct sw_conf_route *r = &cf->routes[i];
        for (size_t k = 0; k < r->nplugins; k++) {
            const struct sw_conf_plugin_block *pb = &r->plugins[k];
            bool loaded = false;
            for (size_t j = 0; j < cf->nplugin_loads; j++) {
                loaded |= sw__conf_str_eq(pb->name, cf->plugin_loads[j].name.p);
            }
            if (!loaded) {
                struct sw__conf_pos at = {pb->file.p, pb->line, pb->col};
                sw__conf_err_pos(ps, &at,
                                 "plugin \"%.*s\" is not loaded: add "
                                 "\"load_plugin %.*s;\" at the top level",
                                 (int)pb->name.len, pb->name.p,
                                 (int)pb->name.len, pb->name.p);
            }
        }
    }
}
