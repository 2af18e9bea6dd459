/*
 * proxy_session.c - one client connection's life: accept, the phase loop,
 * events and deadlines, lingering close, drain and the deferred free
 * (states in proxy_int.h).
 *
 * Owns: the session, its two connection ends (lib/conn) and a reference on
 * the snapshot state (struct sw_wconf) it was accepted under. Borrows the
 * worker. Runs on the worker's thread only.
 *
 * Data path per request:
 *
 *   client --c.in--> head decode --> route --> uhead (re-serialised head)
 *                    body decode (CL / chunked) --u.out--> upstream
 *   client <--c.out-- head re-serialised, body re-framed <--u.in-- upstream
 *
 * The upstream never sees the client's raw bytes: the head is rebuilt from
 * the parsed fields and the body is re-framed (its own Content-Length, or
 * chunks re-encoded), which closes the door on request smuggling.
 * Backpressure: each buffer is bounded; a side is read only while the buffer
 * it fills has room.
 *
 * Contents:
 *   transition_ok, sw__proxy_set_state, sw__proxy_show_flags
 *   phase_proxyhdr            the PROXY protocol header (proxy_protocol)
 *   phase_handshake, phase_connect, phase_proxy, phase_local, phase_wait
 *   sw__proxy_run             runs the current state's phase until SW_AGAIN
 *   update_interest, update_timers
 *   start_linger, linger_read, wait_next_request, sw__proxy_next_request
 *   on_client_read / _write / _timer   (client_handlers)
 *   sw__proxy_close, sw__proxy_session_alloc / _unlink / _start / _free /
 *   _drain
 */
#include "proxy_int.h"

#include <shockwave/log.h>
#include <shockwave/tls.h>
#include <shockwave/ws.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

/* Turns of the phase loop per event, at most: each turn moves bytes or
 * changes state, so the cap only matters for a client that pipelined many
 * requests; the loop then resumes through an immediate read event, after
 * other connections had their turn. */
#define SW_PROXY_RUN_TURNS 64

/* Lingering close: RFC 9112 9.6 asks a server that closes while the client
 * may still be sending to close in stages, or the client's TCP stack may
 * discard our answer when the unread bytes turn the close into a reset. */
#define SW_LINGER_TOTAL_MS 5000
#define SW_LINGER_IDLE_MS 1000
#define SW_LINGER_SCRATCH 16384
#define SW_LINGER_READS 16

static const struct sw_conn_handlers client_handlers;

/* ---- state ------------------------------------------------------------ */

static bool
transition_ok(enum sw_proxy_state from, enum sw_proxy_state to)
{
    if (to == SW_PROXY_CLOSING) {
        return from != SW_PROXY_CLOSING;
    }
    switch (from) {
    case SW_PROXY_NEW:
        return to == SW_PROXY_PROXYHDR || to == SW_PROXY_HANDSHAKE ||
               to == SW_PROXY_IDLE || to == SW_PROXY_UPGRADED;
    case SW_PROXY_PROXYHDR:
        return to == SW_PROXY_HANDSHAKE || to == SW_PROXY_IDLE;
    case SW_PROXY_HANDSHAKE:
        return to == SW_PROXY_IDLE;
    case SW_PROXY_IDLE:
        return to == SW_PROXY_HEAD;
    case SW_PROXY_HEAD:
        return to == SW_PROXY_LOCAL || to == SW_PROXY_CONNECT ||
               to == SW_PROXY_PROXY;
    case SW_PROXY_CONNECT:
        return to == SW_PROXY_PROXY || to == SW_PROXY_LOCAL ||
               to == SW_PROXY_CONNECT;
    case SW_PROXY_PROXY:
        return to == SW_PROXY_IDLE || to == SW_PROXY_LOCAL ||
               to == SW_PROXY_CONNECT || to == SW_PROXY_UPGRADED ||
               to == SW_PROXY_LINGER;
    case SW_PROXY_LOCAL:
        return to == SW_PROXY_IDLE || to == SW_PROXY_LINGER;
    case SW_PROXY_UPGRADED:
        return to == SW_PROXY_LINGER;
    case SW_PROXY_LINGER:
    case SW_PROXY_CLOSING:
        return false;
    }
    return false;
}

void
sw__proxy_set_state(struct sw_session *p, enum sw_proxy_state to)
{
    SW_ASSERT(transition_ok(p->state, to));
    p->state = to;
}

const char *
sw__proxy_show_flags(unsigned flags, char *out, size_t n)
{
    static const struct sw_flag_name names[] = {
        {SW_SESS_F_REUSED, "REUSED"},
        {SW_SESS_F_RETRIED, "RETRIED"},
        {SW_SESS_F_HEAD_SENT, "HEAD_SENT"},
        {SW_SESS_F_CLIENT_KEEPALIVE, "CLIENT_KEEPALIVE"},
        {SW_SESS_F_REQ_DONE, "REQ_DONE"},
        {SW_SESS_F_SENT_CONTINUE, "SENT_CONTINUE"},
        {SW_SESS_F_RESP_HEAD_DONE, "RESP_HEAD_DONE"},
        {SW_SESS_F_RESP_CHUNK_OUT, "RESP_CHUNK_OUT"},
        {SW_SESS_F_RESP_KEEPALIVE, "RESP_KEEPALIVE"},
        {SW_SESS_F_RESP_DONE, "RESP_DONE"},
        {SW_SESS_F_CLOSE_AFTER, "CLOSE_AFTER"},
        {SW_SESS_F_WS_UPGRADE, "WS_UPGRADE"},
        {SW_SESS_F_RESP_STARTED, "RESP_STARTED"},
        {SW_SESS_F_IDEMPOTENT, "IDEMPOTENT"},
        {SW_SESS_F_PLUGIN_ANSWER, "PLUGIN_ANSWER"},
        {SW_SESS_F_WAIT_SENT, "WAIT_SENT"},
    };
    return sw_flags_show(flags, names, SW_NELEMS(names), out, n);
}

/* ---- closing and the end of an exchange -------------------------------- */

void
sw__proxy_close(struct sw_session *p)
{
    if (p->state == SW_PROXY_CLOSING) {
        return;
    }
    if (sw_log_enabled(SW_LOG_DEBUG)) {
        char cf[SW_CONN_FLAGS_TEXT];
        char uf[SW_CONN_FLAGS_TEXT];
        char sf[SW_SESS_FLAGS_TEXT];
        sw_log_debug("session %llu: closing in state %d, flags %s, client %s, "
                     "upstream %s",
                     (unsigned long long)p->id, (int)p->state,
                     sw__proxy_show_flags(p->flags, sf, sizeof(sf)),
                     sw_conn_show_flags(p->c.flags, cf, sizeof(cf)),
                     sw_conn_show_flags(p->u.flags, uf, sizeof(uf)));
    }
    sw__proxy_set_state(p, SW_PROXY_CLOSING);
    sw__proxy_kept_release(p, !p->w->draining);
    sw__proxy_upstream_release(p, false);
    sw_conn_close(&p->c);
    sw__proxy_session_closed(p);
}

/* What one request leaves behind is cleared before the next. */
static void
reset_request(struct sw_session *p)
{
    p->route = NULL;
    p->up = NULL;
    p->peer = NULL;
    p->req_body = SW_HTTP_BODY_NONE;
    p->flags &= SW_SESS_F_CLIENT_KEEPALIVE;
    p->status = 0;
    p->bytes_out = 0;
    p->method_id = -1; /* no request yet: a head refused next is not HEAD */
    sw_plugin_request_end(p->plug); /* a request cut short left edits */
}

static void
start_linger(struct sw_session *p)
{
    if (sw_conn_has(&p->c, SW_CONN_F_EOF)) {
        sw__proxy_close(p);
        return;
    }
    if (p->c.io.ops != &sw_io_plain) {
        /* end the transport first (TLS: close_notify), then linger on the
         * raw socket: what still arrives is dropped undecrypted */
        p->c.io.ops->close(&p->c.io);
        p->c.io.ops = &sw_io_plain;
    }
    sw_conn_shutdown_write(&p->c); /* after what is queued (io_uring) */
    sw__proxy_set_state(p, SW_PROXY_LINGER);
    p->linger_until_ms = sw_now_ms() + SW_LINGER_TOTAL_MS;
    sw_conn_timer(&p->c, SW_LINGER_IDLE_MS);
}

static void
linger_read(struct sw_session *p)
{
    char scratch[SW_LINGER_SCRATCH];
    for (int i = 0; i < SW_LINGER_READS; i++) {
        ssize_t n =
            sw_conn_recv_into(&p->c, (uint8_t *)scratch, sizeof(scratch));
        if (n == SW_AGAIN) {
            break;
        }
        if (n <= 0 || sw_now_ms() >= p->linger_until_ms) {
            sw__proxy_close(p);
            return;
        }
    }
    sw_conn_timer(&p->c, SW_LINGER_IDLE_MS);
}

/* Between requests: no buffers held, keepalive_timeout armed. */
static void
wait_next_request(struct sw_session *p)
{
    reset_request(p);
    sw__proxy_set_state(p, SW_PROXY_IDLE);
    sw_conn_release_idle(&p->c);
    sw_conn_timer(&p->c, conf_of(p)->keepalive_timeout_ms);
}

void
sw__proxy_next_request(struct sw_session *p, bool keep)
{
    if (keep) {
        wait_next_request(p);
    } else {
        start_linger(p);
    }
}

/* The relay ended: a client end it left open gets the same lingering close
 * as an HTTP answer that closes (see finish_as in relay.c for why). */
void
sw__proxy_relay_done(struct sw_session *p)
{
    if (!sw_conn_is_open(&p->c)) {
        sw__proxy_close(p);
        return;
    }
    sw_conn_rebind(&p->c, &client_handlers, p);
    sw_conn_grow_upto(&p->c, 0);
    start_linger(p);
    sw__proxy_run(p); /* LINGER: arms the read that drops what comes */
}

/* ---- phases ----------------------------------------------------------- */

/* Send what c.out holds. SW_OK when bytes went out, SW_AGAIN when none
 * could, SW_ECLOSED when the client is gone (the session is closed). */
static enum sw_status
flush_client(struct sw_session *p)
{
    ssize_t n = sw_conn_flush(&p->c);
    if (n < 0) {
        sw__proxy_close(p);
        return SW_ECLOSED;
    }
    if (n > 0) {
        sw_metrics_add(&p->w->metrics, SW_METRIC_BYTES_TO_CLIENTS, n);
        return SW_OK;
    }
    return SW_AGAIN;
}

/* The client's first exchange on its transport: the TLS handshake on a TLS
 * listener, else the first request, under its header timeout. False when
 * the session was closed. */
static bool
start_transport(struct sw_session *p)
{
    const struct sw_conf *cf = conf_of(p);
    if (p->l->tls) {
        /* the snapshot built its TLS contexts at load (gateway) */
        if (cf->tls == NULL ||
            sw_tls_server_attach(cf->tls, p->w->id, &p->c.io) != SW_OK) {
            sw_log_error("client %s:%s: cannot start TLS", p->raddr, p->rport);
            sw__proxy_close(p);
            return false;
        }
        sw__proxy_set_state(p, SW_PROXY_HANDSHAKE);
        sw_conn_timer(&p->c, cf->tls_handshake_timeout_ms);
    } else {
        sw__proxy_set_state(p, SW_PROXY_IDLE);
        /* the first request gets the header timeout from accept */
        sw_conn_timer(&p->c, cf->client_header_timeout_ms);
        sw_conn_ring_join(&p->c, p->w->ring); /* on the io_uring engine */
    }
    return true;
}

/* A PROXY header that did not come whole and right: logged once, counted,
 * closed without an answer (the balancer in front expects none). */
static enum sw_status
proxyhdr_refuse(struct sw_session *p, const char *why, int err)
{
    sw_log_warn("client %s:%s: PROXY protocol header refused: %s%s%s", p->raddr,
                p->rport, why, err != 0 ? ": " : "",
                err != 0 ? strerror(err) : "");
    sw_metrics_inc(&p->w->metrics, SW_METRIC_PROXY_PROTOCOL_ERRORS);
    sw__proxy_close(p);
    return SW_ECLOSED;
}

/*
 * PROXYHDR: read the PROXY protocol header off the socket itself, never a
 * byte more, so what follows (a TLS ClientHello, a request) is still there
 * for the transport. The bytes are peeked; a complete header is then
 * consumed to its exact length, an incomplete one (every byte peeked
 * belongs to it) is consumed whole into c.in, which holds nothing else
 * until the header ends and is then emptied.
 */
static enum sw_status
phase_proxyhdr(struct sw_session *p)
{
    if (!sw_conn_buf_ready(&p->c, &p->c.in)) {
        sw_metrics_inc(&p->w->metrics, SW_METRIC_OUT_OF_MEMORY);
        sw__proxy_close(p);
        return SW_ECLOSED;
    }
    struct sw_buf *b = p->c.in;
    size_t have = sw_buf_len(b);
    size_t want = SW_PROXYPROTO_V2_MAX - have;
    if (sw_buf_room(b) < want) {
        want = sw_buf_room(b);
    }
    ssize_t n = recv(p->c.io.fd, b->last, want, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return SW_AGAIN;
    }
    if (n < 0) {
        return proxyhdr_refuse(p, "recv failed before the header", errno);
    }
    if (n == 0) {
        return proxyhdr_refuse(p, "connection closed before the header", 0);
    }
    struct sw_proxyproto pp;
    enum sw_status st = sw_http_proxyproto_decode(&pp, b->pos, have + (size_t)n,
                                                  SW_PROXYPROTO_V2_MAX);
    if (st == SW_EPROTO) {
        return proxyhdr_refuse(p, pp.reason, 0);
    }
    size_t take = st == SW_OK ? pp.len - have : (size_t)n;
    if (st == SW_AGAIN && have + (size_t)n >= SW_PROXYPROTO_V2_MAX) {
        return proxyhdr_refuse(p, "header longer than the bound", 0);
    }
    /* the peeked bytes are queued: this read returns exactly `take` */
    ssize_t got = recv(p->c.io.fd, b->last, take, 0);
    if (got != (ssize_t)take) {
        return proxyhdr_refuse(p, "header bytes vanished from the socket",
                               got < 0 ? errno : 0);
    }
    sw_metrics_add(&p->w->metrics, SW_METRIC_BYTES_FROM_CLIENTS, got);
    b->last += got;
    if (st == SW_AGAIN) {
        return SW_AGAIN;
    }
    char host[sizeof(p->raddr)];
    char port[sizeof(p->rport)];
    if (sw_http_proxyproto_addr_text(&pp, host, sizeof(host), port,
                                     sizeof(port)) > 0) {
        sw_log_debug("client %s:%s: PROXY v%u header: client %s:%s", p->raddr,
                     p->rport, pp.version, host, port);
        memcpy(p->raddr, host, sizeof(host));
        memcpy(p->rport, port, sizeof(port));
    }
    sw_conn_buf_release(&p->c, &p->c.in);
    return start_transport(p) ? SW_OK : SW_ECLOSED;
}

/* HANDSHAKE: drive the client's transport handshake (TLS). */
static enum sw_status
phase_handshake(struct sw_session *p)
{
    enum sw_status st = p->c.io.ops->handshake(&p->c.io);
    if (st == SW_AGAIN) {
        return SW_AGAIN;
    }
    if (st != SW_OK) {
        sw__proxy_close(p); /* the transport logged why */
        return SW_ECLOSED;
    }
    sw__proxy_set_state(p, SW_PROXY_IDLE);
    sw_conn_timer(&p->c, conf_of(p)->client_header_timeout_ms);
    /* its records go through the ring from now on (io_uring engine) */
    sw_conn_ring_join(&p->c, p->w->ring);
    return SW_OK;
}

/* CONNECT: the connect is event-driven (proxy_upstream.c); meanwhile our
 * own 100 Continue may still go out. */
static enum sw_status
phase_connect(struct sw_session *p)
{
    return flush_client(p);
}

/* PROXY: request body up, response down, until nothing moves; then the
 * exchange ends once its response is flushed. */
static enum sw_status
phase_proxy(struct sw_session *p)
{
    bool moved = sw__proxy_pump_request_body(p);
    if (p->state != SW_PROXY_PROXY) {
        return SW_OK;
    }
    moved |= sw__proxy_flush_upstream(p);
    moved |= sw__proxy_pump_response(p);
    if (p->state != SW_PROXY_PROXY) {
        return SW_OK;
    }
    enum sw_status st = flush_client(p);
    if (st == SW_ECLOSED) {
        return st;
    }
    if (has(p, SW_SESS_F_RESP_DONE) && sw_conn_buffered(p->c.out) == 0) {
        sw__proxy_request_done(p);
        return SW_OK;
    }
    return moved || st == SW_OK ? SW_OK : SW_AGAIN;
}

/* LOCAL: our own answer goes out; then the next request, or linger. */
static enum sw_status
phase_local(struct sw_session *p)
{
    enum sw_status st = flush_client(p);
    if (st == SW_ECLOSED) {
        return st;
    }
    if (sw_conn_buffered(p->c.out) == 0) {
        sw__proxy_next_request(p, !has(p, SW_SESS_F_CLOSE_AFTER));
        return SW_OK;
    }
    return st;
}

/* States whose progress comes only from events (LINGER) or that the loop
 * never runs (NEW, UPGRADED, CLOSING). */
static enum sw_status
phase_wait(struct sw_session *p)
{
    SW_UNUSED(p);
    return SW_AGAIN;
}

static enum sw_status (*const phases[])(struct sw_session *p) = {
    [SW_PROXY_NEW] = phase_wait,
    [SW_PROXY_PROXYHDR] = phase_proxyhdr,
    [SW_PROXY_HANDSHAKE] = phase_handshake,
    [SW_PROXY_IDLE] = sw__proxy_phase_head,
    [SW_PROXY_HEAD] = sw__proxy_phase_head,
    [SW_PROXY_LOCAL] = phase_local,
    [SW_PROXY_CONNECT] = phase_connect,
    [SW_PROXY_PROXY] = phase_proxy,
    [SW_PROXY_UPGRADED] = phase_wait,
    [SW_PROXY_LINGER] = phase_wait,
    [SW_PROXY_CLOSING] = phase_wait,
};

/* ---- interest and deadlines -------------------------------------------- */

/* Arm each end's events for what its state waits for. */
static void
update_interest(struct sw_session *p)
{
    struct sw_conn *c = &p->c;
    struct sw_conn *u = &p->u;
    bool read_client = false;
    switch (p->state) {
    case SW_PROXY_PROXYHDR:
        sw_conn_watch(c, true, false);
        return;
    case SW_PROXY_HANDSHAKE: {
        bool wr = c->io.want == SW_IO_WANT_WRITE;
        sw_conn_watch(c, !wr, wr);
        return;
    }
    case SW_PROXY_IDLE:
    case SW_PROXY_HEAD:
    case SW_PROXY_CONNECT:
    case SW_PROXY_PROXY:
        /* after the body, bytes read are a pipelined next request: they
         * wait in c.in (bounded), and the read interest need not flip off
         * and on for every request */
        read_client = !sw_conn_has(c, SW_CONN_F_EOF) && sw_conn_in_has_room(c);
        break;
    case SW_PROXY_LINGER:
        read_client = true;
        break;
    default:
        break;
    }
    /* an upgrade that waits for the client's queued sends (WAIT_SENT)
     * asks for on_write: the queue sent */
    sw_conn_watch(c, read_client,
                  sw_conn_buffered(c->out) > 0 || has(p, SW_SESS_F_WAIT_SENT));

    if (sw_conn_is_open(u) && p->state == SW_PROXY_PROXY) {
        bool sending =
            !has(p, SW_SESS_F_HEAD_SENT) || sw_conn_buffered(u->out) > 0;
        bool reading = !sw_conn_has(u, SW_CONN_F_EOF) &&
                       !has(p, SW_SESS_F_RESP_DONE) && sw_conn_in_has_room(u);
        sw_conn_watch(u, reading, sending);
    }
}

/* Arm the deadlines that fit the state; called after progress. */
static void
update_timers(struct sw_session *p, bool c_progress, bool u_progress)
{
    const struct sw_conf *cf = conf_of(p);
    bool proxying = p->state == SW_PROXY_PROXY;
    if ((proxying || p->state == SW_PROXY_LOCAL) &&
        (c_progress || !sw_conn_timer_armed(&p->c))) {
        if (sw_conn_buffered(p->c.out) > 0) {
            sw_conn_timer(&p->c, cf->send_timeout_ms);
        } else if (!has(p, SW_SESS_F_REQ_DONE) && proxying) {
            sw_conn_timer(&p->c, cf->client_body_timeout_ms);
        } else {
            sw_conn_timer(&p->c, 0);
        }
    }
    if (proxying && (u_progress || !sw_conn_timer_armed(&p->u))) {
        bool sending =
            !has(p, SW_SESS_F_HEAD_SENT) || sw_conn_buffered(p->u.out) > 0;
        if (has(p, SW_SESS_F_RESP_DONE)) {
            sw_conn_timer(&p->u, 0);
        } else if (sending && !has(p, SW_SESS_F_RESP_HEAD_DONE)) {
            sw_conn_timer(&p->u, route_or(p->route->send_timeout_ms,
                                          p->up->cf->send_timeout_ms));
        } else {
            sw_conn_timer(&p->u, route_or(p->route->read_timeout_ms,
                                          p->up->cf->read_timeout_ms));
        }
    }
}

/* ---- the loop ---------------------------------------------------------- */

/* The session no longer runs its phases: closed, or handed to the relay. */
static bool
left_loop(const struct sw_session *p)
{
    return p->state == SW_PROXY_CLOSING || p->state == SW_PROXY_UPGRADED;
}

/* Run the current state's phase until it answers SW_AGAIN (nothing moves
 * until an event) or the session left for the relay or closed. */
void
sw__proxy_run(struct sw_session *p)
{
    for (int turn = 0; turn < SW_PROXY_RUN_TURNS; turn++) {
        if (left_loop(p)) {
            return;
        }
        if (phases[p->state](p) == SW_AGAIN) {
            update_interest(p);
            return;
        }
    }
    if (left_loop(p)) {
        return;
    }
    update_interest(p);
    sw_conn_wake(&p->c); /* work left: resume after the others */
}

/* Advance after I/O on one side, then re-arm that side's deadlines. */
void
sw__proxy_run_io(struct sw_session *p, bool client_side)
{
    sw__proxy_run(p);
    if (!left_loop(p)) {
        update_timers(p, client_side, !client_side);
    }
}

/* ---- client events ----------------------------------------------------- */

/* Read one end of the session into its `in` buffer. Returns the bytes
 * read or a status; SW_ENOMEM closes the session (counted). */
ssize_t
sw__proxy_read(struct sw_session *p, struct sw_conn *c)
{
    ssize_t n = sw_conn_read(c);
    if (n == SW_ENOMEM) {
        sw_metrics_inc(&p->w->metrics, SW_METRIC_OUT_OF_MEMORY);
        sw__proxy_close(p);
    }
    return n;
}

/* Read the client into c.in; false when the session was closed. */
static bool
client_read(struct sw_session *p)
{
    ssize_t n = sw__proxy_read(p, &p->c);
    if (n > 0) {
        sw_metrics_add(&p->w->metrics, SW_METRIC_BYTES_FROM_CLIENTS, n);
    }
    return n != SW_ENOMEM;
}

static void
on_client_read(struct sw_conn *c, void *arg)
{
    struct sw_session *p = arg;
    SW_UNUSED(c);
    switch (p->state) {
    case SW_PROXY_LINGER:
        linger_read(p);
        return;
    case SW_PROXY_PROXYHDR:
    case SW_PROXY_HANDSHAKE:
        sw__proxy_run(p);
        return;
    case SW_PROXY_CLOSING:
        return;
    default:
        if (client_read(p)) {
            sw__proxy_run_io(p, true);
        }
        return;
    }
}

static void
on_client_write(struct sw_conn *c, void *arg)
{
    struct sw_session *p = arg;
    if (p->state == SW_PROXY_CLOSING) {
        return;
    }
    if (p->state == SW_PROXY_HANDSHAKE || p->state == SW_PROXY_PROXYHDR) {
        sw__proxy_run(p);
        return;
    }
    if (sw_conn_has(c, SW_CONN_F_READ_WANTS_WRITE) && !client_read(p)) {
        return;
    }
    sw__proxy_run_io(p, true);
}

static void
on_client_timer(struct sw_conn *c, void *arg)
{
    struct sw_session *p = arg;
    SW_UNUSED(c);
    switch (p->state) {
    case SW_PROXY_PROXYHDR:
        proxyhdr_refuse(p, "no complete header within client_header_timeout",
                        0);
        return;
    case SW_PROXY_HANDSHAKE:
        sw_log_info("client %s:%s: TLS handshake timed out", p->raddr,
                    p->rport);
        sw__proxy_close(p);
        return;
    case SW_PROXY_IDLE:
    case SW_PROXY_LINGER:
        sw__proxy_close(p); /* keep-alive idle or linger over: quietly */
        return;
    case SW_PROXY_HEAD:
        set_flag(p, SW_SESS_F_CLIENT_KEEPALIVE, false);
        snprintf(p->log_req, sizeof(p->log_req), "-");
        sw__proxy_respond_error(p, 408, "client_header_timeout");
        break;
    case SW_PROXY_PROXY:
    case SW_PROXY_CONNECT:
        if (!has(p, SW_SESS_F_REQ_DONE) && sw_conn_buffered(p->c.out) == 0 &&
            !has(p, SW_SESS_F_RESP_HEAD_DONE)) {
            sw__proxy_respond_error(p, 408, "client_body_timeout");
            break;
        }
        /* a client that stopped reading */
        __attribute__((fallthrough));
    default:
        sw_log_warn("client %s:%s: send_timeout or body timeout, closing",
                    p->raddr, p->rport);
        sw__proxy_close(p);
        return;
    }
    sw__proxy_run(p);
}

static const struct sw_conn_handlers client_handlers = {
    .on_read = on_client_read,
    .on_write = on_client_write,
    .on_timer = on_client_timer,
};

/* ---- session lifecycle ------------------------------------------------ */

static void
addr_text(const struct sockaddr *sa, char *host, size_t hostlen, char *port,
          size_t portlen)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, (socklen_t)hostlen);
        snprintf(port, portlen, "%u", ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, (socklen_t)hostlen);
        snprintf(port, portlen, "%u", ntohs(s4->sin_port));
    }
}

struct sw_session *
sw__proxy_session_alloc(struct sw_worker *w, struct sw_listener *l,
                        struct sw_wconf *wc)
{
    struct sw_session *p = sw_slab_zalloc(&w->session_slab);
    if (p == NULL) {
        sw_metrics_inc(&w->metrics, SW_METRIC_OUT_OF_MEMORY);
        return NULL;
    }
    p->w = w;
    p->l = l;
    p->wc = wc;
    p->wc->refs++;
    sw_conn_init(&p->c, "client", w->base, &w->bufs, &client_handlers, p);
    sw_conn_init(&p->u, "upstream", w->base, &w->bufs,
                 &sw__proxy_upstream_handlers, p);
    p->next = w->sessions;
    if (w->sessions != NULL) {
        w->sessions->prev = p;
    }
    w->sessions = p;
    return p;
}

void
sw__proxy_session_unlink(struct sw_session *p)
{
    struct sw_worker *w = p->w;
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        w->sessions = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    }
    p->prev = p->next = NULL;
}

void
sw__proxy_session_start(struct sw_worker *w, struct sw_listener *l, int fd,
                        const struct sockaddr *sa)
{
    static uint64_t next_id;
    struct sw_session *p = sw__proxy_session_alloc(w, l, w->wconf);
    if (p == NULL) {
        close(fd);
        return;
    }
    p->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    addr_text(sa, p->raddr, sizeof(p->raddr), p->rport, sizeof(p->rport));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sw_conn_attach(&p->c, &(struct sw_io){.fd = fd, .ops = &sw_io_plain});
    w->nsessions++;
    sw_metrics_inc(&w->metrics, SW_METRIC_CLIENT_CONNECTIONS_TOTAL);
    sw_metrics_inc(&w->metrics, SW_METRIC_CLIENT_CONNECTIONS_ACTIVE);

    if (l->proxy_protocol) {
        /* before anything else, TLS included; the header timeout bounds it */
        sw__proxy_set_state(p, SW_PROXY_PROXYHDR);
        sw_conn_timer(&p->c, conf_of(p)->client_header_timeout_ms);
    } else if (!start_transport(p)) {
        return;
    }
    sw_conn_watch(&p->c, true, false);
}

void
sw__proxy_session_free(struct sw_session *p)
{
    struct sw_worker *w = p->w;
    sw__proxy_session_unlink(p);
    w->nsessions--;
    sw_metrics_add(&w->metrics, SW_METRIC_CLIENT_CONNECTIONS_ACTIVE, -1);
    sw__proxy_metrics_done(p, false, 0); /* an exchange cut short */
    sw_relay_free(p->relay);
    sw_plugin_sess_free(p->plug);
    sw__proxy_wconf_unref(p->wc);
    sw_slab_free(&w->session_slab, p);
}

void
sw__proxy_session_drain(struct sw_session *p, bool force)
{
    if (p->state == SW_PROXY_CLOSING) {
        return;
    }
    if (p->state == SW_PROXY_UPGRADED) {
        if (force) {
            sw_relay_abort(p->relay);
            return;
        }
        /* spread the 1001 closes over half the drain window, so that
         * clients do not all reconnect at the same instant */
        uint64_t window = conf_of(p)->shutdown_timeout_ms / 2;
        uint8_t rnd[2];
        sw_ws_rng_bytes(&p->w->rng, rnd, sizeof(rnd));
        uint64_t delay =
            window != 0 ? ((uint64_t)rnd[0] << 8 | rnd[1]) % window : 0;
        sw_relay_drain_after(p->relay, delay + 1);
        return;
    }
    if (force || p->state == SW_PROXY_IDLE || p->state == SW_PROXY_LINGER ||
        p->state == SW_PROXY_HANDSHAKE || p->state == SW_PROXY_PROXYHDR) {
        sw__proxy_close(p);
        return;
    }
    set_flag(p, SW_SESS_F_CLOSE_AFTER, true); /* finish, then close */
}
