/*
 * core.c - status names, the assertion handler and small string helpers.
 *
 * Owns nothing, no state; safe from any thread.
 */
#include <shockwave/core.h>

#include <strings.h>
#include <time.h>

const char *
sw_strerror(int status)
{
    switch (status) {
    case SW_OK:
        return "SW_OK";
    case SW_AGAIN:
        return "SW_AGAIN";
    case SW_DECLINED:
        return "SW_DECLINED";
    case SW_ERROR:
        return "SW_ERROR";
    case SW_ENOMEM:
        return "SW_ENOMEM";
    case SW_EPROTO:
        return "SW_EPROTO";
    case SW_ETOOBIG:
        return "SW_ETOOBIG";
    case SW_ETIMEDOUT:
        return "SW_ETIMEDOUT";
    case SW_ECLOSED:
        return "SW_ECLOSED";
    case SW_EINVAL:
        return "SW_EINVAL";
    }
    return "SW_UNKNOWN";
}

void
sw__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "shockwave: assertion failed: %s (%s:%d)\n", expr, file,
            line);
    abort();
}

static bool
is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

bool
sw_str_has_token(struct sw_str s, const char *tok)
{
    size_t i = 0;
    while (i < s.len) {
        while (i < s.len && (is_ows(s.p[i]) || s.p[i] == ',')) {
            i++;
        }
        size_t start = i;
        while (i < s.len && s.p[i] != ',') {
            i++;
        }
        size_t end = i;
        while (end > start && is_ows(s.p[end - 1])) {
            end--;
        }
        struct sw_str item = {s.p + start, end - start};
        if (item.len > 0 && sw_str_eq_ci(item, tok)) {
            return true;
        }
    }
    return false;
}

uint64_t
sw_hash64(const char *p, size_t n, uint64_t seed)
{
    /* FNV-1a, then a final mix so nearby keys spread */
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

uint64_t
sw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
sw_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *
sw_flags_show(unsigned flags, const struct sw_flag_name *names, size_t count,
              char *out, size_t n)
{
    size_t len = 0;
    if (n == 0) {
        return out;
    }
    out[0] = '\0';
    for (size_t i = 0; i < count && len < n; i++) {
        if (flags & names[i].flag) {
            int k = snprintf(out + len, n - len, "%s%s", len ? "|" : "",
                             names[i].name);
            len += k > 0 ? (size_t)k : 0;
        }
    }
    if (len == 0 && n > 1) {
        snprintf(out, n, "-");
    }
    return out;
}

int
sw_hex_value(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    ch = (char)(ch | 0x20);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

ssize_t
sw_percent_decode(struct sw_str in, char *out, size_t cap, size_t *bad)
{
    size_t n = 0;
    for (size_t i = 0; i < in.len; i++) {
        char ch = in.p[i];
        if (ch == '%') {
            int hi = i + 2 < in.len ? sw_hex_value(in.p[i + 1]) : -1;
            int lo = i + 2 < in.len ? sw_hex_value(in.p[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi | lo) == 0) {
                if (bad != NULL) {
                    *bad = i;
                }
                return SW_EINVAL;
            }
            ch = (char)(hi << 4 | lo);
            i += 2;
        }
        if (n == cap) {
            return SW_ETOOBIG;
        }
        out[n++] = ch;
    }
    return (ssize_t)n;
}
