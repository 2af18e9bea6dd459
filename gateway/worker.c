/*
 * worker.c - worker threads and their listening sockets.
 *
 * Every worker gets its own socket per `listen`, bound with SO_REUSEPORT,
 * so the kernel spreads new connections over the workers and no accept lock
 * is needed (DESIGN.md: one listener per worker).
 */
#include "gateway.h"

#include <shockwave/fanout.h>

#include <shockwave/log.h>

#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>

int
sw_gateway_listen_socket(const struct sw_conf_listen *l, bool reuseport)
{
    int fd = socket(l->addr.ss_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        sw_log_error("listen %.*s: socket: %s", (int)l->text.len, l->text.p,
                     strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    if (l->addr.ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) != 0 ||
        listen(fd, l->backlog > 0 ? l->backlog : 511) != 0) {
        sw_log_error("listen %.*s: %s", (int)l->text.len, l->text.p,
                     strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

unsigned
sw_gateway_worker_count(const struct sw_conf *cf)
{
    if (cf->workers != 0) {
        return cf->workers;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static void *
thread_main(void *arg)
{
    sw_worker_run(arg);
    return NULL;
}

enum sw_status
sw_gateway_start_workers(struct sw_gateway *g)
{
    g->nworkers = sw_gateway_worker_count(g->cf);
    g->workers = calloc(g->nworkers, sizeof(*g->workers));
    if (g->workers == NULL) {
        sw_log_error("out of memory");
        return SW_ENOMEM;
    }
    g->fanout = sw_fanout_hub_new(g->nworkers);
    if (g->fanout == NULL || sw_fanout_hub_set_bus(g->fanout, g->cf) != SW_OK) {
        sw_log_error("out of memory for the fan-out hub");
        return SW_ENOMEM;
    }
    for (unsigned i = 0; i < g->nworkers; i++) {
        struct sw_worker *w = sw_worker_new(i, g->cf, g->fanout);
        if (w == NULL) {
            return SW_ERROR;
        }
        g->workers[i].w = w;
        for (size_t j = 0; j < g->cf->nlistens; j++) {
            int fd = sw_gateway_listen_socket(&g->cf->listens[j], true);
            const struct sw_conf_listen *cl = &g->cf->listens[j];
            if (fd < 0 ||
                sw_worker_listen(w, fd, cl->tls, cl->proxy_protocol) != SW_OK) {
                return SW_ERROR;
            }
        }
    }
    return SW_OK;
}

enum sw_status
sw_gateway_run_workers(struct sw_gateway *g)
{
    for (unsigned i = 0; i < g->nworkers; i++) {
        int err = pthread_create(&g->workers[i].thread, NULL, thread_main,
                                 g->workers[i].w);
        if (err != 0) {
            sw_log_error("pthread_create: %s", strerror(err));
            return SW_ERROR;
        }
        g->workers[i].started = true;
    }
    return SW_OK;
}

void
sw_gateway_stop_workers(struct sw_gateway *g)
{
    if (g->workers == NULL) {
        return;
    }
    for (unsigned i = 0; i < g->nworkers; i++) {
        if (g->workers[i].started) {
            sw_worker_post_drain(g->workers[i].w);
        }
    }
    for (unsigned i = 0; i < g->nworkers; i++) {
        if (g->workers[i].started) {
            pthread_join(g->workers[i].thread, NULL);
        }
        sw_worker_free(g->workers[i].w);
    }
    free(g->workers);
    g->workers = NULL;
    sw_fanout_hub_free(g->fanout); /* after every worker's side */
    g->fanout = NULL;
}
