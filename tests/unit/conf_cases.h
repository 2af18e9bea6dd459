/*
 * conf_cases.h - what the lib/conf suites (conf_test.c, conf_errors_test.c,
 * conf_engine_test.c) share: the smallest valid configuration, the error
 * buffer, loading a string as "t.conf" and a snapshot's `shockwave -T` text.
 */
#ifndef SW_TEST_CONF_CASES_H
#define SW_TEST_CONF_CASES_H

#include <shockwave/conf.h>

#include <stdbool.h>
#include <stdio.h>
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

/* sw_conf_dump() into a malloc'd string (the caller frees), NULL when no
 * memory stream could be opened. */
static inline char *
dump_text(const struct sw_conf *cf)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL) {
        return NULL;
    }
    sw_conf_dump(cf, f);
    fclose(f);
    return out;
}

#endif
