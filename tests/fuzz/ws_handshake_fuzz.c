/*
 * ws_handshake_fuzz.c - libFuzzer harness for the opening-handshake checks.
 *
 * The input is cut into lines ('\n'); the first is the method, the second
 * picks version and response status from its first two bytes, the rest are
 * "name:value" header lines (no colon: the whole line is a name with an
 * empty value). The same header set feeds sw_ws_handshake_check_request,
 * sw_ws_handshake_check_response and sw_ws_handshake_rsv.
 *
 * Invariants checked (abort on violation): a failed request check gives
 * 400 or 426 and a reason; an accepted one returns a 24-character key that
 * is one of the input's Sec-WebSocket-Key values; a response carrying the
 * accept value computed for that key, plus the upgrade headers, passes.
 */
#include <shockwave/ws.h>

#define MAX_HEADERS 24

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
next_line(const char *p, size_t len, size_t pos, struct sw_str *line)
{
    size_t start = pos;

    while (pos < len && p[pos] != '\n') {
        pos++;
    }
    line->p = p + start;
    line->len = pos - start;
    return pos < len ? pos + 1 : pos;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sw_http_header h[MAX_HEADERS + 3];
    const char *p = (const char *)data;
    struct sw_http_request r;
    struct sw_http_response resp;
    struct sw_str line;
    size_t pos = 0;
    size_t n = 0;
    int status = -1;
    const char *why = NULL;
    struct sw_str key = {NULL, 0};
    char accept[SW_WS_ACCEPT_LEN + 1];

    memset(&r, 0, sizeof(r));
    memset(&resp, 0, sizeof(resp));
    pos = next_line(p, size, pos, &r.method);
    pos = next_line(p, size, pos, &line);
    r.version_major = line.len > 0 ? (uint8_t)line.p[0] % 3 : 1;
    r.version_minor = line.len > 0 ? ((uint8_t)line.p[0] >> 2) % 3 : 1;
    resp.status = line.len > 1 ? 100 + (uint8_t)line.p[1] % 3 : 101;
    while (pos < size && n < MAX_HEADERS) {
        pos = next_line(p, size, pos, &line);
        const char *colon = memchr(line.p, ':', line.len);
        if (colon == NULL) {
            h[n].name = line;
            h[n].value.p = line.p + line.len;
            h[n].value.len = 0;
        } else {
            h[n].name.p = line.p;
            h[n].name.len = (size_t)(colon - line.p);
            h[n].value.p = colon + 1;
            h[n].value.len = line.len - h[n].name.len - 1;
        }
        n++;
    }
    r.headers = h;
    r.nheaders = n;
    r.headers_cap = MAX_HEADERS + 3;

    enum sw_status st = sw_ws_handshake_check_request(&r, &status, &why,
                                                      &key);
    if (st != SW_OK) {
        if (st != SW_EPROTO || (status != 400 && status != 426) ||
            why == NULL || key.p != NULL) {
            abort();
        }
    } else {
        bool found = false;
        if (key.len != SW_WS_KEY_LEN) {
            abort();
        }
        for (size_t i = 0; i < n; i++) {
            if (h[i].value.p == key.p && h[i].value.len == key.len) {
                found = true;
            }
        }
        if (!found) {
            abort();
        }
    }

    /* Response: the fuzzed headers, then what a good server adds. */
    sw_ws_accept_compute(key.p != NULL ? key : SW_STR("x"), accept);
    if (strlen(accept) != SW_WS_ACCEPT_LEN) {
        abort();
    }
    resp.headers = h;
    resp.nheaders = n;
    resp.headers_cap = MAX_HEADERS + 3;
    st = sw_ws_handshake_check_response(&resp, key, &why);
    if (st != SW_OK && (st != SW_EPROTO || why == NULL)) {
        abort();
    }
    if (key.p != NULL) {
        /* A clean 101 answering this key must pass. */
        h[0].name = SW_STR("Upgrade");
        h[0].value = SW_STR("websocket");
        h[1].name = SW_STR("Connection");
        h[1].value = SW_STR("Upgrade");
        h[2].name = SW_STR("Sec-WebSocket-Accept");
        h[2].value.p = accept;
        h[2].value.len = SW_WS_ACCEPT_LEN;
        resp.status = 101;
        resp.nheaders = 3;
        if (sw_ws_handshake_check_response(&resp, key, &why) != SW_OK) {
            abort();
        }
    }
    (void)sw_ws_handshake_rsv(h, n);
    return 0;
}
