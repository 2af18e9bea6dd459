/*
 * conn_rig.h - the rig shared by the lib/conn suites (conn_test.c,
 * conn_io_test.c): one event_base and one buffer pool per test, owners that
 * count their callbacks, non-blocking socket pairs, a peer end driven with
 * plain send/recv, and the byte pattern the tests send.
 *
 *   test end                              peer end
 *   struct sw_conn (fd a) <-- socket --> plain fd b, driven by the test
 *
 * Pairs are socketpair(AF_UNIX) or loopback TCP (where a reset exists), all
 * non-blocking. The loop is run one non-blocking turn at a time
 * (EVLOOP_ONCE | EVLOOP_NONBLOCK); the only waits on the clock are bounded
 * by a guard timer, and every wait on a socket by poll() with a deadline
 * of WAIT_MS.
 *
 * Owns: `base` and `pool`, set up by rig_init() and torn down by rig_fini()
 * (which also checks that every buffer went back). A test process runs one
 * test at a time, so these two are the only globals and are not shared
 * between threads. Every helper fails the running test through ck_assert.
 */
#ifndef SW_TEST_CONN_RIG_H
#define SW_TEST_CONN_RIG_H

#include <shockwave/conn.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WAIT_MS 5000 /* deadline of any wait on a socket or the loop */

extern struct event_base *base; /* owned: the test's loop (rig_init) */
extern struct sw_buf_pool pool; /* owned: the test's buffers (rig_init) */

/* A fresh loop and a pool of 8 buffers of bufsize bytes. */
void rig_init(size_t bufsize);
/* Asserts every buffer is back in the pool, then frees pool and loop. */
void rig_fini(void);
/* The suites' checked fixture: SIGPIPE ignored, errors-only logging. */
void rig_setup(void);

/* An owner: counts what it is called for. */
struct owner {
    int reads;            /* on_read calls */
    int writes;           /* on_write calls */
    int timers;           /* on_timer calls */
    struct sw_conn *seen; /* the connection of the last call */
};

/* Tables whose callbacks count into the struct owner passed as arg. */
extern const struct sw_conn_handlers handlers;
/* A second owner's table, so a rebind really changes the table too. */
extern const struct sw_conn_handlers other_handlers;
/* Like handlers, with no on_timer. */
extern const struct sw_conn_handlers no_timer_handlers;

/* One non-blocking turn of the loop. */
void pump(void);
/* Run the loop until *count reaches want or WAIT_MS passed. */
void loop_until(const int *count, int want);

/* A non-blocking socketpair(AF_UNIX, SOCK_STREAM). */
void unix_pair(int sv[2]);
/* A connected loopback TCP pair, both ends non-blocking: sv[0] accepted
 * (the test's end), sv[1] connected (the peer). A peer_rcvbuf other than 0
 * is set before connecting, so the window the peer offers stays small. */
void tcp_pair_rcvbuf(int sv[2], int peer_rcvbuf);
void tcp_pair(int sv[2]);
/* Close with SO_LINGER 0: the other end gets a reset, not a FIN. */
void close_reset(int fd);

/* Readable within WAIT_MS. */
bool wait_readable(int fd);
/* Readable right now, without waiting. */
bool is_readable(int fd);

/* Send all of p from a peer fd (waits for room, bounded). */
void peer_send(int fd, const void *p, size_t n);
/* One recv on a peer fd after waiting for it to be readable: bytes, 0 at
 * EOF, -1 with errno. */
ssize_t peer_recv(int fd, void *p, size_t n);
/* Read from a peer fd until EOF or error; the bytes go to p (at most cap),
 * *end gets the last recv result (0 EOF, -1 error with errno saved). */
size_t peer_recv_all(int fd, uint8_t *p, size_t cap, ssize_t *end, int *err);

/* Make a conn end on fd with the plain transport. */
void attach_fd(struct sw_conn *c, int fd);
/* sw_conn_init c (role, the counting handlers, owner o) and attach it to
 * sv[0] of a new pair: loopback TCP when tcp, else AF_UNIX. */
void conn_on_pair(struct sw_conn *c, const char *role, struct owner *o,
                  int sv[2], bool tcp);

/* The libevent state matches the flags word. */
void check_events(const struct sw_conn *c);

/* The pattern: byte i of a stream is i % 251; off is the first byte's
 * offset in the stream. */
void fill_pattern(uint8_t *p, size_t n, size_t off);
bool is_pattern(const uint8_t *p, size_t n, size_t off);

/* Append to c->out, which must have room. */
void put_bytes(struct sw_conn *c, const void *p, size_t n);
/* c->in holds exactly the string want. */
void check_in(const struct sw_conn *c, const char *want);

#endif
