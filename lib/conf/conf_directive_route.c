/*
 * conf_directive_route.c - `route { }` and the directives with a setter of
 * their own inside it: what a route matches, where it sends a request, how
 * it edits headers, and how it relays WebSocket pings.
 *
 *   parse_template()                 a header value: literal text and
 *                                    $variables
 *   sw__conf_set_route_block()       a new route at its defaults, then its
 *                                    block; upstream or return, not both
 *   sw__conf_set_host()              host NAME...: lower case, "*." wildcards
 *   sw__conf_set_path_prefix()       path_prefix /PREFIX
 *   sw__conf_set_header_match()      header NAME [VALUE]
 *   sw__conf_set_route_upstream()    upstream NAME (resolved in conf_parse.c)
 *   sw__conf_set_return()            return STATUS [BODY]
 *   sw__conf_set_edit()              request_header, response_header
 *                                    set | add | remove NAME [VALUE]
 *   sw__conf_set_ws_ping()           ws_ping local | forward
 *   sw__conf_set_kernel_relay()      ws_kernel_relay on | off (the main
 *                                    context's value otherwise)
 *   sw__conf_set_fanout()            fanout KEY (a template that may also
 *                                    use $uri, $arg_NAME, $http_NAME)
 *   sw__conf_set_fanout_choice()     fanout_client_messages, fanout_slow
 *   sw__conf_set_route_name()        name NAME (defaults and uniqueness in
 *                                    conf_parse.c)
 *
 * Timeouts, body and message limits go through sw__conf_set_value, the
 * websocket and ws_validate_utf8 switches through sw__conf_set_flag.
 *
 * Ownership: what is stored is copied into the snapshot's arena; host names
 * are lowered in the copy. One thread.
 */
#include "conf_int.h"

#include <arpa/inet.h>

/* A route before its block is read: the WebSocket limits have defaults
 * (see docs/websocket.md), the rest is 0, "take the upstream's or the
 * global value". path_prefix "/" is set apart, as it is copied. */
static const struct sw_conf_route route_defaults = {
    .ws_ping = SW_CONF_WS_PING_LOCAL,
    .ws_close_timeout_ms = 5 * SW__CONF_SEC,
    .ws_park_after_ms = 500,
    .ws_max_message = 16 * SW__CONF_MB,
    .ws_max_frame = 16 * SW__CONF_MB,
    .ws_max_buffer = 256 * SW__CONF_KB,      /* per buffer, per direction */
    .ws_splice_threshold = 16 * SW__CONF_KB, /* copy below, splice above */
    .fanout_linger_ms = 5 * SW__CONF_SEC,
    .fanout_backlog = SW__CONF_MB,
    .fanout_reconnect = true,
};

#define STATUS_MIN 200 /* `return`: lowest status allowed */
#define STATUS_MAX 599 /* `return`: highest status allowed */
#define V6_MAX 64      /* bytes of an IPv6 literal's text, with its NUL */

/* ---- templates --------------------------------------------------------- */

static const struct {
    const char *name;
    enum sw_conf_var var;
} vars[] = {
    {"remote_addr", SW_CONF_VAR_REMOTE_ADDR},
    {"remote_port", SW_CONF_VAR_REMOTE_PORT},
    {"scheme", SW_CONF_VAR_SCHEME},
    {"host", SW_CONF_VAR_HOST},
    {"request_id", SW_CONF_VAR_REQUEST_ID},
    {"request_uri", SW_CONF_VAR_REQUEST_URI},
    {"server_port", SW_CONF_VAR_SERVER_PORT},
    {"realip_remote_addr", SW_CONF_VAR_REALIP_REMOTE_ADDR},
};

static bool
is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_';
}

/*
 * Split a header value into literal text and variables: "$name", "${name}";
 * "$$" is a literal "$", and so is a "$" not followed by a name.
 */
/* $uri, $arg_NAME and $http_NAME, which only a fan-out key may use: they
 * need the request, which response edits no longer have. */
static enum sw_conf_var
key_var(const char *name, size_t nlen, struct sw_str *arg)
{
    if (nlen == 3 && memcmp(name, "uri", 3) == 0) {
        return SW_CONF_VAR_URI;
    }
    if (nlen > 4 && memcmp(name, "arg_", 4) == 0) {
        *arg = (struct sw_str){name + 4, nlen - 4};
        return SW_CONF_VAR_ARG;
    }
    if (nlen > 5 && memcmp(name, "http_", 5) == 0) {
        *arg = (struct sw_str){name + 5, nlen - 5};
        return SW_CONF_VAR_HTTP;
    }
    return SW_CONF_VAR_NONE;
}

static bool
parse_template(struct sw__conf_parser *ps, const struct sw__conf_src *s,
               const struct sw__conf_tok *t, struct sw_conf_tpl *out, bool key)
{
    struct sw_str raw = t->raw;
    bool quoted = t->kind == SW__CONF_TOK_STRING;
    bool ok = true;
    size_t ndollar = 0;
    for (size_t i = 0; i < raw.len; i++) {
        ndollar += raw.p[i] == '$';
    }
    /* Each literal gets its own NUL, so the text buffer needs at most one
     * extra byte per part. */
    size_t maxparts = ndollar * 2 + 1;
    struct sw_conf_tpl_part *parts =
        sw__conf_alloc(ps->arena, maxparts * sizeof(*parts));
    char *lit = sw__conf_alloc(ps->arena, raw.len + maxparts + 1);
    if (parts == NULL || lit == NULL) {
        sw__conf_oom(ps);
        return false;
    }
    size_t nparts = 0;
    size_t n = 0;
    size_t start = 0;
    size_t i = 0;
    while (i < raw.len) {
        char ch = raw.p[i];
        if (quoted && ch == '\\' && i + 1 < raw.len) {
            lit[n++] = raw.p[i + 1];
            i += 2;
            continue;
        }
        if (ch == '$' && i + 1 < raw.len && raw.p[i + 1] == '$') {
            lit[n++] = '$';
            i += 2;
            continue;
        }
        if (ch == '$') {
            bool brace = i + 1 < raw.len && raw.p[i + 1] == '{';
            size_t j = i + 1 + (brace ? 1 : 0);
            size_t nstart = j;
            while (j < raw.len && is_name_char(raw.p[j])) {
                j++;
            }
            size_t nlen = j - nstart;
            if (brace && (j >= raw.len || raw.p[j] != '}')) {
                sw__conf_err_off(ps, s, t, i,
                                 "unterminated \"${\" in \"%.*s\": "
                                 "expected \"}\"",
                                 SW__CONF_TOKF(t));
                return false;
            }
            if (nlen == 0 && !brace) {
                lit[n++] = '$';
                i++;
                continue;
            }
            enum sw_conf_var var = SW_CONF_VAR_NONE;
            for (size_t k = 0; k < SW_NELEMS(vars); k++) {
                if (strlen(vars[k].name) == nlen &&
                    memcmp(vars[k].name, raw.p + nstart, nlen) == 0) {
                    var = vars[k].var;
                }
            }
            struct sw_str arg = {"", 0};
            if (var == SW_CONF_VAR_NONE && key) {
                var = key_var(raw.p + nstart, nlen, &arg);
            }
            if (var == SW_CONF_VAR_NONE) {
                const char *sugg =
                    sw__conf_nearest(&vars[0].name, SW_NELEMS(vars),
                                     sizeof(vars[0]), raw.p + nstart, nlen);
                sw__conf_err_off(
                    ps, s, t, i, "unknown variable \"$%.*s\"%s%s%s",
                    (int)SW_MIN(nlen, SW__CONF_SHOW), raw.p + nstart,
                    sugg ? ", did you mean \"$" : "", sugg ? sugg : "",
                    sugg ? "\"?" : "");
                ok = false;
            }
            if (n > start) {
                parts[nparts++] = (struct sw_conf_tpl_part){
                    SW_CONF_VAR_NONE, {lit + start, n - start}};
                lit[n++] = '\0';
                start = n;
            }
            struct sw_str name = {lit + start, 0};
            if (arg.len > 0) {
                name.p = sw__conf_dup_str(ps, arg.p, arg.len).p;
                name.len = arg.len;
            }
            parts[nparts++] = (struct sw_conf_tpl_part){var, name};
            i = j + (brace ? 1 : 0);
            continue;
        }
        if (((unsigned char)ch < 0x20 && ch != '\t') || ch == 0x7f) {
            sw__conf_err_off(ps, s, t, i,
                             "control character in header value "
                             "\"%.*s\"",
                             SW__CONF_TOKF(t));
            return false;
        }
        lit[n++] = ch;
        i++;
    }
    if (n > start) {
        parts[nparts++] = (struct sw_conf_tpl_part){SW_CONF_VAR_NONE,
                                                    {lit + start, n - start}};
        lit[n++] = '\0';
    }
    SW_ASSERT(nparts <= maxparts);
    out->parts = nparts > 0 ? parts : NULL;
    out->nparts = nparts;
    return ok;
}

/* ---- setters ----------------------------------------------------------- */

void
sw__conf_set_route_block(struct sw__conf_parser *ps, struct sw__conf_src *s,
                         struct sw__conf_block *b,
                         const struct sw__conf_stmt *st,
                         const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    struct sw_conf_route *r;
    struct sw__conf_route_aux *ra;
    SW__CONF_PUSH(ps, cf->routes, cf->nroutes, r);
    if (r == NULL) {
        return;
    }
    SW__CONF_PUSH(ps, ps->raux, ps->nraux, ra);
    if (ra == NULL) {
        return;
    }
    *r = route_defaults;
    r->path_prefix = sw__conf_dup_str(ps, "/", 1);
    r->index = cf->nroutes - 1;
    r->line = st->name.line;
    ra->name_at =
        (struct sw__conf_pos){s->lx.file, st->name.line, st->name.col};
    /* cf->routes and raux cannot move while the block is read: "route"
     * is not allowed inside a route. */
    struct sw__conf_block nb = {SW__CONF_CTX_ROUTE, r, 0};
    unsigned nerr = ps->errs->n;
    sw__conf_parse_block(ps, s, &nb, true);
    if (sw__conf_stopped(ps)) {
        return;
    }
    bool up = ra->upstream.len > 0;
    /* After an error inside the block, a bad "return" or "upstream" line
     * would make "neither" noise. */
    if (!up && r->return_status == 0 && ps->errs->n == nerr) {
        sw__conf_err_tok(ps, s, &st->name,
                         "route has neither \"upstream\" nor "
                         "\"return\"");
    } else if (up && r->return_status != 0) {
        sw__conf_err_tok(ps, s, &st->name,
                         "route has both \"upstream\" and "
                         "\"return\": keep one");
    }
}

void
sw__conf_set_host(struct sw__conf_parser *ps, struct sw__conf_src *s,
                  struct sw__conf_block *b, const struct sw__conf_stmt *st,
                  const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    for (size_t i = 0; i < st->nargs; i++) {
        const struct sw__conf_tok *t = &st->args[i];
        struct sw_str h = sw__conf_dup_str(ps, t->text.p, t->text.len);
        if (ps->oom) {
            return;
        }
        char *p = (char *)h.p;
        for (size_t k = 0; k < h.len; k++) {
            if (p[k] >= 'A' && p[k] <= 'Z') {
                p[k] = (char)(p[k] - 'A' + 'a');
            }
        }
        /* "example.com." and "example.com" are the same name. */
        if (h.len > 1 && p[h.len - 1] == '.') {
            p[--h.len] = '\0';
        }
        bool ok = h.len > 0 && h.len <= SW__CONF_NAME_MAX;
        size_t bad = 0;
        if (ok && p[0] == '[') {
            char v6[V6_MAX];
            ok = h.len > 2 && h.len - 2 < sizeof(v6) && p[h.len - 1] == ']';
            if (ok) {
                struct in6_addr a6;
                memcpy(v6, p + 1, h.len - 2);
                v6[h.len - 2] = '\0';
                ok = inet_pton(AF_INET6, v6, &a6) == 1;
            }
        } else if (ok) {
            size_t k = 0;
            if (h.len > 2 && p[0] == '*' && p[1] == '.') {
                k = 2;
            }
            for (; k < h.len && ok; k++) {
                if (!sw__conf_is_host_char(p[k])) {
                    ok = false;
                    bad = k;
                }
            }
        }
        if (!ok) {
            if (memchr(p, ':', h.len) != NULL && p[0] != '[') {
                sw__conf_err_tok(ps, s, t,
                                 "host \"%.*s\" has a port: route hosts "
                                 "match names only",
                                 SW__CONF_TOKF(t));
            } else if (p[bad] == '*') {
                sw__conf_err_off(ps, s, t, bad,
                                 "a wildcard host must start with "
                                 "\"*.\", as in \"*.example.com\"");
            } else {
                sw__conf_err_tok(ps, s, t, "invalid host name \"%.*s\"",
                                 SW__CONF_TOKF(t));
            }
            continue;
        }
        SW__CONF_APPEND(ps, r->hosts, r->nhosts, h);
    }
}

void
sw__conf_set_path_prefix(struct sw__conf_parser *ps, struct sw__conf_src *s,
                         struct sw__conf_block *b,
                         const struct sw__conf_stmt *st,
                         const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    if (t->text.len == 0 || t->text.p[0] != '/') {
        sw__conf_err_tok(ps, s, t,
                         "\"path_prefix\" must start with \"/\", got "
                         "\"%.*s\"",
                         SW__CONF_TOKF(t));
        return;
    }
    for (size_t i = 0; i < t->text.len; i++) {
        unsigned char ch = (unsigned char)t->text.p[i];
        if (ch <= 0x20 || ch == 0x7f || ch == '?' || ch == '#') {
            sw__conf_err_off(ps, s, t, i,
                             "invalid character in \"path_prefix\": "
                             "no spaces, controls, \"?\" or \"#\"");
            return;
        }
    }
    r->path_prefix = sw__conf_dup_str(ps, t->text.p, t->text.len);
}

void
sw__conf_set_header_match(struct sw__conf_parser *ps, struct sw__conf_src *s,
                          struct sw__conf_block *b,
                          const struct sw__conf_stmt *st,
                          const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    if (!sw__conf_check_header_name(ps, s, &st->args[0])) {
        return;
    }
    struct sw_conf_header_match m;
    m.name = sw__conf_dup_str(ps, st->args[0].text.p, st->args[0].text.len);
    m.value = st->nargs > 1 ? sw__conf_dup_str(ps, st->args[1].text.p,
                                               st->args[1].text.len)
                            : sw__conf_dup_str(ps, "", 0);
    SW__CONF_APPEND(ps, r->headers, r->nheaders, m);
}

void
sw__conf_set_route_upstream(struct sw__conf_parser *ps, struct sw__conf_src *s,
                            struct sw__conf_block *b,
                            const struct sw__conf_stmt *st,
                            const struct sw__conf_directive *d)
{
    SW_UNUSED(b);
    SW_UNUSED(d);
    const struct sw__conf_tok *t = &st->args[0];
    struct sw__conf_route_aux *ra = &ps->raux[ps->nraux - 1];
    if (t->text.len == 0) {
        sw__conf_err_tok(ps, s, t, "empty upstream name");
        return;
    }
    ra->upstream = sw__conf_dup_str(ps, t->text.p, t->text.len);
    ra->at = (struct sw__conf_pos){s->lx.file, t->line, t->col};
}

void
sw__conf_set_return(struct sw__conf_parser *ps, struct sw__conf_src *s,
                    struct sw__conf_block *b, const struct sw__conf_stmt *st,
                    const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    uint64_t v;
    const struct sw__conf_tok *t = &st->args[0];
    if (!sw__conf_parse_u64(t->text, &v) || v < STATUS_MIN || v > STATUS_MAX) {
        sw__conf_err_tok(ps, s, t,
                         "invalid status \"%.*s\" for \"return\": "
                         "expected 200 to 599",
                         SW__CONF_TOKF(t));
        return;
    }
    r->return_status = (int)v;
    r->return_body = st->nargs > 1 ? sw__conf_dup_str(ps, st->args[1].text.p,
                                                      st->args[1].text.len)
                                   : sw__conf_dup_str(ps, "", 0);
}

void
sw__conf_set_edit(struct sw__conf_parser *ps, struct sw__conf_src *s,
                  struct sw__conf_block *b, const struct sw__conf_stmt *st,
                  const struct sw__conf_directive *d)
{
    struct sw_conf_route *r = b->obj;
    const struct sw__conf_tok *a = st->args;
    struct sw_conf_edit e;
    memset(&e, 0, sizeof(e));
    if (sw__conf_str_eq(a[0].text, "set")) {
        e.op = SW_CONF_EDIT_SET;
    } else if (sw__conf_str_eq(a[0].text, "add")) {
        e.op = SW_CONF_EDIT_ADD;
    } else if (sw__conf_str_eq(a[0].text, "remove")) {
        e.op = SW_CONF_EDIT_REMOVE;
    } else {
        sw__conf_err_tok(ps, s, &a[0],
                         "\"%s\" expects set, add or remove, got "
                         "\"%.*s\"",
                         d->name, SW__CONF_TOKF(&a[0]));
        return;
    }
    size_t want = e.op == SW_CONF_EDIT_REMOVE ? 2 : 3;
    if (st->nargs != want) {
        sw__conf_err_tok(ps, s, st->nargs > want ? &a[want] : &st->name,
                         "\"%s %.*s\" takes %s", d->name, SW__CONF_TOKF(&a[0]),
                         want == 2 ? "a header name"
                                   : "a header name and a value");
        return;
    }
    if (!sw__conf_check_header_name(ps, s, &a[1])) {
        return;
    }
    e.name = sw__conf_dup_str(ps, a[1].text.p, a[1].text.len);
    if (want == 3 && !parse_template(ps, s, &a[2], &e.value, false)) {
        return;
    }
    if (strcmp(d->name, "request_header") == 0) {
        SW__CONF_APPEND(ps, r->request_edits, r->nrequest_edits, e);
    } else {
        SW__CONF_APPEND(ps, r->response_edits, r->nresponse_edits, e);
    }
}

void
sw__conf_set_ws_ping(struct sw__conf_parser *ps, struct sw__conf_src *s,
                     struct sw__conf_block *b, const struct sw__conf_stmt *st,
                     const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    if (sw__conf_str_eq(t->text, "local")) {
        r->ws_ping = SW_CONF_WS_PING_LOCAL;
    } else if (sw__conf_str_eq(t->text, "forward")) {
        r->ws_ping = SW_CONF_WS_PING_FORWARD;
    } else {
        sw__conf_err_tok(ps, s, t,
                         "\"ws_ping\" expects \"local\" or \"forward\", "
                         "got \"%.*s\"",
                         SW__CONF_TOKF(t));
    }
}

void
sw__conf_set_kernel_relay(struct sw__conf_parser *ps, struct sw__conf_src *s,
                          struct sw__conf_block *b,
                          const struct sw__conf_stmt *st,
                          const struct sw__conf_directive *d)
{
    sw__conf_set_flag(ps, s, b, st, d);
    ((struct sw_conf_route *)b->obj)->ws_kernel_relay_given = true;
}

/* Route names are metric labels and log words: short, printable, no
 * spaces or quotes; a leading "_" is kept for the gateway's own labels
 * ("_unmatched", "_overflow"). */
#define ROUTE_NAME_MAX 64

static bool
is_route_name_char(char ch)
{
    return is_name_char(ch) || ch == '-' || ch == '.' || ch == ':' || ch == '/';
}

void
sw__conf_set_route_name(struct sw__conf_parser *ps, struct sw__conf_src *s,
                        struct sw__conf_block *b,
                        const struct sw__conf_stmt *st,
                        const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    if (t->text.len == 0 || t->text.len > ROUTE_NAME_MAX) {
        sw__conf_err_tok(ps, s, t, "route name must be 1 to %d bytes long",
                         ROUTE_NAME_MAX);
        return;
    }
    if (t->text.p[0] == '_') {
        sw__conf_err_tok(ps, s, t,
                         "route name \"%.*s\" starts with \"_\": names "
                         "starting with \"_\" are reserved",
                         SW__CONF_TOKF(t));
        return;
    }
    for (size_t i = 0; i < t->text.len; i++) {
        if (!is_route_name_char(t->text.p[i])) {
            sw__conf_err_off(ps, s, t, i,
                             "invalid character in route name: use letters, "
                             "digits and \"_-.:/\"");
            return;
        }
    }
    r->name = sw__conf_dup_str(ps, t->text.p, t->text.len);
    struct sw__conf_route_aux *ra = &ps->raux[ps->nraux - 1];
    ra->name_at = (struct sw__conf_pos){s->lx.file, t->line, t->col};
}

void
sw__conf_set_fanout(struct sw__conf_parser *ps, struct sw__conf_src *s,
                    struct sw__conf_block *b, const struct sw__conf_stmt *st,
                    const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    if (t->text.len == 0) {
        sw__conf_err_tok(ps, s, t, "\"fanout\" needs a non-empty key");
        return;
    }
    if (parse_template(ps, s, t, &r->fanout_key, true)) {
        r->fanout = true;
    }
}

/* fanout_client_messages forward | drop; fanout_slow drop | close. */
void
sw__conf_set_fanout_choice(struct sw__conf_parser *ps, struct sw__conf_src *s,
                           struct sw__conf_block *b,
                           const struct sw__conf_stmt *st,
                           const struct sw__conf_directive *d)
{
    struct sw_conf_route *r = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    bool client = strcmp(d->name, "fanout_client_messages") == 0;
    const char *no = client ? "forward" : "drop";
    const char *yes = client ? "drop" : "close";
    bool *field = client ? &r->fanout_drop_client : &r->fanout_slow_close;
    if (sw__conf_str_eq(t->text, no)) {
        *field = false;
    } else if (sw__conf_str_eq(t->text, yes)) {
        *field = true;
    } else {
        sw__conf_err_tok(ps, s, t,
                         "\"%s\" expects \"%s\" or \"%s\", got \"%.*s\"",
                         d->name, no, yes, SW__CONF_TOKF(t));
    }
}
