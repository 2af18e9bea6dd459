/*
 * conf_int.h - private parts of the configuration module.
 *
 *   conf.c        public entry points: load, ref/unref, sizes, durations
 *   conf_lex.c    the arena a snapshot lives in, the error list, the
 *                 tokenizer and file reading
 *   conf_parse.c  the block parser, includes and the checks run over a
 *                 whole snapshot
 *   conf_directive.c           the directive tables and their look-up
 *   conf_directive_value.c     value parsers and the generic setters
 *   conf_directive_main.c      workers, io_engine, listen, admin, logs
 *   conf_directive_tls.c       certificates, protocols, ciphers, upstream TLS
 *   conf_directive_upstream.c  upstream { }, server, balance
 *   conf_directive_route.c     route { }, matches, header edits, WebSocket
 *   conf_directive_plugin.c    load_plugin, plugin NAME { } (kept raw)
 *   conf_bus.c                 fanout_bus URL, fanout_bus_prefix
 *   conf_dump.c                the snapshot printed back as a file (-T)
 *
 *   text --lexer--> tokens --parser--> directives --handlers--> sw_conf
 *                                  \--> include FILE: a nested lexer
 *
 * Ownership: everything a snapshot points to is allocated from its arena and
 * freed in one go by sw__conf_arena_free(). The error list writes into the
 * caller's buffer.
 *
 * Threading: a load runs on one thread; nothing here is shared.
 */
#ifndef SW_CONF_INT_H
#define SW_CONF_INT_H

#include <shockwave/conf.h>

#include <stdarg.h>
#include <stddef.h>

#define SW__CONF_MAX_ERRORS 20        /* errors collected before giving up */
#define SW__CONF_MAX_INCLUDE 16       /* include nesting depth */
#define SW__CONF_MAX_FILE (16u << 20) /* bytes per configuration file */

/* One malloc'd block of the arena. */
struct sw__conf_chunk {
    struct sw__conf_chunk *next; /* owned: the chunk allocated before */
    size_t used;                 /* bytes of data handed out */
    size_t cap;                  /* bytes of data */
    max_align_t data[];          /* the bytes handed out */
};

/* A grow-only allocator: nothing is freed until the whole arena is. */
struct sw__conf_arena {
    struct sw__conf_chunk *head; /* owned: newest chunk first */
    size_t total;                /* bytes malloc'd so far */
};

/* Returns a new arena or NULL on ENOMEM. */
struct sw__conf_arena *sw__conf_arena_new(void);

/* Free every chunk and the arena itself. Accepts NULL. */
void sw__conf_arena_free(struct sw__conf_arena *a);

/* n zeroed bytes aligned for any type, owned by the arena; NULL on ENOMEM. */
void *sw__conf_alloc(struct sw__conf_arena *a, size_t n);

/* A NUL-terminated copy of p[0..n) in the arena; NULL on ENOMEM. */
char *sw__conf_strndup(struct sw__conf_arena *a, const char *p, size_t n);

/* Errors, written one per line into the caller's buffer as they are found. */
struct sw__conf_errors {
    char *buf;  /* borrowed (the caller's err), may be NULL */
    size_t cap; /* bytes at buf */
    size_t len; /* bytes written, without the NUL */
    unsigned n; /* errors recorded */
    bool full;  /* SW__CONF_MAX_ERRORS reached: parsing stops */
};

void sw__conf_errors_init(struct sw__conf_errors *e, char *buf, size_t cap);

/* Record "file:line:col: message". After the cap, records a final "too many
 * errors" line and sets e->full; later calls do nothing. */
void sw__conf_error(struct sw__conf_errors *e, const char *file, unsigned line,
                    unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

enum sw__conf_tok_kind {
    SW__CONF_TOK_EOF = 0, /* end of the text, or a lexical error */
    SW__CONF_TOK_WORD,    /* bare word */
    SW__CONF_TOK_STRING,  /* "double quoted" */
    SW__CONF_TOK_SEMI,    /* ; */
    SW__CONF_TOK_LBRACE,  /* { */
    SW__CONF_TOK_RBRACE,  /* } */
};

struct sw__conf_tok {
    enum sw__conf_tok_kind kind; /* what it is */
    struct sw_str text;          /* WORD: borrowed (lexer source); STRING: owned
                                    (arena), escapes resolved, NUL-terminated */
    struct sw_str raw;           /* borrowed (lexer source): as written, without
                                    the quotes */
    unsigned line;               /* 1-based line of the first byte */
    unsigned col;                /* 1-based byte column of the first byte (the
                                    opening quote for STRING) */
};

struct sw__conf_lexer {
    const char *src;              /* borrowed: the text */
    size_t len;                   /* bytes at src */
    size_t pos;                   /* next byte to read */
    unsigned line;                /* line of src[pos] */
    unsigned col;                 /* column of src[pos] */
    const char *file;             /* borrowed: name used in errors */
    struct sw__conf_arena *arena; /* borrowed: string tokens go here */
    struct sw__conf_errors *errs; /* borrowed: where errors go */
    bool failed;                  /* a lexical error ended the text */
    bool has_peek;                /* peek holds an ungot token */
    struct sw__conf_tok peek;     /* the token given back by unget */
};

void sw__conf_lex_init(struct sw__conf_lexer *lx, const char *src, size_t len,
                       const char *file, struct sw__conf_arena *arena,
                       struct sw__conf_errors *errs);

/* Next token. A lexical error is reported, sets lx->failed and yields EOF.
 * Returns SW_OK, or SW_ENOMEM when a string could not be copied. */
enum sw_status sw__conf_lex_next(struct sw__conf_lexer *lx,
                                 struct sw__conf_tok *t);

/* Give one token back; the next sw__conf_lex_next returns it. */
void sw__conf_lex_unget(struct sw__conf_lexer *lx,
                        const struct sw__conf_tok *t);

/* Line and column of byte `off` of t->raw. */
void sw__conf_tok_pos(const struct sw__conf_tok *t, size_t off, unsigned *line,
                      unsigned *col);

/* Read a whole file into a malloc'd, NUL-terminated buffer (caller frees).
 * SW_OK; SW_ERROR with errno set; SW_ETOOBIG past SW__CONF_MAX_FILE. */
enum sw_status sw__conf_read_file(const char *path, char **out, size_t *len);

/* ---- parser internals: conf_parse.c and conf_directive*.c --------- */

#define SW__CONF_MAX_ARGS 16          /* arguments per directive */
#define SW__CONF_MAX_DIRECTIVES 64    /* per table: bits of block.seen */
#define SW__CONF_MAX_DUR 604800000ull /* 7d in milliseconds */
#define SW__CONF_MAX_SIZE (1ull << 50)
#define SW__CONF_SHOW 64      /* bytes of a token quoted in a message */
#define SW__CONF_NAME_MAX 255 /* RFC 1035 2.3.4: bytes of a host name */

/* Units of sizes (bytes) and durations (milliseconds). */
#define SW__CONF_KB 1024ull
#define SW__CONF_MB (1024ull * SW__CONF_KB)
#define SW__CONF_GB (1024ull * SW__CONF_MB)
#define SW__CONF_SEC 1000ull
#define SW__CONF_MINUTE (60ull * SW__CONF_SEC)
#define SW__CONF_HOUR (60ull * SW__CONF_MINUTE)
#define SW__CONF_DAY (24ull * SW__CONF_HOUR)

/* TLS defaults: Mozilla "intermediate" for TLS 1.2, the RFC 8446 suites. */
#define SW__CONF_TLS_CIPHERS                                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"               \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"               \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"               \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"                     \
    "DHE-RSA-CHACHA20-POLY1305"
#define SW__CONF_TLS_SUITES                                                    \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"                           \
    "TLS_CHACHA20_POLY1305_SHA256"

/* "%.*s" arguments for a token's text, shortened for messages. */
#define SW__CONF_TOKF(t) (int)SW_MIN((t)->text.len, SW__CONF_SHOW), (t)->text.p

enum sw__conf_ctx {
    SW__CONF_CTX_MAIN = 0, /* top level */
    SW__CONF_CTX_UPSTREAM, /* inside upstream NAME { } */
    SW__CONF_CTX_ROUTE,    /* inside route { } */
    SW__CONF_CTX_COUNT,
};

/* One statement as read: `name args... ;` or `name args... {`. */
struct sw__conf_stmt {
    struct sw__conf_tok name;                    /* the directive name */
    struct sw__conf_tok args[SW__CONF_MAX_ARGS]; /* arguments in order */
    size_t nargs;                                /* entries in args */
    bool block;                                  /* ended with "{" */
    bool cut;     /* no terminator: error reported */
    bool toomany; /* past SW__CONF_MAX_ARGS: error reported */
};

/* One file (or the in-memory text) being read. */
struct sw__conf_src {
    struct sw__conf_lexer lx; /* the tokenizer over its text */
    const char *dir;          /* owned (arena): folder for includes, NULL =
                                 the current folder */
};

/* The block being filled. */
struct sw__conf_block {
    enum sw__conf_ctx ctx; /* which directive table applies */
    void *obj;             /* borrowed: the sw_conf, sw_conf_upstream or
                              sw_conf_route being filled */
    uint64_t seen;         /* bit i: directive i of the table already seen */
};

/* A place in a file, for messages about things found later. */
struct sw__conf_pos {
    const char *file; /* owned (arena) */
    unsigned line;    /* 1-based */
    unsigned col;     /* 1-based */
};

/* Parse-time data kept per route, parallel to cf->routes. */
struct sw__conf_route_aux {
    struct sw_str upstream;      /* owned (arena): `upstream NAME;`, or empty */
    struct sw__conf_pos at;      /* of NAME */
    struct sw__conf_pos name_at; /* of `name`'s argument, else `route` */
};

struct sw__conf_parser {
    struct sw_conf *cf;           /* the snapshot being built */
    struct sw__conf_arena *arena; /* borrowed (cf->arena) */
    struct sw__conf_errors *errs; /* borrowed: caller's error list */
    /* borrowed (arena): canonical paths of the files being read */
    const char *stack[SW__CONF_MAX_INCLUDE + 1];
    size_t nstack;                   /* entries in stack */
    size_t depth;                    /* includes open now */
    struct sw__conf_route_aux *raux; /* owned (arena): one per route */
    size_t nraux;                    /* entries in raux */
    struct sw__conf_pos *upos;       /* owned (arena): upstream sites */
    size_t nupos;                    /* entries in upos */
    /* where each main directive was seen, by table index */
    struct sw__conf_pos main_pos[SW__CONF_MAX_DIRECTIVES];
    const char *top_file;           /* borrowed: name of the main text */
    struct sw__conf_pos tls_listen; /* first `listen ... tls`, file NULL
                                       when none */
    bool oom;                       /* an allocation failed */
    bool lexfail;                   /* a file ended on a lexical error */
};

struct sw__conf_directive;

/* A directive's setter: checks st's arguments and stores them in b->obj.
 * A function type, so setters are declared below by name alone; each
 * definition spells the parameters out. */
typedef void sw__conf_set_cb(struct sw__conf_parser *ps, struct sw__conf_src *s,
                             struct sw__conf_block *b,
                             const struct sw__conf_stmt *st,
                             const struct sw__conf_directive *d);

#define SW__CONF_F_MULTI 1u /* may appear more than once */
#define SW__CONF_F_BLOCK 2u /* takes a { } block */

/* How one kind of number is read, and how its bounds are shown. */
struct sw__conf_unit {
    uint64_t scale;     /* this many of the base unit */
    const char *suffix; /* as written after the number */
};

struct sw__conf_value {
    const char *name;   /* "number", "size", "duration" (messages) */
    const char *expect; /* what a valid one looks like (messages) */
    enum sw_status (*parse)(struct sw_str s, uint64_t *out); /* SW_OK or
                                                                SW_EINVAL */
    const struct sw__conf_unit *units; /* borrowed (static): largest first,
                                          to show bounds; NULL = none */
    size_t nunits;                     /* entries in units */
    const char *base;                  /* suffix of a bound no unit divides */
};

extern const struct sw__conf_value sw__conf_number;   /* digits: 1024 */
extern const struct sw__conf_value sw__conf_size;     /* bytes: 64k */
extern const struct sw__conf_value sw__conf_duration; /* milliseconds: 5s */

#define SW__CONF_SHOW_MAX 32 /* room for a value as shown: 20 digits, unit */

/* v in the largest unit of k that divides it exactly ("64k" for 65536),
 * else in k's base unit ("0ms", "1500ms"); cut to fit n bytes. */
void sw__conf_value_show(const struct sw__conf_value *k, char *out, size_t n,
                         uint64_t v);

struct sw__conf_directive {
    const char *name;     /* as written in the file */
    sw__conf_set_cb *set; /* parses and stores the arguments */
    int min;              /* fewest arguments */
    int max;              /* most arguments, -1 = no limit */
    unsigned flags;       /* SW__CONF_F_* */
    /* borrowed (static): the kind read by sw__conf_set_value */
    const struct sw__conf_value *value;
    size_t off;   /* field in the block's object (generic setters) */
    size_t width; /* bytes of that field (sw__conf_set_value) */
    uint64_t lo;  /* smallest value allowed (numbers, sizes, times) */
    uint64_t hi;  /* largest value allowed */
};

/* Append a zeroed element to arr (n elements); out points to it, or is
 * NULL on ENOMEM. */
#define SW__CONF_PUSH(ps, arr, n, out)                                         \
    do {                                                                       \
        __typeof__(arr) na_ = sw__conf_grow((ps), (arr), (n), sizeof(*(arr))); \
        if (na_ == NULL) {                                                     \
            (out) = NULL;                                                      \
        } else {                                                               \
            (arr) = na_;                                                       \
            (out) = &(arr)[(n)++];                                             \
        }                                                                      \
    } while (0)

/* Append a copy of val to arr (n elements); on ENOMEM (reported by
 * sw__conf_grow) nothing is added. */
#define SW__CONF_APPEND(ps, arr, n, val)                                       \
    do {                                                                       \
        __typeof__(arr) slot_;                                                 \
        SW__CONF_PUSH((ps), (arr), (n), slot_);                                \
        if (slot_ != NULL) {                                                   \
            *slot_ = (val);                                                    \
        }                                                                      \
    } while (0)

bool sw__conf_stopped(const struct sw__conf_parser *ps);

/* Record an error at token t, or at byte off of t's raw text. */
void sw__conf_err_tok(struct sw__conf_parser *ps, const struct sw__conf_src *s,
                      const struct sw__conf_tok *t, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void sw__conf_err_off(struct sw__conf_parser *ps, const struct sw__conf_src *s,
                      const struct sw__conf_tok *t, size_t off, const char *fmt,
                      ...) __attribute__((format(printf, 5, 6)));
void sw__conf_err_pos(struct sw__conf_parser *ps, const struct sw__conf_pos *p,
                      const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Report "out of memory" once and stop the parse. */
void sw__conf_oom(struct sw__conf_parser *ps);

/* NUL-terminated copies in the arena; on ENOMEM report it and return "". */
struct sw_str sw__conf_dup_str(struct sw__conf_parser *ps, const char *p,
                               size_t n);
const char *sw__conf_dup_cstr(struct sw__conf_parser *ps, const char *p);

/* Room for one more element in an arena array (see SW__CONF_PUSH). */
void *sw__conf_grow(struct sw__conf_parser *ps, void *base, size_t n,
                    size_t size);

bool sw__conf_str_eq(struct sw_str a, const char *b);

/* Decimal digits only, no sign, no overflow. */
bool sw__conf_parse_u64(struct sw_str s, uint64_t *out);

/* Read statements into block b until "}" (nested) or the end of s. */
void sw__conf_parse_block(struct sw__conf_parser *ps, struct sw__conf_src *s,
                          struct sw__conf_block *b, bool nested);

/* `include FILE;`, valid in every context. */
sw__conf_set_cb sw__conf_set_include;

/* name as a path open(2) can take: relative names are relative to the
 * folder of the file being read (s->dir). Owned by the arena; NULL after
 * reporting ENOMEM. */
const char *sw__conf_path(struct sw__conf_parser *ps,
                          const struct sw__conf_src *s, struct sw_str name,
                          size_t *len);

/* The directive called name in a context, and its table index; NULL if
 * none. */
const struct sw__conf_directive *
sw__conf_lookup(enum sw__conf_ctx ctx, struct sw_str name, size_t *idx);

/* The table of a context and its n entries (for the dump). */
const struct sw__conf_directive *sw__conf_table(enum sw__conf_ctx ctx,
                                                size_t *n);

/* Report an unknown name: "not allowed here" or "did you mean". */
void sw__conf_unknown_directive(struct sw__conf_parser *ps,
                                struct sw__conf_src *s,
                                const struct sw__conf_block *b,
                                const struct sw__conf_stmt *st);

/* The name nearest to p[0..len) among n names, the i-th one at byte
 * i * stride from names: at most 2 edits away and fewer than len; NULL
 * if none is. */
const char *sw__conf_nearest(const char *const *names, size_t n, size_t stride,
                             const char *p, size_t len);

/* ---- values: conf_directive_value.c ------------------------------------ */

/* A number of kind k from lo to hi, else an error naming `what`. */
bool sw__conf_get_value(struct sw__conf_parser *ps,
                        const struct sw__conf_src *s,
                        const struct sw__conf_tok *t, const char *what,
                        const struct sw__conf_value *k, uint64_t lo,
                        uint64_t hi, uint64_t *out);

/* "key=value" option: true with *val set when t starts with key=. */
bool sw__conf_option(const struct sw__conf_tok *t, const char *key,
                     struct sw__conf_tok *val);

/* "HOST:PORT", "[V6]:PORT" or (listen only) "*:PORT", resolved. */
bool sw__conf_resolve(struct sw__conf_parser *ps, const struct sw__conf_src *s,
                      const struct sw__conf_tok *t, bool listen,
                      struct sockaddr_storage *ss, socklen_t *sslen);

/* RFC 9110 5.6.2 token, else an error. */
bool sw__conf_check_header_name(struct sw__conf_parser *ps,
                                const struct sw__conf_src *s,
                                const struct sw__conf_tok *t);

/* Lower-case letters, digits and "-._": a host name byte. */
bool sw__conf_is_host_char(char ch);

/* ---- directive setters (sw__conf_set_cb), by file ----------------------- */

/* conf_directive_value.c: the field at d->off in the block's object. */
sw__conf_set_cb sw__conf_set_value;  /* d->value from d->lo to d->hi */
sw__conf_set_cb sw__conf_set_flag;   /* on | off */
sw__conf_set_cb sw__conf_set_path;   /* error_log, access_log */
sw__conf_set_cb sw__conf_set_string; /* non-empty: cipher lists */

/* conf_directive_main.c */
sw__conf_set_cb sw__conf_set_workers;
sw__conf_set_cb sw__conf_set_io_engine; /* epoll | io_uring */
sw__conf_set_cb sw__conf_set_listen;
sw__conf_set_cb sw__conf_set_admin;
sw__conf_set_cb sw__conf_set_log_level;
sw__conf_set_cb sw__conf_set_access_log; /* PATH [json] */
sw__conf_set_cb sw__conf_set_user;       /* NAME [GROUP] */
/* conf_realip.c */
sw__conf_set_cb sw__conf_set_real_ip_from;
sw__conf_set_cb sw__conf_set_real_ip_header;
/* conf_bus.c */
sw__conf_set_cb sw__conf_set_bus;        /* fanout_bus redis://... */
sw__conf_set_cb sw__conf_set_bus_prefix; /* fanout_bus_prefix PREFIX */
/* The bus fields at their defaults: no bus (sw__conf_parse). */
void sw__conf_bus_defaults(struct sw__conf_parser *ps);

/* conf_directive_tls.c */
sw__conf_set_cb sw__conf_set_tls_certificate;
sw__conf_set_cb sw__conf_set_tls_cert_part; /* key, OCSP response */
sw__conf_set_cb sw__conf_set_tls_protocols;
sw__conf_set_cb sw__conf_set_tls_session_cache;
sw__conf_set_cb sw__conf_set_upstream_tls; /* tls_ca, tls_server_name */

/* conf_directive_upstream.c */
sw__conf_set_cb sw__conf_set_upstream_block;
sw__conf_set_cb sw__conf_set_server;
sw__conf_set_cb sw__conf_set_balance;
sw__conf_set_cb sw__conf_set_health_check;

/* conf_directive_route.c */
sw__conf_set_cb sw__conf_set_route_block;
sw__conf_set_cb sw__conf_set_host;
sw__conf_set_cb sw__conf_set_path_prefix;
sw__conf_set_cb sw__conf_set_header_match;
sw__conf_set_cb sw__conf_set_route_upstream;
sw__conf_set_cb sw__conf_set_return;
sw__conf_set_cb sw__conf_set_edit; /* request_header, response_header */
sw__conf_set_cb sw__conf_set_ws_ping;
sw__conf_set_cb sw__conf_set_kernel_relay;
sw__conf_set_cb sw__conf_set_fanout;
sw__conf_set_cb sw__conf_set_fanout_choice;
sw__conf_set_cb sw__conf_set_route_name;

/* conf_directive_plugin.c */
sw__conf_set_cb sw__conf_set_load_plugin;
sw__conf_set_cb sw__conf_set_plugin_block;
/* Every route's `plugin NAME` has its load_plugin. */
void sw__conf_check_plugins(struct sw__conf_parser *ps);

/* Build a snapshot from text (see sw_conf_load_string). `real` is the
 * canonical path of the file (for include cycles), or NULL. */
struct sw_conf *sw__conf_parse(const char *text, size_t len, const char *name,
                               const char *dir, const char *real,
                               struct sw__conf_errors *errs);

/* Levenshtein distance, capped: returns at most cap + 1. */
size_t sw__conf_distance(const char *a, size_t alen, const char *b, size_t blen,
                         size_t cap);

#endif
