/*
 * proxy_park.c - parked WebSockets: an idle proxied WebSocket costs its two
 * sockets and one small struct sw_parked, not a session and a relay.
 *
 * Most WebSockets a gateway holds are quiet most of the time (dashboards,
 * notifications, chat rooms). An upgraded session is about 1.7 KiB and its
 * relay 1.5 KiB; parked, the pair is under 700 bytes (docs/architecture.md,
 * "Memory"; tests/unit/sizes_test.c holds the bound).
 *
 *   UPGRADED session + relay --sweep: relay idle for ws_park_after--> parked
 *   parked --a byte on either socket-------------------> session + relay
 *   parked --sweep: the relay's next deadline is due---> session + relay
 *   parked --drain, worker exit------------------------> session + relay
 *
 * One timer per worker (the sweep, every SW_PARK_SWEEP_MS while the worker
 * has sessions) finds the idle relays, wakes the parked ones whose ping
 * or idle deadline came and lets the worker give back idle memory
 * (sw__proxy_worker_tidy): a parked WebSocket holds no timer, so its pings
 * and idle timeout run up to one sweep late.
 *
 * Moving a socket between the session's events and the parked ones costs
 * no system call: the new read event is added while the old one is still
 * there, so libevent's epoll interest for the fd never changes.
 *
 * Contents: sweep_arm, park, unpark, on_parked_ready, on_sweep,
 * sw__proxy_park_init / _watch / _fini, sw__proxy_unpark_all.
 */
#include "proxy_int.h"

#include <shockwave/log.h>

#include <unistd.h>

#define SW_PARK_SWEEP_MS 250

static void on_parked_ready(evutil_socket_t fd, short what, void *arg);

static void
sweep_arm(struct sw_worker *w)
{
    struct timeval tv = {0, SW_PARK_SWEEP_MS * 1000};
    event_add(&w->park_sweep, &tv);
}

static void
list_add(struct sw_worker *w, struct sw_parked *k)
{
    k->prev = NULL;
    k->next = w->parked;
    if (w->parked != NULL) {
        w->parked->prev = k;
    }
    w->parked = k;
    w->nparked++;
}

static void
list_remove(struct sw_worker *w, struct sw_parked *k)
{
    if (k->prev != NULL) {
        k->prev->next = k->next;
    } else {
        w->parked = k->next;
    }
    if (k->next != NULL) {
        k->next->prev = k->prev;
    }
    w->nparked--;
}

/* Reduce an idle upgraded session to a struct sw_parked. Without memory
 * for it the session simply stays as it is. */
static void
park(struct sw_session *p)
{
    struct sw_worker *w = p->w;
    /* a parked socket waits on epoll: off the io_uring ring first, which
     * it leaves only with nothing queued either way */
    if (!sw_conn_ring_leave(&p->c)) {
        return;
    }
    if (!sw_conn_ring_leave(&p->u)) {
        sw_conn_ring_join(&p->c, w->ring);
        return;
    }
    struct sw_parked *k = sw_slab_alloc(&w->parked_slab);
    if (k == NULL) {
        return;
    }
    *k = (struct sw_parked){
        .w = w,
        .wc = p->wc, /* the session's reference moves here */
        .l = p->l,
        .route = p->route,
        .up = p->up,
        .peer = p->peer,
        .id = p->id,
        .flags = p->flags,
        .plug = p->plug, /* moves here too */
    };
    memcpy(k->raddr, p->raddr, sizeof(k->raddr));
    memcpy(k->rport, p->rport, sizeof(k->rport));
    sw_relay_park(p->relay, &k->relay);
    struct sw_conn *ends[2] = {&p->c, &p->u};
    for (int i = 0; i < 2; i++) {
        /* add before the conn's own read event goes: no epoll_ctl */
        event_assign(&k->ev[i], w->base, ends[i]->io.fd, EV_READ | EV_PERSIST,
                     on_parked_ready, k);
        event_add(&k->ev[i], NULL);
        sw_conn_detach(ends[i], &k->io[i]);
    }
    list_add(w, k);
    sw_metrics_inc(&w->metrics, SW_METRIC_WS_PARKS_TOTAL);
    sw_metrics_inc(&w->metrics, SW_METRIC_WS_SESSIONS_PARKED);
    sw__proxy_session_unlink(p);
    sw_relay_free(p->relay);
    sw_slab_free(&w->session_slab, p);
}

/* Close a parked WebSocket that cannot be brought back (no memory). */
static void
drop(struct sw_parked *k)
{
    sw_log_error("client %s:%s: out of memory waking a WebSocket, closing",
                 k->raddr, k->rport);
    for (int i = 0; i < 2; i++) {
        k->io[i].ops->close(&k->io[i]);
        close(k->io[i].fd);
    }
    if (k->plug != NULL) {
        sw_plugin_run_ws_close(k->plug, SW_WS_CLOSE_ABNORMAL);
        sw_plugin_sess_free(k->plug);
    }
    k->w->nsessions--;
    sw_metrics_add(&k->w->metrics, SW_METRIC_CLIENT_CONNECTIONS_ACTIVE, -1);
    sw_metrics_store_add(&k->wc->mroutes[k->route->index]->ws_sessions_active,
                         -1);
    sw__proxy_wconf_unref(k->wc);
}

/* Bring the session and its relay back; k is freed. NULL when that failed
 * (the WebSocket is closed then). */
static struct sw_session *
unpark(struct sw_parked *k)
{
    struct sw_worker *w = k->w;
    list_remove(w, k);
    sw_metrics_add(&w->metrics, SW_METRIC_WS_SESSIONS_PARKED, -1);
    struct sw_session *p = sw__proxy_session_alloc(w, k->l, k->wc);
    if (p != NULL) {
        sw__proxy_wconf_unref(k->wc); /* the session took its own */
        p->id = k->id;
        p->flags = k->flags;
        p->route = k->route;
        p->up = k->up;
        p->peer = k->peer;
        p->plug = k->plug;
        k->plug = NULL;
        p->status = 101;
        memcpy(p->raddr, k->raddr, sizeof(p->raddr));
        memcpy(p->rport, k->rport, sizeof(p->rport));
        sw_conn_attach(&p->c, &k->io[0]);
        sw_conn_attach(&p->u, &k->io[1]);
        sw__proxy_set_state(p, SW_PROXY_UPGRADED);
        /* arms the ends' read events before the parked ones go */
        p->relay = sw__proxy_relay_begin(p, k->relay.rsv_allowed, &k->relay);
    }
    event_del(&k->ev[0]);
    event_del(&k->ev[1]);
    if (p == NULL) {
        drop(k);
    } else if (p->relay == NULL) {
        sw_metrics_store_add(&sw__proxy_route_metrics(p)->ws_sessions_active,
                             -1);
        sw__proxy_close(p); /* closes both ends through their io ops */
        p = NULL;
    }
    sw_slab_free(&w->parked_slab, k);
    return p;
}

static void
on_parked_ready(evutil_socket_t fd, short what, void *arg)
{
    struct sw_parked *k = arg;
    SW_UNUSED(what);
    bool client = fd == k->io[0].fd;
    struct sw_session *p = unpark(k);
    if (p != NULL) {
        sw_conn_wake(client ? &p->c : &p->u);
    }
}

static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct sw_worker *w = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    uint64_t now = sw_now_ms();
    struct sw_parked *k = w->parked;
    while (k != NULL) {
        struct sw_parked *next = k->next;
        if (k->relay.wake_at_ms != 0 && now >= k->relay.wake_at_ms) {
            unpark(k); /* its relay's timer runs the deadline */
        }
        k = next;
    }
    size_t parks = 0;
    struct sw_session *p = w->sessions;
    while (p != NULL && !w->draining) {
        struct sw_session *next = p->next;
        if (p->state == SW_PROXY_UPGRADED && p->relay != NULL &&
            sw_relay_parkable(p->relay, now)) {
            park(p);
            parks++;
        }
        p = next;
    }
    sw__proxy_worker_tidy(w, now, parks);
    if (w->nsessions > 0) {
        sweep_arm(w);
    }
}

void
sw__proxy_park_init(struct sw_worker *w)
{
    event_assign(&w->park_sweep, w->base, -1, 0, on_sweep, w);
    sw_slab_init(&w->parked_slab, sizeof(struct sw_parked));
}

void
sw__proxy_park_watch(struct sw_worker *w)
{
    if (!event_pending(&w->park_sweep, EV_TIMEOUT, NULL)) {
        sweep_arm(w);
    }
}

void
sw__proxy_unpark_all(struct sw_worker *w)
{
    while (w->parked != NULL) {
        unpark(w->parked);
    }
}

void
sw__proxy_park_fini(struct sw_worker *w)
{
    sw__proxy_unpark_all(w);
    event_del(&w->park_sweep);
    sw_slab_fini(&w->parked_slab);
}
