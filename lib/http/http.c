/*
 * http.c - the HTTP/1.1 head decoder requests and responses share (see
 * shockwave/http.h, http_int.h).
 *
 * Owns nothing and keeps no state between calls: every decode starts again
 * from the first byte of the caller's buffer. To keep that cheap, a fast
 * pass (memchr over CR and LF) decides whether the head is complete or some
 * limit or byte-level fault could have been reached; only then does the
 * strict scanner run, once, over the head.
 *
 *   data ---> worth_scanning() --no--> SW_AGAIN
 *                   | yes (end of head, a limit, a bare CR/LF)
 *                   v
 *             scan(): byte by byte, first fault by position wins
 *                   |   start line  -> on_start (http_request.c,
 *                   |                  http_response.c)
 *                   |   field lines -> caller's headers[] (slices)
 *                   v
 *             collect(): framing and connection fields
 *                   |   -> on_fields: each direction's own rules
 *                   v
 *             cross_check(): http-parser 2.9 over the same head
 *
 * Because the scanner reports the first fault by byte position, and the fast
 * pass only skips the scanner while no fault can have been reached, a head
 * fed in pieces yields SW_AGAIN or else exactly the answer the whole head
 * gives. http-parser never sees a head the strict scanner refused; it is a
 * second opinion on the grammar, kept behind this folder so a later swap to
 * llhttp stays local.
 *
 * Contents:
 *   sw__http_fail, sw__http_head_init    head bookkeeping
 *   trim, str_eq_ci, list_next           slices and comma lists
 *   worth_scanning, scan                 the fast pass and the scanner
 *   parse_length, tally_codings          Content-Length, Transfer-Encoding
 *   collect                              the framing and connection fields
 *   sw__http_keep_alive                  Connection: close / keep-alive
 *   sw__http_parse_version               "HTTP/1.1"
 *   cross_check                          the http-parser second opinion
 *   sw__http_head_decode                 all of it, for both directions
 *   sw_http_find, sw_http_is_hop_by_hop  header look-ups for the proxy
 *
 * Threading: pure functions; safe from any thread.
 */
#include "http_int.h"

/* Defaults of RFC 9112's framing rules that are not configurable. */
#define CL_MAX ((uint64_t)INT64_MAX) /* larger Content-Length is absurd */

enum sw_status
sw__http_fail(struct sw__http_head *h, enum sw_status st, int status,
              const char *why)
{
    h->status = status;
    h->why = why;
    return st;
}

void
sw__http_head_init(struct sw__http_head *h, const struct sw__http_rules *rules,
                   void *arg, struct sw_http_header *headers,
                   size_t headers_cap, const struct sw_http_limits *lim)
{
    SW_ASSERT(lim != NULL);
    memset(h, 0, sizeof(*h));
    h->rules = rules;
    h->arg = arg;
    h->headers = headers;
    h->cap = headers != NULL ? SW_MIN(headers_cap, lim->max_headers) : 0;
    h->max_head = lim->max_head;
    h->max_line = lim->max_request_line;
}

static struct sw_str
trim(struct sw_str s)
{
    while (s.len > 0 && sw__http_is_ows(s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && sw__http_is_ows(s.p[s.len - 1])) {
        s.len--;
    }
    return s;
}

static bool
str_eq_ci(struct sw_str a, struct sw_str b)
{
    if (a.len != b.len) {
        return false;
    }
    for (size_t i = 0; i < a.len; i++) {
        unsigned char x = (unsigned char)a.p[i];
        unsigned char y = (unsigned char)b.p[i];
        if (x >= 'A' && x <= 'Z') {
            x = (unsigned char)(x + 32);
        }
        if (y >= 'A' && y <= 'Z') {
            y = (unsigned char)(y + 32);
        }
        if (x != y) {
            return false;
        }
    }
    return true;
}

/* Next element of a comma-separated list at *pos, OWS trimmed; empty
 * elements are skipped (RFC 9110 5.6.1). Returns false at the end. */
static bool
list_next(struct sw_str list, size_t *pos, struct sw_str *item)
{
    size_t i = *pos;
    while (i < list.len) {
        size_t start = i;
        while (i < list.len && list.p[i] != ',') {
            i++;
        }
        struct sw_str e = trim((struct sw_str){list.p + start, i - start});
        if (i < list.len) {
            i++; /* the comma */
        }
        if (e.len > 0) {
            *pos = i;
            *item = e;
            return true;
        }
    }
    *pos = i;
    return false;
}

/*
 * The fast pass. Skips leading empty lines, then walks LFs and CRs with
 * memchr. Returns false (answer SW_AGAIN) when the head is incomplete and
 * no limit or CR/LF fault can have been reached yet; otherwise returns true
 * with *end the bytes the scanner must look at (through the end of the
 * head when it was found). Conservative: a true may still scan to SW_AGAIN.
 */
static bool
worth_scanning(const char *d, size_t len, const struct sw__http_head *h,
               size_t *end)
{
    size_t s = 0;
    size_t nlf = 0;
    bool first = true;

    *end = len;
    if (len >= h->max_head) {
        return true;
    }
    if (len == 0) {
        return false;
    }
    while (s + 1 < len && d[s] == '\r' && d[s + 1] == '\n') {
        s += 2;
    }
    for (const char *lf = memchr(d + s, '\n', len - s); lf != NULL;
         lf = memchr(lf + 1, '\n', len - (size_t)(lf + 1 - d))) {
        size_t j = (size_t)(lf - d);
        if (j == s || d[j - 1] != '\r') {
            return true; /* bare LF */
        }
        if (first && j - s > h->max_line + 1) {
            return true; /* start line too long */
        }
        first = false;
        if (++nlf > h->cap) {
            return true; /* maybe too many field lines */
        }
        if (j - s >= 3 && d[j - 2] == '\n' && d[j - 3] == '\r') {
            *end = j + 1; /* the scanner checks the CRs itself */
            return true;
        }
    }
    if (first && len - s > h->max_line) {
        return true;
    }
    /* A CR followed by anything but LF would otherwise stall until the
     * head limit. */
    for (const char *cr = memchr(d + s, '\r', len - s); cr != NULL;
         cr = memchr(cr + 1, '\r', len - (size_t)(cr + 1 - d))) {
        size_t j = (size_t)(cr - d);
        if (j + 1 < len && d[j + 1] != '\n') {
            return true; /* bare CR */
        }
    }
    return false;
}

enum scan_state {
    S_LEAD = 0, /* before the start line: empty lines are skipped */
    S_LEAD_LF,  /* LF of a leading empty line */
    S_START,    /* in the start line */
    S_START_LF, /* LF ending the start line */
    S_LINE,     /* first byte of a field line, or CR of the end */
    S_NAME,     /* in a field name */
    S_VALUE,    /* in a field value */
    S_VALUE_LF, /* LF ending a field line */
    S_END_LF,   /* LF of the empty line ending the head */
};

/*
 * The strict scanner (RFC 9112 sections 2 to 5). Looks at d[0..len) and
 * returns SW_OK with h->head_len, SW_AGAIN, or the first fault by byte
 * position: SW_ETOOBIG (max_head, max_line, header count) or SW_EPROTO.
 */
static enum sw_status
scan(struct sw__http_head *h, const char *d, size_t len)
{
    enum scan_state st = S_LEAD;
    size_t line_start = 0;
    size_t name_end = 0;
    size_t value_start = 0;
    size_t value_end = 0;
    enum sw_status rc;

    for (size_t i = 0;; i++) {
        if (i >= h->max_head) {
            return sw__http_fail(h, SW_ETOOBIG, 431, "head too large");
        }
        if (i >= len) {
            return SW_AGAIN;
        }
        unsigned char c = (unsigned char)d[i];
        switch (st) {
        case S_LEAD:
            /* RFC 9112 2.2: ignore empty lines before the start line. */
            if (c == '\r') {
                st = S_LEAD_LF;
                break;
            }
            if (c == '\n') {
                return sw__http_fail(h, SW_EPROTO, 400, "bare LF");
            }
            line_start = i;
            st = S_START;
            __attribute__((fallthrough));
        case S_START:
            if (c == '\r') {
                st = S_START_LF;
                break;
            }
            if (c == '\n') {
                return sw__http_fail(h, SW_EPROTO, 400, "bare LF");
            }
            if (i - line_start >= h->max_line) {
                return sw__http_fail(h, SW_ETOOBIG, h->rules->line_status,
                                     h->rules->line_why);
            }
            if (h->rules->lax_start ? !sw__http_is_field_char(c)
                                    : (c < 0x20 || c >= 0x7f)) {
                return sw__http_fail(h, SW_EPROTO, 400,
                                     "bad byte in start line");
            }
            break;
        case S_LEAD_LF:
        case S_START_LF:
        case S_VALUE_LF:
        case S_END_LF:
            if (c != '\n') {
                return sw__http_fail(h, SW_EPROTO, 400, "bare CR");
            }
            if (st == S_LEAD_LF) {
                st = S_LEAD;
            } else if (st == S_START_LF) {
                struct sw_str line = {d + line_start, i - 1 - line_start};
                rc = h->rules->on_start(h->arg, line, &h->status, &h->why);
                if (rc != SW_OK) {
                    return rc;
                }
                st = S_LINE;
            } else if (st == S_VALUE_LF) {
                struct sw_http_header *f = &h->headers[h->n++];
                f->name =
                    (struct sw_str){d + line_start, name_end - line_start};
                f->value = trim(
                    (struct sw_str){d + value_start, value_end - value_start});
                st = S_LINE;
            } else {
                h->head_len = i + 1;
                return SW_OK;
            }
            break;
        case S_LINE:
            if (c == '\r') {
                st = S_END_LF;
                break;
            }
            if (c == '\n') {
                return sw__http_fail(h, SW_EPROTO, 400, "bare LF");
            }
            if (sw__http_is_ows((char)c)) {
                /* RFC 9112 5.2: obs-fold is rejected, not unfolded. */
                return sw__http_fail(h, SW_EPROTO, 400,
                                     "obsolete line folding");
            }
            if (c == ':') {
                return sw__http_fail(h, SW_EPROTO, 400, "empty field name");
            }
            if (h->n >= h->cap) {
                return sw__http_fail(h, SW_ETOOBIG, 431,
                                     "too many header fields");
            }
            if (!sw__http_is_tchar(c)) {
                return sw__http_fail(h, SW_EPROTO, 400,
                                     "bad byte in field name");
            }
            line_start = i;
            st = S_NAME;
            break;
        case S_NAME:
            if (c == ':') {
                name_end = i;
                value_start = i + 1;
                st = S_VALUE;
                break;
            }
            if (sw__http_is_ows((char)c)) {
                /* RFC 9112 5.1: no whitespace between name and colon. */
                return sw__http_fail(h, SW_EPROTO, 400,
                                     "whitespace before colon");
            }
            if (c == '\r' || c == '\n') {
                return sw__http_fail(h, SW_EPROTO, 400,
                                     "field line without colon");
            }
            if (!sw__http_is_tchar(c)) {
                return sw__http_fail(h, SW_EPROTO, 400,
                                     "bad byte in field name");
            }
            break;
        case S_VALUE:
            if (c == '\r') {
                value_end = i;
                st = S_VALUE_LF;
                break;
            }
            if (c == '\n') {
                return sw__http_fail(h, SW_EPROTO, 400, "bare LF");
            }
            if (!sw__http_is_field_char(c)) {
                return sw__http_fail(h, SW_EPROTO, 400,
                                     "control byte in field value");
            }
            break;
        }
    }
}

/* Content-Length (RFC 9110 8.6): 1*DIGIT, no sign, no list. */
static bool
parse_length(struct sw_str v, uint64_t *out)
{
    uint64_t n = 0;
    if (v.len == 0) {
        return false;
    }
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c < '0' || c > '9') {
            return false;
        }
        if (n > (CL_MAX - (uint64_t)(c - '0')) / 10) {
            return false;
        }
        n = n * 10 + (uint64_t)(c - '0');
    }
    *out = n;
    return true;
}

/* Tally the codings of one Transfer-Encoding value (RFC 9112 6.1). */
static void
tally_codings(struct sw__http_fields *f, struct sw_str v)
{
    size_t pos = 0;
    struct sw_str e;

    while (list_next(v, &pos, &e)) {
        size_t k = 0;
        while (k < e.len && sw__http_is_tchar((unsigned char)e.p[k])) {
            k++;
        }
        struct sw_str name = {e.p, k};
        struct sw_str rest = trim((struct sw_str){e.p + k, e.len - k});
        bool chunked = sw_str_eq_ci(name, "chunked");
        f->te_codings++;
        if (name.len == 0 || (rest.len > 0 && rest.p[0] != ';') ||
            (chunked && rest.len > 0)) {
            f->te_bad = true;
        }
        if (chunked) {
            f->te_chunked++;
        } else {
            f->te_other++;
        }
        f->te_last_chunked = chunked;
    }
}

/* Walk the field lines once. Returns NULL, or the reason the framing or
 * connection fields are malformed or repeated. */
static const char *
collect(struct sw__http_fields *f, const struct sw_http_header *hd, size_t n)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < n; i++) {
        struct sw_str name = hd[i].name;
        struct sw_str v = hd[i].value;
        if (sw_str_eq_ci(name, "content-length")) {
            uint64_t cl;
            if (!parse_length(v, &cl)) {
                return "bad Content-Length";
            }
            /* RFC 9110 8.6 lets identical repeats through; http-parser
             * 2.9 refuses any repeat, so we refuse too, with a reason. */
            if (f->n_cl++ > 0) {
                return cl != f->cl ? "conflicting Content-Length"
                                   : "duplicate Content-Length";
            }
            f->cl = cl;
        } else if (sw_str_eq_ci(name, "transfer-encoding")) {
            f->n_te++;
            tally_codings(f, v);
        } else if (sw_str_eq_ci(name, "host")) {
            if (f->n_host++ == 0) {
                f->host = &hd[i];
            }
        } else if (sw_str_eq_ci(name, "connection")) {
            /* A second Connection field would hide hop-by-hop names from
             * sw_http_is_hop_by_hop, which sees one value. */
            if (f->conn != NULL) {
                return "duplicate Connection";
            }
            f->conn = &hd[i];
        } else if (sw_str_eq_ci(name, "upgrade")) {
            if (f->upg == NULL) {
                f->upg = &hd[i];
            }
        } else if (sw_str_eq_ci(name, "expect")) {
            if (sw_str_eq_ci(v, "100-continue")) {
                f->expect_continue = true;
            }
        }
    }
    return NULL;
}

bool
sw__http_keep_alive(const struct sw__http_fields *f, unsigned minor)
{
    struct sw_str conn = f->conn != NULL ? f->conn->value : SW_STR("");
    if (sw_str_has_token(conn, "close")) {
        return false;
    }
    return minor >= 1 || sw_str_has_token(conn, "keep-alive");
}

/* Parse "HTTP/d.d" (RFC 9112 2.3). */
bool
sw__http_parse_version(struct sw_str v, unsigned *major, unsigned *minor)
{
    if (v.len != 8 || memcmp(v.p, "HTTP/", 5) != 0 || v.p[5] < '0' ||
        v.p[5] > '9' || v.p[6] != '.' || v.p[7] < '0' || v.p[7] > '9') {
        return false;
    }
    *major = (unsigned)(v.p[5] - '0');
    *minor = (unsigned)(v.p[7] - '0');
    return true;
}

static int
on_headers_complete(http_parser *hp)
{
    SW_UNUSED(hp);
    return 1; /* the head is all we feed: expect no body */
}

/*
 * Second opinion: http-parser over exactly the head the scanner accepted.
 * Its default header cap is 80 KiB (a build-time constant), reported as a
 * limit.
 */
static enum sw_status
cross_check(struct sw__http_head *h, const char *d)
{
    http_parser hp;
    http_parser_settings hs;

    http_parser_settings_init(&hs);
    hs.on_headers_complete = on_headers_complete;
    http_parser_init(&hp, h->rules->type);
    http_parser_execute(&hp, &hs, d, h->head_len);
    enum http_errno err = HTTP_PARSER_ERRNO(&hp);
    if (err == HPE_OK) {
        return SW_OK;
    }
    if (err == HPE_HEADER_OVERFLOW) {
        return sw__http_fail(h, SW_ETOOBIG, 431,
                             "head too large for http-parser");
    }
    return sw__http_fail(h, SW_EPROTO, h->rules->bad_status,
                         http_errno_description(err));
}

enum sw_status
sw__http_head_decode(struct sw__http_head *h, const char *d, size_t len)
{
    struct sw__http_fields f;
    size_t end;
    enum sw_status st;

    SW_ASSERT(d != NULL || len == 0);
    if (!worth_scanning(d, len, h, &end)) {
        return SW_AGAIN;
    }
    st = scan(h, d, end);
    if (st != SW_OK) {
        return st;
    }
    const char *why = collect(&f, h->headers, h->n);
    if (why != NULL) {
        return sw__http_fail(h, SW_EPROTO, h->rules->bad_status, why);
    }
    st = h->rules->on_fields(h->arg, h, &f);
    if (st != SW_OK) {
        return st;
    }
    return cross_check(h, d);
}

bool
sw_http_is_token(struct sw_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (!sw__http_is_tchar((unsigned char)s.p[i])) {
            return false;
        }
    }
    return s.len > 0;
}

struct sw_str
sw_http_query(struct sw_str target)
{
    const char *q = memchr(target.p, '?', target.len);
    if (q == NULL) {
        return (struct sw_str){"", 0};
    }
    return (struct sw_str){q + 1, (size_t)(target.p + target.len - q - 1)};
}

bool
sw_http_param(struct sw_str list, char sep, struct sw_str name,
              struct sw_str *value)
{
    const char *p = list.p;
    const char *end = list.p + list.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }
        const char *next = memchr(p, sep, (size_t)(end - p));
        const char *stop = next != NULL ? next : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq != NULL ? eq : stop;
        if ((size_t)(kend - p) == name.len &&
            memcmp(p, name.p, name.len) == 0) {
            *value = eq != NULL
                         ? (struct sw_str){eq + 1, (size_t)(stop - eq - 1)}
                         : (struct sw_str){"", 0};
            return true;
        }
        p = next != NULL ? next + 1 : end;
    }
    return false;
}

const struct sw_http_header *
sw_http_find(const struct sw_http_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (sw_str_eq_ci(h[i].name, name)) {
            return &h[i];
        }
    }
    return NULL;
}

bool
sw_http_is_hop_by_hop(struct sw_str name, struct sw_str connection)
{
    static const char *const fixed[] = {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    };
    size_t pos = 0;
    struct sw_str tok;

    for (size_t i = 0; i < SW_NELEMS(fixed); i++) {
        if (sw_str_eq_ci(name, fixed[i])) {
            return true;
        }
    }
    while (list_next(connection, &pos, &tok)) {
        if (str_eq_ci(tok, name)) {
            return true;
        }
    }
    return false;
}
