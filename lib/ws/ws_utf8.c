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
 * Runs of ASCII are skipped 32 bytes at a time while at a boundary.
 * Owns nothing; threading: none.
 */
#include <shockwave/ws.h>

enum {
    S_ACCEPT = 0, /* at a character boundary */
    S_REJECT = 1, /* invalid input seen */
    S_N1 = 2,     /* one continuation byte 80..BF left */
    S_N2 = 3,     /* two left */
    S_N3 = 4,     /* three left */
    S_E0 = 5,     /* after E0: A0..BF, then one more */
    S_ED = 6,     /* after ED: 80..9F, then one more */
    S_F0 = 7,     /* after F0: 90..BF, then two more */
    S_F4 = 8,     /* after F4: 80..8F, then two more */
    S_COUNT = 9,
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

#define R S_REJECT
static const uint8_t next_state[S_COUNT][12] = {
    /*            asc 8x  9x  Ax  inv C2  E0   E1   ED   F0   F1   F4 */
    [S_ACCEPT] = {0, R, R, R, R, S_N1, S_E0, S_N2, S_ED, S_F0, S_N3, S_F4},
    [S_REJECT] = {R, R, R, R, R, R, R, R, R, R, R, R},
    [S_N1] = {R, 0, 0, 0, R, R, R, R, R, R, R, R},
    [S_N2] = {R, S_N1, S_N1, S_N1, R, R, R, R, R, R, R, R},
    [S_N3] = {R, S_N2, S_N2, S_N2, R, R, R, R, R, R, R, R},
    [S_E0] = {R, R, R, S_N1, R, R, R, R, R, R, R, R},
    [S_ED] = {R, S_N1, S_N1, R, R, R, R, R, R, R, R, R},
    [S_F0] = {R, R, S_N2, S_N2, R, R, R, R, R, R, R, R},
    [S_F4] = {R, S_N2, R, R, R, R, R, R, R, R, R, R},
};
#undef R

#define HIGH_BITS 0x8080808080808080ull

static uint32_t
run(uint32_t s, const uint8_t *p, size_t len)
{
    size_t i = 0;

    while (i < len) {
        if (s == S_ACCEPT) {
            /* ASCII fast path: 32 bytes per step, one test. */
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
        }
        /* Up to 16 bytes through the DFA, then try the fast path again. */
        size_t end = SW_MIN(len, i + 16);
        for (; i < end; i++) {
            s = next_state[s][byte_class[p[i]]];
        }
        if (s == S_REJECT) {
            break;
        }
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
