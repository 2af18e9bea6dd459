/*
 * http.h - HTTP/1.1 message heads, chunked bodies and head serialisation.
 *
 * Pure functions over bytes: no I/O, no allocation, no libevent. Decoders
 * return slices (struct sw_str) into the caller's buffer, valid while that
 * buffer is unchanged. http-parser 2.9 does the grammar; this module adds the
 * strict checks a proxy needs against request smuggling (RFC 9112), which
 * http-parser tolerates: bare LF or CR, obs-fold, NUL and other control
 * bytes, whitespace before a colon, Transfer-Encoding on HTTP/1.0 or not
 * ending in chunked, Content-Length together with Transfer-Encoding,
 * differing duplicate Content-Length, missing or duplicate Host on 1.1.
 *
 * Threading: none; every object is owned by its caller.
 */
#ifndef SHOCKWAVE_HTTP_H
#define SHOCKWAVE_HTTP_H

#include <shockwave/core.h>

struct sw_http_header {
    struct sw_str name;  /* borrowed (from the head buffer) */
    struct sw_str value; /* borrowed (from the head buffer), OWS trimmed */
};

/* How a message body is delimited (RFC 9112 section 6.3). */
enum sw_http_body {
    SW_HTTP_BODY_NONE = 0, /* no body */
    SW_HTTP_BODY_LENGTH,   /* Content-Length bytes */
    SW_HTTP_BODY_CHUNKED,  /* chunked transfer coding */
    SW_HTTP_BODY_TO_CLOSE, /* response read until the upstream closes */
};

struct sw_http_limits {
    size_t max_head;         /* whole head incl. final CRLF -> 431 */
    size_t max_request_line; /* request line -> 414 */
    size_t max_headers;      /* header count -> 431 */
};

/* A parsed request head. The caller supplies the headers array. */
struct sw_http_request {
    struct sw_str method;           /* borrowed: "GET" */
    int method_id;                  /* http-parser's enum http_method value */
    struct sw_str target;           /* borrowed: request-target as sent */
    struct sw_str path;             /* borrowed: target's path (no query) */
    struct sw_str authority;        /* borrowed: absolute-form's host[:port]
                                       (RFC 9112 3.2.2), else empty */
    struct sw_str origin;           /* borrowed: the target as origin-form
                                       (path and query); for absolute-form
                                       without a path "/" or "?query" */
    unsigned version_major;         /* 1 */
    unsigned version_minor;         /* 0 or 1 */
    struct sw_http_header *headers; /* borrowed (caller's array) */
    size_t nheaders;                /* filled entries */
    size_t headers_cap;             /* caller sets: capacity of headers */
    struct sw_str host;             /* borrowed: Host value, port included */
    enum sw_http_body body;         /* NONE, LENGTH or CHUNKED */
    uint64_t content_length;        /* with SW_HTTP_BODY_LENGTH */
    bool keep_alive;                /* per version and Connection */
    bool expect_continue;           /* Expect: 100-continue */
    bool upgrade; /* Connection has "upgrade" and Upgrade present */
    struct sw_str upgrade_proto; /* borrowed: Upgrade value */
    struct sw_str connection;    /* borrowed: Connection value (may be empty) */
    size_t head_len;             /* bytes of the head incl. final CRLF */
};

/* A parsed response head. */
struct sw_http_response {
    unsigned status;      /* 100..999 */
    struct sw_str reason; /* borrowed */
    unsigned version_major;
    unsigned version_minor;
    struct sw_http_header *headers; /* borrowed (caller's array) */
    size_t nheaders;
    size_t headers_cap;       /* caller sets */
    enum sw_http_body body;   /* framing for this response */
    uint64_t content_length;  /* with SW_HTTP_BODY_LENGTH */
    bool keep_alive;          /* upstream connection reusable after */
    struct sw_str connection; /* borrowed: Connection value */
    size_t head_len;          /* bytes of the head */
};

/*
 * Decode a request head from data[0..len). Call again with the same data
 * plus whatever arrived since (the caller's buffer only grows at its end);
 * the decoder keeps no state between calls besides what is in `r`.
 *
 * Returns:
 *   SW_OK        the head is complete: r is filled, r->head_len bytes used
 *   SW_AGAIN     incomplete so far, and within the limits
 *   SW_ETOOBIG   a limit was passed; *http_status is 414 or 431
 *   SW_EPROTO    malformed or ambiguous; *http_status is 400, 405 (CONNECT),
 *                501 (unknown transfer coding) or 505 (not HTTP/1.x)
 * `*why` (if not NULL) is set to a short static reason for the log.
 *
 * Details: 501 also answers a well-formed method http-parser does not know;
 * 505 answers any version but 1.0 and 1.1 (so "PRI * HTTP/2.0"). Leading
 * empty lines are skipped (RFC 9112 2.2) and count in head_len. Any repeated
 * Content-Length is refused (400), identical or not, as http-parser does;
 * so is a second Connection field. "Content-Length: 0" gives
 * SW_HTTP_BODY_NONE with content_length 0. r->path of an absolute-form
 * target "http://h" is the static string "/"; r->host is always the Host
 * field (the target's authority is not copied into it). A Transfer-Encoding
 * other than exactly "chunked": 400 if chunked is absent, repeated or not
 * final, else 501 ("gzip, chunked"). `lim` must not be NULL; headers_cap
 * below max_headers acts as the header limit (431).
 */
enum sw_status sw_http_request_decode(struct sw_http_request *r,
                                      const char *data, size_t len,
                                      const struct sw_http_limits *lim,
                                      int *http_status, const char **why);

/*
 * Decode a response head. `request_method_id` is the method the response
 * answers (HEAD means no body whatever the headers say).
 * Returns SW_OK, SW_AGAIN, SW_ETOOBIG or SW_EPROTO (not HTTP/1.x, bad
 * framing, garbage) with `*why` set.
 *
 * Details: the byte rules are the request's; the status line limit is
 * lim->max_request_line. Content-Length with Transfer-Encoding, a repeated
 * Content-Length and Transfer-Encoding on HTTP/1.0 are SW_EPROTO. chunked
 * as final coding gives SW_HTTP_BODY_CHUNKED (earlier codings stay in the
 * payload), another final coding SW_HTTP_BODY_TO_CLOSE. 1xx, 204, 304 and
 * answers to HEAD get SW_HTTP_BODY_NONE (content_length still reports a
 * Content-Length). keep_alive is false for TO_CLOSE and for 101.
 */
enum sw_status sw_http_response_decode(struct sw_http_response *resp,
                                       const char *data, size_t len,
                                       const struct sw_http_limits *lim,
                                       int request_method_id, const char **why);

/* http-parser's value for HEAD, GET and CONNECT. */
int sw_http_method_head(void);
int sw_http_method_get(void);
int sw_http_method_connect(void);

/* True when s is an RFC 9110 5.6.2 token (a valid field name). */
bool sw_http_is_token(struct sw_str s);

/* The query of a request target, without '?' (empty when none). */
struct sw_str sw_http_query(struct sw_str target);

/* In a list of "name=value" pairs cut by sep ('&' for a query, ';' for a
 * Cookie field; blanks before a name skipped), the raw value of `name`
 * into *value (empty for a bare "name"). True when present. */
bool sw_http_param(struct sw_str list, char sep, struct sw_str name,
                   struct sw_str *value);

/* Find a header by name (case-insensitive); NULL if absent. */
const struct sw_http_header *sw_http_find(const struct sw_http_header *h,
                                          size_t n, const char *name);

/*
 * Hop-by-hop headers (RFC 9110 section 7.6.1): Connection, Keep-Alive,
 * Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
 * Transfer-Encoding, Upgrade, plus every name listed in `connection` (the
 * message's Connection value).
 */
bool sw_http_is_hop_by_hop(struct sw_str name, struct sw_str connection);

/* Resumable chunked-body decoder (RFC 9112 section 7.1). */
struct sw_http_chunked {
    int state;          /* private */
    uint64_t remaining; /* private: data bytes left in this chunk */
    size_t line_len;    /* private: bytes of the current size/trailer line */
    uint64_t total;     /* data bytes decoded so far */
};

void sw_http_chunked_init(struct sw_http_chunked *ch);

/*
 * Consume bytes of a chunked body from in[0..len). On return *consumed bytes
 * were used and `*data` is a slice (possibly empty) of chunk payload inside
 * them, to be forwarded; call again with the rest. Trailer fields are read
 * and dropped.
 *
 * Returns:
 *   SW_AGAIN   more body to come (all of in may have been consumed)
 *   SW_OK      the last chunk and trailers ended; *consumed excludes any
 *              bytes after the body (a pipelined next message)
 *   SW_EPROTO  malformed chunk framing, a size that overflows, a line too long
 */
enum sw_status sw_http_chunked_decode(struct sw_http_chunked *ch,
                                      const char *in, size_t len,
                                      size_t *consumed, struct sw_str *data);

/* Head serialisation into a fixed buffer; overflow is sticky. */
struct sw_http_writer {
    char *p;       /* borrowed: output buffer */
    size_t len;    /* bytes written */
    size_t cap;    /* capacity of p */
    bool overflow; /* a write did not fit; output is unusable */
};

void sw_http_writer_init(struct sw_http_writer *w, char *out, size_t cap);
void sw_http_write(struct sw_http_writer *w, const char *s, size_t n);
void sw_http_write_str(struct sw_http_writer *w, struct sw_str s);
void sw_http_write_cstr(struct sw_http_writer *w, const char *s);
void sw_http_write_u64(struct sw_http_writer *w, uint64_t v);
/* "Name: value\r\n" */
void sw_http_write_header(struct sw_http_writer *w, struct sw_str name,
                          struct sw_str value);

/* Chunk size line "1a2b\r\n" into out (at least 20 bytes); returns length. */
size_t sw_http_chunk_header(char *out, uint64_t size);

/*
 * PROXY protocol header (HAProxy's doc/proxy-protocol.txt), sent by a load
 * balancer before the client's first byte to carry the client's address.
 */
#define SW_PROXYPROTO_V1_MAX 107     /* whole v1 line incl. CRLF (doc 2.1) */
#define SW_PROXYPROTO_V2_FIXED 16    /* signature, ver/cmd, fam, length */
#define SW_PROXYPROTO_V2_MAX 536     /* default bound: HAProxy's advice */
#define SW_PROXYPROTO_V2_MIN_MAX 232 /* smallest bound: a UNIX v2 header */

struct sw_proxyproto {
    size_t len;         /* header bytes, on SW_OK; the client's start after */
    unsigned version;   /* 1 or 2 */
    bool local;         /* keep the connection's own addresses: v1 UNKNOWN,
                           v2 LOCAL, v2 UNSPEC or UNIX family */
    int family;         /* AF_INET or AF_INET6 when !local */
    uint8_t src[16];    /* client address, network order (4 or 16 bytes) */
    uint8_t dst[16];    /* address the client connected to */
    uint16_t sport;     /* client port, host order */
    uint16_t dport;     /* destination port, host order */
    const char *reason; /* static: why, with SW_EPROTO */
};

/*
 * Decode a PROXY header from data[0..len), the connection's first bytes;
 * call again with the same bytes plus what arrived since. `max` bounds a v2
 * header (raised to SW_PROXYPROTO_V2_MIN_MAX if below); v1 is bounded at
 * 107 bytes by the spec. TLVs are checked to fit and skipped.
 *
 * Returns:
 *   SW_OK      complete: pp is filled, pp->len bytes are the header
 *   SW_AGAIN   a valid prefix so far: more bytes needed
 *   SW_EPROTO  not a PROXY header, malformed or over the bound; pp->reason
 *              says which (known as early as the bytes allow)
 */
enum sw_status sw_http_proxyproto_decode(struct sw_proxyproto *pp,
                                         const void *data, size_t len,
                                         size_t max);

/* The carried client address and port as text into host/port; returns the
 * length of host, 0 for a `local` header (nothing to replace). */
size_t sw_http_proxyproto_addr_text(const struct sw_proxyproto *pp, char *host,
                                    size_t hostlen, char *port, size_t portlen);

/* Reason phrase for a status code ("Bad Gateway"); "Unknown" if none. */
const char *sw_http_reason(unsigned status);

#endif
