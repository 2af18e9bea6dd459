/*
 * relay_frames.c - the per-direction frame walk of the WebSocket relay:
 * headers decoded and checked, whole small frames passed on in runs, data
 * payloads copied (UTF-8 checked where asked) or spliced, control frames
 * collected and handled (states in relay_int.h).
 *
 * Owns nothing; works on the relay it is given (worker thread only).
 *
 * Contents:
 *   sw__relay_dir_process   walk a direction's input as far as buffers allow
 *   dir_walk                the state machine
 *   pass_whole_frame, flush_run   runs of whole small frames, as their bytes
 *   begin_frame, frame_done, control_done
 *   copy_payload, validate_ahead  copying, with UTF-8 checks
 *   may_splice, splice_step       src -> pipe -> dst for large payloads
 */
#include "relay_int.h"

#include <shockwave/log.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

static void
frame_done(struct sw_relay *r, struct dir *d)
{
    if (!sw_ws_is_control(d->f.opcode) && d->f.fin) {
        d->messages++;
        sw_metrics_inc(r->env.metrics, SW_METRIC_WS_MESSAGES_TOTAL);
        sw_metrics_observe(dir_msg_hist(r, d), SW_METRICS_H_WS_MESSAGE,
                           d->msg.size);
        if (d->validate) {
            d->validate = false;
            if (sw_ws_utf8_finish(&d->utf8) != SW_OK) {
                sw__relay_protocol_error(r, d, SW_WS_CLOSE_INVALID_DATA,
                                         "text message is not valid UTF-8");
                return;
            }
        }
    }
    d->state = DIR_HDR;
}

/* A complete control frame from d->src (payload unmasked in d->ctl). */
static void
control_done(struct sw_relay *r, struct dir *d)
{
    struct end *src = d->src;
    switch (d->f.opcode) {
    case SW_WS_OP_PING:
        sw__relay_queue_pong(r, src, d->ctl, d->ctl_len);
        break;
    case SW_WS_OP_PONG:
        break; /* consumed: an answer to one of our pings or unsolicited */
    case SW_WS_OP_CLOSE: {
        struct sw_ws_close cl;
        if (sw_ws_close_decode(d->ctl, d->ctl_len, &cl) != SW_OK) {
            sw__relay_protocol_error(r, d, cl.error_code, cl.why);
            return;
        }
        d->close_seen = true;
        d->close_code = cl.code;
        /* forward the same code and reason, re-masked for its new leg */
        if (d->dst->close_deferred != 0) {
            sw__relay_release_deferred(r, d->dst); /* the violator's own code */
        } else if (!d->dst->close_sent && d->dst->close_len == 0 &&
                   !sw_conn_has(d->dst->conn, SW_CONN_F_DEAD)) {
            d->dst->close_len = sw__relay_control_frame(
                r, d->dst, SW_WS_OP_CLOSE, d->ctl, d->ctl_len, d->dst->close);
        }
        d->state = DIR_DONE;
        struct dir *other = d == &r->up ? &r->down : &r->up;
        if (other->close_seen) {
            sw__relay_start_finishing(r, r->closed_by, r->close_code);
        } else {
            sw__relay_start_finishing(r, src->name, cl.code);
        }
        return;
    }
    default:
        break;
    }
    d->state = DIR_HDR;
}

/* Start relaying a decoded frame header. */
static void
begin_frame(struct sw_relay *r, struct dir *d)
{
    const struct sw_ws_frame *f = &d->f;
    d->remaining = f->payload_len;
    d->offset = 0;
    d->validated = 0;
    d->frames++;
    sw_metrics_inc(r->env.metrics, SW_METRIC_WS_FRAMES_TOTAL);
    bool local_ping =
        r->rt->ws_ping == SW_CONF_WS_PING_LOCAL &&
        (f->opcode == SW_WS_OP_PING || f->opcode == SW_WS_OP_PONG);
    if (f->opcode == SW_WS_OP_CLOSE || local_ping) {
        d->ctl_len = 0;
        d->state = DIR_CTRL;
        return;
    }
    if (d->dst->close_sent || d->dst->cut ||
        sw_conn_has(d->dst->conn, SW_CONN_F_DEAD)) {
        /* RFC 6455 5.5.1: nothing follows a close frame toward an end;
         * frames are still read, to see the other side's close */
        d->state = DIR_DROP;
        return;
    }
    if (f->opcode == SW_WS_OP_TEXT && r->rt->ws_validate_utf8) {
        d->validate = true;
        sw_ws_utf8_init(&d->utf8);
    }
    /* Header re-encoded with the same fields: payload bytes (still masked
     * with the client's own key) can then pass verbatim. */
    d->hdr_len = sw_ws_frame_encode(d->hdr, f->fin, f->opcode,
                                    f->masked ? f->mask : NULL, f->payload_len);
    d->hdr[0] |= (uint8_t)(f->rsv << 4);
    d->state = DIR_DATA;
}

static bool
may_splice(const struct sw_relay *r, const struct dir *d)
{
    uint64_t threshold = r->rt->ws_splice_threshold;
    /* a plugin that reads frames reads them from our buffers */
    /* a socket on the kernel relay is read through its BPF queue, which
     * splice does not see */
    return threshold != 0 && r->kslot == NULL && !r->k_wanted &&
           d->remaining >= threshold && !d->validate && !r->plug_frames &&
           d->src->conn->io.ops->can_splice &&
           d->dst->conn->io.ops->can_splice &&
           sw_conn_buffered(d->src->conn->in) == 0 &&
           sw_conn_buffered(d->dst->conn->out) == 0 && d->hdr_len == 0 &&
           /* on io_uring: src's receive stopped from now on (last: it
            * switches); splice_step waits for dst's queue */
           sw_conn_splice_begin(d->src->conn);
}

void
sw__relay_lowat(struct sw_relay *r, struct dir *d, uint64_t want)
{
    uint64_t most = SW_RELAY_SPLICE_LOWAT;
    if (d->have_pipe) {
        most = SW_MIN(most, (uint64_t)d->pipe.cap); /* one splice's worth */
    }
    unsigned v = (unsigned)SW_MAX(SW_MIN(want, most), 1u);
    if (v == SW_MAX(d->lowat, 1u) || d->src->conn->io.fd < 0) {
        return;
    }
    if (v > 1 && !d->src->rcvbuf_fixed) {
        /* A low-water mark lets the kernel grow the receive buffer toward
         * tcp_rmem's maximum (32 MiB here) while the relay waits: fixed at
         * twice the mark instead, what a source whose peer does not read
         * can leave in the kernel stays bounded. */
        int buf = (int)(2 * SW_RELAY_SPLICE_LOWAT);
        setsockopt(d->src->conn->io.fd, SOL_SOCKET, SO_RCVBUF, &buf,
                   sizeof(buf));
        d->src->rcvbuf_fixed = true;
    }
    int iv = (int)v;
    if (setsockopt(d->src->conn->io.fd, SOL_SOCKET, SO_RCVLOWAT, &iv,
                   sizeof(iv)) == 0) {
        d->lowat = v;
    }
    if (v > 1) {
        r->lowat_until_ms = sw_now_ms() + SW_RELAY_LOWAT_WAIT_MS;
        sw__relay_arm_timer(r);
    }
}

/* Move payload through a pipe: src -> pipe -> dst, exactly d->remaining
 * bytes; resumes on EAGAIN on either side. */
static bool
splice_step(struct sw_relay *r, struct dir *d)
{
    struct sw_conn *src = d->src->conn;
    struct sw_conn *dst = d->dst->conn;
    bool progress = false;
    if (!d->have_pipe) {
        if (sw_pipe_get(r->env.pipes, &d->pipe) != SW_OK) {
            d->state = DIR_DATA; /* fall back to copying */
            sw_conn_splice_end(src);
            return false;
        }
        d->have_pipe = true;
        d->in_pipe = 0;
        sw_metrics_inc(r->env.metrics, SW_METRIC_PIPES_IN_USE);
        sw__relay_lowat(r, d, d->remaining);
    }
    size_t cap = d->pipe.cap; /* pipes may differ: the kernel may grant less */
    /* A splice that moved less than asked found its socket drained (or its
     * send buffer full): the next readiness event says when to go on, so
     * no call is spent finding EAGAIN. On the ring a result is taken and
     * the next splice started by one more call, which returns SW_AGAIN. */
    bool src_dry = false;
    bool dst_full = false;
    for (int i = 0; i < SW_RELAY_SPLICE_STEPS; i++) {
        bool moved = false;
        if (!src_dry && d->remaining > 0 && d->in_pipe < cap &&
            !sw_conn_has(src, SW_CONN_F_EOF)) {
            size_t want =
                (size_t)SW_MIN(d->remaining, (uint64_t)(cap - d->in_pipe));
            ssize_t n = sw_conn_splice_from(src, d->pipe.fd[1], want);
            if (n != SW_AGAIN || !sw_conn_splice_async(src)) {
                sw_metrics_inc(r->env.metrics, SW_METRIC_WS_SPLICE_CALLS);
            }
            src_dry = n == SW_AGAIN ||
                      (n < (ssize_t)want && !sw_conn_splice_async(src));
            if (n > 0) {
                d->in_pipe += (size_t)n;
                d->remaining -= (uint64_t)n;
                d->src->last_rx_ms = sw_now_ms();
                moved = true;
                /* the rest, at most the mark (after the wait dropped it) */
                sw__relay_lowat(r, d, d->remaining);
            } else if (n == 0) {
                src->flags |= SW_CONN_F_EOF;
            } else if (n != SW_AGAIN) {
                sw_log_debug("ws %s: splice from %s: %s", r->caddr,
                             d->src->name, strerror(src->io.last_errno));
                src->flags |= SW_CONN_F_EOF | SW_CONN_F_RESET;
            }
        }
        /* on io_uring, bytes queued toward dst go before the pipe's */
        dst_full = dst_full || !sw_conn_sends_idle(dst);
        if (!dst_full && d->in_pipe > 0 && !sw_conn_has(dst, SW_CONN_F_DEAD)) {
            ssize_t m = sw_conn_splice_to(dst, d->pipe.fd[0], d->in_pipe);
            if (m != SW_AGAIN || !sw_conn_splice_async(dst)) {
                sw_metrics_inc(r->env.metrics, SW_METRIC_WS_SPLICE_CALLS);
            }
            dst_full = m == SW_AGAIN ||
                       (m < (ssize_t)d->in_pipe && !sw_conn_splice_async(dst));
            if (m > 0) {
                d->in_pipe -= (size_t)m;
                d->bytes += (uint64_t)m;
                d->offset += (uint64_t)m;
                sw_metrics_add(r->env.metrics, SW_METRIC_WS_BYTES_SPLICED, m);
                moved = true;
            } else if (m < 0 && m != SW_AGAIN) {
                sw_log_debug("ws %s: splice to %s: %s", r->caddr, d->dst->name,
                             strerror(dst->io.last_errno));
                dst->flags |= SW_CONN_F_DEAD;
            }
        }
        if (!moved) {
            break;
        }
        progress = true;
    }
    if (d->remaining == 0 && d->in_pipe == 0) {
        sw_pipe_put(r->env.pipes, &d->pipe);
        d->have_pipe = false;
        sw_metrics_add(r->env.metrics, SW_METRIC_PIPES_IN_USE, -1);
        sw_conn_splice_end(src);
        frame_done(r, d);
        progress = true;
    }
    return progress;
}

/* Check the UTF-8 of the next `upto` payload bytes in d->src->conn->in that
 * were not checked yet. Client frames are masked: an unmasked copy is checked
 * and the original bytes are forwarded. Returns false after a violation. */
static bool
validate_ahead(struct sw_relay *r, struct dir *d, size_t upto)
{
    uint8_t scratch[4096];
    size_t done = (size_t)(d->validated - d->offset);
    while (done < upto) {
        size_t k = SW_MIN(upto - done, sizeof(scratch));
        memcpy(scratch, d->src->conn->in->pos + done, k);
        if (d->f.masked) {
            sw_ws_mask(scratch, k, d->f.mask, d->offset + done);
        }
        if (sw_ws_utf8_feed(&d->utf8, scratch, k) != SW_OK) {
            sw__relay_protocol_error(r, d, SW_WS_CLOSE_INVALID_DATA,
                                     "text message is not valid UTF-8");
            return false;
        }
        done += k;
        d->validated = d->offset + done;
    }
    return true;
}

static bool
copy_payload(struct sw_relay *r, struct dir *d)
{
    if (d->hdr_len > 0 && d->validate &&
        (uint64_t)sw_conn_buffered(d->src->conn->in) >= d->remaining &&
        !validate_ahead(r, d, (size_t)d->remaining)) {
        /* the whole frame was here: refused before its header went out,
         * so the peer still gets a clean close */
        return false;
    }
    bool moved = false;
    if (d->hdr_len > 0) {
        if (sw_conn_out_room(d->dst->conn) < d->hdr_len) {
            return false;
        }
        sw_buf_append(d->dst->conn->out, d->hdr, d->hdr_len);
        d->hdr_len = 0;
        moved = true;
    }
    size_t n = (size_t)SW_MIN((uint64_t)sw_conn_buffered(d->src->conn->in),
                              d->remaining);
    n = SW_MIN(n, sw_conn_out_room(d->dst->conn));
    if (n == 0) {
        return moved;
    }
    if (d->validate && !validate_ahead(r, d, n)) {
        return false;
    }
    sw_buf_append(d->dst->conn->out, d->src->conn->in->pos, n);
    d->src->conn->in->pos += n;
    d->remaining -= n;
    d->offset += n;
    d->bytes += n;
    sw_metrics_add(r->env.metrics, SW_METRIC_WS_BYTES_COPIED, (int64_t)n);
    return true;
}

/* Copy out the run of whole frames gathered by pass_whole_frame, and count
 * them, in one go. Called before anything else is appended to the same
 * output and whenever the walk stops. */
static void
flush_run(struct sw_relay *r, struct dir *d)
{
    if (d->run_len == 0) {
        return;
    }
    sw_buf_append(d->dst->conn->out, d->run, d->run_len);
    d->frames += d->run_frames;
    d->messages += d->run_messages;
    d->bytes += d->run_payload;
    sw_metrics_add(r->env.metrics, SW_METRIC_WS_FRAMES_TOTAL,
                   (int64_t)d->run_frames);
    sw_metrics_add(r->env.metrics, SW_METRIC_WS_MESSAGES_TOTAL,
                   (int64_t)d->run_messages);
    sw_metrics_add(r->env.metrics, SW_METRIC_WS_BYTES_COPIED,
                   (int64_t)d->run_payload);
    d->run_len = 0;
    d->run_frames = d->run_messages = d->run_payload = 0;
}

/*
 * Fast path for the common small frame: a data frame whose header and whole
 * payload are already in d->src->conn->in, with room for all of it in the
 * output, is passed on as its original bytes (header included, so its exact
 * encoding and RSV bits are kept), without the DATA state. Consecutive such
 * frames are contiguous in d->src->conn->in and join one run, copied out by
 * flush_run. `hlen` is the header bytes just consumed from d->src->conn->in;
 * when the header came in pieces it is not contiguous there and the frame takes
 * the general path.
 */
static bool
pass_whole_frame(struct sw_relay *r, struct dir *d, size_t hlen)
{
    const struct sw_ws_frame *f = &d->f;
    bool data = f->opcode == SW_WS_OP_TEXT || f->opcode == SW_WS_OP_BINARY ||
                f->opcode == SW_WS_OP_CONT;
    if (!data || hlen != f->header_len || d->validate ||
        (f->opcode == SW_WS_OP_TEXT && r->rt->ws_validate_utf8) ||
        f->payload_len > sw_conn_buffered(d->src->conn->in) ||
        d->dst->close_sent || d->dst->cut ||
        sw_conn_has(d->dst->conn, SW_CONN_F_DEAD)) {
        return false;
    }
    size_t total = hlen + (size_t)f->payload_len;
    const uint8_t *start = d->src->conn->in->pos - hlen;
    if (d->run_len > 0 && d->run + d->run_len != start) {
        flush_run(r, d);
    }
    if (sw_conn_out_reserve(d->dst->conn, d->run_len + total) <
        d->run_len + total) {
        return false;
    }
    if (d->run_len == 0) {
        d->run = start;
    }
    d->run_len += total;
    d->run_frames++;
    d->run_payload += f->payload_len;
    if (f->fin) {
        d->run_messages++;
        sw_metrics_observe(dir_msg_hist(r, d), SW_METRICS_H_WS_MESSAGE,
                           d->msg.size);
    }
    d->src->conn->in->pos += f->payload_len;
    return true;
}

/*
 * A data frame's header was decoded (hlen bytes, consumed): the route's
 * plugins decide. CONTINUE relays it; DROP skips its payload, and the
 * rest of its message with it (a drop after a first frame went out would
 * leave a message cut in two: that becomes a close); CLOSE ends the
 * session, the sender getting the plugin's code (RFC 6455 7.4.1 1008).
 */
/* Skip the frame whose header was decoded, and, until its FIN, the rest of
 * its message; what came before it still goes. */
static int
drop_frame(struct sw_relay *r, struct dir *d)
{
    flush_run(r, d);
    d->plug_dropping = !d->f.fin;
    d->frames++;
    d->remaining = d->f.payload_len;
    d->state = DIR_DROP;
    return SW_PLUGIN_DROP;
}

static int
plugins_see_frame(struct sw_relay *r, struct dir *d, size_t hlen)
{
    const struct sw_ws_frame *f = &d->f;
    bool first = f->opcode != SW_WS_OP_CONT;
    if (d->plug_dropping && !first) {
        return drop_frame(r, d);
    }
    const struct sw_buf *in = d->src->conn->in;
    bool whole =
        hlen == f->header_len && in != NULL && f->payload_len <= sw_buf_len(in);
    struct sw_plugin_frame pf = {
        .dir =
            d == &r->up ? SW_PLUGIN_WS_FROM_CLIENT : SW_PLUGIN_WS_FROM_UPSTREAM,
        .opcode = d->msg.opcode,
        .first = first,
        .fin = f->fin,
        .len = f->payload_len,
        .compressed = (f->rsv & SW_WS_RSV1) != 0,
        .payload = whole ? in->pos : NULL,
        .mask = f->masked ? f->mask : NULL,
    };
    uint16_t code = SW_WS_CLOSE_POLICY;
    int v = sw_plugin_run_ws_frame(r->plug, &pf, &code);
    if (v == SW_PLUGIN_DROP && !first) {
        v = SW_PLUGIN_CLOSE; /* see above */
    }
    if (v == SW_PLUGIN_CLOSE) {
        flush_run(r, d);
        sw__relay_policy_close(r, d, code, "a plugin closed the session");
        return v;
    }
    return v == SW_PLUGIN_DROP ? drop_frame(r, d) : v;
}

/* Walk the frames in d->src->conn->in as far as buffers allow. */
static bool
dir_walk(struct sw_relay *r, struct dir *d)
{
    bool progress = false;
    for (int i = 0; i < SW_RELAY_WALK_STEPS; i++) {
        switch (d->state) {
        case DIR_DONE:
            if (d->src->conn->in != NULL) {
                d->src->conn->in->pos =
                    d->src->conn->in->last; /* after close or error: dropped */
            }
            return progress;
        case DIR_HDR: {
            if (d->dst->npongs != 0 || d->dst->ping_pending ||
                d->dst->close_len != 0) {
                flush_run(r, d); /* injected frames go after the run */
                sw__relay_inject(r, d->dst);
            }
            size_t have = sw_conn_buffered(d->src->conn->in);
            if (have == 0) {
                return progress;
            }
            ssize_t n =
                sw_ws_frame_decode(&d->dec, d->src->conn->in->pos, have, &d->f);
            if (n == SW_AGAIN) {
                d->src->conn->in->pos += have;
                return true;
            }
            if (n < 0) {
                sw__relay_protocol_error(r, d, d->dec.close_code, d->dec.why);
                return true;
            }
            d->src->conn->in->pos += n;
            if (sw_ws_msg_check(&d->msg, &d->f) != SW_OK) {
                sw__relay_protocol_error(r, d, d->msg.close_code, d->msg.why);
                return true;
            }
            if (r->plug_frames && !sw_ws_is_control(d->f.opcode) &&
                plugins_see_frame(r, d, (size_t)n) != SW_PLUGIN_CONTINUE) {
                progress = true;
                break; /* DIR_DROP, or DIR_DONE after a close */
            }
            if (!pass_whole_frame(r, d, (size_t)n)) {
                flush_run(r, d); /* what follows must stay behind it */
                begin_frame(r, d);
            }
            progress = true;
            break;
        }
        case DIR_CTRL: {
            size_t n = (size_t)SW_MIN(
                (uint64_t)sw_conn_buffered(d->src->conn->in), d->remaining);
            if (n > 0) {
                memcpy(d->ctl + d->ctl_len, d->src->conn->in->pos, n);
                d->ctl_len += n;
                d->src->conn->in->pos += n;
                d->remaining -= n;
                progress = true;
            }
            if (d->remaining > 0) {
                return progress;
            }
            if (d->f.masked) {
                sw_ws_mask(d->ctl, d->ctl_len, d->f.mask, 0);
            }
            control_done(r, d);
            progress = true;
            break;
        }
        case DIR_DATA:
            if (d->remaining == 0 && d->hdr_len == 0) {
                sw_conn_splice_end(d->src->conn); /* it may have begun
                                                     one and copied */
                frame_done(r, d);
                progress = true;
                break;
            }
            if (may_splice(r, d)) {
                d->state = DIR_SPLICE;
                /* large frames now: read their headers small again */
                sw_conn_grow_reset(d->src->conn);
                break;
            }
            if (!copy_payload(r, d)) {
                return progress;
            }
            progress = true;
            break;
        case DIR_SPLICE:
            if (!splice_step(r, d)) {
                return progress;
            }
            progress = true;
            break;
        case DIR_DROP: {
            size_t n = (size_t)SW_MIN(
                (uint64_t)sw_conn_buffered(d->src->conn->in), d->remaining);
            if (d->src->conn->in != NULL) {
                d->src->conn->in->pos += n;
            }
            d->remaining -= n;
            if (d->remaining > 0) {
                return progress || n > 0;
            }
            d->state = DIR_HDR;
            progress = true;
            break;
        }
        }
    }
    return progress;
}

bool
sw__relay_dir_process(struct sw_relay *r, struct dir *d)
{
    if (!sw__relay_kernel_ready(r, d)) {
        return false;
    }
    bool progress = dir_walk(r, d);
    /* the run points into d->src->conn->in: copy it out before d->src->conn->in
     * can move */
    flush_run(r, d);
    return progress;
}
