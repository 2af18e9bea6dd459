/*
 * wsfake.c - the scripted WebSocket upstream (see wsfake.h).
 *
 * Owns the listening socket, the connection being served and its read
 * buffer. Frames from the gateway are parsed with lib/ws (peer role CLIENT:
 * they must be masked); frames it sends are unmasked.
 *
 * Invariant: `in` holds the bytes read from the connection and not yet
 * taken as a whole frame; a frame is handled only once its header and whole
 * payload are there.
 */
#include "wsfake.h"
#include "net.h"
#include "support.h"

#include <shockwave/ws.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_MS 5000 /* per blocking read or write */
#define PIECE (64 * 1024)  /* pattern bytes per send */

/* One connection being served. */
struct wconn {
    int fd;             /* accepted socket, -1 once closed */
    uint8_t *in;        /* owned: bytes read, not yet a whole frame */
    size_t len;         /* bytes in in */
    size_t cap;         /* capacity of in */
    uint8_t *msg;       /* owned: fragments of the message in progress */
    size_t msg_len;     /* bytes in msg */
    bool in_msg;        /* a message started, its FIN not seen yet */
    bool msg_text;      /* it is a text message */
    uint64_t big_total; /* "head": payload length of the big frame */
    uint64_t big_sent;  /* its payload bytes sent so far */
};

static void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n != 0 ? n : 1);
    if (q == NULL) {
        abort();
    }
    return q;
}


/* Read more bytes; 1 on data, 0 at EOF or reset, -1 on timeout or stop. */
static int
wread(struct sw_test_wsfake *f, struct wconn *c, int timeout_ms)
{
    uint64_t deadline = sw_now_ms() + (uint64_t)timeout_ms;
    while (!atomic_load(&f->stop)) {
        if (sw_now_ms() >= deadline) {
            return -1;
        }
        struct pollfd pfd = {c->fd, POLLIN, 0};
        int pr = poll(&pfd, 1, 50);
        if (pr < 0 && errno != EINTR) {
            return 0;
        }
        if (pr <= 0) {
            continue;
        }
        if (c->cap - c->len < PIECE) {
            c->cap = c->len + 2 * PIECE;
            c->in = xrealloc(c->in, c->cap);
        }
        ssize_t n = recv(c->fd, c->in + c->len, c->cap - c->len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n <= 0) {
            return 0;
        }
        c->len += (size_t)n;
        return 1;
    }
    return -1;
}

static bool
wsend(int fd, const void *p, size_t n)
{
    const uint8_t *s = p;
    while (n > 0) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        if (poll(&pfd, 1, IO_TIMEOUT_MS) != 1) {
            return false;
        }
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* Send pattern bytes [from, to) of the big frame's payload. */
static bool
send_pattern(int fd, uint64_t from, uint64_t to)
{
    uint8_t buf[PIECE];
    while (from < to) {
        size_t k = (size_t)(to - from < PIECE ? to - from : PIECE);
        sw_test_pattern_fill(from, buf, k);
        if (!wsend(fd, buf, k)) {
            return false;
        }
        from += k;
    }
    return true;
}

static void
record(struct sw_test_wsfake *f, const uint8_t *p, size_t n)
{
    pthread_mutex_lock(&f->mu);
    if (f->msgs_len + n + 2 > f->msgs_cap) {
        f->msgs_cap = (f->msgs_len + n + 2) * 2;
        f->msgs = xrealloc(f->msgs, f->msgs_cap);
    }
    memcpy(f->msgs + f->msgs_len, p, n);
    f->msgs_len += n;
    f->msgs[f->msgs_len++] = '\n';
    f->msgs[f->msgs_len] = '\0';
    pthread_mutex_unlock(&f->mu);
}

/* Close the connection: a reset (SO_LINGER 0) or a FIN after which the
 * gateway's own close is awaited, so that no unread byte turns it into a
 * reset. */
static void
wclose(struct wconn *c, bool reset)
{
    if (c->fd < 0) {
        return;
    }
    if (reset) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    } else {
        shutdown(c->fd, SHUT_WR);
        uint64_t deadline = sw_now_ms() + 2000;
        char tmp[4096];
        while (sw_now_ms() < deadline) {
            struct pollfd pfd = {c->fd, POLLIN, 0};
            if (poll(&pfd, 1, 50) == 1 &&
                recv(c->fd, tmp, sizeof(tmp), MSG_DONTWAIT) <= 0) {
                break;
            }
        }
    }
    close(c->fd);
    c->fd = -1;
}

/* Carry out a command; false when the connection is gone. */
static bool
command(struct sw_test_wsfake *f, struct wconn *c, const char *cmd)
{
    unsigned long long total = 0, part = 0;
    if (strcmp(cmd, "reset") == 0) {
        atomic_fetch_add(&f->commands, 1);
        wclose(c, true);
        return false;
    }
    if (strcmp(cmd, "fin") == 0) {
        atomic_fetch_add(&f->commands, 1);
        wclose(c, false);
        return false;
    }
    if (sscanf(cmd, "head %llu %llu", &total, &part) == 2 && part <= total) {
        atomic_fetch_add(&f->commands, 1);
        uint8_t hdr[SW_WS_MAX_HEADER];
        size_t hl = sw_ws_frame_encode(hdr, true, SW_WS_OP_BINARY, NULL, total);
        c->big_total = total;
        c->big_sent = part;
        return wsend(c->fd, hdr, hl) && send_pattern(c->fd, 0, part);
    }
    unsigned ms = 0;
    if (sscanf(cmd, "later %u", &ms) == 1 && ms <= 5000) {
        atomic_fetch_add(&f->commands, 1);
        sw_test_sleep_ms(ms);
        static const char msg[] = "later";
        uint8_t out[SW_WS_MAX_HEADER + sizeof(msg)];
        size_t h = sw_ws_frame_encode(out, true, SW_WS_OP_TEXT, NULL,
                                      sizeof(msg) - 1);
        memcpy(out + h, msg, sizeof(msg) - 1);
        return wsend(c->fd, out, h + sizeof(msg) - 1);
    }
    if (strcmp(cmd, "tail") == 0) {
        atomic_fetch_add(&f->commands, 1);
        uint64_t from = c->big_sent;
        c->big_sent = c->big_total;
        return send_pattern(c->fd, from, c->big_total);
    }
    return true;
}

/* A whole data message arrived. */
static bool
on_message(struct sw_test_wsfake *f, struct wconn *c, bool text,
           const uint8_t *p, size_t n)
{
    if (!text) {
        return true;
    }
    record(f, p, n);
    char cmd[64];
    if (n >= sizeof(cmd)) {
        return true;
    }
    memcpy(cmd, p, n);
    cmd[n] = '\0';
    return command(f, c, cmd);
}

/* Handle the whole frames in c->in; false when the connection ended. */
static bool
on_frames(struct sw_test_wsfake *f, struct wconn *c)
{
    for (;;) {
        if (c->len < 2) {
            return true;
        }
        size_t hl = 2 +
                    ((c->in[1] & 0x7f) == 126   ? 2
                     : (c->in[1] & 0x7f) == 127 ? 8
                                                : 0) +
                    ((c->in[1] & 0x80) ? 4 : 0);
        if (c->len < hl) {
            return true;
        }
        struct sw_ws_decoder dec;
        struct sw_ws_frame fr;
        sw_ws_decoder_init(&dec, SW_WS_PEER_CLIENT, 0, 0);
        if (sw_ws_frame_decode(&dec, c->in, hl, &fr) != (ssize_t)hl) {
            wclose(c, false); /* the gateway sent a broken frame */
            return false;
        }
        if (c->len - hl < fr.payload_len) {
            return true;
        }
        uint8_t *pl = c->in + hl;
        size_t n = (size_t)fr.payload_len;
        sw_ws_mask(pl, n, fr.mask, 0);
        bool alive = true;
        if (fr.opcode == SW_WS_OP_CLOSE) {
            uint8_t out[SW_WS_MAX_HEADER + 2];
            size_t cl = n >= 2 ? 2 : 0;
            size_t h = sw_ws_frame_encode(out, true, SW_WS_OP_CLOSE, NULL, cl);
            memcpy(out + h, pl, cl);
            wsend(c->fd, out, h + cl);
            wclose(c, false);
            return false;
        }
        if (fr.opcode == SW_WS_OP_TEXT || fr.opcode == SW_WS_OP_BINARY ||
            fr.opcode == SW_WS_OP_CONT) {
            if (fr.opcode != SW_WS_OP_CONT) {
                c->in_msg = true;
                c->msg_text = fr.opcode == SW_WS_OP_TEXT;
                c->msg_len = 0;
            }
            c->msg = xrealloc(c->msg, c->msg_len + n);
            memcpy(c->msg + c->msg_len, pl, n);
            c->msg_len += n;
            if (fr.fin && c->in_msg) {
                c->in_msg = false;
                alive = on_message(f, c, c->msg_text, c->msg, c->msg_len);
            }
        }
        if (!alive) {
            return false;
        }
        size_t used = hl + n;
        memmove(c->in, c->in + used, c->len - used);
        c->len -= used;
    }
}

static void
serve(struct sw_test_wsfake *f, int fd)
{
    struct wconn c;
    memset(&c, 0, sizeof(c));
    c.fd = fd;
    uint8_t *end = NULL;
    while (end == NULL) {
        if (wread(f, &c, IO_TIMEOUT_MS) <= 0) {
            goto done;
        }
        end = memmem(c.in, c.len, "\r\n\r\n", 4);
    }
    size_t head = (size_t)(end - c.in) + 4;
    char *h = strndup((const char *)c.in, head);
    if (h == NULL) {
        abort();
    }
    const char *key = NULL;
    size_t klen = 0;
    for (char *line = strstr(h, "\r\n"); line != NULL;
         line = strstr(line + 2, "\r\n")) {
        static const char name[] = "\r\nSec-WebSocket-Key:";
        if (strncasecmp(line, name, sizeof(name) - 1) == 0) {
            key = line + sizeof(name) - 1;
            while (*key == ' ' || *key == '\t') {
                key++;
            }
            klen = strcspn(key, " \t\r");
            break;
        }
    }
    char accept[SW_WS_ACCEPT_LEN + 1] = "";
    if (key != NULL) {
        sw_ws_accept_compute((struct sw_str){key, klen}, accept);
    }
    free(h);
    char resp[256];
    int rn = snprintf(resp, sizeof(resp),
                      "HTTP/1.1 101 Switching Protocols\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n",
                      accept);
    if (!wsend(c.fd, resp, (size_t)rn)) {
        goto done;
    }
    atomic_fetch_add(&f->upgrades, 1);
    memmove(c.in, c.in + head, c.len - head);
    c.len -= head;
    while (on_frames(f, &c)) {
        /* an idle WebSocket may wait long: the peer's close or the stop
         * flag ends it */
        if (wread(f, &c, 1 << 30) <= 0) {
            break;
        }
    }
done:
    if (c.fd >= 0) {
        close(c.fd);
    }
    free(c.in);
    free(c.msg);
}

static void *
wsfake_main(void *arg)
{
    struct sw_test_wsfake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd pfd = {f->lfd, POLLIN, 0};
        if (poll(&pfd, 1, 50) != 1) {
            continue;
        }
        int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        atomic_fetch_add(&f->accepts, 1);
        serve(f, fd);
    }
    return NULL;
}

bool
sw_test_wsfake_start(struct sw_test_wsfake *f)
{
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = sw_test_listen_loopback(16, &f->port);
    if (f->lfd < 0) {
        return false;
    }
    if (pthread_create(&f->thread, NULL, wsfake_main, f) != 0) {
        close(f->lfd);
        return false;
    }
    f->running = true;
    return true;
}

void
sw_test_wsfake_stop(struct sw_test_wsfake *f)
{
    if (!f->running) {
        return;
    }
    atomic_store(&f->stop, true);
    pthread_join(f->thread, NULL);
    close(f->lfd);
    f->lfd = -1;
    f->running = false;
}

void
sw_test_wsfake_free(struct sw_test_wsfake *f)
{
    sw_test_wsfake_stop(f);
    free(f->msgs);
    f->msgs = NULL;
    f->msgs_len = f->msgs_cap = 0;
    pthread_mutex_destroy(&f->mu);
}

char *
sw_test_wsfake_msgs(struct sw_test_wsfake *f)
{
    pthread_mutex_lock(&f->mu);
    char *copy = strndup(f->msgs != NULL ? f->msgs : "", f->msgs_len);
    pthread_mutex_unlock(&f->mu);
    if (copy == NULL) {
        abort();
    }
    return copy;
}
