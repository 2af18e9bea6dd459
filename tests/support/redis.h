/*
 * redis.h - a Redis server for the suites of the bus between gateways
 * (Debian's redis-server, a child process) and calls to look into it
 * (hiredis's blocking client).
 *
 *   sw_test_redis_start --> redis-server --port P --bind 127.0.0.1
 *                           --save "" --appendonly no --dir TMP/redis.P
 *        |                  waited for until it answers PING
 *        +--> sw_test_redis_get / _numsub / _publish / _subscribe
 *        +--> sw_test_redis_stop (SIGTERM by pid), then
 *             sw_test_redis_restart: the same port again (Redis down, up)
 *
 * Nothing is persisted: no RDB, no AOF, an empty folder of its own per
 * server. Every call opens a fresh connection with a deadline, so
 * a call made while the server is stopped fails at once, never hangs.
 *
 * Threading: from the test's main thread (proc.h spawns from there).
 */
#ifndef SW_TEST_REDIS_H
#define SW_TEST_REDIS_H

#include "proc.h"

#include <hiredis/hiredis.h>

#include <stdbool.h>
#include <stddef.h>

struct sw_test_redis {
    struct sw_test_proc proc; /* the redis-server process */
    int port;                 /* its port on 127.0.0.1 */
    char dir[512];            /* its working folder (under sw_test_tmpdir) */
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
 * A subscriber of its own: a connection that has SUBSCRIBEd to channel
 * (NULL on failure; close it with redisFree), then sw_test_redis_next
 * reads each published message's payload (malloc'd, *len its bytes)
 * within timeout_ms, NULL on timeout or a closed connection.
 */
redisContext *sw_test_redis_subscribe(const struct sw_test_redis *r,
                                      const char *channel);
char *sw_test_redis_next(redisContext *c, size_t *len, int timeout_ms);

#endif
