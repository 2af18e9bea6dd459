/*
 * support.c - guard pages and the seeded generator (see support.h).
 */
#include "support.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static size_t
page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static size_t
data_pages(size_t len)
{
    size_t ps = page_size();
    return (len + ps - 1) / ps;
}

void *
sw_test_guard_copy(const void *data, size_t len)
{
    size_t ps = page_size();
    size_t n = data_pages(len);
    uint8_t *base = mmap(NULL, (n + 1) * ps, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        abort();
    }
    if (mprotect(base + n * ps, ps, PROT_NONE) != 0) {
        abort();
    }
    uint8_t *p = base + n * ps - len;
    if (len > 0) {
        memcpy(p, data, len);
    }
    return p;
}

void
sw_test_guard_free(void *p, size_t len)
{
    size_t ps = page_size();
    size_t n = data_pages(len);
    uint8_t *base = (uint8_t *)p + len - n * ps;
    munmap(base, (n + 1) * ps);
}

void
sw_test_rng_init(struct sw_test_rng *r, uint64_t seed)
{
    r->s = seed != 0 ? seed : 0x9e3779b97f4a7c15ull;
}

uint64_t
sw_test_rng_next(struct sw_test_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

size_t
sw_test_rng_below(struct sw_test_rng *r, size_t n)
{
    return (size_t)(sw_test_rng_next(r) % n);
}

int
sw_test_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

void
sw_test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

const char *
sw_test_cut_dir(const char *text, const char *dir)
{
    static char out[16384];
    size_t n = strlen(dir);
    size_t o = 0;
    for (const char *p = text; *p != '\0' && o + 1 < sizeof(out);) {
        if (strncmp(p, dir, n) == 0 && p[n] == '/') {
            p += n + 1;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}
