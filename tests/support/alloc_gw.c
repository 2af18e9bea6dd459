/*
 * alloc_gw.c - the daemon with the allocation counter preloaded, for the
 * zero-allocation suites (ws_alloc, fanout_alloc): LD_PRELOAD is set for
 * the start only, and a build the counter cannot count in is told apart
 * from a daemon that should count and does not.
 */
#include "alloc_gw.h"
#include "net.h"
#include "support.h"

#include <shockwave/core.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* True when the file at path contains the string. */
static bool
file_has(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        return false;
    }
    size_t nl = strlen(needle);
    char buf[65536 + 64];
    size_t keep = 0;
    bool found = false;
    for (;;) {
        size_t n = fread(buf + keep, 1, 65536, fp);
        if (n == 0) {
            break;
        }
        size_t total = keep + n;
        if (memmem(buf, total, needle, nl) != NULL) {
            found = true;
            break;
        }
        /* carry the tail over to catch a needle across two reads */
        keep = SW_MIN(nl - 1, total);
        memmove(buf, buf + total - keep, keep);
    }
    fclose(fp);
    return found;
}

long long
sw_test_allocs(int admin_port)
{
    return sw_test_metric(admin_port, "shockwave_process_allocations_total");
}

long long
sw_test_alloc_baseline(int admin_port, long long *now)
{
    long long m1 = sw_test_allocs(admin_port);
    long long m2 = sw_test_allocs(admin_port);
    *now = sw_test_allocs(admin_port);
    long long base = m2 - m1;
    ck_assert_msg(*now - m2 == base,
                  "the admin's own allocations vary: %lld then %lld", base,
                  *now - m2);
    return base;
}

bool
sw_test_gw_start_counted(struct sw_test_gw *g, const char *conf_name,
                         const char *const *kv, const char *suite)
{
    const char *lib = getenv("SW_ALLOCCOUNT");
    if (lib == NULL || lib[0] == '\0') {
        fprintf(stderr,
                "%s: SKIP: SW_ALLOCCOUNT is empty (the allocation "
                "counter was not built)\n",
                suite);
        return false;
    }
    /* an ASan runtime intercepts malloc itself and must come first */
    bool asan = file_has(sw_test_env("SW_SHOCKWAVE"), "__asan_init");
    setenv("LD_PRELOAD", lib, 1);
    bool started = sw_test_gw_start(g, conf_name, kv);
    unsetenv("LD_PRELOAD");
    if (!started && asan) {
        fprintf(stderr,
                "%s: SKIP: AddressSanitizer build: the daemon does "
                "not start with the allocation counter preloaded\n",
                suite);
        return false;
    }
    ck_assert_msg(started, "daemon did not start with LD_PRELOAD=%s", lib);
    if (sw_test_allocs(g->admin_port) < 0 && asan) {
        fprintf(stderr,
                "%s: SKIP: AddressSanitizer build: "
                "shockwave_process_allocations_total is missing "
                "(ASan intercepts malloc)\n",
                suite);
        sw_test_gw_stop(g);
        return false;
    }
    ck_assert_msg(sw_test_allocs(g->admin_port) >= 0,
                  "shockwave_process_allocations_total missing although "
                  "the counter is preloaded");
    return true;
}
