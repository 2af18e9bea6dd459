/*
 * http_response_test.c - Check suite for lib/http's other half: response
 * heads (HEAD answers, framing, limits), the chunked body decoder, the head
 * writer and the small helpers (chunk headers, reasons, hop-by-hop fields,
 * header lookup). Request heads are in http_test.c.
 *
 * Response vectors are fed whole, growing one byte at a time and growing
 * at random split points; chunked bodies arrive in steps as a caller would
 * give them. Each call decodes a fresh copy flush against a PROT_NONE
 * page, so a read past the end crashes.
 */
#include <shockwave/http.h>

#include <check.h>

#include "http_cases.h"
#include "support.h"

/* ------------------------------------------------------------------ */
/* Responses                                                          */
/* ------------------------------------------------------------------ */

struct resp_vec {
    const char *name;        /* for failure messages */
    const char *data;        /* bytes fed */
    size_t len;              /* bytes of data */
    bool head;               /* answers a HEAD request */
    enum sw_status st;       /* expected final status */
    size_t after;            /* bytes after the head */
    unsigned status;         /* expected status code; 0: 200 */
    const char *reason;      /* expected reason, NULL: skip */
    bool http10;             /* expected version_minor 0, else 1 */
    enum sw_http_body body;  /* expected framing */
    uint64_t content_length; /* expected content_length */
    bool closes;             /* expected !keep_alive */
};

#define OK_RESP(n, lit, ...)                                                   \
    {                                                                          \
        .name = (n), V(lit), .st = SW_OK, __VA_ARGS__                          \
    }
#define BAD_RESP(n, lit, code)                                                 \
    {                                                                          \
        .name = (n), V(lit), .st = (code)                                      \
    }

static const struct resp_vec resp_vecs[] = {
    OK_RESP("length with body",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", .after = 5,
            .reason = "OK", .body = SW_HTTP_BODY_LENGTH, .content_length = 5),
    OK_RESP("chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            .body = SW_HTTP_BODY_CHUNKED),
    OK_RESP("gzip then chunked",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            .body = SW_HTTP_BODY_CHUNKED),
    OK_RESP("gzip only is read to close",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            .body = SW_HTTP_BODY_TO_CLOSE, .closes = true),
    OK_RESP("no framing", "HTTP/1.1 200 OK\r\n\r\n",
            .body = SW_HTTP_BODY_TO_CLOSE, .closes = true),
    OK_RESP("1.0 with length", "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n",
            .http10 = true, .body = SW_HTTP_BODY_LENGTH, .content_length = 3,
            .closes = true),
    OK_RESP("1.0 keep-alive",
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
            "Content-Length: 3\r\n\r\n",
            .http10 = true, .body = SW_HTTP_BODY_LENGTH, .content_length = 3),
    OK_RESP("1.1 close",
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\n",
            .body = SW_HTTP_BODY_LENGTH, .content_length = 3, .closes = true),
    OK_RESP("length zero", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            .body = SW_HTTP_BODY_NONE),
    OK_RESP("204", "HTTP/1.1 204 No Content\r\n\r\n", .status = 204,
            .reason = "No Content", .body = SW_HTTP_BODY_NONE),
    OK_RESP("304 with length",
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
            .status = 304, .body = SW_HTTP_BODY_NONE, .content_length = 100),
    OK_RESP("100 continue", "HTTP/1.1 100 Continue\r\n\r\n", .status = 100,
            .body = SW_HTTP_BODY_NONE),
    OK_RESP("101 switching",
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
            "Upgrade: websocket\r\n\r\n",
            .status = 101, .body = SW_HTTP_BODY_NONE, .closes = true),
    OK_RESP("head answer with length",
            "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", .head = true,
            .body = SW_HTTP_BODY_NONE, .content_length = 50),
    OK_RESP("head answer chunked",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            .head = true, .body = SW_HTTP_BODY_NONE),
    OK_RESP("no reason, no space", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
            .reason = "", .body = SW_HTTP_BODY_NONE),
    OK_RESP("empty reason", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
            .status = 404, .reason = "", .body = SW_HTTP_BODY_NONE),
    OK_RESP("reason with tab and obs-text",
            "HTTP/1.1 200 A\tB\xe9\r\nContent-Length: 0\r\n\r\n",
            .reason = "A\tB\xe9", .body = SW_HTTP_BODY_NONE),
    OK_RESP("999", "HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n",
            .status = 999, .body = SW_HTTP_BODY_NONE),
    OK_RESP("leading empty line",
            "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            .body = SW_HTTP_BODY_NONE),

    BAD_RESP("http/2", "HTTP/2 200 OK\r\n\r\n", SW_EPROTO),
    BAD_RESP("http/2.0", "HTTP/2.0 200 OK\r\n\r\n", SW_EPROTO),
    BAD_RESP("icy", "ICY 200 OK\r\n\r\n", SW_EPROTO),
    BAD_RESP("two-digit status", "HTTP/1.1 20 OK\r\n\r\n", SW_EPROTO),
    BAD_RESP("four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", SW_EPROTO),
    BAD_RESP("status 099", "HTTP/1.1 099 X\r\n\r\n", SW_EPROTO),
    BAD_RESP("letters status", "HTTP/1.1 abc X\r\n\r\n", SW_EPROTO),
    BAD_RESP("cl and te",
             "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
             "Transfer-Encoding: chunked\r\n\r\n",
             SW_EPROTO),
    BAD_RESP("differing cl",
             "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n"
             "\r\n",
             SW_EPROTO),
    BAD_RESP("bad cl", "HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\n",
             SW_EPROTO),
    BAD_RESP("te on 1.0",
             "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
             SW_EPROTO),
    BAD_RESP("chunked twice",
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
             SW_EPROTO),
    BAD_RESP("bare lf", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", SW_EPROTO),
    BAD_RESP("bare cr", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", SW_EPROTO),
    BAD_RESP("nul in value", "HTTP/1.1 200 OK\r\nX: \0\r\n\r\n", SW_EPROTO),
    BAD_RESP("nul in reason", "HTTP/1.1 200 O\0K\r\n\r\n", SW_EPROTO),
    BAD_RESP("obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", SW_EPROTO),
    BAD_RESP("space before colon",
             "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", SW_EPROTO),
    BAD_RESP("status line over limit",
             "HTTP/1.1 200 OKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK"
             "KKKKKKKKKKKKKKKKK",
             SW_ETOOBIG),
    BAD_RESP("too many fields",
             "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n"
             "F: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\n\r\n",
             SW_ETOOBIG),
};

static enum sw_status
resp_step(const struct resp_vec *v, size_t n, const char *how)
{
    struct sw_http_header hdrs[NHDR];
    struct sw_http_response resp;
    size_t head_len = v->len - v->after;
    char *buf = sw_test_guard_copy(v->data, n);
    const char *why = "unset";
    int method = v->head ? sw_http_method_head() : sw_http_method_get();
    enum sw_status st;

    memset(&resp, 0xa5, sizeof(resp));
    resp.headers = hdrs;
    resp.headers_cap = NHDR;
    st = sw_http_response_decode(&resp, buf, n, &lim_small, method, &why);
    if (v->st == SW_OK) {
        ck_assert_msg(st == (n >= head_len ? SW_OK : SW_AGAIN),
                      "%s (%s): %zu of %zu bytes gave %s (%s)", v->name, how, n,
                      v->len, sw_strerror(st), why ? why : "");
    } else if (n == v->len) {
        ck_assert_msg(st == v->st, "%s (%s): whole gave %s (%s)", v->name, how,
                      sw_strerror(st), why ? why : "");
    } else {
        ck_assert_msg(st == SW_AGAIN || st == v->st,
                      "%s (%s): %zu of %zu bytes gave %s (%s)", v->name, how, n,
                      v->len, sw_strerror(st), why ? why : "");
    }
    if (st != SW_OK && st != SW_AGAIN) {
        ck_assert_ptr_nonnull(why);
    }
    if (st == SW_OK) {
        ck_assert_uint_eq(resp.head_len, head_len);
        ck_assert_uint_eq(resp.status, v->status != 0 ? v->status : 200);
        ck_assert_uint_eq(resp.version_major, 1);
        ck_assert_uint_eq(resp.version_minor, v->http10 ? 0 : 1);
        ck_assert_msg(resp.body == v->body, "%s: body %d", v->name, resp.body);
        ck_assert_uint_eq(resp.content_length, v->content_length);
        ck_assert_msg(resp.keep_alive == !v->closes, "%s: keep_alive", v->name);
        if (v->reason != NULL) {
            ck_assert_msg(slice_is(resp.reason, v->reason), "%s: reason",
                          v->name);
        }
    }
    sw_test_guard_free(buf, n);
    return st;
}

START_TEST(test_response_vectors)
{
    const struct resp_vec *v = &resp_vecs[_i];
    struct sw_test_rng rng;
    enum sw_status seen = SW_AGAIN;

    resp_step(v, v->len, "whole");
    for (size_t n = 0; n <= v->len; n++) {
        enum sw_status st = resp_step(v, n, "bytewise");
        ck_assert_msg(seen == SW_AGAIN || st == seen,
                      "%s: answer changed at %zu", v->name, n);
        seen = st;
    }
    sw_test_rng_init(&rng, 0xbeef0000u + v->len);
    for (int round = 0; round < RANDOM_ROUNDS; round++) {
        size_t n = 0;
        seen = SW_AGAIN;
        while (n < v->len) {
            n += 1 + sw_test_rng_below(&rng, v->len - n);
            enum sw_status st = resp_step(v, n, "random");
            ck_assert_msg(seen == SW_AGAIN || st == seen,
                          "%s: answer changed at %zu", v->name, n);
            seen = st;
        }
    }
}
END_TEST

START_TEST(test_response_headers)
{
    static const char data[] = "HTTP/1.1 200 OK\r\nServer:  x \r\n"
                               "Connection: keep-alive, X-Hop\r\n"
                               "X-Hop: 1\r\nContent-Length: 2\r\n\r\n";
    struct sw_http_header hdrs[8];
    struct sw_http_response resp = {.headers = hdrs, .headers_cap = 8};
    char *buf = sw_test_guard_copy(data, sizeof(data) - 1);
    const struct sw_http_header *h;

    ck_assert_int_eq(sw_http_response_decode(&resp, buf, sizeof(data) - 1,
                                             &lim_small, sw_http_method_get(),
                                             NULL),
                     SW_OK);
    ck_assert_uint_eq(resp.nheaders, 4);
    h = sw_http_find(resp.headers, resp.nheaders, "SERVER");
    ck_assert_ptr_nonnull(h);
    ck_assert(slice_is(h->value, "x"));
    ck_assert_ptr_null(sw_http_find(resp.headers, resp.nheaders, "Serv"));
    ck_assert(slice_is(resp.connection, "keep-alive, X-Hop"));
    ck_assert(sw_http_is_hop_by_hop(resp.headers[2].name, resp.connection));
    ck_assert(!sw_http_is_hop_by_hop(resp.headers[0].name, resp.connection));
    ck_assert(!sw_http_is_hop_by_hop(resp.headers[3].name, resp.connection));
    sw_test_guard_free(buf, sizeof(data) - 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Chunked bodies                                                     */
/* ------------------------------------------------------------------ */

struct chunk_vec {
    const char *name;    /* for failure messages */
    const char *data;    /* body bytes fed */
    size_t len;          /* bytes of data */
    enum sw_status st;   /* SW_OK or SW_EPROTO */
    const char *payload; /* expected decoded data with SW_OK */
    size_t payload_len;  /* bytes of payload */
    size_t after;        /* bytes after the body, never consumed */
};

#define OK_CHUNK(n, lit, pay, ...)                                             \
    {                                                                          \
        .name = (n), V(lit), .st = SW_OK, .payload = (pay),                    \
        .payload_len = sizeof(pay) - 1, __VA_ARGS__                            \
    }
#define BAD_CHUNK(n, lit)                                                      \
    {                                                                          \
        .name = (n), V(lit), .st = SW_EPROTO                                   \
    }

static const struct chunk_vec chunk_vecs[] = {
    OK_CHUNK("one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"),
    OK_CHUNK("three chunks", "3\r\nabc\r\n4\r\ndefg\r\n1\r\nh\r\n0\r\n\r\n",
             "abcdefgh"),
    OK_CHUNK("empty body", "0\r\n\r\n", ""),
    OK_CHUNK("hex digits", "A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0\r\n\r\n",
             "0123456789abcdefghijk"),
    OK_CHUNK("leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello"),
    OK_CHUNK("sixteen digits", "0000000000000001\r\nx\r\n0\r\n\r\n", "x"),
    OK_CHUNK("extension", "5;name=value\r\nhello\r\n0;last\r\n\r\n", "hello"),
    OK_CHUNK("extension with bws", "5 \t; a=b\r\nhello\r\n0\r\n\r\n", "hello"),
    OK_CHUNK("quoted extension", "5;a=\"b c\\\"\"\r\nhello\r\n0\r\n\r\n",
             "hello"),
    OK_CHUNK("trailers", "2\r\nhi\r\n0\r\nX-T: 1\r\nChecksum:  abc \r\n\r\n",
             "hi"),
    OK_CHUNK("empty trailer value", "0\r\nX:\r\n\r\n", ""),
    OK_CHUNK("data holds crlf", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"),
    OK_CHUNK("pipelined request after",
             "1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n", "a", .after = 18),
    OK_CHUNK("pipelined after trailers", "0\r\nA: b\r\n\r\nXYZ", "",
             .after = 3),
    OK_CHUNK("binary payload", "3\r\n\0\xff\n\r\n0\r\n\r\n", "\0\xff\n"),

    BAD_CHUNK("seventeen digits", "00000000000000001\r\nx\r\n0\r\n\r\n"),
    BAD_CHUNK("overflow", "ffffffffffffffff0\r\n"),
    BAD_CHUNK("no crlf after data", "5\r\nhelloX\r\n0\r\n\r\n"),
    BAD_CHUNK("lf only after data", "5\r\nhello\n0\r\n\r\n"),
    BAD_CHUNK("cr only after data", "5\r\nhello\r0\r\n\r\n"),
    BAD_CHUNK("bare lf after size", "5\nhello\r\n0\r\n\r\n"),
    BAD_CHUNK("bare cr after size", "5\rhello\r\n0\r\n\r\n"),
    BAD_CHUNK("empty size", "\r\nhello\r\n0\r\n\r\n"),
    BAD_CHUNK("not hex", "g\r\n"),
    BAD_CHUNK("negative", "-5\r\nhello\r\n"),
    BAD_CHUNK("space then garbage", "5 x\r\nhello\r\n0\r\n\r\n"),
    BAD_CHUNK("leading space", " 5\r\nhello\r\n0\r\n\r\n"),
    BAD_CHUNK("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"),
    BAD_CHUNK("nul in extension", "5;a\0\r\nhello\r\n0\r\n\r\n"),
    BAD_CHUNK("bare lf in extension", "5;a\nb\r\nhello\r\n0\r\n\r\n"),
    BAD_CHUNK("trailer obs-fold", "0\r\nX: 1\r\n y\r\n\r\n"),
    BAD_CHUNK("trailer without colon", "0\r\nX\r\n\r\n"),
    BAD_CHUNK("trailer space before colon", "0\r\nX : 1\r\n\r\n"),
    BAD_CHUNK("trailer bare lf", "0\r\nX: 1\n\r\n"),
    BAD_CHUNK("trailer control byte", "0\r\nX: \x01\r\n\r\n"),
    BAD_CHUNK("bare lf at end", "0\r\n\n"),
    BAD_CHUNK("cr cr at end", "0\r\n\r\r"),
};

/*
 * Feed body bytes made available in steps (cuts[] are the growing end),
 * as a caller would: keep the unconsumed tail, append, call again. Each
 * call sees a guarded copy of exactly the unconsumed bytes.
 */
static void
chunk_feed(const struct chunk_vec *v, const size_t *cuts, size_t ncuts,
           const char *how)
{
    struct sw_http_chunked ch;
    char out[64 * 1024];
    size_t out_len = 0;
    size_t off = 0;
    enum sw_status st = SW_AGAIN;

    sw_http_chunked_init(&ch);
    for (size_t k = 0; k < ncuts && st == SW_AGAIN; k++) {
        size_t avail = cuts[k];
        while (st == SW_AGAIN && off < avail) {
            size_t n = avail - off;
            size_t used = 0;
            struct sw_str d = {NULL, 1};
            char *buf = sw_test_guard_copy(v->data + off, n);
            st = sw_http_chunked_decode(&ch, buf, n, &used, &d);
            ck_assert_uint_le(used, n);
            if (d.len > 0) {
                ck_assert(d.p >= buf && d.p + d.len <= buf + used);
                ck_assert_uint_le(out_len + d.len, sizeof(out));
                memcpy(out + out_len, d.p, d.len);
                out_len += d.len;
            }
            sw_test_guard_free(buf, n);
            off += used;
            if (used == 0 && st == SW_AGAIN) {
                /* Only possible if the decoder is stuck. */
                ck_abort_msg("%s (%s): no progress at %zu", v->name, how, off);
            }
        }
    }
    ck_assert_msg(st == v->st, "%s (%s): got %s at %zu", v->name, how,
                  sw_strerror(st), off);
    if (v->st == SW_OK) {
        size_t plen = v->len - v->after;
        size_t want = v->payload_len;
        ck_assert_msg(off == plen, "%s (%s): consumed %zu, want %zu", v->name,
                      how, off, plen);
        ck_assert_uint_eq(out_len, want);
        ck_assert(memcmp(out, v->payload, want) == 0);
        ck_assert_uint_eq(ch.total, want);
        /* Done is sticky and consumes nothing more. */
        size_t used = 99;
        struct sw_str d;
        ck_assert_int_eq(sw_http_chunked_decode(&ch, "x", 1, &used, &d), SW_OK);
        ck_assert_uint_eq(used, 0);
        ck_assert_uint_eq(d.len, 0);
    } else {
        size_t used;
        struct sw_str d;
        ck_assert_int_eq(sw_http_chunked_decode(&ch, "0\r\n\r\n", 5, &used, &d),
                         SW_EPROTO);
    }
}

static void
chunk_all_ways(const struct chunk_vec *v)
{
    size_t cuts[64 * 1024];
    struct sw_test_rng rng;
    size_t n;

    ck_assert_uint_le(v->len, SW_NELEMS(cuts));
    cuts[0] = v->len;
    chunk_feed(v, cuts, 1, "whole");
    for (size_t i = 0; i < v->len; i++) {
        cuts[i] = i + 1;
    }
    chunk_feed(v, cuts, v->len, "bytewise");
    sw_test_rng_init(&rng, 0xc0ffee00u + v->len);
    for (int round = 0; round < RANDOM_ROUNDS; round++) {
        size_t at = 0;
        n = 0;
        while (at < v->len) {
            at += 1 + sw_test_rng_below(&rng, v->len - at);
            cuts[n++] = at;
        }
        chunk_feed(v, cuts, n, "random");
    }
}

START_TEST(test_chunked_vectors)
{
    chunk_all_ways(&chunk_vecs[_i]);
}
END_TEST

/* Size line cap (4096 incl. CR) and trailer cap (16 KiB). */
START_TEST(test_chunked_limits)
{
    static char data[20000];
    struct chunk_vec v = {.name = "extension at cap",
                          .data = data,
                          .st = SW_OK,
                          .payload = "x",
                          .payload_len = 1};
    size_t n;

    /* "1;" + filler + "\r" is exactly 4096 line bytes. */
    memcpy(data, "1;", 2);
    memset(data + 2, 'e', 4093);
    memcpy(data + 4095, "\r\nx\r\n0\r\n\r\n", 10);
    v.len = 4105;
    chunk_all_ways(&v);

    memcpy(data, "1;", 2);
    memset(data + 2, 'e', 4094);
    memcpy(data + 4096, "\r\nx\r\n0\r\n\r\n", 10);
    v = (struct chunk_vec){.name = "extension over cap",
                           .data = data,
                           .len = 4106,
                           .st = SW_EPROTO};
    chunk_all_ways(&v);

    /* Trailers: many short lines adding up to more than 16 KiB. */
    memcpy(data, "0\r\n", 3);
    n = 3;
    while (n < 16384 + 100) {
        memcpy(data + n, "X-Pad: 0123456789\r\n", 19);
        n += 19;
    }
    memcpy(data + n, "\r\n", 2);
    v = (struct chunk_vec){.name = "trailers over cap",
                           .data = data,
                           .len = n + 2,
                           .st = SW_EPROTO};
    chunk_all_ways(&v);

    /* And under the cap they pass. */
    n = 3;
    while (n < 8000) {
        memcpy(data + n, "X-Pad: 0123456789\r\n", 19);
        n += 19;
    }
    memcpy(data + n, "\r\n", 2);
    v = (struct chunk_vec){.name = "trailers under cap",
                           .data = data,
                           .len = n + 2,
                           .st = SW_OK,
                           .payload = ""};
    chunk_all_ways(&v);
}
END_TEST

/* A big chunk arrives over many calls; sizes near 2^64 parse. */
START_TEST(test_chunked_large)
{
    struct sw_http_chunked ch;
    static const char hdr[] = "ffffffffffffffff\r\n";
    char blob[4096];
    size_t used;
    struct sw_str d;

    sw_http_chunked_init(&ch);
    ck_assert_int_eq(
        sw_http_chunked_decode(&ch, hdr, sizeof(hdr) - 1, &used, &d), SW_AGAIN);
    ck_assert_uint_eq(used, sizeof(hdr) - 1);
    ck_assert_uint_eq(d.len, 0);
    memset(blob, 'z', sizeof(blob));
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(
            sw_http_chunked_decode(&ch, blob, sizeof(blob), &used, &d),
            SW_AGAIN);
        ck_assert_uint_eq(used, sizeof(blob));
        ck_assert_ptr_eq(d.p, blob);
        ck_assert_uint_eq(d.len, sizeof(blob));
    }
    ck_assert_uint_eq(ch.total, 100 * sizeof(blob));

    /* One call hands out one slice: the second chunk waits. */
    static const char two[] = "2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n";
    sw_http_chunked_init(&ch);
    ck_assert_int_eq(
        sw_http_chunked_decode(&ch, two, sizeof(two) - 1, &used, &d), SW_AGAIN);
    ck_assert_uint_eq(used, 10);
    ck_assert(slice_is(d, "ab"));
    ck_assert_int_eq(sw_http_chunked_decode(&ch, two + used,
                                            sizeof(two) - 1 - used, &used, &d),
                     SW_OK);
    ck_assert(slice_is(d, "cd"));
    ck_assert_uint_eq(used, sizeof(two) - 1 - 10);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Writer and helpers                                                 */
/* ------------------------------------------------------------------ */

START_TEST(test_writer)
{
    char out[64];
    struct sw_http_writer w;

    sw_http_writer_init(&w, out, sizeof(out));
    sw_http_write_cstr(&w, "HTTP/1.1 ");
    sw_http_write_u64(&w, 200);
    sw_http_write(&w, " ", 1);
    sw_http_write_cstr(&w, sw_http_reason(200));
    sw_http_write(&w, "\r\n", 2);
    sw_http_write_header(&w, SW_STR("Content-Length"), SW_STR("0"));
    sw_http_write_str(&w, SW_STR("\r\n"));
    ck_assert(!w.overflow);
    ck_assert_uint_eq(w.len, 38);
    ck_assert(memcmp(out, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 38) ==
              0);

    sw_http_writer_init(&w, out, sizeof(out));
    sw_http_write_u64(&w, 0);
    sw_http_write(&w, ",", 1);
    sw_http_write_u64(&w, UINT64_MAX);
    ck_assert(!w.overflow);
    ck_assert_uint_eq(w.len, 22);
    ck_assert(memcmp(out, "0,18446744073709551615", 22) == 0);
}
END_TEST

START_TEST(test_writer_overflow)
{
    char out[16];
    struct sw_http_writer w;

    memset(out, '#', sizeof(out));
    sw_http_writer_init(&w, out, 10);
    sw_http_write_cstr(&w, "0123456789");
    ck_assert(!w.overflow);
    ck_assert_uint_eq(w.len, 10);
    sw_http_write(&w, "", 0);
    ck_assert(!w.overflow);
    sw_http_write(&w, "x", 1);
    ck_assert(w.overflow);
    ck_assert_uint_eq(w.len, 10);
    ck_assert_int_eq(out[10], '#');

    /* Sticky: a small write after an overflow does not land. */
    sw_http_writer_init(&w, out, 10);
    sw_http_write_cstr(&w, "0123456");
    sw_http_write_cstr(&w, "abcd");
    ck_assert(w.overflow);
    sw_http_write_cstr(&w, "z");
    ck_assert(w.overflow);
    ck_assert_uint_eq(w.len, 7);
    ck_assert(memcmp(out + 7, "789", 3) == 0); /* left from before */

    /* A header that does not fit is not half written. */
    sw_http_writer_init(&w, out, 10);
    sw_http_write_header(&w, SW_STR("Host"), SW_STR("abcd"));
    ck_assert(w.overflow);
    ck_assert_uint_eq(w.len, 0);
    sw_http_writer_init(&w, out, 10);
    sw_http_write_header(&w, SW_STR("Ho"), SW_STR("ab"));
    ck_assert(!w.overflow);
    ck_assert_uint_eq(w.len, 8);
    sw_http_write_u64(&w, 123);
    ck_assert(w.overflow);
    ck_assert_uint_eq(w.len, 8);

    /* Zero capacity */
    sw_http_writer_init(&w, out, 0);
    sw_http_write_u64(&w, 1);
    ck_assert(w.overflow);
}
END_TEST

START_TEST(test_chunk_header)
{
    char out[20];
    size_t n;

    memset(out, '#', sizeof(out));
    n = sw_http_chunk_header(out, 0);
    ck_assert_uint_eq(n, 3);
    ck_assert(memcmp(out, "0\r\n", 3) == 0);
    n = sw_http_chunk_header(out, 0x1a2b);
    ck_assert_uint_eq(n, 6);
    ck_assert(memcmp(out, "1a2b\r\n", 6) == 0);
    n = sw_http_chunk_header(out, UINT64_MAX);
    ck_assert_uint_eq(n, 18);
    ck_assert(memcmp(out, "ffffffffffffffff\r\n", 18) == 0);
    ck_assert_int_eq(out[18], '#');

    /* What it writes, the decoder reads back. */
    struct sw_http_chunked ch;
    size_t used;
    struct sw_str d;
    sw_http_chunked_init(&ch);
    n = sw_http_chunk_header(out, 4096);
    ck_assert_int_eq(sw_http_chunked_decode(&ch, out, n, &used, &d), SW_AGAIN);
    ck_assert_uint_eq(used, n);
    ck_assert_uint_eq(ch.remaining, 4096);
}
END_TEST

START_TEST(test_reason)
{
    ck_assert_str_eq(sw_http_reason(200), "OK");
    ck_assert_str_eq(sw_http_reason(400), "Bad Request");
    ck_assert_str_eq(sw_http_reason(414), "URI Too Long");
    ck_assert_str_eq(sw_http_reason(431), "Request Header Fields Too Large");
    ck_assert_str_eq(sw_http_reason(502), "Bad Gateway");
    ck_assert_str_eq(sw_http_reason(505), "HTTP Version Not Supported");
    ck_assert_str_eq(sw_http_reason(101), "Switching Protocols");
    ck_assert_str_eq(sw_http_reason(799), "Unknown");
    ck_assert_str_eq(sw_http_reason(0), "Unknown");
}
END_TEST

START_TEST(test_hop_by_hop)
{
    static const char *const hop[] = {
        "Connection",
        "keep-alive",
        "Proxy-Connection",
        "PROXY-AUTHENTICATE",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
    };
    struct sw_str none = {"", 0};

    for (size_t i = 0; i < SW_NELEMS(hop); i++) {
        struct sw_str n = {hop[i], strlen(hop[i])};
        ck_assert_msg(sw_http_is_hop_by_hop(n, none), "%s", hop[i]);
    }
    ck_assert(!sw_http_is_hop_by_hop(SW_STR("Host"), none));
    ck_assert(!sw_http_is_hop_by_hop(SW_STR("Content-Length"), none));
    ck_assert(!sw_http_is_hop_by_hop(SW_STR("Trailers"), none));
    ck_assert(!sw_http_is_hop_by_hop(SW_STR("T"), none));
    /* Names listed in Connection, any case, with OWS and empty items. */
    struct sw_str conn = SW_STR(" , X-Foo ,close,\tx-bar\t");
    ck_assert(sw_http_is_hop_by_hop(SW_STR("x-foo"), conn));
    ck_assert(sw_http_is_hop_by_hop(SW_STR("X-BAR"), conn));
    ck_assert(!sw_http_is_hop_by_hop(SW_STR("X-Fo"), conn));
    ck_assert(!sw_http_is_hop_by_hop(SW_STR("X-Foo2"), conn));
    ck_assert(!sw_http_is_hop_by_hop(SW_STR(""), conn));
}
END_TEST

START_TEST(test_find)
{
    struct sw_http_header h[3] = {
        {SW_STR("Host"), SW_STR("a")},
        {SW_STR("X-Y"), SW_STR("1")},
        {SW_STR("x-y"), SW_STR("2")},
    };
    ck_assert_ptr_eq(sw_http_find(h, 3, "host"), &h[0]);
    ck_assert_ptr_eq(sw_http_find(h, 3, "X-y"), &h[1]);
    ck_assert_ptr_null(sw_http_find(h, 3, "X"));
    ck_assert_ptr_null(sw_http_find(h, 0, "host"));
}
END_TEST

static Suite *
http_response_suite(void)
{
    Suite *s = suite_create("http_response");
    TCase *tc = tcase_create("response");

    tcase_add_loop_test(tc, test_response_vectors, 0, SW_NELEMS(resp_vecs));
    tcase_add_test(tc, test_response_headers);
    suite_add_tcase(s, tc);

    tc = tcase_create("chunked");
    tcase_add_loop_test(tc, test_chunked_vectors, 0, SW_NELEMS(chunk_vecs));
    tcase_add_test(tc, test_chunked_limits);
    tcase_add_test(tc, test_chunked_large);
    suite_add_tcase(s, tc);

    tc = tcase_create("writer");
    tcase_add_test(tc, test_writer);
    tcase_add_test(tc, test_writer_overflow);
    tcase_add_test(tc, test_chunk_header);
    tcase_add_test(tc, test_reason);
    tcase_add_test(tc, test_hop_by_hop);
    tcase_add_test(tc, test_find);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(http_response_suite());
}
