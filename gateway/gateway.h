/*
 * gateway.h - the daemon's own state: the current configuration, the worker
 * threads, the admin listener and the signal events. Everything here lives
 * on the main thread; workers are reached only through sw_worker_post_*().
 */
#ifndef SW_GATEWAY_H
#define SW_GATEWAY_H

#include <shockwave/conf.h>
#include <shockwave/proxy.h>

#include <event2/event.h>
#include <pthread.h>

struct sw_gateway_worker {
    struct sw_worker *w; /* owned */
    pthread_t thread;    /* running sw_worker_run */
    bool started;        /* thread was created */
};

struct sw_gateway {
    const char *conf_path;             /* borrowed (argv) */
    struct sw_conf *cf;                /* ref: the current snapshot */
    struct event_base *base;           /* owned: main thread loop */
    struct sw_gateway_worker *workers; /* owned: nworkers */
    unsigned nworkers;
    struct event *sighup;     /* owned */
    struct event *sigterm;    /* owned */
    struct event *sigint;     /* owned */
    int admin_fd;             /* owned: -1 when no admin listener */
    struct event *admin_ev;   /* owned */
    uint64_t reloads;         /* successful reloads */
    uint64_t reload_failures; /* failed reloads */
    bool last_reload_ok;      /* the last load or reload succeeded */
    uint64_t loaded_unix;     /* when g->cf was loaded (unix seconds) */
    uint64_t start_unix;      /* when the process started */
    bool stopping;            /* SIGTERM seen */
};

/* worker.c: open one SO_REUSEPORT socket per listen per worker and start
 * the threads. SW_OK or SW_ERROR (logged). */
enum sw_status sw_gateway_start_workers(struct sw_gateway *g);
void sw_gateway_stop_workers(struct sw_gateway *g);

/* signals.c */
enum sw_status sw_gateway_signals_start(struct sw_gateway *g);
void sw_gateway_signals_stop(struct sw_gateway *g);

/* admin.c */
enum sw_status sw_gateway_admin_start(struct sw_gateway *g);
void sw_gateway_admin_stop(struct sw_gateway *g);

/* admin_metrics.c: the /metrics body (Prometheus text 0.0.4) summed over
 * the workers, into o (the caller frees o->p). SW_OK or SW_ENOMEM. */
struct sw_metrics_out;
enum sw_status sw_gateway_metrics_text(struct sw_gateway *g,
                                       struct sw_metrics_out *o);

/* Open a listening socket for `l`; reuseport for one-per-worker sockets.
 * Returns the fd or -1 (logged). */
int sw_gateway_listen_socket(const struct sw_conf_listen *l, bool reuseport);

#endif
