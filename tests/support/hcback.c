/*
 * hcback.c - the switchable health backend (see hcback.h). The answers
 * are made on the fake's thread; the counters and the mode are atomics.
 */
#include "hcback.h"

#include <shockwave/ws.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The value of header `name` in head (to the end of its line), or NULL. */
static const char *
header_value(const char *head, size_t len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *p = head; p + nl + 3 < head + len; p++) {
        if (p[0] == '\n' && strncasecmp(p + 1, name, nl) == 0 &&
            p[1 + nl] == ':') {
            const char *v = p + 2 + nl;
            while (*v == ' ') {
                v++;
            }
            const char *e = strpbrk(v, "\r\n");
            *vlen = e != NULL ? (size_t)(e - v) : strlen(v);
            return v;
        }
    }
    return NULL;
}

static enum sw_test_fake_mode
answer(void *arg, const char *head, size_t len, char *reply, size_t cap,
       size_t *n)
{
    struct sw_test_hcback *b = arg;
    enum sw_test_hc_mode mode = atomic_load(&b->mode);
    size_t klen = 0;
    const char *key = header_value(head, len, "Sec-WebSocket-Key", &klen);
    size_t ulen = 0;
    bool upgrade = header_value(head, len, "Upgrade", &ulen) != NULL;
    int w = 0;
    if (upgrade) {
        atomic_fetch_add(&b->ws_hits, 1);
        if (mode == SW_TEST_HC_STALL) {
            *n = 0;
            return SW_TEST_FAKE_STALL;
        }
        if (mode == SW_TEST_HC_OK && key != NULL) {
            char accept[SW_WS_ACCEPT_LEN + 1];
            sw_ws_accept_compute((struct sw_str){key, klen}, accept);
            w = snprintf(reply, cap,
                         "HTTP/1.1 101 Switching Protocols\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Accept: %s\r\n\r\n",
                         accept);
            *n = (size_t)w;
            return SW_TEST_FAKE_STALL;
        }
        w = snprintf(reply, cap,
                     "HTTP/1.1 503 Service Unavailable\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n");
    } else if (strncmp(head, "GET /healthz", 12) == 0) {
        atomic_fetch_add(&b->health_hits, 1);
        if (mode == SW_TEST_HC_STALL) {
            *n = 0;
            return SW_TEST_FAKE_STALL;
        }
        if (mode == SW_TEST_HC_GARBAGE) {
            w = snprintf(reply, cap, "SSH-2.0-x\r\n");
            *n = w > 0 ? (size_t)w : 0;
            return SW_TEST_FAKE_CLOSE;
        }
        if (mode == SW_TEST_HC_BIGHEAD) {
            size_t at =
                (size_t)snprintf(reply, cap, "HTTP/1.1 204 No Content\r\n");
            for (int i = 0; i < 240 && at + 64 < cap; i++) {
                at += (size_t)snprintf(reply + at, cap - at,
                                       "X-Filler-%03d: %040d\r\n", i, i);
            }
            at += (size_t)snprintf(reply + at, cap - at, "\r\n");
            *n = at;
            return SW_TEST_FAKE_CLOSE;
        }
        w = snprintf(reply, cap,
                     mode == SW_TEST_HC_OK
                         ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                           "Connection: close\r\n\r\nok"
                         : "HTTP/1.1 500 Internal Server Error\r\n"
                           "Content-Length: 0\r\nConnection: close\r\n\r\n");
    } else {
        atomic_fetch_add(&b->other_hits, 1);
        if (atomic_load(&b->reset_clients)) {
            *n = 0;
            return SW_TEST_FAKE_RESET;
        }
        w = snprintf(reply, cap,
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     strlen(b->name), b->name);
    }
    *n = w > 0 ? (size_t)w : 0;
    return SW_TEST_FAKE_CLOSE;
}

bool
sw_test_hcback_start(struct sw_test_hcback *b, const char *name)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->name, sizeof(b->name), "%s", name);
    b->fake.script = answer;
    b->fake.script_arg = b;
    return sw_test_fake_start(&b->fake, SW_TEST_FAKE_SCRIPT, NULL, 0);
}

void
sw_test_hcback_set(struct sw_test_hcback *b, enum sw_test_hc_mode m)
{
    atomic_store(&b->mode, (int)m);
}

void
sw_test_hcback_stop(struct sw_test_hcback *b)
{
    sw_test_fake_free(&b->fake);
}
