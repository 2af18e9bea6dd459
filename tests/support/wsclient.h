/*
 * wsclient.h - a small blocking WebSocket client for the integration
 * suites, built on lib/ws (framing, masking, handshake keys: no second
 * codec) and on net.h's sw_test_conn (socket, deadlines, read buffer).
 *
 *   sw_test_ws_open ----> GET + Upgrade, 101 checked (Sec-WebSocket-Accept)
 *        |
 *        +--> sw_test_ws_send*      frames out, masked with a fresh key each
 *        |                          (or sw_test_ws_send_raw: any bytes)
 *        +--> sw_test_ws_recv       one frame in (server frames must not be
 *        |                          masked: the decoder runs as a client's)
 *        +--> sw_test_ws_recv_msg   one data message, fragments joined;
 *        |                          pings/pongs between them are recorded
 *        +--> sw_test_ws_close_handshake, sw_test_ws_free
 *
 * Payloads can be stored (malloc'd, NUL-terminated) or streamed to a
 * callback (payload_cb) so that 16 MiB or 200 MiB of traffic needs no
 * buffer of that size. Every read has a deadline, so a broken gateway makes
 * a test fail, never hang.
 *
 * Also here: SHA-256 over OpenSSL's EVP API for the checksums that the
 * suites compare with what third-party peers computed.
 *
 * Threading: a struct sw_test_ws belongs to one thread.
 */
#ifndef SW_TEST_WSCLIENT_H
#define SW_TEST_WSCLIENT_H

#include "net.h"
#include "support.h"

#include <shockwave/ws.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Called with each unmasked piece of a frame's payload; `off` is the
 * piece's offset in the frame. */
typedef void (*sw_test_ws_payload_cb)(const uint8_t *p, size_t n,
                                      uint64_t off, void *arg);

struct sw_test_ws {
    struct sw_test_conn conn;        /* socket and read buffer (net.h) */
    struct sw_ws_decoder dec;        /* headers of frames from the server */
    struct sw_ws_rng *rng;           /* owned: mask and handshake keys */
    char key[SW_WS_KEY_LEN + 1];     /* our Sec-WebSocket-Key */
    int status;                      /* handshake answer's status, or -1 */
    char *head;                      /* owned: handshake answer's head */
    sw_test_ws_payload_cb payload_cb; /* if set: payloads stream here */
    void *payload_arg;               /* argument for payload_cb */
    bool auto_pong;                  /* recv_msg answers pings (default) */
    uint64_t pings;                  /* pings received */
    uint64_t pongs;                  /* pongs received */
    uint8_t last_ping[SW_WS_MAX_CONTROL]; /* payload of the last ping */
    size_t last_ping_len;            /* bytes in last_ping */
    uint8_t last_pong[SW_WS_MAX_CONTROL]; /* payload of the last pong */
    size_t last_pong_len;            /* bytes in last_pong */
    bool close_sent;                 /* we sent a close frame */
    const char *why;                 /* static reason of the last failure */
};

/* One frame from the server. */
struct sw_test_ws_frame {
    bool fin;          /* FIN bit */
    uint8_t rsv;       /* RSV bits (SW_WS_RSV1..3) */
    uint8_t opcode;    /* enum sw_ws_opcode */
    uint8_t *payload;  /* owned: NUL-terminated (empty when streamed) */
    uint64_t len;      /* payload bytes on the wire */
};

/* One data message (or a close) from the server. */
struct sw_test_ws_msg {
    uint8_t opcode;    /* TEXT, BINARY or CLOSE */
    uint8_t *payload;  /* owned: joined fragments, NUL-terminated (empty
                          when streamed; for CLOSE: the close payload) */
    uint64_t len;      /* message bytes */
    unsigned frames;   /* data frames it came in */
    uint16_t close_code; /* CLOSE: its code (1005 when it had none) */
};

/*
 * Connect to 127.0.0.1:port and send the upgrade for `path` with Host
 * `host`; `extra` (may be NULL) is more header lines, each ending in CRLF.
 * Returns the answer's status: 101 when the handshake succeeded (Upgrade,
 * Connection and Sec-WebSocket-Accept checked; a 101 that fails the checks
 * returns -1 with ws->why set), another status for a refusal (the head is
 * in ws->head, its body was read), 0 when the connection closed without an
 * answer, -1 on timeout or error. Call sw_test_ws_free() in every case.
 */
int sw_test_ws_open(struct sw_test_ws *ws, int port, const char *host,
                    const char *path, const char *extra);

/* The same with a chosen Sec-WebSocket-Key (for scripted upstreams whose
 * canned 101 carries a fixed accept); key NULL picks a random one. */
int sw_test_ws_open_key(struct sw_test_ws *ws, int port, const char *host,
                        const char *path, const char *extra,
                        const char *key);

/* The same to ip:port from source address src (NULL: any), for gateways
 * and load balancers on loopback addresses of their own. */
int sw_test_ws_open_addr(struct sw_test_ws *ws, const char *ip, const char *src,
                         int port, const char *host, const char *path,
                         const char *extra);

/* Close the socket, free everything. Accepts a zeroed or freed ws. */
void sw_test_ws_free(struct sw_test_ws *ws);

/*
 * Send one frame masked with a fresh key (RFC 6455 5.3). The payload is
 * masked chunk by chunk in a scratch buffer; `p` is not modified.
 */
bool sw_test_ws_send(struct sw_test_ws *ws, bool fin, uint8_t opcode,
                     const void *p, size_t n);

/* Send a frame of n bytes of the test pattern (net.h) starting at pattern
 * offset `off`, without a buffer of n bytes. */
bool sw_test_ws_send_pattern(struct sw_test_ws *ws, bool fin,
                             uint8_t opcode, uint64_t off, uint64_t n);

/* Send bytes as they are (crafted or broken frames). */
bool sw_test_ws_send_raw(struct sw_test_ws *ws, const void *p, size_t n);

/*
 * Write a whole masked frame (header with a fresh key, masked payload) to
 * out, which must hold n + SW_WS_MAX_HEADER bytes. Returns its length.
 */
size_t sw_test_ws_build(struct sw_test_ws *ws, uint8_t *out, bool fin,
                        uint8_t opcode, const void *p, size_t n);

/*
 * Send p[0..n) in pieces of 1..max_piece bytes (sizes from rng; max_piece
 * 1 means one byte per write), pausing pause_us between writes so each
 * piece leaves as its own TCP segment (TCP_NODELAY is on).
 */
bool sw_test_ws_send_split(struct sw_test_ws *ws, const uint8_t *p, size_t n,
                           struct sw_test_rng *rng, size_t max_piece,
                           unsigned pause_us);

/*
 * Read one frame. Returns 1 with *f filled, 0 when the connection ended
 * before any byte of a frame, -1 on timeout, a truncated frame or a frame
 * a server may not send (masked, reserved opcode: ws->why says which).
 * Free f with sw_test_ws_frame_free() after 1.
 */
int sw_test_ws_recv(struct sw_test_ws *ws, struct sw_test_ws_frame *f,
                    int timeout_ms);
void sw_test_ws_frame_free(struct sw_test_ws_frame *f);

/*
 * Read one data message, joining its fragments. Pings and pongs before or
 * between fragments are counted and their payloads kept (ws->pings,
 * last_ping, ...); pings are answered with a pong when ws->auto_pong. A
 * close frame ends the call with m->opcode CLOSE and its code. Returns 1,
 * 0 (connection ended first) or -1 (timeout, protocol error: ws->why).
 * timeout_ms bounds each read, not the whole message. Free m with
 * sw_test_ws_msg_free() after 1.
 */
int sw_test_ws_recv_msg(struct sw_test_ws *ws, struct sw_test_ws_msg *m,
                        int timeout_ms);
void sw_test_ws_msg_free(struct sw_test_ws_msg *m);

/* sw_test_ws_open without extra headers, asserting (Check) the 101. */
void sw_test_ws_open_ok(struct sw_test_ws *ws, int port, const char *host,
                        const char *path);

/* Send one data message and assert (Check) that it comes back whole, same
 * opcode, within timeout_ms per read: for echo backends. */
void sw_test_ws_echo(struct sw_test_ws *ws, uint8_t opcode, const void *p,
                     size_t n, int timeout_ms);

/* Send a close with `code` (and no reason) without waiting. */
bool sw_test_ws_send_close(struct sw_test_ws *ws, uint16_t code);

/*
 * Client-initiated close: send a close with `code`, read (dropping data
 * frames) until the server's close, then until the connection ends.
 * Returns the code the server answered with (1005 for an empty close), or
 * -1 when no close came or the TCP connection did not end in time.
 */
int sw_test_ws_close_handshake(struct sw_test_ws *ws, uint16_t code,
                               int timeout_ms);

/*
 * Wait for the server to close: skip data frames and pings until a close
 * frame, answer it with a close carrying the same code (RFC 6455 5.5.1)
 * unless we sent one already, then expect EOF. Returns its code (1005 when
 * empty), or -1.
 */
int sw_test_ws_expect_close(struct sw_test_ws *ws, int timeout_ms);

/* The 101 a scripted upstream answers the upgrade whose key is `key` with
 * (Sec-WebSocket-Accept computed), `extra` header lines (CRLF each, may be
 * NULL) before its blank line, into out[cap]: its length. */
size_t sw_test_ws_answer_101(char *out, size_t cap, struct sw_str key,
                             const char *extra);

/*
 * A scripted fake (net.h) as a recording WebSocket upstream: the bytes it
 * has received so far (a mark), and the code of the first close frame the
 * gateway sent it after the head that follows byte `mark` (an upgrade
 * request's). Frames toward an upstream are masked. Waits up to 2 s.
 * Returns the code, 1005 for an empty close, -2 when the recorded frames do
 * not parse, -1 when no close came.
 */
size_t sw_test_fake_rx_mark(struct sw_test_fake *f);
int sw_test_fake_ws_close(struct sw_test_fake *f, size_t mark);

/* SHA-256 of a buffer as 64 lowercase hex digits plus NUL. */
void sw_test_sha256_hex(const void *p, size_t n, char out[65]);

/* Incremental SHA-256 (EVP). */
struct sw_test_sha256 {
    void *ctx; /* owned: EVP_MD_CTX */
};
void sw_test_sha256_init(struct sw_test_sha256 *h);
void sw_test_sha256_update(struct sw_test_sha256 *h, const void *p,
                           size_t n);
/* Write the hex digest and free the context. */
void sw_test_sha256_final(struct sw_test_sha256 *h, char out[65]);

/* SHA-256 (hex) of n bytes of the test pattern from offset 0. */
void sw_test_sha256_pattern(uint64_t n, char out[65]);

#endif
