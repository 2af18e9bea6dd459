/*
 * pipe.c - a worker's pool of pipes for splice() (see relay.h).
 *
 * A pipe is taken for the payload of one large frame and given back empty
 * when the frame is done, so steady traffic opens no new pipes. One thread.
 */
#include <shockwave/log.h>
#include <shockwave/relay.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

void
sw_pipe_pool_init(struct sw_pipe_pool *pp, size_t keep)
{
    memset(pp, 0, sizeof(*pp));
    pp->cap = keep;
    pp->pipe_size = 65536;
}

void
sw_pipe_pool_fini(struct sw_pipe_pool *pp)
{
    if (pp == NULL) {
        return;
    }
    for (size_t i = 0; i < pp->n; i++) {
        close(pp->fds[i][0]);
        close(pp->fds[i][1]);
    }
    free(pp->fds);
    pp->fds = NULL;
    pp->n = 0;
}

enum sw_status
sw_pipe_get(struct sw_pipe_pool *pp, int fds[2])
{
    if (pp->n > 0) {
        pp->n--;
        fds[0] = pp->fds[pp->n][0];
        fds[1] = pp->fds[pp->n][1];
        return SW_OK;
    }
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        sw_log_error("pipe2: %s", strerror(errno));
        return SW_ERROR;
    }
    int sz = fcntl(fds[1], F_GETPIPE_SZ);
    if (sz > 0) {
        pp->pipe_size = (size_t)sz;
    }
    return SW_OK;
}

void
sw_pipe_put(struct sw_pipe_pool *pp, int fds[2])
{
    if (pp->fds == NULL && pp->cap > 0) {
        pp->fds = calloc(pp->cap, sizeof(*pp->fds));
    }
    if (pp->fds == NULL || pp->n >= pp->cap) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    pp->fds[pp->n][0] = fds[0];
    pp->fds[pp->n][1] = fds[1];
    pp->n++;
}
