/*
 * conf_cases.h - what the lib/conf suites (conf_test.c, conf_errors_test.c)
 * share: the smallest valid configuration, the error buffer and loading a
 * string as "t.conf".
 */
#ifndef SW_TEST_CONF_CASES_H
#define SW_TEST_CONF_CASES_H

#include <shockwave/conf.h>

#include <stdbool.h>
#include <string.h>

#define BASE                                                                   \
    "listen 127.0.0.1:8080;\n"                                                 \
    "upstream demo { server 127.0.0.1:9000; }\n"                               \
    "route { upstream demo; }\n"

static char err[8192];

static inline struct sw_conf *
load(const char *text)
{
    return sw_conf_load_string(text, "t.conf", NULL, err, sizeof(err));
}

static inline bool
str_is(struct sw_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

#endif
