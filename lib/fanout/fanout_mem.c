/*
 * fanout_mem.c - the memory a message lives in and the paths it takes:
 *
 *   fo_block_get / fo_block_unref   shared blocks, pooled per worker; the
 *                                   last holder, on whichever worker, gives
 *                                   a block back to its owner's pool
 *   fo_outq_*                       the frames queued toward one socket,
 *                                   sent with sendmsg straight from blocks
 *   fo_post / fo_drain_rings        single-producer rings between workers
 *
 * Threading: a pool's free lists and a queue belong to one worker; the
 * return stack and the rings are the only things two threads touch, both
 * without a lock.
 */
#include "fanout_int.h"

#include <shockwave/log.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Idle blocks kept per class: a few MiB of the small ones, fewer of the
 * large. */
static const size_t keep_idle[FO_CLASSES] = {256, 128, 64, 64, 16, 4, 2, 1};

static size_t
class_size(unsigned k)
{
    return ((size_t)FO_CLASS_MIN << (2 * k)) + FO_CLASS_SLACK;
}

/* ---- blocks ------------------------------------------------------------ */

/* Blocks other workers freed come back in one exchange: pushes never see
 * a pop in between, so the stack has no ABA problem. */
static void
take_returned(struct sw_fanout *f)
{
    struct fo_block *b = atomic_exchange_explicit(&f->pool->returned, NULL,
                                                  memory_order_acquire);
    while (b != NULL) {
        struct fo_block *next = b->next;
        fo_block_unref(f, b); /* refs is 1 again: back to the free list */
        b = next;
    }
}

struct fo_block *
fo_block_get(struct sw_fanout *f, size_t need)
{
    unsigned k = 0;
    while (k < FO_CLASSES && class_size(k) < need) {
        k++;
    }
    struct fo_pool *p = f->pool;
    if (k < FO_CLASSES && p->free[k] == NULL) {
        take_returned(f);
    }
    struct fo_block *b = NULL;
    if (k < FO_CLASSES && p->free[k] != NULL) {
        b = p->free[k];
        p->free[k] = b->next;
        p->nfree[k]--;
        atomic_fetch_sub_explicit(&p->pooled, 1, memory_order_relaxed);
    } else {
        size_t cap = k < FO_CLASSES ? class_size(k) : need;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL) {
            return NULL;
        }
        b->cls = (uint8_t)k;
        b->owner = (uint16_t)f->id;
        b->cap = (uint32_t)cap;
        atomic_fetch_add_explicit(&p->bytes, cap, memory_order_relaxed);
    }
    atomic_init(&b->refs, 1);
    b->next = NULL;
    return b;
}

static void
block_free(struct fo_pool *p, struct fo_block *b)
{
    atomic_fetch_sub_explicit(&p->bytes, b->cap, memory_order_relaxed);
    free(b);
}

void
fo_block_unref(struct sw_fanout *f, struct fo_block *b)
{
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1) {
        return;
    }
    if (b->owner != f->id) {
        struct fo_pool *home = &f->hub->pools[b->owner];
        atomic_init(&b->refs, 1);
        b->next = atomic_load_explicit(&home->returned, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&home->returned, &b->next,
                                                      b, memory_order_release,
                                                      memory_order_relaxed)) {
        }
        return;
    }
    struct fo_pool *p = f->pool;
    if (b->cls >= FO_CLASSES || p->nfree[b->cls] >= keep_idle[b->cls]) {
        block_free(p, b);
        return;
    }
    b->next = p->free[b->cls];
    p->free[b->cls] = b;
    p->nfree[b->cls]++;
    atomic_fetch_add_explicit(&p->pooled, 1, memory_order_relaxed);
}

/* Blocks put in the pool when a worker makes its first channel: how many
 * are in use at once depends on how reads split frames and how far the
 * clients lag, so a few beyond the usual need keep the peak, and its
 * mallocs, out of steady traffic. Untouched pages cost no memory. */
static const size_t prefill[FO_CLASSES] = {16, 16, 0, 8, 2, 0, 0, 0};

void
fo_pool_prefill(struct sw_fanout *f)
{
    struct fo_block *got[16];
    for (unsigned k = 0; k < FO_CLASSES; k++) {
        size_t n = 0;
        while (n < prefill[k] && n < SW_NELEMS(got)) {
            got[n] = fo_block_get(f, class_size(k));
            if (got[n] == NULL) {
                break;
            }
            n++;
        }
        while (n > 0) {
            fo_block_unref(f, got[--n]);
        }
    }
}

void
fo_pool_fini(struct fo_pool *p)
{
    struct fo_block *b = atomic_exchange(&p->returned, NULL);
    while (b != NULL) {
        struct fo_block *next = b->next;
        block_free(p, b);
        b = next;
    }
    for (unsigned k = 0; k < FO_CLASSES; k++) {
        while (p->free[k] != NULL) {
            b = p->free[k];
            p->free[k] = b->next;
            block_free(p, b);
        }
        p->nfree[k] = 0;
    }
    atomic_store(&p->pooled, 0);
}

/* ---- frame queues ------------------------------------------------------ */

static struct fo_slice *
at(const struct fo_outq *q, uint32_t i)
{
    return &q->ring[(q->head + i) & (q->cap - 1)];
}

/* Double the ring, keeping the order. Allocation happens only while a
 * queue grows to a size it never had. */
static bool
grow(struct fo_outq *q)
{
    uint32_t cap = q->cap == 0 ? 16 : q->cap * 2;
    if (cap > FO_QUEUE_MAX) {
        return false;
    }
    struct fo_slice *r = malloc(cap * sizeof(*r));
    if (r == NULL) {
        return false;
    }
    for (uint32_t i = 0; i < q->count; i++) {
        r[i] = *at(q, i);
    }
    free(q->ring);
    q->ring = r;
    q->cap = cap;
    q->head = 0;
    return true;
}

struct fo_slice
fo_frame_head(struct fo_block *b, uint32_t at, uint8_t opcode,
              const uint8_t *key, uint32_t len)
{
    uint8_t hdr[SW_WS_MAX_HEADER];
    size_t h = sw_ws_frame_encode(hdr, true, opcode, key, len);
    uint32_t off = at - (uint32_t)h;
    memcpy(b->data + off, hdr, h);
    return (struct fo_slice){b, off, (uint32_t)h + len};
}

bool
fo_outq_push(struct sw_fanout *f, struct fo_outq *q, struct fo_slice s)
{
    SW_UNUSED(f);
    if (q->count == q->cap && !grow(q)) {
        return false;
    }
    fo_block_ref(s.b, 1);
    *at(q, q->count) = s;
    q->count++;
    q->bytes += s.len;
    return true;
}

/* Take the first entry off (sent or dropped). */
static void
pop(struct sw_fanout *f, struct fo_outq *q)
{
    struct fo_slice *s = at(q, 0);
    q->bytes -= s->len - q->sent;
    fo_block_unref(f, s->b);
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
    q->sent = 0;
}

size_t
fo_outq_trim(struct sw_fanout *f, struct fo_outq *q, uint64_t limit)
{
    size_t dropped = 0;
    /* a partly sent first entry must finish; drop from the one after */
    uint32_t keep = q->sent > 0 ? 1 : 0;
    while (q->bytes > limit && q->count > keep) {
        if (keep == 0) {
            pop(f, q);
        } else {
            /* move the first entry over the second, then pop the first
             * slot: the order of what stays is unchanged */
            struct fo_slice first = *at(q, 0);
            struct fo_slice *second = at(q, 1);
            q->bytes -= second->len;
            fo_block_unref(f, second->b);
            *second = first;
            q->head = (q->head + 1) & (q->cap - 1);
            q->count--;
        }
        dropped++;
    }
    return dropped;
}

bool
fo_outq_ctl(struct fo_outq *q, const uint8_t *frame, size_t len)
{
    if (q->ctl_sent == q->ctl_len) {
        q->ctl_len = q->ctl_sent = 0;
    }
    if (len > sizeof(q->ctl) - q->ctl_len) {
        return false;
    }
    memcpy(q->ctl + q->ctl_len, frame, len);
    q->ctl_len = (uint16_t)(q->ctl_len + len);
    return true;
}

bool
fo_outq_control(struct fo_outq *q, uint8_t opcode, const uint8_t *payload,
                size_t len, struct sw_ws_rng *mask)
{
    uint8_t frame[SW_WS_MAX_HEADER + SW_WS_MAX_CONTROL];
    uint8_t key[4];
    if (mask != NULL) {
        sw_ws_rng_key(mask, key);
    }
    size_t h =
        sw_ws_frame_encode(frame, true, opcode, mask != NULL ? key : NULL, len);
    if (len > 0) { /* payload may be NULL for an empty ping */
        memcpy(frame + h, payload, len);
        if (mask != NULL) {
            sw_ws_mask(frame + h, len, key, 0);
        }
    }
    return fo_outq_ctl(q, frame, h + len);
}

ssize_t
fo_outq_flush(struct sw_fanout *f, struct sw_conn *c, struct fo_outq *q)
{
    ssize_t total = 0;
    for (;;) {
        /* control frames go between two slices, never inside one */
        if (q->ctl_sent < q->ctl_len && q->sent == 0) {
            struct sw_buf b = {.pos = q->ctl + q->ctl_sent,
                               .last = q->ctl + q->ctl_len};
            ssize_t n = sw_conn_send_buf(c, &b);
            if (n < 0) {
                return n;
            }
            q->ctl_sent = (uint16_t)(q->ctl_sent + n);
            total += n;
            if (q->ctl_sent < q->ctl_len) {
                return total;
            }
        }
        if (q->count == 0) {
            return total;
        }
        struct iovec iov[FO_IOV];
        int n = 0;
        /* with a control frame waiting, only the rest of the slice in
         * flight goes before it */
        int most = q->ctl_sent < q->ctl_len ? 1 : FO_IOV;
        for (uint32_t i = 0; i < q->count && n < most; i++, n++) {
            struct fo_slice *s = at(q, i);
            uint32_t skip = i == 0 ? q->sent : 0;
            iov[n].iov_base = s->b->data + s->off + skip;
            iov[n].iov_len = s->len - skip;
        }
        ssize_t k = sw_conn_sendv(c, iov, n);
        if (k < 0) {
            return k;
        }
        total += k;
        size_t left = (size_t)k;
        while (left > 0) {
            struct fo_slice *s = at(q, 0);
            size_t rest = s->len - q->sent;
            if (left < rest) {
                q->sent += (uint32_t)left;
                q->bytes -= left;
                left = 0;
                break;
            }
            left -= rest;
            pop(f, q);
        }
        if (k == 0 || q->sent > 0) {
            return total; /* the socket is full */
        }
    }
}

void
fo_outq_clear(struct sw_fanout *f, struct fo_outq *q)
{
    while (q->count > 0) {
        pop(f, q);
    }
    q->bytes = 0;
    q->ctl_len = q->ctl_sent = 0;
}

void
fo_outq_fini(struct sw_fanout *f, struct fo_outq *q)
{
    fo_outq_clear(f, q);
    free(q->ring);
    q->ring = NULL;
    q->cap = 0;
    q->head = 0;
}

/* ---- rings between workers --------------------------------------------- */

static struct fo_ring *
ring(struct sw_fanout_hub *hub, unsigned from, unsigned to)
{
    return hub->rings[from * hub->nworkers + to];
}

/* Push one entry; false when the ring is full. Sets *was_empty when the
 * consumer had taken everything before: it may be asleep. */
static bool
ring_push(struct fo_ring *r, const struct fo_entry *e, bool *was_empty)
{
    unsigned head = atomic_load_explicit(&r->head, memory_order_relaxed);
    unsigned tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (head - tail == FO_RING_SIZE) {
        return false;
    }
    r->e[head & (FO_RING_SIZE - 1)] = *e;
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    /* pairs with the consumer's fence: either it sees the new head, or
     * we see the tail it stored and wake it */
    atomic_thread_fence(memory_order_seq_cst);
    tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    *was_empty = *was_empty || tail == head;
    return true;
}

static bool
later_push(struct fo_backlog *bl, const struct fo_entry *e)
{
    if (bl->n == bl->cap) {
        size_t cap = bl->cap == 0 ? 64 : bl->cap * 2;
        struct fo_entry *v = malloc(cap * sizeof(*v));
        if (v == NULL) {
            return false;
        }
        for (size_t i = 0; i < bl->n; i++) {
            v[i] = bl->v[(bl->head + i) % bl->cap];
        }
        free(bl->v);
        bl->v = v;
        bl->cap = cap;
        bl->head = 0;
    }
    bl->v[(bl->head + bl->n) % bl->cap] = *e;
    bl->n++;
    return true;
}

/* Move kept entries toward `to` into its ring while it has room. */
static void
retry_to(struct sw_fanout *f, unsigned to)
{
    struct fo_backlog *bl = &f->later[to];
    struct fo_ring *r = ring(f->hub, f->id, to);
    while (bl->n > 0 && ring_push(r, &bl->v[bl->head], &f->wake[to])) {
        bl->head = (bl->head + 1) % bl->cap;
        bl->n--;
    }
}

/* An entry that cannot be posted at all (no memory): its references go. */
static void
entry_drop(struct sw_fanout *f, const struct fo_entry *e)
{
    if (e->s.b != NULL) {
        fo_block_unref(f, e->s.b);
    }
    fo_chan_unref(f, e->ch);
}

void
fo_post(struct sw_fanout *f, unsigned to, const struct fo_entry *e)
{
    struct fo_backlog *bl = &f->later[to];
    if (bl->n > 0) {
        retry_to(f, to);
    }
    if (bl->n == 0 && ring_push(ring(f->hub, f->id, to), e, &f->wake[to])) {
        return;
    }
    if (bl->n >= FO_LATER_MAX && e->type == FO_E_MSG) {
        /* that worker is far behind: its clients miss this message */
        sw_metrics_inc(f->metrics, SW_METRIC_FANOUT_DROPPED);
        entry_drop(f, e);
        return;
    }
    if (!later_push(bl, e)) {
        sw_log_error("fanout: out of memory queueing toward worker %u", to);
        sw_metrics_inc(f->metrics, SW_METRIC_OUT_OF_MEMORY);
        entry_drop(f, e);
        return;
    }
    fo_sweep_arm(f); /* retried by the sweep until the ring has room */
}

void
fo_post_retry(struct sw_fanout *f)
{
    for (unsigned to = 0; to < f->hub->nworkers; to++) {
        if (to != f->id && f->later[to].n > 0) {
            retry_to(f, to);
        }
    }
}

void
fo_post_flush(struct sw_fanout *f)
{
    for (unsigned to = 0; to < f->hub->nworkers; to++) {
        if (!f->wake[to]) {
            continue;
        }
        f->wake[to] = false;
        uint64_t one = 1;
        ssize_t n = write(f->hub->efd[to], &one, sizeof(one));
        SW_UNUSED(n); /* EAGAIN: the counter is already non-zero */
    }
}

size_t
fo_drain_rings(struct sw_fanout *f,
               void (*fn)(struct sw_fanout *, struct fo_entry *))
{
    size_t done = 0;
    bool more = false;
    for (unsigned from = 0; from < f->hub->nworkers; from++) {
        if (from == f->id) {
            continue;
        }
        struct fo_ring *r = ring(f->hub, from, f->id);
        /* at most one ring's worth per call: a producer that never stops
         * must not keep this loop from polling its own sockets */
        size_t budget = FO_RING_SIZE;
        for (;;) {
            unsigned tail =
                atomic_load_explicit(&r->tail, memory_order_relaxed);
            unsigned head =
                atomic_load_explicit(&r->head, memory_order_acquire);
            if (tail == head) {
                break;
            }
            if (budget == 0) {
                more = true;
                break;
            }
            while (tail != head && budget > 0) {
                struct fo_entry e = r->e[tail & (FO_RING_SIZE - 1)];
                tail++;
                budget--;
                atomic_store_explicit(&r->tail, tail, memory_order_release);
                fn(f, &e);
                done++;
            }
            atomic_thread_fence(memory_order_seq_cst);
        }
    }
    if (more) {
        uint64_t one = 1; /* the rest after the next poll */
        ssize_t n = write(f->hub->efd[f->id], &one, sizeof(one));
        SW_UNUSED(n);
    }
    return done;
}
