/*
 * ws_frame_fuzz.c - libFuzzer harness for the WebSocket frame decoder, the
 * message rules, unmasking, UTF-8 validation and close payloads.
 *
 *   data[0]      configuration: peer role, RSV bits allowed, limits
 *   data[1]      split seed: pieces of 1..16 bytes for the second pass
 *   data[2..]    the byte stream from the peer
 *
 * The stream is decoded twice, whole and in small pieces (each piece in
 * its own heap copy so ASan sees any overread), and both passes must give
 * the same frames, payload bytes, verdicts and close codes. Headers that
 * were minimally encoded must round-trip through sw_ws_frame_encode.
 * Any disagreement aborts.
 */
#include <shockwave/ws.h>

#define MAX_TRACE 64

/* What one pass saw. */
struct pass {
    int status;                  /* first error, or SW_OK / SW_AGAIN */
    uint16_t close_code;         /* close code for that error */
    size_t nframes;              /* complete headers */
    struct sw_ws_frame f[MAX_TRACE]; /* first MAX_TRACE headers */
    uint64_t digest;             /* FNV-1a of the unmasked payloads */
    uint64_t text_ok;            /* text messages that passed UTF-8 */
    uint64_t closes_ok;          /* close payloads that passed */
};

/* Per-pass decoding state. */
struct ctx {
    struct sw_ws_decoder d;      /* header decoder */
    struct sw_ws_msg_state m;    /* fragmentation rules */
    struct sw_ws_utf8 u;         /* current text message */
    struct sw_ws_frame cur;      /* header of the frame in flight */
    uint64_t left;               /* payload bytes still to come */
    uint64_t off;                /* payload bytes seen (mask offset) */
    uint8_t ctl[SW_WS_MAX_CONTROL]; /* control payload being collected */
    bool in_payload;             /* inside a payload */
};

static void
fnv(uint64_t *h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *h = (*h ^ p[i]) * 0x100000001b3ull;
    }
}

static bool
is_minimal(const struct sw_ws_frame *f)
{
    size_t want = 2 + (f->payload_len < 126     ? 0
                       : f->payload_len < 65536 ? 2
                                                : 8);
    return f->header_len == want + (f->masked ? 4 : 0);
}

static void
end_frame(struct ctx *c, struct pass *ps)
{
    if (c->cur.opcode == SW_WS_OP_CLOSE) {
        struct sw_ws_close cl;
        if (sw_ws_close_decode(c->ctl, (size_t)c->cur.payload_len, &cl) ==
            SW_OK) {
            ps->closes_ok++;
        } else if (cl.error_code != SW_WS_CLOSE_PROTOCOL &&
                   cl.error_code != SW_WS_CLOSE_INVALID_DATA) {
            abort();
        }
    }
    if (!sw_ws_is_control(c->cur.opcode) && c->cur.fin &&
        c->m.opcode == SW_WS_OP_TEXT) {
        if (sw_ws_utf8_finish(&c->u) == SW_OK) {
            ps->text_ok++;
        }
    }
}

/* Feed one piece; returns false once the pass has stopped on an error. */
static bool
feed(struct ctx *c, struct pass *ps, uint8_t *p, size_t n)
{
    size_t off = 0;

    while (off < n) {
        if (!c->in_payload) {
            ssize_t rc = sw_ws_frame_decode(&c->d, p + off, n - off, &c->cur);
            if (rc == SW_AGAIN) {
                return true;
            }
            if (rc < 0) {
                ps->status = (int)rc;
                ps->close_code = c->d.close_code;
                return false;
            }
            if ((size_t)rc > n - off || c->cur.header_len < 2 ||
                c->cur.header_len > SW_WS_MAX_HEADER) {
                abort();
            }
            if (c->cur.rsv == 0 && is_minimal(&c->cur)) {
                uint8_t h[SW_WS_MAX_HEADER];
                size_t hl = sw_ws_frame_encode(
                    h, c->cur.fin, c->cur.opcode,
                    c->cur.masked ? c->cur.mask : NULL, c->cur.payload_len);
                if (hl != c->cur.header_len) {
                    abort();
                }
                /* When the whole header is in this piece, compare bytes. */
                if ((size_t)rc == hl && memcmp(h, p + off, hl) != 0) {
                    abort();
                }
            }
            if (ps->nframes < MAX_TRACE) {
                ps->f[ps->nframes] = c->cur;
            }
            ps->nframes++;
            off += (size_t)rc;
            int st = sw_ws_msg_check(&c->m, &c->cur);
            if (st != SW_OK) {
                ps->status = st;
                ps->close_code = c->m.close_code;
                return false;
            }
            if (c->cur.opcode == SW_WS_OP_TEXT) {
                sw_ws_utf8_init(&c->u);
            }
            c->left = c->cur.payload_len;
            c->off = 0;
            c->in_payload = c->left > 0;
            if (!c->in_payload) {
                end_frame(c, ps);
            }
            continue;
        }
        size_t take = (size_t)SW_MIN(c->left, (uint64_t)(n - off));
        uint8_t *q = p + off;
        if (c->cur.masked) {
            sw_ws_mask(q, take, c->cur.mask, (size_t)c->off);
        }
        fnv(&ps->digest, q, take);
        if (sw_ws_is_control(c->cur.opcode)) {
            memcpy(c->ctl + c->off, q, take);
        } else if (c->m.opcode == SW_WS_OP_TEXT) {
            (void)sw_ws_utf8_feed(&c->u, q, take);
        }
        c->off += take;
        c->left -= take;
        off += take;
        if (c->left == 0) {
            c->in_payload = false;
            end_frame(c, ps);
        }
    }
    return true;
}

static void
run_pass(struct pass *ps, const uint8_t *s, size_t len, uint8_t cfg,
         uint8_t seed, bool split)
{
    static struct ctx c;
    enum sw_ws_peer peer = (enum sw_ws_peer)(cfg % 3);
    uint8_t rsv = (cfg >> 2) & 7;
    uint64_t max_frame = (cfg & 0x20) ? 300 : 0;
    uint64_t max_msg = (cfg & 0x40) ? 1000 : 0;
    size_t pos = 0;
    uint32_t x = seed * 2654435761u + 1;

    memset(ps, 0, sizeof(*ps));
    memset(&c, 0, sizeof(c));
    ps->digest = 0xcbf29ce484222325ull;
    sw_ws_decoder_init(&c.d, peer, rsv, max_frame);
    sw_ws_msg_init(&c.m, max_msg);
    while (pos < len) {
        size_t n = len - pos;
        if (split) {
            x = x * 1103515245u + 12345u;
            n = SW_MIN(n, (size_t)(1 + ((x >> 16) & 15)));
        }
        uint8_t *piece = malloc(n);
        if (piece == NULL) {
            abort();
        }
        memcpy(piece, s + pos, n);
        bool go = feed(&c, ps, piece, n);
        free(piece);
        if (!go) {
            break;
        }
        pos += n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pass a;
    static struct pass b;

    if (size < 2) {
        return 0;
    }
    run_pass(&a, data + 2, size - 2, data[0], data[1], false);
    run_pass(&b, data + 2, size - 2, data[0], data[1], true);
    if (a.status != b.status || a.close_code != b.close_code ||
        a.nframes != b.nframes || a.digest != b.digest ||
        a.text_ok != b.text_ok || a.closes_ok != b.closes_ok) {
        abort();
    }
    for (size_t i = 0; i < SW_MIN(a.nframes, (size_t)MAX_TRACE); i++) {
        const struct sw_ws_frame *x = &a.f[i];
        const struct sw_ws_frame *y = &b.f[i];
        if (x->fin != y->fin || x->rsv != y->rsv || x->opcode != y->opcode ||
            x->masked != y->masked || memcmp(x->mask, y->mask, 4) != 0 ||
            x->payload_len != y->payload_len ||
            x->header_len != y->header_len) {
            abort();
        }
    }
    if (a.status == SW_EPROTO && a.close_code != SW_WS_CLOSE_PROTOCOL) {
        abort();
    }
    if (a.status == SW_ETOOBIG && a.close_code != SW_WS_CLOSE_TOO_BIG) {
        abort();
    }
    return 0;
}
