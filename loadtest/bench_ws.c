/*
 * bench_ws.c - micro-benchmarks for lib/ws: frame-header decode (ns/op),
 * masking per implementation, UTF-8 validation (ASCII and mixed text) and
 * memcpy as the yardstick, all on the same 1 MiB buffer.
 *
 * Prints a table, then one JSON line (for scripts). Not a test: timings
 * depend on the machine. Usage: bench_ws [seconds-per-case, default 0.3]
 *
 * Instructions per operation (stable across machines, unlike ns):
 *   valgrind --tool=callgrind --collect-atstart=no \
 *       --toggle-collect=sw_ws_frame_decode ./build/loadtest/bench_ws 0.05
 *   callgrind_annotate callgrind.out.<pid> | head
 * and divide the Ir of sw_ws_frame_decode by the "ops" printed for it.
 *
 * Owns its buffers; single-threaded.
 */
#include <shockwave/ws.h>

#include <time.h>

#define BUF_SIZE (1u << 20)
#define NHEADERS 1024

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Keeps results alive so the compiler cannot drop the work. */
static volatile uint64_t sink;

struct result {
    const char *name; /* case name */
    const char *unit; /* "ns/op" or "GB/s" */
    double value;     /* measured */
    uint64_t ops;     /* operations or passes run */
};

static struct result results[16];
static size_t nresults;

static void
record(const char *name, const char *unit, double value, uint64_t ops)
{
    results[nresults].name = name;
    results[nresults].unit = unit;
    results[nresults].value = value;
    results[nresults].ops = ops;
    nresults++;
}

/* Headers of varied shapes, one per 16-byte slot, like a read buffer full
 * of small client frames. The whole header is always in the buffer, which
 * is the decoder's fast path. */
static void
bench_decode(double secs)
{
    static uint8_t hdrs[NHEADERS][16];
    static const uint64_t lens[] = {5, 125, 126, 300, 65535, 70000};
    uint8_t key[4] = {1, 2, 3, 4};
    struct sw_ws_decoder d;
    struct sw_ws_frame f;
    uint64_t ops = 0;
    uint64_t acc = 0;
    double t0;
    double t;

    for (size_t i = 0; i < NHEADERS; i++) {
        key[0] = (uint8_t)i;
        sw_ws_frame_encode(hdrs[i], true, SW_WS_OP_BINARY, key,
                           lens[i % SW_NELEMS(lens)]);
    }
    sw_ws_decoder_init(&d, SW_WS_PEER_CLIENT, 0, 1u << 24);
    t0 = now_s();
    do {
        for (int rep = 0; rep < 100; rep++) {
            for (size_t i = 0; i < NHEADERS; i++) {
                ssize_t rc = sw_ws_frame_decode(&d, hdrs[i], 16, &f);
                acc += (uint64_t)rc + f.payload_len;
            }
        }
        ops += 100 * NHEADERS;
        t = now_s() - t0;
    } while (t < secs);
    sink = acc;
    record("frame_decode", "ns/op", t * 1e9 / (double)ops, ops);
}

typedef void (*pass_cb)(uint8_t *buf, size_t len, int variant);

static double
gbps(pass_cb fn, uint8_t *buf, int variant, double secs, uint64_t *passes)
{
    uint64_t n = 0;
    double t0 = now_s();
    double t;

    /* One warm-up pass so page faults are not timed. */
    fn(buf, BUF_SIZE, variant);
    t0 = now_s();
    do {
        for (int i = 0; i < 8; i++) {
            fn(buf, BUF_SIZE, variant);
        }
        n += 8;
        t = now_s() - t0;
    } while (t < secs);
    *passes = n;
    return (double)n * BUF_SIZE / t / 1e9;
}

static void
do_mask(uint8_t *buf, size_t len, int variant)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};

    if (variant < 0) {
        sw_ws_mask(buf, len, key, 1);
    } else {
        sw_ws_mask_with((enum sw_ws_mask_impl)variant, buf, len, key, 1);
    }
}

static uint8_t *memcpy_dst;

static void
do_memcpy(uint8_t *buf, size_t len, int variant)
{
    SW_UNUSED(variant);
    memcpy(memcpy_dst, buf, len);
    sink += memcpy_dst[len / 2];
}

static void
do_utf8(uint8_t *buf, size_t len, int variant)
{
    struct sw_ws_utf8 u;

    SW_UNUSED(variant);
    sw_ws_utf8_init(&u);
    sink += (uint64_t)sw_ws_utf8_feed(&u, buf, len);
    sink += (uint64_t)sw_ws_utf8_finish(&u);
}

/* Mixed text: mostly ASCII words with 2-, 3- and 4-byte characters. */
static void
fill_mixed(uint8_t *buf, size_t len)
{
    static const char piece[] = "Hello, w\xc3\xb6rld! \xce\xba\xe1\xbd\xb9"
                                "\xcf\x83\xce\xbc\xce\xb5 price \xe2\x82\xac"
                                "42 \xf0\x9f\x98\x80 ok. ";
    size_t n = sizeof(piece) - 1;
    size_t i = 0;

    for (; i + n <= len; i += n) {
        memcpy(buf + i, piece, n);
    }
    memset(buf + i, ' ', len - i);
}

int
main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 0.3;
    uint8_t *buf = malloc(BUF_SIZE);
    uint64_t passes;
    double v;

    memcpy_dst = malloc(BUF_SIZE);
    if (buf == NULL || memcpy_dst == NULL || secs <= 0) {
        fprintf(stderr, "usage: bench_ws [seconds-per-case]\n");
        return 1;
    }
    bench_decode(secs);

    for (size_t i = 0; i < BUF_SIZE; i++) {
        buf[i] = (uint8_t)(i * 131 + 7);
    }
    v = gbps(do_memcpy, buf, 0, secs, &passes);
    record("memcpy", "GB/s", v, passes);
    for (int impl = 0; impl < SW_WS_MASK_NIMPL; impl++) {
        static const char *const names[] = {"mask_scalar", "mask_sse2",
                                            "mask_avx2"};
        if (!sw_ws_mask_impl_available((enum sw_ws_mask_impl)impl)) {
            continue;
        }
        v = gbps(do_mask, buf, impl, secs, &passes);
        record(names[impl], "GB/s", v, passes);
    }
    v = gbps(do_mask, buf, -1, secs, &passes);
    record("mask_dispatch", "GB/s", v, passes);

    memset(buf, 'a', BUF_SIZE);
    v = gbps(do_utf8, buf, 0, secs, &passes);
    record("utf8_ascii", "GB/s", v, passes);
    fill_mixed(buf, BUF_SIZE);
    if (!sw_ws_utf8_is_valid(buf, BUF_SIZE)) {
        fprintf(stderr, "bench_ws: mixed text did not validate\n");
        return 1;
    }
    v = gbps(do_utf8, buf, 0, secs, &passes);
    record("utf8_mixed", "GB/s", v, passes);

    printf("%-16s %12s %8s %12s\n", "case", "value", "unit", "ops/passes");
    for (size_t i = 0; i < nresults; i++) {
        printf("%-16s %12.3f %8s %12llu\n", results[i].name, results[i].value,
               results[i].unit, (unsigned long long)results[i].ops);
    }
    printf("{\"bench\":\"ws\",\"buffer_bytes\":%u", BUF_SIZE);
    for (size_t i = 0; i < nresults; i++) {
        printf(",\"%s_%s\":%.3f", results[i].name,
               strcmp(results[i].unit, "GB/s") == 0 ? "gbps" : "ns",
               results[i].value);
    }
    printf("}\n");
    free(buf);
    free(memcpy_dst);
    return 0;
}
