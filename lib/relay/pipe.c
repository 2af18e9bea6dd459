/*
 * pipe.c - a worker's pool of pipes for splice() (see relay.h).
 *
 * A pipe is taken for the payload of one large frame and given back empty
 * when the frame is done, so steady traffic opens no new pipes. New pipes
 * are resized to ws_pipe_size (default 1 MiB) so a 1 MiB payload moves in a
 * handful of splice pairs instead of one per 64 KiB. Memory: pipe pages
 * are allocated only while bytes sit in a pipe, so the worst case is one
 * full pipe per frame being spliced (two per WebSocket at most, one per
 * direction); idle pooled pipes hold none. One thread.
 */
#include <shockwave/log.h>
#include <shockwave/relay.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define SW_PIPE_DEFAULT_SIZE 65536 /* Linux's default capacity */
#define SW_PIPE_MAX_SIZE_FILE "/proc/sys/fs/pipe-max-size"

/* The largest capacity an unprivileged pipe may be given, 0 if unknown. */
static size_t
pipe_max_size(void)
{
    FILE *f = fopen(SW_PIPE_MAX_SIZE_FILE, "r");
    unsigned long v = 0;
    if (f != NULL) {
        if (fscanf(f, "%lu", &v) != 1) {
            v = 0;
        }
        fclose(f);
    }
    return (size_t)v;
}

void
sw_pipe_pool_init(struct sw_pipe_pool *pp, size_t keep, size_t want_size)
{
    memset(pp, 0, sizeof(*pp));
    pp->cap = keep;
    size_t max = pipe_max_size();
    pp->want_size = max != 0 ? SW_MIN(want_size, max) : want_size;
}

/* Give a new pipe the wanted capacity, or keep what the kernel grants;
 * returns what it holds. */
static size_t
resize(struct sw_pipe_pool *pp, int fd)
{
    if (pp->want_size > SW_PIPE_DEFAULT_SIZE &&
        fcntl(fd, F_SETPIPE_SZ, (int)pp->want_size) < 0 && !pp->warned) {
        /* EPERM: over the per-user pipe page limit (pipe-user-pages-soft) */
        sw_log_warn("splice pipes: cannot grow to %zu bytes (%s); using "
                    "what the kernel grants",
                    pp->want_size, strerror(errno));
        pp->warned = true;
    }
    int sz = fcntl(fd, F_GETPIPE_SZ);
    return sz > 0 ? (size_t)sz : SW_PIPE_DEFAULT_SIZE;
}

void
sw_pipe_pool_fini(struct sw_pipe_pool *pp)
{
    if (pp == NULL) {
        return;
    }
    for (size_t i = 0; i < pp->n; i++) {
        close(pp->idle[i].fd[0]);
        close(pp->idle[i].fd[1]);
    }
    free(pp->idle);
    pp->idle = NULL;
    pp->n = 0;
}

enum sw_status
sw_pipe_get(struct sw_pipe_pool *pp, struct sw_pipe *p)
{
    if (pp->n > 0) {
        /* relaxed store: the admin thread reads n (metrics) */
        __atomic_store_n(&pp->n, pp->n - 1, __ATOMIC_RELAXED);
        *p = pp->idle[pp->n];
        return SW_OK;
    }
    if (pipe2(p->fd, O_NONBLOCK | O_CLOEXEC) != 0) {
        sw_log_error("pipe2: %s", strerror(errno));
        return SW_ERROR;
    }
    p->cap = resize(pp, p->fd[1]);
    return SW_OK;
}

void
sw_pipe_put(struct sw_pipe_pool *pp, const struct sw_pipe *p)
{
    if (pp->idle == NULL && pp->cap > 0) {
        pp->idle = calloc(pp->cap, sizeof(*pp->idle));
    }
    if (pp->idle == NULL || pp->n >= pp->cap) {
        close(p->fd[0]);
        close(p->fd[1]);
        return;
    }
    pp->idle[pp->n] = *p;
    __atomic_store_n(&pp->n, pp->n + 1, __ATOMIC_RELAXED);
}
