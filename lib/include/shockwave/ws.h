/*
 * ws.h - WebSocket (RFC 6455) codec: frame headers, message rules, masking,
 * UTF-8, close payloads, the opening handshake and mask keys.
 *
 * Pure functions over bytes: no I/O, no allocation, no libevent. Decoders
 * never keep a pointer to their input; what they return is either a copy
 * (frame headers, at most 14 bytes) or a slice into the caller's buffer.
 * The only library state is OpenSSL's RNG behind struct sw_ws_rng.
 *
 * How the relay uses it, per direction:
 *
 *   bytes --> sw_ws_frame_decode --> struct sw_ws_frame --> sw_ws_msg_check
 *               (header only,           (fin, opcode,          (fragmentation,
 *                resumable)              mask, length)          message size)
 *                                             |
 *             payload (payload_len bytes) ----+--> forwarded verbatim, or,
 *             when the gateway must read it (close, ping, text to validate):
 *             sw_ws_mask (unmask in place, running offset), sw_ws_utf8_feed,
 *             sw_ws_close_decode
 *
 * Decoder states (struct sw_ws_decoder.state):
 *
 *   SW_WS_DEC_START --(some header bytes)--> SW_WS_DEC_PARTIAL
 *        ^   |                                   |        |
 *        |   +----(whole header: frame out)------+        |
 *        +-------------------------------------------+    |
 *   SW_WS_DEC_START/PARTIAL --(violation)--> SW_WS_DEC_FAILED (sticky until
 *                                            sw_ws_decoder_init)
 *
 * Choices where the RFC leaves room:
 *   - Non-minimal length encodings (a 5-byte payload sent with the 16-bit or
 *     64-bit form) are ACCEPTED. RFC 6455 5.2 says the minimal number of
 *     bytes MUST be used, but that binds senders; a proxy that relays frames
 *     verbatim stays transparent, and the length is unambiguous either way.
 *     The 64-bit form's most significant bit must be 0 (RFC 6455 5.2).
 *   - Masking is checked by the peer role: frames from a client must be
 *     masked, frames from a server must not (RFC 6455 5.1); both are
 *     protocol errors (close 1002). SW_WS_PEER_ANY checks neither.
 *   - RSV bits are refused unless allowed by a negotiated extension
 *     (rsv_allowed, e.g. SW_WS_RSV1 for permessage-deflate); the codec does
 *     not interpret them otherwise.
 *   - A handshake request without Sec-WebSocket-Version gets 400; one with a
 *     version other than 13 gets 426 (the caller adds
 *     "Sec-WebSocket-Version: 13" to that response, RFC 6455 4.4).
 *
 * Threading: none. Every object belongs to its caller; a struct sw_ws_rng
 * belongs to one worker thread.
 */
#ifndef SHOCKWAVE_WS_H
#define SHOCKWAVE_WS_H

#include <shockwave/core.h>
#include <shockwave/http.h>

/* ---- constants --------------------------------------------------------- */

/* Opcodes (RFC 6455 5.2). Values 3-7 and 0xB-0xF are reserved. */
enum sw_ws_opcode {
    SW_WS_OP_CONT = 0x0,   /* continuation of a fragmented message */
    SW_WS_OP_TEXT = 0x1,   /* text message (UTF-8) */
    SW_WS_OP_BINARY = 0x2, /* binary message */
    SW_WS_OP_CLOSE = 0x8,  /* close (control) */
    SW_WS_OP_PING = 0x9,   /* ping (control) */
    SW_WS_OP_PONG = 0xA,   /* pong (control) */
};

/* Close codes (RFC 6455 7.4.1). 1005, 1006 and 1015 are never sent. */
enum sw_ws_close_code {
    SW_WS_CLOSE_NORMAL = 1000,        /* normal closure */
    SW_WS_CLOSE_GOING_AWAY = 1001,    /* endpoint going away (drain) */
    SW_WS_CLOSE_PROTOCOL = 1002,      /* protocol error */
    SW_WS_CLOSE_UNSUPPORTED = 1003,   /* data type not accepted */
    SW_WS_CLOSE_NO_STATUS = 1005,     /* local only: close had no code */
    SW_WS_CLOSE_ABNORMAL = 1006,      /* local only: no close frame at all */
    SW_WS_CLOSE_INVALID_DATA = 1007,  /* bad UTF-8 in a text message */
    SW_WS_CLOSE_POLICY = 1008,        /* policy violation */
    SW_WS_CLOSE_TOO_BIG = 1009,       /* message too big */
    SW_WS_CLOSE_MANDATORY_EXT = 1010, /* client wanted an extension */
    SW_WS_CLOSE_INTERNAL = 1011,      /* server error (upstream gone) */
};

/* RSV bits as they appear in struct sw_ws_frame.rsv (byte 0 bits 6..4). */
#define SW_WS_RSV1 0x4u
#define SW_WS_RSV2 0x2u
#define SW_WS_RSV3 0x1u

#define SW_WS_MAX_HEADER 14   /* 2 + 8 (length) + 4 (mask) */
#define SW_WS_MAX_CONTROL 125 /* RFC 6455 5.5: control payload limit */
#define SW_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define SW_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */
#define SW_WS_KEY_LEN 24    /* base64 of 16 random bytes */

/* Control opcodes have the high bit of the 4-bit opcode set. */
static inline bool
sw_ws_is_control(uint8_t opcode)
{
    return (opcode & 0x8) != 0;
}

/* ---- frame headers ----------------------------------------------------- */

/* One decoded frame header. */
struct sw_ws_frame {
    bool fin;             /* FIN bit: last frame of its message */
    uint8_t rsv;          /* RSV1..3 as SW_WS_RSV1|RSV2|RSV3 */
    uint8_t opcode;       /* enum sw_ws_opcode value */
    bool masked;          /* MASK bit */
    uint8_t mask[4];      /* masking key (zeros when !masked) */
    uint64_t payload_len; /* payload bytes that follow the header */
    size_t header_len;    /* header bytes on the wire: 2..14 */
};

/* Whose frames a decoder reads, which fixes the masking rule. */
enum sw_ws_peer {
    SW_WS_PEER_CLIENT = 0, /* from a client: every frame must be masked */
    SW_WS_PEER_SERVER = 1, /* from a server: no frame may be masked */
    SW_WS_PEER_ANY = 2,    /* masking not checked (tools, fuzzing) */
};

enum sw_ws_dec_state {
    SW_WS_DEC_START = 0,   /* between headers: nothing collected */
    SW_WS_DEC_PARTIAL = 1, /* part of a header collected in hdr[] */
    SW_WS_DEC_FAILED = 2,  /* a violation was found: close_code/why set */
};

/* Resumable frame-header decoder. Fields marked "config" are set by
 * sw_ws_decoder_init and may be changed between frames (e.g. rsv_allowed
 * once extensions are known). */
struct sw_ws_decoder {
    enum sw_ws_peer peer;          /* config: masking rule */
    uint8_t rsv_allowed;           /* config: RSV bits negotiated (0 = none) */
    uint64_t max_frame;            /* config: max payload per frame, 0 = none */
    enum sw_ws_dec_state state;    /* private: see the diagram above */
    uint8_t have;                  /* private: header bytes in hdr[] */
    uint8_t hdr[SW_WS_MAX_HEADER]; /* private: header bytes so far (copy) */
    uint16_t close_code;           /* after an error: close code to send */
    const char *why;               /* after an error: static reason, for logs */
};

/* Prepare a decoder. max_frame 0 means no per-frame limit. */
void sw_ws_decoder_init(struct sw_ws_decoder *d, enum sw_ws_peer peer,
                        uint8_t rsv_allowed, uint64_t max_frame);

/*
 * Decode one frame header from in[0..len). Input may be split anywhere:
 * bytes of an incomplete header are copied into the decoder, and the next
 * call continues where this one stopped. Nothing after the header is read.
 *
 * Returns:
 *   >= 0        the header is complete and *out is filled; the value is the
 *               number of bytes of `in` that belonged to the header (less
 *               than out->header_len when earlier calls supplied the rest);
 *               the payload starts at in + value. The decoder is back in
 *               SW_WS_DEC_START, ready for the next header.
 *   SW_AGAIN    header incomplete: all len bytes were consumed into the
 *               decoder (len 0 is allowed)
 *   SW_EPROTO   RFC 6455 violation: reserved opcode, RSV bit not negotiated,
 *               fragmented control frame, control payload > 125, wrong
 *               masking for the peer, 64-bit length with its top bit set;
 *               d->close_code is 1002, d->why names it
 *   SW_ETOOBIG  payload_len > max_frame; d->close_code is 1009
 * Errors are detected as early as the offending byte; the decoder then
 * stays in SW_WS_DEC_FAILED and returns the same status until re-init.
 */
ssize_t sw_ws_frame_decode(struct sw_ws_decoder *d, const uint8_t *in,
                           size_t len, struct sw_ws_frame *out);

/*
 * Encode a frame header (RSV bits 0) into out. mask_or_null: the 4-byte
 * masking key to put in the header (the payload itself is masked by the
 * caller with sw_ws_mask), or NULL for an unmasked frame.
 * Returns the header length, 2..14.
 */
size_t sw_ws_frame_encode(uint8_t out[SW_WS_MAX_HEADER], bool fin,
                          uint8_t opcode, const uint8_t *mask_or_null,
                          uint64_t payload_len);

/* ---- message rules ----------------------------------------------------- */

/* Fragmentation state of one direction (RFC 6455 5.4). */
struct sw_ws_msg_state {
    uint64_t max_message; /* config: max payload per message, 0 = none */
    bool in_message;      /* a TEXT/BINARY started and its FIN not seen */
    uint8_t opcode;       /* TEXT or BINARY: the message the last data
                           * frame belongs to (CONT frames resolved) */
    uint64_t size;        /* payload bytes of that message so far */
    uint64_t messages;    /* data messages completed (FIN seen) */
    uint16_t close_code;  /* after an error: 1002 or 1009 */
    const char *why;      /* after an error: static reason */
};

void sw_ws_msg_init(struct sw_ws_msg_state *m, uint64_t max_message);

/*
 * Account one decoded frame header. Control frames are allowed anywhere
 * between frames and change nothing. For data frames m->opcode tells the
 * message type (also for CONT) and m->in_message is false once the frame
 * with FIN was seen.
 *
 * Returns:
 *   SW_OK       frame allowed
 *   SW_EPROTO   CONT with no message started, or TEXT/BINARY while one is
 *               unfinished; m->close_code 1002
 *   SW_ETOOBIG  the message's payload would pass max_message; 1009
 */
enum sw_status sw_ws_msg_check(struct sw_ws_msg_state *m,
                               const struct sw_ws_frame *f);

/* ---- masking ----------------------------------------------------------- */

/*
 * XOR data[0..len) in place with key, as if data started `offset` bytes
 * into the payload (RFC 6455 5.3: octet i uses key[i % 4]). Masking and
 * unmasking are the same operation; call it piece by piece with the running
 * offset. Picks the fastest implementation the CPU supports.
 */
void sw_ws_mask(uint8_t *data, size_t len, const uint8_t key[4], size_t offset);

enum sw_ws_mask_impl {
    SW_WS_MASK_SCALAR = 0, /* portable, 8 bytes per step */
    SW_WS_MASK_SSE2 = 1,   /* 16 bytes per step (x86-64) */
    SW_WS_MASK_AVX2 = 2,   /* 32 bytes per step (run-time checked) */
    SW_WS_MASK_NIMPL = 3,  /* count */
};

/* True when this CPU (and build) can run the implementation. */
bool sw_ws_mask_impl_available(enum sw_ws_mask_impl impl);

/* "scalar", "sse2", "avx2". */
const char *sw_ws_mask_impl_name(enum sw_ws_mask_impl impl);

/* sw_ws_mask with a given implementation (tests, benchmarks). Returns
 * SW_EINVAL (and touches nothing) if the implementation is unavailable. */
enum sw_status sw_ws_mask_with(enum sw_ws_mask_impl impl, uint8_t *data,
                               size_t len, const uint8_t key[4], size_t offset);

/* ---- UTF-8 ------------------------------------------------------------- */

/* Incremental validator (RFC 3629): rejects overlong forms, surrogates
 * (U+D800..DFFF), code points above U+10FFFF, stray continuation bytes and
 * 0xC0, 0xC1, 0xF5..0xFF. Errors are reported at the first bad byte, so a
 * text message split anywhere fails as early as a whole one would. */
struct sw_ws_utf8 {
    uint32_t state; /* private: DFA state, 0 at a character boundary */
};

void sw_ws_utf8_init(struct sw_ws_utf8 *u);

/* Feed the next piece. Returns SW_OK (valid so far, perhaps in the middle
 * of a character) or SW_EPROTO (invalid; sticky; close 1007). */
enum sw_status sw_ws_utf8_feed(struct sw_ws_utf8 *u, const uint8_t *p,
                               size_t len);

/* End of message. Returns SW_OK, or SW_EPROTO when the text ended inside a
 * character or had failed before. */
enum sw_status sw_ws_utf8_finish(const struct sw_ws_utf8 *u);

/* Whole-buffer check. */
bool sw_ws_utf8_is_valid(const uint8_t *p, size_t len);

/* ---- close frames ------------------------------------------------------ */

/* A decoded close payload. */
struct sw_ws_close {
    uint16_t code;        /* received code, SW_WS_CLOSE_NO_STATUS if none */
    struct sw_str reason; /* borrowed (from the payload), valid UTF-8 */
    uint16_t error_code;  /* after an error: the close code to answer */
    const char *why;      /* after an error: static reason */
};

/* True for codes a peer may send on the wire (RFC 6455 7.4): 1000-1003,
 * 1007-1011, the IANA-registered 1012-1014, and 3000-4999. 1004-1006,
 * 1015-2999 and the rest are invalid. */
bool sw_ws_close_code_is_valid(uint16_t code);

/*
 * Check an (unmasked) close payload of len bytes.
 * Returns:
 *   SW_OK      *out filled (len 0: code 1005, empty reason)
 *   SW_EPROTO  length 1, invalid code (error_code 1002) or reason not valid
 *              UTF-8 (error_code 1007); out->why set
 */
enum sw_status sw_ws_close_decode(const uint8_t *payload, size_t len,
                                  struct sw_ws_close *out);

/*
 * Write a close payload (2-byte code, then reason truncated to fit 125
 * bytes) into out. Returns its length (2..125).
 */
size_t sw_ws_close_encode(uint8_t out[SW_WS_MAX_CONTROL], uint16_t code,
                          const char *reason, size_t reason_len);

/* ---- pre-built frames toward clients (unmasked, static storage) -------- */

/* An empty pong: 0x8A 0x00. */
struct sw_str sw_ws_static_pong(void);

/* A close frame with a 2-byte code (4 bytes: 0x88 0x02 hi lo) for 1000,
 * 1001, 1002, 1003, 1007, 1008, 1009, 1011. Returns {NULL, 0} for any
 * other code. */
struct sw_str sw_ws_static_close(uint16_t code);

/* ---- mask keys and handshake keys (RFC 6455 5.3, 4.1) ------------------ */

#define SW_WS_RNG_BLOCK 4096

/* Per-worker random pool, refilled from OpenSSL RAND_bytes a block at a
 * time so that a mask key costs no syscall. */
struct sw_ws_rng {
    size_t pos;                    /* private: next unused byte */
    uint8_t pool[SW_WS_RNG_BLOCK]; /* private: random bytes (owned) */
};

/* Fill the pool. Returns SW_OK, or SW_ERROR if OpenSSL's RNG fails. */
enum sw_status sw_ws_rng_init(struct sw_ws_rng *r);

/* Wipe the pool (NULL accepted). */
void sw_ws_rng_fini(struct sw_ws_rng *r);

/* n random bytes. Returns SW_OK or SW_ERROR (RNG failure; out untouched). */
enum sw_status sw_ws_rng_bytes(struct sw_ws_rng *r, uint8_t *out, size_t n);

/* A fresh, unpredictable 4-byte masking key. The bytes are never reused.
 * If OpenSSL cannot produce random bytes the process aborts: sending
 * predictable masks is not an option (RFC 6455 10.3). */
void sw_ws_rng_key(struct sw_ws_rng *r, uint8_t key[4]);

/* A client's Sec-WebSocket-Key: 16 random bytes in base64, 24 characters
 * plus a NUL. Aborts like sw_ws_rng_key on RNG failure. */
void sw_ws_handshake_key(struct sw_ws_rng *r, char out[SW_WS_KEY_LEN + 1]);

/* ---- opening handshake (RFC 6455 4.1, 4.2) ----------------------------- */

/*
 * Check that a decoded request head is a valid WebSocket upgrade: method
 * GET, HTTP/1.1 or later, Upgrade has the token "websocket", Connection has
 * "upgrade" (any of several Connection headers), exactly one
 * Sec-WebSocket-Key whose value is base64 of exactly 16 bytes, and
 * Sec-WebSocket-Version 13. Only r->method, version and headers[] are read.
 *
 * Returns:
 *   SW_OK      valid; *key is the Sec-WebSocket-Key value (borrowed from
 *              the request's buffer) for sw_ws_accept_compute
 *   SW_EPROTO  *http_status is 400, or 426 for a version other than 13;
 *              *why is a static reason. http_status/why/key may be NULL.
 */
enum sw_status sw_ws_handshake_check_request(const struct sw_http_request *r,
                                             int *http_status, const char **why,
                                             struct sw_str *key);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), 28 chars plus
 * a NUL written to out. */
void sw_ws_accept_compute(struct sw_str key, char out[SW_WS_ACCEPT_LEN + 1]);

/*
 * Check an upstream's answer to our upgrade request sent with `key`: status
 * 101, Upgrade has "websocket", Connection has "upgrade", exactly one
 * Sec-WebSocket-Accept equal to sw_ws_accept_compute(key).
 * Returns SW_OK or SW_EPROTO with *why (may be NULL) set.
 */
enum sw_status
sw_ws_handshake_check_response(const struct sw_http_response *resp,
                               struct sw_str key, const char **why);

/*
 * RSV bits that the extensions in a set of headers (a 101 response's
 * Sec-WebSocket-Extensions) make legal: SW_WS_RSV1 when permessage-deflate
 * was accepted, else 0. The gateway relays compressed frames untouched and
 * only needs to stop rejecting their RSV1 bit.
 */
uint8_t sw_ws_handshake_rsv(const struct sw_http_header *h, size_t n);

#endif
