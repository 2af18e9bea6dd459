/*
 * fanout_upstream.c - a channel's upstream WebSocket, on its owner:
 *
 *   fo_upstream_start, connect_next     pick a server, connect (TLS too)
 *   send_head, read_101                 the request head, the 101
 *   read_frames, on_frame               frames in: a whole unfragmented
 *                                       message is sent on as the bytes it
 *                                       came in; fragments are joined
 *   fo_upstream_send                    client messages out, masked
 *   lost, fo_upstream_tick              reconnect with backoff, linger
 *   fo_upstream_end                     the channel's end
 *
 * Reading: frames are read into a block; a frame still arriving at the
 * block's end moves, with what came of it, to a new block large enough
 * for it, so every frame sits whole in one block and its slice is what
 * every client sends.
 */
#include "fanout_int.h"

#include <shockwave/http.h>
#include <shockwave/log.h>
#include <shockwave/tls.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void on_up_read(struct sw_conn *c, void *arg);
static void on_up_write(struct sw_conn *c, void *arg);
static void on_up_timer(struct sw_conn *c, void *arg);

static const struct sw_conn_handlers up_handlers = {
    .on_read = on_up_read,
    .on_write = on_up_write,
    .on_timer = on_up_timer,
};

static void connect_next(struct sw_fanout *f, struct fo_chan *ch);

static const char *
server_name(const struct fo_chan *ch)
{
    return ch->up.peer != NULL ? ch->up.peer->server->text.p : "-";
}

/* Drop the connection (not the channel): buffers, blocks, queue. */
static void
drop_conn(struct sw_fanout *f, struct fo_chan *ch)
{
    struct fo_upstream *u = &ch->up;
    sw_conn_close(&u->conn);
    fo_outq_clear(f, &u->out);
    if (u->blk != NULL) {
        fo_block_unref(f, u->blk);
        u->blk = NULL;
    }
    if (u->join != NULL) {
        fo_block_unref(f, u->join);
        u->join = NULL;
    }
    u->blk_len = u->blk_pos = 0;
    u->join_len = 0;
    if (u->peer != NULL) {
        u->peer->active--;
        u->peer = NULL;
    }
    u->phase = FO_UP_IDLE;
}

void
fo_upstream_end(struct sw_fanout *f, struct fo_chan *ch, uint16_t code)
{
    struct fo_upstream *u = &ch->up;
    fo_hold_end(f, ch);
    if (code != 0 && u->phase == FO_UP_OPEN) {
        uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        if (fo_outq_control(&u->out, SW_WS_OP_CLOSE, payload, 2, f->rng)) {
            (void)fo_outq_flush(f, &u->conn, &u->out); /* best effort */
        }
    }
    drop_conn(f, ch);
    fo_outq_fini(f, &u->out);
    free(u->head);
    u->head = NULL;
    if (u->release != NULL) {
        u->release(u->release_arg);
        u->release = NULL;
    }
    if (ch->own_prev != NULL) {
        ch->own_prev->own_next = ch->own_next;
    } else {
        f->owned = ch->own_next;
    }
    if (ch->own_next != NULL) {
        ch->own_next->own_prev = ch->own_prev;
    }
    ch->own_prev = ch->own_next = NULL;
    f->nowned--;
    fo_chan_unref(f, ch); /* the owner's reference */
    fo_check_empty(f);
}

void
fo_chan_fail(struct sw_fanout *f, struct fo_chan *ch, uint16_t code)
{
    fo_chan_set_state(f, ch, FO_GONE, NULL);
    fo_chan_announce(f, ch, code);
    fo_upstream_end(f, ch, 0);
}

/* The upstream is gone while the channel lives: retry, or end it. */
static void
lost(struct sw_fanout *f, struct fo_chan *ch, const char *why)
{
    struct fo_upstream *u = &ch->up;
    bool was_open = u->phase == FO_UP_OPEN || u->phase == FO_UP_CLOSING;
    sw_log_warn("fanout channel \"%s\": upstream %s: %s", ch->name,
                server_name(ch), why);
    if (was_open) {
        sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_UPSTREAM_LOSSES);
    }
    drop_conn(f, ch);
    if (!ch->reconnect || f->draining) {
        fo_chan_fail(f, ch, SW_WS_CLOSE_INTERNAL);
        return;
    }
    fo_chan_set_state(f, ch, FO_RETRY, NULL);
    u->backoff_ms = u->backoff_ms == 0 ? FO_BACKOFF_MIN_MS
                                       : SW_MIN(u->backoff_ms * 2,
                                                (uint64_t)FO_BACKOFF_MAX_MS);
    u->retry_at_ms = sw_now_ms() + u->backoff_ms;
    fo_sweep_arm(f);
}

/* Every server failed this round. */
static void
round_failed(struct sw_fanout *f, struct fo_chan *ch)
{
    struct fo_upstream *u = &ch->up;
    u->tried = 0;
    if (!u->ever_open) {
        sw_log_warn("fanout channel \"%s\": no upstream server answered the "
                    "upgrade; its clients get 502",
                    ch->name);
        fo_chan_fail(f, ch, 502);
        fo_end_turn(f);
        return;
    }
    lost(f, ch, "no server reachable");
    fo_end_turn(f);
}

/* This server failed: the next one, else the round is over. */
static void
server_failed(struct sw_fanout *f, struct fo_chan *ch, const char *why)
{
    struct fo_upstream *u = &ch->up;
    sw_log_warn("fanout channel \"%s\": upstream %s: %s", ch->name,
                server_name(ch), why);
    if (u->peer != NULL) {
        sw_upstream_report(u->peer, false);
    }
    drop_conn(f, ch);
    connect_next(f, ch);
}

static void
connect_next(struct sw_fanout *f, struct fo_chan *ch)
{
    struct fo_upstream *u = &ch->up;
    for (;;) {
        struct sw_upstream_peer *peer =
            sw_upstream_pick(u->ups, (struct sw_str){"", 0}, u->tried);
        if (peer == NULL) {
            round_failed(f, ch);
            return;
        }
        sw_upstream_tried_add(&u->tried, peer->index);
        struct sw_io io = {.fd = sw_upstream_connect(peer),
                           .ops = &sw_io_plain};
        if (io.fd < 0) {
            sw_upstream_report(peer, false);
            continue;
        }
        u->peer = peer;
        peer->active++;
        sw_conn_attach(&u->conn, &io);
        u->phase = FO_UP_CONNECT;
        u->head_sent = 0;
        sw_conn_watch(&u->conn, false, true);
        sw_conn_timer(&u->conn, ch->connect_timeout_ms);
        return;
    }
}

void
fo_upstream_start(struct sw_fanout *f, struct fo_chan *ch)
{
    struct fo_upstream *u = &ch->up;
    if (!f->prefilled) {
        f->prefilled = true;
        fo_pool_prefill(f);
    }
    sw_conn_init(&u->conn, "upstream", f->base, f->bufs, &up_handlers, ch);
    sw_ws_msg_init(&u->msg, ch->max_message);
    if (!fo_hold_start(f, ch)) {
        sw_metrics_inc(f->metrics, SW_METRIC_OUT_OF_MEMORY);
        ch->hold.role = FO_ROLE_LOCAL; /* no bus names: this gateway alone */
        connect_next(f, ch);
    }
}

void
fo_upstream_connect(struct fo_chan *ch)
{
    struct fo_upstream *u = &ch->up;
    if (u->phase != FO_UP_IDLE) {
        return;
    }
    u->tried = 0;
    u->retry_at_ms = 0;
    connect_next(ch->f, ch);
}

void
fo_upstream_stop(struct sw_fanout *f, struct fo_chan *ch)
{
    struct fo_upstream *u = &ch->up;
    if (u->phase == FO_UP_OPEN) {
        uint8_t payload[2] = {SW_WS_CLOSE_NORMAL >> 8,
                              SW_WS_CLOSE_NORMAL & 0xff};
        if (fo_outq_control(&u->out, SW_WS_OP_CLOSE, payload, 2, f->rng)) {
            (void)fo_outq_flush(f, &u->conn, &u->out); /* best effort */
        }
    }
    drop_conn(f, ch);
    u->retry_at_ms = 0;
    u->backoff_ms = 0;
    u->tried = 0;
    if (ch->state == FO_RETRY) {
        fo_chan_set_state(f, ch, FO_OPEN, NULL);
    }
}

/* ---- connect, head, 101 ------------------------------------------------ */

static void
send_head(struct sw_fanout *f, struct fo_chan *ch)
{
    struct fo_upstream *u = &ch->up;
    struct sw_buf b = {.pos = (uint8_t *)u->head + u->head_sent,
                       .last = (uint8_t *)u->head + u->head_len};
    ssize_t n = sw_conn_send_buf(&u->conn, &b);
    if (n < 0) {
        server_failed(f, ch, "send failed");
        return;
    }
    u->head_sent += (size_t)n;
    bool done = u->head_sent == u->head_len;
    sw_conn_watch(&u->conn, done, !done);
}

static void
connected(struct sw_fanout *f, struct fo_chan *ch)
{
    struct fo_upstream *u = &ch->up;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(u->conn.io.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
    }
    if (err != 0) {
        server_failed(f, ch, strerror(err));
        return;
    }
    if (u->peer->server->tls && u->conn.io.ops == &sw_io_plain &&
        sw_tls_client_attach(u->tls, u->ups->cf, u->peer->server,
                             &u->conn.io) != SW_OK) {
        server_failed(f, ch, "cannot start TLS");
        return;
    }
    if (u->conn.io.ops->handshake != NULL) {
        enum sw_status st = u->conn.io.ops->handshake(&u->conn.io);
        if (st == SW_AGAIN) {
            bool wr = u->conn.io.want == SW_IO_WANT_WRITE;
            sw_conn_watch(&u->conn, !wr, wr);
            return;
        }
        if (st != SW_OK) {
            server_failed(f, ch, "TLS handshake failed");
            return;
        }
    }
    u->phase = FO_UP_HANDSHAKE;
    sw_conn_timer(&u->conn, ch->read_timeout_ms);
    send_head(f, ch);
}

/* The frames behind the 101 go to the first block. */
static bool
open_block(struct sw_fanout *f, struct fo_chan *ch, const uint8_t *p, size_t n)
{
    struct fo_upstream *u = &ch->up;
    u->blk = fo_block_get(f, SW_MAX((size_t)FO_READ_BLOCK, n));
    if (u->blk == NULL) {
        return false;
    }
    memcpy(u->blk->data, p, n);
    u->blk_len = (uint32_t)n;
    u->blk_pos = 0;
    return true;
}

static void read_frames(struct sw_fanout *f, struct fo_chan *ch);

static void
opened(struct sw_fanout *f, struct fo_chan *ch, const char *protocol)
{
    struct fo_upstream *u = &ch->up;
    u->phase = FO_UP_OPEN;
    u->tried = 0;
    u->backoff_ms = 0;
    u->last_rx_ms = u->last_ping_ms = sw_now_ms();
    sw_upstream_report(u->peer, true);
    sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_UPSTREAM_CONNECTS);
    sw_conn_timer(&u->conn, 0);
    sw_ws_msg_init(&u->msg, ch->max_message);
    bool first = !u->ever_open;
    u->ever_open = true;
    fo_chan_set_state(f, ch, FO_OPEN, first ? protocol : NULL);
    if (first) {
        sw_log_info("fanout channel \"%s\": upstream %s open", ch->name,
                    server_name(ch));
        fo_chan_announce(f, ch, 0);
    } else {
        sw_log_info("fanout channel \"%s\": upstream %s open again", ch->name,
                    server_name(ch));
    }
    sw_conn_watch(&u->conn, true, !fo_outq_empty(&u->out));
    fo_hold_upstream_open(f, ch);
}

static void
read_101(struct sw_fanout *f, struct fo_chan *ch)
{
    struct fo_upstream *u = &ch->up;
    struct sw_conn *c = &u->conn;
    ssize_t n = sw_conn_read(c);
    if (n == SW_AGAIN) {
        sw_conn_watch(c, true, false);
        return;
    }
    if (n <= 0) {
        server_failed(f, ch, "closed before the 101");
        return;
    }
    struct sw_http_header hdrs[128];
    struct sw_http_response resp = {.headers = hdrs,
                                    .headers_cap = SW_NELEMS(hdrs)};
    struct sw_http_limits lim = {.max_head = f->bufs->size,
                                 .max_request_line = f->bufs->size,
                                 .max_headers = SW_NELEMS(hdrs)};
    const char *why = NULL;
    enum sw_status st =
        sw_http_response_decode(&resp, (const char *)c->in->pos,
                                sw_buf_len(c->in), &lim, 1 /* GET */, &why);
    if (st == SW_AGAIN) {
        if (sw_buf_room(c->in) == 0) {
            server_failed(f, ch, "response head too large");
            return;
        }
        sw_conn_watch(c, true, false);
        return;
    }
    if (st != SW_OK || resp.status != 101) {
        char msg[96];
        snprintf(msg, sizeof(msg), "answered %u, not 101",
                 st == SW_OK ? resp.status : 0);
        server_failed(f, ch, st == SW_OK ? msg : why ? why : "bad head");
        return;
    }
    struct sw_str key = {u->ws_key, u->ws_key_len};
    if (sw_ws_handshake_check_response(&resp, key, &why) != SW_OK) {
        server_failed(f, ch, why != NULL ? why : "bad 101");
        return;
    }
    if (sw_http_find(resp.headers, resp.nheaders, "Sec-WebSocket-Extensions") !=
        NULL) {
        server_failed(f, ch, "101 with an extension that was not offered");
        return;
    }
    char proto[sizeof(ch->protocol)] = "";
    const struct sw_http_header *h =
        sw_http_find(resp.headers, resp.nheaders, "Sec-WebSocket-Protocol");
    if (h != NULL) {
        snprintf(proto, sizeof(proto), "%.*s", (int)h->value.len, h->value.p);
    }
    if (ch->up.ever_open && strcmp(proto, ch->protocol) != 0) {
        server_failed(f, ch, "reconnected with another subprotocol");
        return;
    }
    c->in->pos += resp.head_len;
    if (!open_block(f, ch, c->in->pos, sw_buf_len(c->in))) {
        server_failed(f, ch, "out of memory");
        return;
    }
    sw_conn_buf_release(c, &c->in);
    opened(f, ch, proto);
    read_frames(f, ch);
}

/* ---- frames in --------------------------------------------------------- */

static void
queue_control(struct sw_fanout *f, struct fo_chan *ch, uint8_t opcode,
              const uint8_t *payload, size_t len)
{
    /* full: dropped */
    (void)fo_outq_control(&ch->up.out, opcode, payload, len, f->rng);
}

/* The upstream broke the protocol: close `code` to it (best effort), then
 * the connection is lost. */
static void
refuse(struct sw_fanout *f, struct fo_chan *ch, uint16_t code, const char *why)
{
    uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    queue_control(f, ch, SW_WS_OP_CLOSE, payload, 2);
    (void)fo_outq_flush(f, &ch->up.conn, &ch->up.out);
    lost(f, ch, why);
}

/* Append a fragment's payload to the message being joined. */
static bool
join_append(struct sw_fanout *f, struct fo_chan *ch, const uint8_t *p, size_t n)
{
    struct fo_upstream *u = &ch->up;
    size_t need = FO_HEAD_ROOM + u->join_len + n;
    if (u->join == NULL || u->join->cap < need) {
        size_t had = u->join != NULL ? u->join->cap : 0;
        struct fo_block *b = fo_block_get(f, SW_MAX(need, 2 * had));
        if (b == NULL) {
            return false;
        }
        if (u->join != NULL) {
            memcpy(b->data + FO_HEAD_ROOM, u->join->data + FO_HEAD_ROOM,
                   u->join_len);
            fo_block_unref(f, u->join);
        }
        u->join = b;
    }
    memcpy(u->join->data + FO_HEAD_ROOM + u->join_len, p, n);
    u->join_len += (uint32_t)n;
    return true;
}

/* The joined message as one frame: its header right before its payload. */
static void
join_emit(struct sw_fanout *f, struct fo_chan *ch, uint8_t opcode)
{
    struct fo_upstream *u = &ch->up;
    struct fo_slice s =
        fo_frame_head(u->join, FO_HEAD_ROOM, opcode, NULL, u->join_len);
    fo_fanout_message(f, ch, s);
    fo_hold_from_upstream(f, ch, s);
    fo_block_unref(f, u->join); /* the queues hold it now */
    u->join = NULL;
    u->join_len = 0;
}

/* One whole frame at p. False when the connection was dropped. */
static bool
on_frame(struct sw_fanout *f, struct fo_chan *ch, const struct sw_ws_frame *fr,
         uint32_t off)
{
    struct fo_upstream *u = &ch->up;
    const uint8_t *pay = u->blk->data + off + fr->header_len;
    size_t plen = (size_t)fr->payload_len;
    if (sw_ws_msg_check(&u->msg, fr) != SW_OK) {
        refuse(f, ch, u->msg.close_code,
               u->msg.why != NULL ? u->msg.why : "bad message");
        return false;
    }
    switch (fr->opcode) {
    case SW_WS_OP_PING:
        queue_control(f, ch, SW_WS_OP_PONG, pay, plen);
        sw_metrics_inc(f->metrics, SW_METRIC_WS_PINGS_ANSWERED);
        return true;
    case SW_WS_OP_PONG:
        return true;
    case SW_WS_OP_CLOSE: {
        /* answered with the same code, then the channel reconnects */
        queue_control(f, ch, SW_WS_OP_CLOSE, pay, SW_MIN(plen, (size_t)2));
        (void)fo_outq_flush(f, &u->conn, &u->out);
        lost(f, ch, "sent a close frame");
        return false;
    }
    default:
        break;
    }
    if (fr->fin && fr->opcode != SW_WS_OP_CONT && u->join == NULL) {
        /* the common case: the frame as it came */
        struct fo_slice s = {u->blk, off, (uint32_t)(fr->header_len + plen)};
        fo_fanout_message(f, ch, s);
        fo_hold_from_upstream(f, ch, s);
        return true;
    }
    if (!join_append(f, ch, pay, plen)) {
        sw_metrics_inc(f->metrics, SW_METRIC_OUT_OF_MEMORY);
        lost(f, ch, "out of memory joining a fragmented message");
        return false;
    }
    if (fr->fin) {
        join_emit(f, ch, u->msg.opcode);
    }
    return true;
}

/* Walk the whole frames in the block. False when the connection went. */
static bool
walk(struct sw_fanout *f, struct fo_chan *ch)
{
    struct fo_upstream *u = &ch->up;
    for (;;) {
        uint32_t avail = u->blk_len - u->blk_pos;
        if (avail == 0) {
            return true;
        }
        struct sw_ws_decoder dec;
        sw_ws_decoder_init(&dec, SW_WS_PEER_SERVER, 0, ch->max_frame);
        struct sw_ws_frame fr;
        ssize_t n =
            sw_ws_frame_decode(&dec, u->blk->data + u->blk_pos, avail, &fr);
        if (n == SW_AGAIN) {
            return true;
        }
        if (n < 0) {
            refuse(f, ch, dec.close_code,
                   dec.why != NULL ? dec.why : "bad frame");
            return false;
        }
        uint64_t total = fr.header_len + fr.payload_len;
        if (total > avail) {
            return true;
        }
        uint32_t off = u->blk_pos;
        u->blk_pos += (uint32_t)total;
        if (!on_frame(f, ch, &fr, off)) {
            return false;
        }
    }
}

/* Room to read into: a new block when the current one is nearly full,
 * the frame in progress moved to it. */
static bool
make_room(struct sw_fanout *f, struct fo_chan *ch)
{
    struct fo_upstream *u = &ch->up;
    uint32_t part = u->blk_len - u->blk_pos;
    size_t frame = 0; /* the frame in progress, once its header is in */
    if (part >= 2) {
        struct sw_ws_decoder dec;
        sw_ws_decoder_init(&dec, SW_WS_PEER_SERVER, 0, ch->max_frame);
        struct sw_ws_frame fr;
        if (sw_ws_frame_decode(&dec, u->blk->data + u->blk_pos, part, &fr) >=
            0) {
            frame = (size_t)(fr.header_len + fr.payload_len);
        }
    }
    size_t need = SW_MAX((size_t)FO_READ_BLOCK, frame);
    /* every slice of the block was sent and no ring holds one: read into
     * it from its start again, so clients that keep up cycle one block
     * (a block of a larger class, taken for one large frame, is given up
     * instead once that frame is through) */
    bool larger = u->blk->cls > FO_READ_CLASS && need <= FO_READ_BLOCK;
    if (part == 0 && !larger &&
        atomic_load_explicit(&u->blk->refs, memory_order_acquire) == 1) {
        u->blk_len = u->blk_pos = 0;
    }
    /* a block that clients still read from is filled on: a new one only
     * when the frame in progress would not end inside it */
    bool fits = (size_t)u->blk_pos + frame <= u->blk->cap;
    if (larger && part == 0) {
        fits = false; /* back to the smallest class */
    }
    if (fits && u->blk->cap - u->blk_len >= FO_BLOCK_SLACK) {
        return true;
    }
    struct fo_block *b = fo_block_get(f, need);
    if (b == NULL) {
        return false;
    }
    memcpy(b->data, u->blk->data + u->blk_pos, part);
    fo_block_unref(f, u->blk);
    u->blk = b;
    u->blk_len = part;
    u->blk_pos = 0;
    return true;
}

/* Reads per event at most, so one busy channel cannot hold the loop.
 * What is left waits for the next poll: the read interest is level
 * triggered, so the socket is reported again after the other sockets had
 * their turn (an event activated from here would run before any poll and
 * starve the listeners under a flood). Decrypted bytes a TLS transport
 * still holds after the last read are taken by a 1 ms timer, which runs
 * after the next poll, for the same reason. */
#define FO_READS_PER_EVENT 16

static void
read_frames(struct sw_fanout *f, struct fo_chan *ch)
{
    struct fo_upstream *u = &ch->up;
    if (!walk(f, ch)) {
        return;
    }
    bool capped = true;
    for (int i = 0; i < FO_READS_PER_EVENT; i++) {
        if (!make_room(f, ch)) {
            sw_metrics_inc(f->metrics, SW_METRIC_OUT_OF_MEMORY);
            lost(f, ch, "out of memory");
            return;
        }
        ssize_t n = sw_conn_recv_into(&u->conn, u->blk->data + u->blk_len,
                                      u->blk->cap - u->blk_len);
        if (n == SW_AGAIN) {
            capped = false;
            break;
        }
        if (n <= 0) {
            lost(f, ch, n == 0 ? "closed the connection" : "connection reset");
            return;
        }
        u->blk_len += (uint32_t)n;
        u->last_rx_ms = sw_now_ms();
        if (!walk(f, ch)) {
            return;
        }
    }
    if (!fo_outq_empty(&u->out) && fo_outq_flush(f, &u->conn, &u->out) < 0) {
        lost(f, ch, "send failed");
        return;
    }
    bool held = capped && u->conn.io.ops->pending(&u->conn.io) > 0;
    if (held) {
        sw_conn_timer(&u->conn, 1);
    }
    sw_conn_watch(&u->conn, !held, !fo_outq_empty(&u->out));
}

/* ---- events ------------------------------------------------------------ */

/* Readable or writable: the next step of the connection's phase. */
static void
up_event(struct fo_chan *ch, bool readable)
{
    struct sw_fanout *f = ch->f;
    struct fo_upstream *u = &ch->up;
    switch (u->phase) {
    case FO_UP_CONNECT:
        connected(f, ch);
        break;
    case FO_UP_HANDSHAKE:
        if (readable && u->head_sent == u->head_len) {
            read_101(f, ch);
        } else {
            send_head(f, ch);
        }
        break;
    case FO_UP_OPEN:
        if (readable) {
            read_frames(f, ch);
        } else if (fo_outq_flush(f, &u->conn, &u->out) < 0) {
            lost(f, ch, "send failed");
        } else {
            sw_conn_watch(&u->conn, true, !fo_outq_empty(&u->out));
        }
        break;
    case FO_UP_IDLE:
    case FO_UP_CLOSING:
        break;
    }
    fo_end_turn(f);
}

static void
on_up_read(struct sw_conn *c, void *arg)
{
    SW_UNUSED(c);
    up_event(arg, true);
}

static void
on_up_write(struct sw_conn *c, void *arg)
{
    SW_UNUSED(c);
    up_event(arg, false);
}

static void
on_up_timer(struct sw_conn *c, void *arg)
{
    struct fo_chan *ch = arg;
    struct sw_fanout *f = ch->f;
    SW_UNUSED(c);
    if (ch->up.phase == FO_UP_CONNECT || ch->up.phase == FO_UP_HANDSHAKE) {
        server_failed(f, ch,
                      ch->up.phase == FO_UP_CONNECT ? "connect timed out"
                                                    : "no 101 in time");
    } else if (ch->up.phase == FO_UP_OPEN) {
        read_frames(f, ch); /* what TLS held at the read cap */
    }
    fo_end_turn(f);
}

/* ---- client messages out, the sweep ------------------------------------ */

void
fo_upstream_send(struct sw_fanout *f, struct fo_chan *ch, struct fo_slice s,
                 uint8_t opcode)
{
    struct fo_upstream *u = &ch->up;
    uint32_t plen = s.len - FO_HEAD_ROOM;
    if (fo_hold_to_upstream(f, ch, s, opcode)) {
        return; /* a follower's: to the holder, over the bus */
    }
    if (u->phase != FO_UP_OPEN || u->out.bytes + s.len > ch->backlog) {
        sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_CLIENT_DROPPED);
        return;
    }
    /* the block is this message's alone: framed and masked in place */
    uint8_t key[4];
    sw_ws_rng_key(f->rng, key);
    sw_ws_mask(s.b->data + s.off + FO_HEAD_ROOM, plen, key, 0);
    struct fo_slice framed =
        fo_frame_head(s.b, s.off + FO_HEAD_ROOM, opcode, key, plen);
    if (!fo_outq_push(f, &u->out, framed)) {
        sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_CLIENT_DROPPED);
        return;
    }
    sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_CLIENT_FORWARDED);
    if (fo_outq_flush(f, &u->conn, &u->out) < 0) {
        lost(f, ch, "send failed");
        return;
    }
    sw_conn_watch(&u->conn, true, !fo_outq_empty(&u->out));
}

void
fo_upstream_tick(struct sw_fanout *f, struct fo_chan *ch, uint64_t now)
{
    struct fo_upstream *u = &ch->up;
    if (!fo_hold_tick(f, ch, now)) {
        return;
    }
    /* a holder keeps the upstream for other gateways' clients too */
    size_t n = atomic_load_explicit(&ch->nclients, memory_order_relaxed);
    if (n > 0 || fo_hold_busy(ch)) {
        ch->linger_at_ms = 0;
    } else if (ch->linger_at_ms == 0) {
        ch->linger_at_ms = now + ch->linger_ms;
    }
    if (ch->linger_at_ms != 0 && now >= ch->linger_at_ms) {
        ch->linger_at_ms = 0;
        if (fo_chan_retire_if_empty(f, ch)) {
            sw_log_info("fanout channel \"%s\": no client for %llums, "
                        "upstream closed",
                        ch->name, (unsigned long long)ch->linger_ms);
            fo_upstream_end(f, ch, SW_WS_CLOSE_NORMAL);
            return;
        }
    }
    if (u->phase == FO_UP_IDLE && u->retry_at_ms != 0 &&
        now >= u->retry_at_ms) {
        u->retry_at_ms = 0;
        connect_next(f, ch);
        return;
    }
    if (u->phase == FO_UP_OPEN && ch->ping_interval_ms != 0 &&
        now - u->last_rx_ms >= ch->ping_interval_ms &&
        now - u->last_ping_ms >= ch->ping_interval_ms) {
        u->last_ping_ms = now;
        queue_control(f, ch, SW_WS_OP_PING, NULL, 0);
        if (fo_outq_flush(f, &u->conn, &u->out) < 0) {
            lost(f, ch, "send failed");
            return;
        }
        sw_conn_watch(&u->conn, true, !fo_outq_empty(&u->out));
    }
}
