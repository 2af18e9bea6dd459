/*
 * relay.c - frame-by-frame WebSocket relay between a client and an upstream
 * (see relay.h for the data path and the memory rules).
 *
 * Owns: both sockets, their events, the buffers it holds and a pipe while a
 * frame is being spliced. Borrows the worker's loop, pools, RNG, counters,
 * and the route (valid while the owning session holds its snapshot).
 *
 * Direction states:
 *
 *   HDR --data frame--> DATA --payload done--> HDR
 *    |                   |  \--rest >= splice threshold, buffers empty-->
 *    |                   |                        SPLICE --payload done--> HDR
 *    +--ping/pong/close--> CTRL --payload collected, handled--> HDR
 *    +--violation or end of input--> DONE
 *
 * Closing: a close frame is forwarded and remembered; when both directions
 * have carried one, or an error or EOF ended one side, the relay flushes
 * what is queued and closes both sockets. ws_close_timeout bounds the wait.
 */
#include <shockwave/log.h>
#include <shockwave/relay.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Pongs that may wait toward one end (see queue_pong). */
#define SW_RELAY_MAX_PONGS 8

enum dir_state {
    DIR_HDR = 0, /* between frames: decoding a header */
    DIR_DATA,    /* copying a frame's payload to the destination */
    DIR_SPLICE,  /* splicing a frame's payload to the destination */
    DIR_CTRL,    /* collecting a control frame's payload (<= 125 bytes) */
    DIR_DROP,    /* skipping a data frame's payload: its end was closed */
    DIR_DONE,    /* no more frames will be read in this direction */
};

struct dir;

struct end {
    struct sw_conn *conn; /* borrowed (from the session, valid until
                             on_done): socket, transport, events; its
                             `in` feeds in_dir, its `out` goes to it */
    bool is_client;       /* the client side (frames unmasked to it) */
    struct sw_buf *pongs; /* owned (pool) while pongs wait: encoded pong
                             frames toward this end, oldest first */
    unsigned npongs;      /* frames in pongs (<= SW_RELAY_MAX_PONGS) */
    bool ping_pending;    /* a keepalive ping waits for a boundary */
    uint8_t close[SW_WS_MAX_HEADER + SW_WS_MAX_CONTROL]; /* pending close */
    size_t close_len;                                    /* 0 = none pending */
    bool close_sent;         /* a close frame was queued to this end */
    bool cut;                /* a frame toward it cannot be finished: only
                                the TCP close, no close frame */
    uint16_t close_deferred; /* close code owed to this end (it broke the
                                protocol), sent after its peer\'s close */
    uint64_t last_rx_ms;     /* last bytes from this end */
    uint64_t last_ping_ms;   /* last keepalive ping queued to it */
    struct dir *in_dir;      /* borrowed: direction reading this end */
    struct dir *out_dir;     /* borrowed: direction writing to it */
    const char *name;        /* "client" or "upstream" */
};

struct dir {
    struct end *src;                /* borrowed */
    struct end *dst;                /* borrowed */
    enum dir_state state;           /* see the diagram above */
    struct sw_buf *in;              /* owned (pool): bytes read from src */
    struct sw_ws_decoder dec;       /* frame header decoder */
    struct sw_ws_msg_state msg;     /* fragmentation and message size */
    struct sw_ws_frame f;           /* the frame in progress */
    uint64_t remaining;             /* payload bytes of f still to move */
    uint64_t offset;                /* payload bytes of f moved (unmasking) */
    uint8_t hdr[SW_WS_MAX_HEADER];  /* re-encoded header awaiting room */
    size_t hdr_len;                 /* bytes in hdr; 0 = sent */
    uint8_t ctl[SW_WS_MAX_CONTROL]; /* control payload being collected */
    size_t ctl_len;                 /* bytes in ctl */
    bool validate;                  /* checking this text message's UTF-8 */
    uint64_t validated;             /* payload bytes of f already checked */
    struct sw_ws_utf8 utf8;         /* its validator */
    int pipe[2];                    /* owned (pool) while splicing */
    bool have_pipe;                 /* pipe[] is valid */
    size_t in_pipe;                 /* bytes sitting in the pipe */
    bool close_seen;                /* src sent a close frame */
    uint16_t close_code;            /* the code it carried */
    uint64_t frames;                /* frames read */
    uint64_t messages;              /* data messages completed */
    uint64_t bytes;                 /* payload bytes forwarded */
    const uint8_t *run;             /* borrowed (d->src->conn->in): whole frames
                                       passed on as they are, not yet
                                       copied out (see pass_whole_frame) */
    size_t run_len;                 /* bytes at run */
    uint64_t run_frames;            /* frames in the run */
    uint64_t run_messages;          /* of which ended a message */
    uint64_t run_payload;           /* payload bytes in the run */
};

struct sw_relay {
    struct sw_relay_env env;        /* borrowed pieces of the worker */
    const struct sw_conf_route *rt; /* borrowed: ws_* settings */
    struct end c;                   /* the client */
    struct end u;                   /* the upstream */
    struct dir up;                  /* client -> upstream */
    struct dir down;                /* upstream -> client */
    struct event timer;             /* keepalive, idle, close deadline */
    struct event kick;              /* resumes a run that stopped at its cap */
    uint64_t defer_deadline_ms;     /* send owed closes by then; 0 none */
    uint64_t close_deadline_ms;     /* 0 = none */
    uint64_t drain_at_ms;           /* drain: start closing then; 0 none */
    bool finishing;                 /* close both once flushed */
    bool done;                      /* sockets closed, on_done ran */
    uint64_t started_ms;            /* for the access log */
    const char *closed_by;          /* "client", "upstream", "gateway" */
    uint16_t close_code;            /* code of the first close */
    char caddr[64];                 /* client address, logs */
    char uaddr[64];                 /* upstream address, logs */
    sw_relay_done_cb on_done;       /* owner's callback */
    void *arg;                      /* its argument */
};

static void relay_run(struct sw_relay *r);
static void on_kick(evutil_socket_t fd, short what, void *arg);

/* ---- helpers ---------------------------------------------------------- */

static size_t
out_room(struct end *e)
{
    return sw_conn_out_room(e->conn);
}

static size_t
buf_len(const struct sw_buf *b)
{
    return sw_conn_buffered(b);
}

/* Build a control frame toward end e: unmasked to the client, masked with
 * a fresh key to the upstream (RFC 6455 5.3). Returns its length. */
static size_t
control_frame(struct sw_relay *r, const struct end *e, uint8_t opcode,
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
    e->close_len = control_frame(r, e, SW_WS_OP_CLOSE, payload, n, e->close);
}

static void arm_timer(struct sw_relay *r);

/* Begin the end of the relay: flush what is queued, then close. */
static void
start_finishing(struct sw_relay *r, const char *by, uint16_t code)
{
    if (r->closed_by == NULL) {
        r->closed_by = by;
        r->close_code = code;
    }
    if (!r->finishing) {
        r->finishing = true;
        r->close_deadline_ms = sw_now_ms() + (r->rt->ws_close_timeout_ms != 0
                                                  ? r->rt->ws_close_timeout_ms
                                                  : 5000);
        arm_timer(r);
    }
}

/* ---- the end ---------------------------------------------------------- */

static void
dir_release(struct sw_relay *r, struct dir *d)
{
    if (d->have_pipe) {
        if (d->in_pipe == 0) {
            sw_pipe_put(r->env.pipes, d->pipe);
        } else {
            close(d->pipe[0]);
            close(d->pipe[1]);
        }
        d->have_pipe = false;
    }
}

static void
log_session(struct sw_relay *r)
{
    uint64_t ms = sw_now_ms() - r->started_ms;
    sw_log_access(
        "ws %s -> %s %llums c2u_msgs=%llu c2u_bytes=%llu "
        "u2c_msgs=%llu u2c_bytes=%llu closed_by=%s code=%u",
        r->caddr, r->uaddr, (unsigned long long)ms,
        (unsigned long long)r->up.messages, (unsigned long long)r->up.bytes,
        (unsigned long long)r->down.messages, (unsigned long long)r->down.bytes,
        r->closed_by != NULL ? r->closed_by : "-", (unsigned)r->close_code);
}

static void
finish(struct sw_relay *r)
{
    if (r->done) {
        return;
    }
    r->done = true;
    event_del(&r->timer);
    event_del(&r->kick);
    sw_conn_buf_release(r->c.conn, &r->c.pongs);
    sw_conn_buf_release(r->u.conn, &r->u.pongs);
    sw_conn_close_gently(r->c.conn);
    sw_conn_close_gently(r->u.conn);
    dir_release(r, &r->up);
    dir_release(r, &r->down);
    sw_metrics_add(r->env.metrics, SW_METRIC_WS_SESSIONS_ACTIVE, -1);
    log_session(r);
    r->on_done(r->arg);
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
static void
queue_pong(struct sw_relay *r, struct end *e, const uint8_t *payload,
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
    size_t n = control_frame(r, e, SW_WS_OP_PONG, payload, len, frame);
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
        if (out_room(e) < n) {
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
static void
inject(struct sw_relay *r, struct end *e)
{
    if (e->npongs == 0 && !e->ping_pending && e->close_len == 0) {
        return; /* the common case, checked first: nothing waits */
    }
    struct dir *d = e->out_dir;
    bool boundary =
        (d->state == DIR_HDR || d->state == DIR_DONE) && d->hdr_len == 0;
    if (!boundary || sw_conn_has(e->conn, SW_CONN_F_DEAD) || e->close_sent ||
        e->cut) {
        return;
    }
    inject_pongs(r, e);
    if (e->ping_pending && out_room(e) >= SW_WS_MAX_HEADER) {
        uint8_t frame[SW_WS_MAX_HEADER];
        size_t n = control_frame(r, e, SW_WS_OP_PING, NULL, 0, frame);
        sw_buf_append(e->conn->out, frame, n);
        e->ping_pending = false;
        sw_metrics_inc(r->env.metrics, SW_METRIC_WS_PINGS_SENT);
    }
    if (e->close_len > 0 && out_room(e) >= e->close_len) {
        sw_buf_append(e->conn->out, e->close, e->close_len);
        e->close_len = 0;
        e->close_sent = true;
        sw_metrics_inc(r->env.metrics, SW_METRIC_WS_CLOSE_SENT);
    }
}

/* Send the close owed to a violator (see protocol_error). */
static void
release_deferred(struct sw_relay *r, struct end *e)
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
protocol_error(struct sw_relay *r, struct dir *d, uint16_t code,
               const char *why)
{
    sw_metrics_inc(r->env.metrics, SW_METRIC_WS_PROTOCOL_ERRORS);
    sw_log_warn("ws %s -> %s: %s broke the protocol: %s (close %u)", r->caddr,
                r->uaddr, d->src->name, why, (unsigned)code);
    if ((d->state == DIR_DATA || d->state == DIR_SPLICE) && d->hdr_len == 0 &&
        d->remaining > 0) {
        /* part of this frame already went out: a close frame now would
         * land inside it, so that leg only gets its TCP close */
        d->dst->cut = true;
    }
    d->hdr_len = 0;
    d->state = DIR_DONE;
    /* RFC 6455 7.4.1: 1001 tells the peer its partner went away; a client
     * whose upstream broke the protocol gets 1011 (server error). A
     * message over the limits is a policy matter, not a failure: 1001. */
    bool upstream_broke = d->dst->is_client && code != SW_WS_CLOSE_TOO_BIG;
    queue_close(r, d->dst,
                upstream_broke ? SW_WS_CLOSE_INTERNAL : SW_WS_CLOSE_GOING_AWAY,
                NULL, 0);
    d->src->close_deferred = code;
    if (d->dst->cut || sw_conn_has(d->dst->conn, SW_CONN_F_DEAD)) {
        release_deferred(r, d->src);
    } else {
        uint64_t wait = r->rt->ws_close_timeout_ms != 0
                            ? SW_MIN(r->rt->ws_close_timeout_ms / 2, 1000)
                            : 1000;
        r->defer_deadline_ms = sw_now_ms() + wait;
    }
    start_finishing(r, "gateway", code);
}

static void
frame_done(struct sw_relay *r, struct dir *d)
{
    SW_UNUSED(r);
    if (!sw_ws_is_control(d->f.opcode) && d->f.fin) {
        d->messages++;
        sw_metrics_inc(r->env.metrics, SW_METRIC_WS_MESSAGES_TOTAL);
        if (d->validate) {
            d->validate = false;
            if (sw_ws_utf8_finish(&d->utf8) != SW_OK) {
                protocol_error(r, d, SW_WS_CLOSE_INVALID_DATA,
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
        queue_pong(r, src, d->ctl, d->ctl_len);
        break;
    case SW_WS_OP_PONG:
        break; /* consumed: an answer to one of our pings or unsolicited */
    case SW_WS_OP_CLOSE: {
        struct sw_ws_close cl;
        if (sw_ws_close_decode(d->ctl, d->ctl_len, &cl) != SW_OK) {
            protocol_error(r, d, cl.error_code, cl.why);
            return;
        }
        d->close_seen = true;
        d->close_code = cl.code;
        /* forward the same code and reason, re-masked for its new leg */
        if (d->dst->close_deferred != 0) {
            release_deferred(r, d->dst); /* the violator's own code */
        } else if (!d->dst->close_sent && d->dst->close_len == 0 &&
                   !sw_conn_has(d->dst->conn, SW_CONN_F_DEAD)) {
            d->dst->close_len = control_frame(r, d->dst, SW_WS_OP_CLOSE, d->ctl,
                                              d->ctl_len, d->dst->close);
        }
        d->state = DIR_DONE;
        struct dir *other = d == &r->up ? &r->down : &r->up;
        if (other->close_seen) {
            start_finishing(r, r->closed_by, r->close_code);
        } else {
            start_finishing(r, src->name, cl.code);
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
    return threshold != 0 && d->remaining >= threshold && !d->validate &&
           d->src->conn->io.ops->can_splice &&
           d->dst->conn->io.ops->can_splice && buf_len(d->src->conn->in) == 0 &&
           buf_len(d->dst->conn->out) == 0 && d->hdr_len == 0;
}

/* Move payload through a pipe: src -> pipe -> dst, exactly d->remaining
 * bytes; resumes on EAGAIN on either side. */
static bool
splice_step(struct sw_relay *r, struct dir *d)
{
    bool progress = false;
    if (!d->have_pipe) {
        if (sw_pipe_get(r->env.pipes, d->pipe) != SW_OK) {
            d->state = DIR_DATA; /* fall back to copying */
            return false;
        }
        d->have_pipe = true;
        d->in_pipe = 0;
    }
    size_t cap = r->env.pipes->pipe_size;
    for (int i = 0; i < 64; i++) {
        bool moved = false;
        if (d->remaining > 0 && d->in_pipe < cap &&
            !sw_conn_has(d->src->conn, SW_CONN_F_EOF)) {
            ssize_t n = splice(
                d->src->conn->io.fd, NULL, d->pipe[1], NULL,
                (size_t)SW_MIN(d->remaining, (uint64_t)(cap - d->in_pipe)),
                SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d->in_pipe += (size_t)n;
                d->remaining -= (uint64_t)n;
                d->src->last_rx_ms = sw_now_ms();
                moved = true;
            } else if (n == 0) {
                d->src->conn->flags |= SW_CONN_F_EOF;
            } else if (errno != EAGAIN && errno != EINTR) {
                sw_log_debug("ws %s: splice from %s: %s", r->caddr,
                             d->src->name, strerror(errno));
                d->src->conn->flags |= SW_CONN_F_EOF;
            }
        }
        if (d->in_pipe > 0 && !sw_conn_has(d->dst->conn, SW_CONN_F_DEAD)) {
            ssize_t m = splice(d->pipe[0], NULL, d->dst->conn->io.fd, NULL,
                               d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (m > 0) {
                d->in_pipe -= (size_t)m;
                d->bytes += (uint64_t)m;
                d->offset += (uint64_t)m;
                sw_metrics_add(r->env.metrics, SW_METRIC_WS_BYTES_SPLICED, m);
                moved = true;
            } else if (m < 0 && errno != EAGAIN && errno != EINTR) {
                sw_log_debug("ws %s: splice to %s: %s", r->caddr, d->dst->name,
                             strerror(errno));
                d->dst->conn->flags |= SW_CONN_F_DEAD;
            }
        }
        if (!moved) {
            break;
        }
        progress = true;
    }
    if (d->remaining == 0 && d->in_pipe == 0) {
        sw_pipe_put(r->env.pipes, d->pipe);
        d->have_pipe = false;
        frame_done(r, d);
        progress = true;
    }
    return progress;
}

/* Copy payload bytes of a data frame from d->src->conn->in to the destination.
 */
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
            protocol_error(r, d, SW_WS_CLOSE_INVALID_DATA,
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
        (uint64_t)buf_len(d->src->conn->in) >= d->remaining &&
        !validate_ahead(r, d, (size_t)d->remaining)) {
        /* the whole frame was here: refused before its header went out,
         * so the peer still gets a clean close */
        return false;
    }
    bool moved = false;
    if (d->hdr_len > 0) {
        if (out_room(d->dst) < d->hdr_len) {
            return false;
        }
        sw_buf_append(d->dst->conn->out, d->hdr, d->hdr_len);
        d->hdr_len = 0;
        moved = true;
    }
    size_t n =
        (size_t)SW_MIN((uint64_t)buf_len(d->src->conn->in), d->remaining);
    n = SW_MIN(n, out_room(d->dst));
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
        f->payload_len > buf_len(d->src->conn->in) || d->dst->close_sent ||
        d->dst->cut || sw_conn_has(d->dst->conn, SW_CONN_F_DEAD)) {
        return false;
    }
    size_t total = hlen + (size_t)f->payload_len;
    const uint8_t *start = d->src->conn->in->pos - hlen;
    if (d->run_len > 0 && d->run + d->run_len != start) {
        flush_run(r, d);
    }
    if (out_room(d->dst) < d->run_len + total) {
        return false;
    }
    if (d->run_len == 0) {
        d->run = start;
    }
    d->run_len += total;
    d->run_frames++;
    d->run_payload += f->payload_len;
    d->run_messages += f->fin ? 1 : 0;
    d->src->conn->in->pos += f->payload_len;
    return true;
}

/* Walk the frames in d->src->conn->in as far as buffers allow. */
static bool
dir_walk(struct sw_relay *r, struct dir *d)
{
    bool progress = false;
    for (int i = 0; i < 256; i++) {
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
                inject(r, d->dst);
            }
            size_t have = buf_len(d->src->conn->in);
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
                protocol_error(r, d, d->dec.close_code, d->dec.why);
                return true;
            }
            d->src->conn->in->pos += n;
            if (sw_ws_msg_check(&d->msg, &d->f) != SW_OK) {
                protocol_error(r, d, d->msg.close_code, d->msg.why);
                return true;
            }
            if (!pass_whole_frame(r, d, (size_t)n)) {
                flush_run(r, d); /* what follows must stay behind it */
                begin_frame(r, d);
            }
            progress = true;
            break;
        }
        case DIR_CTRL: {
            size_t n = (size_t)SW_MIN((uint64_t)buf_len(d->src->conn->in),
                                      d->remaining);
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
                frame_done(r, d);
                progress = true;
                break;
            }
            if (may_splice(r, d)) {
                d->state = DIR_SPLICE;
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
            size_t n = (size_t)SW_MIN((uint64_t)buf_len(d->src->conn->in),
                                      d->remaining);
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

static bool
dir_process(struct sw_relay *r, struct dir *d)
{
    bool progress = dir_walk(r, d);
    /* the run points into d->src->conn->in: copy it out before d->src->conn->in
     * can move */
    flush_run(r, d);
    return progress;
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
        e->last_rx_ms = sw_now_ms();
        if (e->is_client) {
            sw_metrics_add(r->env.metrics, SW_METRIC_BYTES_FROM_CLIENTS, n);
        }
    } else if (n == SW_ENOMEM) {
        sw_metrics_inc(r->env.metrics, SW_METRIC_OUT_OF_MEMORY);
        start_finishing(r, "gateway", SW_WS_CLOSE_INTERNAL);
    }
}

static bool
end_flush(struct sw_relay *r, struct end *e)
{
    struct sw_conn *c = e->conn;
    if (buf_len(c->out) == 0 || sw_conn_has(c, SW_CONN_F_DEAD)) {
        if (c->out != NULL) {
            c->out->pos = c->out->last; /* nothing more goes to a dead end */
        }
        sw_conn_buf_release_if_empty(c, &c->out);
        return false;
    }
    ssize_t n = sw_conn_flush(c);
    if (n > 0 && e->is_client) {
        sw_metrics_add(r->env.metrics, SW_METRIC_BYTES_TO_CLIENTS, n);
    }
    if (n < 0) {
        c->out->pos = c->out->last;
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
    release_deferred(r, d->dst);
    if (d->close_seen || d->state == DIR_DONE) {
        if (sw_conn_has(e->conn, SW_CONN_F_EOF)) {
            start_finishing(r, r->closed_by ? r->closed_by : e->name,
                            r->close_code);
        }
        return false;
    }
    if (buf_len(d->src->conn->in) > 0 &&
        !sw_conn_has(e->conn, SW_CONN_F_DEAD)) {
        return false; /* frames still to relay before the end */
    }
    struct end *other = e == &r->c ? &r->u : &r->c;
    if ((d->state == DIR_DATA || d->state == DIR_SPLICE) && d->hdr_len == 0 &&
        d->remaining > 0) {
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
    sw_log_warn("ws %s -> %s: %s %s the connection without a close frame%s",
                r->caddr, r->uaddr, e->name,
                sw_conn_has(e->conn, SW_CONN_F_RESET) ? "reset" : "closed",
                other->cut ? " (mid-frame: the other end gets a TCP close)"
                           : "");
    start_finishing(r, e->name, SW_WS_CLOSE_ABNORMAL);
    return true; /* a close waits to be injected: run on */
}

static bool
flushed(const struct end *e)
{
    /* a cut end gets nothing injected any more, only its TCP close */
    return sw_conn_has(e->conn, SW_CONN_F_DEAD) ||
           (buf_len(e->conn->out) == 0 &&
            (e->cut || (e->npongs == 0 && e->close_len == 0)));
}

static bool
dir_over(const struct dir *d)
{
    return d->state == DIR_DONE || sw_conn_has(d->dst->conn, SW_CONN_F_DEAD) ||
           (d->dst->cut && sw_conn_has(d->src->conn, SW_CONN_F_EOF));
}

static void
update_interest(struct sw_relay *r)
{
    struct end *ends[2] = {&r->c, &r->u};
    for (int i = 0; i < 2; i++) {
        struct end *e = ends[i];
        struct dir *in = e->in_dir;
        struct dir *out = e->out_dir;
        struct sw_buf *b = e->conn->in;
        bool read;
        if (in->state == DIR_SPLICE) {
            read = in->remaining > 0 && in->in_pipe < r->env.pipes->pipe_size;
        } else {
            read = b == NULL || sw_buf_room(b) > 0 || b->pos != b->start;
        }
        read = read && !sw_conn_has(e->conn, SW_CONN_F_EOF);
        bool write = buf_len(e->conn->out) > 0 ||
                     (out->state == DIR_SPLICE && out->in_pipe > 0);
        write = write && !sw_conn_has(e->conn, SW_CONN_F_DEAD);
        /* a spliced payload is read from the socket, never the transport:
         * no read for pending TLS bytes then (splice needs plain ends) */
        sw_conn_watch(e->conn, read, write);
    }
}

static void
relay_run(struct sw_relay *r)
{
    bool progress = true;
    for (int i = 0; i < 256 && progress && !r->done; i++) {
        progress = false;
        progress |= dir_process(r, &r->up);
        progress |= dir_process(r, &r->down);
        inject(r, &r->c);
        inject(r, &r->u);
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
    update_interest(r);
    if (progress) {
        /* stopped at the cap with work left (many small frames): let other
         * connections run, then resume without waiting for an event */
        event_active(&r->kick, 0, 0);
    }
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct sw_relay *r = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    if (!r->done) {
        relay_run(r);
    }
}

/* ---- timers: keepalive pings, idle timeout, close deadline ------------- */

static void
arm_timer(struct sw_relay *r)
{
    uint64_t now = sw_now_ms();
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
    struct end *ends[2] = {&r->c, &r->u};
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
    if (next == UINT64_MAX) {
        event_del(&r->timer);
        return;
    }
    uint64_t ms = next > now ? next - now : 1;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(&r->timer, &tv);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sw_relay *r = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    uint64_t now = sw_now_ms();
    if (r->drain_at_ms != 0 && now >= r->drain_at_ms) {
        r->drain_at_ms = 0;
        sw_relay_drain(r);
        if (r->done) {
            return;
        }
    }
    if (r->defer_deadline_ms != 0 && now >= r->defer_deadline_ms) {
        r->defer_deadline_ms = 0;
        release_deferred(r, &r->c);
        release_deferred(r, &r->u);
    }
    if (r->close_deadline_ms != 0 && now >= r->close_deadline_ms) {
        sw_log_info(
            "ws %s -> %s: close handshake timed out (c2u state %d "
            "in %zu eof %d close %d; u2c state %d in %zu eof %d "
            "close %d; out c %zu u %zu)",
            r->caddr, r->uaddr, (int)r->up.state, buf_len(r->c.conn->in),
            (int)sw_conn_has(r->c.conn, SW_CONN_F_EOF), (int)r->up.close_seen,
            (int)r->down.state, buf_len(r->u.conn->in),
            (int)sw_conn_has(r->u.conn, SW_CONN_F_EOF), (int)r->down.close_seen,
            buf_len(r->c.conn->out), buf_len(r->u.conn->out));
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
            start_finishing(r, "gateway", SW_WS_CLOSE_GOING_AWAY);
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
        arm_timer(r);
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

static const struct sw_conn_handlers end_handlers = {
    .on_read = on_read,
    .on_write = on_write,
    .on_timer = NULL,
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
    e->last_rx_ms = r->started_ms;
    sw_conn_rebind(conn, &end_handlers, e);
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
sw_relay_new(const struct sw_relay_env *env, struct sw_relay_start *s)
{
    struct sw_relay *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        sw_metrics_inc(env->metrics, SW_METRIC_OUT_OF_MEMORY);
        return NULL;
    }
    r->env = *env;
    r->rt = s->route;
    r->on_done = s->on_done;
    r->arg = s->arg;
    r->started_ms = sw_now_ms();
    snprintf(r->caddr, sizeof(r->caddr), "%s", s->client_addr);
    snprintf(r->uaddr, sizeof(r->uaddr), "%s", s->upstream_addr);
    end_init(r, &r->c, s->client, true, &r->up, &r->down);
    end_init(r, &r->u, s->upstream, false, &r->down, &r->up);
    dir_init(r, &r->up, &r->c, &r->u, s->rsv_allowed);
    dir_init(r, &r->down, &r->u, &r->c, s->rsv_allowed);
    event_assign(&r->timer, env->base, -1, 0, on_timer, r);
    event_assign(&r->kick, env->base, -1, 0, on_kick, r);
    sw_metrics_inc(env->metrics, SW_METRIC_WS_SESSIONS_TOTAL);
    sw_metrics_inc(env->metrics, SW_METRIC_WS_SESSIONS_ACTIVE);
    arm_timer(r);
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
    start_finishing(r, "gateway", SW_WS_CLOSE_GOING_AWAY);
    relay_run(r);
}

void
sw_relay_drain_after(struct sw_relay *r, uint64_t delay_ms)
{
    if (r == NULL || r->done) {
        return;
    }
    r->drain_at_ms = sw_now_ms() + delay_ms;
    arm_timer(r);
}

void
sw_relay_abort(struct sw_relay *r)
{
    if (r != NULL && !r->done) {
        if (r->closed_by == NULL) {
            r->closed_by = "gateway";
        }
        finish(r);
    }
}

void
sw_relay_free(struct sw_relay *r)
{
    if (r == NULL) {
        return;
    }
    SW_ASSERT(r->done);
    free(r);
}
