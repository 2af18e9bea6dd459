/*
 * core.h - status codes, assertions and small helpers shared by every module.
 *
 * Owns nothing. Thread-safe: everything here is pure or reads constants.
 *
 * Shapes by kind (STYLE.md): actions return enum sw_status; byte counts return
 * ssize_t (negative values are statuses); predicates return bool;
 * constructors return NULL on failure.
 */
#ifndef SHOCKWAVE_CORE_H
#define SHOCKWAVE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

enum sw_status {
    SW_OK = 0,
    SW_AGAIN = -1,     /* need more input / would block: not a failure */
    SW_DECLINED = -2,  /* not mine: route miss, plugin pass */
    SW_ERROR = -3,     /* generic failure (errno logged at the syscall site) */
    SW_ENOMEM = -4,    /* allocation or pool exhausted */
    SW_EPROTO = -5,    /* peer broke HTTP or RFC 6455 */
    SW_ETOOBIG = -6,   /* a configured limit was exceeded */
    SW_ETIMEDOUT = -7, /* a timer fired */
    SW_ECLOSED = -8,   /* peer closed the connection */
    SW_EINVAL = -9,    /* bad argument or configuration */
};

/* Returns a static name for a status ("SW_EPROTO"), never NULL. */
const char *sw_strerror(int status);

/* A borrowed byte slice: (p, len) into a caller's buffer. Never NUL-terminated
 * unless stated. */
struct sw_str {
    const char *p; /* borrowed (from the buffer it was cut from) */
    size_t len;    /* bytes at p */
};

#define SW_STR(lit) ((struct sw_str){(lit), sizeof(lit) - 1})
#define SW_NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define SW_MIN(a, b) ((a) < (b) ? (a) : (b))
/* n rounded up to a multiple of a. */
#define SW_ALIGN_UP(n, a) (((n) + (a)-1) / (a) * (a))
#define SW_MAX(a, b) ((a) > (b) ? (a) : (b))
#define SW_UNUSED(x) ((void)(x))
#define SW_LIKELY(x) __builtin_expect(!!(x), 1)
#define SW_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Recover the enclosing struct from a pointer to one of its members. */
#define sw_container_of(ptr, type, member)                                     \
    ((type *)((char *)(ptr)-offsetof(type, member)))

/* SW_ASSERT is for our own invariants only; bytes from a peer never trip it. */
void sw__assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));
#define SW_ASSERT(e)                                                           \
    do {                                                                       \
        if (SW_UNLIKELY(!(e))) {                                               \
            sw__assert_fail(#e, __FILE__, __LINE__);                           \
        }                                                                      \
    } while (0)

/* Case-insensitive equality of a slice with a NUL-terminated ASCII string.
 * Inline so that the length of a literal folds to a constant: header
 * names are compared many times per request. */
static inline bool
sw_str_eq_ci(struct sw_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(s.p, lit, n) == 0;
}

/* True when the comma-separated list s (an HTTP header value) holds token
 * tok, compared case-insensitively ("keep-alive, Upgrade" has "upgrade"). */
bool sw_str_has_token(struct sw_str s, const char *tok);

/* The value of the hex digit ch (either case), or -1. */
int sw_hex_value(char ch);

/* RFC 3986 2.1: `in` percent-decoded into out[0..cap) ("%40" is "@"; a "+"
 * stays a "+"). Returns the decoded length; SW_EINVAL for a "%" without
 * two hex digits after it, or for "%00" (no NUL gets in), with *bad (when
 * not NULL) set to its offset in `in`; SW_ETOOBIG when out is too small. */
ssize_t sw_percent_decode(struct sw_str in, char *out, size_t cap, size_t *bad);

/* One bit of a flags word and its name, for sw_flags_show(). */
struct sw_flag_name {
    unsigned flag;    /* the bit */
    const char *name; /* borrowed (static): "EOF" */
};

/* Print the names of the bits of `flags` found in names[0..count) as
 * "READING|EOF" ("-" for none) into out[0..n), truncated to fit and
 * NUL-terminated when n > 0. Returns out. */
const char *sw_flags_show(unsigned flags, const struct sw_flag_name *names,
                          size_t count, char *out, size_t n);

/* Monotonic clock in milliseconds. */
uint64_t sw_now_ms(void);

/* A 64-bit hash of p[0..n) (FNV-1a with a final mix, so the low bits of
 * nearby keys differ too); `seed` varies it per use. */
uint64_t sw_hash64(const char *p, size_t n, uint64_t seed);

/* Wall clock in milliseconds since 1970 (for what people read: status
 * pages, last-change times). */
uint64_t sw_wall_ms(void);

#endif
