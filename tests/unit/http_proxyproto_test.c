/*
 * http_proxyproto_test.c - Check suite for the PROXY protocol decoder in
 * lib/http (HAProxy's doc/proxy-protocol.txt, v1 and v2).
 *
 * Every vector is fed whole, as a buffer growing one byte at a time and
 * growing at random split points (seeded), each call on a fresh copy flush
 * against a PROT_NONE page so a read past the end crashes. A growing buffer
 * must answer SW_AGAIN until the answer is known, then the final answer at
 * every longer prefix (a refusal may come early, never a different one).
 */
#include <shockwave/http.h>

#include <arpa/inet.h>
#include <check.h>
#include <sys/socket.h>

#include "support.h"

#define RANDOM_ROUNDS 16

struct pp_vec {
    const char *name;  /* for failure messages */
    const char *data;  /* bytes fed (may hold NUL) */
    size_t len;        /* bytes of data */
    size_t max;        /* v2 bound, 0: SW_PROXYPROTO_V2_MAX */
    enum sw_status st; /* expected final status */
    size_t hlen;       /* expected header length on SW_OK */
    bool local;        /* expected on SW_OK */
    const char *addr;  /* expected client address text, NULL: local */
    const char *port;  /* expected client port text */
};

#define V(lit) .data = (lit), .len = sizeof(lit) - 1
#define SIG "\r\n\r\n\0\r\nQUIT\n"

static const struct pp_vec vecs[] = {
    /* v1 */
    {"v1 tcp4", V("PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\nGET"),
     .st = SW_OK, .hlen = 44, .addr = "203.0.113.7", .port = "56324"},
    {"v1 tcp6", V("PROXY TCP6 2001:db8::7 2001:db8::1 65535 80\r\n"),
     .st = SW_OK, .hlen = 45, .addr = "2001:db8::7", .port = "65535"},
    {"v1 port 0", V("PROXY TCP4 1.2.3.4 5.6.7.8 0 0\r\n"), .st = SW_OK,
     .hlen = 32, .addr = "1.2.3.4", .port = "0"},
    {"v1 unknown", V("PROXY UNKNOWN\r\n"), .st = SW_OK, .hlen = 15,
     .local = true},
    {"v1 unknown rest ignored", V("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nX"),
     .st = SW_OK, .hlen = 35, .local = true},
    {"v1 longest",
     V("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
     .st = SW_OK, .hlen = 104,
     .addr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .port = "65535"},
    /* the spec's bound: 107 bytes with the CRLF, not one more */
    {"v1 unknown at 107",
     V("PROXY UNKNOWN "
       "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
       "yyyyyyyyyyyyyyyyyyyy\r\n"),
     .st = SW_OK, .hlen = 107, .local = true},
    {"v1 unknown at 108",
     V("PROXY UNKNOWN "
       "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
       "yyyyyyyyyyyyyyyyyyyyy\r\n"),
     .st = SW_EPROTO},
    {"v1 http instead", V("GET / HTTP/1.1\r\n\r\n"), .st = SW_EPROTO},
    {"v1 lower case", V("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), .st = SW_EPROTO},
    {"v1 PROXYX", V("PROXYX TCP4\r\n"), .st = SW_EPROTO},
    {"v1 bad proto", V("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), .st = SW_EPROTO},
    {"v1 tcp4 with v6", V("PROXY TCP4 ::1 ::1 1 2\r\n"), .st = SW_EPROTO},
    {"v1 tcp6 with v4", V("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"),
     .st = SW_EPROTO},
    {"v1 bad address", V("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"),
     .st = SW_EPROTO},
    {"v1 port too big", V("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"),
     .st = SW_EPROTO},
    {"v1 port sign", V("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), .st = SW_EPROTO},
    {"v1 port leading zero", V("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"),
     .st = SW_EPROTO},
    {"v1 port letters", V("PROXY TCP4 1.2.3.4 5.6.7.8 8a 2\r\n"),
     .st = SW_EPROTO},
    {"v1 missing port", V("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), .st = SW_EPROTO},
    {"v1 extra field", V("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
     .st = SW_EPROTO},
    {"v1 double space", V("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"),
     .st = SW_EPROTO},
    {"v1 trailing space", V("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"),
     .st = SW_EPROTO},
    {"v1 bare LF", V("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), .st = SW_EPROTO},
    {"v1 CR without LF", V("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"),
     .st = SW_EPROTO},
    {"v1 NUL", V("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"), .st = SW_EPROTO},
    {"v1 empty", V("PROXY \r\n"), .st = SW_EPROTO},
    {"v1 oversized",
     V("PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxx\r\n"),
     .st = SW_EPROTO},
    {"v1 truncated", V("PROXY TCP4 1.2.3.4 5.6.7.8 1 2"), .st = SW_AGAIN},
    /* v2: PROXY over TCP/IPv4, 12 address bytes */
    {"v2 tcp4",
     V(SIG "\x21\x11\x00\x0c"
           "\xcb\x00\x71\x07\xc0\x00\x02\x01\xdc\x04\x01\xbb"
           "GET"),
     .st = SW_OK, .hlen = 28, .addr = "203.0.113.7", .port = "56324"},
    {"v2 tcp6",
     V(SIG "\x21\x21\x00\x24"
           "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x07"
           "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
           "\x04\xd2\x00\x50"),
     .st = SW_OK, .hlen = 52, .addr = "2001:db8::7", .port = "1234"},
    {"v2 tcp4 with TLVs",
     V(SIG "\x21\x11\x00\x17"
           "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02"
           "\x01\x00\x02h2" /* ALPN */
           "\x04\x00\x03"
           "abc"),
     .st = SW_OK, .hlen = 39, .addr = "1.2.3.4", .port = "1"},
    {"v2 tcp4 empty TLV",
     V(SIG "\x21\x11\x00\x0f"
           "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02"
           "\x04\x00\x00"),
     .st = SW_OK, .hlen = 31, .addr = "1.2.3.4", .port = "1"},
    {"v2 local",
     V(SIG "\x20\x00\x00\x00"
           "GET"),
     .st = SW_OK, .hlen = 16, .local = true},
    {"v2 local with addresses",
     V(SIG "\x20\x11\x00\x0c"
           "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02"),
     .st = SW_OK, .hlen = 28, .local = true},
    {"v2 proxy unspec",
     V(SIG "\x21\x00\x00\x03"
           "\x04\x00\x00"),
     .st = SW_OK, .hlen = 19, .local = true},
    {"v2 bad version",
     V(SIG "\x11\x11\x00\x0c"
           "123456789012"),
     .st = SW_EPROTO},
    {"v2 bad command",
     V(SIG "\x22\x11\x00\x0c"
           "123456789012"),
     .st = SW_EPROTO},
    {"v2 bad family",
     V(SIG "\x21\x41\x00\x0c"
           "123456789012"),
     .st = SW_EPROTO},
    {"v2 bad transport",
     V(SIG "\x21\x13\x00\x0c"
           "123456789012"),
     .st = SW_EPROTO},
    {"v2 udp4",
     V(SIG "\x21\x12\x00\x0c"
           "123456789012"),
     .st = SW_EPROTO},
    {"v2 short for tcp4",
     V(SIG "\x21\x11\x00\x0b"
           "12345678901"),
     .st = SW_EPROTO},
    {"v2 short for tcp6",
     V(SIG "\x21\x21\x00\x0c"
           "123456789012"),
     .st = SW_EPROTO},
    {"v2 TLV overruns",
     V(SIG "\x21\x11\x00\x10"
           "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02"
           "\x04\x00\x05x"),
     .st = SW_EPROTO},
    {"v2 TLV header cut",
     V(SIG "\x21\x11\x00\x0e"
           "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02"
           "\x04\x00"),
     .st = SW_EPROTO},
    {"v2 oversized", V(SIG "\x21\x11\x02\x09"), .st = SW_EPROTO},
    {"v2 over a small bound", V(SIG "\x21\x11\x01\x00"), .max = 232,
     .st = SW_EPROTO},
    {"v2 bad signature", V("\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x0c"),
     .st = SW_EPROTO},
    {"v2 truncated fixed", V(SIG "\x21\x11\x00"), .st = SW_AGAIN},
    {"v2 truncated body",
     V(SIG "\x21\x11\x00\x0c"
           "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01"),
     .st = SW_AGAIN},
    {"tls client hello", V("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
     .st = SW_EPROTO},
    {"empty", .data = "", .len = 0, .st = SW_AGAIN},
};

/* Decode data[0..n) from a guarded copy. */
static enum sw_status
decode_n(const struct pp_vec *v, size_t n, struct sw_proxyproto *pp)
{
    void *buf = sw_test_guard_copy(v->data, n);
    enum sw_status st = sw_http_proxyproto_decode(
        pp, buf, n, v->max != 0 ? v->max : SW_PROXYPROTO_V2_MAX);
    sw_test_guard_free(buf, n);
    return st;
}

static void
check_final(const struct pp_vec *v, const char *how, size_t n)
{
    struct sw_proxyproto pp;
    enum sw_status st = decode_n(v, n, &pp);
    ck_assert_msg(st == v->st, "%s (%s, %zu bytes): got %s, want %s", v->name,
                  how, n, sw_strerror(st), sw_strerror(v->st));
    if (st == SW_EPROTO) {
        ck_assert_msg(pp.reason != NULL && pp.reason[0] != '\0', "%s: reason",
                      v->name);
    }
    if (st != SW_OK) {
        return;
    }
    ck_assert_msg(pp.len == v->hlen, "%s: len %zu, want %zu", v->name, pp.len,
                  v->hlen);
    ck_assert_msg(pp.local == v->local, "%s: local", v->name);
    char host[INET6_ADDRSTRLEN] = "";
    char port[8] = "";
    size_t hl = sw_http_proxyproto_addr_text(&pp, host, sizeof(host), port,
                                             sizeof(port));
    if (v->addr == NULL) {
        ck_assert_msg(hl == 0, "%s: an address for a local header", v->name);
        return;
    }
    ck_assert_msg(hl == strlen(v->addr), "%s: addr length", v->name);
    ck_assert_str_eq(host, v->addr);
    ck_assert_str_eq(port, v->port);
}

/* Growing prefixes: SW_AGAIN, then the final answer from some point on. */
static void
check_growing(const struct pp_vec *v, const size_t *cuts, size_t ncuts,
              const char *how)
{
    bool decided = false;
    for (size_t i = 0; i < ncuts; i++) {
        struct sw_proxyproto pp;
        enum sw_status st = decode_n(v, cuts[i], &pp);
        if (st == SW_AGAIN) {
            ck_assert_msg(!decided, "%s (%s): SW_AGAIN at %zu after an answer",
                          v->name, how, cuts[i]);
            continue;
        }
        decided = true;
        check_final(v, how, cuts[i]);
    }
}

START_TEST(test_vectors_whole)
{
    check_final(&vecs[_i], "whole", vecs[_i].len);
}
END_TEST

START_TEST(test_vectors_bytewise)
{
    const struct pp_vec *v = &vecs[_i];
    size_t cuts[256];
    ck_assert(v->len < SW_NELEMS(cuts));
    for (size_t n = 0; n <= v->len; n++) {
        cuts[n] = n;
    }
    check_growing(v, cuts, v->len + 1, "byte by byte");
}
END_TEST

START_TEST(test_vectors_random)
{
    const struct pp_vec *v = &vecs[_i];
    struct sw_test_rng rng;
    sw_test_rng_init(&rng, 0x9e3779b97f4a7c15ull + (uint64_t)_i);
    for (int round = 0; round < RANDOM_ROUNDS; round++) {
        size_t cuts[256];
        size_t ncuts = 0;
        size_t n = 0;
        while (n < v->len) {
            n += 1 + sw_test_rng_below(&rng, v->len - n);
            cuts[ncuts++] = n;
        }
        check_growing(v, cuts, ncuts, "random splits");
    }
}
END_TEST

/* Bytes after a complete header are not the decoder's: the length stays
 * the header's whatever follows, including a second header. */
START_TEST(test_after_header_untouched)
{
    static const char two[] = "PROXY UNKNOWN\r\nPROXY TCP4 1.2.3.4 5.6.7.8 1 2"
                              "\r\n";
    struct sw_proxyproto pp;
    ck_assert_int_eq(sw_http_proxyproto_decode(&pp, two, sizeof(two) - 1,
                                               SW_PROXYPROTO_V2_MAX),
                     SW_OK);
    ck_assert_uint_eq(pp.len, 15);
    ck_assert(pp.local);
}
END_TEST

/* A v2 header exactly at the bound passes; one byte more is refused. */
START_TEST(test_v2_bound)
{
    unsigned char h[SW_PROXYPROTO_V2_MAX + 1];
    memset(h, 0, sizeof(h));
    memcpy(h, SIG, 12);
    h[12] = 0x21;
    h[13] = 0x11;
    size_t body = SW_PROXYPROTO_V2_MAX - SW_PROXYPROTO_V2_FIXED;
    h[14] = (unsigned char)(body >> 8);
    h[15] = (unsigned char)body;
    /* one TLV fills what follows the 12 address bytes */
    size_t vlen = body - 12 - 3;
    h[28] = 0x04;
    h[29] = (unsigned char)(vlen >> 8);
    h[30] = (unsigned char)vlen;
    struct sw_proxyproto pp;
    ck_assert_int_eq(sw_http_proxyproto_decode(&pp, h, SW_PROXYPROTO_V2_MAX,
                                               SW_PROXYPROTO_V2_MAX),
                     SW_OK);
    ck_assert_uint_eq(pp.len, SW_PROXYPROTO_V2_MAX);
    body++;
    h[14] = (unsigned char)(body >> 8);
    h[15] = (unsigned char)body;
    ck_assert_int_eq(
        sw_http_proxyproto_decode(&pp, h, sizeof(h), SW_PROXYPROTO_V2_MAX),
        SW_EPROTO);
}
END_TEST

static Suite *
proxyproto_suite(void)
{
    Suite *s = suite_create("http_proxyproto");
    TCase *tc = tcase_create("decode");
    int n = (int)SW_NELEMS(vecs);
    tcase_add_loop_test(tc, test_vectors_whole, 0, n);
    tcase_add_loop_test(tc, test_vectors_bytewise, 0, n);
    tcase_add_loop_test(tc, test_vectors_random, 0, n);
    tcase_add_test(tc, test_after_header_untouched);
    tcase_add_test(tc, test_v2_bound);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(proxyproto_suite());
}
