/*
 * conf.c - the `plugin ratelimit { }` block: its directive table, and
 * configure/unconfigure (main thread), which turn a block into a struct
 * rl_route with every limit already divided by the worker count.
 *
 * The gateway checks directive names and argument counts from the table;
 * everything else (rates, options, ranges) is checked here, each error at
 * its directive's position.
 *
 * Owns: the struct rl_route and its strings. The route state is read-only
 * once configure returns.
 */
#include "ratelimit.h"

#define MAX_KEYS_DEFAULT 10000

const struct sw_plugin_directive rl_directives[] = {
    {"key", 1, 2, false},         /* remote_addr | header NAME | var NAME */
    {"connections", 1, 2, false}, /* RATE [burst=N] */
    {"requests", 1, 2, false},    /* RATE [burst=N] */
    {"messages", 1, 3, true},     /* RATE [burst=N] [per=...], per once */
    {"bytes", 1, 3, true},        /* SIZE/PERIOD [burst=SIZE] [per=...] */
    {"ws_over", 1, 1, false},     /* close | drop */
    {"max_keys", 1, 1, false},    /* N */
    {"status", 1, 1, false},      /* 429 | 503 */
    {NULL, 0, 0, false},
};

/* A header or variable name: an HTTP token (RFC 9110 5.6.2). */
static bool
is_name(const char *s)
{
    static const char tchar[] = "abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789!#$%&'*+-.^_`|~";
    return *s != '\0' && s[strspn(s, tchar)] == '\0';
}

/* A decimal number in [lo, hi]. */
static bool
parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t n = 0;
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || n > hi) {
            return false;
        }
        n = n * 10 + (uint64_t)(*s - '0');
    }
    if (n < lo || n > hi) {
        return false;
    }
    *out = n;
    return true;
}

/* burst=N: a count, or a size for bytes. */
static bool
parse_burst(const char *s, bool bytes, uint64_t *out)
{
    if (!bytes) {
        return parse_uint(s, 1, RL_COUNT_MAX, out);
    }
    return sw_plugin_parse_size(s, out) == SW_OK && *out >= 1 &&
           *out <= RL_BYTES_MAX;
}

static int
parse_key(struct sw_plugin_conf *pc, size_t i, struct rl_route *r)
{
    const char *src = sw_plugin_conf_arg(pc, i, 0);
    const char *name = sw_plugin_conf_arg(pc, i, 1);
    if (strcmp(src, "remote_addr") == 0) {
        if (name != NULL) {
            return sw_plugin_conf_error(pc, i,
                                        "\"key remote_addr\" takes no name");
        }
        r->key_src = RL_KEY_ADDR;
        return SW_OK;
    }
    if (strcmp(src, "header") == 0) {
        r->key_src = RL_KEY_HEADER;
    } else if (strcmp(src, "var") == 0) {
        r->key_src = RL_KEY_VAR;
    } else {
        return sw_plugin_conf_error(
            pc, i, "unknown key \"%s\": expected remote_addr, header or var",
            src);
    }
    if (name == NULL || !is_name(name)) {
        return sw_plugin_conf_error(pc, i, "\"key %s\" needs a valid name",
                                    src);
    }
    r->key_name = strdup(name);
    if (r->key_name == NULL) {
        return sw_plugin_conf_error(pc, i, "out of memory");
    }
    return SW_OK;
}

/* `NAME RATE [burst=N] [per=connection|key]`: *per_key is left alone when
 * per_ok is false (connections, requests: always per key). */
static int
parse_limit(struct sw_plugin_conf *pc, size_t i, bool bytes, bool per_ok,
            struct rl_rate *rate, bool *per_key)
{
    const char *what = sw_plugin_conf_name(pc, i);
    const char *why = NULL;
    if (rl_rate_parse(sw_plugin_conf_arg(pc, i, 0), bytes, &rate->count,
                      &rate->period_ms, &why) != SW_OK) {
        return sw_plugin_conf_error(pc, i, "%s \"%s\": %s", what,
                                    sw_plugin_conf_arg(pc, i, 0), why);
    }
    rate->burst = rate->count;
    rate->scale = bytes ? RL_SCALE_BYTES : RL_SCALE_COUNT;
    rate->set = true;
    bool seen_burst = false, seen_per = false;
    for (size_t j = 1; j < sw_plugin_conf_nargs(pc, i); j++) {
        const char *a = sw_plugin_conf_arg(pc, i, j);
        if (strncmp(a, "burst=", 6) == 0 && !seen_burst) {
            seen_burst = true;
            if (!parse_burst(a + 6, bytes, &rate->burst)) {
                return sw_plugin_conf_error(
                    pc, i, "%s: invalid \"%s\" (%s)", what, a,
                    bytes ? "a size from 1 to 2g" : "1 to 1000000");
            }
        } else if (per_ok && strncmp(a, "per=", 4) == 0 && !seen_per) {
            seen_per = true;
            if (strcmp(a + 4, "key") == 0) {
                *per_key = true;
            } else if (strcmp(a + 4, "connection") == 0) {
                *per_key = false;
            } else {
                return sw_plugin_conf_error(
                    pc, i, "%s: \"%s\": expected per=connection or per=key",
                    what, a);
            }
        } else {
            return sw_plugin_conf_error(pc, i, "%s: unexpected \"%s\"%s", what,
                                        a,
                                        per_ok ? " (burst=N, per=connection "
                                                 "or per=key, once each)"
                                               : " (burst=N, once)");
        }
    }
    return SW_OK;
}

/* messages and bytes: one per=connection and one per=key line at most. */
static int
parse_ws_limit(struct sw_plugin_conf *pc, size_t i, struct rl_route *r,
               bool bytes)
{
    struct rl_rate rate = {0};
    bool per_key = false;
    int st = parse_limit(pc, i, bytes, true, &rate, &per_key);
    if (st != SW_OK) {
        return st;
    }
    struct rl_rate *dst = per_key ? &r->per_key[bytes ? RL_BYTES : RL_MESSAGES]
                          : bytes ? &r->conn_bytes
                                  : &r->conn_msgs;
    if (dst->set) {
        return sw_plugin_conf_error(pc, i, "%s per=%s given twice",
                                    sw_plugin_conf_name(pc, i),
                                    per_key ? "key" : "connection");
    }
    *dst = rate;
    return SW_OK;
}

static int
parse_one(struct sw_plugin_conf *pc, size_t i, struct rl_route *r)
{
    const char *name = sw_plugin_conf_name(pc, i);
    const char *a = sw_plugin_conf_arg(pc, i, 0);
    bool unused = false;
    uint64_t n = 0;
    if (strcmp(name, "key") == 0) {
        return parse_key(pc, i, r);
    }
    if (strcmp(name, "connections") == 0) {
        return parse_limit(pc, i, false, false, &r->per_key[RL_CONNECTIONS],
                           &unused);
    }
    if (strcmp(name, "requests") == 0) {
        return parse_limit(pc, i, false, false, &r->per_key[RL_REQUESTS],
                           &unused);
    }
    if (strcmp(name, "messages") == 0 || strcmp(name, "bytes") == 0) {
        return parse_ws_limit(pc, i, r, name[0] == 'b');
    }
    if (strcmp(name, "ws_over") == 0) {
        if (strcmp(a, "close") != 0 && strcmp(a, "drop") != 0) {
            return sw_plugin_conf_error(
                pc, i, "ws_over \"%s\": expected close or drop", a);
        }
        r->ws_drop = a[0] == 'd';
        return SW_OK;
    }
    if (strcmp(name, "max_keys") == 0) {
        if (!parse_uint(a, 1, RL_MAX_KEYS_MAX, &n)) {
            return sw_plugin_conf_error(
                pc, i, "max_keys \"%s\": expected 1 to 10000000", a);
        }
        r->max_keys = (size_t)n;
        return SW_OK;
    }
    /* status: the table holds no other name */
    if (strcmp(a, "429") != 0 && strcmp(a, "503") != 0) {
        return sw_plugin_conf_error(pc, i, "status \"%s\": expected 429 or 503",
                                    a);
    }
    r->status = (unsigned)atoi(a);
    return SW_OK;
}

void
rl_unconfigure(void *route_state)
{
    struct rl_route *r = route_state;
    if (r == NULL) {
        return;
    }
    free(r->key_name);
    free(r->route);
    free(r);
}

/* The counters, by enum rl_counter. */
static const struct {
    const char *name; /* shockwave_plugin_ratelimit_<name> */
    const char *help; /* its HELP line */
} counter_defs[RL_COUNTERS] = {
    {"limited_total", "HTTP requests answered 429 (or 503) by ratelimit."},
    {"ws_closed_total",
     "WebSocket sessions closed 1008 for going over a message limit."},
    {"ws_dropped_total",
     "WebSocket messages dropped for going over a message limit."},
    {"keys_evicted_total",
     "Keys evicted from a worker's table (max_keys reached)."},
};

static int
counters(struct sw_plugin_conf *pc, struct rl_route *r)
{
    for (size_t i = 0; i < RL_COUNTERS; i++) {
        r->counter[i] = sw_plugin_conf_counter(pc, counter_defs[i].name,
                                               counter_defs[i].help);
        if (r->counter[i] < 0) {
            return sw_plugin_conf_error(pc, (size_t)-1,
                                        "cannot register counter %s",
                                        counter_defs[i].name);
        }
    }
    return SW_OK;
}

int
rl_configure(struct sw_plugin_conf *pc, void **route_state)
{
    struct rl_route *r = calloc(1, sizeof(*r));
    const char *route = sw_plugin_conf_route(pc);
    if (r == NULL || (r->route = strdup(route != NULL ? route : "")) == NULL) {
        rl_unconfigure(r);
        return sw_plugin_conf_error(pc, (size_t)-1, "out of memory");
    }
    r->key_src = RL_KEY_ADDR;
    r->status = 429;
    r->max_keys = MAX_KEYS_DEFAULT;
    r->route_hash = rl_hash(r->route, strlen(r->route), 0);
    int st = SW_OK;
    for (size_t i = 0; i < sw_plugin_conf_count(pc) && st == SW_OK; i++) {
        st = parse_one(pc, i, r);
    }
    for (size_t k = 0; k < RL_KINDS; k++) {
        r->keyed = r->keyed || r->per_key[k].set;
    }
    bool any = r->keyed || r->conn_msgs.set || r->conn_bytes.set;
    if (st == SW_OK && !any) {
        st = sw_plugin_conf_error(pc, (size_t)-1,
                                  "no limit: give at least one of connections, "
                                  "requests, messages, bytes");
    }
    if (st == SW_OK) {
        st = counters(pc, r);
    }
    if (st != SW_OK) {
        rl_unconfigure(r);
        return st;
    }
    /* per-key state is per worker: each worker gets its share of those
     * limits. A connection lives on one worker, so per=connection limits
     * stay whole. */
    unsigned workers = sw_plugin_conf_workers(pc);
    r->workers = workers > 0 ? workers : 1;
    for (size_t k = 0; k < RL_KINDS; k++) {
        rl_rate_divide(&r->per_key[k], r->workers);
    }
    /* without message or byte limits the frames need not be seen: the
     * route keeps splicing large payloads */
    if (!r->conn_msgs.set && !r->conn_bytes.set &&
        !r->per_key[RL_MESSAGES].set && !r->per_key[RL_BYTES].set) {
        sw_plugin_conf_skip_frames(pc);
    }
    *route_state = r;
    return SW_OK;
}
