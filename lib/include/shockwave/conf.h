/*
 * conf.h - the configuration snapshot.
 *
 * A `struct sw_conf` is parsed from gateway.conf (nginx-style blocks: see
 * docs/configuration.md), validated as a whole, and then immutable. It is
 * reference counted: the daemon holds one reference for the current
 * configuration, and every live connection holds one for the snapshot it
 * started with, so a reload (SIGHUP) never changes what an accepted
 * connection sees.
 *
 *   sw_conf_load() --> refcnt 1 (daemon) --> sw_conf_ref() per connection
 *                         |                        |
 *                  reload: unref old          connection end: unref
 *                         \______ last unref frees everything ______/
 *
 * Ownership: a snapshot owns every string and array reachable from it; all
 * pointers inside are "owned (by the snapshot)". Upstream server addresses
 * are resolved once at load time. Every struct sw_str in a snapshot is also
 * NUL-terminated (p[len] == '\0'), so paths can go to open(2) as they are.
 *
 * Threading: immutable after load; ref/unref are atomic, so any worker thread
 * may hold and release references.
 */
#ifndef SHOCKWAVE_CONF_H
#define SHOCKWAVE_CONF_H

#include <shockwave/core.h>

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>

struct sw_upstream_state;
struct sw_plugin_chain;

/* Variables usable in header values ("$remote_addr"). */
enum sw_conf_var {
    SW_CONF_VAR_NONE = 0, /* literal text */
    SW_CONF_VAR_REMOTE_ADDR,
    SW_CONF_VAR_REMOTE_PORT,
    SW_CONF_VAR_SCHEME,
    SW_CONF_VAR_HOST,
    SW_CONF_VAR_REQUEST_ID,
    SW_CONF_VAR_REQUEST_URI,
    SW_CONF_VAR_SERVER_PORT,
    SW_CONF_VAR_REALIP_REMOTE_ADDR, /* the peer, before set_real_ip_from */
    /* Only in a fan-out key (`fanout KEY;`): */
    SW_CONF_VAR_URI,  /* the normalised path, without the query */
    SW_CONF_VAR_ARG,  /* $arg_NAME: a query argument (name in text) */
    SW_CONF_VAR_HTTP, /* $http_NAME: a request header (name in text,
                         "_" standing for "-", any case) */
};

/* One piece of a header value template: literal text or a variable. */
struct sw_conf_tpl_part {
    enum sw_conf_var var; /* SW_CONF_VAR_NONE for literal text */
    struct sw_str text;   /* owned: the literal; for ARG and HTTP the
                             name; empty for other variables */
};

struct sw_conf_tpl {
    struct sw_conf_tpl_part *parts; /* owned: nparts pieces in order */
    size_t nparts;                  /* pieces in parts */
};

enum sw_conf_edit_op {
    SW_CONF_EDIT_SET = 0, /* drop every header of that name, then add one */
    SW_CONF_EDIT_ADD,     /* append one more header */
    SW_CONF_EDIT_REMOVE,  /* drop every header of that name */
};

/* `request_header set X-Real-IP $remote_addr;` */
struct sw_conf_edit {
    enum sw_conf_edit_op op;  /* what to do */
    struct sw_str name;       /* owned: header name as written */
    struct sw_conf_tpl value; /* owned: empty for REMOVE */
};

struct sw_conf_listen {
    struct sw_str text;           /* owned: "127.0.0.1:8080" as written */
    struct sockaddr_storage addr; /* resolved address */
    socklen_t addrlen;            /* bytes of addr in use */
    int backlog;                  /* listen(2) backlog, default 511 */
    bool tls;                     /* `listen ADDR tls;`: TLS termination */
    bool proxy_protocol;          /* `listen ADDR proxy_protocol;`: a PROXY
                                     header (v1/v2) comes first */
};

struct sw_conf_server {
    struct sw_str text;           /* owned: "host:port" as written */
    struct sockaddr_storage addr; /* resolved at load time */
    socklen_t addrlen;            /* bytes of addr in use */
    unsigned weight;              /* weight=N, default 1 */
    unsigned max_fails;           /* max_fails=N, default 1; 0 = never */
    uint64_t fail_timeout_ms;     /* fail_timeout=T, default 10s */
    bool tls;                     /* `server HOST:PORT tls;`: connect
                                     with TLS (see the upstream's
                                     tls_verify, tls_ca) */

    bool backup;                     /* `server HOST:PORT backup;`: used only
                                        while every other server is down */
    struct sw_upstream_state *state; /* ref: up/down state shared by every
                                        worker, set by the daemon before the
                                        snapshot is shared (released by
                                        sw_conf.health_free); NULL = up */
};

enum sw_conf_check_type {
    SW_CONF_CHECK_HTTP = 0,  /* GET path, status within expect */
    SW_CONF_CHECK_TCP,       /* the connect alone */
    SW_CONF_CHECK_WEBSOCKET, /* an upgrade answered 101, then close */
};

/* `health_check interval=2s timeout=1s path=/healthz ...;` */
struct sw_conf_health_check {
    bool enabled;                 /* the directive is present */
    enum sw_conf_check_type type; /* type=http|tcp|websocket, default http */
    uint64_t interval_ms;         /* between two probes, default 2s */
    uint64_t timeout_ms;          /* a probe's deadline, default 1s */
    struct sw_str path;           /* owned: request target, "/healthz" */
    struct sw_str host;           /* owned: Host header; empty = the
                                     server's "host:port" as written */
    unsigned expect_lo;           /* expect=200-399: lowest good status */
    unsigned expect_hi;           /* highest good status */
    unsigned fall;                /* failures in a row to go down, 3 */
    unsigned rise;                /* successes in a row to go up, 2 */
};

enum sw_conf_balance {
    SW_CONF_BALANCE_ROUND_ROBIN = 0, /* smooth weighted round robin */
    SW_CONF_BALANCE_LEAST_CONN,      /* fewest active, weight-scaled */
    SW_CONF_BALANCE_HASH,            /* hash of hash_key, consistent */
};

enum sw_conf_hash_key {
    SW_CONF_HASH_REMOTE_ADDR = 0, /* `balance hash $remote_addr;` */
    SW_CONF_HASH_HEADER,          /* `balance hash header X-User;` */
};

struct sw_conf_upstream {
    struct sw_str name;             /* owned */
    struct sw_conf_server *servers; /* owned: nservers entries */
    size_t nservers;                /* at least 1 */
    enum sw_conf_balance balance;   /* default round robin */
    enum sw_conf_hash_key hash_key; /* with SW_CONF_BALANCE_HASH */
    struct sw_str hash_header;      /* owned: header name for HASH_HEADER */
    unsigned keepalive; /* idle connections kept per worker, default 32 */
    uint64_t keepalive_timeout_ms; /* idle upstream connection lifetime, default
                                      60s */
    uint64_t connect_timeout_ms;   /* default 5s */
    uint64_t read_timeout_ms;      /* default 60s */
    uint64_t send_timeout_ms;      /* default 60s */
    size_t index;                  /* position in sw_conf.upstreams */
    /* TLS toward servers flagged `tls` (see docs/tls.md). */
    bool tls_verify;               /* `tls_verify on|off;`, default on */
    struct sw_str tls_ca;          /* owned: CA bundle path (resolved
                                      against the file's folder); empty =
                                      the system's default CA store */
    struct sw_str tls_server_name; /* owned: SNI and name to verify; empty
                                      = the host part of each server */

    struct sw_conf_health_check hc; /* active health check (hc.enabled) */
    size_t nbackups;                /* servers flagged backup */
};

/* Header match in a route: `header X-Canary 1;` (value empty = presence). */
struct sw_conf_header_match {
    struct sw_str name;  /* owned */
    struct sw_str value; /* owned: exact value, case-sensitive; empty = any */
};

/* One statement inside `plugin NAME { ... }`, kept as written: the plugin
 * layer (lib/plugin) checks it against the plugin's own table. */
struct sw_conf_plugin_directive {
    struct sw_str name;  /* owned */
    struct sw_str *args; /* owned: nargs arguments, quotes resolved */
    size_t nargs;        /* entries in args */
    unsigned line;       /* position of the name, for errors */
    unsigned col;
};

/* `plugin NAME { ... }` in a route. */
struct sw_conf_plugin_block {
    struct sw_str name;                          /* owned: NAME */
    struct sw_conf_plugin_directive *directives; /* owned: in file order */
    size_t ndirectives;                          /* entries in directives */
    struct sw_str file; /* owned: the file the block is in */
    struct sw_str dir;  /* owned: that file's folder, "" = the current one */
    unsigned line;      /* position of `plugin` */
    unsigned col;
};

/* `load_plugin NAME [PATH];` at the top level. */
struct sw_conf_plugin_load {
    struct sw_str name; /* owned */
    struct sw_str path; /* owned: resolved against the file's folder;
                           empty = the default plugin folder */
    struct sw_str file; /* owned: the file of the directive */
    unsigned line;      /* its position */
    unsigned col;
};

enum sw_conf_ws_ping {
    SW_CONF_WS_PING_LOCAL = 0, /* the gateway answers pings itself */
    SW_CONF_WS_PING_FORWARD,   /* pings and pongs are relayed */
};

struct sw_conf_route {
    struct sw_str name;                      /* owned: `name NAME;`, default
                                                its position ("0", "1", ...);
                                                unique; the metrics label */
    struct sw_str *hosts;                    /* owned: nhosts names, lower case:
                                                "a.example.com", "*.example.com" */
    size_t nhosts;                           /* 0 = any host */
    struct sw_str path_prefix;               /* owned: default "/" */
    struct sw_conf_header_match *headers;    /* owned: all must match */
    size_t nheaders;                         /* entries in headers */
    const struct sw_conf_upstream *upstream; /* borrowed (from this snapshot);
                                               NULL only with `return` */
    int return_status;                  /* `return 200 "text";`: 0 = proxy */
    struct sw_str return_body;          /* owned: body for return */
    struct sw_conf_edit *request_edits; /* owned */
    size_t nrequest_edits;
    struct sw_conf_edit *response_edits; /* owned */
    size_t nresponse_edits;
    /* Per-route overrides: 0 = take the upstream's / global value. */
    uint64_t connect_timeout_ms;
    uint64_t read_timeout_ms;
    uint64_t send_timeout_ms;
    uint64_t max_body_size; /* 0 = global max_body_size */
    /* WebSocket (see docs/websocket.md). */
    bool websocket;               /* `websocket on;` default off */
    enum sw_conf_ws_ping ws_ping; /* default local */
    uint64_t ws_ping_interval_ms; /* 0 = no keepalive pings (default) */
    uint64_t ws_idle_timeout_ms;  /* default 0 = none */
    uint64_t ws_close_timeout_ms; /* default 5s */
    uint64_t ws_park_after_ms;    /* park when idle this long; 500ms, 0 off */
    uint64_t ws_max_message;      /* default 16m; 0 = unlimited */
    uint64_t ws_max_frame;        /* default 16m; 0 = unlimited */
    uint64_t ws_max_buffer; /* bytes buffered per direction, default 64k */
    uint64_t ws_splice_threshold; /* default 16k; 0 = never splice */
    bool ws_validate_utf8;        /* default off */
    bool ws_kernel_relay;         /* default: the main `ws_kernel_relay`
                                     (off); see docs/websocket.md */
    bool ws_kernel_relay_given;   /* set in the route itself */
    /* Fan-out (docs/fanout.md): clients whose key expands the same share
     * one upstream WebSocket. */
    bool fanout;                   /* `fanout KEY;` given */
    struct sw_conf_tpl fanout_key; /* owned: the key template */
    uint64_t fanout_linger_ms;     /* upstream kept after the last client:
                                      default 5s */
    uint64_t fanout_backlog;       /* bytes queued per client: default 1m */
    bool fanout_drop_client;       /* fanout_client_messages drop */
    bool fanout_slow_close;        /* fanout_slow close (1008); default drop
                                      (the oldest messages are missed) */
    bool fanout_reconnect;         /* default on */
    /* Plugins (docs/plugins.md), in file order. */
    struct sw_conf_plugin_block *plugins; /* owned */
    size_t nplugins;                      /* entries in plugins */
    struct sw_plugin_chain *plugin_chain; /* owned (by cf->plugins): set by
                                             sw_plugin_bind; NULL = none */
    size_t index;  /* position in sw_conf.routes (file order) */
    unsigned line; /* line of `route {` for logs */
};

/* TLS protocol versions, bits of sw_conf.tls_protocols. */
#define SW_CONF_TLS_V12 1u /* TLSv1.2 */
#define SW_CONF_TLS_V13 2u /* TLSv1.3 */

/* One server certificate: a `tls_certificate FILE;` and the
 * `tls_certificate_key FILE;` (and optional `tls_ocsp_response FILE;`) that
 * follow it. Paths are resolved against the including file's folder. */
struct sw_conf_tls_cert {
    struct sw_str cert;          /* owned: PEM, leaf first, chain after */
    struct sw_str key;           /* owned: PEM private key */
    struct sw_str ocsp_response; /* owned: DER OCSP response, or empty */
    struct sw_str file;          /* owned: config file of the directive */
    unsigned line;               /* line of `tls_certificate` */
    unsigned col;                /* column of `tls_certificate` */
};

/* One `set_real_ip_from` entry: a network (docs/configuration.md, "Real
 * client address"). A plain address is a /32 or /128. */
struct sw_conf_cidr {
    struct sw_str text; /* owned: as written, for `shockwave -T` */
    uint8_t addr[16];   /* network, host bits zero; IPv4 in the first 4 */
    uint8_t family;     /* AF_INET or AF_INET6 */
    uint8_t bits;       /* prefix length: 0..32 or 0..128 */
};

/* The I/O engine of the workers (`io_engine`, docs/configuration.md): read
 * at start; a reload keeps the engine the daemon started with. */
enum sw_io_engine { SW_IO_ENGINE_EPOLL = 0, SW_IO_ENGINE_IO_URING };

struct sw_conf {
    atomic_int refcnt;           /* see sw_conf_ref/unref */
    uint64_t generation;         /* set by the daemon: 1, 2, ... per reload */
    struct sw_str path;          /* owned: the file it was loaded from */
    unsigned workers;            /* 0 = auto (one per core) */
    enum sw_io_engine io_engine; /* `io_engine`, default epoll */
    bool ws_kernel_relay;        /* routes' default for `ws_kernel_relay` */
    struct sw_conf_listen *listens; /* owned: nlistens >= 1 */
    size_t nlistens;
    struct sw_conf_listen *admin; /* owned: `admin ADDR;` or NULL */
    struct sw_str error_log;      /* owned: "stderr" (default) or a path */
    int log_level;                /* enum sw_log_level, default info */
    struct sw_str access_log;     /* owned: "off" (default), "stderr" or path */
    bool access_log_json;         /* `access_log PATH json;`: JSON lines */
    struct sw_str user;           /* owned: `user NAME [GROUP];`, empty =
                                     none (see docs/operations.md) */
    struct sw_str group;          /* owned: GROUP, empty = NAME's group */
    /* The real client address from a trusted front (like nginx's realip). */
    struct sw_conf_cidr *real_ip_from; /* owned: `set_real_ip_from` lines */
    size_t nreal_ip_from;              /* entries; 0 = the feature is off */
    struct sw_str real_ip_header;      /* owned: default X-Forwarded-For */
    bool real_ip_recursive;            /* skip trusted hops, default off */
    /* Client side limits and timeouts (global). */
    size_t buffer_size;            /* pool buffer size, default 16k */
    size_t ws_pipe_size;           /* splice pipe capacity wanted, 1m */
    size_t max_header_bytes;       /* whole request head, default 16k (431) */
    size_t max_request_line;       /* default 8k (414) */
    size_t max_headers;            /* header count, default 100 (431) */
    uint64_t max_body_size;        /* default 1m (413); 0 = unlimited */
    size_t max_client_connections; /* per worker, default 10000 */
    uint64_t client_header_timeout_ms; /* default 10s (408) */
    uint64_t client_body_timeout_ms;   /* between body reads, default 60s */
    uint64_t keepalive_timeout_ms;     /* idle client keep-alive, default 75s */
    uint64_t send_timeout_ms;          /* to the client, default 60s */
    uint64_t shutdown_timeout_ms;      /* SIGTERM drain window, default 10s */
    struct sw_conf_upstream *upstreams; /* owned */
    size_t nupstreams;
    struct sw_conf_route *routes; /* owned, in file order */
    size_t nroutes;
    /* TLS termination (see docs/tls.md). */
    struct sw_conf_tls_cert *tls_certs; /* owned: in file order, the first
                                           is the default (no/unknown SNI) */
    size_t ntls_certs;                  /* entries in tls_certs */
    unsigned tls_protocols;             /* SW_CONF_TLS_* bits, default both */
    struct sw_str tls_ciphers;          /* owned: TLS 1.2 cipher list, default
                                           Mozilla "intermediate" */
    struct sw_str tls_ciphersuites;     /* owned: TLS 1.3 suites */
    uint64_t tls_ticket_rotate_ms;      /* ticket key lifetime, default 1h */
    uint64_t tls_session_cache;         /* sessions cached per worker,
                                           default 20480; 0 = off */
    uint64_t tls_handshake_timeout_ms;  /* default 10s (the proxy enforces) */
    /* The Redis bus between gateways (`fanout_bus`, docs/scaling.md):
     * bus_host empty = no bus. Read at start; a reload keeps the bus the
     * daemon started with. */
    struct sw_str bus_url;      /* owned: as written, for -T and logs */
    struct sw_str bus_host;     /* owned: host name or address */
    uint16_t bus_port;          /* default 6379 */
    unsigned bus_db;            /* /DB, default 0 (holder keys only) */
    struct sw_str bus_user;     /* owned: redis://USER:PASS@ (ACL), or "" */
    struct sw_str bus_password; /* owned: "" = no AUTH */
    struct sw_str bus_prefix;   /* owned: `fanout_bus_prefix`, "shockwave:" */
    uint64_t bus_lease_ms;      /* `fanout_bus_lease`, default 3s */
    struct sw_conf_plugin_load *plugin_loads; /* owned: load_plugin lines */
    size_t nplugin_loads;                     /* entries in plugin_loads */
    void *arena; /* owned: private allocation arena */
    /* TLS contexts built from this snapshot by the daemon (lib/tls sits
     * above conf, so conf only carries them): freed with the snapshot. */
    void *tls;                   /* owned: struct sw_tls_ctx or NULL */
    void (*tls_free)(void *tls); /* frees tls; NULL when none */
    /* The plugins' configured states (lib/plugin sits above conf):
     * released with the snapshot by plugins_free; NULL when none. */
    void *plugins;
    void (*plugins_free)(struct sw_conf *cf);
    /* Releases every server's state reference (the daemon's health
     * checker sets it with the states); NULL when none were set. */
    void (*health_free)(struct sw_conf *cf);
};

/*
 * Parse, validate and resolve the configuration at `path` (includes are
 * relative to the including file's folder).
 *
 * Returns a snapshot with refcnt 1, or NULL. On NULL, `err` (if not NULL)
 * holds every error found, one per line, each as
 *   "FILE:LINE:COL: message"
 * e.g. "gateway.conf:12:5: unknown directive \"listn\", did you mean
 * \"listen\"?". `err` is always NUL-terminated when errlen > 0.
 */
struct sw_conf *sw_conf_load(const char *path, char *err, size_t errlen);

/* The same from text in memory; `name` stands for the file name in errors
 * and `dir` is where includes are looked up (NULL: current folder). */
struct sw_conf *sw_conf_load_string(const char *text, const char *name,
                                    const char *dir, char *err, size_t errlen);

/* Take a reference. Returns cf. */
struct sw_conf *sw_conf_ref(struct sw_conf *cf);

/* Drop a reference; the last one frees the snapshot. Accepts NULL. */
void sw_conf_unref(struct sw_conf *cf);

/* Parse "64k", "16m", "1g", "512" into bytes. SW_OK or SW_EINVAL. */
enum sw_status sw_conf_parse_size(struct sw_str s, uint64_t *out);

/* Parse "250ms", "30s", "5m", "1h", "1d" (a bare number is seconds) into
 * milliseconds. SW_OK or SW_EINVAL. */
enum sw_status sw_conf_parse_duration(struct sw_str s, uint64_t *out_ms);

/*
 * Print the snapshot as a configuration file (`shockwave -T`): includes
 * expanded, every setting written out with its effective value, defaults
 * included, so that the output loads again as the same configuration. Paths
 * are printed as resolved at load time.
 */
void sw_conf_dump(const struct sw_conf *cf, FILE *out);

/* "192.0.2.0/24", "2001:db8::/32" or a plain address into *out (text is
 * not set). SW_OK or SW_EINVAL (bad address, prefix over the family's
 * width, bits set below the prefix are cleared, not refused). */
enum sw_status sw_conf_cidr_parse(struct sw_str s, struct sw_conf_cidr *out);

/* An IPv4 or IPv6 address (no port, no brackets, no spaces) into family and
 * addr[16]. False when it is not one. */
bool sw_conf_addr_parse(struct sw_str s, int *family, uint8_t addr[16]);

/* True when the address is in one of the n networks. */
bool sw_conf_cidr_match(const struct sw_conf_cidr *list, size_t n, int family,
                        const uint8_t addr[16]);

/* "epoll" or "io_uring", as `io_engine` spells it ("unknown" out of
 * range). */
const char *sw_conf_io_engine_name(enum sw_io_engine e);

/* Find an upstream by name; NULL if none. */
const struct sw_conf_upstream *sw_conf_find_upstream(const struct sw_conf *cf,
                                                     struct sw_str name);

#endif
