/*
 * ratelimit_test.c - the ratelimit plugin's bucket math and key table
 * (plugins/ratelimit/bucket.c, keytab.c), compiled into this program:
 * exact refills at any step, the wait until the next token, rates divided
 * among workers, the largest values without overflow, and LRU eviction
 * checked against the table's own invariants after every change.
 */
#include "../../plugins/ratelimit/ratelimit.h"
#include "support.h"

#include <check.h>

static struct rl_rate
rate(const char *text, bool bytes, uint64_t burst)
{
    struct rl_rate r = {.scale = bytes ? RL_SCALE_BYTES : RL_SCALE_COUNT,
                        .set = true};
    const char *why = NULL;
    ck_assert_msg(rl_rate_parse(text, bytes, &r.count, &r.period_ms, &why) ==
                      SW_OK,
                  "%s: %s", text, why);
    r.burst = burst != 0 ? burst : r.count;
    return r;
}

START_TEST(parse_rates)
{
    struct rl_rate r = rate("600/m", false, 0);
    ck_assert_uint_eq(r.count, 600);
    ck_assert_uint_eq(r.period_ms, 60000);
    ck_assert_uint_eq(r.burst, 600);
    r = rate("64k/s", true, 0);
    ck_assert_uint_eq(r.count, 65536);
    ck_assert_uint_eq(r.period_ms, 1000);
    r = rate("2/h", false, 0);
    ck_assert_uint_eq(r.period_ms, RL_PERIOD_MAX);
    static const char *const bad[] = {
        "10/x", "/s", "0/s", "1000001/s", "10", "a/s", "10/s/", "-1/s", "10/"};
    for (size_t i = 0; i < SW_NELEMS(bad); i++) {
        uint64_t c, p;
        const char *why = NULL;
        ck_assert_msg(rl_rate_parse(bad[i], false, &c, &p, &why) == SW_EINVAL,
                      "%s accepted", bad[i]);
        ck_assert_ptr_nonnull(why);
    }
    uint64_t c, p;
    const char *why = NULL;
    ck_assert_int_eq(rl_rate_parse("3g/s", true, &c, &p, &why), SW_EINVAL);
}
END_TEST

START_TEST(burst_then_refill)
{
    struct rl_rate r = rate("5/s", false, 5);
    struct rl_bucket b = {0};
    uint64_t wait = 0;
    int ok = 0;
    for (int i = 0; i < 20; i++) {
        ok += rl_bucket_take(&b, &r, 1000, 1, &wait);
    }
    ck_assert_int_eq(ok, 5);
    ck_assert_uint_eq(wait, 200); /* one token every 200 ms */
    ck_assert(!rl_bucket_take(&b, &r, 1199, 1, &wait));
    ck_assert_uint_eq(wait, 1);
    ck_assert(rl_bucket_take(&b, &r, 1200, 1, NULL));
    /* refilled at every millisecond or all at once: the same tokens */
    ok = 0;
    for (uint64_t t = 1201; t <= 11200; t++) {
        ok += rl_bucket_take(&b, &r, t, 1, NULL);
    }
    ck_assert_int_eq(ok, 50);
    /* a clock that does not move, or goes back, adds nothing */
    ck_assert(!rl_bucket_take(&b, &r, 11200, 1, NULL));
    ck_assert(!rl_bucket_take(&b, &r, 5000, 1, NULL));
    /* a long pause fills up to the burst, no more */
    ok = 0;
    for (int i = 0; i < 10; i++) {
        ok += rl_bucket_take(&b, &r, 1000000, 1, NULL);
    }
    ck_assert_int_eq(ok, 5);
}
END_TEST

START_TEST(slow_rate_keeps_remainders)
{
    /* 1/m polled every 7 ms: each poll adds 7/60000 of a token, which only
     * the carried remainder keeps */
    struct rl_rate r = rate("1/m", false, 1);
    struct rl_bucket b = {0};
    ck_assert(rl_bucket_take(&b, &r, 0, 1, NULL));
    int ok = 0;
    for (uint64_t t = 7; t <= 600000; t += 7) {
        ok += rl_bucket_take(&b, &r, t, 1, NULL);
    }
    ck_assert_int_eq(ok, 9); /* 599998 ms: 9 whole tokens */
}
END_TEST

START_TEST(divided_among_workers)
{
    struct rl_rate r = rate("10/s", false, 10);
    rl_rate_divide(&r, 2);
    ck_assert_uint_eq(r.count, 10);
    ck_assert_uint_eq(r.period_ms, 2000);
    ck_assert_uint_eq(r.burst, 5);
    struct rl_bucket b = {0};
    int ok = 0;
    for (uint64_t t = 0; t <= 10000; t++) {
        ok += rl_bucket_take(&b, &r, t, 1, NULL);
    }
    ck_assert_int_eq(ok, 5 + 50); /* 5/s for 10 s */
    r = rate("5/s", false, 5);
    rl_rate_divide(&r, 3);
    ck_assert_uint_eq(r.burst, 2); /* rounded up */
    r = rate("1/s", false, 1);
    rl_rate_divide(&r, 8);
    ck_assert_uint_eq(r.burst, 1); /* at least 1 */
    rl_rate_divide(&r, 1);
    ck_assert_uint_eq(r.period_ms, 8000);
}
END_TEST

START_TEST(bytes_and_large_values)
{
    struct rl_rate r = rate("1k/m", true, 0);
    struct rl_bucket b = {0};
    uint64_t wait = 0;
    ck_assert(rl_bucket_take(&b, &r, 5, 600, &wait));
    ck_assert(!rl_bucket_take(&b, &r, 5, 1000, &wait));
    ck_assert_uint_eq(wait, 33750); /* 576 bytes at 1024 per minute */
    ck_assert(!rl_bucket_take(&b, &r, 5, 2000, &wait));
    ck_assert_uint_eq(wait, UINT64_MAX); /* more than the burst */
    ck_assert(!rl_bucket_take(&b, &r, 5 + 33749, 1000, NULL));
    ck_assert(rl_bucket_take(&b, &r, 5 + 33750, 1000, NULL));
    /* the largest rate, period and burst the configuration allows */
    struct rl_rate big = {.count = RL_BYTES_MAX,
                          .period_ms = RL_PERIOD_MAX,
                          .burst = RL_BYTES_MAX,
                          .scale = RL_SCALE_BYTES,
                          .set = true};
    rl_rate_divide(&big, 1024);
    big.burst = RL_BYTES_MAX; /* and a burst that was not divided */
    struct rl_bucket e = {0};
    ck_assert(rl_bucket_take(&e, &big, 1, RL_BYTES_MAX, NULL));
    ck_assert(!rl_bucket_take(&e, &big, 2, RL_BYTES_MAX, &wait));
    ck_assert_uint_le(wait, RL_PERIOD_MAX * 1024);
    ck_assert_uint_ge(wait, RL_PERIOD_MAX * 1024 - 1);
    ck_assert(
        !rl_bucket_take(&e, &big, RL_PERIOD_MAX * 1024 - 1, 1ull << 31, NULL));
    ck_assert(
        rl_bucket_take(&e, &big, RL_PERIOD_MAX * 1024 + 1, 1ull << 31, NULL));
    ck_assert(rl_bucket_take(&e, &big, UINT64_MAX / 2, RL_BYTES_MAX, NULL));
    struct rl_rate cnt = rate("1000000/h", false, RL_COUNT_MAX);
    rl_rate_divide(&cnt, 1024);
    struct rl_bucket f = {0};
    ck_assert(rl_bucket_take(&f, &cnt, 0, cnt.burst, NULL));
    ck_assert(!rl_bucket_take(&f, &cnt, 0, 1, &wait));
    ck_assert_uint_gt(wait, 0);
    ck_assert(rl_bucket_take(&f, &cnt, UINT64_MAX / 2, cnt.burst, NULL));
}
END_TEST

START_TEST(smaller_burst_after_reload)
{
    struct rl_rate r = rate("100/s", false, 100);
    struct rl_bucket b = {0};
    ck_assert(rl_bucket_take(&b, &r, 0, 1, NULL)); /* 99 left */
    struct rl_rate smaller = rate("10/s", false, 10);
    int ok = 0;
    for (int i = 0; i < 50; i++) {
        ok += rl_bucket_take(&b, &smaller, 0, 1, NULL);
    }
    ck_assert_int_eq(ok, 10);
}
END_TEST

/* The table's invariants: chains hold what their slot says, the LRU list
 * is linked both ways, both hold count entries. */
static void
validate(const struct rl_table *t)
{
    size_t chained = 0;
    for (size_t i = 0; i < t->nslots; i++) {
        for (const struct rl_entry *e = t->slot[i]; e != NULL; e = e->next) {
            ck_assert_uint_eq(e->hash & (t->nslots - 1), i);
            chained++;
        }
    }
    size_t listed = 0;
    const struct rl_entry *prev = NULL;
    for (const struct rl_entry *e = t->mru; e != NULL; e = e->lru_next) {
        ck_assert_ptr_eq(e->lru_prev, prev);
        prev = e;
        listed++;
    }
    ck_assert_ptr_eq(t->lru, prev);
    ck_assert_uint_eq(chained, t->count);
    ck_assert_uint_eq(listed, t->count);
}

static struct rl_entry *
get(struct rl_table *t, const char *key, size_t max, size_t *evicted)
{
    struct rl_entry *e = rl_table_get(t, key, strlen(key), max, evicted);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->key_len, strlen(key));
    ck_assert(memcmp(e->key, key, e->key_len) == 0);
    validate(t);
    return e;
}

START_TEST(table_lru)
{
    struct rl_worker *w = rl_worker_new(3);
    ck_assert_ptr_nonnull(w);
    struct rl_table *t = rl_worker_table(w, "api", rl_hash("api", 3, 0));
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_eq(rl_worker_table(w, "api", rl_hash("api", 3, 0)), t);
    struct rl_table *other = rl_worker_table(w, "chat", rl_hash("chat", 4, 0));
    ck_assert_ptr_ne(other, t);
    size_t evicted = 0;
    char key[16];
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        get(t, key, 3, &evicted);
    }
    /* k0 used again: k1 is now the least recently used */
    struct rl_entry *k0 = get(t, "k0", 3, &evicted);
    ck_assert_ptr_eq(get(t, "k0", 3, &evicted), k0);
    get(t, "k3", 3, &evicted);
    ck_assert_uint_eq(evicted, 1);
    ck_assert_uint_eq(t->count, 3);
    ck_assert_ptr_eq(get(t, "k0", 3, &evicted), k0); /* still there */
    ck_assert_uint_eq(evicted, 1);
    get(t, "k1", 3, &evicted); /* back, as a new entry: evicts k2 */
    ck_assert_uint_eq(evicted, 2);
    /* a smaller bound after a reload: evicted down to it at the next key */
    get(t, "k9", 1, &evicted);
    ck_assert_uint_eq(t->count, 1);
    ck_assert_uint_eq(evicted, 5);
    /* the same key in another route's table is another entry */
    ck_assert_ptr_ne(get(other, "k9", 3, &evicted), get(t, "k9", 3, &evicted));
    rl_worker_free(w);
}
END_TEST

START_TEST(table_grows)
{
    struct rl_worker *w = rl_worker_new(0);
    struct rl_table *t = rl_worker_table(w, "r", 1);
    size_t evicted = 0, slots = t->nslots;
    char key[16];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        ck_assert_ptr_nonnull(
            rl_table_get(t, key, strlen(key), 4000, &evicted));
    }
    validate(t);
    ck_assert_uint_eq(t->count, 4000);
    ck_assert_uint_eq(evicted, 1000);
    ck_assert_uint_gt(t->nslots, slots);
    ck_assert_uint_le(t->nslots, 4096);
    /* the first 1000 went first; the rest are found */
    for (int i = 1000; i < 5000; i += 97) {
        snprintf(key, sizeof(key), "key-%d", i);
        rl_table_get(t, key, strlen(key), 4000, &evicted);
    }
    ck_assert_uint_eq(evicted, 1000);
    rl_worker_free(w);
    rl_worker_free(NULL);
}
END_TEST

static Suite *
ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("bucket");
    tcase_add_test(tc, parse_rates);
    tcase_add_test(tc, burst_then_refill);
    tcase_add_test(tc, slow_rate_keeps_remainders);
    tcase_add_test(tc, divided_among_workers);
    tcase_add_test(tc, bytes_and_large_values);
    tcase_add_test(tc, smaller_burst_after_reload);
    suite_add_tcase(s, tc);
    TCase *tk = tcase_create("keytab");
    tcase_add_test(tk, table_lru);
    tcase_add_test(tk, table_grows);
    suite_add_tcase(s, tk);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(ratelimit_suite());
}
