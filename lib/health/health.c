/*
 * health.c - the active health checker (see health.h): per-server probes
 * over plain TCP or TLS, HTTP, TCP and WebSocket check types, fall/rise
 * counting and the shared up/down state.
 *
 * Owns: the entries (one per server of the snapshot applied last), their
 * events and probe sockets, a reference on each entry's state and on that
 * snapshot. Borrows the event_base. One thread: the checker's loop.
 */
#include <shockwave/health.h>
#include <shockwave/http.h>
#include <shockwave/log.h>
#include <shockwave/tls.h>
#include <shockwave/ws.h>

#include <errno.h>
#include <stdarg.h>
#include <event2/event_struct.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <time.h>
#include <unistd.h>

#define PROBE_BUF 2048  /* request out, answer head in */
#define PROBE_RESULT 96 /* bytes of a result text */
#define SWEEP_MS 100    /* how often passive failures are looked at */

enum probe_phase {
    PROBE_IDLE = 0,  /* waiting for the interval timer */
    PROBE_CONNECT,   /* non-blocking connect in flight */
    PROBE_HANDSHAKE, /* TLS handshake toward a `server ... tls` */
    PROBE_SEND,      /* request being written */
    PROBE_READ,      /* answer head being read */
};

struct hc_entry {
    struct sw_health *h;                /* borrowed: owning checker */
    struct sw_upstream_state *st;       /* ref: the shared state */
    const struct sw_conf_upstream *ucf; /* borrowed (h->cf) */
    const struct sw_conf_server *scf;   /* borrowed (h->cf) */
    struct event timer;                 /* every hc.interval_ms */
    struct event ioev;                  /* the probe socket */
    struct event deadline;              /* hc.timeout_ms after start */
    bool armed;                         /* events assigned */
    enum probe_phase phase;             /* see health.h */
    struct sw_io io;                    /* owned while a probe runs */
    char buf[PROBE_BUF];                /* request, then the answer */
    size_t len;                         /* bytes in buf */
    size_t sent;                        /* request bytes sent */
    char key[SW_WS_KEY_LEN + 1];        /* Sec-WebSocket-Key sent */
    char result[PROBE_RESULT];          /* last result text */
    unsigned ok_run;                    /* successes in a row */
    unsigned fail_run;                  /* failures in a row */
    uint64_t checks_ok;                 /* probes passed */
    uint64_t checks_failed;             /* probes failed */
    uint64_t last_check_ms;             /* wall clock of the last result */
    uint64_t last_change_ms;            /* wall clock of the last change */
    uint64_t passive_seen;              /* st->passive_fails folded in */
    unsigned run_passive;               /* of fail_run: client failures */
};

struct sw_health {
    struct event_base *base;   /* borrowed */
    struct sw_conf *cf;        /* ref: the snapshot applied last */
    struct hc_entry **entries; /* owned: one per server of cf */
    size_t nentries;           /* entries in entries */
    struct sw_ws_rng rng;      /* WebSocket keys and masks */
    struct event sweep;        /* every SWEEP_MS: passive failures */
    bool sweeping;             /* sweep added */
};

static struct timeval
tv_ms(uint64_t ms)
{
    return (struct timeval){(time_t)(ms / 1000),
                            (suseconds_t)(ms % 1000) * 1000};
}

static void
probe_close(struct hc_entry *e)
{
    if (e->io.fd >= 0) {
        event_del(&e->ioev);
        e->io.ops->close(&e->io);
        close(e->io.fd);
        e->io.fd = -1;
    }
    event_del(&e->deadline);
    e->phase = PROBE_IDLE;
}

/* Flip the shared state when the run in progress reached fall (down) or
 * rise (up); logged once per change with the reason. */
static void
judge(struct hc_entry *e, bool ok, const char *reason)
{
    const struct sw_conf_health_check *hc = &e->ucf->hc;
    bool up = atomic_load_explicit(&e->st->up, memory_order_relaxed);
    unsigned run = ok ? e->ok_run : e->fail_run;
    if (ok == up || run < (ok ? hc->rise : hc->fall)) {
        return;
    }
    atomic_store_explicit(&e->st->up, ok, memory_order_relaxed);
    e->last_change_ms = sw_wall_ms();
    char passive[48] = "";
    if (!ok && e->run_passive > 0 && e->run_passive < run) {
        snprintf(passive, sizeof(passive), ", %u of them client requests",
                 e->run_passive);
    }
    sw_log_warn("health: upstream %s server %s: %s -> %s (%s, %u %s in a "
                "row%s)",
                e->ucf->name.p, e->scf->text.p, up ? "up" : "down",
                ok ? "up" : "down", reason, run,
                ok ? (run == 1 ? "success" : "successes")
                   : (run == 1 ? "failure" : "failures"),
                passive);
}

/* Passive failures reported by the workers since the last look count as
 * failures in the run (a good probe ends the run, as it would a run of
 * failed probes). */
static void
fold_passive(struct hc_entry *e)
{
    uint64_t n =
        atomic_load_explicit(&e->st->passive_fails, memory_order_relaxed);
    uint64_t d = n - e->passive_seen;
    e->passive_seen = n;
    if (d == 0 || !e->ucf->hc.enabled) {
        return;
    }
    unsigned add = d > 1000 ? 1000u : (unsigned)d;
    e->ok_run = 0;
    e->fail_run += add;
    e->run_passive += add;
    judge(e, false, "client requests failing");
}

/* Count a probe's result toward fall or rise. */
static void probe_done(struct hc_entry *e, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
probe_done(struct hc_entry *e, bool ok, const char *fmt, ...)
{
    probe_close(e);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->result, sizeof(e->result), fmt, ap);
    va_end(ap);
    e->last_check_ms = sw_wall_ms();
    fold_passive(e);
    if (ok) {
        e->checks_ok++;
        e->fail_run = 0;
        e->run_passive = 0;
        e->ok_run++;
    } else {
        e->checks_failed++;
        e->ok_run = 0;
        e->fail_run++;
    }
    sw_log_debug("health: upstream %s server %s: %s (%s)", e->ucf->name.p,
                 e->scf->text.p, ok ? "ok" : "failed", e->result);
    judge(e, ok, e->result);
}

static void on_probe_io(evutil_socket_t fd, short what, void *arg);

/* Arm the probe socket for the direction the phase (or TLS) waits on. */
static void
probe_wait(struct hc_entry *e, bool write)
{
    if (e->io.want == SW_IO_WANT_READ) {
        write = false;
    } else if (e->io.want == SW_IO_WANT_WRITE) {
        write = true;
    }
    event_del(&e->ioev);
    event_assign(&e->ioev, e->h->base, e->io.fd, write ? EV_WRITE : EV_READ,
                 on_probe_io, e);
    event_add(&e->ioev, NULL);
}

/* The request for an http or websocket check, into buf. */
static void
build_request(struct hc_entry *e)
{
    const struct sw_conf_health_check *hc = &e->ucf->hc;
    struct sw_str host = hc->host.len > 0 ? hc->host : e->scf->text;
    int n;
    if (hc->type == SW_CONF_CHECK_WEBSOCKET) {
        sw_ws_handshake_key(&e->h->rng, e->key);
        n = snprintf(e->buf, sizeof(e->buf),
                     "GET %s HTTP/1.1\r\nHost: %.*s\r\n"
                     "User-Agent: shockwave-health-check\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     hc->path.p, (int)host.len, host.p, e->key);
    } else {
        n = snprintf(e->buf, sizeof(e->buf),
                     "GET %s HTTP/1.1\r\nHost: %.*s\r\n"
                     "User-Agent: shockwave-health-check\r\n"
                     "Connection: close\r\n\r\n",
                     hc->path.p, (int)host.len, host.p);
    }
    /* path and host are bounded by the configuration (a path line of
     * several KiB would be cut, and then fail as an HTTP error) */
    e->len = n > 0 ? SW_MIN((size_t)n, sizeof(e->buf) - 1) : 0;
    e->sent = 0;
}

/* RFC 6455 5.5.1: a client's close frame, masked, code 1000. Sent once,
 * best effort: the connection is closed right after either way. */
static void
send_ws_close(struct hc_entry *e)
{
    uint8_t payload[SW_WS_MAX_CONTROL];
    uint8_t f[SW_WS_MAX_HEADER + SW_WS_MAX_CONTROL];
    uint8_t key[4];
    size_t n = sw_ws_close_encode(payload, SW_WS_CLOSE_NORMAL, NULL, 0);
    sw_ws_rng_key(&e->h->rng, key);
    size_t h = sw_ws_frame_encode(f, true, SW_WS_OP_CLOSE, key, n);
    memcpy(f + h, payload, n);
    sw_ws_mask(f + h, n, key, 0);
    (void)e->io.ops->send(&e->io, f, h + n);
}

/* An http check needs the status line only (RFC 9112 4: "HTTP/1.x NNN"
 * then a space or the line's end), so large heads never fail it. A
 * verdict, or false to read on. */
static bool
judge_status_line(struct hc_entry *e, bool eof)
{
    const struct sw_conf_health_check *hc = &e->ucf->hc;
    const char *eol = memchr(e->buf, '\n', e->len);
    if (eol == NULL && !eof && e->len < sizeof(e->buf) - 1) {
        return false;
    }
    const char *p = e->buf;
    size_t n = eol != NULL ? (size_t)(eol - e->buf) : e->len;
    bool shape = n >= 12 && memcmp(p, "HTTP/1.", 7) == 0 &&
                 (p[7] == '0' || p[7] == '1') && p[8] == ' ' && p[9] >= '1' &&
                 p[9] <= '5' && p[10] >= '0' && p[10] <= '9' && p[11] >= '0' &&
                 p[11] <= '9' && (n == 12 || p[12] == ' ' || p[12] == '\r');
    if (!shape || eol == NULL) {
        probe_done(e, false, "bad answer: %s",
                   e->len == 0           ? "closed without an answer"
                   : eol == NULL && !eof ? "status line too long"
                   : !shape              ? "not an HTTP/1.x status line"
                                         : "closed within the status line");
        return true;
    }
    unsigned status =
        (unsigned)((p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0'));
    bool ok = status >= hc->expect_lo && status <= hc->expect_hi;
    probe_done(e, ok, "HTTP %u", status);
    return true;
}

/* The answer head so far in buf (a websocket check): a verdict, or false
 * to read on. */
static bool
judge_answer(struct hc_entry *e, bool eof)
{
    const struct sw_conf_health_check *hc = &e->ucf->hc;
    if (hc->type == SW_CONF_CHECK_HTTP) {
        return judge_status_line(e, eof);
    }
    struct sw_http_header hdrs[32];
    struct sw_http_response resp = {.headers = hdrs,
                                    .headers_cap = SW_NELEMS(hdrs)};
    struct sw_http_limits lim = {sizeof(e->buf), sizeof(e->buf), 32};
    const char *why = NULL;
    enum sw_status rc = sw_http_response_decode(&resp, e->buf, e->len, &lim,
                                                sw_http_method_get(), &why);
    if (rc == SW_AGAIN && !eof && e->len < sizeof(e->buf) - 1) {
        return false;
    }
    if (rc != SW_OK) {
        probe_done(e, false, "bad answer: %s",
                   rc == SW_AGAIN
                       ? (eof ? "closed before a whole head" : "head too large")
                       : (why != NULL ? why : "not HTTP"));
        return true;
    }
    /* a websocket check (RFC 6455 4.1: 101 and the right accept key) */
    struct sw_str key = {e->key, SW_WS_KEY_LEN};
    if (sw_ws_handshake_check_response(&resp, key, &why) != SW_OK) {
        probe_done(e, false, "websocket: HTTP %u: %s", resp.status,
                   why != NULL ? why : "bad handshake");
        return true;
    }
    send_ws_close(e);
    probe_done(e, true, "websocket: HTTP 101");
    return true;
}

/* Move the probe as far as the socket lets it. */
static void
probe_step(struct hc_entry *e)
{
    for (;;) {
        switch (e->phase) {
        case PROBE_CONNECT: {
            int err = 0;
            socklen_t len = sizeof(err);
            getsockopt(e->io.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                probe_done(e, false, "connect: %s", strerror(err));
                return;
            }
            if (e->ucf->hc.type == SW_CONF_CHECK_TCP) {
                probe_done(e, true, "tcp: connected");
                return;
            }
            if (e->scf->tls) {
                if (sw_tls_client_attach(e->h->cf->tls, e->ucf, e->scf,
                                         &e->io) != SW_OK) {
                    probe_done(e, false, "tls: no client context");
                    return;
                }
                e->phase = PROBE_HANDSHAKE;
            } else {
                e->phase = PROBE_SEND;
            }
            build_request(e);
            break;
        }
        case PROBE_HANDSHAKE: {
            enum sw_status rc = e->io.ops->handshake(&e->io);
            if (rc == SW_AGAIN) {
                probe_wait(e, false);
                return;
            }
            if (rc != SW_OK) {
                /* the verification's reason, when that is what failed */
                long v = SSL_get_verify_result(e->io.tls);
                probe_done(e, false, "tls: handshake failed%s%s",
                           v != X509_V_OK ? ": " : "",
                           v != X509_V_OK ? X509_verify_cert_error_string(v)
                                          : "");
                return;
            }
            e->phase = PROBE_SEND;
            break;
        }
        case PROBE_SEND: {
            ssize_t n =
                e->io.ops->send(&e->io, e->buf + e->sent, e->len - e->sent);
            if (n == SW_AGAIN) {
                probe_wait(e, true);
                return;
            }
            if (n < 0) {
                probe_done(
                    e, false, "send: %s",
                    strerror(e->io.last_errno ? e->io.last_errno : EPIPE));
                return;
            }
            e->sent += (size_t)n;
            if (e->sent == e->len) {
                e->len = 0;
                e->phase = PROBE_READ;
            }
            break;
        }
        case PROBE_READ: {
            ssize_t n = e->io.ops->recv(&e->io, e->buf + e->len,
                                        sizeof(e->buf) - 1 - e->len);
            if (n == SW_AGAIN) {
                probe_wait(e, false);
                return;
            }
            if (n < 0) {
                probe_done(
                    e, false, "recv: %s",
                    strerror(e->io.last_errno ? e->io.last_errno : ECONNRESET));
                return;
            }
            e->len += (size_t)n;
            if (judge_answer(e, n == 0)) {
                return;
            }
            break;
        }
        case PROBE_IDLE:
        default:
            return;
        }
    }
}

static void
on_probe_io(evutil_socket_t fd, short what, void *arg)
{
    SW_UNUSED(fd);
    SW_UNUSED(what);
    probe_step(arg);
}

static void
on_probe_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct hc_entry *e = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    static const char *const where[] = {"", "connect", "tls handshake",
                                        "sending", "waiting for the answer"};
    probe_done(e, false, "timeout (%s, %llu ms)", where[e->phase],
               (unsigned long long)e->ucf->hc.timeout_ms);
}

static void
probe_start(struct hc_entry *e)
{
    const struct sw_conf_server *s = e->scf;
    int fd = socket(s->addr.ss_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) {
        probe_done(e, false, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    e->io = (struct sw_io){.fd = fd, .ops = &sw_io_plain};
    e->phase = PROBE_CONNECT;
    struct timeval tv = tv_ms(e->ucf->hc.timeout_ms);
    event_add(&e->deadline, &tv);
    if (connect(fd, (const struct sockaddr *)&s->addr, s->addrlen) != 0 &&
        errno != EINPROGRESS) {
        probe_done(e, false, "connect: %s", strerror(errno));
        return;
    }
    probe_wait(e, true);
}

static void
on_interval(evutil_socket_t fd, short what, void *arg)
{
    struct hc_entry *e = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    fold_passive(e);
    /* A probe still running when the next is due runs on: its own
     * deadline ends it. */
    if (e->phase == PROBE_IDLE) {
        probe_start(e);
    }
}

static void
entry_free(struct hc_entry *e)
{
    if (e == NULL) {
        return;
    }
    if (e->armed) {
        probe_close(e);
        event_del(&e->timer);
    }
    sw_upstream_state_unref(e->st);
    free(e);
}

/* Release the server states a snapshot holds (its health_free). */
static void
conf_states_free(struct sw_conf *cf)
{
    for (size_t i = 0; i < cf->nupstreams; i++) {
        struct sw_conf_upstream *u = &cf->upstreams[i];
        for (size_t j = 0; j < u->nservers; j++) {
            sw_upstream_state_unref(u->servers[j].state);
            u->servers[j].state = NULL;
        }
    }
}

static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct sw_health *h = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    for (size_t i = 0; i < h->nentries; i++) {
        fold_passive(h->entries[i]);
    }
}

struct sw_health *
sw_health_new(struct event_base *base)
{
    struct sw_health *h = calloc(1, sizeof(*h));
    if (h == NULL || sw_ws_rng_init(&h->rng) != SW_OK) {
        sw_log_error("health: cannot set up the checker");
        free(h);
        return NULL;
    }
    h->base = base;
    event_assign(&h->sweep, base, -1, EV_PERSIST, on_sweep, h);
    return h;
}

static void
entries_free(struct hc_entry **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        entry_free(v[i]);
    }
    free(v);
}

void
sw_health_free(struct sw_health *h)
{
    if (h == NULL) {
        return;
    }
    if (h->sweeping) {
        event_del(&h->sweep);
    }
    entries_free(h->entries, h->nentries);
    sw_conf_unref(h->cf);
    sw_ws_rng_fini(&h->rng);
    free(h);
}

/* The entry of the previous snapshot for the same upstream and address. */
static struct hc_entry *
find_old(struct sw_health *h, const struct sw_conf_upstream *u,
         const struct sw_conf_server *s)
{
    for (size_t i = 0; i < h->nentries; i++) {
        struct hc_entry *o = h->entries[i];
        if (o->ucf->name.len == u->name.len &&
            memcmp(o->ucf->name.p, u->name.p, u->name.len) == 0 &&
            o->scf->text.len == s->text.len &&
            memcmp(o->scf->text.p, s->text.p, s->text.len) == 0) {
            return o;
        }
    }
    return NULL;
}

/* Build the entry for server s of u, reusing the old one's state and
 * counters. NULL on ENOMEM. */
static struct hc_entry *
entry_new(struct sw_health *h, const struct sw_conf_upstream *u,
          const struct sw_conf_server *s)
{
    struct hc_entry *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    e->h = h;
    e->ucf = u;
    e->scf = s;
    e->io.fd = -1;
    struct hc_entry *o = find_old(h, u, s);
    if (o != NULL) {
        e->st = sw_upstream_state_ref(o->st);
        e->ok_run = o->ok_run;
        e->fail_run = o->fail_run;
        e->checks_ok = o->checks_ok;
        e->checks_failed = o->checks_failed;
        e->last_check_ms = o->last_check_ms;
        e->last_change_ms = o->last_change_ms;
        e->passive_seen = o->passive_seen;
        e->run_passive = o->run_passive;
        memcpy(e->result, o->result, sizeof(e->result));
    } else {
        e->st = sw_upstream_state_new();
        if (e->st == NULL) {
            free(e);
            return NULL;
        }
    }
    if (!e->ucf->hc.enabled || o == NULL || !o->ucf->hc.enabled) {
        /* only failures while checked count toward fall */
        e->passive_seen =
            atomic_load_explicit(&e->st->passive_fails, memory_order_relaxed);
    }
    return e;
}

static void
entry_start(struct hc_entry *e)
{
    e->armed = true;
    event_assign(&e->timer, e->h->base, -1, EV_PERSIST, on_interval, e);
    evtimer_assign(&e->deadline, e->h->base, on_probe_deadline, e);
    event_assign(&e->ioev, e->h->base, -1, 0, on_probe_io, e);
    if (!e->ucf->hc.enabled) {
        /* no checks: nothing holds it down */
        atomic_store_explicit(&e->st->up, true, memory_order_relaxed);
        e->ok_run = e->fail_run = 0;
        return;
    }
    struct timeval tv = tv_ms(e->ucf->hc.interval_ms);
    event_add(&e->timer, &tv);
    /* a first probe at once, so a dead server is found within fall
     * intervals of the start or reload */
    probe_start(e);
}

enum sw_status
sw_health_apply(struct sw_health *h, struct sw_conf *cf)
{
    size_t n = 0;
    for (size_t i = 0; i < cf->nupstreams; i++) {
        n += cf->upstreams[i].nservers;
    }
    struct hc_entry **v = calloc(n ? n : 1, sizeof(*v));
    if (v == NULL) {
        goto enomem;
    }
    size_t k = 0;
    for (size_t i = 0; i < cf->nupstreams; i++) {
        const struct sw_conf_upstream *u = &cf->upstreams[i];
        for (size_t j = 0; j < u->nservers; j++) {
            v[k] = entry_new(h, u, &u->servers[j]);
            if (v[k] == NULL) {
                entries_free(v, k);
                goto enomem;
            }
            k++;
        }
    }
    /* Commit: the snapshot's servers take a reference each. */
    k = 0;
    for (size_t i = 0; i < cf->nupstreams; i++) {
        struct sw_conf_upstream *u = &cf->upstreams[i];
        for (size_t j = 0; j < u->nservers; j++) {
            u->servers[j].state = sw_upstream_state_ref(v[k++]->st);
        }
    }
    cf->health_free = conf_states_free;
    entries_free(h->entries, h->nentries);
    sw_conf_unref(h->cf);
    h->cf = sw_conf_ref(cf);
    h->entries = v;
    h->nentries = n;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        entry_start(v[i]);
        any = any || v[i]->ucf->hc.enabled;
    }
    if (any && !h->sweeping) {
        struct timeval tv = tv_ms(SWEEP_MS);
        event_add(&h->sweep, &tv);
    } else if (!any && h->sweeping) {
        event_del(&h->sweep);
    }
    h->sweeping = any;
    return SW_OK;
enomem:
    sw_log_error("health: out of memory applying the configuration; "
                 "its servers count as up");
    return SW_ENOMEM;
}

bool
sw_health_server_view(const struct sw_health *h, const struct sw_conf_server *s,
                      struct sw_health_view *v)
{
    *v = (struct sw_health_view){.up = true, .last_result = ""};
    for (size_t i = 0; h != NULL && i < h->nentries; i++) {
        const struct hc_entry *e = h->entries[i];
        if (e->scf != s) {
            continue;
        }
        v->checked = e->ucf->hc.enabled;
        v->up = atomic_load_explicit(&e->st->up, memory_order_relaxed);
        v->last_result = e->result;
        v->last_check_ms = e->last_check_ms;
        v->last_change_ms = e->last_change_ms;
        v->checks_ok = e->checks_ok;
        v->checks_failed = e->checks_failed;
        v->passive_downs =
            atomic_load_explicit(&e->st->passive_downs, memory_order_relaxed);
        v->run = e->fail_run > 0 ? e->fail_run : e->ok_run;
        return true;
    }
    return false;
}
