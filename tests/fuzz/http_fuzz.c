/*
 * http_fuzz.c - libFuzzer harness for lib/http: request heads, response
 * heads (answering GET and HEAD) and chunked bodies.
 *
 * Beyond "no crash, no overread" (ASan, UBSan), it checks the properties
 * the proxy relies on, and traps when one breaks:
 *   - every slice of a decoded head lies inside the input;
 *   - a prefix of the input decodes to SW_AGAIN or to the same answer as
 *     the whole (the decoders are re-run on a growing buffer);
 *   - the chunked decoder gives the same payload, status and consumed
 *     count whether the input comes whole or in two pieces, and never
 *     consumes past the end of the body.
 * Prefixes are fresh heap copies of exactly their length, so ASan sees an
 * overread of a prefix too.
 *
 * Owns nothing across runs; single-threaded.
 */
#include <shockwave/http.h>

#define NHDR 32

static const struct sw_http_limits lim = {
    .max_head = 4096,
    .max_request_line = 1024,
    .max_headers = NHDR,
};

#define CHECK(e)                                                               \
    do {                                                                       \
        if (!(e)) {                                                            \
            fprintf(stderr, "http_fuzz: %s failed (line %d)\n", #e, __LINE__); \
            abort();                                                           \
        }                                                                      \
    } while (0)

static bool
inside(struct sw_str s, const char *buf, size_t len)
{
    return s.len == 0 || (s.p >= buf && s.p + s.len <= buf + len);
}

static void
check_headers(const struct sw_http_header *h, size_t n, const char *buf,
              size_t len)
{
    CHECK(n <= NHDR);
    for (size_t i = 0; i < n; i++) {
        CHECK(h[i].name.len > 0);
        CHECK(inside(h[i].name, buf, len));
        CHECK(inside(h[i].value, buf, len));
    }
}

/* Decode a request from a private copy of data[0..n). */
static enum sw_status
request(const uint8_t *data, size_t n, int *code, size_t *head_len)
{
    struct sw_http_header hdrs[NHDR];
    struct sw_http_request r = {.headers = hdrs, .headers_cap = NHDR};
    char *buf = malloc(n > 0 ? n : 1);
    const char *why = NULL;
    enum sw_status st;

    CHECK(buf != NULL);
    memcpy(buf, data, n);
    st = sw_http_request_decode(&r, buf, n, &lim, code, &why);
    *head_len = r.head_len;
    if (st == SW_OK) {
        CHECK(r.head_len > 0 && r.head_len <= n);
        check_headers(r.headers, r.nheaders, buf, r.head_len);
        CHECK(inside(r.method, buf, n) && inside(r.target, buf, n));
        CHECK(inside(r.host, buf, n) && inside(r.connection, buf, n));
        CHECK(r.version_major == 1 && r.version_minor <= 1);
        CHECK(r.body != SW_HTTP_BODY_TO_CLOSE);
        CHECK(r.body != SW_HTTP_BODY_LENGTH || r.content_length > 0);
        CHECK(r.method_id >= 0 && r.method_id != sw_http_method_connect());
    } else if (st == SW_AGAIN) {
        CHECK(*code == 0);
    } else {
        CHECK(why != NULL);
        CHECK(st == SW_ETOOBIG ? (*code == 414 || *code == 431)
                               : (*code == 400 || *code == 405 ||
                                  *code == 501 || *code == 505));
    }
    free(buf);
    return st;
}

static enum sw_status
response(const uint8_t *data, size_t n, int method, size_t *head_len,
         enum sw_http_body *body)
{
    struct sw_http_header hdrs[NHDR];
    struct sw_http_response resp = {.headers = hdrs, .headers_cap = NHDR};
    char *buf = malloc(n > 0 ? n : 1);
    const char *why = NULL;
    enum sw_status st;

    CHECK(buf != NULL);
    memcpy(buf, data, n);
    st = sw_http_response_decode(&resp, buf, n, &lim, method, &why);
    *head_len = resp.head_len;
    *body = resp.body;
    if (st == SW_OK) {
        CHECK(resp.head_len > 0 && resp.head_len <= n);
        check_headers(resp.headers, resp.nheaders, buf, resp.head_len);
        CHECK(resp.status >= 100 && resp.status <= 999);
        CHECK(resp.version_major == 1);
        CHECK(inside(resp.reason, buf, n));
        CHECK(resp.body != SW_HTTP_BODY_TO_CLOSE || !resp.keep_alive);
        CHECK(method != sw_http_method_head() ||
              resp.body == SW_HTTP_BODY_NONE);
    } else if (st != SW_AGAIN) {
        CHECK(why != NULL);
        CHECK(st == SW_EPROTO || st == SW_ETOOBIG);
    }
    free(buf);
    return st;
}

/* Run the chunked decoder over data, made available in two steps (cut),
 * as a caller would: keep the unconsumed tail and call again. */
static enum sw_status
chunked(const uint8_t *data, size_t len, size_t cut, size_t *consumed,
        uint64_t *sum, uint64_t *bytes)
{
    struct sw_http_chunked ch;
    enum sw_status st = SW_AGAIN;
    size_t off = 0;

    sw_http_chunked_init(&ch);
    *sum = 0;
    *bytes = 0;
    for (int step = 0; step < 2 && st == SW_AGAIN; step++) {
        size_t avail = step == 0 ? cut : len;
        while (st == SW_AGAIN && off < avail) {
            size_t n = avail - off;
            size_t used = 0;
            struct sw_str d;
            char *buf = malloc(n);
            CHECK(buf != NULL);
            memcpy(buf, data + off, n);
            st = sw_http_chunked_decode(&ch, buf, n, &used, &d);
            CHECK(used <= n);
            CHECK(d.len == 0 || (d.p >= buf && d.p + d.len <= buf + used));
            for (size_t i = 0; i < d.len; i++) {
                *sum = *sum * 31 + (uint8_t)d.p[i];
            }
            *bytes += d.len;
            free(buf);
            off += used;
            CHECK(used > 0 || st != SW_AGAIN);
        }
    }
    CHECK(st != SW_OK || ch.total == *bytes);
    *consumed = off;
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The split point comes from the data so the fuzzer can steer it. */
    size_t cut = size > 0 ? (size_t)data[0] * 131u % (size + 1) : 0;
    int code;
    int code2;
    size_t hl;
    size_t hl2;
    enum sw_status st;
    enum sw_status st2;

    st = request(data, size, &code, &hl);
    st2 = request(data, cut, &code2, &hl2);
    CHECK(st2 == SW_AGAIN || (st2 == st && code2 == code && hl2 == hl));

    int methods[2] = {sw_http_method_get(), sw_http_method_head()};
    for (int m = 0; m < 2; m++) {
        enum sw_http_body body;
        enum sw_http_body body2;
        st = response(data, size, methods[m], &hl, &body);
        st2 = response(data, cut, methods[m], &hl2, &body2);
        CHECK(st2 == SW_AGAIN ||
              (st2 == st && (st != SW_OK || (hl2 == hl && body2 == body))));
    }

    size_t c1;
    size_t c2;
    uint64_t s1;
    uint64_t s2;
    uint64_t b1;
    uint64_t b2;
    st = chunked(data, size, size, &c1, &s1, &b1);
    st2 = chunked(data, size, cut, &c2, &s2, &b2);
    CHECK(st == st2);
    if (st == SW_OK) {
        CHECK(c1 == c2 && s1 == s2 && b1 == b2);
    }
    return 0;
}
