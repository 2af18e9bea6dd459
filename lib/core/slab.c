/*
 * slab.c - fixed-size objects in page-sized chunks (see slab.h).
 *
 * Owns its chunks (mmap). A chunk's slots are handed out in order first
 * (`fresh`), so a new chunk's pages become resident only as they are used;
 * freed slots go on the chunk's own free list.
 */
#include <shockwave/slab.h>

#include <sys/mman.h>

/* Under AddressSanitizer every object is its own malloc, so the sanitizer
 * still sees each use after free and each overrun. */
#if defined(__SANITIZE_ADDRESS__)
#define SW_SLAB_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SW_SLAB_MALLOC 1
#endif
#endif

#define SLOT_HEADER 16 /* the chunk's address, padded to keep alignment */

struct sw_slab_chunk {
    struct sw_slab_chunk *next; /* every chunk */
    struct sw_slab_chunk *prev;
    struct sw_slab_chunk *avail_next; /* chunks with room */
    struct sw_slab_chunk *avail_prev;
    bool in_avail; /* on s->avail */
    size_t nfree;  /* free slots, fresh ones included */
    size_t fresh;  /* slots from here on never used */
    void *free;    /* freed slots, linked through them */
};

static uint8_t *
first_slot(struct sw_slab_chunk *c)
{
    return (uint8_t *)c + SW_ALIGN_UP(sizeof(*c), SLOT_HEADER);
}

void
sw_slab_init(struct sw_slab *s, size_t size)
{
    memset(s, 0, sizeof(*s));
    s->slot_size = SLOT_HEADER + SW_ALIGN_UP(size, SLOT_HEADER);
    size_t room =
        SW_SLAB_CHUNK - SW_ALIGN_UP(sizeof(struct sw_slab_chunk), SLOT_HEADER);
    s->slots = room / s->slot_size;
    SW_ASSERT(s->slots > 0);
}

static void
avail_add(struct sw_slab *s, struct sw_slab_chunk *c)
{
    c->avail_prev = NULL;
    c->avail_next = s->avail;
    if (s->avail != NULL) {
        s->avail->avail_prev = c;
    }
    s->avail = c;
    c->in_avail = true;
}

static void
avail_remove(struct sw_slab *s, struct sw_slab_chunk *c)
{
    if (c->avail_prev != NULL) {
        c->avail_prev->avail_next = c->avail_next;
    } else {
        s->avail = c->avail_next;
    }
    if (c->avail_next != NULL) {
        c->avail_next->avail_prev = c->avail_prev;
    }
    c->in_avail = false;
}

static struct sw_slab_chunk *
chunk_new(struct sw_slab *s)
{
    void *m = mmap(NULL, SW_SLAB_CHUNK, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        return NULL;
    }
    struct sw_slab_chunk *c = m; /* mapped pages are zero */
    c->nfree = s->slots;
    c->next = s->chunks;
    if (s->chunks != NULL) {
        s->chunks->prev = c;
    }
    s->chunks = c;
    s->nchunks++;
    avail_add(s, c);
    return c;
}

static void
chunk_unmap(struct sw_slab *s, struct sw_slab_chunk *c)
{
    if (c->in_avail) {
        avail_remove(s, c);
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->chunks = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    s->nchunks--;
    munmap(c, SW_SLAB_CHUNK);
}

void
sw_slab_fini(struct sw_slab *s)
{
    while (s->chunks != NULL) {
        chunk_unmap(s, s->chunks);
    }
    s->nused = 0;
}

void *
sw_slab_alloc(struct sw_slab *s)
{
#ifdef SW_SLAB_MALLOC
    void *obj = malloc(s->slot_size - SLOT_HEADER);
    s->nused += obj != NULL;
    return obj;
#endif
    struct sw_slab_chunk *c = s->avail;
    if (c == NULL && (c = chunk_new(s)) == NULL) {
        return NULL;
    }
    uint8_t *slot;
    if (c->free != NULL) {
        slot = c->free;
        memcpy(&c->free, slot + SLOT_HEADER, sizeof(void *));
    } else {
        slot = first_slot(c) + c->fresh * s->slot_size;
        c->fresh++;
    }
    if (--c->nfree == 0) {
        avail_remove(s, c);
    }
    memcpy(slot, &c, sizeof(c));
    s->nused++;
    return slot + SLOT_HEADER;
}

void *
sw_slab_zalloc(struct sw_slab *s)
{
    void *p = sw_slab_alloc(s);
    if (p != NULL) {
        memset(p, 0, s->slot_size - SLOT_HEADER);
    }
    return p;
}

void
sw_slab_free(struct sw_slab *s, void *p)
{
    if (p == NULL) {
        return;
    }
#ifdef SW_SLAB_MALLOC
    free(p);
    s->nused--;
    return;
#endif
    uint8_t *slot = (uint8_t *)p - SLOT_HEADER;
    struct sw_slab_chunk *c;
    memcpy(&c, slot, sizeof(c));
    memcpy(slot + SLOT_HEADER, &c->free, sizeof(void *));
    c->free = slot;
    s->nused--;
    if (c->nfree++ == 0) {
        avail_add(s, c);
    }
    /* empty: give it back, unless it is the only chunk with room */
    if (c->nfree == s->slots && (s->avail != c || c->avail_next != NULL)) {
        chunk_unmap(s, c);
    }
}
