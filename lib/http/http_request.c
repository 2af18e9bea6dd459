/*
 * http_request.c - request heads (RFC 9112 sections 3 and 6): the request
 * line and its target, and the framing rules a gateway applies to what a
 * client sends (see shockwave/http.h, http_int.h).
 *
 *   method_lookup         a method name to http-parser's number
 *   check_target          origin-, asterisk- and absolute-form
 *   on_request_line       method SP request-target SP HTTP-version
 *   is_host_value         RFC 9110 7.2 Host
 *   request_semantics     Host, Content-Length, Transfer-Encoding,
 *                         Connection, Upgrade, Expect
 *   request_rules         the above, for sw__http_head_decode
 *   sw_http_request_decode
 *   sw_http_method_head, sw_http_method_get, sw_http_method_connect
 *
 * A client that breaks a rule gets its 4xx or 5xx; anything that could
 * smuggle a second request past us (RFC 9112 6.1, 6.3, 11.2) is refused.
 *
 * Threading: pure functions; safe from any thread.
 */
#include "http_int.h"

static bool
str_eq(struct sw_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
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

/* Request-target forms (RFC 9112 3.2); sets r->target, r->path, r->origin
 * and, for absolute-form, r->authority. */
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
    r->origin = t;
    r->authority = SW_STR("");
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
    /* the authority runs from behind "scheme://" to the path or query */
    size_t a =
        (size_t)u.field_data[UF_SCHEMA].off + u.field_data[UF_SCHEMA].len + 3;
    size_t rest = t.len;
    if (u.field_set & (1u << UF_PATH)) {
        rest = u.field_data[UF_PATH].off;
    } else if (u.field_set & (1u << UF_QUERY)) {
        rest = (size_t)u.field_data[UF_QUERY].off - 1; /* the '?' */
    }
    r->authority = (struct sw_str){t.p + a, rest - a};
    r->origin =
        rest < t.len ? (struct sw_str){t.p + rest, t.len - rest} : SW_STR("/");
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
        if (!sw__http_is_tchar((unsigned char)r->method.p[i])) {
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
    if (!sw__http_parse_version(version, &r->version_major,
                                &r->version_minor)) {
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

static enum sw_status
request_semantics(void *arg, struct sw__http_head *h,
                  const struct sw__http_fields *f)
{
    struct sw_http_request *r = arg;

    /* RFC 9112 3.2: exactly one Host on 1.1, never two. */
    if (f->n_host > 1) {
        return sw__http_fail(h, SW_EPROTO, 400, "duplicate Host");
    }
    if (f->n_host == 0 && r->version_minor >= 1) {
        return sw__http_fail(h, SW_EPROTO, 400, "missing Host");
    }
    if (f->host != NULL) {
        if (!is_host_value(f->host->value)) {
            return sw__http_fail(h, SW_EPROTO, 400, "bad Host");
        }
        r->host = f->host->value;
    }
    if (f->n_te > 0) {
        /* RFC 9112 6.1 and 6.3: smuggling vectors, all refused. */
        if (r->version_minor == 0) {
            return sw__http_fail(h, SW_EPROTO, 400,
                                 "Transfer-Encoding on HTTP/1.0");
        }
        if (f->n_cl > 0) {
            return sw__http_fail(h, SW_EPROTO, 400,
                                 "Content-Length with Transfer-Encoding");
        }
        if (f->te_bad || f->te_codings == 0) {
            return sw__http_fail(h, SW_EPROTO, 400, "bad Transfer-Encoding");
        }
        if (f->te_chunked > 1) {
            return sw__http_fail(h, SW_EPROTO, 400, "chunked applied twice");
        }
        if (!f->te_last_chunked) {
            return sw__http_fail(h, SW_EPROTO, 400,
                                 "chunked is not the final coding");
        }
        if (f->te_other > 0) {
            return sw__http_fail(h, SW_EPROTO, 501,
                                 "unsupported transfer coding");
        }
        r->body = SW_HTTP_BODY_CHUNKED;
    } else if (f->n_cl > 0) {
        r->content_length = f->cl;
        r->body = f->cl > 0 ? SW_HTTP_BODY_LENGTH : SW_HTTP_BODY_NONE;
    }
    if (f->conn != NULL) {
        r->connection = f->conn->value;
    }
    r->keep_alive = sw__http_keep_alive(f, r->version_minor);
    r->expect_continue = f->expect_continue;
    if (f->upg != NULL && sw_str_has_token(r->connection, "upgrade")) {
        r->upgrade = true;
        r->upgrade_proto = f->upg->value;
    }
    return SW_OK;
}

static const struct sw__http_rules request_rules = {
    .line_status = 414,
    .line_why = "request line too long",
    .bad_status = 400,
    .type = HTTP_REQUEST,
    .on_start = on_request_line,
    .on_fields = request_semantics,
};

enum sw_status
sw_http_request_decode(struct sw_http_request *r, const char *data, size_t len,
                       const struct sw_http_limits *lim, int *http_status,
                       const char **why)
{
    struct sw_http_header *headers = r->headers;
    size_t headers_cap = r->headers_cap;
    struct sw__http_head h;
    enum sw_status st;

    memset(r, 0, sizeof(*r));
    r->headers = headers;
    r->headers_cap = headers_cap;
    r->method_id = -1;
    r->connection = (struct sw_str){data, 0};

    sw__http_head_init(&h, &request_rules, r, headers, headers_cap, lim);
    st = sw__http_head_decode(&h, data, len);
    /* A refused or partial head leaves no half-filled answer behind. */
    r->nheaders = st == SW_AGAIN ? 0 : h.n;
    r->head_len = st == SW_OK ? h.head_len : 0;
    if (http_status != NULL) {
        *http_status = st == SW_OK || st == SW_AGAIN ? 0 : h.status;
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
