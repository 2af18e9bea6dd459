/*
 * fanctl.h - the fan-out suites' side of tests/support/fanback.c (the
 * broadcast backend, a child process) and the checks every fan-out suite
 * makes on what its clients receive.
 *
 *   test --sw_test_fanback_cmd--> fanback control port
 *   fanback --"SEQ TARGET xxx"--> gateway --> every client of the channel
 *   test <--sw_test_fan_expect-- each client: SEQ consecutive, TARGET right
 *
 * A message from fanback is "SEQ TARGET xxx...": SEQ numbers the rounds of
 * `send` over the backend's whole run (the same SEQ goes to every
 * connection in a round), TARGET is the request target of the upstream
 * connection it went on, so a client can tell order (SEQ + 1 each time)
 * and channel (TARGET) from each message.
 *
 * Every call has a deadline; failures are Check assertions with a message
 * saying what was expected and what came.
 *
 * Threading: from the test's main thread (proc.h spawns from there).
 */
#ifndef SW_TEST_FANCTL_H
#define SW_TEST_FANCTL_H

#include "net.h"
#include "proc.h"
#include "wsclient.h"

#include <check.h>

#include <stdbool.h>
#include <stddef.h>

struct sw_test_fanback {
    struct sw_test_proc proc; /* the fanback process */
    int port;                 /* its WebSocket port */
    int ctl_port;             /* its control port */
    struct sw_test_conn ctl;  /* open control connection */
};

/*
 * Start SW_FANBACK (with --protocol when protocol is not NULL), wait for
 * its ports and connect to the control port. False (log copied to stderr)
 * when it did not come up.
 */
bool sw_test_fanback_start(struct sw_test_fanback *b, const char *protocol);

/* Close the control connection and stop the process by its pid. */
void sw_test_fanback_stop(struct sw_test_fanback *b);

/* Send one command line and return the answer line without its newline
 * (malloc'd), or NULL on timeout or a closed connection. */
char *sw_test_fanback_cmd(struct sw_test_fanback *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The same, asserting that the answer starts with `want`. */
void sw_test_fanback_ok(struct sw_test_fanback *b, const char *cmd,
                        const char *want);

/* One number of the "stats" answer ("accepted", "upgraded", "live",
 * "held", "msgs", "pings", "pongs", "closes", "lastclose", "errors",
 * "seq"); asserts that it is there. */
long long sw_test_fanback_stat(struct sw_test_fanback *b, const char *name);

/* Poll "stats" until `name` equals want or timeout_ms passed; returns the
 * last value read. */
long long sw_test_fanback_wait(struct sw_test_fanback *b, const char *name,
                               long long want, int timeout_ms);

/* "send n size [frag]": returns the SEQ of the first round (asserted). */
unsigned long long sw_test_fanback_send(struct sw_test_fanback *b, unsigned n,
                                        size_t size, bool frag);

/*
 * Read n messages on ws: each one text frame (one frame: the gateway joins
 * fragments) of at least min_size bytes, the first with SEQ `first` (0:
 * any), every next one SEQ + 1, each naming `target` (NULL: any). Returns
 * the SEQ of the last one. `who` names the client in failure messages.
 */
unsigned long long sw_test_fan_expect(struct sw_test_ws *ws, const char *who,
                                      unsigned long long first, unsigned n,
                                      const char *target, size_t min_size,
                                      int timeout_ms);

/* The SEQ and TARGET of a message payload "SEQ TARGET ..."; false when it
 * is not one. target gets at most cap - 1 bytes. */
bool sw_test_fan_parse(const char *payload, unsigned long long *seq,
                       char *target, size_t cap);

/* Poll the gateway's /metrics until `name` equals want or timeout_ms
 * passed; returns the last value read (-1: absent). */
long long sw_test_fan_metric_wait(int admin_port, const char *name,
                                  long long want, int timeout_ms);

/* The next frame on ws must be a pong carrying `payload` (asserted). */
void sw_test_fan_expect_pong(struct sw_test_ws *ws, const char *payload);

/* Client close handshake with 1000, asserting the gateway's 1000, then
 * sw_test_ws_free. */
void sw_test_fan_leave(struct sw_test_ws *ws);

/* Open a fan-out client (sw_test_ws_open with Host app.example) and assert
 * the 101; `extra` as in sw_test_ws_open. */
void sw_test_fan_join(struct sw_test_ws *ws, int port, const char *path,
                      const char *extra);

/*
 * The rig most fan-out suites use: two backends and the daemon.
 *   feed  fanback without a subprotocol         (@FEED@)
 *   chat  fanback --protocol chat               (@CHAT@)
 *   dead  a free port nothing listens on        (@DEAD@)
 * plus @PORT@ and @ADMIN@ (proc.h) and the caller's kv pairs.
 */
struct sw_test_fan_rig {
    struct sw_test_fanback feed; /* the main backend */
    struct sw_test_fanback chat; /* the backend that speaks "chat" */
    struct sw_test_gw gw;        /* the daemon */
};

/* Start the backends, then the daemon with tests/conf/<conf_name>;
 * asserts (Check) that everything came up. */
void sw_test_fan_rig_start(struct sw_test_fan_rig *r, const char *conf_name,
                           const char *const *kv);

/* Stop the daemon (asserting exit status 0 on SIGTERM, log copied to
 * stderr otherwise) and the backends. */
void sw_test_fan_rig_stop(struct sw_test_fan_rig *r);

/*
 * Give tc a checked fixture that starts a rig with conf_name and kv (kept:
 * they must outlive the suite) before each test and stops it after.
 * Returns the rig the tests use; one fixture per test program.
 */
struct sw_test_fan_rig *sw_test_fan_fixture(TCase *tc, const char *conf_name,
                                            const char *const *kv);

/* A metric of the rig's daemon (-1 when absent). */
long long sw_test_fan_metric(struct sw_test_fan_rig *r, const char *name);

/* Poll a metric of the rig's daemon until it equals want (10 s at most),
 * then assert that it does; a failure names the caller's file and line. */
#define sw_test_fan_metric_is(r, name, want)                                   \
    sw_test_fan_metric_is_at((r), (name), (want), __FILE__, __LINE__)
void sw_test_fan_metric_is_at(struct sw_test_fan_rig *r, const char *name,
                              long long want, const char *file, int line);

#endif
