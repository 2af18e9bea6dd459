/*
 * conf_int.h - private parts of the configuration module.
 *
 *   conf.c        public entry points: load, ref/unref, sizes, durations
 *   conf_lex.c    the arena a snapshot lives in, the error list, the
 *                 tokenizer and file reading
 *   conf_parse.c  directive tables, the block parser, includes and the
 *                 checks run over a whole snapshot
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

#define SW__CONF_MAX_ERRORS 20   /* errors collected before giving up */
#define SW__CONF_MAX_INCLUDE 16  /* include nesting depth */
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
void sw__conf_error(struct sw__conf_errors *e, const char *file,
                    unsigned line, unsigned col, const char *fmt, ...)
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
    struct sw_str text; /* WORD: borrowed (lexer source); STRING: owned
                           (arena), escapes resolved, NUL-terminated */
    struct sw_str raw;  /* borrowed (lexer source): as written, without
                           the quotes */
    unsigned line;      /* 1-based line of the first byte */
    unsigned col;       /* 1-based byte column of the first byte (the
                           opening quote for STRING) */
};

struct sw__conf_lexer {
    const char *src;               /* borrowed: the text */
    size_t len;                    /* bytes at src */
    size_t pos;                    /* next byte to read */
    unsigned line;                 /* line of src[pos] */
    unsigned col;                  /* column of src[pos] */
    const char *file;              /* borrowed: name used in errors */
    struct sw__conf_arena *arena;  /* borrowed: string tokens go here */
    struct sw__conf_errors *errs;  /* borrowed: where errors go */
    bool failed;                   /* a lexical error ended the text */
    bool has_peek;                 /* peek holds an ungot token */
    struct sw__conf_tok peek;      /* the token given back by unget */
};

void sw__conf_lex_init(struct sw__conf_lexer *lx, const char *src,
                       size_t len, const char *file,
                       struct sw__conf_arena *arena,
                       struct sw__conf_errors *errs);

/* Next token. A lexical error is reported, sets lx->failed and yields EOF.
 * Returns SW_OK, or SW_ENOMEM when a string could not be copied. */
enum sw_status sw__conf_lex_next(struct sw__conf_lexer *lx,
                                 struct sw__conf_tok *t);

/* Give one token back; the next sw__conf_lex_next returns it. */
void sw__conf_lex_unget(struct sw__conf_lexer *lx,
                        const struct sw__conf_tok *t);

/* Line and column of byte `off` of t->raw. */
void sw__conf_tok_pos(const struct sw__conf_tok *t, size_t off,
                      unsigned *line, unsigned *col);

/* Read a whole file into a malloc'd, NUL-terminated buffer (caller frees).
 * SW_OK; SW_ERROR with errno set; SW_ETOOBIG past SW__CONF_MAX_FILE. */
enum sw_status sw__conf_read_file(const char *path, char **out, size_t *len);

/* Build a snapshot from text (see sw_conf_load_string). `real` is the
 * canonical path of the file (for include cycles), or NULL. */
struct sw_conf *sw__conf_parse(const char *text, size_t len,
                               const char *name, const char *dir,
                               const char *real, struct sw__conf_errors *errs);

/* Levenshtein distance, capped: returns at most cap + 1. */
size_t sw__conf_distance(const char *a, size_t alen, const char *b,
                         size_t blen, size_t cap);

#endif
