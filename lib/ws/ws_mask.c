/*
 * ws_mask.c - payload masking (RFC 6455 5.3) in three implementations:
 * portable scalar (8 bytes per step), SSE2 (16) and AVX2 (32), chosen at run
 * time from the CPU's features.
 *
 *   payload octet i  ^=  key[(offset + i) % 4]
 *
 * A payload processed in pieces passes the running offset; every variant
 * first rotates the key by offset % 4, so from then on the pattern repeats
 * every 4 bytes from data[0], whatever the alignment of data.
 *
 * Owns nothing, no state: the CPU check reads the compiler runtime's
 * feature word (filled once at start-up), which is not ours to mutate.
 * Threading: none.
 */
#include <shockwave/ws.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

/* The key rotated so that its byte 0 applies to data[0]. */
static uint32_t
rotated_key(const uint8_t key[4], size_t offset)
{
    uint8_t k[4];
    uint32_t k32;

    for (int i = 0; i < 4; i++) {
        k[i] = key[(offset + (size_t)i) & 3];
    }
    memcpy(&k32, k, 4);
    return k32;
}

/* XOR the last (< step) bytes; pos is a multiple of 4 from data[0]. */
static void
mask_tail(uint8_t *data, size_t len, uint32_t k32)
{
    uint8_t k[4];

    memcpy(k, &k32, 4);
    for (size_t i = 0; i < len; i++) {
        data[i] ^= k[i & 3];
    }
}

static void
mask_scalar(uint8_t *data, size_t len, uint32_t k32)
{
    uint64_t k64 = ((uint64_t)k32 << 32) | k32;
    size_t i = 0;

    /* memcpy keeps unaligned 8-byte access defined; compilers emit plain
     * loads and stores. */
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, data + i, 8);
        v ^= k64;
        memcpy(data + i, &v, 8);
    }
    mask_tail(data + i, len - i, k32);
}

#if HAVE_X86
__attribute__((target("sse2"))) static void
mask_sse2(uint8_t *data, size_t len, uint32_t k32)
{
    __m128i k = _mm_set1_epi32((int)k32);
    size_t i = 0;

    for (; i + 64 <= len; i += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(data + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(data + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(data + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(data + i + 48));
        _mm_storeu_si128((__m128i *)(data + i), _mm_xor_si128(a, k));
        _mm_storeu_si128((__m128i *)(data + i + 16), _mm_xor_si128(b, k));
        _mm_storeu_si128((__m128i *)(data + i + 32), _mm_xor_si128(c, k));
        _mm_storeu_si128((__m128i *)(data + i + 48), _mm_xor_si128(d, k));
    }
    for (; i + 16 <= len; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(data + i));
        _mm_storeu_si128((__m128i *)(data + i), _mm_xor_si128(a, k));
    }
    mask_tail(data + i, len - i, k32);
}

__attribute__((target("avx2"))) static void
mask_avx2(uint8_t *data, size_t len, uint32_t k32)
{
    __m256i k = _mm256_set1_epi32((int)k32);
    size_t i = 0;

    for (; i + 128 <= len; i += 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(data + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(data + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(data + i + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(data + i + 96));
        _mm256_storeu_si256((__m256i *)(data + i), _mm256_xor_si256(a, k));
        _mm256_storeu_si256((__m256i *)(data + i + 32), _mm256_xor_si256(b, k));
        _mm256_storeu_si256((__m256i *)(data + i + 64), _mm256_xor_si256(c, k));
        _mm256_storeu_si256((__m256i *)(data + i + 96), _mm256_xor_si256(d, k));
    }
    for (; i + 32 <= len; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(data + i));
        _mm256_storeu_si256((__m256i *)(data + i), _mm256_xor_si256(a, k));
    }
    mask_tail(data + i, len - i, k32);
}
#endif

bool
sw_ws_mask_impl_available(enum sw_ws_mask_impl impl)
{
    switch (impl) {
    case SW_WS_MASK_SCALAR:
        return true;
#if HAVE_X86
    case SW_WS_MASK_SSE2:
        return __builtin_cpu_supports("sse2");
    case SW_WS_MASK_AVX2:
        return __builtin_cpu_supports("avx2");
#endif
    default:
        return false;
    }
}

const char *
sw_ws_mask_impl_name(enum sw_ws_mask_impl impl)
{
    switch (impl) {
    case SW_WS_MASK_SCALAR:
        return "scalar";
    case SW_WS_MASK_SSE2:
        return "sse2";
    case SW_WS_MASK_AVX2:
        return "avx2";
    default:
        return "unknown";
    }
}

enum sw_status
sw_ws_mask_with(enum sw_ws_mask_impl impl, uint8_t *data, size_t len,
                const uint8_t key[4], size_t offset)
{
    uint32_t k32;

    if (!sw_ws_mask_impl_available(impl)) {
        return SW_EINVAL;
    }
    k32 = rotated_key(key, offset);
    switch (impl) {
#if HAVE_X86
    case SW_WS_MASK_SSE2:
        mask_sse2(data, len, k32);
        break;
    case SW_WS_MASK_AVX2:
        mask_avx2(data, len, k32);
        break;
#endif
    default:
        mask_scalar(data, len, k32);
        break;
    }
    return SW_OK;
}

void
sw_ws_mask(uint8_t *data, size_t len, const uint8_t key[4], size_t offset)
{
    uint32_t k32 = rotated_key(key, offset);

#if HAVE_X86
    /* Short payloads (pings, small messages) are not worth the vector
     * set-up; above that, wider is faster. */
    if (len >= 64 && __builtin_cpu_supports("avx2")) {
        mask_avx2(data, len, k32);
        return;
    }
    if (len >= 16 && __builtin_cpu_supports("sse2")) {
        mask_sse2(data, len, k32);
        return;
    }
#endif
    mask_scalar(data, len, k32);
}
