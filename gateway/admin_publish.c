/*
 * admin_publish.c - POST /publish?upstream=NAME&channel=KEY on the admin
 * listener: a backend without a WebSocket puts one message into a fan-out
 * channel (docs/fanout.md, "Publishing from a backend").
 *
 *   admin.c: head read (2 KiB) --sw_gateway_publish_is--> this file
 *     sw_gateway_publish_head: method, framing, size, arguments, upstream
 *        | refused: 400 / 404 / 405 / 411 / 413 answered, connection closes
 *        v accepted: "100 Continue" if asked; admin.c reads the body
 *     sw_gateway_publish_body: UTF-8 check for text, sw_fanout_hub_publish,
 *        202 {"channel":..,"upstream":..,"local":..,"bus":..}
 *
 * The channel is named as the gateway names it: "UPSTREAM\x1fKEY", KEY the
 * route's expanded `fanout` key (lib/proxy/proxy_fanout.c). Arguments are
 * percent-decoded ("+" stays "+"); a decoded NUL is refused.
 *
 * Owns nothing past a call; reads g->cf, the current snapshot. Main
 * thread.
 */
#include "gateway.h"
#include "json.h"

#include <shockwave/fanout.h>
#include <shockwave/http.h>
#include <shockwave/log.h>
#include <shockwave/ws.h>

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#define PATH "/publish"
#define HEADERS_MAX 32 /* header fields of a publish request */

#define SHOW_MAX 64 /* bytes of a name or channel in a log line */

/* Up to SHOW_MAX bytes of v for a log line, control bytes as "?". */
static const char *
shown(struct sw_str v, char out[SHOW_MAX + 4])
{
    size_t n = SW_MIN(v.len, SHOW_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v.p[i];
        out[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    strcpy(out + n, v.len > n ? "..." : "");
    return out;
}

/* Answer a refusal: a one-line text body, and the same line in the log. */
static void refuse(int fd, unsigned status, const char *extra, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

static void
refuse(int fd, unsigned status, const char *extra, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : SW_MIN((size_t)n, sizeof(msg) - 2);
    sw_log_info("admin: /publish refused: %u %.*s", status, (int)len, msg);
    msg[len++] = '\n';
    sw_gateway_admin_answer_with(fd, status, sw_http_reason(status),
                                 "text/plain", extra, msg, len);
}

bool
sw_gateway_publish_is(const char *req)
{
    const char *sp = strchr(req, ' ');
    if (sp == NULL || strncmp(sp + 1, PATH, sizeof(PATH) - 1) != 0) {
        return false;
    }
    char next = sp[sizeof(PATH)];
    return next == ' ' || next == '?';
}

/* Query argument `name`, decoded, appended to pub->key up to byte cap. */
static bool
arg(int fd, struct sw_str query, const char *name, size_t cap,
    struct sw_gateway_publish *pub, struct sw_str *out)
{
    struct sw_str raw;
    if (!sw_http_param(query, '&', (struct sw_str){name, strlen(name)}, &raw) ||
        raw.len == 0) {
        refuse(fd, 400, "",
               "missing argument \"%s\" (POST " PATH
               "?upstream=NAME&channel=KEY)",
               name);
        return false;
    }
    size_t start = pub->key_len;
    ssize_t n = sw_percent_decode(raw, pub->key + start, cap - start, NULL);
    if (n == SW_ETOOBIG) {
        refuse(fd, 400, "",
               "argument \"%s\" too long: upstream and channel are at "
               "most %zu bytes together",
               name, sizeof(pub->key) - 1);
        return false;
    }
    if (n < 0) {
        refuse(fd, 400, "", "bad percent escape in argument \"%s\"", name);
        return false;
    }
    pub->key_len += (size_t)n;
    *out = (struct sw_str){pub->key + start, pub->key_len - start};
    return true;
}

static const struct sw_conf_upstream *
find_upstream(const struct sw_conf *cf, struct sw_str name)
{
    for (size_t i = 0; i < cf->nupstreams; i++) {
        struct sw_str n = cf->upstreams[i].name;
        if (n.len == name.len && memcmp(n.p, name.p, n.len) == 0) {
            return &cf->upstreams[i];
        }
    }
    return NULL;
}

/* application/octet-stream, parameters and case aside. */
static bool
is_binary(const struct sw_http_header *h)
{
    static const char bin[] = "application/octet-stream";
    if (h == NULL || h->value.len < sizeof(bin) - 1 ||
        strncasecmp(h->value.p, bin, sizeof(bin) - 1) != 0) {
        return false;
    }
    size_t i = sizeof(bin) - 1;
    while (i < h->value.len &&
           (h->value.p[i] == ' ' || h->value.p[i] == '\t')) {
        i++;
    }
    return i == h->value.len || h->value.p[i] == ';';
}

bool
sw_gateway_publish_head(struct sw_gateway *g, int fd, const char *req,
                        size_t len, struct sw_gateway_publish *pub)
{
    struct sw_http_header hdrs[HEADERS_MAX];
    struct sw_http_request r = {.headers = hdrs, .headers_cap = HEADERS_MAX};
    struct sw_http_limits lim = {len + 1, len + 1, HEADERS_MAX};
    int status = 400;
    const char *why = "malformed request";
    enum sw_status rc =
        sw_http_request_decode(&r, req, len, &lim, &status, &why);
    if (rc != SW_OK) {
        refuse(fd, rc == SW_AGAIN ? 400 : (unsigned)status, "", "%s", why);
        return false;
    }
    if (r.method.len != 4 || memcmp(r.method.p, "POST", 4) != 0) {
        refuse(fd, 405, "Allow: POST\r\n", "%.*s: " PATH " takes POST only",
               (int)SW_MIN(r.method.len, 16), r.method.p);
        return false;
    }
    if (r.body == SW_HTTP_BODY_CHUNKED ||
        sw_http_find(r.headers, r.nheaders, "Content-Length") == NULL) {
        refuse(fd, 411, "", "a Content-Length is required%s",
               r.body == SW_HTTP_BODY_CHUNKED ? " (not chunked)" : "");
        return false;
    }
    if (r.content_length > SW_GATEWAY_PUBLISH_MAX) {
        refuse(fd, 413, "", "message of %llu bytes: at most %u are taken",
               (unsigned long long)r.content_length, SW_GATEWAY_PUBLISH_MAX);
        return false;
    }
    memset(pub, 0, sizeof(*pub));
    struct sw_str query = sw_http_query(r.target);
    struct sw_str up;
    struct sw_str channel;
    /* One byte stays free after the name: the separator. */
    if (!arg(fd, query, "upstream", sizeof(pub->key) - 1, pub, &up)) {
        return false;
    }
    pub->key[pub->key_len++] = '\x1f';
    if (!arg(fd, query, "channel", sizeof(pub->key), pub, &channel)) {
        return false;
    }
    if (memchr(up.p, '\x1f', up.len) != NULL ||
        find_upstream(g->cf, up) == NULL) {
        char show[SHOW_MAX + 4];
        refuse(fd, 404, "", "unknown upstream \"%s\"", shown(up, show));
        return false;
    }
    pub->up_len = up.len;
    pub->head_len = r.head_len;
    pub->body_len = (size_t)r.content_length;
    pub->opcode = is_binary(sw_http_find(r.headers, r.nheaders, "Content-Type"))
                      ? SW_WS_OP_BINARY
                      : SW_WS_OP_TEXT;
    /* RFC 9110 10.1.1: say "go on" unless the body is already here. */
    if (r.expect_continue && len - r.head_len < pub->body_len) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        sw_gateway_admin_send(fd, cont, sizeof(cont) - 1);
    }
    return true;
}

void
sw_gateway_publish_body(struct sw_gateway *g, int fd,
                        const struct sw_gateway_publish *pub, const char *body)
{
    if (pub->opcode == SW_WS_OP_TEXT &&
        !sw_ws_utf8_is_valid((const uint8_t *)body, pub->body_len)) {
        refuse(fd, 400, "",
               "the message is not valid UTF-8 (send "
               "Content-Type: application/octet-stream for "
               "binary)");
        return;
    }
    struct sw_str key = {pub->key, pub->key_len};
    bool local =
        sw_fanout_hub_publish(g->fanout, key, pub->opcode, body, pub->body_len);
    const char *up = pub->key;
    const char *ch = pub->key + pub->up_len + 1;
    size_t chlen = pub->key_len - pub->up_len - 1;
    char show[2][SHOW_MAX + 4];
    sw_log_debug("admin: published %zu bytes (%s) to %s channel \"%s\"%s",
                 pub->body_len,
                 pub->opcode == SW_WS_OP_TEXT ? "text" : "binary",
                 shown((struct sw_str){up, pub->up_len}, show[0]),
                 shown((struct sw_str){ch, chlen}, show[1]),
                 local ? ", clients here" : "");
    struct sw_json j;
    sw_json_init(&j);
    sw_json_obj_open(&j, NULL);
    sw_json_text(&j, "channel", ch, chlen);
    sw_json_text(&j, "upstream", up, pub->up_len);
    sw_json_bool(&j, "local", local);
    sw_json_bool(&j, "bus", sw_fanout_hub_has_bus(g->fanout));
    sw_json_obj_close(&j);
    if (j.failed) {
        sw_log_error("admin: out of memory for the /publish answer");
    }
    sw_gateway_admin_answer_json(fd, 202, "Accepted", &j);
    sw_json_fini(&j);
}
