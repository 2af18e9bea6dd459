/*
 * ws_utf8.c - incremental UTF-8 validation (RFC 3629, Unicode table 3-7)
 * for text messages and close reasons (RFC 6455 8.1).
 *
 * A byte-class table and a 9-state DFA. The state is all that survives
 * between pieces, so a text message can be validated frame by frame, or a
 * frame piece by piece, with the same result as in one go.
 *
 *   ACCEPT --C2..DF--> N1 --80..BF--> ACCEPT
 *   ACCEPT --E1..EC,EE..EF--> N2 --80..BF--> N1
 *   ACCEPT --E0--> E0 --A0..BF--> N1        (no overlong 3-byte forms)
 *   ACCEPT --ED--> ED --80..9F--> N1        (no surrogates D800..DFFF)
 *   ACCEPT --F1..F3--> N3 --80..BF--> N2
 *   ACCEPT --F0--> F0 --90..BF--> N2        (no overlong 4-byte forms)
 *   ACCEPT --F4--> F4 --80..8F--> N2        (nothing above U+10FFFF)
 *   anything else --> REJECT (sticky)
 *
 * Runs of ASCII are skipped 32 bytes at a time while at a boundary, and
 * whole multi-byte characters are checked in one step; the DFA only runs
 * for a character cut by the end of a piece.
 * Owns nothing; threading: none.
 */
#include <shockwave/ws.h>

/* States are pre-multiplied by 16 (the class count rounded up) so that a
 * step is one add and one load: s = next_state[s + byte_class[b]]. */
enum {
    S_ACCEPT = 0 * 16, /* at a character boundary */
    S_REJECT = 1 * 16, /* invalid input seen */
    S_N1 = 2 * 16,     /* one continuation byte 80..BF left */
    S_N2 = 3 * 16,     /* two left */
    S_N3 = 4 * 16,     /* three left */
    S_E0 = 5 * 16,     /* after E0: A0..BF, then one more */
    S_ED = 6 * 16,     /* after ED: 80..9F, then one more */
    S_F0 = 7 * 16,     /* after F0: 90..BF, then two more */
    S_F4 = 8 * 16,     /* after F4: 80..8F, then two more */
    S_END = 9 * 16,    /* table size */
};

/* Byte classes: 0 ASCII, 1 80..8F, 2 90..9F, 3 A0..BF, 4 never valid,
 * 5 C2..DF, 6 E0, 7 E1..EC/EE..EF, 8 ED, 9 F0, 10 F1..F3, 11 F4. */
static const uint8_t byte_class[256] = {
    [0x00 ... 0x7f] = 0, [0x80 ... 0x8f] = 1, [0x90 ... 0x9f] = 2,
    [0xa0 ... 0xbf] = 3, [0xc0 ... 0xc1] = 4, [0xc2 ... 0xdf] = 5,
    [0xe0] = 6,          [0xe1 ... 0xec] = 7, [0xed] = 8,
    [0xee ... 0xef] = 7, [0xf0] = 9,          [0xf1 ... 0xf3] = 10,
    [0xf4] = 11,         [0xf5 ... 0xff] = 4,
};

/* Row per state, 16 entries per row (12 used, the rest reject). */
#define R S_REJECT
#define ROW_TAIL R, R, R, R
static const uint8_t next_state[S_END] = {
    /* class:    asc 8x 9x Ax inv C2 E0 E1 ED F0 F1 F4 */
    [S_ACCEPT] = 0,
    R,
    R,
    R,
    R,
    S_N1,
    S_E0,
    S_N2,
    S_ED,
    S_F0,
    S_N3,
    S_F4,
    ROW_TAIL,
    [S_REJECT] = R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    ROW_TAIL,
    [S_N1] = R,
    0,
    0,
    0,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    ROW_TAIL,
    [S_N2] = R,
    S_N1,
    S_N1,
    S_N1,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    ROW_TAIL,
    [S_N3] = R,
    S_N2,
    S_N2,
    S_N2,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    ROW_TAIL,
    [S_E0] = R,
    R,
    R,
    S_N1,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    ROW_TAIL,
    [S_ED] = R,
    S_N1,
    S_N1,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    ROW_TAIL,
    [S_F0] = R,
    R,
    S_N2,
    S_N2,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    ROW_TAIL,
    [S_F4] = R,
    S_N2,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    R,
    ROW_TAIL,
};
#undef ROW_TAIL
#undef R

#define HIGH_BITS 0x8080808080808080ull

/* Per lead-byte class: sequence length (0 = not a lead byte) and the range
 * allowed for the second byte, which is where the overlong, surrogate and
 * > U+10FFFF rules live (Unicode table 3-7). */
static const uint8_t seq_len[12] = {1, 0, 0, 0, 0, 2, 3, 3, 3, 4, 4, 4};
static const uint8_t second_lo[12] = {0,    0,    0,    0,    0,    0x80,
                                      0xa0, 0x80, 0x80, 0x90, 0x80, 0x80};
static const uint8_t second_hi[12] = {0,    0,    0,    0,    0,    0xbf,
                                      0xbf, 0xbf, 0x9f, 0xbf, 0xbf, 0x8f};

static uint32_t
run(uint32_t s, const uint8_t *p, size_t len)
{
    size_t i = 0;

    /* Finish a character left open by the previous piece. */
    while (i < len && s != S_ACCEPT && s != S_REJECT) {
        s = next_state[s + byte_class[p[i++]]];
    }
    if (s != S_ACCEPT) {
        return s;
    }
    while (i < len) {
        /* ASCII fast path: 32, then 8 bytes per step, one test each. */
        while (len - i >= 32) {
            uint64_t a, b, c, d;
            memcpy(&a, p + i, 8);
            memcpy(&b, p + i + 8, 8);
            memcpy(&c, p + i + 16, 8);
            memcpy(&d, p + i + 24, 8);
            if (((a | b | c | d) & HIGH_BITS) != 0) {
                break;
            }
            i += 32;
        }
        while (len - i >= 8) {
            uint64_t a;
            memcpy(&a, p + i, 8);
            if ((a & HIGH_BITS) != 0) {
                break;
            }
            i += 8;
        }
        if (i == len) {
            break;
        }
        uint8_t lead = p[i];
        if (lead < 0x80) {
            i++;
            continue;
        }
        /* A whole sequence at once: its bytes are checked independently
         * instead of through the DFA's chain of dependent loads. */
        uint8_t cls = byte_class[lead];
        size_t n = seq_len[cls];
        if (n == 0) {
            return S_REJECT;
        }
        if (len - i < n) {
            /* The piece ends inside this character: the DFA keeps the
             * state for the next piece. */
            for (; i < len; i++) {
                s = next_state[s + byte_class[p[i]]];
            }
            return s;
        }
        uint8_t b1 = p[i + 1];
        if (b1 < second_lo[cls] || b1 > second_hi[cls]) {
            return S_REJECT;
        }
        if (n >= 3 && (p[i + 2] & 0xc0) != 0x80) {
            return S_REJECT;
        }
        if (n == 4 && (p[i + 3] & 0xc0) != 0x80) {
            return S_REJECT;
        }
        i += n;
    }
    return s;
}

void
sw_ws_utf8_init(struct sw_ws_utf8 *u)
{
    u->state = S_ACCEPT;
}

enum sw_status
sw_ws_utf8_feed(struct sw_ws_utf8 *u, const uint8_t *p, size_t len)
{
    u->state = run(u->state, p, len);
    return u->state == S_REJECT ? SW_EPROTO : SW_OK;
}

enum sw_status
sw_ws_utf8_finish(const struct sw_ws_utf8 *u)
{
    return u->state == S_ACCEPT ? SW_OK : SW_EPROTO;
}

bool
sw_ws_utf8_is_valid(const uint8_t *p, size_t len)
{
    return run(S_ACCEPT, p, len) == S_ACCEPT;
}
