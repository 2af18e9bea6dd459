/*
 * proxy_metrics.c - what a session counts in its route's and its upstream
 * server's series (lib/metrics, docs/metrics.md).
 *
 * Owns nothing; works on the session it is given (worker thread only).
 * Every call is a few relaxed stores into slots the worker resolved when
 * it adopted the session's snapshot: no allocation, no lookup by name.
 *
 *   start_request --> metrics_start        requests_active++ (route)
 *   peer attached --> metrics_peer         requests (server)
 *   connect done  --> metrics_connected    connect time (server)
 *   head sent     --> metrics_head_sent    first byte clock starts
 *   first byte    --> metrics_first_byte   first byte time (server)
 *   answer queued --> metrics_answered     by code and class
 *   exchange over --> metrics_done         duration, requests_active--
 *                     (sw__proxy_exchange_done, with the access log)
 *   session freed --> metrics_done(false)  requests_active-- if cut
 */
#include "proxy_int.h"

struct sw_metrics_route *
sw__proxy_route_metrics(const struct sw_session *p)
{
    return p->route != NULL ? p->wc->mroutes[p->route->index]
                            : p->w->metrics.unmatched;
}

/* The request head was read and routed (p->route set or NULL). */
void
sw__proxy_metrics_start(struct sw_session *p)
{
    if (p->route != NULL && p->m_active == NULL) {
        p->m_active = sw__proxy_route_metrics(p);
        sw_metrics_store_add(&p->m_active->requests_active, 1);
    }
}

/* A response head went to the client: counted by exact code (all
 * routes), by route and class, and by server and class when it came from
 * the upstream. */
void
sw__proxy_metrics_answered(struct sw_session *p, unsigned status,
                           bool from_upstream)
{
    unsigned c = sw_metrics_class(status);
    sw_metrics_status(&p->w->metrics, status);
    sw_metrics_store_add(&sw__proxy_route_metrics(p)->responses[c], 1);
    if (from_upstream && p->peer != NULL) {
        sw_metrics_store_add(&p->peer->m->responses[c], 1);
    }
}

/* The exchange is over: answered (answer queued in full, or upgraded:
 * `answered`, its duration up to now_us is counted once if its head was
 * read) or cut (the session is going away; now_us unused). Either way it
 * leaves the in-flight gauge. */
void
sw__proxy_metrics_done(struct sw_session *p, bool answered, uint64_t now_us)
{
    if (p->t_start_us != 0 && answered) {
        sw_metrics_observe(&sw__proxy_route_metrics(p)->http_duration,
                           SW_METRICS_H_HTTP_DURATION, now_us - p->t_start_us);
        p->t_start_us = 0;
    }
    if (p->m_active != NULL) {
        sw_metrics_store_add(&p->m_active->requests_active, -1);
        p->m_active = NULL;
    }
}

/* p->peer now carries the request (a new, pooled or kept connection). */
void
sw__proxy_metrics_peer(struct sw_session *p)
{
    sw_metrics_store_add(&p->peer->m->requests, 1);
    p->t_upstream_us = sw_metrics_now_us(); /* a connect's start */
}

/* The TCP connect to p->peer succeeded. */
void
sw__proxy_metrics_connected(struct sw_session *p)
{
    if (p->t_upstream_us != 0) {
        sw_metrics_observe(&p->peer->m->connect, SW_METRICS_H_CONNECT,
                           sw_metrics_now_us() - p->t_upstream_us);
    }
    p->t_upstream_us = 0;
}

/* The whole request head reached the upstream socket. */
void
sw__proxy_metrics_head_sent(struct sw_session *p)
{
    p->t_upstream_us = sw_metrics_now_us();
}

/* The first response byte arrived from p->peer. */
void
sw__proxy_metrics_first_byte(struct sw_session *p)
{
    if (p->t_upstream_us != 0 && p->peer != NULL) {
        sw_metrics_observe(&p->peer->m->first_byte, SW_METRICS_H_FIRST_BYTE,
                           sw_metrics_now_us() - p->t_upstream_us);
    }
    p->t_upstream_us = 0;
}
