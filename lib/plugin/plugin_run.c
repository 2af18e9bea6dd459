/*
 * plugin_run.c - the hooks run from the gateway's side: worker start and
 * stop, a connection's plugin side (sess), the request, pick, WebSocket
 * and log runners, and the edit room the request hooks write into.
 *
 *   session                       plugin_run.c                 plugin
 *   first request on the route -> sw_plugin_sess_new (conn states zeroed)
 *   request head matched       -> sw_plugin_run_request  -> on_request...
 *                                                           on_upgrade...
 *   head toward the upstream   <- sw_plugin_edits_drop/_write (room)
 *   peer to use                -> sw_plugin_run_pick     -> on_upstream_pick
 *   response head              <- sw_plugin_resp_write   (room)
 *                                 sw_plugin_request_end  (room back)
 *   101 .. close               -> sw_plugin_run_ws_*     -> on_ws_*
 *   access log line            -> sw_plugin_run_log      -> on_log
 *
 * Owns: each sess and its room (a pool buffer, held only while a request
 * has edits or an answer). Worker thread only.
 */
#include "plugin_int.h"

#include <shockwave/log.h>
#include <shockwave/ws.h>

/* ---- workers ------------------------------------------------------------ */

void
sw_plugin_worker_init(struct sw_plugin_worker *pw, unsigned id,
                      struct sw_metrics *m)
{
    memset(pw, 0, sizeof(*pw));
    pw->id = id;
    pw->metrics = m;
    sw_buf_pool_init(&pw->rooms, SW__PLUGIN_ROOM_BUF, SW__PLUGIN_ROOMS_IDLE);
}

static void
start_plugin(struct sw_plugin_worker *pw, const struct sw__plugin_loaded *pl)
{
    if (pw->started[pl->index]) {
        return;
    }
    pw->started[pl->index] = true;
    if (pl->desc.on_worker_start == NULL) {
        return;
    }
    int st = pl->desc.on_worker_start(pw->id, &pw->state[pl->index]);
    if (st != SW_OK) {
        sw_log_error("plugin %s: on_worker_start failed on worker %u (%s): it "
                     "runs with no worker state",
                     pl->name, pw->id, sw_strerror(st));
        pw->state[pl->index] = NULL;
    }
}

void
sw_plugin_worker_adopt(struct sw_plugin_worker *pw, const struct sw_conf *cf)
{
    for (size_t i = 0; i < cf->nroutes; i++) {
        const struct sw_plugin_chain *ch = cf->routes[i].plugin_chain;
        for (size_t k = 0; ch != NULL && k < ch->n; k++) {
            if (ch->uses[k].configured) {
                start_plugin(pw, ch->uses[k].pl);
            }
        }
    }
}

void
sw_plugin_worker_fini(struct sw_plugin_worker *pw)
{
    for (unsigned i = 0; i < SW_PLUGIN_MAX; i++) {
        if (!pw->started[i]) {
            continue;
        }
        const struct sw__plugin_loaded *pl = sw__plugin_loaded_at(i);
        if (pl != NULL && pl->desc.on_worker_stop != NULL) {
            pl->desc.on_worker_stop(pw->id, pw->state[i]);
        }
        pw->started[i] = false;
        pw->state[i] = NULL;
    }
    sw_buf_pool_fini(&pw->rooms);
}

/* ---- a connection's side ------------------------------------------------ */

struct sw_plugin_sess *
sw_plugin_sess_new(struct sw_plugin_worker *pw,
                   const struct sw_plugin_chain *ch, const char *raddr,
                   uint64_t conn_id, struct sw_str route)
{
    struct sw_plugin_sess *s = calloc(1, sizeof(*s) + ch->conn_size);
    if (s == NULL) {
        return NULL;
    }
    s->pw = pw;
    s->ch = ch;
    s->conn_id = conn_id;
    s->route = route;
    snprintf(s->raddr, sizeof(s->raddr), "%s", raddr);
    return s;
}

void
sw_plugin_request_end(struct sw_plugin_sess *s)
{
    if (s != NULL && s->room != NULL) {
        sw_buf_put(&s->pw->rooms, s->room);
        s->room = NULL;
    }
    if (s != NULL) {
        s->edits = 0;
        s->answer_status = 0;
        s->answer_headers = 0;
        s->answered_by = NULL;
    }
}

void
sw_plugin_request_sent(struct sw_plugin_sess *s)
{
    size_t pos = 0;
    struct room_entry e;
    while (sw__plugin_room_next(s, &pos, &e)) {
        if (e.kind == ROOM_RESP_ADD) {
            return;
        }
    }
    sw_plugin_request_end(s);
}

void
sw_plugin_sess_free(struct sw_plugin_sess *s)
{
    if (s == NULL) {
        return;
    }
    sw_plugin_request_end(s);
    free(s);
}

const struct sw_plugin_chain *
sw_plugin_sess_chain(const struct sw_plugin_sess *s)
{
    return s != NULL ? s->ch : NULL;
}

/* ---- the room ------------------------------------------------------------ */

int
sw__plugin_room_put(struct sw_plugin_sess *s, enum room_kind kind,
                    struct sw_str name, struct sw_str value)
{
    if (name.len > UINT16_MAX || value.len > UINT32_MAX) {
        return SW_ETOOBIG;
    }
    size_t need = sizeof(struct room_rec) + name.len + value.len;
    if (kind != ROOM_ANS_BODY && kind != ROOM_ANS_HEADER &&
        s->edits + need > SW__PLUGIN_ROOM) {
        return SW_ETOOBIG;
    }
    if (s->room == NULL) {
        s->room = sw_buf_get(&s->pw->rooms);
        if (s->room == NULL) {
            return SW_ENOMEM;
        }
    }
    struct sw_buf *b = s->room;
    if (sw_buf_room(b) < need) {
        return SW_ETOOBIG;
    }
    struct room_rec rec = {(uint8_t)kind, (uint16_t)name.len,
                           (uint32_t)value.len};
    memcpy(b->last, &rec, sizeof(rec));
    memcpy(b->last + sizeof(rec), name.p, name.len);
    if (value.len > 0) {
        memcpy(b->last + sizeof(rec) + name.len, value.p, value.len);
    }
    b->last += need;
    if (kind != ROOM_ANS_BODY && kind != ROOM_ANS_HEADER) {
        s->edits += need;
    }
    return SW_OK;
}

bool
sw__plugin_room_next(const struct sw_plugin_sess *s, size_t *pos,
                     struct room_entry *e)
{
    if (s == NULL || s->room == NULL) {
        return false;
    }
    const uint8_t *start = s->room->pos;
    size_t len = sw_buf_len(s->room);
    if (*pos + sizeof(struct room_rec) > len) {
        return false;
    }
    struct room_rec rec;
    memcpy(&rec, start + *pos, sizeof(rec));
    const char *p = (const char *)start + *pos + sizeof(rec);
    *e = (struct room_entry){
        (enum room_kind)rec.kind, {p, rec.nlen}, {p + rec.nlen, rec.vlen}};
    *pos += sizeof(rec) + rec.nlen + rec.vlen;
    return true;
}

static bool
name_is(struct sw_str a, struct sw_str b)
{
    return a.len == b.len && strncasecmp(a.p, b.p, a.len) == 0;
}

/* Whether a record from pos on sets or removes `name`: the client's copy
 * is then dropped, and an earlier set of it loses to the later record. */
static bool
set_or_removed_from(const struct sw_plugin_sess *s, size_t pos,
                    struct sw_str name)
{
    struct room_entry e;
    while (sw__plugin_room_next(s, &pos, &e)) {
        if ((e.kind == ROOM_REQ_SET || e.kind == ROOM_REQ_REMOVE) &&
            name_is(e.name, name)) {
            return true;
        }
    }
    return false;
}

bool
sw_plugin_edits_drop(const struct sw_plugin_sess *s, struct sw_str name)
{
    return set_or_removed_from(s, 0, name);
}

void
sw_plugin_edits_write(const struct sw_plugin_sess *s, struct sw_http_writer *w)
{
    size_t pos = 0;
    struct room_entry e;
    while (sw__plugin_room_next(s, &pos, &e)) {
        if (e.kind == ROOM_REQ_ADD ||
            (e.kind == ROOM_REQ_SET && !set_or_removed_from(s, pos, e.name))) {
            sw_http_write_header(w, e.name, e.value);
        }
    }
}

void
sw_plugin_resp_write(const struct sw_plugin_sess *s, struct sw_http_writer *w)
{
    size_t pos = 0;
    struct room_entry e;
    while (sw__plugin_room_next(s, &pos, &e)) {
        if (e.kind == ROOM_RESP_ADD) {
            sw_http_write_header(w, e.name, e.value);
        }
    }
}

bool
sw_plugin_sess_answer(const struct sw_plugin_sess *s,
                      struct sw_plugin_answer *out)
{
    if (s == NULL || s->answer_status == 0) {
        return false;
    }
    *out = (struct sw_plugin_answer){.status = s->answer_status,
                                     .by = s->answered_by};
    /* the answer's header lines: one record, or the run that
     * sw__plugin_join_answer_headers made of several: the last */
    size_t pos = 0;
    struct room_entry e;
    while (sw__plugin_room_next(s, &pos, &e)) {
        if (e.kind == ROOM_ANS_HEADER) {
            out->headers = e.value;
        } else if (e.kind == ROOM_ANS_BODY) {
            out->body = e.value;
        }
    }
    return true;
}

/* ---- runners ------------------------------------------------------------- */

/* Several header lines of an answer (one record each) become one run, in
 * a new record at the end (sw_plugin_sess_answer takes the last). */
int
sw__plugin_join_answer_headers(struct sw_plugin_sess *s)
{
    size_t pos = 0;
    size_t runs = 0;
    size_t total = 0;
    struct room_entry e;
    while (sw__plugin_room_next(s, &pos, &e)) {
        if (e.kind == ROOM_ANS_HEADER) {
            runs++;
            total += e.value.len;
        }
    }
    struct sw_buf *b = s->room;
    if (runs < 2) {
        return SW_OK;
    }
    if (sw_buf_room(b) < sizeof(struct room_rec) + total) {
        return SW_ETOOBIG;
    }
    struct room_rec rec = {ROOM_ANS_HEADER, 0, (uint32_t)total};
    uint8_t *dst = b->last + sizeof(rec);
    pos = 0;
    while (sw__plugin_room_next(s, &pos, &e)) {
        if (e.kind == ROOM_ANS_HEADER) {
            memcpy(dst, e.value.p, e.value.len);
            dst += e.value.len;
        }
    }
    memcpy(b->last, &rec, sizeof(rec));
    b->last = dst;
    return SW_OK;
}

static struct sw_plugin_ctx
ctx_for(struct sw_plugin_sess *s, const struct sw__plugin_use *u)
{
    return (struct sw_plugin_ctx){.s = s, .use = u, .now_ms = sw_now_ms()};
}

int
sw_plugin_run_request(struct sw_plugin_sess *s,
                      const struct sw_plugin_request *rq)
{
    sw_plugin_request_end(s); /* what an earlier request left */
    s->first = !s->seen_request;
    s->seen_request = true;
    const struct sw_plugin_chain *ch = s->ch;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && !rq->upgrade) {
            break;
        }
        for (size_t i = 0; i < ch->n; i++) {
            const struct sw__plugin_use *u = &ch->uses[i];
            int (*hook)(struct sw_plugin_ctx *) = !u->configured ? NULL
                                                  : pass == 0
                                                      ? u->pl->desc.on_request
                                                      : u->pl->desc.on_upgrade;
            if (hook == NULL) {
                continue;
            }
            struct sw_plugin_ctx ctx = ctx_for(s, u);
            ctx.rq = rq;
            int v = hook(&ctx);
            if (v == SW_PLUGIN_CONTINUE) {
                continue;
            }
            if (v == SW_PLUGIN_ANSWERED && s->answer_status != 0) {
                s->answered_by = u->pl->name;
                return SW_PLUGIN_ANSWERED;
            }
            sw_log_error(
                "plugin %s: %s returned %d%s: answered 500", u->pl->name,
                pass == 0 ? "on_request" : "on_upgrade", v,
                v == SW_PLUGIN_ANSWERED ? " without sw_plugin_respond" : "");
            return SW_ERROR;
        }
    }
    return SW_PLUGIN_CONTINUE;
}

int
sw_plugin_run_pick(struct sw_plugin_sess *s, const struct sw_plugin_request *rq)
{
    const struct sw_plugin_chain *ch = s->ch;
    for (size_t i = 0; i < ch->n; i++) {
        const struct sw__plugin_use *u = &ch->uses[i];
        if (!u->configured || u->pl->desc.on_upstream_pick == NULL) {
            continue;
        }
        struct sw_plugin_ctx ctx = ctx_for(s, u);
        ctx.rq = rq;
        int idx = u->pl->desc.on_upstream_pick(&ctx);
        if (idx >= 0 && rq->upstream != NULL &&
            (size_t)idx < rq->upstream->nservers && idx < 64 &&
            !(rq->tried & (1ull << idx))) {
            return idx;
        }
    }
    return SW_DECLINED;
}

static void
run_void(struct sw_plugin_sess *s, size_t hook_off)
{
    const struct sw_plugin_chain *ch = s->ch;
    for (size_t i = 0; i < ch->n; i++) {
        const struct sw__plugin_use *u = &ch->uses[i];
        if (!u->configured) {
            continue;
        }
        void (*hook)(struct sw_plugin_ctx *);
        memcpy(&hook, (const char *)&u->pl->desc + hook_off, sizeof(hook));
        if (hook != NULL) {
            struct sw_plugin_ctx ctx = ctx_for(s, u);
            hook(&ctx);
        }
    }
}

void
sw_plugin_run_ws_open(struct sw_plugin_sess *s)
{
    if (sw_plugin_chain_has(s->ch, SW_PLUGIN_HOOK_WS_OPEN)) {
        run_void(s, offsetof(struct sw_plugin, on_ws_open));
    }
}

void
sw_plugin_run_ws_close(struct sw_plugin_sess *s, uint16_t code)
{
    s->ws_code = code != 0 ? code : SW_WS_CLOSE_ABNORMAL;
    if (sw_plugin_chain_has(s->ch, SW_PLUGIN_HOOK_WS_CLOSE)) {
        run_void(s, offsetof(struct sw_plugin, on_ws_close));
    }
}

int
sw_plugin_run_ws_frame(struct sw_plugin_sess *s,
                       const struct sw_plugin_frame *f, uint16_t *code)
{
    const struct sw_plugin_chain *ch = s->ch;
    for (size_t i = 0; i < ch->n; i++) {
        const struct sw__plugin_use *u = &ch->uses[i];
        if (!u->configured || !u->frames) {
            continue;
        }
        struct sw_plugin_ctx ctx = ctx_for(s, u);
        ctx.f = f;
        int v = u->pl->desc.on_ws_message(&ctx);
        if (v == SW_PLUGIN_DROP) {
            return v;
        }
        if (v == SW_PLUGIN_CLOSE) {
            *code = ctx.close_code != 0 ? ctx.close_code : SW_WS_CLOSE_POLICY;
            return v;
        }
    }
    return SW_PLUGIN_CONTINUE;
}

void
sw_plugin_run_log(struct sw_plugin_sess *s, struct sw_plugin_log_fields *f)
{
    f->used = 0;
    f->n = 0;
    if (s == NULL || !sw_plugin_chain_has(s->ch, SW_PLUGIN_HOOK_LOG)) {
        return;
    }
    const struct sw_plugin_chain *ch = s->ch;
    for (size_t i = 0; i < ch->n; i++) {
        const struct sw__plugin_use *u = &ch->uses[i];
        if (u->configured && u->pl->desc.on_log != NULL) {
            struct sw_plugin_ctx ctx = ctx_for(s, u);
            ctx.log = f;
            u->pl->desc.on_log(&ctx);
        }
    }
}

void
sw_plugin_log_fields_text(const struct sw_plugin_log_fields *f, char *out,
                          size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < f->n && len + 1 < n; i++) {
        int w = snprintf(out + len, n - len, " %.*s=%.*s", (int)f->key[i].len,
                         f->key[i].p, (int)f->value[i].len, f->value[i].p);
        if (w < 0) {
            break;
        }
        len = SW_MIN(n - 1, len + (size_t)w);
    }
}
