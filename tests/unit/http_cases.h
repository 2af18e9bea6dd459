/*
 * http_cases.h - what the lib/http suites (http_test.c, http_response_test.c)
 * share: header array size, rounds of random splits, the small limits and
 * comparing a slice with a literal.
 */
#ifndef SW_TEST_HTTP_CASES_H
#define SW_TEST_HTTP_CASES_H

#include <shockwave/http.h>

#include <stdbool.h>
#include <string.h>

#define NHDR 32
#define RANDOM_ROUNDS 16

/* Limits small enough that the limit vectors stay readable. */
static const struct sw_http_limits lim_small = {
    .max_head = 512,
    .max_request_line = 64,
    .max_headers = 8,
};

#define V(lit) .data = (lit), .len = sizeof(lit) - 1

static inline bool
slice_is(struct sw_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

#endif
