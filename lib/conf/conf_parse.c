/*
 * conf_parse.c - directive tables, the block parser, includes and the checks
 * run over a whole snapshot (see conf_int.h, docs/configuration.md).
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

#define MAX_ARGS 16          /* arguments per directive */
#define MAX_DUR 604800000ull /* 7d in milliseconds */
#define MAX_SIZE (1ull << 50)
#define SHOW 64              /* bytes of a token quoted in a message */

/* "%.*s" arguments for a token's text, shortened for messages. */
#define TOKF(t) (int)SW_MIN((t)->text.len, SHOW), (t)->text.p

enum ctx {
    CTX_MAIN = 0, /* top level */
    CTX_UPSTREAM, /* inside upstream NAME { } */
    CTX_ROUTE,    /* inside route { } */
    CTX_COUNT,
};

static const char *const ctx_names[CTX_COUNT] = {
    "at the top level",
    "inside upstream { }",
    "inside route { }",
};

/* One statement as read: `name args... ;` or `name args... {`. */
struct stmt {
    struct sw__conf_tok name;           /* the directive name */
    struct sw__conf_tok args[MAX_ARGS]; /* arguments in order */
    size_t nargs;                       /* entries in args */
    bool block;                         /* ended with "{" */
    bool cut;                           /* no terminator: error reported */
    bool toomany;                       /* past MAX_ARGS: error reported */
};

/* One file (or the in-memory text) being read. */
struct src {
    struct sw__conf_lexer lx; /* the tokenizer over its text */
    const char *dir;          /* owned (arena): folder for includes, NULL =
                                 the current folder */
};

/* The block being filled. */
struct block {
    enum ctx ctx; /* which directive table applies */
    void *obj;    /* borrowed: the sw_conf, sw_conf_upstream or
                     sw_conf_route being filled */
    uint64_t seen; /* bit i: directive i of the table already seen */
};

/* A place in a file, for messages about things found later. */
struct pos {
    const char *file; /* owned (arena) */
    unsigned line;    /* 1-based */
    unsigned col;     /* 1-based */
};

/* Parse-time data kept per route, parallel to cf->routes. */
struct route_aux {
    struct sw_str upstream; /* owned (arena): `upstream NAME;`, or empty */
    struct pos at;          /* of NAME */
};

struct parser {
    struct sw_conf *cf;            /* the snapshot being built */
    struct sw__conf_arena *arena;  /* borrowed (cf->arena) */
    struct sw__conf_errors *errs;  /* borrowed: caller's error list */
    const char *stack[SW__CONF_MAX_INCLUDE + 1]; /* borrowed (arena):
                                      canonical paths of open files */
    size_t nstack;                 /* entries in stack */
    size_t depth;                  /* includes open now */
    struct route_aux *raux;        /* owned (arena): one per route */
    size_t nraux;                  /* entries in raux */
    struct pos *upos;              /* owned (arena): where each upstream
                                      was defined */
    size_t nupos;                  /* entries in upos */
    struct pos main_pos[64];       /* where each main directive was seen */
    const char *top_file;          /* borrowed: name of the main text */
    bool oom;                      /* an allocation failed */
    bool lexfail;                  /* a file ended on a lexical error */
};

struct directive;
typedef void (*set_cb)(struct parser *ps, struct src *s, struct block *b,
                       const struct stmt *st, const struct directive *d);

#define F_MULTI 1u /* may appear more than once */
#define F_BLOCK 2u /* takes a { } block */

struct directive {
    const char *name; /* as written in the file */
    set_cb set;       /* parses and stores the arguments */
    int min;          /* fewest arguments */
    int max;          /* most arguments, -1 = no limit */
    unsigned flags;   /* F_* */
    size_t off;       /* field in the block's object (generic setters) */
    uint64_t lo;      /* smallest value allowed (numbers, sizes, times) */
    uint64_t hi;      /* largest value allowed */
};

/* ---- messages ---------------------------------------------------------- */

static bool
stopped(const struct parser *ps)
{
    return ps->oom || ps->errs->full;
}

static void
verr(struct parser *ps, const char *file, unsigned line, unsigned col,
     const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    sw__conf_error(ps->errs, file, line, col, "%s", msg);
}

static void __attribute__((format(printf, 4, 5)))
err_tok(struct parser *ps, const struct src *s, const struct sw__conf_tok *t,
        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(ps, s->lx.file, t->line, t->col, fmt, ap);
    va_end(ap);
}

static void __attribute__((format(printf, 5, 6)))
err_off(struct parser *ps, const struct src *s, const struct sw__conf_tok *t,
        size_t off, const char *fmt, ...)
{
    unsigned line;
    unsigned col;
    sw__conf_tok_pos(t, off, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    verr(ps, s->lx.file, line, col, fmt, ap);
    va_end(ap);
}

static void __attribute__((format(printf, 3, 4)))
err_pos(struct parser *ps, const struct pos *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(ps, p->file, p->line, p->col, fmt, ap);
    va_end(ap);
}

static void
oom(struct parser *ps)
{
    if (!ps->oom) {
        sw__conf_error(ps->errs, ps->top_file, 1, 1, "out of memory");
        ps->oom = true;
    }
}

/* "64k" for 65536: the largest unit that divides exactly. */
static void
fmt_size(char *out, size_t n, uint64_t v)
{
    static const char units[] = "gmk";
    for (int i = 0; i < 3; i++) {
        uint64_t u = 1ull << (10 * (3 - i));
        if (v != 0 && v % u == 0) {
            snprintf(out, n, "%llu%c", (unsigned long long)(v / u),
                     units[i]);
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
        {86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"},
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

/* ---- small helpers ----------------------------------------------------- */

static struct sw_str
dup_str(struct parser *ps, const char *p, size_t n)
{
    char *c = sw__conf_strndup(ps->arena, p, n);
    if (c == NULL) {
        oom(ps);
        return (struct sw_str){"", 0};
    }
    return (struct sw_str){c, n};
}

static const char *
dup_cstr(struct parser *ps, const char *p)
{
    return dup_str(ps, p, strlen(p)).p;
}

/* Room for one more element in an arena array of n elements. The capacity
 * is implied by n (0 or a power of two >= 4 means full), so no field is
 * needed for it. Returns the (possibly moved) array or NULL on ENOMEM. */
static void *
grow(struct parser *ps, void *base, size_t n, size_t size)
{
    if (n != 0 && (n < 4 || (n & (n - 1)) != 0)) {
        return base;
    }
    size_t cap = n == 0 ? 4 : n * 2;
    void *nb = sw__conf_alloc(ps->arena, cap * size);
    if (nb == NULL) {
        oom(ps);
        return NULL;
    }
    if (n > 0) {
        memcpy(nb, base, n * size);
    }
    return nb;
}

/* Append a zeroed element to arr (n elements); out points to it, or is
 * NULL on ENOMEM. */
#define PUSH(ps, arr, n, out)                                                 \
    do {                                                                      \
        __typeof__(arr) na_ = grow((ps), (arr), (n), sizeof(*(arr)));         \
        if (na_ == NULL) {                                                    \
            (out) = NULL;                                                     \
        } else {                                                              \
            (arr) = na_;                                                      \
            (out) = &(arr)[(n)++];                                            \
        }                                                                     \
    } while (0)

static bool
str_eq(struct sw_str a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && memcmp(a.p, b, n) == 0;
}

static bool
parse_u64(struct sw_str s, uint64_t *out)
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
check_header_name(struct parser *ps, const struct src *s,
                  const struct sw__conf_tok *t)
{
    if (t->text.len == 0) {
        err_tok(ps, s, t, "empty header name");
        return false;
    }
    for (size_t i = 0; i < t->text.len; i++) {
        if (!is_tchar((unsigned char)t->text.p[i])) {
            err_off(ps, s, t, i,
                    "invalid character in header name \"%.*s\": expected "
                    "letters, digits or !#$%%&'*+-.^_`|~",
                    TOKF(t));
            return false;
        }
    }
    return true;
}

static void *
field(const struct block *b, const struct directive *d)
{
    return (char *)b->obj + d->off;
}

/* ---- value parsers shared by the setters ------------------------------- */

static bool
get_number(struct parser *ps, const struct src *s,
           const struct sw__conf_tok *t, const char *what, uint64_t lo,
           uint64_t hi, uint64_t *out)
{
    uint64_t v;
    if (!parse_u64(t->text, &v)) {
        err_tok(ps, s, t, "invalid number \"%.*s\" for \"%s\": expected "
                          "digits",
                TOKF(t), what);
        return false;
    }
    if (v < lo || v > hi) {
        err_tok(ps, s, t, "\"%s\" must be from %llu to %llu, got \"%.*s\"",
                what, (unsigned long long)lo, (unsigned long long)hi,
                TOKF(t));
        return false;
    }
    *out = v;
    return true;
}

static bool
get_size(struct parser *ps, const struct src *s,
         const struct sw__conf_tok *t, const char *what, uint64_t lo,
         uint64_t hi, uint64_t *out)
{
    uint64_t v;
    if (sw_conf_parse_size(t->text, &v) != SW_OK) {
        err_tok(ps, s, t, "invalid size \"%.*s\" for \"%s\": expected a "
                          "number with an optional k, m or g suffix",
                TOKF(t), what);
        return false;
    }
    if (v < lo || v > hi) {
        char a[32];
        char z[32];
        fmt_size(a, sizeof(a), lo);
        fmt_size(z, sizeof(z), hi);
        err_tok(ps, s, t, "\"%s\" must be from %s to %s, got \"%.*s\"", what,
                a, z, TOKF(t));
        return false;
    }
    *out = v;
    return true;
}

static bool
get_dur(struct parser *ps, const struct src *s, const struct sw__conf_tok *t,
        const char *what, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v;
    if (sw_conf_parse_duration(t->text, &v) != SW_OK) {
        err_tok(ps, s, t, "invalid duration \"%.*s\" for \"%s\": expected a "
                          "number with a ms, s, m, h or d suffix",
                TOKF(t), what);
        return false;
    }
    if (v < lo || v > hi) {
        char a[32];
        char z[32];
        fmt_dur(a, sizeof(a), lo);
        fmt_dur(z, sizeof(z), hi);
        err_tok(ps, s, t, "\"%s\" must be from %s to %s, got \"%.*s\"", what,
                a, z, TOKF(t));
        return false;
    }
    *out = v;
    return true;
}

static bool
get_flag(struct parser *ps, const struct src *s,
         const struct sw__conf_tok *t, const char *what, bool *out)
{
    if (str_eq(t->text, "on")) {
        *out = true;
    } else if (str_eq(t->text, "off")) {
        *out = false;
    } else {
        err_tok(ps, s, t, "\"%s\" expects \"on\" or \"off\", got \"%.*s\"",
                what, TOKF(t));
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
resolve(struct parser *ps, const struct src *s, const struct sw__conf_tok *t,
        bool listen, struct sockaddr_storage *ss, socklen_t *sslen)
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
            err_tok(ps, s, t, "missing \"]\" in address \"%.*s\"", TOKF(t));
            return false;
        }
        hlen = (size_t)(rb - a.p) - 1;
        if (hlen == 0 || hlen >= sizeof(host)) {
            err_tok(ps, s, t, "invalid address \"%.*s\"", TOKF(t));
            return false;
        }
        memcpy(host, a.p + 1, hlen);
        poff = hlen + 2;
        if (poff >= a.len || a.p[poff] != ':') {
            err_off(ps, s, t, poff, "expected \":PORT\" after \"]\" in "
                                    "\"%.*s\"",
                    TOKF(t));
            return false;
        }
        poff++;
        v6 = true;
    } else {
        const char *colon = memrchr(a.p, ':', a.len);
        if (colon == NULL) {
            err_tok(ps, s, t, "expected HOST:PORT, got \"%.*s\" (no port)",
                    TOKF(t));
            return false;
        }
        hlen = (size_t)(colon - a.p);
        if (memchr(a.p, ':', hlen) != NULL) {
            err_tok(ps, s, t, "an IPv6 address needs brackets, as in "
                              "\"[::1]:8080\", got \"%.*s\"",
                    TOKF(t));
            return false;
        }
        if (hlen == 0 || hlen >= sizeof(host)) {
            err_tok(ps, s, t, "expected HOST:PORT, got \"%.*s\" (no host)",
                    TOKF(t));
            return false;
        }
        memcpy(host, a.p, hlen);
        poff = hlen + 1;
    }
    host[hlen] = '\0';
    uint64_t pv;
    struct sw_str ps_ = {a.p + poff, a.len - poff};
    if (!parse_u64(ps_, &pv) || pv < 1 || pv > 65535) {
        err_off(ps, s, t, poff, "invalid port \"%.*s\": expected 1 to 65535",
                (int)SW_MIN(ps_.len, SHOW), ps_.p);
        return false;
    }
    snprintf(port, sizeof(port), "%u", (unsigned)pv);
    if (!v6 && strcmp(host, "*") == 0) {
        if (!listen) {
            err_tok(ps, s, t, "\"*\" is only for listen addresses, got "
                              "\"%.*s\"",
                    TOKF(t));
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
        err_tok(ps, s, t, "cannot resolve \"%s\" in \"%.*s\": %s", host,
                TOKF(t), rc != 0 ? gai_strerror(rc) : "no address");
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
        const char *cand = *(const char *const *)((const char *)names +
                                                  i * stride);
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
parse_tpl(struct parser *ps, const struct src *s,
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
        oom(ps);
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
                err_off(ps, s, t, i, "unterminated \"${\" in \"%.*s\": "
                                     "expected \"}\"",
                        TOKF(t));
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
                const char *sugg = nearest(&vars[0].name, SW_NELEMS(vars),
                                           sizeof(vars[0]), raw.p + nstart,
                                           nlen);
                err_off(ps, s, t, i, "unknown variable \"$%.*s\"%s%s%s",
                        (int)SW_MIN(nlen, SHOW), raw.p + nstart,
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
            parts[nparts++] =
                (struct sw_conf_tpl_part){var, {lit + start, 0}};
            i = j + (brace ? 1 : 0);
            continue;
        }
        if (((unsigned char)ch < 0x20 && ch != '\t') || ch == 0x7f) {
            err_off(ps, s, t, i, "control character in header value "
                                 "\"%.*s\"",
                    TOKF(t));
            return false;
        }
        lit[n++] = ch;
        i++;
    }
    if (n > start) {
        parts[nparts++] = (struct sw_conf_tpl_part){
            SW_CONF_VAR_NONE, {lit + start, n - start}};
        lit[n++] = '\0';
    }
    SW_ASSERT(nparts <= maxparts);
    out->parts = nparts > 0 ? parts : NULL;
    out->nparts = nparts;
    return ok;
}

/* ---- the parser -------------------------------------------------------- */

static void parse_block(struct parser *ps, struct src *s, struct block *b,
                        bool nested);
static const struct directive *lookup(enum ctx ctx, struct sw_str name);

static bool
next(struct parser *ps, struct src *s, struct sw__conf_tok *t)
{
    if (sw__conf_lex_next(&s->lx, t) != SW_OK) {
        oom(ps);
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
skip_block(struct parser *ps, struct src *s)
{
    unsigned depth = 1;
    struct sw__conf_tok t;
    while (depth > 0 && next(ps, s, &t)) {
        if (t.kind == SW__CONF_TOK_EOF) {
            if (!s->lx.failed) {
                err_tok(ps, s, &t, "unexpected end of file, expected \"}\"");
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
read_stmt(struct parser *ps, struct src *s, const struct block *b,
          const struct sw__conf_tok *name, struct stmt *st)
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
                         lookup(b->ctx, t.text) != NULL;
        if (t.kind == SW__CONF_TOK_EOF || t.kind == SW__CONF_TOK_RBRACE ||
            next_stmt) {
            if (t.kind != SW__CONF_TOK_EOF || !s->lx.failed) {
                unsigned line;
                unsigned col;
                end_pos(last, &line, &col);
                sw__conf_error(ps->errs, s->lx.file, line, col,
                               "expected \";\" or \"{\" after \"%.*s\"",
                               TOKF(last));
            }
            sw__conf_lex_unget(&s->lx, &t);
            st->cut = true;
            return;
        }
        if (st->nargs == MAX_ARGS) {
            if (!toomany) {
                err_tok(ps, s, &t, "too many arguments for \"%.*s\" (limit "
                                   "%d)",
                        TOKF(name), MAX_ARGS);
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
unknown_directive(struct parser *ps, struct src *s, const struct block *b,
                  const struct stmt *st);

static const struct directive *tables[CTX_COUNT];
static const size_t table_sizes[CTX_COUNT];

static void
dispatch(struct parser *ps, struct src *s, struct block *b,
         const struct stmt *st)
{
    const struct sw__conf_tok *nt = &st->name;
    const struct directive *d = lookup(b->ctx, nt->text);
    if (st->toomany) {
        goto skip;
    }
    if (d == NULL) {
        unknown_directive(ps, s, b, st);
        goto skip;
    }
    size_t idx = (size_t)(d - tables[b->ctx]);
    if (!(d->flags & F_MULTI) && (b->seen & (1ull << idx))) {
        err_tok(ps, s, nt, "duplicate \"%s\" directive", d->name);
        goto skip;
    }
    b->seen |= 1ull << idx;
    if (b->ctx == CTX_MAIN && idx < SW_NELEMS(ps->main_pos)) {
        ps->main_pos[idx] = (struct pos){s->lx.file, nt->line, nt->col};
    }
    if ((d->flags & F_BLOCK) && !st->block) {
        if (!st->cut) {
            err_tok(ps, s, nt, "\"%s\" needs a block: expected \"{\"",
                    d->name);
        }
        return;
    }
    if (!(d->flags & F_BLOCK) && st->block) {
        err_tok(ps, s, nt, "\"%s\" takes no block: expected \";\"", d->name);
        goto skip;
    }
    int n = (int)st->nargs;
    if (n < d->min || (d->max >= 0 && n > d->max)) {
        const struct sw__conf_tok *at =
            n > d->min ? &st->args[d->max] : nt;
        if (d->min == d->max) {
            err_tok(ps, s, at, "\"%s\" takes %d argument%s, got %d",
                    d->name, d->min, d->min == 1 ? "" : "s", n);
        } else if (d->max < 0) {
            err_tok(ps, s, at, "\"%s\" needs at least %d argument%s",
                    d->name, d->min, d->min == 1 ? "" : "s");
        } else {
            err_tok(ps, s, at, "\"%s\" takes %d to %d arguments, got %d",
                    d->name, d->min, d->max, n);
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

static void
parse_block(struct parser *ps, struct src *s, struct block *b, bool nested)
{
    struct sw__conf_tok t;
    struct stmt st;
    while (!stopped(ps) && next(ps, s, &t)) {
        switch (t.kind) {
        case SW__CONF_TOK_EOF:
            if (nested && !s->lx.failed) {
                err_tok(ps, s, &t, "unexpected end of file, expected "
                                   "\"}\"");
            }
            return;
        case SW__CONF_TOK_RBRACE:
            if (nested) {
                return;
            }
            err_tok(ps, s, &t, "unexpected \"}\"");
            break;
        case SW__CONF_TOK_SEMI:
            err_tok(ps, s, &t, "unexpected \";\": expected a directive");
            break;
        case SW__CONF_TOK_LBRACE:
            err_tok(ps, s, &t, "unexpected \"{\": expected a directive");
            skip_block(ps, s);
            break;
        case SW__CONF_TOK_STRING:
            err_tok(ps, s, &t, "expected a directive name, got a quoted "
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
            if (!stopped(ps) && !s->lx.failed) {
                dispatch(ps, s, b, &st);
            }
            break;
        }
    }
}

/* ---- directives: shared ------------------------------------------------ */

static void
set_include(struct parser *ps, struct src *s, struct block *b,
            const struct stmt *st, const struct directive *d)
{
    SW_UNUSED(d);
    const struct sw__conf_tok *t = &st->args[0];
    char *text = NULL;
    char *real = NULL;
    if (t->text.len == 0) {
        err_tok(ps, s, t, "\"include\" needs a file name");
        goto out;
    }
    if (ps->depth >= SW__CONF_MAX_INCLUDE) {
        err_tok(ps, s, t, "includes nested too deep (limit %d)",
                SW__CONF_MAX_INCLUDE);
        goto out;
    }
    /* Relative names are relative to the including file's folder. */
    const char *path;
    if (t->text.p[0] == '/' || s->dir == NULL) {
        path = dup_str(ps, t->text.p, t->text.len).p;
    } else {
        size_t dl = strlen(s->dir);
        bool slash = dl > 0 && s->dir[dl - 1] == '/';
        char *p = sw__conf_alloc(ps->arena, dl + 1 + t->text.len + 1);
        if (p == NULL) {
            oom(ps);
            goto out;
        }
        memcpy(p, s->dir, dl);
        if (!slash) {
            p[dl++] = '/';
        }
        memcpy(p + dl, t->text.p, t->text.len);
        p[dl + t->text.len] = '\0';
        path = p;
    }
    if (ps->oom) {
        goto out;
    }
    real = realpath(path, NULL);
    if (real == NULL) {
        err_tok(ps, s, t, "cannot open \"%s\": %s", path, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < ps->nstack; i++) {
        if (strcmp(ps->stack[i], real) == 0) {
            err_tok(ps, s, t, "include cycle: \"%s\" is already being read",
                    path);
            goto out;
        }
    }
    size_t len;
    enum sw_status rc = sw__conf_read_file(path, &text, &len);
    if (rc != SW_OK) {
        err_tok(ps, s, t, "cannot read \"%s\": %s", path,
                rc == SW_ETOOBIG ? "file too large"
                : rc == SW_ENOMEM ? "out of memory"
                                  : strerror(errno));
        goto out;
    }
    struct src ns;
    const char *slash = strrchr(path, '/');
    ns.dir = slash == NULL ? NULL
             : slash == path
                 ? "/"
                 : dup_str(ps, path, (size_t)(slash - path)).p;
    sw__conf_lex_init(&ns.lx, text, len, path, ps->arena, ps->errs);
    ps->stack[ps->nstack++] = dup_cstr(ps, real);
    ps->depth++;
    parse_block(ps, &ns, b, false);
    ps->lexfail = ps->lexfail || ns.lx.failed;
    ps->depth--;
    ps->nstack--;
out:
    free(text);
    free(real);
}

/* Generic setters: the field is at d->off in the block's object. */

static void
set_size_u64(struct parser *ps, struct src *s, struct block *b,
             const struct stmt *st, const struct directive *d)
{
    uint64_t v;
    if (get_size(ps, s, &st->args[0], d->name, d->lo, d->hi, &v)) {
        *(uint64_t *)field(b, d) = v;
    }
}

static void
set_size_sz(struct parser *ps, struct src *s, struct block *b,
            const struct stmt *st, const struct directive *d)
{
    uint64_t v;
    if (get_size(ps, s, &st->args[0], d->name, d->lo, d->hi, &v)) {
        *(size_t *)field(b, d) = (size_t)v;
    }
}

static void
set_dur(struct parser *ps, struct src *s, struct block *b,
        const struct stmt *st, const struct directive *d)
{
    uint64_t v;
    if (get_dur(ps, s, &st->args[0], d->name, d->lo, d->hi, &v)) {
        *(uint64_t *)field(b, d) = v;
    }
}

static void
set_num_sz(struct parser *ps, struct src *s, struct block *b,
           const struct stmt *st, const struct directive *d)
{
    uint64_t v;
    if (get_number(ps, s, &st->args[0], d->name, d->lo, d->hi, &v)) {
        *(size_t *)field(b, d) = (size_t)v;
    }
}

static void
set_num_uint(struct parser *ps, struct src *s, struct block *b,
             const struct stmt *st, const struct directive *d)
{
    uint64_t v;
    if (get_number(ps, s, &st->args[0], d->name, d->lo, d->hi, &v)) {
        *(unsigned *)field(b, d) = (unsigned)v;
    }
}

static void
set_flag(struct parser *ps, struct src *s, struct block *b,
         const struct stmt *st, const struct directive *d)
{
    bool v;
    if (get_flag(ps, s, &st->args[0], d->name, &v)) {
        *(bool *)field(b, d) = v;
    }
}

/* A non-empty string: error_log, access_log. */
static void
set_path(struct parser *ps, struct src *s, struct block *b,
         const struct stmt *st, const struct directive *d)
{
    const struct sw__conf_tok *t = &st->args[0];
    if (t->text.len == 0) {
        err_tok(ps, s, t, "\"%s\" needs a path, \"stderr\" or \"off\"",
                d->name);
        return;
    }
    if (str_eq(t->text, "off") && strcmp(d->name, "error_log") == 0) {
        err_tok(ps, s, t, "the error log cannot be turned off: use "
                          "\"stderr\" or a path");
        return;
    }
    *(struct sw_str *)field(b, d) = dup_str(ps, t->text.p, t->text.len);
}

/* ---- directives: main -------------------------------------------------- */

static void
set_workers(struct parser *ps, struct src *s, struct block *b,
            const struct stmt *st, const struct directive *d)
{
    struct sw_conf *cf = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    uint64_t v;
    if (str_eq(t->text, "auto")) {
        cf->workers = 0;
        return;
    }
    if (!parse_u64(t->text, &v) || v < d->lo || v > d->hi) {
        err_tok(ps, s, t, "\"workers\" expects \"auto\" or a number from "
                          "%llu to %llu, got \"%.*s\"",
                (unsigned long long)d->lo, (unsigned long long)d->hi,
                TOKF(t));
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
set_listen(struct parser *ps, struct src *s, struct block *b,
           const struct stmt *st, const struct directive *d)
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
        } else {
            err_tok(ps, s, &st->args[i], "unknown option \"%.*s\" for "
                                         "\"listen\": expected backlog=N",
                    TOKF(&st->args[i]));
            ok = false;
        }
    }
    if (!ok) {
        return;
    }
    for (size_t i = 0; i < cf->nlistens; i++) {
        if (same_addr(&cf->listens[i].addr, cf->listens[i].addrlen, &l.addr,
                      l.addrlen)) {
            err_tok(ps, s, &st->args[0], "duplicate listen address \"%.*s\"",
                    TOKF(&st->args[0]));
            return;
        }
    }
    l.text = dup_str(ps, st->args[0].text.p, st->args[0].text.len);
    struct sw_conf_listen *slot;
    PUSH(ps, cf->listens, cf->nlistens, slot);
    if (slot != NULL) {
        *slot = l;
    }
}

static void
set_admin(struct parser *ps, struct src *s, struct block *b,
          const struct stmt *st, const struct directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    struct sw_conf_listen l;
    memset(&l, 0, sizeof(l));
    l.backlog = 511;
    if (!resolve(ps, s, &st->args[0], true, &l.addr, &l.addrlen)) {
        return;
    }
    l.text = dup_str(ps, st->args[0].text.p, st->args[0].text.len);
    cf->admin = sw__conf_alloc(ps->arena, sizeof(*cf->admin));
    if (cf->admin == NULL) {
        oom(ps);
        return;
    }
    *cf->admin = l;
}

static void
set_log_level(struct parser *ps, struct src *s, struct block *b,
              const struct stmt *st, const struct directive *d)
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
    err_tok(ps, s, t, "\"log_level\" expects error, warn, info or debug, "
                      "got \"%.*s\"",
            TOKF(t));
}

/* ---- directives: upstream ---------------------------------------------- */

static void
set_upstream_block(struct parser *ps, struct src *s, struct block *b,
                   const struct stmt *st, const struct directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    const struct sw__conf_tok *nt = &st->args[0];
    if (nt->text.len == 0) {
        err_tok(ps, s, nt, "empty upstream name");
    }
    for (size_t i = 0; i < cf->nupstreams; i++) {
        struct sw_str other = cf->upstreams[i].name;
        if (other.len == nt->text.len &&
            memcmp(other.p, nt->text.p, other.len) == 0) {
            err_tok(ps, s, nt, "duplicate upstream \"%.*s\", first defined "
                               "at %s:%u:%u",
                    TOKF(nt), ps->upos[i].file, ps->upos[i].line,
                    ps->upos[i].col);
            break;
        }
    }
    struct sw_conf_upstream *u;
    struct pos *up;
    PUSH(ps, cf->upstreams, cf->nupstreams, u);
    if (u == NULL) {
        return;
    }
    PUSH(ps, ps->upos, ps->nupos, up);
    if (up == NULL) {
        return;
    }
    *up = (struct pos){s->lx.file, nt->line, nt->col};
    u->name = dup_str(ps, nt->text.p, nt->text.len);
    u->balance = SW_CONF_BALANCE_ROUND_ROBIN;
    u->keepalive = 32;
    u->keepalive_timeout_ms = 60000;
    u->connect_timeout_ms = 5000;
    u->read_timeout_ms = 60000;
    u->send_timeout_ms = 60000;
    u->index = cf->nupstreams - 1;
    /* cf->upstreams cannot move while its block is read: "upstream" is
     * not allowed inside one, so u stays valid. */
    struct block nb = {CTX_UPSTREAM, u, 0};
    unsigned nerr = ps->errs->n;
    parse_block(ps, s, &nb, true);
    /* A server line already reported as bad would make this one noise. */
    if (u->nservers == 0 && !stopped(ps) && ps->errs->n == nerr) {
        err_tok(ps, s, &st->name, "upstream \"%.*s\" has no \"server\"",
                TOKF(nt));
    }
}

static void
set_server(struct parser *ps, struct src *s, struct block *b,
           const struct stmt *st, const struct directive *d)
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
            ok = get_dur(ps, s, &v, "fail_timeout", 0, MAX_DUR, &n) && ok;
            sv.fail_timeout_ms = n;
        } else {
            err_tok(ps, s, t, "unknown option \"%.*s\" for \"server\": "
                              "expected weight=N, max_fails=N or "
                              "fail_timeout=TIME",
                    TOKF(t));
            ok = false;
        }
    }
    if (!ok) {
        return;
    }
    sv.text = dup_str(ps, st->args[0].text.p, st->args[0].text.len);
    struct sw_conf_server *slot;
    PUSH(ps, u->servers, u->nservers, slot);
    if (slot != NULL) {
        *slot = sv;
    }
}

static void
set_balance(struct parser *ps, struct src *s, struct block *b,
            const struct stmt *st, const struct directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_upstream *u = b->obj;
    const struct sw__conf_tok *a = st->args;
    if (st->nargs == 1 && str_eq(a[0].text, "round_robin")) {
        u->balance = SW_CONF_BALANCE_ROUND_ROBIN;
    } else if (st->nargs == 1 && str_eq(a[0].text, "least_conn")) {
        u->balance = SW_CONF_BALANCE_LEAST_CONN;
    } else if (st->nargs == 2 && str_eq(a[0].text, "hash") &&
               str_eq(a[1].text, "$remote_addr")) {
        u->balance = SW_CONF_BALANCE_HASH;
        u->hash_key = SW_CONF_HASH_REMOTE_ADDR;
    } else if (st->nargs == 3 && str_eq(a[0].text, "hash") &&
               str_eq(a[1].text, "header")) {
        if (!check_header_name(ps, s, &a[2])) {
            return;
        }
        u->balance = SW_CONF_BALANCE_HASH;
        u->hash_key = SW_CONF_HASH_HEADER;
        u->hash_header = dup_str(ps, a[2].text.p, a[2].text.len);
    } else {
        err_tok(ps, s, &a[0], "\"balance\" expects round_robin, least_conn, "
                              "\"hash $remote_addr\" or \"hash header "
                              "NAME\"");
    }
}

/* ---- directives: route ------------------------------------------------- */

static void
set_route_block(struct parser *ps, struct src *s, struct block *b,
                const struct stmt *st, const struct directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    struct sw_conf_route *r;
    struct route_aux *ra;
    PUSH(ps, cf->routes, cf->nroutes, r);
    if (r == NULL) {
        return;
    }
    PUSH(ps, ps->raux, ps->nraux, ra);
    if (ra == NULL) {
        return;
    }
    r->path_prefix = dup_str(ps, "/", 1);
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
    struct block nb = {CTX_ROUTE, r, 0};
    unsigned nerr = ps->errs->n;
    parse_block(ps, s, &nb, true);
    if (stopped(ps)) {
        return;
    }
    bool up = ra->upstream.len > 0;
    /* After an error inside the block, a bad "return" or "upstream" line
     * would make "neither" noise. */
    if (!up && r->return_status == 0 && ps->errs->n == nerr) {
        err_tok(ps, s, &st->name, "route has neither \"upstream\" nor "
                                  "\"return\"");
    } else if (up && r->return_status != 0) {
        err_tok(ps, s, &st->name, "route has both \"upstream\" and "
                                  "\"return\": keep one");
    }
}

static bool
host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_';
}

static void
set_host(struct parser *ps, struct src *s, struct block *b,
         const struct stmt *st, const struct directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    for (size_t i = 0; i < st->nargs; i++) {
        const struct sw__conf_tok *t = &st->args[i];
        struct sw_str h = dup_str(ps, t->text.p, t->text.len);
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
        bool ok = h.len > 0;
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
                err_tok(ps, s, t, "host \"%.*s\" has a port: route hosts "
                                  "match names only",
                        TOKF(t));
            } else if (p[bad] == '*') {
                err_off(ps, s, t, bad, "a wildcard host must start with "
                                       "\"*.\", as in \"*.example.com\"");
            } else {
                err_tok(ps, s, t, "invalid host name \"%.*s\"", TOKF(t));
            }
            continue;
        }
        struct sw_str *slot;
        PUSH(ps, r->hosts, r->nhosts, slot);
        if (slot != NULL) {
            *slot = h;
        }
    }
}

static void
set_path_prefix(struct parser *ps, struct src *s, struct block *b,
                const struct stmt *st, const struct directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    if (t->text.len == 0 || t->text.p[0] != '/') {
        err_tok(ps, s, t, "\"path_prefix\" must start with \"/\", got "
                          "\"%.*s\"",
                TOKF(t));
        return;
    }
    for (size_t i = 0; i < t->text.len; i++) {
        unsigned char ch = (unsigned char)t->text.p[i];
        if (ch <= 0x20 || ch == 0x7f || ch == '?' || ch == '#') {
            err_off(ps, s, t, i, "invalid character in \"path_prefix\": "
                                 "no spaces, controls, \"?\" or \"#\"");
            return;
        }
    }
    r->path_prefix = dup_str(ps, t->text.p, t->text.len);
}

static void
set_header_match(struct parser *ps, struct src *s, struct block *b,
                 const struct stmt *st, const struct directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    if (!check_header_name(ps, s, &st->args[0])) {
        return;
    }
    struct sw_conf_header_match m;
    m.name = dup_str(ps, st->args[0].text.p, st->args[0].text.len);
    m.value = st->nargs > 1
                  ? dup_str(ps, st->args[1].text.p, st->args[1].text.len)
                  : dup_str(ps, "", 0);
    struct sw_conf_header_match *slot;
    PUSH(ps, r->headers, r->nheaders, slot);
    if (slot != NULL) {
        *slot = m;
    }
}

static void
set_route_upstream(struct parser *ps, struct src *s, struct block *b,
                   const struct stmt *st, const struct directive *d)
{
    SW_UNUSED(b);
    SW_UNUSED(d);
    const struct sw__conf_tok *t = &st->args[0];
    struct route_aux *ra = &ps->raux[ps->nraux - 1];
    if (t->text.len == 0) {
        err_tok(ps, s, t, "empty upstream name");
        return;
    }
    ra->upstream = dup_str(ps, t->text.p, t->text.len);
    ra->at = (struct pos){s->lx.file, t->line, t->col};
}

static void
set_return(struct parser *ps, struct src *s, struct block *b,
           const struct stmt *st, const struct directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    uint64_t v;
    const struct sw__conf_tok *t = &st->args[0];
    if (!parse_u64(t->text, &v) || v < 200 || v > 599) {
        err_tok(ps, s, t, "invalid status \"%.*s\" for \"return\": "
                          "expected 200 to 599",
                TOKF(t));
        return;
    }
    r->return_status = (int)v;
    r->return_body = st->nargs > 1 ? dup_str(ps, st->args[1].text.p,
                                             st->args[1].text.len)
                                   : dup_str(ps, "", 0);
}

static void
set_edit(struct parser *ps, struct src *s, struct block *b,
         const struct stmt *st, const struct directive *d)
{
    struct sw_conf_route *r = b->obj;
    const struct sw__conf_tok *a = st->args;
    struct sw_conf_edit e;
    memset(&e, 0, sizeof(e));
    if (str_eq(a[0].text, "set")) {
        e.op = SW_CONF_EDIT_SET;
    } else if (str_eq(a[0].text, "add")) {
        e.op = SW_CONF_EDIT_ADD;
    } else if (str_eq(a[0].text, "remove")) {
        e.op = SW_CONF_EDIT_REMOVE;
    } else {
        err_tok(ps, s, &a[0], "\"%s\" expects set, add or remove, got "
                              "\"%.*s\"",
                d->name, TOKF(&a[0]));
        return;
    }
    size_t want = e.op == SW_CONF_EDIT_REMOVE ? 2 : 3;
    if (st->nargs != want) {
        err_tok(ps, s, st->nargs > want ? &a[want] : &st->name,
                "\"%s %.*s\" takes %s", d->name, TOKF(&a[0]),
                want == 2 ? "a header name" : "a header name and a value");
        return;
    }
    if (!check_header_name(ps, s, &a[1])) {
        return;
    }
    e.name = dup_str(ps, a[1].text.p, a[1].text.len);
    if (want == 3 && !parse_tpl(ps, s, &a[2], &e.value)) {
        return;
    }
    struct sw_conf_edit *slot;
    if (strcmp(d->name, "request_header") == 0) {
        PUSH(ps, r->request_edits, r->nrequest_edits, slot);
    } else {
        PUSH(ps, r->response_edits, r->nresponse_edits, slot);
    }
    if (slot != NULL) {
        *slot = e;
    }
}

static void
set_ws_ping(struct parser *ps, struct src *s, struct block *b,
            const struct stmt *st, const struct directive *d)
{
    SW_UNUSED(d);
    struct sw_conf_route *r = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    if (str_eq(t->text, "local")) {
        r->ws_ping = SW_CONF_WS_PING_LOCAL;
    } else if (str_eq(t->text, "forward")) {
        r->ws_ping = SW_CONF_WS_PING_FORWARD;
    } else {
        err_tok(ps, s, t, "\"ws_ping\" expects \"local\" or \"forward\", "
                          "got \"%.*s\"",
                TOKF(t));
    }
}

/* ---- the tables -------------------------------------------------------- */

#define OFF_CF(f) offsetof(struct sw_conf, f)
#define OFF_UP(f) offsetof(struct sw_conf_upstream, f)
#define OFF_RT(f) offsetof(struct sw_conf_route, f)
#define KB 1024ull
#define MB (1024ull * 1024)

static const struct directive main_directives[] = {
    {"workers", set_workers, 1, 1, 0, 0, 1, 1024},
    {"listen", set_listen, 1, 2, F_MULTI, 0, 0, 0},
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
     MAX_SIZE},
    {"max_client_connections", set_num_sz, 1, 1, 0,
     OFF_CF(max_client_connections), 1, 10000000},
    {"client_header_timeout", set_dur, 1, 1, 0,
     OFF_CF(client_header_timeout_ms), 1, MAX_DUR},
    {"client_body_timeout", set_dur, 1, 1, 0, OFF_CF(client_body_timeout_ms),
     1, MAX_DUR},
    {"keepalive_timeout", set_dur, 1, 1, 0, OFF_CF(keepalive_timeout_ms), 0,
     MAX_DUR},
    {"send_timeout", set_dur, 1, 1, 0, OFF_CF(send_timeout_ms), 1, MAX_DUR},
    {"shutdown_timeout", set_dur, 1, 1, 0, OFF_CF(shutdown_timeout_ms), 0,
     MAX_DUR},
    {"include", set_include, 1, 1, F_MULTI, 0, 0, 0},
    {"upstream", set_upstream_block, 1, 1, F_MULTI | F_BLOCK, 0, 0, 0},
    {"route", set_route_block, 0, 0, F_MULTI | F_BLOCK, 0, 0, 0},
};

static const struct directive upstream_directives[] = {
    {"server", set_server, 1, 4, F_MULTI, 0, 0, 0},
    {"balance", set_balance, 1, 3, 0, 0, 0, 0},
    {"keepalive", set_num_uint, 1, 1, 0, OFF_UP(keepalive), 0, 100000},
    {"keepalive_timeout", set_dur, 1, 1, 0, OFF_UP(keepalive_timeout_ms), 0,
     MAX_DUR},
    {"connect_timeout", set_dur, 1, 1, 0, OFF_UP(connect_timeout_ms), 1,
     MAX_DUR},
    {"read_timeout", set_dur, 1, 1, 0, OFF_UP(read_timeout_ms), 1, MAX_DUR},
    {"send_timeout", set_dur, 1, 1, 0, OFF_UP(send_timeout_ms), 1, MAX_DUR},
    {"include", set_include, 1, 1, F_MULTI, 0, 0, 0},
};

static const struct directive route_directives[] = {
    {"host", set_host, 1, -1, F_MULTI, 0, 0, 0},
    {"path_prefix", set_path_prefix, 1, 1, 0, 0, 0, 0},
    {"header", set_header_match, 1, 2, F_MULTI, 0, 0, 0},
    {"upstream", set_route_upstream, 1, 1, 0, 0, 0, 0},
    {"return", set_return, 1, 2, 0, 0, 0, 0},
    {"request_header", set_edit, 2, 3, F_MULTI, 0, 0, 0},
    {"response_header", set_edit, 2, 3, F_MULTI, 0, 0, 0},
    {"connect_timeout", set_dur, 1, 1, 0, OFF_RT(connect_timeout_ms), 0,
     MAX_DUR},
    {"read_timeout", set_dur, 1, 1, 0, OFF_RT(read_timeout_ms), 0, MAX_DUR},
    {"send_timeout", set_dur, 1, 1, 0, OFF_RT(send_timeout_ms), 0, MAX_DUR},
    {"max_body_size", set_size_u64, 1, 1, 0, OFF_RT(max_body_size), 0,
     MAX_SIZE},
    {"websocket", set_flag, 1, 1, 0, OFF_RT(websocket), 0, 0},
    {"ws_ping", set_ws_ping, 1, 1, 0, 0, 0, 0},
    {"ws_ping_interval", set_dur, 1, 1, 0, OFF_RT(ws_ping_interval_ms), 0,
     MAX_DUR},
    {"ws_idle_timeout", set_dur, 1, 1, 0, OFF_RT(ws_idle_timeout_ms), 0,
     MAX_DUR},
    {"ws_close_timeout", set_dur, 1, 1, 0, OFF_RT(ws_close_timeout_ms), 1,
     MAX_DUR},
    {"ws_max_message", set_size_u64, 1, 1, 0, OFF_RT(ws_max_message), 0,
     MAX_SIZE},
    {"ws_max_frame", set_size_u64, 1, 1, 0, OFF_RT(ws_max_frame), 0,
     MAX_SIZE},
    {"ws_max_buffer", set_size_u64, 1, 1, 0, OFF_RT(ws_max_buffer), KB,
     64 * MB},
    {"ws_splice_threshold", set_size_u64, 1, 1, 0,
     OFF_RT(ws_splice_threshold), 0, 1024 * MB},
    {"ws_validate_utf8", set_flag, 1, 1, 0, OFF_RT(ws_validate_utf8), 0, 0},
    {"include", set_include, 1, 1, F_MULTI, 0, 0, 0},
};

static const struct directive *tables[CTX_COUNT] = {
    main_directives,
    upstream_directives,
    route_directives,
};

static const size_t table_sizes[CTX_COUNT] = {
    SW_NELEMS(main_directives),
    SW_NELEMS(upstream_directives),
    SW_NELEMS(route_directives),
};

static const struct directive *
lookup(enum ctx ctx, struct sw_str name)
{
    for (size_t i = 0; i < table_sizes[ctx]; i++) {
        if (str_eq(name, tables[ctx][i].name)) {
            return &tables[ctx][i];
        }
    }
    return NULL;
}

static void
unknown_directive(struct parser *ps, struct src *s, const struct block *b,
                  const struct stmt *st)
{
    const struct sw__conf_tok *t = &st->name;
    for (int c = 0; c < CTX_COUNT; c++) {
        const struct directive *d = lookup((enum ctx)c, t->text);
        if (c != (int)b->ctx && d != NULL) {
            err_tok(ps, s, t, "\"%s\" is not allowed %s, only %s", d->name,
                    ctx_names[b->ctx], ctx_names[c]);
            return;
        }
    }
    const char *sugg = nearest(&tables[b->ctx][0].name, table_sizes[b->ctx],
                               sizeof(struct directive), t->text.p,
                               t->text.len);
    if (sugg != NULL) {
        err_tok(ps, s, t, "unknown directive \"%.*s\", did you mean \"%s\"?",
                TOKF(t), sugg);
    } else {
        err_tok(ps, s, t, "unknown directive \"%.*s\"", TOKF(t));
    }
}

/* ---- whole-file checks ------------------------------------------------- */

/* Where the first of the named main directives that was written is. */
static struct pos
main_pos(const struct parser *ps, const char *name, const char *other)
{
    const char *names[2] = {name, other};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < SW_NELEMS(main_directives); i++) {
            if (strcmp(main_directives[i].name, names[k]) == 0 &&
                ps->main_pos[i].file != NULL) {
                return ps->main_pos[i];
            }
        }
    }
    return (struct pos){ps->top_file, 1, 1};
}

static void
validate(struct parser *ps)
{
    struct sw_conf *cf = ps->cf;
    if (cf->nlistens == 0) {
        sw__conf_error(ps->errs, ps->top_file, 1, 1,
                       "no \"listen\" directive: at least one is required");
    }
    /* The proxy reads a request head into one pool buffer. */
    if (cf->max_header_bytes > cf->buffer_size) {
        struct pos p = main_pos(ps, "max_header_bytes", "buffer_size");
        err_pos(ps, &p, "max_header_bytes (%zu) is larger than buffer_size "
                        "(%zu): a request head must fit in one buffer",
                cf->max_header_bytes, cf->buffer_size);
    }
    if (cf->max_request_line > cf->max_header_bytes) {
        struct pos p = main_pos(ps, "max_request_line", "max_header_bytes");
        err_pos(ps, &p, "max_request_line (%zu) is larger than "
                        "max_header_bytes (%zu)",
                cf->max_request_line, cf->max_header_bytes);
    }
    for (size_t i = 0; i < cf->nroutes && i < ps->nraux; i++) {
        struct route_aux *ra = &ps->raux[i];
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
            size_t dd = sw__conf_distance(ra->upstream.p, ra->upstream.len,
                                          n.p, n.len, 2);
            if (dd < bestd && dd < ra->upstream.len) {
                sugg = n.p;
                bestd = dd;
            }
        }
        err_pos(ps, &ra->at, "unknown upstream \"%.*s\"%s%s%s",
                (int)SW_MIN(ra->upstream.len, SHOW), ra->upstream.p,
                sugg ? ", did you mean \"" : "", sugg ? sugg : "",
                sugg ? "\"?" : "");
    }
}

struct sw_conf *
sw__conf_parse(const char *text, size_t len, const char *name,
               const char *dir, const char *real,
               struct sw__conf_errors *errs)
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
    struct parser ps;
    memset(&ps, 0, sizeof(ps));
    ps.cf = cf;
    ps.arena = arena;
    ps.errs = errs;
    cf->arena = arena;
    atomic_init(&cf->refcnt, 1);
    ps.top_file = dup_cstr(&ps, name);
    cf->path = dup_str(&ps, name, strlen(name));
    cf->error_log = dup_str(&ps, "stderr", 6);
    cf->log_level = SW_LOG_INFO;
    cf->access_log = dup_str(&ps, "off", 3);
    cf->buffer_size = 16 * KB;
    cf->max_header_bytes = 16 * KB;
    cf->max_request_line = 8 * KB;
    cf->max_headers = 100;
    cf->max_body_size = 1 * MB;
    cf->max_client_connections = 10000;
    cf->client_header_timeout_ms = 10000;
    cf->client_body_timeout_ms = 60000;
    cf->keepalive_timeout_ms = 75000;
    cf->send_timeout_ms = 60000;
    cf->shutdown_timeout_ms = 10000;
    if (ps.oom) {
        goto fail;
    }
    struct src s;
    s.dir = dir != NULL ? dup_cstr(&ps, dir) : NULL;
    sw__conf_lex_init(&s.lx, text, len, ps.top_file, arena, errs);
    if (real != NULL) {
        ps.stack[ps.nstack++] = dup_cstr(&ps, real);
    }
    struct block top = {CTX_MAIN, cf, 0};
    parse_block(&ps, &s, &top, false);
    ps.lexfail = ps.lexfail || s.lx.failed;
    /* After a lexical error the rest of a file was not read: whole-file
     * checks would only add noise. */
    if (!stopped(&ps) && !ps.lexfail) {
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
