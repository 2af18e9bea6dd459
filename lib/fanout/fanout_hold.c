/*
 * fanout_hold.c - a channel across gateways: which gateway holds its
 * upstream, and where each gateway's clients get their messages from
 * (the roles are drawn in fanout_int.h; docs/scaling.md says why).
 *
 *   fo_hold_start           a new channel: ask for the lease, or go alone
 *   fo_hold_looked          the lease's answer: hold, follow, step down
 *   fo_hold_tick            a look every lease/3; a follower's 502
 *   fo_hold_message         from the bus: to our clients, or upstream
 *   fo_hold_from_upstream   our upstream's messages onto the bus
 *   fo_hold_to_upstream     a follower's client messages to the holder
 *   fo_hold_bus_down / _up  every channel's source when Redis comes and goes
 *   fo_hold_drain_inbox     publishes from other threads (the admin)
 *
 * One source at a time per channel on a gateway (its own upstream, or the
 * bus), so no client gets a message twice from its gateway.
 *
 * Worker thread only (the channel's owner).
 */
#include "fanout_int.h"

#include <shockwave/log.h>

#include <stdlib.h>
#include <string.h>

/* "PREFIXd:UP:KEY" from the channel key "UP\x1fKEY"; *kind_at: where the
 * d is. NULL without memory. */
static char *
names_of(const struct fo_bus_conf *c, const char *key, size_t key_len,
         size_t *len, size_t *kind_at)
{
    size_t pl = c->prefix_len;
    char *n = malloc(pl + 2 + key_len + 1);
    if (n == NULL) {
        return NULL;
    }
    memcpy(n, c->prefix, pl);
    n[pl] = 'd';
    n[pl + 1] = ':';
    memcpy(n + pl + 2, key, key_len);
    char *sep = memchr(n + pl + 2, '\x1f', key_len);
    if (sep != NULL) {
        *sep = ':';
    }
    n[pl + 2 + key_len] = '\0';
    *len = pl + 2 + key_len;
    *kind_at = pl;
    return n;
}

/* A message from the bus as one frame toward clients: a block of its own,
 * its header right before the payload. */
static bool
frame_of(struct sw_fanout *f, uint8_t opcode, const uint8_t *p, size_t n,
         struct fo_slice *s)
{
    struct fo_block *b = fo_block_get(f, FO_HEAD_ROOM + n);
    if (b == NULL) {
        sw_metrics_inc(f->metrics, SW_METRIC_OUT_OF_MEMORY);
        return false;
    }
    if (n > 0) {
        memcpy(b->data + FO_HEAD_ROOM, p, n);
    }
    *s = fo_frame_head(b, FO_HEAD_ROOM, opcode, NULL, (uint32_t)n);
    return true;
}

static bool
data_opcode(uint8_t op)
{
    return op == SW_WS_OP_TEXT || op == SW_WS_OP_BINARY;
}

static uint64_t
look_every(const struct sw_fanout *f)
{
    return SW_MAX(f->hub->bus->lease_ms / 3, (uint64_t)FO_SWEEP_MS);
}

bool
fo_hold_start(struct sw_fanout *f, struct fo_chan *ch)
{
    struct fo_hold *h = &ch->hold;
    if (f->bus == NULL) {
        h->role = FO_ROLE_LOCAL;
        fo_upstream_connect(ch);
        return true;
    }
    h->names =
        names_of(f->hub->bus, ch->key, ch->key_len, &h->names_len, &h->kind_at);
    if (h->names == NULL) {
        return false;
    }
    h->open_by_ms = sw_now_ms() + ch->connect_timeout_ms + ch->read_timeout_ms;
    fo_bus_subscribe(f->bus, ch, 'd'); /* into the map, up or not */
    if (fo_bus_up(f->bus)) {
        h->role = FO_ROLE_ASKING;
        fo_bus_look(f->bus, ch);
    } else {
        h->role = FO_ROLE_ALONE;
        fo_upstream_connect(ch);
    }
    return true;
}

/* Another gateway holds the lease: close ours, deliver the bus. */
static void
step_down(struct sw_fanout *f, struct fo_chan *ch)
{
    sw_log_info("fanout channel \"%s\": another gateway holds the upstream; "
                "following it on the bus",
                ch->name);
    fo_upstream_stop(f, ch);
    fo_bus_unsubscribe(f->bus, ch, 'u');
    fo_bus_unsubscribe(f->bus, ch, 'p');
    fo_bus_subscribe(f->bus, ch, 'd');
    sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_BUS_STEPDOWNS);
}

/* The holder's value "ID|STATE|PROTO": a follower's channel opens once the
 * holder's upstream did, with its subprotocol. */
static void
follow(struct sw_fanout *f, struct fo_chan *ch, const char *v, size_t n)
{
    const char *bar = memchr(v, '|', n);
    if (bar == NULL || (size_t)(bar - v) + 3 > n || bar[2] != '|') {
        return; /* not a gateway's value: wait for a better one */
    }
    if (ch->state != FO_CONNECTING || bar[1] != '1') {
        return;
    }
    char proto[sizeof(ch->protocol)];
    size_t pl = SW_MIN(n - (size_t)(bar + 3 - v), sizeof(proto) - 1);
    memcpy(proto, bar + 3, pl);
    proto[pl] = '\0';
    ch->up.ever_open = true; /* a take-over keeps this subprotocol */
    fo_chan_set_state(f, ch, FO_OPEN, proto);
    sw_log_info("fanout channel \"%s\": following the holder on the bus",
                ch->name);
    fo_chan_announce(f, ch, 0);
}

void
fo_hold_looked(struct sw_fanout *f, struct fo_chan *ch, bool held,
               const char *value, size_t value_len, long long numsub)
{
    struct fo_hold *h = &ch->hold;
    uint64_t now = sw_now_ms();
    if (numsub >= 0) {
        long long own = (h->subs & fo_sub_bit('d')) ? 1 : 0;
        h->remote = numsub > own ? (uint64_t)(numsub - own) : 0;
    }
    h->next_look_ms = h->relook ? 0 : now + look_every(f);
    h->relook = false;
    if (h->role == FO_ROLE_LOCAL || ch->state == FO_GONE) {
        return;
    }
    if (held) {
        if (h->role == FO_ROLE_HOLDER) {
            return;
        }
        enum fo_role was = h->role;
        h->role = FO_ROLE_HOLDER;
        sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_BUS_HOLDS);
        fo_bus_subscribe(f->bus, ch, 'u');
        fo_bus_subscribe(f->bus, ch, 'p');
        fo_bus_unsubscribe(f->bus, ch, 'd'); /* its own upstream now */
        if (was == FO_ROLE_FOLLOWER) {
            sw_log_info("fanout channel \"%s\": the holder's lease lapsed; "
                        "this gateway takes the upstream over",
                        ch->name);
        }
        if (was != FO_ROLE_ALONE) {
            fo_upstream_connect(ch); /* ALONE has its own already */
        }
        return;
    }
    if (h->role == FO_ROLE_HOLDER || h->role == FO_ROLE_ALONE) {
        step_down(f, ch);
    }
    h->role = FO_ROLE_FOLLOWER;
    follow(f, ch, value, value_len);
    if (ch->state == FO_CONNECTING) {
        h->next_look_ms = now + FO_SWEEP_MS; /* waiting for its 101 */
    }
}

bool
fo_hold_tick(struct sw_fanout *f, struct fo_chan *ch, uint64_t now)
{
    struct fo_hold *h = &ch->hold;
    if (h->role == FO_ROLE_LOCAL || h->role == FO_ROLE_ALONE) {
        return true;
    }
    if (h->role == FO_ROLE_ASKING && now >= h->open_by_ms) {
        /* the lease script keeps failing (an ACL without EVAL, say):
         * serve this gateway's clients on its own */
        sw_log_warn("fanout channel \"%s\": no answer from the lease on the "
                    "bus in time; this gateway connects its own upstream",
                    ch->name);
        h->role = FO_ROLE_ALONE;
        fo_upstream_connect(ch);
        return true;
    }
    if (h->role == FO_ROLE_FOLLOWER && ch->state == FO_CONNECTING &&
        now >= h->open_by_ms) {
        sw_log_warn("fanout channel \"%s\": the holding gateway's upstream "
                    "did not open in time; its clients get 502",
                    ch->name);
        fo_chan_fail(f, ch, 502);
        return false;
    }
    if (now >= h->next_look_ms) {
        fo_bus_look(f->bus, ch);
    }
    return true;
}

bool
fo_hold_busy(const struct fo_chan *ch)
{
    return ch->hold.role == FO_ROLE_HOLDER && ch->hold.remote > 0;
}

/* The channel ended on the holder: the followers end it too. */
static void
ended_elsewhere(struct sw_fanout *f, struct fo_chan *ch, const uint8_t *p,
                size_t n)
{
    uint16_t code = n >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 1011;
    sw_log_info("fanout channel \"%s\": ended by its holder (%u)", ch->name,
                code);
    fo_chan_fail(f, ch, code);
}

/* A message for this gateway's clients (and, on the holder, for the
 * followers' too). */
static void
deliver(struct sw_fanout *f, struct fo_chan *ch, uint8_t op, const uint8_t *p,
        size_t n, bool to_followers)
{
    struct fo_slice s;
    if (!frame_of(f, op, p, n, &s)) {
        return;
    }
    fo_fanout_message(f, ch, s);
    fo_block_unref(f, s.b);
    if (to_followers) {
        (void)fo_bus_publish(f->bus, ch, 'd', op, p, n);
    }
}

void
fo_hold_message(struct sw_fanout *f, struct fo_chan *ch, char kind,
                const uint8_t *msg, size_t len)
{
    struct fo_hold *h = &ch->hold;
    uint8_t op = msg[0];
    const uint8_t *p = msg + 1;
    size_t n = len - 1;
    if (h->ended || ch->state == FO_GONE) {
        return;
    }
    bool holder = h->role == FO_ROLE_HOLDER;
    if (kind == 'd' && op == SW_WS_OP_CLOSE) {
        if (h->role == FO_ROLE_FOLLOWER) {
            ended_elsewhere(f, ch, p, n);
        }
        return;
    }
    if (!data_opcode(op) || n > ch->max_message) {
        return;
    }
    if (kind == 'd' && h->role == FO_ROLE_FOLLOWER) {
        sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_BUS_RECEIVED);
        deliver(f, ch, op, p, n, false);
    } else if (kind == 'p' && holder) {
        /* published by anyone: in the holder's order for every gateway */
        sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_BUS_RECEIVED);
        deliver(f, ch, op, p, n, true);
    } else if (kind == 'u' && holder) {
        struct fo_block *b = fo_block_get(f, FO_HEAD_ROOM + n);
        if (b == NULL) {
            sw_metrics_inc(f->metrics, SW_METRIC_OUT_OF_MEMORY);
            return;
        }
        if (n > 0) {
            memcpy(b->data + FO_HEAD_ROOM, p, n);
        }
        sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_BUS_RECEIVED);
        fo_upstream_send(f, ch, (struct fo_slice){b, 0, FO_HEAD_ROOM + n}, op);
        fo_block_unref(f, b);
    }
}

void
fo_hold_upstream_open(struct sw_fanout *f, struct fo_chan *ch)
{
    /* the followers learn it is open: now, or after the look in flight */
    if (ch->hold.role == FO_ROLE_HOLDER && !fo_bus_look(f->bus, ch)) {
        ch->hold.relook = true;
    }
}

void
fo_hold_from_upstream(struct sw_fanout *f, struct fo_chan *ch,
                      struct fo_slice s)
{
    if (ch->hold.role == FO_ROLE_ALONE) {
        /* the bus is down: the other gateways read their own upstreams */
        sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_BUS_UNSENT);
        return;
    }
    if (ch->hold.role != FO_ROLE_HOLDER) {
        return;
    }
    const uint8_t *fr = s.b->data + s.off;
    uint8_t len7 = fr[1] & 0x7f;
    uint32_t h = len7 == 127 ? 10u : len7 == 126 ? 4u : 2u;
    (void)fo_bus_publish(f->bus, ch, 'd', fr[0] & 0x0f, fr + h, s.len - h);
}

bool
fo_hold_to_upstream(struct sw_fanout *f, struct fo_chan *ch, struct fo_slice s,
                    uint8_t opcode)
{
    enum fo_role r = ch->hold.role;
    if (r != FO_ROLE_FOLLOWER && r != FO_ROLE_ASKING) {
        return false;
    }
    bool sent =
        r == FO_ROLE_FOLLOWER &&
        fo_bus_publish(f->bus, ch, 'u', opcode,
                       s.b->data + s.off + FO_HEAD_ROOM, s.len - FO_HEAD_ROOM);
    sw_metrics_inc(f->metrics, sent ? SW_METRIC_FANOUT_CLIENT_FORWARDED
                                    : SW_METRIC_FANOUT_CLIENT_DROPPED);
    return true;
}

void
fo_hold_announce(struct sw_fanout *f, struct fo_chan *ch, uint16_t code)
{
    if (ch->hold.role == FO_ROLE_HOLDER && code != 0) {
        uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        (void)fo_bus_publish(f->bus, ch, 'd', SW_WS_OP_CLOSE, p, 2);
    }
}

void
fo_hold_end(struct sw_fanout *f, struct fo_chan *ch)
{
    struct fo_hold *h = &ch->hold;
    if (h->ended) {
        return;
    }
    h->ended = true;
    if (f->bus == NULL || h->names == NULL) {
        return;
    }
    fo_bus_unsubscribe(f->bus, ch, 'd');
    fo_bus_unsubscribe(f->bus, ch, 'u');
    fo_bus_unsubscribe(f->bus, ch, 'p');
    fo_bus_forget(f->bus, ch);
    if (h->role == FO_ROLE_HOLDER) {
        fo_bus_release(f->bus, ch); /* a follower takes over at once */
    }
}

void
fo_hold_bus_down(struct sw_fanout *f)
{
    for (struct fo_chan *ch = f->owned; ch != NULL; ch = ch->own_next) {
        struct fo_hold *h = &ch->hold;
        if (h->role == FO_ROLE_LOCAL || h->ended) {
            continue;
        }
        h->subs = 0; /* that connection is gone */
        enum fo_role was = h->role;
        h->role = FO_ROLE_ALONE;
        if (was == FO_ROLE_FOLLOWER || was == FO_ROLE_ASKING) {
            sw_log_info("fanout channel \"%s\": the bus is down; this "
                        "gateway connects its own upstream",
                        ch->name);
            fo_upstream_connect(ch);
        }
    }
}

void
fo_hold_bus_up(struct sw_fanout *f)
{
    for (struct fo_chan *ch = f->owned; ch != NULL; ch = ch->own_next) {
        struct fo_hold *h = &ch->hold;
        if (h->role == FO_ROLE_LOCAL || h->ended) {
            continue;
        }
        fo_bus_subscribe(f->bus, ch, 'd');
        fo_bus_look(f->bus, ch); /* ALONE until it answers */
    }
}

/* ---- publishes from other threads ---------------------------------------- */

static void
publish_one(struct sw_fanout *f, struct fo_pub *p)
{
    const uint8_t *pay = p->data + p->key_len;
    struct fo_chan *ch = p->ch;
    if (ch != NULL && ch->state != FO_GONE && !ch->hold.ended) {
        enum fo_role r = ch->hold.role;
        if (r == FO_ROLE_FOLLOWER || r == FO_ROLE_ASKING) {
            /* through the holder, which gives every gateway one order */
            (void)fo_bus_publish(f->bus, ch, 'p', p->opcode, pay, p->len);
        } else {
            deliver(f, ch, p->opcode, pay, p->len, r == FO_ROLE_HOLDER);
        }
        return;
    }
    if (f->bus == NULL) {
        return; /* no channel here and no bus: nobody to tell */
    }
    size_t nlen, at;
    char *name =
        names_of(f->hub->bus, (const char *)p->data, p->key_len, &nlen, &at);
    if (name == NULL) {
        sw_metrics_inc(f->metrics, SW_METRIC_OUT_OF_MEMORY);
        return;
    }
    name[at] = 'p';
    (void)fo_bus_publish_name(f->bus, name, nlen, p->opcode, pay, p->len);
    free(name);
}

void
fo_hold_drain_inbox(struct sw_fanout *f)
{
    struct fo_inbox *in = &f->hub->inbox[f->id];
    pthread_mutex_lock(&in->lock);
    struct fo_pub *p = in->first;
    in->first = in->last = NULL;
    pthread_mutex_unlock(&in->lock);
    while (p != NULL) {
        struct fo_pub *next = p->next;
        if (!f->draining) {
            publish_one(f, p);
        }
        if (p->ch != NULL) {
            fo_chan_unref(f, p->ch);
        }
        free(p);
        p = next;
    }
}
