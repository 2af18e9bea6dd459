/*
 * net.c - loopback client connections and listeners, the response reader
 * and the helpers for echo bodies, metrics and test patterns (see net.h).
 * The fake upstreams are in fake.c.
 *
 * Invariants: c->buf always holds the bytes read from c->fd and not yet
 * consumed by a response, so responses are taken strictly in order; every
 * wait is a poll() with a deadline.
 */
#include "net.h"

#include <check.h>

#include <shockwave/core.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD (64 * 1024)
#define FILL_CHUNK (64 * 1024)


static void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        abort();
    }
    return q;
}

static void
loopback(struct sockaddr_in *sa, int port)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

int
sw_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        abort();
    }
    struct sockaddr_in sa;
    loopback(&sa, 0);
    socklen_t sl = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        abort();
    }
    close(fd);
    return ntohs(sa.sin_port);
}

int
sw_test_connect(int port, int timeout_ms)
{
    return sw_test_connect_addr("127.0.0.1", port, NULL, timeout_ms);
}

int
sw_test_connect_addr(const char *ip, int port, const char *src, int timeout_ms)
{
    struct sockaddr_in sa, from;
    loopback(&sa, port);
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
        return -1;
    }
    loopback(&from, 0);
    if (src != NULL && inet_pton(AF_INET, src, &from.sin_addr) != 1) {
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -1;
    }
    if (src != NULL && bind(fd, (struct sockaddr *)&from, sizeof(from)) != 0) {
        close(fd);
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        struct pollfd pfd = {fd, POLLOUT, 0};
        int err = 0;
        socklen_t el = sizeof(err);
        if (poll(&pfd, 1, timeout_ms) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 ||
            err != 0) {
            close(fd);
            return -1;
        }
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

bool
sw_test_conn_open(struct sw_test_conn *c, int port)
{
    return sw_test_conn_open_addr(c, "127.0.0.1", port, NULL);
}

bool
sw_test_conn_open_addr(struct sw_test_conn *c, const char *ip, int port,
                       const char *src)
{
    memset(c, 0, sizeof(*c));
    c->timeout_ms = 5000;
    c->fd = sw_test_connect_addr(ip, port, src, c->timeout_ms);
    return c->fd >= 0;
}

int
sw_test_conn_local_port(const struct sw_test_conn *c)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    if (getsockname(c->fd, (struct sockaddr *)&sa, &sl) != 0) {
        return -1;
    }
    return ntohs(sa.sin_port);
}

void
sw_test_conn_close(struct sw_test_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = 0;
    c->cap = 0;
}

bool
sw_test_conn_send(struct sw_test_conn *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        struct pollfd pfd = {c->fd, POLLOUT, 0};
        int pr = poll(&pfd, 1, c->timeout_ms);
        if (pr < 0 && errno == EINTR) {
            continue;
        }
        if (pr != 1) {
            /* No room for c->timeout_ms: the peer stopped reading. */
            errno = pr == 0 ? ETIMEDOUT : errno;
            return false;
        }
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return false;
        }
        s += w;
        n -= (size_t)w;
    }
    return true;
}

bool
sw_test_conn_sendf(struct sw_test_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return false;
    }
    bool ok = sw_test_conn_send(c, s, (size_t)n);
    free(s);
    return ok;
}

ssize_t
sw_test_conn_fill(struct sw_test_conn *c, int timeout_ms)
{
    if (c->eof || c->fd < 0) {
        return 0;
    }
    if (c->cap - c->len < FILL_CHUNK + 1) {
        c->cap = c->len + FILL_CHUNK + 1;
        c->buf = xrealloc(c->buf, c->cap);
    }
    for (;;) {
        struct pollfd pfd = {c->fd, POLLIN, 0};
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr < 0 && errno == EINTR) {
            continue;
        }
        if (pr != 1) {
            return -1;
        }
        ssize_t r = recv(c->fd, c->buf + c->len, FILL_CHUNK, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (r <= 0) {
            /* EOF or reset: both end the stream. */
            c->eof = true;
            c->buf[c->len] = '\0';
            return 0;
        }
        c->len += (size_t)r;
        c->buf[c->len] = '\0';
        return r;
    }
}

static void
consume(struct sw_test_conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    if (c->buf != NULL) {
        c->buf[c->len] = '\0';
    }
}

/* Make sure at least n bytes are buffered. */
static bool
need(struct sw_test_conn *c, size_t n)
{
    while (c->len < n) {
        if (sw_test_conn_fill(c, c->timeout_ms) <= 0) {
            return false;
        }
    }
    return true;
}

/* Index of the first CRLF at or after `from`, filling as needed; -1 when
 * the stream ends or `limit` bytes pass without one. */
static long
need_line(struct sw_test_conn *c, size_t from, size_t limit)
{
    for (;;) {
        if (c->len > from) {
            char *p = memmem(c->buf + from, c->len - from, "\r\n", 2);
            if (p != NULL) {
                return p - c->buf;
            }
        }
        if (c->len - from > limit) {
            return -1;
        }
        if (sw_test_conn_fill(c, c->timeout_ms) <= 0) {
            return -1;
        }
    }
}

static void
body_put(struct sw_test_conn *c, struct sw_test_resp *r, const char *p,
         size_t n)
{
    r->body_total += n;
    if (c->body_cb != NULL) {
        c->body_cb((const uint8_t *)p, n, c->body_arg);
        return;
    }
    r->body = xrealloc(r->body, r->body_len + n + 1);
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
}

/* Stream exactly n body bytes. */
static bool
body_take(struct sw_test_conn *c, struct sw_test_resp *r, uint64_t n)
{
    while (n > 0) {
        if (c->len == 0 && !need(c, 1)) {
            return false;
        }
        size_t k = c->len < n ? c->len : (size_t)n;
        body_put(c, r, c->buf, k);
        consume(c, k);
        n -= k;
    }
    return true;
}

static bool
read_chunked(struct sw_test_conn *c, struct sw_test_resp *r)
{
    for (;;) {
        long eol = need_line(c, 0, 1024);
        if (eol < 0) {
            return false;
        }
        char *end = NULL;
        errno = 0;
        unsigned long long size = strtoull(c->buf, &end, 16);
        if (end == c->buf || errno != 0 ||
            (end != c->buf + eol && *end != ';' && *end != ' ' &&
             *end != '\t')) {
            return false;
        }
        consume(c, (size_t)eol + 2);
        if (size == 0) {
            break;
        }
        if (!body_take(c, r, size) || !need(c, 2) ||
            memcmp(c->buf, "\r\n", 2) != 0) {
            return false;
        }
        consume(c, 2);
    }
    /* Trailer section: lines until an empty one. */
    for (;;) {
        long eol = need_line(c, 0, 8192);
        if (eol < 0) {
            return false;
        }
        consume(c, (size_t)eol + 2);
        if (eol == 0) {
            return true;
        }
    }
}

static bool
parse_head(struct sw_test_resp *r)
{
    r->hbuf = strdup(r->head);
    if (r->hbuf == NULL) {
        abort();
    }
    char *line = r->hbuf;
    char *eol = strstr(line, "\r\n");
    if (eol == NULL) {
        return false;
    }
    *eol = '\0';
    if (strncmp(line, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)line[7]) ||
        line[8] != ' ' || !isdigit((unsigned char)line[9]) ||
        !isdigit((unsigned char)line[10]) ||
        !isdigit((unsigned char)line[11]) ||
        (line[12] != ' ' && line[12] != '\0')) {
        return false;
    }
    r->minor = line[7] - '0';
    r->status = atoi(line + 9);
    line = eol + 2;
    while (*line != '\0') {
        eol = strstr(line, "\r\n");
        if (eol == NULL) {
            return false;
        }
        *eol = '\0';
        if (line[0] == '\0') {
            break;
        }
        char *colon = strchr(line, ':');
        if (colon == NULL || colon == line || r->nhdr >= SW_TEST_MAX_HEADERS) {
            return false;
        }
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') {
            v++;
        }
        char *ve = v + strlen(v);
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
            *--ve = '\0';
        }
        for (char *n = line; *n != '\0'; n++) {
            if (*n <= ' ' || *n == 0x7f) {
                return false;
            }
        }
        r->hdr[r->nhdr].name = line;
        r->hdr[r->nhdr].value = v;
        r->nhdr++;
        line = eol + 2;
    }
    return true;
}

int
sw_test_conn_read_resp(struct sw_test_conn *c, struct sw_test_resp *r,
                       bool head_req)
{
    memset(r, 0, sizeof(*r));
    char *end;
    for (;;) {
        end = c->len > 0 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (end != NULL) {
            break;
        }
        if (c->len > MAX_HEAD) {
            return -1;
        }
        ssize_t n = sw_test_conn_fill(c, c->timeout_ms);
        if (n == 0 && c->len == 0) {
            return 0;
        }
        if (n <= 0) {
            return -1;
        }
    }
    r->head_len = (size_t)(end - c->buf) + 4;
    r->head = strndup(c->buf, r->head_len);
    if (r->head == NULL) {
        abort();
    }
    consume(c, r->head_len);
    if (!parse_head(r)) {
        return -1;
    }
    r->body = calloc(1, 1);
    if (r->body == NULL) {
        abort();
    }
    if (head_req || (r->status >= 100 && r->status < 200) ||
        r->status == 204 || r->status == 304) {
        r->framing = SW_TEST_FRAMING_NONE;
        return 1;
    }
    const char *te = sw_test_resp_header(r, "Transfer-Encoding");
    if (te != NULL) {
        if (strcasecmp(te, "chunked") != 0 ||
            sw_test_resp_header_count(r, "Transfer-Encoding") != 1 ||
            sw_test_resp_header(r, "Content-Length") != NULL) {
            return -1;
        }
        r->framing = SW_TEST_FRAMING_CHUNKED;
        return read_chunked(c, r) ? 1 : -1;
    }
    const char *cl = sw_test_resp_header(r, "Content-Length");
    if (cl != NULL) {
        if (sw_test_resp_header_count(r, "Content-Length") != 1) {
            return -1;
        }
        char *e = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &e, 10);
        if (e == cl || *e != '\0' || errno != 0) {
            return -1;
        }
        r->framing = SW_TEST_FRAMING_LENGTH;
        return body_take(c, r, n) ? 1 : -1;
    }
    r->framing = SW_TEST_FRAMING_CLOSE;
    for (;;) {
        if (c->len > 0) {
            body_put(c, r, c->buf, c->len);
            consume(c, c->len);
        }
        ssize_t n = sw_test_conn_fill(c, c->timeout_ms);
        if (n == 0) {
            return 1;
        }
        if (n < 0) {
            return -1;
        }
    }
}

bool
sw_test_conn_closed(struct sw_test_conn *c, int timeout_ms)
{
    if (c->len > 0) {
        return false;
    }
    if (c->eof) {
        return true;
    }
    ssize_t n = sw_test_conn_fill(c, timeout_ms);
    return n == 0;
}

bool
sw_test_conn_read_all(struct sw_test_conn *c, int timeout_ms)
{
    uint64_t deadline = sw_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t now = sw_now_ms();
        if (now >= deadline) {
            return false;
        }
        ssize_t n = sw_test_conn_fill(c, (int)(deadline - now));
        if (n == 0) {
            if (c->buf == NULL) {
                c->cap = 1;
                c->buf = xrealloc(NULL, 1);
                c->buf[0] = '\0';
            }
            return true;
        }
        if (n < 0) {
            return false;
        }
    }
}

void
sw_test_resp_free(struct sw_test_resp *r)
{
    free(r->head);
    free(r->hbuf);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

const char *
sw_test_resp_header(const struct sw_test_resp *r, const char *name)
{
    for (size_t i = 0; i < r->nhdr; i++) {
        if (strcasecmp(r->hdr[i].name, name) == 0) {
            return r->hdr[i].value;
        }
    }
    return NULL;
}

size_t
sw_test_resp_header_count(const struct sw_test_resp *r, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nhdr; i++) {
        if (strcasecmp(r->hdr[i].name, name) == 0) {
            n++;
        }
    }
    return n;
}

int
sw_test_http_once(int port, const char *req, struct sw_test_resp *r)
{
    struct sw_test_conn c;
    memset(r, 0, sizeof(*r));
    if (!sw_test_conn_open(&c, port)) {
        return -1;
    }
    int rc = -1;
    if (sw_test_conn_send(&c, req, strlen(req))) {
        bool head = strncmp(req, "HEAD ", 5) == 0;
        do {
            sw_test_resp_free(r);
            rc = sw_test_conn_read_resp(&c, r, head);
        } while (rc == 1 && r->status >= 100 && r->status < 200);
    }
    sw_test_conn_close(&c);
    return rc;
}

int
sw_test_conn_request(struct sw_test_conn *c, const char *req,
                     struct sw_test_resp *r)
{
    memset(r, 0, sizeof(*r));
    if (!sw_test_conn_send(c, req, strlen(req))) {
        return -1;
    }
    bool head = strncmp(req, "HEAD ", 5) == 0;
    int rc;
    do {
        sw_test_resp_free(r);
        rc = sw_test_conn_read_resp(c, r, head);
    } while (rc == 1 && r->status >= 100 && r->status < 200);
    return rc;
}

bool
sw_test_pattern_ok(uint64_t off, const uint8_t *p, size_t n)
{
    unsigned v = (unsigned)(off % 251);
    for (size_t i = 0; i < n; i++) {
        if (p[i] != v) {
            return false;
        }
        v = v == 250 ? 0 : v + 1;
    }
    return true;
}

void
sw_test_pattern_fill(uint64_t off, uint8_t *p, size_t n)
{
    unsigned v = (unsigned)(off % 251);
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)v;
        v = v == 250 ? 0 : v + 1;
    }
}

int
sw_test_http_get(int port, const char *host, const char *path,
                 struct sw_test_resp *r)
{
    char req[2048];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
             host);
    return sw_test_http_once(port, req, r);
}

/* Walk the header lines of an echo body; returns the n-th match or the
 * count when want < 0. */
static int
echo_walk(const char *body, const char *name, int want, char **value)
{
    size_t nlen = strlen(name);
    int count = 0;
    const char *line = strchr(body, '\n');
    while (line != NULL) {
        line++;
        const char *eol = strchr(line, '\n');
        size_t llen = eol != NULL ? (size_t)(eol - line) : strlen(line);
        if (llen > 0 && line[llen - 1] == '\r') {
            llen--;
        }
        if (llen == 0) {
            break;
        }
        if (llen > nlen && strncasecmp(line, name, nlen) == 0 &&
            line[nlen] == ':') {
            if (count == want) {
                const char *v = line + nlen + 1;
                while (*v == ' ' && v < line + llen) {
                    v++;
                }
                *value = strndup(v, (size_t)(line + llen - v));
                return count;
            }
            count++;
        }
        line = eol;
    }
    return count;
}

char *
sw_test_echo_header(const char *body, const char *name)
{
    char *v = NULL;
    if (body != NULL) {
        echo_walk(body, name, 0, &v);
    }
    return v;
}

int
sw_test_echo_count(const char *body, const char *name)
{
    char *v = NULL;
    return body != NULL ? echo_walk(body, name, -1, &v) : 0;
}

char *
sw_test_metrics_fetch(int admin_port)
{
    struct sw_test_resp r;
    char *text = NULL;
    if (sw_test_http_get(admin_port, "127.0.0.1", "/metrics", &r) == 1 &&
        r.status == 200) {
        text = r.body;
        r.body = NULL;
    }
    sw_test_resp_free(&r);
    return text != NULL ? text : strdup("");
}

long long
sw_test_metric_in(const char *text, const char *name)
{
    size_t nlen = strlen(name);
    bool labelled = strchr(name, '{') != NULL;
    long long sum = -1;
    const char *line = text;
    while (line != NULL && *line != '\0') {
        if (line[0] != '#' && strncmp(line, name, nlen) == 0 &&
            (line[nlen] == ' ' || (!labelled && line[nlen] == '{'))) {
            /* the value follows the last space of the sample line */
            const char *end = strchr(line, '\n');
            const char *v = line + nlen;
            for (const char *q = v; *q != '\0' && q != end; q++) {
                if (*q == ' ') {
                    v = q;
                }
            }
            sum = (sum < 0 ? 0 : sum) + strtoll(v + 1, NULL, 10);
            if (labelled) {
                return sum;
            }
        }
        line = strchr(line, '\n');
        if (line != NULL) {
            line++;
        }
    }
    return sum;
}

long long
sw_test_metric(int admin_port, const char *name)
{
    char *text = sw_test_metrics_fetch(admin_port);
    long long v = sw_test_metric_in(text, name);
    free(text);
    return v;
}

size_t
sw_test_count(const char *hay, size_t len, const char *needle)
{
    size_t n = 0;
    size_t nl = strlen(needle);
    const char *p = hay;
    const char *end = hay + len;
    while (p < end) {
        const char *hit = memmem(p, (size_t)(end - p), needle, nl);
        if (hit == NULL) {
            break;
        }
        n++;
        p = hit + nl;
    }
    return n;
}

int
sw_test_listen_loopback(int backlog, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in sa;
    loopback(&sa, 0);
    socklen_t sl = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(fd, backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

void
sw_test_expect_echo(const char *body, const char *name, const char *want)
{
    char *v = sw_test_echo_header(body, name);
    int n = sw_test_echo_count(body, name);
    ck_assert_msg(n == 1 && v != NULL && strcmp(v, want) == 0,
                  "%s upstream: want one \"%s\", got %d, first \"%s\"\n%s",
                  name, want, n, v != NULL ? v : "(absent)", body);
    free(v);
}
