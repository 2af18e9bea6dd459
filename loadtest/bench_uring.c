/*
 * bench_uring.c - a plain TCP byte relay with two engines, epoll and
 * io_uring: CPU and kernel entries per relayed message of each, side by side
 * (loadtest/uring_probe runs it). One thread, no parsing, no TLS.
 *
 *   bench_uring --engine epoll|uring --listen 127.0.0.1:P
 *               --backend 127.0.0.1:Q [--duration S]
 *
 * Per accepted client a blocking connect to the backend, then bytes relayed
 * both ways untouched (WebSocket frames pass through).
 * epoll: level-triggered epoll_wait; on readable one recv into the side's
 * 16 KiB buffer, then one send to the peer at once; a partial send is kept,
 * the side stops reading and the peer waits for writable.
 * uring: multishot accept; multishot recv from a provided buffer ring (256
 * x 16 KiB, a buffer returns once its bytes were sent); sends are SQEs
 * queued during the turn, one in flight per direction (order), the rest
 * queued; one io_uring_submit_and_wait(ring, 1) per turn, then every CQE
 * drained. No SQPOLL.
 *
 * At exit (SIGINT, SIGTERM, --duration) one JSON line: engine, messages
 * (recvs or recv completions with bytes), bytes, user and system CPU
 * seconds (getrusage), kernel entries of the relay loop (epoll_wait + recv
 * + send, or io_uring_enter; accept, connect and close not counted).
 * Exit status 1 on bad arguments or set-up errors, 2 without io_uring.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (16 * 1024)
#define MAX_PAIRS 10000 /* client connections held at once */
#define NBUFS 256       /* provided buffers (a power of two) */
#define BGID 0
#define NONE 0xffff

static volatile sig_atomic_t stop_flag;
static struct {
    uint64_t messages, bytes, pairs, closed, errors;
    uint64_t epoll_wait, recv, send, epoll_ctl, enter;
} st;
static struct sockaddr_in backend_addr;
static unsigned npairs;

static void
on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int
parse_addr(const char *s, struct sockaddr_in *a)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return -1;
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static int
set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int
listen_on(const struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)a, sizeof(*a)) < 0 ||
        listen(fd, 1024) < 0 || set_nonblock(fd) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The backend side for a new client: a blocking connect on loopback, then
 * non-blocking, Nagle off (the relay forwards each message at once). */
static int
connect_backend(int cfd)
{
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)&backend_addr,
                sizeof(backend_addr)) < 0 ||
        set_nonblock(fd) < 0 || set_nonblock(cfd) < 0) {
        fprintf(stderr, "bench_uring: backend connect: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* A relay side: the fd and what was read from it but not yet sent on. */
struct side {
    int fd;
    int idx; /* 0 client, 1 backend */
    struct pair *p;
    /* epoll: bytes read from this side, waiting for the peer */
    size_t len, off;
    unsigned events; /* epoll: what is registered */
    char *buf;
    /* uring: buffers read from this side, FIFO, head in flight */
    uint16_t qhead, qtail;
    int sending, starved;
    struct side *next_starved;
};

struct pair {
    struct side s[2];
    int dead;     /* closing: no new work */
    int inflight; /* uring: SQEs not yet completed */
    struct pair *next_free;
};

static struct side *
peer_of(struct side *s)
{
    return &s->p->s[s->idx ^ 1];
}

static void
pair_free(struct pair *p)
{
    close(p->s[0].fd);
    close(p->s[1].fd);
    free(p);
    npairs--;
    st.closed++;
}

/* Connects a backend for the accepted client cfd; NULL (counted) if not.
 * The epoll engine's two 16 KiB buffers live in the same allocation. */
static struct pair *
accept_pair(int cfd, int with_bufs)
{
    int bfd = -1;
    struct pair *p = NULL;
    if (npairs >= MAX_PAIRS)
        fprintf(stderr, "bench_uring: %d connections held, refusing one\n",
                MAX_PAIRS);
    else if ((bfd = connect_backend(cfd)) >= 0 &&
             (p = calloc(1, sizeof(*p) + (with_bufs ? 2 * BUF_SIZE : 0))) ==
                 NULL)
        fprintf(stderr, "bench_uring: out of memory\n");
    if (p == NULL) {
        close(cfd);
        if (bfd >= 0)
            close(bfd);
        st.errors++;
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        p->s[i].fd = i == 0 ? cfd : bfd;
        p->s[i].idx = i;
        p->s[i].p = p;
        p->s[i].qhead = p->s[i].qtail = NONE;
        if (with_bufs)
            p->s[i].buf = (char *)(p + 1) + (size_t)i * BUF_SIZE;
    }
    npairs++;
    st.pairs++;
    return p;
}

static int ep;
static struct pair *graveyard; /* freed at the end of the turn */

static void
ep_update(struct side *s)
{
    struct side *peer = peer_of(s);
    unsigned want = (s->len == 0 ? EPOLLIN : 0) | (peer->len ? EPOLLOUT : 0);
    if (want == s->events)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = s};
    st.epoll_ctl++;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev) == 0)
        s->events = want;
}

static void
ep_kill(struct pair *p)
{
    if (p->dead)
        return;
    p->dead = 1; /* closed (and so out of the epoll set) after the turn */
    p->next_free = graveyard;
    graveyard = p;
}

/* Sends what s holds to its peer; 0 done or kept for later, -1 error. */
static int
ep_flush(struct side *s)
{
    struct side *peer = peer_of(s);
    while (s->off < s->len) {
        st.send++;
        ssize_t n =
            send(peer->fd, s->buf + s->off, s->len - s->off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        s->off += (size_t)n;
    }
    s->len = s->off = 0;
    return 0;
}

/* Sends on what was read from side from; then what each side waits for. */
static void
ep_relay(struct side *from)
{
    if (ep_flush(from) < 0) {
        ep_kill(from->p);
        return;
    }
    ep_update(from);
    ep_update(peer_of(from));
}

static void
ep_readable(struct side *s)
{
    if (s->len != 0)
        return; /* still sending the last read: not watched, stale event */
    st.recv++;
    ssize_t n = recv(s->fd, s->buf, BUF_SIZE, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        ep_kill(s->p);
        return;
    }
    st.messages++;
    st.bytes += (uint64_t)n;
    s->len = (size_t)n;
    s->off = 0;
    ep_relay(s);
}

static void
ep_accept(int lfd)
{
    for (;;) {
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                fprintf(stderr, "bench_uring: accept: %s\n", strerror(errno));
            return;
        }
        struct pair *p = accept_pair(cfd, 1);
        for (int i = 0; p != NULL && i < 2; i++) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &p->s[i]};
            p->s[i].events = EPOLLIN;
            if (epoll_ctl(ep, EPOLL_CTL_ADD, p->s[i].fd, &ev) < 0) {
                fprintf(stderr, "bench_uring: epoll_ctl: %s\n",
                        strerror(errno));
                ep_kill(p);
            }
        }
    }
}

static int
run_epoll(int lfd)
{
    struct epoll_event evs[256];
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
        fprintf(stderr, "bench_uring: epoll: %s\n", strerror(errno));
        return 1;
    }
    while (!stop_flag) {
        st.epoll_wait++;
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "bench_uring: epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct side *s = evs[i].data.ptr;
            if (s == NULL) {
                ep_accept(lfd);
                continue;
            }
            if (s->p->dead)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                ep_readable(s);
            if (!s->p->dead && (evs[i].events & EPOLLOUT))
                ep_relay(peer_of(s));
        }
        while (graveyard != NULL) {
            struct pair *p = graveyard;
            graveyard = p->next_free;
            pair_free(p);
        }
    }
    return 0;
}

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static struct {
    uint32_t len, off;
    uint16_t next;
} binfo[NBUFS];
static struct side *starved; /* recv stopped on ENOBUFS */
static int lfd_u;

static char *
buf_at(uint16_t bid)
{
    return bufs + (size_t)bid * BUF_SIZE;
}

static void
buf_return(uint16_t bid)
{
    io_uring_buf_ring_add(br, buf_at(bid), BUF_SIZE, bid,
                          io_uring_buf_ring_mask(NBUFS), 0);
    io_uring_buf_ring_advance(br, 1);
}

/* An SQE, submitting the queue first if it is full (counted). */
static struct io_uring_sqe *
sqe_get(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (sqe == NULL) {
        st.enter++;
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    if (sqe == NULL) {
        fprintf(stderr, "bench_uring: submission queue stuck full\n");
        exit(1);
    }
    return sqe;
}

static void
u_set(struct io_uring_sqe *sqe, struct side *s, int op)
{
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | (uint64_t)op);
    if (s != NULL)
        s->p->inflight++;
}

static void
u_accept(void)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_multishot_accept(sqe, lfd_u, NULL, NULL, 0);
    u_set(sqe, NULL, OP_ACCEPT);
}

static void
u_recv(struct side *s)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    u_set(sqe, s, OP_RECV);
}

/* Sends the head of s's queue (data read from s) to s's peer. */
static void
u_send_head(struct side *s)
{
    uint16_t bid = s->qhead;
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_send(sqe, peer_of(s)->fd, buf_at(bid) + binfo[bid].off,
                       binfo[bid].len - binfo[bid].off, MSG_NOSIGNAL);
    u_set(sqe, s, OP_SEND);
    s->sending = 1;
}

static void
u_kill(struct pair *p)
{
    if (p->dead)
        return;
    p->dead = 1;
    /* The pending recvs complete (EOF or error) and release the pair. */
    shutdown(p->s[0].fd, SHUT_RDWR);
    shutdown(p->s[1].fd, SHUT_RDWR);
    for (int i = 0; i < 2; i++) {
        struct side *s = &p->s[i];
        uint16_t bid = s->qhead;
        if (bid != NONE && s->sending)
            bid = binfo[bid].next; /* in flight: returned on completion */
        while (bid != NONE) {
            uint16_t next = binfo[bid].next;
            buf_return(bid);
            bid = next;
        }
        if (s->sending)
            binfo[s->qhead].next = NONE;
        else
            s->qhead = NONE;
    }
}

static void
u_rearm_starved(void)
{
    while (starved != NULL) {
        struct side *s = starved;
        starved = s->next_starved;
        s->starved = 0;
        if (!s->p->dead)
            u_recv(s);
        if (--s->p->inflight == 0 && s->p->dead)
            pair_free(s->p); /* the hold taken when it starved */
    }
}

static void
u_on_recv(struct side *s, struct io_uring_cqe *cqe)
{
    int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
        uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        st.messages++;
        st.bytes += (uint64_t)cqe->res;
        if (s->p->dead) {
            buf_return(bid);
        } else {
            binfo[bid].len = (uint32_t)cqe->res;
            binfo[bid].off = 0;
            binfo[bid].next = NONE;
            if (s->qhead == NONE)
                s->qhead = bid;
            else
                binfo[s->qtail].next = bid;
            s->qtail = bid;
            if (!s->sending)
                u_send_head(s);
        }
        if (!more && !s->p->dead)
            u_recv(s);
        return;
    }
    if (cqe->res == -ENOBUFS && !s->p->dead) {
        if (!more && !s->starved) {
            s->starved = 1;
            s->p->inflight++; /* keeps the pair while it waits */
            s->next_starved = starved;
            starved = s;
        }
        return;
    }
    if (cqe->res < 0 && cqe->res != -ECONNRESET && cqe->res != -EPIPE &&
        !s->p->dead) {
        fprintf(stderr, "bench_uring: recv: %s\n", strerror(-cqe->res));
        st.errors++;
    }
    u_kill(s->p); /* EOF, reset or error */
}

static void
u_on_send(struct side *s, int res)
{
    uint16_t bid = s->qhead;
    s->sending = 0;
    if (res > 0 && !s->p->dead) {
        binfo[bid].off += (uint32_t)res;
        if (binfo[bid].off < binfo[bid].len) {
            u_send_head(s); /* partial: the rest */
            return;
        }
    }
    s->qhead = binfo[bid].next;
    buf_return(bid);
    if (res <= 0) {
        u_kill(s->p);
        return;
    }
    if (s->qhead != NONE && !s->p->dead)
        u_send_head(s);
}

static void
u_on_accept(struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE) && !stop_flag)
        u_accept();
    if (cqe->res < 0) {
        fprintf(stderr, "bench_uring: accept: %s\n", strerror(-cqe->res));
        return;
    }
    struct pair *p = accept_pair(cqe->res, 0);
    if (p != NULL) {
        u_recv(&p->s[0]);
        u_recv(&p->s[1]);
    }
}

static int
run_uring(int lfd)
{
    struct io_uring_params params;
    /* One thread submits and reaps: completions' task work runs when it
     * waits (DEFER_TASKRUN), not by interrupting it; plain if refused. */
    unsigned flags[2] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, 0};
    int ret = -EINVAL;
    for (int i = 0; i < 2 && ret == -EINVAL; i++) {
        memset(&params, 0, sizeof(params));
        params.flags = IORING_SETUP_CQSIZE | flags[i];
        params.cq_entries = 16384;
        ret = io_uring_queue_init_params(1024, &ring, &params);
    }
    if (ret < 0) {
        fprintf(stderr,
                "bench_uring: io_uring_queue_init: %s (kernel without "
                "io_uring, seccomp, or kernel.io_uring_disabled)\n",
                strerror(-ret));
        return 2;
    }
    /* liburing 2.3 has no io_uring_setup_buf_ring: the ring by hand. */
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    br = mmap(NULL, NBUFS * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
              MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    bufs = malloc((size_t)NBUFS * BUF_SIZE);
    if (br == MAP_FAILED || bufs == NULL) {
        fprintf(stderr, "bench_uring: out of memory\n");
        return 1;
    }
    reg.ring_addr = (uint64_t)(uintptr_t)br;
    reg.ring_entries = NBUFS;
    reg.bgid = BGID;
    ret = io_uring_register_buf_ring(&ring, &reg, 0);
    if (ret < 0) {
        fprintf(stderr, "bench_uring: provided buffer ring: %s\n",
                strerror(-ret));
        return 2;
    }
    io_uring_buf_ring_init(br);
    for (uint16_t b = 0; b < NBUFS; b++)
        buf_return(b);
    lfd_u = lfd;
    u_accept();
    while (!stop_flag) {
        st.enter++;
        ret = io_uring_submit_and_wait(&ring, 1);
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
            fprintf(stderr, "bench_uring: io_uring_enter: %s\n",
                    strerror(-ret));
            return 1;
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        int returned = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            struct side *s = (struct side *)(uintptr_t)(ud & ~7ull);
            int op = (int)(ud & 7);
            seen++;
            if (op == OP_ACCEPT) {
                u_on_accept(cqe);
                continue;
            }
            if (op == OP_RECV) {
                u_on_recv(s, cqe);
            } else {
                u_on_send(s, cqe->res);
                returned = 1;
            }
            /* A multishot recv holds the pair until its last CQE. */
            if (op == OP_SEND || !(cqe->flags & IORING_CQE_F_MORE))
                s->p->inflight--;
            if (s->p->dead && s->p->inflight == 0)
                pair_free(s->p);
        }
        io_uring_cq_advance(&ring, seen);
        if (returned)
            u_rearm_starved();
    }
    return 0;
}

#define USAGE                                                                  \
    "usage: bench_uring --engine epoll|uring --listen 127.0.0.1:P "            \
    "--backend 127.0.0.1:Q [--duration S]\n"

int
main(int argc, char **argv)
{
    const char *engine = NULL, *listen_s = NULL, *backend_s = NULL;
    long duration = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v != NULL && strcmp(argv[i], "--engine") == 0)
            engine = v;
        else if (v != NULL && strcmp(argv[i], "--listen") == 0)
            listen_s = v;
        else if (v != NULL && strcmp(argv[i], "--backend") == 0)
            backend_s = v;
        else if (v != NULL && strcmp(argv[i], "--duration") == 0)
            duration = strtol(v, NULL, 10);
        else
            return fprintf(stderr, USAGE), 1;
        i++;
    }
    struct sockaddr_in la;
    if (engine == NULL || listen_s == NULL || backend_s == NULL ||
        (strcmp(engine, "epoll") != 0 && strcmp(engine, "uring") != 0) ||
        duration < 0)
        return fprintf(stderr, USAGE), 1;
    if (parse_addr(listen_s, &la) < 0 || parse_addr(backend_s, &backend_addr)) {
        fprintf(stderr, "bench_uring: addresses are IPv4 host:port\n");
        return 1;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop; /* no SA_RESTART: the wait returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_on(&la);
    if (lfd < 0) {
        fprintf(stderr, "bench_uring: listen on %s: %s\n", listen_s,
                strerror(errno));
        return 1;
    }
    if (duration > 0)
        alarm((unsigned)duration);
    int is_uring = strcmp(engine, "uring") == 0;
    int rc = is_uring ? run_uring(lfd) : run_epoll(lfd);
    if (rc == 2)
        return 2;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6;
    double sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
    uint64_t entries = is_uring ? st.enter : st.epoll_wait + st.recv + st.send;
    printf("{\"engine\":\"%s\",\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64
           ",\"user_s\":%.6f,\"sys_s\":%.6f,\"kernel_entries\":%" PRIu64
           ",\"epoll_wait\":%" PRIu64 ",\"recv\":%" PRIu64 ",\"send\":%" PRIu64
           ",\"epoll_ctl\":%" PRIu64 ",\"io_uring_enter\":%" PRIu64
           ",\"connections\":%" PRIu64 ",\"closed\":%" PRIu64
           ",\"errors\":%" PRIu64 "}\n",
           engine, st.messages, st.bytes, user, sys, entries, st.epoll_wait,
           st.recv, st.send, st.epoll_ctl, st.enter, st.pairs, st.closed,
           st.errors);
    fflush(stdout);
    return rc;
}
