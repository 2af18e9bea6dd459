/*
 * ws_handshake_test.c - Check suite for lib/ws's opening handshake: the
 * random pool (mask keys, bytes, client keys), Sec-WebSocket-Accept against
 * RFC 6455's example, every way a client request is refused, the key round
 * trip, the 101 response and the extension bits a handshake agrees on.
 */
#include <check.h>

#include <shockwave/ws.h>

#include "support.h"

/* ---- random pool ------------------------------------------------------- */

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(test_rng)
{
    static struct sw_ws_rng r;
    static uint32_t keys[3000];
    static uint8_t big[10000];
    size_t dups = 0;

    ck_assert_int_eq(sw_ws_rng_init(&r), SW_OK);
    /* 3000 keys cross two refills of the 4 KiB pool. */
    for (size_t i = 0; i < SW_NELEMS(keys); i++) {
        uint8_t k[4];
        sw_ws_rng_key(&r, k);
        memcpy(&keys[i], k, 4);
    }
    qsort(keys, SW_NELEMS(keys), sizeof(keys[0]), cmp_u32);
    for (size_t i = 1; i < SW_NELEMS(keys); i++) {
        dups += keys[i] == keys[i - 1];
    }
    /* Expected duplicates among 3000 random 32-bit keys: ~0.001. */
    ck_assert_uint_le(dups, 1);

    /* More than a pool's worth in one call; not all zero. */
    memset(big, 0, sizeof(big));
    ck_assert_int_eq(sw_ws_rng_bytes(&r, big, sizeof(big)), SW_OK);
    size_t zeros = 0;
    for (size_t i = 0; i < sizeof(big); i++) {
        zeros += big[i] == 0;
    }
    ck_assert_uint_lt(zeros, 200);

    char key[SW_WS_KEY_LEN + 1];
    char key2[SW_WS_KEY_LEN + 1];
    sw_ws_handshake_key(&r, key);
    sw_ws_handshake_key(&r, key2);
    ck_assert_uint_eq(strlen(key), SW_WS_KEY_LEN);
    ck_assert_str_ne(key, key2);
    ck_assert(key[22] == '=' && key[23] == '=');
    sw_ws_rng_fini(&r);
    sw_ws_rng_fini(NULL);
}
END_TEST

/* ---- handshake --------------------------------------------------------- */

START_TEST(test_accept_rfc)
{
    char out[SW_WS_ACCEPT_LEN + 1];

    /* RFC 6455 1.3's worked example (also what `openssl sha1 -binary |
     * base64` gives for key + GUID). */
    sw_ws_accept_compute(SW_STR("dGhlIHNhbXBsZSBub25jZQ=="), out);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* Another well-known pair (RFC 6455 4.2.2 style, from Wikipedia). */
    sw_ws_accept_compute(SW_STR("x3JJHMbDL1EzLkh9GBhXDw=="), out);
    ck_assert_str_eq(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}
END_TEST

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static struct sw_http_header req_headers[16];

static void
hdr(struct sw_http_request *r, const char *name, const char *value)
{
    ck_assert_uint_lt(r->nheaders, r->headers_cap);
    r->headers[r->nheaders].name.p = name;
    r->headers[r->nheaders].name.len = strlen(name);
    r->headers[r->nheaders].value.p = value;
    r->headers[r->nheaders].value.len = strlen(value);
    r->nheaders++;
}

/* The RFC 6455 1.2 request, with one change applied by `variant`. */
static void
build_request(struct sw_http_request *r, int variant)
{
    memset(r, 0, sizeof(*r));
    r->method = variant == 1 ? SW_STR("POST") : SW_STR("GET");
    r->target = SW_STR("/chat");
    r->path = r->target;
    r->version_major = 1;
    r->version_minor = variant == 2 ? 0 : 1;
    r->headers = req_headers;
    r->headers_cap = SW_NELEMS(req_headers);
    hdr(r, "Host", "server.example.com");
    if (variant != 3) {
        hdr(r, "upgrade", variant == 4 ? "h2c" : "WebSocket");
    }
    if (variant == 5) {
        hdr(r, "Connection", "keep-alive");
    } else if (variant == 6) {
        /* Two Connection headers: the token is in the second. */
        hdr(r, "Connection", "keep-alive");
        hdr(r, "connection", "Upgrade");
    } else {
        hdr(r, "Connection", "keep-alive, Upgrade");
    }
    if (variant == 7) {
        hdr(r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ");
    } else if (variant == 8) {
        hdr(r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        hdr(r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    } else if (variant == 9) {
        /* base64 of 17 bytes */
        hdr(r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZXg=");
    } else if (variant == 10) {
        hdr(r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25j!Q==");
    } else if (variant == 11) {
        hdr(r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=A");
    } else if (variant != 12) {
        hdr(r, "Sec-WebSocket-Key", RFC_KEY);
    }
    if (variant == 13) {
        hdr(r, "Sec-WebSocket-Version", "8");
    } else if (variant == 14) {
        /* missing */
    } else if (variant == 15) {
        hdr(r, "Sec-WebSocket-Version", "13");
        hdr(r, "Sec-WebSocket-Version", "8");
    } else {
        hdr(r, "sec-websocket-version", "13");
    }
    hdr(r, "Origin", "http://example.com");
}

static const struct {
    int variant; /* build_request change */
    int status;  /* expected HTTP status, 0 for OK */
} req_cases[] = {
    {0, 0},    {1, 400},  {2, 400},  {3, 400},  {4, 400},  {5, 400},
    {6, 0},    {7, 400},  {8, 400},  {9, 400},  {10, 400}, {11, 400},
    {12, 400}, {13, 426}, {14, 400}, {15, 426},
};

START_TEST(test_handshake_request)
{
    struct sw_http_request r;
    int status = -1;
    const char *why = NULL;
    struct sw_str key = {NULL, 0};
    int want = req_cases[_i].status;

    build_request(&r, req_cases[_i].variant);
    enum sw_status st = sw_ws_handshake_check_request(&r, &status, &why, &key);
    if (want == 0) {
        ck_assert_int_eq(st, SW_OK);
        ck_assert_uint_eq(key.len, 24);
        ck_assert(memcmp(key.p, RFC_KEY, 24) == 0);
    } else {
        ck_assert_msg(st == SW_EPROTO && status == want,
                      "variant %d: %s status %d", req_cases[_i].variant,
                      sw_strerror(st), status);
        ck_assert_ptr_nonnull(why);
        ck_assert_ptr_null(key.p);
    }
    /* NULL out-parameters are allowed. */
    ck_assert_int_eq(sw_ws_handshake_check_request(&r, NULL, NULL, NULL), st);
}
END_TEST

START_TEST(test_handshake_key_roundtrip)
{
    static struct sw_ws_rng rng;
    struct sw_http_request r;
    char key[SW_WS_KEY_LEN + 1];
    struct sw_str got;

    ck_assert_int_eq(sw_ws_rng_init(&rng), SW_OK);
    sw_ws_handshake_key(&rng, key);
    build_request(&r, 12); /* no key yet */
    hdr(&r, "Sec-WebSocket-Key", key);
    ck_assert_int_eq(sw_ws_handshake_check_request(&r, NULL, NULL, &got),
                     SW_OK);
    ck_assert_ptr_eq(got.p, key);
    sw_ws_rng_fini(&rng);
}
END_TEST

static struct sw_http_header resp_headers[8];

static void
build_response(struct sw_http_response *resp, int variant)
{
    static const char *const accepts[] = {
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "s3pPLMBiTxaQ9kYGzzhZRbK+xOp=",
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo"};
    size_t n = 0;

    memset(resp, 0, sizeof(*resp));
    resp->status = variant == 1 ? 200 : 101;
    resp->version_major = 1;
    resp->version_minor = 1;
    resp->headers = resp_headers;
    resp->headers_cap = SW_NELEMS(resp_headers);
#define RH(nm, val)                                                            \
    do {                                                                       \
        resp_headers[n].name = SW_STR(nm);                                     \
        resp_headers[n].value.p = (val);                                       \
        resp_headers[n].value.len = strlen(val);                               \
        n++;                                                                   \
    } while (0)
    if (variant != 2) {
        RH("Upgrade", "websocket");
    }
    if (variant != 3) {
        RH("Connection", "Upgrade");
    }
    if (variant == 4) {
        RH("Sec-WebSocket-Accept", accepts[1]);
    } else if (variant == 5) {
        RH("Sec-WebSocket-Accept", accepts[2]);
    } else if (variant == 6) {
        RH("Sec-WebSocket-Accept", accepts[0]);
        RH("Sec-WebSocket-Accept", accepts[0]);
    } else if (variant != 7) {
        RH("sec-websocket-accept", accepts[0]);
    }
#undef RH
    resp->nheaders = n;
}

START_TEST(test_handshake_response)
{
    struct sw_http_response resp;
    const char *why = NULL;

    build_response(&resp, 0);
    ck_assert_int_eq(
        sw_ws_handshake_check_response(&resp, SW_STR(RFC_KEY), &why), SW_OK);
    /* Right response, wrong key. */
    ck_assert_int_eq(sw_ws_handshake_check_response(
                         &resp, SW_STR("AAAAAAAAAAAAAAAAAAAAAA=="), &why),
                     SW_EPROTO);
    for (int v = 1; v <= 7; v++) {
        why = NULL;
        build_response(&resp, v);
        ck_assert_msg(sw_ws_handshake_check_response(&resp, SW_STR(RFC_KEY),
                                                     &why) == SW_EPROTO,
                      "variant %d", v);
        ck_assert_ptr_nonnull(why);
    }
}
END_TEST

START_TEST(test_handshake_rsv)
{
    struct sw_http_header h[2] = {
        {SW_STR("Sec-WebSocket-Extensions"),
         SW_STR("x-foo; a=1, permessage-deflate; client_max_window_bits")},
        {SW_STR("Sec-WebSocket-Extensions"), SW_STR("x-bar")},
    };

    ck_assert_uint_eq(sw_ws_handshake_rsv(h, 2), SW_WS_RSV1);
    ck_assert_uint_eq(sw_ws_handshake_rsv(h + 1, 1), 0);
    h[0].value = SW_STR("permessage-deflate-not");
    ck_assert_uint_eq(sw_ws_handshake_rsv(h, 2), 0);
    h[1].value = SW_STR(" PerMessage-Deflate ");
    ck_assert_uint_eq(sw_ws_handshake_rsv(h, 2), SW_WS_RSV1);
    ck_assert_uint_eq(sw_ws_handshake_rsv(NULL, 0), 0);
}
END_TEST

static Suite *
ws_handshake_suite(void)
{
    Suite *s = suite_create("ws_handshake");
    TCase *tc = tcase_create("handshake");

    tcase_add_test(tc, test_rng);
    tcase_add_test(tc, test_accept_rfc);
    tcase_add_loop_test(tc, test_handshake_request, 0, SW_NELEMS(req_cases));
    tcase_add_test(tc, test_handshake_key_roundtrip);
    tcase_add_test(tc, test_handshake_response);
    tcase_add_test(tc, test_handshake_rsv);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(ws_handshake_suite());
}
