/*
 * plugin_access.c - the run-time accessors of plugin.h: what a hook may
 * read (states, the request, the frame) and do (edits, an answer, a close
 * code, counters, log lines and fields).
 *
 * Every accessor checks that its hook may use it (a request accessor
 * outside a request hook reads as empty and an edit answers SW_EINVAL), so
 * a plugin's mistake is a wrong answer, never a crash.
 *
 * Owns nothing. Worker thread of the session.
 */
#include "plugin_int.h"

#include <shockwave/log.h>
#include <shockwave/ws.h>

#include <stdarg.h>

static const struct sw_str empty = {"", 0};

/* ---- every hook --------------------------------------------------------- */

void *
sw_plugin_route_state(const struct sw_plugin_ctx *ctx)
{
    return ctx->use->route_state;
}

void *
sw_plugin_worker_state(const struct sw_plugin_ctx *ctx)
{
    return ctx->s->pw->state[ctx->use->pl->index];
}

void *
sw_plugin_conn_state(const struct sw_plugin_ctx *ctx)
{
    return ctx->use->pl->desc.conn_state_size != 0
               ? ctx->s->conn + ctx->use->conn_off
               : NULL;
}

unsigned
sw_plugin_worker_id(const struct sw_plugin_ctx *ctx)
{
    return ctx->s->pw->id;
}

uint64_t
sw_plugin_now_ms(const struct sw_plugin_ctx *ctx)
{
    return ctx->now_ms;
}

void
sw_plugin_count(const struct sw_plugin_ctx *ctx, int id, uint64_t n)
{
    if (id >= 0 && id < SW_METRICS_PLUGIN_COUNTERS) {
        sw_metrics_store_add(&ctx->s->pw->metrics->plugin[id], (int64_t)n);
    }
}

void
sw_plugin_log(const struct sw_plugin_ctx *ctx, int level, const char *fmt, ...)
{
    if (level < SW_LOG_ERROR || level > SW_LOG_DEBUG ||
        !sw_log_enabled((enum sw_log_level)level)) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sw_log((enum sw_log_level)level, "plugin %s: session %llu client %s: %s",
           ctx->use->pl->name, (unsigned long long)ctx->s->conn_id,
           ctx->s->raddr, msg);
}

struct sw_str
sw_plugin_remote_addr(const struct sw_plugin_ctx *ctx)
{
    return (struct sw_str){ctx->s->raddr, strlen(ctx->s->raddr)};
}

struct sw_str
sw_plugin_route_name(const struct sw_plugin_ctx *ctx)
{
    return ctx->s->route;
}

/* ---- the request -------------------------------------------------------- */

/* The request head, or NULL outside a request hook (and in on_upstream_pick
 * on a retry, when the head is gone). */
static const struct sw_http_request *
head(const struct sw_plugin_ctx *ctx)
{
    return ctx->rq != NULL ? ctx->rq->r : NULL;
}

struct sw_str
sw_plugin_req_method(const struct sw_plugin_ctx *ctx)
{
    return head(ctx) != NULL ? head(ctx)->method : empty;
}

struct sw_str
sw_plugin_req_path(const struct sw_plugin_ctx *ctx)
{
    return head(ctx) != NULL ? ctx->rq->path : empty;
}

struct sw_str
sw_plugin_req_query(const struct sw_plugin_ctx *ctx)
{
    return head(ctx) != NULL ? sw_http_query(head(ctx)->target) : empty;
}

struct sw_str
sw_plugin_req_host(const struct sw_plugin_ctx *ctx)
{
    return head(ctx) != NULL ? ctx->rq->host : empty;
}

bool
sw_plugin_req_header(const struct sw_plugin_ctx *ctx, const char *name,
                     struct sw_str *value)
{
    const struct sw_http_request *r = head(ctx);
    if (r == NULL) {
        return false;
    }
    const struct sw_http_header *h =
        sw_http_find(r->headers, r->nheaders, name);
    if (h == NULL) {
        return false;
    }
    *value = h->value;
    return true;
}

bool
sw_plugin_req_arg(const struct sw_plugin_ctx *ctx, const char *name,
                  struct sw_str *value)
{
    return head(ctx) != NULL &&
           sw_http_param(sw_plugin_req_query(ctx), '&',
                         (struct sw_str){name, strlen(name)}, value);
}

bool
sw_plugin_req_cookie(const struct sw_plugin_ctx *ctx, const char *name,
                     struct sw_str *value)
{
    const struct sw_http_request *r = head(ctx);
    if (r == NULL) {
        return false;
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        if (sw_str_eq_ci(r->headers[i].name, "Cookie") &&
            sw_http_param(r->headers[i].value, ';',
                          (struct sw_str){name, strlen(name)}, value)) {
            return true;
        }
    }
    return false;
}

bool
sw_plugin_req_is_upgrade(const struct sw_plugin_ctx *ctx)
{
    return ctx->rq != NULL && ctx->rq->upgrade;
}

bool
sw_plugin_req_is_first(const struct sw_plugin_ctx *ctx)
{
    return ctx->rq != NULL && ctx->s->first;
}

/* ---- edits, variables, answers ------------------------------------------ */

bool
sw__plugin_is_field_value(struct sw_str v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char ch = (unsigned char)v.p[i];
        if (ch == '\r' || ch == '\n' || ch == '\0') {
            return false;
        }
    }
    return true;
}

static int
put_header(struct sw_plugin_ctx *ctx, enum room_kind kind, const char *name,
           struct sw_str value)
{
    if (head(ctx) == NULL || name == NULL ||
        !sw_http_is_token((struct sw_str){name, strlen(name)}) ||
        !sw__plugin_is_field_value(value)) {
        return SW_EINVAL;
    }
    return sw__plugin_room_put(ctx->s, kind,
                               (struct sw_str){name, strlen(name)}, value);
}

int
sw_plugin_req_set_header(struct sw_plugin_ctx *ctx, const char *name,
                         struct sw_str value)
{
    return put_header(ctx, ROOM_REQ_SET, name, value);
}

int
sw_plugin_req_add_header(struct sw_plugin_ctx *ctx, const char *name,
                         struct sw_str value)
{
    return put_header(ctx, ROOM_REQ_ADD, name, value);
}

int
sw_plugin_req_remove_header(struct sw_plugin_ctx *ctx, const char *name)
{
    return put_header(ctx, ROOM_REQ_REMOVE, name, empty);
}

int
sw_plugin_resp_add_header(struct sw_plugin_ctx *ctx, const char *name,
                          struct sw_str value)
{
    return put_header(ctx, ROOM_RESP_ADD, name, value);
}

int
sw_plugin_var_set(struct sw_plugin_ctx *ctx, const char *name,
                  struct sw_str value)
{
    if (head(ctx) == NULL || name == NULL || name[0] == '\0') {
        return SW_EINVAL;
    }
    return sw__plugin_room_put(ctx->s, ROOM_VAR,
                               (struct sw_str){name, strlen(name)}, value);
}

bool
sw_plugin_var_get(const struct sw_plugin_ctx *ctx, const char *name,
                  struct sw_str *value)
{
    size_t pos = 0;
    size_t nlen = strlen(name);
    struct room_entry e;
    bool found = false;
    while (ctx->rq != NULL && sw__plugin_room_next(ctx->s, &pos, &e)) {
        if (e.kind == ROOM_VAR && e.name.len == nlen &&
            memcmp(e.name.p, name, nlen) == 0) {
            *value = e.value; /* the last set wins */
            found = true;
        }
    }
    return found;
}

int
sw_plugin_respond_header(struct sw_plugin_ctx *ctx, const char *name,
                         struct sw_str value)
{
    if (head(ctx) == NULL || name == NULL ||
        !sw_http_is_token((struct sw_str){name, strlen(name)}) ||
        !sw__plugin_is_field_value(value)) {
        return SW_EINVAL;
    }
    /* kept as the line it becomes: sw_plugin_sess_answer joins them */
    char line[SW__PLUGIN_ANSWER_HEADERS];
    int n = snprintf(line, sizeof(line), "%s: %.*s\r\n", name, (int)value.len,
                     value.p);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        return SW_ETOOBIG;
    }
    if (ctx->s->answer_headers + (size_t)n > SW__PLUGIN_ANSWER_HEADERS) {
        return SW_ETOOBIG;
    }
    int st = sw__plugin_room_put(ctx->s, ROOM_ANS_HEADER, empty,
                                 (struct sw_str){line, (size_t)n});
    if (st == SW_OK) {
        ctx->s->answer_headers += (size_t)n;
    }
    return st;
}

int
sw_plugin_respond(struct sw_plugin_ctx *ctx, unsigned status,
                  struct sw_str body)
{
    if (head(ctx) == NULL || status < 200 || status > 599) {
        return SW_EINVAL;
    }
    int st = sw__plugin_join_answer_headers(ctx->s);
    if (st == SW_OK) {
        st = sw__plugin_room_put(ctx->s, ROOM_ANS_BODY, empty, body);
    }
    if (st == SW_OK) {
        ctx->s->answer_status = status;
    }
    return st;
}

/* ---- the upstream ------------------------------------------------------- */

size_t
sw_plugin_upstream_count(const struct sw_plugin_ctx *ctx)
{
    return ctx->rq != NULL && ctx->rq->upstream != NULL
               ? ctx->rq->upstream->nservers
               : 0;
}

struct sw_str
sw_plugin_upstream_server(const struct sw_plugin_ctx *ctx, size_t i)
{
    if (i >= sw_plugin_upstream_count(ctx)) {
        return empty;
    }
    return ctx->rq->upstream->servers[i].text;
}

/* ---- WebSocket ----------------------------------------------------------- */

int
sw_plugin_ws_dir(const struct sw_plugin_ctx *ctx)
{
    return ctx->f != NULL ? ctx->f->dir : -1;
}

unsigned
sw_plugin_ws_opcode(const struct sw_plugin_ctx *ctx)
{
    return ctx->f != NULL ? ctx->f->opcode : 0;
}

bool
sw_plugin_ws_first(const struct sw_plugin_ctx *ctx)
{
    return ctx->f != NULL && ctx->f->first;
}

bool
sw_plugin_ws_fin(const struct sw_plugin_ctx *ctx)
{
    return ctx->f != NULL && ctx->f->fin;
}

uint64_t
sw_plugin_ws_frame_len(const struct sw_plugin_ctx *ctx)
{
    return ctx->f != NULL ? ctx->f->len : 0;
}

bool
sw_plugin_ws_compressed(const struct sw_plugin_ctx *ctx)
{
    return ctx->f != NULL && ctx->f->compressed;
}

ssize_t
sw_plugin_ws_payload(const struct sw_plugin_ctx *ctx, uint64_t offset,
                     void *out, size_t n)
{
    const struct sw_plugin_frame *f = ctx->f;
    if (f == NULL || f->payload == NULL) {
        return SW_AGAIN;
    }
    if (offset >= f->len) {
        return 0;
    }
    size_t take = (size_t)SW_MIN((uint64_t)n, f->len - offset);
    memcpy(out, f->payload + offset, take);
    if (f->mask != NULL) {
        sw_ws_mask(out, take, f->mask, offset);
    }
    return (ssize_t)take;
}

void
sw_plugin_ws_close(struct sw_plugin_ctx *ctx, uint16_t code, const char *reason)
{
    SW_UNUSED(reason); /* the relay's close frames carry the code alone */
    /* RFC 6455 7.4: only codes an endpoint may send */
    bool ok = (code >= 1000 && code <= 1003) ||
              (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
    ctx->close_code = ok ? code : SW_WS_CLOSE_POLICY;
}

uint16_t
sw_plugin_ws_close_code(const struct sw_plugin_ctx *ctx)
{
    return ctx->s->ws_code;
}

/* ---- the access log ------------------------------------------------------ */

int
sw_plugin_log_field(struct sw_plugin_ctx *ctx, const char *key,
                    struct sw_str value)
{
    struct sw_plugin_log_fields *f = ctx->log;
    size_t klen = key != NULL ? strlen(key) : 0;
    if (f == NULL || klen == 0 ||
        !sw_http_is_token((struct sw_str){key, klen}) ||
        !sw__plugin_is_field_value(value)) {
        return SW_EINVAL; /* a line break would forge a log line */
    }
    if (f->n == SW_PLUGIN_LOG_FIELDS ||
        f->used + klen + value.len > sizeof(f->room)) {
        return SW_ETOOBIG;
    }
    char *k = f->room + f->used;
    memcpy(k, key, klen);
    memcpy(k + klen, value.p, value.len);
    f->key[f->n] = (struct sw_str){k, klen};
    f->value[f->n] = (struct sw_str){k + klen, value.len};
    f->used += klen + value.len;
    f->n++;
    return SW_OK;
}
