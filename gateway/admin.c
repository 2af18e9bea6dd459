/*
 * admin.c - the admin listener (`admin 127.0.0.1:9901;`), on the main
 * thread: GET /metrics (Prometheus text format 0.0.4, summed over workers:
 * admin_metrics.c), GET /healthz, and GET /status and /status.json
 * (admin_status.c), and POST /publish (admin_publish.c). One short
 * request per connection; the answer closes it. Meant for loopback or a
 * management network only: it has no auth.
 *
 * A request head is at most ADMIN_REQ_MAX bytes. Only /publish has a body:
 * once its head is accepted, the Content-Length bytes are read into a
 * buffer grown as they come, to SW_GATEWAY_PUBLISH_MAX at most. The 5 s
 * timeout is per read, as for the head.
 */
#include "gateway.h"
#include "json.h"

#include <shockwave/log.h>
#include <shockwave/metrics.h>

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#define ADMIN_REQ_MAX 2048

#define ADMIN_BODY_FIRST 16384 /* first size of a body buffer */

struct admin_conn {
    struct sw_gateway *g;           /* borrowed */
    int fd;                         /* owned */
    struct event *ev;               /* owned: readable or timeout */
    size_t len;                     /* bytes in req */
    char req[ADMIN_REQ_MAX];        /* request head so far */
    struct sw_gateway_publish *pub; /* owned: an accepted /publish head,
                                       NULL before */
    char *body;                     /* owned: its body so far */
    size_t body_len;                /* bytes in body */
    size_t body_cap;                /* bytes at body */
};

static void
admin_conn_free(struct admin_conn *a)
{
    /* Bytes the client sent that were not read would make close() reset
     * the connection, which can destroy the answer before the client
     * reads it: read away what is already here. */
    char sink[4096];
    for (int i = 0; i < 64 && recv(a->fd, sink, sizeof(sink), 0) > 0; i++) {
    }
    event_free(a->ev);
    close(a->fd);
    free(a->body);
    free(a->pub);
    free(a);
}

void
sw_gateway_admin_send(int fd, const char *p, size_t n)
{
    /* Small answers to a local client: a blocking send is fine here. */
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EAGAIN) {
                struct timeval tv = {0, 1000};
                select(0, NULL, NULL, NULL, &tv);
                continue;
            }
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

void
sw_gateway_admin_answer_with(int fd, unsigned status, const char *reason,
                             const char *type, const char *extra,
                             const char *body, size_t len)
{
    char head[320];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %u %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                     "%sConnection: close\r\n\r\n",
                     status, reason, type, len, extra);
    sw_gateway_admin_send(fd, head, SW_MIN((size_t)n, sizeof(head) - 1));
    sw_gateway_admin_send(fd, body, len);
}

void
sw_gateway_admin_answer(int fd, unsigned status, const char *reason,
                        const char *type, const char *body, size_t len)
{
    sw_gateway_admin_answer_with(fd, status, reason, type, "", body, len);
}

void
sw_gateway_admin_answer_json(int fd, unsigned status, const char *reason,
                             const struct sw_json *j)
{
    if (j->failed) {
        sw_gateway_admin_answer(fd, 500, "Internal Server Error", "text/plain",
                                "out of memory\n", 14);
    } else {
        sw_gateway_admin_answer(fd, status, reason, "application/json", j->buf,
                                j->len);
    }
}

static void
answer(int fd, unsigned status, const char *reason, const char *body,
       size_t len)
{
    sw_gateway_admin_answer(fd, status, reason, "text/plain", body, len);
}

static void
serve_metrics(struct sw_gateway *g, int fd)
{
    struct sw_metrics_out o = {0};
    if (sw_gateway_metrics_text(g, &o) != SW_OK) {
        sw_log_error("admin: out of memory for /metrics");
        answer(fd, 503, "Service Unavailable", "out of memory\n", 14);
    } else {
        sw_gateway_admin_answer(fd, 200, "OK",
                                "text/plain; version=0.0.4; charset=utf-8", o.p,
                                o.len);
    }
    free(o.p);
}

/* Room for more of a publish body, grown to what is still to come. */
static bool
body_room(struct admin_conn *a)
{
    if (a->body_len < a->body_cap) {
        return true;
    }
    size_t cap = a->body_cap > 0 ? a->body_cap * 2 : ADMIN_BODY_FIRST;
    cap = SW_MIN(cap, a->pub->body_len);
    char *nb = realloc(a->body, cap);
    if (nb == NULL) {
        return false;
    }
    a->body = nb;
    a->body_cap = cap;
    return true;
}

/* Read the body of an accepted /publish; publish it once complete. True
 * when the connection is done (answered, or gone). */
static bool
read_body(struct admin_conn *a, int fd)
{
    while (a->body_len < a->pub->body_len) {
        if (!body_room(a)) {
            sw_log_error("admin: out of memory for a /publish body");
            answer(fd, 503, "Service Unavailable", "out of memory\n", 14);
            return true;
        }
        ssize_t n =
            recv(fd, a->body + a->body_len, a->body_cap - a->body_len, 0);
        if (n <= 0) {
            return n == 0 || errno != EAGAIN;
        }
        a->body_len += (size_t)n;
    }
    sw_gateway_publish_body(a->g, fd, a->pub, a->body);
    return true;
}

/* A complete /publish head in a->req: check it, then take the body bytes
 * that came with it. True when the connection is done. */
static bool
start_publish(struct admin_conn *a, int fd)
{
    a->pub = malloc(sizeof(*a->pub));
    if (a->pub == NULL) {
        sw_log_error("admin: out of memory for a /publish request");
        answer(fd, 503, "Service Unavailable", "out of memory\n", 14);
        return true;
    }
    if (!sw_gateway_publish_head(a->g, fd, a->req, a->len, a->pub)) {
        return true;
    }
    size_t have = SW_MIN(a->len - a->pub->head_len, a->pub->body_len);
    if (have > 0) {
        a->body = malloc(have);
        if (a->body == NULL) {
            sw_log_error("admin: out of memory for a /publish body");
            answer(fd, 503, "Service Unavailable", "out of memory\n", 14);
            return true;
        }
        memcpy(a->body, a->req + a->pub->head_len, have);
        a->body_len = a->body_cap = have;
    }
    return read_body(a, fd);
}

static void
on_admin_read(evutil_socket_t fd, short what, void *arg)
{
    struct admin_conn *a = arg;
    if (what & EV_TIMEOUT) {
        admin_conn_free(a);
        return;
    }
    if (a->pub != NULL) {
        if (read_body(a, fd)) {
            admin_conn_free(a);
        }
        return;
    }
    ssize_t n = recv(fd, a->req + a->len, sizeof(a->req) - 1 - a->len, 0);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        admin_conn_free(a);
        return;
    }
    a->len += (size_t)n;
    a->req[a->len] = '\0';
    if (strstr(a->req, "\r\n\r\n") == NULL) {
        if (a->len == sizeof(a->req) - 1) {
            answer(fd, 431, "Request Header Fields Too Large", "", 0);
            admin_conn_free(a);
        }
        return;
    }
    if (sw_gateway_publish_is(a->req)) {
        if (start_publish(a, fd)) {
            admin_conn_free(a);
        }
        return;
    }
    if (strncmp(a->req, "GET /metrics ", 13) == 0) {
        serve_metrics(a->g, fd);
    } else if (strncmp(a->req, "GET /status ", 12) == 0) {
        sw_gateway_status_page(a->g, fd);
    } else if (strncmp(a->req, "GET /status.json ", 17) == 0) {
        sw_gateway_status_json(a->g, fd);
    } else if (strncmp(a->req, "GET /healthz ", 13) == 0) {
        answer(fd, 200, "OK", "ok\n", 3);
    } else {
        answer(fd, 404, "Not Found", "not found\n", 10);
    }
    admin_conn_free(a);
}

static void
on_admin_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct sw_gateway *g = arg;
    SW_UNUSED(what);
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        return;
    }
    struct admin_conn *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        close(fd);
        return;
    }
    a->g = g;
    a->fd = fd;
    a->ev = event_new(g->base, fd, EV_READ | EV_PERSIST, on_admin_read, a);
    struct timeval tv = {5, 0};
    if (a->ev == NULL) {
        close(fd);
        free(a);
    } else if (event_add(a->ev, &tv) != 0) {
        admin_conn_free(a);
    }
}

enum sw_status
sw_gateway_admin_start(struct sw_gateway *g)
{
    if (g->cf->admin == NULL) {
        return SW_OK;
    }
    g->admin_fd = sw_gateway_listen_socket(g->cf->admin, false);
    if (g->admin_fd < 0) {
        return SW_ERROR;
    }
    g->admin_ev = event_new(g->base, g->admin_fd, EV_READ | EV_PERSIST,
                            on_admin_accept, g);
    if (g->admin_ev == NULL || event_add(g->admin_ev, NULL) != 0) {
        return SW_ERROR;
    }
    return SW_OK;
}

void
sw_gateway_admin_stop(struct sw_gateway *g)
{
    if (g->admin_ev != NULL) {
        event_free(g->admin_ev);
        g->admin_ev = NULL;
    }
    if (g->admin_fd >= 0) {
        close(g->admin_fd);
        g->admin_fd = -1;
    }
}
