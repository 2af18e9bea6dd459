/*
 * upstream.c - balancing, passive health, keep-alive pool and connects for
 * one upstream in one worker (see upstream.h).
 *
 * Owns the peers array and the idle connections; borrows the snapshot's
 * upstream config, the worker's event_base and metrics. One thread, except
 * for struct sw_upstream_state (atomics, any thread).
 */
#include <shockwave/log.h>
#include <shockwave/upstream.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

struct sw_upstream_state *
sw_upstream_state_new(void)
{
    struct sw_upstream_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    atomic_init(&st->refs, 1);
    atomic_init(&st->up, true);
    atomic_init(&st->passive_downs, 0);
    atomic_init(&st->passive_fails, 0);
    return st;
}

struct sw_upstream_state *
sw_upstream_state_ref(struct sw_upstream_state *st)
{
    atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
    return st;
}

void
sw_upstream_state_unref(struct sw_upstream_state *st)
{
    /* acq_rel: the last reader's loads happen before the free */
    if (st != NULL &&
        atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) == 1) {
        free(st);
    }
}

enum sw_status
sw_upstream_init(struct sw_upstream *u, const struct sw_conf_upstream *ucf,
                 struct event_base *base, struct sw_metrics *metrics)
{
    memset(u, 0, sizeof(*u));
    u->cf = ucf;
    u->base = base;
    u->metrics = metrics;
    u->peers = calloc(ucf->nservers, sizeof(*u->peers));
    if (u->peers == NULL) {
        return SW_ENOMEM;
    }
    u->npeers = ucf->nservers;
    for (size_t i = 0; i < u->npeers; i++) {
        u->peers[i].server = &ucf->servers[i];
        u->peers[i].up = u;
        u->peers[i].index = i;
        u->peers[i].m =
            sw_metrics_server_slot(metrics, ucf->name, ucf->servers[i].text);
        if (u->peers[i].m == NULL) {
            return SW_ENOMEM;
        }
    }
    return SW_OK;
}

static void
idle_unlink(struct sw_upstream *u, struct sw_upstream_idle *ic)
{
    if (ic->prev != NULL) {
        ic->prev->next = ic->next;
    } else {
        u->idle = ic->next;
    }
    if (ic->next != NULL) {
        ic->next->prev = ic->prev;
    }
    u->nidle--;
    sw_metrics_store_add(&ic->peer->m->idle, -1);
}

static void
idle_free(struct sw_upstream *u, struct sw_upstream_idle *ic)
{
    idle_unlink(u, ic);
    event_del(&ic->ev);
    ic->io.ops->close(&ic->io);
    close(ic->io.fd);
    free(ic);
}

void
sw_upstream_fini(struct sw_upstream *u)
{
    if (u == NULL) {
        return;
    }
    while (u->idle != NULL) {
        idle_free(u, u->idle);
    }
    free(u->peers);
    u->peers = NULL;
}

/* What a pick pass accepts. */
struct pick_pass {
    uint64_t tried;      /* bits of peers already tried */
    uint64_t now;        /* sw_now_ms() of this pick */
    bool backup;         /* this pass picks among backup servers */
    bool ignore_passive; /* passive marks do not exclude */
};

static bool
peer_usable(const struct sw_upstream_peer *p, const struct pick_pass *pp)
{
    if (p->index < SW_UPSTREAM_MAX_TRIED && (pp->tried & (1ull << p->index))) {
        return false;
    }
    if (p->server->backup != pp->backup ||
        !sw_upstream_server_is_up(p->server)) {
        return false;
    }
    return pp->ignore_passive || p->down_until_ms <= pp->now;
}

/* Smooth weighted round robin (nginx's): every usable peer gains its weight,
 * the richest is chosen and pays the total. Spreads weights evenly. */
static struct sw_upstream_peer *
pick_round_robin(struct sw_upstream *u, const struct pick_pass *pp)
{
    struct sw_upstream_peer *best = NULL;
    int64_t total = 0;
    for (size_t i = 0; i < u->npeers; i++) {
        struct sw_upstream_peer *p = &u->peers[i];
        if (!peer_usable(p, pp)) {
            continue;
        }
        p->current_weight += p->server->weight;
        total += p->server->weight;
        if (best == NULL || p->current_weight > best->current_weight) {
            best = p;
        }
    }
    if (best != NULL) {
        best->current_weight -= total;
    }
    return best;
}

/* Fewest requests in flight relative to weight; ties go round robin-ish by
 * starting after the last choice's index. */
static struct sw_upstream_peer *
pick_least_conn(struct sw_upstream *u, const struct pick_pass *pp)
{
    struct sw_upstream_peer *best = NULL;
    for (size_t i = 0; i < u->npeers; i++) {
        struct sw_upstream_peer *p = &u->peers[i];
        if (!peer_usable(p, pp)) {
            continue;
        }
        /* compare active/weight without division */
        if (best == NULL || (uint64_t)p->active * best->server->weight <
                                (uint64_t)best->active * p->server->weight) {
            best = p;
        }
    }
    return best;
}

/* Rendezvous hashing: each key goes to the peer with the highest score, so
 * losing a peer only moves that peer's keys. Weight scales the score. */
static struct sw_upstream_peer *
pick_hash(struct sw_upstream *u, struct sw_str key, const struct pick_pass *pp)
{
    struct sw_upstream_peer *best = NULL;
    double best_score = -1.0;
    for (size_t i = 0; i < u->npeers; i++) {
        struct sw_upstream_peer *p = &u->peers[i];
        if (!peer_usable(p, pp)) {
            continue;
        }
        uint64_t h = sw_hash64(key.p, key.len, 0x9e3779b97f4a7c15ull * (i + 1));
        double score = (double)(h >> 11) * (double)p->server->weight;
        if (score > best_score) {
            best_score = score;
            best = p;
        }
    }
    return best;
}

static struct sw_upstream_peer *
pick_once(struct sw_upstream *u, struct sw_str key, const struct pick_pass *pp)
{
    switch (u->cf->balance) {
    case SW_CONF_BALANCE_LEAST_CONN:
        return pick_least_conn(u, pp);
    case SW_CONF_BALANCE_HASH:
        return pick_hash(u, key, pp);
    case SW_CONF_BALANCE_ROUND_ROBIN:
    default:
        return pick_round_robin(u, pp);
    }
}

struct sw_upstream_peer *
sw_upstream_pick(struct sw_upstream *u, struct sw_str key, uint64_t tried)
{
    /* Primaries, then backups; each first without the passively marked
     * ones, and only then, as a last resort, with them (trying one beats
     * failing). Servers the active checks hold down are never taken. */
    static const struct {
        bool backup;
        bool ignore_passive;
    } passes[] = {{false, false}, {true, false}, {false, true}, {true, true}};
    struct pick_pass pp = {.tried = tried, .now = sw_now_ms()};
    for (size_t i = 0; i < SW_NELEMS(passes); i++) {
        if (passes[i].backup && u->cf->nbackups == 0) {
            continue;
        }
        pp.backup = passes[i].backup;
        pp.ignore_passive = passes[i].ignore_passive;
        struct sw_upstream_peer *p = pick_once(u, key, &pp);
        if (p != NULL) {
            return p;
        }
    }
    return NULL;
}

static void
on_idle_event(evutil_socket_t fd, short what, void *arg)
{
    struct sw_upstream_idle *ic = arg;
    struct sw_upstream *u = ic->peer->up;
    SW_UNUSED(fd);
    if (what & EV_READ) {
        sw_log_debug("upstream %.*s: idle connection closed by peer",
                     (int)ic->peer->server->text.len, ic->peer->server->text.p);
    }
    idle_free(u, ic);
}

bool
sw_upstream_keepalive_get(struct sw_upstream_peer *peer, struct sw_io *io)
{
    struct sw_upstream *u = peer->up;
    for (struct sw_upstream_idle *ic = u->idle; ic != NULL; ic = ic->next) {
        if (ic->peer == peer) {
            *io = ic->io;
            idle_unlink(u, ic);
            event_del(&ic->ev);
            free(ic);
            sw_metrics_store_add(&peer->m->reused, 1);
            return true;
        }
    }
    return false;
}

static void
io_close(const struct sw_io *io)
{
    struct sw_io copy = *io;
    copy.ops->close(&copy);
    close(copy.fd);
}

void
sw_upstream_keepalive_put(struct sw_upstream_peer *peer, const struct sw_io *io)
{
    struct sw_upstream *u = peer->up;
    if (u->cf->keepalive == 0) {
        io_close(io);
        return;
    }
    if (u->nidle >= u->cf->keepalive) {
        /* the oldest idle connection makes room (list head is newest) */
        struct sw_upstream_idle *last = u->idle;
        while (last->next != NULL) {
            last = last->next;
        }
        idle_free(u, last);
    }
    struct sw_upstream_idle *ic = calloc(1, sizeof(*ic));
    if (ic == NULL) {
        io_close(io);
        return;
    }
    ic->io = *io;
    ic->peer = peer;
    event_assign(&ic->ev, u->base, io->fd, EV_READ, on_idle_event, ic);
    struct timeval tv = {(time_t)(u->cf->keepalive_timeout_ms / 1000),
                         (suseconds_t)(u->cf->keepalive_timeout_ms % 1000) *
                             1000};
    event_add(&ic->ev, &tv);
    ic->next = u->idle;
    if (u->idle != NULL) {
        u->idle->prev = ic;
    }
    u->idle = ic;
    u->nidle++;
    sw_metrics_store_add(&peer->m->idle, 1);
}

int
sw_upstream_socket(struct sw_upstream_peer *peer)
{
    const struct sw_conf_server *s = peer->server;
    int fd = socket(s->addr.ss_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) {
        int err = errno;
        sw_log_error("upstream %.*s: socket: %s", (int)s->text.len, s->text.p,
                     strerror(err));
        errno = err;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sw_metrics_store_add(&peer->m->connects, 1);
    return fd;
}

int
sw_upstream_connect(struct sw_upstream_peer *peer)
{
    const struct sw_conf_server *s = peer->server;
    int fd = sw_upstream_socket(peer);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)&s->addr, s->addrlen) != 0 &&
        errno != EINPROGRESS) {
        int err = errno;
        sw_log_warn("upstream %.*s: connect: %s", (int)s->text.len, s->text.p,
                    strerror(err));
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

void
sw_upstream_report(struct sw_upstream_peer *peer, bool ok)
{
    const struct sw_conf_server *s = peer->server;
    if (ok) {
        peer->fails = 0;
        return;
    }
    sw_metrics_store_add(&peer->m->failures, 1);
    if (s->max_fails == 0) {
        return;
    }
    if (s->state != NULL) {
        /* toward the active checks' fall (failure path only) */
        atomic_fetch_add_explicit(&s->state->passive_fails, 1,
                                  memory_order_relaxed);
    }
    if (++peer->fails >= s->max_fails) {
        peer->down_until_ms = sw_now_ms() + s->fail_timeout_ms;
        peer->fails = 0;
        /* the passive state, for shockwave_upstream_server_up */
        __atomic_store_n(&peer->m->down_until_ms, peer->down_until_ms,
                         __ATOMIC_RELAXED);
        if (s->state != NULL) {
            atomic_fetch_add_explicit(&s->state->passive_downs, 1,
                                      memory_order_relaxed);
        }
        sw_log_warn("upstream %.*s: marked down for %llu ms", (int)s->text.len,
                    s->text.p, (unsigned long long)s->fail_timeout_ms);
    }
}
