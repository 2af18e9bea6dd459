/*
 * swload_http.c - the test backend's HTTP request head parser and chunked
 * body decoder.
 *
 * A backend for tests must be tolerant where the gateway is strict: it shows
 * what it received instead of judging it, so that tests can see exactly what
 * the gateway forwarded. It accepts bare LF line ends, any header count up to
 * SWLOAD_MAX_HEADERS, no Host. It is still exact about framing
 * (Content-Length, chunked), since pipelining depends on it.
 *
 * Pure functions over bytes: the caller's buffer is only read, and every
 * slice returned points into it. No state is kept between calls besides the
 * caller's objects. Thread-safe.
 */
#include "swload.h"

#include <strings.h>

static bool
is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

static struct sw_str
trim(const char *p, size_t n)
{
    while (n > 0 && is_ows(*p)) {
        p++;
        n--;
    }
    while (n > 0 && (is_ows(p[n - 1]) || p[n - 1] == '\r')) {
        n--;
    }
    return (struct sw_str){p, n};
}

/* Find the end of the head: returns the offset just past the blank line, or
 * 0 when the head is not complete yet. `start` skips leading empty lines. */
static size_t
head_end(const char *p, size_t len, size_t start)
{
    for (size_t i = start; i < len; i++) {
        if (p[i] != '\n') {
            continue;
        }
        if (i + 1 < len && p[i + 1] == '\n') {
            return i + 2;
        }
        if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n') {
            return i + 3;
        }
    }
    return 0;
}

static enum sw_status
parse_request_line(struct swload_req *r, const char *p, size_t n)
{
    const char *end = p + n;
    const char *sp1 = memchr(p, ' ', n);
    if (sp1 == NULL || sp1 == p) {
        return SW_EPROTO;
    }
    const char *t = sp1 + 1;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (sp2 == NULL || sp2 == t) {
        return SW_EPROTO;
    }
    struct sw_str ver = trim(sp2 + 1, (size_t)(end - sp2 - 1));
    if (ver.len != 8 || memcmp(ver.p, "HTTP/1.", 7) != 0 || ver.p[7] < '0' ||
        ver.p[7] > '9') {
        return SW_EPROTO;
    }
    r->method = (struct sw_str){p, (size_t)(sp1 - p)};
    r->target = (struct sw_str){t, (size_t)(sp2 - t)};
    const char *q = memchr(t, '?', r->target.len);
    r->path = (struct sw_str){t, q != NULL ? (size_t)(q - t) : r->target.len};
    r->minor = (unsigned)(ver.p[7] - '0');
    return SW_OK;
}

static void
note_header(struct swload_req *r, const struct sw_http_header *h,
            bool *conn_close, bool *conn_keep, bool *conn_upgrade, bool *up_ws)
{
    if (sw_str_eq_ci(h->name, "content-length")) {
        uint64_t v = 0;
        for (size_t i = 0; i < h->value.len; i++) {
            char ch = h->value.p[i];
            if (ch < '0' || ch > '9') {
                break;
            }
            v = v * 10 + (uint64_t)(ch - '0');
        }
        if (r->body != SW_HTTP_BODY_CHUNKED) {
            r->body = SW_HTTP_BODY_LENGTH;
            r->content_length = v;
        }
    } else if (sw_str_eq_ci(h->name, "transfer-encoding")) {
        if (sw_str_has_token(h->value, "chunked")) {
            r->body = SW_HTTP_BODY_CHUNKED;
            r->content_length = 0;
        }
    } else if (sw_str_eq_ci(h->name, "connection")) {
        *conn_close |= sw_str_has_token(h->value, "close");
        *conn_keep |= sw_str_has_token(h->value, "keep-alive");
        *conn_upgrade |= sw_str_has_token(h->value, "upgrade");
    } else if (sw_str_eq_ci(h->name, "expect")) {
        r->expect_continue = sw_str_eq_ci(h->value, "100-continue");
    } else if (sw_str_eq_ci(h->name, "upgrade")) {
        *up_ws |= sw_str_has_token(h->value, "websocket");
    } else if (sw_str_eq_ci(h->name, "sec-websocket-key")) {
        r->ws_key = h->value;
    } else if (sw_str_eq_ci(h->name, "sec-websocket-protocol") &&
               r->ws_protocol.len == 0) {
        /* The first offered value of the first header (RFC 6455 4.2.2). */
        const char *comma = memchr(h->value.p, ',', h->value.len);
        size_t n = comma != NULL ? (size_t)(comma - h->value.p) : h->value.len;
        r->ws_protocol = trim(h->value.p, n);
    }
}

enum sw_status
swload_req_decode(struct swload_req *r, const char *p, size_t len)
{
    enum sw_status rc = SW_OK;
    bool conn_close = false, conn_keep = false, conn_upgrade = false;
    bool up_ws = false;

    memset(r, 0, offsetof(struct swload_req, hdrs));
    r->nhdrs = 0;
    r->head_len = 0;
    r->body = SW_HTTP_BODY_NONE;
    r->content_length = 0;
    r->keep_alive = false;
    r->expect_continue = false;
    r->ws_upgrade = false;
    r->ws_key = (struct sw_str){"", 0};
    r->ws_protocol = (struct sw_str){"", 0};

    /* RFC 9112 2.2: ignore at least one empty line before a request. */
    size_t start = 0;
    while (start < len && (p[start] == '\r' || p[start] == '\n')) {
        start++;
    }
    size_t end = head_end(p, len, start);
    if (end == 0) {
        rc = len > SWLOAD_MAX_HEAD ? SW_ETOOBIG : SW_AGAIN;
        goto out;
    }
    if (end > SWLOAD_MAX_HEAD) {
        rc = SW_ETOOBIG;
        goto out;
    }

    const char *line = p + start;
    const char *stop = p + end;
    bool first = true;
    while (line < stop) {
        const char *nl = memchr(line, '\n', (size_t)(stop - line));
        size_t n = (size_t)(nl - line);
        if (n > 0 && line[n - 1] == '\r') {
            n--;
        }
        if (n == 0) {
            break; /* the blank line */
        }
        if (first) {
            rc = parse_request_line(r, line, n);
            if (rc != SW_OK) {
                goto out;
            }
            first = false;
        } else {
            const char *colon = memchr(line, ':', n);
            if (colon == NULL || colon == line) {
                rc = SW_EPROTO;
                goto out;
            }
            if (r->nhdrs == SWLOAD_MAX_HEADERS) {
                rc = SW_ETOOBIG;
                goto out;
            }
            struct sw_http_header *h = &r->hdrs[r->nhdrs++];
            h->name = (struct sw_str){line, (size_t)(colon - line)};
            h->value = trim(colon + 1, (size_t)(line + n - colon - 1));
            note_header(r, h, &conn_close, &conn_keep, &conn_upgrade, &up_ws);
        }
        line = nl + 1;
    }
    if (first) {
        rc = SW_EPROTO;
        goto out;
    }
    r->head_len = end;
    r->keep_alive = r->minor >= 1 ? !conn_close : conn_keep && !conn_close;
    r->ws_upgrade = up_ws && conn_upgrade && r->ws_key.len > 0;

out:
    return rc;
}

enum chunk_state {
    CH_SIZE = 0,     /* hex digits of the chunk size */
    CH_EXT,          /* chunk extension up to LF */
    CH_DATA,         /* chunk payload */
    CH_DATA_END,     /* CRLF after the payload */
    CH_TRAILER,      /* start of a trailer line (or the final blank line) */
    CH_TRAILER_LINE, /* inside a trailer line */
};

void
swload_chunked_init(struct swload_chunked *ch)
{
    ch->state = CH_SIZE;
    ch->remaining = 0;
    ch->total = 0;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

enum sw_status
swload_chunked_decode(struct swload_chunked *ch, const char *in, size_t len,
                      size_t *consumed, struct sw_str *data)
{
    size_t i = 0;
    enum sw_status rc = SW_AGAIN;

    data->p = in;
    data->len = 0;
    while (i < len) {
        char c = in[i];
        switch (ch->state) {
        case CH_SIZE: {
            int v = hexval(c);
            if (v >= 0) {
                if (ch->remaining >> 60) {
                    rc = SW_EPROTO;
                    goto out;
                }
                ch->remaining = ch->remaining * 16 + (uint64_t)v;
                i++;
            } else {
                ch->state = CH_EXT;
            }
            break;
        }
        case CH_EXT:
            i++;
            if (c == '\n') {
                ch->state = ch->remaining > 0 ? CH_DATA : CH_TRAILER;
            }
            break;
        case CH_DATA: {
            /* Return at most one payload slice per call, so the caller
             * forwards it before we look further. */
            size_t n = (size_t)SW_MIN((uint64_t)(len - i), ch->remaining);
            data->p = in + i;
            data->len = n;
            i += n;
            ch->remaining -= n;
            ch->total += n;
            if (ch->remaining == 0) {
                ch->state = CH_DATA_END;
            }
            goto out;
        }
        case CH_DATA_END:
            i++;
            if (c == '\n') {
                ch->state = CH_SIZE;
            } else if (c != '\r') {
                rc = SW_EPROTO;
                goto out;
            }
            break;
        case CH_TRAILER:
            i++;
            if (c == '\n') {
                rc = SW_OK;
                goto out;
            }
            if (c != '\r') {
                ch->state = CH_TRAILER_LINE;
            }
            break;
        case CH_TRAILER_LINE:
            i++;
            if (c == '\n') {
                ch->state = CH_TRAILER;
            }
            break;
        }
    }
out:
    *consumed = i;
    return rc;
}

const char *
swload_reason(unsigned status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 103:
        return "Early Hints";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    return "Unknown";
}
