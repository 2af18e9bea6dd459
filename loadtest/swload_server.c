/*
 * swload_server.c - `swload echo` and `swload sink`: the HTTP/1.1 and
 * WebSocket test backend.
 *
 * One event_base per thread (--threads N, default 1), each with its own
 * listener per --listen address (SO_REUSEPORT when N > 1), its own
 * connections and nothing shared but the atomic connection counter behind
 * X-Conn-Id. The main thread only waits for SIGTERM/SIGINT, then stops the
 * workers and frees everything.
 *
 * A connection is a bufferevent. Backpressure both ways: the input stops
 * being read above IN_HIGH bytes (bufferevent read watermark), and nothing
 * is produced while the output holds OUT_HIGH bytes or more; the write
 * callback (low watermark OUT_LOW) resumes production. So memory per
 * connection stays bounded whatever the body or message size.
 *
 * This file holds the connection lifetime, the state dispatch and the
 * process; the HTTP states are in swload_server_http.c, the WebSocket state
 * in swload_server_ws.c, the shared types in swload_server_int.h.
 *
 * Connection states (changed only by set_state):
 *
 *            +--------------- keep-alive ----------------+
 *            v                                           |
 *   ---> HEAD --head--> BODY --body done--> respond ---> + --> DRAIN --+
 *          |                                 |   ^            (flushed) |
 *          |                                 |   |   CLOSED <-- LINGER <-+
 *          |                                 |   |   (peer FIN or 2 s; input
 *          |                                 |   |    discarded meanwhile)
 *          |                         GEN (generated body) / WAIT (timer, stall)
 *          +--upgrade--> WS --close handshake--> DRAIN
 *   any state --error or peer gone--> CLOSED
 *
 * Close is deferred: callbacks run the state machine, then
 * swload_server_settle() frees the connection as their last step; nothing
 * touches it after that.
 */
#include "swload_server_int.h"

#include <event2/thread.h>

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* ---- connection lifetime ---------------------------------------------- */

static void
conn_free(struct conn *c)
{
    if (c == NULL) {
        return;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        c->w->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    if (c->timer != NULL) {
        event_free(c->timer);
    }
    if (c->pending != NULL) {
        evbuffer_free(c->pending);
    }
    EVP_MD_CTX_free(c->sha);
    bufferevent_free(c->bev);
    free(c);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
    struct worker *w = arg;
    struct conn *c = NULL;
    int one = 1;

    SW_UNUSED(l);
    SW_UNUSED(sa);
    SW_UNUSED(salen);
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        /* Unix sockets or an odd kernel: latency only, not an error. */
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        evutil_closesocket(fd);
        goto out;
    }
    c->w = w;
    c->id = atomic_fetch_add(&w->srv->nconns, 1) + 1;
    c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->pending = evbuffer_new();
    if (c->bev == NULL || c->pending == NULL) {
        if (c->bev == NULL) {
            evutil_closesocket(fd);
        }
        if (c->pending != NULL) {
            evbuffer_free(c->pending);
        }
        if (c->bev != NULL) {
            bufferevent_free(c->bev);
        }
        free(c);
        goto out;
    }
    c->next = w->conns;
    if (w->conns != NULL) {
        w->conns->prev = c;
    }
    w->conns = c;
    c->state = ST_HEAD;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, IN_HIGH);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
out:
    return;
}

/* ---- dispatch --------------------------------------------------------- */

/* Run the state machine as far as input and output room allow. */
static void
process(struct conn *c)
{
    enum sw_status rc = SW_OK;

    while (rc == SW_OK && out_len(c) < OUT_HIGH) {
        switch (c->state) {
        case ST_HEAD:
            rc = swload_server_head(c);
            break;
        case ST_BODY:
            rc = swload_server_body(c);
            break;
        case ST_GEN:
            rc = swload_server_gen(c);
            break;
        case ST_WS:
            rc = swload_server_ws(c);
            break;
        case ST_LINGER:
            evbuffer_drain(bufferevent_get_input(c->bev),
                           evbuffer_get_length(bufferevent_get_input(c->bev)));
            return;
        case ST_WAIT:
        case ST_DRAIN:
        case ST_CLOSED:
            return;
        }
    }
    if (rc != SW_OK && rc != SW_AGAIN) {
        set_state(c, ST_CLOSED);
    }
}

/* Everything is sent: half-close and read until the peer closes too, so
 * that unread input (a rejected head, pipelined requests) does not turn our
 * close into a RST that would destroy the response in flight. */
static void
linger(struct conn *c)
{
    struct timeval tv = {2, 0};

    if (c->eof) {
        set_state(c, ST_CLOSED);
        return;
    }
    if (c->timer == NULL) {
        c->timer = evtimer_new(c->w->base, swload_server_timer, c);
    }
    if (c->timer == NULL || shutdown(bufferevent_getfd(c->bev), SHUT_WR) != 0) {
        set_state(c, ST_CLOSED);
        return;
    }
    evtimer_add(c->timer, &tv);
    set_state(c, ST_LINGER);
    evbuffer_drain(bufferevent_get_input(c->bev),
                   evbuffer_get_length(bufferevent_get_input(c->bev)));
    bufferevent_enable(c->bev, EV_READ);
}

/* Last step of every callback: close what is finished. */
void
swload_server_settle(struct conn *c)
{
    if (c->eof && c->state == ST_LINGER) {
        set_state(c, ST_CLOSED);
    }
    if (c->eof && c->state != ST_CLOSED && c->state != ST_DRAIN) {
        bool timer = c->timer != NULL && evtimer_pending(c->timer, NULL);
        if (c->state == ST_BODY) {
            set_state(c, ST_CLOSED); /* the body will never end */
        } else if (c->state == ST_HEAD || c->state == ST_WS ||
                   (c->state == ST_WAIT && !timer)) {
            set_state(c, ST_DRAIN);
        }
    }
    if (c->state == ST_DRAIN) {
        if (out_len(c) == 0) {
            linger(c);
        } else {
            bufferevent_disable(c->bev, EV_READ);
            bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        }
    }
    if (c->state == ST_CLOSED) {
        conn_free(c);
    }
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    SW_UNUSED(bev);
    process(c);
    swload_server_settle(c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    SW_UNUSED(bev);
    process(c);
    swload_server_settle(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    SW_UNUSED(bev);
    if (what & BEV_EVENT_ERROR) {
        if (c->state != ST_CLOSED) {
            set_state(c, ST_CLOSED);
        }
    } else if (what & BEV_EVENT_EOF) {
        c->eof = true;
        process(c);
    }
    swload_server_settle(c);
}

/* ---- process ---------------------------------------------------------- */

static void *
worker_run(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    return NULL;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;

    SW_UNUSED(sig);
    SW_UNUSED(what);
    for (unsigned i = 0; i < srv->nthreads; i++) {
        event_base_loopbreak(srv->workers[i].base);
    }
}

static void
server_usage(void)
{
    fputs("usage: swload echo|sink --listen ADDR [--listen ADDR...]"
          " [--name NAME] [--threads N]\n",
          stderr);
}

static enum sw_status
server_listen(struct server *srv)
{
    unsigned flags =
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
    char text[80];

    if (srv->nthreads > 1) {
        flags |= LEV_OPT_REUSEABLE_PORT;
    }
    for (size_t i = 0; i < srv->nlistens; i++) {
        for (unsigned t = 0; t < srv->nthreads; t++) {
            struct worker *w = &srv->workers[t];
            w->ls[i] = evconnlistener_new_bind(
                w->base, on_accept, w, flags, 1024,
                (struct sockaddr *)&srv->addrs[i], (int)srv->addrlens[i]);
            if (w->ls[i] == NULL) {
                swload_addr_format((struct sockaddr *)&srv->addrs[i], text,
                                   sizeof(text));
                fprintf(stderr, "swload: listen %s: %s\n", text,
                        strerror(errno));
                return SW_ERROR;
            }
            if (t == 0) {
                /* Port 0: the others bind the port the kernel chose. */
                socklen_t sl = sizeof(srv->addrs[i]);
                getsockname(evconnlistener_get_fd(w->ls[i]),
                            (struct sockaddr *)&srv->addrs[i], &sl);
            }
        }
        swload_addr_format((struct sockaddr *)&srv->addrs[i], text,
                           sizeof(text));
        printf("listening on %s\n", text);
    }
    fflush(stdout);
    return SW_OK;
}

int
swload_server_main(int argc, char **argv, bool sink)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"name", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct server *srv = NULL;
    struct event_base *main_base = NULL;
    struct event *sigs[2] = {NULL, NULL};
    int rc = 2;
    int opt;
    uint64_t v;

    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        goto out;
    }
    srv->sink = sink;
    srv->name = sink ? "sink" : "echo";
    srv->nthreads = 1;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "l:n:t:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            if (srv->nlistens == SWLOAD_MAX_LISTENS ||
                swload_addr_parse(optarg, &srv->addrs[srv->nlistens],
                                  &srv->addrlens[srv->nlistens]) != SW_OK) {
                fprintf(stderr, "swload: bad --listen %s\n", optarg);
                goto out;
            }
            srv->nlistens++;
            break;
        case 'n':
            srv->name = optarg;
            break;
        case 't':
            if (!swload_parse_u64(optarg, &v) || v == 0 || v > 256) {
                fprintf(stderr, "swload: bad --threads %s\n", optarg);
                goto out;
            }
            srv->nthreads = (unsigned)v;
            break;
        default:
            server_usage();
            goto out;
        }
    }
    if (srv->nlistens == 0 || optind != argc) {
        server_usage();
        goto out;
    }
    rc = 1;
    for (size_t i = 0; i < PATTERN_LEN; i++) {
        srv->pattern[i] = (uint8_t)(i % 251);
    }
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        goto out;
    }
    srv->workers = calloc(srv->nthreads, sizeof(*srv->workers));
    main_base = event_base_new();
    if (srv->workers == NULL || main_base == NULL) {
        goto out;
    }
    for (unsigned t = 0; t < srv->nthreads; t++) {
        srv->workers[t].srv = srv;
        srv->workers[t].base = event_base_new();
        if (srv->workers[t].base == NULL) {
            goto out;
        }
    }
    if (server_listen(srv) != SW_OK) {
        goto out;
    }
    sigs[0] = evsignal_new(main_base, SIGTERM, on_signal, srv);
    sigs[1] = evsignal_new(main_base, SIGINT, on_signal, srv);
    if (sigs[0] == NULL || sigs[1] == NULL) {
        goto out;
    }
    evsignal_add(sigs[0], NULL);
    evsignal_add(sigs[1], NULL);
    for (unsigned t = 0; t < srv->nthreads; t++) {
        struct worker *w = &srv->workers[t];
        if (pthread_create(&w->tid, NULL, worker_run, w) != 0) {
            goto out;
        }
        w->started = true;
    }
    /* Returns after on_signal: the signal events are then the only ones
     * left, so break the main loop from there too. */
    event_base_loop(main_base, EVLOOP_ONCE);
    rc = 0;

out:
    if (srv != NULL && srv->workers != NULL) {
        for (unsigned t = 0; t < srv->nthreads; t++) {
            struct worker *w = &srv->workers[t];
            if (w->started) {
                event_base_loopbreak(w->base);
                pthread_join(w->tid, NULL);
            }
            while (w->conns != NULL) {
                conn_free(w->conns);
            }
            for (size_t i = 0; i < SWLOAD_MAX_LISTENS; i++) {
                if (w->ls[i] != NULL) {
                    evconnlistener_free(w->ls[i]);
                }
            }
            if (w->base != NULL) {
                event_base_free(w->base);
            }
        }
        free(srv->workers);
    }
    for (size_t i = 0; i < SW_NELEMS(sigs); i++) {
        if (sigs[i] != NULL) {
            event_free(sigs[i]);
        }
    }
    if (main_base != NULL) {
        event_base_free(main_base);
    }
    free(srv);
    return rc;
}
