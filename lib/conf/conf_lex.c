/*
 * conf_lex.c - arena, error list, tokenizer and file reading for the
 * configuration parser (see conf_int.h).
 *
 * Tokens:  word      any run of bytes but space, ; { } " and a leading #;
 *                    "${name}" inside a word keeps its braces
 *          "string"  double quoted; \" and \\ are the only escapes; may
 *                    span lines
 *          ; { }     punctuation
 *          # ...     comment to the end of the line (at a token start)
 *
 * Positions are 1-based; a column counts bytes (a tab is one column).
 *
 * Owns nothing: string tokens are copied into the caller's arena, words are
 * slices of the text being read. One thread.
 */
#include "conf_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_MIN 4096

struct sw__conf_arena *
sw__conf_arena_new(void)
{
    return calloc(1, sizeof(struct sw__conf_arena));
}

void
sw__conf_arena_free(struct sw__conf_arena *a)
{
    if (a == NULL) {
        return;
    }
    struct sw__conf_chunk *ch = a->head;
    while (ch != NULL) {
        struct sw__conf_chunk *next = ch->next;
        free(ch);
        ch = next;
    }
    free(a);
}

void *
sw__conf_alloc(struct sw__conf_arena *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    size_t need = (n + align - 1) & ~(align - 1);
    if (need < n) {
        return NULL;
    }
    if (need == 0) {
        need = align;
    }
    struct sw__conf_chunk *ch = a->head;
    if (ch == NULL || ch->cap - ch->used < need) {
        size_t cap = need > CHUNK_MIN ? need : CHUNK_MIN;
        if (cap > SIZE_MAX - sizeof(*ch)) {
            return NULL;
        }
        ch = malloc(sizeof(*ch) + cap);
        if (ch == NULL) {
            return NULL;
        }
        ch->cap = cap;
        ch->used = 0;
        /* A big block goes behind the current chunk so that the current
         * chunk's free space is still used for small ones. */
        if (a->head != NULL && need > CHUNK_MIN) {
            ch->next = a->head->next;
            a->head->next = ch;
        } else {
            ch->next = a->head;
            a->head = ch;
        }
        a->total += sizeof(*ch) + cap;
    }
    void *p = (char *)ch->data + ch->used;
    ch->used += need;
    memset(p, 0, need);
    return p;
}

char *
sw__conf_strndup(struct sw__conf_arena *a, const char *p, size_t n)
{
    if (n == SIZE_MAX) {
        return NULL;
    }
    char *s = sw__conf_alloc(a, n + 1);
    if (s == NULL) {
        return NULL;
    }
    if (n > 0) {
        memcpy(s, p, n);
    }
    s[n] = '\0';
    return s;
}

void
sw__conf_errors_init(struct sw__conf_errors *e, char *buf, size_t cap)
{
    memset(e, 0, sizeof(*e));
    e->buf = buf;
    e->cap = cap;
    if (buf != NULL && cap > 0) {
        buf[0] = '\0';
    }
}

static void
err_append(struct sw__conf_errors *e, const char *fmt, va_list ap)
{
    if (e->buf == NULL || e->cap == 0 || e->len + 1 >= e->cap) {
        return;
    }
    int n = vsnprintf(e->buf + e->len, e->cap - e->len, fmt, ap);
    if (n < 0) {
        e->buf[e->len] = '\0';
        return;
    }
    e->len += (size_t)n;
    if (e->len >= e->cap) {
        e->len = e->cap - 1; /* truncated; vsnprintf wrote the NUL */
    }
}

static void
err_printf(struct sw__conf_errors *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_append(e, fmt, ap);
    va_end(ap);
}

void
sw__conf_error(struct sw__conf_errors *e, const char *file, unsigned line,
               unsigned col, const char *fmt, ...)
{
    if (e->full) {
        return;
    }
    if (e->n > 0) {
        err_printf(e, "\n");
    }
    if (e->n == SW__CONF_MAX_ERRORS) {
        err_printf(e, "%s: too many errors (limit %d), stopping", file,
                   SW__CONF_MAX_ERRORS);
        e->full = true;
        return;
    }
    err_printf(e, "%s:%u:%u: ", file, line, col);
    va_list ap;
    va_start(ap, fmt);
    err_append(e, fmt, ap);
    va_end(ap);
    e->n++;
}

void
sw__conf_lex_init(struct sw__conf_lexer *lx, const char *src, size_t len,
                  const char *file, struct sw__conf_arena *arena,
                  struct sw__conf_errors *errs)
{
    memset(lx, 0, sizeof(*lx));
    lx->src = src;
    lx->len = len;
    lx->line = 1;
    lx->col = 1;
    lx->file = file;
    lx->arena = arena;
    lx->errs = errs;
}

static void
advance(struct sw__conf_lexer *lx)
{
    if (lx->src[lx->pos] == '\n') {
        lx->line++;
        lx->col = 1;
    } else {
        lx->col++;
    }
    lx->pos++;
}

static bool
is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' ||
           ch == '\v';
}

static bool
ends_word(char ch)
{
    return is_space(ch) || ch == ';' || ch == '{' || ch == '}' || ch == '"';
}

/* Lexical errors end the text: recovery inside a broken string would only
 * produce noise. */
static void
fail(struct sw__conf_lexer *lx, struct sw__conf_tok *t, unsigned line,
     unsigned col, const char *what)
{
    sw__conf_error(lx->errs, lx->file, line, col, "%s", what);
    lx->failed = true;
    lx->pos = lx->len;
    t->kind = SW__CONF_TOK_EOF;
}

static enum sw_status
lex_string(struct sw__conf_lexer *lx, struct sw__conf_tok *t)
{
    unsigned line = lx->line;
    unsigned col = lx->col;
    advance(lx); /* the opening quote */
    size_t start = lx->pos;
    bool escapes = false;
    while (lx->pos < lx->len && lx->src[lx->pos] != '"') {
        if (lx->src[lx->pos] == '\\') {
            escapes = true;
            char next = lx->pos + 1 < lx->len ? lx->src[lx->pos + 1] : '\0';
            if (next != '"' && next != '\\') {
                sw__conf_error(lx->errs, lx->file, lx->line, lx->col,
                               "unknown escape in string: only \\\" and "
                               "\\\\ are allowed");
                lx->failed = true;
            } else {
                advance(lx);
            }
        }
        advance(lx);
    }
    if (lx->pos >= lx->len) {
        fail(lx, t, line, col,
             "unterminated string: missing the closing "
             "quote");
        return SW_OK;
    }
    size_t end = lx->pos;
    advance(lx); /* the closing quote */
    if (lx->failed) {
        lx->pos = lx->len;
        t->kind = SW__CONF_TOK_EOF;
        return SW_OK;
    }
    char *s = sw__conf_alloc(lx->arena, end - start + 1);
    if (s == NULL) {
        return SW_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = start; i < end; i++) {
        if (escapes && lx->src[i] == '\\') {
            i++;
        }
        s[n++] = lx->src[i];
    }
    s[n] = '\0';
    t->kind = SW__CONF_TOK_STRING;
    t->text = (struct sw_str){s, n};
    t->raw = (struct sw_str){lx->src + start, end - start};
    t->line = line;
    t->col = col;
    return SW_OK;
}

enum sw_status
sw__conf_lex_next(struct sw__conf_lexer *lx, struct sw__conf_tok *t)
{
    if (lx->has_peek) {
        *t = lx->peek;
        lx->has_peek = false;
        return SW_OK;
    }
    memset(t, 0, sizeof(*t));
    for (;;) {
        while (lx->pos < lx->len && is_space(lx->src[lx->pos])) {
            advance(lx);
        }
        if (lx->pos < lx->len && lx->src[lx->pos] == '#') {
            while (lx->pos < lx->len && lx->src[lx->pos] != '\n') {
                advance(lx);
            }
            continue;
        }
        break;
    }
    t->line = lx->line;
    t->col = lx->col;
    if (lx->pos >= lx->len) {
        t->kind = SW__CONF_TOK_EOF;
        return SW_OK;
    }
    char ch = lx->src[lx->pos];
    switch (ch) {
    case ';':
        t->kind = SW__CONF_TOK_SEMI;
        break;
    case '{':
        t->kind = SW__CONF_TOK_LBRACE;
        break;
    case '}':
        t->kind = SW__CONF_TOK_RBRACE;
        break;
    case '"':
        return lex_string(lx, t);
    case '\0':
        fail(lx, t, lx->line, lx->col, "unexpected NUL byte");
        return SW_OK;
    default: {
        size_t start = lx->pos;
        bool brace = false; /* inside "${name}" */
        while (lx->pos < lx->len && (!ends_word(lx->src[lx->pos]) ||
                                     (brace && lx->src[lx->pos] == '}'))) {
            char c = lx->src[lx->pos];
            if (c == '\0') {
                fail(lx, t, lx->line, lx->col, "unexpected NUL byte");
                return SW_OK;
            }
            /* "${host}" stays one word: its braces are not blocks. */
            if (c == '$' && lx->pos + 1 < lx->len &&
                lx->src[lx->pos + 1] == '{') {
                brace = true;
                advance(lx);
            } else if (c == '}') {
                brace = false;
            }
            advance(lx);
        }
        t->kind = SW__CONF_TOK_WORD;
        t->text = (struct sw_str){lx->src + start, lx->pos - start};
        t->raw = t->text;
        return SW_OK;
    }
    }
    t->text = (struct sw_str){lx->src + lx->pos, 1};
    t->raw = t->text;
    advance(lx);
    return SW_OK;
}

void
sw__conf_lex_unget(struct sw__conf_lexer *lx, const struct sw__conf_tok *t)
{
    SW_ASSERT(!lx->has_peek);
    lx->peek = *t;
    lx->has_peek = true;
}

void
sw__conf_tok_pos(const struct sw__conf_tok *t, size_t off, unsigned *line,
                 unsigned *col)
{
    unsigned l = t->line;
    unsigned c = t->col + (t->kind == SW__CONF_TOK_STRING ? 1 : 0);
    for (size_t i = 0; i < off && i < t->raw.len; i++) {
        if (t->raw.p[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

enum sw_status
sw__conf_read_file(const char *path, char **out, size_t *len)
{
    enum sw_status rc = SW_ERROR;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        goto out;
    }
    size_t cap = 4096;
    size_t n = 0;
    buf = malloc(cap);
    if (buf == NULL) {
        rc = SW_ENOMEM;
        goto out;
    }
    for (;;) {
        if (cap - n < 2) {
            if (cap >= SW__CONF_MAX_FILE) {
                rc = SW_ETOOBIG;
                goto out;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                rc = SW_ENOMEM;
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            goto out;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    rc = SW_OK;
out:
    if (fd >= 0) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    free(buf);
    return rc;
}

size_t
sw__conf_distance(const char *a, size_t alen, const char *b, size_t blen,
                  size_t cap)
{
    /* Two rows of the classic dynamic programme; names are short, so a
     * fixed bound keeps it allocation free. */
    enum { MAXLEN = 63 };
    size_t prev[MAXLEN + 1];
    size_t cur[MAXLEN + 1];
    if (alen > MAXLEN || blen > MAXLEN) {
        return cap + 1;
    }
    size_t diff = alen > blen ? alen - blen : blen - alen;
    if (diff > cap) {
        return cap + 1;
    }
    for (size_t j = 0; j <= blen; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= alen; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= blen; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            size_t del = prev[j] + 1;
            size_t ins = cur[j - 1] + 1;
            size_t best = sub < del ? sub : del;
            cur[j] = best < ins ? best : ins;
        }
        memcpy(prev, cur, (blen + 1) * sizeof(prev[0]));
    }
    return prev[blen] > cap ? cap + 1 : prev[blen];
}
