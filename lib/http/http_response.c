/*
 * http_response.c - response heads (RFC 9112 sections 4 and 6): the status
 * line, and how an upstream's response is framed for the request it
 * answers (see shockwave/http.h, http_int.h).
 *
 *   on_status_line        HTTP-version SP 3DIGIT SP [ reason ]
 *   response_semantics    Content-Length, Transfer-Encoding, bodiless
 *                         statuses and HEAD, Connection
 *   response_rules        the above, for sw__http_head_decode
 *   sw_http_response_decode
 *   sw_http_reason        a status code's reason phrase
 *
 * An upstream that breaks a rule gets the client a 502.
 *
 * Threading: pure functions; safe from any thread.
 */
#include "http_int.h"

/* What the response callbacks fill and need. */
struct answer {
    struct sw_http_response *resp; /* borrowed: being filled */
    int request_method_id;         /* of the request it answers */
};

/* Status line (RFC 9112 4): HTTP-version SP 3DIGIT SP [ reason ]. A
 * missing SP after the code is tolerated, as most clients do. */
static enum sw_status
on_status_line(void *arg, struct sw_str line, int *status, const char **why)
{
    struct sw_http_response *resp = ((struct answer *)arg)->resp;
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
response_semantics(void *arg, struct sw__http_head *h,
                   const struct sw__http_fields *f)
{
    struct sw_http_response *resp = ((struct answer *)arg)->resp;
    int request_method_id = ((struct answer *)arg)->request_method_id;
    unsigned s = resp->status;

    if (f->n_te > 0) {
        /* RFC 9112 6.1: TE in a 1.0 message means faulty framing; 6.3:
         * TE with Content-Length may be smuggling, so refuse both. */
        if (resp->version_minor == 0) {
            return sw__http_fail(h, SW_EPROTO, 502,
                                 "Transfer-Encoding on HTTP/1.0");
        }
        if (f->n_cl > 0) {
            return sw__http_fail(h, SW_EPROTO, 502, "ambiguous framing");
        }
        if (f->te_bad || f->te_codings == 0) {
            return sw__http_fail(h, SW_EPROTO, 502, "bad Transfer-Encoding");
        }
        if (f->te_chunked > 1) {
            return sw__http_fail(h, SW_EPROTO, 502, "chunked applied twice");
        }
        /* RFC 9112 6.3 rule 4: chunked not final means read to close. */
        resp->body =
            f->te_last_chunked ? SW_HTTP_BODY_CHUNKED : SW_HTTP_BODY_TO_CLOSE;
    } else if (f->n_cl > 0) {
        resp->content_length = f->cl;
        resp->body = f->cl > 0 ? SW_HTTP_BODY_LENGTH : SW_HTTP_BODY_NONE;
    } else {
        resp->body = SW_HTTP_BODY_TO_CLOSE;
    }
    /* RFC 9112 6.3 rule 1: these never carry a body, whatever they say. */
    if ((s >= 100 && s < 200) || s == 204 || s == 304 ||
        request_method_id == HTTP_HEAD) {
        resp->body = SW_HTTP_BODY_NONE;
        resp->content_length = f->n_cl > 0 ? f->cl : 0;
    }
    if (f->conn != NULL) {
        resp->connection = f->conn->value;
    }
    resp->keep_alive = resp->body != SW_HTTP_BODY_TO_CLOSE && s != 101 &&
                       sw__http_keep_alive(f, resp->version_minor);
    return SW_OK;
}

static const struct sw__http_rules response_rules = {
    .line_status = 502,
    .line_why = "status line too long",
    .lax_start = true, /* the reason phrase may hold HT and obs-text */
    .bad_status = 502,
    .type = HTTP_RESPONSE,
    .on_start = on_status_line,
    .on_fields = response_semantics,
};

enum sw_status
sw_http_response_decode(struct sw_http_response *resp, const char *data,
                        size_t len, const struct sw_http_limits *lim,
                        int request_method_id, const char **why)
{
    struct sw_http_header *headers = resp->headers;
    size_t headers_cap = resp->headers_cap;
    struct answer a = {resp, request_method_id};
    struct sw__http_head h;
    enum sw_status st;

    memset(resp, 0, sizeof(*resp));
    resp->headers = headers;
    resp->headers_cap = headers_cap;
    resp->connection = (struct sw_str){data, 0};

    sw__http_head_init(&h, &response_rules, &a, headers, headers_cap, lim);
    st = sw__http_head_decode(&h, data, len);
    resp->nheaders = st == SW_AGAIN ? 0 : h.n;
    resp->head_len = st == SW_OK ? h.head_len : 0;
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
