/*
 * json.h - a small JSON writer for the admin answers: objects, arrays,
 * strings (escaped per RFC 8259 7), numbers and booleans into a growing
 * buffer, commas placed by the writer.
 *
 *   sw_json_init -> sw_json_obj_open(j, NULL) -> sw_json_str(j, "k", ...)
 *                -> ... -> sw_json_obj_close -> j->buf, j->len
 *                -> sw_json_fini
 *
 * Keys are given inside objects and NULL inside arrays. Nesting is bounded
 * (SW_JSON_DEPTH); past it, or when memory runs out, j->failed is set and
 * later calls do nothing. Owns its buffer. One thread.
 */
#ifndef SW_GATEWAY_JSON_H
#define SW_GATEWAY_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SW_JSON_DEPTH 32 /* nesting levels */

struct sw_json {
    char *buf;       /* owned: the text so far, NUL-terminated */
    size_t len;      /* bytes in buf */
    size_t cap;      /* bytes allocated */
    unsigned depth;  /* open objects and arrays */
    uint64_t filled; /* bit d: level d already has a member */
    bool failed;     /* out of memory or too deep: the text is unusable */
};

void sw_json_init(struct sw_json *j);
void sw_json_fini(struct sw_json *j); /* accepts a zeroed one */

void sw_json_obj_open(struct sw_json *j, const char *key);
void sw_json_obj_close(struct sw_json *j);
void sw_json_arr_open(struct sw_json *j, const char *key);
void sw_json_arr_close(struct sw_json *j);

/* A string of n bytes: quotes, backslashes and control characters are
 * escaped; DEL and every byte >= 0x80 go as \u00XX (read as Latin-1), so
 * the text is valid JSON whatever bytes the configuration holds. */
void sw_json_str(struct sw_json *j, const char *key, const char *s, size_t n);
/* Text: when s is valid UTF-8, its characters as they are (quotes,
 * backslashes and control characters escaped); else as sw_json_str. */
void sw_json_text(struct sw_json *j, const char *key, const char *s, size_t n);
void sw_json_cstr(struct sw_json *j, const char *key, const char *s);
void sw_json_u64(struct sw_json *j, const char *key, uint64_t v);
void sw_json_double(struct sw_json *j, const char *key, double v);
void sw_json_bool(struct sw_json *j, const char *key, bool v);
void sw_json_null(struct sw_json *j, const char *key);

#endif
