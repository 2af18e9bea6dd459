/*
 * buf.c - the per-worker buffer pool (see buf.h).
 *
 * Owns the idle buffers on its free list; buffers out are owned by their
 * holder until put. One worker thread per pool.
 */
#include <shockwave/buf.h>

#define SW_BUF_MAGIC 0x5eb0f00du
#define SW_BUF_TAIL_MAGIC 0xdeadbeefu

#ifdef NDEBUG
#define TAIL_BYTES 0
#else
#define TAIL_BYTES sizeof(uint32_t)
#endif

/* The pool's counts are read by the admin thread (metrics): stored with
 * relaxed atomics, a plain move on x86. */
static void
count(size_t *field, size_t v)
{
    __atomic_store_n(field, v, __ATOMIC_RELAXED);
}

void
sw_buf_pool_init(struct sw_buf_pool *pool, size_t size, size_t max_free)
{
    memset(pool, 0, sizeof(*pool));
    pool->size = size;
    pool->max_free = max_free;
}

enum sw_status
sw_buf_pool_prefill(struct sw_buf_pool *pool, size_t n)
{
    /* take n at once (new ones once the free list is empty), then give
     * them all back */
    struct sw_buf *chain = NULL;
    enum sw_status st = SW_OK;
    for (size_t i = 0; i < SW_MIN(n, pool->max_free); i++) {
        struct sw_buf *b = sw_buf_get(pool);
        if (b == NULL) {
            st = SW_ENOMEM;
            break;
        }
        b->next = chain;
        chain = b;
    }
    while (chain != NULL) {
        struct sw_buf *next = chain->next;
        sw_buf_put(pool, chain);
        chain = next;
    }
    return st;
}

size_t
sw_buf_pool_decay(struct sw_buf_pool *pool, size_t floor)
{
    size_t spare = pool->low_free > floor ? pool->low_free - floor : 0;
    for (size_t i = 0; i < spare && pool->free != NULL; i++) {
        struct sw_buf *b = pool->free;
        pool->free = b->next;
        count(&pool->nfree, pool->nfree - 1);
        free(b);
    }
    pool->low_free = pool->nfree;
    return spare;
}

void
sw_buf_pool_fini(struct sw_buf_pool *pool)
{
    if (pool == NULL) {
        return;
    }
    while (pool->free != NULL) {
        struct sw_buf *b = pool->free;
        pool->free = b->next;
        free(b);
    }
    pool->nfree = 0;
}

static void
set_tail(struct sw_buf *b)
{
#ifndef NDEBUG
    uint32_t m = SW_BUF_TAIL_MAGIC;
    memcpy(b->end, &m, sizeof(m));
#else
    SW_UNUSED(b);
#endif
}

struct sw_buf *
sw_buf_get(struct sw_buf_pool *pool)
{
    struct sw_buf *b = pool->free;
    if (b != NULL) {
        pool->free = b->next;
        count(&pool->nfree, pool->nfree - 1);
        pool->low_free = SW_MIN(pool->low_free, pool->nfree);
    } else {
        b = malloc(sizeof(*b) + pool->size + TAIL_BYTES);
        if (b == NULL) {
            return NULL;
        }
        __atomic_store_n(&pool->nalloc, pool->nalloc + 1, __ATOMIC_RELAXED);
        b->start = (uint8_t *)(b + 1);
        b->end = b->start + pool->size;
        set_tail(b);
    }
    b->pos = b->last = b->start;
    b->next = NULL;
    b->magic = SW_BUF_MAGIC;
    count(&pool->nused, pool->nused + 1);
    return b;
}

struct sw_buf_pool *
sw_buf_pool_class(struct sw_buf_pool *pool, unsigned k)
{
    while (k > 0 && pool->larger != NULL) {
        pool = pool->larger;
        k--;
    }
    return pool;
}

void
sw_buf_put(struct sw_buf_pool *pool, struct sw_buf *b)
{
    if (b == NULL) {
        return;
    }
    while (sw_buf_cap(b) != pool->size && pool->larger != NULL) {
        pool = pool->larger;
    }
    SW_ASSERT(sw_buf_cap(b) == pool->size);
    sw__buf_validate(b);
    b->magic = 0;
    count(&pool->nused, pool->nused - 1);
    if (pool->nfree >= pool->max_free) {
        free(b);
        return;
    }
    b->next = pool->free;
    pool->free = b;
    count(&pool->nfree, pool->nfree + 1);
}

void
sw_buf_compact(struct sw_buf *b)
{
    size_t n = sw_buf_len(b);
    if (b->pos != b->start) {
        memmove(b->start, b->pos, n);
        b->pos = b->start;
        b->last = b->start + n;
    }
}

bool
sw_buf_append(struct sw_buf *b, const void *data, size_t n)
{
    if (sw_buf_room(b) < n) {
        return false;
    }
    memcpy(b->last, data, n);
    b->last += n;
    return true;
}

void
sw__buf_validate(const struct sw_buf *b)
{
    SW_ASSERT(b->magic == SW_BUF_MAGIC);
    SW_ASSERT(b->start <= b->pos && b->pos <= b->last && b->last <= b->end);
#ifndef NDEBUG
    uint32_t m;
    memcpy(&m, b->end, sizeof(m));
    SW_ASSERT(m == SW_BUF_TAIL_MAGIC);
#endif
}
