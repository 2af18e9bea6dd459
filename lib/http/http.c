/*
 * http.c - HTTP/1.1 request and response heads (see shockwave/http.h).
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
 *                   |   start line  -> on_request_line / on_status_line
 *                   |   field lines -> caller's headers[] (slices)
 *                   v
 *             request_semantics / response_semantics (framing, Host, ...)
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
 * Threading: pure functions; safe from any thread.
 */
#include <shockwave/http.h>

#include <http_parser.h>

/* Defaults of RFC 9112's framing rules that are not configurable. */
#define CL_MAX ((uint64_t)INT64_MAX) /* larger Content-Length is absurd */

typedef enum sw_status (*start_cb)(void *arg, struct sw_str line, int *status,
                                   const char **why);

/* The strict scanner's view of one head. */
struct head {
    struct sw_http_header *headers; /* borrowed (caller's array) */
    size_t cap;                     /* usable entries of headers */
    size_t n;                       /* filled entries */
    size_t max_head;                /* limit: head bytes incl. final CRLF */
    size_t max_line;                /* limit: start line bytes */
    int line_status;                /* status when max_line is passed */
    const char *line_why;           /* reason when max_line is passed */
    bool lax_start;                 /* start line may hold HT, obs-text */
    start_cb on_start;              /* validates the start line */
    void *arg;                      /* borrowed: passed to on_start */
    size_t head_len;                /* set on SW_OK */
    int status;                     /* HTTP status of a failure */
    const char *why;                /* static reason of a failure */
};

/* What the field lines say about framing and the connection. */
struct fields {
    size_t n_cl;                       /* Content-Length fields */
    uint64_t cl;                       /* its value */
    size_t n_te;                       /* Transfer-Encoding fields */
    size_t te_codings;                 /* codings listed in all of them */
    size_t te_chunked;                 /* how many are "chunked" */
    size_t te_other;                   /* how many are anything else */
    bool te_last_chunked;              /* the final coding is chunked */
    bool te_bad;                       /* a coding is not a token */
    size_t n_host;                     /* Host fields */
    const struct sw_http_header *host; /* borrowed: first Host */
    const struct sw_http_header *conn; /* borrowed: Connection */
    const struct sw_http_header *upg;  /* borrowed: first Upgrade */
    bool expect_continue;              /* Expect: 100-continue */
};

static enum sw_status
fail(struct head *h, enum sw_status st, int status, const char *why)
{
    h->status = status;
    h->why = why;
    return st;
}

/* RFC 9110 5.6.2: tchar. */
static bool
is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9')) {
        return true;
    }
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

/* RFC 9110 5.5: field-vchar, SP and HTAB; obs-text is kept as opaque. */
static bool
is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static struct sw_str
trim(struct sw_str s)
{
    while (s.len > 0 && is_ows(s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && is_ows(s.p[s.len - 1])) {
        s.len--;
    }
    return s;
}

static bool
str_eq(struct sw_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
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
worth_scanning(const char *d, size_t len, const struct head *h, size_t *end)
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
scan(struct head *h, const char *d, size_t len)
{
    enum scan_state st = S_LEAD;
    size_t line_start = 0;
    size_t name_end = 0;
    size_t value_start = 0;
    size_t value_end = 0;
    enum sw_status rc;

    for (size_t i = 0;; i++) {
        if (i >= h->max_head) {
            return fail(h, SW_ETOOBIG, 431, "head too large");
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
                return fail(h, SW_EPROTO, 400, "bare LF");
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
                return fail(h, SW_EPROTO, 400, "bare LF");
            }
            if (i - line_start >= h->max_line) {
                return fail(h, SW_ETOOBIG, h->line_status, h->line_why);
            }
            if (h->lax_start ? !is_field_char(c) : (c < 0x20 || c >= 0x7f)) {
                return fail(h, SW_EPROTO, 400, "bad byte in start line");
            }
            break;
        case S_LEAD_LF:
        case S_START_LF:
        case S_VALUE_LF:
        case S_END_LF:
            if (c != '\n') {
                return fail(h, SW_EPROTO, 400, "bare CR");
            }
            if (st == S_LEAD_LF) {
                st = S_LEAD;
            } else if (st == S_START_LF) {
                struct sw_str line = {d + line_start, i - 1 - line_start};
                rc = h->on_start(h->arg, line, &h->status, &h->why);
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
                return fail(h, SW_EPROTO, 400, "bare LF");
            }
            if (is_ows((char)c)) {
                /* RFC 9112 5.2: obs-fold is rejected, not unfolded. */
                return fail(h, SW_EPROTO, 400, "obsolete line folding");
            }
            if (c == ':') {
                return fail(h, SW_EPROTO, 400, "empty field name");
            }
            if (h->n >= h->cap) {
                return fail(h, SW_ETOOBIG, 431, "too many header fields");
            }
            if (!is_tchar(c)) {
                return fail(h, SW_EPROTO, 400, "bad byte in field name");
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
            if (is_ows((char)c)) {
                /* RFC 9112 5.1: no whitespace between name and colon. */
                return fail(h, SW_EPROTO, 400, "whitespace before colon");
            }
            if (c == '\r' || c == '\n') {
                return fail(h, SW_EPROTO, 400, "field line without colon");
            }
            if (!is_tchar(c)) {
                return fail(h, SW_EPROTO, 400, "bad byte in field name");
            }
            break;
        case S_VALUE:
            if (c == '\r') {
                value_end = i;
                st = S_VALUE_LF;
                break;
            }
            if (c == '\n') {
                return fail(h, SW_EPROTO, 400, "bare LF");
            }
            if (!is_field_char(c)) {
                return fail(h, SW_EPROTO, 400, "control byte in field value");
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
tally_codings(struct fields *f, struct sw_str v)
{
    size_t pos = 0;
    struct sw_str e;

    while (list_next(v, &pos, &e)) {
        size_t k = 0;
        while (k < e.len && is_tchar((unsigned char)e.p[k])) {
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
collect(struct fields *f, const struct sw_http_header *hd, size_t n)
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

/* RFC 9110 7.2: Host = uri-host [ ":" port ]; reg-name, IPv4 or an IP
 * literal. Refuses userinfo, paths and whitespace. */
static bool
is_host_value(struct sw_str v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9')) {
            continue;
        }
        if (strchr("-._~!$&'()*+,;=:[]%", c) == NULL || c == 0) {
            return false;
        }
    }
    return true;
}

static bool
conn_keep_alive(const struct fields *f, unsigned minor)
{
    struct sw_str conn = f->conn != NULL ? f->conn->value : SW_STR("");
    if (sw_str_has_token(conn, "close")) {
        return false;
    }
    return minor >= 1 || sw_str_has_token(conn, "keep-alive");
}

/* Parse "HTTP/d.d" (RFC 9112 2.3). */
static bool
parse_version(struct sw_str v, unsigned *major, unsigned *minor)
{
    if (v.len != 8 || memcmp(v.p, "HTTP/", 5) != 0 || v.p[5] < '0' ||
        v.p[5] > '9' || v.p[6] != '.' || v.p[7] < '0' || v.p[7] > '9') {
        return false;
    }
    *major = (unsigned)(v.p[5] - '0');
    *minor = (unsigned)(v.p[7] - '0');
    return true;
}

/* http-parser's method table, looked up by exact (case-sensitive) name. */
static int
method_lookup(struct sw_str m)
{
#define XX(num, name, string)                                                  \
    if (str_eq(m, #string)) {                                                  \
        return num;                                                            \
    }
    HTTP_METHOD_MAP(XX)
#undef XX
    return -1;
}

/* Request-target forms (RFC 9112 3.2); sets r->target and r->path. */
static enum sw_status
check_target(struct sw_http_request *r, struct sw_str t, int *status,
             const char **why)
{
    *status = 400;
    if (memchr(t.p, '#', t.len) != NULL) {
        *why = "fragment in request-target";
        return SW_EPROTO;
    }
    r->target = t;
    if (t.p[0] == '/') {
        const char *q = memchr(t.p, '?', t.len);
        r->path = (struct sw_str){t.p, q != NULL ? (size_t)(q - t.p) : t.len};
        return SW_OK;
    }
    if (t.p[0] == '*') {
        if (t.len != 1 || r->method_id != HTTP_OPTIONS) {
            *why = "asterisk-form outside OPTIONS";
            return SW_EPROTO;
        }
        r->path = t;
        return SW_OK;
    }
    /* absolute-form: only http and https, no userinfo (RFC 9110 4.2.4). */
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(t.p, t.len, 0, &u) != 0 ||
        !(u.field_set & (1u << UF_SCHEMA)) ||
        !(u.field_set & (1u << UF_HOST)) ||
        (u.field_set & (1u << UF_USERINFO))) {
        *why = "bad request-target";
        return SW_EPROTO;
    }
    struct sw_str scheme = {t.p + u.field_data[UF_SCHEMA].off,
                            u.field_data[UF_SCHEMA].len};
    if (!sw_str_eq_ci(scheme, "http") && !sw_str_eq_ci(scheme, "https")) {
        *why = "request-target scheme is not http";
        return SW_EPROTO;
    }
    if (u.field_set & (1u << UF_PATH)) {
        r->path = (struct sw_str){t.p + u.field_data[UF_PATH].off,
                                  u.field_data[UF_PATH].len};
    } else {
        r->path = SW_STR("/"); /* static: "http://h" means "/" */
    }
    return SW_OK;
}

/* Request line (RFC 9112 3): method SP request-target SP HTTP-version. */
static enum sw_status
on_request_line(void *arg, struct sw_str line, int *status, const char **why)
{
    struct sw_http_request *r = arg;
    const char *sp1 = memchr(line.p, ' ', line.len);
    const char *sp2;
    struct sw_str target;
    struct sw_str version;

    *status = 400;
    if (sp1 == NULL || sp1 == line.p) {
        *why = "malformed request line";
        return SW_EPROTO;
    }
    r->method = (struct sw_str){line.p, (size_t)(sp1 - line.p)};
    for (size_t i = 0; i < r->method.len; i++) {
        if (!is_tchar((unsigned char)r->method.p[i])) {
            *why = "bad byte in method";
            return SW_EPROTO;
        }
    }
    target.p = sp1 + 1;
    sp2 = memchr(target.p, ' ', (size_t)(line.p + line.len - target.p));
    if (sp2 == NULL || sp2 == target.p) {
        *why = "malformed request line";
        return SW_EPROTO;
    }
    target.len = (size_t)(sp2 - target.p);
    version = (struct sw_str){sp2 + 1, (size_t)(line.p + line.len - sp2 - 1)};
    if (!parse_version(version, &r->version_major, &r->version_minor)) {
        *why = "malformed HTTP version";
        return SW_EPROTO;
    }
    if (r->version_major != 1 || r->version_minor > 1) {
        *status = 505;
        *why = "HTTP version not supported";
        return SW_EPROTO;
    }
    r->method_id = method_lookup(r->method);
    if (r->method_id < 0) {
        *status = 501;
        *why = "unknown method";
        return SW_EPROTO;
    }
    if (r->method_id == HTTP_CONNECT) {
        *status = 405;
        *why = "CONNECT not allowed";
        return SW_EPROTO;
    }
    return check_target(r, target, status, why);
}

/* Status line (RFC 9112 4): HTTP-version SP 3DIGIT SP [ reason ]. A
 * missing SP after the code is tolerated, as most clients do. */
static enum sw_status
on_status_line(void *arg, struct sw_str line, int *status, const char **why)
{
    struct sw_http_response *resp = arg;
    const char *s = line.p;

    *status = 502;
    if (line.len < 12 ||
        !parse_version((struct sw_str){s, 8}, &resp->version_major,
                       &resp->version_minor) ||
        resp->version_major != 1 || s[8] != ' ') {
        *why = "not HTTP/1.x";
        return SW_EPROTO;
    }
    if (s[9] < '1' || s[9] > '9' || s[10] < '0' || s[10] > '9' || s[11] < '0' ||
        s[11] > '9' || (line.len > 12 && s[12] != ' ')) {
        *why = "bad status code";
        return SW_EPROTO;
    }
    resp->status =
        (unsigned)((s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0'));
    if (line.len > 12) {
        resp->reason = (struct sw_str){s + 13, line.len - 13};
    } else {
        resp->reason = (struct sw_str){s + 12, 0};
    }
    return SW_OK;
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
cross_check(struct head *h, enum http_parser_type type, const char *d,
            int bad_status)
{
    http_parser hp;
    http_parser_settings hs;

    http_parser_settings_init(&hs);
    hs.on_headers_complete = on_headers_complete;
    http_parser_init(&hp, type);
    http_parser_execute(&hp, &hs, d, h->head_len);
    enum http_errno err = HTTP_PARSER_ERRNO(&hp);
    if (err == HPE_OK) {
        return SW_OK;
    }
    if (err == HPE_HEADER_OVERFLOW) {
        return fail(h, SW_ETOOBIG, 431, "head too large for http-parser");
    }
    return fail(h, SW_EPROTO, bad_status, http_errno_description(err));
}

static void
head_init(struct head *h, struct sw_http_header *headers, size_t headers_cap,
          const struct sw_http_limits *lim)
{
    memset(h, 0, sizeof(*h));
    h->headers = headers;
    h->cap = headers != NULL ? SW_MIN(headers_cap, lim->max_headers) : 0;
    h->max_head = lim->max_head;
    h->max_line = lim->max_request_line;
}

static enum sw_status
request_semantics(struct sw_http_request *r, struct head *h)
{
    struct fields f;
    const char *why = collect(&f, r->headers, r->nheaders);

    if (why != NULL) {
        return fail(h, SW_EPROTO, 400, why);
    }
    /* RFC 9112 3.2: exactly one Host on 1.1, never two. */
    if (f.n_host > 1) {
        return fail(h, SW_EPROTO, 400, "duplicate Host");
    }
    if (f.n_host == 0 && r->version_minor >= 1) {
        return fail(h, SW_EPROTO, 400, "missing Host");
    }
    if (f.host != NULL) {
        if (!is_host_value(f.host->value)) {
            return fail(h, SW_EPROTO, 400, "bad Host");
        }
        r->host = f.host->value;
    }
    if (f.n_te > 0) {
        /* RFC 9112 6.1 and 6.3: smuggling vectors, all refused. */
        if (r->version_minor == 0) {
            return fail(h, SW_EPROTO, 400, "Transfer-Encoding on HTTP/1.0");
        }
        if (f.n_cl > 0) {
            return fail(h, SW_EPROTO, 400,
                        "Content-Length with Transfer-Encoding");
        }
        if (f.te_bad || f.te_codings == 0) {
            return fail(h, SW_EPROTO, 400, "bad Transfer-Encoding");
        }
        if (f.te_chunked > 1) {
            return fail(h, SW_EPROTO, 400, "chunked applied twice");
        }
        if (!f.te_last_chunked) {
            return fail(h, SW_EPROTO, 400, "chunked is not the final coding");
        }
        if (f.te_other > 0) {
            return fail(h, SW_EPROTO, 501, "unsupported transfer coding");
        }
        r->body = SW_HTTP_BODY_CHUNKED;
    } else if (f.n_cl > 0) {
        r->content_length = f.cl;
        r->body = f.cl > 0 ? SW_HTTP_BODY_LENGTH : SW_HTTP_BODY_NONE;
    }
    if (f.conn != NULL) {
        r->connection = f.conn->value;
    }
    r->keep_alive = conn_keep_alive(&f, r->version_minor);
    r->expect_continue = f.expect_continue;
    if (f.upg != NULL && sw_str_has_token(r->connection, "upgrade")) {
        r->upgrade = true;
        r->upgrade_proto = f.upg->value;
    }
    return SW_OK;
}

enum sw_status
sw_http_request_decode(struct sw_http_request *r, const char *data, size_t len,
                       const struct sw_http_limits *lim, int *http_status,
                       const char **why)
{
    struct sw_http_header *headers = r->headers;
    size_t headers_cap = r->headers_cap;
    struct head h;
    size_t end;
    enum sw_status st;

    SW_ASSERT(lim != NULL);
    SW_ASSERT(data != NULL || len == 0);
    memset(r, 0, sizeof(*r));
    r->headers = headers;
    r->headers_cap = headers_cap;
    r->method_id = -1;
    r->connection = (struct sw_str){data, 0};

    head_init(&h, headers, headers_cap, lim);
    h.line_status = 414;
    h.line_why = "request line too long";
    h.on_start = on_request_line;
    h.arg = r;
    if (!worth_scanning(data, len, &h, &end)) {
        st = SW_AGAIN;
        goto done;
    }
    st = scan(&h, data, end);
    r->nheaders = h.n;
    if (st != SW_OK) {
        goto done;
    }
    r->head_len = h.head_len;
    st = request_semantics(r, &h);
    if (st != SW_OK) {
        goto done;
    }
    st = cross_check(&h, HTTP_REQUEST, data, 400);

done:
    if (st != SW_OK) {
        /* A refused or partial head leaves no half-filled answer behind. */
        r->nheaders = st == SW_AGAIN ? 0 : r->nheaders;
        r->head_len = 0;
    }
    if (http_status != NULL) {
        *http_status = st == SW_OK || st == SW_AGAIN ? 0 : h.status;
    }
    if (why != NULL) {
        *why = st == SW_OK || st == SW_AGAIN ? NULL : h.why;
    }
    return st;
}

static enum sw_status
response_semantics(struct sw_http_response *resp, struct head *h,
                   int request_method_id)
{
    struct fields f;
    const char *why = collect(&f, resp->headers, resp->nheaders);
    unsigned s = resp->status;

    if (why != NULL) {
        return fail(h, SW_EPROTO, 502, why);
    }
    if (f.n_te > 0) {
        /* RFC 9112 6.1: TE in a 1.0 message means faulty framing; 6.3:
         * TE with Content-Length may be smuggling, so refuse both. */
        if (resp->version_minor == 0) {
            return fail(h, SW_EPROTO, 502, "Transfer-Encoding on HTTP/1.0");
        }
        if (f.n_cl > 0) {
            return fail(h, SW_EPROTO, 502, "ambiguous framing");
        }
        if (f.te_bad || f.te_codings == 0) {
            return fail(h, SW_EPROTO, 502, "bad Transfer-Encoding");
        }
        if (f.te_chunked > 1) {
            return fail(h, SW_EPROTO, 502, "chunked applied twice");
        }
        /* RFC 9112 6.3 rule 4: chunked not final means read to close. */
        resp->body =
            f.te_last_chunked ? SW_HTTP_BODY_CHUNKED : SW_HTTP_BODY_TO_CLOSE;
    } else if (f.n_cl > 0) {
        resp->content_length = f.cl;
        resp->body = f.cl > 0 ? SW_HTTP_BODY_LENGTH : SW_HTTP_BODY_NONE;
    } else {
        resp->body = SW_HTTP_BODY_TO_CLOSE;
    }
    /* RFC 9112 6.3 rule 1: these never carry a body, whatever they say. */
    if ((s >= 100 && s < 200) || s == 204 || s == 304 ||
        request_method_id == HTTP_HEAD) {
        resp->body = SW_HTTP_BODY_NONE;
        resp->content_length = f.n_cl > 0 ? f.cl : 0;
    }
    if (f.conn != NULL) {
        resp->connection = f.conn->value;
    }
    resp->keep_alive = resp->body != SW_HTTP_BODY_TO_CLOSE && s != 101 &&
                       conn_keep_alive(&f, resp->version_minor);
    return SW_OK;
}

enum sw_status
sw_http_response_decode(struct sw_http_response *resp, const char *data,
                        size_t len, const struct sw_http_limits *lim,
                        int request_method_id, const char **why)
{
    struct sw_http_header *headers = resp->headers;
    size_t headers_cap = resp->headers_cap;
    struct head h;
    size_t end;
    enum sw_status st;

    SW_ASSERT(lim != NULL);
    SW_ASSERT(data != NULL || len == 0);
    memset(resp, 0, sizeof(*resp));
    resp->headers = headers;
    resp->headers_cap = headers_cap;
    resp->connection = (struct sw_str){data, 0};

    head_init(&h, headers, headers_cap, lim);
    h.line_status = 502;
    h.line_why = "status line too long";
    h.lax_start = true; /* the reason phrase may hold HT and obs-text */
    h.on_start = on_status_line;
    h.arg = resp;
    if (!worth_scanning(data, len, &h, &end)) {
        st = SW_AGAIN;
        goto done;
    }
    st = scan(&h, data, end);
    resp->nheaders = h.n;
    if (st != SW_OK) {
        goto done;
    }
    resp->head_len = h.head_len;
    st = response_semantics(resp, &h, request_method_id);
    if (st != SW_OK) {
        goto done;
    }
    st = cross_check(&h, HTTP_RESPONSE, data, 502);

done:
    if (st != SW_OK) {
        resp->nheaders = st == SW_AGAIN ? 0 : resp->nheaders;
        resp->head_len = 0;
    }
    if (why != NULL) {
        *why = st == SW_OK || st == SW_AGAIN ? NULL : h.why;
    }
    return st;
}

int
sw_http_method_head(void)
{
    return HTTP_HEAD;
}

int
sw_http_method_get(void)
{
    return HTTP_GET;
}

int
sw_http_method_connect(void)
{
    return HTTP_CONNECT;
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

/*
 * Chunked decoder (RFC 9112 7.1). States, one byte at a time except data:
 *
 *   SIZE -> SIZE_MORE -+-> SIZE_LF --(size > 0)--> DATA -> DATA_CR -> DATA_LF
 *     ^                +-> EXT_BWS -> EXT -^   |                       |
 *     |                                        +--(size 0)--> TRAILER  |
 *     +----------------------------------------------------------------+
 *   TRAILER -> TR_NAME -> TR_VALUE -> TR_LF -> TRAILER
 *   TRAILER --CR--> LAST_LF --LF--> DONE
 */
enum chunk_state {
    CH_SIZE = 0,  /* first hex digit of a chunk-size */
    CH_SIZE_MORE, /* more digits, BWS, ";" or CR */
    CH_EXT_BWS,   /* whitespace before ";" */
    CH_EXT,       /* chunk-ext bytes up to CR */
    CH_SIZE_LF,   /* LF of the size line */
    CH_DATA,      /* chunk payload; remaining bytes left */
    CH_DATA_CR,   /* CR after the payload */
    CH_DATA_LF,   /* LF after the payload */
    CH_TRAILER,   /* first byte of a trailer line or of the final CRLF */
    CH_TR_NAME,   /* trailer field name */
    CH_TR_VALUE,  /* trailer field value */
    CH_TR_LF,     /* LF of a trailer line */
    CH_LAST_LF,   /* LF of the final CRLF */
    CH_DONE,      /* body complete */
    CH_ERROR,     /* refused; every later call fails */
};

#define CHUNK_LINE_MAX 4096     /* size line incl. extensions */
#define CHUNK_TRAILER_MAX 16384 /* all trailer lines together */
#define CHUNK_DIGITS_MAX 16     /* 64 bits of hex */

void
sw_http_chunked_init(struct sw_http_chunked *ch)
{
    memset(ch, 0, sizeof(*ch));
    ch->state = CH_SIZE;
}

static int
hex_value(unsigned char c)
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

/* One framing byte (any state but CH_DATA); false if it breaks the
 * framing. */
static bool
chunk_byte(struct sw_http_chunked *ch, unsigned char c)
{
    int x;

    /* The size line and the trailer section are capped. */
    if (ch->state <= CH_EXT && ++ch->line_len > CHUNK_LINE_MAX) {
        return false;
    }
    if (ch->state >= CH_TRAILER && ch->state <= CH_LAST_LF &&
        ++ch->remaining > CHUNK_TRAILER_MAX) {
        return false;
    }
    switch (ch->state) {
    case CH_SIZE:
        if ((x = hex_value(c)) < 0) {
            return false;
        }
        ch->remaining = (uint64_t)x;
        ch->state = CH_SIZE_MORE;
        break;
    case CH_SIZE_MORE:
        if ((x = hex_value(c)) >= 0) {
            if (ch->line_len > CHUNK_DIGITS_MAX) {
                return false; /* more than 64 bits */
            }
            ch->remaining = ch->remaining << 4 | (uint64_t)x;
        } else if (c == '\r') {
            ch->state = CH_SIZE_LF;
        } else if (c == ';') {
            ch->state = CH_EXT;
        } else if (is_ows((char)c)) {
            ch->state = CH_EXT_BWS; /* RFC 9112 7.1.1: BWS */
        } else {
            return false;
        }
        break;
    case CH_EXT_BWS:
        if (c == ';') {
            ch->state = CH_EXT;
        } else if (!is_ows((char)c)) {
            return false;
        }
        break;
    case CH_EXT:
        /* Extensions are read and ignored; their bytes must still be
         * field bytes, so no bare CR or LF hides in them. */
        if (c == '\r') {
            ch->state = CH_SIZE_LF;
        } else if (!is_field_char(c)) {
            return false;
        }
        break;
    case CH_SIZE_LF:
        if (c != '\n') {
            return false;
        }
        ch->line_len = 0;
        ch->state = ch->remaining > 0 ? CH_DATA : CH_TRAILER;
        break;
    case CH_DATA_CR:
        if (c != '\r') {
            return false;
        }
        ch->state = CH_DATA_LF;
        break;
    case CH_DATA_LF:
        if (c != '\n') {
            return false;
        }
        ch->state = CH_SIZE;
        break;
    case CH_TRAILER:
        if (c == '\r') {
            ch->state = CH_LAST_LF;
        } else if (is_tchar(c)) {
            ch->state = CH_TR_NAME;
        } else {
            return false; /* obs-fold, empty name, bare LF */
        }
        break;
    case CH_TR_NAME:
        if (c == ':') {
            ch->state = CH_TR_VALUE;
        } else if (!is_tchar(c)) {
            return false;
        }
        break;
    case CH_TR_VALUE:
        if (c == '\r') {
            ch->state = CH_TR_LF;
        } else if (!is_field_char(c)) {
            return false;
        }
        break;
    case CH_TR_LF:
        if (c != '\n') {
            return false;
        }
        ch->state = CH_TRAILER;
        break;
    case CH_LAST_LF:
        if (c != '\n') {
            return false;
        }
        ch->state = CH_DONE;
        ch->remaining = 0;
        break;
    default:
        return false;
    }
    return true;
}

enum sw_status
sw_http_chunked_decode(struct sw_http_chunked *ch, const char *in, size_t len,
                       size_t *consumed, struct sw_str *data)
{
    size_t i = 0;
    bool have_data = false;
    enum sw_status st = SW_AGAIN;

    *data = (struct sw_str){in, 0};
    while (ch->state != CH_DONE && ch->state != CH_ERROR && i < len) {
        if (ch->state == CH_DATA) {
            /* One slice per call: stop before a second run of payload. */
            if (have_data) {
                goto done;
            }
            size_t n = (size_t)SW_MIN(ch->remaining, (uint64_t)(len - i));
            *data = (struct sw_str){in + i, n};
            have_data = true;
            i += n;
            ch->remaining -= n;
            ch->total += n;
            if (ch->remaining == 0) {
                ch->state = CH_DATA_CR;
            }
            continue;
        }
        if (!chunk_byte(ch, (unsigned char)in[i++])) {
            ch->state = CH_ERROR;
        }
    }

done:
    if (ch->state == CH_DONE) {
        st = SW_OK;
    } else if (ch->state == CH_ERROR) {
        st = SW_EPROTO;
    }
    *consumed = i;
    return st;
}

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

size_t
sw_http_chunk_header(char *out, uint64_t size)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t n = 0;

    do {
        tmp[n++] = hex[size & 0xf];
        size >>= 4;
    } while (size > 0);
    for (size_t i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    out[n] = '\r';
    out[n + 1] = '\n';
    return n + 2;
}

const char *
sw_http_reason(unsigned status)
{
    switch (status) {
#define XX(num, name, string)                                                  \
    case num:                                                                  \
        return #string;
        HTTP_STATUS_MAP(XX)
#undef XX
    }
    return "Unknown";
}
