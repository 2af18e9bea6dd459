/*
 * proxy_int.h - private structures of the proxy module: the worker, its
 * per-snapshot state and the client session.
 *
 * Session states (changed only through set_state() in proxy.c, which asserts
 * the transition; the edges are those of transition_ok()):
 *
 *   accept --TLS listener--> HANDSHAKE --done--> IDLE
 *   accept --plain listener--------------------> IDLE
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
#include <shockwave/http.h>
#include <shockwave/io.h>
#include <shockwave/metrics.h>
#include <shockwave/proxy.h>
#include <shockwave/relay.h>
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
};

struct sw_listener {
    int fd;                   /* owned: listening socket */
    struct event ev;          /* readable: accept */
    char port[8];             /* local port as text ($server_port) */
    bool tls;                 /* `listen ... tls`: terminate TLS */
    struct sw_worker *w;      /* borrowed: owning worker */
    struct sw_listener *next; /* owned: next listener */
};

struct sw_session;

struct sw_worker {
    unsigned id;                   /* 0..workers-1 */
    struct event_base *base;       /* owned: this thread's loop */
    struct sw_buf_pool bufs;       /* buffers for every session */
    struct sw_metrics metrics;     /* this worker's counters */
    struct sw_wconf *wconf;        /* ref: current snapshot state */
    struct sw_listener *listeners; /* owned */
    struct sw_session *sessions;   /* borrowed: live sessions list */
    size_t nsessions;              /* entries in sessions */
    pthread_mutex_t post_lock;     /* guards pending_conf, drain_posted */
    struct sw_conf *pending_conf;  /* ref: posted, not yet adopted */
    bool drain_posted;             /* posted, not yet started */
    int post_fd;                   /* owned: eventfd the main thread writes */
    struct event post_ev;          /* readable post_fd: adopt posts */
    struct event drain_timer;      /* shutdown_timeout expiry */
    bool draining;                 /* no accepts; close when idle */
    uint64_t request_seq;          /* for $request_id */
    uint64_t id_seed;              /* random per worker, $request_id */
    struct sw_pipe_pool pipes;     /* pipes for splice() */
    struct sw_ws_rng rng;          /* WebSocket mask keys */
    struct sw_relay_env relay_env; /* what relays borrow from us */
    struct sw_session *reap;       /* borrowed: closed, free at end */
    struct event reap_ev;          /* frees closed sessions */
};

enum sw_proxy_state {
    SW_PROXY_HANDSHAKE = 0, /* transport handshake (TLS) in progress */
    SW_PROXY_IDLE,          /* waiting for a request's first byte */
    SW_PROXY_HEAD,          /* reading a request head */
    SW_PROXY_LOCAL,         /* sending an answer of our own */
    SW_PROXY_CONNECT,       /* connecting to an upstream peer */
    SW_PROXY_PROXY,         /* request and response in flight */
    SW_PROXY_UPGRADED,      /* handed to the WebSocket relay */
    SW_PROXY_LINGER,        /* answer sent; dropping input before close */
    SW_PROXY_CLOSING,       /* closed; freed at the end of the dispatch */
};

/* One side of a session: the client or the upstream connection. */
struct sw_side {
    struct sw_io io;       /* fd (owned, -1 when none) and transport */
    struct event rev;      /* readable */
    struct event wev;      /* writable */
    struct event timer;    /* this side's deadline */
    bool rev_on;           /* rev is added */
    bool wev_on;           /* wev is added */
    bool eof;              /* peer sent FIN */
    bool read_wants_write; /* last recv waits for writability (TLS) */
    bool write_wants_read; /* last send waits for readability (TLS) */
    struct sw_buf *in;     /* owned (pool): bytes read from this side */
    struct sw_buf *out;    /* owned (pool): bytes to write to it */
};

struct sw_session {
    struct sw_worker *w;       /* borrowed: owning worker */
    struct sw_wconf *wc;       /* ref: snapshot state at accept */
    struct sw_listener *l;     /* borrowed: where it was accepted */
    enum sw_proxy_state state; /* see the diagram above */
    uint64_t id;               /* connection number, for logs */
    struct sw_side c;          /* client connection */
    struct sw_side u;          /* upstream connection (fd -1 if none) */
    char raddr[48];            /* client address text */
    char rport[8];             /* client port text */
    /* The request in flight. */
    const struct sw_conf_route *route;  /* borrowed (wc->cf) */
    struct sw_upstream *up;             /* borrowed (wc->ups) */
    struct sw_upstream_peer *peer;      /* borrowed: chosen peer */
    uint64_t tried;                     /* peers tried (bitmask) */
    bool reused;                        /* u came from keep-alive */
    struct sw_upstream_peer *kept_peer; /* borrowed: between requests, u
                                           is an idle connection to it,
                                           kept for the next request if
                                           that picks the same peer */
    struct sw_buf *uhead;               /* owned: serialised request
                                           head, kept for a retry */
    bool head_sent;                     /* uhead fully written */
    char hash_key[128];                 /* copy: balance hash key */
    size_t hash_key_len;
    int method_id;                      /* http-parser method */
    unsigned version_minor;             /* client's HTTP/1.x */
    bool client_keepalive;              /* keep after this response */
    enum sw_http_body req_body;         /* request framing */
    uint64_t req_remaining;             /* LENGTH bytes left */
    struct sw_http_chunked req_chunked; /* CHUNKED decoder */
    uint64_t req_body_bytes;            /* body bytes so far (413) */
    uint64_t max_body;                  /* limit for this request */
    bool req_done;                      /* whole body forwarded */
    bool sent_continue;                 /* we answered 100 ourselves */
    /* The response in flight. */
    bool resp_head_done;                 /* final head sent to client */
    enum sw_http_body resp_body;         /* upstream framing */
    bool resp_chunk_out;                 /* re-encode chunked to client */
    uint64_t resp_remaining;             /* LENGTH bytes left */
    struct sw_http_chunked resp_chunked; /* CHUNKED decoder */
    bool resp_keepalive;                 /* upstream reusable after */
    bool resp_done;                      /* whole body queued to client */
    bool close_after;                    /* close client when flushed */
    unsigned status;                     /* status sent (access log) */
    uint64_t bytes_out;                  /* body bytes to the client */
    uint64_t started_ms;                 /* request start, access log */
    char request_id[40];                 /* X-Request-Id sent upstream */
    char log_req[256];                   /* "GET /x HTTP/1.1" for logs */
    uint64_t linger_until_ms;            /* LINGER: hard deadline */
    bool ws_upgrade;                     /* a validated WebSocket
                                            upgrade was forwarded */
    char ws_key[32];                     /* its Sec-WebSocket-Key */
    size_t ws_key_len;
    struct sw_relay *relay;       /* owned: after the 101 */
    struct sw_session *prev;      /* borrowed: worker list */
    struct sw_session *next;      /* borrowed: worker list */
    struct sw_session *reap_next; /* borrowed: reap list */
};

/* worker.c */
void sw__proxy_wconf_unref(struct sw_wconf *wc);
void sw__proxy_session_closed(struct sw_session *p);

/* proxy.c */
void sw__proxy_session_start(struct sw_worker *w, struct sw_listener *l, int fd,
                             const struct sockaddr *sa);
void sw__proxy_session_free(struct sw_session *p);
void sw__proxy_session_drain(struct sw_session *p, bool force);

#endif
