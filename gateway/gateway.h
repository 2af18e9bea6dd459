/*
 * gateway.h - the daemon's own state: the current configuration, the worker
 * threads, the admin listener and the signal events. Everything here lives
 * on the main thread; workers are reached only through sw_worker_post_*().
 */
#ifndef SW_GATEWAY_H
#define SW_GATEWAY_H

#include <shockwave/conf.h>
#include <shockwave/health.h>
#include <shockwave/proxy.h>

#include <event2/event.h>
#include <pthread.h>

#define SW_VERSION "0.1.0"

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
    uint64_t last_reload_ms;  /* wall clock of the last reload, 0 = none */
    bool last_reload_ok;      /* its result */
    uint64_t started_ms;      /* wall clock of the start */
    struct sw_health *health; /* owned: active health checks */
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

/* admin_status.c: GET /status (the page) and GET /status.json. */
void sw_gateway_status_page(struct sw_gateway *g, int fd);
void sw_gateway_status_json(struct sw_gateway *g, int fd);

/* admin_status.c: the shockwave_upstream_server_up gauges (Prometheus
 * text) appended at out[*n], within cap. */
void sw_gateway_metrics_servers(struct sw_gateway *g, char *out, size_t cap,
                                size_t *n);

/* admin.c: an answer with its head; the connection closes after it. */
void sw_gateway_admin_answer(int fd, unsigned status, const char *reason,
                             const char *type, const char *body, size_t len);

/* Wall clock in milliseconds since 1970 (for the status page). */
uint64_t sw_gateway_wall_ms(void);

/* Open a listening socket for `l`; reuseport for one-per-worker sockets.
 * Returns the fd or -1 (logged). */
int sw_gateway_listen_socket(const struct sw_conf_listen *l, bool reuseport);

#endif
