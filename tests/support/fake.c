/*
 * fake.c - the scripted fake upstreams (see fake.h): one thread per fake
 * polls its listening socket and up to FAKE_MAX_CONNS accepted
 * connections, records every byte received, and answers each request by
 * the fake's mode (canned reply, keep-alive, reset, stall or a script).
 *
 * Threading: everything but the recording is touched only by the fake's
 * thread between start and stop; the recording (rx) is guarded by f->mu.
 * Every send waits with a poll() deadline, so a stuck peer never hangs it.
 */
#include "fake.h"
#include "net.h"

#include <ctype.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        abort();
    }
    return q;
}

/* ---- fake upstream ---------------------------------------------------- */

#define FAKE_MAX_CONNS 32

struct fake_conn {
    int fd;          /* accepted socket, -1 = free */
    char *buf;       /* owned: request bytes not yet answered (KEEP) */
    size_t len;      /* bytes in buf */
    bool replied;    /* reply sent (non-KEEP modes) */
    unsigned served; /* requests answered (KEEP, RESET_REUSED) */
};

static void
fake_record(struct sw_test_fake *f, const char *p, size_t n)
{
    pthread_mutex_lock(&f->mu);
    if (f->rx_len + n + 1 > f->rx_cap) {
        f->rx_cap = (f->rx_len + n + 1) * 2;
        f->rx = xrealloc(f->rx, f->rx_cap);
    }
    memcpy(f->rx + f->rx_len, p, n);
    f->rx_len += n;
    f->rx[f->rx_len] = '\0';
    pthread_mutex_unlock(&f->mu);
}

static void
fake_send(int fd, const char *p, size_t n)
{
    while (n > 0) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        if (poll(&pfd, 1, 2000) != 1) {
            return;
        }
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void
fake_drop(struct fake_conn *fc, bool reset)
{
    if (reset) {
        struct linger lg = {1, 0};
        setsockopt(fc->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    } else {
        /* Read what is pending so close() sends FIN, not RST. */
        char tmp[4096];
        while (recv(fc->fd, tmp, sizeof(tmp), MSG_DONTWAIT) > 0) {
        }
        shutdown(fc->fd, SHUT_WR);
    }
    close(fc->fd);
    fc->fd = -1;
    free(fc->buf);
    fc->buf = NULL;
    fc->len = 0;
}

/* Length of the first complete request in p[0..n) (head + body), 0 when
 * incomplete. Understands Content-Length and chunked. */
static size_t
request_len(const char *p, size_t n)
{
    const char *he = memmem(p, n, "\r\n\r\n", 4);
    if (he == NULL) {
        return 0;
    }
    size_t head = (size_t)(he - p) + 4;
    char *h = strndup(p, head);
    if (h == NULL) {
        abort();
    }
    for (char *s = h; *s != '\0'; s++) {
        *s = (char)tolower((unsigned char)*s);
    }
    size_t total = head;
    char *cl = strstr(h, "\r\ncontent-length:");
    char *te = strstr(h, "\r\ntransfer-encoding:");
    if (te != NULL && strstr(te, "chunked") != NULL) {
        size_t off = head;
        total = 0;
        for (;;) {
            const char *eol = memmem(p + off, n - off, "\r\n", 2);
            if (eol == NULL) {
                break;
            }
            unsigned long long sz = strtoull(p + off, NULL, 16);
            off = (size_t)(eol - p) + 2;
            if (sz == 0) {
                const char *tend =
                    memmem(p + off - 2, n - off + 2, "\r\n\r\n", 4);
                if (tend != NULL) {
                    total = (size_t)(tend - p) + 4;
                }
                break;
            }
            if (off + sz + 2 > n) {
                break;
            }
            off += sz + 2;
        }
    } else if (cl != NULL) {
        unsigned long long len = strtoull(cl + 17, NULL, 10);
        total = head + len <= n ? head + len : 0;
    }
    free(h);
    return total;
}

static void
fake_after(enum sw_test_fake_mode mode, struct fake_conn *fc)
{
    fc->replied = true;
    if (mode == SW_TEST_FAKE_CLOSE) {
        fake_drop(fc, false);
    } else if (mode == SW_TEST_FAKE_RESET) {
        fake_drop(fc, true);
    }
}

static void
fake_after_reply(struct sw_test_fake *f, struct fake_conn *fc)
{
    fake_after(f->mode, fc);
}

/* SCRIPT: the script answers the first request head of a connection. */
static void
fake_scripted(struct sw_test_fake *f, struct fake_conn *fc)
{
    if (fc->replied || memmem(fc->buf, fc->len, "\r\n\r\n", 4) == NULL) {
        return;
    }
    char reply[16384];
    size_t n = 0;
    enum sw_test_fake_mode after =
        f->script(f->script_arg, fc->buf, fc->len, reply, sizeof(reply), &n);
    fake_send(fc->fd, reply, n);
    fake_after(after, fc);
}

static void
fake_on_data(struct sw_test_fake *f, struct fake_conn *fc)
{
    if (f->mode == SW_TEST_FAKE_SCRIPT) {
        fake_scripted(f, fc);
        return;
    }
    if (f->mode == SW_TEST_FAKE_KEEP || f->mode == SW_TEST_FAKE_RESET_REUSED) {
        size_t rl;
        while ((rl = request_len(fc->buf, fc->len)) > 0) {
            if (f->mode == SW_TEST_FAKE_RESET_REUSED && fc->served > 0) {
                /* the request was received whole: a peer that acted on it
                 * and died before answering */
                atomic_fetch_add(&f->resets, 1);
                fake_drop(fc, true);
                return;
            }
            memmove(fc->buf, fc->buf + rl, fc->len - rl);
            fc->len -= rl;
            fc->served++;
            fake_send(fc->fd, f->reply, f->reply_len);
        }
        return;
    }
    if (!fc->replied && memmem(fc->buf, fc->len, "\r\n\r\n", 4) != NULL) {
        fake_send(fc->fd, f->reply, f->reply_len);
        fake_after_reply(f, fc);
    }
}

static void *
fake_main(void *arg)
{
    struct sw_test_fake *f = arg;
    struct fake_conn conns[FAKE_MAX_CONNS];
    for (size_t i = 0; i < FAKE_MAX_CONNS; i++) {
        conns[i].fd = -1;
        conns[i].buf = NULL;
        conns[i].len = 0;
        conns[i].replied = false;
        conns[i].served = 0;
    }
    while (!atomic_load(&f->stop)) {
        struct pollfd pfds[FAKE_MAX_CONNS + 1];
        size_t map[FAKE_MAX_CONNS + 1];
        nfds_t n = 0;
        pfds[n].fd = f->lfd;
        pfds[n].events = POLLIN;
        map[n++] = FAKE_MAX_CONNS;
        for (size_t i = 0; i < FAKE_MAX_CONNS; i++) {
            if (conns[i].fd >= 0) {
                pfds[n].fd = conns[i].fd;
                pfds[n].events = POLLIN;
                map[n++] = i;
            }
        }
        if (poll(pfds, n, 50) <= 0) {
            continue;
        }
        for (nfds_t k = 1; k < n; k++) {
            if (pfds[k].revents == 0) {
                continue;
            }
            struct fake_conn *fc = &conns[map[k]];
            char tmp[65536];
            ssize_t r = recv(fc->fd, tmp, sizeof(tmp), 0);
            if (r <= 0) {
                fake_drop(fc, false);
                continue;
            }
            fake_record(f, tmp, (size_t)r);
            fc->buf = xrealloc(fc->buf, fc->len + (size_t)r + 1);
            memcpy(fc->buf + fc->len, tmp, (size_t)r);
            fc->len += (size_t)r;
            fc->buf[fc->len] = '\0';
            fake_on_data(f, fc);
        }
        if (pfds[0].revents & POLLIN) {
            int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0) {
                continue;
            }
            atomic_fetch_add(&f->accepts, 1);
            struct fake_conn *fc = NULL;
            for (size_t i = 0; i < FAKE_MAX_CONNS; i++) {
                if (conns[i].fd < 0) {
                    fc = &conns[i];
                    break;
                }
            }
            if (fc == NULL) {
                close(fd);
                continue;
            }
            fc->fd = fd;
            fc->len = 0;
            fc->replied = false;
            fc->served = 0;
            if (f->no_wait) {
                fake_send(fd, f->reply, f->reply_len);
                fake_after_reply(f, fc);
            }
        }
    }
    for (size_t i = 0; i < FAKE_MAX_CONNS; i++) {
        if (conns[i].fd >= 0) {
            fake_drop(&conns[i], false);
        }
    }
    return NULL;
}

bool
sw_test_fake_start(struct sw_test_fake *f, enum sw_test_fake_mode mode,
                   const char *reply, size_t reply_len)
{
    bool no_wait = f->no_wait;
    sw_test_fake_script_cb script = f->script;
    void *script_arg = f->script_arg;
    memset(f, 0, sizeof(*f));
    f->no_wait = no_wait;
    f->script = script;
    f->script_arg = script_arg;
    f->mode = mode;
    f->reply = reply;
    f->reply_len = reply_len;
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = sw_test_listen_loopback(64, &f->port);
    if (f->lfd < 0) {
        return false;
    }
    if (pthread_create(&f->thread, NULL, fake_main, f) != 0) {
        close(f->lfd);
        return false;
    }
    f->running = true;
    return true;
}

void
sw_test_fake_stop(struct sw_test_fake *f)
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
sw_test_fake_free(struct sw_test_fake *f)
{
    sw_test_fake_stop(f);
    free(f->rx);
    f->rx = NULL;
    f->rx_len = 0;
    pthread_mutex_destroy(&f->mu);
}

char *
sw_test_fake_rx(struct sw_test_fake *f, size_t *len)
{
    pthread_mutex_lock(&f->mu);
    char *copy = malloc(f->rx_len + 1);
    if (copy == NULL) {
        abort();
    }
    if (f->rx_len > 0) {
        memcpy(copy, f->rx, f->rx_len);
    }
    copy[f->rx_len] = '\0';
    if (len != NULL) {
        *len = f->rx_len;
    }
    pthread_mutex_unlock(&f->mu);
    return copy;
}
