/*
 * conf_directive.c - the directive tables and the setters that parse and
 * store each directive's arguments (see docs/configuration.md).
 *
 *   table entry: name, setter, argument count, flags, field offset, range
 *   generic setters (sizes, durations, numbers, flags, paths) write the
 *   field at `off` in the block's object: struct sw_conf at the top level,
 *   sw_conf_upstream in upstream { }, sw_conf_route in route { }.
 *
 * Values are checked here, each error naming the argument's position;
 * upstream names used by routes are resolved later, in conf_parse.c.
 *
 * Ownership: everything stored is copied into the snapshot's arena. One
 * thread.
 */
#include "conf_int.h"

#include <shockwave/log.h>

#include <arpa/inet.h>
#include <netdb.h>

static const char *const ctx_names[SW__CONF_CTX_COUNT] = {
    "at the top level",
    "inside upstream { }",
    "inside route { }",
};

/* "64k" for 65536: the largest unit that divides exactly. */
static void
fmt_size(char *out, size_t n, uint64_t v)
{
    static const char units[] = "gmk";
    for (int i = 0; i < 3; i++) {
        uint64_t u = 1ull << (10 * (3 - i));
        if (v != 0 && v % u == 0) {
            snprintf(out, n, "%llu%c", (unsigned long long)(v / u), units[i]);
            return;
        }
    }
    snprintf(out, n, "%llu", (unsigned long long)v);
}

static void
fmt_dur(char *out, size_t n, uint64_t ms)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {
        {86400000, "d"},
        {3600000, "h"},
        {60000, "m"},
        {1000, "s"},
    };
    for (size_t i = 0; i < SW_NELEMS(units); i++) {
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(out, n, "%llu%s", (unsigned long long)(ms / units[i].ms),
                     units[i].unit);
            return;
        }
    }
    snprintf(out, n, "%llums", (unsigned long long)ms);
}

static bool
is_tchar(unsigned char ch)
{
    /* RFC 9110 5.6.2: token characters. */
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (ch >= '0' && ch <= '9')) {
        return true;
    }
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool
check_header_name(struct sw__conf_parser *ps, const struct sw__conf_src *s,
                  const struct sw__conf_tok *t)
{
    if (t->text.len == 0) {
        sw__conf_err_tok(ps, s, t, "empty header name");
        return false;
    }
    for (size_t i = 0; i < t->text.len; i++) {
        if (!is_tchar((unsigned char)t->text.p[i])) {
            sw__conf_err_off(
                ps, s, t, i,
                "invalid character in header name \"%.*s\": expected "
                "letters, digits or !#$%%&'*+-.^_`|~",
                SW__CONF_TOKF(t));
            return false;
        }
    }
    return true;
}

static void *
field(const struct sw__conf_block *b, const struct sw__conf_directive *d)
{
    return (char *)b->obj + d->off;
}

/* ---- value parsers shared by the setters ------------------------------- */

static bool
get_number(struct sw__conf_parser *ps, const struct sw__conf_src *s,
           const struct sw__conf_tok *t, const char *what, uint64_t lo,
           uint64_t hi, uint64_t *out)
{
    uint64_t v;
    if (!sw__conf_parse_u64(t->text, &v)) {
        sw__conf_err_tok(ps, s, t,
                         "invalid number \"%.*s\" for \"%s\": expected "
                         "digits",
                         SW__CONF_TOKF(t), what);
        return false;
    }
    if (v < lo || v > hi) {
        sw__conf_err_tok(
            ps, s, t, "\"%s\" must be from %llu to %llu, got \"%.*s\"", what,
            (unsigned long long)lo, (unsigned long long)hi, SW__CONF_TOKF(t));
        return false;
    }
    *out = v;
    return true;
}

static bool
get_size(struct sw__conf_parser *ps, const struct sw__conf_src *s,
         const struct sw__conf_tok *t, const char *what, uint64_t lo,
         uint64_t hi, uint64_t *out)
{
    uint64_t v;
    if (sw_conf_parse_size(t->text, &v) != SW_OK) {
        sw__conf_err_tok(ps, s, t,
                         "invalid size \"%.*s\" for \"%s\": expected a "
                         "number with an optional k, m or g suffix",
                         SW__CONF_TOKF(t), what);
        return false;
    }
    if (v < lo || v > hi) {
        char a[32];
        char z[32];
        fmt_size(a, sizeof(a), lo);
        fmt_size(z, sizeof(z), hi);
        sw__conf_err_tok(ps, s, t, "\"%s\" must be from %s to %s, got \"%.*s\"",
                         what, a, z, SW__CONF_TOKF(t));
        return false;
    }
    *out = v;
    return true;
}

static bool
get_dur(struct sw__conf_parser *ps, const struct sw__conf_src *s,
        const struct sw__conf_tok *t, const char *what, uint64_t lo,
        uint64_t hi, uint64_t *out)
{
    uint64_t v;
    if (sw_conf_parse_duration(t->text, &v) != SW_OK) {
        sw__conf_err_tok(ps, s, t,
                         "invalid duration \"%.*s\" for \"%s\": expected a "
                         "number with a ms, s, m, h or d suffix",
                         SW__CONF_TOKF(t), what);
        return false;
    }
    if (v < lo || v > hi) {
        char a[32];
        char z[32];
        fmt_dur(a, sizeof(a), lo);
        fmt_dur(z, sizeof(z), hi);
        sw__conf_err_tok(ps, s, t, "\"%s\" must be from %s to %s, got \"%.*s\"",
                         what, a, z, SW__CONF_TOKF(t));
        return false;
    }
    *out = v;
    return true;
}

static bool
get_flag(struct sw__conf_parser *ps, const struct sw__conf_src *s,
         const struct sw__conf_tok *t, const char *what, bool *out)
{
    if (sw__conf_str_eq(t->text, "on")) {
        *out = true;
    } else if (sw__conf_str_eq(t->text, "off")) {
        *out = false;
    } else {
        sw__conf_err_tok(ps, s, t,
                         "\"%s\" expects \"on\" or \"off\", got \"%.*s\"", what,
                         SW__CONF_TOKF(t));
        return false;
    }
    return true;
}

/* "key=value" option: true with *val set when t starts with key=. */
static bool
option(const struct sw__conf_tok *t, const char *key, struct sw__conf_tok *val)
{
    size_t n = strlen(key);
    if (t->text.len <= n || memcmp(t->text.p, key, n) != 0 ||
        t->text.p[n] != '=') {
        return false;
    }
    *val = *t;
    val->text.p += n + 1;
    val->text.len -= n + 1;
    val->raw = val->text;
    val->col += (unsigned)(n + 1);
    return true;
}

/*
 * Resolve "HOST:PORT", "[V6]:PORT" or (listen only) "*:PORT" with
 * getaddrinfo(3); the first address returned is kept.
 */
static bool
resolve(struct sw__conf_parser *ps, const struct sw__conf_src *s,
        const struct sw__conf_tok *t, bool listen, struct sockaddr_storage *ss,
        socklen_t *sslen)
{
    struct sw_str a = t->text;
    char host[256];
    char port[8];
    size_t hlen;
    size_t poff;
    bool v6 = false;
    if (a.len > 0 && a.p[0] == '[') {
        const char *rb = memchr(a.p, ']', a.len);
        if (rb == NULL) {
            sw__conf_err_tok(ps, s, t, "missing \"]\" in address \"%.*s\"",
                             SW__CONF_TOKF(t));
            return false;
        }
        hlen = (size_t)(rb - a.p) - 1;
        if (hlen == 0 || hlen >= sizeof(host)) {
            sw__conf_err_tok(ps, s, t, "invalid address \"%.*s\"",
                             SW__CONF_TOKF(t));
            return false;
        }
        memcpy(host, a.p + 1, hlen);
        poff = hlen + 2;
        if (poff >= a.len || a.p[poff] != ':') {
            sw__conf_err_off(ps, s, t, poff,
                             "expected \":PORT\" after \"]\" in "
                             "\"%.*s\"",
                             SW__CONF_TOKF(t));
            return false;
        }
        poff++;
        v6 = true;
    } else {
        const char *colon = memrchr(a.p, ':', a.len);
        if (colon == NULL) {
            sw__conf_err_tok(ps, s, t,
                             "expected HOST:PORT, got \"%.*s\" (no port)",
                             SW__CONF_TOKF(t));
            return false;
        }
        hlen = (size_t)(colon - a.p);
        if (memchr(a.p, ':', hlen) != NULL) {
            sw__conf_err_tok(ps, s, t,
                             "an IPv6 address needs brackets, as in "
                             "\"[::1]:8080\", got \"%.*s\"",
                             SW__CONF_TOKF(t));
            return false;
        }
        if (hlen == 0 || hlen >= sizeof(host)) {
            sw__conf_err_tok(ps, s, t,
                             "expected HOST:PORT, got \"%.*s\" (no host)",
                             SW__CONF_TOKF(t));
            return false;
        }
        memcpy(host, a.p, hlen);
        poff = hlen + 1;
    }
    host[hlen] = '\0';
    uint64_t pv;
    struct sw_str ps_ = {a.p + poff, a.len - poff};
    if (!sw__conf_parse_u64(ps_, &pv) || pv < 1 || pv > 65535) {
        sw__conf_err_off(ps, s, t, poff,
                         "invalid port \"%.*s\": expected 1 to 65535",
                         (int)SW_MIN(ps_.len, SW__CONF_SHOW), ps_.p);
        return false;
    }
    snprintf(port, sizeof(port), "%u", (unsigned)pv);
    if (!v6 && strcmp(host, "*") == 0) {
        if (!listen) {
            sw__conf_err_tok(ps, s, t,
                             "\"*\" is only for listen addresses, got "
                             "\"%.*s\"",
                             SW__CONF_TOKF(t));
            return false;
        }
        strcpy(host, "0.0.0.0");
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = v6 ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (v6 ? AI_NUMERICHOST : 0);
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        sw__conf_err_tok(ps, s, t, "cannot resolve \"%s\" in \"%.*s\": %s",
                         host, SW__CONF_TOKF(t),
                         rc != 0 ? gai_strerror(rc) : "no address");
        if (res != NULL) {
            freeaddrinfo(res);
        }
        return false;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

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
};

static bool
is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_';
}

static const char *
nearest(const char *const *names, size_t n, size_t stride, const char *p,
        size_t len)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (size_t i = 0; i < n; i++) {
        const char *cand =
            *(const char *const *)((const char *)names + i * stride);
        size_t d = sw__conf_distance(p, len, cand, strlen(cand), 2);
        /* A distance as large as the word itself is no suggestion. */
        if (d < bestd && d < len) {
            best = cand;
            bestd = d;
        }
    }
    return best;
}

/*
 * Split a header value into literal text and variables: "$name", "${name}";
 * "$$" is a literal "$", and so is a "$" not followed by a name.
 */
static bool
parse_tpl(struct sw__conf_parser *ps, const struct sw__conf_src *s,
          const struct sw__conf_tok *t, struct sw_conf_tpl *out)
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
            if (var == SW_CONF_VAR_NONE) {
                const char *sugg =
                    nearest(&vars[0].name, SW_NELEMS(vars), sizeof(vars[0]),
                            raw.p + nstart, nlen);
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
            parts[nparts++] = (struct sw_conf_tpl_part){var, {lit + start, 0}};
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

static void
set_size_u64(struct sw__conf_parser *ps, struct sw__conf_src *s,
             struct sw__conf_block *b, const struct sw__conf_stmt *st,
             const struct sw__conf_directive *d)
{
    uint64_t v;
    if (get_size(ps, s, &st->args[0], d->name, d->lo, d->hi, &v)) {
        *(uint64_t *)field(b, d) = v;
    }
}

static void
set_size_sz(struct sw__conf_parser *ps, struct sw__conf_src *s,
            struct sw__conf_block *b, const struct sw__conf_stmt *st,
            const struct sw__conf_directive *d)
{
    uint64_t v;
    if (get_size(ps, s, &st->args[0], d->name, d->lo, d->hi, &v)) {
        *(size_t *)field(b, d) = (size_t)v;
    }
}

static void
set_dur(struct sw__conf_parser *ps, struct sw__conf_src *s,
        struct sw__conf_block *b, const struct sw__conf_stmt *st,
        const struct sw__conf_directive *d)
{
    uint64_t v;
    if (get_dur(ps, s, &st->args[0], d->name, d->lo, d->hi, &v)) {
        *(uint64_t *)field(b, d) = v;
    }
}

static void
set_num_sz(struct sw__conf_parser *ps, struct sw__conf_src *s,
           struct sw__conf_block *b, const struct sw__conf_stmt *st,
           const struct sw__conf_directive *d)
{
    uint64_t v;
    if (get_number(ps, s, &st->args[0], d->name, d->lo, d->hi, &v)) {
        *(size_t *)field(b, d) = (size_t)v;
    }
}

static void
set_num_uint(struct sw__conf_parser *ps, struct sw__conf_src *s,
             struct sw__conf_block *b, const struct sw__conf_stmt *st,
             const struct sw__conf_directive *d)
{
    uint64_t v;
    if (get_number(ps, s, &st->args[0], d->name, d->lo, d->hi, &v)) {
        *(unsigned *)field(b, d) = (unsigned)v;
    }
}

static void
set_flag(struct sw__conf_parser *ps, struct sw__conf_src *s,
         struct sw__conf_block *b, const struct sw__conf_stmt *st,
         const struct sw__conf_directive *d)
{
    bool v;
    if (get_flag(ps, s, &st->args[0], d->name, &v)) {
        *(bool *)field(b, d) = v;
    }
}

/* A non-empty string: error_log, access_log. */
static void
set_path(struct sw__conf_parser *ps, struct sw__conf_src *s,
         struct sw__conf_block *b, const struct sw__conf_stmt *st,
         const struct sw__conf_directive *d)
{
    const struct sw__conf_tok *t = &st->args[0];
    if (t->text.len == 0) {
        sw__conf_err_tok(ps, s, t, "\"%s\" needs a path, \"stderr\" or \"off\"",
                         d->name);
        return;
    }
    if (sw__conf_str_eq(t->text, "off") && strcmp(d->name, "error_log") == 0) {
        sw__conf_err_tok(ps, s, t,
                         "the error log cannot be turned off: use "
                         "\"stderr\" or a path");
        return;
    }
    *(struct sw_str *)field(b, d) =
        sw__conf_dup_str(ps, t->text.p, t->text.len);
}

/* ---- directives: main -------------------------------------------------- */

static void
set_workers(struct sw__conf_parser *ps, struct sw__conf_src *s,
            struct sw__conf_block *b, const struct sw__conf_stmt *st,
            const struct sw__conf_directive *d)
{
    struct sw_conf *cf = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    uint64_t v;
    if (sw__conf_str_eq(t->text, "auto")) {
        cf->workers = 0;
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

static bool
same_addr(const struct sockaddr_storage *a, socklen_t alen,
          const struct sockaddr_storage *z, socklen_t zlen)
{
    return alen == zlen && memcmp(a, z, alen) == 0;
}

static void
set_listen(struct sw__conf_parser *ps, struct sw__conf_src *s,
           struct sw__conf_block *b, const struct sw__conf_stmt *st,
           const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    struct sw_conf_listen l;
    memset(&l, 0, sizeof(l));
    l.backlog = 511;
    bool ok = resolve(ps, s, &st->args[0], true, &l.addr, &l.addrlen);
    for (size_t i = 1; i < st->nargs; i++) {
        struct sw__conf_tok v;
        uint64_t n;
        if (option(&st->args[i], "backlog", &v)) {
            if (get_number(ps, s, &v, "backlog", 1, 65535, &n)) {
                l.backlog = (int)n;
            } else {
                ok = false;
            }
        } else if (sw__conf_str_eq(st->args[i].text, "tls")) {
            l.tls = true;
        } else {
            sw__conf_err_tok(ps, s, &st->args[i],
                             "unknown option \"%.*s\" for "
                             "\"listen\": expected backlog=N or tls",
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
    struct sw_conf_listen *slot;
    SW__CONF_PUSH(ps, cf->listens, cf->nlistens, slot);
    if (slot != NULL) {
        *slot = l;
    }
}

static void
set_admin(struct sw__conf_parser *ps, struct sw__conf_src *s,
          struct sw__conf_block *b, const struct sw__conf_stmt *st,
          const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    struct sw_conf_listen l;
    memset(&l, 0, sizeof(l));
    l.backlog = 511;
    if (!resolve(ps, s, &st->args[0], true, &l.addr, &l.addrlen)) {
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

static void
set_log_level(struct sw__conf_parser *ps, struct sw__conf_src *s,
              struct sw__conf_block *b, const struct sw__conf_stmt *st,
              const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    char name[16];
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

/* ---- directives: upstream ---------------------------------------------- */

static void
set_upstream_block(struct sw__conf_parser *ps, struct sw__conf_src *s,
                   struct sw__conf_block *b, const struct sw__conf_stmt *st,
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
    u->name = sw__conf_dup_str(ps, nt->text.p, nt->text.len);
    u->balance = SW_CONF_BALANCE_ROUND_ROBIN;
    u->keepalive = 32;
    u->keepalive_timeout_ms = 60000;
    u->connect_timeout_ms = 5000;
    u->read_timeout_ms = 60000;
    u->send_timeout_ms = 60000;
    u->tls_verify = true;
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

static void
set_server(struct sw__conf_parser *ps, struct sw__conf_src *s,
           struct sw__conf_block *b, const struct sw__conf_stmt *st,
           const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_upstream *u = b->obj;
    struct sw_conf_server sv;
    memset(&sv, 0, sizeof(sv));
    sv.weight = 1;
    sv.max_fails = 1;
    sv.fail_timeout_ms = 10000;
    bool ok = resolve(ps, s, &st->args[0], false, &sv.addr, &sv.addrlen);
    for (size_t i = 1; i < st->nargs; i++) {
        const struct sw__conf_tok *t = &st->args[i];
        struct sw__conf_tok v;
        uint64_t n;
        if (option(t, "weight", &v)) {
            ok = get_number(ps, s, &v, "weight", 1, 1000, &n) && ok;
            sv.weight = (unsigned)n;
        } else if (option(t, "max_fails", &v)) {
            ok = get_number(ps, s, &v, "max_fails", 0, 1000, &n) && ok;
            sv.max_fails = (unsigned)n;
        } else if (option(t, "fail_timeout", &v)) {
            ok = get_dur(ps, s, &v, "fail_timeout", 0, SW__CONF_MAX_DUR, &n) &&
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
    struct sw_conf_server *slot;
    SW__CONF_PUSH(ps, u->servers, u->nservers, slot);
    if (slot != NULL) {
        *slot = sv;
    }
}

static void
set_balance(struct sw__conf_parser *ps, struct sw__conf_src *s,
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
        if (!check_header_name(ps, s, &a[2])) {
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

/* ---- directives: route ------------------------------------------------- */

static void
set_route_block(struct sw__conf_parser *ps, struct sw__conf_src *s,
                struct sw__conf_block *b, const struct sw__conf_stmt *st,
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
    r->path_prefix = sw__conf_dup_str(ps, "/", 1);
    r->ws_ping = SW_CONF_WS_PING_LOCAL;
    r->ws_close_timeout_ms = 5000;
    r->ws_max_message = 16u << 20;
    r->ws_max_frame = 16u << 20;
    r->ws_max_buffer = 64u << 10;
    r->ws_splice_threshold = 16u << 10;
    r->index = cf->nroutes - 1;
    r->line = st->name.line;
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

static bool
host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
           ch == '.' || ch == '_';
}

static void
set_host(struct sw__conf_parser *ps, struct sw__conf_src *s,
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
        /* RFC 1035 2.3.4: a name is at most 255 bytes. */
        bool ok = h.len > 0 && h.len <= 255;
        size_t bad = 0;
        if (ok && p[0] == '[') {
            char v6[64];
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
                if (!host_char(p[k])) {
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
        struct sw_str *slot;
        SW__CONF_PUSH(ps, r->hosts, r->nhosts, slot);
        if (slot != NULL) {
            *slot = h;
        }
    }
}

static void
set_path_prefix(struct sw__conf_parser *ps, struct sw__conf_src *s,
                struct sw__conf_block *b, const struct sw__conf_stmt *st,
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

static void
set_header_match(struct sw__conf_parser *ps, struct sw__conf_src *s,
                 struct sw__conf_block *b, const struct sw__conf_stmt *st,
                 const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    if (!check_header_name(ps, s, &st->args[0])) {
        return;
    }
    struct sw_conf_header_match m;
    m.name = sw__conf_dup_str(ps, st->args[0].text.p, st->args[0].text.len);
    m.value = st->nargs > 1 ? sw__conf_dup_str(ps, st->args[1].text.p,
                                               st->args[1].text.len)
                            : sw__conf_dup_str(ps, "", 0);
    struct sw_conf_header_match *slot;
    SW__CONF_PUSH(ps, r->headers, r->nheaders, slot);
    if (slot != NULL) {
        *slot = m;
    }
}

static void
set_route_upstream(struct sw__conf_parser *ps, struct sw__conf_src *s,
                   struct sw__conf_block *b, const struct sw__conf_stmt *st,
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

static void
set_return(struct sw__conf_parser *ps, struct sw__conf_src *s,
           struct sw__conf_block *b, const struct sw__conf_stmt *st,
           const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    uint64_t v;
    const struct sw__conf_tok *t = &st->args[0];
    if (!sw__conf_parse_u64(t->text, &v) || v < 200 || v > 599) {
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

static void
set_edit(struct sw__conf_parser *ps, struct sw__conf_src *s,
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
    if (!check_header_name(ps, s, &a[1])) {
        return;
    }
    e.name = sw__conf_dup_str(ps, a[1].text.p, a[1].text.len);
    if (want == 3 && !parse_tpl(ps, s, &a[2], &e.value)) {
        return;
    }
    struct sw_conf_edit *slot;
    if (strcmp(d->name, "request_header") == 0) {
        SW__CONF_PUSH(ps, r->request_edits, r->nrequest_edits, slot);
    } else {
        SW__CONF_PUSH(ps, r->response_edits, r->nresponse_edits, slot);
    }
    if (slot != NULL) {
        *slot = e;
    }
}

static void
set_ws_ping(struct sw__conf_parser *ps, struct sw__conf_src *s,
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

/* ---- directives: TLS --------------------------------------------------- */

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
    if (t->text.p[0] == '/' || s->dir == NULL) {
        *out = sw__conf_dup_str(ps, t->text.p, t->text.len);
        return !ps->oom;
    }
    size_t dl = strlen(s->dir);
    bool slash = dl > 0 && s->dir[dl - 1] == '/';
    size_t n = dl + (slash ? 0 : 1) + t->text.len;
    char *p = sw__conf_alloc(ps->arena, n + 1);
    if (p == NULL) {
        sw__conf_oom(ps);
        return false;
    }
    memcpy(p, s->dir, dl);
    if (!slash) {
        p[dl++] = '/';
    }
    memcpy(p + dl, t->text.p, t->text.len);
    p[n] = '\0';
    *out = (struct sw_str){p, n};
    return true;
}

static void
set_tls_certificate(struct sw__conf_parser *ps, struct sw__conf_src *s,
                    struct sw__conf_block *b, const struct sw__conf_stmt *st,
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
    struct sw_conf_tls_cert *slot;
    SW__CONF_PUSH(ps, cf->tls_certs, cf->ntls_certs, slot);
    if (slot != NULL) {
        *slot = c;
    }
}

/* tls_certificate_key and tls_ocsp_response complete the certificate
 * written just before them. */
static void
set_tls_cert_part(struct sw__conf_parser *ps, struct sw__conf_src *s,
                  struct sw__conf_block *b, const struct sw__conf_stmt *st,
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

static void
set_tls_protocols(struct sw__conf_parser *ps, struct sw__conf_src *s,
                  struct sw__conf_block *b, const struct sw__conf_stmt *st,
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

/* A cipher list: checked against OpenSSL when the TLS context is built. */
static void
set_tls_string(struct sw__conf_parser *ps, struct sw__conf_src *s,
               struct sw__conf_block *b, const struct sw__conf_stmt *st,
               const struct sw__conf_directive *d)
{
    const struct sw__conf_tok *t = &st->args[0];
    if (t->text.len == 0 || memchr(t->text.p, '\0', t->text.len) != NULL) {
        sw__conf_err_tok(ps, s, t, "\"%s\" needs a non-empty value", d->name);
        return;
    }
    *(struct sw_str *)field(b, d) =
        sw__conf_dup_str(ps, t->text.p, t->text.len);
}

static void
set_tls_session_cache(struct sw__conf_parser *ps, struct sw__conf_src *s,
                      struct sw__conf_block *b, const struct sw__conf_stmt *st,
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

/* tls_ca: a file; tls_server_name: a host name. */
static void
set_upstream_tls(struct sw__conf_parser *ps, struct sw__conf_src *s,
                 struct sw__conf_block *b, const struct sw__conf_stmt *st,
                 const struct sw__conf_directive *d)
{
    struct sw_conf_upstream *u = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    if (strcmp(d->name, "tls_ca") == 0) {
        tls_file(ps, s, t, d->name, &u->tls_ca);
        return;
    }
    bool ok = t->text.len > 0 && t->text.len <= 255;
    for (size_t i = 0; ok && i < t->text.len; i++) {
        char ch = t->text.p[i];
        ok = host_char(ch) || (ch >= 'A' && ch <= 'Z') || ch == ':' ||
             ch == '[' || ch == ']';
    }
    if (!ok) {
        sw__conf_err_tok(ps, s, t,
                         "invalid name \"%.*s\" for \"tls_server_name\"",
                         SW__CONF_TOKF(t));
        return;
    }
    u->tls_server_name = sw__conf_dup_str(ps, t->text.p, t->text.len);
}

/* ---- the tables -------------------------------------------------------- */

#define OFF_CF(f) offsetof(struct sw_conf, f)
#define OFF_UP(f) offsetof(struct sw_conf_upstream, f)
#define OFF_RT(f) offsetof(struct sw_conf_route, f)
#define KB 1024ull
#define MB (1024ull * 1024)

static const struct sw__conf_directive main_directives[] = {
    {"workers", set_workers, 1, 1, 0, 0, 1, 1024},
    {"listen", set_listen, 1, 3, SW__CONF_F_MULTI, 0, 0, 0},
    {"admin", set_admin, 1, 1, 0, 0, 0, 0},
    {"error_log", set_path, 1, 1, 0, OFF_CF(error_log), 0, 0},
    {"log_level", set_log_level, 1, 1, 0, 0, 0, 0},
    {"access_log", set_path, 1, 1, 0, OFF_CF(access_log), 0, 0},
    {"buffer_size", set_size_sz, 1, 1, 0, OFF_CF(buffer_size), KB, 64 * MB},
    {"max_header_bytes", set_size_sz, 1, 1, 0, OFF_CF(max_header_bytes), 256,
     64 * MB},
    {"max_request_line", set_size_sz, 1, 1, 0, OFF_CF(max_request_line), 64,
     64 * MB},
    {"max_headers", set_num_sz, 1, 1, 0, OFF_CF(max_headers), 1, 10000},
    {"max_body_size", set_size_u64, 1, 1, 0, OFF_CF(max_body_size), 0,
     SW__CONF_MAX_SIZE},
    {"max_client_connections", set_num_sz, 1, 1, 0,
     OFF_CF(max_client_connections), 1, 10000000},
    {"client_header_timeout", set_dur, 1, 1, 0,
     OFF_CF(client_header_timeout_ms), 1, SW__CONF_MAX_DUR},
    {"client_body_timeout", set_dur, 1, 1, 0, OFF_CF(client_body_timeout_ms), 1,
     SW__CONF_MAX_DUR},
    {"keepalive_timeout", set_dur, 1, 1, 0, OFF_CF(keepalive_timeout_ms), 0,
     SW__CONF_MAX_DUR},
    {"send_timeout", set_dur, 1, 1, 0, OFF_CF(send_timeout_ms), 1,
     SW__CONF_MAX_DUR},
    {"shutdown_timeout", set_dur, 1, 1, 0, OFF_CF(shutdown_timeout_ms), 0,
     SW__CONF_MAX_DUR},
    {"include", sw__conf_set_include, 1, 1, SW__CONF_F_MULTI, 0, 0, 0},
    {"upstream", set_upstream_block, 1, 1, SW__CONF_F_MULTI | SW__CONF_F_BLOCK,
     0, 0, 0},
    {"route", set_route_block, 0, 0, SW__CONF_F_MULTI | SW__CONF_F_BLOCK, 0, 0,
     0},
    {"tls_certificate", set_tls_certificate, 1, 1, SW__CONF_F_MULTI, 0, 0, 0},
    {"tls_certificate_key", set_tls_cert_part, 1, 1, SW__CONF_F_MULTI, 0, 0, 0},
    {"tls_ocsp_response", set_tls_cert_part, 1, 1, SW__CONF_F_MULTI, 0, 0, 0},
    {"tls_protocols", set_tls_protocols, 1, 2, 0, 0, 0, 0},
    {"tls_ciphers", set_tls_string, 1, 1, 0, OFF_CF(tls_ciphers), 0, 0},
    {"tls_ciphersuites", set_tls_string, 1, 1, 0, OFF_CF(tls_ciphersuites), 0,
     0},
    {"tls_ticket_rotate", set_dur, 1, 1, 0, OFF_CF(tls_ticket_rotate_ms), 1000,
     SW__CONF_MAX_DUR},
    {"tls_session_cache", set_tls_session_cache, 1, 1, 0, 0, 1, 1000000},
    {"tls_handshake_timeout", set_dur, 1, 1, 0,
     OFF_CF(tls_handshake_timeout_ms), 1, SW__CONF_MAX_DUR},
};

static const struct sw__conf_directive upstream_directives[] = {
    {"server", set_server, 1, 5, SW__CONF_F_MULTI, 0, 0, 0},
    {"balance", set_balance, 1, 3, 0, 0, 0, 0},
    {"keepalive", set_num_uint, 1, 1, 0, OFF_UP(keepalive), 0, 100000},
    {"keepalive_timeout", set_dur, 1, 1, 0, OFF_UP(keepalive_timeout_ms), 0,
     SW__CONF_MAX_DUR},
    {"connect_timeout", set_dur, 1, 1, 0, OFF_UP(connect_timeout_ms), 1,
     SW__CONF_MAX_DUR},
    {"read_timeout", set_dur, 1, 1, 0, OFF_UP(read_timeout_ms), 1,
     SW__CONF_MAX_DUR},
    {"send_timeout", set_dur, 1, 1, 0, OFF_UP(send_timeout_ms), 1,
     SW__CONF_MAX_DUR},
    {"tls_verify", set_flag, 1, 1, 0, OFF_UP(tls_verify), 0, 0},
    {"tls_ca", set_upstream_tls, 1, 1, 0, 0, 0, 0},
    {"tls_server_name", set_upstream_tls, 1, 1, 0, 0, 0, 0},
    {"include", sw__conf_set_include, 1, 1, SW__CONF_F_MULTI, 0, 0, 0},
};

static const struct sw__conf_directive route_directives[] = {
    {"host", set_host, 1, -1, SW__CONF_F_MULTI, 0, 0, 0},
    {"path_prefix", set_path_prefix, 1, 1, 0, 0, 0, 0},
    {"header", set_header_match, 1, 2, SW__CONF_F_MULTI, 0, 0, 0},
    {"upstream", set_route_upstream, 1, 1, 0, 0, 0, 0},
    {"return", set_return, 1, 2, 0, 0, 0, 0},
    {"request_header", set_edit, 2, 3, SW__CONF_F_MULTI, 0, 0, 0},
    {"response_header", set_edit, 2, 3, SW__CONF_F_MULTI, 0, 0, 0},
    {"connect_timeout", set_dur, 1, 1, 0, OFF_RT(connect_timeout_ms), 0,
     SW__CONF_MAX_DUR},
    {"read_timeout", set_dur, 1, 1, 0, OFF_RT(read_timeout_ms), 0,
     SW__CONF_MAX_DUR},
    {"send_timeout", set_dur, 1, 1, 0, OFF_RT(send_timeout_ms), 0,
     SW__CONF_MAX_DUR},
    {"max_body_size", set_size_u64, 1, 1, 0, OFF_RT(max_body_size), 0,
     SW__CONF_MAX_SIZE},
    {"websocket", set_flag, 1, 1, 0, OFF_RT(websocket), 0, 0},
    {"ws_ping", set_ws_ping, 1, 1, 0, 0, 0, 0},
    {"ws_ping_interval", set_dur, 1, 1, 0, OFF_RT(ws_ping_interval_ms), 0,
     SW__CONF_MAX_DUR},
    {"ws_idle_timeout", set_dur, 1, 1, 0, OFF_RT(ws_idle_timeout_ms), 0,
     SW__CONF_MAX_DUR},
    {"ws_close_timeout", set_dur, 1, 1, 0, OFF_RT(ws_close_timeout_ms), 1,
     SW__CONF_MAX_DUR},
    {"ws_max_message", set_size_u64, 1, 1, 0, OFF_RT(ws_max_message), 0,
     SW__CONF_MAX_SIZE},
    {"ws_max_frame", set_size_u64, 1, 1, 0, OFF_RT(ws_max_frame), 0,
     SW__CONF_MAX_SIZE},
    {"ws_max_buffer", set_size_u64, 1, 1, 0, OFF_RT(ws_max_buffer), KB,
     64 * MB},
    {"ws_splice_threshold", set_size_u64, 1, 1, 0, OFF_RT(ws_splice_threshold),
     0, 1024 * MB},
    {"ws_validate_utf8", set_flag, 1, 1, 0, OFF_RT(ws_validate_utf8), 0, 0},
    {"include", sw__conf_set_include, 1, 1, SW__CONF_F_MULTI, 0, 0, 0},
};

static const struct sw__conf_directive *tables[SW__CONF_CTX_COUNT] = {
    main_directives,
    upstream_directives,
    route_directives,
};

static const size_t table_sizes[SW__CONF_CTX_COUNT] = {
    SW_NELEMS(main_directives),
    SW_NELEMS(upstream_directives),
    SW_NELEMS(route_directives),
};

const struct sw__conf_directive *
sw__conf_lookup(enum sw__conf_ctx ctx, struct sw_str name, size_t *idx)
{
    for (size_t i = 0; i < table_sizes[ctx]; i++) {
        if (sw__conf_str_eq(name, tables[ctx][i].name)) {
            if (idx != NULL) {
                *idx = i;
            }
            return &tables[ctx][i];
        }
    }
    return NULL;
}

void
sw__conf_unknown_directive(struct sw__conf_parser *ps, struct sw__conf_src *s,
                           const struct sw__conf_block *b,
                           const struct sw__conf_stmt *st)
{
    const struct sw__conf_tok *t = &st->name;
    for (int c = 0; c < SW__CONF_CTX_COUNT; c++) {
        const struct sw__conf_directive *d =
            sw__conf_lookup((enum sw__conf_ctx)c, t->text, NULL);
        if (c != (int)b->ctx && d != NULL) {
            sw__conf_err_tok(ps, s, t, "\"%s\" is not allowed %s, only %s",
                             d->name, ctx_names[b->ctx], ctx_names[c]);
            return;
        }
    }
    const char *sugg =
        nearest(&tables[b->ctx][0].name, table_sizes[b->ctx],
                sizeof(struct sw__conf_directive), t->text.p, t->text.len);
    if (sugg != NULL) {
        sw__conf_err_tok(ps, s, t,
                         "unknown directive \"%.*s\", did you mean \"%s\"?",
                         SW__CONF_TOKF(t), sugg);
    } else {
        sw__conf_err_tok(ps, s, t, "unknown directive \"%.*s\"",
                         SW__CONF_TOKF(t));
    }
}
