/*
 * net.h - loopback sockets, a strict HTTP/1.1 response reader and scripted
 * fake upstreams for the integration suites.
 *
 * Every blocking call here has a deadline (poll() before each read and
 * write), so a broken daemon makes a test fail, never hang.
 *
 * A `struct sw_test_conn` is one client connection with its own read buffer:
 * bytes read past one response stay there for the next one, which is what
 * pipelining tests need. Responses are parsed by the rules a client must
 * apply (RFC 9112 section 6.3): HEAD, 1xx, 204 and 304 have no body, then
 * Transfer-Encoding: chunked, then Content-Length, else read to close.
 *
 * The scripted fake upstreams (`struct sw_test_fake`) are declared in fake.h,
 * which this header includes.
 *
 * Threading: a conn belongs to one thread.
 */
#ifndef SW_TEST_NET_H
#define SW_TEST_NET_H

#include "fake.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
int sw_test_free_port(void);

/* Connect to 127.0.0.1:port; -1 on failure. Blocking fd, CLOEXEC. */
int sw_test_connect(int port, int timeout_ms);

/* The same to ip:port (IPv4 text, any of 127.0.0.0/8 for gateways on
 * addresses of their own), from source address src (NULL: the kernel's
 * choice). */
int sw_test_connect_addr(const char *ip, int port, const char *src,
                         int timeout_ms);

/* Called with each piece of a response body instead of storing it. */
typedef void (*sw_test_body_cb)(const uint8_t *p, size_t n, void *arg);

struct sw_test_conn {
    int fd;                  /* connected socket, -1 when closed */
    char *buf;               /* owned: bytes read but not consumed */
    size_t len;              /* bytes in buf */
    size_t cap;              /* capacity of buf */
    int timeout_ms;          /* per-operation deadline, default 5000 */
    bool eof;                /* the peer closed (or reset) */
    sw_test_body_cb body_cb; /* if set: bodies stream here, not stored */
    void *body_arg;          /* argument for body_cb */
};

enum sw_test_framing {
    SW_TEST_FRAMING_NONE = 0, /* no body by status or method */
    SW_TEST_FRAMING_LENGTH,   /* Content-Length */
    SW_TEST_FRAMING_CHUNKED,  /* Transfer-Encoding: chunked */
    SW_TEST_FRAMING_CLOSE,    /* read until close */
};

#define SW_TEST_MAX_HEADERS 64

struct sw_test_header {
    char *name;  /* borrowed (from the response's hbuf) */
    char *value; /* borrowed (from the response's hbuf), OWS trimmed */
};

struct sw_test_resp {
    int status;                     /* e.g. 200 */
    int minor;                      /* HTTP/1.<minor> */
    char *head;                     /* owned: raw head, NUL-terminated */
    size_t head_len;                /* bytes of the head incl. CRLFCRLF */
    char *hbuf;                     /* owned: parsed copy, headers point in */
    struct sw_test_header hdr[SW_TEST_MAX_HEADERS]; /* in order */
    size_t nhdr;                    /* entries in hdr */
    enum sw_test_framing framing;   /* how the body was delimited */
    char *body;                     /* owned: decoded body, NUL-terminated
                                       (empty when streamed to body_cb) */
    size_t body_len;                /* bytes in body */
    uint64_t body_total;            /* body bytes seen, stored or streamed */
};

/* Open a connection; false on failure. */
bool sw_test_conn_open(struct sw_test_conn *c, int port);
/* The same to ip:port from src (as sw_test_connect_addr). */
bool sw_test_conn_open_addr(struct sw_test_conn *c, const char *ip, int port,
                            const char *src);
/* The local (client side) port of an open connection. */
int sw_test_conn_local_port(const struct sw_test_conn *c);

/* Close the socket and free the buffer. Accepts a closed conn. */
void sw_test_conn_close(struct sw_test_conn *c);

/* Send all bytes (deadline c->timeout_ms); false on error. */
bool sw_test_conn_send(struct sw_test_conn *c, const void *p, size_t n);
bool sw_test_conn_sendf(struct sw_test_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Read more bytes into c->buf. Returns bytes read, 0 at EOF/reset, -1 on
 * timeout or error. */
ssize_t sw_test_conn_fill(struct sw_test_conn *c, int timeout_ms);

/*
 * Read one response. `head_req` means the request was HEAD (no body).
 * Interim 1xx responses are returned like any other (no body): the caller
 * reads again for the final one.
 * Returns 1 with r filled, 0 when the connection closed before any byte of
 * a response, -1 on timeout, malformed response or truncated body.
 * Free r with sw_test_resp_free() in every case.
 */
int sw_test_conn_read_resp(struct sw_test_conn *c, struct sw_test_resp *r,
                           bool head_req);

/* Wait up to timeout_ms for the peer to close. True when EOF or a reset came
 * with no byte before it; extra bytes are kept in c->buf and make it
 * false. */
bool sw_test_conn_closed(struct sw_test_conn *c, int timeout_ms);

/* Read until the peer closes (or timeout). Returns true at EOF; c->buf holds
 * everything (NUL-terminated). */
bool sw_test_conn_read_all(struct sw_test_conn *c, int timeout_ms);

void sw_test_resp_free(struct sw_test_resp *r);

/* First header of that name (case-insensitive), or NULL. */
const char *sw_test_resp_header(const struct sw_test_resp *r,
                                const char *name);
/* How many headers of that name. */
size_t sw_test_resp_header_count(const struct sw_test_resp *r,
                                 const char *name);

/*
 * One request on a fresh connection: send `req` verbatim, read one response
 * (skipping 1xx), close. Returns 1/0/-1 as sw_test_conn_read_resp.
 */
int sw_test_http_once(int port, const char *req, struct sw_test_resp *r);

/* Send `req` on an open connection and read the final response (1xx
 * skipped). Returns 1/0/-1 as sw_test_conn_read_resp. */
int sw_test_conn_request(struct sw_test_conn *c, const char *req,
                         struct sw_test_resp *r);

/* True when p[0..n) is the test pattern (byte i is i % 251) starting at
 * absolute offset `off`. */
bool sw_test_pattern_ok(uint64_t off, const uint8_t *p, size_t n);

/* Fill p[0..n) with the pattern starting at offset `off`. */
void sw_test_pattern_fill(uint64_t off, uint8_t *p, size_t n);

/* `GET path` with `Host: host` and Connection: close. */
int sw_test_http_get(int port, const char *host, const char *path,
                     struct sw_test_resp *r);

/*
 * In an echo body from `swload echo` (a request line, then one
 * "Name: value" line per received header, then a blank line), the value of
 * the first header `name` (case-insensitive) as a malloc'd string, or NULL.
 */
char *sw_test_echo_header(const char *body, const char *name);
/* How many headers named `name` the echo body lists. */
int sw_test_echo_count(const char *body, const char *name);
/* Fails the test unless the echo body lists exactly one `name`, valued
 * `want`. */
void sw_test_expect_echo(const char *body, const char *name,
                         const char *want);

/*
 * Value of `name` in an admin /metrics answer (Prometheus text), or -1
 * when absent. A bare family name ("shockwave_upstream_connects_total")
 * gives the sum of all its samples, whatever their labels; a name with
 * labels ("shockwave_http_responses_by_code_total{code=\"404\"}") the
 * sample with exactly that label set as printed.
 */
long long sw_test_metric(int admin_port, const char *name);

/* The whole /metrics body (malloc'd; "" on failure), and a value from such
 * a body (-1 when absent): several counters from one snapshot. */
char *sw_test_metrics_fetch(int admin_port);
long long sw_test_metric_in(const char *text, const char *name);

/* Count non-overlapping occurrences of needle in hay[0..len). */
size_t sw_test_count(const char *hay, size_t len, const char *needle);

/* A listening socket on 127.0.0.1 at a free port (*port), or -1. */
int sw_test_listen_loopback(int backlog, int *port);

#endif
