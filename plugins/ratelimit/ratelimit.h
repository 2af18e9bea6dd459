/*
 * ratelimit.h - the ratelimit plugin's internal interface: token buckets
 * (bucket.c), the per-worker key table (keytab.c), the route configuration
 * (conf.c) and the hooks (ratelimit.c).
 *
 *   configure (main thread) --> struct rl_route (read-only, in the snapshot)
 *   on_worker_start         --> struct rl_worker: one struct rl_table per
 *                               route name, created at its first request
 *   on_request / on_upgrade --> the key, then the entry of (route, key):
 *                               connections and requests buckets
 *   on_ws_message           --> per=connection buckets in the connection
 *                               state, per=key ones in the entry
 *
 * A bucket holds only state (level, carry, last refill); its rate comes
 * from the route at each call, so a reload that changes a limit applies to
 * the buckets already there. All arithmetic is in integers.
 *
 * Threading: a struct rl_route is shared by every worker and never written
 * after configure; a worker's tables and entries are touched only by that
 * worker.
 */
#ifndef RATELIMIT_H
#define RATELIMIT_H

#include <shockwave/plugin.h>

/* Log levels of sw_plugin_log (shockwave/log.h numbering). */
#define RL_LOG_WARN 1
#define RL_LOG_INFO 2
#define RL_LOG_DEBUG 3

/* Keys are compared on their first RL_KEY_MAX bytes. */
#define RL_KEY_MAX 128

/* Count buckets (connections, requests, messages) hold milli-tokens; the
 * bytes bucket holds bytes. */
#define RL_SCALE_COUNT 1000
#define RL_SCALE_BYTES 1

/* Bounds that keep every product in 64 bits (bucket.c): a rate's count
 * times its scale, and its period times the worker count. */
#define RL_COUNT_MAX 1000000ull     /* connections, requests, messages */
#define RL_BYTES_MAX (1ull << 31)   /* bytes per period, and bytes burst */
#define RL_PERIOD_MAX 3600000ull    /* 1h */
#define RL_MAX_KEYS_MAX 10000000ull /* max_keys */

/* ---- bucket.c ------------------------------------------------------------ */

/* A rate as configured for one worker: `count` tokens every `period_ms`,
 * at most `burst` tokens saved, each token `scale` units of the level. */
struct rl_rate {
    uint64_t count;     /* tokens per period (>= 1) */
    uint64_t period_ms; /* the period, times the worker count (>= 1) */
    uint64_t burst;     /* capacity in tokens (>= 1) */
    uint64_t scale;     /* RL_SCALE_COUNT or RL_SCALE_BYTES */
    bool set;           /* the limit is configured */
};

/* One bucket's state. A zeroed bucket is full at its first use. */
struct rl_bucket {
    uint64_t level;   /* units (tokens times scale) in the bucket */
    uint64_t carry;   /* remainder of the last refill, below period_ms */
    uint64_t last_ms; /* time of the last refill */
    bool started;     /* level and last_ms are meaningful */
};

/* Refill to `now_ms` and take `tokens` when they are all there: true.
 * Otherwise nothing is taken, false, and *wait_ms (when not NULL) is the
 * time until they will be there (UINT64_MAX when they never can: more than
 * the burst). */
bool rl_bucket_take(struct rl_bucket *b, const struct rl_rate *r,
                    uint64_t now_ms, uint64_t tokens, uint64_t *wait_ms);

/* Parse "10/s", "600/m", "100/h" (count buckets) or "64k/s" (bytes: any
 * size sw_plugin_parse_size reads) into count and period_ms. SW_OK or
 * SW_EINVAL with a static reason in *why. */
int rl_rate_parse(const char *s, bool bytes, uint64_t *count,
                  uint64_t *period_ms, const char **why);

/* Divide a configured rate among `workers`: the period is multiplied (so
 * 10/s over 2 workers is 10 per 2s each, exactly 5/s), the burst divided
 * and rounded up (at least 1). */
void rl_rate_divide(struct rl_rate *r, unsigned workers);

/* ---- keytab.c ------------------------------------------------------------ */

/* What a key's entry holds: its per-key buckets. */
enum rl_kind {
    RL_CONNECTIONS = 0,
    RL_REQUESTS,
    RL_MESSAGES,
    RL_BYTES,
    RL_KINDS
};

struct rl_entry {
    struct rl_entry *next;        /* hash chain */
    struct rl_entry *lru_prev;    /* toward the most recently used */
    struct rl_entry *lru_next;    /* toward the least recently used */
    uint64_t hash;                /* of the key */
    struct rl_bucket b[RL_KINDS]; /* per-key buckets by enum rl_kind */
    uint32_t key_len;             /* bytes in key */
    char key[];                   /* the key (not NUL-terminated) */
};

/* One route's keys on one worker: a chained hash table with an LRU list,
 * at most max_keys entries. */
struct rl_table {
    char *route;            /* owned: the route's name */
    uint64_t route_hash;    /* of route */
    struct rl_entry **slot; /* owned: nslots chains */
    size_t nslots;          /* a power of two */
    size_t count;           /* entries */
    struct rl_entry *mru;   /* most recently used, or NULL */
    struct rl_entry *lru;   /* least recently used, or NULL */
    uint64_t seed;          /* hash seed, per worker */
};

/* A worker's tables, one per route name that used the plugin. */
struct rl_worker {
    struct rl_table **tab; /* owned */
    size_t ntab;           /* entries in tab */
    uint64_t seed;         /* hash seed of this worker */
};

/* FNV-1a with a final mix over p[0..n), varied by seed. */
uint64_t rl_hash(const void *p, size_t n, uint64_t seed);

struct rl_worker *rl_worker_new(unsigned worker_id);
void rl_worker_free(struct rl_worker *w);
/* The table of route `name` (hash `h`), created on first use; NULL when
 * out of memory. */
struct rl_table *rl_worker_table(struct rl_worker *w, const char *name,
                                 uint64_t h);

/* The entry of key[0..len) (len <= RL_KEY_MAX), made most recently used;
 * created when absent, after evicting least recently used entries while
 * the table holds max_keys or more (*evicted counts them). NULL when out
 * of memory. */
struct rl_entry *rl_table_get(struct rl_table *t, const char *key, size_t len,
                              size_t max_keys, size_t *evicted);

/* ---- conf.c -------------------------------------------------------------- */

enum rl_key_source {
    RL_KEY_ADDR = 0, /* the client address */
    RL_KEY_HEADER,   /* a request header */
    RL_KEY_VAR,      /* a request variable (sw_plugin_var_set) */
};

/* The plugin's counters (conf.c registers them). */
enum rl_counter {
    RL_C_LIMITED = 0, /* limited_total */
    RL_C_WS_CLOSED,   /* ws_closed_total */
    RL_C_WS_DROPPED,  /* ws_dropped_total */
    RL_C_EVICTED,     /* keys_evicted_total */
    RL_COUNTERS
};

/* One `plugin ratelimit { }` block; per-key limits are divided by the
 * worker count, per=connection ones are not. */
struct rl_route {
    enum rl_key_source key_src; /* where the key comes from */
    char *key_name;             /* owned: header or variable name, or NULL */
    struct rl_rate per_key[RL_KINDS]; /* per-key limits by enum rl_kind */
    struct rl_rate conn_msgs;         /* messages per=connection */
    struct rl_rate conn_bytes;        /* bytes per=connection */
    bool keyed;                       /* some per-key limit is set */
    bool ws_drop;                     /* ws_over drop (else close 1008) */
    unsigned status;                  /* 429 or 503 */
    size_t max_keys;                  /* per worker */
    char *route;                      /* owned: the route's name */
    uint64_t route_hash;              /* rl_hash of route, seed 0 */
    unsigned workers;                 /* the divisor */
    int counter[RL_COUNTERS];         /* counter ids by enum rl_counter */
};

int rl_configure(struct sw_plugin_conf *pc, void **route_state);
void rl_unconfigure(void *route_state);

/* The directive table (conf.c). */
extern const struct sw_plugin_directive rl_directives[];

#endif
