/*
 * slab.h - fixed-size objects packed densely in page-sized chunks.
 *
 * For objects that live long and many at once (a worker's parked
 * WebSockets): malloc would place them in the holes that shorter-lived
 * allocations leave, where they pin whole pages of freed memory. A slab
 * keeps them together, in chunks mapped from the kernel, so their memory
 * is theirs alone and a chunk that empties goes back at once.
 *
 *   chunk (SW_SLAB_CHUNK bytes, mmap): header | slot | slot | ... | slot
 *   slot: its chunk's address (16 bytes with padding) | the object
 *
 * Chunks with a free slot are kept on a list; an object's chunk is found
 * from the pointer stored before it. A chunk whose every slot is free is
 * unmapped unless it is the only one with room (so a worker that parks
 * and wakes one object does not map and unmap each time).
 *
 * Threading: a slab belongs to one thread; no locks.
 */
#ifndef SHOCKWAVE_SLAB_H
#define SHOCKWAVE_SLAB_H

#include <shockwave/core.h>

#define SW_SLAB_CHUNK (64u * 1024u)

struct sw_slab_chunk;

struct sw_slab {
    size_t slot_size;             /* bytes per slot, header included */
    size_t slots;                 /* slots per chunk */
    size_t nchunks;               /* chunks mapped */
    size_t nused;                 /* objects handed out */
    struct sw_slab_chunk *avail;  /* borrowed links: chunks with room */
    struct sw_slab_chunk *chunks; /* owned: every chunk */
};

/* Prepare a slab for objects of `size` bytes (at most a few KiB). */
void sw_slab_init(struct sw_slab *s, size_t size);

/* Unmap every chunk; objects still out are lost with them. */
void sw_slab_fini(struct sw_slab *s);

/* An object's memory (not zeroed), 16-byte aligned, or NULL on ENOMEM. */
void *sw_slab_alloc(struct sw_slab *s);

/* The same, zeroed. */
void *sw_slab_zalloc(struct sw_slab *s);

/* Give an object back (NULL is accepted). */
void sw_slab_free(struct sw_slab *s, void *p);

#endif
