/*
 * ratelimit.c - the ratelimit plugin: token buckets per key for new
 * connections, HTTP requests, and WebSocket messages and bytes from the
 * client. README.md has the directives; this file has the hooks.
 *
 *   on_request   a plain HTTP request: connections (the connection's
 *                first request on the route) and requests buckets of its
 *                key; over the limit: 429 (or 503) with Retry-After
 *   on_upgrade   the same for a WebSocket upgrade. It runs after every
 *                plugin's on_request, so a variable set there (jwt_auth's
 *                claims) can be the key. The key is kept in the connection
 *                state for the messages that follow.
 *   on_ws_message  each data frame from the client: a message is counted
 *                at its first frame, bytes at every frame, against the
 *                per=connection buckets (connection state) and the
 *                per=key ones (the worker's table); over: close 1008 or
 *                drop the message (ws_over)
 *
 * State: the route state (struct rl_route) is the snapshot's; buckets live
 * in the worker's tables, keyed by route name, so they survive a reload
 * (keytab.c), and per=connection buckets in the connection state.
 *
 * Threading: hooks run on worker threads; each touches only its worker's
 * tables and its connection's state.
 */
#include "ratelimit.h"

/* The connection state (conn_state_size bytes, zeroed at first use). */
struct rl_conn {
    struct rl_table *table; /* borrowed (the worker's: lives until the
                               worker stops), NULL until first needed */
    struct rl_bucket msgs;  /* messages per=connection */
    struct rl_bucket bytes; /* bytes per=connection */
    uint64_t refused_until; /* the connections limit refused this
                               connection: when a token was due */
    bool refused;           /* every request on it gets the status */
    bool have_key;          /* key holds this connection's key */
    uint8_t key_len;        /* bytes in key */
    char key[RL_KEY_MAX];   /* tag byte ('a' address, 'v' value), then
                               the value, cut at RL_KEY_MAX */
};

/* Store tag and v (cut at RL_KEY_MAX) as the connection's key. */
static void
set_key(struct rl_conn *c, char tag, struct sw_str v)
{
    size_t n = SW_MIN(v.len, (size_t)RL_KEY_MAX - 1);
    c->key[0] = tag;
    if (n > 0) {
        memcpy(c->key + 1, v.p, n);
    }
    c->key_len = (uint8_t)(n + 1);
    c->have_key = true;
}

/* The key of this request: the header or variable, or the client address
 * when it is absent or empty. The tag byte ('v' value, 'a' address) keeps
 * a value that looks like an address apart from the address. */
static void
make_key(struct sw_plugin_ctx *ctx, const struct rl_route *r, struct rl_conn *c)
{
    struct sw_str v = {NULL, 0};
    bool found = false;
    if (r->key_src == RL_KEY_HEADER) {
        found = sw_plugin_req_header(ctx, r->key_name, &v);
    } else if (r->key_src == RL_KEY_VAR) {
        found = sw_plugin_var_get(ctx, r->key_name, &v);
    }
    if (found && v.len > 0) {
        set_key(c, 'v', v);
    } else {
        set_key(c, 'a', sw_plugin_remote_addr(ctx));
    }
}

/* The key for a log line: printable ASCII, others as '?'. */
static const char *
key_show(const struct rl_conn *c, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 1; i < c->key_len && n + 1 < cap; i++) {
        unsigned char ch = (unsigned char)c->key[i];
        out[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    out[n] = '\0';
    return out;
}

/* This connection's entry in its route's table; NULL when the worker has
 * no state or memory ran out (then no per-key limit applies: logged). */
static struct rl_entry *
entry_of(struct sw_plugin_ctx *ctx, const struct rl_route *r, struct rl_conn *c)
{
    struct rl_worker *w = sw_plugin_worker_state(ctx);
    if (w == NULL) {
        return NULL;
    }
    if (c->table == NULL) {
        c->table = rl_worker_table(w, r->route, r->route_hash);
        if (c->table == NULL) {
            sw_plugin_log(ctx, RL_LOG_WARN, "out of memory: no key table");
            return NULL;
        }
    }
    if (!c->have_key) {
        /* a session whose upgrade this plugin did not see: the address */
        set_key(c, 'a', sw_plugin_remote_addr(ctx));
    }
    size_t evicted = 0;
    struct rl_entry *e =
        rl_table_get(c->table, c->key, c->key_len, r->max_keys, &evicted);
    if (evicted > 0) {
        sw_plugin_count(ctx, r->counter[RL_C_EVICTED], evicted);
    }
    if (e == NULL) {
        sw_plugin_log(ctx, RL_LOG_WARN, "out of memory: key not tracked");
    }
    return e;
}

/* Answer the request with the route's status and Retry-After. */
static int
refuse(struct sw_plugin_ctx *ctx, const struct rl_route *r,
       const struct rl_conn *c, const char *what, uint64_t wait_ms)
{
    uint64_t secs = wait_ms / 1000 + (wait_ms % 1000 != 0);
    char num[24], key[RL_KEY_MAX];
    int n =
        snprintf(num, sizeof(num), "%llu", (unsigned long long)SW_MAX(secs, 1));
    sw_plugin_respond_header(ctx, "Retry-After",
                             (struct sw_str){num, (size_t)n});
    struct sw_str body = r->status == 503 ? SW_STR("Service Unavailable\n")
                                          : SW_STR("Too Many Requests\n");
    if (sw_plugin_respond(ctx, r->status, body) != SW_OK) {
        return SW_PLUGIN_CONTINUE; /* cannot happen: 429 and 503 only */
    }
    sw_plugin_count(ctx, r->counter[RL_C_LIMITED], 1);
    sw_plugin_log(ctx, RL_LOG_INFO,
                  "over the %s limit, key \"%s\": %u, Retry-After %s", what,
                  key_show(c, key, sizeof(key)), r->status, num);
    return SW_PLUGIN_ANSWERED;
}

/* The HTTP checks of one request (plain or upgrade). */
static int
check_request(struct sw_plugin_ctx *ctx)
{
    const struct rl_route *r = sw_plugin_route_state(ctx);
    struct rl_conn *c = sw_plugin_conn_state(ctx);
    if (c == NULL || !r->keyed) {
        return SW_PLUGIN_CONTINUE; /* per=connection limits only */
    }
    make_key(ctx, r, c);
    uint64_t now = sw_plugin_now_ms(ctx), wait = 0;
    if (c->refused) {
        wait = c->refused_until > now ? c->refused_until - now : 0;
        return refuse(ctx, r, c, "connections", wait);
    }
    const struct rl_rate *conns = &r->per_key[RL_CONNECTIONS];
    const struct rl_rate *reqs = &r->per_key[RL_REQUESTS];
    bool first = conns->set && sw_plugin_req_is_first(ctx);
    if (!first && !reqs->set) {
        return SW_PLUGIN_CONTINUE;
    }
    struct rl_entry *e = entry_of(ctx, r, c);
    if (e == NULL) {
        return SW_PLUGIN_CONTINUE;
    }
    if (first && !rl_bucket_take(&e->b[RL_CONNECTIONS], conns, now, 1, &wait)) {
        /* a keep-alive connection refused once stays refused: its later
         * requests are not first ones, yet it is still over the limit */
        c->refused = true;
        c->refused_until = now + wait;
        return refuse(ctx, r, c, "connections", wait);
    }
    if (reqs->set && !rl_bucket_take(&e->b[RL_REQUESTS], reqs, now, 1, &wait)) {
        return refuse(ctx, r, c, "requests", wait);
    }
    return SW_PLUGIN_CONTINUE;
}

static int
on_request(struct sw_plugin_ctx *ctx)
{
    /* an upgrade is checked in on_upgrade, once every plugin's on_request
     * has run (and set its variables) */
    if (sw_plugin_req_is_upgrade(ctx)) {
        return SW_PLUGIN_CONTINUE;
    }
    return check_request(ctx);
}

static int
on_upgrade(struct sw_plugin_ctx *ctx)
{
    return check_request(ctx);
}

/* Over a message limit: close 1008 or drop, counted. The gateway skips
 * the rest of a dropped message itself; a frame after the first cannot be
 * dropped (half a message would go out), so the session is closed. */
static int
ws_over(struct sw_plugin_ctx *ctx, const struct rl_route *r, struct rl_conn *c,
        const char *what)
{
    char key[RL_KEY_MAX];
    if (!c->have_key) {
        set_key(c, 'a', sw_plugin_remote_addr(ctx)); /* for the log */
    }
    if (r->ws_drop && sw_plugin_ws_first(ctx)) {
        sw_plugin_count(ctx, r->counter[RL_C_WS_DROPPED], 1);
        sw_plugin_log(ctx, RL_LOG_DEBUG,
                      "over the %s limit, key \"%s\": message dropped", what,
                      key_show(c, key, sizeof(key)));
        return SW_PLUGIN_DROP;
    }
    sw_plugin_ws_close(ctx, 1008, "rate limit");
    sw_plugin_count(ctx, r->counter[RL_C_WS_CLOSED], 1);
    sw_plugin_log(ctx, RL_LOG_INFO, "over the %s limit, key \"%s\": close 1008",
                  what, key_show(c, key, sizeof(key)));
    return SW_PLUGIN_CLOSE;
}

static int
on_ws_message(struct sw_plugin_ctx *ctx)
{
    if (sw_plugin_ws_dir(ctx) != SW_PLUGIN_WS_FROM_CLIENT) {
        return SW_PLUGIN_CONTINUE;
    }
    const struct rl_route *r = sw_plugin_route_state(ctx);
    struct rl_conn *c = sw_plugin_conn_state(ctx);
    if (c == NULL) {
        return SW_PLUGIN_CONTINUE;
    }
    bool first = sw_plugin_ws_first(ctx);
    uint64_t now = sw_plugin_now_ms(ctx);
    uint64_t len = sw_plugin_ws_frame_len(ctx);
    if (first && r->conn_msgs.set &&
        !rl_bucket_take(&c->msgs, &r->conn_msgs, now, 1, NULL)) {
        return ws_over(ctx, r, c, "messages per connection");
    }
    if (r->conn_bytes.set &&
        !rl_bucket_take(&c->bytes, &r->conn_bytes, now, len, NULL)) {
        return ws_over(ctx, r, c, "bytes per connection");
    }
    const struct rl_rate *msgs = &r->per_key[RL_MESSAGES];
    const struct rl_rate *bytes = &r->per_key[RL_BYTES];
    if (!(first && msgs->set) && !bytes->set) {
        return SW_PLUGIN_CONTINUE;
    }
    struct rl_entry *e = entry_of(ctx, r, c);
    if (e == NULL) {
        return SW_PLUGIN_CONTINUE;
    }
    if (first && msgs->set &&
        !rl_bucket_take(&e->b[RL_MESSAGES], msgs, now, 1, NULL)) {
        return ws_over(ctx, r, c, "messages per key");
    }
    if (bytes->set && !rl_bucket_take(&e->b[RL_BYTES], bytes, now, len, NULL)) {
        return ws_over(ctx, r, c, "bytes per key");
    }
    return SW_PLUGIN_CONTINUE;
}

static int
on_worker_start(unsigned worker_id, void **worker_state)
{
    *worker_state = rl_worker_new(worker_id);
    return *worker_state != NULL ? SW_OK : SW_ENOMEM;
}

static void
on_worker_stop(unsigned worker_id, void *worker_state)
{
    SW_UNUSED(worker_id);
    rl_worker_free(worker_state);
}

static const struct sw_plugin ratelimit_plugin = {
    .abi_major = SW_PLUGIN_ABI_MAJOR,
    .abi_minor = SW_PLUGIN_ABI_MINOR,
    .size = sizeof(struct sw_plugin),
    .name = "ratelimit",
    .version = "1.0",
    .directives = rl_directives,
    .conn_state_size = sizeof(struct rl_conn),
    .configure = rl_configure,
    .unconfigure = rl_unconfigure,
    .on_worker_start = on_worker_start,
    .on_worker_stop = on_worker_stop,
    .on_request = on_request,
    .on_upgrade = on_upgrade,
    .on_ws_message = on_ws_message,
};

SW_PLUGIN_DEFINE(ratelimit_plugin)
