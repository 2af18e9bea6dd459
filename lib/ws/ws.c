/*
 * ws.c - RFC 6455 frame headers, message (fragmentation) rules, close
 * payloads and the static frames sent toward clients.
 *
 * Owns nothing and allocates nothing. The decoder copies at most 14 header
 * bytes into its own struct and never keeps a pointer to the input; the
 * close decoder returns a slice of the caller's payload.
 *
 * Frame header layout (RFC 6455 5.2):
 *
 *   byte 0: FIN RSV1 RSV2 RSV3 opcode(4)
 *   byte 1: MASK len7(7)          len7 126 -> 16-bit length follows,
 *   [2 or 8 bytes extended length]     127 -> 64-bit length follows
 *   [4 bytes masking key]         only if MASK
 *
 * Invariants: d->have < 14 between calls; in SW_WS_DEC_PARTIAL, every byte
 * in d->hdr has already passed the checks that apply to it, so a violation
 * is reported as soon as the byte that shows it arrives.
 *
 * Threading: none; every object is owned by its caller.
 */
#include <shockwave/ws.h>

#include "ws_int.h"

/* Opcodes 0, 1, 2, 8, 9, 10 are defined; the rest are reserved. */
#define KNOWN_OPCODES 0x0707u

static ssize_t
fail(struct sw_ws_decoder *d, enum sw_status st, uint16_t code, const char *why)
{
    d->state = SW_WS_DEC_FAILED;
    d->close_code = code;
    d->why = why;
    return st;
}

void
sw_ws_decoder_init(struct sw_ws_decoder *d, enum sw_ws_peer peer,
                   uint8_t rsv_allowed, uint64_t max_frame)
{
    memset(d, 0, sizeof(*d));
    d->peer = peer;
    d->rsv_allowed = rsv_allowed & 0x7;
    d->max_frame = max_frame;
    d->state = SW_WS_DEC_START;
}

/* Checks on byte 0. Returns SW_OK or an error status (decoder failed). */
static ssize_t
check_b0(struct sw_ws_decoder *d, uint8_t b0)
{
    uint8_t op = b0 & 0x0f;
    uint8_t rsv = (b0 >> 4) & 0x7;

    if (SW_UNLIKELY(((KNOWN_OPCODES >> op) & 1) == 0)) {
        return fail(d, SW_EPROTO, SW_WS_CLOSE_PROTOCOL, "reserved opcode");
    }
    /* RFC 6455 5.2: RSV bits MUST be 0 unless an extension defines them. */
    if (SW_UNLIKELY((rsv & ~d->rsv_allowed) != 0)) {
        return fail(d, SW_EPROTO, SW_WS_CLOSE_PROTOCOL,
                    "RSV bit set without a negotiated extension");
    }
    /* RFC 6455 5.5: control frames MUST NOT be fragmented. */
    if (SW_UNLIKELY(sw_ws_is_control(op) && (b0 & 0x80) == 0)) {
        return fail(d, SW_EPROTO, SW_WS_CLOSE_PROTOCOL,
                    "fragmented control frame");
    }
    return SW_OK;
}

/* Checks on byte 1 (byte 0 already passed). */
static ssize_t
check_b1(struct sw_ws_decoder *d, uint8_t b0, uint8_t b1)
{
    bool masked = (b1 & 0x80) != 0;

    /* RFC 6455 5.5: control frames carry at most 125 bytes, so they never
     * use an extended length. */
    if (SW_UNLIKELY(sw_ws_is_control(b0 & 0x0f) &&
                    (b1 & 0x7f) > SW_WS_MAX_CONTROL)) {
        return fail(d, SW_EPROTO, SW_WS_CLOSE_PROTOCOL,
                    "control frame payload over 125 bytes");
    }
    /* RFC 6455 5.1: a server MUST close on an unmasked client frame, a
     * client on a masked server frame. */
    if (SW_UNLIKELY(d->peer == SW_WS_PEER_CLIENT && !masked)) {
        return fail(d, SW_EPROTO, SW_WS_CLOSE_PROTOCOL,
                    "unmasked frame from a client");
    }
    if (SW_UNLIKELY(d->peer == SW_WS_PEER_SERVER && masked)) {
        return fail(d, SW_EPROTO, SW_WS_CLOSE_PROTOCOL,
                    "masked frame from a server");
    }
    return SW_OK;
}

/* Header length from byte 1: 2, plus 0/2/8 length bytes, plus 4 if masked. */
static inline size_t
header_len(uint8_t b1)
{
    uint8_t len7 = b1 & 0x7f;
    size_t ext = len7 < 126 ? 0 : len7 == 126 ? 2 : 8;

    return 2 + ext + ((size_t)(b1 >> 7) << 2);
}

/* One branch-light test of every rule bytes 0 and 1 can break; on false
 * the detailed checks (check_b0, check_b1) name the violation. */
static inline bool
quick_ok(const struct sw_ws_decoder *d, uint8_t b0, uint8_t b1)
{
    unsigned op = b0 & 0x0fu;
    unsigned masked = b1 >> 7;
    unsigned bad = ((KNOWN_OPCODES >> op) & 1u) ^ 1u;

    bad |= ((unsigned)b0 >> 4) & 0x7u & ~(unsigned)d->rsv_allowed;
    bad |= (op >> 3) & ((((unsigned)b0 >> 7) ^ 1u) | ((b1 & 0x7fu) > 125));
    bad |= (d->peer != SW_WS_PEER_ANY) &
           (masked != (d->peer == SW_WS_PEER_CLIENT));
    return bad == 0;
}

static inline uint64_t
load_be64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Fill *out from a complete header at h (bytes 0 and 1 already checked).
 * Returns SW_OK or an error status. */
static inline ssize_t
parse_full(struct sw_ws_decoder *d, const uint8_t *h, size_t hl,
           struct sw_ws_frame *out)
{
    uint8_t b0 = h[0];
    uint8_t b1 = h[1];
    uint8_t len7 = b1 & 0x7f;
    uint64_t plen;
    uint32_t mask = 0;

    if (len7 < 126) {
        plen = len7;
    } else if (len7 == 126) {
        plen = ((uint64_t)h[2] << 8) | h[3];
    } else {
        plen = load_be64(h + 2);
        /* RFC 6455 5.2: the most significant bit MUST be 0. */
        if (SW_UNLIKELY(plen >> 63)) {
            return fail(d, SW_EPROTO, SW_WS_CLOSE_PROTOCOL,
                        "64-bit payload length with its top bit set");
        }
    }
    /* Non-minimal encodings are accepted on purpose: see ws.h. */
    if (SW_UNLIKELY(d->max_frame != 0 && plen > d->max_frame)) {
        return fail(d, SW_ETOOBIG, SW_WS_CLOSE_TOO_BIG,
                    "frame payload over the configured limit");
    }
    if (b1 & 0x80) {
        /* The key is always the header's last 4 bytes. */
        memcpy(&mask, h + hl - 4, 4);
    }
    out->fin = (b0 & 0x80) != 0;
    out->rsv = (b0 >> 4) & 0x7;
    out->opcode = b0 & 0x0f;
    out->masked = (b1 & 0x80) != 0;
    memcpy(out->mask, &mask, 4);
    out->payload_len = plen;
    out->header_len = hl;
    return SW_OK;
}

ssize_t
sw_ws_frame_decode(struct sw_ws_decoder *d, const uint8_t *in, size_t len,
                   struct sw_ws_frame *out)
{
    ssize_t rc;
    size_t used = 0;
    size_t need;

    /* Fast path: a whole header at the front of in, nothing buffered. */
    if (SW_LIKELY(d->state == SW_WS_DEC_START && len >= 2)) {
        uint8_t b0 = in[0];
        uint8_t b1 = in[1];

        if (SW_UNLIKELY(!quick_ok(d, b0, b1))) {
            rc = check_b0(d, b0);
            if (rc == SW_OK) {
                rc = check_b1(d, b0, b1);
            }
            /* quick_ok and the detailed checks state the same rules. */
            SW_ASSERT(rc != SW_OK);
            return rc;
        }
        need = header_len(b1);
        if (SW_LIKELY(len >= need)) {
            rc = parse_full(d, in, need, out);
            return rc == SW_OK ? (ssize_t)need : rc;
        }
        memcpy(d->hdr, in, len);
        d->have = (uint8_t)len;
        d->state = SW_WS_DEC_PARTIAL;
        return SW_AGAIN;
    }
    if (SW_UNLIKELY(d->state == SW_WS_DEC_FAILED)) {
        return d->close_code == SW_WS_CLOSE_TOO_BIG ? SW_ETOOBIG : SW_EPROTO;
    }

    /* Slow path: collect byte by byte, checking each as it arrives. */
    while (used < len) {
        uint8_t byte = in[used++];

        d->hdr[d->have++] = byte;
        d->state = SW_WS_DEC_PARTIAL;
        if (d->have == 1) {
            rc = check_b0(d, byte);
            if (rc != SW_OK) {
                return rc;
            }
            continue;
        }
        if (d->have == 2) {
            rc = check_b1(d, d->hdr[0], byte);
            if (rc != SW_OK) {
                return rc;
            }
        }
        need = header_len(d->hdr[1]);
        if (d->have == need) {
            rc = parse_full(d, d->hdr, need, out);
            if (rc != SW_OK) {
                return rc;
            }
            d->have = 0;
            d->state = SW_WS_DEC_START;
            return (ssize_t)used;
        }
    }
    return SW_AGAIN;
}

size_t
sw_ws_frame_encode(uint8_t out[SW_WS_MAX_HEADER], bool fin, uint8_t opcode,
                   const uint8_t *mask_or_null, uint64_t payload_len)
{
    size_t n = 2;
    uint8_t mbit = mask_or_null != NULL ? 0x80 : 0;

    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (payload_len < 126) {
        out[1] = (uint8_t)(mbit | payload_len);
    } else if (payload_len <= 0xffff) {
        out[1] = mbit | 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        n = 4;
    } else {
        out[1] = mbit | 127;
        for (int i = 0; i < 8; i++) {
            out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
        }
        n = 10;
    }
    if (mask_or_null != NULL) {
        memcpy(out + n, mask_or_null, 4);
        n += 4;
    }
    return n;
}

void
sw_ws_msg_init(struct sw_ws_msg_state *m, uint64_t max_message)
{
    memset(m, 0, sizeof(*m));
    m->max_message = max_message;
}

enum sw_status
sw_ws_msg_check(struct sw_ws_msg_state *m, const struct sw_ws_frame *f)
{
    /* RFC 6455 5.4: control frames MAY be injected between fragments. */
    if (sw_ws_is_control(f->opcode)) {
        return SW_OK;
    }
    if (f->opcode == SW_WS_OP_CONT) {
        if (SW_UNLIKELY(!m->in_message)) {
            m->close_code = SW_WS_CLOSE_PROTOCOL;
            m->why = "continuation frame without a message";
            return SW_EPROTO;
        }
    } else {
        /* RFC 6455 5.4: fragments of one message are not interleaved. */
        if (SW_UNLIKELY(m->in_message)) {
            m->close_code = SW_WS_CLOSE_PROTOCOL;
            m->why = "new data message inside a fragmented one";
            return SW_EPROTO;
        }
        m->in_message = true;
        m->opcode = f->opcode;
        m->size = 0;
    }
    if (SW_UNLIKELY(m->max_message != 0 &&
                    f->payload_len > m->max_message - m->size)) {
        m->close_code = SW_WS_CLOSE_TOO_BIG;
        m->why = "message over the configured limit";
        return SW_ETOOBIG;
    }
    m->size += f->payload_len;
    if (f->fin) {
        m->in_message = false;
        m->messages++;
    }
    return SW_OK;
}

bool
sw_ws_close_code_is_valid(uint16_t code)
{
    /* RFC 6455 7.4.1/7.4.2: 1004-1006 and 1015 are reserved or local
     * only; 1012-1014 are registered with IANA since (service restart, try
     * again later, bad gateway) and peers send them, so a transparent
     * gateway relays them; the rest of 1016-2999 is unassigned; 3000-4999
     * are for libraries and applications. */
    if (code >= 1000 && code <= 1003) {
        return true;
    }
    if (code >= 1007 && code <= 1014) {
        return true;
    }
    return code >= 3000 && code <= 4999;
}

enum sw_status
sw_ws_close_decode(const uint8_t *payload, size_t len, struct sw_ws_close *out)
{
    out->code = SW_WS_CLOSE_NO_STATUS;
    out->reason.p = NULL;
    out->reason.len = 0;
    out->error_code = 0;
    out->why = NULL;

    if (len == 0) {
        return SW_OK;
    }
    /* RFC 6455 5.5.1: a body starts with a 2-byte code. */
    if (len == 1) {
        out->error_code = SW_WS_CLOSE_PROTOCOL;
        out->why = "close payload of 1 byte";
        return SW_EPROTO;
    }
    if (len > SW_WS_MAX_CONTROL) {
        out->error_code = SW_WS_CLOSE_PROTOCOL;
        out->why = "close payload over 125 bytes";
        return SW_EPROTO;
    }
    out->code = (uint16_t)((payload[0] << 8) | payload[1]);
    if (!sw_ws_close_code_is_valid(out->code)) {
        out->error_code = SW_WS_CLOSE_PROTOCOL;
        out->why = "invalid close code";
        return SW_EPROTO;
    }
    /* RFC 6455 5.5.1: the reason is UTF-8 text. */
    if (!sw_ws_utf8_is_valid(payload + 2, len - 2)) {
        out->error_code = SW_WS_CLOSE_INVALID_DATA;
        out->why = "close reason is not valid UTF-8";
        return SW_EPROTO;
    }
    out->reason.p = (const char *)payload + 2;
    out->reason.len = len - 2;
    return SW_OK;
}

size_t
sw_ws_close_encode(uint8_t out[SW_WS_MAX_CONTROL], uint16_t code,
                   const char *reason, size_t reason_len)
{
    size_t n = SW_MIN(reason_len, (size_t)SW_WS_MAX_CONTROL - 2);

    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    /* Cutting the reason must not split a UTF-8 sequence: back off over
     * continuation bytes so the cut lands on a character boundary. */
    if (n < reason_len) {
        while (n > 0 && ((uint8_t)reason[n] & 0xc0) == 0x80) {
            n--;
        }
    }
    if (n > 0) {
        memcpy(out + 2, reason, n);
    }
    return n + 2;
}

/* Static frames toward clients: unmasked, so identical for everyone. */
static const uint8_t pong_empty[2] = {0x8a, 0x00};

#define CLOSE_FRAME(code)                                                      \
    {                                                                          \
        0x88, 0x02, (code) >> 8, (code)&0xff                                   \
    }

static const struct {
    uint16_t code; /* close code */
    uint8_t b[4];  /* the whole frame */
} close_frames[] = {
    {1000, CLOSE_FRAME(1000)}, {1001, CLOSE_FRAME(1001)},
    {1002, CLOSE_FRAME(1002)}, {1003, CLOSE_FRAME(1003)},
    {1007, CLOSE_FRAME(1007)}, {1008, CLOSE_FRAME(1008)},
    {1009, CLOSE_FRAME(1009)}, {1011, CLOSE_FRAME(1011)},
};

struct sw_str
sw_ws_static_pong(void)
{
    struct sw_str s = {(const char *)pong_empty, sizeof(pong_empty)};
    return s;
}

struct sw_str
sw_ws_static_close(uint16_t code)
{
    struct sw_str s = {NULL, 0};

    for (size_t i = 0; i < SW_NELEMS(close_frames); i++) {
        if (close_frames[i].code == code) {
            s.p = (const char *)close_frames[i].b;
            s.len = sizeof(close_frames[i].b);
            break;
        }
    }
    return s;
}
