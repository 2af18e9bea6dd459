/*
 * buf.h - fixed-size buffers from a per-worker pool.
 *
 *   start            pos               last              end
 *     |  consumed     |   readable       |   writable      |
 *     +---------------+------------------+-----------------+
 *
 * A buffer is one malloc'd chunk: this header followed by `size` data bytes.
 * The pool keeps put buffers on a free list up to `max_free`, so steady-state
 * traffic allocates nothing.
 *
 * Size classes: a pool may chain to a pool of larger buffers (`larger`),
 * and that one to a larger one still; class 0 is the pool itself. A buffer
 * goes back to the pool of its own size whichever pool of the chain it is
 * put to. Connections whose traffic fills whole reads take their buffers
 * from a higher class (lib/conn). In debug builds (no NDEBUG) every buffer
 * carries a magic value before and after its data, checked on put, to catch
 * overruns (after twemproxy's nc_mbuf).
 *
 * Threading: a pool belongs to one worker thread; no locks. Its counts
 * (nfree, nused, nalloc) are stored with relaxed atomics so that the
 * admin thread may read them for the metrics.
 */
#ifndef SHOCKWAVE_BUF_H
#define SHOCKWAVE_BUF_H

#include <shockwave/core.h>

struct sw_buf {
    uint8_t *pos;        /* borrowed (into this chunk): first unread byte */
    uint8_t *last;       /* borrowed (into this chunk): one past last byte */
    uint8_t *start;      /* borrowed (into this chunk): first data byte */
    uint8_t *end;        /* borrowed (into this chunk): one past capacity */
    struct sw_buf *next; /* borrowed: free-list or caller's chain link */
    uint32_t magic;      /* SW_BUF_MAGIC while owned by someone */
};

struct sw_buf_pool {
    size_t size;     /* data bytes per buffer */
    size_t max_free; /* free buffers kept for reuse */
    size_t nfree;    /* buffers on the free list now */
    size_t nused;    /* buffers handed out and not yet put back */
    size_t low_free; /* fewest on the free list since the last decay */
    struct sw_buf_pool *larger; /* borrowed: the next size class, or NULL */
    uint64_t nalloc;     /* mallocs done over the pool's life (metrics) */
    struct sw_buf *free; /* owned: singly linked free list */
};

/* Prepare a pool of buffers of `size` data bytes, keeping up to `max_free`
 * idle ones. No allocation happens until the first get. */
void sw_buf_pool_init(struct sw_buf_pool *pool, size_t size, size_t max_free);

/* Allocate n idle buffers up front (at most max_free), so the first
 * connections and short peaks take no malloc. Returns SW_OK or SW_ENOMEM. */
enum sw_status sw_buf_pool_prefill(struct sw_buf_pool *pool, size_t n);

/* Free the idle buffers that no get needed since the last call (the free
 * list's low-water mark), keeping at least `floor` idle: a pool that a
 * burst filled gives its memory back once the burst is over. Returns the
 * buffers freed. */
size_t sw_buf_pool_decay(struct sw_buf_pool *pool, size_t floor);

/* Free every idle buffer. Buffers still out must have been put first. */
void sw_buf_pool_fini(struct sw_buf_pool *pool);

/* Take an empty buffer (pos == last == start). Returns NULL on ENOMEM. */
struct sw_buf *sw_buf_get(struct sw_buf_pool *pool);

/* Give a buffer back (NULL is accepted), to the pool of the chain whose
 * size it has. Ownership returns to that pool. */
void sw_buf_put(struct sw_buf_pool *pool, struct sw_buf *b);

/* The pool of size class k in pool's chain (the largest there is when the
 * chain is shorter), and its buffers' size. */
struct sw_buf_pool *sw_buf_pool_class(struct sw_buf_pool *pool, unsigned k);

static inline size_t
sw_buf_cap(const struct sw_buf *b)
{
    return (size_t)(b->end - b->start);
}

static inline size_t
sw_buf_len(const struct sw_buf *b)
{
    return (size_t)(b->last - b->pos);
}

static inline size_t
sw_buf_room(const struct sw_buf *b)
{
    return (size_t)(b->end - b->last);
}

/* Move unread bytes to the front so the whole tail is writable. */
void sw_buf_compact(struct sw_buf *b);

/* Append n bytes; returns false (and writes nothing) if they do not fit. */
bool sw_buf_append(struct sw_buf *b, const void *data, size_t n);

/* Check the buffer's invariants (tests call it after each change). */
void sw__buf_validate(const struct sw_buf *b);

#endif
