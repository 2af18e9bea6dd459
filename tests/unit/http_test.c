/*
 * http_test.c - Check suite for lib/http's request heads: the request
 * vectors, the header and head limits, http-parser's cap and the methods.
 * Responses, chunked bodies and the writer are in http_response_test.c.
 *
 * Every codec vector is fed three ways (STYLE.md, after wslay's
 * scripted_data_feed): whole, as a buffer growing one byte at a time, and
 * growing at random split points (seeded, so failures reproduce). Each call
 * sees a fresh copy of its input flush against a PROT_NONE page, so a read
 * past the end crashes (after picohttpparser's test.c).
 *
 * For a head, a growing buffer must give SW_AGAIN until the answer is known
 * and then the final answer at every longer prefix: a refusal may come
 * early (a bare LF, a limit passed), never a different one.
 */
#include <shockwave/http.h>

#include <check.h>

#include "http_cases.h"
#include "support.h"

/* ------------------------------------------------------------------ */
/* Requests                                                           */
/* ------------------------------------------------------------------ */

struct req_vec {
    const char *name;        /* for failure messages */
    const char *data;        /* bytes fed (may hold NUL) */
    size_t len;              /* bytes of data */
    enum sw_status st;       /* expected final status */
    int http_status;         /* expected *http_status on refusal */
    size_t after;            /* bytes after the head (body, next) */
    const char *method;      /* expected on SW_OK, NULL: skip */
    const char *path;        /* expected on SW_OK, NULL: skip */
    const char *host;        /* expected on SW_OK, NULL: skip */
    const char *authority;   /* expected on SW_OK, NULL: skip */
    const char *origin;      /* expected on SW_OK, NULL: skip */
    enum sw_http_body body;  /* expected framing */
    uint64_t content_length; /* expected with LENGTH */
    bool closes;             /* expected !keep_alive */
    bool upgrade;            /* expected */
    bool expect_continue;    /* expected */
    bool http10;             /* expected version_minor 0, else 1 */
    bool check_nheaders;     /* compare nheaders */
    size_t nheaders;         /* expected count */
};

#define NH(n) .check_nheaders = true, .nheaders = (n)

#define OK_REQ(n, lit, ...)                                                    \
    {                                                                          \
        .name = (n), V(lit), .st = SW_OK, __VA_ARGS__                          \
    }
#define BAD_REQ(n, lit, code)                                                  \
    {                                                                          \
        .name = (n), V(lit),                                                   \
        .st = (code) == 414 || (code) == 431 ? SW_ETOOBIG : SW_EPROTO,         \
        .http_status = (code)                                                  \
    }

static const struct req_vec req_vecs[] = {
    OK_REQ("simple get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", .method = "GET",
           .path = "/", .host = "a", .authority = "", .origin = "/", NH(1)),
    OK_REQ("query and port",
           "GET /p/q?x=1&y=2 HTTP/1.1\r\nHost: example.com:8080\r\n"
           "User-Agent: t/1\r\n\r\n",
           .path = "/p/q", .host = "example.com:8080", NH(2)),
    OK_REQ("http/1.0 no host", "GET / HTTP/1.0\r\n\r\n", .http10 = true,
           .closes = true, NH(0)),
    OK_REQ("http/1.0 keep-alive",
           "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", .http10 = true),
    OK_REQ("http/1.1 close",
           "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
           .closes = true),
    OK_REQ("close among tokens",
           "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n",
           .closes = true),
    OK_REQ("post with length and body",
           "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"
           "hello world",
           .after = 11, .method = "POST", .body = SW_HTTP_BODY_LENGTH,
           .content_length = 11),
    OK_REQ("content-length zero",
           "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
           .body = SW_HTTP_BODY_NONE),
    OK_REQ("content-length max",
           "POST / HTTP/1.1\r\nHost: a\r\n"
           "Content-Length: 9223372036854775807\r\n\r\n",
           .body = SW_HTTP_BODY_LENGTH,
           .content_length = 9223372036854775807ull),
    OK_REQ("content-length leading zeros",
           "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
           .body = SW_HTTP_BODY_LENGTH, .content_length = 7),
    OK_REQ("chunked",
           "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
           .body = SW_HTTP_BODY_CHUNKED),
    OK_REQ("chunked case and ows",
           "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  ChUnKeD \t\r\n"
           "\r\n",
           .body = SW_HTTP_BODY_CHUNKED),
    OK_REQ("chunked with empty list elements",
           "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked,\r\n"
           "\r\n",
           .body = SW_HTTP_BODY_CHUNKED),
    OK_REQ("websocket upgrade",
           "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
           "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
           .path = "/ws", .upgrade = true, NH(4)),
    OK_REQ("upgrade header without connection token",
           "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
           .upgrade = false),
    OK_REQ("connection upgrade without upgrade header",
           "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n",
           .upgrade = false),
    OK_REQ("expect 100-continue",
           "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
           "Content-Length: 3\r\n\r\n",
           .method = "PUT", .expect_continue = true,
           .body = SW_HTTP_BODY_LENGTH, .content_length = 3),
    OK_REQ("absolute-form",
           "GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n",
           .path = "/p", .host = "example.com", .authority = "example.com",
           .origin = "/p?q"),
    OK_REQ("absolute-form https with port",
           "GET HTTPS://example.com:8443/a/b HTTP/1.1\r\nHost: x\r\n\r\n",
           .path = "/a/b", .host = "x", .authority = "example.com:8443",
           .origin = "/a/b"),
    OK_REQ("absolute-form without path",
           "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
           .path = "/", .authority = "example.com", .origin = "/"),
    OK_REQ("absolute-form with a query and no path",
           "GET http://example.com?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
           .path = "/", .authority = "example.com", .origin = "?x=1"),
    OK_REQ("options asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
           .method = "OPTIONS", .path = "*"),
    OK_REQ("leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
           .path = "/"),
    OK_REQ("ows trimmed", "GET / HTTP/1.1\r\nHost: \t a \t\r\n\r\n",
           .host = "a"),
    OK_REQ("empty value and empty host",
           "GET / HTTP/1.1\r\nHost:\r\nX-Empty:\r\n\r\n", .host = "", NH(2)),
    OK_REQ("tab and obs-text in value",
           "GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\x80\xff\r\n\r\n"),
    OK_REQ("all tchars in name",
           "GET / HTTP/1.1\r\nHost: a\r\nX-A!#$%&'*+.^_`|~9: v\r\n\r\n"),
    OK_REQ("pipelined second request",
           "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n"
           "\r\n",
           .after = 28, .path = "/1"),
    OK_REQ("delete", "DELETE /r HTTP/1.1\r\nHost: a\r\n\r\n",
           .method = "DELETE"),
    OK_REQ(
        "request line at limit",
        "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n"
        "Host: a\r\n\r\n"),
    OK_REQ("headers at limit",
           "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"
           "E: 5\r\nF: 6\r\nG: 7\r\n\r\n",
           NH(8)),

    /* Bare LF and bare CR, anywhere in the head (RFC 9112 2.2). */
    BAD_REQ("bare lf after request line", "GET / HTTP/1.1\nHost: a\r\n\r\n",
            400),
    BAD_REQ("bare lf after field", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
    BAD_REQ("bare lf everywhere", "GET / HTTP/1.1\nHost: a\n\n", 400),
    BAD_REQ("bare lf ends head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
    BAD_REQ("leading bare lf", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD_REQ("bare cr in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
            400),
    BAD_REQ("bare cr in request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n",
            400),
    BAD_REQ("bare cr ends head", "GET / HTTP/1.1\r\nHost: a\r\n\rX\r\n\r\n",
            400),
    BAD_REQ("cr cr lf", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", 400),
    /* obs-fold (RFC 9112 5.2) */
    BAD_REQ("obs-fold space", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
            400),
    BAD_REQ("obs-fold tab", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n",
            400),
    BAD_REQ("space before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
            400),
    /* control bytes */
    BAD_REQ("nul in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
            400),
    BAD_REQ("nul in request line", "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD_REQ("soh in value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n",
            400),
    BAD_REQ("del in value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n",
            400),
    BAD_REQ("esc in name", "GET / HTTP/1.1\r\nHost: a\r\nX\x1b: 1\r\n\r\n",
            400),
    BAD_REQ("tab in request line", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD_REQ("obs-text in target", "GET /\xe9 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    /* field names */
    BAD_REQ("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    BAD_REQ("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400),
    BAD_REQ("empty name", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", 400),
    BAD_REQ("paren in name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): v\r\n\r\n",
            400),
    BAD_REQ("at in name", "GET / HTTP/1.1\r\nHost: a\r\nX@y: v\r\n\r\n", 400),
    BAD_REQ("obs-text in name",
            "GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: v\r\n\r\n", 400),
    BAD_REQ("no colon", "GET / HTTP/1.1\r\nHost: a\r\nFoo\r\n\r\n", 400),
    /* framing */
    BAD_REQ("cl then te",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
            "Transfer-Encoding: chunked\r\n\r\n",
            400),
    BAD_REQ("te then cl",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            "Content-Length: 3\r\n\r\n",
            400),
    BAD_REQ("differing cl",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
            "Content-Length: 4\r\n\r\n",
            400),
    BAD_REQ("identical cl",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
            "Content-Length: 3\r\n\r\n",
            400),
    BAD_REQ("cl list",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n"
            "\r\n",
            400),
    BAD_REQ("cl letters",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 400),
    BAD_REQ("cl negative",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
    BAD_REQ("cl plus",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n"
            "\r\n",
            400),
    BAD_REQ("cl hex",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n"
            "\r\n",
            400),
    BAD_REQ("cl inner space",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400),
    BAD_REQ("cl empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
            400),
    BAD_REQ("cl above int64",
            "POST / HTTP/1.1\r\nHost: a\r\n"
            "Content-Length: 9223372036854775808\r\n\r\n",
            400),
    BAD_REQ("cl overflows uint64",
            "POST / HTTP/1.1\r\nHost: a\r\n"
            "Content-Length: 99999999999999999999999\r\n\r\n",
            400),
    BAD_REQ("te on http/1.0",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    BAD_REQ("te gzip then chunked",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n"
            "\r\n",
            501),
    BAD_REQ("te split over two fields, chunked last",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
            "Transfer-Encoding: chunked\r\n\r\n",
            501),
    BAD_REQ("te split over two fields, chunked first",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            "Transfer-Encoding: gzip\r\n\r\n",
            400),
    BAD_REQ("te gzip only",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            400),
    BAD_REQ("te identity",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
            400),
    BAD_REQ("te chunked then gzip",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n"
            "\r\n",
            400),
    BAD_REQ("te chunked twice",
            "POST / HTTP/1.1\r\nHost: a\r\n"
            "Transfer-Encoding: chunked, chunked\r\n\r\n",
            400),
    BAD_REQ("te chunked with parameter",
            "POST / HTTP/1.1\r\nHost: a\r\n"
            "Transfer-Encoding: chunked;q=1\r\n\r\n",
            400),
    BAD_REQ("te empty",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", 400),
    BAD_REQ("te not a token",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n"
            "\r\n",
            400),
    BAD_REQ("te suffix",
            "POST / HTTP/1.1\r\nHost: a\r\n"
            "Transfer-Encoding: xchunked\r\n\r\n",
            400),
    /* Host */
    BAD_REQ("missing host", "GET / HTTP/1.1\r\nX: 1\r\n\r\n", 400),
    BAD_REQ("two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    BAD_REQ("two hosts on 1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
            400),
    BAD_REQ("host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    BAD_REQ("host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
    BAD_REQ("host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    BAD_REQ("two connection fields",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n"
            "Connection: x-secret\r\n\r\n",
            400),
    /* request line and target */
    BAD_REQ("relative target", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD_REQ("asterisk outside options", "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
            400),
    BAD_REQ("asterisk with more", "OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n",
            400),
    BAD_REQ("fragment", "GET /a#f HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD_REQ("ftp scheme", "GET ftp://h/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD_REQ("userinfo in target", "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
            400),
    BAD_REQ("authority-form on get",
            "GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD_REQ("connect",
            "CONNECT example.com:443 HTTP/1.1\r\n"
            "Host: example.com:443\r\n\r\n",
            405),
    BAD_REQ("http/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    BAD_REQ("http/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
    BAD_REQ("http/0.9 version", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
    BAD_REQ("h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    BAD_REQ("version garbage", "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400),
    BAD_REQ("version lower case", "GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    BAD_REQ("version missing", "GET /\r\nHost: a\r\n\r\n", 400),
    BAD_REQ("trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    BAD_REQ("double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD_REQ("leading space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD_REQ("unknown method", "FOO / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    BAD_REQ("lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    BAD_REQ("bad byte in method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    /* limits (lim_small: line 64, head 512, 8 fields) */
    BAD_REQ(
        "request line over limit",
        "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n"
        "Host: a\r\n\r\n",
        414),
    BAD_REQ(
        "request line over limit, incomplete",
        "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        414),
    BAD_REQ(
        "request line over limit, cr pending",
        "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r",
        414),
    BAD_REQ("too many fields",
            "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"
            "E: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\n\r\n",
            431),
    BAD_REQ("too many fields, incomplete",
            "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"
            "E: 5\r\nF: 6\r\nG: 7\r\nH",
            431),
    BAD_REQ("bare lf before a limit",
            "GET / HTTP/1.1\r\nHost: a\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"
            "E: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\n\r\n",
            400),
};

/* Decode data[0..n) from a guarded copy; check the call's answer against
 * the vector. `final` says whether this is the full input. Returns the
 * status. */
static enum sw_status
req_step(const struct req_vec *v, const struct sw_http_limits *lim, size_t n,
         const char *how)
{
    struct sw_http_header hdrs[NHDR];
    struct sw_http_request r;
    size_t head_len = v->len - v->after;
    char *buf = sw_test_guard_copy(v->data, n);
    int code = -1;
    const char *why = "unset";
    enum sw_status st;

    memset(&r, 0xa5, sizeof(r)); /* no field may survive from before */
    r.headers = hdrs;
    r.headers_cap = NHDR;
    st = sw_http_request_decode(&r, buf, n, lim, &code, &why);

    if (v->st == SW_OK) {
        ck_assert_msg(st == (n >= head_len ? SW_OK : SW_AGAIN),
                      "%s (%s): %zu of %zu bytes gave %s (%s)", v->name, how, n,
                      v->len, sw_strerror(st), why ? why : "");
    } else if (n == v->len) {
        ck_assert_msg(st == v->st && code == v->http_status,
                      "%s (%s): whole gave %s/%d (%s), want %s/%d", v->name,
                      how, sw_strerror(st), code, why ? why : "",
                      sw_strerror(v->st), v->http_status);
    } else {
        ck_assert_msg(st == SW_AGAIN || (st == v->st && code == v->http_status),
                      "%s (%s): %zu of %zu bytes gave %s/%d (%s)", v->name, how,
                      n, v->len, sw_strerror(st), code, why ? why : "");
    }
    if (st == SW_AGAIN) {
        ck_assert_int_eq(code, 0);
        ck_assert_ptr_null(why);
        ck_assert_uint_eq(r.nheaders, 0);
    } else if (st != SW_OK) {
        ck_assert_ptr_nonnull(why);
    }
    if (st == SW_OK) {
        ck_assert_ptr_null(why);
        ck_assert_uint_eq(r.head_len, head_len);
        ck_assert_uint_eq(r.version_major, 1);
        ck_assert_uint_eq(r.version_minor, v->http10 ? 0 : 1);
        ck_assert_int_eq(r.body, v->body);
        if (v->body == SW_HTTP_BODY_LENGTH) {
            ck_assert_uint_eq(r.content_length, v->content_length);
        }
        ck_assert_msg(r.keep_alive == !v->closes, "%s: keep_alive", v->name);
        ck_assert_msg(r.upgrade == v->upgrade, "%s: upgrade", v->name);
        ck_assert_msg(r.expect_continue == v->expect_continue, "%s: expect",
                      v->name);
        if (v->method != NULL) {
            ck_assert_msg(slice_is(r.method, v->method), "%s: method", v->name);
        }
        ck_assert_int_ge(r.method_id, 0);
        if (v->path != NULL) {
            ck_assert_msg(slice_is(r.path, v->path), "%s: path '%.*s'", v->name,
                          (int)r.path.len, r.path.p);
        }
        if (v->host != NULL) {
            ck_assert_msg(slice_is(r.host, v->host), "%s: host", v->name);
            ck_assert(r.host.p >= buf && r.host.p + r.host.len <= buf + n);
        }
        if (v->authority != NULL) {
            ck_assert_msg(slice_is(r.authority, v->authority),
                          "%s: authority \"%.*s\"", v->name,
                          (int)r.authority.len, r.authority.p);
        }
        if (v->origin != NULL) {
            ck_assert_msg(slice_is(r.origin, v->origin), "%s: origin \"%.*s\"",
                          v->name, (int)r.origin.len, r.origin.p);
        }
        if (v->check_nheaders) {
            ck_assert_uint_eq(r.nheaders, v->nheaders);
        }
        if (v->upgrade) {
            ck_assert(slice_is(r.upgrade_proto, "websocket"));
        }
        /* Every slice points into the caller's buffer. */
        ck_assert(r.target.p > buf && r.target.p + r.target.len <= buf + n);
        for (size_t i = 0; i < r.nheaders; i++) {
            ck_assert(r.headers[i].name.p >= buf &&
                      r.headers[i].value.p + r.headers[i].value.len <= buf + n);
            ck_assert_uint_gt(r.headers[i].name.len, 0);
        }
    }
    sw_test_guard_free(buf, n);
    return st;
}

/* Feed whole, one byte at a time, and at random split points. Once a
 * refusal shows, every longer prefix must give the same one. */
static void
req_feed(const struct req_vec *v, const struct sw_http_limits *lim)
{
    struct sw_test_rng rng;
    enum sw_status seen;

    req_step(v, lim, v->len, "whole");
    seen = SW_AGAIN;
    for (size_t n = 0; n <= v->len; n++) {
        enum sw_status st = req_step(v, lim, n, "bytewise");
        ck_assert_msg(seen == SW_AGAIN || st == seen,
                      "%s: answer changed at %zu", v->name, n);
        seen = st;
    }
    sw_test_rng_init(&rng, 0x5eed0000u + v->len);
    for (int round = 0; round < RANDOM_ROUNDS; round++) {
        size_t n = 0;
        seen = SW_AGAIN;
        while (n < v->len) {
            n += 1 + sw_test_rng_below(&rng, v->len - n);
            enum sw_status st = req_step(v, lim, n, "random");
            ck_assert_msg(seen == SW_AGAIN || st == seen,
                          "%s: answer changed at %zu", v->name, n);
            seen = st;
        }
    }
}

START_TEST(test_request_vectors)
{
    req_feed(&req_vecs[_i], &lim_small);
}
END_TEST

/* A caller's header array smaller than max_headers is the limit. */
START_TEST(test_request_headers_cap)
{
    static const char req[] =
        "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    struct sw_http_header hdrs[2];
    struct sw_http_request r = {.headers = hdrs, .headers_cap = 2};
    char *buf = sw_test_guard_copy(req, sizeof(req) - 1);
    int code = 0;
    const char *why = NULL;

    ck_assert_int_eq(sw_http_request_decode(&r, buf, sizeof(req) - 1,
                                            &lim_small, &code, &why),
                     SW_ETOOBIG);
    ck_assert_int_eq(code, 431);
    ck_assert_str_eq(why, "too many header fields");
    sw_test_guard_free(buf, sizeof(req) - 1);

    /* No array at all: no field fits. */
    buf = sw_test_guard_copy(req, sizeof(req) - 1);
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(sw_http_request_decode(&r, buf, sizeof(req) - 1,
                                            &lim_small, &code, NULL),
                     SW_ETOOBIG);
    ck_assert_int_eq(code, 431);
    sw_test_guard_free(buf, sizeof(req) - 1);
}
END_TEST

/* Head size: exactly max_head passes, one byte more is 431, and a head
 * that never ends is 431 as soon as max_head bytes are in. */
static void
fill_head(char *out, size_t total, bool complete)
{
    static const char start[] = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    size_t n = sizeof(start) - 1;
    memcpy(out, start, n);
    memset(out + n, 'v', total - n);
    if (complete) {
        memcpy(out + total - 4, "\r\n\r\n", 4);
    }
}

START_TEST(test_request_head_limit)
{
    char data[600];
    struct req_vec v = {.name = "head at limit",
                        .data = data,
                        .len = 512,
                        .st = SW_OK,
                        NH(2),
                        .host = "a"};

    fill_head(data, 512, true);
    req_feed(&v, &lim_small);

    fill_head(data, 513, true);
    v = (struct req_vec){.name = "head over limit",
                         .data = data,
                         .len = 513,
                         .st = SW_ETOOBIG,
                         .http_status = 431};
    req_feed(&v, &lim_small);

    fill_head(data, 600, false);
    v = (struct req_vec){.name = "endless head",
                         .data = data,
                         .len = 600,
                         .st = SW_ETOOBIG,
                         .http_status = 431};
    req_feed(&v, &lim_small);
    /* Already at 512 bytes the answer is known. */
    v.len = 512;
    req_step(&v, &lim_small, 512, "at max_head");
}
END_TEST

/* A head far over http-parser's own 80 KiB cap is reported as a limit. */
START_TEST(test_request_http_parser_cap)
{
    static const struct sw_http_limits big = {
        .max_head = 200000, .max_request_line = 8192, .max_headers = 100};
    size_t len = 90000;
    char *data = malloc(len);
    struct sw_http_header hdrs[NHDR];
    struct sw_http_request r = {.headers = hdrs, .headers_cap = NHDR};
    int code = 0;

    ck_assert_ptr_nonnull(data);
    fill_head(data, len, true);
    char *buf = sw_test_guard_copy(data, len);
    ck_assert_int_eq(sw_http_request_decode(&r, buf, len, &big, &code, NULL),
                     SW_ETOOBIG);
    ck_assert_int_eq(code, 431);
    sw_test_guard_free(buf, len);
    free(data);
}
END_TEST

START_TEST(test_request_methods)
{
    static const char req[] = "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n";
    struct sw_http_header hdrs[4];
    struct sw_http_request r = {.headers = hdrs, .headers_cap = 4};

    ck_assert_int_eq(sw_http_request_decode(&r, req, sizeof(req) - 1,
                                            &lim_small, NULL, NULL),
                     SW_OK);
    ck_assert_int_eq(r.method_id, sw_http_method_head());
    ck_assert_int_ne(sw_http_method_head(), sw_http_method_get());
    ck_assert_int_ne(sw_http_method_connect(), sw_http_method_get());
    ck_assert_int_eq(sw_http_request_decode(&r,
                                            "GET / HTTP/1.1\r\nHost: a\r\n"
                                            "\r\n",
                                            27, &lim_small, NULL, NULL),
                     SW_OK);
    ck_assert_int_eq(r.method_id, sw_http_method_get());
    ck_assert_int_eq(sw_http_request_decode(&r, "", 0, &lim_small, NULL, NULL),
                     SW_AGAIN);
}
END_TEST

static Suite *
http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("request");

    tcase_add_loop_test(tc, test_request_vectors, 0, SW_NELEMS(req_vecs));
    tcase_add_test(tc, test_request_headers_cap);
    tcase_add_test(tc, test_request_head_limit);
    tcase_add_test(tc, test_request_http_parser_cap);
    tcase_add_test(tc, test_request_methods);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(http_suite());
}
