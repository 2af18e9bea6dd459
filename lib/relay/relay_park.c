/*
 * relay_park.c - an idle relay reduced to what it must remember, and
 * brought back (see "Parking" in relay.h).
 *
 * A relay holds two ends, two directions, each with a frame decoder, a
 * control-frame buffer, a pending close and log addresses: some 1.5 KiB,
 * nearly all of it needed only while a frame is in flight. Between frames,
 * with nothing buffered or owed, its whole state is the message state of
 * each direction (a fragmented message may span a quiet spell), the
 * counters its final log line reports and its clocks (last bytes, last
 * ping). Parking saves those and lets the owner free the rest; unparking
 * builds a fresh relay over the same sockets and restores them.
 *
 * Contents: end_quiet, dir_quiet, sw_relay_parkable, sw_relay_park,
 * sw_relay_unpark.
 */
#include "relay_int.h"

/* Nothing in flight, owed or broken at this end; both readinesses as the
 * idle relay leaves them (read armed, write not) and input quiet for the
 * route's ws_park_after. */
static bool
end_quiet(const struct sw_relay *r, const struct end *e, uint64_t now)
{
    const struct sw_conn *c = e->conn;
    const unsigned broken = SW_CONN_F_EOF | SW_CONN_F_RESET | SW_CONN_F_DEAD |
                            SW_CONN_F_WRITING | SW_CONN_F_READ_WANTS_WRITE |
                            SW_CONN_F_WRITE_WANTS_READ;
    return now >= e->last_rx_ms + r->rt->ws_park_after_ms &&
           sw_conn_has(c, SW_CONN_F_READING) && !sw_conn_has(c, broken) &&
           sw_conn_buffered(c->in) == 0 && sw_conn_buffered(c->out) == 0 &&
           c->io.ops->pending(&c->io) == 0 && e->pongs == NULL &&
           e->npongs == 0 && !e->ping_pending && e->close_len == 0 &&
           !e->close_sent && !e->cut && e->close_deferred == 0;
}

/* Between frames: no header half decoded or waiting for room, no control
 * payload half collected, no pipe, no close seen. */
static bool
dir_quiet(const struct dir *d)
{
    return d->state == DIR_HDR && d->dec.state == SW_WS_DEC_START &&
           d->hdr_len == 0 && d->ctl_len == 0 && !d->have_pipe &&
           d->in_pipe == 0 && d->run_len == 0 && !d->close_seen;
}

bool
sw_relay_parkable(const struct sw_relay *r, uint64_t now)
{
    return r->rt->ws_park_after_ms != 0 && !r->done && !r->finishing &&
           r->close_deadline_ms == 0 && r->defer_deadline_ms == 0 &&
           r->drain_at_ms == 0 && r->probe_at_ms == 0 &&
           r->lowat_until_ms == 0 &&
           sw__relay_next_deadline(r) > now && /* its timer runs first */
           end_quiet(r, &r->c, now) && end_quiet(r, &r->u, now) &&
           dir_quiet(&r->up) && dir_quiet(&r->down) &&
           sw__relay_kernel_parkable(r); /* last: it takes the directions */
}

void
sw_relay_park(struct sw_relay *r, struct sw_relay_parked *out)
{
    sw__relay_kernel_stop(r); /* drained (parkable): leaves losing nothing */
    const struct dir *dirs[2] = {&r->up, &r->down};
    const struct end *ends[2] = {&r->c, &r->u};
    *out = (struct sw_relay_parked){
        .rsv_allowed = r->up.dec.rsv_allowed,
        .started_us = r->started_us,
    };
    for (int i = 0; i < 2; i++) {
        const struct dir *d = dirs[i];
        out->dir[i] = (struct sw_relay_parked_dir){
            .msg_size = d->msg.size,
            .msg_count = d->msg.messages,
            .frames = d->frames,
            .messages = d->messages,
            .bytes = d->bytes,
            .utf8 = d->utf8,
            .msg_opcode = d->msg.opcode,
            .in_message = d->msg.in_message,
            .plug_dropping = d->plug_dropping,
            .validate = d->validate,
        };
        out->last_rx_ms[i] = ends[i]->last_rx_ms;
        out->last_ping_ms[i] = ends[i]->last_ping_ms;
    }
    uint64_t next = sw__relay_next_deadline(r);
    out->wake_at_ms = next == UINT64_MAX ? 0 : next;
    sw_conn_timer(r->c.conn, 0);
    sw_conn_timer(r->u.conn, 0);
    sw_conn_release_idle(r->c.conn);
    sw_conn_release_idle(r->u.conn);
    r->done = true; /* over, without on_done: the owner frees it */
}

struct sw_relay *
sw_relay_unpark(const struct sw_relay_env *env, struct sw_relay_start *s,
                const struct sw_relay_parked *saved)
{
    s->rsv_allowed = saved->rsv_allowed;
    struct sw_relay *r = sw__relay_create(env, s);
    if (r == NULL) {
        return NULL;
    }
    struct dir *dirs[2] = {&r->up, &r->down};
    struct end *ends[2] = {&r->c, &r->u};
    r->started_us = saved->started_us;
    for (int i = 0; i < 2; i++) {
        struct dir *d = dirs[i];
        const struct sw_relay_parked_dir *sd = &saved->dir[i];
        d->msg.size = sd->msg_size;
        d->msg.messages = sd->msg_count;
        d->msg.opcode = sd->msg_opcode;
        d->msg.in_message = sd->in_message;
        d->plug_dropping = sd->plug_dropping;
        d->frames = sd->frames;
        d->messages = sd->messages;
        d->bytes = sd->bytes;
        d->utf8 = sd->utf8;
        d->validate = sd->validate;
        ends[i]->last_rx_ms = saved->last_rx_ms[i];
        ends[i]->last_ping_ms = saved->last_ping_ms[i];
    }
    sw__relay_kernel_start(r, saved->rsv_allowed); /* joins when quiet */
    sw__relay_arm_timer(r);
    sw__relay_update_interest(r);
    return r;
}
