/*
 * worker.c - a worker thread's loop, listeners, snapshot adoption, drain and
 * deferred frees (see proxy.h for the thread hand-over rules).
 *
 * Owns: the event_base, listeners, buffer pool, per-snapshot upstream state
 * (struct sw_wconf) and, through the session list, every session.
 */
#include "proxy_int.h"

#include <shockwave/ring.h>

#include <shockwave/log.h>

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/rand.h>
#include <sys/eventfd.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* Idle splice pipes a worker keeps for reuse. An empty pipe holds no data
 * pages, so idle pipes cost file descriptors, not memory. */
#define SW_WORKER_IDLE_PIPES 64
/* Idle buffers of the larger classes kept (the sweep's decay keeps at
 * least the floors in proxy_park.c). */
#define SW_WORKER_IDLE_X4 64
#define SW_WORKER_IDLE_X16 16

/* Freed sessions and relays leave holes in the heap that malloc keeps
 * resident, and a burst of connections leaves the buffer pools full: at
 * most this often, the buffers no connection needed since the last time
 * are freed (down to the floors), and after that or after parking, the
 * heap's free pages go back to the kernel (malloc_trim)... */
#define SW_WORKER_TIDY_MS 1000
/* ... or at once after a sweep that parked this many. */
#define SW_WORKER_TRIM_BATCH 64
/* Idle buffers each size class always keeps (the first: as many as it is
 * prefilled with). */
#define SW_WORKER_FLOOR 64
#define SW_WORKER_FLOOR_X4 16
#define SW_WORKER_FLOOR_X16 8

static struct sw_wconf *
wconf_new(struct sw_worker *w, struct sw_conf *cf)
{
    struct sw_wconf *wc = calloc(1, sizeof(*wc));
    if (wc == NULL) {
        return NULL;
    }
    wc->w = w;
    wc->refs = 1;
    wc->cf = sw_conf_ref(cf);
    wc->ups = calloc(cf->nupstreams ? cf->nupstreams : 1, sizeof(*wc->ups));
    wc->mroutes = calloc(cf->nroutes ? cf->nroutes : 1, sizeof(*wc->mroutes));
    if (wc->ups == NULL || wc->mroutes == NULL) {
        goto fail;
    }
    /* Series are keyed by route name: a route that keeps its name across
     * a reload keeps counting into the same slot (metrics.h). */
    for (size_t i = 0; i < cf->nroutes; i++) {
        wc->mroutes[i] = sw_metrics_route_slot(&w->metrics, cf->routes[i].name);
        if (wc->mroutes[i] == NULL) {
            goto fail;
        }
    }
    for (size_t i = 0; i < cf->nupstreams; i++) {
        if (sw_upstream_init(&wc->ups[i], &cf->upstreams[i], w->base,
                             &w->metrics) != SW_OK) {
            goto fail;
        }
    }
    return wc;
fail:
    sw__proxy_wconf_unref(wc);
    return NULL;
}

void
sw__proxy_wconf_unref(struct sw_wconf *wc)
{
    if (wc == NULL || --wc->refs > 0) {
        return;
    }
    if (wc->ups != NULL) {
        for (size_t i = 0; i < wc->cf->nupstreams; i++) {
            sw_upstream_fini(&wc->ups[i]);
        }
        free(wc->ups);
    }
    free(wc->mroutes);
    sw_conf_unref(wc->cf);
    free(wc);
}

/* The pool's buffer size is fixed at start: a request head must fit in one
 * buffer, and so must a serialised head with its added fields. */
static size_t
pool_buffer_size(const struct sw_conf *cf)
{
    return SW_MAX(cf->buffer_size, cf->max_header_bytes + 4096);
}

static void on_post(evutil_socket_t fd, short what, void *arg);
static void fanout_empty(void *arg);
static void on_reap(evutil_socket_t fd, short what, void *arg);
static void on_drain_timeout(evutil_socket_t fd, short what, void *arg);

struct sw_worker *
sw_worker_new(unsigned id, struct sw_conf *cf, struct sw_fanout_hub *hub)
{
    struct sw_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    w->post_fd = -1;
    w->id = id;
    pthread_mutex_init(&w->post_lock, NULL);
    if (sw_metrics_init(&w->metrics) != SW_OK) {
        sw_log_error("worker %u: out of memory for metrics", id);
        goto fail;
    }
    /* The main thread wakes the loop through an eventfd: libevent then
     * needs no locks of its own, and no event op on the data path pays
     * for a mutex. */
    w->post_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->post_fd < 0) {
        sw_log_error("worker %u: eventfd: %s", id, strerror(errno));
        goto fail;
    }
    /* The epoll changelist folds an event_del and event_add on one fd in
     * the same loop pass (a connection moving between a session and the
     * keep-alive pool, a read interest toggled off and on) into one
     * epoll_ctl, or none. */
    struct event_config *ec = event_config_new();
    if (ec != NULL) {
        event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        w->base = event_base_new_with_config(ec);
        event_config_free(ec);
    }
    if (w->base == NULL) {
        sw_log_error("worker %u: event_base_new failed", id);
        goto fail;
    }
    sw_buf_pool_init(&w->bufs, pool_buffer_size(cf), 1024);
    sw_buf_pool_init(&w->bufs_x4, 4 * w->bufs.size, SW_WORKER_IDLE_X4);
    sw_buf_pool_init(&w->bufs_x16, 16 * w->bufs.size, SW_WORKER_IDLE_X16);
    w->bufs.larger = &w->bufs_x4;
    w->bufs_x4.larger = &w->bufs_x16;
    /* the first connections and short peaks then take no malloc; the
     * pages stay untouched (not resident) until used */
    if (sw_buf_pool_prefill(&w->bufs, 64) != SW_OK) {
        sw_log_error("worker %u: out of memory for buffers", id);
        goto fail;
    }
    if (RAND_bytes((unsigned char *)&w->id_seed, sizeof(w->id_seed)) != 1) {
        w->id_seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ id;
    }
    sw_pipe_pool_init(&w->pipes, SW_WORKER_IDLE_PIPES, cf->ws_pipe_size);
    if (cf->io_engine == SW_IO_ENGINE_IO_URING) {
        char why[128];
        w->ring = sw_ring_new(w->base, &w->metrics, why, sizeof(why));
        /* on the ring a large frame is copied or spliced depending on when
         * the ring hands over, so the grown buffer classes are used at any
         * time, not only at the first large frame: a few of each up front
         * keep the data path free of malloc (untouched until used) */
        if (w->ring != NULL &&
            (sw_buf_pool_prefill(&w->bufs_x4, 4) != SW_OK ||
             sw_buf_pool_prefill(&w->bufs_x16, 4) != SW_OK)) {
            sw_log_error("worker %u: out of memory for buffers", id);
            goto fail;
        }
        if (w->ring == NULL) {
            sw_log_warn("worker %u: io_uring unavailable (%s): running on "
                        "epoll",
                        id, why);
        }
    }
    if (sw_ws_rng_init(&w->rng) != SW_OK) {
        sw_log_error("worker %u: no random bytes for WebSocket masks", id);
        goto fail;
    }
    w->relay_env = (struct sw_relay_env){
        .base = w->base,
        .bufs = &w->bufs,
        .pipes = &w->pipes,
        .rng = &w->rng,
        .metrics = &w->metrics,
        .relays = &w->relay_slab,
        .ring = w->ring,
        .krelay = &w->krelay,
    };
    w->krelay.worker = id;
    for (size_t i = 0; i < cf->nroutes; i++) {
        if (cf->routes[i].ws_kernel_relay) {
            /* now, while the gateway may still hold the privilege BPF
             * needs: it drops it before the workers run */
            sw_krelay_get(&w->krelay);
            break;
        }
    }
    sw_slab_init(&w->session_slab, sizeof(struct sw_session));
    sw_slab_init(&w->relay_slab, sw_relay_size());
    event_assign(&w->post_ev, w->base, w->post_fd, EV_READ | EV_PERSIST,
                 on_post, w);
    event_add(&w->post_ev, NULL);
    event_assign(&w->reap_ev, w->base, -1, 0, on_reap, w);
    event_assign(&w->drain_timer, w->base, -1, 0, on_drain_timeout, w);
    sw__proxy_park_init(w);
    struct sw_fanout_env fe = {.id = id,
                               .base = w->base,
                               .bufs = &w->bufs,
                               .rng = &w->rng,
                               .metrics = &w->metrics,
                               .on_empty = fanout_empty,
                               .arg = w};
    w->fanout = sw_fanout_new(hub, &fe);
    if (w->fanout == NULL) {
        sw_log_error("worker %u: out of memory for fan-out", id);
        goto fail;
    }
    w->wconf = wconf_new(w, cf);
    if (w->wconf == NULL) {
        sw_log_error("worker %u: out of memory", id);
        goto fail;
    }
    sw_plugin_worker_init(&w->plugins, id, &w->metrics);
    return w;
fail:
    sw_worker_free(w);
    return NULL;
}

void
sw_worker_free(struct sw_worker *w)
{
    if (w == NULL) {
        return;
    }
    if (event_initialized(&w->park_sweep)) {
        sw__proxy_park_fini(w);
    }
    while (w->sessions != NULL) {
        struct sw_session *p = w->sessions;
        sw__proxy_session_drain(p, true);
        on_reap(-1, 0, w);
        if (w->sessions == p) {
            break; /* cannot happen: a forced drain closes the session */
        }
    }
    sw_fanout_free(w->fanout); /* before the pools and snapshots it uses */
    sw_plugin_worker_fini(&w->plugins); /* no session runs a hook now */
    struct sw_listener *l = w->listeners;
    while (l != NULL) {
        struct sw_listener *next = l->next;
        sw__proxy_listener_ring_stop(l);
        event_del(&l->ev);
        if (l->fd >= 0) {
            close(l->fd);
        }
        free(l);
        l = next;
    }
    sw__proxy_wconf_unref(w->wconf);
    sw_conf_unref(w->pending_conf);
    sw_ring_free(w->ring);        /* its lingering sockets hold pool buffers */
    sw_krelay_close(w->krelay.k); /* after every session left it */
    sw_buf_pool_fini(&w->bufs);
    sw_buf_pool_fini(&w->bufs_x4);
    sw_buf_pool_fini(&w->bufs_x16);
    sw_pipe_pool_fini(&w->pipes);
    sw_slab_fini(&w->session_slab);
    sw_slab_fini(&w->relay_slab);
    sw_ws_rng_fini(&w->rng);
    if (w->base != NULL) {
        if (event_initialized(&w->post_ev)) {
            event_del(&w->post_ev);
        }
        event_base_free(w->base);
    }
    if (w->post_fd >= 0) {
        close(w->post_fd);
    }
    pthread_mutex_destroy(&w->post_lock);
    sw_metrics_fini(&w->metrics);
    free(w);
}

void
sw__proxy_accepted(struct sw_worker *w, struct sw_listener *l, int fd,
                   const struct sockaddr *sa)
{
    size_t cap = w->wconf->cf->max_client_connections;
    if (cap != 0 && w->nsessions + sw_fanout_live(w->fanout) >= cap) {
        sw_metrics_inc(&w->metrics, SW_METRIC_CLIENT_CONNECTIONS_REFUSED);
        sw_log_warn("worker %u: max_client_connections (%zu) reached, "
                    "connection refused",
                    w->id, cap);
        close(fd);
        return;
    }
    sw__proxy_session_start(w, l, fd, sa);
}

static void
accept_ready(struct sw_worker *w, struct sw_listener *l)
{
    /* Bounded batch: fairness with the sessions already on this loop. */
    for (int i = 0; i < 64 && !w->draining; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                return;
            }
            if (errno == ECONNABORTED) {
                continue;
            }
            /* EMFILE and friends: log and retry on the next readiness */
            sw_log_error("worker %u: accept: %s", w->id, strerror(errno));
            return;
        }
        sw__proxy_accepted(w, l, fd, (struct sockaddr *)&ss);
    }
}

static void
on_listener(evutil_socket_t fd, short what, void *arg)
{
    struct sw_listener *l = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    accept_ready(l->w, l);
}

enum sw_status
sw_worker_listen(struct sw_worker *w, int fd, bool tls, bool proxy_protocol)
{
    struct sw_listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        close(fd);
        return SW_ENOMEM;
    }
    l->w = w;
    l->fd = fd;
    l->tls = tls;
    l->proxy_protocol = proxy_protocol;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        unsigned port = ss.ss_family == AF_INET6
                            ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                            : ntohs(((struct sockaddr_in *)&ss)->sin_port);
        snprintf(l->port, sizeof(l->port), "%u", port);
    }
    event_assign(&l->ev, w->base, fd, EV_READ | EV_PERSIST, on_listener, l);
    /* on io_uring the ring accepts, from the worker's own thread (run) */
    if (w->ring == NULL && event_add(&l->ev, NULL) != 0) {
        free(l);
        close(fd);
        return SW_ERROR;
    }
    l->next = w->listeners;
    w->listeners = l;
    return SW_OK;
}

void
sw_worker_run(struct sw_worker *w)
{
    /* on the worker's own thread: a plugin's worker state is its alone */
    sw_plugin_worker_adopt(&w->plugins, w->wconf->cf);
    for (struct sw_listener *l = w->listeners; l != NULL; l = l->next) {
        if (w->ring != NULL && !sw__proxy_listener_ring_start(l)) {
            event_add(&l->ev, NULL);
        }
    }
    event_base_loop(w->base, 0);
}

static void
wake(struct sw_worker *w)
{
    uint64_t one = 1;
    ssize_t n = write(w->post_fd, &one, sizeof(one));
    SW_UNUSED(n); /* a full counter still wakes the loop */
}

void
sw_worker_post_conf(struct sw_worker *w, struct sw_conf *cf)
{
    pthread_mutex_lock(&w->post_lock);
    sw_conf_unref(w->pending_conf);
    w->pending_conf = sw_conf_ref(cf);
    pthread_mutex_unlock(&w->post_lock);
    wake(w);
}

void
sw_worker_post_drain(struct sw_worker *w)
{
    pthread_mutex_lock(&w->post_lock);
    w->drain_posted = true;
    pthread_mutex_unlock(&w->post_lock);
    wake(w);
}

static void
adopt(struct sw_worker *w, struct sw_conf *cf)
{
    if (pool_buffer_size(cf) > w->bufs.size) {
        sw_log_warn("worker %u: buffer_size/max_header_bytes grew; the "
                    "buffer size stays %zu until restart",
                    w->id, w->bufs.size);
    }
    struct sw_wconf *wc = wconf_new(w, cf);
    if (wc == NULL) {
        sw_log_error("worker %u: out of memory adopting configuration", w->id);
        return;
    }
    sw__proxy_wconf_unref(w->wconf);
    w->wconf = wc;
    sw_plugin_worker_adopt(&w->plugins, cf);
    sw_log_debug("worker %u: adopted configuration generation %llu", w->id,
                 (unsigned long long)cf->generation);
}

static void
maybe_exit(struct sw_worker *w)
{
    if (w->draining && w->nsessions == 0 && sw_fanout_live(w->fanout) == 0) {
        event_del(&w->drain_timer);
        event_base_loopexit(w->base, NULL);
    }
}

/* A draining worker's last fan-out client or channel ended. */
static void
fanout_empty(void *arg)
{
    maybe_exit(arg);
}

static void
start_drain(struct sw_worker *w)
{
    w->draining = true;
    /* close, not just unwatch: the kernel would go on completing
     * handshakes into the backlog of a socket nobody accepts from */
    for (struct sw_listener *l = w->listeners; l != NULL; l = l->next) {
        sw__proxy_listener_ring_stop(l); /* before the socket goes */
        event_del(&l->ev);
        close(l->fd);
        l->fd = -1;
    }
    uint64_t ms = w->wconf->cf->shutdown_timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(&w->drain_timer, &tv);
    sw__proxy_unpark_all(w); /* each gets its 1001 */
    sw_fanout_drain(w->fanout);
    struct sw_session *p = w->sessions;
    while (p != NULL) {
        struct sw_session *next = p->next;
        sw__proxy_session_drain(p, false);
        p = next;
    }
    maybe_exit(w);
}

static void
on_post(evutil_socket_t fd, short what, void *arg)
{
    struct sw_worker *w = arg;
    SW_UNUSED(what);
    uint64_t count;
    ssize_t n = read(fd, &count, sizeof(count));
    SW_UNUSED(n);
    pthread_mutex_lock(&w->post_lock);
    struct sw_conf *cf = w->pending_conf;
    w->pending_conf = NULL;
    bool drain = w->drain_posted && !w->draining;
    pthread_mutex_unlock(&w->post_lock);
    if (cf != NULL) {
        adopt(w, cf);
        sw_conf_unref(cf);
    }
    if (drain) {
        start_drain(w);
    }
}

static void
on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct sw_worker *w = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    sw_log_warn("worker %u: shutdown_timeout passed, closing %zu connections",
                w->id, w->nsessions + sw_fanout_live(w->fanout));
    sw_fanout_abort(w->fanout);
    sw__proxy_unpark_all(w);
    struct sw_session *p = w->sessions;
    while (p != NULL) {
        struct sw_session *next = p->next;
        sw__proxy_session_drain(p, true);
        p = next;
    }
}

/* Sessions are freed here, after the dispatch that closed them, so no
 * callback ever runs on a freed session (STYLE.md: close is deferred). */
static void
on_reap(evutil_socket_t fd, short what, void *arg)
{
    struct sw_worker *w = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    while (w->reap != NULL) {
        struct sw_session *p = w->reap;
        w->reap = p->reap_next;
        sw__proxy_session_free(p);
    }
    maybe_exit(w);
}

void
sw__proxy_session_closed(struct sw_session *p)
{
    struct sw_worker *w = p->w;
    p->reap_next = w->reap;
    w->reap = p;
    event_active(&w->reap_ev, 0, 0);
}

const struct sw_metrics *
sw_worker_metrics(const struct sw_worker *w)
{
    return &w->metrics;
}

void
sw_worker_pools(const struct sw_worker *w, struct sw_worker_pool_stats *out)
{
    /* the pools store these with relaxed atomics (buf.c, pipe.c) */
    out->buffers_in_use = __atomic_load_n(&w->bufs.nused, __ATOMIC_RELAXED);
    out->buffers_idle = __atomic_load_n(&w->bufs.nfree, __ATOMIC_RELAXED);
    out->buffer_allocations =
        __atomic_load_n(&w->bufs.nalloc, __ATOMIC_RELAXED);
    out->pipes_idle = __atomic_load_n(&w->pipes.n, __ATOMIC_RELAXED);
}

void
sw__proxy_worker_tidy(struct sw_worker *w, uint64_t now, size_t parks)
{
    w->parked_since_trim += parks;
    bool due = now >= w->trimmed_ms + SW_WORKER_TIDY_MS;
    size_t freed = 0;
    if (due) {
        freed += sw_buf_pool_decay(&w->bufs, SW_WORKER_FLOOR);
        freed += sw_buf_pool_decay(&w->bufs_x4, SW_WORKER_FLOOR_X4);
        freed += sw_buf_pool_decay(&w->bufs_x16, SW_WORKER_FLOOR_X16);
        w->trimmed_ms = now;
    }
    if (freed > 0 || w->parked_since_trim >= SW_WORKER_TRIM_BATCH ||
        (due && w->parked_since_trim > 0)) {
#ifdef __GLIBC__
        malloc_trim(0);
#endif
        w->trimmed_ms = now;
        w->parked_since_trim = 0;
    }
}
