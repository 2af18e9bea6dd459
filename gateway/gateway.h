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
#include <sys/un.h>

#define SW_VERSION "0.1.0"

struct sw_gateway_worker {
    struct sw_worker *w; /* owned */
    pthread_t thread;    /* running sw_worker_run */
    bool started;        /* thread was created */
};

/* The user and group of `user NAME [GROUP];`, resolved at start. */
struct sw_gateway_privs {
    bool set;      /* the configuration names a user */
    bool drop;     /* running as root and the user is not root */
    uid_t uid;     /* the user's uid */
    gid_t gid;     /* its group, or GROUP's */
    char name[64]; /* the user name, for initgroups and logs */
};

struct sw_gateway {
    const char *conf_path;             /* borrowed (argv) */
    struct sw_conf *cf;                /* ref: the current snapshot */
    struct event_base *base;           /* owned: main thread loop */
    struct sw_gateway_worker *workers; /* owned: nworkers */
    struct sw_fanout_hub *fanout;      /* owned: the workers' fan-out hub */
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
    uint64_t last_reload_ms;  /* wall clock of the last reload, 0 = none */
    uint64_t started_ms;      /* wall clock of the start */
    struct sw_health *health; /* owned: active health checks */
    bool stopping;            /* SIGTERM seen */
    /* Service manager notifications (notify.c). */
    int notify_fd;                  /* owned: -1 without NOTIFY_SOCKET */
    struct sockaddr_un notify_addr; /* $NOTIFY_SOCKET */
    socklen_t notify_len;           /* bytes of notify_addr in use */
    bool notify_warned;             /* a send failure was logged */
    /* Privileges (privs.c). */
    struct sw_gateway_privs privs; /* the `user` to run as, resolved */
    bool allow_root;               /* -R: workers may run as root */
    struct event *sigusr1;         /* owned: reopen the log files */
    /* Log files (logfiles.c). */
    int error_fd;           /* owned when a file (> 2); 2 = stderr */
    int access_fd;          /* owned when a file (> 2); -1 = off */
    char error_path[4096];  /* file opened for error_log, "" = stderr */
    char access_path[4096]; /* file opened for access_log, "" = none */
};

/* worker.c: open one SO_REUSEPORT socket per listen per worker (threads
 * start in sw_gateway_run_workers). SW_OK or SW_ERROR (logged). */
enum sw_status sw_gateway_start_workers(struct sw_gateway *g);
void sw_gateway_stop_workers(struct sw_gateway *g);

/* signals.c */
enum sw_status sw_gateway_signals_start(struct sw_gateway *g);
void sw_gateway_signals_stop(struct sw_gateway *g);

/* admin.c */
enum sw_status sw_gateway_admin_start(struct sw_gateway *g);
void sw_gateway_admin_stop(struct sw_gateway *g);

/* notify.c: $NOTIFY_SOCKET. open: SW_OK (also without one) or SW_ERROR
 * (logged). notify: send one datagram of "KEY=VALUE\n" lines, printf-style;
 * nothing without a socket. */
enum sw_status sw_gateway_notify_open(struct sw_gateway *g);
void sw_gateway_notify_close(struct sw_gateway *g);
void sw_gateway_notify(struct sw_gateway *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
uint64_t sw_gateway_monotonic_usec(void);

/* privs.c: resolve the `user` of cf (SW_OK or SW_ERROR, printed on
 * stderr); refuse root without `user` or -R; drop to it once the
 * listeners are bound (SW_OK, or SW_ERROR logged: the daemon must exit). */
enum sw_status sw_gateway_privs_resolve(struct sw_gateway *g);
/* -t: the `user` and group of cf exist (SW_OK, or SW_ERROR printed). */
enum sw_status sw_gateway_privs_check(const struct sw_conf *cf,
                                      const char *path);
enum sw_status sw_gateway_privs_drop(struct sw_gateway *g);

/* main.c: build cf's TLS contexts (one session cache per worker) and
 * bind its plugins (lib/plugin), handing both to the snapshot, which frees
 * them with itself. SW_OK, or SW_ERROR with the errors in err. Start-up,
 * reload and -t all load through it. */
enum sw_status sw_gateway_attach(struct sw_conf *cf, unsigned nworkers,
                                 char *err, size_t errlen);

/* logfiles.c: open the logs of g->cf (SW_OK or SW_ERROR, printed);
 * reopen them on the same fds (SIGUSR1); close the access log at exit. */
enum sw_status sw_gateway_logs_open(struct sw_gateway *g);
void sw_gateway_logs_reopen(struct sw_gateway *g);
void sw_gateway_logs_close(struct sw_gateway *g);

/* worker.c: sw_gateway_start_workers creates the workers and binds their
 * listeners; sw_gateway_run_workers starts their threads. */
enum sw_status sw_gateway_run_workers(struct sw_gateway *g);
/* `workers N`, or one per online CPU when it is 0 (auto). */
unsigned sw_gateway_worker_count(const struct sw_conf *cf);

/* admin_metrics.c: the /metrics body (Prometheus text 0.0.4) summed over
 * the workers, into o (the caller frees o->p). SW_OK or SW_ENOMEM. */
struct sw_metrics_out;
enum sw_status sw_gateway_metrics_text(struct sw_gateway *g,
                                       struct sw_metrics_out *o);

/* admin_status.c: GET /status (the page) and GET /status.json. */
void sw_gateway_status_page(struct sw_gateway *g, int fd);
void sw_gateway_status_json(struct sw_gateway *g, int fd);

/* admin.c: an answer with its head; the connection closes after it.
 * _with adds header lines (`extra`: "" or "Name: value\r\n" lines);
 * _send writes raw bytes (the local client is waited for, briefly). */
void sw_gateway_admin_answer(int fd, unsigned status, const char *reason,
                             const char *type, const char *body, size_t len);
void sw_gateway_admin_answer_with(int fd, unsigned status, const char *reason,
                                  const char *type, const char *extra,
                                  const char *body, size_t len);
void sw_gateway_admin_send(int fd, const char *p, size_t n);
/* The text of j (json.h) as an application/json answer, or 500 when j
 * failed (out of memory). */
struct sw_json;
void sw_gateway_admin_answer_json(int fd, unsigned status, const char *reason,
                                  const struct sw_json *j);

/* admin_publish.c: POST /publish?upstream=NAME&channel=KEY. */
#define SW_GATEWAY_PUBLISH_MAX (1u << 20) /* bytes of one message */
/* "UPSTREAM\x1fKEY": as long as the key a fan-out join can make
 * (lib/proxy/proxy_fanout.c) */
#define SW_GATEWAY_PUBLISH_KEY_MAX 1024

/* An accepted publish head, kept while its body is read. */
struct sw_gateway_publish {
    char key[SW_GATEWAY_PUBLISH_KEY_MAX]; /* "UPSTREAM\x1fKEY", decoded */
    size_t key_len;                       /* bytes in key */
    size_t up_len;                        /* bytes of UPSTREAM in key */
    size_t head_len;                      /* bytes of the request head */
    size_t body_len;                      /* Content-Length */
    uint8_t opcode;                       /* SW_WS_OP_TEXT or _BINARY */
};

/* The request head in req (NUL-terminated) is for /publish. */
bool sw_gateway_publish_is(const char *req);
/* Check the complete head req[0..len) (body bytes may follow): false when
 * it was refused (answered: the connection closes); true with pub filled
 * (and "100 Continue" sent when asked): read pub->body_len bytes after
 * pub->head_len, then call sw_gateway_publish_body. */
bool sw_gateway_publish_head(struct sw_gateway *g, int fd, const char *req,
                             size_t len, struct sw_gateway_publish *pub);
/* Publish body[0..pub->body_len) and answer 202 (or 400: bad UTF-8). */
void sw_gateway_publish_body(struct sw_gateway *g, int fd,
                             const struct sw_gateway_publish *pub,
                             const char *body);

/* Open a listening socket for `l`; reuseport for one-per-worker sockets.
 * Returns the fd or -1 (logged). */
int sw_gateway_listen_socket(const struct sw_conf_listen *l, bool reuseport);

#endif
