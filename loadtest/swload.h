/*
 * swload.h - declarations shared by the parts of swload.
 *
 * swload is one program with several commands:
 *
 *   swload echo    HTTP/1.1 + WebSocket test backend (swload_server.c)
 *   swload sink    WebSocket server that discards messages (swload_server.c)
 *   swload client  WebSocket load scenarios (swload_client.c)
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

/* ---- commands ---------------------------------------------------------- */

/* `swload echo` (sink false) and `swload sink` (sink true). */
int swload_server_main(int argc, char **argv, bool sink);

/* `swload client`. */
int swload_client_main(int argc, char **argv);

#endif
