/*
 * conn_test.c - Check suite for lib/conn over real sockets and a real
 * event_base: lifecycle (init, attach, close, detach, rebind) and what it
 * does to the fd, the events and the pool's buffers; sw_conn_read at data,
 * EOF, reset, an empty socket and a full c->in; sw_conn_flush whole, partial
 * against a full socket and after the peer went away; sw_conn_watch and the
 * callbacks it arms; the owner's timer; releasing idle buffers; the flags
 * printer; a gentle close that the peer sees as data then EOF; and the TLS
 * transport's pending bytes turned into a read callback.
 *
 *   test end                              peer end
 *   struct sw_conn (fd a) <-- socket --> plain fd b, driven by the test
 *
 * Pairs are socketpair(AF_UNIX) or loopback TCP (where a reset exists), all
 * non-blocking. The loop is run one non-blocking turn at a time
 * (EVLOOP_ONCE | EVLOOP_NONBLOCK) and callbacks are counted per owner; the
 * only waits on the clock (the timer tests) are bounded by a guard timer,
 * and every wait on a socket by poll() with a deadline. Assertions are on
 * bytes, flags and callback counts, never on timings.
 */
#include <shockwave/conn.h>
#include <shockwave/log.h>
#include <shockwave/tls.h>

#include "support.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 5000 /* deadline of any wait on a socket or the loop */

/* ---- the rig: one loop and one pool per test ---------------------------- */

static struct event_base *base;
static struct sw_buf_pool pool;

static void
rig_init(size_t bufsize)
{
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    sw_buf_pool_init(&pool, bufsize, 8);
}

/* Every test ends with every buffer back in the pool. */
static void
rig_fini(void)
{
    ck_assert_uint_eq(pool.nused, 0);
    sw_buf_pool_fini(&pool);
    event_base_free(base);
    base = NULL;
}

/* ---- owners: count what they are called for ------------------------------ */

struct owner {
    int reads;            /* on_read calls */
    int writes;           /* on_write calls */
    int timers;           /* on_timer calls */
    struct sw_conn *seen; /* the connection of the last call */
};

static void
owner_read(struct sw_conn *c, void *arg)
{
    struct owner *o = arg;
    o->reads++;
    o->seen = c;
}

static void
owner_write(struct sw_conn *c, void *arg)
{
    struct owner *o = arg;
    o->writes++;
    o->seen = c;
}

static void
owner_timer(struct sw_conn *c, void *arg)
{
    struct owner *o = arg;
    o->timers++;
    o->seen = c;
}

static const struct sw_conn_handlers handlers = {
    .on_read = owner_read,
    .on_write = owner_write,
    .on_timer = owner_timer,
};

/* A second owner's table, so a rebind really changes the table too. */
static const struct sw_conn_handlers other_handlers = {
    .on_read = owner_read,
    .on_write = owner_write,
    .on_timer = owner_timer,
};

static const struct sw_conn_handlers no_timer_handlers = {
    .on_read = owner_read,
    .on_write = owner_write,
    .on_timer = NULL,
};

/* One non-blocking turn of the loop. */
static void
pump(void)
{
    ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
}

static void
on_guard(evutil_socket_t fd, short what, void *arg)
{
    SW_UNUSED(fd);
    SW_UNUSED(what);
    *(bool *)arg = true;
}

/* Run the loop until *count reaches want or WAIT_MS passed. */
static void
loop_until(const int *count, int want)
{
    bool expired = false;
    struct event guard;
    evtimer_assign(&guard, base, on_guard, &expired);
    struct timeval tv = {WAIT_MS / 1000, 0};
    evtimer_add(&guard, &tv);
    while (*count < want && !expired) {
        ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE), 0);
    }
    evtimer_del(&guard);
}

/* ---- sockets ------------------------------------------------------------ */

static void
unix_pair(int sv[2])
{
    ck_assert_int_eq(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
        0);
}

/* A connected loopback TCP pair, both ends non-blocking: sv[0] accepted
 * (the test's end), sv[1] connected (the peer). A peer_rcvbuf other than 0
 * is set before connecting, so the window the peer offers stays small. */
static void
tcp_pair_rcvbuf(int sv[2], int peer_rcvbuf)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(l, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(l, 1), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c, 0);
    if (peer_rcvbuf > 0) {
        ck_assert_int_eq(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &peer_rcvbuf,
                                    sizeof(peer_rcvbuf)),
                         0);
    }
    /* Blocking connect to loopback: the listener's backlog completes it. */
    ck_assert_int_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    int s = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ck_assert_int_ge(s, 0);
    close(l);
    ck_assert_int_eq(fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK), 0);
    sv[0] = s;
    sv[1] = c;
}

static void
tcp_pair(int sv[2])
{
    tcp_pair_rcvbuf(sv, 0);
}

/* Close with SO_LINGER 0: the other end gets a reset, not a FIN. */
static void
close_reset(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    ck_assert_int_eq(close(fd), 0);
}

static bool
wait_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, WAIT_MS) == 1;
}

/* Readable right now, without waiting. */
static bool
is_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

/* Send all of p from a peer fd (waits for room, bounded). */
static void
peer_send(int fd, const void *p, size_t n)
{
    const uint8_t *q = p;
    for (int i = 0; n > 0 && i < 10000; i++) {
        ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
        if (w < 0) {
            ck_assert_msg(errno == EAGAIN, "peer send: %s", strerror(errno));
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            ck_assert_int_eq(poll(&pfd, 1, WAIT_MS), 1);
            continue;
        }
        q += w;
        n -= (size_t)w;
    }
    ck_assert_uint_eq(n, 0);
}

/* One recv on a peer fd after waiting for it to be readable: bytes, 0 at
 * EOF, -1 with errno. */
static ssize_t
peer_recv(int fd, void *p, size_t n)
{
    ck_assert_msg(wait_readable(fd), "peer fd %d never became readable", fd);
    return recv(fd, p, n, 0);
}

/* Read from a peer fd until EOF or error; the bytes go to p (at most cap),
 * *end gets the last recv result (0 EOF, -1 error with errno saved). */
static size_t
peer_recv_all(int fd, uint8_t *p, size_t cap, ssize_t *end, int *err)
{
    size_t got = 0;
    *end = -2;
    *err = 0;
    for (int i = 0; i < 100000; i++) {
        ssize_t r = peer_recv(fd, p + got, cap - got);
        if (r <= 0) {
            *end = r;
            *err = r < 0 ? errno : 0;
            break;
        }
        got += (size_t)r;
        ck_assert_uint_le(got, cap);
    }
    return got;
}

/* Make a conn end on fd with the plain transport. */
static void
attach_fd(struct sw_conn *c, int fd)
{
    sw_conn_attach(c, &(struct sw_io){.fd = fd, .ops = &sw_io_plain});
}

/* The libevent state matches the flags word. */
static void
check_events(const struct sw_conn *c)
{
    ck_assert_int_eq(event_pending(&c->rev, EV_READ, NULL) != 0,
                     sw_conn_has(c, SW_CONN_F_READING));
    ck_assert_int_eq(event_pending(&c->wev, EV_WRITE, NULL) != 0,
                     sw_conn_has(c, SW_CONN_F_WRITING));
}

static void
fill_pattern(uint8_t *p, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)((off + i) % 251);
    }
}

static bool
is_pattern(const uint8_t *p, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != (uint8_t)((off + i) % 251)) {
            return false;
        }
    }
    return true;
}

/* Append to a buffer that must have room. */
static void
put_bytes(struct sw_conn *c, const void *p, size_t n)
{
    ck_assert_uint_ge(sw_conn_out_room(c), n);
    ck_assert(sw_buf_append(c->out, p, n));
    sw__buf_validate(c->out);
}

static void
check_in(const struct sw_conn *c, const char *want)
{
    ck_assert_ptr_nonnull(c->in);
    sw__buf_validate(c->in);
    size_t n = strlen(want);
    ck_assert_uint_eq(sw_buf_len(c->in), n);
    ck_assert_mem_eq(c->in->pos, want, n);
}

/* ---- lifecycle ---------------------------------------------------------- */

START_TEST(test_init_attach_close)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    memset(&c, 0xa5, sizeof(c)); /* init must not rely on zeroed storage */
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    ck_assert_int_eq(c.io.fd, -1);
    ck_assert_ptr_eq(c.io.ops, &sw_io_plain);
    ck_assert_ptr_null(c.io.tls);
    ck_assert_ptr_null(c.in);
    ck_assert_ptr_null(c.out);
    ck_assert_uint_eq(c.flags, 0);
    ck_assert_str_eq(c.role, "client");
    ck_assert_ptr_eq(c.base, base);
    ck_assert_ptr_eq(c.bufs, &pool);
    ck_assert_ptr_eq(c.arg, &o);
    ck_assert(!sw_conn_is_open(&c));
    ck_assert(!sw_conn_timer_armed(&c));
    ck_assert_uint_eq(sw_conn_buffered(c.in), 0);
    check_events(&c);

    /* Watching an end with no socket does nothing; closing it is fine. */
    sw_conn_watch(&c, true, true);
    ck_assert_uint_eq(c.flags, 0);
    sw_conn_close(&c);
    ck_assert_int_eq(c.io.fd, -1);

    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);
    ck_assert(sw_conn_is_open(&c));
    ck_assert_int_eq(c.io.fd, sv[0]);
    ck_assert_uint_eq(c.flags, 0);

    /* Take both buffers and arm both events, then close. */
    peer_send(sv[1], "ping", 4);
    ck_assert_int_eq(sw_conn_read(&c), 4);
    put_bytes(&c, "unsent", 6);
    ck_assert_uint_eq(pool.nused, 2);
    sw_conn_watch(&c, true, true);
    sw_conn_timer(&c, 60000);
    ck_assert_uint_eq(c.flags, SW_CONN_F_READING | SW_CONN_F_WRITING);
    check_events(&c);

    sw_conn_close(&c);
    ck_assert_int_eq(c.io.fd, -1);
    ck_assert_ptr_eq(c.io.ops, &sw_io_plain);
    ck_assert(!sw_conn_is_open(&c));
    ck_assert_ptr_null(c.in);
    ck_assert_ptr_null(c.out);
    ck_assert_uint_eq(c.flags, 0);
    ck_assert(!sw_conn_timer_armed(&c));
    check_events(&c);
    ck_assert_uint_eq(pool.nused, 0);
    ck_assert_uint_eq(pool.nfree, 2);
    /* The fd really is closed: the peer reads EOF (nothing was flushed). */
    char buf[16];
    ck_assert_int_eq(peer_recv(sv[1], buf, sizeof(buf)), 0);
    pump();
    ck_assert_int_eq(o.reads + o.writes + o.timers, 0);

    /* A closed end can be closed again and attached again. */
    sw_conn_close(&c);
    ck_assert_uint_eq(pool.nused, 0);
    close(sv[1]);
    unix_pair(sv);
    attach_fd(&c, sv[0]);
    peer_send(sv[1], "x", 1);
    ck_assert_int_eq(sw_conn_read(&c), 1);
    sw_conn_close(&c);
    ck_assert_uint_eq(pool.nused, 0);
    close(sv[1]);
    rig_fini();
}
END_TEST

/* ---- sw_conn_read ------------------------------------------------------- */

START_TEST(test_read_data_again_eof)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);

    /* Nothing there: SW_AGAIN, no EOF. The buffer may be taken already;
     * it is empty and release_idle gives it back. */
    ck_assert_int_eq(sw_conn_read(&c), SW_AGAIN);
    ck_assert_uint_eq(c.flags, 0);
    ck_assert_uint_eq(sw_conn_buffered(c.in), 0);
    sw_conn_release_idle(&c);
    ck_assert_ptr_null(c.in);
    ck_assert_uint_eq(pool.nused, 0);

    peer_send(sv[1], "hello", 5);
    ck_assert_int_eq(sw_conn_read(&c), 5);
    check_in(&c, "hello");
    ck_assert_uint_eq(pool.nused, 1);

    /* Appends after what is there. */
    peer_send(sv[1], " world", 6);
    ck_assert_int_eq(sw_conn_read(&c), 6);
    check_in(&c, "hello world");
    ck_assert_int_eq(sw_conn_read(&c), SW_AGAIN);
    check_in(&c, "hello world");
    ck_assert_uint_eq(c.flags, 0);

    /* Consumed to the end: the next read starts at the front again. */
    c.in->pos = c.in->last;
    peer_send(sv[1], "again", 5);
    ck_assert_int_eq(sw_conn_read(&c), 5);
    check_in(&c, "again");
    ck_assert_ptr_eq(c.in->pos, c.in->start);

    /* Orderly EOF: 0 and EOF without RESET; the bytes stay. */
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
    ck_assert_int_eq(sw_conn_read(&c), 0);
    ck_assert_uint_eq(c.flags, SW_CONN_F_EOF);
    check_in(&c, "again");
    /* EOF stays EOF. */
    ck_assert_int_eq(sw_conn_read(&c), 0);
    ck_assert_uint_eq(c.flags, SW_CONN_F_EOF);

    sw_conn_close(&c);
    close(sv[1]);
    rig_fini();
}
END_TEST

START_TEST(test_read_full_buffer)
{
    rig_init(64);
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);

    uint8_t data[100];
    fill_pattern(data, sizeof(data), 0);
    peer_send(sv[1], data, sizeof(data));
    ck_assert_int_eq(sw_conn_read(&c), 64);
    ck_assert_uint_eq(sw_buf_len(c.in), 64);
    ck_assert_uint_eq(sw_buf_room(c.in), 0);
    ck_assert(is_pattern(c.in->pos, 64, 0));

    /* Full with nothing consumed: SW_AGAIN, the socket keeps its bytes. */
    ck_assert_int_eq(sw_conn_read(&c), SW_AGAIN);
    ck_assert_int_eq(sw_conn_read(&c), SW_AGAIN);
    ck_assert_uint_eq(c.flags, 0);
    ck_assert_uint_eq(sw_buf_len(c.in), 64);
    ck_assert(is_readable(sv[0]));

    /* 10 consumed: the rest moves to the front and 10 more come in. */
    c.in->pos += 10;
    ck_assert_int_eq(sw_conn_read(&c), 10);
    sw__buf_validate(c.in);
    ck_assert_ptr_eq(c.in->pos, c.in->start);
    ck_assert_uint_eq(sw_buf_len(c.in), 64);
    ck_assert(is_pattern(c.in->pos, 64, 10));

    /* All consumed: the last 26 bytes from the front. */
    c.in->pos = c.in->last;
    ck_assert_int_eq(sw_conn_read(&c), 26);
    ck_assert(is_pattern(c.in->pos, 26, 74));
    ck_assert_int_eq(sw_conn_read(&c), SW_AGAIN);
    ck_assert_uint_eq(c.flags, 0);

    sw_conn_close(&c);
    close(sv[1]);
    rig_fini();
}
END_TEST

START_TEST(test_read_reset)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "upstream", base, &pool, &handlers, &o);
    int sv[2];
    tcp_pair(sv);
    attach_fd(&c, sv[0]);

    peer_send(sv[1], "abc", 3);
    ck_assert(wait_readable(sv[0]));
    ck_assert_int_eq(sw_conn_read(&c), 3);
    ck_assert_int_eq(sw_conn_read(&c), SW_AGAIN);
    close_reset(sv[1]);
    ck_assert(wait_readable(sv[0]));
    ck_assert_int_eq(sw_conn_read(&c), SW_ECLOSED);
    ck_assert_int_eq(c.io.last_errno, ECONNRESET);
    ck_assert_uint_eq(c.flags, SW_CONN_F_EOF | SW_CONN_F_RESET);
    check_in(&c, "abc");

    sw_conn_close(&c);
    ck_assert_uint_eq(c.flags, 0);
    rig_fini();
}
END_TEST

/* ---- sw_conn_flush ------------------------------------------------------ */

START_TEST(test_flush_all)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);

    /* No buffer, an empty buffer: nothing to send. */
    ck_assert_int_eq(sw_conn_flush(&c), 0);
    ck_assert_uint_eq(sw_conn_out_room(&c), 4096);
    ck_assert_int_eq(sw_conn_flush(&c), 0);

    uint8_t data[3000];
    fill_pattern(data, sizeof(data), 0);
    put_bytes(&c, data, sizeof(data));
    ck_assert_uint_eq(sw_conn_out_room(&c), 4096 - 3000);
    ck_assert_int_eq(sw_conn_flush(&c), 3000);
    sw__buf_validate(c.out);
    ck_assert_uint_eq(sw_buf_len(c.out), 0);
    /* Not rewound by the flush: the sent bytes stay readable (a kept
     * request head is resent from them); the next use rewinds it. */
    ck_assert_ptr_eq(c.out->last, c.out->start + 3000);
    ck_assert(is_pattern(c.out->start, 3000, 0));
    ck_assert_uint_eq(sw_conn_out_room(&c), 4096);
    ck_assert_ptr_eq(c.out->pos, c.out->start);
    ck_assert_uint_eq(c.flags, 0);

    uint8_t got[4096];
    ssize_t end;
    int err;
    shutdown(sv[0], SHUT_WR);
    ck_assert_uint_eq(peer_recv_all(sv[1], got, sizeof(got), &end, &err), 3000);
    ck_assert_int_eq(end, 0);
    ck_assert(is_pattern(got, 3000, 0));

    /* sw_conn_send_buf takes a buffer of the caller's too, and NULL. */
    ck_assert_int_eq(sw_conn_send_buf(&c, NULL), 0);

    sw_conn_close(&c);
    close(sv[1]);
    rig_fini();
}
END_TEST

START_TEST(test_flush_partial)
{
    const size_t total = 256 * 1024;
    rig_init(total);
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    int sv[2];
    unix_pair(sv);
    /* A small socket buffer: the first flush cannot take it all. */
    int small = 16 * 1024;
    ck_assert_int_eq(
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    attach_fd(&c, sv[0]);

    ck_assert_uint_eq(sw_conn_out_room(&c), total);
    fill_pattern(c.out->last, total, 0);
    c.out->last += total;

    ssize_t n = sw_conn_flush(&c);
    ck_assert_int_gt(n, 0);
    ck_assert_int_lt(n, (ssize_t)total);
    sw__buf_validate(c.out);
    ck_assert_uint_eq(sw_buf_len(c.out), total - (size_t)n);
    /* Not rewound while bytes remain: pos moved by what was sent. */
    ck_assert_ptr_eq(c.out->pos, c.out->start + n);
    ck_assert_uint_eq(c.flags, 0);

    /* The socket is full: 0, nothing lost, not dead. */
    ck_assert_int_eq(sw_conn_flush(&c), 0);
    ck_assert_uint_eq(sw_buf_len(c.out), total - (size_t)n);
    ck_assert_uint_eq(c.flags, 0);

    /* Not writable while full: the write callback does not come. */
    sw_conn_watch(&c, false, true);
    ck_assert_uint_eq(c.flags, SW_CONN_F_WRITING);
    pump();
    ck_assert_int_eq(o.writes, 0);

    /* Drain on the peer, flush on each write callback, until all is sent. */
    uint8_t *got = malloc(total);
    ck_assert_ptr_nonnull(got);
    size_t rcvd = 0;
    size_t sent = (size_t)n;
    int partial = 1; /* the first flush above */
    for (int i = 0; i < 100000 && rcvd < total; i++) {
        ssize_t r = recv(sv[1], got + rcvd, total - rcvd, 0);
        if (r > 0) {
            rcvd += (size_t)r;
        } else {
            ck_assert_int_eq(errno, EAGAIN);
        }
        int before = o.writes;
        pump();
        if (o.writes > before && sw_buf_len(c.out) > 0) {
            ck_assert_ptr_eq(o.seen, &c);
            size_t left = sw_buf_len(c.out);
            ssize_t k = sw_conn_flush(&c);
            ck_assert_int_ge(k, 0);
            sent += (size_t)k;
            if (k > 0 && (size_t)k < left) {
                partial++;
            }
            if (sw_buf_len(c.out) == 0) {
                sw_conn_watch(&c, false, false);
            }
        }
    }
    ck_assert_uint_eq(sent, total);
    ck_assert_uint_eq(rcvd, total);
    ck_assert_int_ge(partial, 2);
    ck_assert(is_pattern(got, total, 0));
    ck_assert_uint_eq(sw_buf_len(c.out), 0);
    ck_assert_uint_eq(sw_conn_out_room(&c), c.out->end - c.out->start);
    ck_assert_uint_eq(c.flags, 0);
    free(got);

    sw_conn_close(&c);
    close(sv[1]);
    rig_fini();
}
END_TEST

START_TEST(test_flush_peer_gone)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);

    /* Unix pair, peer closed: EPIPE at once. */
    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);
    close(sv[1]);
    put_bytes(&c, "lost", 4);
    ck_assert_int_eq(sw_conn_flush(&c), SW_ECLOSED);
    ck_assert_int_eq(c.io.last_errno, EPIPE);
    ck_assert(sw_conn_has(&c, SW_CONN_F_DEAD));
    ck_assert_uint_eq(sw_buf_len(c.out), 4);
    /* Dead stays dead, without another send (errno is left alone). */
    c.io.last_errno = 0;
    ck_assert_int_eq(sw_conn_flush(&c), SW_ECLOSED);
    ck_assert_int_eq(sw_conn_flush(&c), SW_ECLOSED);
    ck_assert_int_eq(sw_conn_send_buf(&c, NULL), SW_ECLOSED);
    ck_assert_int_eq(c.io.last_errno, 0);
    ck_assert(sw_conn_has(&c, SW_CONN_F_DEAD));
    char flags[SW_CONN_FLAGS_TEXT];
    ck_assert_str_eq(sw_conn_show_flags(c.flags, flags, sizeof(flags)), "DEAD");
    sw_conn_close(&c);
    ck_assert_uint_eq(c.flags, 0);

    /* TCP, peer reset: ECONNRESET (or EPIPE once it was reported). */
    tcp_pair(sv);
    attach_fd(&c, sv[0]);
    close_reset(sv[1]);
    ck_assert(wait_readable(sv[0])); /* the reset has arrived */
    put_bytes(&c, "lost", 4);
    ck_assert_int_eq(sw_conn_flush(&c), SW_ECLOSED);
    ck_assert(c.io.last_errno == ECONNRESET || c.io.last_errno == EPIPE);
    ck_assert(sw_conn_has(&c, SW_CONN_F_DEAD));
    ck_assert_int_eq(sw_conn_flush(&c), SW_ECLOSED);
    ck_assert_int_eq(sw_conn_flush(&c), SW_ECLOSED);
    ck_assert(sw_conn_has(&c, SW_CONN_F_DEAD));

    /* Attach starts clear: a new socket is not dead. */
    sw_conn_close(&c);
    unix_pair(sv);
    attach_fd(&c, sv[0]);
    ck_assert_uint_eq(c.flags, 0);
    put_bytes(&c, "ok", 2);
    ck_assert_int_eq(sw_conn_flush(&c), 2);
    sw_conn_close(&c);
    close(sv[1]);
    rig_fini();
}
END_TEST

/* ---- sw_conn_watch and the callbacks ------------------------------------ */

START_TEST(test_watch_callbacks)
{
    rig_init(4096);
    struct owner o = {0};
    struct owner bystander = {0};
    struct sw_conn c;
    struct sw_conn d; /* a second end on the same loop, never watched */
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    sw_conn_init(&d, "client", base, &pool, &handlers, &bystander);
    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);
    int sv2[2];
    unix_pair(sv2);
    attach_fd(&d, sv2[0]);
    peer_send(sv2[1], "zzz", 3); /* d is readable but not watched */

    /* Reading, nothing to read: no callback. */
    sw_conn_watch(&c, true, false);
    ck_assert_uint_eq(c.flags, SW_CONN_F_READING);
    check_events(&c);
    pump();
    ck_assert_int_eq(o.reads, 0);
    ck_assert_int_eq(o.writes, 0);

    /* Bytes arrive: on_read with this end and the owner's arg; level
     * triggered, so again on the next turn while they stay unread. */
    peer_send(sv[1], "data", 4);
    pump();
    ck_assert_int_eq(o.reads, 1);
    ck_assert_ptr_eq(o.seen, &c);
    pump();
    ck_assert_int_eq(o.reads, 2);
    ck_assert_int_eq(o.writes, 0);
    /* Watching again what is watched changes nothing. */
    sw_conn_watch(&c, true, false);
    ck_assert_uint_eq(c.flags, SW_CONN_F_READING);
    check_events(&c);
    /* Read the bytes: quiet again. */
    ck_assert_int_eq(sw_conn_read(&c), 4);
    pump();
    ck_assert_int_eq(o.reads, 2);

    /* Writing only: on_write, and on_read no more though bytes wait. */
    peer_send(sv[1], "more", 4);
    sw_conn_watch(&c, false, true);
    ck_assert_uint_eq(c.flags, SW_CONN_F_WRITING);
    check_events(&c);
    pump();
    ck_assert_int_eq(o.writes, 1);
    ck_assert_int_eq(o.reads, 2);

    /* Both. */
    sw_conn_watch(&c, true, true);
    ck_assert_uint_eq(c.flags, SW_CONN_F_READING | SW_CONN_F_WRITING);
    check_events(&c);
    pump();
    ck_assert_int_eq(o.reads, 3);
    ck_assert_int_eq(o.writes, 2);

    /* None: no callback at all, flags clear, events deleted. */
    sw_conn_watch(&c, false, false);
    ck_assert_uint_eq(c.flags, 0);
    check_events(&c);
    pump();
    pump();
    ck_assert_int_eq(o.reads, 3);
    ck_assert_int_eq(o.writes, 2);

    /* Flags other than the interest bits are kept by watch. */
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
    ck_assert_int_eq(sw_conn_read(&c), 4);
    ck_assert_int_eq(sw_conn_read(&c), 0);
    sw_conn_watch(&c, true, false);
    ck_assert_uint_eq(c.flags, SW_CONN_F_READING | SW_CONN_F_EOF);
    sw_conn_watch(&c, false, false);
    ck_assert_uint_eq(c.flags, SW_CONN_F_EOF);

    ck_assert_int_eq(bystander.reads + bystander.writes, 0);
    sw_conn_close(&c);
    sw_conn_close(&d);
    close(sv[1]);
    close(sv2[1]);
    rig_fini();
}
END_TEST

START_TEST(test_rebind)
{
    rig_init(4096);
    struct owner a = {0};
    struct owner b = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &a);
    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);

    peer_send(sv[1], "first", 5);
    sw_conn_watch(&c, true, true);
    pump();
    ck_assert_int_eq(a.reads, 1);
    ck_assert_int_eq(a.writes, 1);
    ck_assert_int_eq(sw_conn_read(&c), 5);
    put_bytes(&c, "pending", 7);
    sw_conn_timer(&c, 60000);
    struct sw_buf *in = c.in;
    struct sw_buf *out = c.out;

    /* Events and timer stopped; socket, transport, buffers stay. */
    sw_conn_rebind(&c, &other_handlers, &b);
    ck_assert_ptr_eq(c.on, &other_handlers);
    ck_assert_ptr_eq(c.arg, &b);
    ck_assert_uint_eq(c.flags & (SW_CONN_F_READING | SW_CONN_F_WRITING), 0);
    check_events(&c);
    ck_assert(!sw_conn_timer_armed(&c));
    ck_assert_int_eq(c.io.fd, sv[0]);
    ck_assert_ptr_eq(c.io.ops, &sw_io_plain);
    ck_assert_ptr_eq(c.in, in);
    ck_assert_ptr_eq(c.out, out);
    check_in(&c, "first");
    ck_assert_uint_eq(sw_buf_len(c.out), 7);
    peer_send(sv[1], "second", 6);
    pump();
    ck_assert_int_eq(a.reads + a.writes + b.reads + b.writes, 2);

    /* The new owner watches: only it is called, with its arg. */
    sw_conn_watch(&c, true, true);
    pump();
    ck_assert_int_eq(b.reads, 1);
    ck_assert_int_eq(b.writes, 1);
    ck_assert_ptr_eq(b.seen, &c);
    ck_assert_int_eq(a.reads, 1);
    ck_assert_int_eq(a.writes, 1);
    ck_assert_int_eq(sw_conn_read(&c), 6);
    check_in(&c, "firstsecond");
    ck_assert_int_eq(sw_conn_flush(&c), 7);
    char got[16];
    ck_assert_int_eq(peer_recv(sv[1], got, sizeof(got)), 7);
    ck_assert_mem_eq(got, "pending", 7);

    /* The timer goes to the new owner too. */
    sw_conn_watch(&c, false, false);
    sw_conn_timer(&c, 1);
    ck_assert(sw_conn_timer_armed(&c));
    loop_until(&b.timers, 1);
    ck_assert_int_eq(b.timers, 1);
    ck_assert_int_eq(a.timers, 0);

    sw_conn_close(&c);
    close(sv[1]);
    rig_fini();
}
END_TEST

START_TEST(test_detach)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "upstream", base, &pool, &handlers, &o);
    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);
    peer_send(sv[1], "kept", 4);
    ck_assert_int_eq(sw_conn_read(&c), 4);
    sw_conn_watch(&c, true, true);
    sw_conn_timer(&c, 60000);

    struct sw_io io;
    memset(&io, 0, sizeof(io));
    sw_conn_detach(&c, &io);
    ck_assert_int_eq(io.fd, sv[0]);
    ck_assert_ptr_eq(io.ops, &sw_io_plain);
    ck_assert_int_eq(c.io.fd, -1);
    ck_assert(!sw_conn_is_open(&c));
    ck_assert_uint_eq(c.flags, 0);
    check_events(&c);
    ck_assert(!sw_conn_timer_armed(&c));
    /* Buffers stay with the connection. */
    check_in(&c, "kept");
    ck_assert_uint_eq(pool.nused, 1);

    /* The fd is still open and usable both ways, and nobody is called. */
    peer_send(sv[1], "still", 5);
    pump();
    ck_assert_int_eq(o.reads + o.writes + o.timers, 0);
    char buf[16];
    ck_assert_int_eq(recv(io.fd, buf, sizeof(buf), 0), 5);
    ck_assert_mem_eq(buf, "still", 5);
    ck_assert_int_eq(send(io.fd, "back", 4, MSG_NOSIGNAL), 4);
    ck_assert_int_eq(peer_recv(sv[1], buf, sizeof(buf)), 4);
    ck_assert_mem_eq(buf, "back", 4);

    /* Closing the detached end returns its buffers and leaves the fd. */
    sw_conn_close(&c);
    ck_assert_uint_eq(pool.nused, 0);
    ck_assert_int_eq(send(io.fd, "alive", 5, MSG_NOSIGNAL), 5);
    ck_assert_int_eq(peer_recv(sv[1], buf, sizeof(buf)), 5);

    /* Another end takes the socket over (a keep-alive reuse). */
    struct owner o2 = {0};
    struct sw_conn c2;
    sw_conn_init(&c2, "upstream", base, &pool, &handlers, &o2);
    sw_conn_attach(&c2, &io);
    ck_assert_int_eq(c2.io.fd, sv[0]);
    peer_send(sv[1], "reuse", 5);
    sw_conn_watch(&c2, true, false);
    pump();
    ck_assert_int_eq(o2.reads, 1);
    ck_assert_int_eq(o.reads, 0);
    ck_assert_int_eq(sw_conn_read(&c2), 5);
    check_in(&c2, "reuse");
    sw_conn_close(&c2);
    ck_assert_int_eq(peer_recv(sv[1], buf, sizeof(buf)), 0);
    close(sv[1]);
    rig_fini();
}
END_TEST

/* ---- the timer ---------------------------------------------------------- */

START_TEST(test_timer)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);

    /* An end with no socket has a timer too (a connect deadline). */
    ck_assert(!sw_conn_timer_armed(&c));
    sw_conn_timer(&c, 1);
    ck_assert(sw_conn_timer_armed(&c));
    loop_until(&o.timers, 1);
    ck_assert_int_eq(o.timers, 1);
    ck_assert_ptr_eq(o.seen, &c);
    ck_assert(!sw_conn_timer_armed(&c)); /* one shot */

    /* Re-arming moves the deadline; 0 disarms. */
    sw_conn_timer(&c, 60000);
    ck_assert(sw_conn_timer_armed(&c));
    sw_conn_timer(&c, 1);
    ck_assert(sw_conn_timer_armed(&c));
    loop_until(&o.timers, 2);
    ck_assert_int_eq(o.timers, 2);
    sw_conn_timer(&c, 60000);
    sw_conn_timer(&c, 0);
    ck_assert(!sw_conn_timer_armed(&c));
    sw_conn_timer(&c, 0); /* disarming a disarmed timer */
    ck_assert(!sw_conn_timer_armed(&c));

    /* Attached, the timer fires alongside socket events. */
    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);
    sw_conn_timer(&c, 1);
    loop_until(&o.timers, 3);
    ck_assert_int_eq(o.timers, 3);
    ck_assert_int_eq(o.reads + o.writes, 0);

    /* Close disarms. */
    sw_conn_timer(&c, 60000);
    sw_conn_close(&c);
    ck_assert(!sw_conn_timer_armed(&c));
    close(sv[1]);

    /* A table without on_timer: the deadline passes, nothing is called. */
    struct owner q = {0};
    struct sw_conn n;
    sw_conn_init(&n, "client", base, &pool, &no_timer_handlers, &q);
    sw_conn_timer(&n, 1);
    /* c's later deadline ends the wait: by the time it fires, n's has
     * expired too (libevent runs timers in deadline order). */
    sw_conn_timer(&c, 20);
    loop_until(&o.timers, 4);
    ck_assert_int_eq(o.timers, 4);
    ck_assert(!sw_conn_timer_armed(&n));
    ck_assert_int_eq(q.reads + q.writes + q.timers, 0);
    rig_fini();
}
END_TEST

/* ---- buffers ------------------------------------------------------------ */

START_TEST(test_release_idle)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);

    /* Nothing held: nothing to do. */
    sw_conn_release_idle(&c);
    ck_assert_ptr_null(c.in);
    ck_assert_ptr_null(c.out);

    /* Input held, output empty: only the output goes back. */
    peer_send(sv[1], "abc", 3);
    ck_assert_int_eq(sw_conn_read(&c), 3);
    ck_assert_uint_eq(sw_conn_out_room(&c), 4096);
    ck_assert_uint_eq(pool.nused, 2);
    sw_conn_release_idle(&c);
    ck_assert_ptr_null(c.out);
    check_in(&c, "abc");
    ck_assert_uint_eq(pool.nused, 1);

    /* Output held, input consumed: only the input goes back. */
    put_bytes(&c, "xyz", 3);
    c.in->pos = c.in->last;
    sw_conn_release_idle(&c);
    ck_assert_ptr_null(c.in);
    ck_assert_ptr_nonnull(c.out);
    ck_assert_uint_eq(sw_buf_len(c.out), 3);
    ck_assert_uint_eq(pool.nused, 1);

    /* A partly sent output is not empty: kept. */
    c.out->pos++;
    sw_conn_release_idle(&c);
    ck_assert_ptr_nonnull(c.out);
    ck_assert_uint_eq(sw_buf_len(c.out), 2);
    ck_assert_int_eq(sw_conn_flush(&c), 2);
    sw_conn_release_idle(&c);
    ck_assert_ptr_null(c.out);
    ck_assert_uint_eq(pool.nused, 0);

    /* The single-buffer helpers. */
    ck_assert_uint_eq(sw_conn_out_room(&c), 4096);
    put_bytes(&c, "q", 1);
    sw_conn_buf_release_if_empty(&c, &c.out);
    ck_assert_ptr_nonnull(c.out);
    sw_conn_buf_release(&c, &c.out);
    ck_assert_ptr_null(c.out);
    sw_conn_buf_release_if_empty(&c, &c.out); /* NULL is fine */
    ck_assert_uint_eq(pool.nused, 0);

    /* buf_ready: fresh from the pool, then rewound once emptied. */
    struct sw_buf *b = NULL;
    ck_assert(sw_conn_buf_ready(&c, &b));
    ck_assert_ptr_nonnull(b);
    ck_assert(sw_buf_append(b, "12345", 5));
    b->pos = b->last;
    ck_assert(sw_conn_buf_ready(&c, &b));
    ck_assert_ptr_eq(b->pos, b->start);
    ck_assert_uint_eq(sw_buf_room(b), 4096);
    sw_conn_buf_release(&c, &b);
    ck_assert_ptr_null(b);

    sw_conn_close(&c);
    close(sv[1]);
    rig_fini();
}
END_TEST

/* ---- sw_conn_show_flags ------------------------------------------------- */

#define ALL_FLAGS                                                              \
    (SW_CONN_F_READING | SW_CONN_F_WRITING | SW_CONN_F_EOF | SW_CONN_F_RESET | \
     SW_CONN_F_DEAD | SW_CONN_F_READ_WANTS_WRITE | SW_CONN_F_WRITE_WANTS_READ)

static const struct {
    unsigned flags;
    const char *text;
} flag_vectors[] = {
    {0, "-"},
    {SW_CONN_F_READING, "READING"},
    {SW_CONN_F_WRITING, "WRITING"},
    {SW_CONN_F_EOF, "EOF"},
    {SW_CONN_F_RESET, "RESET"},
    {SW_CONN_F_DEAD, "DEAD"},
    {SW_CONN_F_READ_WANTS_WRITE, "READ_WANTS_WRITE"},
    {SW_CONN_F_WRITE_WANTS_READ, "WRITE_WANTS_READ"},
    {SW_CONN_F_READING | SW_CONN_F_EOF, "READING|EOF"},
    {SW_CONN_F_EOF | SW_CONN_F_RESET, "EOF|RESET"},
    {SW_CONN_F_WRITING | SW_CONN_F_DEAD | SW_CONN_F_WRITE_WANTS_READ,
     "WRITING|DEAD|WRITE_WANTS_READ"},
    {ALL_FLAGS, "READING|WRITING|EOF|RESET|DEAD|READ_WANTS_WRITE|"
                "WRITE_WANTS_READ"},
};

START_TEST(test_show_flags)
{
    char out[SW_CONN_FLAGS_TEXT];
    for (size_t i = 0; i < SW_NELEMS(flag_vectors); i++) {
        ck_assert_ptr_eq(
            sw_conn_show_flags(flag_vectors[i].flags, out, sizeof(out)), out);
        ck_assert_str_eq(out, flag_vectors[i].text);
    }
    /* SW_CONN_FLAGS_TEXT is enough for every name. */
    ck_assert_uint_lt(strlen(flag_vectors[SW_NELEMS(flag_vectors) - 1].text),
                      SW_CONN_FLAGS_TEXT);

    /* Every small size, the buffer flush against a guard page so that a
     * byte written past it crashes: the text is NUL-terminated inside it
     * and is a prefix of the full text (the whole text once it fits). */
    for (size_t i = 0; i < SW_NELEMS(flag_vectors); i++) {
        const char *full = flag_vectors[i].text;
        for (size_t n = 1; n <= SW_CONN_FLAGS_TEXT; n++) {
            char init[SW_CONN_FLAGS_TEXT];
            memset(init, '#', sizeof(init));
            char *p = sw_test_guard_copy(init, n);
            ck_assert_ptr_eq(sw_conn_show_flags(flag_vectors[i].flags, p, n),
                             p);
            size_t len = strnlen(p, n);
            ck_assert_msg(len < n, "flags %#x, n %zu: not terminated",
                          flag_vectors[i].flags, n);
            ck_assert_msg(strncmp(p, full, len) == 0,
                          "flags %#x, n %zu: \"%s\" is not a prefix of %s",
                          flag_vectors[i].flags, n, p, full);
            if (n > strlen(full)) {
                ck_assert_str_eq(p, full);
            }
            sw_test_guard_free(p, n);
        }
    }
}
END_TEST

/*
 * BUG (lib/conn): sw_conn_show_flags() writes out[0] before looking at n, so
 * a zero-size buffer gets one byte written past its end. The buffer here is
 * the empty range right before a PROT_NONE page: the stray write crashes
 * (SIGSEGV) until the function checks n == 0 first, as snprintf does.
 */
START_TEST(test_show_flags_zero_size)
{
    char *p = sw_test_guard_copy(NULL, 0);
    ck_assert_ptr_eq(sw_conn_show_flags(0, p, 0), p);
    ck_assert_ptr_eq(sw_conn_show_flags(ALL_FLAGS, p, 0), p);
    sw_test_guard_free(p, 0);
}
END_TEST

/* ---- a gentle close ----------------------------------------------------- */

/*
 * Our end got `unread` bytes it never read; it sends until its socket is
 * full, so that some bytes are still queued on our side (not yet in the
 * peer's receive buffer) when it is closed, gently or not. Returns what
 * the peer read in the end and how its reads ended; *sent gets what we
 * sent.
 */
static size_t
close_with_unread(bool gently, size_t unread, uint8_t *got, size_t cap,
                  size_t *sent, ssize_t *end, int *err)
{
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    int sv[2];
    tcp_pair_rcvbuf(sv, 4096);
    int sndbuf = 16 * 1024;
    ck_assert_int_eq(
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    attach_fd(&c, sv[0]);
    uint8_t *junk = malloc(unread);
    ck_assert_ptr_nonnull(junk);
    memset(junk, 'j', unread);
    peer_send(sv[1], junk, unread);
    free(junk);
    ck_assert(wait_readable(sv[0]));

    /* Send the pattern until the socket takes no more. */
    *sent = 0;
    for (int i = 0; i < 10000; i++) {
        size_t room = sw_conn_out_room(&c);
        fill_pattern(c.out->last, room, *sent + sw_buf_len(c.out));
        c.out->last += room;
        ssize_t n = sw_conn_flush(&c);
        ck_assert_int_ge(n, 0);
        *sent += (size_t)n;
        if (sw_buf_len(c.out) > 0) {
            break;
        }
    }
    ck_assert_uint_gt(*sent, 0);
    ck_assert_uint_le(*sent, cap);
    /* Bytes are still on our side: the peer's window is closed. */
    int queued = 0;
    ck_assert_int_eq(ioctl(sv[0], SIOCOUTQ, &queued), 0);
    ck_assert_int_gt(queued, 0);

    sw_conn_watch(&c, true, false);
    if (gently) {
        sw_conn_close_gently(&c);
    } else {
        sw_conn_close(&c);
    }
    ck_assert_int_eq(c.io.fd, -1);
    ck_assert_uint_eq(c.flags, 0);
    ck_assert_ptr_null(c.in);
    ck_assert_ptr_null(c.out);
    ck_assert_uint_eq(pool.nused, 0);
    size_t n = peer_recv_all(sv[1], got, cap, end, err);
    close(sv[1]);
    return n;
}

START_TEST(test_close_gently)
{
    rig_init(4096);
    size_t cap = 4u << 20;
    uint8_t *got = malloc(cap);
    ck_assert_ptr_nonnull(got);
    size_t sent;
    ssize_t end;
    int err;

    /* Unread input, more than one drain read: the peer reads every byte
     * we sent, including those still queued at the close, then EOF. */
    size_t n = close_with_unread(true, 20000, got, cap, &sent, &end, &err);
    ck_assert_msg(end == 0, "peer saw an error (%s), not EOF", strerror(err));
    ck_assert_uint_eq(n, sent);
    ck_assert(is_pattern(got, n, 0));

    /* A single unread byte is enough to need it. */
    n = close_with_unread(true, 1, got, cap, &sent, &end, &err);
    ck_assert_msg(end == 0, "peer saw an error (%s), not EOF", strerror(err));
    ck_assert_uint_eq(n, sent);
    ck_assert(is_pattern(got, n, 0));

    /* What it prevents: a plain close with unread input is a reset, the
     * bytes still queued are lost and the peer reads an error. */
    n = close_with_unread(false, 20000, got, cap, &sent, &end, &err);
    ck_assert_int_eq(end, -1);
    ck_assert_int_eq(err, ECONNRESET);
    ck_assert_uint_lt(n, sent);
    free(got);

    /* Gentle on a closed end is a plain no-op. */
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    sw_conn_close_gently(&c);
    ck_assert_int_eq(c.io.fd, -1);
    rig_fini();
}
END_TEST

/* ---- TLS: pending decrypted bytes --------------------------------------- */

/* A server context with a throwaway self-signed P-256 certificate. */
static SSL_CTX *
tls_server_ctx(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(key);
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)"conn.test", -1, -1, 0);
    ck_assert_int_eq(X509_set_issuer_name(x, name), 1);
    ck_assert_int_eq(X509_set_pubkey(x, key), 1);
    ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(SSL_CTX_use_certificate(ctx, x), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(x);
    EVP_PKEY_free(key);
    return ctx;
}

START_TEST(test_tls_pending_read)
{
    /* Buffers of 10 bytes: a 100-byte record is read in ten pieces, and
     * after the first one OpenSSL holds the rest decrypted: the socket has
     * nothing to signal. */
    rig_init(10);
    SSL_CTX *sctx = tls_server_ctx();
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(cctx);
    int sv[2];
    unix_pair(sv);

    SSL *ours = SSL_new(sctx);
    ck_assert_ptr_nonnull(ours);
    SSL_set_fd(ours, sv[0]);
    SSL_set_accept_state(ours);
    SSL *peer = SSL_new(cctx);
    ck_assert_ptr_nonnull(peer);
    SSL_set_fd(peer, sv[1]);
    SSL_set_connect_state(peer);

    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    sw_conn_attach(
        &c, &(struct sw_io){.fd = sv[0], .ops = &sw_io_tls, .tls = ours});

    enum sw_status rc = SW_AGAIN;
    bool peer_ok = false;
    for (int i = 0; i < 100 && !(rc == SW_OK && peer_ok); i++) {
        if (rc == SW_AGAIN) {
            rc = c.io.ops->handshake(&c.io);
        }
        if (!peer_ok) {
            ERR_clear_error();
            int r = SSL_do_handshake(peer);
            peer_ok = r == 1;
            if (!peer_ok) {
                int e = SSL_get_error(peer, r);
                ck_assert(e == SSL_ERROR_WANT_READ ||
                          e == SSL_ERROR_WANT_WRITE);
            }
        }
        ck_assert(rc == SW_OK || rc == SW_AGAIN);
    }
    ck_assert_int_eq(rc, SW_OK);
    ck_assert(peer_ok);
    /* Let the peer take its tickets, so nothing is left in flight. */
    char sink[256];
    ERR_clear_error();
    SSL_read(peer, sink, sizeof(sink));
    ERR_clear_error();

    uint8_t msg[100];
    fill_pattern(msg, sizeof(msg), 0);
    ck_assert_int_eq(SSL_write(peer, msg, sizeof(msg)), (int)sizeof(msg));
    ck_assert(wait_readable(sv[0]));
    ck_assert_int_eq(sw_conn_read(&c), 10);
    ck_assert_uint_eq(c.io.ops->pending(&c.io), 90);
    ck_assert(!is_readable(sv[0])); /* the whole record left the socket */

    /* Each watch with read schedules a callback while bytes are pending;
     * the socket alone would never fire one. */
    uint8_t got[100];
    size_t rcvd = 10;
    memcpy(got, c.in->pos, 10);
    c.in->pos = c.in->last;
    for (int i = 0; i < 20 && rcvd < sizeof(got); i++) {
        ck_assert(!is_readable(sv[0]));
        int before = o.reads;
        sw_conn_watch(&c, true, false);
        ck_assert(sw_conn_has(&c, SW_CONN_F_READING));
        pump();
        ck_assert_int_eq(o.reads, before + 1);
        ck_assert_ptr_eq(o.seen, &c);
        ssize_t n = sw_conn_read(&c);
        ck_assert_int_eq(n, 10);
        memcpy(got + rcvd, c.in->pos, 10);
        rcvd += 10;
        c.in->pos = c.in->last;
    }
    ck_assert_uint_eq(rcvd, sizeof(got));
    ck_assert(is_pattern(got, sizeof(got), 0));
    ck_assert_uint_eq(c.io.ops->pending(&c.io), 0);

    /* Nothing pending, nothing on the socket: no callback. */
    int before = o.reads;
    sw_conn_watch(&c, true, false);
    pump();
    pump();
    ck_assert_int_eq(o.reads, before);

    /* Pending bytes, but the owner watches write only: no read callback. */
    ck_assert_int_eq(SSL_write(peer, msg, 20), 20);
    ck_assert(wait_readable(sv[0]));
    ck_assert_int_eq(sw_conn_read(&c), 10);
    ck_assert_uint_eq(c.io.ops->pending(&c.io), 10);
    c.in->pos = c.in->last;
    sw_conn_watch(&c, false, true);
    before = o.reads;
    pump();
    ck_assert_int_eq(o.reads, before);
    ck_assert_int_ge(o.writes, 1);

    /* Close ends the TLS session: the peer reads close_notify. */
    sw_conn_close(&c);
    ck_assert_ptr_null(c.io.tls);
    ERR_clear_error();
    ck_assert(wait_readable(sv[1]));
    int r = SSL_read(peer, sink, sizeof(sink));
    ck_assert_int_eq(SSL_get_error(peer, r), SSL_ERROR_ZERO_RETURN);
    ERR_clear_error();
    SSL_free(peer);
    close(sv[1]);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    rig_fini();
}
END_TEST

static void
setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    sw_log_init(2, SW_LOG_ERROR);
}

static Suite *
conn_suite(void)
{
    Suite *s = suite_create("conn");
    TCase *lc = tcase_create("lifecycle");
    tcase_add_checked_fixture(lc, setup, NULL);
    tcase_add_test(lc, test_init_attach_close);
    tcase_add_test(lc, test_rebind);
    tcase_add_test(lc, test_detach);
    tcase_add_test(lc, test_close_gently);
    suite_add_tcase(s, lc);

    TCase *io = tcase_create("io");
    tcase_add_checked_fixture(io, setup, NULL);
    tcase_add_test(io, test_read_data_again_eof);
    tcase_add_test(io, test_read_full_buffer);
    tcase_add_test(io, test_read_reset);
    tcase_add_test(io, test_flush_all);
    tcase_add_test(io, test_flush_partial);
    tcase_add_test(io, test_flush_peer_gone);
    tcase_add_test(io, test_release_idle);
    suite_add_tcase(s, io);

    TCase *ev = tcase_create("events");
    tcase_add_checked_fixture(ev, setup, NULL);
    tcase_add_test(ev, test_watch_callbacks);
    tcase_add_test(ev, test_timer);
    tcase_add_test(ev, test_tls_pending_read);
    suite_add_tcase(s, ev);

    TCase *fl = tcase_create("flags");
    tcase_add_checked_fixture(fl, setup, NULL);
    tcase_add_test(fl, test_show_flags);
    tcase_add_test(fl, test_show_flags_zero_size);
    suite_add_tcase(s, fl);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(conn_suite());
}
