/*
 * buf_test.c - Check suite for lib/buf's pool: buffers come back from the
 * free list, and sw_buf_pool_decay frees only what no get needed since its
 * last call (the free list's low-water mark), down to a floor.
 */
#include <shockwave/buf.h>

#include "support.h"

#include <check.h>

static void
take_and_put(struct sw_buf_pool *p, size_t n)
{
    static struct sw_buf *b[256];
    ck_assert_uint_le(n, 256);
    for (size_t i = 0; i < n; i++) {
        b[i] = sw_buf_get(p);
        ck_assert_ptr_nonnull(b[i]);
    }
    for (size_t i = 0; i < n; i++) {
        sw_buf_put(p, b[i]);
    }
}

START_TEST(free_list_reused)
{
    struct sw_buf_pool p;
    sw_buf_pool_init(&p, 1024, 100);
    take_and_put(&p, 10);
    ck_assert_uint_eq(p.nalloc, 10);
    take_and_put(&p, 10);
    ck_assert_uint_eq(p.nalloc, 10);
    ck_assert_uint_eq(p.nfree, 10);
    ck_assert_uint_eq(p.nused, 0);
    sw_buf_pool_fini(&p);
}
END_TEST

START_TEST(decay_frees_what_went_unused)
{
    struct sw_buf_pool p;
    sw_buf_pool_init(&p, 1024, 100);
    take_and_put(&p, 50); /* a burst: 50 idle now */
    ck_assert_uint_eq(p.nfree, 50);
    /* the burst itself used them all: nothing is spare yet */
    ck_assert_uint_eq(sw_buf_pool_decay(&p, 8), 0);
    ck_assert_uint_eq(p.nfree, 50);
    /* a quiet interval with 5 in use at most: 45 were never needed, and
     * all but the floor's 8 of them go */
    take_and_put(&p, 5);
    ck_assert_uint_eq(sw_buf_pool_decay(&p, 8), 37);
    ck_assert_uint_eq(p.nfree, 13);
    /* nothing taken since: only the floor stays */
    ck_assert_uint_eq(sw_buf_pool_decay(&p, 8), 5);
    ck_assert_uint_eq(p.nfree, 8);
    /* at the floor nothing more goes */
    ck_assert_uint_eq(sw_buf_pool_decay(&p, 8), 0);
    ck_assert_uint_eq(p.nfree, 8);
    take_and_put(&p, 20); /* busy again: the pool grows back */
    ck_assert_uint_eq(p.nfree, 20);
    sw_buf_pool_fini(&p);
}
END_TEST

static Suite *
buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("pool");
    tcase_add_test(tc, free_list_reused);
    tcase_add_test(tc, decay_frees_what_went_unused);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(buf_suite());
}
