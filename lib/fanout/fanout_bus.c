/*
 * fanout_bus.c - a worker's side of the Redis bus between gateways
 * (docs/scaling.md): two connections through hiredis and its libevent
 * adapter, on the worker's own loop:
 *
 *   cmd  PUBLISH, the lease script, PUBSUB NUMSUB
 *   sub  SUBSCRIBE / UNSUBSCRIBE (a subscribed connection takes nothing
 *        else)
 *
 * Each worker holds its own pair for the channels it owns, so a message
 * from the bus is delivered by the worker that owns its channel, and no
 * bus work crosses a thread. Either connection lost: both are closed and
 * made again after a backoff (100 ms doubling to 5 s); meanwhile every
 * channel holds its own upstream (fanout_hold.c).
 *
 * A message (one PUBLISH payload) is its WebSocket opcode (1 byte) and
 * its payload; which of the channel's names it travels on says what it is
 * (fanout_int.h).
 *
 * Worker thread only.
 */
#include "fanout_int.h"

#include <shockwave/log.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/rand.h>

#include <stdlib.h>
#include <string.h>

#define BUS_BACKOFF_MIN_MS 100
#define BUS_BACKOFF_MAX_MS 5000
/* A connect not done by then is given up (hiredis has no async timeout). */
#define BUS_CONNECT_MS 2000
/* Output hiredis holds for Redis at most: past it publishes are dropped
 * (counted) rather than queued without bound. */
#define BUS_OBUF_MAX (16u << 20)
#define BUS_ENVELOPE 1 /* the opcode */
#define BUS_MAP_MIN 64

/* The lease, in one script: free or ours, it is (re)taken with our value;
 * else the holder's value comes back. */
static const char look_script[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == false or string.sub(v, 1, #ARGV[1]) == ARGV[1] then "
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end "
    "return v";
static const char release_script[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then "
    "redis.call('DEL', KEYS[1]) end return 0";

struct fo_bus {
    struct sw_fanout *f;         /* borrowed: its worker */
    const struct fo_bus_conf *c; /* borrowed: the hub's */
    redisAsyncContext *cmd;      /* owned by hiredis once connected */
    redisAsyncContext *sub;
    bool cmd_ready, sub_ready; /* connected, AUTH and SELECT sent */
    bool up;                   /* both ready: the channels were told */
    bool stopping;             /* fo_bus_free: no reconnect */
    bool was_down;             /* the loss was logged */
    bool script_warned;        /* a failed lease script was logged */
    uint64_t backoff_ms;
    uint64_t connect_by_ms;
    struct event timer;   /* reconnect, connect deadline */
    struct fo_chan **map; /* owned array: the owned channels by name */
    size_t map_cap, map_n;
    uint8_t *scratch; /* owned: an envelope being built */
    size_t scratch_cap;
};

static void bus_connect(struct fo_bus *b);

/* ---- the settings ------------------------------------------------------- */

static char *
dup_str(struct sw_str s)
{
    char *p = malloc(s.len + 1);
    if (p != NULL) {
        memcpy(p, s.p, s.len);
        p[s.len] = '\0';
    }
    return p;
}

void
fo_bus_conf_free(struct fo_bus_conf *c)
{
    if (c == NULL) {
        return;
    }
    free(c->host);
    free(c->user);
    free(c->password);
    free(c->prefix);
    free(c);
}

enum sw_status
sw_fanout_hub_set_bus(struct sw_fanout_hub *hub, const struct sw_conf *cf)
{
    if (cf->bus_host.len == 0) {
        return SW_OK;
    }
    struct fo_bus_conf *c = calloc(1, sizeof(*c));
    uint8_t id[8];
    if (c == NULL) {
        return SW_ENOMEM;
    }
    c->host = dup_str(cf->bus_host);
    c->user = dup_str(cf->bus_user);
    c->password = dup_str(cf->bus_password);
    c->prefix = dup_str(cf->bus_prefix);
    if (c->host == NULL || c->user == NULL || c->password == NULL ||
        c->prefix == NULL || RAND_bytes(id, sizeof(id)) != 1) {
        fo_bus_conf_free(c);
        return SW_ENOMEM;
    }
    c->prefix_len = cf->bus_prefix.len;
    c->port = cf->bus_port;
    c->db = cf->bus_db;
    c->lease_ms = cf->bus_lease_ms;
    for (size_t i = 0; i < sizeof(id); i++) {
        snprintf(c->id_hex + 2 * i, 3, "%02x", id[i]);
    }
    fo_bus_conf_free(hub->bus);
    hub->bus = c;
    sw_log_info("fanout bus: redis %s:%u db %u, prefix \"%s\", lease "
                "%llums, gateway id %s",
                c->host, c->port, c->db, c->prefix,
                (unsigned long long)c->lease_ms, c->id_hex);
    return SW_OK;
}

bool
sw_fanout_hub_has_bus(const struct sw_fanout_hub *hub)
{
    return hub != NULL && hub->bus != NULL;
}

/* ---- the name map: "UP:KEY" (the part after PREFIX and the letter) ---- */

static struct sw_str
map_key(const struct fo_chan *ch)
{
    size_t at = ch->hold.kind_at + 2; /* the letter and its ':' */
    return (struct sw_str){ch->hold.names + at, ch->hold.names_len - at};
}

static struct fo_chan **
map_slot(struct fo_bus *b, struct sw_str k)
{
    uint64_t h = sw_hash64(k.p, k.len, 0);
    struct fo_chan **pp = &b->map[h & (b->map_cap - 1)];
    while (*pp != NULL) {
        struct sw_str o = map_key(*pp);
        if (o.len == k.len && memcmp(o.p, k.p, k.len) == 0) {
            break;
        }
        pp = &(*pp)->hold.map_next;
    }
    return pp;
}

static bool
map_add(struct fo_bus *b, struct fo_chan *ch)
{
    if (b->map_n >= b->map_cap) {
        size_t cap = b->map_cap == 0 ? BUS_MAP_MIN : b->map_cap * 2;
        struct fo_chan **old = b->map;
        size_t ocap = b->map_cap;
        b->map = calloc(cap, sizeof(*b->map));
        if (b->map == NULL) {
            b->map = old;
            return false;
        }
        b->map_cap = cap;
        for (size_t i = 0; i < ocap; i++) {
            while (old[i] != NULL) {
                struct fo_chan *c = old[i];
                old[i] = c->hold.map_next;
                struct fo_chan **pp = map_slot(b, map_key(c));
                c->hold.map_next = *pp;
                *pp = c;
            }
        }
        free(old);
    }
    struct fo_chan **pp = map_slot(b, map_key(ch));
    if (*pp == ch) {
        return true;
    }
    ch->hold.map_next = *pp;
    *pp = ch;
    b->map_n++;
    return true;
}

void
fo_bus_forget(struct fo_bus *b, struct fo_chan *ch)
{
    if (b == NULL || b->map_cap == 0) {
        return;
    }
    struct fo_chan **pp = map_slot(b, map_key(ch));
    if (*pp == ch) {
        *pp = ch->hold.map_next;
        ch->hold.map_next = NULL;
        b->map_n--;
    }
}

/* ---- connections -------------------------------------------------------- */

bool
fo_bus_up(const struct fo_bus *b)
{
    return b != NULL && b->up;
}

static void
arm_timer(struct fo_bus *b, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(&b->timer, &tv);
}

/* One of the connections is gone or refused: drop both, tell the
 * channels, try again after the backoff. */
static void
bus_lost(struct fo_bus *b, const char *why)
{
    bool was_up = b->up;
    b->up = false;
    b->cmd_ready = b->sub_ready = false;
    redisAsyncContext *cmd = b->cmd, *sub = b->sub;
    b->cmd = b->sub = NULL;
    /* freed, not disconnected: a disconnect would wait for the replies
     * of a connection that may never answer; the pending callbacks run
     * now (or when the callback we are in returns) with no reply */
    if (cmd != NULL) {
        cmd->data = NULL;
        redisAsyncFree(cmd);
    }
    if (sub != NULL) {
        sub->data = NULL;
        redisAsyncFree(sub);
    }
    if (b->stopping) {
        return;
    }
    sw_metrics_inc(b->f->metrics, SW_METRIC_FANOUT_BUS_ERRORS);
    if (!b->was_down) {
        sw_log_warn("fanout bus: redis %s:%u: %s; channels hold their own "
                    "upstreams until it is back",
                    b->c->host, b->c->port, why);
        b->was_down = true;
    }
    if (was_up) {
        fo_hold_bus_down(b->f);
    }
    b->backoff_ms = b->backoff_ms == 0 ? BUS_BACKOFF_MIN_MS
                                       : SW_MIN(b->backoff_ms * 2,
                                                (uint64_t)BUS_BACKOFF_MAX_MS);
    b->connect_by_ms = 0;
    arm_timer(b, b->backoff_ms);
}

static void
both_ready(struct fo_bus *b)
{
    if (!b->cmd_ready || !b->sub_ready || b->up) {
        return;
    }
    b->up = true;
    b->script_warned = false;
    b->backoff_ms = 0;
    b->connect_by_ms = 0;
    sw_metrics_inc(b->f->metrics, SW_METRIC_FANOUT_BUS_CONNECTS);
    sw_log_info("fanout bus: worker %u connected to redis %s:%u%s", b->f->id,
                b->c->host, b->c->port, b->was_down ? " again" : "");
    b->was_down = false;
    fo_hold_bus_up(b->f);
}

/* The answer to AUTH or SELECT: an error is a refusal. */
static void
on_setup_reply(redisAsyncContext *ac, void *r, void *arg)
{
    struct fo_bus *b = ac->data;
    redisReply *reply = r;
    SW_UNUSED(arg);
    if (b == NULL || reply == NULL || reply->type != REDIS_REPLY_ERROR) {
        return;
    }
    char why[160];
    snprintf(why, sizeof(why), "refused the connection setup: %.120s",
             reply->str);
    bus_lost(b, why);
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
    struct fo_bus *b = ac->data;
    if (b == NULL) {
        return;
    }
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        if (ac == b->cmd) {
            b->cmd = NULL;
        } else if (ac == b->sub) {
            b->sub = NULL;
        }
        bus_lost(b, ac->errstr[0] != '\0' ? ac->errstr : "cannot connect");
        return;
    }
    if (ac == b->cmd) {
        b->cmd_ready = true;
    } else {
        b->sub_ready = true;
    }
    both_ready(b);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
    struct fo_bus *b = ac->data;
    SW_UNUSED(status);
    if (b == NULL) {
        return;
    }
    if (ac == b->cmd) {
        b->cmd = NULL;
    } else if (ac == b->sub) {
        b->sub = NULL;
    }
    bus_lost(b, ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
}

static void on_sub_reply(redisAsyncContext *ac, void *r, void *arg);

/* A new connection with its AUTH (and SELECT) queued first. */
static redisAsyncContext *
open_one(struct fo_bus *b, bool select)
{
    redisAsyncContext *ac = redisAsyncConnect(b->c->host, b->c->port);
    if (ac == NULL) {
        return NULL;
    }
    if (ac->err) {
        sw_log_warn("fanout bus: redis %s:%u: %s", b->c->host, b->c->port,
                    ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = b;
    redisLibeventAttach(ac, b->f->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (b->c->password[0] != '\0') {
        if (b->c->user[0] != '\0') {
            redisAsyncCommand(ac, on_setup_reply, NULL, "AUTH %s %s",
                              b->c->user, b->c->password);
        } else {
            redisAsyncCommand(ac, on_setup_reply, NULL, "AUTH %s",
                              b->c->password);
        }
    }
    if (select && b->c->db != 0) {
        redisAsyncCommand(ac, on_setup_reply, NULL, "SELECT %u", b->c->db);
    }
    return ac;
}

static void
bus_connect(struct fo_bus *b)
{
    b->cmd = open_one(b, true);
    b->sub = b->cmd != NULL ? open_one(b, false) : NULL;
    if (b->cmd == NULL || b->sub == NULL) {
        bus_lost(b, "cannot start a connection");
        return;
    }
    b->connect_by_ms = sw_now_ms() + BUS_CONNECT_MS;
    arm_timer(b, BUS_CONNECT_MS);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct fo_bus *b = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    if (b->up) {
        return;
    }
    if (b->cmd == NULL && b->sub == NULL) {
        bus_connect(b);
    } else if (b->connect_by_ms != 0 && sw_now_ms() >= b->connect_by_ms) {
        bus_lost(b, "connect timed out");
    }
}

struct fo_bus *
fo_bus_new(struct sw_fanout *f)
{
    struct fo_bus *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    b->f = f;
    b->c = f->hub->bus;
    event_assign(&b->timer, f->base, -1, 0, on_timer, b);
    arm_timer(b, 0); /* the first connect runs on the worker's loop */
    return b;
}

void
fo_bus_free(struct fo_bus *b)
{
    if (b == NULL) {
        return;
    }
    b->stopping = true;
    event_del(&b->timer);
    /* replies still pending run with NULL and drop their references */
    redisAsyncContext *cmd = b->cmd, *sub = b->sub;
    b->cmd = b->sub = NULL;
    b->up = false;
    if (cmd != NULL) {
        redisAsyncFree(cmd);
    }
    if (sub != NULL) {
        sub->data = NULL;
        redisAsyncFree(sub);
    }
    free(b->map);
    free(b->scratch);
    free(b);
}

/* ---- publishing ---------------------------------------------------------- */

static bool
room(struct fo_bus *b, size_t need)
{
    if (b->scratch_cap >= need) {
        return true;
    }
    size_t cap = SW_MAX(need, (size_t)4096);
    uint8_t *p = realloc(b->scratch, cap);
    if (p == NULL) {
        return false;
    }
    b->scratch = p;
    b->scratch_cap = cap;
    return true;
}

bool
fo_bus_publish_name(struct fo_bus *b, const char *name, size_t name_len,
                    uint8_t type, const uint8_t *payload, size_t len)
{
    struct sw_metrics *m = b->f->metrics;
    if (!b->up || sdslen(b->cmd->c.obuf) > BUS_OBUF_MAX ||
        !room(b, BUS_ENVELOPE + len)) {
        sw_metrics_inc(m, SW_METRIC_FANOUT_BUS_UNSENT);
        return false;
    }
    b->scratch[0] = type;
    if (len > 0) {
        memcpy(b->scratch + BUS_ENVELOPE, payload, len);
    }
    const char *argv[3] = {"PUBLISH", name, (const char *)b->scratch};
    size_t argvlen[3] = {7, name_len, BUS_ENVELOPE + len};
    if (redisAsyncCommandArgv(b->cmd, NULL, NULL, 3, argv, argvlen) !=
        REDIS_OK) {
        sw_metrics_inc(m, SW_METRIC_FANOUT_BUS_UNSENT);
        return false;
    }
    sw_metrics_inc(m, SW_METRIC_FANOUT_BUS_PUBLISHED);
    return true;
}

bool
fo_bus_publish(struct fo_bus *b, struct fo_chan *ch, char kind, uint8_t type,
               const uint8_t *payload, size_t len)
{
    ch->hold.names[ch->hold.kind_at] = kind;
    return fo_bus_publish_name(b, ch->hold.names, ch->hold.names_len, type,
                               payload, len);
}

/* ---- subscriptions --------------------------------------------------------
 */

void
fo_bus_subscribe(struct fo_bus *b, struct fo_chan *ch, char kind)
{
    if (!map_add(b, ch)) {
        sw_metrics_inc(b->f->metrics, SW_METRIC_OUT_OF_MEMORY);
        return;
    }
    uint8_t bit = fo_sub_bit(kind);
    if (!b->up || (ch->hold.subs & bit)) {
        return;
    }
    ch->hold.names[ch->hold.kind_at] = kind;
    if (redisAsyncCommand(b->sub, on_sub_reply, b, "SUBSCRIBE %b",
                          ch->hold.names, ch->hold.names_len) == REDIS_OK) {
        ch->hold.subs |= bit;
    }
}

void
fo_bus_unsubscribe(struct fo_bus *b, struct fo_chan *ch, char kind)
{
    uint8_t bit = fo_sub_bit(kind);
    if (!(ch->hold.subs & bit)) {
        return;
    }
    ch->hold.subs &= (uint8_t)~bit;
    if (!b->up) {
        return;
    }
    ch->hold.names[ch->hold.kind_at] = kind;
    redisAsyncCommand(b->sub, NULL, NULL, "UNSUBSCRIBE %b", ch->hold.names,
                      ch->hold.names_len);
}

/* The channel a subscription name ("PREFIXd:UP:KEY") is for, and its
 * letter; NULL when none (any more). */
static struct fo_chan *
lookup(struct fo_bus *b, const char *name, size_t len, char *kind)
{
    size_t pl = b->c->prefix_len;
    if (b->map_cap == 0 || len < pl + 2 ||
        memcmp(name, b->c->prefix, pl) != 0 || name[pl + 1] != ':') {
        return NULL;
    }
    *kind = name[pl];
    struct sw_str k = {name + pl + 2, len - pl - 2};
    return *map_slot(b, k);
}

/* Every reply of the subscription connection: confirmations, messages. */
static void
on_sub_reply(redisAsyncContext *ac, void *r, void *arg)
{
    struct fo_bus *b = arg;
    redisReply *reply = r;
    if (ac->data == NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements < 3 || reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        return;
    }
    const char *type = reply->element[0]->str;
    const redisReply *name = reply->element[1];
    char kind = 0;
    struct fo_chan *ch = lookup(b, name->str, name->len, &kind);
    if (strcmp(type, "unsubscribe") == 0) {
        /* hiredis forgets the name's callback at this answer, even when
         * it was subscribed again meanwhile: subscribe once more */
        uint8_t bit = fo_sub_bit(kind);
        if (ch != NULL && bit != 0 && (ch->hold.subs & bit)) {
            ch->hold.subs &= (uint8_t)~bit;
            fo_bus_subscribe(b, ch, kind);
        }
        return;
    }
    if (strcmp(type, "message") != 0 || ch == NULL) {
        return;
    }
    const redisReply *msg = reply->element[2];
    if (msg->type != REDIS_REPLY_STRING || msg->len < BUS_ENVELOPE) {
        return;
    }
    fo_hold_message(b->f, ch, kind, (const uint8_t *)msg->str,
                    (size_t)msg->len);
    fo_end_turn(b->f);
}

/* ---- the lease -------------------------------------------------------------
 */

static void
on_look(redisAsyncContext *ac, void *r, void *arg)
{
    struct fo_chan *ch = arg;
    redisReply *reply = r;
    struct fo_bus *b = ac->data;
    struct sw_fanout *f = ch->f;
    ch->hold.looking = false;
    if (b == NULL || reply == NULL || ch->hold.ended ||
        reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        if (b != NULL && reply != NULL && !ch->hold.ended) {
            sw_metrics_inc(b->f->metrics, SW_METRIC_FANOUT_BUS_ERRORS);
        }
        if (b != NULL && reply != NULL && ch->hold.ended &&
            reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
            reply->element[0]->type == REDIS_REPLY_INTEGER) {
            fo_bus_release(b, ch); /* taken for a channel now gone */
        }
        fo_chan_unref(f, ch);
        return;
    }
    const redisReply *v = reply->element[0];
    const redisReply *n = reply->element[1];
    long long numsub = -1;
    if (n->type == REDIS_REPLY_ARRAY && n->elements == 2 &&
        n->element[1]->type == REDIS_REPLY_INTEGER) {
        numsub = n->element[1]->integer;
    }
    if (v->type == REDIS_REPLY_INTEGER) {
        fo_hold_looked(f, ch, true, NULL, 0, numsub);
    } else if (v->type == REDIS_REPLY_STRING) {
        fo_hold_looked(f, ch, false, v->str, v->len, numsub);
    } else {
        if (!b->script_warned) { /* once per connection: it repeats */
            b->script_warned = true;
            sw_log_warn("fanout channel \"%s\": the lease script failed: %s",
                        ch->name,
                        v->type == REDIS_REPLY_ERROR ? v->str : "bad reply");
        }
        sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_BUS_ERRORS);
    }
    fo_end_turn(f);
    fo_chan_unref(f, ch);
}

bool
fo_bus_look(struct fo_bus *b, struct fo_chan *ch)
{
    if (!b->up || ch->hold.looking) {
        return false;
    }
    struct fo_hold *h = &ch->hold;
    char mine[24], value[24 + sizeof(ch->protocol)], lease[24];
    snprintf(mine, sizeof(mine), "%s|", b->c->id_hex);
    /* the protocol is written by this worker only (the owner) */
    snprintf(value, sizeof(value), "%s|%d|%s", b->c->id_hex,
             ch->up.ever_open ? 1 : 0, ch->protocol);
    snprintf(lease, sizeof(lease), "%llu", (unsigned long long)b->c->lease_ms);
    h->names[h->kind_at] = 'h';
    const char *argv[7] = {"EVAL", look_script, "1",  h->names,
                           mine,   value,       lease};
    size_t argvlen[7] = {4,
                         sizeof(look_script) - 1,
                         1,
                         h->names_len,
                         strlen(mine),
                         strlen(value),
                         strlen(lease)};
    /* MULTI/EXEC: the lease's answer and the subscriber count in one
     * reply, so one callback holds the channel's reference */
    redisAsyncCommand(b->cmd, NULL, NULL, "MULTI");
    redisAsyncCommandArgv(b->cmd, NULL, NULL, 7, argv, argvlen);
    h->names[h->kind_at] = 'd';
    redisAsyncCommand(b->cmd, NULL, NULL, "PUBSUB NUMSUB %b", h->names,
                      h->names_len);
    fo_chan_ref(ch);
    if (redisAsyncCommand(b->cmd, on_look, ch, "EXEC") != REDIS_OK) {
        fo_chan_unref(b->f, ch);
        return false;
    }
    h->looking = true;
    return true;
}

void
fo_bus_release(struct fo_bus *b, struct fo_chan *ch)
{
    if (!b->up) {
        return; /* it lapses by itself */
    }
    char mine[24];
    snprintf(mine, sizeof(mine), "%s|", b->c->id_hex);
    ch->hold.names[ch->hold.kind_at] = 'h';
    const char *argv[5] = {"EVAL", release_script, "1", ch->hold.names, mine};
    size_t argvlen[5] = {4, sizeof(release_script) - 1, 1, ch->hold.names_len,
                         strlen(mine)};
    redisAsyncCommandArgv(b->cmd, NULL, NULL, 5, argv, argvlen);
}
