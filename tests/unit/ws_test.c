/*
 * ws_test.c - Check suite for lib/ws's frame codec: frame headers (RFC 6455
 * 5.7 vectors and every violation), encode/decode round trips,
 * fragmentation rules and every masking implementation against a byte-wise
 * reference. UTF-8, close payloads and static frames are in
 * ws_payload_test.c; the random pool and the handshake in
 * ws_handshake_test.c.
 *
 * Every codec vector is fed whole, one byte at a time and split at seeded
 * random points, each piece copied flush against a PROT_NONE page so that a
 * read past the end of a piece crashes the test.
 */
#include <check.h>

#include <shockwave/ws.h>

#include "support.h"

/* ---- stream driver ----------------------------------------------------- */

#define MAX_FRAMES 16
#define MAX_PAYLOAD 70000

/* What decoding a byte stream produced. */
struct run {
    int status;                       /* SW_OK or the first error */
    uint16_t close_code;              /* decoder's close code on error */
    size_t nframes;                   /* complete headers */
    struct sw_ws_frame f[MAX_FRAMES]; /* those headers */
    size_t payload_len;               /* bytes in payload */
    uint8_t payload[MAX_PAYLOAD];     /* payloads, unmasked, concatenated */
    bool mid_payload;                 /* stream ended inside a payload */
    bool mid_header;                  /* stream ended inside a header */
};

enum split_mode {
    SPLIT_WHOLE,  /* one piece */
    SPLIT_BYTES,  /* one byte per piece */
    SPLIT_RANDOM, /* random piece sizes */
};

/* Decode the stream s[0..len) cut into pieces by mode; every piece is a
 * guard-page copy. Payloads are unmasked in pieces with the running offset
 * (which exercises sw_ws_mask's offset too). */
static void
run_stream(struct run *res, const uint8_t *s, size_t len, enum sw_ws_peer peer,
           uint8_t rsv, uint64_t max_frame, enum split_mode mode,
           struct sw_test_rng *rng)
{
    struct sw_ws_decoder d;
    size_t pos = 0;
    bool in_payload = false;
    uint64_t remaining = 0;
    uint64_t poff = 0;
    bool header_started = false;

    memset(res, 0, sizeof(*res));
    sw_ws_decoder_init(&d, peer, rsv, max_frame);
    while (pos < len && res->status == SW_OK) {
        size_t n = len - pos;
        if (mode == SPLIT_BYTES) {
            n = 1;
        } else if (mode == SPLIT_RANDOM) {
            n = 1 + sw_test_rng_below(rng, SW_MIN(n, (size_t)20));
        }
        uint8_t *piece = sw_test_guard_copy(s + pos, n);
        size_t off = 0;
        while (off < n) {
            if (!in_payload) {
                struct sw_ws_frame f;
                memset(&f, 0xa5, sizeof(f));
                ssize_t rc = sw_ws_frame_decode(&d, piece + off, n - off, &f);
                if (rc == SW_AGAIN) {
                    ck_assert_int_eq(d.state, SW_WS_DEC_PARTIAL);
                    header_started = true;
                    off = n;
                    break;
                }
                if (rc < 0) {
                    res->status = (int)rc;
                    res->close_code = d.close_code;
                    ck_assert_ptr_nonnull(d.why);
                    ck_assert_int_eq(d.state, SW_WS_DEC_FAILED);
                    /* Sticky: the same answer until re-init. */
                    ck_assert_int_eq(sw_ws_frame_decode(&d, piece, n, &f), rc);
                    break;
                }
                ck_assert_int_le((size_t)rc, n - off);
                ck_assert_int_le((size_t)rc, f.header_len);
                ck_assert_int_eq(d.state, SW_WS_DEC_START);
                ck_assert_int_lt(res->nframes, MAX_FRAMES);
                res->f[res->nframes++] = f;
                header_started = false;
                off += (size_t)rc;
                remaining = f.payload_len;
                poff = 0;
                in_payload = remaining > 0;
            } else {
                size_t take = (size_t)SW_MIN(remaining, (uint64_t)(n - off));
                struct sw_ws_frame *f = &res->f[res->nframes - 1];
                ck_assert_int_le(res->payload_len + take, MAX_PAYLOAD);
                memcpy(res->payload + res->payload_len, piece + off, take);
                if (f->masked) {
                    sw_ws_mask(res->payload + res->payload_len, take, f->mask,
                               (size_t)poff);
                }
                res->payload_len += take;
                poff += take;
                remaining -= take;
                off += take;
                in_payload = remaining > 0;
            }
        }
        sw_test_guard_free(piece, n);
        pos += n;
    }
    res->mid_payload = in_payload;
    res->mid_header = header_started;
}

static bool
frames_equal(const struct sw_ws_frame *a, const struct sw_ws_frame *b)
{
    return a->fin == b->fin && a->rsv == b->rsv && a->opcode == b->opcode &&
           a->masked == b->masked && memcmp(a->mask, b->mask, 4) == 0 &&
           a->payload_len == b->payload_len && a->header_len == b->header_len;
}

/* Run every split mode and check they agree with the whole-buffer run. */
static void
run_all_modes(struct run *whole, const uint8_t *s, size_t len,
              enum sw_ws_peer peer, uint8_t rsv, uint64_t max_frame)
{
    static struct run other;
    struct sw_test_rng rng;

    sw_test_rng_init(&rng, 0x5eed0000u + len);
    run_stream(whole, s, len, peer, rsv, max_frame, SPLIT_WHOLE, NULL);
    for (int k = 0; k < 60; k++) {
        enum split_mode mode = k == 0 ? SPLIT_BYTES : SPLIT_RANDOM;
        run_stream(&other, s, len, peer, rsv, max_frame, mode, &rng);
        ck_assert_int_eq(other.status, whole->status);
        ck_assert_int_eq(other.close_code, whole->close_code);
        ck_assert_uint_eq(other.nframes, whole->nframes);
        for (size_t i = 0; i < whole->nframes; i++) {
            ck_assert(frames_equal(&other.f[i], &whole->f[i]));
        }
        ck_assert_uint_eq(other.payload_len, whole->payload_len);
        ck_assert(memcmp(other.payload, whole->payload, whole->payload_len) ==
                  0);
    }
}

/* ---- frame vectors ----------------------------------------------------- */

struct frame_vec {
    const char *name;     /* for failure messages */
    const char *bytes;    /* the stream */
    size_t len;           /* its length */
    enum sw_ws_peer peer; /* decoder role */
    uint8_t rsv;          /* RSV bits allowed */
    uint64_t max_frame;   /* 0 = none */
    int status;           /* SW_OK or expected error */
    uint16_t close_code;  /* with an error */
    size_t nframes;       /* complete frames expected */
    uint8_t opcode;       /* first frame's opcode */
    bool fin;             /* first frame's FIN */
    uint64_t payload_len; /* first frame's payload length */
    size_t header_len;    /* first frame's header length */
    const char *payload;  /* all payloads unmasked, or NULL */
};

#define V(s) s, sizeof(s) - 1
#define M4 "\x37\xfa\x21\x3d"

static const struct frame_vec frame_vecs[] = {
    /* RFC 6455 5.7 examples. */
    {"rfc unmasked text", V("\x81\x05Hello"), SW_WS_PEER_SERVER, 0, 0, SW_OK, 0,
     1, SW_WS_OP_TEXT, true, 5, 2, "Hello"},
    {"rfc masked text", V("\x81\x85" M4 "\x7f\x9f\x4d\x51\x58"),
     SW_WS_PEER_CLIENT, 0, 0, SW_OK, 0, 1, SW_WS_OP_TEXT, true, 5, 6, "Hello"},
    {"rfc fragmented", V("\x01\x03Hel\x80\x02lo"), SW_WS_PEER_SERVER, 0, 0,
     SW_OK, 0, 2, SW_WS_OP_TEXT, false, 3, 2, "Hello"},
    {"rfc ping", V("\x89\x05Hello"), SW_WS_PEER_SERVER, 0, 0, SW_OK, 0, 1,
     SW_WS_OP_PING, true, 5, 2, "Hello"},
    {"rfc masked pong", V("\x8a\x85" M4 "\x7f\x9f\x4d\x51\x58"),
     SW_WS_PEER_CLIENT, 0, 0, SW_OK, 0, 1, SW_WS_OP_PONG, true, 5, 6, "Hello"},
    {"rfc 256 binary header", V("\x82\x7e\x01\x00"), SW_WS_PEER_SERVER, 0, 0,
     SW_OK, 0, 1, SW_WS_OP_BINARY, true, 256, 4, NULL},
    {"rfc 64KiB binary header", V("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
     SW_WS_PEER_SERVER, 0, 0, SW_OK, 0, 1, SW_WS_OP_BINARY, true, 65536, 10,
     NULL},
    /* More. */
    {"empty close", V("\x88\x00"), SW_WS_PEER_SERVER, 0, 0, SW_OK, 0, 1,
     SW_WS_OP_CLOSE, true, 0, 2, ""},
    {"masked empty binary", V("\x82\x80" M4), SW_WS_PEER_CLIENT, 0, 0, SW_OK, 0,
     1, SW_WS_OP_BINARY, true, 0, 6, ""},
    {"ping between fragments",
     V("\x01\x01H\x89\x01!\x00\x01"
       "e\x80\x01y"),
     SW_WS_PEER_SERVER, 0, 0, SW_OK, 0, 4, SW_WS_OP_TEXT, false, 1, 2, "H!ey"},
    {"non-minimal 16-bit length accepted",
     V("\x82\x7e\x00\x03"
       "abc"),
     SW_WS_PEER_SERVER, 0, 0, SW_OK, 0, 1, SW_WS_OP_BINARY, true, 3, 4, "abc"},
    {"non-minimal 64-bit length accepted",
     V("\x82\xff\x00\x00\x00\x00\x00\x00\x00\x02" M4 "\x56\x93"),
     SW_WS_PEER_CLIENT, 0, 0, SW_OK, 0, 1, SW_WS_OP_BINARY, true, 2, 14, "ai"},
    {"control of exactly 125", V("\x89\x7d"), SW_WS_PEER_SERVER, 0, 0, SW_OK, 0,
     1, SW_WS_OP_PING, true, 125, 2, NULL},
    {"RSV1 with extension", V("\xc1\x01x"), SW_WS_PEER_SERVER, SW_WS_RSV1, 0,
     SW_OK, 0, 1, SW_WS_OP_TEXT, true, 1, 2, "x"},
    {"any peer takes masked", V("\x82\x81" M4 "\x00"), SW_WS_PEER_ANY, 0, 0,
     SW_OK, 0, 1, SW_WS_OP_BINARY, true, 1, 6, "\x37"},
    {"any peer takes unmasked", V("\x82\x01z"), SW_WS_PEER_ANY, 0, 0, SW_OK, 0,
     1, SW_WS_OP_BINARY, true, 1, 2, "z"},
    {"frame at max",
     V("\x82\x04"
       "abcd"),
     SW_WS_PEER_SERVER, 0, 4, SW_OK, 0, 1, SW_WS_OP_BINARY, true, 4, 2, "abcd"},
    /* Violations. */
    {"reserved opcode 3", V("\x83\x00"), SW_WS_PEER_SERVER, 0, 0, SW_EPROTO,
     1002, 0, 0, 0, 0, 0, NULL},
    {"reserved opcode 7", V("\x87\x00"), SW_WS_PEER_SERVER, 0, 0, SW_EPROTO,
     1002, 0, 0, 0, 0, 0, NULL},
    {"reserved opcode B", V("\x8b\x00"), SW_WS_PEER_SERVER, 0, 0, SW_EPROTO,
     1002, 0, 0, 0, 0, 0, NULL},
    {"reserved opcode F", V("\x8f\x80" M4), SW_WS_PEER_CLIENT, 0, 0, SW_EPROTO,
     1002, 0, 0, 0, 0, 0, NULL},
    {"reserved opcode after a good frame", V("\x82\x01z\x84\x00"),
     SW_WS_PEER_SERVER, 0, 0, SW_EPROTO, 1002, 1, SW_WS_OP_BINARY, true, 1, 2,
     "z"},
    {"RSV1 without extension", V("\xc1\x00"), SW_WS_PEER_SERVER, 0, 0,
     SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"RSV2 without extension", V("\xa1\x00"), SW_WS_PEER_SERVER, SW_WS_RSV1, 0,
     SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"RSV3 without extension", V("\x91\x00"), SW_WS_PEER_SERVER, 0, 0,
     SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"fragmented ping", V("\x09\x00"), SW_WS_PEER_SERVER, 0, 0, SW_EPROTO, 1002,
     0, 0, 0, 0, 0, NULL},
    {"fragmented close", V("\x08\x80" M4), SW_WS_PEER_CLIENT, 0, 0, SW_EPROTO,
     1002, 0, 0, 0, 0, 0, NULL},
    {"control over 125 (126 form)", V("\x89\x7e\x00\x7e"), SW_WS_PEER_SERVER, 0,
     0, SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"control with 16-bit length of 5", V("\x8a\x7e\x00\x05"),
     SW_WS_PEER_SERVER, 0, 0, SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"unmasked client frame", V("\x81\x05Hello"), SW_WS_PEER_CLIENT, 0, 0,
     SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"masked server frame", V("\x81\x85" M4 "\x7f\x9f\x4d\x51\x58"),
     SW_WS_PEER_SERVER, 0, 0, SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"64-bit length top bit", V("\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00" M4),
     SW_WS_PEER_CLIENT, 0, 0, SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"too big",
     V("\x82\x05"
       "abcde"),
     SW_WS_PEER_SERVER, 0, 4, SW_ETOOBIG, 1009, 0, 0, 0, 0, 0, NULL},
    {"too big 64-bit", V("\x82\x7f\x00\x00\x00\x01\x00\x00\x00\x00"),
     SW_WS_PEER_SERVER, 0, 1u << 20, SW_ETOOBIG, 1009, 0, 0, 0, 0, 0, NULL},
};

START_TEST(test_frame_vectors)
{
    static struct run r;
    const struct frame_vec *v = &frame_vecs[_i];

    run_all_modes(&r, (const uint8_t *)v->bytes, v->len, v->peer, v->rsv,
                  v->max_frame);
    ck_assert_msg(r.status == v->status, "%s: status %s", v->name,
                  sw_strerror(r.status));
    if (v->status != SW_OK) {
        ck_assert_msg(r.close_code == v->close_code, "%s: code %u", v->name,
                      r.close_code);
    }
    ck_assert_msg(r.nframes == v->nframes, "%s: %zu frames", v->name,
                  r.nframes);
    if (v->nframes > 0) {
        ck_assert_msg(r.f[0].opcode == v->opcode, "%s: opcode", v->name);
        ck_assert_msg(r.f[0].fin == v->fin, "%s: fin", v->name);
        ck_assert_msg(r.f[0].payload_len == v->payload_len, "%s: len", v->name);
        ck_assert_msg(r.f[0].header_len == v->header_len, "%s: hlen", v->name);
        ck_assert_int_eq(r.f[0].masked,
                         v->header_len >= 6 && (v->bytes[1] & 0x80) != 0);
    }
    if (v->payload != NULL) {
        ck_assert_msg(r.payload_len == strlen(v->payload) &&
                          memcmp(r.payload, v->payload, r.payload_len) == 0,
                      "%s: payload", v->name);
    }
}
END_TEST

/* The RFC's masked "Hello": the key is reported and the rsv bits zero. */
START_TEST(test_frame_fields)
{
    static const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct sw_ws_decoder d;
    struct sw_ws_frame f;
    uint8_t *g = sw_test_guard_copy(hello, 6);

    sw_ws_decoder_init(&d, SW_WS_PEER_CLIENT, 0, 0);
    ck_assert_int_eq(sw_ws_frame_decode(&d, g, 6, &f), 6);
    ck_assert(f.masked);
    ck_assert(memcmp(f.mask, hello + 2, 4) == 0);
    ck_assert_uint_eq(f.rsv, 0);
    sw_test_guard_free(g, 6);

    /* len 0 with nothing collected asks for more. */
    ck_assert_int_eq(sw_ws_frame_decode(&d, hello, 0, &f), SW_AGAIN);
    ck_assert_int_eq(d.state, SW_WS_DEC_START);

    /* RSV1 reported when allowed; also RSV1|2|3 all allowed. */
    static const uint8_t rsv[] = {0xf2, 0x00};
    sw_ws_decoder_init(&d, SW_WS_PEER_SERVER,
                       SW_WS_RSV1 | SW_WS_RSV2 | SW_WS_RSV3, 0);
    ck_assert_int_eq(sw_ws_frame_decode(&d, rsv, 2, &f), 2);
    ck_assert_uint_eq(f.rsv, 7);

    /* Errors show up at the byte that reveals them: a reserved opcode
     * after a single byte, without waiting for the rest. */
    static const uint8_t bad = 0x85;
    sw_ws_decoder_init(&d, SW_WS_PEER_SERVER, 0, 0);
    ck_assert_int_eq(sw_ws_frame_decode(&d, &bad, 1, &f), SW_EPROTO);
    ck_assert_uint_eq(d.close_code, SW_WS_CLOSE_PROTOCOL);

    /* Re-init clears the failure. */
    sw_ws_decoder_init(&d, SW_WS_PEER_SERVER, 0, 0);
    ck_assert_int_eq(sw_ws_frame_decode(&d, rsv + 1, 1, &f), SW_AGAIN);
}
END_TEST

/* ---- encode/decode round trips ----------------------------------------- */

START_TEST(test_round_trip)
{
    static const uint64_t lens[] = {
        0,     1,     125,      126,        127,
        65535, 65536, 1u << 20, 1ull << 32, (1ull << 63) - 1};
    static const uint8_t ops[] = {SW_WS_OP_CONT,   SW_WS_OP_TEXT,
                                  SW_WS_OP_BINARY, SW_WS_OP_CLOSE,
                                  SW_WS_OP_PING,   SW_WS_OP_PONG};
    static const uint8_t key[4] = {1, 2, 0xfe, 0xff};

    for (size_t li = 0; li < SW_NELEMS(lens); li++) {
        for (size_t oi = 0; oi < SW_NELEMS(ops); oi++) {
            for (int masked = 0; masked < 2; masked++) {
                for (int fin = 0; fin < 2; fin++) {
                    uint8_t h[SW_WS_MAX_HEADER];
                    uint64_t len = lens[li];
                    bool control = sw_ws_is_control(ops[oi]);
                    size_t n = sw_ws_frame_encode(h, fin, ops[oi],
                                                  masked ? key : NULL, len);
                    size_t want = 2 +
                                  (len < 126     ? 0
                                   : len < 65536 ? 2
                                                 : 8) +
                                  (masked ? 4 : 0);
                    ck_assert_uint_eq(n, want);

                    struct sw_ws_decoder d;
                    struct sw_ws_frame f;
                    sw_ws_decoder_init(
                        &d, masked ? SW_WS_PEER_CLIENT : SW_WS_PEER_SERVER, 0,
                        0);
                    uint8_t *g = sw_test_guard_copy(h, n);
                    ssize_t rc = sw_ws_frame_decode(&d, g, n, &f);
                    sw_test_guard_free(g, n);
                    if (control && (!fin || len > 125)) {
                        ck_assert_int_eq(rc, SW_EPROTO);
                        continue;
                    }
                    ck_assert_int_eq(rc, (ssize_t)n);
                    ck_assert_int_eq(f.fin, fin);
                    ck_assert_uint_eq(f.opcode, ops[oi]);
                    ck_assert_uint_eq(f.payload_len, len);
                    ck_assert_uint_eq(f.header_len, n);
                    ck_assert_int_eq(f.masked, masked);
                    if (masked) {
                        ck_assert(memcmp(f.mask, key, 4) == 0);
                    }
                }
            }
        }
    }
}
END_TEST

/* Many frames back to back in one buffer, split at random points. */
START_TEST(test_stream_of_frames)
{
    static uint8_t s[4096];
    static uint8_t expect[4096];
    static struct run r;
    struct sw_test_rng rng;
    size_t len = 0;
    size_t elen = 0;

    sw_test_rng_init(&rng, 42);
    for (int i = 0; i < MAX_FRAMES; i++) {
        uint8_t key[4];
        size_t plen = sw_test_rng_below(&rng, 200);
        for (int j = 0; j < 4; j++) {
            key[j] = (uint8_t)sw_test_rng_next(&rng);
        }
        len += sw_ws_frame_encode(s + len, true, SW_WS_OP_BINARY, key, plen);
        for (size_t j = 0; j < plen; j++) {
            expect[elen + j] = (uint8_t)sw_test_rng_next(&rng);
        }
        memcpy(s + len, expect + elen, plen);
        sw_ws_mask(s + len, plen, key, 0);
        len += plen;
        elen += plen;
    }
    run_all_modes(&r, s, len, SW_WS_PEER_CLIENT, 0, 0);
    ck_assert_int_eq(r.status, SW_OK);
    ck_assert_uint_eq(r.nframes, MAX_FRAMES);
    ck_assert_uint_eq(r.payload_len, elen);
    ck_assert(memcmp(r.payload, expect, elen) == 0);
    ck_assert(!r.mid_header && !r.mid_payload);
}
END_TEST

/* ---- fragmentation state machine --------------------------------------- */

struct msg_step {
    uint8_t opcode; /* frame opcode */
    bool fin;       /* FIN */
    uint64_t len;   /* payload length */
    int status;     /* expected sw_ws_msg_check result */
};

struct msg_vec {
    const char *name;         /* for messages */
    uint64_t max_message;     /* limit */
    size_t nsteps;            /* used entries */
    struct msg_step steps[6]; /* frames in order */
};

#define T SW_WS_OP_TEXT
#define B SW_WS_OP_BINARY
#define C SW_WS_OP_CONT
#define P SW_WS_OP_PING
#define X SW_WS_OP_CLOSE

static const struct msg_vec msg_vecs[] = {
    {"single", 0, 2, {{T, 1, 5, SW_OK}, {B, 1, 0, SW_OK}}},
    {"fragments", 0, 3, {{T, 0, 5, SW_OK}, {C, 0, 5, SW_OK}, {C, 1, 5, SW_OK}}},
    {"control inside",
     0,
     4,
     {{B, 0, 1, SW_OK}, {P, 1, 3, SW_OK}, {X, 1, 2, SW_OK}, {C, 1, 1, SW_OK}}},
    {"cont first", 0, 1, {{C, 1, 1, SW_EPROTO}}},
    {"cont after finished", 0, 2, {{T, 1, 1, SW_OK}, {C, 1, 1, SW_EPROTO}}},
    {"text inside text", 0, 2, {{T, 0, 1, SW_OK}, {T, 1, 1, SW_EPROTO}}},
    {"binary inside text",
     0,
     3,
     {{T, 0, 1, SW_OK}, {P, 1, 0, SW_OK}, {B, 0, 1, SW_EPROTO}}},
    {"at the limit",
     10,
     3,
     {{T, 0, 4, SW_OK}, {C, 0, 4, SW_OK}, {C, 1, 2, SW_OK}}},
    {"over the limit",
     10,
     3,
     {{T, 0, 4, SW_OK}, {C, 0, 4, SW_OK}, {C, 1, 3, SW_ETOOBIG}}},
    {"limit per message",
     10,
     3,
     {{T, 1, 10, SW_OK}, {B, 0, 6, SW_OK}, {C, 1, 4, SW_OK}}},
    {"huge single", 10, 1, {{B, 1, UINT64_MAX >> 1, SW_ETOOBIG}}},
    {"control not counted",
     3,
     3,
     {{B, 0, 3, SW_OK}, {P, 1, 100, SW_OK}, {C, 1, 0, SW_OK}}},
};

#undef T
#undef B
#undef C
#undef P
#undef X

START_TEST(test_msg_state)
{
    const struct msg_vec *v = &msg_vecs[_i];
    struct sw_ws_msg_state m;
    uint64_t data_frames_done = 0;

    sw_ws_msg_init(&m, v->max_message);
    for (size_t i = 0; i < v->nsteps; i++) {
        const struct msg_step *s = &v->steps[i];
        struct sw_ws_frame f = {
            .fin = s->fin, .opcode = s->opcode, .payload_len = s->len};
        int rc = sw_ws_msg_check(&m, &f);
        ck_assert_msg(rc == s->status, "%s step %zu: %s", v->name, i,
                      sw_strerror(rc));
        if (rc == SW_EPROTO) {
            ck_assert_uint_eq(m.close_code, SW_WS_CLOSE_PROTOCOL);
            ck_assert_ptr_nonnull(m.why);
        } else if (rc == SW_ETOOBIG) {
            ck_assert_uint_eq(m.close_code, SW_WS_CLOSE_TOO_BIG);
        } else if (!sw_ws_is_control(s->opcode)) {
            if (s->opcode != SW_WS_OP_CONT) {
                ck_assert_uint_eq(m.opcode, s->opcode);
            }
            ck_assert_int_eq(m.in_message, !s->fin);
            if (s->fin) {
                data_frames_done++;
            }
        }
    }
    ck_assert_uint_eq(m.messages, data_frames_done);
}
END_TEST

START_TEST(test_msg_size_and_type)
{
    struct sw_ws_msg_state m;
    struct sw_ws_frame f = {
        .fin = false, .opcode = SW_WS_OP_TEXT, .payload_len = 7};

    sw_ws_msg_init(&m, 0);
    ck_assert_int_eq(sw_ws_msg_check(&m, &f), SW_OK);
    f.opcode = SW_WS_OP_CONT;
    f.payload_len = 9;
    ck_assert_int_eq(sw_ws_msg_check(&m, &f), SW_OK);
    /* CONT frames report the message's type. */
    ck_assert_uint_eq(m.opcode, SW_WS_OP_TEXT);
    ck_assert_uint_eq(m.size, 16);
    f.fin = true;
    f.payload_len = 0;
    ck_assert_int_eq(sw_ws_msg_check(&m, &f), SW_OK);
    ck_assert(!m.in_message);
    /* A new message restarts the count. */
    f.opcode = SW_WS_OP_BINARY;
    f.payload_len = 1;
    ck_assert_int_eq(sw_ws_msg_check(&m, &f), SW_OK);
    ck_assert_uint_eq(m.size, 1);
    ck_assert_uint_eq(m.opcode, SW_WS_OP_BINARY);
    ck_assert_uint_eq(m.messages, 2);
}
END_TEST

/* ---- masking ----------------------------------------------------------- */

static void
mask_ref(uint8_t *p, size_t len, const uint8_t key[4], size_t offset)
{
    for (size_t i = 0; i < len; i++) {
        p[i] ^= key[(offset + i) % 4];
    }
}

START_TEST(test_mask_variants)
{
    enum sw_ws_mask_impl impl = (enum sw_ws_mask_impl)_i;
    static uint8_t src[400];
    static uint8_t a[400];
    static uint8_t b[400];
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    struct sw_test_rng rng;
    bool dispatch = impl == SW_WS_MASK_NIMPL;

    if (!dispatch && !sw_ws_mask_impl_available(impl)) {
        /* The SIMD variants exist only on x86; say so rather than pass. */
        ck_assert_int_eq(sw_ws_mask_with(impl, a, 1, key, 0), SW_EINVAL);
        return;
    }
    sw_test_rng_init(&rng, 7 + _i);
    for (size_t i = 0; i < sizeof(src); i++) {
        src[i] = (uint8_t)sw_test_rng_next(&rng);
    }
    for (size_t len = 0; len <= 300; len++) {
        for (size_t align = 0; align < 32; align++) {
            for (size_t off = 0; off < 4; off++) {
                memcpy(a, src, sizeof(a));
                memcpy(b, src, sizeof(b));
                mask_ref(a + align, len, key, off);
                if (dispatch) {
                    sw_ws_mask(b + align, len, key, off);
                } else {
                    ck_assert_int_eq(
                        sw_ws_mask_with(impl, b + align, len, key, off), SW_OK);
                }
                /* Same result, and nothing outside [align, align+len). */
                if (memcmp(a, b, sizeof(a)) != 0) {
                    ck_abort_msg("%s len %zu align %zu off %zu",
                                 dispatch ? "dispatch"
                                          : sw_ws_mask_impl_name(impl),
                                 len, align, off);
                }
            }
        }
    }
}
END_TEST

START_TEST(test_mask_pieces)
{
    static uint8_t a[5000];
    static uint8_t b[5000];
    static const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    struct sw_test_rng rng;

    sw_test_rng_init(&rng, 99);
    for (size_t i = 0; i < sizeof(a); i++) {
        a[i] = b[i] = (uint8_t)sw_test_rng_next(&rng);
    }
    mask_ref(a, sizeof(a), key, 0);
    for (size_t pos = 0; pos < sizeof(b);) {
        size_t n = SW_MIN(sizeof(b) - pos, 1 + sw_test_rng_below(&rng, 300));
        uint8_t *g = sw_test_guard_copy(b + pos, n);
        sw_ws_mask(g, n, key, pos);
        memcpy(b + pos, g, n);
        sw_test_guard_free(g, n);
        pos += n;
    }
    ck_assert(memcmp(a, b, sizeof(a)) == 0);
    /* Masking is an involution: twice gives the original data back. */
    sw_ws_mask(b, sizeof(b), key, 0);
    sw_test_rng_init(&rng, 99);
    for (size_t i = 0; i < sizeof(a); i++) {
        ck_assert_uint_eq(b[i], (uint8_t)sw_test_rng_next(&rng));
    }
    ck_assert_str_eq(sw_ws_mask_impl_name(SW_WS_MASK_SCALAR), "scalar");
    ck_assert(sw_ws_mask_impl_available(SW_WS_MASK_SCALAR));
    ck_assert(!sw_ws_mask_impl_available(SW_WS_MASK_NIMPL));
}
END_TEST

static Suite *
ws_suite(void)
{
    Suite *s = suite_create("ws");
    TCase *tc = tcase_create("frame");

    tcase_add_loop_test(tc, test_frame_vectors, 0, SW_NELEMS(frame_vecs));
    tcase_add_test(tc, test_frame_fields);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_stream_of_frames);
    suite_add_tcase(s, tc);

    tc = tcase_create("message");
    tcase_add_loop_test(tc, test_msg_state, 0, SW_NELEMS(msg_vecs));
    tcase_add_test(tc, test_msg_size_and_type);
    suite_add_tcase(s, tc);

    tc = tcase_create("mask");
    /* SW_WS_MASK_NIMPL stands for the dispatching sw_ws_mask. */
    tcase_add_loop_test(tc, test_mask_variants, 0, SW_WS_MASK_NIMPL + 1);
    tcase_add_test(tc, test_mask_pieces);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(ws_suite());
}
