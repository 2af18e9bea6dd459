/*
 * swload_ws.c - reading WebSocket frames as swload's tools need them: the
 * header through lib/ws's resumable decoder, the payload counted and only
 * its first SW_WS_MAX_CONTROL bytes kept (unmasked), which holds any
 * control payload and the head of a data message. Owns nothing; the
 * caller's struct swload_frames carries the state between reads.
 */
#include "swload.h"

int
swload_frames_next(struct swload_frames *f, const uint8_t **p, size_t *len)
{
    while (*len > 0) {
        if (!f->in_frame) {
            ssize_t used = sw_ws_frame_decode(&f->dec, *p, *len, &f->fr);
            if (used == SW_AGAIN) {
                *len = 0; /* consumed into the decoder */
                return 0;
            }
            if (used < 0) {
                return -1;
            }
            *p += used;
            *len -= (size_t)used;
            f->in_frame = true;
            f->pay_left = f->fr.payload_len;
            f->ctl_len = 0;
        }
        size_t n = (size_t)SW_MIN((uint64_t)*len, f->pay_left);
        size_t keep = SW_MIN(n, sizeof(f->ctl) - f->ctl_len);
        memcpy(f->ctl + f->ctl_len, *p, keep);
        if (f->fr.masked) {
            sw_ws_mask(f->ctl + f->ctl_len, keep, f->fr.mask, f->ctl_len);
        }
        f->ctl_len += keep;
        *p += n;
        *len -= n;
        f->pay_left -= n;
        if (f->pay_left == 0) {
            f->in_frame = false;
            return 1;
        }
    }
    return 0;
}
