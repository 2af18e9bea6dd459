/*
 * swload_sub.c - what `swload subscribe` does with each message it
 * receives (its report is in swload_report.c).
 *
 * The messages come from `swload broadcast` (directly, through a proxy, or
 * fanned out by a gateway): payload bytes 0-7 are the sequence number and
 * bytes 8-15 the CLOCK_MONOTONIC send time in ns, both little endian. The
 * delivery latency is the receive time minus the send time (sender and
 * receiver on one machine, one clock). Order is checked per connection:
 * after the first message, each is expected to carry the next number; a
 * higher one is a gap (the numbers in between were missed), a lower one is
 * reordered (late or duplicated).
 *
 * No state of its own: the caller (swload_client.c) owns one
 * swload_sub_conn per connection and one swload_sub_stats per thread.
 */
#include "swload.h"

static uint64_t
le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

void
swload_sub_message(struct swload_sub_stats *st, struct swload_sub_conn *sc,
                   const uint8_t *p, size_t n, uint64_t payload_len,
                   uint64_t now_ns, struct swload_hist *hist)
{
    if (payload_len < 16 || n < 16) {
        if (hist != NULL) {
            st->bad++;
        }
        return;
    }
    uint64_t seq = le64(p);
    uint64_t sent = le64(p + 8);
    if (hist != NULL) {
        st->deliveries++;
        swload_hist_add(hist, now_ns > sent ? now_ns - sent : 0);
        if (sc->next_seq != 0 && seq > sc->next_seq) {
            st->gaps++;
            st->missed += seq - sc->next_seq;
        } else if (sc->next_seq != 0 && seq < sc->next_seq) {
            st->reordered++;
        }
    }
    if (seq >= sc->next_seq) {
        sc->next_seq = seq + 1;
    }
}

void
swload_sub_merge(struct swload_sub_stats *dst,
                 const struct swload_sub_stats *src)
{
    dst->deliveries += src->deliveries;
    dst->missed += src->missed;
    dst->gaps += src->gaps;
    dst->reordered += src->reordered;
    dst->bad += src->bad;
}
