/*
 * json.c - the admin answers' JSON writer (see json.h). Owns its buffer;
 * one thread.
 */
#include "json.h"

#include <shockwave/ws.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
sw_json_init(struct sw_json *j)
{
    memset(j, 0, sizeof(*j));
}

void
sw_json_fini(struct sw_json *j)
{
    free(j->buf);
    memset(j, 0, sizeof(*j));
}

static bool
reserve(struct sw_json *j, size_t n)
{
    if (j->failed) {
        return false;
    }
    if (j->len + n + 1 <= j->cap) {
        return true;
    }
    size_t cap = j->cap ? j->cap : 4096;
    while (cap < j->len + n + 1) {
        cap *= 2;
    }
    char *nb = realloc(j->buf, cap);
    if (nb == NULL) {
        j->failed = true;
        return false;
    }
    j->buf = nb;
    j->cap = cap;
    return true;
}

static void
put(struct sw_json *j, const char *p, size_t n)
{
    if (reserve(j, n)) {
        memcpy(j->buf + j->len, p, n);
        j->len += n;
        j->buf[j->len] = '\0';
    }
}

/* utf8: s is valid UTF-8, so bytes >= 0x80 are copied as they are. */
static void
put_str(struct sw_json *j, const char *s, size_t n, bool utf8)
{
    static const char hex[] = "0123456789abcdef";
    put(j, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(j, e, 2);
        } else if (c == '\n') {
            put(j, "\\n", 2);
        } else if (c == '\t') {
            put(j, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f || (c > 0x7f && !utf8)) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(j, e, 6);
        } else {
            put(j, (const char *)&s[i], 1);
        }
    }
    put(j, "\"", 1);
}

/* The comma and the key before a member. */
static void
member(struct sw_json *j, const char *key)
{
    if (j->depth > 0) {
        uint64_t bit = 1ull << (j->depth - 1);
        if (j->filled & bit) {
            put(j, ",", 1);
        }
        j->filled |= bit;
    }
    if (key != NULL) {
        put_str(j, key, strlen(key), false);
        put(j, ":", 1);
    }
}

static void
open_level(struct sw_json *j, const char *key, const char *brace)
{
    if (j->depth >= SW_JSON_DEPTH) {
        j->failed = true;
        return;
    }
    member(j, key);
    put(j, brace, 1);
    j->depth++;
    j->filled &= ~(1ull << (j->depth - 1));
}

static void
close_level(struct sw_json *j, const char *brace)
{
    if (j->depth == 0) {
        j->failed = true;
        return;
    }
    j->depth--;
    put(j, brace, 1);
}

void
sw_json_obj_open(struct sw_json *j, const char *key)
{
    open_level(j, key, "{");
}

void
sw_json_obj_close(struct sw_json *j)
{
    close_level(j, "}");
}

void
sw_json_arr_open(struct sw_json *j, const char *key)
{
    open_level(j, key, "[");
}

void
sw_json_arr_close(struct sw_json *j)
{
    close_level(j, "]");
}

void
sw_json_str(struct sw_json *j, const char *key, const char *s, size_t n)
{
    member(j, key);
    put_str(j, s, n, false);
}

void
sw_json_text(struct sw_json *j, const char *key, const char *s, size_t n)
{
    member(j, key);
    put_str(j, s, n, sw_ws_utf8_is_valid((const uint8_t *)s, n));
}

void
sw_json_cstr(struct sw_json *j, const char *key, const char *s)
{
    sw_json_str(j, key, s, strlen(s));
}

static void put_fmt(struct sw_json *j, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
put_fmt(struct sw_json *j, const char *key, const char *fmt, ...)
{
    char num[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(num, sizeof(num), fmt, ap);
    va_end(ap);
    member(j, key);
    put(j, num, n > 0 ? (size_t)n : 0);
}

void
sw_json_u64(struct sw_json *j, const char *key, uint64_t v)
{
    put_fmt(j, key, "%llu", (unsigned long long)v);
}

void
sw_json_double(struct sw_json *j, const char *key, double v)
{
    put_fmt(j, key, "%.3f", v);
}

void
sw_json_bool(struct sw_json *j, const char *key, bool v)
{
    put_fmt(j, key, "%s", v ? "true" : "false");
}

void
sw_json_null(struct sw_json *j, const char *key)
{
    put_fmt(j, key, "null");
}
