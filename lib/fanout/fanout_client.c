/*
 * fanout_client.c - one client of a fan-out channel, on its own worker:
 *
 *   fo_client_new, fo_client_wait / _open / _accept_now / _fail
 *                            taken from its session; its 101 (or 400, 502)
 *   fo_client_queue          a message of the channel: the backlog bound
 *   fo_client_flush          the 101, control frames between messages,
 *                            then the shared slices, one sendmsg
 *   on_client_read, walk     its frames: pings answered, close answered,
 *                            data messages collected whole and sent to the
 *                            channel's upstream (or dropped)
 *   fo_client_tick           keepalive pings and the idle timeout
 *   fo_client_close / _end   the close handshake, the access log line
 */
#include "fanout_int.h"

#include <shockwave/log.h>

#include <stdlib.h>
#include <string.h>

static void on_client_read(struct sw_conn *c, void *arg);
static void on_client_write(struct sw_conn *c, void *arg);
static void on_client_timer(struct sw_conn *c, void *arg);

static const struct sw_conn_handlers client_handlers = {
    .on_read = on_client_read,
    .on_write = on_client_write,
    .on_timer = on_client_timer,
};

struct fo_client *
fo_client_new(struct sw_fanout *f, struct fo_chan *ch, struct sw_conn *from,
              const char *addr)
{
    struct fo_client *c = sw_slab_alloc(&f->client_slab);
    if (c == NULL) {
        return NULL;
    }
    memset(c, 0, sizeof(*c));
    c->f = f;
    sw_conn_init(&c->conn, "client", f->base, f->bufs, &client_handlers, c);
    struct sw_io io;
    sw_conn_detach(from, &io);
    sw_conn_attach(&c->conn, &io);
    c->conn.in = from->in; /* frames sent behind the request head */
    from->in = NULL;
    sw_ws_decoder_init(&c->dec, SW_WS_PEER_CLIENT, 0, ch->max_frame);
    sw_ws_msg_init(&c->msg, ch->max_message);
    c->started_ms = c->last_rx_ms = c->last_ping_ms = sw_now_ms();
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    c->all_next = f->clients;
    if (f->clients != NULL) {
        f->clients->all_prev = c;
    }
    f->clients = c;
    f->nclients++;
    sw_metrics_add(f->metrics, SW_METRIC_FANOUT_CLIENTS, 1);
    return c;
}

/* ---- answers ----------------------------------------------------------- */

/* The head goes to conn.out, sent before any frame. */
static void
write_head(struct fo_client *c, const char *head, size_t n)
{
    if (sw_conn_out_room(&c->conn) < n) {
        fo_client_end(c);
        return;
    }
    sw_buf_append(c->conn.out, head, n);
    fo_mark_dirty(c);
}

static void
write_101(struct fo_client *c, const char *accept, const char *protocol)
{
    char head[512];
    int n =
        snprintf(head, sizeof(head),
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                 accept, protocol[0] != '\0' ? "Sec-WebSocket-Protocol: " : "",
                 protocol, protocol[0] != '\0' ? "\r\n" : "");
    c->state = FO_C_OPEN;
    write_head(c, head, (size_t)n);
}

/* An HTTP answer of our own, then the connection ends. */
static void
write_refusal(struct fo_client *c, unsigned status, const char *reason)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %u %s\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%u %s\n",
                     status, reason, strlen(reason) + 5, status, reason);
    fo_client_unlink(c);
    c->state = FO_C_CLOSING;
    c->closed_by = "gateway";
    c->close_received = true; /* nothing to wait for */
    write_head(c, head, (size_t)n);
}

void
fo_client_wait(struct fo_client *c, struct sw_str client_key,
               struct sw_str offered)
{
    c->pending = malloc(SW_WS_ACCEPT_LEN + 1 + offered.len + 1);
    if (c->pending == NULL) {
        sw_metrics_inc(c->f->metrics, SW_METRIC_OUT_OF_MEMORY);
        fo_client_end(c);
        return;
    }
    sw_ws_accept_compute(client_key, c->pending);
    memcpy(c->pending + SW_WS_ACCEPT_LEN + 1, offered.p, offered.len);
    c->pending[SW_WS_ACCEPT_LEN + 1 + offered.len] = '\0';
}

bool
fo_offered_has(struct sw_str offered, const char *proto)
{
    size_t n = strlen(proto);
    const char *p = offered.p;
    const char *end = offered.p + offered.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }
        const char *s = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '\t') {
            p++;
        }
        if ((size_t)(p - s) == n && n > 0 && memcmp(s, proto, n) == 0) {
            return true;
        }
    }
    return false;
}

void
fo_client_open(struct fo_client *c, const char *protocol)
{
    if (c->pending == NULL) {
        return;
    }
    char accept[SW_WS_ACCEPT_LEN + 1];
    memcpy(accept, c->pending, sizeof(accept));
    const char *offered = c->pending + SW_WS_ACCEPT_LEN + 1;
    bool ok =
        protocol[0] == '\0' ||
        fo_offered_has((struct sw_str){offered, strlen(offered)}, protocol);
    free(c->pending);
    c->pending = NULL;
    if (!ok) {
        sw_log_info("client %s: 400: fan-out channel \"%s\" speaks "
                    "subprotocol \"%s\", not offered",
                    c->addr, c->ch->name, protocol);
        write_refusal(c, 400, "Bad Request");
        return;
    }
    write_101(c, accept, protocol);
}

void
fo_client_accept_now(struct fo_client *c, struct sw_str client_key,
                     const char *protocol)
{
    char accept[SW_WS_ACCEPT_LEN + 1];
    sw_ws_accept_compute(client_key, accept);
    write_101(c, accept, protocol);
}

void
fo_client_fail(struct fo_client *c, uint16_t code)
{
    if (c->state == FO_C_PENDING) {
        free(c->pending);
        c->pending = NULL;
        write_refusal(c, 502, "Bad Gateway");
        return;
    }
    fo_client_close(c, code, "upstream");
}

/* ---- messages out ------------------------------------------------------ */

void
fo_client_queue(struct fo_client *c, struct fo_slice s, uint32_t payload)
{
    struct fo_chan *ch = c->ch;
    struct sw_fanout *f = c->f;
    if (c->q.bytes + s.len > ch->backlog) {
        if (ch->slow_close) {
            sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_SLOW_CLOSES);
            sw_log_info("client %s: fan-out channel \"%s\": over "
                        "fanout_backlog, closed 1008",
                        c->addr, ch->name);
            fo_client_close(c, SW_WS_CLOSE_POLICY, "gateway");
            return;
        }
        uint64_t room = s.len < ch->backlog ? ch->backlog - s.len : 0;
        size_t n = fo_outq_trim(f, &c->q, room);
        c->dropped += n;
        sw_metrics_add(f->metrics, SW_METRIC_FANOUT_DROPPED, (int64_t)n);
    }
    if (!fo_outq_push(f, &c->q, s)) {
        c->dropped++;
        sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_DROPPED);
        return;
    }
    c->delivered++;
    c->bytes_out += payload;
    fo_mark_dirty(c);
}

/* Queue a control frame toward the client (unmasked). */
static bool
queue_control(struct fo_client *c, uint8_t opcode, const uint8_t *payload,
              size_t len)
{
    if (!fo_outq_control(&c->q, opcode, payload, len, NULL)) {
        return false;
    }
    fo_mark_dirty(c);
    return true;
}

void
fo_client_flush(struct fo_client *c)
{
    struct sw_conn *conn = &c->conn;
    if (sw_conn_buffered(conn->out) > 0) {
        if (sw_conn_flush(conn) < 0) {
            fo_client_end(c);
            return;
        }
        if (sw_conn_buffered(conn->out) > 0) {
            sw_conn_watch(conn, c->state != FO_C_CLOSING, true);
            return;
        }
        sw_conn_buf_release(conn, &conn->out);
    }
    ssize_t sent = fo_outq_flush(c->f, conn, &c->q);
    if (sent > 0) {
        sw_metrics_add(c->f->metrics, SW_METRIC_BYTES_TO_CLIENTS, sent);
    }
    if (sent < 0) {
        if (c->closed_by == NULL) {
            c->closed_by = "client";
            c->close_code = SW_WS_CLOSE_ABNORMAL;
        }
        fo_client_end(c);
        return;
    }
    bool empty = fo_outq_empty(&c->q);
    if (c->state == FO_C_CLOSING && empty && c->close_received) {
        fo_client_end(c); /* our close, or our answer to theirs, is out */
        return;
    }
    sw_conn_watch(conn, true, !empty);
}

/* ---- closing ----------------------------------------------------------- */

void
fo_client_close(struct fo_client *c, uint16_t code, const char *by)
{
    if (c->state == FO_C_CLOSING) {
        return;
    }
    if (c->state == FO_C_PENDING) {
        fo_client_fail(c, code);
        return;
    }
    fo_client_unlink(c);
    c->state = FO_C_CLOSING;
    if (c->closed_by == NULL) {
        c->closed_by = by;
        c->close_code = code;
    }
    /* nothing may follow a close: queued messages after the one being
     * sent are dropped */
    size_t n = fo_outq_trim(c->f, &c->q, 0);
    c->dropped += n;
    uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    bool coded = code != SW_WS_CLOSE_NO_STATUS && code != 0;
    if (!queue_control(c, SW_WS_OP_CLOSE, payload, coded ? 2 : 0)) {
        c->q.ctl_len = c->q.ctl_sent = 0; /* make room: the close matters */
        (void)queue_control(c, SW_WS_OP_CLOSE, payload, coded ? 2 : 0);
    }
    sw_metrics_inc(c->f->metrics, SW_METRIC_WS_CLOSE_SENT);
    sw_conn_timer(&c->conn, c->ch->close_timeout_ms);
}

static void
log_end(const struct fo_client *c, uint64_t now)
{
    uint64_t ms = now - c->started_ms;
    const char *by = c->closed_by != NULL ? c->closed_by : "none";
    if (sw_log_access_is_json()) {
        struct sw_log_json j;
        sw_log_json_begin(&j, "websocket");
        sw_log_json_str(&j, "client", c->addr, strlen(c->addr));
        sw_log_json_str(&j, "upstream", "fanout", 6);
        sw_log_json_str(&j, "channel", c->ch->name, c->ch->name_len);
        sw_log_json_u64(&j, "duration_ms", ms);
        sw_log_json_u64(&j, "client_messages", c->sent_msgs);
        sw_log_json_u64(&j, "client_bytes", c->sent_bytes);
        sw_log_json_u64(&j, "upstream_messages", c->delivered);
        sw_log_json_u64(&j, "upstream_bytes", c->bytes_out);
        sw_log_json_u64(&j, "dropped", c->dropped);
        sw_log_json_str(&j, "closed_by", by, strlen(by));
        sw_log_json_u64(&j, "close_code", c->close_code);
        sw_log_json_write(&j);
        return;
    }
    sw_log_access(
        "ws %s -> fanout %llums c2u_msgs=%llu u2c_msgs=%llu "
        "u2c_bytes=%llu dropped=%llu closed_by=%s code=%u "
        "channel=%s",
        c->addr, (unsigned long long)ms, (unsigned long long)c->sent_msgs,
        (unsigned long long)c->delivered, (unsigned long long)c->bytes_out,
        (unsigned long long)c->dropped, by, (unsigned)c->close_code,
        c->ch->name);
}

void
fo_client_end(struct fo_client *c)
{
    struct sw_fanout *f = c->f;
    fo_client_unlink(c);
    if (c->dirty) {
        struct fo_client **pp = &f->dirty;
        while (*pp != NULL && *pp != c) {
            pp = &(*pp)->dirty_next;
        }
        if (*pp == c) {
            *pp = c->dirty_next;
        }
        c->dirty = false;
    }
    if (c->state != FO_C_PENDING || c->pending == NULL) {
        log_end(c, sw_now_ms());
    }
    free(c->pending);
    fo_outq_fini(f, &c->q);
    if (c->mblk != NULL) {
        fo_block_unref(f, c->mblk);
    }
    sw_conn_close_gently(&c->conn);
    if (c->all_prev != NULL) {
        c->all_prev->all_next = c->all_next;
    } else {
        f->clients = c->all_next;
    }
    if (c->all_next != NULL) {
        c->all_next->all_prev = c->all_prev;
    }
    f->nclients--;
    sw_metrics_add(f->metrics, SW_METRIC_FANOUT_CLIENTS, -1);
    fo_chan_unref(f, c->ch);
    sw_slab_free(&f->client_slab, c);
    fo_check_empty(f);
}

/* ---- frames in --------------------------------------------------------- */

/* A whole message from the client: to the upstream, or dropped. */
static void
message_done(struct fo_client *c)
{
    struct sw_fanout *f = c->f;
    struct fo_chan *ch = c->ch;
    c->sent_msgs++;
    c->sent_bytes += c->mlen;
    if (c->mblk == NULL) {
        sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_CLIENT_DROPPED);
        return;
    }
    struct fo_slice s = {c->mblk, 0, FO_HEAD_ROOM + c->mlen};
    c->mblk = NULL;
    c->mlen = 0;
    if (ch->owner == f->id) {
        fo_upstream_send(f, ch, s, c->msg.opcode);
        fo_block_unref(f, s.b);
        return;
    }
    fo_chan_ref(ch);
    struct fo_entry e = {.type = FO_E_UP,
                         .opcode = c->msg.opcode,
                         .ch = ch,
                         .s = s}; /* our block reference goes with it */
    fo_post(f, ch->owner, &e);
}

/* Room in the message block for n more payload bytes. */
static bool
collect_room(struct fo_client *c, uint64_t n)
{
    size_t need = FO_HEAD_ROOM + c->mlen + (size_t)n;
    if (c->mblk != NULL && c->mblk->cap >= need) {
        return true;
    }
    struct fo_block *b = fo_block_get(c->f, need);
    if (b == NULL) {
        return false;
    }
    if (c->mblk != NULL) {
        memcpy(b->data + FO_HEAD_ROOM, c->mblk->data + FO_HEAD_ROOM, c->mlen);
        fo_block_unref(c->f, c->mblk);
    }
    c->mblk = b;
    return true;
}

static void
control_done(struct fo_client *c)
{
    switch (c->fr.opcode) {
    case SW_WS_OP_PING:
        if (c->state == FO_C_OPEN &&
            queue_control(c, SW_WS_OP_PONG, c->ctl, c->ctl_len)) {
            sw_metrics_inc(c->f->metrics, SW_METRIC_WS_PINGS_ANSWERED);
        }
        break;
    case SW_WS_OP_CLOSE: {
        struct sw_ws_close cl;
        c->close_received = true;
        if (sw_ws_close_decode(c->ctl, c->ctl_len, &cl) != SW_OK) {
            fo_client_close(c, cl.error_code, "gateway");
            break;
        }
        /* our answer carries its code (RFC 6455 5.5.1) */
        fo_client_close(c, cl.code, "client");
        break;
    }
    default:
        break; /* pong */
    }
}

/* Walk the frames in conn.in. False when the client ended. */
static bool
walk(struct fo_client *c)
{
    struct sw_buf *in = c->conn.in;
    while (in != NULL && sw_buf_len(in) > 0 && !c->close_received) {
        size_t len = sw_buf_len(in);
        if (c->rd == FO_R_HDR) {
            ssize_t n = sw_ws_frame_decode(&c->dec, in->pos, len, &c->fr);
            if (n == SW_AGAIN) {
                in->pos += len;
                break;
            }
            if (n < 0 || sw_ws_msg_check(&c->msg, &c->fr) != SW_OK) {
                uint16_t code = n < 0 ? c->dec.close_code : c->msg.close_code;
                sw_log_info("client %s: fan-out channel \"%s\": %s, closed %u",
                            c->addr, c->ch->name,
                            n < 0 ? c->dec.why : c->msg.why, code);
                sw_metrics_inc(c->f->metrics, SW_METRIC_WS_PROTOCOL_ERRORS);
                fo_client_close(c, code, "gateway");
                c->close_received = true; /* no point waiting for more */
                return true;
            }
            in->pos += n;
            sw_metrics_inc(c->f->metrics, SW_METRIC_WS_FRAMES_TOTAL);
            c->remaining = c->fr.payload_len;
            c->offset = 0;
            c->ctl_len = 0;
            if (sw_ws_is_control(c->fr.opcode)) {
                c->rd = FO_R_CTRL;
            } else {
                c->rd = FO_R_DATA;
                bool keep = c->state == FO_C_OPEN && !c->ch->drop_client;
                if (keep && !collect_room(c, c->remaining)) {
                    sw_metrics_inc(c->f->metrics, SW_METRIC_OUT_OF_MEMORY);
                    fo_client_close(c, SW_WS_CLOSE_INTERNAL, "gateway");
                    return true;
                }
                if (!keep && c->mblk != NULL) {
                    fo_block_unref(c->f, c->mblk);
                    c->mblk = NULL;
                }
            }
        }
        size_t k = (size_t)SW_MIN((uint64_t)sw_buf_len(in), c->remaining);
        if (c->rd == FO_R_CTRL) {
            memcpy(c->ctl + c->ctl_len, in->pos, k);
            sw_ws_mask(c->ctl + c->ctl_len, k, c->fr.mask, c->offset);
            c->ctl_len += k;
        } else if (c->mblk != NULL) {
            uint8_t *dst = c->mblk->data + FO_HEAD_ROOM + c->mlen;
            memcpy(dst, in->pos, k);
            sw_ws_mask(dst, k, c->fr.mask, c->offset);
            c->mlen += (uint32_t)k;
        }
        in->pos += k;
        c->offset += k;
        c->remaining -= k;
        if (c->remaining > 0) {
            break;
        }
        enum fo_read_state was = c->rd;
        c->rd = FO_R_HDR;
        if (was == FO_R_CTRL) {
            control_done(c);
        } else if (c->fr.fin) {
            message_done(c);
        }
    }
    return true;
}

static void
on_client_read(struct sw_conn *conn, void *arg)
{
    struct fo_client *c = arg;
    struct sw_fanout *f = c->f;
    for (int i = 0; i < 8; i++) {
        if (!sw_conn_in_has_room(conn)) {
            break;
        }
        ssize_t n = sw_conn_read(conn);
        if (n == SW_AGAIN) {
            break;
        }
        if (n <= 0) {
            if (c->closed_by == NULL) {
                c->closed_by = "client";
                c->close_code = SW_WS_CLOSE_ABNORMAL;
                sw_metrics_inc(c->f->metrics, SW_METRIC_WS_PEER_LOST);
            }
            fo_client_end(c);
            fo_end_turn(f);
            return;
        }
        sw_metrics_add(c->f->metrics, SW_METRIC_BYTES_FROM_CLIENTS, n);
        c->last_rx_ms = sw_now_ms();
        if (!walk(c)) {
            return;
        }
        if (c->close_received) {
            break;
        }
    }
    sw_conn_buf_release_if_empty(conn, &conn->in);
    fo_mark_dirty(c);
    fo_end_turn(f);
}

static void
on_client_write(struct sw_conn *conn, void *arg)
{
    struct fo_client *c = arg;
    SW_UNUSED(conn);
    struct sw_fanout *f = c->f;
    fo_client_flush(c);
    fo_end_turn(f);
}

/* The close handshake took too long. */
static void
on_client_timer(struct sw_conn *conn, void *arg)
{
    struct fo_client *c = arg;
    SW_UNUSED(conn);
    struct sw_fanout *f = c->f;
    fo_client_end(c);
    fo_end_turn(f);
}

void
fo_client_tick(struct fo_client *c, uint64_t now)
{
    struct fo_chan *ch = c->ch;
    if (c->state != FO_C_OPEN) {
        return;
    }
    if (ch->idle_timeout_ms != 0 &&
        now - c->last_rx_ms >= ch->idle_timeout_ms) {
        fo_client_close(c, SW_WS_CLOSE_GOING_AWAY, "gateway");
        return;
    }
    if (ch->ping_interval_ms != 0 &&
        now - c->last_rx_ms >= ch->ping_interval_ms &&
        now - c->last_ping_ms >= ch->ping_interval_ms) {
        c->last_ping_ms = now;
        if (queue_control(c, SW_WS_OP_PING, NULL, 0)) {
            sw_metrics_inc(c->f->metrics, SW_METRIC_WS_PINGS_SENT);
        }
    }
}
