/*
 * ws_handshake.c - the opening handshake (RFC 6455 4.1, 4.2): checks on an
 * upgrade request and on an upstream's 101 answer, Sec-WebSocket-Accept,
 * extension RSV bits, and the base64 helpers the module shares.
 *
 *   client --GET + Upgrade + Sec-WebSocket-Key--> gateway
 *            sw_ws_handshake_check_request: 400 / 426 / OK(key)
 *   gateway --GET + Sec-WebSocket-Key: K--> upstream
 *   upstream --101 + Sec-WebSocket-Accept--> gateway
 *            sw_ws_handshake_check_response(K)
 *
 * Reads the caller's request/response structs and returns slices of them;
 * owns nothing. SHA-1 comes from OpenSSL (EVP). Threading: none.
 */
#include <shockwave/ws.h>

#include "ws_int.h"

#include <openssl/evp.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
sw__ws_base64_encode(char *out, const uint8_t *in, size_t len)
{
    size_t o = 0;
    size_t i = 0;

    for (; i + 3 <= len; i += 3) {
        uint32_t v =
            ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int
b64_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z') {
        return ch - 'A';
    }
    if (ch >= 'a' && ch <= 'z') {
        return ch - 'a' + 26;
    }
    if (ch >= '0' && ch <= '9') {
        return ch - '0' + 52;
    }
    if (ch == '+') {
        return 62;
    }
    if (ch == '/') {
        return 63;
    }
    return -1;
}

ssize_t
sw__ws_base64_decode(uint8_t *out, size_t cap, const char *in, size_t len)
{
    size_t o = 0;

    if (len % 4 != 0) {
        return -1;
    }
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        bool last = i + 4 == len;

        for (int j = 0; j < 4; j++) {
            char ch = in[i + (size_t)j];
            if (ch == '=' && last && j >= 2) {
                v[j] = 0;
                pad++;
                continue;
            }
            /* '=' may only end the text: "ab=c" is invalid. */
            if (pad > 0) {
                return -1;
            }
            v[j] = b64_value(ch);
            if (v[j] < 0) {
                return -1;
            }
        }
        uint32_t w = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) |
                     ((uint32_t)v[2] << 6) | (uint32_t)v[3];
        size_t n = 3 - (size_t)pad;
        if (o + n > cap) {
            return -1;
        }
        out[o++] = (uint8_t)(w >> 16);
        if (n > 1) {
            out[o++] = (uint8_t)(w >> 8);
        }
        if (n > 2) {
            out[o++] = (uint8_t)w;
        }
    }
    return (ssize_t)o;
}

void
sw_ws_accept_compute(struct sw_str key, char out[SW_WS_ACCEPT_LEN + 1])
{
    static const char guid[] = SW_WS_GUID;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    /* On an OpenSSL failure (out of memory) the result is "", which
     * matches no peer's accept value. */
    out[0] = '\0';
    if (ctx == NULL) {
        goto done;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, key.p, key.len) != 1 ||
        EVP_DigestUpdate(ctx, guid, sizeof(guid) - 1) != 1 ||
        EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 20) {
        goto done;
    }
    sw__ws_base64_encode(out, md, mdlen);

done:
    EVP_MD_CTX_free(ctx);
}

/* The i-th header named `name` at or after *from; NULL when none left. */
static const struct sw_http_header *
find_next(const struct sw_http_header *h, size_t n, size_t *from,
          const char *name)
{
    for (size_t i = *from; i < n; i++) {
        if (sw_str_eq_ci(h[i].name, name)) {
            *from = i + 1;
            return &h[i];
        }
    }
    *from = n;
    return NULL;
}

/* True when any header called `name` lists token `tok`. */
static bool
any_has_token(const struct sw_http_header *h, size_t n, const char *name,
              const char *tok)
{
    size_t i = 0;
    const struct sw_http_header *x;

    while ((x = find_next(h, n, &i, name)) != NULL) {
        if (sw_str_has_token(x->value, tok)) {
            return true;
        }
    }
    return false;
}

/* The only header called `name`; *count gets how many there are. */
static const struct sw_http_header *
find_one(const struct sw_http_header *h, size_t n, const char *name,
         size_t *count)
{
    size_t i = 0;
    const struct sw_http_header *first = NULL;
    const struct sw_http_header *x;

    *count = 0;
    while ((x = find_next(h, n, &i, name)) != NULL) {
        if (first == NULL) {
            first = x;
        }
        (*count)++;
    }
    return first;
}

enum sw_status
sw_ws_handshake_check_request(const struct sw_http_request *r, int *http_status,
                              const char **why, struct sw_str *key)
{
    enum sw_status st = SW_EPROTO;
    int status = 400;
    const char *reason = NULL;
    const struct sw_http_header *h = r->headers;
    size_t n = r->headers != NULL ? r->nheaders : 0;
    const struct sw_http_header *x;
    size_t count;
    uint8_t raw[18];

    /* RFC 6455 4.2.1: items 1-6 of the client's opening handshake. */
    if (r->method.len != 3 || memcmp(r->method.p, "GET", 3) != 0) {
        reason = "WebSocket upgrade needs GET";
        goto done;
    }
    if (r->version_major != 1 || r->version_minor < 1) {
        reason = "WebSocket upgrade needs HTTP/1.1";
        goto done;
    }
    if (!any_has_token(h, n, "Upgrade", "websocket")) {
        reason = "Upgrade header lacks websocket";
        goto done;
    }
    if (!any_has_token(h, n, "Connection", "upgrade")) {
        reason = "Connection header lacks upgrade";
        goto done;
    }
    x = find_one(h, n, "Sec-WebSocket-Version", &count);
    if (x == NULL) {
        reason = "missing Sec-WebSocket-Version";
        goto done;
    }
    /* RFC 6455 4.4: an unsupported version gets 426 and our version. */
    if (count != 1 || x->value.len != 2 || memcmp(x->value.p, "13", 2) != 0) {
        status = 426;
        reason = "unsupported Sec-WebSocket-Version";
        goto done;
    }
    x = find_one(h, n, "Sec-WebSocket-Key", &count);
    if (x == NULL) {
        reason = "missing Sec-WebSocket-Key";
        goto done;
    }
    if (count != 1) {
        reason = "more than one Sec-WebSocket-Key";
        goto done;
    }
    /* RFC 6455 4.1: the key is a base64 nonce of exactly 16 bytes. */
    if (x->value.len != SW_WS_KEY_LEN ||
        sw__ws_base64_decode(raw, sizeof(raw), x->value.p, x->value.len) !=
            16) {
        reason = "Sec-WebSocket-Key is not base64 of 16 bytes";
        goto done;
    }
    if (key != NULL) {
        *key = x->value;
    }
    status = 0;
    st = SW_OK;

done:
    if (http_status != NULL) {
        *http_status = status;
    }
    if (why != NULL) {
        *why = reason;
    }
    return st;
}

enum sw_status
sw_ws_handshake_check_response(const struct sw_http_response *resp,
                               struct sw_str key, const char **why)
{
    enum sw_status st = SW_EPROTO;
    const char *reason = NULL;
    const struct sw_http_header *h = resp->headers;
    size_t n = resp->headers != NULL ? resp->nheaders : 0;
    const struct sw_http_header *x;
    size_t count;
    char expect[SW_WS_ACCEPT_LEN + 1];

    /* RFC 6455 4.1: the client's checks on the server's handshake. */
    if (resp->status != 101) {
        reason = "upstream did not answer 101";
        goto done;
    }
    if (!any_has_token(h, n, "Upgrade", "websocket")) {
        reason = "upstream 101 lacks Upgrade: websocket";
        goto done;
    }
    if (!any_has_token(h, n, "Connection", "upgrade")) {
        reason = "upstream 101 lacks Connection: upgrade";
        goto done;
    }
    x = find_one(h, n, "Sec-WebSocket-Accept", &count);
    if (x == NULL || count != 1) {
        reason = "upstream 101 needs exactly one Sec-WebSocket-Accept";
        goto done;
    }
    sw_ws_accept_compute(key, expect);
    if (expect[0] == '\0' || x->value.len != SW_WS_ACCEPT_LEN ||
        memcmp(x->value.p, expect, SW_WS_ACCEPT_LEN) != 0) {
        reason = "Sec-WebSocket-Accept does not match the key";
        goto done;
    }
    st = SW_OK;

done:
    if (why != NULL) {
        *why = reason;
    }
    return st;
}

/* Trim spaces and tabs from both ends of a slice. */
static struct sw_str
trim(struct sw_str s)
{
    while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t')) {
        s.len--;
    }
    return s;
}

uint8_t
sw_ws_handshake_rsv(const struct sw_http_header *h, size_t n)
{
    size_t from = 0;
    const struct sw_http_header *x;

    if (h == NULL) {
        return 0;
    }
    /* RFC 6455 9.1: extension = name *(";" param), comma separated. */
    while ((x = find_next(h, n, &from, "Sec-WebSocket-Extensions")) != NULL) {
        size_t i = 0;
        const char *v = x->value.p;
        size_t len = x->value.len;

        while (i < len) {
            size_t start = i;
            while (i < len && v[i] != ',' && v[i] != ';') {
                i++;
            }
            struct sw_str name = {v + start, i - start};
            /* RFC 7692 6: permessage-deflate uses RSV1 ("Per-Message
             * Compressed" bit). */
            if (sw_str_eq_ci(trim(name), "permessage-deflate")) {
                return SW_WS_RSV1;
            }
            /* Skip parameters up to the next extension. */
            while (i < len && v[i] != ',') {
                i++;
            }
            i++;
        }
    }
    return 0;
}
