/*
 * keytab.c - the per-worker key tables: one chained hash table per route
 * name, with an LRU list through its entries.
 *
 *   slot[hash & (nslots-1)] -> entry -> entry -> NULL      (chains)
 *   mru <-> entry <-> ... <-> entry <-> lru                (use order)
 *
 * A lookup moves its entry to the front of the LRU list; an insert into a
 * table holding max_keys entries first frees the least recently used ones
 * (so an evicted key starts again with full buckets). The slot array
 * doubles while the table holds more entries than slots, up to what
 * max_keys needs; it never shrinks.
 *
 * Tables are keyed by the route's name, not by its snapshot, so they live
 * across reloads: a route that keeps its name keeps its buckets.
 *
 * Owns: the worker, its tables, their entries (all malloc'd). Threading:
 * one worker's tables are used by that worker alone: no lock.
 */
#include "ratelimit.h"

#include <time.h>

#define SLOTS_MIN 64

uint64_t
rl_hash(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    /* final mix (splitmix64) so that the low bits, which pick the slot,
     * depend on every byte */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

struct rl_worker *
rl_worker_new(unsigned worker_id)
{
    struct rl_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    /* a seed that differs per worker and per start, so chains cannot be
     * predicted from outside: the address of the state and the time */
    uintptr_t a = (uintptr_t)w;
    w->seed = rl_hash(&a, sizeof(a), (uint64_t)time(NULL)) ^ worker_id;
    return w;
}

static void
table_free(struct rl_table *t)
{
    if (t == NULL) {
        return;
    }
    struct rl_entry *e = t->mru;
    while (e != NULL) {
        struct rl_entry *next = e->lru_next;
        free(e);
        e = next;
    }
    free(t->slot);
    free(t->route);
    free(t);
}

void
rl_worker_free(struct rl_worker *w)
{
    if (w == NULL) {
        return;
    }
    for (size_t i = 0; i < w->ntab; i++) {
        table_free(w->tab[i]);
    }
    free(w->tab);
    free(w);
}

struct rl_table *
rl_worker_table(struct rl_worker *w, const char *name, uint64_t h)
{
    for (size_t i = 0; i < w->ntab; i++) {
        if (w->tab[i]->route_hash == h && strcmp(w->tab[i]->route, name) == 0) {
            return w->tab[i];
        }
    }
    struct rl_table **tab = realloc(w->tab, (w->ntab + 1) * sizeof(*tab));
    if (tab == NULL) {
        return NULL;
    }
    w->tab = tab;
    struct rl_table *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    t->route = strdup(name);
    t->slot = calloc(SLOTS_MIN, sizeof(*t->slot));
    if (t->route == NULL || t->slot == NULL) {
        table_free(t);
        return NULL;
    }
    t->nslots = SLOTS_MIN;
    t->route_hash = h;
    t->seed = w->seed;
    w->tab[w->ntab++] = t;
    return t;
}

static void
lru_unlink(struct rl_table *t, struct rl_entry *e)
{
    if (e->lru_prev != NULL) {
        e->lru_prev->lru_next = e->lru_next;
    } else {
        t->mru = e->lru_next;
    }
    if (e->lru_next != NULL) {
        e->lru_next->lru_prev = e->lru_prev;
    } else {
        t->lru = e->lru_prev;
    }
    e->lru_prev = e->lru_next = NULL;
}

static void
lru_push(struct rl_table *t, struct rl_entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = t->mru;
    if (t->mru != NULL) {
        t->mru->lru_prev = e;
    } else {
        t->lru = e;
    }
    t->mru = e;
}

static void
evict_lru(struct rl_table *t)
{
    struct rl_entry *e = t->lru;
    struct rl_entry **pp = &t->slot[e->hash & (t->nslots - 1)];
    while (*pp != e) {
        pp = &(*pp)->next;
    }
    *pp = e->next;
    lru_unlink(t, e);
    t->count--;
    free(e);
}

/* Double the slots (when memory allows: the table works at any load). */
static void
grow(struct rl_table *t)
{
    size_t n = t->nslots * 2;
    struct rl_entry **slot = calloc(n, sizeof(*slot));
    if (slot == NULL) {
        return;
    }
    for (size_t i = 0; i < t->nslots; i++) {
        struct rl_entry *e = t->slot[i];
        while (e != NULL) {
            struct rl_entry *next = e->next;
            struct rl_entry **head = &slot[e->hash & (n - 1)];
            e->next = *head;
            *head = e;
            e = next;
        }
    }
    free(t->slot);
    t->slot = slot;
    t->nslots = n;
}

struct rl_entry *
rl_table_get(struct rl_table *t, const char *key, size_t len, size_t max_keys,
             size_t *evicted)
{
    uint64_t h = rl_hash(key, len, t->seed);
    for (struct rl_entry *e = t->slot[h & (t->nslots - 1)]; e != NULL;
         e = e->next) {
        if (e->hash == h && e->key_len == len &&
            memcmp(e->key, key, len) == 0) {
            if (t->mru != e) {
                lru_unlink(t, e);
                lru_push(t, e);
            }
            return e;
        }
    }
    while (t->count > 0 && t->count >= max_keys) {
        evict_lru(t);
        (*evicted)++;
    }
    if (t->count >= t->nslots && t->nslots < max_keys) {
        grow(t);
    }
    struct rl_entry *e = calloc(1, sizeof(*e) + len);
    if (e == NULL) {
        return NULL;
    }
    e->hash = h;
    e->key_len = (uint32_t)len;
    memcpy(e->key, key, len);
    struct rl_entry **head = &t->slot[h & (t->nslots - 1)];
    e->next = *head;
    *head = e;
    lru_push(t, e);
    t->count++;
    return e;
}
