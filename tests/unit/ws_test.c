/*
 * ws_test.c - Check suite for lib/ws: frame headers (RFC 6455 5.7 vectors and
 * every violation), fragmentation rules, encode/decode round trips, every
 * masking implementation against a byte-wise reference, UTF-8 tables, close
 * payloads, static frames, the random pool and the opening handshake.
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
    int status;                         /* SW_OK or the first error */
    uint16_t close_code;                /* decoder's close code on error */
    size_t nframes;                     /* complete headers */
    struct sw_ws_frame f[MAX_FRAMES];   /* those headers */
    size_t payload_len;                 /* bytes in payload */
    uint8_t payload[MAX_PAYLOAD];       /* payloads, unmasked, concatenated */
    bool mid_payload;                   /* stream ended inside a payload */
    bool mid_header;                    /* stream ended inside a header */
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
run_stream(struct run *res, const uint8_t *s, size_t len,
           enum sw_ws_peer peer, uint8_t rsv, uint64_t max_frame,
           enum split_mode mode, struct sw_test_rng *rng)
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
                    ck_assert_int_eq(
                        sw_ws_frame_decode(&d, piece, n, &f), rc);
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
           a->payload_len == b->payload_len &&
           a->header_len == b->header_len;
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
        ck_assert(memcmp(other.payload, whole->payload,
                         whole->payload_len) == 0);
    }
}

/* ---- frame vectors ----------------------------------------------------- */

struct frame_vec {
    const char *name;      /* for failure messages */
    const char *bytes;     /* the stream */
    size_t len;            /* its length */
    enum sw_ws_peer peer;  /* decoder role */
    uint8_t rsv;           /* RSV bits allowed */
    uint64_t max_frame;    /* 0 = none */
    int status;            /* SW_OK or expected error */
    uint16_t close_code;   /* with an error */
    size_t nframes;        /* complete frames expected */
    uint8_t opcode;        /* first frame's opcode */
    bool fin;              /* first frame's FIN */
    uint64_t payload_len;  /* first frame's payload length */
    size_t header_len;     /* first frame's header length */
    const char *payload;   /* all payloads unmasked, or NULL */
};

#define V(s) s, sizeof(s) - 1
#define M4 "\x37\xfa\x21\x3d"

static const struct frame_vec frame_vecs[] = {
    /* RFC 6455 5.7 examples. */
    {"rfc unmasked text", V("\x81\x05Hello"), SW_WS_PEER_SERVER, 0, 0, SW_OK,
     0, 1, SW_WS_OP_TEXT, true, 5, 2, "Hello"},
    {"rfc masked text", V("\x81\x85" M4 "\x7f\x9f\x4d\x51\x58"),
     SW_WS_PEER_CLIENT, 0, 0, SW_OK, 0, 1, SW_WS_OP_TEXT, true, 5, 6,
     "Hello"},
    {"rfc fragmented", V("\x01\x03Hel\x80\x02lo"), SW_WS_PEER_SERVER, 0, 0,
     SW_OK, 0, 2, SW_WS_OP_TEXT, false, 3, 2, "Hello"},
    {"rfc ping", V("\x89\x05Hello"), SW_WS_PEER_SERVER, 0, 0, SW_OK, 0, 1,
     SW_WS_OP_PING, true, 5, 2, "Hello"},
    {"rfc masked pong", V("\x8a\x85" M4 "\x7f\x9f\x4d\x51\x58"),
     SW_WS_PEER_CLIENT, 0, 0, SW_OK, 0, 1, SW_WS_OP_PONG, true, 5, 6,
     "Hello"},
    {"rfc 256 binary header", V("\x82\x7e\x01\x00"), SW_WS_PEER_SERVER, 0, 0,
     SW_OK, 0, 1, SW_WS_OP_BINARY, true, 256, 4, NULL},
    {"rfc 64KiB binary header",
     V("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"), SW_WS_PEER_SERVER, 0, 0,
     SW_OK, 0, 1, SW_WS_OP_BINARY, true, 65536, 10, NULL},
    /* More. */
    {"empty close", V("\x88\x00"), SW_WS_PEER_SERVER, 0, 0, SW_OK, 0, 1,
     SW_WS_OP_CLOSE, true, 0, 2, ""},
    {"masked empty binary", V("\x82\x80" M4), SW_WS_PEER_CLIENT, 0, 0, SW_OK,
     0, 1, SW_WS_OP_BINARY, true, 0, 6, ""},
    {"ping between fragments",
     V("\x01\x01H\x89\x01!\x00\x01""e\x80\x01y"), SW_WS_PEER_SERVER, 0, 0,
     SW_OK, 0, 4, SW_WS_OP_TEXT, false, 1, 2, "H!ey"},
    {"non-minimal 16-bit length accepted", V("\x82\x7e\x00\x03" "abc"),
     SW_WS_PEER_SERVER, 0, 0, SW_OK, 0, 1, SW_WS_OP_BINARY, true, 3, 4,
     "abc"},
    {"non-minimal 64-bit length accepted",
     V("\x82\xff\x00\x00\x00\x00\x00\x00\x00\x02" M4 "\x56\x93"),
     SW_WS_PEER_CLIENT, 0, 0, SW_OK, 0, 1, SW_WS_OP_BINARY, true, 2, 14,
     "ai"},
    {"control of exactly 125", V("\x89\x7d"), SW_WS_PEER_SERVER, 0, 0, SW_OK,
     0, 1, SW_WS_OP_PING, true, 125, 2, NULL},
    {"RSV1 with extension", V("\xc1\x01x"), SW_WS_PEER_SERVER, SW_WS_RSV1, 0,
     SW_OK, 0, 1, SW_WS_OP_TEXT, true, 1, 2, "x"},
    {"any peer takes masked", V("\x82\x81" M4 "\x00"), SW_WS_PEER_ANY, 0, 0,
     SW_OK, 0, 1, SW_WS_OP_BINARY, true, 1, 6, "\x37"},
    {"any peer takes unmasked", V("\x82\x01z"), SW_WS_PEER_ANY, 0, 0, SW_OK,
     0, 1, SW_WS_OP_BINARY, true, 1, 2, "z"},
    {"frame at max", V("\x82\x04" "abcd"), SW_WS_PEER_SERVER, 0, 4, SW_OK, 0, 1,
     SW_WS_OP_BINARY, true, 4, 2, "abcd"},
    /* Violations. */
    {"reserved opcode 3", V("\x83\x00"), SW_WS_PEER_SERVER, 0, 0, SW_EPROTO,
     1002, 0, 0, 0, 0, 0, NULL},
    {"reserved opcode 7", V("\x87\x00"), SW_WS_PEER_SERVER, 0, 0, SW_EPROTO,
     1002, 0, 0, 0, 0, 0, NULL},
    {"reserved opcode B", V("\x8b\x00"), SW_WS_PEER_SERVER, 0, 0, SW_EPROTO,
     1002, 0, 0, 0, 0, 0, NULL},
    {"reserved opcode F", V("\x8f\x80" M4), SW_WS_PEER_CLIENT, 0, 0,
     SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"reserved opcode after a good frame", V("\x82\x01z\x84\x00"),
     SW_WS_PEER_SERVER, 0, 0, SW_EPROTO, 1002, 1, SW_WS_OP_BINARY, true, 1,
     2, "z"},
    {"RSV1 without extension", V("\xc1\x00"), SW_WS_PEER_SERVER, 0, 0,
     SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"RSV2 without extension", V("\xa1\x00"), SW_WS_PEER_SERVER, SW_WS_RSV1,
     0, SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"RSV3 without extension", V("\x91\x00"), SW_WS_PEER_SERVER, 0, 0,
     SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"fragmented ping", V("\x09\x00"), SW_WS_PEER_SERVER, 0, 0, SW_EPROTO,
     1002, 0, 0, 0, 0, 0, NULL},
    {"fragmented close", V("\x08\x80" M4), SW_WS_PEER_CLIENT, 0, 0,
     SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"control over 125 (126 form)", V("\x89\x7e\x00\x7e"), SW_WS_PEER_SERVER,
     0, 0, SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"control with 16-bit length of 5", V("\x8a\x7e\x00\x05"),
     SW_WS_PEER_SERVER, 0, 0, SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"unmasked client frame", V("\x81\x05Hello"), SW_WS_PEER_CLIENT, 0, 0,
     SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"masked server frame", V("\x81\x85" M4 "\x7f\x9f\x4d\x51\x58"),
     SW_WS_PEER_SERVER, 0, 0, SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"64-bit length top bit",
     V("\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00" M4), SW_WS_PEER_CLIENT, 0,
     0, SW_EPROTO, 1002, 0, 0, 0, 0, 0, NULL},
    {"too big", V("\x82\x05" "abcde"), SW_WS_PEER_SERVER, 0, 4, SW_ETOOBIG,
     1009, 0, 0, 0, 0, 0, NULL},
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
        ck_assert_msg(r.f[0].payload_len == v->payload_len, "%s: len",
                      v->name);
        ck_assert_msg(r.f[0].header_len == v->header_len, "%s: hlen",
                      v->name);
        ck_assert_int_eq(r.f[0].masked, v->header_len >= 6 &&
                                            (v->bytes[1] & 0x80) != 0);
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
    static const uint64_t lens[] = {0,     1,     125,   126,         127,
                                    65535, 65536, 1u << 20, 1ull << 32,
                                    (1ull << 63) - 1};
    static const uint8_t ops[] = {SW_WS_OP_CONT, SW_WS_OP_TEXT,
                                  SW_WS_OP_BINARY, SW_WS_OP_CLOSE,
                                  SW_WS_OP_PING, SW_WS_OP_PONG};
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
                    size_t want = 2 + (len < 126     ? 0
                                       : len < 65536 ? 2
                                                     : 8) +
                                  (masked ? 4 : 0);
                    ck_assert_uint_eq(n, want);

                    struct sw_ws_decoder d;
                    struct sw_ws_frame f;
                    sw_ws_decoder_init(&d,
                                       masked ? SW_WS_PEER_CLIENT
                                              : SW_WS_PEER_SERVER,
                                       0, 0);
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
    uint8_t opcode;   /* frame opcode */
    bool fin;         /* FIN */
    uint64_t len;     /* payload length */
    int status;       /* expected sw_ws_msg_check result */
};

struct msg_vec {
    const char *name;           /* for messages */
    uint64_t max_message;       /* limit */
    size_t nsteps;              /* used entries */
    struct msg_step steps[6];   /* frames in order */
};

#define T SW_WS_OP_TEXT
#define B SW_WS_OP_BINARY
#define C SW_WS_OP_CONT
#define P SW_WS_OP_PING
#define X SW_WS_OP_CLOSE

static const struct msg_vec msg_vecs[] = {
    {"single", 0, 2, {{T, 1, 5, SW_OK}, {B, 1, 0, SW_OK}}},
    {"fragments", 0, 3, {{T, 0, 5, SW_OK}, {C, 0, 5, SW_OK}, {C, 1, 5, SW_OK}}},
    {"control inside", 0, 4,
     {{B, 0, 1, SW_OK}, {P, 1, 3, SW_OK}, {X, 1, 2, SW_OK}, {C, 1, 1, SW_OK}}},
    {"cont first", 0, 1, {{C, 1, 1, SW_EPROTO}}},
    {"cont after finished", 0, 2, {{T, 1, 1, SW_OK}, {C, 1, 1, SW_EPROTO}}},
    {"text inside text", 0, 2, {{T, 0, 1, SW_OK}, {T, 1, 1, SW_EPROTO}}},
    {"binary inside text", 0, 3,
     {{T, 0, 1, SW_OK}, {P, 1, 0, SW_OK}, {B, 0, 1, SW_EPROTO}}},
    {"at the limit", 10, 3,
     {{T, 0, 4, SW_OK}, {C, 0, 4, SW_OK}, {C, 1, 2, SW_OK}}},
    {"over the limit", 10, 3,
     {{T, 0, 4, SW_OK}, {C, 0, 4, SW_OK}, {C, 1, 3, SW_ETOOBIG}}},
    {"limit per message", 10, 3,
     {{T, 1, 10, SW_OK}, {B, 0, 6, SW_OK}, {C, 1, 4, SW_OK}}},
    {"huge single", 10, 1, {{B, 1, UINT64_MAX >> 1, SW_ETOOBIG}}},
    {"control not counted", 3, 3,
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
        struct sw_ws_frame f = {.fin = s->fin, .opcode = s->opcode,
                                .payload_len = s->len};
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
    struct sw_ws_frame f = {.fin = false, .opcode = SW_WS_OP_TEXT,
                            .payload_len = 7};

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
                        sw_ws_mask_with(impl, b + align, len, key, off),
                        SW_OK);
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

/* ---- UTF-8 ------------------------------------------------------------- */

struct utf8_vec {
    const char *s;   /* bytes */
    size_t len;      /* length */
    int valid;       /* 1 valid, 0 invalid, 2 truncated (feed OK, finish
                      * fails) */
};

#define U(s, v) {s, sizeof(s) - 1, v}
#define A32 "abcdefghijklmnopqrstuvwxyz012345"

static const struct utf8_vec utf8_vecs[] = {
    U("", 1),
    U("a", 1),
    U("Hello-\x7f", 1),
    U("\xc2\x80", 1),
    U("\xdf\xbf", 1),
    U("\xe0\xa0\x80", 1),
    U("\xe1\x80\x80", 1),
    U("\xed\x9f\xbf", 1),
    U("\xee\x80\x80", 1),
    U("\xef\xbf\xbf", 1),
    U("\xf0\x90\x80\x80", 1),
    U("\xf1\x80\x80\x80", 1),
    U("\xf4\x8f\xbf\xbf", 1),
    U("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1),
    U(A32 A32 "\xc3\xa9" A32 "\xf0\x9f\x98\x80" A32, 1),
    U(A32 A32 A32 A32, 1),
    U("\x80", 0),
    U("\xbf", 0),
    U("a\x80", 0),
    U("\xc0\x80", 0),
    U("\xc1\xbf", 0),
    U("\xe0\x80\x80", 0),
    U("\xe0\x9f\xbf", 0),
    U("\xed\xa0\x80", 0),
    U("\xed\xbf\xbf", 0),
    U("\xf0\x80\x80\x80", 0),
    U("\xf0\x8f\xbf\xbf", 0),
    U("\xf4\x90\x80\x80", 0),
    U("\xf5\x80\x80\x80", 0),
    U("\xfe", 0),
    U("\xff", 0),
    U("\xc2\x41", 0),
    U("\xe1\x80\x41", 0),
    U("\xf1\x80\x80\x41", 0),
    U("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64", 0),
    U(A32 A32 "\x80" A32, 0),
    U(A32 A32 A32 "\xed\xa0\x80", 0),
    U("\xc2", 2),
    U("\xe0\xa0", 2),
    U("\xf0\x90\x80", 2),
    U(A32 "\xf4\x8f\xbf", 2),
};

static int
utf8_pieces(const uint8_t *s, size_t len, const size_t *cuts, size_t ncuts)
{
    struct sw_ws_utf8 u;
    size_t pos = 0;
    bool failed = false;

    sw_ws_utf8_init(&u);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        uint8_t *g = sw_test_guard_copy(s + pos, end - pos);
        if (sw_ws_utf8_feed(&u, g, end - pos) != SW_OK) {
            failed = true;
        } else {
            /* Once failed, it stays failed. */
            ck_assert(!failed);
        }
        sw_test_guard_free(g, end - pos);
        pos = end;
    }
    if (failed) {
        ck_assert_int_eq(sw_ws_utf8_finish(&u), SW_EPROTO);
        return 0;
    }
    return sw_ws_utf8_finish(&u) == SW_OK ? 1 : 2;
}

START_TEST(test_utf8_table)
{
    const struct utf8_vec *v = &utf8_vecs[_i];
    const uint8_t *s = (const uint8_t *)v->s;
    uint8_t *g = sw_test_guard_copy(s, v->len);

    ck_assert_msg(sw_ws_utf8_is_valid(g, v->len) == (v->valid == 1),
                  "vector %d", _i);
    sw_test_guard_free(g, v->len);
    ck_assert_int_eq(utf8_pieces(s, v->len, NULL, 0), v->valid);
    /* Split at every position into two pieces. */
    for (size_t cut = 0; cut <= v->len; cut++) {
        ck_assert_msg(utf8_pieces(s, v->len, &cut, 1) == v->valid,
                      "vector %d cut %zu", _i, cut);
    }
    /* One byte at a time. */
    size_t cuts[256];
    for (size_t i = 0; i + 1 < v->len; i++) {
        cuts[i] = i + 1;
    }
    ck_assert_int_eq(utf8_pieces(s, v->len, cuts,
                                 v->len > 0 ? v->len - 1 : 0),
                     v->valid);
}
END_TEST

/* Every code point: valid ones encoded pass, surrogates encoded fail. */
START_TEST(test_utf8_all_code_points)
{
    for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
        uint8_t b[4];
        size_t n;
        if (cp < 0x80) {
            b[0] = (uint8_t)cp;
            n = 1;
        } else if (cp < 0x800) {
            b[0] = (uint8_t)(0xc0 | (cp >> 6));
            b[1] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 2;
        } else if (cp < 0x10000) {
            b[0] = (uint8_t)(0xe0 | (cp >> 12));
            b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            b[2] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 3;
        } else {
            b[0] = (uint8_t)(0xf0 | (cp >> 18));
            b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
            b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            b[3] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 4;
        }
        bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
        if (sw_ws_utf8_is_valid(b, n) == surrogate) {
            ck_abort_msg("U+%04X", cp);
        }
    }
}
END_TEST

/* Independent reference: decode code points the long way (RFC 3629). */
static bool
utf8_ref(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = p[i];
        size_t need;
        uint32_t cp;
        uint32_t min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc0 && c <= 0xdf) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf7) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < need) {
            return false;
        }
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += need + 1;
    }
    return true;
}

/* Random strings from an alphabet biased toward the interesting bytes,
 * checked against the reference whole and split at a random point. */
START_TEST(test_utf8_random)
{
    static const uint8_t alpha[] = {'a',  0x7f, 0x80, 0x8f, 0x90, 0x9f,
                                    0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
                                    0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef,
                                    0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff};
    struct sw_test_rng rng;
    uint8_t s[48];
    size_t nvalid = 0;

    sw_test_rng_init(&rng, 2024);
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = sw_test_rng_below(&rng, sizeof(s) + 1);
        for (size_t i = 0; i < n; i++) {
            /* Mostly valid-looking: a lead then continuations. */
            size_t r = sw_test_rng_below(&rng, 4);
            s[i] = r == 0 ? alpha[sw_test_rng_below(&rng, sizeof(alpha))]
                   : r == 1 ? (uint8_t)('a' + sw_test_rng_below(&rng, 26))
                            : (uint8_t)(0x80 + sw_test_rng_below(&rng, 64));
        }
        bool want = utf8_ref(s, n);
        nvalid += want;
        if (sw_ws_utf8_is_valid(s, n) != want) {
            ck_abort_msg("iteration %d length %zu", iter, n);
        }
        size_t cut = sw_test_rng_below(&rng, n + 1);
        struct sw_ws_utf8 u;
        sw_ws_utf8_init(&u);
        bool ok = sw_ws_utf8_feed(&u, s, cut) == SW_OK;
        ok = sw_ws_utf8_feed(&u, s + cut, n - cut) == SW_OK && ok;
        ok = sw_ws_utf8_finish(&u) == SW_OK && ok;
        if (ok != want) {
            ck_abort_msg("iteration %d length %zu cut %zu", iter, n, cut);
        }
    }
    /* The generator must produce both outcomes in quantity. */
    ck_assert_uint_gt(nvalid, 5000);
    ck_assert_uint_lt(nvalid, 195000);
}
END_TEST

/* ---- close payloads and static frames ---------------------------------- */

START_TEST(test_close_codes)
{
    static const uint16_t good[] = {1000, 1001, 1002, 1003, 1007,
                                    1008, 1009, 1010, 1011, 1012,
                                    1013, 1014, 3000, 3999, 4000, 4999};
    static const uint16_t bad[] = {0,    999,  1004, 1005, 1006, 1015,
                                   1016, 2000, 2999, 5000, 65535};

    for (size_t i = 0; i < SW_NELEMS(good); i++) {
        uint8_t p[2] = {(uint8_t)(good[i] >> 8), (uint8_t)good[i]};
        struct sw_ws_close c;
        ck_assert_msg(sw_ws_close_code_is_valid(good[i]), "%u", good[i]);
        ck_assert_int_eq(sw_ws_close_decode(p, 2, &c), SW_OK);
        ck_assert_uint_eq(c.code, good[i]);
        ck_assert_uint_eq(c.reason.len, 0);
    }
    for (size_t i = 0; i < SW_NELEMS(bad); i++) {
        uint8_t p[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
        struct sw_ws_close c;
        ck_assert_msg(!sw_ws_close_code_is_valid(bad[i]), "%u", bad[i]);
        ck_assert_int_eq(sw_ws_close_decode(p, 2, &c), SW_EPROTO);
        ck_assert_uint_eq(c.error_code, SW_WS_CLOSE_PROTOCOL);
    }
}
END_TEST

START_TEST(test_close_payloads)
{
    struct sw_ws_close c;
    static const uint8_t one[] = {0x03};
    static const uint8_t ok[] = "\x03\xe8" "bye \xce\xba";
    static const uint8_t badutf[] = "\x03\xe8" "bye \xed\xa0\x80";
    static uint8_t big[126];

    ck_assert_int_eq(sw_ws_close_decode(NULL, 0, &c), SW_OK);
    ck_assert_uint_eq(c.code, SW_WS_CLOSE_NO_STATUS);

    uint8_t *g = sw_test_guard_copy(one, 1);
    ck_assert_int_eq(sw_ws_close_decode(g, 1, &c), SW_EPROTO);
    ck_assert_uint_eq(c.error_code, SW_WS_CLOSE_PROTOCOL);
    sw_test_guard_free(g, 1);

    g = sw_test_guard_copy(ok, sizeof(ok) - 1);
    ck_assert_int_eq(sw_ws_close_decode(g, sizeof(ok) - 1, &c), SW_OK);
    ck_assert_uint_eq(c.code, 1000);
    ck_assert_uint_eq(c.reason.len, 6);
    ck_assert(memcmp(c.reason.p, "bye \xce\xba", 6) == 0);
    sw_test_guard_free(g, sizeof(ok) - 1);

    g = sw_test_guard_copy(badutf, sizeof(badutf) - 1);
    ck_assert_int_eq(sw_ws_close_decode(g, sizeof(badutf) - 1, &c),
                     SW_EPROTO);
    ck_assert_uint_eq(c.error_code, SW_WS_CLOSE_INVALID_DATA);
    ck_assert_ptr_nonnull(c.why);
    sw_test_guard_free(g, sizeof(badutf) - 1);

    memset(big, 'a', sizeof(big));
    big[0] = 0x03;
    big[1] = 0xe8;
    ck_assert_int_eq(sw_ws_close_decode(big, 126, &c), SW_EPROTO);
    ck_assert_int_eq(sw_ws_close_decode(big, 125, &c), SW_OK);
}
END_TEST

START_TEST(test_close_encode)
{
    uint8_t out[SW_WS_MAX_CONTROL];
    struct sw_ws_close c;
    char reason[200];

    size_t n = sw_ws_close_encode(out, 1001, "drain", 5);
    ck_assert_uint_eq(n, 7);
    ck_assert_int_eq(sw_ws_close_decode(out, n, &c), SW_OK);
    ck_assert_uint_eq(c.code, 1001);
    ck_assert(memcmp(c.reason.p, "drain", 5) == 0);

    /* A long reason of 2-byte characters is cut on a character boundary
     * and stays within 125 bytes. */
    for (size_t i = 0; i < sizeof(reason); i += 2) {
        reason[i] = (char)0xc3;
        reason[i + 1] = (char)0xa9;
    }
    n = sw_ws_close_encode(out, 1000, reason, sizeof(reason));
    ck_assert_uint_le(n, SW_WS_MAX_CONTROL);
    ck_assert_uint_eq(n, 124);
    ck_assert_int_eq(sw_ws_close_decode(out, n, &c), SW_OK);

    n = sw_ws_close_encode(out, 4000, NULL, 0);
    ck_assert_uint_eq(n, 2);
}
END_TEST

START_TEST(test_static_frames)
{
    static const uint16_t codes[] = {1000, 1001, 1002, 1003,
                                     1007, 1008, 1009, 1011};
    struct sw_str pong = sw_ws_static_pong();
    struct sw_ws_decoder d;
    struct sw_ws_frame f;

    ck_assert_uint_eq(pong.len, 2);
    ck_assert(memcmp(pong.p, "\x8a\x00", 2) == 0);
    sw_ws_decoder_init(&d, SW_WS_PEER_SERVER, 0, 0);
    ck_assert_int_eq(sw_ws_frame_decode(&d, (const uint8_t *)pong.p, 2, &f),
                     2);
    ck_assert_uint_eq(f.opcode, SW_WS_OP_PONG);

    for (size_t i = 0; i < SW_NELEMS(codes); i++) {
        struct sw_str s = sw_ws_static_close(codes[i]);
        struct sw_ws_close c;
        const uint8_t *b = (const uint8_t *)s.p;
        ck_assert_uint_eq(s.len, 4);
        ck_assert_int_eq(sw_ws_frame_decode(&d, b, s.len, &f), 2);
        ck_assert_uint_eq(f.opcode, SW_WS_OP_CLOSE);
        ck_assert(f.fin && !f.masked);
        ck_assert_uint_eq(f.payload_len, 2);
        ck_assert_int_eq(sw_ws_close_decode(b + 2, 2, &c), SW_OK);
        ck_assert_uint_eq(c.code, codes[i]);
    }
    ck_assert_ptr_null(sw_ws_static_close(1005).p);
    ck_assert_uint_eq(sw_ws_static_close(4000).len, 0);
}
END_TEST

/* ---- random pool ------------------------------------------------------- */

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(test_rng)
{
    static struct sw_ws_rng r;
    static uint32_t keys[3000];
    static uint8_t big[10000];
    size_t dups = 0;

    ck_assert_int_eq(sw_ws_rng_init(&r), SW_OK);
    /* 3000 keys cross two refills of the 4 KiB pool. */
    for (size_t i = 0; i < SW_NELEMS(keys); i++) {
        uint8_t k[4];
        sw_ws_rng_key(&r, k);
        memcpy(&keys[i], k, 4);
    }
    qsort(keys, SW_NELEMS(keys), sizeof(keys[0]), cmp_u32);
    for (size_t i = 1; i < SW_NELEMS(keys); i++) {
        dups += keys[i] == keys[i - 1];
    }
    /* Expected duplicates among 3000 random 32-bit keys: ~0.001. */
    ck_assert_uint_le(dups, 1);

    /* More than a pool's worth in one call; not all zero. */
    memset(big, 0, sizeof(big));
    ck_assert_int_eq(sw_ws_rng_bytes(&r, big, sizeof(big)), SW_OK);
    size_t zeros = 0;
    for (size_t i = 0; i < sizeof(big); i++) {
        zeros += big[i] == 0;
    }
    ck_assert_uint_lt(zeros, 200);

    char key[SW_WS_KEY_LEN + 1];
    char key2[SW_WS_KEY_LEN + 1];
    sw_ws_handshake_key(&r, key);
    sw_ws_handshake_key(&r, key2);
    ck_assert_uint_eq(strlen(key), SW_WS_KEY_LEN);
    ck_assert_str_ne(key, key2);
    ck_assert(key[22] == '=' && key[23] == '=');
    sw_ws_rng_fini(&r);
    sw_ws_rng_fini(NULL);
}
END_TEST

/* ---- handshake --------------------------------------------------------- */

START_TEST(test_accept_rfc)
{
    char out[SW_WS_ACCEPT_LEN + 1];

    /* RFC 6455 1.3's worked example (also what `openssl sha1 -binary |
     * base64` gives for key + GUID). */
    sw_ws_accept_compute(SW_STR("dGhlIHNhbXBsZSBub25jZQ=="), out);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* Another well-known pair (RFC 6455 4.2.2 style, from Wikipedia). */
    sw_ws_accept_compute(SW_STR("x3JJHMbDL1EzLkh9GBhXDw=="), out);
    ck_assert_str_eq(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}
END_TEST

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static struct sw_http_header req_headers[16];

static void
hdr(struct sw_http_request *r, const char *name, const char *value)
{
    ck_assert_uint_lt(r->nheaders, r->headers_cap);
    r->headers[r->nheaders].name.p = name;
    r->headers[r->nheaders].name.len = strlen(name);
    r->headers[r->nheaders].value.p = value;
    r->headers[r->nheaders].value.len = strlen(value);
    r->nheaders++;
}

/* The RFC 6455 1.2 request, with one change applied by `variant`. */
static void
build_request(struct sw_http_request *r, int variant)
{
    memset(r, 0, sizeof(*r));
    r->method = variant == 1 ? SW_STR("POST") : SW_STR("GET");
    r->target = SW_STR("/chat");
    r->path = r->target;
    r->version_major = 1;
    r->version_minor = variant == 2 ? 0 : 1;
    r->headers = req_headers;
    r->headers_cap = SW_NELEMS(req_headers);
    hdr(r, "Host", "server.example.com");
    if (variant != 3) {
        hdr(r, "upgrade", variant == 4 ? "h2c" : "WebSocket");
    }
    if (variant == 5) {
        hdr(r, "Connection", "keep-alive");
    } else if (variant == 6) {
        /* Two Connection headers: the token is in the second. */
        hdr(r, "Connection", "keep-alive");
        hdr(r, "connection", "Upgrade");
    } else {
        hdr(r, "Connection", "keep-alive, Upgrade");
    }
    if (variant == 7) {
        hdr(r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ");
    } else if (variant == 8) {
        hdr(r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        hdr(r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    } else if (variant == 9) {
        /* base64 of 17 bytes */
        hdr(r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZXg=");
    } else if (variant == 10) {
        hdr(r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25j!Q==");
    } else if (variant == 11) {
        hdr(r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=A");
    } else if (variant != 12) {
        hdr(r, "Sec-WebSocket-Key", RFC_KEY);
    }
    if (variant == 13) {
        hdr(r, "Sec-WebSocket-Version", "8");
    } else if (variant == 14) {
        /* missing */
    } else if (variant == 15) {
        hdr(r, "Sec-WebSocket-Version", "13");
        hdr(r, "Sec-WebSocket-Version", "8");
    } else {
        hdr(r, "sec-websocket-version", "13");
    }
    hdr(r, "Origin", "http://example.com");
}

static const struct {
    int variant;    /* build_request change */
    int status;     /* expected HTTP status, 0 for OK */
} req_cases[] = {
    {0, 0},    {1, 400},  {2, 400},  {3, 400},  {4, 400},  {5, 400},
    {6, 0},    {7, 400},  {8, 400},  {9, 400},  {10, 400}, {11, 400},
    {12, 400}, {13, 426}, {14, 400}, {15, 426},
};

START_TEST(test_handshake_request)
{
    struct sw_http_request r;
    int status = -1;
    const char *why = NULL;
    struct sw_str key = {NULL, 0};
    int want = req_cases[_i].status;

    build_request(&r, req_cases[_i].variant);
    enum sw_status st = sw_ws_handshake_check_request(&r, &status, &why,
                                                      &key);
    if (want == 0) {
        ck_assert_int_eq(st, SW_OK);
        ck_assert_uint_eq(key.len, 24);
        ck_assert(memcmp(key.p, RFC_KEY, 24) == 0);
    } else {
        ck_assert_msg(st == SW_EPROTO && status == want,
                      "variant %d: %s status %d", req_cases[_i].variant,
                      sw_strerror(st), status);
        ck_assert_ptr_nonnull(why);
        ck_assert_ptr_null(key.p);
    }
    /* NULL out-parameters are allowed. */
    ck_assert_int_eq(sw_ws_handshake_check_request(&r, NULL, NULL, NULL),
                     st);
}
END_TEST

START_TEST(test_handshake_key_roundtrip)
{
    static struct sw_ws_rng rng;
    struct sw_http_request r;
    char key[SW_WS_KEY_LEN + 1];
    struct sw_str got;

    ck_assert_int_eq(sw_ws_rng_init(&rng), SW_OK);
    sw_ws_handshake_key(&rng, key);
    build_request(&r, 12); /* no key yet */
    hdr(&r, "Sec-WebSocket-Key", key);
    ck_assert_int_eq(sw_ws_handshake_check_request(&r, NULL, NULL, &got),
                     SW_OK);
    ck_assert_ptr_eq(got.p, key);
    sw_ws_rng_fini(&rng);
}
END_TEST

static struct sw_http_header resp_headers[8];

static void
build_response(struct sw_http_response *resp, int variant)
{
    static const char *const accepts[] = {
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "s3pPLMBiTxaQ9kYGzzhZRbK+xOp=",
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo"};
    size_t n = 0;

    memset(resp, 0, sizeof(*resp));
    resp->status = variant == 1 ? 200 : 101;
    resp->version_major = 1;
    resp->version_minor = 1;
    resp->headers = resp_headers;
    resp->headers_cap = SW_NELEMS(resp_headers);
#define RH(nm, val)                                                           \
    do {                                                                      \
        resp_headers[n].name = SW_STR(nm);                                    \
        resp_headers[n].value.p = (val);                                      \
        resp_headers[n].value.len = strlen(val);                              \
        n++;                                                                  \
    } while (0)
    if (variant != 2) {
        RH("Upgrade", "websocket");
    }
    if (variant != 3) {
        RH("Connection", "Upgrade");
    }
    if (variant == 4) {
        RH("Sec-WebSocket-Accept", accepts[1]);
    } else if (variant == 5) {
        RH("Sec-WebSocket-Accept", accepts[2]);
    } else if (variant == 6) {
        RH("Sec-WebSocket-Accept", accepts[0]);
        RH("Sec-WebSocket-Accept", accepts[0]);
    } else if (variant != 7) {
        RH("sec-websocket-accept", accepts[0]);
    }
#undef RH
    resp->nheaders = n;
}

START_TEST(test_handshake_response)
{
    struct sw_http_response resp;
    const char *why = NULL;

    build_response(&resp, 0);
    ck_assert_int_eq(
        sw_ws_handshake_check_response(&resp, SW_STR(RFC_KEY), &why), SW_OK);
    /* Right response, wrong key. */
    ck_assert_int_eq(sw_ws_handshake_check_response(
                         &resp, SW_STR("AAAAAAAAAAAAAAAAAAAAAA=="), &why),
                     SW_EPROTO);
    for (int v = 1; v <= 7; v++) {
        why = NULL;
        build_response(&resp, v);
        ck_assert_msg(sw_ws_handshake_check_response(&resp, SW_STR(RFC_KEY),
                                                     &why) == SW_EPROTO,
                      "variant %d", v);
        ck_assert_ptr_nonnull(why);
    }
}
END_TEST

START_TEST(test_handshake_rsv)
{
    struct sw_http_header h[2] = {
        {SW_STR("Sec-WebSocket-Extensions"),
         SW_STR("x-foo; a=1, permessage-deflate; client_max_window_bits")},
        {SW_STR("Sec-WebSocket-Extensions"), SW_STR("x-bar")},
    };

    ck_assert_uint_eq(sw_ws_handshake_rsv(h, 2), SW_WS_RSV1);
    ck_assert_uint_eq(sw_ws_handshake_rsv(h + 1, 1), 0);
    h[0].value = SW_STR("permessage-deflate-not");
    ck_assert_uint_eq(sw_ws_handshake_rsv(h, 2), 0);
    h[1].value = SW_STR(" PerMessage-Deflate ");
    ck_assert_uint_eq(sw_ws_handshake_rsv(h, 2), SW_WS_RSV1);
    ck_assert_uint_eq(sw_ws_handshake_rsv(NULL, 0), 0);
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

    tc = tcase_create("utf8");
    tcase_add_loop_test(tc, test_utf8_table, 0, SW_NELEMS(utf8_vecs));
    tcase_add_test(tc, test_utf8_all_code_points);
    tcase_add_test(tc, test_utf8_random);
    suite_add_tcase(s, tc);

    tc = tcase_create("close");
    tcase_add_test(tc, test_close_codes);
    tcase_add_test(tc, test_close_payloads);
    tcase_add_test(tc, test_close_encode);
    tcase_add_test(tc, test_static_frames);
    suite_add_tcase(s, tc);

    tc = tcase_create("handshake");
    tcase_add_test(tc, test_rng);
    tcase_add_test(tc, test_accept_rfc);
    tcase_add_loop_test(tc, test_handshake_request, 0, SW_NELEMS(req_cases));
    tcase_add_test(tc, test_handshake_key_roundtrip);
    tcase_add_test(tc, test_handshake_response);
    tcase_add_test(tc, test_handshake_rsv);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(ws_suite());
}
