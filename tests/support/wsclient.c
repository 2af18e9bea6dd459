/*
 * wsclient.c - the test suites' WebSocket client (see wsclient.h).
 *
 * Owns per client: the sw_test_conn (socket, read buffer), an sw_ws_rng and
 * the handshake answer's head. Frames are encoded, masked and decoded with
 * lib/ws only; this file adds the blocking I/O and deadlines around them.
 *
 * Reading: frame headers go through sw_ws_decoder (peer role SERVER, so a
 * masked frame or an RSV bit from the gateway is a failure), payloads are
 * taken from the connection's buffer as they arrive and either stored or
 * streamed to payload_cb.
 *
 * Threading: none; one client per thread.
 */
#include "wsclient.h"

#include <shockwave/core.h>

#include <check.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

static void *
xmalloc(size_t n)
{
    void *p = malloc(n != 0 ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "wsclient: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

/* Drop n bytes from the front of the read buffer. */
static void
consume(struct sw_test_conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    c->buf[c->len] = '\0';
}

static bool
has_token(const char *value, const char *tok)
{
    if (value == NULL) {
        return false;
    }
    struct sw_str s = {value, strlen(value)};
    return sw_str_has_token(s, tok);
}

int
sw_test_ws_open(struct sw_test_ws *ws, int port, const char *host,
                const char *path, const char *extra)
{
    return sw_test_ws_open_key(ws, port, host, path, extra, NULL);
}

static int open_at(struct sw_test_ws *ws, const char *ip, const char *src,
                   int port, const char *host, const char *path,
                   const char *extra, const char *key);

int
sw_test_ws_open_key(struct sw_test_ws *ws, int port, const char *host,
                    const char *path, const char *extra, const char *key)
{
    return open_at(ws, "127.0.0.1", NULL, port, host, path, extra, key);
}

int
sw_test_ws_open_addr(struct sw_test_ws *ws, const char *ip, const char *src,
                     int port, const char *host, const char *path,
                     const char *extra)
{
    return open_at(ws, ip, src, port, host, path, extra, NULL);
}

static int
open_at(struct sw_test_ws *ws, const char *ip, const char *src, int port,
        const char *host, const char *path, const char *extra, const char *key)
{
    memset(ws, 0, sizeof(*ws));
    ws->status = -1;
    ws->auto_pong = true;
    ws->conn.fd = -1;
    ws->rng = xmalloc(sizeof(*ws->rng));
    if (sw_ws_rng_init(ws->rng) != SW_OK) {
        ws->why = "RNG failure";
        return -1;
    }
    sw_ws_decoder_init(&ws->dec, SW_WS_PEER_SERVER, 0, 0);
    if (key != NULL) {
        snprintf(ws->key, sizeof(ws->key), "%s", key);
    } else {
        sw_ws_handshake_key(ws->rng, ws->key);
    }
    if (!sw_test_conn_open_addr(&ws->conn, ip, port, src)) {
        ws->why = "connect failed";
        return -1;
    }
    if (!sw_test_conn_sendf(&ws->conn,
                            "GET %s HTTP/1.1\r\n"
                            "Host: %s\r\n"
                            "Upgrade: websocket\r\n"
                            "Connection: Upgrade\r\n"
                            "Sec-WebSocket-Key: %s\r\n"
                            "Sec-WebSocket-Version: 13\r\n"
                            "%s\r\n",
                            path, host, ws->key, extra != NULL ? extra : "")) {
        ws->why = "send of the upgrade failed";
        return -1;
    }
    struct sw_test_resp r;
    int rc = sw_test_conn_read_resp(&ws->conn, &r, false);
    if (rc != 1) {
        sw_test_resp_free(&r);
        ws->why = rc == 0 ? "closed before answering" : "no valid answer";
        return rc;
    }
    ws->status = r.status;
    ws->head = strdup(r.head);
    int result = r.status;
    if (r.status == 101) {
        char want[SW_WS_ACCEPT_LEN + 1];
        struct sw_str ks = {ws->key, strlen(ws->key)};
        sw_ws_accept_compute(ks, want);
        const char *acc = sw_test_resp_header(&r, "Sec-WebSocket-Accept");
        if (!has_token(sw_test_resp_header(&r, "Upgrade"), "websocket")) {
            ws->why = "101 without Upgrade: websocket";
            result = -1;
        } else if (!has_token(sw_test_resp_header(&r, "Connection"),
                              "upgrade")) {
            ws->why = "101 without Connection: upgrade";
            result = -1;
        } else if (acc == NULL || strcmp(acc, want) != 0 ||
                   sw_test_resp_header_count(&r, "Sec-WebSocket-Accept") !=
                       1) {
            ws->why = "101 with a wrong Sec-WebSocket-Accept";
            result = -1;
        }
    }
    sw_test_resp_free(&r);
    return result;
}

void
sw_test_ws_free(struct sw_test_ws *ws)
{
    if (ws == NULL) {
        return;
    }
    if (ws->conn.fd >= 0 || ws->conn.buf != NULL) {
        sw_test_conn_close(&ws->conn);
    }
    if (ws->rng != NULL) {
        sw_ws_rng_fini(ws->rng);
        free(ws->rng);
        ws->rng = NULL;
    }
    free(ws->head);
    ws->head = NULL;
}

/* Send a header with a fresh key, then n payload bytes produced by
 * `fill` (or copied from p), masked piece by piece. */
static bool
send_frame(struct sw_test_ws *ws, bool fin, uint8_t opcode, const void *p,
           uint64_t pattern_off, uint64_t n)
{
    uint8_t key[4];
    uint8_t hdr[SW_WS_MAX_HEADER];
    sw_ws_rng_key(ws->rng, key);
    size_t h = sw_ws_frame_encode(hdr, fin, opcode, key, n);
    if (n <= CHUNK) {
        /* one write for small frames: header and payload together */
        uint8_t frame[SW_WS_MAX_HEADER + CHUNK];
        memcpy(frame, hdr, h);
        if (p != NULL) {
            memcpy(frame + h, p, (size_t)n);
        } else {
            sw_test_pattern_fill(pattern_off, frame + h, (size_t)n);
        }
        sw_ws_mask(frame + h, (size_t)n, key, 0);
        return sw_test_conn_send(&ws->conn, frame, h + (size_t)n);
    }
    if (!sw_test_conn_send(&ws->conn, hdr, h)) {
        return false;
    }
    uint8_t *scratch = xmalloc(CHUNK);
    bool ok = true;
    for (uint64_t done = 0; done < n && ok;) {
        size_t k = (size_t)SW_MIN((uint64_t)CHUNK, n - done);
        if (p != NULL) {
            memcpy(scratch, (const uint8_t *)p + done, k);
        } else {
            sw_test_pattern_fill(pattern_off + done, scratch, k);
        }
        sw_ws_mask(scratch, k, key, (size_t)done);
        ok = sw_test_conn_send(&ws->conn, scratch, k);
        done += k;
    }
    free(scratch);
    return ok;
}

bool
sw_test_ws_send(struct sw_test_ws *ws, bool fin, uint8_t opcode,
                const void *p, size_t n)
{
    static const uint8_t empty[1];
    return send_frame(ws, fin, opcode, p != NULL ? p : empty, 0, n);
}

bool
sw_test_ws_send_pattern(struct sw_test_ws *ws, bool fin, uint8_t opcode,
                        uint64_t off, uint64_t n)
{
    return send_frame(ws, fin, opcode, NULL, off, n);
}

bool
sw_test_ws_send_raw(struct sw_test_ws *ws, const void *p, size_t n)
{
    return sw_test_conn_send(&ws->conn, p, n);
}

size_t
sw_test_ws_build(struct sw_test_ws *ws, uint8_t *out, bool fin,
                 uint8_t opcode, const void *p, size_t n)
{
    uint8_t key[4];
    sw_ws_rng_key(ws->rng, key);
    size_t h = sw_ws_frame_encode(out, fin, opcode, key, n);
    if (n > 0) {
        memcpy(out + h, p, n);
        sw_ws_mask(out + h, n, key, 0);
    }
    return h + n;
}

bool
sw_test_ws_send_split(struct sw_test_ws *ws, const uint8_t *p, size_t n,
                      struct sw_test_rng *rng, size_t max_piece,
                      unsigned pause_us)
{
    for (size_t done = 0; done < n;) {
        size_t k = max_piece <= 1 ? 1 : 1 + sw_test_rng_below(rng, max_piece);
        k = SW_MIN(k, n - done);
        if (!sw_test_conn_send(&ws->conn, p + done, k)) {
            return false;
        }
        done += k;
        if (pause_us > 0 && done < n) {
            usleep(pause_us);
        }
    }
    return true;
}

/* Fill once; maps net.h's 0/-1 to "ended"/"timeout". */
static int
fill(struct sw_test_ws *ws, int timeout_ms)
{
    ssize_t n = sw_test_conn_fill(&ws->conn, timeout_ms);
    if (n > 0) {
        return 1;
    }
    return n == 0 ? 0 : -1;
}

int
sw_test_ws_recv(struct sw_test_ws *ws, struct sw_test_ws_frame *f,
                int timeout_ms)
{
    struct sw_test_conn *c = &ws->conn;
    struct sw_ws_frame fr;
    memset(f, 0, sizeof(*f));
    for (;;) {
        if (c->len > 0) {
            ssize_t n = sw_ws_frame_decode(&ws->dec, (const uint8_t *)c->buf,
                                           c->len, &fr);
            if (n >= 0) {
                consume(c, (size_t)n);
                break;
            }
            if (n != SW_AGAIN) {
                ws->why = ws->dec.why;
                sw_ws_decoder_init(&ws->dec, SW_WS_PEER_SERVER, 0, 0);
                return -1;
            }
            consume(c, c->len);
        }
        int rc = fill(ws, timeout_ms);
        if (rc == 0) {
            bool clean = ws->dec.state == SW_WS_DEC_START;
            ws->why = clean ? "connection closed" : "closed inside a header";
            return clean ? 0 : -1;
        }
        if (rc < 0) {
            ws->why = "timeout waiting for a frame";
            return -1;
        }
    }
    f->fin = fr.fin;
    f->rsv = fr.rsv;
    f->opcode = fr.opcode;
    f->len = fr.payload_len;
    bool stream = ws->payload_cb != NULL && !sw_ws_is_control(fr.opcode);
    if (!stream && fr.payload_len > (uint64_t)1 << 31) {
        ws->why = "frame too large to store";
        return -1;
    }
    f->payload = xmalloc(stream ? 1 : (size_t)fr.payload_len + 1);
    f->payload[0] = '\0';
    for (uint64_t got = 0; got < fr.payload_len;) {
        if (c->len == 0) {
            int rc = fill(ws, timeout_ms);
            if (rc <= 0) {
                ws->why = rc == 0 ? "closed inside a payload"
                                  : "timeout inside a payload";
                sw_test_ws_frame_free(f);
                return -1;
            }
        }
        size_t k = (size_t)SW_MIN((uint64_t)c->len, fr.payload_len - got);
        if (stream) {
            ws->payload_cb((const uint8_t *)c->buf, k, got, ws->payload_arg);
        } else {
            memcpy(f->payload + got, c->buf, k);
        }
        consume(c, k);
        got += k;
    }
    if (!stream) {
        f->payload[fr.payload_len] = '\0';
    }
    return 1;
}

void
sw_test_ws_frame_free(struct sw_test_ws_frame *f)
{
    if (f != NULL) {
        free(f->payload);
        f->payload = NULL;
    }
}

static uint16_t
close_code_of(const uint8_t *p, uint64_t len)
{
    if (len < 2) {
        return SW_WS_CLOSE_NO_STATUS;
    }
    return (uint16_t)((p[0] << 8) | p[1]);
}

int
sw_test_ws_recv_msg(struct sw_test_ws *ws, struct sw_test_ws_msg *m,
                    int timeout_ms)
{
    memset(m, 0, sizeof(*m));
    bool started = false;
    for (;;) {
        struct sw_test_ws_frame f;
        int rc = sw_test_ws_recv(ws, &f, timeout_ms);
        if (rc != 1) {
            sw_test_ws_msg_free(m);
            return rc;
        }
        switch (f.opcode) {
        case SW_WS_OP_PING:
            ws->pings++;
            ws->last_ping_len = (size_t)f.len;
            memcpy(ws->last_ping, f.payload, (size_t)f.len);
            if (ws->auto_pong &&
                !sw_test_ws_send(ws, true, SW_WS_OP_PONG, f.payload,
                                 (size_t)f.len)) {
                sw_test_ws_frame_free(&f);
                ws->why = "pong send failed";
                sw_test_ws_msg_free(m);
                return -1;
            }
            sw_test_ws_frame_free(&f);
            continue;
        case SW_WS_OP_PONG:
            ws->pongs++;
            ws->last_pong_len = (size_t)f.len;
            memcpy(ws->last_pong, f.payload, (size_t)f.len);
            sw_test_ws_frame_free(&f);
            continue;
        case SW_WS_OP_CLOSE:
            sw_test_ws_msg_free(m);
            m->opcode = SW_WS_OP_CLOSE;
            m->payload = f.payload;
            m->len = f.len;
            m->close_code = close_code_of(f.payload, f.len);
            return 1;
        case SW_WS_OP_CONT:
            if (!started) {
                sw_test_ws_frame_free(&f);
                ws->why = "continuation without a message";
                return -1;
            }
            break;
        default:
            if (started) {
                sw_test_ws_frame_free(&f);
                sw_test_ws_msg_free(m);
                ws->why = "new message inside a fragmented one";
                return -1;
            }
            started = true;
            m->opcode = f.opcode;
            break;
        }
        m->frames++;
        if (ws->payload_cb != NULL) {
            m->len += f.len;
            sw_test_ws_frame_free(&f);
        } else if (m->payload == NULL) {
            m->payload = f.payload;
            m->len = f.len;
        } else {
            uint8_t *joined = realloc(m->payload, (size_t)(m->len + f.len) + 1);
            if (joined == NULL) {
                abort();
            }
            memcpy(joined + m->len, f.payload, (size_t)f.len);
            m->len += f.len;
            joined[m->len] = '\0';
            m->payload = joined;
            sw_test_ws_frame_free(&f);
        }
        if (f.fin) {
            if (m->payload == NULL) {
                m->payload = xmalloc(1);
                m->payload[0] = '\0';
            }
            return 1;
        }
    }
}

void
sw_test_ws_msg_free(struct sw_test_ws_msg *m)
{
    if (m != NULL) {
        free(m->payload);
        m->payload = NULL;
    }
}

bool
sw_test_ws_send_close(struct sw_test_ws *ws, uint16_t code)
{
    uint8_t payload[SW_WS_MAX_CONTROL];
    size_t n = sw_ws_close_encode(payload, code, NULL, 0);
    ws->close_sent = true;
    return sw_test_ws_send(ws, true, SW_WS_OP_CLOSE, payload, n);
}

int
sw_test_ws_expect_close(struct sw_test_ws *ws, int timeout_ms)
{
    for (;;) {
        struct sw_test_ws_msg m;
        int rc = sw_test_ws_recv_msg(ws, &m, timeout_ms);
        if (rc != 1) {
            if (ws->why == NULL || rc == 0) {
                ws->why = "no close frame before the end";
            }
            return -1;
        }
        if (m.opcode != SW_WS_OP_CLOSE) {
            sw_test_ws_msg_free(&m);
            continue;
        }
        int code = m.close_code;
        if (m.len == 1) {
            code = -1;
            ws->why = "close payload of one byte";
        }
        sw_test_ws_msg_free(&m);
        if (!ws->close_sent && code > 0) {
            uint16_t echo = code == SW_WS_CLOSE_NO_STATUS ? 0 : (uint16_t)code;
            uint8_t payload[2] = {(uint8_t)(echo >> 8), (uint8_t)echo};
            /* best effort: the server may already have closed TCP */
            ws->close_sent = true;
            (void)sw_test_ws_send(ws, true, SW_WS_OP_CLOSE, payload,
                                  echo != 0 ? 2 : 0);
        }
        if (!sw_test_conn_closed(&ws->conn, timeout_ms)) {
            ws->why = "TCP connection not closed after the close frame";
            return -1;
        }
        return code;
    }
}

int
sw_test_ws_close_handshake(struct sw_test_ws *ws, uint16_t code,
                           int timeout_ms)
{
    if (!sw_test_ws_send_close(ws, code)) {
        ws->why = "close send failed";
        return -1;
    }
    return sw_test_ws_expect_close(ws, timeout_ms);
}

/* ---- SHA-256 ---------------------------------------------------------- */

void
sw_test_sha256_init(struct sw_test_sha256 *h)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        abort();
    }
    h->ctx = ctx;
}

void
sw_test_sha256_update(struct sw_test_sha256 *h, const void *p, size_t n)
{
    if (n > 0 && EVP_DigestUpdate(h->ctx, p, n) != 1) {
        abort();
    }
}

void
sw_test_sha256_final(struct sw_test_sha256 *h, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(h->ctx, md, &mdlen) != 1 || mdlen != 32) {
        abort();
    }
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
    for (unsigned i = 0; i < mdlen; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
}

void
sw_test_sha256_hex(const void *p, size_t n, char out[65])
{
    struct sw_test_sha256 h;
    sw_test_sha256_init(&h);
    sw_test_sha256_update(&h, p, n);
    sw_test_sha256_final(&h, out);
}

void
sw_test_sha256_pattern(uint64_t n, char out[65])
{
    struct sw_test_sha256 h;
    uint8_t *scratch = xmalloc(CHUNK);
    sw_test_sha256_init(&h);
    for (uint64_t done = 0; done < n;) {
        size_t k = (size_t)SW_MIN((uint64_t)CHUNK, n - done);
        sw_test_pattern_fill(done, scratch, k);
        sw_test_sha256_update(&h, scratch, k);
        done += k;
    }
    sw_test_sha256_final(&h, out);
    free(scratch);
}

/* Send one message and expect it back unchanged, same type. */
void
sw_test_ws_echo(struct sw_test_ws *ws, uint8_t opcode, const void *p, size_t n,
                int timeout_ms)
{
    ck_assert(sw_test_ws_send(ws, true, opcode, p, n));
    struct sw_test_ws_msg m;
    int rc = sw_test_ws_recv_msg(ws, &m, timeout_ms);
    ck_assert_msg(rc == 1, "echo of %zu bytes: rc %d (%s)", n, rc,
                  ws->why != NULL ? ws->why : "-");
    ck_assert_uint_eq(m.opcode, opcode);
    ck_assert_uint_eq(m.len, n);
    ck_assert(n == 0 || memcmp(m.payload, p, n) == 0);
    sw_test_ws_msg_free(&m);
}

void
sw_test_ws_open_ok(struct sw_test_ws *ws, int port, const char *host,
                   const char *path)
{
    int st = sw_test_ws_open(ws, port, host, path, NULL);
    ck_assert_msg(st == 101, "upgrade to %s: status %d (%s)\n%s", path, st,
                  ws->why != NULL ? ws->why : "-",
                  ws->head != NULL ? ws->head : "");
}

size_t
sw_test_fake_rx_mark(struct sw_test_fake *f)
{
    size_t len = 0;
    free(sw_test_fake_rx(f, &len));
    return len;
}

/* The frames after the head that follows `mark`, decoded as far as they
 * are whole: the first close's code, or -1 (none yet) / -2 (garbage). */
static int
rx_close_code(const char *rx, size_t len, size_t mark)
{
    const char *eoh =
        len > mark ? memmem(rx + mark, len - mark, "\r\n\r\n", 4) : NULL;
    if (eoh == NULL) {
        return -1;
    }
    const uint8_t *p = (const uint8_t *)eoh + 4;
    const uint8_t *end = (const uint8_t *)rx + len;
    struct sw_ws_decoder dec;
    sw_ws_decoder_init(&dec, SW_WS_PEER_ANY, 0x7, 0);
    while (p < end) {
        struct sw_ws_frame fr;
        ssize_t n = sw_ws_frame_decode(&dec, p, (size_t)(end - p), &fr);
        if (n < 0) {
            return n == SW_AGAIN ? -1 : -2;
        }
        p += n;
        if ((uint64_t)(end - p) < fr.payload_len) {
            return -1; /* not all here yet */
        }
        if (fr.opcode == SW_WS_OP_CLOSE) {
            uint8_t pl[SW_WS_MAX_CONTROL];
            size_t pn = (size_t)SW_MIN(fr.payload_len, sizeof(pl));
            memcpy(pl, p, pn);
            if (fr.masked) {
                sw_ws_mask(pl, pn, fr.mask, 0);
            }
            return pn >= 2 ? (pl[0] << 8 | pl[1]) : SW_WS_CLOSE_NO_STATUS;
        }
        p += fr.payload_len;
    }
    return -1;
}

int
sw_test_fake_ws_close(struct sw_test_fake *f, size_t mark)
{
    int code = -1;
    for (int i = 0; i < 100 && code == -1; i++) {
        size_t len = 0;
        char *rx = sw_test_fake_rx(f, &len);
        code = rx_close_code(rx, len, mark);
        free(rx);
        if (code == -1) {
            sw_test_sleep_ms(20);
        }
    }
    return code;
}

size_t
sw_test_ws_answer_101(char *out, size_t cap, struct sw_str key,
                      const char *extra)
{
    char accept[SW_WS_ACCEPT_LEN + 1];
    sw_ws_accept_compute(key, accept);
    int n = snprintf(out, cap,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n%s\r\n",
                     accept, extra != NULL ? extra : "");
    ck_assert_msg(n > 0 && (size_t)n < cap, "101 answer over %zu bytes", cap);
    return (size_t)n;
}
