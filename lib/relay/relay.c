/*
 * relay.c - frame-by-frame WebSocket relay between a client and an upstream
 * (see relay.h for the data path and the memory rules): its lifecycle, the
 * I/O of its two ends, what it injects (pongs, pings, closes), closing and
 * its timers. The frame walk itself is in relay_frames.c.
 *
 * Owns: the pool buffers it holds and a pipe while a frame is being
 * spliced. Borrows the session's two connections (lib/conn) until on_done,
 * the worker's loop, pools, RNG, counters, and the route (valid while the
 * owning session holds its snapshot).
 *
 * Contents:
 *   sw__relay_control_frame, queue_close, sw__relay_queue_pong
 *   sw__relay_inject, inject_pongs     at a frame boundary toward an end
 *   sw__relay_protocol_error, sw__relay_release_deferred
 *   sw__relay_start_finishing, finish, check_eof, flushed, dir_over
 *   end_read, end_flush, sw__relay_update_interest, relay_run
 *   sw__relay_next_deadline, sw__relay_arm_timer, on_timer, on_kick,
 *   on_read, on_write
 *   sw_relay_new / _drain / _drain_after / _abort / _free
 *
 * Closing: a close frame is forwarded and remembered; when both directions
 * have carried one, or an error or EOF ended one side, the relay flushes
 * what is queued and closes both sockets. ws_close_timeout bounds the wait.
 */
#include "relay_int.h"

#include <shockwave/log.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

static void relay_run(struct sw_relay *r);

/* ---- helpers ---------------------------------------------------------- */

/* Build a control frame toward end e: unmasked to the client, masked with
 * a fresh key to the upstream (RFC 6455 5.3). Returns its length. */
size_t
sw__relay_control_frame(struct sw_relay *r, const struct end *e, uint8_t opcode,
                        const uint8_t *payload, size_t len, uint8_t *out)
{
    uint8_t key[4];
    const uint8_t *mask = NULL;
    if (!e->is_client) {
        sw_ws_rng_key(r->env.rng, key);
        mask = key;
    }
    size_t h = sw_ws_frame_encode(out, true, opcode, mask, len);
    if (len > 0) {
        memcpy(out + h, payload, len);
        if (mask != NULL) {
            sw_ws_mask(out + h, len, mask, 0);
        }
    }
    return h + len;
}

/* Queue a close frame to e (sent at the next frame boundary toward e). */
static void
queue_close(struct sw_relay *r, struct end *e, uint16_t code,
            const uint8_t *reason, size_t reason_len)
{
    if (e->close_sent || e->close_len > 0 || e->cut ||
        sw_conn_has(e->conn, SW_CONN_F_DEAD)) {
        return;
    }
    uint8_t payload[SW_WS_MAX_CONTROL];
    size_t n =
        sw_ws_close_encode(payload, code, (const char *)reason, reason_len);
    e->close_len =
        sw__relay_control_frame(r, e, SW_WS_OP_CLOSE, payload, n, e->close);
}

/* Begin the end of the relay: flush what is queued, then close. */
void
sw__relay_start_finishing(struct sw_relay *r, const char *by, uint16_t code)
{
    if (r->closed_by == NULL) {
        r->closed_by = by;
        r->close_code = code;
    }
    if (!r->finishing) {
        r->finishing = true;
        r->close_deadline_ms = sw_now_ms() + (r->rt->ws_close_timeout_ms != 0
                                                  ? r->rt->ws_close_timeout_ms
                                                  : SW_RELAY_CLOSE_WAIT_MS);
        sw__relay_arm_timer(r);
    }
}

/* ---- the end ---------------------------------------------------------- */

static void
dir_release(struct sw_relay *r, struct dir *d)
{
    if (d->have_pipe) {
        /* mid-payload: the pipe may hold bytes, and on the io_uring ring a
         * cancelled splice may still reach it, so it is never pooled */
        sw_metrics_add(r->env.metrics, SW_METRIC_PIPES_IN_USE, -1);
        close(d->pipe.fd[0]);
        close(d->pipe.fd[1]);
        d->have_pipe = false;
    }
}

/* The JSON form (`access_log PATH json;`; fields in docs/operations.md). */
static void
log_session_json(const struct sw_relay *r, uint64_t ms,
                 const struct sw_plugin_log_fields *f)
{
    struct sw_log_json j;
    sw_log_json_begin(&j, "websocket");
    sw_log_json_str(&j, "client", r->caddr, strlen(r->caddr));
    sw_log_json_str(&j, "upstream", r->uaddr, strlen(r->uaddr));
    sw_log_json_u64(&j, "duration_ms", ms);
    sw_log_json_u64(&j, "client_messages", r->up.messages);
    sw_log_json_u64(&j, "client_bytes", r->up.bytes);
    sw_log_json_u64(&j, "upstream_messages", r->down.messages);
    sw_log_json_u64(&j, "upstream_bytes", r->down.bytes);
    const char *by = r->closed_by != NULL ? r->closed_by : "none";
    sw_log_json_str(&j, "closed_by", by, strlen(by));
    sw_log_json_u64(&j, "close_code", r->close_code);
    for (size_t i = 0; i < f->n; i++) {
        char key[64];
        snprintf(key, sizeof(key), "%.*s", (int)f->key[i].len, f->key[i].p);
        sw_log_json_str(&j, key, f->value[i].p, f->value[i].len);
    }
    sw_log_json_write(&j);
}

static void
log_session(struct sw_relay *r, uint64_t now_us)
{
    uint64_t ms = now_us / 1000 - r->started_us / 1000;
    if (!sw_log_access_is_on()) {
        return;
    }
    struct sw_plugin_log_fields f;
    sw_plugin_run_log(r->plug, &f);
    if (sw_log_access_is_json()) {
        log_session_json(r, ms, &f);
        return;
    }
    char extra[SW_PLUGIN_LOG_ROOM + 2 * SW_PLUGIN_LOG_FIELDS + 1];
    sw_plugin_log_fields_text(&f, extra, sizeof(extra));
    sw_log_access(
        "ws %s -> %s %llums c2u_msgs=%llu c2u_bytes=%llu "
        "u2c_msgs=%llu u2c_bytes=%llu closed_by=%s code=%u%s",
        r->caddr, r->uaddr, (unsigned long long)ms,
        (unsigned long long)r->up.messages, (unsigned long long)r->up.bytes,
        (unsigned long long)r->down.messages, (unsigned long long)r->down.bytes,
        r->closed_by != NULL ? r->closed_by : "-", (unsigned)r->close_code,
        extra);
}

/* The session's end in its route's series: one close by code and closer
 * (a close frame without a code counts as 1005), and its lifetime. */
static void
count_end(struct sw_relay *r, uint64_t now_us)
{
    /* closed_by is "client", "upstream" or "gateway" (an end's name or
     * the literal): the first letter tells them apart */
    char by = r->closed_by != NULL ? r->closed_by[0] : 'g';
    unsigned who = by == 'c' ? 0 : by == 'u' ? 1 : 2;
    uint16_t code = r->close_code != 0 ? r->close_code : SW_WS_CLOSE_NO_STATUS;
    sw_metrics_store_add(&r->m->ws_closes[sw_metrics_close_index(code)][who],
                         1);
    sw_metrics_store_add(&r->m->ws_sessions_active, -1);
    sw_metrics_observe(&r->m->ws_duration, SW_METRICS_H_WS_DURATION,
                       now_us - r->started_us);
}

/*
 * End the relay. The upstream end is closed here. The client end, unless it
 * already closed or `abort`, is left open with its events stopped: the
 * owner does a lingering close on it, because a client may still be writing
 * (a frame sent after its close) and data arriving at a closed socket makes
 * the kernel answer with a reset, which destroys what the client has not
 * read yet (our last frames and the close).
 */
static void
finish_as(struct sw_relay *r, bool abort)
{
    if (r->done) {
        return;
    }
    r->done = true;
    sw__relay_kernel_stop(r); /* both sockets out of the map first */
    sw_conn_timer(r->c.conn, 0);
    sw_conn_timer(r->u.conn, 0);
    sw_conn_buf_release(r->c.conn, &r->c.pongs);
    sw_conn_buf_release(r->u.conn, &r->u.pongs);
    struct sw_conn *c = r->c.conn;
    if (abort || sw_conn_has(c, SW_CONN_F_EOF | SW_CONN_F_DEAD)) {
        sw_conn_close_gently(c);
    } else {
        sw_conn_watch(c, false, false);
        sw_conn_buf_release(c, &c->in);
        sw_conn_buf_release(c, &c->out);
    }
    sw_conn_close_gently(r->u.conn);
    dir_release(r, &r->up);
    dir_release(r, &r->down);
    uint64_t now_us = sw_metrics_now_us(); /* one read for both */
    count_end(r, now_us);
    if (r->plug != NULL) {
        sw_plugin_run_ws_close(r->plug, r->close_code);
    }
    log_session(r, now_us);
    r->on_done(r->arg);
}

static void
finish(struct sw_relay *r)
{
    finish_as(r, false);
}

/* ---- directions ------------------------------------------------------- */

/* Bytes of the pong frame at p: 2 header bytes, a mask key when masked,
 * and at most 125 payload bytes (RFC 6455 5.5). */
static size_t
pong_size(const uint8_t *p)
{
    return 2 + ((p[1] & 0x80) ? 4 : 0) + (p[1] & 0x7f);
}

/*
 * RFC 6455 5.5.3 lets an endpoint answer only the last of several pings,
 * but a client talking to a typical backend (Node's ws, Python's
 * websockets) gets a pong for each, so the gateway answers each too: up to
 * SW_RELAY_MAX_PONGS wait, in order, for the next frame boundary toward
 * their end; beyond that the oldest gives way to the newest. They wait in
 * a pool buffer taken only while pongs are pending.
 */
void
sw__relay_queue_pong(struct sw_relay *r, struct end *e, const uint8_t *payload,
                     size_t len)
{
    if (!sw_conn_buf_ready(e->conn, &e->pongs)) {
        sw_metrics_inc(r->env.metrics, SW_METRIC_OUT_OF_MEMORY);
        return;
    }
    struct sw_buf *b = e->pongs;
    if (e->npongs == SW_RELAY_MAX_PONGS) {
        b->pos += pong_size(b->pos);
        e->npongs--;
    }
    uint8_t frame[SW_WS_MAX_HEADER + SW_WS_MAX_CONTROL];
    size_t n =
        sw__relay_control_frame(r, e, SW_WS_OP_PONG, payload, len, frame);
    if (sw_buf_room(b) < n) {
        sw_buf_compact(b);
    }
    sw_buf_append(b, frame, n);
    e->npongs++;
}

/* Append the pongs that fit, oldest first. */
static void
inject_pongs(struct sw_relay *r, struct end *e)
{
    struct sw_buf *b = e->pongs;
    while (e->npongs > 0) {
        size_t n = pong_size(b->pos);
        if (sw_conn_out_room(e->conn) < n) {
            return;
        }
        sw_buf_append(e->conn->out, b->pos, n);
        b->pos += n;
        e->npongs--;
        sw_metrics_inc(r->env.metrics, SW_METRIC_WS_PINGS_ANSWERED);
    }
    sw_conn_buf_release(e->conn, &e->pongs);
}

/* At a frame boundary toward e: append what waits to be injected. */
void
sw__relay_inject(struct sw_relay *r, struct end *e)
{
    if (e->npongs == 0 && !e->ping_pending && e->close_len == 0) {
        return; /* the common case, checked first: nothing waits */
    }
    if (!sw__relay_kernel_may_write(r, e)) {
        return; /* the kernel's frames toward e go first */
    }
    struct dir *d = e->out_dir;
    bool boundary =
        (d->state == DIR_HDR || d->state == DIR_DONE) && d->hdr_len == 0;
    if (!boundary || sw_conn_has(e->conn, SW_CONN_F_DEAD) || e->close_sent ||
        e->cut) {
        return;
    }
    inject_pongs(r, e);
    if (e->ping_pending && sw_conn_out_room(e->conn) >= SW_WS_MAX_HEADER) {
        uint8_t frame[SW_WS_MAX_HEADER];
        size_t n = sw__relay_control_frame(r, e, SW_WS_OP_PING, NULL, 0, frame);
        sw_buf_append(e->conn->out, frame, n);
        e->ping_pending = false;
        sw_metrics_inc(r->env.metrics, SW_METRIC_WS_PINGS_SENT);
    }
    if (e->close_len > 0 && sw_conn_out_room(e->conn) >= e->close_len) {
        sw_buf_append(e->conn->out, e->close, e->close_len);
        e->close_len = 0;
        e->close_sent = true;
        sw_metrics_inc(r->env.metrics, SW_METRIC_WS_CLOSE_SENT);
    }
}

/* Send the close owed to a violator (see protocol_error). */
void
sw__relay_release_deferred(struct sw_relay *r, struct end *e)
{
    if (e->close_deferred != 0) {
        uint16_t code = e->close_deferred;
        e->close_deferred = 0;
        queue_close(r, e, code, NULL, 0);
    }
}

/* A violation by d->src: this direction reads no more frames, the other end
 * gets a close at once, and the violator gets its code once the other end
 * has answered with its own close (or after a short wait): frames the other
 * end sent before that (echoes of what was forwarded) still reach the
 * violator first, in order, as they would without the gateway. */
static void
violation(struct sw_relay *r, struct dir *d, uint16_t code, bool policy)
{
    if (dir_mid_frame(d)) {
        /* part of this frame already went out: a close frame now would
         * land inside it, so that leg only gets its TCP close */
        d->dst->cut = true;
    }
    d->hdr_len = 0;
    d->state = DIR_DONE;
    /* RFC 6455 7.4.1: 1001 tells the peer its partner went away; a client
     * whose upstream broke the protocol gets 1011 (server error). A
     * message over the limits is a policy matter, not a failure: 1001. */
    bool upstream_broke =
        d->dst->is_client && code != SW_WS_CLOSE_TOO_BIG && !policy;
    queue_close(r, d->dst,
                upstream_broke ? SW_WS_CLOSE_INTERNAL : SW_WS_CLOSE_GOING_AWAY,
                NULL, 0);
    d->src->close_deferred = code;
    if (d->dst->cut || sw_conn_has(d->dst->conn, SW_CONN_F_DEAD)) {
        sw__relay_release_deferred(r, d->src);
    } else {
        uint64_t wait =
            r->rt->ws_close_timeout_ms != 0
                ? SW_MIN(r->rt->ws_close_timeout_ms / 2, SW_RELAY_DEFER_WAIT_MS)
                : SW_RELAY_DEFER_WAIT_MS;
        r->defer_deadline_ms = sw_now_ms() + wait;
    }
    sw__relay_start_finishing(r, "gateway", code);
}

void
sw__relay_protocol_error(struct sw_relay *r, struct dir *d, uint16_t code,
                         const char *why)
{
    sw_metrics_inc(r->env.metrics, SW_METRIC_WS_PROTOCOL_ERRORS);
    sw_log_warn("ws %s -> %s: %s broke the protocol: %s (close %u)", r->caddr,
                r->uaddr, d->src->name, why, (unsigned)code);
    violation(r, d, code, false);
}

void
sw__relay_policy_close(struct sw_relay *r, struct dir *d, uint16_t code,
                       const char *why)
{
    sw_log_info("ws %s -> %s: %s closed by policy: %s (close %u)", r->caddr,
                r->uaddr, d->src->name, why, (unsigned)code);
    violation(r, d, code, true);
}

/* ---- I/O -------------------------------------------------------------- */

static void
end_read(struct sw_relay *r, struct end *e)
{
    if (e->in_dir->state == DIR_SPLICE || sw_conn_has(e->conn, SW_CONN_F_EOF)) {
        return;
    }
    ssize_t n = sw_conn_read(e->conn);
    if (n > 0) {
        sw__relay_kernel_read(r, e, (size_t)n);
        e->last_rx_ms = sw_now_ms();
        if (e->is_client) {
            sw_metrics_add(r->env.metrics, SW_METRIC_BYTES_FROM_CLIENTS, n);
        }
    } else if (n == SW_ENOMEM) {
        sw_metrics_inc(r->env.metrics, SW_METRIC_OUT_OF_MEMORY);
        sw__relay_start_finishing(r, "gateway", SW_WS_CLOSE_INTERNAL);
    }
}

static bool
end_flush(struct sw_relay *r, struct end *e)
{
    struct sw_conn *c = e->conn;
    if (sw_conn_buffered(c->out) > 0 && !sw__relay_kernel_may_write(r, e)) {
        return false;
    }
    ssize_t n = sw_conn_flush(c); /* SW_ECLOSED at once for a dead end */
    if (n > 0) {
        sw__relay_kernel_sent(r, e, (size_t)n);
    }
    if (n > 0 && e->is_client) {
        sw_metrics_add(r->env.metrics, SW_METRIC_BYTES_TO_CLIENTS, n);
    }
    if (n < 0 && c->out != NULL) {
        c->out->pos = c->out->last; /* nothing more goes to a dead end */
    }
    sw_conn_buf_release_if_empty(c, &c->out);
    return n > 0;
}

/* An end whose input ended: a close handshake that completed, or a peer
 * that vanished (then its partner gets a close). */
static bool
check_eof(struct sw_relay *r, struct end *e)
{
    struct dir *d = e->in_dir;
    if (!sw_conn_has(e->conn, SW_CONN_F_EOF) &&
        !sw_conn_has(e->conn, SW_CONN_F_DEAD)) {
        return false;
    }
    /* nothing more will come from e: a close owed to its peer goes now */
    sw__relay_release_deferred(r, d->dst);
    if (d->close_seen || d->state == DIR_DONE) {
        if (sw_conn_has(e->conn, SW_CONN_F_EOF)) {
            sw__relay_start_finishing(r, r->closed_by ? r->closed_by : e->name,
                                      r->close_code);
        }
        return false;
    }
    if (sw_conn_buffered(d->src->conn->in) > 0 &&
        !sw_conn_has(e->conn, SW_CONN_F_DEAD)) {
        return false; /* frames still to relay before the end */
    }
    struct end *other = e == &r->c ? &r->u : &r->c;
    if (dir_mid_frame(d)) {
        /* a frame from e toward the other end is half sent: a close frame
         * now would land inside it, so that end only gets its TCP close */
        other->cut = true;
    }
    d->state = DIR_DONE;
    queue_close(r, other,
                other->is_client ? SW_WS_CLOSE_INTERNAL
                                 : SW_WS_CLOSE_GOING_AWAY,
                NULL, 0);
    /* e is gone: nothing the other end still sends can reach it, so the
     * relay ends once that close is out, without waiting for a reply */
    other->in_dir->state = DIR_DONE;
    sw_metrics_inc(r->env.metrics, SW_METRIC_WS_PEER_LOST);
    sw_log_warn("ws %s -> %s: %s connection %s without a close frame%s",
                r->caddr, r->uaddr, e->name,
                sw_conn_has(e->conn, SW_CONN_F_RESET) ? "was reset" : "closed",
                other->cut ? " (mid-frame: the other end gets a TCP close)"
                           : "");
    sw__relay_start_finishing(r, e->name, SW_WS_CLOSE_ABNORMAL);
    return true; /* a close waits to be injected: run on */
}

static bool
flushed(const struct end *e)
{
    /* a cut end gets nothing injected any more, only its TCP close */
    return sw_conn_has(e->conn, SW_CONN_F_DEAD) ||
           (sw_conn_buffered(e->conn->out) == 0 &&
            (e->cut || (e->npongs == 0 && e->close_len == 0)));
}

static bool
dir_over(const struct dir *d)
{
    return d->state == DIR_DONE || sw_conn_has(d->dst->conn, SW_CONN_F_DEAD) ||
           (d->dst->cut && sw_conn_has(d->src->conn, SW_CONN_F_EOF));
}

/* An end that is not read (its partner stopped reading, so its direction's
 * output is full) would not hear its peer reset: without read interest no
 * event reports it. Ask the socket; a reset ends its input as a failed
 * read would. */
static void
probe_unread(struct sw_relay *r)
{
    struct end *ends[2] = {&r->c, &r->u};
    for (int i = 0; i < 2; i++) {
        struct sw_conn *c = ends[i]->conn;
        if (!sw_conn_has(c, SW_CONN_F_READING | SW_CONN_F_EOF) &&
            sw_conn_peer_gone(c)) {
            sw_log_debug("ws %s -> %s: %s reset while not read", r->caddr,
                         r->uaddr, ends[i]->name);
            c->flags |= SW_CONN_F_EOF | SW_CONN_F_RESET;
        }
    }
}

void
sw__relay_update_interest(struct sw_relay *r)
{
    struct end *ends[2] = {&r->c, &r->u};
    bool unread = false;
    for (int i = 0; i < 2; i++) {
        struct end *e = ends[i];
        struct dir *in = e->in_dir;
        struct dir *out = e->out_dir;
        if (in->lowat > 1 && in->state != DIR_SPLICE) {
            sw__relay_lowat(r, in, 1); /* headers again: every byte counts */
        }
        bool read = in->state == DIR_SPLICE
                        ? in->remaining > 0 && in->in_pipe < in->pipe.cap
                        : sw_conn_in_has_room(e->conn);
        read = read && !sw_conn_has(e->conn, SW_CONN_F_EOF);
        bool write = sw_conn_buffered(e->conn->out) > 0 ||
                     (out->state == DIR_SPLICE && out->in_pipe > 0);
        write = write && !sw_conn_has(e->conn, SW_CONN_F_DEAD) &&
                sw__relay_kernel_writable(r, e); /* else a timer retries */
        /* a spliced payload is read from the socket, never the transport:
         * no read for pending TLS bytes then (splice needs plain ends) */
        sw_conn_watch(e->conn, read, write);
        unread |= !read && !sw_conn_has(e->conn, SW_CONN_F_EOF);
    }
    if (unread && r->probe_at_ms == 0 && !r->finishing) {
        r->probe_at_ms = sw_now_ms() + SW_RELAY_PROBE_MS;
        sw__relay_arm_timer(r);
    }
}

static void
relay_run(struct sw_relay *r)
{
    bool progress = true;
    for (int i = 0; i < SW_RELAY_RUN_TURNS && progress && !r->done; i++) {
        progress = false;
        progress |= sw__relay_dir_process(r, &r->up);
        progress |= sw__relay_dir_process(r, &r->down);
        sw__relay_inject(r, &r->c);
        sw__relay_inject(r, &r->u);
        progress |= end_flush(r, &r->c);
        progress |= end_flush(r, &r->u);
        /* an idle WebSocket holds no buffer (the decoder keeps partial
         * headers in its own bytes) */
        sw_conn_buf_release_if_empty(r->c.conn, &r->c.conn->in);
        sw_conn_buf_release_if_empty(r->u.conn, &r->u.conn->in);
        progress |= check_eof(r, &r->c);
        progress |= check_eof(r, &r->u);
        /* Done when each direction is over (its close passed, its source
         * ended with nothing left to relay, or its destination is gone)
         * and everything queued is out; else the close deadline ends it. */
        if (r->finishing && dir_over(&r->up) && dir_over(&r->down) &&
            flushed(&r->c) && flushed(&r->u)) {
            finish(r);
            return;
        }
    }
    if (r->done) {
        return;
    }
    sw__relay_kernel_offer(r);
    sw__relay_update_interest(r);
    if (progress) {
        /* stopped at the cap with work left (many small frames): let other
         * connections run, then resume without waiting for an event */
        sw_conn_kick(r->u.conn);
    }
}

/* The upstream end's timer serves as the kick: the relay has no event of
 * its own. */
static void
on_kick(struct sw_conn *c, void *arg)
{
    struct sw_relay *r = sw_container_of((struct end *)arg, struct sw_relay, u);
    SW_UNUSED(c);
    if (!r->done) {
        relay_run(r);
    }
}

/* ---- timers: keepalive pings, idle timeout, close deadline ------------- */

uint64_t
sw__relay_next_deadline(const struct sw_relay *r)
{
    uint64_t next = UINT64_MAX;
    if (r->close_deadline_ms != 0) {
        next = r->close_deadline_ms;
    }
    if (r->defer_deadline_ms != 0) {
        next = SW_MIN(next, r->defer_deadline_ms);
    }
    if (r->drain_at_ms != 0) {
        next = SW_MIN(next, r->drain_at_ms);
    }
    if (r->probe_at_ms != 0) {
        next = SW_MIN(next, r->probe_at_ms);
    }
    if (r->lowat_until_ms != 0) {
        next = SW_MIN(next, r->lowat_until_ms);
    }
    next = SW_MIN(next, sw__relay_kernel_deadline(r));
    const struct end *ends[2] = {&r->c, &r->u};
    for (int i = 0; i < 2 && !r->finishing; i++) {
        uint64_t rx = ends[i]->last_rx_ms;
        if (r->rt->ws_idle_timeout_ms != 0) {
            next = SW_MIN(next, rx + r->rt->ws_idle_timeout_ms);
        }
        if (r->rt->ws_ping_interval_ms != 0) {
            uint64_t base = SW_MAX(rx, ends[i]->last_ping_ms);
            next = SW_MIN(next, base + r->rt->ws_ping_interval_ms);
        }
    }
    return next;
}

void
sw__relay_arm_timer(struct sw_relay *r)
{
    uint64_t now = sw_now_ms();
    uint64_t next = sw__relay_next_deadline(r);
    /* the client end's timer carries the relay's deadlines */
    sw_conn_timer(r->c.conn,
                  next == UINT64_MAX ? 0 : (next > now ? next - now : 1));
}

static void
on_timer(struct sw_conn *c, void *arg)
{
    struct sw_relay *r = sw_container_of((struct end *)arg, struct sw_relay, c);
    SW_UNUSED(c);
    uint64_t now = sw_now_ms();
    sw__relay_kernel_activity(r, now); /* a due retry: relay_run below */
    if (r->lowat_until_ms != 0 && now >= r->lowat_until_ms) {
        /* a slow sender: forward what came (the mark is set again after) */
        r->lowat_until_ms = 0;
        sw__relay_lowat(r, &r->up, 1);
        sw__relay_lowat(r, &r->down, 1);
    }
    if (r->probe_at_ms != 0 && now >= r->probe_at_ms) {
        r->probe_at_ms = 0;
        probe_unread(r);
    }
    if (r->drain_at_ms != 0 && now >= r->drain_at_ms) {
        r->drain_at_ms = 0;
        sw_relay_drain(r);
        if (r->done) {
            return;
        }
    }
    if (r->defer_deadline_ms != 0 && now >= r->defer_deadline_ms) {
        r->defer_deadline_ms = 0;
        sw__relay_release_deferred(r, &r->c);
        sw__relay_release_deferred(r, &r->u);
    }
    if (r->close_deadline_ms != 0 && now >= r->close_deadline_ms) {
        sw_log_info(
            "ws %s -> %s: close handshake timed out (c2u state %d "
            "in %zu eof %d close %d; u2c state %d in %zu eof %d "
            "close %d; out c %zu u %zu)",
            r->caddr, r->uaddr, (int)r->up.state,
            sw_conn_buffered(r->c.conn->in),
            (int)sw_conn_has(r->c.conn, SW_CONN_F_EOF), (int)r->up.close_seen,
            (int)r->down.state, sw_conn_buffered(r->u.conn->in),
            (int)sw_conn_has(r->u.conn, SW_CONN_F_EOF), (int)r->down.close_seen,
            sw_conn_buffered(r->c.conn->out), sw_conn_buffered(r->u.conn->out));
        finish(r);
        return;
    }
    struct end *ends[2] = {&r->c, &r->u};
    for (int i = 0; i < 2 && !r->finishing; i++) {
        struct end *e = ends[i];
        struct end *other = ends[1 - i];
        if (r->rt->ws_idle_timeout_ms != 0 &&
            now >= e->last_rx_ms + r->rt->ws_idle_timeout_ms) {
            sw_log_info("ws %s -> %s: %s idle for %llu ms, closing", r->caddr,
                        r->uaddr, e->name,
                        (unsigned long long)r->rt->ws_idle_timeout_ms);
            queue_close(r, e, SW_WS_CLOSE_GOING_AWAY, NULL, 0);
            queue_close(r, other, SW_WS_CLOSE_GOING_AWAY, NULL, 0);
            sw__relay_start_finishing(r, "gateway", SW_WS_CLOSE_GOING_AWAY);
            break;
        }
        if (r->rt->ws_ping_interval_ms != 0 &&
            now >= SW_MAX(e->last_rx_ms, e->last_ping_ms) +
                       r->rt->ws_ping_interval_ms) {
            e->ping_pending = true;
            e->last_ping_ms = now;
        }
    }
    relay_run(r);
    if (!r->done) {
        sw__relay_arm_timer(r);
    }
}

/* ---- callbacks and lifecycle ------------------------------------------ */

static struct sw_relay *
relay_of(struct end *e)
{
    return e->is_client ? sw_container_of(e, struct sw_relay, c)
                        : sw_container_of(e, struct sw_relay, u);
}

static void
on_read(struct sw_conn *c, void *arg)
{
    struct end *e = arg;
    struct sw_relay *r = relay_of(e);
    SW_UNUSED(c);
    if (r->done) {
        return;
    }
    end_read(r, e);
    relay_run(r);
}

static void
on_write(struct sw_conn *c, void *arg)
{
    struct end *e = arg;
    struct sw_relay *r = relay_of(e);
    if (r->done) {
        return;
    }
    if (sw_conn_has(c, SW_CONN_F_READ_WANTS_WRITE)) {
        end_read(r, e);
    }
    relay_run(r);
}

static const struct sw_conn_handlers client_end_handlers = {
    .on_read = on_read,
    .on_write = on_write,
    .on_timer = on_timer,
};

static const struct sw_conn_handlers upstream_end_handlers = {
    .on_read = on_read,
    .on_write = on_write,
    .on_timer = on_kick,
};

static void
end_init(struct sw_relay *r, struct end *e, struct sw_conn *conn,
         bool is_client, struct dir *in_dir, struct dir *out_dir)
{
    e->conn = conn;
    e->is_client = is_client;
    e->name = is_client ? "client" : "upstream";
    e->in_dir = in_dir;
    e->out_dir = out_dir;
    e->last_rx_ms = r->started_us / 1000;
    sw_conn_rebind(
        conn, is_client ? &client_end_handlers : &upstream_end_handlers, e);
    sw_conn_ring_join(conn, r->env.ring); /* on the io_uring engine */
}

static void
dir_init(struct sw_relay *r, struct dir *d, struct end *src, struct end *dst,
         uint8_t rsv_allowed)
{
    d->src = src;
    d->dst = dst;
    d->state = DIR_HDR;
    sw_ws_decoder_init(&d->dec,
                       src->is_client ? SW_WS_PEER_CLIENT : SW_WS_PEER_SERVER,
                       rsv_allowed, r->rt->ws_max_frame);
    sw_ws_msg_init(&d->msg, r->rt->ws_max_message);
}

struct sw_relay *
sw__relay_create(const struct sw_relay_env *env, struct sw_relay_start *s)
{
    struct sw_relay *r = sw_slab_zalloc(env->relays);
    if (r == NULL) {
        sw_metrics_inc(env->metrics, SW_METRIC_OUT_OF_MEMORY);
        return NULL;
    }
    r->env = *env;
    r->rt = s->route;
    r->m = s->metrics;
    r->started_us = sw_metrics_now_us();
    r->on_done = s->on_done;
    r->arg = s->arg;
    r->plug = s->plugins;
    r->plug_frames = sw_plugin_chain_has(sw_plugin_sess_chain(s->plugins),
                                         SW_PLUGIN_HOOK_WS_MESSAGE);
    snprintf(r->caddr, sizeof(r->caddr), "%s", s->client_addr);
    snprintf(r->uaddr, sizeof(r->uaddr), "%s", s->upstream_addr);
    /* reads grow toward ws_max_buffer while a side streams */
    sw_conn_grow_upto(s->client, (size_t)r->rt->ws_max_buffer);
    sw_conn_grow_upto(s->upstream, (size_t)r->rt->ws_max_buffer);
    end_init(r, &r->c, s->client, true, &r->up, &r->down);
    end_init(r, &r->u, s->upstream, false, &r->down, &r->up);
    dir_init(r, &r->up, &r->c, &r->u, s->rsv_allowed);
    dir_init(r, &r->down, &r->u, &r->c, s->rsv_allowed);
    return r;
}

struct sw_relay *
sw_relay_new(const struct sw_relay_env *env, struct sw_relay_start *s)
{
    struct sw_relay *r = sw__relay_create(env, s);
    if (r == NULL) {
        return NULL;
    }
    sw_metrics_store_add(&r->m->ws_sessions_total, 1);
    sw_metrics_store_add(&r->m->ws_sessions_active, 1);
    if (r->plug != NULL) {
        sw_plugin_run_ws_open(r->plug);
    }
    sw__relay_kernel_start(r, s->rsv_allowed);
    sw__relay_arm_timer(r);
    relay_run(r);
    return r;
}

void
sw_relay_drain(struct sw_relay *r)
{
    if (r == NULL || r->done) {
        return;
    }
    queue_close(r, &r->c, SW_WS_CLOSE_GOING_AWAY, NULL, 0);
    queue_close(r, &r->u, SW_WS_CLOSE_GOING_AWAY, NULL, 0);
    sw__relay_start_finishing(r, "gateway", SW_WS_CLOSE_GOING_AWAY);
    relay_run(r);
}

void
sw_relay_drain_after(struct sw_relay *r, uint64_t delay_ms)
{
    if (r == NULL || r->done) {
        return;
    }
    r->drain_at_ms = sw_now_ms() + delay_ms;
    sw__relay_arm_timer(r);
}

void
sw_relay_abort(struct sw_relay *r)
{
    if (r != NULL && !r->done) {
        if (r->closed_by == NULL) {
            r->closed_by = "gateway";
        }
        finish_as(r, true);
    }
}

size_t
sw_relay_size(void)
{
    return sizeof(struct sw_relay);
}

void
sw_relay_free(struct sw_relay *r)
{
    if (r == NULL) {
        return;
    }
    SW_ASSERT(r->done);
    sw_slab_free(r->env.relays, r);
}
