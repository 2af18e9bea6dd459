/*
 * swload.h - declarations shared by the parts of swload.
 *
 * swload is one program with several commands:
 *
 *   swload echo    HTTP/1.1 + WebSocket test backend (swload_server.c,
 *                  swload_server_http.c, swload_server_ws.c)
 *   swload sink    WebSocket server that discards messages (the same)
 *   swload client  WebSocket load scenarios (swload_client.c)
 *   swload broadcast  WebSocket backend sending to every connection it
 *                  holds, time-stamped (swload_bcast.c)
 *   swload subscribe  many WebSocket receivers: delivery latency and
 *                  order (swload_client.c with swload_sub.c)
 *
 *   swload.c ------- main, command line helpers, address parsing
 *   swload_http.c -- tolerant HTTP request head parser, chunked decoder
 *   swload_ws.c ---- WebSocket pieces built on lib/ws (shockwave/ws.h)
 *   swload_hist.c -- log-bucket latency histogram
 *
 * Owns nothing itself. Threading: every object here belongs to one thread
 * (one event_base per thread); nothing is shared between threads except the
 * atomic connection counter of the server.
 */
#ifndef SWLOAD_H
#define SWLOAD_H

#include <shockwave/core.h>
#include <shockwave/http.h>
#include <shockwave/ws.h>

#include <sys/socket.h>

#define SWLOAD_MAX_HEADERS 128 /* request headers kept per head */
#define SWLOAD_MAX_HEAD 65536  /* request head bytes before 431 */
#define SWLOAD_MAX_LISTENS 16  /* --listen options per process */
#define SWLOAD_MAX_ADDRS 64    /* --source-addrs entries */

/* ---- swload.c: command line helpers ---------------------------------- */

/* Parse "127.0.0.1:9000" or "[::1]:9000" (numeric only). Returns SW_OK or
 * SW_EINVAL. */
enum sw_status swload_addr_parse(const char *text, struct sockaddr_storage *ss,
                                 socklen_t *len);

/* Format an address as "127.0.0.1:9000" / "[::1]:9000" into out. */
void swload_addr_format(const struct sockaddr *sa, char *out, size_t cap);

/* Parse a decimal unsigned number that fills the whole string. */
bool swload_parse_u64(const char *s, uint64_t *out);

/* Raise RLIMIT_NOFILE to its hard limit; returns the new soft limit. */
uint64_t swload_raise_nofile(void);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t swload_now_ns(void);

/* Split "ws://HOST:PORT/PATH" into the address to connect to, the Host
 * header value (host[hostcap]) and the request path (path[pathcap], "/"
 * when absent). Returns SW_OK or SW_EINVAL. */
enum sw_status swload_url_parse(const char *url, struct sockaddr_storage *dst,
                                socklen_t *dstlen, char *host, size_t hostcap,
                                char *path, size_t pathcap);

/* Parse "127.0.0.2,127.0.0.3,::1" into out[0..cap) (port 0), appending
 * after the *n entries already there. Returns SW_OK or SW_EINVAL. */
enum sw_status swload_addrs_parse(const char *list,
                                  struct sockaddr_storage *out, size_t cap,
                                  size_t *n);

/* ---- swload_http.c: request heads and chunked bodies ------------------ */

/* A request head as the test backend sees it: tolerant (bare LF accepted,
 * no Host required), every header kept in received order. */
struct swload_req {
    struct sw_str method; /* borrowed (head buffer): "GET" */
    struct sw_str target; /* borrowed: request-target as sent */
    struct sw_str path;   /* borrowed: target without query */
    unsigned minor;       /* HTTP/1.<minor> */
    struct sw_http_header hdrs[SWLOAD_MAX_HEADERS]; /* borrowed slices */
    size_t nhdrs;                                   /* filled entries of hdrs */
    size_t head_len;           /* bytes of the head incl. blank line */
    enum sw_http_body body;    /* NONE, LENGTH or CHUNKED */
    uint64_t content_length;   /* with SW_HTTP_BODY_LENGTH */
    bool keep_alive;           /* per version and Connection */
    bool expect_continue;      /* Expect: 100-continue */
    bool ws_upgrade;           /* Upgrade: websocket + Connection */
    struct sw_str ws_key;      /* borrowed: Sec-WebSocket-Key */
    struct sw_str ws_protocol; /* borrowed: first offered subprotocol */
};

/*
 * Decode a request head from p[0..len).
 * Returns SW_OK (r filled, r->head_len bytes used), SW_AGAIN (incomplete),
 * SW_ETOOBIG (head or header count over the limits) or SW_EPROTO (garbage).
 */
enum sw_status swload_req_decode(struct swload_req *r, const char *p,
                                 size_t len);

/* Resumable tolerant chunked-body decoder (RFC 9112 section 7.1). */
struct swload_chunked {
    int state;          /* private: where in the chunk grammar we are */
    uint64_t remaining; /* private: data bytes left in this chunk */
    uint64_t total;     /* data bytes decoded so far */
};

void swload_chunked_init(struct swload_chunked *ch);

/*
 * Consume chunked bytes from in[0..len); *consumed bytes were used and
 * *data is the payload slice found inside them (possibly empty).
 * Returns SW_AGAIN (more to come), SW_OK (body ended; bytes after it are not
 * consumed) or SW_EPROTO (bad framing).
 */
enum sw_status swload_chunked_decode(struct swload_chunked *ch, const char *in,
                                     size_t len, size_t *consumed,
                                     struct sw_str *data);

/* Reason phrase for a status code ("Not Found"); "Unknown" if none. */
const char *swload_reason(unsigned status);

/* ---- swload_ws.c: reading frames ------------------------------------- */

/* Frame reading state of one connection. */
struct swload_frames {
    struct sw_ws_decoder dec;       /* header decoder (caller inits it) */
    struct sw_ws_frame fr;          /* the frame being read / just read */
    bool in_frame;                  /* fr's payload is being read */
    uint64_t pay_left;              /* payload bytes of fr still to come */
    uint8_t ctl[SW_WS_MAX_CONTROL]; /* first payload bytes, unmasked */
    size_t ctl_len;                 /* bytes in ctl */
};

/*
 * Consume input from *p (*len bytes), advancing both. Returns 1 when a
 * whole frame was read (f->fr its header, f->ctl its first bytes; call
 * again for the rest of the input), 0 when the input is used up (a frame
 * may be incomplete), -1 on an RFC 6455 violation (f->dec.close_code).
 */
int swload_frames_next(struct swload_frames *f, const uint8_t **p, size_t *len);

/* ---- swload_hist.c: latency histogram --------------------------------- */

#define SWLOAD_HIST_BUCKETS 512 /* log buckets: 16 per power of two */

/* Latencies in nanoseconds, bucketed logarithmically (16 sub-buckets per
 * power of two, so a percentile is within about 4.5% of the truth). */
struct swload_hist {
    uint64_t counts[SWLOAD_HIST_BUCKETS]; /* samples per bucket */
    uint64_t n;                           /* samples in total */
    uint64_t min;                         /* smallest sample */
    uint64_t max;                         /* largest sample */
    double sum;                           /* sum of samples (for the mean) */
};

void swload_hist_init(struct swload_hist *h);
void swload_hist_add(struct swload_hist *h, uint64_t ns);
/* Add every sample of src into dst. */
void swload_hist_merge(struct swload_hist *dst, const struct swload_hist *src);
/* Value (ns) at quantile q in [0, 1]; 0 when empty. */
uint64_t swload_hist_quantile(const struct swload_hist *h, double q);

/* ---- swload_sub.c: what `swload subscribe` checks per message ---------- */

/* Order state of one receiving connection. */
struct swload_sub_conn {
    uint64_t next_seq; /* sequence number expected next; 0 before the first */
};

/* Counters of one thread's receivers (merged at the end). */
struct swload_sub_stats {
    uint64_t deliveries; /* messages received while measuring */
    uint64_t missed;     /* sequence numbers skipped (gaps), summed */
    uint64_t gaps;       /* times a gap was seen */
    uint64_t reordered;  /* messages older than one already received */
    uint64_t bad;        /* messages too short to carry seq and time */
};

/*
 * One whole data message of payload_len bytes, whose first bytes (at
 * least 16 when payload_len >= 16) are in p[0..n), received at now_ns.
 * Updates the order state always; counts and adds the latency to hist only
 * when hist is not NULL (while measuring).
 */
void swload_sub_message(struct swload_sub_stats *st, struct swload_sub_conn *sc,
                        const uint8_t *p, size_t n, uint64_t payload_len,
                        uint64_t now_ns, struct swload_hist *hist);

void swload_sub_merge(struct swload_sub_stats *dst,
                      const struct swload_sub_stats *src);

/* ---- swload_report.c: what the client commands print ----------------- */

/* The figures of one client run (one phase), threads merged. */
struct swload_result {
    uint64_t size;               /* payload bytes per message */
    double secs;                 /* measured seconds */
    uint64_t msgs;               /* completed messages / pings (sent for tp) */
    uint64_t bytes;              /* payload bytes */
    uint64_t acked;              /* throughput: frames the sink confirmed */
    uint64_t opened;             /* connections that opened */
    uint64_t errors;             /* failures */
    uint64_t dropped;            /* connections lost while running */
    double connect_s;            /* until every connection was open */
    struct swload_sub_stats sub; /* subscribe: merged counters */
    struct swload_hist hist;     /* merged latencies */
};

/* A human table (unless json_only), then one JSON line, for a run of
 * `conns` connections of the named scenario. The subscribe scenario has
 * columns of its own (deliveries, gaps, connect time). */
void swload_report(const char *scenario, uint64_t conns,
                   const struct swload_result *r, bool json_only);

/* ---- commands ---------------------------------------------------------- */

/* `swload echo` (sink false) and `swload sink` (sink true). */
int swload_server_main(int argc, char **argv, bool sink);

/* `swload client`, and `swload subscribe` (subscribe true: the subscribe
 * scenario, --clients for --connections). */
int swload_client_main(int argc, char **argv, bool subscribe);

/* `swload broadcast`. */
int swload_bcast_main(int argc, char **argv);

#endif
