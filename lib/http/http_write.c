/*
 * http_write.c - head serialisation into a fixed buffer (see
 * shockwave/http.h). Overflow is sticky: once a write does not fit, every
 * later one is dropped and w->overflow stays set, so a caller checks once
 * at the end.
 *
 *   sw_http_writer_init
 *   sw_http_write, sw_http_write_str, sw_http_write_cstr
 *   sw_http_write_u64     decimal
 *   sw_http_write_header  "Name: value\r\n", all or nothing
 *
 * Threading: none; the writer belongs to the caller.
 */
#include "http_int.h"

void
sw_http_writer_init(struct sw_http_writer *w, char *out, size_t cap)
{
    w->p = out;
    w->len = 0;
    w->cap = cap;
    w->overflow = false;
}

void
sw_http_write(struct sw_http_writer *w, const char *s, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    if (n > 0) {
        memcpy(w->p + w->len, s, n);
    }
    w->len += n;
}

void
sw_http_write_str(struct sw_http_writer *w, struct sw_str s)
{
    sw_http_write(w, s.p, s.len);
}

void
sw_http_write_cstr(struct sw_http_writer *w, const char *s)
{
    sw_http_write(w, s, strlen(s));
}

void
sw_http_write_u64(struct sw_http_writer *w, uint64_t v)
{
    char tmp[20]; /* UINT64_MAX has 20 digits */
    size_t n = sizeof(tmp);

    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    sw_http_write(w, tmp + n, sizeof(tmp) - n);
}

void
sw_http_write_header(struct sw_http_writer *w, struct sw_str name,
                     struct sw_str value)
{
    size_t need = name.len + 2 + value.len + 2;

    /* All or nothing, so a cut header never reaches the wire. */
    if (w->overflow || need < name.len || need > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    sw_http_write_str(w, name);
    sw_http_write(w, ": ", 2);
    sw_http_write_str(w, value);
    sw_http_write(w, "\r\n", 2);
}
