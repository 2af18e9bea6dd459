/*
 * ws_payload_test.c - Check suite for what lib/ws checks inside payloads:
 * the UTF-8 validator (tables, every code point, random sequences split at
 * random points, against a reference decoder), close codes and close
 * payloads, encoding a close, and the static pong and close frames.
 *
 * Inputs are copied flush against a PROT_NONE page so that a read past the
 * end crashes the test.
 */
#include <check.h>

#include <shockwave/ws.h>

#include "support.h"

/* ---- UTF-8 ------------------------------------------------------------- */

struct utf8_vec {
    const char *s; /* bytes */
    size_t len;    /* length */
    int valid;     /* 1 valid, 0 invalid, 2 truncated (feed OK, finish
                    * fails) */
};

#define U(s, v)                                                                \
    {                                                                          \
        s, sizeof(s) - 1, v                                                    \
    }
#define A32 "abcdefghijklmnopqrstuvwxyz012345"

static const struct utf8_vec utf8_vecs[] = {
    U("", 1),
    U("a", 1),
    U("Hello-\x7f", 1),
    U("\xc2\x80", 1),
    U("\xdf\xbf", 1),
    U("\xe0\xa0\x80", 1),
    U("\xe1\x80\x80", 1),
    U("\xed\x9f\xbf", 1),
    U("\xee\x80\x80", 1),
    U("\xef\xbf\xbf", 1),
    U("\xf0\x90\x80\x80", 1),
    U("\xf1\x80\x80\x80", 1),
    U("\xf4\x8f\xbf\xbf", 1),
    U("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1),
    U(A32 A32 "\xc3\xa9" A32 "\xf0\x9f\x98\x80" A32, 1),
    U(A32 A32 A32 A32, 1),
    U("\x80", 0),
    U("\xbf", 0),
    U("a\x80", 0),
    U("\xc0\x80", 0),
    U("\xc1\xbf", 0),
    U("\xe0\x80\x80", 0),
    U("\xe0\x9f\xbf", 0),
    U("\xed\xa0\x80", 0),
    U("\xed\xbf\xbf", 0),
    U("\xf0\x80\x80\x80", 0),
    U("\xf0\x8f\xbf\xbf", 0),
    U("\xf4\x90\x80\x80", 0),
    U("\xf5\x80\x80\x80", 0),
    U("\xfe", 0),
    U("\xff", 0),
    U("\xc2\x41", 0),
    U("\xe1\x80\x41", 0),
    U("\xf1\x80\x80\x41", 0),
    U("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64", 0),
    U(A32 A32 "\x80" A32, 0),
    U(A32 A32 A32 "\xed\xa0\x80", 0),
    U("\xc2", 2),
    U("\xe0\xa0", 2),
    U("\xf0\x90\x80", 2),
    U(A32 "\xf4\x8f\xbf", 2),
};

static int
utf8_pieces(const uint8_t *s, size_t len, const size_t *cuts, size_t ncuts)
{
    struct sw_ws_utf8 u;
    size_t pos = 0;
    bool failed = false;

    sw_ws_utf8_init(&u);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        uint8_t *g = sw_test_guard_copy(s + pos, end - pos);
        if (sw_ws_utf8_feed(&u, g, end - pos) != SW_OK) {
            failed = true;
        } else {
            /* Once failed, it stays failed. */
            ck_assert(!failed);
        }
        sw_test_guard_free(g, end - pos);
        pos = end;
    }
    if (failed) {
        ck_assert_int_eq(sw_ws_utf8_finish(&u), SW_EPROTO);
        return 0;
    }
    return sw_ws_utf8_finish(&u) == SW_OK ? 1 : 2;
}

START_TEST(test_utf8_table)
{
    const struct utf8_vec *v = &utf8_vecs[_i];
    const uint8_t *s = (const uint8_t *)v->s;
    uint8_t *g = sw_test_guard_copy(s, v->len);

    ck_assert_msg(sw_ws_utf8_is_valid(g, v->len) == (v->valid == 1),
                  "vector %d", _i);
    sw_test_guard_free(g, v->len);
    ck_assert_int_eq(utf8_pieces(s, v->len, NULL, 0), v->valid);
    /* Split at every position into two pieces. */
    for (size_t cut = 0; cut <= v->len; cut++) {
        ck_assert_msg(utf8_pieces(s, v->len, &cut, 1) == v->valid,
                      "vector %d cut %zu", _i, cut);
    }
    /* One byte at a time. */
    size_t cuts[256];
    for (size_t i = 0; i + 1 < v->len; i++) {
        cuts[i] = i + 1;
    }
    ck_assert_int_eq(utf8_pieces(s, v->len, cuts, v->len > 0 ? v->len - 1 : 0),
                     v->valid);
}
END_TEST

/* Every code point: valid ones encoded pass, surrogates encoded fail. */
START_TEST(test_utf8_all_code_points)
{
    for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
        uint8_t b[4];
        size_t n;
        if (cp < 0x80) {
            b[0] = (uint8_t)cp;
            n = 1;
        } else if (cp < 0x800) {
            b[0] = (uint8_t)(0xc0 | (cp >> 6));
            b[1] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 2;
        } else if (cp < 0x10000) {
            b[0] = (uint8_t)(0xe0 | (cp >> 12));
            b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            b[2] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 3;
        } else {
            b[0] = (uint8_t)(0xf0 | (cp >> 18));
            b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
            b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            b[3] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 4;
        }
        bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
        if (sw_ws_utf8_is_valid(b, n) == surrogate) {
            ck_abort_msg("U+%04X", cp);
        }
    }
}
END_TEST

/* Independent reference: decode code points the long way (RFC 3629). */
static bool
utf8_ref(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = p[i];
        size_t need;
        uint32_t cp;
        uint32_t min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc0 && c <= 0xdf) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf7) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < need) {
            return false;
        }
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += need + 1;
    }
    return true;
}

/* Random strings from an alphabet biased toward the interesting bytes,
 * checked against the reference whole and split at a random point. */
START_TEST(test_utf8_random)
{
    static const uint8_t alpha[] = {
        'a',  0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
        0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff};
    struct sw_test_rng rng;
    uint8_t s[48];
    size_t nvalid = 0;

    sw_test_rng_init(&rng, 2024);
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = sw_test_rng_below(&rng, sizeof(s) + 1);
        for (size_t i = 0; i < n; i++) {
            /* Mostly valid-looking: a lead then continuations. */
            size_t r = sw_test_rng_below(&rng, 4);
            s[i] = r == 0   ? alpha[sw_test_rng_below(&rng, sizeof(alpha))]
                   : r == 1 ? (uint8_t)('a' + sw_test_rng_below(&rng, 26))
                            : (uint8_t)(0x80 + sw_test_rng_below(&rng, 64));
        }
        bool want = utf8_ref(s, n);
        nvalid += want;
        if (sw_ws_utf8_is_valid(s, n) != want) {
            ck_abort_msg("iteration %d length %zu", iter, n);
        }
        size_t cut = sw_test_rng_below(&rng, n + 1);
        struct sw_ws_utf8 u;
        sw_ws_utf8_init(&u);
        bool ok = sw_ws_utf8_feed(&u, s, cut) == SW_OK;
        ok = sw_ws_utf8_feed(&u, s + cut, n - cut) == SW_OK && ok;
        ok = sw_ws_utf8_finish(&u) == SW_OK && ok;
        if (ok != want) {
            ck_abort_msg("iteration %d length %zu cut %zu", iter, n, cut);
        }
    }
    /* The generator must produce both outcomes in quantity. */
    ck_assert_uint_gt(nvalid, 5000);
    ck_assert_uint_lt(nvalid, 195000);
}
END_TEST

/* ---- close payloads and static frames ---------------------------------- */

START_TEST(test_close_codes)
{
    static const uint16_t good[] = {1000, 1001, 1002, 1003, 1007, 1008,
                                    1009, 1010, 1011, 1012, 1013, 1014,
                                    3000, 3999, 4000, 4999};
    static const uint16_t bad[] = {0,    999,  1004, 1005, 1006, 1015,
                                   1016, 2000, 2999, 5000, 65535};

    for (size_t i = 0; i < SW_NELEMS(good); i++) {
        uint8_t p[2] = {(uint8_t)(good[i] >> 8), (uint8_t)good[i]};
        struct sw_ws_close c;
        ck_assert_msg(sw_ws_close_code_is_valid(good[i]), "%u", good[i]);
        ck_assert_int_eq(sw_ws_close_decode(p, 2, &c), SW_OK);
        ck_assert_uint_eq(c.code, good[i]);
        ck_assert_uint_eq(c.reason.len, 0);
    }
    for (size_t i = 0; i < SW_NELEMS(bad); i++) {
        uint8_t p[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
        struct sw_ws_close c;
        ck_assert_msg(!sw_ws_close_code_is_valid(bad[i]), "%u", bad[i]);
        ck_assert_int_eq(sw_ws_close_decode(p, 2, &c), SW_EPROTO);
        ck_assert_uint_eq(c.error_code, SW_WS_CLOSE_PROTOCOL);
    }
}
END_TEST

START_TEST(test_close_payloads)
{
    struct sw_ws_close c;
    static const uint8_t one[] = {0x03};
    static const uint8_t ok[] = "\x03\xe8"
                                "bye \xce\xba";
    static const uint8_t badutf[] = "\x03\xe8"
                                    "bye \xed\xa0\x80";
    static uint8_t big[126];

    ck_assert_int_eq(sw_ws_close_decode(NULL, 0, &c), SW_OK);
    ck_assert_uint_eq(c.code, SW_WS_CLOSE_NO_STATUS);

    uint8_t *g = sw_test_guard_copy(one, 1);
    ck_assert_int_eq(sw_ws_close_decode(g, 1, &c), SW_EPROTO);
    ck_assert_uint_eq(c.error_code, SW_WS_CLOSE_PROTOCOL);
    sw_test_guard_free(g, 1);

    g = sw_test_guard_copy(ok, sizeof(ok) - 1);
    ck_assert_int_eq(sw_ws_close_decode(g, sizeof(ok) - 1, &c), SW_OK);
    ck_assert_uint_eq(c.code, 1000);
    ck_assert_uint_eq(c.reason.len, 6);
    ck_assert(memcmp(c.reason.p, "bye \xce\xba", 6) == 0);
    sw_test_guard_free(g, sizeof(ok) - 1);

    g = sw_test_guard_copy(badutf, sizeof(badutf) - 1);
    ck_assert_int_eq(sw_ws_close_decode(g, sizeof(badutf) - 1, &c), SW_EPROTO);
    ck_assert_uint_eq(c.error_code, SW_WS_CLOSE_INVALID_DATA);
    ck_assert_ptr_nonnull(c.why);
    sw_test_guard_free(g, sizeof(badutf) - 1);

    memset(big, 'a', sizeof(big));
    big[0] = 0x03;
    big[1] = 0xe8;
    ck_assert_int_eq(sw_ws_close_decode(big, 126, &c), SW_EPROTO);
    ck_assert_int_eq(sw_ws_close_decode(big, 125, &c), SW_OK);
}
END_TEST

START_TEST(test_close_encode)
{
    uint8_t out[SW_WS_MAX_CONTROL];
    struct sw_ws_close c;
    char reason[200];

    size_t n = sw_ws_close_encode(out, 1001, "drain", 5);
    ck_assert_uint_eq(n, 7);
    ck_assert_int_eq(sw_ws_close_decode(out, n, &c), SW_OK);
    ck_assert_uint_eq(c.code, 1001);
    ck_assert(memcmp(c.reason.p, "drain", 5) == 0);

    /* A long reason of 2-byte characters is cut on a character boundary
     * and stays within 125 bytes. */
    for (size_t i = 0; i < sizeof(reason); i += 2) {
        reason[i] = (char)0xc3;
        reason[i + 1] = (char)0xa9;
    }
    n = sw_ws_close_encode(out, 1000, reason, sizeof(reason));
    ck_assert_uint_le(n, SW_WS_MAX_CONTROL);
    ck_assert_uint_eq(n, 124);
    ck_assert_int_eq(sw_ws_close_decode(out, n, &c), SW_OK);

    n = sw_ws_close_encode(out, 4000, NULL, 0);
    ck_assert_uint_eq(n, 2);
}
END_TEST

START_TEST(test_static_frames)
{
    static const uint16_t codes[] = {1000, 1001, 1002, 1003,
                                     1007, 1008, 1009, 1011};
    struct sw_str pong = sw_ws_static_pong();
    struct sw_ws_decoder d;
    struct sw_ws_frame f;

    ck_assert_uint_eq(pong.len, 2);
    ck_assert(memcmp(pong.p, "\x8a\x00", 2) == 0);
    sw_ws_decoder_init(&d, SW_WS_PEER_SERVER, 0, 0);
    ck_assert_int_eq(sw_ws_frame_decode(&d, (const uint8_t *)pong.p, 2, &f), 2);
    ck_assert_uint_eq(f.opcode, SW_WS_OP_PONG);

    for (size_t i = 0; i < SW_NELEMS(codes); i++) {
        struct sw_str s = sw_ws_static_close(codes[i]);
        struct sw_ws_close c;
        const uint8_t *b = (const uint8_t *)s.p;
        ck_assert_uint_eq(s.len, 4);
        ck_assert_int_eq(sw_ws_frame_decode(&d, b, s.len, &f), 2);
        ck_assert_uint_eq(f.opcode, SW_WS_OP_CLOSE);
        ck_assert(f.fin && !f.masked);
        ck_assert_uint_eq(f.payload_len, 2);
        ck_assert_int_eq(sw_ws_close_decode(b + 2, 2, &c), SW_OK);
        ck_assert_uint_eq(c.code, codes[i]);
    }
    ck_assert_ptr_null(sw_ws_static_close(1005).p);
    ck_assert_uint_eq(sw_ws_static_close(4000).len, 0);
}
END_TEST

static Suite *
ws_payload_suite(void)
{
    Suite *s = suite_create("ws_payload");
    TCase *tc = tcase_create("utf8");

    tcase_add_loop_test(tc, test_utf8_table, 0, SW_NELEMS(utf8_vecs));
    tcase_add_test(tc, test_utf8_all_code_points);
    tcase_add_test(tc, test_utf8_random);
    suite_add_tcase(s, tc);

    tc = tcase_create("close");
    tcase_add_test(tc, test_close_codes);
    tcase_add_test(tc, test_close_payloads);
    tcase_add_test(tc, test_close_encode);
    tcase_add_test(tc, test_static_frames);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(ws_payload_suite());
}
