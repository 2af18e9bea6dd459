/*
 * swload_server_ws.c - the WebSocket side of `swload echo` and
 * `swload sink`: the 101 answer, data frames echoed (or dropped by the
 * sink) as they stream in, pings, closes and the __stats / __close
 * commands.
 */
#include "swload_server_int.h"

#include <shockwave/ws.h>

#include <inttypes.h>

/* ---- WebSocket -------------------------------------------------------- */

enum sw_status
swload_server_ws_start(struct conn *c, const struct swload_req *r)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char accept[SW_WS_ACCEPT_LEN + 1];

    sw_ws_accept_compute(r->ws_key, accept);
    c->close_after = false;
    evbuffer_add_printf(out,
                        "HTTP/1.1 101 Switching Protocols\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: %s\r\n",
                        accept);
    if (r->ws_protocol.len > 0) {
        evbuffer_add_printf(out, "Sec-WebSocket-Protocol: %.*s\r\n",
                            (int)r->ws_protocol.len, r->ws_protocol.p);
    }
    evbuffer_add_printf(out,
                        "X-Backend: %s\r\n"
                        "X-Conn-Id: %" PRIu64 "\r\n"
                        "X-Conn-Requests: %" PRIu64 "\r\n\r\n",
                        c->w->srv->name, c->id, c->nreq);
    /* Tolerant: masking and RSV bits are not ours to police here. */
    sw_ws_decoder_init(&c->dec, SW_WS_PEER_ANY,
                       SW_WS_RSV1 | SW_WS_RSV2 | SW_WS_RSV3, 0);
    c->in_frame = false;
    set_state(c, ST_WS);
    return SW_OK;
}

static void
ws_send(struct conn *c, bool fin, uint8_t opcode, const void *p, size_t n)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint8_t hdr[SW_WS_MAX_HEADER];
    size_t hl = sw_ws_frame_encode(hdr, fin, opcode, NULL, n);

    evbuffer_add(out, hdr, hl);
    if (n > 0) {
        evbuffer_add(out, p, n);
    }
}

/* A whole small frame (control, or a short final text frame) is in p. */
static enum sw_status
ws_small(struct conn *c, uint8_t *p, size_t n)
{
    const struct sw_ws_frame *f = &c->fr;
    char text[128];
    int tn;

    switch (f->opcode) {
    case SW_WS_OP_PING:
        c->pings++;
        if (!c->close_sent) {
            ws_send(c, true, SW_WS_OP_PONG, p, n);
        }
        break;
    case SW_WS_OP_PONG:
        c->pongs++;
        break;
    case SW_WS_OP_CLOSE:
        if (!c->close_sent) {
            /* Echo the code only (RFC 6455 5.5.1: the reply usually
             * repeats the status code it received). */
            ws_send(c, true, SW_WS_OP_CLOSE, p, n >= 2 ? 2 : 0);
            c->close_sent = true;
        }
        set_state(c, ST_DRAIN);
        break;
    default:
        if (c->close_sent) {
            break; /* RFC 6455 5.5.1: no data after our close */
        }
        if (n == 7 && memcmp(p, "__stats", 7) == 0) {
            tn = snprintf(text, sizeof(text),
                          "{\"pings\":%" PRIu64 ",\"pongs\":%" PRIu64
                          ",\"frames\":%" PRIu64 "}",
                          c->pings, c->pongs, c->frames);
            ws_send(c, true, SW_WS_OP_TEXT, text, (size_t)tn);
            break;
        }
        if (n > 8 && n < 16 && memcmp(p, "__close ", 8) == 0) {
            char digits[8];
            uint64_t code = 0;
            memcpy(digits, p + 8, n - 8);
            digits[n - 8] = '\0';
            if (swload_parse_u64(digits, &code) && code <= 0xffff) {
                uint8_t pl[2] = {(uint8_t)(code >> 8), (uint8_t)code};
                ws_send(c, true, SW_WS_OP_CLOSE, pl, 2);
                c->close_sent = true;
                break;
            }
        }
        c->frames++;
        if (!c->w->srv->sink) {
            ws_send(c, f->fin, f->opcode, p, n);
        }
        break;
    }
    return SW_OK;
}

enum sw_status
swload_server_ws(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint8_t *scratch = c->w->scratch;

    while (c->state == ST_WS && out_len(c) < OUT_HIGH) {
        size_t len = evbuffer_get_length(in);
        if (!c->in_frame) {
            size_t n = SW_MIN(len, (size_t)SW_WS_MAX_HEADER);
            if (n == 0) {
                return c->eof ? SW_ECLOSED : SW_AGAIN;
            }
            const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)n);
            ssize_t used = sw_ws_frame_decode(&c->dec, p, n, &c->fr);
            if (used == SW_AGAIN) {
                evbuffer_drain(in, n);
                continue;
            }
            if (used < 0) {
                ws_send(c, true, SW_WS_OP_CLOSE,
                        (uint8_t[]){c->dec.close_code >> 8,
                                    c->dec.close_code & 0xff},
                        2);
                set_state(c, ST_DRAIN);
                return SW_OK;
            }
            evbuffer_drain(in, (size_t)used);
            c->in_frame = true;
            c->hdr_sent = false;
            c->pay_left = c->fr.payload_len;
            c->pay_off = 0;
            continue;
        }
        bool small = sw_ws_is_control(c->fr.opcode) ||
                     (c->fr.opcode == SW_WS_OP_TEXT && c->fr.fin &&
                      c->fr.payload_len <= SW_WS_MAX_CONTROL);
        if (small) {
            size_t n = (size_t)c->fr.payload_len;
            if (len < n) {
                return c->eof ? SW_ECLOSED : SW_AGAIN;
            }
            evbuffer_remove(in, scratch, n);
            if (c->fr.masked) {
                sw_ws_mask(scratch, n, c->fr.mask, 0);
            }
            c->in_frame = false;
            ws_small(c, scratch, n);
            continue;
        }
        /* Stream a data frame: same FIN and opcode, unmasked. */
        bool echo = !c->w->srv->sink && !c->close_sent;
        if (!c->hdr_sent) {
            if (echo) {
                uint8_t hdr[SW_WS_MAX_HEADER];
                size_t hl = sw_ws_frame_encode(hdr, c->fr.fin, c->fr.opcode,
                                               NULL, c->fr.payload_len);
                evbuffer_add(out, hdr, hl);
            }
            c->hdr_sent = true;
        }
        if (c->pay_left == 0) {
            c->frames++;
            c->in_frame = false;
            continue;
        }
        size_t n =
            (size_t)SW_MIN((uint64_t)SW_MIN(len, SCRATCH_LEN), c->pay_left);
        if (n == 0) {
            return c->eof ? SW_ECLOSED : SW_AGAIN;
        }
        if (echo) {
            evbuffer_remove(in, scratch, n);
            if (c->fr.masked) {
                sw_ws_mask(scratch, n, c->fr.mask, (size_t)c->pay_off);
            }
            evbuffer_add(out, scratch, n);
        } else {
            evbuffer_drain(in, n);
        }
        c->pay_left -= n;
        c->pay_off += n;
    }
    return SW_OK;
}
