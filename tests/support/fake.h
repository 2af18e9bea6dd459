/*
 * fake.h - scripted fake upstreams for the integration suites (included by
 * net.h, implemented in fake.c).
 *
 * A `struct sw_test_fake` is a listening socket served by one thread that
 * plays a scripted upstream (garbage, resets, stalls, canned replies) and
 * records every byte it receives, so tests can assert what reached the
 * upstream.
 *
 * Threading: a fake's recording is guarded by its mutex; the rest is set
 * before sw_test_fake_start() and read by its thread until
 * sw_test_fake_stop().
 */
#ifndef SW_TEST_FAKE_H
#define SW_TEST_FAKE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* What a fake upstream does once it has sent its reply. */
enum sw_test_fake_mode {
    SW_TEST_FAKE_CLOSE = 0,    /* send the reply, then close (FIN) */
    SW_TEST_FAKE_RESET,        /* send the reply, then reset (RST) */
    SW_TEST_FAKE_STALL,        /* send the reply, then hold the connection */
    SW_TEST_FAKE_KEEP,         /* keep-alive: the reply again per request */
    SW_TEST_FAKE_RESET_REUSED, /* keep-alive for the first request on a
                                  connection, then reset (RST) once a
                                  further request on it is complete */
    SW_TEST_FAKE_SCRIPT,       /* f->script answers each connection's
                                  first request head and says what to do
                                  after it (CLOSE, RESET or STALL) */
};

/* SCRIPT mode: write the answer to the request head `head` (len bytes: the
 * connection's bytes so far) into reply (cap bytes) and its length into *n
 * (0 = no answer); return what to do next. Runs on the fake's thread. */
typedef enum sw_test_fake_mode (*sw_test_fake_script_cb)(void *arg,
                                                         const char *head,
                                                         size_t len,
                                                         char *reply,
                                                         size_t cap, size_t *n);

struct sw_test_fake {
    int lfd;                       /* listening socket */
    int port;                      /* its port */
    pthread_t thread;              /* the serving thread */
    atomic_bool stop;              /* asks the thread to end */
    bool running;                  /* thread started */
    enum sw_test_fake_mode mode;   /* what to do after the reply */
    bool no_wait;                  /* reply at accept, before any request */
    const char *reply;             /* borrowed (caller keeps it alive) */
    size_t reply_len;              /* bytes of reply (may be 0) */
    pthread_mutex_t mu;            /* guards rx */
    char *rx;                      /* owned: every byte received, in order */
    size_t rx_len;                 /* bytes in rx */
    size_t rx_cap;                 /* capacity of rx */
    atomic_int accepts;            /* connections accepted */
    atomic_int resets;             /* RESET_REUSED: connections reset on a
                                      reused request */
    sw_test_fake_script_cb script; /* SCRIPT mode: set before start */
    void *script_arg;              /* its argument */
};

/* Bind a free port and start serving. `reply` must outlive the fake. */
bool sw_test_fake_start(struct sw_test_fake *f, enum sw_test_fake_mode mode,
                        const char *reply, size_t reply_len);
/* Stop the thread, close sockets. Keeps rx for inspection until _free. */
void sw_test_fake_stop(struct sw_test_fake *f);
void sw_test_fake_free(struct sw_test_fake *f);
/* Snapshot of received bytes (malloc'd, NUL-terminated); *len if not NULL. */
char *sw_test_fake_rx(struct sw_test_fake *f, size_t *len);

#endif
