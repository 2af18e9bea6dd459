/*
 * slab_test.c - Check suite for lib/core/slab.c: objects are distinct,
 * aligned and whole; freed slots are reused; a chunk that empties is
 * unmapped unless it is the only one with room; zalloc zeroes a reused
 * slot. Under AddressSanitizer the slab hands out plain mallocs (so the
 * sanitizer sees every object): the chunk checks then do not apply.
 */
#include <shockwave/slab.h>

#include "support.h"

#include <check.h>

#define OBJ 600

static bool
chunked(const struct sw_slab *s)
{
    return s->nchunks > 0;
}

START_TEST(objects_distinct_aligned_whole)
{
    struct sw_slab s;
    sw_slab_init(&s, OBJ);
    ck_assert_uint_gt(s.slots, 1);
    enum { N = 300 };
    static uint8_t *objs[N];
    for (int i = 0; i < N; i++) {
        objs[i] = sw_slab_alloc(&s);
        ck_assert_ptr_nonnull(objs[i]);
        ck_assert_uint_eq((uintptr_t)objs[i] % 16, 0);
        memset(objs[i], i & 0xff, OBJ);
    }
    ck_assert_uint_eq(s.nused, N);
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < OBJ; k++) {
            ck_assert_uint_eq(objs[i][k], (unsigned)(i & 0xff));
        }
    }
    if (chunked(&s)) {
        ck_assert_uint_eq(s.nchunks, (N + s.slots - 1) / s.slots);
    }
    for (int i = 0; i < N; i++) {
        sw_slab_free(&s, objs[i]);
    }
    ck_assert_uint_eq(s.nused, 0);
    /* every chunk emptied: all but one went back */
    ck_assert_uint_le(s.nchunks, 1);
    sw_slab_fini(&s);
    ck_assert_uint_eq(s.nchunks, 0);
}
END_TEST

START_TEST(freed_slot_reused_and_zeroed)
{
    struct sw_slab s;
    sw_slab_init(&s, OBJ);
    uint8_t *a = sw_slab_alloc(&s);
    uint8_t *b = sw_slab_alloc(&s);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    memset(b, 0xab, OBJ);
    sw_slab_free(&s, b);
    uint8_t *c = sw_slab_zalloc(&s);
    ck_assert_ptr_nonnull(c);
    if (chunked(&s)) {
        ck_assert_ptr_eq(c, b); /* the chunk's free list first */
    }
    for (int k = 0; k < OBJ; k++) {
        ck_assert_uint_eq(c[k], 0);
    }
    sw_slab_free(&s, a);
    sw_slab_free(&s, c);
    sw_slab_free(&s, NULL);
    ck_assert_uint_eq(s.nused, 0);
    sw_slab_fini(&s);
}
END_TEST

/* One object parked and woken over and over at a chunk boundary must not
 * map and unmap a chunk each time. */
START_TEST(one_chunk_with_room_is_kept)
{
    struct sw_slab s;
    sw_slab_init(&s, OBJ);
    uint8_t *a = sw_slab_alloc(&s);
    if (!chunked(&s)) {
        sw_slab_free(&s, a);
        return; /* malloc mode */
    }
    for (int i = 0; i < 100; i++) {
        sw_slab_free(&s, a);
        ck_assert_uint_eq(s.nchunks, 1);
        a = sw_slab_alloc(&s);
    }
    /* a full chunk and a second one: emptying the second keeps it (the
     * only one with room), emptying the first then unmaps the first */
    static uint8_t *objs[4096];
    size_t n = s.slots + 1;
    ck_assert_uint_lt(n, 4096);
    objs[0] = a;
    for (size_t i = 1; i < n; i++) {
        objs[i] = sw_slab_alloc(&s);
    }
    ck_assert_uint_eq(s.nchunks, 2);
    for (size_t i = n; i-- > 0;) {
        sw_slab_free(&s, objs[i]);
    }
    ck_assert_uint_eq(s.nchunks, 1);
    sw_slab_fini(&s);
}
END_TEST

static Suite *
slab_suite(void)
{
    Suite *s = suite_create("slab");
    TCase *tc = tcase_create("slab");
    tcase_add_test(tc, objects_distinct_aligned_whole);
    tcase_add_test(tc, freed_slot_reused_and_zeroed);
    tcase_add_test(tc, one_chunk_with_room_is_kept);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(slab_suite());
}
