/*
 * proxy_plugin.c - a session's route plugins at its phase boundaries
 * (docs/plugins.md): the request hooks after the route matched and before
 * any upstream byte, the server pick, the access-log fields.
 *
 * Owns nothing itself: the session owns its plugin side (p->plug), made
 * on its first request on a route with plugins and remade when a later
 * request goes to another route. A route without plugins costs a NULL
 * test. Worker thread only.
 */
#include "proxy_int.h"

#include <shockwave/log.h>

/* The session's plugin side for its route. False on ENOMEM. */
static bool
side_for_route(struct sw_session *p)
{
    const struct sw_plugin_chain *ch = p->route->plugin_chain;
    if (p->plug != NULL && sw_plugin_sess_chain(p->plug) == ch) {
        return true;
    }
    sw_plugin_sess_free(p->plug);
    p->plug = NULL;
    if (ch == NULL) {
        return true;
    }
    p->plug =
        sw_plugin_sess_new(&p->w->plugins, ch, p->raddr, p->id, p->route->name);
    return p->plug != NULL;
}

static void
answer(struct sw_session *p)
{
    struct sw_plugin_answer a;
    if (!sw_plugin_sess_answer(p->plug, &a)) {
        sw__proxy_respond_error(p, 500, "a plugin answered nothing");
        return;
    }
    /* respond_local takes the headers as a C string */
    char extra[1100];
    snprintf(extra, sizeof(extra), "%.*s", (int)a.headers.len, a.headers.p);
    char why[96];
    snprintf(why, sizeof(why), "answered by plugin %s", a.by);
    set_flag(p, SW_SESS_F_PLUGIN_ANSWER, true); /* reset_request clears it */
    sw__proxy_respond_local(p, a.status, a.body.p, a.body.len, true, why,
                            extra);
}

bool
sw__proxy_plugins_request(struct sw_session *p, const struct sw_http_request *r,
                          struct sw_str path, struct sw_str host,
                          struct sw_plugin_request *rq)
{
    if (!side_for_route(p)) {
        sw_metrics_inc(&p->w->metrics, SW_METRIC_OUT_OF_MEMORY);
        sw__proxy_respond_error(p, 500, "out of memory for the plugins");
        return false;
    }
    if (!sw_plugin_chain_has(p->route->plugin_chain,
                             SW_PLUGIN_HOOK_REQUEST | SW_PLUGIN_HOOK_UPGRADE |
                                 SW_PLUGIN_HOOK_PICK)) {
        return true;
    }
    *rq = (struct sw_plugin_request){
        .r = r,
        .path = path,
        .host = host,
        .upgrade = has(p, SW_SESS_F_WS_UPGRADE),
        .upstream = p->route->upstream,
    };
    int v = sw_plugin_run_request(p->plug, rq);
    if (v == SW_PLUGIN_CONTINUE) {
        p->plug_rq = rq; /* for the pick, while start_request runs */
        return true;
    }
    if (v == SW_PLUGIN_ANSWERED) {
        answer(p);
    } else {
        sw__proxy_respond_error(p, 500, "a plugin failed the request");
    }
    sw_plugin_request_end(p->plug);
    return false;
}

struct sw_upstream_peer *
sw__proxy_plugins_pick(struct sw_session *p)
{
    if (p->plug == NULL || !sw_plugin_chain_has(sw_plugin_sess_chain(p->plug),
                                                SW_PLUGIN_HOOK_PICK)) {
        return NULL;
    }
    /* a retry runs after the head is gone: the hook then sees no request */
    struct sw_plugin_request rq =
        p->plug_rq != NULL ? *p->plug_rq
                           : (struct sw_plugin_request){.upstream = p->up->cf};
    rq.tried = p->tried;
    int idx = sw_plugin_run_pick(p->plug, &rq);
    if (idx < 0 || (size_t)idx >= p->up->npeers) {
        return NULL;
    }
    struct sw_upstream_peer *peer = &p->up->peers[idx];
    if (!sw_upstream_server_is_up(peer->server)) {
        sw_log_debug("session %llu: plugin picked %s, held down by the "
                     "health checks: the balancer chooses",
                     (unsigned long long)p->id, peer->server->text.p);
        return NULL;
    }
    return peer;
}

void
sw__proxy_plugins_log_fields(struct sw_session *p,
                             struct sw_plugin_log_fields *f)
{
    sw_plugin_run_log(p->plug, f);
}
