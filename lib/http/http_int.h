/*
 * http_int.h - private parts of the HTTP module (see shockwave/http.h).
 *
 *   http.c           the head decoder both directions share: fast pass,
 *                    strict scanner, field-line semantics, the http-parser
 *                    cross-check; header look-ups
 *   http_request.c   request line and target, request framing, Host
 *   http_response.c  status line, response framing, reason phrases
 *   http_chunked.c   the chunked body decoder and the chunk-size line
 *   http_write.c     head serialisation into a fixed buffer
 *
 *   sw_http_request_decode / sw_http_response_decode
 *        | sw__http_head_init: the caller's headers and limits, and the
 *        | direction's struct sw__http_rules (request_rules,
 *        | response_rules)
 *        v
 *   sw__http_head_decode: fast pass -> scanner (rules->on_start) ->
 *        field lines -> rules->on_fields -> http-parser cross-check
 *
 * http-parser is included here only, so a later swap to llhttp stays in
 * this folder.
 *
 * Threading: pure functions; nothing is shared.
 */
#ifndef SW_HTTP_INT_H
#define SW_HTTP_INT_H

#include <shockwave/http.h>

#include <http_parser.h>

struct sw__http_head;
struct sw__http_fields;

/* Checks the start line; on a fault sets *status and *why (static). */
typedef enum sw_status (*sw__http_start_cb)(void *arg, struct sw_str line,
                                            int *status, const char **why);

/* Applies one direction's framing and connection rules to what the field
 * lines say; a fault goes through sw__http_fail. */
typedef enum sw_status (*sw__http_fields_cb)(void *arg, struct sw__http_head *h,
                                             const struct sw__http_fields *f);

/* What differs between decoding a request head and a response head. */
struct sw__http_rules {
    int line_status;              /* status when max_line is passed */
    const char *line_why;         /* reason when max_line is passed */
    bool lax_start;               /* start line may hold HT, obs-text */
    int bad_status;               /* status of any other malformed head */
    enum http_parser_type type;   /* HTTP_REQUEST or HTTP_RESPONSE */
    sw__http_start_cb on_start;   /* validates the start line */
    sw__http_fields_cb on_fields; /* framing and connection rules */
};

/* The decoder's view of one head. */
struct sw__http_head {
    const struct sw__http_rules *rules; /* borrowed (static): direction */
    void *arg;                          /* borrowed: passed to the callbacks */
    struct sw_http_header *headers;     /* borrowed (caller's array) */
    size_t cap;                         /* usable entries of headers */
    size_t n;                           /* filled entries */
    size_t max_head;                    /* limit: head bytes incl. final CRLF */
    size_t max_line;                    /* limit: start line bytes */
    size_t head_len;                    /* set on SW_OK */
    int status;                         /* HTTP status of a failure */
    const char *why;                    /* static reason of a failure */
};

/* What the field lines say about framing and the connection. */
struct sw__http_fields {
    size_t n_cl;                       /* Content-Length fields */
    uint64_t cl;                       /* its value */
    size_t n_te;                       /* Transfer-Encoding fields */
    size_t te_codings;                 /* codings listed in all of them */
    size_t te_chunked;                 /* how many are "chunked" */
    size_t te_other;                   /* how many are anything else */
    bool te_last_chunked;              /* the final coding is chunked */
    bool te_bad;                       /* a coding is not a token */
    size_t n_host;                     /* Host fields */
    const struct sw_http_header *host; /* borrowed: first Host */
    const struct sw_http_header *conn; /* borrowed: Connection */
    const struct sw_http_header *upg;  /* borrowed: first Upgrade */
    bool expect_continue;              /* Expect: 100-continue */
};

/* RFC 9110 5.6.2: tchar. */
static inline bool
sw__http_is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9')) {
        return true;
    }
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

/* RFC 9110 5.5: field-vchar, SP and HTAB; obs-text is kept as opaque. */
static inline bool
sw__http_is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* RFC 9110 5.6.3: OWS is SP and HTAB. */
static inline bool
sw__http_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Record a failure in h; returns st. */
enum sw_status sw__http_fail(struct sw__http_head *h, enum sw_status st,
                             int status, const char *why);

/* A head over the caller's headers array, under lim, decoded by rules;
 * arg is passed to the rules' callbacks. */
void sw__http_head_init(struct sw__http_head *h,
                        const struct sw__http_rules *rules, void *arg,
                        struct sw_http_header *headers, size_t headers_cap,
                        const struct sw_http_limits *lim);

/*
 * Decode the head at d[0..len): SW_OK with h->head_len set, SW_AGAIN, or
 * the first fault (SW_EPROTO, SW_ETOOBIG) with h->status and h->why. h->n
 * counts the field lines stored, on a fault too.
 */
enum sw_status sw__http_head_decode(struct sw__http_head *h, const char *d,
                                    size_t len);

/* Whether the connection stays open after this message (RFC 9112 9.3). */
bool sw__http_keep_alive(const struct sw__http_fields *f, unsigned minor);

/* Parse "HTTP/d.d" (RFC 9112 2.3). */
bool sw__http_parse_version(struct sw_str v, unsigned *major, unsigned *minor);

#endif
