/*
 * http_response.c - response heads (RFC 9112 sections 4 and 6): the status
 * line, and how an upstream's response is framed for the request it
 * answers (see shockwave/http.h, http_int.h).
 *
 *   on_status_line        HTTP-version SP 3DIGIT SP [ reason ]
 *   response_semantics    Content-Length, Transfer-Encoding, bodiless
 *                         statuses and HEAD, Connection
 *   sw_http_response_decode
 *   sw_http_reason        a status code's reason phrase
 *
 * An upstream that breaks a rule gets the client a 502.
 *
 * Threading: pure functions; safe from any thread.
 */
#include "http_int.h"

/* Status line (RFC 9112 4): HTTP-version SP 3DIGIT SP [ reason ]. A
 * missing SP after the code is tolerated, as most clients do. */
static enum sw_status
on_status_line(void *arg, struct sw_str line, int *status, const char **why)
{
    struct sw_http_response *resp = arg;
    const char *s = line.p;

    *status = 502;
    if (line.len < 12 ||
        !sw__http_parse_version((struct sw_str){s, 8}, &resp->version_major,
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

static enum sw_status
response_semantics(struct sw_http_response *resp, struct sw__http_head *h,
                   int request_method_id)
{
    struct sw__http_fields f;
    const char *why = sw__http_collect(&f, resp->headers, resp->nheaders);
    unsigned s = resp->status;

    if (why != NULL) {
        return sw__http_fail(h, SW_EPROTO, 502, why);
    }
    if (f.n_te > 0) {
        /* RFC 9112 6.1: TE in a 1.0 message means faulty framing; 6.3:
         * TE with Content-Length may be smuggling, so refuse both. */
        if (resp->version_minor == 0) {
            return sw__http_fail(h, SW_EPROTO, 502,
                                 "Transfer-Encoding on HTTP/1.0");
        }
        if (f.n_cl > 0) {
            return sw__http_fail(h, SW_EPROTO, 502, "ambiguous framing");
        }
        if (f.te_bad || f.te_codings == 0) {
            return sw__http_fail(h, SW_EPROTO, 502, "bad Transfer-Encoding");
        }
        if (f.te_chunked > 1) {
            return sw__http_fail(h, SW_EPROTO, 502, "chunked applied twice");
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
                       sw__http_keep_alive(&f, resp->version_minor);
    return SW_OK;
}

enum sw_status
sw_http_response_decode(struct sw_http_response *resp, const char *data,
                        size_t len, const struct sw_http_limits *lim,
                        int request_method_id, const char **why)
{
    struct sw_http_header *headers = resp->headers;
    size_t headers_cap = resp->headers_cap;
    struct sw__http_head h;
    enum sw_status st;

    SW_ASSERT(lim != NULL);
    SW_ASSERT(data != NULL || len == 0);
    memset(resp, 0, sizeof(*resp));
    resp->headers = headers;
    resp->headers_cap = headers_cap;
    resp->connection = (struct sw_str){data, 0};

    sw__http_head_init(&h, headers, headers_cap, lim);
    h.line_status = 502;
    h.line_why = "status line too long";
    h.lax_start = true; /* the reason phrase may hold HT and obs-text */
    h.on_start = on_status_line;
    h.arg = resp;
    st = sw__http_scan_head(&h, data, len);
    resp->nheaders = h.n;
    if (st != SW_OK) {
        goto done;
    }
    resp->head_len = h.head_len;
    st = response_semantics(resp, &h, request_method_id);
    if (st != SW_OK) {
        goto done;
    }
    st = sw__http_cross_check(&h, HTTP_RESPONSE, data, 502);

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
