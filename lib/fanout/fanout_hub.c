/*
 * fanout_hub.c - the hub and a worker's side of it:
 *
 *   sw_fanout_hub_new / _free / _stats   the directory, pools and rings
 *   sw_fanout_new / _free / _live / _drain
 *   sw_fanout_join                        find or make the channel, take
 *                                         the client
 *   fo_client_unlink, fo_chan_unref       leaving, the last reference
 *   fo_fanout_message, fo_deliver_local   one message to every client
 *   on_wake (entries from other workers), the sweep, the end of a turn
 *
 * The mutex guards the directory, each channel's state and protocol and
 * the client counts; it is taken when a client joins or leaves and when
 * a channel changes state, never per message.
 */
#include "fanout_int.h"

#include <shockwave/log.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* ---- the hub ----------------------------------------------------------- */

struct sw_fanout_hub *
sw_fanout_hub_new(unsigned nworkers)
{
    struct sw_fanout_hub *hub = calloc(1, sizeof(*hub));
    if (hub == NULL) {
        return NULL;
    }
    hub->nworkers = nworkers;
    pthread_mutex_init(&hub->lock, NULL);
    hub->nbuckets = 64;
    hub->buckets = calloc(hub->nbuckets, sizeof(*hub->buckets));
    hub->pools = calloc(nworkers, sizeof(*hub->pools));
    hub->rings = calloc((size_t)nworkers * nworkers, sizeof(*hub->rings));
    hub->efd = calloc(nworkers, sizeof(*hub->efd));
    hub->inbox = calloc(nworkers, sizeof(*hub->inbox));
    if (hub->buckets == NULL || hub->pools == NULL || hub->rings == NULL ||
        hub->efd == NULL || hub->inbox == NULL) {
        goto fail;
    }
    for (unsigned i = 0; i < nworkers; i++) {
        pthread_mutex_init(&hub->inbox[i].lock, NULL);
    }
    for (unsigned i = 0; i < nworkers; i++) {
        hub->efd[i] = -1;
    }
    for (unsigned i = 0; i < nworkers; i++) {
        hub->efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (hub->efd[i] < 0) {
            sw_log_error("fanout: eventfd: %s", strerror(errno));
            goto fail;
        }
        for (unsigned j = 0; j < nworkers; j++) {
            if (i == j) {
                continue;
            }
            struct fo_ring *r = aligned_alloc(64, sizeof(*r));
            if (r == NULL) {
                goto fail;
            }
            atomic_init(&r->head, 0);
            atomic_init(&r->tail, 0);
            hub->rings[i * nworkers + j] = r;
        }
    }
    return hub;
fail:
    sw_fanout_hub_free(hub);
    return NULL;
}

static void
chan_free(struct fo_chan *ch)
{
    free(ch->hold.names);
    free(ch->key);
    free(ch);
}

void
sw_fanout_hub_free(struct sw_fanout_hub *hub)
{
    if (hub == NULL) {
        return;
    }
    /* every worker's side is gone: what is left in the directory has no
     * holder but the directory itself */
    for (size_t i = 0; hub->buckets != NULL && i < hub->nbuckets; i++) {
        while (hub->buckets[i] != NULL) {
            struct fo_chan *ch = hub->buckets[i];
            hub->buckets[i] = ch->dir_next;
            chan_free(ch);
        }
    }
    for (unsigned i = 0; hub->pools != NULL && i < hub->nworkers; i++) {
        fo_pool_fini(&hub->pools[i]);
    }
    for (size_t i = 0;
         hub->rings != NULL && i < (size_t)hub->nworkers * hub->nworkers; i++) {
        free(hub->rings[i]);
    }
    for (unsigned i = 0; hub->efd != NULL && i < hub->nworkers; i++) {
        if (hub->efd[i] >= 0) {
            close(hub->efd[i]);
        }
    }
    for (unsigned i = 0; hub->inbox != NULL && i < hub->nworkers; i++) {
        pthread_mutex_destroy(&hub->inbox[i].lock); /* drained by its worker */
    }
    fo_bus_conf_free(hub->bus);
    free(hub->inbox);
    pthread_mutex_destroy(&hub->lock);
    free(hub->buckets);
    free(hub->pools);
    free(hub->rings);
    free(hub->efd);
    free(hub);
}

void
sw_fanout_hub_stats(struct sw_fanout_hub *hub, struct sw_fanout_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (hub == NULL) {
        return;
    }
    pthread_mutex_lock(&hub->lock);
    for (size_t i = 0; i < hub->nbuckets; i++) {
        for (struct fo_chan *ch = hub->buckets[i]; ch != NULL;
             ch = ch->dir_next) {
            size_t n =
                atomic_load_explicit(&ch->nclients, memory_order_relaxed);
            out->channels++;
            out->clients += n;
            out->largest = SW_MAX(out->largest, n);
        }
    }
    pthread_mutex_unlock(&hub->lock);
    for (unsigned i = 0; i < hub->nworkers; i++) {
        out->block_bytes += atomic_load(&hub->pools[i].bytes);
        out->blocks_pooled += atomic_load(&hub->pools[i].pooled);
    }
}

static struct fo_chan *dir_find(struct sw_fanout_hub *hub, struct sw_str key,
                                uint64_t h);

bool
sw_fanout_hub_publish(struct sw_fanout_hub *hub, struct sw_str key,
                      uint8_t opcode, const void *data, size_t len)
{
    struct fo_pub *p = malloc(sizeof(*p) + key.len + len);
    if (p == NULL) {
        return false;
    }
    *p = (struct fo_pub){.opcode = opcode, .key_len = key.len, .len = len};
    memcpy(p->data, key.p, key.len);
    if (len > 0) {
        memcpy(p->data + key.len, data, len);
    }
    uint64_t h = sw_hash64(key.p, key.len, 0);
    unsigned to = 0; /* no channel here: any worker publishes on the bus */
    pthread_mutex_lock(&hub->lock);
    struct fo_chan *ch = dir_find(hub, key, h);
    if (ch != NULL && ch->state != FO_GONE) {
        fo_chan_ref(ch);
        p->ch = ch;
        to = ch->owner;
    }
    pthread_mutex_unlock(&hub->lock);
    bool here = p->ch != NULL; /* p is the worker's once queued */
    struct fo_inbox *in = &hub->inbox[to];
    pthread_mutex_lock(&in->lock);
    if (in->last != NULL) {
        in->last->next = p;
    } else {
        in->first = p;
    }
    in->last = p;
    pthread_mutex_unlock(&in->lock);
    uint64_t one = 1;
    ssize_t w = write(hub->efd[to], &one, sizeof(one));
    SW_UNUSED(w); /* the counter is at its maximum: it is readable anyway */
    return here;
}

/* ---- the directory (hub mutex held) ------------------------------------ */

static struct fo_chan *
dir_find(struct sw_fanout_hub *hub, struct sw_str key, uint64_t h)
{
    for (struct fo_chan *ch = hub->buckets[h & (hub->nbuckets - 1)]; ch != NULL;
         ch = ch->dir_next) {
        if (ch->hash == h && ch->key_len == key.len &&
            memcmp(ch->key, key.p, key.len) == 0) {
            return ch;
        }
    }
    return NULL;
}

static void
dir_grow(struct sw_fanout_hub *hub)
{
    size_t n = hub->nbuckets * 2;
    struct fo_chan **b = calloc(n, sizeof(*b));
    if (b == NULL) {
        return; /* longer chains: still correct */
    }
    for (size_t i = 0; i < hub->nbuckets; i++) {
        while (hub->buckets[i] != NULL) {
            struct fo_chan *ch = hub->buckets[i];
            hub->buckets[i] = ch->dir_next;
            ch->dir_next = b[ch->hash & (n - 1)];
            b[ch->hash & (n - 1)] = ch;
        }
    }
    free(hub->buckets);
    hub->buckets = b;
    hub->nbuckets = n;
}

static void
dir_insert(struct sw_fanout_hub *hub, struct fo_chan *ch)
{
    if (hub->nchannels >= hub->nbuckets) {
        dir_grow(hub);
    }
    struct fo_chan **b = &hub->buckets[ch->hash & (hub->nbuckets - 1)];
    ch->dir_next = *b;
    *b = ch;
    ch->listed = true;
    hub->nchannels++;
}

static void
dir_remove(struct sw_fanout_hub *hub, struct fo_chan *ch)
{
    struct fo_chan **pp = &hub->buckets[ch->hash & (hub->nbuckets - 1)];
    while (*pp != NULL && *pp != ch) {
        pp = &(*pp)->dir_next;
    }
    if (*pp == ch) {
        *pp = ch->dir_next;
        hub->nchannels--;
    }
    ch->listed = false;
    ch->dir_next = NULL;
}

/* ---- channels ---------------------------------------------------------- */

void
fo_chan_unref(struct sw_fanout *f, struct fo_chan *ch)
{
    SW_UNUSED(f);
    if (atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) == 1) {
        SW_ASSERT(!ch->listed);
        chan_free(ch);
    }
}

void
fo_chan_set_state(struct sw_fanout *f, struct fo_chan *ch,
                  enum fo_chan_state st, const char *protocol)
{
    struct sw_fanout_hub *hub = f->hub;
    pthread_mutex_lock(&hub->lock);
    ch->state = st;
    if (protocol != NULL) {
        snprintf(ch->protocol, sizeof(ch->protocol), "%s", protocol);
    }
    bool unlisted = false;
    if (st == FO_GONE && ch->listed) {
        dir_remove(hub, ch);
        unlisted = true;
    }
    pthread_mutex_unlock(&hub->lock);
    if (unlisted) {
        fo_chan_unref(f, ch); /* the directory's reference */
    }
}

bool
fo_chan_retire_if_empty(struct sw_fanout *f, struct fo_chan *ch)
{
    struct sw_fanout_hub *hub = f->hub;
    pthread_mutex_lock(&hub->lock);
    bool empty = atomic_load_explicit(&ch->nclients, memory_order_relaxed) == 0;
    if (empty) {
        ch->state = FO_GONE;
        if (ch->listed) {
            dir_remove(hub, ch);
        } else {
            empty = false; /* already out: its end is under way */
        }
    }
    pthread_mutex_unlock(&hub->lock);
    if (empty) {
        fo_chan_unref(f, ch); /* the directory's reference */
    }
    return empty;
}

static struct fo_chan *
chan_new(struct sw_fanout *f, const struct sw_fanout_join *j, uint64_t h)
{
    unsigned nw = f->hub->nworkers;
    struct fo_chan *ch = calloc(1, sizeof(*ch) + nw * sizeof(ch->local[0]));
    if (ch == NULL) {
        return NULL;
    }
    ch->key = malloc(j->key.len + 1);
    ch->up.head = malloc(j->head.len);
    if (ch->key == NULL || ch->up.head == NULL ||
        j->ws_key.len >= sizeof(ch->up.ws_key)) {
        free(ch->up.head);
        chan_free(ch);
        return NULL;
    }
    memcpy(ch->key, j->key.p, j->key.len);
    ch->key[j->key.len] = '\0';
    ch->key_len = j->key.len;
    const char *sep = memchr(ch->key, '\x1f', ch->key_len);
    ch->name = sep != NULL ? sep + 1 : ch->key;
    ch->name_len = ch->key_len - (size_t)(ch->name - ch->key);
    ch->hash = h;
    ch->owner = f->id;
    atomic_init(&ch->refs, 2); /* the directory's and the owner's */
    atomic_init(&ch->nclients, 0);
    for (unsigned i = 0; i < nw; i++) {
        atomic_init(&ch->local[i].active, false);
    }
    const struct sw_conf_route *rt = j->route;
    ch->linger_ms = rt->fanout_linger_ms;
    ch->backlog = rt->fanout_backlog;
    ch->drop_client = rt->fanout_drop_client;
    ch->slow_close = rt->fanout_slow_close;
    ch->reconnect = rt->fanout_reconnect;
    ch->max_message = rt->ws_max_message;
    ch->max_frame = rt->ws_max_frame;
    ch->ping_interval_ms = rt->ws_ping_interval_ms;
    ch->idle_timeout_ms = rt->ws_idle_timeout_ms;
    ch->close_timeout_ms = rt->ws_close_timeout_ms;
    ch->connect_timeout_ms = rt->connect_timeout_ms != 0
                                 ? rt->connect_timeout_ms
                                 : rt->upstream->connect_timeout_ms;
    ch->read_timeout_ms = rt->read_timeout_ms != 0
                              ? rt->read_timeout_ms
                              : rt->upstream->read_timeout_ms;
    ch->state = FO_CONNECTING;
    struct fo_upstream *u = &ch->up;
    memcpy(u->head, j->head.p, j->head.len);
    u->head_len = j->head.len;
    memcpy(u->ws_key, j->ws_key.p, j->ws_key.len);
    u->ws_key_len = j->ws_key.len;
    u->ups = j->up;
    u->tls = j->tls;
    u->release = j->release;
    u->release_arg = j->release_arg;
    ch->f = f;
    ch->own_next = f->owned;
    if (f->owned != NULL) {
        f->owned->own_prev = ch;
    }
    f->owned = ch;
    f->nowned++;
    return ch;
}

/* ---- joining and leaving ----------------------------------------------- */

unsigned
sw_fanout_join(struct sw_fanout *f, const struct sw_fanout_join *j,
               struct sw_conn *c, const char **why)
{
    struct sw_fanout_hub *hub = f->hub;
    if (f->draining) {
        *why = "shutting down";
        return 503;
    }
    uint64_t h = sw_hash64(j->key.p, j->key.len, 0);
    bool made = false;
    pthread_mutex_lock(&hub->lock);
    struct fo_chan *ch = dir_find(hub, j->key, h);
    if (ch != NULL && ch->state != FO_CONNECTING && ch->protocol[0] != '\0' &&
        !fo_offered_has(j->offered, ch->protocol)) {
        pthread_mutex_unlock(&hub->lock);
        *why = "fan-out channel speaks a subprotocol the client did not offer";
        return 400;
    }
    if (ch == NULL) {
        ch = chan_new(f, j, h);
        if (ch == NULL) {
            pthread_mutex_unlock(&hub->lock);
            *why = "out of memory for a fan-out channel";
            return 503;
        }
        dir_insert(hub, ch);
        made = true;
    }
    struct fo_client *cl = fo_client_new(f, ch, c, j->client_addr);
    if (cl == NULL) {
        pthread_mutex_unlock(&hub->lock);
        if (made) {
            /* nobody saw it: undo, without the release the caller keeps */
            ch->up.release = NULL;
            fo_chan_set_state(f, ch, FO_GONE, NULL);
            fo_upstream_end(f, ch, 0);
        }
        *why = "out of memory for a fan-out client";
        return 503;
    }
    fo_chan_ref(ch);
    cl->ch = ch;
    atomic_fetch_add_explicit(&ch->nclients, 1, memory_order_relaxed);
    struct fo_local *loc = &ch->local[f->id];
    cl->next = loc->first;
    if (loc->first != NULL) {
        loc->first->prev = cl;
    }
    loc->first = cl;
    cl->linked = true;
    if (loc->n++ == 0) {
        atomic_store_explicit(&loc->active, true, memory_order_relaxed);
    }
    enum fo_chan_state st = ch->state;
    char proto[sizeof(ch->protocol)];
    memcpy(proto, ch->protocol, sizeof(proto));
    pthread_mutex_unlock(&hub->lock);

    if (!made) {
        j->release(j->release_arg);
    }
    if (st == FO_CONNECTING) {
        fo_client_wait(cl, j->client_key, j->offered);
    } else {
        fo_client_accept_now(cl, j->client_key, proto);
    }
    if (made) {
        fo_upstream_start(f, ch);
    }
    fo_sweep_arm(f);
    fo_end_turn(f);
    return 0;
}

void
fo_client_unlink(struct fo_client *c)
{
    if (!c->linked) {
        return;
    }
    struct sw_fanout *f = c->f;
    struct fo_chan *ch = c->ch;
    struct fo_local *loc = &ch->local[f->id];
    pthread_mutex_lock(&f->hub->lock);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        loc->first = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
    c->linked = false;
    if (--loc->n == 0) {
        atomic_store_explicit(&loc->active, false, memory_order_relaxed);
    }
    atomic_fetch_sub_explicit(&ch->nclients, 1, memory_order_relaxed);
    pthread_mutex_unlock(&f->hub->lock);
}

/* ---- one message to every client --------------------------------------- */

void
fo_deliver_local(struct sw_fanout *f, struct fo_chan *ch, struct fo_slice s)
{
    uint64_t n = 0;
    /* payload bytes, as the relay counts them, once per message: the
     * header toward a client is 2, 4 or 10 bytes (unmasked) */
    uint8_t len7 = s.b->data[s.off + 1] & 0x7f;
    uint32_t payload = s.len - (len7 == 127 ? 10u : len7 == 126 ? 4u : 2u);
    struct fo_client *c = ch->local[f->id].first;
    while (c != NULL) {
        struct fo_client *next = c->next; /* c may leave (slow close) */
        if (c->state == FO_C_OPEN) {
            fo_client_queue(c, s, payload);
            n++;
        }
        c = next;
    }
    sw_metrics_add(f->metrics, SW_METRIC_FANOUT_DELIVERIES, n);
}

void
fo_fanout_message(struct sw_fanout *f, struct fo_chan *ch, struct fo_slice s)
{
    sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_MESSAGES);
    for (unsigned w = 0; w < f->hub->nworkers; w++) {
        if (w == f->id ||
            !atomic_load_explicit(&ch->local[w].active, memory_order_relaxed)) {
            continue;
        }
        struct fo_entry e = {.type = FO_E_MSG, .ch = ch, .s = s};
        fo_block_ref(s.b, 1);
        fo_chan_ref(ch);
        fo_post(f, w, &e);
        sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_RING_MESSAGES);
    }
    fo_deliver_local(f, ch, s);
}

/* OPEN (code 0) or gone (code) to this worker's clients of ch. */
static void
announce_local(struct sw_fanout *f, struct fo_chan *ch, uint16_t code)
{
    char proto[sizeof(ch->protocol)];
    pthread_mutex_lock(&f->hub->lock);
    memcpy(proto, ch->protocol, sizeof(proto));
    pthread_mutex_unlock(&f->hub->lock);
    struct fo_client *c = ch->local[f->id].first;
    while (c != NULL) {
        struct fo_client *next = c->next;
        if (code == 0 && c->state == FO_C_PENDING) {
            fo_client_open(c, proto);
        } else if (code != 0) {
            fo_client_fail(c, code);
        }
        c = next;
    }
}

void
fo_chan_announce(struct sw_fanout *f, struct fo_chan *ch, uint16_t code)
{
    for (unsigned w = 0; w < f->hub->nworkers; w++) {
        if (w == f->id ||
            !atomic_load_explicit(&ch->local[w].active, memory_order_relaxed)) {
            continue;
        }
        struct fo_entry e = {
            .type = code == 0 ? FO_E_OPEN : FO_E_FAIL, .code = code, .ch = ch};
        fo_chan_ref(ch);
        fo_post(f, w, &e);
    }
    fo_hold_announce(f, ch, code);
    announce_local(f, ch, code);
}

/* An entry from another worker. */
static void
on_entry(struct sw_fanout *f, struct fo_entry *e)
{
    switch ((enum fo_entry_type)e->type) {
    case FO_E_MSG:
        fo_deliver_local(f, e->ch, e->s);
        fo_block_unref(f, e->s.b);
        break;
    case FO_E_OPEN:
        announce_local(f, e->ch, 0);
        break;
    case FO_E_FAIL:
        announce_local(f, e->ch, e->code);
        break;
    case FO_E_UP:
        fo_upstream_send(f, e->ch, e->s, e->opcode);
        fo_block_unref(f, e->s.b);
        break;
    }
    fo_chan_unref(f, e->ch);
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct sw_fanout *f = arg;
    SW_UNUSED(what);
    uint64_t count;
    ssize_t n = read(fd, &count, sizeof(count));
    SW_UNUSED(n);
    fo_hold_drain_inbox(f);
    fo_drain_rings(f, on_entry);
    fo_end_turn(f);
}

/* ---- the end of a turn, the sweep -------------------------------------- */

void
fo_mark_dirty(struct fo_client *c)
{
    if (!c->dirty) {
        c->dirty = true;
        c->dirty_next = c->f->dirty;
        c->f->dirty = c;
    }
}

void
fo_end_turn(struct sw_fanout *f)
{
    while (f->dirty != NULL) {
        struct fo_client *c = f->dirty;
        f->dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        fo_client_flush(c); /* may end and free c */
    }
    fo_post_flush(f);
}

static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct sw_fanout *f = arg;
    SW_UNUSED(fd);
    SW_UNUSED(what);
    uint64_t now = sw_now_ms();
    fo_post_retry(f);
    struct fo_chan *ch = f->owned;
    while (ch != NULL) {
        struct fo_chan *next = ch->own_next;
        fo_upstream_tick(f, ch, now); /* may end ch */
        ch = next;
    }
    if (now - f->client_sweep_ms >= FO_CLIENT_SWEEP_MS || f->draining) {
        f->client_sweep_ms = now;
        struct fo_client *c = f->clients;
        while (c != NULL) {
            struct fo_client *next = c->all_next;
            fo_client_tick(c, now); /* may end c */
            c = next;
        }
    }
    fo_end_turn(f);
    f->sweep_on = false;
    bool later = false;
    for (unsigned to = 0; to < f->hub->nworkers; to++) {
        later = later || f->later[to].n > 0;
    }
    if (f->owned != NULL || f->clients != NULL || later) {
        fo_sweep_arm(f);
    }
}

void
fo_sweep_arm(struct sw_fanout *f)
{
    if (f->sweep_on) {
        return;
    }
    struct timeval tv = {0, FO_SWEEP_MS * 1000};
    event_add(&f->sweep, &tv);
    f->sweep_on = true;
}

/* ---- a worker's side --------------------------------------------------- */

struct sw_fanout *
sw_fanout_new(struct sw_fanout_hub *hub, const struct sw_fanout_env *env)
{
    struct sw_fanout *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    f->hub = hub;
    f->id = env->id;
    f->base = env->base;
    f->bufs = env->bufs;
    f->rng = env->rng;
    f->metrics = env->metrics;
    f->on_empty = env->on_empty;
    f->empty_arg = env->arg;
    f->pool = &hub->pools[env->id];
    f->later = calloc(hub->nworkers, sizeof(*f->later));
    f->wake = calloc(hub->nworkers, sizeof(*f->wake));
    if (f->later == NULL || f->wake == NULL) {
        free(f->later);
        free(f->wake);
        free(f);
        return NULL;
    }
    if (hub->bus != NULL && (f->bus = fo_bus_new(f)) == NULL) {
        free(f->later);
        free(f->wake);
        free(f);
        return NULL;
    }
    sw_slab_init(&f->client_slab, sizeof(struct fo_client));
    event_assign(&f->wake_ev, f->base, hub->efd[f->id], EV_READ | EV_PERSIST,
                 on_wake, f);
    event_add(&f->wake_ev, NULL);
    event_assign(&f->sweep, f->base, -1, 0, on_sweep, f);
    f->client_sweep_ms = sw_now_ms();
    return f;
}

void
fo_check_empty(struct sw_fanout *f)
{
    if (f->draining && f->nclients == 0 && f->nowned == 0 &&
        f->on_empty != NULL) {
        f->on_empty(f->empty_arg);
    }
}

size_t
sw_fanout_live(const struct sw_fanout *f)
{
    return f == NULL ? 0 : f->nclients + f->nowned;
}

void
sw_fanout_drain(struct sw_fanout *f)
{
    if (f == NULL) {
        return;
    }
    f->draining = true;
    struct fo_client *c = f->clients;
    while (c != NULL) {
        struct fo_client *next = c->all_next;
        fo_client_close(c, SW_WS_CLOSE_GOING_AWAY, "gateway");
        c = next;
    }
    struct fo_chan *ch = f->owned;
    while (ch != NULL) {
        struct fo_chan *next = ch->own_next;
        fo_chan_set_state(f, ch, FO_GONE, NULL);
        fo_upstream_end(f, ch, SW_WS_CLOSE_GOING_AWAY);
        ch = next;
    }
    fo_end_turn(f);
    fo_sweep_arm(f);
}

void
sw_fanout_abort(struct sw_fanout *f)
{
    if (f == NULL) {
        return;
    }
    f->draining = true;
    while (f->clients != NULL) {
        fo_client_end(f->clients);
    }
    while (f->owned != NULL) {
        struct fo_chan *ch = f->owned;
        fo_chan_set_state(f, ch, FO_GONE, NULL);
        fo_upstream_end(f, ch, 0);
    }
}

/* Entries still in flight toward this worker when it stops. */
static void
on_entry_dropped(struct sw_fanout *f, struct fo_entry *e)
{
    if (e->s.b != NULL) {
        fo_block_unref(f, e->s.b);
    }
    fo_chan_unref(f, e->ch);
}

void
sw_fanout_free(struct sw_fanout *f)
{
    if (f == NULL) {
        return;
    }
    f->on_empty = NULL; /* the worker is going: nobody to tell */
    sw_fanout_abort(f);
    fo_hold_drain_inbox(f); /* draining: dropped */
    fo_bus_free(f->bus);
    fo_drain_rings(f, on_entry_dropped);
    for (unsigned to = 0; to < f->hub->nworkers; to++) {
        struct fo_backlog *bl = &f->later[to];
        for (size_t i = 0; i < bl->n; i++) {
            on_entry_dropped(f, &bl->v[(bl->head + i) % bl->cap]);
        }
        free(bl->v);
    }
    event_del(&f->wake_ev);
    event_del(&f->sweep);
    sw_slab_fini(&f->client_slab);
    free(f->later);
    free(f->wake);
    free(f);
}
