/*
 * proxy_int.h - private structures of the proxy module: the worker, its
 * per-snapshot state and the client session.
 *
 * Session states (changed only through sw__proxy_set_state() in
 * proxy_session.c, which asserts the transition, the first one included;
 * the edges are those of transition_ok()). Each state has one phase
 * handler there; the session's loop runs the handler of the current state
 * until it answers SW_AGAIN (nothing can move until an event).
 *
 *   NEW --TLS listener--> HANDSHAKE --done--> IDLE
 *   NEW --plain listener--------------------> IDLE
 *   NEW --proxy_protocol listener--> PROXYHDR --header read--> HANDSHAKE
 *                                            (TLS) or IDLE (plain)
 *
 *   IDLE --first byte--> HEAD --no route / return / bad head--> LOCAL
 *                         |
 *                         +--new connection--> CONNECT --ok--> PROXY
 *                         |                      |  \--fails: next peer
 *                         |                      |     (CONNECT again)
 *                         |                      '--none left--> LOCAL
 *                         '--kept or pooled connection--------> PROXY
 *
 *   PROXY --response flushed, keep-alive-------------> IDLE
 *   PROXY --response flushed, closing----------------> LINGER
 *   PROXY --stale reused connection, retry-----------> CONNECT
 *   PROXY --upstream failed before the response head-> LOCAL (502/504)
 *   PROXY --validated 101 on a websocket route-------> UPGRADED (relay)
 *   UPGRADED --relay ended, client still open--------> LINGER
 *   NEW --a parked WebSocket brought back-------------> UPGRADED
 *
 *   any state --> CLOSING: freed at the end of the dispatch
 *
 * LOCAL -> IDLE when the answer keeps the connection, else LINGER.
 * LINGER: after a closing answer the write side is shut down and input is
 * read and dropped for a short while (nginx's lingering close), so a client
 * still sending a body gets our answer instead of a TCP reset. LINGER ->
 * CLOSING on EOF or when its timer ends.
 */
#ifndef SW_PROXY_INT_H
#define SW_PROXY_INT_H

#include <shockwave/buf.h>
#include <shockwave/conf.h>
#include <shockwave/conn.h>
#include <shockwave/fanout.h>
#include <shockwave/http.h>
#include <shockwave/io.h>
#include <shockwave/metrics.h>
#include <shockwave/plugin_host.h>
#include <shockwave/proxy.h>
#include <shockwave/relay.h>
#include <shockwave/route.h>
#include <shockwave/slab.h>
#include <shockwave/upstream.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <pthread.h>

/* The worker's runtime state for one configuration snapshot. */
struct sw_wconf {
    struct sw_conf *cf;      /* ref: the snapshot */
    struct sw_upstream *ups; /* owned: cf->nupstreams runtime pools */
    unsigned refs;           /* sessions using it + 1 while current */
    struct sw_worker *w;     /* borrowed: owner */

    /* owned array of borrowed slots (w->metrics): for cf->routes[i], the
     * series of its name */
    struct sw_metrics_route **mroutes;
};

struct sw_listener {
    int fd;                       /* owned: listening socket */
    struct event ev;              /* readable: accept (epoll) */
    struct sw_ring_op *accept_op; /* owned: the multishot accept on the
                                     worker's ring; NULL on epoll */
    struct event retry_ev;        /* the ring's accept again after a backoff */
    bool accept_failing;          /* the last accept ran out of fds/memory */
    char port[8];                 /* local port as text ($server_port) */
    bool tls;                     /* `listen ... tls`: terminate TLS */
    bool proxy_protocol;          /* `listen ... proxy_protocol` */
    struct sw_worker *w;          /* borrowed: owning worker */
    struct sw_listener *next;     /* owned: next listener */
};

struct sw_session;
struct sw_parked;

struct sw_worker {
    unsigned id;                     /* 0..workers-1 */
    struct event_base *base;         /* owned: this thread's loop */
    struct sw_ring *ring;            /* owned: io_uring engine, or NULL */
    struct sw_krelay_lazy krelay;    /* owned: the kernel relay, loaded on
                                        first use */
    struct sw_buf_pool bufs;         /* buffers for every session */
    struct sw_buf_pool bufs_x4;      /* 4x larger: reads that grew */
    struct sw_buf_pool bufs_x16;     /* 16x larger, for streams */
    struct sw_metrics metrics;       /* this worker's counters */
    struct sw_wconf *wconf;          /* ref: current snapshot state */
    struct sw_listener *listeners;   /* owned */
    struct sw_session *sessions;     /* borrowed: live sessions list */
    size_t nsessions;                /* entries in sessions */
    pthread_mutex_t post_lock;       /* guards pending_conf, drain_posted */
    struct sw_conf *pending_conf;    /* ref: posted, not yet adopted */
    bool drain_posted;               /* posted, not yet started */
    int post_fd;                     /* owned: eventfd the main thread writes */
    struct event post_ev;            /* readable post_fd: adopt posts */
    struct event drain_timer;        /* shutdown_timeout expiry */
    bool draining;                   /* no accepts; close when idle */
    uint64_t request_seq;            /* for $request_id */
    uint64_t id_seed;                /* random per worker, $request_id */
    struct sw_pipe_pool pipes;       /* pipes for splice() */
    struct sw_ws_rng rng;            /* WebSocket mask keys */
    struct sw_relay_env relay_env;   /* what relays borrow from us */
    struct sw_session *reap;         /* borrowed: closed, free at end */
    struct event reap_ev;            /* frees closed sessions */
    struct sw_parked *parked;        /* owned: parked WebSockets (their
                                        sessions count in nsessions) */
    size_t nparked;                  /* entries in parked */
    struct sw_slab parked_slab;      /* where struct sw_parked live */
    struct sw_slab session_slab;     /* where sessions live */
    struct sw_slab relay_slab;       /* where relays live */
    struct event park_sweep;         /* parks idle relays, wakes due ones */
    struct sw_fanout *fanout;        /* owned: this worker's fan-out side */
    struct sw_plugin_worker plugins; /* the plugins' worker states */
    size_t parked_since_trim;        /* parks since the last malloc_trim */
    uint64_t trimmed_ms;             /* when that was */
};

enum sw_proxy_state {
    SW_PROXY_NEW = 0,   /* accepted, nothing armed yet */
    SW_PROXY_PROXYHDR,  /* reading the PROXY protocol header */
    SW_PROXY_HANDSHAKE, /* transport handshake (TLS) in progress */
    SW_PROXY_IDLE,      /* waiting for a request's first byte */
    SW_PROXY_HEAD,      /* reading a request head */
    SW_PROXY_LOCAL,     /* sending an answer of our own */
    SW_PROXY_CONNECT,   /* connecting to an upstream peer */
    SW_PROXY_PROXY,     /* request and response in flight */
    SW_PROXY_UPGRADED,  /* handed to the WebSocket relay */
    SW_PROXY_LINGER,    /* answer sent; dropping input before close */
    SW_PROXY_CLOSING,   /* closed; freed at the end of the dispatch */
};

/*
 * The session's flags word (HAProxy's CO_FL_*): what is true of the
 * request and response in flight. Printed by sw__proxy_show_flags().
 */
enum sw_session_flag {
    SW_SESS_F_REUSED = 1u << 0,           /* u came from keep-alive */
    SW_SESS_F_RETRIED = 1u << 1,          /* a stale reuse was retried */
    SW_SESS_F_HEAD_SENT = 1u << 2,        /* uhead fully written */
    SW_SESS_F_CLIENT_KEEPALIVE = 1u << 3, /* keep after this response */
    SW_SESS_F_REQ_DONE = 1u << 4,         /* whole body forwarded */
    SW_SESS_F_SENT_CONTINUE = 1u << 5,    /* we answered 100 ourselves */
    SW_SESS_F_RESP_HEAD_DONE = 1u << 6,   /* final head sent to client */
    SW_SESS_F_RESP_CHUNK_OUT = 1u << 7,   /* re-encode chunked to client */
    SW_SESS_F_RESP_KEEPALIVE = 1u << 8,   /* upstream reusable after */
    SW_SESS_F_RESP_DONE = 1u << 9,        /* whole body queued to client */
    SW_SESS_F_CLOSE_AFTER = 1u << 10,     /* close client when flushed */
    SW_SESS_F_WS_UPGRADE = 1u << 11,      /* a validated WebSocket upgrade
                                             was forwarded */
    SW_SESS_F_RESP_STARTED = 1u << 12,    /* a response byte arrived */
    SW_SESS_F_IDEMPOTENT = 1u << 13,      /* RFC 9110 9.2.2 method */
    SW_SESS_F_PLUGIN_ANSWER = 1u << 14,   /* the answer is a plugin's */
    SW_SESS_F_WAIT_SENT = 1u << 15,       /* an upgrade head waits until
                                             the client's queued sends are
                                             out (io_uring: a hand-over
                                             takes it off the ring) */
};

/* Headers kept per request or response head: a fixed array on the stack. */
#define SW_PROXY_MAX_HEADERS 256

/* Room kept in an output buffer for a chunk line and its CRLF when a body
 * is re-encoded as chunks, and the chunk line's own scratch size. */
#define SW_PROXY_CHUNK_FRAMING 32
#define SW_PROXY_CHUNK_LINE 24

/* Room for the last chunk "0\r\n\r\n" and a little slack. */
#define SW_PROXY_LAST_CHUNK 8

/* "host:port" text of either end, for the relay's logs. */
#define SW_PROXY_ADDR_TEXT 64

/* Room a flags print needs. */
#define SW_SESS_FLAGS_TEXT 192

struct sw_session {
    struct sw_worker *w;       /* borrowed: owning worker */
    struct sw_wconf *wc;       /* ref: snapshot state at accept */
    struct sw_listener *l;     /* borrowed: where it was accepted */
    enum sw_proxy_state state; /* see the diagram above */
    unsigned flags;            /* SW_SESS_F_* */
    uint64_t id;               /* connection number, for logs */
    struct sw_conn c;          /* client connection */
    struct sw_conn u;          /* upstream connection (fd -1 if none) */
    char raddr[48];            /* client address text */
    char rport[8];             /* client port text */
    char real_addr[48];        /* the request's client address from a
                                  trusted front (proxy_realip.c), or empty:
                                  then it is raddr */
    /* The request in flight. */
    const struct sw_conf_route *route;  /* borrowed (wc->cf) */
    struct sw_upstream *up;             /* borrowed (wc->ups) */
    struct sw_upstream_peer *peer;      /* borrowed: chosen peer */
    uint64_t tried;                     /* peers tried (bitmask) */
    struct sw_upstream_peer *kept_peer; /* borrowed: between requests, u
                                           is an idle connection to it,
                                           kept for the next request if
                                           that picks the same peer */
    struct sw_buf *uhead;               /* owned: serialised request
                                           head, kept for a retry */
    char hash_key[128];                 /* copy: balance hash key */
    size_t hash_key_len;                /* bytes in hash_key */
    int method_id;                      /* http-parser method */
    unsigned version_minor;             /* client's HTTP/1.x */
    enum sw_http_body req_body;         /* request framing */
    uint64_t req_remaining;             /* LENGTH bytes left */
    struct sw_http_chunked req_chunked; /* CHUNKED decoder */
    uint64_t req_body_bytes;            /* body bytes so far (413) */
    uint64_t max_body;                  /* limit for this request */
    /* The response in flight. */
    enum sw_http_body resp_body;             /* upstream framing */
    uint64_t resp_remaining;                 /* LENGTH bytes left */
    struct sw_http_chunked resp_chunked;     /* CHUNKED decoder */
    unsigned status;                         /* status sent (access log) */
    uint64_t bytes_out;                      /* body bytes to the client */
    uint64_t started_ms;                     /* request start, access log */
    uint64_t t_start_us;                     /* request start (metrics); 0
                                                once its duration is counted */
    uint64_t t_upstream_us;                  /* CONNECT: connect start; PROXY:
                                                head sent (0 until then) */
    struct sw_metrics_route *m_active;       /* borrowed (w->metrics): counted
                                                in its requests_active until
                                                the exchange ends; or NULL */
    char request_id[40];                     /* X-Request-Id sent upstream */
    char log_req[256];                       /* "GET /x HTTP/1.1" for logs */
    uint64_t linger_until_ms;                /* LINGER: hard deadline */
    char ws_key[32];                         /* the upgrade's
                                                Sec-WebSocket-Key */
    size_t ws_key_len;                       /* bytes in ws_key */
    struct sw_relay *relay;                  /* owned: after the 101 */
    struct sw_plugin_sess *plug;             /* owned: the plugins' side, on a
                                                route with plugins; NULL else */
    const struct sw_plugin_request *plug_rq; /* borrowed (start_request's
                                                stack): while it runs */
    struct sw_session *prev;                 /* borrowed: worker list */
    struct sw_session *next;                 /* borrowed: worker list */
    struct sw_session *reap_next;            /* borrowed: reap list */
};

/*
 * A parked WebSocket (proxy_park.c): an upgraded session whose relay sat
 * idle for the route's ws_park_after, reduced to its two sockets, one read
 * event on each and what the session and relay must remember. The session,
 * the relay and the connection ends' events are freed meanwhile; the next
 * byte on either socket, or the relay's next deadline, brings them back.
 */
struct sw_parked {
    struct event ev[2];                /* readable: [0] client, [1] upstream */
    struct sw_io io[2];                /* owned: their sockets and transports */
    struct sw_worker *w;               /* borrowed */
    struct sw_wconf *wc;               /* ref: the session's snapshot state */
    struct sw_listener *l;             /* borrowed */
    const struct sw_conf_route *route; /* borrowed (wc->cf) */
    struct sw_upstream *up;            /* borrowed (wc->ups) */
    struct sw_upstream_peer *peer;     /* borrowed */
    uint64_t id;                       /* the session's number */
    unsigned flags;                    /* the session's SW_SESS_F_* */
    char raddr[48];                    /* client address text */
    char rport[8];                     /* client port text */
    struct sw_relay_parked relay;      /* the relay's state */
    struct sw_plugin_sess *plug;       /* owned: the session's, or NULL */
    struct sw_parked *prev;            /* borrowed: worker list */
    struct sw_parked *next;
};

static inline bool
has(const struct sw_session *p, unsigned flag)
{
    return (p->flags & flag) != 0;
}

static inline void
set_flag(struct sw_session *p, unsigned flag, bool on)
{
    p->flags = on ? p->flags | flag : p->flags & ~flag;
}

/* The request's client address: a trusted front's, else the peer's. */
static inline const char *
client_addr(const struct sw_session *p)
{
    return p->real_addr[0] != '\0' ? p->real_addr : p->raddr;
}

static inline const struct sw_conf *
conf_of(const struct sw_session *p)
{
    return p->wc->cf;
}

/* A route's timeout, else its upstream's. */
static inline uint64_t
route_or(uint64_t route_ms, uint64_t upstream_ms)
{
    return route_ms != 0 ? route_ms : upstream_ms;
}

/* proxy_realip.c: p->real_addr for this request (empty unless the peer
 * is a trusted front that named another address) */
void sw__proxy_realip(struct sw_session *p, const struct sw_http_request *r);

/* worker.c */
void sw__proxy_wconf_unref(struct sw_wconf *wc);
void sw__proxy_session_closed(struct sw_session *p);
/* Give back memory the worker no longer needs (see worker.c); called by
 * the park sweep with the sessions it just parked. */
void sw__proxy_worker_tidy(struct sw_worker *w, uint64_t now, size_t parks);

/* worker.c: a socket accept4 (or the ring's accept) gave on l: a session,
 * or closed at max_client_connections. Takes ownership of fd. */
void sw__proxy_accepted(struct sw_worker *w, struct sw_listener *l, int fd,
                        const struct sockaddr *sa);

/* worker_ring.c: a listener's accepts on the worker's io_uring ring */
/* Accept through the ring (false: the worker has no ring, or multishot
 * accept cannot start: the caller accepts on libevent). */
bool sw__proxy_listener_ring_start(struct sw_listener *l);
/* Stop accepting through the ring: the multishot accept is cancelled and
 * its last completion reaped, so l's socket may be closed and l freed. */
void sw__proxy_listener_ring_stop(struct sw_listener *l);

/* proxy_session.c: lifecycle, events, the phase loop */
void sw__proxy_session_start(struct sw_worker *w, struct sw_listener *l, int fd,
                             const struct sockaddr *sa);
void sw__proxy_session_free(struct sw_session *p);
/* A session on the worker's list (not counted in nsessions), both ends
 * initialised without a socket, holding a reference on wc. NULL on ENOMEM
 * (counted). */
struct sw_session *sw__proxy_session_alloc(struct sw_worker *w,
                                           struct sw_listener *l,
                                           struct sw_wconf *wc);
/* Take p off the worker's list. */
void sw__proxy_session_unlink(struct sw_session *p);
void sw__proxy_session_drain(struct sw_session *p, bool force);
void sw__proxy_set_state(struct sw_session *p, enum sw_proxy_state to);
void sw__proxy_close(struct sw_session *p);
void sw__proxy_run(struct sw_session *p);
void sw__proxy_run_io(struct sw_session *p, bool client_side);
ssize_t sw__proxy_read(struct sw_session *p, struct sw_conn *c);
void sw__proxy_next_request(struct sw_session *p, bool keep);
void sw__proxy_relay_done(struct sw_session *p);
const char *sw__proxy_show_flags(unsigned flags, char *out, size_t n);

/* proxy_request.c: request head, routing, upgrade check, request body */
struct sw_route_vars sw__proxy_vars(const struct sw_session *p,
                                    struct sw_str host, struct sw_str target);
enum sw_status sw__proxy_phase_head(struct sw_session *p);
bool sw__proxy_pump_request_body(struct sw_session *p);

/* proxy_upstream.c: pick, connect, reuse, keep, release */
void sw__proxy_connect_next(struct sw_session *p);
void sw__proxy_connect_failed(struct sw_session *p, bool timeout,
                              const char *why);
bool sw__proxy_retry_stale(struct sw_session *p);
bool sw__proxy_flush_upstream(struct sw_session *p);
void sw__proxy_upstream_release(struct sw_session *p, bool reusable);
void sw__proxy_upstream_keep(struct sw_session *p);
void sw__proxy_kept_release(struct sw_session *p, bool to_pool);
extern const struct sw_conn_handlers sw__proxy_upstream_handlers;

/* proxy_response.c: response heads and bodies, the hand-over to the relay */
bool sw__proxy_pump_response(struct sw_session *p);
/* Put p's two ends under a relay: a new one (saved NULL) or a parked one
 * brought back. NULL on ENOMEM. */
struct sw_relay *sw__proxy_relay_begin(struct sw_session *p,
                                       uint8_t rsv_allowed,
                                       const struct sw_relay_parked *saved);
void sw__proxy_request_done(struct sw_session *p);

/* proxy_fanout.c: a fan-out route's upgrade goes to its channel; ws_key
 * is the Sec-WebSocket-Key written into the head toward the channel's
 * upstream (the gateway's own, not the client's). */
void sw__proxy_fanout_join(struct sw_session *p,
                           const struct sw_http_request *r, struct sw_str path,
                           struct sw_str host, const char *ws_key);

/* proxy_plugin.c: the route's plugins at the session's phase boundaries.
 * _request runs the request hooks (false: the request was answered);
 * _pick the plugins' server choice (NULL: let the balancer choose);
 * _log_fields their access-log fields (f->n = 0 when none). */
bool sw__proxy_plugins_request(struct sw_session *p,
                               const struct sw_http_request *r,
                               struct sw_str path, struct sw_str host,
                               struct sw_plugin_request *rq);
struct sw_upstream_peer *sw__proxy_plugins_pick(struct sw_session *p);
void sw__proxy_plugins_log_fields(struct sw_session *p,
                                  struct sw_plugin_log_fields *f);

/* proxy_park.c: parking idle WebSockets */
void sw__proxy_park_init(struct sw_worker *w);
void sw__proxy_park_watch(struct sw_worker *w);
void sw__proxy_unpark_all(struct sw_worker *w);
void sw__proxy_park_fini(struct sw_worker *w);

/* proxy_metrics.c: the session's labelled series */
struct sw_metrics_route *sw__proxy_route_metrics(const struct sw_session *p);
void sw__proxy_metrics_start(struct sw_session *p);
void sw__proxy_metrics_answered(struct sw_session *p, unsigned status,
                                bool from_upstream);
void sw__proxy_metrics_done(struct sw_session *p, bool answered,
                            uint64_t now_us);
void sw__proxy_metrics_peer(struct sw_session *p);
void sw__proxy_metrics_connected(struct sw_session *p);
void sw__proxy_metrics_head_sent(struct sw_session *p);
void sw__proxy_metrics_first_byte(struct sw_session *p);

/* proxy_local.c: answers the gateway writes itself, access log */
void sw__proxy_respond_local(struct sw_session *p, unsigned status,
                             const char *body, size_t body_len, bool keep,
                             const char *why, const char *extra);
void sw__proxy_respond_error(struct sw_session *p, unsigned status,
                             const char *why);
void sw__proxy_upstream_failed(struct sw_session *p, unsigned status,
                               const char *why);
void sw__proxy_request_body_failed(struct sw_session *p, unsigned status,
                                   const char *why);
/* The exchange is over and answered: its duration counted and its
 * access-log line written, from one clock read. */
void sw__proxy_exchange_done(struct sw_session *p);

#endif
