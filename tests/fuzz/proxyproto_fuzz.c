/*
 * proxyproto_fuzz.c - libFuzzer harness for the PROXY protocol decoder in
 * lib/http (sw_http_proxyproto_decode).
 *
 * Beyond "no crash, no overread" (ASan, UBSan), it traps when a property
 * the session relies on breaks:
 *   - SW_OK gives a length within the input and within the bounds (107
 *     bytes for v1, the caller's bound for v2); SW_EPROTO gives a reason;
 *   - a prefix decodes to SW_AGAIN or to the same answer as the whole, and
 *     an SW_OK answer is the same for the prefix of exactly its length (the
 *     session stops reading there);
 *   - a local header carries no address text.
 * Prefixes are fresh heap copies of exactly their length.
 *
 * Owns nothing across runs; single-threaded.
 */
#include <shockwave/http.h>

#define CHECK(e)                                                               \
    do {                                                                       \
        if (!(e)) {                                                            \
            fprintf(stderr, "proxyproto_fuzz: %s failed (line %d)\n", #e,      \
                    __LINE__);                                                 \
            abort();                                                           \
        }                                                                      \
    } while (0)

static enum sw_status
decode_copy(const uint8_t *data, size_t n, struct sw_proxyproto *pp)
{
    uint8_t *copy = malloc(n == 0 ? 1 : n);
    CHECK(copy != NULL);
    memcpy(copy, data, n);
    enum sw_status st =
        sw_http_proxyproto_decode(pp, copy, n, SW_PROXYPROTO_V2_MAX);
    free(copy);
    return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sw_proxyproto whole;
    enum sw_status st = decode_copy(data, size, &whole);
    CHECK(st == SW_OK || st == SW_AGAIN || st == SW_EPROTO);
    if (st == SW_OK) {
        CHECK(whole.len > 0 && whole.len <= size);
        CHECK(whole.version == 1 ? whole.len <= SW_PROXYPROTO_V1_MAX
                                 : whole.len <= SW_PROXYPROTO_V2_MAX);
        char host[64];
        char port[8];
        size_t hl = sw_http_proxyproto_addr_text(&whole, host, sizeof(host),
                                                 port, sizeof(port));
        CHECK(whole.local ? hl == 0 : hl > 0);
    } else if (st == SW_EPROTO) {
        CHECK(whole.reason != NULL);
    }
    size_t upto = size < 600 ? size : 600;
    for (size_t n = 0; n < upto; n++) {
        struct sw_proxyproto pp;
        enum sw_status ps = decode_copy(data, n, &pp);
        if (ps == SW_AGAIN) {
            continue;
        }
        CHECK(ps == st);
        if (ps == SW_OK) {
            CHECK(pp.len == whole.len && pp.len <= n);
        }
    }
    return 0;
}
