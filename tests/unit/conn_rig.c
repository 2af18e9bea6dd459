/*
 * conn_rig.c - the rig shared by the lib/conn suites (see conn_rig.h): the
 * loop and pool of the running test, counting owners, socket pairs and the
 * peer's plain send/recv, all bounded by WAIT_MS.
 */
#include "conn_rig.h"

#include <shockwave/log.h>

#include "support.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the rig: one loop and one pool per test ---------------------------- */

struct event_base *base; /* the test's loop */
struct sw_buf_pool pool; /* the test's buffers */

void
rig_init(size_t bufsize)
{
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    sw_buf_pool_init(&pool, bufsize, 8);
}

/* Every test ends with every buffer back in the pool. */
void
rig_fini(void)
{
    ck_assert_uint_eq(pool.nused, 0);
    sw_buf_pool_fini(&pool);
    event_base_free(base);
    base = NULL;
}

void
rig_setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    sw_log_init(2, SW_LOG_ERROR);
}

/* ---- owners: count what they are called for ------------------------------ */

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

const struct sw_conn_handlers handlers = {
    .on_read = owner_read,
    .on_write = owner_write,
    .on_timer = owner_timer,
};

/* A second owner's table, so a rebind really changes the table too. */
const struct sw_conn_handlers other_handlers = {
    .on_read = owner_read,
    .on_write = owner_write,
    .on_timer = owner_timer,
};

const struct sw_conn_handlers no_timer_handlers = {
    .on_read = owner_read,
    .on_write = owner_write,
    .on_timer = NULL,
};

/* One non-blocking turn of the loop. */
void
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
void
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

void
unix_pair(int sv[2])
{
    ck_assert_int_eq(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
        0);
}

/* A connected loopback TCP pair, both ends non-blocking: sv[0] accepted
 * (the test's end), sv[1] connected (the peer). A peer_rcvbuf other than 0
 * is set before connecting, so the window the peer offers stays small. */
void
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

void
tcp_pair(int sv[2])
{
    tcp_pair_rcvbuf(sv, 0);
}

/* Close with SO_LINGER 0: the other end gets a reset, not a FIN. */
void
close_reset(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    ck_assert_int_eq(close(fd), 0);
}

bool
wait_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, WAIT_MS) == 1;
}

/* Readable right now, without waiting. */
bool
is_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

/* Send all of p from a peer fd (waits for room, bounded). */
void
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
ssize_t
peer_recv(int fd, void *p, size_t n)
{
    ck_assert_msg(wait_readable(fd), "peer fd %d never became readable", fd);
    return recv(fd, p, n, 0);
}

/* Read from a peer fd until EOF or error; the bytes go to p (at most cap),
 * *end gets the last recv result (0 EOF, -1 error with errno saved). */
size_t
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
void
attach_fd(struct sw_conn *c, int fd)
{
    sw_conn_attach(c, &(struct sw_io){.fd = fd, .ops = &sw_io_plain});
}

void
conn_on_pair(struct sw_conn *c, const char *role, struct owner *o, int sv[2],
             bool tcp)
{
    sw_conn_init(c, role, base, &pool, &handlers, o);
    if (tcp) {
        tcp_pair(sv);
    } else {
        unix_pair(sv);
    }
    attach_fd(c, sv[0]);
}

/* The libevent state matches the flags word. */
void
check_events(const struct sw_conn *c)
{
    ck_assert_int_eq(event_pending(&c->rev, EV_READ, NULL) != 0,
                     sw_conn_has(c, SW_CONN_F_READING));
    ck_assert_int_eq(event_pending(&c->wev, EV_WRITE, NULL) != 0,
                     sw_conn_has(c, SW_CONN_F_WRITING));
}

void
fill_pattern(uint8_t *p, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)((off + i) % 251);
    }
}

bool
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
void
put_bytes(struct sw_conn *c, const void *p, size_t n)
{
    ck_assert_uint_ge(sw_conn_out_room(c), n);
    ck_assert(sw_buf_append(c->out, p, n));
    sw__buf_validate(c->out);
}

void
check_in(const struct sw_conn *c, const char *want)
{
    ck_assert_ptr_nonnull(c->in);
    sw__buf_validate(c->in);
    size_t n = strlen(want);
    ck_assert_uint_eq(sw_buf_len(c->in), n);
    ck_assert_mem_eq(c->in->pos, want, n);
}
