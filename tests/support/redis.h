/*
 * redis.h - a Redis server for the suites of the bus between gateways
 * (Debian's redis-server, a child process) and a tiny RESP client to look
 * into it.
 *
 *   sw_test_redis_start --> redis-server --port P --bind 127.0.0.1
 *                           --save "" --appendonly no --dir TMP/redis.P
 *        |                  waited for until it answers PING
 *        +--> sw_test_redis_call / _get / _numsub / _publish   (RESP2)
 *        +--> sw_test_redis_stop (SIGTERM by pid), then
 *             sw_test_redis_restart: the same port again (Redis down, up)
 *
 * Nothing is persisted: no RDB, no AOF, an empty folder of its own per
 * server. Every call opens a fresh connection with a deadline (net.h), so
 * a call made while the server is stopped fails at once, never hangs.
 *
 * Threading: from the test's main thread (proc.h spawns from there).
 */
#ifndef SW_TEST_REDIS_H
#define SW_TEST_REDIS_H

#include "net.h"
#include "proc.h"

#include <stdbool.h>
#include <stddef.h>

struct sw_test_redis {
    struct sw_test_proc proc; /* the redis-server process */
    int port;                 /* its port on 127.0.0.1 */
    char dir[512];            /* its working folder (under sw_test_tmpdir) */
};

/* One RESP2 reply. */
struct sw_test_redis_reply {
    char type;     /* '+' status, '-' error, ':' integer, '$' bulk,
                      '*' array; 0 when the call failed */
    long long num; /* ':' its value; '$' its length, '*' its count
                      (-1 for a nil bulk or array) */
    char *str;     /* owned: '+', '-' and '$' bytes, NUL-terminated,
                      NULL for nil */
    size_t len;    /* bytes in str */
    struct sw_test_redis_reply *elem; /* owned: '*' elements */
    size_t nelem;                     /* entries in elem */
};

/*
 * Start redis-server on a free port and wait (10 s at most) until it
 * answers PING. False (its log copied to stderr) when it did not.
 */
bool sw_test_redis_start(struct sw_test_redis *r);

/* Start it again on the same port after sw_test_redis_stop (the port is
 * retried for a while if the old socket still holds it). */
bool sw_test_redis_restart(struct sw_test_redis *r);

/* SIGTERM by pid, SIGKILL after 2 s. Accepts a stopped server. */
void sw_test_redis_stop(struct sw_test_redis *r);

/*
 * Send one command (argv[i] of lens[i] bytes; lens NULL: NUL-terminated
 * strings) on a fresh connection and read its reply into *out. False on a
 * connection, timeout or parse failure (out->type 0). Free with
 * sw_test_redis_reply_free in every case.
 */
bool sw_test_redis_call(const struct sw_test_redis *r,
                        struct sw_test_redis_reply *out, int argc,
                        const char *const *argv, const size_t *lens);
void sw_test_redis_reply_free(struct sw_test_redis_reply *rep);

/* GET key: its value (malloc'd), or NULL for nil or a failure. */
char *sw_test_redis_get(const struct sw_test_redis *r, const char *key);

/* PUBSUB NUMSUB channel: the subscribers of one channel, -1 on failure. */
long long sw_test_redis_numsub(const struct sw_test_redis *r,
                               const char *channel);

/* PUBLISH channel data[0..len): the receivers Redis counted, -1 on
 * failure. */
long long sw_test_redis_publish(const struct sw_test_redis *r,
                                const char *channel, const void *data,
                                size_t len);

/*
 * A subscriber of its own: SUBSCRIBE channel on c (open on success), then
 * sw_test_redis_next reads each published message's payload (malloc'd,
 * *len its bytes) within timeout_ms, NULL on timeout or a closed
 * connection.
 */
bool sw_test_redis_subscribe(const struct sw_test_redis *r,
                             struct sw_test_conn *c, const char *channel);
char *sw_test_redis_next(struct sw_test_conn *c, size_t *len, int timeout_ms);

#endif
