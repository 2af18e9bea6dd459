/*
 * alloccount.c - an LD_PRELOAD allocation counter for the zero-allocation
 * WebSocket test (tests/integration/ws_alloc_test.c).
 *
 * Interposes malloc, calloc, realloc, aligned_alloc and posix_memalign,
 * counts each call with a relaxed atomic and forwards to the next
 * definition (glibc's) found with dlsym(RTLD_NEXT). free is interposed
 * only to ignore the few blocks handed out during that lookup.
 *
 *   gateway code --malloc--> here: count++ --> real malloc (libc)
 *   admin /metrics --dlsym(RTLD_DEFAULT, "sw_test_alloc_count")--> count
 *
 * Only allocations on threads other than the process's first are counted:
 * the data path runs on the worker threads, while the main thread serves
 * the admin listener, whose own allocations (a connection struct, and a
 * libevent slot whenever its fd number is new) would otherwise blur the
 * count.
 *
 * Bootstrap: dlsym itself may call calloc/malloc (dlerror's buffer) before
 * the real functions are known. While resolving, requests are served from
 * a small static arena; those blocks are never freed or reallocated into
 * libc.
 *
 * Owns: the counter and the arena (process-wide, by nature of LD_PRELOAD).
 * Threading: the counter is atomic; resolution happens in a constructor
 * before the program's threads start, and again lazily (idempotently) if
 * another library's constructor allocates first.
 *
 * Built without sanitizers (tests/meson.build): an ASan runtime intercepts
 * the same symbols, so under an ASan gateway this module is not used.
 */
#include <dlfcn.h>
#include <unistd.h>
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

static _Atomic uint64_t allocs;   /* interposed allocation calls */
static void *(*real_malloc)(size_t);              /* libc's */
static void *(*real_calloc)(size_t, size_t);      /* libc's */
static void *(*real_realloc)(void *, size_t);     /* libc's */
static void (*real_free)(void *);                 /* libc's */
static void *(*real_aligned_alloc)(size_t, size_t); /* libc's */
static int (*real_posix_memalign)(void **, size_t, size_t); /* libc's */
static _Atomic int resolving;     /* a dlsym lookup is running */
static _Atomic int resolved;      /* every real_* is set */

static alignas(max_align_t) unsigned char arena[16384]; /* bootstrap */
static _Atomic size_t arena_used; /* bytes handed out of arena */

EXPORT uint64_t sw_test_alloc_count(void);

uint64_t
sw_test_alloc_count(void)
{
    return atomic_load_explicit(&allocs, memory_order_relaxed);
}

static void
count(void)
{
    if (gettid() != getpid()) {
        atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    }
}

static bool
in_arena(const void *p)
{
    const unsigned char *c = p;
    return c >= arena && c < arena + sizeof(arena);
}

/* Zeroed memory from the static arena (it starts zeroed, nothing is ever
 * given back). NULL when it is exhausted. */
static void *
arena_get(size_t n)
{
    size_t need = (n + alignof(max_align_t) - 1) &
                  ~(alignof(max_align_t) - 1);
    size_t at = atomic_fetch_add(&arena_used, need);
    if (at + need > sizeof(arena)) {
        return NULL;
    }
    return arena + at;
}

static void
resolve(void)
{
    if (atomic_load(&resolved)) {
        return;
    }
    atomic_store(&resolving, 1);
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    real_aligned_alloc =
        (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
    real_posix_memalign =
        (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
    atomic_store(&resolving, 0);
    atomic_store(&resolved, real_malloc != NULL && real_calloc != NULL &&
                                real_realloc != NULL && real_free != NULL);
}

__attribute__((constructor)) static void
alloccount_init(void)
{
    resolve();
}

EXPORT void *
malloc(size_t n)
{
    if (!atomic_load_explicit(&resolved, memory_order_acquire)) {
        if (atomic_load(&resolving)) {
            return arena_get(n);
        }
        resolve();
    }
    count();
    return real_malloc(n);
}

EXPORT void *
calloc(size_t nmemb, size_t size)
{
    if (!atomic_load_explicit(&resolved, memory_order_acquire)) {
        if (atomic_load(&resolving)) {
            if (size != 0 && nmemb > SIZE_MAX / size) {
                return NULL;
            }
            return arena_get(nmemb * size);
        }
        resolve();
    }
    count();
    return real_calloc(nmemb, size);
}

EXPORT void *
realloc(void *p, size_t n)
{
    if (!atomic_load_explicit(&resolved, memory_order_acquire)) {
        if (atomic_load(&resolving)) {
            void *q = arena_get(n);
            if (q != NULL && p != NULL) {
                /* old size unknown: copy what the arena can still hold */
                size_t avail = (size_t)(arena + sizeof(arena) -
                                        (unsigned char *)p);
                memmove(q, p, n < avail ? n : avail);
            }
            return q;
        }
        resolve();
    }
    count();
    if (p != NULL && in_arena(p)) {
        void *q = real_malloc(n);
        if (q != NULL) {
            size_t avail = (size_t)(arena + sizeof(arena) -
                                    (unsigned char *)p);
            memcpy(q, p, n < avail ? n : avail);
        }
        return q;
    }
    return real_realloc(p, n);
}

EXPORT void
free(void *p)
{
    if (p == NULL || in_arena(p)) {
        return;
    }
    if (!atomic_load_explicit(&resolved, memory_order_acquire)) {
        resolve();
    }
    real_free(p);
}

EXPORT void *
aligned_alloc(size_t align, size_t n)
{
    if (!atomic_load_explicit(&resolved, memory_order_acquire)) {
        resolve();
    }
    count();
    if (real_aligned_alloc == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    return real_aligned_alloc(align, n);
}

EXPORT int
posix_memalign(void **out, size_t align, size_t n)
{
    if (!atomic_load_explicit(&resolved, memory_order_acquire)) {
        resolve();
    }
    count();
    if (real_posix_memalign == NULL) {
        return ENOMEM;
    }
    return real_posix_memalign(out, align, n);
}
