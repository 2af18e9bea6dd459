/*
 * support.h - helpers shared by the Check suites.
 *
 * Codec tests place input flush against a PROT_NONE guard page so that any
 * read past the end crashes (after picohttpparser's test.c), and split input
 * at random points with a seeded, reproducible generator.
 */
#ifndef SW_TEST_SUPPORT_H
#define SW_TEST_SUPPORT_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* Sleep ms milliseconds (resumed after a signal). */
void sw_test_sleep_ms(int ms);

/* Run a Check suite the way every test program does; returns the exit
 * status: 0 when every test passed, 1 otherwise. */
int sw_test_run_suite(Suite *s);

/* `text` with every "DIR/" cut out, for stable comparisons of messages
 * that name files in a temporary folder. A static buffer of 16 KiB (longer
 * text is cut), overwritten by the next call. */
const char *sw_test_cut_dir(const char *text, const char *dir);

/* Copy data into fresh pages so that its last byte sits right before an
 * unreadable page. Returns the copy; release it with sw_test_guard_free. */
void *sw_test_guard_copy(const void *data, size_t len);
void sw_test_guard_free(void *p, size_t len);

/* xorshift64*: deterministic pseudo-random numbers for split points. */
struct sw_test_rng {
    uint64_t s; /* state, never 0 */
};
void sw_test_rng_init(struct sw_test_rng *r, uint64_t seed);
uint64_t sw_test_rng_next(struct sw_test_rng *r);
/* Uniform in [0, n); n > 0. */
size_t sw_test_rng_below(struct sw_test_rng *r, size_t n);

#endif
